"""ONNX backend node tests for the supported operators, run through the compiler and runtime.

The cases come from ``onnx.backend.test.case.node`` (generated offline: the generators ship
with the onnx package). Node tests pass weights as graph inputs; a deployment compiler knows
its weights, so when a case does not compile as given, every input but the first is bound as
a constant (initializer) and the case is compiled again (``bound`` in the result).

Each case ends as one of:

* ``pass`` — ran on the chip (at least one layer) and matched the expected outputs: integer
  outputs exactly (``exact``) or within one quantisation step where ONNX defines the result
  through float rounding (``±1``); float outputs within :data:`ncore.compiler.runtime.TOLERANCE`
  of the largest output (bf16 by default);
* ``host`` — the graph is only boundary conversions (a lone QuantizeLinear, a layout-only
  Reshape …), which the runtime does on the host; correct, but nothing ran on the chip;
* ``unsupported`` — the compiler refused it with an error naming the node (never a wrong
  answer);
* ``fail`` — a wrong answer or a crash: a defect.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..params import NCoreParams
from .codegen import compile_net
from .ir import Unsupported
from .onnx_import import SUPPORTED_OPS, import_model
from .runtime import TOLERANCE, run

__all__ = ["CASE_OPS", "Case", "cases", "check"]

#: Operators whose node tests the suite runs (the lowering set; Cast/Constant/Identity are
#: only folded or passed through).
CASE_OPS = tuple(op for op in SUPPORTED_OPS if op not in ("Cast", "Constant", "Identity"))


@dataclass
class Case:
    name: str
    op: str
    model: onnx.ModelProto
    inputs: list
    outputs: list


_CACHE: list | None = None


def cases(ops=CASE_OPS) -> list[Case]:
    """Single-node test cases of ``ops`` (first data set of each)."""
    global _CACHE
    if _CACHE is None:
        from onnx.backend.test.case.node import collect_testcases

        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            np.seterr(all="ignore")
            _CACHE = collect_testcases()
            np.seterr(all="warn")
    out = []
    for t in _CACHE:
        if t.model is None or not t.data_sets or len(t.model.graph.node) != 1:
            continue
        op = t.model.graph.node[0].op_type
        if op not in ops:
            continue
        ins, outs = t.data_sets[0]
        conv = [numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else
                np.asarray(v) if isinstance(v, np.generic) else v
                for v in list(ins) + list(outs)]  # fmt: skip
        if any(not isinstance(v, np.ndarray) for v in conv):
            continue  # sequences/optionals: not tensor operators
        out.append(Case(t.name, op, t.model, conv[: len(ins)], conv[len(ins) :]))
    return sorted(out, key=lambda c: (c.op, c.name))


def _bind(model: onnx.ModelProto, values: list) -> tuple[onnx.ModelProto, list]:
    """The model with every graph input but the first turned into an initializer."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    names = [i.name for i in g.input if i.name not in {x.name for x in g.initializer}]
    keep = names[:1]
    for name, v in zip(names[1:], values[1:], strict=False):
        g.initializer.append(numpy_helper.from_array(np.asarray(v), name))
    for inp in list(g.input):
        if inp.name not in keep:
            g.input.remove(inp)
    return m, values[:1]


def compile_case(case: Case, params: NCoreParams, dtype: str = "bf16"):
    """``(compiled, feeds, bound)`` or raises :class:`Unsupported`."""
    names = [i.name for i in case.model.graph.input]
    attempts = [(case.model, case.inputs, False)]
    if len(case.inputs) > 1:
        bm, bi = _bind(case.model, case.inputs)
        attempts.append((bm, bi, True))
    err = None
    for model, values, bound in attempts:
        feeds = dict(zip(names, values, strict=False))
        try:
            net = import_model(model, dtype=dtype, shapes={k: np.shape(v)
                                                           for k, v in feeds.items()})  # fmt: skip
            c = compile_net(params, net)
            return c, feeds, bound
        except Unsupported as e:
            err = e
    raise err


def compare(case: Case, outputs: dict, dtype: str = "bf16") -> str | None:
    """None when the outputs match, else what differs. Sets the grade on success via the
    returned string "exact" / "±1" / "float"."""
    names = [o.name for o in case.model.graph.output]
    grade = "exact"
    for name, want in zip(names, case.outputs, strict=True):
        got = outputs[name]
        want = np.asarray(want)
        if got.shape != want.shape:
            return f"{name}: shape {got.shape}, expected {want.shape}"
        if want.dtype.kind in "iu":
            d = int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max(initial=0))
            if d > 1:
                return f"{name}: off by up to {d}"
            if d == 1:
                grade = "±1"
        else:
            ref = want.astype(np.float32)
            scale = max(float(np.abs(ref).max(initial=0)), 1e-30)
            err = float(np.abs(got.astype(np.float32) - ref).max(initial=0)) / scale
            if not err <= TOLERANCE[dtype]:
                return f"{name}: relative error {err:.2e} > {TOLERANCE[dtype]:.0e}"
            grade = "float"
    return "ok:" + grade


def check(case: Case, params: NCoreParams, backend: str = "golden") -> dict:
    """Run one case; ``{"name", "op", "result", "detail", "bound"}``."""
    res = {"name": case.name, "op": case.op, "bound": False}
    try:
        c, feeds, bound = compile_case(case, params)
    except Unsupported as e:
        kind = "fail" if "internal error" in str(e) else "unsupported"
        return {**res, "result": kind, "detail": str(e)}
    res["bound"] = bound
    try:
        r = run(c, feeds, backend=backend)
    except Exception as e:  # noqa: BLE001 - a crash is a failure, reported
        return {**res, "result": "fail", "detail": f"{type(e).__name__}: {e}"}
    verdict = compare(case, r.outputs)
    if not verdict.startswith("ok:"):
        return {**res, "result": "fail", "detail": verdict}
    kind = "pass" if c.net.layers else "host"
    return {**res, "result": kind, "detail": verdict[3:], "layers": len(c.net.layers),
            "cycles": r.report["cycles"]}  # fmt: skip


def _safe_check(case, params, backend="golden"):
    try:
        return check(case, params, backend)
    except Exception as e:  # noqa: BLE001 - a crash is a failure, reported
        return {"name": case.name, "op": case.op, "bound": False, "result": "fail",
                "detail": f"{type(e).__name__}: {e}"}  # fmt: skip


def summary(results: list[dict]) -> dict:
    """Per operator: counts of each result."""
    table: dict = {}
    for r in results:
        row = table.setdefault(r["op"], {"cases": 0, "pass": 0, "host": 0, "unsupported": 0,
                                         "fail": 0})  # fmt: skip
        row["cases"] += 1
        row[r["result"]] += 1
    return dict(sorted(table.items()))


def markdown(table: dict) -> str:
    lines = ["| operator | node tests | pass (on chip) | host only | unsupported (clear error) "
             "| wrong |", "|---|---|---|---|---|---|"]  # fmt: skip
    tot = {"cases": 0, "pass": 0, "host": 0, "unsupported": 0, "fail": 0}
    for op, row in table.items():
        lines.append(f"| {op} | {row['cases']} | {row['pass']} | {row['host']} | "
                     f"{row['unsupported']} | {row['fail']} |")  # fmt: skip
        for k in tot:
            tot[k] += row[k]
    lines.append(f"| **all** | {tot['cases']} | {tot['pass']} | {tot['host']} | "
                 f"{tot['unsupported']} | {tot['fail']} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse
    import json
    from pathlib import Path

    ap = argparse.ArgumentParser(description="ONNX node-test conformance on the golden model")
    ap.add_argument("--json", type=Path, default=Path("build/conformance.json"))
    args = ap.parse_args(argv)
    params = NCoreParams(dtypes=("int8", "bf16"))
    results = [_safe_check(c, params) for c in cases()]
    table = summary(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": results, "summary": table}, indent=1) + "\n")
    print(markdown(table))
    for r in results:
        if r["result"] in ("fail", "unsupported"):
            print(f"{r['result']:<11} {r['name']}: {r['detail']}")
    return 1 if any(r["result"] == "fail" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
