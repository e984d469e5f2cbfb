# geosal. Every target creates .venv and installs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENE ?= ../shared/data/scenes/manila_oam_10cm.tif

.PHONY: install demo test bench bench-pipeline bench-dask train evaluate evaluate-gpu clean

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

evaluate: $(STAMP)  ## layers + KAR/ROAR, 3 retraining seeds (about 3.1 hours on 2 cores; resumable)
	$(BIN)/python -m workflows.evaluate

evaluate-gpu: $(STAMP)  ## the larger protocol on a CUDA GPU: ResNet-18 at 128 px, 5 seeds, every protocol
	$(BIN)/python -m workflows.evaluate --device cuda --results results/ucmerced-gpu --cache runs/evaluate-cache-gpu \
		--protocol all --network resnet18 --image-size 128 --saliency-size 0 --epochs 40 --retrain-seeds 0,1,2,3,4 \
		--layer-seeds 0,1,2 --eval-per-class 0 --saliency-batch 64

clean:
	rm -rf $(VENV) out
