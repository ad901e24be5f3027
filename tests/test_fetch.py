# amaranth: UnusedElaboratable=no
"""Instruction fetch against the HDL AXI memory, in the Amaranth simulator."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from amsim import simulate
from ncore.hw.fetch import Fetch
from ncore.params import NCoreParams
from ncore.verif.axi_ram_model import SimAxiRam

SIZE = 1 << 14


class Bench(wiring.Component):
    def __init__(self, p):
        self.fetch = Fetch(p, queue_depth=8)
        self.ram = SimAxiRam(addr_width=p.axi_addr_width, data_width=p.axi_data_width,
                             id_width=4, size_bytes=SIZE)  # fmt: skip
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch, m.submodules.ram = self.fetch, self.ram
        wiring.connect(m, self.fetch.axi, self.ram.axi)
        return m


def run(p, base, length, *, pause=0, err=None, ready_rate=1.0, stop_after=None, seed=0):
    rng = np.random.default_rng(seed)
    dut = Bench(p)
    nb = p.axi_data_width // 8
    image = rng.integers(0, 256, SIZE, dtype=np.uint8)
    got, ars = [], []
    state = {}

    async def tb(ctx):
        for w in range(SIZE // nb):
            ctx.set(dut.ram.bd_addr, w)
            ctx.set(
                dut.ram.bd_wdata, int.from_bytes(image[w * nb : (w + 1) * nb].tobytes(), "little")
            )
            ctx.set(dut.ram.bd_we, 1)
            await ctx.tick()
        ctx.set(dut.ram.bd_we, 0)
        ctx.set(dut.ram.pause, pause)
        if err:
            ctx.set(dut.ram.err_base, err[0])
            ctx.set(dut.ram.err_size, err[1])
        ctx.set(dut.fetch.base, base)
        ctx.set(dut.fetch.length, length)
        ctx.set(dut.fetch.start, 1)
        await ctx.tick()
        ctx.set(dut.fetch.start, 0)
        for _ in range(length * 40 + 200):
            ready = rng.random() < ready_rate
            ctx.set(dut.fetch.o_instr.ready, ready)
            if stop_after is not None and len(got) >= stop_after:
                ctx.set(dut.fetch.stop, 1)
            if ctx.get(dut.fetch.axi.ar.valid) and ctx.get(dut.fetch.axi.ar.ready):
                ars.append(
                    (ctx.get(dut.fetch.axi.ar.payload.addr), ctx.get(dut.fetch.axi.ar.payload.len))
                )
            if ready and ctx.get(dut.fetch.o_instr.valid):
                pay = ctx.get(dut.fetch.o_instr.payload)
                got.append((int(pay.index), int(pay.word)))
            await ctx.tick()
            if not ctx.get(dut.fetch.busy) and len(got) >= length:
                break
        ctx.set(dut.fetch.stop, 0)
        state["error"] = ctx.get(dut.fetch.error)
        state["error_addr"] = ctx.get(dut.fetch.error_addr)
        state["busy"] = ctx.get(dut.fetch.busy)

    simulate(dut, tb)
    want = [int.from_bytes(image[base + 64 * i : base + 64 * (i + 1)].tobytes(), "little")
            for i in range(length)]  # fmt: skip
    for addr, ln in ars:  # never across 4 KiB
        assert addr % 4096 + (ln + 1) * nb <= 4096, (hex(addr), ln)
    return got, want, state  # fmt: skip


@pytest.mark.parametrize("width", [128, 64, 512])
@pytest.mark.parametrize("pause,ready_rate", [(0, 1.0), (100, 0.6)])
def test_fetch_program(width, pause, ready_rate):
    p = NCoreParams(axi_data_width=width)
    base = 4096 - 3 * 64  # bursts must split at the page boundary
    got, want, state = run(p, base, 23, pause=pause, ready_rate=ready_rate, seed=width)
    assert [i for i, _ in got] == list(range(23))
    assert [w for _, w in got] == want
    assert not state["error"] and not state["busy"]


def test_fetch_error_stops_at_the_failing_instruction():
    p = NCoreParams()
    base = 1024
    # Instruction 9 lies in the error window (its second beat answers SLVERR; the memory
    # answers read beats one by one), so fetch delivers 0…8 and fails at instruction 9.
    got, want, state = run(p, base, 20, err=(base + 64 * 9 + 16, 8), pause=60)
    assert [i for i, _ in got] == list(range(9))
    assert [w for _, w in got] == want[:9]
    assert state["error"] and state["error_addr"] == base + 64 * 9 and not state["busy"]


def test_stop_drains_and_goes_idle():
    p = NCoreParams()
    got, want, state = run(p, 0, 30, stop_after=5, pause=40)
    assert [w for _, w in got] == want[: len(got)] and len(got) < 30
    assert not state["busy"] and not state["error"]
