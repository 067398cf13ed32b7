PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_AUDIO := src/mung/data/demo_ami_EN2001a.ogg
DEMO_OUT := demo-output
MUSIC_CLIP := ../shared/data/music-4q/audio/MT0000082187.ogg

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mung diarize $(DEMO_AUDIO) --out $(DEMO_OUT) --plot --html --force --print
	@echo "RTTM, timeline PNG, results page ($(DEMO_OUT)/index.html; mung view $(DEMO_OUT)) and resolved config written to $(DEMO_OUT)/"
	@if [ -f $(MUSIC_CLIP) ]; then $(BIN)/mung music tag $(MUSIC_CLIP); \
	else echo "(music demo skipped: $(MUSIC_CLIP) not found; no music audio ships in the repo)"; fi

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/diarization.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
