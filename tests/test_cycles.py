"""The cycle models (golden/cycles.py): one core and the chip.

The models' accuracy is measured against the RTL by the core bench (tests/test_core_sim.py)
and ``make bench``; here, their structure: the chip model of a single busy core is the core
model, a shared bus can only slow cores down, links and barriers are waited for."""

import numpy as np

from ncore.golden import cycles
from ncore.golden import program as gp
from ncore.params import NCoreParams


def _gemm(p, seed, base=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (24, 32), dtype=np.int8)
    b = rng.integers(-128, 128, (32, 16), dtype=np.int8)
    return gp.gemm_stationary(p, a, b, dram_base=base).program.words


def test_chip_model_of_one_core_is_close_to_the_core_model():
    p = NCoreParams()
    words = _gemm(p, 1)
    alone = cycles.predict(p, words).total
    chip = cycles.predict_chip(p, [words, None, None, None])
    assert chip["cores"][1] is None
    assert abs(chip["total"] - alone) <= 0.1 * alone


def test_shared_bus_slows_cores_down():
    p = NCoreParams()
    progs = [_gemm(p, c, base=0x10000 * c) for c in range(4)]
    alone = [cycles.predict_chip(p, [w] + [None] * 3)["total"] for w in progs]
    together = cycles.predict_chip(p, progs)
    each = [t.total for t in together["cores"]]
    assert all(t >= a for t, a in zip(each, alone, strict=True))
    assert together["total"] == max(each) < 4 * max(alone)


def test_links_and_barrier_are_waited_for():
    p = NCoreParams(cores=2)
    # Core 0 loads 64 rows late (after a long DMA) and sends them; core 1 receives.
    slow = gp.dma_load((0, [(4096, 1)]), (0, [(4096, 1)]), signal=0)
    c0 = [slow, gp.send((0, [(64, 1)]), 8, wait=0), gp.barrier(), gp.end()]
    c1 = [gp.recv((100, [(64, 1)]), 8), gp.barrier(), gp.end()]
    r = cycles.predict_chip(p, [c0, c1])
    t0, t1 = r["cores"]
    assert t1.done[0] > t0.start[1]  # RECV ends after the SEND started
    assert t1.done[1] == t0.done[2]  # one release for both BARRIERs
    assert t1.done[1] >= max(t0.start[2], t1.start[1])
