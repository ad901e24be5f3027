"""The fast run path: whole-chip program runs on Verilator with no cocotb and no Python per
cycle.

:func:`run_chip_fast` takes the case dicts of :func:`ncore.verif.core_run.run_chip_cases`
and returns result dicts with the same keys and meaning as the cocotb chip bench
(``verif/chip_tb.py``): per core ``None`` (not started) or what
:meth:`ncore.verif.core_tb.Regs.outcome` returns (STATUS, ``err_addr``, ``err_index``,
``irq_status``, every counter, ``after_reset`` after an error), ``wall_cycles`` (first START
to the last core's end, by the cores' own cycle counters), ``poll_cycles``, ``run_s``, the
DRAM read back, and SBUF/PSUM when the case asks for ``sbuf_entries``/``psum_entries``
(else None). Extra: ``sim_cycles`` (cycles simulated from the first START to the end seen by
the host) and ``rate`` = ``sim_cycles / run_s``, the simulation speed.

The simulator is ``verif/cpp/fastsim_harness.cpp`` around the Verilated ``chip`` top: a C++
DRAM behind the chip's AXI4 master port that reproduces the HDL DRAM of the chip bench
(:class:`ncore.verif.axi_ram_model.SimAxiRam`, eight bursts queued per direction) cycle for
cycle, and a C++ AXI4-Lite host that programs and starts the cores with the bench's register
sequence and polls the chip's IRQ_STATUS every 128 cycles once ``irq`` is up. Case keys
``err`` (an SLVERR window) are supported; ``pause`` (random AXI stalls) is not and must be 0.

Builds are cached under ``build/fastsim/<chip design>-<key>/`` (the key covers the
generated Verilog's own key, the harness source, the Verilator version and flags) and made
under a file lock, so parallel workers build a design once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..hw.chip import CORE_BASE, CORE_STRIDE, chip_regs
from ..hw.core import COUNTERS, CTRL_SOFT_RESET, CTRL_START, core_regs
from ..hw.generate import BUILD, design_name, generate
from ..params import NCoreParams
from .runner import VERILATOR_WAIVERS, setup_environment

__all__ = ["build", "run_chip_fast"]

HARNESS = Path(__file__).resolve().parent / "cpp" / "fastsim_harness.cpp"
#: Verilator options of the fast model (single-threaded: the machines have two cores).
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                   "-Wno-fatal", *VERILATOR_WAIVERS]  # fmt: skip
#: C++ optimisation of the model (Verilator's OPT_FAST for the hot code, OPT_SLOW the rest).
OPT_FAST = "-O3"
EXE = "ncore_fastsim"


_PORT = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", re.M)


def wrapper_verilog(vfile: Path) -> str:
    """``chip_fast``: the chip with every input except ``clk`` registered (same port names).

    Verilator evaluates all logic that depends on a top-level input on every ``eval()``;
    Amaranth's next-state logic reads ``rst`` and the AXI inputs, so with bare inputs most
    of the chip's combinational logic runs twice a cycle. Registered inputs make it run once,
    after the clock edge. The harness sets an input before the edge at which it should take
    effect (the DRAM and host models are Moore machines), so the chip sees the same values
    in the same cycles as with bare inputs."""
    text = vfile.read_text()
    start = text.index("module chip(")
    header = text[start : text.index("endmodule", start)]
    ports = [(d, int(w) + 1 if w else 1, n) for d, w, n in _PORT.findall(header)]
    lines = [f"module chip_fast({', '.join(n for _, _, n in ports)});"]
    conns = []
    for d, w, n in ports:
        rng = f"[{w - 1}:0] " if w > 1 else ""
        lines.append(f"  {d} {rng}{n};")
        if d == "input" and n != "clk":
            init = "1'b1" if n == "rst" else f"{w}'d0"
            lines.append(f"  reg {rng}{n}_q = {init};")
            lines.append(f"  always @(posedge clk) {n}_q <= {n};")
            conns.append(f"    .{n}({n}_q)")
        else:
            conns.append(f"    .{n}({n})")
    lines.append("  chip u_chip (\n" + ",\n".join(conns) + "\n  );")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _build_key(params: NCoreParams, vfile: Path) -> str:
    import json

    import verilator

    design = json.loads((vfile.parent / "design.json").read_text())
    h = hashlib.sha256()
    parts = [design["key"], params.to_json(), HARNESS.read_text(), " ".join(VERILATOR_FLAGS),
             OPT_FAST, getattr(verilator, "__version__", "?"), wrapper_verilog(vfile)]  # fmt: skip
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def build(params: NCoreParams, *, log: str | Path | None = None) -> Path:
    """Generate the chip's Verilog and build the fast simulator for it (cached); returns the
    executable. ``log``: a file for Verilator's and the compiler's output."""
    setup_environment()
    vfile = generate(params, "chip")
    key = _build_key(params, vfile)
    out = BUILD / "fastsim" / f"{design_name('chip', params)}-{key}"
    exe = out / EXE
    if exe.exists():
        return exe
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers: one build, the others wait
        if exe.exists():
            return exe
        obj = out / "obj"
        shutil.rmtree(obj, ignore_errors=True)
        env = dict(os.environ)
        env["OPT_FAST"] = OPT_FAST
        wrapper = out / "chip_fast.v"
        wrapper.write_text(wrapper_verilog(vfile))
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", *VERILATOR_FLAGS,
               "--top-module", "chip_fast", "--prefix", "Vchip", "-Mdir", str(obj), "-o", EXE,
               str(HARNESS), str(vfile), str(wrapper)]  # fmt: skip
        t0 = time.perf_counter()
        with open(log, "a") if log else open(out / "build.log", "w") as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=out)
        if r.returncode or not (obj / EXE).exists():
            where = log or out / "build.log"
            raise RuntimeError(f"fastsim: building the chip model failed (see {where})")
        tmp = out / f"{EXE}.{os.getpid()}.tmp"
        shutil.copy2(obj / EXE, tmp)
        tmp.replace(exe)
        (out / "build_s.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return exe


def _readout(params: NCoreParams) -> tuple[list[str], list[int]]:
    regs = {r.name: r.offset for r in core_regs(params)}
    names = ["status", "err_addr", "err_addr_hi", "err_index", "irq_status"]
    for name, width, _ in COUNTERS:
        names += [f"{name}_lo", f"{name}_hi"] if width == 64 else [name]
    return names, [regs[n] for n in names]


def _outcome(values: dict, after_reset: int) -> dict:
    """The dict :meth:`ncore.verif.core_tb.Regs.outcome` returns, from the registers read."""
    counters = {}
    for name, width, _ in COUNTERS:
        if width == 64:
            counters[name] = values[f"{name}_lo"] | values[f"{name}_hi"] << 32
        else:
            counters[name] = values[name]
    res = {
        "status": values["status"],
        "err_addr": values["err_addr"] | values["err_addr_hi"] << 32,
        "err_index": values["err_index"],
        "irq_status": values["irq_status"],
        "counters": counters,
    }
    if values["status"] & 8:
        res["after_reset"] = after_reset
    return res


def _lanes(raw: bytes, cores: int, entries: int, lanes: int, width: int) -> list[np.ndarray]:
    """Per core, the dbg words ``raw`` (``entries`` per core) split into ``lanes`` lanes of
    ``width`` bits, partition-major (as the cocotb bench returns them)."""
    nbytes = -(-lanes * width // 8)
    words = np.frombuffer(raw, np.uint8).reshape(cores, entries, nbytes)
    if width in (8, 16, 32, 64):
        v = words.view(f"<u{width // 8}").astype(np.uint64)
        return [v[c].T.copy() for c in range(cores)]
    out = []
    mask = (1 << width) - 1
    for c in range(cores):
        a = np.zeros((entries, lanes), np.uint64)
        for i in range(entries):
            x = int.from_bytes(words[c, i].tobytes(), "little")
            a[i] = [(x >> (width * k)) & mask for k in range(lanes)]
        out.append(a.T)
    return out


def run_chip_fast(
    params: NCoreParams,
    cases: list[dict],
    *,
    dram_bytes: int = 1 << 16,
    log: str | Path | None = None,
    work_dir: str | Path | None = None,
) -> list[dict]:
    """Run chip ``cases`` (as :func:`ncore.verif.core_run.run_chip_cases`) on the fast
    simulator, back to back on one chip (SBUF, PSUM and weights carry over); one result dict
    per case (see the module docstring). ``log``: a file for the build's and the simulator's
    output."""
    p = params
    nb = p.axi_data_width // 8
    if dram_bytes % nb or dram_bytes <= 0:
        raise ValueError(f"dram_bytes must be a positive multiple of {nb}")
    for c in cases:
        name = c.get("name")
        if c.get("pause", 0):
            raise ValueError(f"case {name}: the fast path has no AXI pauses (pause=0)")
        if len(c["dram"]) > dram_bytes:
            raise ValueError(f"case {name}: image of {len(c['dram'])} B > DRAM {dram_bytes}")
        if len(c["programs"]) != p.cores:
            raise ValueError(f"case {name}: {len(c['programs'])} programs, {p.cores} cores")
    exe = build(p, log=log)
    names, offsets = _readout(p)
    core = {r.name: r.offset for r in core_regs(p)}
    chip = {r.name: r.offset for r in chip_regs(p)}
    sbuf_bytes = -(-p.rows * p.lane_width // 8)
    psum_bytes = p.cols * 4
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="fastsim-") as tmp:
        tmp = Path(tmp)
        lines = [
            f"dram {dram_bytes} {nb} {p.axi_addr_width} {p.cores}",
            "layout " + " ".join(str(v) for v in (
                CORE_BASE, CORE_STRIDE, chip["irq_status"], core["ctrl"], core["status"],
                core["irq_status"], core["prog_base"], core["prog_base_hi"], core["prog_len"],
                CTRL_START, CTRL_SOFT_RESET)),
            f"readout {len(offsets)} " + " ".join(map(str, offsets)),
            f"dbg {sbuf_bytes} {psum_bytes}",
        ]  # fmt: skip
        plan = []
        for i, c in enumerate(cases):
            image = tmp / f"case{i}.img"
            np.asarray(c["dram"], np.uint8).tofile(image)
            readback = int(c.get("dram_bytes", -(-len(c["dram"]) // 64) * 64))
            readback = min(readback, dram_bytes)
            eb, es = c.get("err", (0, 0))
            sbuf_n = int(c.get("sbuf_entries", 0) or 0)
            psum_n = int(c.get("psum_entries", 0) or 0)
            plan.append((readback, sbuf_n, psum_n))
            lines.append(f"case {image} {readback} {int(c.get('max_cycles', 2_000_000))} "
                         f"{int(eb)} {int(es)} {sbuf_n} {psum_n} {tmp / f'out{i}'}")  # fmt: skip
            for core_index, prog in enumerate(c["programs"]):
                if prog is not None:
                    lines.append(f"prog {core_index} {int(prog[0])} {int(prog[1])}")
            lines.append("run")
        spec, results = tmp / "spec.txt", tmp / "results.txt"
        spec.write_text("\n".join(lines) + "\n")
        with open(log, "a") if log else open(tmp / "sim.log", "w") as f:
            r = subprocess.run([str(exe), str(spec), str(results)], stdout=f,
                               stderr=subprocess.STDOUT)  # fmt: skip
        if r.returncode:
            text = "" if log else (tmp / "sim.log").read_text()[-2000:]
            raise RuntimeError(f"fastsim: the simulator failed ({r.returncode}) {text}")
        parsed = _parse(results.read_text(), names)
        out = []
        for i, (c, (_, sbuf_n, psum_n)) in enumerate(zip(cases, plan, strict=True)):
            if i >= len(parsed) or parsed[i]["timeout"]:
                raise RuntimeError(f"case {c.get('name')}: cores did not finish")
            got = parsed[i]
            per_core = [None] * p.cores
            for k, (after, values) in got["cores"].items():
                per_core[k] = _outcome(values, after)
            started = got["start"]
            end = max(started[k] + per_core[k]["counters"]["cycles"] for k in started)
            res = {
                "cores": per_core,
                "wall_cycles": end,
                "poll_cycles": got["sim_cycles"],
                "run_s": got["run_s"],
                "sim_cycles": got["sim_cycles"],
                "rate": got["sim_cycles"] / max(got["run_s"], 1e-9),
                "dram": np.fromfile(tmp / f"out{i}.dram", np.uint8),
                "sbuf": None,
                "psum": None,
            }
            if sbuf_n:
                raw = (tmp / f"out{i}.sbuf").read_bytes()
                res["sbuf"] = _lanes(raw, p.cores, sbuf_n, p.rows, p.lane_width)
            if psum_n:
                raw = (tmp / f"out{i}.psum").read_bytes()
                res["psum"] = _lanes(raw, p.cores, psum_n, p.cols, 32)
            out.append(res)
    return out


def _parse(text: str, names: list[str]) -> list[dict]:
    cases = []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "case":
            cases.append({"timeout": f[2] == "1", "sim_cycles": int(f[3]), "run_s": float(f[4]),
                          "start": {}, "cores": {}})  # fmt: skip
        elif f[0] == "start":
            cases[-1]["start"][int(f[1])] = int(f[2])
        elif f[0] == "core":
            values = dict(zip(names, map(int, f[3:]), strict=True))
            cases[-1]["cores"][int(f[1])] = (int(f[2]), values)
    return cases
