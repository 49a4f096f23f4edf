/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: hvd.conf parsing and validation over arbitrary bytes.
 * Any crash, leak, UB or an error message without "FILE:" is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hvd_config *conf = config_new();
	char err[512];

	if (conf == NULL)
		return 0;
	err[0] = '\0';
	if (config_parse(conf, (const char *)data, size, "f", err,
	    sizeof(err)) < 0 ||
	    config_validate(conf, "f", err, sizeof(err)) < 0) {
		/* Every rejection must name the file: operators grep for it. */
		if (strncmp(err, "f:", 2) != 0)
			abort();
	}
	config_free(conf);
	return 0;
}
