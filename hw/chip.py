"""The ncore chip: ``cores`` NeuronCores, one AXI4 master to DRAM, one AXI4-Lite host port,
one IRQ line.

::

          host AXI4-Lite (s_axil_*)                       irq
                  │                                        ▲
            AxilRouter ── chip registers (0x0000)          │ OR of (core IRQ & IRQ_MASK)
                  ├────── core 0 registers (0x1000)        │
                  ├────── core 1 registers (0x1100) …      │
          ┌───────┴──────┬──────────────┬──────────────┐
       core 0         core 1    …    core N−1
          └──────┬───────┴──────────────┴──────────────┘
           AxiInterconnect (round robin per burst, ID = core · 2^4 + core's ID)
                  │
            DRAM AXI4 master (m_axi_*)

Memory map of the host port (byte offsets): the chip registers at ``0x0000`` (table in
:func:`chip_regs`), core ``c``'s registers (:func:`ncore.hw.core.core_regs`) at
``CORE_BASE + c · CORE_STRIDE``; anything else answers SLVERR. A fault in one core stops
that core only (its own error registers and IRQ); the others keep running.

Ports are flat and conventionally named (``m_axi_*`` with ID width ``4 + log2(cores)``,
``s_axil_*`` with a 16-bit address, ``irq``), plus a debug read port (``dbg_core`` selects
the core, then as :class:`ncore.hw.core.DebugSignature`) for benches.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .axil_router import AxilRouter, axil_slave_members
from .core import LINK_FIFO_DEPTH, NeuronCore
from .core import params_words as core_params_words
from .csr import RO, RW, CsrFile, Reg
from .dma_bench_top import connect_flat_axi, flat_axi_members
from .interconnect import AxiInterconnect
from .link import link_layout
from .ring import Barrier, LinkFifo

__all__ = ["CHIP_ID", "CORE_BASE", "CORE_STRIDE", "Chip", "chip_memory_map_markdown", "chip_regs"]

CHIP_ID = 0x4E43_1001  #: "NC", chip, version 1
CORE_BASE = 0x1000
CORE_STRIDE = 0x100
CORE_ID_WIDTH = 4  #: AXI ID bits of one core (DMA 0, fetch 1)
HOST_ADDR_WIDTH = 16


def chip_regs(params: NCoreParams) -> list[Reg]:
    """The chip's own registers (offsets from 0)."""
    return [
        Reg("id", 0x00, RO, doc=f"{CHIP_ID:#010x}: 'NC', chip, version 1"),
        Reg("cores", 0x04, RO, doc="number of cores"),
        Reg("params0", 0x08, RO, doc="rows [15:0], cols [31:16]"),
        Reg(
            "params1",
            0x0C,
            RO,
            doc="log2 sbuf_depth [7:0], log2 psum_depth [15:8], dtypes mask [18:16] "
            "(int8, fp16, bf16), semaphores [28:24]",
        ),  # fmt: skip
        Reg(
            "params2",
            0x10,
            RO,
            doc="AXI data width [15:0], AXI address width [23:16], queue depth [31:24]",
        ),  # fmt: skip
        Reg("irq_status", 0x14, RO, doc="bit c: core c's IRQ line"),
        Reg("irq_mask", 0x18, RW, init=(1 << params.cores) - 1, doc="bit c: core c drives irq"),
        Reg("cycles_lo", 0x1C, RO, doc="global cycle counter since reset, low word"),
        Reg("cycles_hi", 0x20, RO, doc="global cycle counter, high word"),
        Reg("core_base", 0x24, RO, doc=f"{CORE_BASE:#x}: offset of core 0's registers"),
        Reg("core_stride", 0x28, RO, doc=f"{CORE_STRIDE:#x}: distance between core windows"),
    ]


def chip_memory_map_markdown(params: NCoreParams | None = None) -> str:
    """The host port's memory map as Markdown (README embeds it; a test checks)."""
    p = params or NCoreParams()
    lines = ["| offset | register | access | reset | meaning |", "|---|---|---|---|---|"]
    for r in chip_regs(p):
        reset = f"{r.init:#x}" if r.access == RW else "—"
        lines.append(f"| `{r.offset:#06x}` | `{r.name.upper()}` | {r.access} | {reset} | {r.doc} |")
    end = CORE_BASE + p.cores * CORE_STRIDE - 1
    lines.append(
        f"| `{CORE_BASE:#06x}` + c·`{CORE_STRIDE:#x}` | core c's registers | | | "
        f"the core register map (c = 0…{p.cores - 1}: `{CORE_BASE:#06x}`…`{end:#06x}`) |"
    )
    lines.append("| anything else | | | | SLVERR |")
    return "\n".join(lines) + "\n"


def _params_words(p: NCoreParams):
    """PARAMS0/1 as the cores report them, and PARAMS2 (bus and queues)."""
    w0, w1 = core_params_words(p)
    return w0, w1, p.axi_data_width | p.axi_addr_width << 16 | p.queue_depth << 24


class Chip(wiring.Component):
    """The chip (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
        ``cores`` cores of these parameters.
    **core_options
        Passed to every :class:`ncore.hw.core.NeuronCore`.
    """

    def __init__(self, params: NCoreParams, **core_options):
        p = self._p = params
        self.cores = [NeuronCore(p, id_width=CORE_ID_WIDTH, **core_options) for _ in range(p.cores)]
        self.ic = AxiInterconnect(
            p.cores,
            addr_width=p.axi_addr_width,
            data_width=p.axi_data_width,
            id_width=CORE_ID_WIDTH,
        )
        self.csr = CsrFile(chip_regs(p), addr_width=12)
        windows = [(0, 0x1000)] + [(CORE_BASE + c * CORE_STRIDE, CORE_STRIDE)
                                    for c in range(p.cores)]  # fmt: skip
        self.router = AxilRouter(HOST_ADDR_WIDTH, windows)
        self.router.connect([self.csr, *self.cores])
        members = dict(axil_slave_members(HOST_ADDR_WIDTH))
        members["irq"] = Out(1)
        members.update(flat_axi_members(self.ic.signature.members["down"].signature))
        dbg = self.cores[0].signature.members["dbg"].signature
        members["dbg_core"] = In(range(max(2, p.cores)))
        for name, member in dbg.members.items():
            members[f"dbg_{name}"] = (In if member.flow == In else Out)(member.shape)
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._p

    def elaborate(self, platform):
        p = self._p
        m = Module()
        m.submodules.router = router = self.router
        m.submodules.csr = csr = self.csr
        m.submodules.ic = ic = self.ic
        m.submodules.barrier = barrier = Barrier(p.cores)
        for c, core in enumerate(self.cores):
            m.submodules[f"core{c}"] = core
            wiring.connect(m, core.axi, getattr(ic, f"up{c}"))
            # Ring: core c → FIFO → core (c + 1) mod cores.
            link = LinkFifo(link_layout(p), LINK_FIFO_DEPTH)
            m.submodules[f"link{c}"] = link
            wiring.connect(m, core.link_out, link.i)
            wiring.connect(m, link.o, self.cores[(c + 1) % p.cores].link_in)
            m.d.comb += [
                core.core_id.eq(c),
                barrier.req[c].eq(core.barrier_req),
                barrier.mask[c].eq(core.barrier_mask),
                core.barrier_go.eq(barrier.go[c]),
            ]

        # Host port → router (same flat names).
        for name, member in axil_slave_members(HOST_ADDR_WIDTH).items():
            port, inner = getattr(self, name), getattr(router, name)
            m.d.comb += inner.eq(port) if member.flow == In else port.eq(inner)

        connect_flat_axi(m, ic.down, self)  # the DRAM port

        # Chip registers, IRQ, cycle counter.
        cycles = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        irqs = Cat(*(core.irq for core in self.cores))
        w0, w1, w2 = _params_words(p)
        m.d.comb += [
            csr.i_id.eq(CHIP_ID),
            csr.i_cores.eq(p.cores),
            csr.i_params0.eq(w0),
            csr.i_params1.eq(w1),
            csr.i_params2.eq(w2),
            csr.i_irq_status.eq(irqs),
            csr.i_cycles_lo.eq(cycles[:32]),
            csr.i_cycles_hi.eq(cycles[32:]),
            csr.i_core_base.eq(CORE_BASE),
            csr.i_core_stride.eq(CORE_STRIDE),
            self.irq.eq((irqs & csr.o_irq_mask[: p.cores]).any()),
        ]

        # Debug reads: to the selected core; data from it.
        n = 1 << (max(2, p.cores) - 1).bit_length()
        pad = n - p.cores  # Array of a power-of-two size (Verilator CASEINCOMPLETE)
        sbuf = Array([c.dbg.sbuf_data for c in self.cores] + [self.cores[0].dbg.sbuf_data] * pad)
        psum = Array([c.dbg.psum_data for c in self.cores] + [self.cores[0].dbg.psum_data] * pad)
        for c, core in enumerate(self.cores):
            me = (self.dbg_core == c) if c else ~self.dbg_core.any()
            m.d.comb += [
                core.dbg.en.eq(self.dbg_en & me),
                core.dbg.psum.eq(self.dbg_psum),
                core.dbg.addr.eq(self.dbg_addr),
            ]
        sel = Signal(range(n))
        with m.If(self.dbg_en):
            m.d.sync += sel.eq(self.dbg_core)
        m.d.comb += [self.dbg_sbuf_data.eq(sbuf[sel]), self.dbg_psum_data.eq(psum[sel])]
        return m
