#!/usr/bin/env bash
# tests/sandbox.sh DIR CMD…: runs CMD as tests/run.sh's test run, then writes what it left
# behind to DIR/left (one line each; empty when nothing).
#
# As root, tests/run.sh starts this as PID 1 of its own pid and mount namespaces
# (unshare -m -p -f --mount-proc): /tmp is DIR/tmp here, the per-user runtime directory
# ($XDG_RUNTIME_DIR) is DIR/run. So whatever the tests leave in /tmp is found in DIR/tmp,
# every process they leave running is still in this pid namespace when CMD has returned
# (the kernel ends them with it), and concurrent runs on one machine never meet in /tmp.
# Without namespaces (not root), TMPDIR=DIR/tmp is all that is checked.
set -u
dir=$1
shift
# A checkout under /tmp (a clone made there) stays where it is inside the run's own /tmp: its
# first component there is the checkout's, not something the tests left.
root=$(cd "$(dirname "$0")/.." && pwd -P)
kept=""
if [ "$$" = 1 ]; then
  case "$root/" in
  /tmp/*)
    inside=${root#/tmp/}
    kept=${inside%%/*}
    mkdir -p "$dir/tmp/$inside" && mount --bind "$root" "$dir/tmp/$inside" || exit 97
    ;;
  esac
  mount --rbind "$dir/tmp" /tmp || exit 97
  export TMPDIR=/tmp
else
  export TMPDIR=$dir/tmp
fi
export XDG_RUNTIME_DIR=$dir/run ONEVZ_SUITE_SANDBOX=$dir

"$@"
status=$?

left=()
if [ "$$" = 1 ]; then
  # Processes still running (not this shell, not zombies it has yet to reap). A process that
  # is ending (an sshd killed by the last test, an ssh master whose server went away) is given
  # until it has gone; one still here after that was left behind.
  for _ in $(seq 50); do
    left=()
    for d in /proc/[0-9]*; do
      pid=${d#/proc/}
      [ "$pid" = 1 ] && continue
      stat=""
      read -r stat <"$d/stat" 2>/dev/null || continue
      rest=${stat##*) }
      [ "${rest%% *}" = Z ] && continue
      args=""
      while IFS= read -r -d '' a; do args+="$a "; done <"$d/cmdline" 2>/dev/null
      [ -n "$args" ] && left+=("process $pid: ${args% }")
    done
    [ ${#left[@]} -eq 0 ] && break
    sleep 0.1
  done
fi
while IFS= read -r -d '' f; do
  [ -n "$kept" ] && [ "$f" = "$TMPDIR/$kept" ] && continue
  left+=("file in /tmp: ${f#"$TMPDIR"/}")
done < <(find "$TMPDIR" -mindepth 1 -maxdepth 1 -print0)
# Sockets left in the runtime directory: an ssh master that outlived its test.
while IFS= read -r -d '' f; do left+=("socket: ${f#"$dir"/}"); done \
  < <(find "$XDG_RUNTIME_DIR" -type s -print0)
printf '%s\n' "${left[@]}" >"$dir/left"
exit $status
