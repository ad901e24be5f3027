# amaranth: UnusedElaboratable=no
"""The vector sequencer with SBUF and PSUM, in the Amaranth simulator: random streams of
legal ACT commands (op, types, func, saturation, zero point, parameter loads, PSUM or SBUF
sources, 1–3-D patterns with negative strides, n) against the golden ISS
(``golden.core.Core`` running the same instruction words), with DMA chunk writes into a
reserved part of the SBUF stealing the row write port on random cycles, and the exact cycle
count of every ACT that runs without that backpressure against ``act_cycles``."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, Value
from amaranth.lib import wiring

from amsim import simulate
from ncore import isa
from ncore.golden import sbuf as gsbuf
from ncore.golden import vector_engine as gve
from ncore.golden.core import Core, param_pieces, pattern_entries
from ncore.hw.psum import PSUM
from ncore.hw.sbuf import SBuf
from ncore.hw.vector_sequencer import VectorSequencer, act_cycles
from ncore.params import NCoreParams
from ncore.verif.stimulus import random_operands

BUILDS = {
    "int8_r8c8": NCoreParams(),
    "fp_r4c4": NCoreParams(rows=4, cols=4, dtypes=("int8", "bf16"), sbuf_depth=256, psum_depth=64),
    "fp_r3c5": NCoreParams(
        rows=3, cols=5, dtypes=("int8", "fp16", "bf16"), sbuf_depth=64, psum_depth=32
    ),
}
#: SBUF entries at the top kept for the DMA's chunk writes (no ACT touches them).
RESERVED = 8
#: ACT commands per random stream.
ACTS = 60


class Unit(wiring.Component):
    def __init__(self, p):
        self.p = p
        self.sbuf = SBuf(p, readers=("vector", "vector_b"), row_writer=True)
        self.psum = PSUM(p)
        self.seq = VectorSequencer(p)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.sbuf, m.submodules.psum, m.submodules.seq = self.sbuf, self.psum, self.seq
        seq, psum = self.seq, self.psum
        wiring.connect(m, seq.src_port, self.sbuf.vector)
        wiring.connect(m, seq.b_port, self.sbuf.vector_b)
        wiring.connect(m, seq.row_w, self.sbuf.row_w)
        m.d.comb += [
            psum.rd_en.eq(seq.psum_rd.en),
            psum.rd_addr.eq(seq.psum_rd.addr),
            seq.psum_rd.data.eq(psum.rd_data),
        ]
        return m


# -- stimulus -------------------------------------------------------------------------------


def _f32(x):
    return int(np.float32(x).view(np.uint32))


def _fit_start(rng, depth, dims):
    """A start that keeps the pattern ``dims`` inside 0 … depth − 1, or None."""
    offs = pattern_entries(0, dims)
    lo, hi = -int(offs.min()), depth - 1 - int(offs.max())
    return None if lo > hi else int(rng.integers(lo, hi + 1))


def _counts(rng, max_rows):
    while True:
        dims = int(rng.choice([1, 2, 3], p=[0.4, 0.3, 0.3]))
        c = [int(rng.integers(1, 9)), 1, 1]
        if dims >= 2:
            c[1] = int(rng.integers(1, 4))
        if dims == 3:
            c[2] = int(rng.integers(1, 4))
        if rng.random() < 0.15:  # now and then a long run: the steady state
            c[0] = int(rng.integers(16, 33))
        if np.prod(c) <= max_rows:
            return c


def _strides(rng):
    return [int(rng.integers(-4, 5)) for _ in range(3)]


def _follow(rng, depth, counts):
    while True:
        strides = _strides(rng)
        start = _fit_start(rng, depth, list(zip(counts, strides, strict=True)))
        if start is not None:
            return start, strides


def _legal(src, b, dst, src_sbuf, use_b):
    """No element reads an entry that an earlier element of the same ACT writes."""
    written = set()
    for r in range(len(dst)):
        if (src_sbuf and int(src[r]) in written) or (use_b and int(b[r]) in written):
            return False
        written.add(int(dst[r]))
    return True


def _config(rng, p, op):
    if p.has_fp:
        in_type = int(rng.choice([gve.VType.INT8, gve.VType.INT32, gve.VType.FP16,
                                  gve.VType.BF16, gve.VType.FP32]))  # fmt: skip
        out_type = int(rng.choice([gve.VType.INT8, gve.VType.FP16, gve.VType.BF16]))
    else:
        in_type = int(rng.choice([gve.VType.INT8, gve.VType.INT32]))
        out_type = int(gve.VType.INT8)
    func = int(rng.choice([gve.Func.IDENTITY, gve.Func.RELU, gve.Func.CLAMP]))
    if in_type in gve.FP_TYPES:
        lo, hi = sorted(rng.uniform(-3, 3, 2))
        clamp = (_f32(lo), _f32(hi))
    else:
        clamp = (int(rng.integers(-200, 1)) & 0xFFFF_FFFF, int(rng.integers(0, 200)))
    return {
        "op": int(op),
        "in_type": in_type,
        "out_type": out_type,
        "func": func,
        "saturate": int(rng.integers(0, 2)),
        "zero_point": int(rng.integers(-128, 128)),
        "clamp_lo": clamp[0],
        "clamp_hi": clamp[1],
    }


def random_act(rng, p, param_blocks, max_rows=40):
    """One legal ACT: (fields, rows)."""
    depth = p.sbuf_depth - RESERVED
    P = param_pieces(p)
    while True:
        op = int(rng.choice([gve.Op.ACT, gve.Op.ADD, gve.Op.MAX]))
        src_psum = bool(rng.random() < 0.4)
        counts = _counts(rng, max_rows)
        strides = _strides(rng)
        dims = list(zip(counts, strides, strict=True))
        start = _fit_start(rng, p.psum_depth if src_psum else depth, dims)
        if start is None:
            continue
        b_start, b_strides = _follow(rng, depth, counts)
        if not src_psum and rng.random() < 0.25:  # results overwrite their own sources
            d_start, d_strides = start, strides
        else:
            d_start, d_strides = _follow(rng, depth, counts)
        src = pattern_entries(start, dims)
        b = pattern_entries(b_start, list(zip(counts, b_strides, strict=True)))
        dst = pattern_entries(d_start, list(zip(counts, d_strides, strict=True)))
        if not _legal(src, b, dst, not src_psum, op != gve.Op.ACT):
            continue
        load = bool(rng.random() < 0.5)
        if load and param_blocks and rng.random() < 0.7:
            params = int(rng.choice(param_blocks))
        else:
            params = int(rng.integers(0, depth - 3 * P + 1))
        fields = {
            "config": _config(rng, p, op),
            "src_psum": int(src_psum),
            "load_params": int(load),
            "n": int(rng.integers(1, p.rows + 1)),
            "params": params if load else int(rng.integers(0, 1 << 20)),
            "src": {"start": start, "dims": [{"count": c, "stride": s} for c, s in dims]},
            "b": {"start": b_start, "strides": [{"stride": s} for s in b_strides]},
            "dst": {"start": d_start, "strides": [{"stride": s} for s in d_strides]},
        }
        return fields, len(src)


def initial_state(rng, p):
    """SBUF (lane bits), PSUM and the entries of parameter blocks worth loading."""
    dtype = np.uint8 if p.lane_width == 8 else np.uint16
    sbuf = np.zeros((p.rows, p.sbuf_depth), dtype)
    kinds = ["int8", "fp16", "bf16", "bits"] if p.has_fp else ["int8"]
    for e in range(p.sbuf_depth):
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "int8":
            col = random_operands(rng, p.rows, "int8").view(np.uint8).astype(dtype)
        elif kind == "bits":
            col = rng.integers(0, 1 << p.lane_width, p.rows).astype(dtype)
        else:
            col = random_operands(rng, p.rows, kind).astype(dtype)
        sbuf[:, e] = col
    psum = rng.integers(-300, 300, (p.cols, p.psum_depth)).astype(np.int64) & 0xFFFF_FFFF
    fp_cols = rng.random(p.psum_depth) < 0.5
    fp_vals = (rng.standard_normal((p.cols, p.psum_depth)) * 4).astype(np.float32)
    psum = np.where(fp_cols, fp_vals.view(np.uint32), psum).astype(np.uint32)
    # Parameter blocks with useful values (random bits saturate nearly everything).
    P = param_pieces(p)
    blocks = []
    for _ in range(3):
        base = int(rng.integers(0, p.sbuf_depth - RESERVED - 3 * P + 1))
        if p.has_fp and rng.random() < 0.6:
            scale = [_f32(v) for v in rng.uniform(-2, 2, p.rows)]
            bias = [_f32(v) for v in rng.uniform(-1, 1, p.rows)]
            shift = rng.integers(0, 64, p.rows)  # the FP domain ignores it
        else:
            # M / 2^shift between 1/4 and 2: outputs spread over the int8 range.
            shift = rng.integers(2, 13, p.rows)
            scale = [int(v) for v in rng.integers(1 << (shift - 2), 1 << (shift + 1))]
            bias = [int(v) & 0xFFFF_FFFF for v in rng.integers(-40, 40, p.rows)]
            if rng.random() < 0.2:  # any shift: mostly saturated or zero
                shift = rng.integers(0, 64, p.rows)
        shift = [int(v) for v in shift]
        for f, vals in enumerate((scale, bias, shift)):
            for i in range(P):
                for lane in range(p.rows):
                    piece = (vals[lane] >> (i * p.lane_width)) & ((1 << p.lane_width) - 1)
                    sbuf[lane, base + P * f + i] = piece
        blocks.append(base)
    return sbuf, psum, blocks


# -- simulation -----------------------------------------------------------------------------


def run_hw(p, acts, sbuf_init, psum_init, rng):
    """Drive ``acts`` (list of dicts: fields, signal, noise, gap) through the sequencer;
    returns the final SBUF, the DMA writes done, take/done cycles and the done payloads."""
    dut = Unit(p)
    sub = gsbuf.sub_banks(p)
    g = dut.sbuf.geometry
    pb = gsbuf.pbits(p)
    lo_addr = (p.sbuf_depth - RESERVED) << pb
    span = (RESERVED << pb) - g.lanes
    out = {"takes": [], "dones": [], "dma": []}

    async def tb(ctx):
        for part in range(p.rows):
            for e in range(p.sbuf_depth):
                ctx.set(dut.sbuf.banks[part][e % sub].data[e // sub], int(sbuf_init[part, e]))
        for c in range(p.cols):
            for e in range(p.psum_depth):
                ctx.set(dut.psum.banks[c].data[e], int(psum_init[c, e]))
        seq, dma = dut.seq, dut.sbuf.dma
        i, cur, cycle = 0, 0, 0
        gap = acts[0]["gap"]
        while len(out["dones"]) < len(acts):
            offer = i < len(acts) and gap == 0
            if offer:
                a = acts[i]
                ctx.set(seq.i_cmd.payload, {"act": a["fields"], "signal": a["signal"]})
            ctx.set(seq.i_cmd.valid, int(offer))
            noisy = rng.random() < acts[cur]["noise"]
            if noisy:
                addr = lo_addr + int(rng.integers(0, span + 1))
                mask = int(rng.integers(0, 1 << g.lanes))
                vals = [int(v) for v in rng.integers(0, 1 << p.lane_width, g.lanes)]
                ctx.set(dma.w_addr, addr)
                ctx.set(dma.w_mask, mask)
                ctx.set(dma.w_data, vals)
                out["dma"].append((addr, vals, [(mask >> k) & 1 for k in range(g.lanes)]))
            ctx.set(dma.w_en, int(noisy))
            taken = offer and ctx.get(seq.i_cmd.ready)
            if ctx.get(seq.o_done.valid):
                d = ctx.get(seq.o_done.payload)
                out["dones"].append((cycle, {"signal_en": d.signal_en, "signal_sem": d.signal_sem}))
            assert ctx.get(seq.row_w.ready) == (not noisy)
            await ctx.tick()
            if taken:
                out["takes"].append(cycle)
                cur, i = i, i + 1
                gap = acts[i]["gap"] if i < len(acts) else 0
            elif not offer and gap:
                gap -= 1
            cycle += 1
            assert cycle < 20_000, "the sequencer hangs"
        ctx.set(dma.w_en, 0)
        ctx.set(seq.i_cmd.valid, 0)
        await ctx.tick()
        assert not ctx.get(seq.busy)
        out["rows"] = ctx.get(seq.rows)
        out["sbuf"] = np.array(
            [[ctx.get(dut.sbuf.banks[part][e % sub].data[e // sub]) for e in range(p.sbuf_depth)]
             for part in range(p.rows)], dtype=sbuf_init.dtype)  # fmt: skip

    simulate(dut, tb)
    return out


@pytest.mark.parametrize("name", list(BUILDS))
def test_random_acts_against_the_iss(name, seed):
    p = BUILDS[name]
    s = seed({"int8_r8c8": 11, "fp_r4c4": 12, "fp_r3c5": 13}[name])
    rng = np.random.default_rng(s)
    sbuf, psum, blocks = initial_state(rng, p)
    acts = []
    for k in range(ACTS):
        fields, rows = random_act(rng, p, blocks)
        sig = {"signal_en": int(rng.integers(0, 2)), "signal_sem": int(rng.integers(0, 16))}
        acts.append({
            "fields": fields, "rows": rows, "signal": sig,
            "noise": float(rng.choice([0.0, 0.3, 0.8])) if k else 0.0,
            "gap": int(rng.choice([0, 0, 0, 1, 3])),
        })  # fmt: skip
    got = run_hw(p, acts, sbuf, psum, rng)

    core = Core(p)
    core.sbuf[:] = sbuf
    core.psum.mem[:] = psum
    words = [isa.encode(isa.Op.ACT, a["fields"], **a["signal"]) for a in acts]
    res = core.run([*words, isa.encode(isa.Op.END)])
    assert res.ok, (res.error, res.index)
    want = core.sbuf.copy()
    for addr, vals, mask in got["dma"]:  # only inside the reserved entries
        gsbuf.write_chunk(p, want, addr, vals, mask)
    bad = np.argwhere(got["sbuf"] != want)
    assert not len(bad), (
        f"seed {s}: {len(bad)} SBUF elements differ, first (partition, entry) "
        f"{[tuple(map(int, x)) for x in bad[:6]]}"
    )
    assert got["rows"] == sum(a["rows"] for a in acts) == res.stats.act_rows
    assert [d for _, d in got["dones"]] == [a["signal"] for a in acts]
    assert len(got["dma"]) > 20, "the row write port was hardly ever stolen"
    # One ACT at a time: each is taken no earlier than the previous one's done pulse.
    dones = [c for c, _ in got["dones"]]
    takes = got["takes"]
    assert all(t >= d for t, d in zip(takes[1:], dones, strict=False))
    # Without backpressure the cycle count is exact.
    timed = 0
    for a, t, d in zip(acts, takes, dones, strict=True):
        if a["noise"] == 0.0:
            assert d - t == act_cycles(p, a["rows"], a["fields"]["load_params"]), a
            timed += 1
    assert timed >= 1


def test_back_to_back_timing(seed):
    """ACTs of several sizes, offered back to back without backpressure: each takes exactly
    ``act_cycles`` and the next is taken in the cycle of the previous one's done pulse."""
    p = NCoreParams(rows=4, cols=4, sbuf_depth=128, psum_depth=32)
    rng = np.random.default_rng(seed(21))
    sbuf, psum, blocks = initial_state(rng, p)
    acts = []
    for rows, load, src_psum in [(1, 0, 0), (1, 1, 1), (7, 0, 1), (7, 1, 0), (30, 1, 0),
                                 (30, 0, 1), (2, 0, 0)]:  # fmt: skip
        dims = [{"count": rows, "stride": 1}, {"count": 1, "stride": 0}, {"count": 1, "stride": 0}]
        fields = {
            "config": {"op": int(gve.Op.ADD), "in_type": int(gve.VType.INT8), "out_type": 0,
                       "func": 0, "saturate": 0, "zero_point": 3, "clamp_lo": 0, "clamp_hi": 0},
            "src_psum": src_psum, "load_params": load, "n": int(rng.integers(1, 5)),
            "params": blocks[0], "src": {"start": 0, "dims": dims},
            "b": {"start": 40, "strides": [{"stride": 1}, {"stride": 0}, {"stride": 0}]},
            "dst": {"start": 80, "strides": [{"stride": 1}, {"stride": 0}, {"stride": 0}]},
        }  # fmt: skip
        acts.append({"fields": fields, "rows": rows, "noise": 0.0, "gap": 0,
                     "signal": {"signal_en": 1, "signal_sem": rows % 16}})  # fmt: skip
    got = run_hw(p, acts, sbuf, psum, rng)
    dones = [c for c, _ in got["dones"]]
    for a, t, d in zip(acts, got["takes"], dones, strict=True):
        assert d - t == act_cycles(p, a["rows"], a["fields"]["load_params"])
    assert got["takes"][1:] == dones[:-1]
    core = Core(p)
    core.sbuf[:] = sbuf
    core.psum.mem[:] = psum
    core.run([*(isa.encode(isa.Op.ACT, a["fields"]) for a in acts), isa.encode(isa.Op.END)])
    np.testing.assert_array_equal(got["sbuf"], core.sbuf)


def test_cycle_formula():
    for p in BUILDS.values():
        seq = VectorSequencer(p)
        assert seq.latency == gve.latency(p)
        P = param_pieces(p)
        assert act_cycles(p, 5, False) == 5 + gve.latency(p) + 1
        assert act_cycles(p, 5, True) == 5 + gve.latency(p) + 1 + 3 * P


@pytest.mark.parametrize("name", ["int8_r8c8", "fp_r3c5"])
def test_verilog_converts(name):
    seq = VectorSequencer(BUILDS[name])
    # o_done is always ready: its ready is a constant, not a port.
    ports = [Value.cast(v) for _, _, v in seq.signature.flatten(seq)]
    ports = [v for v in ports if isinstance(v, Signal)]
    text = verilog.convert(seq, name="vector_sequencer", ports=ports)
    assert "module vector_sequencer" in text
    assert "src_port__data" in text and "psum_rd__data" in text
