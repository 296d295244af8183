# Django p99 Lab.  `make lab`: set up and open JupyterLab.  `make test`: set up and run
# the whole suite.  `make run`: execute every notebook headless into build/ (QUICK=1
# for the short CI-sized runs).  Set-up is idempotent: the install runs again only when
# requirements.txt or pyproject.toml changed (or the venv is gone).  It installs the
# pinned requirements and this checkout as an editable project (`pip install -r
# requirements.txt -e .`), so `lessons` imports from any directory, as it does for anyone
# who runs that pip command (or conda's environment.yml) in an environment of their own.

SHELL := /bin/sh
VENV  := .venv
VPY   := $(VENV)/bin/python
# One stamp per PYTHON asked for, so `make test PYTHON=python3.13` rebuilds a 3.12 venv.
STAMP := $(VENV)/.requirements-installed$(if $(PYTHON),-$(subst /,_,$(PYTHON)))

# The Python that creates the venv: PYTHON=... wins; otherwise the first of these that
# is 3.12 or newer (pyenv shims honour .python-version, which asks for 3.12).
PYTHON_CANDIDATES := python3.12 python3.13 python3.14 python3 python

# PIP_ARGS: extra pip options, e.g. an offline venue:
#   make wheels                  (at home, online: downloads every pinned wheel, and the
#                                 build backend pyproject.toml names, to wheels/)
#   make lab PIP_ARGS="--no-index --find-links wheels"   (at the venue, offline)
PIP_ARGS ?=

# The installer: uv installs exactly the same pins as pip (same `pip freeze`) in a fraction
# of pip's time (~160 s on a 2-core VM), so it is the default; it is installed into the
# venv with pip (which honours pip.conf), pinned here.  --compile-bytecode writes the .pyc
# files as pip does: without them, under PYTHONDONTWRITEBYTECODE=1 (set on the 2-core VM
# this lab is tested on), every server and kernel compiled Django from source at each start, and
# lazy imports inside a measured request were timed.  uv does not read pip.conf: when it
# cannot reach an index, pip installs the pins instead.  INSTALLER=pip skips uv altogether.
INSTALLER ?= uv
UV := uv==0.13.9

.PHONY: lab test run setup wheels clean-venv

# Jupyter refuses root unless told; containers and CI machines often are root.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Two phases: tests that start labs and servers but time nothing run two at a time, each
# pytest worker with a LAB_HOME of its own; then, alone on the machine, the tests marked
# `measures` (the notebooks' checkpoints, the load generator's timings), whose ratios
# need both cores quiet.
# The second phase runs even when the first failed, so one run shows every failure.
test: setup
	status=0; \
	$(VPY) -m pytest tests -n 2 -m "not measures" || status=$$?; \
	$(VPY) -m pytest tests -m measures || status=$$?; \
	exit $$status

run: setup
	$(VPY) -m lessons run $(if $(QUICK),--quick,)

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@py="$(PYTHON)"; \
	if [ -n "$$py" ]; then \
	  if ! $$py -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	    echo "PYTHON=$$py does not run or is older than 3.12: point it at a Python 3.12 or newer, e.g. 'make PYTHON=/usr/bin/python3.13 ...' (with pyenv: 'make PYTHON=\$$(pyenv prefix 3.13.0)/bin/python ...')." >&2; \
	    exit 1; \
	  fi; \
	else \
	  for c in $(PYTHON_CANDIDATES); do \
	    if $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then py=$$c; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "No Python 3.12 or newer was found: install one (python.org, 'brew install python@3.12', 'apt install python3.12 python3.12-venv' or 'pyenv install 3.12') and run make again, or point at it with 'make PYTHON=/path/to/python3.12 ...'." >&2; \
	  exit 1; \
	fi; \
	if [ -n "$(PYTHON)" ] && [ -x $(VPY) ] && \
	   [ "$$($(VPY) -c 'import sys; print(sys.version_info[:2])')" != "$$($$py -c 'import sys; print(sys.version_info[:2])')" ]; then \
	  echo "Replacing $(VENV) ($$($(VPY) -V)): PYTHON=$(PYTHON) is $$($$py -V)"; rm -rf $(VENV); \
	fi; \
	if [ ! -x $(VPY) ] || ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	  echo "Creating $(VENV) with $$($$py -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	  rm -rf $(VENV) && $$py -m venv $(VENV) || exit 1; \
	fi
	@if [ "$(INSTALLER)" = uv ] && $(VPY) -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) $(UV) && \
	   $(VPY) -m uv pip install --quiet --compile-bytecode --python $(VPY) $(PIP_ARGS) -r requirements.txt -e . ; then \
	  echo "Installed requirements.txt and this checkout (editable) with $(UV)"; \
	else \
	  if [ "$(INSTALLER)" = uv ]; then echo "uv could not install the pins (see above); pip installs them instead, more slowly." >&2; fi; \
	  echo "$(VPY) -m pip install $(PIP_ARGS) -r requirements.txt -e ."; \
	  $(VPY) -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) -r requirements.txt -e . || exit 1; \
	fi
	@# Venvs made before pyproject.toml had a hand-written .pth for the checkout: gone.
	@$(VPY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "django_p99_lab.pth").unlink(missing_ok=True)'
	@touch $(STAMP)

wheels: setup
	$(VPY) -m pip download --disable-pip-version-check -d wheels -r requirements.txt $(UV) \
	  $$($(VPY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"])')

clean-venv:
	rm -rf $(VENV)
