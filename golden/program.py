"""A small assembler over :func:`ncore.isa.encode`, and builders of directed programs.

Assembler
    One function per instruction returns its 512-bit word: :func:`dma_load`,
    :func:`dma_store` (or :func:`dma` for a :class:`ncore.golden.dma.Descriptor`),
    :func:`loadw`, :func:`matmul`, :func:`act`, :func:`nop`, :func:`end`, and for the
    core-to-core links and the chip barrier :func:`send`, :func:`recv`, :func:`barrier`.
    Every one takes ``wait=`` / ``signal=`` (a semaphore number, or None). Patterns are
    ``(start, [(count, stride), …])`` with up to three dimensions, innermost first (missing
    ones are ``(1, 0)``); a pattern that follows another (MATMUL ``psum``, ACT ``b`` and
    ``dst``) is a start entry, which gets the dense strides ``(1, c0, c0·c1)`` of the
    pattern it follows, or ``(start, [s0, s1, s2])``. :class:`Program` collects words.

Directed programs
    :func:`gemm` (tiled GEMM, double-buffered), :func:`conv3x3` (shifted matmuls
    accumulating in PSUM), :func:`maxpool2x2` (ACT MAX over strided views) and :func:`mlp`
    (requantised layers chained through the SBUF) each return a :class:`Directed`: the
    program, a DRAM image with the inputs and the program, the layout of both, and the
    expected outputs computed in plain numpy (int64 matmuls and :func:`requantize`), except
    the FP GEMM, whose expectation is ``golden.tensor_engine.matmul`` per tile summed in PSUM
    order (there is no independent bit-exact fp reference).

    The requantisation of every int8 output is :func:`requantize`, per output channel ``c``:
    ``sat_int8(func(sat_int32(round_half_even((acc + bias[c]) · scale[c] / 2^shift[c])))
    + zero_point)`` with ``acc + bias`` wrapping modulo 2³² and ``func`` identity or ReLU.

    Synchronisation follows two rules that make a program safe whatever the engines'
    relative speed (and deadlock-free under in-order dispatch with any queue depth): every
    instruction is emitted after the instructions it waits on, and an instruction relies
    only on the completion of the instruction whose signal it takes, plus the start order of
    its own queue (an instruction starts only after every earlier one of its queue started).
    ``docs/core.md`` walks through the GEMM's semaphores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from .. import isa
from ..isa import Op
from ..params import DTYPE_CODE, NCoreParams
from . import core as gcore
from . import dma as gdma
from . import sbuf as gsbuf
from . import tensor_engine
from . import vector_engine as gve
from .fp import fp32_add

__all__ = [
    "Directed",
    "Program",
    "Region",
    "act",
    "barrier",
    "conv3x3",
    "dma",
    "dma_load",
    "dma_store",
    "dma_store_psum",
    "end",
    "gemm",
    "gemm_stationary",
    "loadw",
    "matmul",
    "maxpool2x2",
    "mlp",
    "nop",
    "recv",
    "requantize",
    "send",
]


# -- assembler ------------------------------------------------------------------------------


def _dims3(dims) -> list[tuple[int, int]]:
    dims = [(int(c), int(s)) for c, s in dims]
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"a pattern has 1 to 3 dimensions, not {len(dims)}")
    return dims + [(1, 0)] * (3 - len(dims))


def _pattern(x):
    """``(start, dims3)`` of a pattern given as ``(start, dims)`` or a ``dma.Pattern``."""
    if isinstance(x, gdma.Pattern):
        return x.start, list(x.dims)
    start, dims = x
    return int(start), _dims3(dims)


def _ap(x) -> tuple[dict, list[int]]:
    start, dims = _pattern(x)
    fields = {"start": start, "dims": [{"count": c, "stride": s} for c, s in dims]}
    return fields, [c for c, _ in dims]


def _follow(x, counts) -> dict:
    if isinstance(x, (int, np.integer)):
        strides = [1, counts[0], counts[0] * counts[1]]
        start = int(x)
    else:
        start, strides = x
        strides = [int(s) for s in strides] + [0] * (3 - len(strides))
    return {"start": start, "strides": [{"stride": s} for s in strides]}


def _header(wait, signal) -> dict:
    return {"wait_sem": wait, "signal_sem": signal}


def dma(desc: gdma.Descriptor, *, wait=None, signal=None) -> int:
    """A DMA instruction carrying ``desc``."""
    return isa.encode(Op.DMA, {"desc": desc.fields()}, **_header(wait, signal))


def dma_load(dram, sbuf, esize: int = 0, *, wait=None, signal=None) -> int:
    """DRAM → SBUF. ``dram``: byte addresses; ``sbuf``: linear element addresses
    (``entry << pbits | partition``); ``esize`` 0 (1 byte) or 1 (2 bytes)."""
    d, s = _pattern(dram), _pattern(sbuf)
    desc = gdma.load(gdma.Pattern(d[0], d[1]), gdma.Pattern(s[0], s[1]), esize)
    return dma(desc, wait=wait, signal=signal)


def dma_store(sbuf, dram, esize: int = 0, *, wait=None, signal=None) -> int:
    """SBUF → DRAM (patterns as :func:`dma_load`)."""
    d, s = _pattern(dram), _pattern(sbuf)
    desc = gdma.store(gdma.Pattern(s[0], s[1]), gdma.Pattern(d[0], d[1]), esize)
    return dma(desc, wait=wait, signal=signal)


def dma_store_psum(psum, dram, *, wait=None, signal=None) -> int:
    """PSUM → DRAM (``PSUM_STORE``): ``psum`` in linear PSUM addresses
    (``entry << cbits | column``, see :mod:`ncore.golden.psum`), ``dram`` in bytes; each
    element is a 32-bit PSUM word stored little-endian (so a contiguous DRAM side has
    stride 4). Order it after the MATMUL that wrote the entries with a semaphore."""
    d, s = _pattern(dram), _pattern(psum)
    desc = gdma.psum_store(gdma.Pattern(s[0], s[1]), gdma.Pattern(d[0], d[1]))
    return dma(desc, wait=wait, signal=signal)


def loadw(start: int, k: int, n: int, stride: int = 1, *, wait=None, signal=None) -> int:
    """Weights: column ``j < n`` is SBUF entry ``start + j·stride``, partitions ``< k``."""
    fields = {"start": start, "stride": stride, "k": k, "n": n}
    return isa.encode(Op.LOADW, fields, **_header(wait, signal))


def matmul(
    mov, k: int, n: int, psum=0, *, dtype="int8", accumulate=False, wait=None, signal=None
) -> int:
    """Rows of the SBUF pattern ``mov`` through the loaded weights into PSUM ``psum``."""
    mov_f, counts = _ap(mov)
    code = DTYPE_CODE[dtype] if isinstance(dtype, str) else int(dtype)
    fields = {
        "dtype": code,
        "accumulate": int(bool(accumulate)),
        "k": k,
        "n": n,
        "mov": mov_f,
        "psum": _follow(psum, counts),
    }
    return isa.encode(Op.MATMUL, fields, **_header(wait, signal))


def _code(enum, v) -> int:
    return int(enum[v.upper()]) if isinstance(v, str) else int(v)


def act(
    src,
    dst,
    n: int,
    *,
    b=None,
    src_psum: bool = False,
    params: int | None = None,
    op="act",
    in_type="int32",
    out_type="int8",
    func="identity",
    saturate: int = 0,
    zero_point: int = 0,
    clamp_lo: int = 0,
    clamp_hi: int = 0,
    wait=None,
    signal=None,
) -> int:
    """Vector engine over the rows of ``src`` (PSUM entries with ``src_psum``, else SBUF);
    ``b`` (SBUF, for ADD/MAX) and ``dst`` (SBUF) follow it. ``params``: the SBUF entry to
    load per-lane scale/bias/shift from first (None: keep the current ones)."""
    src_f, counts = _ap(src)
    config = {
        "op": _code(gve.Op, op),
        "in_type": _code(gve.VType, in_type),
        "out_type": _code(gve.VType, out_type),
        "func": _code(gve.Func, func),
        "saturate": saturate,
        "zero_point": zero_point,
        "clamp_lo": clamp_lo & 0xFFFF_FFFF,
        "clamp_hi": clamp_hi & 0xFFFF_FFFF,
    }
    fields = {
        "config": config,
        "src_psum": int(bool(src_psum)),
        "load_params": int(params is not None),
        "n": n,
        "params": 0 if params is None else params,
        "src": src_f,
        "b": _follow((0, [0, 0, 0]) if b is None else b, counts),
        "dst": _follow(dst, counts),
    }
    return isa.encode(Op.ACT, fields, **_header(wait, signal))


def nop(*, wait=None, signal=None) -> int:
    return isa.encode(Op.NOP, **_header(wait, signal))


def end(*, wait=None, signal=None) -> int:
    return isa.encode(Op.END, **_header(wait, signal))


def send(src, n: int, *, wait=None, signal=None) -> int:
    """Push one row per element of the SBUF pattern ``src`` into the link to the next core:
    partitions ``< n`` of the entry, the rest 0."""
    src_f, _ = _ap(src)
    return isa.encode(Op.SEND, {"n": n, "src": src_f}, **_header(wait, signal))


def recv(dst, n: int, *, wait=None, signal=None) -> int:
    """Pop one row per element of the SBUF pattern ``dst`` from the link from the previous
    core into partitions ``< n`` of the entry."""
    dst_f, _ = _ap(dst)
    return isa.encode(Op.RECV, {"n": n, "dst": dst_f}, **_header(wait, signal))


def barrier(mask: int = 0, *, wait=None, signal=None) -> int:
    """Chip barrier of the cores in ``mask`` (bit k: core k; 0: every core)."""
    return isa.encode(Op.BARRIER, {"mask": mask}, **_header(wait, signal))


class Program:
    """A list of instruction words."""

    def __init__(self, words=()):
        self.words: list[int] = [int(w) for w in words]

    def add(self, *words: int) -> int:
        """Append words; returns the index of the first."""
        i = len(self.words)
        self.words.extend(int(w) for w in words)
        return i

    def image(self) -> bytes:
        return isa.to_bytes(self.words)

    def __len__(self):
        return len(self.words)

    def __iter__(self):
        return iter(self.words)

    def __getitem__(self, i):
        return self.words[i]


# -- directed programs: common parts ----------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Where a tensor lives. ``space="dram"``: row-major at byte ``addr`` (little-endian).
    ``space="psum"``: element ``(m, c)`` of an ``M × N`` result is PSUM partition
    ``c mod tile``, entry ``addr + (c // tile)·M + m``; ``dtype`` int32 or uint32 (fp32 bits)."""

    addr: int
    shape: tuple
    dtype: str
    space: str = "dram"
    tile: int = 0

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize

    def read(self, dram=None, psum=None) -> np.ndarray:
        if self.space == "dram":
            raw = np.asarray(dram, dtype=np.uint8)[self.addr : self.addr + self.nbytes]
            return raw.view(self.dtype).reshape(self.shape).copy()
        m, n = self.shape
        out = np.zeros((m, n), dtype=np.uint32)
        for t in range(-(-n // self.tile)):
            w = min(self.tile, n - t * self.tile)
            e = self.addr + t * m
            out[:, t * self.tile : t * self.tile + w] = psum[:w, e : e + m].T
        return out.view(self.dtype)


@dataclass
class Directed:
    """A directed program with its DRAM image and expected outputs."""

    name: str
    params: NCoreParams
    program: Program
    dram: np.ndarray  #: initial DRAM: inputs, and the program at ``program_base``
    program_base: int
    layout: dict  #: name → :class:`Region`
    expected: dict  #: output name → array
    info: dict = field(default_factory=dict)  #: tiling choices, for reports

    def outputs(self, dram, psum=None) -> dict:
        """Each expected output read back from final DRAM (and PSUM) contents."""
        return {k: self.layout[k].read(dram, psum) for k in self.expected}

    def run(self, **kwargs) -> gcore.Core:
        """Run on the ISS, fetching the program from DRAM as the hardware does."""
        core = gcore.Core(self.params, self.dram)
        core.run(program_base=self.program_base, program_len=len(self.program), **kwargs)
        return core


class _Dram:
    """Bump allocator for a DRAM image."""

    def __init__(self, base: int = 0):
        self.layout: dict[str, Region] = {}
        self.data: list[tuple[int, bytes]] = []
        self.top = base

    def alloc(self, name, shape, dtype, value=None, align=64) -> Region:
        addr = -(-self.top // align) * align
        r = Region(addr, tuple(shape), np.dtype(dtype).name)
        self.layout[name] = r
        self.top = addr + r.nbytes
        if value is not None:
            self.data.append((addr, np.ascontiguousarray(value, dtype=dtype).tobytes()))
        return r

    def finish(self, program: Program, slack: int = 64) -> tuple[np.ndarray, int]:
        base = -(-self.top // isa.WORD_BYTES) * isa.WORD_BYTES
        image = program.image()
        self.layout["program"] = Region(base, (len(program),), "uint8")
        size = -(-(base + len(image) + slack) // 4096) * 4096
        dram = np.zeros(size, dtype=np.uint8)
        for addr, raw in self.data + [(base, image)]:
            dram[addr : addr + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        return dram, base


class _Sems:
    """Names for semaphores, numbered in order of first use."""

    def __init__(self, params: NCoreParams, *names):
        if len(names) > params.semaphores:
            raise ValueError(f"needs {len(names)} semaphores, the core has {params.semaphores}")
        for i, n in enumerate(names):
            setattr(self, n, i)


class _Fence:
    """DMA loads that run one after another (each waits for the previous one's signal),
    so the last one's signal means all of them completed."""

    def __init__(self, sem_fence, sem_done):
        self.loads = []
        self.fence, self.done = sem_fence, sem_done

    def add(self, *args, **kwargs):
        self.loads.append((args, kwargs))

    def emit(self, prog: Program):
        for i, (args, kwargs) in enumerate(self.loads):
            last = i == len(self.loads) - 1
            prog.add(
                dma_load(
                    *args,
                    **kwargs,
                    wait=None if i == 0 else self.fence,
                    signal=self.done if last else self.fence,
                )
            )


def _ceil(a, b):
    return -(-a // b)


def _per_channel(v, n, name) -> np.ndarray:
    a = np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
    if name == "shift" and np.any((a < 0) | (a > 63)):
        raise ValueError("shift must be in 0…63")
    if name != "shift" and np.any((a < -(1 << 31)) | (a >= 1 << 32)):
        raise ValueError(f"{name} must fit 32 bits")
    return a.copy()


def requantize(acc, bias=0, scale=1, shift=0, zero_point=0, relu=False) -> np.ndarray:
    """int8 ``sat8(func(sat32(round_half_even((acc + bias) · scale / 2^shift))) + zp)``.

    ``acc`` is ``… × C`` (int32 values), ``bias``/``scale``/``shift`` scalars or per
    channel (last axis). Written with Python-size integers independently of the golden
    vector engine."""
    acc = np.asarray(acc, dtype=np.int64)
    shape = acc.shape

    def wrap32(v):
        return ((np.asarray(v, np.int64) + (1 << 31)) % (1 << 32)) - (1 << 31)

    def chan(v):
        return np.broadcast_to(wrap32(v), shape).astype(object)

    t = wrap32(acc + np.broadcast_to(wrap32(bias), shape)).astype(object)
    prod = t * chan(scale)
    sh = np.broadcast_to(np.asarray(shift, np.int64), shape).astype(object)
    out = np.empty(shape, dtype=np.int64)
    for idx in np.ndindex(shape):
        p, s = int(prod[idx]), int(sh[idx])
        q, r = divmod(p, 1 << s)  # floor division; 0 ≤ r < 2^s
        if s and (2 * r > (1 << s) or (2 * r == (1 << s) and q % 2 == 1)):
            q += 1
        q = min(max(q, -(1 << 31)), (1 << 31) - 1)
        if relu:
            q = max(q, 0)
        out[idx] = min(max(q + int(zero_point), -128), 127)
    return out.astype(np.int8)


def _param_block(params: NCoreParams, scale, bias, shift, channels: int) -> np.ndarray:
    """DRAM image of per-lane parameters: ``channels × 3 × P`` lane-width pieces."""
    pieces = gcore.param_pieces(params)
    lw = params.lane_width
    vals = np.stack([scale, bias, shift], axis=1).astype(np.int64) & 0xFFFF_FFFF  # C × 3
    out = np.zeros((channels, 3, pieces), dtype=np.uint8 if lw == 8 else np.uint16)
    for i in range(pieces):
        out[: len(vals), :, i] = (vals >> (i * lw)) & ((1 << lw) - 1)
    return out


def _load_params_desc(params: NCoreParams, region: Region, entry: int, width: int, tiles: int):
    """DMA arguments loading ``tiles`` parameter blocks of ``width`` lanes to SBUF
    ``entry + t·3P`` (lane l on partition l)."""
    pb = gsbuf.pbits(params)
    pieces3 = 3 * gcore.param_pieces(params)
    eb = params.lane_width // 8
    dram = (region.addr, [(pieces3, eb), (width, pieces3 * eb), (tiles, width * pieces3 * eb)])
    sbuf = (entry << pb, [(pieces3, 1 << pb), (width, 1), (tiles, pieces3 << pb)])
    return dram, sbuf, eb - 1


class _SbufAlloc:
    def __init__(self, params: NCoreParams):
        self.depth, self.top = params.sbuf_depth, 0

    def __call__(self, entries: int) -> int:
        e = self.top
        self.top += entries
        if self.top > self.depth:
            raise ValueError(f"SBUF needs {self.top} entries, the core has {self.depth}")
        return e


# -- (a) tiled GEMM -------------------------------------------------------------------------


def gemm(
    params: NCoreParams,
    a,
    b,
    *,
    dtype: str = "int8",
    out: str = "int8",
    scale=None,
    bias=None,
    shift=None,
    zero_point: int = 0,
    relu: bool = False,
    block_rows: int | None = None,
) -> Directed:
    """Tiled ``C = A @ B`` from DRAM, double-buffered.

    ``A`` (M×K) and ``B`` (K×N) are int8, or uint16 bit patterns for ``dtype`` fp16/bf16,
    row-major in DRAM. ``out``:

    * ``"int8"`` (int8 dtype): ``C = requantize(A @ B, bias, scale, shift, zero_point,
      relu)`` per output channel, M×N int8 in DRAM;
    * ``"fp16"`` / ``"bf16"`` (FP dtypes): the fp32 sums through ACT (fp32 ``scale``
      and ``bias`` bits, default 1.0 and +0.0) to 16-bit values in DRAM;
    * ``"psum"``: the int32 / fp32 sums stay in PSUM (region ``C``; a DMA ``PSUM_STORE``,
      :func:`dma_store_psum`, can move them to DRAM).

    Tiling: K in tiles of ``rows`` (partitions), N in tiles of ``tw = cols`` (``min(rows,
    cols)`` when ACT writes the results to SBUF partitions), M in blocks of ``block_rows``.
    Loop order N tile → M block → K tile; each step loads a B tile and an A tile into one of
    two SBUF slots, LOADWs and MATMULs (accumulating over K in PSUM); after the last K tile
    of a block, ACT requantises PSUM (ring of two blocks) into an SBUF output slot (two) and
    the DMA stores it. Semaphores (see docs/core.md): BFULL, AFULL (DMA → tensor), FREE
    (tensor → DMA), PFULL (tensor → vector), OFULL (vector → DMA), SFREE (store → loads of
    the block two later, which also frees the PSUM and output slots), PARAMS.
    """
    p = params
    fp = dtype != "int8"
    a, b = np.asarray(a), np.asarray(b)
    want = np.uint16 if fp else np.int8
    if a.dtype != want or b.dtype != want:
        raise TypeError(f"{dtype} GEMM takes {np.dtype(want).name} arrays")
    if out not in ("psum", "int8", "fp16", "bf16") or (out == "int8") == fp and out != "psum":
        raise ValueError(f"out={out!r} does not go with dtype={dtype!r}")
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"A is {M}×{K} but B is {K2}×{N}")
    R, pb = p.rows, gsbuf.pbits(p)
    act_out = out != "psum"
    tw = min(p.cols, R) if act_out else p.cols
    nk, nn = _ceil(K, R), _ceil(N, tw)
    eb, esize = (2, 1) if fp else (1, 0)
    pieces3 = 3 * gcore.param_pieces(p)

    # SBUF: params, two B slots, two A slots, two output slots.
    fixed = (pieces3 * nn if act_out else 0) + 2 * tw
    per_row = 4 if act_out else 2
    if block_rows is None:
        limit = (p.sbuf_depth - fixed) // per_row
        limit = min(limit, p.psum_depth // 2 if act_out else M)
        block_rows = max(1, min(M, limit, 256))
    mb = block_rows
    nb = _ceil(M, mb)
    if not act_out and nn * M > p.psum_depth:
        raise ValueError(f"C needs {nn * M} PSUM entries, the core has {p.psum_depth}")
    if act_out and 2 * mb > p.psum_depth:
        raise ValueError(f"block_rows {mb}: two blocks need {2 * mb} PSUM entries")
    sb = _SbufAlloc(p)
    par_e = sb(pieces3 * nn) if act_out else 0
    bslot = [sb(tw), sb(tw)]
    aslot = [sb(mb), sb(mb)]
    oslot = [sb(mb), sb(mb)] if act_out else []

    # DRAM
    dr = _Dram()
    ra = dr.alloc("A", a.shape, a.dtype, a)
    rb = dr.alloc("B", b.shape, b.dtype, b)
    C = N
    if fp:  # fp32 bits; shift unused
        scale_v = _per_channel(0x3F80_0000 if scale is None else scale, C, "scale")
        bias_v = _per_channel(0 if bias is None else bias, C, "bias")
        shift_v = np.zeros(C, np.int64)
    else:
        scale_v = _per_channel(1 if scale is None else scale, C, "scale")
        bias_v = _per_channel(0 if bias is None else bias, C, "bias")
        shift_v = _per_channel(0 if shift is None else shift, C, "shift")
    if act_out:
        blk = _param_block(p, scale_v, bias_v, shift_v, nn * tw)
        rpar = dr.alloc("params", blk.shape, blk.dtype, blk)
        out_dtype = np.int8 if out == "int8" else np.uint16
        rc = dr.alloc("C", (M, N), out_dtype)
        ceb = np.dtype(out_dtype).itemsize
    else:
        dr.layout["C"] = Region(0, (M, N), "uint32" if fp else "int32", "psum", p.cols)

    s = _Sems(p, "BFULL", "AFULL", "FREE", "PFULL", "OFULL", "SFREE", "PARAMS")
    prog = Program()
    steps = [(t, blk, kk) for t in range(nn) for blk in range(nb) for kk in range(nk)]
    nsteps = len(steps)

    def is_last(i):
        return steps[i][2] == nk - 1

    def blk_of(i):
        return steps[i][0] * nb + steps[i][1]

    last_step = {blk_of(i): i for i in range(nsteps) if is_last(i)}
    stores_at: dict[int, list] = {}  # step index → stores to emit before its loads
    if act_out:
        for g, i in last_step.items():
            stores_at.setdefault(min(i + 2, nsteps), []).append(g)
        prog.add(dma_load(*_load_params_desc(p, rpar, par_e, tw, nn), signal=s.PARAMS))

    def store(g):
        t, blk = divmod(g, nb)
        m0, n0 = blk * mb, t * tw
        mc, wc = min(mb, M - m0), min(tw, N - n0)
        o = oslot[g % 2]
        sbp = (o << pb, [(wc, 1), (mc, 1 << pb)])
        drp = (rc.addr + (m0 * N + n0) * ceb, [(wc, ceb), (mc, N * ceb)])
        if wc == N and wc == 1 << pb:  # both sides contiguous: one run
            sbp, drp = (o << pb, [(wc * mc, 1)]), (drp[0], [(wc * mc, ceb)])
        sig = s.SFREE if g + 2 < nn * nb else None
        prog.add(dma_store(sbp, drp, ceb - 1, wait=s.OFULL, signal=sig))

    for i, (t, blk, kk) in enumerate(steps):
        for g in stores_at.get(i, []):
            store(g)
        g = blk_of(i)
        m0, n0, k0 = blk * mb, t * tw, kk * R
        mc, wc, kc = min(mb, M - m0), min(tw, N - n0), min(R, K - k0)
        first_of_blk = kk == 0
        # B tile: column j → entry bslot + j, partition = k (transposed on the SBUF side).
        if i == 0:
            wait_b = s.PARAMS if act_out else None
        elif i >= 2 and not (act_out and is_last(i - 2)):
            wait_b = s.FREE
        else:
            wait_b = None
        bs = bslot[i % 2]
        prog.add(
            dma_load(
                (rb.addr + (k0 * N + n0) * eb, [(wc, eb), (kc, N * eb)]),
                (bs << pb, [(wc, 1 << pb), (kc, 1)]),
                esize,
                wait=wait_b,
                signal=s.BFULL,
            )
        )
        # A tile: row r → entry aslot + r, partition = k.
        asl = aslot[i % 2]
        drp = (ra.addr + (m0 * K + k0) * eb, [(kc, eb), (mc, K * eb)])
        sbp = (asl << pb, [(kc, 1), (mc, 1 << pb)])
        if kc == K and kc == 1 << pb:
            drp, sbp = (drp[0], [(kc * mc, eb)]), (sbp[0], [(kc * mc, 1)])
        wait_a = s.SFREE if act_out and first_of_blk and g >= 2 else None
        prog.add(dma_load(drp, sbp, esize, wait=wait_a, signal=s.AFULL))
        # Tensor engine.
        prog.add(loadw(bs, kc, wc, wait=s.BFULL))
        pe = ((g % 2) * mb) if act_out else t * M + m0
        if act_out and is_last(i):
            sig = s.PFULL
        elif i + 2 < nsteps and not (act_out and is_last(i)):
            sig = s.FREE
        else:
            sig = None
        prog.add(
            matmul(
                (asl, [(mc, 1)]),
                kc,
                wc,
                pe,
                dtype=dtype,
                accumulate=kk > 0,
                wait=s.AFULL,
                signal=sig,
            )
        )
        if act_out and is_last(i):
            if fp:
                cfg = {"in_type": "fp32", "out_type": out}
            else:
                cfg = {"in_type": "int32", "zero_point": zero_point}
            prog.add(
                act(
                    (pe, [(mc, 1)]),
                    oslot[g % 2],
                    wc,
                    src_psum=True,
                    params=par_e + t * pieces3 if blk == 0 else None,
                    func="relu" if relu else "identity",
                    wait=s.PFULL,
                    signal=s.OFULL,
                    **cfg,
                )
            )
    for g in stores_at.get(nsteps, []):
        store(g)
    prog.add(end())
    dram, base = dr.finish(prog)

    # Expected results.
    if not fp:
        acc = a.astype(np.int64) @ b.astype(np.int64)
        if out == "psum":
            expected = acc.astype(np.uint64).astype(np.uint32).view(np.int32)
        else:
            expected = requantize(acc, bias_v, scale_v, shift_v, zero_point, relu)
    else:
        acc = np.zeros((M, N), np.uint32)
        for k0 in range(0, K, R):  # the PSUM order: K tiles in turn, first one overwrites
            part = tensor_engine.matmul(a[:, k0 : k0 + R], b[k0 : k0 + R], dtype)
            acc = part if k0 == 0 else fp32_add(acc, part)
        if out == "psum":
            expected = acc
        else:
            cfg = {
                "in_type": gve.VType.FP32,
                "out_type": gve.VType[out.upper()],
                "func": gve.Func.RELU if relu else gve.Func.IDENTITY,
            }
            # Per channel over the whole row (the core applies lane l of tile t to column
            # t·tw + l, the same parameter).
            prm = {"scale": scale_v, "bias": bias_v, "shift": shift_v}
            expected = gve.run(cfg, prm, acc).astype(np.uint16)
    info = {
        "block_rows": mb,
        "n_tile": tw,
        "k_tiles": nk,
        "n_tiles": nn,
        "m_blocks": nb,
        "steps": nsteps,
    }
    return Directed("gemm", p, prog, dram, base, dr.layout, {"C": expected}, info)


_B_SLOTS = 6  #: B tile slots of gemm_stationary


def gemm_stationary(
    params: NCoreParams,
    a,
    b,
    *,
    scale=None,
    bias=None,
    shift=None,
    zero_point: int = 0,
    relu: bool = False,
    block_rows: int | None = None,
    dram_base: int = 0,
) -> Directed:
    """Large int8 GEMM ``C = requantize(A @ B)`` with A blocks resident in the SBUF.

    ``dram_base``: where the operands, the result and the program start in DRAM (so that
    several cores can each run one, on their own regions).

    The schedule for GEMMs too big for :func:`gemm`'s streaming (which reloads A for every
    N tile): M is cut into blocks of ``block_rows`` rows; a block of A (all K) stays in the
    SBUF (two block slots, the next block loads row by row while the current one computes),
    and for each N tile the K tiles of B stream through the weight banks. B is laid out
    transposed in DRAM (``B^T``, N×K row-major: weights are constants, laid out offline as a
    compiler does), so every B tile and every A row is a chunked DMA (one SBUF entry per
    cycle). Only the first A block loads before the first MATMUL; the rows of the next
    block are spread over the current block's steps. Per step (block, N tile, K tile): DMA
    B tile → LOADW → MATMUL of ``block_rows`` rows accumulating in PSUM; after the last K
    tile, ACT requantises the tile into an SBUF output slot and the DMA stores it (two PSUM
    and output slots in a ring), emitted a few steps later so that it does not wait at the
    head of the DMA queue.

    B is loaded one *group* at a time — all K tiles of one N tile, one contiguous DMA — into
    two group slots, the next group during the current one: per MATMUL only a LOADW is
    fetched besides it, which halves the instruction traffic on the shared bus.

    Semaphores: BFULL (B group loaded → its first LOADW), BFREE (the group's last LOADW →
    the load of the group two later),
    AFREE (the first MATMUL of block ``b``: every MATMUL of block ``b − 1`` is complete →
    the rows of block ``b + 1`` may overwrite its slot), PFULL (last MATMUL of a tile →
    ACT), OFULL (ACT → store), SFREE (store → the first MATMUL of the tile two later, which
    frees its PSUM and output slots). A block's rows need no semaphore of their own: they
    come before the B loads of that block in the DMA queue, and a queue signals in order.

    Requires int8 operands, ``K`` a multiple of ``rows`` and at least two K tiles.
    """
    p = params
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise TypeError("gemm_stationary takes int8 arrays")
    M, K = a.shape
    K2, N = b.shape
    if K != K2:
        raise ValueError(f"A is {M}×{K} but B is {K2}×{N}")
    R, pb = p.rows, gsbuf.pbits(p)
    if K % R or K // R < 2:
        raise ValueError(f"K = {K} must be a multiple of rows = {R}, at least two tiles")
    tw = min(p.cols, R)
    nk, nn = K // R, _ceil(N, tw)
    pieces3 = 3 * gcore.param_pieces(p)
    fixed = pieces3 * nn + 2 * nk * tw  # parameters, two B groups
    if block_rows is None:
        free = p.sbuf_depth - fixed
        limit = min(M, p.psum_depth // 2, 256)
        # One A block slot if all of M fits, else two (the next block loads meanwhile).
        block_rows = M if M <= min(free // (nk + 2), limit) else free // (2 * nk + 2)
        block_rows = max(1, min(block_rows, limit))
        block_rows = _ceil(M, _ceil(M, block_rows))  # even blocks
    mb = block_rows
    nb = _ceil(M, mb)
    if 2 * mb > p.psum_depth:
        raise ValueError(f"block_rows {mb}: two tiles need {2 * mb} PSUM entries")
    sb = _SbufAlloc(p)
    par_e = sb(pieces3 * nn)
    bgroup = [sb(nk * tw), sb(nk * tw)]  # all K tiles of one N tile
    aslot = [sb(nk * mb)] * 2 if nb == 1 else [sb(nk * mb), sb(nk * mb)]
    oslot = [sb(mb), sb(mb)]

    dr = _Dram(dram_base)
    ra = dr.alloc("A", a.shape, np.int8, a)
    rbt = dr.alloc("BT", (N, K), np.int8, np.ascontiguousarray(b.T))
    scale_v = _per_channel(1 if scale is None else scale, N, "scale")
    bias_v = _per_channel(0 if bias is None else bias, N, "bias")
    shift_v = _per_channel(0 if shift is None else shift, N, "shift")
    blk = _param_block(p, scale_v, bias_v, shift_v, nn * tw)
    rpar = dr.alloc("params", blk.shape, blk.dtype, blk)
    rc = dr.alloc("C", (M, N), np.int8)

    s = _Sems(p, "BFULL", "BFREE", "AFREE", "PFULL", "OFULL", "SFREE")
    prog = Program()
    prog.add(dma_load(*_load_params_desc(p, rpar, par_e, tw, nn)))

    def a_rows(blk_i, r0, r1, wait=None):
        """DMA: rows r0…r1−1 of A block ``blk_i`` into its slot (row r, K tile kk →
        entry slot + kk·mb + r, partition k mod R)."""
        m0 = blk_i * mb
        slot = aslot[blk_i % 2]
        n = r1 - r0
        dram = (ra.addr + (m0 + r0) * K, [(K * n, 1)])
        sbuf = ((slot + r0) << pb, [(R, 1), (nk, mb << pb), (n, 1 << pb)])
        prog.add(dma_load(dram, sbuf, wait=wait))

    def rows_of(blk_i):
        return min(mb, M - blk_i * mb)

    a_rows(0, 0, rows_of(0))
    groups = nb * nn  # (block, N tile) pairs, each one B group load

    def b_group(g):
        """DMA: every K tile of N tile ``g mod nn`` (B^T rows, all of K) into group slot
        ``g mod 2``: K tile kk, column j → entry slot + kk·tw + j, partition k mod R."""
        t = g % nn
        n0, wc = t * tw, min(tw, N - t * tw)
        prog.add(
            dma_load(
                (rbt.addr + n0 * K, [(K * wc, 1)]),
                (bgroup[g % 2] << pb, [(R, 1), (nk, tw << pb), (wc, 1 << pb)]),
                wait=s.BFREE if g >= 2 else None,
                signal=s.BFULL,
            )
        )

    b_group(0)
    steps = [(bi, t, kk) for bi in range(nb) for t in range(nn) for kk in range(nk)]
    nsteps = len(steps)
    per_block = nn * nk
    # Rows of block b + 1 load during block b, from its third step on, in pieces (for
    # b ≥ 1 after AFREE: block b − 1, which used that slot, is done).
    pieces_at: dict[int, list] = {}
    # One A row moves K / rows SBUF entries at one per cycle (plus ~30 cycles per DMA):
    # space the rows so the DMA keeps up with the B tile each MATMUL of mb rows needs.
    gap = max(1, _ceil(K // R + 30, max(mb - 35, 8)))
    for bi in range(0, nb - 1):
        rows = rows_of(bi + 1)
        slots = max(1, (per_block - 2) // gap)
        per = _ceil(rows, slots)
        for j, r0 in enumerate(range(0, rows, per)):
            pieces_at.setdefault(bi * per_block + 2 + min(j, slots - 1) * gap, []).append(
                (bi + 1, r0, min(rows, r0 + per), j == 0 and bi >= 1)
            )
    stores_at: dict[int, list] = {}
    # A store waits for its ACT at the head of the in-order DMA queue, holding up the B
    # loads behind it: emit it once the ACT (≈ mb + 100 cycles after its last MATMUL) is
    # likely done, but early enough to free its slots before the tile two later starts.
    store_delay = max(1, min(_ceil(mb + 100, mb) + 2, nk - 2))

    def store(g):
        bi, t = divmod(g, nn)
        m0, n0 = bi * mb, t * tw
        mc, wc = rows_of(bi), min(tw, N - t * tw)
        sig = s.SFREE if g + 2 < nb * nn else None
        prog.add(
            dma_store(
                (oslot[g % 2] << pb, [(wc, 1), (mc, 1 << pb)]),
                (rc.addr + m0 * N + n0, [(wc, 1), (mc, N)]),
                wait=s.OFULL,
                signal=sig,
            )
        )

    for i, (bi, t, kk) in enumerate(steps):
        for g in stores_at.pop(i, []):
            store(g)
        g = bi * nn + t
        mc, wc = rows_of(bi), min(tw, N - t * tw)
        bs = bgroup[g % 2] + kk * tw
        if kk == min(1, nk - 1) and g + 1 < groups:
            b_group(g + 1)  # prefetch the next group during this one
        for blk_i, r0, r1, first in pieces_at.pop(i, []):
            a_rows(blk_i, r0, r1, wait=s.AFREE if first else None)
        free = s.BFREE if kk == nk - 1 and g + 2 < groups else None
        prog.add(loadw(bs, R, wc, wait=s.BFULL if kk == 0 else None, signal=free))
        last = kk == nk - 1
        if last:
            sig = s.PFULL
        elif t == 0 and kk == 0 and 1 <= bi < nb - 1:
            sig = s.AFREE
        else:
            sig = None
        prog.add(
            matmul(
                (aslot[bi % 2] + kk * mb, [(mc, 1)]),
                R,
                wc,
                (g % 2) * mb,
                accumulate=kk > 0,
                wait=s.SFREE if kk == 0 and g >= 2 else None,
                signal=sig,
            )
        )
        if last:
            prog.add(
                act(
                    ((g % 2) * mb, [(mc, 1)]),
                    oslot[g % 2],
                    wc,
                    src_psum=True,
                    params=par_e + t * pieces3,
                    in_type="int32",
                    zero_point=zero_point,
                    func="relu" if relu else "identity",
                    wait=s.PFULL,
                    signal=s.OFULL,
                )
            )
            stores_at.setdefault(min(i + store_delay, nsteps), []).append(g)
    for g in stores_at.pop(nsteps, []):
        store(g)
    prog.add(end())
    dram, base = dr.finish(prog)
    acc = a.astype(np.int64) @ b.astype(np.int64)
    expected = requantize(acc, bias_v, scale_v, shift_v, zero_point, relu)
    info = {"block_rows": mb, "n_tile": tw, "k_tiles": nk, "n_tiles": nn, "m_blocks": nb,
            "steps": nsteps}  # fmt: skip
    return Directed("gemm_stationary", p, prog, dram, base, dr.layout, {"C": expected}, info)


# -- (b) 3×3 convolution as shifted matmuls ----------------------------------------------------


def conv3x3(
    params: NCoreParams,
    x,
    w,
    *,
    scale=1,
    bias=0,
    shift=0,
    zero_point: int = 0,
    relu: bool = False,
) -> Directed:
    """3×3 convolution, stride 1, zero padding 1, requantised to int8.

    ``x`` is ``H × W × Cin`` int8 (NHWC, one image), ``w`` is ``3 × 3 × Cin × Cout`` int8
    (HWIO); the output is ``H × W × Cout`` int8 (NHWC):
    ``out[y, x, o] = requantize(Σ_{dy,dx,i} xpad[y+dy, x+dx, i] · w[dy, dx, i, o])``.

    The input lands in the SBUF as a zero-padded ``(H+2) × (W+2)`` image per tile of
    ``rows`` input channels (pixel ``(y, x)`` at entry ``base + y·(W+2) + x``, channel on
    the partition); one DMA first zeroes the whole buffer from a ``rows``-byte zero block
    (DRAM stride 0), then the interior is loaded. Tap ``(dy, dx)`` is then a MATMUL whose
    ``mov`` pattern is the image shifted by ``dy·(W+2) + dx`` (``[(W, 1), (H, W+2)]``), all
    taps and input-channel tiles accumulating into the same ``H·W`` PSUM entries per tile of
    ``min(rows, cols)`` output channels. ACT requantises each output tile and the DMA
    stores it. The inputs are loaded up front as a fence chain (each load waits for the
    previous one), so the whole image must fit the SBUF and ``H·W`` rows per output tile
    the PSUM.
    """
    p = params
    x, w = np.asarray(x), np.asarray(w)
    if x.dtype != np.int8 or w.dtype != np.int8:
        raise TypeError("conv3x3 takes int8 arrays")
    H, W, Ci = x.shape
    if w.shape[:3] != (3, 3, Ci):
        raise ValueError(f"w must be 3×3×{Ci}×Cout, not {'×'.join(map(str, w.shape))}")
    Co = w.shape[3]
    R, pb = p.rows, gsbuf.pbits(p)
    tw = min(R, p.cols)
    nci, nco = _ceil(Ci, R), _ceil(Co, tw)
    Hp, Wp, HW = H + 2, W + 2, H * W
    pieces3 = 3 * gcore.param_pieces(p)
    if nco * HW > p.psum_depth:
        raise ValueError(f"needs {nco * HW} PSUM entries, the core has {p.psum_depth}")
    sb = _SbufAlloc(p)
    par_e = sb(pieces3 * nco)
    in_e = sb(nci * Hp * Wp)
    w_e = sb(nco * nci * 9 * tw)
    out_e = sb(nco * HW)

    scale_v, bias_v = _per_channel(scale, Co, "scale"), _per_channel(bias, Co, "bias")
    shift_v = _per_channel(shift, Co, "shift")
    dr = _Dram()
    rx = dr.alloc("x", x.shape, np.int8, x)
    rw = dr.alloc("w", w.shape, np.int8, w)
    rz = dr.alloc("zeros", (R,), np.int8, np.zeros(R, np.int8))
    blk = _param_block(p, scale_v, bias_v, shift_v, nco * tw)
    rpar = dr.alloc("params", blk.shape, blk.dtype, blk)
    ro = dr.alloc("out", (H, W, Co), np.int8)

    s = _Sems(p, "FENCE", "READY", "PFULL", "OFULL")
    prog = Program()
    loads = _Fence(s.FENCE, s.READY)
    # Zero the padded buffers of every input tile, then load the interiors.
    n_zero = nci * Hp * Wp
    loads.add((rz.addr, [(R, 1), (n_zero, 0)]), (in_e << pb, [(R, 1), (n_zero, 1 << pb)]))
    for c in range(nci):
        i0, kc = c * R, min(R, Ci - c * R)
        base = in_e + c * Hp * Wp + Wp + 1
        loads.add(
            (rx.addr + i0, [(kc, 1), (W, Ci), (H, W * Ci)]),
            (base << pb, [(kc, 1), (W, 1 << pb), (H, Wp << pb)]),
        )
    # Weights of tap (dy, dx), input tile c, output tile t: column j → entry, partition i.
    for t in range(nco):
        o0, wc = t * tw, min(tw, Co - t * tw)
        for c in range(nci):
            i0, kc = c * R, min(R, Ci - c * R)
            e = w_e + (t * nci + c) * 9 * tw
            loads.add(
                (rw.addr + i0 * Co + o0, [(wc, 1), (kc, Co), (9, Ci * Co)]),
                (e << pb, [(wc, 1 << pb), (kc, 1), (9, tw << pb)]),
            )
    loads.add(*_load_params_desc(p, rpar, par_e, tw, nco))
    loads.emit(prog)

    first = True
    for t in range(nco):
        o0, wc = t * tw, min(tw, Co - t * tw)
        pe = t * HW
        for c in range(nci):
            kc = min(R, Ci - c * R)
            for tap in range(9):
                dy, dx = divmod(tap, 3)
                e = w_e + ((t * nci + c) * 9 + tap) * tw
                prog.add(loadw(e, kc, wc, wait=s.READY if first else None))
                first = False
                last = c == nci - 1 and tap == 8
                mov = (in_e + c * Hp * Wp + dy * Wp + dx, [(W, 1), (H, Wp)])
                prog.add(
                    matmul(
                        mov,
                        kc,
                        wc,
                        pe,
                        accumulate=c > 0 or tap > 0,
                        signal=s.PFULL if last else None,
                    )
                )
        oe = out_e + t * HW
        prog.add(
            act(
                (pe, [(HW, 1)]),
                oe,
                wc,
                src_psum=True,
                params=par_e + t * pieces3,
                zero_point=zero_point,
                func="relu" if relu else "identity",
                wait=s.PFULL,
                signal=s.OFULL,
            )
        )
        prog.add(
            dma_store(
                (oe << pb, [(wc, 1), (HW, 1 << pb)]),
                (ro.addr + o0, [(wc, 1), (HW, Co)]),
                wait=s.OFULL,
            )
        )
    prog.add(end())
    dram, base = dr.finish(prog)

    xp = np.zeros((Hp, Wp, Ci), np.int64)
    xp[1:-1, 1:-1] = x
    acc = np.zeros((H, W, Co), np.int64)
    for dy in range(3):
        for dx in range(3):
            acc += xp[dy : dy + H, dx : dx + W] @ w[dy, dx].astype(np.int64)
    expected = requantize(acc, bias_v, scale_v, shift_v, zero_point, relu)
    info = {"n_tile": tw, "ci_tiles": nci, "co_tiles": nco}
    return Directed("conv3x3", p, prog, dram, base, dr.layout, {"out": expected}, info)


# -- (c) 2×2 max-pool ---------------------------------------------------------------------------


def maxpool2x2(params: NCoreParams, x, *, dtype: str = "int8") -> Directed:
    """2×2 max-pool, stride 2, of ``x`` (``H × W × C``, NHWC; int8, or uint16 bf16 bits
    with ``dtype="bf16"``) to ``H/2 × W/2 × C`` (odd edges dropped).

    Pixels sit on SBUF entries (``y·W + x``), channels on partitions (tiles of ``rows``).
    Three ACT MAX instructions per tile over strided views: ``T1 = max(x[2i, 2j],
    x[2i, 2j+1])`` (``src`` and ``b`` patterns ``[(W/2, 2), (H/2, 2W)]`` from entries 0 and
    1), ``T2`` the same from row 1, ``out = max(T1, T2)``, with identity parameters (int:
    M = 1, shift 0, bias 0; bf16: scale 1.0, bias +0.0, which also turns −0 into +0). The
    second and third ACT read what the earlier ones of the same queue wrote.
    """
    p = params
    x = np.asarray(x)
    fp = dtype == "bf16"
    if x.dtype != (np.uint16 if fp else np.int8) or dtype not in ("int8", "bf16"):
        raise TypeError("maxpool2x2 takes int8, or uint16 bf16 bits with dtype='bf16'")
    H, W, C = x.shape
    H2, W2 = H // 2, W // 2
    R, pb = p.rows, gsbuf.pbits(p)
    nc = _ceil(C, R)
    eb = 2 if fp else 1
    sb = _SbufAlloc(p)
    pieces3 = 3 * gcore.param_pieces(p)
    par_e = sb(pieces3)
    in_e = sb(nc * H * W)
    t1_e, t2_e = sb(H2 * W2), sb(H2 * W2)
    out_e = sb(nc * H2 * W2)
    dr = _Dram()
    rx = dr.alloc("x", x.shape, x.dtype, x)
    one = 0x3F80_0000 if fp else 1
    blk = _param_block(p, np.full(R, one), np.zeros(R), np.zeros(R), R)
    rpar = dr.alloc("params", blk.shape, blk.dtype, blk)
    ro = dr.alloc("out", (H2, W2, C), x.dtype)
    s = _Sems(p, "FENCE", "READY", "OFULL")
    prog = Program()
    loads = _Fence(s.FENCE, s.READY)
    loads.add(*_load_params_desc(p, rpar, par_e, R, 1))
    for c in range(nc):
        kc = min(R, C - c * R)
        loads.add(
            (rx.addr + c * R * eb, [(kc, eb), (H * W, C * eb)]),
            ((in_e + c * H * W) << pb, [(kc, 1), (H * W, 1 << pb)]),
            eb - 1,
        )
    loads.emit(prog)
    typ = "bf16" if fp else "int8"
    cfg = {"op": "max", "in_type": typ, "out_type": typ}
    view = [(W2, 2), (H2, 2 * W)]
    for c in range(nc):
        kc = min(R, C - c * R)
        base = in_e + c * H * W
        oe = out_e + c * H2 * W2
        prog.add(
            act(
                (base, view),
                t1_e,
                kc,
                b=(base + 1, [2, 2 * W]),
                **cfg,
                params=par_e if c == 0 else None,
                wait=s.READY if c == 0 else None,
            )
        )
        prog.add(act((base + W, view), t2_e, kc, b=(base + W + 1, [2, 2 * W]), **cfg))
        prog.add(act((t1_e, [(W2 * H2, 1)]), oe, kc, b=t2_e, **cfg, signal=s.OFULL))
        prog.add(
            dma_store(
                (oe << pb, [(kc, 1), (H2 * W2, 1 << pb)]),
                (ro.addr + c * R * eb, [(kc, eb), (H2 * W2, C * eb)]),
                eb - 1,
                wait=s.OFULL,
            )
        )
    prog.add(end())
    dram, base = dr.finish(prog)

    win = x[: 2 * H2, : 2 * W2].reshape(H2, 2, W2, 2, C)
    if fp:
        f = (win.astype(np.uint32) << 16).view(np.float32)
        with np.errstate(all="ignore"):
            m = f.max(axis=(1, 3)) + np.float32(0.0)  # × 1.0 + 0.0: −0 becomes +0
        expected = m.astype(ml_dtypes.bfloat16).view(np.uint16)
    else:
        expected = win.max(axis=(1, 3))
    return Directed("maxpool2x2", p, prog, dram, base, dr.layout, {"out": expected})


# -- (d) requantised MLP ------------------------------------------------------------------------


def mlp(params: NCoreParams, x, layers: list[dict]) -> Directed:
    """Requantised int8 MLP layers, chained through the SBUF.

    ``x`` is ``batch × F0`` int8; each layer is a dict with ``w`` (``F_in × F_out`` int8),
    per-output-channel ``bias``, ``scale`` and ``shift``, and optional ``zero_point`` (0)
    and ``relu`` (True): ``y = requantize(x @ w, bias, scale, shift, zero_point, relu)``.
    The output of layer L (output features on partitions, batch rows on entries, tiles of
    ``min(rows, cols)`` features) is exactly the activation layout of layer L+1, so it stays
    in the SBUF; only the last layer goes back to DRAM (``batch × F_out`` int8).

    Everything is loaded up front (fence chain, then READY); each output tile of each layer
    accumulates its K tiles in its own PSUM entries, ACT requantises it (PFULL) into the
    next layer's activation buffer and signals ACTDONE, which the first MATMUL of the next
    layer reading that tile waits for; the last layer's tiles are stored (OFULL).
    """
    p = params
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise TypeError("mlp takes int8 activations")
    batch, f0 = x.shape
    R, pb = p.rows, gsbuf.pbits(p)
    tw = min(R, p.cols)
    pieces3 = 3 * gcore.param_pieces(p)
    feats = [f0]
    for i, lay in enumerate(layers):
        wl = np.asarray(lay["w"])
        if wl.dtype != np.int8 or wl.shape[0] != feats[-1]:
            raise ValueError(f"layer {i}: w must be int8 {feats[-1]}×F_out, not {wl.shape}")
        feats.append(wl.shape[1])
    nl = len(layers)
    sb = _SbufAlloc(p)
    dr = _Dram()
    s = _Sems(p, "FENCE", "READY", "PFULL", "ACTDONE", "OFULL")
    loads = _Fence(s.FENCE, s.READY)
    # Activation buffers: layer L's input, K tile k at entries act_e[L] + k·batch.
    act_e = [sb(_ceil(feats[0], R) * batch)]
    act_e += [sb(_ceil(f, tw) * batch) for f in feats[1:]]
    rx = dr.alloc("x", x.shape, np.int8, x)
    for k in range(_ceil(f0, R)):
        kc = min(R, f0 - k * R)
        loads.add(
            (rx.addr + k * R, [(kc, 1), (batch, f0)]),
            ((act_e[0] + k * batch) << pb, [(kc, 1), (batch, 1 << pb)]),
        )
    w_e, par_e, vals, ktile = [], [], [], []
    psum_top = 0
    for i, lay in enumerate(layers):
        fi, fo = feats[i], feats[i + 1]
        kt = R if i == 0 else tw  # the K tiling is the previous layer's N tiling
        nk, nn = _ceil(fi, kt), _ceil(fo, tw)
        ktile.append(kt)
        wl = np.asarray(lay["w"])
        rw = dr.alloc(f"w{i}", wl.shape, np.int8, wl)
        e0 = sb(nk * nn * tw)
        w_e.append(e0)
        for t in range(nn):
            o0, wc = t * tw, min(tw, fo - t * tw)
            for k in range(nk):
                kc = min(kt, fi - k * kt)
                loads.add(
                    (rw.addr + k * kt * fo + o0, [(wc, 1), (kc, fo)]),
                    ((e0 + (t * nk + k) * tw) << pb, [(wc, 1 << pb), (kc, 1)]),
                )
        v = {
            n: _per_channel(lay.get(n, d), fo, n)
            for n, d in (("scale", 1), ("bias", 0), ("shift", 0))
        }
        vals.append(v)
        blk = _param_block(p, v["scale"], v["bias"], v["shift"], nn * tw)
        rpar = dr.alloc(f"params{i}", blk.shape, blk.dtype, blk)
        par_e.append(sb(nn * pieces3))
        loads.add(*_load_params_desc(p, rpar, par_e[i], tw, nn))
        psum_top += nn * batch
    if psum_top > p.psum_depth:
        raise ValueError(f"needs {psum_top} PSUM entries, the core has {p.psum_depth}")
    ro = dr.alloc("out", (batch, feats[-1]), np.int8)
    prog = Program()
    loads.emit(prog)

    pe0, first = 0, True
    for i, lay in enumerate(layers):
        fi, fo, kt = feats[i], feats[i + 1], ktile[i]
        nk, nn = _ceil(fi, kt), _ceil(fo, tw)
        last_layer = i == nl - 1
        for t in range(nn):
            wc = min(tw, fo - t * tw)
            pe = pe0 + t * batch
            for k in range(nk):
                kc = min(kt, fi - k * kt)
                prog.add(loadw(w_e[i] + (t * nk + k) * tw, kc, wc, wait=s.READY if first else None))
                first = False
                # Layer i > 0 reads tile k of the previous layer's ACT output: the first
                # output tile waits for it (ACTs complete in order, so one wait per tile).
                wait = s.ACTDONE if i > 0 and t == 0 else None
                prog.add(
                    matmul(
                        ((act_e[i] + k * batch), [(batch, 1)]),
                        kc,
                        wc,
                        pe,
                        accumulate=k > 0,
                        wait=wait,
                        signal=s.PFULL if k == nk - 1 else None,
                    )
                )
            dst = act_e[i + 1] + t * batch
            prog.add(
                act(
                    (pe, [(batch, 1)]),
                    dst,
                    wc,
                    src_psum=True,
                    params=par_e[i] + t * pieces3,
                    zero_point=lay.get("zero_point", 0),
                    func="relu" if lay.get("relu", True) else "identity",
                    wait=s.PFULL,
                    signal=s.OFULL if last_layer else s.ACTDONE,
                )
            )
            if last_layer:
                prog.add(
                    dma_store(
                        (dst << pb, [(wc, 1), (batch, 1 << pb)]),
                        (ro.addr + t * tw, [(wc, 1), (batch, fo)]),
                        wait=s.OFULL,
                    )
                )
        pe0 += nn * batch
    prog.add(end())
    dram, base = dr.finish(prog)

    h = x
    for lay, v in zip(layers, vals, strict=True):
        acc = h.astype(np.int64) @ np.asarray(lay["w"]).astype(np.int64)
        h = requantize(
            acc, v["bias"], v["scale"], v["shift"], lay.get("zero_point", 0), lay.get("relu", True)
        )
    info = {"n_tile": tw, "layers": nl}
    return Directed("mlp", p, prog, dram, base, dr.layout, {"out": h}, info)


# -- (e) the MLP on the chip: a layer pipeline over the links, and layer by layer via DRAM ------


@dataclass
class ChipDirected:
    """A directed chip program: one program per core (None: the core stays idle), a DRAM
    image holding the inputs and every program, and the expected outputs.

    ``placed[c]`` is ``(program_base, program_len)`` of core ``c``'s program in ``dram`` (or
    None), the form :meth:`ncore.golden.chip.Chip.run` takes."""

    name: str
    params: NCoreParams
    programs: list  #: per core: a list of instruction words, or None
    dram: np.ndarray
    placed: list  #: per core: ``(program_base, program_len)`` or None
    layout: dict  #: name → :class:`Region` (``program{c}`` for the programs)
    expected: dict  #: output name → array
    info: dict = field(default_factory=dict)

    def outputs(self, dram) -> dict:
        """Each expected output read back from final DRAM contents."""
        return {k: self.layout[k].read(dram) for k in self.expected}

    def run(self, *, pick=None):
        """Run on the chip ISS (programs fetched from DRAM); returns the ``Chip``."""
        from .chip import Chip

        chip = Chip(self.params, self.dram)
        chip.run(self.placed, pick=pick)
        return chip


def _mlp_check(x, layers) -> list[int]:
    """The feature sizes ``[F0, F1, …]`` of an int8 MLP (as :func:`mlp` takes it)."""
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim != 2:
        raise TypeError("the MLP takes batch × F0 int8 activations")
    if not layers:
        raise ValueError("the MLP needs at least one layer")
    feats = [x.shape[1]]
    for i, lay in enumerate(layers):
        wl = np.asarray(lay["w"])
        if wl.dtype != np.int8 or wl.ndim != 2 or wl.shape[0] != feats[-1]:
            raise ValueError(f"layer {i}: w must be int8 {feats[-1]}×F_out, not {wl.shape}")
        feats.append(wl.shape[1])
    return feats


def _mlp_values(layers, feats) -> list[dict]:
    return [
        {n: _per_channel(lay.get(n, d), feats[i + 1], n)
         for n, d in (("scale", 1), ("bias", 0), ("shift", 0))}
        for i, lay in enumerate(layers)
    ]  # fmt: skip


def _mlp_reference(x, layers, vals) -> np.ndarray:
    """Plain numpy: int64 matmuls and :func:`requantize`, layer after layer."""
    h = np.asarray(x)
    for lay, v in zip(layers, vals, strict=True):
        acc = h.astype(np.int64) @ np.asarray(lay["w"]).astype(np.int64)
        h = requantize(acc, v["bias"], v["scale"], v["shift"], lay.get("zero_point", 0),
                       lay.get("relu", True))  # fmt: skip
    return h


def _mlp_layer_loads(p, dr, i, lay, v, fi, fo, kt, w_e, par_e) -> list:
    """DRAM regions ``w{i}``, ``params{i}`` and the DMA arguments loading them: weight tile
    (N tile t, K tile k) at SBUF entry ``w_e + (t·nk + k)·tw`` (column j → entry, K index
    → partition), parameters of N tile t at ``par_e + t·3P``."""
    tw = min(p.rows, p.cols)
    nk, nn = _ceil(fi, kt), _ceil(fo, tw)
    pb = gsbuf.pbits(p)
    wl = np.asarray(lay["w"])
    rw = dr.alloc(f"w{i}", wl.shape, np.int8, wl)
    loads = []
    for t in range(nn):
        o0, wc = t * tw, min(tw, fo - t * tw)
        for k in range(nk):
            kc = min(kt, fi - k * kt)
            loads.append(((rw.addr + k * kt * fo + o0, [(wc, 1), (kc, fo)]),
                          ((w_e + (t * nk + k) * tw) << pb, [(wc, 1 << pb), (kc, 1)])))  # fmt: skip
    blk = _param_block(p, v["scale"], v["bias"], v["shift"], nn * tw)
    rpar = dr.alloc(f"params{i}", blk.shape, blk.dtype, blk)
    loads.append(_load_params_desc(p, rpar, par_e, tw, nn))
    return loads


def _emit_chain(prog: Program, loads, fence, done, first_wait=None):
    """DMA loads one after another (each waits for the previous one's signal); the last
    signals ``done``; the first waits ``first_wait``."""
    for j, args in enumerate(loads):
        last = j == len(loads) - 1
        prog.add(dma_load(*args, wait=first_wait if j == 0 else fence,
                          signal=done if last else fence))  # fmt: skip


def _mlp_stage(prog: Program, p, s, *, lay, fi, fo, kt, w_e, par_e, slots, stride, blocks,
               src, dst, last_signal=None):  # fmt: skip
    """Emit one layer over row blocks ``blocks`` (``[(b0, m), …]``), double-buffered.

    ``slots``: two ``(in, psum, out)`` entry triples (SBUF, PSUM, SBUF), block ``i`` uses
    slot ``i mod 2``; K tile k of the input at ``in + k·stride``, N tile t at
    ``psum/out + t·stride``. ``src``: a DRAM :class:`Region` (``batch × fi``) to DMA-load from,
    or None to RECV from the link (one RECV of ``m`` rows per K tile); ``dst``: a DRAM Region
    to store to, or None to SEND on (one SEND per N tile). The weights and parameters must be
    loaded with READY signalled once (the first LOADW takes it).

    Per block ``i``: input pieces (the first waits FREE when ``i ≥ 2``; each signals INFULL)
    → LOADW/MATMULs (the MATMUL of N tile 0, K tile k takes INFULL; the last K tile of each N
    tile signals PFULL) → ACT per N tile (PFULL → OFULL) → output per N tile (takes OFULL;
    the last one signals FREE when block ``i + 2`` exists, else ``last_signal`` for the last
    block). The input of block ``i + 2`` is emitted after the output of block ``i``. FREE
    frees all three buffers of the slot: the output's completion follows its ACT's, which
    follows its MATMUL's, and every queue signals in program order (docs/core.md), so all
    MATMULs, ACTs and outputs of block ``i`` are complete.
    """
    R, pb = p.rows, gsbuf.pbits(p)
    tw = min(R, p.cols)
    nk, nn = _ceil(fi, kt), _ceil(fo, tw)
    pieces3 = 3 * gcore.param_pieces(p)
    nb = len(blocks)
    single_w = nk * nn == 1  # one weight tile: load it once, it stays active

    def emit_in(i):
        b0, m = blocks[i]
        slot = slots[i % 2][0]
        for k in range(nk):
            kc = min(kt, fi - k * kt)
            wait = s.FREE if i >= 2 and k == 0 else None
            e = slot + k * stride
            if src is None:
                prog.add(recv((e, [(m, 1)]), kc, wait=wait, signal=s.INFULL))
            else:
                prog.add(dma_load((src.addr + b0 * fi + k * kt, [(kc, 1), (m, fi)]),
                                  (e << pb, [(kc, 1), (m, 1 << pb)]),
                                  wait=wait, signal=s.INFULL))  # fmt: skip

    first = True
    if single_w:
        prog.add(loadw(w_e, fi, fo, wait=s.READY))
        first = False
    for i in range(min(2, nb)):
        emit_in(i)
    for i, (b0, m) in enumerate(blocks):
        e_in, e_ps, e_out = slots[i % 2]
        for t in range(nn):
            wc = min(tw, fo - t * tw)
            for k in range(nk):
                kc = min(kt, fi - k * kt)
                if not single_w:
                    prog.add(loadw(w_e + (t * nk + k) * tw, kc, wc,
                                   wait=s.READY if first else None))  # fmt: skip
                    first = False
                prog.add(matmul((e_in + k * stride, [(m, 1)]), kc, wc, e_ps + t * stride,
                                accumulate=k > 0, wait=s.INFULL if t == 0 else None,
                                signal=s.PFULL if k == nk - 1 else None))  # fmt: skip
            prog.add(act((e_ps + t * stride, [(m, 1)]), e_out + t * stride, wc, src_psum=True,
                         params=par_e + t * pieces3, zero_point=lay.get("zero_point", 0),
                         func="relu" if lay.get("relu", True) else "identity",
                         wait=s.PFULL, signal=s.OFULL))  # fmt: skip
        for t in range(nn):
            wc = min(tw, fo - t * tw)
            if t < nn - 1:
                sig = None
            elif i + 2 < nb:
                sig = s.FREE
            else:
                sig = last_signal if i == nb - 1 else None
            o = e_out + t * stride
            if dst is None:
                prog.add(send((o, [(m, 1)]), wc, wait=s.OFULL, signal=sig))
            else:
                prog.add(dma_store((o << pb, [(wc, 1), (m, 1 << pb)]),
                                   (dst.addr + b0 * fo + t * tw, [(wc, 1), (m, fo)]),
                                   wait=s.OFULL, signal=sig))  # fmt: skip
        if i + 2 < nb:
            emit_in(i + 2)


def _mlp_buffers(p, sb, nk, nn, rows) -> tuple[list, int]:
    """Two ``(in, psum, out)`` slots of ``rows`` rows per tile; PSUM from entry 0."""
    slots = []
    for j in range(2):
        slots.append((sb(nk * rows), j * nn * rows, sb(nn * rows)))
    if 2 * nn * rows > p.psum_depth:
        raise ValueError(f"needs {2 * nn * rows} PSUM entries, the core has {p.psum_depth}")
    return slots, rows


def mlp_pipeline(params: NCoreParams, x, layers: list[dict], *, micro: int = 16,
                 dram_base: int = 0) -> ChipDirected:  # fmt: skip
    """The requantised int8 MLP of :func:`mlp` as a pipeline over the chip's cores.

    Layer ``L`` runs on core ``L`` (``len(layers) ≤ params.cores``; further cores get no
    program), its weights and requantisation parameters loaded once into that core's SBUF
    and kept there. The batch streams through in micro-batches of ``micro`` rows: core 0
    DMA-loads a micro-batch of ``x``, every core computes its layer (LOADW/MATMUL per weight
    tile into PSUM, ACT requantises per N tile of ``min(rows, cols)`` features into an SBUF
    output buffer: features on partitions, one entry per batch row and N tile) and SENDs the
    result to the next core, one SEND of ``m`` rows per N tile; the next core RECVs it, one
    RECV per K tile (its K tiling is the previous layer's N tiling), straight into the
    activation layout its MATMULs read. The last layer's core stores its output to DRAM
    (region ``out``, ``batch × F_last``). Any feature sizes (tiled); ``batch`` need not be a
    multiple of ``micro``.

    Each core has two slots of (input, PSUM, output) buffers; micro-batch ``i`` uses slot
    ``i mod 2``, so the input of ``i + 1`` (RECV or DMA) overlaps the compute of ``i``.
    Semaphores per core (each with one waiting queue): FENCE (weight-load chain) → READY
    (first LOADW); INFULL (each input piece → the MATMULs of N tile 0, one per K tile);
    PFULL (last K tile's MATMUL → ACT); OFULL (ACT → SEND / store); FREE (the last SEND /
    store of micro-batch ``i`` → the input of ``i + 2``, which reuses the slot). See
    :func:`_mlp_stage`.

    SBUF per core ``L``: ``nk·nn·tw`` weight entries + ``nn·3P`` parameter entries +
    ``2·(nk + nn)·micro`` activation entries (``nk``/``nn``: K/N tiles of the layer);
    PSUM: ``2·nn·micro`` entries.
    """
    p = params
    x = np.asarray(x)
    feats = _mlp_check(x, layers)
    nl = len(layers)
    if nl > p.cores:
        raise ValueError(f"{nl} layers need {nl} cores, the chip has {p.cores}")
    if micro < 1:
        raise ValueError("micro must be ≥ 1")
    batch = x.shape[0]
    R = p.rows
    tw = min(R, p.cols)
    pieces3 = 3 * gcore.param_pieces(p)
    mb = min(micro, batch)
    blocks = [(b0, min(mb, batch - b0)) for b0 in range(0, batch, mb)]
    vals = _mlp_values(layers, feats)

    dr = _Dram(dram_base)
    rx = dr.alloc("x", x.shape, np.int8, x)
    programs: list = [None] * p.cores
    sbuf_use, psum_use = [], []
    stage_loads = []
    for L, lay in enumerate(layers):
        fi, fo = feats[L], feats[L + 1]
        kt = R if L == 0 else tw
        nk, nn = _ceil(fi, kt), _ceil(fo, tw)
        sb = _SbufAlloc(p)
        w_e, par_e = sb(nk * nn * tw), sb(nn * pieces3)
        slots, stride = _mlp_buffers(p, sb, nk, nn, mb)
        loads = _mlp_layer_loads(p, dr, L, lay, vals[L], fi, fo, kt, w_e, par_e)
        stage_loads.append((kt, w_e, par_e, slots, stride, loads))
        sbuf_use.append(sb.top)
        psum_use.append(2 * nn * mb)
    ro = dr.alloc("out", (batch, feats[-1]), np.int8)

    for L, lay in enumerate(layers):
        kt, w_e, par_e, slots, stride, loads = stage_loads[L]
        s = _Sems(p, "FENCE", "READY", "INFULL", "PFULL", "OFULL", "FREE")
        prog = Program()
        _emit_chain(prog, loads, s.FENCE, s.READY)
        _mlp_stage(prog, p, s, lay=lay, fi=feats[L], fo=feats[L + 1], kt=kt, w_e=w_e,
                   par_e=par_e, slots=slots, stride=stride, blocks=blocks,
                   src=rx if L == 0 else None, dst=ro if L == nl - 1 else None)  # fmt: skip
        prog.add(end())
        programs[L] = prog.words

    # Programs after the data, each 64-byte aligned.
    placed: list = [None] * p.cores
    top = dr.top
    for c, words in enumerate(programs):
        if words is None:
            continue
        base = _ceil(top, isa.WORD_BYTES) * isa.WORD_BYTES
        dr.layout[f"program{c}"] = Region(base, (len(words) * isa.WORD_BYTES,), "uint8")
        dr.data.append((base, isa.to_bytes(words)))
        placed[c] = (base, len(words))
        top = base + len(words) * isa.WORD_BYTES
    size = _ceil(top + 64, 4096) * 4096
    dram = np.zeros(size, dtype=np.uint8)
    for addr, raw in dr.data:
        dram[addr : addr + len(raw)] = np.frombuffer(raw, dtype=np.uint8)

    expected = _mlp_reference(x, layers, vals)
    info = {"n_tile": tw, "layers": nl, "micro": mb, "micro_batches": len(blocks),
            "sbuf_entries": sbuf_use, "psum_entries": psum_use}  # fmt: skip
    return ChipDirected("mlp_pipeline", p, programs, dram, placed, dr.layout,
                        {"out": expected}, info)  # fmt: skip


def mlp_layerwise(params: NCoreParams, x, layers: list[dict], *, block_rows: int | None = None,
                  dram_base: int = 0) -> Directed:  # fmt: skip
    """The requantised int8 MLP of :func:`mlp` on one core, layer by layer through DRAM.

    For each layer: load its weights and parameters (a fence chain), then stream the whole
    activation from DRAM in blocks of ``block_rows`` rows (default: as many as fit the SBUF
    and PSUM, at most the batch), double-buffered as in :func:`mlp_pipeline` (input DMA →
    MATMULs → ACT → store), storing the requantised activation to DRAM (regions ``h1`` …,
    the last one ``out``); the next layer reloads it. Every layer's K tiles are ``rows``
    wide (its input comes from DRAM). A layer starts when the previous one is done: its
    first weight load waits LAYER, signalled by the previous layer's last store (whose
    completion, with in-order signalling, means every instruction of that layer completed),
    so all SBUF and PSUM buffers are reused. Loads of a layer's input follow the stores of
    the previous layer in the same (DMA) queue, which orders them.
    """
    p = params
    x = np.asarray(x)
    feats = _mlp_check(x, layers)
    nl = len(layers)
    batch = x.shape[0]
    R = p.rows
    tw = min(R, p.cols)
    pieces3 = 3 * gcore.param_pieces(p)
    vals = _mlp_values(layers, feats)
    nks = [_ceil(f, R) for f in feats[:-1]]
    nns = [_ceil(f, tw) for f in feats[1:]]
    nk_max, nn_max = max(nks), max(nns)
    w_max = max(a * b for a, b in zip(nks, nns, strict=True)) * tw
    fixed = w_max + nn_max * pieces3
    if block_rows is None:
        limit = min((p.sbuf_depth - fixed) // (2 * (nk_max + nn_max)),
                    p.psum_depth // (2 * nn_max))  # fmt: skip
        block_rows = max(1, min(batch, limit))
    mb = block_rows
    blocks = [(b0, min(mb, batch - b0)) for b0 in range(0, batch, mb)]
    sb = _SbufAlloc(p)
    w_e, par_e = sb(w_max), sb(nn_max * pieces3)
    slots, stride = _mlp_buffers(p, sb, nk_max, nn_max, mb)

    dr = _Dram(dram_base)
    rx = dr.alloc("x", x.shape, np.int8, x)
    acts = [rx]
    for L in range(1, nl):
        acts.append(dr.alloc(f"h{L}", (batch, feats[L]), np.int8))
    s = _Sems(p, "FENCE", "READY", "INFULL", "PFULL", "OFULL", "FREE", "LAYER")
    all_loads = [_mlp_layer_loads(p, dr, L, lay, vals[L], feats[L], feats[L + 1], R, w_e, par_e)
                 for L, lay in enumerate(layers)]  # fmt: skip
    ro = dr.alloc("out", (batch, feats[-1]), np.int8)
    acts.append(ro)
    prog = Program()
    for L, lay in enumerate(layers):
        _emit_chain(prog, all_loads[L], s.FENCE, s.READY, first_wait=s.LAYER if L else None)
        _mlp_stage(prog, p, s, lay=lay, fi=feats[L], fo=feats[L + 1], kt=R, w_e=w_e,
                   par_e=par_e, slots=slots, stride=stride, blocks=blocks, src=acts[L],
                   dst=acts[L + 1], last_signal=s.LAYER if L < nl - 1 else None)  # fmt: skip
    prog.add(end())
    dram, base = dr.finish(prog)
    expected = _mlp_reference(x, layers, vals)
    info = {"n_tile": tw, "layers": nl, "block_rows": mb, "blocks": len(blocks),
            "sbuf_entries": sb.top, "psum_entries": 2 * nn_max * mb}  # fmt: skip
    return Directed("mlp_layerwise", p, prog, dram, base, dr.layout, {"out": expected}, info)


__all__ += ["ChipDirected", "mlp_layerwise", "mlp_pipeline"]
