/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Range-checked number parsing for every text input (config, URLs, JSON
 * strings).  Strict: the whole string must be the number, no sign where none
 * is allowed, no leading or trailing space, no empty string.
 *
 * All return 0 on success or -EINVAL (not a number) / -ERANGE (outside
 * [min, max]); *out is written only on success.
 */
#ifndef HV_NUMPARSE_H
#define HV_NUMPARSE_H

#include <stdint.h>

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Octal file mode such as "0660"; at most 0777. */
int parse_mode(const char *s, unsigned *out);

#endif
