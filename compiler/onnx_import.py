"""ONNX import: a model → :class:`ncore.compiler.ir.Net`.

The importer walks the graph in order and keeps, for every ONNX value, what it is on the chip:

* a constant (initializers, ``Constant`` nodes, anything computed only from constants — folded
  with ONNX's reference implementation); a quantised constant remembers its integers, scale
  and zero point (``DequantizeLinear`` of an int8/uint8/int32 initializer);
* ``I``: an integer tensor on the chip (int8; ONNX uint8 is stored as ``q − 128``);
* ``DQ``: the real-valued view ``scale · (q − zp)`` of an ``I`` (not computed);
* ``Pend``: the real-valued result of an integer layer whose output quantisation is not known
  yet; the ``QuantizeLinear`` that consumes it fixes the requantisation (``Relu`` in between is
  fused), which is how the QDQ pattern (``DQ → op → Q``) becomes one int8 layer;
* ``F``: a bf16/fp16 tensor on the chip (float models; FP32 is cast to the chosen type);
* a float graph input not on the chip yet (the host quantises it for a ``QuantizeLinear``
  consumer, or casts it to bf16/fp16 for a float consumer).

Boundary conversions happen on the host: quantising a float graph input by its first
``QuantizeLinear``, dequantising a graph output that is a ``DequantizeLinear``, casting
float inputs/outputs, and the NCHW ↔ blocked layout change. Everything between runs on the chip.
An operator, attribute or pattern outside this set raises :class:`Unsupported` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
from onnx import helper, numpy_helper

from .ir import MatLayer, Net, Post, Tensor, Unsupported, VecLayer

__all__ = ["SUPPORTED_OPS", "import_model", "multiplier"]

SUPPORTED_OPS = (
    "Add", "AveragePool", "Cast", "Constant", "Conv", "ConvInteger", "DequantizeLinear",
    "Flatten", "Gemm", "GlobalAveragePool", "Identity", "MatMul", "MatMulInteger", "MaxPool",
    "QLinearConv", "QLinearMatMul", "QuantizeLinear", "Relu", "Reshape", "Transpose",
)  # fmt: skip

_INT8_MIN = {"int8": -128, "uint8": 0}


def multiplier(m: float) -> tuple[int, int]:
    """``(M, shift)`` with ``M / 2^shift ≈ m``, ``M < 2^31``, ``shift`` in 0…63."""
    if m <= 0 or not np.isfinite(m):
        if m == 0:
            return 0, 0
        raise Unsupported(f"requantisation multiplier {m} is not positive")
    e = int(np.floor(np.log2(m)))
    shift = min(63, max(0, 30 - e))
    big = round(m * 2.0**shift)
    if big >= 1 << 31:
        raise Unsupported(f"requantisation multiplier {m} is too large")
    return int(big), shift


# -- values ------------------------------------------------------------------------------------


@dataclass
class C:
    """A constant; ``q`` = (integers, scale, zero point, axis) when it is dequantised ints."""

    v: np.ndarray
    q: tuple | None = None


@dataclass
class I:  # noqa: E742 - the name of the kind
    t: Tensor
    shape: tuple
    view: str  #: "nchw", "2d", "3d", "flat" (an (N, C·H·W) view of a 4-D tensor)
    onnx_dtype: str  #: int8 / uint8


@dataclass
class DQ:
    i: I
    scale: float
    zp: int  #: ONNX zero point (uint8 range for uint8)

    @property
    def shape(self):
        return self.i.shape

    @property
    def view(self):
        return self.i.view

    @property
    def chip_zp(self):
        return self.zp - (128 if self.i.onnx_dtype == "uint8" else 0)


@dataclass
class F:
    t: Tensor
    shape: tuple
    view: str


@dataclass
class HostIn:
    name: str
    shape: tuple  #: logical shape (after host-side reshapes)
    orig: tuple = ()  #: the graph input's shape
    hops: tuple = ()  #: host-side layout operations: ("reshape", shape) / ("transpose", perm)

    @property
    def view(self):
        return _view_of(self.shape)


@dataclass
class Pend:
    """An integer layer waiting for its output quantisation: ``make(scale, zp, dtype, relu)``
    returns the layer (and the output is ``like``'s geometry)."""

    make: object
    shape: tuple
    view: str
    geom: tuple  #: (n, h, w, c) of the output
    relu: bool = False
    ops: str = ""


@dataclass
class IntOut:
    """An int32 result in DRAM (row-major), from MatMulInteger/ConvInteger."""

    t: Tensor
    shape: tuple
    view: str


@dataclass
class TView:
    """A 2-D transpose of a runtime tensor (usable as the B operand of MatMul/Gemm)."""

    of: object


def _nhwc(shape, view):
    if view == "nchw":
        n, c, h, w = shape
        return n, h, w, c
    if view == "3d":
        b, m, f = shape
        return b * m, 1, 1, f
    m, f = shape
    return m, 1, 1, f


def _view_of(shape):
    return {4: "nchw", 3: "3d", 2: "2d"}.get(len(shape))


class _Importer:
    def __init__(self, model: onnx.ModelProto, dtype: str, shapes: dict):
        self.model = model
        self.dtype = dtype
        self.env: dict = {}
        self.tensors: list[Tensor] = []
        self.layers: list = []
        self.inputs: dict = {}
        self.outputs: dict = {}
        self.consts: list = []
        self.shapes = shapes
        self.uses: dict = {}
        self.graph_outputs = {o.name for o in model.graph.output}
        for node in model.graph.node:
            for n in node.input:
                self.uses[n] = self.uses.get(n, 0) + 1
        self.count = 0

    # -- helpers --
    def node_err(self, node, msg):
        return Unsupported(f"node {node.name or '(unnamed)'} ({node.op_type}): {msg}")

    def new_tensor(self, base, geom, etype, **kw) -> Tensor:
        self.count += 1
        n, h, w, c = geom
        t = Tensor(f"{base}#{self.count}", n, h, w, c, etype, **kw)
        self.tensors.append(t)
        return t

    def const(self, name, node=None) -> C:
        v = self.env.get(name)
        if not isinstance(v, C):
            if node is not None:
                raise self.node_err(node, f"input {name!r} must be a constant")
            raise Unsupported(f"{name!r} must be a constant")
        return v

    def pad_request(self, t: Tensor, pads, value, node):
        if not any(pads):
            return
        if any(pads) and t.pad_value is not None and any(t.pads) and t.pad_value != value:
            raise self.node_err(node, "its input is padded differently by another consumer")
        t.pads = [max(a, b) for a, b in zip(t.pads, pads, strict=True)]
        t.pad_value = value

    def on_chip_float(self, v, node):
        """A float value as an F (casting a graph input on the host)."""
        if isinstance(v, F):
            return v
        if isinstance(v, HostIn):
            view = _view_of(v.shape)
            if view is None:
                raise self.node_err(node, f"input of rank {len(v.shape)}")
            t = self.new_tensor(v.name, _nhwc(v.shape, view), self.dtype)
            f = F(t, v.shape, view)
            self.inputs[v.name] = (t, {"kind": "float", "view": view, "shape": v.orig,
                                       "hops": v.hops})  # fmt: skip
            self.env[v.name] = f
            return f
        if isinstance(v, (DQ, Pend)):
            raise self.node_err(node, "a quantised tensor used by a float operation "
                                "(expected QuantizeLinear after it)")  # fmt: skip
        raise self.node_err(node, f"unsupported input {type(v).__name__}")

    # -- main loop --
    def run(self) -> Net:
        g = self.model.graph
        for init in g.initializer:
            self.env[init.name] = C(numpy_helper.to_array(init))
        for inp in g.input:
            if inp.name in self.env:
                continue
            tt = inp.type.tensor_type
            shape = self.shapes.get(inp.name)
            if shape is None:
                shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                              for d in tt.shape.dim)  # fmt: skip
            et = helper.tensor_dtype_to_np_dtype(tt.elem_type)
            if et in (np.int8, np.uint8):
                view = _view_of(shape)
                if view is None:
                    raise Unsupported(f"input {inp.name}: rank {len(shape)} is not supported")
                dt = np.dtype(et).name
                t = self.new_tensor(inp.name, _nhwc(shape, view), "int8")
                self.env[inp.name] = I(t, tuple(shape), view, dt)
                self.inputs[inp.name] = (t, {"kind": "int", "view": view, "shape": tuple(shape),
                                             "dtype": dt})  # fmt: skip
            elif et in (np.float32, np.float16, np.float64) or tt.elem_type == 16:
                self.env[inp.name] = HostIn(inp.name, tuple(shape), tuple(shape))
            else:
                raise Unsupported(f"input {inp.name}: element type {np.dtype(et).name}")
        for node in g.node:
            if node.domain not in ("", "ai.onnx"):
                raise self.node_err(node, f"operator domain {node.domain!r}")
            fn = getattr(self, "op_" + node.op_type, None)
            ins = [self.env.get(n) if n else None for n in node.input]
            if all(isinstance(v, C) or v is None for v in ins) and node.op_type not in (
                "QuantizeLinear", "DequantizeLinear") or node.op_type == "Constant":  # fmt: skip
                self.fold(node)
                continue
            if fn is None:
                raise self.node_err(node, "operator not supported")
            try:
                outs = fn(node, *ins)
            except Unsupported:
                raise
            except Exception as e:  # noqa: BLE001 - reported, never a wrong answer
                raise self.node_err(node, f"internal error: {type(e).__name__}: {e}") from e
            if not isinstance(outs, list):
                outs = [outs]
            if len(node.output) > len(outs) and any(node.output[len(outs) :]):
                raise self.node_err(node, "optional outputs are not supported")
            for name, v in zip(node.output, outs, strict=False):
                self.env[name] = v
        for out in g.output:
            self.finish_output(out.name)
        return Net(self.tensors, self.layers, self.inputs, self.outputs, self.consts,
                   self.dtype)  # fmt: skip

    def fold(self, node):
        """Evaluate a node whose inputs are all constant."""
        from onnx.reference import ReferenceEvaluator

        if node.op_type == "DequantizeLinear":
            pass
        ins = [n for n in node.input if n]
        inputs = [helper.make_tensor_value_info(n, 1, None) for n in ins]
        outputs = [helper.make_tensor_value_info(n, 1, None) for n in node.output if n]
        graph = helper.make_graph([node], "fold", inputs, outputs)
        opset = [o for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        m = helper.make_model(graph, opset_imports=opset or [helper.make_opsetid("", 17)])
        ref = ReferenceEvaluator(m)
        res = ref.run(None, {n: self.env[n].v for n in ins})
        for name, v in zip([n for n in node.output if n], res, strict=True):
            self.env[name] = C(np.asarray(v))

    def finish_output(self, name):
        v = self.env[name]
        if isinstance(v, DQ):
            self.outputs[name] = (v.i.t, {"kind": "dequant", "view": v.i.view, "shape": v.i.shape,
                                          "dtype": v.i.onnx_dtype, "scale": v.scale,
                                          "zp": v.zp})  # fmt: skip
        elif isinstance(v, I):
            self.outputs[name] = (v.t, {"kind": "int", "view": v.view, "shape": v.shape,
                                        "dtype": v.onnx_dtype})  # fmt: skip
        elif isinstance(v, F):
            self.outputs[name] = (v.t, {"kind": "float", "view": v.view, "shape": v.shape})
        elif isinstance(v, IntOut):
            self.outputs[name] = (v.t, {"kind": "int32", "view": v.view, "shape": v.shape})
        elif isinstance(v, TView):
            self.env[name] = self.transpose_2d(_named(name), v.of)
            return self.finish_output(name)
        elif isinstance(v, HostIn):  # a graph input only rearranged: done on the host
            self.outputs[name] = (None, {"kind": "host", "input": v.name, "hops": v.hops,
                                         "shape": v.shape})  # fmt: skip
            self.inputs.setdefault(v.name, (None, {"kind": "host", "shape": v.orig}))
        elif isinstance(v, Pend):
            raise Unsupported(f"output {name}: an integer layer's result must be quantised "
                              "(QuantizeLinear) before it leaves the graph")  # fmt: skip
        else:
            raise Unsupported(f"output {name}: a {type(v).__name__} cannot be an output")

    # -- elementwise and layout ops --
    def op_Identity(self, node, x):
        return x

    def op_Cast(self, node, x):
        to = helper.get_attribute_value(next(a for a in node.attribute if a.name == "to"))
        np_t = helper.tensor_dtype_to_np_dtype(to)
        if isinstance(x, (F, HostIn, DQ, Pend)) and np.issubdtype(np_t, np.floating):
            return x
        raise self.node_err(node, f"cast to {np.dtype(np_t).name} of a runtime tensor")

    def op_Flatten(self, node, x):
        axis = _attr(node, "axis", 1)
        return self.reshape(node, x, None, axis)

    def op_Reshape(self, node, x, shape):
        target = [int(s) for s in self.const(node.input[1], node).v]
        if _attr(node, "allowzero", 0) and 0 in target:
            raise self.node_err(node, "allowzero=1 with a zero dimension")
        return self.reshape(node, x, target, None)

    def reshape(self, node, x, target, axis):
        shape = x.shape if not isinstance(x, TView) else None
        if shape is None:
            raise self.node_err(node, "reshape of this input")
        total = int(np.prod(shape))
        if axis is not None:
            a = axis if axis >= 0 else axis + len(shape)
            new = (int(np.prod(shape[:a])), int(np.prod(shape[a:])))
        else:
            new = list(target)
            for i, s in enumerate(new):
                if s == 0:
                    new[i] = shape[i]
            if -1 in new:
                k = new.index(-1)
                rest = int(np.prod([s for j, s in enumerate(new) if j != k]))
                new[k] = total // rest
            new = tuple(new)
        if new == tuple(shape):
            return x
        if isinstance(x, HostIn):  # a graph input: the host reshapes it
            return HostIn(x.name, new, x.orig, x.hops + (("reshape", new),))
        view = getattr(x, "view", None)
        # (N, C, H, W) -> (N, C·H·W): a flat view of the same chip tensor
        if view in ("nchw", "flat") and len(new) == 2 and new[0] == shape[0]:
            return _with_shape(x, new, "flat" if int(np.prod(shape[2:])) > 1 else "2d")
        # (N, F) -> (N, F, 1, 1)
        if view in ("2d",) and len(new) == 4 and new[0] == shape[0] and new[2:] == (1, 1):
            return _with_shape(x, new, "nchw")
        if view == "nchw" and len(new) == 4 and new[0] == shape[0] and shape[2:] == (1, 1) \
                and new[2:] == (1, 1):  # fmt: skip
            return _with_shape(x, new, "nchw")
        raise self.node_err(node, f"reshape {tuple(shape)} -> {new} changes the data layout")

    def op_Transpose(self, node, x):
        perm = _attr(node, "perm", None)
        shape = getattr(x, "shape", None)
        if shape is None:
            raise self.node_err(node, "transpose of this input")
        perm = list(perm) if perm is not None else list(range(len(shape)))[::-1]
        if perm == sorted(perm):
            return x
        if isinstance(x, HostIn):  # a graph input: the host transposes it
            new = tuple(shape[i] for i in perm)
            return HostIn(x.name, new, x.orig, x.hops + (("transpose", tuple(perm)),))
        if len(shape) == 2 and perm == [1, 0]:
            return TView(x)
        raise self.node_err(node, f"transpose {perm} of a runtime tensor changes the layout")

    def transpose_2d(self, node, v):
        """A 2-D runtime tensor transposed on the chip (a DMA-only layer)."""
        if isinstance(v, TView):
            return v.of
        if isinstance(v, HostIn):
            return HostIn(v.name, v.shape[::-1], v.orig, v.hops + (("transpose", (1, 0)),))
        inner = v.i if isinstance(v, DQ) else v
        if not isinstance(inner, (I, F)) or len(inner.shape) != 2 or inner.view == "flat":
            raise self.node_err(node, "transposing this operand")
        t = inner.t
        y = self.new_tensor(node.output[0] + ".T", (t.c, 1, 1, t.n), t.etype)
        one = np.ones(t.n)
        post = Post(np.zeros(t.n), one, np.zeros(t.n, np.int64))
        self.layers.append(VecLayer((node.name or y.name) + ".transpose", "transpose", t, y, post,
                                    in_type=t.etype, ops="Transpose"))  # fmt: skip
        shape = inner.shape[::-1]
        if isinstance(inner, F):
            return F(y, shape, "2d")
        new = I(y, shape, "2d", inner.onnx_dtype)
        return DQ(new, v.scale, v.zp) if isinstance(v, DQ) else new

    def op_Relu(self, node, x):
        if isinstance(x, Pend):
            x.relu = True
            x.ops += "+Relu"
            return x
        if isinstance(x, DQ):
            return self.pend_copy(node, x, relu=True)
        f = self.on_chip_float(x, node)
        prod = self.producer(f.t)
        if prod is not None and self.uses.get(node.input[0], 0) == 1 and \
                node.input[0] not in self.graph_outputs and not prod.post.relu:  # fmt: skip
            prod.post.relu = True
            prod.ops += "+Relu"
            return f
        return self.float_copy(node, f, relu=True)

    def producer(self, t):
        for layer in self.layers:
            if layer.y is t:
                return layer
        return None

    def float_copy(self, node, f: F, *, relu=False, bias=None):
        y = self.new_tensor(node.output[0], (f.t.n, f.t.h, f.t.w, f.t.c), self.dtype)
        c = f.t.c
        post = Post(np.zeros(c, np.float32) if bias is None else bias,
                    np.ones(c, np.float32), np.zeros(c, np.int64), 0, relu)  # fmt: skip
        self.layers.append(VecLayer(node.name or y.name, "copy", f.t, y, post,
                                    in_type=self.dtype, ops=node.op_type))  # fmt: skip
        return F(y, f.shape, f.view)

    def pend_copy(self, node, x: DQ, *, relu=False, bias_real=None):
        geom = _nhwc(x.i.shape, x.i.view) if x.i.view != "flat" else _geom(x.i.t)
        t = x.i.t

        def make(sy, zy, relu):
            y = self.new_tensor(node.output[0], (t.n, t.h, t.w, t.c), "int8")
            bias = np.full(t.c, -x.chip_zp, np.int64)
            if bias_real is not None:
                bias = bias + np.round(np.broadcast_to(bias_real, (t.c,)) / x.scale).astype(
                    np.int64
                )
            m, s = multiplier(x.scale / sy)
            post = Post(bias, np.full(t.c, m), np.full(t.c, s), zy, relu)
            return VecLayer(node.name or y.name, "copy", t, y, post, ops=node.op_type)

        return Pend(make, x.i.shape, x.i.view, geom, relu, node.op_type)

    def op_Add(self, node, a, b):
        if isinstance(b, Pend) and isinstance(a, C):
            a, b = b, a
        if isinstance(b, C) and isinstance(a, Pend) and hasattr(a.make, "bias_add"):
            a.make.bias_add(_channel_vec(b.v, a, node, self))
            a.ops += "+Add"
            return a
        if isinstance(a, C) and isinstance(b, (DQ, F, HostIn)):
            a, b = b, a
        if isinstance(b, C):
            vec = _channel_vec(b.v, a, node, self)
            if isinstance(a, DQ):
                return self.pend_copy(node, a, bias_real=vec)
            f = self.on_chip_float(a, node)
            prod = self.producer(f.t)
            if isinstance(prod, MatLayer) and self.uses.get(node.input[0], 0) == 1 and \
                    not prod.post.relu and node.input[0] not in self.graph_outputs:  # fmt: skip
                prod.post.bias = (np.asarray(prod.post.bias, np.float32)
                                  + vec.astype(np.float32)).astype(np.float32)  # fmt: skip
                prod.ops += "+Add"
                return f
            return self.float_copy(node, f, bias=vec.astype(np.float32))
        if isinstance(a, DQ) and isinstance(b, DQ):
            return self.pend_add(node, a, b)
        if isinstance(a, (F, HostIn)) and isinstance(b, (F, HostIn)):
            fa, fb = self.on_chip_float(a, node), self.on_chip_float(b, node)
            if fa.shape != fb.shape:
                raise self.node_err(node, f"broadcasting {fa.shape} + {fb.shape}")
            y = self.new_tensor(node.output[0], _geom(fa.t), self.dtype)
            c = fa.t.c
            post = Post(np.zeros(c, np.float32), np.ones(c, np.float32), np.zeros(c, np.int64))
            self.layers.append(VecLayer(node.name or y.name, "add", fa.t, y, post, b=fb.t,
                                        in_type=self.dtype, ops="Add"))  # fmt: skip
            return F(y, fa.shape, fa.view)
        raise self.node_err(node, f"Add of {type(a).__name__} and {type(b).__name__}")

    def pend_add(self, node, a: DQ, b: DQ):
        if a.i.shape != b.i.shape:
            raise self.node_err(node, f"broadcasting {a.i.shape} + {b.i.shape}")
        if b.scale > a.scale:
            a, b = b, a  # rescale the operand with the smaller scale
        ta, tb = a.i.t, b.i.t
        c = ta.c

        def make(sy, zy, relu):
            y = self.new_tensor(node.output[0], _geom(ta), "int8")
            pre = None
            if a.scale == b.scale:
                bias = np.full(c, -a.chip_zp - b.chip_zp, np.int64)
            else:
                mb, sb = multiplier(b.scale / a.scale)
                pre = Post(np.full(c, -b.chip_zp, np.int64), np.full(c, mb), np.full(c, sb))
                bias = np.full(c, -a.chip_zp, np.int64)
            m, s = multiplier(a.scale / sy)
            post = Post(bias, np.full(c, m), np.full(c, s), zy, relu)
            return VecLayer(node.name or y.name, "add", ta, y, post, b=tb, pre=pre, ops="Add")

        return Pend(make, a.i.shape, a.i.view, _geom(ta), False, "Add")

    # -- quantisation --
    def op_QuantizeLinear(self, node, x, s, zp=None):
        scale = self.const(node.input[1], node).v
        if np.size(scale) != 1:
            raise self.node_err(node, "per-axis quantisation of activations")
        scale = float(np.asarray(scale).reshape(-1)[0])
        if zp is None:
            zdt, z = "uint8", 0
            to = _attr(node, "output_dtype", 0)
            if to:
                zdt = np.dtype(helper.tensor_dtype_to_np_dtype(to)).name
        else:
            zc = self.const(node.input[2], node).v
            zdt, z = zc.dtype.name, int(np.asarray(zc).reshape(-1)[0])
        if zdt not in ("int8", "uint8"):
            raise self.node_err(node, f"quantisation to {zdt}")
        if _attr(node, "saturate", 1) != 1:
            raise self.node_err(node, "saturate=0")
        chip_z = z - (128 if zdt == "uint8" else 0)
        if isinstance(x, HostIn):
            view = _view_of(x.shape)
            if view is None:
                raise self.node_err(node, f"input of rank {len(x.shape)}")
            t = self.new_tensor(x.name, _nhwc(x.shape, view), "int8")
            self.inputs[x.name] = (t, {"kind": "quantize", "view": view, "shape": x.orig,
                                       "hops": x.hops, "scale": scale, "zp": z,
                                       "dtype": zdt})  # fmt: skip
            return I(t, x.shape, view, zdt)
        if isinstance(x, Pend):
            layer = x.make(scale, chip_z, x.relu)
            layer.ops = x.ops + "+QuantizeLinear"
            self.layers.append(layer)
            return I(layer.y, x.shape, x.view, zdt)
        if isinstance(x, DQ):
            if x.scale == scale and x.chip_zp == chip_z:
                return I(x.i.t, x.i.shape, x.i.view, zdt)
            pend = self.pend_copy(node, x)
            layer = pend.make(scale, chip_z, False)
            layer.ops = "QuantizeLinear"
            self.layers.append(layer)
            return I(layer.y, x.i.shape, x.i.view, zdt)
        if isinstance(x, F):
            y = self.new_tensor(node.output[0], _geom(x.t), "int8")
            c = x.t.c
            post = Post(np.zeros(c, np.float32), np.full(c, 1.0 / scale, np.float32),
                        np.zeros(c, np.int64), chip_z)  # fmt: skip
            self.layers.append(VecLayer(node.name or y.name, "copy", x.t, y, post,
                                        in_type=self.dtype, ops="QuantizeLinear"))  # fmt: skip
            return I(y, x.shape, x.view, zdt)
        raise self.node_err(node, f"quantising a {type(x).__name__}")

    def op_DequantizeLinear(self, node, x, s, zp=None):
        scale = self.const(node.input[1], node).v
        axis = _attr(node, "axis", 1)
        z = self.const(node.input[2], node).v if zp is not None else np.zeros((), np.int64)
        if isinstance(x, C):
            q = x.v
            real = (q.astype(np.int64) - _bcast(z, q, axis)) * _bcast(scale, q, axis)
            return C(real.astype(np.float32), (q, scale, z, axis))
        if isinstance(x, I):
            if np.size(scale) != 1:
                raise self.node_err(node, "per-axis dequantisation of activations")
            return DQ(x, float(np.asarray(scale).reshape(-1)[0]), int(np.asarray(z).reshape(-1)[0]))
        raise self.node_err(node, f"dequantising a {type(x).__name__}")

    # -- matrix products --
    def op_Gemm(self, node, a, b, c=None):
        alpha, beta = _attr(node, "alpha", 1.0), _attr(node, "beta", 1.0)
        ta, tb = _attr(node, "transA", 0), _attr(node, "transB", 0)
        if ta:
            a = C(a.v.T, _tq(a.q)) if isinstance(a, C) else self.transpose_2d(node, a)
        if tb:
            b = C(b.v.T, _tq(b.q)) if isinstance(b, C) else (b.of if isinstance(b, TView)
                                                              else TView(b))  # fmt: skip
        return self.matmul(node, a, b, c, alpha, beta)

    def op_MatMul(self, node, a, b):
        return self.matmul(node, a, b, None, 1.0, 1.0)

    def matmul(self, node, a, b, c, alpha, beta):
        if isinstance(a, C) and not isinstance(b, C):
            xa = self.const_tensor(node, a)
        else:
            xa = a
        if isinstance(xa, TView):
            raise self.node_err(node, "a transposed left operand")
        if isinstance(xa, DQ) or (isinstance(xa, C) and xa.q is not None and isinstance(b, DQ)):
            return self.int_matmul(node, xa, b, c, alpha, beta)
        return self.float_matmul(node, xa, b, c, alpha, beta)

    def const_tensor(self, node, a: C):
        """A constant left operand as a chip tensor (float, or int8 when quantised)."""
        v = a.v
        if v.ndim != 2:
            raise self.node_err(node, "a constant left operand of rank != 2")
        if a.q is not None:
            q, s, z, _ = a.q
            if np.size(s) != 1:
                raise self.node_err(node, "per-axis quantised left operand")
            dt = q.dtype.name
            t = self.new_tensor(node.name + ".A", (v.shape[0], 1, 1, v.shape[1]), "int8")
            raw = q.astype(np.int64) - (128 if dt == "uint8" else 0)
            self.consts.append((t, raw.reshape(v.shape[0], 1, 1, -1).astype(np.int8)))
            return DQ(I(t, v.shape, "2d", dt), float(np.asarray(s).reshape(-1)[0]),
                      int(np.asarray(z).reshape(-1)[0]))  # fmt: skip
        t = self.new_tensor(node.name + ".A", (v.shape[0], 1, 1, v.shape[1]), self.dtype)
        self.consts.append((t, _to_float_bits(v, self.dtype).reshape(v.shape[0], 1, 1, -1)))
        return F(t, v.shape, "2d")

    def rows_operand(self, node, x):
        """(tensor, kh, kw, perm) for the left operand: a flat view becomes a whole-image
        kernel; returns how to reorder weight rows from ONNX (c, h, w) order."""
        t = x.i.t if isinstance(x, DQ) else x.t
        view = x.i.view if isinstance(x, DQ) else x.view
        shape = x.i.shape if isinstance(x, DQ) else x.shape
        if len(shape) != 2 and view != "3d":
            raise self.node_err(node, f"left operand of rank {len(shape)}")
        if view == "flat":
            return t, t.h, t.w, (t.c, t.h, t.w)
        return t, 1, 1, None

    def weights_of(self, node, b, k, n, perm):
        """Constant B (k × n, real or quantised) as KH×KW×Cin×Cout."""
        if isinstance(b, C):
            if b.v.ndim != 2 or b.v.shape != (k, n):
                raise self.node_err(node, f"weights of shape {b.v.shape}, expected {(k, n)}")
            return b
        raise self.node_err(node, "B operand")

    def float_matmul(self, node, a, b, c, alpha, beta):
        fa = self.on_chip_float(a, node)
        t, kh, kw, perm = self.rows_operand(node, fa)
        m = fa.shape[0] if fa.view != "3d" else fa.shape[0] * fa.shape[1]
        k = int(np.prod(fa.shape[1:])) if fa.view != "3d" else fa.shape[2]
        if isinstance(b, C):
            w = b.v.astype(np.float32)
            if w.ndim != 2 or w.shape[0] != k:
                raise self.node_err(node, f"B of shape {w.shape} for K = {k}")
            n = w.shape[1]
            w4 = _kernel(w, perm)
            wt, wlist = None, [_to_float_bits(w4, self.dtype)]
        else:
            rb, trans = (b.of, True) if isinstance(b, TView) else (b, False)
            fb = self.on_chip_float(rb, node)
            if len(fb.shape) != 2 or perm is not None:
                raise self.node_err(node, "runtime B must be 2-D")
            kk, n = fb.shape[::-1] if trans else fb.shape
            if kk != k:
                raise self.node_err(node, f"K mismatch {kk} vs {k}")
            wt, wlist = (fb.t, trans), [np.zeros((1, 1, k, n), np.uint16)]
        bias = np.zeros(n, np.float32)
        if c is not None:
            bias = (beta * np.broadcast_to(self.const(node.input[2], node).v, (m, n))).astype(
                np.float32
            )
            if not np.all(bias == bias[0]):  # a full matrix: added by the vector engine
                full_c, bias = bias, np.zeros(n, np.float32)
            else:
                full_c, bias = None, bias[0]
        else:
            full_c = None
        y = self.new_tensor(node.output[0], (m, 1, 1, n), self.dtype)
        post = Post(bias, np.full(n, alpha, np.float32), np.zeros(n, np.int64))
        shape = (m, n) if fa.view != "3d" else (fa.shape[0], fa.shape[1], n)
        self.layers.append(MatLayer(node.name or y.name, t, y, wlist, post, kh, kw,
                                    dtype=self.dtype, w_tensor=wt, ops=node.op_type))  # fmt: skip
        if full_c is not None:
            ct = self.new_tensor(node.name + ".C", (m, 1, 1, n), self.dtype)
            self.consts.append((ct, _to_float_bits(full_c, self.dtype).reshape(m, 1, 1, n)))
            y2 = self.new_tensor(node.output[0] + ".sum", (m, 1, 1, n), self.dtype)
            post2 = Post(np.zeros(n, np.float32), np.ones(n, np.float32), np.zeros(n, np.int64))
            self.layers.append(VecLayer((node.name or y.name) + ".C", "add", y, y2, post2, b=ct,
                                        in_type=self.dtype, ops="Gemm C"))  # fmt: skip
            y = y2
        return F(y, shape, "3d" if fa.view == "3d" else "2d")

    def int_matmul(self, node, a: DQ, b, c, alpha, beta):
        t, kh, kw, perm = self.rows_operand(node, a)
        shape = a.i.shape
        m = shape[0] if a.i.view != "3d" else shape[0] * shape[1]
        k = int(np.prod(shape[1:])) if a.i.view != "3d" else shape[2]
        wt = None
        if isinstance(b, C) and b.q is not None:
            q, sw, zw, axis = b.q
            if q.ndim != 2 or q.shape[0] != k:
                raise self.node_err(node, f"B of shape {q.shape} for K = {k}")
            n = q.shape[1]
            if np.size(sw) > 1:
                sw = np.broadcast_to(np.asarray(sw, np.float64).reshape(-1), (n,))
            else:
                sw = np.full(n, float(np.asarray(sw).reshape(-1)[0]))
            if np.size(b.q[1]) > 1 and axis not in (1, -1):
                raise self.node_err(node, "weights quantised along K")
            weff = q.astype(np.int64) - _bcast(zw, q, axis)
        elif isinstance(b, (DQ, TView)):
            rb, trans = (b.of, True) if isinstance(b, TView) else (b, False)
            if not isinstance(rb, DQ) or perm is not None:
                raise self.node_err(node, "runtime B must be a dequantised 2-D tensor")
            kk, n = rb.i.shape[::-1] if trans else rb.i.shape
            if kk != k:
                raise self.node_err(node, f"K mismatch {kk} vs {k}")
            if rb.chip_zp != 0:
                raise self.node_err(node, "runtime B with a non-zero zero point")
            wt = (rb.i.t, trans)
            sw, weff = np.full(n, rb.scale), None
        else:
            raise self.node_err(node, "B must be a quantised constant or tensor")
        bias_real = None
        if c is not None:
            cv = self.const(node.input[2], node)
            bias_real = beta * np.broadcast_to(cv.v.astype(np.float64), (m, n))
            if not np.all(bias_real == bias_real[0]):
                raise self.node_err(node, "C that varies along M")
            bias_real = bias_real[0]
            bias_exact = None
            if cv.q is not None and cv.q[0].dtype == np.int32 and beta == 1.0:
                zc = _bcast(cv.q[2], cv.q[0], 0)
                bias_exact = np.broadcast_to(cv.q[0].astype(np.int64) - zc, (n,))
        else:
            bias_exact = np.zeros(n, np.int64)
        imp = self

        class Make:
            extra = np.zeros(n)

            def bias_add(self, vec):
                Make.extra = Make.extra + vec

            def __call__(self, sy, zy, relu):
                acc_scale = a.scale * sw * alpha
                if bias_exact is not None and not np.any(Make.extra):
                    bias = bias_exact.copy()
                else:
                    real = (bias_real if bias_real is not None else 0) + Make.extra
                    bias = np.round(np.broadcast_to(real, (n,)) / acc_scale).astype(np.int64)
                if weff is not None:
                    bias = bias - a.chip_zp * weff.sum(axis=0)
                    ws = _split_int8(_kernel(weff, perm), node, imp)
                else:
                    ws = [np.zeros((1, 1, k, n), np.int8)]
                mult = [multiplier(float(v)) for v in acc_scale / sy]
                post = Post(bias, np.array([x for x, _ in mult]), np.array([s for _, s in mult]),
                            zy, relu)  # fmt: skip
                y = imp.new_tensor(node.output[0], (m, 1, 1, n), "int8")
                return MatLayer(node.name or y.name, t, y, ws, post, kh, kw, w_tensor=wt,
                                ops=node.op_type)  # fmt: skip

        out_shape = (m, n) if a.i.view != "3d" else (shape[0], shape[1], n)
        return Pend(Make(), out_shape, "3d" if a.i.view == "3d" else "2d", (m, 1, 1, n), False,
                    node.op_type)  # fmt: skip

    # -- convolution and pooling --
    def conv_geometry(self, node, shape, kshape):
        n, c, h, w = shape
        kh, kw = kshape
        strides = tuple(_attr(node, "strides", [1, 1]))
        dil = tuple(_attr(node, "dilations", [1, 1]))
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        auto = _attr(node, "auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
            raise self.node_err(node, "only 2-D spatial operations are supported")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s, d in ((h, kh, strides[0], dil[0]), (w, kw, strides[1], dil[1])):
                total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
                lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
                pads.append((lo, total - lo))
            pads = [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        # ONNX pads: (y_begin, x_begin, y_end, x_end) -> ours: top, left, bottom, right
        top, left, bottom, right = pads
        oh = (h + top + bottom - dil[0] * (kh - 1) - 1) // strides[0] + 1
        ow = (w + left + right - dil[1] * (kw - 1) - 1) // strides[1] + 1
        if _attr(node, "ceil_mode", 0):
            oh2 = -(-(h + top + bottom - dil[0] * (kh - 1) - 1) // strides[0]) + 1
            ow2 = -(-(w + left + right - dil[1] * (kw - 1) - 1) // strides[1]) + 1
            if (oh2 - 1) * strides[0] >= h + top:
                oh2 -= 1
            if (ow2 - 1) * strides[1] >= w + left:
                ow2 -= 1
            bottom += (oh2 - oh) * strides[0]
            right += (ow2 - ow) * strides[1]
            oh, ow = oh2, ow2
        if oh < 1 or ow < 1:
            raise self.node_err(node, "empty output")
        return (top, left, bottom, right), strides, dil, oh, ow

    def spatial_in(self, node, x):
        shape = x.shape
        view = x.view
        if view != "nchw":
            raise self.node_err(node, f"input of shape {shape} (expected N×C×H×W)")
        return shape

    def op_Conv(self, node, x, w, b=None):
        if _attr(node, "group", 1) != 1:
            raise self.node_err(node, f"group={_attr(node, 'group', 1)} (only 1)")
        if isinstance(x, (HostIn, F)):
            x = self.on_chip_float(x, node)
        shape = self.spatial_in(node, x)
        wc = self.const(node.input[1], node)
        co, ci, kh, kw = wc.v.shape
        if ci != shape[1]:
            raise self.node_err(node, f"weights for {ci} channels, input has {shape[1]}")
        pads, st, dil, oh, ow = self.conv_geometry(node, shape, (kh, kw))
        geom = (shape[0], oh, ow, co)
        out_shape = (shape[0], co, oh, ow)
        if isinstance(x, DQ):
            if wc.q is None:
                raise self.node_err(node, "float weights with a quantised input")
            q, sw, zw, axis = wc.q
            weff = q.astype(np.int64) - _bcast(zw, q, axis if np.size(zw) > 1 else 0)
            sw = np.broadcast_to(np.asarray(sw, np.float64).reshape(-1), (co,))
            bias_q = None
            if b is not None:
                bq = self.const(node.input[2], node)
                if bq.q is not None and bq.q[0].dtype == np.int32:
                    bias_q = bq.q[0].astype(np.int64) - _bcast(bq.q[2], bq.q[0], 0)
                else:
                    bias_q = bq.v.astype(np.float64)
            return self.pend_conv(node, x, weff, sw, bias_q, pads, st, dil, geom, out_shape)
        f = x
        self.pad_request(f.t, pads, 0, node)
        w4 = np.transpose(wc.v.astype(np.float32), (2, 3, 1, 0))  # KH KW Ci Co
        bias = np.zeros(co, np.float32) if b is None else self.const(node.input[2], node).v
        y = self.new_tensor(node.output[0], geom, self.dtype)
        post = Post(np.asarray(bias, np.float32), np.ones(co, np.float32), np.zeros(co, np.int64))
        self.layers.append(MatLayer(node.name or y.name, f.t, y, [_to_float_bits(w4, self.dtype)],
                                    post, kh, kw, st, dil, tuple(pads), dtype=self.dtype,
                                    ops="Conv"))  # fmt: skip
        return F(y, out_shape, "nchw")

    def pend_conv(self, node, x: DQ, weff, sw, bias, pads, st, dil, geom, out_shape,
                  depthwise=False, count=1):  # fmt: skip
        t = x.i.t
        self.pad_request(t, pads, x.chip_zp, node)
        imp = self
        co = geom[3]
        kh, kw = (weff.shape[2], weff.shape[3]) if not depthwise else weff.shape[:2]

        class Make:
            extra = np.zeros(co)

            def bias_add(self, vec):
                Make.extra = Make.extra + vec

            def __call__(self, sy, zy, relu):
                acc_scale = x.scale * sw / count
                if bias is None:
                    bq = np.zeros(co, np.int64)
                elif bias.dtype == np.int64:
                    bq = bias.copy()
                else:
                    bq = np.round(bias / acc_scale).astype(np.int64)
                if np.any(Make.extra):
                    bq = bq + np.round(Make.extra / acc_scale).astype(np.int64)
                if depthwise:
                    ws = [np.asarray(weff, np.int8)]
                    bq = bq - x.chip_zp * int(weff.sum(axis=(0, 1))[0])
                else:
                    bq = bq - x.chip_zp * weff.sum(axis=(1, 2, 3))
                    ws = _split_int8(np.transpose(weff, (2, 3, 1, 0)), node, imp)
                mult = [multiplier(float(v)) for v in acc_scale / sy]
                post = Post(bq, np.array([m for m, _ in mult]), np.array([s for _, s in mult]),
                            zy, relu)  # fmt: skip
                y = imp.new_tensor(node.output[0], geom, "int8")
                return MatLayer(node.name or y.name, t, y, ws, post, kh, kw, st, dil,
                                tuple(pads), depthwise=depthwise, ops=node.op_type)  # fmt: skip

        return Pend(Make(), out_shape, "nchw", geom, False, node.op_type)

    def op_MaxPool(self, node, x):
        if _attr(node, "storage_order", 0):
            raise self.node_err(node, "storage_order=1")
        self.spatial_in(node, x)
        kh, kw = self.kernel(node)
        if isinstance(x, (HostIn, F)):
            x = self.on_chip_float(x, node)
        shape = self.spatial_in(node, x)
        pads, st, dil, oh, ow = self.conv_geometry(node, shape, (kh, kw))
        n, c = shape[0], shape[1]
        geom = (n, oh, ow, c)
        raw = isinstance(x, I)
        t = x.i.t if isinstance(x, DQ) else x.t
        fp = not isinstance(x, (DQ, I))
        lowest = {"bf16": 0xFF80, "fp16": 0xFC00}.get(self.dtype, 0) if fp else -128
        self.pad_request(t, pads, lowest, node)
        y = self.new_tensor(node.output[0], geom, t.etype)
        one = np.ones(c, np.float32) if fp else np.ones(c, np.int64)
        post = Post(np.zeros(c, one.dtype), one, np.zeros(c, np.int64))
        self.layers.append(VecLayer(node.name or y.name, "max", t, y, post, kh=kh, kw=kw,
                                    stride=st, dilation=dil, pads=tuple(pads),
                                    in_type=t.etype, ops="MaxPool"))  # fmt: skip
        if fp:
            return F(y, (n, c, oh, ow), "nchw")
        if raw:
            return I(y, (n, c, oh, ow), "nchw", x.onnx_dtype)
        return DQ(I(y, (n, c, oh, ow), "nchw", x.i.onnx_dtype), x.scale, x.zp)

    def kernel(self, node):
        k = list(_attr(node, "kernel_shape", []))
        if len(k) != 2:
            raise self.node_err(node, f"a {len(k)}-D window (only 2-D)")
        return k

    def op_AveragePool(self, node, x):
        self.spatial_in(node, x if not isinstance(x, HostIn) else HostIn(x.name, x.shape))
        return self.avgpool(node, x, tuple(self.kernel(node)))

    def op_GlobalAveragePool(self, node, x):
        shape = self.spatial_in(node, x if not isinstance(x, HostIn) else
                                self.on_chip_float(x, node))  # fmt: skip
        return self.avgpool(node, x, (shape[2], shape[3]), global_=True)

    def avgpool(self, node, x, k, global_=False):
        if isinstance(x, (HostIn, F)):
            x = self.on_chip_float(x, node)
        shape = self.spatial_in(node, x)
        if global_:
            pads, st, dil, oh, ow = (0, 0, 0, 0), (1, 1), (1, 1), 1, 1
        else:
            pads, st, dil, oh, ow = self.conv_geometry(node, shape, k)
            if any(pads) and not _attr(node, "count_include_pad", 0):
                raise self.node_err(node, "padding with count_include_pad=0 (the divisor "
                                    "varies with the position)")  # fmt: skip
            if _attr(node, "ceil_mode", 0) and (oh, ow) != self.conv_geometry(
                    _no_ceil(node), shape, k)[3:]:  # fmt: skip
                raise self.node_err(node, "ceil_mode=1 windows past the edge")
        n, c = shape[0], shape[1]
        kh, kw = k
        count = kh * kw
        geom = (n, oh, ow, c)
        out_shape = (n, c, oh, ow)
        if isinstance(x, DQ):
            ones = np.ones((kh, kw, c), np.int64)
            return self.pend_conv(node, x, ones, np.ones(c), None, pads, st, dil, geom,
                                  out_shape, depthwise=True, count=count)  # fmt: skip
        self.pad_request(x.t, pads, 0, node)
        y = self.new_tensor(node.output[0], geom, self.dtype)
        post = Post(np.zeros(c, np.float32), np.full(c, 1.0 / count, np.float32),
                    np.zeros(c, np.int64))  # fmt: skip
        w = _to_float_bits(np.ones((kh, kw, c), np.float32), self.dtype)
        self.layers.append(MatLayer(node.name or y.name, x.t, y, [w], post, kh, kw, st, dil,
                                    tuple(pads), depthwise=True, dtype=self.dtype,
                                    ops=node.op_type))  # fmt: skip
        return F(y, out_shape, "nchw")

    # -- integer operators --
    def op_MatMulInteger(self, node, a, b, za=None, zb=None):
        return self.integer_op(node, "MatMul", a, b, za, zb)

    def op_ConvInteger(self, node, x, w, zx=None, zw=None):
        return self.integer_op(node, "Conv", x, w, zx, zw)

    def integer_op(self, node, kind, a, b, za, zb):
        """int32 results (PSUM_STORE): the integer layer with scale 1, stored from PSUM."""
        if not isinstance(a, I):
            raise self.node_err(node, "the first input must be an int8/uint8 tensor")
        zin = self.const(node.input[2], node).v if za is not None else np.zeros((), np.int64)
        if np.size(zin) != 1:
            raise self.node_err(node, "per-row zero points of the first input")
        da = DQ(a, 1.0, int(np.asarray(zin).reshape(-1)[0]))
        wc = self.const(node.input[1], node)
        zw = self.const(node.input[3], node).v if zb is not None else np.zeros((), np.int64)
        axis = 1 if kind == "MatMul" else 0
        if np.size(zw) > 1 and kind == "MatMul":
            zw = np.asarray(zw).reshape(1, -1)
        q = wc.v
        wq = C(q.astype(np.float32), (q, np.float64(1.0), zw, axis))
        self.env["__int_w"] = wq
        self.env["__int_x"] = da
        fake = helper.make_node(kind, ["__int_x", "__int_w"], [node.output[0]],
                                name=node.name or kind.lower() + "integer")  # fmt: skip
        fake.attribute.extend(node.attribute)
        pend = self.op_Conv(fake, da, wq) if kind == "Conv" else self.matmul(fake, da, wq, None,
                                                                            1.0, 1.0)  # fmt: skip
        layer = pend.make(1.0, 0, False)
        old = layer.y
        y = self.new_tensor(node.output[0], (old.n, old.h, old.w, old.c), "int32")
        self.tensors.remove(old)
        layer.y = y
        layer.ops = node.op_type
        if np.any(layer.post.bias):  # Σ (a − za)·w = Σ a'·w − za'·Σw: added in PSUM
            layer.acc_bias = np.asarray(layer.post.bias, np.int64)
        self.layers.append(layer)
        return IntOut(y, pend.shape, pend.view)

    def op_QLinearMatMul(self, node, a, sa, za, b, sb, zb, sy, zy):
        da = self.dq_of(node, a, 1, 2)
        db = self.dq_const_or(node, b, 4, 5, 1)
        pend = self.matmul(node, da, db, None, 1.0, 1.0)
        return self.quantize_pend(node, pend, 6, 7)

    def op_QLinearConv(self, node, x, sx, zx, w, sw, zw, sy, zy, b=None):
        dx = self.dq_of(node, x, 1, 2)
        wq = self.dq_const_or(node, w, 4, 5, 0)
        if b is not None:
            bq = self.const(node.input[8], node).v
            scale = np.asarray(self.const(node.input[1], node).v, np.float64) * \
                np.asarray(self.const(node.input[4], node).v, np.float64)  # fmt: skip
            self.env["__qlc_bias"] = C(bq * scale, (bq, scale, np.zeros((), np.int32), 0))
            node_b = "__qlc_bias"
        else:
            node_b = None
        self.env["__qlc_w"] = wq
        self.env["__qlc_x"] = dx
        fake = helper.make_node("Conv", ["__qlc_x", "__qlc_w"] + ([node_b] if node_b else []),
                                [node.output[0]], name=node.name or "qlinearconv")  # fmt: skip
        fake.attribute.extend(node.attribute)
        pend = self.op_Conv(fake, dx, wq, self.env.get(node_b) if node_b else None)
        pend.ops = "QLinearConv"
        return self.quantize_pend(node, pend, 6, 7)

    def dq_of(self, node, x, si, zi):
        if not isinstance(x, I):
            raise self.node_err(node, "input must be an int8/uint8 tensor")
        s = self.const(node.input[si], node).v
        z = self.const(node.input[zi], node).v if len(node.input) > zi and node.input[zi] \
            else np.zeros((), np.int64)  # fmt: skip
        if np.size(s) != 1 or np.size(z) != 1:
            raise self.node_err(node, "per-axis quantisation of activations")
        return DQ(x, float(np.asarray(s).reshape(-1)[0]), int(np.asarray(z).reshape(-1)[0]))

    def dq_const_or(self, node, w, si, zi, axis):
        if isinstance(w, I):
            return self.dq_of(node, w, si, zi)
        wc = self.const(node.input[si - 1], node)
        s = self.const(node.input[si], node).v
        z = self.const(node.input[zi], node).v if len(node.input) > zi and node.input[zi] \
            else np.zeros((), np.int64)  # fmt: skip
        q = wc.v
        real = (q.astype(np.int64) - _bcast(z, q, axis)) * _bcast(s, q, axis)
        return C(real.astype(np.float32), (q, s, z, axis))

    def quantize_pend(self, node, pend, si, zi):
        if not isinstance(pend, Pend):
            raise self.node_err(node, "integer inputs expected")
        s = float(np.asarray(self.const(node.input[si], node).v).reshape(-1)[0])
        zc = self.const(node.input[zi], node).v
        zdt = zc.dtype.name
        z = int(np.asarray(zc).reshape(-1)[0]) - (128 if zdt == "uint8" else 0)
        layer = pend.make(s, z, pend.relu)
        layer.ops = node.op_type
        self.layers.append(layer)
        return I(layer.y, pend.shape, pend.view, zdt)


# -- helpers -------------------------------------------------------------------------------------


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _named(output):
    return helper.make_node("Transpose", ["x"], [output], name=output)


def _no_ceil(node):
    n = onnx.NodeProto()
    n.CopyFrom(node)
    for a in n.attribute:
        if a.name == "ceil_mode":
            a.i = 0
    return n


def _geom(t: Tensor):
    return t.n, t.h, t.w, t.c


def _with_shape(x, shape, view):
    if isinstance(x, DQ):
        return DQ(I(x.i.t, shape, view, x.i.onnx_dtype), x.scale, x.zp)
    if isinstance(x, I):
        return I(x.t, shape, view, x.onnx_dtype)
    if isinstance(x, F):
        return F(x.t, shape, view)
    if isinstance(x, Pend):
        x.shape, x.view = shape, view
        return x
    raise Unsupported(f"reshape of a {type(x).__name__}")


def _bcast(v, q, axis):
    v = np.asarray(v)
    if v.ndim == 0 or v.size == 1:
        return v.reshape(()).astype(np.float64 if v.dtype.kind == "f" else np.int64)
    shape = [1] * q.ndim
    shape[axis] = v.size
    return v.reshape(shape).astype(np.float64 if v.dtype.kind == "f" else np.int64)


def _tq(q):
    if q is None:
        return None
    ints, s, z, axis = q
    return ints.T, s, z, (1 - axis) if np.size(s) > 1 else axis


def _kernel(w2, perm):
    """K × N weights as KH×KW×Cin×Cout; ``perm`` = (C, H, W) for a flattened image."""
    if perm is None:
        return w2.reshape(1, 1, *w2.shape)
    c, h, w = perm
    return np.transpose(w2.reshape(c, h, w, -1), (1, 2, 0, 3))


def _split_int8(w, node, imp):
    """Integer weights as one int8 array, or two whose sum they are (|w| ≤ 255)."""
    w = np.asarray(w, np.int64)
    if w.min() >= -128 and w.max() <= 127:
        return [w.astype(np.int8)]
    if w.min() < -256 or w.max() > 254:
        raise imp.node_err(node, "weights beyond two int8 terms after the zero point")
    a = np.clip(w, -128, 127)
    return [a.astype(np.int8), (w - a).astype(np.int8)]


def _channel_vec(v, x, node, imp):
    """A constant added to a tensor, as one value per channel."""
    v = np.asarray(v, np.float64)
    shape = x.shape if not isinstance(x, DQ) else x.i.shape
    view = x.view if not isinstance(x, DQ) else x.i.view
    c = shape[1] if view == "nchw" else shape[-1]
    if v.size == 1:
        return np.full(c, float(v.reshape(-1)[0]))
    if view == "nchw":
        ok = v.ndim <= 4 and v.size == c and (v.shape[-3:] == (c, 1, 1) if v.ndim >= 3 else False)
    else:
        ok = v.shape[-1] == c and v.size == c
    if not ok:
        raise imp.node_err(node, f"adding a constant of shape {v.shape} (only per-channel)")
    return v.reshape(-1)


def _to_float_bits(v, dtype):
    v = np.asarray(v, np.float32)
    if dtype == "bf16":
        return v.astype(ml_dtypes.bfloat16).view(np.uint16)
    return v.astype(np.float16).view(np.uint16)


def import_model(model, *, dtype: str = "bf16", shapes: dict | None = None) -> Net:
    """Import an ONNX model (path, bytes or ``ModelProto``). ``dtype``: the float type of
    float layers ("bf16" or "fp16"); ``shapes``: concrete shapes of graph inputs (symbolic
    dimensions default to 1)."""
    if dtype not in ("bf16", "fp16"):
        raise ValueError(f"dtype must be bf16 or fp16, not {dtype!r}")
    if isinstance(model, (str, bytes)) and not isinstance(model, onnx.ModelProto):
        try:
            model = onnx.load(model) if isinstance(model, str) else onnx.load_from_string(model)
        except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
            raise Unsupported(f"cannot read the ONNX model: {e}") from None
    imp = _Importer(model, dtype, dict(shapes or {}))
    net = imp.run()
    net.info["opset"] = [(o.domain, o.version) for o in model.opset_import]
    return net
