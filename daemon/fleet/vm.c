/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * VM lifecycle in hvd: the commands hvd sends a VM's host (vm.create,
 * vm.shutdown, vm.destroy, vm.reboot), the operations an operator waits
 * on, the agent's vm.state reports, and reconciliation when an agent
 * (re)connects.  A reboot changes nothing desired: its operation ends
 * with the next vm.state, done when that is running.
 *
 * The inventory is the desired state, written before any command goes out;
 * the agent's reports only move `state`.  After an hvd or agent restart a
 * VM the agent still runs is adopted (never created twice) and one it does
 * not run is reported missing (never silently restarted).  Every change of
 * where a VM's NICs live re-pushes the mesh, so the FDB follows the VM.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"

#define VM_OPS_MAX		256	/* remembered operations (a ring) */
#define VM_SHUTDOWN_TIMEOUT_S	30

/* What each action sends, and what its operation is called. */
static const struct vm_action_def {
	const char *name;		/* in the operation's JSON */
	const char *method;		/* the agent's */
} vm_actions[] = {
	[VM_ACTION_CREATE] = { "create", "vm.create" },
	[VM_ACTION_STOP] = { "stop", "vm.shutdown" },
	[VM_ACTION_DESTROY] = { "destroy", "vm.destroy" },
	[VM_ACTION_REBOOT] = { "reboot", "vm.reboot" },
	/* Driven by migrate.c, never by vm_start_action(). */
	[VM_ACTION_MIGRATE] = { "migrate", "vm.migrate_in" },
};
#define VM_ACTION_BIT(a)	(1u << (a))

struct vm_op {
	uint64_t id;			/* 0: free slot */
	char vm[64], uuid[37];
	enum vm_action action;
	char state[12];			/* pending, done, failed */
	char message[256];
	int64_t started, ended;
	/* migrate only: as the agents report (vm_op_migrate_update). */
	char phase[12], mode[12];
	uint64_t bytes;
	unsigned round;			/* 0: none reported */
	char source[API_NAME_MAX + 1], target[API_NAME_MAX + 1];
};

static struct vm_op vm_ops[VM_OPS_MAX];
/*
 * Ids come from blocks reserved in SQLite (schema/010), so one that hvctl
 * follows across an hvd restart is unknown then (404), never a newer
 * operation.  vm_op_first is the oldest id of this hvd's life.
 */
#define VM_OP_BLOCK	4096
static struct db *vm_op_db;
static uint64_t vm_op_first = 1, vm_op_next = 1, vm_op_limit = 1;

int
vm_ops_init(struct hvd *hvd)
{
	uint64_t first;
	int r;

	vm_op_db = hvd->db;
	if ((r = db_counter_reserve(vm_op_db, "operation", VM_OP_BLOCK,
	    &first)) < 0)
		return r;
	vm_op_first = vm_op_next = first;
	vm_op_limit = first + VM_OP_BLOCK;
	return 0;
}

static struct vm_op *
vm_op_new(const char *vm, const char *uuid, enum vm_action action)
{
	struct vm_op *op;
	uint64_t first;

	if (vm_op_next >= vm_op_limit) {
		if (vm_op_db != NULL && db_counter_reserve(vm_op_db, "operation",
		    VM_OP_BLOCK, &first) == 0 && first >= vm_op_next)
			vm_op_next = first;
		else
			log_warnx("vm: cannot reserve operation ids; after a "
			    "restart, ids from %llu may name other operations",
			    (unsigned long long)vm_op_next);
		vm_op_limit = vm_op_next + VM_OP_BLOCK;
	}
	op = &vm_ops[vm_op_next % VM_OPS_MAX];
	memset(op, 0, sizeof(*op));
	op->id = vm_op_next++;
	snprintf(op->vm, sizeof(op->vm), "%s", vm);
	snprintf(op->uuid, sizeof(op->uuid), "%s", uuid);
	op->action = action;
	snprintf(op->state, sizeof(op->state), "pending");
	op->started = hvd_now_wall();
	return op;
}

static struct vm_op *
vm_op_find(uint64_t id)
{
	struct vm_op *op = &vm_ops[id % VM_OPS_MAX];

	/* 0 marks a free slot: it names no operation. */
	return id != 0 && op->id == id ? op : NULL;
}

/* Ends the newest pending operation on uuid whose action is in the mask
 * (VM_ACTION_BIT()s). */
static void
vm_op_end(const char *uuid, unsigned actions, bool ok, const char *msg)
{
	for (uint64_t id = vm_op_next - 1; id >= vm_op_first &&
	    id + VM_OPS_MAX >= vm_op_next; id--) {
		struct vm_op *op = vm_op_find(id);

		if (op == NULL || strcmp(op->uuid, uuid) != 0 ||
		    strcmp(op->state, "pending") != 0 ||
		    !(actions & VM_ACTION_BIT(op->action)))
			continue;
		snprintf(op->state, sizeof(op->state), "%s", ok ? "done" : "failed");
		snprintf(op->message, sizeof(op->message), "%s", msg ? msg : "");
		op->ended = hvd_now_wall();
		return;
	}
}

/* The newest pending operation on uuid of that action: its id, or 0. */
static uint64_t
vm_op_pending(const char *uuid, enum vm_action action)
{
	for (uint64_t id = vm_op_next - 1; id >= vm_op_first &&
	    id + VM_OPS_MAX >= vm_op_next; id--) {
		struct vm_op *op = vm_op_find(id);

		if (op != NULL && op->action == action &&
		    strcmp(op->uuid, uuid) == 0 &&
		    strcmp(op->state, "pending") == 0)
			return id;
	}
	return 0;
}

json_t *
vm_op_json(uint64_t id)
{
	struct vm_op *op = vm_op_find(id);
	json_t *j;

	if (op == NULL)
		return NULL;
	j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o}", "id",
	    (json_int_t)op->id, "vm", op->vm, "action",
	    vm_actions[op->action].name, "state",
	    op->state, "message", op->message, "started",
	    api_time_json(op->started), "ended", api_time_json(op->ended));
	if (j && op->action == VM_ACTION_MIGRATE) {
		json_object_set_new(j, "phase", json_string(op->phase));
		json_object_set_new(j, "bytes", json_integer((json_int_t)op->bytes));
		json_object_set_new(j, "mode", op->mode[0] ? json_string(op->mode) :
		    json_null());
		json_object_set_new(j, "round", op->round > 0 ?
		    json_integer(op->round) : json_null());
		json_object_set_new(j, "source", json_string(op->source));
		json_object_set_new(j, "target", json_string(op->target));
	}
	return j;
}

uint64_t
vm_op_migrate_new(const struct vm_row *v, const char *source,
    const char *target)
{
	struct vm_op *op = vm_op_new(v->name, v->uuid, VM_ACTION_MIGRATE);

	snprintf(op->phase, sizeof(op->phase), "preparing");
	snprintf(op->source, sizeof(op->source), "%s", source);
	snprintf(op->target, sizeof(op->target), "%s", target);
	return op->id;
}

void
vm_op_migrate_update(uint64_t id, const char *phase, int64_t bytes,
    const char *mode, const char *state, const char *message)
{
	struct vm_op *op = vm_op_find(id);

	/* An operation that fell out of the ring is simply not shown. */
	if (op == NULL || op->action != VM_ACTION_MIGRATE)
		return;
	if (phase)
		snprintf(op->phase, sizeof(op->phase), "%s", phase);
	if (bytes >= 0)
		op->bytes = (uint64_t)bytes;
	if (mode)
		snprintf(op->mode, sizeof(op->mode), "%s", mode);
	if (message)
		snprintf(op->message, sizeof(op->message), "%s", message);
	if (state) {
		if (strcmp(op->state, "pending") == 0 && strcmp(state, "pending") != 0)
			op->ended = hvd_now_wall();
		snprintf(op->state, sizeof(op->state), "%s", state);
	}
}

void
vm_op_migrate_round(uint64_t id, unsigned round)
{
	struct vm_op *op = vm_op_find(id);

	if (op != NULL && op->action == VM_ACTION_MIGRATE && round > op->round)
		op->round = round;
}

/* {"url", "sha256"} of an image the agent fetches from the boot port. */
static json_t *
vm_image_ref(struct hvd *hvd, const char *name)
{
	struct image_row im;
	char base[ADDR_STRLEN], url[256];

	/* Agents fetch images from the boot listener. */
	if (name == NULL || name[0] == '\0' || !hvd->conf->boot_http ||
	    db_image_get(hvd->db, name, &im) < 0)
		return NULL;
	addr_boot_url(hvd, base, sizeof(base));
	snprintf(url, sizeof(url), "%s/images/%s", base, im.sha256);
	return json_pack("{s:s, s:s}", "url", url, "sha256", im.sha256);
}

/* The vm.create params (PROTOCOL.md 6.2) for v, from its stored spec. */
json_t *
vm_create_params(struct hvd *hvd, const struct vm_row *v, char *err,
    size_t errlen)
{
	struct vm_nic_row *nics = NULL;
	json_t *spec, *p, *arr, *img;
	const char *k;
	size_t n = 0;

	if ((spec = json_loads(v->spec, 0, NULL)) == NULL) {
		snprintf(err, errlen, "stored spec unreadable");
		return NULL;
	}
	p = json_pack("{s:s, s:s, s:I, s:I, s:s}", "name", v->name, "uuid",
	    v->uuid, "vcpus", (json_int_t)v->vcpus, "memory_mib",
	    (json_int_t)v->memory_mib, "type", v->type);
	for (int i = 0; i < 3; i++) {
		const char *field = i == 0 ? "kernel" : i == 1 ? "initramfs" : "disk";

		k = json_string_value(json_object_get(spec, field));
		if (k == NULL)
			continue;
		if ((img = vm_image_ref(hvd, k)) == NULL) {
			snprintf(err, errlen, "%s: image '%s' is gone from the store",
			    field, k);
			json_decref(p);
			json_decref(spec);
			return NULL;
		}
		json_object_set_new(p, field, img);
	}
	if ((k = json_string_value(json_object_get(spec, "cmdline"))) != NULL)
		json_object_set_new(p, "cmdline", json_string(k));
	json_decref(spec);
	arr = json_array();
	if (db_vm_nics(hvd->db, v->id, &nics, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			char bridge[24];
			json_t *nic;

			snprintf(bridge, sizeof(bridge), "br%u", nics[i].vni);
			nic = json_pack("{s:s, s:s}", "bridge", bridge, "mac",
			    nics[i].mac);
			if (nic != NULL && nics[i].rate_kbps != 0)
				json_object_set_new(nic, "rate_kbps",
				    json_integer(nics[i].rate_kbps));
			json_array_append_new(arr, nic);
		}
		free(nics);
	}
	json_object_set_new(p, "nics", arr);
	return p;
}

struct vm_cmd {
	struct hvd *hvd;
	char uuid[37];
	enum vm_action action;
};

static void
vm_cmd_done(void *arg, json_t *result, json_t *error)
{
	struct vm_cmd *c = arg;
	struct vm_row v;
	char msg[256];

	if (result == NULL) {
		snprintf(msg, sizeof(msg), "the agent refused %s: %s",
		    vm_actions[c->action].name,
		    json_string_value(json_object_get(error, "message")) ?: "?");
		vm_op_end(c->uuid, VM_ACTION_BIT(c->action), false, msg);
		if (db_vm_get(c->hvd->db, c->uuid, &v) == 0 &&
		    c->action == VM_ACTION_CREATE)
			db_vm_set_state(c->hvd->db, &v, "failed", -1, msg, "agent",
			    hvd_now_wall());
	} else if (c->action == VM_ACTION_CREATE &&
	    db_vm_get(c->hvd->db, c->uuid, &v) == 0 &&
	    strcmp(v.state, "pending") == 0) {
		db_vm_set_state(c->hvd->db, &v, "creating", -1, "", "agent",
		    hvd_now_wall());
	}
	free(c);
}

/* Sends method for v to its host; -ENOTCONN when the host has no session. */
static int
vm_send(struct hvd *hvd, const struct vm_row *v, enum vm_action action,
    json_t *params)
{
	struct fleet_host *fh = fleet_by_id(v->host_id);
	struct vm_cmd *c;
	int r;

	if (fh == NULL || fleet_session(fh) == NULL) {
		json_decref(params);
		return -ENOTCONN;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		json_decref(params);
		return -ENOMEM;
	}
	c->hvd = hvd;
	snprintf(c->uuid, sizeof(c->uuid), "%s", v->uuid);
	c->action = action;
	if ((r = fleet_request(fh, vm_actions[action].method, params,
	    vm_cmd_done, c)) < 0)
		free(c);
	return r;
}

uint64_t
vm_start_action(struct hvd *hvd, const struct vm_row *v,
    enum vm_action action, char *err, size_t errlen)
{
	struct vm_op *op;
	uint64_t op_id;
	json_t *params;
	int r;

	switch (action) {
	case VM_ACTION_CREATE:
		if ((params = vm_create_params(hvd, v, err, errlen)) == NULL)
			return 0;
		break;
	case VM_ACTION_STOP:
		params = json_pack("{s:s, s:i}", "uuid", v->uuid, "timeout_s",
		    VM_SHUTDOWN_TIMEOUT_S);
		break;
	case VM_ACTION_DESTROY:
		params = json_pack("{s:s}", "uuid", v->uuid);
		break;
	case VM_ACTION_REBOOT:
		/* Only what runs reboots; one reboot at a time, and never
		 * while a migration decides which copy runs. */
		if (strcmp(v->state, "running") != 0) {
			snprintf(err, errlen, "VM %s is not running (state %s); "
			    "only a running VM can be rebooted", v->name,
			    v->state);
			return 0;
		}
		if (migrate_active(v->uuid)) {
			snprintf(err, errlen, "VM %s is migrating; reboot it "
			    "when the migration has ended", v->name);
			return 0;
		}
		if ((op_id = vm_op_pending(v->uuid, VM_ACTION_REBOOT)) != 0) {
			snprintf(err, errlen, "a reboot of VM %s is already "
			    "under way (operation %llu)", v->name,
			    (unsigned long long)op_id);
			return 0;
		}
		params = json_pack("{s:s}", "uuid", v->uuid);
		break;
	default:
		/* Never guess: an action this file does not know does nothing. */
		snprintf(err, errlen, "unknown VM action %d", (int)action);
		return 0;
	}
	r = vm_send(hvd, v, action, params);
	if (r < 0) {
		snprintf(err, errlen, r == -ENOTCONN ? "host %s has no agent "
		    "session" : "cannot reach host %s", v->host[0] ? v->host : "-");
		return 0;
	}
	op = vm_op_new(v->name, v->uuid, action);
	return op->id;
}

/* vm.state from an agent: the VM's observed state moves; the operation
 * waiting on it ends; the mesh follows. */
void
vm_agent_state(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *state = json_string_value(json_object_get(params, "state"));
	const char *reason = json_string_value(json_object_get(params, "reason"));
	json_t *jd = json_object_get(params, "domid");
	int64_t domid = json_is_integer(jd) ? json_integer_value(jd) : -1;
	const char *db_state;
	struct vm_row v;
	char msg[256];
	bool ok;

	if (uuid == NULL || state == NULL || db_vm_get(hvd->db, uuid, &v) < 0) {
		log_warnx("vm: host %s reports unknown VM %s (%s)", fleet_name(fh),
		    uuid ? uuid : "?", state ? state : "?");
		db_event_record(hvd->db, "vm.unknown", uuid ? uuid : "?",
		    fleet_name(fh), state ? state : "", hvd_now_wall());
		return;
	}
	/* "crashed" is a failed VM whose reason says so. */
	db_state = strcmp(state, "crashed") == 0 ? "failed" : state;
	if (strcmp(db_state, "running") != 0 && strcmp(db_state, "stopped") != 0 &&
	    strcmp(db_state, "failed") != 0)
		return;
	log_info("vm %s: %s on %s%s%s", v.name, state, fleet_name(fh),
	    reason ? ": " : "", reason ? reason : "");
	db_vm_set_state(hvd->db, &v, db_state, domid, strcmp(state, "crashed") ==
	    0 && reason == NULL ? "crashed" : reason, fleet_name(fh),
	    hvd_now_wall());
	ok = strcmp(state, "running") == 0;
	vm_op_end(uuid, VM_ACTION_BIT(VM_ACTION_CREATE), ok, reason);
	vm_op_end(uuid, VM_ACTION_BIT(VM_ACTION_STOP) |
	    VM_ACTION_BIT(VM_ACTION_DESTROY), strcmp(state, "stopped") == 0,
	    reason);
	/* A reboot's next report is the VM back (its new domain, and how it
	 * got there when that was not the guest's own reboot), or not. */
	if (ok) {
		bool how = reason != NULL && strcmp(reason, "reboot") != 0;

		snprintf(msg, sizeof(msg), "running again");
		if (domid > 0)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
			    " (domain %lld)", (long long)domid);
		if (how)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
			    ": %s", reason);
	} else {
		snprintf(msg, sizeof(msg), "%s instead of running again%s%s",
		    state, reason ? ": " : "", reason ? reason : "");
	}
	vm_op_end(uuid, VM_ACTION_BIT(VM_ACTION_REBOOT), ok, msg);
	if (strcmp(v.desired, "destroyed") == 0 && !ok) {
		db_vm_delete(hvd->db, &v, fleet_name(fh), hvd_now_wall());
		log_info("vm %s: destroyed", v.name);
	}
}

struct vm_reconcile {
	struct hvd *hvd;
	int64_t host_id;
};

/*
 * A reboot still pending when the host's session came back: its vm.state
 * was lost with the session, so vm.list decides.  A new domain is the VM
 * back; anything else ends it failed, saying what runs.  Otherwise the
 * operation would wait for ever and refuse every later reboot.
 */
static void
vm_reconcile_reboot(struct hvd *hvd, const struct vm_row *v, json_t *list)
{
	char msg[256];
	json_int_t domid = -1;
	size_t i;
	json_t *e;

	if (vm_op_pending(v->uuid, VM_ACTION_REBOOT) == 0)
		return;
	json_array_foreach(list, i, e) {
		const char *u = json_string_value(json_object_get(e, "uuid"));
		const char *st = json_string_value(json_object_get(e, "state"));
		const char *nm = json_string_value(json_object_get(e, "name"));

		if (u && strcmp(u, v->uuid) == 0 && st &&
		    strcmp(st, "running") == 0 &&
		    !(nm && migrate_domain_name(nm)))
			domid = json_integer_value(json_object_get(e, "domid"));
	}
	if (domid > 0 && domid != v->domid) {
		snprintf(msg, sizeof(msg), "running again (domain %lld), seen "
		    "after the session to %s came back", (long long)domid,
		    v->host);
		vm_op_end(v->uuid, VM_ACTION_BIT(VM_ACTION_REBOOT), true, msg);
		db_vm_set_state(hvd->db, v, "running", domid, "reboot", "hvd",
		    hvd_now_wall());
		return;
	}
	if (domid > 0)
		snprintf(msg, sizeof(msg), "the session to %s was lost before "
		    "the reboot was reported; %s still runs as domain %lld "
		    "(not rebooted?)", v->host, v->name, (long long)domid);
	else
		snprintf(msg, sizeof(msg), "the session to %s was lost before "
		    "the reboot was reported; %s does not run there now",
		    v->host, v->name);
	vm_op_end(v->uuid, VM_ACTION_BIT(VM_ACTION_REBOOT), false, msg);
}

/* vm.list after a session starts: adopt what runs, report what is gone. */
static void
vm_reconcile_done(void *arg, json_t *result, json_t *error)
{
	struct vm_reconcile *rc = arg;
	struct vm_row *rows = NULL;
	json_t *list = json_object_get(result, "vms"), *e;
	size_t n = 0, i;

	(void)error;
	if (result == NULL)
		goto out;
	/* First: an unfinished migration is decided from what runs where,
	 * which may move a VM's row before the loops below read them. */
	migrate_host_list(rc->hvd, rc->host_id, list);
	if (db_vm_list(rc->hvd->db, rc->host_id, &rows, &n) < 0)
		goto out;
	for (size_t k = 0; k < n; k++) {
		struct vm_row *v = &rows[k];
		bool found = migrate_active(v->uuid);

		/* With the domid stored before this session. */
		vm_reconcile_reboot(rc->hvd, v, list);
		json_array_foreach(list, i, e) {
			const char *u = json_string_value(json_object_get(e, "uuid"));
			const char *st = json_string_value(json_object_get(e, "state"));
			const char *nm = json_string_value(json_object_get(e, "name"));

			if (u == NULL || strcmp(u, v->uuid) != 0)
				continue;
			found = true;
			/* A migration's copy (NAME--incoming, NAME--migratedaway)
			 * is not the VM running: never adopted. */
			if (nm && migrate_domain_name(nm))
				continue;
			if (st && strcmp(st, "running") == 0 &&
			    strcmp(v->state, "running") != 0)
				db_vm_set_state(rc->hvd->db, v, "running",
				    json_integer_value(json_object_get(e, "domid")),
				    "adopted after a restart", "hvd", hvd_now_wall());
		}
		if (!found && (strcmp(v->state, "running") == 0 ||
		    strcmp(v->state, "creating") == 0)) {
			log_warnx("vm %s: missing on %s; not restarted (hvctl vm "
			    "start %s)", v->name, v->host, v->name);
			db_vm_set_state(rc->hvd->db, v, "lost", -1, "missing on its "
			    "host after a restart", "hvd", hvd_now_wall());
		}
	}
	json_array_foreach(list, i, e) {
		const char *u = json_string_value(json_object_get(e, "uuid"));
		const char *nm = json_string_value(json_object_get(e, "name"));
		struct vm_row v;

		if (u && !(nm && migrate_domain_name(nm)) &&
		    db_vm_get(rc->hvd->db, u, &v) < 0)
			db_event_record(rc->hvd->db, "vm.unknown", u, "hvd",
			    "runs on a host but is not in the inventory",
			    hvd_now_wall());
	}
out:
	free(rows);
	free(rc);
}

void
vm_host_up(struct hvd *hvd, struct fleet_host *fh, int64_t host_id)
{
	struct vm_reconcile *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return;
	rc->hvd = hvd;
	rc->host_id = host_id;
	if (fleet_request(fh, "vm.list", json_object(), vm_reconcile_done,
	    rc) < 0)
		free(rc);
}
