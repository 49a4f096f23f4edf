/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * loadgen: many simulated hv-agents in one process, for the fan-in
 * benchmark (run.sh fanin).  Each agent has its own X25519 key, derived
 * from a seed and its index, and speaks the real agent link through
 * proto/link.c, proto/link_ev.c and proto/msg.c: preamble and Noise IK
 * handshake, hello, then a telemetry notify every interval with a little
 * jitter.  It answers any request from hvd with error unknown_method and,
 * when its connection drops, reconnects with the backoff of PROTOCOL.md
 * section 10.
 *
 *   loadgen keys N SEED                  public keys of agents 1..N, hex
 *   loadgen run [-n N] [-s SEED] [-i MS] [-j PCT] [-R MS] [-r MS] [-T S]
 *               ADDR:PORT HVDKEY
 *
 * Once a second (-r) and on SIGUSR1 it prints one line of counters.  It
 * also prints "all-up" with the wall clock whenever the last agent comes
 * up, and "lost" when the first one goes, so a script can time a
 * reconnect storm without polling.
 *
 * A failure is hvd refusing an agent: a close during the handshake or the
 * hello, a hello answered with an error, a frame that fails to decrypt, a
 * protocol error, or a handshake not done in 10 s.  Everything else
 * (connect refused, a session closed after hello because hvd went away,
 * a reset) is a plain reconnect.
 *
 * Invariants: one event_base and nothing blocks; each agent owns its
 * bufferevent, its single timer (backoff, handshake deadline or telemetry
 * tick, by state) and its link keys, and lg_close() drops the first and
 * the last.  Must never: run past its -T bound (a load test stops by
 * itself); be installed (a test tool).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sodium.h>

#include "hostport.h"
#include "link.h"
#include "link_ev.h"
#include "msg.h"

#define LG_BACKOFF_BASE_MS	250
#define LG_BACKOFF_MAX_MS	15000
#define LG_HANDSHAKE_MS		10000
#define LG_INPUT_MAX		(256 * 1024)
#define LG_SEED_MAX		64
#define LG_AGENTS_MAX		100000

enum lg_state { LG_IDLE, LG_CONNECTING, LG_HANDSHAKE, LG_HELLO, LG_UP,
	LG_NSTATES };

/* Why a connection ended: picks the counter. */
enum lg_end { END_RECONNECT, END_REFUSED, END_HELLO, END_DECRYPT,
	END_TIMEOUT, END_PROTO };

struct lg;

struct lg_agent {
	struct lg *lg;
	unsigned idx;			/* 1..N, as in "loadgen keys" */
	uint8_t priv[32];
	struct bufferevent *bev;
	struct event *ev_timer;
	struct link link;
	enum lg_state state;
	unsigned attempt;		/* backoff n; 0 after a good hello */
	uint64_t next_id, hello_id, last_ts;
	unsigned seq;			/* telemetry samples sent */
};

struct lg_counts {
	unsigned long long reconnects, refused, hello_err, decrypt_err;
	unsigned long long timeouts, proto_err, telemetry, requests, sessions;
};

struct lg {
	struct event_base *base;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint8_t hvd_pub[32];
	const char *seed;
	unsigned n, interval_ms, jitter_pct, ramp_ms, report_ms, max_s;
	struct lg_agent *agents;
	unsigned in_state[LG_NSTATES];
	struct lg_counts c;
	bool all_up;
	double t0;
	struct event *ev_report, *ev_stop, *ev_usr1, *ev_term, *ev_int;
};

static uint8_t lg_frame[LINK_FRAME_MAX];
static uint8_t lg_plain[LINK_FRAME_MAX];
static uint8_t lg_out[LINK_FRAME_MAX + LINK_FRAME_HDR];

static const char lg_facts[] = "{\"cpu\":{\"model\":\"loadgen\",\"count\":8},"
    "\"memory\":{\"total_bytes\":34359738368},\"nics\":[],\"disks\":[],"
    "\"dmi\":{\"sys_vendor\":null,\"product_name\":null,\"product_uuid\":null,"
    "\"product_serial\":null,\"board_name\":null,\"bios_version\":null},"
    "\"kernel\":{\"release\":null}}";

static void lg_connect(struct lg_agent *a);

static double
lg_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
lg_elapsed(const struct lg *lg)
{
	return lg_clock(CLOCK_MONOTONIC) - lg->t0;
}

/* Uniform in [0, 1). */
static double
lg_random(void)
{
	return (double)randombytes_uniform(1000000) / 1e6;
}

/* Agent idx's key: the same seed and index always give the same key, so
 * "loadgen keys" can print what "loadgen run" will present. */
static void
lg_derive_key(const char *seed, unsigned idx, uint8_t priv[32],
    uint8_t pub[32])
{
	uint8_t s[crypto_box_SEEDBYTES];
	char label[LG_SEED_MAX + 32];
	int n;

	n = snprintf(label, sizeof(label), "hv loadgen %s %u", seed, idx);
	crypto_generichash(s, sizeof(s), (const uint8_t *)label, (size_t)n,
	    NULL, 0);
	crypto_box_seed_keypair(pub, priv, s);
	sodium_memzero(s, sizeof(s));
}

/* PROTOCOL.md section 10: uniform in [0.5 d, 1.5 d], d = min(250 ms *
 * 2^(n-1), 15 s). */
static unsigned
lg_backoff_ms(unsigned attempt)
{
	double d = LG_BACKOFF_BASE_MS;

	for (unsigned i = 1; i < attempt && d < LG_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > LG_BACKOFF_MAX_MS)
		d = LG_BACKOFF_MAX_MS;
	return (unsigned)(d * (0.5 + lg_random()));
}

static void
lg_arm(struct lg_agent *a, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(a->ev_timer, &tv);
}

static void
lg_report(struct lg *lg)
{
	const struct lg_counts *c = &lg->c;
	unsigned long long failures = c->refused + c->hello_err +
	    c->decrypt_err + c->timeouts + c->proto_err;

	printf("loadgen: t=%.1f up=%u connecting=%u failures=%llu "
	    "reconnects=%llu telemetry_sent=%llu waiting=%u sessions=%llu "
	    "refused=%llu hello_err=%llu decrypt_err=%llu timeouts=%llu "
	    "proto_err=%llu requests=%llu\n", lg_elapsed(lg),
	    lg->in_state[LG_UP], lg->in_state[LG_CONNECTING] +
	    lg->in_state[LG_HANDSHAKE] + lg->in_state[LG_HELLO], failures,
	    c->reconnects, c->telemetry, lg->in_state[LG_IDLE], c->sessions,
	    c->refused, c->hello_err, c->decrypt_err, c->timeouts,
	    c->proto_err, c->requests);
}

/* Keeps the per-state tallies, and notes the moments every agent is up
 * and the first one is lost. */
static void
lg_set_state(struct lg_agent *a, enum lg_state s)
{
	struct lg *lg = a->lg;

	lg->in_state[a->state]--;
	lg->in_state[s]++;
	a->state = s;
	if (!lg->all_up && lg->in_state[LG_UP] == lg->n) {
		lg->all_up = true;
		printf("loadgen: all-up t=%.3f wall=%.3f up=%u sessions=%llu\n",
		    lg_elapsed(lg), lg_clock(CLOCK_REALTIME), lg->n,
		    lg->c.sessions);
	} else if (lg->all_up && lg->in_state[LG_UP] < lg->n) {
		lg->all_up = false;
		printf("loadgen: lost t=%.3f wall=%.3f up=%u\n", lg_elapsed(lg),
		    lg_clock(CLOCK_REALTIME), lg->in_state[LG_UP]);
	}
}

static void
lg_count_end(struct lg_counts *c, enum lg_end why)
{
	switch (why) {
	case END_RECONNECT:
		c->reconnects++;
		break;
	case END_REFUSED:
		c->refused++;
		break;
	case END_HELLO:
		c->hello_err++;
		break;
	case END_DECRYPT:
		c->decrypt_err++;
		break;
	case END_TIMEOUT:
		c->timeouts++;
		break;
	case END_PROTO:
		c->proto_err++;
		break;
	}
}

/* Ends the connection, counts why, and schedules the next attempt. */
static void
lg_close(struct lg_agent *a, enum lg_end why)
{
	lg_count_end(&a->lg->c, why);
	if (a->bev)
		bufferevent_free(a->bev);
	a->bev = NULL;
	link_dispose(&a->link);
	lg_set_state(a, LG_IDLE);
	a->attempt++;
	lg_arm(a, lg_backoff_ms(a->attempt));
}

/* Takes ownership of json. */
static int
lg_send(struct lg_agent *a, char *json)
{
	int r;

	if (json == NULL)
		return -ENOMEM;
	r = link_ev_send(&a->link, a->bev, json, strlen(json));
	free(json);
	return r;
}

static void
lg_send_hello(struct lg_agent *a)
{
	char boot_id[LG_SEED_MAX + 32];
	json_t *params;

	snprintf(boot_id, sizeof(boot_id), "loadgen-%s-%u", a->lg->seed,
	    a->idx);
	params = json_pack("{s:[i], s:s, s:s, s:o}", "versions",
	    MSG_CATALOGUE_VERSION, "agent_version", "loadgen", "boot_id",
	    boot_id, "facts", json_loads(lg_facts, 0, NULL));
	a->hello_id = ++a->next_id;
	if (lg_send(a, msg_encode_request(a->hello_id, "hello", params)) < 0) {
		lg_close(a, END_RECONNECT);
		return;
	}
	lg_set_state(a, LG_HELLO);
}

/* A plausible sample from an 8-CPU Xen host, a little different each time
 * so hvd's history sees moving values. */
static json_t *
lg_sample(const struct lg_agent *a)
{
	unsigned s = a->seq, w = (a->idx * 7 + s) % 100;
	json_int_t total = 34359738368, used = total / 4 + (json_int_t)w * 1048576;

	return json_pack("{s:{s:f, s:i}, s:[f, f, f], s:{s:I, s:I, s:I}, "
	    "s:[{s:s, s:I, s:I, s:i, s:i, s:f, s:f}], s:[{s:s, s:I, s:I}], "
	    "s:[], s:{s:I, s:I, s:i, s:i, s:s}}",
	    "cpu", "percent", (double)w / 2, "count", 8,
	    "load", (double)w / 50, 0.5, 0.4,
	    "memory", "total_bytes", total, "available_bytes", total - used,
	    "used_bytes", used,
	    "nics", "name", "eth0", "rx_bytes", (json_int_t)s * 125000,
	    "tx_bytes", (json_int_t)s * 62500, "rx_errors", 0, "tx_errors", 0,
	    "rx_bps", 1e6 + w, "tx_bps", 5e5 + w,
	    "disks", "mount", "/", "total_bytes", (json_int_t)107374182400,
	    "free_bytes", (json_int_t)53687091200,
	    "temps",
	    "xen", "total_memory_bytes", total, "free_memory_bytes", total - used,
	    "nr_cpus", 8, "nr_domains", 1 + (int)(a->idx % 12), "xen_version",
	    "4.17.3");
}

static void
lg_send_telemetry(struct lg_agent *a)
{
	if (lg_send(a, msg_encode_notify("telemetry", lg_sample(a))) < 0) {
		lg_close(a, END_RECONNECT);
		return;
	}
	a->seq++;
	a->lg->c.telemetry++;
}

/* The next tick: the interval, give or take jitter_pct percent. */
static unsigned
lg_tick_ms(const struct lg *lg)
{
	double j = lg->jitter_pct / 100.0;

	return (unsigned)(lg->interval_ms * (1 - j + 2 * j * lg_random()));
}

static bool
lg_on_hello_reply(struct lg_agent *a, const struct msg *m)
{
	char err[256];

	if (m->type != MSG_REPLY || m->id != a->hello_id) {
		lg_close(a, END_PROTO);
		return false;
	}
	if (m->error) {
		lg_close(a, END_HELLO);
		return false;
	}
	if (msg_check(MSG_S_HELLO_RESULT, m->result, err, sizeof(err)) < 0) {
		lg_close(a, END_PROTO);
		return false;
	}
	a->lg->c.sessions++;
	a->attempt = 0;
	lg_set_state(a, LG_UP);
	/* Like hv-agent: one sample at once, then every interval. */
	lg_send_telemetry(a);
	if (a->state != LG_UP)
		return false;
	lg_arm(a, lg_tick_ms(a->lg));
	return true;
}

static void
lg_on_request(struct lg_agent *a, const struct msg *m)
{
	a->lg->c.requests++;
	if (lg_send(a, msg_encode_error(m->id, "unknown_method",
	    "loadgen has no method '%s'", m->method)) < 0)
		lg_close(a, END_RECONNECT);
}

/* Returns false when the connection was closed. */
static bool
lg_on_frame(struct lg_agent *a, const uint8_t *body, size_t len)
{
	struct msg m;
	char err[256];
	size_t n = 0;
	bool alive = true;

	if (a->state == LG_HANDSHAKE) {
		if (link_initiator_finish(&a->link, body, len) < 0) {
			lg_close(a, END_DECRYPT);
			return false;
		}
		lg_send_hello(a);
		return a->state == LG_HELLO;
	}
	if (link_open(&a->link, body, len, lg_plain, sizeof(lg_plain), &n) < 0) {
		lg_close(a, END_DECRYPT);
		return false;
	}
	if (msg_decode((const char *)lg_plain, n, &m, err, sizeof(err)) < 0) {
		lg_close(a, END_PROTO);
		return false;
	}
	if (a->state == LG_HELLO)
		alive = lg_on_hello_reply(a, &m);
	else if (m.type == MSG_REQUEST)
		lg_on_request(a, &m);
	msg_dispose(&m);
	return alive && a->state == LG_UP;
}

static void
lg_read_cb(struct bufferevent *bev, void *arg)
{
	struct lg_agent *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t blen = 0;
	int r;

	/* Bounded by the read high-watermark. */
	while ((r = link_ev_frame(in, lg_frame, sizeof(lg_frame), &blen)) == 1)
		if (!lg_on_frame(a, lg_frame, blen))
			return;
	if (r < 0)
		lg_close(a, END_PROTO);
}

static uint64_t
lg_msg1_timestamp(struct lg_agent *a)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	/* hvd refuses a timestamp not newer than the last it accepted. */
	a->last_ts = now > a->last_ts ? now : a->last_ts + 1;
	return a->last_ts;
}

static void
lg_on_connected(struct lg_agent *a)
{
	size_t n = 0;
	int one = 1;

	setsockopt(bufferevent_getfd(a->bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	if (link_init_initiator(&a->link, a->priv, a->lg->hvd_pub,
	    lg_msg1_timestamp(a), lg_out, sizeof(lg_out), &n) < 0 ||
	    bufferevent_write(a->bev, lg_out, n) != 0) {
		lg_close(a, END_RECONNECT);
		return;
	}
	lg_set_state(a, LG_HANDSHAKE);
}

/* hvd closing during the handshake or hello is a refusal; a reset there
 * is a listener going away (the kernel's backlog), so only a reconnect. */
static enum lg_end
lg_classify_close(enum lg_state s, bool eof)
{
	if (!eof || s == LG_CONNECTING || s == LG_UP)
		return END_RECONNECT;
	return s == LG_HANDSHAKE ? END_REFUSED : END_HELLO;
}

static void
lg_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct lg_agent *a = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		lg_on_connected(a);
	else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		lg_close(a, lg_classify_close(a->state, what & BEV_EVENT_EOF));
}

/* One timer per agent; what it means depends on the state. */
static void
lg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg_agent *a = arg;

	(void)fd;
	(void)what;
	switch (a->state) {
	case LG_IDLE:
		lg_connect(a);
		break;
	case LG_CONNECTING:
		lg_close(a, END_RECONNECT);
		break;
	case LG_HANDSHAKE:
	case LG_HELLO:
		lg_close(a, END_TIMEOUT);
		break;
	case LG_UP:
		lg_send_telemetry(a);
		if (a->state == LG_UP)
			lg_arm(a, lg_tick_ms(a->lg));
		break;
	case LG_NSTATES:
		break;
	}
}

static void
lg_connect(struct lg_agent *a)
{
	struct lg *lg = a->lg;

	a->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (a->bev == NULL) {
		lg_close(a, END_RECONNECT);
		return;
	}
	bufferevent_setcb(a->bev, lg_read_cb, NULL, lg_event_cb, a);
	bufferevent_setwatermark(a->bev, EV_READ, 0, LG_INPUT_MAX);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	lg_set_state(a, LG_CONNECTING);
	/* PROTOCOL.md section 4: preamble to hello reply within 10 s. */
	lg_arm(a, LG_HANDSHAKE_MS);
	if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&lg->addr,
	    (int)lg->addrlen) < 0)
		lg_close(a, END_RECONNECT);
}

static void
lg_report_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	lg_report(arg);
}

static void
lg_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct lg *lg = arg;

	(void)what;
	if (fd == -1)
		printf("loadgen: time limit of %u s reached\n", lg->max_s);
	lg_report(lg);
	event_base_loopbreak(lg->base);
}

static int
lg_parse_addr(struct lg *lg, const char *hostport, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&lg->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&lg->addr;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	int r;

	if ((r = hostport_parse(hostport, false, host, sizeof(host), &port,
	    err, errlen)) < 0)
		return r;
	memset(&lg->addr, 0, sizeof(lg->addr));
	if (strchr(host, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &sin6->sin6_addr);
		lg->addrlen = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, host, &sin->sin_addr);
		lg->addrlen = sizeof(*sin);
	}
	return 0;
}

static int
lg_hex32(const char *s, uint8_t out[32])
{
	size_t n = 0;

	return strlen(s) == 64 && sodium_hex2bin(out, 32, s, 64, NULL, &n,
	    NULL) == 0 && n == 32 ? 0 : -EINVAL;
}

/* Every agent is a socket: the soft limit goes up to what N needs. */
static int
lg_raise_nofile(unsigned n)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		fprintf(stderr, "loadgen: %u agents need %llu file descriptors; "
		    "the hard limit is %llu\n", n, (unsigned long long)need,
		    (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) == -1 ? -errno : 0;
}

static unsigned
lg_number(const char *s, unsigned min, unsigned max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || s[0] == '\0' || s[0] == '-' || v < min ||
	    v > max) {
		fprintf(stderr, "loadgen: %s must be in %u..%u, not '%s'\n", what,
		    min, max, s);
		exit(2);
	}
	return (unsigned)v;
}

static bool
lg_seed_ok(const char *seed)
{
	size_t len = strlen(seed);

	if (len == 0 || len > LG_SEED_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(seed[i] == '-' || seed[i] == '_' ||
		    (seed[i] >= '0' && seed[i] <= '9') ||
		    (seed[i] >= 'a' && seed[i] <= 'z') ||
		    (seed[i] >= 'A' && seed[i] <= 'Z')))
			return false;
	return true;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: loadgen keys N SEED\n"
	    "       loadgen run [-n agents] [-s seed] [-i interval_ms] "
	    "[-j jitter_pct]\n"
	    "                   [-R ramp_ms] [-r report_ms] [-T max_seconds] "
	    "ADDR:PORT HVDKEY\n");
	exit(2);
}

static int
cmd_keys(int argc, char **argv)
{
	uint8_t priv[32], pub[32];
	char hex[65];
	unsigned n;

	if (argc != 4 || !lg_seed_ok(argv[3]))
		usage();
	n = lg_number(argv[2], 1, LG_AGENTS_MAX, "N");
	for (unsigned i = 1; i <= n; i++) {
		lg_derive_key(argv[3], i, priv, pub);
		printf("%s\n", sodium_bin2hex(hex, sizeof(hex), pub, sizeof(pub)));
	}
	sodium_memzero(priv, sizeof(priv));
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
lg_agents_new(struct lg *lg)
{
	uint8_t pub[32];

	if ((lg->agents = calloc(lg->n, sizeof(*lg->agents))) == NULL)
		return -ENOMEM;
	lg->in_state[LG_IDLE] = lg->n;
	for (unsigned i = 0; i < lg->n; i++) {
		struct lg_agent *a = &lg->agents[i];

		a->lg = lg;
		a->idx = i + 1;
		lg_derive_key(lg->seed, a->idx, a->priv, pub);
		if ((a->ev_timer = evtimer_new(lg->base, lg_timer_cb, a)) == NULL)
			return -ENOMEM;
		/* Spread the first connects over the ramp. */
		lg_arm(a, lg->ramp_ms ? randombytes_uniform(lg->ramp_ms) : 0);
	}
	return 0;
}

static void
lg_agents_free(struct lg *lg)
{
	if (lg->agents == NULL)
		return;
	for (unsigned i = 0; i < lg->n; i++) {
		struct lg_agent *a = &lg->agents[i];

		if (a->bev)
			bufferevent_free(a->bev);
		if (a->ev_timer)
			event_free(a->ev_timer);
		link_dispose(&a->link);
		sodium_memzero(a->priv, sizeof(a->priv));
	}
	free(lg->agents);
	lg->agents = NULL;
}

static int
lg_events_new(struct lg *lg)
{
	struct timeval report = { lg->report_ms / 1000,
	    (lg->report_ms % 1000) * 1000 };
	struct timeval stop = { lg->max_s, 0 };

	lg->ev_report = event_new(lg->base, -1, EV_PERSIST, lg_report_cb, lg);
	lg->ev_stop = evtimer_new(lg->base, lg_stop_cb, lg);
	lg->ev_usr1 = evsignal_new(lg->base, SIGUSR1, lg_report_cb, lg);
	lg->ev_term = evsignal_new(lg->base, SIGTERM, lg_stop_cb, lg);
	lg->ev_int = evsignal_new(lg->base, SIGINT, lg_stop_cb, lg);
	if (lg->ev_report == NULL || lg->ev_stop == NULL || lg->ev_usr1 == NULL ||
	    lg->ev_term == NULL || lg->ev_int == NULL)
		return -ENOMEM;
	if (event_add(lg->ev_report, &report) || event_add(lg->ev_stop, &stop) ||
	    event_add(lg->ev_usr1, NULL) || event_add(lg->ev_term, NULL) ||
	    event_add(lg->ev_int, NULL))
		return -EIO;
	return 0;
}

static void
lg_events_free(struct lg *lg)
{
	struct event *evs[] = { lg->ev_report, lg->ev_stop, lg->ev_usr1,
	    lg->ev_term, lg->ev_int };

	for (size_t i = 0; i < sizeof(evs) / sizeof(*evs); i++)
		if (evs[i])
			event_free(evs[i]);
}

static void
lg_options(struct lg *lg, int argc, char **argv)
{
	char why[160];
	int ch;

	lg->n = 1000;
	lg->seed = "bench";
	lg->interval_ms = 1000;
	lg->jitter_pct = 5;
	lg->ramp_ms = 1000;
	lg->report_ms = 1000;
	lg->max_s = 600;
	while ((ch = getopt(argc, argv, "n:s:i:j:R:r:T:")) != -1) {
		switch (ch) {
		case 'n':
			lg->n = lg_number(optarg, 1, LG_AGENTS_MAX, "-n");
			break;
		case 's':
			lg->seed = optarg;
			break;
		case 'i':
			lg->interval_ms = lg_number(optarg, 100, 3600000, "-i");
			break;
		case 'j':
			lg->jitter_pct = lg_number(optarg, 0, 50, "-j");
			break;
		case 'R':
			lg->ramp_ms = lg_number(optarg, 0, 600000, "-R");
			break;
		case 'r':
			lg->report_ms = lg_number(optarg, 100, 3600000, "-r");
			break;
		case 'T':
			lg->max_s = lg_number(optarg, 1, 86400, "-T");
			break;
		default:
			usage();
		}
	}
	if (optind + 2 != argc || !lg_seed_ok(lg->seed))
		usage();
	if (lg_parse_addr(lg, argv[optind], why, sizeof(why)) < 0) {
		fprintf(stderr, "loadgen: %s\n", why);
		exit(2);
	}
	if (lg_hex32(argv[optind + 1], lg->hvd_pub) < 0) {
		fprintf(stderr, "loadgen: HVDKEY must be 64 hex digits\n");
		exit(2);
	}
}

static int
cmd_run(int argc, char **argv)
{
	struct lg lg = { 0 };
	int rc = 1;

	lg_options(&lg, argc - 1, argv + 1);
	if (lg_raise_nofile(lg.n) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if ((lg.base = event_base_new()) == NULL) {
		fprintf(stderr, "loadgen: event_base_new failed\n");
		return 1;
	}
	lg.t0 = lg_clock(CLOCK_MONOTONIC);
	if (lg_agents_new(&lg) < 0 || lg_events_new(&lg) < 0) {
		fprintf(stderr, "loadgen: out of memory or events\n");
		goto out;
	}
	printf("loadgen: %u agents, seed %s, telemetry every %u ms +-%u%%, "
	    "ramp %u ms, limit %u s\n", lg.n, lg.seed, lg.interval_ms,
	    lg.jitter_pct, lg.ramp_ms, lg.max_s);
	rc = event_base_dispatch(lg.base) < 0 ? 1 : 0;
out:
	lg_agents_free(&lg);
	lg_events_free(&lg);
	event_base_free(lg.base);
	return rc;
}

int
main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "loadgen: libsodium failed to initialise\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && strcmp(argv[1], "keys") == 0)
		return cmd_keys(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	usage();
}
