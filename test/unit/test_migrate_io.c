/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_io.c over real loopback TCP, both ends on one event_base in this
 * process: a full migration exchange with an 8 MiB pumped stream, the
 * listener's refusals (unknown id, bad hello, wrong peer, replay, rival
 * handshakes, timeouts), a byte flipped on the wire by a proxy on the same
 * loop, a peer that vanishes mid-stream, a failing pump_to fd,
 * mig_io_send's limit, frees from inside callbacks, and mig_io_finish()
 * delivering what it queued (also to a half-closed peer).  Every test ends
 * by running the loop until no event is left, so an io that never frees
 * itself fails here and a leak fails under ASan.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "log.h"
#include "migchan.h"
#include "migrate_io.h"

#define STREAM_LEN	(8u * 1024 * 1024)
/* i->r bytes before the first frame after AUTH: HELLO_I, header, AUTH. */
#define I_AUTH_OFF	(MIGCHAN_HELLO_I_LEN + MIGCHAN_HEADER_LEN)
#define I_DATA_OFF	(I_AUTH_OFF + MIGCHAN_OVERHEAD + MIGCHAN_ID_LEN)

static struct event_base *base;
static uint8_t i_pk[32], i_sk[32], r_pk[32], r_sk[32], key[32];

/* ---- loop helpers ---- */

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
	/* -1: an assertion jumped out of a callback, the loop is dead. */\
	while (!(cond) && !timed_out)					\
		if (event_base_loop(base, EVLOOP_ONCE) < 0)		\
			break;						\
	event_free(dl_);						\
	if (!(cond))							\
		fail_msg("timed out waiting for %s", #cond);		\
} while (0)

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	return base == NULL ? -1 : 0;
}

/* Nothing may be left on the loop: every io freed itself (finish too). */
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
		return -1;	/* a failed test left it running: leak it */
	if (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) > 0) {
		print_error("events left on the loop after the test\n");
		return -1;
	}
	event_base_free(base);
	base = NULL;
	return 0;
}

/* ---- one end of a channel ---- */

#define MAXF 64

struct side {
	struct mig_io *io;
	int accepted, authed, pumped, closed, err;
	int nframes;
	enum migchan_type types[MAXF];
	bool finals[MAXF];
	size_t lens[MAXF];
	uint64_t bytes_at[MAXF];	/* mig_io_bytes() when each came */
	uint64_t bytes_pumped;
	uint64_t data_len;		/* DATA through frame() */
	int data_bad;			/* DATA payloads not as expected */
	int pump_to_fd;			/* set from accepted when >= 0 */
	void (*on_authed)(struct side *);
	void (*on_frame)(struct side *, enum migchan_type, bool);
	void (*on_pumped)(struct side *);
};

static void
side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->pump_to_fd = -1;
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
	if (s->on_authed != NULL)
		s->on_authed(s);
}

static void
cb_frame(void *arg, enum migchan_type type, const uint8_t *p, size_t len,
    bool final)
{
	struct side *s = arg;

	if (s->nframes < MAXF) {
		s->types[s->nframes] = type;
		s->finals[s->nframes] = final;
		s->lens[s->nframes] = len;
		s->bytes_at[s->nframes] = mig_io_bytes(s->io);
	}
	s->nframes++;
	if (type == MIGCHAN_DATA) {
		/* Senders of DATA here fill frame n with (n & 0xff). */
		for (size_t i = 0; i < len; i++)
			if (p[i] != (uint8_t)(s->nframes - 1))
				s->data_bad++;
		s->data_len += len;
	}
	if (s->on_frame != NULL)
		s->on_frame(s, type, final);
}

static void
cb_pumped(void *arg)
{
	struct side *s = arg;

	s->pumped++;
	s->bytes_pumped = mig_io_bytes(s->io);
	if (s->on_pumped != NULL)
		s->on_pumped(s);
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

/* ---- the listener ---- */

struct lstate {
	int refused;
	char peer[8][64];
	char why[8][64];
};

static void
cb_refused(void *arg, const char *peer, const char *why)
{
	struct lstate *ls = arg;

	if (ls->refused < 8) {
		snprintf(ls->peer[ls->refused], sizeof(ls->peer[0]), "%s", peer);
		snprintf(ls->why[ls->refused], sizeof(ls->why[0]), "%s", why);
	}
	ls->refused++;
}

static const struct mig_listener_ops lops = { .refused = cb_refused };

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

static struct mig_listener *
listener(struct lstate *ls, uint16_t *port)
{
	struct sockaddr_in sin = lo_addr(0);
	struct mig_listener *l;
	int p;

	memset(ls, 0, sizeof(*ls));
	l = mig_listener_new(base, (struct sockaddr *)&sin, sizeof(sin), &lops,
	    ls);
	assert_non_null(l);
	p = mig_listener_port(l);
	assert_true(p > 0);
	*port = (uint16_t)p;
	return l;
}

static struct mig_expect *
expect(struct mig_listener *l, const uint8_t id[16], const char *peer,
    struct side *r)
{
	struct migchan ch;
	struct mig_expect *e;

	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	e = mig_listener_expect(l, &ch, peer, &ops, r);
	assert_non_null(e);
	/* The caller's copy is wiped on success. */
	assert_true(sodium_is_zero(ch.k, sizeof(ch.k)));
	return e;
}

static struct mig_io *
connect_to(uint16_t port, const uint8_t id[16], struct side *s)
{
	struct sockaddr_in sin = lo_addr(port);
	struct migchan ch;
	struct mig_io *io;

	assert_int_equal(migchan_init(&ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	io = mig_io_connect(base, (struct sockaddr *)&sin, sizeof(sin), &ch,
	    &ops, s);
	assert_non_null(io);
	assert_true(sodium_is_zero(ch.my_sk, sizeof(ch.my_sk)));
	s->io = io;
	return io;
}

/* ---- a raw TCP client ---- */

struct raw {
	int fd;
	struct event *ev;
	int result;		/* 0 open, 1 EOF, -errno */
	size_t got;		/* bytes the server sent */
	struct evbuffer *in;	/* and those bytes */
};

static void
raw_cb(evutil_socket_t fd, short what, void *arg)
{
	struct raw *r = arg;
	uint8_t buf[65536];
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		r->got += (size_t)n;
		assert_int_equal(evbuffer_add(r->in, buf, (size_t)n), 0);
	}
	if (n == 0)
		r->result = 1;
	else if (errno != EAGAIN && errno != EWOULDBLOCK)
		r->result = -errno;
	if (r->result != 0)
		event_del(r->ev);
}

static void
raw_connect(struct raw *r, uint16_t port, const void *send, size_t len)
{
	struct sockaddr_in sin = lo_addr(port);

	memset(r, 0, sizeof(*r));
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	/* Blocking is fine: the kernel completes it from the backlog. */
	assert_int_equal(connect(r->fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	if (len > 0)
		assert_int_equal(write(r->fd, send, len), (ssize_t)len);
	assert_int_equal(fcntl(r->fd, F_SETFL, O_NONBLOCK), 0);
	r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, raw_cb, r);
	r->in = evbuffer_new();
	assert_non_null(r->ev);
	assert_non_null(r->in);
	assert_int_equal(event_add(r->ev, NULL), 0);
}

static void
raw_close(struct raw *r)
{
	event_free(r->ev);
	evbuffer_free(r->in);
	close(r->fd);
}

/* A valid HELLO_I for ID, from a channel thrown away at once. */
static void
hello_for(const uint8_t id[16], uint8_t out[MIGCHAN_HELLO_I_LEN])
{
	struct migchan ch;

	assert_int_equal(migchan_init(&ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	assert_int_equal(migchan_hello_i(&ch, out), 0);
	migchan_dispose(&ch);
}

/* ---- the pumped stream: a feeder and a drain on socketpairs ---- */

struct stream {
	uint8_t *src, *dst;
	size_t off, got;
	int from[2], to[2];	/* [0] to the io, [1] the test's end */
	struct event *fev, *dev;
	bool overflow;
	uint64_t stop_at;	/* test_peer_gone: free STOP_IO here */
	struct side *stop;
	size_t stall_at;	/* the drain pauses here once, STALL_MS */
	struct event *stall_ev;
};

#define STALL_MS 200

static void
feed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	size_t n;
	ssize_t w;

	(void)what;
	while (st->off < STREAM_LEN) {
		n = STREAM_LEN - st->off;
		if (n > 256 * 1024)
			n = 256 * 1024;
		if ((w = write(fd, st->src + st->off, n)) <= 0)
			return;		/* EAGAIN, or the io went away */
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
	if (st->stall_at > 0 && st->got >= st->stall_at) {
		struct timeval tv = { 0, STALL_MS * 1000 };

		/* The target's own buffer fills while the fd is stuck. */
		st->stall_at = 0;
		event_del(st->dev);
		evtimer_add(st->stall_ev, &tv);
		return;
	}
	while ((n = read(fd, st->dst + st->got, (st->stall_at > st->got ?
	    st->stall_at : STREAM_LEN + 1) - st->got)) > 0) {
		st->got += (size_t)n;
		if (st->got > STREAM_LEN) {
			st->overflow = true;
			st->got = STREAM_LEN;
		}
	}
	if (st->stop != NULL && st->got >= st->stop_at &&
	    st->stop->io != NULL) {
		mig_io_free(st->stop->io);
		st->stop->io = NULL;
	}
}

static void
unstall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	(void)fd;
	(void)what;
	event_add(st->dev, NULL);
}

static void
stream_init(struct stream *st)
{
	memset(st, 0, sizeof(*st));
	st->src = malloc(STREAM_LEN);
	st->dst = malloc(STREAM_LEN + 1);
	assert_non_null(st->src);
	assert_non_null(st->dst);
	randombytes_buf(st->src, STREAM_LEN);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, st->from), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, st->to), 0);
	st->fev = event_new(base, st->from[1], EV_WRITE | EV_PERSIST, feed_cb,
	    st);
	st->dev = event_new(base, st->to[1], EV_READ | EV_PERSIST, drain_cb,
	    st);
	st->stall_ev = evtimer_new(base, unstall_cb, st);
	assert_non_null(st->fev);
	assert_non_null(st->dev);
	assert_non_null(st->stall_ev);
}

static void
stream_start(struct stream *st)
{
	assert_int_equal(event_add(st->fev, NULL), 0);
	assert_int_equal(event_add(st->dev, NULL), 0);
}

static void
stream_dispose(struct stream *st)
{
	if (st->fev != NULL)
		event_free(st->fev);
	event_free(st->dev);
	event_free(st->stall_ev);
	for (int i = 0; i < 2; i++) {
		if (st->from[i] >= 0)
			close(st->from[i]);
		close(st->to[i]);
	}
	free(st->src);
	free(st->dst);
}

/* ---- 1. the whole exchange ---- */

static void
i_pumped_send_end(struct side *s)
{
	assert_int_equal(mig_io_send(s->io, MIGCHAN_END, NULL, 0, false), 0);
}

static void
r_on_frame(struct side *s, enum migchan_type t, bool final)
{
	static const uint8_t domid[4] = { 0, 0, 0, 7 };

	(void)final;
	if (t == MIGCHAN_END) {
		assert_int_equal(mig_io_send(s->io, MIGCHAN_RECEIVED, NULL, 0,
		    false), 0);
	} else if (t == MIGCHAN_GO) {
		assert_int_equal(mig_io_send(s->io, MIGCHAN_DONE, domid,
		    sizeof(domid), true), 0);
		/* Nothing may follow this side's FINAL. */
		assert_int_equal(mig_io_send(s->io, MIGCHAN_ABORT,
		    (const uint8_t *)"x", 1, false), -EINVAL);
		mig_io_finish(s->io);
		s->io = NULL;
	}
}

static void
i_on_frame(struct side *s, enum migchan_type t, bool final)
{
	(void)final;
	if (t == MIGCHAN_RECEIVED)
		assert_int_equal(mig_io_send(s->io, MIGCHAN_GO, NULL, 0, true),
		    0);
}

static void
test_happy(void **state)
{
	static const char peer[] = "127.0.0.1";
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	struct stream st;
	uint8_t id[16];
	uint16_t port;
	struct migchan bad;
	int blk[2];

	(void)state;
	randombytes_buf(id, sizeof(id));
	side_init(&I);
	side_init(&R);
	stream_init(&st);
	R.pump_to_fd = st.to[0];
	st.stall_at = STREAM_LEN - 1024 * 1024;
	R.on_frame = r_on_frame;
	I.on_frame = i_on_frame;
	I.on_pumped = i_pumped_send_end;

	l = listener(&ls, &port);
	(void)expect(l, id, peer, &R);
	connect_to(port, id, &I);
	/* Before authed: nothing can be sent or pumped yet. */
	assert_int_equal(mig_io_send(I.io, MIGCHAN_READY, NULL, 0, false),
	    -ENOTCONN);
	assert_int_equal(mig_io_pump_from(I.io, st.from[0]), -ENOTCONN);
	/* No callback from an API call. */
	assert_int_equal(I.authed + R.accepted, 0);

	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	assert_int_equal(R.accepted, 1);
	assert_int_equal(ls.refused, 0);
	assert_string_equal(mig_io_peer(R.io), peer);
	assert_string_equal(mig_io_peer(I.io), peer);
	assert_int_equal(mig_io_set_timeout_ms(I.io, 100), -EINVAL);
	/* The listener is not needed once the io is handed over. */
	mig_listener_free(l);

	/* A blocking fd is refused. */
	assert_int_equal(pipe(blk), 0);
	assert_int_equal(mig_io_pump_from(I.io, blk[0]), -EINVAL);
	assert_int_equal(mig_io_pump_to(I.io, blk[1]), -EINVAL);
	close(blk[0]);
	close(blk[1]);
	assert_int_equal(mig_io_pump_from(I.io, st.from[0]), 0);
	assert_int_equal(mig_io_pump_from(I.io, st.from[0]), -EBUSY);
	assert_int_equal(mig_io_pump_to(R.io, st.to[0]), -EBUSY);
	assert_int_equal(mig_io_send(I.io, MIGCHAN_END, NULL, 0, true),
	    -EBUSY);
	assert_int_equal(mig_io_send(I.io, MIGCHAN_AUTH, id, 16, false),
	    -EINVAL);
	assert_int_equal(mig_io_send(I.io, MIGCHAN_ABORT, NULL,
	    MIGCHAN_PAYLOAD_MAX + 1, false), -EMSGSIZE);
	stream_start(&st);

	RUN_UNTIL(I.closed == 1, 10000);
	assert_int_equal(I.err, 0);
	assert_false(st.overflow);
	assert_int_equal(st.stall_at, 0);	/* the drain did stall */
	assert_int_equal(st.got, STREAM_LEN);
	assert_memory_equal(st.src, st.dst, STREAM_LEN);
	assert_int_equal(I.pumped, 1);
	assert_int_equal(I.bytes_pumped, STREAM_LEN);

	/* The target saw END only after every DATA byte reached its fd. */
	assert_int_equal(R.nframes, 2);
	assert_int_equal(R.types[0], MIGCHAN_END);
	assert_false(R.finals[0]);
	assert_int_equal(R.bytes_at[0], STREAM_LEN);
	assert_int_equal(R.types[1], MIGCHAN_GO);
	assert_true(R.finals[1]);
	assert_int_equal(R.data_len, 0);	/* DATA went to the fd */

	assert_int_equal(I.nframes, 2);
	assert_int_equal(I.types[0], MIGCHAN_RECEIVED);
	assert_false(I.finals[0]);
	assert_int_equal(I.bytes_at[0], STREAM_LEN);
	assert_int_equal(I.types[1], MIGCHAN_DONE);
	assert_true(I.finals[1]);
	assert_int_equal(I.lens[1], 4);

	/* The finished target reports nothing. */
	assert_int_equal(R.closed, 0);
	assert_int_equal(I.authed + R.authed, 2);

	/* A channel of the wrong role is wiped and refused. */
	assert_int_equal(migchan_init(&bad, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	{
		struct sockaddr_in sin = lo_addr(port);

		assert_null(mig_io_connect(base, (struct sockaddr *)&sin,
		    sizeof(sin), &bad, &ops, &I));
		assert_int_equal(errno, EINVAL);
		assert_true(sodium_is_zero(bad.k, sizeof(bad.k)));
	}
	stream_dispose(&st);
}

/* ---- 2. a stranger ---- */

static void
test_stranger(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side R;
	struct raw c;
	uint8_t hello[MIGCHAN_HELLO_I_LEN], id[16];
	uint16_t port;

	(void)state;
	side_init(&R);
	l = listener(&ls, &port);
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);

	memcpy(hello, "HVMG\1\0\0\0", 8);
	randombytes_buf(hello + 8, sizeof(hello) - 8);
	raw_connect(&c, port, hello, sizeof(hello));
	RUN_UNTIL(ls.refused == 1 && c.result != 0, 5000);
	assert_string_equal(ls.peer[0], "127.0.0.1");
	assert_string_equal(ls.why[0], "unknown migration id");
	assert_int_equal(c.result, 1);		/* EOF, not a reset */
	assert_int_equal(c.got, 0);		/* no HELLO_R */
	raw_close(&c);

	/* A wrong magic is a bad hello. */
	memcpy(hello, "HVMX", 4);
	raw_connect(&c, port, hello, sizeof(hello));
	RUN_UNTIL(ls.refused == 2 && c.result != 0, 5000);
	assert_string_equal(ls.why[1], "bad hello");
	assert_int_equal(c.got, 0);
	raw_close(&c);

	/* Half a hello, then gone. */
	raw_connect(&c, port, hello, 10);
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);
	RUN_UNTIL(ls.refused == 3 && c.result != 0, 5000);
	assert_string_equal(ls.why[2], "closed during handshake");
	raw_close(&c);
	assert_int_equal(R.accepted, 0);
	mig_listener_free(l);
}

/* ---- 3. the wrong peer address ---- */

static void
test_wrong_peer(void **state)
{
	struct mig_listener *l;
	struct mig_expect *e;
	struct lstate ls;
	struct side I, R, I2, R2;
	struct migchan ch;
	uint8_t id[16];
	uint16_t port;

	(void)state;
	side_init(&I);
	side_init(&R);
	side_init(&I2);
	side_init(&R2);
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	e = expect(l, id, "127.0.0.2", &R);
	connect_to(port, id, &I);
	RUN_UNTIL(ls.refused == 1 && I.closed == 1, 5000);
	assert_string_equal(ls.why[0], "wrong peer address");
	assert_string_equal(ls.peer[0], "127.0.0.1");
	assert_int_equal(I.err, -EPIPE);
	assert_int_equal(I.authed, 0);
	assert_int_equal(R.accepted, 0);

	/* Not used up: still expected; cancelled, it is not remembered. */
	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	assert_null(mig_listener_expect(l, &ch, "127.0.0.1", &ops, &R2));
	assert_int_equal(errno, EEXIST);
	assert_true(sodium_is_zero(ch.k, sizeof(ch.k)));
	mig_listener_unexpect(e);
	/* A v4-mapped text equals its IPv4 peer. */
	(void)expect(l, id, "::ffff:127.0.0.1", &R2);
	connect_to(port, id, &I2);
	RUN_UNTIL(I2.authed == 1 && R2.authed == 1, 5000);
	assert_int_equal(ls.refused, 1);
	mig_io_free(I2.io);
	mig_io_free(R2.io);
	mig_listener_free(l);
}

/* ---- 4. a replay, and rivals in flight ---- */

static void
test_replay(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R, I2;
	struct migchan ch;
	struct raw rival;
	uint8_t id[16], hello[MIGCHAN_HELLO_I_LEN];
	uint16_t port;

	(void)state;
	side_init(&I);
	side_init(&R);
	side_init(&I2);
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	(void)expect(l, id, "127.0.0.1", &R);

	/* A rival for the same id stalls after a valid HELLO_I. */
	hello_for(id, hello);
	raw_connect(&rival, port, hello, sizeof(hello));
	RUN_UNTIL(rival.got == MIGCHAN_HELLO_R_LEN, 5000);

	connect_to(port, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1 && rival.result != 0, 5000);
	assert_int_equal(ls.refused, 1);
	assert_string_equal(ls.why[0], "id already used");
	raw_close(&rival);

	connect_to(port, id, &I2);
	RUN_UNTIL(ls.refused == 2 && I2.closed == 1, 5000);
	assert_string_equal(ls.why[1], "id already used");
	assert_int_equal(I2.err, -EPIPE);
	assert_int_equal(I2.authed, 0);
	assert_int_equal(R.accepted, 1);

	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	errno = 0;
	assert_null(mig_listener_expect(l, &ch, "127.0.0.1", &ops, &R));
	assert_int_equal(errno, EEXIST);
	assert_true(sodium_is_zero(ch.my_sk, sizeof(ch.my_sk)));

	/* The first connection is unharmed. */
	assert_int_equal(mig_io_send(I.io, MIGCHAN_ABORT,
	    (const uint8_t *)"test", 4, true), 0);
	RUN_UNTIL(R.nframes == 1 && R.closed == 0, 5000);
	assert_int_equal(R.types[0], MIGCHAN_ABORT);
	assert_true(R.finals[0]);
	mig_io_free(I.io);
	RUN_UNTIL(R.closed == 1, 5000);
	assert_int_equal(R.err, 0);		/* EOF after its FINAL */
	mig_listener_free(l);
}

/* ---- 5. a byte flipped on the wire ---- */

struct proxy {
	int lfd;
	uint16_t to_port;
	size_t flip_at;		/* offset in the i->r stream */
	struct event *lev;
	struct bufferevent *a, *b;	/* a: initiator side, b: responder */
	size_t off;
	bool flipped;
};

static void
proxy_close(struct proxy *p)
{
	if (p->a != NULL)
		bufferevent_free(p->a);
	if (p->b != NULL)
		bufferevent_free(p->b);
	p->a = p->b = NULL;
}

static void
proxy_read(struct bufferevent *bev, void *arg)
{
	struct proxy *p = arg;
	uint8_t buf[8192];
	size_t n;

	if (bev == p->b) {
		bufferevent_write_buffer(p->a, bufferevent_get_input(bev));
		return;
	}
	while ((n = evbuffer_remove(bufferevent_get_input(bev), buf,
	    sizeof(buf))) > 0 && n <= sizeof(buf)) {
		if (p->flip_at >= p->off && p->flip_at < p->off + n) {
			buf[p->flip_at - p->off] ^= 0x01;
			p->flipped = true;
		}
		p->off += n;
		bufferevent_write(p->b, buf, n);
	}
}

static void
proxy_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		proxy_close(arg);
}

static void
proxy_accept(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;
	struct sockaddr_in sin = lo_addr(p->to_port);
	int c;

	(void)what;
	if ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0)
		return;
	p->a = bufferevent_socket_new(base, c, BEV_OPT_CLOSE_ON_FREE);
	p->b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(p->a);
	assert_non_null(p->b);
	bufferevent_setcb(p->a, proxy_read, NULL, proxy_event, p);
	bufferevent_setcb(p->b, proxy_read, NULL, proxy_event, p);
	assert_int_equal(bufferevent_socket_connect(p->b,
	    (struct sockaddr *)&sin, sizeof(sin)), 0);
	bufferevent_enable(p->a, EV_READ | EV_WRITE);
	bufferevent_enable(p->b, EV_READ | EV_WRITE);
}

static uint16_t
proxy_start(struct proxy *p, uint16_t to_port, size_t flip_at)
{
	struct sockaddr_in sin = lo_addr(0);
	socklen_t len = sizeof(sin);

	memset(p, 0, sizeof(*p));
	p->to_port = to_port;
	p->flip_at = flip_at;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sin, &len), 0);
	p->lev = event_new(base, p->lfd, EV_READ | EV_PERSIST, proxy_accept, p);
	assert_non_null(p->lev);
	assert_int_equal(event_add(p->lev, NULL), 0);
	return ntohs(sin.sin_port);
}

static void
proxy_stop(struct proxy *p)
{
	proxy_close(p);
	event_free(p->lev);
	close(p->lfd);
}

static void
i_authed_send_data(struct side *s)
{
	uint8_t buf[1000];

	memset(buf, 0, sizeof(buf));
	assert_int_equal(mig_io_send(s->io, MIGCHAN_DATA, buf, sizeof(buf),
	    false), 0);
	assert_int_equal(mig_io_send(s->io, MIGCHAN_END, NULL, 0, false), 0);
}

static void
test_corrupt(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct proxy px;
	struct side I, R;
	uint8_t id[16];
	uint16_t port, pport;

	(void)state;
	l = listener(&ls, &port);

	/* In the first DATA frame's ciphertext: the receiver closes. */
	side_init(&I);
	side_init(&R);
	I.on_authed = i_authed_send_data;
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);
	pport = proxy_start(&px, port, I_DATA_OFF + MIGCHAN_LEN_LEN + 9);
	connect_to(pport, id, &I);
	RUN_UNTIL(R.closed == 1 && I.closed == 1, 5000);
	assert_true(px.flipped);
	assert_int_equal(R.authed, 1);
	assert_int_equal(R.err, -EBADMSG);
	assert_int_equal(R.nframes, 0);		/* nothing of it, nor after */
	assert_int_equal(I.err, -EPIPE);
	assert_int_equal(ls.refused, 0);
	proxy_stop(&px);

	/* In the initiator's AUTH frame: refused, and the id not used up. */
	side_init(&I);
	side_init(&R);
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);
	pport = proxy_start(&px, port, I_AUTH_OFF + MIGCHAN_LEN_LEN + 3);
	connect_to(pport, id, &I);
	RUN_UNTIL(ls.refused == 1 && I.closed == 1, 5000);
	assert_true(px.flipped);
	assert_string_equal(ls.why[0], "authentication failed");
	assert_int_equal(I.err, -EPIPE);
	assert_int_equal(R.accepted, 0);
	proxy_stop(&px);
	side_init(&I);
	connect_to(port, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	mig_io_free(I.io);
	mig_io_free(R.io);
	mig_listener_free(l);
}

/* ---- 6. the peer goes away mid-stream ---- */

static void
test_peer_gone(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	struct stream st;
	uint8_t id[16];
	uint16_t port;

	(void)state;
	side_init(&I);
	side_init(&R);
	stream_init(&st);
	R.pump_to_fd = st.to[0];
	st.stop = &I;
	st.stop_at = 1024 * 1024;
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	(void)expect(l, id, "127.0.0.1", &R);
	connect_to(port, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	assert_int_equal(mig_io_pump_from(I.io, st.from[0]), 0);
	stream_start(&st);
	RUN_UNTIL(R.closed == 1, 5000);
	assert_null(I.io);			/* the drain freed it */
	assert_int_equal(R.err, -EPIPE);
	assert_int_equal(I.closed + I.pumped, 0);
	assert_true(st.got >= st.stop_at && st.got < STREAM_LEN);
	/* What did arrive is a prefix of the stream. */
	assert_memory_equal(st.src, st.dst, st.got);
	mig_listener_free(l);
	stream_dispose(&st);
}

/* ---- 7. handshake deadlines ---- */

static void
test_timeout(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	struct raw c, c2;
	struct sockaddr_in sin = lo_addr(0);
	socklen_t slen = sizeof(sin);
	uint8_t id[16], hello[MIGCHAN_HELLO_I_LEN];
	uint16_t port;
	long t0;
	int dead;

	(void)state;
	side_init(&I);
	side_init(&R);
	l = listener(&ls, &port);
	assert_int_equal(mig_listener_set_timeout_ms(l, 0), -EINVAL);
	assert_int_equal(mig_listener_set_timeout_ms(l, 200), 0);
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);

	/* Silent, and stalled after a valid HELLO_I. */
	hello_for(id, hello);
	t0 = now_ms();
	raw_connect(&c, port, NULL, 0);
	raw_connect(&c2, port, hello, sizeof(hello));
	RUN_UNTIL(ls.refused == 2 && c.result != 0 && c2.result != 0, 3000);
	assert_true(now_ms() - t0 >= 150);
	assert_string_equal(ls.why[0], "handshake timeout");
	assert_string_equal(ls.why[1], "handshake timeout");
	assert_int_equal(c.result, 1);
	assert_int_equal(c.got, 0);
	assert_int_equal(c2.got, MIGCHAN_HELLO_R_LEN);
	raw_close(&c);
	raw_close(&c2);
	/* Neither used up the id. */
	connect_to(port, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	mig_io_free(I.io);
	mig_io_free(R.io);
	mig_listener_free(l);

	/* An initiator to a listener that never accepts. */
	dead = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(dead >= 0);
	assert_int_equal(bind(dead, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(dead, 4), 0);
	assert_int_equal(getsockname(dead, (struct sockaddr *)&sin, &slen), 0);
	side_init(&I);
	connect_to(ntohs(sin.sin_port), id, &I);
	assert_int_equal(mig_io_set_timeout_ms(I.io, 0), -EINVAL);
	assert_int_equal(mig_io_set_timeout_ms(I.io, 200), 0);
	t0 = now_ms();
	RUN_UNTIL(I.closed == 1, 3000);
	assert_true(now_ms() - t0 >= 150);
	assert_int_equal(I.err, -ETIMEDOUT);
	assert_int_equal(I.authed, 0);
	close(dead);
}

/* ---- 8. mig_io_finish delivers what it queued ---- */

#define FIN_FRAMES 40

static void
i_authed_send_finish(struct side *s)
{
	static uint8_t buf[MIGCHAN_PAYLOAD_MAX];

	for (int i = 0; i < FIN_FRAMES; i++) {
		memset(buf, i, sizeof(buf));
		assert_int_equal(mig_io_send(s->io, MIGCHAN_DATA, buf,
		    sizeof(buf), false), 0);
	}
	assert_int_equal(mig_io_bytes(s->io),
	    (uint64_t)FIN_FRAMES * MIGCHAN_PAYLOAD_MAX);
	assert_int_equal(mig_io_send(s->io, MIGCHAN_GO, NULL, 0, true), 0);
	assert_int_equal(mig_io_send(s->io, MIGCHAN_END, NULL, 0, false),
	    -EINVAL);
	mig_io_finish(s->io);
	s->io = NULL;
}

static void
test_finish(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	uint8_t id[16];
	uint16_t port;

	(void)state;
	side_init(&I);
	side_init(&R);
	I.on_authed = i_authed_send_finish;
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	(void)expect(l, id, "127.0.0.1", &R);
	connect_to(port, id, &I);
	RUN_UNTIL(R.closed == 1, 5000);
	assert_int_equal(I.authed, 1);
	assert_int_equal(I.closed, 0);		/* finish: no more callbacks */
	assert_int_equal(R.err, 0);
	assert_int_equal(R.nframes, FIN_FRAMES + 1);
	assert_int_equal(R.data_len, (uint64_t)FIN_FRAMES * MIGCHAN_PAYLOAD_MAX);
	assert_int_equal(R.data_bad, 0);
	assert_int_equal(R.types[FIN_FRAMES], MIGCHAN_GO);
	assert_true(R.finals[FIN_FRAMES]);
	assert_false(R.finals[FIN_FRAMES - 1]);
	mig_listener_free(l);
	/* teardown: the finishing io frees itself once R is gone. */
}

/*
 * The peer half-closed after its FINAL but still reads: the target's
 * mig_io_finish() must still send everything it queued before it frees
 * itself.  The initiator is the test itself, a migchan on a raw socket.
 */
#define HC_FRAMES 48

static void
r_on_go_flood_finish(struct side *s, enum migchan_type t, bool final)
{
	static uint8_t buf[MIGCHAN_PAYLOAD_MAX];
	static const uint8_t domid[4] = { 0, 0, 0, 9 };

	if (t != MIGCHAN_GO || !final)
		return;
	for (int i = 0; i < HC_FRAMES; i++) {
		memset(buf, i, sizeof(buf));
		assert_int_equal(mig_io_send(s->io, MIGCHAN_DATA, buf,
		    sizeof(buf), false), 0);
	}
	assert_int_equal(mig_io_send(s->io, MIGCHAN_DONE, domid,
	    sizeof(domid), true), 0);
	mig_io_finish(s->io);
	s->io = NULL;
}

static void
raw_send_frame(struct raw *c, struct migchan *ch, enum migchan_type t,
    const uint8_t *p, size_t len, bool final)
{
	static uint8_t buf[MIGCHAN_FRAME_MAX];
	ssize_t n;

	n = migchan_seal(ch, t, p, len, final, buf, sizeof(buf));
	assert_true(n > 0);
	/* Small frames: the socket's buffer takes them at once. */
	assert_int_equal(send(c->fd, buf, (size_t)n, 0), n);
}

static void
test_finish_half_closed(void **state)
{
	static uint8_t frame[MIGCHAN_FRAME_MAX], pt[MIGCHAN_PAYLOAD_MAX];
	struct mig_listener *l;
	struct lstate ls;
	struct side R;
	struct raw c;
	struct migchan ci;
	uint8_t id[16], hello[MIGCHAN_HELLO_I_LEN], hdr[MIGCHAN_HEADER_LEN];
	uint8_t lenb[MIGCHAN_LEN_LEN];
	enum migchan_type t = 0;
	size_t plen;
	ssize_t flen;
	bool final = false;
	int nframes = 0, ndata = 0, bad = 0;
	uint16_t port;

	(void)state;
	side_init(&R);
	R.on_frame = r_on_go_flood_finish;
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	(void)expect(l, id, "127.0.0.1", &R);

	assert_int_equal(migchan_init(&ci, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	assert_int_equal(migchan_hello_i(&ci, hello), 0);
	raw_connect(&c, port, hello, sizeof(hello));
	RUN_UNTIL(c.got >= MIGCHAN_HELLO_R_LEN, 5000);
	evbuffer_remove(c.in, hello, MIGCHAN_HELLO_R_LEN);
	assert_int_equal(migchan_finish(&ci, hello, hdr), 0);
	assert_int_equal(send(c.fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	raw_send_frame(&c, &ci, MIGCHAN_AUTH, ci.id, MIGCHAN_ID_LEN, false);
	raw_send_frame(&c, &ci, MIGCHAN_GO, NULL, 0, true);
	assert_int_equal(shutdown(c.fd, SHUT_WR), 0);

	RUN_UNTIL(c.result != 0, 5000);
	assert_int_equal(c.result, 1);
	assert_int_equal(R.authed, 1);
	assert_int_equal(R.nframes, 1);
	assert_int_equal(R.closed, 0);
	while (evbuffer_get_length(c.in) >= MIGCHAN_LEN_LEN) {
		evbuffer_copyout(c.in, lenb, sizeof(lenb));
		flen = migchan_frame_len(lenb);
		assert_true(flen > 0);
		if (evbuffer_get_length(c.in) < (size_t)flen)
			break;
		evbuffer_remove(c.in, frame, (size_t)flen);
		assert_int_equal(migchan_open(&ci, frame, (size_t)flen, &t, pt,
		    &plen, &final), 0);
		if (t == MIGCHAN_DATA) {
			for (size_t i = 0; i < plen; i++)
				bad += pt[i] != (uint8_t)ndata;
			ndata++;
		}
		nframes++;
	}
	/* AUTH, every DATA, DONE as the FINAL, and nothing cut short. */
	assert_int_equal(ndata, HC_FRAMES);
	assert_int_equal(bad, 0);
	assert_int_equal(nframes, HC_FRAMES + 2);
	assert_int_equal(t, MIGCHAN_DONE);
	assert_true(final);
	assert_int_equal(evbuffer_get_length(c.in), 0);
	migchan_dispose(&ci);
	raw_close(&c);
	mig_listener_free(l);
}

/* ---- the initiator against a bad responder ---- */

struct fake {
	int lfd, cfd;
	struct event *ev;
	uint8_t reply[MIGCHAN_HELLO_R_LEN];
};

static void
fake_accept(evutil_socket_t fd, short what, void *arg)
{
	struct fake *f = arg;

	(void)what;
	if ((f->cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return;
	assert_int_equal(write(f->cfd, f->reply, sizeof(f->reply)),
	    (ssize_t)sizeof(f->reply));
	event_del(f->ev);
}

static uint16_t
fake_start(struct fake *f)
{
	struct sockaddr_in sin = lo_addr(0);
	socklen_t len = sizeof(sin);

	f->cfd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &len),
	    0);
	f->ev = event_new(base, f->lfd, EV_READ, fake_accept, f);
	assert_non_null(f->ev);
	assert_int_equal(event_add(f->ev, NULL), 0);
	return ntohs(sin.sin_port);
}

static void
fake_stop(struct fake *f)
{
	event_free(f->ev);
	if (f->cfd >= 0)
		close(f->cfd);
	close(f->lfd);
}

static void
test_bad_hello_r(void **state)
{
	struct sockaddr_in sin = lo_addr(0);
	struct migchan ch;
	struct fake f;
	struct side I;
	uint8_t id[16];
	struct mig_io *io;
	int fd;
	socklen_t len = sizeof(sin);

	(void)state;
	randombytes_buf(id, sizeof(id));

	/* A low-order e_r (all zero) fails at once. */
	side_init(&I);
	memset(f.reply, 0, sizeof(f.reply));
	connect_to(fake_start(&f), id, &I);
	RUN_UNTIL(I.closed == 1, 5000);
	assert_int_equal(I.err, -EBADMSG);
	fake_stop(&f);

	/* A forged one fails at the first frame, after the header. */
	side_init(&I);
	randombytes_buf(f.reply, sizeof(f.reply));
	connect_to(fake_start(&f), id, &I);
	RUN_UNTIL(f.cfd >= 0, 5000);
	{
		/* Answer the header with a frame of garbage. */
		uint8_t junk[4 + 64];

		randombytes_buf(junk, sizeof(junk));
		junk[0] = junk[1] = junk[2] = 0;
		junk[3] = 64;
		assert_int_equal(write(f.cfd, junk, sizeof(junk)),
		    (ssize_t)sizeof(junk));
	}
	RUN_UNTIL(I.closed == 1, 5000);
	assert_int_equal(I.err, -EBADMSG);
	assert_int_equal(I.authed, 0);
	fake_stop(&f);

	/* Nobody listening: refused now, or closed(-EPIPE) later. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	side_init(&I);
	assert_int_equal(migchan_init(&ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	io = mig_io_connect(base, (struct sockaddr *)&sin, sizeof(sin), &ch,
	    &ops, &I);
	assert_true(sodium_is_zero(ch.k, sizeof(ch.k)));
	if (io == NULL) {
		assert_int_equal(errno, ECONNREFUSED);
	} else {
		I.io = io;
		RUN_UNTIL(I.closed == 1, 5000);
		assert_int_equal(I.err, -EPIPE);
	}
}

/* ---- cancelling: unexpect and listener_free with handshakes in flight */

static void
test_unexpect(void **state)
{
	struct mig_listener *l;
	struct mig_expect *e;
	struct lstate ls;
	struct side R;
	struct raw c, c2;
	struct migchan ch;
	uint8_t id[16], hello[MIGCHAN_HELLO_I_LEN];
	uint16_t port;

	(void)state;
	side_init(&R);
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	e = expect(l, id, "127.0.0.1", &R);
	hello_for(id, hello);
	raw_connect(&c, port, hello, sizeof(hello));
	RUN_UNTIL(c.got == MIGCHAN_HELLO_R_LEN, 5000);
	mig_listener_unexpect(e);
	RUN_UNTIL(c.result != 0, 5000);
	assert_int_equal(c.result, 1);
	assert_int_equal(ls.refused, 0);	/* silently */
	raw_close(&c);

	/* Not remembered as used: it may be expected again. */
	(void)expect(l, id, "127.0.0.1", &R);
	raw_connect(&c, port, hello, sizeof(hello));
	raw_connect(&c2, port, NULL, 0);
	RUN_UNTIL(c.got == MIGCHAN_HELLO_R_LEN, 5000);
	mig_listener_free(l);
	RUN_UNTIL(c.result != 0 && c2.result != 0, 5000);
	assert_int_equal(ls.refused, 0);
	assert_int_equal(R.accepted, 0);
	raw_close(&c);
	raw_close(&c2);

	/* Arguments. */
	l = listener(&ls, &port);
	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	assert_null(mig_listener_expect(l, &ch, "localhost", &ops, &R));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(migchan_init(&ch, MIGCHAN_INITIATOR, id, key, i_sk,
	    r_pk), 0);
	assert_null(mig_listener_expect(l, &ch, "127.0.0.1", &ops, &R));
	assert_int_equal(errno, EINVAL);
	mig_listener_free(l);
	mig_listener_free(NULL);
	mig_io_free(NULL);
	mig_io_finish(NULL);
	assert_int_equal(mig_io_bytes(NULL), 0);
}

/* ---- mig_io_send's limit, and freeing from inside callbacks ---- */

static int sent_frames, sent_rc;

static void
i_authed_send_until_full(struct side *s)
{
	static uint8_t buf[MIGCHAN_PAYLOAD_MAX];

	/* Nothing leaves before the callback returns: the output fills. */
	for (;;) {
		memset(buf, sent_frames, sizeof(buf));
		if ((sent_rc = mig_io_send(s->io, MIGCHAN_DATA, buf,
		    sizeof(buf), false)) != 0)
			break;
		sent_frames++;
	}
}

static void
r_free_on_first_frame(struct side *s, enum migchan_type t, bool final)
{
	(void)t;
	(void)final;
	mig_io_free(s->io);
	s->io = NULL;
}

static void
free_in_accepted(void *arg, struct mig_io *io)
{
	struct side *s = arg;

	s->accepted++;
	mig_io_free(io);
}

static const struct mig_io_ops free_ops = {
	.accepted = free_in_accepted,
	.authed = cb_authed,
	.frame = cb_frame,
	.closed = cb_closed,
};

static void
test_send_limit_and_free(void **state)
{
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	struct migchan ch;
	uint8_t id[16];
	uint16_t port;

	(void)state;
	l = listener(&ls, &port);

	side_init(&I);
	side_init(&R);
	sent_frames = 0;
	I.on_authed = i_authed_send_until_full;
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);
	connect_to(port, id, &I);
	RUN_UNTIL(sent_frames > 0 &&
	    R.data_len == (uint64_t)sent_frames * MIGCHAN_PAYLOAD_MAX, 5000);
	assert_int_equal(sent_rc, -ENOBUFS);
	assert_true((uint64_t)sent_frames * MIGCHAN_PAYLOAD_MAX >=
	    MIG_IO_SEND_MAX);
	assert_true((uint64_t)(sent_frames - 1) * MIGCHAN_PAYLOAD_MAX <=
	    MIG_IO_SEND_MAX);
	assert_int_equal(R.data_bad, 0);
	assert_int_equal(mig_io_bytes(I.io), R.data_len);
	/* Drained, it takes frames again; the target frees itself in
	 * frame() with another frame right behind in its input. */
	R.on_frame = r_free_on_first_frame;
	assert_int_equal(mig_io_send(I.io, MIGCHAN_END, NULL, 0, false), 0);
	assert_int_equal(mig_io_send(I.io, MIGCHAN_READY, NULL, 0, false), 0);
	RUN_UNTIL(I.closed == 1, 5000);
	assert_int_equal(I.err, -EPIPE);
	assert_null(R.io);
	assert_int_equal(R.closed, 0);
	assert_int_equal(R.nframes, sent_frames + 1);

	/* Freed in accepted(): no authed, the initiator sees it close. */
	side_init(&I);
	side_init(&R);
	randombytes_buf(id, sizeof(id));
	assert_int_equal(migchan_init(&ch, MIGCHAN_RESPONDER, id, key, r_sk,
	    i_pk), 0);
	assert_non_null(mig_listener_expect(l, &ch, "127.0.0.1", &free_ops,
	    &R));
	connect_to(port, id, &I);
	RUN_UNTIL(I.closed == 1, 5000);
	assert_int_equal(R.accepted, 1);
	assert_int_equal(R.authed + R.closed, 0);
	assert_int_equal(I.err, -EPIPE);
	mig_listener_free(l);
}

/* ---- the pump_to fd fails; an IPv6 wildcard listener takes IPv4 ---- */

static void
test_pump_to_error_and_v6(void **state)
{
	struct sockaddr_in6 any6;
	struct mig_listener *l;
	struct lstate ls;
	struct side I, R;
	uint8_t id[16], buf[4096];
	int sp[2], p;
	uint16_t port;

	(void)state;
	side_init(&I);
	side_init(&R);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sp), 0);
	close(sp[1]);			/* every write to sp[0] fails */
	R.pump_to_fd = sp[0];
	memset(buf, 0x5a, sizeof(buf));
	randombytes_buf(id, sizeof(id));
	l = listener(&ls, &port);
	(void)expect(l, id, "127.0.0.1", &R);
	connect_to(port, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	assert_int_equal(mig_io_send(I.io, MIGCHAN_DATA, buf, sizeof(buf),
	    false), 0);
	RUN_UNTIL(R.closed == 1 && I.closed == 1, 5000);
	assert_int_equal(R.err, -EIO);
	assert_int_equal(I.err, -EPIPE);
	assert_int_equal(R.nframes, 0);
	close(sp[0]);
	mig_listener_free(l);

	memset(&any6, 0, sizeof(any6));
	any6.sin6_family = AF_INET6;
	any6.sin6_addr = in6addr_any;
	memset(&ls, 0, sizeof(ls));
	l = mig_listener_new(base, (struct sockaddr *)&any6, sizeof(any6),
	    &lops, &ls);
	if (l == NULL) {
		print_message("no IPv6 here (%s): skipped\n", strerror(errno));
		return;
	}
	p = mig_listener_port(l);
	assert_true(p > 0);
	side_init(&I);
	side_init(&R);
	randombytes_buf(id, sizeof(id));
	(void)expect(l, id, "127.0.0.1", &R);
	connect_to((uint16_t)p, id, &I);
	RUN_UNTIL(I.authed == 1 && R.authed == 1, 5000);
	assert_string_equal(mig_io_peer(R.io), "127.0.0.1");
	mig_io_free(I.io);
	mig_io_free(R.io);
	mig_listener_free(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_happy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stranger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_peer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_half_closed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_hello_r, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unexpect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_limit_and_free, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pump_to_error_and_v6,
		    setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		return 1;
	log_init(true, LOG_LEVEL_WARN, "test_migrate_io");
	crypto_box_keypair(i_pk, i_sk);
	crypto_box_keypair(r_pk, r_sk);
	randombytes_buf(key, sizeof(key));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
