/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Live migration in hvd (PROTOCOL.md 6.2): hvd hands the target and the
 * source each the migration's id and one-time key K, follows both agents'
 * vm.migration reports, moves the VM in the inventory when the target
 * runs it, and tells each agent the outcome (vm.migrate_end) whenever an
 * agent is left in doubt.  hvd is never on the data path (section 11).
 *
 * Invariants:
 * - which copy runs is decided from the target alone: its `done` report,
 *   or (after an hvd restart, a lost session or the timeout) whether its
 *   vm.list runs the VM under its own name;
 * - the VM's host changes in one transaction with its event
 *   (db_migration_move), and that commit re-pushes the mesh, so the FDB
 *   follows the VM's MACs;
 * - a migration's row stays open until every agent that might be waiting
 *   has heard vm.migrate_end, so a restart still finishes the job.
 * Must never: log or store the id or K (K is wiped once both requests are
 * sent), accept a report from a host that is not that side, or block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <sodium.h>

#include "fleet.h"
#include "msg.h"

#define MIG_GRACE_S		60	/* hvd's bound: timeout_s + this */
#define MIG_ID_BYTES		16
#define MIG_KEY_BYTES		32
#define MIG_SUFFIX_IN		"--incoming"
#define MIG_SUFFIX_OUT		"--migratedaway"

/* What hvd knows of one side. */
enum mig_side {
	SIDE_IDLE,		/* not asked yet */
	SIDE_ACTIVE,		/* asked; no final report */
	SIDE_DONE,
	SIDE_FAILED,
	SIDE_INDOUBT,		/* source only: GO sent, link lost */
};
enum mig_outcome { OUT_NONE, OUT_SOURCE, OUT_TARGET };
enum mig_role { ROLE_SOURCE, ROLE_TARGET };

/* The phases an operator sees, in order (the agents' "indoubt" is not
 * one: the operation stays "switching" while the source waits). */
enum mig_phase { PH_PREPARING, PH_COPYING, PH_SWITCHING, PH_DONE, PH_FAILED };
static const char *const mig_phases[] = { "preparing", "copying",
	"switching", "done", "failed" };

struct mig {
	TAILQ_ENTRY(mig) entry;
	struct hvd *hvd;
	struct migration_row row;	/* id, VM, hosts: as stored */
	uint64_t op;			/* 0: none (loaded after a restart) */
	uint8_t key[MIG_KEY_BYTES];	/* wiped once migrate_out is sent */
	enum mig_side side[2];		/* by enum mig_role */
	enum mig_outcome outcome;
	enum mig_phase phase;
	bool owe_end[2];		/* a vm.migrate_end still to deliver */
	bool end_busy[2];		/* ... in flight */
	bool told[2];			/* ... delivered */
	bool listing;			/* the target's vm.list in flight */
	bool restored;			/* loaded from the database */
	struct event *timer;
	uint64_t memory_mib;		/* what the target must hold; 0 */
	unsigned vcpus;			/* ... when restored */
	migrate_done_cb *done;		/* the starter's, called once */
	void *done_arg;
};

static TAILQ_HEAD(mig_list, mig) migs = TAILQ_HEAD_INITIALIZER(migs);
static uint64_t mig_refused_total, mig_outcomes[3];

static const char *
mig_role_name(enum mig_role r)
{
	return r == ROLE_SOURCE ? "source" : "target";
}

static const char *
mig_host(const struct mig *m, enum mig_role r)
{
	return r == ROLE_SOURCE ? m->row.source : m->row.target;
}

static int64_t
mig_host_id(const struct mig *m, enum mig_role r)
{
	return r == ROLE_SOURCE ? m->row.source_id : m->row.target_id;
}

/* Text from an agent, fit for a log line or an event: printable ASCII. */
static void
mig_clean(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src && *src && i + 1 < len; src++)
		dst[i++] = *src >= 0x20 && *src < 0x7f ? *src : '?';
	dst[i] = '\0';
}

bool
migrate_domain_name(const char *name)
{
	size_t n = strlen(name), a = strlen(MIG_SUFFIX_IN),
	    b = strlen(MIG_SUFFIX_OUT);

	return (n > a && strcmp(name + n - a, MIG_SUFFIX_IN) == 0) ||
	    (n > b && strcmp(name + n - b, MIG_SUFFIX_OUT) == 0);
}

static struct mig *
mig_find(const char *id)
{
	struct mig *m;

	TAILQ_FOREACH(m, &migs, entry)
		if (strlen(id) == MSG_MIG_ID_HEX &&
		    sodium_memcmp(m->row.id, id, MSG_MIG_ID_HEX) == 0)
			return m;
	return NULL;
}

bool
migrate_active(const char *uuid)
{
	struct mig *m;

	TAILQ_FOREACH(m, &migs, entry)
		if (strcmp(m->row.vm_uuid, uuid) == 0)
			return true;
	return false;
}

static void
mig_free(struct mig *m)
{
	if (m == NULL)
		return;
	if (m->timer)
		event_free(m->timer);
	sodium_memzero(m, sizeof(*m));
	free(m);
}

/* The operation follows: phase, and the state it implies. */
static void
mig_set_phase(struct mig *m, enum mig_phase p, const char *message)
{
	const char *state = p == PH_DONE ? "done" : p == PH_FAILED ? "failed" :
	    NULL;

	if (p != m->phase && p != PH_DONE && p != PH_FAILED &&
	    db_migration_set_phase(m->hvd->db, m->row.id, mig_phases[p]) < 0)
		log_warnx("vm %s: cannot record the migration's phase",
		    m->row.vm_name);
	m->phase = p;
	vm_op_migrate_update(m->op, mig_phases[p], -1, NULL, state, message);
}

/* Closes the row once the outcome is known and nobody waits to hear it,
 * and frees m: a caller never touches m after calling this (or
 * mig_decide(), which calls it). */
static void
mig_maybe_close(struct mig *m)
{
	if (m->outcome == OUT_NONE || m->listing)
		return;
	for (int r = 0; r < 2; r++)
		if (m->owe_end[r] || m->end_busy[r])
			return;
	/* A target outcome also waits for the source to let its copy go. */
	if (m->outcome == OUT_TARGET && m->side[ROLE_SOURCE] != SIDE_DONE &&
	    !m->told[ROLE_SOURCE])
		return;
	if (db_migration_close(m->hvd->db, m->row.id, hvd_now_wall()) < 0)
		log_warnx("vm %s: cannot close the migration's record",
		    m->row.vm_name);
	log_info("vm %s: migration from %s to %s finished: runs on %s",
	    m->row.vm_name, m->row.source, m->row.target,
	    m->outcome == OUT_TARGET ? m->row.target : m->row.source);
	TAILQ_REMOVE(&migs, m, entry);
	mig_free(m);
}

/* A callback's argument: the migration by id, as it may be gone by then. */
struct mig_ref {
	struct hvd *hvd;
	char id[MSG_MIG_ID_HEX + 1];
	enum mig_role role;
};

static int
mig_request(struct mig *m, enum mig_role role, const char *method,
    json_t *params, agent_reply_cb cb)
{
	struct fleet_host *fh = fleet_by_id(mig_host_id(m, role));
	struct mig_ref *ref;
	int r;

	if ((ref = calloc(1, sizeof(*ref))) == NULL) {
		json_decref(params);
		return -ENOMEM;
	}
	ref->hvd = m->hvd;
	memcpy(ref->id, m->row.id, sizeof(ref->id));
	ref->role = role;
	if ((r = fleet_request(fh, method, params, cb, ref)) < 0)
		free(ref);
	return r;
}

/* Takes back the callback's reference: the migration, or NULL. */
static struct mig *
mig_unref(void *arg, enum mig_role *role)
{
	struct mig_ref *ref = arg;
	struct mig *m = mig_find(ref->id);

	if (role)
		*role = ref->role;
	sodium_memzero(ref, sizeof(*ref));
	free(ref);
	return m;
}

/* Sends a request carrying K, then wipes the copy jansson held. */
static int
mig_request_secret(struct mig *m, enum mig_role role, const char *method,
    json_t *params, agent_reply_cb cb)
{
	const char *k;
	int r;

	json_incref(params);
	r = mig_request(m, role, method, params, cb);
	/* The request is encoded (and sealed) by now. */
	if ((k = json_string_value(json_object_get(params, "key"))) != NULL)
		sodium_memzero((char *)(uintptr_t)k, strlen(k));
	json_decref(params);
	return r;
}

static void mig_flush_ends(struct mig *m);

static void
mig_end_done(void *arg, json_t *result, json_t *error)
{
	enum mig_role role;
	struct mig *m = mig_unref(arg, &role);
	const char *code = json_string_value(json_object_get(error, "code"));
	char msg[160];

	if (m == NULL)
		return;
	m->end_busy[role] = false;
	if (result == NULL && code && (strcmp(code, "disconnected") == 0 ||
	    strcmp(code, "timeout") == 0)) {
		/* Still owed: sent again when that host's session returns. */
		log_warnx("vm %s: %s %s did not acknowledge the migration's "
		    "outcome (%s); told again when it reconnects", m->row.vm_name,
		    mig_role_name(role), mig_host(m, role), code);
		return;
	}
	if (result == NULL) {
		mig_clean(msg, sizeof(msg), json_string_value(json_object_get(error,
		    "message")));
		log_warnx("vm %s: %s %s refused vm.migrate_end: %s",
		    m->row.vm_name, mig_role_name(role), mig_host(m, role), msg);
	} else {
		log_info("vm %s: %s %s has the outcome: %s", m->row.vm_name,
		    mig_role_name(role), mig_host(m, role),
		    json_string_value(json_object_get(result, "state")) ?: "?");
	}
	m->owe_end[role] = false;
	m->told[role] = true;
	mig_maybe_close(m);
}

/* Delivers each vm.migrate_end still owed to a side whose session is up. */
static void
mig_flush_ends(struct mig *m)
{
	const char *outcome = m->outcome == OUT_TARGET ? "target" : "source";

	if (m->outcome == OUT_NONE)
		return;
	for (int r = 0; r < 2; r++) {
		struct fleet_host *fh = fleet_by_id(mig_host_id(m, (enum mig_role)r));

		if (!m->owe_end[r] || m->end_busy[r] || fh == NULL ||
		    fleet_session(fh) == NULL)
			continue;
		if (mig_request(m, (enum mig_role)r, "vm.migrate_end",
		    json_pack("{s:s, s:s, s:s}", "uuid", m->row.vm_uuid, "id",
		    m->row.id, "outcome", outcome), mig_end_done) == 0)
			m->end_busy[r] = true;
	}
}

/* The starter hears the outcome once: moved, or why not. */
static void
mig_tell_starter(struct mig *m, bool moved, const char *why)
{
	migrate_done_cb *cb = m->done;

	m->done = NULL;
	if (cb != NULL)
		cb(m->done_arg, moved, why);
}

/*
 * The outcome, once.  Target: the inventory moves (if it has not) and the
 * source hears "target" now if it is in doubt or tell_source, else when
 * the timer gives up waiting for its own "done".  Source: every side that
 * was asked and did not fail on its own hears "source".
 */
static void
mig_decide(struct mig *m, enum mig_outcome o, const char *reason,
    bool tell_source)
{
	migrate_done_cb *done = m->done;
	void *done_arg = m->done_arg;
	char msg[320], why[320];
	int r;

	if (m->outcome != OUT_NONE)
		return;
	m->outcome = o;
	mig_outcomes[o]++;
	if (o == OUT_TARGET) {
		r = db_migration_move(m->hvd->db, &m->row, "hvd", hvd_now_wall());
		if (r < 0)
			log_warnx("vm %s: runs on %s, but the inventory could not "
			    "follow (%s)", m->row.vm_name, m->row.target,
			    strerror(-r));
		else
			log_info("vm %s: now runs on %s (migrated from %s)",
			    m->row.vm_name, m->row.target, m->row.source);
		m->owe_end[ROLE_SOURCE] = m->side[ROLE_SOURCE] != SIDE_DONE &&
		    (tell_source || m->side[ROLE_SOURCE] == SIDE_INDOUBT);
		snprintf(msg, sizeof(msg), "now on %s%s%s", m->row.target,
		    reason ? "; " : "", reason ? reason : "");
		mig_set_phase(m, PH_DONE, msg);
	} else {
		if (db_migration_decide(m->hvd->db, &m->row, "source", reason,
		    "hvd", hvd_now_wall()) < 0)
			log_warnx("vm %s: cannot record the migration's outcome",
			    m->row.vm_name);
		log_warnx("vm %s: migration to %s failed, stays on %s: %s",
		    m->row.vm_name, m->row.target, m->row.source, reason);
		for (int s = 0; s < 2; s++)
			m->owe_end[s] = m->side[s] != SIDE_IDLE &&
			    m->side[s] != SIDE_FAILED;
		mig_set_phase(m, PH_FAILED, reason);
	}
	/* The starter hears it last, with the inventory updated and m
	 * perhaps gone: it may start another move at once. */
	m->done = NULL;
	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	mig_flush_ends(m);
	mig_maybe_close(m);
	if (done != NULL)
		done(done_arg, o == OUT_TARGET, why[0] ? why : NULL);
}

/* The target's vm.list: does it run the VM under its own name? */
static bool
mig_target_runs(const struct mig *m, json_t *vms)
{
	json_t *e;
	size_t i;

	json_array_foreach(vms, i, e) {
		const char *u = json_string_value(json_object_get(e, "uuid"));
		const char *n = json_string_value(json_object_get(e, "name"));
		const char *st = json_string_value(json_object_get(e, "state"));

		if (u && n && st && strcmp(u, m->row.vm_uuid) == 0 &&
		    strcmp(n, m->row.vm_name) == 0 && strcmp(st, "running") == 0)
			return true;
	}
	return false;
}

static void
mig_decide_from_list(struct mig *m, json_t *vms, const char *why)
{
	char reason[200];

	if (mig_target_runs(m, vms)) {
		m->side[ROLE_TARGET] = SIDE_DONE;
		snprintf(reason, sizeof(reason), "%s: %s runs it", why,
		    m->row.target);
		mig_decide(m, OUT_TARGET, reason, true);
	} else {
		snprintf(reason, sizeof(reason), "%s: target %s does not run it",
		    why, m->row.target);
		mig_decide(m, OUT_SOURCE, reason, true);
	}
}

static void
mig_list_done(void *arg, json_t *result, json_t *error)
{
	struct mig *m = mig_unref(arg, NULL);
	char why[64];

	(void)error;
	if (m == NULL)
		return;
	m->listing = false;
	if (result == NULL ||
	    msg_check(MSG_S_VM_LIST_RESULT, result, why, sizeof(why)) < 0) {
		/* Decided when the target's session comes back. */
		log_warnx("vm %s: cannot list %s's domains; the migration is "
		    "decided when it reconnects", m->row.vm_name, m->row.target);
		return;
	}
	snprintf(why, sizeof(why), "timed out after %u s", m->row.timeout_s);
	mig_decide_from_list(m, json_object_get(result, "vms"), why);
}

/* hvd's bound on the whole migration. */
static void
mig_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mig *m = arg;
	char msg[256];

	(void)fd;
	(void)what;
	if (m->outcome == OUT_TARGET) {
		/* The target runs it; the source never said it let go. */
		if (m->side[ROLE_SOURCE] != SIDE_DONE && !m->told[ROLE_SOURCE])
			m->owe_end[ROLE_SOURCE] = true;
		mig_flush_ends(m);
		mig_maybe_close(m);
		return;
	}
	if (m->outcome != OUT_NONE)
		return;
	/* Only the target knows whether it ran the VM: ask it. */
	if (mig_request(m, ROLE_TARGET, "vm.list", json_object(),
	    mig_list_done) == 0) {
		m->listing = true;
		return;
	}
	snprintf(msg, sizeof(msg), "timed out after %u s; which copy runs is "
	    "decided when %s reconnects", m->row.timeout_s, m->row.target);
	log_warnx("vm %s: migration %s", m->row.vm_name, msg);
	vm_op_migrate_update(m->op, NULL, -1, NULL, "failed", msg);
	mig_tell_starter(m, false, msg);
}

static int
mig_peer(struct hvd *hvd, int64_t host_id, struct host_row *h, char *ip,
    size_t iplen)
{
	int r;

	if ((r = db_host_by_id(hvd->db, host_id, h)) < 0)
		return r;
	return db_host_underlay(hvd->db, h, hvd->conf->dhcp_mode == DHCP_FULL, ip,
	    iplen);
}

static void
mig_out_done(void *arg, json_t *result, json_t *error)
{
	struct mig *m = mig_unref(arg, NULL);
	const char *code = json_string_value(json_object_get(error, "code"));
	char msg[300], why[128];

	if (m == NULL || m->outcome != OUT_NONE)
		return;
	if (result == NULL && code && (strcmp(code, "disconnected") == 0 ||
	    strcmp(code, "timeout") == 0)) {
		/* It may have started: its reports, or the timer, decide. */
		log_warnx("vm %s: source %s did not answer vm.migrate_out (%s); "
		    "waiting for the agents' reports", m->row.vm_name,
		    m->row.source, code);
		return;
	}
	if (result == NULL) {
		mig_clean(why, sizeof(why), json_string_value(json_object_get(
		    error, "message")) ?: "?");
		m->side[ROLE_SOURCE] = SIDE_FAILED;
		snprintf(msg, sizeof(msg), "source %s refused: %s", m->row.source,
		    why);
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	}
	if (msg_check(MSG_S_VM_ACCEPTED, result, why, sizeof(why)) < 0 ||
	    !json_is_true(json_object_get(result, "accepted"))) {
		snprintf(msg, sizeof(msg), "source %s: unexpected answer to "
		    "vm.migrate_out", m->row.source);
		mig_decide(m, OUT_SOURCE, msg, false);
	}
}

static void
mig_in_done(void *arg, json_t *result, json_t *error)
{
	struct mig *m = mig_unref(arg, NULL);
	struct host_row th;
	char msg[300], why[128], ip[sizeof(th.underlay_ip)];
	char keyhex[MSG_MIG_KEY_HEX + 1];
	json_int_t port;
	json_t *p;
	int r;

	if (m == NULL || m->outcome != OUT_NONE)
		return;
	if (result == NULL) {
		mig_clean(why, sizeof(why), json_string_value(json_object_get(
		    error, "message")) ?: "?");
		m->side[ROLE_TARGET] = SIDE_FAILED;
		snprintf(msg, sizeof(msg), "target %s refused: %s", m->row.target,
		    why);
		sodium_memzero(m->key, sizeof(m->key));
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	}
	if (msg_check(MSG_S_VM_MIGRATE_IN_RESULT, result, why, sizeof(why)) < 0 ||
	    !json_is_true(json_object_get(result, "accepted"))) {
		snprintf(msg, sizeof(msg), "target %s: unexpected answer to "
		    "vm.migrate_in", m->row.target);
		sodium_memzero(m->key, sizeof(m->key));
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	}
	port = json_integer_value(json_object_get(result, "port"));
	if (mig_peer(m->hvd, m->row.target_id, &th, ip, sizeof(ip)) < 0 ||
	    strlen(th.agent_pubkey) != MSG_MIG_KEY_HEX) {
		snprintf(msg, sizeof(msg), "target %s: no underlay address or "
		    "agent key in the inventory", m->row.target);
		sodium_memzero(m->key, sizeof(m->key));
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	}
	sodium_bin2hex(keyhex, sizeof(keyhex), m->key, sizeof(m->key));
	p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "uuid",
	    m->row.vm_uuid, "id", m->row.id, "key", keyhex, "peer_key",
	    th.agent_pubkey, "peer", ip, "port", port, "timeout_s",
	    (json_int_t)m->row.timeout_s);
	sodium_memzero(keyhex, sizeof(keyhex));
	r = mig_request_secret(m, ROLE_SOURCE, "vm.migrate_out", p,
	    mig_out_done);
	/* Both agents have K (or never will): hvd forgets it. */
	sodium_memzero(m->key, sizeof(m->key));
	if (r < 0) {
		snprintf(msg, sizeof(msg), "source %s: %s", m->row.source,
		    r == -ENOTCONN ? "no agent session" : "cannot send to it");
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	}
	m->side[ROLE_SOURCE] = SIDE_ACTIVE;
}

uint64_t
migrate_start(struct hvd *hvd, const struct vm_row *v,
    const struct host_row *src, const struct host_row *dst, const char *actor,
    migrate_done_cb *done, void *done_arg, char *err, size_t errlen)
{
	char sip[sizeof(src->underlay_ip)], dip[sizeof(dst->underlay_ip)];
	char keyhex[MSG_MIG_KEY_HEX + 1];
	uint8_t id[MIG_ID_BYTES];
	struct host_row tmp;
	struct mig *m = NULL;
	struct timeval tv;
	json_t *vmp = NULL, *p;
	uint64_t op = 0;
	int r;

	if (migrate_active(v->uuid)) {
		snprintf(err, errlen, "a migration of VM %s is already in "
		    "progress", v->name);
		return 0;
	}
	if (mig_peer(hvd, src->id, &tmp, sip, sizeof(sip)) < 0 ||
	    strlen(src->agent_pubkey) != MSG_MIG_KEY_HEX) {
		snprintf(err, errlen, "source host %s has no underlay address or "
		    "agent key", src->name);
		return 0;
	}
	if (mig_peer(hvd, dst->id, &tmp, dip, sizeof(dip)) < 0 ||
	    strlen(dst->agent_pubkey) != MSG_MIG_KEY_HEX) {
		snprintf(err, errlen, "target host %s has no underlay address or "
		    "agent key", dst->name);
		return 0;
	}
	if ((vmp = vm_create_params(hvd, v, err, errlen)) == NULL)
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->timer = evtimer_new(hvd->base, mig_timeout_cb, m)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	m->hvd = hvd;
	randombytes_buf(id, sizeof(id));
	sodium_bin2hex(m->row.id, sizeof(m->row.id), id, sizeof(id));
	sodium_memzero(id, sizeof(id));
	randombytes_buf(m->key, sizeof(m->key));
	snprintf(m->row.vm_uuid, sizeof(m->row.vm_uuid), "%s", v->uuid);
	snprintf(m->row.vm_name, sizeof(m->row.vm_name), "%s", v->name);
	m->row.source_id = src->id;
	m->row.target_id = dst->id;
	m->memory_mib = v->memory_mib;
	m->vcpus = v->vcpus;
	snprintf(m->row.source, sizeof(m->row.source), "%s", src->name);
	snprintf(m->row.target, sizeof(m->row.target), "%s", dst->name);
	snprintf(m->row.phase, sizeof(m->row.phase), "preparing");
	m->row.timeout_s = MIGRATE_TIMEOUT_S;
	/* Recorded before anything is sent: a restart can finish it. */
	if (db_migration_insert(hvd->db, &m->row, actor, hvd_now_wall()) < 0) {
		snprintf(err, errlen, "database error recording the migration");
		goto fail;
	}
	TAILQ_INSERT_TAIL(&migs, m, entry);
	sodium_bin2hex(keyhex, sizeof(keyhex), m->key, sizeof(m->key));
	p = json_pack("{s:O, s:s, s:s, s:s, s:s, s:I}", "vm", vmp, "id",
	    m->row.id, "key", keyhex, "peer_key", src->agent_pubkey, "peer", sip,
	    "timeout_s", (json_int_t)m->row.timeout_s);
	sodium_memzero(keyhex, sizeof(keyhex));
	r = mig_request_secret(m, ROLE_TARGET, "vm.migrate_in", p, mig_in_done);
	if (r < 0) {
		snprintf(err, errlen, "target host %s: %s", dst->name,
		    r == -ENOTCONN ? "no agent session" : "cannot send to it");
		mig_decide(m, OUT_SOURCE, err, false);	/* closes it */
		json_decref(vmp);
		return 0;
	}
	m->side[ROLE_TARGET] = SIDE_ACTIVE;
	op = m->op = vm_op_migrate_new(v, src->name, dst->name);
	tv.tv_sec = (time_t)m->row.timeout_s + MIG_GRACE_S;
	tv.tv_usec = 0;
	evtimer_add(m->timer, &tv);
	log_info("vm %s: migrating from %s to %s (operation %llu, by %s)",
	    v->name, src->name, dst->name, (unsigned long long)op, actor);
	json_decref(vmp);
	m->done = done;
	m->done_arg = done_arg;
	return op;
fail:
	json_decref(vmp);
	mig_free(m);
	return 0;
}

/* vm.migration from one side. */
void
migrate_agent_report(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	const char *id = json_string_value(json_object_get(params, "id"));
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *role_s = json_string_value(json_object_get(params, "role"));
	const char *phase = json_string_value(json_object_get(params, "phase"));
	const char *mode = json_string_value(json_object_get(params, "mode"));
	json_t *jb = json_object_get(params, "bytes");
	json_t *jr = json_object_get(params, "round");
	enum mig_role role = role_s && strcmp(role_s, "target") == 0 ?
	    ROLE_TARGET : ROLE_SOURCE;
	char reason[MSG_VM_REASON_MAX + 1], msg[400];
	struct mig *m;

	mig_clean(reason, sizeof(reason), json_string_value(json_object_get(
	    params, "reason")));
	if (id == NULL || uuid == NULL || phase == NULL ||
	    (m = mig_find(id)) == NULL || strcmp(m->row.vm_uuid, uuid) != 0) {
		log_warnx("host %s: vm.migration (%s) for no migration hvd runs",
		    fleet_name(fh), phase ? phase : "?");
		return;
	}
	if (strcmp(fleet_name(fh), mig_host(m, role)) != 0) {
		log_warnx("vm %s: host %s reports as the migration's %s, which is "
		    "%s; ignored", m->row.vm_name, fleet_name(fh),
		    mig_role_name(role), mig_host(m, role));
		return;
	}
	/* The operation's bytes are the source's: what has left it. */
	if (json_is_integer(jb) && role == ROLE_SOURCE)
		vm_op_migrate_update(m->op, NULL, json_integer_value(jb), NULL,
		    NULL, NULL);
	if (mode && role == ROLE_SOURCE)
		vm_op_migrate_update(m->op, NULL, -1, mode, NULL, NULL);
	/* msg.c bounds it to an unsigned int. */
	if (json_is_integer(jr) && role == ROLE_SOURCE)
		vm_op_migrate_round(m->op, (unsigned)json_integer_value(jr));
	if (strcmp(phase, "done") == 0) {
		m->side[role] = SIDE_DONE;
		if (role == ROLE_TARGET && m->outcome == OUT_SOURCE) {
			/* Told "source" already: two copies may run now. */
			log_warnx("vm %s: target %s reports it runs the VM after hvd "
			    "decided it stays on %s; check both hosts",
			    m->row.vm_name, m->row.target, m->row.source);
			db_event_record(hvd->db, "vm.migrate-conflict",
			    m->row.vm_name, fleet_name(fh), "the target ran it after "
			    "the outcome was source", hvd_now_wall());
		} else if (role == ROLE_TARGET) {
			mig_decide(m, OUT_TARGET, NULL, false);
			return;		/* it may be closed (freed) now */
		} else if (m->outcome == OUT_TARGET) {
			m->owe_end[ROLE_SOURCE] = false;
			snprintf(msg, sizeof(msg), "now on %s; the copy on %s is gone",
			    m->row.target, m->row.source);
			vm_op_migrate_update(m->op, NULL, -1, NULL, NULL, msg);
		}
		/* A source's done before the target's: the target decides. */
	} else if (strcmp(phase, "failed") == 0) {
		m->side[role] = SIDE_FAILED;
		snprintf(msg, sizeof(msg), "%s %s failed: %s", mig_role_name(role),
		    mig_host(m, role), reason[0] ? reason : "no reason given");
		mig_decide(m, OUT_SOURCE, msg, false);
		return;
	} else if (strcmp(phase, "indoubt") == 0 && role == ROLE_SOURCE) {
		m->side[role] = SIDE_INDOUBT;
		if (m->outcome != OUT_NONE) {
			m->owe_end[ROLE_SOURCE] = true;
			mig_flush_ends(m);
		} else {
			snprintf(msg, sizeof(msg), "source %s lost the target after "
			    "the switchover; waiting for %s's report", m->row.source,
			    m->row.target);
			vm_op_migrate_update(m->op, NULL, -1, NULL, NULL, msg);
		}
	} else if (m->outcome == OUT_NONE) {
		enum mig_phase p = strcmp(phase, "copying") == 0 ? PH_COPYING :
		    strcmp(phase, "switching") == 0 ? PH_SWITCHING : PH_PREPARING;

		/* Phases move forward: a late "preparing" does not undo. */
		if (p > m->phase)
			mig_set_phase(m, p, NULL);
	}
	mig_maybe_close(m);
}

void
migrate_agent_refused(struct hvd *hvd, struct fleet_host *fh, json_t *params)
{
	char peer[MSG_MIG_ADDR_MAX + 1], reason[MSG_VM_REASON_MAX + 1];
	char detail[400];

	mig_clean(peer, sizeof(peer), json_string_value(json_object_get(params,
	    "peer")));
	mig_clean(reason, sizeof(reason), json_string_value(json_object_get(
	    params, "reason")));
	mig_refused_total++;
	snprintf(detail, sizeof(detail), "refused a migration connection from "
	    "%s: %s", peer, reason);
	log_warnx("host %s: %s", fleet_name(fh), detail);
	db_event_record(hvd->db, "migration.refused", fleet_name(fh),
	    fleet_name(fh), detail, hvd_now_wall());
}

void
migrate_host_list(struct hvd *hvd, int64_t host_id, json_t *vms)
{
	struct mig *m, *next;

	(void)hvd;
	for (m = TAILQ_FIRST(&migs); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		if (host_id != m->row.source_id && host_id != m->row.target_id)
			continue;
		/* The target is back: what it runs decides what waited. */
		if (host_id == m->row.target_id && m->outcome == OUT_NONE) {
			mig_decide_from_list(m, vms, m->restored ?
			    "after an hvd restart" : "after the target reconnected");
			continue;	/* mig_decide flushed, maybe closed it */
		}
		mig_flush_ends(m);
		mig_maybe_close(m);
	}
}

/* Loads what an earlier hvd left open; decided as the hosts reconnect. */
int
migrate_init(struct hvd *hvd)
{
	struct migration_row *rows = NULL;
	size_t n = 0;
	int r;

	if ((r = db_migration_open_list(hvd->db, &rows, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct mig *m = calloc(1, sizeof(*m));

		if (m == NULL) {
			free(rows);
			return -ENOMEM;
		}
		m->hvd = hvd;
		m->row = rows[i];
		m->restored = true;
		m->side[ROLE_SOURCE] = m->side[ROLE_TARGET] = SIDE_ACTIVE;
		m->phase = PH_PREPARING;
		if (strcmp(rows[i].outcome, "target") == 0) {
			m->outcome = OUT_TARGET;
			m->owe_end[ROLE_SOURCE] = true;
		} else if (strcmp(rows[i].outcome, "source") == 0) {
			m->outcome = OUT_SOURCE;
			m->owe_end[ROLE_SOURCE] = m->owe_end[ROLE_TARGET] = true;
		}
		TAILQ_INSERT_TAIL(&migs, m, entry);
		log_info("vm %s: migration from %s to %s was under way when hvd "
		    "stopped; %s", m->row.vm_name, m->row.source, m->row.target,
		    m->outcome == OUT_NONE ? "decided when the target reconnects" :
		    "both agents are told the outcome as they reconnect");
	}
	sodium_memzero(rows, n * sizeof(*rows));
	free(rows);
	return 0;
}

void
migrate_reserved(int64_t host_id, uint64_t *memory_mib, unsigned *vcpus)
{
	struct mig *m;

	*memory_mib = 0;
	*vcpus = 0;
	TAILQ_FOREACH(m, &migs, entry)
		if (m->outcome == OUT_NONE && m->row.target_id == host_id) {
			*memory_mib += m->memory_mib;
			*vcpus += m->vcpus;
		}
}

/* Before the agents stop: what is open stays open in the database; no
 * starter hears of it (they are shut down too). */
void
migrate_shutdown(void)
{
	struct mig *m;

	while ((m = TAILQ_FIRST(&migs)) != NULL) {
		TAILQ_REMOVE(&migs, m, entry);
		mig_free(m);
	}
}

void
migrate_metrics(FILE *f)
{
	struct mig *m;
	unsigned active = 0;

	TAILQ_FOREACH(m, &migs, entry)
		active++;
	fprintf(f, "# HELP hvd_migrations_active Migrations not yet finished.\n"
	    "# TYPE hvd_migrations_active gauge\nhvd_migrations_active %u\n"
	    "# HELP hvd_migrations_total Migrations decided since start, by "
	    "where the VM runs.\n# TYPE hvd_migrations_total counter\n"
	    "hvd_migrations_total{outcome=\"target\"} %llu\n"
	    "hvd_migrations_total{outcome=\"source\"} %llu\n"
	    "# HELP hvd_migration_refused_total Connections to an agent's "
	    "migration listener that it refused (migration.refused).\n"
	    "# TYPE hvd_migration_refused_total counter\n"
	    "hvd_migration_refused_total %llu\n", active,
	    (unsigned long long)mig_outcomes[OUT_TARGET],
	    (unsigned long long)mig_outcomes[OUT_SOURCE],
	    (unsigned long long)mig_refused_total);
}
