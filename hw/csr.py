"""A 32-bit register file behind an AXI4-Lite slave port, generated from a register table.

Each :class:`Reg` has a byte offset (a multiple of 4) and an access kind:

* ``RW``  — software reads and writes (byte strobes honoured); the value is ``o_<name>``;
* ``RO``  — software reads ``i_<name>``, which the hardware drives; writes are ignored;
* ``W1P`` — write-one-to-pulse: bits written as 1 pulse ``o_<name>`` for one cycle; reads 0;
* ``W1C`` — write-one-to-clear: the hardware sets bits with ``i_<name>_set`` (they stay set),
  software clears them by writing 1s; the value is ``o_<name>``.

Ports are flat (``s_axil_awaddr`` …, single underscores) so a bench attaches
``cocotbext.axi.AxiLiteBus.from_prefix(dut, "s_axil")``. A read or write of an offset that
names no register answers SLVERR and changes nothing. Address and data phases may arrive in
any order; one write and one read are handled at a time; responses follow one cycle after
the request is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RO", "RW", "W1C", "W1P", "CsrFile", "Reg", "axil_slave_members"]

RW, RO, W1P, W1C = "RW", "RO", "W1P", "W1C"
_OKAY, _SLVERR = 0, 2


@dataclass(frozen=True)
class Reg:
    name: str
    offset: int
    access: str
    init: int = 0
    doc: str = ""

    def __post_init__(self):
        if self.offset % 4 or self.offset < 0:
            raise ValueError(f"register {self.name}: offset {self.offset:#x} is not word aligned")
        if self.access not in (RW, RO, W1P, W1C):
            raise ValueError(f"register {self.name}: unknown access {self.access!r}")


def axil_slave_members(addr_width: int) -> dict:
    """The flat ``s_axil_*`` members of an AXI4-Lite slave (seen from the slave)."""
    return {
        "s_axil_awaddr": In(addr_width),
        "s_axil_awprot": In(3),
        "s_axil_awvalid": In(1),
        "s_axil_awready": Out(1),
        "s_axil_wdata": In(32),
        "s_axil_wstrb": In(4),
        "s_axil_wvalid": In(1),
        "s_axil_wready": Out(1),
        "s_axil_bresp": Out(2),
        "s_axil_bvalid": Out(1),
        "s_axil_bready": In(1),
        "s_axil_araddr": In(addr_width),
        "s_axil_arprot": In(3),
        "s_axil_arvalid": In(1),
        "s_axil_arready": Out(1),
        "s_axil_rdata": Out(32),
        "s_axil_rresp": Out(2),
        "s_axil_rvalid": Out(1),
        "s_axil_rready": In(1),
    }


def _word_is(addr, offset: int):
    """``addr`` names the word at ``offset`` (``~x.any()`` for 0: Verilator flags ``!x``)."""
    word = addr[2:]
    return ~word.any() if offset >> 2 == 0 else word == offset >> 2


class CsrFile(wiring.Component):
    """Register file with an AXI4-Lite slave (see the module docstring).

    Parameters
    ----------
    regs : sequence of Reg
    addr_width : int
        Width of the AXI4-Lite address; offsets are taken modulo ``2**addr_width``.
    """

    def __init__(self, regs, *, addr_width: int = 12):
        regs = list(regs)
        offsets = [r.offset for r in regs]
        if len(set(offsets)) != len(offsets):
            raise ValueError("two registers share an offset")
        if len({r.name for r in regs}) != len(regs):
            raise ValueError("two registers share a name")
        if any(r.offset >= 1 << addr_width for r in regs):
            raise ValueError(f"an offset does not fit {addr_width} address bits")
        self._regs = regs
        self._aw = addr_width
        members = axil_slave_members(addr_width)
        for r in regs:
            if r.access == RO:
                members[f"i_{r.name}"] = In(32)
            elif r.access == W1C:
                members[f"i_{r.name}_set"] = In(32)
                members[f"o_{r.name}"] = Out(32, init=r.init)
            else:
                members[f"o_{r.name}"] = Out(32, init=r.init if r.access == RW else 0)
        super().__init__(members)

    @property
    def regs(self) -> list:
        return list(self._regs)

    def elaborate(self, platform):
        m = Module()
        # ---- write channel: latch address and data, then respond -----------------------
        aw_addr = Signal(self._aw)
        aw_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        w_full = Signal()
        b_valid = Signal()
        b_resp = Signal(2)
        m.d.comb += [
            self.s_axil_awready.eq(~aw_full & ~b_valid),
            self.s_axil_wready.eq(~w_full & ~b_valid),
            self.s_axil_bvalid.eq(b_valid),
            self.s_axil_bresp.eq(b_resp),
        ]
        with m.If(self.s_axil_awvalid & self.s_axil_awready):
            m.d.sync += [aw_addr.eq(self.s_axil_awaddr), aw_full.eq(1)]
        with m.If(self.s_axil_wvalid & self.s_axil_wready):
            m.d.sync += [w_data.eq(self.s_axil_wdata), w_strb.eq(self.s_axil_wstrb), w_full.eq(1)]
        do_write = aw_full & w_full & ~b_valid
        mask = Cat(*(w_strb[i].replicate(8) for i in range(4)))
        hit_w = Signal()
        for r in self._regs:
            sel = do_write & _word_is(aw_addr, r.offset)
            if r.access == RW:
                o = getattr(self, f"o_{r.name}")
                with m.If(sel):
                    m.d.sync += o.eq((o & ~mask) | (w_data & mask))
            elif r.access == W1P:
                o = getattr(self, f"o_{r.name}")
                m.d.sync += o.eq(0)
                with m.If(sel):
                    m.d.sync += o.eq(w_data & mask)
            elif r.access == W1C:
                o = getattr(self, f"o_{r.name}")
                cleared = Signal(32, name=f"{r.name}_clr")
                m.d.comb += cleared.eq(0)
                with m.If(sel):
                    m.d.comb += cleared.eq(w_data & mask)
                m.d.sync += o.eq((o & ~cleared) | getattr(self, f"i_{r.name}_set"))
        hits = [_word_is(aw_addr, r.offset) for r in self._regs]
        m.d.comb += hit_w.eq(Cat(*hits).any() if hits else 0)
        with m.If(do_write):
            m.d.sync += [
                b_valid.eq(1),
                b_resp.eq(Mux(hit_w, _OKAY, _SLVERR)),
                aw_full.eq(0),
                w_full.eq(0),
            ]
        with m.If(b_valid & self.s_axil_bready):
            m.d.sync += b_valid.eq(0)

        # ---- read channel ----------------------------------------------------------------
        r_valid = Signal()
        m.d.comb += [self.s_axil_arready.eq(~r_valid), self.s_axil_rvalid.eq(r_valid)]
        with m.If(self.s_axil_arvalid & self.s_axil_arready):
            m.d.sync += [r_valid.eq(1), self.s_axil_rresp.eq(_SLVERR), self.s_axil_rdata.eq(0)]
            for r in self._regs:
                with m.If(_word_is(self.s_axil_araddr, r.offset)):
                    if r.access == RO:
                        value = getattr(self, f"i_{r.name}")
                    elif r.access == W1P:
                        value = 0
                    else:
                        value = getattr(self, f"o_{r.name}")
                    m.d.sync += [self.s_axil_rresp.eq(_OKAY), self.s_axil_rdata.eq(value)]
        with m.If(r_valid & self.s_axil_rready):
            m.d.sync += r_valid.eq(0)
        return m


def demo_regs() -> list:
    """The register table of the ``csr`` bench top (one register of every kind)."""
    return [
        Reg("id", 0x000, RO, doc="a constant the bench drives"),
        Reg("scratch", 0x004, RW, init=0x1234_5678, doc="read/write"),
        Reg("ctrl", 0x008, W1P, doc="write-one pulses"),
        Reg("irq", 0x00C, W1C, doc="sticky bits set by hardware"),
        Reg("mask", 0x010, RW, init=0xFFFF_FFFF),
        Reg("counter", 0x100, RO, doc="free-running cycle counter"),
    ]
