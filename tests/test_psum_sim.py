"""cocotb bench of PSUM on generated Verilog, on Icarus and Verilator: read-modify-write
hazards (back-to-back accumulates to one entry) in int32 and fp32, bit-exact vs golden."""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench

DESIGNS = [(4, ("int8",)), (3, ("int8", "fp16", "bf16"))]


@pytest.mark.sim
@pytest.mark.parametrize("cols,dtypes", DESIGNS, ids=[f"c{c}-{'_'.join(d)}" for c, d in DESIGNS])
def test_psum(sim, cols, dtypes, seed):
    p = NCoreParams(rows=2, cols=cols, dtypes=dtypes, psum_depth=16)
    s = seed(300 + cols)
    knobs = {"NCORE_SEED": s, "NCORE_REQUESTS": 120 if sim == "icarus" else 400, "NCORE_SPAN": 3}
    result = run_bench("psum", p, sim, top="psum", test_module="ncore.verif.psum_tb", env=knobs)
    assert result["total"] == 2 and result["failed"] == 0, result
