"""The NeuronCore with flat, conventionally named ports: the top to take into a user's flow.

``m_axi_<channel><field>`` for the AXI4 master (``m_axi_arvalid``, ``m_axi_rdata``, …, as
cocotbext-axi's ``AxiBus.from_prefix(dut, "m_axi")`` and most vendor tools expect),
``s_axil_*`` for the AXI4-Lite register slave, ``irq``, and the debug read port as
``dbg_en``/``dbg_psum``/``dbg_addr`` → ``dbg_sbuf_data``/``dbg_psum_data``. The port list
is derived from :class:`ncore.hw.dma.AxiSignature`, so it cannot drift from the core.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .core import LINK_FIFO_DEPTH, NeuronCore
from .dma_bench_top import connect_flat_axi, flat_axi_members
from .link import link_layout
from .ring import LinkFifo

__all__ = ["CoreTop", "alone"]


def alone(m: Module, core: NeuronCore, params: NCoreParams) -> None:
    """Connect a core that has no chip around it: core 0, its link looped back through a
    FIFO (SEND feeds its own RECV), its barrier released at once."""
    m.submodules.link = link = LinkFifo(link_layout(params), LINK_FIFO_DEPTH)
    wiring.connect(m, core.link_out, link.i)
    wiring.connect(m, link.o, core.link_in)
    m.d.comb += [core.core_id.eq(0), core.barrier_go.eq(core.barrier_req)]


class CoreTop(wiring.Component):
    """:class:`NeuronCore` with flat ports (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
    **options
        Passed to :class:`NeuronCore`.
    """

    def __init__(self, params: NCoreParams, **options):
        self._p = params
        self.core = NeuronCore(params, **options)
        members = {}
        for name, member in self.core.signature.members.items():
            if name.startswith("s_axil_") or name == "irq":
                members[name] = member
        dbg = self.core.signature.members["dbg"].signature
        for name, member in dbg.members.items():
            members[f"dbg_{name}"] = (In if member.flow == In else Out)(member.shape)
        members.update(flat_axi_members(self.core.signature.members["axi"].signature))
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._p

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        alone(m, core, self._p)
        for name, member in self.signature.members.items():
            if name.startswith("s_axil_") or name == "irq":
                port, inner = getattr(self, name), getattr(core, name)
            elif name.startswith("dbg_"):
                port, inner = getattr(self, name), getattr(core.dbg, name[4:])
            else:
                continue
            if member.flow == In:
                m.d.comb += inner.eq(port)
            else:
                m.d.comb += port.eq(inner)
        connect_flat_axi(m, core.axi, self)
        return m
