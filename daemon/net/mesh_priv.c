/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The mesh anchor's privileged path (DESIGN section 5): hvd's own VXLAN
 * devices and FDB are programmed by a helper process that holds
 * CAP_NET_ADMIN and nothing else, and that does one thing: it reads a mesh
 * state, checks it with the strict lib/ parser, and runs mesh_apply().
 *
 * mesh_priv_init() forks it before the loop starts, over a socketpair;
 * then hvd drops CAP_NET_ADMIN from its own effective, permitted and
 * inheritable sets (hvd needs it for nothing else: topology reads and
 * SO_BINDTODEVICE need none since Linux 5.7), so no code that parses
 * network input holds it.  Other capabilities are left as they are.
 *
 * Framing, both ways: a u32 length in network order, then that many bytes
 * of JSON, at most MESH_JSON_MAX.  Requests are a mesh state document
 * (lib/mesh.h); replies are {"result": 0 or -errno, "detail": text} in the
 * order of the requests.  The helper exits when its socket closes (hvd
 * exited or shut down) or on any framing error; it is never restarted,
 * since hvd no longer has the capability to give it.
 *
 * Must never: let the helper run anything but mesh_apply(), keep any other
 * capability or descriptor in it, or block hvd's loop on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "net.h"
#include "mesh.h"

struct mp_req {
	mesh_priv_cb cb;
	void *arg;
	struct mp_req *next;
};

static struct bufferevent *mp_bev;
static pid_t mp_pid = -1;
static bool mp_started;			/* init ran with the capability */
static struct mp_req *mp_head, **mp_tail = &mp_head;

static int
mp_caps(struct __user_cap_data_struct d[2], bool set)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(set ? SYS_capset : SYS_capget, &h, d) == 0 ? 0 :
	    -errno;
}

static bool
mp_has_net_admin(void)
{
	struct __user_cap_data_struct d[2];

	return mp_caps(d, false) == 0 &&
	    (d[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &
	    CAP_TO_MASK(CAP_NET_ADMIN));
}

static bool
mp_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
mp_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool
mp_reply(int fd, int result, const char *detail)
{
	json_t *j = json_pack("{s:i, s:s}", "result", result, "detail",
	    detail);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	uint32_t len;
	bool ok;

	json_decref(j);
	if (text == NULL)
		return false;
	len = htonl((uint32_t)strlen(text));
	ok = mp_write_full(fd, &len, 4) && mp_write_full(fd, text,
	    strlen(text));
	free(text);
	return ok;
}

/* Keeps CAP_NET_ADMIN alone in the effective and permitted sets. */
static int
mp_child_caps(void)
{
	struct __user_cap_data_struct d[2];
	int i = CAP_TO_INDEX(CAP_NET_ADMIN);

	memset(d, 0, sizeof(d));
	d[i].effective = d[i].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (mp_caps(d, true) < 0)
		return -errno;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

static void __attribute__((noreturn))
mp_child(int fd, pid_t parent)
{
	struct mesh_applier *ma = NULL;
	char err[512];
	uint8_t *buf = NULL;
	int r;

	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() != parent)
		_exit(0);
	/* Only stdio and the socket survive: no listener, no database. */
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		fd = 3;
	}
	(void)syscall(SYS_close_range, 4U, ~0U, 0U);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if ((r = mp_child_caps()) < 0) {
		log_warnx("mesh helper: cannot drop capabilities: %s",
		    strerror(-r));
		_exit(1);
	}
	if (mesh_applier_new(&ma, err, sizeof(err)) < 0) {
		log_warnx("mesh helper: %s", err);
		_exit(1);
	}
	for (;;) {
		struct mesh_state *st = NULL;
		struct mesh_stats s;
		uint32_t len;
		char *detail;
		json_t *j;

		if (!mp_read_full(fd, &len, 4))
			break;
		len = ntohl(len);
		if (len == 0 || len > MESH_JSON_MAX ||
		    (buf = malloc(len)) == NULL || !mp_read_full(fd, buf, len)) {
			log_warnx("mesh helper: bad request frame; exiting");
			break;
		}
		if ((r = mesh_state_parse((const char *)buf, len, &st, err,
		    sizeof(err))) == 0)
			r = mesh_apply(ma, st, &s, err, sizeof(err));
		free(buf);
		buf = NULL;
		mesh_state_free(st);
		if (r < 0) {
			if (!mp_reply(fd, r, err))
				break;
			continue;
		}
		j = mesh_stats_to_json(&s);
		detail = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!mp_reply(fd, 0, detail ? detail : "{}")) {
			free(detail);
			break;
		}
		free(detail);
	}
	free(buf);
	mesh_applier_free(ma);
	_exit(0);
}

/* Every pending request fails with R (the helper is gone). */
static void
mp_fail_all(int r, const char *why)
{
	struct mp_req *q;

	while ((q = mp_head) != NULL) {
		mp_head = q->next;
		if (mp_head == NULL)
			mp_tail = &mp_head;
		q->cb(q->arg, r, why);
		free(q);
	}
}

static void
mp_gone(const char *why)
{
	int status;

	log_warnx("mesh: the privileged helper is gone (%s); the anchor "
	    "cannot change the kernel until hvd restarts", why);
	if (mp_bev) {
		bufferevent_free(mp_bev);
		mp_bev = NULL;
	}
	if (mp_pid > 0 && waitpid(mp_pid, &status, WNOHANG) == mp_pid)
		mp_pid = -1;
	mp_fail_all(-EPIPE, why);
}

static void
mp_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	(void)arg;
	for (;;) {
		uint32_t len;
		json_t *j, *res, *det;
		struct mp_req *q;
		char *body;

		if (evbuffer_get_length(in) < 4)
			return;
		evbuffer_copyout(in, &len, 4);
		len = ntohl(len);
		if (len == 0 || len > 65536) {
			mp_gone("bad reply frame");
			return;
		}
		if (evbuffer_get_length(in) < 4 + (size_t)len)
			return;
		evbuffer_drain(in, 4);
		if ((body = malloc(len)) == NULL) {
			mp_gone("out of memory");
			return;
		}
		evbuffer_remove(in, body, len);
		j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
		free(body);
		res = json_object_get(j, "result");
		det = json_object_get(j, "detail");
		if ((q = mp_head) == NULL || !json_is_integer(res) ||
		    !json_is_string(det)) {
			json_decref(j);
			mp_gone("malformed or unexpected reply");
			return;
		}
		mp_head = q->next;
		if (mp_head == NULL)
			mp_tail = &mp_head;
		q->cb(q->arg, (int)json_integer_value(res),
		    json_string_value(det));
		free(q);
		json_decref(j);
		/* The callback may have shut everything down. */
		if (mp_bev != bev)
			return;
	}
}

static void
mp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)arg;
	mp_gone(what & BEV_EVENT_EOF ? "it exited" : "socket error");
}

/* Drops CAP_NET_ADMIN from this process for good (ambient too). */
static void
mp_drop_net_admin(void)
{
	struct __user_cap_data_struct d[2];
	int i = CAP_TO_INDEX(CAP_NET_ADMIN), r;
	uint32_t m = CAP_TO_MASK(CAP_NET_ADMIN);

	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_ADMIN, 0, 0);
	if ((r = mp_caps(d, false)) == 0) {
		d[i].effective &= ~m;
		d[i].permitted &= ~m;
		d[i].inheritable &= ~m;
		r = mp_caps(d, true);
	}
	if (r < 0)
		log_warnx("mesh: cannot drop CAP_NET_ADMIN from hvd: %s",
		    strerror(-r));
}

int
mesh_priv_init(struct hvd *hvd)
{
	int sv[2];
	pid_t parent = getpid();

	if (!mp_has_net_admin()) {
		log_info("mesh: hvd lacks CAP_NET_ADMIN; the anchor is "
		    "disabled (hvd programs no VXLAN of its own)");
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	fflush(NULL);
	if ((mp_pid = fork()) == -1) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (mp_pid == 0) {
		close(sv[0]);
		mp_child(sv[1], parent);
	}
	close(sv[1]);
	mp_drop_net_admin();
	evutil_make_socket_nonblocking(sv[0]);
	if ((mp_bev = bufferevent_socket_new(hvd->base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(sv[0]);
		mesh_priv_shutdown();
		return -ENOMEM;
	}
	bufferevent_setcb(mp_bev, mp_read_cb, NULL, mp_event_cb, NULL);
	bufferevent_enable(mp_bev, EV_READ | EV_WRITE);
	mp_started = true;
	log_info("mesh: privileged helper %d holds CAP_NET_ADMIN; hvd "
	    "dropped it", (int)mp_pid);
	return 0;
}

void
mesh_priv_shutdown(void)
{
	int status;

	if (mp_bev) {
		bufferevent_free(mp_bev);
		mp_bev = NULL;
	}
	mp_fail_all(-ECANCELED, "hvd is shutting down");
	/* The closed socket ends the helper; give it a moment, then kill. */
	for (int i = 0; mp_pid > 0 && i < 100; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waitpid(mp_pid, &status, WNOHANG) == mp_pid)
			mp_pid = -1;
		else
			nanosleep(&ts, NULL);
	}
	if (mp_pid > 0) {
		kill(mp_pid, SIGKILL);
		waitpid(mp_pid, &status, 0);
		mp_pid = -1;
	}
	mp_started = false;
}

int
mesh_priv_apply(const struct mesh_state *st, mesh_priv_cb cb, void *arg)
{
	struct mp_req *q;
	json_t *j;
	char *text, *frame = NULL;
	uint32_t len;
	size_t n;
	int r = 0;

	if (!mp_started)
		return -EPERM;
	if (mp_bev == NULL)
		return -EPIPE;
	if ((j = mesh_state_to_json(st)) == NULL)
		return -ENOMEM;
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL || (q = calloc(1, sizeof(*q))) == NULL) {
		free(text);
		return -ENOMEM;
	}
	if (strlen(text) > MESH_JSON_MAX) {
		r = -EMSGSIZE;
		goto out;
	}
	/* One write: a frame is never half queued. */
	n = strlen(text);
	if ((frame = malloc(4 + n)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	len = htonl((uint32_t)n);
	memcpy(frame, &len, 4);
	memcpy(frame + 4, text, n);
	if (bufferevent_write(mp_bev, frame, 4 + n) != 0) {
		r = -EIO;
		goto out;
	}
	q->cb = cb;
	q->arg = arg;
	*mp_tail = q;
	mp_tail = &q->next;
	q = NULL;
out:
	free(q);
	free(frame);
	free(text);
	return r;
}
