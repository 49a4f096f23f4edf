/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agent_emu: an emulated hv-agent for the regress tests.  It speaks the
 * agent link (proto/link.c, proto/msg.c) to a real hvd, answers hvd's
 * requests with canned results, records every request it gets, and sends
 * the notifies a test writes to its control FIFO.  It reconnects after
 * hvd goes away (an hvd restart), without the boot token the second time.
 * A test tool, never installed.
 *
 *   agent_emu CONF SRC_IP LOG CTL
 *
 * CONF is the agent.conf `hvctl host add --out` wrote (hvd, hvd-key,
 * boot-token, key-file).  The link is opened from SRC_IP, which hvd takes
 * as the host's underlay address.  LOG gets one JSON object a line:
 * {"up": N} when session N is up, {"method", "params"} for each request.
 * CTL is a FIFO of command lines:
 *   notify METHOD JSON     send a notify
 *   reply METHOD JSON      answer METHOD with this result from now on
 *   error METHOD TEXT      answer METHOD with error "failed", TEXT
 *   vms JSON               the vm.list result's "vms" array
 *   drop                   close the session (it reconnects)
 *   console_gone UUID      that VM's domain is gone (its consoles close)
 * The vm.console_* methods run the agent's own relay over ptys whose far
 * side answers each line (emu_console.c), unless a reply or error is set.
 * Telemetry (with a Xen section: 8 CPUs, 4 GiB free) goes every 300 ms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hostport.h"
#include "link.h"
#include "emu_console.h"
#include "msg.h"

static uint8_t buf[LINK_FRAME_MAX + 64];
static uint8_t body[LINK_FRAME_MAX];
static uint8_t plain[LINK_FRAME_MAX + 1];

static const char facts_json[] = "{\"cpu\":{\"model\":null,\"count\":8},"
    "\"memory\":{\"total_bytes\":null},\"nics\":[],\"disks\":[],"
    "\"dmi\":{\"sys_vendor\":null,\"product_name\":null,\"product_uuid\":null,"
    "\"product_serial\":null,\"board_name\":null,\"bios_version\":null},"
    "\"kernel\":{\"release\":null}}";
static const char telemetry_json[] = "{\"cpu\":{\"percent\":1.5,\"count\":8},"
    "\"load\":[0.1,0.2,0.3],\"memory\":{\"total_bytes\":8589934592,"
    "\"available_bytes\":6000000000,\"used_bytes\":2589934592},\"nics\":[],"
    "\"disks\":[],\"temps\":[],\"xen\":{\"total_memory_bytes\":8589934592,"
    "\"free_memory_bytes\":4294967296,\"nr_cpus\":8,\"nr_domains\":1,"
    "\"xen_version\":\"4.17\"}}";

static json_t *canned;		/* method -> {"result": ...} or {"error": text} */
static json_t *vms;
static FILE *logf;
static struct emu_console *consoles;
static int cur_fd = -1;		/* the session up, for the consoles */
static struct link *cur_link;

static void
emu_log(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	if (s) {
		fprintf(logf, "%s\n", s);
		fflush(logf);
	}
	free(s);
	json_decref(j);
}

static int
dial(const char *hostport, const char *src)
{
	char host[INET6_ADDRSTRLEN], why[128];
	struct sockaddr_in sin = { 0 }, me = { 0 };
	uint16_t port;
	int fd;

	if (hostport_parse(hostport, false, host, sizeof(host), &port, why,
	    sizeof(why)) < 0)
		return -1;
	sin.sin_family = me.sin_family = AF_INET;
	sin.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
	    inet_pton(AF_INET, src, &me.sin_addr) != 1)
		return -1;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
send_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
recv_n(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (n > 0) {
		ssize_t r;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		r = recv(fd, p, n, 0);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
recv_frame(int fd, size_t *len)
{
	uint8_t hdr[LINK_FRAME_HDR];

	if (recv_n(fd, hdr, sizeof(hdr), 5000) < 0 ||
	    link_frame_peek(hdr, sizeof(hdr) + LINK_FRAME_MAX, len) < 0)
		return -1;
	return recv_n(fd, body, *len, 5000);
}

static int
send_msg(int fd, struct link *l, char *json)
{
	size_t n = 0;
	int r;

	if (json == NULL)
		return -1;
	r = link_seal(l, (uint8_t *)json, strlen(json), buf, sizeof(buf), &n);
	free(json);
	return r < 0 ? -1 : send_all(fd, buf, n);
}

/* Receives and opens one message. */
static int
recv_msg(int fd, struct link *l, struct msg *m)
{
	char err[256];
	size_t len = 0, n = 0;

	if (recv_frame(fd, &len) < 0 ||
	    link_open(l, body, len, plain, sizeof(plain) - 1, &n) < 0)
		return -1;
	if (msg_decode((char *)plain, n, m, err, sizeof(err)) < 0) {
		fprintf(stderr, "agent_emu: %s\n", err);
		return -1;
	}
	return 0;
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int answer(int fd, struct link *l, struct msg *m);

static void
console_send(void *arg, char *json)
{
	(void)arg;
	if (cur_fd >= 0)
		(void)send_msg(cur_fd, cur_link, json);
	else
		free(json);
}

static int
session_open(const char *addr, const char *src, const uint8_t key[32],
    const uint8_t hvd[32], const char *token, struct link *l)
{
	struct msg m;
	size_t n = 0, len = 0;
	json_t *params;
	int fd, ok;

	if ((fd = dial(addr, src)) < 0)
		return -1;
	if (link_init_initiator(l, key, hvd, now_ns(), buf, sizeof(buf), &n) < 0 ||
	    send_all(fd, buf, n) < 0 || recv_frame(fd, &len) < 0 ||
	    link_initiator_finish(l, body, len) < 0)
		goto fail;
	params = json_pack("{s:[i], s:s, s:s, s:o}", "versions", 1,
	    "agent_version", "emu", "boot_id", "emu-boot", "facts",
	    json_loads(facts_json, 0, NULL));
	if (token && token[0])
		json_object_set_new(params, "boot_token", json_string(token));
	if (send_msg(fd, l, msg_encode_request(1, "hello", params)) < 0)
		goto fail;
	/* hvd may ask something before hello's reply: answer it. */
	for (;;) {
		if (recv_msg(fd, l, &m) < 0)
			goto fail;
		if (m.type == MSG_REPLY)
			break;
		if (m.type == MSG_REQUEST)
			answer(fd, l, &m);
		msg_dispose(&m);
	}
	ok = m.result != NULL;
	msg_dispose(&m);
	if (!ok)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

static json_t *
default_result(const char *method, json_t *params)
{
	if (strcmp(method, "ping") == 0)
		return json_pack("{s:s}", "boot_id", "emu-boot");
	if (strcmp(method, "vm.list") == 0)
		return json_pack("{s:O}", "vms", vms);
	if (strcmp(method, "mesh.apply") == 0)
		return json_pack("{s:b, s:{s:i, s:i, s:i, s:i, s:i, s:i}}",
		    "applied", 1, "stats", "links_added", 0, "links_changed", 0,
		    "links_deleted", 0, "fdb_added", 0, "fdb_deleted", 0,
		    "fdb_unchanged", 0);
	if (strcmp(method, "vm.migrate_in") == 0)
		return json_pack("{s:b, s:i}", "accepted", 1, "port", 47000);
	if (strcmp(method, "vm.migrate_end") == 0)
		return json_pack("{s:s}", "state", strcmp(json_string_value(
		    json_object_get(params, "outcome")) ?: "", "source") == 0 ?
		    "running" : "gone");
	if (strncmp(method, "vm.", 3) == 0 || strcmp(method, "config.apply") == 0)
		return json_pack("{s:b}", "accepted", 1);
	return NULL;
}

static int
answer(int fd, struct link *l, struct msg *m)
{
	json_t *c = json_object_get(canned, m->method), *res;

	emu_log(json_pack("{s:s, s:O}", "method", m->method, "params",
	    m->params));
	if (c && json_object_get(c, "error"))
		return send_msg(fd, l, msg_encode_error(m->id, "failed", "%s",
		    json_string_value(json_object_get(c, "error"))));
	if (c == NULL && cur_fd == fd && emu_console_request(consoles, m))
		return 0;
	if (c)
		res = json_deep_copy(json_object_get(c, "result"));
	else
		res = default_result(m->method, m->params);
	if (res == NULL)
		return send_msg(fd, l, msg_encode_error(m->id, "unknown_method",
		    "%s", m->method));
	return send_msg(fd, l, msg_encode_result(m->id, res));
}

/* One control line; 1: drop the session. */
static int
control(int fd, struct link *l, char *line)
{
	char *sp = strchr(line, ' '), *arg;
	json_t *j;

	if (strcmp(line, "drop") == 0)
		return 1;
	if (sp == NULL)
		return 0;
	*sp = '\0';
	arg = sp + 1;
	if (strcmp(line, "console_gone") == 0) {
		emu_console_gone(consoles, arg);
		return 0;
	}
	if (strcmp(line, "vms") == 0) {
		if ((j = json_loads(arg, 0, NULL)) != NULL) {
			json_decref(vms);
			vms = j;
		}
		return 0;
	}
	if ((sp = strchr(arg, ' ')) == NULL)
		return 0;
	*sp = '\0';
	if (strcmp(line, "notify") == 0) {
		if ((j = json_loads(sp + 1, 0, NULL)) == NULL) {
			fprintf(stderr, "agent_emu: bad JSON: %s\n", sp + 1);
			return 0;
		}
		if (fd >= 0)
			send_msg(fd, l, msg_encode_notify(arg, j));
		else
			json_decref(j);
	} else if (strcmp(line, "reply") == 0) {
		if ((j = json_loads(sp + 1, 0, NULL)) != NULL)
			json_object_set_new(canned, arg, json_pack("{s:o}", "result",
			    j));
	} else if (strcmp(line, "error") == 0) {
		json_object_set_new(canned, arg, json_pack("{s:s}", "error",
		    sp + 1));
	}
	return 0;
}

/* Reads what the FIFO holds and runs each whole line; 1: drop asked. */
static int
drain_ctl(int ctl, int fd, struct link *l, char *cb, size_t cap, size_t *len)
{
	ssize_t r = read(ctl, cb + *len, cap - *len - 1);
	int drop = 0;
	char *nl;

	if (r > 0)
		*len += (size_t)r;
	cb[*len] = '\0';
	while ((nl = strchr(cb, '\n')) != NULL) {
		*nl = '\0';
		if (control(fd, l, cb) == 1)
			drop = 1;
		*len -= (size_t)(nl + 1 - cb);
		memmove(cb, nl + 1, *len + 1);
	}
	return drop;
}

static char *
conf_get(const char *conf, const char *key, char *out, size_t len)
{
	FILE *f = fopen(conf, "r");
	char line[512];
	size_t k = strlen(key);

	out[0] = '\0';
	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, key, k) == 0 && line[k] == ' ')
			snprintf(out, len, "%s", line + k + 1);
	}
	fclose(f);
	return out[0] ? out : NULL;
}

static int
hex32(const char *s, uint8_t out[32])
{
	size_t n = 0;

	return strlen(s) >= 64 && sodium_hex2bin(out, 32, s, 64, NULL, &n,
	    NULL) == 0 && n == 32 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	char addr[128], hvdkey[128], token[256], keyfile[512], keyhex[128];
	char ctlbuf[70000];
	size_t ctllen = 0;
	uint8_t key[32], hvd[32];
	unsigned sessions = 0;
	struct link l;
	FILE *kf;
	int ctl;

	if (argc != 5 || sodium_init() < 0) {
		fprintf(stderr, "usage: agent_emu CONF SRC_IP LOG CTL\n");
		return 2;
	}
	if (!conf_get(argv[1], "hvd", addr, sizeof(addr)) ||
	    !conf_get(argv[1], "hvd-key", hvdkey, sizeof(hvdkey)) ||
	    !conf_get(argv[1], "key-file", keyfile, sizeof(keyfile)) ||
	    hex32(hvdkey, hvd) < 0 || (kf = fopen(keyfile, "r")) == NULL) {
		fprintf(stderr, "agent_emu: %s: incomplete\n", argv[1]);
		return 2;
	}
	if (fgets(keyhex, sizeof(keyhex), kf) == NULL || hex32(keyhex, key) < 0) {
		fprintf(stderr, "agent_emu: %s: no key\n", keyfile);
		return 2;
	}
	fclose(kf);
	conf_get(argv[1], "boot-token", token, sizeof(token));
	if ((logf = fopen(argv[3], "a")) == NULL ||
	    (ctl = open(argv[4], O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		perror("agent_emu");
		return 2;
	}
	canned = json_object();
	vms = json_array();
	if ((consoles = emu_console_new(console_send, NULL)) == NULL) {
		perror("agent_emu: consoles");
		return 2;
	}
	for (;;) {
		struct timespec last = { 0 }, now;
		int fd;

		/* Commands given while hvd was away apply before it asks. */
		drain_ctl(ctl, -1, NULL, ctlbuf, sizeof(ctlbuf), &ctllen);
		fd = session_open(addr, argv[2], key, hvd, sessions ? NULL : token,
		    &l);
		if (fd < 0) {
			usleep(200000);
			continue;
		}
		emu_log(json_pack("{s:i}", "up", (int)++sessions));
		cur_fd = fd;
		cur_link = &l;
		emu_console_link(consoles, true);
		for (;;) {
			struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
			    { .fd = ctl, .events = POLLIN } };
			bool drop = false;

			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec -
			    last.tv_nsec) / 1000000 >= 300) {
				last = now;
				if (send_msg(fd, &l, msg_encode_notify("telemetry",
				    json_loads(telemetry_json, 0, NULL))) < 0)
					break;
			}
			emu_console_pump(consoles);
			if (poll(p, 2, emu_console_sessions(consoles) ? 10 :
			    100) < 0)
				break;
			if (p[0].revents) {
				struct msg m;

				if (recv_msg(fd, &l, &m) < 0)
					break;
				if (m.type == MSG_REQUEST && answer(fd, &l, &m) < 0)
					drop = true;
				msg_dispose(&m);
			}
			if ((p[1].revents & POLLIN) && drain_ctl(ctl, fd, &l, ctlbuf,
			    sizeof(ctlbuf), &ctllen) == 1)
				drop = true;
			if (drop)
				break;
		}
		emu_console_link(consoles, false);
		cur_fd = -1;
		cur_link = NULL;
		close(fd);
		link_dispose(&l);
		emu_log(json_pack("{s:i}", "down", (int)sessions));
		usleep(200000);
	}
}
