"""The memory interconnect: N upstream AXI4 masters (the cores) share one AXI4 port to DRAM.

Ports
    ``up0`` … ``up{N-1}`` are AXI4 slave ports (each core's :class:`~ncore.hw.dma.AxiSignature`
    master connects to one); ``down`` is the AXI4 master port to the memory. Data, address,
    length, size and burst pass through unchanged; only the ID is widened.

IDs and responses
    The downstream ID is ``port << id_width | upstream ID`` (``port_bits =
    max(1, ceil(log2(ports)))`` high bits), so every response names its requester. R beats and
    B responses are routed purely by ID — never by request order — to the port in the ID's
    high bits, carrying the low ``id_width`` bits as the upstream ID. Error responses
    (SLVERR/DECERR) are routed like any other. A response stays on ``down`` until its port
    accepts it (backpressure reaches the memory), so a port that withholds READY also holds
    up the responses behind it for the other ports (there is no per-port response buffer);
    R beats of different IDs may interleave as the memory sends them. A response naming no
    port (high bits ≥ ``ports``; impossible from a conforming memory) is accepted and
    dropped.

Arbitration (AR and AW independently)
    Round robin among the requesting ports, one grant per burst (per AR/AW handshake). The grant
    is a register: a request seen in cycle *t* by an idle channel is presented on ``down`` from
    cycle *t + 1*, and the next winner is chosen in the cycle a burst is accepted, so back-to-
    back bursts (from one port or several) pass at one per cycle. A granted port keeps the grant
    until its request is accepted downstream (AXI: a raised VALID stays up with a stable
    payload); ``down``'s VALID/payload are then that port's, ``up*.ready`` is ``down``'s READY
    for the granted port and 0 for the others. After port *p* is granted, the ports after *p*
    (cyclically) have priority, so with every port requesting continuously each port gets
    exactly one grant in every ``ports`` consecutive grants; a requesting port waits at most
    ``ports - 1`` other bursts.

Write data
    W beats follow AW order. A burst is *committed* the first cycle its AW is presented on
    ``down`` (it cannot be withdrawn); committed ports enter a FIFO and W beats are taken
    from the FIFO head's port only, up to its ``last`` beat, then the next. So W may go
    downstream before the memory accepts the AW (allowed by AXI; a memory may wait for W
    before AWREADY), but never before the AW is presented. At most ``max_writes`` bursts are
    committed and not finished with W; a further AW waits. W beats a port offers before its
    AW is presented wait (its ``w.ready`` is low).

In flight
    At most ``max_outstanding`` read and ``max_outstanding`` write bursts are presented
    downstream and not yet answered (last R beat / B handed upstream); a further request
    waits. ``busy`` is high while any is. ``ar_grants``/``aw_grants`` count the bursts
    committed per port (16 bits, wrapping).

Timing
    Every select (grant, W port) is a one-hot register, so the request, W and response
    paths are an AND-OR mux plus a decode of the ID's high bits; READY/VALID pass through
    combinationally (no register slice), and no upstream READY depends on that port's VALID.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .dma import AxiSignature

__all__ = ["AxiInterconnect"]

_COUNT_BITS = 16


def _is(value, const: int):
    """``value == const`` (``~value.any()`` for 0: Verilator flags ``!x`` on a vector)."""
    return ~value.any() if const == 0 else value == const


def _onehot_mux(sel, values):
    """OR of ``values[i]`` masked by bit ``i`` of the one-hot ``sel``."""
    acc = None
    for i, v in enumerate(values):
        term = v & sel[i].replicate(len(v))
        acc = term if acc is None else acc | term
    return acc


def _first(vec):
    """One-hot lowest set bit of ``vec`` (all zero if none)."""
    return Cat(vec[i] & ~vec[:i].any() if i else vec[0] for i in range(len(vec)))


class AxiInterconnect(wiring.Component):
    """N-to-1 AXI4 interconnect (see the module docstring).

    Parameters
    ----------
    ports : int
        Number of upstream ports (≥ 1).
    addr_width, data_width, id_width : int
        Of the upstream :class:`~ncore.hw.dma.AxiSignature`; ``down`` has the same address
        and data widths and ``id_width + port_bits`` ID bits.
    max_writes : int
        Committed AW bursts whose W beats are not all through (the W-order FIFO depth).
    max_outstanding : int
        Read bursts, and write bursts, presented downstream and not yet answered.

    Members
    -------
    up0 … up{ports-1} : In(AxiSignature(addr_width, data_width, id_width))
        Upstream ports (a core's ``Out(AxiSignature)`` connects here).
    down : Out(AxiSignature(addr_width, data_width, id_width + port_bits))
    busy : Out(1)
        Some burst is presented downstream and not yet answered upstream.
    ar_grants, aw_grants : Out(ArrayLayout(16, ports))
        Read and write bursts committed per port, wrapping.
    """

    def __init__(
        self,
        ports: int,
        *,
        addr_width: int,
        data_width: int,
        id_width: int,
        max_writes: int = 8,
        max_outstanding: int = 255,
    ):
        if ports < 1:
            raise ValueError(f"ports must be at least 1, not {ports}")
        if max_writes < 1 or max_outstanding < 1:
            raise ValueError("max_writes and max_outstanding must be at least 1")
        self.ports = ports
        self.port_bits = max(1, (ports - 1).bit_length())
        self.id_width = id_width
        self.max_writes = max_writes
        self.max_outstanding = max_outstanding
        up = AxiSignature(addr_width=addr_width, data_width=data_width, id_width=id_width)
        down = AxiSignature(
            addr_width=addr_width, data_width=data_width, id_width=id_width + self.port_bits
        )
        members = {f"up{i}": In(up) for i in range(ports)}
        members.update(
            {
                "down": Out(down),
                "busy": Out(1),
                "ar_grants": Out(data.ArrayLayout(_COUNT_BITS, ports)),
                "aw_grants": Out(data.ArrayLayout(_COUNT_BITS, ports)),
            }
        )
        super().__init__(members)

    @property
    def up(self) -> list:
        """The upstream ports, ``[up0, up1, …]``."""
        return [getattr(self, f"up{i}") for i in range(self.ports)]

    def _address_channel(self, m, name, room):
        """Round-robin AR or AW. ``room``: a new burst may be committed (registers only).

        Returns (one-hot grant register, commit pulse)."""
        n = self.ports
        ups = [getattr(u, name) for u in self.up]
        down = getattr(self.down, name)
        gnt = Signal(n, name=f"{name}_gnt")
        prio = Signal(n, init=(1 << n) - 1, name=f"{name}_prio")  # ports after the last winner
        held = Signal(name=f"{name}_held")  # presented last cycle and not accepted

        req = Cat(u.valid for u in ups)
        sel_valid = (gnt & req).any()
        m.d.comb += down.valid.eq(sel_valid & (held | room))
        for f in ("addr", "len", "size", "burst"):
            m.d.comb += getattr(down.payload, f).eq(
                _onehot_mux(gnt, [getattr(u.payload, f) for u in ups])
            )
        ids = [Cat(u.payload.id, Const(i, self.port_bits)) for i, u in enumerate(ups)]
        m.d.comb += down.payload.id.eq(_onehot_mux(gnt, ids))
        for i, u in enumerate(ups):
            m.d.comb += u.ready.eq(gnt[i] & down.ready & (held | room))

        accept = down.valid & down.ready
        commit = Signal(name=f"{name}_commit")
        m.d.comb += commit.eq(down.valid & ~held)
        m.d.sync += held.eq(down.valid & ~down.ready)

        # Winner among the requests, those after the last winner first.
        masked = req & prio
        win = Signal(n, name=f"{name}_win")
        m.d.comb += win.eq(_first(Mux(masked.any(), masked, req)))
        with m.If(~sel_valid | accept):
            m.d.sync += gnt.eq(win)
            with m.If(req.any()):
                m.d.sync += prio.eq(Cat(win[:i].any() if i else Const(0, 1) for i in range(n)))
        return gnt, commit

    def elaborate(self, platform):
        m = Module()
        n = self.ports
        iw = self.id_width
        ups = self.up
        down = self.down

        # ---- outstanding bursts (busy, and the max_outstanding bound) -----------------------
        obits = self.max_outstanding.bit_length()
        rd_out = Signal(obits)
        wr_out = Signal(obits)
        rd_room = Signal()
        wr_room = Signal()
        m.d.comb += [
            rd_room.eq(rd_out != self.max_outstanding),
            wr_room.eq(wr_out != self.max_outstanding),
            self.busy.eq(rd_out.any() | wr_out.any()),
        ]

        # ---- W-order FIFO: one-hot ports of committed AWs ----------------------------------
        qbits = max(1, (self.max_writes - 1).bit_length())
        qdepth = 1 << qbits
        queue = [Signal(n, name=f"wq{i}") for i in range(qdepth)]
        q_wp = Signal(qbits)
        q_rp = Signal(qbits)
        q_n = Signal(range(qdepth + 1))
        w_pend = Signal(range(self.max_writes + 1))  # committed, W not finished
        w_room = Signal()
        m.d.comb += w_room.eq(w_pend != self.max_writes)

        ar_gnt, ar_commit = self._address_channel(m, "ar", rd_room)
        aw_gnt, aw_commit = self._address_channel(m, "aw", wr_room & w_room)

        for i in range(n):
            with m.If(ar_commit & ar_gnt[i]):
                m.d.sync += self.ar_grants[i].eq(self.ar_grants[i] + 1)
            with m.If(aw_commit & aw_gnt[i]):
                m.d.sync += self.aw_grants[i].eq(self.aw_grants[i] + 1)

        # ---- W routing: from the port in w_cur (one-hot register) ---------------------------
        w_cur = Signal(n)
        m.d.comb += [
            down.w.valid.eq((w_cur & Cat(u.w.valid for u in ups)).any()),
            down.w.payload.eq(_onehot_mux(w_cur, [u.w.payload.as_value() for u in ups])),
        ]
        for i, u in enumerate(ups):
            m.d.comb += u.w.ready.eq(w_cur[i] & down.w.ready)
        w_done = down.w.valid & down.w.ready & down.w.payload.last
        q_empty = ~q_n.any()
        load = ~w_cur.any() | w_done
        push = aw_commit & ~(load & q_empty)  # else it goes straight to w_cur
        pop = load & ~q_empty
        with m.If(load):
            m.d.sync += w_cur.eq(Mux(q_empty, Mux(aw_commit, aw_gnt, 0), Array(queue)[q_rp]))
        with m.If(push):
            m.d.sync += q_wp.eq(q_wp + 1)
            for i in range(qdepth):
                with m.If(q_wp == i if i else ~q_wp.any()):
                    m.d.sync += queue[i].eq(aw_gnt)
        with m.If(pop):
            m.d.sync += q_rp.eq(q_rp + 1)
        with m.If(push & ~pop):
            m.d.sync += q_n.eq(q_n + 1)
        with m.Elif(pop & ~push):
            m.d.sync += q_n.eq(q_n - 1)
        with m.If(aw_commit & ~w_done):
            m.d.sync += w_pend.eq(w_pend + 1)
        with m.Elif(w_done & ~aw_commit):
            m.d.sync += w_pend.eq(w_pend - 1)

        # ---- responses, routed by the ID's high bits ---------------------------------------
        def route(name):
            dn = getattr(down, name)
            hi = dn.payload.id[iw:]
            ready = Const(0, 1)
            for i, u in enumerate(ups):
                ch = getattr(u, name)
                mine = _is(hi, i)
                m.d.comb += [ch.valid.eq(dn.valid & mine), ch.payload.id.eq(dn.payload.id[:iw])]
                for f in ("resp", "data", "last"):
                    if hasattr(ch.payload, f):
                        m.d.comb += getattr(ch.payload, f).eq(getattr(dn.payload, f))
                ready = ready | (mine & ch.ready)
            if (1 << self.port_bits) > n:  # IDs naming no port: drop
                ready = ready | (hi >= n)
            m.d.comb += dn.ready.eq(ready)
            return dn.valid & dn.ready

        r_end = route("r") & down.r.payload.last
        b_end = route("b")
        with m.If(ar_commit & ~r_end):
            m.d.sync += rd_out.eq(rd_out + 1)
        with m.Elif(r_end & ~ar_commit):
            m.d.sync += rd_out.eq(rd_out - 1)
        with m.If(aw_commit & ~b_end):
            m.d.sync += wr_out.eq(wr_out + 1)
        with m.Elif(b_end & ~aw_commit):
            m.d.sync += wr_out.eq(wr_out - 1)
        return m
