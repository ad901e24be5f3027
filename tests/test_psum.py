# amaranth: UnusedElaboratable=no
"""PSUM in the Amaranth simulator: read-modify-write modes, hazards, rate, read port."""

import numpy as np
import pytest

from amsim import simulate
from ncore.golden.psum import ACC_FP, ACC_INT, OVERWRITE, Psum
from ncore.hw.psum import PSUM
from ncore.params import NCoreParams

INTERESTING_FP = [
    0x00000000,
    0x80000000,
    0x7F800000,
    0xFF800000,
    0x7F7FFFFF,
    0x00000001,
    0x3F800000,
    0xBF800000,
    0x4B000000,
    0x33800000,
]


def random_requests(rng, p, n, modes, addr_span):
    reqs = []
    for _ in range(n):
        mode = int(rng.choice(modes))
        if mode == ACC_FP or (mode == OVERWRITE and rng.random() < 0.5 and ACC_FP in modes):
            vals = rng.choice([rng.integers(0, 2**32), *INTERESTING_FP], size=p.cols).astype(
                np.uint32
            )
            f = (rng.standard_normal(p.cols) * 8).astype(np.float32).view(np.uint32)
            vals = np.where(rng.random(p.cols) < 0.7, f, vals)
        else:
            vals = rng.integers(0, 2**32, p.cols, dtype=np.uint64).astype(np.uint32)
        mask = int(rng.integers(0, 2**p.cols)) if rng.random() < 0.3 else 2**p.cols - 1
        reqs.append((int(rng.integers(0, addr_span)), vals, mask, mode))
    return reqs


def run_psum(p, reqs, *, stall=0.0, seed=0):
    rng = np.random.default_rng(seed)
    dut = PSUM(p)
    golden = Psum(p)
    for addr, vals, mask, mode in reqs:
        golden.write(addr, vals, mask, mode)
    touched = sorted({r[0] for r in reqs})
    out = {"take_cycles": [], "reads": {}, "write_latency": dut.write_latency}

    async def tb(ctx):
        cycle = 0
        for addr, vals, mask, mode in reqs:
            while stall and rng.random() < stall:
                ctx.set(dut.i_write.valid, 0)
                await ctx.tick()
                cycle += 1
            ctx.set(
                dut.i_write.payload,
                {"addr": addr, "data": [int(v) for v in vals], "mask": mask, "mode": mode},
            )
            ctx.set(dut.i_write.valid, 1)
            while True:
                ready = ctx.get(dut.i_write.ready)
                await ctx.tick()
                cycle += 1
                if ready:
                    break
            out["take_cycles"].append(cycle)
        ctx.set(dut.i_write.valid, 0)
        while ctx.get(dut.busy):
            await ctx.tick()
        for addr in touched:
            ctx.set(dut.rd_addr, addr)
            ctx.set(dut.rd_en, 1)
            await ctx.tick()
            ctx.set(dut.rd_en, 0)
            out["reads"][addr] = [int(v) & 0xFFFFFFFF for v in ctx.get(dut.rd_data)]
            for q in range(p.cols):  # the backdoor agrees with the read port
                assert ctx.get(dut.banks[q].data[addr]) == out["reads"][addr][q]

    simulate(dut, tb)
    for addr in touched:
        np.testing.assert_array_equal(
            np.array(out["reads"][addr], dtype=np.uint32),
            golden.read(addr),
            err_msg=f"entry {addr} (seed {seed})",
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_int_modes_full_rate_with_collisions(seed):
    """int32 accumulate and overwrite, addresses colliding back to back: never a stall."""
    p = NCoreParams(cols=4, psum_depth=16)
    rng = np.random.default_rng(seed)
    reqs = random_requests(rng, p, 300, [ACC_INT, ACC_INT, OVERWRITE], addr_span=3)
    out = run_psum(p, reqs)
    assert np.all(np.diff(out["take_cycles"]) == 1), "int requests stalled"


@pytest.mark.parametrize("seed", [4, 5])
def test_int_modes_in_fp_build(seed):
    """In an FP build (longer pipeline) int requests still forward and never stall."""
    p = NCoreParams(cols=3, psum_depth=16, dtypes=("int8", "bf16"))
    rng = np.random.default_rng(seed)
    reqs = random_requests(rng, p, 300, [ACC_INT, ACC_INT, OVERWRITE], addr_span=3)
    out = run_psum(p, reqs, stall=0.2, seed=seed)
    reqs2 = random_requests(rng, p, 100, [ACC_INT], addr_span=2)
    out = run_psum(p, reqs2)
    assert np.all(np.diff(out["take_cycles"]) == 1)


@pytest.mark.parametrize("seed", [6, 7, 8])
def test_fp_accumulate_hazards(seed):
    """fp32 accumulates mixed with int and overwrites on few entries: exact, stalls only
    behind an in-flight fp accumulate to the same entry."""
    p = NCoreParams(cols=3, psum_depth=16, dtypes=("int8", "fp16", "bf16"))
    rng = np.random.default_rng(seed)
    reqs = random_requests(rng, p, 250, [ACC_FP, ACC_FP, ACC_INT, OVERWRITE], addr_span=3)
    run_psum(p, reqs, stall=0.3, seed=seed)


def test_fp_distinct_entries_full_rate():
    p = NCoreParams(cols=2, psum_depth=64, dtypes=("bf16",))
    rng = np.random.default_rng(9)
    reqs = random_requests(rng, p, 64, [ACC_FP], addr_span=1)
    reqs = [(i, v, mk, md) for i, (_, v, mk, md) in enumerate(reqs)]  # all distinct entries
    out = run_psum(p, reqs)
    assert np.all(np.diff(out["take_cycles"]) == 1)
    # Same entry back to back: each waits for the previous sum (write latency).
    same = [(5, v, mk, md) for _, v, mk, md in reqs[:10]]
    out = run_psum(p, same)
    assert set(np.diff(out["take_cycles"]).tolist()) == {out["write_latency"]}
