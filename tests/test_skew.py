# amaranth: UnusedElaboratable=no
"""Skew and de-skew delay lines, in the Amaranth simulator."""

import pytest

from amsim import simulate
from ncore.hw.skew import Deskew, Skew


@pytest.mark.parametrize("cls", [Skew, Deskew])
@pytest.mark.parametrize("lanes,step", [(1, 1), (4, 1), (5, 3), (3, 0)])
def test_lane_delays(cls, lanes, step):
    dut = cls(8, lanes, step)
    expect = [(k if cls is Skew else lanes - 1 - k) * step for k in range(lanes)]
    assert [dut.delay(k) for k in range(lanes)] == expect
    seen = {}

    async def tb(ctx):
        # Drive a distinct value per lane per cycle: lane k carries (16·k + t) at cycle t.
        for t in range(lanes * step + 4):
            for k in range(lanes):
                ctx.set(dut.i[k], (16 * k + t) & 0xFF)
            for k in range(lanes):
                seen[(t, k)] = ctx.get(dut.o[k])
            await ctx.tick()

    simulate(dut, tb)
    for (t, k), v in seen.items():
        d = expect[k]
        if t >= d:
            assert v == (16 * k + t - d) & 0xFF, f"lane {k} at cycle {t}"


def test_bad_arguments():
    with pytest.raises(ValueError, match="lanes must be"):
        Skew(8, 0, 1)
