#!/usr/bin/env bash
# Installs the release build into a staging prefix and builds examples/consumer against it
# out of tree, once with find_package(agentbus) and once with pkg-config, then runs both and
# the installed CLI. Usage: scripts/check-install.sh [build dir, default build/release]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
stage=$(mktemp -d /tmp/agentbus-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT

cmake --install "$build" --prefix "$stage/prefix" >/dev/null
for f in bin/agentbus include/agentbus/agentbus.hpp share/man/man1/agentbus.1; do
  [ -e "$stage/prefix/$f" ] || { echo "check-install: $f was not installed" >&2; exit 1; }
done

echo "=== find_package(agentbus) ==="
cmake -S examples/consumer -B "$stage/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$stage/prefix" >/dev/null
cmake --build "$stage/cmake-build" >/dev/null
"$stage/cmake-build/agentbus-consumer"

echo "=== pkg-config agentbus ==="
pcdir=$(dirname "$(find "$stage/prefix" -name agentbus.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs agentbus)
# shellcheck disable=SC2086  # the flags are words
c++ -O2 -o "$stage/consumer-pc" examples/consumer/main.cpp $flags
"$stage/consumer-pc"

echo "=== installed CLI ==="
bus="check-install-$$"
"$stage/prefix/bin/agentbus" --bus "$bus" --room example/main post greeting '{"from":"cli"}' >/dev/null
"$stage/prefix/bin/agentbus" --bus "$bus" --room example/main tail -n 1
"$stage/prefix/bin/agentbus" --bus "$bus" destroy >/dev/null
# The Python module, when the build has it: installed beside the library, importable from the
# staging prefix with the interpreter it was built for, and working against the installed CLI.
if [ -d "$build/python/agentbus" ]; then
  echo "=== python module ==="
  py=$(sed -n 's/^Python_EXECUTABLE:[A-Z]*=//p' "$build/CMakeCache.txt")
  pkg=$(dirname "$(find "$stage/prefix" -path '*/agentbus/__init__.py' | head -1)")
  [ -f "$pkg/__init__.pyi" ] || { echo "check-install: the Python package was not installed" >&2; exit 1; }
  "$stage/prefix/bin/agentbus" --bus "$bus" --room example/main post greeting '{"from":"cli"}' >/dev/null
  PYTHONPATH=$(dirname "$pkg") "$py" -c '
import sys, agentbus
(ev,) = agentbus.Bus(sys.argv[1], create=False).room("example/main").recent(1)
assert ev.type == "greeting" and agentbus.__file__.startswith(sys.argv[2]), (ev, agentbus.__file__)
print("python:", ev.type, ev.payload, "from", agentbus.__file__)' "$bus" "$stage"
  "$stage/prefix/bin/agentbus" --bus "$bus" destroy >/dev/null
fi
echo "check-install: ok"
