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


BLOCKS = {"conformance": conformance_block}


def render(text: str) -> str:
    for name, fn in BLOCKS.items():
        pat = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
        if not pat.search(text):
            raise SystemExit(f"readme: no block {name!r} in README.md")
        body = fn()
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
