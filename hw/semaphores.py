"""The semaphore file: counting semaphores that order a core's engines.

Each of ``semaphores`` counters is 8 bits, zero after reset. Every cycle:

* each *waiter* (an engine whose queue head has ``wait_en``) names a semaphore; waiters are
  served in port order (port 0 first), each taking one if the count left by the waiters
  before it is non-zero — ``grant`` says who did;
* each *signaller* (a completion event with ``signal_en``) adds one to the semaphore it
  names; several may name the same one in the same cycle;
* a semaphore's next value is ``count − grants + signals``. A sum past 255 is an overflow:
  ``overflow`` pulses, that semaphore keeps its old value, and the core stops with
  ``SEM_OVERFLOW``.

Grants see the count at the start of the cycle, so a signal is usable from the next cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SemaphoreFile"]


def _is(value, const: int):
    """``value == const`` (``~value.any()`` for 0: Verilator flags ``!x`` on a vector)."""
    return ~value.any() if const == 0 else value == const


class SemaphoreFile(wiring.Component):
    """Counting semaphores (see the module docstring).

    Parameters
    ----------
    count : int
        Number of semaphores (1…32).
    waiters, signallers : int
        Number of wait and signal ports.

    Members
    -------
    wait : In(ArrayLayout({"en", "sem"}, waiters))
    grant : Out(waiters)
        Bit ``i``: waiter ``i`` took one this cycle.
    signal : In(ArrayLayout({"en", "sem"}, signallers))
    overflow : Out(1)
    values : Out(ArrayLayout(8, count))
        Current counts (for STATUS/debug).
    clear : In(1)
        Set every count to zero (soft reset).
    """

    def __init__(self, count: int, *, waiters: int, signallers: int):
        if not 1 <= count <= 32:
            raise ValueError(f"count must be in 1…32, not {count}")
        self._count = count
        port = data.StructLayout({"en": 1, "sem": 5})
        super().__init__(
            {
                "wait": In(data.ArrayLayout(port, waiters)),
                "grant": Out(waiters),
                "signal": In(data.ArrayLayout(port, signallers)),
                "overflow": Out(1),
                "values": Out(data.ArrayLayout(8, count)),
                "clear": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        waiters = len(self.wait)
        sigs = len(self.signal)
        grants = []
        for i in range(waiters):
            w = self.wait[i]
            g = Signal(name=f"grant{i}")
            # Count left for this waiter: the semaphore minus the grants before it.
            for s in range(self._count):
                before = [grants[j] & _is(self.wait[j].sem, s) for j in range(i)]
                taken = sum(b.as_unsigned() for b in before) if before else 0
                with m.If(w.en & _is(w.sem, s)):
                    m.d.comb += g.eq(self.values[s] > taken)
            grants.append(g)
        m.d.comb += self.grant.eq(Cat(*grants))

        overflow = []
        for s in range(self._count):
            ups = sum(
                (self.signal[k].en & _is(self.signal[k].sem, s)).as_unsigned() for k in range(sigs)
            )
            downs = sum(
                (grants[i] & _is(self.wait[i].sem, s)).as_unsigned() for i in range(waiters)
            )
            nxt = Signal(range(256 + sigs + 1), name=f"next{s}")
            m.d.comb += nxt.eq(self.values[s] + ups - downs)
            ovf = Signal(name=f"ovf{s}")
            m.d.comb += ovf.eq(nxt > 255)
            overflow.append(ovf)
            with m.If(self.clear):
                m.d.sync += self.values[s].eq(0)
            with m.Elif(~ovf):
                m.d.sync += self.values[s].eq(nxt)
        m.d.comb += self.overflow.eq(Cat(*overflow).any())
        return m
