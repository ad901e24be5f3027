"""PSUM: the partial-sum buffer behind the PE array, with accumulate next to the memory.

``cols`` partitions (one per array column), each one ``amaranth.lib.memory.Memory`` of
``psum_depth`` 32-bit entries holding int32 or fp32 values. A write request names an entry
(the same for every partition), a row of ``cols`` values, a per-partition enable mask, and
a mode:

* ``OVERWRITE``  — ``psum[p][entry] = value``;
* ``ACC_INT``    — ``psum[p][entry] += value`` in int32, wrapping modulo 2³²;
* ``ACC_FP``     — ``psum[p][entry] = fp32_add(psum[p][entry], value)`` (only when the design
  has an FP datapath), with the FP32 adder of :mod:`ncore.hw.fp` (round to nearest even,
  canonical NaN; the old value is the adder's first operand).

Timing and hazards
    Every request is a read-modify-write: the entry is read in the cycle the request is taken
    and written ``write_latency`` cycles later (1 without FP, ``1 + FPADD_LATENCY`` with it;
    every mode takes the same time, so writes stay in request order).

    * int32 accumulates and overwrites run at one row per cycle with no stall whatever the
      addresses: a request whose entry is still in flight takes the newest in-flight value
      instead of the memory's (forwarding), so back-to-back accumulates to one entry are exact;
    * a request whose entry has an older fp32 accumulate still in flight waits until that
      accumulate is written (its sum exists only at the adder's output); an fp32
      accumulate behind an int request or overwrite takes the forwarded value, and other
      entries stream at one row per cycle.

Read port
    ``rd_addr``/``rd_en`` in, ``rd_data`` (all partitions) out one cycle later. A read in the
    same cycle as a write to the same entry returns the new value (transparent port).
    Requests still in the pipeline are not visible: the core orders reads after the MATMUL
    that writes them (semaphores), and ``busy`` says when the pipeline is empty.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams

__all__ = ["PSUM", "PsumMode", "psum_write_latency", "psum_write_layout"]


def psum_write_latency(params: NCoreParams) -> int:
    """Cycles from a PSUM request being taken to its write (see :class:`PSUM`)."""
    if params.has_fp:
        from .fp import FPADD_LATENCY

        return 1 + FPADD_LATENCY
    return 1


class PsumMode(enum.Enum, shape=2):
    OVERWRITE = 0
    ACC_INT = 1
    ACC_FP = 2


def psum_write_layout(params: NCoreParams) -> data.StructLayout:
    """Payload of ``PSUM.i_write``."""
    return data.StructLayout(
        {
            "addr": range(params.psum_depth),
            "data": data.ArrayLayout(32, params.cols),
            "mask": params.cols,  # bit p enables partition p
            "mode": PsumMode,
        }
    )


class PSUM(wiring.Component):
    """Partitioned accumulation buffer.

    Parameters
    ----------
    params : NCoreParams

    Members
    -------
    i_write : In(stream.Signature(psum_write_layout))
        Read-modify-write requests (see the module docstring for timing).
    rd_addr : In(range(psum_depth))
    rd_en : In(1)
    rd_data : Out(ArrayLayout(32, cols))
        All partitions of entry ``rd_addr``, one cycle after ``rd_en``.
    busy : Out(1)
        Requests are still in the read-modify-write pipeline.
    """

    def __init__(self, params: NCoreParams):
        self._params = params
        self._fp = params.has_fp
        self._write_latency = psum_write_latency(params)
        super().__init__(
            {
                "i_write": In(stream.Signature(psum_write_layout(params))),
                "rd_addr": In(range(params.psum_depth)),
                "rd_en": In(1),
                "rd_data": Out(data.ArrayLayout(32, params.cols)),
                "busy": Out(1),
            }
        )
        # One bank per partition, reachable by tests as psum.banks[p].data[entry].
        self.banks = [
            Memory(shape=32, depth=params.psum_depth, init=[]) for _ in range(params.cols)
        ]

    @property
    def params(self) -> NCoreParams:
        return self._params

    @property
    def write_latency(self) -> int:
        """Cycles from a request being taken to its write."""
        return self._write_latency

    def elaborate(self, platform):
        p = self._params
        L = self._write_latency
        m = Module()
        req = self.i_write.payload
        take = self.i_write.valid & self.i_write.ready

        # stage[i] holds the request taken i + 1 cycles ago: stage[0] sees the memory's read
        # data and computes int results, stage[L - 1] is written at the end of the cycle.
        slot = data.StructLayout(
            {
                "valid": 1,
                "addr": range(p.psum_depth),
                "mask": p.cols,
                "mode": PsumMode,
                "data": data.ArrayLayout(32, p.cols),
            }
        )
        stage = [Signal(slot, name=f"stage{i}") for i in range(L)]
        # res[i] (i ≥ 1): the int/overwrite value of stage[i]'s request, computed in stage 0.
        res = [None] + [Signal(data.ArrayLayout(32, p.cols), name=f"res{i}") for i in range(1, L)]

        # Hazard: any request to an entry with an older fp accumulate in flight waits until
        # that accumulate reaches its write stage (its sum exists only there); the read then
        # sees the write through the transparent port.
        fp_hit = Signal()
        if self._fp and L > 1:
            hits = [
                s.valid & (s.mode == PsumMode.ACC_FP) & (s.addr == req.addr) for s in stage[: L - 1]
            ]
            m.d.comb += fp_hit.eq(Cat(*hits).any())
        m.d.comb += self.i_write.ready.eq(~fp_hit)

        m.d.sync += stage[0].valid.eq(take)
        with m.If(take):
            m.d.sync += [
                stage[0].addr.eq(req.addr),
                stage[0].mask.eq(req.mask),
                stage[0].mode.eq(req.mode),
                stage[0].data.eq(req.data),
            ]
        for i in range(1, L):
            m.d.sync += stage[i].eq(stage[i - 1])
        for i in range(2, L):
            m.d.sync += res[i].eq(res[i - 1])

        s0, last = stage[0], stage[L - 1]
        for part in range(p.cols):
            bank = self.banks[part]
            m.submodules[f"bank{part}"] = bank
            wr = bank.write_port()
            rmw = bank.read_port(transparent_for=(wr,))
            rd = bank.read_port(transparent_for=(wr,))
            m.d.comb += [rmw.addr.eq(req.addr), rmw.en.eq(take)]
            m.d.comb += [rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en)]
            m.d.comb += self.rd_data[part].eq(rd.data)

            # Old value: the newest in-flight (not yet written) request to this entry that
            # writes this partition, else the memory.
            old = Signal(32, name=f"old{part}")
            m.d.comb += old.eq(rmw.data)
            for i in reversed(range(1, L)):  # later assignments win: newest (smallest i) last
                with m.If(stage[i].valid & stage[i].mask[part] & (stage[i].addr == s0.addr)):
                    m.d.comb += old.eq(res[i][part])
            new_int = Signal(32, name=f"new{part}")
            m.d.comb += new_int.eq(
                Mux(s0.mode == PsumMode.ACC_INT, old + s0.data[part], s0.data[part])
            )
            if L == 1:
                value = new_int
            else:
                m.d.sync += res[1][part].eq(new_int)
                if self._fp:
                    m.submodules[f"fpadd{part}"] = fpadd = _fp_adder()
                    m.d.comb += [fpadd.a.eq(old), fpadd.b.eq(s0.data[part])]
                    value = Mux(last.mode == PsumMode.ACC_FP, fpadd.result, res[L - 1][part])
                else:
                    value = res[L - 1][part]
            m.d.comb += [
                wr.addr.eq(last.addr),
                wr.data.eq(value),
                wr.en.eq(last.valid & last.mask[part]),
            ]

        m.d.comb += self.busy.eq(Cat(*(s.valid for s in stage)).any())
        return m


def _fp_adder():
    from .fp import FPAdd

    return FPAdd()
