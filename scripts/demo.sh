#!/usr/bin/env bash
# Installs what is missing, builds, then shows several processes sharing one room:
# two followers tail it live while three agents publish into it at the same time.
# Usage: sudo scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
bin=build/release/agentbus
export AGENTBUS_BUS="demo-$$" AGENTBUS_ROOM="demo/main"
tmp=$(mktemp -d)
trap '"$bin" destroy >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

per_agent=5
agents=(planner coder reviewer)
total=$((per_agent * ${#agents[@]}))

echo "== bus $AGENTBUS_BUS, room $AGENTBUS_ROOM: ${#agents[@]} publishers, 2 followers"
open_id=$("$bin" post status '{"state":"room open"}' --agent demo)  # creates bus and room
for f in 1 2; do
  # Starting at the first event's id, a follower misses nothing however late it attaches.
  "$bin" tail --follow --from "$open_id" --timeout 10s > "$tmp/follower$f.txt" &
  followers+=($!)
done
for a in "${agents[@]}"; do
  ( for i in $(seq 1 $per_agent); do
      "$bin" post progress "{\"step\":$i,\"of\":$per_agent}" --agent "$a" >/dev/null
    done ) &
  publishers+=($!)
done
wait "${publishers[@]}"
"$bin" post status '{"state":"done"}' --agent demo >/dev/null

# The followers exit on their timeout; stop them as soon as they have seen the last event.
for f in 1 2; do
  for _ in $(seq 1 100); do grep -q '"done"' "$tmp/follower$f.txt" && break; sleep 0.1; done
done
kill -INT "${followers[@]}" 2>/dev/null || true
wait "${followers[@]}" 2>/dev/null || true

echo
echo "== follower 1 saw, live:"
cat "$tmp/follower1.txt"
for f in 1 2; do
  n=$(grep -c 'progress' "$tmp/follower$f.txt" || true)
  echo "follower $f received $n of $total progress events"
done
echo
echo "== the room afterwards (agentbus tail -n 4 --json):"
"$bin" tail -n 4 --json
echo
"$bin" info | sed -n '1,4p'
