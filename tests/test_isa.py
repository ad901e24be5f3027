"""The ISA tables: encode/decode, the hardware layouts, the DMA and vector-engine formats
they embed, and the generated reference docs/isa.md."""

from pathlib import Path

import numpy as np
import pytest

from ncore import isa
from ncore.hw import dma as hdma
from ncore.hw.isa import instruction_layout
from ncore.hw.vector_engine import config_layout

DOC = Path(__file__).resolve().parent.parent / "docs" / "isa.md"


def _offsets(layout, prefix="", base=0):
    """(dotted name, offset, width) of the leaves of an amaranth layout, named as
    :func:`ncore.isa.flatten` names them."""
    from amaranth.lib import data

    out = []
    for name, field in layout:
        shape, offset = field.shape, base + field.offset
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            for i in range(shape.length):
                out += _offsets(elem, f"{prefix}{name}[{i}].", offset + i * elem.size)
        elif isinstance(shape, data.Layout):
            out += _offsets(shape, f"{prefix}{name}.", offset)
        else:
            out.append((f"{prefix}{name}", offset, field.width))
    return out


@pytest.mark.parametrize("op", list(isa.Op), ids=lambda o: o.name)
def test_hardware_layout_matches_table(op):
    lay = instruction_layout(op)
    assert lay.size == isa.WORD_BITS
    got = _offsets(lay)
    assert got == [(n, o, w) for n, o, w, _ in isa.flatten(isa.layout_of(op))]


def test_embedded_formats_match_their_engines():
    desc = [(n, o, w) for n, o, w, _ in isa.flatten(isa.DESCRIPTOR)]
    assert desc == list(hdma.descriptor_fields())
    assert [(n, o, w) for n, o, w, _ in isa.flatten(isa.VE_CONFIG)] == _offsets(config_layout)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_encode_decode_and_layout_const_agree(seed):
    rng = np.random.default_rng(seed)
    for op in isa.Op:
        fields = {}
        for name, _, w, signed in isa.flatten(isa.layout_of(op)):
            if name in ("opcode", "reserved", "tail"):
                continue
            lo, hi = (-(1 << (w - 1)), 1 << (w - 1)) if signed else (0, 1 << w)
            isa._set(fields, name, int(rng.integers(lo, hi, dtype=np.int64)) if w < 63 else 5)
        word = isa.encode(op, fields)
        got_op, got = isa.decode(word)
        assert got_op == op and isa.encode(op, got) == word
        # The hardware's layout packs the same bits.
        got.pop("opcode")
        const = instruction_layout(op).const({**got, "opcode": int(op)})
        assert const.as_bits() & ((1 << isa.WORD_BITS) - 1) == word


def test_errors_name_the_field():
    with pytest.raises(ValueError, match=r"LOADW.k = 512 does not fit 9 bits"):
        isa.encode(isa.Op.LOADW, {"k": 512})
    with pytest.raises(ValueError, match="illegal opcode 31"):
        isa.decode(31)
    image = isa.to_bytes([isa.encode(isa.Op.END), isa.encode(isa.Op.NOP, signal_sem=2)])
    assert len(image) == 128 and isa.from_bytes(image)[1] >> 11 & 1 == 1


def test_link_and_barrier_layouts():
    """SEND/RECV/BARRIER (opcodes 6, 7, 8): their bodies start at bit 32 after the common
    header; the existing opcodes keep their numbers."""
    assert [(op.name, op.value) for op in isa.Op] == [
        ("NOP", 0), ("END", 1), ("DMA", 2), ("LOADW", 3), ("MATMUL", 4), ("ACT", 5),
        ("SEND", 6), ("RECV", 7), ("BARRIER", 8),
    ]  # fmt: skip
    for op, ap in ((isa.Op.SEND, "src"), (isa.Op.RECV, "dst")):
        f = {n: (o, w, s) for n, o, w, s in isa.flatten(isa.layout_of(op))}
        assert f["n"] == (32, 9, False) and f[f"{ap}.start"] == (41, 20, False)
        assert f[f"{ap}.dims[0].count"] == (61, 16, False)
        assert f[f"{ap}.dims[2].stride"] == (149, 20, True) and f["tail"] == (169, 343, False)
    f = {n: (o, w) for n, o, w, _ in isa.flatten(isa.layout_of(isa.Op.BARRIER))}
    assert f["mask"] == (32, 16) and f["tail"] == (48, 464)
    word = isa.encode(isa.Op.BARRIER, {"mask": 0b1011}, wait_sem=3)
    assert word == 8 | 1 << 5 | 3 << 6 | 0b1011 << 32


def test_reference_is_current():
    assert DOC.read_text() == isa.reference_markdown(), "run: python -m ncore.isa"


def test_docs_register_map_is_current():
    """docs/core.md embeds the core's register map as generated from the register table."""
    from pathlib import Path

    from ncore.hw.core import register_map_markdown

    text = (Path(__file__).resolve().parent.parent / "docs" / "core.md").read_text()
    assert register_map_markdown() in text


def test_readme_register_map_is_current():
    from pathlib import Path

    from ncore.hw.core import register_map_markdown

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert register_map_markdown() in text


def test_readme_chip_memory_map_is_current():
    from pathlib import Path

    from ncore.hw.chip import chip_memory_map_markdown

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert chip_memory_map_markdown() in text
