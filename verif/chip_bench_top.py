"""Bench top of the chip: :class:`ncore.hw.chip.Chip` and its DRAM (:class:`SimAxiRam`).

Simulation only, like :mod:`ncore.verif.core_bench_top`: the chip's AXI4 master talks to
the HDL memory model, the bench preloads DRAM through ``bd_*``, programs the cores through
the host port (``s_axil_*``, the chip's memory map), waits for ``irq`` and reads DRAM and
every core's SBUF/PSUM back (``bd_*``, ``dbg_core`` + ``dbg_*``). ``pause`` and
``err_base``/``err_size`` as on :class:`SimAxiRam`.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..hw.chip import Chip
from ..hw.dma_bench_top import connect_flat_axi
from ..params import NCoreParams
from .axi_ram_model import bench_dram

__all__ = ["ChipBenchTop"]


class ChipBenchTop(wiring.Component):
    def __init__(self, params: NCoreParams, *, dram_bytes: int = 1 << 16, **options):
        self._p = params
        self.chip = Chip(params, **options)
        id_width = self.chip.ic.signature.members["down"].signature.id_width
        self.ram = bench_dram(params, id_width, dram_bytes)
        members = {}
        for name, member in self.chip.signature.members.items():
            if not name.startswith("m_axi_"):
                members[name] = member
        for name, member in self.ram.signature.members.items():
            if name != "axi":
                members[name] = member
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._p

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = self.chip
        m.submodules.ram = ram = self.ram
        for name, member in self.signature.members.items():
            inner = (
                getattr(chip, name)
                if hasattr(chip, name)
                and name not in ("pause", "err_base", "err_size")
                and not name.startswith("bd_")
                else getattr(ram, name)
            )
            port = getattr(self, name)
            m.d.comb += inner.eq(port) if member.flow == In else port.eq(inner)
        connect_flat_axi(m, ram.axi, chip)  # the memory answers the chip's m_axi_* ports
        return m
