#!/usr/bin/env bash
# Run a set-up step, saying what it is and how long it took: scripts/timed.sh "Training" cmd…
set -uo pipefail
title=$1; shift
printf '\n==> %s\n' "$title"
start=$(date +%s)
"$@"
status=$?
printf '==> %s: %s after %ss\n' "$title" "$([ $status -eq 0 ] && echo done || echo FAILED)" "$(( $(date +%s) - start ))"
exit $status
