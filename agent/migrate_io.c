/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_io.c: the migration channel's socket I/O (migrate_io.h) on one
 * bufferevent per connection, and the target's listener.
 *
 * A connection goes through phases, each waiting for a fixed number of
 * bytes or one whole frame from the socket's input:
 *   initiator  I_HELLO (HELLO_I queued, wants HELLO_R) -> AUTH -> OPEN
 *   responder  R_HELLO (wants HELLO_I) -> R_HEADER -> AUTH -> OPEN
 * then FINISHING (mig_io_finish) or DEAD (closed reported).  A responder
 * connection belongs to its listener (io->l set) until the initiator's AUTH
 * opens; only then does it get the expectation's ops and reach its owner.
 *
 * Invariants:
 * - Memory per connection is bounded: one frame and one plaintext buffer
 *   allocated with it (a second once DATA_LZ4 is used), the socket's
 *   input capped by a read watermark, its output by MIG_IO_HIWAT
 *   (pump_from) and MIG_IO_SEND_MAX (sends), the bytes waiting for the
 *   pump_to fd by MIG_IO_HIWAT plus one frame.  Every loop over the
 *   peer's data is bounded by those buffers; pump_from also takes, and
 *   pump_to's side hands its fd, at most MIG_IO_HIWAT raw bytes a turn,
 *   however well they compress.
 * - A frame is cut out only whole (migchan_frame_len, then migchan_open
 *   on exactly that many bytes); a bad length closes before the body.
 * - With pump_to set, at most one non-DATA frame is held back, and no
 *   frame after it is opened until it is delivered.
 * - Compression is this file's alone: every DATA it seals goes as DATA_LZ4
 *   when the channel allows it (migchan_lz4: the target's READY offered
 *   it) and the block pays (migrate_lz4.c); every DATA_LZ4 it opens is
 *   decoded here and is DATA from then on, so the owner and the pump_to
 *   fd only ever see raw stream bytes, and mig_io_bytes() counts those.
 *   A block that does not decode closes the connection (-EPROTO).
 * - An owner callback runs with io->busy raised; mig_io_free() inside one
 *   only marks the io doomed and the outermost caller frees it, so no
 *   code touches a freed io.  Callbacks never run from an API call.
 * - A connection that fails in its handshake never consumes the id.
 *
 * Must never: block, log K, a key, an id or a payload, close a pump fd,
 * send HELLO_R to a HELLO_I it refused, or deliver anything of a frame that
 * failed to open.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>

#include "log.h"
#include "migrate_io.h"
#include "migrate_lz4.h"
#include "sockaddr.h"

/* The socket's input stops being read above this: a few frames. */
#define IN_HIWAT	(4 * MIGCHAN_FRAME_MAX)
/* Reads and writes per callback, so 8 MiB is not 512 wake-ups. */
#define IO_CHUNK	(2 * MIGCHAN_FRAME_MAX)
#define LISTEN_BACKLOG	16

enum io_phase {
	IO_I_HELLO,	/* initiator: HELLO_I queued, waiting for HELLO_R */
	IO_R_HELLO,	/* responder: waiting for HELLO_I */
	IO_R_HEADER,	/* responder: HELLO_R sent, waiting for the header */
	IO_AUTH,	/* own AUTH queued, waiting for the peer's */
	IO_OPEN,	/* authed: frames both ways */
	IO_FINISHING,	/* mig_io_finish(): flushing, no callbacks */
	IO_DEAD,	/* closed reported or being freed: nothing more */
};

struct mig_io {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;		/* handshake deadline, then finish's */
	enum io_phase phase;
	struct migchan ch;
	const struct mig_io_ops *ops;
	void *arg;
	struct in6_addr addr;		/* the peer, IPv4 as v4-mapped */
	char peer[SA_STRLEN];

	/* Responder, until handed over. */
	struct mig_listener *l;
	struct mig_expect *e;		/* the expectation HELLO_I matched */
	TAILQ_ENTRY(mig_io) entry;

	uint8_t *frame;			/* MIGCHAN_FRAME_MAX: one frame */
	uint8_t *pt;			/* MIGCHAN_PAYLOAD_MAX: its payload */
	uint8_t *lz;			/* MIGCHAN_PAYLOAD_MAX, on first use: a
					 * block packed or decoded */

	int from_fd;			/* pump_from */
	struct event *from_ev;
	uint8_t *from_buf;
	mig_io_tap_fn *tap;		/* sees what from_fd gave */
	void *tap_arg;

	int to_fd;			/* pump_to */
	struct event *to_ev;
	struct evbuffer *to_buf;
	bool held, held_final;		/* a frame waiting for to_buf */
	enum migchan_type held_type;
	size_t held_len;

	bool eof, shut, doomed;
	unsigned busy;
	uint64_t bytes;			/* raw stream bytes, mig_io_bytes() */
	uint64_t wire;			/* their frames, mig_io_wire_bytes() */
};

struct mig_expect {
	struct mig_listener *l;
	TAILQ_ENTRY(mig_expect) entry;
	struct migchan ch;		/* template: each attempt gets a copy */
	struct in6_addr peer;
	const struct mig_io_ops *ops;
	void *arg;
};

struct mig_listener {
	struct event_base *base;
	struct evconnlistener *lev;
	const struct mig_listener_ops *ops;
	void *arg;
	unsigned timeout_ms;
	TAILQ_HEAD(, mig_expect) expects;
	TAILQ_HEAD(, mig_io) pending;
	unsigned npending;
	uint8_t used[MIG_LISTENER_USED_MAX][MIGCHAN_ID_LEN];
	unsigned nused, used_next;
};

static void io_process(struct mig_io *io);
static void io_destroy(struct mig_io *io);
static void lst_refuse(struct mig_io *io, const char *why);
static void lst_handover(struct mig_io *io);

static void
ms_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (long)(ms % 1000) * 1000;
}

/* The address of SA as a v4-mapped or plain IPv6 address. */
static int
sa_in6(const struct sockaddr *sa, struct in6_addr *a)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		memset(a, 0, sizeof(*a));
		a->s6_addr[10] = a->s6_addr[11] = 0xff;
		memcpy(&a->s6_addr[12], &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		*a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* Numeric text to the same form as sa_in6(). */
static int
text_in6(const char *s, struct in6_addr *a)
{
	struct in_addr v4;

	if (inet_pton(AF_INET, s, &v4) == 1) {
		memset(a, 0, sizeof(*a));
		a->s6_addr[10] = a->s6_addr[11] = 0xff;
		memcpy(&a->s6_addr[12], &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, s, a) == 1 ? 0 : -EINVAL;
}

static void
io_enter(struct mig_io *io)
{
	io->busy++;
}

/* After an owner callback: false when IO is gone or must not go on. */
static bool
io_leave(struct mig_io *io)
{
	if (--io->busy == 0 && io->doomed) {
		io_destroy(io);
		return false;
	}
	return !io->doomed;
}

/* Quiets every event of IO; nothing of it fires after this. */
static void
io_stop(struct mig_io *io)
{
	bufferevent_disable(io->bev, EV_READ | EV_WRITE);
	evtimer_del(io->timer);
	if (io->from_ev != NULL)
		event_del(io->from_ev);
	if (io->to_ev != NULL)
		event_del(io->to_ev);
}

static void
pump_drop(struct mig_io *io)
{
	if (io->from_ev != NULL)
		event_free(io->from_ev);
	io->from_ev = NULL;
	io->from_fd = -1;
	if (io->to_ev != NULL)
		event_free(io->to_ev);
	io->to_ev = NULL;
	if (io->to_buf != NULL)
		evbuffer_free(io->to_buf);
	io->to_buf = NULL;
	io->to_fd = -1;
	io->held = false;
}

static void
io_destroy(struct mig_io *io)
{
	if (io->l != NULL) {
		TAILQ_REMOVE(&io->l->pending, io, entry);
		io->l->npending--;
	}
	pump_drop(io);
	if (io->bev != NULL)
		bufferevent_free(io->bev);	/* closes the socket */
	if (io->timer != NULL)
		event_free(io->timer);
	migchan_dispose(&io->ch);
	if (io->pt != NULL) {
		sodium_memzero(io->pt, MIGCHAN_PAYLOAD_MAX);
		free(io->pt);
	}
	if (io->from_buf != NULL) {
		sodium_memzero(io->from_buf, MIGCHAN_PAYLOAD_MAX);
		free(io->from_buf);
	}
	if (io->lz != NULL) {
		sodium_memzero(io->lz, MIGCHAN_PAYLOAD_MAX);
		free(io->lz);
	}
	free(io->frame);
	free(io);
}

/*
 * The connection failed: a responder's still in its listener is refused
 * with WHY, anyone else's owner hears closed(ERR).  IO may be gone after.
 */
static void
io_fail(struct mig_io *io, int err, const char *why)
{
	if (io->l != NULL) {
		lst_refuse(io, why);
		return;
	}
	io_stop(io);
	if (io->phase == IO_FINISHING || io->ops == NULL) {
		mig_io_free(io);
		return;
	}
	io->phase = IO_DEAD;
	/* The peer hears of it now, not when the owner gets round to free. */
	(void)shutdown(bufferevent_getfd(io->bev), SHUT_RDWR);
	log_debug("migration channel to %s closed: %s", io->peer,
	    err == 0 ? "done" : strerror(-err));
	io_enter(io);
	io->ops->closed(io->arg, err);
	(void)io_leave(io);
}

/* Seals one frame straight into the socket's output. */
static int
io_seal(struct mig_io *io, enum migchan_type type, const uint8_t *p,
    size_t len, bool final)
{
	struct evbuffer *out = bufferevent_get_output(io->bev);
	struct evbuffer_iovec v;
	ssize_t n;

	if (len > MIGCHAN_PAYLOAD_MAX)
		return -EMSGSIZE;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(len + MIGCHAN_OVERHEAD),
	    &v, 1) != 1)
		return -ENOMEM;
	/* Space reserved but not committed is simply unused. */
	if ((n = migchan_seal(&io->ch, type, p, len, final, v.iov_base,
	    v.iov_len)) < 0)
		return (int)n;
	v.iov_len = (size_t)n;
	if (evbuffer_commit_space(out, &v, 1) != 0)
		return -ENOMEM;
	if (type == MIGCHAN_DATA || type == MIGCHAN_DATA_LZ4)
		io->wire += (uint64_t)n;
	return 0;
}

/* The second payload buffer, allocated when first needed. */
static uint8_t *
io_lz(struct mig_io *io)
{
	if (io->lz == NULL)
		io->lz = malloc(MIGCHAN_PAYLOAD_MAX);
	return io->lz;
}

/*
 * LEN (1..MIGCHAN_PAYLOAD_MAX) raw stream bytes as one DATA frame: as
 * DATA_LZ4 when the target offered it and the block pays, else plain.
 */
static int
io_seal_data(struct mig_io *io, const uint8_t *p, size_t len)
{
	uint8_t *lz;
	size_t n;

	if (migchan_lz4(&io->ch) && (lz = io_lz(io)) != NULL &&
	    (n = mig_lz4_pack(p, len, lz)) > 0)
		return io_seal(io, MIGCHAN_DATA_LZ4, lz, n, false);
	return io_seal(io, MIGCHAN_DATA, p, len, false);
}

/*
 * The DATA_LZ4 payload in io->pt (LEN bytes) decoded into io->pt, as the
 * payload of a DATA (*LEN becomes the raw size).  0, -EPROTO for a block
 * migrate_lz4.c refuses, -ENOMEM.
 *
 * Not decoded into space reserved in to_buf: a stream of tiny blocks
 * would then cost a 64 KiB chain each, where evbuffer_add packs them.
 */
static int
io_unpack(struct mig_io *io, size_t *len)
{
	uint8_t *swap;
	ssize_t n;

	if (io_lz(io) == NULL)
		return -ENOMEM;
	if ((n = mig_lz4_unpack(io->pt, *len, io->lz)) < 0)
		return -EPROTO;
	swap = io->pt;
	io->pt = io->lz;
	io->lz = swap;
	*len = (size_t)n;
	return 0;
}

static bool
io_deliver(struct mig_io *io, enum migchan_type type, size_t len,
    bool final)
{
	io_enter(io);
	io->ops->frame(io->arg, type, io->pt, len, final);
	return io_leave(io) && io->phase == IO_OPEN;
}

/* The peer's AUTH opened.  False when IO is gone or not OPEN after. */
static bool
io_authed(struct mig_io *io)
{
	evtimer_del(io->timer);
	io->phase = IO_OPEN;
	log_debug("migration channel to %s authenticated", io->peer);
	if (io->l != NULL) {
		lst_handover(io);
		io_enter(io);
		io->ops->accepted(io->arg, io);
		if (!io_leave(io) || io->phase != IO_OPEN)
			return false;
	}
	io_enter(io);
	io->ops->authed(io->arg);
	return io_leave(io) && io->phase == IO_OPEN;
}

/* Writes what waits for the pump_to fd until it would block.  0 or -EIO. */
static int
to_flush(struct mig_io *io)
{
	int n;

	while (evbuffer_get_length(io->to_buf) > 0) {
		n = evbuffer_write(io->to_buf, io->to_fd);
		if (n > 0) {
			io->bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			log_warn("migration from %s: pump fd write", io->peer);
			return -EIO;
		}
		if (event_add(io->to_ev, NULL) != 0)
			return -EIO;
		return 0;
	}
	return 0;
}

/* One HELLO_I (R_HELLO).  1, or -1 when IO is gone. */
static int
r_hello(struct mig_io *io, struct evbuffer *in)
{
	uint8_t buf[MIGCHAN_HELLO_I_LEN], id[MIGCHAN_ID_LEN];
	struct mig_listener *l = io->l;
	struct mig_expect *e;
	unsigned i;

	_Static_assert(MIGCHAN_HELLO_I_LEN == MIGCHAN_HELLO_R_LEN,
	    "HELLO_R is written over HELLO_I");
	evbuffer_remove(in, buf, sizeof(buf));
	if (migchan_peek_id(buf, id) != 0) {
		lst_refuse(io, "bad hello");
		return -1;
	}
	TAILQ_FOREACH(e, &l->expects, entry)
		if (memcmp(e->ch.id, id, MIGCHAN_ID_LEN) == 0)
			break;
	if (e == NULL) {
		for (i = 0; i < l->nused; i++)
			if (memcmp(l->used[i], id, MIGCHAN_ID_LEN) == 0)
				break;
		lst_refuse(io, i < l->nused ? "id already used" :
		    "unknown migration id");
		return -1;
	}
	if (memcmp(&e->peer, &io->addr, sizeof(io->addr)) != 0) {
		lst_refuse(io, "wrong peer address");
		return -1;
	}
	/* A copy: a failed attempt must leave the expectation usable. */
	io->ch = e->ch;
	if (migchan_accept(&io->ch, buf, buf) != 0) {
		lst_refuse(io, "bad hello");
		return -1;
	}
	io->e = e;
	if (bufferevent_write(io->bev, buf, MIGCHAN_HELLO_R_LEN) != 0) {
		lst_refuse(io, "out of memory");
		return -1;
	}
	io->phase = IO_R_HEADER;
	return 1;
}

/* The initiator's stream header (R_HEADER), then our AUTH. */
static int
r_header(struct mig_io *io, struct evbuffer *in)
{
	uint8_t hdr[MIGCHAN_HEADER_LEN];

	evbuffer_remove(in, hdr, sizeof(hdr));
	if (migchan_header(&io->ch, hdr) != 0) {
		lst_refuse(io, "bad hello");
		return -1;
	}
	if (io_seal(io, MIGCHAN_AUTH, io->ch.id, MIGCHAN_ID_LEN, false) != 0) {
		lst_refuse(io, "out of memory");
		return -1;
	}
	io->phase = IO_AUTH;
	return 1;
}

/* HELLO_R (I_HELLO), then our header and AUTH. */
static int
i_hello(struct mig_io *io, struct evbuffer *in)
{
	uint8_t buf[MIGCHAN_HELLO_R_LEN], hdr[MIGCHAN_HEADER_LEN];

	evbuffer_remove(in, buf, sizeof(buf));
	if (migchan_finish(&io->ch, buf, hdr) != 0) {
		io_fail(io, -EBADMSG, NULL);
		return -1;
	}
	if (bufferevent_write(io->bev, hdr, sizeof(hdr)) != 0 ||
	    io_seal(io, MIGCHAN_AUTH, io->ch.id, MIGCHAN_ID_LEN, false) != 0) {
		io_fail(io, -ENOMEM, NULL);
		return -1;
	}
	io->phase = IO_AUTH;
	return 1;
}

/* One whole frame (AUTH, OPEN): 1, 0 for not all in yet, -1 IO gone. */
static int
io_frame(struct mig_io *io, struct evbuffer *in)
{
	uint8_t lenb[MIGCHAN_LEN_LEN];
	enum migchan_type type;
	size_t plen = 0;
	ssize_t flen;
	bool final;
	int rc;

	if (evbuffer_get_length(in) < MIGCHAN_LEN_LEN)
		return 0;
	evbuffer_copyout(in, lenb, sizeof(lenb));
	/* A length out of range closes without waiting for its body. */
	if ((flen = migchan_frame_len(lenb)) < 0) {
		io_fail(io, -EBADMSG, "authentication failed");
		return -1;
	}
	if (evbuffer_get_length(in) < (size_t)flen)
		return 0;
	evbuffer_remove(in, io->frame, (size_t)flen);
	if (migchan_open(&io->ch, io->frame, (size_t)flen, &type, io->pt,
	    &plen, &final) != 0) {
		log_debug("migration channel to %s: a frame failed to open",
		    io->peer);
		io_fail(io, -EBADMSG, "authentication failed");
		return -1;
	}
	/* migchan_open lets only AUTH through as the first frame. */
	if (io->phase == IO_AUTH)
		return io_authed(io) ? 1 : -1;
	if (type == MIGCHAN_DATA || type == MIGCHAN_DATA_LZ4)
		io->wire += (uint64_t)flen;
	if (type == MIGCHAN_DATA_LZ4) {
		if ((rc = io_unpack(io, &plen)) != 0) {
			if (rc == -EPROTO)
				log_warnx("migration from %s: a DATA_LZ4 "
				    "block that does not decode to 1..%d "
				    "bytes", io->peer, MIGCHAN_PAYLOAD_MAX);
			io_fail(io, rc, NULL);
			return -1;
		}
		/* From here on it is DATA. */
		type = MIGCHAN_DATA;
	}
	if (type == MIGCHAN_DATA && io->to_buf != NULL) {
		if (evbuffer_add(io->to_buf, io->pt, plen) != 0) {
			io_fail(io, -ENOMEM, NULL);
			return -1;
		}
		if (to_flush(io) != 0) {
			io_fail(io, -EIO, NULL);
			return -1;
		}
		return 1;
	}
	if (io->to_buf != NULL && evbuffer_get_length(io->to_buf) > 0) {
		/* It waits for the DATA before it to reach the fd. */
		io->held = true;
		io->held_type = type;
		io->held_len = plen;
		io->held_final = final;
		return 1;
	}
	return io_deliver(io, type, plen, final) ? 1 : -1;
}

/* The peer closed and everything before that is dealt with. */
static void
io_at_eof(struct mig_io *io)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);

	if (io->phase != IO_OPEN) {
		io_fail(io, -EPIPE, "closed during handshake");
		return;
	}
	io_fail(io, io->ch.rx_final && evbuffer_get_length(in) == 0 ? 0 :
	    -EPIPE, NULL);
}

/*
 * Takes what it can from the socket's input: bounded by the input's read
 * watermark, and paused while the pump_to fd is behind.
 */
static void
io_process(struct mig_io *io)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);
	uint64_t turn = io->to_buf != NULL ? io->bytes +
	    evbuffer_get_length(io->to_buf) : 0;
	size_t have;
	int r;

	for (;;) {
		have = evbuffer_get_length(in);
		if (io->phase == IO_FINISHING) {
			evbuffer_drain(in, have);
			return;
		}
		if (io->phase == IO_DEAD || io->doomed)
			return;
		if (io->held) {
			if (evbuffer_get_length(io->to_buf) > 0)
				return;		/* to_cb comes back */
			io->held = false;
			if (!io_deliver(io, io->held_type, io->held_len,
			    io->held_final))
				return;
			continue;
		}
		if (io->to_buf != NULL &&
		    evbuffer_get_length(io->to_buf) > MIG_IO_HIWAT) {
			bufferevent_disable(io->bev, EV_READ);
			return;			/* to_cb comes back */
		}
		/* A turn decodes at most MIG_IO_HIWAT, however well the
		 * blocks compress: to_cb comes back when the fd takes more. */
		if (io->to_buf != NULL && io->bytes +
		    evbuffer_get_length(io->to_buf) - turn >= MIG_IO_HIWAT) {
			if (event_add(io->to_ev, NULL) != 0)
				io_fail(io, -EIO, NULL);
			return;
		}
		switch (io->phase) {
		case IO_R_HELLO:
			r = have < MIGCHAN_HELLO_I_LEN ? 0 : r_hello(io, in);
			break;
		case IO_R_HEADER:
			r = have < MIGCHAN_HEADER_LEN ? 0 : r_header(io, in);
			break;
		case IO_I_HELLO:
			r = have < MIGCHAN_HELLO_R_LEN ? 0 : i_hello(io, in);
			break;
		default:
			r = io_frame(io, in);
			break;
		}
		if (r < 0)
			return;
		if (r == 0)
			break;
	}
	if (io->eof && (io->to_buf == NULL ||
	    evbuffer_get_length(io->to_buf) == 0))
		io_at_eof(io);
}

/* Half-closes once the output is out; the peer's EOF then frees IO. */
static void
io_shut(struct mig_io *io)
{
	io->shut = true;
	if (shutdown(bufferevent_getfd(io->bev), SHUT_WR) != 0 || io->eof)
		mig_io_free(io);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	io_process(arg);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct mig_io *io = arg;

	if (io->phase == IO_FINISHING) {
		if (!io->shut &&
		    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			io_shut(io);
		return;
	}
	/* The output fell below the low watermark: pump_from reads again. */
	if (io->phase == IO_OPEN && io->from_ev != NULL &&
	    !event_pending(io->from_ev, EV_READ, NULL))
		event_add(io->from_ev, NULL);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct mig_io *io = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (io->phase == IO_FINISHING) {
		/* A half-closed peer may still read: an EOF before our own
		 * output is out waits for it (io_shut frees then). */
		if ((what & BEV_EVENT_ERROR) || io->shut)
			mig_io_free(io);
		else
			io->eof = true;
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		log_debug("migration channel to %s: %s", io->peer,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		io_fail(io, -EPIPE, "closed during handshake");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		io->eof = true;
		io_process(io);
	}
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mig_io *io = arg;

	(void)fd;
	(void)what;
	if (io->phase == IO_FINISHING) {
		log_debug("migration channel to %s: finish timed out",
		    io->peer);
		mig_io_free(io);
		return;
	}
	io_fail(io, -ETIMEDOUT, "handshake timeout");
}

/* pump_from's fd is readable, or the output drained. */
static void
from_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mig_io *io = arg;
	struct evbuffer *out = bufferevent_get_output(io->bev);
	size_t taken = 0;
	ssize_t n;

	(void)fd;
	(void)what;
	/*
	 * At most MIG_IO_HIWAT / MIGCHAN_PAYLOAD_MAX + 1 rounds: compressed
	 * frames fill the output slowly, so the raw bytes taken are bounded
	 * too, and the fd, still readable, brings us back on the next turn.
	 */
	while (evbuffer_get_length(out) < MIG_IO_HIWAT) {
		if (taken >= MIG_IO_HIWAT)
			return;
		n = read(io->from_fd, io->from_buf, MIGCHAN_PAYLOAD_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			log_warn("migration to %s: pump fd read", io->peer);
			io_fail(io, -EIO, NULL);
			return;
		}
		if (n == 0) {
			event_free(io->from_ev);
			io->from_ev = NULL;
			io->from_fd = -1;
			if (io->ops->pumped != NULL) {
				io_enter(io);
				io->ops->pumped(io->arg);
				(void)io_leave(io);
			}
			return;
		}
		if (io->tap != NULL)
			io->tap(io->tap_arg, io->from_buf, (size_t)n);
		if (io_seal_data(io, io->from_buf, (size_t)n) != 0) {
			io_fail(io, -EIO, NULL);
			return;
		}
		io->bytes += (uint64_t)n;
		taken += (size_t)n;
	}
	/* write_cb re-adds it below the low watermark. */
	event_del(io->from_ev);
}

/* pump_to's fd is writable again. */
static void
to_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mig_io *io = arg;

	(void)fd;
	(void)what;
	if (to_flush(io) != 0) {
		io_fail(io, -EIO, NULL);
		return;
	}
	if (evbuffer_get_length(io->to_buf) > MIG_IO_HIWAT / 2)
		return;
	if (!io->eof)
		bufferevent_enable(io->bev, EV_READ);
	io_process(io);
}

/* Takes ownership of FD (closed on failure). */
static struct mig_io *
io_new(struct event_base *base, int fd, enum io_phase phase,
    const struct sockaddr *sa)
{
	struct mig_io *io;
	int one = 1;

	if ((io = calloc(1, sizeof(*io))) == NULL) {
		close(fd);
		return NULL;
	}
	io->base = base;
	io->phase = phase;
	io->from_fd = io->to_fd = -1;
	sa_addr_str(sa, io->peer, sizeof(io->peer));
	(void)sa_in6(sa, &io->addr);
	/* Frames are written whole; no reason to wait for an ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((io->bev = bufferevent_socket_new(base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		goto err;
	}
	if ((io->timer = evtimer_new(base, timer_cb, io)) == NULL ||
	    (io->frame = malloc(MIGCHAN_FRAME_MAX)) == NULL ||
	    (io->pt = malloc(MIGCHAN_PAYLOAD_MAX)) == NULL)
		goto err;
	bufferevent_setcb(io->bev, read_cb, write_cb, event_cb, io);
	bufferevent_setwatermark(io->bev, EV_READ, 0, IN_HIWAT);
	bufferevent_setwatermark(io->bev, EV_WRITE, MIG_IO_HIWAT / 2, 0);
	bufferevent_set_max_single_read(io->bev, IO_CHUNK);
	bufferevent_set_max_single_write(io->bev, IO_CHUNK);
	return io;
err:
	io_destroy(io);
	errno = ENOMEM;
	return NULL;
}

struct mig_io *
mig_io_connect(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, struct migchan *ch, const struct mig_io_ops *ops,
    void *arg)
{
	uint8_t hello[MIGCHAN_HELLO_I_LEN];
	struct mig_io *io = NULL;
	struct timeval tv;
	int fd = -1, saved;

	if (base == NULL || sa == NULL || ch == NULL || ops == NULL ||
	    ops->authed == NULL || ops->frame == NULL || ops->closed == NULL ||
	    ch->role != MIGCHAN_INITIATOR ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		errno = EINVAL;
		goto fail;
	}
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		errno = saved;
		goto fail;
	}
	if ((io = io_new(base, fd, IO_I_HELLO, sa)) == NULL)
		goto fail;
	io->ch = *ch;
	io->ops = ops;
	io->arg = arg;
	migchan_dispose(ch);
	if (migchan_hello_i(&io->ch, hello) != 0) {
		errno = EINVAL;
		goto fail;
	}
	/* No address: the socket is already connecting. */
	ms_tv(MIG_IO_HANDSHAKE_MS, &tv);
	if (bufferevent_socket_connect(io->bev, NULL, 0) != 0 ||
	    bufferevent_write(io->bev, hello, sizeof(hello)) != 0 ||
	    bufferevent_enable(io->bev, EV_READ | EV_WRITE) != 0 ||
	    evtimer_add(io->timer, &tv) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	return io;
fail:
	saved = errno;
	migchan_dispose(ch);
	if (io != NULL)
		io_destroy(io);
	errno = saved;
	return NULL;
}

int
mig_io_send(struct mig_io *io, enum migchan_type type,
    const uint8_t *payload, size_t len, bool final)
{
	int rc;

	/* DATA_LZ4 is made here from DATA, never handed in. */
	if (io == NULL || type == MIGCHAN_AUTH || type == MIGCHAN_DATA_LZ4)
		return -EINVAL;
	if (io->phase == IO_FINISHING || io->phase == IO_DEAD || io->doomed)
		return -EPIPE;
	if (io->phase != IO_OPEN)
		return -ENOTCONN;
	if (final && io->from_ev != NULL)
		return -EBUSY;
	if (evbuffer_get_length(bufferevent_get_output(io->bev)) >
	    MIG_IO_SEND_MAX)
		return -ENOBUFS;
	if (type == MIGCHAN_DATA && !final && len > 0 &&
	    len <= MIGCHAN_PAYLOAD_MAX && payload != NULL)
		rc = io_seal_data(io, payload, len);
	else
		rc = io_seal(io, type, payload, len, final);
	if (rc != 0)
		return rc;
	if (type == MIGCHAN_DATA)
		io->bytes += len;
	return 0;
}

/* -EPIPE, -ENOTCONN or 0, as for mig_io_send. */
static int
io_usable(const struct mig_io *io)
{
	if (io->phase == IO_FINISHING || io->phase == IO_DEAD || io->doomed)
		return -EPIPE;
	return io->phase == IO_OPEN ? 0 : -ENOTCONN;
}

static bool
fd_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

int
mig_io_pump_from(struct mig_io *io, int fd)
{
	int rc;

	if (io == NULL || fd < 0 || !fd_nonblocking(fd))
		return -EINVAL;
	if ((rc = io_usable(io)) != 0)
		return rc;
	if (io->from_ev != NULL)
		return -EBUSY;
	if (io->ch.tx_final)
		return -EINVAL;
	if (io->from_buf == NULL &&
	    (io->from_buf = malloc(MIGCHAN_PAYLOAD_MAX)) == NULL)
		return -ENOMEM;
	if ((io->from_ev = event_new(io->base, fd, EV_READ | EV_PERSIST,
	    from_cb, io)) == NULL)
		return -ENOMEM;
	if (event_add(io->from_ev, NULL) != 0) {
		event_free(io->from_ev);
		io->from_ev = NULL;
		return -ENOMEM;
	}
	io->from_fd = fd;
	return 0;
}

void
mig_io_tap(struct mig_io *io, mig_io_tap_fn *tap, void *arg)
{
	if (io == NULL)
		return;
	io->tap = tap;
	io->tap_arg = arg;
}

int
mig_io_pump_to(struct mig_io *io, int fd)
{
	int rc;

	if (io == NULL || fd < 0 || !fd_nonblocking(fd))
		return -EINVAL;
	if ((rc = io_usable(io)) == -EPIPE)
		return rc;
	if (io->to_buf != NULL)
		return -EBUSY;
	if ((io->to_buf = evbuffer_new()) == NULL ||
	    (io->to_ev = event_new(io->base, fd, EV_WRITE, to_cb, io)) ==
	    NULL) {
		if (io->to_buf != NULL)
			evbuffer_free(io->to_buf);
		io->to_buf = NULL;
		return -ENOMEM;
	}
	io->to_fd = fd;
	return 0;
}

uint64_t
mig_io_bytes(const struct mig_io *io)
{
	return io != NULL ? io->bytes : 0;
}

uint64_t
mig_io_wire_bytes(const struct mig_io *io)
{
	return io != NULL ? io->wire : 0;
}

const char *
mig_io_peer(const struct mig_io *io)
{
	return io != NULL ? io->peer : "?";
}

int
mig_io_set_timeout_ms(struct mig_io *io, unsigned ms)
{
	struct timeval tv;

	if (io == NULL || ms == 0 || io->phase >= IO_OPEN)
		return -EINVAL;
	ms_tv(ms, &tv);
	return evtimer_add(io->timer, &tv) == 0 ? 0 : -ENOMEM;
}

void
mig_io_finish(struct mig_io *io)
{
	struct evbuffer *out;
	struct timeval tv;

	if (io == NULL || io->phase == IO_FINISHING)
		return;
	if (io->phase == IO_DEAD || io->doomed || io->l != NULL) {
		mig_io_free(io);
		return;
	}
	io->phase = IO_FINISHING;
	io->ops = NULL;
	pump_drop(io);
	evbuffer_drain(bufferevent_get_input(io->bev),
	    evbuffer_get_length(bufferevent_get_input(io->bev)));
	out = bufferevent_get_output(io->bev);
	ms_tv(MIG_IO_FINISH_MS, &tv);
	if (evtimer_add(io->timer, &tv) != 0) {
		mig_io_free(io);
		return;
	}
	/* write_cb now fires only once the output is empty. */
	bufferevent_setwatermark(io->bev, EV_WRITE, 0, 0);
	if (!io->eof)
		bufferevent_enable(io->bev, EV_READ);
	if (evbuffer_get_length(out) == 0)
		io_shut(io);
}

void
mig_io_free(struct mig_io *io)
{
	if (io == NULL)
		return;
	if (io->busy > 0) {
		/* Inside one of its callbacks: the outermost frees it. */
		io->doomed = true;
		io->ops = NULL;
		io_stop(io);
		return;
	}
	io_destroy(io);
}

/* ---- the listener ---- */

/* Closes a connection still in its handshake; IO is gone after. */
static void
lst_refuse(struct mig_io *io, const char *why)
{
	struct mig_listener *l = io->l;
	char peer[SA_STRLEN];

	if (why == NULL)
		why = "closed during handshake";
	snprintf(peer, sizeof(peer), "%s", io->peer);
	log_debug("migration connection from %s refused: %s", peer, why);
	io_destroy(io);
	if (l->ops != NULL && l->ops->refused != NULL)
		l->ops->refused(l->arg, peer, why);
}

static void
expect_free(struct mig_expect *e)
{
	TAILQ_REMOVE(&e->l->expects, e, entry);
	migchan_dispose(&e->ch);
	free(e);
}

/*
 * IO's AUTH opened: its expectation is consumed, the id remembered, rival
 * handshakes for it refused, and IO leaves the listener with the
 * expectation's ops.
 */
static void
lst_handover(struct mig_io *io)
{
	struct mig_listener *l = io->l;
	struct mig_expect *e = io->e;
	struct mig_io *o, *next;

	memcpy(l->used[l->used_next], e->ch.id, MIGCHAN_ID_LEN);
	l->used_next = (l->used_next + 1) % MIG_LISTENER_USED_MAX;
	if (l->nused < MIG_LISTENER_USED_MAX)
		l->nused++;
	TAILQ_REMOVE(&l->pending, io, entry);
	l->npending--;
	io->l = NULL;
	io->e = NULL;
	io->ops = e->ops;
	io->arg = e->arg;
	for (o = TAILQ_FIRST(&l->pending); o != NULL; o = next) {
		next = TAILQ_NEXT(o, entry);
		if (o->e == e)
			lst_refuse(o, "id already used");
	}
	expect_free(e);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct mig_listener *l = arg;
	struct mig_io *io;
	struct timeval tv;
	char peer[SA_STRLEN];

	(void)lev;
	(void)salen;
	sa_addr_str(sa, peer, sizeof(peer));
	if (l->npending >= MIG_LISTENER_PENDING_MAX) {
		close(fd);
		if (l->ops != NULL && l->ops->refused != NULL)
			l->ops->refused(l->arg, peer, "too many connections");
		return;
	}
	ms_tv(l->timeout_ms, &tv);
	if ((io = io_new(l->base, fd, IO_R_HELLO, sa)) == NULL) {
		if (l->ops != NULL && l->ops->refused != NULL)
			l->ops->refused(l->arg, peer, "out of memory");
		return;
	}
	io->l = l;
	TAILQ_INSERT_TAIL(&l->pending, io, entry);
	l->npending++;
	if (bufferevent_enable(io->bev, EV_READ | EV_WRITE) != 0 ||
	    evtimer_add(io->timer, &tv) != 0)
		lst_refuse(io, "out of memory");
}

static void
accept_error_cb(struct evconnlistener *lev, void *arg)
{
	(void)lev;
	(void)arg;
	/* EMFILE and friends: keep listening, the next accept may work. */
	log_warn("migration listener: accept");
}

struct mig_listener *
mig_listener_new(struct event_base *base, const struct sockaddr *bind_sa,
    socklen_t len, const struct mig_listener_ops *ops, void *arg)
{
	struct mig_listener *l = NULL;
	int fd = -1, one = 1, saved;

	if (base == NULL || bind_sa == NULL ||
	    (bind_sa->sa_family != AF_INET && bind_sa->sa_family != AF_INET6)) {
		errno = EINVAL;
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->base = base;
	l->ops = ops;
	l->arg = arg;
	l->timeout_ms = MIG_IO_HANDSHAKE_MS;
	TAILQ_INIT(&l->expects);
	TAILQ_INIT(&l->pending);
	if ((fd = socket(bind_sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0)
		goto err;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, bind_sa, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0)
		goto err;
	/* Backlog 0: the socket listens already. */
	if ((l->lev = evconnlistener_new(base, accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd)) == NULL) {
		errno = ENOMEM;
		goto err;
	}
	evconnlistener_set_error_cb(l->lev, accept_error_cb);
	return l;
err:
	saved = errno;
	if (fd >= 0)
		close(fd);
	free(l);
	errno = saved;
	return NULL;
}

void
mig_listener_free(struct mig_listener *l)
{
	struct mig_io *io;
	struct mig_expect *e;

	if (l == NULL)
		return;
	while ((io = TAILQ_FIRST(&l->pending)) != NULL)
		io_destroy(io);
	while ((e = TAILQ_FIRST(&l->expects)) != NULL)
		expect_free(e);
	if (l->lev != NULL)
		evconnlistener_free(l->lev);
	sodium_memzero(l->used, sizeof(l->used));
	free(l);
}

int
mig_listener_port(const struct mig_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (l == NULL)
		return -EINVAL;
	if (getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&ss,
	    &len) != 0)
		return -errno;
	return sa_port((const struct sockaddr *)&ss);
}

int
mig_listener_set_timeout_ms(struct mig_listener *l, unsigned ms)
{
	if (l == NULL || ms == 0)
		return -EINVAL;
	l->timeout_ms = ms;
	return 0;
}

struct mig_expect *
mig_listener_expect(struct mig_listener *l, struct migchan *ch,
    const char *peer, const struct mig_io_ops *ops, void *arg)
{
	struct mig_expect *e = NULL;
	struct in6_addr a;
	unsigned i;
	int err = EINVAL;

	if (l == NULL || ch == NULL || peer == NULL || ops == NULL ||
	    ops->accepted == NULL || ops->authed == NULL ||
	    ops->frame == NULL || ops->closed == NULL ||
	    ch->role != MIGCHAN_RESPONDER || migchan_ready(ch) ||
	    text_in6(peer, &a) != 0)
		goto fail;
	err = EEXIST;
	TAILQ_FOREACH(e, &l->expects, entry)
		if (memcmp(e->ch.id, ch->id, MIGCHAN_ID_LEN) == 0)
			goto fail;
	for (i = 0; i < l->nused; i++)
		if (memcmp(l->used[i], ch->id, MIGCHAN_ID_LEN) == 0)
			goto fail;
	err = ENOMEM;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		goto fail;
	e->l = l;
	e->ch = *ch;
	e->peer = a;
	e->ops = ops;
	e->arg = arg;
	migchan_dispose(ch);
	TAILQ_INSERT_TAIL(&l->expects, e, entry);
	return e;
fail:
	migchan_dispose(ch);
	errno = err;
	return NULL;
}

void
mig_listener_unexpect(struct mig_expect *e)
{
	struct mig_io *io, *next;

	if (e == NULL)
		return;
	for (io = TAILQ_FIRST(&e->l->pending); io != NULL; io = next) {
		next = TAILQ_NEXT(io, entry);
		if (io->e == e)
			io_destroy(io);
	}
	expect_free(e);
}

void
mig_io_pair_buffers(const int sv[2])
{
	for (int i = 0; i < 2; i++) {
		int sz = MIG_IO_PAIR_BUF;

		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &sz,
		    sizeof(sz)) != 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz,
			    sizeof(sz));
		if (setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &sz,
		    sizeof(sz)) != 0)
			(void)setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz,
			    sizeof(sz));
	}
}
