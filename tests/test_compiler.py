"""The compiler and runtime on the golden model: ONNX import and lowering, tiling under small
memories, data-parallel / pipeline / auto partitioning, the digits networks against
onnxruntime, float models against ONNX's reference within the documented tolerance, clear
errors for what is not supported, and the command-line tool."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ncore.compiler.cli import TOLERANCE
from ncore.compiler.codegen import compile_net
from ncore.compiler.ir import Unsupported
from ncore.compiler.onnx_import import import_model
from ncore.compiler.runtime import run
from ncore.params import NCoreParams

P = NCoreParams()
PF = NCoreParams(dtypes=("int8", "bf16", "fp16"))


@pytest.fixture(scope="module")
def digits():
    from ncore.scripts import digits as d

    paths = d.models()
    _, _, xte, yte = d.dataset()
    return d, paths, xte, yte


def _ort(path, feeds):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("mode", ["data", "pipeline", "auto"])
def test_digits_match_onnxruntime(digits, name, mode):
    """The int8 QDQ networks give onnxruntime's logits exactly (same integer arithmetic:
    int32 accumulation, one requantisation per layer) and the same accuracy."""
    d, paths, xte, yte = digits
    x = xte[:40]
    net = import_model(onnx.load(str(paths[name])), shapes={"image": x.shape})
    c = compile_net(P, net, mode=mode)
    r = run(c, {"image": x})
    ref = _ort(paths[name], {"image": x})
    scale = net.outputs["logits"][1]["scale"]
    assert np.abs(r.outputs["logits"] - ref).max() <= scale * 1.01
    assert d.accuracy(r.outputs["logits"], yte[:40]) == d.accuracy(ref, yte[:40])
    rep = r.report
    assert rep["macs"] == sum(lay["macs"] for lay in rep["layers"]) > 0
    assert 0 < rep["utilization"] <= 1
    assert {"cycles", "macs", "utilization", "layers", "counters"} <= set(rep)
    assert sum(c["macs"] for c in rep["counters"] if c) == rep["macs"]


def _float_model(seed):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((6 * 4 * 4, 7)).astype(np.float32)
    mk = helper.make_node
    nodes = [mk("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
             mk("Relu", ["c"], ["r"]),
             mk("AveragePool", ["r"], ["a"], kernel_shape=[2, 2], strides=[1, 1],
                pads=[0, 0, 1, 1], count_include_pad=1),
             mk("Add", ["a", "r"], ["s"]),
             mk("MaxPool", ["s"], ["m"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
             mk("Flatten", ["m"], ["f"]),
             mk("Gemm", ["f", "w2", "b2"], ["y"], alpha=0.5, beta=2.0)]  # fmt: skip
    inits = [numpy_helper.from_array(w1, "w1"),
             numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b1"),
             numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "b2")]  # fmt: skip
    g = helper.make_graph(nodes, "f", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [5, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 7])],
                          inits)  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    return m, rng.standard_normal((5, 3, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_float_model_within_format_tolerance(dtype):
    """Conv (stride, pads) → ReLU → AveragePool → residual Add → MaxPool (pads) → Flatten →
    Gemm (alpha, beta) in bf16/fp16 with fp32 accumulation vs the fp32 reference."""
    m, x = _float_model(3)
    ref = ReferenceEvaluator(m).run(None, {"x": x})[0]
    net = import_model(m, dtype=dtype)
    r = run(compile_net(PF, net), {"x": x})
    err = np.abs(r.outputs["y"] - ref).max() / np.abs(ref).max()
    assert err <= TOLERANCE[dtype]


def test_tiling_never_gives_up():
    """A tiny SBUF/PSUM: bands of rows, output-channel passes; the same result as a big one."""
    m, x = _float_model(4)
    small = NCoreParams(dtypes=("int8", "bf16"), sbuf_depth=256, psum_depth=16)
    net = import_model(m)
    a = run(compile_net(small, net), {"x": x}).outputs["y"]
    b = run(compile_net(PF, import_model(m)), {"x": x}).outputs["y"]
    assert np.array_equal(a, b)


def _qdq_residual():
    """A hand-written QDQ graph with a residual Add of differently scaled tensors and uint8."""
    rng = np.random.default_rng(7)
    mk = helper.make_node
    c = lambda v, n, dt=np.float32: numpy_helper.from_array(np.array(v, dt), n)  # noqa: E731
    w = rng.integers(-100, 100, (4, 4, 3, 3), dtype=np.int8)
    nodes = [mk("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             mk("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             mk("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             mk("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
             mk("Relu", ["c"], ["r"]),
             mk("QuantizeLinear", ["r", "sc", "zc"], ["cq"]),
             mk("DequantizeLinear", ["cq", "sc", "zc"], ["cd"]),
             mk("Add", ["cd", "xd"], ["s"]),
             mk("QuantizeLinear", ["s", "ss", "zs"], ["y"])]  # fmt: skip
    inits = [c(0.05, "sx"), c(128, "zx", np.uint8), numpy_helper.from_array(w, "w"),
             c(0.01, "sw"), c(0, "zw", np.int8), c(0.4, "sc"), c(0, "zc", np.uint8),
             c(0.3, "ss"), c(10, "zs", np.uint8)]  # fmt: skip
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     [3, 4, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [3, 4, 6, 6])],
                          inits)  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("mode", ["data", "pipeline"])
def test_qdq_residual_add_uint8(mode):
    """uint8 activations (stored as q − 128), a fused ReLU, a residual Add of tensors with
    different scales: within one quantisation step of ONNX's float reference (the add
    rescales one operand to the other's scale first: one extra rounding)."""
    m = _qdq_residual()
    x = np.random.default_rng(1).standard_normal((3, 4, 6, 6)).astype(np.float32) * 3
    ref = ReferenceEvaluator(m).run(None, {"x": x})[0]
    r = run(compile_net(P, import_model(m), mode=mode), {"x": x})
    assert r.outputs["y"].dtype == np.uint8
    assert np.abs(r.outputs["y"].astype(int) - ref.astype(int)).max() <= 1


def test_unsupported_names_the_node():
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="probs")], "s",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         [2, 3])])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    with pytest.raises(Unsupported, match=r"node probs \(Softmax\): operator not supported"):
        import_model(m)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="grouped",
                                            group=2)], "s",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])],
                          [numpy_helper.from_array(np.ones((4, 2, 1, 1), np.float32),
                                                   "w")])  # fmt: skip
    with pytest.raises(Unsupported, match=r"grouped \(Conv\): group=2"):
        import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]))


def test_conformance_golden_never_wrong():
    """Every ONNX node test of the supported operators passes, runs on the host, or is
    refused with a clear error — none gives a wrong answer; the core cases pass."""
    from ncore.compiler import conformance as cf

    results = [cf._safe_check(c, PF) for c in cf.cases()]
    bad = [(r["name"], r["detail"]) for r in results if r["result"] == "fail"]
    assert not bad
    passed = {r["name"] for r in results if r["result"] == "pass"}
    for name in ("test_conv_with_strides_padding", "test_maxpool_2d_pads", "test_relu",
                 "test_globalaveragepool", "test_gemm_alpha", "test_gemm_all_attributes",
                 "test_gemm_default_matrix_bias", "test_matmulinteger",
                 "test_convinteger_with_padding",
                 "test_qlinearmatmul_2D_int8_float32",
                 "test_averagepool_2d_default"):  # fmt: skip
        assert name in passed, name
    assert len(passed) >= 40


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ncore.scripts.ncore", *map(str, args)],
                          capture_output=True, text=True)  # fmt: skip


def test_cli_compile_run_gemm(tmp_path, digits):
    _, paths, xte, _ = digits
    out = tmp_path / "cnn"
    r = _cli("compile", paths["cnn"], "-o", out, "--shape", "image=4x1x8x8")
    assert r.returncode == 0, r.stderr
    layout = json.loads((out / "layout.json").read_text())
    assert {"regions", "inputs", "outputs", "programs"} <= set(layout)
    assert "MATMUL" in (out / "listing.txt").read_text()
    np.savez(tmp_path / "in.npz", image=xte[:4])
    r = _cli("run", paths["cnn"], "--inputs", tmp_path / "in.npz", "--outputs",
             tmp_path / "out.npz", "--report", tmp_path / "rep.json", "--mode", "auto")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert {"cycles", "macs", "utilization", "layers", "counters"} <= set(rep)
    assert np.load(tmp_path / "out.npz")["logits"].shape == (4, 10)
    r = _cli("gemm", "--m", 20, "--k", 24, "--n", 9)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args,msg", [
    (["run", "nope.onnx", "--inputs", "a.npz", "--outputs", "b.npz"], "no such file"),
    (["gemm", "--m", "0"], "--m must be ≥ 1"),
    (["gemm", "--dtype", "int4"], "invalid choice"),
    (["run", "m.onnx", "--inputs", "x", "--outputs", "y", "--backend", "spice"], "invalid choice"),
])  # fmt: skip
def test_cli_errors_are_one_line(args, msg):
    r = _cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncore: error:") and msg in lines[0]


def test_bad_model_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    np.savez(tmp_path / "in.npz", x=np.zeros(3))
    r = _cli("run", bad, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "o.npz")
    assert r.returncode == 2 and "not an ONNX model" in r.stderr


@pytest.mark.parametrize("mode", ["data", "pipeline"])
def test_programs_never_read_stale_memory(digits, mode):
    """The compiled programs read only SBUF/PSUM they wrote: the same DRAM results with the
    memories filled with garbage first (an odd batch makes partial last steps)."""
    from ncore.compiler.runtime import _prepare
    from ncore.golden.chip import Chip

    _, paths, xte, _ = digits
    x = xte[:450]
    for name in ("cnn", "mlp"):
        c = compile_net(P, import_model(onnx.load(str(paths[name])), shapes={"image": x.shape}),
                        mode=mode)  # fmt: skip
        prep = _prepare(c, {"image": x})
        chip = Chip(P, prep["image"].copy())
        rng = np.random.default_rng(5)
        for core in chip.cores:
            core.sbuf[...] = rng.integers(0, 256, core.sbuf.shape).astype(core.sbuf.dtype)
            junk = rng.integers(0, 1 << 32, core.psum.mem.shape, dtype=np.uint64)
            core.psum.mem[...] = junk.astype(core.psum.mem.dtype)
        chip.run(c.placed)
        assert np.array_equal(chip.dram, prep["final"]), name


def integer_model():
    """MatMulInteger (uint8 input and weights with zero points: weights as two int8 terms,
    the input zero point as a bias added in PSUM) and ConvInteger (stride, pads, an input
    zero point) with int32 outputs, which leave the core through DMA PSUM_STORE."""
    rng = np.random.default_rng(0)
    w = rng.integers(0, 256, (20, 11), dtype=np.uint8)
    wc = rng.integers(-128, 128, (5, 3, 3, 3), dtype=np.int8)
    nodes = [helper.make_node("MatMulInteger", ["a", "w", "za", "zw"], ["y"]),
             helper.make_node("ConvInteger", ["x", "wc", "zx"], ["z"], pads=[1, 1, 1, 1],
                              strides=[2, 1])]  # fmt: skip
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("a", TensorProto.UINT8, [7, 20]),
                                       vi("x", TensorProto.INT8, [2, 3, 6, 5])],
                          [vi("y", TensorProto.INT32, [7, 11]), vi("z", TensorProto.INT32, None)],
                          [numpy_helper.from_array(w, "w"),
                           numpy_helper.from_array(np.array(100, np.uint8), "zw"),
                           numpy_helper.from_array(np.array(37, np.uint8), "za"),
                           numpy_helper.from_array(np.array(-5, np.int8), "zx"),
                           numpy_helper.from_array(wc, "wc")])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    feeds = {"a": rng.integers(0, 256, (7, 20), dtype=np.uint8),
             "x": rng.integers(-128, 128, (2, 3, 6, 5), dtype=np.int8)}  # fmt: skip
    return m, feeds


def test_integer_ops_exact():
    m, feeds = integer_model()
    ref = ReferenceEvaluator(m).run(None, feeds)
    r = run(compile_net(P, import_model(m)), feeds)
    assert np.array_equal(r.outputs["y"], ref[0]) and np.array_equal(r.outputs["z"], ref[1])


def test_readme_conformance_table_is_current():
    """The README's conformance table is what the suite gives today (regenerate with
    ``python -m ncore.scripts.readme``)."""
    from ncore.scripts import readme

    text = readme.README.read_text()
    assert f"<!-- begin conformance -->\n{readme.conformance_block()}\n<!-- end" in text
