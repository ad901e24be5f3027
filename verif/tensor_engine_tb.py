"""cocotb bench of the tensor engine: driver, monitor, golden model and checker.

The bench issues LOADW/MATMUL pairs in program order (rows of tile ``i`` only after tile
``i``'s first weight column was taken; tile ``i + 2``'s weights, which reuse the bank, only
after tile ``i``'s rows were all taken), with random idle cycles on both inputs and random
backpressure on the output. Every result row is compared bit for bit with
:func:`ncore.golden.tensor_engine.matmul`; with no stalls, every row's latency and the
whole sequence's cycle count are compared with the golden cycle model.

Knobs (environment, set by the runner): ``NCORE_SEED``, ``NCORE_TILES`` (LOADW/MATMUL
pairs), ``NCORE_MAX_M`` (rows per MATMUL, drawn 1…max), ``NCORE_STALL`` and
``NCORE_BACKPRESSURE`` (probabilities for the random test), ``NCORE_DTYPES`` (comma-separated
dtypes the MATMULs draw from, each MATMUL choosing its own).
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import Event, RisingEdge

from ..golden import tensor_engine as golden
from ..hw.tensor_engine import acts_layout, result_layout, weights_layout
from ..params import DTYPE_CODE
from .benchenv import BenchEnv, cycles_now, start_clock
from .stimulus import lanes, random_operands
from .streams import StreamDriver, StreamMonitor


class TensorEngineTB:
    """One bench instance: drivers on ``i_weights``/``i_acts``, a monitor on ``o_result``."""

    def __init__(self, dut, env: BenchEnv, *, stall: float, backpressure: float, salt: int):
        self.dut = dut
        self.env = env
        self.p = env.params
        self.tag_width = env.design["options"].get("tag_width", 16)
        self.dtypes = env.knobs.get("dtypes", "int8").split(",")
        for d in self.dtypes:
            assert d in self.p.dtypes, f"dtype {d} is not built into {self.p.tag()}"
        self.rng = np.random.default_rng([env.seed, salt])  # each test draws its own data
        clk = dut.clk
        self.weights = StreamDriver(dut, "i_weights", weights_layout(self.p), clk, self.rng, stall)
        self.acts = StreamDriver(
            dut, "i_acts", acts_layout(self.p, self.tag_width), clk, self.rng, stall
        )
        self.results = StreamMonitor(
            dut, "o_result", result_layout(self.p, self.tag_width), clk, self.rng, backpressure
        )
        dut._log.info("ncore tensor engine bench: %s, %s", self.p.tag(), env.rerun_hint())

    async def start(self):
        await start_clock(self.dut)

    def random_tiles(self, count: int, max_m: int, m: int | None = None):
        """``count`` (w, x, dtype) tiles; dtypes drawn from the bench's ``dtypes`` knob."""
        p, rng = self.p, self.rng
        tiles = []
        for _ in range(count):
            rows = m if m is not None else int(rng.integers(1, max_m + 1))
            dtype = str(rng.choice(self.dtypes))
            special = 0.3 if dtype == "int8" else 0.05  # int8: extremes; fp: inf/NaN/subnormal
            w = random_operands(rng, (p.rows, p.cols), dtype, special)
            x = random_operands(rng, (rows, p.rows), dtype, special)
            tiles.append((w, x, dtype))
        return tiles

    async def run(self, tiles):
        """Issue the tiles, collect every result; return (rows, accept cycles, out cycles,
        first-weight cycle)."""
        p = self.p
        n = len(tiles)
        w_started = [Event() for _ in range(n)]
        a_done = [Event() for _ in range(n)]
        first_w = []
        a_cycles, o_cycles, out = [], [], []

        async def weights():
            for i, (w, _, _) in enumerate(tiles):
                if i >= 2:
                    await a_done[i - 2].wait()
                for j in range(p.cols):
                    payload = {"data": lanes(w[:, j]), "bank": i % 2}
                    await self.weights.send(payload)
                    if j == 0:
                        if i == 0:
                            first_w.append(cycles_now() - 1)
                        w_started[i].set()

        async def acts():
            tag = 0
            for i, (_, x, dtype) in enumerate(tiles):
                await w_started[i].wait()
                for r in range(len(x)):
                    payload = {
                        "data": lanes(x[r]),
                        "bank": i % 2,
                        "dtype": DTYPE_CODE[dtype],
                        "last": int(r == len(x) - 1),
                        "tag": tag,
                    }
                    await self.acts.send(payload)
                    a_cycles.append(cycles_now() - 1)
                    tag = (tag + 1) % (1 << self.tag_width)
                a_done[i].set()

        total = sum(len(x) for _, x, _ in tiles)
        w_task = cocotb.start_soon(weights())
        a_task = cocotb.start_soon(acts())
        for _ in range(total):
            out.append(await self.results.recv())
            o_cycles.append(cycles_now() - 1)
        await w_task
        await a_task
        for _ in range(4):
            await RisingEdge(self.dut.clk)
        assert not self.dut.busy.value, "engine still busy after the last result"
        return out, np.array(a_cycles), np.array(o_cycles), first_w[0]

    def check(self, tiles, out):
        # Compare bit patterns: int32 for int8 MATMULs, fp32 for fp16/bf16 ones.
        got = np.array([[int(v) & 0xFFFFFFFF for v in r.data] for r in out], dtype=np.uint32)
        expect = np.concatenate([golden.matmul(x, w, d).view(np.uint32) for w, x, d in tiles])
        bad = np.argwhere(got != expect)
        if len(bad):
            r, c = bad[0]
            raise AssertionError(
                f"{len(bad)} mismatches; first at result row {r} column {c}: "
                f"got {got[r, c]}, golden {expect[r, c]} ({self.env.rerun_hint()})"
            )
        tags = [int(r.tag) for r in out]
        assert tags == [i % (1 << self.tag_width) for i in range(len(out))], "tags out of order"
        lasts = np.flatnonzero([int(r.last) for r in out])
        ends = np.cumsum([len(x) for _, x, _ in tiles]) - 1
        np.testing.assert_array_equal(lasts, ends, err_msg="last flags misplaced")


@cocotb.test()
async def test_latency_and_rate(dut):
    """One MATMUL with no stalls: back-to-back rows, exact latency, golden cycle count."""
    env = BenchEnv.load()
    tb = TensorEngineTB(dut, env, stall=0.0, backpressure=0.0, salt=1)
    await tb.start()
    m = int(env.knob("rate_m", 64, int))
    tiles = tb.random_tiles(1, m, m=m)
    out, a, o, _ = await tb.run(tiles)
    tb.check(tiles, out)
    lat = set((o - a).tolist())
    assert lat == {golden.latency(tb.p)}, f"latency {lat}, golden {golden.latency(tb.p)}"
    assert np.all(np.diff(a) == 1), "rows not accepted back to back"
    cycles = int(o[-1] - a[0] + 1)
    assert cycles == golden.matmul_cycles(tb.p, m), (cycles, golden.matmul_cycles(tb.p, m))
    env.write_summary(
        {
            "shape": f"{tb.p.rows}x{tb.p.cols}",
            "dtypes": tb.dtypes,
            "latency": golden.latency(tb.p),
            "matmul_rows": m,
            "matmul_cycles": cycles,
            "rows_per_cycle": m / int(a[-1] - a[0] + 1),
        }
    )


@cocotb.test()
async def test_double_buffered_sequence(dut):
    """LOADW/MATMUL pairs back to back: weight loads hide under matmuls, cycle count equals
    the golden sequence model."""
    env = BenchEnv.load()
    tb = TensorEngineTB(dut, env, stall=0.0, backpressure=0.0, salt=2)
    await tb.start()
    n = int(env.knob("tiles", 4, int))
    tiles = tb.random_tiles(n, int(env.knob("max_m", 24, int)))
    out, a, o, w0 = await tb.run(tiles)
    tb.check(tiles, out)
    ms = [len(x) for _, x, _ in tiles]
    cycles = int(o[-1] - w0 + 1)
    expect = golden.sequence_cycles(tb.p, ms)
    assert cycles == expect, f"sequence took {cycles} cycles, golden model {expect}"
    env.write_summary({"sequence_rows": ms, "sequence_cycles": cycles})


@cocotb.test()
@cocotb.parametrize(stall=[0.25, 0.5], backpressure=[0.3, 0.7])
async def test_random_stalls(dut, stall, backpressure):
    """Random tiles, random idle cycles on both inputs, random output backpressure."""
    env = BenchEnv.load()
    salt = 3 + int(stall * 100) * 1000 + int(backpressure * 100)
    tb = TensorEngineTB(dut, env, stall=stall, backpressure=backpressure, salt=salt)
    await tb.start()
    tiles = tb.random_tiles(int(env.knob("tiles", 4, int)), int(env.knob("max_m", 24, int)))
    out, _, _, _ = await tb.run(tiles)
    tb.check(tiles, out)
    env.write_summary({f"random_{stall}_{backpressure}": "pass"})
