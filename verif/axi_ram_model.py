"""A simulation-only AXI4 memory in HDL: DRAM for whole-program runs with no Python per cycle.

cocotbext-axi's ``AxiRam`` answers every beat from Python, which caps a bench at the speed of
the Python loop. :class:`SimAxiRam` is the same memory in Amaranth, generated into the
bench's Verilog next to the design: a bench preloads it through the backdoor port, starts
the design and awaits completion, and Python only wakes up at the end.

Behaviour (an AXI4 slave, data width = the design's bus):

* INCR bursts of 1…256 beats, full-width or narrower ``size`` (the address advances by
  ``2**size`` bytes per beat; data lanes are those of a full-width bus), FIXED bursts
  repeat the start address; WRAP bursts are answered with SLVERR.
* up to ``outstanding`` read and ``outstanding`` write bursts accepted ahead (AR/AW queues);
  reads and writes proceed independently; responses come back in order per direction.
* write strobes honoured byte by byte; ``b`` after the last beat of a burst.
* errors, as :class:`ncore.golden.dma.DramFaults` models them: a read beat whose bus word
  lies at or beyond ``size_bytes`` answers DECERR, one overlapping the error window
  ``[err_base, err_base + err_size)`` (inputs, so a bench can move it) SLVERR, each with
  zero data (the other beats of the burst are normal); a write burst touching either
  answers DECERR / SLVERR for the whole burst and writes nothing.
* ``pause`` (8 bits, 0 = never): each cycle each channel independently withholds its
  ready (AR, AW, W) or the start of its valid (R, B) with probability ``pause / 256``, from a
  free-running LFSR — random stalls on all five channels with no Python in the loop. A
  valid, once raised, is held until its transfer.

Backdoor: ``bd_addr``/``bd_we``/``bd_wdata`` write one bus word per cycle; ``bd_rdata`` shows
word ``bd_addr`` one cycle later. It is meant for before and after a run.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..hw.dma import AxiSignature

__all__ = ["SimAxiRam", "bench_dram"]

_FIXED, _INCR, _WRAP = 0, 1, 2
_OKAY, _SLVERR, _DECERR = 0, 2, 3


class SimAxiRam(wiring.Component):
    """AXI4 slave memory for simulation (see the module docstring).

    Parameters
    ----------
    addr_width, data_width, id_width : int
        As the master's :class:`~ncore.hw.dma.AxiSignature`.
    size_bytes : int
        Memory size (a multiple of the bus width in bytes).
    outstanding : int
        Bursts queued per direction.

    Members
    -------
    axi : In(AxiSignature)
    pause : In(8)
    err_base, err_size : In(addr_width)
    bd_addr : In(range(words)), bd_we : In(1), bd_wdata : In(data_width)
    bd_rdata : Out(data_width)
    """

    def __init__(
        self,
        *,
        addr_width: int,
        data_width: int,
        id_width: int,
        size_bytes: int,
        outstanding: int = 4,
    ):
        nbytes = data_width // 8
        if size_bytes % nbytes or size_bytes <= 0:
            raise ValueError(f"size_bytes must be a positive multiple of {nbytes}")
        self._aw = addr_width
        self._dw = data_width
        self._iw = id_width
        self._size = size_bytes
        self._words = size_bytes // nbytes
        self._outstanding = outstanding
        super().__init__(
            {
                "axi": In(
                    AxiSignature(addr_width=addr_width, data_width=data_width, id_width=id_width)
                ),
                "pause": In(8),
                "err_base": In(addr_width),
                "err_size": In(addr_width),
                "bd_addr": In(range(self._words)),
                "bd_we": In(1),
                "bd_wdata": In(data_width),
                "bd_rdata": Out(data_width),
            }
        )
        self.mem = Memory(shape=data_width, depth=self._words, init=[])

    @property
    def words(self) -> int:
        return self._words

    def _burst_resp(self, addr, length, size):
        """Response code of a whole burst (computed once, at its address phase)."""
        last = addr + (length << size)  # one past the last byte (a bound, fine for checks)
        in_err = (addr < self.err_base + self.err_size) & (last > self.err_base)
        in_err = in_err & self.err_size.any()
        return Mux(last > self._size, _DECERR, Mux(in_err, _SLVERR, _OKAY))

    def elaborate(self, platform):
        m = Module()
        nb = self._dw // 8
        shift = (nb - 1).bit_length()
        axi = self.axi
        m.submodules.mem = mem = self.mem

        # ---- random pauses: a 16-bit Galois LFSR, one byte per channel -----------------------
        lfsr = Signal(32, init=0xACE1_2468)
        m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ 0x8020_0003, lfsr >> 1))
        pause = {}
        for i, ch in enumerate(("ar", "aw", "w", "r", "b")):
            rnd = Cat(lfsr[i], lfsr[i + 5], lfsr[i + 11], lfsr[i + 17], lfsr[i + 23],
                      lfsr[(i + 7) % 32], lfsr[(i + 13) % 32], lfsr[(i + 27) % 32])  # fmt: skip
            pause[ch] = Signal(name=f"pause_{ch}")
            m.d.comb += pause[ch].eq(rnd < self.pause)

        # ---- address queues -------------------------------------------------------------------
        burst = data.StructLayout(
            {"id": self._iw, "addr": self._aw, "len": 8, "size": 3, "burst": 2, "resp": 2}
        )
        queues = {}
        for ch in ("ar", "aw"):
            q = SyncFIFOBuffered(width=burst.size, depth=self._outstanding)
            m.submodules[f"{ch}_queue"] = queues[ch] = q
            port = getattr(axi, ch)
            resp = Signal(2, name=f"{ch}_resp")
            if ch == "aw":
                m.d.comb += resp.eq(
                    Mux(port.payload.burst == _WRAP, _SLVERR,
                        self._burst_resp(port.payload.addr, port.payload.len + 1,
                                         port.payload.size))
                )  # fmt: skip
            else:  # reads answer beat by beat (below); only WRAP is refused up front
                m.d.comb += resp.eq(Mux(port.payload.burst == _WRAP, _SLVERR, _OKAY))
            m.d.comb += [
                port.ready.eq(q.w_rdy & ~pause[ch]),
                q.w_en.eq(port.valid & port.ready),
                q.w_data.eq(Cat(port.payload.id, port.payload.addr, port.payload.len,
                                port.payload.size, port.payload.burst, resp)),
            ]  # fmt: skip

        # ---- read engine: one beat per cycle into a one-entry output stage ------------------
        rd = mem.read_port()
        rq = queues["ar"]
        cur = data.View(burst, rq.r_data)
        r_beat = Signal(9)
        r_addr = Signal(self._aw)
        out_valid = Signal()
        out_shown = Signal()
        out = Signal(data.StructLayout({"id": self._iw, "resp": 2, "last": 1}))
        advance = ~out_valid | (axi.r.valid & axi.r.ready)
        beat_addr = Mux(~r_beat.any(), cur.addr, r_addr)
        issue = rq.r_rdy & advance
        m.d.comb += [
            rd.addr.eq(beat_addr >> shift),
            rd.en.eq(issue),
        ]
        with m.If(advance):
            m.d.sync += out_valid.eq(issue)
        with m.If(issue):
            step = Mux(~cur.burst.any(), 0, Const(1, 9) << cur.size)
            last = r_beat == cur.len
            word = Cat(Const(0, shift), (beat_addr >> shift))[: self._aw + 1]
            in_err = (word < self.err_base + self.err_size) & (word + nb > self.err_base)
            in_err = in_err & self.err_size.any()
            beat_resp = Mux(word >= self._size, _DECERR, Mux(in_err, _SLVERR, _OKAY))
            m.d.sync += [
                out.id.eq(cur.id),
                out.resp.eq(Mux(cur.resp.any(), cur.resp, beat_resp)),
                out.last.eq(last),
                r_addr.eq(beat_addr + step),
                r_beat.eq(Mux(last, 0, r_beat + 1)),
            ]
        m.d.comb += rq.r_en.eq(issue & (r_beat == cur.len))
        m.d.comb += [
            axi.r.valid.eq(out_valid & (out_shown | ~pause["r"])),
            axi.r.payload.id.eq(out.id),
            axi.r.payload.resp.eq(out.resp),
            axi.r.payload.last.eq(out.last),
            axi.r.payload.data.eq(Mux(out.resp.any(), 0, rd.data)),
        ]
        m.d.sync += out_shown.eq(axi.r.valid & ~axi.r.ready)

        # ---- write engine -------------------------------------------------------------------
        wr = mem.write_port(granularity=8)
        wq = queues["aw"]
        wcur = data.View(burst, wq.r_data)
        w_beat = Signal(9)
        w_addr = Signal(self._aw)
        bq = SyncFIFOBuffered(width=self._iw + 2, depth=self._outstanding)
        m.submodules.b_queue = bq
        w_take = axi.w.valid & axi.w.ready
        m.d.comb += axi.w.ready.eq(wq.r_rdy & bq.w_rdy & ~pause["w"])
        waddr = Mux(~w_beat.any(), wcur.addr, w_addr)
        m.d.comb += [
            wr.addr.eq(Mux(self.bd_we, self.bd_addr, waddr >> shift)),
            wr.data.eq(Mux(self.bd_we, self.bd_wdata, axi.w.payload.data)),
            wr.en.eq(
                Mux(
                    self.bd_we, (1 << nb) - 1, Mux(w_take & ~wcur.resp.any(), axi.w.payload.strb, 0)
                )
            ),  # fmt: skip
        ]
        w_last = w_take & axi.w.payload.last
        with m.If(w_take):
            step = Mux(~wcur.burst.any(), 0, Const(1, 9) << wcur.size)
            m.d.sync += [w_addr.eq(waddr + step), w_beat.eq(Mux(axi.w.payload.last, 0, w_beat + 1))]
        m.d.comb += [
            wq.r_en.eq(w_last),
            bq.w_en.eq(w_last),
            bq.w_data.eq(Cat(wcur.id, wcur.resp)),
        ]
        b_shown = Signal()
        m.d.comb += [
            axi.b.valid.eq(bq.r_rdy & (b_shown | ~pause["b"])),
            axi.b.payload.id.eq(bq.r_data[: self._iw]),
            axi.b.payload.resp.eq(bq.r_data[self._iw :]),
            bq.r_en.eq(axi.b.valid & axi.b.ready),
        ]
        m.d.sync += b_shown.eq(axi.b.valid & ~axi.b.ready)

        # ---- backdoor read ------------------------------------------------------------------
        bd = mem.read_port()
        m.d.comb += [bd.addr.eq(self.bd_addr), self.bd_rdata.eq(bd.data)]
        return m


def bench_dram(params, id_width: int, size_bytes: int) -> SimAxiRam:
    """The DRAM of a bench top: the design's bus widths, eight bursts queued per direction."""
    return SimAxiRam(
        addr_width=params.axi_addr_width,
        data_width=params.axi_data_width,
        id_width=id_width,
        size_bytes=size_bytes,
        outstanding=8,
    )
