/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Interactive consoles, hvd's side: the sessions it brokers between API
 * callers and agents (PROTOCOL.md 6.2 vm.console_*; the REST routes are
 * api/api_vm_console.c).  A session is attached on the VM's host with
 * vm.console_attach; what the guest writes comes back as
 * vm.console_output notifies into the session's ring (CONSOLE_RING bytes,
 * addressed by byte offset since the start, so a reader that fell behind
 * learns how much it lost); a read waits (long-polls) until there is
 * something past its offset, the session closes, or its wait is over.
 *
 * Invariants: memory is bounded (CONSOLE_MAX sessions, one ring each, one
 * waiting read each, CONSOLE_INPUTS_MAX inputs in flight each); a session
 * is found only by its id together with the caller it belongs to, and a
 * detached or forgotten id is never found again (ids are 128 random bits,
 * never reused); a session whose agent requests are in flight is freed
 * only when the last one has answered (agents.c answers every request
 * once, also on disconnect).  Time comes in as an argument (the sweep).
 * Must never: block, accept a notify for a session from another host
 * than the session's, or log console data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <sodium.h>

#include "console.h"
#include "fleet.h"
#include "msg.h"

#define CONSOLE_RING		(64 * 1024)
#define CONSOLE_MAX		64
#define CONSOLE_IDLE_S		60
#define CONSOLE_IDLE_MS		(CONSOLE_IDLE_S * 1000)
#define CONSOLE_INPUTS_MAX	4
#define CONSOLE_SWEEP_MS	250

enum console_state { CS_ATTACHING, CS_OPEN, CS_CLOSED };

struct console {
	TAILQ_ENTRY(console) entry;
	struct hvd *hvd;
	char id[CONSOLE_ID_HEX + 1];	/* the API's handle */
	char link[CONSOLE_ID_HEX + 1];	/* the agent's name for it */
	char owner[CONSOLE_OWNER_MAX + 1];
	char vm[API_NAME_MAX + 1], uuid[37], host[API_NAME_MAX + 1];
	int64_t host_id;
	enum console_state state;
	bool listed;			/* false: gone, freed when refs == 0 */
	unsigned refs;			/* agent requests in flight */
	unsigned inputs;		/* ... of them inputs */
	char reason[CONSOLE_REASON_MAX + 1];	/* CS_CLOSED: why */
	int64_t seen;			/* mono ms: last read */
	uint64_t end;			/* bytes received in all */
	uint8_t ring[CONSOLE_RING];	/* byte k at ring[k % CONSOLE_RING] */
	struct {
		console_read_cb *cb;	/* NULL: no read waits */
		void *arg;
		uint64_t from;
		int64_t deadline;	/* mono ms */
	} wait;
	console_attach_cb *attach_cb;
	void *attach_arg;
};

static TAILQ_HEAD(, console) consoles = TAILQ_HEAD_INITIALIZER(consoles);
static unsigned nconsoles;
static struct event *console_ev_sweep;

static const char *
console_state_name(enum console_state s)
{
	return s == CS_ATTACHING ? "attaching" : s == CS_OPEN ? "open" :
	    "closed";
}

/* The end of a session, in the audit log. */
static void
console_event(const struct console *c, const char *what)
{
	char detail[CONSOLE_REASON_MAX + 96];

	snprintf(detail, sizeof(detail), "console session %.8s... on %s: %s",
	    c->id, c->host, what);
	(void)db_event_record(c->hvd->db, "vm.console", c->vm, c->owner,
	    detail, hvd_now_wall());
}

static void
console_free(struct console *c)
{
	free(c);
}

/* Off the table (its id is never found again); freed once nothing the
 * agent owes it is outstanding. */
static void
console_unlist(struct console *c)
{
	if (!c->listed)
		return;
	TAILQ_REMOVE(&consoles, c, entry);
	c->listed = false;
	nconsoles--;
	if (nconsoles == 0 && console_ev_sweep != NULL)
		evtimer_del(console_ev_sweep);
	if (c->refs == 0)
		console_free(c);
}

static void
console_unref(struct console *c)
{
	c->refs--;
	if (!c->listed && c->refs == 0)
		console_free(c);
}

void
console_chunk_dispose(struct console_chunk *k)
{
	if (k == NULL)
		return;
	free(k->data);
	k->data = NULL;
	k->len = 0;
}

/* What lies past FROM, into K (its data the consumer's to free). */
static int
console_fill(const struct console *c, uint64_t from, struct console_chunk *k)
{
	uint64_t start = c->end > CONSOLE_RING ? c->end - CONSOLE_RING : 0;

	memset(k, 0, sizeof(*k));
	snprintf(k->vm, sizeof(k->vm), "%s", c->vm);
	if (from < start) {
		k->lost = start - from;
		from = start;
	}
	k->len = (size_t)(c->end - from);
	k->next = c->end;
	if (c->state == CS_CLOSED) {
		k->closed = true;
		snprintf(k->reason, sizeof(k->reason), "%s", c->reason);
	}
	if ((k->data = malloc(k->len ? k->len : 1)) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < k->len; i++)
		k->data[i] = c->ring[(from + i) % CONSOLE_RING];
	return 0;
}

/* The waiting read, if any, gets what there is now. */
static void
console_wake(struct console *c)
{
	struct console_chunk k;
	console_read_cb *cb = c->wait.cb;

	if (cb == NULL)
		return;
	c->wait.cb = NULL;
	if (console_fill(c, c->wait.from, &k) < 0) {
		k.len = 0;
		k.next = c->wait.from;
	}
	cb(c->wait.arg, &k);
}

static void
console_close(struct console *c, const char *why)
{
	if (c->state == CS_CLOSED)
		return;
	c->state = CS_CLOSED;
	snprintf(c->reason, sizeof(c->reason), "%s", why);
	log_info("vm %s: console session %.8s... closed: %s", c->vm, c->id,
	    why);
	console_event(c, why);
	console_wake(c);
}

static void
console_ignore_reply(void *arg, json_t *result, json_t *error)
{
	struct console *c = arg;

	if (error != NULL)
		log_debug("vm %s: console detach on %s: %s", c->vm, c->host,
		    json_string_value(json_object_get(error, "message")));
	(void)result;
	console_unref(c);
}

/* Tells the agent (when the session is attached there) and forgets it. */
static void
console_end(struct console *c, const char *why)
{
	struct fleet_host *fh = fleet_by_id(c->host_id);

	if (c->state == CS_OPEN && fleet_request(fh, "vm.console_detach",
	    json_pack("{s:s, s:s}", "uuid", c->uuid, "session", c->link),
	    console_ignore_reply, c) == 0)
		c->refs++;
	console_close(c, why);
	console_unlist(c);
}

void
console_sweep(int64_t now_ms)
{
	struct console *c, *next;

	for (c = TAILQ_FIRST(&consoles); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->wait.cb != NULL) {
			if (now_ms >= c->wait.deadline) {
				c->seen = now_ms;
				console_wake(c);
			}
			continue;
		}
		if (c->state != CS_ATTACHING && now_ms - c->seen >= CONSOLE_IDLE_MS)
			console_end(c, "idle: not read for " JF_STR(CONSOLE_IDLE_S)
			    " s");
	}
}

static void
console_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	console_sweep(hvd_now_mono_ms());
}

int
console_init(struct hvd *hvd)
{
	if ((console_ev_sweep = event_new(hvd->base, -1, EV_PERSIST,
	    console_sweep_cb, NULL)) == NULL)
		return -ENOMEM;
	return 0;
}

void
console_shutdown(void)
{
	struct console *c;

	while ((c = TAILQ_FIRST(&consoles)) != NULL) {
		console_close(c, "hvd is shutting down");
		/* Whatever the agent still owes it is not waited for. */
		c->refs = 0;
		console_unlist(c);
	}
	if (console_ev_sweep != NULL)
		event_free(console_ev_sweep);
	console_ev_sweep = NULL;
}

static struct console *
console_find(const char *id, const char *owner)
{
	struct console *c;

	if (id == NULL || !jf_hex_valid(id, strlen(id), CONSOLE_ID_HEX))
		return NULL;
	TAILQ_FOREACH(c, &consoles, entry)
		if (sodium_memcmp(c->id, id, CONSOLE_ID_HEX) == 0)
			return strcmp(c->owner, owner) == 0 ? c : NULL;
	return NULL;
}

/* The session an agent's notify names, if that agent's host has it. */
static struct console *
console_of_notify(struct fleet_host *fh, const json_t *params)
{
	const char *link = json_string_value(json_object_get(params, "session"));
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	struct console *c;

	TAILQ_FOREACH(c, &consoles, entry)
		if (strcmp(c->link, link) == 0)
			return fleet_by_id(c->host_id) == fh &&
			    strcmp(c->uuid, uuid) == 0 ? c : NULL;
	return NULL;
}

static void
console_random_hex(char out[CONSOLE_ID_HEX + 1])
{
	uint8_t b[CONSOLE_ID_HEX / 2];

	randombytes_buf(b, sizeof(b));
	sodium_bin2hex(out, CONSOLE_ID_HEX + 1, b, sizeof(b));
}

/* An agent's error object as -errno and text. */
static int
console_agent_err(const struct console *c, const json_t *error, char *why,
    size_t len)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));

	snprintf(why, len, "%s's agent: %s", c->host, msg ? msg : "?");
	if (code == NULL)
		return -EPROTO;
	if (strcmp(code, "failed") == 0 || strcmp(code, "busy") == 0)
		return -EREMOTEIO;
	if (strcmp(code, "timeout") == 0)
		return -ETIMEDOUT;
	if (strcmp(code, "disconnected") == 0)
		return -ENOTCONN;
	if (strcmp(code, "unknown_method") == 0)
		snprintf(why, len, "%s's agent has no interactive console (an "
		    "older hv-agent?): %s", c->host, msg ? msg : "?");
	return -EPROTO;
}

static void
console_attached(void *arg, json_t *result, json_t *error)
{
	struct console *c = arg;
	console_attach_cb *cb = c->attach_cb;
	char why[MSG_VM_REASON_MAX + 128], bad[256];
	int r = 0;

	c->attach_cb = NULL;
	if (error != NULL) {
		r = console_agent_err(c, error, why, sizeof(why));
	} else if (msg_check(MSG_S_VM_ACCEPTED, result, bad, sizeof(bad)) < 0) {
		snprintf(why, sizeof(why), "%s's agent answered the attach "
		    "wrongly: %s", c->host, bad);
		r = -EPROTO;
	}
	if (r == 0 && c->listed && c->state == CS_ATTACHING) {
		c->state = CS_OPEN;
		c->seen = hvd_now_mono_ms();
		log_info("vm %s: console session %.8s... attached on %s for %s",
		    c->vm, c->id, c->host, c->owner);
		console_event(c, "attached");
		if (cb)
			cb(c->attach_arg, c->id, 0, NULL);
		console_unref(c);
		return;
	}
	if (r == 0) {
		snprintf(why, sizeof(why), "the session ended before it was "
		    "attached");
		r = -ECANCELED;
	}
	log_info("vm %s: console attach on %s failed: %s", c->vm, c->host, why);
	if (cb)
		cb(c->attach_arg, NULL, r, why);
	/* The agent may still attach it after all: asked to undo that. */
	if (r == -ETIMEDOUT && fleet_request(fleet_by_id(c->host_id),
	    "vm.console_detach", json_pack("{s:s, s:s}", "uuid", c->uuid,
	    "session", c->link), console_ignore_reply, c) == 0)
		c->refs++;
	c->state = CS_CLOSED;
	console_unlist(c);
	console_unref(c);
}

int
console_attach(struct hvd *hvd, const struct vm_row *v, const char *owner,
    console_attach_cb *cb, void *arg, char *err, size_t errlen)
{
	struct fleet_host *fh;
	struct console *c, *o;
	unsigned on_vm = 0;
	int r;

	if (strcmp(v->state, "running") != 0) {
		snprintf(err, errlen, "VM %s is not running (state %s); only a "
		    "running VM has a console to attach to", v->name, v->state);
		return -ESRCH;
	}
	fh = v->host_id ? fleet_by_id(v->host_id) : NULL;
	if (fh == NULL || fleet_session(fh) == NULL) {
		snprintf(err, errlen, "host %s has no agent session",
		    v->host[0] ? v->host : "-");
		return -ENOTCONN;
	}
	TAILQ_FOREACH(o, &consoles, entry)
		on_vm += strcmp(o->uuid, v->uuid) == 0 && o->state != CS_CLOSED;
	if (on_vm >= CONSOLE_PER_VM_MAX) {
		snprintf(err, errlen, "VM %s has %u console sessions attached, "
		    "the most one VM may have; detach one first", v->name, on_vm);
		return -EBUSY;
	}
	if (nconsoles >= CONSOLE_MAX) {
		snprintf(err, errlen, "hvd holds %d console sessions, the most it "
		    "keeps; try again when one is detached or idle for %d s",
		    CONSOLE_MAX, CONSOLE_IDLE_S);
		return -EMFILE;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->hvd = hvd;
	console_random_hex(c->id);
	console_random_hex(c->link);
	snprintf(c->owner, sizeof(c->owner), "%s", owner);
	snprintf(c->vm, sizeof(c->vm), "%s", v->name);
	snprintf(c->uuid, sizeof(c->uuid), "%s", v->uuid);
	snprintf(c->host, sizeof(c->host), "%s", v->host);
	c->host_id = v->host_id;
	c->state = CS_ATTACHING;
	c->attach_cb = cb;
	c->attach_arg = arg;
	if ((r = fleet_request(fh, "vm.console_attach", json_pack("{s:s, s:s}",
	    "uuid", c->uuid, "session", c->link), console_attached, c)) < 0) {
		snprintf(err, errlen, "cannot reach host %s: %s", v->host,
		    strerror(-r));
		free(c);
		return -EIO;
	}
	c->refs = 1;
	c->listed = true;
	TAILQ_INSERT_TAIL(&consoles, c, entry);
	if (nconsoles++ == 0) {
		struct timeval tv = { 0, CONSOLE_SWEEP_MS * 1000 };

		evtimer_add(console_ev_sweep, &tv);
	}
	return 0;
}

int
console_read(const char *id, const char *owner, uint64_t from,
    unsigned wait_s, int64_t now_ms, console_read_cb *cb, void *arg,
    struct console_chunk *out, char *err, size_t errlen)
{
	struct console *c;

	if ((c = console_find(id, owner)) == NULL || c->state == CS_ATTACHING) {
		snprintf(err, errlen, "no console session '%.*s' of yours "
		    "(unknown, detached or ended)", CONSOLE_ID_HEX, id);
		return -ENOENT;
	}
	c->seen = now_ms;
	if (from > c->end) {
		snprintf(err, errlen, "query 'from' is %llu, past the end of the "
		    "output (%llu)", (unsigned long long)from,
		    (unsigned long long)c->end);
		return -ERANGE;
	}
	/* One read waits at a time: an older one gets what there is. */
	console_wake(c);
	if (from < c->end || c->state == CS_CLOSED || wait_s == 0) {
		if (console_fill(c, from, out) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		return 1;
	}
	if (wait_s > CONSOLE_WAIT_MAX_S)
		wait_s = CONSOLE_WAIT_MAX_S;
	c->wait.cb = cb;
	c->wait.arg = arg;
	c->wait.from = from;
	c->wait.deadline = now_ms + (int64_t)wait_s * 1000;
	return 0;
}

struct console_input_ctx {
	struct console *c;
	console_input_cb *cb;
	void *arg;
};

static void
console_input_done(void *arg, json_t *result, json_t *error)
{
	struct console_input_ctx *x = arg;
	char why[MSG_VM_REASON_MAX + 128] = "";
	int r = 0;

	(void)result;
	x->c->inputs--;
	if (error != NULL)
		r = console_agent_err(x->c, error, why, sizeof(why));
	x->cb(x->arg, r, why);
	console_unref(x->c);
	free(x);
}

int
console_input(const char *id, const char *owner, const uint8_t *data,
    size_t len, console_input_cb *cb, void *arg, char *err, size_t errlen)
{
	struct console_input_ctx *x;
	struct console *c;
	char *b64;
	int r;

	if ((c = console_find(id, owner)) == NULL || c->state == CS_ATTACHING) {
		snprintf(err, errlen, "no console session '%.*s' of yours "
		    "(unknown, detached or ended)", CONSOLE_ID_HEX, id);
		return -ENOENT;
	}
	if (c->state == CS_CLOSED) {
		snprintf(err, errlen, "the console session is closed: %s",
		    c->reason);
		return -EPIPE;
	}
	if (c->inputs >= CONSOLE_INPUTS_MAX) {
		snprintf(err, errlen, "%d inputs of this session are still on "
		    "their way to %s; send the next when one is answered",
		    CONSOLE_INPUTS_MAX, c->host);
		return -EBUSY;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL ||
	    (b64 = console_b64_encode(data, len)) == NULL) {
		free(x);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->c = c;
	x->cb = cb;
	x->arg = arg;
	r = fleet_request(fleet_by_id(c->host_id), "vm.console_input",
	    json_pack("{s:s, s:s, s:s}", "uuid", c->uuid, "session", c->link,
	    "data", b64), console_input_done, x);
	free(b64);
	if (r < 0) {
		free(x);
		snprintf(err, errlen, "cannot reach host %s: %s", c->host,
		    strerror(-r));
		return r == -EBUSY ? -EBUSY : -EIO;
	}
	c->refs++;
	c->inputs++;
	return 0;
}

int
console_detach(const char *id, const char *owner, char *err, size_t errlen)
{
	struct console *c;

	if ((c = console_find(id, owner)) == NULL || c->state == CS_ATTACHING) {
		snprintf(err, errlen, "no console session '%.*s' of yours "
		    "(unknown, detached or ended)", CONSOLE_ID_HEX, id);
		return -ENOENT;
	}
	console_end(c, "detached");
	return 0;
}

json_t *
console_list_json(const char *owner, int64_t now_ms)
{
	json_t *arr = json_array();
	struct console *c;

	TAILQ_FOREACH(c, &consoles, entry) {
		if (strcmp(c->owner, owner) != 0 || c->state == CS_ATTACHING)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I, "
		    "s:s?, s:I}", "session", c->id, "vm", c->vm, "host", c->host,
		    "state", console_state_name(c->state), "next",
		    (json_int_t)c->end, "closed", c->state == CS_CLOSED ?
		    c->reason : NULL, "idle_s", (json_int_t)((now_ms - c->seen) / 1000)));
	}
	return json_pack("{s:o}", "consoles", arr);
}

void
console_agent_output(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	const char *b64 = json_string_value(json_object_get(params, "data"));
	uint8_t data[CONSOLE_OUTPUT_MAX];
	struct console *c;
	size_t n = 0;

	(void)hvd;
	if ((c = console_of_notify(fh, params)) == NULL ||
	    c->state == CS_CLOSED) {
		log_debug("host %s: console output for no session of its own",
		    fleet_name(fh));
		return;
	}
	/* The schema took it: canonical base64 of at most the bound. */
	if (console_b64_decode(b64, strlen(b64), data, sizeof(data), &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		c->ring[(c->end + i) % CONSOLE_RING] = data[i];
	c->end += n;
	console_wake(c);
}

void
console_agent_closed(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	struct console *c;

	(void)hvd;
	if ((c = console_of_notify(fh, params)) == NULL)
		return;
	console_close(c, json_string_value(json_object_get(params, "reason")));
}

void
console_host_gone(struct fleet_host *fh)
{
	char why[96];
	struct console *c;

	snprintf(why, sizeof(why), "the agent session to %s ended",
	    fleet_name(fh));
	TAILQ_FOREACH(c, &consoles, entry)
		if (c->state == CS_OPEN && fleet_by_id(c->host_id) == fh)
			console_close(c, why);
}
