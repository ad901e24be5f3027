"""Whole-core benchmarks on Verilator: the 256³ INT8 GEMM from DRAM to DRAM, and the cycle
model's error on every workload run.

* GEMM: ``C = requantize(A @ B)`` with A (M×K) and B (K×N) int8 in DRAM and C int8 back in
  DRAM, scheduled by :func:`ncore.golden.program.gemm_stationary` on the default core
  (8×8). Utilisation = M·N·K / (rows·cols) / cycles, cycles from START to the IRQ (the
  core's own cycle counter). The result is compared with numpy byte for byte.
* Cycle model: :func:`ncore.golden.cycles.predict` for each program against the RTL's cycle
  counter — the GEMM, the directed programs of ``golden/program.py`` and random programs.

Usage: ``python -m ncore.scripts.bench_core [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .. import isa
from ..golden import cycles, randprog
from ..golden import program as gp
from ..hw.generate import BUILD
from ..params import NCoreParams

LOG = BUILD / "bench" / "core_sim.log"  #: the simulators' output


def _gemm_case(p: NCoreParams, m: int, k: int, n: int, seed: int = 1):
    from ..verif.core_run import case

    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    scale = rng.integers(1, 4, n)
    d = gp.gemm_stationary(
        p, a, b, scale=scale, shift=np.full(n, 14), bias=rng.integers(-99, 99, n)
    )
    c = case(f"gemm {m}x{k}x{n}", d.dram, d.program_base, len(d.program),
             max_cycles=20 * m * n * k // (p.rows * p.cols) + 100_000,
             sbuf_entries=1, psum_entries=1)  # fmt: skip
    return d, c


def bench_gemm(sizes=((256, 256, 256),), params: NCoreParams | None = None) -> list[dict]:
    from ..verif.core_run import run_cases

    p = params or NCoreParams()
    rows = []
    for m, k, n in sizes:
        d, c = _gemm_case(p, m, k, n)
        dram_bytes = 1 << max(16, (len(d.dram) - 1).bit_length())
        t0 = time.time()
        hw = run_cases(p, "verilator", [c], dram_bytes=dram_bytes, log=LOG)[0]
        wall = time.time() - t0
        if hw["status"] & 0xF != 0b0101:
            raise SystemExit(f"bench: GEMM {m}x{k}x{n} ended with status {hw['status']:#x}")
        got = d.outputs(hw["dram"])["C"]
        if not np.array_equal(got, d.expected["C"]):
            raise SystemExit(f"bench: GEMM {m}x{k}x{n} result differs from numpy")
        cyc = hw["counters"]["cycles"]
        model = cycles.predict(p, d.program.words).total
        util = m * n * k / (p.rows * p.cols) / cyc
        row = {
            "m": m, "k": k, "n": n, "array": f"{p.rows}x{p.cols}", "dtype": "int8",
            "cycles": cyc, "utilization": round(util, 4), "model_cycles": model,
            "model_error": round((model - cyc) / cyc, 4), "instructions": len(d.program),
            "block_rows": d.info["block_rows"], "wall_s": round(wall, 1),
            "sim_cycles_per_s": round(hw["wall_cycles"] / hw["run_s"]),
        }  # fmt: skip
        rows.append(row)
        print(
            f"core GEMM {m}×{k}×{n} int8 on {p.rows}×{p.cols}: {cyc} cycles, utilisation "
            f"{100 * util:.1f}%, model {model} ({100 * row['model_error']:+.2f}%), "
            f"{len(d.program)} instructions; simulated at {row['sim_cycles_per_s']} cycles/s",
            flush=True,
        )
    return rows


def bench_model_error(params: NCoreParams | None = None, random_programs: int = 6) -> dict:
    """The cycle model against the RTL on the directed programs and random programs."""
    from ..verif.core_run import case, run_cases

    p = params or NCoreParams(sbuf_depth=512, psum_depth=128)
    rng = np.random.default_rng(11)
    i8 = lambda shape: rng.integers(-128, 128, shape, dtype=np.int8)  # noqa: E731
    rq = {"scale": np.full(16, 5), "shift": np.full(16, 10), "bias": np.zeros(16, np.int64)}
    directed = [
        gp.gemm(p, i8((24, 20)), i8((20, 12)), **{k: v[:12] for k, v in rq.items()}),
        gp.gemm_stationary(
            p, i8((30, 32)), i8((32, 12)), block_rows=10, **{k: v[:12] for k, v in rq.items()}
        ),  # fmt: skip
        gp.conv3x3(p, i8((5, 4, 3)), i8((3, 3, 3, 4)), **{k: v[:4] for k, v in rq.items()}),
        gp.maxpool2x2(p, i8((6, 6, 9))),
    ]
    cases = [case(d.name, d.dram, d.program_base, len(d.program)) for d in directed]
    for i in range(random_programs):
        rp = randprog.random_program(p, rng)
        cases.append(case(f"random-{i}", rp.dram, rp.base, len(rp.words)))
    hw = run_cases(p, "verilator", cases, log=LOG)
    rows = []
    for c, h in zip(cases, hw, strict=True):
        words = isa.from_bytes(bytes(c["dram"][c["base"] : c["base"] + 64 * c["length"]]))
        model = cycles.predict(p, words).total
        cyc = h["counters"]["cycles"]
        rows.append({"program": c["name"], "cycles": cyc, "model_cycles": model,
                     "model_error": round((model - cyc) / cyc, 4)})  # fmt: skip
    errs = [abs(r["model_error"]) for r in rows]
    out = {"programs": rows, "mean_abs_error": round(float(np.mean(errs)), 4),
           "max_abs_error": round(float(np.max(errs)), 4)}  # fmt: skip
    print(
        f"cycle model on {len(rows)} small programs: mean |error| "
        f"{100 * out['mean_abs_error']:.1f}%, max {100 * out['max_abs_error']:.1f}%",
        flush=True,
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-bench-core", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 64³ GEMM instead of 256³")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    sizes = ((64, 64, 64),) if args.quick else ((64, 64, 64), (256, 256, 256))
    res = {"gemm": bench_gemm(sizes), "model": bench_model_error()}
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
