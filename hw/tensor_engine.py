"""The tensor engine: systolic array, skew/de-skew, weight loader and flow control.

Data movement (``K = rows``, ``N = cols``)::

    i_weights ──► weight stage ──► PE array right edge (weights shift leftwards)
    i_acts ──► act stage ──► Skew ──► PE array left edge ──► Deskew ──► FIFO ──► o_result
                   └───────────── tag delay line (valid, last, tag) ─────┘

LOADW
    A weight tile ``W`` (``K × N``) is loaded with ``N`` transfers on ``i_weights``;
    transfer ``j`` carries column ``j`` (``W[:, j]``, lane ``k`` = row ``k``) and the bank
    (0 or 1) to load. Every transfer of a tile names the same bank.

MATMUL
    Each transfer on ``i_acts`` is one activation row ``x`` (lane ``k`` = ``x[k]``) with the
    bank whose weights it multiplies, its dtype, a ``last`` flag and a user ``tag``. The
    engine answers with one transfer on ``o_result``: ``y[n] = Σ_k x[k]·W[k, n]`` in the
    hardware's order (down the column, k = 0 first), with ``last`` and ``tag`` copied.

Double buffering and interlocks
    A tile can be loaded into one bank while rows multiply with the other, so LOADW costs
    nothing when a MATMUL of at least ``N`` rows runs beside it. Two interlocks make any
    interleaving of the two streams safe:

    * a weight transfer into bank ``b`` waits until no activation of bank ``b`` is left in
      the array (``drain_cycles`` after the last one entered);
    * an activation row of bank ``b`` waits while a tile is partly loaded into bank ``b``,
      or while a weight transfer for bank ``b`` is offered (weights before activations).

    Which tile a row uses is decided by that order: the controller feeding the engine
    (the core's tensor queue) issues LOADW and MATMUL in program order.

Rate and latency
    With ``o_result`` ready, one row is accepted and one result produced every cycle. The
    array never stalls; an output FIFO of ``fifo_depth`` rows, reserved by a credit counter
    at the input, absorbs backpressure. A row accepted on cycle ``c`` is offered on
    ``o_result`` from cycle ``c + latency`` on, where
    ``latency = cols + rows·pe_add_latency + pe_mul_latency + 2`` (8×8 INT8: 19 cycles).
    :func:`ncore.golden.tensor_engine.latency` is the same formula, and a test checks both.
"""

from amaranth.hdl import Array, Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .credit_buffer import CREDIT_BUFFER_CYCLES, CreditBuffer
from .pe import act_lane_layout
from .pe_array import PEArray
from .skew import Deskew, Skew

__all__ = ["TensorEngine", "acts_layout", "result_layout", "weights_layout"]

#: Cycles between a row's acceptance and its data entering the FIFO, beyond the array's own
#: latency: one for the act stage register.
_STAGE_CYCLES = 1
_FIFO_CYCLES = CREDIT_BUFFER_CYCLES


def weights_layout(params: NCoreParams) -> data.StructLayout:
    """Payload of ``i_weights``: one column of a weight tile."""
    return data.StructLayout({"data": data.ArrayLayout(params.lane_width, params.rows), "bank": 1})


def acts_layout(params: NCoreParams, tag_width: int) -> data.StructLayout:
    """Payload of ``i_acts``: one activation row and its tags."""
    return data.StructLayout(
        {
            "data": data.ArrayLayout(params.lane_width, params.rows),
            "bank": 1,
            "dtype": 2,
            "last": 1,
            "tag": tag_width,
        }
    )


def result_layout(params: NCoreParams, tag_width: int) -> data.StructLayout:
    """Payload of ``o_result``: one row of dot products (int32, or fp32 bits)."""
    return data.StructLayout(
        {
            "data": data.ArrayLayout(signed(params.acc_width), params.cols),
            "last": 1,
            "tag": tag_width,
        }
    )


class TensorEngine(wiring.Component):
    """Weight-stationary ``rows × cols`` matrix engine with streaming interfaces.

    Parameters
    ----------
    params : NCoreParams
    tag_width : int
        Width of the user tag carried from each activation row to its result (≥ 1).
    fifo_depth : int or None
        Output FIFO rows. The default, ``latency + 1``, sustains one row per cycle; a
        smaller FIFO limits the rate to ``fifo_depth / latency`` rows per cycle.
    pe_module : str or None
        Verilog generation only: see :class:`~ncore.hw.pe_array.PEArray`.

    Members
    -------
    i_weights : In(stream.Signature(weights_layout))
    i_acts : In(stream.Signature(acts_layout))
    o_result : Out(stream.Signature(result_layout))
    busy : Out(1)
        A weight tile is partly loaded, or rows are in the array or the FIFO.
    """

    def __init__(
        self,
        params: NCoreParams,
        *,
        tag_width: int = 16,
        fifo_depth=None,
        pe_module: str | None = None,
    ):
        if tag_width < 1:
            raise ValueError(f"tag_width must be ≥ 1, not {tag_width}")
        self._params = params
        self._tag_width = tag_width
        self._pe_module = pe_module
        self._array_latency = (
            params.cols
            - 1
            + (params.rows - 1) * params.pe_add_latency
            + params.pe_mul_latency
            + params.pe_add_latency
        )
        self._pipe_latency = _STAGE_CYCLES + self._array_latency  # accept → FIFO write
        if fifo_depth is None:
            fifo_depth = self.latency + 1
        if fifo_depth < 2:
            raise ValueError(f"fifo_depth must be ≥ 2, not {fifo_depth}")
        self._fifo_depth = fifo_depth
        # Cycles after an activation row entered until no PE can still read its weight.
        self._drain_cycles = params.rows * params.pe_add_latency + params.cols + 2
        super().__init__(
            {
                "i_weights": In(stream.Signature(weights_layout(params))),
                "i_acts": In(stream.Signature(acts_layout(params, tag_width))),
                "o_result": Out(stream.Signature(result_layout(params, tag_width))),
                "busy": Out(1),
            }
        )

    @property
    def params(self) -> NCoreParams:
        return self._params

    @property
    def tag_width(self) -> int:
        return self._tag_width

    @property
    def fifo_depth(self) -> int:
        return self._fifo_depth

    @property
    def latency(self) -> int:
        """Cycles from accepting a row on ``i_acts`` to offering its result on ``o_result``."""
        return self._pipe_latency + _FIFO_CYCLES

    def elaborate(self, platform):
        p = self._params
        m = Module()

        m.submodules.array = array = PEArray(p, pe_module=self._pe_module)
        m.submodules.skew = skew = Skew(act_lane_layout(p), p.rows, p.pe_add_latency)
        m.submodules.deskew = deskew = Deskew(signed(p.acc_width), p.cols, 1)
        rlayout = result_layout(p, self._tag_width)
        m.submodules.out = out = CreditBuffer(rlayout, self._fifo_depth)

        # ---- weight loader ------------------------------------------------------------
        drain = Array(Signal(range(self._drain_cycles + 1), name=f"drain{b}") for b in range(2))
        w_count = Signal(range(max(p.cols, 2)))  # columns of the current tile loaded so far
        w_bank = Signal()  # bank of the tile being loaded
        w_stage_valid = Signal()
        w_stage_bank = Signal()
        w_stage_data = Signal(data.ArrayLayout(p.lane_width, p.rows))

        w_pay = self.i_weights.payload
        m.d.comb += self.i_weights.ready.eq(~drain[w_pay.bank].any())
        w_take = self.i_weights.valid & self.i_weights.ready
        m.d.sync += w_stage_valid.eq(w_take)
        with m.If(w_take):
            m.d.sync += [
                w_stage_bank.eq(w_pay.bank),
                w_stage_data.eq(w_pay.data),
                w_bank.eq(w_pay.bank),
                w_count.eq(0 if p.cols == 1 else (w_count + 1) % p.cols),
            ]
        m.d.comb += [
            array.w_in.eq(w_stage_data),
            array.w_shift.eq(w_stage_valid),
            array.w_bank.eq(w_stage_bank),
        ]

        # ---- activation admission: credits and weight interlock ------------------------
        a_pay = self.i_acts.payload
        bank_loading = Signal()
        m.d.comb += bank_loading.eq(
            ((w_count != 0) & (w_bank == a_pay.bank))
            | (self.i_weights.valid & (w_pay.bank == a_pay.bank))
        )
        m.d.comb += self.i_acts.ready.eq(out.admit & ~bank_loading)
        a_take = self.i_acts.valid & self.i_acts.ready
        m.d.comb += out.entered.eq(a_take)

        for b in range(2):
            with m.If(a_take & (a_pay.bank == b)):
                m.d.sync += drain[b].eq(self._drain_cycles)
            with m.Elif(drain[b] != 0):
                m.d.sync += drain[b].eq(drain[b] - 1)

        # Act stage: register the accepted row (hold on bubbles; a bubble's result is dropped).
        a_stage = Signal(data.ArrayLayout(act_lane_layout(p), p.rows))
        with m.If(a_take):
            for k in range(p.rows):
                m.d.sync += [
                    a_stage[k].data.eq(a_pay.data[k]),
                    a_stage[k].bank.eq(a_pay.bank),
                    a_stage[k].dtype.eq(a_pay.dtype),
                ]
        m.d.comb += [skew.i.eq(a_stage), array.a_in.eq(skew.o)]
        m.d.comb += deskew.i.eq(array.psum_out)

        # Tag delay line: (valid, last, tag) of each accepted row, aligned with its results.
        side = data.StructLayout({"valid": 1, "last": 1, "tag": self._tag_width})
        line_in = Signal(side)
        m.d.comb += [
            line_in.valid.eq(a_take),
            line_in.last.eq(a_pay.last),
            line_in.tag.eq(a_pay.tag),
        ]
        value = line_in
        for d in range(self._pipe_latency):
            reg = Signal(side, name=f"tagline_{d}")
            m.d.sync += reg.eq(value)
            value = reg

        # ---- output FIFO ---------------------------------------------------------------
        m.d.comb += [
            out.w_valid.eq(value.valid),
            out.w_data.eq(Cat(deskew.o, value.last, value.tag)),
        ]
        wiring.connect(m, out.o_row, wiring.flipped(self.o_result))

        m.d.comb += self.busy.eq(~out.empty | (w_count != 0) | w_stage_valid)
        return m
