"""One processing element of the weight-stationary systolic array.

A PE holds two weights (banks 0 and 1, the double buffer), multiplies the activation passing
through it by the weight of the bank that activation names, and adds the product to the
partial sum coming from the PE above. It knows only its neighbours:

* activations enter from the left (``a_in``) and leave to the right one cycle later
  (``a_out``), carrying their weight-bank and dtype tags with them;
* weights shift right-to-left through the chosen bank while ``w_shift`` is high
  (``w_in`` from the right neighbour, ``w_out`` to the left one);
* partial sums enter from above (``psum_in``) and leave downwards (``psum_out``).
"""

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import DTYPE_CODE, NCoreParams
from .fp import FPAdd, FPMul

__all__ = ["PE", "act_lane_layout", "pe_signature"]


def _delay(m, value, cycles, name):
    """``value`` delayed by ``cycles`` registers."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def act_lane_layout(params: NCoreParams) -> data.StructLayout:
    """One activation element as it travels along a row of the array."""
    return data.StructLayout(
        {
            "data": params.lane_width,  # int8 in the low byte, or fp16/bf16 bits
            "bank": 1,  # weight bank this activation multiplies
            "dtype": 2,  # DTYPE_CODE of the operation
        }
    )


def pe_signature(params: NCoreParams) -> wiring.Signature:
    """Ports of :class:`PE` (also used to instantiate it as a separate Verilog module)."""
    return wiring.Signature(
        {
            "a_in": In(act_lane_layout(params)),
            "a_out": Out(act_lane_layout(params)),
            "w_in": In(params.lane_width),
            "w_out": Out(params.lane_width),
            "w_shift": In(1),
            "w_bank": In(1),
            "psum_in": In(signed(params.acc_width)),
            "psum_out": Out(signed(params.acc_width)),
        }
    )


class PE(wiring.Component):
    """Multiply-accumulate cell.

    Parameters
    ----------
    params : NCoreParams
        Only ``lane_width``, ``dtypes`` and the PE latencies are used.

    Members
    -------
    a_in : In(act_lane_layout)
        Activation from the left neighbour (or the skew unit).
    a_out : Out(act_lane_layout)
        ``a_in`` registered: the activation for the right neighbour.
    w_in : In(lane_width)
        Weight from the right neighbour (or the weight loader).
    w_out : Out(lane_width)
        This PE's weight in bank ``w_bank`` (combinational), for the left neighbour.
    w_shift : In(1)
        Shift enable of the weight chain; on a cycle it is high, bank ``w_bank`` takes ``w_in``.
    w_bank : In(1)
        The bank being shifted.
    psum_in : In(signed(acc_width))
        Partial sum from the PE above (0 at the top row).
    psum_out : Out(signed(acc_width))
        ``psum_in + a_in × w[a_in.bank]``, ``pe_mul_latency + pe_add_latency`` cycles after
        ``a_in``. INT8 products are exact; the int32 sum wraps modulo 2³².

    Timing contract: the product stage reads ``psum_in`` ``pe_mul_latency`` cycles after the
    activation was at ``a_in``; the PE below must therefore see its activation
    ``pe_add_latency`` cycles later than this one (the array's row skew).
    """

    def __init__(self, params: NCoreParams):
        self._params = params
        super().__init__(pe_signature(params))

    @property
    def params(self) -> NCoreParams:
        return self._params

    def elaborate(self, platform):
        p = self._params
        m = Module()

        w0 = Signal(p.lane_width)
        w1 = Signal(p.lane_width)
        with m.If(self.w_shift):
            with m.If(self.w_bank):
                m.d.sync += w1.eq(self.w_in)
            with m.Else():
                m.d.sync += w0.eq(self.w_in)
        m.d.comb += self.w_out.eq(Mux(self.w_bank, w1, w0))

        m.d.sync += self.a_out.eq(self.a_in)

        weight = Mux(self.a_in.bank, w1, w0)
        a = self.a_in.data

        # Multiply stage(s): int8 × int8 exact in 16 bits, padded to pe_mul_latency.
        prod = Signal(signed(16))
        m.d.sync += prod.eq(a[:8].as_signed() * weight[:8].as_signed())
        prod = _delay(m, prod, p.pe_mul_latency - 1, "prod")

        # Accumulate stage(s): int32 add wrapping modulo 2**32, padded to pe_add_latency so
        # every dtype has the same latency (one skew serves all).
        acc = Signal(signed(p.acc_width))
        m.d.sync += acc.eq(self.psum_in + prod)
        acc = _delay(m, acc, p.pe_add_latency - 1, "acc")

        if not p.has_fp:
            m.d.comb += self.psum_out.eq(acc)
            return m

        # FP datapath: exact-in-fp32 product (FPMul), then the fp32 sum psum_in + product
        # (FPAdd, round to nearest even). The partial sum from above is the adder's first
        # operand, so the column sums in the documented order.
        fmts = tuple(d for d in p.dtypes if d != "int8")
        m.submodules.fpmul = fpmul = FPMul(formats=fmts)
        m.submodules.fpadd = fpadd = FPAdd()
        m.d.comb += [
            fpmul.a.eq(a),
            fpmul.b.eq(weight),
            fpmul.fmt.eq(self.a_in.dtype == DTYPE_CODE["bf16"]),
            fpadd.a.eq(self.psum_in),
            fpadd.b.eq(fpmul.result),
        ]
        # The dtype travels with the operation to choose the result.
        is_int = Signal()
        m.d.comb += is_int.eq(~self.a_in.dtype.any())  # DTYPE_CODE["int8"] == 0
        is_int = _delay(m, is_int, p.pe_mul_latency + p.pe_add_latency, "is_int")
        m.d.comb += self.psum_out.eq(Mux(is_int, acc, fpadd.result))
        return m
