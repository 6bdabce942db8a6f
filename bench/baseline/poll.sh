#!/bin/sh
# Baseline for bench/bench.ts: a container poll written the way the stock OpenNebula 2.2.1
# shell drivers work, one tool per fact: `vzctl status` for the state, `vzlist` for memory,
# awk over /proc/vz/vestat (CPU, average since start) and /proc/vz/venetstat (traffic).
# Prints the same line as onevz's poll. ONEVZ_SYSROOT prefixes /proc (the simulator's root).
CTID=$1
P=${ONEVZ_SYSROOT:-}
set -- $(vzctl status "$CTID")
# "CTID 101 exist mounted running" / "CTID 101 deleted unmounted down"
if [ "$3" = deleted ]; then echo "STATE=d"; exit 0; fi
if [ "$5" != running ]; then echo "STATE=d"; exit 0; fi
if [ -e "$P/proc/vz/vswap" ]; then FIELD=physpages; else FIELD=privvmpages; fi
PAGES=$(vzlist -H -o "$FIELD" "$CTID" | tr -d ' ')
MEM=$((PAGES * 4))
CPU=$(awk -v id="$CTID" '$1 == id && $8 > 0 { printf "%d", 100 * $9 / $8 }' "$P/proc/vz/vestat")
NET=$(awk -v id="$CTID" '$1 == id {
  line = $0; sub(/^ *[0-9]+/, "", line); gsub(/ *\/ */, "/", line)
  n = split(line, pairs, " ")
  for (i = 1; i <= n; i++) { split(pairs[i], p, "/"); rx += p[1]; tx += p[2] }
  printf "%.0f %.0f", rx, tx }' "$P/proc/vz/venetstat")
set -- $NET
echo "STATE=a USEDMEMORY=$MEM USEDCPU=${CPU:-0} NETRX=${1:-0} NETTX=${2:-0}"
