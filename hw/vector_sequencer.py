"""The vector queue's executor: runs ACT on the vector engine, from SBUF/PSUM into SBUF.

Commands arrive in program order on ``i_cmd`` (already decoded and validated by the core:
``n`` in 1…rows, every count ≥ 1, every entry exists, the configuration is legal). The
semantics are those of :meth:`ncore.golden.core.Core._act`:

* with ``load_params``, the ``3·P`` SBUF entries ``params + P·f + i`` (``P = 32 /
  lane_width``; field ``f`` = 0 scale, 1 bias, 2 shift; piece ``i`` holds bits
  ``i·lane_width`` upward) are read on ``src_port`` one per cycle; each field, assembled
  for lanes ``< rows`` (lanes ``≥ rows`` are 0), is written to the engine's ``i_param``
  as soon as its last piece arrives;
* then the ``src`` pattern (three nested counts, innermost first) is walked with the ``b``
  and ``dst`` follow patterns (same counts, their own start and strides; the walker is
  :class:`ncore.hw.tensor_sequencer._Walker`). Row ``r``'s ``a`` is PSUM entry ``src[r]``
  (``src_psum``: ``cols`` lanes of 32 bits) or SBUF entry ``src[r]`` on ``src_port``
  (``rows`` lanes, zero-extended); ``b`` is SBUF entry ``b[r]`` on ``b_port``, read only
  when ``config.op`` is not ACT (else 0); other lanes are 0. The row goes to the vector
  engine with the command's configuration and ``dst[r]`` as its tag;
* each result row is written through ``row_w`` to SBUF entry ``dst[r]``: the low
  ``lane_width`` bits of lanes ``< n``, partition mask ``< n``. The write waits while
  ``row_w.ready`` is low (a DMA chunk write has the bank); the engine's output FIFO and
  credits absorb the stall, and the reads stop (their data held on the ports) until there
  is room again, so no row is lost.

Rows are streamed: row ``r`` is written while later rows are still being read. That equals
the ISS's "all rows read before any is written" for every legal program (one whose element
``r'`` never reads what an earlier element ``r < r'`` of the same ACT writes; an element may
overwrite its own sources, and of two elements writing one entry the later wins).

Reads use one *slot* (the ``_RowReader`` idea of :mod:`ncore.hw.tensor_sequencer`, for
three ports at once): a read is issued when the slot is free or is emptied in the same cycle;
the slot holds what the SBUF/PSUM ports show the next cycle (a parameter piece, or a row with
its ``dst`` entry and ``last``), and since the ports hold their data while ``en`` is low, a
stalled slot needs no copy of the data.

Ordering and completion
    One ACT at a time: ``i_cmd.ready`` is high while no ACT is held, and in the cycle the
    held ACT's ``o_done`` pulses (so back-to-back ACTs lose no cycle). ``o_done`` pulses,
    with the command's ``signal`` fields, in the cycle the ACT's last row is written to SBUF
    (the write takes effect at the end of that cycle, so a semaphore raised by the pulse,
    or the next ACT's first read, at least one cycle later, sees it).

Timing (no backpressure: ``row_w.ready`` high)
    With the command taken in cycle 0, the first read is issued in cycle 1 (the walker is
    loaded from ``i_cmd``'s payload when it is taken; the counts and strides come from the
    registered command). The parameter pieces take cycles ``1 … 3P``, the first row read
    follows in the cycle the last field is written (``1 + 3P``), each row enters the
    engine the cycle after its read, and a row's result is written ``L`` cycles after it
    entered (``L`` = :attr:`ncore.hw.vector_engine.VectorEngine.latency`: 13 without the
    FP datapath, 20 with it). Hence ``o_done`` pulses in cycle::

        act_cycles(params, R, load_params) = R + L + 1 + (3·P if load_params else 0)

    after the command was taken, for an ACT of ``R`` rows; :func:`act_cycles` is that
    formula as a plain-Python function (no hardware is built; importing this module does
    import amaranth) for cycle models. Steady state is one row per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from ..params import NCoreParams
from .credit_buffer import CREDIT_BUFFER_CYCLES
from .isa import layout
from .sbuf import RowReadSignature, RowWriteSignature, SBufGeometry
from .tensor_sequencer import _Walker
from .vector_engine import Op as VOp
from .vector_engine import VectorEngine, _Stages, config_layout

__all__ = ["VectorSequencer", "act_cycles", "param_pieces", "vector_cmd_layout"]

_SIGNAL = data.StructLayout({"signal_en": 1, "signal_sem": 5})


def vector_cmd_layout() -> data.StructLayout:
    """One vector-queue command: an ACT body and the signal to raise at the end."""
    return data.StructLayout({"act": layout(isa.BODY[isa.Op.ACT]), "signal": _SIGNAL})


def param_pieces(params: NCoreParams) -> int:
    """SBUF entries per 32-bit parameter field: ``32 / lane_width`` (as
    :func:`ncore.golden.core.param_pieces`)."""
    return 32 // params.lane_width


def ve_latency(params: NCoreParams) -> int:
    """The vector engine's latency (:attr:`VectorEngine.latency`) without building it."""
    return _Stages(params.has_fp).out + CREDIT_BUFFER_CYCLES


def act_cycles(params: NCoreParams, rows: int, load_params: bool) -> int:
    """Cycles from an ACT of ``rows`` rows being taken on ``i_cmd`` (cycle 0) to its
    ``o_done`` pulse, without backpressure: ``rows + L + 1 (+ 3·P with load_params)``
    (see the module docstring). Plain Python."""
    return rows + ve_latency(params) + 1 + (3 * param_pieces(params) if load_params else 0)


class VectorSequencer(wiring.Component):
    """ACT executor with its vector engine (see the module docstring).

    Parameters
    ----------
    params : NCoreParams

    Members
    -------
    i_cmd : In(stream.Signature(vector_cmd_layout()))
    src_port : Out(RowReadSignature)
        SBUF row reads of ``src`` rows (when not ``src_psum``) and of the parameter entries.
    b_port : Out(RowReadSignature)
        SBUF row reads of the second operand.
    psum_rd : Out(en, addr, In(data))
        PSUM reads of ``src`` rows (``src_psum``); ``data`` one cycle after ``en``, held.
    row_w : Out(RowWriteSignature)
        Result rows into SBUF.
    o_done : Out(stream.Signature(signal fields, always_ready))
        One pulse per ACT, in the cycle its last row is written.
    busy : Out(1)
        An ACT is held (from the cycle after it was taken to its ``o_done`` pulse).
    rows : Out(32)
        Rows that entered the vector engine so far (a performance counter).
    """

    def __init__(self, params: NCoreParams):
        self._p = params
        self._geom = SBufGeometry(params)
        super().__init__(
            {
                "i_cmd": In(stream.Signature(vector_cmd_layout())),
                "src_port": Out(RowReadSignature(params)),
                "b_port": Out(RowReadSignature(params)),
                "psum_rd": Out(
                    wiring.Signature(
                        {
                            "en": Out(1),
                            "addr": Out(range(params.psum_depth)),
                            "data": In(data.ArrayLayout(32, params.cols)),
                        }
                    )
                ),
                "row_w": Out(RowWriteSignature(params)),
                "o_done": Out(stream.Signature(_SIGNAL, always_ready=True)),
                "busy": Out(1),
                "rows": Out(32),
            }
        )

    @property
    def params(self) -> NCoreParams:
        return self._p

    @property
    def latency(self) -> int:
        """The vector engine's latency ``L`` of :func:`act_cycles`."""
        return ve_latency(self._p)

    def elaborate(self, platform):
        p = self._p
        m = Module()
        P = param_pieces(p)
        pbits = P.bit_length() - 1  # P is 2 or 4
        lw = p.lane_width
        lanes = max(p.rows, p.cols)
        entry_bits = max(self._geom.entry_bits, 1)
        m.submodules.engine = ve = VectorEngine(p, tag_width=entry_bits)
        assert ve.latency == ve_latency(p)

        cmd_in = self.i_cmd.payload.act
        cmd = Signal(cmd_in.shape())
        sig = Signal(_SIGNAL)
        active = Signal()  # an ACT is held
        in_params = Signal()  # parameter pieces are being read
        walking = Signal()  # rows are being read
        piece = Signal(range(3 * P))  # next parameter piece to read

        # ---- completion ------------------------------------------------------------------
        out = ve.o_row.payload
        write = ve.o_row.valid & self.row_w.ready
        done = Signal()
        m.d.comb += [
            done.eq(write & out.last),
            self.o_done.valid.eq(done),
            self.o_done.payload.eq(sig),
        ]

        # ---- dispatch --------------------------------------------------------------------
        m.d.comb += self.i_cmd.ready.eq(~active | done)
        take = self.i_cmd.valid & self.i_cmd.ready
        walker = _Walker(
            m,
            "src",
            [cmd.src.dims[d].count for d in range(3)],
            [
                (cmd.src.start, [cmd.src.dims[d].stride for d in range(3)]),
                (cmd.b.start, [cmd.b.strides[d].stride for d in range(3)]),
                (cmd.dst.start, [cmd.dst.strides[d].stride for d in range(3)]),
            ],
        )
        with m.If(take):
            m.d.sync += [
                cmd.eq(cmd_in),
                sig.eq(self.i_cmd.payload.signal),
                active.eq(1),
                in_params.eq(cmd_in.load_params),
                walking.eq(~cmd_in.load_params),
                piece.eq(0),
            ]
            # The walker's first element, straight from the payload (walker.start() would
            # read the registered command, one cycle later).
            m.d.sync += [i.eq(0) for i in walker.idx]
            for v, start in enumerate((cmd_in.src.start, cmd_in.b.start, cmd_in.dst.start)):
                m.d.sync += walker.addr[v].eq(start)
                m.d.sync += [b.eq(start) for b in walker.base[v]]
        with m.Elif(done):
            m.d.sync += active.eq(0)
        m.d.comb += self.busy.eq(active)

        # ---- the read slot: what the ports show this cycle -------------------------------
        slot = Signal(
            data.StructLayout(
                {
                    "full": 1,
                    "param": 1,  # a parameter piece (else a row)
                    "field": 2,
                    "i": range(P),  # piece within the field
                    "dst": 20,
                    "last": 1,
                }
            )
        )
        field_done = slot.param & (slot.i == P - 1)
        m.d.comb += ve.i_param.valid.eq(slot.full & field_done)
        m.d.comb += ve.i_row.valid.eq(slot.full & ~slot.param)
        consumed = slot.full & Mux(slot.param, ~field_done | ve.i_param.ready, ve.i_row.ready)
        free = ~slot.full | consumed
        issue_param = active & in_params & free
        issue_row = active & walking & free
        with m.If(consumed):
            m.d.sync += slot.full.eq(0)

        use_b = cmd.config.op != VOp.ACT.value
        m.d.comb += [
            self.src_port.addr.eq(Mux(in_params, cmd.params + piece, walker.addr[0])),
            self.src_port.en.eq(issue_param | (issue_row & ~cmd.src_psum)),
            self.psum_rd.addr.eq(walker.addr[0]),
            self.psum_rd.en.eq(issue_row & cmd.src_psum),
            self.b_port.addr.eq(walker.addr[1]),
            self.b_port.en.eq(issue_row & use_b),
        ]
        with m.If(issue_param):
            m.d.sync += [
                slot.full.eq(1),
                slot.param.eq(1),
                slot.field.eq(piece >> pbits),
                slot.i.eq(piece[:pbits]),
                slot.last.eq(0),
                piece.eq(piece + 1),
            ]
            with m.If(piece == 3 * P - 1):
                m.d.sync += [in_params.eq(0), walking.eq(1)]
        with m.If(issue_row):
            m.d.sync += [
                slot.full.eq(1),
                slot.param.eq(0),
                slot.dst.eq(walker.addr[2]),
                slot.last.eq(walker.last),
            ]
            with m.If(walker.last):
                m.d.sync += walking.eq(0)
            with m.Else():
                walker.step()

        # ---- parameters: pieces 0 … P−2 collect here, the last one completes a field -----
        acc = [Signal(32 - lw, name=f"param_acc{lane}") for lane in range(p.rows)]
        for i in range(P - 1):
            hit = ~slot.i.any() if i == 0 else slot.i == i  # not `== 0`: Verilator WIDTHTRUNC
            with m.If(slot.full & slot.param & hit):
                m.d.sync += [
                    a[i * lw : (i + 1) * lw].eq(self.src_port.data[lane])
                    for lane, a in enumerate(acc)
                ]
        m.d.comb += ve.i_param.payload.field.eq(slot.field)
        for lane in range(p.rows):
            m.d.comb += ve.i_param.payload.data[lane].eq(Cat(acc[lane], self.src_port.data[lane]))
        # lanes ≥ rows stay 0 (comb default)

        # ---- rows into the engine -------------------------------------------------------
        row = ve.i_row.payload
        assert config_layout.size == cmd.config.shape().size
        m.d.comb += [
            row.config.eq(cmd.config.as_value()),
            row.last.eq(slot.last),
            row.tag.eq(slot.dst[:entry_bits]),
        ]
        for lane in range(lanes):
            sb = self.src_port.data[lane] if lane < p.rows else Const(0, lw)
            ps = self.psum_rd.data[lane] if lane < p.cols else Const(0, 32)
            m.d.comb += row.a[lane].eq(Mux(cmd.src_psum, ps, sb))
            if lane < p.rows:
                m.d.comb += row.b[lane].eq(Mux(use_b, self.b_port.data[lane], 0))
        with m.If(ve.i_row.valid & ve.i_row.ready):
            m.d.sync += self.rows.eq(self.rows + 1)

        # ---- results into SBUF ----------------------------------------------------------
        m.d.comb += [
            self.row_w.en.eq(ve.o_row.valid),
            self.row_w.addr.eq(out.tag),
            self.row_w.mask.eq(Cat(*(cmd.n > k for k in range(p.rows)))),
            ve.o_row.ready.eq(self.row_w.ready),
        ]
        for k in range(p.rows):
            m.d.comb += self.row_w.data[k].eq(out.data[k][:lw])
        return m
