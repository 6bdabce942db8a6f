#!/usr/bin/env bash
# onevz's test command (README, `npm test`, `deno task test` and .ci/run all call exactly this).
# Installs what the tests need when it is missing (Debian: openssh-server, sudo, rsync,
# xz-utils, bzip2; Deno through npm), then runs fmt, lint and type checks and the Deno tests.
# Each check counts as one test; the last line is always exactly "N passed, N failed".
# With arguments (`bash tests/run.sh tests/unit/spec.test.ts`, `deno task test <file>…`,
# `npm test -- <file>…`) only those test files run, without the fmt, lint and type checks.
# The tests run in a sandbox (tests/sandbox.sh: their own /tmp and, as root, pid namespace);
# the last test checks that they left nothing behind: no process, nothing in /tmp, no
# account, group, sudoers.d file or /usr/sbin/vz* entry.
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
# What the tests may not change on this machine: accounts, groups, sudoers.d, /usr/sbin/vz*
# (the test bed's driver account and its sudo rules live in the bed's namespaces only).
machine_state() {
  getent passwd | cut -d: -f1 | sort
  echo --
  getent group | cut -d: -f1 | sort
  echo --
  ls -A /etc/sudoers.d 2>/dev/null
  echo --
  ls -d /usr/sbin/vz* 2>/dev/null
  true
}
# True when a process this run was started by holds /tmp/onevz-global.lock (`flock
# /tmp/onevz-global.lock bash tests/run.sh`): then no such run can be half done, and taking
# the lock again would wait for ourselves. /proc/locks: "N: FLOCK ADVISORY WRITE <pid> <dev>:<ino> …".
holds_global_lock() {
  local ino holders pid
  ino=$(stat -c %i /tmp/onevz-global.lock 2>/dev/null) || return 1
  holders=$(awk -v ino="$ino" '$2 == "FLOCK" { n = split($6, f, ":"); if (f[n] == ino) print $5 }' /proc/locks 2>/dev/null)
  [ -n "$holders" ] || return 1
  pid=$$
  while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do
    grep -qx "$pid" <<<"$holders" && return 0
    pid=$(awk '/^PPid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  done
  return 1
}
# Where several checkouts share a machine, tests that still change it (older branches) run
# under /tmp/onevz-global.lock: take it for each look, so that no such run is half done.
# (Inside another run's sandbox, `deno task test <file>` from tests/tasks.test.ts, the outer run
# holds no lock and checks the machine itself.)
machine_state_now() {
  if [ -e /tmp/onevz-global.lock ] && [ -z "${ONEVZ_SUITE_SANDBOX-}" ] && ! holds_global_lock; then
    flock -w 1800 /tmp/onevz-global.lock bash -c "$(declare -f machine_state); machine_state"
  else
    machine_state
  fi
}
state_before=$(machine_state_now)
# The run's own /tmp and runtime directory (tests/sandbox.sh); outside /tmp, which it hides.
sandbox=$(mktemp -d /var/tmp/onevz-suite.XXXXXX)
trap 'rm -rf "$sandbox"' EXIT
mkdir -m 1777 "$sandbox/tmp"
mkdir -m 0700 "$sandbox/run"
in_sandbox=(bash tests/sandbox.sh "$sandbox")
if [ "$(id -u)" = 0 ] && unshare -m -p -f --mount-proc true 2>/dev/null; then
  in_sandbox=(unshare -m -p -f --mount-proc --propagation private "${in_sandbox[@]}")
fi
say "deno test -A --no-lock $*"
out=$(mktemp)
"${in_sandbox[@]}" "$DENO" test -A --no-lock "$@" 2>&1 | tee "$out"
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

# One more test: the run left nothing behind (no process, nothing in /tmp, no account, group,
# sudoers file or /usr/sbin entry).
say "the tests leave nothing behind"
left=$(cat "$sandbox/left" 2>/dev/null || echo "tests/sandbox.sh wrote no report")
rm -rf "$sandbox"
state_after=$(machine_state_now)
changed=$(diff <(echo "$state_before") <(echo "$state_after") | sed -n 's/^> /added: /p')
# An entry that went away was someone else's (the tests only remove what they made).
diff <(echo "$state_before") <(echo "$state_after") | sed -n 's/^< /  note: removed meanwhile by another process: /p'
if [ -z "$left$changed" ]; then
  passed=$((passed + 1))
else
  printf '%s\n' "$left" "$changed" | sed '/^$/d; s/^/  left behind: /'
  failed=$((failed + 1))
  failures+=("the tests leave nothing behind")
fi

[ ${#failures[@]} -gt 0 ] && say "FAILED: $(IFS=';'; echo "${failures[*]}")"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
