"""cocotb bench of the AXI4-Lite register file on Icarus and Verilator."""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench


@pytest.mark.sim
def test_csr(sim, seed):
    result = run_bench("csr", NCoreParams(), sim, top="csr", test_module="ncore.verif.csr_tb",
                       env={"NCORE_SEED": seed(77)})  # fmt: skip
    assert result["total"] == 3 and result["failed"] == 0, result
