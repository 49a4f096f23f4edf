/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test_migrate_lz4.c: the migration stream's DATA_LZ4 frames (PROTOCOL.md
 * 11.4): agent/migrate_lz4.c's two rules on their own, then migrate_io.c
 * relaying a pumped stream over loopback TCP, both ends on one event_base.
 *
 * - pack/unpack, table-driven: what is worth compressing (below 7/8), and
 *   every hostile block the decoder must refuse, into a heap buffer of
 *   exactly 65536 bytes so ASan sees a byte written past it;
 * - a compressible stream (zero and repeated pages) arrives byte-exact in
 *   far fewer wire bytes, and mig_io_tap() shows the source every raw byte
 *   in order; a random one goes as plain DATA; a target whose
 *   READY lacks the flag gets plain DATA only; both ends count the same
 *   raw and wire bytes;
 * - a source written here from the spec (a raw TCP client holding its own
 *   struct migchan) sends what a real source never does: DATA_LZ4 before
 *   READY or to a target that did not offer it, a corrupt block, one that
 *   decodes past 65536 bytes or to nothing, an empty one.  Each closes the
 *   connection (-EBADMSG or -EPROTO) with nothing of it on the pump fd.
 *
 * Every test ends by running the loop until no event is left, so an io
 * that never frees itself fails here and a leak fails under ASan.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <lz4.h>
#include <sodium.h>

#include "log.h"
#include "migchan.h"
#include "migrate_io.h"
#include "migrate_lz4.h"

#define STREAM_LEN	(8u * 1024 * 1024)
#define PAGE		4096
#define TAG_MESSAGE	crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
/* The least a stream of N bytes costs as plain DATA frames. */
#define PLAIN_MIN(n)	((n) + ((n) + MIGCHAN_PAYLOAD_MAX - 1) / \
    MIGCHAN_PAYLOAD_MAX * MIGCHAN_OVERHEAD)

static struct event_base *base;
static uint8_t i_pk[32], i_sk[32], r_pk[32], r_sk[32], key[32];
static const uint8_t caps_lz4[] = { MIGCHAN_CAP_LZ4 };

/* ---- loop ---- */

static bool timed_out;

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
}

#define RUN_UNTIL(cond, ms) do {					\
	struct event *dl_ = evtimer_new(base, deadline_cb, NULL);	\
	struct timeval tv_ = { (ms) / 1000, ((ms) % 1000) * 1000 };	\
									\
	assert_non_null(dl_);						\
	timed_out = false;						\
	assert_int_equal(evtimer_add(dl_, &tv_), 0);			\
	while (!(cond) && !timed_out)					\
		if (event_base_loop(base, EVLOOP_ONCE) < 0)		\
			break;						\
	event_free(dl_);						\
	if (!(cond))							\
		fail_msg("timed out waiting for %s", #cond);		\
} while (0)

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	return base == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct event *dl = evtimer_new(base, deadline_cb, NULL);
	struct timeval tv = { 3, 0 };
	int loop = 0;

	(void)state;
	timed_out = false;
	evtimer_add(dl, &tv);
	while (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) > 1 &&
	    !timed_out && (loop = event_base_loop(base, EVLOOP_ONCE)) >= 0)
		;
	event_free(dl);
	if (loop < 0)
		return -1;
	if (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) > 0) {
		print_error("events left on the loop after the test\n");
		return -1;
	}
	event_base_free(base);
	base = NULL;
	return 0;
}

/* ---- stream contents ---- */

/*
 * A guest's memory, page by page: RANDOM_PCT percent random pages,
 * REPEAT_PCT percent one page of 64-byte records again, the rest zero.
 */
static void
fill_pages(uint8_t *p, size_t len, unsigned random_pct, unsigned repeat_pct)
{
	uint8_t rec[64];

	randombytes_buf(rec, sizeof(rec));
	memset(p, 0, len);
	for (size_t off = 0, k = 0; off < len; off += PAGE, k++) {
		unsigned h = (unsigned)((k * 2654435761u) % 100);
		size_t n = len - off < PAGE ? len - off : PAGE;

		if (h < random_pct)
			randombytes_buf(p + off, n);
		else if (h < random_pct + repeat_pct)
			for (size_t i = 0; i < n; i++)
				p[off + i] = rec[i % sizeof(rec)];
	}
}

/* A fifth of what is not random repeats; the rest is zero. */
static void
fill_guest(uint8_t *p, size_t len, unsigned random_pct)
{
	fill_pages(p, len, random_pct, 20);
}

/* ---- 1. the two rules, as pure functions ---- */

static void
test_pack(void **state)
{
	static const struct {
		const char *what;
		size_t len;
		unsigned random_pct, repeat_pct;	/* fill_pages() */
		bool packs;
	} cases[] = {
		{ "a chunk of zero pages", MIGCHAN_PAYLOAD_MAX, 0, 0, true },
		{ "zero and repeated pages", MIGCHAN_PAYLOAD_MAX, 0, 50, true },
		{ "a tenth random", MIGCHAN_PAYLOAD_MAX, 10, 20, true },
		{ "one zero page", PAGE, 0, 0, true },
		{ "a page of random bytes", PAGE, 100, 0, false },
		{ "a chunk of random bytes", MIGCHAN_PAYLOAD_MAX, 100, 0, false },
		{ "one byte", 1, 0, 0, false },
		{ "eight zero bytes (LZ4's block is 9)", 8, 0, 0, false },
	};
	uint8_t *src = malloc(MIGCHAN_PAYLOAD_MAX);
	uint8_t *dst = malloc(MIGCHAN_PAYLOAD_MAX);
	uint8_t *out = malloc(MIGCHAN_PAYLOAD_MAX);
	size_t n;
	ssize_t m;

	(void)state;
	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(out);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fill_pages(src, cases[i].len, cases[i].random_pct,
		    cases[i].repeat_pct);
		n = mig_lz4_pack(src, cases[i].len, dst);
		print_message("%s: %zu -> %zu\n", cases[i].what, cases[i].len,
		    n);
		assert_int_equal(n > 0, cases[i].packs);
		if (n == 0)
			continue;
		/* Only what pays: below 7/8 of the chunk. */
		assert_true(8 * n < 7 * cases[i].len);
		m = mig_lz4_unpack(dst, n, out);
		assert_int_equal(m, (ssize_t)cases[i].len);
		assert_memory_equal(out, src, cases[i].len);
	}
	/* Out of range: nothing to pack. */
	assert_int_equal(mig_lz4_pack(src, 0, dst), 0);
	assert_int_equal(mig_lz4_pack(src, MIGCHAN_PAYLOAD_MAX + 1, dst), 0);
	assert_int_equal(mig_lz4_pack(NULL, 1, dst), 0);
	assert_int_equal(mig_lz4_pack(src, 1, NULL), 0);
	free(src);
	free(dst);
	free(out);
}

static void
test_unpack_hostile(void **state)
{
	/* Literal 'a', then a match at offset 0, which no block has. */
	static const uint8_t bad_offset[] = { 0x1f, 'a', 0x00, 0x00 };
	/* A token promising 15 + 255 + 255 literals, and none after. */
	static const uint8_t short_literals[] = { 0xf0, 0xff, 0xff, 0x10 };
	/* The last sequence, empty: a well-formed block of nothing. */
	static const uint8_t empty_block[] = { 0x00 };
	uint8_t *zeros = calloc(1, MIGCHAN_PAYLOAD_MAX + 1);
	uint8_t *blk = malloc(LZ4_compressBound(MIGCHAN_PAYLOAD_MAX + 1));
	/* Exactly the decoder's capacity: ASan sees a byte past it. */
	uint8_t *dst = malloc(MIGCHAN_PAYLOAD_MAX);
	int over, full, trunc;

	(void)state;
	assert_non_null(zeros);
	assert_non_null(blk);
	assert_non_null(dst);
	assert_int_equal(mig_lz4_unpack(bad_offset, sizeof(bad_offset), dst),
	    -EBADMSG);
	assert_int_equal(mig_lz4_unpack(short_literals,
	    sizeof(short_literals), dst), -EBADMSG);
	assert_int_equal(mig_lz4_unpack(empty_block, sizeof(empty_block),
	    dst), -EBADMSG);
	assert_int_equal(mig_lz4_unpack(empty_block, 0, dst), -EBADMSG);
	assert_int_equal(mig_lz4_unpack(NULL, 1, dst), -EINVAL);
	assert_int_equal(mig_lz4_unpack(empty_block, 1, NULL), -EINVAL);

	/* 65536 bytes decode; one more is refused, not written. */
	full = LZ4_compress_default((const char *)zeros, (char *)blk,
	    MIGCHAN_PAYLOAD_MAX, LZ4_compressBound(MIGCHAN_PAYLOAD_MAX + 1));
	assert_true(full > 0);
	assert_int_equal(mig_lz4_unpack(blk, (size_t)full, dst),
	    MIGCHAN_PAYLOAD_MAX);
	/* The same block cut short. */
	trunc = full - 3;
	assert_int_equal(mig_lz4_unpack(blk, (size_t)trunc, dst), -EBADMSG);
	over = LZ4_compress_default((const char *)zeros, (char *)blk,
	    MIGCHAN_PAYLOAD_MAX + 1, LZ4_compressBound(MIGCHAN_PAYLOAD_MAX + 1));
	assert_true(over > 0);
	assert_int_equal(mig_lz4_unpack(blk, (size_t)over, dst), -EBADMSG);
	/* A payload longer than any frame carries. */
	assert_int_equal(mig_lz4_unpack(zeros, MIGCHAN_PAYLOAD_MAX + 1, dst),
	    -EBADMSG);
	/* Random blocks: refused or decoded, never past the buffer. */
	for (int i = 0; i < 2000; i++) {
		size_t len = 1 + (size_t)randombytes_uniform(512);
		ssize_t n;

		randombytes_buf(blk, len);
		n = mig_lz4_unpack(blk, len, dst);
		assert_true(n == -EBADMSG || (n >= 1 &&
		    n <= MIGCHAN_PAYLOAD_MAX));
	}
	free(zeros);
	free(blk);
	free(dst);
}

/* ---- an io's owner ---- */

#define MAXF 16

struct side {
	struct mig_io *io;
	int accepted, authed, pumped, closed, err;
	int nframes;
	enum migchan_type types[MAXF];
	uint64_t data_len;		/* DATA through frame() */
	int data_bad;			/* its bytes not as sent */
	uint64_t raw_at_end, wire_at_end;	/* target, when END came */
	uint64_t raw_pumped, wire_pumped;	/* source, at pumped */
	int pump_to_fd, pump_from_fd;
	uint8_t *tapped;		/* source: what mig_io_tap showed */
	size_t ntapped, tap_cap;
	const uint8_t *ready;		/* target: READY's payload, or NULL */
	size_t ready_len;
	bool send_ready;
};

static void
side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->pump_to_fd = s->pump_from_fd = -1;
}

static void
cb_accepted(void *arg, struct mig_io *io)
{
	struct side *s = arg;

	s->io = io;
	s->accepted++;
	if (s->pump_to_fd >= 0)
		assert_int_equal(mig_io_pump_to(io, s->pump_to_fd), 0);
}

static void
cb_authed(void *arg)
{
	struct side *s = arg;

	s->authed++;
	if (s->send_ready)
		assert_int_equal(mig_io_send(s->io, MIGCHAN_READY, s->ready,
		    s->ready_len, false), 0);
}

static void
cb_tap(void *arg, const uint8_t *p, size_t len)
{
	struct side *s = arg;

	assert_true(s->ntapped + len <= s->tap_cap);
	memcpy(s->tapped + s->ntapped, p, len);
	s->ntapped += len;
}

/* The exchange of migrate_fsm.h, as far as the stream needs it. */
static void
cb_frame(void *arg, enum migchan_type t, const uint8_t *p, size_t len,
    bool final)
{
	static const uint8_t domid[4] = { 0, 0, 0, 7 };
	struct side *s = arg;

	(void)final;
	if (s->nframes < MAXF)
		s->types[s->nframes] = t;
	s->nframes++;
	switch (t) {
	case MIGCHAN_READY:	/* source */
		assert_int_equal(mig_io_pump_from(s->io, s->pump_from_fd), 0);
		if (s->tapped != NULL)
			mig_io_tap(s->io, cb_tap, s);
		break;
	case MIGCHAN_DATA:	/* target without pump_to: all 0x5a */
		for (size_t i = 0; i < len; i++)
			s->data_bad += p[i] != 0x5a;
		s->data_len += len;
		break;
	case MIGCHAN_END:
		s->raw_at_end = mig_io_bytes(s->io);
		s->wire_at_end = mig_io_wire_bytes(s->io);
		assert_int_equal(mig_io_send(s->io, MIGCHAN_RECEIVED, NULL, 0,
		    false), 0);
		break;
	case MIGCHAN_RECEIVED:
		assert_int_equal(mig_io_send(s->io, MIGCHAN_GO, NULL, 0, true),
		    0);
		break;
	case MIGCHAN_GO:
		assert_int_equal(mig_io_send(s->io, MIGCHAN_DONE, domid,
		    sizeof(domid), true), 0);
		mig_io_finish(s->io);
		s->io = NULL;
		break;
	default:
		break;
	}
}

static void
cb_pumped(void *arg)
{
	struct side *s = arg;

	s->pumped++;
	s->raw_pumped = mig_io_bytes(s->io);
	s->wire_pumped = mig_io_wire_bytes(s->io);
	assert_int_equal(mig_io_send(s->io, MIGCHAN_END, NULL, 0, false), 0);
}

static void
cb_closed(void *arg, int err)
{
	struct side *s = arg;

	s->closed++;
	s->err = err;
	mig_io_free(s->io);
	s->io = NULL;
}

static const struct mig_io_ops ops = {
	.accepted = cb_accepted,
	.authed = cb_authed,
	.frame = cb_frame,
	.pumped = cb_pumped,
	.closed = cb_closed,
};

static struct sockaddr_in
lo_addr(uint16_t port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sin;
}

/* A listener expecting ID from loopback for R; its port in *PORT. */
static struct mig_listener *
target(const uint8_t id[16], struct side *r, uint16_t *port)
{
	struct sockaddr_in sin = lo_addr(0);
	struct mig_listener *l;
	struct migchan ch;
	int p;

	l = mig_listener_new(base, (struct sockaddr *)&sin, sizeof(sin), NULL,
	    NULL);
	assert_non_null(l);
	p = mig_listener_port(l);
	assert_true(p > 0);
	*port = (uint16_t)p;
	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	assert_non_null(mig_listener_expect(l, &ch, "127.0.0.1", &ops, r));
	return l;
}

/* ---- the pumped stream: a feeder and a drain on socketpairs ---- */

struct stream {
	uint8_t *src, *dst;
	size_t len, off, got;
	int from[2], to[2];	/* [0] the io's, [1] the test's */
	struct event *fev, *dev;
	bool overflow;
};

static void
feed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	ssize_t w;

	(void)what;
	while (st->off < st->len) {
		if ((w = write(fd, st->src + st->off, st->len - st->off)) <= 0)
			return;
		st->off += (size_t)w;
	}
	event_free(st->fev);
	st->fev = NULL;
	close(st->from[1]);
	st->from[1] = -1;
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	ssize_t n;

	(void)what;
	while ((n = read(fd, st->dst + st->got, st->len + 1 - st->got)) > 0) {
		st->got += (size_t)n;
		if (st->got > st->len) {
			st->overflow = true;
			st->got = st->len;
		}
	}
}

static void
stream_init(struct stream *st, size_t len, unsigned random_pct)
{
	memset(st, 0, sizeof(*st));
	st->len = len;
	st->src = malloc(len > 0 ? len : 1);
	st->dst = malloc(len + 1);
	assert_non_null(st->src);
	assert_non_null(st->dst);
	fill_guest(st->src, len, random_pct);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, st->from), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, st->to), 0);
	st->fev = event_new(base, st->from[1], EV_WRITE | EV_PERSIST, feed_cb,
	    st);
	st->dev = event_new(base, st->to[1], EV_READ | EV_PERSIST, drain_cb,
	    st);
	assert_non_null(st->fev);
	assert_non_null(st->dev);
	assert_int_equal(event_add(st->dev, NULL), 0);
	if (len > 0)
		assert_int_equal(event_add(st->fev, NULL), 0);
}

static void
stream_dispose(struct stream *st)
{
	if (st->fev != NULL)
		event_free(st->fev);
	event_free(st->dev);
	for (int i = 0; i < 2; i++) {
		if (st->from[i] >= 0)
			close(st->from[i]);
		close(st->to[i]);
	}
	free(st->src);
	free(st->dst);
}

/* ---- 2. a whole stream ---- */

/*
 * The stream of STREAM_LEN bytes (RANDOM_PCT as in fill_guest) from a real
 * source to a real target whose READY carries READY/READY_LEN; checks it
 * arrived byte-exact and both ends counted alike.  Returns the wire bytes.
 */
static uint64_t
relay(unsigned random_pct, const uint8_t *ready, size_t ready_len)
{
	struct sockaddr_in sin;
	struct mig_listener *l;
	struct migchan ch;
	struct stream st;
	struct side I, R;
	uint8_t id[16];
	uint16_t port;
	uint64_t wire;

	side_init(&I);
	side_init(&R);
	stream_init(&st, STREAM_LEN, random_pct);
	I.pump_from_fd = st.from[0];
	I.tap_cap = STREAM_LEN;
	assert_non_null(I.tapped = malloc(STREAM_LEN));
	R.pump_to_fd = st.to[0];
	R.send_ready = true;
	R.ready = ready;
	R.ready_len = ready_len;
	randombytes_buf(id, sizeof(id));
	l = target(id, &R, &port);
	sin = lo_addr(port);
	assert_int_equal(migchan_init(&ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	I.io = mig_io_connect(base, (struct sockaddr *)&sin, sizeof(sin), &ch,
	    &ops, &I);
	assert_non_null(I.io);

	RUN_UNTIL(I.closed == 1 && st.got == STREAM_LEN, 20000);
	assert_int_equal(I.err, 0);
	assert_int_equal(R.closed, 0);		/* it finished, not failed */
	assert_false(st.overflow);
	assert_memory_equal(st.src, st.dst, STREAM_LEN);
	/* The tap saw every raw byte, in order. */
	assert_int_equal(I.ntapped, STREAM_LEN);
	assert_memory_equal(I.tapped, st.src, STREAM_LEN);
	free(I.tapped);
	/* The owner saw READY, RECEIVED, DONE; END, GO: no DATA_LZ4. */
	assert_int_equal(I.nframes, 3);
	assert_int_equal(R.nframes, 2);
	assert_int_equal(R.types[0], MIGCHAN_END);
	/* Raw stream bytes on both ends; the same frames on the wire. */
	assert_int_equal(I.raw_pumped, STREAM_LEN);
	assert_int_equal(R.raw_at_end, STREAM_LEN);
	assert_int_equal(I.wire_pumped, R.wire_at_end);
	wire = I.wire_pumped;
	print_message("%u%% random pages, READY of %zu bytes: %u bytes as "
	    "%llu on the wire\n", random_pct, ready_len, STREAM_LEN,
	    (unsigned long long)wire);
	mig_listener_free(l);
	stream_dispose(&st);
	return wire;
}

static void
test_relay_compressible(void **state)
{
	uint64_t wire;

	(void)state;
	wire = relay(0, caps_lz4, sizeof(caps_lz4));
	/* Far fewer: zero pages are a few hundred bytes a chunk. */
	assert_true(wire * 8 < STREAM_LEN);
}

static void
test_relay_mixed(void **state)
{
	/* Unknown bits and bytes after the flag are ignored. */
	static const uint8_t caps_more[MIGCHAN_READY_MAX] = { 0xff, 0x5a };
	uint64_t wire;

	(void)state;
	wire = relay(10, caps_more, sizeof(caps_more));
	assert_true(wire < STREAM_LEN / 4);
	assert_true(wire > STREAM_LEN / 10);	/* the random pages stay */
}

static void
test_relay_random(void **state)
{
	(void)state;
	/* Nothing pays: every chunk goes as plain DATA. */
	assert_true(relay(100, caps_lz4, sizeof(caps_lz4)) >=
	    PLAIN_MIN(STREAM_LEN));
}

static void
test_relay_not_offered(void **state)
{
	static const uint8_t caps_other[] = { 0x02 };

	(void)state;
	/* An old target (empty READY), or one offering something else. */
	assert_true(relay(0, NULL, 0) >= PLAIN_MIN(STREAM_LEN));
	assert_true(relay(0, caps_other, sizeof(caps_other)) >=
	    PLAIN_MIN(STREAM_LEN));
}

/* ---- 3. a source that breaks the rules ---- */

struct raw {
	int fd;
	struct event *ev;
	int result;		/* 0 open, 1 EOF, -errno */
	struct evbuffer *in;
	struct migchan ch;
};

static void
raw_cb(evutil_socket_t fd, short what, void *arg)
{
	struct raw *r = arg;
	uint8_t buf[65536];
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(evbuffer_add(r->in, buf, (size_t)n), 0);
	if (n == 0)
		r->result = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		r->result = -errno;
	if (r->result != 0)
		event_del(r->ev);
}

static void
raw_send(struct raw *r, const void *p, size_t len)
{
	/* Small: the socket's buffer takes it at once. */
	assert_int_equal(send(r->fd, p, len, 0), (ssize_t)len);
}

/* A frame of any type and payload, past migchan_seal()'s checks. */
static void
raw_forge(struct raw *r, uint8_t type, const uint8_t *p, size_t len)
{
	static uint8_t pt[1 + MIGCHAN_PAYLOAD_MAX], out[MIGCHAN_FRAME_MAX];
	unsigned long long clen;

	pt[0] = type;
	if (len > 0)
		memcpy(pt + 1, p, len);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_push(&r->ch.tx,
	    out + 4, &clen, pt, 1 + len, NULL, 0, TAG_MESSAGE), 0);
	out[0] = (uint8_t)(clen >> 24);
	out[1] = (uint8_t)(clen >> 16);
	out[2] = (uint8_t)(clen >> 8);
	out[3] = (uint8_t)clen;
	raw_send(r, out, 4 + (size_t)clen);
}

static void
raw_seal(struct raw *r, enum migchan_type t, const uint8_t *p, size_t len)
{
	static uint8_t out[MIGCHAN_FRAME_MAX];
	ssize_t n = migchan_seal(&r->ch, t, p, len, false, out, sizeof(out));

	assert_true(n > 0);
	raw_send(r, out, (size_t)n);
}

/* The next whole frame from the target, opened; false if not all in. */
static bool
raw_open(struct raw *r, enum migchan_type *t, size_t *plen)
{
	static uint8_t frame[MIGCHAN_FRAME_MAX], pt[MIGCHAN_PAYLOAD_MAX];
	uint8_t lenb[MIGCHAN_LEN_LEN];
	ssize_t flen;
	bool final;

	if (evbuffer_get_length(r->in) < sizeof(lenb))
		return false;
	evbuffer_copyout(r->in, lenb, sizeof(lenb));
	flen = migchan_frame_len(lenb);
	assert_true(flen > 0);
	if (evbuffer_get_length(r->in) < (size_t)flen)
		return false;
	evbuffer_remove(r->in, frame, (size_t)flen);
	assert_int_equal(migchan_open(&r->ch, frame, (size_t)flen, t, pt,
	    plen, &final), 0);
	return true;
}

/* Runs the loop until the next frame from the target opened. */
static void
raw_next(struct raw *r, enum migchan_type *t, size_t *plen)
{
	bool got = false;

	/* RUN_UNTIL evaluates its condition once more at the end. */
	RUN_UNTIL(got || (got = raw_open(r, t, plen)), 5000);
}

/* Connects, runs the handshake and AUTH, and opens the target's AUTH. */
static void
raw_source(struct raw *r, uint16_t port, const uint8_t id[16])
{
	struct sockaddr_in sin = lo_addr(port);
	uint8_t hello[MIGCHAN_HELLO_I_LEN], hdr[MIGCHAN_HEADER_LEN];
	enum migchan_type t;
	size_t plen;

	memset(r, 0, sizeof(*r));
	assert_int_equal(migchan_init(&r->ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	assert_int_equal(migchan_hello_i(&r->ch, hello), 0);
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	assert_int_equal(connect(r->fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	raw_send(r, hello, sizeof(hello));
	assert_int_equal(fcntl(r->fd, F_SETFL, O_NONBLOCK), 0);
	r->in = evbuffer_new();
	r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, raw_cb, r);
	assert_non_null(r->in);
	assert_non_null(r->ev);
	assert_int_equal(event_add(r->ev, NULL), 0);
	RUN_UNTIL(evbuffer_get_length(r->in) >= MIGCHAN_HELLO_R_LEN, 5000);
	evbuffer_remove(r->in, hello, MIGCHAN_HELLO_R_LEN);
	assert_int_equal(migchan_finish(&r->ch, hello, hdr), 0);
	raw_send(r, hdr, sizeof(hdr));
	raw_seal(r, MIGCHAN_AUTH, r->ch.id, MIGCHAN_ID_LEN);
	raw_next(r, &t, &plen);
	assert_int_equal(t, MIGCHAN_AUTH);
}

static void
raw_dispose(struct raw *r)
{
	event_free(r->ev);
	evbuffer_free(r->in);
	close(r->fd);
	migchan_dispose(&r->ch);
}

enum hostile {
	H_BEFORE_READY,		/* DATA_LZ4 before any READY */
	H_NOT_OFFERED,		/* after a READY without the flag */
	H_CORRUPT,		/* a good block, then a corrupt one */
	H_TOO_BIG,		/* decodes to 65537 bytes */
	H_NOTHING,		/* decodes to 0 bytes */
	H_EMPTY,		/* no payload at all */
	H_N
};

static void
test_hostile(void **state)
{
	static const uint8_t caps_none[] = { 0x00 };
	static const uint8_t bad_offset[] = { 0x1f, 'a', 0x00, 0x00 };
	static const uint8_t nothing[] = { 0x00 };
	static const int want_err[H_N] = {
		[H_BEFORE_READY] = -EBADMSG, [H_NOT_OFFERED] = -EBADMSG,
		[H_CORRUPT] = -EPROTO, [H_TOO_BIG] = -EPROTO,
		[H_NOTHING] = -EPROTO, [H_EMPTY] = -EBADMSG,
	};
	static uint8_t frame[MIGCHAN_FRAME_MAX];
	uint8_t *zeros = calloc(1, MIGCHAN_PAYLOAD_MAX + 1);
	uint8_t *blk = malloc(LZ4_compressBound(MIGCHAN_PAYLOAD_MAX + 1));
	struct mig_listener *l;
	struct stream st;
	struct side R;
	struct raw c;
	enum migchan_type t;
	uint8_t id[16];
	uint16_t port;
	size_t plen, good = 0;
	int n;

	(void)state;
	assert_non_null(zeros);
	assert_non_null(blk);
	for (int h = 0; h < H_N; h++) {
		side_init(&R);
		/* Room for the one good block; nobody reads the feed. */
		stream_init(&st, PAGE, 0);
		R.pump_to_fd = st.to[0];
		R.send_ready = h != H_BEFORE_READY;
		R.ready = h == H_NOT_OFFERED ? caps_none : caps_lz4;
		R.ready_len = 1;
		randombytes_buf(id, sizeof(id));
		l = target(id, &R, &port);
		raw_source(&c, port, id);
		RUN_UNTIL(R.authed == 1, 5000);
		if (R.send_ready) {
			raw_next(&c, &t, &plen);
			assert_int_equal(t, MIGCHAN_READY);
			assert_int_equal(migchan_lz4(&c.ch), h != H_NOT_OFFERED);
		}
		switch (h) {
		case H_BEFORE_READY:
		case H_NOT_OFFERED:
			n = LZ4_compress_default((const char *)zeros,
			    (char *)blk, PAGE, LZ4_compressBound(PAGE));
			/* A correct source cannot even seal it. */
			assert_int_equal(migchan_seal(&c.ch, MIGCHAN_DATA_LZ4,
			    blk, (size_t)n, false, frame, sizeof(frame)),
			    -EINVAL);
			raw_forge(&c, MIGCHAN_DATA_LZ4, blk, (size_t)n);
			break;
		case H_CORRUPT:
			/* What comes before the bad block is delivered. */
			good = PAGE;
			n = LZ4_compress_default((const char *)zeros,
			    (char *)blk, (int)good, LZ4_compressBound(PAGE));
			raw_seal(&c, MIGCHAN_DATA_LZ4, blk, (size_t)n);
			raw_seal(&c, MIGCHAN_DATA_LZ4, bad_offset,
			    sizeof(bad_offset));
			break;
		case H_TOO_BIG:
			n = LZ4_compress_default((const char *)zeros,
			    (char *)blk, MIGCHAN_PAYLOAD_MAX + 1,
			    LZ4_compressBound(MIGCHAN_PAYLOAD_MAX + 1));
			raw_seal(&c, MIGCHAN_DATA_LZ4, blk, (size_t)n);
			break;
		case H_NOTHING:
			raw_seal(&c, MIGCHAN_DATA_LZ4, nothing,
			    sizeof(nothing));
			break;
		default:
			raw_forge(&c, MIGCHAN_DATA_LZ4, NULL, 0);
			break;
		}
		raw_seal(&c, MIGCHAN_END, NULL, 0);
		RUN_UNTIL(R.closed == 1 && c.result != 0, 5000);
		print_message("hostile case %d: closed %s\n", h,
		    strerror(-R.err));
		assert_int_equal(R.err, want_err[h]);
		assert_int_equal(R.nframes, 0);		/* not even END */
		/* Only the good block reached the pump fd. */
		RUN_UNTIL(st.got == (h == H_CORRUPT ? good : 0), 1000);
		assert_memory_equal(st.dst, zeros, st.got);
		raw_dispose(&c);
		mig_listener_free(l);
		stream_dispose(&st);
	}
	free(zeros);
	free(blk);
}

/* Without pump_to, a DATA_LZ4 reaches the owner decoded, as DATA. */
static void
test_frame_path(void **state)
{
	uint8_t *src = malloc(60000), *blk = malloc(LZ4_compressBound(60000));
	struct mig_listener *l;
	struct side R;
	struct raw c;
	enum migchan_type t;
	uint8_t id[16];
	uint16_t port;
	size_t plen;
	int n;

	(void)state;
	assert_non_null(src);
	assert_non_null(blk);
	memset(src, 0x5a, 60000);
	n = LZ4_compress_default((const char *)src, (char *)blk, 60000,
	    LZ4_compressBound(60000));
	assert_true(n > 0 && n < 1000);
	side_init(&R);
	R.send_ready = true;
	R.ready = caps_lz4;
	R.ready_len = sizeof(caps_lz4);
	randombytes_buf(id, sizeof(id));
	l = target(id, &R, &port);
	raw_source(&c, port, id);
	raw_next(&c, &t, &plen);
	assert_int_equal(t, MIGCHAN_READY);
	assert_int_equal(plen, 1);
	raw_seal(&c, MIGCHAN_DATA_LZ4, blk, (size_t)n);
	raw_seal(&c, MIGCHAN_DATA, src, 100);
	raw_seal(&c, MIGCHAN_END, NULL, 0);
	RUN_UNTIL(R.nframes == 3, 5000);
	assert_int_equal(R.types[0], MIGCHAN_DATA);
	assert_int_equal(R.types[1], MIGCHAN_DATA);
	assert_int_equal(R.data_len, 60100);
	assert_int_equal(R.data_bad, 0);
	/* Wire bytes are the frames as they came. */
	assert_int_equal(R.wire_at_end, (uint64_t)n + 100 +
	    2 * MIGCHAN_OVERHEAD);
	/* The owner cannot hand in a DATA_LZ4 of its own. */
	assert_int_equal(mig_io_send(R.io, MIGCHAN_DATA_LZ4, blk, (size_t)n,
	    false), -EINVAL);
	mig_io_free(R.io);
	R.io = NULL;
	RUN_UNTIL(c.result != 0, 5000);
	raw_dispose(&c);
	mig_listener_free(l);
	free(src);
	free(blk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_unpack_hostile),
		cmocka_unit_test_setup_teardown(test_relay_compressible, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_relay_mixed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_relay_random, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_relay_not_offered, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_path, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	log_init(true, LOG_LEVEL_WARN, "test_migrate_lz4");
	crypto_box_keypair(i_pk, i_sk);
	crypto_box_keypair(r_pk, r_sk);
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
