"""Core-to-core links: the executors of the SEND and RECV queues.

A link carries whole SBUF rows (``rows`` lanes of ``lane_width`` bits) from one core to the
next in the chip's ring, as a stream with backpressure (``o_link`` / ``i_link``; the chip puts
a FIFO between neighbours).

* :class:`LinkSender` runs SEND: it walks the ``src`` pattern (three nested counts, innermost
  first) on its SBUF row port, zeroes partitions ``≥ n`` and pushes each row into
  ``o_link``, one per cycle while the link takes them. ``o_done`` pulses (with the
  command's signal fields) in the cycle the last row is taken.
* :class:`LinkReceiver` runs RECV: it walks the ``dst`` pattern and writes each row it takes
  from ``i_link`` to SBUF entry ``dst[r]``, partitions ``< n``, through a row write port
  (waiting while it is not ready). ``o_done`` pulses in the cycle of the last write.

Both take one command at a time (the next in the cycle the previous one is done), and say
with ``waiting`` when they hold a command but could not move a row this cycle for lack of
link data or link room (the core's deadlock detection counts that as no progress).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from ..params import NCoreParams
from .isa import layout
from .sbuf import RowReadSignature, RowWriteSignature
from .tensor_sequencer import _Walker

__all__ = ["LinkReceiver", "LinkSender", "link_layout", "recv_cmd_layout", "send_cmd_layout"]

_SIGNAL = data.StructLayout({"signal_en": 1, "signal_sem": 5})


def link_layout(params: NCoreParams) -> data.ArrayLayout:
    """One row on a link."""
    return data.ArrayLayout(params.lane_width, params.rows)


def send_cmd_layout() -> data.StructLayout:
    return data.StructLayout({"send": layout(isa.BODY[isa.Op.SEND]), "signal": _SIGNAL})


def recv_cmd_layout() -> data.StructLayout:
    return data.StructLayout({"recv": layout(isa.BODY[isa.Op.RECV]), "signal": _SIGNAL})


def _load_walker(m, walker, ap):
    """Statements loading ``walker`` with pattern ``ap``'s first element."""
    m.d.sync += [i.eq(0) for i in walker.idx]
    m.d.sync += [walker.addr[0].eq(ap.start), *(b.eq(ap.start) for b in walker.base[0])]


class LinkSender(wiring.Component):
    """SEND executor (see the module docstring)."""

    def __init__(self, params: NCoreParams):
        self._p = params
        super().__init__(
            {
                "i_cmd": In(stream.Signature(send_cmd_layout())),
                "port": Out(RowReadSignature(params)),
                "o_link": Out(stream.Signature(link_layout(params))),
                "o_done": Out(stream.Signature(_SIGNAL, always_ready=True)),
                "busy": Out(1),
                "waiting": Out(1),
                "rows": Out(32),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        cmd = Signal(self.i_cmd.payload.shape())
        ap = cmd.send.src
        walker = _Walker(m, "send", [ap.dims[d].count for d in range(3)],
                         [(ap.start, [ap.dims[d].stride for d in range(3)])])  # fmt: skip
        active = Signal()  # a command is held
        walking = Signal()  # rows left to read
        # One row slot: the SBUF data of the row read last cycle, held while en is low.
        full = Signal()
        last_in_slot = Signal()
        take_out = self.o_link.valid & self.o_link.ready
        free = ~full | take_out
        read = walking & free
        m.d.comb += [
            self.port.en.eq(read),
            self.port.addr.eq(walker.addr[0]),
        ]
        with m.If(read):
            m.d.sync += [full.eq(1), last_in_slot.eq(walker.last)]
            with m.If(walker.last):
                m.d.sync += walking.eq(0)
            with m.Else():
                walker.step()
        with m.Elif(take_out):
            m.d.sync += full.eq(0)
        n = cmd.send.n
        m.d.comb += self.o_link.valid.eq(full)
        for lane in range(p.rows):
            m.d.comb += self.o_link.payload[lane].eq(Mux(n > lane, self.port.data[lane], 0))
        done = take_out & last_in_slot
        m.d.comb += [
            self.o_done.valid.eq(done),
            self.o_done.payload.eq(cmd.signal),
            self.i_cmd.ready.eq(~active | done),
        ]
        with m.If(done):
            m.d.sync += active.eq(0)
        with m.If(take_out):
            m.d.sync += self.rows.eq(self.rows + 1)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), active.eq(1), walking.eq(1)]
            _load_walker(m, walker, self.i_cmd.payload.send.src)
        m.d.comb += [
            self.busy.eq(active),
            self.waiting.eq(active & full & ~self.o_link.ready),
        ]
        return m


class LinkReceiver(wiring.Component):
    """RECV executor (see the module docstring)."""

    def __init__(self, params: NCoreParams):
        self._p = params
        super().__init__(
            {
                "i_cmd": In(stream.Signature(recv_cmd_layout())),
                "i_link": In(stream.Signature(link_layout(params))),
                "row_w": Out(RowWriteSignature(params)),
                "o_done": Out(stream.Signature(_SIGNAL, always_ready=True)),
                "busy": Out(1),
                "waiting": Out(1),
                "rows": Out(32),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        cmd = Signal(self.i_cmd.payload.shape())
        ap = cmd.recv.dst
        walker = _Walker(m, "recv", [ap.dims[d].count for d in range(3)],
                         [(ap.start, [ap.dims[d].stride for d in range(3)])])  # fmt: skip
        active = Signal()
        n = cmd.recv.n
        write = active & self.i_link.valid & self.row_w.ready
        m.d.comb += [
            self.row_w.en.eq(active & self.i_link.valid),
            self.row_w.addr.eq(walker.addr[0]),
            self.i_link.ready.eq(active & self.row_w.ready),
        ]
        for lane in range(p.rows):
            m.d.comb += [
                self.row_w.mask[lane].eq(n > lane),
                self.row_w.data[lane].eq(self.i_link.payload[lane]),
            ]
        done = write & walker.last
        with m.If(write):
            m.d.sync += self.rows.eq(self.rows + 1)
            with m.If(~walker.last):
                walker.step()
        m.d.comb += [
            self.o_done.valid.eq(done),
            self.o_done.payload.eq(cmd.signal),
            self.i_cmd.ready.eq(~active | done),
        ]
        with m.If(done):
            m.d.sync += active.eq(0)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), active.eq(1)]
            _load_walker(m, walker, self.i_cmd.payload.recv.dst)
        m.d.comb += [
            self.busy.eq(active),
            self.waiting.eq(active & ~self.i_link.valid),
        ]
        return m
