"""The compiler's intermediate form: chip tensors in DRAM and the layers that connect them.

An ONNX graph is imported (:mod:`ncore.compiler.onnx_import`) into a :class:`Net`: a list of
:class:`Tensor` buffers in DRAM and a list of layers in execution order, each one of the
kernels the code generator (:mod:`ncore.compiler.codegen`) knows:

* :class:`MatLayer` — ``y[n, oy, ox, :] = post(Σ_{kh, kw, ci} x[n, oy·s + kh·d − pt,
  ox·s + kw·d − pl, ci] · w[kh, kw, ci, :])``: Gemm, MatMul, Conv, the QLinear/Integer
  variants, AveragePool and GlobalAveragePool (diagonal weights), and a Gemm after Flatten
  (a kernel as large as the image). Runs on the tensor engine, accumulating in PSUM.
* :class:`VecLayer` — the vector engine over SBUF rows: max-pool (a chain of ACT MAX over
  the taps), elementwise Add (ACT ADD) and requantising copies (Relu, QuantizeLinear of a
  tensor with other parameters).

Every activation tensor lives in DRAM in a *blocked* layout ``[ct][N][Hp][Wp][B]``: channel
tiles of ``B = min(rows, cols)`` lanes (the channel tile of a core), images, the rows and
columns of the image with its padding, and the lanes. A pixel's ``B`` lanes are one SBUF entry
(channels on partitions), so a band of image rows is one contiguous DMA transfer, and a
layer's output tile is exactly the next layer's input tile. 2-D tensors ``(M, F)`` are images
of one pixel (``N = M``, ``H = W = 1``). Padding (the largest any consumer asks for) is part of
the buffer and holds the consumer's pad value (the zero point for convolutions, the minimum for
max-pooling), written into the initial DRAM image; producers write only the interior.

Numbers: int8 tensors are int8 on the chip (uint8 ONNX tensors are stored as ``q − 128`` with
zero point ``zp − 128``: the same real values, converted at the chip's boundary); float tensors
are bf16 or fp16 bit patterns. ``Post`` is the output stage of a layer (the vector engine's
requantisation, or fp32 scale and bias to bf16/fp16).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ELEM_BYTES", "MatLayer", "Net", "Post", "Tensor", "Unsupported", "VecLayer"]

#: Bytes per element of each on-chip element type.
ELEM_BYTES = {"int8": 1, "bf16": 2, "fp16": 2, "int32": 4}


class Unsupported(ValueError):
    """The model uses an operator, attribute or shape the compiler cannot lower exactly."""


@dataclass
class Tensor:
    """An activation tensor in DRAM (``N × H × W × C``, blocked; see the module docstring)."""

    name: str
    n: int
    h: int
    w: int
    c: int
    etype: str  #: "int8", "bf16", "fp16" (or "int32" for PSUM results, row-major)
    scale: float = 1.0  #: int8: real value = scale · (q − zero_point)
    zero_point: int = 0  #: int8 zero point as stored on the chip (int8 range)
    pads: list = field(default_factory=lambda: [0, 0, 0, 0])  #: top, left, bottom, right
    pad_value: int | None = None  #: raw element bits of the padding
    addr: int = -1
    block: int = 8
    #: ONNX view: "nchw" (4-D), "2d" (M × F), "3d" ((B·M) × F from B × M × F)
    view: str = "2d"
    onnx_shape: tuple = ()
    onnx_dtype: str = "float32"  #: element type at the boundary (host side)

    @property
    def ebytes(self) -> int:
        return ELEM_BYTES[self.etype]

    @property
    def hp(self) -> int:
        return self.h + self.pads[0] + self.pads[2]

    @property
    def wp(self) -> int:
        return self.w + self.pads[1] + self.pads[3]

    @property
    def ct(self) -> int:
        return -(-self.c // self.block)

    @property
    def nbytes(self) -> int:
        if self.etype == "int32":
            return self.n * self.h * self.w * self.c * 4
        return self.ct * self.n * self.hp * self.wp * self.block * self.ebytes

    def strides(self) -> tuple[int, int, int, int]:
        """Byte strides of (channel tile, image, padded row, padded column)."""
        eb, b = self.ebytes, self.block
        col = b * eb
        row = self.wp * col
        img = self.hp * row
        return self.n * img, img, row, col

    def offset(self, n: int, y: int, x: int, ct: int = 0) -> int:
        """Byte offset of lane 0 of pixel ``(y, x)`` (unpadded coordinates) of image ``n`` in
        channel tile ``ct``."""
        st, si, sr, sc = self.strides()
        return ct * st + n * si + (y + self.pads[0]) * sr + (x + self.pads[1]) * sc

    def raw_dtype(self):
        return {"int8": np.int8, "bf16": np.uint16, "fp16": np.uint16, "int32": np.int32}[
            self.etype
        ]

    def image(self) -> np.ndarray:
        """The buffer's initial contents (padding filled with ``pad_value``) as raw bytes."""
        if self.etype == "int32":
            return np.zeros(self.nbytes, np.uint8)
        buf = np.zeros((self.ct, self.n, self.hp, self.wp, self.block), self.raw_dtype())
        if self.pad_value is not None and any(self.pads):
            buf[...] = np.array(self.pad_value).astype(self.raw_dtype())
            pt, pl = self.pads[0], self.pads[1]
            buf[:, :, pt : pt + self.h, pl : pl + self.w, :] = 0
        return buf.view(np.uint8).reshape(-1)

    def pack(self, nhwc: np.ndarray, image: np.ndarray) -> None:
        """Write ``nhwc`` (raw element values) into the interior of the buffer in ``image``."""
        raw = np.ascontiguousarray(nhwc).astype(self.raw_dtype())
        if self.etype == "int32":
            image[self.addr : self.addr + self.nbytes] = raw.view(np.uint8).reshape(-1)
            return
        buf = image[self.addr : self.addr + self.nbytes].view(self.raw_dtype())
        buf = buf.reshape(self.ct, self.n, self.hp, self.wp, self.block)
        pt, pl = self.pads[0], self.pads[1]
        for t in range(self.ct):
            c0, c1 = t * self.block, min(self.c, (t + 1) * self.block)
            buf[t, :, pt : pt + self.h, pl : pl + self.w, : c1 - c0] = raw[..., c0:c1]

    def unpack(self, image: np.ndarray) -> np.ndarray:
        """The interior of the buffer as ``N × H × W × C`` raw element values."""
        data = np.asarray(image)[self.addr : self.addr + self.nbytes]
        if self.etype == "int32":
            return data.view(np.int32).reshape(self.n, self.h, self.w, self.c).copy()
        buf = data.view(self.raw_dtype()).reshape(self.ct, self.n, self.hp, self.wp, self.block)
        pt, pl = self.pads[0], self.pads[1]
        out = np.zeros((self.n, self.h, self.w, self.c), self.raw_dtype())
        for t in range(self.ct):
            c0, c1 = t * self.block, min(self.c, (t + 1) * self.block)
            out[..., c0:c1] = buf[t, :, pt : pt + self.h, pl : pl + self.w, : c1 - c0]
        return out


@dataclass
class Post:
    """A layer's output stage, per output channel.

    int8 outputs: ``sat8(func(sat32(round_half_even((acc + bias) · M / 2^shift))) + zp)``;
    float outputs: ``round(func(acc · scale + bias))`` to bf16/fp16 (fp32 arithmetic).
    ``func`` is ReLU when ``relu``."""

    bias: np.ndarray  #: int32 (int8 outputs) or float32
    scale: np.ndarray  #: int32 multiplier M, or float32 scale
    shift: np.ndarray  #: int (0…63); zeros for float outputs
    zero_point: int = 0
    relu: bool = False


@dataclass
class MatLayer:
    """A convolution-shaped matrix product on the tensor engine (see the module docstring)."""

    name: str
    x: Tensor
    y: Tensor
    #: KH × KW × Cin × Cout weights (raw: int8, or uint16 float bits), or a list of such
    #: arrays that all multiply ``x`` and accumulate (an int8 split of wider integers)
    w: list
    post: Post
    kh: int = 1
    kw: int = 1
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)  #: top, left, bottom, right (of x, in its own coordinates)
    depthwise: bool = False  #: weights are diagonal per channel tile (pooling)
    dtype: str = "int8"  #: tensor-engine element type
    #: runtime weights: ``(Tensor, transposed)`` — w[k, n] read from a 2-D chip tensor
    w_tensor: tuple | None = None
    ops: str = ""  #: the ONNX nodes this layer came from
    #: int32 outputs only: a per-channel constant added in PSUM (extra MATMULs of a constant
    #: SBUF row; :func:`ncore.compiler.codegen.bias_passes`)
    acc_bias: np.ndarray | None = None

    @property
    def macs(self) -> int:
        oh, ow = self.y.h, self.y.w
        cin = self.x.c if not self.depthwise else 1
        return len(self.w) * self.y.n * oh * ow * self.kh * self.kw * cin * self.y.c


@dataclass
class VecLayer:
    """A vector-engine layer: ``kind`` "max" (pooling window ``kh × kw``), "add" (``x + b``
    then ``post``), or "copy" (``post(x)``)."""

    name: str
    kind: str
    x: Tensor
    y: Tensor
    post: Post
    b: Tensor | None = None
    kh: int = 1
    kw: int = 1
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    in_type: str = "int8"
    ops: str = ""
    pre: Post | None = None  #: "add": rescales ``b`` to ``x``'s scale first (int8)

    @property
    def macs(self) -> int:
        return 0

    def posts(self) -> list:
        """Parameter sets the layer's ACT instructions load: ``post``, then ``pre``."""
        return [self.post] + ([self.pre] if self.pre is not None else [])


@dataclass
class Net:
    """An imported model: tensors, layers in execution order, and the graph's boundary."""

    tensors: list
    layers: list
    inputs: dict  #: ONNX input name → (Tensor, host conversion)
    outputs: dict  #: ONNX output name → (Tensor, host conversion)
    consts: list = field(default_factory=list)  #: constant tensors: (Tensor, nhwc raw values)
    dtype: str = "int8"  #: float element type ("bf16"/"fp16") or "int8"
    info: dict = field(default_factory=dict)
