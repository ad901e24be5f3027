"""DMA throughput benchmark (not a test): bytes per cycle against the AXI bus width.

Runs the ``test_throughput`` case of the DMA bench (:mod:`ncore.verif.dma_tb`) on the
generated Verilog with an always-ready cocotbext-axi ``AxiRam`` and prints, per transfer
shape, the bytes moved, the cycles from descriptor acceptance to completion, bytes per
cycle, the fraction of the bus, and the golden cost model's streaming bound
(the busiest of data beats, SBUF chunks and the outstanding-burst window; see
:func:`ncore.golden.dma.cost`).

Usage::

    python -m ncore.scripts.bench_dma [--sim verilator] [--bytes 32768] [--rows 8] …
    python -m ncore.scripts.bench_dma --json        # machine-readable

Every transfer is also checked against the golden model byte for byte, so a fast wrong
answer fails the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..params import NCoreParams, ParamError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_dma", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    ap.add_argument("--bytes", type=int, default=32768, help="contiguous transfer size")
    ap.add_argument("--rows", type=int, default=8, help="SBUF partitions")
    ap.add_argument("--sbuf-depth", type=int, default=4096, help="entries per partition")
    ap.add_argument("--axi-data-width", type=int, default=128, help="bus width in bits")
    ap.add_argument("--dtypes", default="int8", help="element types built in")
    ap.add_argument("--max-burst", type=int, default=16, help="beats per burst at most")
    ap.add_argument("--max-reads", type=int, default=4, help="read bursts outstanding")
    ap.add_argument("--max-writes", type=int, default=4, help="write bursts outstanding")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    try:
        params = NCoreParams(
            rows=args.rows,
            sbuf_depth=args.sbuf_depth,
            axi_data_width=args.axi_data_width,
            dtypes=args.dtypes,
        )
    except ParamError as e:
        print(f"bench_dma: error: {e}", file=sys.stderr)
        return 2

    from ..verif.runner import run_bench

    options = {
        "max_burst": args.max_burst,
        "max_reads": args.max_reads,
        "max_writes": args.max_writes,
    }
    t0 = time.time()
    # With --json, stdout carries only the JSON: the simulator's log goes to stderr.
    saved = os.dup(1) if args.json else None
    if args.json:
        sys.stdout.flush()
        os.dup2(2, 1)
    try:
        result = run_bench(
            "dma_bench",
            params,
            args.sim,
            test_module="ncore.verif.dma_tb",
            top="dma",
            top_options=options,
            testcase="test_throughput",
            env={"NCORE_SEED": args.seed, "NCORE_BENCH_BYTES": args.bytes},
        )
    finally:
        if saved is not None:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
    wall = time.time() - t0
    summary = result["summary"] or {}
    if result["failed"] or "throughput" not in summary:
        print(f"bench_dma: the throughput bench failed; see {result['build_dir']}", file=sys.stderr)
        return 1
    rows = summary["throughput"]
    bus = summary["bus_bytes"]
    if args.json:
        print(
            json.dumps(
                {"params": params.to_dict() | options, "bus_bytes": bus, **rows},
                indent=2,
                default=list,
            )
        )
        return 0
    print(
        f"DMA throughput — {params.rows} partitions, {params.axi_data_width}-bit AXI "
        f"({bus} B/beat), max_burst {args.max_burst}, {args.max_reads} reads / "
        f"{args.max_writes} writes outstanding, always-ready AxiRam, {args.sim}"
    )
    print(f"{'transfer':<20} {'bytes':>7} {'cycles':>7} {'B/cycle':>8} {'bus':>6} {'model':>7}")
    order = [
        "contiguous",
        "unaligned",
        "256 B runs",
        "64 B runs",
        "16 B runs",
        "transposed",
        "gather",
    ]
    rank = {n: next((i for i, k in enumerate(order) if k in n), len(order)) for n in rows}
    for name, r in sorted(rows.items(), key=lambda kv: (rank[kv[0]], kv[0])):
        print(
            f"{name:<20} {r['bytes']:>7} {r['cycles']:>7} {r['bytes_per_cycle']:>8.2f} "
            f"{100 * r['bus_fraction']:>5.1f}% {r['model_stream_cycles']:>7}"
        )
    print(
        "(model: golden.dma.cost streaming bound, max(beats, SBUF chunks, outstanding-burst "
        f"window), cycles; every transfer checked against the golden model; {wall:.1f} s wall)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
