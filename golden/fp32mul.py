"""Bit-level golden model of :class:`ncore.hw.fp32mul.FP32Mul`, the binary32 multiplier.

numpy's float32 ``*`` is IEEE 754 binary32 multiplication with round-to-nearest-even and
subnormal inputs and outputs (numpy never sets flush-to-zero), so the model is that product
with the one deviation every ncore FP unit makes: every NaN result is the canonical quiet NaN
:data:`~ncore.golden.fp.NAN32`. See ``docs/fp.md`` for the rules common to all FP units.
"""

import numpy as np

from .fp import canon_nan32

__all__ = ["fp32_mul"]


def fp32_mul(a_bits, b_bits):
    """IEEE binary32 product ``a × b`` (round to nearest even, subnormals kept), as bits.

    Parameters
    ----------
    a_bits, b_bits : array_like of uint32
        Binary32 operand bit patterns (broadcast against each other).

    Returns
    -------
    ndarray of uint32
        The correctly rounded product. Overflow gives ±inf, underflow a subnormal or ±0, the
        sign of a zero or infinite product is the XOR of the operand signs, and NaN operands
        and inf × 0 give :data:`~ncore.golden.fp.NAN32`.
    """
    a = np.asarray(a_bits, dtype=np.uint32).view(np.float32)
    b = np.asarray(b_bits, dtype=np.uint32).view(np.float32)
    # inf × 0, signalling NaNs, overflow and underflow raise numpy warnings; the results they
    # produce are the contract.
    with np.errstate(all="ignore"):
        p = np.asarray(a * b)
    return canon_nan32(p.view(np.uint32))
