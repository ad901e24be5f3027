"""Compiled workloads on the RTL chip (Verilator fast path), for ``make bench``.

* GEMM sweep: ``M = K = N`` in 64…512, int8 and bf16, on 1 and 4 cores, DRAM to DRAM, through
  the compiler (``ncore gemm``): cycles, utilisation (M·N·K / (cores·rows·cols) / cycles),
  DRAM bytes moved, and the cycle model's prediction;
* the digits MLP and CNN (450 held-out images), data-parallel and pipelined: cycles,
  utilisation, per-layer table;
* plots under ``docs/``: ``bench_gemm.png`` (utilisation against size) and ``roofline.png``
  (achieved MACs/cycle against arithmetic intensity, MACs per DRAM byte, with the peak and the
  AXI-bandwidth ceilings).

Every run is checked bit for bit against the golden model by the runtime. ``measure()``
returns the figures; ``plots(results)`` draws them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..compiler.cli import gemm_model
from ..compiler.codegen import compile_net
from ..compiler.onnx_import import import_model
from ..compiler.runtime import run_many
from ..params import NCoreParams

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _gemm_jobs(p, sizes, dtype, cores):
    rng = np.random.default_rng(1)
    jobs = []
    for s in sizes:
        net = import_model(gemm_model(s, s, s, dtype), dtype="bf16" if dtype == "int8" else dtype)
        c = compile_net(p, net, cores=cores)
        a = (rng.integers(-127, 128, (s, s), dtype=np.int8) if dtype == "int8"
             else rng.standard_normal((s, s)).astype(np.float32))  # fmt: skip
        jobs.append((s, c, {"a": a}))
    return jobs


def bench_gemm(sizes=(64, 128, 256, 512), dtypes=("int8", "bf16"), cores=(1, 4),
               verbose=True) -> list[dict]:  # fmt: skip
    rows = []
    for dtype in dtypes:
        p = NCoreParams() if dtype == "int8" else NCoreParams(dtypes=("int8", dtype))
        for nc in cores:
            jobs = _gemm_jobs(p, sizes, dtype, nc)
            t0 = time.time()
            res = run_many([(c, f) for _, c, f in jobs], backend="verilator")
            for (s, _, _), r in zip(jobs, res, strict=True):
                rep = r.report
                moved = sum(k["dma_bytes_read"] + k["dma_bytes_written"]
                            for k in rep["counters"] if k)  # fmt: skip
                row = {"m": s, "k": s, "n": s, "dtype": dtype, "cores": nc,
                       "cycles": rep["cycles"], "predicted": rep["cycles_predicted"],
                       "model_error": round(rep["cycles_predicted"] / rep["cycles"] - 1, 4),
                       "utilization": rep["utilization"], "macs": rep["macs"],
                       "dram_bytes": moved,
                       "macs_per_cycle": round(rep["macs"] / rep["cycles"], 2),
                       "intensity": round(rep["macs"] / moved, 2),
                       "peak": nc * p.rows * p.cols}  # fmt: skip
                rows.append(row)
                if verbose:
                    print(f"GEMM {s}³ {dtype:4} {nc} core{'s' if nc > 1 else ' '}: "
                          f"{rep['cycles']:>9,} cycles, utilisation "
                          f"{100 * rep['utilization']:5.1f}%, model "
                          f"{100 * row['model_error']:+5.1f}%, "
                          f"{row['intensity']:.1f} MACs/byte", flush=True)  # fmt: skip
            if verbose:
                print(f"  ({time.time() - t0:.0f} s)", flush=True)
    return rows


def bench_digits(verbose=True) -> list[dict]:
    import onnx

    from . import digits

    paths = digits.models()
    _, _, xte, yte = digits.dataset()
    p = NCoreParams()
    jobs, meta = [], []
    for name in ("mlp", "cnn"):
        for mode in ("data", "pipeline"):
            net = import_model(onnx.load(str(paths[name])), shapes={"image": xte.shape})
            jobs.append((compile_net(p, net, mode=mode), {"image": xte}))
            meta.append((name, mode))
    t0 = time.time()
    res = run_many(jobs, backend="verilator")
    wall = time.time() - t0
    rows = []
    for (name, mode), r in zip(meta, res, strict=True):
        rep = r.report
        rows.append({"network": name, "mode": mode, "images": len(xte),
                     "accuracy": digits.accuracy(r.outputs["logits"], yte),
                     "cycles": rep["cycles"], "predicted": rep["cycles_predicted"],
                     "model_error": round(rep["cycles_predicted"] / rep["cycles"] - 1, 4),
                     "utilization": rep["utilization"], "layers": rep["layers"]})  # fmt: skip
        if verbose:
            print(f"digits {name} {mode:8}: {rep['cycles']:>8,} cycles, utilisation "
                  f"{100 * rep['utilization']:5.1f}%, model "
                  f"{100 * rows[-1]['model_error']:+5.1f}%, accuracy "
                  f"{100 * rows[-1]['accuracy']:.2f}%", flush=True)  # fmt: skip
    if verbose:
        print(f"  (all four runs: {wall:.1f} s wall)")
    return rows


def plots(results: dict, out: Path = DOCS) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    rows = results.get("gemm_sweep", [])
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for dtype in sorted({r["dtype"] for r in rows}):
            for nc in sorted({r["cores"] for r in rows}):
                pts = [(r["m"], 100 * r["utilization"]) for r in rows
                       if r["dtype"] == dtype and r["cores"] == nc]  # fmt: skip
                if pts:
                    x, y = zip(*pts, strict=True)
                    ax.plot(x, y, marker="o", label=f"{dtype}, {nc} core{'s' * (nc > 1)}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("M = K = N")
        ax.set_ylabel("array utilisation (%)")
        ax.set_ylim(0, 100)
        ax.set_title("Compiled GEMM, DRAM to DRAM, 8×8 cores (Verilator)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "bench_gemm.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

        fig, ax = plt.subplots(figsize=(6, 3.8))
        bus = 16  # bytes per cycle of the 128-bit AXI bus
        xs = np.logspace(-1, 3, 100)
        for nc, style in ((1, "--"), (4, "-")):
            peak = 64 * nc
            label = f"ceiling, {nc} core{'s' * (nc > 1)}: min({peak}, 16 B/cycle × I)"
            ax.plot(xs, np.minimum(peak, bus * xs), "k" + style, lw=1, label=label)
        for r in rows:
            ax.scatter(r["intensity"], r["macs_per_cycle"], s=18,
                       marker="o" if r["dtype"] == "int8" else "^",
                       color="C0" if r["cores"] == 1 else "C1")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
        ax.set_ylabel("achieved MACs / cycle")
        ax.set_title("Roofline: GEMMs (o int8, ^ bf16; blue 1 core, orange 4 cores)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out / "roofline.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made


def measure(quick: bool = False) -> dict:
    sizes = (64, 128) if quick else (64, 128, 256, 512)
    return {"gemm_sweep": bench_gemm(sizes), "digits": bench_digits()}


if __name__ == "__main__":
    import json
    import sys

    res = measure("--quick" in sys.argv)
    print(json.dumps({k: len(v) for k, v in res.items()}))
    print(plots(res))
