"""Verilog generation: files, the shared PE module, and what an INT8-only build leaves out."""

import json
import re

import pytest

from ncore.hw.generate import generate, pe_module_name
from ncore.params import NCoreParams


def _modules(text):
    return re.findall(r"^module\s+(\S+?)\s*\(", text, re.M)


def _pe_text(text, params):
    """Verilog of the shared PE module and the modules inside it."""
    name = pe_module_name(params)
    parts = re.split(r"(?m)^(?=module )", text)
    return sum(len(x) for x in parts if x.startswith((f"module {name}(", f"module \\{name}.")))


def _reg_bits(text):
    """Flip-flop bits declared in the Verilog (a size measure independent of any synthesis)."""
    bits = 0
    for width in re.findall(r"^\s*reg\s+(?:\[(\d+):0\])?", text, re.M):
        bits += int(width) + 1 if width else 1
    return bits


def test_files_and_shared_pe(tmp_path):
    p = NCoreParams(rows=3, cols=5)
    v = generate(p, out_dir=tmp_path)
    text = v.read_text()
    mods = _modules(text)
    assert mods[0] == "tensor_engine"
    # One PE module, instantiated rows × cols times, not rows × cols module copies.
    assert mods.count(pe_module_name(p)) == 1
    assert len(re.findall(rf"^\s*{pe_module_name(p)}\s+pe_\d+_\d+\s*\(", text, re.M)) == 15
    assert NCoreParams.from_json(tmp_path / "params.json") == p
    design = json.loads((tmp_path / "design.json").read_text())
    assert design["top"] == "tensor_engine" and design["latency"] == 1 + 4 + 3 + 1 + 2


def test_int8_only_build_has_no_fp_hardware(tmp_path):
    int8 = generate(NCoreParams(rows=4, cols=4), out_dir=tmp_path / "i").read_text()
    fp = generate(NCoreParams(rows=4, cols=4, dtypes=("int8", "bf16")), out_dir=tmp_path / "f")
    fp = fp.read_text()
    assert not any("fpadd" in m or "fpmul" in m for m in _modules(int8))
    assert any("fpadd" in m for m in _modules(fp)) and any("fpmul" in m for m in _modules(fp))
    # Lanes are 8 bits instead of 16 and the PE has no FP pipeline: far fewer flip-flops,
    # and the PE (with everything it instantiates) is a small fraction of the FP one.
    assert _reg_bits(int8) * 2 < _reg_bits(fp)
    assert len(int8) < len(fp)
    int8_pe = _pe_text(int8, NCoreParams(rows=4, cols=4))
    fp_pe = _pe_text(fp, NCoreParams(rows=4, cols=4, dtypes=("int8", "bf16")))
    assert 0 < int8_pe and int8_pe * 10 < fp_pe


def _lint(vfile, top):
    import subprocess

    from ncore.scripts.ncore import LINT_WAIVERS
    from ncore.verif.runner import setup_environment

    setup_environment()
    cmd = ["verilator", "--lint-only", "-Wall", *[f"-Wno-{w}" for w in LINT_WAIVERS],
           "--top-module", top, str(vfile)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[:3000]


@pytest.mark.parametrize("dtypes", [("int8",), ("int8", "fp16", "bf16")])
def test_tensor_engine_verilog_lints_clean(dtypes):
    """Verilator -Wall with only the generator-made classes waived (as `make lint`)."""
    p = NCoreParams(rows=3, cols=2, dtypes=dtypes)
    _lint(generate(p), "tensor_engine")


def test_sim_axi_ram_verilog_lints_clean(tmp_path):
    from amaranth.back import verilog

    from ncore.verif.axi_ram_model import SimAxiRam

    ram = SimAxiRam(addr_width=32, data_width=128, id_width=4, size_bytes=1 << 12)
    v = tmp_path / "sim_axi_ram.v"
    v.write_text(verilog.convert(ram, name="sim_axi_ram", emit_src=False))
    _lint(v, "sim_axi_ram")
