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

.PHONY: help lint venv book book-offline offline-assets test test-browser lab student check clean clean-book

help:
	@echo "make book   build the HTML book into _build/html (executes every notebook)"
	@echo "make book-offline  the same book, serving MathJax and the widget embedder itself (needs npm),"
	@echo "            into its own folder, _build/offline-book/_build/html (make book does not touch it)"
	@echo "make test   ruff, unit tests, and every notebook under nbval"
	@echo "make test-fast  the unit tests only: no notebooks, no tests marked slow (about 35 s on 2 cores)"
	@echo "make lint   ruff check and ruff format --check"
	@echo "make test-browser  builds the offline book, then opens it in headless Chromium, page by page, with"
	@echo "            screenshots in _build/screenshots (python -m tools.browser; it refuses the online build)"
	@echo "make lab    JupyterLab with the book's kernel"
	@echo "make student  copies of the notebooks without solutions or outputs, in student/ (python -m tools.student)"
	@echo "make check  report whether the environment matches requirements.txt (python -m tools.requirements)"
	@echo "make slides  one reveal.js deck per session of the course into _build/slides (course/slides.yml; needs npm once)"
	@echo "make test-slides  the decks in headless Chromium, after planted defects (python -m tools.browser --slides)"
	@echo "make instructor  the answer key: the notebooks with every solution shown, in _build/instructor"
	@echo "make homework  course/homework/*.ipynb and course/rubrics/*.md from course/homework.yml"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) .ci/check_python.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@$(PY) -m tools.requirements --check
	@touch $(STAMP)

check: $(STAMP)
	@$(PY) -m tools.requirements

# The two builds write to two folders, so that neither replaces the other: `make book` to _build/html,
# `make book-offline` to $(OFFLINE_HTML) (jupyter-book --path-output P writes P/_build/html). Both
# execute the notebooks through the one cache of _config.yml (_build/.jupyter_cache, relative to
# this folder), so the two books show the same outputs and a notebook runs once for both.
HTML := _build/html
OFFLINE_BOOK := _build/offline-book
OFFLINE_HTML := $(OFFLINE_BOOK)/_build/html

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo
	@echo "The book is at $(CURDIR)/$(HTML)/index.html"

# ruff first (lint and format, settings in pyproject.toml): a few seconds, before the long run.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) lint
	$(TEST_CMD)

# The unit tests without those marked slow (subprocesses, pretraining, book builds, > ~5 s) and
# without the notebooks: a check to run while editing, not a replacement for `make test`.
.PHONY: test-fast
test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow" -p no:cacheprovider

# The offline book: pinned MathJax, ipywidgets embedder and RequireJS from npm (offline/package.json),
# laid out in one folder that tools/sphinxext.py adds to the build.
OFFLINE := _build/offline
OFFLINE_STATIC := $(OFFLINE)/static

offline-assets: $(OFFLINE)/.installed

$(OFFLINE)/.installed: offline/package.json offline/package-lock.json offline/require-baseurl.js
	@command -v npm >/dev/null || { echo "make book-offline needs npm (Debian: apt-get install npm)"; exit 1; }
	mkdir -p $(OFFLINE)
	cp offline/package.json offline/package-lock.json $(OFFLINE)/
	cd $(OFFLINE) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	rm -rf $(OFFLINE_STATIC) && mkdir -p $(OFFLINE_STATIC)/widgets
	cp -r $(OFFLINE)/node_modules/mathjax/es5 $(OFFLINE_STATIC)/mathjax
	cat $(OFFLINE)/node_modules/requirejs/require.js offline/require-baseurl.js > $(OFFLINE_STATIC)/widgets/require.min.js
	mkdir -p $(OFFLINE_STATIC)/widgets/@jupyter-widgets/html-manager/dist
	cp $(OFFLINE)/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js $(OFFLINE_STATIC)/widgets/
	cd $(OFFLINE)/node_modules/@jupyter-widgets/html-manager/dist && \
	  cp *.woff *.woff2 *.ttf *.eot *.svg ../../../../static/widgets/@jupyter-widgets/html-manager/dist/
	@touch $@

book-offline: $(STAMP) offline-assets
	VGH_OFFLINE_STATIC=$(abspath $(OFFLINE_STATIC)) $(VENV)/bin/jupyter-book build . \
	  --path-output $(OFFLINE_BOOK) --warningiserror --keep-going
	@echo
	@echo "The offline book is at $(CURDIR)/$(OFFLINE_HTML)/index.html"

# Builds the offline book, requires every browser check to catch a planted defect (--self-test),
# then checks every page of _toc.yml in $(OFFLINE_HTML) and one notebook in JupyterLab.
# Screenshots: _build/screenshots/. A folder that the offline build did not write is refused.
test-browser: book-offline
	VGH_OFFLINE_STATIC=$(abspath $(OFFLINE_STATIC)) $(PY) -m tools.browser --html $(OFFLINE_HTML) \
	  --self-test --lab book/part1/sf_vs_pd.ipynb

lab: $(STAMP)
	$(VENV)/bin/jupyter lab book

student: $(STAMP)
	$(PY) -m tools.student --src book --out student

# The teaching kit (book/teaching_kit.md): slide decks, the answer key, homework and rubrics.
SLIDES := _build/slides
.PHONY: slides test-slides instructor homework

slides: $(STAMP) offline-assets
	$(PY) -m tools.slides --out $(SLIDES)

test-slides: slides
	$(PY) -m tools.browser --self-test --slides $(SLIDES)

instructor: $(STAMP)
	$(PY) -m tools.instructor --src book --out _build/instructor

homework: $(STAMP)
	$(PY) -m tools.homework --write

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV)
