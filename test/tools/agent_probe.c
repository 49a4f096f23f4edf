/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agent_probe: speaks the agent link (proto/link.c, proto/msg.c) to a real
 * hvd, correctly or with one deliberate fault, and reports whether hvd
 * refused it.  The netns tests use it for every rejection case PROTOCOL.md
 * names; it is a test tool, never installed.
 *
 *   agent_probe keygen                      -> "PRIVHEX PUBHEX"
 *   agent_probe CASE ADDR:PORT HVDKEY KEYHEX [BOOT_TOKEN]
 *
 * CASE is ok, wrong-hvd-key, unknown-key, replay-msg1, replay-frame,
 * reorder, tamper, oversize, garbage, downgrade or token.  Exit 0: hvd
 * behaved as the case demands (accepted "ok"/"token" is checked by the
 * caller via the second word printed; refused everything else).  Exit 1:
 * hvd did not.  Exit 2: usage or local error.
 *
 * Hostile cases (test/netns/agent_hostile.sh); N is the optional last
 * argument in place of BOOT_TOKEN:
 *   idle N          open N connections, send nothing, wait (at most 30 s)
 *                   for hvd to close them all; pass if it did
 *   closes N        connect and close at once, N times in a row
 *   inject-type     an enrolled session whose message type holds a newline
 *                   and ESC ("unknown type" reaches hvd's log and events)
 *   inject-field    the same in an unknown top-level field name
 *   flood N         an enrolled session sending N ping requests (default
 *                   400,000) as fast as it can, never reading a reply; pass
 *                   if hvd closes it within 30 s
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "hostport.h"
#include "link.h"
#include "msg.h"

static uint8_t buf[LINK_FRAME_MAX + 64];
static uint8_t body[LINK_FRAME_MAX];

static const char facts_json[] = "{\"cpu\":{\"model\":null,\"count\":1},"
    "\"memory\":{\"total_bytes\":null},\"nics\":[],\"disks\":[],"
    "\"dmi\":{\"sys_vendor\":null,\"product_name\":null,\"product_uuid\":null,"
    "\"product_serial\":null,\"board_name\":null,\"bios_version\":null},"
    "\"kernel\":{\"release\":null}}";
static const char telemetry_json[] = "{\"cpu\":{\"percent\":1.5,\"count\":1},"
    "\"load\":[0.1,0.2,0.3],\"memory\":{\"total_bytes\":1000,"
    "\"available_bytes\":600,\"used_bytes\":400},\"nics\":[],\"disks\":[],"
    "\"temps\":[],\"xen\":null}";

static int
dial(const char *hostport)
{
	char host[INET6_ADDRSTRLEN], why[128];
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t sslen;
	uint16_t port;
	int fd;

	if (hostport_parse(hostport, false, host, sizeof(host), &port, why,
	    sizeof(why)) < 0) {
		fprintf(stderr, "agent_probe: %s\n", why);
		errno = EINVAL;
		return -1;
	}
	if (strchr(host, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &sin6->sin6_addr);
		sslen = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		inet_pton(AF_INET, host, &sin->sin_addr);
		sslen = sizeof(*sin);
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sslen) == -1) {
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

/* 1: peer closed; 0: got n bytes; -1: timeout. */
static int
recv_n(int fd, uint8_t *p, size_t n, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (n > 0) {
		ssize_t r;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		r = recv(fd, p, n, 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* 1: closed; 0: a frame; -1: timeout or bad frame. */
static int
recv_frame(int fd, size_t *len)
{
	uint8_t hdr[LINK_FRAME_HDR];
	int r;

	if ((r = recv_n(fd, hdr, sizeof(hdr), 5000)) != 0)
		return r;
	if (link_frame_peek(hdr, sizeof(hdr) + LINK_FRAME_MAX, len) < 0)
		return -1;
	return recv_n(fd, body, *len, 5000);
}

/* True if hvd closes the connection within 5 s (whatever it sends first). */
static bool
closed_by_peer(int fd)
{
	uint8_t sink[4096];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		ssize_t r;

		if (poll(&pfd, 1, 5000) <= 0)
			return false;
		r = recv(fd, sink, sizeof(sink), 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;
	}
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
send_msg(int fd, struct link *l, char *json, bool send_it, uint8_t *copy,
    size_t *copylen)
{
	size_t n = 0;
	int r;

	if (json == NULL)
		return -1;
	r = link_seal(l, (uint8_t *)json, strlen(json), buf, sizeof(buf), &n);
	free(json);
	if (r < 0)
		return -1;
	if (copy) {
		memcpy(copy, buf, n);
		*copylen = n;
	}
	return send_it ? send_all(fd, buf, n) : 0;
}

/* Handshake; 0 ok, 1 closed by hvd, -1 error.  msg1 copied if asked. */
static int
handshake(int fd, struct link *l, const uint8_t key[32], const uint8_t hvd[32],
    uint8_t *msg1, size_t *msg1len)
{
	size_t n = 0, len = 0;
	int r;

	if (link_init_initiator(l, key, hvd, now_ns(), buf, sizeof(buf), &n) < 0)
		return -1;
	if (msg1) {
		memcpy(msg1, buf, n);
		*msg1len = n;
	}
	if (send_all(fd, buf, n) < 0)
		return 1;
	if ((r = recv_frame(fd, &len)) != 0)
		return r;
	return link_initiator_finish(l, body, len) < 0 ? -1 : 0;
}

/* Sends hello; 0 accepted, 1 refused (closed or error reply), -1 error. */
static int
hello(int fd, struct link *l, const char *token)
{
	json_t *params = json_pack("{s:[i], s:s, s:s, s:o}", "versions", 1,
	    "agent_version", "probe", "boot_id", "probe-boot", "facts",
	    json_loads(facts_json, 0, NULL));
	uint8_t plain[LINK_FRAME_MAX];
	struct msg m;
	char err[256];
	size_t len = 0, n = 0;
	int r;

	if (token)
		json_object_set_new(params, "boot_token", json_string(token));
	if (send_msg(fd, l, msg_encode_request(1, "hello", params), true, NULL,
	    NULL) < 0)
		return 1;
	if ((r = recv_frame(fd, &len)) != 0)
		return r;
	if (link_open(l, body, len, plain, sizeof(plain), &n) < 0 ||
	    msg_decode((char *)plain, n, &m, err, sizeof(err)) < 0)
		return -1;
	r = m.result ? 0 : 1;
	msg_dispose(&m);
	return r;
}

static int
hex32(const char *s, uint8_t out[32])
{
	size_t n = 0;

	return strlen(s) == 64 && sodium_hex2bin(out, 32, s, 64, NULL, &n,
	    NULL) == 0 && n == 32 ? 0 : -1;
}

static int
verdict(bool ok, const char *what)
{
	printf("%s %s\n", ok ? "pass" : "FAIL", what);
	return ok ? 0 : 1;
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* N idle connections; hvd must close every one (its handshake deadline). */
static int
case_idle(const char *addr, unsigned n)
{
	struct rlimit rl;
	struct pollfd *p = calloc(n, sizeof(*p));
	unsigned opened = 0, closed = 0;
	double end;
	char what[128];

	if (p == NULL)
		return 2;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (; opened < n; opened++) {
		if ((p[opened].fd = dial(addr)) < 0) {
			perror("agent_probe: connect");
			break;
		}
		p[opened].events = POLLIN;
	}
	end = mono_s() + 30;
	while (closed < opened && mono_s() < end) {
		if (poll(p, opened, 1000) <= 0)
			continue;
		for (unsigned i = 0; i < opened; i++) {
			uint8_t sink[256];
			ssize_t r;

			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			r = recv(p[i].fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				close(p[i].fd);
				p[i].fd = -1;	/* poll ignores it from now on */
				closed++;
			}
		}
	}
	for (unsigned i = 0; i < opened; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
	snprintf(what, sizeof(what), "idle: %u opened, %u closed by hvd",
	    opened, closed);
	return verdict(opened == n && closed == n, what);
}

static int
case_closes(const char *addr, unsigned n)
{
	char what[64];
	unsigned i;

	for (i = 0; i < n; i++) {
		int fd = dial(addr);

		if (fd < 0) {
			perror("agent_probe: connect");
			break;
		}
		close(fd);
	}
	snprintf(what, sizeof(what), "closes: %u connect-and-close", i);
	return verdict(i == n, what);
}

/* Sends all of p before end; 0 sent, 1 hvd closed or reset, -1 time up. */
static int
send_until(int fd, const uint8_t *p, size_t n, double end)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	while (n > 0) {
		ssize_t w;

		if (mono_s() >= end)
			return -1;
		if (poll(&pfd, 1, 200) < 0)
			return -1;
		if (pfd.revents & (POLLERR | POLLHUP))
			return 1;
		if (!(pfd.revents & POLLOUT))
			continue;
		w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			return 1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Requests as fast as hvd takes them, never a read: hvd must close. */
static int
case_flood(int fd, struct link *l, unsigned long n)
{
	double start = mono_s(), end = start + 30;
	unsigned long sent = 0;
	int r = 0, small = 4096;
	char what[160];

	/* A small receive window, as a peer that never reads would keep:
	 * hvd's replies back up into hvd, not into this host's kernel. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

	for (; sent < n; sent++) {
		char *json = msg_encode_request(sent + 2, "ping", json_object());
		size_t len = 0;

		if (json == NULL || link_seal(l, (uint8_t *)json, strlen(json),
		    buf, sizeof(buf), &len) < 0) {
			free(json);
			return 2;
		}
		free(json);
		if ((r = send_until(fd, buf, len, end)) != 0)
			break;
	}
	/* All sent and still open: give hvd the rest of the time to act. */
	if (r == 0) {
		struct pollfd pfd = { .fd = fd, .events = 0 };

		while (mono_s() < end)
			if (poll(&pfd, 1, 200) > 0 &&
			    (pfd.revents & (POLLERR | POLLHUP))) {
				r = 1;
				break;
			}
	}
	snprintf(what, sizeof(what), "flood: %lu requests sent, %s after %.1f s",
	    sent, r == 1 ? "closed by hvd" : "hvd never closed the session",
	    mono_s() - start);
	return verdict(r == 1, what);
}

int
main(int argc, char **argv)
{
	uint8_t key[32], hvd[32], pub[32], msg1[256], f1[512], f2[512];
	size_t msg1len = 0, f1len = 0, f2len = 0;
	const char *c;
	struct link l;
	int fd, r;

	if (sodium_init() < 0)
		return 2;
	if (argc == 2 && strcmp(argv[1], "keygen") == 0) {
		char a[65], b[65];

		crypto_box_keypair(pub, key);
		printf("%s %s\n", sodium_bin2hex(a, sizeof(a), key, 32),
		    sodium_bin2hex(b, sizeof(b), pub, 32));
		return 0;
	}
	if (argc < 5 || hex32(argv[3], hvd) < 0 || hex32(argv[4], key) < 0) {
		fprintf(stderr, "usage: agent_probe CASE ADDR:PORT HVDKEY KEY "
		    "[TOKEN] | agent_probe keygen\n");
		return 2;
	}
	c = argv[1];
	if (strcmp(c, "idle") == 0)
		return case_idle(argv[2], argc > 5 ? (unsigned)atoi(argv[5]) :
		    3000);
	if (strcmp(c, "closes") == 0)
		return case_closes(argv[2], argc > 5 ? (unsigned)atoi(argv[5]) :
		    5000);
	if ((fd = dial(argv[2])) < 0) {
		perror("agent_probe: connect");
		return 2;
	}
	if (strcmp(c, "garbage") == 0) {
		send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
		return verdict(closed_by_peer(fd), "garbage before the handshake");
	}
	if (strcmp(c, "downgrade") == 0) {
		uint8_t pre[LINK_PREAMBLE_LEN];

		link_preamble(pre);
		pre[4] = 0;
		send_all(fd, pre, sizeof(pre));
		return verdict(closed_by_peer(fd), "older wire version");
	}
	if (strcmp(c, "oversize") == 0) {
		uint8_t pre[LINK_PREAMBLE_LEN], hdr[4] = { 0, 1, 0x11, 0x70 };

		link_preamble(pre);
		send_all(fd, pre, sizeof(pre));
		send_all(fd, hdr, sizeof(hdr));	/* 70,000 bytes announced */
		return verdict(closed_by_peer(fd), "oversize frame");
	}
	if (strcmp(c, "wrong-hvd-key") == 0) {
		crypto_box_keypair(hvd, pub);	/* some other server's key */
		r = handshake(fd, &l, key, hvd, NULL, NULL);
		return verdict(r == 1, "wrong hvd key");
	}
	if (strcmp(c, "unknown-key") == 0) {
		crypto_box_keypair(pub, key);	/* a key hvd never enrolled */
		r = handshake(fd, &l, key, hvd, NULL, NULL);
		return verdict(r == 1, "unknown agent key");
	}
	r = handshake(fd, &l, key, hvd, msg1, &msg1len);
	if (r != 0)
		return verdict(false, "handshake with a valid key");
	if (strcmp(c, "replay-msg1") == 0) {
		if (hello(fd, &l, NULL) != 0)
			return verdict(false, "first session");
		close(fd);
		if ((fd = dial(argv[2])) < 0)
			return 2;
		send_all(fd, msg1, msg1len);
		return verdict(closed_by_peer(fd), "replayed handshake message 1");
	}
	if (strcmp(c, "token") == 0) {
		r = hello(fd, &l, argc > 5 ? argv[5] : NULL);
		printf("%s\n", r == 0 ? "accepted" : "refused");
		return 0;
	}
	if (hello(fd, &l, NULL) != 0)
		return verdict(false, "hello");
	if (strcmp(c, "inject-type") == 0) {
		/* What a line forger sends: a newline, then a fake line, then a
		 * terminal escape (ESC [2J clears the operator's screen). */
		send_msg(fd, &l, strdup("{\"type\":\"x\\nhvd: FORGED\\u001b[2J\","
		    "\"id\":1}"), true, NULL, NULL);
		return verdict(closed_by_peer(fd), "newline and ESC in a type");
	}
	if (strcmp(c, "inject-field") == 0) {
		send_msg(fd, &l, strdup("{\"type\":\"notify\",\"method\":"
		    "\"telemetry\",\"params\":{},\"y\\nhvd: FORGED\\u001b[2J\":1}"),
		    true, NULL, NULL);
		return verdict(closed_by_peer(fd), "newline and ESC in a field");
	}
	if (strcmp(c, "flood") == 0)
		return case_flood(fd, &l, argc > 5 ? strtoul(argv[5], NULL, 10) :
		    400000);
	if (strcmp(c, "ok") == 0) {
		send_msg(fd, &l, msg_encode_notify("telemetry",
		    json_loads(telemetry_json, 0, NULL)), true, NULL, NULL);
		usleep(200000);
		return verdict(true, "valid session");
	}
	send_msg(fd, &l, msg_encode_notify("telemetry", json_loads(telemetry_json,
	    0, NULL)), false, f1, &f1len);
	send_msg(fd, &l, msg_encode_notify("telemetry", json_loads(telemetry_json,
	    0, NULL)), false, f2, &f2len);
	if (strcmp(c, "replay-frame") == 0) {
		send_all(fd, f1, f1len);
		send_all(fd, f1, f1len);
		return verdict(closed_by_peer(fd), "replayed transport frame");
	}
	if (strcmp(c, "reorder") == 0) {
		send_all(fd, f2, f2len);
		send_all(fd, f1, f1len);
		return verdict(closed_by_peer(fd), "reordered transport frames");
	}
	if (strcmp(c, "tamper") == 0) {
		f1[f1len - 1] ^= 0x01;
		send_all(fd, f1, f1len);
		return verdict(closed_by_peer(fd), "tampered transport frame");
	}
	fprintf(stderr, "agent_probe: unknown case %s\n", c);
	return 2;
}
