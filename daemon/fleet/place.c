/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Where a VM goes: every host's capacity, from its telemetry, the VMs
 * placed on it and the migrations on their way to it, handed to the
 * scheduler (wire/sched.c).  Create, migrate and drain all place through
 * here, so one rule decides which hosts are candidates: a named host that
 * is not retired, and not the one a VM leaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

/* One host's capacity: Xen's free memory less the VMs placed here that
 * Xen does not see yet, its CPUs less every placed vCPU. */
static void
place_host_capacity(const struct host_row *h, const struct vm_row *vms,
    size_t nv, const struct vm_spec *s, struct sched_host *out)
{
	struct fleet_host *fh = fleet_by_id(h->id);
	/* The last telemetry sample, where the agent reports Xen. */
	json_t *live = fh ? fleet_telemetry_json(fh) : NULL;
	json_t *xen = json_object_get(json_object_get(live, "latest"), "xen");
	uint64_t pending = 0, placed_vcpus = 0, coming_mib;
	unsigned coming_vcpus;

	out->name = h->name;
	out->up = fh && fleet_is_up(fh);
	out->has_xen = json_is_object(xen);
	out->draining = h->draining;
	if (out->has_xen) {
		out->free_mib = (uint64_t)json_integer_value(json_object_get(xen,
		    "free_memory_bytes")) >> 20;
		out->free_vcpus = (unsigned)json_integer_value(json_object_get(xen,
		    "nr_cpus"));
	}
	json_decref(live);
	for (size_t k = 0; k < nv; k++) {
		if (vms[k].host_id != h->id ||
		    strcmp(vms[k].desired, "running") != 0)
			continue;
		placed_vcpus += vms[k].vcpus;
		if (strcmp(vms[k].state, "running") != 0)
			pending += vms[k].memory_mib;
		if (s->anti_affinity[0] &&
		    strcmp(vms[k].anti_affinity, s->anti_affinity) == 0)
			out->holds_group = true;
	}
	/* A VM on its way here counts from the start of its migration. */
	migrate_reserved(h->id, &coming_mib, &coming_vcpus);
	pending += coming_mib;
	placed_vcpus += coming_vcpus;
	out->free_mib = out->free_mib > pending ? out->free_mib - pending : 0;
	out->free_vcpus = out->free_vcpus > placed_vcpus ?
	    out->free_vcpus - (unsigned)placed_vcpus : 0;
}

int
place_pick(struct hvd *hvd, const struct vm_spec *s, int64_t leaving_id,
    struct host_row *out, char *err, size_t errlen)
{
	struct host_row *rows = NULL, **cand_row = NULL;
	struct sched_host *cand = NULL;
	struct host_config *cfg = NULL;
	struct vm_row *vms = NULL;
	size_t nh = 0, nv = 0, nc = 0, pick;
	int r;

	err[0] = '\0';
	if ((r = db_host_list(hvd->db, &rows, &nh)) < 0 ||
	    (r = db_vm_list(hvd->db, 0, &vms, &nv)) < 0)
		goto out;
	if ((cand = calloc(nh ? nh : 1, sizeof(*cand))) == NULL ||
	    (cand_row = calloc(nh ? nh : 1, sizeof(*cand_row))) == NULL ||
	    (cfg = calloc(nh ? nh : 1, sizeof(*cfg))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nh; i++) {
		/* Discovered machines (no name yet) run nothing. */
		if (rows[i].name[0] == '\0' || strcmp(rows[i].state, "retired") == 0 ||
		    rows[i].id == leaving_id)
			continue;
		place_host_capacity(&rows[i], vms, nv, s, &cand[nc]);
		/* Labels live in the host's config. */
		if (db_host_config(hvd->db, rows[i].id, &cfg[nc]) == 0)
			cand[nc].labels = cfg[nc].labels;
		cand_row[nc++] = &rows[i];
	}
	if ((r = sched_pick(cand, nc, s, &pick, err, errlen)) == 0)
		*out = *cand_row[pick];
out:
	if (r < 0 && r != -ENOSPC)
		snprintf(err, errlen, "database error while placing VM %s",
		    s->name);
	for (size_t i = 0; cfg != NULL && i < nc; i++)
		host_config_free(&cfg[i]);
	free(cfg);
	free(cand);
	free(cand_row);
	free(vms);
	free(rows);
	return r;
}
