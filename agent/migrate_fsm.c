/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The live-migration handshake as a state machine (migrate_fsm.h says what
 * it is for).  Every transition is here and nowhere else; vm_migrate.c only
 * does what the returned actions say.
 *
 * Failure, by where it happens:
 * - source, before the suspend: nothing to undo (FAILED);
 * - source, while suspending: the op is aborted first (CANCELLING), then the
 *   copy resumed;
 * - source, suspended, before GO: resumed; the target has not unpaused and
 *   never will (no GO), so its copy goes when it hears or times out;
 * - source, after GO: the target's word decides (DONE or ABORT); without it
 *   INDOUBT until hvd says which copy runs;
 * - target, any time before GO: its copy (if any) is destroyed;
 * - target, GO received: it switches; if that fails its copy is destroyed
 *   and ABORT tells the source to resume.  A link lost after GO changes
 *   nothing on the target: it runs and reports DONE to hvd.
 */
#include "migrate_fsm.h"

#define A_FAIL_PLAIN	(MIG_A_SEND_ABORT | MIG_A_CLOSE | MIG_A_REPORT)

void
mig_fsm_init(struct mig_fsm *f, enum mig_role role)
{
	f->role = role;
	f->state = role == MIG_SOURCE ? MIG_S_CONNECTING : MIG_T_WAITING;
	f->authed = f->images = f->go_sent = false;
}

static unsigned
to(struct mig_fsm *f, enum mig_state s, unsigned actions)
{
	f->state = s;
	return actions;
}

/* A failure that ends the attempt: is it before or after GO? */
static bool
mig_is_failure(enum mig_event ev)
{
	return ev == MIG_EV_ABORT || ev == MIG_EV_LINK_LOST ||
	    ev == MIG_EV_BROKEN ||
	    ev == MIG_EV_TIMEOUT || ev == MIG_EV_IMAGES_FAILED ||
	    ev == MIG_EV_END_SOURCE;
}

static unsigned
mig_source(struct mig_fsm *f, enum mig_event ev)
{
	switch (f->state) {
	case MIG_S_CONNECTING:
		if (ev == MIG_EV_AUTHED)
			return to(f, MIG_S_WAIT_READY, 0);
		break;
	case MIG_S_WAIT_READY:
		if (ev == MIG_EV_READY)
			return to(f, MIG_S_SUSPENDING, MIG_A_SUSPEND |
			    MIG_A_REPORT);
		break;
	case MIG_S_SUSPENDING:
		if (ev == MIG_EV_OP_OK)
			return to(f, MIG_S_WAIT_RECEIVED, MIG_A_SEND_END |
			    MIG_A_REPORT);
		if (ev == MIG_EV_OP_FAILED)
			return to(f, MIG_FAILED, MIG_A_RESUME | A_FAIL_PLAIN);
		if (mig_is_failure(ev))
			return to(f, MIG_S_CANCELLING, MIG_A_CANCEL |
			    MIG_A_SEND_ABORT | MIG_A_CLOSE);
		return 0;
	case MIG_S_CANCELLING:
		if (ev == MIG_EV_OP_OK || ev == MIG_EV_OP_FAILED)
			return to(f, MIG_FAILED, MIG_A_RESUME | MIG_A_REPORT);
		return 0;
	case MIG_S_WAIT_RECEIVED:
		if (ev == MIG_EV_RECEIVED) {
			f->go_sent = true;
			return to(f, MIG_S_WAIT_DONE, MIG_A_RENAME_AWAY |
			    MIG_A_SEND_GO);
		}
		if (mig_is_failure(ev))
			return to(f, MIG_FAILED, MIG_A_RESUME | A_FAIL_PLAIN);
		return 0;
	case MIG_S_WAIT_DONE:
		if (ev == MIG_EV_DONE || ev == MIG_EV_END_TARGET)
			return to(f, MIG_DONE, MIG_A_DESTROY | MIG_A_CLOSE |
			    MIG_A_REPORT);
		/* The target destroyed its copy after GO: ours is the one. */
		if (ev == MIG_EV_ABORT || ev == MIG_EV_END_SOURCE)
			return to(f, MIG_FAILED, MIG_A_RESUME | MIG_A_CLOSE |
			    MIG_A_REPORT);
		if (ev == MIG_EV_LINK_LOST || ev == MIG_EV_BROKEN ||
		    ev == MIG_EV_TIMEOUT)
			return to(f, MIG_S_INDOUBT, MIG_A_CLOSE | MIG_A_REPORT);
		return 0;
	case MIG_S_INDOUBT:
		if (ev == MIG_EV_END_TARGET)
			return to(f, MIG_DONE, MIG_A_DESTROY | MIG_A_REPORT);
		if (ev == MIG_EV_END_SOURCE)
			return to(f, MIG_FAILED, MIG_A_RESUME | MIG_A_REPORT);
		return 0;
	default:
		return 0;
	}
	/* CONNECTING and WAIT_READY: nothing of ours to undo. */
	if (mig_is_failure(ev))
		return to(f, MIG_FAILED, A_FAIL_PLAIN);
	return 0;
}

static unsigned
mig_target(struct mig_fsm *f, enum mig_event ev)
{
	switch (f->state) {
	case MIG_T_WAITING:
		if (ev == MIG_EV_AUTHED)
			f->authed = true;
		else if (ev == MIG_EV_IMAGES_OK)
			f->images = true;
		else if (mig_is_failure(ev))
			return to(f, MIG_FAILED, A_FAIL_PLAIN);
		else
			return 0;
		if (f->authed && f->images)
			return to(f, MIG_T_RESTORING, MIG_A_RESTORE |
			    MIG_A_SEND_READY | MIG_A_REPORT);
		return 0;
	case MIG_T_RESTORING:
		if (ev == MIG_EV_OP_OK)
			return to(f, MIG_T_WAIT_GO, MIG_A_SEND_RECEIVED |
			    MIG_A_REPORT);
		if (ev == MIG_EV_OP_FAILED)
			return to(f, MIG_FAILED, MIG_A_DESTROY | A_FAIL_PLAIN);
		if (mig_is_failure(ev))
			return to(f, MIG_T_CANCELLING, MIG_A_CANCEL |
			    MIG_A_SEND_ABORT | MIG_A_CLOSE);
		return 0;
	case MIG_T_CANCELLING:
		if (ev == MIG_EV_OP_OK || ev == MIG_EV_OP_FAILED)
			return to(f, MIG_FAILED, MIG_A_DESTROY | MIG_A_REPORT);
		return 0;
	case MIG_T_WAIT_GO:
		if (ev == MIG_EV_GO)
			return to(f, MIG_T_SWITCHING, MIG_A_SWITCH);
		if (mig_is_failure(ev))
			return to(f, MIG_FAILED, MIG_A_DESTROY | A_FAIL_PLAIN);
		return 0;
	case MIG_T_SWITCHING:
		if (ev == MIG_EV_OP_OK)
			return to(f, MIG_DONE, MIG_A_SEND_DONE | MIG_A_CLOSE |
			    MIG_A_REPORT);
		if (ev == MIG_EV_OP_FAILED)
			return to(f, MIG_FAILED, MIG_A_DESTROY | A_FAIL_PLAIN);
		/* GO was heard: the switch decides, not the link. */
		return 0;
	default:
		return 0;
	}
}

unsigned
mig_fsm_step(struct mig_fsm *f, enum mig_event ev)
{
	if ((unsigned)ev >= MIG_EV_N || mig_fsm_over(f))
		return 0;
	return f->role == MIG_SOURCE ? mig_source(f, ev) : mig_target(f, ev);
}

bool
mig_fsm_over(const struct mig_fsm *f)
{
	return f->state == MIG_DONE || f->state == MIG_FAILED;
}

const char *
mig_fsm_phase(const struct mig_fsm *f)
{
	switch (f->state) {
	case MIG_S_CONNECTING:
	case MIG_S_WAIT_READY:
	case MIG_T_WAITING:
		return "preparing";
	case MIG_S_SUSPENDING:
	case MIG_S_CANCELLING:
	case MIG_T_RESTORING:
	case MIG_T_CANCELLING:
		return "copying";
	case MIG_S_WAIT_RECEIVED:
	case MIG_S_WAIT_DONE:
	case MIG_T_WAIT_GO:
	case MIG_T_SWITCHING:
		return "switching";
	case MIG_S_INDOUBT:
		return "indoubt";
	case MIG_DONE:
		return "done";
	case MIG_FAILED:
		return "failed";
	}
	return "failed";
}

const char *
mig_state_name(enum mig_state s)
{
	static const char *const names[] = {
		[MIG_S_CONNECTING] = "connecting",
		[MIG_S_WAIT_READY] = "waiting for ready",
		[MIG_S_SUSPENDING] = "suspending",
		[MIG_S_CANCELLING] = "cancelling the suspend",
		[MIG_S_WAIT_RECEIVED] = "waiting for received",
		[MIG_S_WAIT_DONE] = "waiting for done",
		[MIG_S_INDOUBT] = "in doubt",
		[MIG_T_WAITING] = "waiting for images and the source",
		[MIG_T_RESTORING] = "restoring",
		[MIG_T_CANCELLING] = "cancelling the restore",
		[MIG_T_WAIT_GO] = "waiting for go",
		[MIG_T_SWITCHING] = "switching",
		[MIG_DONE] = "done",
		[MIG_FAILED] = "failed",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) && names[s] ?
	    names[s] : "?";
}

const char *
mig_event_name(enum mig_event e)
{
	static const char *const names[MIG_EV_N] = {
		[MIG_EV_AUTHED] = "authenticated",
		[MIG_EV_IMAGES_OK] = "images ready",
		[MIG_EV_IMAGES_FAILED] = "images failed",
		[MIG_EV_READY] = "READY",
		[MIG_EV_END] = "END",
		[MIG_EV_RECEIVED] = "RECEIVED",
		[MIG_EV_GO] = "GO",
		[MIG_EV_DONE] = "DONE",
		[MIG_EV_ABORT] = "ABORT",
		[MIG_EV_LINK_LOST] = "link lost",
		[MIG_EV_BROKEN] = "channel broken",
		[MIG_EV_TIMEOUT] = "timed out",
		[MIG_EV_OP_OK] = "libxl op done",
		[MIG_EV_OP_FAILED] = "libxl op failed",
		[MIG_EV_END_TARGET] = "hvd: the target runs",
		[MIG_EV_END_SOURCE] = "hvd: the source runs",
	};

	return (unsigned)e < MIG_EV_N ? names[e] : "?";
}
