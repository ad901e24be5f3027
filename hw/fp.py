"""Floating-point arithmetic units of the tensor and vector engines.

* :class:`FPMul` — fp16 × fp16 or bf16 × bf16 → binary32 product.
* :class:`FPAdd` — binary32 + binary32 → binary32 sum.
* :class:`FP32ToBF16`, :class:`FP32ToFP16` — binary32 → 16-bit conversion.

All units are fully pipelined: they accept one operation every cycle, have no valid or enable
signal (the pipeline registers run freely in the ``sync`` domain), and present the result of
the operands applied at cycle *n* on ``result`` at cycle *n* + latency, where the latency is the
unit's module constant (:data:`FPMUL_LATENCY`, …). ``result`` comes straight from a register.
The registers have no reset (``reset_less``): nothing in them is state, and the results of the
first *latency* cycles after power-up or reset are don't-care.

Arithmetic is IEEE 754 round-to-nearest-even with subnormal inputs and outputs (no flush to
zero). The only deviation is NaN: every NaN result is the one canonical quiet NaN of the
result format (sign 0, quiet bit set, zero payload). ``docs/fp.md`` has the full contract and
:mod:`ncore.golden.fp` is the bit-exact model of every unit.

The pipeline cuts are placed for ≥ 100 MHz on an ECP5-8: no stage holds more than one wide
carry chain or one barrel shifter plus a few LUT levels.
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "FP32_TO_BF16_LATENCY",
    "FP32_TO_FP16_LATENCY",
    "FPADD_LATENCY",
    "FPMUL_LATENCY",
    "FP32ToBF16",
    "FP32ToFP16",
    "FPAdd",
    "FPMul",
    "MulFormat",
    "leading_zeros",
    "round_pack32",
]

#: Cycles from operands on :class:`FPMul`'s inputs to their product on ``result``.
FPMUL_LATENCY = 2
#: Cycles from operands on :class:`FPAdd`'s inputs to their sum on ``result``.
FPADD_LATENCY = 3
#: Cycles from ``x`` on :class:`FP32ToBF16`'s input to the converted value on ``result``.
FP32_TO_BF16_LATENCY = 1
#: Cycles from ``x`` on :class:`FP32ToFP16`'s input to the converted value on ``result``.
FP32_TO_FP16_LATENCY = 2

_NAN32 = 0x7FC0_0000
_INF32 = 0x7F80_0000

# Zero tests are written ``~x.any()`` rather than ``x == 0``: the latter becomes ``!x`` in the
# generated Verilog, which ``verilator -Wall`` reports as WIDTHTRUNC.


def _output_register(m, port):
    """Return a reset-less register that drives output ``port``; load it in ``m.d.sync``.

    The pipelines carry no valid bit, so none of their registers needs a reset: the first
    results after reset are don't-care until the pipeline has filled.
    """
    reg = Signal(len(port), name=f"{port.name}_reg", reset_less=True)
    m.d.comb += port.eq(reg)
    return reg


class MulFormat(enum.Enum, shape=1):
    """Operand format of an :class:`FPMul` operation."""

    FP16 = 0
    BF16 = 1


def leading_zeros(value):
    """Count the leading zeros of ``value`` with a flat combinational priority encoder.

    Returns an unsigned value of ceil(log2(width + 1)) bits: the number of zero bits above
    the most significant one of ``value``, or ``len(value)`` when ``value`` is zero. Bit *k*
    of the count is the OR of the "first one is here" terms of the positions whose count has
    bit *k* set, so the logic is two-level (AND of a prefix-zero test, OR tree) and the
    synthesiser is free to balance it.
    """
    width = len(value)
    if width == 0:
        raise ValueError("leading_zeros needs a value at least one bit wide")
    # first[n]: the most significant one has n zeros above it (n == width: value is zero).
    first = [value[width - 1 - n] & ~value[width - n :].any() for n in range(width)]
    first[0] = value[width - 1]
    first.append(~value.any())
    count = []
    for k in range(width.bit_length()):
        terms = [first[n] for n in range(width + 1) if (n >> k) & 1]
        bit = terms[0]
        for term in terms[1:]:
            bit = bit | term
        count.append(bit)
    return Cat(count)


def round_pack32(m, sig, exp, guard, sticky):
    """Exponent and fraction fields (31 bits) of a binary32 rounded to nearest even.

    ``sig`` is the 24-bit significand with its leading one at bit 23 for a normal result
    (clear for a subnormal or zero one, whose exponent field packs as 0), ``exp`` the biased
    exponent of bit 23, ``guard`` the first bit below the significand and ``sticky`` the OR
    of the rest. The rounding carry runs from the fraction into the exponent field, so
    0x7FFFFF + 1 becomes the smallest normal and a carry out of 254 becomes inf; the caller
    checks ``exp ≥ 255`` for overflow before the carry.
    """
    exp_field = Mux(sig[23], exp[:8], 0)
    packed = Signal(31, name="packed")
    m.d.comb += packed.eq(Cat(sig[:23], exp_field) + (guard & (sticky | sig[0])))
    return packed


class FPMul(wiring.Component):
    """Product of two 16-bit floating-point operands as a binary32 value.

    Both operands have the format ``fmt`` selects per operation: binary16 (fp16) or bfloat16
    (bf16). The result is ``float32(a × b)`` with the exact product rounded once:

    * fp16 × fp16 is always exact in binary32, subnormal operands included (the smallest
      product, 2⁻⁴⁸, is a normal binary32; the largest, 65504², is finite);
    * bf16 × bf16 is exact unless it leaves the normal binary32 range: overflow gives ±inf,
      results below 2⁻¹²⁶ are rounded to nearest even to a binary32 subnormal or ±0.

    Specials: a NaN operand or inf × 0 gives the canonical NaN ``0x7FC00000``; inf × non-zero
    gives ±inf; the sign of a zero or infinite product is the XOR of the operand signs.

    Latency is :data:`FPMUL_LATENCY` (2) cycles, one operation per cycle. Stage 1 decodes the
    operands, multiplies the significands (a plain ``*``, which maps to one DSP) and computes
    exponents and shift amounts; stage 2 normalises or denormalises, rounds and packs.

    Parameters
    ----------
    formats : tuple of str
        Formats the unit implements, a non-empty subset of ``("fp16", "bf16")``. With one
        format the ``fmt`` input is ignored and every operation uses that format; an fp16-only
        unit has no rounding logic and a bf16-only unit uses an 8 × 8 multiplier.

    Members
    -------
    a : ``In(16)``
        First operand bits.
    b : ``In(16)``
        Second operand bits.
    fmt : ``In(MulFormat)``
        Format of ``a`` and ``b`` (0 = fp16, 1 = bf16).
    result : ``Out(32)``
        Binary32 bits of the product of the operands applied :data:`FPMUL_LATENCY` cycles ago.
    """

    a: In(16)
    b: In(16)
    fmt: In(MulFormat)
    result: Out(32)

    def __init__(self, formats=("fp16", "bf16")):
        if isinstance(formats, str):
            formats = (formats,)
        formats = tuple(formats)
        problem = None
        if not formats or any(f not in ("fp16", "bf16") for f in formats):
            problem = f"formats must be a non-empty subset of ('fp16', 'bf16'), not {formats!r}"
        elif len(set(formats)) != len(formats):
            problem = f"formats lists a format twice: {formats!r}"
        if problem:
            self._MustUse__silence = True  # never built, so don't warn that it went unused
            raise ValueError(problem)
        self._formats = tuple(f for f in ("fp16", "bf16") if f in formats)
        super().__init__()

    @property
    def formats(self):
        """Formats this unit implements, in canonical order."""
        return self._formats

    def elaborate(self, platform):
        m = Module()
        has_fp16 = "fp16" in self._formats
        has_bf16 = "bf16" in self._formats
        # Significands sit in a W-bit slot with the hidden bit on top; a bf16 significand is
        # left-aligned in it, so the same multiplier serves both formats.
        W = 11 if has_fp16 else 8
        if has_fp16 and has_bf16:
            is_bf16 = self.fmt == MulFormat.BF16
        else:
            is_bf16 = Const(int(has_bf16), 1)

        def decode(x, name):
            """Sign, W-bit significand, effective biased exponent, zero, inf, nan of ``x``."""
            e = Signal(8, name=f"{name}_exp")
            sig = Signal(W, name=f"{name}_sig")
            emax = Signal(name=f"{name}_emax")  # exponent field all ones: inf or NaN
            if has_fp16:
                e16, f16 = x[10:15], x[:10]
                with m.If(~is_bf16):
                    m.d.comb += [
                        e.eq(e16),
                        sig.eq(Cat(Const(0, W - 11), f16, e16 != 0)),
                        emax.eq(e16 == 0x1F),
                    ]
            if has_bf16:
                e8, f8 = x[7:15], x[:7]
                with m.If(is_bf16):
                    m.d.comb += [
                        e.eq(e8),
                        sig.eq(Cat(Const(0, W - 8), f8, e8 != 0)),
                        emax.eq(e8 == 0xFF),
                    ]
            # Subnormals have the exponent of the smallest normal, field 1.
            e_eff = Signal(8, name=f"{name}_exp_eff")
            frac_zero = Signal(name=f"{name}_frac_zero")
            m.d.comb += [
                e_eff.eq(Mux(e.any(), e, 1)),
                frac_zero.eq(~sig[: W - 1].any()),
            ]
            zero = ~e.any() & frac_zero
            return x[15], sig, e_eff, zero, emax & frac_zero, emax & ~frac_zero

        sa, siga, ea, za, ia, na = decode(self.a, "a")
        sb, sigb, eb, zb, ib, nb = decode(self.b, "b")

        # ---- stage 1: significand product, exponents, shift amounts, specials -------------
        s1_prod = Signal(2 * W, reset_less=True)
        s1_sign = Signal(reset_less=True)
        s1_nan = Signal(reset_less=True)
        s1_inf = Signal(reset_less=True)
        s1_zero = Signal(reset_less=True)
        s1_lz = Signal(range(2 * W + 1), reset_less=True)  # normalising left shift
        # Biased exponent of the product before normalisation, and that plus one. Subtracting
        # s1_lz and the range checks wait for stage 2: in stage 1 they would chain three carry
        # chains behind the leading-zero count (90 MHz instead of 120 on an ECP5-8).
        s1_exp = Signal(signed(11), reset_less=True)
        s1_exp_inc = Signal(signed(11), reset_less=True)
        s1_dshift = Signal(6, reset_less=True)  # bf16 product's shift into the subnormal window

        nan = na | nb | (ia & zb) | (za & ib)
        # fp16: (ea - 15) + (eb - 15) + 127;  bf16: (ea - 127) + (eb - 127) + 127.
        bias = Mux(is_bf16, -127, 97)
        m.d.sync += [
            s1_prod.eq(siga * sigb),
            s1_sign.eq(sa ^ sb),
            s1_nan.eq(nan),
            s1_inf.eq((ia | ib) & ~nan),
            s1_zero.eq((za | zb) & ~nan),
            s1_lz.eq(leading_zeros(siga) + leading_zeros(sigb)),
            s1_exp.eq(ea + eb + bias),
            s1_exp_inc.eq(ea + eb + bias + 1),
        ]
        if has_bf16:
            # With p the 16-bit bf16 significand product, the result in units of 2**-149 is
            # p * 2**t, t = (ea - 127) + (eb - 127) - 14 + 149 = ea + eb - 119. The window
            # below left-shifts p by t + 17, clamped at 0 (everything below then rounds to 0);
            # t + 17 <= 39 whenever the denormal path is taken.
            dshift = Signal(signed(11))
            m.d.comb += dshift.eq(ea + eb - 102)
            m.d.sync += s1_dshift.eq(Mux(dshift < 0, 0, dshift[:6]))

        # ---- stage 2: normalise or denormalise, round, pack ------------------------------
        sign = s1_sign
        norm = Signal(2 * W)
        m.d.comb += norm.eq(s1_prod << s1_lz)
        top = norm[-1]
        # Biased exponent of the result if the normalised product is in [1, 2) or [2, 4).
        exp_lo = Signal(signed(11))
        exp_hi = Signal(signed(11))
        m.d.comb += [exp_lo.eq(s1_exp - s1_lz), exp_hi.eq(s1_exp_inc - s1_lz)]
        # Normal results are exact: the significand product has at most 22 bits.
        frac_hi = Cat(Const(0, 23 - (2 * W - 1)), norm[: 2 * W - 1])
        frac_lo = Cat(Const(0, 23 - (2 * W - 2)), norm[: 2 * W - 2])
        normal = Cat(Mux(top, frac_hi, frac_lo), Mux(top, exp_hi[:8], exp_lo[:8]), sign)
        # Only bf16 products leave the normal binary32 range: fp16 ones have exponents in
        # 79 … 157, so the checks below are false for them and need no format.
        overflow = Const(0)
        # Results below 2**-126, and those of exponent 1 with exp_lo == 0, go through the
        # subnormal window, which is exact for the latter.
        denormal = Const(0)
        if has_bf16:
            overflow = Mux(top, exp_hi >= 255, exp_lo >= 255)
            denormal = exp_lo <= 0
            p16 = s1_prod[2 * W - 16 :]
            window = Signal(41)
            m.d.comb += window.eq(p16 << s1_dshift)
            trunc = window[17:41]  # < 2**24 on the denormal path: the value is < 2**-125
            guard = window[16]
            sticky = window[:16] != 0
            denorm = Signal(24)
            m.d.comb += denorm.eq(trunc + (guard & (sticky | trunc[0])))

        result = Signal(32)
        with m.If(s1_nan):
            m.d.comb += result.eq(_NAN32)
        with m.Elif(s1_zero):
            m.d.comb += result.eq(Cat(Const(0, 31), sign))
        with m.Elif(s1_inf | overflow):
            m.d.comb += result.eq(Cat(Const(_INF32, 31), sign))
        if has_bf16:
            with m.Elif(denormal):
                # Binary32 bits of a value < 2**-125 are its count of 2**-149 units, so a
                # rounding carry into bit 23 lands in the exponent field as it should.
                m.d.comb += result.eq(Cat(denorm, Const(0, 7), sign))
        with m.Else():
            m.d.comb += result.eq(normal)
        m.d.sync += _output_register(m, self.result).eq(result)
        return m


class FPAdd(wiring.Component):
    """IEEE 754 binary32 adder, round to nearest even.

    ``result`` is the correctly rounded ``a + b`` with subnormal inputs and outputs (no flush
    to zero). Overflow rounds to ±inf. An exact zero sum of operands with opposite signs is
    +0; ``(-0) + (-0)`` is -0. ``inf - inf`` and any NaN operand give the canonical NaN
    ``0x7FC00000``; NaN payloads and signs are not propagated.

    Latency is :data:`FPADD_LATENCY` (3) cycles, one operation per cycle: stage 1 orders the
    operands by magnitude and aligns the smaller one (guard, round and sticky bits); stage 2
    adds or subtracts and counts leading zeros; stage 3 normalises, rounds and packs.

    Members
    -------
    a : ``In(32)``
        First operand bits.
    b : ``In(32)``
        Second operand bits.
    result : ``Out(32)``
        Binary32 bits of the sum of the operands applied :data:`FPADD_LATENCY` cycles ago.
    """

    a: In(32)
    b: In(32)
    result: Out(32)

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b

        # ---- stage 1: order by magnitude, align --------------------------------------
        def unpack(x, name):
            """Significand with hidden bit, effective exponent, exponent all ones, fraction 0."""
            e = x[23:31]
            sig = Signal(24, name=f"{name}_sig")
            e_eff = Signal(8, name=f"{name}_exp_eff")
            m.d.comb += [sig.eq(Cat(x[:23], e != 0)), e_eff.eq(Mux(e.any(), e, 1))]
            return sig, e_eff, e.all(), ~x[:23].any()

        siga, ea, maxa, fza = unpack(a, "a")
        sigb, eb, maxb, fzb = unpack(b, "b")
        nan = (maxa & ~fza) | (maxb & ~fzb) | (maxa & maxb & (a[31] != b[31]))
        a_big = Signal()
        sig_big = Signal(24)
        sig_small = Signal(24)
        dist = Signal(8)  # exponent difference, >= 0
        m.d.comb += [
            a_big.eq(a[:31] >= b[:31]),
            sig_big.eq(Mux(a_big, siga, sigb)),
            sig_small.eq(Mux(a_big, sigb, siga)),
            # Both differences in parallel with the comparison, so only a mux follows it.
            dist.eq(Mux(a_big, ea - eb, eb - ea)),
        ]
        far = dist[5:] != 0  # >= 32: bit tests, not a comparator's carry chain
        # Aligned smaller significand, 3 bits below the larger one's LSB: guard, round, sticky.
        shifted = Signal(50)
        m.d.comb += shifted.eq(Cat(Const(0, 26), sig_small) >> dist[:5])
        # Bits of the smaller significand that fall below the round bit: the low dist - 2.
        # A decoded table rather than 24 comparators keeps this off the carry chains.
        sticky_mask = Signal(24)
        with m.Switch(dist[:5]):
            for d in range(32):
                with m.Case(d):
                    m.d.comb += sticky_mask.eq((1 << min(max(d - 2, 0), 24)) - 1)
        with m.If(far):
            m.d.comb += sticky_mask.eq(-1)
        sticky = (sig_small & sticky_mask) != 0

        s1_sub = Signal(reset_less=True)
        s1_sign = Signal(reset_less=True)
        s1_exp = Signal(8, reset_less=True)
        s1_big = Signal(24, reset_less=True)
        s1_small = Signal(27, reset_less=True)
        s1_nan = Signal(reset_less=True)
        s1_inf = Signal(reset_less=True)
        s1_inf_sign = Signal(reset_less=True)
        s1_zero_sign = Signal(reset_less=True)
        m.d.sync += [
            s1_sub.eq(a[31] ^ b[31]),
            s1_sign.eq(Mux(a_big, a[31], b[31])),
            s1_exp.eq(Mux(a_big, ea, eb)),
            s1_big.eq(sig_big),
            s1_small.eq(Cat(sticky, Mux(far, 0, shifted[24:50]))),
            s1_nan.eq(nan),
            s1_inf.eq(maxa | maxb),
            s1_inf_sign.eq(Mux(maxa, a[31], b[31])),
            # Sign of an exact zero sum under round-to-nearest: -0 only for (-0) + (-0).
            s1_zero_sign.eq(a[31] & b[31]),
        ]

        # ---- stage 2: add, count leading zeros ---------------------------------------
        big = Cat(Const(0, 3), s1_big)
        total = Signal(28)  # bit 27 is the carry of an addition; |big| >= |small| so no borrow
        m.d.comb += total.eq(Mux(s1_sub, big - s1_small, big + s1_small))
        # Normalising may shift left by at most s1_exp places, which leaves the exponent at 1:
        # a marker bit at position 27 - s1_exp caps the count there, making the result
        # subnormal instead of taking the exponent below 1.
        limit = Signal(28)
        with m.If(s1_exp <= 27):
            m.d.comb += limit.eq(Const(1 << 27, 28) >> s1_exp[:5])
        lz = leading_zeros(total | limit)

        s2_total = Signal(28, reset_less=True)
        s2_lz = Signal(5, reset_less=True)
        s2_sign = Signal(reset_less=True)
        s2_exp = Signal(8, reset_less=True)
        s2_nan = Signal(reset_less=True)
        s2_inf = Signal(reset_less=True)
        s2_inf_sign = Signal(reset_less=True)
        m.d.sync += [
            s2_total.eq(total),
            s2_lz.eq(lz),
            s2_sign.eq(Mux(total.any(), s1_sign, s1_zero_sign)),
            s2_exp.eq(s1_exp),
            s2_nan.eq(s1_nan),
            s2_inf.eq(s1_inf),
            s2_inf_sign.eq(s1_inf_sign),
        ]

        # ---- stage 3: normalise, round, pack -----------------------------------------
        norm = Signal(28)
        m.d.comb += norm.eq(s2_total << s2_lz)
        sig = norm[4:28]
        guard = norm[3]
        sticky = norm[:3] != 0
        # Exponent of sig's top bit; when that bit is clear the value is subnormal (or zero)
        # and the exponent is 1 by construction, which packs as field 0.
        exp = Signal(9)
        m.d.comb += exp.eq(s2_exp + 1 - s2_lz)
        packed = round_pack32(m, sig, exp, guard, sticky)

        result = Signal(32)
        with m.If(s2_nan):
            m.d.comb += result.eq(_NAN32)
        with m.Elif(s2_inf):
            m.d.comb += result.eq(Cat(Const(_INF32, 31), s2_inf_sign))
        with m.Elif(sig[23] & (exp >= 255)):
            m.d.comb += result.eq(Cat(Const(_INF32, 31), s2_sign))
        with m.Else():
            m.d.comb += result.eq(Cat(packed, s2_sign))
        m.d.sync += _output_register(m, self.result).eq(result)
        return m


class FP32ToBF16(wiring.Component):
    """Binary32 → bfloat16 conversion, round to nearest even.

    Subnormal results are kept (bf16 has binary32's exponent range). Overflow rounds to ±inf,
    or to ±max finite (``0x7F7F``, ±3.3895e38) when ``saturate`` is set; saturation also maps
    ±inf inputs to ±max finite, so a saturating conversion never returns an infinity. A NaN
    input gives the canonical NaN ``0x7FC0`` whatever ``saturate`` is.

    Latency is :data:`FP32_TO_BF16_LATENCY` (1) cycle, one conversion per cycle.

    Members
    -------
    x : ``In(32)``
        Binary32 bits to convert.
    saturate : ``In(1)``
        Clamp infinite results to ±max finite, per conversion.
    result : ``Out(16)``
        Bfloat16 bits of ``x`` applied :data:`FP32_TO_BF16_LATENCY` cycle ago.
    """

    x: In(32)
    saturate: In(1)
    result: Out(16)

    def elaborate(self, platform):
        m = Module()
        x = self.x
        mag = x[:31]
        # Adding 0x7FFF plus the kept LSB rounds to nearest even; the carry runs into the
        # exponent, so the largest finite values round up to inf (0x7F80) on their own.
        rounded = Signal(15)
        m.d.comb += rounded.eq((mag + 0x7FFF + x[16])[16:31])
        out = _output_register(m, self.result)
        with m.If(mag > _INF32):
            m.d.sync += out.eq(0x7FC0)
        with m.Elif(self.saturate & (rounded == 0x7F80)):
            m.d.sync += out.eq(Cat(Const(0x7F7F, 15), x[31]))
        with m.Else():
            m.d.sync += out.eq(Cat(rounded, x[31]))
        return m


class FP32ToFP16(wiring.Component):
    """Binary32 → binary16 conversion, round to nearest even.

    Values below the fp16 normal range (2⁻¹⁴) are correctly rounded to fp16 subnormals or
    ±0. Overflow rounds to ±inf, or to ±max finite (``0x7BFF``, ±65504) when ``saturate`` is
    set; saturation also maps ±inf inputs to ±max finite, so a saturating conversion never
    returns an infinity. A NaN input gives the canonical NaN ``0x7E00`` whatever ``saturate``
    is.

    Latency is :data:`FP32_TO_FP16_LATENCY` (2) cycles, one conversion per cycle: stage 1
    rebiases or denormalises (a barrel shift), stage 2 rounds and packs.

    Members
    -------
    x : ``In(32)``
        Binary32 bits to convert.
    saturate : ``In(1)``
        Clamp infinite results to ±max finite, per conversion.
    result : ``Out(16)``
        Binary16 bits of ``x`` applied :data:`FP32_TO_FP16_LATENCY` cycles ago.
    """

    x: In(32)
    saturate: In(1)
    result: Out(16)

    def elaborate(self, platform):
        m = Module()
        x = self.x
        e, f = x[23:31], x[:23]

        # ---- stage 1: rebias (normal) or shift into the subnormal window -------------
        s1_sign = Signal(reset_less=True)
        s1_sat = Signal(reset_less=True)
        s1_nan = Signal(reset_less=True)
        s1_ovf = Signal(reset_less=True)  # |x| >= 2**16, or inf: inf before rounding
        s1_normal = Signal(reset_less=True)  # |x| >= 2**-14
        s1_norm_trunc = Signal(15, reset_less=True)
        s1_norm_guard = Signal(reset_less=True)
        s1_norm_sticky = Signal(reset_less=True)
        s1_sub_window = Signal(36, reset_less=True)

        # A value below 2**-14 has exponent field e <= 112 and is sig * 2**(e - 150) with
        # sig = 1.f as a 24-bit integer; in units of the fp16 subnormal step 2**-24 that is
        # sig >> (126 - e). The window holds sig * 2**(12 - shift), shift = 112 - e clamped to
        # 12, so its bits 26 and up are the truncated result, bit 25 the guard bit and the
        # rest the sticky bits. (With e <= 100, |x| < 2**-26: all of sig lands in the sticky
        # bits and the result rounds to zero.)
        shift = Signal(range(13))
        with m.If(e <= 100):
            m.d.comb += shift.eq(12)
        with m.Else():
            m.d.comb += shift.eq(112 - e)
        m.d.sync += [
            s1_sign.eq(x[31]),
            s1_sat.eq(self.saturate),
            s1_nan.eq((e == 0xFF) & (f != 0)),
            s1_ovf.eq(e >= 143),
            s1_normal.eq(e >= 113),
            s1_norm_trunc.eq(Cat(f[13:23], (e - 112)[:5])),
            s1_norm_guard.eq(f[12]),
            s1_norm_sticky.eq(f[:12] != 0),
            s1_sub_window.eq(Cat(Const(0, 12), f, e != 0) >> shift),
        ]

        # ---- stage 2: round, pack ----------------------------------------------------
        trunc = Mux(s1_normal, s1_norm_trunc, s1_sub_window[26:36])
        guard = Mux(s1_normal, s1_norm_guard, s1_sub_window[25])
        sticky = Mux(s1_normal, s1_norm_sticky, s1_sub_window[:25] != 0)
        # The rounding carry runs into the exponent: 0x3FF + 1 is the smallest normal and
        # 0x7BFF + 1 is inf.
        rounded = Signal(15)
        m.d.comb += rounded.eq(trunc + (guard & (sticky | trunc[0])))
        out = _output_register(m, self.result)
        with m.If(s1_nan):
            m.d.sync += out.eq(0x7E00)
        with m.Elif(s1_ovf | (rounded == 0x7C00)):
            m.d.sync += out.eq(Cat(Mux(s1_sat, 0x7BFF, 0x7C00), s1_sign))
        with m.Else():
            m.d.sync += out.eq(Cat(rounded, s1_sign))
        return m
