"""Golden model of the state buffer (SBUF): addressing, banking, and contents.

The SBUF is ``rows`` partitions of ``sbuf_depth`` entries, one element per entry, held here
as a ``rows × sbuf_depth`` ``uint16`` array (``sbuf[partition, entry]``); only the low
``lane_width`` bits are used. See ``docs/memory.md`` and :mod:`ncore.hw.sbuf`.

Linear element address
    ``addr = entry << pbits | partition`` with ``pbits = ceil(log2(rows))``. Consecutive
    addresses walk across the partitions of one entry, then on to the next entry. An address
    whose partition field is ``≥ rows``, or whose entry is ``≥ sbuf_depth``, is out of range.

Sub-banks
    Each partition is split into ``sub`` sub-banks interleaved by entry (sub-bank
    ``entry mod sub``, bank row ``entry // sub``), ``sub = max(1, E >> pbits)`` with
    ``E`` the int8 elements per bus beat (capped at ``sbuf_depth / 2``). Then any ``lanes``
    consecutive linear addresses hit each (partition, sub-bank) at most once, which lets the
    DMA write or read a whole chunk per cycle.
"""

from __future__ import annotations

import numpy as np

from ..params import NCoreParams

__all__ = [
    "addr_bits",
    "bank_of",
    "capacity",
    "chunk_lanes",
    "decode",
    "in_range",
    "linear",
    "new_sbuf",
    "pbits",
    "read_chunk",
    "read_row",
    "sub_banks",
    "write_chunk",
]


def pbits(params: NCoreParams) -> int:
    """Bits of the partition field of a linear address: ``ceil(log2(rows))``."""
    return (params.rows - 1).bit_length()


def bus_bytes(params: NCoreParams) -> int:
    return params.axi_data_width // 8


def sub_banks(params: NCoreParams) -> int:
    """Sub-banks per partition (a power of two)."""
    return min(max(1, bus_bytes(params) >> pbits(params)), params.sbuf_depth // 2)


def chunk_lanes(params: NCoreParams) -> int:
    """Elements the DMA chunk port moves per cycle: ``min(bus bytes, sub << pbits)``."""
    return min(bus_bytes(params), sub_banks(params) << pbits(params))


def addr_bits(params: NCoreParams) -> int:
    """Width of a linear element address."""
    return pbits(params) + (params.sbuf_depth - 1).bit_length()


def capacity(params: NCoreParams) -> int:
    """Elements the SBUF holds (the number of in-range linear addresses)."""
    return params.rows * params.sbuf_depth


def linear(params: NCoreParams, entry, partition):
    """Linear element address of (entry, partition)."""
    return (np.asarray(entry, dtype=np.int64) << pbits(params)) | np.asarray(partition)


def decode(params: NCoreParams, addr):
    """(entry, partition) of linear address(es) ``addr``."""
    a = np.asarray(addr, dtype=np.int64)
    return a >> pbits(params), a & ((1 << pbits(params)) - 1)


def in_range(params: NCoreParams, addr):
    """True where ``addr`` names an existing SBUF element."""
    a = np.asarray(addr, dtype=np.int64)
    entry, part = decode(params, a)
    return (a >= 0) & (entry < params.sbuf_depth) & (part < params.rows)


def bank_of(params: NCoreParams, addr):
    """(partition, sub-bank, bank row) of in-range linear address(es) ``addr``."""
    entry, part = decode(params, addr)
    sub = sub_banks(params)
    return part, entry % sub, entry // sub


def new_sbuf(params: NCoreParams) -> np.ndarray:
    """An all-zero SBUF image (``rows × sbuf_depth``, ``uint16``)."""
    return np.zeros((params.rows, params.sbuf_depth), dtype=np.uint16)


def _lane_mask(params: NCoreParams) -> int:
    return (1 << params.lane_width) - 1


def write_chunk(params: NCoreParams, sbuf: np.ndarray, addr: int, values, mask=None) -> None:
    """Write ``values[i]`` to linear address ``addr + i`` where ``mask[i]``; lanes whose
    address is out of range are ignored (the SBUF has no bank there)."""
    values = np.asarray(values, dtype=np.int64)
    mask = np.ones(len(values), bool) if mask is None else np.asarray(mask, bool)
    addrs = addr + np.arange(len(values))
    ok = mask & in_range(params, addrs)
    entry, part = decode(params, addrs[ok])
    sbuf[part, entry] = values[ok] & _lane_mask(params)


def read_chunk(params: NCoreParams, sbuf: np.ndarray, addr: int, n: int) -> np.ndarray:
    """Elements at linear addresses ``addr … addr + n - 1`` (out-of-range lanes read 0)."""
    addrs = addr + np.arange(n)
    ok = in_range(params, addrs)
    out = np.zeros(n, dtype=np.uint16)
    entry, part = decode(params, addrs[ok])
    out[ok] = sbuf[part, entry]
    return out


def read_row(sbuf: np.ndarray, entry: int) -> np.ndarray:
    """What an engine row read of ``entry`` returns: one element per partition."""
    return sbuf[:, entry].copy()
