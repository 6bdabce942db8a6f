#!/bin/sh
# Starts Deno for the deno.json tasks and the package.json scripts:
#   sh tools/deno.sh run -A --quiet fixtures/demo/demo.ts
# `deno task` puts node_modules/.bin first on PATH and runs whatever it finds there as
# JavaScript, so a task line `deno run …` would load npm's native deno binary as a script
# ("SyntaxError … node_modules/deno/deno:1:1"), whichever Deno runs the task. Tasks start
# this script with sh instead, and it runs, in this order:
#   1. the Deno that runs the task (this script's parent under `deno task`),
#   2. the Deno npm installed (node_modules/.bin/deno: `npm run`, `npx`),
#   3. a deno on PATH.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# The code imports zod and fast-xml-parser from node_modules (deno.json: nodeModulesDir).
for pkg in zod fast-xml-parser; do
  if [ ! -f "$root/node_modules/$pkg/package.json" ]; then
    echo "onevz: $root/node_modules/$pkg is missing: run \`npm install\` in $root first" \
      "(it installs the npm dependencies and Deno), then run this again" >&2
    exit 1
  fi
done
deno=""
parent=$(readlink "/proc/$PPID/exe" 2>/dev/null || true)
case "${parent##*/}" in
  deno) deno=$parent ;;
esac
if [ -z "$deno" ] && [ -x "$root/node_modules/.bin/deno" ]; then deno=$root/node_modules/.bin/deno; fi
if [ -z "$deno" ]; then deno=$(command -v deno || true); fi
if [ -z "$deno" ]; then
  echo "onevz: no Deno found: run \`npm install\` in $root first" >&2
  exit 1
fi
exec "$deno" "$@"
