"""The chip's ring of core-to-core links and its barrier.

:class:`LinkFifo` buffers rows between a core's ``link_out`` and the next core's ``link_in``
(:data:`ncore.hw.core.LINK_FIFO_DEPTH` rows; backpressure when full). :class:`Barrier`
releases every core of a group at once: core ``c`` holds ``req[c]`` with its ``mask[c]``
while its BARRIER waits; it gets ``go[c]`` when every core ``k`` of its mask also waits with
the same mask (the k-th BARRIER with a given mask of each core match, since a core's next
BARRIER cannot arrive before the previous one was released).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["Barrier", "LinkFifo"]


class LinkFifo(wiring.Component):
    """A stream FIFO of link rows."""

    def __init__(self, row_layout, depth: int):
        self._depth = depth
        self._width = data.Layout.cast(row_layout).size
        super().__init__(
            {"i": In(stream.Signature(row_layout)), "o": Out(stream.Signature(row_layout))}
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self._width, depth=self._depth)
        m.d.comb += [
            fifo.w_en.eq(self.i.valid),
            fifo.w_data.eq(self.i.payload.as_value()),
            self.i.ready.eq(fifo.w_rdy),
            self.o.valid.eq(fifo.r_rdy),
            self.o.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o.ready),
        ]
        return m


class Barrier(wiring.Component):
    """Barrier of ``cores`` cores (see the module docstring)."""

    def __init__(self, cores: int):
        self._n = cores
        super().__init__(
            {
                "req": In(cores),
                "mask": In(data.ArrayLayout(16, cores)),
                "go": Out(cores),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n = self._n
        gos = []
        for c in range(n):
            ok = [
                ~self.mask[c][k] | (self.req[k] & (self.mask[k] == self.mask[c])) for k in range(n)
            ]
            gos.append(self.req[c] & Cat(*ok).all())
        m.d.comb += self.go.eq(Cat(*gos))
        return m
