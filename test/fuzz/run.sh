#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Runs one libFuzzer target for a bounded time over its committed seed
# corpus.  New inputs go to a scratch directory, never into the tree.
# usage: run.sh FUZZER SEED_DIR [SECONDS]
set -euo pipefail
fuzzer=$(realpath "$1") seeds=$(realpath "$2") secs=${3:-${HV_FUZZ_SECONDS:-30}}
work=$(mktemp -d /tmp/hv-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
# -timeout: one input must not take 5 s (a hang, not a slow machine);
# -rss_limit_mb bounds leaks.
"$fuzzer" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 \
	-print_final_stats=1 "$work" "$seeds" 2>&1 | tail -n 25
