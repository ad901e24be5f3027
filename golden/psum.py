"""Golden model of PSUM: ``cols`` partitions of 32-bit entries with overwrite/accumulate.

Requests apply in order. ``ACC_INT`` adds in int32 modulo 2³²; ``ACC_FP`` is
``fp32_add(old, value)`` from :mod:`ncore.golden.fp` (old value first); ``OVERWRITE``
stores the value. Bit ``p`` of a request's mask enables partition ``p``.

Linear element address (the DMA's ``PSUM_STORE`` side, see :mod:`ncore.golden.dma`)
    ``addr = entry << cbits | column`` with ``cbits = ceil(log2(cols))``, as the SBUF's
    ``entry << pbits | partition``: consecutive addresses walk across the columns
    (partitions) of one entry, then on to the next entry, so a row-major ``M × cols`` int32
    result stores to DRAM with one contiguous pattern. An address whose column field is
    ``≥ cols``, or whose entry is ``≥ psum_depth``, is out of range.
"""

from __future__ import annotations

import numpy as np

from ..params import NCoreParams
from .fp import fp32_add

__all__ = [
    "ACC_FP",
    "ACC_INT",
    "OVERWRITE",
    "Psum",
    "addr_bits",
    "capacity",
    "cbits",
    "decode",
    "in_range",
    "linear",
]

OVERWRITE, ACC_INT, ACC_FP = 0, 1, 2


def cbits(params: NCoreParams) -> int:
    """Bits of the column field of a linear PSUM address: ``ceil(log2(cols))``."""
    return (params.cols - 1).bit_length()


def addr_bits(params: NCoreParams) -> int:
    """Width of a linear PSUM element address."""
    return cbits(params) + (params.psum_depth - 1).bit_length()


def capacity(params: NCoreParams) -> int:
    """Elements (32-bit words) the PSUM holds: ``cols · psum_depth``."""
    return params.cols * params.psum_depth


def linear(params: NCoreParams, entry, column):
    """Linear element address of (entry, column)."""
    return (np.asarray(entry, dtype=np.int64) << cbits(params)) | np.asarray(column)


def decode(params: NCoreParams, addr):
    """(entry, column) of linear PSUM address(es) ``addr``."""
    a = np.asarray(addr, dtype=np.int64)
    return a >> cbits(params), a & ((1 << cbits(params)) - 1)


def in_range(params: NCoreParams, addr):
    """True where ``addr`` names an existing PSUM element."""
    a = np.asarray(addr, dtype=np.int64)
    entry, col = decode(params, a)
    return (a >= 0) & (entry < params.psum_depth) & (col < params.cols)


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
