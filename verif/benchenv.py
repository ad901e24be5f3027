"""What a cocotb bench knows about its run, read inside the simulator.

:func:`ncore.verif.runner.run_bench` passes the design folder (``params.json`` and
``design.json`` written next to the Verilog) and the run's knobs as ``NCORE_*`` environment
variables. Benches rebuild the parameter object from that JSON instead of re-deriving it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from ..params import NCoreParams

__all__ = ["BenchEnv", "cycles_now", "start_clock"]

CLOCK_NS = 10


@dataclass(frozen=True)
class BenchEnv:
    params: NCoreParams
    design: dict
    seed: int
    sim: str
    knobs: dict

    @classmethod
    def load(cls) -> BenchEnv:
        design_dir = Path(os.environ["NCORE_DESIGN_DIR"])
        params = NCoreParams.from_json(design_dir / "params.json")
        design = json.loads((design_dir / "design.json").read_text())
        seed = int(os.environ.get("NCORE_SEED", "1"))
        knobs = {
            k[len("NCORE_") :].lower(): v
            for k, v in os.environ.items()
            if k.startswith("NCORE_")
            and k not in ("NCORE_DESIGN_DIR", "NCORE_SEED", "NCORE_SIM", "NCORE_SUMMARY")
        }
        return cls(params, design, seed, os.environ.get("NCORE_SIM", "?"), knobs)

    def knob(self, name: str, default, cast=float):
        return cast(self.knobs[name]) if name in self.knobs else default

    def rerun_hint(self) -> str:
        return f"seed {self.seed}: rerun with NCORE_SEED={self.seed} (SEED={self.seed} in make)"

    def write_summary(self, summary: dict) -> None:
        path = os.environ.get("NCORE_SUMMARY")
        if path:
            old = json.loads(Path(path).read_text()) if Path(path).exists() else {}
            old.update(summary)
            Path(path).write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def cycles_now() -> int:
    """Rising edges since time zero (the clock's first rising edge is at 0 ns)."""
    from cocotb.utils import get_sim_time

    return int(get_sim_time("ns")) // CLOCK_NS


async def start_clock(dut, reset_cycles: int = 2) -> None:
    """Start ``clk`` and hold ``rst`` for a few cycles. Drive every other input first."""
    dut.rst.value = 1
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    await ClockCycles(dut.clk, reset_cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
