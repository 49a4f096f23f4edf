/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl vm console NAME [--attach]: without --attach, the console log
 * (cmd_vm.c); with it, the VM's console read-write through hvd
 * (POST /api/v1/vms/NAME/console/attach, then /api/v1/consoles/ID).
 *
 * Two threads, each with its own libcurl handles: this one relays stdin
 * to the session's input, a POST per read (at most CONSOLE_INPUT_MAX
 * bytes); the output thread long-polls the session and writes what comes
 * to stdout.  The session ends on Ctrl-] (0x1d, anywhere in the input),
 * on end of input (once the console has then been quiet for a second, so
 * `printf 'cmd\n' | hvctl vm console VM --attach` shows the answer), on
 * SIGINT, SIGTERM or SIGHUP, or when hvd says it closed (the reason is
 * printed; exit 1).
 *
 * Invariants: a terminal on stdin is raw only while attached and is
 * restored on every way out (the signal handler restores it at once too);
 * the session is detached on every way out but its closing by hvd.
 * Must never: leave the terminal raw, or print the token.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "hvctl.h"

#define VC_QUIET_MS		1000	/* after end of input: detach when quiet */
#define VC_LINGER_MAX_MS	30000	/* ... or this long after it at most */
#define VC_BUSY_RETRIES		100	/* 429 on input: 50 ms apart */

struct vc {
	struct hvctl *h;
	const char *vm;
	char id[CONSOLE_ID_HEX + 1];
	int wake[2];			/* the output thread's "I ended" */
	atomic_bool stop;		/* main: the thread should end */
	atomic_llong last_out_ms;	/* when output last came */
	/* Written by the output thread before it ends, read after join. */
	bool closed;
	char reason[512];
	int err;			/* HVCTL_* the thread failed with, or 0 */
};

static struct termios vc_saved;
static volatile sig_atomic_t vc_raw;
static volatile sig_atomic_t vc_signal;
static int vc_sigpipe[2] = { -1, -1 };

static long long
vc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
vc_restore_tty(void)
{
	if (vc_raw) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &vc_saved);
		vc_raw = 0;
	}
}

/* Async-signal-safe: the terminal back at once, the rest in main. */
static void
vc_on_signal(int sig)
{
	int e = errno;

	vc_signal = sig;
	vc_restore_tty();
	if (vc_sigpipe[1] != -1)
		(void)!write(vc_sigpipe[1], "s", 1);
	errno = e;
}

static int
vc_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Said while the terminal may be raw: a line of its own, CR LF. */
static void
vc_note_lost(const char *vm, long long n)
{
	fprintf(stderr, "%shvctl: %s: %lld bytes of console output were lost "
	    "(read too slowly)%s", vc_raw ? "\r\n" : "", vm, n,
	    vc_raw ? "\r\n" : "\n");
}

/* The output thread: reads the session from 0 until it closes or main
 * asks it to stop (main's DELETE answers the read that waits). */
static void *
vc_output(void *arg)
{
	struct vc *c = arg;
	struct hvctl_reply rep;
	unsigned long long from = 0;
	char path[160];
	int r;

	while (!atomic_load(&c->stop)) {
		const char *b64, *closed;
		uint8_t *data = NULL;
		size_t len, n = 0;
		long long lost;

		snprintf(path, sizeof(path), "/api/v1/consoles/%s?from=%llu&wait="
		    "%d", c->id, from, CONSOLE_WAIT_MAX_S);
		if ((r = client_call(c->h, "GET", path, NULL, &rep)) != HVCTL_OK) {
			c->err = r;
			break;
		}
		if (rep.status == 404 && atomic_load(&c->stop)) {
			client_reply_dispose(&rep);
			break;
		}
		if ((r = client_check(&rep, "vm console")) != HVCTL_OK) {
			c->err = r;
			client_reply_dispose(&rep);
			break;
		}
		b64 = json_string_value(json_object_get(rep.body, "data"));
		closed = json_string_value(json_object_get(rep.body, "closed"));
		lost = (long long)json_integer_value(json_object_get(rep.body,
		    "lost"));
		len = b64 ? strlen(b64) : 0;
		if (b64 == NULL || (data = malloc(len / 4 * 3 + 1)) == NULL ||
		    console_b64_decode(b64, len, data, len / 4 * 3 + 1, &n) < 0) {
			fprintf(stderr, "hvctl: hvd sent console output that is not "
			    "base64\n");
			c->err = HVCTL_FAIL;
			free(data);
			client_reply_dispose(&rep);
			break;
		}
		if (lost > 0)
			vc_note_lost(c->vm, lost);
		if (n > 0) {
			atomic_store(&c->last_out_ms, vc_now_ms());
			if (vc_write_all(STDOUT_FILENO, data, n) < 0) {
				fprintf(stderr, "hvctl: writing the console output: "
				    "%s\n", strerror(errno));
				c->err = HVCTL_FAIL;
				free(data);
				client_reply_dispose(&rep);
				break;
			}
		}
		free(data);
		from = (unsigned long long)json_integer_value(json_object_get(
		    rep.body, "next"));
		if (closed != NULL) {
			c->closed = true;
			snprintf(c->reason, sizeof(c->reason), "%s", closed);
			client_reply_dispose(&rep);
			break;
		}
		client_reply_dispose(&rep);
	}
	(void)!write(c->wake[1], "x", 1);
	return NULL;
}

/* One input; 429 (inputs still in flight) is waited out.  HVCTL_*. */
static int
vc_input(struct vc *c, const uint8_t *p, size_t n)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	struct hvctl_reply rep;
	char path[160], *b64;
	json_t *body;
	int r = HVCTL_FAIL;

	if (n == 0)
		return HVCTL_OK;
	if ((b64 = console_b64_encode(p, n)) == NULL ||
	    (body = json_pack("{s:s}", "data", b64)) == NULL) {
		free(b64);
		return HVCTL_FAIL;
	}
	snprintf(path, sizeof(path), "/api/v1/consoles/%s/input", c->id);
	for (int i = 0; i < VC_BUSY_RETRIES; i++) {
		if ((r = client_call(c->h, "POST", path, body, &rep)) != HVCTL_OK)
			break;
		if (rep.status == 409 && !atomic_load(&c->stop)) {
			/* Refused (a closed session: the output thread will
			 * say so too); the console goes on. */
			const char *e = json_string_value(json_object_get(
			    rep.body, "error"));

			fprintf(stderr, "%shvctl: input not sent: %s%s",
			    vc_raw ? "\r\n" : "", e ? e : "?", vc_raw ? "\r\n" :
			    "\n");
			r = HVCTL_OK;
			client_reply_dispose(&rep);
			break;
		}
		if (rep.status != 429 || i + 1 == VC_BUSY_RETRIES) {
			/* Gone: the output thread says why. */
			r = rep.status == 404 ? HVCTL_OK : client_check(&rep,
			    "vm console");
			client_reply_dispose(&rep);
			break;
		}
		client_reply_dispose(&rep);
		nanosleep(&pause, NULL);
	}
	json_decref(body);
	free(b64);
	return r;
}

static int
vc_attach(struct vc *c)
{
	struct hvctl_reply rep;
	char path[160];
	const char *id;
	int r;

	snprintf(path, sizeof(path), "/api/v1/vms/%s/console/attach", c->vm);
	if ((r = client_call(c->h, "POST", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "vm console --attach")) == HVCTL_OK) {
		id = json_string_value(json_object_get(rep.body, "session"));
		if (id == NULL || strlen(id) != CONSOLE_ID_HEX) {
			fprintf(stderr, "hvctl: hvd's attach reply has no session\n");
			r = HVCTL_FAIL;
		} else {
			memcpy(c->id, id, CONSOLE_ID_HEX + 1);
		}
	}
	client_reply_dispose(&rep);
	return r;
}

static void
vc_detach(struct vc *c)
{
	struct hvctl_reply rep;
	char path[160];

	snprintf(path, sizeof(path), "/api/v1/consoles/%s", c->id);
	if (client_call(c->h, "DELETE", path, NULL, &rep) == HVCTL_OK)
		client_reply_dispose(&rep);
}

static void
vc_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

enum vc_end { VC_RUNNING, VC_ESCAPE, VC_EOF, VC_SIGNAL, VC_CLOSED,
    VC_FAILED };

/* Relays stdin until the session ends; how it ended. */
static enum vc_end
vc_loop(struct vc *c, int *rc)
{
	uint8_t buf[CONSOLE_INPUT_MAX];
	long long eof_at = 0;
	bool eof = false;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = eof ? -1 : STDIN_FILENO, .events = POLLIN },
			{ .fd = vc_sigpipe[0], .events = POLLIN },
			{ .fd = c->wake[0], .events = POLLIN },
		};
		ssize_t n;
		uint8_t *esc;

		if (vc_signal)
			return VC_SIGNAL;
		if (eof) {
			long long now = vc_now_ms(), last =
			    atomic_load(&c->last_out_ms);

			if (now - (last > eof_at ? last : eof_at) >= VC_QUIET_MS ||
			    now - eof_at >= VC_LINGER_MAX_MS)
				return VC_EOF;
		}
		if (poll(p, 3, 100) < 0 && errno != EINTR) {
			*rc = HVCTL_FAIL;
			return VC_FAILED;
		}
		if (p[2].revents)
			return VC_CLOSED;
		if (eof || !(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if ((n = read(STDIN_FILENO, buf, sizeof(buf))) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			n = 0;
		}
		if (n == 0) {
			eof = true;
			eof_at = vc_now_ms();
			continue;
		}
		esc = memchr(buf, CONSOLE_ESCAPE, (size_t)n);
		if ((*rc = vc_input(c, buf, esc ? (size_t)(esc - buf) :
		    (size_t)n)) != HVCTL_OK)
			return VC_FAILED;
		if (esc != NULL)
			return VC_ESCAPE;
	}
}

static int
vc_run(struct hvctl *h, const char *vm)
{
	struct vc c = { .h = h, .vm = vm, .wake = { -1, -1 } };
	struct termios raw;
	sigset_t block, old;
	pthread_t th;
	enum vc_end end;
	int r;

	if ((r = vc_attach(&c)) != HVCTL_OK)
		return r;
	if (pipe2(c.wake, O_CLOEXEC) < 0 || pipe2(vc_sigpipe, O_CLOEXEC |
	    O_NONBLOCK) < 0) {
		fprintf(stderr, "hvctl: pipe: %s\n", strerror(errno));
		vc_detach(&c);
		return HVCTL_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "Connected to %s's console; Ctrl-] detaches.\n", vm);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &vc_saved) == 0) {
		raw = vc_saved;
		cfmakeraw(&raw);
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
			vc_raw = 1;
	}
	vc_signals(vc_on_signal);
	/* Signals go to this thread, whose poll they wake. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r = pthread_create(&th, NULL, vc_output, &c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		vc_restore_tty();
		fprintf(stderr, "hvctl: cannot start the output thread: %s\n",
		    strerror(r));
		vc_detach(&c);
		r = HVCTL_FAIL;
		goto out;
	}
	r = HVCTL_OK;
	end = vc_loop(&c, &r);
	atomic_store(&c.stop, true);
	/* The DELETE also answers the read the output thread waits in. */
	if (end != VC_CLOSED)
		vc_detach(&c);
	pthread_join(th, NULL);
	vc_restore_tty();
	if (end == VC_CLOSED && c.closed) {
		fprintf(stderr, "hvctl: %s's console closed: %s\n", vm, c.reason);
		r = HVCTL_FAIL;
		vc_detach(&c);	/* hvd forgets the closed session now */
	} else if (end == VC_CLOSED) {
		r = c.err ? c.err : HVCTL_FAIL;
		vc_detach(&c);
	}
	if (end == VC_SIGNAL) {
		fprintf(stderr, "hvctl: %s; detached from %s's console\n",
		    strsignal(vc_signal), vm);
		r = HVCTL_FAIL;
	} else if (end == VC_ESCAPE || end == VC_EOF) {
		fprintf(stderr, "hvctl: detached from %s's console%s\n", vm,
		    end == VC_EOF ? " (end of input)" : "");
	}
out:
	vc_signals(SIG_DFL);
	close(c.wake[0]);
	close(c.wake[1]);
	close(vc_sigpipe[0]);
	close(vc_sigpipe[1]);
	vc_sigpipe[0] = vc_sigpipe[1] = -1;
	return r;
}

int
cmd_vm_console_main(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "attach", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	bool attach = false;
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'a')
			return HVCTL_USAGE;
		attach = true;
	}
	if (!attach)
		return cmd_vm_console(h, argc, argv);
	if (optind + 1 != argc || argv[optind][0] == '\0' ||
	    strlen(argv[optind]) > 63 || strspn(argv[optind],
	    "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(argv[optind]))
		return hvctl_usage_error("vm console", "expects one VM NAME");
	if (h->json) {
		fprintf(stderr, "hvctl vm console --attach: --json does not "
		    "apply to a console\n");
		return HVCTL_USAGE;
	}
	return vc_run(h, argv[optind]);
}
