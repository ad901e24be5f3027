"""The golden ISS (golden/core.py) and the directed programs (golden/program.py).

* Directed programs (tiled GEMM, 3×3 convolution, 2×2 max-pool, requantised MLP) on square,
  rectangular and non-power-of-two arrays, with sizes that are not multiples of the array
  and GEMM operands larger than the SBUF, against plain numpy (int64 matmuls and an
  independent requantisation), under the hardware pick order, the reversed order and random
  orders; fp16/bf16 GEMMs against ``golden.tensor_engine.matmul`` per tile summed in PSUM
  order.
* Instruction semantics worked by hand: weight banks, MATMUL lanes and PSUM order, int8 in
  16-bit lanes, ACT parameter loading, ACT strided views.
* Every core error code from a small bad program, with its index, engine and address, and
  the state it leaves: dispatch errors leave exactly the state of the program prefix, DMA
  errors the DMA's documented partial effects, nothing after.
* Deadlocks (semaphore never signalled; in-order dispatch blocked by a full queue), and the
  semaphores of the GEMM: removing any one of them changes the result under some pick
  order, while the intact program is the same under every order.
* Statistics against counts worked out from the program's shape.
* Core-to-core links and the barrier on one core: the new fields' dispatch checks (BARRIER
  masks relative to the core's number), SEND/RECV over the loop-back link (partitions
  ``< n``, streams whose row counts differ per instruction, repeated entries, strided
  patterns) under every pick order, RECVs that wait for rows (DEADLOCK when they never
  come), BARRIERs on a standalone core, END behind the send/recv queues, and their counters.
  The chip (several cores) is tests/test_golden_chip.py.
"""

import ml_dtypes
import numpy as np
import pytest

from ncore import isa
from ncore.golden import core as gcore
from ncore.golden import dma as gdma
from ncore.golden import program as gp
from ncore.golden import sbuf as gsbuf
from ncore.golden import tensor_engine
from ncore.golden.core import Core, Engine
from ncore.golden.fp import fp32_add
from ncore.isa import CoreError, Op
from ncore.params import NCoreParams

INT8 = NCoreParams()  # 8×8, int8 only: 8-bit SBUF lanes
FP = NCoreParams(rows=4, cols=3, dtypes=("int8", "fp16", "bf16"), sbuf_depth=256)
PICKS = [None, tuple(reversed(gcore.PRIORITY)), 1, 2]  # ints: random-order seeds


def _pick(p):
    return np.random.default_rng(p) if isinstance(p, int) else p


def _i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def _requant_params(rng, acc_std, n, target=40.0, shift=16):
    """Per-channel scale/shift/bias spreading outputs over the int8 range."""
    scale = np.maximum(1, (target * (1 << shift) / max(acc_std, 1.0)) * rng.uniform(0.5, 1.5, n))
    bias = rng.integers(-int(acc_std) - 1, int(acc_std) + 1, n)
    return {"scale": scale.astype(np.int64), "shift": np.full(n, shift), "bias": bias}


def _check_directed(d, picks=PICKS):
    """Run under every pick order; outputs equal the numpy expectation each time."""
    for pick in picks:
        core = d.run(pick=_pick(pick))
        r = core.result
        assert r.ok, f"{d.name} pick={pick}: {r.error.name} at {r.index} ({r.engine})"
        got = d.outputs(core.dram, core.psum.mem)
        for k, v in d.expected.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{d.name}.{k} pick={pick}")
    return core


# -- directed programs -------------------------------------------------------------------------

GEMM_CASES = [
    # params, (M, K, N), builder options
    (INT8, (20, 13, 11), {}),
    (NCoreParams(rows=4, cols=8, sbuf_depth=128), (37, 19, 23), {"block_rows": 8}),
    (NCoreParams(rows=8, cols=4), (24, 20, 10), {"relu": True, "zero_point": -7}),
    (NCoreParams(rows=3, cols=5, sbuf_depth=128), (21, 10, 12), {"block_rows": 5}),
    (NCoreParams(rows=8, cols=4), (16, 17, 9), {"out": "psum"}),
    (FP, (11, 9, 7), {"out": "psum", "block_rows": 4}),  # int8 in the low byte of a lane
    (FP, (13, 10, 8), {"block_rows": 6, "relu": True}),
]


@pytest.mark.parametrize("case", range(len(GEMM_CASES)))
def test_gemm_int8(case, seed):
    p, (M, K, N), opts = GEMM_CASES[case]
    rng = np.random.default_rng(seed(10 + case))
    a, b = _i8(rng, (M, K)), _i8(rng, (K, N))
    if opts.get("out") != "psum":
        std = float(np.std(a.astype(np.int64) @ b.astype(np.int64)))
        opts = {**opts, **_requant_params(rng, std, N)}
    d = gp.gemm(p, a, b, **opts)
    if case == 1:  # the operands do not fit the SBUF together: they must stream
        assert a.size + b.size > gsbuf.capacity(p)
        assert d.info["m_blocks"] > 2 and d.info["n_tiles"] > 2
    if opts.get("out") != "psum":
        assert len(np.unique(d.expected["C"])) > 20  # not a saturated, trivial result
    _check_directed(d)


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("out", ["psum", "act"])
def test_gemm_fp(dtype, out, seed):
    """FP GEMM: the PSUM sums equal golden.tensor_engine.matmul of each K tile, summed in
    tile order with fp32_add; with ACT, converted to the 16-bit type."""
    rng = np.random.default_rng(seed(30))
    M, K, N = 10, 11, 7
    t = np.float16 if dtype == "fp16" else ml_dtypes.bfloat16
    a = rng.standard_normal((M, K)).astype(np.float32).astype(t).view(np.uint16)
    b = rng.standard_normal((K, N)).astype(np.float32).astype(t).view(np.uint16)
    d = gp.gemm(FP, a, b, dtype=dtype, out="psum" if out == "psum" else dtype, block_rows=4)
    core = _check_directed(d, picks=[None, 1])
    # The expectation, restated here: K tiles of `rows`, in order, first one overwriting.
    acc = None
    for k0 in range(0, K, FP.rows):
        part = tensor_engine.matmul(a[:, k0 : k0 + FP.rows], b[k0 : k0 + FP.rows], dtype)
        acc = part if acc is None else fp32_add(acc, part)
    if out == "psum":
        np.testing.assert_array_equal(d.outputs(core.dram, core.psum.mem)["C"], acc)
        ref = a.view(t).astype(np.float64) @ b.view(t).astype(np.float64)
        np.testing.assert_allclose(acc.view(np.float32), ref, rtol=1e-5, atol=1e-5)
    else:  # scale 1.0, bias +0.0, then RNE to the 16-bit type
        with np.errstate(all="ignore"):
            want = (acc.view(np.float32) + np.float32(0)).astype(t).view(np.uint16)
        np.testing.assert_array_equal(d.outputs(core.dram)["C"], want)


CONV_CASES = [
    (INT8, (5, 6, 11, 10)),
    (NCoreParams(rows=4, cols=8, sbuf_depth=1024), (4, 7, 9, 6)),
    (NCoreParams(rows=3, cols=5, dtypes=("int8", "bf16")), (3, 4, 4, 7)),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv3x3(case, seed):
    p, (H, W, Ci, Co) = CONV_CASES[case]
    rng = np.random.default_rng(seed(40 + case))
    x, w = _i8(rng, (H, W, Ci)), _i8(rng, (3, 3, Ci, Co))
    std = 128 * 128 * np.sqrt(9 * Ci) / 3
    rq = _requant_params(rng, std, Co)
    d = gp.conv3x3(p, x, w, relu=True, zero_point=-5, **rq)
    assert len(np.unique(d.expected["out"])) > 20
    # The numpy expectation itself against a direct sum over one corner pixel's window.
    y, xx = H - 1, 0
    for o in range(Co):
        acc = sum(
            int(x[y + dy - 1, xx + dx - 1, i]) * int(w[dy, dx, i, o])
            for dy in range(3)
            for dx in range(3)
            for i in range(Ci)
            if 0 <= y + dy - 1 < H and 0 <= xx + dx - 1 < W
        )
        want = gp.requantize([acc], rq["bias"][o], rq["scale"][o], rq["shift"][o], -5, True)
        assert d.expected["out"][y, xx, o] == want[0]
    _check_directed(d)


@pytest.mark.parametrize(
    "p, dtype, shape",
    [
        (INT8, "int8", (7, 6, 11)),
        (NCoreParams(rows=3, cols=5, dtypes=("int8", "bf16")), "int8", (6, 9, 4)),
        (FP, "bf16", (6, 4, 5)),
    ],
)
def test_maxpool2x2(p, dtype, shape, seed):
    rng = np.random.default_rng(seed(50))
    if dtype == "int8":
        x = _i8(rng, shape)
    else:
        f = rng.standard_normal(shape).astype(np.float32)
        f.flat[:3] = [0.0, -0.0, -1.0]
        x = (f.view(np.uint32) >> 16).astype(np.uint16)
    d = gp.maxpool2x2(p, x, dtype=dtype)
    if dtype == "int8":  # one window by hand
        assert d.expected["out"][1, 0, 1] == max(int(v) for v in x[2:4, 0:2, 1].ravel())
    _check_directed(d)


MLP_CASES = [
    (INT8, 9, (13, 10, 7)),
    (NCoreParams(rows=4, cols=8, sbuf_depth=1024), 12, (9, 11, 6)),
    (NCoreParams(rows=3, cols=5), 7, (5, 8, 4, 3)),
]


@pytest.mark.parametrize("case", range(len(MLP_CASES)))
def test_mlp(case, seed):
    p, batch, feats = MLP_CASES[case]
    rng = np.random.default_rng(seed(60 + case))
    x = _i8(rng, (batch, feats[0]))
    layers, h_std = [], 60.0
    for i, (fi, fo) in enumerate(zip(feats[:-1], feats[1:], strict=True)):
        w = _i8(rng, (fi, fo))
        lay = {"w": w, **_requant_params(rng, h_std * 74 * np.sqrt(fi), fo)}
        if i == len(feats) - 2:
            lay.update(relu=False, zero_point=3)
        layers.append(lay)
        h_std = 30.0  # after ReLU
    d = gp.mlp(p, x, layers)
    assert len(np.unique(d.expected["out"])) > 10
    _check_directed(d)


def test_requantize_worked_values():
    """The numpy reference requantisation on hand-worked values."""
    acc = np.array([5, 6, 7, -5, -6, 1000, -1000, 2**31 - 1])
    # (acc + 0) · 1 / 4: 1.25 → 1, 1.5 → 2, 1.75 → 2, −1.25 → −1, −1.5 → −2, saturations
    got = gp.requantize(acc, 0, 1, 2)
    np.testing.assert_array_equal(got, [1, 2, 2, -1, -2, 127, -128, 127])
    # 2.5 → 2, 3.5 → 4 (half to even), then zero point 10 and ReLU before it
    got = gp.requantize(np.array([10, 14, -10]), 0, 1, 2, zero_point=10, relu=True)
    np.testing.assert_array_equal(got, [12, 14, 10])
    # bias wraps modulo 2**32 before the multiply
    assert gp.requantize(np.array([2**31 - 1]), 1, 1, 0)[0] == -128


# -- instruction semantics ----------------------------------------------------------------------


def _lin(p, entry, part=0):
    return entry << gsbuf.pbits(p) | part


def test_program_sources_agree(seed):
    """Words, an image and a fetch from DRAM run the same program to the same state."""
    rng = np.random.default_rng(seed(70))
    d = gp.gemm(INT8, _i8(rng, (9, 10)), _i8(rng, (10, 5)), out="psum")
    a = d.run()
    b = Core(INT8, d.dram)
    b.run(d.program.words)
    c = Core(INT8, d.dram)
    c.run(d.program.image())
    for other in (b, c):
        assert other.result.ok and other.result.trace == a.result.trace
        np.testing.assert_array_equal(other.psum.mem, a.psum.mem)
        np.testing.assert_array_equal(other.sbuf, a.sbuf)


def test_loadw_banks_and_matmul_rows():
    p = NCoreParams(rows=4, cols=3, sbuf_depth=64, psum_depth=16)
    core = Core(p, dram_size=4096)
    sb = core.sbuf
    sb[:, 10:13] = np.arange(12).reshape(4, 3)  # weights A: partition k, column j
    sb[:, 20:22] = 7  # weights B (2 columns)
    sb[:, 30:33] = np.array([[1, 2, 3], [1, 1, 1], [2, 0, 1], [100, 100, 100]], np.uint8)
    prog = [
        gp.loadw(10, 3, 3),  # bank 0, partition 3 left out
        gp.loadw(20, 4, 2),  # bank 1: the one MATMUL uses
        # rows 30, 31, 32 with k = 4; PSUM entries 5, 5, 5 (stride 0): accumulate in order
        gp.matmul((30, [(3, 1)]), 4, 2, (5, [0]), accumulate=True),
        gp.loadw(10, 3, 3, stride=1),  # bank 0 again
        gp.matmul((30, [(2, 2)]), 2, 3, (6, [1])),  # rows 30, 32; lanes ≥ 2 ignored
        gp.end(),
    ]
    r = core.run(prog)
    assert r.ok and core.active_bank == 0
    w0 = np.zeros((4, 3), np.uint8)
    w0[:3] = np.arange(9).reshape(3, 3)
    np.testing.assert_array_equal(core.wbank[0], w0)
    np.testing.assert_array_equal(core.wbank[1], np.pad(np.full((4, 2), 7), ((0, 0), (0, 1))))
    x = sb[:, 30:33].T.astype(np.int64)  # rows 30..32 × partitions (all < 128: int8 = uint8)
    np.testing.assert_array_equal(core.psum.mem[:2, 5], [7 * x.sum()] * 2)
    assert core.psum.mem[2, 5] == 0  # column n = 2 not written
    want = x[[0, 2], :2].astype(np.int64) @ w0[:2].astype(np.int64)
    np.testing.assert_array_equal(core.psum.mem[:, 6:8].view(np.int32).T, want)


def test_int8_is_the_low_byte_in_fp_builds():
    core = Core(FP, dram_size=4096)
    core.sbuf[:, 0] = [0xAB80, 0x12FF, 0x0001, 0xFF7F]  # int8: −128, −1, 1, 127
    core.sbuf[:, 1] = [0x5502, 0, 0, 0]  # weight column 0: 2 at partition 0
    core.sbuf[:, 2] = [0, 0, 0, 0x0103]  # weight column 1: 3 at partition 3
    r = core.run([gp.loadw(1, 4, 2), gp.matmul((0, [(1, 1)]), 4, 2, 0), gp.end()])
    assert r.ok
    np.testing.assert_array_equal(core.psum.mem[:2, 0].view(np.int32), [-256, 381])


@pytest.mark.parametrize("p", [NCoreParams(rows=3, cols=4), FP], ids=["int8", "fp"])
def test_act_parameters_and_views(p):
    """Per-lane parameters are 32/lane_width SBUF entries each, low piece first; ACT ADD
    over strided views; n lanes written."""
    core = Core(p, dram_size=4096)
    lw, pieces = p.lane_width, gcore.param_pieces(p)
    # Values that need every piece: > 16 bits, negative.
    vals = {"scale": [0x12345, -2, 3], "bias": [-1, -7, 70000], "shift": [16, 0, 12]}
    for f, name in enumerate(("scale", "bias", "shift")):
        for lane, v in enumerate(vals[name]):
            for i in range(pieces):
                core.sbuf[lane, 40 + pieces * f + i] = ((v & 0xFFFF_FFFF) >> (lw * i)) & (
                    (1 << lw) - 1
                )
    a = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], np.int64)  # entries 0..3
    core.sbuf[:3, 0:4] = a & 0xFF
    prog = [
        # out[r] = requant(a[2r] + a[2r + 1]) for r < 2, int8 inputs, 3 lanes written
        gp.act((0, [(2, 2)]), (20, [1]), 3, b=(1, [2]), op="add", in_type="int8", params=40),
        gp.end(),
    ]
    assert core.run(prog).ok
    for name in vals:
        want = np.zeros(gcore.gve.lanes(p), np.uint32)
        want[:3] = np.array(vals[name], np.int64) & 0xFFFF_FFFF
        np.testing.assert_array_equal(core.ve_params[name], want)
    t = a[:, 0::2] + a[:, 1::2]  # partitions × rows
    got = core.sbuf[:, 20:22].astype(np.int64)
    sc, bi, sh = (np.array(vals[k])[:, None] for k in ("scale", "bias", "shift"))
    want = gp.requantize((t + bi) * sc, 0, 1, sh).astype(np.int64) & 0xFF  # zero-extended
    np.testing.assert_array_equal(want, [[2, 7], [-8 & 0xFF, -16 & 0xFF], [51, 51]])
    np.testing.assert_array_equal(got[:3], want)
    assert not got[3:].any()  # partitions ≥ n: untouched


def test_pattern_range_rule(seed):
    """A pattern's extent, from its corners, equals a brute-force scan; a range error reports
    the lowest entry if it is negative, else the highest (modulo 2³²)."""
    rng = np.random.default_rng(seed(80))
    depth = 32
    faults = 0
    for _ in range(300):
        dims = [(int(rng.integers(1, 5)), int(rng.integers(-7, 8))) for _ in range(3)]
        start = int(rng.integers(0, 40))
        e = gcore.pattern_entries(start, dims)
        assert gcore.pattern_extent(start, dims) == (e.min(), e.max())
        word = gp.matmul((start, dims), 1, 1)
        got = gcore.validate(INT8.replace(sbuf_depth=depth), word)
        if e.min() < 0:
            want = (CoreError.SBUF_RANGE, int(e.min()) & 0xFFFF_FFFF)
        elif e.max() >= depth:
            want = (CoreError.SBUF_RANGE, int(e.max()))
        else:
            want = None
        assert got == want, (start, dims)
        faults += want is not None
    assert 50 < faults < 250


# -- errors -------------------------------------------------------------------------------------

SMALL = NCoreParams(rows=4, cols=3, sbuf_depth=64, psum_depth=32, semaphores=8)
SMALL_FP = SMALL.replace(dtypes=("int8", "fp16"))


def _prefix(p):
    """A prefix that touches SBUF, weights and PSUM, and a suffix that would touch more."""
    pre = [
        gp.dma_load((0, [(16, 1)]), (0, [(16, 1)]), signal=0),
        gp.loadw(0, 4, 3, wait=0),
        gp.matmul((0, [(4, 1)]), 4, 3, 0),
    ]
    post = [
        gp.dma_load((100, [(16, 1)]), (_lin(p, 8), [(16, 1)])),
        gp.matmul((1, [(3, 1)]), 4, 3, 10),
        gp.end(),
    ]
    return pre, post


def _state(core):
    return [
        core.dram,
        core.sbuf,
        core.psum.mem,
        core.wbank,
        np.array(core.active_bank),
        *core.ve_params.values(),
    ]


def _dram(seed_):
    return np.random.default_rng(seed_).integers(0, 256, 4096).astype(np.uint8)


def _assert_prefix_state(p, core, pre, dram, **kw):
    ref = Core(p, dram, **kw)
    assert ref.run(pre + [gp.end()]).ok
    for got, want in zip(_state(core), _state(ref), strict=True):
        np.testing.assert_array_equal(got, want)


def _bad_words(p):
    """(name, word, code, address — None: the instruction's — , params)."""
    d, pd = p.sbuf_depth, p.psum_depth
    OPC, FLD = CoreError.ILLEGAL_OPCODE, CoreError.ILLEGAL_FIELD
    SB, PS = CoreError.SBUF_RANGE, CoreError.PSUM_RANGE
    fp = SMALL_FP
    mov = (0, [(2, 1)])
    one = (0, [(1, 1)])
    return [
        ("opcode", 9, OPC, None, p),
        ("opcode31", 31 | 1 << 200, OPC, None, p),
        ("reserved", gp.nop() | 1 << 17, FLD, None, p),
        ("tail", gp.loadw(0, 1, 1) | 1 << 511, FLD, None, p),
        ("wait_sem", gp.nop(wait=p.semaphores), FLD, None, p),
        ("signal_sem", gp.dma_load(one, one, signal=31), FLD, None, p),
        ("loadw_k0", gp.loadw(0, 0, 1), FLD, None, p),
        ("loadw_n", gp.loadw(0, 1, p.cols + 1), FLD, None, p),
        ("matmul_k", gp.matmul(mov, p.rows + 1, 1), FLD, None, p),
        ("matmul_n0", gp.matmul(mov, 1, 0), FLD, None, p),
        ("matmul_count0", gp.matmul((0, [(2, 1), (0, 1)]), 1, 1), FLD, None, p),
        ("matmul_dtype3", gp.matmul(mov, 1, 1, dtype=3), FLD, None, p),
        ("matmul_fp16_int8_build", gp.matmul(mov, 1, 1, dtype="fp16"), FLD, None, p),
        ("matmul_bf16_not_built", gp.matmul(mov, 1, 1, dtype="bf16"), FLD, None, fp),
        ("act_n", gp.act(mov, 0, p.rows + 1), FLD, None, p),
        ("act_count0", gp.act((0, [(0, 1)]), 0, 1), FLD, None, p),
        ("act_out_int32", gp.act(mov, 0, 1, out_type="int32"), FLD, None, fp),
        ("act_out_fp32", gp.act(mov, 0, 1, out_type="fp32"), FLD, None, fp),
        ("act_fp_int8_build", gp.act(mov, 0, 1, in_type="fp16"), FLD, None, p),
        ("act_op3", gp.act(mov, 0, 1, op=3), FLD, None, p),
        ("act_func3", gp.act(mov, 0, 1, func=3), FLD, None, p),
        ("act_type5", gp.act(mov, 0, 1, in_type=5), FLD, None, fp),
        ("loadw_range", gp.loadw(d - 2, 1, 3), SB, d, p),
        ("loadw_negative", gp.loadw(1, 1, 3, stride=-1), SB, 0xFFFF_FFFF, p),
        ("matmul_mov", gp.matmul((5, [(2, 1), (3, 30)]), 1, 1), SB, 66, p),  # the highest
        ("matmul_psum", gp.matmul((0, [(3, 1)]), 1, 1, (pd - 2, [1])), PS, pd, p),
        ("act_params", gp.act(mov, 0, 1, params=d - 5), SB, d + 6, p),  # 12 entries
        ("act_src_psum", gp.act((pd, [(1, 1)]), 0, 1, src_psum=True), PS, pd, p),
        ("act_src_sbuf", gp.act((d, [(1, 1)]), 0, 1), SB, d, p),
        ("act_b", gp.act(mov, 0, 1, op="max", b=(d - 1, [1])), SB, d, p),
        ("act_dst", gp.act(mov, (3, [-4]), 1), SB, 0xFFFF_FFFF, p),
        ("send_n0", gp.send(one, 0), FLD, None, p),
        ("send_n", gp.send(one, p.rows + 1), FLD, None, p),
        ("send_count0", gp.send((0, [(2, 1), (1, 0), (0, 3)]), 1), FLD, None, p),
        ("recv_n0", gp.recv(one, 0), FLD, None, p),
        ("recv_n", gp.recv(one, p.rows + 1), FLD, None, p),
        ("recv_count0", gp.recv((0, [(0, 1)]), 1), FLD, None, p),
        ("barrier_beyond", gp.barrier(1 | 1 << p.cores), FLD, None, p),
        ("barrier_bit15", gp.barrier(1 << 15), FLD, None, p),
        ("barrier_not_self", gp.barrier(0b110), FLD, None, p),  # core 0 not in the mask
        ("barrier_tail", gp.barrier() | 1 << 48, FLD, None, p),
        ("send_range", gp.send((d - 2, [(3, 1)]), 1), SB, d, p),
        ("send_negative", gp.send((4, [(2, 1), (2, -5)]), 1), SB, 0xFFFF_FFFF, p),
        ("recv_range", gp.recv((0, [(2, d)]), 1), SB, d, p),
        ("recv_negative", gp.recv((1, [(3, -1)]), 1), SB, 0xFFFF_FFFF, p),
    ]


BAD = _bad_words(SMALL)


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_dispatch_errors(case, seed):
    """Each dispatch error: code, index, engine, address; the state is exactly that of the
    program prefix (the faulting instruction and everything after never start)."""
    name, word, code, addr, p = case
    pre, post = _prefix(p)
    dram = _dram(seed(90))
    core = Core(p, dram)
    base = 0x200
    r = core.run(pre + [word] + post, program_base=base)
    assert r.error == code, name
    assert r.index == len(pre)
    op = word & 0x1F
    want_engine = gcore.ENGINE_OF[Op(op)] if op in set(Op) else Engine.DISPATCH
    assert r.engine == want_engine
    assert r.address == (base + 64 * len(pre) if addr is None else addr)
    assert r.trace == list(range(len(pre)))
    assert gcore.validate(p, word) == (code, addr)
    _assert_prefix_state(p, core, pre, dram)


def test_unused_fields_are_not_checked():
    """Patterns an instruction does not use are not range-checked (ACT's b for op ACT,
    params without load_params), and a disabled wait/signal number is ignored."""
    p = SMALL
    d = p.sbuf_depth
    words = [
        gp.act((0, [(1, 1)]), 0, 1, b=(d - 1, [5])),
        isa.encode(Op.NOP, {"wait_sem": 31, "signal_sem": 30}),
    ]
    for w in words:
        assert gcore.validate(p, w) is None


def test_dispatch_error_waits_for_the_prefix():
    """A dispatch error is raised after the earlier instructions ran, even those that had
    to wait for later-dispatched work — and wins over the deadlock of the truncated prefix."""
    p = SMALL
    prog = [
        gp.dma_load((0, [(8, 1)]), (0, [(8, 1)]), wait=1),  # needs the NOP below
        gp.nop(signal=1),
        gp.act((0, [(1, 1)]), 0, 9),  # ILLEGAL_FIELD
    ]
    core = Core(p, _dram(1))
    r = core.run(prog + [gp.end()])
    assert (r.error, r.index, r.trace) == (CoreError.ILLEGAL_FIELD, 2, [1, 0])
    np.testing.assert_array_equal(core.sbuf[:, :2].T.ravel(), _dram(1)[:8])
    # The same prefix with its producer after the fault: the prefix deadlocks, the dispatch
    # error is what the core reports.
    core = Core(p, _dram(1))
    r = core.run([prog[0], prog[2], prog[1], gp.end()])
    assert (r.error, r.index, r.trace) == (CoreError.ILLEGAL_FIELD, 1, [])
    assert not core.sbuf.any()


def test_no_end_and_fetch_errors():
    p = SMALL
    pre, _ = _prefix(p)
    dram = _dram(3)
    core = Core(p, dram)
    r = core.run(pre, program_base=64)
    assert (r.error, r.index, r.engine, r.address) == (
        CoreError.NO_END,
        3,
        Engine.DISPATCH,
        64 + 3 * 64,
    )
    _assert_prefix_state(p, core, pre, dram)
    # Fetched from DRAM: word 3 sits in an SLVERR window.
    img = gp.Program(pre + [gp.end()]).image()
    dram2 = dram.copy()
    dram2[1024 : 1024 + len(img)] = np.frombuffer(img, np.uint8)
    faults = gdma.DramFaults([(1024 + 3 * 64 + 5, 1024 + 3 * 64 + 6, gdma.Resp.SLVERR)])
    core = Core(p, dram2, faults=faults)
    r = core.run(program_base=1024, program_len=4)
    assert (r.error, r.index, r.address) == (CoreError.FETCH, 3, 1024 + 3 * 64)
    _assert_prefix_state(p, core, pre, dram2, faults=faults)
    # A program beyond the memory.
    r = Core(p, dram_size=4096).run(program_base=4096 - 64, program_len=2)
    assert (r.error, r.index, r.address) == (CoreError.FETCH, 1, 4096)
    assert r.stats.by_op[Op.NOP] == 1  # word 0 (all zero bytes) is a NOP


def test_dma_errors_partial_effects():
    p = SMALL  # 4 partitions: pbits 2
    dram = _dram(4)
    # SBUF range: 12 elements from entry 62, partition 0 → entries 62, 63 fit (8 elements).
    load = gp.dma_load((16, [(12, 1)]), (_lin(p, 62), [(12, 1)]), signal=2)
    core = Core(p, dram)
    r = core.run([gp.nop(), load, gp.dma_load((0, [(4, 1)]), (0, [(4, 1)])), gp.end()])
    assert (r.error, r.dma_code, r.index, r.engine) == (
        CoreError.DMA,
        gdma.ErrorCode.SBUF_RANGE,
        1,
        Engine.DMA,
    )
    assert r.address == _lin(p, 64) and core.sem[2] == 0  # no signal
    np.testing.assert_array_equal(core.sbuf[:, 62:64].T.ravel(), dram[16:24])
    assert not core.sbuf[:, :62].any()  # the later load never started
    assert r.stats.dma_bytes_read == 8 and r.stats.retired[Engine.DMA] == 0
    # Reads beyond the memory answer DECERR at the beat: 8 of 16 bytes arrive.
    core = Core(p, dram)
    r = core.run([gp.dma_load((4096 - 8, [(16, 1)]), (0, [(16, 1)])), gp.end()])
    assert (r.dma_code, r.address) == (gdma.ErrorCode.RD_DECERR, 4096)
    np.testing.assert_array_equal(core.sbuf[:, :2].T.ravel(), dram[-8:])
    assert not core.sbuf[:, 2:].any()
    # A store across the end: the burst below 4096 is written, the next fails.
    core = Core(p, dram)
    core.sbuf[:, :8] = np.arange(32).reshape(8, 4).T
    r = core.run([gp.dma_store((0, [(32, 1)]), (4096 - 16, [(32, 1)])), gp.end()])
    assert (r.dma_code, r.address) == (gdma.ErrorCode.WR_DECERR, 4096)
    np.testing.assert_array_equal(core.dram[-16:], np.arange(16))
    np.testing.assert_array_equal(core.dram[:-16], dram[:-16])
    assert r.dram_maybe is not None and not r.dram_maybe.any()
    # Descriptor errors write nothing.
    core = Core(p, dram)
    r = core.run([gp.dma_load((0, [(4, 1)]), (0, [(5, 1)])), gp.end()])
    assert (r.dma_code, r.address) == (gdma.ErrorCode.COUNT_MISMATCH, 0)
    assert not core.sbuf.any()


def test_execution_error_during_drain_wins():
    p = SMALL
    bad_load = gp.dma_load((0, [(4, 1)]), (_lin(p, 64), [(4, 1)]))
    r = Core(p, _dram(5)).run([bad_load, 7, gp.end()])
    assert (r.error, r.index, r.dma_code) == (CoreError.DMA, 0, gdma.ErrorCode.SBUF_RANGE)


def test_semaphore_overflow():
    p = SMALL
    # 255 signals from NOPs, then (after all of them: NOP 255 signals 5) a DMA's.
    load = gp.dma_load((0, [(4, 1)]), (0, [(4, 1)]), wait=5, signal=3)
    core = Core(p, _dram(6))
    prog = [gp.nop(signal=3)] * 255 + [gp.nop(signal=5), load, gp.nop(signal=4), gp.end()]
    r = core.run(prog)
    assert (r.error, r.index, r.engine, r.address) == (CoreError.SEM_OVERFLOW, 256, Engine.DMA, 3)
    assert core.sem[3] == 255 and core.sem[4] == 0
    np.testing.assert_array_equal(core.sbuf[:, 0], _dram(6)[:4])  # the load's writes landed
    assert r.stats.retired[Engine.DMA] == 1


def test_deadlock():
    p = SMALL
    r = Core(p, _dram(7)).run(
        [
            gp.dma_load((0, [(4, 1)]), (0, [(4, 1)])),
            gp.matmul((0, [(1, 1)]), 1, 1, wait=5),
            gp.end(),
        ]
    )
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 1, Engine.TENSOR, 5)
    assert r.trace == [0]
    # END waiting on a semaphore nobody signals.
    r = Core(p).run([gp.nop(), gp.end(wait=2)])
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 1, Engine.CONTROL, 2)
    # In-order dispatch: three DMAs wait on NOPs behind them. With queue_depth 2 the third
    # DMA blocks dispatch before the NOPs are reached.
    prog = [gp.dma_load((0, [(1, 1)]), (i, [(1, 1)]), wait=1) for i in range(3)]
    prog += [gp.nop(signal=1)] * 3 + [gp.end()]
    r = Core(p.replace(queue_depth=2)).run(prog)
    assert (r.error, r.index, r.engine) == (CoreError.DEADLOCK, 0, Engine.DMA)
    assert Core(p.replace(queue_depth=4)).run(prog).ok


# -- semaphores order the engines --------------------------------------------------------------


def test_semaphore_orders_dma_and_tensor():
    p = SMALL
    dram = _dram(8)
    prog = [
        gp.dma_load((0, [(16, 1)]), (0, [(16, 1)]), signal=0),
        gp.loadw(0, 4, 3, wait=0),
        gp.matmul((0, [(4, 1)]), 4, 3, 0),
        gp.end(),
    ]
    ref = Core(p, dram)
    assert ref.run(prog).ok and ref.psum.mem.any()
    rev = tuple(reversed(gcore.PRIORITY))
    c = Core(p, dram)
    c.run(prog, pick=rev)
    np.testing.assert_array_equal(c.psum.mem, ref.psum.mem)
    # Without the wait, the reversed order runs LOADW before the load: zero weights.
    prog[1] = gp.loadw(0, 4, 3)
    c = Core(p, dram)
    assert c.run(prog, pick=rev).ok
    assert not c.psum.mem.any()


def _strip_waits(words, sem):
    out = []
    for w in words:
        op, f = isa.decode(w)
        if f["wait_en"] and f["wait_sem"] == sem:
            f["wait_en"] = 0
            f["wait_sem"] = 0
            w = isa.encode(op, f)
        out.append(w)
    return out


GEMM_SEMS = ["BFULL", "AFULL", "FREE", "PFULL", "OFULL", "SFREE", "PARAMS"]


@pytest.mark.parametrize("sem", GEMM_SEMS)
def test_gemm_needs_each_semaphore(sem, seed):
    """The semaphores of the GEMM matter: without the waits of any of the first five, some
    pick order gives a different result (while the intact program gives the same one under
    all of them). SFREE and PARAMS only order DMA instructions after earlier ones of the
    DMA queue, which the ISS (each queue sequential) already does: removing them changes
    nothing here, but the RTL may overlap the DMA's instructions."""
    rng = np.random.default_rng(seed(100))
    p = NCoreParams(rows=4, cols=4, sbuf_depth=128)
    a, b = _i8(rng, (12, 9)), _i8(rng, (9, 6))
    d = gp.gemm(p, a, b, block_rows=4, **_requant_params(rng, 600.0, 6))
    picks = [None, tuple(reversed(gcore.PRIORITY)), *range(8)]
    _check_directed(d, picks=picks)
    broken = gp.Directed(
        d.name,
        p,
        gp.Program(_strip_waits(d.program, GEMM_SEMS.index(sem))),
        d.dram.copy(),
        d.program_base,
        d.layout,
        d.expected,
    )
    img = broken.program.image()
    broken.dram[d.program_base : d.program_base + len(img)] = np.frombuffer(img, np.uint8)
    differs = []
    for pick in picks:
        core = broken.run(pick=_pick(pick))
        assert core.result.ok
        differs.append(not np.array_equal(broken.outputs(core.dram)["C"], d.expected["C"]))
    if sem in ("SFREE", "PARAMS"):
        assert not any(differs)
    else:
        assert any(differs), f"removing {sem} changed nothing"


# -- statistics ----------------------------------------------------------------------------------


def test_statistics(seed):
    rng = np.random.default_rng(seed(110))
    p = NCoreParams(rows=4, cols=8, sbuf_depth=256)
    M, K, N, mb = 10, 9, 7, 4
    d = gp.gemm(
        p, _i8(rng, (M, K)), _i8(rng, (K, N)), block_rows=mb, **_requant_params(rng, 500.0, N)
    )
    core = _check_directed(d, picks=[None])
    st = core.result.stats
    tw, nk, nn, nb = 4, 3, 2, 3  # N tiles of min(rows, cols) = 4, K tiles of 4, M blocks
    steps = nk * nn * nb
    assert st.by_op[Op.LOADW] == st.by_op[Op.MATMUL] == steps
    assert st.by_op[Op.ACT] == nn * nb and st.act_rows == M * nn
    assert st.by_op[Op.DMA] == 1 + 2 * steps + nn * nb  # params, A and B per step, stores
    assert st.retired[Engine.TENSOR] == 2 * steps and st.retired[Engine.CONTROL] == 1
    assert sum(st.retired.values()) == len(d.program)
    assert st.macs == M * K * N and st.matmul_rows == M * nk * nn
    pieces3 = 3 * gcore.param_pieces(p)
    read = nn * M * K + nb * K * N + nn * tw * pieces3  # A per N tile, B per block, params
    assert (st.dma_bytes_read, st.dma_bytes_written) == (read, M * N)
    assert st.sem_waits == st.sem_signals  # every signal is taken


@pytest.mark.parametrize(
    "p, shape, block_rows",
    [
        (INT8, (37, 24, 17), 8),
        (NCoreParams(rows=4, cols=8), (50, 12, 9), 7),
        (NCoreParams(sbuf_depth=256), (40, 64, 24), None),
    ],
)
def test_gemm_stationary(p, shape, block_rows, seed):
    """The A-resident GEMM schedule: right under every pick order (it is correctly
    synchronised), with several blocks, partial blocks and partial N tiles."""
    M, K, N = shape
    rng = np.random.default_rng(seed(70 + M))
    a, b = _i8(rng, (M, K)), _i8(rng, (K, N))
    rq = _requant_params(rng, 128 * 128 * np.sqrt(K) / 3, N)
    d = gp.gemm_stationary(p, a, b, block_rows=block_rows, relu=True, **rq)
    assert d.info["m_blocks"] >= 3
    assert len(np.unique(d.expected["C"])) > 20
    for pick in (None, list(reversed(gcore.PRIORITY)), np.random.default_rng(seed(71))):
        core = d.run(pick=pick)
        assert core.result.ok, core.result
        np.testing.assert_array_equal(d.outputs(core.dram)["C"], d.expected["C"])


# -- links and barrier on one core ---------------------------------------------------------------

LINK = NCoreParams(rows=4, cols=3, sbuf_depth=64, psum_depth=32, semaphores=8, cores=1)


def test_engines_and_priority():
    assert [int(e) for e in Engine] == [0, 1, 2, 3, 4, 5, 6]
    assert gcore.PRIORITY == (
        Engine.DMA,
        Engine.TENSOR,
        Engine.VECTOR,
        Engine.SEND,
        Engine.RECV,
        Engine.CONTROL,
    )
    assert (Op.SEND, Op.RECV, Op.BARRIER) == (6, 7, 8)
    assert gcore.ENGINE_OF[Op.SEND] == Engine.SEND and gcore.ENGINE_OF[Op.RECV] == Engine.RECV
    assert gcore.ENGINE_OF[Op.BARRIER] == Engine.CONTROL
    with pytest.raises(ValueError, match="all 6 queues"):
        Core(LINK).run([gp.end()], pick=[Engine.DMA, Engine.TENSOR, Engine.VECTOR, Engine.CONTROL])


def test_assembler_link_fields():
    op, f = isa.decode(gp.send((5, [(3, -2), (2, 7)]), 3, wait=1, signal=2))
    assert op == Op.SEND and f["n"] == 3 and (f["wait_en"], f["wait_sem"]) == (1, 1)
    assert f["src"]["start"] == 5 and (f["signal_en"], f["signal_sem"]) == (1, 2)
    assert [(d["count"], d["stride"]) for d in f["src"]["dims"]] == [(3, -2), (2, 7), (1, 0)]
    op, f = isa.decode(gp.recv((9, [(4, 1)]), 2))
    assert op == Op.RECV and f["n"] == 2 and f["dst"]["start"] == 9 and not f["wait_en"]
    op, f = isa.decode(gp.barrier(0b1010, signal=4))
    assert op == Op.BARRIER and f["mask"] == 0b1010 and f["signal_sem"] == 4
    assert isa.decode(gp.barrier())[1]["mask"] == 0


def test_validate_link_fields():
    """validate: n in 1 … rows, counts ≥ 1, patterns inside the SBUF (the extreme-entry
    rule), BARRIER masks within the chip and including the core (by its number)."""
    p = SMALL  # 4 cores, 4 partitions, 64 entries
    d = p.sbuf_depth
    FLD, SB = CoreError.ILLEGAL_FIELD, CoreError.SBUF_RANGE
    for fn in (gp.send, gp.recv):
        assert gcore.validate(p, fn((0, [(d, 1)]), p.rows)) is None
        assert gcore.validate(p, fn((d - 1, [(d, -1)]), 1)) is None
        assert gcore.validate(p, fn((0, [(1, 1)]), 0)) == (FLD, None)
        assert gcore.validate(p, fn((0, [(1, 1)]), p.rows + 1)) == (FLD, None)
        assert gcore.validate(p, fn((0, [(2, 1), (0, 5)]), 1)) == (FLD, None)
        assert gcore.validate(p, fn((0, [(2, 1)]), 0)) == (FLD, None)  # field before range
        assert gcore.validate(p, fn((d, [(1, 1)]), 1)) == (SB, d)
        assert gcore.validate(p, fn((3, [(2, 40), (2, 30)]), 1)) == (SB, 3 + 40 + 30)
        assert gcore.validate(p, fn((3, [(2, 1), (2, -4)]), 1)) == (SB, 0xFFFF_FFFF)
        assert gcore.validate(p, fn((0, [(1 << 15, 0)]), 1)) is None  # stride 0: one entry
        assert gcore.validate(p, fn((0, [(2, 1)]), 1) | 1 << 300) == (FLD, None)  # tail
    assert gcore.validate(p, gp.barrier()) is None
    assert gcore.validate(p, gp.barrier(0b1111)) is None
    assert gcore.validate(p, gp.barrier(0b0001)) is None
    assert gcore.validate(p, gp.barrier(0b10000 | 1)) == (FLD, None)  # core 4 of 4
    assert gcore.validate(p, gp.barrier(0b0110)) == (FLD, None)  # without core 0
    for core in range(4):
        for mask in range(1, 16):
            want = None if mask >> core & 1 else (FLD, None)
            assert gcore.validate(p, gp.barrier(mask), core) == want
    assert gcore.validate(p.replace(cores=16), gp.barrier(0xFFFF), 15) is None
    assert gcore.validate(p.replace(cores=16), gp.barrier(0x7FFF), 15) == (FLD, None)
    assert gcore.validate(p.replace(cores=1), gp.barrier(0b10)) == (FLD, None)
    assert gcore.validate(p, gp.barrier(0b1, wait=p.semaphores)) == (FLD, None)
    # The core's own number decides at dispatch, too.
    r = Core(p, index=2).run([gp.nop(), gp.barrier(0b0011), gp.end()], program_base=128)
    assert (r.error, r.index, r.engine, r.address) == (
        CoreError.ILLEGAL_FIELD,
        1,
        Engine.CONTROL,
        128 + 64,
    )
    with pytest.raises(ValueError, match="core index"):
        Core(p, index=4)


@pytest.mark.parametrize("pick", PICKS, ids=["priority", "reversed", "random1", "random2"])
def test_send_recv_loop_back(pick, seed):
    """One core: SENDs go round the loop-back link to its own RECVs. Row counts differ per
    instruction (a stream), SEND zero-fills partitions ≥ n, RECV leaves them untouched, a
    repeated destination entry gets the later row, strided and negative patterns."""
    p = LINK  # 4 partitions
    rng = np.random.default_rng(seed(120))
    core = Core(p, dram_size=4096)
    core.sbuf[:] = rng.integers(0, 256, core.sbuf.shape)
    before = core.sbuf.copy()
    prog = [
        gp.recv((40, [(3, 2)]), 4, signal=1),  # waits for rows: dispatched first
        gp.send((0, [(2, 1), (2, 10)]), 4),  # rows 0, 1, 10, 11
        gp.send((25, [(3, -1)]), 2),  # rows 25, 24, 23, partitions ≥ 2 as 0
        gp.recv((50, [(2, 1)]), 3),  # rows 11, 25: partitions < 3
        gp.recv((60, [(2, 0)]), 4, signal=1),  # the same entry twice: row 23 wins
        gp.nop(wait=1),
        gp.end(wait=1),
    ]
    r = core.run(prog, pick=_pick(pick))
    assert r.ok, r
    want = before.copy()
    sent = [before[:, e].copy() for e in (0, 1, 10, 11)]
    for e in (25, 24, 23):
        row = before[:, e].copy()
        row[2:] = 0
        sent.append(row)
    for i, e in enumerate((40, 42, 44)):
        want[:, e] = sent[i]
    want[:3, 50] = sent[3][:3]
    want[:3, 51] = sent[4][:3]
    want[:, 60] = sent[6]
    np.testing.assert_array_equal(core.sbuf, want)
    assert len(core.link_in) == 0 and core.link_in is core.link_out
    st = r.stats
    assert (st.send_rows, st.recv_rows, st.barriers) == (7, 7, 0)
    assert st.retired[Engine.SEND] == 2 and st.retired[Engine.RECV] == 3
    assert st.by_op[Op.SEND] == 2 and st.by_op[Op.RECV] == 3 and st.by_op[Op.BARRIER] == 0
    assert sum(st.retired.values()) == len(prog)


def test_loop_back_on_a_core_of_a_larger_chip():
    """A standalone Core loops its link back whatever ``cores`` says."""
    p = SMALL  # cores = 4
    core = Core(p, dram_size=4096)
    core.sbuf[:, 3] = [1, 2, 3, 4]
    r = core.run([gp.send((3, [(1, 1)]), 4), gp.recv((7, [(1, 1)]), 4), gp.end()])
    assert r.ok and list(core.sbuf[:, 7]) == [1, 2, 3, 4]


def test_recv_deadlock():
    """A RECV waits for all its rows; rows that never come end the run with DEADLOCK for the
    recv queue (address: its wait_sem field), after everything else that could run."""
    p = LINK
    core = Core(p, dram_size=4096)
    r = core.run([gp.recv((0, [(2, 1)]), 4), gp.nop(signal=3), gp.end()])
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 0, Engine.RECV, 0)
    assert r.trace == [1] and core.sem[3] == 1 and r.stats.recv_rows == 0
    # Too few rows: 3 sent, 4 wanted; none is taken (the ISS RECV is atomic).
    core.sbuf[:] = 0
    core.sbuf[:, :3] = 7
    r = core.run([gp.send((0, [(3, 1)]), 4), gp.recv((10, [(4, 1)]), 4, wait=2), gp.nop(signal=2),
                  gp.end()])  # fmt: skip
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 1, Engine.RECV, 2)
    assert len(core.link_in) == 3 and not core.sbuf[:, 10:].any()
    # A RECV fed only by a SEND that waits for it deadlocks (an incorrect program).
    r = Core(p).run([gp.recv((0, [(1, 1)]), 4, signal=0), gp.send((0, [(1, 1)]), 4, wait=0),
                     gp.end()])  # fmt: skip
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 1, Engine.SEND, 0)
    # The same program in the right order is fine.
    r = Core(p).run([gp.send((0, [(1, 1)]), 4, signal=0), gp.recv((0, [(1, 1)]), 4, wait=0),
                     gp.end()])  # fmt: skip
    assert r.ok and r.trace == [0, 1, 2]


def test_end_waits_for_send_and_recv_queues():
    """END starts only when the five other queues are empty; reversed priority would
    otherwise run it first."""
    p = LINK
    rev = tuple(reversed(gcore.PRIORITY))
    prog = [gp.send((0, [(1, 1)]), 4, wait=0), gp.recv((1, [(1, 1)]), 4), gp.nop(signal=0),
            gp.end()]  # fmt: skip
    r = Core(p).run(prog, pick=rev)
    assert r.ok and r.trace == [2, 0, 1, 3]
    r = Core(p).run(prog)
    assert r.ok and r.trace == [2, 0, 1, 3]


def test_barrier_on_one_core():
    """With cores = 1 (or a mask of the core alone) a BARRIER completes at once and signals;
    one that names other cores never completes on a standalone core: DEADLOCK for the
    control queue with the mask as address, while the other queues go on."""
    p = LINK
    r = Core(p).run([gp.barrier(signal=2), gp.barrier(0b1, wait=2, signal=2), gp.nop(wait=2),
                     gp.end()])  # fmt: skip
    assert r.ok and r.trace == [0, 1, 2, 3]
    assert r.stats.barriers == 2 and r.stats.by_op[Op.BARRIER] == 2
    assert r.stats.retired[Engine.CONTROL] == 4 and r.stats.sem_signals == 2
    q = SMALL  # cores = 4: a standalone core 0
    assert Core(q).run([gp.barrier(0b0001), gp.end()]).ok
    core = Core(q, _dram(130))
    r = core.run(
        [
            gp.barrier(),
            gp.nop(signal=1),
            gp.dma_load((0, [(4, 1)]), (0, [(4, 1)])),  # not ordered after the barrier
            gp.end(),
        ]
    )
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 0, Engine.CONTROL, 0xF)
    assert r.trace == [2] and core.sem[1] == 0  # the NOP behind the barrier never ran
    np.testing.assert_array_equal(core.sbuf[:, 0], _dram(130)[:4])
    r = Core(q).run([gp.barrier(0b0101, wait=3), gp.end()])
    assert (r.error, r.index, r.engine, r.address) == (CoreError.DEADLOCK, 0, Engine.CONTROL, 3)
    # A BARRIER's signal can overflow like any other.
    prog = [gp.nop(signal=0)] * 255 + [gp.barrier(signal=0), gp.end()]
    r = Core(p.replace(queue_depth=2)).run(prog)
    assert (r.error, r.index, r.engine, r.address) == (
        CoreError.SEM_OVERFLOW,
        255,
        Engine.CONTROL,
        0,
    )
    assert r.stats.barriers == 1


def test_link_statistics_and_run_restarts_links():
    """Counters of SEND/RECV/BARRIER, and a new run starts with an empty link and a fresh
    barrier count."""
    p = LINK
    core = Core(p)
    r = core.run([gp.send((0, [(5, 1), (2, 8)]), 4), gp.barrier(), gp.end()])
    assert r.ok and len(core.link_out) == 10  # left in the link: not an error
    assert (r.stats.send_rows, r.stats.recv_rows, r.stats.barriers) == (10, 0, 1)
    r = core.run([gp.recv((0, [(1, 1)]), 4), gp.end()])
    assert r.error == CoreError.DEADLOCK and len(core.link_in) == 0
    r = core.run([gp.send((0, [(3, 1)]), 4), gp.recv((0, [(3, 1)]), 2), gp.end()])
    assert r.ok and (r.stats.send_rows, r.stats.recv_rows) == (3, 3)


@pytest.mark.parametrize("pick", [None, "reversed", "random"])
def test_psum_store_after_matmul(pick, seed):
    """MATMUL int8 → PSUM_STORE: the int32 results reach DRAM row-major (linear PSUM
    addresses ``entry << cbits | column``), whatever the engines' order, and a PSUM range
    fault is a DMA error with the linear PSUM address."""
    p = NCoreParams(rows=4, cols=3, sbuf_depth=64, psum_depth=16)  # cbits 2
    rng = np.random.default_rng(seed(77))
    m = 10
    a = rng.integers(-128, 128, (m, 4), dtype=np.int8)
    bt = rng.integers(-128, 128, (3, 4), dtype=np.int8)
    dram = np.zeros(1 << 14, np.uint8)
    dram[: a.size] = a.view(np.uint8).ravel()
    dram[0x100 : 0x100 + bt.size] = bt.view(np.uint8).ravel()
    words = [
        gp.dma_load((0, [(m * 4, 1)]), (0, [(m * 4, 1)]), signal=0),
        gp.dma_load((0x100, [(12, 1)]), (32 << 2, [(12, 1)]), signal=1),
        gp.loadw(32, 4, 3, wait=1),
        gp.matmul((0, [(m, 1)]), 4, 3, 2, wait=0, signal=2),  # PSUM entries 2 … 11
        gp.dma_store_psum((2 << 2, [(3, 1), (m, 4)]), (0x1001, [(3 * m, 4)]), wait=2, signal=3),
        gp.matmul((0, [(m, 1)]), 4, 3, 2, accumulate=True, wait=3),  # after the store: 2×
        gp.end(),
    ]
    order = {None: None, "reversed": list(reversed(gcore.PRIORITY)),
             "random": np.random.default_rng(1)}[pick]  # fmt: skip
    core = Core(p, dram)
    res = core.run(words, pick=order)
    assert res.ok, res
    want = (a.astype(np.int64) @ bt.T.astype(np.int64)).astype(np.int32)
    got = core.dram[0x1001 : 0x1001 + 12 * m].copy().view("<i4").reshape(m, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(core.psum.mem[:, 2 : 2 + m].T.view(np.int32), 2 * want)
    assert res.stats.dma_bytes_written == 12 * m
    # Column code 3 does not exist: the fourth element faults.
    bad = [gp.dma_store_psum((8, [(6, 1)]), (0x2000, [(6, 4)])), gp.end()]
    res = core.run(bad)
    assert (res.error, res.dma_code, res.address) == (CoreError.DMA, gdma.ErrorCode.SBUF_RANGE, 11)
    assert core.dram[0x2000:0x200C].view("<i4").tolist() == (2 * want[0]).tolist()
    assert not core.dram[0x200C:0x2018].any()
