"""cocotb bench of the chip (top ``chip_bench``: the chip and its HDL DRAM).

``test_register_map``: the chip registers and every core window through the host port
(reset values, IRQ mask read/write, SLVERR outside the map).

``test_programs``: the cases of ``$NCORE_CASES``, each a DRAM image and one program (or
None) per core. All cores are started, the bench waits until every started core has raised
its IRQ (no Python per cycle meanwhile), reads each core's STATUS, error registers and
counters, soft-resets the cores that failed, and reads DRAM and every core's SBUF/PSUM
back; the results (per core) go to ``$NCORE_RESULTS`` for the pytest side to compare with
the golden model.
"""

from __future__ import annotations

import os
import pickle
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiResp

from ..hw.chip import CHIP_ID, CORE_BASE, CORE_STRIDE, chip_regs
from ..hw.core import CORE_ID, CTRL_START
from .benchenv import cycles_now
from .core_tb import _BD_IN, Regs, _bd_read, _bd_write, setup_bench


async def _setup(dut):
    return await setup_bench(dut, _BD_IN + ("dbg_en", "dbg_psum", "dbg_addr", "dbg_core"))


class ChipRegs:
    """The chip's registers (``core=None``) and every core's window."""

    def __init__(self, master, params):
        self.master = master
        self.chip = {r.name: r for r in chip_regs(params)}
        self.cores = [Regs(master, params, CORE_BASE + c * CORE_STRIDE)
                      for c in range(params.cores)]  # fmt: skip

    async def read(self, name, core=None):
        if core is not None:
            return await self.cores[core].read(name)
        r = await self.master.read(self.chip[name].offset, 4)
        assert r.resp == AxiResp.OKAY, name
        return int.from_bytes(r.data, "little")

    async def write(self, name, value, core=None):
        if core is not None:
            return await self.cores[core].write(name, value)
        w = await self.master.write(self.chip[name].offset, int(value).to_bytes(4, "little"))
        assert w.resp == AxiResp.OKAY, name

    async def counters(self, core) -> dict:
        return await self.cores[core].counters()


@cocotb.test()
async def test_register_map(dut):
    env, master = await _setup(dut)
    p = env.params
    regs = ChipRegs(master, p)
    assert await regs.read("id") == CHIP_ID
    assert await regs.read("cores") == p.cores
    assert await regs.read("irq_mask") == (1 << p.cores) - 1
    assert await regs.read("core_base") == CORE_BASE
    c0 = await regs.read("cycles_lo")
    await ClockCycles(dut.clk, 50)
    assert await regs.read("cycles_lo") - c0 >= 50
    for c in range(p.cores):
        assert await regs.read("id", c) == CORE_ID
        assert await regs.read("status", c) == 1
        await regs.write("prog_len", 100 + c, c)
    for c in range(p.cores):  # windows are separate
        assert await regs.read("prog_len", c) == 100 + c
    await regs.write("irq_mask", 0b1)
    assert await regs.read("irq_mask") == 0b1
    for off in (0x0FFC, CORE_BASE + p.cores * CORE_STRIDE, 0xFFFC, CORE_BASE + 0xF0):
        rd = await master.read(off, 4)
        assert rd.resp == AxiResp.SLVERR and rd.data == b"\0\0\0\0", hex(off)
        wr = await master.write(off, b"\xff\xff\xff\xff")
        assert wr.resp == AxiResp.SLVERR, hex(off)


async def _dbg_read(dut, core, psum, entries, lanes, width):
    out = np.zeros((entries, lanes), dtype=np.uint64)
    port = dut.dbg_psum_data if psum else dut.dbg_sbuf_data
    dut.dbg_core.value = core
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
    return out.T


@cocotb.test()
async def test_programs(dut):
    env, master = await _setup(dut)
    p = env.params
    regs = ChipRegs(master, p)
    with open(os.environ["NCORE_CASES"], "rb") as f:
        cases = pickle.load(f)
    nb = p.axi_data_width // 8
    results = []
    written = 0
    for case in cases:
        image = np.zeros(max(len(case["dram"]), written), dtype=np.uint8)
        image[: len(case["dram"])] = case["dram"]
        image = np.pad(image, (0, -len(image) % nb))
        await _bd_write(dut, image, nb)
        written = len(image)
        dut.pause.value = case.get("pause", 0)
        eb, es = case.get("err", (0, 0))
        dut.err_base.value, dut.err_size.value = eb, es
        started = [c for c, prog in enumerate(case["programs"]) if prog is not None]
        for c in started:
            base, length = case["programs"][c]
            await regs.write("prog_base", base & 0xFFFF_FFFF, c)
            await regs.write("prog_base_hi", base >> 32, c)
            await regs.write("prog_len", length, c)
            await regs.write("irq_status", 3, c)
        t0 = cycles_now()
        w0 = time.perf_counter()
        started_at = {}
        for c in started:
            started_at[c] = cycles_now() - t0  # the register write lands about now
            await regs.write("ctrl", CTRL_START, c)
        want = sum(1 << c for c in started)
        polls, progress = 0, os.environ.get("NCORE_PROGRESS")
        while True:
            if (await regs.read("irq_status")) & want == want:
                break
            if cycles_now() - t0 > case["max_cycles"]:
                raise AssertionError(f"case {case.get('name')}: cores did not finish")
            await ClockCycles(dut.clk, 200)
            polls += 1
            if progress and polls % 50 == 0:  # for the caller's progress bar
                with open(progress, "a") as f:
                    f.write(f"{cycles_now() - t0}\n")
        run_s = time.perf_counter() - w0
        wall = cycles_now() - t0
        per_core = []
        for c in range(p.cores):
            if c not in started:
                per_core.append(None)
                continue
            per_core.append(await regs.cores[c].outcome(dut.clk))
        dut.pause.value = 0
        dut.err_size.value = 0
        # The run's length: from the first core's START to the last core's end, by the
        # cores' own cycle counters (the bench polls the IRQ every 200 cycles).
        end = max(started_at[c] - started_at[started[0]] + per_core[c]["counters"]["cycles"]
                  for c in started)  # fmt: skip
        res = {"cores": per_core, "wall_cycles": end, "poll_cycles": wall, "run_s": run_s}
        res["dram"] = await _bd_read(dut, case["dram_bytes"], nb)
        res["sbuf"] = [await _dbg_read(dut, c, False, case["sbuf_entries"], p.rows, p.lane_width)
                       for c in range(p.cores)]  # fmt: skip
        res["psum"] = [await _dbg_read(dut, c, True, case["psum_entries"], p.cols, 32)
                       for c in range(p.cores)]  # fmt: skip
        results.append(res)
        dut._log.info("case %s: %d cycles", case.get("name"), wall)
    with open(os.environ["NCORE_RESULTS"], "wb") as f:
        pickle.dump(results, f)
