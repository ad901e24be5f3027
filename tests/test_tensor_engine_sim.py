"""cocotb benches of the tensor engine on generated Verilog, on Icarus and Verilator."""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench

SHAPES = [(1, 1), (4, 4), (8, 8), (16, 4), (3, 7)]


@pytest.mark.sim
@pytest.mark.parametrize("rows,cols", SHAPES, ids=[f"{r}x{c}" for r, c in SHAPES])
def test_tensor_engine(sim, rows, cols, seed):
    p = NCoreParams(rows=rows, cols=cols)
    s = seed(1000 + rows * 17 + cols)
    # Icarus runs ~10× slower than Verilator: give it fewer, shorter MATMULs.
    knobs = {
        "NCORE_SEED": s,
        "NCORE_TILES": 4 if sim == "icarus" else 8,
        "NCORE_MAX_M": 24 if sim == "icarus" else 64,
    }
    result = run_bench(
        "tensor_engine", p, sim, test_module="ncore.verif.tensor_engine_tb", env=knobs
    )
    assert result["total"] == 6 and result["failed"] == 0, result
    summary = result["summary"]
    assert summary["rows_per_cycle"] == 1.0
