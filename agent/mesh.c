/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's VXLAN mesh: applies the state hvd sends (mesh.apply), keeps
 * it in mesh-file so a restart brings the mesh up before the agent talks
 * to hvd, and reconciles it every mesh-interval seconds.
 *
 * The applier is lib/mesh.c, the same code hvd runs as the anchor.  Its
 * netlink calls are quick and synchronous, which the agent accepts: they
 * run from a timer or a request callback and are bounded by the applier's
 * receive timeout.
 *
 * Invariants: the state kept is always one that parsed; the file is
 * replaced by rename, never written in place.  Must never: touch a device
 * the applier does not own (lib/mesh.c enforces it), or log a failure of
 * the timer more than once while it stays the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "log.h"
#include "mesh.h"

struct agent_mesh {
	char path[256];
	struct mesh_applier *ma;	/* NULL: no netlink, applies fail */
	struct mesh_state *st;		/* NULL: nothing to apply yet */
	struct event *ev;
	char last_err[256];		/* the timer's last failure, logged */
};

static bool
am_changed(const struct mesh_stats *s)
{
	return s->links_added || s->links_changed || s->links_deleted ||
	    s->fdb_added || s->fdb_deleted;
}

static int
am_apply(struct agent_mesh *am, struct mesh_stats *s, char *err,
    size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (am->ma == NULL) {
		snprintf(err, errlen, "mesh: no netlink socket");
		return -ENOTCONN;
	}
	return mesh_apply(am->ma, am->st, s, err, errlen);
}

static void
am_tick(evutil_socket_t fd, short what, void *arg)
{
	struct agent_mesh *am = arg;
	struct mesh_stats s;
	char err[256];

	(void)fd;
	(void)what;
	if (am->st == NULL)
		return;
	if (am_apply(am, &s, err, sizeof(err)) < 0) {
		if (strcmp(err, am->last_err) != 0)
			log_warnx("mesh: reconcile failed: %s", err);
		snprintf(am->last_err, sizeof(am->last_err), "%s", err);
		return;
	}
	if (am->last_err[0])
		log_info("mesh: reconcile succeeds again");
	am->last_err[0] = '\0';
	if (am_changed(&s))
		log_info("mesh: reconcile repaired drift: links +%u ~%u -%u, "
		    "fdb +%u -%u", s.links_added, s.links_changed,
		    s.links_deleted, s.fdb_added, s.fdb_deleted);
}

/* The whole file, or NULL: -ENOENT when there is none. */
static int
am_load(const char *path, struct mesh_state **out)
{
	struct stat sb;
	char *buf = NULL, err[256];
	ssize_t n;
	int fd, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	if (fstat(fd, &sb) == -1) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > (off_t)MESH_JSON_MAX) {
		r = -EFBIG;
		log_warnx("mesh: %s: not a regular file of at most %u bytes",
		    path, MESH_JSON_MAX);
		goto out;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((n = read(fd, buf, (size_t)sb.st_size)) < 0) {
		r = -errno;
		log_warn("mesh: %s", path);
		goto out;
	}
	if ((r = mesh_state_parse(buf, (size_t)n, out, err, sizeof(err))) < 0)
		log_warnx("mesh: %s: %s", path, err);
out:
	free(buf);
	close(fd);
	return r;
}

/* Replaces the file by rename, so a crash leaves the old or the new one. */
static int
am_save(struct agent_mesh *am)
{
	char tmp[300];
	json_t *j;
	char *text;
	size_t len;
	int fd, r = 0;

	if ((j = mesh_state_to_json(am->st)) == NULL)
		return -ENOMEM;
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return -ENOMEM;
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "%s.tmp", am->path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1) {
		r = -errno;
		goto out;
	}
	errno = 0;
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) == -1)
		r = errno ? -errno : -EIO;
	if (close(fd) == -1 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, am->path) == -1)
		r = -errno;
	if (r < 0)
		unlink(tmp);
out:
	if (r < 0)
		log_warnx("mesh: cannot save %s: %s", am->path, strerror(-r));
	free(text);
	return r;
}

struct agent_mesh *
agent_mesh_new(struct event_base *base, const char *path,
    unsigned interval_s)
{
	struct timeval tv = { (time_t)interval_s, 0 };
	struct agent_mesh *am;
	struct mesh_stats s;
	char err[256];
	int r;

	if ((am = calloc(1, sizeof(*am))) == NULL)
		return NULL;
	snprintf(am->path, sizeof(am->path), "%s", path);
	if ((am->ev = event_new(base, -1, EV_PERSIST, am_tick, am)) == NULL) {
		free(am);
		return NULL;
	}
	if (mesh_applier_new(&am->ma, err, sizeof(err)) < 0)
		log_warnx("%s; the mesh cannot be applied", err);
	if ((r = am_load(path, &am->st)) == -ENOENT)
		log_info("mesh: no %s yet; waiting for hvd", path);
	else if (r == 0 && am_apply(am, &s, err, sizeof(err)) < 0)
		log_warnx("mesh: applying %s failed: %s", path, err);
	else if (r == 0)
		log_info("mesh: applied %s: %zu network(s), links +%u ~%u -%u, "
		    "fdb +%u -%u =%u", path, am->st->nnets, s.links_added,
		    s.links_changed, s.links_deleted, s.fdb_added,
		    s.fdb_deleted, s.fdb_unchanged);
	event_add(am->ev, &tv);
	return am;
}

void
agent_mesh_free(struct agent_mesh *am)
{
	if (am == NULL)
		return;
	if (am->ev)
		event_free(am->ev);
	mesh_applier_free(am->ma);
	mesh_state_free(am->st);
	free(am);
}

int
agent_mesh_check(const json_t *params, char *err, size_t errlen)
{
	struct mesh_state *st = NULL;
	int r;

	r = mesh_state_from_json((json_t *)params, &st, err, errlen);
	mesh_state_free(st);
	return r;
}

json_t *
agent_mesh_apply(struct agent_mesh *am, json_t *params, char *err,
    size_t errlen)
{
	struct mesh_state *st = NULL;
	struct mesh_stats s;

	if (am == NULL) {
		snprintf(err, errlen, "this agent has no mesh");
		return NULL;
	}
	if (mesh_state_from_json(params, &st, err, errlen) < 0)
		return NULL;
	mesh_state_free(am->st);
	am->st = st;
	(void)am_save(am);
	am->last_err[0] = '\0';
	if (am_apply(am, &s, err, errlen) < 0) {
		snprintf(am->last_err, sizeof(am->last_err), "%s", err);
		log_warnx("mesh: mesh.apply failed: %s", err);
		return NULL;
	}
	if (am_changed(&s))
		log_info("mesh: applied %zu network(s) from hvd: links +%u ~%u "
		    "-%u, fdb +%u -%u", st->nnets, s.links_added,
		    s.links_changed, s.links_deleted, s.fdb_added,
		    s.fdb_deleted);
	return json_pack("{s:b, s:o}", "applied", 1, "stats",
	    mesh_stats_to_json(&s));
}
