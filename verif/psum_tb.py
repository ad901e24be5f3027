"""cocotb bench of PSUM (top ``psum``): read-modify-write requests with colliding entries.

Random requests (overwrite, int32 accumulate, fp32 accumulate in FP builds; random masks;
entries drawn from a few so back-to-back hazards are constant) go in with random idle
cycles; afterwards every touched entry is read back through the read port and compared bit
for bit with :class:`ncore.golden.psum.Psum`. With no idle cycles, the bench also checks the
documented rate: a request stalls only behind an in-flight fp32 accumulate to its own entry
(whose sum exists only at the adder's output); everything else streams at one per cycle.

Knobs: ``NCORE_SEED``, ``NCORE_REQUESTS``, ``NCORE_SPAN`` (distinct entries used).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from ..golden.psum import ACC_FP, ACC_INT, OVERWRITE, Psum
from ..hw.psum import psum_write_latency, psum_write_layout
from .benchenv import BenchEnv, cycles_now, start_clock
from .streams import StreamDriver


def _requests(rng, p, n, span):
    modes = [OVERWRITE, ACC_INT, ACC_INT] + ([ACC_FP, ACC_FP] if p.has_fp else [])
    reqs = []
    for _ in range(n):
        mode = int(rng.choice(modes))
        if mode == ACC_FP or (p.has_fp and rng.random() < 0.3):
            vals = (rng.standard_normal(p.cols) * 4).astype(np.float32).view(np.uint32)
            special = rng.random(p.cols) < 0.05
            vals[special] = rng.choice(np.array([0x7F800000, 0xFF800000, 0x80000000, 1],
                                                dtype=np.uint32), special.sum())  # fmt: skip
        else:
            vals = rng.integers(0, 2**32, p.cols, dtype=np.uint64).astype(np.uint32)
        mask = (1 << p.cols) - 1 if rng.random() < 0.7 else int(rng.integers(0, 1 << p.cols))
        reqs.append((int(rng.integers(0, span)), vals, mask, mode))
    return reqs


class PsumTB:
    def __init__(self, dut, env: BenchEnv, stall: float):
        self.dut, self.env, self.p = dut, env, env.params
        self.rng = np.random.default_rng([env.seed, int(stall * 100)])
        self.writer = StreamDriver(dut, "i_write", psum_write_layout(self.p), dut.clk,
                                   self.rng, stall)  # fmt: skip
        dut.rd_addr.value = 0
        dut.rd_en.value = 0

    async def run(self, reqs):
        takes = []
        for addr, vals, mask, mode in reqs:
            await self.writer.send({"addr": addr, "data": [int(v) for v in vals],
                                    "mask": mask, "mode": mode})  # fmt: skip
            takes.append(cycles_now() - 1)
        while self.dut.busy.value:
            await RisingEdge(self.dut.clk)
        return takes

    async def read(self, addr):
        self.dut.rd_addr.value = addr
        self.dut.rd_en.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.rd_en.value = 0
        await RisingEdge(self.dut.clk)
        bits = self.dut.rd_data.value.to_unsigned()
        return [(bits >> (32 * c)) & 0xFFFFFFFF for c in range(self.p.cols)]

    async def check(self, reqs):
        golden = Psum(self.p)
        for addr, vals, mask, mode in reqs:
            golden.write(addr, vals, mask, mode)
        for addr in sorted({r[0] for r in reqs}):
            got = np.array(await self.read(addr), dtype=np.uint32)
            want = golden.read(addr)
            assert np.array_equal(got, want), (
                f"entry {addr}: got {[hex(v) for v in got]}, golden {[hex(v) for v in want]} "
                f"({self.env.rerun_hint()})"
            )


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.4])
async def test_random_requests(dut, stall):
    env = BenchEnv.load()
    tb = PsumTB(dut, env, stall)
    await start_clock(dut)
    reqs = _requests(
        tb.rng, tb.p, int(env.knob("requests", 200, int)), int(env.knob("span", 3, int))
    )
    takes = await tb.run(reqs)
    await tb.check(reqs)
    if stall == 0.0:
        gaps = np.diff(takes)
        lat = psum_write_latency(tb.p)
        for i, gap in enumerate(gaps, start=1):
            addr, _, _, mode = reqs[i]
            # A request waits behind an in-flight fp accumulate to its entry; nothing else.
            hazard = any(
                reqs[j][0] == addr and reqs[j][3] == ACC_FP and takes[i - 1] - takes[j] < lat - 1
                for j in range(max(0, i - lat), i)
            )
            if not hazard:
                assert gap == 1, f"request {i} (mode {mode}) stalled {gap - 1} cycles"
    env.write_summary({f"random_{stall}": "pass"})
