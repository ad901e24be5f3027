"""cocotb benches of the DMA engine + SBUF on generated Verilog, on Icarus and Verilator.

Each configuration has its own ``params.tag()`` (rows/cols/dtypes), so its generated
Verilog and simulator builds never share a folder with another configuration's.
"""

import pytest

from ncore.params import NCoreParams
from ncore.verif.runner import run_bench

CONFIGS = {
    # 8 partitions, 16-byte bus: 2 sub-banks, 16-lane chunks; int8 only.
    "r8-b128": NCoreParams(rows=8, cols=4, sbuf_depth=256),
    # 4 partitions with 16-bit lanes (bf16), 8-byte bus, 2-byte elements.
    "r4-b64-bf16": NCoreParams(
        rows=4, cols=2, sbuf_depth=128, axi_data_width=64, dtypes=("int8", "bf16")
    ),
    # Non-power-of-two rows (unused partition codes), 32-byte bus, 8 sub-banks.
    "r3-b256": NCoreParams(rows=3, cols=3, sbuf_depth=128, axi_data_width=256),
}
SLOW_CONFIGS = {
    # Wide array (chunks narrower than the bank period), 64-bit addresses, fp16 lanes.
    "r32-b128-fp16": NCoreParams(
        rows=32, cols=2, sbuf_depth=32, axi_addr_width=64, dtypes=("int8", "fp16")
    ),
}
ALL_CONFIGS = {**CONFIGS, **SLOW_CONFIGS}


def _run(sim, p, seed, **knobs):
    env = {"NCORE_SEED": seed, **knobs}
    result = run_bench("dma", p, sim, test_module="ncore.verif.dma_tb", top="dma", env=env)
    assert result["total"] == 3 and result["failed"] == 0, result
    summary = result["summary"]
    # Every error code was produced (and checked) by the error test.
    assert len(summary["error_codes_seen"]) == 11, summary["error_codes_seen"]
    return summary


@pytest.mark.sim
@pytest.mark.parametrize("name", CONFIGS)
def test_dma(sim, name, seed):
    s = seed(500 + len(name))
    # Icarus is about ten times slower than Verilator: fewer and shorter random transfers.
    knobs = {
        "NCORE_DESCS": 30 if sim == "icarus" else 120,
        "NCORE_MAX_ELEMS": 600 if sim == "icarus" else 2048,
        "NCORE_BENCH_BYTES": 2048 if sim == "icarus" else 8192,
    }
    _run(sim, CONFIGS[name], s, **knobs)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_dma_sweep(sim, name, seed):
    s = seed(900 + len(name))
    knobs = {"NCORE_DESCS": 150 if sim == "icarus" else 1000, "NCORE_MAX_ELEMS": 4096}
    _run(sim, ALL_CONFIGS[name], s, **knobs)
