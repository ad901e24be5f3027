"""The ncore instruction set, defined once as plain field tables.

Every instruction is one 512-bit little-endian word (64 bytes; bit 0 is bit 0 of byte 0).
The tables below are the single definition of every bit position: the hardware builds its
``amaranth.lib.data`` layouts from them (:mod:`ncore.hw.isa`), software encodes with
:func:`encode`, the golden model decodes with :func:`decode`, and ``docs/isa.md`` is
generated from them (``python -m ncore.isa``), with a test keeping all of it in step.
This module is plain Python so that the numpy golden model and the compiler can use it.

Spec format: a list of ``(name, width)`` for an unsigned field, ``(name, width, "s")`` for a
two's-complement field, ``(name, spec)`` for a nested struct and ``(name, spec, n)`` for an
array of ``n`` structs. Fields are laid out from bit 0 in list order.

Execution model (see docs/isa.md for the full text):

* The core fetches the program from DRAM and dispatches each instruction to the in-order
  queue of its engine: DMA (``DMA``), tensor (``LOADW``, ``MATMUL``), vector (``ACT``),
  send (``SEND``), receive (``RECV``) or control (``NOP``, ``END``, ``BARRIER``). Engines
  run concurrently; nothing reorders within a queue.
* Semaphores order engines: an instruction with ``wait_en`` does not start until semaphore
  ``wait_sem`` is non-zero, and takes one from it as it starts; one with ``signal_en`` adds
  one to ``signal_sem`` when it has completed (its last write is done).
* ``END`` stops fetching; it starts only when the other five queues are empty, and the core
  is done when it has run.
* Reserved bits and unused opcodes are illegal: the core stops with an error before the
  instruction has any effect.

Core-to-core links and the barrier (docs/core.md, "Links and barrier"):

* The ``cores`` cores of a chip form a ring: core ``c`` has one outgoing link to core
  ``(c + 1) mod cores`` and one incoming link from core ``(c − 1) mod cores`` (with one core
  the link loops back to the core itself). A link carries whole SBUF rows (``rows`` lanes of
  ``lane_width`` bits) in order. It is a stream: a ``RECV`` takes the next rows whatever
  ``SEND`` instructions produced them, so the row counts of the two sides need not match
  instruction by instruction.
* ``SEND``: for each element ``r`` of the ``src`` pattern (SBUF entries, ``i0`` fastest) push
  one row into the outgoing link: SBUF entry ``src[r]``, partitions ``< n``, partitions
  ``≥ n`` as 0.
* ``RECV``: for each element ``r`` of the ``dst`` pattern pop one row from the incoming link
  and write its partitions ``< n`` to SBUF entry ``dst[r]`` (partitions ``≥ n`` untouched).
* ``BARRIER``: bit ``k`` of ``mask`` says core ``k`` takes part; 0 means every core. A
  ``BARRIER`` waits (``wait_en``/``wait_sem``) like any instruction, then *arrives*; it
  completes when every core of the mask has arrived at its matching ``BARRIER`` (the k-th
  ``BARRIER`` with that mask of each core, counted per core), and then applies its signal.
  The control queue runs nothing else meanwhile.
* Dispatch checks (ILLEGAL_FIELD): ``n`` not in ``1 … rows``, a count 0 in ``src``/``dst``,
  a ``BARRIER`` mask naming a core ``≥ cores`` or, when non-zero, leaving out the core
  itself; then SBUF_RANGE for ``src``/``dst`` as for every pattern.
* Correct programs take with every ``RECV`` only rows produced by ``SEND`` instructions not
  ordered after that ``RECV``. The links are bounded FIFOs with backpressure, so a ``SEND``
  may wait for the neighbour's ``RECV``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "WORD_BITS",
    "WORD_BYTES",
    "Op",
    "HEADER",
    "BODY",
    "layout_of",
    "flatten",
    "encode",
    "decode",
    "DESCRIPTOR",
    "VE_CONFIG",
    "CoreError",
]

WORD_BITS = 512
WORD_BYTES = WORD_BITS // 8


class Op(IntEnum):
    """Opcodes (5 bits)."""

    NOP = 0
    END = 1
    DMA = 2
    LOADW = 3
    MATMUL = 4
    ACT = 5
    SEND = 6
    RECV = 7
    BARRIER = 8


#: Fields every instruction starts with.
HEADER = [
    ("opcode", 5),
    ("wait_en", 1),
    ("wait_sem", 5),
    ("signal_en", 1),
    ("signal_sem", 5),
    ("reserved", 15),
]

_DIM = [("count", 16), ("stride", 32)]
#: The DMA descriptor (388 bits), as ``ncore.hw.dma.Descriptor`` lays it out (a test checks
#: the two agree). Strides are unsigned, in bytes (DRAM) and linear SBUF elements.
DESCRIPTOR = [
    ("direction", 2),
    ("esize", 2),
    ("dram", [("start", 64), ("dims", _DIM, 3)]),
    ("sbuf", [("start", 32), ("dims", _DIM, 3)]),
]

#: The vector engine's per-row configuration, as ``ncore.hw.vector_engine.config_layout``.
VE_CONFIG = [
    ("op", 2),
    ("in_type", 3),
    ("out_type", 3),
    ("func", 2),
    ("saturate", 1),
    ("zero_point", 8, "s"),
    ("clamp_lo", 32),
    ("clamp_hi", 32),
]

#: An access pattern over SBUF or PSUM entries: ``start`` plus three (count, stride) dims,
#: innermost first; element ``(i0, i1, i2)`` is at ``start + i0·s0 + i1·s1 + i2·s2``.
_ENTRY_DIM = [("count", 16), ("stride", 20, "s")]
ENTRY_AP = [("start", 20), ("dims", _ENTRY_DIM, 3)]
#: The same iteration space as another pattern (its counts), other start and strides.
ENTRY_AP_FOLLOW = [("start", 20), ("strides", [("stride", 20, "s")], 3)]

#: Instruction bodies, which follow the header at bit 32.
BODY = {
    Op.NOP: [],
    Op.END: [],
    Op.DMA: [("desc", DESCRIPTOR)],
    # Load a weight tile into the tensor engine's idle weight bank: column j (0 ≤ j < n) is
    # SBUF entry `start + j·stride` (all partitions); partitions ≥ k and columns ≥ n are 0.
    Op.LOADW: [("start", 20), ("stride", 20, "s"), ("k", 9), ("n", 9)],
    # Stream activation rows (the `mov` pattern over SBUF entries, partitions < k) through
    # the last loaded weights; row r's result goes to PSUM entry `psum` pattern element r,
    # columns < n, overwriting or accumulating (int32 for int8, fp32 for fp16/bf16).
    Op.MATMUL: [
        ("dtype", 2),
        ("accumulate", 1),
        ("k", 9),
        ("n", 9),
        ("mov", ENTRY_AP),
        ("psum", ENTRY_AP_FOLLOW),
    ],
    # Vector engine: for each element r of `src` (PSUM or SBUF rows), with SBUF row `b`
    # pattern element r as the second operand, write lanes < n of the result to SBUF row
    # `dst` pattern element r. With `load_params`, first load per-lane scale, bias and shift
    # (32 bits each, as 32 / lane_width pieces low first: 16-bit halves at `params … +5` in
    # FP builds, bytes at `params … +11` in int8-only builds).
    Op.ACT: [
        ("config", VE_CONFIG),
        ("src_psum", 1),
        ("load_params", 1),
        ("n", 9),
        ("params", 20),
        ("src", ENTRY_AP),
        ("b", ENTRY_AP_FOLLOW),
        ("dst", ENTRY_AP_FOLLOW),
    ],
    # Core-to-core link (ring): for each element r of `src` push one row into the link to
    # core (c + 1) mod cores: SBUF entry src[r], partitions < n, partitions ≥ n as 0.
    Op.SEND: [("n", 9), ("src", ENTRY_AP)],
    # For each element r of `dst` pop one row from the link from core (c − 1) mod cores and
    # write its partitions < n to SBUF entry dst[r] (partitions ≥ n untouched).
    Op.RECV: [("n", 9), ("dst", ENTRY_AP)],
    # Chip barrier: bit k = core k takes part (0: every core). Completes when every core of
    # the mask has started its matching BARRIER (the k-th with that mask, per core).
    Op.BARRIER: [("mask", 16)],
}


def _parse(entry):
    name, what = entry[0], entry[1]
    extra = entry[2] if len(entry) > 2 else None
    return name, what, extra


def flatten(spec, prefix: str = "", base: int = 0) -> list[tuple[str, int, int, bool]]:
    """``[(dotted name, offset, width, signed)]`` of every leaf field, in bit order."""
    out = []
    offset = base
    for entry in spec:
        name, what, extra = _parse(entry)
        if isinstance(what, int):
            out.append((prefix + name, offset, what, extra == "s"))
            offset += what
        elif isinstance(extra, int):
            for i in range(extra):
                sub = flatten(what, f"{prefix}{name}[{i}].", offset)
                out += sub
                offset += width(what)
        else:
            sub = flatten(what, f"{prefix}{name}.", offset)
            out += sub
            offset += width(what)
    return out


def width(spec) -> int:
    total = 0
    for entry in spec:
        name, what, extra = _parse(entry)
        w = what if isinstance(what, int) else width(what)
        total += w * (extra if isinstance(extra, int) else 1)
    return total


def layout_of(op: Op) -> list:
    """The whole 512-bit word of ``op``: header, body, and a reserved tail."""
    spec = HEADER + BODY[Op(op)]
    used = width(spec)
    if used > WORD_BITS:  # pragma: no cover - a table error
        raise AssertionError(f"{Op(op).name} needs {used} bits")
    if used < WORD_BITS:
        spec = spec + [("tail", WORD_BITS - used)]
    return spec


def _set(d: dict, path: str, value) -> None:
    parts = path.replace("]", "").replace("[", ".").split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        key = int(part) if part.isdigit() else part
        if isinstance(d, list):
            while len(d) <= key:
                d.append({} if not nxt.isdigit() else [])
            d = d[key]
        else:
            d = d.setdefault(key, [] if nxt.isdigit() else {})
    last = parts[-1]
    if isinstance(d, list):
        key = int(last)
        while len(d) <= key:
            d.append(None)
        d[key] = value
    else:
        d[last] = value


def _get(d, path: str, default=0):
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts:
        try:
            d = d[int(part)] if part.isdigit() else d[part]
        except (KeyError, IndexError, TypeError):
            return default
    return d


def encode(op: Op, fields: dict | None = None, **header) -> int:
    """The instruction word of ``op`` with ``fields`` (nested dicts/lists, as :func:`decode`
    returns) and header fields (``wait_sem=3`` implies ``wait_en=1``, likewise ``signal``).

    Raises ``ValueError`` naming the field when a value does not fit.
    """
    values = dict(fields or {})
    for key in ("wait_sem", "signal_sem"):
        if key in header and header[key] is not None:
            header.setdefault(key.replace("_sem", "_en"), 1)
    values.update({k: v for k, v in header.items() if v is not None})
    values["opcode"] = int(op)
    word = 0
    for name, offset, w, signed in flatten(layout_of(op)):
        v = int(_get(values, name, 0))
        lo, hi = (-(1 << (w - 1)), 1 << (w - 1)) if signed else (0, 1 << w)
        if not lo <= v < hi:
            raise ValueError(f"{Op(op).name}.{name} = {v} does not fit {w} bits")
        word |= (v & ((1 << w) - 1)) << offset
    return word


def decode(word: int) -> tuple[Op, dict]:
    """``(op, fields)`` of an instruction word; raises ``ValueError`` for an unknown opcode."""
    code = word & 0x1F
    try:
        op = Op(code)
    except ValueError:
        raise ValueError(f"illegal opcode {code}") from None
    fields: dict = {}
    for name, offset, w, signed in flatten(layout_of(op)):
        v = (word >> offset) & ((1 << w) - 1)
        if signed and v >> (w - 1):
            v -= 1 << w
        _set(fields, name, v)
    return op, fields


def to_bytes(words: list[int]) -> bytes:
    """A program image: instruction words, little-endian, back to back."""
    return b"".join(w.to_bytes(WORD_BYTES, "little") for w in words)


def from_bytes(image: bytes) -> list[int]:
    if len(image) % WORD_BYTES:
        raise ValueError(f"a program image is a multiple of {WORD_BYTES} bytes")
    return [
        int.from_bytes(image[i : i + WORD_BYTES], "little")
        for i in range(0, len(image), WORD_BYTES)
    ]


def reference_markdown() -> str:
    """The ISA reference tables (docs/isa.md is this text)."""
    lines = [
        "# ncore ISA reference",
        "",
        "Generated from `isa.py` by `python -m ncore.isa`; a test checks it is current.",
        f"Every instruction is one {WORD_BITS}-bit little-endian word; bit 0 is bit 0 of the",
        "first byte. `s` marks two's-complement fields. Unlisted bits (`tail`) and `reserved`",
        "must be zero.",
        "",
        "| opcode | name | engine |",
        "|---|---|---|",
    ]
    engine = {Op.NOP: "control", Op.END: "control", Op.DMA: "DMA", Op.LOADW: "tensor",
              Op.MATMUL: "tensor", Op.ACT: "vector", Op.SEND: "send", Op.RECV: "recv",
              Op.BARRIER: "control"}  # fmt: skip
    for op in Op:
        lines.append(f"| {op.value} | `{op.name}` | {engine[op]} |")
    for op in Op:
        lines += ["", f"## {op.name}", "", "| field | bit offset | width |", "|---|---|---|"]
        for name, offset, w, signed in flatten(layout_of(op)):
            lines.append(f"| `{name}` | {offset} | {w}{' s' if signed else ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    out = Path(__file__).resolve().parent / "docs" / "isa.md"
    out.write_text(reference_markdown())
    print(f"wrote {out}", file=sys.stderr)


class CoreError(IntEnum):
    """Sticky error codes of a core (STATUS.error_code); the first error wins."""

    NONE = 0
    ILLEGAL_OPCODE = 1  # unknown opcode
    ILLEGAL_FIELD = 2  # reserved/tail bits set, k/n/count out of range, unsupported type
    SBUF_RANGE = 3  # an SBUF entry outside 0 … sbuf_depth − 1
    PSUM_RANGE = 4  # a PSUM entry outside 0 … psum_depth − 1
    DMA = 5  # the DMA engine reported an error (its code in STATUS.dma_code)
    SEM_OVERFLOW = 6  # a signal would take a semaphore past 255
    DEADLOCK = 7  # the watchdog expired with every engine waiting on a semaphore
    FETCH = 8  # the program fetch got SLVERR/DECERR
    NO_END = 9  # the program ran past its length without END
