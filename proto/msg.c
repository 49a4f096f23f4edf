/*
 * Agent link messages: strict envelope decoding and declarative schemas.
 *
 * A schema is a table of fields, each with a JSON type, whether it may be
 * null, whether it is required, a length bound, and a child schema for
 * objects and arrays of objects.  One recursive checker walks them, so
 * adding a field is a table row, not code.
 *
 * Invariants: recursion depth is bounded by the static schemas (not by the
 * input); array lengths are bounded; error text names the path but never
 * echoes a value.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* MS_UUID: lowercase 8-4-4-4-12 hex; MS_HEX: exactly max lowercase hex. */
enum ms_type { MS_OBJ, MS_ARR_OBJ, MS_ARR_NUM, MS_ARR_INT, MS_STR, MS_INT,
    MS_NUM, MS_BOOL, MS_UUID, MS_HEX };

struct ms_field {
	const char *name;
	enum ms_type type;
	bool required;
	bool nullable;
	size_t max;			/* string bytes or array length;
					   MS_INT: upper bound unless 0 */
	const struct ms_field *child;	/* MS_OBJ, MS_ARR_OBJ */
	json_int_t min;			/* MS_INT: lower bound (default 0) */
	const char *const *oneof;	/* MS_STR: NULL-ended allowed values */
};

#define MS_END { NULL, 0, false, false, 0, NULL, 0, NULL }
#define REQ true
#define OPT false
#define NUL true
#define NON false

static const struct ms_field ms_cpu_facts[] = {
	{ "model", MS_STR, REQ, NUL, 256, NULL, 0, NULL },
	{ "count", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_mem_facts[] = {
	{ "total_bytes", MS_INT, REQ, NUL, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_nic_facts[] = {
	{ "name", MS_STR, REQ, NON, 15, NULL, 0, NULL },
	{ "mac", MS_STR, REQ, NUL, 64, NULL, 0, NULL },
	{ "speed_mbps", MS_INT, REQ, NUL, 0, NULL, 0, NULL },
	{ "mtu", MS_INT, REQ, NUL, 0, NULL, 0, NULL },
	{ "operstate", MS_STR, REQ, NUL, 32, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_disk_facts[] = {
	{ "name", MS_STR, REQ, NON, 64, NULL, 0, NULL },
	{ "size_bytes", MS_INT, REQ, NUL, 0, NULL, 0, NULL },
	{ "serial", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "model", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "rotational", MS_BOOL, REQ, NUL, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_dmi_facts[] = {
	{ "sys_vendor", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "product_name", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "product_uuid", MS_STR, REQ, NUL, 64, NULL, 0, NULL },
	{ "product_serial", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "board_name", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	{ "bios_version", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_kernel_facts[] = {
	{ "release", MS_STR, REQ, NUL, 128, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_mount_facts[] = {
	{ "source", MS_STR, REQ, NON, 256, NULL, 0, NULL },
	{ "path", MS_STR, REQ, NON, 256, NULL, 0, NULL },
	{ "device", MS_STR, REQ, NUL, 256, NULL, 0, NULL },
	{ "fstype", MS_STR, REQ, NUL, 64, NULL, 0, NULL },
	{ "mounted", MS_BOOL, REQ, NON, 0, NULL, 0, NULL },
	{ "error", MS_STR, OPT, NON, 128, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_facts[] = {
	{ "cpu", MS_OBJ, REQ, NON, 0, ms_cpu_facts, 0, NULL },
	{ "memory", MS_OBJ, REQ, NON, 0, ms_mem_facts, 0, NULL },
	{ "nics", MS_ARR_OBJ, REQ, NON, 256, ms_nic_facts, 0, NULL },
	{ "disks", MS_ARR_OBJ, REQ, NON, 256, ms_disk_facts, 0, NULL },
	{ "dmi", MS_OBJ, REQ, NON, 0, ms_dmi_facts, 0, NULL },
	{ "kernel", MS_OBJ, REQ, NON, 0, ms_kernel_facts, 0, NULL },
	{ "mounts", MS_ARR_OBJ, OPT, NON, 32, ms_mount_facts, 0, NULL },
	MS_END };

static const struct ms_field ms_hello[] = {
	{ "versions", MS_ARR_INT, REQ, NON, 16, NULL, 0, NULL },
	{ "agent_version", MS_STR, REQ, NON, 32, NULL, 0, NULL },
	{ "boot_id", MS_STR, REQ, NON, 64, NULL, 0, NULL },
	{ "boot_token", MS_STR, OPT, NON, 128, NULL, 0, NULL },
	{ "facts", MS_OBJ, REQ, NON, 0, ms_facts, 0, NULL },
	MS_END };
static const struct ms_field ms_hello_result[] = {
	{ "version", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "host", MS_STR, REQ, NON, 63, NULL, 0, NULL },
	{ "heartbeat_ms", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };

static const struct ms_field ms_cpu_tm[] = {
	{ "percent", MS_NUM, REQ, NUL, 0, NULL, 0, NULL },
	{ "count", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_mem_tm[] = {
	{ "total_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "available_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "used_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_nic_tm[] = {
	{ "name", MS_STR, REQ, NON, 15, NULL, 0, NULL },
	{ "rx_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "tx_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "rx_errors", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "tx_errors", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "rx_bps", MS_NUM, REQ, NUL, 0, NULL, 0, NULL },
	{ "tx_bps", MS_NUM, REQ, NUL, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_disk_tm[] = {
	{ "mount", MS_STR, REQ, NON, 256, NULL, 0, NULL },
	{ "total_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "free_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_temp_tm[] = {
	{ "sensor", MS_STR, REQ, NON, 64, NULL, 0, NULL },
	{ "label", MS_STR, REQ, NUL, 64, NULL, 0, NULL },
	{ "celsius", MS_NUM, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_xen_tm[] = {
	{ "total_memory_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "free_memory_bytes", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "nr_cpus", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "nr_domains", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "xen_version", MS_STR, REQ, NUL, 64, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_telemetry[] = {
	{ "cpu", MS_OBJ, REQ, NON, 0, ms_cpu_tm, 0, NULL },
	{ "load", MS_ARR_NUM, REQ, NON, 3, NULL, 0, NULL },
	{ "memory", MS_OBJ, REQ, NON, 0, ms_mem_tm, 0, NULL },
	{ "nics", MS_ARR_OBJ, REQ, NON, 256, ms_nic_tm, 0, NULL },
	{ "disks", MS_ARR_OBJ, REQ, NON, 256, ms_disk_tm, 0, NULL },
	{ "temps", MS_ARR_OBJ, REQ, NON, 256, ms_temp_tm, 0, NULL },
	{ "xen", MS_OBJ, REQ, NUL, 0, ms_xen_tm, 0, NULL },
	MS_END };

static const struct ms_field ms_empty[] = { MS_END };
static const struct ms_field ms_config_apply[] = {
	{ "telemetry_ms", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };

/* The vm.* methods (PROTOCOL.md 6.1 and 6.2). */
static const char *const ms_vm_types[] = { "pv", "pvh", NULL };
static const char *const ms_vm_list_states[] = { "running", "paused",
	"shutdown", "crashed", "dying", NULL };
static const char *const ms_vm_states[] = { "running", "stopped", "crashed",
	"failed", NULL };
static const struct ms_field ms_vm_image[] = {
	{ "url", MS_STR, REQ, NON, MSG_VM_URL_MAX, NULL, 0, NULL },
	{ "sha256", MS_HEX, REQ, NON, 64, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_nic[] = {
	{ "bridge", MS_STR, REQ, NON, 15, NULL, 0, NULL },
	{ "mac", MS_STR, REQ, NON, 17, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_create[] = {
	{ "name", MS_STR, REQ, NON, 63, NULL, 0, NULL },
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	{ "vcpus", MS_INT, REQ, NON, 128, NULL, 1, NULL },
	{ "memory_mib", MS_INT, REQ, NON, 1048576, NULL, 32, NULL },
	{ "type", MS_STR, REQ, NON, 3, NULL, 0, ms_vm_types },
	{ "kernel", MS_OBJ, OPT, NON, 0, ms_vm_image, 0, NULL },
	{ "initramfs", MS_OBJ, OPT, NON, 0, ms_vm_image, 0, NULL },
	{ "cmdline", MS_STR, OPT, NON, 1024, NULL, 0, NULL },
	{ "disk", MS_OBJ, OPT, NON, 0, ms_vm_image, 0, NULL },
	{ "nics", MS_ARR_OBJ, REQ, NON, 8, ms_vm_nic, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_accepted[] = {
	{ "accepted", MS_BOOL, REQ, NON, 0, NULL, 0, NULL },
	{ "existing", MS_BOOL, OPT, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_ref[] = {
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_shutdown[] = {
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	{ "timeout_s", MS_INT, REQ, NON, MSG_VM_TIMEOUT_MAX, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_list_vm[] = {
	{ "name", MS_STR, REQ, NON, MSG_VM_NAME_MAX, NULL, 0, NULL },
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	{ "domid", MS_INT, REQ, NON, 65535, NULL, 1, NULL },
	{ "state", MS_STR, REQ, NON, 8, NULL, 0, ms_vm_list_states },
	{ "memory_mib", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	{ "vcpus", MS_INT, REQ, NON, 0, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_list_result[] = {
	{ "vms", MS_ARR_OBJ, REQ, NON, MSG_VM_LIST_MAX, ms_vm_list_vm, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_console[] = {
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	{ "bytes", MS_INT, REQ, NON, MSG_VM_CONSOLE_MAX, NULL, 1, NULL },
	MS_END };
static const struct ms_field ms_vm_console_result[] = {
	{ "log", MS_STR, REQ, NON, MSG_VM_CONSOLE_MAX, NULL, 0, NULL },
	MS_END };
static const struct ms_field ms_vm_state[] = {
	{ "uuid", MS_UUID, REQ, NON, 0, NULL, 0, NULL },
	{ "name", MS_STR, REQ, NON, MSG_VM_NAME_MAX, NULL, 0, NULL },
	{ "state", MS_STR, REQ, NON, 8, NULL, 0, ms_vm_states },
	{ "domid", MS_INT, OPT, NON, 65535, NULL, 1, NULL },
	{ "reason", MS_STR, OPT, NON, MSG_VM_REASON_MAX, NULL, 0, NULL },
	MS_END };

static const struct ms_field *const ms_schemas[] = {
	[MSG_S_HELLO] = ms_hello,
	[MSG_S_HELLO_RESULT] = ms_hello_result,
	[MSG_S_TELEMETRY] = ms_telemetry,
	[MSG_S_FACTS] = ms_facts,
	[MSG_S_EMPTY] = ms_empty,
	[MSG_S_CONFIG_APPLY] = ms_config_apply,
	[MSG_S_VM_CREATE] = ms_vm_create,
	[MSG_S_VM_ACCEPTED] = ms_vm_accepted,
	[MSG_S_VM_REF] = ms_vm_ref,
	[MSG_S_VM_SHUTDOWN] = ms_vm_shutdown,
	[MSG_S_VM_LIST_RESULT] = ms_vm_list_result,
	[MSG_S_VM_CONSOLE] = ms_vm_console,
	[MSG_S_VM_CONSOLE_RESULT] = ms_vm_console_result,
	[MSG_S_VM_STATE] = ms_vm_state,
};
_Static_assert(sizeof(ms_schemas) / sizeof(*ms_schemas) == MSG_S_COUNT,
    "a schema per enum msg_schema");

/* Lowercase hex of exactly N characters; a uuid has its four dashes. */
static bool
ms_hex(const char *s, size_t len, size_t n, bool uuid)
{
	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = uuid && (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

static int ms_fail(char *err, size_t errlen, const char *path,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
ms_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen, "%s: ", path);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int ms_check_obj(const struct ms_field *fields, const json_t *obj,
    const char *path, char *err, size_t errlen);

static int
ms_check_value(const struct ms_field *f, const json_t *v, const char *path,
    char *err, size_t errlen)
{
	char sub[160];
	size_t i;
	json_t *e;

	if (json_is_null(v)) {
		if (f->nullable)
			return 0;
		return ms_fail(err, errlen, path, "must not be null");
	}
	switch (f->type) {
	case MS_OBJ:
		if (!json_is_object(v))
			return ms_fail(err, errlen, path, "must be an object");
		return ms_check_obj(f->child, v, path, err, errlen);
	case MS_ARR_OBJ:
	case MS_ARR_NUM:
	case MS_ARR_INT:
		if (!json_is_array(v))
			return ms_fail(err, errlen, path, "must be an array");
		if (json_array_size(v) > f->max)
			return ms_fail(err, errlen, path, "more than %zu elements",
			    f->max);
		json_array_foreach(v, i, e) {
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (f->type == MS_ARR_OBJ) {
				if (!json_is_object(e))
					return ms_fail(err, errlen, sub,
					    "must be an object");
				if (ms_check_obj(f->child, e, sub, err, errlen) < 0)
					return -EINVAL;
			} else if (f->type == MS_ARR_INT ? !json_is_integer(e) :
			    !json_is_number(e)) {
				return ms_fail(err, errlen, sub, "must be %s",
				    f->type == MS_ARR_INT ? "an integer" : "a number");
			}
		}
		return 0;
	case MS_STR:
		if (!json_is_string(v))
			return ms_fail(err, errlen, path, "must be a string");
		if (json_string_length(v) > f->max)
			return ms_fail(err, errlen, path, "longer than %zu bytes",
			    f->max);
		if (f->oneof != NULL) {
			for (const char *const *o = f->oneof; *o; o++)
				if (strcmp(*o, json_string_value(v)) == 0)
					return 0;
			return ms_fail(err, errlen, path, "not an allowed value");
		}
		return 0;
	case MS_UUID:
	case MS_HEX:
		if (!json_is_string(v))
			return ms_fail(err, errlen, path, "must be a string");
		if (f->type == MS_UUID && !ms_hex(json_string_value(v),
		    json_string_length(v), 36, true))
			return ms_fail(err, errlen, path, "must be a lowercase "
			    "8-4-4-4-12 hex uuid");
		if (f->type == MS_HEX && !ms_hex(json_string_value(v),
		    json_string_length(v), f->max, false))
			return ms_fail(err, errlen, path, "must be %zu lowercase "
			    "hex digits", f->max);
		return 0;
	case MS_INT:
		if (!json_is_integer(v))
			return ms_fail(err, errlen, path, "must be an integer");
		if (json_integer_value(v) < 0)
			return ms_fail(err, errlen, path, "must not be negative");
		if (f->max == 0 && json_integer_value(v) < f->min)
			return ms_fail(err, errlen, path, "must be at least %lld",
			    (long long)f->min);
		if (f->max != 0 && (json_integer_value(v) < f->min ||
		    (uint64_t)json_integer_value(v) > f->max))
			return ms_fail(err, errlen, path, "must be in %lld..%zu",
			    (long long)f->min, f->max);
		return 0;
	case MS_NUM:
		if (!json_is_number(v))
			return ms_fail(err, errlen, path, "must be a number");
		return 0;
	case MS_BOOL:
		if (!json_is_boolean(v))
			return ms_fail(err, errlen, path, "must be true or false");
		return 0;
	}
	return ms_fail(err, errlen, path, "has no schema type");
}

static int
ms_check_obj(const struct ms_field *fields, const json_t *obj,
    const char *path, char *err, size_t errlen)
{
	char sub[160];
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		const struct ms_field *f;

		for (f = fields; f->name; f++)
			if (strcmp(f->name, key) == 0)
				break;
		if (f->name == NULL)
			return ms_fail(err, errlen, path, "unknown field '%.32s'",
			    key);
	}
	for (const struct ms_field *f = fields; f->name; f++) {
		snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
		v = json_object_get(obj, f->name);
		if (v == NULL) {
			if (f->required)
				return ms_fail(err, errlen, path,
				    "missing field '%s'", f->name);
			continue;
		}
		if (ms_check_value(f, v, sub, err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
}

int
msg_check(enum msg_schema s, const json_t *v, char *err, size_t errlen)
{
	if ((unsigned)s >= sizeof(ms_schemas) / sizeof(*ms_schemas))
		return -EINVAL;
	if (!json_is_object(v))
		return ms_fail(err, errlen, "params", "must be an object");
	return ms_check_obj(ms_schemas[s], v, "params", err, errlen);
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
