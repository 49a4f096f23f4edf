/*
 * The agent link on hvd's main loop: the listener, the handshake
 * (PROTOCOL.md section 4), hello's framing and version, requests hvd sends
 * and their replies.  What a session means (which host a key is, the boot
 * token, telemetry, VM reports) is the fleet's: it comes in as the
 * struct agent_ops main.c hands to agents_init(), and notifications are
 * dispatched through it.
 *
 * A connection owns its bufferevent, its deadline timer and its link keys;
 * agent_conn_free() releases all of them.  Every refusal closes only that
 * connection and writes an `agent.rejected` event naming the peer and the
 * reason; hvd keeps serving everyone else.
 *
 * Invariants: input per connection is bounded (a read high-watermark), so
 * the frame loop in a read callback is bounded too; nothing here blocks.
 * Must never: trust anything before the handshake authenticated it, log a
 * boot token, or let a peer's bytes reach the log unescaped.
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

struct agent_conn {
	TAILQ_ENTRY(agent_conn) entry;
	struct hvd *hvd;
	struct bufferevent *bev;
	struct event *ev_deadline;
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

/* Refuses the peer: logs once, records the event, closes. */
static void
agent_reject(struct agent_conn *ac, const char *why)
{
	char detail[256];

	snprintf(detail, sizeof(detail), "%s: %s", ac->peer, why);
	log_warnx("agent %s: refused: %s", ac->peer, why);
	(void)db_event_record(ac->hvd->db, "agent.rejected",
	    ac->host.name[0] ? ac->host.name : ac->peer, "hvd", detail,
	    hvd_now_wall());
	agent_conn_free(ac);
}

static int
agent_send(struct agent_conn *ac, char *json)
{
	int r;

	if (json == NULL)
		return -ENOMEM;
	r = link_ev_send(&ac->link, ac->bev, json, strlen(json));
	free(json);
	return r;
}

static int
agent_on_msg1(struct agent_conn *ac, const uint8_t *body, size_t len)
{
	char why[160];
	size_t n = 0;

	if (link_init_responder(&ac->link, keys_link_secret()) < 0) {
		agent_reject(ac, "internal error: no agent-link key");
		return -1;
	}
	if (link_responder_read(&ac->link, body, len) < 0) {
		agent_reject(ac, "handshake failed (wrong hvd key, or not a "
		    "valid message 1)");
		return -1;
	}
	if (agent_ops->authorize(ac->hvd, ac->link.remote_static,
	    ac->link.remote_timestamp, &ac->host, why, sizeof(why)) < 0) {
		agent_reject(ac, why);
		return -1;
	}
	if (link_responder_finish(&ac->link, agent_out, sizeof(agent_out),
	    &n) < 0 || bufferevent_write(ac->bev, agent_out, n) != 0) {
		agent_reject(ac, "could not answer the handshake");
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

	/* Bounded: the read high-watermark caps what is buffered. */
	for (;;) {
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
				agent_reject(ac, why);
				return;
			}
			if (r < 0) {
				agent_reject(ac, "garbage before the handshake "
				    "(no HVAG preamble)");
				return;
			}
			ac->state = AC_MSG1;
			continue;
		}
		if ((r = link_ev_frame(in, agent_frame, sizeof(agent_frame),
		    &blen)) == 0)
			return;
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
	if (what & BEV_EVENT_EOF)
		agent_conn_close(ac, "peer closed the connection");
	else if (what & BEV_EVENT_ERROR)
		agent_conn_close(ac, "connection error");
}

static void
agent_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	agent_reject(arg, "handshake not finished within 10 s");
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
	if (ac->bev == NULL || ac->ev_deadline == NULL) {
		if (ac->bev == NULL)
			evutil_closesocket(fd);
		agent_conn_free(ac);
		return;
	}
	bufferevent_setcb(ac->bev, agent_read_cb, NULL, agent_event_cb, ac);
	bufferevent_setwatermark(ac->bev, EV_READ, 0, AGENT_INPUT_MAX);
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

int
agents_init(struct hvd *hvd, const struct agent_ops *ops)
{
	const struct hvd_config *c = hvd->conf;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;

	agent_ops = ops;
	if (!c->agent_listen)
		return 0;
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
		log_warn("agents: listen %s:%u", c->agent_listen_host,
		    c->agent_listen_port);
		return -errno ? -errno : -EADDRINUSE;
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
