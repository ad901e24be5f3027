#!/usr/bin/env bash
# Install everything the ncore flow needs on a Debian machine, idempotently:
#   1. Debian packages (iverilog, liblz4-dev for Verilator FST traces, ccache, g++, make);
#   2. the Python virtual environment .venv from pyproject.toml (pinned versions).
# Re-running is cheap: packages already present are not reinstalled, and the venv is only
# refreshed when pyproject.toml changed (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.ncore-stamp

need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
dpkg -s liblz4-dev >/dev/null 2>&1 || need+=(liblz4-dev)
command -v ccache >/dev/null 2>&1 || need+=(ccache)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo";
  else
    echo "setup: error: missing ${need[*]} and not root; run: apt-get install ${need[*]}" >&2
    exit 1
  fi
  if ! { $SUDO apt-get update -qq && \
         DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "setup: error: apt-get could not install ${need[*]}; install them by hand" >&2
    exit 1
  fi
fi

if [ ! -x $VENV/bin/python ]; then
  echo "setup: creating $VENV"
  $PY -m venv $VENV
fi
if [ ! -f $STAMP ] || [ pyproject.toml -nt $STAMP ]; then
  echo "setup: installing Python packages into $VENV (pinned in pyproject.toml)"
  $VENV/bin/python -m pip install -q --upgrade pip
  $VENV/bin/python -m pip install -q -e ".[dev]"
  touch $STAMP
fi
