/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Migration relay benchmark, no Xen, no QEMU: a synthetic guest's save
 * stream (default 128 MiB: 4 KiB pages, 10% random, 10% nearly empty, the
 * rest zero) goes from a "save helper" process through the agent's relay
 * (agent/migrate_io.c: read the socketpair, seal, TCP over loopback, open,
 * write the socketpair) to a "restore helper" process that checks every
 * byte, as in a migration between two hosts: each relay end is its own
 * process with its own event loop.
 *
 * Three ways, interleaved, BENCH_RUNS times each (median printed):
 *   plain   the peer: the stream over plain TCP, a read/write loop each
 *           side, no framing, no crypto (what `xl migrate` over nc sends);
 *   raw     the channel with plain DATA frames (a target whose READY is
 *           empty, as before LZ4);
 *   lz4     the channel with DATA_LZ4 (the target offers it in READY).
 * For each: wall time from connect until the restore side verified the
 * last byte, MB/s of stream, bytes on the wire (the channel's frames as
 * both relay ends counted them, which must agree; plain: the stream), and
 * the CPU seconds of the two relay processes (the cost that matters under
 * QEMU's TCG, where the relay is CPU-bound).  Then the ratios.
 *
 * usage: migrate_relay_bench [-m MiB] [-r RANDOM%] [-e NEARLY_EMPTY%] [-n RUNS]
 * Exits non-zero only when something breaks (a byte differs, a count
 * disagrees), never on a figure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "log.h"
#include "migchan.h"
#include "migrate_io.h"

#define PAGE		4096
#define CHUNK		65536
#define MAX_RUNS	15

enum mode { M_PLAIN, M_RAW, M_LZ4, M_N };
static const char *const mode_name[M_N] = { "plain", "raw", "lz4" };
static const char *const mode_what[M_N] = {
	"plain TCP, no channel (the peer: xl's raw stream)",
	"channel, plain DATA (target without LZ4)",
	"channel, DATA_LZ4 (target offers LZ4)",
};

static uint8_t *image;
static size_t image_len;
static uint8_t id[MIGCHAN_ID_LEN], key[MIGCHAN_KEY_LEN];
static uint8_t s_pk[32], s_sk[32], t_pk[32], t_sk[32];

/* What one run measured. */
struct result {
	double wall_s, src_cpu_s, dst_cpu_s;
	uint64_t raw, wire;
};

/* What the target process reports through its pipe. */
struct report {
	uint64_t raw, wire;
	double cpu_s;
	int ok;
};

static void
die(const char *what)
{
	fprintf(stderr, "migrate_relay_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
diex(const char *what)
{
	fprintf(stderr, "migrate_relay_bench: %s\n", what);
	exit(1);
}

static double
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
fill_image(unsigned random_pct, unsigned sparse_pct)
{
	uint8_t r[16];

	for (size_t off = 0, k = 0; off < image_len; off += PAGE, k++) {
		unsigned h = (unsigned)((k * 2654435761u) % 100);
		uint8_t *p = image + off;

		if (h < random_pct) {
			randombytes_buf(p, PAGE);
		} else if (h < random_pct + sparse_pct) {
			/* A few words of a nearly empty page. */
			randombytes_buf(r, sizeof(r));
			for (int i = 0; i < 8; i++)
				p[(r[i] * 16) % PAGE] = r[8 + i] | 1;
		}
	}
}

static void
write_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, b, len)) < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		b += n;
		len -= (size_t)n;
	}
}

static void
read_all(int fd, void *p, size_t len)
{
	uint8_t *b = p;
	ssize_t n;

	while (len > 0) {
		if ((n = read(fd, b, len)) <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			diex("a child died before it reported");
		}
		b += n;
		len -= (size_t)n;
	}
}

/* ---- the helpers: libxl's side of each socketpair ---- */

static void
save_helper(int fd)
{
	for (size_t off = 0; off < image_len; off += CHUNK)
		write_all(fd, image + off, image_len - off < CHUNK ?
		    image_len - off : CHUNK);
	close(fd);
	_exit(0);
}

/* Reads the whole stream, checks it, reports when it finished. */
static void
restore_helper(int fd, int report_fd)
{
	static uint8_t buf[CHUNK];
	size_t got = 0;
	double t;
	int ok = 1;
	ssize_t n;

	while (got < image_len && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("restore helper: read");
		}
		if (got + (size_t)n > image_len ||
		    memcmp(buf, image + got, (size_t)n) != 0)
			ok = 0;
		got += (size_t)n;
	}
	t = mono_s();
	ok = ok && got == image_len;
	write_all(report_fd, &t, sizeof(t));
	write_all(report_fd, &ok, sizeof(ok));
	_exit(0);
}

/* ---- plain TCP ---- */

static void
copy_fd(int from, int to)
{
	static uint8_t buf[CHUNK];
	ssize_t n;

	while ((n = read(from, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("plain relay: read");
		}
		write_all(to, buf, (size_t)n);
	}
}

static int
tcp_listener(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		die("listen");
	*port = ntohs(sin.sin_port);
	return fd;
}

/* ---- the channel: the target relay ---- */

struct relay {
	struct event_base *base;
	struct mig_listener *l;		/* target, until authed */
	struct mig_io *io;
	int pump_fd;
	enum mode mode;
	bool done;
	int err;
	uint64_t raw, wire;
};

static void
t_accepted(void *arg, struct mig_io *io)
{
	struct relay *r = arg;

	r->io = io;
	if (mig_io_pump_to(io, r->pump_fd) != 0)
		diex("pump_to");
}

static void
t_authed(void *arg)
{
	static const uint8_t caps[] = { MIGCHAN_CAP_LZ4 };
	struct relay *r = arg;

	/* Nothing else comes: the loop ends when the io has finished. */
	mig_listener_free(r->l);
	r->l = NULL;
	if (mig_io_send(r->io, MIGCHAN_READY, r->mode == M_LZ4 ? caps : NULL,
	    r->mode == M_LZ4 ? sizeof(caps) : 0, false) != 0)
		diex("send READY");
}

static void
t_frame(void *arg, enum migchan_type t, const uint8_t *p, size_t len,
    bool final)
{
	static const uint8_t domid[4] = { 0, 0, 0, 1 };
	struct relay *r = arg;

	(void)p;
	(void)len;
	(void)final;
	if (t == MIGCHAN_END) {
		/* Every DATA byte before END is on the pump fd by now. */
		r->raw = mig_io_bytes(r->io);
		r->wire = mig_io_wire_bytes(r->io);
		if (mig_io_send(r->io, MIGCHAN_RECEIVED, NULL, 0, false) != 0)
			diex("send RECEIVED");
	} else if (t == MIGCHAN_GO) {
		if (mig_io_send(r->io, MIGCHAN_DONE, domid, sizeof(domid),
		    true) != 0)
			diex("send DONE");
		mig_io_finish(r->io);
		r->io = NULL;
		r->done = true;
	}
}

static void
any_closed(void *arg, int err)
{
	struct relay *r = arg;

	mig_io_free(r->io);
	r->io = NULL;
	r->err = err;
	event_base_loopbreak(r->base);
}

static const struct mig_io_ops target_ops = {
	.accepted = t_accepted,
	.authed = t_authed,
	.frame = t_frame,
	.closed = any_closed,
};

static void
target_relay(enum mode mode, int pump_fd, int port_fd, int report_fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct relay r = { .pump_fd = pump_fd, .mode = mode };
	struct report rep = { 0 };
	struct migchan ch;
	double c0 = cpu_s();
	uint16_t port;
	int lfd, fd;

	if (mode == M_PLAIN) {
		lfd = tcp_listener(&port);
		write_all(port_fd, &port, sizeof(port));
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			die("accept");
		c0 = cpu_s();
		copy_fd(fd, pump_fd);
		rep.raw = rep.wire = image_len;
		rep.ok = 1;
		goto out;
	}
	if ((r.base = event_base_new()) == NULL)
		diex("event_base_new");
	if ((r.l = mig_listener_new(r.base, (struct sockaddr *)&sin,
	    sizeof(sin), NULL, NULL)) == NULL)
		die("mig_listener_new");
	port = (uint16_t)mig_listener_port(r.l);
	if (migchan_init(&ch, MIGCHAN_RESPONDER, id, key, t_sk, s_pk) != 0 ||
	    mig_listener_expect(r.l, &ch, "127.0.0.1", &target_ops, &r) ==
	    NULL)
		diex("expect");
	write_all(port_fd, &port, sizeof(port));
	/* Until the finish is out and nothing is left on the loop. */
	event_base_dispatch(r.base);
	mig_listener_free(r.l);
	event_base_free(r.base);
	rep.raw = r.raw;
	rep.wire = r.wire;
	rep.ok = r.done;
out:
	rep.cpu_s = cpu_s() - c0;
	close(pump_fd);
	write_all(report_fd, &rep, sizeof(rep));
	_exit(0);
}

/* ---- the channel: the source relay, in the parent ---- */

static void
s_authed(void *arg)
{
	(void)arg;		/* the stream waits for READY */
}

static void
s_frame(void *arg, enum migchan_type t, const uint8_t *p, size_t len,
    bool final)
{
	struct relay *r = arg;

	(void)p;
	(void)len;
	(void)final;
	if (t == MIGCHAN_READY) {
		if (mig_io_pump_from(r->io, r->pump_fd) != 0)
			diex("pump_from");
	} else if (t == MIGCHAN_RECEIVED) {
		if (mig_io_send(r->io, MIGCHAN_GO, NULL, 0, true) != 0)
			diex("send GO");
	} else if (t == MIGCHAN_DONE) {
		r->done = true;
	}
}

static void
s_pumped(void *arg)
{
	struct relay *r = arg;

	r->raw = mig_io_bytes(r->io);
	r->wire = mig_io_wire_bytes(r->io);
	if (mig_io_send(r->io, MIGCHAN_END, NULL, 0, false) != 0)
		diex("send END");
}

static const struct mig_io_ops source_ops = {
	.authed = s_authed,
	.frame = s_frame,
	.pumped = s_pumped,
	.closed = any_closed,
};

static void
source_relay(enum mode mode, int pump_fd, uint16_t port, struct result *res)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct relay r = { .pump_fd = pump_fd, .mode = mode };
	struct migchan ch;
	int fd;

	if (mode == M_PLAIN) {
		if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("connect");
		copy_fd(pump_fd, fd);
		close(fd);
		res->raw = res->wire = image_len;
		return;
	}
	if ((r.base = event_base_new()) == NULL)
		diex("event_base_new");
	if (migchan_init(&ch, MIGCHAN_INITIATOR, id, key, s_sk, t_pk) != 0)
		diex("migchan_init");
	if ((r.io = mig_io_connect(r.base, (struct sockaddr *)&sin,
	    sizeof(sin), &ch, &source_ops, &r)) == NULL)
		die("mig_io_connect");
	event_base_dispatch(r.base);
	if (!r.done || r.err != 0)
		diex("the source relay did not finish cleanly");
	event_base_free(r.base);
	res->raw = r.raw;
	res->wire = r.wire;
}

/* ---- one run ---- */

/* A child keeps only the fds it uses: an end held open elsewhere would
 * keep its peer from ever seeing EOF. */
static void
keep_only(const int *fds, int n, int a, int b, int c, int d)
{
	for (int i = 0; i < n; i++)
		if (fds[i] != a && fds[i] != b && fds[i] != c && fds[i] != d)
			close(fds[i]);
}

static void
run(enum mode mode, struct result *res)
{
	int from[2], to[2], port_p[2], rep_p[2], done_p[2], all[10];
	pid_t pids[3];
	struct report rep;
	uint16_t port;
	double t0, t1, c0;
	int ok, st;

	memset(res, 0, sizeof(*res));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, from) != 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to) != 0 ||
	    pipe2(port_p, O_CLOEXEC) != 0 || pipe2(rep_p, O_CLOEXEC) != 0 ||
	    pipe2(done_p, O_CLOEXEC) != 0)
		die("socketpair");
	mig_io_pair_buffers(from);
	mig_io_pair_buffers(to);
	/* The relay ends are non-blocking, as the agent makes its own. */
	if (mode != M_PLAIN && (evutil_make_socket_nonblocking(from[1]) != 0 ||
	    evutil_make_socket_nonblocking(to[0]) != 0))
		die("nonblocking");

	memcpy(all, from, sizeof(from));
	memcpy(all + 2, to, sizeof(to));
	memcpy(all + 4, port_p, sizeof(port_p));
	memcpy(all + 6, rep_p, sizeof(rep_p));
	memcpy(all + 8, done_p, sizeof(done_p));
	fflush(stdout);
	if ((pids[0] = fork()) == 0) {
		keep_only(all, 10, from[0], -1, -1, -1);
		save_helper(from[0]);
	}
	if ((pids[1] = fork()) == 0) {
		keep_only(all, 10, to[1], done_p[1], -1, -1);
		restore_helper(to[1], done_p[1]);
	}
	if ((pids[2] = fork()) == 0) {
		keep_only(all, 10, to[0], port_p[1], rep_p[1], -1);
		target_relay(mode, to[0], port_p[1], rep_p[1]);
	}
	if (pids[0] < 0 || pids[1] < 0 || pids[2] < 0)
		die("fork");
	keep_only(all, 10, from[1], port_p[0], rep_p[0], done_p[0]);
	read_all(port_p[0], &port, sizeof(port));

	c0 = cpu_s();
	t0 = mono_s();
	source_relay(mode, from[1], port, res);
	res->src_cpu_s = cpu_s() - c0;
	close(from[1]);
	read_all(done_p[0], &t1, sizeof(t1));
	read_all(done_p[0], &ok, sizeof(ok));
	read_all(rep_p[0], &rep, sizeof(rep));
	for (int i = 0; i < 3; i++)
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			diex("a child failed");
	close(port_p[0]);
	close(rep_p[0]);
	close(done_p[0]);
	if (!ok)
		diex("the restore side got other bytes than the image");
	if (!rep.ok || rep.raw != image_len || res->raw != image_len ||
	    rep.wire != res->wire)
		diex("the two relay ends disagree on the stream");
	res->wall_s = t1 - t0;
	res->dst_cpu_s = rep.cpu_s;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	struct result res[M_N][MAX_RUNS];
	double wall[M_N], cpu[M_N], v[MAX_RUNS], mb;
	unsigned mib = 128, random_pct = 10, sparse_pct = 10;
	int runs = 3, c;

	while ((c = getopt(argc, argv, "m:r:e:n:")) != -1) {
		switch (c) {
		case 'm':
			mib = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			random_pct = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			sparse_pct = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			runs = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: migrate_relay_bench [-m MiB] "
			    "[-r RANDOM%%] [-e NEARLY_EMPTY%%] [-n RUNS]\n");
			return 2;
		}
	}
	if (mib == 0 || mib > 4096 || runs < 1 || runs > MAX_RUNS ||
	    random_pct + sparse_pct > 100)
		diex("-m 1..4096, -n 1..15, -r + -e at most 100");
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0)
		diex("sodium_init");
	log_init(true, LOG_LEVEL_WARN, "migrate_relay_bench");
	image_len = (size_t)mib << 20;
	if ((image = mmap(NULL, image_len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		die("mmap");
	fill_image(random_pct, sparse_pct);
	randombytes_buf(id, sizeof(id));
	randombytes_buf(key, sizeof(key));
	crypto_box_keypair(s_pk, s_sk);
	crypto_box_keypair(t_pk, t_sk);
	printf("relay bench: %u MiB synthetic guest, %u%% random pages, %u%% "
	    "nearly empty, the rest zero; %d run(s) each, interleaved\n", mib,
	    random_pct, sparse_pct, runs);

	for (int i = 0; i < runs; i++)
		for (int m = 0; m < M_N; m++) {
			struct result *r = &res[m][i];

			run((enum mode)m, r);
			printf("  run %d %-5s %6.2f s  %7.1f MB/s  wire %7.1f MB"
			    "  relay CPU %.2f s (source %.2f, target %.2f)\n",
			    i + 1, mode_name[m], r->wall_s,
			    (double)r->raw / 1e6 / r->wall_s,
			    (double)r->wire / 1e6, r->src_cpu_s + r->dst_cpu_s,
			    r->src_cpu_s, r->dst_cpu_s);
			fflush(stdout);
		}
	mb = (double)image_len / 1e6;
	printf("median of %d:\n", runs);
	for (int m = 0; m < M_N; m++) {
		for (int i = 0; i < runs; i++)
			v[i] = res[m][i].wall_s;
		wall[m] = median(v, runs);
		for (int i = 0; i < runs; i++)
			v[i] = res[m][i].src_cpu_s + res[m][i].dst_cpu_s;
		cpu[m] = median(v, runs);
		printf("  %-5s %6.2f s  %7.1f MB/s  wire %7.1f MB for %.1f MB"
		    "  relay CPU %.2f s  %s\n", mode_name[m], wall[m],
		    mb / wall[m], (double)res[m][0].wire / 1e6, mb, cpu[m],
		    mode_what[m]);
	}
	printf("ratios: lz4/raw: time %.2f, wire %.3f, relay CPU %.2f; "
	    "lz4/plain: time %.2f, wire %.3f, relay CPU %.2f\n",
	    wall[M_LZ4] / wall[M_RAW],
	    (double)res[M_LZ4][0].wire / (double)res[M_RAW][0].wire,
	    cpu[M_LZ4] / cpu[M_RAW], wall[M_LZ4] / wall[M_PLAIN],
	    (double)res[M_LZ4][0].wire / (double)res[M_PLAIN][0].wire,
	    cpu[M_LZ4] / cpu[M_PLAIN]);
	munmap(image, image_len);
	return 0;
}
