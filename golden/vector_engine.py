"""Golden model of the vector engine (ACT), bit-exact against :mod:`ncore.hw.vector_engine`.

One row is ``lanes`` 32-bit containers; :func:`run` applies a configuration (one for all rows,
or one per row) and the per-lane parameters to rows of operands ``a`` and ``b`` and returns
the output containers. The numerics are specified in ``docs/vector_engine.md``; in short, per
lane:

1. widen ``a`` and ``b`` to the compute domain (``in_type`` INT8/INT32: int32; FP16/BF16/FP32:
   fp32, exactly);
2. ``t`` = ``a + b`` (ADD), ``max(a, b)`` (MAX) or ``a`` (ACT);
3. int: ``u = sat32(round_half_even((t + bias) · M / 2^shift))``;
   fp: ``u = fp32_add(fp32_mul(t, scale), bias)``;
4. ``v = func(u)``: IDENTITY, RELU = max(u, 0), CLAMP = min(max(u, lo), hi);
5. output conversion to ``out_type`` (zero point and int8 saturation for INT8 outputs).

Field codes are plain ``IntEnum`` values here (the golden model never imports amaranth);
``tests/test_vector_engine.py`` checks that they equal the hardware's ``amaranth.lib.enum``
codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

import numpy as np

from ..params import NCoreParams
from .fp import NAN32, fp32_add, fp32_to_bf16, fp32_to_fp16
from .fp32mul import fp32_mul

__all__ = [
    "CONFIG_DEFAULTS",
    "FP_TYPES",
    "Func",
    "Op",
    "ParamField",
    "VType",
    "fp_identity_params",
    "int_identity_params",
    "lanes",
    "latency",
    "row_error",
    "run",
]


class Op(IntEnum):
    """Row operation (``config.op``)."""

    ACT = 0
    ADD = 1
    MAX = 2


class VType(IntEnum):
    """Element type of the inputs (``in_type``) or the output (``out_type``).

    INT8, FP16 and BF16 have the codes of :data:`ncore.params.DTYPE_CODE`.
    """

    INT8 = 0
    FP16 = 1
    BF16 = 2
    INT32 = 3
    FP32 = 4


class Func(IntEnum):
    """Activation function (``config.func``)."""

    IDENTITY = 0
    RELU = 1
    CLAMP = 2


class ParamField(IntEnum):
    """Per-lane parameter written by one transfer on ``i_param``."""

    SCALE = 0
    BIAS = 1
    SHIFT = 2


#: Input types whose compute domain is fp32.
FP_TYPES = frozenset({VType.FP16, VType.BF16, VType.FP32})

#: Value of every configuration field a caller leaves out.
CONFIG_DEFAULTS = {
    "op": Op.ACT,
    "in_type": VType.INT32,
    "out_type": VType.INT32,
    "func": Func.IDENTITY,
    "saturate": 0,
    "zero_point": 0,
    "clamp_lo": 0,
    "clamp_hi": 0,
}

_ONE_F32 = 0x3F80_0000
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def lanes(params: NCoreParams) -> int:
    """Lanes of the vector engine: ``max(rows, cols)``."""
    return max(params.rows, params.cols)


def latency(params: NCoreParams) -> int:
    """Cycles from a row's acceptance on ``i_row`` to its result on ``o_row``."""
    # Input register, widen register, op (FPAdd + select register, or one register), scale
    # (FP32Mul + FPAdd, or the 6-cycle int requantiser), func register, output conversion
    # (domain change 2 + format change 2, or 1), output FIFO 2.
    if params.has_fp:
        return 1 + 1 + 4 + 7 + 1 + 4 + 2
    return 1 + 1 + 1 + 6 + 1 + 1 + 2


def int_identity_params(n_lanes: int) -> dict:
    """Integer parameters that leave ``t`` unchanged: M = 1, shift = 0, bias = 0."""
    return {
        "scale": np.ones(n_lanes, dtype=np.uint32),
        "bias": np.zeros(n_lanes, dtype=np.uint32),
        "shift": np.zeros(n_lanes, dtype=np.uint32),
    }


def fp_identity_params(n_lanes: int) -> dict:
    """FP parameters scale = 1.0, bias = +0.0 (identity except that -0 becomes +0)."""
    return {
        "scale": np.full(n_lanes, _ONE_F32, dtype=np.uint32),
        "bias": np.zeros(n_lanes, dtype=np.uint32),
        "shift": np.zeros(n_lanes, dtype=np.uint32),
    }


def _fields(config, n):
    """Per-row field arrays (shape ``(n, 1)``) from one mapping or a sequence of mappings."""
    if isinstance(config, Mapping):
        config = [config] * n
    config = list(config)
    if len(config) != n:
        raise ValueError(f"{len(config)} configurations for {n} rows")
    unknown = {k for c in config for k in c} - set(CONFIG_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
    out = {}
    for name, default in CONFIG_DEFAULTS.items():
        values = [int(c.get(name, default)) for c in config]
        out[name] = np.array(values, dtype=np.int64).reshape(n, 1)
    # clamp bounds are 32-bit patterns: accept signed ints for the int domain.
    for name in ("clamp_lo", "clamp_hi"):
        out[name] = (out[name] & 0xFFFF_FFFF).astype(np.uint32)
    return out


def _error(f, has_fp):
    bad = (f["op"] > Op.MAX) | (f["func"] > Func.CLAMP)
    bad |= (f["in_type"] > VType.FP32) | (f["out_type"] > VType.FP32)
    if not has_fp:
        for t in FP_TYPES:
            bad |= (f["in_type"] == t) | (f["out_type"] == t)
    return bad


def row_error(config, has_fp: bool = True) -> bool:
    """True when the engine flags ``config`` (one mapping) as an error and outputs zeros:
    an unassigned field code, or an FP type in an int-only build."""
    return bool(_error(_fields(config, 1), has_fp)[0, 0])


def _s32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.int32).astype(np.int64)


def _u32(values):
    return (np.asarray(values, dtype=np.int64) & 0xFFFF_FFFF).astype(np.uint32)


def _widen(x, in_type):
    """Containers → compute-domain bits (int32 two's complement or fp32)."""
    x = np.asarray(x, dtype=np.uint32)
    lo16 = (x & 0xFFFF).astype(np.uint16)
    int8 = _u32((x & 0xFF).astype(np.uint8).view(np.int8))
    with np.errstate(all="ignore"):
        fp16 = lo16.view(np.float16).astype(np.float32).view(np.uint32)
    bf16 = lo16.astype(np.uint32) << 16
    return np.select(
        [in_type == VType.INT8, in_type == VType.FP16, in_type == VType.BF16],
        [int8, fp16, bf16],
        x,
    ).astype(np.uint32)


def _is_nan(bits):
    return (bits & 0x7FFF_FFFF) > 0x7F80_0000


def _key(bits, fp):
    """Unsigned keys whose order is int32 order (int) or fp order with -0 < +0 (fp)."""
    bits = np.asarray(bits, dtype=np.uint32)
    fp_key = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x8000_0000))
    return np.where(fp, fp_key, bits ^ np.uint32(0x8000_0000)).astype(np.uint32)


def _max(a, b, fp):
    """int32 max, or fp max with NaN → canonical NaN and max(+0, -0) = +0."""
    m = np.where(_key(a, fp) >= _key(b, fp), a, b)
    return np.where(fp & (_is_nan(a) | _is_nan(b)), np.uint32(NAN32), m).astype(np.uint32)


def _requant(t, scale, bias, shift):
    """``sat32(round_half_even((t + bias) · M / 2^shift))`` on int32 bit patterns."""
    tb = _s32(t + bias)  # uint32 addition wraps like int32
    p = tb * _s32(scale)  # |p| <= 2**62: exact in int64
    s = (np.asarray(shift, dtype=np.int64) & 63) + np.zeros_like(p)
    q = p >> s  # floor division by 2**s
    rem = p.view(np.uint64) & ((np.uint64(1) << s.astype(np.uint64)) - np.uint64(1))
    half = np.where(s > 0, np.uint64(1) << np.maximum(s - 1, 0).astype(np.uint64), 0)
    up = (s > 0) & ((rem > half) | ((rem == half) & (q & 1 == 1)))
    return _u32(np.clip(q + up, _INT32_MIN, _INT32_MAX))


def _fp_to_int32(bits):
    """fp32 → int32, round half to even, saturating; NaN → 0."""
    with np.errstate(all="ignore"):
        x = np.asarray(bits, dtype=np.uint32).view(np.float32).astype(np.float64)
        r = np.rint(x)  # float64 holds every float32 exactly; rint rounds half to even
        r = np.clip(np.where(np.isnan(r), 0.0, r), _INT32_MIN, _INT32_MAX)
    return _u32(r.astype(np.int64))


def _int32_to_fp(bits):
    """int32 → fp32 bits, round to nearest even (exact up to 2**24 in magnitude)."""
    return _s32(bits).astype(np.float64).astype(np.float32).view(np.uint32)


def _sat8(x32, zero_point):
    """int8 ``sat(x + zero_point)`` as a zero-extended container."""
    s = np.clip(_s32(x32) + zero_point, -128, 127)
    return (s & 0xFF).astype(np.uint32)


def run(config, params, a_rows, b_rows=None, *, has_fp: bool = True) -> np.ndarray:
    """Outputs of the vector engine for rows of operands.

    Parameters
    ----------
    config : mapping or sequence of mappings
        Configuration fields (``op``, ``in_type``, ``out_type``, ``func``, ``saturate``,
        ``zero_point``, ``clamp_lo``, ``clamp_hi``; missing ones take
        :data:`CONFIG_DEFAULTS`), for all rows or one per row. ``clamp_lo``/``clamp_hi`` are
        32-bit patterns (negative ints are taken modulo 2³²).
    params : mapping
        Per-lane ``scale``, ``bias`` (32-bit patterns: fp32 or int32) and ``shift``
        (only its low 6 bits count), arrays of ``lanes`` values.
    a_rows, b_rows : array_like, shape (rows, lanes)
        Operand containers (narrow types in the low bits; the rest is ignored). ``b_rows``
        defaults to zeros (ACT ignores it).
    has_fp : bool
        The build has the FP datapath; without it, FP types are errors.

    Returns
    -------
    ndarray of uint32, shape (rows, lanes)
        Output containers: INT8 / FP16 / BF16 results zero-extended, error rows all zero.
    """
    a = np.atleast_2d(np.asarray(a_rows, dtype=np.int64) & 0xFFFF_FFFF).astype(np.uint32)
    b = np.zeros_like(a) if b_rows is None else np.asarray(b_rows, dtype=np.int64)
    b = (np.broadcast_to(b, a.shape) & 0xFFFF_FFFF).astype(np.uint32)
    n = a.shape[0]
    f = _fields(config, n)
    scale = _u32(np.asarray(params["scale"], dtype=np.int64))
    bias = _u32(np.asarray(params["bias"], dtype=np.int64))
    shift = np.asarray(params["shift"], dtype=np.int64) & 63

    fp = np.isin(f["in_type"], list(FP_TYPES)) & has_fp
    op, func, out = f["op"], f["func"], f["out_type"]

    # 1. widen
    wa, wb = _widen(a, f["in_type"]), _widen(b, f["in_type"])

    # 2. op
    t_add = np.where(fp, fp32_add(wa, wb), wa + wb)
    t = np.select([op == Op.ADD, op == Op.MAX], [t_add, _max(wa, wb, fp)], wa).astype(np.uint32)

    # 3. scale and bias
    u = np.where(fp, fp32_add(fp32_mul(t, scale), bias), _requant(t, scale, bias, shift))
    u = u.astype(np.uint32)

    # 4. func: RELU is max(u, 0); CLAMP is min(max(u, lo), hi) with the same max rules.
    lo = np.where(func == Func.RELU, np.uint32(0), f["clamp_lo"]).astype(np.uint32)
    hi = f["clamp_hi"]
    v = np.where(func == Func.IDENTITY, u, _max(u, lo, fp))
    ku, khi = _key(v, fp), _key(hi, fp)
    clamped = np.where(ku > khi, hi, v)
    clamped = np.where(fp & (_is_nan(v) | _is_nan(hi)), np.uint32(NAN32), clamped)
    v = np.where(func == Func.CLAMP, clamped, v).astype(np.uint32)

    # 5. output conversion
    as_fp32 = np.where(fp, v, _int32_to_fp(v)).astype(np.uint32)
    as_int32 = np.where(fp, _fp_to_int32(v), v).astype(np.uint32)
    sat = f["saturate"].astype(bool)
    y = np.select(
        [out == VType.FP32, out == VType.FP16, out == VType.BF16, out == VType.INT32],
        [
            as_fp32,
            fp32_to_fp16(as_fp32, sat).astype(np.uint32),
            fp32_to_bf16(as_fp32, sat).astype(np.uint32),
            as_int32,
        ],
        _sat8(as_int32, f["zero_point"]),
    )
    return np.where(_error(f, has_fp), np.uint32(0), y).astype(np.uint32)
