/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's fleet layer: the domain: hosts and their sessions, identity, VMs, the mesh plan.
 */
#ifndef HVD_FLEET_H
#define HVD_FLEET_H

#include "net.h"

/* fleet.c: the live state of every host (sessions, liveness, telemetry). */
struct fleet_host;
struct agent_conn;
struct fleet_sample {
	int64_t t;			/* wall seconds, start of the step */
	float cpu_percent, load1;
	uint64_t mem_used, mem_total;
	uint64_t rx_bps, tx_bps;
};
int fleet_init(struct hvd *hvd);
void fleet_shutdown(void);
struct fleet_host *fleet_get(struct hvd *hvd, const struct host_row *h);
struct fleet_host *fleet_find(const char *name);
struct fleet_host *fleet_by_id(int64_t id);
struct agent_conn *fleet_session(const struct fleet_host *fh);
/* Which session this is: a new one (a reconnect) has a larger number. */
uint64_t fleet_session_serial(const struct fleet_host *fh);
const char *fleet_name(const struct fleet_host *fh);
bool fleet_is_up(const struct fleet_host *fh);
/* Replay defence for handshake message 1: true if ts is newer. */
bool fleet_accept_timestamp(struct fleet_host *fh, uint64_t ts);
/* Attaches a session, closing any previous one (PROTOCOL.md section 9). */
void fleet_session_up(struct fleet_host *fh, struct agent_conn *ac);
void fleet_session_gone(struct fleet_host *fh, struct agent_conn *ac);
void fleet_heartbeat(struct fleet_host *fh);
void fleet_reset(struct fleet_host *fh);
/* The host's record was deleted: frees fh (closing its session, if any). */
void fleet_forget(struct fleet_host *fh);
void fleet_telemetry(struct fleet_host *fh, json_t *sample, int64_t now);
json_t *fleet_host_json(const struct fleet_host *fh);
json_t *fleet_telemetry_json(const struct fleet_host *fh);
void fleet_metrics(FILE *f);
size_t fleet_sessions(void);
int64_t fleet_host_id(const struct fleet_host *fh);
/* News of the live state, for whoever shows it (the dashboard's feed): a
 * host's telemetry arrived, or it went up or down.  Called on the loop
 * just after the change; one subscriber, NULL to stop. */
enum fleet_news { FLEET_NEWS_TELEMETRY, FLEET_NEWS_UP, FLEET_NEWS_DOWN };
typedef void fleet_news_cb(void *arg, const struct fleet_host *fh,
    enum fleet_news what);
void fleet_on_news(fleet_news_cb *cb, void *arg);

/* ident.c: host identity at boot time and the overlay route. */
/* Records a boot request of the machine q names (from ip); in lab mode
 * adopts an unknown one.  -EPERM: its fingerprint was retired. */
int ident_boot(struct hvd *hvd, const struct boot_query *q, const char *ip,
    bool stage2, struct host_row *h);
int ident_overlay(struct hvd *hvd, const struct host_row *h,
    const char *agent_key_hex, const char *token, unsigned char **out,
    size_t *len, char *err, size_t errlen);
bool ident_ip_allowed(struct hvd *hvd, const struct host_row *h,
    const char *ip);

/* mesh.c: the desired VXLAN mesh of each member, from the inventory. */
/* h's mesh as mesh.json text (malloc'd), NULL without an underlay IP. */
char *mesh_host_json(struct hvd *hvd, const struct host_row *h);
json_t *mesh_sync_json(int64_t host_id);
json_t *mesh_anchor_json(struct hvd *hvd);
int mesh_init(struct hvd *hvd);
void mesh_shutdown(void);

/* vm.c: VM lifecycle (commands to hosts, operations, reports). */
enum vm_action { VM_ACTION_CREATE, VM_ACTION_STOP, VM_ACTION_DESTROY,
	VM_ACTION_MIGRATE, VM_ACTION_REBOOT };
/* Sends action for v to its host and opens an operation: its id, or 0
 * when nothing was sent (*err says why; an unknown action is refused,
 * never mapped to another). */
uint64_t vm_start_action(struct hvd *hvd, const struct vm_row *v,
    enum vm_action action, char *err, size_t errlen);
/* Reserves this hvd's first block of operation ids (before any op). */
int vm_ops_init(struct hvd *hvd);
json_t *vm_op_json(uint64_t id);
/* A migrate operation (migrate.c drives it): phase preparing, state
 * pending.  Its id; updates take NULL (or bytes -1) for "unchanged". */
uint64_t vm_op_migrate_new(const struct vm_row *v, const char *source,
    const char *target);
void vm_op_migrate_update(uint64_t id, const char *phase, int64_t bytes,
    const char *mode, const char *state, const char *message);
/* The source's pre-copy round (1, 2, ...); it only ever grows. */
void vm_op_migrate_round(uint64_t id, unsigned round);
/* The vm.create params (PROTOCOL.md 6.2) for v, from its stored spec;
 * NULL with *err saying why. */
json_t *vm_create_params(struct hvd *hvd, const struct vm_row *v, char *err,
    size_t errlen);
void vm_agent_state(struct hvd *hvd, struct fleet_host *fh, json_t *params);
/* A host's session started: adopt its running VMs, report missing ones. */
void vm_host_up(struct hvd *hvd, struct fleet_host *fh, int64_t host_id);

/* migrate.c: live migration of a running VM (PROTOCOL.md 6.2). */
#define MIGRATE_TIMEOUT_S	300	/* timeout_s handed to both agents */
int migrate_init(struct hvd *hvd);
void migrate_shutdown(void);
/* The outcome, once, to whoever started it: moved to the target, or why
 * not (failed, or timed out with the outcome in doubt). */
typedef void migrate_done_cb(void *arg, bool moved, const char *why);
/* Starts moving v from src (its host) to dst: the operation's id, or 0
 * with *err saying why (the caller has checked both hosts).  done (may be
 * NULL) hears the outcome later, never from inside this call. */
uint64_t migrate_start(struct hvd *hvd, const struct vm_row *v,
    const struct host_row *src, const struct host_row *dst, const char *actor,
    migrate_done_cb *done, void *done_arg, char *err, size_t errlen);
/* What the unfinished migrations to host_id will need there. */
void migrate_reserved(int64_t host_id, uint64_t *memory_mib,
    unsigned *vcpus);
/* True while a migration of uuid is unfinished. */
bool migrate_active(const char *uuid);
/* NAME--incoming or NAME--migratedaway: a migration's copy of a VM. */
bool migrate_domain_name(const char *name);
/* Notifies: vm.migration and migration.refused. */
void migrate_agent_report(struct hvd *hvd, struct fleet_host *fh,
    json_t *params);
void migrate_agent_refused(struct hvd *hvd, struct fleet_host *fh,
    json_t *params);
/* host_id's session came up and listed its domains: decide what waits on
 * it, and tell it any outcome it has not heard. */
void migrate_host_list(struct hvd *hvd, int64_t host_id, json_t *vms);
/* For /metrics: migration.refused notifies, and migrations by outcome. */
void migrate_metrics(FILE *f);

/* place.c: where a VM goes (create, migrate and drain all place here). */
/* Picks a host for s among the named, unretired hosts other than
 * leaving_id (0: none): 0 and *out; -ENOSPC with *err saying host by host
 * why none fits; another -errno with *err saying so. */
int place_pick(struct hvd *hvd, const struct vm_spec *s, int64_t leaving_id,
    struct host_row *out, char *err, size_t errlen);

/* move.c: the rules of moving a running VM (REST and drain). */
struct vm_move {
	struct host_row source, target;
	uint64_t op;			/* the migrate operation */
};
/* Starts moving v to to ("": where the scheduler picks): 0 and *out, or
 * -errno with *err saying why: -ENOENT or -EINVAL for a bad to, -EIO or
 * -ENOMEM inside hvd, any other for a move the rules refuse. */
int vm_move(struct hvd *hvd, const struct vm_row *v, const char *to,
    const char *actor, migrate_done_cb *done, void *done_arg,
    struct vm_move *out, char *err, size_t errlen);

/* drain.c: hvctl host drain: the host takes no new VMs (the mark is
 * stored) and its running VMs migrate away, DRAIN_PARALLEL at a time. */
#define DRAIN_PARALLEL	2
/* Marks h draining and starts moving its VMs; a drain of h already under
 * way goes on (0 either way).  -errno with *err saying why not. */
int drain_start(struct hvd *hvd, const struct host_row *h, const char *actor,
    char *err, size_t errlen);
/* Clears the mark: no further VM of h's drain starts to move (those
 * moving finish).  -errno on a database error. */
int drain_stop(struct hvd *hvd, const struct host_row *h, const char *actor);
/* The newest drain of host_id, VM by VM, or NULL if none since hvd
 * started. */
json_t *drain_json(int64_t host_id);
void drain_shutdown(void);

/* console.c: interactive consoles, brokered between API callers and
 * agents (PROTOCOL.md 6.2 vm.console_*). */
#define CONSOLE_OWNER_MAX	47	/* an http_request's actor */
#define CONSOLE_REASON_MAX	320	/* why a session ended */
/* What a read returns: the bytes after its offset that the ring still
 * holds (data is malloc'd, the consumer's: console_chunk_dispose()). */
struct console_chunk {
	uint8_t *data;
	size_t len;
	uint64_t next;		/* the offset after data: the next from */
	uint64_t lost;		/* bytes after from the ring no longer held */
	bool closed;		/* the session has ended: reason says why */
	char reason[CONSOLE_REASON_MAX + 1];
	char vm[API_NAME_MAX + 1];
};
/* ID is the new session's on success (ERR 0), else NULL with ERR -errno
 * (-EREMOTEIO the agent refused, -ETIMEDOUT, -ENOTCONN, -EPROTO) and WHY. */
typedef void console_attach_cb(void *arg, const char *id, int err,
    const char *why);
/* K's data is the callee's to dispose. */
typedef void console_read_cb(void *arg, struct console_chunk *k);
/* ERR 0: the agent took it; else -errno as above, with WHY. */
typedef void console_input_cb(void *arg, int err, const char *why);
int console_init(struct hvd *hvd);
/* Ends every session and answers every waiting read (after
 * agents_shutdown, before http_shutdown). */
void console_shutdown(void);
/*
 * Each returns -errno with err saying why: -ENOENT (no such session of
 * OWNER's: unknown, another caller's, detached or forgotten), -ESRCH (the
 * VM does not run), -ENOTCONN (its host has no session), -EBUSY (the VM
 * has CONSOLE_PER_VM_MAX sessions; too many inputs in flight), -EMFILE
 * (hvd's CONSOLE_MAX), -EPIPE (input to a closed session), -ERANGE (FROM
 * past the end), -EIO, -ENOMEM.  No callback runs from inside the call.
 */
int console_attach(struct hvd *hvd, const struct vm_row *v, const char *owner,
    console_attach_cb *cb, void *arg, char *err, size_t errlen);
/* 1 with *out filled (data past FROM, or the session closed, or WAIT_S 0),
 * or 0: CB gets it later (data, close, or WAIT_S seconds after NOW_MS,
 * monotonic milliseconds). */
int console_read(const char *id, const char *owner, uint64_t from,
    unsigned wait_s, int64_t now_ms, console_read_cb *cb, void *arg,
    struct console_chunk *out, char *err, size_t errlen);
int console_input(const char *id, const char *owner, const uint8_t *data,
    size_t len, console_input_cb *cb, void *arg, char *err, size_t errlen);
/* The session is forgotten at once (a waiting read hears "detached"). */
int console_detach(const char *id, const char *owner, char *err,
    size_t errlen);
void console_chunk_dispose(struct console_chunk *k);
/* OWNER's sessions, for GET /api/v1/consoles. */
json_t *console_list_json(const char *owner, int64_t now_ms);
/* Waiting reads past their time are answered; sessions no one read for
 * CONSOLE_IDLE_S are detached.  The timer's pass, at NOW_MS (tests). */
void console_sweep(int64_t now_ms);
/* session.c's notifications and the end of a host's session. */
void console_agent_output(struct hvd *hvd, struct fleet_host *fh,
    json_t *params);
void console_agent_closed(struct hvd *hvd, struct fleet_host *fh,
    json_t *params);
void console_host_gone(struct fleet_host *fh);

/* session.c: what an agent session means (the listener's struct agent_ops,
 * wired by main.c), and requests to a host's agent. */
int session_authorize(struct hvd *hvd, const uint8_t pubkey[32],
    uint64_t timestamp, struct host_row *h, char *why, size_t whylen);
struct fleet_host *session_hello(struct hvd *hvd, struct agent_conn *ac,
    const struct host_row *h, json_t *params, const char *peer, char *why,
    size_t whylen);
void session_up(struct hvd *hvd, struct fleet_host *fh, int64_t host_id);
void session_heartbeat(struct fleet_host *fh);
int session_notify(struct hvd *hvd, struct fleet_host *fh, const char *method,
    json_t *params, char *why, size_t whylen);
void session_gone(struct fleet_host *fh, struct agent_conn *ac);
/* agents_request() to fh's session: -ENOTCONN when it has none. */
int fleet_request(struct fleet_host *fh, const char *method, json_t *params,
    agent_reply_cb cb, void *arg);

#endif
