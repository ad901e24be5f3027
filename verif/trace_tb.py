"""Instruction trace of one program on the core (Icarus only: it reads internal wires).

For performance work and the cycle model's calibration: runs the first case of
``$NCORE_CASES`` like :mod:`ncore.verif.core_tb` and records, per instruction, the cycle it
started (left its queue) and the cycle it completed (its signal point; NOP/END complete as
they start), counted from the START write. Writes ``{"start": {index: cycle}, "done":
{index: cycle}, "cycles": total}`` to ``$NCORE_RESULTS``. Python samples every cycle, so
keep the program short.
"""

from __future__ import annotations

import os
import pickle

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from ..hw.core import CTRL_START
from .core_tb import Regs, _bd_write, _setup


@cocotb.test()
async def trace(dut):
    env, master = await _setup(dut)
    p = env.params
    regs = Regs(master, p)
    with open(os.environ["NCORE_CASES"], "rb") as f:
        case = pickle.load(f)[0]
    nb = p.axi_data_width // 8
    await _bd_write(dut, np.pad(case["dram"], (0, -len(case["dram"]) % nb)), nb)
    await regs.write("prog_base", case["base"])
    await regs.write("prog_len", case["length"])
    c = dut.core.core
    engines = (0, 1, 2, 3, 5, 6)  # golden.core.Engine numbers of the queues
    starts = [getattr(c, f"issue{i}") for i in engines]
    start_ix = [getattr(c, f"trace_start_index{i}") for i in engines]
    dones = [(getattr(c, f"trace_done_{n}"), getattr(c, f"trace_done_index_{n}"))
             for n in ("dma", "tensor", "vector", "send", "recv", "control")]  # fmt: skip
    await regs.write("ctrl", CTRL_START)
    start, done = {}, {}
    cycle = 0
    while True:
        await RisingEdge(dut.clk)
        await ReadOnly()
        cycle += 1
        for i in range(len(engines)):
            if starts[i].value == 1:
                start[int(start_ix[i].value)] = cycle
        for fires, ix in dones:
            if fires.value == 1:
                done[int(ix.value)] = cycle
        if dut.irq.value == 1 or cycle > case["max_cycles"]:
            break
    with open(os.environ["NCORE_RESULTS"], "wb") as f:
        pickle.dump({"start": start, "done": done, "cycles": cycle}, f)
