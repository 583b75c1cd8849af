# ganx: the two set-up commands are `make train` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# exact versions this project is tested with; pyproject.toml keeps ranges for other setups
PINS   := torch==2.14.1 torchvision==0.29.1 hydra-core==1.3.8 omegaconf==2.3.1 \
          torch-fidelity==0.4.0 tensorboard==2.21.0 \
          hydra-optuna-sweeper==1.3.0 optuna==2.10.1 sqlalchemy==2.1.9
# the optional trackers, exporters and data readers (extras mlflow, wandb, onnx, lsun), pinned,
# so `make test` runs their tests too
EXTRA_PINS := mlflow==3.17.2 mlflow-skinny==3.17.2 wandb==0.31.0 onnx==1.23.2 onnxscript==0.7.2 \
          onnxruntime==1.31.1 lmdb==2.3.0 mutmut==3.8.1
# the browser tests of `ganx-dirac serve` (Playwright drives Debian's chromium: .ci/run
# installs it; without it those tests are skipped, naming `apt-get install -y chromium`)
BROWSER_PINS := playwright==1.65.2 pytest-playwright==0.10.0
# the docs site (mkdocs.yml; `make test` builds it with --strict in tests/test_docs.py), with the
# Markdown extensions and the docstring reader it renders through
DOCS_PINS := mkdocs==1.6.1 mkdocs-material==9.8.2 mkdocstrings==1.0.8 mkdocstrings-python==2.0.11 \
          pymdown-extensions==13.1.2 mkdocs-autorefs==1.4.5 griffelib==2.4.1

.PHONY: venv train test test-fast lint format docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PINS) $(EXTRA_PINS) $(BROWSER_PINS) $(DOCS_PINS)
	$(PY) -m pip install -q -e '.[dev,all]'
	touch $@

venv: $(VENV)/.installed

# the default job: a small DCGAN on the embedded MNIST-5k digits (a few minutes on a CPU)
train: venv
	$(VENV)/bin/ganx-train $(ARGS)

# every test, the slow ones (SIGKILL/resume cycles, the strict docs build) included: what CI runs
test: venv
	$(PY) -m pytest -q

# the quick loop while developing: everything not marked slow, on every core (pytest-xdist)
test-fast: venv
	$(PY) -m pytest -q -m "not slow" -n auto

# the docs site into site/ (git-ignored), readable offline: open site/index.html
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: venv
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

format: venv
	$(VENV)/bin/ruff format src tests scripts
	$(VENV)/bin/ruff check --fix src tests scripts

clean:
	rm -rf $(VENV) outputs multirun site .pytest_cache .ruff_cache
