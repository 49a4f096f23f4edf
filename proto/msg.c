/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Agent link messages: strict envelope decoding, and the schema of every
 * method's params and results as jsonfield tables (jsonfield.h), so adding
 * a field is a table row, not code.
 *
 * Invariants: every schema object and array of objects is checked in
 * table order (unknown keys first, then each field: absent or bad), so a
 * message is refused for the same first reason on both ends; array lengths
 * are bounded; error text names the path but never echoes a value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "jsonfield.h"
#include "msg.h"
#include "vmspec.h"

/* Rows, kept one line each.  A number with hi 0 has no upper bound. */
#define REQ		JF_REQUIRED
#define OPT		0
#define RNUL		(JF_REQUIRED | JF_NULLABLE)
#define STR(n, fl, len)	{ .name = (n), .type = JF_STRING, .flags = (fl), \
	.max = (len) }
#define ONE(n, len, set) { .name = (n), .type = JF_STRING, .flags = REQ, \
	.max = (len), .oneof = (set) }
#define HEX(n, digits)	{ .name = (n), .type = JF_HEX, .flags = REQ, \
	.max = (digits) }
#define UUID(n)		{ .name = (n), .type = JF_UUID, .flags = REQ }
#define UINT(n, fl, lo, hi) { .name = (n), .type = JF_UINT, .flags = (fl), \
	.min = (lo), .max = (hi) }
#define NUM(n, fl)	{ .name = (n), .type = JF_NUMBER, .flags = (fl) }
#define BOOL(n, fl)	{ .name = (n), .type = JF_BOOL, .flags = (fl) }
#define OBJ(n, fl, t)	{ .name = (n), .type = JF_OBJECT, \
	.flags = (fl) | JF_TABLE_ORDER, .child = (t), .nchild = JF_LEN(t) }
#define ARR(n, fl, len, t) { .name = (n), .type = JF_ARRAY, \
	.flags = (fl) | JF_TABLE_ORDER, .max = (len), .elem = JF_OBJECT, \
	.child = (t), .nchild = JF_LEN(t) }
#define ARRN(n, len, e)	{ .name = (n), .type = JF_ARRAY, .flags = REQ, \
	.max = (len), .elem = (e) }

static const struct jf_field msg_cpu_facts[] = {
	STR("model", RNUL, 256),
	UINT("count", REQ, 0, 0),
};
static const struct jf_field msg_mem_facts[] = {
	UINT("total_bytes", RNUL, 0, 0),
};
static const struct jf_field msg_nic_facts[] = {
	STR("name", REQ, 15),
	STR("mac", RNUL, 64),
	UINT("speed_mbps", RNUL, 0, 0),
	UINT("mtu", RNUL, 0, 0),
	STR("operstate", RNUL, 32),
};
static const struct jf_field msg_disk_facts[] = {
	STR("name", REQ, 64),
	UINT("size_bytes", RNUL, 0, 0),
	STR("serial", RNUL, 128),
	STR("model", RNUL, 128),
	BOOL("rotational", RNUL),
};
static const struct jf_field msg_dmi_facts[] = {
	STR("sys_vendor", RNUL, 128),
	STR("product_name", RNUL, 128),
	STR("product_uuid", RNUL, 64),
	STR("product_serial", RNUL, 128),
	STR("board_name", RNUL, 128),
	STR("bios_version", RNUL, 128),
};
static const struct jf_field msg_kernel_facts[] = {
	STR("release", RNUL, 128),
};
static const struct jf_field msg_mount_facts[] = {
	STR("source", REQ, 256),
	STR("path", REQ, 256),
	STR("device", RNUL, 256),
	STR("fstype", RNUL, 64),
	BOOL("mounted", REQ),
	STR("error", OPT, 128),
};
static const struct jf_field msg_facts[] = {
	OBJ("cpu", REQ, msg_cpu_facts),
	OBJ("memory", REQ, msg_mem_facts),
	ARR("nics", REQ, 256, msg_nic_facts),
	ARR("disks", REQ, 256, msg_disk_facts),
	OBJ("dmi", REQ, msg_dmi_facts),
	OBJ("kernel", REQ, msg_kernel_facts),
	ARR("mounts", OPT, 32, msg_mount_facts),
};

static const struct jf_field msg_hello[] = {
	ARRN("versions", 16, JF_INT),
	STR("agent_version", REQ, 32),
	STR("boot_id", REQ, 64),
	STR("boot_token", OPT, 128),
	OBJ("facts", REQ, msg_facts),
};
static const struct jf_field msg_hello_result[] = {
	UINT("version", REQ, 0, 0),
	STR("host", REQ, API_NAME_MAX),
	UINT("heartbeat_ms", REQ, 0, 0),
};

static const struct jf_field msg_cpu_tm[] = {
	NUM("percent", RNUL),
	UINT("count", REQ, 0, 0),
};
static const struct jf_field msg_mem_tm[] = {
	UINT("total_bytes", REQ, 0, 0),
	UINT("available_bytes", REQ, 0, 0),
	UINT("used_bytes", REQ, 0, 0),
};
static const struct jf_field msg_nic_tm[] = {
	STR("name", REQ, 15),
	UINT("rx_bytes", REQ, 0, 0),
	UINT("tx_bytes", REQ, 0, 0),
	UINT("rx_errors", REQ, 0, 0),
	UINT("tx_errors", REQ, 0, 0),
	NUM("rx_bps", RNUL),
	NUM("tx_bps", RNUL),
};
static const struct jf_field msg_disk_tm[] = {
	STR("mount", REQ, 256),
	UINT("total_bytes", REQ, 0, 0),
	UINT("free_bytes", REQ, 0, 0),
};
static const struct jf_field msg_temp_tm[] = {
	STR("sensor", REQ, 64),
	STR("label", RNUL, 64),
	NUM("celsius", REQ),
};
static const struct jf_field msg_xen_tm[] = {
	UINT("total_memory_bytes", REQ, 0, 0),
	UINT("free_memory_bytes", REQ, 0, 0),
	UINT("nr_cpus", REQ, 0, 0),
	UINT("nr_domains", REQ, 0, 0),
	STR("xen_version", RNUL, 64),
};
static const struct jf_field msg_telemetry[] = {
	OBJ("cpu", REQ, msg_cpu_tm),
	ARRN("load", 3, JF_NUMBER),
	OBJ("memory", REQ, msg_mem_tm),
	ARR("nics", REQ, 256, msg_nic_tm),
	ARR("disks", REQ, 256, msg_disk_tm),
	ARR("temps", REQ, 256, msg_temp_tm),
	OBJ("xen", RNUL, msg_xen_tm),
};

static const struct jf_field msg_config_apply[] = {
	UINT("telemetry_ms", REQ, 0, 0),
};

/*
 * The vm.* methods (PROTOCOL.md 6.1 and 6.2): types and limits only.  The
 * agent checks vm.create's character sets and cross-field rules on top,
 * with proto/vmspec.h's shared rules (agent/domain.c).
 */
static const char *const msg_vm_types[] = { "pv", "pvh", NULL };
static const char *const msg_vm_list_states[] = { "running", "paused",
	"shutdown", "crashed", "dying", NULL };
static const char *const msg_vm_states[] = { "running", "stopped", "crashed",
	"failed", NULL };
static const struct jf_field msg_vm_image[] = {
	STR("url", REQ, MSG_VM_URL_MAX),
	HEX("sha256", 64),
};
static const struct jf_field msg_vm_nic[] = {
	STR("bridge", REQ, 15),
	STR("mac", REQ, VM_MAC_TEXT - 1),
	UINT("rate_kbps", OPT, VM_RATE_MIN_KBPS, VM_RATE_MAX_KBPS),
};
static const struct jf_field msg_vm_create[] = {
	STR("name", REQ, API_NAME_MAX),
	UUID("uuid"),
	UINT("vcpus", REQ, 1, VM_VCPUS_MAX),
	UINT("memory_mib", REQ, VM_MEMORY_MIN_MIB, VM_MEMORY_MAX_MIB),
	ONE("type", 3, msg_vm_types),
	OBJ("kernel", OPT, msg_vm_image),
	OBJ("initramfs", OPT, msg_vm_image),
	STR("cmdline", OPT, VM_CMDLINE_MAX),
	OBJ("disk", OPT, msg_vm_image),
	ARR("nics", REQ, VM_NICS_MAX, msg_vm_nic),
};
static const struct jf_field msg_vm_accepted[] = {
	BOOL("accepted", REQ),
	BOOL("existing", OPT),
};
static const struct jf_field msg_vm_ref[] = {
	UUID("uuid"),
};
static const struct jf_field msg_vm_shutdown[] = {
	UUID("uuid"),
	UINT("timeout_s", REQ, 0, MSG_VM_TIMEOUT_MAX),
};
static const struct jf_field msg_vm_list_vm[] = {
	STR("name", REQ, MSG_VM_NAME_MAX),
	UUID("uuid"),
	UINT("domid", REQ, 1, 65535),
	ONE("state", 8, msg_vm_list_states),
	UINT("memory_mib", REQ, 0, 0),
	UINT("vcpus", REQ, 0, 0),
};
static const struct jf_field msg_vm_list_result[] = {
	ARR("vms", REQ, MSG_VM_LIST_MAX, msg_vm_list_vm),
};
static const struct jf_field msg_vm_console[] = {
	UUID("uuid"),
	UINT("bytes", REQ, 1, MSG_VM_CONSOLE_MAX),
};
static const struct jf_field msg_vm_console_result[] = {
	STR("log", REQ, MSG_VM_CONSOLE_MAX),
};
static const struct jf_field msg_vm_state[] = {
	UUID("uuid"),
	STR("name", REQ, MSG_VM_NAME_MAX),
	ONE("state", 8, msg_vm_states),
	UINT("domid", OPT, 1, 65535),
	STR("reason", OPT, MSG_VM_REASON_MAX),
};

static const char *const msg_mig_roles[] = { "source", "target", NULL };
static const char *const msg_mig_phases[] = { "preparing", "copying",
	"switching", "done", "failed", "indoubt", NULL };
static const char *const msg_mig_modes[] = { "live", "stop-copy", NULL };
static const char *const msg_mig_end_states[] = { "running", "gone", NULL };
static const struct jf_field msg_vm_migrate_in[] = {
	OBJ("vm", REQ, msg_vm_create),
	HEX("id", MSG_MIG_ID_HEX),
	HEX("key", MSG_MIG_KEY_HEX),
	HEX("peer_key", MSG_MIG_KEY_HEX),
	STR("peer", REQ, MSG_MIG_ADDR_MAX),
	UINT("timeout_s", REQ, MSG_MIG_TIMEOUT_MIN, MSG_MIG_TIMEOUT_MAX),
};
static const struct jf_field msg_vm_migrate_in_result[] = {
	BOOL("accepted", REQ),
	UINT("port", REQ, 1, 65535),
};
static const struct jf_field msg_vm_migrate_out[] = {
	UUID("uuid"),
	HEX("id", MSG_MIG_ID_HEX),
	HEX("key", MSG_MIG_KEY_HEX),
	HEX("peer_key", MSG_MIG_KEY_HEX),
	STR("peer", REQ, MSG_MIG_ADDR_MAX),
	UINT("port", REQ, 1, 65535),
	UINT("timeout_s", REQ, MSG_MIG_TIMEOUT_MIN, MSG_MIG_TIMEOUT_MAX),
};
static const struct jf_field msg_vm_migrate_end[] = {
	UUID("uuid"),
	HEX("id", MSG_MIG_ID_HEX),
	ONE("outcome", 6, msg_mig_roles),
};
static const struct jf_field msg_vm_migrate_end_result[] = {
	ONE("state", 7, msg_mig_end_states),
};
static const struct jf_field msg_vm_migration[] = {
	UUID("uuid"),
	HEX("id", MSG_MIG_ID_HEX),
	ONE("role", 6, msg_mig_roles),
	ONE("phase", 9, msg_mig_phases),
	UINT("bytes", OPT, 0, 0),
	UINT("round", OPT, 1, MSG_MIG_ROUND_MAX),
	{ .name = "mode", .type = JF_STRING, .flags = OPT, .max = 9,
	    .oneof = msg_mig_modes },
	UINT("domid", OPT, 1, 65535),
	STR("reason", OPT, MSG_VM_REASON_MAX),
};
static const struct jf_field msg_migration_refused[] = {
	STR("peer", REQ, MSG_MIG_ADDR_MAX),
	STR("reason", REQ, MSG_VM_REASON_MAX),
};

/* Interactive consoles (PROTOCOL.md 6.2; limits in proto/console.h). */
#define B64(n, raw)	{ .name = (n), .type = JF_ANY, .flags = REQ, \
	.max = (raw), .rule = console_b64_rule }
static const struct jf_field msg_vm_console_session[] = {
	UUID("uuid"),
	HEX("session", CONSOLE_ID_HEX),
};
static const struct jf_field msg_vm_console_input[] = {
	UUID("uuid"),
	HEX("session", CONSOLE_ID_HEX),
	B64("data", CONSOLE_INPUT_MAX),
};
static const struct jf_field msg_vm_console_output[] = {
	UUID("uuid"),
	HEX("session", CONSOLE_ID_HEX),
	B64("data", CONSOLE_OUTPUT_MAX),
};
static const struct jf_field msg_vm_console_closed[] = {
	UUID("uuid"),
	HEX("session", CONSOLE_ID_HEX),
	STR("reason", REQ, MSG_VM_REASON_MAX),
};

/* Every schema is the object "params" (results too, as before). */
#define ROOT(t)	{ .name = "params", .type = JF_OBJECT, \
	.flags = JF_TABLE_ORDER, .child = (t), .nchild = JF_LEN(t) }

static const struct jf_field msg_schemas[] = {
	[MSG_S_HELLO] = ROOT(msg_hello),
	[MSG_S_HELLO_RESULT] = ROOT(msg_hello_result),
	[MSG_S_TELEMETRY] = ROOT(msg_telemetry),
	[MSG_S_FACTS] = ROOT(msg_facts),
	[MSG_S_EMPTY] = { .name = "params", .type = JF_OBJECT,
	    .flags = JF_TABLE_ORDER },
	[MSG_S_CONFIG_APPLY] = ROOT(msg_config_apply),
	[MSG_S_VM_CREATE] = ROOT(msg_vm_create),
	[MSG_S_VM_ACCEPTED] = ROOT(msg_vm_accepted),
	[MSG_S_VM_REF] = ROOT(msg_vm_ref),
	[MSG_S_VM_SHUTDOWN] = ROOT(msg_vm_shutdown),
	[MSG_S_VM_LIST_RESULT] = ROOT(msg_vm_list_result),
	[MSG_S_VM_CONSOLE] = ROOT(msg_vm_console),
	[MSG_S_VM_CONSOLE_RESULT] = ROOT(msg_vm_console_result),
	[MSG_S_VM_STATE] = ROOT(msg_vm_state),
	[MSG_S_VM_MIGRATE_IN] = ROOT(msg_vm_migrate_in),
	[MSG_S_VM_MIGRATE_IN_RESULT] = ROOT(msg_vm_migrate_in_result),
	[MSG_S_VM_MIGRATE_OUT] = ROOT(msg_vm_migrate_out),
	[MSG_S_VM_MIGRATE_END] = ROOT(msg_vm_migrate_end),
	[MSG_S_VM_MIGRATE_END_RESULT] = ROOT(msg_vm_migrate_end_result),
	[MSG_S_VM_MIGRATION] = ROOT(msg_vm_migration),
	[MSG_S_MIGRATION_REFUSED] = ROOT(msg_migration_refused),
	[MSG_S_VM_CONSOLE_SESSION] = ROOT(msg_vm_console_session),
	[MSG_S_VM_CONSOLE_INPUT] = ROOT(msg_vm_console_input),
	[MSG_S_VM_CONSOLE_OUTPUT] = ROOT(msg_vm_console_output),
	[MSG_S_VM_CONSOLE_CLOSED] = ROOT(msg_vm_console_closed),
};
_Static_assert(JF_LEN(msg_schemas) == MSG_S_COUNT,
    "a schema per enum msg_schema");

int
msg_check(enum msg_schema s, const json_t *v, char *err, size_t errlen)
{
	if ((unsigned)s >= JF_LEN(msg_schemas))
		return -EINVAL;
	return jf_check(&msg_schemas[s], v, "params", NULL, err, errlen);
}

static bool
msg_method_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MSG_METHOD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '.' || s[i] == '_'))
			return false;
	return true;
}

int
msg_decode(const char *buf, size_t len, struct msg *out, char *err,
    size_t errlen)
{
	static const struct { const char *name; enum msg_type type; } types[] = {
		{ "request", MSG_REQUEST }, { "reply", MSG_REPLY },
		{ "notify", MSG_NOTIFY },
	};
	json_error_t jerr;
	json_t *root, *t, *id, *method, *params, *result, *error, *code, *text;
	const char *key;
	json_t *v;
	size_t nkeys = 0;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "invalid JSON at byte %d: %s", jerr.position,
		    jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "message must be a JSON object");
		goto out;
	}
	t = json_object_get(root, "type");
	if (!json_is_string(t)) {
		snprintf(err, errlen, "missing or non-string 'type'");
		goto out;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(*types); i++)
		if (strcmp(json_string_value(t), types[i].name) == 0) {
			out->type = types[i].type;
			nkeys = 1;
			break;
		}
	if (nkeys == 0) {
		snprintf(err, errlen, "unknown type '%.32s'", json_string_value(t));
		goto out;
	}
	id = json_object_get(root, "id");
	method = json_object_get(root, "method");
	params = json_object_get(root, "params");
	result = json_object_get(root, "result");
	error = json_object_get(root, "error");
	json_object_foreach(root, key, v) {
		bool ok = strcmp(key, "type") == 0 ||
		    (strcmp(key, "id") == 0 && out->type != MSG_NOTIFY) ||
		    ((strcmp(key, "method") == 0 || strcmp(key, "params") == 0) &&
		    out->type != MSG_REPLY) ||
		    ((strcmp(key, "result") == 0 || strcmp(key, "error") == 0) &&
		    out->type == MSG_REPLY);

		if (!ok) {
			snprintf(err, errlen, "unknown field '%.32s' in a %s", key,
			    json_string_value(t));
			goto out;
		}
	}
	if (out->type != MSG_NOTIFY) {
		if (!json_is_integer(id) || json_integer_value(id) < 1 ||
		    (uint64_t)json_integer_value(id) > MSG_ID_MAX) {
			snprintf(err, errlen, "'id' must be an integer in 1..2^53-1");
			goto out;
		}
		out->id = (uint64_t)json_integer_value(id);
	}
	if (out->type != MSG_REPLY) {
		if (!json_is_string(method) ||
		    !msg_method_valid(json_string_value(method))) {
			snprintf(err, errlen, "'method' must be a string of a-z, "
			    "'.' and '_', at most %d bytes", MSG_METHOD_MAX);
			goto out;
		}
		memcpy(out->method, json_string_value(method),
		    strlen(json_string_value(method)) + 1);
		if (!json_is_object(params)) {
			snprintf(err, errlen, "'params' must be an object");
			goto out;
		}
		out->params = json_incref(params);
	} else {
		if ((result == NULL) == (error == NULL)) {
			snprintf(err, errlen, "a reply needs exactly one of "
			    "'result' and 'error'");
			goto out;
		}
		if (result) {
			if (!json_is_object(result)) {
				snprintf(err, errlen, "'result' must be an object");
				goto out;
			}
			out->result = json_incref(result);
		} else {
			code = json_object_get(error, "code");
			text = json_object_get(error, "message");
			if (!json_is_object(error) || json_object_size(error) != 2 ||
			    !json_is_string(code) || !json_is_string(text) ||
			    json_string_length(code) > 32 ||
			    json_string_length(text) > 512) {
				snprintf(err, errlen, "'error' must be {\"code\": "
				    "string <= 32, \"message\": string <= 512}");
				goto out;
			}
			out->error = json_incref(error);
		}
	}
	r = 0;
out:
	json_decref(root);
	if (r < 0)
		msg_dispose(out);
	return r;
}

void
msg_dispose(struct msg *m)
{
	if (m == NULL)
		return;
	json_decref(m->params);
	json_decref(m->result);
	json_decref(m->error);
	m->params = m->result = m->error = NULL;
}

static char *
msg_dump(json_t *j)
{
	char *s;

	if (j == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	/* Six significant digits: telemetry, not accounting. */
	s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(j);
	if (s == NULL)
		errno = ENOMEM;
	return s;
}

char *
msg_encode_request(uint64_t id, const char *method, json_t *params)
{
	return msg_dump(json_pack("{s:s, s:I, s:s, s:o}", "type", "request",
	    "id", (json_int_t)id, "method", method,
	    "params", params ? params : json_object()));
}

char *
msg_encode_notify(const char *method, json_t *params)
{
	return msg_dump(json_pack("{s:s, s:s, s:o}", "type", "notify",
	    "method", method, "params", params ? params : json_object()));
}

char *
msg_encode_result(uint64_t id, json_t *result)
{
	return msg_dump(json_pack("{s:s, s:I, s:o}", "type", "reply",
	    "id", (json_int_t)id, "result", result ? result : json_object()));
}

char *
msg_encode_error(uint64_t id, const char *code, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return msg_dump(json_pack("{s:s, s:I, s:{s:s, s:s}}", "type", "reply",
	    "id", (json_int_t)id, "error", "code", code, "message", text));
}
