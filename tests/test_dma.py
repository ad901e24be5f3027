# amaranth: UnusedElaboratable=no
"""The DMA engine in the Amaranth simulator, against :mod:`ncore.golden.dma`.

A small Python AXI4 slave (:class:`AxiModel`) stands in for DRAM: in-order, optionally
paused at random on all five channels, with error regions. It also checks the protocol
rules the engine promises (INCR, full-width beats, no 4 KiB crossing, WLAST placement).
The cocotb benches (``tests/test_dma_sim.py``) repeat the random runs on the generated
Verilog with cocotbext-axi.
"""

import re
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from amsim import simulate
from ncore.golden import dma as gdma
from ncore.golden import sbuf as gsbuf
from ncore.golden.dma import Direction, DramFaults, ErrorCode, Pattern, Resp
from ncore.hw import dma as hdma
from ncore.hw.dma import DMA, ByteQueue, Descriptor
from ncore.hw.psum import PSUM
from ncore.hw.sbuf import SBuf, SBufGeometry
from ncore.params import NCoreParams
from ncore.verif.dma_tb import random_descriptor, random_psum_store

P8 = NCoreParams(rows=8, sbuf_depth=64)


# ---- formats ------------------------------------------------------------------------------


def test_enums_match_golden():
    for hw_enum, g_enum in (
        (hdma.ErrorCode, gdma.ErrorCode),
        (hdma.Direction, gdma.Direction),
        (hdma.ElemSize, gdma.ElemSize),
    ):
        assert {e.name: e.value for e in hw_enum} == {e.name: e.value for e in g_enum}


def test_descriptor_layout():
    layout = Descriptor.as_shape()
    assert layout.size == 388
    d = gdma.load(
        Pattern(0x1234_5678_9ABC, [(7, 1), (3, 100), (2, 0x10000)]),
        Pattern(0x55, [(21, 1), (2, 8)]),
        esize=1,
    )
    bits = Descriptor.const(d.fields()).as_bits()
    view = Descriptor.from_bits(bits)
    assert view.dram.start == 0x1234_5678_9ABC
    assert view.dram.dims[2].stride == 0x10000 and view.sbuf.dims[1].count == 2
    assert view.esize == hdma.ElemSize.B2 and view.direction == hdma.Direction.LOAD
    # Field widths the golden model validates against are the layout's.
    assert layout["dram"].shape.as_shape()["start"].width == gdma.DRAM_START_BITS
    assert layout["sbuf"].shape.as_shape()["start"].width == gdma.SBUF_START_BITS
    dim = layout["sbuf"].shape.as_shape()["dims"].shape.elem_shape
    assert dim["count"].width == gdma.COUNT_BITS and dim["stride"].width == gdma.STRIDE_BITS


def test_bad_options():
    for kw in ({"max_burst": 3}, {"max_burst": 512}, {"max_reads": 0}, {"id_width": 0}):
        with pytest.raises(ValueError):
            DMA(P8, **kw)


def test_byte_queue(seed):
    """Random pushes and pops of up to ``port`` bytes against a Python deque."""
    rng = np.random.default_rng(seed(11))
    port, cap = 8, 24
    dut = ByteQueue(cap, port)
    bad = []

    async def tb(ctx):
        model = deque()
        for _ in range(400):
            pop = int(rng.integers(0, min(len(model), port) + 1))
            room = cap - (len(model) - pop)
            push = int(rng.integers(0, min(room, port) + 1))
            data = rng.integers(0, 256, port)
            ctx.set(dut.pop_n, pop)
            ctx.set(dut.push_n, push)
            ctx.set(dut.push_data, int.from_bytes(bytes(data.astype(np.uint8)), "little"))
            head = ctx.get(dut.head).to_bytes(port, "little")
            k = min(len(model), port)
            if list(head[:k]) != list(model)[:k] or ctx.get(dut.count) != len(model):
                bad.append((list(head[:k]), list(model)[:k]))
            await ctx.tick()
            for _ in range(pop):
                model.popleft()
            model.extend(int(b) for b in data[:push])

    simulate(dut, tb)
    assert not bad, bad[:3]


# ---- golden model self-checks ---------------------------------------------------------------


def test_golden_bursts_split_at_4k_and_max_len():
    p = NCoreParams(axi_data_width=128)
    d = gdma.load(Pattern(0x0FF3, [(0x30 + 0x1000, 1)]), Pattern(0, [(0x30 + 0x1000, 1)]))
    bl = gdma.bursts(d, p, max_burst=16)
    assert bl[0].addr == 0x0FF3 and bl[0].nbytes == 13 and bl[0].beats == 1
    assert bl[1].addr == 0x1000 and bl[1].nbytes == 256 and bl[1].beats == 16
    assert sum(b.nbytes for b in bl) == 0x1030
    for b in bl:
        assert b.addr // 4096 == (b.addr + b.nbytes - 1) // 4096
        assert b.beats <= 16
    # max_burst 256 × 16 B = 4 KiB: bursts end exactly at page boundaries.
    bl = gdma.bursts(d, p, max_burst=256)
    assert [b.nbytes for b in bl] == [13, 0x1000, 0x30 - 13]


def test_golden_transposed_load():
    p = NCoreParams(rows=4, sbuf_depth=16)
    dram = np.arange(64, dtype=np.uint8)
    sbuf = gsbuf.new_sbuf(p)
    # A 4×4 row-major tile A[i][j] at byte 4i + j; load A^T: partition = i, entry = j.
    d = gdma.load(Pattern(0, [(4, 1), (4, 4)]), Pattern(0, [(4, 4), (4, 1)]))
    out = gdma.execute(d, p, dram, sbuf)
    assert out.code == ErrorCode.NONE
    np.testing.assert_array_equal(sbuf[:, :4], np.arange(16).reshape(4, 4))


def test_golden_load_read_error_stops_at_element():
    p = NCoreParams(rows=8, sbuf_depth=64, dtypes=("int8", "fp16"))
    dram = np.arange(256, dtype=np.uint8)
    sbuf = gsbuf.new_sbuf(p)
    # 2-byte elements from byte 3: element k covers bytes 3+2k, 4+2k. The beat at 0x20
    # fails: element 14 (bytes 0x1F, 0x20) is the first that needs it; 0…13 are written.
    d = gdma.load(Pattern(3, [(40, 2)]), Pattern(0, [(40, 1)]), esize=1)
    out = gdma.execute(d, p, dram, sbuf, faults=DramFaults([(0x20, 0x30, Resp.SLVERR)]))
    assert (out.code, out.addr, out.elements) == (ErrorCode.RD_SLVERR, 0x20, 14)
    written = sbuf.T.ravel()[:16]  # linear addresses 0…15
    expect = [3 + 2 * k + ((4 + 2 * k) << 8) for k in range(14)] + [0, 0]
    np.testing.assert_array_equal(written, expect)


# ---- Amaranth-sim harness ---------------------------------------------------------------------


class AxiModel:
    """In-order AXI4 slave over a ``uint8`` array, with pauses and error regions."""

    def __init__(self, axi, bus_bytes, mem, faults=None, rng=None, pause=0.0):
        self.axi = axi
        self.B = bus_bytes
        self.mem = mem
        self.faults = faults or DramFaults()
        self.rng = rng or np.random.default_rng(0)
        self.pause = pause
        self.r_q = deque()
        self.aw_q = deque()
        self.w_q = deque()
        self.b_q = deque()
        self.beat_in_burst = 0
        self.burst_resp = 0
        self.stats = {"ar": 0, "aw": 0, "r": 0, "w": 0}
        self.errors = []
        # After an error response on B, the engine may still send the one W beat already in
        # its output register with strobes; every later beat of the transfer has none.
        # The driver resets this (None) when it sends the next descriptor.
        self.post_error_beats = None

    def _go(self):
        return not (self.pause and self.rng.random() < self.pause)

    def _check_burst(self, ch, addr, length, size, burst):
        B = self.B
        if size != (B - 1).bit_length() or burst != 1:
            self.errors.append(f"{ch}: size {size} burst {burst}")
        first = addr & ~(B - 1)
        last = first + length * B + B - 1
        if first // 4096 != last // 4096:
            self.errors.append(f"{ch} burst at {addr:#x} len {length} crosses 4 KiB")

    async def process(self, ctx):
        a = self.axi
        B = self.B
        while True:
            ar_rdy, aw_rdy, w_rdy = self._go(), self._go(), self._go()
            r_vld = bool(self.r_q) and self._go()
            b_vld = bool(self.b_q) and self._go()
            ctx.set(a.ar.ready, ar_rdy)
            ctx.set(a.aw.ready, aw_rdy)
            ctx.set(a.w.ready, w_rdy)
            ctx.set(a.r.valid, r_vld)
            if self.r_q:
                d, resp, last = self.r_q[0]
                ctx.set(a.r.payload.data, d)
                ctx.set(a.r.payload.resp, resp)
                ctx.set(a.r.payload.last, last)
            ctx.set(a.b.valid, b_vld)
            if self.b_q:
                ctx.set(a.b.payload.resp, self.b_q[0])
            _, _, *s = await ctx.tick().sample(
                a.ar.valid,
                a.ar.payload.addr,
                a.ar.payload.len,
                a.ar.payload.size,
                a.ar.payload.burst,
                a.r.ready,
                a.aw.valid,
                a.aw.payload.addr,
                a.aw.payload.len,
                a.aw.payload.size,
                a.aw.payload.burst,
                a.w.valid,
                a.w.payload.data,
                a.w.payload.strb,
                a.w.payload.last,
                a.b.ready,
            )
            (
                arv,
                araddr,
                arlen,
                arsize,
                arburst,
                rrdy,
                awv,
                awaddr,
                awlen,
                awsize,
                awburst,
                wv,
                wdata,
                wstrb,
                wlast,
                brdy,
            ) = s
            if ar_rdy and arv:
                self.stats["ar"] += 1
                self._check_burst("AR", araddr, arlen, arsize, arburst)
                for k in range(arlen + 1):
                    wa = (araddr & ~(B - 1)) + k * B
                    resp = self.faults.read_resp(wa, B)
                    d = 0
                    if resp == Resp.OKAY:
                        d = int.from_bytes(bytes(self.mem[wa : wa + B]), "little")
                    self.r_q.append((d, resp, int(k == arlen)))
            if r_vld and rrdy:
                self.r_q.popleft()
                self.stats["r"] += 1
            if aw_rdy and awv:
                self.stats["aw"] += 1
                self._check_burst("AW", awaddr, awlen, awsize, awburst)
                self.aw_q.append((awaddr, awlen))
            if w_rdy and wv:
                self.stats["w"] += 1
                self.w_q.append((wdata, wstrb, wlast))
                if self.post_error_beats is not None:
                    if wstrb and self.post_error_beats > 0:
                        self.errors.append("W beat with strobes after a write error")
                    self.post_error_beats += 1
            while self.aw_q and self.w_q:
                addr, length = self.aw_q[0]
                wd, ws, wl = self.w_q.popleft()
                wa = (addr & ~(B - 1)) + self.beat_in_burst * B
                for j in range(B):
                    if ws >> j & 1:
                        if wa + j < addr:
                            self.errors.append(f"strobe below burst start {addr:#x}")
                        r = self.faults.write_resp(wa + j, wa + j + 1)
                        if r:
                            self.burst_resp = self.burst_resp or r
                        else:
                            self.mem[wa + j] = (wd >> (8 * j)) & 0xFF
                if wl != (self.beat_in_burst == length):
                    self.errors.append(f"WLAST {wl} on beat {self.beat_in_burst} of {length + 1}")
                if self.beat_in_burst == length:
                    self.b_q.append(self.burst_resp)
                    self.aw_q.popleft()
                    self.beat_in_burst = 0
                    self.burst_resp = 0
                else:
                    self.beat_in_burst += 1
            if b_vld and brdy:
                if self.b_q.popleft() and self.post_error_beats is None:
                    self.post_error_beats = 0


def make_top(p, **options):
    """DMA + SBUF + PSUM; the PSUM read port is the DMA's whenever the testbench sets
    ``dma.psum.ready`` (as the core's arbiter does)."""
    m = Module()
    m.submodules.dma = dma = DMA(p, **options)
    m.submodules.sbuf = sbuf = SBuf(p)
    m.submodules.psum = psum = PSUM(p)
    wiring.connect(m, dma.sbuf, sbuf.dma)
    m.d.comb += [
        psum.rd_en.eq(dma.psum.en),
        psum.rd_addr.eq(dma.psum.addr),
        dma.psum.data.eq(psum.rd_data),
    ]
    m.psum = psum
    return m, dma, sbuf


def sbuf_image(ctx, sbuf, p):
    g = sbuf.geometry
    img = gsbuf.new_sbuf(p)
    for part in range(p.rows):
        for s in range(g.sub):
            mem = sbuf.banks[part][s]
            for row in range(g.bank_depth):
                img[part, row * g.sub + s] = ctx.get(mem.data[row])
    return img


def run(
    p, descs, *, mem, sbuf_init=None, psum_init=None, faults=None, pause=0.0, seed=0, **options
):
    """Run descriptors through DMA + SBUF + PSUM (clearing the sticky error after each
    failure). With ``pause`` the PSUM read port is also withheld from the DMA at random.

    Returns (results, model): one dict per descriptor with the reported ``code``/``addr``,
    the sticky registers, the cycles to completion and snapshots of DRAM and SBUF after it.
    """
    top, dma, sbuf = make_top(p, **options)
    model = AxiModel(
        dma.axi, p.axi_data_width // 8, mem, faults, np.random.default_rng(seed), pause
    )
    results = []
    grant_rng = np.random.default_rng(seed + 1)

    async def grant(ctx):
        while True:
            ctx.set(dma.psum.ready, int(grant_rng.random() >= pause))
            await ctx.tick()

    async def driver(ctx):
        g = sbuf.geometry
        if sbuf_init is not None:
            for part in range(p.rows):
                for e in range(p.sbuf_depth):
                    ctx.set(sbuf.banks[part][e % g.sub].data[e // g.sub], int(sbuf_init[part, e]))
        if psum_init is not None:
            for col in range(p.cols):
                for e in range(p.psum_depth):
                    ctx.set(top.psum.banks[col].data[e], int(psum_init[col, e]))
        for d in descs:
            model.post_error_beats = None
            ctx.set(dma.i_desc.payload.as_value(), hdma.pack(d.fields()))
            ctx.set(dma.i_desc.valid, 1)
            await ctx.tick().until(dma.i_desc.ready)
            cycles = 0
            ctx.set(dma.i_desc.valid, 0)
            ctx.set(dma.o_done.ready, 1)
            while True:
                _, _, v, code, addr = await ctx.tick().sample(
                    dma.o_done.valid, dma.o_done.payload.code, dma.o_done.payload.addr
                )
                cycles += 1
                if v:
                    break
                assert cycles < 200_000, "DMA hung"
            ctx.set(dma.o_done.ready, 0)
            await ctx.tick()
            sticky = (
                ctx.get(dma.error),
                ErrorCode(ctx.get(dma.err_code).value),
                ctx.get(dma.err_addr),
            )
            results.append(
                {
                    "code": ErrorCode(code.value),
                    "addr": addr,
                    "cycles": cycles,
                    "sticky": sticky,
                    "dram": model.mem.copy(),
                    "sbuf": sbuf_image(ctx, sbuf, p),
                }
            )
            if sticky[0]:
                ctx.set(dma.clear, 1)
                await ctx.tick()
                ctx.set(dma.clear, 0)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(driver)
    sim.add_testbench(model.process, background=True)
    sim.add_testbench(grant, background=True)
    sim.run()
    assert not model.errors, model.errors[:5]
    return results, model


def check_same(
    p, descs, *, mem, sbuf_init=None, psum_init=None, faults=None, pause=0.0, seed=0, **options
):
    """Run ``descs`` on the hardware and the golden model; compare after every one."""
    gmem = mem.copy()
    gsb = gsbuf.new_sbuf(p) if sbuf_init is None else sbuf_init.copy()
    gps = np.zeros((p.cols, p.psum_depth), np.uint32) if psum_init is None else psum_init
    kw = {k: options[k] for k in ("max_burst", "max_writes") if k in options}
    res, model = run(
        p, descs, mem=mem, sbuf_init=sbuf_init, psum_init=psum_init, faults=faults,
        pause=pause, seed=seed, **options,
    )  # fmt: skip
    gouts = []
    for i, (d, r) in enumerate(zip(descs, res, strict=True)):
        g = gdma.execute(d, p, gmem, gsb, faults=faults, psum=gps, **kw)
        gouts.append(g)
        where = f"descriptor {i}: {d}"
        assert (r["code"], r["addr"]) == (g.code, g.addr), (where, r["code"], r["addr"], g)
        if g.code != ErrorCode.NONE:
            assert r["sticky"] == (1, g.code, g.addr), where
        if g.maybe is not None:  # bytes a failing store may or may not have written
            snap = r["dram"]
            ok = (snap == gmem) | (g.maybe & (snap == g.maybe_values))
            assert ok.all(), (where, np.flatnonzero(~ok)[:10])
            gmem[g.maybe] = snap[g.maybe]
        np.testing.assert_array_equal(r["dram"], gmem, err_msg=where)
        np.testing.assert_array_equal(r["sbuf"], gsb, err_msg=where)
    return res, gouts, model


# ---- directed ---------------------------------------------------------------------------------


def test_contiguous_load_rate_and_bursts():
    p = NCoreParams(rows=8, sbuf_depth=64)
    mem = np.random.default_rng(1).integers(0, 256, 8192, dtype=np.uint8)
    d = gdma.load(Pattern(0xF00, [(512, 1)]), Pattern(0, [(512, 1)]))
    res, gouts, model = check_same(p, [d], mem=mem)
    cost = gdma.cost(d, p)
    assert model.stats["ar"] == cost["bursts"] and model.stats["r"] == cost["beats"]
    assert res[0]["cycles"] < cost["stream_cycles"] + 16, (res[0]["cycles"], cost)


def test_unaligned_store_strobes():
    p = NCoreParams(rows=8, sbuf_depth=64)
    rng = np.random.default_rng(2)
    mem = rng.integers(0, 256, 8192, dtype=np.uint8)
    sb = rng.integers(0, 256, (8, 64)).astype(np.uint16)
    d = gdma.store(Pattern(5, [(300, 1)]), Pattern(0x0FFB, [(300, 1)]))
    res, _, model = check_same(p, [d], mem=mem, sbuf_init=sb)
    assert model.stats["aw"] == len(gdma.bursts(d, p))


def test_transposed_and_strided_fp16():
    p = NCoreParams(rows=4, sbuf_depth=64, dtypes=("int8", "fp16"))
    rng = np.random.default_rng(3)
    mem = rng.integers(0, 256, 4096, dtype=np.uint8)
    descs = [
        # 8×4 fp16 tile, rows 40 bytes apart, loaded transposed (SBUF innermost stride 4).
        gdma.load(Pattern(0x101, [(4, 2), (8, 40)]), Pattern(0, [(8, 4), (4, 1)]), esize=1),
        # Gather: DRAM innermost stride 6 (one-element runs) into contiguous SBUF.
        gdma.load(Pattern(0x800, [(16, 6), (2, 0x100)]), Pattern(64, [(32, 1)]), esize=1),
        # Store back strided, unaligned.
        gdma.store(Pattern(1, [(12, 1), (3, 16)]), Pattern(0xA03, [(12, 2), (3, 50)]), esize=1),
        gdma.store(Pattern(0, [(40, 1)]), Pattern(0xC01, [(40, 1)]), esize=0),
    ]
    check_same(p, descs, mem=mem)


def test_descriptor_errors_report_and_recover():
    p = NCoreParams(rows=4, sbuf_depth=16, axi_addr_width=16)
    mem = np.random.default_rng(4).integers(0, 256, 1 << 16, dtype=np.uint8)
    ok = gdma.load(Pattern(0, [(64, 1)]), Pattern(0, [(64, 1)]))
    descs = [
        gdma.Descriptor(Direction.PSUM_STORE, 0, Pattern(0, [(4, 1)]), Pattern(0, [(4, 1)])),
        gdma.Descriptor(3, 0, Pattern(0, [(4, 1)]), Pattern(0, [(4, 1)])),
        gdma.load(Pattern(0, [(4, 2)]), Pattern(0, [(4, 1)]), esize=1),  # 2 B on int8 build
        gdma.load(Pattern(0, [(4, 1), (0, 8)]), Pattern(0, [(4, 1)])),
        gdma.load(Pattern(0, [(4, 1)]), Pattern(0, [(4, 1), (1, 0), (0, 0)])),
        gdma.load(Pattern(0, [(65, 1)]), Pattern(0, [(65, 1)])),  # capacity 64
        gdma.load(Pattern(0, [(8, 1)]), Pattern(0, [(4, 1), (3, 4)])),
        gdma.load(Pattern(0xFFF0, [(8, 1), (3, 8)]), Pattern(0, [(24, 1)])),  # ends 0x10007
        gdma.load(Pattern(1 << 40, [(1, 1)]), Pattern(0, [(1, 1)])),
        ok,
    ]
    res, gouts, model = check_same(p, descs, mem=mem)
    codes = [r["code"] for r in res]
    assert codes == [
        ErrorCode.BAD_DESC,
        ErrorCode.BAD_DESC,
        ErrorCode.BAD_DESC,
        ErrorCode.ZERO_COUNT,
        ErrorCode.ZERO_COUNT,
        ErrorCode.OVERSIZE,
        ErrorCode.COUNT_MISMATCH,
        ErrorCode.DRAM_RANGE,
        ErrorCode.DRAM_RANGE,
        ErrorCode.NONE,
    ]
    assert res[7]["addr"] == 0xFFF0
    assert model.stats["ar"] == len(gdma.bursts(ok, p))  # no traffic for rejected ones


def test_error_blocks_until_clear():
    p = NCoreParams(rows=4, sbuf_depth=16)
    mem = np.zeros(4096, dtype=np.uint8)
    bad = gdma.load(Pattern(0, [(4, 1)]), Pattern(0, [(0, 1)]))
    top, dma, _ = make_top(p)
    model = AxiModel(dma.axi, 16, mem)
    seen = {}

    async def tb(ctx):
        ctx.set(dma.o_done.ready, 1)
        ctx.set(dma.i_desc.payload.as_value(), hdma.pack(bad.fields()))
        ctx.set(dma.i_desc.valid, 1)
        await ctx.tick().until(dma.i_desc.ready)
        ctx.set(dma.i_desc.valid, 0)
        await ctx.tick().until(dma.o_done.valid)
        for _ in range(3):
            await ctx.tick()
        seen["ready_while_error"] = ctx.get(dma.i_desc.ready)
        seen["sticky"] = (ctx.get(dma.error), ctx.get(dma.err_code))
        ctx.set(dma.clear, 1)
        await ctx.tick()
        ctx.set(dma.clear, 0)
        seen["after_clear"] = (ctx.get(dma.error), ctx.get(dma.i_desc.ready))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.add_testbench(model.process, background=True)
    sim.run()
    assert seen["ready_while_error"] == 0
    assert seen["sticky"] == (1, hdma.ErrorCode.ZERO_COUNT)
    assert seen["after_clear"] == (0, 1)


def test_sbuf_range_faults():
    p = NCoreParams(rows=3, sbuf_depth=16, axi_data_width=64, dtypes=("int8", "fp16"))
    rng = np.random.default_rng(5)
    mem = rng.integers(0, 256, 4096, dtype=np.uint8)
    sb = rng.integers(0, 1 << 16, (3, 16)).astype(np.uint16)
    descs = [
        # Contiguous walk hits partition code 3 (rows = 3) at address 3.
        gdma.load(Pattern(0x10, [(8, 1)]), Pattern(0, [(8, 1)])),
        # Rows of 3 partitions on every other entry: entry 16 is past the end (element 24).
        gdma.load(Pattern(0x20, [(3, 1), (10, 3)]), Pattern(0, [(3, 1), (10, 8)])),
        # Store that faults mid-burst: the bytes before are written, strobes off after.
        gdma.store(Pattern(0x31, [(3, 1), (6, 4)]), Pattern(0x105, [(18, 2)]), esize=1),
        # Strided (one element per chunk) fault at a huge address.
        gdma.store(Pattern(0, [(5, 1 << 20)]), Pattern(0x300, [(5, 1)])),
        gdma.load(Pattern(0x40, [(6, 1)]), Pattern(0, [(3, 1), (2, 4)])),  # recovers
    ]
    res, _, _ = check_same(p, descs, mem=mem, sbuf_init=sb)
    assert [r["code"] for r in res] == [ErrorCode.SBUF_RANGE] * 4 + [ErrorCode.NONE]


def test_axi_errors():
    p = NCoreParams(rows=8, sbuf_depth=64, dtypes=("int8", "bf16"))
    rng = np.random.default_rng(6)
    mem = rng.integers(0, 256, 16384, dtype=np.uint8)
    sb = rng.integers(0, 1 << 16, (8, 64)).astype(np.uint16)
    faults = DramFaults([(0x1200, 0x1210, Resp.SLVERR), (0x2400, 0x2800, Resp.DECERR)])
    descs = [
        gdma.load(Pattern(0x1103, [(400, 1)]), Pattern(0, [(400, 1)])),  # SLVERR mid-burst
        gdma.load(Pattern(0x23F1, [(100, 2)]), Pattern(1, [(100, 1)]), esize=1),  # DECERR
        gdma.store(Pattern(0, [(300, 1)]), Pattern(0x1100, [(300, 1)])),  # WR_SLVERR
        gdma.store(Pattern(0, [(200, 1)]), Pattern(0x2301, [(200, 2)]), esize=1),
        # Fails in the second of eight bursts: later bursts in flight go out without strobes.
        gdma.store(Pattern(0, [(512, 1)]), Pattern(0x1108, [(512, 2)]), esize=1),
        gdma.load(Pattern(0x100, [(64, 1)]), Pattern(0, [(64, 1)])),  # next one works
    ]
    res, gouts, _ = check_same(p, descs, mem=mem, sbuf_init=sb, faults=faults)
    assert [r["code"] for r in res] == [
        ErrorCode.RD_SLVERR,
        ErrorCode.RD_DECERR,
        ErrorCode.WR_SLVERR,
        ErrorCode.WR_DECERR,
        ErrorCode.WR_SLVERR,
        ErrorCode.NONE,
    ]
    assert res[0]["addr"] == 0x1200 and res[1]["addr"] == 0x2400


# ---- PSUM_STORE -------------------------------------------------------------------------------


def _psum(rng, p):
    return rng.integers(0, 1 << 32, (p.cols, p.psum_depth), dtype=np.uint64).astype(np.uint32)


def test_golden_psum_store_semantics():
    """Linear PSUM addresses (entry << cbits | column), 32-bit words little-endian, faults."""
    p = NCoreParams(rows=4, cols=3, sbuf_depth=16, psum_depth=16)  # cbits 2, column code 3 unused
    ps = _psum(np.random.default_rng(7), p)
    dram = np.zeros(1024, np.uint8)
    sb = gsbuf.new_sbuf(p)
    # Entries 2…4, all three columns, into a packed 3 × 3 int32 matrix at 0x11 (unaligned).
    d = gdma.psum_store(Pattern(2 << 2, [(3, 1), (3, 4)]), Pattern(0x11, [(3, 4), (3, 12)]))
    out = gdma.execute(d, p, dram, sb, psum=ps)
    assert out.code == ErrorCode.NONE and out.elements == 9
    got = dram[0x11 : 0x11 + 36].copy().view("<u4").reshape(3, 3)
    np.testing.assert_array_equal(got, ps[:, 2:5].T)
    assert not sb.any()
    # Chunks end at PSUM entries; a chunk carries at most a beat (16 B = 4 words).
    assert [(c.addr, c.n) for c in gdma.chunks(d, p)] == [(8, 3), (12, 3), (16, 3)]
    long = gdma.psum_store(Pattern(1, [(10, 1)]), Pattern(0, [(10, 4)]))
    assert [c.n for c in gdma.chunks(long, NCoreParams(cols=8, psum_depth=16))] == [4, 3, 3]
    # Only B4 with PSUM_STORE, and B4 only with PSUM_STORE.
    for direction, esize in ((2, 0), (2, 1), (2, 3), (0, 2), (1, 2)):
        bad = gdma.Descriptor(direction, esize, d.dram, d.sbuf)
        assert gdma.validate(bad, p) == (ErrorCode.BAD_DESC, 0)
    # OVERSIZE is the PSUM's capacity (cols · psum_depth = 48), not the SBUF's (64).
    big = gdma.psum_store(Pattern(0, [(49, 1)]), Pattern(0, [(49, 4)]))
    assert gdma.validate(big, p) == (ErrorCode.OVERSIZE, 0)
    # Range: the unused column code 3 of entry 0 is the first bad element; nothing after it.
    dram[:] = 0
    out = gdma.execute(
        gdma.psum_store(Pattern(1, [(5, 1)]), Pattern(0x40, [(5, 4)])), p, dram, sb, psum=ps
    )
    assert (out.code, out.addr, out.elements) == (ErrorCode.SBUF_RANGE, 3, 2)
    assert dram[0x40:0x48].view("<u4").tolist() == [ps[1, 0], ps[2, 0]] and not dram[0x48:].any()
    # Entry 16 is past the end.
    out = gdma.execute(
        gdma.psum_store(Pattern(15 << 2, [(2, 4)]), Pattern(0x80, [(2, 4)])), p, dram, sb, psum=ps
    )
    assert (out.code, out.addr, out.elements) == (ErrorCode.SBUF_RANGE, 16 << 2, 1)


def test_psum_store_directed():
    """PSUM → DRAM on the hardware: contiguous rows, a transposed tile, a scatter, a range
    fault on an unused column code, a write error, and recovery, with the PSUM read port
    withheld at random."""
    p = NCoreParams(rows=4, cols=3, sbuf_depth=16, psum_depth=16)
    rng = np.random.default_rng(8)
    ps = _psum(rng, p)
    mem = rng.integers(0, 256, 8192, dtype=np.uint8)
    faults = DramFaults([(0x1800, 0x1810, Resp.SLVERR)])
    descs = [
        # Every element of entries 0…15, rows of 3 columns, packed (48 words), unaligned.
        gdma.psum_store(Pattern(0, [(3, 1), (16, 4)]), Pattern(0x103, [(48, 4)])),
        # Transposed: DRAM row j = PSUM column j over entries 1…9.
        gdma.psum_store(Pattern(4, [(9, 4), (3, 1)]), Pattern(0x400, [(9, 4), (3, 40)])),
        # Scatter: DRAM innermost stride 12 (one-word bursts).
        gdma.psum_store(Pattern(4, [(3, 1), (2, 4)]), Pattern(0x600, [(6, 12)])),
        # Runs onto column code 3 of entry 1 (the fourth element): three are written.
        gdma.psum_store(Pattern(4, [(8, 1)]), Pattern(0x700, [(8, 4)])),
        # Write error in the second burst (bursts of 16 beats cross 0x1800).
        gdma.psum_store(Pattern(0, [(3, 1), (16, 4)]), Pattern(0x17F0, [(48, 4)])),
        gdma.psum_store(Pattern(8, [(2, 1)]), Pattern(0x900, [(2, 4)])),  # recovers
    ]
    for pause in (0.0, 0.4):
        res, _, model = check_same(
            p, descs, mem=mem.copy(), psum_init=ps, faults=faults, pause=pause, seed=3
        )
        assert [r["code"] for r in res] == [ErrorCode.NONE] * 3 + [
            ErrorCode.SBUF_RANGE,
            ErrorCode.WR_SLVERR,
            ErrorCode.NONE,
        ]
        assert res[3]["addr"] == 7 and res[4]["addr"] == 0x1800
        assert res[3]["dram"][0x700:0x70C].view("<u4").tolist() == ps[:, 1].tolist()
    # Contiguous PSUM_STORE streams close to one beat per cycle (4 words per beat).
    p = NCoreParams(rows=8, cols=8, sbuf_depth=64, psum_depth=64)
    ps = _psum(rng, p)
    d = gdma.psum_store(Pattern(0, [(512, 1)]), Pattern(0x1000, [(512, 4)]))
    res, _, model = check_same(p, [d], mem=np.zeros(8192, np.uint8), psum_init=ps)
    cost = gdma.cost(d, p)
    assert model.stats["aw"] == cost["bursts"]
    assert res[0]["cycles"] < cost["stream_cycles"] + gdma.OVERHEAD_BOUND, (res[0], cost)


PSUM_CONFIGS = {
    "r8c8-128": (NCoreParams(rows=8, cols=8, sbuf_depth=64, psum_depth=32), {}),
    "r4c3-64-bf16": (
        NCoreParams(
            rows=4, cols=3, sbuf_depth=64, psum_depth=16, axi_data_width=64, dtypes=("int8", "bf16")
        ),
        {"max_burst": 4, "max_writes": 2},
    ),
    "r2c16-256": (
        NCoreParams(rows=2, cols=16, sbuf_depth=32, psum_depth=16, axi_data_width=256),
        {"max_writes": 1},
    ),
}


@pytest.mark.parametrize("name", PSUM_CONFIGS)
@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_random_psum_stores(name, pause, seed):
    """Random PSUM_STOREs mixed with loads and stores against the golden model."""
    p, options = PSUM_CONFIGS[name]
    s = seed(140 + len(name) + int(pause * 10))
    rng = np.random.default_rng(s)
    size = 12288
    mem = rng.integers(0, 256, size, dtype=np.uint8)
    sb = rng.integers(0, 1 << p.lane_width, (p.rows, p.sbuf_depth)).astype(np.uint16)
    lo = int(rng.integers(0x400, 0x2800)) & ~0xF
    hi = lo + 16 * int(rng.integers(1, 33))
    faults = DramFaults([(lo, hi, Resp.SLVERR if rng.random() < 0.5 else Resp.DECERR)])
    descs = [
        random_psum_store(rng, p, max_elems=200, dram_hi=size)
        if rng.random() < 0.7
        else random_descriptor(rng, p, max_elems=200, dram_hi=size)
        for _ in range(12)
    ]
    check_same(p, descs, mem=mem, sbuf_init=sb, psum_init=_psum(rng, p), faults=faults,
               pause=pause, seed=s, **options)  # fmt: skip


# ---- random -----------------------------------------------------------------------------------


RANDOM_CONFIGS = {
    "r8-128": (NCoreParams(rows=8, sbuf_depth=64), {}),
    "r4-64-fp16": (
        NCoreParams(rows=4, sbuf_depth=64, axi_data_width=64, dtypes=("int8", "fp16")),
        {"max_burst": 4, "max_writes": 2},
    ),
    "r3-128": (NCoreParams(rows=3, sbuf_depth=32), {"max_reads": 1, "max_writes": 1}),
    "r16-256-bf16": (
        NCoreParams(rows=16, sbuf_depth=16, axi_data_width=256, dtypes=("bf16",)),
        {"max_burst": 8},
    ),
}


@pytest.mark.parametrize("name", RANDOM_CONFIGS)
@pytest.mark.parametrize("pause", [0.0, 0.3])
def test_random_descriptors(name, pause, seed):
    p, options = RANDOM_CONFIGS[name]
    s = seed(100 + len(name) + int(pause * 10))
    rng = np.random.default_rng(s)
    size = 12288
    mem = rng.integers(0, 256, size, dtype=np.uint8)
    sb = rng.integers(0, 1 << p.lane_width, (p.rows, p.sbuf_depth)).astype(np.uint16)
    lo = int(rng.integers(0x400, 0x2800)) & ~0xF
    hi = lo + 16 * int(rng.integers(1, 33))
    faults = DramFaults([(lo, hi, Resp.SLVERR if rng.random() < 0.5 else Resp.DECERR)])
    descs = [random_descriptor(rng, p, max_elems=200, dram_hi=size) for _ in range(12)]
    check_same(p, descs, mem=mem, sbuf_init=sb, faults=faults, pause=pause, seed=s, **options)


# ---- docs/memory.md is checked against the layouts ------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "memory.md"


README = DOC.parent.parent / "README.md"


def _doc_table(first_header: str, doc: Path = DOC) -> list[list[str]]:
    """Rows (cells stripped of backticks) of the markdown table whose first header cell is
    ``first_header``."""
    lines = doc.read_text().splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip().strip("`") for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table headed {first_header!r} in {DOC}")


def test_doc_descriptor_table_matches_layout():
    rows = _doc_table("field")
    doc = [(r[0], int(r[1]), int(r[2])) for r in rows]
    assert doc == list(hdma.descriptor_fields())
    assert f"{Descriptor.as_shape().size} bits" in DOC.read_text()


@pytest.mark.parametrize(
    "header,enum",
    [
        ("`Direction`", hdma.Direction),
        ("`ElemSize`", hdma.ElemSize),
        ("`ErrorCode`", hdma.ErrorCode),
    ],
)
def test_doc_enum_tables_match(header, enum):
    rows = _doc_table(header)
    named = {r[0]: int(r[1]) for r in rows if r[0] != "—"}
    assert named == {e.name: e.value for e in enum}


def test_readme_error_table_matches():
    """The README repeats the error-code table; it must agree with the hardware enum and
    with docs/memory.md."""
    rows = _doc_table("`ErrorCode`", README)
    assert {r[0]: int(r[1]) for r in rows} == {e.name: e.value for e in hdma.ErrorCode}
    assert rows == _doc_table("`ErrorCode`")


def test_doc_bank_table_matches_geometry():
    for r in _doc_table("config"):
        rows, width = re.match(r"(\d+) rows?, (\d+)-bit", r[0]).groups()
        g = SBufGeometry(NCoreParams(rows=int(rows), axi_data_width=int(width)))
        assert [int(x) for x in r[1:]] == [g.pbits, g.sub, g.lanes, g.rows * g.sub], r
