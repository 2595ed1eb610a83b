# One command to set up, one to run the main job, one to test. See README.md.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup demo prepare test test-browser release check-release clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

prepare: setup
	$(BIN)/course prepare

demo: setup
	$(BIN)/course demo --json out/demo.json

test: setup
	$(BIN)/python -m pytest

# Only the real-browser tests (JupyterLab + Debian chromium via Playwright; `make test` runs them too).
test-browser: setup
	$(BIN)/python -m pytest -m browser -rP tests/test_browser.py

release: setup
	$(BIN)/course release

# Regenerate release/ from source/ and fail if the committed release/ differs.
check-release: release
	git diff --exit-code --stat -- release/

clean:
	rm -rf $(VENV) out
