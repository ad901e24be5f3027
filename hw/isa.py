"""The instruction set as ``amaranth.lib.data`` layouts, built from :mod:`ncore.isa`'s tables.

:func:`instruction_layout` gives the whole 512-bit word of one opcode as a ``StructLayout``
(nested structs and arrays as in the table); software may pack with
``instruction_layout(op).const({...}).as_bits()`` or with :func:`ncore.isa.encode` — they
agree bit for bit (tested).
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data

from .. import isa

__all__ = ["instruction_layout", "layout"]


def layout(spec) -> data.StructLayout:
    """A ``StructLayout`` for an :mod:`ncore.isa` spec."""
    members = {}
    for entry in spec:
        name, what = entry[0], entry[1]
        extra = entry[2] if len(entry) > 2 else None
        if isinstance(what, int):
            members[name] = signed(what) if extra == "s" else what
        elif isinstance(extra, int):
            members[name] = data.ArrayLayout(layout(what), extra)
        else:
            members[name] = layout(what)
    return data.StructLayout(members)


def instruction_layout(op: isa.Op) -> data.StructLayout:
    """The 512-bit word of ``op``."""
    return layout(isa.layout_of(op))


#: The header of every instruction (the low bits of the word).
header_layout = layout(isa.HEADER)
