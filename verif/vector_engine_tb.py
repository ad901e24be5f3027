"""cocotb bench of the vector engine (top ``vector_engine``), and its stimulus.

A *program* is a list of entries, sent in order: :class:`Row` (a configuration, operand rows
``a`` and ``b``, ``last`` and ``tag``) and :class:`Param` (one per-lane parameter field).
The stimulus functions here are plain numpy, shared with the Amaranth-simulator tests
(``tests/test_vector_engine.py``); :func:`expected` runs a program through the golden model
(:func:`ncore.golden.vector_engine.run`, with the parameters in force at each row).

The bench (:class:`VectorEngineTB`) drives ``i_row`` and ``i_param`` from one coroutine in
program order, with random idle cycles, takes ``o_row`` with random backpressure, and
compares every output row bit for bit (data, ``error``, ``last``, ``tag``) with the golden
model. With no stalls it also checks the latency of every row and one row per cycle.

Knobs (environment, set by the runner): ``NCORE_SEED``, ``NCORE_ROWS`` (rows of the random
programs), ``NCORE_RATE_ROWS`` (rows of the latency/rate test).
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from ..golden import vector_engine as golden
from ..golden.vector_engine import FP_TYPES, Func, Op, ParamField, VType
from ..hw.vector_engine import config_layout, out_layout, param_layout, row_layout
from .benchenv import BenchEnv, cycles_now, start_clock
from .stimulus import random_operands
from .streams import StreamDriver, StreamMonitor

__all__ = [
    "Param",
    "Row",
    "config_bits",
    "expected",
    "random_config",
    "random_elements",
    "random_params",
    "random_program",
]

INT_TYPES = (VType.INT8, VType.INT32)
# fmt: off
SPECIALS32 = [0x0000_0000, 0x8000_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0001,
              0x7F80_0001, 0x0000_0001, 0x8000_0001, 0x007F_FFFF, 0x0080_0000, 0x7F7F_FFFF,
              0xFF7F_FFFF, 0x3F80_0000, 0xBF80_0000, 0x4F00_0000, 0xCF00_0000, 0x477F_F000,
              0x3F00_0000, 0x3FC0_0000, 0x4020_0000, 0xBFC0_0000]
INT_SPECIALS = [0, 1, -1, 2, -2, 127, -128, 0x7FFF_FFFF, -0x8000_0000, 1 << 24, (1 << 24) + 1]
# fmt: on


@dataclass
class Row:
    config: dict
    a: np.ndarray  # uint32 containers, one per lane
    b: np.ndarray
    last: int = 0
    tag: int = 0


@dataclass
class Param:
    field: int  # ParamField code (3: writes nothing)
    data: np.ndarray  # uint32, one per lane


def config_bits(config: dict) -> int:
    """Bits of ``config`` in :data:`~ncore.hw.vector_engine.config_layout`.

    Legal configurations are packed by the layout itself; unassigned enum codes, which the
    layout refuses to pack, are placed at the layout's field offsets.
    """
    full = {**golden.CONFIG_DEFAULTS, **config}
    full = {k: int(v) for k, v in full.items()}
    for name in ("clamp_lo", "clamp_hi"):
        full[name] &= 0xFFFF_FFFF
    try:
        return config_layout.const(full).as_bits()
    except ValueError:
        bits = 0
        for name, field in config_layout:
            bits |= (full[name] & ((1 << field.width) - 1)) << field.offset
        return bits


def row_payload(row: Row, n_lanes: int):
    return {
        "config": config_layout.from_bits(config_bits(row.config)),
        "a": [int(x) for x in row.a[:n_lanes]],
        "b": [int(x) for x in row.b[:n_lanes]],
        "last": row.last,
        "tag": row.tag,
    }


def param_payload(param: Param, layout):
    """The transfer of ``param`` on an ``i_param`` of ``layout``, as a layout constant (the
    layout refuses to pack the unassigned field code 3 from a dict)."""
    bits = layout.const({"field": 0, "data": [int(x) & 0xFFFF_FFFF for x in param.data]})
    field = layout["field"]
    bits = bits.as_bits() | (int(param.field) & ((1 << field.width) - 1)) << field.offset
    return layout.from_bits(bits)


# ---- stimulus --------------------------------------------------------------------------------


def _float_bits(rng, shape, special):
    """fp32 bits: normal values of log-uniform magnitude, with specials."""
    mag = np.exp2(rng.uniform(-30, 30, shape)) * rng.choice([-1, 1], shape)
    bits = mag.astype(np.float32).view(np.uint32)
    bits = np.where(rng.random(shape) < 0.2, rng.integers(0, 1 << 32, shape), bits)
    pick = rng.random(shape) < special
    return np.where(pick, rng.choice(np.array(SPECIALS32, dtype=np.uint32), shape), bits).astype(
        np.uint32
    )


def random_elements(rng, shape, vtype, special: float = 0.1) -> np.ndarray:
    """Random operand containers of ``vtype`` (uint32). Narrow types get random upper bits,
    which the engine must ignore."""
    garbage = rng.integers(0, 1 << 32, shape, dtype=np.uint64).astype(np.uint32)
    if vtype == VType.INT8:
        x = random_operands(rng, shape, "int8", special).view(np.uint8).astype(np.uint32)
        return (garbage & ~np.uint32(0xFF)) | x
    if vtype in (VType.FP16, VType.BF16):
        x = random_operands(rng, shape, "fp16" if vtype == VType.FP16 else "bf16", special)
        x = np.where(rng.random(shape) < 0.2, rng.integers(0, 1 << 16, shape), x)
        return (garbage & ~np.uint32(0xFFFF)) | x.astype(np.uint32)
    if vtype == VType.INT32:
        small = rng.integers(-5000, 5001, shape)
        big = rng.integers(-(1 << 31), 1 << 31, shape)
        x = np.where(rng.random(shape) < 0.5, small, big)
        pick = rng.random(shape) < special
        x = np.where(pick, rng.choice(np.array(INT_SPECIALS), shape), x)
        return (x & 0xFFFF_FFFF).astype(np.uint32)
    return _float_bits(rng, shape, special)


def random_config(rng, *, fp: bool | None = None, has_fp: bool = True, illegal: float = 0.0):
    """A random configuration; ``fp`` picks the compute domain (None: either)."""
    if fp is None:
        fp = has_fp and rng.random() < 0.5
    in_types = sorted(FP_TYPES) if fp else list(INT_TYPES)
    out_types = list(VType) if has_fp else list(INT_TYPES)
    cfg = {
        "op": Op(int(rng.integers(0, 3))),
        "in_type": VType(int(rng.choice(in_types))),
        "out_type": VType(int(rng.choice(out_types))),
        "func": Func(int(rng.integers(0, 3))),
        "saturate": int(rng.integers(0, 2)),
        "zero_point": int(rng.integers(-128, 128)),
    }
    if fp:
        lo, hi = _float_bits(rng, 2, 0.1)
        if rng.random() < 0.8:  # mostly ordered bounds
            f = np.sort(np.array([lo, hi], dtype=np.uint32).view(np.float32))
            lo, hi = f.view(np.uint32)
    else:
        lo, hi = rng.integers(-300, 300, 2)
        if rng.random() < 0.8:
            lo, hi = sorted((lo, hi))
    cfg["clamp_lo"], cfg["clamp_hi"] = int(lo) & 0xFFFF_FFFF, int(hi) & 0xFFFF_FFFF
    if rng.random() < illegal:
        name, value = [
            ("op", 3),
            ("func", 3),
            ("in_type", int(rng.integers(5, 8))),
            ("out_type", int(rng.integers(5, 8))),
        ][int(rng.integers(0, 4))]
        cfg[name] = value
    return cfg


def random_params(rng, n_lanes: int, fp: bool) -> dict:
    """Per-lane parameters for the ``fp`` or int domain: realistic requantisers and scales,
    with identity, extreme and special values mixed in."""
    if fp:
        scale = _float_bits(rng, n_lanes, 0.15)
        bias = _float_bits(rng, n_lanes, 0.15)
        bias = np.where(rng.random(n_lanes) < 0.3, 0, bias).astype(np.uint32)
        scale = np.where(rng.random(n_lanes) < 0.2, 0x3F80_0000, scale).astype(np.uint32)
        shift = rng.integers(0, 64, n_lanes)
    else:
        kind = rng.integers(0, 4, n_lanes)
        m_real = rng.integers(1 << 29, 1 << 31, n_lanes)  # a typical requant multiplier
        m_any = rng.integers(-(1 << 31), 1 << 31, n_lanes)
        m_small = rng.integers(-8, 9, n_lanes)
        scale = np.select([kind == 0, kind == 1, kind == 2], [m_real, m_any, m_small], 1)
        shift = np.select(
            [kind == 0, kind == 1, kind == 2],
            [
                rng.integers(30, 48, n_lanes),
                rng.integers(0, 64, n_lanes),
                rng.integers(0, 4, n_lanes),
            ],
            0,
        )
        bias = np.where(
            rng.random(n_lanes) < 0.5,
            rng.integers(-1000, 1001, n_lanes),
            rng.integers(-(1 << 31), 1 << 31, n_lanes),
        )
    return {
        "scale": (np.asarray(scale) & 0xFFFF_FFFF).astype(np.uint32),
        "bias": (np.asarray(bias) & 0xFFFF_FFFF).astype(np.uint32),
        "shift": np.asarray(shift).astype(np.uint32),
    }


def param_entries(params: dict) -> list[Param]:
    return [
        Param(ParamField.SCALE, params["scale"]),
        Param(ParamField.BIAS, params["bias"]),
        Param(ParamField.SHIFT, params["shift"]),
    ]


def random_rows(rng, n_rows, n_lanes, *, fp=None, has_fp=True, illegal=0.0, tag0=0, configs=None):
    """Rows with random configurations (or the given ones) and operands of their types."""
    rows = []
    for i in range(n_rows):
        cfg = (
            configs[i]
            if configs is not None
            else random_config(rng, fp=fp, has_fp=has_fp, illegal=illegal)
        )
        t = cfg.get("in_type", VType.INT32)
        t = VType(t) if t in set(VType) else VType.INT32
        rows.append(
            Row(
                cfg,
                random_elements(rng, n_lanes, t),
                random_elements(rng, n_lanes, t),
                last=int(rng.random() < 0.2),
                tag=(tag0 + i) & 0xFFFF,
            )
        )
    return rows


def random_program(rng, n_rows, n_lanes, *, has_fp=True, illegal=0.05, max_segment=24):
    """Segments of rows, each after a write of all three parameter fields for one domain
    (sometimes only one or two fields, or an unassigned field code)."""
    program = []
    while sum(isinstance(e, Row) for e in program) < n_rows:
        fp = bool(has_fp and rng.random() < 0.5)
        entries = param_entries(random_params(rng, n_lanes, fp))
        if program and rng.random() < 0.3:
            entries = [entries[int(rng.integers(0, 3))]]
        if rng.random() < 0.1:
            entries.append(Param(3, rng.integers(0, 1 << 32, n_lanes, dtype=np.uint64)))
        program += entries
        count = int(rng.integers(1, max_segment + 1))
        tag0 = sum(isinstance(e, Row) for e in program)
        program += random_rows(
            rng, count, n_lanes, fp=fp, has_fp=has_fp, illegal=illegal, tag0=tag0
        )
    return program


def expected(program, n_lanes: int, has_fp: bool = True):
    """(data ``(rows, lanes)`` uint32, error flags) of a program, from the golden model."""
    params = {k: np.zeros(n_lanes, dtype=np.uint32) for k in ("scale", "bias", "shift")}
    names = {ParamField.SCALE: "scale", ParamField.BIAS: "bias", ParamField.SHIFT: "shift"}
    data, errors = [], []
    for e in program:
        if isinstance(e, Param):
            if int(e.field) in (0, 1, 2):  # code 3 writes nothing
                field = names[ParamField(int(e.field))]
                params = {**params, field: (np.asarray(e.data) & 0xFFFF_FFFF).astype(np.uint32)}
            continue
        a = np.asarray(e.a, dtype=np.uint32).reshape(1, -1)
        b = np.asarray(e.b, dtype=np.uint32).reshape(1, -1)
        data.append(golden.run(e.config, params, a, b, has_fp=has_fp)[0])
        errors.append(golden.row_error(e.config, has_fp))
    return np.array(data, dtype=np.uint32).reshape(-1, n_lanes), np.array(errors, dtype=bool)


# ---- bench -----------------------------------------------------------------------------------


class VectorEngineTB:
    """Drivers on ``i_row``/``i_param`` (one coroutine, program order), monitor on ``o_row``."""

    def __init__(self, dut, env: BenchEnv, *, stall: float, backpressure: float, salt: int):
        self.dut = dut
        self.env = env
        self.p = env.params
        self.n = golden.lanes(self.p)
        self.tag_width = env.design["options"].get("tag_width", 16)
        self.rng = np.random.default_rng([env.seed, salt])
        clk = dut.clk
        self.rows = StreamDriver(
            dut, "i_row", row_layout(self.p, self.tag_width), clk, self.rng, stall
        )
        self.params = StreamDriver(dut, "i_param", param_layout(self.p), clk, self.rng, stall)
        self.out = StreamMonitor(
            dut, "o_row", out_layout(self.p, self.tag_width), clk, self.rng, backpressure
        )
        dut._log.info("ncore vector engine bench: %s, %s", self.p.tag(), env.rerun_hint())

    async def start(self):
        await start_clock(self.dut)

    async def run(self, program):
        """Send the program, collect one output per row; return (outputs, accept cycles,
        output cycles)."""
        rows = [e for e in program if isinstance(e, Row)]
        accepted, delivered, out = [], [], []

        async def send():
            for e in program:
                if isinstance(e, Row):
                    await self.rows.send(row_payload(e, self.n))
                    accepted.append(cycles_now() - 1)
                else:
                    await self.params.send(param_payload(e, self.params.layout))

        task = cocotb.start_soon(send())
        for _ in rows:
            out.append(await self.out.recv())
            delivered.append(cycles_now() - 1)
        await task
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        assert not self.dut.busy.value, "engine still busy after the last result"
        return out, np.array(accepted), np.array(delivered)

    def check(self, program, out):
        rows = [e for e in program if isinstance(e, Row)]
        want, want_err = expected(program, self.n, self.p.has_fp)
        got = np.array([[int(x) for x in r.data] for r in out], dtype=np.uint32)
        err = np.array([int(r.error) for r in out], dtype=bool)
        bad = np.argwhere(got != want)
        if len(bad):
            r, lane = bad[0]
            raise AssertionError(
                f"{len(bad)} mismatches; first at row {r} lane {lane}: got 0x{got[r, lane]:08X}, "
                f"golden 0x{want[r, lane]:08X}; config {rows[r].config}, "
                f"a 0x{int(rows[r].a[lane]):08X}, b 0x{int(rows[r].b[lane]):08X} "
                f"({self.env.rerun_hint()})"
            )
        np.testing.assert_array_equal(err, want_err, err_msg="error flags")
        mask = (1 << self.tag_width) - 1
        assert [int(r.tag) for r in out] == [e.tag & mask for e in rows], "tags out of order"
        assert [int(r.last) for r in out] == [e.last for e in rows], "last flags misplaced"


@cocotb.test()
async def test_latency_and_rate(dut):
    """Rows back to back with changing configurations: exact latency, one row per cycle."""
    env = BenchEnv.load()
    tb = VectorEngineTB(dut, env, stall=0.0, backpressure=0.0, salt=1)
    await tb.start()
    n_rows = int(env.knob("rate_rows", 64, int))
    program = param_entries(random_params(tb.rng, tb.n, False))
    program += random_rows(tb.rng, n_rows, tb.n, has_fp=tb.p.has_fp)
    out, acc, dlv = await tb.run(program)
    tb.check(program, out)
    lat = set((dlv - acc).tolist())
    assert lat == {golden.latency(tb.p)}, f"latency {lat}, golden {golden.latency(tb.p)}"
    assert np.all(np.diff(acc) == 1), "rows not accepted back to back"
    assert np.all(np.diff(dlv) == 1), "results not delivered back to back"
    env.write_summary(
        {"latency": golden.latency(tb.p), "rows_per_cycle": n_rows / (acc[-1] - acc[0] + 1)}
    )


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.3], backpressure=[0.0, 0.5])
async def test_random_program(dut, stall, backpressure):
    """Random segments (parameter writes, then rows of random configurations in one domain,
    some illegal), random idle cycles on both inputs, random output backpressure."""
    env = BenchEnv.load()
    salt = 2 + int(stall * 100) * 1000 + int(backpressure * 100)
    tb = VectorEngineTB(dut, env, stall=stall, backpressure=backpressure, salt=salt)
    await tb.start()
    program = random_program(tb.rng, int(env.knob("rows", 200, int)), tb.n, has_fp=tb.p.has_fp)
    out, _, _ = await tb.run(program)
    tb.check(program, out)
    env.write_summary({f"random_{stall}_{backpressure}": len(out)})
