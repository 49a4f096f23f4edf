/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_io.h: one migration channel (proto/migchan.h, PROTOCOL.md section
 * 11) on a TCP connection between two agents, on the process's one libevent
 * loop: the source connects (mig_io_connect), the target's one listener
 * accepts what it was told to expect (mig_listener_expect).  Nothing here
 * blocks, sleeps or starts a thread; agent/vm_migrate.c drives
 * agent/migrate_fsm.h on top of the callbacks below.
 *
 * Ownership.
 * - A struct mig_io owns its socket, its events, its buffers and its struct
 *   migchan; mig_io_free() releases them all and wipes the channel.  It
 *   never owns a pump fd (mig_io_pump_from/_to) and never closes one.
 * - The struct migchan handed to mig_io_connect() or mig_listener_expect()
 *   is copied and the caller's copy wiped (migchan_dispose) whether or not
 *   the call succeeds.
 * - OPS tables are kept by pointer: they must outlive the io (a static
 *   const table, as link.c's are).
 * - The listener owns its expectations and the connections still in their
 *   handshake; a mig_io it has handed over (ops->accepted) is the owner's
 *   and outlives the listener.
 *
 * Callbacks.
 * - No function below calls a callback before it returns; callbacks come
 *   only from the loop.
 * - Inside any callback the owner may call any function here, including
 *   mig_io_free() and mig_io_finish() on that io (nothing touches it after).
 * - After closed(), or once mig_io_finish() or mig_io_free() was called, no
 *   callback of that io runs again.
 *
 * Order on the wire is the call order: frames from mig_io_send() and DATA
 * from mig_io_pump_from() go out in the order they were queued.
 *
 * Compression (PROTOCOL.md 11.4) is invisible above this layer: once the
 * target's READY offered LZ4 (migchan_lz4), each DATA this io sends goes
 * as DATA_LZ4 when its block is below 7/8 of the chunk (agent/
 * migrate_lz4.h); each DATA_LZ4 it receives is decoded and handled as
 * DATA.  Whoever owns the io sends the READY, with the capabilities it
 * offers; it never sees or sends a DATA_LZ4 itself.
 *
 * The process must ignore SIGPIPE (agent/main.c does): a peer or pump fd
 * that went away is an error return, not a signal.
 *
 * Secrets: K, the static and the derived keys live only inside the struct
 * migchan; nothing here logs them, or any payload.
 */
#ifndef HV_AGENT_MIGRATE_IO_H
#define HV_AGENT_MIGRATE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "migchan.h"

struct event_base;

/* From accept or connect until the peer's AUTH frame opened. */
#define MIG_IO_HANDSHAKE_MS	10000
/* mig_io_finish(): how long queued frames may take to leave. */
#define MIG_IO_FINISH_MS	5000
/* pump_from reads only while the socket's output holds less than this;
 * pump_to stops reading the socket while more than this waits for its fd. */
#define MIG_IO_HIWAT		(1024 * 1024)
/* mig_io_send() refuses (-ENOBUFS) while the output holds more than this. */
#define MIG_IO_SEND_MAX		(4 * MIG_IO_HIWAT)
/* Handshakes in flight on one listener; more are refused at accept. */
#define MIG_LISTENER_PENDING_MAX 32
/* Ids of consumed expectations remembered to refuse a replay. */
#define MIG_LISTENER_USED_MAX	64

struct mig_io;			/* one connection */
struct mig_listener;		/* the agent's one migration listener */
struct mig_expect;		/* one expected connection */

struct mig_io_ops {
	/*
	 * Responder only (required there, ignored on the initiator): the
	 * initiator's AUTH frame opened and IO is now the owner's, who keeps
	 * it (and from now on calls mig_io_free or mig_io_finish on it).  The
	 * mig_expect handle is gone from this moment.  authed follows at once
	 * unless the owner freed or finished IO here.
	 */
	void (*accepted)(void *arg, struct mig_io *io);
	/* The peer's AUTH frame opened: the peer is who hvd said.  Required. */
	void (*authed)(void *arg);
	/*
	 * Every frame after AUTH, except DATA on an io with mig_io_pump_to()
	 * set; a DATA_LZ4 comes decoded, as DATA.  PAYLOAD is valid during
	 * the call only.  With pump_to set, a frame that follows DATA comes
	 * only after every earlier DATA byte was written to the pump fd.
	 * Required.
	 */
	void (*frame)(void *arg, enum migchan_type type,
	    const uint8_t *payload, size_t len, bool final);
	/* mig_io_pump_from()'s fd reached EOF and every byte read from it was
	 * sealed and queued as DATA.  Required only if pump_from is used. */
	void (*pumped)(void *arg);
	/*
	 * The connection is over; the owner calls mig_io_free() (from here or
	 * later).  ERR:
	 *   0          EOF after the peer's FINAL frame, everything delivered;
	 *   -EPIPE     EOF before it, a reset, or the connect failed;
	 *   -EBADMSG   a frame failed to open, or the handshake bytes were
	 *              wrong (initiator: a bad HELLO_R);
	 *   -EPROTO    a DATA_LZ4 frame opened but its block does not
	 *              decode to 1..MIGCHAN_PAYLOAD_MAX bytes;
	 *   -ETIMEDOUT the handshake did not finish within its deadline;
	 *   -EIO       reading the pump_from fd or writing the pump_to fd
	 *              failed;
	 *   -ENOMEM    a buffer could not grow.
	 * Required.
	 */
	void (*closed)(void *arg, int err);
};

/*
 * Initiator (source): a non-blocking connect to SA.  CH has been
 * migchan_init()ed as MIGCHAN_INITIATOR and nothing else.  The io sends
 * HELLO_I, reads HELLO_R, sends its header and AUTH, and calls authed when
 * the responder's AUTH opens, within MIG_IO_HANDSHAKE_MS of this call.
 * NULL with errno: EINVAL (an argument, a missing op, CH not a fresh
 * initiator), ENOMEM, or connect(2)'s errno when it fails at once (e.g.
 * ECONNREFUSED); a connect that fails later is closed(-EPIPE).
 */
struct mig_io *mig_io_connect(struct event_base *base,
    const struct sockaddr *sa, socklen_t salen, struct migchan *ch,
    const struct mig_io_ops *ops, void *arg);

/*
 * Queues one frame (migchan_seal() rules: not AUTH, DATA not empty, nothing
 * after this side's FINAL); DATA goes as DATA_LZ4 when it may and pays.
 * 0, or -EINVAL (bad argument, DATA_LZ4, or a frame the channel refuses),
 * -EMSGSIZE (LEN over MIGCHAN_PAYLOAD_MAX), -ENOTCONN
 * (before authed), -EPIPE (closed, finishing), -EBUSY (FINAL while
 * pump_from is still reading), -ENOBUFS (over MIG_IO_SEND_MAX queued),
 * -ENOMEM.
 */
int mig_io_send(struct mig_io *io, enum migchan_type type,
    const uint8_t *payload, size_t len, bool final);
/*
 * Source: reads FD (O_NONBLOCK; not owned, never closed) and sends its
 * bytes as DATA frames of at most MIGCHAN_PAYLOAD_MAX raw bytes (DATA_LZ4
 * as above), reading only while
 * the socket's output holds less than MIG_IO_HIWAT; pumped() at EOF.  Only
 * after authed.  0, or -EINVAL (FD blocking or invalid, FINAL already
 * sent), -ENOTCONN, -EPIPE, -EBUSY (a pump_from still reading), -ENOMEM.
 */
int mig_io_pump_from(struct mig_io *io, int fd);
/*
 * Shows TAP every raw byte pump_from reads, in order, before it is sealed:
 * an observer (the round counter, migrate_rounds.h), which must not call
 * any mig_io function.  NULL stops it.
 */
typedef void mig_io_tap_fn(void *arg, const uint8_t *p, size_t len);
void mig_io_tap(struct mig_io *io, mig_io_tap_fn *tap, void *arg);
/*
 * Sizes both ends of the socketpair SV between libxl's save/restore helper
 * and the relay to MIG_IO_PAIR_BUF, so neither waits on the other's every
 * wakeup: SO_*BUFFORCE past net.core.*mem_max when root, else the
 * sysctl's cap.  Best effort.
 */
#define MIG_IO_PAIR_BUF		(4 * 1024 * 1024)
void mig_io_pair_buffers(const int sv[2]);
/*
 * Target: writes each DATA frame's payload to FD (O_NONBLOCK; not owned,
 * never closed) in order, and stops reading the socket while more than
 * MIG_IO_HIWAT waits for FD.  May be called from accepted or authed; DATA
 * that opened before it goes to ops->frame.  0, or -EINVAL, -EPIPE, -EBUSY
 * (already set), -ENOMEM.
 */
int mig_io_pump_to(struct mig_io *io, int fd);
/* Raw stream bytes: DATA payload bytes queued (pump_from and DATA sends,
 * before compression) or written to the pump_to fd (after decoding).  0
 * for NULL. */
uint64_t mig_io_bytes(const struct mig_io *io);
/* What those bytes cost on the wire: the whole DATA and DATA_LZ4 frames
 * (length prefix included) sealed, or opened.  0 for NULL. */
uint64_t mig_io_wire_bytes(const struct mig_io *io);
/* The peer's numeric address ("10.0.0.2", "fd00::2"), for the owner's
 * logs; valid as long as IO. */
const char *mig_io_peer(const struct mig_io *io);
/*
 * Initiator, before authed: the handshake deadline becomes MS (> 0) from
 * now.  0, or -EINVAL (after authed, MS 0).
 */
int mig_io_set_timeout_ms(struct mig_io *io, unsigned ms);
/*
 * Stops every callback and both pumps (bytes waiting for the pump_to fd
 * are dropped); sends what is queued, half-closes, reads and discards until
 * the peer closes too (so the peer never sees a reset), then frees itself,
 * within MIG_IO_FINISH_MS at most.  IO must not be used after this.
 * NULL-safe; on a closed io it is mig_io_free().
 */
void mig_io_finish(struct mig_io *io);
/* Immediate: closes the socket, frees everything, wipes the channel.
 * NULL-safe. */
void mig_io_free(struct mig_io *io);

/* Responder (target): one listener, many expected connections. */
struct mig_listener_ops {
	/*
	 * A connection was refused and closed.  PEER: its numeric address;
	 * WHY one of "unknown migration id", "id already used", "wrong peer
	 * address", "bad hello" (magic, version or a low-order e_i),
	 * "handshake timeout", "authentication failed" (the first frame did
	 * not open as the AUTH), "closed during handshake", "too many
	 * connections", "out of memory".  None of these uses up the
	 * expectation: hvd's initiator may connect again.  Optional.  It must
	 * not free the listener.
	 */
	void (*refused)(void *arg, const char *peer, const char *why);
};

/*
 * Listens on BIND (port 0: an ephemeral one; an IPv6 wildcard also takes
 * IPv4, seen as v4-mapped).  NULL with errno: EINVAL, ENOMEM, or
 * socket/bind/listen's errno (EADDRINUSE...).
 */
struct mig_listener *mig_listener_new(struct event_base *base,
    const struct sockaddr *bind, socklen_t len,
    const struct mig_listener_ops *ops, void *arg);
/* Closes the listener and its handshakes in flight and frees every
 * outstanding expectation (their handles become invalid); mig_ios already
 * handed over are untouched.  NULL-safe. */
void mig_listener_free(struct mig_listener *l);
/* The port it listens on, or a negative errno. */
int mig_listener_port(const struct mig_listener *l);
/* Handshake deadline for connections accepted from now on (default
 * MIG_IO_HANDSHAKE_MS).  0, or -EINVAL for NULL or MS 0. */
int mig_listener_set_timeout_ms(struct mig_listener *l, unsigned ms);

/*
 * Expects one connection for CH's id from PEER (numeric IPv4 or IPv6 text;
 * addresses are compared, not text, and a v4-mapped peer equals its IPv4
 * address).  CH: migchan_init()ed as MIGCHAN_RESPONDER, nothing else.
 * Each connection whose HELLO_I names this id from this address gets a
 * copy of CH and runs the handshake; the first whose AUTH frame opens
 * consumes the expectation (others in flight for it are then refused "id
 * already used", as is every later one, for the last
 * MIG_LISTENER_USED_MAX ids consumed) and is handed over with
 * OPS->accepted(ARG, io), then OPS->authed(ARG).  A connection that fails
 * before that does not use up the id (PROTOCOL.md 11.2).
 * NULL with errno: EINVAL (an argument, PEER not numeric, a missing op, CH
 * not a responder), EEXIST (this id is expected already or was used),
 * ENOMEM.
 */
struct mig_expect *mig_listener_expect(struct mig_listener *l,
    struct migchan *ch, const char *peer, const struct mig_io_ops *ops,
    void *arg);
/*
 * Cancels E before it was consumed: its handshakes in flight are closed
 * silently, the id is not remembered as used.  NULL-safe.  Never call it
 * after accepted() for E ran: E is gone then.
 */
void mig_listener_unexpect(struct mig_expect *e);

#endif
