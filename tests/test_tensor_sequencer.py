# amaranth: UnusedElaboratable=no
"""The tensor sequencer with SBUF and PSUM, in the Amaranth simulator: LOADW/MATMUL command
streams (random patterns, k, n, dtypes, accumulate) against a numpy model of the ISA."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from amsim import simulate
from ncore.golden import tensor_engine as gte
from ncore.golden.psum import ACC_FP, ACC_INT, OVERWRITE, Psum
from ncore.golden.sbuf import sub_banks
from ncore.hw.psum import PSUM
from ncore.hw.sbuf import SBuf
from ncore.hw.tensor_sequencer import TensorSequencer
from ncore.params import DTYPE_CODE, NCoreParams
from ncore.verif.stimulus import random_operands


class Unit(wiring.Component):
    def __init__(self, p):
        self.p = p
        self.sbuf = SBuf(p, readers=("weights", "tensor"))
        self.seq = TensorSequencer(p)
        self.psum = PSUM(p)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.sbuf, m.submodules.seq, m.submodules.psum = self.sbuf, self.seq, self.psum
        wiring.connect(m, self.seq.w_port, self.sbuf.weights)
        wiring.connect(m, self.seq.a_port, self.sbuf.tensor)
        wiring.connect(m, self.seq.o_psum, self.psum.i_write)
        return m


def indices(start, counts, strides):
    """Entries of a pattern, innermost dimension fastest."""
    i2, i1, i0 = np.meshgrid(*(np.arange(c) for c in counts[::-1]), indexing="ij")
    return (start + i0 * strides[0] + i1 * strides[1] + i2 * strides[2]).ravel()


def pattern(rng, depth, max_rows):
    """A random entry pattern that stays inside 0…depth−1: (start, [(count, stride)] * 3)."""
    while True:
        counts = [int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(1, 3))]
        if np.prod(counts) > max_rows:
            continue
        strides = [int(rng.integers(-3, 4)) for _ in range(3)]
        start = int(rng.integers(0, depth))
        idx = indices(start, counts, strides)
        if idx.min() >= 0 and idx.max() < depth:
            return start, list(zip(counts, strides, strict=True)), idx


def follow(rng, depth, counts):
    """Start and strides for another view of an iteration with these counts, in range."""
    while True:
        strides = [int(rng.integers(-3, 4)) for _ in range(3)]
        start = int(rng.integers(0, depth))
        idx = indices(start, counts, strides)
        if idx.min() >= 0 and idx.max() < depth:
            return start, strides


def run(p, cmds, sbuf_init, seed=0):
    """Drive `cmds` (list of (is_matmul, fields)) and return PSUM contents and stats."""
    dut = Unit(p)
    g_sub = sub_banks(p)
    out = {}

    async def tb(ctx):
        for part in range(p.rows):
            for e in range(p.sbuf_depth):
                ctx.set(dut.sbuf.banks[part][e % g_sub].data[e // g_sub], int(sbuf_init[part, e]))
        dones = {"loadw": 0, "matmul": 0}
        for is_mm, fields in cmds:
            body = {"is_matmul": is_mm, "matmul" if is_mm else "loadw": fields,
                    "signal": {"signal_en": 1, "signal_sem": 3}}  # fmt: skip
            ctx.set(dut.seq.i_cmd.payload, body)
            ctx.set(dut.seq.i_cmd.valid, 1)
            while True:
                ready = ctx.get(dut.seq.i_cmd.ready)
                dones["loadw"] += ctx.get(dut.seq.o_loadw_done.valid)
                dones["matmul"] += ctx.get(dut.seq.o_matmul_done.valid)
                await ctx.tick()
                if ready:
                    break
        ctx.set(dut.seq.i_cmd.valid, 0)
        for _ in range(200):
            dones["loadw"] += ctx.get(dut.seq.o_loadw_done.valid)
            dones["matmul"] += ctx.get(dut.seq.o_matmul_done.valid)
            if not ctx.get(dut.seq.busy) and not ctx.get(dut.psum.busy):
                break
            await ctx.tick()
        assert not ctx.get(dut.seq.busy), "sequencer still busy"
        out["psum"] = np.array(
            [[ctx.get(dut.psum.banks[c].data[e]) for e in range(p.psum_depth)]
             for c in range(p.cols)], dtype=np.uint32)  # fmt: skip
        out["dones"] = dones
        out["rows"] = ctx.get(dut.seq.rows)

    simulate(dut, tb)
    return out


def model(p, cmds, sbuf):
    """The ISA's LOADW/MATMUL semantics in numpy (as isa.py documents them)."""
    banks = [np.zeros((p.rows, p.cols), np.uint16), np.zeros((p.rows, p.cols), np.uint16)]
    nxt, cur = 0, 0
    psum = Psum(p)
    rows = 0
    for is_mm, f in cmds:
        if not is_mm:
            w = np.zeros((p.rows, p.cols), np.uint16)
            for j in range(f["n"]):
                w[: f["k"], j] = sbuf[: f["k"], f["start"] + j * f["stride"]]
            banks[nxt], cur, nxt = w, nxt, 1 - nxt
            continue
        dtype = [d for d, c in DTYPE_CODE.items() if c == f["dtype"]][0]
        mov, ps = f["mov"], f["psum"]
        c = [d["count"] for d in mov["dims"]]
        for i2 in range(c[2]):
            for i1 in range(c[1]):
                for i0 in range(c[0]):
                    idx = (i0, i1, i2)
                    e = mov["start"] + sum(
                        i * d["stride"] for i, d in zip(idx, mov["dims"], strict=True)
                    )
                    a = ps["start"] + sum(
                        i * d["stride"] for i, d in zip(idx, ps["strides"], strict=True)
                    )
                    x = np.zeros((1, p.rows), np.uint16)
                    x[0, : f["k"]] = sbuf[: f["k"], e]
                    w = banks[cur]
                    if dtype == "int8":
                        y = gte.matmul(
                            x.astype(np.uint8).view(np.int8), w.astype(np.uint8).view(np.int8)
                        ).view(np.uint32)
                    else:
                        y = gte.matmul(x, w, dtype)
                    mode = (
                        (ACC_FP if dtype != "int8" else ACC_INT) if f["accumulate"] else OVERWRITE
                    )
                    psum.write(a, y[0], (1 << f["n"]) - 1, mode)
                    rows += 1
    return psum.mem, rows  # fmt: skip


def random_cmds(rng, p, n_tiles, dtypes):
    cmds = []
    for _ in range(n_tiles):
        k, n = int(rng.integers(1, p.rows + 1)), int(rng.integers(1, p.cols + 1))
        stride = int(rng.choice([1, 2, -1]))
        start = int(rng.integers(p.cols * 2, p.sbuf_depth - p.cols * 2))
        cmds.append((0, {"start": start, "stride": stride, "k": k, "n": n}))
        for _ in range(int(rng.integers(0, 3))):  # 0: back-to-back LOADWs
            s, dims, _ = pattern(rng, p.sbuf_depth, 12)
            ps, pstrides = follow(rng, p.psum_depth, [c for c, _ in dims])
            dtype = str(rng.choice(dtypes))
            cmds.append((1, {
                "dtype": DTYPE_CODE[dtype], "accumulate": int(rng.integers(0, 2)),
                "k": int(rng.integers(1, p.rows + 1)), "n": int(rng.integers(1, p.cols + 1)),
                "mov": {"start": s, "dims": [{"count": c, "stride": st} for c, st in dims]},
                "psum": {"start": ps, "strides": [{"stride": st} for st in pstrides]},
            }))  # fmt: skip
    return cmds


@pytest.mark.parametrize(
    "rows,cols,dtypes",
    [(4, 4, ("int8",)), (3, 2, ("int8",)), (4, 3, ("int8", "fp16", "bf16"))],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_random_command_streams(rows, cols, dtypes, seed):
    p = NCoreParams(rows=rows, cols=cols, dtypes=dtypes, sbuf_depth=64, psum_depth=16)
    rng = np.random.default_rng(seed)
    dt = "int8" if dtypes == ("int8",) else "bf16"
    sbuf = random_operands(rng, (p.rows, p.sbuf_depth), dt).view(
        np.uint8 if dt == "int8" else np.uint16
    )
    sbuf = sbuf.astype(np.uint16)  # int8 MATMULs in an FP build read each lane's low byte
    cmds = random_cmds(rng, p, 5, dtypes)
    got = run(p, cmds, sbuf, seed)
    want, rows_expected = model(p, cmds, sbuf)
    np.testing.assert_array_equal(got["psum"], want, err_msg=f"seed {seed}")
    assert got["rows"] == rows_expected
    n_loadw = sum(1 for is_mm, _ in cmds if not is_mm)
    assert got["dones"] == {"loadw": n_loadw, "matmul": len(cmds) - n_loadw}


def test_loadw_waits_for_the_matmul_using_its_bank():
    """L0 M0(long) L1 L2: L2 reuses M0's bank and must not load before M0's rows issued."""
    p = NCoreParams(rows=2, cols=2, sbuf_depth=64, psum_depth=64)
    rng = np.random.default_rng(5)
    sbuf = random_operands(rng, (p.rows, p.sbuf_depth), "int8").view(np.uint8)
    sbuf = sbuf.astype(np.uint16)
    dims = [{"count": 40, "stride": 1}, {"count": 1, "stride": 0}, {"count": 1, "stride": 0}]
    strides = [{"stride": 1}, {"stride": 0}, {"stride": 0}]
    long = {
        "dtype": 0,
        "accumulate": 0,
        "k": 2,
        "n": 2,
        "mov": {"start": 0, "dims": dims},
        "psum": {"start": 0, "strides": strides},
    }
    cmds = [(0, {"start": 50, "stride": 1, "k": 2, "n": 2}), (1, long),
            (0, {"start": 54, "stride": 1, "k": 2, "n": 2}),
            (0, {"start": 58, "stride": 1, "k": 2, "n": 2})]  # fmt: skip
    got = run(p, cmds, sbuf)
    want, _ = model(p, cmds, sbuf)
    np.testing.assert_array_equal(got["psum"], want)


def test_back_to_back_matmuls_stream_without_gaps():
    """Double-buffered LOADW/MATMUL pairs: once rows flow, one row is requested every
    cycle across MATMUL boundaries (the next MATMUL is taken with the last request of the
    one before), and every MAC is counted."""
    p = NCoreParams(sbuf_depth=64, psum_depth=64)
    rng = np.random.default_rng(3)
    sbuf = rng.integers(0, 256, (p.rows, p.sbuf_depth)).astype(np.uint16)
    # Each MATMUL longer than the array's drain time, so the LOADW two ahead (which
    # reuses the bank) has finished before it is needed.
    sizes = [30, 26, 28, 25]
    cmds = []
    for i, m_rows in enumerate(sizes):
        cmds.append((0, {"start": 8 * (i % 2), "stride": 1, "k": p.rows, "n": p.cols}))
        mov = {"start": 16, "dims": [{"count": m_rows, "stride": 1}, {"count": 1, "stride": 0},
                                     {"count": 1, "stride": 0}]}  # fmt: skip
        psum = {"start": 0, "strides": [{"stride": 1}, {"stride": 0}, {"stride": 0}]}
        cmds.append((1, {"dtype": 0, "accumulate": 1, "k": p.rows - i, "n": p.cols - 1,
                         "mov": mov, "psum": psum}))  # fmt: skip
    dut = Unit(p)
    g_sub = sub_banks(p)
    trace = []

    async def feeder(ctx):
        for part in range(p.rows):
            for e in range(p.sbuf_depth):
                ctx.set(dut.sbuf.banks[part][e % g_sub].data[e // g_sub], int(sbuf[part, e]))
        for is_mm, fields in cmds:
            body = {"is_matmul": is_mm, "matmul" if is_mm else "loadw": fields,
                    "signal": {"signal_en": 0, "signal_sem": 0}}  # fmt: skip
            ctx.set(dut.seq.i_cmd.payload, body)
            ctx.set(dut.seq.i_cmd.valid, 1)
            await ctx.tick().until(dut.seq.i_cmd.ready)
        ctx.set(dut.seq.i_cmd.valid, 0)

    async def watch(ctx):
        for _ in range(200):
            await ctx.tick()
            trace.append((ctx.get(dut.seq.rows), ctx.get(dut.seq.macs)))

    simulate(dut, feeder, watch)
    rows = [r for r, _ in trace]
    first = rows.index(2)  # the first row waits for its whole weight tile
    last = rows.index(sum(sizes))
    assert last - first == sum(sizes) - 2, (first, last)  # one row per cycle from then on
    macs = sum(m * (p.rows - i) * (p.cols - 1) for i, m in enumerate(sizes))
    assert trace[-1][1] == macs
    # And the results are right.
    got = run(p, cmds, sbuf)["psum"]
    np.testing.assert_array_equal(got, model(p, cmds, sbuf)[0])
