/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Agent link messages (PROTOCOL.md section 6): the JSON envelope and the
 * schema of every method's params and results.
 *
 * Decoding is strict and pure: msg_decode() and msg_check() reject unknown
 * types and fields, wrong JSON types, missing fields and oversize strings,
 * and write the reason (naming the field's path) into err.
 *
 * Ownership: msg_decode() fills a struct msg that owns new references in
 * params/result/error; msg_dispose() drops them.  msg_encode() returns a
 * malloc'd string the caller frees.
 */
#ifndef HV_MSG_H
#define HV_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MSG_CATALOGUE_VERSION	1
#define MSG_METHOD_MAX		31
#define MSG_ID_MAX		(((uint64_t)1 << 53) - 1)

enum msg_type { MSG_REQUEST, MSG_REPLY, MSG_NOTIFY };

struct msg {
	enum msg_type type;
	uint64_t id;			/* request, reply */
	char method[MSG_METHOD_MAX + 1];/* request, notify */
	json_t *params;			/* request, notify */
	json_t *result;			/* reply on success */
	json_t *error;			/* reply on failure: {code, message} */
};

int msg_decode(const char *buf, size_t len, struct msg *out, char *err,
    size_t errlen);
void msg_dispose(struct msg *m);

/* Builders: each steals the reference it is given and returns a string to
 * free(), or NULL (errno set) on allocation failure. */
char *msg_encode_request(uint64_t id, const char *method, json_t *params);
char *msg_encode_notify(const char *method, json_t *params);
char *msg_encode_result(uint64_t id, json_t *result);
char *msg_encode_error(uint64_t id, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The schema a method's params (or a result) must satisfy. */
enum msg_schema {
	MSG_S_HELLO,		/* hello params */
	MSG_S_HELLO_RESULT,
	MSG_S_TELEMETRY,	/* telemetry params */
	MSG_S_FACTS,		/* facts object, facts.refresh result */
	MSG_S_EMPTY,		/* {} */
	MSG_S_CONFIG_APPLY,
	MSG_S_VM_CREATE,	/* vm.create params (PROTOCOL 6.2) */
	MSG_S_VM_ACCEPTED,	/* vm.create/shutdown/destroy/reboot result */
	MSG_S_VM_REF,		/* vm.destroy, vm.reboot params: {uuid} */
	MSG_S_VM_SHUTDOWN,	/* vm.shutdown params */
	MSG_S_VM_LIST_RESULT,	/* vm.list result (params: MSG_S_EMPTY) */
	MSG_S_VM_CONSOLE,	/* vm.console params */
	MSG_S_VM_CONSOLE_RESULT,
	MSG_S_VM_STATE,		/* vm.state notify params (PROTOCOL 6.1) */
	MSG_S_VM_MIGRATE_IN,	/* live migration (PROTOCOL 6.2) */
	MSG_S_VM_MIGRATE_IN_RESULT,
	MSG_S_VM_MIGRATE_OUT,	/* result: MSG_S_VM_ACCEPTED */
	MSG_S_VM_MIGRATE_END,
	MSG_S_VM_MIGRATE_END_RESULT,
	MSG_S_VM_MIGRATION,	/* vm.migration notify params */
	MSG_S_MIGRATION_REFUSED,/* migration.refused notify params */
	MSG_S_VM_CONSOLE_SESSION,	/* vm.console_attach, _detach params */
	MSG_S_VM_CONSOLE_INPUT,	/* vm.console_input params */
	MSG_S_VM_CONSOLE_OUTPUT,/* vm.console_output notify params */
	MSG_S_VM_CONSOLE_CLOSED,/* vm.console_closed notify params */
	MSG_S_COUNT		/* not a schema */
};
/*
 * Limits both ends check (the agent's vm.create check adds the character
 * sets and cross-field rules of proto/vmspec.h, through agent/domain.c).
 */
#define MSG_VM_NAME_MAX		127	/* vm.list, vm.state: any Xen name */
#define MSG_VM_REASON_MAX	256
#define MSG_VM_URL_MAX		255
#define MSG_VM_TIMEOUT_MAX	3600	/* vm.shutdown timeout_s */
#define MSG_VM_CONSOLE_MAX	65536	/* vm.console bytes */
#define MSG_VM_LIST_MAX		256
#define MSG_MIG_ID_HEX		32	/* vm.migrate_*: id, 16 bytes */
#define MSG_MIG_KEY_HEX		64	/* key and peer_key, 32 bytes */
#define MSG_MIG_ADDR_MAX	45	/* peer: numeric IPv4 or IPv6 */
#define MSG_MIG_TIMEOUT_MIN	10
#define MSG_MIG_TIMEOUT_MAX	3600
#define MSG_MIG_ROUND_MAX	65535	/* vm.migration: pre-copy rounds */
int msg_check(enum msg_schema s, const json_t *v, char *err, size_t errlen);

#endif
