# amaranth: UnusedElaboratable=no
"""The tensor engine in the Amaranth simulator: results, latency, rate, interlocks."""

import numpy as np
import pytest

from amsim import simulate
from ncore.golden import tensor_engine as golden
from ncore.hw.tensor_engine import TensorEngine
from ncore.params import DTYPE_CODE, NCoreParams
from ncore.verif.stimulus import lanes, random_operands


def run_engine(p, tiles, *, seed=0, stall=0.0, backpressure=0.0, tag_width=16):
    """Drive LOADW/MATMUL pairs through a TensorEngine, in program order.

    ``tiles`` is a list of (w, x, dtype): w K×N and x M×K operands (int8, or uint16 bits for
    fp16/bf16). Returns the result rows,
    the cycle of every accepted row / delivered result, and the first weight cycle.
    """
    rng = np.random.default_rng(seed)
    dut = TensorEngine(p, tag_width=tag_width)
    n_rows = sum(len(x) for _, x, _ in tiles)
    log = {
        "w_taken": [None] * len(tiles),
        "a_done": [None] * len(tiles),
        "a_cycle": [],
        "o_cycle": [],
        "results": [],
    }
    cycle = [0]

    async def clock(ctx):
        while True:
            await ctx.tick()
            cycle[0] += 1

    async def send(ctx, port, payload):
        while stall and rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)
        return cycle[0] - 1

    async def weights(ctx):
        for i, (w, _, _) in enumerate(tiles):
            if i >= 2:  # same bank as tile i-2: wait for its rows to be accepted
                while log["a_done"][i - 2] is None:
                    await ctx.tick()
            for j in range(p.cols):
                payload = {"data": lanes(w[:, j]), "bank": i % 2}
                c = await send(ctx, dut.i_weights, payload)
                if j == 0:
                    log["w_taken"][i] = c

    async def acts(ctx):
        tag = 0
        for i, (_, x, dtype) in enumerate(tiles):
            while log["w_taken"][i] is None:  # program order: LOADW i has begun
                await ctx.tick()
            for r in range(len(x)):
                payload = {
                    "data": lanes(x[r]),
                    "bank": i % 2,
                    "dtype": DTYPE_CODE[dtype],
                    "last": int(r == len(x) - 1),
                    "tag": tag,
                }
                log["a_cycle"].append(await send(ctx, dut.i_acts, payload))
                tag = (tag + 1) % (1 << tag_width)
            log["a_done"][i] = True

    async def results(ctx):
        for _ in range(n_rows):
            while backpressure and rng.random() < backpressure:
                ctx.set(dut.o_result.ready, 0)
                await ctx.tick()
            ctx.set(dut.o_result.ready, 1)
            _valid, payload = (
                await ctx.tick()
                .sample(dut.o_result.valid, dut.o_result.payload)
                .until(dut.o_result.valid)
            )
            log["o_cycle"].append(cycle[0] - 1)
            log["results"].append(payload)
        ctx.set(dut.o_result.ready, 0)
        for _ in range(10):
            await ctx.tick()
        assert not ctx.get(dut.busy)

    simulate(dut, weights, acts, results, processes=[clock])
    return dut, log


def result_rows(log):
    """Result rows as uint32 bit patterns (int32 or fp32)."""
    return np.array([[int(v) & 0xFFFFFFFF for v in r.data] for r in log["results"]], np.uint32)


def expected_rows(tiles):
    return np.concatenate([golden.matmul(x, w, d).view(np.uint32) for w, x, d in tiles])


def random_tiles(rng, p, ms, dtypes=("int8",)):
    tiles = []
    for m in ms:
        d = str(rng.choice(dtypes))
        w = random_operands(rng, (p.rows, p.cols), d)
        x = random_operands(rng, (m, p.rows), d)
        tiles.append((w, x, d))
    return tiles


@pytest.mark.parametrize("rows,cols", [(1, 1), (4, 4), (3, 5), (8, 8)])
def test_latency_and_rate(rows, cols):
    """No stalls: one row per cycle, results exactly `latency` cycles after their rows."""
    p = NCoreParams(rows=rows, cols=cols)
    rng = np.random.default_rng(rows * 100 + cols)
    tiles = random_tiles(rng, p, [40])
    dut, log = run_engine(p, tiles)
    np.testing.assert_array_equal(result_rows(log), expected_rows(tiles))
    a, o = np.array(log["a_cycle"]), np.array(log["o_cycle"])
    assert np.all(np.diff(a) == 1), "rows were not accepted back to back"
    assert np.all(o - a == golden.latency(p)), f"latency {set(o - a)} != {golden.latency(p)}"
    assert dut.latency == golden.latency(p)
    assert o[-1] - a[0] + 1 == golden.matmul_cycles(p, 40)


@pytest.mark.parametrize("rows,cols", [(2, 3), (4, 4)])
def test_double_buffered_sequence(rows, cols):
    """Back-to-back LOADW/MATMUL pairs: loads hide under matmuls; cycles match the model."""
    p = NCoreParams(rows=rows, cols=cols)
    rng = np.random.default_rng(7)
    ms = [20, 3, 1, 12, 30, 2]
    tiles = random_tiles(rng, p, ms)
    _, log = run_engine(p, tiles)
    np.testing.assert_array_equal(result_rows(log), expected_rows(tiles))
    measured = log["o_cycle"][-1] - log["w_taken"][0] + 1
    assert measured == golden.sequence_cycles(p, ms)


@pytest.mark.parametrize("seed", [11, 12, 13])
@pytest.mark.parametrize("rows,cols", [(1, 1), (3, 2), (4, 4)])
def test_random_stalls_and_backpressure(rows, cols, seed):
    p = NCoreParams(rows=rows, cols=cols)
    rng = np.random.default_rng(seed)
    tiles = random_tiles(rng, p, rng.integers(1, 12, 5))
    _, log = run_engine(p, tiles, seed=seed, stall=0.3, backpressure=0.4)
    np.testing.assert_array_equal(
        result_rows(log), expected_rows(tiles), err_msg=f"rerun: pytest -k 'stalls and {seed}'"
    )
    # Tags come back in order with their rows.
    assert [int(r.tag) for r in log["results"]] == list(range(len(log["results"])))
    lasts = [int(r.last) for r in log["results"]]
    assert sum(lasts) == len(tiles) and lasts[-1] == 1


def test_extreme_values_wrap():
    """All -128 times -128 over many rows cannot overflow int32 for K ≤ 8, but a K of 256
    could; check the exact int32 result and the most negative products."""
    p = NCoreParams(rows=8, cols=2)
    w = np.full((8, 2), -128, dtype=np.int8)
    w[:, 1] = 127
    x = np.array([[-128] * 8, [127] * 8, [0] * 8, [-128, 127] * 4], dtype=np.int8)
    _, log = run_engine(p, [(w, x, "int8")])
    np.testing.assert_array_equal(result_rows(log), golden.matmul(x, w).view(np.uint32))


def test_bad_tag_width():
    with pytest.raises(ValueError, match="tag_width"):
        TensorEngine(NCoreParams(), tag_width=0)


@pytest.mark.parametrize("seed", [21, 22])
@pytest.mark.parametrize(
    "rows,cols,dtypes",
    [(4, 3, ("int8", "fp16", "bf16")), (3, 2, ("bf16",)), (2, 4, ("int8", "fp16"))],
)
def test_fp_dtypes_mixed_per_matmul(rows, cols, dtypes, seed):
    """Each MATMUL picks its dtype at run time; FP results are bit-exact, specials included,
    and the latency is the same for every dtype."""
    p = NCoreParams(rows=rows, cols=cols, dtypes=dtypes)
    rng = np.random.default_rng(seed)
    tiles = random_tiles(rng, p, rng.integers(1, 10, 6), dtypes)
    _, log = run_engine(p, tiles, seed=seed, stall=0.2, backpressure=0.3)
    np.testing.assert_array_equal(result_rows(log), expected_rows(tiles), err_msg=f"seed {seed}")
    tiles = random_tiles(rng, p, [24], dtypes)
    _, log = run_engine(p, tiles)
    o, a = np.array(log["o_cycle"]), np.array(log["a_cycle"])
    assert np.all(o - a == golden.latency(p))
    np.testing.assert_array_equal(result_rows(log), expected_rows(tiles))
