/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's interactive console relay (agent/vm_console_attach.c) on a
 * real pty from openpty(): this test holds the master, as xenconsoled
 * does, and plays the guest on it; the relay opens the slave by its path.
 * Output relayed (base64, one notify per session, chunks bounded), input
 * written (and held back, bounded, while the pty is full), the base64
 * rules both ends share (proto/console.c), backpressure (no read past the
 * link's high mark, resumed below the low one), detach and every close
 * path (end of file, a domain gone, the link dropped, a drop from inside
 * a notify), oversize input refused by the schema, and the open rule.
 * Every test frees what it made, so a leak fails under ASan.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "console.h"
#include "msg.h"
#include "vm_console_attach.h"

#define UUID	"6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2d"
#define UUID2	"7f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2d"
#define S1	"0123456789abcdef0123456789abcdef"
#define S2	"fedcba9876543210fedcba9876543210"

static struct event_base *base;
static struct vca *relay;
static int master = -1, master2 = -1;
static char slave_path[64], slave_path2[64];
static bool alive, tty_fails, drop_in_notify;
static size_t backlog;
static json_t *sent;			/* [[method, params], ...] */
static unsigned tty_calls;

static int
fake_tty(void *arg, const char *uuid, char *path, size_t len,
    uint32_t *domid, char *err, size_t errlen)
{
	(void)arg;
	tty_calls++;
	if (tty_fails) {
		snprintf(err, errlen, "%s is not running here", uuid);
		return -ESRCH;
	}
	snprintf(path, len, "%s", strcmp(uuid, UUID2) == 0 ? slave_path2 :
	    slave_path);
	*domid = 5;
	return 0;
}

static bool
fake_alive(void *arg, const char *uuid, uint32_t domid)
{
	(void)arg;
	(void)uuid;
	return alive && domid == 5;
}

static void
fake_notify(void *arg, const char *method, json_t *params)
{
	(void)arg;
	json_array_append_new(sent, json_pack("[s, o]", method, params));
	/* As a link whose send fails: it drops the relay from inside. */
	if (drop_in_notify)
		vca_drop_all(relay);
}

static size_t
fake_backlog(void *arg)
{
	(void)arg;
	return backlog;
}

static const struct vca_ops fake_ops = {
	.tty = fake_tty, .alive = fake_alive, .notify = fake_notify,
	.backlog = fake_backlog,
};

/* A pty whose master this test holds: its slave's path into PATH. */
static int
make_pty(char *path, size_t len)
{
	int m, s;
	char name[64];

	assert_int_equal(openpty(&m, &s, name, NULL, NULL), 0);
	/* The relay opens the slave by its path; this fd is not needed. */
	close(s);
	snprintf(path, len, "%s", name);
	assert_int_equal(fcntl(m, F_SETFL, O_NONBLOCK), 0);
	return m;
}

static int
setup(void **state)
{
	(void)state;
	base = event_base_new();
	sent = json_array();
	alive = true;
	tty_fails = drop_in_notify = false;
	backlog = 0;
	tty_calls = 0;
	master = make_pty(slave_path, sizeof(slave_path));
	master2 = make_pty(slave_path2, sizeof(slave_path2));
	relay = vca_new(base, &fake_ops, NULL);
	assert_non_null(relay);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	vca_free(relay);
	relay = NULL;
	close(master);
	close(master2);
	json_decref(sent);
	event_base_free(base);
	return 0;
}

/* Runs the loop for about MS milliseconds, or until COND holds. */
#define RUN_UNTIL(cond, ms) do {					\
	for (int i_ = 0; i_ < (ms) / 5 && !(cond); i_++) {		\
		struct timespec ts_ = { 0, 5 * 1000 * 1000 };		\
		event_base_loop(base, EVLOOP_NONBLOCK);			\
		nanosleep(&ts_, NULL);					\
	}								\
	event_base_loop(base, EVLOOP_NONBLOCK);				\
} while (0)

static json_t *
session_params(const char *uuid, const char *id)
{
	return json_pack("{s:s, s:s}", "uuid", uuid, "session", id);
}

static void
attach_ok(const char *uuid, const char *id)
{
	char err[256] = "";
	json_t *p = session_params(uuid, id), *r;

	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_SESSION, p, err,
	    sizeof(err)), 0);
	r = vca_attach(relay, p, err, sizeof(err));
	if (r == NULL)
		fail_msg("attach: %s", err);
	assert_true(json_is_true(json_object_get(r, "accepted")));
	json_decref(r);
	json_decref(p);
}

static json_t *
input_params(const char *id, const void *data, size_t len)
{
	char *b64 = console_b64_encode(data, len);
	json_t *p = json_pack("{s:s, s:s, s:s}", "uuid", UUID, "session", id,
	    "data", b64);

	free(b64);
	return p;
}

static void
master_write(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* What the notifies of METHOD for session ID carried, decoded. */
static size_t
output_of(const char *id, char *buf, size_t cap)
{
	size_t i, len = 0, n;
	char err[256];
	json_t *e;

	json_array_foreach(sent, i, e) {
		json_t *p = json_array_get(e, 1);
		const char *b64;

		if (strcmp(json_string_value(json_array_get(e, 0)),
		    "vm.console_output") != 0 || strcmp(json_string_value(
		    json_object_get(p, "session")), id) != 0)
			continue;
		b64 = json_string_value(json_object_get(p, "data"));
		assert_int_equal(msg_check(MSG_S_VM_CONSOLE_OUTPUT, p, err,
		    sizeof(err)), 0);
		assert_int_equal(console_b64_decode(b64, strlen(b64), (uint8_t *)
		    buf + len, cap - len, &n), 0);
		len += n;
	}
	return len;
}

static size_t
count_method(const char *method)
{
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(sent, i, e)
		n += strcmp(json_string_value(json_array_get(e, 0)), method) == 0;
	return n;
}

static const char *
closed_reason(const char *id)
{
	char err[256];
	size_t i;
	json_t *e;

	json_array_foreach(sent, i, e) {
		json_t *p = json_array_get(e, 1);

		if (strcmp(json_string_value(json_array_get(e, 0)),
		    "vm.console_closed") == 0 && strcmp(json_string_value(
		    json_object_get(p, "session")), id) == 0) {
			assert_int_equal(msg_check(MSG_S_VM_CONSOLE_CLOSED, p, err,
			    sizeof(err)), 0);
			return json_string_value(json_object_get(p, "reason"));
		}
	}
	return NULL;
}

/* ---- tests ---- */

static void
test_b64(void **state)
{
	uint8_t in[300], out[300];
	size_t n;
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t len = 0; len <= sizeof(in); len++) {
		assert_non_null(s = console_b64_encode(in, len));
		assert_int_equal(strlen(s), CONSOLE_B64_LEN(len));
		assert_int_equal(console_b64_decode(s, strlen(s), out,
		    sizeof(out), &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(in, out, len);
		if (len > 0)
			assert_int_equal(console_b64_decode(s, strlen(s), out,
			    len - 1, &n), -EMSGSIZE);
		free(s);
	}
	/* Only canonical, padded base64. */
	assert_int_equal(console_b64_decode("aGk", 3, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("aGl=", 4, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("aG k", 4, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("aGk=\n", 5, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("a===", 4, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("aG-_", 4, out, 9, &n), -EINVAL);
	assert_int_equal(console_b64_decode("aGk=", 4, out, 9, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
}

static void
test_schema_bounds(void **state)
{
	uint8_t big[CONSOLE_OUTPUT_MAX + 1];
	char err[256];
	json_t *p;

	(void)state;
	memset(big, 'a', sizeof(big));
	p = input_params(S1, big, CONSOLE_INPUT_MAX);
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_INPUT, p, err, sizeof(err)),
	    0);
	json_decref(p);
	p = input_params(S1, big, CONSOLE_INPUT_MAX + 1);
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_INPUT, p, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "params.data: is more than 4096 bytes once "
	    "decoded; at most 4096 are taken at once");
	json_decref(p);
	p = json_pack("{s:s, s:s, s:s}", "uuid", UUID, "session", S1, "data",
	    "");
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_INPUT, p, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "params.data: must not be empty");
	json_decref(p);
	p = json_pack("{s:s, s:s, s:s}", "uuid", UUID, "session", "ABC",
	    "data", "aGk=");
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_INPUT, p, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "params.session: must be 32 lowercase hex "
	    "digits");
	json_decref(p);
	/* Output may be larger, to its own bound. */
	p = input_params(S1, big, CONSOLE_OUTPUT_MAX);
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_OUTPUT, p, err, sizeof(err)),
	    0);
	json_decref(p);
	p = input_params(S1, big, CONSOLE_OUTPUT_MAX + 1);
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_OUTPUT, p, err, sizeof(err)),
	    -EINVAL);
	json_decref(p);
	p = json_pack("{s:s, s:s, s:s, s:i}", "uuid", UUID, "session", S1,
	    "reason", "x", "more", 1);
	assert_int_equal(msg_check(MSG_S_VM_CONSOLE_CLOSED, p, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "params: unknown field 'more'");
	json_decref(p);
}

static void
test_output_and_input(void **state)
{
	char buf[CONSOLE_OUTPUT_MAX * 4];
	char err[256] = "";
	json_t *p, *r;
	ssize_t n;

	(void)state;
	attach_ok(UUID, S1);
	assert_int_equal(vca_sessions(relay), 1);
	master_write(master, "hello from the guest\r\n");
	RUN_UNTIL(output_of(S1, buf, sizeof(buf)) >= 22, 2000);
	assert_int_equal(output_of(S1, buf, sizeof(buf)), 22);
	assert_memory_equal(buf, "hello from the guest\r\n", 22);
	/* The relay made its end raw: nothing is echoed back to the guest. */
	n = read(master, buf, sizeof(buf));
	assert_true(n < 0 && errno == EAGAIN);
	p = input_params(S1, "ls -l\r", 6);
	r = vca_input(relay, p, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
	json_decref(p);
	RUN_UNTIL(false, 50);
	assert_int_equal(read(master, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "ls -l\r", 6);
	/* A burst arrives whole and in order, in bounded notifies. */
	json_array_clear(sent);
	for (int i = 0; i < 3 * 4096; i++)
		buf[i] = (char)('a' + i % 26);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write(master, buf + i * 4096, 4096), 4096);
		RUN_UNTIL(output_of(S1, buf + 3 * 4096, sizeof(buf) - 3 * 4096) >=
		    (size_t)(i + 1) * 4096, 2000);
	}
	assert_int_equal(output_of(S1, buf + 3 * 4096, sizeof(buf) - 3 * 4096),
	    3 * 4096);
	assert_memory_equal(buf, buf + 3 * 4096, 3 * 4096);
	{
		size_t i;
		json_t *e;

		json_array_foreach(sent, i, e)
			assert_true(json_string_length(json_object_get(
			    json_array_get(e, 1), "data")) <=
			    CONSOLE_B64_LEN(CONSOLE_OUTPUT_MAX));
	}
	/* Input for a session that is not there. */
	p = input_params(S2, "x", 1);
	assert_null(vca_input(relay, p, err, sizeof(err)));
	assert_string_equal(err, "no console session fedcba98... of " UUID
	    " here");
	json_decref(p);
}

static void
test_two_sessions_detach(void **state)
{
	struct termios before, t;
	char buf[256], err[256] = "";
	json_t *p, *r;
	int fd;

	(void)state;
	fd = open(slave_path, O_RDWR | O_NOCTTY);
	assert_true(fd >= 0);
	assert_int_equal(tcgetattr(fd, &before), 0);
	assert_true(before.c_lflag & ECHO);
	attach_ok(UUID, S1);
	attach_ok(UUID, S2);
	assert_int_equal(tty_calls, 1);		/* one pty for both */
	assert_int_equal(tcgetattr(fd, &t), 0);
	assert_false(t.c_lflag & (ECHO | ICANON));
	master_write(master, "both");
	RUN_UNTIL(output_of(S2, buf, sizeof(buf)) >= 4, 2000);
	assert_int_equal(output_of(S1, buf, sizeof(buf)), 4);
	assert_int_equal(output_of(S2, buf, sizeof(buf)), 4);
	/* The same session twice: refused. */
	p = session_params(UUID, S1);
	assert_null(vca_attach(relay, p, err, sizeof(err)));
	assert_string_equal(err, "console session 01234567... is attached "
	    "already");
	json_decref(p);
	/* S1 goes: only S2 hears what follows. */
	p = session_params(UUID, S1);
	r = vca_detach(relay, p, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
	assert_null(vca_detach(relay, p, err, sizeof(err)));
	assert_string_equal(err, "no console session 01234567... of " UUID
	    " here");
	json_decref(p);
	json_array_clear(sent);
	master_write(master, "only");
	RUN_UNTIL(output_of(S2, buf, sizeof(buf)) >= 4, 2000);
	assert_int_equal(output_of(S1, buf, sizeof(buf)), 0);
	assert_int_equal(output_of(S2, buf, sizeof(buf)), 4);
	/* The last detach restores the pty as it was; no closed notify. */
	p = session_params(UUID, S2);
	r = vca_detach(relay, p, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
	json_decref(p);
	assert_int_equal(vca_sessions(relay), 0);
	assert_int_equal(tcgetattr(fd, &t), 0);
	assert_int_equal(t.c_lflag, before.c_lflag);
	assert_int_equal(t.c_iflag, before.c_iflag);
	assert_int_equal(t.c_oflag, before.c_oflag);
	assert_int_equal(count_method("vm.console_closed"), 0);
	close(fd);
}

static void
test_limits(void **state)
{
	const char *ids[] = { "00000000000000000000000000000001",
	    "00000000000000000000000000000002", "00000000000000000000000000000003",
	    "00000000000000000000000000000004", "00000000000000000000000000000005" };
	char err[256] = "";
	json_t *p;

	(void)state;
	for (int i = 0; i < CONSOLE_PER_VM_MAX; i++)
		attach_ok(UUID, ids[i]);
	p = session_params(UUID, ids[CONSOLE_PER_VM_MAX]);
	assert_null(vca_attach(relay, p, err, sizeof(err)));
	assert_string_equal(err, UUID " has 4 console sessions attached, the "
	    "most one VM takes");
	json_decref(p);
	/* The ops' refusal is the attach's. */
	tty_fails = true;
	p = session_params(UUID2, S1);
	assert_null(vca_attach(relay, p, err, sizeof(err)));
	assert_string_equal(err, UUID2 " is not running here");
	json_decref(p);
	assert_int_equal(vca_sessions(relay), CONSOLE_PER_VM_MAX);
}

static void
test_backpressure(void **state)
{
	char buf[64];

	(void)state;
	attach_ok(UUID, S1);
	backlog = VCA_BACKLOG_HIGH + 1;
	master_write(master, "held");
	RUN_UNTIL(vca_paused(relay), 2000);
	assert_true(vca_paused(relay));
	RUN_UNTIL(false, 100);
	assert_int_equal(count_method("vm.console_output"), 0);
	/* Between the marks: still paused (hysteresis). */
	backlog = VCA_BACKLOG_LOW + 1;
	vca_drained(relay);
	RUN_UNTIL(false, 50);
	assert_true(vca_paused(relay));
	assert_int_equal(count_method("vm.console_output"), 0);
	/* Drained: what the pty held comes, nothing lost. */
	backlog = 0;
	vca_drained(relay);
	assert_false(vca_paused(relay));
	RUN_UNTIL(output_of(S1, buf, sizeof(buf)) >= 4, 2000);
	assert_int_equal(output_of(S1, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "held", 4);
}

static void
test_input_bounded(void **state)
{
	uint8_t chunk[CONSOLE_INPUT_MAX];
	char err[256] = "";
	size_t taken = 0;
	json_t *p, *r;
	int i;

	(void)state;
	memset(chunk, 'i', sizeof(chunk));
	attach_ok(UUID, S1);
	/* The guest reads nothing: the pty fills, then the relay's bound. */
	for (i = 0; i < 1000; i++) {
		p = input_params(S1, chunk, sizeof(chunk));
		r = vca_input(relay, p, err, sizeof(err));
		json_decref(p);
		if (r == NULL)
			break;
		json_decref(r);
		taken += sizeof(chunk);
	}
	assert_true(i < 1000);
	assert_true(strstr(err, "has not taken the last") != NULL);
	/* The guest reads: what was held back goes out, in order, whole. */
	{
		uint8_t buf[8192];
		size_t got = 0;
		ssize_t n;

		for (int k = 0; k < 2000 && got < taken; k++) {
			struct timespec ms = { 0, 1000 * 1000 };

			event_base_loop(base, EVLOOP_NONBLOCK);
			nanosleep(&ms, NULL);
			while ((n = read(master, buf, sizeof(buf))) > 0) {
				for (ssize_t j = 0; j < n; j++)
					assert_int_equal(buf[j], 'i');
				got += (size_t)n;
			}
		}
		assert_int_equal(got, taken);
	}
	/* Room again. */
	p = input_params(S1, chunk, sizeof(chunk));
	r = vca_input(relay, p, err, sizeof(err));
	assert_non_null(r);
	json_decref(r);
	json_decref(p);
}

static void
test_eof(void **state)
{
	(void)state;
	attach_ok(UUID, S1);
	attach_ok(UUID, S2);
	/* xenconsoled let go of the pty: the domain is still there. */
	close(master);
	master = -1;
	RUN_UNTIL(count_method("vm.console_closed") == 2, 2000);
	assert_non_null(closed_reason(S1));
	assert_true(strstr(closed_reason(S1), "the console's pty") != NULL);
	assert_string_equal(closed_reason(S1), closed_reason(S2));
	assert_int_equal(vca_sessions(relay), 0);
	master = open("/dev/null", O_RDONLY);
}

static void
test_domain_gone(void **state)
{
	(void)state;
	attach_ok(UUID, S1);
	attach_ok(UUID2, S2);
	alive = false;
	vca_check(relay);
	assert_string_equal(closed_reason(S1), "the domain is gone");
	assert_string_equal(closed_reason(S2), "the domain is gone");
	assert_int_equal(vca_sessions(relay), 0);
	/* The timer does the same pass on its own. */
	alive = true;
	attach_ok(UUID, S1);
	alive = false;
	json_array_clear(sent);
	RUN_UNTIL(count_method("vm.console_closed") == 1, 3000);
	assert_string_equal(closed_reason(S1), "the domain is gone");
	/* A new domain for the VM: an attach finds the old pty stale. */
	alive = true;
	attach_ok(UUID, S1);
	alive = false;
	json_array_clear(sent);
	tty_calls = 0;
	{
		char err[256] = "";
		json_t *p = session_params(UUID, S2);

		/* The fake's domain is 5 either way: gone, then refused. */
		tty_fails = true;
		assert_null(vca_attach(relay, p, err, sizeof(err)));
		json_decref(p);
	}
	assert_string_equal(closed_reason(S1), "the domain is gone");
	assert_int_equal(tty_calls, 1);
	assert_int_equal(vca_sessions(relay), 0);
}

static void
test_link_drop(void **state)
{
	char buf[64];

	(void)state;
	attach_ok(UUID, S1);
	attach_ok(UUID2, S2);
	vca_drop_all(relay);
	assert_int_equal(vca_sessions(relay), 0);
	assert_int_equal(count_method("vm.console_closed"), 0);
	/* Nothing is read for them any more. */
	master_write(master, "late");
	RUN_UNTIL(false, 100);
	assert_int_equal(output_of(S1, buf, sizeof(buf)), 0);
	/* A notify that ends the link, from inside the read callback: the
	 * drop waits until the relay is out of its callback. */
	attach_ok(UUID, S1);
	attach_ok(UUID, S2);
	drop_in_notify = true;
	master_write(master, "x");
	RUN_UNTIL(vca_sessions(relay) == 0, 2000);
	assert_int_equal(vca_sessions(relay), 0);
	/* Both sessions were told (the link is gone: nobody heard). */
	assert_int_equal(count_method("vm.console_output"), 2);
	/* ... and from inside the liveness pass. */
	drop_in_notify = false;
	attach_ok(UUID, S1);
	attach_ok(UUID2, S2);
	drop_in_notify = true;
	alive = false;
	vca_check(relay);
	assert_int_equal(vca_sessions(relay), 0);
}

static void
test_open_rule(void **state)
{
	struct termios saved;
	char err[256];
	int fd;

	(void)state;
	assert_int_equal(vca_tty_open("/etc/passwd", &saved, err, sizeof(err)),
	    -EINVAL);
	assert_string_equal(err, "the console's pty path is not /dev/pts/N");
	assert_int_equal(vca_tty_open("/dev/pts/../../etc/passwd", &saved, err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(vca_tty_open("/dev/pts/", &saved, err, sizeof(err)),
	    -EINVAL);
	assert_int_equal(vca_tty_open("/dev/pts/ptmx", &saved, err,
	    sizeof(err)), -EINVAL);
	assert_int_equal(vca_tty_open("/dev/pts/999999999", &saved, err,
	    sizeof(err)), -ENOENT);
	fd = vca_tty_open(slave_path, &saved, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_schema_bounds),
		cmocka_unit_test_setup_teardown(test_output_and_input, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_two_sessions_detach, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_input_bounded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_gone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_link_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_rule, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
