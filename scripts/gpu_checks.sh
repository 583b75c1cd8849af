#!/usr/bin/env bash
# The GPU measurements of the speed and quality issues, stage by stage (each fits the lent
# machine's 10-minute command limit). Prepare once on the development machine:
#   ../shared/tools/gpu-wheels.sh                                  # hydra/omegaconf/torch-fidelity -> .whl/
#   ganx-weights inception --half --out inception_fp16.pth         # 48 MB: fits the 64 MiB carry
# then on the GPU machine (carry .whl and inception_fp16.pth):
#   bash scripts/gpu_checks.sh bench      # scripts/bench.py table + loss curves -> $OUT/bench.md
#   bash scripts/gpu_checks.sh ddp        # hardware=ddp (NCCL) against one process, images/s
#   bash scripts/gpu_checks.sh quality    # scripts/bench_quality.py, 20k steps, Inception-FID
#                                         # (the default, MLP + R1, rpgan + R1 + R2 at gamma 1)
set -euo pipefail
stage=${1:?usage: gpu_checks.sh bench|ddp|quality}
out=${OUT:-gpu_out}
mkdir -p "$out"
if ! python3 -c "import ganx.conf, hydra, torch_fidelity" 2>/dev/null; then
  # the missing wheels and ganx itself (conf/ is packaged as ganx.conf, so not just src/)
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site .
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/gpu.txt"

case "$stage" in
  bench)
    python3 scripts/bench.py --families mlp dcgan sngan --batch 64 256 \
      --presets cuda cuda_fast --seconds 5 --curves 300 | tee "$out/bench.md"
    ;;
  ddp)
    # the same short job with one process and with every GPU; images/s from status.json
    for hw in cuda ddp; do
      python3 -m ganx.train hardware=$hw train.steps=600 eval.metrics=[] log.progress=false \
        sample.every=600 hydra.run.dir="$out/ddp_$hw" >"$out/ddp_$hw.log" 2>&1
      python3 - "$out/ddp_$hw" <<'PY'
import json, sys
s = json.load(open(f"{sys.argv[1]}/status.json"))
print(sys.argv[1], s["status"], "images/s per rank:", round(600 * 64 * 2 / s["wall_time_s"]))
PY
    done | tee "$out/ddp.txt"
    ;;
  quality)
    python3 scripts/bench_quality.py --out "$out/quality" --steps 1000 5000 10000 20000 \
      --inception-weights "$PWD/inception_fp16.pth" --num-samples 5000 \
      --jobs 3 --configs "default:" "mlp_r1:model=mlp reg=r1" \
      "rpgan_r1r2_g1:loss=rpgan reg=[r1,r2] reg.r1.weight=1 reg.r2.weight=1" | tail -n 20
    ;;
  *)
    echo "unknown stage $stage; allowed: bench, ddp, quality" >&2
    exit 2
    ;;
esac
