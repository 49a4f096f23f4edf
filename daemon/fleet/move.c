/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Moving a running VM to another host: the rules every move obeys, for
 * the REST route and for a drain alike.  The target satisfies the VM's
 * own constraints, as at create, minus its current host; a VM pinned to
 * its host does not move; one move of a VM at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

int
vm_move(struct hvd *hvd, const struct vm_row *v, const char *to,
    const char *actor, migrate_done_cb *done, void *done_arg,
    struct vm_move *out, char *err, size_t errlen)
{
	struct vm_spec *s = NULL;
	struct host_row src, want;
	struct fleet_host *fh;
	int r;

	memset(out, 0, sizeof(*out));
	if (strcmp(v->state, "running") != 0) {
		snprintf(err, errlen, "VM %s is not running (state %s); only a "
		    "running VM migrates", v->name, v->state);
		return -EBUSY;
	}
	if (migrate_active(v->uuid)) {
		snprintf(err, errlen, "a migration of VM %s is already in "
		    "progress", v->name);
		return -EALREADY;
	}
	if (v->host_id == 0 || db_host_by_id(hvd->db, v->host_id, &src) < 0 ||
	    (fh = fleet_by_id(v->host_id)) == NULL || fleet_session(fh) == NULL) {
		snprintf(err, errlen, "VM %s's host %s has no agent session",
		    v->name, v->host[0] ? v->host : "-");
		return -ENOTCONN;
	}
	if (to[0] && db_host_get(hvd->db, to, &want) < 0) {
		snprintf(err, errlen, "to: no host '%s'", to);
		return -ENOENT;
	}
	if (to[0] && want.id == src.id) {
		snprintf(err, errlen, "to: VM %s already runs on %s", v->name, to);
		return -EINVAL;
	}
	if ((s = malloc(sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (vm_spec_decode(v->spec, strlen(v->spec), s, err, errlen) < 0) {
		/* err holds the decoder's words; they follow the VM's name. */
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "VM %s: stored spec unreadable: %s", v->name,
		    why);
		r = -EIO;
		goto out;
	}
	if (s->place_host[0] && (to[0] ? strcmp(s->place_host, to) != 0 :
	    strcmp(s->place_host, src.name) == 0)) {
		snprintf(err, errlen, "VM %s is pinned to host %s (placement.host); "
		    "%s", v->name, s->place_host, to[0] ?
		    "the target does not satisfy it" : "no other host satisfies it");
		r = -EPERM;
		goto out;
	}
	if (to[0])
		snprintf(s->place_host, sizeof(s->place_host), "%s", to);
	if ((r = place_pick(hvd, s, src.id, &out->target, err, errlen)) < 0) {
		size_t used = strlen(err);

		if (r == -ENOSPC) {
			/* "to: " first when the operator named the target. */
			if (to[0] && used + 4 < errlen) {
				memmove(err + 4, err, used + 1);
				memcpy(err, "to: ", 4);
				used += 4;
			}
			snprintf(err + used, errlen - used, " (VM %s stays on %s)",
			    v->name, src.name);
		}
		goto out;
	}
	out->source = src;
	out->op = migrate_start(hvd, v, &src, &out->target, actor, done,
	    done_arg, err, errlen);
	r = out->op != 0 ? 0 : -ECANCELED;
out:
	free(s);
	return r;
}
