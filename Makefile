PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_AUDIO := src/mung/data/demo_ami_EN2001a.ogg
DEMO_OUT := demo-output

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mung diarize $(DEMO_AUDIO) --out $(DEMO_OUT) --plot --force --print
	@echo "RTTM and timeline PNG written to $(DEMO_OUT)/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/diarization.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
