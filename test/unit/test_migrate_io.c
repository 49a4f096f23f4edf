/*
 * migrate_io.c on real loopback TCP, both ends on one event_base: the
 * happy path (8 MiB pumped source fd -> target fd, byte for byte, then the
 * END/RECEIVED/GO/DONE frames with their final flags and a graceful
 * finish), a stranger's and a bad HELLO_I, a wrong peer address (which
 * must not use up the id), a replayed id, a byte flipped on the wire by a
 * proxy, the peer closing mid-stream, a refused connect, and both
 * handshake deadlines.
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>

#include "log.h"
#include "migchan.h"
#include "migrate_io.h"

#define BIG	(8u * 1024 * 1024)
#define SMALL	(2u * 1024 * 1024)

static struct event_base *base;
static struct event *watchdog;
static bool timed_out;
static bool (*done)(void);
static uint8_t sk_s[32], pk_s[32], sk_t[32], pk_t[32];
static uint8_t *data;			/* BIG pseudo-random bytes */

/* ---- the loop ---- */

static void
wd_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	timed_out = true;
	event_base_loopexit(base, NULL);
}

static void
check(void)
{
	if (done != NULL && done())
		event_base_loopexit(base, NULL);
}

/* Runs the loop until done() or MS pass (a failure). */
static void
run(bool (*until)(void), unsigned ms)
{
	struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };

	done = until;
	timed_out = false;
	if (!until()) {
		evtimer_add(watchdog, &tv);
		event_base_dispatch(base);
		evtimer_del(watchdog);
	}
	done = NULL;
	assert_false(timed_out);
	assert_true(until());
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- channels and one side's record ---- */

static void
chans(const uint8_t id[MIGCHAN_ID_LEN], const uint8_t k[MIGCHAN_KEY_LEN],
    struct migchan *ci, struct migchan *cr)
{
	if (ci != NULL)
		assert_int_equal(migchan_init(ci, MIGCHAN_INITIATOR, id, k, sk_s,
		    pk_t), 0);
	if (cr != NULL)
		assert_int_equal(migchan_init(cr, MIGCHAN_RESPONDER, id, k, sk_t,
		    pk_s), 0);
}

struct side {
	struct mig_io *io;
	int accepted, authed, pumped;
	bool closed, finished, script;
	int err;
	enum migchan_type types[16];
	bool finals[16];
	size_t nframes;
	uint8_t last[8];
	size_t lastlen;
	uint64_t bytes_at;		/* source: at pumped; target: at END */
	int to_fd, from_fd;
};

static void
side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	s->to_fd = s->from_fd = -1;
}

static void
record(struct side *s, enum migchan_type type, const uint8_t *p,
    size_t len, bool final)
{
	if (s->nframes < 16) {
		s->types[s->nframes] = type;
		s->finals[s->nframes] = final;
		s->nframes++;
	}
	s->lastlen = len < sizeof(s->last) ? len : sizeof(s->last);
	memcpy(s->last, p, s->lastlen);
}

static void
on_closed(void *arg, int err)
{
	struct side *s = arg;

	assert_false(s->closed);
	s->closed = true;
	s->err = err;
	check();
}

/* Target: pump_to as soon as it has the io; READY once authed. */
static void
t_accepted(void *arg, struct mig_io *io)
{
	struct side *s = arg;

	assert_int_equal(s->authed, 0);
	s->io = io;
	s->accepted++;
	if (s->to_fd >= 0)
		assert_int_equal(mig_io_pump_to(io, s->to_fd), 0);
}

static void
t_authed(void *arg)
{
	struct side *s = arg;

	assert_int_equal(s->accepted, 1);
	s->authed++;
	if (s->script)
		assert_int_equal(mig_io_send(s->io, MIGCHAN_READY, NULL, 0,
		    false), 0);
	check();
}

static void
t_frame(void *arg, enum migchan_type type, const uint8_t *p, size_t len,
    bool final)
{
	static const uint8_t domid[4] = { 0, 0, 0, 7 };
	struct side *s = arg;

	record(s, type, p, len, final);
	if (s->script && type == MIGCHAN_END) {
		/* Delivered only once every DATA byte reached the fd. */
		s->bytes_at = mig_io_bytes(s->io);
		assert_int_equal(mig_io_send(s->io, MIGCHAN_RECEIVED, NULL, 0,
		    false), 0);
	} else if (s->script && type == MIGCHAN_GO) {
		assert_int_equal(mig_io_send(s->io, MIGCHAN_DONE, domid,
		    sizeof(domid), true), 0);
		mig_io_finish(s->io);
		s->io = NULL;
		s->finished = true;
	}
	check();
}

static const struct mig_io_ops t_ops = {
	.accepted = t_accepted,
	.authed = t_authed,
	.frame = t_frame,
	.closed = on_closed,
};

/* Source: pump on READY, END when pumped, GO on RECEIVED, done on DONE. */
static void
s_authed(void *arg)
{
	struct side *s = arg;

	s->authed++;
	check();
}

static void
s_frame(void *arg, enum migchan_type type, const uint8_t *p, size_t len,
    bool final)
{
	struct side *s = arg;

	record(s, type, p, len, final);
	if (s->script && type == MIGCHAN_READY) {
		assert_int_equal(mig_io_pump_from(s->io, s->from_fd), 0);
		assert_int_equal(mig_io_pump_from(s->io, s->from_fd), -EBUSY);
	} else if (s->script && type == MIGCHAN_RECEIVED) {
		assert_int_equal(mig_io_send(s->io, MIGCHAN_GO, NULL, 0, true),
		    0);
		/* Nothing after this side's FINAL. */
		assert_int_equal(mig_io_send(s->io, MIGCHAN_ABORT,
		    (const uint8_t *)"x", 1, false), -EINVAL);
	} else if (s->script && type == MIGCHAN_DONE) {
		mig_io_finish(s->io);
		s->io = NULL;
		s->finished = true;
	}
	check();
}

static void
s_pumped(void *arg)
{
	struct side *s = arg;

	s->pumped++;
	s->bytes_at = mig_io_bytes(s->io);
	if (s->script)
		assert_int_equal(mig_io_send(s->io, MIGCHAN_END, NULL, 0,
		    false), 0);
	check();
}

static const struct mig_io_ops s_ops = {
	.authed = s_authed,
	.frame = s_frame,
	.pumped = s_pumped,
	.closed = on_closed,
};

/* ---- the listener ---- */

struct refusals {
	int n;
	char peer[64], why[64];
};
static struct refusals ref;

static void
on_refused(void *arg, const char *peer, const char *why)
{
	struct refusals *r = arg;

	r->n++;
	snprintf(r->peer, sizeof(r->peer), "%s", peer);
	snprintf(r->why, sizeof(r->why), "%s", why);
	check();
}

static const struct mig_listener_ops l_ops = { .refused = on_refused };

static void
sin_of(struct sockaddr_in *sin, const char *ip, int port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
}

static struct mig_listener *
lst_open(struct sockaddr_in *sin)
{
	struct mig_listener *l;
	int port;

	memset(&ref, 0, sizeof(ref));
	sin_of(sin, "127.0.0.1", 0);
	l = mig_listener_new(base, (struct sockaddr *)sin, sizeof(*sin),
	    &l_ops, &ref);
	assert_non_null(l);
	port = mig_listener_port(l);
	assert_true(port > 0);
	sin->sin_port = htons((uint16_t)port);
	return l;
}

static struct mig_io *
dial(const struct sockaddr_in *sin, struct migchan *ci, struct side *s)
{
	struct mig_io *io;

	io = mig_io_connect(base, (const struct sockaddr *)sin, sizeof(*sin),
	    ci, &s_ops, s);
	assert_non_null(io);
	/* The caller's copy is wiped. */
	assert_true(sodium_is_zero((const uint8_t *)ci, sizeof(*ci)));
	s->io = io;
	return io;
}

/* ---- the bytes: a feeder into the source's fd, a reader of the target's */

struct stream {
	int feed[2], sink[2];
	struct event *fev, *rev;
	struct event *tick;		/* a slow reader: a few reads a tick */
	size_t total, wr, rd;
	bool bad;
	struct side *kill;		/* freed once KILL_AT bytes arrived */
	size_t kill_at;
};
static uint8_t rbuf[65536];

static void
feed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	size_t n = st->total - st->wr;
	ssize_t w;

	(void)what;
	if (n > 65536)
		n = 65536;
	w = write(fd, data + st->wr, n);
	if (w < 0) {
		assert_true(errno == EAGAIN || errno == EPIPE);
		return;
	}
	st->wr += (size_t)w;
	if (st->wr == st->total) {
		event_free(st->fev);
		st->fev = NULL;
		close(st->feed[1]);	/* EOF for pump_from */
		st->feed[1] = -1;
	}
}

static void
sink_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;
	ssize_t n;

	(void)what;
	n = read(fd, rbuf, sizeof(rbuf));
	if (n <= 0)
		return;
	if (st->rd + (size_t)n > st->total ||
	    memcmp(rbuf, data + st->rd, (size_t)n) != 0)
		st->bad = true;
	st->rd += (size_t)n;
	if (st->kill != NULL && st->rd >= st->kill_at) {
		mig_io_free(st->kill->io);
		st->kill->io = NULL;
		st->kill = NULL;
	}
	check();
}

/* The slow reader: the target's fd falls behind, so pump_to must stop
 * reading the socket and hold END back until the DATA is out. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *st = arg;

	(void)fd;
	for (int i = 0; i < 4; i++)
		sink_cb(st->sink[1], what, st);
}

static void
stream_slow(struct stream *st)
{
	struct timeval tv = { 0, 5000 };

	event_del(st->rev);
	st->tick = event_new(base, -1, EV_PERSIST, tick_cb, st);
	assert_non_null(st->tick);
	event_add(st->tick, &tv);
}

static void
stream_open(struct stream *st, size_t total, struct side *src,
    struct side *tgt)
{
	memset(st, 0, sizeof(*st));
	st->total = total;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    st->feed), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    st->sink), 0);
	st->fev = event_new(base, st->feed[1], EV_WRITE | EV_PERSIST, feed_cb,
	    st);
	st->rev = event_new(base, st->sink[1], EV_READ | EV_PERSIST, sink_cb,
	    st);
	assert_non_null(st->fev);
	assert_non_null(st->rev);
	event_add(st->fev, NULL);
	event_add(st->rev, NULL);
	src->from_fd = st->feed[0];
	tgt->to_fd = st->sink[0];
}

static void
stream_close(struct stream *st)
{
	if (st->fev != NULL)
		event_free(st->fev);
	if (st->tick != NULL)
		event_free(st->tick);
	event_free(st->rev);
	for (int i = 0; i < 2; i++) {
		if (st->feed[i] >= 0)
			close(st->feed[i]);
		close(st->sink[i]);
	}
}

/* ---- a raw client: connects (blocking), sends what it is told ---- */

struct raw {
	int fd;
	struct event *ev;
	bool closed;
	size_t got;
};

static void
raw_cb(evutil_socket_t fd, short what, void *arg)
{
	struct raw *r = arg;
	uint8_t b[256];
	ssize_t n;

	(void)what;
	n = read(fd, b, sizeof(b));
	if (n > 0) {
		r->got += (size_t)n;
		return;
	}
	if (n < 0 && errno == EAGAIN)
		return;
	r->closed = true;
	event_del(r->ev);
	check();
}

static void
raw_open(struct raw *r, const char *bind_ip, const struct sockaddr_in *to,
    const void *bytes, size_t len)
{
	struct sockaddr_in me;

	memset(r, 0, sizeof(*r));
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	if (bind_ip != NULL) {
		sin_of(&me, bind_ip, 0);
		assert_int_equal(bind(r->fd, (struct sockaddr *)&me,
		    sizeof(me)), 0);
	}
	assert_int_equal(connect(r->fd, (const struct sockaddr *)to,
	    sizeof(*to)), 0);
	if (len > 0)
		assert_int_equal(write(r->fd, bytes, len), (ssize_t)len);
	assert_int_equal(fcntl(r->fd, F_SETFL, O_NONBLOCK), 0);
	r->ev = event_new(base, r->fd, EV_READ | EV_PERSIST, raw_cb, r);
	assert_non_null(r->ev);
	event_add(r->ev, NULL);
}

static void
raw_close(struct raw *r)
{
	event_free(r->ev);
	close(r->fd);
}

/* A genuine HELLO_I for ID. */
static void
hello_for(const uint8_t id[MIGCHAN_ID_LEN], const uint8_t k[MIGCHAN_KEY_LEN],
    uint8_t out[MIGCHAN_HELLO_I_LEN])
{
	struct migchan ci;

	chans(id, k, &ci, NULL);
	assert_int_equal(migchan_hello_i(&ci, out), 0);
	migchan_dispose(&ci);
}

/* ---- the tests ---- */

static struct side src, tgt;
static struct stream st;
static struct raw raw;

static bool
happy_done(void)
{
	return src.finished && tgt.finished && st.rd == st.total;
}

static void
test_happy(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	struct migchan ci, cr;
	struct mig_listener *l;
	struct sockaddr_in sin;
	struct mig_expect *e;
	double t0;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&src);
	side_init(&tgt);
	src.script = tgt.script = true;
	l = lst_open(&sin);
	stream_open(&st, BIG, &src, &tgt);
	stream_slow(&st);
	chans(id, k, &ci, &cr);
	e = mig_listener_expect(l, &cr, "127.0.0.1", &t_ops, &tgt);
	assert_non_null(e);
	assert_true(sodium_is_zero((const uint8_t *)&cr, sizeof(cr)));
	dial(&sin, &ci, &src);
	/* Nothing goes before the peer is authenticated. */
	assert_int_equal(mig_io_send(src.io, MIGCHAN_READY, NULL, 0, false),
	    -ENOTCONN);
	assert_int_equal(mig_io_pump_from(src.io, st.feed[0]), -ENOTCONN);

	run(happy_done, 8000);
	assert_false(st.bad);
	assert_int_equal(st.rd, BIG);
	assert_int_equal(src.authed, 1);
	assert_int_equal(tgt.authed, 1);
	assert_int_equal(src.pumped, 1);
	assert_int_equal(src.bytes_at, BIG);
	assert_int_equal(tgt.bytes_at, BIG);
	/* Frames in order with their final flags, no DATA on the target. */
	assert_int_equal(tgt.nframes, 2);
	assert_int_equal(tgt.types[0], MIGCHAN_END);
	assert_false(tgt.finals[0]);
	assert_int_equal(tgt.types[1], MIGCHAN_GO);
	assert_true(tgt.finals[1]);
	assert_int_equal(src.nframes, 3);
	assert_int_equal(src.types[0], MIGCHAN_READY);
	assert_false(src.finals[0]);
	assert_int_equal(src.types[1], MIGCHAN_RECEIVED);
	assert_false(src.finals[1]);
	assert_int_equal(src.types[2], MIGCHAN_DONE);
	assert_true(src.finals[2]);
	assert_int_equal(src.lastlen, 4);
	assert_memory_equal(src.last, "\0\0\0\7", 4);
	assert_false(src.closed);
	assert_false(tgt.closed);

	/* Both finishing ios close each other gracefully and free
	 * themselves: the loop runs dry well before MIG_IO_FINISH_MS. */
	mig_listener_free(l);
	stream_close(&st);
	t0 = now_s();
	assert_int_equal(event_base_dispatch(base), 1);
	assert_true(now_s() - t0 < 2.0);
}

static bool
refused_and_closed(void)
{
	return ref.n == 1 && raw.closed;
}

static void
test_stranger(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], other[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	uint8_t hello[MIGCHAN_HELLO_I_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin;
	struct migchan cr;
	struct mig_expect *e;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(other, sizeof(other));
	randombytes_buf(k, sizeof(k));
	side_init(&tgt);
	l = lst_open(&sin);
	chans(id, k, NULL, &cr);
	e = mig_listener_expect(l, &cr, "127.0.0.1", &t_ops, &tgt);
	assert_non_null(e);

	/* A well-formed HELLO_I for an id nobody expects. */
	hello_for(other, k, hello);
	raw_open(&raw, NULL, &sin, hello, sizeof(hello));
	run(refused_and_closed, 3000);
	assert_string_equal(ref.why, "unknown migration id");
	assert_string_equal(ref.peer, "127.0.0.1");
	assert_int_equal(raw.got, 0);		/* no HELLO_R */
	raw_close(&raw);

	/* The expected id, but version 2: no negotiation. */
	hello_for(id, k, hello);
	hello[4] = 2;
	ref.n = 0;
	raw_open(&raw, NULL, &sin, hello, sizeof(hello));
	run(refused_and_closed, 3000);
	assert_string_equal(ref.why, "bad hello");
	assert_int_equal(raw.got, 0);
	raw_close(&raw);

	/* Half a hello, then EOF. */
	ref.n = 0;
	raw_open(&raw, NULL, &sin, hello, 20);
	shutdown(raw.fd, SHUT_WR);
	run(refused_and_closed, 3000);
	assert_string_equal(ref.why, "closed during handshake");
	raw_close(&raw);
	assert_int_equal(tgt.accepted, 0);

	mig_listener_unexpect(e);
	mig_listener_unexpect(NULL);
	/* Cancelled, not used: the id may be expected again. */
	chans(id, k, NULL, &cr);
	e = mig_listener_expect(l, &cr, "::ffff:127.0.0.1", &t_ops, &tgt);
	assert_non_null(e);
	/* ... but not twice, and not from a name. */
	chans(id, k, NULL, &cr);
	assert_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops, &tgt));
	assert_int_equal(errno, EEXIST);
	chans(other, k, NULL, &cr);
	assert_null(mig_listener_expect(l, &cr, "localhost", &t_ops, &tgt));
	assert_int_equal(errno, EINVAL);
	assert_true(sodium_is_zero((const uint8_t *)&cr, sizeof(cr)));
	mig_listener_free(l);			/* frees E too */
}

static bool
both_authed(void)
{
	return src.authed == 1 && tgt.authed == 1;
}

static void
test_wrong_peer(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	uint8_t hello[MIGCHAN_HELLO_I_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin;
	struct migchan ci, cr;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&src);
	side_init(&tgt);
	l = lst_open(&sin);
	chans(id, k, NULL, &cr);
	/* The peer as IPv6 text: compared as an address. */
	assert_non_null(mig_listener_expect(l, &cr, "::ffff:127.0.0.1",
	    &t_ops, &tgt));

	/* The right id and K, but from 127.0.0.2. */
	hello_for(id, k, hello);
	raw_open(&raw, "127.0.0.2", &sin, hello, sizeof(hello));
	run(refused_and_closed, 3000);
	assert_string_equal(ref.why, "wrong peer address");
	assert_string_equal(ref.peer, "127.0.0.2");
	assert_int_equal(raw.got, 0);
	raw_close(&raw);

	/* That did not use up the id: the real source gets through. */
	chans(id, k, &ci, NULL);
	dial(&sin, &ci, &src);
	run(both_authed, 3000);
	assert_int_equal(ref.n, 1);
	assert_non_null(tgt.io);
	assert_string_equal(mig_io_peer(tgt.io), "127.0.0.1");
	mig_io_free(src.io);
	mig_io_free(tgt.io);
	mig_listener_free(l);
}

static struct side src2;

static bool
replay_refused(void)
{
	return ref.n == 1 && src2.closed;
}

static void
test_replay(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin;
	struct migchan ci, cr;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&src);
	side_init(&src2);
	side_init(&tgt);
	l = lst_open(&sin);
	chans(id, k, &ci, &cr);
	assert_non_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops,
	    &tgt));
	dial(&sin, &ci, &src);
	run(both_authed, 3000);

	/* Same id, same K, a fresh initiator: refused before HELLO_R. */
	chans(id, k, &ci, NULL);
	dial(&sin, &ci, &src2);
	run(replay_refused, 3000);
	assert_string_equal(ref.why, "id already used");
	assert_int_equal(src2.err, -EPIPE);
	assert_int_equal(src2.authed, 0);
	assert_int_equal(tgt.accepted, 1);
	/* hvd cannot hand the used id out again either. */
	chans(id, k, NULL, &cr);
	assert_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops, &tgt));
	assert_int_equal(errno, EEXIST);
	/* The first connection is unharmed. */
	assert_false(src.closed);
	assert_false(tgt.closed);
	mig_io_free(src2.io);
	mig_io_free(src.io);
	mig_io_free(tgt.io);
	mig_listener_free(l);
}

/* A TCP proxy that flips one byte of the initiator's stream. */
struct proxy {
	struct evconnlistener *lev;
	struct bufferevent *a, *b;	/* a: the initiator's side */
	struct sockaddr_in to;
	uint64_t i2r, flip_at;
	bool flipped;
};
static struct proxy px;

static void
px_close(struct proxy *p)
{
	if (p->a != NULL)
		bufferevent_free(p->a);
	if (p->b != NULL)
		bufferevent_free(p->b);
	p->a = p->b = NULL;
}

static void
px_read_a(struct bufferevent *bev, void *arg)
{
	struct proxy *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	int r;

	while ((r = evbuffer_remove(in, rbuf, sizeof(rbuf))) > 0) {
		n = (size_t)r;
		if (!p->flipped && p->i2r + n > p->flip_at) {
			rbuf[p->flip_at - p->i2r] ^= 0x01;
			p->flipped = true;
		}
		p->i2r += n;
		bufferevent_write(p->b, rbuf, n);
	}
}

static void
px_read_b(struct bufferevent *bev, void *arg)
{
	struct proxy *p = arg;

	bufferevent_write_buffer(p->a, bufferevent_get_input(bev));
}

static void
px_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		px_close(arg);
}

static void
px_accept(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct proxy *p = arg;

	(void)lev;
	(void)sa;
	(void)len;
	assert_null(p->a);
	p->a = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	p->b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	assert_non_null(p->a);
	assert_non_null(p->b);
	bufferevent_setcb(p->a, px_read_a, NULL, px_event, p);
	bufferevent_setcb(p->b, px_read_b, NULL, px_event, p);
	assert_int_equal(bufferevent_socket_connect(p->b,
	    (struct sockaddr *)&p->to, sizeof(p->to)), 0);
	bufferevent_enable(p->a, EV_READ | EV_WRITE);
	bufferevent_enable(p->b, EV_READ | EV_WRITE);
}

static bool
both_closed(void)
{
	return src.closed && tgt.closed;
}

static void
test_tampered(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin, psin;
	struct migchan ci, cr;
	socklen_t plen = sizeof(psin);
	/* Handshake and AUTH, then DATA frames of 65558 bytes each. */
	const uint64_t pre = MIGCHAN_HELLO_I_LEN + MIGCHAN_HEADER_LEN +
	    MIGCHAN_ID_LEN + MIGCHAN_OVERHEAD;
	const uint64_t frame = MIGCHAN_PAYLOAD_MAX + MIGCHAN_OVERHEAD;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&src);
	side_init(&tgt);
	src.script = tgt.script = true;
	l = lst_open(&sin);
	stream_open(&st, SMALL, &src, &tgt);
	memset(&px, 0, sizeof(px));
	px.to = sin;
	/* A ciphertext byte in the middle of the fourth DATA frame. */
	px.flip_at = pre + 3 * frame + 1000;
	sin_of(&psin, "127.0.0.1", 0);
	px.lev = evconnlistener_new_bind(base, px_accept, &px,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4,
	    (struct sockaddr *)&psin, sizeof(psin));
	assert_non_null(px.lev);
	assert_int_equal(getsockname(evconnlistener_get_fd(px.lev),
	    (struct sockaddr *)&psin, &plen), 0);

	chans(id, k, &ci, &cr);
	assert_non_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops,
	    &tgt));
	dial(&psin, &ci, &src);
	run(both_closed, 5000);
	assert_true(px.flipped);
	assert_int_equal(tgt.authed, 1);
	assert_int_equal(tgt.err, -EBADMSG);
	/* The cut reached the source as an EOF. */
	assert_int_equal(src.err, -EPIPE);
	/* Nothing of the bad frame or after it reached the fd. */
	assert_true(mig_io_bytes(tgt.io) <= 3 * MIGCHAN_PAYLOAD_MAX);
	assert_true(mig_io_bytes(src.io) > 3 * MIGCHAN_PAYLOAD_MAX);
	assert_false(st.bad);
	assert_true(st.rd <= 3 * MIGCHAN_PAYLOAD_MAX);
	assert_int_equal(tgt.nframes, 0);
	/* A closed io refuses work. */
	assert_int_equal(mig_io_send(tgt.io, MIGCHAN_ABORT,
	    (const uint8_t *)"x", 1, false), -EPIPE);
	mig_io_free(src.io);
	mig_io_finish(tgt.io);			/* on a closed io: a free */
	px_close(&px);
	evconnlistener_free(px.lev);
	stream_close(&st);
	mig_listener_free(l);
}

static bool
tgt_closed(void)
{
	return tgt.closed;
}

static bool
src_closed(void)
{
	return src.closed;
}

static void
test_peer_gone(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin;
	struct migchan ci, cr;
	struct mig_io *io;
	int fd;
	socklen_t len = sizeof(sin);

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&src);
	side_init(&tgt);
	src.script = tgt.script = true;
	l = lst_open(&sin);
	stream_open(&st, BIG, &src, &tgt);
	st.kill = &src;
	st.kill_at = BIG / 32;
	chans(id, k, &ci, &cr);
	assert_non_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops,
	    &tgt));
	dial(&sin, &ci, &src);
	run(tgt_closed, 5000);
	/* The source vanished early: EOF before FINAL. */
	assert_null(st.kill);
	assert_int_equal(tgt.err, -EPIPE);
	assert_int_equal(tgt.nframes, 0);
	assert_false(st.bad);
	assert_true(st.rd < BIG);
	mig_io_free(tgt.io);
	stream_close(&st);
	mig_listener_free(l);

	/* A port nobody listens on. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sin_of(&sin, "127.0.0.1", 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	side_init(&src);
	chans(id, k, &ci, NULL);
	io = mig_io_connect(base, (struct sockaddr *)&sin, sizeof(sin), &ci,
	    &s_ops, &src);
	if (io == NULL) {
		assert_int_equal(errno, ECONNREFUSED);
	} else {
		src.io = io;
		run(src_closed, 3000);
		assert_int_equal(src.err, -EPIPE);
		mig_io_free(io);
	}
	assert_true(sodium_is_zero((const uint8_t *)&ci, sizeof(ci)));
}

static void
test_timeout(void **state)
{
	uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	struct mig_listener *l;
	struct sockaddr_in sin;
	uint8_t hello[MIGCHAN_HELLO_I_LEN];
	struct migchan ci, cr;
	socklen_t len = sizeof(sin);
	double t0, dt;
	int mute;

	(void)state;
	randombytes_buf(id, sizeof(id));
	randombytes_buf(k, sizeof(k));
	side_init(&tgt);
	l = lst_open(&sin);
	assert_int_equal(mig_listener_set_timeout_ms(l, 0), -EINVAL);
	assert_int_equal(mig_listener_set_timeout_ms(l, 300), 0);
	chans(id, k, NULL, &cr);
	assert_non_null(mig_listener_expect(l, &cr, "127.0.0.1", &t_ops,
	    &tgt));
	/* Connects and says nothing. */
	t0 = now_s();
	raw_open(&raw, NULL, &sin, NULL, 0);
	run(refused_and_closed, 3000);
	dt = now_s() - t0;
	assert_string_equal(ref.why, "handshake timeout");
	assert_true(dt >= 0.25 && dt < 2.0);
	raw_close(&raw);

	/* A genuine HELLO_I from the right address, then silence: it got
	 * HELLO_R, timed out, and must not have used up the id. */
	hello_for(id, k, hello);
	ref.n = 0;
	raw_open(&raw, NULL, &sin, hello, sizeof(hello));
	run(refused_and_closed, 3000);
	assert_string_equal(ref.why, "handshake timeout");
	assert_int_equal(raw.got, MIGCHAN_HELLO_R_LEN);
	raw_close(&raw);
	side_init(&src);
	chans(id, k, &ci, NULL);
	dial(&sin, &ci, &src);
	run(both_authed, 3000);
	mig_io_free(src.io);
	mig_io_free(tgt.io);
	mig_listener_free(l);

	/* The initiator's side: a listener that never answers. */
	mute = socket(AF_INET, SOCK_STREAM, 0);
	sin_of(&sin, "127.0.0.1", 0);
	assert_int_equal(bind(mute, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(mute, 4), 0);
	assert_int_equal(getsockname(mute, (struct sockaddr *)&sin, &len), 0);
	side_init(&src);
	chans(id, k, &ci, NULL);
	dial(&sin, &ci, &src);
	assert_int_equal(mig_io_set_timeout_ms(src.io, 300), 0);
	t0 = now_s();
	run(src_closed, 3000);
	dt = now_s() - t0;
	assert_int_equal(src.err, -ETIMEDOUT);
	assert_true(dt >= 0.25 && dt < 2.0);
	mig_io_free(src.io);
	close(mute);
}

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	log_init(true, LOG_LEVEL_WARN, "test_migrate_io");
	base = event_base_new();
	watchdog = evtimer_new(base, wd_cb, NULL);
	data = malloc(BIG);
	if (base == NULL || watchdog == NULL || data == NULL)
		return -1;
	randombytes_buf(sk_s, sizeof(sk_s));
	randombytes_buf(sk_t, sizeof(sk_t));
	crypto_scalarmult_base(pk_s, sk_s);
	crypto_scalarmult_base(pk_t, sk_t);
	{
		static const uint8_t seed[randombytes_SEEDBYTES] = { 42 };

		randombytes_buf_deterministic(data, BIG, seed);
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	event_free(watchdog);
	event_base_free(base);
	free(data);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy),
		cmocka_unit_test(test_stranger),
		cmocka_unit_test(test_wrong_peer),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_peer_gone),
		cmocka_unit_test(test_timeout),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
