"""cocotb benches of the vector engine on generated Verilog, on Icarus and Verilator.

Two designs: an FP build with 3 lanes (rows 3, cols 2: lanes = max) and an int-only build
with 4 lanes, which flags every FP configuration as an error. Each runs the whole bench:
latency and rate, and four random programs (stalls × backpressure).
"""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench

DESIGNS = {
    "fp-3lanes": NCoreParams(rows=3, cols=2, dtypes=("int8", "fp16", "bf16")),
    "int-4lanes": NCoreParams(rows=4, cols=4, dtypes=("int8",)),
}


@pytest.mark.sim
@pytest.mark.parametrize("name", DESIGNS)
def test_vector_engine(sim, name, seed):
    p = DESIGNS[name]
    s = seed(700 + len(name))
    # Icarus runs several times slower than Verilator: shorter programs.
    icarus = sim == "icarus"
    knobs = {
        "NCORE_SEED": s,
        "NCORE_ROWS": 60 if icarus else 400,
        "NCORE_RATE_ROWS": 32 if icarus else 128,
    }
    result = run_bench(
        "vector_engine",
        p,
        sim,
        test_module="ncore.verif.vector_engine_tb",
        top="vector_engine",
        env=knobs,
    )
    assert result["total"] == 5 and result["failed"] == 0, result
    summary = result["summary"]
    assert summary["rows_per_cycle"] == 1.0
    assert summary["latency"] == (20 if p.has_fp else 13)
