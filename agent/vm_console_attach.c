/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The interactive console relay (PROTOCOL.md 6.2, vm.console_*): a
 * running domain's PV console pty, opened once per VM and shared by the
 * sessions attached to it (a pty has one reader: two fds reading it would
 * split the output between them).  What the guest writes is read in
 * chunks of at most CONSOLE_OUTPUT_MAX bytes and sent to hvd as one
 * vm.console_output per session; vm.console_input writes to the pty.
 *
 * Invariants: memory is bounded (VCA_SESSIONS_MAX sessions, one read
 * buffer, at most VCA_INPUT_PENDING_MAX bytes of input waiting per VM);
 * no pty is read while the link holds more than VCA_BACKLOG_HIGH bytes
 * unsent; a pty is left with the attributes it had before it was made
 * raw.  A notify may end the link, which drops every session: the drop
 * is put off until the relay's own callback has returned, so nothing is
 * freed under it.
 * Must never: open anything but a Unix98 pty slave, block on a pty, call
 * libxl (the ops do), or log what passes through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "msg.h"
#include "vm_console_attach.h"

/* Unix98 pty slaves: UNIX98_PTY_SLAVE_MAJOR and the 7 after it. */
#define VCA_PTS_MAJOR_MIN	136
#define VCA_PTS_MAJOR_MAX	143

struct vca_tty;

struct vca_sess {
	TAILQ_ENTRY(vca_sess) entry;
	struct vca_tty *tty;
	char id[CONSOLE_ID_HEX + 1];
};

struct vca_tty {
	TAILQ_ENTRY(vca_tty) entry;
	struct vca *r;
	char uuid[37];
	uint32_t domid;
	int fd;
	struct termios saved;
	struct event *ev_read, *ev_write;
	TAILQ_HEAD(, vca_sess) sessions;
	unsigned nsess;
	uint8_t *in;			/* VCA_INPUT_PENDING_MAX, when needed */
	size_t inlen;
};

struct vca {
	struct event_base *base;
	const struct vca_ops *ops;
	void *arg;
	TAILQ_HEAD(, vca_tty) ttys;
	unsigned nsess;
	bool paused;
	struct event *ev_check;
	unsigned busy;			/* inside a callback that notifies */
	bool drop_asked;		/* vca_drop_all() while busy */
	unsigned drops;			/* link drops so far */
	uint8_t buf[CONSOLE_OUTPUT_MAX];
};

int
vca_tty_open(const char *path, struct termios *saved, char *err,
    size_t errlen)
{
	const char *num = path + strlen("/dev/pts/");
	struct termios t;
	struct stat st;
	int fd, e;

	/* The path is not echoed: a guest may have written it. */
	if (strncmp(path, "/dev/pts/", strlen("/dev/pts/")) != 0 ||
	    num[0] == '\0' || strlen(num) > 9 ||
	    strspn(num, "0123456789") != strlen(num)) {
		snprintf(err, errlen, "the console's pty path is not "
		    "/dev/pts/N");
		return -EINVAL;
	}
	if ((fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC |
	    O_NOFOLLOW)) == -1) {
		e = errno;
		snprintf(err, errlen, "cannot open the console's pty %s: %s",
		    path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) == -1 || !S_ISCHR(st.st_mode) ||
	    major(st.st_rdev) < VCA_PTS_MAJOR_MIN ||
	    major(st.st_rdev) > VCA_PTS_MAJOR_MAX ||
	    tcgetattr(fd, saved) == -1) {
		snprintf(err, errlen, "%s is not a pty", path);
		close(fd);
		return -ENOTTY;
	}
	t = *saved;
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSANOW, &t) == -1) {
		e = errno;
		snprintf(err, errlen, "cannot make %s raw: %s", path,
		    strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

static void
vca_notify(struct vca *r, const char *method, const char *uuid,
    const char *id, const char *key, json_t *value)
{
	json_t *p = json_pack("{s:s, s:s, s:o}", "uuid", uuid, "session", id,
	    key, value);

	if (p != NULL)
		r->ops->notify(r->arg, method, p);
}

static void
vca_sess_free(struct vca_sess *s)
{
	struct vca_tty *t = s->tty;

	TAILQ_REMOVE(&t->sessions, s, entry);
	t->nsess--;
	t->r->nsess--;
	free(s);
}

/* The tty and its sessions go, without a word to hvd. */
static void
vca_tty_free(struct vca_tty *t)
{
	struct vca_sess *s;

	while ((s = TAILQ_FIRST(&t->sessions)) != NULL)
		vca_sess_free(s);
	TAILQ_REMOVE(&t->r->ttys, t, entry);
	if (t->ev_read)
		event_free(t->ev_read);
	if (t->ev_write)
		event_free(t->ev_write);
	if (t->fd != -1) {
		/* Left as found; a hung-up pty refuses, which is fine. */
		(void)tcsetattr(t->fd, TCSANOW, &t->saved);
		close(t->fd);
	}
	free(t->in);
	free(t);
}

/* The console ended: each session hears why, then it goes. */
static void
vca_tty_end(struct vca_tty *t, const char *reason)
{
	struct vca_sess *s;

	log_info("vm %s: console closed (%u sessions): %s", t->uuid, t->nsess,
	    reason);
	TAILQ_FOREACH(s, &t->sessions, entry)
		vca_notify(t->r, "vm.console_closed", t->uuid, s->id, "reason",
		    json_string(reason));
	vca_tty_free(t);
}

static void
vca_drop_now(struct vca *r)
{
	struct vca_tty *t;

	r->drop_asked = false;
	r->drops++;
	if (r->nsess > 0)
		log_info("vm: %u console sessions ended with the link",
		    r->nsess);
	while ((t = TAILQ_FIRST(&r->ttys)) != NULL)
		vca_tty_free(t);
	r->paused = false;
	if (r->ev_check)
		event_del(r->ev_check);
}

/* Leaves a callback that may have notified: a drop asked meanwhile now. */
static void
vca_leave(struct vca *r)
{
	if (--r->busy == 0 && r->drop_asked)
		vca_drop_now(r);
}

static void
vca_pause(struct vca *r)
{
	struct vca_tty *t;

	if (r->paused)
		return;
	r->paused = true;
	log_debug("vm: console output paused: the link holds %zu bytes",
	    r->ops->backlog(r->arg));
	TAILQ_FOREACH(t, &r->ttys, entry)
		event_del(t->ev_read);
}

static void
vca_resume(struct vca *r)
{
	struct vca_tty *t;

	if (!r->paused || r->ops->backlog(r->arg) > VCA_BACKLOG_LOW)
		return;
	r->paused = false;
	log_debug("vm: console output resumed");
	TAILQ_FOREACH(t, &r->ttys, entry)
		event_add(t->ev_read, NULL);
}

void
vca_drained(struct vca *r)
{
	if (r != NULL)
		vca_resume(r);
}

/* Why a console that hit end of file or an error has ended. */
static void
vca_why(struct vca_tty *t, ssize_t n, int e, char *why, size_t len)
{
	if (!t->r->ops->alive(t->r->arg, t->uuid, t->domid))
		snprintf(why, len, "the domain is gone");
	else if (n == 0)
		snprintf(why, len, "the console's pty closed");
	else if (e == EIO)
		snprintf(why, len, "the console's pty hung up");
	else
		snprintf(why, len, "reading the console failed: %s",
		    strerror(e));
}

static void
vca_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vca_tty *t = arg;
	struct vca *r = t->r;
	struct vca_sess *s;
	char why[128];
	char *data;
	ssize_t n;

	(void)what;
	/* Backpressure: what the link cannot take stays in the pty. */
	if (r->ops->backlog(r->arg) > VCA_BACKLOG_HIGH) {
		vca_pause(r);
		return;
	}
	n = read(fd, r->buf, sizeof(r->buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	r->busy++;
	if (n <= 0) {
		vca_why(t, n, errno, why, sizeof(why));
		vca_tty_end(t, why);
	} else if ((data = console_b64_encode(r->buf, (size_t)n)) != NULL) {
		TAILQ_FOREACH(s, &t->sessions, entry)
			vca_notify(r, "vm.console_output", t->uuid, s->id, "data",
			    json_string(data));
		free(data);
	}
	vca_leave(r);
}

static void
vca_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vca_tty *t = arg;
	ssize_t w;

	(void)what;
	if ((w = write(fd, t->in, t->inlen)) < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		/* The read side sees the same end and reports it. */
		log_debug("vm %s: console input dropped: %s", t->uuid,
		    strerror(errno));
		w = (ssize_t)t->inlen;
	}
	memmove(t->in, t->in + w, t->inlen - (size_t)w);
	t->inlen -= (size_t)w;
	if (t->inlen == 0)
		event_del(t->ev_write);
}

static void
vca_check_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vca_check(arg);
}

void
vca_check(struct vca *r)
{
	struct vca_tty *t, *next;

	r->busy++;
	for (t = TAILQ_FIRST(&r->ttys); t != NULL; t = next) {
		next = TAILQ_NEXT(t, entry);
		if (!r->ops->alive(r->arg, t->uuid, t->domid))
			vca_tty_end(t, "the domain is gone");
		/* A drop asked by a notify: the rest goes with it. */
		if (r->drop_asked)
			break;
	}
	vca_resume(r);
	if (TAILQ_EMPTY(&r->ttys))
		event_del(r->ev_check);
	vca_leave(r);
}

struct vca *
vca_new(struct event_base *base, const struct vca_ops *ops, void *arg)
{
	struct vca *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->base = base;
	r->ops = ops;
	r->arg = arg;
	TAILQ_INIT(&r->ttys);
	if ((r->ev_check = event_new(base, -1, EV_PERSIST, vca_check_cb,
	    r)) == NULL) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

void
vca_free(struct vca *r)
{
	if (r == NULL)
		return;
	vca_drop_now(r);
	event_free(r->ev_check);
	free(r);
}

void
vca_drop_all(struct vca *r)
{
	if (r == NULL)
		return;
	if (r->busy > 0)
		r->drop_asked = true;
	else
		vca_drop_now(r);
}

unsigned
vca_sessions(const struct vca *r)
{
	return r->nsess;
}

bool
vca_paused(const struct vca *r)
{
	return r->paused;
}

static struct vca_sess *
vca_find(struct vca *r, const char *uuid, const char *id)
{
	struct vca_tty *t;
	struct vca_sess *s;

	TAILQ_FOREACH(t, &r->ttys, entry)
		TAILQ_FOREACH(s, &t->sessions, entry)
			if (strcmp(s->id, id) == 0 &&
			    (uuid == NULL || strcmp(t->uuid, uuid) == 0))
				return s;
	return NULL;
}

/* UUID's open console, or a new one; NULL with err set. */
static struct vca_tty *
vca_tty_get(struct vca *r, const char *uuid, char *err, size_t errlen)
{
	struct timeval tv = { VCA_CHECK_MS / 1000, (VCA_CHECK_MS % 1000) *
	    1000 };
	char path[64];
	unsigned drops = r->drops;
	struct vca_tty *t;
	uint32_t domid = 0;

	TAILQ_FOREACH(t, &r->ttys, entry)
		if (strcmp(t->uuid, uuid) == 0)
			break;
	/* Attached to a domain that has gone: its sessions hear so first. */
	if (t != NULL && !r->ops->alive(r->arg, t->uuid, t->domid)) {
		r->busy++;
		vca_tty_end(t, "the domain is gone");
		vca_leave(r);
		t = NULL;
		if (r->drops != drops) {
			snprintf(err, errlen, "the link to hvd ended");
			return NULL;
		}
	}
	if (t != NULL)
		return t;
	if (r->ops->tty(r->arg, uuid, path, sizeof(path), &domid, err,
	    errlen) < 0)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->r = r;
	t->domid = domid;
	snprintf(t->uuid, sizeof(t->uuid), "%s", uuid);
	TAILQ_INIT(&t->sessions);
	TAILQ_INSERT_TAIL(&r->ttys, t, entry);
	if ((t->fd = vca_tty_open(path, &t->saved, err, errlen)) < 0) {
		t->fd = -1;
		vca_tty_free(t);
		return NULL;
	}
	t->ev_read = event_new(r->base, t->fd, EV_READ | EV_PERSIST,
	    vca_read_cb, t);
	t->ev_write = event_new(r->base, t->fd, EV_WRITE | EV_PERSIST,
	    vca_write_cb, t);
	if (t->ev_read == NULL || t->ev_write == NULL) {
		snprintf(err, errlen, "out of memory");
		vca_tty_free(t);
		return NULL;
	}
	if (!r->paused)
		event_add(t->ev_read, NULL);
	event_add(r->ev_check, &tv);
	log_info("vm %s: console %s (domain %u) opened", uuid, path, domid);
	return t;
}

json_t *
vca_attach(struct vca *r, const json_t *params, char *err, size_t errlen)
{
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *id = json_string_value(json_object_get(params, "session"));
	struct vca_sess *s;
	struct vca_tty *t;

	if (vca_find(r, NULL, id) != NULL) {
		snprintf(err, errlen, "console session %.8s... is attached "
		    "already", id);
		return NULL;
	}
	if (r->nsess >= VCA_SESSIONS_MAX) {
		snprintf(err, errlen, "hv-agent has %d console sessions "
		    "attached, the most it takes", VCA_SESSIONS_MAX);
		return NULL;
	}
	if ((t = vca_tty_get(r, uuid, err, errlen)) == NULL)
		return NULL;
	if (t->nsess >= CONSOLE_PER_VM_MAX) {
		snprintf(err, errlen, "%s has %d console sessions attached, the "
		    "most one VM takes", uuid, CONSOLE_PER_VM_MAX);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		if (t->nsess == 0)
			vca_tty_free(t);
		return NULL;
	}
	s->tty = t;
	snprintf(s->id, sizeof(s->id), "%s", id);
	TAILQ_INSERT_TAIL(&t->sessions, s, entry);
	t->nsess++;
	r->nsess++;
	log_info("vm %s: console session %.8s... attached (%u on it)", uuid, id,
	    t->nsess);
	return json_pack("{s:b}", "accepted", 1);
}

json_t *
vca_input(struct vca *r, const json_t *params, char *err, size_t errlen)
{
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *id = json_string_value(json_object_get(params, "session"));
	const char *b64 = json_string_value(json_object_get(params, "data"));
	uint8_t data[CONSOLE_INPUT_MAX];
	struct vca_sess *s;
	struct vca_tty *t;
	size_t n = 0;
	ssize_t w = 0;

	if ((s = vca_find(r, uuid, id)) == NULL) {
		snprintf(err, errlen, "no console session %.8s... of %s here",
		    id, uuid);
		return NULL;
	}
	t = s->tty;
	/* The schema checked it; decoding cannot fail. */
	if (console_b64_decode(b64, strlen(b64), data, sizeof(data), &n) < 0) {
		snprintf(err, errlen, "params.data: not base64");
		return NULL;
	}
	if (t->inlen + n > VCA_INPUT_PENDING_MAX) {
		snprintf(err, errlen, "the console of %s has not taken the last "
		    "%zu bytes of input yet", uuid, t->inlen);
		return NULL;
	}
	if (t->inlen == 0 && (w = write(t->fd, data, n)) < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(err, errlen, "writing to the console of %s "
			    "failed: %s", uuid, strerror(errno));
			return NULL;
		}
		w = 0;
	}
	if ((size_t)w < n) {
		if (t->in == NULL &&
		    (t->in = malloc(VCA_INPUT_PENDING_MAX)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		memcpy(t->in + t->inlen, data + w, n - (size_t)w);
		t->inlen += n - (size_t)w;
		event_add(t->ev_write, NULL);
	}
	return json_pack("{s:b}", "accepted", 1);
}

json_t *
vca_detach(struct vca *r, const json_t *params, char *err, size_t errlen)
{
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *id = json_string_value(json_object_get(params, "session"));
	struct vca_sess *s;
	struct vca_tty *t;

	if ((s = vca_find(r, uuid, id)) == NULL) {
		snprintf(err, errlen, "no console session %.8s... of %s here",
		    id, uuid);
		return NULL;
	}
	t = s->tty;
	vca_sess_free(s);
	log_info("vm %s: console session %.8s... detached (%u left on it)",
	    uuid, id, t->nsess);
	if (t->nsess == 0) {
		vca_tty_free(t);
		if (TAILQ_EMPTY(&r->ttys))
			event_del(r->ev_check);
	}
	return json_pack("{s:b}", "accepted", 1);
}
