/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent link's channel and messages: framing and preamble tables, a
 * full handshake through link.c, the rekey policy at the 65,536-message
 * boundary, the message envelope table, and the schemas.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "link.h"
#include "msg.h"

static uint8_t hvd_priv[32], hvd_pub[32], ag_priv[32], ag_pub[32];
static uint8_t wire[LINK_FRAME_MAX + 64];

static void
pair(struct link *a, struct link *h, uint64_t ts)
{
	size_t n = 0, m = 0;

	assert_int_equal(link_init_initiator(a, ag_priv, hvd_pub, ts, wire,
	    sizeof(wire), &n), 0);
	assert_int_equal(n, LINK_PREAMBLE_LEN + LINK_FRAME_HDR + LINK_MSG1_LEN);
	assert_int_equal(link_init_responder(h, hvd_priv), 0);
	assert_int_equal(link_responder_read(h, wire + LINK_PREAMBLE_LEN +
	    LINK_FRAME_HDR, n - LINK_PREAMBLE_LEN - LINK_FRAME_HDR), 0);
	assert_memory_equal(h->remote_static, ag_pub, 32);
	assert_int_equal(h->remote_timestamp, ts);
	assert_int_equal(link_responder_finish(h, wire, sizeof(wire), &m), 0);
	assert_int_equal(link_initiator_finish(a, wire + LINK_FRAME_HDR,
	    m - LINK_FRAME_HDR), 0);
}

static void
roundtrip(struct link *from, struct link *to, const char *text)
{
	uint8_t plain[256];
	size_t n = 0, m = 0, blen = 0;

	assert_int_equal(link_seal(from, (const uint8_t *)text, strlen(text),
	    wire, sizeof(wire), &n), 0);
	assert_int_equal(link_frame_peek(wire, n, &blen), 0);
	assert_int_equal(blen + LINK_FRAME_HDR, n);
	assert_int_equal(link_open(to, wire + LINK_FRAME_HDR, blen, plain,
	    sizeof(plain), &m), 0);
	assert_int_equal(m, strlen(text));
	assert_memory_equal(plain, text, m);
}

static void
test_frame_peek(void **state)
{
	static const struct {
		uint8_t b[6];
		size_t len;
		int want;
		size_t body;
	} cases[] = {
		{ { 0, 0, 0 }, 3, -EAGAIN, 0 },
		{ { 0, 0, 0, 0 }, 4, -EMSGSIZE, 0 },
		{ { 0, 0, 0, 2, 'h' }, 5, -EAGAIN, 0 },
		{ { 0, 0, 0, 2, 'h', 'i' }, 6, 0, 2 },
		{ { 0, 0, 0xff, 0xff }, 4, -EAGAIN, 0 },
		{ { 0, 1, 0, 0 }, 4, -EMSGSIZE, 0 },
		{ { 0x80, 0, 0, 1 }, 4, -EMSGSIZE, 0 },
	};
	size_t blen;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		blen = 0;
		if (link_frame_peek(cases[i].b, cases[i].len, &blen) != cases[i].want)
			fail_msg("case %zu", i);
		if (cases[i].want == 0)
			assert_int_equal(blen, cases[i].body);
	}
}

static void
test_preamble(void **state)
{
	uint8_t p[LINK_PREAMBLE_LEN];
	unsigned major, minor;

	(void)state;
	link_preamble(p);
	assert_memory_equal(p, "HVAG\x01\x00\x00\x00", 8);
	assert_int_equal(link_preamble_check(p, &major, &minor), 0);
	p[4] = 0;
	assert_int_equal(link_preamble_check(p, &major, &minor),
	    -EPROTONOSUPPORT);
	assert_int_equal(major, 0);
	p[4] = 1;
	p[7] = 1;
	assert_int_equal(link_preamble_check(p, &major, &minor), -EBADMSG);
	memcpy(p, "GET ", 4);
	assert_int_equal(link_preamble_check(p, &major, &minor), -EBADMSG);
}

static void
test_session_both_ways(void **state)
{
	struct link a, h;

	(void)state;
	pair(&a, &h, 12345);
	roundtrip(&a, &h, "{\"type\":\"notify\"}");
	roundtrip(&h, &a, "reply");
	roundtrip(&a, &h, "again");
	link_dispose(&a);
	link_dispose(&h);
	assert_int_equal(a.state, LINK_NONE);
}

static void
test_wrong_hvd_key_fails(void **state)
{
	uint8_t other_priv[32], other_pub[32];
	struct link a, h;
	size_t n = 0;

	(void)state;
	crypto_box_keypair(other_pub, other_priv);
	assert_int_equal(link_init_initiator(&a, ag_priv, other_pub, 1, wire,
	    sizeof(wire), &n), 0);
	assert_int_equal(link_init_responder(&h, hvd_priv), 0);
	assert_int_equal(link_responder_read(&h, wire + LINK_PREAMBLE_LEN +
	    LINK_FRAME_HDR, n - LINK_PREAMBLE_LEN - LINK_FRAME_HDR), -EBADMSG);
	link_dispose(&a);
	link_dispose(&h);
}

static void
test_rekey_boundary(void **state)
{
	struct link a, h;
	uint8_t key_before[32];

	(void)state;
	pair(&a, &h, 1);
	/* Jump both counters to just before the boundary (no 65k messages). */
	a.tx.n = h.rx.n = LINK_REKEY_EVERY - 1;
	roundtrip(&a, &h, "last before rekey");
	memcpy(key_before, a.tx.k, 32);
	roundtrip(&a, &h, "first after rekey");
	assert_memory_not_equal(key_before, a.tx.k, 32);
	assert_memory_equal(a.tx.k, h.rx.k, 32);
	roundtrip(&a, &h, "and on");
	/* A receiver that failed to rekey cannot read the sender any more. */
	a.tx.n = LINK_REKEY_EVERY * 2 - 1;
	h.rx.n = LINK_REKEY_EVERY * 2 - 1;
	roundtrip(&a, &h, "x");
	link_dispose(&a);
	link_dispose(&h);
}

static void
test_transport_rejects(void **state)
{
	struct link a, h;
	uint8_t plain[64], first[64];
	size_t n = 0, m = 0, flen;

	(void)state;
	pair(&a, &h, 1);
	assert_int_equal(link_seal(&a, (const uint8_t *)"one", 3, wire,
	    sizeof(wire), &n), 0);
	memcpy(first, wire, n);
	flen = n;
	assert_int_equal(link_open(&h, first + 4, flen - 4, plain, sizeof(plain),
	    &m), 0);
	/* Replay of the same frame. */
	assert_int_equal(link_open(&h, first + 4, flen - 4, plain, sizeof(plain),
	    &m), -EBADMSG);
	/* Tampered frame. */
	assert_int_equal(link_seal(&a, (const uint8_t *)"two", 3, wire,
	    sizeof(wire), &n), 0);
	wire[n - 1] ^= 1;
	assert_int_equal(link_open(&h, wire + 4, n - 4, plain, sizeof(plain), &m),
	    -EBADMSG);
	/* Shorter than a tag. */
	assert_int_equal(link_open(&h, wire + 4, 3, plain, sizeof(plain), &m),
	    -EBADMSG);
	/* Oversize plaintext. */
	assert_int_equal(link_seal(&a, wire, LINK_PLAINTEXT_MAX + 1, wire,
	    sizeof(wire), &n), -EMSGSIZE);
	link_dispose(&a);
	link_dispose(&h);
}

struct msg_case {
	const char *text;
	const char *error;
};

static const struct msg_case msg_cases[] = {
	{ "{\"type\":\"request\",\"id\":1,\"method\":\"ping\",\"params\":{}}", NULL },
	{ "{\"type\":\"notify\",\"method\":\"telemetry\",\"params\":{}}", NULL },
	{ "{\"type\":\"reply\",\"id\":9,\"result\":{}}", NULL },
	{ "{\"type\":\"reply\",\"id\":9,\"error\":{\"code\":\"failed\",\"message\":\"x\"}}", NULL },
	{ "[]", "message must be a JSON object" },
	{ "{\"type\":\"shout\"}", "unknown type 'shout'" },
	{ "{\"id\":1}", "missing or non-string 'type'" },
	{ "{\"type\":\"request\",\"id\":0,\"method\":\"ping\",\"params\":{}}", "'id' must be an integer in 1..2^53-1" },
	{ "{\"type\":\"request\",\"id\":9007199254740992,\"method\":\"ping\",\"params\":{}}", "'id' must be an integer in 1..2^53-1" },
	{ "{\"type\":\"request\",\"id\":1,\"method\":\"PING\",\"params\":{}}", "'method' must be a string of a-z, '.' and '_', at most 31 bytes" },
	{ "{\"type\":\"request\",\"id\":1,\"method\":\"ping\",\"params\":[]}", "'params' must be an object" },
	{ "{\"type\":\"request\",\"id\":1,\"method\":\"ping\",\"params\":{},\"extra\":1}", "unknown field 'extra' in a request" },
	{ "{\"type\":\"notify\",\"id\":1,\"method\":\"x\",\"params\":{}}", "unknown field 'id' in a notify" },
	{ "{\"type\":\"reply\",\"id\":1}", "a reply needs exactly one of 'result' and 'error'" },
	{ "{\"type\":\"reply\",\"id\":1,\"result\":{},\"error\":{}}", "a reply needs exactly one of 'result' and 'error'" },
	{ "{\"type\":\"reply\",\"id\":1,\"error\":{\"code\":\"x\"}}", "'error' must be {\"code\": string <= 32, \"message\": string <= 512}" },
	{ "{\"type\":\"reply\",\"type\":\"reply\"}", "invalid JSON at byte 22: duplicate object key near '\"type\"'" },
};

static void
test_msg_decode_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(msg_cases) / sizeof(*msg_cases); i++) {
		struct msg m;
		char err[256] = "";
		int r = msg_decode(msg_cases[i].text, strlen(msg_cases[i].text),
		    &m, err, sizeof(err));

		if (msg_cases[i].error == NULL) {
			if (r != 0)
				fail_msg("case %zu rejected: %s", i, err);
			msg_dispose(&m);
		} else {
			if (r != -EINVAL)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err, msg_cases[i].error);
		}
	}
}

static void
test_schemas(void **state)
{
	static const struct {
		enum msg_schema s;
		const char *json;
		const char *error;
	} cases[] = {
		{ MSG_S_CONFIG_APPLY, "{\"telemetry_ms\":1000}", NULL },
		{ MSG_S_CONFIG_APPLY, "{}", "params: missing field 'telemetry_ms'" },
		{ MSG_S_CONFIG_APPLY, "{\"telemetry_ms\":\"1\"}", "params.telemetry_ms: must be an integer" },
		{ MSG_S_EMPTY, "{\"x\":1}", "params: unknown field 'x'" },
		{ MSG_S_HELLO_RESULT, "{\"version\":1,\"host\":\"h\",\"heartbeat_ms\":-1}", "params.heartbeat_ms: must not be negative" },
		{ MSG_S_TELEMETRY, "{\"cpu\":{\"percent\":null,\"count\":1},\"load\":[1,2,3],"
		    "\"memory\":{\"total_bytes\":1,\"available_bytes\":1,\"used_bytes\":0},"
		    "\"nics\":[],\"disks\":[],\"temps\":[],\"xen\":null}", NULL },
		{ MSG_S_TELEMETRY, "{\"cpu\":{\"percent\":null,\"count\":1},\"load\":[1,2,3,4],"
		    "\"memory\":{\"total_bytes\":1,\"available_bytes\":1,\"used_bytes\":0},"
		    "\"nics\":[],\"disks\":[],\"temps\":[],\"xen\":null}", "params.load: more than 3 elements" },
		{ MSG_S_TELEMETRY, "{\"cpu\":{\"percent\":null,\"count\":1},\"load\":[1,2,3],"
		    "\"memory\":{\"total_bytes\":1,\"available_bytes\":1,\"used_bytes\":0},"
		    "\"nics\":[{\"name\":\"eth0\"}],\"disks\":[],\"temps\":[],\"xen\":null}",
		    "params.nics[0]: missing field 'rx_bytes'" },
		{ MSG_S_TELEMETRY, "{\"cpu\":{\"percent\":null,\"count\":1},\"load\":[1,2,3],"
		    "\"memory\":{\"total_bytes\":1,\"available_bytes\":1,\"used_bytes\":0},"
		    "\"nics\":[],\"disks\":[],\"temps\":[{\"sensor\":\"a-very-long-sensor-name-"
		    "that-goes-on-and-on-and-on-past-sixty-four-bytes\",\"label\":null,"
		    "\"celsius\":40}],\"xen\":null}", "params.temps[0].sensor: longer than 64 bytes" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		json_t *v = json_loads(cases[i].json, 0, NULL);
		char err[256] = "";
		int r;

		assert_non_null(v);
		r = msg_check(cases[i].s, v, err, sizeof(err));
		json_decref(v);
		if (cases[i].error == NULL && r != 0)
			fail_msg("schema case %zu rejected: %s", i, err);
		if (cases[i].error) {
			if (r == 0)
				fail_msg("schema case %zu accepted", i);
			assert_string_equal(err, cases[i].error);
		}
	}
}

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	crypto_box_keypair(hvd_pub, hvd_priv);
	crypto_box_keypair(ag_pub, ag_priv);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_peek),
		cmocka_unit_test(test_preamble),
		cmocka_unit_test(test_session_both_ways),
		cmocka_unit_test(test_wrong_hvd_key_fails),
		cmocka_unit_test(test_rekey_boundary),
		cmocka_unit_test(test_transport_rejects),
		cmocka_unit_test(test_msg_decode_table),
		cmocka_unit_test(test_schemas),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
