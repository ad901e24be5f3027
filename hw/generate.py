"""Verilog generation: one entry point for ``make verilog``, the benches and the CLI.

Every generated design lands in its own folder under ``build/verilog/`` as
``<top>.v`` plus ``params.json`` (the :class:`~ncore.params.NCoreParams` it was built from)
and ``design.json`` (top name, tag width and other elaboration options). Generation is
cached: a folder whose key (parameters, options, and the text of every ``hw/`` source)
matches is reused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

from amaranth.back import verilog

from ..params import NCoreParams

__all__ = ["TOPS", "build_top", "generate"]

HW_DIR = Path(__file__).resolve().parent
REPO = HW_DIR.parent
BUILD = REPO / "build"


def pe_module_name(params: NCoreParams) -> str:
    """Verilog name of the one PE module a generated array instantiates ``rows × cols`` times
    (the PE depends only on the dtypes, so designs of one dtype set can share it)."""
    return "ncore_pe_" + "_".join(params.dtypes)


def _tensor_engine(params: NCoreParams, *, pe_module=None, **options):
    from .tensor_engine import TensorEngine

    return TensorEngine(params, pe_module=pe_module, **options)


def _dma(params: NCoreParams, **options):
    from .dma_bench_top import DmaBenchTop

    return DmaBenchTop(params, **options)


def _vector_engine(params: NCoreParams, **options):
    from .vector_engine import VectorEngine

    return VectorEngine(params, **options)


#: Tops that can be generated, by name.
def _psum(params: NCoreParams, **options):
    from .psum import PSUM

    return PSUM(params, **options)


def _csr(params: NCoreParams, **options):
    from .csr import CsrFile, demo_regs

    return CsrFile(demo_regs(), **options)


def _core(params: NCoreParams, **options):
    from .core_top import CoreTop

    return CoreTop(params, **options)


def _core_bench(params: NCoreParams, **options):
    from ..verif.core_bench_top import CoreBenchTop

    return CoreBenchTop(params, **options)


def _chip(params: NCoreParams, **options):
    from .chip import Chip

    return Chip(params, **options)


def _chip_bench(params: NCoreParams, **options):
    from ..verif.chip_bench_top import ChipBenchTop

    return ChipBenchTop(params, **options)


TOPS = {
    "chip": _chip,
    "chip_bench": _chip_bench,
    "core": _core,
    "core_bench": _core_bench,
    "csr": _csr,
    "tensor_engine": _tensor_engine,
    "dma": _dma,
    "vector_engine": _vector_engine,
    "psum": _psum,
}
#: Tops whose PE array instantiates one shared PE module (see PEArray's ``pe_module``).
_SHARED_PE = {"tensor_engine"}


def build_top(top: str, params: NCoreParams, *, shared_pe: bool = False, **options):
    """Instantiate the named top-level component.

    With ``shared_pe`` (Verilog generation), PE arrays instantiate the external module
    :func:`pe_module_name` instead of inlining every PE; :func:`generate` emits that module
    once, in the same file.
    """
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r}; choose from {', '.join(sorted(TOPS))}")
    if shared_pe and top in _SHARED_PE:
        options["pe_module"] = pe_module_name(params)
    return TOPS[top](params, **options)


def design_name(top: str, params: NCoreParams, options: dict | None = None) -> str:
    """Folder name of a generated design: top, parameter tag, and a hash of any options."""
    name = f"{top}-{params.tag()}"
    if options:
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()
        name += f"-o{digest[:8]}"
    return name


def _key(top: str, params: NCoreParams, options: dict) -> str:
    h = hashlib.sha256()
    h.update(top.encode())
    h.update(params.to_json().encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    sim_models = [REPO / "verif" / f for f in ("axi_ram_model.py", "core_bench_top.py",
                                                "chip_bench_top.py")]  # fmt: skip
    for src in sorted(HW_DIR.glob("*.py")) + [REPO / "params.py", REPO / "isa.py", *sim_models]:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def generate(
    params: NCoreParams,
    top: str = "tensor_engine",
    out_dir: str | Path | None = None,
    **options,
) -> Path:
    """Write ``<top>.v``, ``params.json`` and ``design.json``; return the Verilog path.

    ``out_dir`` defaults to ``build/verilog/<design_name(...)>``.
    """
    out = Path(out_dir) if out_dir else BUILD / "verilog" / design_name(top, params, options)
    out.mkdir(parents=True, exist_ok=True)
    vfile = out / f"{top}.v"
    key = _key(top, params, options)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers may ask for the same design
        design_file = out / "design.json"
        if vfile.exists() and design_file.exists():
            if json.loads(design_file.read_text()).get("key") == key:
                return vfile
        component = build_top(top, params, shared_pe=True, **options)
        text = verilog.convert(component, name=top, emit_src=False, strip_internal_attrs=True)
        if top in _SHARED_PE:
            from .pe import PE

            # One PE module, instantiated rows × cols times by the array: a small file,
            # and simulators and synthesis tools compile the cell once.
            text += verilog.convert(
                PE(params), name=pe_module_name(params), emit_src=False, strip_internal_attrs=True
            )
        tmp = vfile.with_suffix(".v.tmp")
        tmp.write_text(text)
        tmp.replace(vfile)
        (out / "params.json").write_text(params.to_json())
        design = {"top": top, "options": options, "key": key}
        if hasattr(component, "latency"):
            design["latency"] = component.latency
        design_file.write_text(json.dumps(design, indent=2, sort_keys=True) + "\n")
    return vfile
