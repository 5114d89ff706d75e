#!/usr/bin/env bash
# Installs what agentbus needs to build, test and benchmark, from Debian 12 packages.
# Safe to run again: apt-get skips what is already there. Needs root (or sudo).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libboost-dev libconcurrentqueue-dev libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libhiredis-dev
  libncurses-dev redis-server tmux
  python3  # the example provider examples/providers/echo_agent.py, run by the orchestration tests
  python3-dev python3-pybind11 python3-pytest  # the Python binding (python/) and its pytest suite
  python3-redis  # bench/python_bench.py measures redis-py beside the binding
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
