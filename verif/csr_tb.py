"""cocotb bench of the AXI4-Lite register file (top ``csr``, the demo register table).

Through cocotbext-axi's ``AxiLiteMaster``: reset values, read/write with byte strobes,
read-only inputs, write-one-to-pulse (the pulse is seen on the port), write-one-to-clear
against hardware sets, and SLVERR for unmapped offsets (reads and writes), with nothing
changed by a rejected write. Every expectation comes from the register table.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from ..hw.csr import RO, RW, W1C, W1P, demo_regs
from .benchenv import BenchEnv, start_clock

REGS = {r.name: r for r in demo_regs()}


async def _setup(dut):
    env = BenchEnv.load()
    dut.i_id.value = 0xC0DE_0001
    dut.i_counter.value = 0
    dut.i_irq_set.value = 0
    for name in ("awprot", "arprot", "awaddr", "araddr", "wdata", "wstrb"):
        getattr(dut, f"s_axil_{name}").value = 0
    for name in ("awvalid", "arvalid", "wvalid", "bready", "rready"):
        getattr(dut, f"s_axil_{name}").value = 0
    await start_clock(dut)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    return env, master


async def _read(master, offset):
    r = await master.read(offset, 4)
    return int.from_bytes(r.data, "little"), r.resp


@cocotb.test()
async def test_reset_values_and_access_kinds(dut):
    env, master = await _setup(dut)
    rng = np.random.default_rng(env.seed)
    for r in demo_regs():
        value, resp = await _read(master, r.offset)
        assert resp == AxiResp.OKAY, r.name
        expect = {RO: 0xC0DE_0001 if r.name == "id" else 0, RW: r.init, W1P: 0, W1C: r.init}
        assert value == expect[r.access], f"{r.name}: {value:#x}"
    # RW with byte strobes.
    for _ in range(10):
        word = int(rng.integers(0, 2**32))
        strb = int(rng.integers(1, 16))
        old, _ = await _read(master, REGS["scratch"].offset)
        data = word.to_bytes(4, "little")
        await master.write_dword(REGS["scratch"].offset, word) if strb == 15 else None
        if strb != 15:
            # cocotbext writes the bytes it is given: a partial write is a byte-range write.
            lo = (strb & -strb).bit_length() - 1
            hi = strb.bit_length()
            await master.write(REGS["scratch"].offset + lo, data[lo:hi])
            m = sum(0xFF << (8 * i) for i in range(lo, hi))
            word = (old & ~m) | (word & m)
        value, _ = await _read(master, REGS["scratch"].offset)
        assert value == word, (hex(value), hex(word), strb)
    # RO follows the hardware input.
    dut.i_counter.value = 0xDEAD_BEEF
    await RisingEdge(dut.clk)
    assert (await _read(master, REGS["counter"].offset))[0] == 0xDEAD_BEEF


@cocotb.test()
async def test_pulse_and_clear(dut):
    env, master = await _setup(dut)
    seen = []

    async def watch():
        while True:
            await RisingEdge(dut.clk)
            v = dut.o_ctrl.value.to_unsigned()
            if v:
                seen.append(v)

    cocotb.start_soon(watch())
    await master.write_dword(REGS["ctrl"].offset, 0x5)
    for _ in range(3):
        await RisingEdge(dut.clk)
    assert seen == [0x5], seen  # exactly one cycle
    # W1C: hardware sets bits, software clears the ones it writes.
    dut.i_irq_set.value = 0b1011
    await RisingEdge(dut.clk)
    dut.i_irq_set.value = 0
    await RisingEdge(dut.clk)
    assert (await _read(master, REGS["irq"].offset))[0] == 0b1011
    await master.write_dword(REGS["irq"].offset, 0b0010)
    assert (await _read(master, REGS["irq"].offset))[0] == 0b1001
    assert dut.o_irq.value.to_unsigned() == 0b1001


@cocotb.test()
async def test_unmapped_is_slverr_and_changes_nothing(dut):
    env, master = await _setup(dut)
    before = [(await _read(master, r.offset))[0] for r in demo_regs() if r.access != RO]
    for offset in (0x014, 0x0FC, 0x104, 0xFFC):
        value, resp = await _read(master, offset)
        assert resp == AxiResp.SLVERR and value == 0, hex(offset)
        w = await master.write(offset, b"\xff\xff\xff\xff")
        assert w.resp == AxiResp.SLVERR, hex(offset)
    after = [(await _read(master, r.offset))[0] for r in demo_regs() if r.access != RO]
    assert before == after
