"""Binary32 multiplier of the vector engine (``fp32 × fp32 → fp32``).

:class:`FP32Mul` follows the conventions of the units in :mod:`ncore.hw.fp`: fully pipelined,
one operation per cycle, no valid or enable input, reset-less pipeline registers, result
straight from a register :data:`FP32MUL_LATENCY` cycles after the operands. Arithmetic is IEEE
754 round-to-nearest-even with subnormal inputs and outputs; every NaN result is the canonical
quiet NaN ``0x7FC00000``. The bit-exact model is :func:`ncore.golden.fp32mul.fp32_mul`.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .fp import leading_zeros, round_pack32

__all__ = ["FP32MUL_LATENCY", "FP32Mul"]

#: Cycles from operands on :class:`FP32Mul`'s inputs to their product on ``result``.
FP32MUL_LATENCY = 4

_NAN32 = 0x7FC0_0000
_INF32 = 0x7F80_0000


class FP32Mul(wiring.Component):
    """IEEE 754 binary32 multiplier, round to nearest even.

    ``result`` is the correctly rounded ``a × b`` with subnormal inputs and outputs (no flush
    to zero). Products of 2¹²⁸ and above round to ±inf; products below 2⁻¹²⁶ are rounded to
    nearest even to a subnormal or ±0. The sign of a zero or infinite product is the XOR of the
    operand signs. A NaN operand or inf × 0 gives the canonical NaN ``0x7FC00000``; NaN
    payloads and signs are not propagated.

    Latency is :data:`FP32MUL_LATENCY` (4) cycles, one operation per cycle:

    1. decode; the 24 × 24-bit significand product as four 12 × 12-bit partial products (one
       DSP each; the inputs come straight from decode, the products go to registers);
    2. sum the partial products; from the operands' leading zeros and exponents, the right
       shift that leaves 24 significant bits, or fewer when the result is subnormal;
    3. shift the 48-bit product right (barrel shifter), guard and sticky bits;
    4. a last one-place shift if the product was in [2, 4), round, pack.

    Members
    -------
    a : ``In(32)``
        First operand bits.
    b : ``In(32)``
        Second operand bits.
    result : ``Out(32)``
        Binary32 bits of the product of the operands applied :data:`FP32MUL_LATENCY` cycles
        ago.
    """

    a: In(32)
    b: In(32)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()

        def decode(x, name):
            """Sign, 24-bit significand, effective exponent, zero, inf, nan of ``x``."""
            e = x[23:31]
            sig = Signal(24, name=f"{name}_sig")
            e_eff = Signal(8, name=f"{name}_exp_eff")
            # Zero tests are `~x.any()`: `x == 0` becomes `!x`, a Verilator WIDTHTRUNC.
            m.d.comb += [sig.eq(Cat(x[:23], e.any())), e_eff.eq(Mux(e.any(), e, 1))]
            frac_zero = ~x[:23].any()
            return (
                x[31],
                sig,
                e_eff,
                ~e.any() & frac_zero,
                e.all() & frac_zero,
                e.all() & ~frac_zero,
            )

        sa, siga, ea, za, ia, na = decode(self.a, "a")
        sb, sigb, eb, zb, ib, nb = decode(self.b, "b")

        # ---- stage 1: partial products, exponent sum, leading zeros, specials -------------
        # With value = sig * 2**(e_eff - 150), the product is P * 2**(ea + eb - 300) with
        # P = siga * sigb < 2**48.
        s1_pp = {
            (i, j): Signal(24, name=f"s1_pp{i}{j}", reset_less=True) for i in (0, 1) for j in (0, 1)
        }
        s1_es = Signal(9, reset_less=True)  # ea + eb
        s1_lz = Signal(6, reset_less=True)  # lz(siga) + lz(sigb): non-zero only for subnormals
        s1_sign = Signal(reset_less=True)
        s1_nan = Signal(reset_less=True)
        s1_inf = Signal(reset_less=True)
        s1_zero = Signal(reset_less=True)
        nan = na | nb | (ia & zb) | (za & ib)
        halves_a = (siga[:12], siga[12:])
        halves_b = (sigb[:12], sigb[12:])
        for (i, j), pp in s1_pp.items():
            m.d.sync += pp.eq(halves_a[i] * halves_b[j])
        m.d.sync += [
            s1_es.eq(ea + eb),
            s1_lz.eq(leading_zeros(siga) + leading_zeros(sigb)),
            s1_sign.eq(sa ^ sb),
            s1_nan.eq(nan),
            s1_inf.eq((ia | ib) & ~nan),
            s1_zero.eq((za | zb) & ~nan),
        ]

        # ---- stage 2: product, shift amount ---------------------------------------------
        # P lies in [2**(46 - lz), 2**(48 - lz)). A normal result keeps 24 bits: shift right
        # by 23 - lz, or 24 - lz when P's top bit is the higher one (decided in stage 4).
        # Results below 2**-126 keep the bits at and above 2**-149: shift by 151 - es. The
        # larger shift wins; it is never negative (two subnormal operands have es = 2).
        mid = Signal(25)
        m.d.comb += mid.eq(s1_pp[0, 1] + s1_pp[1, 0])
        s2_prod = Signal(48, reset_less=True)
        s2_shift = Signal(6, reset_less=True)  # capped at 63: everything is then sticky
        s2_norm = Signal(reset_less=True)  # the normal shift won: a 1-place extra shift may follow
        s2_exp = Signal(10, reset_less=True)  # biased exponent if s2_prod >> s2_shift is in [1, 2)
        s2_sign = Signal(reset_less=True)
        s2_nan = Signal(reset_less=True)
        s2_inf = Signal(reset_less=True)
        s2_zero = Signal(reset_less=True)
        norm = Signal()
        denorm_shift = Signal(signed(10))
        m.d.comb += [
            norm.eq(s1_es >= s1_lz + 128),  # 23 - lz >= 151 - es
            denorm_shift.eq(151 - s1_es),
        ]
        m.d.sync += [
            # Cat(lo, hi) is lo + hi * 2**24 because lo < 2**24: one adder fewer.
            s2_prod.eq(Cat(s1_pp[0, 0], s1_pp[1, 1]) + (mid << 12)),
            s2_norm.eq(norm),
            s2_sign.eq(s1_sign),
            s2_nan.eq(s1_nan),
            s2_inf.eq(s1_inf),
            s2_zero.eq(s1_zero),
        ]
        with m.If(norm):
            m.d.sync += [s2_shift.eq(23 - s1_lz), s2_exp.eq(s1_es - s1_lz - 127)]
        with m.Else():
            # The subnormal window's exponent is 1; the result packs as subnormal unless
            # rounding or a product just below 2**-126 fills bit 23.
            m.d.sync += [s2_shift.eq(Mux(denorm_shift > 63, 63, denorm_shift[:6])), s2_exp.eq(1)]

        # ---- stage 3: shift right, guard and sticky --------------------------------------
        # window holds P bits shift-1 … shift+24: guard bit at 0, 25 result bits above it.
        window = Signal(49)
        m.d.comb += window.eq(Cat(Const(0, 1), s2_prod) >> s2_shift)
        # Bits below the guard bit, P bits 0 … shift-2, from a decoded table rather than a
        # comparator per bit.
        sticky_mask = Signal(48)
        with m.Switch(s2_shift):
            for d in range(64):
                with m.Case(d):
                    m.d.comb += sticky_mask.eq((1 << min(max(d - 1, 0), 48)) - 1)
        s3_bits = Signal(25, reset_less=True)
        s3_guard = Signal(reset_less=True)
        s3_sticky = Signal(reset_less=True)
        s3_norm = Signal(reset_less=True)
        s3_exp = Signal(10, reset_less=True)
        s3_exp_inc = Signal(10, reset_less=True)
        s3_sign = Signal(reset_less=True)
        s3_nan = Signal(reset_less=True)
        s3_inf = Signal(reset_less=True)
        s3_zero = Signal(reset_less=True)
        m.d.sync += [
            s3_bits.eq(window[1:26]),
            s3_guard.eq(window[0]),
            s3_sticky.eq((s2_prod & sticky_mask).any()),
            s3_norm.eq(s2_norm),
            s3_exp.eq(s2_exp),
            s3_exp_inc.eq(s2_exp + 1),
            s3_sign.eq(s2_sign),
            s3_nan.eq(s2_nan),
            s3_inf.eq(s2_inf),
            s3_zero.eq(s2_zero),
        ]

        # ---- stage 4: final shift, round, pack ------------------------------------------
        extra = Signal()  # the product was in [2, 4) times the normal window: one more place
        m.d.comb += extra.eq(s3_norm & s3_bits[24])
        sig = Signal(24)
        guard = Signal()
        sticky = Signal()
        exp = Signal(10)
        m.d.comb += [
            sig.eq(Mux(extra, s3_bits[1:25], s3_bits[:24])),
            guard.eq(Mux(extra, s3_bits[0], s3_guard)),
            sticky.eq(Mux(extra, s3_guard | s3_sticky, s3_sticky)),
            exp.eq(Mux(extra, s3_exp_inc, s3_exp)),
        ]
        packed = round_pack32(m, sig, exp, guard, sticky)

        result = Signal(32)
        with m.If(s3_nan):
            m.d.comb += result.eq(_NAN32)
        with m.Elif(s3_zero):
            m.d.comb += result.eq(Cat(Const(0, 31), s3_sign))
        with m.Elif(s3_inf | (sig[23] & (exp >= 255))):
            m.d.comb += result.eq(Cat(Const(_INF32, 31), s3_sign))
        with m.Else():
            m.d.comb += result.eq(Cat(packed, s3_sign))
        out = Signal(32, name="result_reg", reset_less=True)
        m.d.sync += out.eq(result)
        m.d.comb += self.result.eq(out)
        return m
