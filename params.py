"""The one parameter object that drives the hardware generator, golden model, compiler and tests.

:class:`NCoreParams` is a frozen dataclass that validates itself on construction. Generated
Verilog is always written next to ``params.json`` (see :meth:`NCoreParams.to_json`), and
benches rebuild the object from that file instead of re-deriving anything.

This module is plain Python (no amaranth, no numpy) so that every layer can import it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DTYPES", "DTYPE_CODE", "NCoreParams", "ParamError"]

#: Element types the tensor engine understands, in the order of their 2-bit codes.
DTYPES = ("int8", "fp16", "bf16")
#: The 2-bit code of each element type, as carried next to activations in hardware.
DTYPE_CODE = {name: code for code, name in enumerate(DTYPES)}

_MAX_DIM = 256


class ParamError(ValueError):
    """A generator parameter is out of range or of the wrong type."""


def _check_int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"≥ {lo}" if hi is None else f"in {lo}…{hi}"
        raise ParamError(f"{name} must be {rng}, not {value}")


def _check_pow2(name, value, lo, hi):
    _check_int(name, value, lo, hi)
    if value & (value - 1):
        raise ParamError(f"{name} must be a power of two in {lo}…{hi}, not {value}")


@dataclass(frozen=True)
class NCoreParams:
    """Generator parameters of an ncore chip.

    Parameters
    ----------
    cores : int
        NeuronCores on the chip (1…16).
    rows : int
        PE-array rows = SBUF partitions = contraction (K) elements per pass (1…256).
    cols : int
        PE-array columns = PSUM partitions = output features (N) per pass (1…256).
    dtypes : tuple of str
        Element types the tensor engine implements, a non-empty subset of
        ``("int8", "fp16", "bf16")``. Leaving out both FP types removes the FP datapath.
    sbuf_depth : int
        Entries per SBUF partition (power of two). Default 4096: an 8-row core then holds
        8 × 4096 × 2 B = 64 KiB, enough for a 256×256 int8 operand pair plus double buffers.
    psum_depth : int
        32-bit entries per PSUM partition (power of two).
    axi_data_width : int
        DRAM bus width in bits (64, 128, 256 or 512).
    axi_addr_width : int
        DRAM address width in bits (16…64).
    semaphores : int
        Semaphores per core (1…32).
    queue_depth : int
        Entries in each engine's instruction queue (power of two, 2…64).
    """

    cores: int = 4
    rows: int = 8
    cols: int = 8
    dtypes: tuple[str, ...] = ("int8",)
    sbuf_depth: int = 4096
    psum_depth: int = 1024
    axi_data_width: int = 128
    axi_addr_width: int = 32
    semaphores: int = 16
    queue_depth: int = 8
    # The remaining fields are derived; they are not constructor arguments.
    acc_width: int = field(default=32, init=False)

    def __post_init__(self):
        _check_int("cores", self.cores, 1, 16)
        _check_int("rows", self.rows, 1, _MAX_DIM)
        _check_int("cols", self.cols, 1, _MAX_DIM)
        dtypes = self.dtypes
        if isinstance(dtypes, str):
            dtypes = tuple(d.strip() for d in dtypes.split(",") if d.strip())
        try:
            dtypes = tuple(dtypes)
        except TypeError:
            raise ParamError(f"dtypes must be a sequence of names, not {self.dtypes!r}") from None
        if not dtypes:
            raise ParamError("dtypes must name at least one of int8, fp16, bf16")
        for d in dtypes:
            if d not in DTYPES:
                raise ParamError(f"unknown dtype {d!r}; choose from int8, fp16, bf16")
        if len(set(dtypes)) != len(dtypes):
            raise ParamError(f"dtypes lists a type twice: {', '.join(dtypes)}")
        # Canonical order, so equal parameter sets compare and serialise equal.
        object.__setattr__(self, "dtypes", tuple(d for d in DTYPES if d in dtypes))
        _check_pow2("sbuf_depth", self.sbuf_depth, 16, 1 << 20)
        _check_pow2("psum_depth", self.psum_depth, 16, 1 << 20)
        if self.axi_data_width not in (64, 128, 256, 512):
            raise ParamError(
                f"axi_data_width must be 64, 128, 256 or 512, not {self.axi_data_width!r}"
            )
        _check_int("axi_addr_width", self.axi_addr_width, 16, 64)
        _check_int("semaphores", self.semaphores, 1, 32)
        _check_pow2("queue_depth", self.queue_depth, 2, 64)

    # -- derived quantities ---------------------------------------------------------------

    @property
    def has_fp(self) -> bool:
        """True when the tensor engine has an FP datapath (fp16 and/or bf16)."""
        return any(d != "int8" for d in self.dtypes)

    @property
    def lane_width(self) -> int:
        """Bits of one activation or weight element: 8 for int8-only builds, else 16."""
        return 16 if self.has_fp else 8

    @property
    def pe_mul_latency(self) -> int:
        """Cycles from an activation at a PE's input to its registered product."""
        return 2 if self.has_fp else 1

    @property
    def pe_add_latency(self) -> int:
        """Cycles of a PE's accumulate stage; also the activation skew between rows."""
        return 3 if self.has_fp else 1

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def to_json(self) -> str:
        d = self.to_dict()
        d["dtypes"] = list(d["dtypes"])
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> NCoreParams:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ParamError(f"unknown parameter(s): {', '.join(unknown)}")
        d = dict(d)
        if "dtypes" in d and isinstance(d["dtypes"], list):
            d["dtypes"] = tuple(d["dtypes"])
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | Path) -> NCoreParams:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **changes) -> NCoreParams:
        return dataclasses.replace(self, **changes)

    def tag(self) -> str:
        """A short, unique name for build folders: ``r8c8-int8`` for the defaults, with every
        other parameter that differs from its default appended (``r8c8-int8-sd2048-bw64``)."""
        short = {"cores": "c", "sbuf_depth": "sd", "psum_depth": "pd", "axi_data_width": "bw",
                 "axi_addr_width": "aw", "semaphores": "s", "queue_depth": "q"}  # fmt: skip
        default = NCoreParams()
        extra = [f"{k}{getattr(self, f)}" for f, k in short.items()
                 if getattr(self, f) != getattr(default, f)]  # fmt: skip
        return "-".join([f"r{self.rows}c{self.cols}", "_".join(self.dtypes), *extra])
