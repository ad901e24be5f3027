# amaranth: UnusedElaboratable=no
"""The instruction decoder (hw/decoder.py) in the Amaranth simulator, against
``golden.core.validate``.

* Random instruction words — legal ones from the assembler (golden/program.py) with random
  fields, and mutations of them (bit flips in header, body and tail; fields set to random
  or edge values; pattern starts moved to the edge of the memory; bad semaphores, dtypes
  and configs; random opcodes; random words) — one by one through the decoder, on three
  parameter sets: the verdict (legal with its engine, or code, entry flag, address, index
  and engine) equals the golden model's, and the latency is the documented one. Every
  verdict class must occur, so the test cannot pass vacuously.
* Backpressure on ``o_instr`` holds the instruction; the error is sticky and ``clear``
  resumes, also dropping an instruction in progress or waiting on ``o_instr``.
* The decoder converts to Verilog for every parameter set.
"""

import collections

import numpy as np
import pytest
from amaranth.back import verilog

from amsim import simulate
from ncore import isa
from ncore.golden import core as gcore
from ncore.golden import program as gp
from ncore.golden import vector_engine as gve
from ncore.golden.core import ENGINE_OF, Engine
from ncore.hw.decoder import Decoder
from ncore.isa import CoreError, Op
from ncore.params import NCoreParams

PARAMS = {
    "default": NCoreParams(),
    "fp": NCoreParams(
        rows=4, cols=4, dtypes=("int8", "bf16"), sbuf_depth=256, psum_depth=64, semaphores=8
    ),
    "odd": NCoreParams(
        rows=3, cols=5, dtypes=("int8", "fp16", "bf16"), sbuf_depth=64, psum_depth=32
    ),
}
WORDS = 3000  # per parameter set

_FIELDS = {op: isa.flatten(isa.layout_of(op)) for op in Op}


# -- stimulus ---------------------------------------------------------------------------------


def _sem(rng, p):
    return int(rng.integers(0, p.semaphores)) if rng.random() < 0.3 else None


def _counts(rng):
    nd = int(rng.integers(1, 4))
    cs = [int(rng.choice([1, 1, 2, 3, 4, 5, 8])) for _ in range(nd)]
    if rng.random() < 0.05:
        cs[int(rng.integers(nd))] = int(rng.integers(1, 1 << 16))  # large: needs stride 0
    return cs + [1] * (3 - nd)


def _strides(rng, counts, depth):
    out = []
    for c in counts:
        if c == 1:  # stride ignored: anything
            out.append(int(rng.integers(-(1 << 19), 1 << 19)))
        elif c > depth:
            out.append(0)
        else:
            m = max(1, (depth - 1) // (c - 1) // 2)
            out.append(int(rng.integers(-m, m + 1)))
    return out


def _fit(rng, counts, depth, tries=20):
    """``(start, strides)`` with the whole pattern in ``0 … depth − 1``."""
    for _ in range(tries):
        ss = _strides(rng, counts, depth)
        lo, hi = gcore.pattern_extent(0, list(zip(counts, ss, strict=True)))
        if hi - lo <= depth - 1:
            return int(rng.integers(-lo, depth - hi)), ss
    return 0, [0, 0, 0]


def _ap(start, counts, strides):
    return start, list(zip(counts, strides, strict=True))


def legal_word(rng, p: NCoreParams) -> int:
    """A random legal instruction, built with the assembler."""
    hdr = {"wait": _sem(rng, p), "signal": _sem(rng, p)}
    kind = rng.choice(
        ["nop", "end", "dma_load", "dma_store", "loadw", "matmul", "act"],
        p=[0.06, 0.06, 0.09, 0.09, 0.2, 0.25, 0.25],
    )
    sd, pd = p.sbuf_depth, p.psum_depth
    if kind == "nop":
        return gp.nop(**hdr)
    if kind == "end":
        return gp.end(**hdr)
    if kind.startswith("dma"):
        dram = (
            int(rng.integers(0, 1 << 32)),
            [(int(rng.integers(0, 1 << 16)), int(rng.integers(0, 1 << 32))) for _ in range(3)],
        )
        sbuf = (
            int(rng.integers(0, 1 << 32)),
            [(int(rng.integers(0, 1 << 16)), int(rng.integers(0, 1 << 32))) for _ in range(3)],
        )
        fn = gp.dma_load if kind == "dma_load" else gp.dma_store
        return fn(dram, sbuf, int(rng.integers(0, 4)), **hdr)
    if kind == "loadw":
        n = int(rng.integers(1, p.cols + 1))
        start, ss = _fit(rng, [n, 1, 1], sd)
        return gp.loadw(start, int(rng.integers(1, p.rows + 1)), n, ss[0], **hdr)
    if kind == "matmul":
        cs = _counts(rng)
        start, ss = _fit(rng, cs, sd)
        pstart, pss = _fit(rng, cs, pd)
        return gp.matmul(
            _ap(start, cs, ss),
            int(rng.integers(1, p.rows + 1)),
            int(rng.integers(1, p.cols + 1)),
            (pstart, pss),
            dtype=str(rng.choice(p.dtypes)),
            accumulate=bool(rng.integers(2)),
            **hdr,
        )
    # ACT
    cs = _counts(rng)
    src_psum = bool(rng.integers(2))
    start, ss = _fit(rng, cs, pd if src_psum else sd)
    op = int(rng.integers(0, 3))
    ins = [0, 1, 2, 3, 4] if p.has_fp else [0, 3]
    outs = [0, 1, 2] if p.has_fp else [0]
    pieces = gcore.param_pieces(p)
    params = int(rng.integers(0, sd - 3 * pieces + 1)) if rng.random() < 0.4 else None
    return gp.act(
        _ap(start, cs, ss),
        _fit(rng, cs, sd),
        int(rng.integers(1, p.rows + 1)),
        b=_fit(rng, cs, sd),
        src_psum=src_psum,
        params=params,
        op=op,
        in_type=int(rng.choice(ins)),
        out_type=int(rng.choice(outs)),
        func=int(rng.integers(0, 3)),
        saturate=int(rng.integers(2)),
        zero_point=int(rng.integers(-128, 128)),
        clamp_lo=int(rng.integers(0, 1 << 32)),
        clamp_hi=int(rng.integers(0, 1 << 32)),
        **hdr,
    )


def _bits(rng, w):
    return int.from_bytes(rng.bytes((w + 7) // 8), "little") & ((1 << w) - 1)


def _set_bits(word, offset, width, value):
    mask = ((1 << width) - 1) << offset
    return word & ~mask | (value << offset) & mask


def _field(op, name):
    for n, off, w, s in _FIELDS[op]:
        if n == name:
            return off, w, s
    raise KeyError(name)


def _patterns(p, op, f):
    """``[(start field, dims, depth)]`` of the patterns ``op`` uses, in checking order."""
    sd, pd = p.sbuf_depth, p.psum_depth
    if op == Op.LOADW:
        return [("start", [(f["n"], f["stride"]), (1, 0), (1, 0)], sd)]
    if op == Op.MATMUL:
        cs = [d["count"] for d in f["mov"]["dims"]]
        return [
            ("mov.start", [(d["count"], d["stride"]) for d in f["mov"]["dims"]], sd),
            (
                "psum.start",
                [(c, s["stride"]) for c, s in zip(cs, f["psum"]["strides"], strict=True)],
                pd,
            ),
        ]
    if op == Op.ACT:
        cs = [d["count"] for d in f["src"]["dims"]]
        out = []
        if f["load_params"]:
            out.append(("params", [(3 * gcore.param_pieces(p), 1), (1, 0), (1, 0)], sd))
        out.append(
            (
                "src.start",
                [(d["count"], d["stride"]) for d in f["src"]["dims"]],
                pd if f["src_psum"] else sd,
            )
        )
        for name in (["b"] if f["config"]["op"] != gve.Op.ACT else []) + ["dst"]:
            out.append(
                (
                    f"{name}.start",
                    [(c, s["stride"]) for c, s in zip(cs, f[name]["strides"], strict=True)],
                    sd,
                )
            )
        return out
    return []


def mutate(rng, p: NCoreParams, word: int) -> int:
    if word & 0x1F not in set(Op):
        return word ^ 1 << int(rng.integers(0, isa.WORD_BITS))
    op = Op(word & 0x1F)
    how = rng.choice(
        ["flip", "header", "field", "edge", "sem", "code", "wide", "opcode", "random"],
        p=[0.15, 0.08, 0.23, 0.26, 0.07, 0.08, 0.03, 0.05, 0.05],
    )
    if how == "flip":
        for _ in range(int(rng.integers(1, 3))):
            word ^= 1 << int(rng.integers(0, isa.WORD_BITS))
        return word
    if how == "header":
        return word ^ 1 << int(rng.integers(0, 32))
    if how == "sem":
        which = str(rng.choice(["wait", "signal"]))
        off, w, _ = _field(op, f"{which}_en")
        word = _set_bits(word, off, 1, 1)
        off, w, _ = _field(op, f"{which}_sem")
        return _set_bits(word, off, w, int(rng.integers(max(0, p.semaphores - 2), 32)))
    if how == "code":  # a MATMUL dtype or ACT config code
        if op not in (Op.MATMUL, Op.ACT):
            return word ^ 1 << int(rng.integers(0, 32))
        names = (
            ["dtype"]
            if op == Op.MATMUL
            else [f"config.{n}" for n in ("op", "in_type", "out_type", "func")]
        )
        off, w, _ = _field(op, str(rng.choice(names)))
        return _set_bits(word, off, w, int(rng.integers(0, 1 << w)))
    if how == "wide" and op in (Op.MATMUL, Op.ACT):  # (c − 1)·s beyond ±2³¹ (else: "edge")
        d = int(rng.integers(3))
        own = "mov" if op == Op.MATMUL else "src"
        off, w, _ = _field(op, f"{own}.dims[{d}].count")
        word = _set_bits(word, off, w, int(rng.integers(1 << 15, 1 << 16)))
        names = [f"{own}.dims[{d}].stride"] + [
            f"{x}.strides[{d}].stride" for x in (["psum"] if op == Op.MATMUL else ["b", "dst"])
        ]
        off, w, _ = _field(op, str(rng.choice(names)))
        sign = int(rng.choice([-1, 1]))
        return _set_bits(word, off, w, sign * int(rng.integers(1 << 16, 1 << 19)))
    if how == "opcode":
        return _set_bits(word, 0, 5, int(rng.integers(0, 32)))
    if how == "random":
        return int.from_bytes(rng.bytes(64), "little")
    if how == "field":  # a random field: random bits or an edge value
        name, off, w, signed = _FIELDS[op][int(rng.integers(len(_FIELDS[op])))]
        edges = [
            0,
            1,
            2,
            (1 << w) - 1,
            1 << (w - 1),
            (1 << (w - 1)) - 1,
            p.rows,
            p.rows + 1,
            p.cols,
            p.cols + 1,
            p.sbuf_depth - 1,
            p.sbuf_depth,
            p.psum_depth - 1,
            p.psum_depth,
            3,
            4,
            5,
        ]
        v = int(rng.choice(edges)) if rng.random() < 0.5 else _bits(rng, w)
        return _set_bits(word, off, w, v)
    # "edge": move a used pattern's start so that its extent just fits or just leaves
    _, f = isa.decode(word)
    pats = _patterns(p, op, f)
    if not pats:
        return word ^ 1 << int(rng.integers(32, isa.WORD_BITS))
    name, dims, depth = pats[int(rng.integers(len(pats)))]
    lo, hi = gcore.pattern_extent(0, dims)
    if rng.random() < 0.5:
        start = depth - 1 - hi + int(rng.integers(0, 2))  # highest at depth − 1 or depth
    else:
        start = -lo - int(rng.integers(0, 2))  # lowest at 0 or −1
    off, w, _ = _field(op, name)
    if not 0 <= start < 1 << w:
        return word
    return _set_bits(word, off, w, start)


def random_word(rng, p):
    word = legal_word(rng, p)
    if rng.random() < 0.6:
        word = mutate(rng, p, word)
        if rng.random() < 0.2:
            word = mutate(rng, p, word)
    return word


def verdict(p, word, index):
    """What the decoder must report: ("ok", engine) or ("err", code, entry, addr, engine)."""
    v = gcore.validate(p, word)
    if v is None:
        return ("ok", ENGINE_OF[Op(word & 0x1F)])
    code, addr = v
    eng = Engine.DISPATCH if code == CoreError.ILLEGAL_OPCODE else ENGINE_OF[Op(word & 0x1F)]
    return ("err", code, int(addr is not None), 0 if addr is None else addr, eng)


def bad_pattern(p, word):
    """``(position, lowest, highest)`` of the first out-of-range pattern (position 1-based,
    among the patterns the instruction uses), or None."""
    op, f = isa.decode(word)
    for i, (name, dims, depth) in enumerate(_patterns(p, op, f)):
        start = f
        for part in name.split("."):
            start = start[part]
        lo, hi = gcore.pattern_extent(start, dims)
        if lo < 0 or hi >= depth:
            return i + 1, lo, hi
    return None


def latency(p, word):
    """Cycles from the take to o_instr.valid / error (the module docstring's table)."""
    v = gcore.validate(p, word)
    if v is not None and v[0] in (CoreError.ILLEGAL_OPCODE, CoreError.ILLEGAL_FIELD):
        return 3
    if v is None:
        pats = _patterns(p, *isa.decode(word))
        return 7 + len(pats) if pats else 3
    return 7 + bad_pattern(p, word)[0]


# -- simulation -------------------------------------------------------------------------------


async def _offer(ctx, dut, word, index):
    """Present one instruction until it is taken; returns after the taking edge."""
    ctx.set(dut.i_instr.payload.word, word)
    ctx.set(dut.i_instr.payload.index, index)
    ctx.set(dut.i_instr.valid, 1)
    for _ in range(50):
        if ctx.get(dut.i_instr.ready):
            break
        await ctx.tick()
    else:
        raise AssertionError("i_instr never ready")
    await ctx.tick()
    ctx.set(dut.i_instr.valid, 0)


async def _wait_outcome(ctx, dut):
    """Cycles since the take until o_instr.valid or error (one cycle has passed)."""
    cycles = 1
    while not (ctx.get(dut.o_instr.valid) or ctx.get(dut.error)):
        assert ctx.get(dut.busy)
        await ctx.tick()
        cycles += 1
        assert cycles < 30, "no verdict"
    return cycles


def _read_error(ctx, dut):
    return (
        "err",
        CoreError(ctx.get(dut.err_code)),
        ctx.get(dut.err_entry),
        ctx.get(dut.err_addr),
        Engine(ctx.get(dut.err_engine)),
    )


@pytest.mark.parametrize("name", list(PARAMS))
def test_random_words(name, seed):
    p = PARAMS[name]
    rng = np.random.default_rng(seed(500 + list(PARAMS).index(name)))
    cases = []
    for _ in range(WORDS):
        w = random_word(rng, p)
        cases.append((w, int(rng.integers(0, 1 << 32))))
    seen = collections.Counter()
    dut = Decoder(p)

    async def tb(ctx):
        for word, index in cases:
            want = verdict(p, word, index)
            await _offer(ctx, dut, word, index)
            cycles = await _wait_outcome(ctx, dut)
            assert cycles == latency(p, word), (hex(word), want)
            if ctx.get(dut.o_instr.valid):
                got = ("ok", Engine(ctx.get(dut.o_instr.payload.engine)))
                assert got == want, hex(word)
                assert ctx.get(dut.o_instr.payload.word) == word
                assert ctx.get(dut.o_instr.payload.index) == index
                assert not ctx.get(dut.error) and not ctx.get(dut.i_instr.ready)
                for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.2 else 0):
                    await ctx.tick()  # backpressure: the instruction stays
                    assert ctx.get(dut.o_instr.valid) and ctx.get(dut.o_instr.payload.word) == word
                ctx.set(dut.o_instr.ready, 1)
                await ctx.tick()
                ctx.set(dut.o_instr.ready, 0)
                assert not ctx.get(dut.o_instr.valid) and not ctx.get(dut.busy)
                seen[want[:2]] += 1
            else:
                got = _read_error(ctx, dut)
                assert got == want, hex(word)
                assert ctx.get(dut.err_index) == index
                assert not ctx.get(dut.i_instr.ready) and not ctx.get(dut.busy)
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                assert not ctx.get(dut.error) and ctx.get(dut.i_instr.ready)
                seen[want[:2]] += 1
                if want[1] in (CoreError.SBUF_RANGE, CoreError.PSUM_RANGE):
                    at, lo, hi = bad_pattern(p, word)
                    seen["range: lowest < 0" if lo < 0 else "range: highest ≥ depth"] += 1
                    seen["range: |entry| ≥ 2³¹"] += max(-lo, hi) >= 1 << 31
                    seen["range: not the first pattern"] += at > 1

    simulate(dut, tb)
    print(name, dict(seen))
    classes = [("ok", e) for e in (Engine.DMA, Engine.TENSOR, Engine.VECTOR, Engine.CONTROL)]
    classes += [
        ("err", c)
        for c in (
            CoreError.ILLEGAL_OPCODE,
            CoreError.ILLEGAL_FIELD,
            CoreError.SBUF_RANGE,
            CoreError.PSUM_RANGE,
        )
    ]
    classes += [
        "range: lowest < 0",
        "range: highest ≥ depth",
        "range: |entry| ≥ 2³¹",
        "range: not the first pattern",
    ]
    for c in classes:
        assert seen[c] >= 8, (c, dict(seen))
    assert sum(v for k, v in seen.items() if isinstance(k, tuple)) == WORDS


def test_directed_words():
    """The golden model's own error cases (tests/test_golden_core.py) and edge words."""
    p = PARAMS["odd"]
    sd, pd = p.sbuf_depth, p.psum_depth
    mov = (0, [(2, 1)])
    words = [
        gp.loadw(sd - 3, 1, 3),  # highest sd − 1: legal
        gp.loadw(sd - 2, 1, 3),  # highest sd
        gp.loadw(2, 1, 3, stride=-1),  # lowest 0: legal
        gp.loadw(1, 1, 3, stride=-1),  # lowest −1
        gp.loadw(0, 1, 5, stride=-(1 << 19)),  # lowest −2²¹: address modulo 2³²
        gp.matmul((5, [(2, 1), (3, 30)]), 1, 1),
        gp.matmul((0, [(65535, 0), (65535, 0), (65535, 0)]), 1, 1, (0, [0, 0, 0])),  # legal
        gp.matmul((0, [(65535, 0), (65535, 0), (2, 1)]), 1, 1, (0, [-(1 << 19)] * 3)),
        gp.matmul((0, [(65535, 0)] * 3), 1, 1, ((1 << 20) - 1, [(1 << 19) - 1] * 3)),
        gp.matmul((0, [(3, 1)]), 1, 1, (pd - 2, [1])),
        gp.act(mov, 0, 1, params=sd - 3 * gcore.param_pieces(p)),  # legal
        gp.act(mov, 0, 1, params=sd - 3 * gcore.param_pieces(p) + 1),
        gp.act((pd, [(1, 1)]), 0, 1, src_psum=True),
        gp.act((pd - 1, [(1, 1)]), 0, 1, src_psum=True),  # legal
        gp.act(mov, 0, 1, op="max", b=(sd - 1, [1])),
        gp.act(mov, 0, 1, op="act", b=(sd - 1, [1])),  # b unused: legal
        gp.act(mov, (3, [-4]), 1),
        gp.act(mov, 0, 1, out_type="int32"),
        gp.act(mov, 0, 1, in_type="fp32", out_type="bf16"),  # legal (FP build)
        gp.act(mov, 0, 1, in_type=5),
        gp.matmul(mov, 1, 1, dtype=3),
        gp.nop(wait=p.semaphores - 1, signal=p.semaphores - 1),  # legal
        gp.nop(wait=p.semaphores),
        isa.encode(Op.NOP, {"wait_sem": 31, "signal_sem": 30}),  # disabled: legal
        gp.end() | 1 << 511,
        6,
        31 | 1 << 300,
        # PSUM_STORE: legal at dispatch whatever its patterns (the DMA engine checks them).
        gp.dma_store_psum(((1 << 32) - 1, [(3, 1 << 31)]), (0, [(3, 4)]), wait=0, signal=1),
        gp.dma_store_psum((0, [(0, 1)]), (0, [(1, 4)])),
    ]
    dut = Decoder(p)
    got_all = []

    async def tb(ctx):
        for i, word in enumerate(words):
            await _offer(ctx, dut, word, i)
            assert await _wait_outcome(ctx, dut) == latency(p, word)
            if ctx.get(dut.o_instr.valid):
                got_all.append(("ok", Engine(ctx.get(dut.o_instr.payload.engine))))
                ctx.set(dut.o_instr.ready, 1)
                await ctx.tick()
                ctx.set(dut.o_instr.ready, 0)
            else:
                got_all.append(_read_error(ctx, dut))
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)

    simulate(dut, tb)
    want = [verdict(p, w, i) for i, w in enumerate(words)]
    assert got_all == want
    assert sum(v[0] == "ok" for v in want) == 11
    assert want[-2:] == [("ok", Engine.DMA)] * 2
    assert want[4] == ("err", CoreError.SBUF_RANGE, 1, (-(1 << 21)) & 0xFFFF_FFFF, Engine.TENSOR)


def test_backpressure_holds():
    p = PARAMS["default"]
    dut = Decoder(p)
    first, second = (
        gp.matmul((0, [(4, 1)]), 8, 8, signal=3),
        gp.dma_load((0, [(1, 1)]), (0, [(1, 1)])),
    )

    async def tb(ctx):
        await _offer(ctx, dut, first, 7)
        assert await _wait_outcome(ctx, dut) == 9
        ctx.set(dut.i_instr.payload.word, second)
        ctx.set(dut.i_instr.valid, 1)  # the next one waits
        for _ in range(20):
            assert ctx.get(dut.o_instr.valid) and ctx.get(dut.busy)
            assert ctx.get(dut.o_instr.payload.word) == first
            assert ctx.get(dut.o_instr.payload.index) == 7
            assert ctx.get(dut.o_instr.payload.engine) == Engine.TENSOR
            assert not ctx.get(dut.i_instr.ready)
            await ctx.tick()
        ctx.set(dut.o_instr.ready, 1)
        await ctx.tick()
        assert not ctx.get(dut.o_instr.valid) and ctx.get(dut.i_instr.ready)
        ctx.set(dut.i_instr.payload.index, 8)
        await ctx.tick()  # the DMA is taken
        ctx.set(dut.i_instr.valid, 0)
        assert await _wait_outcome(ctx, dut) == 3
        assert ctx.get(dut.o_instr.payload.word) == second
        assert ctx.get(dut.o_instr.payload.index) == 8
        assert ctx.get(dut.o_instr.payload.engine) == Engine.DMA
        await ctx.tick()  # ready still 1: taken
        assert not ctx.get(dut.o_instr.valid) and not ctx.get(dut.busy)

    simulate(dut, tb)


def test_error_sticky_and_clear():
    p = PARAMS["default"]
    dut = Decoder(p)
    bad = gp.loadw(p.sbuf_depth - 1, 1, 2)  # SBUF_RANGE at sbuf_depth
    good = gp.act((0, [(2, 1)]), 4, 8, op="add", b=8, params=100)  # 4 patterns

    async def tb(ctx):
        await _offer(ctx, dut, bad, 42)
        assert await _wait_outcome(ctx, dut) == 8
        ctx.set(dut.o_instr.ready, 1)
        ctx.set(dut.i_instr.payload.word, good)
        ctx.set(dut.i_instr.valid, 1)  # offered, never taken while the error stands
        for _ in range(20):
            assert ctx.get(dut.error) and not ctx.get(dut.i_instr.ready)
            assert not ctx.get(dut.o_instr.valid) and not ctx.get(dut.busy)
            assert ctx.get(dut.err_code) == CoreError.SBUF_RANGE and ctx.get(dut.err_entry)
            assert ctx.get(dut.err_addr) == p.sbuf_depth and ctx.get(dut.err_index) == 42
            assert ctx.get(dut.err_engine) == Engine.TENSOR
            await ctx.tick()
        ctx.set(dut.clear, 1)
        assert not ctx.get(dut.i_instr.ready)  # not taken during the clear
        await ctx.tick()
        ctx.set(dut.clear, 0)
        assert not ctx.get(dut.error)
        for sig in (dut.err_code, dut.err_entry, dut.err_addr, dut.err_index, dut.err_engine):
            assert ctx.get(sig) == 0
        ctx.set(dut.i_instr.payload.index, 43)
        assert ctx.get(dut.i_instr.ready)
        await ctx.tick()  # taken
        ctx.set(dut.i_instr.valid, 0)
        assert await _wait_outcome(ctx, dut) == 11
        assert ctx.get(dut.o_instr.payload.index) == 43 and not ctx.get(dut.error)
        await ctx.tick()
        # clear in the middle of the pattern checks drops the instruction
        ctx.set(dut.o_instr.ready, 0)
        for at in range(1, 12):
            await _offer(ctx, dut, good, 44)
            for _ in range(at - 1):
                await ctx.tick()
            ctx.set(dut.clear, 1)
            assert not ctx.get(dut.o_instr.valid)  # also while offered (at = 11)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for _ in range(15):
                assert not ctx.get(dut.o_instr.valid) and not ctx.get(dut.error)
                assert not ctx.get(dut.busy) and ctx.get(dut.i_instr.ready)
                await ctx.tick()
        # an illegal opcode: engine DISPATCH, entry 0, address 0
        await _offer(ctx, dut, 17, 45)
        assert await _wait_outcome(ctx, dut) == 3
        assert _read_error(ctx, dut) == ("err", CoreError.ILLEGAL_OPCODE, 0, 0, Engine.DISPATCH)
        assert ctx.get(dut.err_index) == 45

    simulate(dut, tb)


@pytest.mark.parametrize("name", list(PARAMS))
def test_verilog(name):
    v = verilog.convert(Decoder(PARAMS[name]), name="decoder")
    assert "module decoder" in v
