# amaranth: UnusedElaboratable=no
"""The vector engine (ACT) in the Amaranth simulator, and its golden model.

* Golden model: hand-worked rows (requantisation rounding and saturation, zero point, fp
  max and RELU on ±0 and NaN, clamp, every domain change) against expected bits worked out by
  hand, and the requantiser against exact Python integers.
* Hardware against the golden model: every (op, in_type, out_type, func) combination with
  random operands (specials included), random configurations and parameters; parameter
  writes between rows; random stalls and backpressure; errors for unassigned codes and for FP
  types in an int-only build; exact latency and one row per cycle.
* Pooling: a 2×2 max-pool (int8) and 2×2 average pools (bf16 → fp32 sums → × 0.25, and int8
  via requantisation) as sequences of ADD/MAX/ACT rows, through the hardware and the golden
  model, against plain numpy.
* The configuration table in ``docs/vector_engine.md`` against the layout's field offsets.

Programs are streamed from a ROM and results captured in a RAM (as in ``tests/test_fp.py``),
so the simulator runs without a Python step per cycle.
"""

import re
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from amaranth import Module, Mux, Signal
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from ncore.golden import vector_engine as golden
from ncore.golden.vector_engine import Func, Op, ParamField, VType
from ncore.hw import vector_engine as hw
from ncore.hw.vector_engine import VectorEngine, config_layout, out_layout, param_layout, row_layout
from ncore.params import NCoreParams
from ncore.verif.vector_engine_tb import (
    Param,
    Row,
    expected,
    param_entries,
    param_payload,
    random_config,
    random_elements,
    random_params,
    random_program,
    random_rows,
    row_payload,
)

FP = NCoreParams(rows=4, cols=3, dtypes=("int8", "fp16", "bf16"))  # 4 lanes
INT = NCoreParams(rows=2, cols=3, dtypes=("int8",))  # 3 lanes
DOC = Path(__file__).resolve().parent.parent / "docs" / "vector_engine.md"
F32_ONE = 0x3F80_0000


# ---- harness ---------------------------------------------------------------------------------


def run_program(p, program, *, stall=0.0, backpressure=0.0, seed=0, fifo_depth=None):
    """Run ``program`` (Row/Param entries) through a VectorEngine; return a dict with the
    outputs (``data``, ``error``, ``last``, ``tag``), the acceptance and delivery cycle of
    every row and the engine's latency.

    The program sits in a ROM whose entries are offered in order on ``i_row``/``i_param``
    (a random idle pattern delays new offers; an offer is held until taken); results and
    cycle numbers are written to RAMs. ``o_row.ready`` follows a random pattern.
    """
    dut = VectorEngine(p, fifo_depth=fifo_depth)
    n = dut.lanes
    rl, pl, ol = row_layout(p), param_layout(p), out_layout(p)
    words = []
    for e in program:
        if isinstance(e, Row):
            words.append(1 | rl.const(row_payload(e, n)).as_bits() << 1)
        else:
            words.append(pl.const(param_payload(e, pl)).as_bits() << 1)
    n_rows = sum(isinstance(e, Row) for e in program)
    rng = np.random.default_rng([seed, 99])
    pattern = 4096
    gaps = (rng.random(pattern) < stall).astype(int).tolist()
    readys = (rng.random(pattern) >= backpressure).astype(int).tolist()

    m = Module()
    m.submodules.dut = dut
    m.submodules.prog = prog = Memory(shape=1 + max(rl.size, pl.size), depth=len(words), init=words)
    m.submodules.gap_rom = gap_rom = Memory(shape=1, depth=pattern, init=gaps)
    m.submodules.ready_rom = ready_rom = Memory(shape=1, depth=pattern, init=readys)
    m.submodules.outs = outs = Memory(shape=ol.size, depth=n_rows, init=[])
    m.submodules.out_cycles = out_cycles = Memory(shape=32, depth=n_rows, init=[])
    m.submodules.acc_cycles = acc_cycles = Memory(shape=32, depth=n_rows, init=[])

    cycle = Signal(32)
    m.d.sync += cycle.eq(cycle + 1)
    idx = Signal(range(len(words) + 1))
    offering = Signal()
    entry = prog.read_port(domain="comb")
    gap = gap_rom.read_port(domain="comb")
    ready = ready_rom.read_port(domain="comb")
    m.d.comb += [entry.addr.eq(idx), gap.addr.eq(cycle), ready.addr.eq(cycle)]
    valid = Signal()
    is_row = entry.data[0]
    m.d.comb += [
        valid.eq((idx < len(words)) & (offering | ~gap.data)),
        dut.i_row.valid.eq(valid & is_row),
        dut.i_param.valid.eq(valid & ~is_row),
        dut.i_row.payload.eq(entry.data[1 : 1 + rl.size]),
        dut.i_param.payload.eq(entry.data[1 : 1 + pl.size]),
    ]
    take = valid & Mux(is_row, dut.i_row.ready, dut.i_param.ready)
    with m.If(take):
        m.d.sync += [idx.eq(idx + 1), offering.eq(0)]
    with m.Else():
        m.d.sync += offering.eq(valid)

    row_idx = Signal(range(n_rows + 1))
    acc = acc_cycles.write_port()
    m.d.comb += [acc.addr.eq(row_idx), acc.data.eq(cycle), acc.en.eq(take & is_row)]
    m.d.sync += row_idx.eq(row_idx + (take & is_row))

    out_idx = Signal(range(n_rows + 1))
    m.d.comb += dut.o_row.ready.eq(ready.data)
    o_take = dut.o_row.valid & dut.o_row.ready
    wr, wc = outs.write_port(), out_cycles.write_port()
    m.d.comb += [
        wr.addr.eq(out_idx),
        wr.data.eq(dut.o_row.payload),
        wr.en.eq(o_take),
        wc.addr.eq(out_idx),
        wc.data.eq(cycle),
        wc.en.eq(o_take),
    ]
    m.d.sync += out_idx.eq(out_idx + o_take)

    result = {}
    limit = 50 * (len(words) + 100)

    async def testbench(ctx):
        ticks = 0
        while ctx.get(out_idx) < n_rows:
            await ctx.tick().repeat(32)
            ticks += 32
            assert ticks < limit, f"hang: {ctx.get(out_idx)} of {n_rows} rows out"
        await ctx.tick().repeat(4)
        assert not ctx.get(dut.o_row.valid), "an extra output row"
        assert not ctx.get(dut.busy), "busy after the last row"
        views = [ol.from_bits(ctx.get(outs.data[i])) for i in range(n_rows)]
        result["data"] = np.array(
            [[int(x) for x in v.data] for v in views], dtype=np.uint32
        ).reshape(-1, n)
        result["error"] = np.array([int(v.error) for v in views], dtype=bool)
        result["last"] = [int(v.last) for v in views]
        result["tag"] = [int(v.tag) for v in views]
        result["accepted"] = np.array([ctx.get(acc_cycles.data[i]) for i in range(n_rows)])
        result["delivered"] = np.array([ctx.get(out_cycles.data[i]) for i in range(n_rows)])

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    result["latency"] = dut.latency
    return result


def check_program(p, program, result):
    """Every output row equals the golden model bit for bit; flags and tags match."""
    n = max(p.rows, p.cols)
    rows = [e for e in program if isinstance(e, Row)]
    want, want_err = expected(program, n, p.has_fp)
    bad = np.argwhere(result["data"] != want)
    if len(bad):
        lines = [f"{len(bad)} of {want.size} lanes differ"]
        for r, lane in bad[:8]:
            e = rows[r]
            lines.append(
                f"  row {r} lane {lane}: got 0x{result['data'][r, lane]:08X}, golden "
                f"0x{want[r, lane]:08X}; a=0x{int(e.a[lane]):08X} b=0x{int(e.b[lane]):08X} "
                f"config={ {k: int(v) for k, v in e.config.items()} }"
            )
        pytest.fail("\n".join(lines))
    np.testing.assert_array_equal(result["error"], want_err, err_msg="error flags")
    assert result["tag"] == [e.tag for e in rows]
    assert result["last"] == [e.last for e in rows]


# ---- layout, codes, docs ---------------------------------------------------------------------


def test_codes_match_golden():
    for hw_enum, g_enum in ((hw.Op, Op), (hw.VType, VType), (hw.Func, Func)):
        assert {e.name: e.value for e in hw_enum} == {e.name: e.value for e in g_enum}
    assert {e.name: e.value for e in hw.ParamField} == {e.name: e.value for e in ParamField}
    # INT8/FP16/BF16 share the tensor engine's dtype codes.
    from ncore.params import DTYPE_CODE

    assert {k.upper(): v for k, v in DTYPE_CODE.items()} == {
        t.name: t.value for t in VType if t.value < 3
    }


def test_doc_table_matches_layout():
    """The configuration table in docs/vector_engine.md lists every field at its bits."""
    text = DOC.read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d+)(?:…(\d+))? \|", text, re.M)
    table = {name: (int(lo), int(hi) if hi else int(lo)) for name, lo, hi in rows}
    fields = {name: (f.offset, f.offset + f.width - 1) for name, f in config_layout}
    assert table == fields
    assert f"{config_layout.size} bits" in text


def test_latency_property_matches_golden_and_doc():
    for p in (FP, INT, NCoreParams(rows=1, cols=1)):
        assert VectorEngine(p).latency == golden.latency(p)
    text = DOC.read_text()
    for label, p in (("with FP (`has_fp`)", FP), ("int only", INT)):
        dut = VectorEngine(p)
        row = f"| {label} | {dut.latency} | {dut.param_drain} | {dut.fifo_depth} |"
        assert row in text, row


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="tag_width"):
        VectorEngine(FP, tag_width=0)
    with pytest.raises(ValueError, match="fifo_depth"):
        VectorEngine(FP, fifo_depth=1)


# ---- golden model: hand-worked rows --------------------------------------------------------


def f32(x):
    return int(np.float32(x).view(np.uint32))


def _one(config, a, b=0, *, scale=1, bias=0, shift=0, has_fp=True):
    params = {"scale": [scale], "bias": [bias], "shift": [shift]}
    return int(golden.run(config, params, [[a]], [[b]], has_fp=has_fp)[0, 0])


I32 = {"in_type": VType.INT32, "out_type": VType.INT32}
F32 = {"in_type": VType.FP32, "out_type": VType.FP32}
FPID = {"scale": F32_ONE, "bias": 0}

# (config, a, b, params, expected output container)
HAND = [
    # requantisation: (t + bias) · M / 2^shift, round half to even, int32 saturation
    (I32, 5, 0, {"shift": 1}, 2),  # 2.5 → 2
    (I32, 7, 0, {"shift": 1}, 4),  # 3.5 → 4
    (I32, -5 & 0xFFFFFFFF, 0, {"shift": 1}, -2 & 0xFFFFFFFF),  # -2.5 → -2
    (I32, -7 & 0xFFFFFFFF, 0, {"shift": 1}, -4 & 0xFFFFFFFF),  # -3.5 → -4
    (I32, -1 & 0xFFFFFFFF, 0, {"shift": 1}, 0),  # -0.5 → 0
    (I32, 6, 0, {"shift": 2}, 2),  # 1.5 → 2
    (I32, 9, 0, {"shift": 2}, 2),  # 2.25 → 2
    (I32, 11, 0, {"shift": 2}, 3),  # 2.75 → 3
    (I32, 3, 0, {"scale": 3, "bias": 2}, 15),  # (3 + 2) · 3
    (I32, 0x7FFFFFFF, 0, {"bias": 1}, 0x80000000),  # t + bias wraps
    (I32, 0x7FFFFFFF, 0, {"scale": 0x7FFFFFFF}, 0x7FFFFFFF),  # saturates high
    (I32, 0x7FFFFFFF, 0, {"scale": -2 & 0xFFFFFFFF}, 0x80000000),  # saturates low
    (I32, 0x80000000, 0, {"scale": 0x80000000, "shift": 62}, 1),  # 2^62 / 2^62
    (I32, 0x80000000, 0, {"scale": 0x80000000, "shift": 63}, 0),  # 0.5 → 0
    (I32, 0x80000000, 0, {"scale": 0xC0000000, "shift": 63}, 0),  # 2^61/2^63 = 0.25 → 0
    (I32, 0x80000000, 0, {"scale": 0x80000001, "shift": 63}, 0),  # 0.5 - 2^-32 → 0
    (I32, 0x80000000, 0, {"scale": 0x7FFFFFFF, "shift": 62}, -1 & 0xFFFFFFFF),  # -1 + 2^-31
    (I32, 1 << 30, 0, {"scale": 3 << 29, "shift": 60}, 2),  # 1.5 → 2
    (I32, 1 << 29, 0, {"scale": 5 << 28, "shift": 58}, 2),  # 2.5 → 2
    ({**I32, "op": Op.ADD}, 0x7FFFFFFF, 1, {}, 0x80000000),  # int add wraps
    ({**I32, "op": Op.MAX}, -3 & 0xFFFFFFFF, 2, {}, 2),
    ({**I32, "op": Op.MAX}, 0x80000000, 0x7FFFFFFF, {}, 0x7FFFFFFF),
    # int8 in and out, zero point after func, saturation
    ({"in_type": VType.INT8, "out_type": VType.INT8}, 0xFFFFFF80, 0, {}, 0x80),  # -128
    ({"in_type": VType.INT8, "out_type": VType.INT8, "zero_point": 50}, 100, 0, {}, 0x7F),
    ({"in_type": VType.INT8, "out_type": VType.INT8, "zero_point": -50}, 0x9C, 0, {}, 0x80),
    ({"in_type": VType.INT8, "out_type": VType.INT8, "zero_point": 3}, 0x9C, 0, {}, 0x9F),  # -97
    ({"in_type": VType.INT8, "out_type": VType.INT32, "zero_point": 3}, 0x9C, 0, {}, 0xFFFFFF9C),
    ({"in_type": VType.INT8, "op": Op.ADD, "out_type": VType.INT32}, 0x80, 0x80, {}, 0xFFFFFF00),
    (
        {"in_type": VType.INT8, "out_type": VType.INT8, "func": Func.RELU, "zero_point": -10},
        0xF0,  # -16
        0,
        {},
        0xF6,  # relu(-16) = 0, then + zero point: -10
    ),
    # int func
    ({**I32, "func": Func.RELU}, -5 & 0xFFFFFFFF, 0, {}, 0),
    ({**I32, "func": Func.CLAMP, "clamp_lo": -5, "clamp_hi": 5}, 7, 0, {}, 5),
    ({**I32, "func": Func.CLAMP, "clamp_lo": -5, "clamp_hi": 5}, -9 & 0xFFFFFFFF, 0, {}, -5),
    ({**I32, "func": Func.CLAMP, "clamp_lo": 5, "clamp_hi": -5}, 0, 0, {}, -5),  # lo > hi: hi
    # int → fp
    ({**I32, "out_type": VType.FP32}, (1 << 24) + 1, 0, {}, 0x4B80_0000),  # tie: stays even
    ({**I32, "out_type": VType.FP32}, (1 << 24) + 3, 0, {}, 0x4B80_0002),  # tie: up to even
    ({**I32, "out_type": VType.FP32}, 0x80000000, 0, {}, 0xCF00_0000),  # -2^31
    ({**I32, "out_type": VType.FP32}, 0x7FFFFFFF, 0, {}, 0x4F00_0000),  # rounds to 2^31
    ({**I32, "out_type": VType.FP32}, -3 & 0xFFFFFFFF, 0, {}, 0xC040_0000),
    ({**I32, "out_type": VType.FP16}, 65520, 0, {}, 0x7C00),  # tie above 65504: inf
    ({**I32, "out_type": VType.FP16, "saturate": 1}, 65520, 0, {}, 0x7BFF),
    ({**I32, "out_type": VType.BF16}, 0x7FFFFFFF, 0, {}, 0x4F00),
    # fp ACT: x · scale + bias, two roundings
    (F32, f32(1.5), 0, {**FPID}, f32(1.5)),
    (F32, 0x8000_0000, 0, {**FPID}, 0x0000_0000),  # -0 · 1.0 + 0.0 = +0
    (F32, 0x8000_0000, 0, {"scale": F32_ONE, "bias": 0x8000_0000}, 0x8000_0000),  # + -0: -0
    (F32, f32(3.0), 0, {"scale": f32(0.5), "bias": f32(1.0)}, f32(2.5)),
    (F32, 0x7F7F_FFFF, 0, {"scale": f32(2.0), "bias": f32(-1e38)}, 0x7F80_0000),  # not fused
    (F32, 0x7F80_0001, 0, {**FPID}, 0x7FC0_0000),  # sNaN in: canonical NaN
    (F32, f32(1.0), 0, {"scale": 0x7F80_0000, "bias": 0xFF80_0000}, 0x7FC0_0000),  # inf - inf
    ({**F32, "in_type": VType.BF16}, 0x3F80, 0, {**FPID}, F32_ONE),  # widened exactly
    ({**F32, "in_type": VType.FP16}, 0x0001, 0, {**FPID}, 0x3380_0000),  # 2^-24 subnormal
    ({**F32, "in_type": VType.FP16}, 0x83FF, 0, {**FPID}, 0xB87F_C000),  # -(1023·2^-24)
    ({**F32, "in_type": VType.FP16}, 0xFC00, 0, {**FPID}, 0xFF80_0000),  # -inf
    # fp op
    ({**F32, "op": Op.ADD}, f32(1.0), f32(2.0**-24), {**FPID}, F32_ONE),  # tie: stays even
    ({**F32, "op": Op.MAX}, 0x0000_0000, 0x8000_0000, {**FPID}, 0x0000_0000),  # max(+0, -0)
    ({**F32, "op": Op.MAX}, 0x8000_0000, 0x0000_0000, {**FPID}, 0x0000_0000),  # max(-0, +0)
    (
        {**F32, "op": Op.MAX},
        0x8000_0000,
        0x8000_0000,
        {"scale": F32_ONE, "bias": 0x8000_0000},
        0x8000_0000,  # max(-0, -0) · 1 + -0 = -0
    ),
    ({**F32, "op": Op.MAX}, 0x7FC0_0000, f32(1.0), {**FPID}, 0x7FC0_0000),
    ({**F32, "op": Op.MAX}, f32(1.0), 0xFF80_0001, {**FPID}, 0x7FC0_0000),
    ({**F32, "op": Op.MAX}, 0xFF80_0000, f32(-1.0), {**FPID}, f32(-1.0)),
    ({**F32, "op": Op.MAX}, 0xBF80_0001, 0xBF80_0000, {**FPID}, 0xBF80_0000),  # -1 - ulp, -1
    ({**F32, "op": Op.MAX}, 0x3F80_0001, 0x3F80_0000, {**FPID}, 0x3F80_0001),  # 1 + ulp, 1
    ({**F32, "op": Op.MAX}, 0x8000_0001, 0x8000_0000, {**FPID}, 0x0000_0000),  # max is -0: +0
    ({**F32, "op": Op.MAX, "in_type": VType.BF16}, 0xC000, 0xBF80, {**FPID}, f32(-1.0)),
    # fp func
    ({**F32, "func": Func.RELU}, f32(-1.0), 0, {**FPID}, 0),
    ({**F32, "func": Func.RELU}, 0x8000_0000, 0, {"scale": F32_ONE, "bias": 0x8000_0000}, 0),
    ({**F32, "func": Func.RELU}, 0x7FC0_0000, 0, {**FPID}, 0x7FC0_0000),
    ({**F32, "func": Func.RELU}, f32(2.0), 0, {**FPID}, f32(2.0)),
    ({**F32, "func": Func.CLAMP, "clamp_lo": f32(-1), "clamp_hi": f32(6)}, f32(7), 0, FPID, f32(6)),
    (
        {**F32, "func": Func.CLAMP, "clamp_lo": f32(-1), "clamp_hi": f32(6)},
        0xFF80_0000,
        0,
        FPID,
        f32(-1),
    ),
    (
        {**F32, "func": Func.CLAMP, "clamp_lo": 0x7FC0_0000, "clamp_hi": f32(6)},
        f32(1),
        0,
        FPID,
        0x7FC0_0000,
    ),
    # fp → narrow fp
    ({**F32, "out_type": VType.BF16}, 0x3F80_8000, 0, FPID, 0x3F80),  # tie, even
    ({**F32, "out_type": VType.FP16}, 0x477F_F000, 0, FPID, 0x7C00),  # 65520 → inf
    ({**F32, "out_type": VType.FP16, "saturate": 1}, 0x477F_F000, 0, FPID, 0x7BFF),
    ({**F32, "out_type": VType.FP16, "saturate": 1}, 0xFF80_0000, 0, FPID, 0xFBFF),  # -inf
    ({**F32, "out_type": VType.FP32, "saturate": 1}, 0xFF80_0000, 0, FPID, 0xFF80_0000),
    ({**F32, "out_type": VType.BF16}, 0x7FC0_0000, 0, FPID, 0x7FC0),
    # fp → int: round half to even, saturate, NaN → 0 (+ zero point)
    ({**F32, "out_type": VType.INT32}, f32(2.5), 0, FPID, 2),
    ({**F32, "out_type": VType.INT32}, f32(3.5), 0, FPID, 4),
    ({**F32, "out_type": VType.INT32}, f32(-2.5), 0, FPID, -2 & 0xFFFFFFFF),
    ({**F32, "out_type": VType.INT32}, f32(0.5), 0, FPID, 0),
    ({**F32, "out_type": VType.INT32}, f32(0.75), 0, FPID, 1),
    ({**F32, "out_type": VType.INT32}, 0x0000_0001, 0, FPID, 0),
    ({**F32, "out_type": VType.INT32}, f32(3e9), 0, FPID, 0x7FFFFFFF),
    ({**F32, "out_type": VType.INT32}, f32(-3e9), 0, FPID, 0x80000000),
    ({**F32, "out_type": VType.INT32}, f32(-(2.0**31)), 0, FPID, 0x80000000),
    ({**F32, "out_type": VType.INT32}, f32(2.0**31), 0, FPID, 0x7FFFFFFF),
    ({**F32, "out_type": VType.INT32}, f32(2.0**30 + 128), 0, FPID, (1 << 30) + 128),
    ({**F32, "out_type": VType.INT32}, 0x7FC0_0000, 0, FPID, 0),
    ({**F32, "out_type": VType.INT8, "zero_point": 5}, 0x7FC0_0000, 0, FPID, 5),
    ({**F32, "out_type": VType.INT8, "zero_point": 5}, f32(-2.5), 0, FPID, 3),
    ({**F32, "out_type": VType.INT8, "zero_point": -5}, f32(-130.0), 0, FPID, 0x80),
    ({**F32, "out_type": VType.INT8}, 0x7F80_0000, 0, FPID, 0x7F),
    ({**F32, "out_type": VType.INT8}, f32(1e10), 0, FPID, 0x7F),
    (
        {**F32, "out_type": VType.INT8, "in_type": VType.BF16},
        0x4318,  # 152.0
        0,
        {"scale": f32(0.25), "bias": f32(-0.5)},
        38,  # 152 · 0.25 - 0.5 = 37.5 → 38
    ),
]


def _hand_params(extra):
    params = {"scale": 1, "bias": 0, "shift": 0}
    params.update(extra)
    return {k: v & 0xFFFFFFFF for k, v in params.items()}


@pytest.mark.parametrize("case", range(len(HAND)))
def test_golden_hand_worked(case):
    config, a, b, params, want = HAND[case]
    got = _one(config, a, b, **_hand_params(params))
    assert got == want & 0xFFFFFFFF, f"got 0x{got:08X}, want 0x{want & 0xFFFFFFFF:08X}"


def test_golden_requant_exact():
    """The requantiser against Python integers (exact rational rounding)."""
    rng = np.random.default_rng(7)
    n = 20_000
    t = rng.integers(-(1 << 31), 1 << 31, n)
    bias = rng.integers(-(1 << 31), 1 << 31, n)
    m = np.where(rng.random(n) < 0.5, rng.integers(-(1 << 31), 1 << 31, n), rng.integers(-9, 9, n))
    s = rng.integers(0, 64, n)
    got = golden._requant(
        (t & 0xFFFFFFFF).astype(np.uint32),
        (m & 0xFFFFFFFF).astype(np.uint32),
        (bias & 0xFFFFFFFF).astype(np.uint32),
        s,
    )
    for i in range(n):
        tb = (int(t[i]) + int(bias[i]) + (1 << 31)) % (1 << 32) - (1 << 31)
        num, den = tb * int(m[i]), 1 << int(s[i])
        q, r = divmod(num, den)  # floor
        if 2 * r > den or (2 * r == den and q % 2):
            q += 1
        q = min(max(q, -(1 << 31)), (1 << 31) - 1)
        assert int(got[i]) == q & 0xFFFFFFFF, (int(t[i]), int(bias[i]), int(m[i]), int(s[i]))


def test_golden_errors():
    assert golden.row_error({"op": 3})
    assert golden.row_error({"func": 3})
    assert golden.row_error({"in_type": 5})
    assert golden.row_error({"out_type": 7})
    assert not golden.row_error({"in_type": VType.BF16})
    assert golden.row_error({"in_type": VType.BF16}, has_fp=False)
    assert golden.row_error({"out_type": VType.FP32}, has_fp=False)
    assert not golden.row_error({"in_type": VType.INT8, "out_type": VType.INT8}, has_fp=False)
    with pytest.raises(ValueError, match="unknown configuration field"):
        golden.row_error({"opp": 1})


# ---- hardware against the golden model -------------------------------------------------------


def test_hand_worked_rows_in_hardware():
    """The hand-worked rows through the hardware (one lane each; the others random)."""
    rng = np.random.default_rng(11)
    n = max(FP.rows, FP.cols)
    program = []
    for i, (config, a, b, params, _) in enumerate(HAND):
        entries = param_entries(
            {k: np.full(n, v, dtype=np.uint32) for k, v in _hand_params(params).items()}
        )
        ra = random_elements(rng, n, VType(config.get("in_type", VType.INT32)))
        rb = random_elements(rng, n, VType(config.get("in_type", VType.INT32)))
        ra[i % n], rb[i % n] = a, b
        program += entries + [Row(config, ra, rb, tag=i)]
    result = run_program(FP, program)
    check_program(FP, program, result)
    got = [int(result["data"][i, i % n]) for i in range(len(HAND))]
    assert got == [want & 0xFFFFFFFF for *_, want in HAND]


def _edge_ints():
    """int32 values where int → fp32 rounding and normalisation change: ±2^k, ±(2^k ± 1),
    and ties and near-ties at 2^24 … 2^31."""
    vals = {0, 1, -1, 0x7FFFFFFF, -0x80000000}
    for k in range(32):
        for d in (-1, 0, 1):
            vals |= {(1 << k) + d, -(1 << k) + d}
    for k in range(24, 31):
        half = 1 << (k - 24)
        for base in ((1 << k) + (1 << (k - 23)), (1 << k) + (2 << (k - 23))):  # odd, even
            vals |= {base + half, base - half, base + half - 1}
            vals |= {-(base + half), -(base - half)}
            for j in range(k - 24):  # a tie plus one sticky bit, at every sticky position
                vals |= {base + half + (1 << j), -(base + half + (1 << j))}
    return sorted(v for v in vals if -(1 << 31) <= v < (1 << 31))


def _edge_floats():
    """fp32 values where fp32 → int32 rounding and saturation change."""
    vals = [0.5, 1.5, 2.5, 0.49999997, 0.50000006, 1.0, 2.0**23 + 0.5, 2.0**23 + 1.5]
    vals += [2.0**24, 2.0**30 + 128, 2.0**31 - 128, 2.0**31, 2.0**32, 1e30, 2.0**-126]
    vals += [k + f for k in (-3, 7, 100, 127, 128) for f in (0.25, 0.5, 0.75)]
    bits = np.array(vals + [-v for v in vals], dtype=np.float32).view(np.uint32)
    return np.concatenate([bits, [0x7F800000, 0xFF800000, 0x7FC00000, 0x80000000, 0x1]])


@pytest.mark.parametrize("direction", ["int_to_fp", "fp_to_int"])
def test_domain_conversions_directed(direction):
    """Edge values of int32 → fp32/fp16/bf16 and fp32 → int32/int8 through the hardware."""
    n = max(FP.rows, FP.cols)
    if direction == "int_to_fp":
        values = (np.array(_edge_ints(), dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32)
        params, t_in, outs = golden.int_identity_params(n), VType.INT32, (VType.FP32,)
        outs += (VType.FP16, VType.BF16)
    else:
        values = _edge_floats().astype(np.uint32)
        params, t_in, outs = golden.fp_identity_params(n), VType.FP32, (VType.INT32, VType.INT8)
    values = np.resize(values, -(-len(values) // n) * n).reshape(-1, n)
    program = param_entries(params)
    for t_out in outs:
        cfg = {"in_type": t_in, "out_type": t_out, "zero_point": -3}
        program += [Row(cfg, r, np.zeros(n, np.uint32), tag=len(program)) for r in values]
    result = run_program(FP, program)
    check_program(FP, program, result)
    if direction == "int_to_fp":  # and the golden model against numpy's own conversion
        f32_rows = result["data"][: len(values)]
        ref = values.view(np.int32).astype(np.float64).astype(np.float32).view(np.uint32)
        np.testing.assert_array_equal(f32_rows, ref)


def _all_combinations(rng, n, *, has_fp, rows_per=2):
    """Two segments (int params, fp params) covering every op/in/out/func combination."""
    program = []
    domains = (False, True) if has_fp else (False,)
    out_types = list(VType) if has_fp else [VType.INT8, VType.INT32]
    for fp in domains:
        in_types = [VType.FP16, VType.BF16, VType.FP32] if fp else [VType.INT8, VType.INT32]
        configs = []
        for op in Op:
            for t_in in in_types:
                for t_out in out_types:
                    for func in Func:
                        base = random_config(rng, fp=fp, has_fp=has_fp)
                        cfg = {**base, "op": op, "in_type": t_in, "out_type": t_out, "func": func}
                        configs += [cfg] * rows_per
        order = rng.permutation(len(configs))
        configs = [configs[i] for i in order]
        program += param_entries(random_params(rng, n, fp))
        program += random_rows(rng, len(configs), n, configs=configs, tag0=len(program))
    return program


def test_every_combination_fp_build():
    """Every (op, in_type, out_type, func), no stalls: bit-exact, exact latency, one row per
    cycle within a segment."""
    rng = np.random.default_rng(2024)
    n = max(FP.rows, FP.cols)
    program = _all_combinations(rng, n, has_fp=True)
    result = run_program(FP, program)
    check_program(FP, program, result)
    lat = result["delivered"] - result["accepted"]
    assert set(lat.tolist()) == {golden.latency(FP)}
    # Rows of one segment go back to back; the second segment's parameter writes wait
    # for the first segment's rows to pass the parameter stages.
    gaps = np.diff(result["accepted"])
    assert np.count_nonzero(gaps != 1) == 1
    assert gaps.max() > 1 and gaps.max() <= VectorEngine(FP).param_drain + 4


def test_int_only_build():
    """Int-only build: every int combination, FP types and unassigned codes flagged as errors
    with zero data, the rows around them unaffected."""
    rng = np.random.default_rng(77)
    n = max(INT.rows, INT.cols)
    program = _all_combinations(rng, n, has_fp=False)
    bad = [
        {"in_type": VType.BF16},
        {"in_type": VType.FP32, "out_type": VType.INT8},
        {"out_type": VType.FP16},
        {"op": 3},
        {"func": 3},
        {"in_type": 6},
        {"out_type": 5},
    ]
    program += random_rows(rng, 7, n, configs=bad, tag0=900)
    program += random_rows(rng, 20, n, fp=False, has_fp=False, tag0=950)
    result = run_program(INT, program)
    check_program(INT, program, result)
    assert result["error"].sum() == len(bad)
    assert set((result["delivered"] - result["accepted"]).tolist()) == {golden.latency(INT)}


@pytest.mark.parametrize(
    "stall,backpressure,fifo", [(0.3, 0.5, None), (0.0, 0.8, None), (0.2, 0.3, 3)]
)
def test_random_program_with_stalls(stall, backpressure, fifo, seed):
    """Random segments with parameter writes, illegal codes, random stalls/backpressure."""
    s = seed(31 + int(stall * 10) + int(backpressure * 100))
    rng = np.random.default_rng(s)
    n = max(FP.rows, FP.cols)
    program = random_program(rng, 400, n, has_fp=True)
    result = run_program(
        FP, program, stall=stall, backpressure=backpressure, seed=s, fifo_depth=fifo
    )
    check_program(FP, program, result)


def test_parameter_write_ordering():
    """A write of each field right after a row: the row uses the old value, the next row the
    new one, for every field and both domains."""
    rng = np.random.default_rng(5)
    n = max(FP.rows, FP.cols)
    program = []
    for fp in (False, True):
        program += param_entries(random_params(rng, n, fp))
        for field in ParamField:
            new = random_params(rng, n, fp)[field.name.lower()]
            program += random_rows(rng, 3, n, fp=fp, tag0=len(program))
            program.append(Param(field, new))
            program += random_rows(rng, 3, n, fp=fp, tag0=len(program) + 10)
    result = run_program(FP, program)
    check_program(FP, program, result)


# ---- pooling as ADD/MAX/ACT rows -------------------------------------------------------------


def _pool_windows(x):
    """The four 2×2-window operands of a (H, W, C) map, each (H/2 · W/2, C)."""
    h, w, c = x.shape
    return [x[i::2, j::2].reshape(-1, c) for i in (0, 1) for j in (0, 1)]


def _pass(p, config, params, a, b, *, hardware=True):
    """One pass of rows through the golden model and (if asked) the hardware."""
    n = max(p.rows, p.cols)
    want = golden.run(config, params, a, b, has_fp=p.has_fp)
    if hardware:
        program = param_entries({k: np.asarray(v, dtype=np.uint32) for k, v in params.items()})
        program += [Row(config, a[i], b[i], tag=i) for i in range(len(a))]
        got = run_program(p, program)["data"]
        np.testing.assert_array_equal(got, want.reshape(-1, n))
    return want


def test_max_pool_int8():
    """2×2 max-pool of an int8 (4, 4, C) map: MAX(MAX(x00, x01), MAX(x10, x11)) per window."""
    n = max(FP.rows, FP.cols)
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (4, 4, n)).astype(np.int8)
    w00, w01, w10, w11 = (w.view(np.uint8).astype(np.uint32) for w in _pool_windows(x))
    cfg = {"op": Op.MAX, "in_type": VType.INT8, "out_type": VType.INT8}
    ident = golden.int_identity_params(n)
    top = _pass(FP, cfg, ident, w00, w01)
    bottom = _pass(FP, cfg, ident, w10, w11)
    pooled = _pass(FP, cfg, ident, top, bottom)
    reference = x.reshape(2, 2, 2, 2, n).max(axis=(1, 3)).reshape(-1, n)
    np.testing.assert_array_equal(pooled.astype(np.uint8).view(np.int8), reference)


def test_avg_pool_bf16():
    """2×2 average pool of a bf16 map: fp32 sums (x00 + x01) + (x10 + x11) by ADD rows with
    identity parameters, then an ACT row with scale 0.25 and bf16 output."""
    n = max(FP.rows, FP.cols)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 4, n)).astype(np.float32).astype(ml_dtypes.bfloat16)
    w = [v.view(np.uint16).astype(np.uint32) for v in _pool_windows(x)]
    ident = golden.fp_identity_params(n)
    add16 = {"op": Op.ADD, "in_type": VType.BF16, "out_type": VType.FP32}
    add32 = {"op": Op.ADD, "in_type": VType.FP32, "out_type": VType.FP32}
    top = _pass(FP, add16, ident, w[0], w[1])
    bottom = _pass(FP, add16, ident, w[2], w[3])
    total = _pass(FP, add32, ident, top, bottom)
    quarter = {**ident, "scale": np.full(n, f32(0.25), dtype=np.uint32)}
    act = {"op": Op.ACT, "in_type": VType.FP32, "out_type": VType.BF16}
    avg = _pass(FP, act, quarter, total, np.zeros_like(total))
    # Plain numpy: fp32 sums in the same order, an exact × 0.25, one rounding to bf16.
    f = [v.astype(np.float32) for v in _pool_windows(x)]
    reference = (((f[0] + f[1]) + (f[2] + f[3])) * np.float32(0.25)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(avg.astype(np.uint16), reference.view(np.uint16))


def test_avg_pool_int8_requant():
    """2×2 average pool of an int8 map in the int domain: int32 sums, then an ACT row that
    divides by 4 (M = 1, shift = 2, round half to even) into int8 with a zero point."""
    rng = np.random.default_rng(6)
    n = max(INT.rows, INT.cols)
    x = rng.integers(-128, 128, (4, 6, n)).astype(np.int8)
    w = [v.view(np.uint8).astype(np.uint32) for v in _pool_windows(x)]
    ident = golden.int_identity_params(n)
    add8 = {"op": Op.ADD, "in_type": VType.INT8, "out_type": VType.INT32}
    add32 = {"op": Op.ADD, "in_type": VType.INT32, "out_type": VType.INT32}
    top = _pass(INT, add8, ident, w[0], w[1])
    bottom = _pass(INT, add8, ident, w[2], w[3])
    total = _pass(INT, add32, ident, top, bottom, hardware=False)  # golden only: one pass less
    quarter = {**ident, "shift": np.full(n, 2, dtype=np.uint32)}
    act = {"op": Op.ACT, "in_type": VType.INT32, "out_type": VType.INT8, "zero_point": 3}
    avg = _pass(INT, act, quarter, total, np.zeros_like(total))
    s = sum(v.astype(np.int64) for v in _pool_windows(x))
    reference = np.clip(np.round(s / 4) + 3, -128, 127)  # numpy rounds half to even
    np.testing.assert_array_equal(avg.astype(np.uint8).view(np.int8), reference)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["fp", "int", "fp1"])
def test_random_sweep(design, seed):
    """Long random programs with stalls on three designs (one-lane FP included)."""
    p = {"fp": FP, "int": INT, "fp1": NCoreParams(rows=1, cols=1, dtypes=("bf16",))}[design]
    s = seed(500 + len(design))
    rng = np.random.default_rng(s)
    n = max(p.rows, p.cols)
    program = random_program(rng, 3000, n, has_fp=p.has_fp)
    result = run_program(p, program, stall=0.2, backpressure=0.4, seed=s)
    check_program(p, program, result)
