"""``ncore``: the project's command-line tool (what the Makefile calls).

Subcommands
    verilog   generate synthesizable Verilog (+ params.json) under build/verilog/
    sim       the flagship demo: the digits CNN on the 4-core chip (or a GEMM on the chip,
              one core or the tensor-engine bench), summarised
    compile   ONNX model → programs, DRAM image layout and a listing
    run       run an ONNX model on the golden model or the RTL (Verilator / Icarus)
    gemm      a quick matrix product on the golden model or the RTL
    lint      ruff on the Python, ``verilator --lint-only -Wall`` on generated Verilog

Bad arguments and bad parameters end with one ``ncore: error: …`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ..compiler.cli import CliError as ModelCliError
from ..hw.generate import BUILD
from ..params import DTYPES, NCoreParams, ParamError

REPO = Path(__file__).resolve().parent.parent

#: Verilator warning classes that Amaranth's generated Verilog raises by construction; every
#: other class (WIDTHTRUNC, LATCH, MULTIDRIVEN, UNOPTFLAT, …) stays on.
LINT_WAIVERS = ["DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    return value


def _add_param_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("generator parameters (see ncore/params.py)")
    g.add_argument("--cores", type=_positive_int, help="NeuronCores per chip (default 4)")
    g.add_argument("--rows", type=_positive_int, help="PE-array rows = SBUF partitions (8)")
    g.add_argument("--cols", type=_positive_int, help="PE-array columns = PSUM partitions (8)")
    g.add_argument(
        "--dtypes",
        help=f"comma-separated element types to build, from {','.join(DTYPES)} (default int8)",
    )
    g.add_argument("--sbuf-depth", type=_positive_int, help="entries per SBUF partition")
    g.add_argument("--psum-depth", type=_positive_int, help="entries per PSUM partition")
    g.add_argument("--axi-data-width", type=_positive_int, help="DRAM bus width in bits")
    g.add_argument("--axi-addr-width", type=_positive_int, help="DRAM address width in bits")


def params_from_args(args) -> NCoreParams:
    fields = (
        "cores",
        "rows",
        "cols",
        "dtypes",
        "sbuf_depth",
        "psum_depth",
        "axi_data_width",
        "axi_addr_width",
    )
    given = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return NCoreParams(**given)


def cmd_verilog(args) -> int:
    from ..hw.generate import TOPS, generate

    if args.top not in TOPS:
        raise CliError(f"unknown top {args.top!r}; choose from {', '.join(sorted(TOPS))}")
    params = params_from_args(args)
    t0 = time.time()
    vfile = generate(params, args.top, args.output)
    size = vfile.stat().st_size
    shown = vfile.relative_to(Path.cwd()) if vfile.is_relative_to(Path.cwd()) else vfile
    print(
        f"ncore: wrote {shown} ({size / 1e6:.1f} MB, {time.time() - t0:.1f} s)"
        " and params.json beside it"
    )
    return 0


def cmd_sim(args) -> int:
    if args.block == "digits":
        from ..compiler.cli import cmd_demo

        params = params_from_args(args)
        if args.dtype not in params.dtypes:
            raise CliError(f"dtype {args.dtype} is not built into this design (dtypes: "
                           f"{','.join(params.dtypes)}); add it with DTYPES=")  # fmt: skip
        return cmd_demo(args)
    if args.block == "chip":
        return _sim_chip(args)
    if args.block == "core":
        return _sim_core(args)
    return _sim_tensor_engine(args)


def _sim_chip(args) -> int:
    """An INT8 GEMM split data-parallel over every core of the chip."""
    from .bench_chip import bench_data_parallel

    params = params_from_args(args)
    if args.dtype not in params.dtypes:
        raise CliError(
            f"dtype {args.dtype} is not built into this design (dtypes: "
            f"{','.join(params.dtypes)}); add it with DTYPES="
        )
    if args.dtype != "int8":
        raise CliError("--block chip runs an int8 GEMM; use --block core for fp16/bf16")
    m, k, n = args.gemm
    if k % params.rows or k // params.rows < 2:
        raise CliError(f"K = {k} must be a multiple of rows = {params.rows}, at least two tiles")
    log = BUILD / "sim" / "ncore-sim.log"
    print(f"ncore sim — chip of {params.cores} NeuronCores {params.rows}×{params.cols} on "
          f"{args.sim}: int8 GEMM {m}×{k}×{n} from DRAM to DRAM, rows split over the cores; "
          f"simulator log: {log}", flush=True)  # fmt: skip
    t0 = time.time()
    try:
        r = bench_data_parallel(
            m, k, n, params, sim=args.sim, seed=args.seed, log=log, verbose=False
        )
    except SystemExit as e:
        print(f"  {e}")
        print("FAIL")
        return 1
    wall = time.time() - t0
    good = r["bit_exact"] and all(s & 0xF == 0b0101 for s in r["per_core_status"])
    print(f"  {r['cycles']} cycles, aggregate utilisation {100 * r['utilization']:.1f}% "
          f"(M·N·K / (cores·rows·cols) / cycles); per core {min(r['per_core_cycles'])}–"
          f"{max(r['per_core_cycles'])} cycles")  # fmt: skip
    print(f"  {r['instructions']} instructions, {r['dma_bytes']} DRAM bytes moved by the DMA; "
          f"simulated at {r['sim_cycles_per_s']:,} cycles/s "
          f"({wall:.1f} s wall including build)")  # fmt: skip
    print("PASS" if good else "FAIL")
    return 0 if good else 1


def _sim_core(args) -> int:
    """A GEMM from DRAM to DRAM on one NeuronCore, checked against numpy and the ISS."""
    import numpy as np

    from ..golden import cycles
    from ..golden import program as gp
    from ..verif.core_run import case, run_cases

    if args.dtypes is None and args.dtype != "int8":
        args.dtypes = f"int8,{args.dtype}"
    params = params_from_args(args)
    if args.dtype not in params.dtypes:
        raise CliError(f"dtype {args.dtype} is not built into this design; add it with DTYPES=")
    m, k, n = args.gemm
    rng = np.random.default_rng(args.seed)
    if args.dtype == "int8":
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        rq = {"scale": rng.integers(1, 4, n), "shift": np.full(n, 14),
              "bias": rng.integers(-99, 99, n)}  # fmt: skip
        try:
            d = gp.gemm_stationary(params, a, b, **rq)
            schedule = f"A-resident, {d.info['block_rows']}-row blocks"
        except ValueError:
            d = gp.gemm(params, a, b, **rq)
            schedule = "streaming"
    else:
        conv = {"bf16": lambda x: (x.view(np.uint32) >> 16).astype(np.uint16),
                "fp16": lambda x: x.astype(np.float16).view(np.uint16)}[args.dtype]  # fmt: skip
        a = conv(rng.standard_normal((m, k)).astype(np.float32))
        b = conv(rng.standard_normal((k, n)).astype(np.float32))
        d = gp.gemm(params, a, b, dtype=args.dtype, out=args.dtype)
        schedule = "streaming"
    dram_bytes = 1 << max(16, (len(d.dram) - 1).bit_length())
    c = case("gemm", d.dram, d.program_base, len(d.program), sbuf_entries=1, psum_entries=1,
             max_cycles=40 * m * n * k // (params.rows * params.cols) + 100_000)  # fmt: skip
    log = BUILD / "sim" / "ncore-sim.log"
    print(f"ncore sim — NeuronCore {params.rows}×{params.cols} ({','.join(params.dtypes)}) on "
          f"{args.sim}: {args.dtype} GEMM {m}×{k}×{n} from DRAM to DRAM, {len(d.program)} "
          f"instructions ({schedule}); simulator log: {log}", flush=True)  # fmt: skip
    t0 = time.time()
    hw = run_cases(params, args.sim, [c], dram_bytes=dram_bytes, seed=args.seed, log=log)[0]
    wall = time.time() - t0
    status = hw["status"]
    ok = status & 0xF == 0b0101
    got = d.outputs(hw["dram"])["C"]
    exact = bool(np.array_equal(got, d.expected["C"]))
    cyc = hw["counters"]["cycles"]
    model = cycles.predict(params, d.program.words).total
    util = m * n * k / (params.rows * params.cols) / cyc
    cnt = hw["counters"]
    print(f"  status {status:#x} ({'done' if ok else 'ERROR'}), result "
          f"{'bit-exact against numpy' if exact else 'DIFFERS from numpy'}")  # fmt: skip
    print(f"  {cyc} cycles, array utilisation {100 * util:.1f}% "
          f"(M·N·K / (rows·cols) / cycles); cycle model {model} "
          f"({100 * (model - cyc) / cyc:+.2f}%)")  # fmt: skip
    print(f"  busy cycles: DMA {cnt['dma_busy']}, tensor {cnt['tensor_busy']}, vector "
          f"{cnt['vector_busy']}; DMA read {cnt['dma_bytes_read']} B, wrote "
          f"{cnt['dma_bytes_written']} B; {cnt['macs']} MACs, "
          f"{cnt['retired']} instructions")  # fmt: skip
    print(f"  simulated at {hw['wall_cycles'] / hw['run_s']:,.0f} cycles/s "
          f"({wall:.1f} s wall including build)")  # fmt: skip
    good = ok and exact
    print("PASS" if good else "FAIL")
    return 0 if good else 1


def _sim_tensor_engine(args) -> int:
    from ..verif.runner import run_bench

    if args.dtypes is None and args.dtype != "int8":
        args.dtypes = f"int8,{args.dtype}"  # build what the run needs
    params = params_from_args(args)
    if args.dtype not in params.dtypes:
        raise CliError(
            f"dtype {args.dtype} is not built into this design (dtypes: "
            f"{','.join(params.dtypes)}); add it with DTYPES="
        )
    env = {
        "NCORE_SEED": args.seed,
        "NCORE_TILES": args.tiles,
        "NCORE_MAX_M": args.max_m,
        "NCORE_RATE_M": args.m,
    }
    t0 = time.time()
    result = run_bench(
        "tensor_engine",
        params,
        args.sim,
        waves=args.waves,
        test_module="ncore.verif.tensor_engine_tb",
        env=env,
    )
    wall = time.time() - t0
    s = result["summary"] or {}
    ok = result["failed"] == 0 and result["total"] > 0
    print()
    print(
        f"ncore sim — tensor engine {params.rows}×{params.cols} {args.dtype} on {args.sim}, "
        f"seed {args.seed}"
    )
    if s:
        print(
            f"  MATMUL of {s['matmul_rows']} rows: {s['matmul_cycles']} cycles, "
            f"{s['rows_per_cycle']:.2f} rows/cycle, latency {s['latency']} cycles"
        )
        print(
            f"  {len(s['sequence_rows'])} double-buffered LOADW+MATMUL pairs "
            f"({sum(s['sequence_rows'])} rows): {s['sequence_cycles']} cycles"
        )
    print(
        f"  {result['total'] - result['failed']}/{result['total']} bench tests passed, "
        f"every result bit-exact against the golden model ({wall:.1f} s wall)"
    )
    if args.waves:
        waves = sorted(Path(result["build_dir"]).glob("*.fst")) + sorted(
            Path(result["build_dir"]).glob("*.vcd")
        )
        for w in waves:
            print(f"  waveform: {w}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def cmd_lint(args) -> int:
    from ..hw.generate import generate
    from ..verif.runner import setup_environment

    status = 0
    if not args.verilog_only:
        for cmd in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
            print("ncore lint:", " ".join(cmd), flush=True)
            status |= subprocess.call([sys.executable, "-m", *cmd], cwd=REPO)
    params = params_from_args(args)
    setup_environment()
    vfile = generate(params, args.top)
    cmd = [
        "verilator",
        "--lint-only",
        "-Wall",
        *[f"-Wno-{w}" for w in LINT_WAIVERS],
        "--top-module",
        args.top,
        str(vfile),
    ]
    print("ncore lint:", " ".join(cmd), flush=True)
    status |= subprocess.call(cmd)
    print("ncore lint:", "clean" if status == 0 else "FAILED")
    return 1 if status else 0


def _add_model_parsers(sub) -> None:
    from ..compiler import cli

    def common(p, backend=True):
        if backend:
            p.add_argument("--backend", choices=["golden", "verilator", "icarus"],
                           default="golden", help="golden model (default; cycles from the cycle"
                           " model) or the RTL chip, whose results are checked against the "
                           "golden model bit for bit")  # fmt: skip
        p.add_argument("--cores-used", "-c", dest="cores_used", type=_positive_int, default=None,
                       help="cores to run on (default: every core of the chip)")  # fmt: skip
        p.add_argument("--mode", choices=["data", "pipeline", "auto"], default="data",
                       help="data: split images over the cores; pipeline: a group of layers "
                       "per core, micro-batches in lock-step; auto: the faster by the cycle "
                       "model (default data)")  # fmt: skip
        _add_param_options(p)

    p = sub.add_parser("compile", help="ONNX model → programs, DRAM layout and a listing",
                       description="Compile an ONNX model for the chip: writes layout.json (DRAM"
                       " regions, inputs, outputs, programs), listing.txt (human-readable), "
                       "dram.npy (initial DRAM image) and core<N>.bin (programs).")  # fmt: skip
    p.add_argument("model", type=Path, help="the .onnx file")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument(
        "--dtype",
        choices=["bf16", "fp16"],
        default="bf16",
        help="element type of float layers (FP32 models are cast; default bf16)",
    )
    p.add_argument(
        "--shape",
        action="append",
        metavar="NAME=D0xD1x…",
        help="concrete shape of an input with symbolic dimensions (default 1)",
    )
    common(p, backend=False)
    p.set_defaults(func=cli.cmd_compile)

    p = sub.add_parser("run", help="run an ONNX model on the golden model or the RTL",
                       description="Run an ONNX model: inputs from an .npz (keys = graph input "
                       "names), outputs to an .npz (keys = graph output names), optional JSON "
                       "report (cycles, macs, utilization, layers, counters).")  # fmt: skip
    p.add_argument("model", type=Path, help="the .onnx file")
    p.add_argument("--inputs", type=Path, required=True, help="input .npz")
    p.add_argument("--outputs", type=Path, required=True, help="output .npz to write")
    p.add_argument("--report", type=Path, help="JSON report to write")
    p.add_argument(
        "--dtype",
        choices=["bf16", "fp16"],
        default="bf16",
        help="element type of float layers (default bf16)",
    )
    p.add_argument("--shape", action="append", metavar="NAME=D0xD1x…", help=argparse.SUPPRESS)
    common(p)
    p.set_defaults(func=cli.cmd_run)

    p = sub.add_parser("gemm", help="a quick matrix product", description="Multiply a random "
                       "M×K matrix by a random K×N weight matrix on the chip and compare with "
                       "ONNX's reference implementation.")  # fmt: skip
    p.add_argument("--m", type=_positive_int, default=64, help="rows of A (64)")
    p.add_argument("--k", type=_positive_int, default=64, help="columns of A (64)")
    p.add_argument("--n", type=_positive_int, default=64, help="columns of the result (64)")
    p.add_argument(
        "--dtype",
        choices=["int8", "fp16", "bf16"],
        default="int8",
        help="element type (default int8)",
    )
    p.add_argument("--seed", type=_positive_int, default=1, help="random seed (1)")
    common(p)
    p.set_defaults(func=cli.cmd_gemm)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ncore", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "verilog",
        help="generate Verilog under build/verilog/",
        description="Generate synthesizable Verilog and a params.json beside it.",
    )
    p.add_argument("--top", default="tensor_engine", help="design to generate (tensor_engine)")
    p.add_argument(
        "-o", "--output", type=Path, help="output folder (default build/verilog/<top>-<shape>)"
    )
    _add_param_options(p)
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser(
        "sim",
        help="the digits CNN on the chip (or a GEMM on the chip, a core, the tensor engine)",
        description="Simulate generated Verilog with cocotb and print a summary. --block chip"
        " (default) runs an int8 GEMM from DRAM to DRAM split over every core of the chip;"
        " --block core runs one on a single NeuronCore (any dtype); both check the result"
        " against numpy. --block tensor_engine runs the tensor-engine bench.",
    )
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    p.add_argument(
        "--block",
        choices=["digits", "chip", "core", "tensor_engine"],
        default="digits",
        help="what to simulate (default digits: the int8 digits CNN on every core; chip: an "
        "int8 GEMM split over every core)",
    )
    p.add_argument(
        "--images", type=_positive_int, default=450, help="held-out images for --block digits"
    )
    p.add_argument(
        "--mode",
        choices=["data", "pipeline", "auto"],
        default="data",
        help="how --block digits splits the CNN over the cores (default data)",
    )
    p.add_argument(
        "--gemm",
        type=_positive_int,
        nargs=3,
        metavar=("M", "K", "N"),
        default=(256, 256, 256),
        help="GEMM shape for --block chip/core (default 256 256 256)",
    )
    p.add_argument(
        "--dtype",
        choices=list(DTYPES),
        default="int8",
        help="element type of the MATMULs (default int8)",
    )
    p.add_argument("--seed", type=_positive_int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--m",
        type=_positive_int,
        default=256,
        help="rows of the rate-measuring MATMUL (default 256)",
    )
    p.add_argument("--tiles", type=_positive_int, default=8, help="LOADW/MATMUL pairs (8)")
    p.add_argument(
        "--max-m", type=_positive_int, default=64, help="largest MATMUL in the random tests (64)"
    )
    p.add_argument(
        "--waves", action="store_true", help="write an FST waveform (tensor_engine only)"
    )
    _add_param_options(p)
    p.set_defaults(func=cmd_sim)

    _add_model_parsers(sub)

    p = sub.add_parser("lint", help="ruff + verilator --lint-only -Wall on generated Verilog")
    p.add_argument("--top", default="tensor_engine")
    p.add_argument("--verilog-only", action="store_true", help="skip ruff")
    _add_param_options(p)
    p.set_defaults(func=cmd_lint)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        for name in ("seed", "m", "k", "n", "tiles", "max_m", "images", "cores_used"):
            if getattr(args, name, 1) is not None and getattr(args, name, 1) < 1:
                raise CliError(f"--{name.replace('_', '-')} must be ≥ 1")
        return args.func(args)
    except (CliError, ParamError, ModelCliError) as e:
        print(f"ncore: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ncore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
