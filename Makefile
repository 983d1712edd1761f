# The two commands of the README. Each creates and fills its own virtualenv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo example test setup system-deps lint clean model ultralytics-env bench-results bench-soak

# Ultralytics (training, export, the peer in benchmarks) needs torch; it lives in its own
# environment so the engine never does. torch 2.14.1 / torchvision 0.29.1 run on the CPU.
TRAIN_VENV ?= .venv-train

$(BIN)/lookout: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench,cluster]'
	touch $@

setup: $(BIN)/lookout

## demo: the whole engine on rendered incidents with the bundled model (no network)
demo: setup
	$(BIN)/lookout demo

## example: the example config (shared assets), or MODEL=... SOURCE=... [CLASSES=...]
example: setup
ifdef MODEL
	$(BIN)/lookout run --source $(SOURCE) --model $(MODEL) --classes $(or $(CLASSES),person) --fast
else
	$(BIN)/lookout run configs/example.yaml --fast
endif

# What the tests need from the system: ffmpeg, GStreamer's RTSP server with its Python bindings
# for /usr/bin/python3 (live ingest), and Chromium with its driver (the web console test).
# Debian packages, installed once with apt-get.
SYSTEM_PACKAGES := ffmpeg gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gir1.2-gstreamer-1.0 python3-gi \
  chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-deps:
	@if command -v ffmpeg >/dev/null && command -v chromedriver >/dev/null && \
	  /usr/bin/python3 -c "import gi; \
	  gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer" \
	  2>/dev/null; then echo "system packages: present"; else \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y \
	  -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; fi

## test: lint, then the whole test suite (installs ffmpeg and the GStreamer RTSP server if missing)
test: setup system-deps ultralytics-env lint
	$(BIN)/pytest -q

$(TRAIN_VENV)/bin/lookout: pyproject.toml setup.py
	$(PYTHON) -m venv $(TRAIN_VENV)
	$(TRAIN_VENV)/bin/pip install --quiet --upgrade pip
	$(TRAIN_VENV)/bin/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(TRAIN_VENV)/bin/pip install --quiet -e '.[export]'
	touch $@

## ultralytics-env: the environment with Ultralytics and torch (export, training, peers)
ultralytics-env: $(TRAIN_VENV)/bin/lookout

## model: reproduce models/lookout_sim_yolo11n.onnx: renders, COCO128 mixed in, fine-tuned from
## COCO YOLO11n (the shared assets' ONNX export), about 2 hours on 2 cores (see its card)
INIT_ONNX ?= $(ASSETS)/models/yolo11n_coco_320.onnx
COCO128 ?= $(ASSETS)/eval/coco128
model: setup ultralytics-env
	rm -rf runs/sim_dataset
	$(BIN)/python -m models.sim_detector.dataset --out runs/sim_dataset --train 320 --val 24 \
	  --per-scene 4 --real $(COCO128)
	YOLO_OFFLINE=1 $(TRAIN_VENV)/bin/python -m models.sim_detector.train \
	  --data runs/sim_dataset/data.yaml --init $(INIT_ONNX) --calibrate $(COCO128)/images \
	  --imgsz 480 --epochs 100 --time-h 1.75 --close-mosaic 3 --out models
	$(BIN)/lookout bench sim-model --json runs/sim_model_bench.json
	$(BIN)/python -m models.sim_detector.card --model models/lookout_sim_yolo11n.onnx \
	  --bench runs/sim_model_bench.json --train-summary runs/sim_detector/train_summary.json \
	  --dataset-summary runs/sim_dataset/summary.json

## bench-results: regenerate bench/results/ (shared footage and models; about 15 minutes)
ASSETS ?= ../shared/assets
RESULTS := bench/results
bench-results: setup ultralytics-env
	$(BIN)/lookout --log-level WARNING bench run $(ASSETS)/footage/intel_one-by-one-person-detection.mp4 \
	  $(ASSETS)/footage/intel_car-detection.mp4 --model $(ASSETS)/models/yolo11n_coco_320_dynbatch.onnx \
	  --streams 4 --spin --peers --out $(RESULTS)/run-yolo11n-320
	$(BIN)/lookout --log-level WARNING bench streams --json $(RESULTS)/streams.json

## bench-soak: the 30-minute soak (4 streams, worker faults, reloads) into bench/results/
bench-soak: setup
	$(BIN)/lookout --log-level WARNING bench soak --minutes 30 --json $(RESULTS)/soak.json

## lint: ruff (lint and format check) and mypy over engine, bench, models and setup.py; `make test` runs it first
lint: setup
	$(BIN)/ruff check engine bench tests models setup.py
	$(BIN)/ruff format --check engine bench tests models setup.py
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
