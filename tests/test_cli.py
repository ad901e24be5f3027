"""The ncore command line: generation, and one clear error line for bad input."""

import json
import subprocess
import sys

import pytest

from ncore.scripts.ncore import main


@pytest.mark.parametrize(
    "argv,message",
    [
        (["verilog", "--rows", "0"], "rows must be in 1…256, not 0"),
        (["verilog", "--rows", "x"], "expected an integer, got 'x'"),
        (["verilog", "--dtypes", "int4"], "unknown dtype 'int4'"),
        (["verilog", "--top", "gpu"], "unknown top 'gpu'"),
        (["verilog", "--bogus"], "unrecognized arguments: --bogus"),
        (["sim", "--sim", "vcs"], "invalid choice: 'vcs'"),
        (["sim", "--dtype", "bf16", "--dtypes", "int8"], "dtype bf16 is not built into this"),
        (["sim", "--seed", "0"], "--seed must be ≥ 1"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ncore: error: "), err
    assert message in err


def test_make_bad_variable_is_one_line():
    """Through make, as a user would type it: no traceback."""
    r = subprocess.run(["make", "-s", "verilog", "ROWS=-3"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "ncore: error: rows must be in 1…256, not -3" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_verilog_writes_params_json(tmp_path):
    out = tmp_path / "v"
    assert main(["verilog", "--rows", "2", "--cols", "3", "-o", str(out)]) == 0
    text = (out / "tensor_engine.v").read_text()
    assert "module tensor_engine(" in text
    params = json.loads((out / "params.json").read_text())
    assert params["rows"] == 2 and params["cols"] == 3
    # The installed console script is the same entry point.
    r = subprocess.run(
        [sys.executable, "-m", "ncore.scripts.ncore", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0 and "verilog" in r.stdout


@pytest.mark.sim
def test_sim_core_gemm_passes(sim):
    """``ncore sim --block core``: a small GEMM on one core, checked end to end."""
    r = subprocess.run(
        [sys.executable, "-m", "ncore.scripts.ncore", "sim", "--block", "core", "--sim", sim,
         "--gemm", "20", "16", "12", "--sbuf-depth", "512", "--psum-depth", "128"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "PASS"
    assert any("bit-exact against numpy" in line for line in lines)
    assert any("array utilisation" in line and "cycle model" in line for line in lines)


@pytest.mark.sim
def test_sim_chip_gemm_passes(sim):
    """``ncore sim --block chip``: a GEMM split over the chip's cores."""
    r = subprocess.run(
        [sys.executable, "-m", "ncore.scripts.ncore", "sim", "--block", "chip", "--sim", sim,
         "--gemm", "32", "16",
         "16", "--cores", "2", "--sbuf-depth", "256", "--psum-depth", "64"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "PASS"
    assert any("aggregate utilisation" in line for line in lines)


@pytest.mark.sim
def test_sim_digits_demo(sim):
    """``ncore sim`` (what ``make sim`` runs): the digits CNN on the 4-core chip."""
    r = subprocess.run(
        [sys.executable, "-m", "ncore.scripts.ncore", "sim", "--sim", sim, "--images",
         "40" if sim == "verilator" else "4"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "PASS"
    assert any("accuracy" in line and "onnxruntime" in line for line in lines)
    assert any(line.startswith("conv2") for line in lines)
