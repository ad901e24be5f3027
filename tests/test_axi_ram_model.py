"""The simulation-only HDL AXI memory, in the Amaranth simulator, against a byte model."""

import numpy as np
import pytest

from amsim import simulate
from ncore.verif.axi_ram_model import SimAxiRam

DW, AW, IW, SIZE = 64, 20, 4, 4096
NB = DW // 8


def _burst(rng):
    beats = int(rng.integers(1, 9))
    addr = int(rng.integers(0, SIZE // NB - beats)) * NB
    return addr, beats


@pytest.mark.parametrize("pause", [0, 90])
@pytest.mark.parametrize("seed", [1, 2])
def test_bursts_strobes_errors_and_backdoor(seed, pause):
    rng = np.random.default_rng(seed)
    dut = SimAxiRam(addr_width=AW, data_width=DW, id_width=IW, size_bytes=SIZE)
    model = np.zeros(SIZE, dtype=np.uint8)
    init = rng.integers(0, 256, SIZE, dtype=np.uint8)
    model[:] = init
    err_base, err_size = 0x800, 0x100
    ops = []
    for _ in range(40):
        addr, beats = _burst(rng)
        if rng.random() < 0.1:
            addr = SIZE - NB * (beats - 1)  # runs off the end: DECERR
        if rng.random() < 0.1:
            addr = err_base + NB * int(rng.integers(0, 4))  # in the error window: SLVERR
        ops.append(("w" if rng.random() < 0.5 else "r", addr, beats))

    def beat_resp(a):
        """Reads answer per beat, like golden.dma.DramFaults.read_resp."""
        if a + NB > SIZE:
            return 3
        return 2 if a < err_base + err_size and a + NB > err_base else 0

    def expect_resp(addr, beats):
        if addr + beats * NB > SIZE:
            return 3
        if addr < err_base + err_size and addr + beats * NB > err_base:
            return 2
        return 0

    got = []

    async def tb(ctx):
        ctx.set(dut.pause, pause)
        ctx.set(dut.err_base, err_base)
        ctx.set(dut.err_size, err_size)
        # Preload through the backdoor, one word per cycle.
        for w in range(SIZE // NB):
            ctx.set(dut.bd_addr, w)
            ctx.set(dut.bd_wdata, int.from_bytes(init[w * NB : (w + 1) * NB].tobytes(), "little"))
            ctx.set(dut.bd_we, 1)
            await ctx.tick()
        ctx.set(dut.bd_we, 0)
        for i, (kind, addr, beats) in enumerate(ops):
            ax = {"id": i % 16, "addr": addr, "len": beats - 1, "size": 3, "burst": 1}
            port = dut.axi.aw if kind == "w" else dut.axi.ar
            ctx.set(port.payload, ax)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)
            resp = expect_resp(addr, beats)
            if kind == "w":
                for b in range(beats):
                    data = rng.integers(0, 256, NB, dtype=np.uint8)
                    strb = int(rng.integers(0, 256))
                    ctx.set(
                        dut.axi.w.payload,
                        {
                            "data": int.from_bytes(data.tobytes(), "little"),
                            "strb": strb,
                            "last": int(b == beats - 1),
                        },
                    )
                    ctx.set(dut.axi.w.valid, 1)
                    await ctx.tick().until(dut.axi.w.ready)
                    if resp == 0:
                        for j in range(NB):
                            if strb >> j & 1:
                                model[addr + b * NB + j] = data[j]
                ctx.set(dut.axi.w.valid, 0)
                ctx.set(dut.axi.b.ready, 1)
                bid, bresp = (
                    await ctx.tick()
                    .sample(dut.axi.b.payload.id, dut.axi.b.payload.resp)
                    .until(dut.axi.b.valid)
                )
                ctx.set(dut.axi.b.ready, 0)
                got.append(("b", i, int(bid), int(bresp), resp))
            else:
                ctx.set(dut.axi.r.ready, 1)
                for b in range(beats):
                    r = await ctx.tick().sample(dut.axi.r.payload).until(dut.axi.r.valid)
                    r = r[0]
                    resp = beat_resp(addr + b * NB)
                    want = (
                        0
                        if resp
                        else int.from_bytes(
                            model[addr + b * NB : addr + (b + 1) * NB].tobytes(), "little"
                        )
                    )
                    assert int(r.data) == want, f"op {i} beat {b} (seed {seed})"
                    assert int(r.resp) == resp and int(r.id) == i % 16
                    assert int(r.last) == (b == beats - 1)
                ctx.set(dut.axi.r.ready, 0)
        # Read everything back through the backdoor.
        for w in range(SIZE // NB):
            ctx.set(dut.bd_addr, w)
            await ctx.tick()
            word = ctx.get(dut.bd_rdata)
            assert word == int.from_bytes(model[w * NB : (w + 1) * NB].tobytes(), "little"), w

    simulate(dut, tb)
    for _, i, bid, bresp, resp in got:
        assert bid == i % 16 and bresp == resp, (i, bresp, resp)
