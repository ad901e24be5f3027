# ncore — the Makefile only names workflows; the work is done by scripts/ and the ncore CLI.
#
#   make sim      the digits CNN on the chip (Verilator), summary [ROWS COLS DTYPES DTYPE SEED WAVES SIM]
#   make verilog  write Verilog + params.json under build/   [ROWS COLS DTYPES CORES TOP OUT]
#   make test     the regression, both simulators            [SEED SIMS JOBS]
#   make lint     ruff + verilator --lint-only -Wall         [ROWS COLS DTYPES]
#   make bench    benchmark suite -> build/bench/results.json
#   make synth    Yosys + nextpnr-ecp5 (LFE5U-85F): cells, Fmax -> build/synth/results.json
#   make clean    remove build/
#
# Every target first runs scripts/setup.sh, which installs the Debian packages and the
# Python virtual environment (.venv) when they are missing.

VENV   := .venv
PY     := $(VENV)/bin/python
NCORE  := $(PY) -m ncore.scripts.ncore
JOBS   ?= 2

# Generator parameters, passed on only when given.
PARAMS = $(if $(CORES),--cores $(CORES)) $(if $(ROWS),--rows $(ROWS)) \
         $(if $(COLS),--cols $(COLS)) $(if $(DTYPES),--dtypes $(DTYPES)) \
         $(if $(SBUF_DEPTH),--sbuf-depth $(SBUF_DEPTH)) $(if $(PSUM_DEPTH),--psum-depth $(PSUM_DEPTH))

.PHONY: setup sim verilog test test-all lint bench clean

setup:
	@bash scripts/setup.sh

sim: setup
	@$(NCORE) sim $(PARAMS) $(if $(DTYPE),--dtype $(DTYPE)) $(if $(SEED),--seed $(SEED)) \
	  $(if $(SIM),--sim $(SIM)) $(if $(filter 1 yes true,$(WAVES)),--waves)

verilog: setup
	@$(NCORE) verilog $(PARAMS) $(if $(TOP),--top $(TOP)) $(if $(OUT),-o $(OUT))

test: setup
	@$(PY) -m pytest -n $(JOBS) -m "not slow" $(if $(SEED),--seed $(SEED)) $(if $(SIMS),--sims $(SIMS))

test-all: setup
	@$(PY) -m pytest -n $(JOBS) $(if $(SEED),--seed $(SEED)) $(if $(SIMS),--sims $(SIMS))

lint: setup
	@$(NCORE) lint $(PARAMS)

bench: setup
	@$(PY) -m ncore.scripts.bench

synth: setup
	@$(PY) -m ncore.scripts.synth

clean:
	rm -rf build
