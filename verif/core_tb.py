"""cocotb bench of one NeuronCore (top ``core_bench``: the core and its HDL DRAM model).

``test_register_map``
    Every register of :func:`ncore.hw.core.core_regs` through cocotbext-axi's
    ``AxiLiteMaster``: reset values (ID, parameters, status idle, RW inits), read/write of
    the RW registers, SLVERR for unmapped offsets with nothing changed.

``test_programs``
    Runs the cases in ``$NCORE_CASES`` (a pickle written by the pytest side: a list of dicts
    with ``dram`` (uint8 image), ``base``, ``length``, ``pause``, ``err`` (base, size),
    ``watchdog``, ``sbuf_entries``, ``psum_entries``, ``dram_bytes`` to read back,
    ``max_cycles``) one after the other, with no Python in the per-cycle loop while a program
    runs: preload DRAM through the backdoor, program the registers, START, await ``irq``,
    read STATUS, the error registers and every counter, soft-reset after an error, and read
    DRAM, SBUF and PSUM back. The results go to ``$NCORE_RESULTS`` (a pickle); the pytest
    side compares them with the golden ISS.
"""

from __future__ import annotations

import os
import pickle
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from ..hw.core import (
    CORE_ID,
    COUNTERS,
    CTRL_SOFT_RESET,
    CTRL_START,
    RO,
    RW,
    core_regs,
    params_words,
)
from .benchenv import BenchEnv, cycles_now, start_clock

_BD_IN = ("bd_addr", "bd_we", "bd_wdata", "pause", "err_base", "err_size")


async def setup_bench(dut, inputs=_BD_IN + ("dbg_en", "dbg_psum", "dbg_addr")):
    """Drive ``inputs`` and the AXI4-Lite slave's inputs to 0, reset, and attach an
    ``AxiLiteMaster`` to ``s_axil_*``; returns ``(BenchEnv, master)``."""
    env = BenchEnv.load()
    for name in inputs:
        getattr(dut, name).value = 0
    for name in ("awprot", "arprot", "awaddr", "araddr", "wdata", "wstrb", "awvalid",
                 "arvalid", "wvalid", "bready", "rready"):  # fmt: skip
        getattr(dut, f"s_axil_{name}").value = 0
    await start_clock(dut)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    return env, master


_setup = setup_bench


class Regs:
    """Named access to a core's registers (its window starts at byte ``base``)."""

    def __init__(self, master, params, base: int = 0):
        self.master = master
        self.base = base
        self.map = {r.name: r for r in core_regs(params)}

    async def read(self, name):
        r = await self.master.read(self.base + self.map[name].offset, 4)
        assert r.resp == AxiResp.OKAY, name
        return int.from_bytes(r.data, "little")

    async def write(self, name, value):
        offset = self.base + self.map[name].offset
        w = await self.master.write(offset, int(value).to_bytes(4, "little"))
        assert w.resp == AxiResp.OKAY, name

    async def outcome(self, clk) -> dict:
        """After a program: STATUS, the error registers, IRQ_STATUS and every counter; then
        clear the IRQ and, after an error, soft-reset (``after_reset``: STATUS after it)."""
        status = await self.read("status")
        res = {
            "status": status,
            "err_addr": await self.read("err_addr") | await self.read("err_addr_hi") << 32,
            "err_index": await self.read("err_index"),
            "irq_status": await self.read("irq_status"),
            "counters": await self.counters(),
        }
        await self.write("irq_status", 3)
        if status & 8:  # error: soft reset, which must return the core to idle
            await self.write("ctrl", CTRL_SOFT_RESET)
            for _ in range(1000):
                if await self.read("status") == 1:
                    break
                await ClockCycles(clk, 8)
            res["after_reset"] = await self.read("status")
        return res

    async def counters(self) -> dict:
        out = {}
        for name, width, _ in COUNTERS:
            if width == 64:
                out[name] = await self.read(f"{name}_lo") | await self.read(f"{name}_hi") << 32
            else:
                out[name] = await self.read(name)
        return out


@cocotb.test()
async def test_register_map(dut):
    env, master = await _setup(dut)
    p = env.params
    regs = core_regs(p)
    w0, w1 = params_words(p)
    fixed = {"id": CORE_ID, "params0": w0, "params1": w1, "status": 1}  # idle
    for r in regs:
        got = await master.read(r.offset, 4)
        assert got.resp == AxiResp.OKAY, r.name
        value = int.from_bytes(got.data, "little")
        expect = fixed.get(r.name, r.init if r.access == RW else 0)
        assert value == expect, f"{r.name}: {value:#x} != {expect:#x}"
    rng = np.random.default_rng(env.seed)
    for r in regs:
        if r.access != RW:
            continue
        word = int(rng.integers(0, 2**32))
        await master.write(r.offset, word.to_bytes(4, "little"))
        got = int.from_bytes((await master.read(r.offset, 4)).data, "little")
        assert got == word, r.name
        await master.write(r.offset, r.init.to_bytes(4, "little"))
    mapped = {r.offset for r in regs}
    before = [int.from_bytes((await master.read(r.offset, 4)).data, "little") for r in regs
              if r.access == RW]  # fmt: skip
    for off in [o for o in range(0, 256, 4) if o not in mapped][:12]:
        rd = await master.read(off, 4)
        assert rd.resp == AxiResp.SLVERR and rd.data == b"\0\0\0\0", hex(off)
        wr = await master.write(off, b"\xff\xff\xff\xff")
        assert wr.resp == AxiResp.SLVERR, hex(off)
    after = [int.from_bytes((await master.read(r.offset, 4)).data, "little") for r in regs
             if r.access == RW]  # fmt: skip
    assert before == after
    assert all(r.access in (RO, RW) or r.name in ("ctrl", "irq_status") for r in regs)


async def _bd_write(dut, image: np.ndarray, nb: int) -> None:
    words = image.reshape(-1, nb)
    dut.bd_we.value = 1
    for i, w in enumerate(words):
        dut.bd_addr.value = i
        dut.bd_wdata.value = int.from_bytes(w.tobytes(), "little")
        await RisingEdge(dut.clk)
    dut.bd_we.value = 0


async def _bd_read(dut, nbytes: int, nb: int) -> np.ndarray:
    out = bytearray()
    n = nbytes // nb
    for i in range(n + 1):
        if i < n:
            dut.bd_addr.value = i
        await RisingEdge(dut.clk)
        if i:
            out += dut.bd_rdata.value.to_unsigned().to_bytes(nb, "little")
    return np.frombuffer(bytes(out), dtype=np.uint8)


async def _dbg_read(dut, psum: bool, entries: int, lanes: int, width: int) -> np.ndarray:
    out = np.zeros((entries, lanes), dtype=np.uint64)
    port = dut.dbg_psum_data if psum else dut.dbg_sbuf_data
    dut.dbg_psum.value = int(psum)
    mask = (1 << width) - 1
    for i in range(entries + 1):
        dut.dbg_en.value = int(i < entries)
        dut.dbg_addr.value = min(i, entries - 1)
        await RisingEdge(dut.clk)
        if i:
            v = port.value.to_unsigned()
            out[i - 1] = [(v >> (width * k)) & mask for k in range(lanes)]
    dut.dbg_en.value = 0
    return out.T  # partition-major, as the golden model


@cocotb.test()
async def test_programs(dut):
    env, master = await _setup(dut)
    p = env.params
    regs = Regs(master, p)
    with open(os.environ["NCORE_CASES"], "rb") as f:
        cases = pickle.load(f)
    nb = p.axi_data_width // 8
    results = []
    written = 0  # DRAM bytes the previous case may have touched
    for case in cases:
        image = np.zeros(max(len(case["dram"]), written), dtype=np.uint8)
        image[: len(case["dram"])] = case["dram"]
        image = np.pad(image, (0, -len(image) % nb))
        await _bd_write(dut, image, nb)
        written = len(image)
        dut.pause.value = case.get("pause", 0)
        eb, es = case.get("err", (0, 0))
        dut.err_base.value, dut.err_size.value = eb, es
        await regs.write("prog_base", case["base"] & 0xFFFF_FFFF)
        await regs.write("prog_base_hi", case["base"] >> 32)
        await regs.write("prog_len", case["length"])
        await regs.write("watchdog", case.get("watchdog", 64))
        await regs.write("irq_status", 3)
        t0 = cycles_now()
        w0 = time.perf_counter()
        await regs.write("ctrl", CTRL_START)
        if not dut.irq.value:
            await with_timeout(RisingEdge(dut.irq), case["max_cycles"] * 10, "ns")
        wall = cycles_now() - t0
        run_s = time.perf_counter() - w0
        res = await regs.outcome(dut.clk)
        status = res["status"]
        res["wall_cycles"] = wall
        res["run_s"] = run_s  # host seconds from START to the IRQ (the simulation rate)
        dut.pause.value = 0
        dut.err_size.value = 0
        res["dram"] = await _bd_read(dut, case["dram_bytes"], nb)
        res["sbuf"] = await _dbg_read(dut, False, case["sbuf_entries"], p.rows, p.lane_width)
        res["psum"] = await _dbg_read(dut, True, case["psum_entries"], p.cols, 32)
        results.append(res)
        dut._log.info(
            "case %s: status %#x, %d cycles", case.get("name", len(results)), status, wall
        )
    with open(os.environ["NCORE_RESULTS"], "wb") as f:
        pickle.dump(results, f)
    env.write_summary({"cases": len(results)})
