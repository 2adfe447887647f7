#!/bin/sh
# run-fuzz.sh FUZZER SEED_DIR [libFuzzer args...]: run a libFuzzer target for a short,
# seeded time with a scratch corpus, so new inputs and crash artifacts never land in the
# source tree. Exit status is the fuzzer's (non-zero on a crash, leak or timeout).
set -u
fuzzer=$1
seeds=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/outbox-fuzz-XXXXXX")
"$fuzzer" -artifact_prefix="$work/" "$@" "$work" "$seeds"
rc=$?
if [ $rc -ne 0 ]; then
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [ -f "$f" ] && { echo "artifact: $(basename "$f") (base64):"; base64 -w0 "$f"; echo; }
  done
fi
rm -rf "$work"
exit $rc
