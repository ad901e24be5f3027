"""Speed of the fast run path (:mod:`ncore.verif.fastsim`): the data-parallel INT8 GEMM of
``scripts/bench_chip.py`` (default 256×256×256 on the default 4-core 8×8 chip, each core a
quarter of the rows of C with the A-resident schedule), checked against numpy, and the
simulated cycles per wall-clock second of the C++ run (build excluded, it is cached).

Usage: ``python -m ncore.scripts.bench_fastsim [--m M --k K --n N] [--cocotb]``;
``--cocotb`` also runs the same case on the cocotb chip bench (Verilator) and compares.
Other scripts call :func:`measure`.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from ..hw.generate import BUILD
from ..params import NCoreParams
from .bench_chip import gemm_case

LOG = BUILD / "bench" / "fastsim.log"


def _check(parts, hw) -> bool:
    ok = True
    for (_, _, d), core in zip(parts, hw["cores"], strict=True):
        ok &= core["status"] & 0xF == 0b0101
        ok &= bool(np.array_equal(d.outputs(hw["dram"])["C"], d.expected["C"]))
    return bool(ok)


def measure(m=256, k=256, n=256, params: NCoreParams | None = None, *, cocotb=False,
            log=LOG, verbose=True) -> dict:  # fmt: skip
    """Run the GEMM on the fast path (and, with ``cocotb``, on the cocotb chip bench);
    returns the figures: ``cycles`` (first START to the last core's end), ``sim_cycles`` and
    ``run_s`` of the C++ run, ``cycles_per_s``, ``bit_exact``, ``build_s`` (0 when cached),
    and with ``cocotb`` the bench's ``cocotb_cycles``, ``cocotb_cycles_per_s`` and whether
    every core counter agreed (``counters_equal``)."""
    from ..verif import fastsim

    p = params or NCoreParams()
    case, parts, dram_bytes = gemm_case(p, m, k, n)
    t0 = time.perf_counter()
    fastsim.build(p, log=log)
    build_s = time.perf_counter() - t0
    hw = fastsim.run_chip_fast(p, [dict(case)], dram_bytes=dram_bytes, log=log)[0]
    res = {
        "m": m, "k": k, "n": n, "cores": p.cores, "array": f"{p.rows}x{p.cols}",
        "cycles": hw["wall_cycles"], "sim_cycles": hw["sim_cycles"],
        "run_s": round(hw["run_s"], 3), "cycles_per_s": round(hw["rate"]),
        "bit_exact": _check(parts, hw), "build_s": round(build_s, 1),
    }  # fmt: skip
    if cocotb:
        from ..verif.core_run import run_chip_cases

        ref = run_chip_cases(p, "verilator", [dict(case)], dram_bytes=dram_bytes, log=log)[0]
        res["cocotb_cycles"] = ref["wall_cycles"]
        res["cocotb_cycles_per_s"] = round(ref["poll_cycles"] / ref["run_s"])
        res["counters_equal"] = [a["counters"] for a in hw["cores"]] == [
            b["counters"] for b in ref["cores"]
        ]
        res["cocotb_bit_exact"] = _check(parts, ref)
    if verbose:
        line = (f"fastsim: GEMM {m}×{k}×{n} int8 on {p.cores} cores of {p.rows}×{p.cols}: "
                f"{res['cycles']} cycles, {'bit-exact' if res['bit_exact'] else 'MISMATCH'}; "
                f"simulated {res['sim_cycles']} cycles in {res['run_s']} s = "
                f"{res['cycles_per_s']:,} cycles/s")  # fmt: skip
        if cocotb:
            line += (f"; cocotb chip bench {res['cocotb_cycles']} cycles at "
                     f"{res['cocotb_cycles_per_s']:,} cycles/s, counters "
                     f"{'equal' if res['counters_equal'] else 'DIFFER'}")  # fmt: skip
        print(line, flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-bench-fastsim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--cocotb", action="store_true", help="also run the cocotb chip bench")
    args = ap.parse_args(argv)
    res = measure(args.m, args.k, args.n, cocotb=args.cocotb)
    return 0 if res["bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
