"""The tensor queue's executor: runs LOADW and MATMUL on the tensor engine, into PSUM.

Commands arrive in program order on ``i_cmd`` (already decoded and validated by the core:
``k``, ``n`` and every count are in range, every entry exists). Two units work at once:

* the **weight unit** runs a LOADW: column ``j`` (``j < n``) is SBUF entry
  ``start + j·stride`` read on the ``w_port`` (partitions ``≥ k`` forced to zero), columns
  ``≥ n`` are zeros; the tile goes to the tensor engine's idle bank (banks alternate);
* the **row unit** runs a MATMUL: it walks the ``mov`` pattern (three nested counts,
  innermost first) on the ``a_port``, forces activation lanes ``≥ k`` to zero (so garbage
  in unused partitions cannot become inf × 0 = NaN), and sends each row with its PSUM entry
  (the ``psum`` pattern, same counts), write mode and column count as the row's tag;
* the **PSUM writer** turns each result row into a PSUM request: columns ``< n``, overwrite
  or accumulate (int32 for int8, fp32 for fp16/bf16).

Ordering (the in-order queue, overlapped): a command starts only after the one before it
started. A LOADW may then run beside the MATMUL before it (double buffering) but waits for
any MATMUL dispatched before the *previous* LOADW to have sent all its rows into the
engine (that MATMUL used the bank this LOADW overwrites; the engine's interlock covers the
rows already inside). A MATMUL waits until the LOADW before it has had its
first column taken by the engine, whose interlock then holds the rows until the tile is
complete. Rows and weight columns stream at one per cycle, across MATMUL boundaries too: a
MATMUL is taken in the cycle the one before it requests its last row (each row carries its
weight bank, dtype and PSUM tag, so nothing waits for the earlier rows to drain).

Completion: ``o_loadw_done`` pulses (with the command's signal fields) when a LOADW's last
column was taken; ``o_matmul_done`` pulses when a MATMUL's last row has been written into
PSUM. Both can pulse in the same cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from ..params import NCoreParams
from .isa import layout
from .psum import PsumMode, psum_write_latency, psum_write_layout
from .sbuf import RowReadSignature
from .tensor_engine import TensorEngine

__all__ = ["TensorSequencer", "tensor_cmd_layout"]

_SIGNAL = data.StructLayout({"signal_en": 1, "signal_sem": 5})


def tensor_cmd_layout() -> data.StructLayout:
    """One tensor-queue command: a LOADW or MATMUL body and the signal to raise at the end."""
    return data.StructLayout(
        {
            "is_matmul": 1,
            "loadw": layout(isa.BODY[isa.Op.LOADW]),
            "matmul": layout(isa.BODY[isa.Op.MATMUL]),
            "signal": _SIGNAL,
        }
    )


def _tag_layout(params: NCoreParams) -> data.StructLayout:
    return data.StructLayout(
        {
            "addr": range(params.psum_depth),
            "mode": PsumMode,
            "n": 9,
            "signal": _SIGNAL,
        }
    )


class _RowReader(wiring.Component):
    """Issues row reads on an SBUF port and presents them as a stream, one per cycle.

    ``i_req`` carries (entry, zero, last, user); ``zero`` skips the read and yields a row of
    zeros. ``o_row`` carries the row (partitions ``≥ k`` zeroed) with ``last``/``user``.
    The port's data hold while ``en`` is low, so a stalled row needs no extra buffer.
    """

    def __init__(self, params: NCoreParams, user_shape):
        self._p = params
        row = data.ArrayLayout(params.lane_width, params.rows)
        req = data.StructLayout({"entry": 20, "zero": 1, "k": 9, "last": 1, "user": user_shape})
        out = data.StructLayout({"data": row, "last": 1, "user": user_shape})
        super().__init__(
            {
                "i_req": In(stream.Signature(req)),
                "o_row": Out(stream.Signature(out)),
                "port": Out(RowReadSignature(params)),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        held = Signal(self.i_req.payload.shape())  # request whose data is on the port
        full = Signal()
        take_out = self.o_row.valid & self.o_row.ready
        free = ~full | take_out
        m.d.comb += self.i_req.ready.eq(free)
        take_in = self.i_req.valid & free
        m.d.comb += [
            self.port.en.eq(take_in & ~self.i_req.payload.zero),
            self.port.addr.eq(self.i_req.payload.entry),
        ]
        with m.If(take_in):
            m.d.sync += [held.eq(self.i_req.payload), full.eq(1)]
        with m.Elif(take_out):
            m.d.sync += full.eq(0)
        m.d.comb += [
            self.o_row.valid.eq(full),
            self.o_row.payload.last.eq(held.last),
            self.o_row.payload.user.eq(held.user),
        ]
        for lane in range(p.rows):
            keep = ~held.zero & (held.k > lane)
            m.d.comb += self.o_row.payload.data[lane].eq(Mux(keep, self.port.data[lane], 0))
        return m


class _Walker:
    """Three nested counters over a pattern's counts, with running addresses for several
    (start, strides) views of the same iteration (built inline in a module)."""

    def __init__(self, m: Module, name: str, counts, views):
        self.idx = [Signal(16, name=f"{name}_i{d}") for d in range(3)]
        self.addr = [Signal(20, name=f"{name}_addr{v}") for v in range(len(views))]
        # Per view and dim, the address at the start of the current dim-d run.
        self.base = [
            [Signal(20, name=f"{name}_base{v}_{d}") for d in range(3)] for v in range(len(views))
        ]
        self.counts = counts
        self.views = views
        wrap = [self.idx[d] == counts[d] - 1 for d in range(3)]
        self.last = Signal(name=f"{name}_last")
        m.d.comb += self.last.eq(wrap[0] & wrap[1] & wrap[2])
        self._wrap = wrap
        self._m = m

    def start(self):
        """Statements that load the first element."""
        stmts = [i.eq(0) for i in self.idx]
        for v, (start, _) in enumerate(self.views):
            stmts.append(self.addr[v].eq(start))
            stmts += [b.eq(start) for b in self.base[v]]
        return stmts

    def step(self):
        """Statements that advance to the next element (innermost first)."""
        m = self._m
        w = self._wrap
        with m.If(~w[0]):
            m.d.sync += self.idx[0].eq(self.idx[0] + 1)
            for v, (_, strides) in enumerate(self.views):
                m.d.sync += self.addr[v].eq(self.addr[v] + strides[0])
        with m.Elif(~w[1]):
            m.d.sync += [self.idx[0].eq(0), self.idx[1].eq(self.idx[1] + 1)]
            for v, (_, strides) in enumerate(self.views):
                nxt = self.base[v][1] + strides[1]
                m.d.sync += [self.addr[v].eq(nxt), self.base[v][0].eq(nxt), self.base[v][1].eq(nxt)]
        with m.Elif(~w[2]):
            m.d.sync += [self.idx[0].eq(0), self.idx[1].eq(0), self.idx[2].eq(self.idx[2] + 1)]
            for v, (_, strides) in enumerate(self.views):
                nxt = self.base[v][2] + strides[2]
                m.d.sync += [
                    self.addr[v].eq(nxt),
                    self.base[v][0].eq(nxt),
                    self.base[v][1].eq(nxt),
                    self.base[v][2].eq(nxt),
                ]


class TensorSequencer(wiring.Component):
    """LOADW/MATMUL executor with its tensor engine (see the module docstring).

    Parameters
    ----------
    params : NCoreParams

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
    w_port : Out(RowReadSignature)
        SBUF row reads for weights.
    a_port : Out(RowReadSignature)
        SBUF row reads for activations.
    o_psum : Out(stream.Signature(psum_write_layout))
        PSUM write requests.
    o_loadw_done, o_matmul_done : Out(stream.Signature(signal fields, always_ready))
    busy : Out(1)
    rows : Out(32)
        Activation rows streamed so far (a performance counter).
    macs : Out(48)
        Multiply-accumulates done so far: ``k · n`` per row streamed (a performance counter).
    """

    def __init__(self, params: NCoreParams):
        self._p = params
        self._psum_latency = psum_write_latency(params)
        super().__init__(
            {
                "i_cmd": In(stream.Signature(tensor_cmd_layout())),
                "w_port": Out(RowReadSignature(params)),
                "a_port": Out(RowReadSignature(params)),
                "o_psum": Out(stream.Signature(psum_write_layout(params))),
                "o_loadw_done": Out(stream.Signature(_SIGNAL, always_ready=True)),
                "o_matmul_done": Out(stream.Signature(_SIGNAL, always_ready=True)),
                "busy": Out(1),
                "rows": Out(32),
                "macs": Out(48),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        tag = _tag_layout(p)
        m.submodules.engine = te = TensorEngine(p, tag_width=tag.size)
        m.submodules.w_reader = wr = _RowReader(p, 1)  # user: bank
        m.submodules.a_reader = ar = _RowReader(
            p, data.StructLayout({"dtype": 2, "bank": 1, "tag": tag})
        )
        wiring.connect(m, wr.port, wiring.flipped(self.w_port))
        wiring.connect(m, ar.port, wiring.flipped(self.a_port))

        cmd = self.i_cmd.payload
        lw, mm = cmd.loadw, cmd.matmul

        # ---- dispatch ------------------------------------------------------------------
        w_busy = Signal()  # the weight unit holds a LOADW
        w_col = Signal(9)  # columns requested so far
        w_taken = Signal(9)  # columns taken by the engine so far
        a_walking = Signal()  # the row unit's walker has rows left to request
        last_req = Signal()  # the walker's last request is taken this cycle
        mm_pending = Signal(3)  # MATMULs taken whose last row has not entered the engine
        next_bank = Signal()
        cur_bank = Signal()
        # MATMULs taken before the last LOADW whose rows are not all in the engine: the
        # next LOADW (which reuses their bank) waits for them.
        mm_before_last_loadw = Signal(3)
        loadw_ok = ~w_busy & ~mm_before_last_loadw.any()
        first_col_pending = w_busy & ~w_taken.any()
        # A MATMUL is taken as soon as the one before it has requested its last row, so
        # rows of consecutive MATMULs stream with no gap.
        matmul_ok = (~a_walking | last_req) & ~first_col_pending
        m.d.comb += self.i_cmd.ready.eq(Mux(cmd.is_matmul, matmul_ok, loadw_ok))
        take = self.i_cmd.valid & self.i_cmd.ready

        # ---- weight unit ---------------------------------------------------------------
        w_cmd = Signal(lw.shape())
        w_sig = Signal(_SIGNAL)
        w_bank = Signal()
        w_addr = Signal(20)
        a_rows_done = Signal()  # pulse: the last row of a MATMUL entered the engine
        with m.If(take & ~cmd.is_matmul):
            m.d.sync += [
                w_busy.eq(1),
                w_cmd.eq(lw),
                w_sig.eq(cmd.signal),
                w_bank.eq(next_bank),
                cur_bank.eq(next_bank),
                next_bank.eq(~next_bank),
                w_col.eq(0),
                w_taken.eq(0),
                w_addr.eq(lw.start),
                mm_before_last_loadw.eq(mm_pending - a_rows_done),
            ]
        with m.Elif(a_rows_done & mm_before_last_loadw.any()):
            m.d.sync += mm_before_last_loadw.eq(mm_before_last_loadw - 1)

        w_req_valid = w_busy & (w_col < p.cols)
        m.d.comb += [
            wr.i_req.valid.eq(w_req_valid),
            wr.i_req.payload.entry.eq(w_addr),
            wr.i_req.payload.zero.eq(w_col >= w_cmd.n),
            wr.i_req.payload.k.eq(w_cmd.k),
            wr.i_req.payload.last.eq(w_col == p.cols - 1),
            wr.i_req.payload.user.eq(w_bank),
        ]
        with m.If(wr.i_req.valid & wr.i_req.ready):
            m.d.sync += [w_col.eq(w_col + 1), w_addr.eq(w_addr + w_cmd.stride)]
        m.d.comb += [
            te.i_weights.valid.eq(wr.o_row.valid),
            te.i_weights.payload.data.eq(wr.o_row.payload.data),
            te.i_weights.payload.bank.eq(wr.o_row.payload.user),
            wr.o_row.ready.eq(te.i_weights.ready),
        ]
        w_take = te.i_weights.valid & te.i_weights.ready
        w_done = w_take & wr.o_row.payload.last
        with m.If(w_take):
            m.d.sync += w_taken.eq(w_taken + 1)
        with m.If(w_done):
            m.d.sync += w_busy.eq(0)
        m.d.comb += [
            self.o_loadw_done.valid.eq(w_done),
            self.o_loadw_done.payload.eq(w_sig),
        ]

        # ---- row unit ------------------------------------------------------------------
        a_cmd = Signal(mm.shape())
        a_sig = Signal(_SIGNAL)
        a_bank = Signal()
        counts = [a_cmd.mov.dims[d].count for d in range(3)]
        walker = _Walker(
            m,
            "mov",
            counts,
            [
                (a_cmd.mov.start, [a_cmd.mov.dims[d].stride for d in range(3)]),
                (a_cmd.psum.start, [a_cmd.psum.strides[d].stride for d in range(3)]),
            ],
        )

        mode = Mux(
            a_cmd.accumulate,
            Mux(a_cmd.dtype.any(), PsumMode.ACC_FP, PsumMode.ACC_INT),
            PsumMode.OVERWRITE,
        )
        m.d.comb += [
            ar.i_req.valid.eq(a_walking),
            ar.i_req.payload.entry.eq(walker.addr[0]),
            ar.i_req.payload.zero.eq(0),
            ar.i_req.payload.k.eq(a_cmd.k),
            ar.i_req.payload.last.eq(walker.last),
            ar.i_req.payload.user.dtype.eq(a_cmd.dtype),
            ar.i_req.payload.user.bank.eq(a_bank),
            ar.i_req.payload.user.tag.addr.eq(walker.addr[1]),
            ar.i_req.payload.user.tag.mode.eq(mode),
            ar.i_req.payload.user.tag.n.eq(a_cmd.n),
            ar.i_req.payload.user.tag.signal.eq(Mux(walker.last, a_sig.as_value(), 0)),
        ]
        a_req_take = ar.i_req.valid & ar.i_req.ready
        m.d.comb += last_req.eq(a_req_take & walker.last)
        with m.If(a_req_take):
            with m.If(walker.last):
                m.d.sync += a_walking.eq(0)
            with m.Else():
                walker.step()
        # Taking a MATMUL loads the walker straight from the command (after the statements
        # above, so a take in the cycle of the previous last request wins).
        kn = Signal(18)
        with m.If(take & cmd.is_matmul):
            m.d.sync += [
                a_cmd.eq(mm),
                a_sig.eq(cmd.signal),
                a_bank.eq(cur_bank),
                a_walking.eq(1),
                kn.eq(mm.k * mm.n),
            ]
            m.d.sync += [i.eq(0) for i in walker.idx]
            for v, start in enumerate((mm.mov.start, mm.psum.start)):
                m.d.sync += [walker.addr[v].eq(start), *(b.eq(start) for b in walker.base[v])]
        m.d.sync += mm_pending.eq(mm_pending + (take & cmd.is_matmul) - a_rows_done)
        m.d.comb += [
            te.i_acts.valid.eq(ar.o_row.valid),
            te.i_acts.payload.data.eq(ar.o_row.payload.data),
            te.i_acts.payload.bank.eq(ar.o_row.payload.user.bank),
            te.i_acts.payload.dtype.eq(ar.o_row.payload.user.dtype),
            te.i_acts.payload.last.eq(ar.o_row.payload.last),
            te.i_acts.payload.tag.eq(ar.o_row.payload.user.tag),
            ar.o_row.ready.eq(te.i_acts.ready),
        ]
        a_row_take = te.i_acts.valid & te.i_acts.ready
        m.d.comb += a_rows_done.eq(a_row_take & ar.o_row.payload.last)
        with m.If(a_req_take):  # counted as requested: every request becomes a row
            m.d.sync += [self.rows.eq(self.rows + 1), self.macs.eq(self.macs + kn)]

        # ---- PSUM writer ---------------------------------------------------------------
        res = te.o_result.payload
        rtag = data.View(tag, res.tag)
        mask = Cat(*(rtag.n > j for j in range(p.cols)))
        m.d.comb += [
            self.o_psum.valid.eq(te.o_result.valid),
            self.o_psum.payload.addr.eq(rtag.addr),
            self.o_psum.payload.mode.eq(rtag.mode),
            self.o_psum.payload.mask.eq(mask),
            te.o_result.ready.eq(self.o_psum.ready),
        ]
        for j in range(p.cols):
            m.d.comb += self.o_psum.payload.data[j].eq(res.data[j])
        # A MATMUL is complete once its last row has been written into PSUM.
        last_taken = self.o_psum.valid & self.o_psum.ready & res.last
        done = Signal(_SIGNAL)
        pending = [Signal(1 + _SIGNAL.size, name=f"done_d{i}") for i in range(self._psum_latency)]
        value = Cat(last_taken, rtag.signal.as_value())
        for reg in pending:
            m.d.sync += reg.eq(value)
            value = reg
        m.d.comb += [
            done.eq(value[1:]),
            self.o_matmul_done.valid.eq(value[0]),
            self.o_matmul_done.payload.eq(done),
        ]
        inflight = Cat(*(r[0] for r in pending)).any() if pending else Const(0)
        m.d.comb += self.busy.eq(
            w_busy | a_walking | mm_pending.any() | te.busy | inflight | self.o_psum.valid
        )
        return m
