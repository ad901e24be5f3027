"""Bit-level golden models of the floating-point units in :mod:`ncore.hw.fp`.

Every function takes and returns raw bit patterns (``uint16`` / ``uint32`` arrays) and is
vectorised over numpy arrays. The arithmetic itself is done by numpy's IEEE floats, which is
what makes these models simple enough to be the oracle:

* a product of two fp16 or two bf16 values is exact in float64 (at most 11 × 11 significand
  bits, exponents far inside float64's range), so casting it to float32 is a single
  round-to-nearest-even step;
* float32 ``+`` is IEEE binary32 addition, round-to-nearest-even, with subnormals;
* float32 → bfloat16 goes through ``ml_dtypes.bfloat16`` and float32 → float16 through
  ``np.float16``, both round-to-nearest-even from float32 (never from float64, which could
  round twice).

The only deviation from plain numpy is NaN: the hardware drops NaN signs and payloads and
returns one canonical quiet NaN per format (:data:`NAN32`, :data:`NAN_BF16`,
:data:`NAN_FP16`), so the models do the same.

See ``docs/fp.md`` for the contract these models define.
"""

import ml_dtypes
import numpy as np

__all__ = [
    "BF16_MAX",
    "FP16_MAX",
    "NAN32",
    "NAN_BF16",
    "NAN_FP16",
    "canon_nan16",
    "canon_nan32",
    "fp32_add",
    "fp32_to_bf16",
    "fp32_to_fp16",
    "fp_mul",
    "mul_format_code",
]

#: Canonical quiet NaN of binary32: positive, quiet bit set, zero payload.
NAN32 = 0x7FC0_0000
#: Canonical quiet NaN of bfloat16.
NAN_BF16 = 0x7FC0
#: Canonical quiet NaN of binary16.
NAN_FP16 = 0x7E00
#: Largest finite bfloat16 magnitude (bits), the saturation value of :func:`fp32_to_bf16`.
BF16_MAX = 0x7F7F
#: Largest finite binary16 magnitude (bits, 65504), the saturation value of :func:`fp32_to_fp16`.
FP16_MAX = 0x7BFF

_FORMAT_CODE = {"fp16": 0, "bf16": 1}


def mul_format_code(fmt):
    """Return the :class:`~ncore.hw.fp.FPMul` ``fmt`` code(s) of ``fmt`` as a ``uint8`` array.

    ``fmt`` is ``"fp16"`` / ``"bf16"``, or the codes themselves (0 = fp16, 1 = bf16), as a
    scalar or an array.
    """
    if isinstance(fmt, str):
        if fmt not in _FORMAT_CODE:
            raise ValueError(f"fmt must be 'fp16' or 'bf16', not {fmt!r}")
        return np.uint8(_FORMAT_CODE[fmt])
    codes = np.asarray(fmt)
    if codes.dtype.kind not in "biu" or np.any((codes < 0) | (codes > 1)):
        raise ValueError("fmt codes must be 0 (fp16) or 1 (bf16)")
    return codes.astype(np.uint8)


def canon_nan32(bits):
    """Replace every NaN in a ``uint32`` array of binary32 patterns by :data:`NAN32`."""
    bits = np.asarray(bits, dtype=np.uint32)
    return np.where((bits & 0x7FFF_FFFF) > 0x7F80_0000, np.uint32(NAN32), bits)


def canon_nan16(bits, fmt):
    """Replace every NaN in a ``uint16`` array of ``fmt`` patterns by its canonical NaN.

    ``fmt`` is ``"bf16"`` (NaN → :data:`NAN_BF16`) or ``"fp16"`` (NaN → :data:`NAN_FP16`).
    """
    bits = np.asarray(bits, dtype=np.uint16)
    if fmt == "bf16":
        inf, nan = 0x7F80, NAN_BF16
    elif fmt == "fp16":
        inf, nan = 0x7C00, NAN_FP16
    else:
        raise ValueError(f"fmt must be 'fp16' or 'bf16', not {fmt!r}")
    return np.where((bits & 0x7FFF) > inf, np.uint16(nan), bits)


def _bf16_to_f64(bits):
    # A bf16 pattern is the upper half of the binary32 pattern of the same value.
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def fp_mul(a_bits, b_bits, fmt):
    """Product of two fp16 or two bf16 operands, as binary32 bits.

    Parameters
    ----------
    a_bits, b_bits : array_like of uint16
        Operand bit patterns.
    fmt : str or array_like of int
        ``"fp16"`` or ``"bf16"`` for all elements, or a code per element (0 = fp16, 1 = bf16).

    Returns
    -------
    ndarray of uint32
        ``float32(float64(a) * float64(b))``: exact for fp16 operands, rounded to nearest even
        (overflow → ±inf, underflow → subnormal or ±0) for bf16 operands. NaN results are
        :data:`NAN32`.
    """
    a = np.asarray(a_bits, dtype=np.uint16)
    b = np.asarray(b_bits, dtype=np.uint16)
    is_bf16 = mul_format_code(fmt).astype(bool)
    # Signalling NaNs, inf × 0 and float32 overflow all raise numpy warnings; the results
    # they produce are the contract (NaN, NaN, inf), so the warnings are silenced.
    with np.errstate(all="ignore"):
        a64 = np.where(is_bf16, _bf16_to_f64(a), a.view(np.float16).astype(np.float64))
        b64 = np.where(is_bf16, _bf16_to_f64(b), b.view(np.float16).astype(np.float64))
        prod = np.asarray((a64 * b64).astype(np.float32))
    return canon_nan32(prod.view(np.uint32))


def fp32_add(a_bits, b_bits):
    """IEEE binary32 sum ``a + b`` (round to nearest even, subnormals kept), as bits.

    Exact zero sums of opposite signs are +0, ``(-0) + (-0)`` is -0, overflow is ±inf and
    every NaN result (including ``inf - inf``) is :data:`NAN32`.
    """
    a = np.asarray(a_bits, dtype=np.uint32).view(np.float32)
    b = np.asarray(b_bits, dtype=np.uint32).view(np.float32)
    with np.errstate(all="ignore"):
        s = np.asarray(a + b)
    return canon_nan32(s.view(np.uint32))


def _saturate(bits, inf, max_finite):
    # Saturation replaces every infinite result, including converted infinities, by the
    # largest finite value of the same sign; NaN is left alone.
    return np.where((bits & 0x7FFF) == inf, (bits & 0x8000) | max_finite, bits).astype(np.uint16)


def fp32_to_bf16(x_bits, saturate=False):
    """Convert binary32 bits to bfloat16 bits, rounding to nearest even.

    Subnormal bfloat16 results are kept. Overflow gives ±inf, or ±:data:`BF16_MAX` when
    ``saturate`` is true (which also maps ±inf inputs to ±:data:`BF16_MAX`). NaN gives
    :data:`NAN_BF16`. ``saturate`` may be a scalar or a boolean array.
    """
    x = np.asarray(x_bits, dtype=np.uint32)
    with np.errstate(all="ignore"):
        y = np.asarray(x.view(np.float32).astype(ml_dtypes.bfloat16)).view(np.uint16)
    y = canon_nan16(y, "bf16")
    return np.where(np.asarray(saturate, dtype=bool), _saturate(y, 0x7F80, BF16_MAX), y)


def fp32_to_fp16(x_bits, saturate=False):
    """Convert binary32 bits to binary16 bits, rounding to nearest even.

    Results below the normal range are rounded to fp16 subnormals (or ±0). Overflow gives
    ±inf, or ±:data:`FP16_MAX` when ``saturate`` is true (which also maps ±inf inputs to
    ±:data:`FP16_MAX`). NaN gives :data:`NAN_FP16`. ``saturate`` may be a scalar or a boolean
    array.
    """
    x = np.asarray(x_bits, dtype=np.uint32)
    with np.errstate(all="ignore"):
        y = np.asarray(x.view(np.float32).astype(np.float16)).view(np.uint16)
    y = canon_nan16(y, "fp16")
    return np.where(np.asarray(saturate, dtype=bool), _saturate(y, 0x7C00, FP16_MAX), y)
