"""mutmut's score over ganx's method modules: an unbiased check of the fast tests (the mutations
are mutmut's, not written by the hands that wrote the tests; scripts/mutants.py keeps the
semantic list).

The repository (src, tests, conf, docs, README.md, pyproject.toml) is copied to a scratch
directory, a ``[tool.mutmut]`` section naming the chosen modules and their fast test files is
added there, and ``mutmut run`` mutates them: the whole package goes to mutmut's copy (only the
chosen modules mutated), and its first pass records which tests reach which function, so each
mutant runs only the tests that execute it, fastest first (a killed mutant costs its cheapest
failing test). Prints killed/survived/timeout per module and the score (killed + timeout over
all tested; a mutant no test reaches counts as not caught), and the surviving mutants' names
(``--diff`` shows each one's diff); EQUIVALENT below lists survivors that no test can kill,
with why (left out of the score); NOT_EQUIVALENT those that change behaviour no fast CPU test can
see or should pin, with why (still counted as survivors). Listing a mutant in EQUIVALENT is a
claim about behaviour: give the reason it cannot differ.

    python scripts/mutmut_score.py losses schedule         # the smallest modules
    python scripts/mutmut_score.py --all                   # every method module (hours on 2 cores)
    python scripts/mutmut_score.py losses --diff --keep /tmp/mm   # keep the scratch dir
    python scripts/mutmut_score.py augment --keep /tmp/mm --only 'ganx.augment.xǁDiffAugmentǁ*'
    python scripts/mutmut_score.py augment --keep /tmp/mm --report-only   # an interrupted run
    python scripts/mutmut_score.py data/__init__ --keep /tmp/a --report-only --then /tmp/b
                                   # /tmp/b reran some functions after new tests: its results win

A module's mutants that were not run (``--only``, or a run stopped early) are counted as "not
checked" and left out of the score, which then covers the mutants run only.

Runs on demand, not in CI. Needs the dev extra (mutmut).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module (under src/ganx) -> the fast test files that guard it
MODULES = {
    "losses": ["test_losses.py", "test_nondefault_settings.py", "test_dirac_toy.py"],
    "schedule": ["test_schedule.py", "test_train.py"],
    "regularizers": [
        "test_regularizers.py",
        "test_regularizer_edges.py",
        "test_nondefault_settings.py",
        "test_properties.py",
    ],
    "augment": ["test_augment.py", "test_augment_draws.py", "test_nondefault_settings.py"],
    "step": ["test_properties.py", "test_train.py", "test_reference_details.py", "test_augment.py"],
    "state": [
        "test_state.py",
        "test_train.py",
        "test_resume_eval.py",
        "test_resume_nondefault.py",
        "test_resume_signals_best.py",
        "test_fast_guarantees.py",
        "test_reliability.py",
        "test_reference_details.py",
        "test_checkpoint_errors.py",
    ],
    "checkpoint": ["test_checkpoint_errors.py", "test_train.py", "test_reliability.py"],
    "metrics/fidelity": ["test_metrics.py", "test_metric_plan.py", "test_metric_settings.py"],
    "metrics/registry": ["test_metrics.py", "test_mog3d.py", "test_metric_settings.py"],
    "data/__init__": ["test_data.py", "test_limited_data.py", "test_mog3d.py", "test_ranks.py"],
    "nets": [
        "test_nets_reference.py",
        "test_net_structure.py",
        "test_config.py",
        "test_r3gan.py",
        "test_aux.py",  # SSGAN's rotation head, InfoMax's projection
        "test_metrics.py",  # mnist_cnn: the digit classifier the MNIST metrics use
    ],
}

# surviving mutants that no test can kill: name -> why (the mutant behaves as the original)
EQUIVALENT: dict[str, str] = {
    "ganx.losses.xǁMinimaxLossǁd_loss__mutmut_6": "always d_scale * terms: at d_scale 1.0 the "
    "product is bitwise the terms (the shortcut only skips a multiplication by 1)",
    "ganx.losses.xǁRelativisticAverageLossǁ_loss__mutmut_7": "always scale * terms: at scale "
    "1.0 the product is bitwise the terms",
    "ganx.augment.xǁAdaptiveAugmentǁ_xflip__mutmut_8": "u < 0.5 -> u <= 0.5 on a float32 "
    "uniform draw: differs only when a draw is exactly 0.5 (chance 2^-24 per image)",
    "ganx.augment.xǁAdaptiveAugmentǁ_rotate90__mutmut_2": "turns / chosen: an image not chosen "
    "gets inf or nan turns, which equal no k in 1..3, as turns * chosen = 0 does",
    "ganx.augment.xǁAdaptiveAugmentǁ_scale__mutmut_41": "einsum's equation in capitals: the "
    "same subscripts (torch accepts both cases)",
    "ganx.augment.xǁDiffAugmentǁ_cutout__mutmut_109": "x * bool mask: torch promotes the bool "
    "mask to x's dtype, as .to(x.dtype) does",
    "ganx.augment.xǁDiffAugmentǁ_cutout__mutmut_47": "arange(h).view(h) against top.view(-1, 1) "
    "broadcasts to the same (N, H) as view(1, h)",
    "ganx.augment.xǁDiffAugmentǁ_cutout__mutmut_57": "arange(w).view(w) against left.view(-1, 1) "
    "broadcasts to the same (N, W) as view(1, w)",
    "ganx.augment.xǁDiffAugmentǁ_cutout__mutmut_26": "top - size_h / 2: for an even side the "
    "same as // 2; for an odd one top is k - m - 0.5 and the integer rows >= top and < top + "
    "size are those of k - m, as with // 2",
    "ganx.augment.xǁDiffAugmentǁ_cutout__mutmut_42": "left - size_w / 2: as _cutout__mutmut_26 "
    "for the columns",
    "ganx.augment.xǁDiffAugmentǁ_translation__mutmut_14": "reflect=None is falsy: shifted_rows "
    "pads with zeros as with reflect=False",
    "ganx.regularizers.xǁRegularizerǁ__init____mutmut_1": "the base class's default weight: "
    "every ganx regularizer passes its own (the transforms pass 0.0), none relies on it",
    "ganx.augment.xǁAdaptiveAugmentǁ__call____mutmut_8": "u < p -> u <= p on a float32 uniform "
    "draw: differs only when a draw equals p exactly (as _xflip__mutmut_8)",
    "ganx.augment.x_scaling_matrix__mutmut_9": "arange without dtype: int64 positions minus the "
    "centre give torch's default float dtype, the dtype _scale draws scale in (self.normal), with "
    "the same (exact) values: bitwise the same matrices",
    "ganx.augment.x_scaling_matrix__mutmut_12": "as x_scaling_matrix__mutmut_9 (dtype left out)",
    "ganx.augment.x_scaling_matrix__mutmut_75": "zeros(dtype=None): torch's default float dtype, "
    "the dtype _scale draws scale in (self.normal): the same matrix",
    "ganx.augment.x_scaling_matrix__mutmut_80": "as x_scaling_matrix__mutmut_75 (dtype left out)",
    "ganx.augment.x_scaling_matrix__mutmut_19": "out_pos.view(-1) broadcasts against "
    "scale.view(-1, 1) to the same (B, size) as view(1, -1)",
    "ganx.augment.x_scaling_matrix__mutmut_40": "period max(2 (size - 1), 2): differs only for "
    "size 1, where every source position is 0, and 0 mod 1 = 0 mod 2",
    "ganx.augment.x_scaling_matrix__mutmut_50": "src >= size - 1 instead of >: at src = size - 1 "
    "the reflection period - src is exactly size - 1 again (integers in floating point)",
    "ganx.augment.x_scaling_matrix__mutmut_55": "no lower clamp: after the reflection src is in "
    "[0, size - 1] (remainder >= 0, period - src > 0), so floor(src) >= 0 already",
    "ganx.augment.x_scaling_matrix__mutmut_56": "no upper clamp: after the reflection src <= "
    "size - 1, so floor(src) <= size - 1 already",
    "ganx.augment.x_scaling_matrix__mutmut_58": "as x_scaling_matrix__mutmut_56 (max left out)",
    "ganx.augment.x_scaling_matrix__mutmut_60": "clamp at size + 1: as x_scaling_matrix__mutmut_56,"
    " floor(src) never exceeds size - 1",
    "ganx.augment.x_shifted_rows__mutmut_6": "arange(size).view(size) broadcasts against "
    "shift.view(-1, 1) to the same (N, size) as view(1, size)",
    "ganx.augment.x_shifted_rows__mutmut_29": "period max(2 (size - 1), 2): differs only on a "
    "1-pixel axis with reflect, where ADA's shift is round(+-0.125 u) = 0 and index 0 is 0 mod "
    "either period (DiffAugment pads with zeros, no period)",
    "ganx.augment.x_shifted_rows__mutmut_74": "valid.to(None) keeps the bool mask, which torch "
    "promotes to out's dtype in the product (1.0 / 0.0): bitwise .to(out.dtype)",
    "ganx.step.x_g_first_iteration__mutmut_18": "batch_size=None: generator_loss reads it only to "
    "draw a fresh batch, and g_first passes its own fake batch",
    "ganx.step.x_training_iteration__mutmut_6": "updates=False -> 'XXalternatingXX': the value is "
    "compared only with 'g_first' and 'simultaneous', and any other runs the alternating order",
    "ganx.step.x_training_iteration__mutmut_7": "'ALTERNATING': as x_training_iteration__mutmut_6",
    "ganx.step.x_generator_backward__mutmut_26": "G's gradients zeroed instead of set to None: "
    "G's loss reaches every G parameter (each of conf/model's 12 generators, checked), so "
    "backward then writes the same values (0 + g) and Adam sees the same gradients",
    "ganx.step.x_generator_backward__mutmut_25": "set_to_none=None: as "
    "x_generator_backward__mutmut_26",
    "ganx.checkpoint.x_read_config__mutmut_2": "load(mmap=None) reads the tensors instead of "
    "mapping them: read_config returns the config, plain types, the same either way",
    "ganx.checkpoint.x_read_config__mutmut_4": "mmap left out: as x_read_config__mutmut_2",
    "ganx.checkpoint.x_read_config__mutmut_5": "mmap=False: as x_read_config__mutmut_2",
    "ganx.checkpoint.x_load__mutmut_1": "mmap=True by default: the tensors are mapped instead "
    "of read, with the same values; every caller copies them (into the nets, optimisers, RNG), "
    "and ganx replaces checkpoint files only by rename, so a mapping never changes under a run",
    "ganx.checkpoint.x_load__mutmut_18": "_torch_load(mmap=None): read instead of mapped, the "
    "same values (read_config's config, plain types)",
    "ganx.checkpoint.x_load__mutmut_20": "mmap left out: as x_load__mutmut_18",
    "ganx.checkpoint.x__read_problem__mutmut_8": "read(None) reads the whole file to judge its "
    "start: the same verdicts (zip magic, UTF-8 text), only more bytes read",
    "ganx.checkpoint.x__read_problem__mutmut_9": "read(513): the zip magic is 4 bytes and the "
    "incremental UTF-8 decoder accepts any prefix of a text: the same verdicts",
    "ganx.checkpoint.x__torch_load__mutmut_1": "default mmap=True: every caller passes mmap",
    "ganx.checkpoint.x__torch_load__mutmut_5": "torch.load(mmap=None) reads instead of mapping: "
    "the same values (as x_load__mutmut_18)",
    "ganx.checkpoint.x__torch_load__mutmut_9": "mmap left out: as x__torch_load__mutmut_5",
    "ganx.checkpoint.x_intact_copy__mutmut_21": "_torch_load(other, False): the copy read instead "
    "of mapped, the same verdict",
    "ganx.checkpoint.x_intact_copy__mutmut_18": "_torch_load(other, None): read instead of "
    "mapped, the same verdict",
    "ganx.checkpoint.x_intact_copy__mutmut_20": "mmap left out: as x_intact_copy__mutmut_18",
    "ganx.step.x_discriminator_loss__mutmut_75": "the lazy pass's total starts at 1.0, not 0.0: "
    "a constant has no gradient, and that total is only back-propagated (never logged)",
    "ganx.step.x_discriminator_loss__mutmut_78": "the DiscriminatorPass is built even when no "
    "penalty is due: nothing reads it then (the loop over the due penalties is empty)",
    # state
    "ganx.state.xǁTrainingStateǁ_load_schedulers__mutmut_3": (
        "zip(..., strict=None): None is falsy, as strict=False"
    ),
    "ganx.state.xǁTrainingStateǁ_load_schedulers__mutmut_6": (
        "zip without strict: its default is False"
    ),
    "ganx.state.xǁTrainingStateǁ_load_schedulers__mutmut_7": (
        "zip(..., strict=True): the saved list and the run's have the same length (train.lr_decay, "
        "which makes them, may not change on resume: resume_rules refuses it before any slot loads)"
    ),
    "ganx.state.xǁTrainingStateǁ_slots__mutmut_5": (
        "an attribute slot's network flag None: its load is setattr, which raises no RuntimeError, "
        "so the flag is never read"
    ),
    "ganx.state.xǁTrainingStateǁ_slots__mutmut_23": (
        "an attribute slot's network flag True: as _slots__mutmut_5"
    ),
    # metrics/fidelity
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_61": (
        "verbose=None: torch-fidelity's vprint(None, ...) prints nothing, as with False"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_86": (
        "verbose=None: KID's progress bar gets disable=not None = True and vprint(None) prints "
        "nothing, as with False"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_109": (
        "verbose=None: vprint(None, ...) prints nothing"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_108": (
        "save_cpu_ram=None is falsy: torch-fidelity's full path, which computes the same "
        "distances and comparisons as the chunked one (the tests compare ganx's values with the "
        "full path's on the same features)"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_118": ("save_cpu_ram=False: as _mutmut_108"),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_117": (
        "prc_batch_size 10001: the chunk size of the same distance computations; ganx's sample "
        "counts (<= 10000) fit one chunk either way"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_182": (
        "float('NAN') is nan: Python parses it regardless of case"
    ),
    "ganx.metrics.fidelity.xǁMnistFeatureExtractorǁcan_be_compiled__mutmut_1": (
        "torch-fidelity asks only when feature_extractor_compile is set "
        "(utils.create_feature_extractor), which ganx never passes"
    ),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_11": (
        "map_location=None: the shipped file holds CPU tensors, restored on the CPU either way"
    ),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_14": ("no map_location: as _mutmut_11"),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_12": (
        "weights_only=None: torch's default is True (torch >= 2.6)"
    ),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_15": (
        "no weights_only: torch's default is True (torch >= 2.6)"
    ),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_18": (
        "weights_only=False on ganx's own shipped file of tensors and numbers: the same objects "
        "load"
    ),
    "ganx.metrics.fidelity.x_inception_has_head__mutmut_17": (
        "weights_only=None: torch's default is True"
    ),
    "ganx.metrics.fidelity.x_inception_has_head__mutmut_20": (
        "no weights_only: torch's default is True"
    ),
    "ganx.metrics.fidelity.x_real_features__mutmut_17": (
        "weights_only=None: torch's default is True"
    ),
    "ganx.metrics.fidelity.x_real_features__mutmut_39": (
        "the temporary file's suffix: it is renamed to the final name at once, any suffix other "
        "than .pt does"
    ),
    "ganx.metrics.fidelity.x_real_features__mutmut_40": ("as _mutmut_39"),
    "ganx.metrics.fidelity.x__weights_id__mutmut_4": (
        "the digit network's id only has to differ from Inception's (path:size:mtime); any "
        "constant keys the same cache entries"
    ),
    "ganx.metrics.fidelity.x__weights_id__mutmut_5": ("as _mutmut_4"),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_21": (
        "the fp16 weights not made float first: load_state_dict copies them into the float32 "
        "parameters, converting exactly (every fp16 is a float32)"
    ),
    "ganx.metrics.fidelity.x_load_mnist_cnn__mutmut_22": (
        "the BatchNorm counters (int64) made float first: load_state_dict copies them back into "
        "the int64 buffers, exactly (small counts)"
    ),
    "ganx.metrics.fidelity.x_migrate_converted_weights__mutmut_5": (
        "mkdir(parents=None): the converted file's directory is the original's (hub/checkpoints),"
        " which exists since the original is a file in it: the mkdir makes nothing either way"
    ),
    "ganx.metrics.fidelity.x_migrate_converted_weights__mutmut_7": ("no parents=: as _mutmut_5"),
    "ganx.metrics.fidelity.x_migrate_converted_weights__mutmut_9": ("parents=False: as _mutmut_5"),
    "ganx.metrics.fidelity.x_real_features__mutmut_19": "no weights_only: torch's default is True",
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_89": (
        "kid_subsets=100 left out: torch-fidelity's default (defaults.DEFAULTS) is 100"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_91": (
        "KID's rng_seed=2020 left out: torch-fidelity's default is 2020"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_112": (
        "prc_neighborhood=3 left out: torch-fidelity's default is 3"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_113": (
        "prc_batch_size=10000 left out: torch-fidelity's default is 10000"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_114": (
        "save_cpu_ram=True left out: the default False takes the full path (as _mutmut_108)"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_137": (
        "splits=10 left out: isc_features_to_metric's own default is 10"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_138": (
        "shuffle=True left out: isc_features_to_metric's own default is True"
    ),
    "ganx.metrics.fidelity.x_fidelity_metrics__mutmut_139": (
        "IS's rng_seed=2020 left out: isc_features_to_metric's own default is 2020"
    ),
    # data
    "ganx.data.x_cifar__mutmut_53": (
        "encoding='LATIN1': Python's codec names ignore case, the same codec as 'latin1'"
    ),
    "ganx.data.x_torchvision_dataset__mutmut_100": (
        "how_to_download(name, None): the root appears only in CIFAR's fetch command, and CIFAR "
        "has its own reader; for every set this builder reads the line is the same"
    ),
    "ganx.metrics.registry.x_compute_metrics__mutmut_10": (
        "rsplit('_') without a limit: every name that is not a registered metric has been "
        "checked against FIDELITY_METRICS x FIDELITY_EXTRACTORS (one word each, no underscore), "
        "so it splits into the same two words"
    ),
    "ganx.metrics.registry.x_compute_metrics__mutmut_11": (
        "split('_', 1) for rsplit: as x_compute_metrics__mutmut_10"
    ),
    "ganx.nets.resnet64.x_conv__mutmut_17": (
        "padding size // 3: the nets use sizes 1 and 3 only, where // 3 and // 2 agree (0, 1)"
    ),
    "ganx.nets.resnet64.xǁUpBlockǁ__init____mutmut_9": (
        "bias=None: nn.Conv2d reads it as false, no bias, as bias=False"
    ),
    "ganx.nets.resnet64.xǁDownBlockǁ__init____mutmut_19": ("bias None: as UpBlock's _mutmut_9"),
    "ganx.nets.sngan.x_upsampled__mutmut_7": (
        "align_corners=None: torch's bilinear default is False, the same samples"
    ),
    "ganx.nets.sngan.x_upsampled__mutmut_11": ("align_corners left out: as x_upsampled__mutmut_7"),
    "ganx.nets.sngan.x_upsampled__mutmut_21": (
        "mode left out: F.interpolate's default mode is nearest"
    ),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_28": (
        "stage_plan's expansion None: it only checks it (None is 'the net picks'); D's blocks "
        "take their expansion from D's own argument"
    ),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_47": (
        "zip(strict=None): per_stage gives the widths, cardinalities and counts one entry per "
        "stage each, so the lists are always of one length"
    ),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_51": ("no strict: as _mutmut_47"),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_52": ("strict=False: as _mutmut_47"),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_69": (
        "Resample(up=None): read as false, a down-sampler, as up=False"
    ),
    "ganx.nets.r3gan.x_conv__mutmut_15": ("bias=None: read as false, no bias, as bias=False"),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_88": (
        "the basis's bias=None: as x_conv__mutmut_15"
    ),
    "ganx.nets.r3gan.xǁR3GANDiscriminatorǁ__init____mutmut_105": (
        "the logit's bias=None: as x_conv__mutmut_15"
    ),
    "ganx.nets.r3gan.x_lowpass_kernel__mutmut_3": (
        "dtype=None: the taps are Python floats, which torch.tensor makes float32 (the default "
        "dtype) as dtype=torch.float32 does"
    ),
    "ganx.nets.r3gan.x_lowpass_kernel__mutmut_5": ("dtype left out: as x_lowpass_kernel__mutmut_3"),
    "ganx.nets.r3gan.x_lowpass_kernel__mutmut_16": (
        "view(1, -1): conv1d reads a 2-D input as one unbatched channel, the same row as the "
        "batched (1, 1, n) view"
    ),
    "ganx.nets.r3gan.x_lowpass_kernel__mutmut_17": ("as x_lowpass_kernel__mutmut_16"),
    "ganx.nets.r3gan.xǁResampleǁ__init____mutmut_4": (
        "persistent=None: read as false, the kernel stays out of the state dict as with False"
    ),
    "ganx.nets.r3gan.x_stage_count__mutmut_4": (
        "resolution / side for //: every resolution divides by its basis side (28 / 7, 32 / 4, "
        "64 / 4), so log2 sees the same power of two"
    ),
    "ganx.nets.r3gan.x_msr_init__mutmut_5": (
        "normal_ also at gain 0: N(0, 0) draws exact zeros, as zero_() writes"
    ),
    "ganx.nets.r3gan.xǁResidualBlockǁ__init____mutmut_15": (
        "kernel left out of the expanding conv: conv's default kernel is 1"
    ),
    "ganx.nets.r3gan.xǁResidualBlockǁ__init____mutmut_33": (
        "the projection's gain None: msr_init zeroes the weights for any false gain, as for 0.0"
    ),
    "ganx.nets.r3gan.xǁResidualBlockǁ__init____mutmut_36": (
        "kernel left out of the projecting conv: as _mutmut_15"
    ),
    "ganx.nets.r3gan.xǁR3GANGeneratorǁ__init____mutmut_13": (
        "stage_plan's expansion None: as xǁR3GANDiscriminatorǁ__init____mutmut_28"
    ),
    "ganx.nets.r3gan.xǁR3GANGeneratorǁ__init____mutmut_35": (
        "the scale's bias=None: read as false, no bias, as bias=False"
    ),
    "ganx.metrics.registry.x_compute_metrics__mutmut_13": (
        "rsplit('_', 2): as x_compute_metrics__mutmut_10 (one underscore in every such name)"
    ),
    "ganx.nets.sngan.xǁSNGANDiscriminatorǁ__init____mutmut_58": (
        "the global block's downsample=None: read as false, as False"
    ),
    "ganx.nets.sngan.xǁSNGANDiscriminatorǁ__init____mutmut_59": (
        "the global block's first=None: read as false, as False"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_32": (
        "align_corners=None: torch's bilinear default is False, the same samples"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_37": (
        "align_corners left out: torch's bilinear default is False"
    ),
    "ganx.nets.toy2d.xǁToy2dGeneratorǁ__init____mutmut_13": (
        "G's sn=None: read as false, no spectral norm, as False"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_19": (
        "shape[+1] (the channels) for the width: a 28 x 28 batch is then resized to 28 x 28, "
        "which bilinear sampling at the pixel centres returns unchanged (test_metrics checks "
        "prepare's output bit for bit)"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_22": (
        "a width of 29 for 28: a 28 x 28 batch is then resized to 28 x 28, "
        "which bilinear sampling at the pixel centres returns unchanged (test_metrics checks "
        "prepare's output bit for bit)"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_23": (
        "shape[+2] for the height: a 28 x 28 batch is then resized to 28 x 28, "
        "which bilinear sampling at the pixel centres returns unchanged (test_metrics checks "
        "prepare's output bit for bit)"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_24": (
        "shape[-3] (the channels) for the height: a 28 x 28 batch is then resized to 28 x 28, "
        "which bilinear sampling at the pixel centres returns unchanged (test_metrics checks "
        "prepare's output bit for bit)"
    ),
    "ganx.nets.mnist_cnn.xǁMnistCNNǁprepare__mutmut_26": (
        "a height of 29 for 28: a 28 x 28 batch is then resized to 28 x 28, "
        "which bilinear sampling at the pixel centres returns unchanged (test_metrics checks "
        "prepare's output bit for bit)"
    ),
    "ganx.data.x_resize__mutmut_2": (
        "shape[-2] for shape[-1]: every image resize() is given is square (mnist5k 28 x 28, CIFAR"
        " 32 x 32), so the two sides agree"
    ),
    "ganx.data.xǁBatchStreamǁ__init____mutmut_1": (
        "the default num_workers 1: loader workers read the same index lists and items as the "
        "main process, the same batches (every ganx caller passes dataset.num_workers)"
    ),
    "ganx.data.xǁBatchStreamǁ__init____mutmut_20": (
        "_order_epoch -2 for -1: neither is an epoch (>= 0), so the first call draws the order "
        "either way"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_21": (
        "prefetch_factor 5: how many batches each worker loads ahead, not which"
    ),
    "ganx.data.xǁBatchStreamǁnext__mutmut_33": (
        "non_blocking left out: the same values; only whether the copy to the device may overlap "
        "with computation"
    ),
    "ganx.data.xǁBatchStreamǁnext__mutmut_34": ("non_blocking=False: as _mutmut_33"),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_5": (
        "pin_memory=None: pinned memory only speeds up copies to a GPU (and is off on a CPU run "
        "either way): the same batches"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_10": (
        "pin_memory left out (False): pinned memory only speeds up copies to a GPU (and is off on"
        " a CPU run either way): the same batches"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_17": (
        "pin_memory compared with 'XXcudaXX' (False): pinned memory only speeds up copies to a "
        "GPU (and is off on a CPU run either way): the same batches"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_18": (
        "pin_memory compared with 'CUDA' (False): pinned memory only speeds up copies to a GPU "
        "(and is off on a CPU run either way): the same batches"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_6": (
        "prefetch_factor=None: how many batches each worker loads ahead (torch's default 2 when "
        "left out), not which"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_11": (
        "prefetch_factor left out: how many batches each worker loads ahead (torch's default 2 "
        "when left out), not which"
    ),
    "ganx.data.xǁBatchStreamǁ_loader_iter__mutmut_19": (
        "prefetch_factor always None: how many batches each worker loads ahead (torch's default 2"
        " when left out), not which"
    ),
    "ganx.data.xǁBatchStreamǁ__init____mutmut_2": (
        "on_device defaulting to True: the data set is held on the device, the batches are the "
        "same (on a CPU run nothing moves; every ganx caller passes dataset.on_device)"
    ),
    "ganx.data.x_mixture_centres__mutmut_36": (
        "arange(-4, 6, 2) for arange(-4, 5, 2): the end is exclusive, both stop after 4"
    ),
    "ganx.data.x_resize__mutmut_12": (
        "align_corners=None: interpolate treats None as False for bilinear"
    ),
    "ganx.data.x_resize__mutmut_17": (
        "align_corners left out: its default None is False for bilinear"
    ),
    "ganx.data.x_rodrigues__mutmut_16": (
        "eye without float64: 0 and 1 are exact in float32 and the sum with the float64 terms is "
        "float64, the same values"
    ),
    "ganx.data.x_rodrigues__mutmut_18": ("as _mutmut_16"),
    "ganx.data.x_stacked_mnist__mutmut_8": ("mnist5k's channels left out: its default is 1"),
    # nets
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_38": (
        "ReLU(None): in-place or not, ReLU computes the same values and the same gradients (its "
        "input, a BatchNorm output, is not needed by the backward pass)"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_39": (
        "ReLU(False): in-place or not, ReLU computes the same values and the same gradients (its "
        "input, a BatchNorm output, is not needed by the backward pass)"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_66": ("ReLU(None): as _mutmut_38"),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_67": ("ReLU(False): as _mutmut_38"),
    "ganx.nets.dcgan.xǁDCGANDiscriminatorǁ__init____mutmut_65": (
        "LeakyReLU(0.2, None): not in place, the same values and gradients (as the reference's "
        "inplace=True)"
    ),
    "ganx.nets.dcgan.xǁDCGANDiscriminatorǁ__init____mutmut_67": (
        "LeakyReLU(0.2) without inplace: as _mutmut_65"
    ),
    "ganx.nets.dcgan.xǁDCGANDiscriminatorǁ__init____mutmut_69": (
        "LeakyReLU(0.2, False): as _mutmut_65"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_27": (
        "bias=None is falsy: torch builds the layer without a bias, as with bias=False"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_50": (
        "bias=None is falsy: torch builds the layer without a bias, as with bias=False"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_78": (
        "bias=None is falsy: torch builds the layer without a bias, as with bias=False"
    ),
    "ganx.nets.dcgan.xǁDCGANGeneratorǁ__init____mutmut_32": (
        "padding 0 left out: torch's default padding is 0"
    ),
    "ganx.nets.dcgan.xǁDCGANDiscriminatorǁ__init____mutmut_87": (
        "the final conv's padding 0 left out: torch's default padding is 0"
    ),
}

# surviving mutants that do change behaviour, but that no fast test on a CPU can see (a second
# device) or should pin (an arbitrary constant): name -> why. They stay survivors in the score.
NOT_EQUIVALENT: dict[str, str] = {
    "ganx.step.x_draw_latents__mutmut_4": "latents on the default device (None): as "
    "x_g_first_iteration__mutmut_10",
    "ganx.step.x_draw_latents__mutmut_8": "device left out: as x_draw_latents__mutmut_4",
    "ganx.step.x_require_finite__mutmut_10": "terms on a GPU read one by one (the CPU's check): "
    "the same verdict and name, with a device sync per term instead of one",
    "ganx.step.x_require_finite__mutmut_12": "the one-read check given None: it runs for terms "
    "on a GPU only; the check itself is tested on CPU tensors "
    "(test_both_non_finite_checks_name_the_same_first_term)",
    "ganx.step.x_discriminator_step__mutmut_9": "D's fake latents on the default device (None): "
    "as x_g_first_iteration__mutmut_10",
    "ganx.data.x_cifar__mutmut_71": "each batch's rows kept in the dtype they were read in "
    "instead of uint8: the same 0..255 values reach to_unit_range, but a batch read as int64 "
    "(or float64) holds 8x the memory until then, 1.2 GB for CIFAR's 50,000 images",
    "ganx.data.x_stacked_mnist__mutmut_1": "the default n 25601: test_data's builders test "
    "checks the default against the config's dataset.n through inspect.signature, which sees "
    "the original signature behind mutmut's trampoline; a call without n would build 240 MB",
    "ganx.data.xǁBatchStreamǁnext__mutmut_11": "the index moved only when it is already on "
    "the images' device: with the images on a GPU (dataset.on_device) index_select would get a "
    "CPU index and fail; on the CPU, the only device of the fast tests, both are always there",
    "ganx.data.xǁBatchStreamǁnext__mutmut_13": "the index moved to the default device (None) "
    "instead of the images' GPU: as xǁBatchStreamǁnext__mutmut_11",
    "ganx.augment.x_stream_seed__mutmut_2": "- 7919 * rank: another arbitrary rank offset; the "
    "streams stay distinct, apart from the training streams and below 2**63 "
    "(test_stream_seeds_are_distinct_apart_from_the_training_streams_and_valid); only which "
    "stream a seed selects changes, and nothing specifies that",
    "ganx.augment.x_stream_seed__mutmut_3": "- 0xA06: as x_stream_seed__mutmut_2",
    "ganx.augment.x_stream_seed__mutmut_6": "2567 for 0xA06: as x_stream_seed__mutmut_2",
    "ganx.augment.x_stream_seed__mutmut_8": "7920 for 7919: as x_stream_seed__mutmut_2",
    "ganx.augment.xǁAugmentǁbind__mutmut_3": "Generator(device=None) is a CPU generator: on the "
    "CPU, the only device of the fast tests, the same; torch has no meta-device generator to "
    "stand in for a GPU (there draws on the GPU from it would fail)",
    "ganx.augment.xǁAdaptiveAugmentǁbind__mutmut_1": "bind(None, seed): as "
    "xǁAugmentǁbind__mutmut_3",
    "ganx.augment.xǁAdaptiveAugmentǁbind__mutmut_6": "p.to(None) leaves p where it is: on the "
    "CPU the same; a meta tensor cannot be copied to the CPU to stand in for a GPU's",
    "ganx.augment.xǁAdaptiveAugmentǁbind__mutmut_7": "sign_sum.to(None): as "
    "xǁAdaptiveAugmentǁbind__mutmut_6",
    "ganx.checkpoint.x_atomic_save__mutmut_38": "unlink(missing_ok=None): the temporary file "
    "exists whenever the handler runs, except when an interrupt lands after os.replace returned "
    "and before the try ends (then FileNotFoundError would mask it): a signal race no test makes",
    "ganx.checkpoint.x_atomic_save__mutmut_40": "missing_ok=False: as x_atomic_save__mutmut_38",
    "ganx.checkpoint.x__torch_load__mutmut_3": "map_location=None: a checkpoint written on a GPU "
    "would load onto it; on the CPU of the fast tests the same",
    "ganx.checkpoint.x__torch_load__mutmut_4": "weights_only=None: torch >= 2.6 (installed) "
    "defaults it to True, so the same here; pyproject allows torch >= 2.1, where the default "
    "False would unpickle anything",
    "ganx.checkpoint.x__torch_load__mutmut_8": "weights_only left out: as x__torch_load__mutmut_4",
    "ganx.checkpoint.x__torch_load__mutmut_7": "map_location left out: as x__torch_load__mutmut_3",
    "ganx.step.x_generator_loss__mutmut_11": "G's latents on the default device (None): as "
    "x_g_first_iteration__mutmut_10",
    "ganx.step.x_g_first_iteration__mutmut_10": "latents drawn on the default device (None): "
    "the CPU in the fast tests; a GPU run would feed CPU latents to G on the GPU",
    "ganx.state.xǁTrainingStateǁ__init____mutmut_36": (
        "seed - 7919 for the grid noise: another arbitrary offset; the noise keeps its own stream, "
        "the run's prior and a seed of its own "
        "(test_state.test_the_grid_noise_has_its_own_stream_and_the_run_prior); which noise a seed "
        "picks is not specified"
    ),
    "ganx.state.xǁTrainingStateǁ__init____mutmut_37": ("seed + 7920: as __init____mutmut_36"),
    "ganx.state.xǁTrainingStateǁcreate__mutmut_23": (
        "the grid noise moved to device None (a no-op): the same on the CPU of the fast tests; on a"
        " GPU the grid noise would stay on the CPU"
    ),
    "ganx.state.xǁTrainingStateǁ_load_fixed_noise__mutmut_2": (
        "as create__mutmut_23, for the checkpoint's grid noise"
    ),
}


def scratch_copy(modules: list[str], where: Path) -> None:
    for name in ("src", "tests", "conf", "docs"):  # docs: tests check the counts it states
        shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "README.md", where / "README.md")
    paths, tests = [], []
    for module in modules:
        target = Path("src/ganx") / module
        paths.append(f"{target}/*" if (ROOT / target).is_dir() else str(target.with_suffix(".py")))
        tests += [f"tests/{t}" for t in MODULES[module] if f"tests/{t}" not in tests]
    # the whole package is copied to mutants/ (only the chosen modules mutated): a copy of one
    # file of a subpackage would shadow its siblings (ganx.metrics.fidelity without
    # ganx.metrics.evaluation, ganx.data without its shipped weights)
    config = (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/ganx"]\n'
        f"only_mutate = {paths!r}\n"
        f"pytest_add_cli_args_test_selection = {tests!r}\n"
        'pytest_add_cli_args = ["-m", "not slow", "-p", "no:xdist", "-p", "no:cacheprovider"]\n'
        'also_copy = ["conf", "tests", "docs", "README.md"]\n'
    ).replace("'", '"')
    (where / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + config)
    with open(where / "tests" / "conftest.py", "a") as conftest:
        conftest.write(FASTEST_FIRST)


# appended to the scratch copy's tests/conftest.py: each mutant's tests run fastest first (by
# the durations mutmut measured in its first pass), so a killed mutant costs its cheapest
# failing test (mutmut stops at the first failure); a survivor still runs every test
FASTEST_FIRST = """

def pytest_collection_modifyitems(items):
    import json
    import os

    if os.path.exists("mutmut-stats.json"):
        with open("mutmut-stats.json") as stats:
            durations = json.load(stats)["duration_by_test"]
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
"""


def results(where: Path) -> dict[str, str]:
    """mutant name -> status, from ``mutmut results --all true``."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=where,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"\s*([\w.\-]+__mutmut_\d+): (.+)", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def merged(runs: list[Path]) -> dict[str, str]:
    """The results of several runs over a module, in order: a later run of a function (its
    code or its tests changed in between) replaces the earlier runs' mutants of it; mutants a
    run did not check leave the earlier results as they were."""
    statuses: dict[str, str] = {}
    for where in runs:
        run = {n: s for n, s in results(where).items() if s != "not checked"}
        rerun = {n.rsplit("__mutmut_", 1)[0] for n in run}
        statuses = {n: s for n, s in statuses.items() if n.rsplit("__mutmut_", 1)[0] not in rerun}
        statuses |= run
    return statuses


def report(statuses: dict[str, str], modules: list[str]) -> None:
    for module in modules:
        prefix = "ganx." + module.replace("/", ".").removesuffix(".__init__")
        mine = {n: s for n, s in statuses.items() if n.startswith(prefix + ".")}
        counts = Counter(mine.values())
        killed = counts["killed"] + counts["timeout"]
        # a mutant no test reaches is not caught either: it counts as a survivor
        missed = {n for n, s in mine.items() if s in ("survived", "no tests")}
        equivalent = len(missed & EQUIVALENT.keys())
        tested = killed + len(missed) - equivalent
        score = 100 * killed / tested if tested else float("nan")
        print(
            f"{module}: {dict(counts)}; score {killed}/{tested} = {score:.1f}%"
            f" ({equivalent} equivalent)"
        )
    survivors = sorted(n for n, s in statuses.items() if s in ("survived", "no tests"))
    for name in survivors:
        why = ""
        if name in EQUIVALENT:
            why = f"  (equivalent: {EQUIVALENT[name]})"
        elif name in NOT_EQUIVALENT:
            why = f"  (not killed here: {NOT_EQUIVALENT[name]})"
        print(f"  {statuses[name]} {name}{why}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)}")
    parser.add_argument("--all", action="store_true", help="every method module")
    parser.add_argument("--diff", action="store_true", help="show each survivor's diff")
    parser.add_argument("--keep", type=Path, help="scratch directory to use and keep")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="mutant names or globs to run")
    parser.add_argument(
        "--report-only", action="store_true", help="report the --keep dir's results, run nothing"
    )
    parser.add_argument(
        "--then",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="later --keep directories whose runs of a function replace the earlier results of "
        "that function (e.g. a rerun with new tests)",
    )
    args = parser.parse_args(argv)
    if args.report_only and not args.keep:
        parser.error("--report-only reads the results of a --keep directory")
    modules = list(MODULES) if args.all else args.modules
    if not modules:
        parser.error("name modules (e.g. losses schedule) or --all")
    where = args.keep or Path(tempfile.mkdtemp(prefix="ganx-mutmut-"))
    if not (where / "pyproject.toml").exists():
        where.mkdir(parents=True, exist_ok=True)
        scratch_copy(modules, where)
    if not args.report_only:
        command = [sys.executable, "-m", "mutmut", "run", "--max-children", "1"]
        subprocess.run(command + (args.only or []), cwd=where)
    statuses = merged([where, *args.then]) if args.then else results(where)
    report(statuses, modules)
    if args.diff:
        for name in sorted(n for n, s in statuses.items() if s in ("survived", "no tests")):
            subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=where)
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
