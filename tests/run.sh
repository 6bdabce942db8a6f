#!/usr/bin/env bash
# onevz's test command (README, `npm test`, `deno task test` and .ci/run all call exactly this).
# Installs what the tests need when it is missing (Debian: openssh-server, sudo, rsync,
# xz-utils, bzip2; Deno through npm), then runs fmt, lint and type checks and the Deno tests.
# Each check counts as one test; the last line is always exactly "N passed, N failed".
# With arguments (`bash tests/run.sh tests/unit/spec.test.ts`, `deno task test <file>…`,
# `npm test -- <file>…`) only those test files run, without the fmt, lint and type checks.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DENO="$ROOT/node_modules/.bin/deno"
export NO_COLOR=1

say() { printf '== %s\n' "$*"; }

# --- prerequisites -------------------------------------------------------------------------
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v sudo >/dev/null 2>&1 || need+=(sudo)
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v xz >/dev/null 2>&1 || need+=(xz-utils)
command -v bzip2 >/dev/null 2>&1 || need+=(bzip2)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then asroot=(); else asroot=(sudo -n); fi
  export DEBIAN_FRONTEND=noninteractive
  "${asroot[@]}" apt-get update -qq &&
    "${asroot[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    say "WARNING: could not install ${need[*]}; tests that need them will fail"
fi
if [ ! -x "$DENO" ]; then
  say "installing node modules (Deno)"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

passed=0
failed=0
failures=()

check() { # check NAME CMD...: one counted test
  local name=$1
  shift
  say "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
}

if [ ! -x "$DENO" ]; then
  echo "no Deno at $DENO (npm install failed)"
  echo "0 passed, 1 failed"
  exit 1
fi

if [ $# -eq 0 ]; then
  mapfile -t test_sources < <(find tests -name '*.ts' -not -path '*/node_modules/*' | sort)
  check "deno fmt --check" "$DENO" fmt --check
  check "deno lint" "$DENO" lint
  check "deno check main.ts, build.ts, the bench and the tests" "$DENO" check --quiet main.ts build.ts bench/bench.ts "${test_sources[@]}"
  set -- tests/
fi

# --- deno test ------------------------------------------------------------------------------
say "deno test -A --no-lock $*"
out=$(mktemp)
"$DENO" test -A --no-lock "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
# Summary: "ok | 16 passed (10 steps) | 0 failed (14s)" or
#          "FAILED | 15 passed (9 steps) | 1 failed (1 step) (14s)". Top-level tests are counted
# (a failing step fails its test); steps are reported alongside.
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)
rm -f "$out"
if [ -n "$summary" ]; then
  tp=$(sed -E 's/^[A-Za-z]+ \| ([0-9]+) passed.*/\1/' <<<"$summary")
  tf=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
  passed=$((passed + tp))
  failed=$((failed + tf))
  [ "$tf" -gt 0 ] && failures+=("deno test: $tf test(s)")
  if [ "$status" -ne 0 ] && [ "$tf" -eq 0 ]; then
    failed=$((failed + 1))
    failures+=("deno test exited $status")
  fi
else
  failed=$((failed + 1))
  failures+=("deno test (no summary; exit $status)")
fi

[ ${#failures[@]} -gt 0 ] && say "FAILED: $(IFS=';'; echo "${failures[*]}")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
