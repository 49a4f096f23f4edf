/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * What an agent session means to the fleet: the operations the agent-link
 * listener (net/agents.c) is handed.  Which host a static key is, the
 * replay check on handshake message 1, hello's boot-token rules and the
 * session record, the facts that refine the inventory, and the
 * notifications of an established session, dispatched from a table
 * (method -> schema -> handler) as the agent's own commands are.
 *
 * Invariants: a host's boot token is consumed in the same transaction
 * that records its session (db_host_session_start); only a session that
 * finished hello owns the host's slot in the fleet.
 * Must never: log a boot token, or accept a notification its schema
 * refuses.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "fleet.h"
#include "msg.h"

int
session_authorize(struct hvd *hvd, const uint8_t pubkey[32],
    uint64_t timestamp, struct host_row *h, char *why, size_t whylen)
{
	struct fleet_host *fh;
	char hex[65];
	int r;

	sodium_bin2hex(hex, sizeof(hex), pubkey, 32);
	if ((r = db_host_by_pubkey(hvd->db, hex, h)) < 0) {
		memset(h, 0, sizeof(*h));
		if (r == -ENOENT)
			snprintf(why, whylen, "unknown agent key %.16s...", hex);
		else
			snprintf(why, whylen, "database error");
		return -1;
	}
	if ((fh = fleet_get(hvd, h)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (!fleet_accept_timestamp(fh, timestamp)) {
		snprintf(why, whylen, "replayed handshake message 1 (timestamp "
		    "not newer than the last accepted)");
		return -1;
	}
	return 0;
}

/*
 * The agent's facts refine the inventory: the host's MACs, and, when no
 * DHCP lease gave it one, its underlay address (the address its session
 * comes from).
 */
static void
session_refine_host(struct hvd *hvd, const struct host_row *h, json_t *facts,
    const char *facts_text, const char *peer)
{
	json_t *macs = json_array(), *nic;
	char *text;
	size_t i;

	json_array_foreach(json_object_get(facts, "nics"), i, nic) {
		const char *mac = json_string_value(json_object_get(nic, "mac"));

		if (mac && strcmp(mac, "00:00:00:00:00:00") != 0)
			json_array_append_new(macs, json_string(mac));
	}
	text = json_dumps(macs, JSON_COMPACT);
	json_decref(macs);
	(void)db_host_set_facts(hvd->db, h->id, facts_text, text,
	    hvd_now_wall());
	free(text);
	if (h->underlay_ip[0] == '\0' && strcmp(peer, "?") != 0)
		(void)db_host_set_underlay(hvd->db, h->id, peer);
}

/* A boot's first session must present the token issued with its overlay,
 * and only once. */
static bool
session_token_ok(const struct host_row *h, const char *token, char *why,
    size_t whylen)
{
	uint8_t hash[AUTH_HASH_LEN];

	if (token == NULL) {
		if (h->has_token && !h->token_used) {
			snprintf(why, whylen, "the first session of a boot must "
			    "present its boot token");
			return false;
		}
		return true;
	}
	if (!h->has_token)
		snprintf(why, whylen, "boot token presented, but none was issued");
	else if (h->token_used)
		snprintf(why, whylen, "boot token already used");
	else if (auth_boot_token_hash(token, hash) < 0 ||
	    sodium_memcmp(hash, h->token_hash, AUTH_HASH_LEN) != 0)
		snprintf(why, whylen, "wrong boot token");
	else
		return true;
	return false;
}

struct fleet_host *
session_hello(struct hvd *hvd, struct agent_conn *ac, const struct host_row *h,
    json_t *params, const char *peer, char *why, size_t whylen)
{
	const char *token, *boot_id;
	struct fleet_host *fh;
	char *facts;
	int r;

	token = json_string_value(json_object_get(params, "boot_token"));
	if (!session_token_ok(h, token, why, whylen))
		return NULL;
	boot_id = json_string_value(json_object_get(params, "boot_id"));
	facts = json_dumps(json_object_get(params, "facts"), JSON_COMPACT);
	r = db_host_session_start(hvd->db, h, boot_id, token != NULL, facts,
	    peer, hvd_now_wall());
	if (r == 0)
		session_refine_host(hvd, h, json_object_get(params, "facts"), facts,
		    peer);
	free(facts);
	if (r == -EALREADY) {
		snprintf(why, whylen, "boot token already used");
		return NULL;
	}
	if (r < 0) {
		snprintf(why, whylen, "database error recording the session");
		return NULL;
	}
	if ((fh = fleet_get(hvd, h)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	fleet_session_up(fh, ac);
	return fh;
}

void
session_up(struct hvd *hvd, struct fleet_host *fh, int64_t host_id)
{
	vm_host_up(hvd, fh, host_id);
}

void
session_heartbeat(struct fleet_host *fh)
{
	fleet_heartbeat(fh);
}

void
session_gone(struct fleet_host *fh, struct agent_conn *ac)
{
	if (fleet_session(fh) == ac)
		console_host_gone(fh);
	fleet_session_gone(fh, ac);
}

static void
session_on_telemetry(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	(void)hvd;
	fleet_telemetry(fh, params, hvd_now_wall());
}

/* The notifications an agent may send, each checked by its schema. */
static const struct session_notification {
	const char *method;
	enum msg_schema schema;
	void (*handle)(struct hvd *hvd, struct fleet_host *fh, json_t *params);
} session_notifications[] = {
	{ "telemetry", MSG_S_TELEMETRY, session_on_telemetry },
	{ "vm.state", MSG_S_VM_STATE, vm_agent_state },
	{ "vm.migration", MSG_S_VM_MIGRATION, migrate_agent_report },
	{ "migration.refused", MSG_S_MIGRATION_REFUSED, migrate_agent_refused },
	{ "vm.console_output", MSG_S_VM_CONSOLE_OUTPUT, console_agent_output },
	{ "vm.console_closed", MSG_S_VM_CONSOLE_CLOSED, console_agent_closed },
};

int
session_notify(struct hvd *hvd, struct fleet_host *fh, const char *method,
    json_t *params, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof(session_notifications) /
	    sizeof(session_notifications[0]); i++) {
		const struct session_notification *n = &session_notifications[i];

		if (strcmp(n->method, method) != 0)
			continue;
		if (msg_check(n->schema, params, why, whylen) < 0)
			return -1;
		n->handle(hvd, fh, params);
		return 0;
	}
	snprintf(why, whylen, "unknown notification '%s'", method);
	return -1;
}

int
fleet_request(struct fleet_host *fh, const char *method, json_t *params,
    agent_reply_cb cb, void *arg)
{
	struct agent_conn *ac = fh ? fleet_session(fh) : NULL;

	if (ac == NULL) {
		json_decref(params);
		return -ENOTCONN;
	}
	return agents_request(ac, method, params, cb, arg);
}
