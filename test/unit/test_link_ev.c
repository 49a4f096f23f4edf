/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * link_ev.c: frames cut out of an evbuffer (partial header, partial body,
 * two in one buffer, bad lengths, a body over the caller's cap, a tampered
 * frame) and sealed frames round-tripped both ways through a real
 * bufferevent pair on a real libevent loop.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "link.h"
#include "link_ev.h"

static uint8_t hvd_priv[32], hvd_pub[32], ag_priv[32], ag_pub[32];
static uint8_t wire[LINK_FRAME_MAX + 64];
static uint8_t body[LINK_FRAME_MAX];
static uint8_t plain[LINK_FRAME_MAX];

static void
pair(struct link *a, struct link *h)
{
	size_t n = 0, m = 0;

	assert_int_equal(link_init_initiator(a, ag_priv, hvd_pub, 1, wire,
	    sizeof(wire), &n), 0);
	assert_int_equal(link_init_responder(h, hvd_priv), 0);
	assert_int_equal(link_responder_read(h, wire + LINK_PREAMBLE_LEN +
	    LINK_FRAME_HDR, n - LINK_PREAMBLE_LEN - LINK_FRAME_HDR), 0);
	assert_int_equal(link_responder_finish(h, wire, sizeof(wire), &m), 0);
	assert_int_equal(link_initiator_finish(a, wire + LINK_FRAME_HDR,
	    m - LINK_FRAME_HDR), 0);
}

/* A frame of len body bytes, each body byte fill. */
static void
add_frame(struct evbuffer *b, size_t len, uint8_t fill)
{
	uint8_t hdr[LINK_FRAME_HDR];

	link_frame_header(hdr, len);
	assert_int_equal(evbuffer_add(b, hdr, sizeof(hdr)), 0);
	memset(wire, fill, len);
	assert_int_equal(evbuffer_add(b, wire, len), 0);
}

static void
test_partial(void **state)
{
	/* Whatever prefix of a 10-byte frame is buffered, nothing is taken. */
	static const uint8_t frame[] = { 0, 0, 0, 10, 'a', 'b', 'c', 'd', 'e',
	    'f', 'g', 'h', 'i', 'j' };
	struct evbuffer *b = evbuffer_new();
	size_t len = 77;

	(void)state;
	assert_non_null(b);
	for (size_t i = 0; i < sizeof(frame); i++) {
		assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 0);
		assert_int_equal(evbuffer_get_length(b), i);
		assert_int_equal(len, 77);
		assert_int_equal(evbuffer_add(b, frame + i, 1), 0);
	}
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 1);
	assert_int_equal(len, 10);
	assert_memory_equal(body, "abcdefghij", 10);
	assert_int_equal(evbuffer_get_length(b), 0);
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 0);
	evbuffer_free(b);
}

static void
test_two_frames(void **state)
{
	struct evbuffer *b = evbuffer_new();
	size_t len = 0;

	(void)state;
	assert_non_null(b);
	add_frame(b, 3, 'x');
	add_frame(b, LINK_FRAME_MAX, 'y');
	add_frame(b, 1, 'z');
	/* And the header of a fourth, whose body has not come yet. */
	assert_int_equal(evbuffer_add(b, "\0\0\0\5", 4), 0);

	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(body, "xxx", 3);
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 1);
	assert_int_equal(len, LINK_FRAME_MAX);
	assert_int_equal(body[0], 'y');
	assert_int_equal(body[LINK_FRAME_MAX - 1], 'y');
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 1);
	assert_int_equal(len, 1);
	assert_int_equal(body[0], 'z');
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 0);
	assert_int_equal(evbuffer_get_length(b), 4);
	evbuffer_free(b);
}

static void
test_bad_length(void **state)
{
	static const struct {
		const char *name;
		uint8_t hdr[LINK_FRAME_HDR];
		size_t cap;
	} cases[] = {
		{ "zero", { 0, 0, 0, 0 }, LINK_FRAME_MAX },
		{ "max + 1", { 0, 1, 0, 0 }, LINK_FRAME_MAX },
		{ "top bit", { 0x80, 0, 0, 1 }, LINK_FRAME_MAX },
		{ "all ones", { 0xff, 0xff, 0xff, 0xff }, LINK_FRAME_MAX },
		{ "over cap", { 0, 0, 0, 9 }, 8 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct evbuffer *b = evbuffer_new();
		size_t len = 77;

		print_message("case %s\n", cases[i].name);
		assert_non_null(b);
		assert_int_equal(evbuffer_add(b, cases[i].hdr, LINK_FRAME_HDR),
		    0);
		/* Enough bytes behind it that only the length can be wrong. */
		memset(wire, 0, 16);
		assert_int_equal(evbuffer_add(b, wire, 16), 0);
		assert_int_equal(link_ev_frame(b, body, cases[i].cap, &len),
		    -EMSGSIZE);
		assert_int_equal(len, 77);
		assert_int_equal(evbuffer_get_length(b), LINK_FRAME_HDR + 16);
		evbuffer_free(b);
	}
}

/* A sealed frame with one byte of its ciphertext flipped is cut out whole,
 * and link_open refuses it; the untouched frame behind it is intact. */
static void
test_tampered(void **state)
{
	static const char text[] = "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}";
	struct evbuffer *b = evbuffer_new();
	struct link a, h;
	size_t n = 0, len = 0, m = 0;

	(void)state;
	assert_non_null(b);
	pair(&a, &h);
	assert_int_equal(link_seal(&a, (const uint8_t *)text, strlen(text),
	    wire, sizeof(wire), &n), 0);
	wire[LINK_FRAME_HDR + 5] ^= 0x01;
	assert_int_equal(evbuffer_add(b, wire, n), 0);
	assert_int_equal(link_ev_frame(b, body, sizeof(body), &len), 1);
	assert_int_equal(len, n - LINK_FRAME_HDR);
	assert_int_equal(link_open(&h, body, len, plain, sizeof(plain), &m),
	    -EBADMSG);
	assert_int_equal(evbuffer_get_length(b), 0);
	link_dispose(&a);
	link_dispose(&h);
	evbuffer_free(b);
}

/* Refusals queue nothing on the bufferevent. */
static void
test_send_refused(void **state)
{
	struct event_base *base = event_base_new();
	struct bufferevent *bev[2] = { NULL, NULL };
	struct link a, h;
	static char big[LINK_PLAINTEXT_MAX + 1];

	(void)state;
	assert_non_null(base);
	assert_int_equal(bufferevent_pair_new(base, 0, bev), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(link_ev_send(&a, bev[0], "x", 1), -EINVAL);
	pair(&a, &h);
	memset(big, 'b', sizeof(big));
	assert_int_equal(link_ev_send(&a, bev[0], big, sizeof(big)),
	    -EMSGSIZE);
	assert_int_equal(evbuffer_get_length(bufferevent_get_output(bev[0])),
	    0);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev[1])), 0);
	link_dispose(&a);
	link_dispose(&h);
	bufferevent_free(bev[0]);
	bufferevent_free(bev[1]);
	event_base_free(base);
}

#define RT_MSGS 4

/*
 * The agent end sends RT_MSGS messages (one of them the largest a frame
 * carries) in one go; the hvd end, from its read callback, opens each and
 * answers it; the agent end stops the loop once every answer is back.
 */
struct rt_end {
	struct link link;
	struct bufferevent *bev;
	struct event_base *base;
	bool answers;		/* hvd end: reply to each message */
	size_t got, bytes;
	int err;
	char last[64];
};

static void
rt_read_cb(struct bufferevent *bev, void *arg)
{
	struct rt_end *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = 0, n = 0;
	char reply[64];
	int r;

	while ((r = link_ev_frame(in, body, sizeof(body), &len)) == 1) {
		if ((r = link_open(&e->link, body, len, plain, sizeof(plain),
		    &n)) < 0)
			break;
		e->got++;
		e->bytes += n;
		snprintf(e->last, sizeof(e->last), "%.*s",
		    (int)(n < 32 ? n : 32), (const char *)plain);
		if (e->answers) {
			snprintf(reply, sizeof(reply), "reply %zu to %zu bytes",
			    e->got, n);
			if ((r = link_ev_send(&e->link, e->bev, reply,
			    strlen(reply))) < 0)
				break;
		} else if (e->got == RT_MSGS) {
			event_base_loopexit(e->base, NULL);
		}
	}
	if (r < 0) {
		e->err = r;
		event_base_loopexit(e->base, NULL);
	}
}

static void
test_roundtrip_pair(void **state)
{
	static char big[LINK_PLAINTEXT_MAX];
	static const char *small[] = { "{\"a\":1}", "x", "hello, hvd" };
	struct event_base *base = event_base_new();
	struct bufferevent *bev[2] = { NULL, NULL };
	struct rt_end ag = { 0 }, hv = { 0 };
	struct timeval limit = { 5, 0 };
	size_t sent = 0;

	(void)state;
	assert_non_null(base);
	/* Deferred callbacks: every read runs from the loop, not the write. */
	assert_int_equal(bufferevent_pair_new(base, BEV_OPT_DEFER_CALLBACKS,
	    bev), 0);
	pair(&ag.link, &hv.link);
	ag.bev = bev[0];
	hv.bev = bev[1];
	ag.base = hv.base = base;
	hv.answers = true;
	bufferevent_setcb(bev[0], rt_read_cb, NULL, NULL, &ag);
	bufferevent_setcb(bev[1], rt_read_cb, NULL, NULL, &hv);
	assert_int_equal(bufferevent_enable(bev[0], EV_READ | EV_WRITE), 0);
	assert_int_equal(bufferevent_enable(bev[1], EV_READ | EV_WRITE), 0);

	memset(big, 'B', sizeof(big));
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(link_ev_send(&ag.link, bev[0], small[i],
		    strlen(small[i])), 0);
		sent += strlen(small[i]);
		if (i == 1) {
			assert_int_equal(link_ev_send(&ag.link, bev[0], big,
			    sizeof(big)), 0);
			sent += sizeof(big);
		}
	}
	/* Nothing is read before the loop runs. */
	assert_int_equal(hv.got, 0);
	assert_int_equal(event_base_loopexit(base, &limit), 0);
	assert_int_equal(event_base_dispatch(base), 0);

	assert_int_equal(hv.err, 0);
	assert_int_equal(ag.err, 0);
	assert_int_equal(hv.got, RT_MSGS);
	assert_int_equal(hv.bytes, sent);
	assert_string_equal(hv.last, "hello, hvd");
	assert_int_equal(ag.got, RT_MSGS);
	assert_string_equal(ag.last, "reply 4 to 10 bytes");
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev[0])), 0);
	assert_int_equal(evbuffer_get_length(bufferevent_get_input(bev[1])), 0);

	link_dispose(&ag.link);
	link_dispose(&hv.link);
	bufferevent_free(bev[0]);
	bufferevent_free(bev[1]);
	event_base_free(base);
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
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_two_frames),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_send_refused),
		cmocka_unit_test(test_roundtrip_pair),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
