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
echo "check-install: ok"
