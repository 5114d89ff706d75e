#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs the whole test suite.
# Usage: sudo scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release
cmake --build --preset release
ctest --preset release -j"$(nproc)" "$@"
