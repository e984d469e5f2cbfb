# geosal. Every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENE ?= ../shared/data/scenes/manila_oam_10cm.tif

.PHONY: install demo test bench bench-pipeline bench-dask train evaluate clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -r constraints.txt
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## the shipped model on a real 10 cm aerial scene, on a local Dask cluster
	$(BIN)/geosal run $(SCENE) out --overwrite

test: $(STAMP)  ## lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## SMOE cost against the forward pass and gradient methods
	$(BIN)/python -m workflows.bench_saliency

bench-pipeline: $(STAMP)  ## geosal end to end against a plain inference loop and a Grad-CAM loop (about 25 min)
	$(BIN)/python -m workflows.bench_pipeline compare
	$(BIN)/python -m workflows.bench_pipeline compare --tiny --native-size 0
	$(BIN)/python -m workflows.bench_pipeline breakdown
	$(BIN)/python -m workflows.bench_pipeline throughput
	$(BIN)/python -m workflows.bench_pipeline memory

bench-dask: $(STAMP)
	$(BIN)/python -m workflows.bench_dask tasks
	$(BIN)/python -m workflows.bench_dask layouts

train: $(STAMP)  ## retrain the shipped UC Merced model (about 90 minutes on 2 cores)
	$(BIN)/python -m workflows.train_ucmerced --export

evaluate: $(STAMP)  ## KAR/ROAR with retraining, ROAD, deletion/insertion (about 2 hours on 2 cores)
	$(BIN)/python -m workflows.evaluate

clean:
	rm -rf $(VENV) out
