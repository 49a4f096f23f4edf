#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# ctest, then the reason for every skipped test under its summary.
#
#   bash test/ctest.sh --preset asan [more ctest arguments]
#
# ctest prints "Skipped" without the test's words; each test that skips
# writes its reason to <build>/test-skips/<test name> (test/lib/require.sh),
# and this prints them.  The exit status is ctest's.
set -uo pipefail
cd "$(dirname "$0")/.."
preset=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	case ${args[$i]} in
	--preset) preset=${args[$((i + 1))]:-} ;;
	--preset=*) preset=${args[$i]#--preset=} ;;
	esac
done
skips=build/${preset:-asan}/test-skips
rm -rf "$skips"
ctest "$@"
rc=$?
if [ -d "$skips" ] && [ -n "$(ls -A "$skips")" ]; then
	echo
	echo "Skipped tests, and why:"
	for f in "$skips"/*; do
		printf '\t%s: %s\n' "$(basename "$f")" "$(cat "$f")"
	done
fi
exit $rc
