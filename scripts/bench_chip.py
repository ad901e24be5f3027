"""Chip benchmarks on Verilator: the 256×256×256 INT8 GEMM split data-parallel over the
cores (each core computes a quarter of the rows of C with the A-resident schedule, on its
own DRAM region; all share the one AXI bus), and a 4-layer int8 MLP pipelined over the cores
(weights resident, activations over the links) against the same MLP run layer by layer
through DRAM on one core (cycles and DRAM bytes of both).

Aggregate utilisation = M·N·K / (cores·rows·cols) / cycles, cycles from the first START
to the last core's IRQ. Every core's result is compared with numpy.

Usage: ``python -m ncore.scripts.bench_chip [--m M --k K --n N]``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..golden import cycles
from ..golden import program as gp
from ..hw.generate import BUILD
from ..params import NCoreParams

LOG = BUILD / "bench" / "chip_sim.log"


def gemm_case(p: NCoreParams, m=256, k=256, n=256, seed=3):
    """The data-parallel GEMM as a chip case: ``(case, parts, dram_bytes)`` with ``parts``
    one ``(row lo, row hi, gp.gemm_stationary design)`` per core."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    rq = {"scale": rng.integers(1, 4, n), "shift": np.full(n, 14), "bias": rng.integers(-99, 99, n)}
    rows = -(-m // p.cores)
    region = 0
    parts = []
    for c in range(p.cores):
        lo, hi = c * rows, min(m, (c + 1) * rows)
        d = gp.gemm_stationary(p, a[lo:hi], b, dram_base=region, **rq)
        parts.append((lo, hi, d))
        region = -(-len(d.dram) // 4096) * 4096
    image = np.zeros(region, np.uint8)
    for _, _, d in parts:
        base = d.layout["A"].addr
        image[base : len(d.dram)] = d.dram[base:]
    programs = [(d.program_base, len(d.program)) for _, _, d in parts]
    dram_bytes = 1 << max(16, (len(image) - 1).bit_length())
    case = {"name": "gemm-data-parallel", "dram": image, "programs": programs}
    return case, parts, dram_bytes


def bench_data_parallel(
    m=256,
    k=256,
    n=256,
    params: NCoreParams | None = None,
    *,
    sim="verilator",
    seed=3,
    log=LOG,
    verbose=True,
) -> dict:
    """Run the data-parallel GEMM on the chip; returns its figures (raises SystemExit on a
    wrong result)."""
    from ..verif.core_run import run_chip_cases

    p = params or NCoreParams()
    case, parts, dram_bytes = gemm_case(p, m, k, n, seed)
    hw = run_chip_cases(p, sim, [case], dram_bytes=dram_bytes, seed=seed, log=log)[0]
    ok = True
    for (_, _, d), core in zip(parts, hw["cores"], strict=True):
        ok &= core["status"] & 0xF == 0b0101
        ok &= bool(np.array_equal(d.outputs(hw["dram"])["C"], d.expected["C"]))
    cycles_hw = hw["wall_cycles"]
    model = cycles.predict_chip(p, [d.program.words for _, _, d in parts])["total"]
    util = m * n * k / (p.cores * p.rows * p.cols) / cycles_hw
    per_core = [c["counters"]["cycles"] for c in hw["cores"]]
    res = {
        "m": m, "k": k, "n": n, "cores": p.cores, "array": f"{p.rows}x{p.cols}",
        "cycles": cycles_hw, "per_core_cycles": per_core, "utilization": round(util, 4),
        "model_cycles": model, "model_error": round((model - cycles_hw) / cycles_hw, 4),
        "bit_exact": bool(ok), "sim_cycles_per_s": round(cycles_hw / hw["run_s"]),
        "per_core_status": [c["status"] for c in hw["cores"]],
        "dma_bytes": sum(c["counters"]["dma_bytes_read"] + c["counters"]["dma_bytes_written"]
                         for c in hw["cores"]),
        "instructions": sum(len(d.program) for _, _, d in parts),
    }  # fmt: skip
    if not ok:
        raise SystemExit("bench: the data-parallel GEMM result differs from numpy")
    if not verbose:
        return res
    print(
        f"chip GEMM {m}×{k}×{n} int8 data-parallel on {p.cores} cores of {p.rows}×{p.cols}: "
        f"{cycles_hw} cycles, aggregate utilisation {100 * util:.1f}% "
        f"(cores {min(per_core)}–{max(per_core)} cycles; chip cycle model {model}, "
        f"{100 * res['model_error']:+.1f}%), "
        f"{'bit-exact' if ok else 'MISMATCH'}; simulated at {res['sim_cycles_per_s']} cycles/s",
        flush=True,
    )
    if not ok:
        raise SystemExit("bench: the data-parallel GEMM result differs from numpy")
    return res


def _mlp_layers(rng, feats):
    layers = []
    for fi, fo in zip(feats[:-1], feats[1:], strict=True):
        std = 60 * 74 * np.sqrt(fi)
        scale = np.maximum(1, (40 * 2**16 / std) * rng.uniform(0.5, 1.5, fo)).astype(np.int64)
        layers.append({"w": rng.integers(-128, 128, (fi, fo), dtype=np.int8), "scale": scale,
                       "shift": np.full(fo, 16), "bias": rng.integers(-500, 500, fo)})  # fmt: skip
    return layers


def bench_mlp(batch=256, feats=(8, 8, 8, 8, 8), params: NCoreParams | None = None,
              *, sim="verilator", log=LOG) -> dict:  # fmt: skip
    """A 4-layer int8 MLP: pipelined over the cores (weights resident, activations over the
    links) against the same MLP layer by layer through DRAM on one core."""
    from ..verif.core_run import run_chip_cases

    p = params or NCoreParams()
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (batch, feats[0]), dtype=np.int8)
    layers = _mlp_layers(rng, feats)
    pipe = gp.mlp_pipeline(p, x, layers)
    lw = gp.mlp_layerwise(p, x, layers)
    lw_progs = [(lw.program_base, len(lw.program))] + [None] * (p.cores - 1)
    cases = [
        {"name": "pipeline", "dram": pipe.dram, "programs": pipe.placed},
        {"name": "layerwise", "dram": lw.dram, "programs": lw_progs},
    ]
    dram_bytes = 1 << max(16, (max(len(pipe.dram), len(lw.dram)) - 1).bit_length())
    hw = run_chip_cases(p, sim, cases, dram_bytes=dram_bytes, log=log)
    out = {}
    for (name, d), h in zip((("pipeline", pipe), ("layerwise", lw)), hw, strict=True):
        cores = [c for c in h["cores"] if c is not None]
        ok = all(c["status"] & 0xF == 0b0101 for c in cores)
        ok &= bool(np.array_equal(d.outputs(h["dram"])["out"], d.expected["out"]))
        dma = sum(c["counters"]["dma_bytes_read"] + c["counters"]["dma_bytes_written"]
                  for c in cores)  # fmt: skip
        link = sum(c["counters"]["link_rows_sent"] for c in cores)
        programs = [prog for prog in (d.programs if name == "pipeline" else
                                      [d.program.words] + [None] * (p.cores - 1))]  # fmt: skip
        model = cycles.predict_chip(p, programs)["total"]
        cyc = h["wall_cycles"]
        out[name] = {"cycles": cyc, "dram_bytes": dma, "link_rows": link,
                     "cores": len(cores), "bit_exact": ok, "model_cycles": model,
                     "model_error": round((model - cyc) / cyc, 4)}  # fmt: skip
        if not ok:
            raise SystemExit(f"bench: the {name} MLP result differs from numpy")
    a, b = out["pipeline"], out["layerwise"]
    print(
        f"MLP {'→'.join(map(str, feats))}, batch {batch}: pipeline over {a['cores']} cores "
        f"{a['cycles']} cycles, {a['dram_bytes']} DRAM bytes ({a['link_rows']} rows over the "
        f"links); layer by layer through DRAM on one core {b['cycles']} cycles, "
        f"{b['dram_bytes']} DRAM bytes; both bit-exact; chip cycle model "
        f"{100 * a['model_error']:+.1f}% / {100 * b['model_error']:+.1f}%",
        flush=True,
    )
    return {"batch": batch, "features": list(feats), **out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-bench-chip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--n", type=int, default=256)
    args = ap.parse_args(argv)
    bench_data_parallel(args.m, args.k, args.n)
    bench_mlp()
    return 0


if __name__ == "__main__":
    sys.exit(main())
