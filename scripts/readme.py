"""Regenerate the README's generated blocks (``<!-- begin NAME -->`` … ``<!-- end NAME -->``).

``conformance``: the ONNX node-test table, run now on the golden model
(:mod:`ncore.compiler.conformance`). ``python -m ncore.scripts.readme [--check]``; with
``--check`` nothing is written and the exit status says whether the README is current.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def conformance_block() -> str:
    from ..compiler import conformance as cf
    from ..params import NCoreParams

    p = NCoreParams(dtypes=("int8", "bf16"))
    results = [cf._safe_check(c, p) for c in cf.cases()]
    return cf.markdown(cf.summary(results))


RESULTS = README.parent / "build" / "bench" / "results.json"


def performance_block() -> str | None:
    """Figures of the last ``make bench`` (None: no results, keep the README's)."""
    import json

    if not RESULTS.exists():
        return None
    r = json.loads(RESULTS.read_text())
    if "gemm_sweep" not in r:
        return None
    m = r.get("machine", {})
    out = [f"Measured by `make bench` on {r.get('date', '?')} ({m.get('cpus', '?')} CPUs, "
           f"{m.get('verilator', 'Verilator')}, {m.get('iverilog', 'Icarus')}); every run "
           "checked bit for bit against the golden model.", "",
           "![GEMM utilisation](docs/bench_gemm.png) ![roofline](docs/roofline.png)", "",
           "| GEMM M=K=N | dtype | cores | cycles | utilisation | MACs/DRAM byte "
           "| cycle model |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for g in r["gemm_sweep"]:
        out.append(f"| {g['m']} | {g['dtype']} | {g['cores']} | {g['cycles']:,} | "
                   f"{100 * g['utilization']:.1f}% | {g['intensity']:.1f} | "
                   f"{100 * g['model_error']:+.1f}% |")  # fmt: skip
    out += ["", "| digits (450 images) | mode | cycles | utilisation | accuracy | cycle model |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for d in r.get("digits", []):
        out.append(f"| {d['network']} | {d['mode']} | {d['cycles']:,} | "
                   f"{100 * d['utilization']:.1f}% | {100 * d['accuracy']:.2f}% | "
                   f"{100 * d['model_error']:+.1f}% |")  # fmt: skip
    f = r.get("fastsim")
    if f:
        out += ["", f"Simulation speed, whole 4-core chip: {f['cycles_per_s']:,.0f} cycles/s on "
                "the Verilator fast path (C++ harness, no cocotb; the 256³ GEMM)."]  # fmt: skip
    return "\n".join(out)


BLOCKS = {"conformance": conformance_block, "performance": performance_block}


def render(text: str) -> str:
    for name, fn in BLOCKS.items():
        pat = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
        if not pat.search(text):
            continue
        body = fn()
        if body is None:
            continue
        text = pat.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that README.md is current")
    args = ap.parse_args(argv)
    old = README.read_text()
    new = render(old)
    if args.check:
        return 0 if new == old else 1
    README.write_text(new)
    print("readme: README.md regenerated" if new != old else "readme: README.md was current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
