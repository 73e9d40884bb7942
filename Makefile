# mobileml-book: `make book` runs the whole book as a pipeline, `make test` runs the tests.
# Both create .venv on first use and reuse it afterwards (the install is skipped while
# .venv/.installed is newer than requirements.lock, setup.py and settings.ini).
SHELL   := /bin/bash
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
BIN     := $(VENV)/bin
PROFILE ?= full
RUN     ?= runs/book-$(PROFILE)
STAMP   := $(VENV)/.installed

.PHONY: book folder-book test lab bench bench-sweep goals serve venv export clean-nbs readme lock sync clean-runs

$(STAMP): requirements.lock setup.py settings.ini
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"mobileml-book needs Python 3.11, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned environment into $(VENV) (first time only; about 5 GB) ..."
	@start=$$(date +%s); \
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock && \
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . && \
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mobileml-book)" >/dev/null && \
	$(BIN)/pip check && \
	echo "installed in $$(( $$(date +%s) - start )) s; venv size $$(du -sh $(VENV) | cut -f1)"
	@touch $(STAMP)

venv: $(STAMP)

## the whole book as a pipeline (full profile by default; `make book PROFILE=quick` for a fast look)
book: $(STAMP)
	$(BIN)/mobileml-book run --profile $(PROFILE) --out $(RUN) --resume

## the whole book (full profile) on a team-like folder of photos: 10 classes of 100 crops of scikit-image's sample
## photos, each corrupted as phone photos are (`mobileml-book sample-folder`); `make goals` reads it for the
## goal about a team's own photos
FOLDER ?= runs/team-photos
folder-book: $(STAMP)
	$(BIN)/mobileml-book sample-folder $(FOLDER) --per-class 100
	$(BIN)/mobileml-book run --profile full -p source=folder:$(FOLDER) --out runs/folder-full --resume

## nbdev_test over every notebook, then pytest over tests/
## (one notebook at a time: the chapters are a chain over runs/standalone, and two in parallel raced: chapter 03 read
##  the student chapter 02 was still training)
test: $(STAMP)
	$(BIN)/nbdev_test --n_workers 1 --timing
	$(BIN)/pytest -q tests

## JupyterLab on the book
lab: $(STAMP)
	$(BIN)/jupyter lab nbs $(if $(filter 0,$(shell id -u)),--allow-root)

## time a whole run per chapter against the budgets (quick: 450 s; `make bench PROFILE=full`: 1800 s)
bench: $(STAMP)
	$(BIN)/mobileml-book bench --profile $(if $(filter command line,$(origin PROFILE)),$(PROFILE),$(or $(BENCH_PROFILE),quick))

## a sweep against separate runs, and its overhead (GRID=sweeps/bench.yaml; sweeps/int8-recipes.yaml for the reuse goal)
bench-sweep: $(STAMP)
	$(BIN)/mobileml-book sweep-bench $(or $(GRID),sweeps/bench.yaml) --out runs/sweep-bench

## the full profile's goals (accuracy, size, speed) against what `make book` measured (and `make folder-book`)
goals: $(STAMP)
	$(BIN)/mobileml-book goals runs/book-$(PROFILE) --folder-run runs/folder-full

## chapter 05's model-delivery service over a run's signed bundles (PORT=8765)
serve: $(STAMP)
	$(BIN)/mobileml-book serve $(RUN) --port $(or $(PORT),8765)

export: $(STAMP)
	$(BIN)/nbdev_export
clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean
## README.md from nbs/index.ipynb: nbdev_readme where Quarto is installed, nbdev's processing + nbconvert otherwise
readme: $(STAMP)
	@if command -v quarto >/dev/null; then $(BIN)/nbdev_readme; else $(BIN)/mobileml-book readme; fi
## what to run before every commit: export the library, clean the notebooks, regenerate README
sync: export clean-nbs readme

## re-resolve requirements.in into requirements.lock (in a scratch venv; review the diff)
lock:
	rm -rf /tmp/mobileml-lock && $(PYTHON) -m venv /tmp/mobileml-lock
	/tmp/mobileml-lock/bin/pip install --quiet torch==2.13.0 -r requirements.in
	( sed -n '1,3p' requirements.lock; /tmp/mobileml-lock/bin/pip freeze --all --exclude-editable ) > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean-runs:
	rm -rf runs

## the book as a website in _docs/: nbdev_docs where Quarto is installed, Sphinx + MyST-NB otherwise (offline).
## It shows the executed chapters of DOCS_RUN (default: the latest finished `make book` run, else a quick run of its own).
.PHONY: docs
docs: $(STAMP)
	$(BIN)/mobileml-book docs -- $(if $(DOCS_RUN),--run $(DOCS_RUN))
