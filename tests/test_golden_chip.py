"""The chip golden model (golden/chip.py): several cores, one DRAM, a ring of links, a barrier.

* A 4-core pipeline: core 0 loads a tensor from DRAM and SENDs it, cores 1 and 2 each RECV,
  requantise (ACT) and SEND on, core 3 RECVs and stores to DRAM; programs fetched from the
  shared DRAM; row counts differ between the SENDs and the RECVs they feed. The result
  equals numpy under the fixed priority, the reversed one and random orders; the same on a
  1-core chip (loop back) and a 2-core ring.
* The barrier: cores write DRAM, meet at a BARRIER and read what their neighbour wrote; with
  a NOP in its place some pick order reads stale data. Subset masks count per mask and per
  core; a barrier with an idle member deadlocks.
* Fault isolation: a core with an illegal instruction or a DMA error stops (its later
  instructions never start), the others finish with correct results, and DRAM outside the
  faulting transfer is intact; a core waiting for rows from a faulted core deadlocks.
* The chip scheduler with one busy core is the single-core ISS (same trace and state).
"""

import numpy as np
import pytest

from ncore import isa
from ncore.golden import core as gcore
from ncore.golden import dma as gdma
from ncore.golden import program as gp
from ncore.golden import sbuf as gsbuf
from ncore.golden.chip import Chip, chip_priority
from ncore.golden.core import Core, Engine
from ncore.isa import CoreError
from ncore.params import NCoreParams

P4 = NCoreParams()  # 4 cores of 8×8, int8: 8-bit lanes, 4 bytes per parameter
M = 24  # tensor rows (SBUF entries); features on partitions
XA, OUT, PARAMS, PROGS = 0x0000, 0x0800, 0x0400, 0x2000


def _picks(p):
    """Pick orders of a chip of parameters ``p``: the fixed priority, its reverse, the
    engine order reversed within each core, and random orders."""
    return [
        ("priority", None),
        ("reversed", list(reversed(chip_priority(p.cores)))),
        ("engines-reversed", list(reversed(gcore.PRIORITY))),
        *[(f"random{s}", np.random.default_rng(s)) for s in range(4)],
    ]


def _lin(p, entry, part=0):
    return entry << gsbuf.pbits(p) | part


def _i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def _rq(rng, n):
    """Per-channel requantisation parameters that keep int8 outputs spread out."""
    return {
        "scale": rng.integers(120, 400, n),
        "bias": rng.integers(-20, 21, n),
        "shift": np.full(n, 8),
        "zero_point": int(rng.integers(-5, 6)),
    }


def _param_image(rq) -> np.ndarray:
    """Per channel: scale, bias, shift as 4 little-endian bytes each (int8 builds)."""
    v = np.stack([rq["scale"], rq["bias"], rq["shift"]], axis=1).astype(np.int64) & 0xFFFF_FFFF
    return np.stack([(v >> (8 * i)) & 0xFF for i in range(4)], axis=2).astype(np.uint8).ravel()


def _expect(x, rq):
    return gp.requantize(x.astype(np.int64), rq["bias"], rq["scale"], rq["shift"], rq["zero_point"])


def _load_rows(p, dram, entry, rows, signal=None, wait=None):
    """DMA: ``rows`` × rows bytes at ``dram`` → SBUF entries ``entry …`` (all partitions)."""
    r = p.rows
    return gp.dma_load(
        (dram, [(r, 1), (rows, r)]),
        (_lin(p, entry), [(r, 1), (rows, 1 << gsbuf.pbits(p))]),
        signal=signal,
        wait=wait,
    )


def _store_rows(p, entry, dram, rows, stride=1, signal=None, wait=None):
    r = p.rows
    return gp.dma_store(
        (_lin(p, entry), [(r, 1), (rows, stride << gsbuf.pbits(p))]),
        (dram, [(r, 1), (rows, r)]),
        signal=signal,
        wait=wait,
    )


def _load_params(p, dram, entry, signal):
    """DMA: per channel l, 12 parameter bytes → SBUF entries ``entry … entry + 11``,
    partition l."""
    return gp.dma_load(
        (dram, [(12, 1), (p.rows, 12)]),
        (_lin(p, entry), [(12, 1 << gsbuf.pbits(p)), (p.rows, 1)]),
        signal=signal,
    )


def _act(src, dst, p, rq, params, wait, signal):
    return gp.act(src, dst, p.rows, params=params, in_type="int8", out_type="int8",
                  zero_point=rq["zero_point"], wait=wait, signal=signal)  # fmt: skip


# -- the pipeline ----------------------------------------------------------------------------


def _stage(p, k, param_addr, rq, split_recv, split_send):
    """Stage ``k``: RECV rows (in pieces) into its own SBUF region, requantise each piece
    (one ACT per RECV, taking that RECV's signal), then SEND the result on in other pieces
    once a chain of NOPs has taken every ACT's signal. Semaphores 4k + 4 … 4k + 7."""
    base = 1000 * (k + 1)  # entries base … (received), base + 100 … (requantised)
    pe = base + 200  # parameters
    s_par, s_recv, s_act, s_all = 4 * k + 4, 4 * k + 5, 4 * k + 6, 4 * k + 7
    prog = [_load_params(p, param_addr, pe, signal=s_par)]
    start = 0
    for i, n in enumerate(split_recv):
        prog.append(
            gp.recv(
                (base + start, [(n, 1)]), p.rows, wait=s_par if i == 0 else None, signal=s_recv
            )  # fmt: skip
        )
        start += n
    start = 0
    for n in split_recv:
        prog.append(_act((base + start, [(n, 1)]), base + 100 + start, p, rq, pe, s_recv, s_act))
        start += n
    prog += [gp.nop(wait=s_act)] * (len(split_recv) - 1) + [gp.nop(wait=s_act, signal=s_all)]
    start = 0
    for i, n in enumerate(split_send):
        prog.append(gp.send((base + 100 + start, [(n, 1)]), p.rows, wait=s_all if i == 0 else None))
        start += n
    return prog


SPLITS = [([12, 12], [24]), ([24], [8, 8, 8]), ([5, 19], [10, 14])]


def pipeline(p: NCoreParams, x, rqs):
    """Per-core programs (``(program_base, program_len)`` in the DRAM image) of a pipeline
    on ``p.cores`` cores, the DRAM image and the expected output. Core 0 loads x and sends
    it; stage k runs on core (k + 1) mod cores; the core after the last stage stores."""
    n = p.cores
    dram = np.zeros(1 << 16, np.uint8)
    dram[XA : XA + x.size] = x.view(np.uint8).ravel()
    progs = [[] for _ in range(n)]
    progs[0] += [_load_rows(p, XA, 0, M, signal=0), gp.send((0, [(16, 1)]), p.rows, wait=0),
                 gp.send((16, [(M - 16, 1)]), p.rows)]  # fmt: skip
    want = x
    for k, rq in enumerate(rqs):
        addr = PARAMS + 0x100 * k
        dram[addr : addr + 12 * p.rows] = _param_image(rq)
        progs[(k + 1) % n] += _stage(p, k, addr, rq, *SPLITS[k % len(SPLITS)])
        want = _expect(want, rq)
    # The core after the last stage: a strided destination, then one store.
    progs[(len(rqs) + 1) % n] += [gp.recv((3500, [(M, 2)]), p.rows, signal=1),
                                  _store_rows(p, 3500, OUT, M, stride=2, wait=1)]  # fmt: skip
    images = []
    for c in range(n):
        progs[c].append(gp.end())
        img = np.frombuffer(gp.Program(progs[c]).image(), np.uint8)
        base = PROGS + 0x1000 * c
        dram[base : base + len(img)] = img
        images.append((base, len(progs[c])))
    return images, dram, want


def _out(chip):
    return chip.dram[OUT : OUT + M * chip.params.rows].view(np.int8).reshape(M, -1)


@pytest.mark.parametrize("cores,stages", [(4, 2), (1, 2), (2, 1), (2, 3)])
def test_pipeline(cores, stages, seed):
    """Core 0 → stages → last receiver stores; equals numpy under every pick order."""
    p = P4.replace(cores=cores)
    rng = np.random.default_rng(seed(200 + 10 * cores + stages))
    x = _i8(rng, (M, p.rows))
    rqs = [_rq(rng, p.rows) for _ in range(stages)]
    progs, dram, want = pipeline(p, x, rqs)
    assert len(np.unique(want)) > 20  # not a saturated, trivial result
    for name, pick in _picks(p):
        chip = Chip(p, dram)
        results = chip.run(progs, pick=pick)
        assert [r.error for r in results] == [CoreError.NONE] * cores, name
        np.testing.assert_array_equal(_out(chip), want, err_msg=name)
        sent = sum(r.stats.send_rows for r in results)
        assert sent == sum(r.stats.recv_rows for r in results) == M * (stages + 1)
        assert all(len(link) == 0 for link in chip.links)
    # The chip runs again from the same state: links and barrier counts start afresh.
    chip.dram[OUT : OUT + M * p.rows] = 0
    assert all(r.ok for r in chip.run(progs))
    np.testing.assert_array_equal(_out(chip), want)


def test_pipeline_needs_its_semaphores():
    """The pick orders do reorder the cores: without the wait of core 0's first SEND (on its
    load) or of a stage's first SEND (on its ACTs) some order sends stale rows."""
    p = P4
    rng = np.random.default_rng(9)
    progs, dram, want = pipeline(p, _i8(rng, (M, 8)), [_rq(rng, 8), _rq(rng, 8)])
    for core, word in ((0, 1), (2, 4)):  # core 2: params, RECV, ACT, NOP, SEND …
        broken = dram.copy()
        base, _ = progs[core]
        op, f = isa.decode(int.from_bytes(dram[base + 64 * word : base + 64 * word + 64], "little"))
        assert op == isa.Op.SEND and f["wait_en"]
        f["wait_en"] = 0
        img = isa.encode(op, f).to_bytes(64, "little")
        broken[base + 64 * word : base + 64 * word + 64] = np.frombuffer(img, np.uint8)
        wrong = 0
        for _name, pick in _picks(p):
            chip = Chip(p, broken)  # fresh SBUFs: nothing left from an earlier run
            res = chip.run(progs, pick=pick)
            wrong += not all(r.ok for r in res) or not np.array_equal(_out(chip), want)
        assert wrong, f"core {core}: removing the wait changed nothing"


def test_four_core_pipeline_roles():
    """On 4 cores each core has its role: 0 loads and sends, 1 and 2 requantise, 3 stores."""
    p = P4
    rng = np.random.default_rng(7)
    progs, dram, want = pipeline(p, _i8(rng, (M, 8)), [_rq(rng, 8), _rq(rng, 8)])
    chip = Chip(p, dram)
    res = chip.run(progs)
    assert all(r.ok for r in res)
    np.testing.assert_array_equal(_out(chip), want)
    assert [r.stats.send_rows for r in res] == [M, M, M, 0]
    assert [r.stats.recv_rows for r in res] == [0, M, M, M]
    assert [r.stats.act_rows for r in res] == [0, M, M, 0]
    assert [r.stats.dma_bytes_written for r in res] == [0, 0, 0, M * 8]
    assert all(c.dram is chip.dram for c in chip.cores)
    assert [c.index for c in chip.cores] == [0, 1, 2, 3]
    for c in range(4):
        assert chip.cores[c].link_out is chip.links[c]
        assert chip.cores[(c + 1) % 4].link_in is chip.links[c]


def test_one_core_chip_is_the_core():
    """A 1-core chip loops its link back: it runs like a standalone Core (same trace)."""
    p = P4.replace(cores=1)
    rng = np.random.default_rng(3)
    progs, dram, want = pipeline(p, _i8(rng, (M, 8)), [_rq(rng, 8)])
    chip = Chip(p, dram)
    r = chip.run(progs)[0]
    core = Core(p, dram)
    r1 = core.run(program_base=progs[0][0], program_len=progs[0][1])
    assert r.ok and r1.ok and r.trace == r1.trace and r.stats == r1.stats
    np.testing.assert_array_equal(chip.dram, core.dram)
    np.testing.assert_array_equal(chip.cores[0].sbuf, core.sbuf)
    np.testing.assert_array_equal(_out(chip), want)


@pytest.mark.parametrize("pick", ["priority", "reversed", "random"])
def test_single_busy_core_matches_core_run(pick, seed):
    """The global scheduler with one busy core (the others idle) is Core.run: the same
    trace, statistics and state, for a directed GEMM."""
    p = NCoreParams(cores=3, rows=4, cols=4, sbuf_depth=256)
    rng = np.random.default_rng(seed(220))
    d = gp.gemm(p, _i8(rng, (9, 7)), _i8(rng, (7, 6)), block_rows=4, out="psum")
    core = Core(p, d.dram)
    order = {"priority": None, "reversed": tuple(reversed(gcore.PRIORITY))}
    r1 = core.run(
        program_base=d.program_base,
        program_len=len(d.program),
        pick=order.get(pick, np.random.default_rng(5)),
    )
    chip = Chip(p, d.dram)
    cpick = {"priority": None, "reversed": list(reversed(chip.priority))}
    cpick = cpick.get(pick, np.random.default_rng(5))
    res = chip.run([None, (d.program_base, len(d.program))], pick=cpick)
    assert res[0].ok and res[2].ok and not res[0].trace and res[0].stats == gcore.Stats()
    assert res[1].trace == r1.trace and res[1].stats == r1.stats and r1.ok
    np.testing.assert_array_equal(chip.cores[1].psum.mem, core.psum.mem)
    np.testing.assert_array_equal(chip.dram, core.dram)


def test_pick_argument():
    chip = Chip(P4, dram_size=4096)
    assert chip.priority == chip_priority(4) and len(chip.priority) == 24
    assert chip.priority[:2] == [(0, Engine.DMA), (0, Engine.TENSOR)]
    with pytest.raises(ValueError, match="pick"):
        chip.run([None], pick=chip.priority[:-1])
    with pytest.raises(ValueError, match="pick"):
        chip.run([None], pick=[Engine.DMA])
    with pytest.raises(ValueError, match="5 programs"):
        chip.run([None] * 5)
    assert [r.ok for r in chip.run([])] == [True] * 4  # every core idle


# -- the barrier --------------------------------------------------------------------------------


def _exchange(p, with_barrier: bool):
    """Each core stores its block to S_c, meets the others at a barrier, then copies S_{c+1}
    to OUT_c. DRAM: blocks at 0x100·c, S at 0x1000 + 0x100·c, OUT at 0x2000 + 0x100·c."""
    r = p.rows
    progs = []
    for c in range(p.cores):
        nxt = (c + 1) % p.cores
        meet = gp.barrier(wait=1, signal=2) if with_barrier else gp.nop(wait=1, signal=2)
        progs.append([
            _load_rows(p, 0x100 * c, 0, 4, signal=0),
            _store_rows(p, 0, 0x1000 + 0x100 * c, 4, wait=0, signal=1),
            meet,
            _load_rows(p, 0x1000 + 0x100 * nxt, 10, 4, wait=2, signal=3),
            _store_rows(p, 10, 0x2000 + 0x100 * c, 4, wait=3),
            gp.end(),
        ])  # fmt: skip
    dram = np.zeros(0x3000, np.uint8)
    rng = np.random.default_rng(11)
    for c in range(p.cores):
        dram[0x100 * c : 0x100 * c + 4 * r] = rng.integers(1, 256, 4 * r)
    return progs, dram


def test_barrier_orders_dram_between_cores():
    """After the barrier every core reads what its neighbour stored before it; with a NOP in
    the barrier's place some pick order reads the stale (zero) block."""
    p = P4
    progs, dram = _exchange(p, True)
    chip = Chip(p, dram)
    for name, pick in _picks(p):
        res = chip.run(progs, pick=pick)
        assert all(r.ok for r in res), name
        for c in range(4):
            nxt = (c + 1) % 4
            got = chip.dram[0x2000 + 0x100 * c : 0x2000 + 0x100 * c + 32]
            np.testing.assert_array_equal(got, dram[0x100 * nxt : 0x100 * nxt + 32], name)
        assert [r.stats.barriers for r in res] == [1] * 4
        chip.dram[0x1000:] = 0
    progs, dram = _exchange(p, False)
    stale = 0
    for _name, pick in _picks(p):
        chip = Chip(p, dram)
        assert all(r.ok for r in chip.run(progs, pick=pick))
        stale += any(
            not chip.dram[0x2000 + 0x100 * c : 0x2000 + 0x100 * c + 32].any() for c in range(4)
        )
    assert stale


def test_barrier_masks_and_generations():
    """Cores 0 and 1 meet twice with mask 0b0011, cores 2 and 3 once with 0b1100, then all
    four (mask 0 and 0b1111 are the same barrier). Core 0 reads the byte core 1 stored before
    their first meeting, and the one it stored between the first and the second."""
    p = P4

    def store(entry, addr, **kw):  # one SBUF byte (partition 0) → DRAM
        return gp.dma_store((_lin(p, entry), [(1, 1)]), (addr, [(1, 1)]), **kw)

    def load(addr, entry, **kw):
        return gp.dma_load((addr, [(1, 1)]), (_lin(p, entry), [(1, 1)]), **kw)

    progs = [
        [gp.barrier(0b0011, signal=2), load(0x100, 60, wait=2, signal=3),
         gp.barrier(0b0011, wait=3, signal=4), load(0x101, 61, wait=4, signal=5),
         gp.barrier(0, wait=5), gp.end()],
        [store(50, 0x100, signal=1), gp.barrier(0b0011, wait=1, signal=2),
         store(51, 0x101, wait=2, signal=3), gp.barrier(0b0011, wait=3), gp.barrier(0b1111),
         gp.end()],
        [gp.barrier(0b1100), gp.barrier(0), gp.end()],
        [gp.barrier(0b1100), gp.barrier(), gp.end()],
    ]  # fmt: skip
    chip = Chip(p, dram_size=4096)
    chip.cores[1].sbuf[0, 50:52] = [11, 21]
    for name, pick in _picks(p):
        chip.dram[:] = 0
        chip.cores[0].sbuf[0, 60:62] = 0
        res = chip.run(progs, pick=pick)
        assert all(r.ok for r in res), (name, [r.error for r in res])
        assert list(chip.cores[0].sbuf[0, 60:62]) == [11, 21], name
        assert [r.stats.barriers for r in res] == [3, 3, 2, 2]
        assert [r.stats.retired[Engine.CONTROL] for r in res] == [4, 4, 3, 3]


def test_barrier_deadlocks():
    """A barrier whose member is idle, ended without it, or faulted never completes."""
    p = P4
    chip = Chip(p, dram_size=4096)
    res = chip.run([[gp.barrier(), gp.end()], [gp.barrier(), gp.end()], [gp.end()]])
    assert [r.error for r in res[:2]] == [CoreError.DEADLOCK] * 2
    assert (res[0].index, res[0].engine, res[0].address) == (0, Engine.CONTROL, 0xF)
    assert res[2].ok and res[3].ok and not res[3].trace  # ended / idle
    # A subset that does not include the idle core completes.
    res = chip.run([[gp.barrier(0b101), gp.end()], None, [gp.barrier(0b101), gp.end()]])
    assert all(r.ok for r in res)
    # Core 1 faults (dispatch error) before its barrier: cores 0 and 2 deadlock in theirs.
    res = chip.run(
        [
            [gp.barrier(0b111, signal=0), gp.nop(wait=0), gp.end()],
            [gp.nop(), gp.loadw(0, 0, 1), gp.barrier(0b111), gp.end()],
            [gp.barrier(0b111), gp.end()],
        ]
    )
    assert (res[1].error, res[1].index) == (CoreError.ILLEGAL_FIELD, 1)
    assert [(r.error, r.index, r.engine, r.address) for r in (res[0], res[2])] == [
        (CoreError.DEADLOCK, 0, Engine.CONTROL, 0b111)
    ] * 2


# -- fault isolation ----------------------------------------------------------------------------


def _independent(p, rng, fault_core, how):
    """Every core: load its parameters and its block, requantise, store to its output in two
    halves. Core ``fault_core`` faults before its stores ("illegal": an illegal instruction
    word 3) or in its first store ("dma": an SLVERR byte inside it)."""
    n, r = p.cores, p.rows
    dram = np.zeros(1 << 15, np.uint8)
    wants, progs = [], []
    pe = 200
    for c in range(n):
        x = _i8(rng, (M, r))
        rq = _rq(rng, r)
        xa, pa, oa = 0x1000 * c, 0x1000 * c + 0x400, 0x1000 * c + 0x800
        dram[xa : xa + x.size] = x.view(np.uint8).ravel()
        dram[pa : pa + 12 * r] = _param_image(rq)
        wants.append(_expect(x, rq))
        prog = [
            _load_params(p, pa, pe, signal=1),
            _load_rows(p, xa, 0, M, wait=1, signal=0),
            _act((0, [(M, 1)]), 100, p, rq, pe, wait=0, signal=3),
            _store_rows(p, 100, oa, M // 2, wait=3, signal=4),
            _store_rows(p, 100 + M // 2, oa + M // 2 * r, M // 2, wait=4),
            gp.end(),
        ]
        if c == fault_core and how == "illegal":
            prog.insert(3, gp.matmul((0, [(1, 1)]), 0, 1))  # k = 0: ILLEGAL_FIELD
        progs.append(prog)
    dram[0x7F00:0x8000] = rng.integers(0, 256, 0x100)  # bytes nobody may touch
    faults = gdma.DramFaults()
    if how == "dma":
        oa = 0x1000 * fault_core + 0x800
        faults = gdma.DramFaults([(oa + 40, oa + 41, gdma.Resp.SLVERR)])
    return progs, dram, wants, faults


@pytest.mark.parametrize("how", ["illegal", "dma"])
@pytest.mark.parametrize("fault_core", [0, 2])
def test_fault_isolation(how, fault_core, seed):
    """One core stops at its error (nothing after it starts); the others finish with the
    numpy result; DRAM outside the outputs is untouched."""
    p = P4
    rng = np.random.default_rng(seed(230 + fault_core))
    progs, dram, wants, faults = _independent(p, rng, fault_core, how)
    chip = Chip(p, dram, faults=faults)
    oa = 0x1000 * fault_core + 0x800
    for name, pick in _picks(p):
        chip.dram[:] = dram
        res = chip.run(progs, pick=pick)
        bad = res[fault_core]
        if how == "illegal":
            assert (bad.error, bad.index, bad.engine, bad.address) == (
                CoreError.ILLEGAL_FIELD,
                3,
                Engine.TENSOR,
                3 * 64,  # word lists run at program_base 0
            )
            assert bad.trace == [0, 1, 2]
            assert not chip.dram[oa : oa + M * 8].any(), name  # its stores never started
        else:
            assert (bad.error, bad.index, bad.engine) == (CoreError.DMA, 3, Engine.DMA)
            assert bad.dma_code == gdma.ErrorCode.WR_SLVERR
            assert not chip.dram[oa + M // 2 * 8 : oa + M * 8].any()  # 2nd store never ran
            if bad.dram_maybe is not None:  # bytes the failed burst may have written
                assert not bad.dram_maybe[:oa].any() and not bad.dram_maybe[oa + 96 :].any()
        for c in range(p.cores):
            if c != fault_core:
                assert res[c].ok, (name, c, res[c].error)
                o = 0x1000 * c + 0x800
                got = chip.dram[o : o + M * 8].view(np.int8).reshape(M, 8)
                np.testing.assert_array_equal(got, wants[c], err_msg=f"{name} core {c}")
        keep = np.ones(len(dram), bool)
        for c in range(p.cores):
            keep[0x1000 * c + 0x800 : 0x1000 * c + 0x800 + M * 8] = False
        np.testing.assert_array_equal(chip.dram[keep], dram[keep], err_msg=name)


def test_pipeline_stage_fault_starves_the_next():
    """A stage that faults stops sending: the next core's RECV deadlocks, the cores before
    it finish."""
    p = P4
    rng = np.random.default_rng(5)
    progs, dram, _ = pipeline(p, _i8(rng, (M, 8)), [_rq(rng, 8), _rq(rng, 8)])
    # Core 2 (second stage: load params, RECV 24, ACT, …): its ACT (word 2) becomes an
    # illegal opcode. Core 3 waits for rows forever; its store waits on the RECV's signal.
    base, _ = progs[2]
    dram[base + 2 * 64 : base + 3 * 64] = 0
    dram[base + 2 * 64] = 31
    chip = Chip(p, dram)
    for name, pick in _picks(p):
        res = chip.run(progs, pick=pick)
        assert res[0].ok and res[1].ok, name
        assert (res[2].error, res[2].index, res[2].engine, res[2].address) == (
            CoreError.ILLEGAL_OPCODE,
            2,
            Engine.DISPATCH,
            base + 2 * 64,
        )
        assert res[2].stats.recv_rows == M and res[2].stats.act_rows == 0
        # DEADLOCK for the first busy queue in pick order: the store (DMA, index 1, waiting
        # on semaphore 1), the RECV (index 0, its wait_sem field 0) or END (reversed order)
        r3 = res[3]
        busy = {Engine.DMA: (1, 1), Engine.RECV: (0, 0), Engine.CONTROL: (2, 0)}
        assert r3.error == CoreError.DEADLOCK and (r3.index, r3.address) == busy[r3.engine]
        if pick is None:
            assert r3.engine == Engine.DMA
        assert r3.stats.recv_rows == 0 and not _out(chip).any()
