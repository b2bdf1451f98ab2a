#!/bin/bash
# bench/ab-share-get.sh OLD_CLI NEW_CLI [RUNS] [SIZE_MiB] [-- extra share/get flags]
#
# Two builds side by side: `share` then a timed `get` of the same file, alternating old and new
# RUNS times each (default 3), in bench:transfer's setup (a swarmshare tracker on loopback, the DHT
# on, get from 127.0.0.2). Each CLI is a built dist/cli/main.js (an old one from a worktree:
# `git worktree add /tmp/old <commit> && (cd /tmp/old && npm ci && node scripts/build.mjs)`).
# Prints MiB/s per run, start of get to its exit.
set -euo pipefail
OLD=$1; NEW=$2; RUNS=${3:-3}; SIZE=${4:-256}
shift $(( $# < 4 ? $# : 4 )); [ "${1:-}" = "--" ] && shift
EXTRA=("$@")
DIR=$(mktemp -d /tmp/ss-ab-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$DIR"' EXIT
mkdir -p "$DIR/src"
head -c $((SIZE * 1024 * 1024)) /dev/urandom > "$DIR/src/p.bin"; sync
PORT=$(node -e "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
node "$NEW" tracker --port "$PORT" --interval 5 > "$DIR/tracker.log" 2>&1 &
for _ in $(seq 1 50); do grep -q "http://" "$DIR/tracker.log" 2>/dev/null && break; sleep 0.1; done
node "$NEW" create "$DIR/src/p.bin" --piece-size 1MiB --tracker "http://127.0.0.1:$PORT/announce" -o "$DIR/p.torrent" > /dev/null
one() {
  local cli=$1 label=$2
  rm -rf "$DIR/out"
  node "$cli" share "$DIR/p.torrent" --dir "$DIR/src" "${EXTRA[@]}" > "$DIR/share.log" 2>&1 &
  local sp=$!
  for _ in $(seq 1 100); do grep -q Listening "$DIR/share.log" && break; sleep 0.1; done
  sleep 1
  local s e
  s=$(date +%s.%N)
  node "$cli" get "$DIR/p.torrent" -o "$DIR/out" --host 127.0.0.2 --timeout 300 "${EXTRA[@]}" > "$DIR/get.log" 2>&1
  e=$(date +%s.%N)
  kill -INT "$sp"; wait "$sp" || true
  echo "$label $(echo "$SIZE/($e-$s)" | bc -l | cut -c1-6) MiB/s"
}
for _ in $(seq 1 "$RUNS"); do one "$OLD" old; one "$NEW" new; done
