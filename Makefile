# Django p99 Lab.  `make lab`: set up and open JupyterLab.  `make test`: set up and run
# the whole suite.  `make run`: execute every notebook headless into build/ (QUICK=1
# for the short CI-sized runs).  Set-up is idempotent: pip runs again only when
# requirements.txt changed (or the venv is gone).

SHELL := /bin/sh
VENV  := .venv
VPY   := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

# The Python that creates the venv: PYTHON=... wins; otherwise the first of these that
# is 3.12 or newer (pyenv shims honour .python-version, which asks for 3.12).
PYTHON_CANDIDATES := python3.12 python3.13 python3.14 python3 python

# PIP_ARGS: extra pip options, e.g. an offline venue:
#   make wheels                  (at home, online: downloads every pinned wheel to wheels/)
#   make lab PIP_ARGS="--no-index --find-links wheels"   (at the venue, offline)
PIP_ARGS ?=

.PHONY: lab test run setup wheels clean-venv

# Jupyter refuses root unless told; containers and CI machines often are root.
lab: setup
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

test: setup
	$(VPY) -m pytest tests

run: setup
	$(VPY) -m lessons run $(if $(QUICK),--quick,)

setup: $(STAMP)

$(STAMP): requirements.txt
	@py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for c in $(PYTHON_CANDIDATES); do \
	    if $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then py=$$c; break; fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "No Python 3.12 or newer was found: install one (python.org, 'brew install python@3.12', 'apt install python3.12 python3.12-venv' or 'pyenv install 3.12') and run make again, or point at it with 'make PYTHON=/path/to/python3.12 ...'." >&2; \
	  exit 1; \
	fi; \
	if [ ! -x $(VPY) ] || ! $(VPY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	  echo "Creating $(VENV) with $$($$py -c 'import sys; print(sys.executable, sys.version.split()[0])')"; \
	  rm -rf $(VENV) && $$py -m venv $(VENV) || exit 1; \
	fi
	$(VPY) -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) -r requirements.txt
	$(VPY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "django_p99_lab.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	@touch $(STAMP)

wheels: setup
	$(VPY) -m pip download --disable-pip-version-check -r requirements.txt -d wheels

clean-venv:
	rm -rf $(VENV)
