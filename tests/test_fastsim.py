"""The fast run path (``verif/fastsim.py``: the Verilated chip with a C++ DRAM and host, no
cocotb) on the default 4-core 8×8 chip, against the golden models bit for bit: random
programs on every core (DRAM, status, SBUF, PSUM, the retired counter against each core's
ISS, state carried from case to case), fault isolation (an illegal instruction on one core,
a DMA bus error on another: their STATUS and error registers, a clean soft reset, the other
cores unharmed), the pipelined MLP over the links against the chip ISS, and a data-parallel
GEMM against numpy and the chip ISS. One case also runs on the cocotb chip bench
(Verilator): every core's counters and the run's cycles must agree exactly (the C++ DRAM
reproduces the bench's HDL DRAM cycle for cycle).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_chip_sim import DRAM_BYTES, _golden, _programs

from ncore.golden import core as gcore
from ncore.golden import program as gp
from ncore.golden.chip import Chip
from ncore.isa import CoreError
from ncore.params import NCoreParams
from ncore.scripts.bench_chip import gemm_case
from ncore.verif.fastsim import run_chip_fast

P = NCoreParams()  # the default chip: 4 cores of 8×8, int8


def _compare_with_iss(cases, hw, gcores):
    """test_chip_sim's comparison: each core against its own ISS over the shared DRAM."""
    problems = []
    for case, h in zip(cases, hw, strict=True):
        dram, results, states = _golden(gcores, case["dram"], case["programs"])
        n = case["dram_bytes"]
        maybe = np.zeros(n, bool)
        for res in results:
            if res.dram_maybe is not None:
                maybe |= res.dram_maybe[:n]
        diff = (h["dram"][:n] != dram[:n]) & ~maybe
        if diff.any():
            problems.append(f"{case['name']}: DRAM differs at {int(diff.sum())} bytes")
        for c, (res, (sbuf, psum)) in enumerate(zip(results, states, strict=True)):
            hc = h["cores"][c]
            code = hc["status"] >> 8 & 15
            if res.ok:
                if hc["status"] & 0xF != 0b0101 or "after_reset" in hc:
                    problems.append(f"{case['name']} core {c}: status {hc['status']:#x}")
                if hc["counters"]["retired"] != sum(res.stats.retired.values()):
                    problems.append(f"{case['name']} core {c}: retired counter")
            else:
                if (code, hc["err_index"]) != (int(res.error), res.index):
                    problems.append(f"{case['name']} core {c}: error {code}@{hc['err_index']}, "
                                    f"expected {int(res.error)}@{res.index}")  # fmt: skip
                if res.error == CoreError.DMA and hc["err_addr"] != res.address:
                    problems.append(f"{case['name']} core {c}: err_addr {hc['err_addr']:#x}, "
                                    f"expected {res.address:#x}")  # fmt: skip
                if hc.get("after_reset") != 1:
                    problems.append(f"{case['name']} core {c}: not idle after the soft reset")
            if res.error in (CoreError.DMA, CoreError.SEM_OVERFLOW):
                continue  # engines not ordered against the fault may or may not have run
            if not np.array_equal(h["sbuf"][c], sbuf.astype(np.uint64)):
                problems.append(f"{case['name']} core {c}: SBUF differs")
            if not np.array_equal(h["psum"][c], psum.astype(np.uint64)):
                problems.append(f"{case['name']} core {c}: PSUM differs")
    return problems


def _random_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for name, faults in (("random", False), ("random-2", False), ("faults", True)):
        progs, image = _programs(P, rng, faults)
        cases.append({"name": name, "dram": image, "programs": progs, "max_cycles": 400_000,
                      "dram_bytes": len(image), "sbuf_entries": P.sbuf_depth,
                      "psum_entries": P.psum_depth})  # fmt: skip
    return cases


def test_fastsim_random_programs_and_faults(seed, tmp_path):
    cases = _random_cases(seed(910))
    hw = run_chip_fast(P, cases, dram_bytes=DRAM_BYTES, log=tmp_path / "fastsim.log")
    gcores = [gcore.Core(P, np.zeros(DRAM_BYTES, np.uint8)) for _ in range(P.cores)]
    problems = _compare_with_iss(cases, hw, gcores)
    assert not problems, "\n".join(problems[:20])
    faults = hw[2]["cores"]
    assert faults[1]["status"] >> 8 & 15 == CoreError.ILLEGAL_FIELD
    assert faults[2]["status"] >> 8 & 15 == CoreError.DMA
    assert faults[2]["err_addr"] >= DRAM_BYTES - 8  # the DMA load beyond the memory
    for c in (0, 3):
        assert faults[c]["status"] & 0xF == 0b0101 and "after_reset" not in faults[c]
    for h in hw:
        assert h["rate"] > 0 and h["sim_cycles"] >= h["wall_cycles"] > 0
        assert set(h["cores"][0]) == {"status", "err_addr", "err_index", "irq_status",
                                      "counters"}  # fmt: skip


def test_fastsim_gemm_and_mlp_pipeline(tmp_path):
    """A data-parallel GEMM (numpy and the chip ISS) and the MLP pipeline over the links
    (chip ISS), back to back on one chip."""
    case, parts, dram_bytes = gemm_case(P, 64, 64, 64, seed=11)
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (48, 8), dtype=np.int8)
    layers = []
    for _ in range(4):
        layers.append({"w": rng.integers(-128, 128, (8, 8), dtype=np.int8),
                       "scale": rng.integers(1, 4, 8), "shift": np.full(8, 12),
                       "bias": rng.integers(-500, 500, 8)})  # fmt: skip
    pipe = gp.mlp_pipeline(P, x, layers)
    mlp = {"name": "mlp-pipeline", "dram": pipe.dram, "programs": pipe.placed}
    size = max(dram_bytes, 1 << (len(pipe.dram) - 1).bit_length())
    cases = [case, mlp]
    hw = run_chip_fast(P, cases, dram_bytes=size, log=tmp_path / "fastsim.log")
    for c, d, h in zip(cases, (None, pipe), hw, strict=True):
        chip = Chip(P, np.zeros(size, np.uint8))
        chip.dram[: len(c["dram"])] = c["dram"]
        results = chip.run(c["programs"])
        n = len(h["dram"])
        assert np.array_equal(h["dram"], chip.dram[:n]), f"{c['name']}: DRAM differs"
        for k, (res, hc) in enumerate(zip(results, h["cores"], strict=True)):
            if c["programs"][k] is None:
                assert hc is None
                continue
            assert res.ok and hc["status"] & 0xF == 0b0101, (c["name"], k, hex(hc["status"]))
            assert hc["counters"]["retired"] == sum(res.stats.retired.values())
            sent, got = hc["counters"]["link_rows_sent"], hc["counters"]["link_rows_received"]
            assert (sent, got) == (res.stats.send_rows, res.stats.recv_rows)
        if d is not None:
            np.testing.assert_array_equal(d.outputs(h["dram"])["out"], d.expected["out"])
    for _, _, d in parts:
        np.testing.assert_array_equal(d.outputs(hw[0]["dram"])["C"], d.expected["C"])


def test_fastsim_rejects_pause():
    case = {"name": "x", "dram": np.zeros(64, np.uint8), "programs": [None] * P.cores,
            "pause": 10}  # fmt: skip
    with pytest.raises(ValueError, match="pause"):
        run_chip_fast(P, [case])


@pytest.mark.sim
def test_fastsim_cycles_match_cocotb_bench(tmp_path):
    """The same GEMM on the cocotb chip bench (Verilator, HDL DRAM) and on the fast path:
    the same DRAM, and every counter of every core equal (cycles included)."""
    from ncore.verif.core_run import run_chip_cases

    case, parts, dram_bytes = gemm_case(P, 64, 64, 64, seed=11)
    fast = run_chip_fast(P, [dict(case)], dram_bytes=dram_bytes, log=tmp_path / "fast.log")[0]
    ref = run_chip_cases(P, "verilator", [dict(case)], dram_bytes=dram_bytes,
                         log=tmp_path / "cocotb.log")[0]  # fmt: skip
    assert np.array_equal(fast["dram"], ref["dram"])
    assert [c["counters"] for c in fast["cores"]] == [c["counters"] for c in ref["cores"]]
    assert fast["wall_cycles"] == ref["wall_cycles"]
    print(
        f"fast path {fast['wall_cycles']} cycles at {fast['rate']:,.0f} cycles/s; cocotb "
        f"bench {ref['wall_cycles']} cycles at {ref['poll_cycles'] / ref['run_s']:,.0f}"
    )
