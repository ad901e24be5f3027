"""cocotb drivers and monitors for ``amaranth.lib.stream`` ports on generated Verilog.

A stream port ``i_x`` of an Amaranth component appears in Verilog as ``i_x__valid``,
``i_x__ready`` and ``i_x__payload`` (the payload's layout flattened to bits). Payloads are
packed and unpacked with the same ``amaranth.lib.data`` layouts the hardware uses, so bit
positions are defined in one place.

Both classes follow the stream rules: a driver raises ``valid`` without looking at
``ready`` and holds the payload until the transfer; a transfer happens on a rising edge
where both were high. Random idle cycles (``stall``) and random backpressure
(``backpressure``) come from the caller's seeded generator.
"""

from __future__ import annotations

from cocotb.triggers import RisingEdge

__all__ = ["StreamDriver", "StreamMonitor", "pack", "unpack"]


def pack(layout, value) -> int:
    """Bits of ``value`` (a dict/list constant for ``layout``)."""
    return layout.const(value).as_bits()


def unpack(layout, bits: int):
    """A read-only view (``amaranth.lib.data.Const``) of ``bits`` in ``layout``."""
    return layout.from_bits(bits)


class StreamDriver:
    """Drives payloads into a stream sink of the DUT."""

    def __init__(self, dut, name: str, layout, clk, rng=None, stall: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout = layout
        self.clk = clk
        self.rng = rng
        self.stall = stall
        self.transfers = 0
        self.valid.value = 0
        self.payload.value = 0

    async def send(self, value) -> None:
        """Offer one payload and return after the edge on which it was taken."""
        while self.stall and self.rng.random() < self.stall:
            self.valid.value = 0
            await RisingEdge(self.clk)
        self.payload.value = pack(self.layout, value)
        self.valid.value = 1
        while True:
            await RisingEdge(self.clk)
            if self.ready.value:
                break
        self.valid.value = 0
        self.transfers += 1


class StreamMonitor:
    """Takes payloads from a stream source of the DUT, with random backpressure."""

    def __init__(self, dut, name: str, layout, clk, rng=None, backpressure: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout = layout
        self.clk = clk
        self.rng = rng
        self.backpressure = backpressure
        self.ready.value = 0

    async def recv(self):
        """Return the next payload (as a data.Const view) once transferred."""
        while self.backpressure and self.rng.random() < self.backpressure:
            self.ready.value = 0
            await RisingEdge(self.clk)
        self.ready.value = 1
        while True:
            await RisingEdge(self.clk)
            if self.valid.value:
                break
        bits = self.payload.value.to_unsigned()
        self.ready.value = 0
        return unpack(self.layout, bits)
