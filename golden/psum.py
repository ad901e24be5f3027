"""Golden model of PSUM: ``cols`` partitions of 32-bit entries with overwrite/accumulate.

Requests apply in order. ``ACC_INT`` adds in int32 modulo 2³²; ``ACC_FP`` is
``fp32_add(old, value)`` from :mod:`ncore.golden.fp` (old value first); ``OVERWRITE``
stores the value. Bit ``p`` of a request's mask enables partition ``p``.
"""

from __future__ import annotations

import numpy as np

from ..params import NCoreParams
from .fp import fp32_add

__all__ = ["OVERWRITE", "ACC_INT", "ACC_FP", "Psum"]

OVERWRITE, ACC_INT, ACC_FP = 0, 1, 2


class Psum:
    """PSUM contents as a ``cols × psum_depth`` uint32 array (bit patterns)."""

    def __init__(self, params: NCoreParams):
        self.params = params
        self.mem = np.zeros((params.cols, params.psum_depth), dtype=np.uint32)

    def write(self, addr: int, values, mask: int, mode: int) -> None:
        p = self.params
        if not 0 <= addr < p.psum_depth:
            raise IndexError(f"PSUM entry {addr} out of range 0…{p.psum_depth - 1}")
        values = np.asarray(values, dtype=np.uint32)
        parts = [q for q in range(p.cols) if mask >> q & 1]
        old = self.mem[parts, addr]
        new = values[parts]
        if mode == ACC_INT:
            new = old + new  # uint32 arithmetic wraps like int32
        elif mode == ACC_FP:
            new = fp32_add(old, new)
        elif mode != OVERWRITE:
            raise ValueError(f"unknown PSUM mode {mode}")
        self.mem[parts, addr] = new

    def read(self, addr: int) -> np.ndarray:
        return self.mem[:, addr].copy()
