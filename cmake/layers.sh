#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# layers.sh LIB... : the static libraries of hvd's layers, bottom first.
# Fails, naming each offence, if an archive references (nm: U) a symbol
# that an archive above it defines: a call up the stack.  Calls go down;
# news goes up through callbacks and operation tables handed down.
set -euo pipefail
libs=("$@")
n=${#libs[@]}
layer() { basename "$1" .a | sed 's/^libhvd_//'; }
defs() { nm -g --defined-only "$1" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u; }
undefs() { nm -g --undefined-only "$1" 2>/dev/null | awk '{print $NF}' | sort -u; }
bad=0
for ((i = 0; i < n; i++)); do
	u=$(undefs "${libs[$i]}")
	for ((j = i + 1; j < n; j++)); do
		up=$(comm -12 <(echo "$u") <(defs "${libs[$j]}"))
		if [ -n "$up" ]; then
			for s in $up; do
				echo "layers: $(layer "${libs[$i]}") calls up into $(layer "${libs[$j]}"): $s" >&2
			done
			bad=1
		fi
	done
done
[ $bad = 0 ] || { echo "layers: a lower layer may reach a higher one only through what it is handed" >&2; exit 1; }
