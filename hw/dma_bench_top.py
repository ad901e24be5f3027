"""Bench top for the DMA: the engine, the SBUF it fills and drains, and flat AXI ports.

The AXI4 master appears as top-level ports named like cocotbext-axi expects
(``m_axi_awaddr``, ``m_axi_wvalid``, …, one underscore), so a bench attaches
``AxiBus.from_prefix(dut, "m_axi")``. The ports are derived from the channel layouts of
:class:`ncore.hw.dma.AxiSignature`, so they cannot drift from the engine's port.

The SBUF's ``vector`` row read port is exposed as ``sbuf_rd`` (a backdoor for the bench to
read SBUF rows back); the ``tensor`` port is idle.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .dma import DMA
from .sbuf import RowReadSignature, SBuf

__all__ = ["DmaBenchTop", "axi_port_name", "connect_flat_axi", "flat_axi_members"]

_CHANNELS = ("aw", "w", "b", "ar", "r")


def axi_port_name(channel: str, field: str, prefix: str = "m_axi") -> str:
    """Top-level port name of an AXI field, e.g. ``("aw", "addr")`` → ``m_axi_awaddr``."""
    return f"{prefix}_{channel}{field}"


def flat_axi_members(axi: wiring.Signature, prefix: str = "m_axi") -> dict:
    """Flat port members (``<prefix>_<channel><field>``) of an AXI4 master with the channel
    layouts of ``axi`` (an :class:`ncore.hw.dma.AxiSignature`)."""
    members = {}
    for ch in _CHANNELS:
        chan = axi.members[ch]
        out = chan.flow == Out  # the master drives valid/payload on aw, w, ar
        for fname, field in chan.signature.members["payload"].shape:
            members[axi_port_name(ch, fname, prefix)] = (Out if out else In)(field.shape)
        members[axi_port_name(ch, "valid", prefix)] = (Out if out else In)(1)
        members[axi_port_name(ch, "ready", prefix)] = (In if out else Out)(1)
    return members


def connect_flat_axi(m: Module, iface, owner, prefix: str = "m_axi") -> None:
    """Wire the AXI interface ``iface`` (a master's, or a slave's flipped one) to ``owner``'s
    flat ``<prefix>_*`` ports: a rename, field by field."""
    for ch in _CHANNELS:
        chan = getattr(iface, ch)
        drives = iface.signature.members[ch].signature.members["valid"].flow == Out
        pairs = [(getattr(chan.payload, f), axi_port_name(ch, f, prefix))
                 for f, _ in chan.payload.shape()]  # fmt: skip
        pairs.append((chan.valid, axi_port_name(ch, "valid", prefix)))
        for sig, name in pairs:
            port = getattr(owner, name)
            m.d.comb += port.eq(sig) if drives else sig.eq(port)
        ready = getattr(owner, axi_port_name(ch, "ready", prefix))
        m.d.comb += chan.ready.eq(ready) if drives else ready.eq(chan.ready)


class DmaBenchTop(wiring.Component):
    """DMA + SBUF with flat AXI4 master ports (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
    **options
        Passed to :class:`ncore.hw.dma.DMA` (``id_width``, ``max_burst``, ``max_reads``,
        ``max_writes``).

    Members
    -------
    i_desc, o_done, busy, error, err_code, err_addr, clear
        As on :class:`ncore.hw.dma.DMA`.
    sbuf_rd : In(RowReadSignature(params))
        Row read port into the SBUF (the ``vector`` reader).
    m_axi_<channel><field>, m_axi_<channel>valid, m_axi_<channel>ready
        The AXI4 master, one port per signal.
    """

    def __init__(self, params: NCoreParams, **options):
        self._params = params
        self.dma = DMA(params, **options)
        self.sbuf = SBuf(params)
        members = {}
        for name in ("i_desc", "o_done", "busy", "error", "err_code", "err_addr", "clear"):
            members[name] = self.dma.signature.members[name]
        members["sbuf_rd"] = In(RowReadSignature(params))
        members.update(flat_axi_members(self.dma.signature.members["axi"].signature))
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma = dma = self.dma
        m.submodules.sbuf = sbuf = self.sbuf
        wiring.connect(m, dma.sbuf, sbuf.dma)
        wiring.connect(m, wiring.flipped(self.sbuf_rd), sbuf.vector)
        for name in ("i_desc", "o_done"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(dma, name))
        m.d.comb += [
            self.busy.eq(dma.busy),
            self.error.eq(dma.error),
            self.err_code.eq(dma.err_code),
            self.err_addr.eq(dma.err_addr),
            dma.clear.eq(self.clear),
        ]
        connect_flat_axi(m, dma.axi, self)
        return m
