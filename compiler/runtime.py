"""Runtime: run a compiled model on the golden model or the RTL and report what happened.

:func:`run` converts the inputs at the chip boundary (quantise / cast to bf16 or fp16, NCHW →
blocked layout), runs the programs on the golden chip model (always: it is the oracle) and,
for ``backend="verilator"`` or ``"icarus"``, on the RTL chip as well, checks that the RTL's
final DRAM and counters equal the golden model's bit for bit, and converts the outputs back.
The report holds ``cycles`` (RTL: measured; golden: the cycle model), ``macs``,
``utilization``, per-layer cycles and MACs (``layers``; per-layer cycles come from the cycle
model, scaled to the measured total) and the hardware ``counters`` of every core.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np

from ..golden.chip import Chip
from .codegen import Compiled
from .ir import Tensor

__all__ = ["BackendMismatch", "RunResult", "from_chip", "run", "run_many", "to_chip"]

#: Relative error (of the largest output) the float paths are held to against the fp32 ONNX
#: reference: inputs and weights rounded to the format (2^-9 / 2^-12 relative each), fp32
#: accumulation, output rounded once; 4x margin for cancellation in the sums.
TOLERANCE = {"bf16": 2.0**-6, "fp16": 2.0**-9}

BACKENDS = ("golden", "verilator", "icarus", "verilator-cocotb")


class BackendMismatch(AssertionError):
    """The RTL's results differ from the golden model's."""


def _layout_in(a: np.ndarray, view: str) -> np.ndarray:
    """ONNX layout → N×H×W×C."""
    if view == "nchw":
        return np.transpose(a, (0, 2, 3, 1))
    if view == "3d":
        b, m, f = a.shape
        return a.reshape(b * m, 1, 1, f)
    return a.reshape(a.shape[0], 1, 1, -1)


def _layout_out(a: np.ndarray, conv: dict) -> np.ndarray:
    view, shape = conv["view"], tuple(conv["shape"])
    if view == "nchw":
        return np.transpose(a, (0, 3, 1, 2)).reshape(shape)
    if view == "flat":
        return np.transpose(a, (0, 3, 1, 2)).reshape(shape)
    return a.reshape(shape)


def host_ops(value, hops):
    """Layout operations the host applies at the boundary (reshape, transpose)."""
    for what, arg in hops:
        value = value.reshape(arg) if what == "reshape" else np.transpose(value, arg)
    return value


def _float_bits(a, etype):
    a = np.asarray(a, np.float32)
    if etype == "bf16":
        return a.astype(ml_dtypes.bfloat16).view(np.uint16)
    return a.astype(np.float16).view(np.uint16)


def _bits_float(raw, etype):
    raw = np.asarray(raw, np.uint16)
    if etype == "bf16":
        return raw.view(ml_dtypes.bfloat16).astype(np.float32)
    return raw.view(np.float16).astype(np.float32)


def quantize(x, scale, zp, dtype):
    """ONNX QuantizeLinear: ``sat(round_half_even(x / scale) + zp)``."""
    lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zp
    return np.clip(q, lo, hi).astype(dtype)


def to_chip(t: Tensor, conv: dict, value: np.ndarray) -> np.ndarray:
    """A graph input (ONNX layout and type) → the raw N×H×W×C values the chip stores."""
    value = np.asarray(value)
    if tuple(value.shape) != tuple(conv["shape"]):
        raise ValueError(f"input of shape {value.shape}, the model was compiled for "
                         f"{tuple(conv['shape'])}")  # fmt: skip
    kind = conv["kind"]
    value = host_ops(value, conv.get("hops", ()))
    if kind == "float":
        raw = _float_bits(value, t.etype)
    elif kind == "quantize":
        raw = quantize(value, conv["scale"], conv["zp"], conv["dtype"]).astype(np.int64)
        raw = raw - (128 if conv["dtype"] == "uint8" else 0)
    else:
        if value.dtype.name != conv["dtype"]:
            raise ValueError(f"input of type {value.dtype.name}, expected {conv['dtype']}")
        raw = value.astype(np.int64) - (128 if conv["dtype"] == "uint8" else 0)
    return _layout_in(raw, conv["view"]).astype(t.raw_dtype())


def from_chip(t: Tensor, conv: dict, image: np.ndarray) -> np.ndarray:
    """A graph output read from DRAM, converted to its ONNX layout and type."""
    raw = t.unpack(image)
    kind = conv["kind"]
    if kind == "float":
        v = _bits_float(raw, t.etype)
    elif kind in ("int", "dequant"):
        q = raw.astype(np.int64) + (128 if conv.get("dtype") == "uint8" else 0)
        if kind == "int":
            v = q.astype(conv["dtype"])
        else:
            v = ((q - conv["zp"]).astype(np.float32) * np.float32(conv["scale"])).astype(np.float32)
    else:  # int32
        v = raw
    return _layout_out(v, conv)


@dataclass
class RunResult:
    outputs: dict
    report: dict
    dram: np.ndarray = field(repr=False, default=None)


def _check_results(results, where):
    for c, r in enumerate(results):
        if r is not None and not r.ok:
            raise RuntimeError(f"{where}: core {c} stopped with {r.error.name} at instruction "
                               f"{r.index}")  # fmt: skip


def _prepare(compiled: Compiled, feeds: dict) -> dict:
    """Inputs into the DRAM image, then the golden run (the oracle of every backend)."""
    net = compiled.net
    missing = set(net.inputs) - set(feeds)
    if missing:
        raise ValueError(f"missing inputs: {', '.join(sorted(missing))}")
    extra = set(feeds) - set(net.inputs)
    if extra:
        raise ValueError(f"unknown inputs: {', '.join(sorted(extra))} (the model takes "
                         f"{', '.join(net.inputs)})")  # fmt: skip
    image = compiled.dram.copy()
    for name, (t, conv) in net.inputs.items():
        if t is not None:
            t.pack(to_chip(t, conv, feeds[name]), image)
    for t, raw in net.consts:
        t.pack(raw, image)
    t0 = time.perf_counter()
    chip = Chip(compiled.params, image.copy())
    results = chip.run(compiled.placed)
    _check_results(results, "golden model")
    return {"image": image, "results": results, "final": chip.dram, "feeds": feeds,
            "placed": compiled.placed,
            "golden_s": time.perf_counter() - t0}  # fmt: skip


def _compare(prep: dict, rtl: dict, backend: str) -> None:
    final = prep["final"]
    dram = np.asarray(rtl["dram"], np.uint8)[: len(final)]
    if not np.array_equal(dram, final):
        bad = np.flatnonzero(dram != final)
        raise BackendMismatch(f"{backend}: DRAM differs from the golden model at "
                              f"{len(bad)} bytes (first at {bad[0]:#x})")  # fmt: skip
    for c, (g, r) in enumerate(zip(prep["results"], rtl["cores"], strict=True)):
        if r is None or prep["placed"][c] is None:  # an idle core
            continue
        if r["status"] & 8:
            code = (r["status"] >> 8) & 0xF
            raise BackendMismatch(f"{backend}: core {c} stopped with error code {code} "
                                  f"at instruction {r['err_index']}")  # fmt: skip
        gold = _golden_counters(g)
        for key in ("macs", "matmul_rows", "act_rows", "dma_bytes_read", "dma_bytes_written",
                    "retired"):  # fmt: skip
            if r["counters"][key] != gold[key]:
                raise BackendMismatch(f"{backend}: core {c} counter {key} = "
                                      f"{r['counters'][key]}, golden {gold[key]}")  # fmt: skip


def _finish(compiled: Compiled, prep: dict, rtl: dict | None, backend: str) -> RunResult:
    net = compiled.net
    final = prep["final"]
    counters = [None if r is None or pl is None else _golden_counters(r)
                for r, pl in zip(prep["results"], compiled.placed, strict=True)]  # fmt: skip
    cycles, measured = compiled.predicted["total"], False
    if rtl is not None:
        _compare(prep, rtl, backend)
        counters = [None if r is None else dict(r["counters"]) for r in rtl["cores"]]
        cycles, measured = int(rtl["wall_cycles"]), True
    outputs = {}
    for name, (t, conv) in net.outputs.items():
        if t is None:  # a rearranged input: the host's work
            outputs[name] = host_ops(np.asarray(prep["feeds"][conv["input"]]), conv["hops"])
        else:
            outputs[name] = from_chip(t, conv, final)
    report = make_report(compiled, cycles, measured, counters, backend)
    report["golden_seconds"] = round(prep["golden_s"], 3)
    if rtl is not None:
        report["sim_seconds"] = round(float(rtl.get("run_s", 0.0)), 3)
        sim_cycles = rtl.get("sim_cycles", cycles)
        if rtl.get("run_s"):
            report["sim_cycles_per_second"] = round(sim_cycles / rtl["run_s"])
        report["simulator"] = rtl.get("simulator", backend)
    return RunResult(outputs, report, final)


def run(compiled: Compiled, feeds: dict, *, backend: str = "golden", progress=None,
        log: str | Path | None = None) -> RunResult:  # fmt: skip
    """Run ``compiled`` on ``feeds`` (ONNX input name → array); see the module docstring."""
    return run_many([(compiled, feeds)], backend=backend, progress=progress, log=log)[0]


def run_many(jobs, *, backend: str = "golden", progress=None, log=None) -> list[RunResult]:
    """Several ``(compiled, feeds)`` for one chip design, in one simulator run on the RTL."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    preps = [_prepare(c, f) for c, f in jobs]
    rtl = [None] * len(jobs)
    if backend != "golden":
        rtl = _run_rtl([c for c, _ in jobs], [pr["image"] for pr in preps], backend, progress,
                       log)  # fmt: skip
    return [_finish(c, pr, r, backend) for (c, _), pr, r in zip(jobs, preps, rtl, strict=True)]


def _golden_counters(r) -> dict:
    s = r.stats
    return {"macs": s.macs, "matmul_rows": s.matmul_rows, "act_rows": s.act_rows,
            "dma_bytes_read": s.dma_bytes_read, "dma_bytes_written": s.dma_bytes_written,
            "sem_waits": s.sem_waits, "sem_signals": s.sem_signals, "send_rows": s.send_rows,
            "recv_rows": s.recv_rows, "barriers": s.barriers,
            "retired": int(sum(s.retired.values()))}  # fmt: skip


def make_report(compiled: Compiled, cycles: int, measured: bool, counters, backend) -> dict:
    p = compiled.params
    used = sum(1 for prog in compiled.programs if prog is not None)
    macs = compiled.macs
    pred = compiled.predicted
    scale = cycles / pred["total"] if pred["total"] else 1.0
    layers = []
    for layer in compiled.net.layers:
        c = pred["layers"].get(layer.name, 0)
        layers.append({"name": layer.name, "ops": layer.ops, "kind": type(layer).__name__,
                       "macs": layer.macs, "cycles": round(c * scale),
                       "output": [layer.y.n, layer.y.c, layer.y.h, layer.y.w]})  # fmt: skip
    peak = used * p.rows * p.cols
    return {
        "backend": backend,
        "cycles": int(cycles),
        "cycles_measured": measured,
        "cycles_predicted": int(pred["total"]),
        "macs": int(macs),
        "utilization": round(macs / (peak * cycles), 4) if cycles else 0.0,
        "cores": used,
        "mode": compiled.mode,
        "array": [p.rows, p.cols],
        "layers": layers,
        "counters": counters,
        "plan": {k: v for k, v in pred.items() if k not in ("total", "layers")},
    }


def _run_rtl(compiled: list, images: list, backend, progress, log) -> list[dict]:
    """The RTL chip on each image: Verilator through the cocotb-free fast path
    (:mod:`ncore.verif.fastsim`), Icarus (or ``backend="verilator-cocotb"``) through the
    cocotb chip bench."""
    params = compiled[0].params
    if any(c.params != params for c in compiled):
        raise ValueError("a batch of runs must share one chip design")
    size = 1 << max(16, (max(len(im) for im in images) - 1).bit_length())
    cases = []
    for i, (c, im) in enumerate(zip(compiled, images, strict=True)):
        cases.append({"name": f"model{i}", "dram": im, "programs": c.placed,
                      "dram_bytes": len(im), "max_cycles": 50_000_000})  # fmt: skip
    total = sum(c.predicted["total"] for c in compiled)
    if progress is not None:
        progress(0, total)
    if backend == "verilator":
        from ..verif.fastsim import run_chip_fast

        res = run_chip_fast(params, cases, dram_bytes=size, log=log)
        for r in res:
            r["simulator"] = "verilator (C++ fast path)"
    else:
        from ..verif.core_run import run_chip_cases

        sim = "verilator" if backend == "verilator-cocotb" else backend
        res = run_chip_cases(params, sim, cases, dram_bytes=size, log=log)
        for r in res:
            r["simulator"] = f"{sim} (cocotb)"
    if progress is not None:
        progress(total, total)
    return res
