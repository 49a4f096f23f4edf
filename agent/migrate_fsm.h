/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The live-migration handshake of one agent, as a pure state machine: no
 * I/O, no libxl, no clock.  agent/vm_migrate.c feeds it what happened (a
 * frame from the peer, a libxl op's outcome, the link lost, the deadline)
 * and does the actions it returns, feeding their outcomes back as events.
 *
 * The handshake (PROTOCOL.md 6.2 "Live migration", section 11):
 *
 *   target                                  source
 *   images fetched, peer authenticated
 *   restore started (paused)  -- READY -->  live suspend streams DATA
 *                             <-- END ---   suspended for good
 *   restored, still paused    - RECEIVED ->
 *                             <--  GO ---   renamed NAME--migratedaway
 *   renamed NAME, unpaused    --  DONE -->  destroys its copy
 *
 * The one rule that keeps a single copy: the target unpauses only after
 * GO, and the source sends GO only when its copy is suspended for good.
 * Before GO any failure resumes the source and destroys the target's copy.
 * After GO the target decides: it unpauses (DONE) or destroys its copy
 * (ABORT), and the source follows; if the link is lost before the source
 * hears which, it is *in doubt*: its copy stays suspended until hvd, which
 * hears from the target, ends it (MIG_EV_END_TARGET / MIG_EV_END_SOURCE).
 */
#ifndef HV_AGENT_MIGRATE_FSM_H
#define HV_AGENT_MIGRATE_FSM_H

#include <stdbool.h>

enum mig_role { MIG_SOURCE, MIG_TARGET };

enum mig_state {
	/* source */
	MIG_S_CONNECTING,	/* until the channel is authenticated */
	MIG_S_WAIT_READY,
	MIG_S_SUSPENDING,	/* libxl's live suspend streams */
	MIG_S_CANCELLING,	/* the suspend is being aborted */
	MIG_S_WAIT_RECEIVED,
	MIG_S_WAIT_DONE,	/* GO sent */
	MIG_S_INDOUBT,		/* GO sent, the answer lost: hvd decides */
	/* target */
	MIG_T_WAITING,		/* images and the peer's authentication */
	MIG_T_RESTORING,
	MIG_T_CANCELLING,	/* the restore is being aborted */
	MIG_T_WAIT_GO,
	MIG_T_SWITCHING,	/* renaming and unpausing */
	/* both */
	MIG_DONE,		/* the target's copy runs */
	MIG_FAILED,		/* the source's copy runs */
};

enum mig_event {
	MIG_EV_AUTHED,		/* the channel opened the peer's AUTH */
	MIG_EV_IMAGES_OK,	/* target: every image is in the cache */
	MIG_EV_IMAGES_FAILED,
	MIG_EV_READY,		/* frames from the peer */
	MIG_EV_END,
	MIG_EV_RECEIVED,
	MIG_EV_GO,
	MIG_EV_DONE,
	MIG_EV_ABORT,
	MIG_EV_LINK_LOST,	/* the connection closed or failed to open */
	MIG_EV_BROKEN,		/* a frame that did not open, or out of turn */
	MIG_EV_TIMEOUT,		/* the migration's deadline */
	MIG_EV_OP_OK,		/* the libxl op the last actions started */
	MIG_EV_OP_FAILED,
	MIG_EV_END_TARGET,	/* vm.migrate_end from hvd */
	MIG_EV_END_SOURCE,
	MIG_EV_N
};

/* What to do, in this order. */
enum mig_action {
	MIG_A_SEND_READY = 1 << 0,
	MIG_A_SEND_END = 1 << 1,
	MIG_A_SEND_RECEIVED = 1 << 2,
	MIG_A_SEND_GO = 1 << 3,
	MIG_A_SEND_DONE = 1 << 4,
	MIG_A_SEND_ABORT = 1 << 5,
	MIG_A_SUSPEND = 1 << 6,		/* source: start the live suspend */
	MIG_A_RESTORE = 1 << 7,		/* target: start the restore, paused */
	MIG_A_CANCEL = 1 << 8,		/* abort the libxl op in flight */
	MIG_A_RENAME_AWAY = 1 << 9,	/* source: NAME--migratedaway */
	MIG_A_RESUME = 1 << 10,		/* source: back to NAME, resumed */
	MIG_A_SWITCH = 1 << 11,		/* target: to NAME, unpaused */
	MIG_A_DESTROY = 1 << 12,	/* this side's copy goes */
	MIG_A_CLOSE = 1 << 13,		/* the channel is no longer needed */
	MIG_A_REPORT = 1 << 14,		/* vm.migration with the new phase */
};

struct mig_fsm {
	enum mig_role role;
	enum mig_state state;
	bool authed, images;		/* target: both before the restore */
	bool go_sent;			/* source: after this, no resume alone */
};

void mig_fsm_init(struct mig_fsm *f, enum mig_role role);
/*
 * One event: the new state is in F, the actions to do are returned (0:
 * nothing, which is also the answer to an event that does not apply in
 * this state).  A frame the peer had no business sending is a protocol
 * violation: the caller reports it as MIG_EV_BROKEN, never as
 * MIG_EV_ABORT, which only the peer's own ABORT frame is: after GO the
 * source resumes on the target's word alone.
 */
unsigned mig_fsm_step(struct mig_fsm *f, enum mig_event ev);
/* The state as vm.migration's "phase": preparing, copying, switching,
 * done, failed or indoubt. */
const char *mig_fsm_phase(const struct mig_fsm *f);
bool mig_fsm_over(const struct mig_fsm *f);
const char *mig_state_name(enum mig_state s);
const char *mig_event_name(enum mig_event e);

#endif
