"""Instruction fetch: reads the program from DRAM over AXI into an instruction queue.

``start`` (a pulse) begins fetching ``length`` instructions (512 bits = 64 bytes each) from
byte address ``base`` (64-byte aligned; the core checks). The unit issues INCR bursts of up
to ``burst_instrs`` instructions that never cross a 4 KiB boundary, keeps up to
``max_reads`` bursts outstanding, and only asks for what its queue has room for, so it
never stalls the R channel. Instructions leave on ``o_instr`` in program order with their
index.

A read beat answered SLVERR or DECERR stops fetching: ``error`` rises with the address of
the failing instruction, no instruction from it on is delivered (those before it are), the unit
drains the responses it is still owed and then reports ``idle``. ``stop`` (soft reset or a
fault elsewhere) likewise ends fetching after draining. Only the AR and R channels are
used; AW/W are held idle and B is always accepted.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .. import isa
from ..params import NCoreParams
from .dma import AxiSignature

__all__ = ["Fetch"]


class Fetch(wiring.Component):
    """Program fetch unit (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
    id_width : int
        AXI ID width; the unit uses ID ``axi_id``.
    queue_depth : int
        Instructions buffered (≥ ``burst_instrs``).
    burst_instrs : int
        Instructions per burst at most.

    Members
    -------
    start : In(1)
    stop : In(1)
    base : In(axi_addr_width)
    length : In(32)
    o_instr : Out(stream.Signature({"word": 512, "index": 32}))
    axi : Out(AxiSignature)
    busy : Out(1)
    error : Out(1)
    error_addr : Out(axi_addr_width)
    """

    def __init__(
        self,
        params: NCoreParams,
        *,
        id_width: int = 4,
        axi_id: int = 1,
        queue_depth: int = 8,
        burst_instrs: int = 4,
        max_reads: int = 2,
    ):
        self._p = params
        self._beats = isa.WORD_BITS // params.axi_data_width  # beats per instruction
        if isa.WORD_BITS % params.axi_data_width:
            raise ValueError("the bus width must divide the 512-bit instruction")
        if queue_depth < burst_instrs:
            raise ValueError("queue_depth must hold a whole burst")
        self._id = axi_id
        self._qdepth = queue_depth
        self._burst = burst_instrs
        self._max_reads = max_reads
        aw = params.axi_addr_width
        super().__init__(
            {
                "start": In(1),
                "stop": In(1),
                "base": In(aw),
                "length": In(32),
                "o_instr": Out(stream.Signature(data.StructLayout({"word": 512, "index": 32}))),
                "axi": Out(
                    AxiSignature(addr_width=aw, data_width=params.axi_data_width, id_width=id_width)
                ),
                "busy": Out(1),
                "error": Out(1),
                "error_addr": Out(aw),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        beats = self._beats
        dbytes = p.axi_data_width // 8
        m.submodules.queue = q = SyncFIFOBuffered(width=512 + 32, depth=self._qdepth)

        running = Signal()  # issuing bursts
        next_addr = Signal(p.axi_addr_width)
        left = Signal(32)  # instructions not yet requested
        reserved = Signal(range(self._qdepth + 1))  # queue slots promised to bursts in flight
        outstanding = Signal(range(self._max_reads + 1))
        draining = Signal()  # an error or stop: discard responses until none are owed
        error = Signal()

        # Burst size: up to burst_instrs, not past the program, not across 4 KiB.
        to_page = Signal(range(4096 // 64 + 1))
        m.d.comb += to_page.eq((4096 - next_addr[:12]) >> 6)
        n1 = Signal(range(self._burst + 1))
        m.d.comb += n1.eq(Mux(left < self._burst, left, self._burst))
        n = Signal(range(self._burst + 1))
        m.d.comb += n.eq(Mux(to_page < n1, to_page, n1))

        room = (self._qdepth - reserved - q.r_level) >= n
        ar = self.axi.ar
        m.d.comb += [
            ar.valid.eq(running & ~draining & left.any() & room & (outstanding < self._max_reads)),
            ar.payload.id.eq(self._id),
            ar.payload.addr.eq(next_addr),
            ar.payload.len.eq(n * beats - 1),
            ar.payload.size.eq((dbytes - 1).bit_length()),
            ar.payload.burst.eq(1),
        ]
        ar_take = ar.valid & ar.ready

        # R: assemble beats into instructions.
        r = self.axi.r
        m.d.comb += r.ready.eq(1)
        r_take = r.valid
        beat = Signal(range(max(beats, 2)))
        word = Signal(512)
        index = Signal(32)
        rd_addr = Signal(p.axi_addr_width)  # address of the instruction being assembled
        bad = r.payload.resp[1]  # SLVERR (2) or DECERR (3)
        complete = r_take & (beat == beats - 1) & ~bad & ~draining & ~error
        with m.If(r_take):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
            if beats > 1:
                m.d.sync += word.eq(Cat(word[p.axi_data_width :], r.payload.data))
            with m.If(beat == beats - 1):
                m.d.sync += rd_addr.eq(rd_addr + 64)
        full_word = Cat(word[p.axi_data_width :], r.payload.data) if beats > 1 else r.payload.data
        m.d.comb += [
            q.w_en.eq(complete),
            q.w_data.eq(Cat(full_word, index)),
        ]
        with m.If(complete):
            m.d.sync += index.eq(index + 1)
        with m.If(r_take & bad & ~error & ~draining):
            m.d.sync += [error.eq(1), self.error_addr.eq(rd_addr)]

        # Slot and burst accounting.
        burst_done = r_take & r.payload.last
        ar_slots = Mux(ar_take, n, 0)
        out_slots = Mux(complete, 1, 0)
        m.d.sync += reserved.eq(reserved + ar_slots - out_slots)
        m.d.sync += outstanding.eq(outstanding + ar_take - burst_done)
        with m.If(ar_take):
            m.d.sync += [next_addr.eq(next_addr + (n << 6)), left.eq(left - n)]

        with m.If(self.start):
            m.d.sync += [
                running.eq(1),
                next_addr.eq(self.base),
                rd_addr.eq(self.base),
                left.eq(self.length),
                index.eq(0),
                beat.eq(0),
                error.eq(0),
                draining.eq(0),
            ]
        with m.Elif(self.stop | error):
            m.d.sync += [running.eq(0), draining.eq(1)]
        with m.If(draining & ~outstanding.any() & ~ar_take):
            m.d.sync += draining.eq(0)

        # Dropped (after an error or stop) instructions still free their reserved slots.
        with m.If(r_take & (beat == beats - 1) & ~complete):
            m.d.sync += reserved.eq(reserved + ar_slots - 1)

        m.d.comb += [
            self.o_instr.valid.eq(q.r_rdy & ~self.stop),
            self.o_instr.payload.eq(q.r_data),
            q.r_en.eq(self.o_instr.ready | self.stop),
            self.error.eq(error),
            self.busy.eq(running & left.any() | outstanding.any() | q.r_rdy),
            # Write channels unused.
            self.axi.aw.valid.eq(0),
            self.axi.w.valid.eq(0),
            self.axi.b.ready.eq(1),
        ]
        return m
