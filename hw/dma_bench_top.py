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

__all__ = ["DmaBenchTop", "axi_port_name"]

_CHANNELS = ("aw", "w", "b", "ar", "r")


def axi_port_name(channel: str, field: str, prefix: str = "m_axi") -> str:
    """Top-level port name of an AXI field, e.g. ``("aw", "addr")`` → ``m_axi_awaddr``."""
    return f"{prefix}_{channel}{field}"


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
        self._axi_ports = []  # (port name, engine-side signal, engine drives it)
        axi = self.dma.signature.members["axi"].signature
        for ch in _CHANNELS:
            chan = axi.members[ch]
            out = chan.flow == Out  # the engine drives valid/payload on aw, w, ar
            for fname, field in chan.signature.members["payload"].shape:
                members[axi_port_name(ch, fname)] = (Out if out else In)(field.shape)
            members[axi_port_name(ch, "valid")] = (Out if out else In)(1)
            members[axi_port_name(ch, "ready")] = (In if out else Out)(1)
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
        # Flattening the AXI interface to cocotbext-axi's names is a rename, field by field.
        for ch in _CHANNELS:
            chan = getattr(dma.axi, ch)
            out = ch in ("aw", "w", "ar")
            pairs = [
                (getattr(chan.payload, f), axi_port_name(ch, f)) for f, _ in chan.payload.shape()
            ]
            pairs += [(chan.valid, axi_port_name(ch, "valid"))]
            for sig, port in pairs:
                if out:
                    m.d.comb += getattr(self, port).eq(sig)
                else:
                    m.d.comb += sig.eq(getattr(self, port))
            ready = getattr(self, axi_port_name(ch, "ready"))
            m.d.comb += chan.ready.eq(ready) if out else ready.eq(chan.ready)
        return m
