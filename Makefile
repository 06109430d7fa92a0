# Two entry points: `make run` (the app) and `make test` (the test suite).
# Each creates .venv from requirements.txt when it is missing or stale.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test smoke bench

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) app.py

test: $(VENV)/.installed
	$(PY) -m pytest

smoke: $(VENV)/.installed
	$(PY) -m train.train --dataset ../shared/data/fer2013 --epochs 1 --limit-train 2000 --out runs/smoke

bench: $(VENV)/.installed
	$(PY) bench/train_throughput.py
	$(PY) bench/latency.py
	$(PY) bench/roofline.py
	$(PY) bench/load.py
