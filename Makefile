# Every target creates/uses .venv, so a fresh clone needs only python3 (>= 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test serve bench bench-quick bench-monitor clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	# uv is a registry wheel (no download at run time); fall back to pip if it is unavailable.
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev,names,chdb,postgres]' || $(PY) -m pip install --quiet -e '.[dev,names,chdb,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tracesieve demo

test: $(STAMP)
	$(PY) -m pytest -q

serve: $(STAMP)
	$(VENV)/bin/tracesieve serve

# Benchmarks (not tests): tracesieve vs MLflow on the same traces, ratios measured in one run.
bench: $(STAMP)
	$(PY) -m bench.run $(BENCH_ARGS)
	$(PY) -m bench.judges_bench
	$(PY) -m bench.calibration_bench
	$(PY) -m bench.analysis_bench

bench-quick: $(STAMP)
	$(PY) -m bench.run --quick

# Monitors: false-alarm rate on stable traffic and detection delay of a seeded 10-point drop.
bench-monitor: $(STAMP)
	$(PY) -m bench.monitor_bench

clean:
	rm -rf $(VENV) .tracesieve .pytest_cache
