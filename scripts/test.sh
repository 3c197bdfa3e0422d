#!/usr/bin/env bash
# Install the test dependencies and run the whole test suite.
#  0. .tools/azurite: the Azure Storage emulator (npm), for the Blob storage tests; scripts/slurm.sh: Slurm;
#     scripts/docker.sh: a Docker engine, for the container tasks
#  1. .venv        : openbatch + azure-batch 15.1 + schemathesis (unit, store, REST, SDK 15 end-to-end and fuzz tests)
#                    + Playwright (the dashboard in Debian's Chromium; screenshots in test-artifacts/screenshots)
#  2. .venv-sdk14  : openbatch + azure-batch 14.2 (the same server driven by the msrest-based SDK);
#     .venv-az: the Azure CLI, driven by tests/execution/test_az_cli.py
#  3. the coverage table (docs/coverage.md) regenerated from both runs must equal the committed one
#  4. the import rules of the layers (import-linter contracts in pyproject.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

setup() {  # setup VENV PACKAGES...
  local venv=$1; shift
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
}

# Azurite (the Azure Storage emulator, npm) for the Blob storage tests; they skip, saying why, without it
if [ ! -x .tools/azurite/node_modules/.bin/azurite-blob ]; then
  if command -v npm >/dev/null; then
    npm install --silent --no-audit --no-fund --prefix .tools/azurite azurite@3.37.0 \
      || echo "warning: Azurite could not be installed: the Blob storage tests will skip" >&2
  else
    echo "warning: npm not found, Azurite not installed: the Blob storage tests will skip" >&2
  fi
fi

# A single-host Slurm cluster (Debian's packages) for the Slurm-backed pool tests; they skip, saying why, without it
./scripts/slurm.sh
# A Docker engine (Debian's docker.io) for the container task tests; they skip, saying why, without it
./scripts/docker.sh
# sudo: admin accounts (a pool's admin userAccounts, admin node users) get it; without it they are refused
if [ "$(id -u)" = 0 ] && ! command -v sudo >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sudo >/dev/null; } \
    || echo "warning: sudo could not be installed: the admin account tests will fail" >&2
fi

# Open MPI (Debian's openmpi-bin): the multi-instance task tests run mpirun across their nodes; that one skips without it
if [ "$(id -u)" = 0 ] && ! command -v mpirun >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin >/dev/null; } \
    || echo "warning: openmpi-bin could not be installed: the mpirun test will skip" >&2
fi

# Chromium (Debian's): the dashboard's tests drive it headless with Playwright; they skip, saying why, without it
if [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "warning: chromium could not be installed: the dashboard's browser tests will skip" >&2
fi

setup .venv -e ".[test,sdk15,fuzz,ui]"
setup .venv-sdk14 -e ".[test]" "azure-batch==14.2.0"
# the Azure CLI (`az batch`), run by tests/execution/test_az_cli.py as a subprocess; that module skips without it
[ -x .venv-az/bin/az ] || setup .venv-az "azure-cli==2.67.0"

rm -rf build/coverage-hits
status=0
OPENBATCH_HITS_NAME=sdk15 .venv/bin/python -m pytest -q "$@" || status=$?
OPENBATCH_HITS_NAME=sdk14 .venv-sdk14/bin/python -m pytest -q tests/sdk14 "$@" || status=$?
if [ $# -eq 0 ]; then
  .venv/bin/python scripts/coverage_table.py --check || status=$?
  .venv/bin/lint-imports || status=$?
fi
exit $status
