"""Tests of the floating-point units (:mod:`ncore.hw.fp`) and their golden models.

Three independent implementations meet here:

* the hardware, simulated in Amaranth's simulator;
* the golden model (:mod:`ncore.golden.fp`), which leans on numpy / ml_dtypes floats;
* ``_Exact`` below, which rounds exact Python integers by the IEEE rules and shares no code
  with either.

Directed vectors carry hand-worked expected bits and are checked against all three. The random
sweeps stream 100,000 vectors per unit, one per cycle, through the pipeline and compare every
result bit for bit with the golden model; the golden model is itself checked against plain
numpy / ml_dtypes and against ``_Exact`` on the same vectors.

Streaming goes through a harness that holds the stimulus in a ROM and captures the results in
a RAM, so the simulator runs without a Python testbench step per cycle (about twice as fast as
``ctx.set``/``ctx.get`` per cycle). Seeds are test parameters; set ``NCORE_FP_SEEDS=1,2,3`` to
sweep other seeds. A failure prints the seed, the failing operands in hex and the command that
reruns it.
"""

import functools
import os

import ml_dtypes
import numpy as np
import pytest
from amaranth import Module, Shape, Signal
from amaranth.back import verilog
from amaranth.hdl import Fragment
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from ncore.golden import fp as golden
from ncore.hw.fp import (
    FP32_TO_BF16_LATENCY,
    FP32_TO_FP16_LATENCY,
    FPADD_LATENCY,
    FPMUL_LATENCY,
    FP32ToBF16,
    FP32ToFP16,
    FPAdd,
    FPMul,
    leading_zeros,
)

N_RANDOM = 100_000
SEEDS = [int(s) for s in os.environ.get("NCORE_FP_SEEDS", "20261123").split(",")]


# ---- independent exact reference ---------------------------------------------------------


class _Exact:
    """IEEE 754 round-to-nearest-even on exact integers: value = (-1)**sign * mant * 2**exp."""

    # name: (exponent bits, fraction bits, canonical NaN bits)
    FORMATS = {"fp16": (5, 10, 0x7E00), "bf16": (8, 7, 0x7FC0), "fp32": (8, 23, 0x7FC0_0000)}

    @classmethod
    def decode(cls, bits, fmt):
        """("nan",), ("inf", sign) or ("num", sign, mant, exp)."""
        ebits, fbits, _ = cls.FORMATS[fmt]
        bias = (1 << (ebits - 1)) - 1
        sign = bits >> (ebits + fbits)
        e = (bits >> fbits) & ((1 << ebits) - 1)
        frac = bits & ((1 << fbits) - 1)
        if e == (1 << ebits) - 1:
            return ("nan",) if frac else ("inf", sign)
        if e == 0:
            return ("num", sign, frac, 1 - bias - fbits)
        return ("num", sign, frac | (1 << fbits), e - bias - fbits)

    @classmethod
    def inf(cls, sign, fmt):
        ebits, fbits, _ = cls.FORMATS[fmt]
        return (sign << (ebits + fbits)) | (((1 << ebits) - 1) << fbits)

    @classmethod
    def round(cls, sign, mant, exp, fmt):
        """Bits of the ``fmt`` value nearest to ``(-1)**sign * mant * 2**exp``, ties to even."""
        ebits, fbits, _ = cls.FORMATS[fmt]
        bias = (1 << (ebits - 1)) - 1
        emin, emax = 1 - bias, bias
        if mant == 0:
            return sign << (ebits + fbits)
        top = mant.bit_length() - 1 + exp  # floor(log2 |value|)
        ulp = max(top, emin) - fbits  # exponent of the last kept bit
        shift = exp - ulp
        if shift >= 0:
            n = mant << shift
        else:
            n, rem, half = mant >> -shift, mant & ((1 << -shift) - 1), 1 << (-shift - 1)
            if rem > half or (rem == half and n & 1):
                n += 1
        if n == 1 << (fbits + 1):  # rounded up into the next binade
            n, ulp = n >> 1, ulp + 1
        if n >> fbits == 0:  # subnormal: exponent field 0
            return (sign << (ebits + fbits)) | n
        if ulp + fbits > emax:
            return cls.inf(sign, fmt)
        return (sign << (ebits + fbits)) | ((ulp + fbits + bias) << fbits) | (n - (1 << fbits))

    @classmethod
    def mul(cls, a, b, fmt):
        x, y = cls.decode(a, fmt), cls.decode(b, fmt)
        if x[0] == "nan" or y[0] == "nan":
            return 0x7FC0_0000
        sign = x[1] ^ y[1]
        if x[0] == "inf" or y[0] == "inf":
            other = y if x[0] == "inf" else x
            if other[0] == "num" and other[2] == 0:
                return 0x7FC0_0000  # inf × 0
            return cls.inf(sign, "fp32")
        return cls.round(sign, x[2] * y[2], x[3] + y[3], "fp32")

    @classmethod
    def add(cls, a, b):
        x, y = cls.decode(a, "fp32"), cls.decode(b, "fp32")
        if x[0] == "nan" or y[0] == "nan":
            return 0x7FC0_0000
        if x[0] == "inf" and y[0] == "inf":
            return 0x7FC0_0000 if x[1] != y[1] else cls.inf(x[1], "fp32")
        if x[0] == "inf" or y[0] == "inf":
            return cls.inf((x if x[0] == "inf" else y)[1], "fp32")
        exp = min(x[3], y[3])
        total = (-1) ** x[1] * (x[2] << (x[3] - exp)) + (-1) ** y[1] * (y[2] << (y[3] - exp))
        if total == 0:
            return (x[1] & y[1]) << 31  # +0 unless both operands are -0
        return cls.round(int(total < 0), abs(total), exp, "fp32")

    @classmethod
    def convert(cls, bits, fmt, saturate):
        _, fbits, nan = cls.FORMATS[fmt]
        x = cls.decode(bits, "fp32")
        if x[0] == "nan":
            return nan
        r = cls.inf(x[1], fmt) if x[0] == "inf" else cls.round(x[1], x[2], x[3], fmt)
        if saturate and r & ~(1 << (15)) == cls.inf(0, fmt):
            r -= 1  # the largest finite value lies just below inf
        return r


# ---- stimulus ------------------------------------------------------------------------------

# fmt: off
SPECIALS32 = np.array(
    [0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001,
     0x7FFF_FFFF, 0x0000_0001, 0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0xFF7F_FFFF,
     0x3F80_0000, 0xBF80_0000],
    dtype=np.uint32,
)
SPECIALS16 = {
    "fp16": np.array([0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01, 0x0001, 0x83FF,
                      0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00], dtype=np.uint16),
    "bf16": np.array([0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81, 0x0001, 0x807F,
                      0x0080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80], dtype=np.uint16),
}
# fmt: on


def _pack(sign, exp, frac, ebits, fbits):
    sign, exp, frac = (np.asarray(v, dtype=np.uint64) for v in (sign, exp, frac))
    return (sign << (ebits + fbits)) | (exp << fbits) | frac


def _sparse(rng, bits, n):
    """Random ``bits``-bit fractions, half of them with a random number of low bits cleared.

    Cleared low bits make alignment shifts land exactly on the guard bit, so ties occur.
    """
    frac = rng.integers(0, 1 << bits, n, dtype=np.uint64)
    cut = rng.integers(0, bits + 1, n).astype(np.uint64)
    mask = ~((np.uint64(1) << cut) - np.uint64(1))
    return np.where(rng.random(n) < 0.5, frac & mask, frac)


def special_pairs32(rng, k):
    """``k`` binary32 operand pairs: one operand special, the other random bits or (30 %)
    special as well, in random order."""
    a = rng.integers(0, 1 << 32, k, dtype=np.uint64)
    b = SPECIALS32[rng.integers(0, len(SPECIALS32), k)].astype(np.uint64)
    a = np.where(rng.random(k) < 0.3, SPECIALS32[rng.integers(0, len(SPECIALS32), k)], a)
    swap = rng.random(k) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


def _mix(rng, n, parts):
    """Concatenate ``parts`` ([(weight, make(k) -> array or tuple of arrays)]) to ``n``
    vectors in random order; returns a tuple of arrays."""
    weights = np.array([w for w, _ in parts], dtype=float)
    counts = np.floor(weights / weights.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    chunks = [make(k) for k, (_, make) in zip(counts, parts, strict=True)]
    chunks = [(c,) if isinstance(c, np.ndarray) else c for c in chunks]
    order = rng.permutation(n)
    return tuple(np.concatenate(cols)[order] for cols in zip(*chunks, strict=True))


@functools.cache
def add_vectors(seed, n=N_RANDOM):
    """Operand pairs for FPAdd: uniform bits plus near-equal exponents, cancellation,
    sticky-boundary distances, subnormals, overflow and specials."""
    rng = np.random.default_rng([seed, 1])

    def u32(k):
        return rng.integers(0, 1 << 32, k, dtype=np.uint64)

    def rand_exp(k, lo, hi):
        return rng.integers(lo, hi + 1, k)

    def pair_with_distance(k, dist_lo, dist_hi, e_lo=1, e_hi=254):
        ea = rand_exp(k, e_lo, e_hi)
        eb = np.clip(ea - rand_exp(k, dist_lo, dist_hi) * rng.choice([-1, 1], k), 0, 254)
        a = _pack(rng.integers(0, 2, k), ea, _sparse(rng, 23, k), 8, 23)
        b = _pack(rng.integers(0, 2, k), eb, _sparse(rng, 23, k), 8, 23)
        return a, b

    def cancel(k):
        a = _pack(rng.integers(0, 2, k), rand_exp(k, 0, 254), _sparse(rng, 23, k), 8, 23)
        b = (a ^ np.uint64(1 << 31)) + rng.integers(-4, 5, k).astype(np.uint64)
        return a, b & np.uint64(0xFFFF_FFFF)

    with_special = functools.partial(special_pairs32, rng)

    a, b = _mix(rng, n, [
        (30, lambda k: (u32(k), u32(k))),
        (20, lambda k: pair_with_distance(k, 0, 3)),
        (10, lambda k: pair_with_distance(k, 22, 30)),
        (10, cancel),
        (10, lambda k: pair_with_distance(k, 0, 25, 0, 3)),
        (10, lambda k: pair_with_distance(k, 0, 2, 250, 254)),
        (10, with_special),
    ])  # fmt: skip
    return a.astype(np.uint32), b.astype(np.uint32)


@functools.cache
def mul_vectors(seed, fmt, n=N_RANDOM):
    """Operand pairs for FPMul in ``fmt``: uniform bits plus subnormals, specials and, for
    bf16, exponent sums at the underflow and overflow edges of binary32."""
    rng = np.random.default_rng([seed, 2, fmt == "bf16"])
    ebits, fbits = (5, 10) if fmt == "fp16" else (8, 7)
    emax = (1 << ebits) - 2
    specials = SPECIALS16[fmt]

    def u16(k):
        return rng.integers(0, 1 << 16, k, dtype=np.uint64)

    def num(k, e):
        return _pack(rng.integers(0, 2, k), e, _sparse(rng, fbits, k), ebits, fbits)

    def exp_sum(k, lo, hi):
        # Biased exponents whose sum lies in [lo, hi].
        total = rng.integers(lo, hi + 1, k)
        ea = np.clip(rng.integers(0, emax + 1, k), np.maximum(total - emax, 0), total)
        return num(k, np.clip(ea, 0, emax)), num(k, np.clip(total - ea, 0, emax))

    def subnormal(k):
        a = num(k, np.zeros(k, dtype=np.int64))
        b = np.where(rng.random(k) < 0.5, num(k, np.zeros(k, dtype=np.int64)), u16(k))
        return a, b

    def with_special(k):
        a, b = u16(k), specials[rng.integers(0, len(specials), k)].astype(np.uint64)
        swap = rng.random(k) < 0.5
        return np.where(swap, b, a), np.where(swap, a, b)

    def normal(k):
        return num(k, rng.integers(1, emax + 1, k)), num(k, rng.integers(1, emax + 1, k))

    parts = [
        (40, lambda k: (u16(k), u16(k))),
        (15, subnormal),
        (10, with_special),
        (15, normal),
    ]
    if fmt == "bf16":
        parts += [
            (15, lambda k: exp_sum(k, 100, 130)),  # results around 2**-126 and below
            (10, lambda k: exp_sum(k, 127 + 250, 127 + 256)),  # around 2**128
        ]
    a, b = _mix(rng, n, parts)
    return a.astype(np.uint16), b.astype(np.uint16)


@functools.cache
def convert_vectors(seed, fmt, n=N_RANDOM):
    """binary32 inputs and saturate flags for a conversion to ``fmt``: uniform bits plus the
    target's normal and subnormal range, exact ties, the overflow edge and specials."""
    rng = np.random.default_rng([seed, 3, fmt == "bf16"])
    drop = 16 if fmt == "bf16" else 13  # fraction bits a normal result drops
    e_lo, e_hi = (0, 254) if fmt == "bf16" else (100, 143)  # exponents where results change
    e_max = 254 if fmt == "bf16" else 142  # exponent of the largest finite value

    def u32(k):
        return rng.integers(0, 1 << 32, k, dtype=np.uint64)

    def in_range(k, lo=e_lo, hi=e_hi):
        return _pack(rng.integers(0, 2, k), rng.integers(lo, hi + 1, k), _sparse(rng, 23, k), 8, 23)

    def ties(k):
        # Exact halfway cases for normal results and, for fp16, for subnormal results, whose
        # dropped-bit count grows as the exponent falls below 113.
        x = in_range(k)
        e = ((x >> np.uint64(23)) & np.uint64(0xFF)).astype(np.int64)
        cut = np.full(k, drop) if fmt == "bf16" else np.clip(126 - e, drop, 24)
        cut = cut.astype(np.uint64)
        near = rng.integers(-1, 2, k).astype(np.uint64)  # just below, on, just above the tie
        low = (np.uint64(1) << (cut - np.uint64(1))) + near
        return ((x >> cut) << cut) | (low & ((np.uint64(1) << cut) - np.uint64(1)))

    def near_max(k):
        frac = rng.integers((1 << 23) - (1 << (drop + 2)), 1 << 23, k, dtype=np.uint64)
        return _pack(rng.integers(0, 2, k), np.full(k, e_max), frac, 8, 23)

    (x,) = _mix(rng, n, [
        (30, u32),
        (30, in_range),
        (20, ties),
        (10, near_max),
        (5, lambda k: in_range(k, 0, 2)),
        (5, lambda k: SPECIALS32[rng.integers(0, len(SPECIALS32), k)].astype(np.uint64)),
    ])  # fmt: skip
    return x.astype(np.uint32), rng.random(n) < 0.5


# ---- simulation harness --------------------------------------------------------------------


def stream(dut, latency, **inputs):
    """Stream the vectors ``inputs`` (port name → array) through ``dut``, one per cycle.

    The vectors sit in a ROM indexed by a cycle counter that drives the DUT's inputs; the
    ``result`` of cycle *c* is written to a RAM at *c* - ``latency``. A wrong latency or a
    pipeline that cannot take one operation per cycle therefore misplaces results. Returns
    the captured results as a ``uint64`` array.
    """
    names = list(inputs)
    count = len(inputs[names[0]])
    widths = [Shape.cast(dut.signature.members[name].shape).width for name in names]
    words = np.zeros(count, dtype=object)
    offset = 0
    for name, width in zip(names, widths, strict=True):
        words += np.asarray(inputs[name]).astype(np.uint64).astype(object) << offset
        offset += width

    m = Module()
    m.submodules.dut = dut
    m.submodules.stimulus = stimulus = Memory(shape=offset, depth=count, init=list(words))
    m.submodules.response = response = Memory(shape=len(dut.result), depth=count, init=[])
    rd = stimulus.read_port(domain="comb")
    wr = response.write_port()
    cycle = Signal(range(count + latency + 1))
    m.d.sync += cycle.eq(cycle + 1)
    m.d.comb += rd.addr.eq(cycle)
    offset = 0
    for name, width in zip(names, widths, strict=True):
        m.d.comb += getattr(dut, name).eq(rd.data[offset : offset + width])
        offset += width
    m.d.comb += [
        wr.addr.eq(cycle - latency),
        wr.data.eq(dut.result),
        wr.en.eq((cycle >= latency) & (cycle < count + latency)),
    ]

    results = []

    async def testbench(ctx):
        await ctx.tick().repeat(count + latency)
        results.extend(ctx.get(response.data[i]) for i in range(count))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(results, dtype=np.uint64)


def check_bits(got, expected, what, seed=None, rerun=None, **operands):
    """Assert ``got == expected`` elementwise; on failure list the first mismatches in hex."""
    got = np.asarray(got, dtype=np.uint64)
    expected = np.asarray(expected, dtype=np.uint64)
    bad = np.flatnonzero(got != expected)
    if bad.size == 0:
        return

    def hex_(v, i):
        digits = 8 if v.max() > 0xFFFF else 4 if v.max() > 1 else 1
        return f"0x{int(v[i]):0{digits}X}"

    operands = {k: np.asarray(v) for k, v in operands.items()}
    source = "directed vectors" if seed is None else f"seed={seed}"
    lines = [f"{what}: {bad.size} of {got.size} results differ ({source})"]
    for i in bad[:10]:
        ops = " ".join(f"{k}={hex_(v, i)}" for k, v in operands.items())
        lines.append(f"  [{i}] {ops}: got {hex_(got, i)}, expected {hex_(expected, i)}")
    if rerun:
        lines.append(f"rerun: {rerun}")
    pytest.fail("\n".join(lines))


def rerun_cmd(request, seed):
    return f"NCORE_FP_SEEDS={seed} pytest '{request.node.nodeid}'"


# ---- directed vectors with hand-worked results ---------------------------------------------

# (a, b, expected a + b)
ADD_DIRECTED = [
    (0x3F80_0000, 0x3F80_0000, 0x4000_0000),  # 1 + 1 = 2
    (0x3FC0_0000, 0xBFC0_0000, 0x0000_0000),  # a - a = +0
    (0xBFC0_0000, 0x3FC0_0000, 0x0000_0000),  # -a + a = +0
    (0x0000_0000, 0x0000_0000, 0x0000_0000),  # +0 + +0
    (0x0000_0000, 0x8000_0000, 0x0000_0000),  # +0 + -0 = +0
    (0x8000_0000, 0x0000_0000, 0x0000_0000),  # -0 + +0 = +0
    (0x8000_0000, 0x8000_0000, 0x8000_0000),  # -0 + -0 = -0
    (0x4049_0FDB, 0x8000_0000, 0x4049_0FDB),  # pi + -0 = pi
    (0x8000_0000, 0xC049_0FDB, 0xC049_0FDB),  # -0 + -pi = -pi
    (0x7F80_0000, 0xFF80_0000, 0x7FC0_0000),  # inf - inf = NaN
    (0xFF80_0000, 0x7F80_0000, 0x7FC0_0000),  # -inf + inf = NaN
    (0x7F80_0000, 0x7F80_0000, 0x7F80_0000),  # inf + inf
    (0xFF80_0000, 0xFF80_0000, 0xFF80_0000),  # -inf + -inf
    (0x7F80_0000, 0xFF7F_FFFF, 0x7F80_0000),  # inf - max
    (0x0000_0001, 0xFF80_0000, 0xFF80_0000),  # tiny - inf
    (0x7FC0_0001, 0x3F80_0000, 0x7FC0_0000),  # qNaN with payload in
    (0xFFFF_FFFF, 0x7F80_0000, 0x7FC0_0000),  # negative NaN + inf
    (0x7F80_0001, 0x0000_0000, 0x7FC0_0000),  # sNaN in
    (0x3F80_0000, 0xFFC0_0000, 0x7FC0_0000),  # 1 + -NaN
    (0x3F80_0000, 0x3380_0000, 0x3F80_0000),  # 1 + 2^-24: tie, stays even (down)
    (0x3F80_0001, 0x3380_0000, 0x3F80_0002),  # (1 + 2^-23) + 2^-24: tie, to even (up)
    (0x3F80_0000, 0x3380_0001, 0x3F80_0001),  # just above the tie: up
    (0x3F80_0000, 0xB300_0000, 0x3F80_0000),  # 1 - 2^-25: tie below 1, to even (1.0)
    (0x3F80_0000, 0xB380_0000, 0x3F7F_FFFF),  # 1 - 2^-24 exact
    (0x3F80_0000, 0xB300_0001, 0x3F7F_FFFF),  # 1 - (2^-25 + 2^-48): past the tie
    (0x3F80_0000, 0xA180_0000, 0x3F80_0000),  # 1 - 2^-60: sticky only
    (0x3FFF_FFFF, 0x3400_0000, 0x4000_0000),  # (2 - 2^-23) + 2^-23 = 2: carry
    (0x3FFF_FFFF, 0x3380_0000, 0x4000_0000),  # (2 - 2^-23) + 2^-24: tie rounds into exp
    (0x7F7F_FFFF, 0x7300_0000, 0x7F80_0000),  # max + ulp/2: tie to even overflows to inf
    (0x7F7F_FFFF, 0x7280_0000, 0x7F7F_FFFF),  # max + ulp/4: stays max
    (0x7F7F_FFFF, 0x7F7F_FFFF, 0x7F80_0000),  # max + max = inf
    (0xFF7F_FFFF, 0xFF7F_FFFF, 0xFF80_0000),  # -max - max = -inf
    (0x3F80_0001, 0xBF80_0000, 0x3400_0000),  # (1 + 2^-23) - 1 = 2^-23: massive cancel
    (0x3F80_0001, 0xBF80_0002, 0xB400_0000),  # = -2^-23: result sign from larger magnitude
    (0x4000_0000, 0xBFFF_FFFF, 0x3400_0000),  # 2 - (2 - 2^-23): distance-1 cancellation
    (0x0000_0001, 0x0000_0001, 0x0000_0002),  # smallest subnormal twice
    (0x007F_FFFF, 0x0000_0001, 0x0080_0000),  # subnormal sum becomes normal
    (0x0080_0000, 0x8000_0001, 0x007F_FFFF),  # min normal - min subnormal: subnormal out
    (0x0080_0001, 0x8080_0000, 0x0000_0001),  # normals cancel to the smallest subnormal
    (0x00C0_0000, 0x8080_0000, 0x0040_0000),  # 1.5*2^-126 - 2^-126 = 2^-127
    (0x3F80_0000, 0x0000_0001, 0x3F80_0000),  # 1 + min subnormal = 1
    (0xBF80_0000, 0x0000_0001, 0xBF80_0000),  # -1 + min subnormal = -1
    (0x3F80_0000, 0x0DA2_4260, 0x3F80_0000),  # 1 + 1e-30 = 1
    (0x4B80_0000, 0x3F80_0000, 0x4B80_0000),  # 2^24 + 1: tie, stays 2^24
    (0x4B80_0000, 0x4040_0000, 0x4B80_0002),  # 2^24 + 3: tie, up to even 2^24 + 4
]

# (fmt, a, b, expected a × b)
MUL_DIRECTED = [
    ("fp16", 0x3C00, 0x3C00, 0x3F80_0000),  # 1 × 1
    ("fp16", 0x3E00, 0x3E00, 0x4010_0000),  # 1.5 × 1.5 = 2.25
    ("fp16", 0xC000, 0x4200, 0xC0C0_0000),  # -2 × 3 = -6
    ("fp16", 0x7BFF, 0x7BFF, 0x4F7F_C004),  # 65504² exact: largest product
    ("fp16", 0x0001, 0x0001, 0x2780_0000),  # 2^-24 × 2^-24 = 2^-48: smallest product
    ("fp16", 0x03FF, 0x03FF, 0x317F_8010),  # largest subnormal squared, exact
    ("fp16", 0x0001, 0x7BFF, 0x3B7F_E000),  # 2^-24 × 65504
    ("fp16", 0x0200, 0x4000, 0x3880_0000),  # 2^-15 (subnormal) × 2 = 2^-14
    ("fp16", 0x7C00, 0x0000, 0x7FC0_0000),  # inf × 0 = NaN
    ("fp16", 0x8000, 0xFC00, 0x7FC0_0000),  # -0 × -inf = NaN
    ("fp16", 0x7C00, 0xBC00, 0xFF80_0000),  # inf × -1 = -inf
    ("fp16", 0x7E00, 0x3C00, 0x7FC0_0000),  # NaN in
    ("fp16", 0xFC01, 0x0000, 0x7FC0_0000),  # negative sNaN × 0
    ("fp16", 0x0000, 0xBC00, 0x8000_0000),  # 0 × -1 = -0
    ("fp16", 0x8000, 0x8000, 0x0000_0000),  # -0 × -0 = +0
    ("fp16", 0x8000, 0x0001, 0x8000_0000),  # -0 × min subnormal = -0
    ("bf16", 0x3F80, 0x3F80, 0x3F80_0000),  # 1 × 1
    ("bf16", 0x3FC0, 0x3FC0, 0x4010_0000),  # 1.5 × 1.5 = 2.25
    ("bf16", 0x4049, 0x4049, 0x411D_D100),  # 3.140625² = 40401 × 2^-12 exact
    ("bf16", 0x7F7F, 0x7F7F, 0x7F80_0000),  # max × max = inf
    ("bf16", 0x7F7F, 0xC000, 0xFF80_0000),  # max × -2 = -inf
    ("bf16", 0x7F7F, 0x3F80, 0x7F7F_0000),  # max × 1
    ("bf16", 0x7F00, 0x4000, 0x7F80_0000),  # 2^127 × 2 = 2^128: overflow
    ("bf16", 0x7F00, 0x3FFF, 0x7F7F_0000),  # 2^127 × (2 - 2^-7): just finite
    ("bf16", 0x0080, 0x3F00, 0x0040_0000),  # 2^-126 × 0.5 = 2^-127: subnormal out
    ("bf16", 0x0080, 0x3400, 0x0000_0001),  # 2^-126 × 2^-23 = 2^-149: smallest subnormal
    ("bf16", 0x0080, 0x3380, 0x0000_0000),  # = 2^-150: tie between 0 and 2^-149, to 0
    ("bf16", 0x0080, 0x33C0, 0x0000_0001),  # = 1.5 × 2^-150: rounds up to 2^-149
    ("bf16", 0x8080, 0x3300, 0x8000_0000),  # -2^-151: underflows to -0
    ("bf16", 0x00C0, 0x3400, 0x0000_0002),  # 1.5 units of 2^-149: tie, up to even 2
    ("bf16", 0x0120, 0x3400, 0x0000_0002),  # 2.5 units of 2^-149: tie, down to even 2
    ("bf16", 0x2040, 0x1FC0, 0x0090_0000),  # 1.5×2^-63 × 1.5×2^-64 = 1.125×2^-126 normal
    ("bf16", 0x2000, 0x1F80, 0x0040_0000),  # 2^-63 × 2^-64 = 2^-127 subnormal
    ("bf16", 0x0001, 0x7180, 0x2F00_0000),  # 2^-133 (subnormal in) × 2^100 = 2^-33
    ("bf16", 0x007F, 0x7F00, 0x3FFE_0000),  # largest subnormal × 2^127 = 1.984375
    ("bf16", 0x0001, 0x0001, 0x0000_0000),  # subnormal × subnormal underflows to 0
    ("bf16", 0x8001, 0x0001, 0x8000_0000),  # ... to -0
    ("bf16", 0x7F80, 0x8000, 0x7FC0_0000),  # inf × -0 = NaN
    ("bf16", 0xFFC1, 0x3F80, 0x7FC0_0000),  # NaN in
    ("bf16", 0xFF80, 0xFF80, 0x7F80_0000),  # -inf × -inf = inf
]

# (x, saturate, expected)
TO_BF16_DIRECTED = [
    (0x3F80_0000, 0, 0x3F80),  # 1
    (0x3F80_8000, 0, 0x3F80),  # tie, stays even (down)
    (0x3F81_8000, 0, 0x3F82),  # tie, to even (up)
    (0x3F80_8001, 0, 0x3F81),  # just above the tie
    (0x3F80_7FFF, 0, 0x3F80),  # just below the tie
    (0x3FFF_8000, 0, 0x4000),  # tie rounds into the exponent
    (0x7F7F_FFFF, 0, 0x7F80),  # float32 max overflows to inf ...
    (0x7F7F_FFFF, 1, 0x7F7F),  # ... or saturates
    (0x7F7F_7FFF, 0, 0x7F7F),  # below the tie: bf16 max
    (0x7F7F_8000, 0, 0x7F80),  # tie above bf16 max (odd): to inf
    (0xFF7F_8000, 1, 0xFF7F),  # ... saturated, negative
    (0xFF80_0000, 0, 0xFF80),  # -inf
    (0xFF80_0000, 1, 0xFF7F),  # -inf saturates to -max
    (0x7FC0_0000, 0, 0x7FC0),  # NaN
    (0xFF80_0001, 0, 0x7FC0),  # negative sNaN: canonical NaN
    (0x7F80_0001, 1, 0x7FC0),  # sNaN whose payload would round away: still NaN
    (0x0001_0000, 0, 0x0001),  # smallest bf16 subnormal
    (0x0000_8000, 0, 0x0000),  # tie between 0 and it: 0
    (0x0001_8000, 0, 0x0002),  # tie between 1 and 2 units: 2
    (0x8000_8001, 0, 0x8001),  # just above the tie, negative
    (0x007F_FFFF, 0, 0x0080),  # largest float32 subnormal rounds to min normal
    (0x8000_0000, 1, 0x8000),  # -0
]

# (x, saturate, expected)
TO_FP16_DIRECTED = [
    (0x3F80_0000, 0, 0x3C00),  # 1
    (0xC000_0000, 0, 0xC000),  # -2
    (0x477F_E000, 0, 0x7BFF),  # 65504
    (0x477F_EF00, 0, 0x7BFF),  # 65519: below the tie
    (0x477F_F000, 0, 0x7C00),  # 65520: tie above max (odd): to inf ...
    (0x477F_F000, 1, 0x7BFF),  # ... or saturates
    (0x4780_0000, 0, 0x7C00),  # 65536: overflow
    (0xC780_0000, 1, 0xFBFF),  # -65536 saturates
    (0x501502F9, 0, 0x7C00),  # 1e10
    (0x3F80_1000, 0, 0x3C00),  # 1 + 2^-11: tie, stays even
    (0x3F80_3000, 0, 0x3C02),  # 1 + 3×2^-11: tie, to even (up)
    (0x3880_0000, 0, 0x0400),  # 2^-14: smallest normal
    (0x3380_0000, 0, 0x0001),  # 2^-24: smallest subnormal
    (0x3300_0000, 0, 0x0000),  # 2^-25: tie between 0 and 2^-24, to 0
    (0x3340_0000, 0, 0x0001),  # 1.5 × 2^-25: up
    (0x33C0_0000, 0, 0x0002),  # 3 × 2^-25: tie between 1 and 2 units, to 2
    (0x3300_0100, 0, 0x0001),  # 2^-25 + 2^-40: sticky, just above the tie
    (0x3280_0000, 0, 0x0000),  # 2^-26
    (0x387F_C000, 0, 0x03FF),  # largest subnormal
    (0x387F_E000, 0, 0x0400),  # 1023.5 × 2^-24: tie, rounds up into the smallest normal
    (0x0000_0001, 0, 0x0000),  # float32 subnormal underflows to 0
    (0x8000_0001, 0, 0x8000),  # ... to -0
    (0x7FC0_0000, 0, 0x7E00),  # NaN
    (0xFF80_0001, 1, 0x7E00),  # negative sNaN, saturating: canonical NaN
    (0x7F80_0000, 0, 0x7C00),  # inf
    (0xFF80_0000, 0, 0xFC00),  # -inf
    (0xFF80_0000, 1, 0xFBFF),  # -inf saturates to -max
]


def _cols(table, *idx):
    return [np.array([row[i] for row in table]) for i in idx]


# ---- tests: helpers --------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 11, 16])
def test_leading_zeros(width):
    value = Signal(width)
    count = Signal(8)
    m = Module()
    m.d.comb += count.eq(leading_zeros(value))
    got = []

    async def testbench(ctx):
        for v in range(1 << width):
            ctx.set(value, v)
            got.append(ctx.get(count))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    expected = [width - v.bit_length() for v in range(1 << width)]
    assert got == expected


def test_fpmul_rejects_bad_formats():
    with pytest.raises(ValueError, match="non-empty subset"):
        FPMul(formats=("fp8",))
    with pytest.raises(ValueError, match="non-empty subset"):
        FPMul(formats=())
    with pytest.raises(ValueError, match="twice"):
        FPMul(formats=("bf16", "bf16"))
    for formats, canonical in (("bf16", ("bf16",)), (("bf16", "fp16"), ("fp16", "bf16"))):
        dut = FPMul(formats=formats)
        assert dut.formats == canonical
        Fragment.get(dut, None)


@pytest.mark.parametrize(
    "make",
    [
        FPAdd,
        FPMul,
        lambda: FPMul(formats=("fp16",)),
        lambda: FPMul(formats=("bf16",)),
        FP32ToBF16,
        FP32ToFP16,
    ],
    ids=["fpadd", "fpmul", "fpmul_fp16", "fpmul_bf16", "fp32_to_bf16", "fp32_to_fp16"],
)
def test_verilog_converts(make):
    text = verilog.convert(make(), name="fpunit")
    assert "module fpunit" in text


# ---- tests: directed vectors -----------------------------------------------------------------


def test_fpadd_directed():
    a, b, expected = _cols(ADD_DIRECTED, 0, 1, 2)
    check_bits(
        [_Exact.add(int(x), int(y)) for x, y in zip(a, b, strict=True)], expected, "exact", a=a, b=b
    )
    check_bits(golden.fp32_add(a, b), expected, "golden", a=a, b=b)
    # Both operand orders through the hardware: the sum is commutative bit for bit.
    got = stream(FPAdd(), FPADD_LATENCY, a=np.r_[a, b], b=np.r_[b, a])
    check_bits(got, np.r_[expected, expected], "FPAdd", a=np.r_[a, b], b=np.r_[b, a])


@pytest.mark.parametrize("formats", [("fp16", "bf16"), ("fp16",), ("bf16",)])
def test_fpmul_directed(formats):
    rows = [row for row in MUL_DIRECTED if row[0] in formats]
    fmt = np.array([golden.mul_format_code(row[0]) for row in rows])
    a, b, expected = _cols(rows, 1, 2, 3)
    names = [row[0] for row in rows]
    exact = [_Exact.mul(int(x), int(y), f) for x, y, f in zip(a, b, names, strict=True)]
    check_bits(exact, expected, "exact", a=a, b=b, fmt=fmt)
    check_bits(golden.fp_mul(a, b, fmt), expected, "golden", a=a, b=b, fmt=fmt)
    got = stream(
        FPMul(formats=formats), FPMUL_LATENCY, a=np.r_[a, b], b=np.r_[b, a], fmt=np.r_[fmt, fmt]
    )
    check_bits(
        got,
        np.r_[expected, expected],
        f"FPMul{formats}",
        a=np.r_[a, b],
        b=np.r_[b, a],
        fmt=np.r_[fmt, fmt],
    )


@pytest.mark.parametrize(
    "fmt, table, unit, latency, model",
    [
        ("bf16", TO_BF16_DIRECTED, FP32ToBF16, FP32_TO_BF16_LATENCY, golden.fp32_to_bf16),
        ("fp16", TO_FP16_DIRECTED, FP32ToFP16, FP32_TO_FP16_LATENCY, golden.fp32_to_fp16),
    ],
    ids=["bf16", "fp16"],
)
def test_convert_directed(fmt, table, unit, latency, model):
    x, sat, expected = _cols(table, 0, 1, 2)
    exact = [_Exact.convert(int(v), fmt, s) for v, s in zip(x, sat, strict=True)]
    check_bits(exact, expected, "exact", x=x, saturate=sat)
    check_bits(model(x, sat.astype(bool)), expected, "golden", x=x, saturate=sat)
    check_bits(
        stream(unit(), latency, x=x, saturate=sat), expected, unit.__name__, x=x, saturate=sat
    )


# ---- tests: the golden model against independent references --------------------------------


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_golden_fp32_add(seed, request):
    a, b = add_vectors(seed)
    model = golden.fp32_add(a, b)
    with np.errstate(all="ignore"):
        plain = (a.view(np.float32) + b.view(np.float32)).view(np.uint32)
    nan = np.isnan(plain.view(np.float32))
    check_bits(
        model[~nan],
        plain[~nan],
        "golden vs numpy",
        seed,
        rerun_cmd(request, seed),
        a=a[~nan],
        b=b[~nan],
    )
    assert np.all(model[nan] == golden.NAN32)
    exact = [_Exact.add(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    check_bits(model, exact, "golden vs exact", seed, rerun_cmd(request, seed), a=a, b=b)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_golden_fp_mul(seed, fmt, request):
    a, b = mul_vectors(seed, fmt)
    model = golden.fp_mul(a, b, fmt)
    dtype = np.float16 if fmt == "fp16" else ml_dtypes.bfloat16
    with np.errstate(all="ignore"):
        plain = (a.view(dtype).astype(np.float64) * b.view(dtype).astype(np.float64)).astype(
            np.float32
        )
    nan = np.isnan(plain)
    plain = plain.view(np.uint32)
    check_bits(
        model[~nan],
        plain[~nan],
        "golden vs numpy",
        seed,
        rerun_cmd(request, seed),
        a=a[~nan],
        b=b[~nan],
    )
    assert np.all(model[nan] == golden.NAN32)
    exact = [_Exact.mul(x, y, fmt) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    check_bits(model, exact, "golden vs exact", seed, rerun_cmd(request, seed), a=a, b=b)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_golden_convert(seed, fmt, request):
    x, sat = convert_vectors(seed, fmt)
    model = (golden.fp32_to_bf16 if fmt == "bf16" else golden.fp32_to_fp16)(x, sat)
    dtype = ml_dtypes.bfloat16 if fmt == "bf16" else np.float16
    with np.errstate(all="ignore"):
        plain = x.view(np.float32).astype(dtype)
    nan = np.isnan(plain.astype(np.float32))
    plain = plain.view(np.uint16)
    keep = ~nan & ~sat
    check_bits(
        model[keep], plain[keep], "golden vs numpy", seed, rerun_cmd(request, seed), x=x[keep]
    )
    exact = [_Exact.convert(v, fmt, s) for v, s in zip(x.tolist(), sat.tolist(), strict=True)]
    check_bits(model, exact, "golden vs exact", seed, rerun_cmd(request, seed), x=x, saturate=sat)


# ---- tests: the hardware against the golden model, 100k vectors per unit -------------------


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fpadd_random(seed, request):
    print(f"seed={seed}")
    a, b = add_vectors(seed)
    got = stream(FPAdd(), FPADD_LATENCY, a=a, b=b)
    check_bits(got, golden.fp32_add(a, b), "FPAdd", seed, rerun_cmd(request, seed), a=a, b=b)


@pytest.mark.parametrize("fmt", ["fp16", "bf16"])
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fpmul_random(seed, fmt, request):
    print(f"seed={seed}")
    a, b = mul_vectors(seed, fmt)
    code = np.full(len(a), golden.mul_format_code(fmt))
    got = stream(FPMul(), FPMUL_LATENCY, a=a, b=b, fmt=code)
    check_bits(
        got, golden.fp_mul(a, b, fmt), f"FPMul {fmt}", seed, rerun_cmd(request, seed), a=a, b=b
    )


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fpmul_mixed_formats(seed, request):
    """The format switches every cycle, and single-format builds agree with the golden model."""
    print(f"seed={seed}")
    rng = np.random.default_rng([seed, 4])
    n = 10_000
    a16, b16 = (v[:n] for v in mul_vectors(seed, "fp16"))
    abf, bbf = (v[:n] for v in mul_vectors(seed, "bf16"))
    fmt = rng.integers(0, 2, n).astype(np.uint8)
    a, b = np.where(fmt == 1, abf, a16), np.where(fmt == 1, bbf, b16)
    got = stream(FPMul(), FPMUL_LATENCY, a=a, b=b, fmt=fmt)
    check_bits(
        got,
        golden.fp_mul(a, b, fmt),
        "FPMul mixed",
        seed,
        rerun_cmd(request, seed),
        a=a,
        b=b,
        fmt=fmt,
    )
    for name, x, y in (("fp16", a16, b16), ("bf16", abf, bbf)):
        # `fmt` is ignored by a single-format unit: drive it with noise.
        got = stream(FPMul(formats=(name,)), FPMUL_LATENCY, a=x, b=y, fmt=fmt)
        check_bits(
            got,
            golden.fp_mul(x, y, name),
            f"FPMul(formats=({name!r},))",
            seed,
            rerun_cmd(request, seed),
            a=x,
            b=y,
        )


@pytest.mark.parametrize(
    "fmt, unit, latency, model",
    [
        ("bf16", FP32ToBF16, FP32_TO_BF16_LATENCY, golden.fp32_to_bf16),
        ("fp16", FP32ToFP16, FP32_TO_FP16_LATENCY, golden.fp32_to_fp16),
    ],
    ids=["bf16", "fp16"],
)
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_convert_random(seed, fmt, unit, latency, model, request):
    print(f"seed={seed}")
    x, sat = convert_vectors(seed, fmt)
    got = stream(unit(), latency, x=x, saturate=sat)
    check_bits(got, model(x, sat), unit.__name__, seed, rerun_cmd(request, seed), x=x, saturate=sat)
