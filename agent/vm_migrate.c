/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Migration of one VM between two agents (PROTOCOL.md 6.2 "Live
 * migration", section 11): the methods vm.migrate_in (target),
 * vm.migrate_out (source) and vm.migrate_end (either), and the glue
 * between the handshake state machine (migrate_fsm.c), the channel's I/O
 * (migrate_io.c) and libxl's suspend, restore, rename, unpause, resume and
 * destroy.  migrate_fsm.c decides; this file only does what its actions
 * say and feeds back what happened.
 *
 * The stream: libxl writes (source) or reads (target) one end of a
 * socketpair, migrate_io.c relays the other end as DATA frames.  The
 * source's suspend is "done" only when libxl's op finished *and* the relay
 * read its end to EOF, so END never overtakes a byte of the stream.  The
 * target's READY offers LZ4 (PROTOCOL.md 11.4); migrate_io.c compresses
 * and decodes, and every byte count here is of the raw stream.
 *
 * The mode is chosen here, from the hypervisor: live (pre-copy in rounds)
 * when Xen can log a PV guest's dirty pages, which needs shadow paging;
 * stop-copy (suspend, then one copy) when it cannot.
 *
 * Invariants: at most one migration per VM (vm->mig); a struct vm_mig
 * lives until its state machine is over and no libxl op of it runs;
 * libxl's end of the socketpair is closed only after its op finished; the
 * one-time key is wiped as soon as the channel holds it.
 * Must never: unpause a target copy before GO, resume a source copy after
 * GO without the target's or hvd's word, log a key, or send vm.state for a
 * copy that leaves because it moved.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <sodium.h>

#include "agent.h"
#include "domain.h"
#include "log.h"
#include "migchan.h"
#include "migrate_fsm.h"
#include "migrate_io.h"
#include "migrate_rounds.h"
#include "msg.h"
#include "vm.h"
#include "vm_internal.h"

#define MIG_SUFFIX_IN		VM_MIG_SUFFIX_IN
#define MIG_SUFFIX_AWAY		VM_MIG_SUFFIX_AWAY
#define MIG_PROGRESS_MS		1000	/* vm.migration "copying", at most */
#define MIG_REFUSED_PEERS	16	/* refusal reports, one a minute each */
#define MIG_REFUSED_EVERY_S	60

enum mig_op { MO_NONE, MO_SUSPEND, MO_RESTORE };

struct vm_mig {
	struct vm *vm;
	struct mig_fsm fsm;
	char id[MSG_MIG_ID_HEX + 1];
	char dom_name[MSG_VM_NAME_MAX + 1];	/* the name this side's copy has */
	struct mig_io *io;
	struct mig_expect *expect;
	int xl_fd, io_fd;		/* the socketpair: libxl's, the relay's */
	bool live;
	enum mig_op op;			/* the libxl op in flight */
	bool op_ok, pumped;		/* source: both before OP_OK */
	bool renamed;			/* source: NAME--migratedaway */
	bool destroy;			/* this side's copy goes at the end */
	libxl_domain_config dc;		/* target: alive while restoring */
	bool dc_live;
	uint32_t new_domid;		/* target: the restored domain */
	struct event *ev_deadline, *ev_progress;
	uint64_t reported_bytes;	/* raw stream bytes */
	uint64_t wire_bytes;		/* what they took on the wire */
	struct mig_rounds rounds;	/* source: libxc's, from the stream */
	const char *logged_phase;	/* mig_fsm_phase()'s static text */
	char reason[MSG_VM_REASON_MAX + 1];
};

static void mig_feed(struct vm_mig *m, enum mig_event ev);

/* ---- reports ---- */

/* The io's counts, kept for the reports after the io is gone. */
static void
mig_count(struct vm_mig *m)
{
	if (m->io == NULL)
		return;
	m->reported_bytes = mig_io_bytes(m->io);
	m->wire_bytes = mig_io_wire_bytes(m->io);
}

/* The rounds for the last log line: "in N rounds", or why not known. */
static const char *
mig_rounds_text(const struct vm_mig *m)
{
	static char buf[64];
	unsigned n = mig_rounds_round(&m->rounds);

	if (m->fsm.role != MIG_SOURCE)
		return "";
	if (mig_rounds_broken(&m->rounds) != NULL)
		snprintf(buf, sizeof(buf), " (rounds unknown: %s)",
		    mig_rounds_broken(&m->rounds));
	else
		snprintf(buf, sizeof(buf), " in %u round%s", n, n == 1 ? "" : "s");
	return buf;
}

static void
mig_report(struct vm_mig *m)
{
	const char *phase = mig_fsm_phase(&m->fsm);
	char sizes[128] = "";
	json_t *p;

	p = json_pack("{s:s, s:s, s:s, s:s}", "uuid", m->vm->uuid, "id", m->id,
	    "role", m->fsm.role == MIG_SOURCE ? "source" : "target", "phase",
	    phase);
	if (p == NULL)
		return;
	if (m->io != NULL || m->reported_bytes > 0) {
		mig_count(m);
		json_object_set_new(p, "bytes",
		    json_integer((json_int_t)m->reported_bytes));
	}
	if (m->fsm.role == MIG_SOURCE && strcmp(phase, "preparing") != 0)
		json_object_set_new(p, "mode", json_string(m->live ? "live" :
		    "stop-copy"));
	if (m->fsm.role == MIG_SOURCE && mig_rounds_round(&m->rounds) > 0)
		json_object_set_new(p, "round", json_integer(
		    mig_rounds_round(&m->rounds) < MSG_MIG_ROUND_MAX ?
		    mig_rounds_round(&m->rounds) : MSG_MIG_ROUND_MAX));
	if (m->fsm.role == MIG_TARGET && m->fsm.state == MIG_DONE)
		json_object_set_new(p, "domid", json_integer(m->vm->domid));
	if (m->reason[0] != '\0' && (m->fsm.state == MIG_FAILED ||
	    m->fsm.state == MIG_S_INDOUBT))
		json_object_set_new(p, "reason", json_string(m->reason));
	/* The last line says what the stream cost on the wire. */
	if (mig_fsm_over(&m->fsm) && m->reported_bytes > 0)
		snprintf(sizes, sizeof(sizes), "; %s %.1f MB as %.1f MB%s",
		    m->fsm.role == MIG_SOURCE ? "sent" : "received",
		    (double)m->reported_bytes / 1e6,
		    (double)m->wire_bytes / 1e6, mig_rounds_text(m));
	/* The log gets each phase once; hvd gets the progress too. */
	if (m->logged_phase != phase)
		log_info("vm %s (%s): migration %s: %s%s%s%s", m->vm->name,
		    m->vm->uuid, m->fsm.role == MIG_SOURCE ? "out" : "in", phase,
		    m->reason[0] && m->fsm.state == MIG_FAILED ? ": " : "",
		    m->fsm.state == MIG_FAILED ? m->reason : "", sizes);
	m->logged_phase = phase;
	vm_notify_method(m->vm->av, "vm.migration", p);
}

static void
mig_why(struct vm_mig *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
mig_why(struct vm_mig *m, const char *fmt, ...)
{
	va_list ap;

	/* The first cause is the one worth reporting. */
	if (m->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(m->reason, sizeof(m->reason), fmt, ap);
	va_end(ap);
}

static void
mig_rounds_tap(void *arg, const uint8_t *p, size_t len)
{
	struct vm_mig *m = arg;

	mig_rounds_feed(&m->rounds, p, len);
}

static const struct timeval mig_progress_tv = { MIG_PROGRESS_MS / 1000, 0 };

static void
mig_progress_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vm_mig *m = arg;

	(void)fd;
	(void)what;
	if (m->io == NULL || strcmp(mig_fsm_phase(&m->fsm), "copying") != 0)
		return;
	if (mig_io_bytes(m->io) != m->reported_bytes)
		mig_report(m);
	evtimer_add(m->ev_progress, &mig_progress_tv);
}

/* ---- lifetime ---- */

static void
mig_close_fds(struct vm_mig *m)
{
	if (m->io_fd >= 0)
		close(m->io_fd);
	m->io_fd = -1;
	/* libxl's end stays while its op runs: its helper writes to it. */
	if (m->op == MO_NONE && m->xl_fd >= 0) {
		close(m->xl_fd);
		m->xl_fd = -1;
	}
}

void
vm_mig_free(struct vm_mig *m)
{
	if (m == NULL)
		return;
	mig_listener_unexpect(m->expect);
	mig_io_free(m->io);
	if (m->io_fd >= 0)
		close(m->io_fd);
	if (m->xl_fd >= 0)
		close(m->xl_fd);
	if (m->dc_live)
		libxl_domain_config_dispose(&m->dc);
	if (m->ev_deadline)
		event_free(m->ev_deadline);
	if (m->ev_progress)
		event_free(m->ev_progress);
	free(m);
}

/*
 * The migration is over and no libxl op of it runs: the VM goes on
 * without it, or this side's copy goes (it moved, or it never ran here),
 * without a vm.state, and the migration is freed with the VM.
 */
static void
mig_maybe_end(struct vm_mig *m)
{
	struct vm *vm = m->vm;

	if (!mig_fsm_over(&m->fsm) || m->op != MO_NONE)
		return;
	if (m->fsm.role == MIG_TARGET && m->fsm.state == MIG_FAILED)
		m->destroy = true;
	if (!m->destroy) {
		vm->mig = NULL;
		vm_mig_free(m);
		return;
	}
	m->destroy = false;
	if (vm->phase == VP_DESTROYING)
		return;
	vm->quiet = true;
	if (vm->domid == (uint32_t)INVALID_DOMID)
		vm_end(vm, "stopped", NULL);
	else
		vm_destroy_domain(vm);
}

static void
mig_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vm_mig *m = arg;

	(void)fd;
	(void)what;
	mig_why(m, "%s: timed out while %s", m->fsm.role == MIG_SOURCE ?
	    "source" : "target", mig_state_name(m->fsm.state));
	mig_feed(m, MIG_EV_TIMEOUT);
}

static struct vm_mig *
mig_new(struct vm *vm, enum mig_role role, const char *id, unsigned timeout_s)
{
	struct timeval tv = { (time_t)timeout_s, 0 };
	struct vm_mig *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->vm = vm;
	m->xl_fd = m->io_fd = -1;
	mig_fsm_init(&m->fsm, role);
	snprintf(m->id, sizeof(m->id), "%s", id);
	snprintf(m->dom_name, sizeof(m->dom_name), "%s", vm->name);
	if ((m->ev_deadline = evtimer_new(vm->av->base, mig_deadline_cb, m)) ==
	    NULL || (m->ev_progress = evtimer_new(vm->av->base,
	    mig_progress_cb, m)) == NULL) {
		vm_mig_free(m);
		return NULL;
	}
	evtimer_add(m->ev_deadline, &tv);
	return m;
}

/* ---- channel ---- */

static void
mig_on_accepted(void *arg, struct mig_io *io)
{
	struct vm_mig *m = arg;

	m->expect = NULL;
	m->io = io;
}

static void
mig_on_authed(void *arg)
{
	mig_feed(arg, MIG_EV_AUTHED);
}

static void
mig_on_frame(void *arg, enum migchan_type type, const uint8_t *payload,
    size_t len, bool final)
{
	static const enum mig_event from_source[MIGCHAN_TYPE_MAX + 1] = {
		[MIGCHAN_END] = MIG_EV_END, [MIGCHAN_GO] = MIG_EV_GO,
		[MIGCHAN_ABORT] = MIG_EV_ABORT,
	};
	static const enum mig_event from_target[MIGCHAN_TYPE_MAX + 1] = {
		[MIGCHAN_READY] = MIG_EV_READY,
		[MIGCHAN_RECEIVED] = MIG_EV_RECEIVED,
		[MIGCHAN_DONE] = MIG_EV_DONE, [MIGCHAN_ABORT] = MIG_EV_ABORT,
	};
	struct vm_mig *m = arg;
	const enum mig_event *map = m->fsm.role == MIG_SOURCE ? from_target :
	    from_source;
	enum mig_event ev;

	(void)final;
	/* 0 is MIG_EV_AUTHED: never a frame's meaning here. */
	if ((unsigned)type > MIGCHAN_TYPE_MAX || (ev = map[type]) == 0) {
		mig_why(m, "%s: the peer sent an unexpected frame (type %d)",
		    m->fsm.role == MIG_SOURCE ? "source" : "target", type);
		mig_feed(m, MIG_EV_BROKEN);
		return;
	}
	if (ev == MIG_EV_ABORT) {
		char peer_why[MSG_VM_REASON_MAX - 32];
		size_t n = len < sizeof(peer_why) - 1 ? len : sizeof(peer_why) - 1;

		for (size_t i = 0; i < n; i++)
			peer_why[i] = payload[i] >= 0x20 && payload[i] < 0x7f ?
			    (char)payload[i] : '?';
		peer_why[n] = '\0';
		mig_why(m, "%s", peer_why);
	}
	mig_feed(m, ev);
}

static void
mig_on_pumped(void *arg)
{
	struct vm_mig *m = arg;

	m->pumped = true;
	if (m->op_ok) {
		m->op_ok = false;
		mig_feed(m, MIG_EV_OP_OK);
	}
}

static void
mig_on_closed(void *arg, int err)
{
	struct vm_mig *m = arg;
	const char *side = m->fsm.role == MIG_SOURCE ? "source" : "target";

	mig_count(m);
	mig_io_free(m->io);
	m->io = NULL;
	if (err == -EBADMSG) {
		mig_why(m, "%s: the migration channel failed authentication",
		    side);
		mig_feed(m, MIG_EV_BROKEN);
	} else if (err == -EPROTO) {
		mig_why(m, "%s: the peer sent a compressed DATA block that "
		    "does not decode", side);
		mig_feed(m, MIG_EV_BROKEN);
	} else {
		mig_why(m, "%s: the migration connection was lost (%s)", side,
		    err == 0 ? "closed by the peer" : strerror(-err));
		mig_feed(m, MIG_EV_LINK_LOST);
	}
}

static const struct mig_io_ops mig_io_ops = {
	.accepted = mig_on_accepted,
	.authed = mig_on_authed,
	.frame = mig_on_frame,
	.pumped = mig_on_pumped,
	.closed = mig_on_closed,
};

static void
mig_send(struct vm_mig *m, enum migchan_type type, const void *p, size_t len,
    bool final)
{
	if (m->io == NULL)
		return;
	if (mig_io_send(m->io, type, p, len, final) < 0)
		log_warnx("vm %s: migration: cannot send frame %d", m->vm->name,
		    type);
}

/* ---- libxl ---- */

/* The socketpair of a stream: [0] libxl's (blocking), [1] the relay's. */
static int
mig_pair(struct vm_mig *m)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if (evutil_make_socket_nonblocking(sv[1]) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -EIO;
	}
	mig_io_pair_buffers(sv);
	m->xl_fd = sv[0];
	m->io_fd = sv[1];
	return 0;
}

static bool
mig_can_live(struct agent_vm *av, enum vm_type type)
{
	libxl_physinfo pi;
	bool live = false;

	libxl_physinfo_init(&pi);
	if (libxl_get_physinfo(av->ctx, &pi) == 0)
		live = type == VM_PV ? pi.cap_shadow :
		    (pi.cap_hap || pi.cap_shadow);
	libxl_physinfo_dispose(&pi);
	return live;
}

static int
mig_suspend(struct vm_mig *m)
{
	struct vm *vm = m->vm;
	libxl_asyncop_how how = vm_mig_how(vm);
	int rc;

	if (mig_pair(m) < 0 || mig_io_pump_from(m->io, m->io_fd) < 0) {
		mig_why(m, "source: cannot set up the stream");
		return -EIO;
	}
	mig_rounds_init(&m->rounds);
	mig_io_tap(m->io, mig_rounds_tap, m);
	xen_clear_err(vm->av->xen);
	vm->ops++;
	m->op = MO_SUSPEND;
	if ((rc = libxl_domain_suspend(vm->av->ctx, vm->domid, m->xl_fd,
	    m->live ? LIBXL_SUSPEND_LIVE : 0, &how)) != 0) {
		vm->ops--;
		m->op = MO_NONE;
		vm_xl_err(vm->av, rc, m->reason, sizeof(m->reason),
		    "source: suspend");
		return -EIO;
	}
	return 0;
}

static int
mig_restore(struct vm_mig *m)
{
	struct vm *vm = m->vm;
	libxl_asyncop_how how = vm_mig_how(vm);
	libxl_domain_restore_params params;
	char err[MSG_VM_REASON_MAX + 1];
	int rc;

	if (mig_pair(m) < 0 || mig_io_pump_to(m->io, m->io_fd) < 0) {
		mig_why(m, "target: cannot set up the stream");
		return -EIO;
	}
	libxl_domain_config_init(&m->dc);
	m->dc_live = true;
	if (dom_config_build(&vm->spec, &m->dc, err, sizeof(err)) < 0) {
		mig_why(m, "target: %s", err);
		return -EINVAL;
	}
	free(m->dc.c_info.name);
	if ((m->dc.c_info.name = strdup(m->dom_name)) == NULL)
		return -ENOMEM;
	libxl_domain_restore_params_init(&params);
	params.checkpointed_stream = LIBXL_CHECKPOINTED_STREAM_NONE;
	params.stream_version = 2;
	xen_clear_err(vm->av->xen);
	m->new_domid = (uint32_t)INVALID_DOMID;
	vm->ops++;
	m->op = MO_RESTORE;
	rc = libxl_domain_create_restore(vm->av->ctx, &m->dc, &m->new_domid,
	    m->xl_fd, -1, &params, &how, NULL);
	libxl_domain_restore_params_dispose(&params);
	if (rc != 0) {
		vm->ops--;
		m->op = MO_NONE;
		vm_xl_err(vm->av, rc, m->reason, sizeof(m->reason),
		    "target: restore");
		return -EIO;
	}
	return 0;
}

/* vm.c's queue calls this on the loop when a suspend or restore ended. */
void
vm_mig_op_done(struct vm *vm, int rc)
{
	struct vm_mig *m = vm->mig;
	enum mig_op op;

	if (m == NULL)
		return;
	op = m->op;
	m->op = MO_NONE;
	if (m->xl_fd >= 0) {
		close(m->xl_fd);
		m->xl_fd = -1;
	}
	if (m->dc_live) {
		libxl_domain_config_dispose(&m->dc);
		m->dc_live = false;
	}
	if (op == MO_RESTORE && m->new_domid != (uint32_t)INVALID_DOMID)
		vm->domid = m->new_domid;
	if (mig_fsm_over(&m->fsm)) {
		/* Decided while the op ran: a restored copy goes. */
		if (op == MO_RESTORE)
			m->destroy = true;
		mig_maybe_end(m);
		return;
	}
	if (rc != 0) {
		char err[MSG_VM_REASON_MAX + 1];

		vm_xl_err(vm->av, rc, err, sizeof(err), op == MO_SUSPEND ?
		    "source: suspend" : "target: restore");
		mig_why(m, "%s", err);
		mig_feed(m, MIG_EV_OP_FAILED);
		return;
	}
	if (op == MO_SUSPEND && !m->pumped) {
		m->op_ok = true;	/* OP_OK when the relay hits EOF */
		return;
	}
	mig_feed(m, MIG_EV_OP_OK);
}

static int
mig_rename(struct vm_mig *m, const char *to)
{
	struct vm *vm = m->vm;
	int rc;

	xen_clear_err(vm->av->xen);
	if ((rc = libxl_domain_rename(vm->av->ctx, vm->domid, m->dom_name,
	    to)) != 0) {
		log_warnx("vm %s: cannot rename domain %u from %s to %s: %s",
		    vm->name, vm->domid, m->dom_name, to,
		    xen_lasterr(vm->av->xen));
		return -EIO;
	}
	snprintf(m->dom_name, sizeof(m->dom_name), "%s", to);
	return 0;
}

static void
mig_resumed(libxl_ctx *ctx, int rc, void *arg)
{
	(void)ctx;
	(void)arg;
	if (rc != 0)
		log_warnx("vm: resuming a domain after a failed migration "
		    "failed: libxl error %d", rc);
}

static const libxl_asyncop_how mig_resume_how = { .callback = mig_resumed };

static void
mig_resume(struct vm_mig *m)
{
	struct vm *vm = m->vm;
	int rc;

	if (m->renamed && mig_rename(m, vm->name) == 0)
		m->renamed = false;
	xen_clear_err(vm->av->xen);
	/* suspend_cancel: the guest returns from its suspend and goes on. */
	if ((rc = libxl_domain_resume(vm->av->ctx, vm->domid, 1,
	    &mig_resume_how)) != 0)
		log_warnx("vm %s: cannot resume domain %u: %s", vm->name,
		    vm->domid, xen_lasterr(vm->av->xen));
}

/* Target: the restored copy becomes the VM. */
static int
mig_switch(struct vm_mig *m)
{
	struct vm *vm = m->vm;
	char from[PATH_MAX], to[PATH_MAX];
	int rc;

	/* xenconsoled named the log after the incoming name. */
	snprintf(from, sizeof(from), VM_CONSOLE_DIR "/guest-%s.log",
	    m->dom_name);
	if (mig_rename(m, vm->name) < 0) {
		mig_why(m, "target: cannot rename the incoming domain");
		return -EIO;
	}
	snprintf(to, sizeof(to), VM_CONSOLE_DIR "/guest-%s.log", vm->name);
	if (rename(from, to) < 0 && errno != ENOENT)
		log_warn("vm %s: console log %s", vm->name, from);
	xen_clear_err(vm->av->xen);
	if ((rc = libxl_domain_unpause(vm->av->ctx, vm->domid, NULL)) != 0) {
		vm_xl_err(vm->av, rc, m->reason, sizeof(m->reason),
		    "target: unpause");
		return -EIO;
	}
	vm->phase = VP_RUNNING;
	vm->after = VA_STOPPED;
	vm->quiet = false;
	(void)vm_watch(vm);
	return 0;
}

/* ---- the machine ---- */

static void
mig_cancel(struct vm_mig *m, enum mig_event *next)
{
	/* libxl's helper sees its stream end and fails the op. */
	if (m->io_fd >= 0)
		close(m->io_fd);
	m->io_fd = -1;
	/* No op (a suspend done, its relay not drained): nothing to wait. */
	if (m->op == MO_NONE)
		*next = MIG_EV_OP_FAILED;
}

/* Does ACTIONS; a synchronous op's outcome comes back as *NEXT. */
static void
mig_do(struct vm_mig *m, unsigned a, enum mig_event *next)
{
	struct vm *vm = m->vm;
	char away[MSG_VM_NAME_MAX + 1];

	if (a & MIG_A_SUSPEND) {
		if (mig_suspend(m) < 0)
			*next = MIG_EV_OP_FAILED;
		else
			evtimer_add(m->ev_progress, &mig_progress_tv);
	}
	if (a & MIG_A_RESTORE) {
		if (mig_restore(m) < 0)
			*next = MIG_EV_OP_FAILED;
		else
			evtimer_add(m->ev_progress, &mig_progress_tv);
	}
	if (a & MIG_A_SEND_READY) {
		/* What this target takes: LZ4 DATA (PROTOCOL.md 11.4). */
		static const uint8_t caps[] = { MIGCHAN_CAP_LZ4 };

		mig_send(m, MIGCHAN_READY, caps, sizeof(caps), false);
	}
	if (a & MIG_A_SEND_END)
		mig_send(m, MIGCHAN_END, NULL, 0, false);
	if (a & MIG_A_SEND_RECEIVED)
		mig_send(m, MIGCHAN_RECEIVED, NULL, 0, false);
	if (a & MIG_A_RENAME_AWAY) {
		/* Before GO, so a restarted agent can tell its copy left. */
		snprintf(away, sizeof(away), "%.*s%s",
		    (int)(sizeof(away) - sizeof(MIG_SUFFIX_AWAY)), vm->name,
		    MIG_SUFFIX_AWAY);
		if (mig_rename(m, away) == 0)
			m->renamed = true;
	}
	if (a & MIG_A_SEND_GO)
		mig_send(m, MIGCHAN_GO, NULL, 0, true);
	if (a & MIG_A_SWITCH)
		*next = mig_switch(m) == 0 ? MIG_EV_OP_OK : MIG_EV_OP_FAILED;
	if (a & MIG_A_SEND_DONE) {
		uint8_t d[4] = { vm->domid >> 24, vm->domid >> 16,
			vm->domid >> 8, vm->domid };

		mig_send(m, MIGCHAN_DONE, d, sizeof(d), true);
	}
	if (a & MIG_A_SEND_ABORT) {
		const char *why = m->reason[0] ? m->reason : "aborted";

		mig_send(m, MIGCHAN_ABORT, why, strlen(why), true);
	}
	if (a & MIG_A_CANCEL)
		mig_cancel(m, next);
	if (a & MIG_A_RESUME)
		mig_resume(m);
	if (a & MIG_A_CLOSE) {
		mig_listener_unexpect(m->expect);
		m->expect = NULL;
		mig_count(m);
		if (m->io != NULL)
			mig_io_finish(m->io);
		m->io = NULL;
		if (m->op == MO_NONE)
			mig_close_fds(m);
	}
	if (a & MIG_A_REPORT)
		mig_report(m);
	/* Done by mig_maybe_end(), once no op of ours runs. */
	if (a & MIG_A_DESTROY)
		m->destroy = true;
}

static void
mig_feed(struct vm_mig *m, enum mig_event ev)
{
	struct vm *vm = m->vm;
	enum mig_state was;
	unsigned a;

	while ((unsigned)ev < MIG_EV_N) {
		enum mig_event next = MIG_EV_N;

		was = m->fsm.state;
		a = mig_fsm_step(&m->fsm, ev);
		if (m->fsm.state != was)
			log_debug("vm %s: migration: %s: %s -> %s", vm->name,
			    mig_event_name(ev), mig_state_name(was),
			    mig_state_name(m->fsm.state));
		if (mig_fsm_over(&m->fsm)) {
			evtimer_del(m->ev_deadline);
			evtimer_del(m->ev_progress);
		}
		mig_do(m, a, &next);
		ev = next;
	}
	/* Last: it may free the VM, and M with it. */
	mig_maybe_end(m);
}

/* ---- the methods ---- */

static int
mig_sockaddr(const char *peer, unsigned port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, peer, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, peer, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -EINVAL;
}

/* Wipes a JSON string's own bytes in place (the params are the caller's
 * and freed after; a key must not linger in freed heap). */
static void
mig_wipe_string(const json_t *j)
{
	const char *s = json_string_value(j);

	if (s != NULL)
		sodium_memzero((char *)(uintptr_t)s, strlen(s));
}

/* The channel's end from the params' id, key and peer_key. */
static int
mig_chan(struct agent_vm *av, const json_t *params, enum migchan_role role,
    struct migchan *ch, char *err, size_t errlen)
{
	uint8_t id[MIGCHAN_ID_LEN], peer_pk[32];
	uint8_t *k;
	int r = -EINVAL;

	if ((k = sodium_malloc(MIGCHAN_KEY_LEN)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (sodium_hex2bin(id, sizeof(id), json_string_value(json_object_get(
	    params, "id")), MSG_MIG_ID_HEX, NULL, NULL, NULL) != 0 ||
	    sodium_hex2bin(k, MIGCHAN_KEY_LEN, json_string_value(
	    json_object_get(params, "key")), MSG_MIG_KEY_HEX, NULL, NULL,
	    NULL) != 0 ||
	    sodium_hex2bin(peer_pk, sizeof(peer_pk), json_string_value(
	    json_object_get(params, "peer_key")), MSG_MIG_KEY_HEX, NULL, NULL,
	    NULL) != 0) {
		snprintf(err, errlen, "id, key or peer_key is not hex");
		goto out;
	}
	if (av->mig_sk == NULL) {
		snprintf(err, errlen, "this agent has no key for migrations");
		goto out;
	}
	if ((r = migchan_init(ch, role, id, k, av->mig_sk, peer_pk)) < 0)
		snprintf(err, errlen, "key or peer_key refused (all zero or a "
		    "low-order point)");
out:
	sodium_free(k);		/* wipes */
	mig_wipe_string(json_object_get(params, "key"));
	return r;
}

static void
mig_refused(void *arg, const char *peer, const char *why)
{
	struct agent_vm *av = arg;
	time_t now = time(NULL);
	size_t slot = 0;

	log_warnx("migration: refused a connection from %s: %s", peer, why);
	for (size_t i = 0; i < MIG_REFUSED_PEERS; i++) {
		if (strcmp(av->refused[i].peer, peer) == 0) {
			slot = i;
			break;
		}
		if (av->refused[i].at < av->refused[slot].at)
			slot = i;
	}
	if (strcmp(av->refused[slot].peer, peer) == 0 &&
	    now - av->refused[slot].at < MIG_REFUSED_EVERY_S)
		return;
	snprintf(av->refused[slot].peer, sizeof(av->refused[slot].peer), "%s",
	    peer);
	av->refused[slot].at = now;
	vm_notify_method(av, "migration.refused", json_pack("{s:s, s:s}",
	    "peer", peer, "reason", why));
}

static const struct mig_listener_ops mig_listener_ops = {
	.refused = mig_refused,
};

static struct mig_listener *
mig_listener(struct agent_vm *av)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6,
		.sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in s4 = { .sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_ANY) };

	if (av->mig_listener != NULL)
		return av->mig_listener;
	/* Both families on one socket where the host has IPv6. */
	if ((av->mig_listener = mig_listener_new(av->base,
	    (struct sockaddr *)&s6, sizeof(s6), &mig_listener_ops, av)) ==
	    NULL)
		av->mig_listener = mig_listener_new(av->base,
		    (struct sockaddr *)&s4, sizeof(s4), &mig_listener_ops, av);
	if (av->mig_listener != NULL)
		log_info("migration: listening on port %d",
		    mig_listener_port(av->mig_listener));
	return av->mig_listener;
}

json_t *
agent_vm_migrate_in(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	json_t *vmp = json_object_get(params, "vm");
	struct migchan ch;
	struct mig_listener *l;
	struct vm_mig *m = NULL;
	struct vm *vm;
	const char *name, *uuid;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	/* The schema checked vmp's fields; vm_cmd_new_from() the rest. */
	name = json_string_value(json_object_get(vmp, "name"));
	uuid = json_string_value(json_object_get(vmp, "uuid"));
	if (json_object_get(vmp, "disk") != NULL) {
		snprintf(err, errlen, "disk xvda is a writable local copy on "
		    "the source; it cannot move live");
		return NULL;
	}
	if ((vm = vm_find(av, uuid, name)) != NULL) {
		snprintf(err, errlen, "%s %s runs here already", strcmp(vm->uuid,
		    uuid) == 0 ? "VM" : "a VM named", strcmp(vm->uuid, uuid) ==
		    0 ? uuid : name);
		return NULL;
	}
	if ((l = mig_listener(av)) == NULL) {
		snprintf(err, errlen, "cannot listen for migrations: %s",
		    strerror(errno));
		return NULL;
	}
	if ((vm = vm_cmd_new_from(av, vmp, err, errlen)) == NULL)
		return NULL;
	if ((m = mig_new(vm, MIG_TARGET, json_string_value(json_object_get(
	    params, "id")), (unsigned)json_integer_value(json_object_get(params,
	    "timeout_s")))) == NULL)
		goto nomem;
	vm->mig = m;
	vm->quiet = true;	/* until it runs here, it is not a VM here */
	snprintf(m->dom_name, sizeof(m->dom_name), "%.*s%s",
	    (int)(sizeof(m->dom_name) - sizeof(MIG_SUFFIX_IN)), vm->name,
	    MIG_SUFFIX_IN);
	if (mig_chan(av, params, MIGCHAN_RESPONDER, &ch, err, errlen) < 0)
		goto fail;
	m->expect = mig_listener_expect(l, &ch, json_string_value(
	    json_object_get(params, "peer")), &mig_io_ops, m);
	migchan_dispose(&ch);
	if (m->expect == NULL) {
		snprintf(err, errlen, "cannot expect the source: %s",
		    strerror(errno));
		goto fail;
	}
	if (vm_cmd_fetch(vm, err, errlen) < 0)
		goto fail;
	log_info("vm %s (%s): migration in from %s", vm->name, vm->uuid,
	    json_string_value(json_object_get(params, "peer")));
	mig_report(m);
	return json_pack("{s:b, s:i}", "accepted", 1, "port",
	    mig_listener_port(l));
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	vm->mig = NULL;
	vm_mig_free(m);
	vm_end(vm, "failed", NULL);
	return NULL;
}

/* vm_cmd.c calls this when a migrating VM's images are in (R 0) or not. */
void
vm_mig_images(struct vm *vm, int r, const char *err)
{
	struct vm_mig *m = vm->mig;

	if (r < 0) {
		mig_why(m, "target: %s", err);
		mig_feed(m, MIG_EV_IMAGES_FAILED);
		return;
	}
	mig_feed(m, MIG_EV_IMAGES_OK);
}

json_t *
agent_vm_migrate_out(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct migchan ch;
	struct vm_mig *m;
	struct vm *vm;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	if ((vm = vm_cmd_running(av, params, err, errlen)) == NULL)
		return NULL;
	if (vm->mig != NULL) {
		snprintf(err, errlen, "%s is migrating already", vm->name);
		return NULL;
	}
	if (vm->has_spec && vm->spec.disk[0] != '\0') {
		snprintf(err, errlen, "disk xvda is a writable local copy on "
		    "this host; it cannot move live");
		return NULL;
	}
	if (mig_sockaddr(json_string_value(json_object_get(params, "peer")),
	    (unsigned)json_integer_value(json_object_get(params, "port")), &ss,
	    &sslen) < 0) {
		snprintf(err, errlen, "peer is not a numeric address");
		return NULL;
	}
	if ((m = mig_new(vm, MIG_SOURCE, json_string_value(json_object_get(
	    params, "id")), (unsigned)json_integer_value(json_object_get(params,
	    "timeout_s")))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (mig_chan(av, params, MIGCHAN_INITIATOR, &ch, err, errlen) < 0) {
		vm_mig_free(m);
		return NULL;
	}
	m->live = mig_can_live(av, vm->has_spec ? vm->spec.type : VM_PV);
	m->io = mig_io_connect(av->base, (struct sockaddr *)&ss, sslen, &ch,
	    &mig_io_ops, m);
	migchan_dispose(&ch);
	if (m->io == NULL) {
		snprintf(err, errlen, "cannot connect to the target: %s",
		    strerror(errno));
		vm_mig_free(m);
		return NULL;
	}
	vm->mig = m;
	log_info("vm %s (%s): migration out to %s, %s", vm->name, vm->uuid,
	    json_string_value(json_object_get(params, "peer")), m->live ?
	    "live" : "stop-copy (this hypervisor has no shadow paging, so no "
	    "live pre-copy of PV guests)");
	mig_report(m);
	return json_pack("{s:b}", "accepted", 1);
}

bool
vm_mig_named(const char *name, const char *suffix)
{
	size_t nl = strlen(name), sl = strlen(suffix);

	return nl > sl && strcmp(name + nl - sl, suffix) == 0;
}

/* A domain of this uuid left behind by a migration this agent forgot. */
static json_t *
mig_end_orphan(struct agent_vm *av, const char *uuid, bool target_runs,
    char *err, size_t errlen)
{
	struct vm *vm = vm_find(av, uuid, NULL);
	int rc;

	if (vm == NULL)
		return json_pack("{s:s}", "state", "gone");
	if (vm_mig_named(vm->name, MIG_SUFFIX_AWAY)) {
		/* A source copy, suspended for good. */
		if (target_runs) {
			vm->quiet = true;
			vm_destroy_domain(vm);
			return json_pack("{s:s}", "state", "gone");
		}
		xen_clear_err(av->xen);
		vm->name[strlen(vm->name) - strlen(MIG_SUFFIX_AWAY)] = '\0';
		if ((rc = libxl_domain_rename(av->ctx, vm->domid, NULL,
		    vm->name)) != 0 || (rc = libxl_domain_resume(av->ctx,
		    vm->domid, 1, &mig_resume_how)) != 0) {
			vm_xl_err(av, rc, err, errlen, "resume");
			return NULL;
		}
		return json_pack("{s:s}", "state", "running");
	}
	if (vm_mig_named(vm->name, MIG_SUFFIX_IN)) {
		/* An incoming copy that never switched: never unpaused. */
		vm->quiet = true;
		vm_destroy_domain(vm);
		return json_pack("{s:s}", "state", "gone");
	}
	return json_pack("{s:s}", "state", vm->phase == VP_RUNNING ? "running" :
	    "gone");
}

json_t *
agent_vm_migrate_end(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	const char *uuid = json_string_value(json_object_get(params, "uuid"));
	const char *id = json_string_value(json_object_get(params, "id"));
	bool target_runs = strcmp(json_string_value(json_object_get(params,
	    "outcome")), "target") == 0;
	struct vm_mig *m;
	struct vm *vm;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	vm = vm_find(av, uuid, NULL);
	if (vm == NULL || (m = vm->mig) == NULL || strcmp(m->id, id) != 0)
		return mig_end_orphan(av, uuid, target_runs, err, errlen);
	mig_feed(m, target_runs ? MIG_EV_END_TARGET : MIG_EV_END_SOURCE);
	/* The VM may be gone now; its copy is on its way out if so. */
	vm = vm_find(av, uuid, NULL);
	return json_pack("{s:s}", "state", vm != NULL && !vm->quiet &&
	    vm->phase == VP_RUNNING ? "running" : "gone");
}

/* With its key the agent can be a target: its listener opens now, so a
 * stranger meets it (and is refused) whether or not a migration comes. */
void
agent_vm_set_key(struct agent_vm *av, const uint8_t sk[32])
{
	if (av->mig_sk == NULL && (av->mig_sk = sodium_malloc(32)) == NULL)
		return;
	memcpy(av->mig_sk, sk, 32);
	if (mig_listener(av) == NULL)
		log_warn("migration: cannot listen; this host cannot be a "
		    "migration target");
}
