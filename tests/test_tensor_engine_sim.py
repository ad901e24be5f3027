"""cocotb benches of the tensor engine on generated Verilog, on Icarus and Verilator.

Every shape runs the whole bench (latency/rate, double-buffered sequence, four random
stall/backpressure mixes); FP designs mix int8, fp16 and bf16 MATMULs at run time.
"""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench

INT8 = ("int8",)
ALL = ("int8", "fp16", "bf16")
DESIGNS = [
    (1, 1, INT8),
    (4, 4, INT8),
    (8, 8, INT8),
    (16, 4, INT8),
    (3, 7, INT8),
    (4, 4, ALL),
    (8, 8, ALL),
    (2, 3, ("bf16",)),
    (3, 2, ("int8", "fp16")),
]


@pytest.mark.sim
@pytest.mark.parametrize(
    "rows,cols,dtypes", DESIGNS, ids=[f"{r}x{c}-{'_'.join(d)}" for r, c, d in DESIGNS]
)
def test_tensor_engine(sim, rows, cols, dtypes, seed):
    p = NCoreParams(rows=rows, cols=cols, dtypes=dtypes)
    s = seed(1000 + rows * 17 + cols + 100 * len(dtypes))
    # Icarus runs ~10× slower than Verilator: give it fewer, shorter MATMULs.
    icarus = sim == "icarus"
    knobs = {
        "NCORE_SEED": s,
        "NCORE_DTYPES": ",".join(dtypes),
        "NCORE_TILES": 4 if icarus else 8,
        "NCORE_MAX_M": 16 if icarus else 64,
        "NCORE_RATE_M": 32 if icarus else 128,
    }
    result = run_bench(
        "tensor_engine", p, sim, test_module="ncore.verif.tensor_engine_tb", env=knobs
    )
    assert result["total"] == 6 and result["failed"] == 0, result
    summary = result["summary"]
    assert summary["rows_per_cycle"] == 1.0


SWEEP = [(16, 16, ALL), (32, 8, INT8), (8, 32, ("int8", "bf16")), (5, 3, ALL)]


@pytest.mark.slow
@pytest.mark.sim
@pytest.mark.parametrize(
    "rows,cols,dtypes", SWEEP, ids=[f"{r}x{c}-{'_'.join(d)}" for r, c, d in SWEEP]
)
@pytest.mark.parametrize("sweep_seed", [1, 2, 3])
def test_tensor_engine_sweep(sim, rows, cols, dtypes, sweep_seed, seed):
    """Longer random sweep (make test-all): bigger and odd shapes, more and longer MATMULs."""
    p = NCoreParams(rows=rows, cols=cols, dtypes=dtypes)
    s = seed(7000 + 100 * sweep_seed + rows + cols)
    knobs = {
        "NCORE_SEED": s,
        "NCORE_DTYPES": ",".join(dtypes),
        "NCORE_TILES": 12,
        "NCORE_MAX_M": 48 if sim == "icarus" else 200,
        "NCORE_RATE_M": 64 if sim == "icarus" else 256,
    }
    result = run_bench(
        "tensor_engine", p, sim, test_module="ncore.verif.tensor_engine_tb", env=knobs
    )
    assert result["total"] == 6 and result["failed"] == 0, result
