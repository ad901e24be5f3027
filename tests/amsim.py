"""Run Amaranth-simulator testbenches against a component with a ``sync`` clock domain."""

from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator


def simulate(dut, *testbenches, processes=()):
    """Simulate ``dut`` (given its own ``sync`` domain, so purely combinational units work
    too) with the given async testbenches and processes, 100 MHz clock."""
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    sim = Simulator(top)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    for proc in processes:
        sim.add_process(proc)
    sim.run()
