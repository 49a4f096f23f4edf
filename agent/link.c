/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's session with hvd: connect, handshake, hello, then telemetry
 * every heartbeat and answers to hvd's requests through a dispatch table.
 * Any failure closes the connection and reconnects with jittered
 * exponential backoff (PROTOCOL.md section 10).
 *
 * The agent link owns its bufferevent, timers, link keys and telemetry
 * state; agent_link_free() releases them all.
 *
 * Invariants: the boot token is sent at most in the first successful
 * session of a boot (remembered in the session file, on tmpfs); nothing
 * blocks: connects are non-blocking to a numeric address.  Must never log
 * the boot token or the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "agent.h"
#include "agent_link.h"
#include "link.h"
#include "link_ev.h"
#include "log.h"
#include "msg.h"
#include "vm.h"
#include "vm_console_attach.h"

#define AGENT_BACKOFF_BASE_MS	250
#define AGENT_BACKOFF_MAX_MS	15000

enum al_state { AL_IDLE, AL_CONNECTING, AL_HANDSHAKE, AL_HELLO, AL_UP };

struct agent_link {
	struct event_base *base;
	const struct agent_conf *conf;
	uint8_t *key;			/* sodium_malloc'd */
	struct bufferevent *bev;
	struct link link;
	enum al_state state;
	unsigned attempt;
	struct event *ev_retry, *ev_tick;
	unsigned heartbeat_ms;
	uint64_t next_id, hello_id;
	char boot_id[64];
	bool token_spent;
	struct telemetry tm;
	struct xen *xen;
	struct agent_mesh *mesh;	/* borrowed, may be NULL */
	struct agent_vm *vm;		/* borrowed, NULL without Xen */
	struct vca *console;		/* interactive consoles, with the link */
};

static uint8_t al_frame[LINK_FRAME_MAX];
static uint8_t al_plain[LINK_FRAME_MAX];
static uint8_t al_out[LINK_FRAME_MAX + LINK_FRAME_HDR];

unsigned
agent_backoff_ms(unsigned attempt, double rnd)
{
	double d = AGENT_BACKOFF_BASE_MS;

	for (unsigned i = 1; i < attempt && d < AGENT_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > AGENT_BACKOFF_MAX_MS)
		d = AGENT_BACKOFF_MAX_MS;
	return (unsigned)(d * (0.5 + rnd));
}

static void
al_read_boot_id(struct agent_link *al)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	snprintf(al->boot_id, sizeof(al->boot_id), "unknown");
	if (f) {
		if (fgets(al->boot_id, sizeof(al->boot_id), f) == NULL)
			snprintf(al->boot_id, sizeof(al->boot_id), "unknown");
		al->boot_id[strcspn(al->boot_id, "\n")] = '\0';
		fclose(f);
	}
}

/* The session file holds the boot id of the boot whose token was spent. */
static void
al_load_session(struct agent_link *al)
{
	char buf[64] = "";
	FILE *f = fopen(al->conf->session_file, "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	al->token_spent = strcmp(buf, al->boot_id) == 0;
}

static void
al_save_session(struct agent_link *al)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", al->conf->session_file);
	if ((f = fopen(tmp, "we")) == NULL) {
		log_warn("agent: %s", tmp);
		return;
	}
	fprintf(f, "%s\n", al->boot_id);
	if (fclose(f) != 0 || rename(tmp, al->conf->session_file) == -1)
		log_warn("agent: %s", al->conf->session_file);
}

static void al_schedule_retry(struct agent_link *al);

static void
al_disconnect(struct agent_link *al, const char *why)
{
	if (al->state == AL_UP)
		log_warnx("agent: session with hvd ended: %s", why);
	else
		log_info("agent: connection to hvd failed: %s", why);
	if (al->bev)
		bufferevent_free(al->bev);
	al->bev = NULL;
	link_dispose(&al->link);
	evtimer_del(al->ev_tick);
	vca_drop_all(al->console);
	al->state = AL_IDLE;
	al_schedule_retry(al);
}

/* Takes ownership of json. */
static int
al_send(struct agent_link *al, char *json)
{
	int r;

	if (json == NULL)
		return -ENOMEM;
	r = link_ev_send(&al->link, al->bev, json, strlen(json));
	free(json);
	return r;
}

static void
al_send_hello(struct agent_link *al)
{
	json_t *facts = facts_collect();
	json_t *params;

	params = json_pack("{s:[i], s:s, s:s, s:o}", "versions",
	    MSG_CATALOGUE_VERSION, "agent_version", HV_VERSION,
	    "boot_id", al->boot_id, "facts", facts ? facts : json_object());
	if (params && al->conf->boot_token[0] && !al->token_spent)
		json_object_set_new(params, "boot_token",
		    json_string(al->conf->boot_token));
	al->hello_id = ++al->next_id;
	if (al_send(al, msg_encode_request(al->hello_id, "hello", params)) < 0)
		al_disconnect(al, "could not send hello");
	else
		al->state = AL_HELLO;
}

static void
al_send_telemetry(struct agent_link *al)
{
	json_t *sample = NULL;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (telemetry_sample(&al->tm, (int64_t)ts.tv_sec * 1000 +
	    ts.tv_nsec / 1000000, &sample) < 0) {
		log_warnx("agent: telemetry sample failed");
		return;
	}
	if (al_send(al, msg_encode_notify("telemetry", sample)) < 0)
		al_disconnect(al, "could not send telemetry");
}

static void
al_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	al_send_telemetry(arg);
}

static void
al_arm_tick(struct agent_link *al)
{
	struct timeval tv = { al->heartbeat_ms / 1000,
	    (al->heartbeat_ms % 1000) * 1000 };

	/* Re-adding a persistent event replaces its period. */
	event_add(al->ev_tick, &tv);
}

/* hvd -> agent methods (PROTOCOL.md 6.2). */
static json_t *
cmd_ping(struct agent_link *al, json_t *params, char *err, size_t errlen)
{
	(void)params;
	(void)err;
	(void)errlen;
	return json_pack("{s:s}", "boot_id", al->boot_id);
}

static json_t *
cmd_facts_refresh(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	(void)al;
	(void)params;
	(void)err;
	(void)errlen;
	return facts_collect();
}

static json_t *
cmd_config_apply(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	json_int_t ms = json_integer_value(json_object_get(params,
	    "telemetry_ms"));

	if (ms < 1000 || ms > 3600000) {
		snprintf(err, errlen, "telemetry_ms must be in 1000..3600000");
		return NULL;
	}
	al->heartbeat_ms = (unsigned)ms;
	al_arm_tick(al);
	return json_pack("{s:b}", "applied", 1);
}

static json_t *
cmd_mesh_apply(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_mesh_apply(al->mesh, params, err, errlen);
}

static json_t *
cmd_vm_create(struct agent_link *al, json_t *params, char *err, size_t errlen)
{
	return agent_vm_create(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_shutdown(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_shutdown(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_destroy(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_destroy(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_reboot(struct agent_link *al, json_t *params, char *err, size_t errlen)
{
	return agent_vm_reboot(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_list(struct agent_link *al, json_t *params, char *err, size_t errlen)
{
	return agent_vm_list(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_console(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_console(al->vm, params, err, errlen);
}

/*
 * A method's params pass msg_check() against its schema, or, where the
 * table names one, the method's own strict parser (the mesh state is a
 * lib/ format with its own rules).
 */
static json_t *
cmd_vm_migrate_in(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_migrate_in(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_migrate_out(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_migrate_out(al->vm, params, err, errlen);
}

static json_t *
cmd_vm_migrate_end(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return agent_vm_migrate_end(al->vm, params, err, errlen);
}

/* Interactive consoles: agent/vm_console_attach.c. */
static json_t *
cmd_vm_console_attach(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return vca_attach(al->console, params, err, errlen);
}

static json_t *
cmd_vm_console_input(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return vca_input(al->console, params, err, errlen);
}

static json_t *
cmd_vm_console_detach(struct agent_link *al, json_t *params, char *err,
    size_t errlen)
{
	return vca_detach(al->console, params, err, errlen);
}

static const struct {
	const char *method;
	enum msg_schema schema;
	json_t *(*run)(struct agent_link *, json_t *, char *, size_t);
	int (*check)(const json_t *, char *, size_t);
} al_commands[] = {
	{ "ping", MSG_S_EMPTY, cmd_ping, NULL },
	{ "facts.refresh", MSG_S_EMPTY, cmd_facts_refresh, NULL },
	{ "config.apply", MSG_S_CONFIG_APPLY, cmd_config_apply, NULL },
	{ "mesh.apply", MSG_S_EMPTY, cmd_mesh_apply, agent_mesh_check },
	{ "vm.create", MSG_S_VM_CREATE, cmd_vm_create, agent_vm_create_check },
	{ "vm.shutdown", MSG_S_VM_SHUTDOWN, cmd_vm_shutdown, NULL },
	{ "vm.destroy", MSG_S_VM_REF, cmd_vm_destroy, NULL },
	{ "vm.reboot", MSG_S_VM_REF, cmd_vm_reboot, NULL },
	{ "vm.list", MSG_S_EMPTY, cmd_vm_list, NULL },
	{ "vm.console", MSG_S_VM_CONSOLE, cmd_vm_console, NULL },
	{ "vm.migrate_in", MSG_S_VM_MIGRATE_IN, cmd_vm_migrate_in, NULL },
	{ "vm.migrate_out", MSG_S_VM_MIGRATE_OUT, cmd_vm_migrate_out, NULL },
	{ "vm.migrate_end", MSG_S_VM_MIGRATE_END, cmd_vm_migrate_end, NULL },
	{ "vm.console_attach", MSG_S_VM_CONSOLE_SESSION, cmd_vm_console_attach,
	    NULL },
	{ "vm.console_input", MSG_S_VM_CONSOLE_INPUT, cmd_vm_console_input,
	    NULL },
	{ "vm.console_detach", MSG_S_VM_CONSOLE_SESSION, cmd_vm_console_detach,
	    NULL },
};

static void
al_on_request(struct agent_link *al, struct msg *m)
{
	char err[256] = "";
	json_t *result;

	for (size_t i = 0; i < sizeof(al_commands) / sizeof(*al_commands); i++) {
		if (strcmp(al_commands[i].method, m->method) != 0)
			continue;
		if ((al_commands[i].check ? al_commands[i].check(m->params,
		    err, sizeof(err)) : msg_check(al_commands[i].schema,
		    m->params, err, sizeof(err))) < 0) {
			(void)al_send(al, msg_encode_error(m->id, "invalid", "%s",
			    err));
			return;
		}
		if ((result = al_commands[i].run(al, m->params, err,
		    sizeof(err))) == NULL) {
			(void)al_send(al, msg_encode_error(m->id, "failed", "%s",
			    err[0] ? err : "out of memory"));
			return;
		}
		(void)al_send(al, msg_encode_result(m->id, result));
		return;
	}
	(void)al_send(al, msg_encode_error(m->id, "unknown_method",
	    "hv-agent has no method '%s'", m->method));
}

/* Returns false when the link was torn down. */
static bool
al_on_frame(struct agent_link *al, const uint8_t *body, size_t len)
{
	struct msg m;
	char err[256];
	size_t n = 0;
	int r;

	if (al->state == AL_HANDSHAKE) {
		if (link_initiator_finish(&al->link, body, len) < 0) {
			al_disconnect(al, "handshake failed (is hvd-key right?)");
			return false;
		}
		al_send_hello(al);
		return al->state == AL_HELLO;
	}
	if (link_open(&al->link, body, len, al_plain, sizeof(al_plain), &n) < 0) {
		al_disconnect(al, "a frame failed authentication");
		return false;
	}
	r = msg_decode((const char *)al_plain, n, &m, err, sizeof(err));
	/* The plaintext may hold a secret (a migration's key): not kept. */
	sodium_memzero(al_plain, n);
	if (r < 0) {
		al_disconnect(al, err);
		return false;
	}
	if (al->state == AL_HELLO) {
		const char *e;

		if (m.type != MSG_REPLY || m.id != al->hello_id) {
			msg_dispose(&m);
			al_disconnect(al, "hvd did not answer hello");
			return false;
		}
		if (m.error) {
			e = json_string_value(json_object_get(m.error, "message"));
			log_warnx("agent: hvd refused hello: %s", e ? e : "?");
			msg_dispose(&m);
			al_disconnect(al, "hello refused");
			return false;
		}
		if (msg_check(MSG_S_HELLO_RESULT, m.result, err, sizeof(err)) < 0) {
			msg_dispose(&m);
			al_disconnect(al, err);
			return false;
		}
		al->heartbeat_ms = (unsigned)json_integer_value(json_object_get(
		    m.result, "heartbeat_ms"));
		if (al->heartbeat_ms < 100)
			al->heartbeat_ms = 100;
		if (al->conf->boot_token[0] && !al->token_spent) {
			al->token_spent = true;
			al_save_session(al);
		}
		log_info("agent: up as host %s (heartbeat %u ms)",
		    json_string_value(json_object_get(m.result, "host")),
		    al->heartbeat_ms);
		al->state = AL_UP;
		al->attempt = 0;
		msg_dispose(&m);
		al_send_telemetry(al);
		if (al->state == AL_UP)
			al_arm_tick(al);
		return al->state == AL_UP;
	}
	if (m.type == MSG_REQUEST)
		al_on_request(al, &m);
	msg_dispose(&m);
	return al->state == AL_UP;
}

static void
al_read_cb(struct bufferevent *bev, void *arg)
{
	struct agent_link *al = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t blen = 0;
	int r;

	while ((r = link_ev_frame(in, al_frame, sizeof(al_frame), &blen)) == 1)
		if (!al_on_frame(al, al_frame, blen))
			return;
	if (r < 0)
		al_disconnect(al, "bad frame length from hvd");
}

static uint64_t
al_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
al_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct agent_link *al = arg;
	size_t n = 0;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		if (link_init_initiator(&al->link, al->key, al->conf->hvd_key,
		    al_now_ns(), al_out, sizeof(al_out), &n) < 0 ||
		    bufferevent_write(bev, al_out, n) != 0) {
			al_disconnect(al, "could not start the handshake");
			return;
		}
		al->state = AL_HANDSHAKE;
		return;
	}
	if (what & BEV_EVENT_EOF)
		al_disconnect(al, "hvd closed the connection");
	else if (what & BEV_EVENT_ERROR)
		al_disconnect(al, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
}

/* Below the write low-watermark: console output may flow again. */
static void
al_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	vca_drained(((struct agent_link *)arg)->console);
}

static void
al_connect(struct agent_link *al)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int len;

	if (al->conf->hvd_family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(al->conf->hvd_port);
		inet_pton(AF_INET6, al->conf->hvd_host, &sin6->sin6_addr);
		len = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(al->conf->hvd_port);
		inet_pton(AF_INET, al->conf->hvd_host, &sin->sin_addr);
		len = sizeof(*sin);
	}
	al->bev = bufferevent_socket_new(al->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (al->bev == NULL) {
		al_schedule_retry(al);
		return;
	}
	bufferevent_setcb(al->bev, al_read_cb, al_write_cb, al_event_cb, al);
	bufferevent_setwatermark(al->bev, EV_READ, 0, 256 * 1024);
	/* The consoles' backpressure: al_write_cb once it has drained. */
	bufferevent_setwatermark(al->bev, EV_WRITE, VCA_BACKLOG_LOW, 0);
	bufferevent_enable(al->bev, EV_READ | EV_WRITE);
	al->state = AL_CONNECTING;
	if (bufferevent_socket_connect(al->bev, (struct sockaddr *)&ss, len) < 0)
		al_disconnect(al, "connect failed");
}

static void
al_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	al_connect(arg);
}

static void
al_schedule_retry(struct agent_link *al)
{
	unsigned ms;
	struct timeval tv;

	al->attempt++;
	ms = agent_backoff_ms(al->attempt,
	    (double)randombytes_uniform(1000000) / 1000000.0);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	log_debug("agent: reconnecting in %u ms (attempt %u)", ms, al->attempt);
	evtimer_add(al->ev_retry, &tv);
}

/* struct vca_ops over the link and the agent's VMs. */
static void al_vm_notify(void *arg, const char *method, json_t *params);

static int
al_console_tty(void *arg, const char *uuid, char *path, size_t pathlen,
    uint32_t *domid, char *err, size_t errlen)
{
	return agent_vm_console_tty(((struct agent_link *)arg)->vm, uuid, path,
	    pathlen, domid, err, errlen);
}

static bool
al_console_alive(void *arg, const char *uuid, uint32_t domid)
{
	return agent_vm_console_alive(((struct agent_link *)arg)->vm, uuid,
	    domid);
}

static size_t
al_console_backlog(void *arg)
{
	struct agent_link *al = arg;

	return al->bev ? evbuffer_get_length(bufferevent_get_output(al->bev)) :
	    0;
}

static const struct vca_ops al_console_ops = {
	.tty = al_console_tty,
	.alive = al_console_alive,
	.notify = al_vm_notify,
	.backlog = al_console_backlog,
};

struct agent_link *
agent_link_new(struct event_base *base, const struct agent_conf *conf,
    const uint8_t key[32])
{
	struct agent_link *al;
	int r;

	if ((al = calloc(1, sizeof(*al))) == NULL)
		return NULL;
	al->base = base;
	al->conf = conf;
	al->heartbeat_ms = 5000;
	if ((al->key = sodium_malloc(32)) == NULL)
		goto fail;
	memcpy(al->key, key, 32);
	al->ev_retry = evtimer_new(base, al_retry_cb, al);
	al->ev_tick = event_new(base, -1, EV_PERSIST, al_tick_cb, al);
	if (al->ev_retry == NULL || al->ev_tick == NULL ||
	    (al->console = vca_new(base, &al_console_ops, al)) == NULL)
		goto fail;
	if (telemetry_init(&al->tm) < 0)
		goto fail;
	if ((r = xen_open(&al->xen)) < 0) {
		al->xen = NULL;
		log_info("agent: %s; reporting without Xen figures",
		    r == -ENODEV ? "not running under Xen" : "libxl unavailable");
	}
	telemetry_set_xen(&al->tm, al->xen);
	al_read_boot_id(al);
	al_load_session(al);
	return al;
fail:
	agent_link_free(al);
	return NULL;
}

void
agent_link_set_mesh(struct agent_link *al, struct agent_mesh *am)
{
	al->mesh = am;
}

/*
 * vm.state and vm.migration go out only on a session that is up; one that
 * happens while hvd is away is lost, and hvd learns the state from vm.list
 * after the agent reconnects.
 */
static void
al_vm_notify(void *arg, const char *method, json_t *params)
{
	struct agent_link *al = arg;

	if (al->state != AL_UP) {
		log_debug("agent: %s not sent: no session", method);
		json_decref(params);
		return;
	}
	if (al_send(al, msg_encode_notify(method, params)) < 0)
		al_disconnect(al, "could not send a notify");
}

void
agent_link_set_vm(struct agent_link *al, struct agent_vm *vm)
{
	al->vm = vm;
	if (vm != NULL) {
		agent_vm_set_notify(vm, al_vm_notify, al);
		agent_vm_set_key(vm, al->key);
	}
}

void
agent_link_start(struct agent_link *al)
{
	al_connect(al);
}

void
agent_link_free(struct agent_link *al)
{
	if (al == NULL)
		return;
	if (al->bev)
		bufferevent_free(al->bev);
	if (al->ev_retry)
		event_free(al->ev_retry);
	if (al->ev_tick)
		event_free(al->ev_tick);
	vca_free(al->console);
	link_dispose(&al->link);
	telemetry_dispose(&al->tm);
	xen_close(al->xen);
	sodium_free(al->key);
	free(al);
}
