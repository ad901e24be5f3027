"""The NeuronCore on Icarus and Verilator, against the golden ISS, bit for bit.

One bench run per design and simulator executes a list of cases back to back on the same
core (so SBUF/PSUM contents, weights and vector parameters carry over, as they do on the
ISS, and every error case is followed by a soft reset and a program that must run
correctly): the directed programs of ``golden/program.py`` (tiled GEMM with double
buffering, convolution as shifted matmuls, max-pool, requantised MLP), constrained-random
programs (``golden/randprog.py``) with and without random AXI stalls, and every bad input
(illegal opcode and field, SBUF/PSUM range, DMA bus errors, semaphore overflow, deadlock,
fetch error, missing END, misaligned program). After each case the bench reads back the
status and error registers, every performance counter, DRAM, the whole SBUF and PSUM; this
test compares each with the ISS.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from ncore import isa
from ncore.golden import core as gcore
from ncore.golden import cycles, randprog, tensor_engine
from ncore.golden import dma as gdma
from ncore.golden import program as gp
from ncore.golden import psum as gpsum
from ncore.golden import sbuf as gsbuf
from ncore.hw.core import COUNTERS
from ncore.isa import CoreError
from ncore.params import NCoreParams
from ncore.verif.core_run import case as _case
from ncore.verif.core_run import program_case as _program_case
from ncore.verif.runner import run_bench

DRAM_BYTES = 1 << 16
DESIGNS = {
    "int8": NCoreParams(sbuf_depth=512, psum_depth=128),
    "bf16": NCoreParams(rows=4, cols=4, dtypes=("int8", "bf16"), sbuf_depth=256, psum_depth=64),
}


def _i8(rng, shape):
    return rng.integers(-128, 128, shape, dtype=np.int8)


def _rq(rng, std, n):
    """Per-channel requantisation that spreads ``std`` over the int8 range."""
    shift = np.full(n, 16, np.int64)
    scale = np.maximum(1, (40 * 2**16 / max(std, 1)) * rng.uniform(0.5, 1.5, n)).astype(np.int64)
    return {"scale": scale, "shift": shift, "bias": rng.integers(-500, 500, n)}


def psum_store_words(p: NCoreParams, m: int, dtype: str = "int8") -> list[int]:
    """MATMUL ``m`` rows (A at DRAM 0, ``m × rows``; Bᵀ at 0x400, ``cols × rows``; elements of
    ``dtype``) into PSUM entries 0…m−1, then three PSUM_STOREs of the 32-bit results, each
    waiting for the previous one's signal: the whole ``m × cols`` matrix row-major at 0x1000,
    its transpose at 0x2000 (columns ``m`` words + 8 bytes apart), and a 3-column sub-tile
    of every other row from entry 2, column 1, to an unaligned address (0x3003)."""
    pb, cb = gsbuf.pbits(p), gpsum.cbits(p)
    es = 0 if dtype == "int8" else 1
    C = 1 << cb
    sub = min(3, p.cols - 1)
    return [
        gp.dma_load((0, [(m * p.rows, 1 << es)]), (0, [(m * p.rows, 1)]), es, signal=0),
        gp.dma_load(
            (0x400, [(p.cols * p.rows, 1 << es)]), (64 << pb, [(p.cols * p.rows, 1)]), es, signal=1
        ),  # fmt: skip
        gp.loadw(64, p.rows, p.cols, wait=1),
        gp.matmul((0, [(m, 1)]), p.rows, p.cols, 0, dtype=dtype, wait=0, signal=2),
        gp.dma_store_psum(
            (0, [(p.cols, 1), (m, C)]), (0x1000, [(p.cols * m, 4)]), wait=2, signal=3
        ),  # fmt: skip
        gp.dma_store_psum(
            (0, [(m, C), (p.cols, 1)]), (0x2000, [(m, 4), (p.cols, 4 * m + 8)]), wait=3, signal=4
        ),  # fmt: skip
        gp.dma_store_psum(
            (2 * C + 1, [(sub, 1), (m // 2 - 1, 2 * C)]),
            (0x3003, [(sub, 4), (m // 2 - 1, 4 * sub + 4)]),
            wait=4,
        ),  # fmt: skip
        gp.end(),
    ]


def psum_store_case(p: NCoreParams, rng, dtype: str = "int8") -> dict:
    """:func:`psum_store_words` with random inputs; the ISS's int32 results are checked
    against numpy here (fp32: against ``golden.tensor_engine.matmul``)."""
    m = 12
    if dtype == "int8":
        a, bt = _i8(rng, (m, p.rows)), _i8(rng, (p.cols, p.rows))
        image = np.zeros(0x1000, np.uint8)
        image[: a.size] = a.view(np.uint8).ravel()
        image[0x400 : 0x400 + bt.size] = bt.view(np.uint8).ravel()
        want = (a.astype(np.int64) @ bt.T.astype(np.int64)).astype(np.int32).view(np.uint32)
    else:
        a = rng.standard_normal((m, p.rows)).astype(np.float32).view(np.uint32) >> 16
        bt = rng.standard_normal((p.cols, p.rows)).astype(np.float32).view(np.uint32) >> 16
        a, bt = a.astype(np.uint16), bt.astype(np.uint16)
        image = np.zeros(0x1000, np.uint8)
        image[: 2 * a.size] = a.view(np.uint8).ravel()
        image[0x400 : 0x400 + 2 * bt.size] = bt.view(np.uint8).ravel()
        want = tensor_engine.matmul(a, bt.T.copy(), dtype).view(np.uint32)
    words = psum_store_words(p, m, dtype)
    case = _program_case(f"directed-psum-store-{dtype}", words, dram=image)
    gc = gcore.Core(p, case["dram"])
    res = gc.run(program_base=case["base"], program_len=case["length"])
    assert res.ok, res
    got = gc.dram[0x1000 : 0x1000 + 4 * m * p.cols].view("<u4").reshape(m, p.cols)
    np.testing.assert_array_equal(got, want)
    tr = gc.dram[0x2000:].view(np.uint8)
    for j in range(p.cols):
        col = tr[j * (4 * m + 8) : j * (4 * m + 8) + 4 * m].view("<u4")
        np.testing.assert_array_equal(col, want[:, j])
    return case


def directed_cases(p: NCoreParams, rng) -> list[dict]:
    cases = []
    if p.has_fp:
        a = rng.standard_normal((12, 10)).astype(np.float32).view(np.uint32) >> 16
        b = rng.standard_normal((10, 6)).astype(np.float32).view(np.uint32) >> 16
        d = gp.gemm(p, a.astype(np.uint16), b.astype(np.uint16), dtype="bf16", out="bf16")
        cases.append(d)
        x = rng.standard_normal((6, 4, 5)).astype(np.float32).view(np.uint32) >> 16
        cases.append(gp.maxpool2x2(p, x.astype(np.uint16), dtype="bf16"))
    M, K, N = (24, 20, 12) if p.rows >= 8 else (12, 9, 6)
    a, b = _i8(rng, (M, K)), _i8(rng, (K, N))
    cases.append(gp.gemm(p, a, b, **_rq(rng, 128 * 128 * np.sqrt(K) / 3, N), relu=True))
    # The A-resident schedule of the GEMM benchmark, small: three blocks, two N tiles.
    M, K, N = (30, 32, 12) if p.rows >= 8 else (30, 12, 6)
    a, b = _i8(rng, (M, K)), _i8(rng, (K, N))
    rq = _rq(rng, 128 * 128 * np.sqrt(K) / 3, N)
    cases.append(gp.gemm_stationary(p, a, b, block_rows=10, **rq))
    x, w = _i8(rng, (5, 4, 3)), _i8(rng, (3, 3, 3, 4))
    cases.append(gp.conv3x3(p, x, w, **_rq(rng, 128 * 128 * np.sqrt(27) / 3, 4)))
    cases.append(gp.maxpool2x2(p, _i8(rng, (6, 6, p.rows + 1))))
    feats = (10, 9, 6)
    layers = []
    for fi, fo in zip(feats[:-1], feats[1:], strict=True):
        layers.append({"w": _i8(rng, (fi, fo)), **_rq(rng, 60 * 74 * np.sqrt(fi), fo)})
    cases.append(gp.mlp(p, _i8(rng, (7, feats[0])), layers))
    out = [_case(f"directed-{d.name}", d.dram, d.program_base, len(d.program)) for d in cases]
    out.append(psum_store_case(p, rng))
    if p.has_fp:
        out.append(psum_store_case(p, rng, "bf16"))
    # Links on one core loop back: SEND rows, RECV them elsewhere (other row counts per
    # instruction), a BARRIER of the one core, then store what arrived.
    pb = (p.rows - 1).bit_length()
    x = rng.integers(0, 256, 16 * p.rows, dtype=np.uint8)
    words = [
        gp.dma_load((0, [(16 * p.rows, 1)]), (0, [(16 * p.rows, 1)]), signal=0),
        gp.send((0, [(10, 1)]), p.rows, wait=0),
        gp.send((10, [(6, 1)]), p.rows - 1),
        gp.recv((100, [(4, 2), (2, 1)]), p.rows, signal=1),
        gp.recv((108, [(8, 1)]), p.rows, signal=1),
        gp.barrier(1, wait=1, signal=2),  # this core only (the bench has one core)
        gp.nop(wait=1),
        gp.dma_store((100 << pb, [(16 * p.rows, 1)]), (0x1000, [(16 * p.rows, 1)]), wait=2),
        gp.end(),
    ]
    out.append(_program_case("directed-loopback", words, dram=x))
    return out


def random_cases(p, rng, n, pause=0):
    out = []
    for i in range(n):
        rp = randprog.random_program(p, rng, phases=3)
        out.append(_case(f"random-{i}{'-pause' if pause else ''}", rp.dram, rp.base,
                         len(rp.words), pause=pause))  # fmt: skip
    return out


def bad_cases(p: NCoreParams, rng) -> list[dict]:
    """Every bad input, each followed (in the run) by a good program."""
    ld = gp.dma_load((0, [(8, 1)]), (0, [(8, 1)]))
    good = [ld, gp.loadw(0, 1, 1), gp.matmul((0, [(2, 1)]), 1, 1, 0), gp.end()]
    word = gp.nop()
    cases = [
        _program_case("bad-opcode", [ld, word | 31, gp.end()]),
        _program_case("bad-field", [ld, gp.nop() | 1 << 20, gp.end()]),
        _program_case(
            "bad-sbuf-range", [ld, gp.matmul((p.sbuf_depth - 3, [(4, 1)]), 1, 1, 0), gp.end()]
        ),
        _program_case(
            "bad-psum-range",
            [ld, gp.loadw(0, 1, 1), gp.matmul((0, [(3, 2)]), 1, 1, (5, [-4])), gp.end()],
        ),
        _program_case(
            "bad-dma-decerr",
            [ld, gp.dma_load((DRAM_BYTES - 4, [(8, 1)]), (16, [(8, 1)])), gp.end()],
        ),
        _program_case(
            "bad-dma-slverr",
            [gp.dma_store((0, [(32, 1)]), (0x100, [(32, 1)]), signal=1), gp.nop(wait=1), gp.end()],
            err=(0x110, 16),
        ),
        # PSUM_STORE faults: past the last PSUM entry (SBUF_RANGE, at the linear PSUM
        # address), and a write error in the SLVERR window.
        _program_case(
            "bad-psum-store-range",
            [
                gp.dma_store_psum(
                    ((p.psum_depth - 2) << gpsum.cbits(p), [(3 * p.cols, 1)]),
                    (0x200, [(3 * p.cols, 4)]),
                ),
                gp.end(),
            ],
        ),
        _program_case(
            "bad-psum-store-slverr",
            [
                gp.dma_store_psum((0, [(64, 1)]), (0xF0, [(64, 4)]), signal=1),
                gp.nop(wait=1),
                gp.end(),
            ],
            err=(0x140, 16),
        ),
        _program_case("bad-sem-overflow", [gp.nop(signal=2)] * 256 + [gp.end()]),
        _program_case(
            "bad-deadlock", [ld, gp.matmul((0, [(1, 1)]), 1, 1, wait=5), gp.end()], watchdog=20
        ),
        _program_case("bad-fetch", [ld, ld, gp.nop(), gp.nop(), gp.end()], err=(0x4040, 64)),
        _program_case("bad-no-end", [ld, gp.nop()]),
        {**_program_case("bad-misaligned", good), "base": 0x4000 + 32},
    ]
    # After each bad case the same good program must run.
    out = []
    for c in cases:
        out += [c, _program_case(f"after-{c['name']}", good)]
    return out


def _golden_run(gc: gcore.Core, case) -> gcore.Result:
    gc.dram[:] = 0
    gc.dram[: len(case["dram"])] = case["dram"]
    eb, es = case.get("err", (0, 0))
    gc.faults = gdma.DramFaults([(eb, eb + es, gdma.Resp.SLVERR)] if es else [])
    if case["base"] % 64:
        res = gc.result = gcore.Result(CoreError.FETCH, 0, gcore.Engine.DISPATCH, case["base"])
        return res
    return gc.run(program_base=case["base"], program_len=case["length"])


def _soft_reset(gc: gcore.Core) -> None:
    """What CTRL.SOFT_RESET does to the architectural state (see hw/core.py)."""
    gc.wbank[...] = 0
    gc.active_bank = 1
    for v in gc.ve_params.values():
        v[...] = 0


def _compare(p, case, res, hw) -> list[str]:
    errs = []
    status = hw["status"]
    code, engine, dma_code = status >> 8 & 15, status >> 12 & 7, status >> 16 & 15
    if res.ok:
        if status & 0b1111 != 0b0101 or hw["irq_status"] != 1:
            errs.append(f"status {status:#x} irq {hw['irq_status']}, expected done")
    else:
        want = (int(res.error), int(res.engine), res.address & 0xFFFF_FFFF, res.index)
        got = (code, engine, hw["err_addr"], hw["err_index"])
        if not status & 8 or got != want or hw["irq_status"] != 2:
            errs.append(f"error (code, engine, addr, index) {got} != {want}, status "
                        f"{status:#x}, irq {hw['irq_status']}")  # fmt: skip
        if res.error == CoreError.DMA and dma_code != int(res.dma_code):
            errs.append(f"DMA code {dma_code} != {int(res.dma_code)}")
        if hw.get("after_reset") != 1:
            errs.append(f"status after soft reset {hw.get('after_reset')}")
    n = len(hw["dram"])
    dram = np.asarray(hw["dram"], np.uint8)
    want = res_dram = case["_golden_dram"][:n]
    diff = dram != want
    if res.dram_maybe is not None:
        diff &= ~res.dram_maybe[:n]
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        errs.append(f"DRAM differs at {diff.sum()} bytes, first {i:#x}: {dram[i]} != {res_dram[i]}")
    for name, gold in (("sbuf", case["_golden_sbuf"]), ("psum", case["_golden_psum"])):
        got = np.asarray(hw[name], np.uint64)
        if not np.array_equal(got, gold.astype(np.uint64)):
            bad = np.argwhere(got != gold)
            errs.append(
                f"{name.upper()} differs at {len(bad)} elements, first "
                f"{tuple(bad[0])}: {got[tuple(bad[0])]:#x} != {gold[tuple(bad[0])]:#x}"
            )
    c, s = hw["counters"], res.stats
    want_c = {
        "retired": sum(s.retired.values()),
        "macs": s.macs,
        "matmul_rows": s.matmul_rows,
        "act_rows": s.act_rows,
    }
    if res.ok:
        want_c["dma_bytes_read"] = s.dma_bytes_read
        want_c["dma_bytes_written"] = s.dma_bytes_written
    for k, v in want_c.items():
        if res.ok or k in ("matmul_rows", "macs"):
            if c[k] != v:
                errs.append(f"counter {k} = {c[k]} != {v}")
    if res.ok and c["cycles"] <= 0:
        errs.append("cycle counter did not count")
    return errs


@pytest.mark.sim
@pytest.mark.parametrize("design", list(DESIGNS))
def test_core(sim, design, seed, tmp_path):
    p = DESIGNS[design]
    s = seed(600 + len(design))
    rng = np.random.default_rng(s)
    icarus = sim == "icarus"
    cases = directed_cases(p, rng)
    cases += random_cases(p, rng, 2 if icarus else 8)
    cases += random_cases(p, rng, 1 if icarus else 3, pause=96)
    if design == "int8":
        cases += bad_cases(p, rng)
    # Golden: one core through the whole list, like the hardware.
    gc = gcore.Core(p, np.zeros(DRAM_BYTES, np.uint8))
    results = []
    for case in cases:
        res = _golden_run(gc, case)
        case["dram_bytes"] = -(-max(len(case["dram"]), 0x4000) // 64) * 64
        case["sbuf_entries"], case["psum_entries"] = p.sbuf_depth, p.psum_depth
        case["_golden_dram"] = gc.dram.copy()
        case["_golden_sbuf"], case["_golden_psum"] = gc.sbuf.copy(), gc.psum.mem.copy()
        results.append(res)
        if not res.ok:
            _soft_reset(gc)
    case_file, out_file = tmp_path / "cases.pkl", tmp_path / "results.pkl"
    with open(case_file, "wb") as f:
        pickle.dump([{k: v for k, v in c.items() if not k.startswith("_")} for c in cases], f)
    env = {"NCORE_SEED": s, "NCORE_CASES": case_file, "NCORE_RESULTS": out_file}
    r = run_bench("core", p, sim, test_module="ncore.verif.core_tb", top="core_bench",
                  top_options={"dram_bytes": DRAM_BYTES}, env=env)  # fmt: skip
    assert r["total"] == 2 and r["failed"] == 0, r
    with open(out_file, "rb") as f:
        hw = pickle.load(f)
    assert len(hw) == len(cases)
    problems = []
    for case, res, h in zip(cases, results, hw, strict=True):
        for e in _compare(p, case, res, h):
            problems.append(f"{case['name']}: {e}")
    assert not problems, "\n".join(problems[:30])
    # The cycle model against the RTL's cycle counter on every program that ran to END
    # with an always-ready memory (the model has no AXI stalls).
    errors = []
    for case, res, h in zip(cases, results, hw, strict=True):
        if res.ok and not case.get("pause"):
            words = isa.from_bytes(bytes(case["dram"][case["base"] :][: 64 * case["length"]]))
            model = cycles.predict(p, words).total
            errors.append((abs(model - h["counters"]["cycles"]) / h["counters"]["cycles"],
                           case["name"]))  # fmt: skip
    worst = max(errors)
    mean = sum(e for e, _ in errors) / len(errors)
    print(f"cycle model on {len(errors)} programs: mean |error| {mean:.3f}, worst {worst}")
    assert worst[0] < 0.2 and mean < 0.06, (worst, mean)
    # The cases really exercise what they claim.
    kinds = {c["name"]: res for c, res in zip(cases, results, strict=True)}
    assert all(res.ok for n, res in kinds.items() if not n.startswith("bad-"))
    if design == "int8":
        errors = {res.error for n, res in kinds.items() if n.startswith("bad-")}
        assert errors == set(CoreError) - {CoreError.NONE}, errors
        psum_faults = [
            (kinds[n].error, kinds[n].dma_code) for n in kinds if n.startswith("bad-psum-store")
        ]
        assert psum_faults == [
            (CoreError.DMA, gdma.ErrorCode.SBUF_RANGE),
            (CoreError.DMA, gdma.ErrorCode.WR_SLVERR),
        ], psum_faults
    assert {k for k, _, _ in COUNTERS} >= {"cycles", "macs", "retired"}


@pytest.mark.sim
def test_core_on_axiram(sim, seed, tmp_path):
    """The same kind of programs against cocotbext-axi's AxiRam with random pauses on all
    five channels: another slave implementation stresses the core's AXI master."""
    p = DESIGNS["int8"]
    s = seed(650)
    rng = np.random.default_rng(s)
    cases = directed_cases(p, rng)[:2] + random_cases(p, rng, 2, pause=100)
    cases[0]["pause"] = 60
    gc = gcore.Core(p, np.zeros(DRAM_BYTES, np.uint8))
    results = []
    for case in cases:
        results.append(_golden_run(gc, case))
        case["dram_bytes"] = -(-max(len(case["dram"]), 0x4000) // 64) * 64
        case["sbuf_entries"], case["psum_entries"] = p.sbuf_depth, p.psum_depth
        case["_golden_dram"] = gc.dram.copy()
        case["_golden_sbuf"], case["_golden_psum"] = gc.sbuf.copy(), gc.psum.mem.copy()
    case_file, out_file = tmp_path / "cases.pkl", tmp_path / "results.pkl"
    with open(case_file, "wb") as f:
        pickle.dump([{k: v for k, v in c.items() if not k.startswith("_")} for c in cases], f)
    env = {"NCORE_SEED": s, "NCORE_CASES": case_file, "NCORE_RESULTS": out_file,
           "NCORE_DRAM_BYTES": DRAM_BYTES}  # fmt: skip
    r = run_bench("core_axi", p, sim, test_module="ncore.verif.core_axi_tb", top="core",
                  env=env)  # fmt: skip
    assert r["total"] == 1 and r["failed"] == 0, r
    with open(out_file, "rb") as f:
        hw = pickle.load(f)
    problems = [f"{c['name']}: {e}" for c, res, h in zip(cases, results, hw, strict=True)
                for e in _compare(p, c, res, h)]  # fmt: skip
    assert not problems, "\n".join(problems[:30])
    assert all(res.ok for res in results)
