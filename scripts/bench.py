"""``make bench``: the benchmark suite. Every figure is measured by a run, never typed in.

Runs on Verilator and writes ``build/bench/results.json`` plus a printed table:

* tensor engine — sustained rows/cycle, latency, cycles of a 256-row MATMUL and of a
  double-buffered LOADW/MATMUL sequence, for several shapes and dtypes, each checked against
  the golden cycle model (the bench fails on any mismatch, numeric or cycle);
* DMA — bytes per cycle for contiguous and strided loads/stores against the bus width
  (:mod:`ncore.scripts.bench_dma`);
* core — the 256³ INT8 GEMM from DRAM to DRAM (utilisation, cycles, simulation rate) and
  the cycle model's error on it and on directed and random programs
  (:mod:`ncore.scripts.bench_core`);
* chip — the 256³ INT8 GEMM data-parallel over the four cores, and a 4-layer MLP pipelined
  over the cores against the same MLP layer by layer through DRAM
  (:mod:`ncore.scripts.bench_chip`).

Usage: ``python -m ncore.scripts.bench [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from ..golden import tensor_engine as golden
from ..hw.generate import BUILD
from ..params import NCoreParams

TE_DESIGNS = [
    (4, 4, ("int8",)),
    (8, 8, ("int8",)),
    (16, 4, ("int8",)),
    (16, 16, ("int8",)),
    (8, 8, ("int8", "fp16", "bf16")),
]


def bench_tensor_engine(designs, m: int = 256) -> list[dict]:
    from ..verif.runner import run_bench

    rows = []
    for r, c, dtypes in designs:
        p = NCoreParams(rows=r, cols=c, dtypes=dtypes)
        for dtype in dtypes if len(dtypes) > 1 else dtypes:
            env = {"NCORE_SEED": 1, "NCORE_DTYPES": dtype, "NCORE_RATE_M": m,
                   "NCORE_TILES": 8, "NCORE_MAX_M": 64}  # fmt: skip
            t0 = time.time()
            res = run_bench("tensor_engine", p, "verilator", env=env,
                            test_module="ncore.verif.tensor_engine_tb")  # fmt: skip
            if res["failed"] or not res["summary"]:
                raise SystemExit(f"bench: tensor engine {p.tag()} {dtype} failed: {res}")
            s = res["summary"]
            assert s["matmul_cycles"] == golden.matmul_cycles(p, m)
            rows.append(
                {
                    "shape": f"{r}x{c}",
                    "dtypes_built": list(dtypes),
                    "dtype": dtype,
                    "rows_per_cycle": s["rows_per_cycle"],
                    "latency": s["latency"],
                    "matmul_rows": m,
                    "matmul_cycles": s["matmul_cycles"],
                    "sequence_rows": sum(s["sequence_rows"]),
                    "sequence_cycles": s["sequence_cycles"],
                    "model_cycles": golden.matmul_cycles(p, m),
                    "wall_s": round(time.time() - t0, 1),
                }
            )
            print(
                f"tensor engine {r}×{c} {dtype:5} (built {','.join(dtypes)}): "
                f"{s['rows_per_cycle']:.2f} rows/cycle, latency {s['latency']}, "
                f"{m}-row MATMUL {s['matmul_cycles']} cycles (model {golden.matmul_cycles(p, m)})",
                flush=True,
            )
    return rows


def bench_dma() -> dict:
    """Run :mod:`ncore.scripts.bench_dma` (its own process: the simulator log goes to
    stderr, the JSON to stdout) and print its figures."""
    r = subprocess.run(
        [sys.executable, "-m", "ncore.scripts.bench_dma", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if r.returncode:
        raise SystemExit(
            "bench: the DMA throughput bench failed (run python -m "
            "ncore.scripts.bench_dma to see why)"
        )
    res = json.loads(r.stdout)
    for name, row in res.items():
        if isinstance(row, dict) and "bytes_per_cycle" in row:
            print(
                f"DMA {name:<20} {row['bytes_per_cycle']:6.2f} B/cycle "
                f"({100 * row['bus_fraction']:5.1f}% of the {res['bus_bytes']}-byte bus)",
                flush=True,
            )
    return res


def _machine() -> dict:
    import os
    import platform

    from ..verif.runner import setup_environment

    setup_environment()
    ver = subprocess.run(["verilator", "--version"], capture_output=True, text=True).stdout
    ivl = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "verilator": ver.strip(),
            "iverilog": ivl.splitlines()[0] if ivl else "",
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one small design per block")
    args = ap.parse_args(argv)
    out = BUILD / "bench"
    out.mkdir(parents=True, exist_ok=True)
    results = {"date": time.strftime("%Y-%m-%d"), "simulator": "verilator"}
    designs = TE_DESIGNS[:2] if args.quick else TE_DESIGNS
    results["tensor_engine"] = bench_tensor_engine(designs)
    results["dma"] = bench_dma()
    from .bench_core import bench_gemm, bench_model_error

    sizes = ((64, 64, 64),) if args.quick else ((64, 64, 64), (256, 256, 256))
    results["core_gemm"] = bench_gemm(sizes)
    results["core_model"] = bench_model_error()
    from .bench_chip import bench_data_parallel, bench_mlp

    results["chip_gemm"] = bench_data_parallel(*(64, 64, 64) if args.quick else (256, 256, 256))
    results["chip_mlp"] = bench_mlp()
    from . import bench_fastsim, bench_models

    fast = bench_fastsim.measure(*(64, 64, 64) if args.quick else (256, 256, 256), verbose=False)
    results["fastsim"] = {k: v for k, v in fast.items() if isinstance(v, (int, float, bool, str))}
    print(f"fast path (Verilator, no cocotb): {fast['cycles_per_s']:,.0f} cycles/s on the "
          f"chip GEMM ({fast['cycles']} cycles)", flush=True)  # fmt: skip
    results.update(bench_models.measure(args.quick))
    results["machine"] = _machine()
    for png in bench_models.plots(results):
        print(f"bench: wrote {png}")
    path = Path(out / "results.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
