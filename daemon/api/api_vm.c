/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/vms: create (placed by sched.c), list, show, stop, start,
 * reboot, destroy, console, migrate; /api/v1/operations/{id}: what hvctl
 * waits on.
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
			json_array_append_new(arr, json_pack("{s:I, s:s, s:I}",
			    "vni", (json_int_t)nics[i].vni, "mac", nics[i].mac,
			    "rate_kbps", (json_int_t)nics[i].rate_kbps));
		free(nics);
		json_object_set_new(j, "nics", arr);
	}
	return j;
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
	struct host_row dst;
	struct network net;
	char err[1024], key[16], *text = NULL;
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
		nics[i].rate_kbps = s->nics[i].rate_kbps;
		vm_mac_format(mac, nics[i].mac);
	}
	if ((r = place_pick(hvd, s, 0, &dst, err, sizeof(err))) < 0) {
		http_error(rep, r == -ENOSPC ? MHD_HTTP_CONFLICT :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
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
	v->host_id = dst.id;
	snprintf(v->host, sizeof(v->host), "%s", dst.name);
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

/*
 * A reboot wants nothing new, so nothing is stored but its event: a VM
 * that does not run, or one hvd cannot tell now, is refused (409, saying
 * why) rather than remembered for later.
 */
void
api_vm_reboot(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct vm_row *v;
	char err[256], detail[64];
	uint64_t op;

	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		return;
	if ((op = vm_start_action(hvd, v, VM_ACTION_REBOOT, err,
	    sizeof(err))) == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "%s", err);
		goto out;
	}
	snprintf(detail, sizeof(detail), "operation %llu",
	    (unsigned long long)op);
	(void)db_event_record(hvd->db, "vm.reboot", v->name, req->actor, detail,
	    hvd_now_wall());
	log_info("vm %s: reboot on %s asked by %s (operation %llu)", v->name,
	    v->host, req->actor, (unsigned long long)op);
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = json_pack("{s:I, s:s, s:s}", "operation", (json_int_t)op,
	    "vm", v->name, "host", v->host);
out:
	free(v);
}

void
api_vm_destroy(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	api_vm_action(hvd, req, rep, key, VM_ACTION_DESTROY);
}

/*
 * Live migration: fleet/move.c holds the rules (the VM's own constraints,
 * as at create, among the hosts other than its own; --to names the
 * target, and must satisfy them too).  202 with the operation.
 */
void
api_vm_migrate(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_migrate_request mr;
	struct vm_move mv;
	struct vm_row *v;
	char err[1024];
	int r;

	if ((v = api_vm_find(hvd, key, rep)) == NULL)
		return;
	if (api_migrate_request_decode(req->body ? req->body : "",
	    req->body ? req->body_len : 0, &mr, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		goto out;
	}
	if ((r = vm_move(hvd, v, mr.to, req->actor, NULL, NULL, &mv, err,
	    sizeof(err))) < 0) {
		http_error(rep, r == -ENOENT || r == -EINVAL ? MHD_HTTP_BAD_REQUEST :
		    r == -EIO || r == -ENOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR :
		    MHD_HTTP_CONFLICT, "%s", err);
		goto out;
	}
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = json_pack("{s:I, s:s, s:s, s:s}", "operation",
	    (json_int_t)mv.op, "vm", v->name, "source", mv.source.name, "target",
	    mv.target.name);
out:
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
