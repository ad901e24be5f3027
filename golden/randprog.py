"""Constrained-random NeuronCore programs: valid, correctly synchronised, and varied.

:func:`random_program` builds a program in *phases*. Within a phase every engine gets a few
random actions on its own SBUF/PSUM regions (no two engines write a region another one
touches), so the engines run concurrently; optionally a *chain* (DMA load → LOADW/MATMUL →
ACT → DMA store) passes data from engine to engine through semaphores within the phase.
A phase ends with a barrier: every queue that was used ends with a *marker* instruction that
signals its barrier semaphore, the control queue waits for all of them (one NOP each) and
then signals one *go* semaphore per queue, which the first instruction of that queue in the
next phase waits on. Every wait names an instruction emitted earlier, so any queue depth
works (no dispatch deadlock), and every semaphore has one waiting queue.

Instruction fields are random within the build: MATMUL dtypes among ``params.dtypes``,
``k``/``n``, accumulate or overwrite, 1–3-D access patterns with positive, negative and zero
strides (PSUM rows may repeat), DMA gathers, transposes and contiguous runs (1- or 2-byte
elements), DMA ``PSUM_STORE`` of PSUM regions written in earlier phases (rows of columns,
transposed, contiguous or pitched in DRAM), ACT op/types/function/saturation/zero
point/clamp bounds, with and without parameter loads. The result's final state does not
depend on the engines' relative speed, which :func:`check_schedule_independent` verifies on
the ISS with several pick orders.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import isa
from ..params import DTYPE_CODE, NCoreParams
from . import core as gcore
from . import program as asm
from . import psum as gpsum
from . import sbuf as gsbuf
from . import vector_engine as gve

__all__ = ["RandomProgram", "check_schedule_independent", "random_program"]


@dataclass
class RandomProgram:
    params: NCoreParams
    words: list
    dram: np.ndarray  #: initial DRAM: inputs, zeroed outputs, the program at ``base``
    base: int
    info: dict


class _Gen:
    def __init__(self, p: NCoreParams, rng: np.random.Generator, sregions: int, pregions: int):
        self.p, self.rng = p, rng
        self.R = p.sbuf_depth // sregions
        self.P = p.psum_depth // pregions
        self.ns, self.np_ = sregions, pregions
        self.pb = gsbuf.pbits(p)
        self.words: list[int] = []
        self.queue_of: list[int] = []

    # -- patterns ----------------------------------------------------------------------------
    def counts(self, max_elems=48):
        r = self.rng
        while True:
            c = [int(r.integers(1, 9)), int(r.integers(1, 5)), int(r.integers(1, 4))]
            nd = int(r.integers(1, 4))
            c = c[:nd] + [1] * (3 - nd)
            if c[0] * c[1] * c[2] <= max_elems:
                return c

    def strides(self, counts, size, signed=True):
        r = self.rng
        for _ in range(100):
            lo = -3 if signed else 0
            s = [int(r.integers(lo, 4)) for _ in range(3)]
            if counts[0] > 1 and r.random() < 0.5:
                s[0] = 1
            if counts[1] > 1:
                s[1] = int(r.integers(lo * 3, 13)) if r.random() < 0.5 else counts[0] * s[0]
            if counts[2] > 1:
                s[2] = int(r.integers(lo * 6, 25))
            s = [s[d] if counts[d] > 1 else int(r.integers(lo, 4)) for d in range(3)]
            offs = [(c - 1) * st for c, st in zip(counts, s, strict=True)]
            mn = sum(min(0, o) for o in offs)
            mx = sum(max(0, o) for o in offs)
            if mx - mn < size:
                return s, mn, mx
        return [0, 0, 0], 0, 0

    def entry_ap(self, region_lo, size, counts=None):
        counts = counts or self.counts()
        s, mn, mx = self.strides(counts, size)
        start = region_lo - mn + int(self.rng.integers(0, size - (mx - mn)))
        return (start, list(zip(counts, s, strict=True))), counts

    def follow(self, counts, region_lo, size):
        s, mn, mx = self.strides(counts, size)
        start = region_lo - mn + int(self.rng.integers(0, size - (mx - mn)))
        return (start, s)

    # -- emission ----------------------------------------------------------------------------
    def emit(self, word, queue):
        self.words.append(word)
        self.queue_of.append(queue)


def random_program(
    params: NCoreParams,
    rng: np.random.Generator,
    *,
    phases: int = 3,
    sbuf_regions: int = 8,
    psum_regions: int = 4,
    in_bytes: int = 4096,
    out_bytes: int = 4096,
    dram_base: int = 0,
) -> RandomProgram:
    """A random valid program with its DRAM image (see the module docstring).

    The program reads ``in_bytes`` of random input at ``dram_base``, writes only the
    ``out_bytes`` after them, and sits right after that (so programs with different
    ``dram_base`` can run side by side on several cores)."""
    p = params
    if p.rows & (p.rows - 1):
        raise ValueError("random programs need a power-of-two row count (DMA patterns)")
    if p.semaphores < 9:
        raise ValueError("random programs need at least 9 semaphores")
    g = _Gen(p, rng, sbuf_regions, psum_regions)
    r = rng
    has_fp = p.has_fp
    esizes = [0, 1] if has_fp else [0]
    in_base, out_base = dram_base, dram_base + in_bytes
    bar = {0: 0, 1: 1, 2: 2}
    go = {0: 3, 1: 4, 2: 5}
    chain_sems = (6, 7, 8)
    go_pending: set[int] = set()
    stats = {"chains": 0}

    def waits_go(q):
        if q in go_pending:
            go_pending.discard(q)
            return go[q]
        return None

    def dma_load(region, wait=None, signal=None):
        esize = int(r.choice(esizes))
        pb, R = g.pb, g.R
        lo, size = (region * R) << pb, R << pb
        counts = g.counts(max_elems=64)
        if r.random() < 0.5:  # contiguous chunks on the SBUF side
            sdims_s, mn, mx = (
                [1, counts[0], counts[0] * counts[1]],
                0,
                counts[0] * counts[1] * counts[2] - 1,
            )
            if mx >= size:
                sdims_s, mn, mx = g.strides(counts, size, signed=False)
        else:
            sdims_s, mn, mx = g.strides(counts, size, signed=False)
        sstart = lo - mn + int(r.integers(0, size - (mx - mn)))
        eb = 1 << esize
        ds, dmn, dmx = g.strides(counts, in_bytes // eb, signed=False)
        if r.random() < 0.5:
            ds = [1, counts[0], counts[0] * counts[1]]
            dmx = counts[0] * counts[1] * counts[2] - 1
        ds = [d * eb for d in ds]
        dstart = in_base + int(r.integers(0, in_bytes - dmx * eb - eb + 1)) // eb * eb
        g.emit(
            asm.dma_load(
                (dstart, list(zip(counts, ds, strict=True))),
                (sstart, list(zip(counts, sdims_s, strict=True))),
                esize, wait=wait, signal=signal,
            ),
            0,
        )  # fmt: skip

    def dma_store(region, wait=None, signal=None):
        esize = int(r.choice(esizes))
        pb, R = g.pb, g.R
        lo, size = (region * R) << pb, R << pb
        counts = g.counts(max_elems=64)
        ss, mn, mx = g.strides(counts, size, signed=False)
        sstart = lo - mn + int(r.integers(0, size - (mx - mn)))
        eb = 1 << esize
        if r.random() < 0.5:
            ds = [1, counts[0], counts[0] * counts[1]]
            dmx = counts[0] * counts[1] * counts[2] - 1
        else:
            # Distinct addresses: a store pattern that revisits a byte is legal, but keep
            # the generator's DRAM writes unambiguous.
            ds = [1, counts[0] + int(r.integers(0, 3)), 0]
            ds[2] = ds[1] * counts[1] + int(r.integers(0, 3))
            dmx = sum((c - 1) * s for c, s in zip(counts, ds, strict=True))
        ds = [d * eb for d in ds]
        dstart = out_base + int(r.integers(0, out_bytes - dmx * eb - eb + 1)) // eb * eb
        g.emit(
            asm.dma_store(
                (sstart, list(zip(counts, ss, strict=True))),
                (dstart, list(zip(counts, ds, strict=True))),
                esize, wait=wait, signal=signal,
            ),
            0,
        )  # fmt: skip

    def psum_store(region, wait=None, signal=None):
        """PSUM → DRAM of PSUM region ``region`` (existing columns only, so any ``cols``)."""
        C = 1 << gpsum.cbits(p)
        c = g.counts(max_elems=48)
        if r.random() < 0.5:  # rows of columns: (c0 columns, c1 entries, c2 entries)
            c[0] = min(c[0], p.cols)
            col = int(r.integers(0, p.cols - c[0] + 1))
            e = [0, int(r.integers(0, 3)), int(r.integers(0, 4))]
            if c[0] == p.cols and r.random() < 0.5:
                e[1], e[2] = 1, c[1]  # whole consecutive entries
        else:  # transposed: (c0 entries, c1 columns, c2 entries)
            c[1] = min(c[1], p.cols)
            col = int(r.integers(0, p.cols - c[1] + 1))
            e = [int(r.integers(1, 3)), 0, int(r.integers(0, 4))]
        span = sum((n - 1) * s for n, s in zip(c, e, strict=True))
        if span >= g.P:
            c, e = [c[0], 1, 1], [e[0], 0, 0]
            c[0] = min(c[0], g.P // max(1, e[0]))
        span = sum((n - 1) * s for n, s in zip(c, e, strict=True))
        entry = region * g.P + int(r.integers(0, g.P - span))
        if e[1] == 0 and e[0] != 0:  # transposed: columns are the middle dimension
            strides = [C * e[0], 1, C * e[2]]
        else:
            strides = [1, C * e[1], C * e[2]]
        n = c[0] * c[1] * c[2]
        if r.random() < 0.5:
            ds = [4, 4 * c[0], 4 * c[0] * c[1]]
        else:  # pitched rows, distinct addresses
            ds = [4, 4 * c[0] + 4 * int(r.integers(0, 3)), 0]
            ds[2] = ds[1] * c[1] + 4 * int(r.integers(0, 3))
        dmx = sum((k - 1) * s for k, s in zip(c, ds, strict=True)) + 4
        dstart = out_base + int(r.integers(0, out_bytes - dmx + 1))
        assert n <= 48
        g.emit(
            asm.dma_store_psum(
                ((entry << gpsum.cbits(p)) + col, list(zip(c, strides, strict=True))),
                (dstart, list(zip(c, ds, strict=True))), wait=wait, signal=signal,
            ),
            0,
        )  # fmt: skip

    def loadw(region, wait=None, signal=None):
        k, n = int(r.integers(1, p.rows + 1)), int(r.integers(1, p.cols + 1))
        st, mn, mx = g.strides([n, 1, 1], g.R)
        start = region * g.R - mn + int(r.integers(0, g.R - (mx - mn)))
        g.emit(asm.loadw(start, k, n, st[0], wait=wait, signal=signal), 1)
        return k, n

    def matmul(sregion, pregion, k, n, wait=None, signal=None):
        (start, dims), counts = g.entry_ap(sregion * g.R, g.R)
        follow = g.follow(counts, pregion * g.P, g.P)
        dtype = str(r.choice(p.dtypes))
        g.emit(
            asm.matmul((start, dims), int(r.integers(1, k + 1)) if r.random() < 0.3 else k,
                       n, follow, dtype=DTYPE_CODE[dtype], accumulate=bool(r.random() < 0.5),
                       wait=wait, signal=signal),
            1,
        )  # fmt: skip

    def act(src_region, src_psum, b_region, dst_region, params_region, wait=None, signal=None):
        ops = [gve.Op.ACT, gve.Op.ADD, gve.Op.MAX]
        op = ops[int(r.integers(0, 3))] if b_region is not None else gve.Op.ACT
        if src_psum:
            in_types = [gve.VType.INT32] + ([gve.VType.FP32] if has_fp else [])
        else:
            in_types = [gve.VType.INT8] + ([gve.VType.FP16, gve.VType.BF16] if has_fp else [])
        out_types = [gve.VType.INT8] + ([gve.VType.FP16, gve.VType.BF16] if has_fp else [])
        size = g.P if src_psum else g.R
        (start, dims), counts = g.entry_ap(src_region * size, size)
        dst = g.follow(counts, dst_region * g.R, g.R)
        b = g.follow(counts, b_region * g.R, g.R) if b_region is not None else None
        prm = None
        if params_region is not None:
            pieces = 3 * gcore.param_pieces(p)
            prm = params_region * g.R + int(r.integers(0, g.R - pieces + 1))
        g.emit(
            asm.act(
                (start, dims), dst, int(r.integers(1, p.rows + 1)), b=b, src_psum=src_psum,
                params=prm, op=int(op), in_type=int(r.choice(in_types)),
                out_type=int(r.choice(out_types)), func=int(r.integers(0, 3)),
                saturate=int(r.integers(0, 2)), zero_point=int(r.integers(-128, 128)),
                clamp_lo=int(r.integers(0, 2**32)), clamp_hi=int(r.integers(0, 2**32)),
                wait=wait, signal=signal,
            ),
            2,
        )  # fmt: skip

    scratch = g.ns - 1  # markers' region (never read by anything else)

    def marker(q, wait=None, signal=None):
        """A small instruction of queue ``q`` on the scratch region (reads entry 0 of it,
        the DMA writes entry 2 and the vector engine entry 1)."""
        e = scratch * g.R
        if q == 0:
            g.emit(asm.dma_load((in_base, [(1, 1)]), ((e + 2) << g.pb, [(1, 1)]),
                                wait=wait, signal=signal), 0)  # fmt: skip
        elif q == 1:
            g.emit(asm.loadw(e, 1, 1, wait=wait, signal=signal), 1)
        else:
            g.emit(asm.act((e, [(1, 1)]), e + 1, 1, in_type="int8", wait=wait,
                           signal=signal), 2)  # fmt: skip

    def release(q):
        """Take queue ``q``'s go semaphore with a marker if nothing of it has yet."""
        if q in go_pending:
            marker(q, wait=waits_go(q))

    for phase in range(phases):
        sfree = [i for i in r.permutation(g.ns - 1)]
        pfree = [i for i in r.permutation(g.np_)]
        used = set()
        # Regions: the chain's (private), then written regions (private), then read-only.
        chain = bool(r.random() < 0.7) and len(sfree) >= 4 and pfree
        if phase == 0:
            chain = False
        if chain:
            c_in, c_out = sfree.pop(), sfree.pop()
            c_ps = pfree.pop()
        w_dma = [sfree.pop() for _ in range(min(len(sfree) // 3, 2))]
        w_act = [sfree.pop()] if sfree else []
        w_psum = [pfree.pop()] if pfree else []
        readable = sfree  # nobody writes these in this phase
        psum_readable = pfree
        # Phase 0 fills everything with data first.
        if phase == 0:
            for reg in range(g.ns - 1):
                dma_load(reg, wait=None)
            used.add(0)
        else:
            # DMA actions
            if w_dma or readable:
                first = True
                for reg in w_dma:
                    dma_load(reg, wait=waits_go(0) if first else None)
                    first = False
                    used.add(0)
                for _ in range(int(r.integers(0, 2))):
                    if readable:
                        dma_store(int(r.choice(readable)), wait=waits_go(0) if first else None)
                        first = False
                        used.add(0)
                if psum_readable and r.random() < 0.5:
                    psum_store(int(r.choice(psum_readable)), wait=waits_go(0) if first else None)
                    first = False
                    used.add(0)
            # Tensor actions
            if w_psum and readable:
                for i in range(int(r.integers(1, 3))):
                    reg = int(r.choice(readable))
                    k, n = loadw(reg, wait=waits_go(1) if i == 0 else None)
                    for _ in range(int(r.integers(1, 3))):
                        matmul(int(r.choice(readable)), w_psum[0], k, n)
                used.add(1)
            # Vector actions
            if w_act and (readable or psum_readable):
                for i in range(int(r.integers(1, 3))):
                    src_psum = bool(psum_readable) and (not readable or r.random() < 0.6)
                    src = int(r.choice(psum_readable if src_psum else readable))
                    b = int(r.choice(readable)) if readable and r.random() < 0.6 else None
                    prm = int(r.choice(readable)) if readable and r.random() < 0.5 else None
                    act(src, src_psum, b, w_act[0], prm, wait=waits_go(2) if i == 0 else None)
                used.add(2)
            if chain:
                stats["chains"] += 1
                s1, s2, s3 = chain_sems
                dma_load(c_in, wait=waits_go(0), signal=s1)
                release(1)
                k, n = loadw(c_in, wait=s1)
                last = int(r.integers(1, 3))
                for j in range(last):
                    matmul(c_in, c_ps, k, n, signal=s2 if j == last - 1 else None)
                release(2)
                act(c_ps, True, None, c_out, None, wait=s2, signal=s3)
                dma_store(c_out, wait=s3)
                used |= {0, 1, 2}
        # Every queue takes its go semaphore in every phase, so none is left signalled.
        for q in (0, 1, 2):
            release(q)
            used.add(q)
        # Barrier: markers, then the control queue joins and releases.
        for q in sorted(used):
            marker(q, signal=bar[q])
        for q in sorted(used):
            g.emit(asm.nop(wait=bar[q]), 3)
        for q in sorted(used):
            g.emit(asm.nop(signal=go[q]), 3)
            go_pending.add(q)
    # Leave no semaphore signalled but unused: drain the go semaphores with NOPs.
    for q in sorted(go_pending):
        g.emit(asm.nop(wait=go[q]), 3)
    g.emit(asm.end(), 3)

    words = g.words
    base = -(-(out_base + out_bytes) // 64) * 64
    dram = np.zeros(base + 64 * len(words), dtype=np.uint8)
    dram[in_base : in_base + in_bytes] = r.integers(0, 256, in_bytes, dtype=np.uint8)
    dram[base:] = np.frombuffer(isa.to_bytes(words), dtype=np.uint8)
    stats["words"] = len(words)
    return RandomProgram(p, words, dram, base, stats)


def check_schedule_independent(rp: RandomProgram, sbuf=None, psum=None, picks=None) -> None:
    """Run ``rp`` on the ISS with several pick orders; raise if any final state differs."""
    picks = picks or [None, list(reversed(gcore.PRIORITY)), np.random.default_rng(5)]
    ref = None
    for pick in picks:
        core = gcore.Core(rp.params, rp.dram)
        if sbuf is not None:
            core.sbuf[...] = sbuf
        if psum is not None:
            core.psum.mem[...] = psum
        res = core.run(program_base=rp.base, program_len=len(rp.words), pick=pick)
        if not res.ok:
            raise AssertionError(f"random program failed on the ISS: {res.error!r}")
        state = (core.dram.copy(), core.sbuf.copy(), core.psum.mem.copy())
        if ref is None:
            ref = state
        elif not all(np.array_equal(a, b) for a, b in zip(ref, state, strict=True)):
            raise AssertionError(f"random program depends on the schedule (pick {pick!r})")
