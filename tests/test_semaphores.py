# amaranth: UnusedElaboratable=no
"""The semaphore file in the Amaranth simulator against a cycle model of its contract."""

import numpy as np
import pytest

from amsim import simulate
from ncore.hw.semaphores import SemaphoreFile


def model_step(values, waits, signals):
    """One cycle of the documented semantics: returns (grants, next values, overflow)."""
    left = list(values)
    grants = []
    for en, sem in waits:
        g = bool(en and left[sem] > 0)
        if g:
            left[sem] -= 1
        grants.append(g)
    nxt = list(left)
    for en, sem in signals:
        if en:
            nxt[sem] += 1
    overflow = any(v > 255 for v in nxt)
    nxt = [values[s] if nxt[s] > 255 else nxt[s] for s in range(len(values))]
    return grants, nxt, overflow


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_traffic(seed):
    rng = np.random.default_rng(seed)
    n, nw, ns = 4, 3, 4
    dut = SemaphoreFile(n, waiters=nw, signallers=ns)
    cycles = 600

    seen = {"overflow": 0, "grants": 0}

    async def tb(ctx):
        values = [0] * n
        for t in range(cycles):
            # Bursts of signals early on push some counts up to the overflow edge.
            hot = t < 300 and rng.random() < 0.8
            waits = [(int(rng.random() < 0.5), int(rng.integers(0, n))) for _ in range(nw)]
            rate, span = (0.9, 2) if hot else (0.3, n)
            signals = [(int(rng.random() < rate), int(rng.integers(0, span))) for _ in range(ns)]
            for i, (en, sem) in enumerate(waits):
                ctx.set(dut.wait[i], {"en": en, "sem": sem})
            for i, (en, sem) in enumerate(signals):
                ctx.set(dut.signal[i], {"en": en, "sem": sem})
            grants, nxt, ovf = model_step(values, waits, signals)
            got = ctx.get(dut.grant)
            assert [bool(got >> i & 1) for i in range(nw)] == grants, f"cycle {t}"
            assert ctx.get(dut.overflow) == ovf, f"cycle {t}"
            seen["overflow"] += ovf
            seen["grants"] += sum(grants)
            await ctx.tick()
            values = nxt
            assert [ctx.get(dut.values[s]) for s in range(n)] == values, f"cycle {t}"
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert [ctx.get(dut.values[s]) for s in range(n)] == [0] * n

    simulate(dut, tb)
    assert seen["overflow"] > 0 and seen["grants"] > 100  # both edges were exercised


def test_bad_count():
    with pytest.raises(ValueError, match="count must be in 1…32"):
        SemaphoreFile(0, waiters=1, signallers=1)
