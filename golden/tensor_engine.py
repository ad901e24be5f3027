"""Golden model of the tensor engine: numerics in the hardware's order, and cycle counts.

Numerics
    ``matmul(x, w, dtype)`` returns what the engine delivers for activation rows ``x``
    (``M × K``) against a weight tile ``w`` (``K × N``): column ``n`` of row ``m`` is
    ``((0 + x[m,0]·w[0,n]) + x[m,1]·w[1,n]) + …`` — down the column, row 0 first.

    * ``int8``: exact products, int32 sum wrapping modulo 2³² (two's complement).
    * ``fp16``/``bf16``: inputs are uint16 bit patterns; each product is
      :func:`ncore.golden.fp.fp_mul` (exact in fp32 for fp16; rounded to nearest even for
      bf16 out of the fp32 range), the sum starts at +0.0 and adds one product per row with
      :func:`ncore.golden.fp.fp32_add` (round to nearest even, canonical NaN). The result
      is uint32 fp32 bit patterns.

Cycles
    The engine accepts one row per cycle and offers its result ``latency(params)`` cycles
    later; weight tiles load in ``cols`` cycles and overlap the previous MATMUL.
"""

from __future__ import annotations

import numpy as np

from ..params import NCoreParams
from .fp import fp32_add, fp_mul

__all__ = ["latency", "matmul", "matmul_cycles", "sequence_cycles"]


def matmul(x: np.ndarray, w: np.ndarray, dtype: str = "int8") -> np.ndarray:
    """Results of the engine for rows ``x`` (M×K) and tile ``w`` (K×N).

    For ``int8`` the inputs are int8 arrays and the result is int32.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"shapes {x.shape} and {w.shape} do not chain as M×K · K×N")
    if dtype == "int8":
        if x.dtype != np.int8 or w.dtype != np.int8:
            raise TypeError(f"int8 matmul needs int8 arrays, not {x.dtype} and {w.dtype}")
        # Every partial sum wraps modulo 2**32; wrapping once at the end is the same value.
        acc = x.astype(np.int64) @ w.astype(np.int64)
        return acc.astype(np.uint64).astype(np.uint32).view(np.int32)
    if dtype in ("fp16", "bf16"):
        if x.dtype != np.uint16 or w.dtype != np.uint16:
            raise TypeError(f"{dtype} matmul takes uint16 bit patterns, not {x.dtype}, {w.dtype}")
        acc = np.zeros((x.shape[0], w.shape[1]), dtype=np.uint32)  # +0.0
        for k in range(x.shape[1]):  # down the column: row 0 first
            prod = fp_mul(x[:, k, None], w[None, k, :], dtype)
            acc = fp32_add(acc, prod)
        return acc
    raise ValueError(f"unknown dtype {dtype!r}")


def latency(params: NCoreParams) -> int:
    """Cycles from accepting an activation row to offering its result row.

    Act stage (1) + array (cols − 1 + rows·add + mul) + output FIFO (2).
    """
    p = params
    return 1 + (p.cols - 1) + p.rows * p.pe_add_latency + p.pe_mul_latency + 2


def matmul_cycles(params: NCoreParams, m: int) -> int:
    """Cycles from the first row accepted to the last result delivered, inclusive, for a
    MATMUL of ``m`` rows with no stalls and weights already loaded."""
    if m < 1:
        raise ValueError(f"a MATMUL has at least one row, not {m}")
    return (m - 1) + latency(params) + 1


def sequence_cycles(params: NCoreParams, rows_per_tile: list[int]) -> int:
    """Cycles for LOADW/MATMUL pairs issued back to back with double buffering.

    The first weight column is offered on cycle 0; the count ends with the last result
    delivered. Tile ``i``'s LOADW (``cols`` cycles) overlaps MATMUL ``i − 1``; a tile
    cannot load into a bank while the MATMUL two tiles back still has rows in the array.
    """
    p = params
    drain = p.rows * p.pe_add_latency + p.cols + 2
    w_free = 0  # first cycle the weight port is free
    a_free = 0  # first cycle the activation port is free
    bank_last_act = [-(10**9), -(10**9)]  # cycle the last row of each bank was accepted
    end = 0
    for i, m in enumerate(rows_per_tile):
        b = i % 2
        # Weights into bank b: after the port is free and the bank drained.
        w_start = max(w_free, bank_last_act[b] + drain + 1)
        w_end = w_start + p.cols  # cycle after the last weight column was taken
        w_free = w_end
        # Rows of bank b may enter once the tile's last column was taken.
        a_start = max(a_free, w_end)
        a_last = a_start + m - 1
        a_free = a_last + 1
        bank_last_act[b] = a_last
        end = a_last + latency(p)
    return end + 1
