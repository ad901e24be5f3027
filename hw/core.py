"""The NeuronCore: fetch, decode and dispatch, six in-order engine queues, semaphores, the
DMA, tensor, vector and link engines, SBUF, PSUM, an AXI4 master and an AXI4-Lite register
file.

Data path::

    AXI4 ──► Fetch ──► Decoder ──► dispatch ─┬─► DMA queue ─────► DMA ◄──────► SBUF (chunks)
     ▲  (ID 1)          (checks)             │                     ▲ PSUM_STORE: PSUM reads
     │                                        ├─► tensor queue ──► TensorSequencer ──► PSUM
     │                                        ├─► vector queue ──► VectorSequencer ◄─ PSUM/SBUF
     │                                        ├─► send queue ────► LinkSender ──► link_out
     │                                        ├─► recv queue ────► LinkReceiver ◄─ link_in
     └──────── DMA (ID 0) ◄───────────────── └─► control queue (NOP, END, BARRIER)

Program execution (the contract of ``golden/core.py``; ``docs/core.md`` is the long form)
    ``CTRL.START`` fetches ``PROG_LEN`` instruction words from ``PROG_BASE`` (64-byte
    aligned), checks each one (:class:`ncore.hw.decoder.Decoder`) and appends it to the queue
    of its engine, stalling while that queue is full. A queue head starts when its engine can
    take it and, with ``wait_en``, when semaphore ``wait_sem`` is non-zero (it takes one; the
    semaphore file serves DMA, tensor, vector, send, receive, control heads in that order). An
    instruction holds its queue slot until it starts. On completion it adds one to
    ``signal_sem`` (``signal_en``). Completions of one queue are signalled in program order
    (the tensor queue overlaps a LOADW with the MATMUL before it; a retire queue holds the
    LOADW's signal until that MATMUL has written PSUM). ``END`` starts when every other queue
    is empty and every engine idle; the program is then done (``STATUS.done``, IRQ bit 0).

Errors (the first wins; ``STATUS.error``, ``ERR_*`` registers, IRQ bit 1)
    * Dispatch errors are precise: illegal opcode or field, SBUF/PSUM range (the decoder),
      a fetch SLVERR/DECERR, ``PROG_LEN`` reached without ``END`` (NO_END), or a
      misaligned ``PROG_BASE`` (FETCH at the base, before any fetch). Dispatch stops; the
      instructions before the faulting one keep running until nothing more can start, then
      the error is reported. Nothing of the faulting instruction or after it happens.
    * Execution errors stop at once: a DMA error (the engine's code in ``STATUS.dma_code``,
      its address) and a semaphore overflow (address: the semaphore). No instruction
      starts after it; instructions already running in other engines complete.
    * Deadlock: nothing is running, no queue head can start, some queue is non-empty and
      dispatch cannot proceed, for ``WATCHDOG`` consecutive cycles (at least 4): DEADLOCK
      for the first non-empty queue (DMA, tensor, vector, control), address = the
      semaphore its head waits on.
    After an error, ``START`` is refused until ``CTRL.SOFT_RESET``.

Soft reset
    ``CTRL.SOFT_RESET`` stops issuing, waits until the bus is quiet (the DMA has finished or
    drained its transfer, the fetch unit its reads) and then resets every engine, queue,
    semaphore and status bit for one cycle. SBUF and PSUM contents, weight banks and the
    vector engine's parameters are state, not control: they are kept (the parameters and
    weight registers return to zero, as after power-up). The RW registers keep their values.

Debug port
    ``dbg`` reads one SBUF entry (all partitions) or PSUM entry (all partitions) per cycle,
    one cycle after ``en`` — for benches and debuggers, only while the core is not running.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .. import isa
from ..isa import CoreError, Op
from ..params import DTYPES, NCoreParams
from .csr import RO, RW, W1C, W1P, CsrFile, Reg
from .decoder import Decoder
from .dma import DMA, AxiSignature
from .fetch import Fetch
from .isa import header_layout, instruction_layout
from .link import LinkReceiver, LinkSender, link_layout
from .psum import PSUM
from .sbuf import SBuf
from .semaphores import SemaphoreFile
from .tensor_sequencer import TensorSequencer
from .vector_sequencer import VectorSequencer

__all__ = [
    "CORE_ID",
    "COUNTERS",
    "DebugSignature",
    "NeuronCore",
    "core_regs",
    "register_map_markdown",
]

#: ``ID`` register: "NC" and the ISA version.
CORE_ID = 0x4E43_0001
DMA_ID, FETCH_ID = 0, 1
_DMA, _TENSOR, _VECTOR, _CONTROL, _DISPATCH, _SEND, _RECV = range(7)
#: Queues in the semaphore file's service order (golden.core.PRIORITY).
_PRIORITY = (_DMA, _TENSOR, _VECTOR, _SEND, _RECV, _CONTROL)
LINK_FIFO_DEPTH = 16  #: rows a link buffers between two cores
_WORD = isa.WORD_BITS

#: Performance counters, in register order from ``COUNTER_BASE``: (name, width, meaning).
#: 64-bit counters take two registers, low word first (``<name>_lo``, ``<name>_hi``).
COUNTERS = [
    ("cycles", 64, "cycles from START to the end of the program"),
    ("dma_busy", 32, "cycles the DMA engine had a transfer"),
    ("tensor_busy", 32, "cycles the tensor engine had a LOADW or MATMUL in flight"),
    ("vector_busy", 32, "cycles the vector engine had an ACT in flight"),
    ("dma_sem_wait", 32, "cycles the DMA queue head waited on a semaphore"),
    ("tensor_sem_wait", 32, "cycles the tensor queue head waited on a semaphore"),
    ("vector_sem_wait", 32, "cycles the vector queue head waited on a semaphore"),
    ("control_sem_wait", 32, "cycles the control queue head waited on a semaphore"),
    ("dispatch_stall", 32, "cycles a checked instruction waited for room in its queue"),
    ("dma_bytes_read", 32, "DRAM bytes loaded by completed DMA transfers"),
    ("dma_bytes_written", 32, "DRAM bytes stored by completed DMA transfers"),
    ("macs", 64, "multiply-accumulates (k · n per MATMUL row)"),
    ("matmul_rows", 32, "activation rows streamed through the PE array"),
    ("act_rows", 32, "rows processed by the vector engine"),
    ("retired", 32, "instructions completed"),
    ("link_rows_sent", 32, "rows SEND pushed into the outgoing link"),
    ("link_rows_received", 32, "rows RECV took from the incoming link"),
]
COUNTER_BASE = 0x40

# CTRL bits
CTRL_START, CTRL_SOFT_RESET, CTRL_CLEAR = 1, 2, 4
# STATUS fields: bit 0 idle, 1 busy, 2 done, 3 error, 4 resetting, [11:8] error code,
# [14:12] engine, [19:16] DMA error code.
IRQ_DONE, IRQ_ERROR = 1, 2


def core_regs(params: NCoreParams) -> list[Reg]:
    """The register map of one core (offsets in bytes; ``docs/core.md`` tabulates it)."""
    p = params
    dtypes = sum(1 << i for i, d in enumerate(DTYPES) if d in p.dtypes)
    regs = [
        Reg("id", 0x00, RO, doc=f"{CORE_ID:#010x}: 'NC', ISA version 1"),
        Reg("ctrl", 0x04, W1P, doc="bit 0 START, bit 1 SOFT_RESET, bit 2 CLEAR (done, counters)"),
        Reg(
            "status",
            0x08,
            RO,
            doc="bit 0 idle, 1 busy, 2 done, 3 error, 4 resetting, [11:8] error code, "
            "[14:12] engine, [19:16] DMA error code",
        ),  # fmt: skip
        Reg("err_addr", 0x0C, RO, doc="faulting address, low word"),
        Reg("err_addr_hi", 0x10, RO, doc="faulting address, high word"),
        Reg("err_index", 0x14, RO, doc="index of the faulting instruction"),
        Reg("prog_base", 0x18, RW, doc="program byte address, low word (64-byte aligned)"),
        Reg("prog_base_hi", 0x1C, RW, doc="program byte address, high word"),
        Reg("prog_len", 0x20, RW, doc="program length in instructions"),
        Reg("irq_enable", 0x24, RW, init=IRQ_DONE | IRQ_ERROR, doc="bit 0 done, bit 1 error"),
        Reg("irq_status", 0x28, W1C, doc="bit 0 done, bit 1 error (write 1 to clear)"),
        Reg(
            "watchdog",
            0x2C,
            RW,
            init=1 << 16,
            doc="quiet cycles before DEADLOCK (≥ 4; waiting on a link or barrier is quiet)",
        ),
        Reg("params0", 0x30, RO, doc="rows [15:0], cols [31:16]"),
        Reg(
            "params1",
            0x34,
            RO,
            doc="log2 sbuf_depth [7:0], log2 psum_depth [15:8], dtypes mask [18:16] "
            "(int8, fp16, bf16), semaphores [28:24]",
        ),  # fmt: skip
        Reg("sem_values", 0x38, RO, doc="semaphores 0…3, one byte each"),
    ]
    off = COUNTER_BASE
    for name, width, doc in COUNTERS:
        if width == 64:
            regs.append(Reg(f"{name}_lo", off, RO, doc=doc + " (low word)"))
            regs.append(Reg(f"{name}_hi", off + 4, RO, doc=doc + " (high word)"))
            off += 8
        else:
            regs.append(Reg(name, off, RO, doc=doc))
            off += 4
    del dtypes
    return regs


def _is(value, const: int):
    """``value == const`` (``~value.any()`` for 0: Verilator flags ``!x`` on a vector)."""
    return ~value.any() if const == 0 else value == const


def register_map_markdown() -> str:
    """The core's register map as a Markdown table (docs/core.md embeds it; a test checks)."""
    lines = ["| offset | register | access | reset | meaning |", "|---|---|---|---|---|"]
    for r in core_regs(NCoreParams()):
        reset = f"{r.init:#x}" if r.access == RW else ("—" if r.access == RO else "0")
        lines.append(f"| `{r.offset:#05x}` | `{r.name.upper()}` | {r.access} | {reset} | {r.doc} |")
    return "\n".join(lines) + "\n"


def params_words(p: NCoreParams) -> tuple[int, int]:
    dtypes = sum(1 << i for i, d in enumerate(DTYPES) if d in p.dtypes)
    w0 = p.rows | p.cols << 16
    w1 = (
        (p.sbuf_depth.bit_length() - 1)
        | (p.psum_depth.bit_length() - 1) << 8
        | dtypes << 16
        | p.semaphores << 24
    )
    return w0, w1


class DebugSignature(wiring.Signature):
    """Backdoor reads of SBUF/PSUM (seen from the reader)."""

    def __init__(self, params: NCoreParams):
        super().__init__(
            {
                "en": Out(1),
                "psum": Out(1),
                "addr": Out(20),
                "sbuf_data": In(data.ArrayLayout(params.lane_width, params.rows)),
                "psum_data": In(data.ArrayLayout(32, params.cols)),
            }
        )


class _Queue(wiring.Component):
    """One engine queue: instruction words and their indices, in order."""

    def __init__(self, depth: int):
        self._depth = depth
        entry = data.StructLayout({"word": _WORD, "index": 32})
        super().__init__(
            {
                "w": In(stream.Signature(entry)),
                "r": Out(stream.Signature(entry)),
                "level": Out(range(depth + 2)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=_WORD + 32, depth=self._depth)
        m.d.comb += [
            fifo.w_en.eq(self.w.valid),
            fifo.w_data.eq(self.w.payload.as_value()),
            self.w.ready.eq(fifo.w_rdy),
            self.r.valid.eq(fifo.r_rdy),
            self.r.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.r.ready),
            self.level.eq(fifo.level),
        ]
        return m


class _Core(wiring.Component):
    """Everything but the register file: soft reset wraps this in a ResetInserter."""

    def __init__(self, params: NCoreParams, *, id_width: int, dma_options: dict):
        self._p = p = params
        self._id_width = id_width
        self._dma_options = dma_options
        aw = p.axi_addr_width
        self._ea = max(32, aw)
        super().__init__(
            {
                "axi": Out(
                    AxiSignature(addr_width=aw, data_width=p.axi_data_width, id_width=id_width)
                ),
                "dbg": In(DebugSignature(p)),
                # control
                "start": In(1),
                "halt": In(1),  # soft reset pending: issue nothing more, stop fetching
                "clear": In(1),
                "base": In(aw),
                "length": In(32),
                "watchdog": In(32),
                "core_id": In(4),
                # core-to-core link and barrier
                "link_out": Out(stream.Signature(link_layout(params))),
                "link_in": In(stream.Signature(link_layout(params))),
                "barrier_req": Out(1),
                "barrier_mask": Out(16),
                "barrier_go": In(1),
                # status
                "running": Out(1),
                "done": Out(1),
                "error": Out(1),
                "err_code": Out(4),
                "err_engine": Out(3),
                "err_dma_code": Out(4),
                "err_addr": Out(self._ea),
                "err_index": Out(32),
                "bus_idle": Out(1),
                "done_pulse": Out(1),
                "error_pulse": Out(1),
                "sem_values": Out(32),
                "counters": Out(data.StructLayout({n: w for n, w, _ in COUNTERS})),
            }
        )

    def elaborate(self, platform):
        p = self._p
        m = Module()
        ea = self._ea

        # ---- units ---------------------------------------------------------------------
        m.submodules.fetch = fetch = Fetch(p, id_width=self._id_width, axi_id=FETCH_ID)
        m.submodules.decoder = dec = Decoder(p)
        m.submodules.dma = dma = DMA(p, id_width=self._id_width, **self._dma_options)
        m.submodules.tseq = tseq = TensorSequencer(p)
        m.submodules.vseq = vseq = VectorSequencer(p)
        m.submodules.sender = snd = LinkSender(p)
        m.submodules.receiver = rcv = LinkReceiver(p)
        m.submodules.sbuf = sbuf = SBuf(
            p, readers=("weights", "tensor", "vector", "vector_b", "link"), row_writer=True
        )
        m.submodules.psum = psum = PSUM(p)
        m.submodules.sems = sems = SemaphoreFile(p.semaphores, waiters=6, signallers=6)
        queues = {}
        names = ("dma", "tensor", "vector", "send", "recv", "control")
        for e, name in zip(_PRIORITY, names, strict=True):
            q = _Queue(p.queue_depth)
            m.submodules[f"q_{name}"] = q
            queues[e] = q

        wiring.connect(m, dma.sbuf, sbuf.dma)
        wiring.connect(m, tseq.w_port, sbuf.weights)
        wiring.connect(m, tseq.a_port, sbuf.tensor)
        wiring.connect(m, tseq.o_psum, psum.i_write)
        wiring.connect(m, vseq.b_port, sbuf.vector_b)
        wiring.connect(m, snd.port, sbuf.link)
        wiring.connect(m, snd.o_link, wiring.flipped(self.link_out))
        wiring.connect(m, wiring.flipped(self.link_in), rcv.i_link)
        m.d.comb += dec.core_id.eq(self.core_id)
        # SBUF row writes: the vector engine, else the link receiver (the DMA beats both).
        rw = sbuf.row_w
        v_w, r_w = vseq.row_w, rcv.row_w
        m.d.comb += [
            rw.en.eq(v_w.en | r_w.en),
            rw.addr.eq(Mux(v_w.en, v_w.addr, r_w.addr)),
            rw.mask.eq(Mux(v_w.en, v_w.mask, r_w.mask)),
            rw.data.eq(Mux(v_w.en, v_w.data.as_value(), r_w.data.as_value())),
            v_w.ready.eq(rw.ready),
            r_w.ready.eq(rw.ready & ~v_w.en),
        ]

        # SBUF "vector" reader and the PSUM read port: the vector sequencer, or the debug
        # port while the core is not running. The DMA (PSUM_STORE) gets the PSUM read port
        # only while the vector sequencer is idle: the sequencer relies on the port holding
        # its last read while it stalls, so the DMA must not read in between.
        dbg = self.dbg
        m.d.comb += [
            sbuf.vector.en.eq(vseq.src_port.en | (dbg.en & ~dbg.psum)),
            sbuf.vector.addr.eq(Mux(dbg.en, dbg.addr, vseq.src_port.addr)),
            vseq.src_port.data.eq(sbuf.vector.data),
            dbg.sbuf_data.eq(sbuf.vector.data),
            dma.psum.ready.eq(~vseq.busy & ~vseq.psum_rd.en & ~dbg.en),
            psum.rd_en.eq(vseq.psum_rd.en | dma.psum.en | (dbg.en & dbg.psum)),
            psum.rd_addr.eq(
                Mux(dbg.en, dbg.addr, Mux(dma.psum.en, dma.psum.addr, vseq.psum_rd.addr))
            ),
            vseq.psum_rd.data.eq(psum.rd_data),
            dma.psum.data.eq(psum.rd_data),
            dbg.psum_data.eq(psum.rd_data),
        ]

        # ---- AXI: AR shared by the DMA (ID 0) and fetch (ID 1), R routed by ID ----------
        axi = self.axi
        for ch in ("aw", "w"):
            wiring.connect(m, getattr(dma.axi, ch), wiring.flipped(getattr(axi, ch)))
        wiring.connect(m, wiring.flipped(axi.b), dma.axi.b)
        grant_fetch = Signal()  # AR owner while its request waits (AXI: valid stays up)
        locked = Signal()
        prefer_fetch = Signal()  # round robin
        sel_fetch = Mux(
            locked, grant_fetch, fetch.axi.ar.valid & (prefer_fetch | ~dma.axi.ar.valid)
        )
        ar_src_valid = Mux(sel_fetch, fetch.axi.ar.valid, dma.axi.ar.valid)
        m.d.comb += [
            axi.ar.valid.eq(ar_src_valid),
            axi.ar.payload.eq(Mux(sel_fetch, fetch.axi.ar.payload, dma.axi.ar.payload)),
            fetch.axi.ar.ready.eq(sel_fetch & axi.ar.ready),
            dma.axi.ar.ready.eq(~sel_fetch & axi.ar.ready),
        ]
        with m.If(axi.ar.valid & ~axi.ar.ready):
            m.d.sync += [locked.eq(1), grant_fetch.eq(sel_fetch)]
        with m.Else():
            m.d.sync += locked.eq(0)
        with m.If(axi.ar.valid & axi.ar.ready):
            m.d.sync += prefer_fetch.eq(~sel_fetch)
        r_fetch = axi.r.payload.id == FETCH_ID
        m.d.comb += [
            fetch.axi.r.payload.eq(axi.r.payload),
            dma.axi.r.payload.eq(axi.r.payload),
            fetch.axi.r.valid.eq(axi.r.valid & r_fetch),
            dma.axi.r.valid.eq(axi.r.valid & ~r_fetch),
            # RID means nothing while RVALID is low (a memory may leave it X): ready then.
            axi.r.ready.eq(Mux(axi.r.valid, Mux(r_fetch, fetch.axi.r.ready, dma.axi.r.ready), 1)),
            fetch.axi.b.valid.eq(0),
        ]

        # ---- state ---------------------------------------------------------------------
        running = Signal()
        halt_exec = Signal()  # an execution error: start nothing more
        pending = Signal()  # a precise dispatch error waits for the drain
        pend_code = Signal(4)
        pend_engine = Signal(3)
        pend_addr = Signal(ea)
        pend_index = Signal(32)
        dispatch_ended = Signal()  # END dispatched
        base = Signal(p.axi_addr_width)
        length = Signal(32)
        stop_issue = halt_exec | self.halt | ~running
        m.d.comb += self.running.eq(running)

        def report(code, engine, addr, index, dma_code=0):
            """Statements latching an error into the status registers."""
            return [
                self.err_code.eq(code),
                self.err_engine.eq(engine),
                self.err_addr.eq(addr),
                self.err_index.eq(index),
                self.err_dma_code.eq(dma_code),
            ]

        # ---- fetch + decode ------------------------------------------------------------
        misaligned = self.base[:6].any()
        start = self.start & ~running & ~self.error & ~self.halt
        m.d.comb += [
            fetch.start.eq(start & ~misaligned & self.length.any()),
            fetch.base.eq(self.base),
            fetch.length.eq(self.length),
            fetch.stop.eq(running & (pending | dispatch_ended | halt_exec | self.halt)),
        ]
        wiring.connect(m, fetch.o_instr, dec.i_instr)
        m.d.comb += dec.clear.eq(start)

        # ---- dispatch ------------------------------------------------------------------
        o = dec.o_instr
        ohead = data.View(header_layout, o.payload.word[: header_layout.size])
        room = Signal()
        m.d.comb += room.eq(
            Array(queues[e].w.ready if e in queues else Const(0) for e in range(8))[
                o.payload.engine
            ]
        )
        can_dispatch = running & ~pending & ~dispatch_ended & ~halt_exec & ~self.halt
        m.d.comb += o.ready.eq(can_dispatch & room)
        pushed = o.valid & o.ready
        for i, q in queues.items():
            m.d.comb += [
                q.w.valid.eq(pushed & _is(o.payload.engine, i)),
                q.w.payload.word.eq(o.payload.word),
                q.w.payload.index.eq(o.payload.index),
            ]
        is_end_pushed = pushed & (ohead.opcode == Op.END)
        with m.If(is_end_pushed):
            m.d.sync += dispatch_ended.eq(1)
        with m.Elif(pushed & (o.payload.index == length - 1) & ~pending):
            # The last word was not END.
            m.d.sync += [
                pending.eq(1),
                pend_code.eq(CoreError.NO_END),
                pend_engine.eq(_DISPATCH),
                pend_addr.eq(base + (length << 6)),
                pend_index.eq(length),
            ]
        # Decoder errors are precise and come in program order; a fetch error counts once
        # every instruction before it has been through the decoder.
        with m.If(dec.error & ~pending & running):
            m.d.sync += [
                pending.eq(1),
                pend_code.eq(dec.err_code),
                pend_engine.eq(dec.err_engine),
                pend_addr.eq(Mux(dec.err_entry, dec.err_addr, base + (dec.err_index << 6))),
                pend_index.eq(dec.err_index),
            ]
        with m.Elif(
            fetch.error & ~fetch.o_instr.valid & ~dec.busy & ~dec.error & ~pending & running
            & ~dispatch_ended
        ):  # fmt: skip
            m.d.sync += [
                pending.eq(1),
                pend_code.eq(CoreError.FETCH),
                pend_engine.eq(_DISPATCH),
                pend_addr.eq(fetch.error_addr),
                pend_index.eq((fetch.error_addr - base) >> 6),
            ]

        # ---- queue heads and issue -----------------------------------------------------
        heads = {
            e: data.View(header_layout, q.r.payload.word[: header_layout.size])
            for e, q in queues.items()
        }
        # 32 entries, so the 5-bit index covers the case (Verilator CASEINCOMPLETE).
        sem_arr = Array(sems.values[s] if s < p.semaphores else Const(0, 8) for s in range(32))
        sem_val = {e: Signal(8, name=f"semval{e}") for e in queues}
        for e in queues:
            m.d.comb += sem_val[e].eq(sem_arr[heads[e].wait_sem])
        wait_ok = {e: ~h.wait_en | sem_val[e].any() for e, h in heads.items()}

        # Engine readiness.
        dma_inflight = Signal()
        tret_level = Signal(range(9))
        eng_ready = {e: Signal(name=f"eng_ready{e}") for e in queues}
        others_empty = ~Cat(*(q.r.valid for e, q in queues.items() if e != _CONTROL)).any()
        bar_busy = Signal()  # a BARRIER has arrived and waits for the others
        all_idle = Signal()  # every engine has finished
        m.d.comb += all_idle.eq(
            ~dma.busy & ~dma_inflight & ~tseq.busy & ~tret_level.any() & ~vseq.busy
            & ~snd.busy & ~rcv.busy & ~bar_busy
        )  # fmt: skip
        # Engines that hold an instruction but can make no progress on their own: a link
        # waiting for data or room, a barrier waiting for the other cores.
        stalled = Signal()
        m.d.comb += stalled.eq(
            ~dma.busy & ~dma_inflight & ~tseq.busy & ~tret_level.any() & ~vseq.busy
            & (~snd.busy | snd.waiting) & (~rcv.busy | rcv.waiting) & ~self.barrier_go
        )  # fmt: skip
        is_end_head = heads[_CONTROL].opcode == Op.END
        is_bar_head = heads[_CONTROL].opcode == Op.BARRIER
        t_is_mm = heads[_TENSOR].opcode == Op.MATMUL
        m.d.comb += [
            eng_ready[_DMA].eq(dma.i_desc.ready & ~dma_inflight),
            eng_ready[_TENSOR].eq(tseq.i_cmd.ready & (tret_level < 8)),
            eng_ready[_VECTOR].eq(vseq.i_cmd.ready),
            eng_ready[_SEND].eq(snd.i_cmd.ready),
            eng_ready[_RECV].eq(rcv.i_cmd.ready),
            eng_ready[_CONTROL].eq(~bar_busy & (~is_end_head | (others_empty & all_idle))),
        ]
        issue = {e: Signal(name=f"issue{e}") for e in queues}
        for k, e in enumerate(_PRIORITY):
            q, h = queues[e], heads[e]
            can_go = q.r.valid & eng_ready[e] & ~stop_issue
            m.d.comb += [
                sems.wait[k].en.eq(can_go & h.wait_en),
                sems.wait[k].sem.eq(h.wait_sem),
                issue[e].eq(can_go & (~h.wait_en | sems.grant[k])),
                q.r.ready.eq(issue[e]),
            ]
        m.d.comb += sems.clear.eq(start)

        # DMA command + the instruction in flight.
        dword = queues[_DMA].r.payload.word
        m.d.comb += [
            dma.i_desc.valid.eq(issue[_DMA]),
            dma.i_desc.payload.eq(dword[32 : 32 + Shape.cast(dma.i_desc.payload.shape()).width]),
            dma.o_done.ready.eq(1),
            dma.clear.eq(start),
        ]
        d_sig = Signal(6)
        d_index = Signal(32)
        d_load = Signal()
        d_counts = Signal(48)
        d_c01 = Signal(32)
        d_c2 = Signal(16)
        d_esize = Signal(2)
        dmalay = instruction_layout(Op.DMA)
        dview = data.View(dmalay, dword)
        with m.If(issue[_DMA]):
            m.d.sync += [
                dma_inflight.eq(1),
                d_sig.eq(Cat(heads[_DMA].signal_en, heads[_DMA].signal_sem)),
                d_index.eq(queues[_DMA].r.payload.index),
                d_load.eq(~dview.desc.direction.any()),
                d_c01.eq(dview.desc.dram.dims[0].count * dview.desc.dram.dims[1].count),
                d_c2.eq(dview.desc.dram.dims[2].count),
                d_esize.eq(dview.desc.esize),
            ]
        m.d.sync += d_counts.eq(d_c01 * d_c2)
        d_done = dma.o_done.valid
        d_ok = d_done & ~dma.o_done.payload.code.as_value().any()
        with m.If(d_done):
            m.d.sync += dma_inflight.eq(0)

        # Tensor command + retire queue (signals in program order).
        tword = queues[_TENSOR].r.payload.word
        tcmd = tseq.i_cmd.payload
        lw_size = tcmd.loadw.shape().size
        mm_size = tcmd.matmul.shape().size
        m.d.comb += [
            tseq.i_cmd.valid.eq(issue[_TENSOR]),
            tcmd.is_matmul.eq(t_is_mm),
            tcmd.loadw.eq(tword[32 : 32 + lw_size]),
            tcmd.matmul.eq(tword[32 : 32 + mm_size]),
            tcmd.signal.signal_en.eq(heads[_TENSOR].signal_en),
            tcmd.signal.signal_sem.eq(heads[_TENSOR].signal_sem),
        ]
        m.submodules.tret = tret = SyncFIFOBuffered(width=1 + 6 + 32, depth=8)
        m.d.comb += [
            tret.w_en.eq(issue[_TENSOR]),
            tret.w_data.eq(
                Cat(
                    t_is_mm,
                    heads[_TENSOR].signal_en,
                    heads[_TENSOR].signal_sem,
                    queues[_TENSOR].r.payload.index,
                )
            ),  # fmt: skip
            tret_level.eq(tret.level),
        ]
        lw_done = Signal(4)
        mm_done = Signal(4)
        t_head_mm = tret.r_data[0]
        t_retire = tret.r_rdy & Mux(t_head_mm, mm_done.any(), lw_done.any())
        m.d.comb += tret.r_en.eq(t_retire)
        m.d.sync += [
            lw_done.eq(lw_done + tseq.o_loadw_done.valid - (t_retire & ~t_head_mm)),
            mm_done.eq(mm_done + tseq.o_matmul_done.valid - (t_retire & t_head_mm)),
        ]
        t_sig = tret.r_data[1:7]
        t_index = tret.r_data[7:39]

        # Vector command.
        vword = queues[_VECTOR].r.payload.word
        vcmd = vseq.i_cmd.payload
        m.d.comb += [
            vseq.i_cmd.valid.eq(issue[_VECTOR]),
            vcmd.act.eq(vword[32 : 32 + vcmd.act.shape().size]),
            vcmd.signal.signal_en.eq(heads[_VECTOR].signal_en),
            vcmd.signal.signal_sem.eq(heads[_VECTOR].signal_sem),
        ]
        v_index = Signal(32)
        with m.If(issue[_VECTOR]):
            m.d.sync += v_index.eq(queues[_VECTOR].r.payload.index)
        v_done = vseq.o_done.valid
        v_sig = Cat(vseq.o_done.payload.signal_en, vseq.o_done.payload.signal_sem)

        # Links: SEND and RECV, one instruction each in flight.
        link_info = {}
        for e, unit, field in ((_SEND, snd, "send"), (_RECV, rcv, "recv")):
            word = queues[e].r.payload.word
            cmd = unit.i_cmd.payload
            body = getattr(cmd, field)
            index = Signal(32, name=f"{field}_index")
            wsem = Signal(5, name=f"{field}_wait_sem")
            with m.If(issue[e]):
                m.d.sync += [index.eq(queues[e].r.payload.index), wsem.eq(heads[e].wait_sem)]
            m.d.comb += [
                unit.i_cmd.valid.eq(issue[e]),
                body.eq(word[32 : 32 + body.shape().size]),
                cmd.signal.signal_en.eq(heads[e].signal_en),
                cmd.signal.signal_sem.eq(heads[e].signal_sem),
            ]
            sig = Cat(unit.o_done.payload.signal_en, unit.o_done.payload.signal_sem)
            link_info[e] = (unit.o_done.valid, sig, index, wsem)

        # Control: NOP retires as it issues; END ends the program; BARRIER arrives as it
        # issues and completes when the chip says every core of its mask has arrived.
        c_sig_head = Cat(heads[_CONTROL].signal_en, heads[_CONTROL].signal_sem)
        bar_sig = Signal(6)
        bar_index = Signal(32)
        bar_wsem = Signal(5)
        bar_issue = issue[_CONTROL] & is_bar_head
        bar_mask = data.View(instruction_layout(Op.BARRIER), queues[_CONTROL].r.payload.word).mask
        all_cores = (1 << p.cores) - 1
        with m.If(bar_issue):
            m.d.sync += [
                bar_busy.eq(1),
                bar_sig.eq(c_sig_head),
                bar_index.eq(queues[_CONTROL].r.payload.index),
                bar_wsem.eq(heads[_CONTROL].wait_sem),
                self.barrier_mask.eq(Mux(bar_mask.any(), bar_mask, all_cores)),
            ]
        with m.If(bar_busy & self.barrier_go):
            m.d.sync += bar_busy.eq(0)
        m.d.comb += self.barrier_req.eq(bar_busy)
        c_fires = Signal()
        m.d.comb += c_fires.eq((issue[_CONTROL] & ~is_bar_head) | (bar_busy & self.barrier_go))
        c_sig = Mux(bar_busy, bar_sig, c_sig_head)
        c_index = Mux(bar_busy, bar_index, queues[_CONTROL].r.payload.index)
        end_issue = issue[_CONTROL] & is_end_head

        # Named wires for instruction traces (verif/trace_tb.py reads them on Icarus):
        # which instruction starts and which completes, per engine, each cycle.
        for i, q in queues.items():
            start_ix = Signal(32, name=f"trace_start_index{i}")
            m.d.comb += start_ix.eq(q.r.payload.index)
        for name, fires, index in (
            ("dma", d_done, d_index),
            ("tensor", t_retire, t_index),
            ("vector", v_done, v_index),
            ("send", link_info[_SEND][0], link_info[_SEND][2]),
            ("recv", link_info[_RECV][0], link_info[_RECV][2]),
            ("control", c_fires, c_index),
        ):
            done = Signal(name=f"trace_done_{name}")
            done_ix = Signal(32, name=f"trace_done_index_{name}")
            m.d.comb += [done.eq(fires), done_ix.eq(index)]

        # ---- completions: signals ------------------------------------------------------
        events = [  # (fires, signal fields, index, engine)
            (d_ok, d_sig, d_index, _DMA),
            (t_retire, t_sig, t_index, _TENSOR),
            (v_done, v_sig, v_index, _VECTOR),
            (link_info[_SEND][0], link_info[_SEND][1], link_info[_SEND][2], _SEND),
            (link_info[_RECV][0], link_info[_RECV][1], link_info[_RECV][2], _RECV),
            (c_fires, c_sig, c_index, _CONTROL),
        ]
        for k, (fires, sig, _, _) in enumerate(events):
            m.d.comb += [
                sems.signal[k].en.eq(fires & sig[0]),
                sems.signal[k].sem.eq(sig[1:6]),
            ]
        m.d.comb += self.sem_values.eq(sems.values.as_value()[: min(32, 8 * p.semaphores)])

        # ---- errors ----------------------------------------------------------------------
        finish_ok = Signal()
        finish_err = Signal()
        with m.If(running & d_done & ~d_ok & ~halt_exec):
            m.d.sync += [halt_exec.eq(1)]
            m.d.sync += report(
                CoreError.DMA, _DMA, dma.o_done.payload.addr, d_index, dma.o_done.payload.code
            )
        with m.Elif(running & sems.overflow & ~halt_exec):
            # The first signaller (in port order) naming a semaphore at 255.
            m.d.sync += halt_exec.eq(1)
            found = Const(0)
            for fires, sig, index, eng in events:
                at_max = sem_arr[sig[1:6]] == 255
                hit = fires & sig[0] & at_max & ~found
                with m.If(hit):
                    m.d.sync += report(CoreError.SEM_OVERFLOW, eng, sig[1:6], index)
                found = found | (fires & sig[0] & at_max)

        # Quiet: nothing running, nothing can start, dispatch cannot proceed.
        startable = [
            q.r.valid & wait_ok[e] & (eng_ready[e] if e == _CONTROL else 1)
            for e, q in queues.items()
        ]
        dispatch_stuck = pending | dispatch_ended | halt_exec | (o.valid & ~room)
        signalling = Cat(*(s.en for s in sems.signal)).any()
        quiet = Signal()
        # A fetch unit blocked behind a full queue counts as stuck, not busy.
        m.d.comb += quiet.eq(
            running & stalled & ~Cat(*startable).any() & dispatch_stuck & ~signalling
            & (~fetch.busy | (o.valid & ~room))
        )  # fmt: skip
        quiet_cnt = Signal(32)
        with m.If(quiet):
            m.d.sync += quiet_cnt.eq(quiet_cnt + 1)
        with m.Else():
            m.d.sync += quiet_cnt.eq(0)
        limit = Mux(self.watchdog < 4, 4, self.watchdog)
        settle = 3  # cycles for a pending error or a halt to be final

        # An execution error ends the program once everything in flight has finished.
        # (Pulses are plain expressions, not assignments under If: Icarus does not run an
        # ``always @*`` block until one of its inputs changes, so a constant-0 condition
        # would leave them X and the X would stick in IRQ_STATUS.)
        end_exec = running & halt_exec & stalled & ~fetch.busy
        end_pending = running & pending & quiet & (quiet_cnt >= settle)
        end_deadlock = running & quiet & (quiet_cnt >= limit - 1)
        m.d.comb += [
            finish_err.eq(end_exec | end_pending | end_deadlock),
            finish_ok.eq(running & end_issue & ~halt_exec),
        ]
        with m.If(end_exec):
            pass
        with m.Elif(end_pending):
            m.d.sync += report(pend_code, pend_engine, pend_addr, pend_index)
        with m.Elif(end_deadlock):
            # The first non-empty queue in priority order; a link or barrier instruction
            # waiting in its engine counts as the head of its queue.
            first = Const(0)
            waiting = {_SEND: snd.busy, _RECV: rcv.busy, _CONTROL: bar_busy}
            for e in _PRIORITY:
                q = queues[e]
                held = waiting.get(e, Const(0))
                if e in link_info:
                    index, wsem = link_info[e][2], link_info[e][3]
                elif e == _CONTROL:
                    index, wsem = bar_index, bar_wsem
                else:
                    index, wsem = q.r.payload.index, heads[e].wait_sem
                with m.If(held & ~first):
                    m.d.sync += report(CoreError.DEADLOCK, e, wsem, index)
                with m.Elif(q.r.valid & ~first):
                    m.d.sync += report(CoreError.DEADLOCK, e, heads[e].wait_sem, q.r.payload.index)
                first = first | held | q.r.valid

        with m.If(finish_err):
            m.d.sync += [running.eq(0), self.error.eq(1)]
        with m.Elif(finish_ok):
            m.d.sync += [running.eq(0), self.done.eq(1)]
        bad_start = Signal()
        m.d.comb += bad_start.eq(start & (misaligned | ~self.length.any()))
        m.d.comb += [
            self.done_pulse.eq(finish_ok & ~finish_err),
            self.error_pulse.eq(finish_err | bad_start),
        ]

        with m.If(self.clear & ~running):
            m.d.sync += self.done.eq(0)

        # ---- start ---------------------------------------------------------------------
        with m.If(start):
            m.d.sync += [
                base.eq(self.base),
                length.eq(self.length),
                dispatch_ended.eq(0),
                halt_exec.eq(0),
                self.done.eq(0),
                self.error.eq(0),
            ]
            with m.If(misaligned):
                m.d.sync += [self.error.eq(1)]
                m.d.sync += report(CoreError.FETCH, _DISPATCH, self.base, 0)
            with m.Elif(~self.length.any()):
                m.d.sync += [self.error.eq(1)]
                m.d.sync += report(CoreError.NO_END, _DISPATCH, self.base, 0)
            with m.Else():
                m.d.sync += [running.eq(1), pending.eq(0)]
        m.d.comb += self.bus_idle.eq(~dma.busy & ~dma_inflight & ~fetch.busy)

        # ---- performance counters --------------------------------------------------------
        c = self.counters
        cnt_clear = start | (self.clear & ~running)
        retired = (
            d_done.as_unsigned() + t_retire.as_unsigned() + v_done.as_unsigned()
            + link_info[_SEND][0].as_unsigned() + link_info[_RECV][0].as_unsigned()
            + c_fires.as_unsigned()
        )  # fmt: skip
        incs = {
            "cycles": running,
            "dma_busy": running & (dma.busy | dma_inflight),
            "tensor_busy": running & (tseq.busy | tret_level.any()),
            "vector_busy": running & vseq.busy,
            "dma_sem_wait": running & queues[_DMA].r.valid & ~wait_ok[_DMA],
            "tensor_sem_wait": running & queues[_TENSOR].r.valid & ~wait_ok[_TENSOR],
            "vector_sem_wait": running & queues[_VECTOR].r.valid & ~wait_ok[_VECTOR],
            "control_sem_wait": running & queues[_CONTROL].r.valid & ~wait_ok[_CONTROL],
            "dispatch_stall": running & o.valid & ~room & can_dispatch,
            "retired": retired,
            "link_rows_sent": snd.o_link.valid & snd.o_link.ready,
            "link_rows_received": rcv.i_link.valid & rcv.i_link.ready,
        }
        regs = {
            name: Signal(width, name=f"cnt_{name}")
            for name, width, _ in COUNTERS
            if name in incs or name.startswith("dma_bytes")
        }
        for name, inc in incs.items():
            m.d.sync += regs[name].eq(regs[name] + inc)
        d_bytes = (d_counts << d_esize)[:32]
        with m.If(d_ok & d_load):
            m.d.sync += regs["dma_bytes_read"].eq(regs["dma_bytes_read"] + d_bytes)
        with m.If(d_ok & ~d_load):
            m.d.sync += regs["dma_bytes_written"].eq(regs["dma_bytes_written"] + d_bytes)
        for name, reg in regs.items():
            m.d.comb += getattr(c, name).eq(reg)
        # Rows and MACs: the sequencers count since reset; report the difference from START.
        rows0, macs0, act0 = Signal(32), Signal(48), Signal(32)
        with m.If(cnt_clear):
            m.d.sync += [rows0.eq(tseq.rows), macs0.eq(tseq.macs), act0.eq(vseq.rows)]
        m.d.comb += [
            c.matmul_rows.eq(tseq.rows - rows0),
            c.macs.eq(tseq.macs - macs0),
            c.act_rows.eq(vseq.rows - act0),
        ]
        with m.If(cnt_clear):
            m.d.sync += [reg.eq(0) for reg in regs.values()]
        return m


class NeuronCore(wiring.Component):
    """One NeuronCore (see the module docstring).

    Parameters
    ----------
    params : NCoreParams
    id_width : int
        AXI ID width (≥ 1; the DMA uses ID 0, fetch ID 1).
    csr_addr_width : int
        Width of the AXI4-Lite address.
    **dma_options
        Passed to :class:`ncore.hw.dma.DMA` (``max_burst``, ``max_reads``, ``max_writes``).

    Members
    -------
    axi : Out(AxiSignature)
        The AXI4 master to DRAM.
    s_axil_* : the AXI4-Lite register slave (flat ports, as :class:`ncore.hw.csr.CsrFile`).
    irq : Out(1)
        ``IRQ_STATUS & IRQ_ENABLE`` is non-zero.
    dbg : In(DebugSignature)
        SBUF/PSUM backdoor reads while not running.
    """

    def __init__(
        self, params: NCoreParams, *, id_width: int = 4, csr_addr_width: int = 8, **dma_options
    ):
        if id_width < 1:
            raise ValueError("id_width must be ≥ 1")
        self._p = params
        self.csr = CsrFile(core_regs(params), addr_width=csr_addr_width)
        self._core = _Core(params, id_width=id_width, dma_options=dma_options)
        members = {
            "axi": Out(
                AxiSignature(
                    addr_width=params.axi_addr_width,
                    data_width=params.axi_data_width,
                    id_width=id_width,
                )
            ),
            "irq": Out(1),
            "dbg": In(DebugSignature(params)),
            # chip connections (see hw/chip.py): this core's number, the ring link, the barrier
            "core_id": In(4),
            "link_out": Out(stream.Signature(link_layout(params))),
            "link_in": In(stream.Signature(link_layout(params))),
            "barrier_req": Out(1),
            "barrier_mask": Out(16),
            "barrier_go": In(1),
        }
        for name, member in self.csr.signature.members.items():
            if name.startswith("s_axil_"):
                members[name] = member
        super().__init__(members)

    @property
    def params(self) -> NCoreParams:
        return self._p

    def elaborate(self, platform):
        p = self._p
        m = Module()
        m.submodules.csr = csr = self.csr
        soft_rst = Signal()
        m.submodules.core = core = ResetInserter(soft_rst)(self._core)
        for name in self.signature.members:
            if name.startswith("s_axil_"):
                port, inner = getattr(self, name), getattr(csr, name)
                if self.signature.members[name].flow == In:
                    m.d.comb += inner.eq(port)
                else:
                    m.d.comb += port.eq(inner)
        wiring.connect(m, wiring.flipped(self.axi), core.axi)
        wiring.connect(m, wiring.flipped(self.dbg), core.dbg)
        wiring.connect(m, core.link_out, wiring.flipped(self.link_out))
        wiring.connect(m, wiring.flipped(self.link_in), core.link_in)
        m.d.comb += [
            core.core_id.eq(self.core_id),
            self.barrier_req.eq(core.barrier_req),
            self.barrier_mask.eq(core.barrier_mask),
            core.barrier_go.eq(self.barrier_go),
        ]

        ctrl = csr.o_ctrl
        resetting = Signal()
        with m.If(ctrl[1]):
            m.d.sync += resetting.eq(1)
        with m.If(resetting & core.bus_idle):
            m.d.comb += soft_rst.eq(1)
            m.d.sync += resetting.eq(0)
        ea = max(32, p.axi_addr_width)
        w0, w1 = params_words(p)
        m.d.comb += [
            core.start.eq(ctrl[0] & ~resetting),
            core.halt.eq(resetting),
            core.clear.eq(ctrl[2]),
            core.base.eq(Cat(csr.o_prog_base, csr.o_prog_base_hi)[: p.axi_addr_width]),
            core.length.eq(csr.o_prog_len),
            core.watchdog.eq(csr.o_watchdog),
            csr.i_id.eq(CORE_ID),
            csr.i_status.eq(
                Cat(
                    ~core.running & ~resetting,
                    core.running,
                    core.done,
                    core.error,
                    resetting,
                    Const(0, 3),
                    core.err_code,
                    core.err_engine,
                    Const(0, 1),
                    core.err_dma_code,
                )
            ),
            csr.i_err_addr.eq(core.err_addr[:32]),
            csr.i_err_addr_hi.eq(core.err_addr[32:] if ea > 32 else 0),
            csr.i_err_index.eq(core.err_index),
            csr.i_params0.eq(w0),
            csr.i_params1.eq(w1),
            csr.i_sem_values.eq(core.sem_values),
            csr.i_irq_status_set.eq(Cat(core.done_pulse, core.error_pulse)),
            self.irq.eq((csr.o_irq_status & csr.o_irq_enable).any()),
        ]
        for name, width, _ in COUNTERS:
            value = getattr(core.counters, name)
            if width == 64:
                m.d.comb += [
                    getattr(csr, f"i_{name}_lo").eq(value[:32]),
                    getattr(csr, f"i_{name}_hi").eq(value[32:]),
                ]
            else:
                m.d.comb += getattr(csr, f"i_{name}").eq(value)
        return m
