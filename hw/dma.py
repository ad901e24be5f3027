"""The DMA engine: DRAM ↔ SBUF copies, and PSUM → DRAM stores, with multi-dimensional access
patterns over AXI4.

Descriptor
    One :class:`Descriptor` per transfer, taken from the ``i_desc`` stream while the engine
    is idle and no error is pending. It names a direction (:class:`Direction`: ``LOAD``,
    ``STORE`` or ``PSUM_STORE``), an element size (:class:`ElemSize`: 1 or 2 bytes for
    ``LOAD``/``STORE``, 4 bytes — ``B4``, and only it — for ``PSUM_STORE``) and two access
    patterns, each a start plus three ``(count, stride)`` pairs, innermost first
    (``dims[0]``):

    * ``dram``: byte addresses, element ``(i2, i1, i0)`` at ``start + i0·s0 + i1·s1 + i2·s2``.
      When ``s0`` equals the element size the ``count0`` elements of a row are one
      contiguous *run* (bursts); otherwise every element is its own run (a gather).
    * ``sbuf``: linear element addresses (``entry << pbits | partition``, see
      :mod:`ncore.hw.sbuf`). When ``s0 == 1`` up to ``lanes`` consecutive elements move per
      cycle (a *chunk*); otherwise one element per cycle, so a transposed tile is a pattern
      with ``s0 ≠ 1`` on one side. For ``PSUM_STORE`` the same field holds linear PSUM
      addresses (``entry << cbits | column``, ``cbits = ceil(log2(cols))``, see
      :mod:`ncore.golden.psum`); a chunk is then up to ``min(lanes, bus bytes / 4)``
      consecutive words of one PSUM entry, read through the ``psum`` port (one entry per
      cycle it is ``ready``), and each word goes to DRAM as 4 bytes, little-endian.

    Elements move in pattern order on both sides; both sides must describe the same number
    of elements. Strides are unsigned. Software packs a descriptor with
    ``Descriptor.const({...}).as_bits()``; ``docs/memory.md`` has the bit table.

Errors (never silent)
    Every descriptor ends with one record on ``o_done`` (``code``, ``addr``). A non-``NONE``
    code also sets the sticky ``error``/``err_code``/``err_addr`` registers, which hold the
    first error until ``clear`` is pulsed; while ``error`` is set, no descriptor is taken.

    * Checked before any traffic (address 0 unless noted): ``BAD_DESC`` (direction 3;
      LOAD/STORE with an element size other than 1 byte, or 2 bytes on a 16-bit-lane build;
      PSUM_STORE with a size other than 4 bytes), ``ZERO_COUNT``, ``OVERSIZE`` (a side
      moves more elements than the SBUF holds, or for PSUM_STORE the PSUM), ``COUNT_MISMATCH``,
      ``DRAM_RANGE`` (the pattern's last byte is beyond the ``axi_addr_width`` address space;
      address: the DRAM start).
    * ``SBUF_RANGE``: the first element, in pattern order, whose SBUF address is out of range
      (address: that linear address). A scout walks the SBUF pattern ahead of the data, so
      no burst is issued for bytes at or after that element; a load writes every element
      before it, a store writes their bytes (strobes off beyond them). A PSUM_STORE
      reports its first element outside the PSUM (column ≥ ``cols`` or entry ≥
      ``psum_depth``) the same way, with its linear PSUM address.
    * ``RD_SLVERR``/``RD_DECERR``: the first read beat with an error response (address: the
      beat's, i.e. the burst address for its first beat, the bus-aligned address after).
      The elements before the first one needing a byte of that beat are written; none after.
    * ``WR_SLVERR``/``WR_DECERR``: the first write burst with an error response (address:
      its start). Earlier bursts completed. No burst is issued after the response is seen
      and the remaining beats of bursts already issued go out with strobes off, but up to
      ``max_writes - 1`` later bursts may already have been sent (AXI reports write errors
      only after the data), so those bytes of the same transfer may or may not be written.
      Set ``max_writes=1`` for the strict "nothing after the fault" at a throughput cost.

    After a fault the engine stops issuing requests, drains every outstanding response and
    returns to idle; nothing outside the transfer's own addresses is ever written.

Bursts and throughput
    INCR bursts of full bus width (``AxSIZE = log2(bus bytes)``), at most ``max_burst`` beats,
    never crossing a multiple of ``min(4096, max_burst · bus bytes)`` (hence never a 4 KiB
    boundary), unaligned first beat; unaligned read data are realigned through a byte
    queue, unaligned writes use strobes. Up to ``max_reads`` read bursts and ``max_writes``
    write bursts are outstanding; all use AXI ID 0, so responses return in order. With an
    always-ready memory a contiguous transfer moves one beat per cycle; see
    :func:`ncore.golden.dma.cost` and ``docs/memory.md`` for measured figures.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .sbuf import ChunkPortSignature, SBufGeometry

__all__ = [
    "DMA",
    "AxiSignature",
    "ByteQueue",
    "Descriptor",
    "Dim",
    "Direction",
    "DramPattern",
    "DramWalker",
    "ElemSize",
    "ErrorCode",
    "PsumReadSignature",
    "SbufPattern",
    "SbufWalker",
    "descriptor_fields",
    "fault_addr_bits",
    "pack",
    "status_layout",
]

COUNT_BITS = 16
STRIDE_BITS = 32
#: Width of SBUF address arithmetic: a 32-bit start plus three (2**16 − 1)·(2**32 − 1) terms.
_SBUF_CALC_BITS = 50


class Direction(enum.Enum, shape=2):
    LOAD = 0  #: DRAM → SBUF
    STORE = 1  #: SBUF → DRAM
    PSUM_STORE = 2  #: PSUM → DRAM, 4-byte elements (``ElemSize.B4`` only)


class ElemSize(enum.Enum, shape=2):
    """log2 of the element size in bytes."""

    B1 = 0
    B2 = 1
    B4 = 2  #: PSUM_STORE only (32-bit PSUM words)


class ErrorCode(enum.Enum, shape=4):
    NONE = 0
    BAD_DESC = 1
    ZERO_COUNT = 2
    OVERSIZE = 3
    COUNT_MISMATCH = 4
    DRAM_RANGE = 5
    SBUF_RANGE = 6
    RD_SLVERR = 7
    RD_DECERR = 8
    WR_SLVERR = 9
    WR_DECERR = 10


#: One dimension of an access pattern.
Dim = data.StructLayout({"count": COUNT_BITS, "stride": STRIDE_BITS})


class DramPattern(data.Struct):
    start: 64
    dims: data.ArrayLayout(Dim, 3)


class SbufPattern(data.Struct):
    start: 32
    dims: data.ArrayLayout(Dim, 3)


class Descriptor(data.Struct):
    """A DMA transfer (388 bits). ``dims[0]`` is the innermost dimension."""

    direction: Direction
    esize: ElemSize
    dram: DramPattern
    sbuf: SbufPattern


def descriptor_fields(layout=None, prefix: str = "", base: int = 0):
    """``(name, bit offset, width)`` of every leaf field of :class:`Descriptor`, in bit
    order (``dram.dims[1].stride`` …): the table in ``docs/memory.md`` is checked against
    this."""
    layout = Descriptor.as_shape() if layout is None else layout
    if isinstance(layout, data.ArrayLayout):
        elem = data.Layout.cast(layout.elem_shape)
        for i in range(layout.length):
            yield from descriptor_fields(elem, f"{prefix}[{i}]", base + i * elem.size)
        return
    for name, field in layout:
        path = f"{prefix}.{name}" if prefix else name
        try:
            inner = data.Layout.cast(field.shape)
        except TypeError:  # a leaf: plain width or enum
            yield path, base + field.offset, field.width
        else:
            yield from descriptor_fields(inner, path, base + field.offset)


def pack(fields: dict) -> int:
    """Bits of a descriptor given as a dict for ``Descriptor.const``; ``direction`` and
    ``esize`` may also be raw 2-bit codes, including ones the enums do not name."""
    layout = Descriptor.as_shape()
    raw = {k: int(fields[k]) for k in ("direction", "esize")}
    bits = Descriptor.const({**fields, "direction": 0, "esize": 0}).as_bits()
    for k, v in raw.items():
        bits |= (v & 3) << layout[k].offset
    return bits


def fault_addr_bits(params: NCoreParams) -> int:
    """Width of ``err_addr``: faulting addresses are reported modulo ``2**width``."""
    return max(params.axi_addr_width, 32)


def status_layout(params: NCoreParams) -> data.StructLayout:
    """Payload of ``o_done``: the descriptor's result and faulting address."""
    return data.StructLayout({"code": ErrorCode, "addr": fault_addr_bits(params)})


class PsumReadSignature(wiring.Signature):
    """The DMA's PSUM read port (for ``PSUM_STORE``), seen from the DMA.

    Members
    -------
    en : Out(1)
        Read entry ``addr``; only in a cycle with ``ready``.
    addr : Out(range(psum_depth))
    ready : In(1)
        The port is the DMA's this cycle (the core shares one PSUM read port; see
        :mod:`ncore.hw.core`).
    data : In(ArrayLayout(32, cols))
        Every column of the entry read, the cycle after ``en`` (only that cycle is used).
    """

    def __init__(self, params: NCoreParams):
        super().__init__(
            {
                "en": Out(1),
                "addr": Out(range(params.psum_depth)),
                "ready": In(1),
                "data": In(data.ArrayLayout(32, params.cols)),
            }
        )


# ---- AXI4 ---------------------------------------------------------------------------------


class AxiSignature(wiring.Signature):
    """An AXI4 master port (seen from the master): five ``stream`` channels ``aw``, ``w``,
    ``b``, ``ar``, ``r``, whose payload fields are the AXI signals without the channel
    prefix (``aw.payload.addr`` is AWADDR). AXI's VALID/READY rules are the stream rules.
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int):
        self.addr_width = addr_width
        self.data_width = data_width
        self.id_width = id_width
        ax = data.StructLayout(
            {"id": id_width, "addr": addr_width, "len": 8, "size": 3, "burst": 2}
        )
        w = data.StructLayout({"data": data_width, "strb": data_width // 8, "last": 1})
        b = data.StructLayout({"id": id_width, "resp": 2})
        r = data.StructLayout({"id": id_width, "data": data_width, "resp": 2, "last": 1})
        super().__init__(
            {
                "aw": Out(stream.Signature(ax)),
                "w": Out(stream.Signature(w)),
                "b": In(stream.Signature(b)),
                "ar": Out(stream.Signature(ax)),
                "r": In(stream.Signature(r)),
            }
        )


_INCR = 1
_RESP_SLVERR = 2
_RESP_DECERR = 3


# ---- building blocks ------------------------------------------------------------------------


def _log2(n: int) -> int:
    return (n - 1).bit_length()


class ByteQueue(wiring.Component):
    """A byte FIFO that takes and gives up to ``port`` bytes per cycle: the realigning
    shifter between bus beats and SBUF chunks.

    Bytes 0… of ``head`` are the oldest ``min(count, port)`` bytes. In one cycle the queue
    drops ``pop_n ≤ count`` bytes from the head and appends the first ``push_n`` bytes of
    ``push_data``; the caller keeps ``count − pop_n + push_n ≤ capacity``. ``clear`` empties it.
    """

    def __init__(self, capacity: int, port: int):
        self._cap = capacity
        self._port = port
        super().__init__(
            {
                "push_data": In(8 * port),
                "push_n": In(range(port + 1)),
                "pop_n": In(range(port + 1)),
                "clear": In(1),
                "count": Out(range(capacity + 1)),
                "head": Out(8 * port),
            }
        )

    @property
    def capacity(self) -> int:
        return self._cap

    def elaborate(self, platform):
        m = Module()
        cap, port = self._cap, self._port
        buf = Signal(8 * cap)
        rem = Signal(range(cap + 1))
        m.d.comb += [rem.eq(self.count - self.pop_n), self.head.eq(buf[: 8 * port])]
        keep = Cat(*[(self.push_n > i).replicate(8) for i in range(port)])
        pushed = self.push_data & keep
        shifted = buf >> Cat(Const(0, 3), self.pop_n)
        # pushed << 8·rem, as a right shift of a wider word so the result does not grow.
        inserted = (Cat(Const(0, 8 * cap), pushed) >> Cat(Const(0, 3), cap - rem))[: 8 * cap]
        with m.If(self.clear):
            m.d.sync += [buf.eq(0), self.count.eq(0)]
        with m.Else():
            m.d.sync += [buf.eq(shifted | inserted), self.count.eq(rem + self.push_n)]
        return m


class SbufWalker(wiring.Component):
    """Walks an SBUF (or, with ``psum``, a PSUM) access pattern in chunks and range-checks
    each chunk.

    A chunk is up to ``lmax`` elements at consecutive addresses of one innermost row when
    ``stride0 == 1``, else one element; with ``psum`` a chunk also ends at every PSUM entry
    (a multiple of ``2**cbits``), and addresses are range-checked against the PSUM
    (``entry << cbits | column``, column ``< cols``, entry ``< psum_depth``). ``start`` (a
    pulse) loads the pattern's first chunk; ``advance`` moves to the next; ``valid`` falls
    after the last. ``n_ok`` is the number of leading in-range lanes of the current chunk
    (``n_ok < n``: lane ``n_ok`` is the first out-of-range element).
    """

    def __init__(self, params: NCoreParams):
        g = SBufGeometry(params)
        self._g = g
        self._p = params
        ebits = max(g.capacity, params.cols * params.psum_depth).bit_length() + 1
        super().__init__(
            {
                "pattern": In(SbufPattern),
                "psum": In(1),
                "lmax": In(range(g.lanes + 1)),
                "start": In(1),
                "advance": In(1),
                "valid": Out(1),
                "addr": Out(_SBUF_CALC_BITS),
                "n": Out(range(g.lanes + 1)),
                "n_ok": Out(range(g.lanes + 1)),
                "elem": Out(ebits),
                "last": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        g = self._g
        pat = self.pattern
        c0, c1, c2 = (pat.dims[k].count for k in range(3))
        s0, s1, s2 = (pat.dims[k].stride for k in range(3))
        W = _SBUF_CALC_BITS
        cur, base1, base2 = (Signal(W, name=n) for n in ("cur", "base1", "base2"))
        i0, i1, i2 = (Signal(COUNT_BITS, name=n) for n in ("i0", "i1", "i2"))
        unit = Signal()
        m.d.comb += [unit.eq(s0 == 1), self.addr.eq(cur)]

        left = Signal(COUNT_BITS + 1)
        n_run = Signal(range(g.lanes + 1))
        m.d.comb += [left.eq(c0 - i0), n_run.eq(Mux(left < self.lmax, left, self.lmax))]
        # PSUM chunks end at the entry: at most 2**cbits − column elements.
        cbits = _log2(self._p.cols)
        seg = Signal(cbits + 1)
        m.d.comb += seg.eq((1 << cbits) - cur[:cbits] if cbits else 1)
        with m.If(~unit):
            m.d.comb += self.n.eq(1)
        with m.Elif(self.psum & (seg < n_run)):
            m.d.comb += self.n.eq(seg)
        with m.Else():
            m.d.comb += self.n.eq(n_run)

        # Leading in-range lanes: entries beyond the end, then unused partition (column) codes.
        def leading_ok(abits: int, fbits: int, count: int, name: str):
            top = 1 << abits
            n_e = Signal(range(g.lanes + 1), name=f"{name}_n_e")
            dist = Signal(W, name=f"{name}_dist")
            m.d.comb += dist.eq(top - cur)
            with m.If(cur >= top):
                m.d.comb += n_e.eq(0)
            with m.Elif(dist < self.n):
                m.d.comb += n_e.eq(dist)
            with m.Else():
                m.d.comb += n_e.eq(self.n)
            if count == 1 << fbits:
                return n_e
            part = cur[:fbits]
            n_p = Signal(range(g.lanes + 1), name=f"{name}_n_p")
            gap = Signal(fbits + 1, name=f"{name}_gap")
            m.d.comb += gap.eq(count - part)
            with m.If(part >= count):
                m.d.comb += n_p.eq(0)
            with m.Elif(gap < self.n):
                m.d.comb += n_p.eq(gap)
            with m.Else():
                m.d.comb += n_p.eq(self.n)
            return Mux(n_p < n_e, n_p, n_e)

        sb_ok = leading_ok(g.addr_bits, g.pbits, g.rows, "sbuf")
        ps_ok = leading_ok(cbits + _log2(self._p.psum_depth), cbits, self._p.cols, "psum")
        m.d.comb += self.n_ok.eq(Mux(self.psum, ps_ok, sb_ok))

        more0 = Signal()
        more1 = Signal()
        more2 = Signal()
        m.d.comb += [
            more0.eq(i0 + self.n < c0),
            more1.eq(i1 + 1 < c1),
            more2.eq(i2 + 1 < c2),
            self.last.eq(~more0 & ~more1 & ~more2),
        ]
        with m.If(self.start):
            m.d.sync += [
                cur.eq(pat.start),
                base1.eq(pat.start),
                base2.eq(pat.start),
                i0.eq(0),
                i1.eq(0),
                i2.eq(0),
                self.elem.eq(0),
                self.valid.eq(1),
            ]
        with m.Elif(self.advance & self.valid):
            m.d.sync += self.elem.eq(self.elem + self.n)
            with m.If(more0):
                m.d.sync += [i0.eq(i0 + self.n), cur.eq(cur + Mux(unit, self.n, s0))]
            with m.Elif(more1):
                m.d.sync += [
                    i0.eq(0),
                    i1.eq(i1 + 1),
                    base1.eq(base1 + s1),
                    cur.eq(base1 + s1),
                ]
            with m.Elif(more2):
                m.d.sync += [
                    i0.eq(0),
                    i1.eq(0),
                    i2.eq(i2 + 1),
                    base2.eq(base2 + s2),
                    base1.eq(base2 + s2),
                    cur.eq(base2 + s2),
                ]
            with m.Else():
                m.d.sync += self.valid.eq(0)
        return m


class DramWalker(wiring.Component):
    """Walks a DRAM access pattern as bursts.

    Runs (one per innermost row when ``stride0`` equals the element size, else one per
    element) are split at multiples of ``boundary`` bytes (a power of two ≤ 4096). Each
    burst is offered as ``addr`` (first byte), ``blen`` (bytes), ``len`` (beats − 1), ``lo``
    and ``hi`` (byte lanes ``[lo, …)`` of the first beat and ``[…, hi)`` of the last) and
    ``offset`` (bytes of the transfer before it). The pattern must lie inside the address
    space (the DMA checks that first), so address arithmetic never wraps.
    """

    def __init__(self, params: NCoreParams, boundary: int, offset_bits: int):
        self._aw = params.axi_addr_width
        self._bus = params.axi_data_width // 8
        self._bd = boundary
        super().__init__(
            {
                "pattern": In(DramPattern),
                "esize": In(2),  # log2 of the element size (1, 2 or 4 bytes)
                "start": In(1),
                "advance": In(1),
                "valid": Out(1),
                "addr": Out(self._aw),
                "blen": Out(range(boundary + 1)),
                "len": Out(8),
                "lo": Out(range(self._bus)),
                "hi": Out(range(self._bus + 1)),
                "offset": Out(offset_bits),
                "last": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        aw, bus, bd = self._aw, self._bus, self._bd
        bbits, bdbits = _log2(bus), _log2(bd)
        pat = self.pattern
        c0, c1, c2 = (pat.dims[k].count for k in range(3))
        s0, s1, s2 = (pat.dims[k].stride for k in range(3))
        ebytes = Signal(3)
        m.d.comb += ebytes.eq(Const(1, 3) << self.esize)
        contig = Signal()
        runlen = Signal(COUNT_BITS + 2)
        nruns = Signal(COUNT_BITS)
        m.d.comb += [
            contig.eq(s0 == ebytes),
            runlen.eq(Mux(contig, c0 << self.esize, ebytes)),
            nruns.eq(Mux(contig, 1, c0)),
        ]
        cur, base0, base1, base2 = (Signal(aw, name=n) for n in ("cur", "base0", "base1", "base2"))
        rem = Signal(COUNT_BITS + 2)
        k0, i1, i2 = (Signal(COUNT_BITS, name=n) for n in ("k0", "i1", "i2"))

        room = Signal(bdbits + 1)
        m.d.comb += room.eq(bd - cur[:bdbits])
        m.d.comb += self.blen.eq(Mux(rem < room, rem, room))
        beats = Signal(bdbits + 2)
        m.d.comb += beats.eq((cur[:bbits] + self.blen + (bus - 1)) >> bbits)
        end = Signal(aw)
        m.d.comb += [
            self.addr.eq(cur),
            self.len.eq(beats - 1),
            self.lo.eq(cur[:bbits]),
            end.eq(cur + self.blen - 1),
            self.hi.eq(end[:bbits] + 1),
        ]
        more_run = Signal()
        more0 = Signal()
        more1 = Signal()
        more2 = Signal()
        m.d.comb += [
            more_run.eq(rem > self.blen),
            more0.eq(k0 + 1 < nruns),
            more1.eq(i1 + 1 < c1),
            more2.eq(i2 + 1 < c2),
            self.last.eq(~more_run & ~more0 & ~more1 & ~more2),
        ]
        start = pat.start[:aw]
        with m.If(self.start):
            m.d.sync += [
                cur.eq(start),
                base0.eq(start),
                base1.eq(start),
                base2.eq(start),
                rem.eq(runlen),
                k0.eq(0),
                i1.eq(0),
                i2.eq(0),
                self.offset.eq(0),
                self.valid.eq(1),
            ]
        with m.Elif(self.advance & self.valid):
            m.d.sync += self.offset.eq(self.offset + self.blen)
            with m.If(more_run):
                m.d.sync += [cur.eq(cur + self.blen), rem.eq(rem - self.blen)]
            with m.Elif(more0):
                m.d.sync += [
                    k0.eq(k0 + 1),
                    base0.eq(base0 + s0),
                    cur.eq(base0 + s0),
                    rem.eq(runlen),
                ]
            with m.Elif(more1):
                m.d.sync += [
                    k0.eq(0),
                    i1.eq(i1 + 1),
                    base1.eq(base1 + s1),
                    base0.eq(base1 + s1),
                    cur.eq(base1 + s1),
                    rem.eq(runlen),
                ]
            with m.Elif(more2):
                m.d.sync += [
                    k0.eq(0),
                    i1.eq(0),
                    i2.eq(i2 + 1),
                    base2.eq(base2 + s2),
                    base1.eq(base2 + s2),
                    base0.eq(base2 + s2),
                    cur.eq(base2 + s2),
                    rem.eq(runlen),
                ]
            with m.Else():
                m.d.sync += self.valid.eq(0)
        return m


# ---- the engine -----------------------------------------------------------------------------


class _State(enum.Enum, shape=3):
    IDLE = 0
    CHECK0 = 1
    CHECK1 = 2
    CHECK2 = 3
    RUN = 4
    DONE = 5


def _eq(value, const):
    """``value == const``; comparing with zero as ``~value.any()``, because Yosys turns
    ``x == 0`` into ``!x``, which Verilator rejects (WIDTHTRUNC) for multi-bit ``x``."""
    v = value.as_value() if hasattr(value, "as_value") else value
    c = const.value if isinstance(const, enum.Enum) else int(const)
    return ~v.any() if c == 0 else (v == c)


def _ge(const: int, value):
    """``const >= value`` for an unsigned ``value``, without a constant comparison when
    ``const`` is the largest value ``value`` can hold (Verilator's CMPCONST)."""
    return Const(1) if const >= (1 << len(value)) - 1 else (value <= const)


class DMA(wiring.Component):
    """The DMA engine of one core (see the module docstring for the contract).

    Parameters
    ----------
    params : NCoreParams
        ``axi_data_width``/``axi_addr_width`` size the AXI port; ``rows``, ``sbuf_depth``
        and ``lane_width`` the SBUF side.
    id_width : int
        AXI ID width (≥ 1). The engine uses ID 0 for everything.
    max_burst : int
        Longest burst in beats (a power of two, 1…256).
    max_reads, max_writes : int
        Read / write bursts outstanding at most (≥ 1).

    Members
    -------
    i_desc : In(stream.Signature(Descriptor))
        Taken only while idle and no error is pending.
    o_done : Out(stream.Signature(status_layout(params)))
        One record per descriptor taken: ``code`` (``NONE`` on success) and ``addr``.
    busy : Out(1)
        A descriptor is being checked, run, drained or reported.
    error : Out(1)
        Sticky: a descriptor ended with an error. ``err_code``/``err_addr`` hold the first.
    err_code : Out(ErrorCode)
    err_addr : Out(fault address bits)
    clear : In(1)
        Clears ``error``, ``err_code`` and ``err_addr``.
    axi : Out(AxiSignature)
        The AXI4 master.
    sbuf : Out(ChunkPortSignature(params))
        To :class:`ncore.hw.sbuf.SBuf`'s ``dma`` port.
    psum : Out(PsumReadSignature(params))
        Reads PSUM entries for ``PSUM_STORE`` (``ready`` low holds the transfer back).
    """

    def __init__(
        self,
        params: NCoreParams,
        *,
        id_width: int = 4,
        max_burst: int = 16,
        max_reads: int = 4,
        max_writes: int = 4,
    ):
        if isinstance(id_width, bool) or not isinstance(id_width, int) or id_width < 1:
            raise ValueError(f"id_width must be an integer ≥ 1, not {id_width!r}")
        if max_burst not in [1 << k for k in range(9)]:
            raise ValueError(f"max_burst must be a power of two in 1…256, not {max_burst!r}")
        for name, v in (("max_reads", max_reads), ("max_writes", max_writes)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
                raise ValueError(f"{name} must be an integer in 1…64, not {v!r}")
        self._params = params
        self._id_width = id_width
        self._max_burst = max_burst
        self._max_reads = max_reads
        self._max_writes = max_writes
        self._g = SBufGeometry(params)
        self._bus = params.axi_data_width // 8
        self._boundary = min(4096, max_burst * self._bus)
        super().__init__(
            {
                "i_desc": In(stream.Signature(Descriptor)),
                "o_done": Out(stream.Signature(status_layout(params))),
                "busy": Out(1),
                "error": Out(1),
                "err_code": Out(ErrorCode),
                "err_addr": Out(fault_addr_bits(params)),
                "clear": In(1),
                "axi": Out(
                    AxiSignature(
                        addr_width=params.axi_addr_width,
                        data_width=params.axi_data_width,
                        id_width=id_width,
                    )
                ),
                "sbuf": Out(ChunkPortSignature(params)),
                "psum": Out(PsumReadSignature(params)),
            }
        )

    @property
    def params(self) -> NCoreParams:
        return self._params

    @property
    def id_width(self) -> int:
        return self._id_width

    @property
    def max_burst(self) -> int:
        return self._max_burst

    @property
    def max_reads(self) -> int:
        return self._max_reads

    @property
    def max_writes(self) -> int:
        return self._max_writes

    def chunk_limit(self, esize: int) -> int:
        """Most elements per SBUF chunk for element size code ``esize`` (0 or 1), or per PSUM
        chunk (2; such chunks also end at every PSUM entry)."""
        return min(self._g.lanes, self._bus >> esize)

    def elaborate(self, platform):
        m = Module()
        p, g, B = self._params, self._g, self._bus
        aw, dw = p.axi_addr_width, p.axi_data_width
        bbits = _log2(B)
        fa = fault_addr_bits(p)
        ebits = max(g.capacity, p.cols * p.psum_depth).bit_length() + 1
        obits = ebits + 2
        cbits = _log2(p.cols)
        qcap = 3 * B  # 2·B sustains loads; stores need a third beat for the SBUF read latency
        lane16 = p.lane_width == 16

        m.submodules.queue = q = ByteQueue(qcap, B)
        m.submodules.scout = scout = SbufWalker(p)
        m.submodules.walk = walk = SbufWalker(p)
        m.submodules.dwalk = dwalk = DramWalker(p, self._boundary, obits)
        rinfo_l = data.StructLayout({"addr": aw, "len": 8, "lo": bbits or 1, "hi": bbits + 1})
        winfo_l = data.StructLayout({"len": 8, "lo": bbits or 1, "hi": bbits + 1})
        # The outstanding counters bound these FIFOs' occupancy; depth ≥ 2 because a depth-1
        # SyncFIFO has zero-width pointers, which Verilator rejects.
        rdepth, wdepth = max(2, self._max_reads), max(2, self._max_writes)
        m.submodules.rinfo = rinfo = SyncFIFO(width=rinfo_l.size, depth=rdepth)
        m.submodules.winfo = winfo = SyncFIFO(width=winfo_l.size, depth=wdepth)
        m.submodules.baddr = baddr = SyncFIFO(width=aw, depth=wdepth)

        desc = Signal(Descriptor)
        is_load = Signal()
        is_psum = Signal()  # PSUM_STORE: the source is the PSUM
        esz = Signal(2)  # log2 of the element size, for legal descriptors
        m.d.comb += [
            is_load.eq(_eq(desc.direction, Direction.LOAD)),
            is_psum.eq(desc.direction == Direction.PSUM_STORE),
            esz.eq(Mux(is_psum, 2, desc.esize == ElemSize.B2)),
        ]
        lmax = Mux(
            is_psum, self.chunk_limit(2), Mux(esz[0], self.chunk_limit(1), self.chunk_limit(0))
        )
        m.d.comb += [
            scout.pattern.eq(desc.sbuf),
            walk.pattern.eq(desc.sbuf),
            scout.psum.eq(is_psum),
            walk.psum.eq(is_psum),
            scout.lmax.eq(lmax),
            walk.lmax.eq(lmax),
            dwalk.pattern.eq(desc.dram),
            dwalk.esize.eq(esz),
        ]

        running = Signal()
        start = Signal()
        finish = Signal()
        fin_code = Signal(ErrorCode)
        fin_addr = Signal(fa)
        res_code = Signal(ErrorCode)
        res_addr = Signal(fa)

        # ---- sticky error -------------------------------------------------------------------
        with m.If(self.clear):
            m.d.sync += [self.error.eq(0), self.err_code.eq(ErrorCode.NONE), self.err_addr.eq(0)]
        with m.If(finish):
            m.d.sync += [res_code.eq(fin_code), res_addr.eq(fin_addr)]
            with m.If(fin_code != ErrorCode.NONE):
                m.d.sync += [
                    self.error.eq(1),
                    self.err_code.eq(fin_code),
                    self.err_addr.eq(fin_addr),
                ]

        # ---- descriptor checks ----------------------------------------------------------------
        dc = [desc.dram.dims[k].count for k in range(3)]
        ds = [desc.dram.dims[k].stride for k in range(3)]
        sc = [desc.sbuf.dims[k].count for k in range(3)]
        dprod = Signal(2 * COUNT_BITS)
        sprod = Signal(2 * COUNT_BITS)
        terms = [Signal(COUNT_BITS + STRIDE_BITS, name=f"term{k}") for k in range(3)]
        dn = Signal(3 * COUNT_BITS)
        sn = Signal(3 * COUNT_BITS)
        last_byte = Signal(67)

        # ---- state shared by the run ----------------------------------------------------------
        final_valid = Signal()  # load: the writer has finished (final_code says how)
        final_code = Signal(ErrorCode)
        final_addr = Signal(fa)
        rd_err = Signal()
        rd_code = Signal(ErrorCode)
        rd_addr = Signal(aw)
        wr_err = Signal()
        wr_code = Signal(ErrorCode)
        wr_addr = Signal(aw)
        sc_fault = Signal()
        sc_nok = Signal(range(g.lanes + 1))
        sc_addr = Signal(fa)
        src_done = Signal()  # store: every byte the SBUF side will give is in the queue
        rd_stop = Signal()  # store: the last SBUF read has been issued
        pend_valid = Signal()
        pend_n = Signal(range(g.lanes + 1))
        pend_last = Signal()
        rd_out = Signal(range(self._max_reads + 1))
        wr_out = Signal(range(self._max_writes + 1))
        rbeat = Signal(8)
        wbeat = Signal(8)

        store_done = Signal()

        # An explicit state register: Amaranth's FSM emits a casez Verilator lints as
        # incomplete.
        state = Signal(_State)
        # Ports are plain functions of registers (continuous assignments in Verilog): Icarus
        # does not evaluate an ``always @*`` block until one of its inputs changes, so a port
        # assigned inside a conditional would read X until the first state change.
        idle = Signal()
        m.d.comb += [
            idle.eq(_eq(state, _State.IDLE)),
            self.busy.eq(~idle),
            self.i_desc.ready.eq(idle & ~self.error),
            self.o_done.valid.eq(state == _State.DONE),
            self.o_done.payload.code.eq(res_code),
            self.o_done.payload.addr.eq(res_addr),
        ]
        with m.If(idle):
            with m.If(self.i_desc.valid & ~self.error):
                m.d.sync += desc.eq(self.i_desc.payload)
                m.d.sync += state.eq(_State.CHECK0)
        with m.Elif(state == _State.CHECK0):
            m.d.sync += [
                dprod.eq(dc[0] * dc[1]),
                sprod.eq(sc[0] * sc[1]),
                *[terms[k].eq((dc[k] - 1)[:COUNT_BITS] * ds[k]) for k in range(3)],
            ]
            m.d.sync += state.eq(_State.CHECK1)
        with m.Elif(state == _State.CHECK1):
            m.d.sync += [
                dn.eq(dprod * dc[2]),
                sn.eq(sprod * sc[2]),
                last_byte.eq(
                    desc.dram.start + terms[0] + terms[1] + terms[2] + Mux(is_psum, 3, esz)
                ),
            ]
            m.d.sync += state.eq(_State.CHECK2)
        with m.Elif(state == _State.CHECK2):
            dir_sb = _eq(desc.direction, Direction.LOAD) | (desc.direction == Direction.STORE)
            size_sb = _eq(desc.esize, ElemSize.B1)
            if lane16:
                size_sb = size_sb | (desc.esize == ElemSize.B2)
            desc_ok = (dir_sb & size_sb) | (is_psum & (desc.esize == ElemSize.B4))
            zero = Const(0)
            for c in dc + sc:
                zero = zero | ~c.any()
            cap = Mux(is_psum, p.cols * p.psum_depth, g.capacity)
            m.d.comb += fin_addr.eq(0)
            with m.If(~desc_ok):
                m.d.comb += [finish.eq(1), fin_code.eq(ErrorCode.BAD_DESC)]
            with m.Elif(zero):
                m.d.comb += [finish.eq(1), fin_code.eq(ErrorCode.ZERO_COUNT)]
            with m.Elif((dn > cap) | (sn > cap)):
                m.d.comb += [finish.eq(1), fin_code.eq(ErrorCode.OVERSIZE)]
            with m.Elif(dn != sn):
                m.d.comb += [finish.eq(1), fin_code.eq(ErrorCode.COUNT_MISMATCH)]
            with m.Elif(last_byte[aw:].any()):
                m.d.comb += [
                    finish.eq(1),
                    fin_code.eq(ErrorCode.DRAM_RANGE),
                    fin_addr.eq(desc.dram.start[:fa]),
                ]
            with m.Else():
                m.d.comb += start.eq(1)
            with m.If(finish):
                m.d.sync += state.eq(_State.DONE)
            with m.Else():
                m.d.sync += state.eq(_State.RUN)
        with m.Elif(state == _State.RUN):
            m.d.comb += running.eq(1)
            with m.If(is_load):
                with m.If(final_valid & _eq(rd_out, 0)):
                    m.d.comb += [
                        finish.eq(1),
                        fin_code.eq(final_code),
                        fin_addr.eq(final_addr),
                    ]
                    m.d.sync += state.eq(_State.DONE)
            with m.Elif(store_done):
                m.d.comb += finish.eq(1)
                with m.If(wr_err):
                    m.d.comb += [fin_code.eq(wr_code), fin_addr.eq(wr_addr)]
                with m.Elif(sc_fault):
                    m.d.comb += [fin_code.eq(ErrorCode.SBUF_RANGE), fin_addr.eq(sc_addr)]
                with m.Else():
                    m.d.comb += [fin_code.eq(ErrorCode.NONE), fin_addr.eq(0)]
                m.d.sync += state.eq(_State.DONE)
        with m.Elif(state == _State.DONE):
            with m.If(self.o_done.ready):
                m.d.sync += state.eq(_State.IDLE)

        with m.If(start):
            m.d.sync += [
                final_valid.eq(0),
                rd_err.eq(0),
                wr_err.eq(0),
                sc_fault.eq(0),
                src_done.eq(0),
                rd_stop.eq(0),
                rbeat.eq(0),
                wbeat.eq(0),
            ]
        m.d.comb += [
            q.clear.eq(start),
            scout.start.eq(start),
            walk.start.eq(start),
            dwalk.start.eq(start),
        ]

        # ---- scout: range-checks the SBUF pattern ahead of the data ---------------------------
        sc_go = running & scout.valid & ~sc_fault
        m.d.comb += scout.advance.eq(sc_go & (scout.n_ok == scout.n))
        with m.If(sc_go & (scout.n_ok != scout.n)):
            m.d.sync += [
                sc_fault.eq(1),
                sc_nok.eq(scout.n_ok),
                sc_addr.eq((scout.addr + scout.n_ok)[:fa]),
            ]
        # Bytes of the stream known to belong to in-range elements: bursts start only below.
        ok_bytes = Signal(obits)
        m.d.comb += ok_bytes.eq((scout.elem + Mux(sc_fault, sc_nok, 0)) << esz)
        gate = dwalk.offset < ok_bytes

        # The data walker's current chunk may move once the scout has passed it.
        g_full = ~scout.valid | (scout.elem > walk.elem)
        g_part = sc_fault & (scout.elem == walk.elem)
        chunk_ready = Signal()
        n_take = Signal(range(g.lanes + 1))
        m.d.comb += [
            chunk_ready.eq(walk.valid & (g_full | g_part)),
            n_take.eq(Mux(g_full, walk.n, sc_nok)),
        ]

        # ---- address channels: one burst walker feeds AR (loads) or AW (stores) ---------------
        ar, awc = self.axi.ar, self.axi.aw
        ar_fire = Signal()
        aw_fire = Signal()
        m.d.comb += [
            ar_fire.eq(
                running
                & is_load
                & ~final_valid
                & ~rd_err
                & dwalk.valid
                & gate
                & (rd_out < self._max_reads)
                & (~ar.valid | ar.ready)
            ),
            aw_fire.eq(
                running
                & ~is_load
                & ~wr_err
                & dwalk.valid
                & gate
                & (wr_out < self._max_writes)
                & (~awc.valid | awc.ready)
            ),
            dwalk.advance.eq(ar_fire | aw_fire),
        ]
        for ch, fire in ((ar, ar_fire), (awc, aw_fire)):
            with m.If(fire):
                m.d.sync += [
                    ch.valid.eq(1),
                    ch.payload.id.eq(0),
                    ch.payload.addr.eq(dwalk.addr),
                    ch.payload.len.eq(dwalk.len),
                    ch.payload.size.eq(bbits),
                    ch.payload.burst.eq(_INCR),
                ]
            with m.Elif(ch.ready):
                m.d.sync += ch.valid.eq(0)
        rinfo_w = Signal(rinfo_l)
        winfo_w = Signal(winfo_l)
        m.d.comb += [
            rinfo_w.addr.eq(dwalk.addr),
            rinfo_w.len.eq(dwalk.len),
            rinfo_w.lo.eq(dwalk.lo),
            rinfo_w.hi.eq(dwalk.hi),
            rinfo.w_data.eq(rinfo_w),
            rinfo.w_en.eq(ar_fire),
            winfo_w.len.eq(dwalk.len),
            winfo_w.lo.eq(dwalk.lo),
            winfo_w.hi.eq(dwalk.hi),
            winfo.w_data.eq(winfo_w),
            winfo.w_en.eq(aw_fire),
            baddr.w_data.eq(dwalk.addr),
            baddr.w_en.eq(aw_fire),
        ]

        # ---- load: R beats → queue → SBUF chunks ----------------------------------------------
        r = self.axi.r
        rinf = data.View(rinfo_l, rinfo.r_data)
        r_first = _eq(rbeat, 0)
        r_lastb = rbeat == rinf.len
        r_lo = Mux(r_first, rinf.lo, 0)
        r_hi = Mux(r_lastb, rinf.hi, B)
        drain = final_valid | rd_err
        lw_pop = Signal(range(B + 1))
        q_room = Signal()
        m.d.comb += [
            q_room.eq(q.count - lw_pop <= qcap - B),
            r.ready.eq(running & is_load & rinfo.r_rdy & (drain | q_room)),
        ]
        r_take = r.valid & r.ready
        r_bad = r.payload.resp[1]  # SLVERR or DECERR
        with m.If(r_take):
            with m.If(r_lastb):
                m.d.comb += rinfo.r_en.eq(1)
                m.d.sync += rbeat.eq(0)
            with m.Else():
                m.d.sync += rbeat.eq(rbeat + 1)
            with m.If(~drain & r_bad):
                beat_addr = Cat(Const(0, bbits), (rinf.addr[bbits:] + rbeat)[: aw - bbits])
                m.d.sync += [
                    rd_err.eq(1),
                    rd_code.eq(
                        Mux(
                            r.payload.resp == _RESP_DECERR,
                            ErrorCode.RD_DECERR,
                            ErrorCode.RD_SLVERR,
                        )
                    ),
                    rd_addr.eq(Mux(r_first, rinf.addr, beat_addr)),
                ]
        r_push = r_take & ~drain & ~r_bad
        m.d.sync += rd_out.eq(rd_out + ar_fire - (r_take & r_lastb))

        # SBUF write stage (registered, so the bank decode starts from flops).
        sw_en = Signal()
        sw_addr = Signal(len(self.sbuf.w_addr))
        sw_mask = Signal(g.lanes)
        sw_data = Signal(data.ArrayLayout(p.lane_width, g.lanes))
        m.d.comb += [
            self.sbuf.w_en.eq(sw_en),
            self.sbuf.w_addr.eq(sw_addr),
            self.sbuf.w_mask.eq(sw_mask),
            self.sbuf.w_data.eq(sw_data),
        ]
        head_lanes = []
        for i in range(g.lanes):
            byte = q.head.word_select(i, 8)
            if lane16 and 2 * i + 2 <= B:
                head_lanes.append(Mux(esz[0], q.head.word_select(i, 16), byte))
            else:
                head_lanes.append(byte)
        lw_active = running & is_load & ~final_valid & chunk_ready
        need = Signal(range(4 * g.lanes + 1))
        m.d.comb += need.eq(n_take << esz)
        lw_n = Signal(range(g.lanes + 1))  # elements written this cycle
        lw_fire = Signal()
        m.d.sync += sw_en.eq(lw_fire)
        with m.If(lw_active & (q.count >= need)):
            m.d.comb += [lw_fire.eq(1), lw_n.eq(n_take), lw_pop.eq(need)]
            with m.If(g_part):
                m.d.sync += [
                    final_valid.eq(1),
                    final_code.eq(ErrorCode.SBUF_RANGE),
                    final_addr.eq(sc_addr),
                ]
            with m.Elif(walk.last):
                m.d.sync += [final_valid.eq(1), final_code.eq(ErrorCode.NONE), final_addr.eq(0)]
        with m.Elif(lw_active & rd_err):
            # The queue holds every byte before the failing beat: write the whole elements.
            m.d.comb += [lw_fire.eq(1), lw_n.eq(q.count >> esz), lw_pop.eq((q.count >> esz) << esz)]
            m.d.sync += [final_valid.eq(1), final_code.eq(rd_code), final_addr.eq(rd_addr)]
        with m.If(lw_fire):
            m.d.sync += [
                sw_addr.eq(walk.addr[: len(sw_addr)]),
                sw_mask.eq(Cat(*[lw_n > i for i in range(g.lanes)])),
                *[sw_data[i].eq(head_lanes[i]) for i in range(g.lanes)],
            ]

        # ---- store: SBUF chunks → queue → W beats ---------------------------------------------
        pend_bytes = Mux(pend_valid, pend_n << esz, 0)
        w_pop = Signal(range(B + 1))
        rd_fire = Signal()
        # The read lands next cycle, after this cycle's push (pend) and pop (W beat).
        m.d.comb += rd_fire.eq(
            running
            & ~is_load
            & ~rd_stop
            & ~wr_err
            & chunk_ready
            & (~is_psum | self.psum.ready)
            & (q.count + pend_bytes - w_pop <= qcap - B)
        )
        pbits_e = _log2(p.psum_depth)
        p_col = Signal(max(cbits, 1))  # column of the PSUM read in flight
        m.d.comb += [
            self.sbuf.r_en.eq(rd_fire & ~is_psum),
            self.sbuf.r_addr.eq(walk.addr[: len(self.sbuf.r_addr)]),
            self.psum.en.eq(rd_fire & is_psum),
            self.psum.addr.eq(walk.addr[cbits : cbits + pbits_e]),
            walk.advance.eq((lw_fire | rd_fire) & g_full),
        ]
        if cbits:
            with m.If(rd_fire):
                m.d.sync += p_col.eq(walk.addr[:cbits])
        m.d.sync += pend_valid.eq(rd_fire)
        with m.If(rd_fire):
            m.d.sync += [pend_n.eq(n_take), pend_last.eq(g_part | walk.last)]
            with m.If(g_part | walk.last):
                m.d.sync += rd_stop.eq(1)
        with m.If(pend_valid & pend_last):
            m.d.sync += src_done.eq(1)
        rd_bytes1 = Cat(*[self.sbuf.r_data[i][:8] for i in range(min(g.lanes, B))])
        if lane16:
            rd_bytes2 = Cat(*[self.sbuf.r_data[i] for i in range(min(g.lanes, B // 2))])
            rd_bytes = Mux(esz[0], rd_bytes2, rd_bytes1)
        else:
            rd_bytes = rd_bytes1
        # PSUM: the chunk's words start at column p_col of the entry read.
        planes = self.chunk_limit(2)
        prow = Cat(self.psum.data.as_value(), Const(0, 32 * planes))
        rd_bytes4 = (prow >> Cat(Const(0, 5), p_col[:cbits]))[: 32 * planes]
        rd_bytes = Mux(is_psum, rd_bytes4, rd_bytes)

        w = self.axi.w
        winf = data.View(winfo_l, winfo.r_data)
        w_first = _eq(wbeat, 0)
        w_lastb = wbeat == winf.len
        w_lo = Signal(range(B))
        w_hi = Signal(range(B + 1))
        w_need = Signal(range(B + 1))
        w_avail = Signal(range(B + 1))
        w_n = Signal(range(B + 1))
        m.d.comb += [
            w_lo.eq(Mux(w_first, winf.lo, 0)),
            w_hi.eq(Mux(w_lastb, winf.hi, B)),
            w_need.eq(w_hi - w_lo),
            w_avail.eq(Mux(q.count < w_need, q.count, w_need)),
            w_n.eq(Mux(wr_err, 0, w_avail)),
        ]
        w_fire = Signal()
        m.d.comb += w_fire.eq(
            running
            & ~is_load
            & winfo.r_rdy
            & (~w.valid | w.ready)
            & (wr_err | (q.count >= w_need) | src_done)
        )
        m.d.comb += w_pop.eq(Mux(w_fire, w_n, 0))
        with m.If(w_fire):
            m.d.sync += [
                w.valid.eq(1),
                w.payload.data.eq((q.head << Cat(Const(0, 3), w_lo))[:dw]),
                w.payload.strb.eq(Cat(*[_ge(j, w_lo) & (j < w_lo + w_n) for j in range(B)])),
                w.payload.last.eq(w_lastb),
            ]
            with m.If(w_lastb):
                m.d.comb += winfo.r_en.eq(1)
                m.d.sync += wbeat.eq(0)
            with m.Else():
                m.d.sync += wbeat.eq(wbeat + 1)
        with m.Elif(w.ready):
            m.d.sync += w.valid.eq(0)

        b = self.axi.b
        m.d.comb += b.ready.eq(running)
        b_take = b.valid & b.ready
        with m.If(b_take):
            m.d.comb += baddr.r_en.eq(1)
            with m.If(b.payload.resp[1] & ~wr_err):
                m.d.sync += [
                    wr_err.eq(1),
                    wr_code.eq(
                        Mux(
                            b.payload.resp == _RESP_DECERR,
                            ErrorCode.WR_DECERR,
                            ErrorCode.WR_SLVERR,
                        )
                    ),
                    wr_addr.eq(baddr.r_data),
                ]
        m.d.sync += wr_out.eq(wr_out + aw_fire - b_take)

        aw_finished = ~awc.valid & (~dwalk.valid | wr_err | (sc_fault & (dwalk.offset >= ok_bytes)))
        m.d.comb += store_done.eq(
            aw_finished
            & ~winfo.r_rdy
            & ~w.valid
            & _eq(wr_out, 0)
            & (src_done | wr_err)
            & ~pend_valid
        )

        # ---- the queue is shared: loads push beats and pop chunks, stores the reverse ---------
        with m.If(is_load):
            m.d.comb += [
                q.push_data.eq(r.payload.data >> Cat(Const(0, 3), r_lo)),
                q.push_n.eq(Mux(r_push, r_hi - r_lo, 0)),
                q.pop_n.eq(lw_pop),
            ]
        with m.Else():
            m.d.comb += [
                q.push_data.eq(rd_bytes),
                q.push_n.eq(pend_bytes),
                q.pop_n.eq(w_pop),
            ]
        return m
