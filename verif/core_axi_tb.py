"""cocotb bench of the NeuronCore's AXI4 master against cocotbext-axi's ``AxiRam``.

Top ``core`` (:class:`ncore.hw.core_top.CoreTop`, flat ``m_axi_*`` ports). Protocol stress
to complement the HDL memory of :mod:`ncore.verif.core_tb`: a different slave
implementation, with independent random pauses on all five channels. Runs the cases of
``$NCORE_CASES`` (as :mod:`ncore.verif.core_tb`; no error windows) and writes the same
results to ``$NCORE_RESULTS``. Python answers every beat here, so keep programs short.
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from ..hw.core import CTRL_START
from .benchenv import BenchEnv, cycles_now, start_clock
from .core_tb import Regs, _dbg_read


def _pauses(rng, prob):
    return (
        bool(x)
        for x in itertools.chain.from_iterable(rng.random(4096) < prob for _ in itertools.count())
    )


@cocotb.test()
async def test_programs_on_axiram(dut):
    env = BenchEnv.load()
    p = env.params
    for name in ("dbg_en", "dbg_psum", "dbg_addr"):
        getattr(dut, name).value = 0
    for name in ("awprot", "arprot", "awaddr", "araddr", "wdata", "wstrb"):
        getattr(dut, f"s_axil_{name}").value = 0
    for name in ("awvalid", "arvalid", "wvalid", "bready", "rready"):
        getattr(dut, f"s_axil_{name}").value = 0
    # AxiRam drives its outputs only when it responds: define them before the first edge.
    for name in ("awready", "wready", "bvalid", "bid", "bresp", "arready", "rvalid", "rid",
                 "rdata", "rresp", "rlast"):  # fmt: skip
        getattr(dut, f"m_axi_{name}").value = 0
    with open(os.environ["NCORE_CASES"], "rb") as f:
        cases = pickle.load(f)
    size = int(env.knob("dram_bytes", 1 << 16, int))
    await start_clock(dut)
    # After reset: AxiRam samples RREADY/BREADY from the first edge on, and Icarus shows
    # the core's combinational outputs as X until time 0 has settled.
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=size)
    logging.getLogger(f"cocotb.{dut._name}.m_axi").setLevel(logging.ERROR)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.ERROR)
    regs = Regs(master, p)
    rng = np.random.default_rng(env.seed)
    results = []
    for case in cases:
        ram.mem[:size] = bytes(size)
        ram.write(0, bytes(case["dram"]))
        prob = case.get("pause", 0) / 256
        for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                   ram.read_if.ar_channel, ram.read_if.r_channel):  # fmt: skip
            ch.set_pause_generator(_pauses(rng, prob) if prob else None)
        await regs.write("prog_base", case["base"] & 0xFFFF_FFFF)
        await regs.write("prog_base_hi", case["base"] >> 32)
        await regs.write("prog_len", case["length"])
        await regs.write("irq_status", 3)
        t0 = cycles_now()
        await regs.write("ctrl", CTRL_START)
        if not dut.irq.value:
            await with_timeout(RisingEdge(dut.irq), case["max_cycles"] * 10, "ns")
        wall = cycles_now() - t0
        res = await regs.outcome(dut.clk)
        res["wall_cycles"] = wall
        status = res["status"]
        res["dram"] = np.frombuffer(ram.read(0, case["dram_bytes"]), dtype=np.uint8).copy()
        res["sbuf"] = await _dbg_read(dut, False, case["sbuf_entries"], p.rows, p.lane_width)
        res["psum"] = await _dbg_read(dut, True, case["psum_entries"], p.cols, 32)
        results.append(res)
        dut._log.info("case %s: status %#x", case.get("name"), status)
    with open(os.environ["NCORE_RESULTS"], "wb") as f:
        pickle.dump(results, f)
