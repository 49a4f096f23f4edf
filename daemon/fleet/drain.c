/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Host drain (hvctl host drain): the host is marked draining in the
 * database, so the scheduler places nothing there across its reboot and
 * hvd's restart, and its running VMs migrate away, DRAIN_PARALLEL at a
 * time, each where the scheduler puts it (fleet/move.c's rules).
 *
 * A drain is a list, fixed when it starts, of the VMs the host held; each
 * VM waits, moves, and ends moved or not moved with the reason.  The list
 * is what hvctl follows and what the operator is left with: the VMs that
 * could not move, and why.  Running the drain again (after fixing what
 * stopped a VM) takes what is still there.  Undrain clears the mark and
 * starts no further move; moves under way finish.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "fleet.h"

enum drain_vm_state { DV_WAITING, DV_MOVING, DV_MOVED, DV_NOT_MOVED };
static const char *const drain_vm_states[] = { "waiting", "moving", "moved",
	"not moved" };

struct drain;
struct drain_vm {
	struct drain *drain;
	char name[64], uuid[37];
	enum drain_vm_state state;
	uint64_t op;			/* its migrate operation, 0 before */
	char target[API_NAME_MAX + 1];
	char reason[512];		/* why not moved */
};

struct drain {
	TAILQ_ENTRY(drain) entry;
	struct hvd *hvd;
	int64_t host_id;
	char host[API_NAME_MAX + 1], actor[64];
	bool stopped;			/* undrained: nothing more starts */
	int64_t started, ended;		/* wall seconds; ended 0: under way */
	size_t moving, n;
	struct drain_vm *vms;
};

static TAILQ_HEAD(drain_list, drain) drains = TAILQ_HEAD_INITIALIZER(drains);

static struct drain *
drain_find(int64_t host_id)
{
	struct drain *d;

	TAILQ_FOREACH(d, &drains, entry)
		if (d->host_id == host_id)
			return d;
	return NULL;
}

static void
drain_free(struct drain *d)
{
	if (d == NULL)
		return;
	free(d->vms);
	free(d);
}

static void
drain_not_moved(struct drain_vm *dv, const char *why)
{
	dv->state = DV_NOT_MOVED;
	snprintf(dv->reason, sizeof(dv->reason), "%s", why);
}

/* Every VM has ended: say how it went, once, in the log and the events. */
static void
drain_finish(struct drain *d)
{
	size_t moved = 0, left = 0;
	char detail[160];

	for (size_t i = 0; i < d->n; i++)
		d->vms[i].state == DV_MOVED ? moved++ : left++;
	d->ended = hvd_now_wall();
	snprintf(detail, sizeof(detail), "%zu VM(s) moved, %zu not moved%s",
	    moved, left, d->stopped ? " (undrained)" : "");
	log_info("host %s: drain ended: %s", d->host, detail);
	for (size_t i = 0; i < d->n; i++)
		if (d->vms[i].state == DV_NOT_MOVED)
			log_warnx("host %s: drain: vm %s not moved: %s", d->host,
			    d->vms[i].name, d->vms[i].reason);
	db_event_record(d->hvd->db, "host.drain-ended", d->host, d->actor,
	    detail, d->ended);
}

static void drain_step(struct drain *d);

/* A move ended (fleet/migrate.c's migrate_done_cb). */
static void
drain_moved(void *arg, bool moved, const char *why)
{
	struct drain_vm *dv = arg;
	struct drain *d = dv->drain;

	if (moved)
		dv->state = DV_MOVED;
	else
		drain_not_moved(dv, why ? why : "the migration failed");
	d->moving--;
	drain_step(d);
}

/* Starts dv's move, or ends it with the reason it cannot. */
static void
drain_start_vm(struct drain *d, struct drain_vm *dv)
{
	struct vm_row *v = malloc(sizeof(*v));
	struct vm_move mv;
	char err[512];
	int r;

	if (v == NULL) {
		drain_not_moved(dv, "out of memory");
		return;
	}
	if ((r = db_vm_get(d->hvd->db, dv->uuid, v)) < 0) {
		drain_not_moved(dv, r == -ENOENT ? "it was destroyed" :
		    "database error");
	} else if (v->host_id != d->host_id) {
		/* Moved meanwhile, by someone else. */
		dv->state = DV_MOVED;
		snprintf(dv->target, sizeof(dv->target), "%s", v->host);
	} else if (vm_move(d->hvd, v, "", d->actor, drain_moved, dv, &mv, err,
	    sizeof(err)) < 0) {
		drain_not_moved(dv, err);
	} else {
		dv->state = DV_MOVING;
		dv->op = mv.op;
		snprintf(dv->target, sizeof(dv->target), "%s", mv.target.name);
		d->moving++;
		log_info("host %s: drain: vm %s moving to %s (operation %llu)",
		    d->host, dv->name, dv->target, (unsigned long long)dv->op);
	}
	free(v);
}

/* Keeps DRAIN_PARALLEL moves going while VMs wait; ends the drain when
 * nothing is left to do. */
static void
drain_step(struct drain *d)
{
	for (size_t i = 0; i < d->n; i++) {
		struct drain_vm *dv = &d->vms[i];

		if (dv->state != DV_WAITING)
			continue;
		if (d->stopped)
			drain_not_moved(dv, "the host was undrained first");
		else if (d->moving < DRAIN_PARALLEL)
			drain_start_vm(d, dv);
	}
	if (d->ended != 0 || d->moving > 0)
		return;
	for (size_t i = 0; i < d->n; i++)
		if (d->vms[i].state == DV_WAITING)
			return;
	drain_finish(d);
}

int
drain_start(struct hvd *hvd, const struct host_row *h, const char *actor,
    char *err, size_t errlen)
{
	struct drain *d = drain_find(h->id);
	struct vm_row *vms = NULL;
	size_t nv = 0;
	int r;

	if ((r = db_host_set_draining(hvd->db, h, true, actor,
	    hvd_now_wall())) < 0) {
		snprintf(err, errlen, "database error marking host %s draining",
		    h->name);
		return r;
	}
	if (d != NULL && d->ended == 0) {
		d->stopped = false;	/* drained again before it ended */
		return 0;
	}
	if ((r = db_vm_list(hvd->db, h->id, &vms, &nv)) < 0) {
		snprintf(err, errlen, "database error listing host %s's VMs",
		    h->name);
		return r;
	}
	if (d != NULL) {
		TAILQ_REMOVE(&drains, d, entry);
		drain_free(d);
	}
	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->vms = calloc(nv ? nv : 1, sizeof(*d->vms))) == NULL) {
		free(d);
		free(vms);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->hvd = hvd;
	d->host_id = h->id;
	snprintf(d->host, sizeof(d->host), "%s", h->name);
	snprintf(d->actor, sizeof(d->actor), "%s", actor);
	d->started = hvd_now_wall();
	for (size_t i = 0; i < nv; i++) {
		struct drain_vm *dv = &d->vms[d->n];

		/* A VM being destroyed is on its way out already. */
		if (strcmp(vms[i].desired, "destroyed") == 0)
			continue;
		dv->drain = d;
		snprintf(dv->name, sizeof(dv->name), "%s", vms[i].name);
		snprintf(dv->uuid, sizeof(dv->uuid), "%s", vms[i].uuid);
		d->n++;
	}
	free(vms);
	TAILQ_INSERT_TAIL(&drains, d, entry);
	log_info("host %s: draining (by %s): %zu VM(s) to move, %d at a time",
	    d->host, actor, d->n, DRAIN_PARALLEL);
	drain_step(d);
	return 0;
}

int
drain_stop(struct hvd *hvd, const struct host_row *h, const char *actor)
{
	struct drain *d = drain_find(h->id);
	int r;

	if ((r = db_host_set_draining(hvd->db, h, false, actor,
	    hvd_now_wall())) < 0)
		return r;
	if (r > 0)
		log_info("host %s: undrained (by %s); the scheduler may place VMs "
		    "there again", h->name, actor);
	if (d != NULL && d->ended == 0) {
		d->stopped = true;
		drain_step(d);
	}
	return 0;
}

json_t *
drain_json(int64_t host_id)
{
	const struct drain *d = drain_find(host_id);
	size_t counts[4] = { 0 };
	json_t *vms;

	if (d == NULL)
		return NULL;
	vms = json_array();
	for (size_t i = 0; i < d->n; i++) {
		const struct drain_vm *dv = &d->vms[i];
		json_t *j = json_pack("{s:s, s:s}", "name", dv->name, "state",
		    drain_vm_states[dv->state]);

		counts[dv->state]++;
		if (dv->target[0])
			json_object_set_new(j, "target", json_string(dv->target));
		if (dv->op != 0)
			json_object_set_new(j, "operation",
			    json_integer((json_int_t)dv->op));
		if (dv->state == DV_NOT_MOVED)
			json_object_set_new(j, "reason", json_string(dv->reason));
		json_array_append_new(vms, j);
	}
	return json_pack("{s:s, s:s, s:b, s:I, s:o, s:o, s:I, s:I, s:o}",
	    "host", d->host, "state", d->ended ? "ended" : "running", "undrained",
	    d->stopped, "parallel", (json_int_t)DRAIN_PARALLEL, "started",
	    api_time_json(d->started), "ended", api_time_json(d->ended), "moved",
	    (json_int_t)counts[DV_MOVED], "not_moved",
	    (json_int_t)counts[DV_NOT_MOVED], "vms", vms);
}

/* Before migrate_shutdown(): no move reports to a freed drain after. */
void
drain_shutdown(void)
{
	struct drain *d;

	while ((d = TAILQ_FIRST(&drains)) != NULL) {
		TAILQ_REMOVE(&drains, d, entry);
		drain_free(d);
	}
}
