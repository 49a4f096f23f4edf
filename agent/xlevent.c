/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libxl joins the agent's libevent loop (CONVENTIONS 10): the six
 * libxl_osevent_hooks map libxl's file descriptors and timeouts onto
 * libevent events, and each event that fires is handed back to libxl
 * through libxl_osevent_occurred_fd() or _timeout().
 *
 * libxl's contract, which this file keeps:
 *  - an fd registration with events == 0 stays registered but silent;
 *  - libxl may register one fd several times: each registration is its
 *    own libevent event (libevent multiplexes them);
 *  - timeouts are absolute gettimeofday() times; timeout_modify is only
 *    ever called with {0,0}, "fire as soon as possible";
 *  - a timeout that fired is deregistered implicitly: after
 *    occurred_timeout libxl never names it again, so it is freed first;
 *  - occurred_* must not be called from inside libxl, and libxl may
 *    deregister the very fd being reported from inside occurred_fd, so
 *    nothing touches a registration after handing it to libxl.
 *
 * Must never: call libxl here other than through the ops, or free a
 * registration libxl still holds.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/event.h>
#include <libxl.h>

#include "vm.h"

struct xlev_reg {
	LIST_ENTRY(xlev_reg) entry;
	struct xlev *x;
	struct event *ev;
	int fd;				/* -1 for a timeout */
	short events;			/* poll() bits libxl asked for */
	void *for_libxl;
};

struct xlev {
	struct event_base *base;
	const struct xlev_ops *ops;
	void *ctx;
	LIST_HEAD(, xlev_reg) regs;
	unsigned count;
};

static void
xlev_reg_free(struct xlev_reg *r)
{
	LIST_REMOVE(r, entry);
	r->x->count--;
	event_free(r->ev);
	free(r);
}

static void
xlev_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xlev_reg *r = arg;
	short revents = 0;

	if (what & EV_READ)
		revents |= r->events & (POLLIN | POLLPRI);
	if (what & EV_WRITE)
		revents |= r->events & POLLOUT;
	if (revents == 0)
		return;
	/* r may be gone when this returns. */
	r->x->ops->fd_occurred(r->x->ctx, r->for_libxl, fd, r->events,
	    revents);
}

static short
xlev_what(short events)
{
	short what = 0;

	if (events & (POLLIN | POLLPRI))
		what |= EV_READ;
	if (events & POLLOUT)
		what |= EV_WRITE;
	return what;
}

/* (Re)arms R's event for EVENTS; 0 or ERROR_OSEVENT_REG_FAIL. */
static int
xlev_fd_arm(struct xlev_reg *r, short events)
{
	short what = xlev_what(events);

	if (r->ev != NULL) {
		event_del(r->ev);
		if (event_assign(r->ev, r->x->base, r->fd, what | EV_PERSIST,
		    xlev_fd_cb, r) != 0)
			return ERROR_OSEVENT_REG_FAIL;
	} else if ((r->ev = event_new(r->x->base, r->fd, what | EV_PERSIST,
	    xlev_fd_cb, r)) == NULL) {
		return ERROR_OSEVENT_REG_FAIL;
	}
	r->events = events;
	if (what != 0 && event_add(r->ev, NULL) != 0)
		return ERROR_OSEVENT_REG_FAIL;
	return 0;
}

static int
xlev_fd_register(void *user, int fd, void **reg_out, short events,
    void *for_libxl)
{
	struct xlev *x = user;
	struct xlev_reg *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ERROR_OSEVENT_REG_FAIL;
	r->x = x;
	r->fd = fd;
	r->for_libxl = for_libxl;
	if (xlev_fd_arm(r, events) != 0) {
		if (r->ev)
			event_free(r->ev);
		free(r);
		return ERROR_OSEVENT_REG_FAIL;
	}
	LIST_INSERT_HEAD(&x->regs, r, entry);
	x->count++;
	*reg_out = r;
	return 0;
}

static int
xlev_fd_modify(void *user, int fd, void **reg_update, short events)
{
	struct xlev_reg *r = *reg_update;

	(void)user;
	(void)fd;
	/* On failure the old registration stays (event_del undone). */
	if (xlev_fd_arm(r, events) != 0) {
		(void)xlev_fd_arm(r, r->events);
		return ERROR_OSEVENT_REG_FAIL;
	}
	return 0;
}

static void
xlev_fd_deregister(void *user, int fd, void *reg)
{
	(void)user;
	(void)fd;
	xlev_reg_free(reg);
}

static void
xlev_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct xlev_reg *r = arg;
	struct xlev *x = r->x;
	void *for_libxl = r->for_libxl;

	(void)fd;
	(void)what;
	/* Deregistered by firing: libxl will not name it again. */
	xlev_reg_free(r);
	x->ops->timeout_occurred(x->ctx, for_libxl);
}

/* ABS as a delay from now; {0,0} (and any past time) is "at once". */
static struct timeval
xlev_delay(struct timeval abs)
{
	struct timeval now, d = { 0, 0 };

	if (abs.tv_sec == 0 && abs.tv_usec == 0)
		return d;
	gettimeofday(&now, NULL);
	if (timercmp(&abs, &now, >))
		timersub(&abs, &now, &d);
	return d;
}

static int
xlev_timeout_register(void *user, void **reg_out, struct timeval abs,
    void *for_libxl)
{
	struct xlev *x = user;
	struct timeval d;
	struct xlev_reg *r;

	/* libevent adds D to the time cached when this loop pass began; a
	 * libxl call that ran for seconds (a PV domain build) would make
	 * every new timeout due at once. */
	event_base_update_cache_time(x->base);
	d = xlev_delay(abs);

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return ERROR_OSEVENT_REG_FAIL;
	r->x = x;
	r->fd = -1;
	r->for_libxl = for_libxl;
	if ((r->ev = evtimer_new(x->base, xlev_timeout_cb, r)) == NULL ||
	    evtimer_add(r->ev, &d) != 0) {
		if (r->ev)
			event_free(r->ev);
		free(r);
		return ERROR_OSEVENT_REG_FAIL;
	}
	LIST_INSERT_HEAD(&x->regs, r, entry);
	x->count++;
	*reg_out = r;
	return 0;
}

static int
xlev_timeout_modify(void *user, void **reg_update, struct timeval abs)
{
	struct xlev_reg *r = *reg_update;
	struct timeval d;

	(void)user;
	event_base_update_cache_time(r->x->base);
	d = xlev_delay(abs);
	/* Re-adding a pending timer replaces its deadline. */
	return evtimer_add(r->ev, &d) == 0 ? 0 : ERROR_OSEVENT_REG_FAIL;
}

/* libxl says it never calls this (a deprecated mode); kept correct. */
static void
xlev_timeout_deregister(void *user, void *reg)
{
	(void)user;
	xlev_reg_free(reg);
}

static const libxl_osevent_hooks xlev_libxl_hooks = {
	.fd_register = xlev_fd_register,
	.fd_modify = xlev_fd_modify,
	.fd_deregister = xlev_fd_deregister,
	.timeout_register = xlev_timeout_register,
	.timeout_modify = xlev_timeout_modify,
	.timeout_deregister = xlev_timeout_deregister,
};

const struct libxl_osevent_hooks *
xlev_hooks(void)
{
	return &xlev_libxl_hooks;
}

struct xlev *
xlev_new(struct event_base *base, const struct xlev_ops *ops, void *ctx)
{
	struct xlev *x;

	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	x->base = base;
	x->ops = ops;
	x->ctx = ctx;
	LIST_INIT(&x->regs);
	return x;
}

unsigned
xlev_count(const struct xlev *x)
{
	return x->count;
}

void
xlev_free(struct xlev *x)
{
	if (x == NULL)
		return;
	while (!LIST_EMPTY(&x->regs))
		xlev_reg_free(LIST_FIRST(&x->regs));
	free(x);
}
