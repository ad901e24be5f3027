"""Tests of the binary32 multiplier (:mod:`ncore.hw.fp32mul`) and its golden model.

The same three-way check as ``tests/test_fp.py``, whose generic pieces this file reuses: the
ROM-to-RAM streaming harness (``stream``), the hex-printing comparison (``check_bits``) and
``_Exact``, the integer model of IEEE rounding that shares no code with numpy or the hardware.

* Directed vectors with hand-worked bits go through ``_Exact``, the golden model and the
  hardware (both operand orders).
* 100,000 random pairs per seed (uniform bits, underflow and overflow edges, subnormal
  operands, ties, specials) are streamed one per cycle through the pipeline and compared with
  the golden model bit for bit; the golden model is compared with plain numpy float32 ``*``
  and with ``_Exact`` on the same pairs.

Seeds: ``NCORE_FP_SEEDS=1,2,3`` sweeps other seeds, as for the other FP units.
"""

import functools

import numpy as np
import pytest
from amaranth.back import verilog
from test_fp import (
    SEEDS,
    _Exact,
    _mix,
    _pack,
    _sparse,
    check_bits,
    rerun_cmd,
    special_pairs32,
    stream,
)

from ncore.golden import fp as gfp
from ncore.golden.fp32mul import fp32_mul
from ncore.hw.fp32mul import FP32MUL_LATENCY, FP32Mul

N_RANDOM = 100_000

# (a, b, expected a × b)
MUL32_DIRECTED = [
    (0x3F80_0000, 0x3F80_0000, 0x3F80_0000),  # 1 × 1
    (0x3FC0_0000, 0x3FC0_0000, 0x4010_0000),  # 1.5 × 1.5 = 2.25: product in [2, 4)
    (0xC000_0000, 0x4040_0000, 0xC0C0_0000),  # -2 × 3 = -6
    (0x3F80_0001, 0x3F80_0001, 0x3F80_0002),  # (1 + 2^-23)² = 1 + 2^-22 + 2^-46: sticky only
    (0x3F80_0001, 0x3F7F_FFFF, 0x3F80_0000),  # = 1 + 2^-24 - 2^-47: just below the tie
    (0x3F80_0800, 0x3F80_0800, 0x3F80_1000),  # (1 + 2^-12)² = 1 + 2^-11 + 2^-24: tie, even
    (0x3F80_0800, 0x3F80_1800, 0x3F80_2002),  # 1 + 2^-10 + 2^-23 + 2^-24: tie, up to even
    (0x3FFF_FFFF, 0x3FFF_FFFF, 0x407F_FFFE),  # (2 - 2^-23)² = 4 - 2^-21 + 2^-46
    (0x7F7F_FFFF, 0x3F80_0000, 0x7F7F_FFFF),  # max × 1
    (0x7F7F_FFFF, 0xBF80_0000, 0xFF7F_FFFF),  # max × -1
    (0x7F7F_FFFF, 0x4000_0000, 0x7F80_0000),  # max × 2 = inf
    (0x7F00_0000, 0x4000_0000, 0x7F80_0000),  # 2^127 × 2 = 2^128: overflow
    (0x7F00_0000, 0x3FFF_FFFF, 0x7F7F_FFFF),  # 2^127 × (2 - 2^-23) = max, exact
    (0x7F7F_FFFF, 0x3F80_0001, 0x7F80_0000),  # max × (1 + 2^-23) rounds past max: inf
    (0x5AF8_0000, 0x6404_2108, 0x7F80_0000),  # 31·2^50 × 1082401·2^53 = 2^128 - 2^103: tie
    (0xDAF8_0000, 0x6404_2108, 0xFF80_0000),  # ... above max (odd): to -inf
    (0x0080_0000, 0x3F00_0000, 0x0040_0000),  # 2^-126 × 0.5 = 2^-127: subnormal out
    (0x0080_0000, 0x3400_0000, 0x0000_0001),  # 2^-126 × 2^-23 = 2^-149: smallest subnormal
    (0x0080_0000, 0x3380_0000, 0x0000_0000),  # = 2^-150: tie between 0 and 2^-149, to 0
    (0x8080_0000, 0x3380_0000, 0x8000_0000),  # ... negative: -0
    (0x0080_0000, 0x33C0_0000, 0x0000_0001),  # = 1.5 × 2^-150: up to 2^-149
    (0x00C0_0000, 0x3400_0000, 0x0000_0002),  # 1.5 units of 2^-149: tie, up to even 2
    (0x0120_0000, 0x3400_0000, 0x0000_0002),  # 2.5 units of 2^-149: tie, down to even 2
    (0x1AC0_0000, 0x252A_AAAA, 0x0080_0000),  # (2^24 - 1)·2^-150: tie, rounds up to 2^-126
    (0x0000_0001, 0x7180_0000, 0x2700_0000),  # 2^-149 (subnormal in) × 2^100 = 2^-49
    (0x007F_FFFF, 0x4000_0000, 0x00FF_FFFE),  # largest subnormal × 2: normal out, exact
    (0x0000_0003, 0x3F80_0000, 0x0000_0003),  # subnormal × 1
    (0x807F_FFFF, 0x3F80_0000, 0x807F_FFFF),  # -largest subnormal × 1
    (0x0000_0003, 0x3F00_0000, 0x0000_0002),  # 3 units × 0.5 = 1.5 units: tie, to 2
    (0x0000_0001, 0x0000_0001, 0x0000_0000),  # subnormal × subnormal underflows to 0
    (0x8000_0001, 0x0000_0001, 0x8000_0000),  # ... to -0
    (0x0000_0001, 0x3F00_0000, 0x0000_0000),  # 2^-150: tie, to 0
    (0x7F80_0000, 0x0000_0000, 0x7FC0_0000),  # inf × 0 = NaN
    (0x0000_0000, 0xFF80_0000, 0x7FC0_0000),  # 0 × -inf = NaN
    (0x7F80_0000, 0xBF80_0000, 0xFF80_0000),  # inf × -1 = -inf
    (0x7F80_0000, 0x0000_0001, 0x7F80_0000),  # inf × min subnormal = inf
    (0xFF80_0000, 0xFF80_0000, 0x7F80_0000),  # -inf × -inf = inf
    (0x7FC0_0000, 0x3F80_0000, 0x7FC0_0000),  # NaN × 1
    (0xFFC0_0001, 0x0000_0000, 0x7FC0_0000),  # negative NaN with payload × 0
    (0x7F80_0001, 0x7F80_0000, 0x7FC0_0000),  # sNaN × inf
    (0x8000_0000, 0x8000_0000, 0x0000_0000),  # -0 × -0 = +0
    (0x0000_0000, 0xBF80_0000, 0x8000_0000),  # 0 × -1 = -0
    (0x8000_0000, 0x0000_0001, 0x8000_0000),  # -0 × min subnormal = -0
    (0x4B80_0000, 0x4B80_0000, 0x5780_0000),  # 2^24 × 2^24 = 2^48
]


@functools.cache
def mul32_vectors(seed, n=N_RANDOM):
    """Operand pairs for FP32Mul: uniform bits plus results around the underflow and
    overflow edges, subnormal operands, products with few bits (ties) and specials."""
    rng = np.random.default_rng([seed, 32])

    def u32(k):
        return rng.integers(0, 1 << 32, k, dtype=np.uint64)

    def num(k, e):
        return _pack(rng.integers(0, 2, k), e, _sparse(rng, 23, k), 8, 23)

    def exp_sum(k, lo, hi):
        # Biased exponents (0 … 254) whose sum lies in [lo, hi]: the result exponent is about
        # the sum - 127, so 100 … 130 is the subnormal range and 380 … 384 the overflow edge.
        total = rng.integers(lo, hi + 1, k)
        ea = np.clip(rng.integers(0, 255, k), np.maximum(total - 254, 0), np.minimum(total, 254))
        return num(k, ea), num(k, np.clip(total - ea, 0, 254))

    def subnormal(k):
        # A subnormal operand times a subnormal, random bits, or a large normal (normal out).
        a = num(k, np.zeros(k, dtype=np.int64))
        other = rng.integers(0, 3, k)
        b = np.where(
            other == 0,
            num(k, np.zeros(k, dtype=np.int64)),
            np.where(other == 1, u32(k), num(k, rng.integers(140, 255, k))),
        )
        swap = rng.random(k) < 0.5
        return np.where(swap, b, a), np.where(swap, a, b)

    def short(k):
        # Few significant bits: exact products and exact ties.
        def one():
            frac = rng.integers(0, 1 << 23, k, dtype=np.uint64)
            keep = rng.integers(1, 13, k).astype(np.uint64)
            frac &= ~((np.uint64(1) << (np.uint64(23) - keep)) - np.uint64(1))
            return _pack(rng.integers(0, 2, k), rng.integers(1, 255, k), frac, 8, 23)

        return one(), one()

    with_special = functools.partial(special_pairs32, rng)

    a, b = _mix(rng, n, [
        (30, lambda k: (u32(k), u32(k))),
        (10, lambda k: exp_sum(k, 120, 134)),
        (15, lambda k: exp_sum(k, 96, 130)),
        (10, lambda k: exp_sum(k, 375, 384)),
        (15, subnormal),
        (10, short),
        (10, with_special),
    ])  # fmt: skip
    return a.astype(np.uint32), b.astype(np.uint32)


def test_fp32mul_verilog_converts():
    text = verilog.convert(FP32Mul(), name="fp32mul")
    assert "module fp32mul" in text


def test_fp32mul_directed():
    a, b, expected = (np.array([row[i] for row in MUL32_DIRECTED]) for i in range(3))
    exact = [_Exact.mul(int(x), int(y), "fp32") for x, y in zip(a, b, strict=True)]
    check_bits(exact, expected, "exact", a=a, b=b)
    check_bits(fp32_mul(a, b), expected, "golden", a=a, b=b)
    # Both operand orders through the hardware: the product is commutative bit for bit.
    got = stream(FP32Mul(), FP32MUL_LATENCY, a=np.r_[a, b], b=np.r_[b, a])
    check_bits(got, np.r_[expected, expected], "FP32Mul", a=np.r_[a, b], b=np.r_[b, a])


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_golden_fp32_mul(seed, request):
    a, b = mul32_vectors(seed)
    model = fp32_mul(a, b)
    with np.errstate(all="ignore"):
        plain = (a.view(np.float32) * b.view(np.float32)).view(np.uint32)
    nan = np.isnan(plain.view(np.float32))
    rerun = rerun_cmd(request, seed)
    check_bits(model[~nan], plain[~nan], "golden vs numpy", seed, rerun, a=a[~nan], b=b[~nan])
    assert np.all(model[nan] == gfp.NAN32)
    exact = [_Exact.mul(x, y, "fp32") for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    check_bits(model, exact, "golden vs exact", seed, rerun, a=a, b=b)
    # The sweep reaches every kind of result.
    e = (model >> 23) & 0xFF
    assert np.sum(nan) > 100 and np.sum(e == 0xFF) > 1000 and np.sum(e == 0) > 5000


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed={s}")
def test_fp32mul_random(seed, request):
    print(f"seed={seed}")
    a, b = mul32_vectors(seed)
    got = stream(FP32Mul(), FP32MUL_LATENCY, a=a, b=b)
    check_bits(got, fp32_mul(a, b), "FP32Mul", seed, rerun_cmd(request, seed), a=a, b=b)
