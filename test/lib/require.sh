# SPDX-License-Identifier: AGPL-3.0-or-later
# What a shell test needs, said once for every test (sourced by regress/,
# netns/ and e2e/ through their lib.sh).
#
#   need_cmd TOOL... [-- WHY]   every TOOL must be on PATH
#   need WHAT                   a capability the test checked itself is missing
#
# Under CI=true a missing tool or capability fails the test, naming it: CI's
# green must mean the test ran.  Elsewhere the test is skipped (exit 77,
# ctest's SKIP_RETURN_CODE) and the reason is written to
# $HV_SKIP_DIR/$HV_TEST_NAME, which test/ctest.sh prints under ctest's own
# summary.  packaging/deps.sh installs every tool a test names here.

hv_missing() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: ${HV_TEST_NAME:-$0}: $* (CI=true: a missing tool or capability is a failure; packaging/deps.sh installs every tool)"
		exit 1
	fi
	echo "SKIP: ${HV_TEST_NAME:-$0}: $*"
	if [ -n "${HV_SKIP_DIR:-}" ] && mkdir -p "$HV_SKIP_DIR" 2>/dev/null; then
		printf '%s\n' "$*" > "$HV_SKIP_DIR/${HV_TEST_NAME:-$(basename "$0")}"
	fi
	exit 77
}

need() { hv_missing "needs $*"; }

need_cmd() {
	local why= c missing=()
	local -a tools=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then shift; why=" ($*)"; break; fi
		tools+=("$1"); shift
	done
	for c in "${tools[@]}"; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	[ ${#missing[@]} -eq 0 ] || hv_missing "needs ${missing[*]}, not on PATH$why"
}
