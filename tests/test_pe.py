"""The processing element, in the Amaranth simulator."""

import numpy as np
import pytest

from amsim import simulate
from ncore.hw.pe import PE
from ncore.params import NCoreParams


@pytest.mark.parametrize("seed", [1, 2])
def test_mac_and_weight_banks(seed):
    """psum_out = psum_in + a × w[bank], wrapping in int32, after mul+add latency; the weight
    chain shifts only the named bank and w_out shows that bank."""
    rng = np.random.default_rng(seed)
    p = NCoreParams()
    dut = PE(p)
    lat = p.pe_mul_latency + p.pe_add_latency
    n = 200
    a = rng.integers(-128, 128, n)
    bank = rng.integers(0, 2, n)
    psum = rng.integers(-(2**31), 2**31, n)
    psum[:8] = [2**31 - 1, -(2**31), 2**31 - 100, 0, 1, -1, 5, 7]
    w = [-128, 127]
    expect = {}
    got = {}

    async def tb(ctx):
        # Load the two banks through the chain, checking w_out follows the selected bank.
        for b, value in enumerate(w):
            ctx.set(dut.w_shift, 1)
            ctx.set(dut.w_bank, b)
            ctx.set(dut.w_in, value & 0xFF)
            await ctx.tick()
        ctx.set(dut.w_shift, 0)
        for b, value in enumerate(w):
            ctx.set(dut.w_bank, b)
            assert ctx.get(dut.w_out) == value & 0xFF
        for t in range(n + lat):
            if t < n:
                ctx.set(dut.a_in, {"data": int(a[t]) & 0xFF, "bank": int(bank[t]), "dtype": 0})
            # The accumulate stage reads psum_in pe_mul_latency cycles after a_in.
            if 0 <= t - p.pe_mul_latency < n:
                ctx.set(dut.psum_in, int(psum[t - p.pe_mul_latency]))
            await ctx.tick()
            got[t] = ctx.get(dut.psum_out)
            if t < n:
                assert ctx.get(dut.a_out.data) == int(a[t]) & 0xFF
        for t in range(n):
            full = int(psum[t]) + int(a[t]) * w[int(bank[t])]
            expect[t + lat - 1] = (full + 2**31) % 2**32 - 2**31

    simulate(dut, tb)
    for t, v in expect.items():
        assert got[t] == v, f"cycle {t}: got {got[t]}, expected {v} (seed {seed})"
