# SPDX-License-Identifier: AGPL-3.0-or-later
# hv_shell_test(NAME name SCRIPT file LABEL label TIMEOUT seconds [ENV k=v...])
#
# One rule for every shell test: it runs under bash, exit 77 means skipped,
# and it learns its own name and where to write why it skipped
# (test/lib/require.sh; test/ctest.sh prints the reasons).  CI is passed
# through so that, under CI=true, a missing tool fails instead.
function(hv_shell_test)
	cmake_parse_arguments(T "" "NAME;SCRIPT;LABEL;TIMEOUT" "ENV" ${ARGN})
	add_test(NAME ${T_NAME} COMMAND bash ${T_SCRIPT})
	set_tests_properties(${T_NAME} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
		SKIP_RETURN_CODE 77
		ENVIRONMENT "HV_TEST_NAME=${T_NAME};HV_SKIP_DIR=${CMAKE_BINARY_DIR}/test-skips;${T_ENV}")
endfunction()
