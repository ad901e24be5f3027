"""Golden model of the DMA engine: what a descriptor does to DRAM, SBUF and PSUM, and what
it costs.

A descriptor (see :class:`Descriptor`, and :class:`ncore.hw.dma.Descriptor` for the bit
layout) moves ``n`` elements of 1, 2 or 4 bytes between two access patterns, each a start
plus three ``(count, stride)`` pairs, innermost first:

* the DRAM side in bytes: element ``(i2, i1, i0)`` is at byte
  ``start + i0·s0 + i1·s1 + i2·s2`` (little-endian for 2- and 4-byte elements);
* the on-chip side (the descriptor's ``sbuf`` field) in linear element addresses: of the
  SBUF (``entry << pbits | partition``, see :mod:`ncore.golden.sbuf`) for ``LOAD`` and
  ``STORE``, of the PSUM (``entry << cbits | column``, see :mod:`ncore.golden.psum`) for
  ``PSUM_STORE``.

Directions and element sizes
    ``LOAD`` (DRAM → SBUF) and ``STORE`` (SBUF → DRAM) move 1-byte elements (``B1``; on
    16-bit-lane builds the low byte of a lane, loaded zero-extended) or 2-byte elements
    (``B2``, 16-bit-lane builds only). ``PSUM_STORE`` (PSUM → DRAM) moves the 32-bit PSUM
    words (int32 or fp32 bit patterns) as 4-byte little-endian elements and needs ``B4``;
    ``B4`` with ``LOAD``/``STORE``, any other size with ``PSUM_STORE``, and direction 3 are
    ``BAD_DESC``. A ``PSUM_STORE`` is a store in everything but its source: the same
    bursts, strobes, write-error rules and partial effects.

Elements are moved in pattern order (``i0`` fastest) on both sides; both sides describe the
same number of elements. Strides are unsigned.

Validation (nothing is transferred; checked in this order)
    ``BAD_DESC`` (direction or element size not implemented), ``ZERO_COUNT``, ``OVERSIZE``
    (either side moves more elements than the on-chip memory holds: ``rows·sbuf_depth``,
    or ``cols·psum_depth`` for ``PSUM_STORE``), ``COUNT_MISMATCH``, ``DRAM_RANGE`` (the
    DRAM pattern's last byte is beyond the AXI address space; reported address: the DRAM
    start). Descriptor errors other than ``DRAM_RANGE`` report address 0.

Transfer faults (element order decides)
    ``SBUF_RANGE``: the first element whose on-chip address is out of range (for a
    ``PSUM_STORE``: whose PSUM column is ``≥ cols`` or entry ``≥ psum_depth``; reported
    address: that linear PSUM address). ``RD_SLVERR`` /
    ``RD_DECERR``: the first read beat answered with an error; the reported address is the
    beat's address (the burst address for its first beat, the bus-aligned address after).
    A load writes exactly the elements before the first faulting one; an element that needs
    a byte from an erroring beat faults; an SBUF fault on the same element wins.
    A store writes the bytes of the elements before an SBUF fault (strobes off beyond it)
    and issues no burst that starts at or after it. ``WR_SLVERR`` / ``WR_DECERR``: the first
    burst answered with an error (reported address: its start); earlier bursts are written;
    the failing burst, and at most ``max_writes - 1`` later bursts the engine had already
    issued, may be written in whole or in part (:attr:`Outcome.maybe`); nothing later is.
    A write error outranks an SBUF fault (every issued burst starts before the SBUF fault).
    ``PSUM_STORE`` faults exactly like ``STORE``.

Bursts
    The DRAM side is read or written as *runs*: one run of ``count0`` elements per
    ``(i2, i1)`` when ``stride0`` equals the element size (contiguous), else one run per
    element. Runs split into INCR bursts of full bus width that never cross a multiple of
    ``min(4096, max_burst · bus bytes)`` (so never a 4 KiB boundary), first beat unaligned.

Chunks (the on-chip side, for the cost model)
    Up to :func:`chunk_limit` consecutive elements of one innermost row when its stride is
    1, else one element. A ``PSUM_STORE`` chunk also ends at every PSUM entry (the engine
    reads one PSUM entry per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..params import NCoreParams
from . import psum as gpsum
from . import sbuf as gsbuf

__all__ = [
    "COUNT_BITS",
    "DIMS",
    "DRAM_START_BITS",
    "OVERHEAD_BOUND",
    "READ_ROUND_TRIP",
    "SBUF_START_BITS",
    "STRIDE_BITS",
    "WRITE_ROUND_TRIP",
    "Burst",
    "Chunk",
    "Descriptor",
    "Direction",
    "DramFaults",
    "ElemSize",
    "ErrorCode",
    "Outcome",
    "Pattern",
    "Resp",
    "burst_boundary",
    "bursts",
    "chunk_limit",
    "chunks",
    "cost",
    "execute",
    "fault_addr_bits",
    "load",
    "onchip_capacity",
    "onchip_in_range",
    "psum_store",
    "runs",
    "store",
    "validate",
]

#: Field widths of the descriptor (the bit layout itself is :class:`ncore.hw.dma.Descriptor`).
COUNT_BITS = 16
STRIDE_BITS = 32
DRAM_START_BITS = 64
SBUF_START_BITS = 32
DIMS = 3


class Direction(IntEnum):
    LOAD = 0  #: DRAM → SBUF
    STORE = 1  #: SBUF → DRAM
    PSUM_STORE = 2  #: PSUM → DRAM, 4-byte elements (``ElemSize.B4`` only)


class ElemSize(IntEnum):
    """log2 of the element size in bytes."""

    B1 = 0
    B2 = 1
    B4 = 2  #: PSUM_STORE only (32-bit PSUM words)


class ErrorCode(IntEnum):
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


class Resp(IntEnum):
    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


def fault_addr_bits(params: NCoreParams) -> int:
    """Width of the reported faulting address (addresses are reported modulo 2**width)."""
    return max(params.axi_addr_width, SBUF_START_BITS)


@dataclass(frozen=True)
class Pattern:
    """An access pattern: ``start`` plus up to three ``(count, stride)`` pairs, innermost
    first. Missing dimensions are ``(1, 0)``."""

    start: int
    dims: tuple = ((1, 0),)

    def __post_init__(self):
        dims = tuple((int(c), int(s)) for c, s in self.dims)
        if len(dims) > DIMS:
            raise ValueError(f"a pattern has at most {DIMS} dimensions, not {len(dims)}")
        dims = dims + ((1, 0),) * (DIMS - len(dims))
        for c, s in dims:
            if not 0 <= c < 1 << COUNT_BITS:
                raise ValueError(f"count {c} does not fit {COUNT_BITS} bits")
            if not 0 <= s < 1 << STRIDE_BITS:
                raise ValueError(f"stride {s} does not fit {STRIDE_BITS} unsigned bits")
        object.__setattr__(self, "dims", dims)

    @property
    def elements(self) -> int:
        n = 1
        for c, _ in self.dims:
            n *= c
        return n

    def addresses(self) -> np.ndarray:
        """Every element's address, in pattern order (``i0`` fastest), as int64."""
        (c0, s0), (c1, s1), (c2, s2) = self.dims
        i2, i1, i0 = np.meshgrid(np.arange(c2), np.arange(c1), np.arange(c0), indexing="ij")
        return (self.start + i0 * s0 + i1 * s1 + i2 * s2).astype(np.int64).ravel()

    def fields(self) -> dict:
        return {"start": self.start, "dims": [{"count": c, "stride": s} for c, s in self.dims]}


@dataclass(frozen=True)
class Descriptor:
    """One DMA transfer. ``esize`` is an :class:`ElemSize` code (0: 1 byte, 1: 2 bytes,
    2: 4 bytes). ``sbuf`` is the on-chip pattern: SBUF linear addresses, or PSUM linear
    addresses for ``PSUM_STORE``."""

    direction: int
    esize: int
    dram: Pattern
    sbuf: Pattern

    def __post_init__(self):
        if not 0 <= self.dram.start < 1 << DRAM_START_BITS:
            raise ValueError(f"DRAM start {self.dram.start:#x} does not fit 64 bits")
        if not 0 <= self.sbuf.start < 1 << SBUF_START_BITS:
            raise ValueError(f"SBUF start {self.sbuf.start:#x} does not fit 32 bits")
        if not 0 <= self.direction < 4 or not 0 <= self.esize < 4:
            raise ValueError("direction and esize are 2-bit codes")

    @property
    def ebytes(self) -> int:
        return 1 << self.esize

    def fields(self) -> dict:
        """Field values for ``ncore.hw.dma.Descriptor.const(...)``."""
        return {
            "direction": int(self.direction),
            "esize": int(self.esize),
            "dram": self.dram.fields(),
            "sbuf": self.sbuf.fields(),
        }


def load(dram: Pattern, sbuf: Pattern, esize: int = ElemSize.B1) -> Descriptor:
    return Descriptor(Direction.LOAD, esize, dram, sbuf)


def store(sbuf: Pattern, dram: Pattern, esize: int = ElemSize.B1) -> Descriptor:
    return Descriptor(Direction.STORE, esize, dram, sbuf)


def psum_store(psum: Pattern, dram: Pattern) -> Descriptor:
    """PSUM → DRAM: ``psum`` in linear PSUM addresses, 4-byte elements."""
    return Descriptor(Direction.PSUM_STORE, ElemSize.B4, dram, psum)


def onchip_capacity(desc: Descriptor, params: NCoreParams) -> int:
    """Elements the descriptor's on-chip memory holds (the OVERSIZE limit)."""
    if desc.direction == Direction.PSUM_STORE:
        return gpsum.capacity(params)
    return gsbuf.capacity(params)


def onchip_in_range(desc: Descriptor, params: NCoreParams, addr):
    """True where ``addr`` is an existing element of the descriptor's on-chip memory."""
    if desc.direction == Direction.PSUM_STORE:
        return gpsum.in_range(params, addr)
    return gsbuf.in_range(params, addr)


# -- validation -------------------------------------------------------------------------------


def validate(desc: Descriptor, params: NCoreParams):
    """``(code, address)`` of the descriptor error, or None if the descriptor is legal."""
    if desc.direction == Direction.PSUM_STORE:
        if desc.esize != ElemSize.B4:
            return ErrorCode.BAD_DESC, 0
    elif desc.direction in (Direction.LOAD, Direction.STORE):
        if desc.esize not in (ElemSize.B1, ElemSize.B2) or desc.ebytes * 8 > params.lane_width:
            return ErrorCode.BAD_DESC, 0
    else:
        return ErrorCode.BAD_DESC, 0
    if any(c == 0 for c, _ in desc.dram.dims + desc.sbuf.dims):
        return ErrorCode.ZERO_COUNT, 0
    cap = onchip_capacity(desc, params)
    if desc.dram.elements > cap or desc.sbuf.elements > cap:
        return ErrorCode.OVERSIZE, 0
    if desc.dram.elements != desc.sbuf.elements:
        return ErrorCode.COUNT_MISMATCH, 0
    last = desc.dram.start + sum((c - 1) * s for c, s in desc.dram.dims) + desc.ebytes - 1
    if last >> params.axi_addr_width:
        return ErrorCode.DRAM_RANGE, desc.dram.start % (1 << fault_addr_bits(params))
    return None


# -- bursts and chunks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    addr: int  #: AxADDR (first byte, possibly unaligned)
    nbytes: int  #: bytes of the transfer in this burst
    beats: int
    offset: int  #: bytes of the transfer's byte stream before this burst

    def beat_addrs(self, bus_bytes: int) -> list[int]:
        """Address of each beat: the burst address, then bus-aligned addresses."""
        base = self.addr & ~(bus_bytes - 1)
        return [self.addr] + [base + k * bus_bytes for k in range(1, self.beats)]

    def beat_spans(self, bus_bytes: int) -> list[tuple[int, int]]:
        """Per beat, ``(first, end)`` stream offsets of the bytes it carries."""
        spans, pos = [], self.offset
        for a in self.beat_addrs(bus_bytes):
            end_addr = min(self.addr + self.nbytes, (a | (bus_bytes - 1)) + 1)
            n = end_addr - a
            spans.append((pos, pos + n))
            pos += n
        return spans


def runs(desc: Descriptor) -> list[tuple[int, int]]:
    """DRAM runs ``(address, bytes)`` in order."""
    (c0, s0), (c1, s1), (c2, s2) = desc.dram.dims
    eb = desc.ebytes
    out = []
    for i2 in range(c2):
        for i1 in range(c1):
            base = desc.dram.start + i1 * s1 + i2 * s2
            if s0 == eb:
                out.append((base, c0 * eb))
            else:
                out.extend((base + i0 * s0, eb) for i0 in range(c0))
    return out


def burst_boundary(params: NCoreParams, max_burst: int) -> int:
    return min(4096, max_burst * (params.axi_data_width // 8))


def bursts(desc: Descriptor, params: NCoreParams, max_burst: int = 16) -> list[Burst]:
    """The bursts of the DRAM side, in issue order."""
    bb = params.axi_data_width // 8
    bd = burst_boundary(params, max_burst)
    out, offset = [], 0
    for addr, n in runs(desc):
        while n:
            blen = min(n, bd - (addr % bd))
            beats = (addr % bb + blen + bb - 1) // bb
            out.append(Burst(addr, blen, beats, offset))
            addr, n, offset = addr + blen, n - blen, offset + blen
    return out


@dataclass(frozen=True)
class Chunk:
    addr: int  #: linear SBUF address of the first element
    n: int  #: elements (consecutive addresses)
    elem: int  #: index of the first element in pattern order


def chunk_limit(params: NCoreParams, esize: int) -> int:
    """Most elements one chunk carries: the chunk port's lanes, and one bus beat of bytes
    (the same for PSUM chunks, which also end at every PSUM entry)."""
    return min(gsbuf.chunk_lanes(params), (params.axi_data_width // 8) >> esize)


def chunks(desc: Descriptor, params: NCoreParams) -> list[Chunk]:
    """The on-chip chunks in order: runs of consecutive addresses when ``stride0 == 1`` (for
    ``PSUM_STORE`` also ending at every PSUM entry)."""
    (c0, s0), (c1, s1), (c2, s2) = desc.sbuf.dims
    lim = chunk_limit(params, desc.esize)
    seg = 1 << gpsum.cbits(params) if desc.direction == Direction.PSUM_STORE else None
    out, elem = [], 0
    for i2 in range(c2):
        for i1 in range(c1):
            base = desc.sbuf.start + i1 * s1 + i2 * s2
            if s0 == 1:
                i0 = 0
                while i0 < c0:
                    n = min(lim, c0 - i0)
                    if seg is not None:
                        n = min(n, seg - (base + i0) % seg)
                    out.append(Chunk(base + i0, n, elem))
                    elem += n
                    i0 += n
            else:
                for i0 in range(c0):
                    out.append(Chunk(base + i0 * s0, 1, elem))
                    elem += 1
    return out


# -- DRAM fault regions -----------------------------------------------------------------------


@dataclass
class DramFaults:
    """Address ranges ``[lo, hi)`` that answer with an error response (SLVERR or DECERR).

    A read beat fails if its bus word overlaps a region; a write burst fails if one of its
    strobed bytes lies in a region (the bench's slave model behaves the same way)."""

    regions: list = field(default_factory=list)  # (lo, hi, Resp)

    def read_resp(self, word_addr: int, bus_bytes: int) -> int:
        for lo, hi, resp in self.regions:
            if word_addr < hi and lo < word_addr + bus_bytes:
                return int(resp)
        return Resp.OKAY

    def write_resp(self, lo_addr: int, hi_addr: int) -> int:
        for lo, hi, resp in self.regions:
            if lo_addr < hi and lo < hi_addr:
                return int(resp)
        return Resp.OKAY


# -- execution --------------------------------------------------------------------------------


@dataclass
class Outcome:
    code: ErrorCode
    addr: int
    #: elements moved (loads: written to SBUF; stores: whose bytes were sent with strobes)
    elements: int = 0
    #: bursts issued on the AXI bus
    bursts: int = 0
    #: bytes of DRAM that may or may not have been written (stores after a write error)
    maybe: np.ndarray | None = None
    #: the values those bytes have if they were written
    maybe_values: np.ndarray | None = None


def _first_bad_sbuf(desc: Descriptor, params: NCoreParams):
    addrs = desc.sbuf.addresses()
    bad = np.flatnonzero(~onchip_in_range(desc, params, addrs))
    return (int(bad[0]), int(addrs[bad[0]])) if len(bad) else (None, None)


def execute(
    desc: Descriptor,
    params: NCoreParams,
    dram: np.ndarray,
    sbuf: np.ndarray,
    *,
    max_burst: int = 16,
    max_writes: int = 4,
    faults: DramFaults | None = None,
    dram_base: int = 0,
    psum: np.ndarray | None = None,
) -> Outcome:
    """Apply ``desc`` to ``dram`` (``uint8`` array holding addresses ``dram_base …``) and
    ``sbuf`` (``rows × sbuf_depth``) in place, and return what the engine reports.
    ``psum`` (``cols × psum_depth`` uint32, e.g. ``Psum.mem``) is the source of a
    ``PSUM_STORE`` (required for one; never written)."""
    faults = faults or DramFaults()
    amask = (1 << fault_addr_bits(params)) - 1
    bad = validate(desc, params)
    if bad is not None:
        return Outcome(ErrorCode(bad[0]), bad[1])
    bb = params.axi_data_width // 8
    eb = desc.ebytes
    n = desc.sbuf.elements
    k_s, a_s = _first_bad_sbuf(desc, params)
    good = n if k_s is None else k_s  # elements before an SBUF fault
    issued = [b for b in bursts(desc, params, max_burst) if b.offset < good * eb]
    dram_addrs = desc.dram.addresses()
    sbuf_addrs = desc.sbuf.addresses()
    # Byte addresses of the transfer's byte stream, element by element.
    byte_addrs = (dram_addrs[:, None] + np.arange(eb)[None, :]).ravel() - dram_base

    if desc.direction == Direction.LOAD:
        k_r = rd_code = rd_addr = None
        for b in issued:
            for a, (first, _end) in zip(b.beat_addrs(bb), b.beat_spans(bb), strict=True):
                resp = faults.read_resp(a & ~(bb - 1), bb)
                if resp in (Resp.SLVERR, Resp.DECERR):
                    k_r = first // eb
                    rd_code = ErrorCode.RD_DECERR if resp == Resp.DECERR else ErrorCode.RD_SLVERR
                    rd_addr = a
                    break
            if k_r is not None:
                break
        if k_s is not None and (k_r is None or k_s <= k_r):
            code, addr, moved = ErrorCode.SBUF_RANGE, a_s, k_s
        elif k_r is not None:
            code, addr, moved = rd_code, rd_addr, k_r
        else:
            code, addr, moved = ErrorCode.NONE, 0, n
        src = dram[byte_addrs[: moved * eb]].astype(np.uint16).reshape(moved, eb)
        values = src[:, 0] | (src[:, 1] << 8) if eb == 2 else src[:, 0]
        entry, part = gsbuf.decode(params, sbuf_addrs[:moved])
        # Later elements win where the pattern revisits an address, as in hardware.
        for e, p, v in zip(entry, part, values, strict=True):
            sbuf[p, e] = v
        return Outcome(ErrorCode(code), addr & amask, moved, len(issued))

    # STORE and PSUM_STORE
    if desc.direction == Direction.PSUM_STORE:
        if psum is None:
            raise ValueError("a PSUM_STORE needs the PSUM contents (psum=)")
        entry, col = gpsum.decode(params, sbuf_addrs[:good])
        vals = np.asarray(psum)[col, entry].astype(np.uint32)
    else:
        entry, part = gsbuf.decode(params, sbuf_addrs[:good])
        vals = sbuf[part, entry].astype(np.uint32)
    shifts = np.arange(eb, dtype=np.uint32) * 8
    stream = ((vals[:, None] >> shifts[None, :]) & 0xFF).astype(np.uint8).ravel()
    code, addr = (ErrorCode.SBUF_RANGE, a_s) if k_s is not None else (ErrorCode.NONE, 0)
    maybe = maybe_values = None
    for i, b in enumerate(issued):
        nstrobed = min(b.nbytes, len(stream) - b.offset)
        resp = faults.write_resp(b.addr, b.addr + nstrobed)
        if resp in (Resp.SLVERR, Resp.DECERR):
            code = ErrorCode.WR_DECERR if resp == Resp.DECERR else ErrorCode.WR_SLVERR
            addr = b.addr
            maybe = np.zeros(len(dram), bool)
            maybe_values = dram.copy()
            for w in issued[i : i + max_writes]:
                k = min(w.nbytes, len(stream) - w.offset)
                idx = byte_addrs[w.offset : w.offset + k]
                maybe[idx] = True
                maybe_values[idx] = stream[w.offset : w.offset + k]
            break
        idx = byte_addrs[b.offset : b.offset + nstrobed]
        dram[idx] = stream[b.offset : b.offset + nstrobed]
    return Outcome(code, addr & amask, good, len(issued), maybe, maybe_values)


# -- cycle cost -------------------------------------------------------------------------------

#: Cycles a burst holds an outstanding slot beyond its beats, from the engine choosing it to
#: the engine seeing its last response, with cocotbext-axi's ``AxiRam`` (measured with one
#: burst outstanding; a property of the engine and that memory together).
READ_ROUND_TRIP = 4
WRITE_ROUND_TRIP = 5
#: Bound on the cycles a descriptor takes beyond :func:`cost`'s ``stream_cycles`` with an
#: always-ready ``AxiRam`` (checks, first-beat latency, drain; about 10 measured).
OVERHEAD_BOUND = 24


def cost(
    desc: Descriptor,
    params: NCoreParams,
    max_burst: int = 16,
    max_outstanding: int = 4,
    round_trip: int | None = None,
) -> dict:
    """Work a legal descriptor costs, and the cycles that bound it.

    Counts runs, bursts, beats and SBUF (or PSUM) chunks. ``stream_cycles`` is the busiest
    resource with an always-ready memory: the data channel (one beat per cycle), the SBUF
    port or PSUM read port (one chunk per cycle), or the outstanding-burst window (each
    burst holds one of ``max_outstanding`` slots for ``round_trip + beats − 1`` cycles;
    ``round_trip`` defaults to :data:`READ_ROUND_TRIP` / :data:`WRITE_ROUND_TRIP`). A
    transfer takes
    ``stream_cycles`` plus a fixed overhead below :data:`OVERHEAD_BOUND`.
    """
    if round_trip is None:
        round_trip = READ_ROUND_TRIP if desc.direction == Direction.LOAD else WRITE_ROUND_TRIP
    bl = bursts(desc, params, max_burst)
    ch = chunks(desc, params)
    beats = sum(b.beats for b in bl)
    window = -(-sum(round_trip + b.beats - 1 for b in bl) // max_outstanding)
    return {
        "elements": desc.sbuf.elements,
        "bytes": desc.sbuf.elements * desc.ebytes,
        "runs": len(runs(desc)),
        "bursts": len(bl),
        "beats": beats,
        "chunks": len(ch),
        "stream_cycles": max(beats, len(ch), window),
    }
