"""AXI4-Lite router: one host port, several register windows.

The chip's host port reaches the chip registers and every core's register file through
this router. Windows are ``(base, size)`` byte ranges (``size`` a power of two, ``base`` a
multiple of it); a target sees the address's low ``log2(size)`` bits. A request outside
every window answers SLVERR (reads return 0) and reaches no target.

One write and one read are in flight at a time, independently. A write latches its
address first (AWREADY while idle), then forwards AW, then W, then returns the target's
B; WREADY stays low until the address is known (AXI lets a slave wait for AW before
taking W). Reads latch AR, forward it and return the target's R.

Targets are flat AXI4-Lite slaves with ``s_axil_*`` members (:class:`ncore.hw.csr.CsrFile`,
:class:`ncore.hw.core.NeuronCore`); the router's own port has the same flat names.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring

from .csr import axil_slave_members

__all__ = ["AxilRouter", "axil_slave_members"]

_OKAY, _SLVERR = 0, 2


def _log2(n: int) -> int:
    return (n - 1).bit_length()


def _is(value, const: int):
    """``value == const`` (``~value.any()`` for 0: Verilator flags ``!x`` on a vector)."""
    return ~value.any() if const == 0 else value == const


class AxilRouter(wiring.Component):
    """Routes the ``s_axil_*`` host port to ``targets`` (see the module docstring).

    Parameters
    ----------
    addr_width : int
        Host address width.
    windows : list of (base, size)
        One per target, in the order of ``targets`` given to :meth:`connect`.
    """

    def __init__(self, addr_width: int, windows):
        self._aw = addr_width
        self._windows = [(int(b), int(s)) for b, s in windows]
        for b, s in self._windows:
            if s & (s - 1) or b % s or b + s > 1 << addr_width:
                raise ValueError(f"window ({b:#x}, {s:#x}) is not an aligned power of two")
        self.targets = []
        super().__init__(axil_slave_members(addr_width))

    def connect(self, targets) -> None:
        """The target components (flat ``s_axil_*`` members), one per window."""
        if len(targets) != len(self._windows):
            raise ValueError("one target per window")
        self.targets = list(targets)

    def elaborate(self, platform):
        m = Module()
        n = len(self._windows)
        sel_bits = max(1, _log2(n + 1))

        def decode(addr):
            """(index, hit): the window holding ``addr``."""
            idx = Signal(sel_bits, name="dec_idx")
            hit = Signal(name="dec_hit")
            for i, (b, s) in enumerate(self._windows):
                with m.If(_is(addr[_log2(s) :], b >> _log2(s))):
                    m.d.comb += [idx.eq(i), hit.eq(1)]
            return idx, hit

        tg = self.targets
        # ---- writes ------------------------------------------------------------------------
        w_state = Signal(2)  # 0 idle, 1 AW out, 2 W out, 3 B back
        w_addr = Signal(self._aw)
        w_sel = Signal(sel_bits)
        w_hit = Signal()
        w_err = Signal()  # unmapped: answer SLVERR ourselves
        idle_w = ~w_state.any()
        m.d.comb += self.s_axil_awready.eq(idle_w)
        a_idx, a_hit = decode(self.s_axil_awaddr)
        with m.If(idle_w & self.s_axil_awvalid):
            m.d.sync += [
                w_addr.eq(self.s_axil_awaddr),
                w_sel.eq(a_idx),
                w_hit.eq(a_hit),
                w_state.eq(1),
            ]
        for i, t in enumerate(tg):
            size = self._windows[i][1]
            me = w_hit & _is(w_sel, i)
            m.d.comb += [
                t.s_axil_awaddr.eq(w_addr[: _log2(size)]),
                t.s_axil_awprot.eq(0),
                t.s_axil_awvalid.eq(me & (w_state == 1)),
                t.s_axil_wdata.eq(self.s_axil_wdata),
                t.s_axil_wstrb.eq(self.s_axil_wstrb),
                t.s_axil_wvalid.eq(me & (w_state == 2) & self.s_axil_wvalid),
                t.s_axil_bready.eq(me & (w_state == 3) & self.s_axil_bready),
            ]
        awready = Array([t.s_axil_awready for t in tg] + [Const(0)] * ((1 << sel_bits) - n))
        wready = Array([t.s_axil_wready for t in tg] + [Const(0)] * ((1 << sel_bits) - n))
        bvalid = Array([t.s_axil_bvalid for t in tg] + [Const(0)] * ((1 << sel_bits) - n))
        bresp = Array([t.s_axil_bresp for t in tg] + [Const(0, 2)] * ((1 << sel_bits) - n))
        with m.If(w_state == 1):
            with m.If(~w_hit | awready[w_sel]):
                m.d.sync += w_state.eq(2)
        m.d.comb += self.s_axil_wready.eq((w_state == 2) & (~w_hit | wready[w_sel]))
        with m.If((w_state == 2) & self.s_axil_wvalid & self.s_axil_wready):
            m.d.sync += [w_state.eq(3), w_err.eq(~w_hit)]
        m.d.comb += [
            self.s_axil_bvalid.eq((w_state == 3) & (w_err | bvalid[w_sel])),
            self.s_axil_bresp.eq(Mux(w_err, _SLVERR, bresp[w_sel])),
        ]
        with m.If(self.s_axil_bvalid & self.s_axil_bready):
            m.d.sync += w_state.eq(0)

        # ---- reads -------------------------------------------------------------------------
        r_state = Signal(2)  # 0 idle, 1 AR out, 2 R back
        r_addr = Signal(self._aw)
        r_sel = Signal(sel_bits)
        r_hit = Signal()
        idle_r = ~r_state.any()
        m.d.comb += self.s_axil_arready.eq(idle_r)
        q_idx, q_hit = decode(self.s_axil_araddr)
        with m.If(idle_r & self.s_axil_arvalid):
            m.d.sync += [
                r_addr.eq(self.s_axil_araddr),
                r_sel.eq(q_idx),
                r_hit.eq(q_hit),
                r_state.eq(1),
            ]
        for i, t in enumerate(tg):
            size = self._windows[i][1]
            me = r_hit & _is(r_sel, i)
            m.d.comb += [
                t.s_axil_araddr.eq(r_addr[: _log2(size)]),
                t.s_axil_arprot.eq(0),
                t.s_axil_arvalid.eq(me & (r_state == 1)),
                t.s_axil_rready.eq(me & (r_state == 2) & self.s_axil_rready),
            ]
        arready = Array([t.s_axil_arready for t in tg] + [Const(0)] * ((1 << sel_bits) - n))
        rvalid = Array([t.s_axil_rvalid for t in tg] + [Const(0)] * ((1 << sel_bits) - n))
        rdata = Array([t.s_axil_rdata for t in tg] + [Const(0, 32)] * ((1 << sel_bits) - n))
        rresp = Array([t.s_axil_rresp for t in tg] + [Const(0, 2)] * ((1 << sel_bits) - n))
        with m.If((r_state == 1) & (~r_hit | arready[r_sel])):
            m.d.sync += r_state.eq(2)
        m.d.comb += [
            self.s_axil_rvalid.eq((r_state == 2) & (~r_hit | rvalid[r_sel])),
            self.s_axil_rdata.eq(Mux(r_hit, rdata[r_sel], 0)),
            self.s_axil_rresp.eq(Mux(r_hit, rresp[r_sel], _SLVERR)),
        ]
        with m.If(self.s_axil_rvalid & self.s_axil_rready):
            m.d.sync += r_state.eq(0)
        return m
