"""Golden instruction-set simulator (ISS) of one NeuronCore: the oracle for the core's RTL.

:class:`Core` holds the architectural state and :meth:`Core.run` executes a binary program
(the 512-bit words of :mod:`ncore.isa`) to the same DRAM, SBUF and PSUM contents as the
hardware, bit for bit. ``docs/core.md`` is the long form of this contract.

State
    * ``dram``: ``uint8`` array, the whole memory the core sees (byte ``a`` at index ``a``);
      addresses at or beyond ``len(dram)`` answer DECERR, as the simulation memory does.
    * ``sbuf``: ``rows × sbuf_depth`` lane bits (``uint8`` in int8-only builds, else
      ``uint16``; int8 values are then the low byte of a lane).
    * ``psum``: a :class:`ncore.golden.psum.Psum` (``cols × psum_depth`` uint32).
    * ``sem``: ``params.semaphores`` 8-bit semaphores, cleared when a program starts.
    * ``wbank``: the tensor engine's two ``rows × cols`` weight banks (lane bits) and
      ``active_bank``, the bank the last LOADW filled (1 after reset, so the first LOADW
      fills bank 0). Banks reset to zero.
    * ``ve_params``: the vector engine's per-lane ``scale``/``bias``/``shift`` (uint32,
      ``lanes = max(rows, cols)``), reset to zero.
    * ``link_out`` / ``link_in``: the core-to-core links (``collections.deque`` of rows, each
      ``rows`` lane values), the same deque for a standalone core (loop back);
      ``barrier``: the :class:`Barrier` model; ``index``: the core's number on the chip.
      :class:`ncore.golden.chip.Chip` wires cores into a ring with one shared DRAM.

    SBUF, PSUM, DRAM, weight banks and vector parameters persist from one :meth:`Core.run`
    to the next; queues and semaphores start empty/zero, and so do the links and the
    barrier model at every :meth:`Core.run` (and every ``Chip.run``).

Dispatch and execution
    Instructions are fetched in order (from the given words, or from DRAM at
    ``program_base`` for ``program_len`` words) and dispatched to six in-order queues of
    ``params.queue_depth`` entries: DMA (``DMA``), tensor (``LOADW``, ``MATMUL``), vector
    (``ACT``), send (``SEND``), recv (``RECV``) and control (``NOP``, ``END``,
    ``BARRIER``). Dispatch stalls while the target queue is full and stops after ``END``.
    The engines are modelled by a scheduler that repeatedly picks one engine whose queue
    head can start — no ``wait_en``, or semaphore ``wait_sem`` > 0 (it takes one) — in
    fixed priority DMA > tensor > vector > send > recv > control (or an adversarial order,
    see ``pick``), executes that instruction atomically, and then applies its ``signal``
    (+1). ``END`` can start only when the other five queues are empty; the program is done
    when it has executed. A ``RECV`` can start only when its link holds every row it takes.
    A ``BARRIER`` takes its semaphore and arrives when it starts; it completes (and
    signals) when the barrier releases it — at once in the same step if every core of its
    mask has arrived, else in a later step, the control queue running nothing meanwhile.
    :class:`Run` is one program's run advanced step by step (:meth:`Core.start`);
    :meth:`Core.run` drives it alone, :class:`ncore.golden.chip.Chip` drives the runs of
    all cores together.

    Each queue behaves as if its engine ran its instructions one at a time in program order:
    an instruction sees every effect of the earlier instructions of its own queue, and its
    signal is applied after all of them completed. Between queues, only semaphores order
    anything. A *correctly synchronised* program orders every pair of instructions of
    different queues that touch a common location (one of them writing) through a chain of
    signal → wait, and gives each semaphore one waiting queue; its final state does not
    depend on the pick order, which is the assumption that makes this ISS an oracle for an
    RTL core whose engines overlap in time. ``pick`` lets tests check that assumption.

Instruction semantics (patterns are ``start + i0·s0 + i1·s1 + i2·s2``, ``i0`` fastest;
element ``r`` is the ``r``-th in that order; follow patterns use the counts of the pattern
they follow)
    * ``DMA``: :func:`ncore.golden.dma.execute` on DRAM and SBUF (and, for a
      ``PSUM_STORE``, reading the PSUM: its 32-bit words to DRAM), including its partial
      effects on an error. A ``PSUM_STORE`` is an ordinary DMA-queue instruction: a program
      orders it after the MATMUL that wrote its PSUM entries by a semaphore (a MATMUL
      signals once its PSUM writes are done), like any other DMA store.
    * ``LOADW``: fills the idle bank (``1 - active_bank``) and makes it active: column
      ``j < n``, partition ``p < k`` is SBUF ``[p, start + j·stride]``; the rest is 0.
    * ``MATMUL``: activation row ``r`` is SBUF entry ``mov[r]``, partitions ``< k`` (lanes
      ``≥ k`` are 0); ``y = tensor_engine.matmul(x, W_active, dtype)`` over the whole
      ``rows × cols`` tile; columns ``< n`` of ``y[r]`` go to PSUM entry ``psum[r]`` with
      OVERWRITE, or with ``accumulate`` ACC_INT (int8) / ACC_FP (fp16, bf16), row by row in
      order. int8 operands are the low byte of a lane.
    * ``ACT``: with ``load_params``, lane ``l < rows`` of field ``f`` (0 scale, 1 bias,
      2 shift) becomes ``Σ_i SBUF[l, params + P·f + i] << (i·lane_width)`` for
      ``i < P = 32 / lane_width`` (P = 2 in FP builds, as ``isa.py`` says; 4 in int8-only
      builds), lanes ``≥ rows`` 0. Then for each element ``r``: ``a`` = PSUM entry
      ``src[r]`` (``cols`` lanes, src_psum) or SBUF entry ``src[r]`` (``rows`` lanes,
      zero-extended), other lanes 0; ``b`` = SBUF entry ``b[r]`` (read only for ADD/MAX);
      ``out = vector_engine.run(config, ve_params, a, b)``; the low ``lane_width`` bits of
      lanes ``< n`` go to SBUF entry ``dst[r]``, partitions ``< n``. All rows are read
      before any is written: a program must not let element ``r'`` read what an earlier
      element ``r < r'`` of the same ACT writes (an element may overwrite its own sources).
    * ``SEND``: for each element ``r`` of ``src``, appends to ``link_out`` the row SBUF entry
      ``src[r]``, partitions ``< n``, partitions ``≥ n`` 0. It never waits (unbounded link).
    * ``RECV``: for each element ``r`` of ``dst``, pops the next row of ``link_in`` and writes
      its partitions ``< n`` to SBUF entry ``dst[r]`` (later elements win on a repeated
      entry).
    * ``BARRIER``: ``mask`` bit ``k``: core ``k`` takes part, 0: every core (the same barrier
      as the mask of all cores). The ``g``-th BARRIER of a mask on a core is released when
      every core of the mask has started ``g + 1`` BARRIERs of that mask. A standalone core
      releases a barrier whose only member is itself (any BARRIER when ``cores`` = 1).
    * ``NOP``: nothing. ``END``: ends the program.

Errors (``Result.error``; the first one wins; after it no instruction starts)
    *Dispatch errors* are found when dispatch reaches the instruction, in program order:
    ILLEGAL_OPCODE, ILLEGAL_FIELD (reserved/tail bits set; an enabled ``wait_sem`` or
    ``signal_sem`` ≥ ``params.semaphores``; ``k``/``n`` 0 or > rows/cols (ACT: ``n`` >
    rows); a pattern count 0; a MATMUL dtype not built; an ACT config the vector engine
    rejects, or ``out_type`` INT32/FP32; SEND/RECV ``n`` 0 or > rows, a count 0 in their
    pattern; a BARRIER mask with a bit ≥ ``cores``, or non-zero without the core's own bit),
    SBUF_RANGE / PSUM_RANGE (any entry of any used pattern outside the memory; checked after
    the field checks, in field order), FETCH (the word cannot be read) and NO_END (dispatch
    reached ``program_len`` without ``END``).
    They are *precise*: dispatch stops, every earlier instruction still runs (the queues
    drain), and the error is raised when nothing more can start; the faulting instruction
    and all later ones never start, so the state is exactly that of the program prefix.
    *Execution errors* stop the core at once: DMA (the engine's own code in ``dma_code``
    and address, with its partial effects) and SEM_OVERFLOW (a signal of a semaphore at
    255; the instruction's own writes are done and it counts as retired; the semaphore
    stays 255). An execution error during a drain replaces the pending dispatch error.
    DEADLOCK: no queue head can start, some queue is non-empty (or a BARRIER is in flight)
    and dispatch cannot proceed; reported for the first non-empty queue in pick order
    (address: the ``wait_sem`` field of its head, also when the head waits for link rows or
    for the other queues; for a BARRIER in flight, its mask of cores with 0 expanded). The
    state of the other engines after an execution error matches the hardware when the
    program orders them relative to the faulting instruction.

    Reported addresses: dispatch errors other than range errors report the byte address
    of the instruction word (``program_base + 64·index``); SBUF_RANGE / PSUM_RANGE an entry
    of the first bad pattern (modulo 2³²): its lowest entry if that is negative, else its
    highest (then ≥ the depth), which is cheap in hardware (:func:`pattern_extent`); DMA the
    DMA's address; SEM_OVERFLOW and DEADLOCK the semaphore number (DEADLOCK of a BARRIER
    in flight: its mask); NO_END the address of word ``program_len``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from .. import isa
from ..isa import CoreError, Op
from ..params import DTYPES, NCoreParams
from . import dma as gdma
from . import tensor_engine
from . import vector_engine as gve
from .fp import fp32_add
from .psum import ACC_FP, ACC_INT, OVERWRITE, Psum

__all__ = [
    "ENGINE_OF",
    "PRIORITY",
    "SEM_MAX",
    "Barrier",
    "Core",
    "Engine",
    "Result",
    "Run",
    "Stats",
    "param_pieces",
    "pattern_entries",
    "pattern_extent",
    "pick_order",
    "run",
    "validate",
]

SEM_MAX = 255


class Engine(IntEnum):
    """The engine an instruction (or a fault) belongs to."""

    DMA = 0
    TENSOR = 1
    VECTOR = 2
    CONTROL = 3
    DISPATCH = 4  #: fetch/dispatch: ILLEGAL_OPCODE, FETCH, NO_END
    SEND = 5  #: the outgoing link (SEND)
    RECV = 6  #: the incoming link (RECV)


ENGINE_OF = {
    Op.DMA: Engine.DMA,
    Op.LOADW: Engine.TENSOR,
    Op.MATMUL: Engine.TENSOR,
    Op.ACT: Engine.VECTOR,
    Op.NOP: Engine.CONTROL,
    Op.END: Engine.CONTROL,
    Op.SEND: Engine.SEND,
    Op.RECV: Engine.RECV,
    Op.BARRIER: Engine.CONTROL,
}
#: The hardware-like pick order: DMA > tensor > vector > send > recv > control.
PRIORITY = (Engine.DMA, Engine.TENSOR, Engine.VECTOR, Engine.SEND, Engine.RECV, Engine.CONTROL)
_QUEUES = PRIORITY
_ILLEGAL_OUT = (gve.VType.INT32, gve.VType.FP32)


def param_pieces(params: NCoreParams) -> int:
    """SBUF entries per 32-bit vector-engine parameter: ``32 / lane_width``."""
    return 32 // params.lane_width


# -- access patterns ------------------------------------------------------------------------


def _dims(ap: dict) -> list[tuple[int, int]]:
    return [(int(d["count"]), int(d["stride"])) for d in ap["dims"]]


def _follow_dims(counts: list[int], follow: dict) -> list[tuple[int, int]]:
    return [(c, int(s["stride"])) for c, s in zip(counts, follow["strides"], strict=True)]


def pattern_entries(start: int, dims) -> np.ndarray:
    """Entries of a pattern in element order (``i0`` fastest), as int64."""
    (c0, s0), (c1, s1), (c2, s2) = dims
    i2, i1, i0 = np.meshgrid(np.arange(c2), np.arange(c1), np.arange(c0), indexing="ij")
    return (start + i0 * s0 + i1 * s1 + i2 * s2).astype(np.int64).ravel()


def pattern_extent(start: int, dims) -> tuple[int, int]:
    """``(lowest, highest)`` entry of a pattern (counts ≥ 1): the extremes are at its corners,
    ``start + Σ min(0, (c − 1)·s)`` and ``start + Σ max(0, (c − 1)·s)``."""
    lo = hi = start
    for c, s in dims:
        span = (c - 1) * s
        lo += min(0, span)
        hi += max(0, span)
    return lo, hi


# -- validation -----------------------------------------------------------------------------


class _Fault(Exception):
    def __init__(self, code: CoreError, address: int | None = None, dma_code=0):
        super().__init__(code, address)
        self.code = CoreError(code)
        self.address = address
        self.dma_code = gdma.ErrorCode(dma_code)


def _field(cond: bool) -> None:
    if cond:
        raise _Fault(CoreError.ILLEGAL_FIELD)


def _range(code: CoreError, start: int, dims, depth: int) -> None:
    """Fault when the pattern leaves ``0 … depth − 1``: the address is its lowest entry if
    that is negative, else its highest (which is then ≥ ``depth``), modulo 2³²."""
    lo, hi = pattern_extent(start, dims)
    if lo < 0:
        raise _Fault(code, lo & 0xFFFF_FFFF)
    if hi >= depth:
        raise _Fault(code, hi & 0xFFFF_FFFF)


#: The SBUF pattern field of SEND and RECV.
_LINK_AP = {Op.SEND: "src", Op.RECV: "dst"}


def _check(p: NCoreParams, op: Op, f: dict, core: int = 0) -> None:
    """Raise :class:`_Fault` for the first dispatch error of a decoded instruction of core
    number ``core``."""
    # -- field checks (ILLEGAL_FIELD) --
    _field(f["reserved"] != 0 or f.get("tail", 0) != 0)
    _field(f["wait_en"] and f["wait_sem"] >= p.semaphores)
    _field(f["signal_en"] and f["signal_sem"] >= p.semaphores)
    if op == Op.LOADW:
        _field(not 1 <= f["k"] <= p.rows or not 1 <= f["n"] <= p.cols)
    elif op == Op.MATMUL:
        _field(not 1 <= f["k"] <= p.rows or not 1 <= f["n"] <= p.cols)
        _field(f["dtype"] >= len(DTYPES) or DTYPES[f["dtype"]] not in p.dtypes)
        _field(any(c == 0 for c, _ in _dims(f["mov"])))
    elif op == Op.ACT:
        _field(not 1 <= f["n"] <= p.rows)
        _field(any(c == 0 for c, _ in _dims(f["src"])))
        cfg = f["config"]
        _field(gve.row_error(cfg, p.has_fp) or cfg["out_type"] in _ILLEGAL_OUT)
    elif op in _LINK_AP:
        _field(not 1 <= f["n"] <= p.rows)
        _field(any(c == 0 for c, _ in _dims(f[_LINK_AP[op]])))
    elif op == Op.BARRIER:
        mask = f["mask"]
        _field(mask >> p.cores != 0 or (mask != 0 and not mask >> core & 1))
    # -- range checks, in field order --
    if op == Op.LOADW:
        _range(
            CoreError.SBUF_RANGE, f["start"], [(f["n"], f["stride"]), (1, 0), (1, 0)], p.sbuf_depth
        )
    elif op == Op.MATMUL:
        dims = _dims(f["mov"])
        _range(CoreError.SBUF_RANGE, f["mov"]["start"], dims, p.sbuf_depth)
        counts = [c for c, _ in dims]
        _range(
            CoreError.PSUM_RANGE, f["psum"]["start"], _follow_dims(counts, f["psum"]), p.psum_depth
        )
    elif op == Op.ACT:
        if f["load_params"]:
            _range(
                CoreError.SBUF_RANGE,
                f["params"],
                [(3 * param_pieces(p), 1), (1, 0), (1, 0)],
                p.sbuf_depth,
            )
        dims = _dims(f["src"])
        counts = [c for c, _ in dims]
        if f["src_psum"]:
            _range(CoreError.PSUM_RANGE, f["src"]["start"], dims, p.psum_depth)
        else:
            _range(CoreError.SBUF_RANGE, f["src"]["start"], dims, p.sbuf_depth)
        if f["config"]["op"] != gve.Op.ACT:
            _range(
                CoreError.SBUF_RANGE, f["b"]["start"], _follow_dims(counts, f["b"]), p.sbuf_depth
            )
        _range(
            CoreError.SBUF_RANGE, f["dst"]["start"], _follow_dims(counts, f["dst"]), p.sbuf_depth
        )
    elif op in _LINK_AP:
        ap = f[_LINK_AP[op]]
        _range(CoreError.SBUF_RANGE, ap["start"], _dims(ap), p.sbuf_depth)


def validate(params: NCoreParams, word: int, core: int = 0) -> tuple[CoreError, int | None] | None:
    """``(code, address)`` of the dispatch error of one instruction word on core number
    ``core`` (only BARRIER depends on it), or None if it is legal. ``address`` is the bad
    entry for SBUF_RANGE / PSUM_RANGE, else None (the core reports the instruction's
    address)."""
    try:
        op, f = isa.decode(word)
    except ValueError:
        return CoreError.ILLEGAL_OPCODE, None
    try:
        _check(params, op, f, core)
    except _Fault as e:
        return e.code, e.address
    return None


# -- results --------------------------------------------------------------------------------


@dataclass
class Stats:
    """Counters of one run (the RTL's performance counters, without the cycle counts)."""

    #: instructions retired per engine
    retired: dict = field(default_factory=lambda: {e: 0 for e in _QUEUES})
    #: instructions retired per opcode
    by_op: dict = field(default_factory=lambda: {op: 0 for op in Op})
    macs: int = 0  #: Σ M·k·n over MATMULs
    matmul_rows: int = 0
    act_rows: int = 0  #: rows processed by ACT
    dma_bytes_read: int = 0  #: DRAM bytes read by loads (elements moved × size)
    dma_bytes_written: int = 0  #: DRAM bytes written by stores (elements moved × size)
    sem_waits: int = 0  #: instructions that took a semaphore
    sem_signals: int = 0
    send_rows: int = 0  #: rows pushed into the outgoing link by SEND
    recv_rows: int = 0  #: rows popped from the incoming link by RECV
    barriers: int = 0  #: BARRIERs completed


@dataclass
class Result:
    """What the core reports at the end of a run."""

    error: CoreError = CoreError.NONE
    index: int | None = None  #: faulting instruction (program index), or None
    engine: Engine | None = None
    address: int = 0
    dma_code: gdma.ErrorCode = gdma.ErrorCode.NONE
    stats: Stats = field(default_factory=Stats)
    #: program indices of the retired instructions, in execution order
    trace: list = field(default_factory=list)
    #: DRAM bytes a failing DMA store may or may not have written (see golden.dma), or None
    dram_maybe: np.ndarray | None = None
    dram_maybe_values: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.error == CoreError.NONE


@dataclass
class _Instr:
    index: int
    op: Op
    f: dict


# -- the core -------------------------------------------------------------------------------


class Core:
    """Architectural state of one core and the ISS that runs programs on it.

    Parameters
    ----------
    params : NCoreParams
    dram : array_like of uint8, optional
        Initial DRAM contents (copied); its length is the memory size.
    dram_size : int, optional
        Size of an all-zero DRAM when ``dram`` is not given (default 1 MiB).
    faults : golden.dma.DramFaults, optional
        Extra DRAM regions answering SLVERR/DECERR (to DMA and to instruction fetch).
    dma_max_burst, dma_max_writes : int
        The DMA engine's configuration (they decide the partial effects of DMA errors).
    index : int
        The core's number on the chip (0 … cores − 1); a BARRIER mask must include it.

    Links and barrier: ``link_out`` and ``link_in`` are ``collections.deque`` of rows
    (``rows`` lane values each) — SEND appends to ``link_out``, RECV pops from the left of
    ``link_in``. A standalone core has one deque for both (the ring of one core loops back);
    :class:`~ncore.golden.chip.Chip` rewires them into a ring and gives every core its shared
    :class:`Barrier` (``barrier``).
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
        index: int = 0,
    ):
        p = self.params = params
        if not 0 <= index < p.cores:
            raise ValueError(f"core index {index} not in 0 … {p.cores - 1}")
        self.index = index
        if dram is None:
            dram = np.zeros(1 << 20 if dram_size is None else dram_size, dtype=np.uint8)
        self.dram = np.array(dram, dtype=np.uint8).ravel()
        self.lane_dtype = np.uint8 if p.lane_width == 8 else np.uint16
        self.sbuf = np.zeros((p.rows, p.sbuf_depth), dtype=self.lane_dtype)
        self.psum = Psum(p)
        self.sem = np.zeros(p.semaphores, dtype=np.uint8)
        self.wbank = np.zeros((2, p.rows, p.cols), dtype=self.lane_dtype)
        self.active_bank = 1
        self.lanes = gve.lanes(p)
        self.ve_params = {k: np.zeros(self.lanes, np.uint32) for k in ("scale", "bias", "shift")}
        self.faults = faults or gdma.DramFaults()
        self.dma_max_burst = dma_max_burst
        self.dma_max_writes = dma_max_writes
        self.result: Result | None = None
        self.link_out: collections.deque = collections.deque()
        self.link_in: collections.deque = self.link_out  # loop back
        self.barrier = Barrier(p.cores)

    # -- running ------------------------------------------------------------------------------

    def run(
        self,
        program=None,
        *,
        program_base: int = 0,
        program_len: int | None = None,
        pick=None,
    ) -> Result:
        """Run a program to its end or its first error; returns (and keeps) the result.

        The core runs alone: its links (one loop-back link unless a :class:`Chip
        <ncore.golden.chip.Chip>` rewired them) start empty and its barrier model starts
        afresh, so a BARRIER completes only if the core is its only member.

        Parameters
        ----------
        program : list of int, bytes, or None
            Instruction words, or a program image (:func:`ncore.isa.to_bytes`). None fetches
            ``program_len`` words from DRAM at ``program_base``, as the hardware does.
        program_base : int
            Byte address of word 0 (also used to report instruction addresses).
        program_len : int, optional
            Words in the program (default: all given words; required when fetching).
        pick : None, sequence of Engine, or numpy.random.Generator
            Which startable engine runs next: None is :data:`PRIORITY`; a sequence is another
            fixed priority of all six queues (e.g. reversed); a generator picks uniformly at
            random.
        """
        order, rng = pick_order(pick)
        self.link_in.clear()
        self.link_out.clear()
        self.barrier.reset()
        run = self.start(program, program_base=program_base, program_len=program_len)
        while not run.done:
            ready = run.startable(order)
            if not ready:
                run.stall(order)
                break
            run.step(ready[int(rng.integers(len(ready)))] if rng is not None else ready[0])
        return run.res

    def start(self, program=None, *, program_base: int = 0, program_len: int | None = None) -> Run:
        """Start a program (arguments as :meth:`run`) without running anything yet: the
        returned :class:`Run` is advanced one scheduling step at a time (a
        :class:`~ncore.golden.chip.Chip` interleaves the runs of its cores this way). It
        clears the semaphores, makes a fresh :attr:`result`, and does not touch the links
        or the barrier model."""
        words = None
        if program is not None:
            words = (
                isa.from_bytes(bytes(program))
                if isinstance(program, (bytes, bytearray))
                else [int(w) for w in program]
            )
            if program_len is None:
                program_len = len(words)
            if program_len > len(words):
                raise ValueError(f"program_len {program_len} > {len(words)} words given")
        elif program_len is None:
            raise ValueError("program_len is needed to fetch the program from DRAM")
        return Run(self, words, program_base, program_len)

    def _fetch(self, addr: int) -> int | None:
        """One instruction word from DRAM, or None if the read would fail."""
        end = addr + isa.WORD_BYTES
        if end > len(self.dram) or end > 1 << self.params.axi_addr_width:
            return None
        bb = self.params.axi_data_width // 8
        for a in range(addr & ~(bb - 1), end, bb):
            if self.faults.read_resp(a, bb) != gdma.Resp.OKAY:
                return None
        return int.from_bytes(self.dram[addr:end].tobytes(), "little")

    # -- instructions -------------------------------------------------------------------------

    def _execute(self, ins: _Instr, res: Result) -> None:
        op, f = ins.op, ins.f
        if op == Op.DMA:
            self._dma(f["desc"], res)
        elif op == Op.LOADW:
            self._loadw(f)
        elif op == Op.MATMUL:
            self._matmul(f, res)
        elif op == Op.ACT:
            self._act(f, res)
        elif op == Op.SEND:
            self._send(f, res)
        elif op == Op.RECV:
            self._recv(f, res)

    def _dma(self, d: dict, res: Result) -> None:
        desc = gdma.Descriptor(
            d["direction"],
            d["esize"],
            gdma.Pattern(d["dram"]["start"], _dims(d["dram"])),
            gdma.Pattern(d["sbuf"]["start"], _dims(d["sbuf"])),
        )
        size = len(self.dram)
        faults = gdma.DramFaults([*self.faults.regions, (size, 1 << 64, gdma.Resp.DECERR)])
        bad = gdma.validate(desc, self.params)
        lo = desc.dram.start
        hi = lo + sum((c - 1) * s for c, s in desc.dram.dims) + desc.ebytes  # exclusive
        if bad is not None or hi <= size:
            dram, base = self.dram, 0
        else:
            # The pattern reaches beyond the modelled memory (those bytes answer DECERR):
            # run on a window covering it, then copy the modelled part back.
            if hi - lo > 1 << 28:
                raise ValueError(f"DMA pattern spans {hi - lo} bytes beyond the DRAM model")
            dram, base = np.zeros(hi - lo, dtype=np.uint8), lo
            if lo < size:
                dram[: size - lo] = self.dram[lo:]
        out = gdma.execute(
            desc,
            self.params,
            dram,
            self.sbuf,
            max_burst=self.dma_max_burst,
            max_writes=self.dma_max_writes,
            faults=faults,
            dram_base=base,
            psum=self.psum.mem,
        )
        if dram is not self.dram and lo < size:
            self.dram[lo:] = dram[: size - lo]
        moved = out.elements * desc.ebytes
        if desc.direction == gdma.Direction.LOAD:
            res.stats.dma_bytes_read += moved
        else:
            res.stats.dma_bytes_written += moved
        if out.maybe is not None:
            maybe = np.zeros(size, bool)
            values = self.dram.copy()
            n = min(len(out.maybe), size - base) if base < size else 0
            maybe[base : base + n] = out.maybe[:n]
            values[base : base + n] = out.maybe_values[:n]
            res.dram_maybe, res.dram_maybe_values = maybe, values
        if out.code != gdma.ErrorCode.NONE:
            raise _Fault(CoreError.DMA, out.addr, out.code)

    def _loadw(self, f: dict) -> None:
        p = self.params
        bank = 1 - self.active_bank
        cols = f["start"] + f["stride"] * np.arange(f["n"])
        w = np.zeros((p.rows, p.cols), dtype=self.lane_dtype)
        w[: f["k"], : f["n"]] = self.sbuf[: f["k"], cols]
        self.wbank[bank] = w
        self.active_bank = bank

    def _operands(self, lanes: np.ndarray, dtype: str) -> np.ndarray:
        """Lane bits → what ``tensor_engine.matmul`` takes for ``dtype``."""
        if dtype == "int8":
            return (lanes & 0xFF).astype(np.uint8).view(np.int8)
        return lanes.astype(np.uint16)

    def _matmul(self, f: dict, res: Result) -> None:
        p = self.params
        dims = _dims(f["mov"])
        rows = pattern_entries(f["mov"]["start"], dims)
        dst = pattern_entries(f["psum"]["start"], _follow_dims([c for c, _ in dims], f["psum"]))
        k, n, dtype = f["k"], f["n"], DTYPES[f["dtype"]]
        x = np.zeros((len(rows), p.rows), dtype=self.lane_dtype)
        x[:, :k] = self.sbuf[:k, rows].T
        y = tensor_engine.matmul(
            self._operands(x, dtype), self._operands(self.wbank[self.active_bank], dtype), dtype
        )
        y = np.ascontiguousarray(y).view(np.uint32)[:, :n]
        mode = OVERWRITE if not f["accumulate"] else ACC_INT if dtype == "int8" else ACC_FP
        mem = self.psum.mem
        if len(np.unique(dst)) == len(dst):
            old = mem[:n, dst]
            new = y.T
            if mode == ACC_INT:
                new = old + new
            elif mode == ACC_FP:
                new = fp32_add(old, new)
            mem[:n, dst] = new
        else:  # an entry is written twice: apply the rows in order
            for r, e in enumerate(dst):
                self.psum.write(int(e), np.pad(y[r], (0, p.cols - n)), (1 << n) - 1, mode)
        res.stats.macs += len(rows) * k * n
        res.stats.matmul_rows += len(rows)

    def _act(self, f: dict, res: Result) -> None:
        p = self.params
        if f["load_params"]:
            pieces = param_pieces(p)
            for i, name in enumerate(("scale", "bias", "shift")):
                v = np.zeros(self.lanes, dtype=np.uint64)
                for j in range(pieces):
                    e = f["params"] + pieces * i + j
                    v[: p.rows] |= self.sbuf[:, e].astype(np.uint64) << np.uint64(j * p.lane_width)
                self.ve_params[name] = v.astype(np.uint32)
        dims = _dims(f["src"])
        counts = [c for c, _ in dims]
        src = pattern_entries(f["src"]["start"], dims)
        a = np.zeros((len(src), self.lanes), dtype=np.uint32)
        if f["src_psum"]:
            a[:, : p.cols] = self.psum.mem[:, src].T
        else:
            a[:, : p.rows] = self.sbuf[:, src].T
        b = np.zeros_like(a)
        cfg = f["config"]
        if cfg["op"] != gve.Op.ACT:
            b[:, : p.rows] = self.sbuf[
                :, pattern_entries(f["b"]["start"], _follow_dims(counts, f["b"]))
            ].T
        out = gve.run(cfg, self.ve_params, a, b, has_fp=p.has_fp)
        dst = pattern_entries(f["dst"]["start"], _follow_dims(counts, f["dst"]))
        n = f["n"]
        last = _last_occurrence(dst)
        mask = (1 << p.lane_width) - 1
        self.sbuf[:n, dst[last]] = (out[last, :n].T & mask).astype(self.lane_dtype)
        res.stats.act_rows += len(src)

    def _send(self, f: dict, res: Result) -> None:
        p = self.params
        src = pattern_entries(f["src"]["start"], _dims(f["src"]))
        n = f["n"]
        rows = np.zeros((len(src), p.rows), dtype=self.lane_dtype)
        rows[:, :n] = self.sbuf[:n, src].T
        self.link_out.extend(rows)
        res.stats.send_rows += len(src)

    def _recv(self, f: dict, res: Result) -> None:
        dst = pattern_entries(f["dst"]["start"], _dims(f["dst"]))
        n = f["n"]
        rows = np.array([self.link_in.popleft() for _ in range(len(dst))], dtype=self.lane_dtype)
        last = _last_occurrence(dst)
        self.sbuf[:n, dst[last]] = rows[last, :n].T
        res.stats.recv_rows += len(dst)


def _rows_of(ap: dict) -> int:
    """Elements of a SEND/RECV pattern (rows it moves)."""
    c = [d["count"] for d in ap["dims"]]
    return c[0] * c[1] * c[2]


def _last_occurrence(entries: np.ndarray) -> np.ndarray:
    """Indices of the last occurrence of each distinct value (later rows win)."""
    rev = entries[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    return len(entries) - 1 - first_in_rev


def pick_order(pick, queues=PRIORITY) -> tuple[tuple, np.random.Generator | None]:
    """``(order, rng)`` of a :meth:`Core.run` ``pick``: a fixed order of ``queues`` (the
    default, or ``pick`` itself, which must order each queue once) and the generator for a
    random pick (None for a fixed one)."""
    if pick is None or isinstance(pick, np.random.Generator):
        order = tuple(queues)
    else:
        order = tuple(Engine(e) for e in pick)
        if sorted(order) != sorted(queues):
            raise ValueError(f"pick must order all {len(queues)} queues once, not {pick!r}")
    return order, pick if isinstance(pick, np.random.Generator) else None


class Barrier:
    """The chip's barrier model: how many BARRIERs of each mask every core has started.

    Masks are normalised (0 → every core), so mask 0 and the mask of all cores name the same
    barrier. The ``g``-th BARRIER (from 0) of a mask on a core is released when every core
    of the mask has started at least ``g + 1`` BARRIERs of that mask.
    """

    def __init__(self, cores: int):
        self.cores = cores
        self._started: dict[int, list[int]] = {}

    def reset(self) -> None:
        self._started.clear()

    def members(self, mask: int) -> int:
        return mask or (1 << self.cores) - 1

    def arrive(self, core: int, mask: int) -> int:
        """Core ``core`` starts a BARRIER of ``mask``; returns its number for that mask."""
        started = self._started.setdefault(self.members(mask), [0] * self.cores)
        g = started[core]
        started[core] += 1
        return g

    def released(self, mask: int, g: int) -> bool:
        mask = self.members(mask)
        started = self._started.get(mask, [0] * self.cores)
        return all(started[c] > g for c in range(self.cores) if mask >> c & 1)


class Run:
    """One program running on a :class:`Core` (made by :meth:`Core.start`), advanced one
    scheduling step at a time: :meth:`startable` lists the engines that can make a step,
    :meth:`step` makes one, and :meth:`stall` ends the run when nothing can start (its
    pending dispatch error, or DEADLOCK). :meth:`Core.run` drives one run alone;
    :class:`~ncore.golden.chip.Chip` interleaves the runs of its cores. ``done`` is set
    when END has run or the run stopped with an error; ``res`` is the :class:`Result`.

    A step is one of: start an engine's queue head and run it atomically (taking its
    semaphore before and applying its signal after); start a BARRIER (take its semaphore
    and *arrive*; if the barrier is already released it also completes in the same step,
    else it stays in flight, and the control queue runs nothing else); or complete the
    BARRIER in flight once the barrier released it (retire it and apply its signal).
    """

    def __init__(self, core: Core, words, program_base: int, program_len: int):
        self.core = core
        self.words = words
        self.program_base = program_base
        self.program_len = program_len
        self.res = core.result = Result()
        core.sem[:] = 0
        self.queues = {e: collections.deque() for e in _QUEUES}
        self.pc = 0
        self.dispatching = True
        self.pending: tuple | None = None  # a precise dispatch error waiting for the drain
        self.staged = None  # the decoded, checked instruction waiting for room in its queue
        self.in_flight: tuple | None = None  # a started BARRIER: (instr, mask, number)
        self.done = False
        self.dispatch()

    # -- dispatch -----------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Dispatch in order until a queue is full, after END, or at a dispatch error."""
        p = self.core.params
        while self.dispatching:
            if self.staged is None:
                self.staged = self._decode_next()
                if self.staged is None:
                    self.dispatching = False
                    return
            op, f, eng = self.staged
            if len(self.queues[eng]) >= p.queue_depth:
                return
            self.queues[eng].append(_Instr(self.pc, op, f))
            self.staged = None
            self.pc += 1
            if op == Op.END:
                self.dispatching = False

    def _decode_next(self):
        """``(op, fields, engine)`` of word ``pc``, or None after setting ``pending``."""
        core, pc = self.core, self.pc
        addr = self.program_base + isa.WORD_BYTES * pc
        if pc >= self.program_len:
            self.pending = (CoreError.NO_END, pc, Engine.DISPATCH, addr)
            return None
        word = self.words[pc] if self.words is not None else core._fetch(addr)
        if word is None:
            self.pending = (CoreError.FETCH, pc, Engine.DISPATCH, addr)
            return None
        try:
            op, f = isa.decode(word)
        except ValueError:
            self.pending = (CoreError.ILLEGAL_OPCODE, pc, Engine.DISPATCH, addr)
            return None
        eng = ENGINE_OF[op]
        try:
            _check(core.params, op, f, core.index)
        except _Fault as e:
            self.pending = (e.code, pc, eng, addr if e.address is None else e.address)
            return None
        return op, f, eng

    # -- scheduling ---------------------------------------------------------------------------

    def can_step(self, e: Engine) -> bool:
        """Whether engine ``e`` can make a step now."""
        core = self.core
        if e == Engine.CONTROL and self.in_flight is not None:
            _, mask, g = self.in_flight
            return core.barrier.released(mask, g)
        q = self.queues[e]
        if not q:
            return False
        ins = q[0]
        if ins.op == Op.END and any(self.queues[o] for o in _QUEUES if o != Engine.CONTROL):
            return False
        if ins.op == Op.RECV and len(core.link_in) < _rows_of(ins.f["dst"]):
            return False
        return not ins.f["wait_en"] or core.sem[ins.f["wait_sem"]] > 0

    def startable(self, order=PRIORITY) -> list[Engine]:
        """The engines of ``order`` that can make a step now (none once ``done``)."""
        if self.done:
            return []
        return [e for e in order if self.can_step(e)]

    def step(self, eng: Engine) -> None:
        """Make one step of engine ``eng`` (one that :meth:`startable` listed)."""
        core, res = self.core, self.res
        if eng == Engine.CONTROL and self.in_flight is not None:
            ins = self.in_flight[0]
            self.in_flight = None
            self._retire(ins, eng)
            return
        ins = self.queues[eng].popleft()
        f = ins.f
        if f["wait_en"]:
            core.sem[f["wait_sem"]] -= 1
            res.stats.sem_waits += 1
        if ins.op == Op.BARRIER:
            mask = core.barrier.members(f["mask"])
            g = core.barrier.arrive(core.index, mask)
            if not core.barrier.released(mask, g):
                self.in_flight = (ins, mask, g)
                self.dispatch()
                return
        else:
            try:
                core._execute(ins, res)
            except _Fault as e:  # only DMA errors fault during execution
                self._fail(CoreError.DMA, ins.index, eng, e.address, e.dma_code)
                return
        self._retire(ins, eng)

    def _retire(self, ins: _Instr, eng: Engine) -> None:
        res, f = self.res, ins.f
        res.stats.retired[eng] += 1
        res.stats.by_op[ins.op] += 1
        if ins.op == Op.BARRIER:
            res.stats.barriers += 1
        res.trace.append(ins.index)
        if f["signal_en"]:
            s = f["signal_sem"]
            if self.core.sem[s] == SEM_MAX:
                self._fail(CoreError.SEM_OVERFLOW, ins.index, eng, s)
                return
            self.core.sem[s] += 1
            res.stats.sem_signals += 1
        if ins.op == Op.END:
            self.done = True
            return
        self.dispatch()

    def stall(self, order=PRIORITY) -> Result:
        """End the run when nothing can step (here, or anywhere on a chip): with the pending
        dispatch error if there is one, else DEADLOCK for the first busy queue of ``order``
        (a queue with instructions, or the control queue with a BARRIER in flight)."""
        if self.done:
            return self.res
        if self.pending is not None:
            return self._fail(*self.pending)
        busy = [e for e in order if self.queues[e] or (e == Engine.CONTROL and self.in_flight)]
        if not busy:  # only possible after END retired
            self.done = True
            return self.res
        e = busy[0]
        if e == Engine.CONTROL and self.in_flight is not None:
            ins, mask, _ = self.in_flight
            return self._fail(CoreError.DEADLOCK, ins.index, e, mask)
        head = self.queues[e][0]
        return self._fail(CoreError.DEADLOCK, head.index, e, head.f["wait_sem"])

    def _fail(self, code, index, engine, address, dma_code=gdma.ErrorCode.NONE) -> Result:
        res = self.res
        res.error, res.index, res.engine = CoreError(code), index, engine
        res.address, res.dma_code = int(address), gdma.ErrorCode(dma_code)
        self.done = True
        return res


def run(
    params: NCoreParams, program=None, *, dram=None, dram_size=None, faults=None, **kwargs
) -> Core:
    """Make a :class:`Core`, run ``program`` on it (keyword arguments as
    :meth:`Core.run`) and return the core; its ``result`` holds the outcome."""
    core = Core(params, dram, dram_size=dram_size, faults=faults)
    core.run(program, **kwargs)
    return core
