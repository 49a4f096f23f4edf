# SPDX-License-Identifier: AGPL-3.0-or-later
# Compiler flags shared by every target: the warning set from CONVENTIONS.md,
# sanitizers and fuzzing as options, _FORTIFY_SOURCE in optimised builds.
add_compile_definitions(_GNU_SOURCE HV_VERSION="${PROJECT_VERSION}")
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes
	-Wmissing-prototypes -Wformat=2 -Wvla -fno-common)
if(HV_WERROR)
	add_compile_options(-Werror)
endif()

if(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo)$")
	add_compile_options(-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
		-fstack-protector-strong)
	add_link_options(-Wl,-z,relro,-z,now)
endif()

if(HV_SANITIZE)
	add_compile_options(-fsanitize=address,undefined
		-fno-sanitize-recover=undefined -fno-omit-frame-pointer)
	add_link_options(-fsanitize=address,undefined)
endif()

if(HV_FUZZ AND NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
	message(FATAL_ERROR "HV_FUZZ needs clang (libFuzzer); use the 'fuzz' or 'asan' preset")
endif()

# Coverage instrumentation for libFuzzer in every library the targets link.
if(HV_FUZZ)
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()
