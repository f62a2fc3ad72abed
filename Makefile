# vgh-book: `make book` builds the HTML book, `make test` runs every test and notebook.
# Each target creates the virtual environment .venv first when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# The exact test command that the README gives and .ci/run runs.
TEST_CMD := $(PY) -m pytest tests book --nbval --nbval-current-env \
            --nbval-sanitize-with tests/sanitize.cfg -p no:cacheprovider

.PHONY: help venv book test lab student check clean clean-book

help:
	@echo "make book   build the HTML book into _build/html (executes every notebook)"
	@echo "make test   unit tests plus every notebook under nbval"
	@echo "make lab    JupyterLab with the book's kernel"
	@echo "make student  copies of the notebooks without solutions or outputs, in student/"
	@echo "make check  report whether the environment matches requirements.txt"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) .ci/check_python.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -m vghlib env --check
	@touch $(STAMP)

check: $(STAMP)
	@$(PY) -m vghlib env

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(TEST_CMD)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab book

student: $(STAMP)
	$(PY) -m vghlib student --src book --out student

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV)
