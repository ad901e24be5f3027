"""Shared pytest options: the simulators to use and the random seed of the benches."""

import os

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--seed",
        type=int,
        default=int(os.environ.get("SEED", "0") or 0) or None,
        help="seed for every randomised bench (default: each test's own fixed seed)",
    )
    parser.addoption(
        "--sims",
        default=os.environ.get("SIMS", "icarus,verilator"),
        help="comma-separated simulators for the cocotb benches (default: icarus,verilator)",
    )


@pytest.fixture
def seed(request):
    """The seed a test should use: --seed/SEED if given, else the test's default."""

    def choose(default: int) -> int:
        s = request.config.getoption("--seed")
        s = default if s is None else s
        print(f"seed={s}  (rerun: make test SEED={s}, or pytest --seed {s})")
        return s

    return choose


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        sims = [s for s in metafunc.config.getoption("--sims").split(",") if s]
        metafunc.parametrize("sim", sims)
