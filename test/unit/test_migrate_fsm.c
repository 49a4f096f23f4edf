/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The migration handshake (agent/migrate_fsm.c): the happy path step by
 * step, then a small world of two agents, a link and libxl, in which every
 * failure is injected at every step under many interleavings.  Whatever
 * happens, at the end exactly one copy of the VM runs, the other is gone,
 * and both agents agree on which one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate_fsm.h"

static void
test_happy_path(void **state)
{
	struct mig_fsm s, t;

	(void)state;
	mig_fsm_init(&s, MIG_SOURCE);
	mig_fsm_init(&t, MIG_TARGET);
	assert_string_equal(mig_fsm_phase(&s), "preparing");
	assert_int_equal(mig_fsm_step(&t, MIG_EV_IMAGES_OK), 0);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_AUTHED), 0);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_AUTHED), MIG_A_RESTORE |
	    MIG_A_SEND_READY | MIG_A_REPORT);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_READY), MIG_A_SUSPEND |
	    MIG_A_REPORT);
	assert_string_equal(mig_fsm_phase(&s), "copying");
	assert_int_equal(mig_fsm_step(&s, MIG_EV_OP_OK), MIG_A_SEND_END |
	    MIG_A_REPORT);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_END), 0);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_OP_OK), MIG_A_SEND_RECEIVED |
	    MIG_A_REPORT);
	assert_string_equal(mig_fsm_phase(&t), "switching");
	assert_int_equal(mig_fsm_step(&s, MIG_EV_RECEIVED), MIG_A_RENAME_AWAY |
	    MIG_A_SEND_GO);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_GO), MIG_A_SWITCH);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_OP_OK), MIG_A_SEND_DONE |
	    MIG_A_CLOSE | MIG_A_REPORT);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_DONE), MIG_A_DESTROY |
	    MIG_A_CLOSE | MIG_A_REPORT);
	assert_true(mig_fsm_over(&s) && mig_fsm_over(&t));
	assert_string_equal(mig_fsm_phase(&s), "done");
	assert_string_equal(mig_fsm_phase(&t), "done");
	/* Over is over: nothing moves it again. */
	assert_int_equal(mig_fsm_step(&s, MIG_EV_ABORT), 0);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_TIMEOUT), 0);
	assert_int_equal(t.state, MIG_DONE);
}

static void
test_out_of_turn(void **state)
{
	struct mig_fsm s, t;

	(void)state;
	/* Frames the peer had no business sending change nothing. */
	mig_fsm_init(&s, MIG_SOURCE);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_READY), 0);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_DONE), 0);
	assert_int_equal(s.state, MIG_S_CONNECTING);
	mig_fsm_init(&t, MIG_TARGET);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_GO), 0);
	assert_int_equal(t.state, MIG_T_WAITING);
	/* GO before RECEIVED is ignored: the target never unpauses early. */
	mig_fsm_step(&t, MIG_EV_AUTHED);
	mig_fsm_step(&t, MIG_EV_IMAGES_OK);
	assert_int_equal(mig_fsm_step(&t, MIG_EV_GO), 0);
	assert_int_equal(t.state, MIG_T_RESTORING);
	assert_int_equal(mig_fsm_step(&t, (enum mig_event)99), 0);
	assert_string_equal(mig_event_name((enum mig_event)99), "?");
}

static void
test_indoubt(void **state)
{
	struct mig_fsm s;

	(void)state;
	mig_fsm_init(&s, MIG_SOURCE);
	mig_fsm_step(&s, MIG_EV_AUTHED);
	mig_fsm_step(&s, MIG_EV_READY);
	mig_fsm_step(&s, MIG_EV_OP_OK);
	mig_fsm_step(&s, MIG_EV_RECEIVED);
	assert_true(s.go_sent);
	/* After GO the link is lost: neither resume nor destroy alone. */
	assert_int_equal(mig_fsm_step(&s, MIG_EV_LINK_LOST), MIG_A_CLOSE |
	    MIG_A_REPORT);
	assert_string_equal(mig_fsm_phase(&s), "indoubt");
	assert_int_equal(mig_fsm_step(&s, MIG_EV_TIMEOUT), 0);
	assert_int_equal(mig_fsm_step(&s, MIG_EV_END_SOURCE), MIG_A_RESUME |
	    MIG_A_REPORT);
	assert_int_equal(s.state, MIG_FAILED);
}

/* --- the world ------------------------------------------------------- */

enum copy { C_NONE, C_RUNNING, C_SUSPENDED, C_PAUSED, C_GONE };

struct side {
	struct mig_fsm f;
	enum copy copy;
	bool op;			/* a libxl op in flight */
	unsigned op_action;		/* which */
	bool fail_next_op;
	bool cancelled;
	enum mig_event inbox[32];
	unsigned in_head, in_n;
	bool lost_pending;		/* LINK_LOST still to be delivered */
	bool end_seen;			/* target: the whole stream is in */
};

struct world {
	struct side s, t;
	bool link;
	unsigned seed;
	char trace[4096];
};

static unsigned
rnd(struct world *w)
{
	w->seed = w->seed * 1103515245u + 12345u;
	return (w->seed >> 16) & 0x7fff;
}

static void __attribute__((format(printf, 2, 3)))
tr(struct world *w, const char *fmt, ...)
{
	size_t n = strlen(w->trace);
	va_list ap;

	if (n + 80 >= sizeof(w->trace))
		return;
	va_start(ap, fmt);
	vsnprintf(w->trace + n, sizeof(w->trace) - n, fmt, ap);
	va_end(ap);
}

static void
post(struct world *w, struct side *to_side, enum mig_event ev)
{
	if (!w->link)
		return;
	assert_true(to_side->in_n < 32);
	to_side->inbox[(to_side->in_head + to_side->in_n++) % 32] = ev;
}

static void step(struct world *w, struct side *me, enum mig_event ev);

static void
act(struct world *w, struct side *me, unsigned a)
{
	struct side *peer = me == &w->s ? &w->t : &w->s;

	if (a & MIG_A_SEND_READY)
		post(w, peer, MIG_EV_READY);
	if (a & MIG_A_SEND_END)
		post(w, peer, MIG_EV_END);
	if (a & MIG_A_SEND_RECEIVED)
		post(w, peer, MIG_EV_RECEIVED);
	if (a & MIG_A_SEND_GO)
		post(w, peer, MIG_EV_GO);
	if (a & MIG_A_SEND_DONE)
		post(w, peer, MIG_EV_DONE);
	if (a & MIG_A_SEND_ABORT)
		post(w, peer, MIG_EV_ABORT);
	if (a & (MIG_A_SUSPEND | MIG_A_RESTORE | MIG_A_SWITCH)) {
		assert_false(me->op);
		me->op = true;
		me->cancelled = false;
		me->op_action = a & (MIG_A_SUSPEND | MIG_A_RESTORE |
		    MIG_A_SWITCH);
	}
	if (a & MIG_A_CANCEL) {
		assert_true(me->op);
		me->cancelled = true;
	}
	if (a & MIG_A_RESUME) {
		/* Only a copy that is there can be resumed. */
		assert_true(me == &w->s);
		assert_true(me->copy == C_SUSPENDED || me->copy == C_RUNNING);
		me->copy = C_RUNNING;
	}
	if (a & MIG_A_DESTROY) {
		/* A running copy is never destroyed by a migration. */
		assert_int_not_equal(me->copy, C_RUNNING);
		me->copy = me == &w->s ? C_GONE : C_NONE;
	}
}

static void
step(struct world *w, struct side *me, enum mig_event ev)
{
	unsigned a = mig_fsm_step(&me->f, ev);

	if (ev == MIG_EV_END)
		me->end_seen = true;

	tr(w, " %c:%s->%s", me == &w->s ? 'S' : 'T', mig_event_name(ev),
	    mig_state_name(me->f.state));
	act(w, me, a);
}

/* The libxl op in flight ends, failing when told to or cancelled. */
static void
op_end(struct world *w, struct side *me)
{
	bool ok = !me->fail_next_op && !me->cancelled;

	me->op = false;
	me->fail_next_op = false;
	switch (me->op_action) {
	case MIG_A_SUSPEND:
		if (ok)
			me->copy = C_SUSPENDED;
		break;
	case MIG_A_RESTORE:
		/* A cancelled or failed restore may leave a half-built
		 * domain: the destroy that follows must take it. */
		me->copy = C_PAUSED;
		break;
	case MIG_A_SWITCH:
		if (ok)
			me->copy = C_RUNNING;
		break;
	}
	step(w, me, ok ? MIG_EV_OP_OK : MIG_EV_OP_FAILED);
}

enum fault { F_NONE, F_CUT, F_CUT_ONE_SIDED, F_S_TIMEOUT, F_T_TIMEOUT,
    F_S_OP, F_T_OP, F_IMAGES, F_BROKEN_S, F_BROKEN_T, F_N };

static void
inject(struct world *w, enum fault f)
{
	tr(w, " [fault %d]", (int)f);
	switch (f) {
	case F_CUT:
	case F_CUT_ONE_SIDED:
		w->link = false;
		w->s.in_n = w->t.in_n = 0;
		w->s.lost_pending = true;
		/* One-sided: the target never notices (it will time out). */
		w->t.lost_pending = f == F_CUT;
		break;
	case F_S_TIMEOUT:
		step(w, &w->s, MIG_EV_TIMEOUT);
		break;
	case F_T_TIMEOUT:
		step(w, &w->t, MIG_EV_TIMEOUT);
		break;
	case F_S_OP:
		w->s.fail_next_op = true;
		break;
	case F_T_OP:
		w->t.fail_next_op = true;
		break;
	case F_IMAGES:
		step(w, &w->t, MIG_EV_IMAGES_FAILED);
		break;
	case F_BROKEN_S:	/* a frame the source could not open */
		w->link = false;
		w->s.in_n = w->t.in_n = 0;
		step(w, &w->s, MIG_EV_BROKEN);
		w->t.lost_pending = true;
		break;
	case F_BROKEN_T:
		w->link = false;
		w->s.in_n = w->t.in_n = 0;
		step(w, &w->t, MIG_EV_BROKEN);
		w->s.lost_pending = true;
		break;
	default:
		break;
	}
}

/* One thing happens, chosen by the seed; false when nothing can. */
static bool
tick(struct world *w)
{
	struct side *sides[2] = { &w->s, &w->t };
	unsigned start = rnd(w) % 2;

	for (unsigned k = 0; k < 2; k++) {
		struct side *me = sides[(start + k) % 2];
		bool can_msg = me->in_n > 0, can_op = me->op;

		/* A restore reads the stream to its end unless it fails. */
		if (can_op && me->op_action == MIG_A_RESTORE && !me->end_seen &&
		    !me->cancelled && !me->fail_next_op)
			can_op = false;

		if (!can_msg && !can_op && !me->lost_pending)
			continue;
		if (me->lost_pending && (rnd(w) % 3 == 0 ||
		    (!can_msg && !can_op))) {
			me->lost_pending = false;
			step(w, me, MIG_EV_LINK_LOST);
		} else if (can_msg && (!can_op || rnd(w) % 2)) {
			enum mig_event ev = me->inbox[me->in_head];

			me->in_head = (me->in_head + 1) % 32;
			me->in_n--;
			step(w, me, ev);
		} else if (can_op) {
			op_end(w, me);
		} else {
			continue;
		}
		return true;
	}
	return false;
}

/* Runs one migration with FAULT injected at tick AT; returns the number
 * of ticks the run took. */
static unsigned
run(enum fault fault, unsigned at, unsigned seed)
{
	struct world w;
	unsigned n = 0;

	memset(&w, 0, sizeof(w));
	w.seed = seed;
	w.link = true;
	mig_fsm_init(&w.s.f, MIG_SOURCE);
	mig_fsm_init(&w.t.f, MIG_TARGET);
	w.s.copy = C_RUNNING;
	w.t.copy = C_NONE;
	/* The images and the connection race each other. */
	if (rnd(&w) % 2) {
		step(&w, &w.t, MIG_EV_IMAGES_OK);
		step(&w, &w.s, MIG_EV_AUTHED);
		step(&w, &w.t, MIG_EV_AUTHED);
	} else {
		step(&w, &w.s, MIG_EV_AUTHED);
		step(&w, &w.t, MIG_EV_AUTHED);
		step(&w, &w.t, MIG_EV_IMAGES_OK);
	}
	for (;;) {
		if (n == at && fault != F_NONE)
			inject(&w, fault);
		if (!tick(&w))
			break;
		n++;
		assert_true(n < 200);
	}
	/* The deadline ends whatever still waits (a side that never heard
	 * the link go). */
	if (!mig_fsm_over(&w.t.f))
		step(&w, &w.t, MIG_EV_TIMEOUT);
	while (tick(&w))
		;
	if (!mig_fsm_over(&w.s.f) && w.s.f.state != MIG_S_INDOUBT)
		step(&w, &w.s, MIG_EV_TIMEOUT);
	while (tick(&w))
		;
	/* hvd resolves a source in doubt from the target's report. */
	if (w.s.f.state == MIG_S_INDOUBT)
		step(&w, &w.s, w.t.f.state == MIG_DONE ? MIG_EV_END_TARGET :
		    MIG_EV_END_SOURCE);
	while (tick(&w))
		;
	if (!(mig_fsm_over(&w.s.f) && mig_fsm_over(&w.t.f)) ||
	    w.s.f.state != w.t.f.state ||
	    (w.s.f.state == MIG_DONE && !(w.t.copy == C_RUNNING &&
	    w.s.copy == C_GONE)) ||
	    (w.s.f.state == MIG_FAILED && !(w.s.copy == C_RUNNING &&
	    w.t.copy == C_NONE)))
		fail_msg("fault %d at %u seed %u: source %s copy %d, target %s "
		    "copy %d;%s", (int)fault, at, seed,
		    mig_state_name(w.s.f.state), (int)w.s.copy,
		    mig_state_name(w.t.f.state), (int)w.t.copy, w.trace);
	if (fault == F_NONE)
		assert_int_equal(w.s.f.state, MIG_DONE);
	return n;
}

static void
test_every_fault_everywhere(void **state)
{
	unsigned runs = 0, done = 0, len;

	(void)state;
	len = run(F_NONE, 0, 1);
	assert_true(len >= 8);
	for (unsigned seed = 1; seed <= 200; seed++) {
		for (int f = F_CUT; f < F_N; f++) {
			for (unsigned at = 0; at <= len + 2; at++) {
				run((enum fault)f, at, seed);
				runs++;
			}
		}
		done++;
	}
	assert_int_equal(done, 200);
	assert_true(runs > 10000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),
		cmocka_unit_test(test_out_of_turn),
		cmocka_unit_test(test_indoubt),
		cmocka_unit_test(test_every_fault_everywhere),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
