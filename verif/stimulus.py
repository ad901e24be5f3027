"""Random operand generators shared by the Amaranth-sim tests and the cocotb benches.

``int8`` operands are int8 arrays; ``fp16``/``bf16`` operands are uint16 bit patterns, mostly
ordinary values (normal-distributed, converted from float32) with a sprinkling of the
values where FP bugs live: ±0, ±inf, NaN, subnormals, the largest finite value, and
values that make products overflow or underflow.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = ["SPECIALS", "lanes", "random_operands"]

SPECIALS = {
    "fp16": [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x83FF, 0x7BFF, 0xFBFF, 0x0400,
             0x3C00, 0xBC00, 0x5BFF, 0x1400],
    "bf16": [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x807F, 0x7F7F, 0xFF7F, 0x0080,
             0x3F80, 0xBF80, 0x6000, 0x2000, 0x1F80],
}  # fmt: skip


def random_operands(rng, shape, dtype: str, special_rate: float = 0.05, scale: float = 1.0):
    """Random operands of ``dtype`` (see the module docstring)."""
    if dtype == "int8":
        x = rng.integers(-128, 128, shape, dtype=np.int8)
        if special_rate:
            pick = rng.random(shape) < special_rate
            x[pick] = rng.choice(np.array([-128, 127, 0, -1], dtype=np.int8), pick.sum())
        return x
    f32 = (rng.standard_normal(shape) * scale).astype(np.float32)
    if dtype == "fp16":
        bits = f32.astype(np.float16).view(np.uint16)
    elif dtype == "bf16":
        bits = f32.astype(ml_dtypes.bfloat16).view(np.uint16)
    else:
        raise ValueError(f"unknown dtype {dtype!r}")
    bits = np.array(bits, dtype=np.uint16)
    if special_rate:
        pick = rng.random(shape) < special_rate
        bits[pick] = rng.choice(np.array(SPECIALS[dtype], dtype=np.uint16), pick.sum())
    return bits


def lanes(values) -> list[int]:
    """Raw lane bits of a 1-D operand vector (int8 → low byte, fp → 16-bit pattern)."""
    values = np.asarray(values)
    if values.dtype == np.int8:
        return [int(v) for v in values.view(np.uint8)]
    return [int(v) for v in values.astype(np.uint16)]
