"""``make synth`` helpers that need no FPGA tools: the pin wrapper and the results table.

(The flow itself — Yosys and nextpnr, minutes per design — is never run by the regression.)
"""

from ncore.scripts.synth import table_markdown, top_ports, wrapper_verilog

VERILOG = """module inner(a, b, clk, rst, y);
  input [3:0] a;
  input b;
  input clk;
  input rst;
  output [7:0] y;
  wire [7:0] y;
endmodule
module top(a, b, clk, rst, y, z);
  input [3:0] a;
  input b;
  input clk;
  input rst;
  output [7:0] y;
  wire [7:0] y;
  output z;
endmodule
"""


def test_ports_and_wrapper():
    ports = top_ports(VERILOG, "top")
    assert ports == [("input", "a", 4), ("input", "b", 1), ("input", "clk", 1),
                     ("input", "rst", 1), ("output", "y", 8), ("output", "z", 1)]  # fmt: skip
    text = wrapper_verilog(ports, "top")
    assert "reg [4:0] ish;" in text and "reg [8:0] osh;" in text
    assert ".a(ish[3:0])" in text and ".b(ish[4:4])" in text
    assert ".y(o[7:0])" in text and ".z(o[8:8])" in text
    assert ".clk(clk)" in text and ".rst(rst_q)" in text


def test_table_markdown():
    cells = {"LUT4": 1234, "TRELLIS_FF": 56, "MULT18X18D": 7, "DP16KD": 8}
    params = {"cores": 1, "rows": 8, "cols": 8, "dtypes": ["int8"], "sbuf_depth": 4096,
              "psum_depth": 1024, "axi_data_width": 128}  # fmt: skip
    designs = [
        {"name": "core", "top": "core", "params": params, "cells": cells, "fmax_mhz": 101.25},
        {"name": "big", "top": "chip", "params": params | {"cores": 4}, "cells": cells,
         "fmax_mhz": None, "error": "does not fit"},
    ]  # fmt: skip
    text = table_markdown({"designs": designs})
    lines = text.splitlines()
    assert lines[0].startswith("| design |") and len(lines) == 5
    assert "| core | `core` | 8×8 int8 | 1,234 | 56 | 7 | 8 | 101.2 |" in text
    assert "4 cores × 8×8 int8" in lines[3] and lines[3].endswith("| failed |")
