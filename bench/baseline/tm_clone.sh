#!/bin/sh
# Baseline for bench/bench.ts: OpenNebula 2.2.1's tm_ssh/tm_clone.sh without tm_common.sh:
# `ssh mkdir -p`, a full `scp` of the image, `ssh chmod a+rw`, every time. The source is given
# as a front-end path, so scp copies straight from here (the stock `scp FE:src H:dst` first
# hops through ssh to the front-end itself, which would only make the baseline slower).
# SSH_CONFIG names the ssh client configuration to use.
SRC=$1
DST=$2
DST_HOST=${DST%%:*}
DST_PATH=${DST#*:}
DST_DIR=$(dirname "$DST_PATH")
ssh -F "$SSH_CONFIG" "$DST_HOST" mkdir -p "$DST_DIR" || exit 1
scp -q -F "$SSH_CONFIG" "$SRC" "$DST" || exit 1
ssh -F "$SSH_CONFIG" "$DST_HOST" chmod a+rw "$DST_PATH" || exit 1
