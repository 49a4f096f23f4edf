/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: everything hvd decodes from a REST request — network
 * bodies (create and patch), token-request bodies, migrate bodies, the
 * bearer token itself, and console input bodies.  The first byte picks the
 * decoder so one corpus covers all (0xf0 and up: console input, so the
 * older seeds keep their decoder).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	struct api_network net;
	struct api_token_request tok;
	struct api_migrate_request mig;
	char id[AUTH_ID_HEX + 1];
	uint8_t secret[AUTH_SECRET_LEN];
	uint8_t input[CONSOLE_INPUT_MAX];
	size_t ilen = 0;
	char err[256];
	int r = 0;

	if (size == 0)
		return 0;
	if (data[0] >= 0xf0) {
		r = console_input_decode(body, size - 1, input, &ilen, err,
		    sizeof(err));
		if (r == 0 && (ilen == 0 || ilen > CONSOLE_INPUT_MAX))
			abort();
		if (r < 0 && strlen(err) == 0)
			abort();
		return 0;
	}
	switch (data[0] % 5) {
	case 0:
		r = api_network_decode(body, size - 1, API_DECODE_CREATE, &net,
		    err, sizeof(err));
		/* Accepted means valid: the invariants the database relies on. */
		if (r == 0 && (!api_name_valid(net.name) || net.vni < API_VNI_MIN ||
		    net.vni > API_VNI_MAX))
			abort();
		break;
	case 1:
		r = api_network_decode(body, size - 1, API_DECODE_PATCH, &net,
		    err, sizeof(err));
		if (r == 0 && net.present == 0)
			abort();
		break;
	case 2:
		r = api_token_request_decode(body, size - 1, &tok, err,
		    sizeof(err));
		if (r == 0 && tok.role != API_ROLE_READ && tok.role != API_ROLE_ADMIN)
			abort();
		break;
	case 3:
		r = auth_token_parse(body, size - 1, id, secret);
		if (r == 0 && strlen(id) != AUTH_ID_HEX)
			abort();
		break;
	case 4:
		r = api_migrate_request_decode(body, size - 1, &mig, err,
		    sizeof(err));
		if (r == 0 && mig.to[0] != '\0' && !api_name_valid(mig.to))
			abort();
		break;
	}
	if (r < 0 && data[0] % 5 != 3 && strlen(err) == 0)
		abort();	/* a rejection must say why */
	return 0;
}
