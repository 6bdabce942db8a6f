#!/bin/bash
# onevz hook: apply the vzfirewall rules of this node's containers (FIREWALL= in their configs).
# oned.conf: VM_HOOK = [ name="vzfirewall", on="RUNNING", remote="yes",
#                        command="<SCRIPTS_REMOTE_DIR>/hooks/vzfirewall.sh", arguments="" ]
# one_hm runs it on the VM's node as `ssh -n <node> '<command> -'`; arguments are ignored.
# `vzfirewall -a` exits 255 with "Nothing is changed." when the rules are already in place:
# that is success. Any other failure is passed through (never as 42, which the ssh drivers
# reserve for "script missing").
PATH=$PATH:/usr/sbin:/sbin
fw=$(command -v vzfirewall) || {
  echo "vzfirewall.sh: vzfirewall not found in PATH or /usr/sbin" >&2
  exit 1
}
if [ "$(id -u)" = 0 ]; then
  out=$("$fw" -a 2>&1)
else
  out=$(sudo -n "$fw" -a 2>&1)
fi
code=$?
[ -n "$out" ] && printf '%s\n' "$out"
if [ $code = 255 ] && printf '%s\n' "$out" | grep -q '^Nothing is changed\.'; then
  exit 0
fi
[ $code = 42 ] && code=1
exit $code
