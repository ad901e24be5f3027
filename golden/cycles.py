"""Cycle model of one NeuronCore: predicts how many cycles the RTL takes to run a program.

An event model of the core's structure, not of its gates. Each instruction goes through

* **fetch**: 64-byte words arrive over the bus ``FETCH_LATENCY`` cycles after START, one
  per ``WORD_BEATS`` cycles, at most ``FETCH_QUEUE`` ahead of the decoder;
* **decode**: one instruction at a time, ``decode_latency(op)`` cycles (the decoder's
  pattern checks), then into its engine's queue (``queue_depth`` deep; dispatch stalls
  while it is full) and ``QUEUE_LATENCY`` cycles later at the head;
* **issue**: when the head's engine can take it and its semaphore (if any) has a token;
  a signal is usable one cycle after the completion that raises it;
* **execution** per engine: the DMA one descriptor at a time (``DMA_OVERHEAD`` + the
  stream bound of :func:`ncore.golden.dma.cost`: beats, SBUF/PSUM chunks or burst window;
  a ``PSUM_STORE`` is timed as a store, its wait for the PSUM read port while an ACT runs
  is not modelled); the
  tensor sequencer as in hardware (LOADW columns after the bank's previous rows drained;
  MATMUL rows one per cycle once the tile is complete, the next MATMUL taken as the last
  row is requested; completions retire in queue order); the vector engine one ACT at a
  time (``rows + latency + 3·P`` with a parameter load); SEND/RECV one row per cycle (a
  single core's loop back; waiting for a neighbour is not modelled); NOP and BARRIER at
  once (one core); END when all else is done.

Bus contention between instruction fetch and DMA reads is modelled as extra cycles on the
DMA load that shares the bus with a fetch burst. Calibration constants were measured on
the RTL (``verif/trace_tb.py`` gives per-instruction start/end cycles on Icarus); the
benchmark reports the model's error against the RTL for every workload it runs.
"""

from __future__ import annotations

import collections
import heapq
from dataclasses import dataclass, field

from .. import isa
from ..isa import Op
from ..params import NCoreParams
from . import core as gcore
from . import dma as gdma
from . import tensor_engine
from . import vector_engine as gve

__all__ = ["Timing", "predict"]

# -- calibration (cycles, measured on the RTL) ------------------------------------------------
FETCH_LATENCY = 1  #: START to the first fetch burst request
FETCH_BURST = 4  #: words per fetch burst
FETCH_OUTSTANDING = 2  #: fetch bursts in flight
READ_LATENCY = 3  #: read request to its first beat
FETCH_TO_DECODER = 2  #: a word's last beat to the decoder taking it
WORD_BEATS = 4  #: bus beats per instruction word (128-bit bus; scaled by the bus width)
FETCH_QUEUE = 8  #: words the fetch unit buffers
QUEUE_LATENCY = 2  #: dispatch to queue head
DMA_OVERHEAD = {gdma.Direction.LOAD: 12, gdma.Direction.STORE: 17, gdma.Direction.PSUM_STORE: 17}
DMA_GAP = 1  #: cycles between one descriptor's completion and the next one's start
#: Cycles a burst holds one of the DMA's four outstanding slots beyond its beats, in the core
#: (arbiter, memory model): bounds transfers of many short bursts.
READ_ROUND_TRIP = 5.4
WRITE_ROUND_TRIP = 5.9
CHIP_ROUND_TRIP = 1.0  #: extra per burst through the chip's interconnect
LOADW_FIRST = 2  #: LOADW start to its first column in the engine
MATMUL_FIRST = 2  #: MATMUL start to its first row request answered
MATMUL_DONE = 2  #: last row in the engine + engine latency → PSUM written
RETIRE = 1  #: tensor completion to its signal
SEM = 1  #: signal to a waiter's start
ACT_EXTRA = 1
LINK_EXTRA = 2
FETCH_HIDDEN = 0.2  #: share of a fetch burst a chunk-bound DMA load still waits for


def decode_latency(op: Op, f: dict) -> int:
    """Cycles the decoder holds an instruction (its pattern checks), take to offer."""
    if op in (Op.NOP, Op.END, Op.DMA, Op.BARRIER):
        return 3
    if op in (Op.LOADW, Op.SEND, Op.RECV):  # one pattern
        return 8
    if op == Op.MATMUL:
        return 9
    n = 2 + int(f["load_params"]) + int(f["config"]["op"] != gve.Op.ACT)
    return 7 + n


@dataclass
class Timing:
    """Predicted cycles: ``total`` from START to the end, per instruction start/done."""

    total: int
    start: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    busy: dict = field(default_factory=dict)


def _desc(f) -> gdma.Descriptor:
    d = f["desc"]
    return gdma.Descriptor(
        d["direction"],
        d["esize"],
        gdma.Pattern(d["dram"]["start"], gcore._dims(d["dram"])),
        gdma.Pattern(d["sbuf"]["start"], gcore._dims(d["sbuf"])),
    )


def _rows(ap) -> int:
    n = 1
    for d in ap["dims"]:
        n *= int(d["count"])
    return n


def predict(params: NCoreParams, program) -> Timing:
    """Cycles the core takes for ``program`` (words or an image), which must run to END
    without error (the model does not model faults)."""
    gen = _model(params, program)
    try:
        cmd = next(gen)
        while True:
            if cmd is None:  # blocked: nothing else can move on one core
                return gen.send("stop")
            cmd = gen.send("go")
    except StopIteration as stop:
        return stop.value


class _Timeline:
    """Beats of one shared AXI data channel (R or W), one per cycle, reserved in order of
    the transfers' start times."""

    def __init__(self):
        self.busy = bytearray()
        self.hint = 0

    def reserve(self, t: int, n: int) -> tuple[int, int]:
        """Take the first ``n`` free beats at or after ``t``; (first beat, last beat)."""
        first = last = None
        i = max(t, self.hint if self.hint > t else t)
        need = n
        while need:
            if i >= len(self.busy):
                self.busy.extend(bytes(i - len(self.busy) + max(4096, n)))
            if not self.busy[i]:
                self.busy[i] = 1
                need -= 1
                first = i if first is None else first
                last = i
            i += 1
        while self.hint < len(self.busy) and self.busy[self.hint]:
            self.hint += 1
        return first, last


class _ChipState:
    """What the cores of a chip share in the model: the bus, the links, the barrier."""

    def __init__(self, params: NCoreParams):
        self.cores = params.cores
        self.r = _Timeline()
        self.w = _Timeline()
        self.links = [[] for _ in range(params.cores)]  # row-ready cycles, per sender
        self.taken = [0] * params.cores  # rows consumed, per link
        self.arrived = {}  # core → (mask, cycle) of the BARRIER waiting
        self.released = {}  # core → release cycle

    def arrive(self, core: int, mask: int, t: int) -> None:
        self.arrived[core] = (mask, t)
        members = [c for c in range(self.cores) if mask >> c & 1]
        if all(c in self.arrived and self.arrived[c][0] == mask for c in members):
            release = max(self.arrived[c][1] for c in members) + 1
            for c in members:
                del self.arrived[c]
                self.released[c] = release


def predict_chip(params: NCoreParams, programs) -> dict:
    """Cycles of a chip run: ``programs`` per core (words, or None for an idle core), all
    started together. Cores share the bus (AXI read and write beats are reserved in order of
    the transfers' start), the links (a RECV takes rows as the SEND before it produced them)
    and the barrier. Returns ``{"total": cycles, "cores": [Timing or None]}``."""
    chip = _ChipState(params)
    gens = {c: _model(params, prog, chip, c) for c, prog in enumerate(programs) if prog}
    cand = {c: next(g) for c, g in gens.items()}
    out = {}
    while gens:
        ready = [(t, c) for c, t in cand.items() if t is not None]
        if not ready:  # every core waits on another: a deadlock in the model
            for c, g in gens.items():
                try:
                    g.send("stop")
                except StopIteration as stop:
                    out[c] = stop.value
            break
        _, c = min(ready)
        try:
            cand[c] = gens[c].send("go")
        except StopIteration as stop:
            out[c] = stop.value
            del gens[c], cand[c]
        for o in list(gens):  # others may have been unblocked (rows, barrier)
            if o != c:
                cand[o] = gens[o].send("poll")
    timings = [out.get(c) for c in range(len(programs))]
    total = max((t.total for t in timings if t is not None), default=0)
    return {"total": total, "cores": timings}


def _model(params: NCoreParams, program, chip: _ChipState | None = None, core: int = 0):
    """The event model of one core, as a generator: it yields the start cycle of the next
    instruction it would run (None when nothing can start yet) and is resumed with "go"
    (run it), "poll" (recompute: another core may have unblocked it) or "stop"; it returns
    the :class:`Timing`."""
    p = params
    words = isa.from_bytes(bytes(program)) if isinstance(program, (bytes, bytearray)) else [
        int(w) for w in program
    ]  # fmt: skip
    decoded = [isa.decode(w) for w in words]
    beats = WORD_BEATS * 128 // p.axi_data_width
    te_lat = tensor_engine.latency(p)
    drain = p.rows * p.pe_add_latency + p.cols + 2
    pieces3 = 3 * gcore.param_pieces(p)
    ve_lat = gve.latency(p)

    timing = Timing(0)
    queues = {e: collections.deque() for e in gcore.PRIORITY}
    depth = p.queue_depth
    pops = {e: [] for e in gcore.PRIORITY}  # pop cycles per queue, in order
    last_start = {e: -1 for e in gcore.PRIORITY}
    pushed = {e: 0 for e in gcore.PRIORITY}
    tokens = collections.defaultdict(list)  # sem → heap of token cycles
    dec_take = []  # decoder take cycle per instruction
    fetch_at = []  # when each word reaches the decoder

    # dispatch state
    nxt = 0
    dec_free = 0
    ended = False

    # engine state
    dma_free = 0
    w_free = 0  # weight unit free (last LOADW complete)
    walker_free = 0  # the row unit can take a MATMUL from this cycle
    bank_last_row = [-(10**9), -(10**9)]  # last row entry per bank
    bank = 1
    tensor_retire = 0
    lw_first = 0  # cycle the last LOADW's first column entered
    lw_done = 0
    mm_before_lw = 0  # rows of the MATMUL before the last LOADW all entered (cycle)
    last_mm_rows_in = 0
    vec_free = 0
    link_free = {gcore.Engine.SEND: 0, gcore.Engine.RECV: 0}
    done_all = 0  # latest completion so far

    bursts = []  # (R-channel start, end) of each fetch burst of FETCH_BURST words

    def fetch_time(i):
        """When word ``i`` reaches the decoder (None: depends on a take not yet known)."""
        while len(fetch_at) <= i:
            k = len(bursts)
            lo = FETCH_BURST * k
            n = min(FETCH_BURST, len(words) - lo)
            issue = FETCH_LATENCY if k == 0 else bursts[-1][2] + 1
            need = lo + n - FETCH_QUEUE  # words the decoder must have taken first
            if need > 0:
                if need > len(dec_take):
                    return None
                issue = max(issue, dec_take[need - 1] + 1)
            if k >= FETCH_OUTSTANDING:
                issue = max(issue, bursts[k - FETCH_OUTSTANDING][1])
            r0 = max(issue + READ_LATENCY, bursts[-1][1] if bursts else 0)
            if chip is not None:  # the shared read channel
                r0, last = chip.r.reserve(r0, beats * n)
                r0 = last + 1 - beats * n
            bursts.append((r0, r0 + beats * n, issue))
            for j in range(n):
                fetch_at.append(r0 + beats * (j + 1) + FETCH_TO_DECODER)
        return fetch_at[i]

    def fetch_beats(t0, t1):
        """Fetch beats on the read channel during [t0, t1) (the bursts known so far)."""
        total = 0
        for r0, r1, _ in reversed(bursts):
            if r1 <= t0:
                break
            total += max(0, min(r1, t1) - max(r0, t0))
        return total

    def dispatch():
        """Dispatch every instruction whose queue slot is known to be free."""
        nonlocal nxt, dec_free, ended
        while not ended and nxt < len(words):
            op, f = decoded[nxt]
            eng = gcore.ENGINE_OF[op]
            ft = fetch_time(nxt)
            if ft is None:
                return
            take = max(ft, dec_free)
            offer = take + decode_latency(op, f)
            k = pushed[eng]
            if k >= depth:
                if len(pops[eng]) <= k - depth:
                    return  # waits for a pop not yet modelled
                offer = max(offer, pops[eng][k - depth] + 1)
            dec_take.append(take)
            queues[eng].append((nxt, op, f, offer + QUEUE_LATENCY))
            pushed[eng] += 1
            dec_free = offer + 1
            nxt += 1
            if op == Op.END:
                ended = True

    def token_ok(f, t):
        """Earliest start ≥ t given the head's wait (None: no token yet)."""
        if not f["wait_en"]:
            return t
        heap = tokens[f["wait_sem"]]
        if not heap:
            return None
        return max(t, heap[0])

    def signal(f, t):
        if f["signal_en"]:
            heapq.heappush(tokens[f["signal_sem"]], t + SEM)

    def take_token(f):
        if f["wait_en"]:
            heapq.heappop(tokens[f["wait_sem"]])

    bar_pending = None  # (index, fields) of a BARRIER waiting for the other cores
    ctrl_free = 0

    while True:
        dispatch()
        if bar_pending is not None and chip is not None and core in chip.released:
            rel = chip.released.pop(core)
            b_idx, b_f = bar_pending
            bar_pending = None
            timing.done[b_idx] = rel
            done_all = max(done_all, rel)
            signal(b_f, rel)
            ctrl_free = rel + 1
        cands = []
        for e in gcore.PRIORITY:
            q = queues[e]
            if not q:
                continue
            idx, op, f, arrive = q[0]
            t = max(arrive, last_start[e] + 1)  # a queue starts its heads in order
            if e == gcore.Engine.DMA:
                t = max(t, dma_free)
            elif e == gcore.Engine.TENSOR:
                if op == Op.LOADW:
                    t = max(t, w_free, mm_before_lw)
                else:
                    t = max(t, walker_free, lw_first + 1)
            elif e == gcore.Engine.VECTOR:
                t = max(t, vec_free)
            elif e in link_free:
                t = max(t, link_free[e])
                if e == gcore.Engine.RECV and chip is not None:
                    src = (core - 1) % chip.cores
                    need = chip.taken[src] + _rows(f["dst"])
                    if len(chip.links[src]) < need:
                        continue  # its rows are not produced yet
            else:
                if bar_pending is not None:
                    continue
                t = max(t, ctrl_free)
                if op == Op.END:
                    if any(queues[o] for o in gcore.PRIORITY if o != gcore.Engine.CONTROL):
                        continue
                    t = max(t, done_all + 1)
            t = token_ok(f, t)
            if t is None:
                continue
            cands.append((t, int(e), idx))
        if not cands:
            if chip is None:
                break
            if (yield None) == "stop":
                break
            continue
        t, e, idx = min(cands)
        cmd = yield t
        if cmd == "poll":
            continue
        if cmd == "stop":
            break
        e = gcore.Engine(e)
        _, op, f, _ = queues[e].popleft()
        take_token(f)
        pops[e].append(t)
        last_start[e] = t
        timing.start[idx] = t
        if e == gcore.Engine.DMA:
            desc = _desc(f)
            rt = READ_ROUND_TRIP if desc.direction == gdma.Direction.LOAD else WRITE_ROUND_TRIP
            if chip is not None:
                rt += CHIP_ROUND_TRIP  # the interconnect's request and response stages
            c = gdma.cost(desc, p, round_trip=rt)
            c["stream_cycles"] = round(c["stream_cycles"])
            ovh = DMA_OVERHEAD[desc.direction]
            end = t + ovh + c["stream_cycles"]
            if chip is not None:
                # The shared bus: this transfer's beats among every core's.
                line = chip.r if desc.direction == gdma.Direction.LOAD else chip.w
                _, last = line.reserve(t + ovh // 2, c["beats"])
                end = max(end, last + ovh - ovh // 2 + 1)
            elif desc.direction == gdma.Direction.LOAD:
                # Fetch bursts share the read data channel: they add to the beats bound.
                # A transfer bound by its reads (as many bursts as SBUF chunks) waits out
                # each fetch burst; one bound by SBUF chunks reads ahead and hides some.
                read_bound = c["bursts"] >= c["chunks"]
                for _ in range(2):
                    fb = fetch_beats(t, end)
                    stream = c["stream_cycles"] + (fb if read_bound else FETCH_HIDDEN * fb)
                    end = t + ovh + round(stream)
            dma_free = end + DMA_GAP
        elif e == gcore.Engine.TENSOR:
            if op == Op.LOADW:
                bank = 1 - bank
                first = max(t + LOADW_FIRST, bank_last_row[bank] + drain)
                lw_first = first
                lw_done = first + p.cols - 1
                w_free = lw_done + 1
                mm_before_lw = last_mm_rows_in
                end = max(lw_done, tensor_retire)
            else:
                m = _rows(f["mov"])
                first_in = max(t + MATMUL_FIRST, lw_done + 1)
                last_in = first_in + m - 1
                bank_last_row[bank] = last_in
                last_mm_rows_in = last_in
                walker_free = last_in - 1
                end = max(last_in + te_lat + MATMUL_DONE, tensor_retire)
            end += RETIRE
            tensor_retire = end
        elif e in link_free:
            # One row per cycle; a RECV as if its rows were already waiting (one core: the
            # loop back). Cross-core timing is not modelled yet.
            ap = f["src"] if op == Op.SEND else f["dst"]
            n = _rows(ap)
            end = t + n + LINK_EXTRA
            if chip is not None and op == Op.SEND:
                chip.links[core].extend(range(t + 2, t + 2 + n))
            elif chip is not None:
                src = (core - 1) % chip.cores
                k = chip.taken[src]
                chip.taken[src] = k + n
                end = max(end, chip.links[src][k + n - 1] + 1 + LINK_EXTRA)
            link_free[e] = end
        elif e == gcore.Engine.VECTOR:
            m = _rows(f["src"])
            end = t + m + ve_lat + ACT_EXTRA + (pieces3 if f["load_params"] else 0)
            vec_free = end
        elif op == Op.BARRIER and chip is not None:
            mask = f["mask"] or (1 << chip.cores) - 1
            chip.arrive(core, mask, t)
            bar_pending = (idx, f)
            continue  # completes when the chip releases it (above)
        else:
            end = t
        timing.done[idx] = end
        done_all = max(done_all, end)
        signal(f, end)
        if op == Op.END:
            timing.total = end
            break
    timing.total = timing.total or done_all
    return timing
