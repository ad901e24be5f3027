"""Bench top of one NeuronCore: the core, its DRAM (:class:`SimAxiRam`) and flat ports.

Simulation only. The core's AXI4 master talks to the HDL memory model, so a whole program
runs with no Python in the per-cycle loop: a bench preloads DRAM through the backdoor
(``bd_*``), writes the core's registers through the AXI4-Lite slave (``s_axil_*``, flat, as
cocotbext-axi's ``AxiLiteBus.from_prefix(dut, "s_axil")`` expects), waits for ``irq`` and
reads DRAM, SBUF and PSUM back (``bd_*``, ``dbg_*``).

Ports: ``s_axil_*``, ``irq``, ``dbg_en``/``dbg_psum``/``dbg_addr`` → ``dbg_sbuf_data``/
``dbg_psum_data`` (one cycle later; lane ``k`` at bits ``k·width``), ``bd_addr``/``bd_we``/
``bd_wdata``/``bd_rdata`` (one bus word per cycle), ``pause`` (random AXI stalls, 0…255 of
256) and ``err_base``/``err_size`` (a window answering SLVERR).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..hw.core import NeuronCore
from ..hw.core_top import alone
from ..params import NCoreParams
from .axi_ram_model import bench_dram

__all__ = ["CoreBenchTop"]


class CoreBenchTop(wiring.Component):
    """NeuronCore + SimAxiRam with flat ports (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
    dram_bytes : int
        Size of the memory model (addresses at or beyond it answer DECERR).
    **options
        Passed to :class:`ncore.hw.core.NeuronCore`.
    """

    def __init__(self, params: NCoreParams, *, dram_bytes: int = 1 << 20, **options):
        self._p = params
        self.core = NeuronCore(params, **options)
        id_width = self.core.axi.signature.id_width
        self.ram = bench_dram(params, id_width, dram_bytes)
        members = {}
        for name, member in self.core.signature.members.items():
            if name.startswith("s_axil_") or name == "irq":
                members[name] = member
        dbg = self.core.signature.members["dbg"].signature  # as the core sees it
        for name, member in dbg.members.items():
            members[f"dbg_{name}"] = (In if member.flow == In else Out)(member.shape)
        for name, member in self.ram.signature.members.items():
            if name != "axi":
                members[name] = member.flip().flip()
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._p

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        alone(m, core, self._p)
        m.submodules.ram = ram = self.ram
        wiring.connect(m, core.axi, ram.axi)
        for name, member in self.signature.members.items():
            if name.startswith("s_axil_") or name == "irq":
                port, inner = getattr(self, name), getattr(core, name)
            elif name.startswith("dbg_"):
                port, inner = getattr(self, name), getattr(core.dbg, name[4:])
            else:
                port, inner = getattr(self, name), getattr(ram, name)
            if member.flow == In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)
        return m
