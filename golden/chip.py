"""Golden model of the chip: ``params.cores`` NeuronCores sharing one DRAM, joined by a ring of
core-to-core links and a barrier (the oracle of the RTL chip; ``docs/core.md``, "Links and
barrier", is the long form).

:class:`Chip` holds one :class:`ncore.golden.core.Core` per core (``Chip.cores``, core ``c``
has ``index`` c) and wires them:

* **DRAM**: every core's ``dram`` is the same ``uint8`` array, ``Chip.dram``; every core sees
  the same ``faults`` (SLVERR/DECERR regions).
* **Links**: ``Chip.links[c]`` (a ``collections.deque`` of rows) is core ``c``'s
  ``link_out`` and core ``(c + 1) mod cores``'s ``link_in``; with one core it loops back.
* **Barrier**: one :class:`ncore.golden.core.Barrier` shared by all cores.

:meth:`Chip.run` starts one program per core (or leaves a core idle) and schedules all cores
together: a global scheduler repeatedly picks one *(core, engine)* pair that can make a step
(:meth:`ncore.golden.core.Run.startable`) — in the fixed priority core 0 … cores − 1, within
a core :data:`ncore.golden.core.PRIORITY`, or in another fixed order of all pairs, or at
random — and makes that step (:meth:`ncore.golden.core.Run.step`), which has exactly the
single-core semantics. A link is unbounded in the ISS (a SEND never waits); a RECV starts
only when its link holds all the rows it takes; a BARRIER completes once every core of its
mask has started its matching BARRIER.

Errors are per core. An execution error (DMA, SEM_OVERFLOW) stops that core at once (its
later instructions never start; rows it sent and its barrier arrivals stay), while the other
cores go on. When nothing can step anywhere, every core that has not finished ends as a
single core would: with its pending dispatch error (its prefix has drained as far as it
could), else with DEADLOCK for its first busy queue (in the pick order restricted to that
core). So a core waiting for rows or a barrier from a core that faulted, ended or is idle
ends with DEADLOCK.
"""

from __future__ import annotations

import collections

import numpy as np

from ..params import NCoreParams
from . import dma as gdma
from .core import PRIORITY, Barrier, Core, Engine, Result

__all__ = ["Chip", "chip_priority"]


def chip_priority(cores: int) -> list[tuple[int, Engine]]:
    """The default global pick order: core by core, and within a core :data:`PRIORITY`."""
    return [(c, e) for c in range(cores) for e in PRIORITY]


class Chip:
    """``params.cores`` cores with one shared DRAM, a ring of links and a barrier.

    Parameters
    ----------
    params : NCoreParams
    dram : array_like of uint8, optional
        Initial DRAM contents (copied); its length is the memory size.
    dram_size : int, optional
        Size of an all-zero DRAM when ``dram`` is not given (default 1 MiB).
    faults : golden.dma.DramFaults, optional
        DRAM regions answering SLVERR/DECERR, to every core.
    dma_max_burst, dma_max_writes : int
        Every core's DMA configuration.
    """

    def __init__(
        self,
        params: NCoreParams,
        dram=None,
        *,
        dram_size: int | None = None,
        faults: gdma.DramFaults | None = None,
        dma_max_burst: int = 16,
        dma_max_writes: int = 4,
    ):
        self.params = params
        n = params.cores
        self.faults = faults or gdma.DramFaults()
        kw = {"faults": self.faults, "dma_max_burst": dma_max_burst,
              "dma_max_writes": dma_max_writes}  # fmt: skip
        first = Core(params, dram, dram_size=dram_size, index=0, **kw)
        self.dram = first.dram
        self.cores = [first] + [Core(params, dram_size=0, index=c, **kw) for c in range(1, n)]
        self.links = [collections.deque() for _ in range(n)]
        self.barrier = Barrier(n)
        for c, core in enumerate(self.cores):
            core.dram = self.dram
            core.link_out = self.links[c]
            core.link_in = self.links[(c - 1) % n]
            core.barrier = self.barrier
        self.results: list[Result] | None = None

    @property
    def priority(self) -> list[tuple[int, Engine]]:
        """The default pick order (:func:`chip_priority`)."""
        return chip_priority(self.params.cores)

    def _order(self, pick):
        if pick is None or isinstance(pick, np.random.Generator):
            order = self.priority
        else:
            pick = list(pick)
            if pick and all(isinstance(x, (tuple, list)) for x in pick):
                order = [(int(c), Engine(e)) for c, e in pick]
            else:  # one engine order for every core, cores in order
                order = [(c, Engine(e)) for c in range(self.params.cores) for e in pick]
            if sorted(order) != sorted(self.priority):
                raise ValueError(
                    "pick must order every (core, engine) pair once, or every engine once"
                )
        return order, pick if isinstance(pick, np.random.Generator) else None

    def run(self, programs, *, pick=None) -> list[Result]:
        """Run one program per core until every core has finished; returns (and keeps, as
        ``results`` and each core's ``result``) the per-core :class:`Result`.

        Parameters
        ----------
        programs : list
            Per core (missing trailing entries are None): None (the core stays idle; its
            result is an empty, error-free ``Result``), a ``(program_base, program_len)``
            tuple (fetched from the shared DRAM, as the hardware does), or instruction words
            / a program image (as :meth:`Core.run`; ``program_base`` 0).
        pick : None, sequence, or numpy.random.Generator
            None: the fixed priority :attr:`priority` (core, then engine). A sequence of
            ``(core, engine)`` pairs: another fixed order of all pairs (e.g.
            ``reversed(chip.priority)``). A sequence of engines: that engine order within
            every core, cores in order. A generator: a uniformly random startable pair at
            every step.
        """
        n = self.params.cores
        programs = list(programs)
        if len(programs) > n:
            raise ValueError(f"{len(programs)} programs for {n} cores")
        programs += [None] * (n - len(programs))
        order, rng = self._order(pick)
        for link in self.links:
            link.clear()
        self.barrier.reset()
        runs = []
        for core, prog in zip(self.cores, programs, strict=True):
            if prog is None:
                core.result = Result()
                runs.append(None)
            elif isinstance(prog, tuple):
                base, length = prog
                runs.append(core.start(None, program_base=int(base), program_len=int(length)))
            else:
                runs.append(core.start(prog))
        own = [[e for c, e in order if c == k] for k in range(n)]
        while True:
            startable = {
                c: set(r.startable()) for c, r in enumerate(runs) if r is not None and not r.done
            }
            ready = [(c, e) for c, e in order if e in startable.get(c, ())]
            if not ready:
                break
            c, e = ready[int(rng.integers(len(ready)))] if rng is not None else ready[0]
            runs[c].step(e)
        for c, r in enumerate(runs):
            if r is not None and not r.done:
                r.stall(own[c])
        self.results = [core.result for core in self.cores]
        return self.results
