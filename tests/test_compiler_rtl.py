"""Compiled ONNX models on the RTL chip, every run checked bit for bit against the golden model
(DRAM and counters, by :mod:`ncore.compiler.runtime`).

* the digits MLP and CNN (int8 QDQ from onnxruntime) on the default 4-core chip: Verilator (the
  cocotb-free fast path) over every held-out image, accuracy equal to onnxruntime's; Icarus
  (cocotb chip bench) on a few images;
* a representative subset of the ONNX node tests on both simulators: integer cases on the
  default chip, float (bf16) cases on a small FP chip. All node tests on the RTL: ``-m slow``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from ncore.compiler import conformance as cf
from ncore.compiler.codegen import compile_net
from ncore.compiler.onnx_import import import_model
from ncore.compiler.runtime import run_many
from ncore.params import NCoreParams

pytestmark = pytest.mark.sim

P = NCoreParams()
#: A small FP build for the float node tests (quick to build and to simulate on Icarus).
PF = NCoreParams(cores=2, rows=4, cols=4, dtypes=("int8", "bf16"), sbuf_depth=1024,
                 psum_depth=256)  # fmt: skip

INT_CASES = ["test_qlinearmatmul_2D_int8_float32", "test_qlinearmatmul_2D_uint8_float32",
             "test_maxpool_2d_uint8", "test_matmulinteger", "test_convinteger_with_padding",
             "test_qlinearconv"]  # fmt: skip
FLOAT_CASES = ["test_conv_with_strides_and_asymmetric_padding", "test_maxpool_2d_pads",
               "test_averagepool_2d_strides", "test_globalaveragepool", "test_gemm_alpha",
               "test_relu", "test_add", "test_gemm_all_attributes",
               "test_gemm_default_matrix_bias"]  # fmt: skip


@pytest.fixture(scope="module")
def digits():
    from ncore.scripts import digits as d

    return d, d.models(), d.dataset()


def _ort(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"image": x})[0]


def test_digits_on_four_cores(sim, digits):
    d, paths, (_, _, xte, yte) = digits
    count = len(xte) if sim == "verilator" else 6
    x, y = xte[:count], yte[:count]
    jobs = []
    for name, mode in (("mlp", "data"), ("cnn", "data"), ("cnn", "pipeline")):
        net = import_model(onnx.load(str(paths[name])), shapes={"image": x.shape})
        jobs.append((name, compile_net(P, net, mode=mode)))
    res = run_many([(c, {"image": x}) for _, c in jobs], backend=sim)
    for (name, c), r in zip(jobs, res, strict=True):
        ref = _ort(paths[name], x)
        same = int((np.argmax(r.outputs["logits"], 1) == np.argmax(ref, 1)).sum())
        assert same >= count - 1, (name, c.mode, same)
        assert abs(d.accuracy(r.outputs["logits"], y) - d.accuracy(ref, y)) * count <= 1
        rep = r.report
        assert rep["cycles_measured"] and rep["cycles"] > 0
        # the cycle model that plans --mode auto stays close to the RTL
        assert abs(rep["cycles_predicted"] - rep["cycles"]) <= 0.25 * rep["cycles"]
        print(f"{name} {c.mode}: {count} images, {rep['cycles']} cycles (model "
              f"{rep['cycles_predicted']}), utilisation {rep['utilization']:.3f}")  # fmt: skip


def _run_cases(names, params, sim):
    by_name = {c.name: c for c in cf.cases()}
    jobs, picked = [], []
    for name in names:
        case = by_name[name]
        c, feeds, _ = cf.compile_case(case, params)
        jobs.append((c, feeds))
        picked.append(case)
    results = run_many(jobs, backend=sim)
    for case, r in zip(picked, results, strict=True):
        verdict = cf.compare(case, r.outputs)
        assert verdict.startswith("ok:"), (case.name, verdict)


def test_conformance_subset_int8(sim):
    _run_cases(INT_CASES, P, sim)


def test_conformance_subset_bf16(sim):
    _run_cases(FLOAT_CASES, PF, sim)


@pytest.mark.slow
def test_conformance_all_on_rtl(sim):
    """Every node test that passes on the golden model, on the RTL (float ones on PF)."""
    names = [r["name"] for r in (cf._safe_check(c, PF) for c in cf.cases())
             if r["result"] == "pass"]  # fmt: skip
    _run_cases(names, PF, sim)


def test_integer_ops_int32_outputs(sim):
    """MatMulInteger/ConvInteger: int32 results through PSUM_STORE, exact against ONNX."""
    from onnx.reference import ReferenceEvaluator
    from test_compiler import integer_model

    m, feeds = integer_model()
    ref = ReferenceEvaluator(m).run(None, feeds)
    r = run_many([(compile_net(P, import_model(m)), feeds)], backend=sim)[0]
    assert np.array_equal(r.outputs["y"], ref[0]) and np.array_equal(r.outputs["z"], ref[1])
