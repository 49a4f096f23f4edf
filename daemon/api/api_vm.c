/*
 * /api/v1/vms: create (placed by sched.c), list, show, stop, start,
 * destroy, console, migrate; /api/v1/operations/{id}: what hvctl waits on.
 *
 * A create is validated whole (spec, images and their kinds, networks,
 * MACs), placed, and committed before the reply, which is 202 with an
 * operation id: the agent's work is reported later (vm.state).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "numparse.h"
#include "rest.h"

static void
api_vm_uuid(char out[37])
{
	uint8_t b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
	    b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static json_t *
api_vm_json(struct hvd *hvd, const struct vm_row *v, bool full)
{
	json_t *j = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s, s:I, s:I, s:s}",
	    "name", v->name, "uuid", v->uuid, "host", v->host[0] ? v->host : NULL,
	    "desired", v->desired, "state", v->state, "type", v->type,
	    "vcpus", (json_int_t)v->vcpus, "memory_mib",
	    (json_int_t)v->memory_mib, "reason", v->reason);
	struct vm_nic_row *nics = NULL;
	size_t n = 0;

	if (v->domid >= 0)
		json_object_set_new(j, "domid", json_integer(v->domid));
	if (!full)
		return j;
	json_object_set_new(j, "spec", json_loads(v->spec, 0, NULL));
	if (db_vm_nics(hvd->db, v->id, &nics, &n) == 0) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:I, s:s}", "vni",
			    (json_int_t)nics[i].vni, "mac", nics[i].mac));
		free(nics);
		json_object_set_new(j, "nics", arr);
	}
	return j;
}

/* Capacity of every host for the scheduler, from telemetry and the VMs
 * already placed.  *hosts and *names are malloc'd. */
static int
api_vm_capacity(struct hvd *hvd, const struct vm_spec *s,
    struct sched_host **out, struct host_row **rows_out, size_t *n)
{
	struct host_row *rows = NULL;
	struct vm_row *vms = NULL;
	struct sched_host *sh;
	size_t nh = 0, nv = 0;
	int r;

	if ((r = db_host_list(hvd->db, &rows, &nh)) < 0)
		return r;
	if ((r = db_vm_list(hvd->db, 0, &vms, &nv)) < 0) {
		free(rows);
		return r;
	}
	if ((sh = calloc(nh ? nh : 1, sizeof(*sh))) == NULL) {
		free(rows);
		free(vms);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nh; i++) {
		struct fleet_host *fh = rows[i].name[0] ? fleet_by_id(rows[i].id) :
		    NULL;
		/* The last telemetry sample, where the agent reports Xen. */
		json_t *live = fh ? fleet_telemetry_json(fh) : NULL;
		json_t *xen = json_object_get(json_object_get(live, "latest"), "xen");
		uint64_t pending = 0, placed_vcpus = 0;

		sh[i].name = rows[i].name;
		sh[i].up = fh && fleet_is_up(fh);
		sh[i].has_xen = json_is_object(xen);
		if (sh[i].has_xen) {
			sh[i].free_mib = (uint64_t)json_integer_value(json_object_get(
			    xen, "free_memory_bytes")) >> 20;
			sh[i].free_vcpus = (unsigned)json_integer_value(
			    json_object_get(xen, "nr_cpus"));
		}
		for (size_t k = 0; k < nv; k++) {
			if (vms[k].host_id != rows[i].id ||
			    strcmp(vms[k].desired, "running") != 0)
				continue;
			placed_vcpus += vms[k].vcpus;
			if (strcmp(vms[k].state, "running") != 0)
				pending += vms[k].memory_mib;
			if (s->anti_affinity[0] &&
			    strcmp(vms[k].anti_affinity, s->anti_affinity) == 0)
				sh[i].holds_group = true;
		}
		sh[i].free_mib = sh[i].free_mib > pending ? sh[i].free_mib - pending : 0;
		sh[i].free_vcpus = sh[i].free_vcpus > placed_vcpus ?
		    sh[i].free_vcpus - (unsigned)placed_vcpus : 0;
		json_decref(live);
	}
	free(vms);
	/* Labels live in the host's config. */
	for (size_t i = 0; i < nh; i++) {
		struct host_config c;

		if (rows[i].name[0] && db_host_config(hvd->db, rows[i].id, &c) == 0) {
			sh[i].labels = c.labels;	/* kept: freed by the caller */
			c.labels = NULL;
			host_config_free(&c);
		}
	}
	*out = sh;
	*rows_out = rows;
	*n = nh;
	return 0;
}

/* What api_vm_capacity() made (NULL-safe); ROWS itself is the caller's. */
static void
api_vm_capacity_free(struct sched_host *sh, const struct host_row *rows,
    size_t n)
{
	if (sh != NULL)
		for (size_t i = 0; i < n; i++)
			if (rows[i].name[0])
				free((char *)sh[i].labels);
	free(sh);
}

static bool
api_vm_image_ok(struct hvd *hvd, const char *field, const char *name,
    const char *kind, struct http_reply *rep)
{
	struct image_row im;

	if (name[0] == '\0')
		return true;
	if (db_image_get(hvd->db, name, &im) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s: no image '%s' in the store "
		    "(hvctl image add)", field, name);
		return false;
	}
	if (strcmp(im.kind, kind) != 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s: image '%s' is a %s, not a "
		    "%s", field, name, im.kind, kind);
		return false;
	}
	return true;
}

void
api_vms_create(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct vm_spec *s = malloc(sizeof(*s));
	struct vm_row *v = calloc(1, sizeof(*v));
	struct vm_nic_row nics[VM_NICS_MAX];
	struct sched_host *sh = NULL;
	struct host_row *rows = NULL;
	struct network net;
	char err[1024], key[16], *text = NULL;
	size_t nh = 0, pick;
	uint64_t op;
	json_t *canon;
	int64_t id;
	int r;

	if (s == NULL || v == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	if (vm_spec_decode(req->body ? req->body : "", req->body_len, s, err,
	    sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		goto out;
	}
	if (db_vm_get(hvd->db, s->name, v) == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "a VM named '%s' already exists",
		    s->name);
		goto out;
	}
	if (!api_vm_image_ok(hvd, "kernel", s->kernel, "kernel", rep) ||
	    !api_vm_image_ok(hvd, "initramfs", s->initramfs, "initramfs", rep) ||
	    !api_vm_image_ok(hvd, "disk", s->disk, "disk", rep))
		goto out;
	memset(v, 0, sizeof(*v));
	api_vm_uuid(v->uuid);
	for (size_t i = 0; i < s->nnics; i++) {
		uint8_t mac[6];

		snprintf(key, sizeof(key), "%u", s->nics[i].vni);
		if (db_network_get(hvd->db, key, &net) < 0) {
			http_error(rep, MHD_HTTP_BAD_REQUEST, "networks[%zu]: no network "
			    "has VNI %u", i, s->nics[i].vni);
			goto out;
		}
		if (s->nics[i].has_mac)
			memcpy(mac, s->nics[i].mac, 6);
		else
			vm_mac_generate(v->uuid, (unsigned)i, mac);
		memset(&nics[i], 0, sizeof(nics[i]));
		nics[i].vni = s->nics[i].vni;
		vm_mac_format(mac, nics[i].mac);
	}
	if ((r = api_vm_capacity(hvd, s, &sh, &rows, &nh)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	/* Only named hosts can run VMs: discovered machines are skipped. */
	for (size_t i = 0; i < nh; i++)
		if (rows[i].name[0] == '\0' || strcmp(rows[i].state, "retired") == 0)
			sh[i].up = false, sh[i].name = rows[i].fingerprint;
	if (sched_pick(sh, nh, s, &pick, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "%s", err);
		goto out;
	}
	canon = vm_spec_to_json(s);
	text = canon ? json_dumps(canon, JSON_COMPACT) : NULL;
	json_decref(canon);
	if (text == NULL || strlen(text) >= sizeof(v->spec)) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "spec too large");
		goto out;
	}
	snprintf(v->name, sizeof(v->name), "%s", s->name);
	v->host_id = rows[pick].id;
	snprintf(v->host, sizeof(v->host), "%s", rows[pick].name);
	snprintf(v->type, sizeof(v->type), "%s", vm_type_name(s->type));
	v->vcpus = s->vcpus;
	v->memory_mib = s->memory_mib;
	memcpy(v->spec, text, strlen(text) + 1);
	snprintf(v->anti_affinity, sizeof(v->anti_affinity), "%s",
	    s->anti_affinity);
	r = db_vm_create(hvd->db, v, nics, s->nnics, req->actor, hvd_now_wall(),
	    &id);
	if (r == -EEXIST) {
		http_error(rep, MHD_HTTP_CONFLICT, "%s", strstr(db_conflict(hvd->db),
		    "mac") ? "a NIC's MAC is already used by another VM" :
		    "a VM with that name already exists");
		goto out;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	db_vm_get(hvd->db, v->uuid, v);
	log_info("vm %s: placed on %s by %s", v->name, v->host, req->actor);
	/* Committed: from here on the request cannot be lost.  The host is
	 * told now; an unreachable host leaves the VM pending. */
	op = vm_start_action(hvd, v, VM_ACTION_CREATE, err, sizeof(err));
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = json_pack("{s:I, s:o}", "operation", (json_int_t)op, "vm",
	    api_vm_json(hvd, v, true));
	if (op == 0)
		json_object_set_new(rep->json, "warning", json_string(err));
	snprintf(rep->location, sizeof(rep->location), "/api/v1/vms/%s",
	    v->name);
out:
	api_vm_capacity_free(sh, rows, nh);
	free(rows);
	free(text);
	free(s);
	free(v);
}

void
api_vms_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct vm_row *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (db_vm_list(hvd->db, 0, &rows, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_vm_json(hvd, &rows[i], false));
	free(rows);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:o}", "vms", arr);
}

static struct vm_row *
api_vm_find(struct hvd *hvd, const char *key, struct http_reply *rep)
{
	struct vm_row *v = malloc(sizeof(*v));
	int r;

	if (v == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return NULL;
	}
	if ((r = db_vm_get(hvd->db, key, v)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no VM '%s'" :
		    "database error", key);
		free(v);
		return NULL;
	}
	return v;
}

void
api_vm_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct vm_row *v;

	(void)req;
	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		return;
	rep->status = MHD_HTTP_OK;
	rep->json = api_vm_json(hvd, v, true);
	free(v);
}

/* stop, start, destroy: the desired state first, then the command. */
static void
api_vm_action(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key, enum vm_action action)
{
	const char *desired = action == VM_ACTION_STOP ? "stopped" :
	    action == VM_ACTION_DESTROY ? "destroyed" : "running";
	struct vm_row *v;
	char err[256];
	uint64_t op;

	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		return;
	if (db_vm_set_desired(hvd->db, v, desired, req->actor,
	    hvd_now_wall()) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	snprintf(v->desired, sizeof(v->desired), "%s", desired);
	op = vm_start_action(hvd, v, action, err, sizeof(err));
	if (op == 0 && action == VM_ACTION_DESTROY) {
		/* Its host is gone: nothing runs it that hvd could reach. */
		db_vm_delete(hvd->db, v, req->actor, hvd_now_wall());
		rep->status = MHD_HTTP_OK;
		rep->json = json_pack("{s:s, s:s}", "vm", v->name, "note", err);
		goto out;
	}
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = json_pack("{s:I, s:s, s:s}", "operation", (json_int_t)op,
	    "vm", v->name, "desired", desired);
	if (op == 0)
		json_object_set_new(rep->json, "warning", json_string(err));
out:
	free(v);
}

void
api_vm_stop(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	api_vm_action(hvd, req, rep, key, VM_ACTION_STOP);
}

void
api_vm_start(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	/* Starting a stopped VM creates its domain again. */
	api_vm_action(hvd, req, rep, key, VM_ACTION_CREATE);
}

void
api_vm_destroy(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	api_vm_action(hvd, req, rep, key, VM_ACTION_DESTROY);
}

/*
 * Live migration: the target is picked by the VM's own constraints, as
 * at create, among the hosts other than its own; --to names it, and must
 * satisfy them too.  202 with the operation.
 */
void
api_vm_migrate(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct vm_spec *s = malloc(sizeof(*s));
	struct sched_host *sh = NULL, *cand = NULL;
	struct host_row *rows = NULL, src, dst;
	struct fleet_host *fh;
	struct vm_row *v = NULL;
	struct api_migrate_request mr;
	const char *to = mr.to;
	char err[1024];
	size_t nh = 0, nc = 0, pick, *map = NULL;
	uint64_t op;

	if (s == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		goto out;
	if (api_migrate_request_decode(req->body ? req->body : "",
	    req->body ? req->body_len : 0, &mr, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		goto out;
	}
	if (strcmp(v->state, "running") != 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "VM %s is not running (state %s); "
		    "only a running VM migrates", v->name, v->state);
		goto out;
	}
	if (migrate_active(v->uuid)) {
		http_error(rep, MHD_HTTP_CONFLICT, "a migration of VM %s is already "
		    "in progress", v->name);
		goto out;
	}
	if (v->host_id == 0 || db_host_by_id(hvd->db, v->host_id, &src) < 0 ||
	    (fh = fleet_by_id(v->host_id)) == NULL || fleet_session(fh) == NULL) {
		http_error(rep, MHD_HTTP_CONFLICT, "VM %s's host %s has no agent "
		    "session", v->name, v->host[0] ? v->host : "-");
		goto out;
	}
	if (to[0]) {
		if (db_host_get(hvd->db, to, &dst) < 0) {
			http_error(rep, MHD_HTTP_BAD_REQUEST, "to: no host '%s'", to);
			goto out;
		}
		if (dst.id == src.id) {
			http_error(rep, MHD_HTTP_BAD_REQUEST, "to: VM %s already runs on "
			    "%s", v->name, to);
			goto out;
		}
	}
	if (vm_spec_decode(v->spec, strlen(v->spec), s, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "VM %s: stored spec "
		    "unreadable: %s", v->name, err);
		goto out;
	}
	/* The constraints of create, minus the VM's own host. */
	if (s->place_host[0] && (to[0] ? strcmp(s->place_host, to) != 0 :
	    strcmp(s->place_host, src.name) == 0)) {
		http_error(rep, MHD_HTTP_CONFLICT, "VM %s is pinned to host %s "
		    "(placement.host); %s", v->name, s->place_host, to[0] ?
		    "the target does not satisfy it" : "no other host satisfies it");
		goto out;
	}
	if (to[0])
		snprintf(s->place_host, sizeof(s->place_host), "%s", to);
	if (api_vm_capacity(hvd, s, &sh, &rows, &nh) < 0 ||
	    (cand = calloc(nh ? nh : 1, sizeof(*cand))) == NULL ||
	    (map = calloc(nh ? nh : 1, sizeof(*map))) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	for (size_t i = 0; i < nh; i++) {
		if (rows[i].name[0] == '\0' || strcmp(rows[i].state, "retired") == 0 ||
		    rows[i].id == src.id)
			continue;
		map[nc] = i;
		cand[nc++] = sh[i];
	}
	if (sched_pick(cand, nc, s, &pick, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "%s%s (VM %s stays on %s)",
		    to[0] ? "to: " : "", err, v->name, src.name);
		goto out;
	}
	dst = rows[map[pick]];
	op = migrate_start(hvd, v, &src, &dst, req->actor, err, sizeof(err));
	if (op == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "%s", err);
		goto out;
	}
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = json_pack("{s:I, s:s, s:s, s:s}", "operation", (json_int_t)op,
	    "vm", v->name, "source", src.name, "target", dst.name);
out:
	api_vm_capacity_free(sh, rows, nh);
	free(cand);
	free(map);
	free(rows);
	free(s);
	free(v);
}

struct api_console {
	struct http_deferred *d;
};

static void
api_console_done(void *arg, json_t *result, json_t *error)
{
	struct api_console *c = arg;
	struct http_reply rep = { 0 };
	const char *log = json_string_value(json_object_get(result, "log"));

	if (log) {
		rep.status = MHD_HTTP_OK;
		rep.blob = blob_new(log, strlen(log));
		rep.content_type = "text/plain; charset=utf-8";
	} else {
		http_error(&rep, MHD_HTTP_BAD_GATEWAY, "the agent answered: %s",
		    json_string_value(json_object_get(error, "message")) ?: "?");
	}
	http_finish(c->d, &rep);
	free(c);
}

void
api_vm_console(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct fleet_host *fh;
	struct api_console *c;
	struct vm_row *v;

	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		return;
	fh = fleet_by_id(v->host_id);
	if (fh == NULL || fleet_session(fh) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		http_error(rep, MHD_HTTP_CONFLICT, "host %s has no agent session",
		    v->host[0] ? v->host : "-");
		free(v);
		return;
	}
	c->d = http_defer(req, rep);
	if (fleet_request(fh, "vm.console", json_pack("{s:s, s:i}", "uuid",
	    v->uuid, "bytes", 65536), api_console_done, c) < 0) {
		free(c);
		rep->deferred = false;
		http_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot reach host %s",
		    v->host);
	}
	free(v);
}

void
api_operation_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	uint64_t id;
	json_t *j;

	(void)hvd;
	(void)req;
	if (parse_u64(key, 1, UINT64_MAX, &id) < 0 ||
	    (j = vm_op_json(id)) == NULL) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no operation '%s' (hvd keeps "
		    "the last 256)", key);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = j;
}
