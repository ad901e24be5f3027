"""Real networks without downloads: an MLP and a small CNN trained on scikit-learn's bundled
``load_digits`` (8×8 grey images of the digits 0–9), exported to ONNX and quantised to int8
QDQ with onnxruntime's ``quantize_static``.

The CNN is conv3×3(1→8, pad 1) → ReLU → max-pool 2 → conv3×3(8→16, pad 1) → ReLU → max-pool 2
→ flatten → Gemm(64→10); the MLP is Gemm(64→32) → ReLU → Gemm(32→10). Both are trained here in
numpy (full-batch Adam, fixed seeds, a few seconds), so the files are reproducible. The data
split is scikit-learn's ``train_test_split(test_size=0.25, random_state=0)``; calibration uses
the first 200 training images. :func:`models` caches the ONNX files under
``build/models/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["dataset", "models", "train_cnn", "train_mlp", "quantize"]

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "models"


def dataset():
    """``(x_train, y_train, x_test, y_test)``: images N×1×8×8 float32 in [0, 1], labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=0.25, random_state=0)
    return xtr, ytr, xte, yte


# -- a tiny numpy trainer --------------------------------------------------------------------------


def _im2col(x, k=3, pad=1):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, h, w), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + h, j : j + w]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * h * w, c * k * k)


def _col2im(cols, shape, k=3, pad=1):
    n, c, h, w = shape
    cols = cols.reshape(n, h, w, c, k, k).transpose(0, 3, 4, 5, 1, 2)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), cols.dtype)
    for i in range(k):
        for j in range(k):
            xp[:, :, i : i + h, j : j + w] += cols[:, :, i, j]
    return xp[:, :, pad : pad + h, pad : pad + w]


class _Adam:
    def __init__(self, params, lr=0.01):
        self.p, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads):
        self.t += 1
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            mh = self.m[k] / (1 - 0.9**self.t)
            vh = self.v[k] / (1 - 0.999**self.t)
            self.p[k] -= self.lr * mh / (np.sqrt(vh) + 1e-8)


def _softmax_grad(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    pr = e / e.sum(axis=1, keepdims=True)
    pr[np.arange(len(y)), y] -= 1
    return pr / len(y)


def train_mlp(xtr, ytr, epochs=300, seed=0):
    rng = np.random.default_rng(seed)
    x = xtr.reshape(len(xtr), -1)
    P = {"w1": rng.standard_normal((64, 32)) * 0.2, "b1": np.zeros(32),
         "w2": rng.standard_normal((32, 10)) * 0.2, "b2": np.zeros(10)}  # fmt: skip
    opt = _Adam(P, 0.01)
    for _ in range(epochs):
        h = x @ P["w1"] + P["b1"]
        r = np.maximum(h, 0)
        out = r @ P["w2"] + P["b2"]
        g = _softmax_grad(out, ytr)
        gr = g @ P["w2"].T * (h > 0)
        opt.step({"w2": r.T @ g, "b2": g.sum(0), "w1": x.T @ gr, "b1": gr.sum(0)})
    return {k: v.astype(np.float32) for k, v in P.items()}


def _pool_fwd(x):
    n, c, h, w = x.shape
    v = x.reshape(n, c, h // 2, 2, w // 2, 2)
    m = v.max(axis=(3, 5))
    mask = v == m[:, :, :, None, :, None]
    return m, mask


def _pool_bwd(g, mask):
    gg = g[:, :, :, None, :, None] * mask
    n, c, h2, _, w2, _ = gg.shape
    return gg.reshape(n, c, h2 * 2, w2 * 2)


def train_cnn(xtr, ytr, epochs=150, seed=0):
    rng = np.random.default_rng(seed)
    P = {"c1": rng.standard_normal((8, 1 * 9)) * 0.4, "b1": np.zeros(8),
         "c2": rng.standard_normal((16, 8 * 9)) * 0.15, "b2": np.zeros(16),
         "fc": rng.standard_normal((64, 10)) * 0.15, "bf": np.zeros(10)}  # fmt: skip
    opt = _Adam(P, 0.01)
    x = xtr.astype(np.float64)
    n = len(x)
    for _ in range(epochs):
        col1 = _im2col(x)
        h1 = (col1 @ P["c1"].T + P["b1"]).reshape(n, 8, 8, 8).transpose(0, 3, 1, 2)
        r1 = np.maximum(h1, 0)
        p1, m1 = _pool_fwd(r1)
        col2 = _im2col(p1)
        h2 = (col2 @ P["c2"].T + P["b2"]).reshape(n, 4, 4, 16).transpose(0, 3, 1, 2)
        r2 = np.maximum(h2, 0)
        p2, m2 = _pool_fwd(r2)
        f = p2.reshape(n, -1)
        out = f @ P["fc"] + P["bf"]
        g = _softmax_grad(out, ytr)
        gf = (g @ P["fc"].T).reshape(p2.shape)
        gr2 = _pool_bwd(gf, m2) * (h2 > 0)
        g2 = gr2.transpose(0, 2, 3, 1).reshape(-1, 16)
        gp1 = _col2im(g2 @ P["c2"], p1.shape)
        gr1 = _pool_bwd(gp1, m1) * (h1 > 0)
        g1 = gr1.transpose(0, 2, 3, 1).reshape(-1, 8)
        opt.step({"fc": f.T @ g, "bf": g.sum(0), "c2": g2.T @ col2, "b2": g2.sum(0),
                  "c1": g1.T @ col1, "b1": g1.sum(0)})  # fmt: skip
    return {k: v.astype(np.float32) for k, v in P.items()}


# -- ONNX export and quantisation ---------------------------------------------------------


def mlp_onnx(P):
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Flatten", ["image"], ["x"], name="flatten"),
             helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], name="fc2")]  # fmt: skip
    inits = [numpy_helper.from_array(P[k], k) for k in ("w1", "b1", "w2", "b2")]
    return _model(helper, TensorProto, nodes, inits, "digits_mlp")


def cnn_onnx(P):
    from onnx import TensorProto, helper, numpy_helper

    mk = helper.make_node
    nodes = [mk("Conv", ["image", "c1", "b1"], ["h1"], name="conv1", pads=[1, 1, 1, 1],
                kernel_shape=[3, 3]),
             mk("Relu", ["h1"], ["r1"], name="relu1"),
             mk("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             mk("Conv", ["p1", "c2", "b2"], ["h2"], name="conv2", pads=[1, 1, 1, 1],
                kernel_shape=[3, 3]),
             mk("Relu", ["h2"], ["r2"], name="relu2"),
             mk("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
             mk("Flatten", ["p2"], ["f"], name="flatten"),
             mk("Gemm", ["f", "fc", "bf"], ["logits"], name="fc")]  # fmt: skip
    inits = [numpy_helper.from_array(P["c1"].reshape(8, 1, 3, 3), "c1"),
             numpy_helper.from_array(P["b1"], "b1"),
             numpy_helper.from_array(P["c2"].reshape(16, 8, 3, 3), "c2"),
             numpy_helper.from_array(P["b2"], "b2"),
             numpy_helper.from_array(P["fc"], "fc"),
             numpy_helper.from_array(P["bf"], "bf")]  # fmt: skip
    return _model(helper, TensorProto, nodes, inits, "digits_cnn")


def _model(helper, TensorProto, nodes, inits, name):
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                         ["batch", 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                         ["batch", 10])], inits)  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)], producer_name="ncore")
    m.ir_version = 10
    return m


def quantize(model, calib: np.ndarray, path: Path) -> Path:
    """int8 QDQ with onnxruntime ``quantize_static`` (per-tensor, symmetric weights)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"image": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    fp = path.with_suffix(".fp32.onnx")
    onnx.save(model, fp)
    quantize_static(str(fp), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=False)  # fmt: skip
    return path


def models(cache: Path = CACHE) -> dict:
    """Train (once; cached) and return paths: ``{"mlp": …, "cnn": …, "mlp_fp32": …,
    "cnn_fp32": …}``."""
    import onnx

    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    xtr, ytr, _, _ = dataset()
    calib = xtr[:200]
    for name, train, export in (("mlp", train_mlp, mlp_onnx), ("cnn", train_cnn, cnn_onnx)):
        q = cache / f"digits_{name}.int8.onnx"
        fp = q.with_suffix(".fp32.onnx")
        if not q.exists() or not fp.exists():
            tmp = cache / f".{name}.{os.getpid()}.onnx"
            m = export(train(xtr, ytr))
            quantize(m, calib, tmp)
            onnx.save(m, cache / f".{name}.{os.getpid()}.f.onnx")
            os.replace(cache / f".{name}.{os.getpid()}.f.onnx", fp)
            os.replace(tmp, q)
            tmp.with_suffix(".fp32.onnx").unlink(missing_ok=True)
        out[name], out[name + "_fp32"] = q, fp
    return out


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.argmax(logits, axis=1) == labels).mean())
