#!/usr/bin/env bash
# check-layers.sh — fails on an #include that points up the layers (docs/architecture.md,
# "Layers"): util < shm < bus < coord < status < bridge < (orchestration) < agentbus.hpp < tools.
# A file may include headers of its own layer and of the layers below it. Public headers
# (include/agentbus) include only public headers; tools (and the Python binding, python/src)
# include only public headers and their own. The link catches an upward call (agentbus-layer-* in CMakeLists.txt); this catches the
# include before anything calls through it, and says where.
#
# Usage: scripts/check-layers.sh [repository root]   (default: this script's repository)
#        scripts/check-layers.sh --self-test          (checks the checker on a made-up tree)
# Prints one line per crossing, file:line: what, and exits 1 if there is any.
set -euo pipefail

rank() {
  case $1 in
    util) echo 0 ;; shm) echo 1 ;; bus) echo 2 ;; coord) echo 3 ;; status) echo 4 ;;
    bridge) echo 5 ;; orchestration) echo 6 ;; api) echo 8 ;; tools) echo 9 ;;
    *) echo -1 ;;
  esac
}

# The layer that implements a public header. A new header must be placed here on purpose.
public_layer() {
  case $1 in
    counter.hpp | error.hpp | names.hpp | event.hpp | utf8.hpp | json_text.hpp | clock.hpp | hash.hpp) echo util ;;
    process.hpp) echo shm ;;
    bus.hpp | room.hpp | subscription.hpp | exclusive_publisher.hpp) echo bus ;;
    bridge_status.hpp | consumer_group.hpp | inbox.hpp | lease_paths.hpp | leases.hpp | presence.hpp | scratchpad.hpp | tasks.hpp) echo coord ;;
    event_json.hpp | status_bus.hpp) echo status ;;
    bridge/*.hpp) echo bridge ;;
    orchestration/*.hpp) echo orchestration ;;
    agentbus.hpp) echo api ;;
    *) echo unknown ;;
  esac
}

# The layer of a file, from its path relative to the root.
file_layer() {
  case $1 in
    src/*) local rest=${1#src/}; echo "${rest%%/*}" ;;
    include/agentbus/*) public_layer "${1#include/agentbus/}" ;;
    tools/* | python/src/*) echo tools ;;
    *) echo unknown ;;
  esac
}

check_tree() {
  local root=$1 crossings=0 file rel layer r line num text inc target tr what
  while IFS= read -r file; do
    rel=${file#"$root"/}
    layer=$(file_layer "$rel")
    r=$(rank "$layer")
    if [ "$r" -lt 0 ]; then
      echo "$rel: not in any layer (add it to public_layer or a src/<layer> folder)"
      crossings=$((crossings + 1))
      continue
    fi
    while IFS= read -r line; do
      num=${line%%:*}
      text=${line#*:}
      what=""
      if [[ $text =~ \#[[:space:]]*include[[:space:]]*\<agentbus/([^>]+)\> ]]; then
        inc=${BASH_REMATCH[1]}
        target=$(public_layer "$inc")
        tr=$(rank "$target")
        if [ "$tr" -lt 0 ]; then
          what="<agentbus/$inc> is not in any layer"
        elif [ "$tr" -gt "$r" ]; then
          what="$layer includes <agentbus/$inc> of layer $target"
        fi
      elif [[ $text =~ \#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
        inc=${BASH_REMATCH[1]}
        case $rel in
          include/*) what="public header includes internal \"$inc\"" ;;
          tools/* | python/src/*)
            if [ ! -e "$(dirname "$file")/$inc" ]; then
              what="tools include only <agentbus/...> and their own headers, not \"$inc\""
            fi ;;
          *)
            target=${inc%%/*}
            tr=$(rank "$target")
            if [ "$inc" = "$target" ] || [ "$tr" -lt 0 ]; then
              what="\"$inc\" is not under a layer folder (src/<layer>/...)"
            elif [ "$tr" -gt "$r" ]; then
              what="$layer includes \"$inc\" of layer $target"
            fi ;;
        esac
      fi
      if [ -n "$what" ]; then
        echo "$rel:$num: $what"
        crossings=$((crossings + 1))
      fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$file" || true)
  done < <(find "$root/src" "$root/include" "$root/tools" "$root/python/src" -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.h' \) 2>/dev/null | sort)
  if [ "$crossings" -gt 0 ]; then
    echo "check-layers: $crossings crossing(s); see docs/architecture.md, \"Layers\"" >&2
    return 1
  fi
  echo "check-layers: ok"
}

# Builds a tree that obeys the layers, checks it passes, then adds one crossing of each kind
# and checks each is reported with its file and line.
self_test() {
  local tmp out failed=0
  tmp=$(mktemp -d /tmp/check-layers.XXXXXX)
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/src/shm" "$tmp/src/bus" "$tmp/src/coord" "$tmp/include/agentbus" "$tmp/tools/cli"
  printf '#include <agentbus/event.hpp>\n' >"$tmp/include/agentbus/room.hpp"
  printf '#include "shm/ring.hpp"\n#include <agentbus/event.hpp>\n#include <vector>\n' >"$tmp/src/shm/ring.cpp"
  printf '#pragma once\n' >"$tmp/src/shm/ring.hpp"
  printf '#include "shm/ring.hpp"\n#include <agentbus/room.hpp>\n' >"$tmp/src/bus/room.cpp"
  printf '#include "bus/room.hpp"\n' >"$tmp/src/coord/tasks.cpp"
  printf '#pragma once\n' >"$tmp/src/bus/room.hpp"
  printf '#include "local.hpp"\n#include <agentbus/room.hpp>\n' >"$tmp/tools/cli/main.cpp"
  printf '#pragma once\n' >"$tmp/tools/cli/local.hpp"
  if ! out=$(check_tree "$tmp" 2>&1); then
    echo "self-test: a clean tree was rejected:"; echo "$out"; return 1
  fi
  expect() {  # file, line to append, what the report must contain
    local saved
    saved=$(cat "$tmp/$1")
    printf '%s\n' "$2" >>"$tmp/$1"
    if out=$(check_tree "$tmp" 2>&1); then
      echo "self-test: not caught: $1: $2"; failed=1
    elif ! grep -qF "$3" <<<"$out"; then
      echo "self-test: $1: $2 reported as:"; echo "$out"; failed=1
    fi
    printf '%s\n' "$saved" >"$tmp/$1"
  }
  expect src/shm/ring.cpp '#include <agentbus/room.hpp>' 'src/shm/ring.cpp:4: shm includes <agentbus/room.hpp> of layer bus'
  expect src/shm/ring.cpp '#include "bus/room.hpp"' 'src/shm/ring.cpp:4: shm includes "bus/room.hpp" of layer bus'
  expect src/bus/room.cpp '  #  include "coord/tasks.hpp"' 'src/bus/room.cpp:3: bus includes "coord/tasks.hpp" of layer coord'
  expect include/agentbus/room.hpp '#include "shm/ring.hpp"' 'include/agentbus/room.hpp:2: public header includes internal'
  expect include/agentbus/room.hpp '#include <agentbus/tasks.hpp>' 'include/agentbus/room.hpp:2: bus includes <agentbus/tasks.hpp> of layer coord'
  expect tools/cli/main.cpp '#include "shm/ring.hpp"' 'tools/cli/main.cpp:3: tools include only'
  expect src/shm/ring.cpp '#include <agentbus/nonesuch.hpp>' '<agentbus/nonesuch.hpp> is not in any layer'
  expect src/coord/tasks.cpp '#include "bridge/redis_connection.hpp"' 'src/coord/tasks.cpp:2: coord includes "bridge/redis_connection.hpp" of layer bridge'
  expect src/coord/tasks.cpp '#include <agentbus/bridge/redis_target.hpp>' 'src/coord/tasks.cpp:2: coord includes <agentbus/bridge/redis_target.hpp> of layer bridge'
  [ "$failed" -eq 0 ] && echo "check-layers self-test: ok"
  return "$failed"
}

if [ "${1:-}" = "--self-test" ]; then
  self_test
else
  check_tree "$(cd "${1:-$(dirname "$0")/..}" && pwd)"
fi
