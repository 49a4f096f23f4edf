/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: everything decoded after the handshake, i.e. message
 * JSON (msg_decode) and every method schema (msg_check), plus hv-agent's
 * own config parser.  A decoded message must satisfy its invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_link.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_conf conf;
	struct msg m;
	char err[512];

	if (size > 0 && data[0] == '#') {
		agent_conf_defaults(&conf);
		if (agent_conf_parse(&conf, (const char *)data, size, "f", err,
		    sizeof(err)) == 0 && (conf.hvd_port == 0 || conf.host[0] == 0))
			abort();
		return 0;
	}
	if (msg_decode((const char *)data, size, &m, err, sizeof(err)) < 0)
		return 0;
	if (m.type == MSG_REPLY && (m.result == NULL) == (m.error == NULL))
		abort();
	if (m.type != MSG_NOTIFY && (m.id == 0 || m.id > MSG_ID_MAX))
		abort();
	if (m.type != MSG_REPLY && (m.params == NULL || m.method[0] == '\0'))
		abort();
	for (int s = MSG_S_HELLO; s < MSG_S_COUNT; s++) {
		const json_t *v = m.params ? m.params : m.result;

		if (v && msg_check((enum msg_schema)s, v, err, sizeof(err)) < 0 &&
		    err[0] == '\0')
			abort();
	}
	msg_dispose(&m);
	return 0;
}
