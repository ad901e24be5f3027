"""The state buffer (SBUF): ``rows`` partitions, banked for full-row engine reads and
full-bus DMA chunks.

Addressing
    One element per entry (``lane_width`` bits: int8 in the low byte, or 16-bit fp16/bf16).
    The *linear element address* is ``entry << pbits | partition`` with
    ``pbits = ceil(log2(rows))``: consecutive addresses walk across the partitions of one
    entry, then on to the next entry, so a row-major ``M × rows`` int8 matrix in DRAM loads
    with one contiguous pattern (partition = column ``k``, entry = row ``m``). An address
    whose partition field is ``≥ rows`` or whose entry is ``≥ sbuf_depth`` is out of range.

Banks
    Each partition is split into ``sub = max(1, E >> pbits)`` sub-banks (``E``: int8
    elements per AXI beat; capped at ``sbuf_depth / 2``), interleaved by entry: sub-bank
    ``entry mod sub`` holds bank row ``entry // sub``. Every sub-bank is one
    :class:`amaranth.lib.memory.Memory` (``banks[p][s]``). Any ``lanes = min(E, sub << pbits)``
    consecutive linear addresses hit each (partition, sub-bank) at most once, so a chunk of
    that many elements is one write (or read) per bank. For power-of-two ``rows`` this is the
    ``ceil(E / rows)`` of the architecture notes; for other ``rows`` the unused partition
    codes make ``E >> pbits`` enough.

Ports (all synchronous, no stalls)
    * One row read port per engine (``tensor``, ``vector``): ``en`` and ``addr`` (an entry) in
      one cycle, all ``rows`` elements of that entry on ``data`` the next cycle. ``data``
      holds its value while ``en`` is low.
    * One DMA chunk port (``dma``): a write of up to ``lanes`` elements at consecutive linear
      addresses ``w_addr + i`` with per-lane enables ``w_mask``, and a read of ``lanes``
      elements from ``r_addr + i`` whose data appear on ``r_data`` the next cycle. Lanes whose
      address is out of range are dropped on write and read as unspecified data; the DMA
      checks ranges before it issues a chunk.

Conflicts
    Every bank has its own physical read port per engine and for the DMA, and a single
    write port owned by the DMA chunk port, so no port ever waits: a row read, a DMA read
    and a DMA write all complete in the cycle they are issued. The price is area: a bank
    with ``readers + 1`` read ports is ``readers + 1`` copies of a single-read-port RAM on an
    FPGA, or a multi-port macro on silicon. All read ports are non-transparent: a read of an
    entry written in the same cycle returns the old value. Engines and the DMA are ordered by
    semaphores, so a correct program never reads an entry in the cycle the DMA writes it.
"""

from amaranth.hdl import Array, Const, Module, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams

__all__ = ["ChunkPortSignature", "RowReadSignature", "RowWriteSignature", "SBuf", "SBufGeometry"]


def _log2(n: int) -> int:
    return (n - 1).bit_length()


def _gt(value, const: int):
    """``value > const``, folded to 0 when ``const`` is ``value``'s maximum (Verilator's
    CMPCONST)."""
    return Const(0) if const >= (1 << len(value)) - 1 else (value > const)


class SBufGeometry:
    """Address and bank geometry of the SBUF for ``params`` (see the module docstring)."""

    def __init__(self, params: NCoreParams):
        self.params = params
        self.rows = params.rows
        self.depth = params.sbuf_depth
        self.lane_width = params.lane_width
        self.bus_bytes = params.axi_data_width // 8
        self.pbits = _log2(params.rows)
        # Capped so every bank keeps at least two rows (a zero-width bank address is illegal
        # Verilog for some tools); only reached by toy depths.
        self.sub = min(max(1, self.bus_bytes >> self.pbits), params.sbuf_depth // 2)
        self.sub_bits = _log2(self.sub)
        #: banks in one interleave period: ``sub << pbits`` (some absent when rows < 2**pbits)
        self.period = self.sub << self.pbits
        self.period_bits = self.pbits + self.sub_bits
        self.lanes = min(self.bus_bytes, self.period)
        self.entry_bits = _log2(params.sbuf_depth)
        self.addr_bits = self.pbits + self.entry_bits
        self.bank_depth = params.sbuf_depth // self.sub
        self.row_bits = self.addr_bits - self.period_bits
        self.capacity = params.rows * params.sbuf_depth


class RowReadSignature(wiring.Signature):
    """An engine's row read port, seen from the engine.

    Members
    -------
    en : Out(1)
    addr : Out(entry bits)
        Entry to read; all partitions of it arrive on ``data`` one cycle later.
    data : In(ArrayLayout(lane_width, rows))
        Element of partition ``k`` in lane ``k``.
    """

    def __init__(self, params: NCoreParams):
        g = SBufGeometry(params)
        super().__init__(
            {
                "en": Out(1),
                "addr": Out(max(g.entry_bits, 1)),
                "data": In(data.ArrayLayout(params.lane_width, params.rows)),
            }
        )


class RowWriteSignature(wiring.Signature):
    """An engine's row write port (the vector engine's results), seen from the engine.

    Members
    -------
    en : Out(1)
    addr : Out(entry bits)
        Entry to write; partition ``k`` gets lane ``k`` where ``mask`` bit ``k`` is set.
    mask : Out(rows)
    data : Out(ArrayLayout(lane_width, rows))
    ready : In(1)
        The write happens in a cycle with ``en`` and ``ready`` (the DMA's chunk writes have
        priority: ``ready`` is low while the DMA writes).
    """

    def __init__(self, params: NCoreParams):
        g = SBufGeometry(params)
        super().__init__(
            {
                "en": Out(1),
                "addr": Out(max(g.entry_bits, 1)),
                "mask": Out(params.rows),
                "data": Out(data.ArrayLayout(params.lane_width, params.rows)),
                "ready": In(1),
            }
        )


class ChunkPortSignature(wiring.Signature):
    """The DMA's chunk port, seen from the DMA.

    Members
    -------
    w_en : Out(1)
    w_addr : Out(addr bits)
        Linear address of lane 0; lane ``i`` writes ``w_addr + i``.
    w_mask : Out(lanes)
        Per-lane write enable.
    w_data : Out(ArrayLayout(lane_width, lanes))
    r_en : Out(1)
    r_addr : Out(addr bits)
        Linear address of lane 0; lane ``i`` reads ``r_addr + i``.
    r_data : In(ArrayLayout(lane_width, lanes))
        Valid the cycle after ``r_en``; held while ``r_en`` is low.
    """

    def __init__(self, params: NCoreParams):
        g = SBufGeometry(params)
        lanes = data.ArrayLayout(params.lane_width, g.lanes)
        super().__init__(
            {
                "w_en": Out(1),
                "w_addr": Out(max(g.addr_bits, 1)),
                "w_mask": Out(g.lanes),
                "w_data": Out(lanes),
                "r_en": Out(1),
                "r_addr": Out(max(g.addr_bits, 1)),
                "r_data": In(lanes),
            }
        )


class SBuf(wiring.Component):
    """The SBUF of one core (see the module docstring for addressing, banks and ports).

    Parameters
    ----------
    params : NCoreParams
    readers : tuple of str
        Names of the engine row read ports, one member each.
    row_writer : bool
        Add the ``row_w`` row write port.

    Members
    -------
    <reader> : In(RowReadSignature(params)), one per name in ``readers``
    dma : In(ChunkPortSignature(params))
    row_w : In(RowWriteSignature(params)), only with ``row_writer=True``
        Shares each bank's write port with the DMA, which wins: a row write waits (``ready``
        low) in a cycle the DMA writes.

    Attributes
    ----------
    banks : list of list of Memory
        ``banks[p][s]`` holds entries ``e`` of partition ``p`` with ``e % sub == s`` at row
        ``e // sub``.
    geometry : SBufGeometry
    """

    def __init__(self, params: NCoreParams, *, readers=("tensor", "vector"), row_writer=False):
        readers = tuple(readers)
        if not readers or len(set(readers)) != len(readers) or "dma" in readers:
            raise ValueError(f"readers must be distinct names other than 'dma', not {readers}")
        self._params = params
        self._readers = readers
        self._geom = g = SBufGeometry(params)
        self.banks = [
            [
                Memory(shape=unsigned(params.lane_width), depth=g.bank_depth, init=[])
                for _ in range(g.sub)
            ]
            for _ in range(params.rows)
        ]
        members = {name: In(RowReadSignature(params)) for name in readers}
        members["dma"] = In(ChunkPortSignature(params))
        self._row_writer = bool(row_writer)
        if row_writer:
            members["row_w"] = In(RowWriteSignature(params))
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._params

    @property
    def readers(self) -> tuple:
        return self._readers

    @property
    def geometry(self) -> SBufGeometry:
        return self._geom

    def elaborate(self, platform):
        g = self._geom
        m = Module()
        for p in range(g.rows):
            for s in range(g.sub):
                m.submodules[f"bank_p{p}_s{s}"] = self.banks[p][s]

        def split(addr):
            """(position in the interleave period, bank row, row overflow) of ``addr``."""
            r = addr[: g.period_bits] if g.period_bits else Const(0, 1)
            row = addr[g.period_bits : g.addr_bits] if g.row_bits else Const(0, 1)
            return r, row

        # ---- DMA chunk write: lane i → bank (w_addr + i) mod period -----------------------
        port = self.dma
        w_r, w_row = split(port.w_addr)
        w_lanes = Array(port.w_data[i] for i in range(g.lanes))
        w_bits = Array(port.w_mask[i] for i in range(g.lanes))
        for p in range(g.rows):
            for s in range(g.sub):
                fb = (s << g.pbits) | p
                wp = self.banks[p][s].write_port()
                lane = Signal(max(g.period_bits, 1), name=f"w_lane_p{p}_s{s}")
                m.d.comb += lane.eq((fb - w_r)[: max(g.period_bits, 1)] if g.period_bits else 0)
                # Banks before the start position belong to the next bank row.
                row = Signal(g.row_bits + 1, name=f"w_row_p{p}_s{s}")
                m.d.comb += row.eq(w_row + _gt(w_r, fb))
                hit = Signal(name=f"w_hit_p{p}_s{s}")
                if g.lanes < g.period:
                    # Index with the low bits so the lane mux covers every index value.
                    lane_ok, idx = lane < g.lanes, lane[: _log2(g.lanes)]
                else:
                    lane_ok, idx = Const(1), lane
                m.d.comb += [
                    hit.eq(lane_ok & w_bits[idx] & ~row[g.row_bits]),
                    wp.en.eq(port.w_en & hit),
                    wp.addr.eq(row[: g.row_bits] if g.row_bits else 0),
                    wp.data.eq(w_lanes[idx]),
                ]
                if self._row_writer:
                    rw = self.row_w
                    sub = rw.addr[: g.sub_bits]
                    sub_ok = (~sub.any() if s == 0 else sub == s) if g.sub_bits else 1
                    with m.If(~port.w_en & rw.en & rw.mask[p] & sub_ok):
                        m.d.comb += [
                            wp.en.eq(1),
                            wp.addr.eq(rw.addr[g.sub_bits : g.entry_bits] if g.row_bits else 0),
                            wp.data.eq(rw.data[p]),
                        ]

        if self._row_writer:
            m.d.comb += self.row_w.ready.eq(~port.w_en)

        # ---- DMA chunk read: bank (r_addr + i) mod period → lane i, one cycle later -------
        r_r, r_row = split(port.r_addr)
        r_pos = Signal(max(g.period_bits, 1))  # start position of the read in flight
        with m.If(port.r_en):
            m.d.sync += r_pos.eq(r_r)
        bank_out = [Const(0, g.lane_width)] * g.period
        for p in range(g.rows):
            for s in range(g.sub):
                fb = (s << g.pbits) | p
                rp = self.banks[p][s].read_port(transparent_for=())
                row = Signal(g.row_bits + 1, name=f"r_row_p{p}_s{s}")
                m.d.comb += [
                    row.eq(r_row + _gt(r_r, fb)),
                    rp.en.eq(port.r_en),
                    rp.addr.eq(row[: g.row_bits] if g.row_bits else 0),
                ]
                bank_out[fb] = rp.data
        bank_arr = Array(bank_out)
        for i in range(g.lanes):
            idx = (r_pos + i)[: g.period_bits] if g.period_bits else 0
            m.d.comb += port.r_data[i].eq(bank_arr[idx])

        # ---- engine row reads: entry e → bank (p, e mod sub), row e // sub, every p -------
        for name in self._readers:
            rd = getattr(self, name)
            sel = Signal(max(g.sub_bits, 1), name=f"{name}_sub")
            with m.If(rd.en):
                m.d.sync += sel.eq(rd.addr[: g.sub_bits] if g.sub_bits else 0)
            for p in range(g.rows):
                outs = []
                for s in range(g.sub):
                    rp = self.banks[p][s].read_port(transparent_for=())
                    m.d.comb += [
                        rp.en.eq(rd.en),
                        rp.addr.eq(rd.addr[g.sub_bits : g.entry_bits] if g.row_bits else 0),
                    ]
                    outs.append(rp.data)
                m.d.comb += rd.data[p].eq(Array(outs)[sel] if g.sub > 1 else outs[0])
        return m
