"""Skew and de-skew: the triangular delay lines around the systolic array.

:class:`Skew` delays lane ``k`` of a vector by ``k × step`` cycles, so that row ``k`` of the
array sees an activation row ``step`` cycles after row ``k − 1`` — exactly when the partial
sum from above arrives. :class:`Deskew` delays lane ``n`` by ``(lanes − 1 − n) × step``
cycles, re-aligning the staggered column outputs into one result row.

Both are free-running shift registers (no enable): the array never stalls; flow control
happens before the skew and after the de-skew.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Deskew", "Skew"]


class _Triangle(wiring.Component):
    def __init__(self, lane_shape, lanes: int, step: int, reverse: bool):
        if lanes < 1 or step < 0:
            raise ValueError(f"lanes must be ≥ 1 and step ≥ 0, not {lanes} and {step}")
        self._lanes = lanes
        self._step = step
        self._reverse = reverse
        layout = data.ArrayLayout(lane_shape, lanes)
        super().__init__({"i": In(layout), "o": Out(layout)})

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def step(self) -> int:
        return self._step

    def delay(self, lane: int) -> int:
        """Cycles between lane ``lane`` at ``i`` and at ``o``."""
        k = (self._lanes - 1 - lane) if self._reverse else lane
        return k * self._step

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._lanes):
            value = self.i[lane]
            for d in range(self.delay(lane)):
                reg = Signal.like(self.o[lane], name=f"lane{lane}_d{d}")
                m.d.sync += reg.eq(value)
                value = reg
            m.d.comb += self.o[lane].eq(value)
        return m


class Skew(_Triangle):
    """Delay lane ``k`` by ``k × step`` cycles (lane 0 passes straight through).

    Parameters
    ----------
    lane_shape : shape-castable
        Shape of one lane.
    lanes : int
        Number of lanes.
    step : int
        Extra delay per lane.

    Members
    -------
    i : In(ArrayLayout(lane_shape, lanes))
    o : Out(ArrayLayout(lane_shape, lanes))
    """

    def __init__(self, lane_shape, lanes: int, step: int = 1):
        super().__init__(lane_shape, lanes, step, reverse=False)


class Deskew(_Triangle):
    """Delay lane ``n`` by ``(lanes − 1 − n) × step`` cycles (the last lane passes through).

    Parameters and members as for :class:`Skew`.
    """

    def __init__(self, lane_shape, lanes: int, step: int = 1):
        super().__init__(lane_shape, lanes, step, reverse=True)
