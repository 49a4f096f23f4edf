/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent link on hvd's main loop: the listener, the handshake
 * (PROTOCOL.md section 4), hello's framing and version, requests hvd sends
 * and their replies.  What a session means (which host a key is, the boot
 * token, telemetry, VM reports) is the fleet's: it comes in as the
 * struct agent_ops main.c hands to agents_init(), and notifications are
 * dispatched through it.  This file also runs the events table's retention
 * timer (db_event_prune), since agents_init() is where the loop first has
 * a timer to give it.
 *
 * A connection owns its bufferevent, its deadline and stall timers and its
 * link keys; agent_conn_free() releases all of them.  Every refusal closes
 * only that connection; hvd keeps serving everyone else.  Two kinds:
 * - a peer that never authenticated (garbage, a bad preamble or message 1,
 *   an unknown key, a replayed message 1, an idle or closed handshake)
 *   costs a counter (hvd_agent_refused_total{reason}) and a share of one
 *   log line per source address per minute, from a bounded table: never an
 *   event row or a line of its own, so a flood cannot grow the inventory
 *   or the journal;
 * - a peer holding a known host key (a bad frame or message after the
 *   handshake, a refused hello, a session that does not read) writes an
 *   `agent.rejected` event naming the host: the operator's business.
 *
 * Invariants: input per connection is bounded (a read high-watermark), so
 * the frame loop in a read callback is bounded too; unsent output is
 * bounded by backpressure (past AGENT_OUTPUT_HIGH the peer is not read until
 * it drains, and is closed if it does not); nothing here blocks.
 * Must never: trust anything before the handshake authenticated it, log a
 * boot token, or write a row for an unauthenticated peer.  Peer text is
 * escaped by the sinks (log.c, db_event_add), never here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <sodium.h>

#include "net.h"
#include "link.h"
#include "link_ev.h"
#include "msg.h"
#include "sockaddr.h"

#define AGENT_HANDSHAKE_TIMEOUT_S	10
#define AGENT_REQUEST_TIMEOUT_S		10
#define AGENT_PENDING_MAX		64
#define AGENT_INPUT_MAX			(256 * 1024)
#define AGENT_ACCEPT_PAUSE_S		1
/* Backpressure: stop reading a peer past HIGH bytes unsent, resume at LOW,
 * close it after STALL seconds over the mark (or two heartbeats, if that
 * is sooner: a paused session sends no heartbeats hvd would see, and the
 * fleet's three-heartbeat timeout would close it with a vaguer reason). */
#define AGENT_OUTPUT_HIGH		(1024 * 1024)
#define AGENT_OUTPUT_LOW		(256 * 1024)
#define AGENT_STALL_S			10
/* The refusal log: one line per source per window, a bounded table of
 * sources, and a cap on lines per window for all sources together. */
#define AGENT_REFUSE_WINDOW_S		60
#define AGENT_REFUSE_SOURCES		1024
#define AGENT_REFUSE_LINES		64
#define AGENT_REFUSE_SWEEP_S		5
/* Events retention: rows per statement, and the pause between passes. */
#define AGENT_PRUNE_BATCH		1000
#define AGENT_PRUNE_FIRST_S		2
#define AGENT_PRUNE_IDLE_S		60
#define AGENT_PRUNE_BUSY_US		100000

/* A request hvd sent and whose reply it awaits. */
struct agent_pending {
	TAILQ_ENTRY(agent_pending) entry;
	struct agent_conn *ac;
	uint64_t id;
	agent_reply_cb cb;
	void *arg;
	struct event *ev_timeout;
};

enum ac_state { AC_PREAMBLE, AC_MSG1, AC_HELLO, AC_UP };

/* Why a peer that never authenticated was refused: a fixed set, the
 * reason label of hvd_agent_refused_total. */
enum agent_refusal {
	AR_GARBAGE, AR_VERSION, AR_OVERSIZE, AR_HANDSHAKE, AR_UNKNOWN_KEY,
	AR_REPLAY, AR_TIMEOUT, AR_CLOSED, AR_INTERNAL, AR__COUNT
};

static const struct agent_refusal_name {
	const char *label;	/* the metric's reason="..." */
	const char *text;	/* in the per-source log line */
} agent_refusal_names[AR__COUNT] = {
	[AR_GARBAGE] = { "garbage", "garbage before the handshake" },
	[AR_VERSION] = { "version", "unsupported wire version" },
	[AR_OVERSIZE] = { "oversize", "oversize frame" },
	[AR_HANDSHAKE] = { "handshake", "handshake failed" },
	[AR_UNKNOWN_KEY] = { "unknown_key", "unknown key" },
	[AR_REPLAY] = { "replay", "replayed message 1" },
	[AR_TIMEOUT] = { "timeout", "handshake timeout" },
	[AR_CLOSED] = { "closed", "closed before the handshake" },
	[AR_INTERNAL] = { "internal", "internal error" },
};

/* One source address's refusals since its last log line. */
struct agent_source {
	bool used, logged;
	char addr[SA_STRLEN];
	uint32_t hash;
	uint32_t pending[AR__COUNT];
	uint64_t npending;
	int64_t last_line, last_seen;	/* monotonic seconds */
	char last_why[160];		/* the latest refusal, in full */
};

struct agent_conn {
	TAILQ_ENTRY(agent_conn) entry;
	struct hvd *hvd;
	struct bufferevent *bev;
	struct event *ev_deadline;
	struct event *ev_stall;		/* armed while reading paused */
	bool paused;			/* output above AGENT_OUTPUT_HIGH */
	bool pause_logged;
	enum ac_state state;
	struct link link;
	char peer[SA_STRLEN];		/* the session's source address */
	struct host_row host;		/* valid from AC_HELLO */
	struct fleet_host *fh;		/* the fleet's handle, valid in AC_UP */
	TAILQ_HEAD(, agent_pending) pending;
	unsigned npending;
	uint64_t next_id;
};

static TAILQ_HEAD(, agent_conn) agent_conns = TAILQ_HEAD_INITIALIZER(agent_conns);
static struct evconnlistener *agent_listener;
static uint16_t agent_port;
static uint8_t agent_frame[LINK_FRAME_MAX];
static uint8_t agent_plain[LINK_FRAME_MAX];
static uint8_t agent_out[LINK_FRAME_MAX + LINK_FRAME_HDR];
static const struct agent_ops *agent_ops;
static struct event *agent_resume;	/* re-enables accept after a pause */
static uint64_t agent_accept_pauses;
static uint64_t agent_rejected;		/* known hosts refused */
static uint64_t agent_bp_pauses, agent_bp_closed;

/* The refusal log (see the file's head). */
static uint64_t agent_refused[AR__COUNT];
static struct agent_source agent_sources[AGENT_REFUSE_SOURCES];
static size_t agent_nsources;
static struct agent_source agent_overflow;	/* evicted sources' counts */
static uint64_t agent_overflow_addrs;		/* ... from how many */
static uint64_t agent_sources_dropped;
static unsigned agent_lines_left;
static int64_t agent_lines_since;
static bool agent_lines_started;
static struct event *agent_sweep;

static struct event *agent_prune;		/* events retention */
static uint64_t agent_pruned, agent_prune_burst;

/* Runs the callback once and frees the pending request. */
static void
agent_pending_done(struct agent_pending *ap, json_t *result, json_t *error)
{
	TAILQ_REMOVE(&ap->ac->pending, ap, entry);
	ap->ac->npending--;
	event_free(ap->ev_timeout);
	ap->cb(ap->arg, result, error);
	free(ap);
}

static void
agent_pending_fail(struct agent_pending *ap, const char *code,
    const char *message)
{
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);

	agent_pending_done(ap, NULL, err);
	json_decref(err);
}

static void
agent_pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_pending_fail(arg, "timeout", "the agent did not answer within 10 s");
}

static void
agent_conn_free(struct agent_conn *ac)
{
	struct agent_pending *ap;

	if (ac == NULL)
		return;
	while ((ap = TAILQ_FIRST(&ac->pending)) != NULL)
		agent_pending_fail(ap, "disconnected", "the agent's session ended");
	TAILQ_REMOVE(&agent_conns, ac, entry);
	if (ac->fh)
		agent_ops->gone(ac->fh, ac);
	if (ac->ev_deadline)
		event_free(ac->ev_deadline);
	if (ac->ev_stall)
		event_free(ac->ev_stall);
	if (ac->bev)
		bufferevent_free(ac->bev);
	link_dispose(&ac->link);
	free(ac);
}

void
agent_conn_close(struct agent_conn *ac, const char *why)
{
	log_info("agent %s (%s): closed: %s", ac->host.name[0] ? ac->host.name :
	    "?", ac->peer, why);
	agent_conn_free(ac);
}

static uint32_t
agent_hash(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Whether one more refusal line fits this window's budget (all sources
 * together), so fresh addresses cannot buy a line each. */
static bool
agent_line_budget(int64_t now)
{
	if (!agent_lines_started || now - agent_lines_since >=
	    AGENT_REFUSE_WINDOW_S) {
		agent_lines_started = true;
		agent_lines_since = now;
		agent_lines_left = AGENT_REFUSE_LINES;
	}
	if (agent_lines_left == 0)
		return false;
	agent_lines_left--;
	return true;
}

/* A line is due when something is pending and the source's last line is
 * more than a window old (whole seconds: "more than" keeps it a minute). */
static bool
agent_source_due(const struct agent_source *s, int64_t now)
{
	return s->npending > 0 && (!s->logged ||
	    now - s->last_line > AGENT_REFUSE_WINDOW_S);
}

/* Writes s's one line and starts its next window. */
static void
agent_source_line(struct agent_source *s, const char *who, int64_t now)
{
	char list[384];
	size_t n = 0;

	if (s->npending == 1) {
		log_warnx("agent: refused from %s: %s", who, s->last_why);
	} else {
		list[0] = '\0';
		for (size_t i = 0; i < AR__COUNT && n < sizeof(list); i++) {
			int w;

			if (s->pending[i] == 0)
				continue;
			w = snprintf(list + n, sizeof(list) - n, "%s%s (%u)",
			    n ? ", " : "", agent_refusal_names[i].text,
			    s->pending[i]);
			n = w < 0 ? sizeof(list) : n + (size_t)w;
		}
		log_warnx("agent: %llu refused from %s in the last minute: %s; "
		    "last: %s", (unsigned long long)s->npending, who, list,
		    s->last_why);
	}
	memset(s->pending, 0, sizeof(s->pending));
	s->npending = 0;
	s->logged = true;
	s->last_line = now;
}

static void
agent_overflow_line(int64_t now)
{
	char who[64];

	snprintf(who, sizeof(who), "%llu other addresses",
	    (unsigned long long)agent_overflow_addrs);
	agent_source_line(&agent_overflow, who, now);
	agent_overflow_addrs = 0;
}

static void
agent_source_fold(struct agent_source *into, const struct agent_source *s)
{
	for (size_t i = 0; i < AR__COUNT; i++)
		into->pending[i] += s->pending[i];
	into->npending += s->npending;
	if (s->npending)
		memcpy(into->last_why, s->last_why, sizeof(into->last_why));
}

/* addr's slot; a full table gives up its least recently seen source,
 * whose pending counts go to the "other addresses" line. */
static struct agent_source *
agent_source_get(const char *addr, int64_t now)
{
	struct agent_source *s, *free_slot = NULL, *oldest = NULL;
	uint32_t h = agent_hash(addr);

	for (size_t i = 0; i < AGENT_REFUSE_SOURCES; i++) {
		s = &agent_sources[i];
		if (!s->used) {
			if (free_slot == NULL)
				free_slot = s;
			continue;
		}
		if (s->hash == h && strcmp(s->addr, addr) == 0)
			return s;
		if (oldest == NULL || s->last_seen < oldest->last_seen)
			oldest = s;
	}
	if ((s = free_slot) == NULL) {
		s = oldest;
		if (s->npending > 0)
			agent_overflow_addrs++;
		agent_source_fold(&agent_overflow, s);
		agent_sources_dropped++;
		agent_nsources--;
	}
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->hash = h;
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	s->last_seen = now;
	agent_nsources++;
	return s;
}

/* Notes one refusal of a peer that never authenticated; logs at once if
 * its source's line is due and the budget allows, else the sweep will. */
static void
agent_refusal_note(const char *addr, enum agent_refusal r, const char *why,
    int64_t now)
{
	struct timeval tv = { AGENT_REFUSE_SWEEP_S, 0 };
	struct agent_source *s = agent_source_get(addr, now);

	agent_refused[r]++;
	s->pending[r]++;
	s->npending++;
	s->last_seen = now;
	snprintf(s->last_why, sizeof(s->last_why), "%s", why);
	if (agent_source_due(s, now) && agent_line_budget(now))
		agent_source_line(s, s->addr, now);
	if (agent_sweep && !evtimer_pending(agent_sweep, NULL))
		evtimer_add(agent_sweep, &tv);
}

/* Writes the lines that are due, forgets quiet sources, and runs again
 * while anything is left. */
static void
agent_refusal_sweep(int64_t now, bool final)
{
	for (size_t i = 0; i < AGENT_REFUSE_SOURCES; i++) {
		struct agent_source *s = &agent_sources[i];

		if (!s->used)
			continue;
		if (s->npending > 0 && (final || (agent_source_due(s, now) &&
		    agent_line_budget(now))))
			agent_source_line(s, s->addr, now);
		else if (s->npending == 0 && now - s->last_line >
		    AGENT_REFUSE_WINDOW_S) {
			s->used = false;
			agent_nsources--;
		}
	}
	if (agent_overflow.npending > 0 && (final ||
	    agent_source_due(&agent_overflow, now)))
		agent_overflow_line(now);
}

static void
agent_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { AGENT_REFUSE_SWEEP_S, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	agent_refusal_sweep(hvd_now_mono(), false);
	if (agent_nsources > 0 || agent_overflow.npending > 0)
		evtimer_add(agent_sweep, &tv);
}

/* Refuses a peer that never authenticated: counted and noted, no event,
 * no line of its own; closes. */
static void
agent_refuse(struct agent_conn *ac, enum agent_refusal r, const char *why)
{
	agent_refusal_note(ac->peer, r, why, hvd_now_mono());
	agent_conn_free(ac);
}

/* Refuses a session that holds a known host key: logs once, records the
 * event naming the host, closes. */
static void
agent_reject(struct agent_conn *ac, const char *why)
{
	const char *who = ac->host.name[0] ? ac->host.name : ac->peer;
	char detail[256];

	snprintf(detail, sizeof(detail), "%s: %s", ac->peer, why);
	log_warnx("agent %s (%s): refused: %s", who, ac->peer, why);
	agent_rejected++;
	(void)db_event_record(ac->hvd->db, "agent.rejected", who, "hvd", detail,
	    hvd_now_wall());
	agent_conn_free(ac);
}

/*
 * After output was queued: past the high-water mark, stop reading the
 * peer (no more requests to answer) until agent_write_cb sees it drain,
 * and give it AGENT_STALL_S seconds to do so.
 */
static unsigned
agent_stall_ms(const struct agent_conn *ac)
{
	unsigned ms = 2 * ac->hvd->conf->heartbeat_ms;

	return ms < AGENT_STALL_S * 1000 ? ms : AGENT_STALL_S * 1000;
}

static void
agent_output_check(struct agent_conn *ac)
{
	unsigned ms = agent_stall_ms(ac);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	size_t out = evbuffer_get_length(bufferevent_get_output(ac->bev));

	if (ac->paused || out <= AGENT_OUTPUT_HIGH)
		return;
	bufferevent_disable(ac->bev, EV_READ);
	ac->paused = true;
	agent_bp_pauses++;
	evtimer_add(ac->ev_stall, &tv);
	if (!ac->pause_logged) {
		ac->pause_logged = true;
		log_info("agent %s (%s): not reading what hvd sends (%zu bytes "
		    "unsent); not reading it until that drains",
		    ac->host.name[0] ? ac->host.name : "?", ac->peer, out);
	}
}

static void
agent_write_cb(struct bufferevent *bev, void *arg)
{
	struct agent_conn *ac = arg;

	if (!ac->paused ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > AGENT_OUTPUT_LOW)
		return;
	ac->paused = false;
	event_del(ac->ev_stall);
	bufferevent_enable(bev, EV_READ);
	/* Frames may wait in the input buffer with no new bytes to come. */
	bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void
agent_stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_conn *ac = arg;
	char why[128];

	(void)fd;
	(void)what;
	agent_bp_closed++;
	snprintf(why, sizeof(why), "not reading what hvd sends: %zu bytes "
	    "unsent for %.1f s", evbuffer_get_length(bufferevent_get_output(
	    ac->bev)), agent_stall_ms(ac) / 1000.0);
	agent_reject(ac, why);
}

static int
agent_send(struct agent_conn *ac, char *json)
{
	int r;

	if (json == NULL)
		return -ENOMEM;
	r = link_ev_send(&ac->link, ac->bev, json, strlen(json));
	free(json);
	if (r == 0)
		agent_output_check(ac);
	return r;
}

static int
agent_on_msg1(struct agent_conn *ac, const uint8_t *body, size_t len)
{
	char why[160];
	size_t n = 0;

	if (link_init_responder(&ac->link, keys_link_secret()) < 0) {
		agent_refuse(ac, AR_INTERNAL, "internal error: no agent-link "
		    "key");
		return -1;
	}
	if (link_responder_read(&ac->link, body, len) < 0) {
		agent_refuse(ac, AR_HANDSHAKE, "handshake failed (wrong hvd "
		    "key, or not a valid message 1)");
		return -1;
	}
	if (agent_ops->authorize(ac->hvd, ac->link.remote_static,
	    ac->link.remote_timestamp, &ac->host, why, sizeof(why)) < 0) {
		char full[256];

		/* A known key refused here is a replay (see agent_ops): it
		 * proves nothing, so it is counted, not recorded. */
		if (ac->host.id == 0) {
			agent_refuse(ac, AR_UNKNOWN_KEY, why);
		} else {
			snprintf(full, sizeof(full), "%s: %s", ac->host.name,
			    why);
			agent_refuse(ac, AR_REPLAY, full);
		}
		return -1;
	}
	if (link_responder_finish(&ac->link, agent_out, sizeof(agent_out),
	    &n) < 0 || bufferevent_write(ac->bev, agent_out, n) != 0) {
		agent_refuse(ac, AR_INTERNAL, "could not answer the handshake");
		return -1;
	}
	ac->state = AC_HELLO;
	return 0;
}

static int
agent_hello_version(const json_t *versions)
{
	size_t i;
	json_t *v;
	int best = 0;

	json_array_foreach(versions, i, v)
		if (json_integer_value(v) == MSG_CATALOGUE_VERSION)
			best = MSG_CATALOGUE_VERSION;
	return best;
}

static int
agent_on_hello(struct agent_conn *ac, struct msg *m)
{
	char err[256], why[160];
	struct fleet_host *fh;
	int version;

	if (m->type != MSG_REQUEST || strcmp(m->method, "hello") != 0) {
		agent_reject(ac, "the first message must be a hello request");
		return -1;
	}
	if (msg_check(MSG_S_HELLO, m->params, err, sizeof(err)) < 0) {
		(void)agent_send(ac, msg_encode_error(m->id, "invalid", "%s", err));
		agent_reject(ac, err);
		return -1;
	}
	if ((version = agent_hello_version(json_object_get(m->params,
	    "versions"))) == 0) {
		(void)agent_send(ac, msg_encode_error(m->id, "invalid",
		    "no common message catalogue version (hvd speaks %d)",
		    MSG_CATALOGUE_VERSION));
		agent_reject(ac, "no common message catalogue version");
		return -1;
	}
	if ((fh = agent_ops->hello(ac->hvd, ac, &ac->host, m->params, ac->peer,
	    why, sizeof(why))) == NULL) {
		agent_reject(ac, why);
		return -1;
	}
	ac->fh = fh;
	ac->state = AC_UP;
	event_del(ac->ev_deadline);
	log_info("host %s: up: agent %s from %s", ac->host.name,
	    json_string_value(json_object_get(m->params, "agent_version")),
	    ac->peer);
	if (agent_send(ac, msg_encode_result(m->id, json_pack("{s:i, s:s, s:I}",
	    "version", version, "host", ac->host.name, "heartbeat_ms",
	    (json_int_t)ac->hvd->conf->heartbeat_ms))) < 0) {
		agent_conn_close(ac, "could not send the hello reply");
		return -1;
	}
	agent_ops->up(ac->hvd, fh, ac->host.id);
	return 0;
}

static int
agent_on_message(struct agent_conn *ac, struct msg *m)
{
	char err[256];

	agent_ops->heartbeat(ac->fh);
	switch (m->type) {
	case MSG_NOTIFY:
		if (agent_ops->notify(ac->hvd, ac->fh, m->method, m->params, err,
		    sizeof(err)) < 0) {
			agent_reject(ac, err);
			return -1;
		}
		return 0;
	case MSG_REQUEST:
		if (agent_send(ac, msg_encode_error(m->id, "unknown_method",
		    "hvd serves no method '%s'", m->method)) < 0) {
			agent_conn_close(ac, "write failed");
			return -1;
		}
		return 0;
	case MSG_REPLY: {
		struct agent_pending *ap;

		TAILQ_FOREACH(ap, &ac->pending, entry)
			if (ap->id == m->id)
				break;
		/* A late reply to a request that timed out is dropped. */
		if (ap)
			agent_pending_done(ap, m->result, m->error);
		return 0;
	}
	}
	return 0;
}

/* Returns -1 when ac was freed. */
static int
agent_on_frame(struct agent_conn *ac, const uint8_t *body, size_t len)
{
	struct msg m;
	char err[256];
	size_t n = 0;
	int r;

	if (ac->state == AC_MSG1)
		return agent_on_msg1(ac, body, len);
	if (link_open(&ac->link, body, len, agent_plain, sizeof(agent_plain),
	    &n) < 0) {
		agent_reject(ac, "transport frame failed authentication "
		    "(tampered, replayed or reordered)");
		return -1;
	}
	if (msg_decode((const char *)agent_plain, n, &m, err, sizeof(err)) < 0) {
		agent_reject(ac, err);
		return -1;
	}
	r = ac->state == AC_HELLO ? agent_on_hello(ac, &m) :
	    agent_on_message(ac, &m);
	msg_dispose(&m);
	return r;
}

static void
agent_read_cb(struct bufferevent *bev, void *arg)
{
	struct agent_conn *ac = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	uint8_t pre[LINK_PREAMBLE_LEN];
	unsigned major, minor;
	size_t blen;
	int r;

	/* Bounded: the read high-watermark caps what is buffered, and a
	 * paused session stops at once (its frames wait in the buffer). */
	while (!ac->paused) {
		size_t have = evbuffer_get_length(in);

		if (ac->state == AC_PREAMBLE) {
			if (have < LINK_PREAMBLE_LEN)
				return;
			evbuffer_remove(in, pre, sizeof(pre));
			r = link_preamble_check(pre, &major, &minor);
			if (r == -EPROTONOSUPPORT) {
				char why[96];

				snprintf(why, sizeof(why), "wire version %u.%u is "
				    "not supported (hvd speaks %d)", major, minor,
				    LINK_VERSION_MAJOR);
				agent_refuse(ac, AR_VERSION, why);
				return;
			}
			if (r < 0) {
				agent_refuse(ac, AR_GARBAGE, "garbage before "
				    "the handshake (no HVAG preamble)");
				return;
			}
			ac->state = AC_MSG1;
			continue;
		}
		if ((r = link_ev_frame(in, agent_frame, sizeof(agent_frame),
		    &blen)) == 0)
			return;
		if (r < 0 && ac->state == AC_MSG1) {
			agent_refuse(ac, AR_OVERSIZE, "frame length 0 or above "
			    "65535");
			return;
		}
		if (r < 0) {
			agent_reject(ac, "frame length 0 or above 65535");
			return;
		}
		if (agent_on_frame(ac, agent_frame, blen) < 0)
			return;
	}
}

static void
agent_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct agent_conn *ac = arg;

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	/* Connect-and-close costs a counter, not a line. */
	if (ac->state < AC_HELLO)
		agent_refuse(ac, AR_CLOSED, what & BEV_EVENT_EOF ?
		    "closed the connection before the handshake" :
		    "connection error before the handshake");
	else if (what & BEV_EVENT_EOF)
		agent_conn_close(ac, "peer closed the connection");
	else
		agent_conn_close(ac, "connection error");
}

static void
agent_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_conn *ac = arg;

	(void)fd;
	(void)what;
	if (ac->state < AC_HELLO)
		agent_refuse(ac, AR_TIMEOUT, "handshake not finished within "
		    "10 s");
	else
		agent_reject(ac, "handshake not finished within 10 s (no "
		    "hello)");
}

static void
agent_accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct hvd *hvd = arg;
	struct timeval tv = { AGENT_HANDSHAKE_TIMEOUT_S, 0 };
	struct agent_conn *ac;
	(void)lis;
	(void)salen;
	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	TAILQ_INSERT_TAIL(&agent_conns, ac, entry);
	TAILQ_INIT(&ac->pending);
	ac->hvd = hvd;
	sa_addr_str(sa, ac->peer, sizeof(ac->peer));
	ac->bev = bufferevent_socket_new(hvd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	ac->ev_deadline = evtimer_new(hvd->base, agent_deadline_cb, ac);
	ac->ev_stall = evtimer_new(hvd->base, agent_stall_cb, ac);
	if (ac->bev == NULL || ac->ev_deadline == NULL ||
	    ac->ev_stall == NULL) {
		if (ac->bev == NULL)
			evutil_closesocket(fd);
		agent_conn_free(ac);
		return;
	}
	bufferevent_setcb(ac->bev, agent_read_cb, agent_write_cb,
	    agent_event_cb, ac);
	bufferevent_setwatermark(ac->bev, EV_READ, 0, AGENT_INPUT_MAX);
	/* agent_write_cb runs when output drains to the low-water mark. */
	bufferevent_setwatermark(ac->bev, EV_WRITE, AGENT_OUTPUT_LOW, 0);
	bufferevent_enable(ac->bev, EV_READ | EV_WRITE);
	evtimer_add(ac->ev_deadline, &tv);
}

static void
agent_listen_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (agent_listener)
		evconnlistener_enable(agent_listener);
}

/*
 * Out of descriptors (EMFILE, ENFILE) or memory: the pending connection
 * stays in the backlog and the listen socket stays readable, so accepting
 * again at once would spin.  Pause accepting for a second, say so once
 * per pause, and carry on serving the sessions already open.
 */
static void
agent_listen_error_cb(struct evconnlistener *lis, void *arg)
{
	struct timeval tv = { AGENT_ACCEPT_PAUSE_S, 0 };
	int e = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warnx("agents: accept: %s", strerror(e));
		return;
	}
	evconnlistener_disable(lis);
	if (agent_resume == NULL ||
	    evtimer_add(agent_resume, &tv) == -1) {
		/* No timer: better a busy listener than a dead one. */
		evconnlistener_enable(lis);
		return;
	}
	agent_accept_pauses++;
	log_warnx("agents: accept: %s; not accepting for %d s", strerror(e),
	    AGENT_ACCEPT_PAUSE_S);
}

int
agents_request(struct agent_conn *ac, const char *method, json_t *params,
    agent_reply_cb cb, void *arg)
{
	struct timeval tv = { AGENT_REQUEST_TIMEOUT_S, 0 };
	struct agent_pending *ap;

	if (ac == NULL || ac->state != AC_UP) {
		json_decref(params);
		return -ENOTCONN;
	}
	if (ac->npending >= AGENT_PENDING_MAX) {
		json_decref(params);
		return -EBUSY;
	}
	if ((ap = calloc(1, sizeof(*ap))) == NULL ||
	    (ap->ev_timeout = evtimer_new(ac->hvd->base,
	    agent_pending_timeout_cb, ap)) == NULL) {
		free(ap);
		json_decref(params);
		return -ENOMEM;
	}
	ap->ac = ac;
	ap->id = ++ac->next_id;
	ap->cb = cb;
	ap->arg = arg;
	if (agent_send(ac, msg_encode_request(ap->id, method, params)) < 0) {
		event_free(ap->ev_timeout);
		free(ap);
		return -EIO;
	}
	TAILQ_INSERT_TAIL(&ac->pending, ap, entry);
	ac->npending++;
	evtimer_add(ap->ev_timeout, &tv);
	return 0;
}

/*
 * Events retention: one bounded batch per tick (db_event_prune), the next
 * batch soon while the policy is behind, else a pass a minute.  The policy
 * is read from the running config each time, so SIGHUP changes it.
 */
static void
agent_prune_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hvd *hvd = arg;
	const struct hvd_config *c = hvd->conf;
	struct timeval tv = { AGENT_PRUNE_IDLE_S, 0 };
	int r;

	(void)fd;
	(void)what;
	r = db_event_prune(hvd->db, hvd_now_wall(), c->events_max_age_s,
	    c->events_max_rows, AGENT_PRUNE_BATCH);
	if (r > 0) {
		agent_pruned += (uint64_t)r;
		agent_prune_burst += (uint64_t)r;
	}
	if (r == AGENT_PRUNE_BATCH) {
		tv.tv_sec = 0;
		tv.tv_usec = AGENT_PRUNE_BUSY_US;
	} else if (agent_prune_burst > 0) {
		log_info("events: %llu pruned (events-max-age %u s, "
		    "events-max-rows %u)",
		    (unsigned long long)agent_prune_burst, c->events_max_age_s,
		    c->events_max_rows);
		agent_prune_burst = 0;
	}
	evtimer_add(agent_prune, &tv);
}

int
agents_init(struct hvd *hvd, const struct agent_ops *ops)
{
	const struct hvd_config *c = hvd->conf;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	struct timeval first = { AGENT_PRUNE_FIRST_S, 0 };
	socklen_t len;

	agent_ops = ops;
	/* Every event source needs retention, with or without agents. */
	if ((agent_prune = evtimer_new(hvd->base, agent_prune_cb, hvd)) == NULL)
		return -ENOMEM;
	evtimer_add(agent_prune, &first);
	if (!c->agent_listen)
		return 0;
	if ((agent_sweep = evtimer_new(hvd->base, agent_sweep_cb, NULL)) ==
	    NULL)
		return -ENOMEM;
	if (inet_pton(AF_INET, c->agent_listen_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->agent_listen_port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, c->agent_listen_host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->agent_listen_port);
		len = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	agent_listener = evconnlistener_new_bind(hvd->base, agent_accept_cb, hvd,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, (struct sockaddr *)&ss, (int)len);
	if (agent_listener == NULL) {
		int e = errno ? errno : EADDRINUSE;
		char where[ADDR_STRLEN];

		addr_join(c->agent_listen_host, c->agent_listen_port, where,
		    sizeof(where));
		errno = e;
		log_warn("agents: listen %s", where);
		return -e;
	}
	evconnlistener_set_error_cb(agent_listener, agent_listen_error_cb);
	if ((agent_resume = evtimer_new(hvd->base, agent_listen_resume_cb,
	    NULL)) == NULL)
		return -ENOMEM;
	if (getsockname(evconnlistener_get_fd(agent_listener),
	    (struct sockaddr *)&ss, &len) == 0)
		agent_port = ntohs(ss.ss_family == AF_INET ? sin->sin_port :
		    sin6->sin6_port);
	log_info("agents: listening on %s:%u", c->agent_listen_host, agent_port);
	return 0;
}

void
agents_shutdown(void)
{
	struct agent_conn *ac;

	while ((ac = TAILQ_FIRST(&agent_conns)) != NULL)
		agent_conn_free(ac);
	if (agent_listener)
		evconnlistener_free(agent_listener);
	agent_listener = NULL;
	if (agent_resume)
		event_free(agent_resume);
	agent_resume = NULL;
	/* What the refusal log still holds is written, not lost. */
	agent_refusal_sweep(hvd_now_mono(), true);
	if (agent_sweep)
		event_free(agent_sweep);
	agent_sweep = NULL;
	if (agent_prune)
		event_free(agent_prune);
	agent_prune = NULL;
}

void
agents_metrics(FILE *f)
{
	fprintf(f, "# HELP hvd_agent_refused_total Agent-port connections "
	    "refused before they authenticated, by reason (no event rows).\n"
	    "# TYPE hvd_agent_refused_total counter\n");
	for (size_t i = 0; i < AR__COUNT; i++)
		fprintf(f, "hvd_agent_refused_total{reason=\"%s\"} %llu\n",
		    agent_refusal_names[i].label,
		    (unsigned long long)agent_refused[i]);
	fprintf(f, "# HELP hvd_agent_refusal_sources_dropped_total Source "
	    "addresses evicted from the refusal log's table (their counts go "
	    "to the other-addresses line).\n"
	    "# TYPE hvd_agent_refusal_sources_dropped_total counter\n"
	    "hvd_agent_refusal_sources_dropped_total %llu\n",
	    (unsigned long long)agent_sources_dropped);
	fprintf(f, "# HELP hvd_agent_rejected_total Sessions of known hosts "
	    "refused, each an agent.rejected event.\n"
	    "# TYPE hvd_agent_rejected_total counter\n"
	    "hvd_agent_rejected_total %llu\n",
	    (unsigned long long)agent_rejected);
	fprintf(f, "# HELP hvd_agent_backpressure_pauses_total Times hvd "
	    "stopped reading an agent whose unsent output passed the "
	    "high-water mark.\n# TYPE hvd_agent_backpressure_pauses_total counter\n"
	    "hvd_agent_backpressure_pauses_total %llu\n",
	    (unsigned long long)agent_bp_pauses);
	fprintf(f, "# HELP hvd_agent_backpressure_closed_total Sessions closed "
	    "because their output stayed above the mark too long.\n"
	    "# TYPE hvd_agent_backpressure_closed_total counter\n"
	    "hvd_agent_backpressure_closed_total %llu\n",
	    (unsigned long long)agent_bp_closed);
	fprintf(f, "# HELP hvd_events_pruned_total Events deleted by the "
	    "retention policy (events-max-age, events-max-rows).\n"
	    "# TYPE hvd_events_pruned_total counter\n"
	    "hvd_events_pruned_total %llu\n", (unsigned long long)agent_pruned);
}

uint64_t
agents_accept_pauses(void)
{
	return agent_accept_pauses;
}

uint16_t
agents_port(void)
{
	return agent_port;
}
