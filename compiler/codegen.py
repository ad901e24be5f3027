"""Code generation: a :class:`ncore.compiler.ir.Net` → one program per core and a DRAM image.

Every layer is a DRAM → DRAM kernel, software-pipelined in *steps* (a group of whole images,
or a band of output rows of one image), double-buffered in SBUF and PSUM:

* **Mat kernel** (:class:`~ncore.compiler.ir.MatLayer`). Step ``i``: the DMA loads the input
  rows of every input-channel tile into SBUF buffer ``i mod 2`` (one transfer per tile,
  usually one for all tiles: the blocked layout makes a band contiguous); the tensor engine,
  for each output-channel tile, input tile, kernel tap and weight matrix, loads the weight
  tile and streams the step's rows through it (the tap is an offset and strides of the
  ``mov`` pattern over the padded image: stride and dilation are pattern strides),
  accumulating into PSUM half ``i mod 2``; the vector engine requantises each output tile into
  SBUF buffer ``i mod 2``; the DMA stores it into the output tensor's interior.
* **Vector kernel** (:class:`~ncore.compiler.ir.VecLayer`): loads as above, then a chain of
  ACT instructions (MAX over the pooling taps, ADD, or a requantising copy), then the store.

Synchronisation (four semaphores, each waited on by one queue; every queue signals in program
order, ``docs/core.md``): ``IN`` (last load of step ``i`` → first tensor instruction of step
``i``, or ``VIN`` → first ACT for vector kernels), ``PFULL`` (last MATMUL → first ACT),
``OFULL`` (last ACT → first store). The DMA queue runs ``L0, L1, S0, L2, S1, …`` (the loads of
step ``i + 1`` before the store of step ``i``), so a load of step ``i`` signals only after the
store of step ``i − 2`` completed: the buffers of step ``i − 2`` (SBUF output, PSUM half) are
free when step ``i`` uses them, and a load into input buffer ``i + 1`` starts after the store
of step ``i − 1`` started, i.e. after the MATMULs of step ``i − 1`` completed. The last store
of a layer signals ``DRAIN``, which the first load of the next layer waits for (the next layer
reads what it wrote; SBUF is reallocated per layer). Between layers whose work is split
differently over the cores, a ``BARRIER`` (waiting ``DRAIN``, signalling ``BAR``) orders them
chip-wide.

Partitioning over cores: *data* mode splits every layer's images over the cores (by
output-channel tiles when a layer has fewer images than cores, with barriers); *pipeline* mode
gives each core a contiguous group of layers (balanced by the cycle model) and runs
micro-batches through them in lock-step ticks separated by chip barriers; *auto* compiles
both and keeps the one the cycle model predicts faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import isa
from ..golden import core as gcore
from ..golden import cycles as gcycles
from ..golden import psum as gpsum
from ..golden import sbuf as gsbuf
from ..golden.program import (
    Program,
    _load_params_desc,
    _param_block,
    act,
    barrier,
    dma_load,
    dma_store,
    dma_store_psum,
    end,
    loadw,
    matmul,
)
from ..params import NCoreParams
from .ir import MatLayer, Net, Tensor, Unsupported, VecLayer

__all__ = ["Compiled", "compile_net"]

IN, PFULL, OFULL, DRAIN, VIN, BAR, PSTORE = range(7)
_MAX_COUNT = (1 << 16) - 1
_ESIZE = {1: 0, 2: 1}


def _ceil(a, b):
    return -(-a // b)


# -- DMA transfers with any number of dimensions ------------------------------------------------


def _dma_dims(dims):
    """Drop unit dims and merge dims that are contiguous on both sides.

    ``dims``: ``[(count, dram_stride, sbuf_stride)]``, innermost first."""
    out = []
    for c, ds, ss in dims:
        if c == 1:
            continue
        if out:
            pc, pds, pss = out[-1]
            if pds * pc == ds and pss * pc == ss and pc * c <= _MAX_COUNT:
                out[-1] = (pc * c, pds, pss)
                continue
        out.append((c, ds, ss))
    return out or [(1, 0, 0)]


def _dma(prog: Program, load, dram: int, sbuf: int, dims, ebytes: int, *, wait=None,
         signal=None) -> int:  # fmt: skip
    """Emit one or more DMA instructions moving ``dims``; ``wait`` goes on the first and
    ``signal`` on the last (the DMA queue signals in order). Returns the count emitted."""
    dims = _dma_dims(dims)
    for c, _, _ in dims:
        if c > _MAX_COUNT:
            raise Unsupported(f"a DMA dimension of {c} elements (max {_MAX_COUNT})")
    inner, outer = dims[:3], dims[3:]
    idx = [range(c) for c, _, _ in outer]
    combos = list(np.ndindex(*[len(r) for r in idx])) if outer else [()]
    for j, combo in enumerate(combos):
        d = dram + sum(i * ds for i, (_, ds, _) in zip(combo, outer, strict=True))
        s = sbuf + sum(i * ss for i, (_, _, ss) in zip(combo, outer, strict=True))
        dd = [(c, ds) for c, ds, _ in inner]
        sd = [(c, ss) for c, _, ss in inner]
        kw = {"wait": wait if j == 0 else None,
              "signal": signal if j == len(combos) - 1 else None}  # fmt: skip
        if load == "psum":
            prog.add(dma_store_psum((s, sd), (d, dd), **kw))
        elif load:
            prog.add(dma_load((d, dd), (s, sd), _ESIZE[ebytes], **kw))
        else:
            prog.add(dma_store((s, sd), (d, dd), _ESIZE[ebytes], **kw))
    return len(combos)


# -- tiling --------------------------------------------------------------------------------------


@dataclass
class _Tiling:
    ng: int  #: output-channel tiles per pass
    g: int  #: images per step
    ob: int  #: output rows per step (all of them when g > 1)
    rows_in: int  #: input rows loaded per image and step
    full: bool  #: whole padded images per step (else bands of rows of one image)


def _geometry(layer):
    s_y, s_x = layer.stride
    d_y, d_x = layer.dilation
    return s_y, s_x, d_y, d_x


def _rows_in(layer, ob):
    s_y, _, d_y, _ = _geometry(layer)
    return (ob - 1) * s_y + (layer.kh - 1) * d_y + 1


class _Sbuf:
    def __init__(self, depth):
        self.depth, self.top = depth, 0

    def __call__(self, n):
        e = self.top
        self.top += n
        return e


# -- per-core emitter ----------------------------------------------------------------------------


@dataclass
class _LayerPart:
    layer: object
    n0: int
    n1: int
    tiles: list  #: output-channel tiles of this core


class _Core:
    def __init__(self, p: NCoreParams, index: int, consts):
        self.p, self.index = p, index
        self.prog = Program()
        self.pending = None  # semaphore the next layer's first instruction waits on
        self.barriers = []  # barriers not emitted yet
        self.consts = consts  # (layer id, kind) → DRAM address
        self.spans = []  # (layer name, first word, last word)
        self.B = min(p.rows, p.cols)
        self.pb = gsbuf.pbits(p)
        self.pieces3 = 3 * gcore.param_pieces(p)

    def _take_pending(self):
        self._flush_barriers(final=False)
        w, self.pending = self.pending, None
        return w

    def barrier(self, mask: int = 0):
        """A chip barrier before the next layer. Consecutive barriers are emitted together
        when the next work (or the end) comes: the first waits for this core's last store,
        only the last signals ``BAR`` (the control queue runs them in order), so the one
        ``BAR`` token goes to the next layer's first load."""
        self.barriers.append(mask)

    def _flush_barriers(self, final: bool):
        bars, self.barriers = self.barriers, []
        for i, mask in enumerate(bars):
            wait = self.pending if i == 0 else None
            last = i == len(bars) - 1
            self.prog.add(barrier(mask, wait=wait, signal=BAR if last and not final else None))
        if bars:
            self.pending = None if final else BAR

    def part(self, part: _LayerPart):
        start = len(self.prog)
        if part.n1 > part.n0 and part.tiles:
            if isinstance(part.layer, MatLayer):
                self._mat(part)
            elif part.layer.kind == "transpose":
                self._transpose(part)
            else:
                self._vec(part)
        self.spans.append((part.layer.name, start, len(self.prog)))

    # -- 2-D transpose (DMA only) --------------------------------------------------------------

    def _transpose(self, part: _LayerPart):
        """``y[c, r] = x[r, c]``: each chunk of ``y`` rows is gathered into the SBUF with ``x``'s
        rows on the partitions (a strided DMA per source channel tile), then stored as
        ``y`` rows. A load waits for the previous store (OFULL), a store for its load (VIN)."""
        layer = part.layer
        p, B, pb, prog = self.p, self.B, self.pb, self.prog
        x, y = layer.x, layer.y
        st, si, _, _ = x.strides()
        sty, siy, _, _ = y.strides()
        eb = x.ebytes
        chunk = max(B, (p.sbuf_depth // B) * B)
        jobs = [(rt, c0, min(part.n1, c0 + chunk)) for rt in part.tiles
                for c0 in range(part.n0, part.n1, chunk)]  # fmt: skip
        wait = self._take_pending()
        for k, (rt, c0, c1) in enumerate(jobs):
            rb = min(B, y.c - rt * B)
            tiles = range(c0 // B, -(-c1 // B))
            for j, ct in enumerate(tiles):
                cc0, cc1 = max(c0, ct * B), min(c1, (ct + 1) * B)
                addr = x.addr + ct * st + rt * B * si + (cc0 % B) * eb
                last = j == len(tiles) - 1
                _dma(prog, True, addr, (cc0 - c0) << pb, [(rb, si, 1), (cc1 - cc0, eb, 1 << pb)],
                     eb, wait=(wait if k == 0 else OFULL) if j == 0 else None,
                     signal=VIN if last else None)  # fmt: skip
            final = k == len(jobs) - 1
            _dma(prog, False, y.addr + rt * sty + c0 * siy, 0,
                 [(rb, eb, 1), (c1 - c0, siy, 1 << pb)], eb, wait=VIN,
                 signal=DRAIN if final else OFULL)  # fmt: skip
        self.pending = DRAIN

    # -- the mat kernel ------------------------------------------------------------------------

    def _tile_mat(self, layer: MatLayer, n_img: int, ntiles: int) -> _Tiling:
        p, B = self.p, self.B
        x, y = layer.x, layer.y
        taps = layer.kh * layer.kw
        nci = 1 if layer.depthwise else x.ct
        per_tile_w = nci * taps * len(layer.w) * B + self.pieces3 + self._npass(layer) * B + 1
        ow = y.w
        nw = len(layer.w) + self._npass(layer)
        best, best_cost = None, None
        for ng in range(ntiles, 0, -1):
            tl = self._fit(layer, n_img, ng, per_tile_w)
            if tl is None:
                continue
            # cycles ≈ MATMULs × (rows + fixed overhead), over every pass and step, plus
            # reloading the weights and the inputs once per pass (bus: 16 B/cycle)
            passes = -(-ntiles // ng)
            steps = -(-n_img // tl.g) * -(-y.h // tl.ob)
            rows = tl.g * tl.ob * ow
            mms = ntiles * nci * taps * nw * steps
            cost = mms * (rows + 12) + passes * (x.nbytes // 16) + ntiles * per_tile_w * B // 16
            if best_cost is None or cost < best_cost:
                best, best_cost = tl, cost
        if best is not None:
            return best
        raise Unsupported(
            f"layer {layer.name}: one output row does not fit the SBUF/PSUM "
            f"({p.sbuf_depth}/{p.psum_depth} entries); split the layer"
        )

    def _fit(self, layer, n_img, ng, per_tile_w):
        """The largest step (images, or rows of one image) for ``ng`` tiles per pass."""
        p, x, y = self.p, layer.x, layer.y
        ow = y.w
        w_entries = ng * per_tile_w
        pmax = p.psum_depth // (2 * ng)
        free = p.sbuf_depth - w_entries
        if pmax < ow or free <= 0:
            return None
        if y.h * ow <= pmax:  # whole images per step
            g = min(n_img, pmax // (y.h * ow))
            while g >= 1:
                need = 2 * x.ct * g * x.hp * x.wp + 2 * ng * g * y.h * ow
                if need <= free:
                    return _Tiling(ng, g, y.h, x.hp, True)
                g -= 1
        ob = min(y.h, pmax // ow)
        while ob >= 1:
            ri = _rows_in(layer, ob)
            need = 2 * x.ct * ri * x.wp + 2 * ng * ob * ow
            if need <= free:
                return _Tiling(ng, 1, ob, ri, False)
            ob -= 1
        return None

    def _npass(self, layer) -> int:
        return self.consts.get((layer.name, "npass"), 0) if isinstance(layer, MatLayer) else 0

    def _steps(self, layer, part, t: _Tiling):
        """(n, g images, oy0, ob rows) per step."""
        steps = []
        if t.full:
            for n in range(part.n0, part.n1, t.g):
                steps.append((n, min(t.g, part.n1 - n), 0, layer.y.h))
        else:
            for n in range(part.n0, part.n1):
                for oy in range(0, layer.y.h, t.ob):
                    steps.append((n, 1, oy, min(t.ob, layer.y.h - oy)))
        return steps

    def _load_rows(self, prog, layer, x: Tensor, step, t: _Tiling, buf_e, *, wait, signal,
                   full: bool, tiles=None):  # fmt: skip
        """Input rows of a step for channel tiles ``tiles`` into ``buf_e`` (per tile
        ``g · rows_in · Wp`` entries)."""
        n, g, oy, ob = step
        s_y = layer.stride[0]
        if full:
            r0, rows = 0, x.hp
        else:
            r0 = oy * s_y - layer.pads[0] + x.pads[0]
            rows = _rows_in(layer, ob)
        st, si, sr, sc = x.strides()
        eb, pb = x.ebytes, self.pb
        per_img = rows * x.wp
        tiles = list(range(x.ct)) if tiles is None else tiles
        addr = x.addr + tiles[0] * st + n * si + r0 * sr  # tiles are consecutive
        sb = buf_e << pb
        lanes = self.B
        dims = [(lanes, eb, 1), (x.wp, sc, 1 << pb), (rows, sr, x.wp << pb),
                (g, si, per_img << pb), (len(tiles), st, (t.g * per_img) << pb)]  # fmt: skip
        return _dma(prog, True, addr, sb, dims, eb, wait=wait, signal=signal), per_img

    def _store_rows(self, prog, y: Tensor, step, tile: int, wc: int, out_e: int, *, wait,
                    signal):  # fmt: skip
        n, g, oy, ob = step
        st, si, sr, sc = y.strides()
        eb, pb = y.ebytes, self.pb
        addr = y.addr + y.offset(n, oy, 0, tile)
        dims = [(wc, eb, 1), (y.w, sc, 1 << pb), (ob, sr, y.w << pb), (g, si, (ob * y.w) << pb)]
        return _dma(prog, False, addr, out_e << pb, dims, eb, wait=wait, signal=signal)

    def _mat(self, part: _LayerPart):
        layer: MatLayer = part.layer
        tiles = part.tiles
        tl = self._tile_mat(layer, part.n1 - part.n0, len(tiles))
        passes = [tiles[i : i + tl.ng] for i in range(0, len(tiles), tl.ng)]
        for pi, ptiles in enumerate(passes):
            self._mat_pass(layer, part, tl, ptiles, last=pi == len(passes) - 1)

    def _mat_pass(self, layer: MatLayer, part, tl: _Tiling, ptiles, last: bool):
        p, B, prog, pb = self.p, self.B, self.prog, self.pb
        x, y = layer.x, layer.y
        s_y, s_x, d_y, d_x = _geometry(layer)
        taps = layer.kh * layer.kw
        nw = len(layer.w)
        nci = x.ct
        ng = len(ptiles)
        full = tl.full
        sb = _Sbuf(p.sbuf_depth)
        par_e = sb(ng * self.pieces3)
        ci_list = (lambda t: [t]) if layer.depthwise else (lambda t: list(range(nci)))
        wt_entries = (1 if layer.depthwise else nci) * taps * nw * B
        w_e = sb(ng * wt_entries)
        npass = self._npass(layer)
        wb_e = sb(ng * npass * B)
        one_e = sb(1)
        per_img = tl.rows_in * x.wp
        in_sz = nci * tl.g * per_img
        in_e = [sb(in_sz), sb(in_sz)]
        rows_step = tl.g * tl.ob * y.w
        out_e = [sb(ng * rows_step), sb(ng * rows_step)]
        if sb.top > p.sbuf_depth:  # pragma: no cover - _tile_mat guarantees it
            raise AssertionError("SBUF overflow")
        steps = self._steps(layer, part, tl)

        def prologue():
            wait = self._take_pending()
            # parameters of this pass's tiles
            region = self.consts[(layer.name, "params")]
            t0 = ptiles[0]
            dram, sbuf, es = _load_params_desc(p, region, par_e, B, ng)
            dram = (dram[0] + t0 * B * self.pieces3 * (p.lane_width // 8), dram[1])
            prog.add(dma_load(dram, sbuf, es, wait=wait))
            if layer.w_tensor is None:
                waddr = self.consts[(layer.name, "w")] + t0 * wt_entries * B * x.ebytes
                n_e = ng * wt_entries
                _dma(prog, True, waddr, w_e << pb, [(B, x.ebytes, 1), (n_e, B * x.ebytes,
                     1 << pb)], x.ebytes)  # fmt: skip
            else:
                wt, trans = layer.w_tensor
                st, si, _, _ = wt.strides()
                eb = wt.ebytes
                for j, t in enumerate(ptiles):
                    wc = min(B, y.c - t * B)
                    for c in range(nci):
                        kc = min(B, x.c - c * B)
                        e = w_e + (j * nci + c) * B
                        if not trans:  # W[k, n] = T[k, n]: rows k (images), lanes n
                            a = wt.addr + t * st + c * B * si
                            dims = [(kc, si, 1), (wc, eb, 1 << pb)]
                        else:  # W[k, n] = T[n, k]
                            a = wt.addr + c * st + t * B * si
                            dims = [(kc, eb, 1), (wc, si, 1 << pb)]
                        _dma(prog, True, a, e << pb, dims, eb)
            if npass:
                waddr = self.consts[(layer.name, "wb")] + t0 * npass * B * B
                _dma(prog, True, waddr, wb_e << pb, [(B, 1, 1), (ng * npass * B, B, 1 << pb)],
                     1)  # fmt: skip
                _dma(prog, True, self.consts[(layer.name, "one")], one_e << pb, [(B, 1, 1)], 1)

        def loads(i):
            self._load_rows(prog, layer, x, steps[i], tl, in_e[i % 2], wait=None, signal=IN,
                            full=full)  # fmt: skip

        def compute(i):
            n, g, oy, ob = steps[i]
            pe = (i % 2) * ng * rows_step
            first, nmm = True, 0
            total = sum(len(ci_list(t)) for t in ptiles) * taps * nw + ng * npass
            done = PSTORE if y.etype == "int32" else PFULL
            for j, t in enumerate(ptiles):
                wc = min(B, y.c - t * B)
                acc = False
                for ci_idx, c in enumerate(ci_list(t)):
                    kc = min(B, x.c - c * B)
                    cbase = in_e[i % 2] + c * tl.g * per_img
                    for tap in range(taps):
                        kh, kw = divmod(tap, layer.kw)
                        r = kh * d_y + (x.pads[0] - layer.pads[0] if full else 0)
                        col = kw * d_x - layer.pads[1] + x.pads[1]
                        mov = (cbase + r * x.wp + col,
                               [(y.w, s_x), (ob, s_y * x.wp), (g, per_img)])  # fmt: skip
                        for wi in range(nw):
                            wsel = 0 if layer.depthwise else ci_idx
                            e = w_e + (((j * (1 if layer.depthwise else nci) + wsel) * taps
                                        + tap) * nw + wi) * B  # fmt: skip
                            if layer.w_tensor is not None:
                                e = w_e + (j * nci + c) * B
                            prog.add(loadw(e, kc, wc, wait=IN if first else None))
                            first = False
                            nmm += 1
                            prog.add(matmul(mov, kc, wc, pe + j * rows_step, dtype=layer.dtype,
                                            accumulate=acc,
                                            signal=done if nmm == total else None))  # fmt: skip
                            acc = True
                for q in range(npass):  # the PSUM bias: a constant row through V[q]
                    prog.add(loadw(wb_e + (j * npass + q) * B, B, wc))
                    nmm += 1
                    const = (one_e, [(y.w, 0), (ob, 0), (g, 0)])
                    prog.add(matmul(const, B, wc, pe + j * rows_step, dtype="int8",
                                    accumulate=True,
                                    signal=done if nmm == total else None))  # fmt: skip

        def post(i):
            pe = (i % 2) * ng * rows_step
            for j, t in enumerate(ptiles):
                wc = min(B, y.c - t * B)
                prog.add(self._post_act((pe + j * rows_step, [(rows_step, 1)]),
                                        out_e[i % 2] + j * rows_step, wc, layer, par_e + j *
                                        self.pieces3, wait=PFULL if j == 0 else None,
                                        signal=OFULL if j == ng - 1 else None))  # fmt: skip

        def stores(i, final):
            for j, t in enumerate(ptiles):
                wc = min(B, y.c - t * B)
                self._store_rows(prog, y, steps[i], t, wc, out_e[i % 2] + j * rows_step,
                                 wait=OFULL if j == 0 else None,
                                 signal=DRAIN if final and j == ng - 1 else None)  # fmt: skip

        def psum_stores(i, final):
            # int32 results leave the core from PSUM (DMA PSUM_STORE), row-major N×H×W×C
            n, g, oy, ob = steps[i]
            pe = (i % 2) * ng * rows_step
            cb = gpsum.cbits(p)
            for j, t in enumerate(ptiles):
                wc = min(B, y.c - t * B)
                addr = y.addr + (((n * y.h + oy) * y.w) * y.c + t * B) * 4
                dims = [(wc, 4, 1), (y.w, y.c * 4, 1 << cb), (ob, y.w * y.c * 4, y.w << cb),
                        (g, y.h * y.w * y.c * 4, (ob * y.w) << cb)]  # fmt: skip
                _dma(prog, "psum", addr, (pe + j * rows_step) << cb, dims, 4,
                     wait=PSTORE if j == 0 else None,
                     signal=DRAIN if final and j == ng - 1 else None)  # fmt: skip

        prologue()
        loads(0)
        for i in range(len(steps)):
            if i + 1 < len(steps):
                loads(i + 1)
            compute(i)
            if y.etype == "int32":
                psum_stores(i, final=i == len(steps) - 1)
            else:
                post(i)
                stores(i, final=i == len(steps) - 1)
        self.pending = DRAIN

    def _post_act(self, src, dst, n, layer, par, *, wait, signal):
        fp = layer.y.etype != "int8"
        typ = layer.dtype if fp else "int32"
        return act(src, dst, n, src_psum=True, params=par,
                   in_type="fp32" if fp else typ, out_type=layer.y.etype,
                   func="relu" if layer.post.relu else "identity",
                   zero_point=0 if fp else layer.post.zero_point, wait=wait,
                   signal=signal)  # fmt: skip

    # -- the vector kernel ---------------------------------------------------------------------

    def _tile_vec(self, layer: VecLayer, n_img: int, nt: int):
        p = self.p
        x, y, b = layer.x, layer.y, layer.b
        free = p.sbuf_depth - len(layer.posts()) * x.ct * self.pieces3
        g = n_img
        while g >= 1:
            rows = g * y.h * y.w
            need = 2 * nt * g * x.hp * x.wp + 2 * rows + 2 * nt * rows
            if b is not None:
                need += 2 * nt * g * b.hp * b.wp
            if need <= free:
                return _Tiling(nt, g, y.h, x.hp, True)
            g -= 1
        ob = y.h
        while ob >= 1:
            ri = _rows_in(layer, ob)
            rows = ob * y.w
            need = 2 * nt * ri * x.wp + 2 * rows + 2 * nt * rows
            if b is not None:
                need += 2 * nt * ob * b.wp
            if need <= free:
                return _Tiling(nt, 1, ob, ri, False)
            ob -= 1
        raise Unsupported(f"layer {layer.name}: one output row does not fit the SBUF")

    def _vec(self, part: _LayerPart):
        layer: VecLayer = part.layer
        p, B, prog = self.p, self.B, self.prog
        x, y, b = layer.x, layer.y, layer.b
        tiles = part.tiles
        nt = len(tiles)
        tl = self._tile_vec(layer, part.n1 - part.n0, nt)
        full = tl.full
        s_y, s_x, d_y, d_x = _geometry(layer)
        sb = _Sbuf(p.sbuf_depth)
        regions = self.consts[(layer.name, "params")]
        par_e = sb(len(regions) * x.ct * self.pieces3)
        per_img = tl.rows_in * x.wp
        in_e = [sb(nt * tl.g * per_img) for _ in range(2)]
        if b is not None:
            b_img = (b.hp if full else tl.ob) * b.wp
            b_e = [sb(nt * tl.g * b_img) for _ in range(2)]
        rows_step = tl.g * tl.ob * y.w
        tmp_e = sb(2 * rows_step)
        out_e = [sb(nt * rows_step) for _ in range(2)]
        if sb.top > p.sbuf_depth:  # pragma: no cover - _tile_vec guarantees it
            raise AssertionError("SBUF overflow")
        steps = self._steps(layer, part, tl)
        wait0 = self._take_pending()
        for k, region in enumerate(regions):
            dram, sbuf, es = _load_params_desc(p, region, par_e + k * x.ct * self.pieces3, B,
                                               x.ct)  # fmt: skip
            prog.add(dma_load(dram, sbuf, es, wait=wait0 if k == 0 else None))

        def loads(i):
            self._load_rows(prog, layer, x, steps[i], tl, in_e[i % 2], wait=None,
                            signal=VIN if b is None else None, full=full, tiles=tiles)  # fmt: skip
            if b is not None:
                self._load_rows(prog, _Unit(), b, steps[i], tl, b_e[i % 2], wait=None,
                                signal=VIN, full=full, tiles=tiles)  # fmt: skip

        r0 = x.pads[0] - layer.pads[0] if full else 0
        c0 = x.pads[1] - layer.pads[1]
        cfg = {"in_type": layer.in_type, "out_type": y.etype}
        zp = layer.post.zero_point if y.etype == "int8" else 0
        fn = "relu" if layer.post.relu else "identity"

        def compute(i):
            n, g, oy, ob = steps[i]
            for j, t in enumerate(tiles):
                wc = min(B, y.c - t * B)
                base = in_e[i % 2] + j * tl.g * per_img
                dst = out_e[i % 2] + j * rows_step
                par = par_e + t * self.pieces3
                wait = VIN if j == 0 else None
                sig = OFULL if j == nt - 1 else None

                def view(r, c, base=base):
                    return base + r * x.wp + c, [(y.w, s_x), (ob, s_y * x.wp), (g, per_img)]

                if layer.kind == "max":
                    taps = [(r0 + kh * d_y, c0 + kw * d_x) for kh in range(layer.kh)
                            for kw in range(layer.kw)]  # fmt: skip
                    if len(taps) == 1:
                        prog.add(act(view(*taps[0]), dst, wc, params=par, **cfg, wait=wait,
                                     signal=sig))  # fmt: skip
                        continue
                    cur = None
                    for k in range(1, len(taps)):
                        if cur is None:
                            st0, _ = view(*taps[0])
                            other = (st0, [s_x, s_y * x.wp, per_img])
                        else:
                            other = (cur, [1, y.w, ob * y.w])
                        last = k == len(taps) - 1
                        out = dst if last else tmp_e + (k % 2) * rows_step
                        prog.add(act(view(*taps[k]), out, wc, b=other, op="max",
                                     params=par if k == 1 else None, **cfg,
                                     wait=wait if k == 1 else None,
                                     signal=sig if last else None))  # fmt: skip
                        cur = out
                elif layer.kind == "copy":
                    prog.add(act(view(r0, c0), dst, wc, params=par, **cfg, func=fn,
                                 zero_point=zp, wait=wait, signal=sig))  # fmt: skip
                else:  # add
                    bb = b_e[i % 2] + j * tl.g * b_img
                    bstart = bb + (b.pads[0] * b.wp if full else 0) + b.pads[1]
                    bfollow = (bstart, [1, b.wp, b_img])
                    if len(regions) == 2:  # rescale b first (into tmp), then add
                        prog.add(act((bstart, [(y.w, 1), (ob, b.wp), (g, b_img)]), tmp_e, wc,
                                     params=par + x.ct * self.pieces3, **cfg,
                                     wait=wait))  # fmt: skip
                        bfollow = (tmp_e, [1, y.w, ob * y.w])
                        wait = None
                    prog.add(act(view(r0, c0), dst, wc, b=bfollow, op="add", params=par,
                                 func=fn, zero_point=zp, **cfg, wait=wait, signal=sig))  # fmt: skip

        def stores(i, final):
            for j, t in enumerate(tiles):
                wc = min(B, y.c - t * B)
                self._store_rows(prog, y, steps[i], t, wc, out_e[i % 2] + j * rows_step,
                                 wait=OFULL if j == 0 else None,
                                 signal=DRAIN if final and j == nt - 1 else None)  # fmt: skip

        loads(0)
        for i in range(len(steps)):
            if i + 1 < len(steps):
                loads(i + 1)
            compute(i)
            stores(i, final=i == len(steps) - 1)
        self.pending = DRAIN


class _Unit:
    """A 1×1, stride-1, unpadded geometry (to load the second operand of an Add)."""

    kh = kw = 1
    stride = (1, 1)
    dilation = (1, 1)
    pads = (0, 0, 0, 0)
    name = "b"


# -- whole programs ------------------------------------------------------------------------------


@dataclass
class Compiled:
    """The output of :func:`compile_net`."""

    params: NCoreParams
    net: Net
    mode: str
    programs: list  #: per core: instruction words or None
    dram: np.ndarray  #: initial DRAM image (constants, padding, programs; inputs zero)
    placed: list  #: per core: (program_base, program_len) or None
    spans: list  #: per core: [(layer name, first word, end word)]
    predicted: dict = field(default_factory=dict)  #: cycle model: total, per layer
    layout: dict = field(default_factory=dict)  #: name → (addr, bytes)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.net.layers)

    def with_inputs(self, feeds: dict) -> np.ndarray:
        """The DRAM image with the host-converted inputs written in (raw NHWC arrays)."""
        image = self.dram.copy()
        for name, raw in feeds.items():
            self.net.inputs[name][0].pack(raw, image)
        return image


def _align(a, n=64):
    return -(-a // n) * n


#: The constant SBUF row the bias MATMULs stream (lane 0 is 1 so every integer is reachable).
def _bias_row(B: int) -> np.ndarray:
    return np.array([1] + [127] * (B - 1), np.int8)


def bias_passes(bias, B: int) -> np.ndarray:
    """int8 weight tiles ``V[pass][k][n]`` with ``Σ_pass Σ_k row[k]·V[pass][k][n] = bias[n]``
    for the constant row :func:`_bias_row` (greedy, largest lane first)."""
    row = _bias_row(B).astype(np.int64)
    rest = np.asarray(bias, np.int64).copy()
    passes = []
    while np.any(rest):
        v = np.zeros((B, len(rest)), np.int64)
        for k in np.argsort(-np.abs(row), kind="stable"):
            q = np.clip(np.trunc(rest / row[k]).astype(np.int64), -128, 127)
            v[k] = q
            rest -= q * row[k]
        passes.append(v)
        if len(passes) > 1 << 12:  # pragma: no cover - |bias| < 2^31 needs far fewer
            raise Unsupported("a PSUM bias too large")
    return np.array(passes, np.int8).reshape(-1, B, len(rest))


def _post_block(p: NCoreParams, post, etype: str, ch: int) -> np.ndarray:
    """The DRAM parameter block (scale, bias, shift per lane) of ``post`` over ``ch`` lanes."""

    def pad(v, dt):
        v = np.broadcast_to(np.asarray(v, dt), (ch,)) if np.ndim(v) == 0 else np.asarray(v, dt)
        r = np.zeros(ch, dt)
        r[: len(v)] = v
        return r

    if etype == "int8":
        scale, bias, shift = (pad(post.scale, np.int64), pad(post.bias, np.int64),
                              pad(post.shift, np.int64))  # fmt: skip
    else:
        scale = pad(post.scale, np.float32).view(np.uint32).astype(np.int64)
        bias = pad(post.bias, np.float32).view(np.uint32).astype(np.int64)
        shift = np.zeros(ch, np.int64)
    return _param_block(p, scale, bias, shift, ch)


def _layer_consts(p: NCoreParams, layer, B) -> dict:
    """DRAM constants of a layer: weight tiles and parameter blocks."""
    if isinstance(layer, VecLayer):
        ch = layer.x.ct * B
        return {"params": [_post_block(p, post, "int8" if layer.in_type == "int8" else "fp",
                                       ch) for post in layer.posts()]}  # fmt: skip
    out = {"params": [_post_block(p, layer.post, layer.y.etype, layer.y.ct * B)]}
    if layer.w_tensor is None:
        x, y = layer.x, layer.y
        nco = y.ct
        taps = layer.kh * layer.kw
        nci = 1 if layer.depthwise else x.ct
        nw = len(layer.w)
        dt = np.int8 if layer.dtype == "int8" else np.uint16
        blk = np.zeros((nco, nci, taps, nw, B, B), dt)  # [t][c][tap][w][col j][row k]
        for wi, w in enumerate(layer.w):
            w = np.asarray(w)
            if layer.depthwise:  # taps × C: the diagonal of each tile
                w = w.reshape(taps, y.c)
                for t in range(nco):
                    o0, o1 = t * B, min(y.c, (t + 1) * B)
                    j = np.arange(o1 - o0)
                    blk[t, 0, :, wi, j, j] = w[:, o0:o1].T
                continue
            w = w.reshape(taps, x.c, y.c)
            for t in range(nco):
                o0, o1 = t * B, min(y.c, (t + 1) * B)
                for c in range(nci):
                    i0, i1 = c * B, min(x.c, (c + 1) * B)
                    blk[t, c, :, wi, : o1 - o0, : i1 - i0] = np.transpose(
                        w[:, i0:i1, o0:o1], (0, 2, 1)
                    )
        out["w"] = blk
    if layer.acc_bias is not None:
        n = layer.y.c
        v = bias_passes(np.pad(layer.acc_bias, (0, nco * B - n)), B)  # [pass][k][n]
        wb = np.zeros((nco, len(v), B, B), np.int8)  # [t][pass][col j][row k]
        for t in range(nco):
            wb[t] = np.transpose(v[:, :, t * B : (t + 1) * B], (0, 2, 1))
        out["wb"] = wb
        out["one"] = np.tile(_bias_row(B), 1)
    return out


def _assign(net: Net, p: NCoreParams, B: int):
    """Addresses for every tensor and constant; returns (layout, consts, data, top)."""
    top = 0
    layout, data = {}, []
    for t in net.tensors:
        t.block = B
        t.addr = _align(top)
        top = t.addr + t.nbytes
        layout[t.name] = (t.addr, t.nbytes)
        data.append((t.addr, t.image()))
    consts = {}
    for layer in net.layers:
        for kind, v in _layer_consts(p, layer, B).items():
            vals = v if isinstance(v, list) else [v]
            regions = []
            for k, arr in enumerate(vals):
                addr = _align(top)
                raw = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
                data.append((addr, raw))
                top = addr + len(raw)
                layout[f"{layer.name}.{kind}{k if len(vals) > 1 else ''}"] = (addr, len(raw))
                regions.append(_Region(addr))
            if kind in ("w", "wb", "one"):
                consts[(layer.name, kind)] = regions[0].addr
                if kind == "wb":
                    consts[(layer.name, "npass")] = v.shape[1]
            elif isinstance(layer, VecLayer):
                consts[(layer.name, kind)] = regions
            else:
                consts[(layer.name, kind)] = regions[0]
    return layout, consts, data, top


@dataclass(frozen=True)
class _Region:
    addr: int


def _parts_data(net: Net, p: NCoreParams, cores: int, B: int):
    """Per layer, per core: the work of data-parallel mode, and whether a barrier must
    follow the layer."""
    plan = []
    for layer in net.layers:
        n = layer.y.n
        nt = layer.y.ct
        if n >= cores:
            bounds = [round(c * n / cores) for c in range(cores + 1)]
            parts = [_LayerPart(layer, bounds[c], bounds[c + 1], list(range(nt)))
                     for c in range(cores)]  # fmt: skip
            split = ("n", n)
        else:
            tb = [round(c * nt / cores) for c in range(cores + 1)]
            parts = [_LayerPart(layer, 0, n, list(range(tb[c], tb[c + 1])))
                     for c in range(cores)]  # fmt: skip
            split = ("t", nt)
        plan.append((parts, split))
    return plan


def _mask(p, cores):
    return 0 if cores == p.cores else (1 << cores) - 1


def _emit_data(net, p, cores, B, consts):
    ems = [_Core(p, c, consts) for c in range(cores)]
    plan = _parts_data(net, p, cores, B)
    prev = None
    for parts, split in plan:
        if prev is not None and (split != prev or split[0] != "n") and cores > 1:
            for e in ems:
                e.barrier(_mask(p, cores))
        for e, part in zip(ems, parts, strict=True):
            e.part(part)
        prev = split
    return ems


def _stage_bounds(weights, stages):
    """Contiguous groups of layers with balanced total weight."""
    total = sum(weights)
    bounds, acc, s = [0], 0.0, 1
    for i, w in enumerate(weights):
        acc += w
        if s < stages and acc >= total * s / stages and i + 1 < len(weights):
            bounds.append(i + 1)
            s += 1
    while len(bounds) < stages:
        bounds.append(len(weights))
    bounds.append(len(weights))
    return bounds


def _emit_pipeline(net, p, cores, B, consts, layer_cost):
    stages = min(cores, len(net.layers))
    bounds = _stage_bounds([layer_cost(layer) for layer in net.layers], stages)
    n = net.layers[0].y.n
    for layer in net.layers:
        if layer.y.n != n:
            raise Unsupported("pipeline mode needs every layer to keep the batch size")
    micro = max(1, _ceil(n, 2 * stages))
    batches = [(m, min(n, m + micro)) for m in range(0, n, micro)]
    ems = [_Core(p, c, consts) for c in range(cores)]
    for tick in range(len(batches) + stages - 1):
        for s in range(stages):
            j = tick - s
            if 0 <= j < len(batches):
                n0, n1 = batches[j]
                for layer in net.layers[bounds[s] : bounds[s + 1]]:
                    ems[s].part(_LayerPart(layer, n0, n1, list(range(layer.y.ct))))
        if cores > 1:
            for e in ems:
                e.barrier(_mask(p, cores))
    return ems, {"stages": [[lay.name for lay in net.layers[bounds[s]:bounds[s + 1]]]
                            for s in range(stages)], "micro_batch": micro}  # fmt: skip


def _finish(p, net, mode, ems, data, top, layout, info):
    programs, placed, spans = [], [], []
    for e in ems:
        e._flush_barriers(final=True)
        if len(e.prog) == 0:
            programs.append(None)
            placed.append(None)
            spans.append([])
            continue
        # END takes the last token (DRAIN): every semaphore is back to 0 for the next program
        e.prog.add(end(wait=e._take_pending()))
        words = list(e.prog)
        base = _align(top, isa.WORD_BYTES)
        top = base + len(words) * isa.WORD_BYTES
        data.append((base, np.frombuffer(isa.to_bytes(words), np.uint8)))
        layout[f"program{e.index}"] = (base, len(words) * isa.WORD_BYTES)
        programs.append(words)
        placed.append((base, len(words)))
        spans.append(e.spans)
    size = _align(top + 64, 4096)
    dram = np.zeros(size, np.uint8)
    for addr, raw in data:
        dram[addr : addr + len(raw)] = raw
    limit = 1 << p.axi_addr_width
    if size > limit:
        raise Unsupported(f"the model needs {size} B of DRAM, the address space is {limit} B")
    c = Compiled(p, net, mode, programs, dram, placed, spans, layout=layout)
    c.predicted = predict(c)
    c.predicted.update(info)
    return c


def predict(c: Compiled) -> dict:
    """Cycle-model figures: total and per layer (the latest completion among the cores of
    each layer's instructions, minus the previous layer's)."""
    pred = gcycles.predict_chip(c.params, c.programs)
    ends = {}
    for core, timing in enumerate(pred["cores"]):
        if timing is None:
            continue
        for name, a, b in c.spans[core]:
            if b > a:
                t = max(timing.done.get(i, 0) for i in range(a, b))
                ends[name] = max(ends.get(name, 0), t)
    per, prev = {}, 0
    for layer in c.net.layers:
        e = ends.get(layer.name, prev)
        per[layer.name] = max(0, e - prev)
        prev = max(prev, e)
    return {"total": pred["total"], "layers": per}


def compile_net(params: NCoreParams, net: Net, *, mode: str = "data", cores: int | None = None
                ) -> Compiled:  # fmt: skip
    """Lay out ``net`` in DRAM and emit the programs (see the module docstring)."""
    p = params
    cores = p.cores if cores is None else cores
    if not 1 <= cores <= p.cores:
        raise ValueError(f"cores must be in 1…{p.cores}, not {cores}")
    if mode not in ("data", "pipeline", "auto"):
        raise ValueError(f"mode must be data, pipeline or auto, not {mode!r}")
    if p.semaphores < 7:
        raise Unsupported("the compiler needs 7 semaphores per core")
    for layer in net.layers:
        dt = layer.dtype if isinstance(layer, MatLayer) else layer.in_type
        if dt != "int8" and dt not in p.dtypes:
            raise Unsupported(f"layer {layer.name} needs {dt}; this build has "
                              f"{', '.join(p.dtypes)}")  # fmt: skip
        if dt == "int8" and "int8" not in p.dtypes and isinstance(layer, MatLayer):
            raise Unsupported(f"layer {layer.name} needs int8; this build has "
                              f"{', '.join(p.dtypes)}")  # fmt: skip
    B = min(p.rows, p.cols)
    if mode == "auto":
        best = None
        for m in ("data", "pipeline"):
            try:
                c = compile_net(p, net, mode=m, cores=cores)
            except Unsupported:
                continue
            if best is None or c.predicted["total"] < best.predicted["total"]:
                best = c
        if best is None:
            raise Unsupported("neither data-parallel nor pipeline mode can run this model")
        best.predicted["auto"] = True
        return best
    layout, consts, data, top = _assign(net, p, B)
    if mode == "data" or cores == 1:
        ems = _emit_data(net, p, cores, B, consts)
        info = {}
    else:
        ems, info = _emit_pipeline(net, p, cores, B, consts, _cost_fn(p, net, B, consts))
    ems += [_Core(p, c, consts) for c in range(cores, p.cores)]
    return _finish(p, net, mode if cores > 1 else "data", ems, data, top, layout, info)


def _cost_fn(p, net, B, consts):
    """Cycles of each layer alone on one core (cycle model), to balance pipeline stages."""

    def cost(layer):
        e = _Core(p, 0, consts)
        e.part(_LayerPart(layer, 0, layer.y.n, list(range(layer.y.ct))))
        e.prog.add(end())
        return gcycles.predict(p, list(e.prog)).total

    return cost
