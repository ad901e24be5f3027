"""The output buffer of a pipeline that never stalls, reserved by credits at its input.

The tensor and vector engines run free (no enable reaches their registers, which keeps
wide pipelines fast); backpressure is absorbed here instead. A row may enter the pipeline
only while ``admit`` is high, i.e. while fewer than ``depth`` rows are between the pipeline's
input and the reader (in flight or buffered), so the buffer can never overflow. With
``depth ≥ latency + 1`` (pipeline latency including this buffer's two cycles) rows flow at
one per cycle when the reader is always ready; a smaller depth caps the rate at
``depth / latency``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["CREDIT_BUFFER_CYCLES", "CreditBuffer"]

#: Cycles the buffer adds between ``w_valid`` and ``o_row.valid`` (SyncFIFOBuffered: memory
#: write, then read into its output register).
CREDIT_BUFFER_CYCLES = 2


class CreditBuffer(wiring.Component):
    """Credit-reserved output FIFO (see the module docstring).

    Parameters
    ----------
    shape : shape-castable
        Payload of a row.
    depth : int
        Rows reserved (≥ 2).

    Members
    -------
    admit : Out(1)
        A row may enter the pipeline this cycle.
    entered : In(1)
        A row entered the pipeline this cycle (only while ``admit``).
    w_valid : In(1)
        The pipeline delivers a row this cycle (a row that entered earlier).
    w_data : In(shape)
    o_row : Out(stream.Signature(shape))
    empty : Out(1)
        No row in the pipeline or the buffer.
    """

    def __init__(self, shape, depth: int):
        if depth < 2:
            raise ValueError(f"depth must be ≥ 2, not {depth}")
        self._depth = depth
        super().__init__(
            {
                "admit": Out(1),
                "entered": In(1),
                "w_valid": In(1),
                "w_data": In(shape),
                "o_row": Out(stream.Signature(shape)),
                "empty": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        width = len(Value.cast(self.w_data))
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=width, depth=self._depth)
        occupancy = Signal(range(self._depth + 1))  # rows entered, not yet read
        taken = self.o_row.valid & self.o_row.ready
        m.d.sync += occupancy.eq(occupancy + self.entered - taken)
        m.d.comb += [
            self.admit.eq(occupancy < self._depth),
            self.empty.eq(~occupancy.any()),
            fifo.w_en.eq(self.w_valid),
            fifo.w_data.eq(self.w_data),
            self.o_row.valid.eq(fifo.r_rdy),
            self.o_row.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.o_row.ready),
        ]
        return m
