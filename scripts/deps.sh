#!/usr/bin/env bash
# Installs the Debian 12 packages libra needs, only those missing.
# usage: scripts/deps.sh [--test]   (--test adds what the test suite needs: valgrind, chromium,
#                                    Open MPI for the tests under mpirun; the demo needs none of them)
set -euo pipefail
pkgs=(gcc make cmake pkg-config libopenblas-dev zlib1g-dev libstb-dev check dataset-fashion-mnist)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(valgrind chromium clang libclang-rt-14-dev python3 openmpi-bin libopenmpi-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "libra: installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
