"""The model commands of the ``ncore`` tool: ``compile``, ``run``, ``gemm`` and the ``demo``
that ``make sim`` runs (the digits CNN on the 4-core chip).

Each ``cmd_*`` takes the parsed arguments (see ``ncore.scripts.ncore.build_parser``) and
returns an exit status; user errors raise :class:`CliError` (one ``ncore: error:`` line).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .. import isa
from ..params import NCoreParams
from .codegen import Compiled, compile_net
from .ir import MatLayer, Unsupported
from .runtime import TOLERANCE, run

__all__ = ["CliError", "cmd_compile", "cmd_demo", "cmd_gemm", "cmd_run"]


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


# -- shared helpers --------------------------------------------------------------------------------


def _params(args, dtype: str | None) -> NCoreParams:
    from ..scripts.ncore import params_from_args

    p = params_from_args(args)
    if dtype is not None and dtype not in p.dtypes and args.dtypes is None:
        # float models need an FP datapath: build one unless the user chose the dtypes
        p = NCoreParams(**{**_fields(p), "dtypes": tuple(p.dtypes) + (dtype,)})
    return p


def _fields(p: NCoreParams) -> dict:
    return {k: getattr(p, k) for k in ("cores", "rows", "cols", "dtypes", "sbuf_depth",
                                        "psum_depth", "axi_data_width", "axi_addr_width",
                                        "semaphores", "queue_depth")}  # fmt: skip


def _load_model(path: Path, dtype: str, shapes: dict):
    import onnx

    from .onnx_import import import_model

    if not path.exists():
        raise CliError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        raise CliError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    try:
        return import_model(model, dtype=dtype, shapes=shapes)
    except Unsupported as e:
        raise CliError(str(e)) from None


def _needs_float(net) -> bool:
    return any((isinstance(layer, MatLayer) and layer.dtype != "int8")
               or getattr(layer, "in_type", "int8") != "int8" for layer in net.layers)  # fmt: skip


def _compile(net, p, mode, cores) -> Compiled:
    try:
        return compile_net(p, net, mode=mode, cores=cores)
    except Unsupported as e:
        raise CliError(str(e)) from None
    except ValueError as e:
        raise CliError(str(e)) from None


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, or ``force``)."""

    def __init__(self, label: str, force: bool = False):
        self.label, self.t0 = label, time.time()
        self.on = force or sys.stderr.isatty()
        self.last = -1.0

    def __call__(self, done: float, total: float):
        if not self.on or total <= 0:
            return
        frac = min(1.0, done / total)
        if frac - self.last < 0.01 and frac < 1.0:
            return
        self.last = frac
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}%  "
                         f"{time.time() - self.t0:6.1f} s")  # fmt: skip
        if frac >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()


def layer_table(report: dict) -> str:
    lines = [f"{'layer':<12} {'ops':<28} {'output N×C×H×W':<18} {'MACs':>10} {'cycles':>9} "
             f"{'util':>6}"]  # fmt: skip
    peak = report["cores"] * report["array"][0] * report["array"][1]
    for lay in report["layers"]:
        util = lay["macs"] / (peak * lay["cycles"]) if lay["cycles"] else 0.0
        shape = "×".join(map(str, lay["output"]))
        lines.append(f"{lay['name']:<12} {lay['ops'][:28]:<28} {shape:<18} {lay['macs']:>10,} "
                     f"{lay['cycles']:>9,} {100 * util:5.1f}%")  # fmt: skip
    return "\n".join(lines)


# -- compile ---------------------------------------------------------------------------------------


def listing(c: Compiled) -> str:
    """A human-readable listing: the DRAM layout, then every core's program."""
    out = [f"# ncore program listing — mode {c.mode}, {c.params.cores} cores of "
           f"{c.params.rows}×{c.params.cols}, dtypes {','.join(c.params.dtypes)}", "",
           "## DRAM layout", "", "| region | address | bytes |", "|---|---|---|"]  # fmt: skip
    for name, (addr, size) in sorted(c.layout.items(), key=lambda kv: kv[1][0]):
        out.append(f"| {name} | {addr:#010x} | {size} |")
    out += ["", "## Layers", ""]
    for layer in c.net.layers:
        out.append(f"- {layer.name}: {layer.ops} ({type(layer).__name__}, "
                   f"{layer.x.name} → {layer.y.name}, {layer.macs:,} MACs)")  # fmt: skip
    for core, prog in enumerate(c.programs):
        out += ["", f"## core {core}", ""]
        if prog is None:
            out.append("(idle)")
            continue
        marks = {a: name for name, a, b in c.spans[core] if b > a}
        for i, w in enumerate(prog):
            if i in marks:
                out.append(f"; -- layer {marks[i]}")
            out.append(f"{i:5d}  {_disasm(w)}")
    return "\n".join(out) + "\n"


def _disasm(word: int) -> str:
    op, f = isa.decode(word)
    head = ""
    if f["wait_en"]:
        head += f" wait={f['wait_sem']}"
    if f["signal_en"]:
        head += f" signal={f['signal_sem']}"

    def ap(a):
        dims = ",".join(f"{d['count']}:{d['stride']}" for d in a["dims"] if d["count"] != 1)
        return f"{a['start']}[{dims}]"

    if op == isa.Op.DMA:
        d = f["desc"]
        kind = {0: "load", 1: "store", 2: "psum_store"}.get(d["direction"], "?")
        body = f"{kind} dram={d['dram']['start']:#x}[{','.join(str(x['count']) + ':' + str(x['stride']) for x in d['dram']['dims'] if x['count'] != 1)}] sbuf={d['sbuf']['start']} esize={d['esize']}"  # noqa: E501
    elif op == isa.Op.MATMUL:
        body = f"k={f['k']} n={f['n']} acc={f['accumulate']} mov={ap(f['mov'])} psum={f['psum']['start']}"  # noqa: E501
    elif op == isa.Op.LOADW:
        body = f"start={f['start']} k={f['k']} n={f['n']}"
    elif op == isa.Op.ACT:
        cfg = f["config"]
        body = f"op={cfg['op']} in={cfg['in_type']} out={cfg['out_type']} func={cfg['func']} zp={cfg['zero_point']} n={f['n']} src={'psum' if f['src_psum'] else 'sbuf'}:{ap(f['src'])} dst={f['dst']['start']}"  # noqa: E501
    elif op == isa.Op.BARRIER:
        body = f"mask={f['mask']:#x}"
    else:
        body = ""
    return f"{op.name:<8}{head} {body}".rstrip()


def cmd_compile(args) -> int:
    p = _params(args, args.dtype)
    net = _load_model(args.model, args.dtype, _shapes(args))
    if _needs_float(net) and args.dtype not in p.dtypes:
        raise CliError(f"the model has float layers; this build has {','.join(p.dtypes)} "
                       f"(add {args.dtype} with --dtypes)")  # fmt: skip
    c = _compile(net, p, args.mode, args.cores_used)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "dram.npy", c.dram)
    for core, prog in enumerate(c.programs):
        if prog is not None:
            (out / f"core{core}.bin").write_bytes(isa.to_bytes(prog))
    layout = {
        "params": json.loads(p.to_json()) if hasattr(p, "to_json") else _fields(p),
        "mode": c.mode,
        "programs": [None if pl is None else {"base": pl[0], "words": pl[1]} for pl in c.placed],
        "regions": {k: {"addr": a, "bytes": s} for k, (a, s) in c.layout.items()},
        "inputs": {
            k: {"tensor": t and t.name, "addr": t and t.addr, **_jsonable(conv)}
            for k, (t, conv) in net.inputs.items()
        },  # fmt: skip
        "outputs": {
            k: {"tensor": t and t.name, "addr": t and t.addr, **_jsonable(conv)}
            for k, (t, conv) in net.outputs.items()
        },  # fmt: skip
        "predicted_cycles": c.predicted["total"],
        "macs": c.macs,
    }
    (out / "layout.json").write_text(json.dumps(layout, indent=1) + "\n")
    (out / "listing.txt").write_text(listing(c))
    words = sum(len(prog) for prog in c.programs if prog)
    print(f"ncore: compiled {args.model.name}: {len(net.layers)} layers, {c.macs:,} MACs, "
          f"{words} instructions on {sum(1 for q in c.programs if q)} cores ({c.mode}); "
          f"predicted {c.predicted['total']:,} cycles; wrote {out}/"
          "{layout.json,listing.txt,dram.npy,core*.bin}")  # fmt: skip
    return 0


def _jsonable(conv: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in conv.items()}


def _shapes(args) -> dict:
    shapes = {}
    for item in getattr(args, "shape", None) or []:
        try:
            name, dims = item.split("=")
            shapes[name] = tuple(int(d) for d in dims.split("x"))
        except ValueError:
            raise CliError(f"--shape {item!r}: expected NAME=D0xD1x…") from None
    return shapes


# -- run -------------------------------------------------------------------------------------------


def cmd_run(args) -> int:
    if not args.inputs.exists():
        raise CliError(f"{args.inputs}: no such file")
    try:
        feeds = dict(np.load(args.inputs))
    except Exception as e:  # noqa: BLE001
        raise CliError(f"{args.inputs}: not an .npz file ({type(e).__name__})") from None
    shapes = {k: v.shape for k, v in feeds.items()}
    shapes.update(_shapes(args))
    p = _params(args, args.dtype)
    net = _load_model(args.model, args.dtype, shapes)
    if _needs_float(net) and args.dtype not in p.dtypes:
        raise CliError(f"the model has float layers; this build has {','.join(p.dtypes)}")
    c = _compile(net, p, args.mode, args.cores_used)
    bar = Progress(f"ncore run ({args.backend})")
    try:
        res = _run_with_bar(c, feeds, args.backend, bar)
    except ValueError as e:
        raise CliError(str(e)) from None
    args.outputs.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.outputs, **res.outputs)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(res.report, indent=1) + "\n")
    r = res.report
    print(f"ncore: {args.model.name} on {args.backend} ({r['cores']} cores, {r['mode']}): "
          f"{r['cycles']:,} cycles{'' if r['cycles_measured'] else ' (cycle model)'}, "
          f"{r['macs']:,} MACs, utilisation {100 * r['utilization']:.1f}%; outputs "
          f"{', '.join(res.outputs)} → {args.outputs}")  # fmt: skip
    if args.backend != "golden":
        print("ncore: RTL DRAM and counters equal the golden model's (bit for bit)")
    return 0


def _run_with_bar(c, feeds, backend, bar):
    """Run, drawing ``bar`` from the bench's progress file meanwhile."""
    if backend == "golden":
        return run(c, feeds, backend=backend)
    import os
    import tempfile

    total = c.predicted["total"]
    with tempfile.NamedTemporaryFile("w+", suffix=".progress", delete=False) as f:
        path = f.name
    os.environ["NCORE_PROGRESS"] = path
    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            try:
                text = Path(path).read_text().split()
                if text:
                    bar(int(text[-1]), total)
            except (OSError, ValueError):
                pass

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        from ..hw.generate import BUILD

        res = run(c, feeds, backend=backend, log=BUILD / "sim" / "ncore-run.log")
    finally:
        stop.set()
        th.join()
        os.environ.pop("NCORE_PROGRESS", None)
        Path(path).unlink(missing_ok=True)
    bar(total, total)
    return res


# -- gemm ------------------------------------------------------------------------------------------


def gemm_model(m: int, k: int, n: int, dtype: str):
    """A one-node ONNX model: a QLinearMatMul for int8 (input and weight scales 1/64,
    output scale K/64, zero points 0), or a float MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if dtype == "int8":
        w = rng.integers(-127, 128, (k, n), dtype=np.int8)
        nodes = [helper.make_node("QLinearMatMul", ["a", "sa", "za", "w", "sw", "zw", "sy", "zy"],
                                  ["y"])]  # fmt: skip
        q = (("sa", 1 / 64, np.float32), ("za", 0, np.int8), ("sw", 1 / 64, np.float32),
             ("zw", 0, np.int8), ("sy", float(k) / 64, np.float32), ("zy", 0, np.int8))  # fmt: skip
        inits = [numpy_helper.from_array(w, "w")]
        inits += [numpy_helper.from_array(np.array(v, dt), nm) for nm, v, dt in q]
        ins = [helper.make_tensor_value_info("a", TensorProto.INT8, [m, k])]
        outs = [helper.make_tensor_value_info("y", TensorProto.INT8, [m, n])]
    else:
        w = rng.standard_normal((k, n)).astype(np.float32)
        nodes = [helper.make_node("MatMul", ["a", "w"], ["y"], name="gemm")]
        inits = [numpy_helper.from_array(w, "w")]
        ins = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])]
        outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])]
    g = helper.make_graph(nodes, "gemm", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def cmd_gemm(args) -> int:
    from onnx.reference import ReferenceEvaluator

    from .onnx_import import import_model

    m, k, n = args.m, args.k, args.n
    float_t = None if args.dtype == "int8" else args.dtype
    p = _params(args, float_t)
    if args.dtype not in p.dtypes:
        raise CliError(f"dtype {args.dtype} is not built (dtypes {','.join(p.dtypes)})")
    model = gemm_model(m, k, n, args.dtype)
    net = import_model(model, dtype=float_t or "bf16")
    c = _compile(net, p, args.mode, args.cores_used)
    rng = np.random.default_rng(args.seed)
    a = (rng.integers(-127, 128, (m, k), dtype=np.int8) if args.dtype == "int8"
         else rng.standard_normal((m, k)).astype(np.float32))  # fmt: skip
    res = _run_with_bar(c, {"a": a}, args.backend, Progress(f"ncore gemm ({args.backend})"))
    ref = ReferenceEvaluator(model).run(None, {"a": a})[0]
    y = res.outputs["y"]
    if args.dtype == "int8":
        err = int(np.abs(y.astype(np.int64) - ref.astype(np.int64)).max())
        ok = err <= 1
        what = f"max |ncore − onnx reference| = {err} LSB"
    else:
        err = float(np.abs(y - ref).max() / max(1e-30, np.abs(ref).max()))
        ok = err <= TOLERANCE[args.dtype]
        what = f"max error {err:.2e} of max |y| (tolerance {TOLERANCE[args.dtype]:.0e})"
    r = res.report
    print(f"ncore gemm {m}×{k}×{n} {args.dtype} on {args.backend}, {r['cores']} cores: "
          f"{r['cycles']:,} cycles{'' if r['cycles_measured'] else ' (cycle model)'}, "
          f"utilisation {100 * r['utilization']:.1f}%; {what}")  # fmt: skip
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


# -- the make sim demo -----------------------------------------------------------------------------


def cmd_demo(args) -> int:
    import onnxruntime as ort

    from ..scripts import digits
    from .onnx_import import import_model

    p = _params(args, None)
    paths = digits.models()
    _, _, xte, yte = digits.dataset()
    count = min(args.images, len(xte))
    x, y = xte[:count], yte[:count]
    import onnx

    model = onnx.load(str(paths["cnn"]))
    net = import_model(model, shapes={"image": x.shape})
    c = _compile(net, p, args.mode, None)
    print(f"ncore sim — digits CNN (int8 QDQ from onnxruntime) on {p.cores} NeuronCores "
          f"{p.rows}×{p.cols}, {args.sim}: {count} held-out images, {c.mode} mode, "
          f"{sum(len(q) for q in c.programs if q)} instructions", flush=True)  # fmt: skip
    t0 = time.time()
    res = _run_with_bar(c, {"image": x}, args.sim, Progress("  simulating", force=True))
    wall = time.time() - t0
    logits = res.outputs["logits"]
    sess = ort.InferenceSession(str(paths["cnn"]), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"image": x})[0]
    acc, acc_ort = digits.accuracy(logits, y), digits.accuracy(ref, y)
    same = int((np.argmax(logits, 1) == np.argmax(ref, 1)).sum())
    r = res.report
    print(f"  accuracy {100 * acc:.2f}% (onnxruntime on the same int8 model: "
          f"{100 * acc_ort:.2f}%; same prediction on {same}/{count} images)")  # fmt: skip
    print(f"  {r['cycles']:,} cycles, {r['macs']:,} MACs, utilisation "
          f"{100 * r['utilization']:.1f}% of {r['cores']}×{p.rows}×{p.cols} MACs/cycle; "
          f"{r.get('sim_cycles_per_second', 0):,} simulated cycles/s, {wall:.1f} s wall "
          "(including the build)")  # fmt: skip
    print("  RTL DRAM and counters equal the golden model's, bit for bit")
    print(layer_table(r))
    ok = acc == acc_ort or abs(acc - acc_ort) * count <= 1
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1
