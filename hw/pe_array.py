"""The ``rows × cols`` grid of :class:`~ncore.hw.pe.PE`, wired to its neighbours by a loop.

Edges of the grid (the array itself has no flow control and no skew):

* left: one activation lane per row, ``a_in[k]`` feeding PE(k, 0);
* right: one weight lane per row, ``w_in[k]`` feeding PE(k, cols−1) — weights shift leftwards,
  so after ``cols`` shifts the first weight column shifted in sits in column 0;
* top: partial sums of zero;
* bottom: ``psum_out[n]``, the finished dot product of column ``n``.

With the row skew applied upstream (row ``k`` sees an activation row
``pe_add_latency × k`` cycles after row 0), column ``n`` of an activation row that entered
row 0 at cycle ``t`` leaves at the bottom on cycle
``t + n + (rows − 1) × pe_add_latency + pe_mul_latency + pe_add_latency``.
"""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..params import NCoreParams
from .pe import PE, act_lane_layout, pe_signature

__all__ = ["PEArray"]


class PEArray(wiring.Component):
    """Weight-stationary systolic grid.

    Parameters
    ----------
    params : NCoreParams
    pe_module : str or None
        For Verilog generation: instantiate every PE as the external module of this name
        (generated once from :class:`~ncore.hw.pe.PE` by :mod:`ncore.hw.generate`) instead
        of inlining ``rows × cols`` copies. Simulation in Amaranth uses the inline PEs.

    Members
    -------
    a_in : In(ArrayLayout(act_lane_layout, rows))
        Skewed activations, lane ``k`` for row ``k``.
    w_in : In(ArrayLayout(lane_width, rows))
        Weights entering the right edge, lane ``k`` for row ``k``.
    w_shift : In(1)
        Shift every row's weight chain by one column (bank ``w_bank``).
    w_bank : In(1)
        Weight bank being shifted.
    psum_out : Out(ArrayLayout(signed(acc_width), cols))
        Bottom-edge partial sums, column ``n`` staggered by ``n`` cycles.
    """

    def __init__(self, params: NCoreParams, *, pe_module: str | None = None):
        self._params = params
        self._pe_module = pe_module
        super().__init__(
            {
                "a_in": In(data.ArrayLayout(act_lane_layout(params), params.rows)),
                "w_in": In(data.ArrayLayout(params.lane_width, params.rows)),
                "w_shift": In(1),
                "w_bank": In(1),
                "psum_out": Out(data.ArrayLayout(signed(params.acc_width), params.cols)),
            }
        )

    @property
    def params(self) -> NCoreParams:
        return self._params

    def latency(self, col: int) -> int:
        """Cycles from row 0's activation at ``a_in[0]`` to column ``col`` at ``psum_out``."""
        p = self._params
        return col + (p.rows - 1) * p.pe_add_latency + p.pe_mul_latency + p.pe_add_latency

    def elaborate(self, platform):
        p = self._params
        m = Module()
        if self._pe_module is None:
            pe = [[PE(p) for _ in range(p.cols)] for _ in range(p.rows)]
        else:
            sig = pe_signature(p)
            pe = [[sig.create(path=(f"pe_{k}_{n}",)) for n in range(p.cols)] for k in range(p.rows)]
        for k in range(p.rows):
            for n in range(p.cols):
                cell = pe[k][n]
                if self._pe_module is None:
                    m.submodules[f"pe_{k}_{n}"] = cell
                    m.d.comb += [cell.w_shift.eq(self.w_shift), cell.w_bank.eq(self.w_bank)]
                else:
                    m.submodules[f"pe_{k}_{n}"] = self._instance(cell)
                # Activations move right, weights move left, partial sums move down.
                left = self.a_in[k] if n == 0 else pe[k][n - 1].a_out
                right = self.w_in[k] if n == p.cols - 1 else pe[k][n + 1].w_out
                above = 0 if k == 0 else pe[k - 1][n].psum_out
                m.d.comb += [cell.a_in.eq(left), cell.w_in.eq(right), cell.psum_in.eq(above)]
        for n in range(p.cols):
            m.d.comb += self.psum_out[n].eq(pe[p.rows - 1][n].psum_out)
        return m

    def _instance(self, cell) -> Instance:
        # The weight-shift controls are broadcast: wire the array's own ports straight in.
        shared = {"w_shift": self.w_shift, "w_bank": self.w_bank}
        ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
        for path, member, value in cell.signature.flatten(cell):
            name = "__".join(map(str, path))
            prefix = "i_" if member.flow == In else "o_"
            ports[prefix + name] = shared.get(name, value)
        return Instance(self._pe_module, **ports)
