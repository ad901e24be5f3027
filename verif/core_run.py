"""Run programs on the simulated NeuronCore (cocotb bench ``verif/core_tb.py``) from Python.

:func:`run_cases` writes the cases to a pickle, runs the ``core_bench`` top on Icarus or
Verilator and returns what the bench read back after each case: STATUS, the error
registers, every performance counter, the cycles from START to the IRQ, DRAM, SBUF and
PSUM. Cases run back to back on one core, so SBUF/PSUM/weights carry over as on the ISS.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

from .. import isa
from ..params import NCoreParams
from .runner import run_bench

__all__ = ["case", "program_case", "run_cases", "run_chip_cases", "trace_case"]


def case(name, dram, base, length, **extra) -> dict:
    """One program run: ``dram`` image (program included) and the program's place in it.

    ``extra``: ``pause`` (AXI stalls, 0…255), ``err`` ((base, size) SLVERR window),
    ``watchdog``, ``max_cycles``, ``dram_bytes`` / ``sbuf_entries`` / ``psum_entries`` to
    read back (defaults: the image, all of SBUF and PSUM)."""
    return {"name": name, "dram": np.asarray(dram, np.uint8), "base": int(base),
            "length": int(length), "max_cycles": 200_000, **extra}  # fmt: skip


def program_case(name, words, dram=None, base=0x4000, **extra) -> dict:
    """A case whose program ``words`` is placed at ``base`` after ``dram`` (inputs)."""
    dram = np.zeros(base, np.uint8) if dram is None else np.asarray(dram, np.uint8)
    head = np.zeros(base, np.uint8)
    head[: min(base, len(dram))] = dram[:base]
    image = np.concatenate([head, np.frombuffer(isa.to_bytes(words), np.uint8)])
    return case(name, image, base, len(words), **extra)


@contextlib.contextmanager
def _output_to(log: str | Path | None):
    """Send this process's stdout and stderr (the simulator's log) to ``log`` meanwhile."""
    if log is None:
        yield
        return
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _run_pickled(params, sim, cases, *, bench, top, test_module, dram_bytes, seed=1,
                 testcase=None, log=None, work_dir=None):  # fmt: skip
    """Pickle ``cases``, run ``test_module`` on ``top`` and unpickle what the bench wrote."""
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        case_file, out_file = Path(tmp) / "cases.pkl", Path(tmp) / "results.pkl"
        with open(case_file, "wb") as f:
            pickle.dump([{k: v for k, v in c.items() if not k.startswith("_")} for c in cases], f)
        env = {"NCORE_SEED": seed, "NCORE_CASES": case_file, "NCORE_RESULTS": out_file}
        with _output_to(log):
            r = run_bench(bench, params, sim, test_module=test_module, top=top,
                          top_options={"dram_bytes": dram_bytes}, env=env,
                          testcase=testcase)  # fmt: skip
        if r["failed"] or not out_file.exists():
            raise RuntimeError(f"{test_module} failed ({r['results_xml']})")
        with open(out_file, "rb") as f:
            return pickle.load(f)


def run_cases(
    params: NCoreParams,
    sim: str,
    cases: list[dict],
    *,
    dram_bytes: int = 1 << 16,
    seed: int = 1,
    work_dir: str | Path | None = None,
    log: str | Path | None = None,
) -> list[dict]:
    """Run ``cases`` on the RTL; returns one result dict per case (see the module docstring).

    ``log``: a file for the simulator's output (default: this process's stdout)."""
    for c in cases:
        c.setdefault("dram_bytes", -(-len(c["dram"]) // 64) * 64)
        c.setdefault("sbuf_entries", params.sbuf_depth)
        c.setdefault("psum_entries", params.psum_depth)
        if len(c["dram"]) > dram_bytes:
            raise ValueError(f"case {c['name']}: image of {len(c['dram'])} B > DRAM {dram_bytes}")
    return _run_pickled(params, sim, cases, bench="core", top="core_bench",
                        test_module="ncore.verif.core_tb", dram_bytes=dram_bytes, seed=seed,
                        testcase="test_programs", log=log, work_dir=work_dir)  # fmt: skip


def trace_case(params: NCoreParams, case: dict, *, dram_bytes: int = 1 << 16) -> dict:
    """Per-instruction start/completion cycles of one case on Icarus (``verif/trace_tb.py``)."""
    return _run_pickled(params, "icarus", [case], bench="core", top="core_bench",
                        test_module="ncore.verif.trace_tb", dram_bytes=dram_bytes)  # fmt: skip


def run_chip_cases(
    params: NCoreParams,
    sim: str,
    cases: list[dict],
    *,
    dram_bytes: int = 1 << 16,
    seed: int = 1,
    log: str | Path | None = None,
) -> list[dict]:
    """Run chip cases (``verif/chip_tb.py``: a DRAM image and one ``(base, length)`` or None
    per core) on the RTL; one result dict per case with per-core status and counters."""
    for c in cases:
        c.setdefault("dram_bytes", -(-len(c["dram"]) // 64) * 64)
        c.setdefault("sbuf_entries", 1)
        c.setdefault("psum_entries", 1)
        c.setdefault("max_cycles", 2_000_000)
    return _run_pickled(params, sim, cases, bench="chip", top="chip_bench",
                        test_module="ncore.verif.chip_tb", dram_bytes=dram_bytes, seed=seed,
                        testcase="test_programs", log=log)  # fmt: skip
