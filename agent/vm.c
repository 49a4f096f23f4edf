/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's VMs on libxl, their lifecycle (PROTOCOL.md 6.2): the struct
 * vm state machine, libxl's create and destroy ops, the domain death
 * events, domains adopted at start, and every state a VM reaches as a
 * vm.state notify.  The vm.* methods that set this going are vm_cmd.c;
 * vm.console is vm_console.c.
 *
 * libxl runs on the agent's loop: its fds and timeouts through
 * xlevent.c, long operations (create, destroy) as asynchronous ops whose
 * completion callback, like the domain death events, only queues what
 * happened; the queue is worked from a libevent callback of our own.  So
 * no libxl call is made from inside libxl, and no VM is freed under a
 * libxl callback.
 *
 * A VM's life here: FETCHING (images, then its disk copy) -> CREATING (the
 * create op) -> RUNNING -> (shutdown asked: STOPPING; reboot asked:
 * REBOOTING) -> DESTROYING (the destroy op) -> gone, or CREATING again
 * when the guest rebooted or was reset.  What the VM becomes when its
 * domain is gone (stopped, crashed, rebooted) is decided when the reason
 * is known (the request, the guest's shutdown reason, or a grace that ran
 * out) and reported once, when the domain is gone.
 *
 * Invariants: one struct vm per uuid; a VM with an op in flight is not
 * freed (libxl writes its domid); death events find their VM by serial,
 * never by pointer, since they may arrive after the VM is gone.
 * Must never: create a second domain for a uuid or name that runs, block
 * the loop on libxl, or echo a cmdline in a message.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <sodium.h>

#include "agent.h"
#include "domain.h"
#include "log.h"
#include "migrate_io.h"
#include "msg.h"
#include "vm.h"
#include "vm_internal.h"

/* What a libxl callback saw, worked later from the loop. */
struct vm_evt {
	TAILQ_ENTRY(vm_evt) entry;
	enum { VE_CREATED, VE_DESTROYED, VE_SHUTDOWN, VE_DEATH, VE_MIG_OP }
	    kind;
	struct vm *vm;			/* VE_CREATED, VE_DESTROYED, VE_MIG_OP */
	uint64_t serial;		/* VE_SHUTDOWN, VE_DEATH */
	uint32_t domid;
	int rc;
	int reason;			/* libxl_shutdown_reason */
};

static void vm_create_domain(struct vm *vm);

static void
vm_osevent_fd(void *ctx, void *for_libxl, int fd, short events,
    short revents)
{
	libxl_osevent_occurred_fd(ctx, for_libxl, fd, events, revents);
}

static void
vm_osevent_timeout(void *ctx, void *for_libxl)
{
	libxl_osevent_occurred_timeout(ctx, for_libxl);
}

static const struct xlev_ops vm_xlev_ops = {
	.fd_occurred = vm_osevent_fd,
	.timeout_occurred = vm_osevent_timeout,
};

/* libxl's error as text for a notify or a reply. */
void
vm_xl_err(struct agent_vm *av, int rc, char *err, size_t errlen,
    const char *what)
{
	const char *last = xen_lasterr(av->xen);

	snprintf(err, errlen, "%s: %s", what, last[0] ? last :
	    rc == ERROR_DOMAIN_NOTFOUND ? "no such domain" : "libxl error");
	if (rc != 0 && last[0] == '\0')
		snprintf(err + strlen(err), errlen - strlen(err), " %d", rc);
}

static void
vm_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_vm *av = arg;
	size_t i;
	json_t *p;

	(void)fd;
	(void)what;
	json_array_foreach(av->outq, i, p) {
		if (av->notify)
			av->notify(av->notify_arg, json_string_value(
			    json_array_get(p, 0)), json_incref(json_array_get(p,
			    1)));
	}
	json_array_clear(av->outq);
}

void
vm_notify(struct vm *vm, const char *state, const char *reason)
{
	json_t *p;

	p = json_pack("{s:s, s:s, s:s}", "uuid", vm->uuid, "name", vm->name,
	    "state", state);
	if (p == NULL)
		return;
	if (vm->domid != (uint32_t)INVALID_DOMID && vm->domid != 0 &&
	    strcmp(state, "running") == 0)
		json_object_set_new(p, "domid", json_integer(vm->domid));
	if (reason != NULL && reason[0] != '\0')
		json_object_set_new(p, "reason", json_stringn(reason,
		    strnlen(reason, MSG_VM_REASON_MAX)));
	log_info("vm %s (%s): %s%s%s", vm->name, vm->uuid, state,
	    reason && reason[0] ? ": " : "", reason ? reason : "");
	vm_notify_method(vm->av, "vm.state", p);
}

void
vm_notify_method(struct agent_vm *av, const char *method, json_t *params)
{
	json_t *e;

	if (params == NULL)
		return;
	if ((e = json_pack("[s, o]", method, params)) == NULL)
		return;
	json_array_append_new(av->outq, e);
	event_active(av->ev_flush, EV_TIMEOUT, 0);
}

void
vm_reason(struct vm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->reason, sizeof(vm->reason), fmt, ap);
	va_end(ap);
}

static void
vm_free(struct vm *vm)
{
	vm_mig_free(vm->mig);
	if (vm->dc_live)
		libxl_domain_config_dispose(&vm->dc);
	if (vm->ev_timeout)
		event_free(vm->ev_timeout);
	if (vm->ev_create)
		event_free(vm->ev_create);
	free(vm);
}

static void
vm_unwatch(struct vm *vm)
{
	if (vm->death != NULL)
		libxl_evdisable_domain_death(vm->av->ctx, vm->death);
	vm->death = NULL;
}

/* Reports STATE once and forgets the VM (freed when no op holds it). */
void
vm_end(struct vm *vm, const char *state, const char *reason)
{
	if (vm->gone)
		return;
	if (!vm->quiet)
		vm_notify(vm, state, reason);
	vm_unwatch(vm);
	for (int i = 0; i < VI_N; i++) {
		img_cancel(vm->img[i].rq);
		vm->img[i].rq = NULL;
	}
	if (vm->remove_disk && vm->has_spec && vm->img[VI_DISK].sha[0])
		(void)img_disk_remove(vm->av->cache, vm->uuid);
	evtimer_del(vm->ev_timeout);
	evtimer_del(vm->ev_create);
	TAILQ_REMOVE(&vm->av->vms, vm, entry);
	vm->gone = true;
	if (vm->ops == 0)
		vm_free(vm);
}

static void
vm_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vm *vm = arg;

	(void)fd;
	(void)what;
	if (vm->phase == VP_STOPPING) {
		log_warnx("vm %s: no clean shutdown in time; destroying it",
		    vm->name);
		vm->after = VA_STOPPED;
		vm_reason(vm, "shutdown timed out; destroyed");
		vm_destroy_domain(vm);
	} else if (vm->phase == VP_REBOOTING) {
		log_warnx("vm %s: no reboot within %d s; resetting it", vm->name,
		    VM_REBOOT_TIMEOUT_S);
		vm_reset(vm, "reboot timed out; reset (destroyed and created "
		    "again)");
	}
}

void
vm_reset(struct vm *vm, const char *why)
{
	vm->after = VA_REBOOT;
	vm_reason(vm, "%s", why);
	vm_destroy_domain(vm);
}

static void
vm_create_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vm_create_domain(arg);
}

/*
 * The domain build inside libxl_domain_create_new() runs on the loop for
 * seconds (it decompresses the kernel).  Started from a timer, it runs
 * after the pass that writes what is queued (the vm.create reply).
 */
void
vm_create_later(struct vm *vm)
{
	struct timeval now = { 0, 0 };

	vm->phase = VP_CREATING;
	evtimer_add(vm->ev_create, &now);
}

struct vm *
vm_alloc(struct agent_vm *av, const char *name, const char *uuid)
{
	struct vm *vm;

	if ((vm = calloc(1, sizeof(*vm))) == NULL)
		return NULL;
	vm->av = av;
	vm->serial = ++av->next_serial;
	vm->domid = (uint32_t)INVALID_DOMID;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->uuid, sizeof(vm->uuid), "%s", uuid);
	if ((vm->ev_timeout = evtimer_new(av->base, vm_timeout_cb, vm)) ==
	    NULL || (vm->ev_create = evtimer_new(av->base, vm_create_cb, vm)) ==
	    NULL) {
		if (vm->ev_timeout)
			event_free(vm->ev_timeout);
		free(vm);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&av->vms, vm, entry);
	return vm;
}

int
vm_watch(struct vm *vm)
{
	int rc;

	vm_unwatch(vm);
	if ((rc = libxl_evenable_domain_death(vm->av->ctx, vm->domid,
	    vm->serial, &vm->death)) != 0) {
		vm->death = NULL;
		log_warnx("vm %s: cannot watch domain %u: libxl error %d",
		    vm->name, vm->domid, rc);
		return -EIO;
	}
	return 0;
}

/* libxl callbacks: queue, return. */
static void
vm_queue(struct agent_vm *av, int kind, struct vm *vm, uint64_t serial,
    uint32_t domid, int rc, int reason)
{
	struct vm_evt *e;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		log_warnx("vm: out of memory queueing a libxl event; lost");
		return;
	}
	e->kind = kind;
	e->vm = vm;
	e->serial = serial;
	e->domid = domid;
	e->rc = rc;
	e->reason = reason;
	TAILQ_INSERT_TAIL(&av->evts, e, entry);
	event_active(av->ev_evts, EV_TIMEOUT, 0);
}

static void
vm_created_cb(libxl_ctx *ctx, int rc, void *arg)
{
	struct vm *vm = arg;

	(void)ctx;
	vm_queue(vm->av, VE_CREATED, vm, 0, 0, rc, 0);
}

static void
vm_destroyed_cb(libxl_ctx *ctx, int rc, void *arg)
{
	struct vm *vm = arg;

	(void)ctx;
	vm_queue(vm->av, VE_DESTROYED, vm, 0, 0, rc, 0);
}

static void
vm_mig_cb(libxl_ctx *ctx, int rc, void *arg)
{
	struct vm *vm = arg;

	(void)ctx;
	vm_queue(vm->av, VE_MIG_OP, vm, 0, 0, rc, 0);
}

libxl_asyncop_how
vm_mig_how(struct vm *vm)
{
	libxl_asyncop_how how = { .callback = vm_mig_cb,
		.u.for_callback = vm };

	return how;
}

static void
vm_event_cb(void *user, libxl_event *ev)
{
	struct agent_vm *av = user;

	if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN)
		vm_queue(av, VE_SHUTDOWN, NULL, ev->for_user, ev->domid, 0,
		    ev->u.domain_shutdown.shutdown_reason);
	else if (ev->type == LIBXL_EVENT_TYPE_DOMAIN_DEATH)
		vm_queue(av, VE_DEATH, NULL, ev->for_user, ev->domid, 0, 0);
	libxl_event_free(av->ctx, ev);
}

/* No libxl call allowed here. */
static void
vm_disaster_cb(void *user, libxl_event_type type, const char *msg,
    int errnoval)
{
	(void)user;
	log_warnx("vm: libxl cannot deliver %s events any more: %s: %s",
	    type ? libxl_event_type_to_string(type) : "any", msg,
	    strerror(errnoval));
}

static const libxl_event_hooks vm_event_hooks = {
	.event_occurs_mask = LIBXL_EVENTMASK_ALL,
	.event_occurs = vm_event_cb,
	.disaster = vm_disaster_cb,
};

/* The agent has no children of its own; libxl reaps only its own. */
static const libxl_childproc_hooks vm_childproc_hooks = {
	.chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

/* The domain is gone: report, or come back after a reboot. */
static void
vm_dead(struct vm *vm)
{
	vm_unwatch(vm);
	vm->domid = (uint32_t)INVALID_DOMID;
	vm->died = false;
	if (vm->after == VA_REBOOT && vm->has_spec && !vm->cancel) {
		vm->rebooted = true;
		vm_create_domain(vm);
		return;
	}
	if (vm->after == VA_REBOOT)
		vm_reason(vm, "%s", vm->cancel ? "stopped while rebooting" :
		    "rebooted by its guest; its config is unknown to this "
		    "agent, so it stays stopped");
	vm_end(vm, vm->after == VA_CRASHED ? "crashed" : "stopped",
	    vm->reason);
}

static void
vm_on_shutdown(struct vm *vm, int reason)
{
	switch (reason) {
	case LIBXL_SHUTDOWN_REASON_POWEROFF:
		vm->after = VA_STOPPED;
		if (vm->phase != VP_STOPPING)
			vm_reason(vm, "poweroff");
		break;
	case LIBXL_SHUTDOWN_REASON_REBOOT:
		if (vm->phase == VP_STOPPING) {
			vm->after = VA_STOPPED;
		} else {
			vm->after = VA_REBOOT;
			vm_reason(vm, "reboot");
		}
		break;
	case LIBXL_SHUTDOWN_REASON_SUSPEND:
		/* Only a migration suspends; vm_migrate.c owns what follows. */
		if (vm->mig == NULL)
			log_warnx("vm %s: suspended outside a migration; left "
			    "alone", vm->name);
		return;
	case LIBXL_SHUTDOWN_REASON_CRASH:
		vm->after = VA_CRASHED;
		vm_reason(vm, "crash");
		break;
	case LIBXL_SHUTDOWN_REASON_WATCHDOG:
		vm->after = VA_CRASHED;
		vm_reason(vm, "watchdog");
		break;
	default:
		vm->after = VA_CRASHED;
		vm_reason(vm, "shutdown reason %d is not supported", reason);
		break;
	}
	vm_destroy_domain(vm);
}

static struct vm *
vm_by_serial(struct agent_vm *av, uint64_t serial)
{
	struct vm *vm;

	TAILQ_FOREACH(vm, &av->vms, entry)
		if (vm->serial == serial)
			return vm;
	return NULL;
}

static void
vm_orphan_destroyed(libxl_ctx *ctx, int rc, void *arg)
{
	(void)ctx;
	(void)arg;
	if (rc != 0)
		log_warnx("vm: destroying a half-built domain failed: libxl "
		    "error %d", rc);
}

static const libxl_asyncop_how vm_orphan_how = {
	.callback = vm_orphan_destroyed,
};

static void
vm_on_created(struct vm *vm, int rc)
{
	char err[MSG_VM_REASON_MAX + 1];

	if (vm->dc_live)
		libxl_domain_config_dispose(&vm->dc);
	vm->dc_live = false;
	if (rc == 0) {
		/* libxl leaves a new domain paused (xl create unpauses it). */
		xen_clear_err(vm->av->xen);
		if ((rc = libxl_domain_unpause(vm->av->ctx, vm->domid,
		    NULL)) != 0)
			vm_xl_err(vm->av, rc, err, sizeof(err), "unpause");
	} else {
		vm_xl_err(vm->av, rc, err, sizeof(err), "create");
	}
	if (rc != 0) {
		/* A half-built domain goes too; nothing waits for that. */
		if (vm->domid != (uint32_t)INVALID_DOMID &&
		    libxl_domain_destroy(vm->av->ctx, vm->domid, &vm_orphan_how)
		    != 0)
			log_warnx("vm %s: cannot destroy half-built domain %u",
			    vm->name, vm->domid);
		vm_end(vm, "failed", err);
		return;
	}
	(void)vm_watch(vm);
	if (vm->cancel) {
		vm->after = VA_STOPPED;
		vm_destroy_domain(vm);
		return;
	}
	vm->phase = VP_RUNNING;
	vm->after = VA_STOPPED;
	/* Back after a reboot: the guest's own ("reboot"), or a reset. */
	vm_notify(vm, "running", !vm->rebooted ? NULL : vm->reason[0] ?
	    vm->reason : "reboot");
	vm->rebooted = false;
	vm->reason[0] = '\0';
}

static void
vm_on_destroyed(struct vm *vm, int rc)
{
	char err[MSG_VM_REASON_MAX + 1];

	/* A failed cleanup of a domain that did die still ends it. */
	if (rc == 0 || rc == ERROR_DOMAIN_NOTFOUND || vm->died) {
		if (rc != 0 && rc != ERROR_DOMAIN_NOTFOUND)
			log_warnx("vm %s: domain %u died but libxl's cleanup "
			    "failed: libxl error %d", vm->name, vm->domid, rc);
		vm_dead(vm);
		return;
	}
	vm_xl_err(vm->av, rc, err, sizeof(err), "destroy");
	vm->phase = VP_RUNNING;
	vm_notify(vm, "failed", err);
}

static void
vm_evts_cb(evutil_socket_t fd, short what, void *arg)
{
	struct agent_vm *av = arg;
	struct vm_evt *e;
	struct vm *vm;

	(void)fd;
	(void)what;
	while ((e = TAILQ_FIRST(&av->evts)) != NULL) {
		TAILQ_REMOVE(&av->evts, e, entry);
		vm = e->vm;
		switch (e->kind) {
		case VE_CREATED:
		case VE_DESTROYED:
		case VE_MIG_OP:
			vm->ops--;
			if (vm->gone) {
				if (vm->ops == 0)
					vm_free(vm);
			} else if (e->kind == VE_CREATED) {
				vm_on_created(vm, e->rc);
			} else if (e->kind == VE_DESTROYED) {
				vm_on_destroyed(vm, e->rc);
			} else {
				vm_mig_op_done(vm, e->rc);
			}
			break;
		case VE_SHUTDOWN:
		case VE_DEATH:
			/* Late events of a domain already dealt with. */
			if ((vm = vm_by_serial(av, e->serial)) == NULL ||
			    vm->domid != e->domid)
				break;
			if (e->kind == VE_SHUTDOWN) {
				vm_on_shutdown(vm, e->reason);
			} else if (vm->phase == VP_DESTROYING) {
				/*
				 * Our destroy op is still cleaning up (the
				 * name is still taken): its completion is
				 * what ends or re-creates the VM, once.
				 */
				vm->died = true;
			} else {
				if (vm->reason[0] == '\0')
					vm_reason(vm, "the domain was destroyed "
					    "outside hv-agent");
				vm_dead(vm);
			}
			break;
		}
		free(e);
	}
}

void
vm_destroy_domain(struct vm *vm)
{
	libxl_asyncop_how how = { .callback = vm_destroyed_cb,
		.u.for_callback = vm };
	char err[MSG_VM_REASON_MAX + 1];
	int rc;

	evtimer_del(vm->ev_timeout);
	if (vm->phase == VP_DESTROYING)
		return;
	vm->phase = VP_DESTROYING;
	xen_clear_err(vm->av->xen);
	vm->ops++;
	if ((rc = libxl_domain_destroy(vm->av->ctx, vm->domid, &how)) != 0) {
		vm->ops--;
		if (rc == ERROR_DOMAIN_NOTFOUND) {
			vm_dead(vm);
			return;
		}
		vm_xl_err(vm->av, rc, err, sizeof(err), "destroy");
		vm->phase = VP_RUNNING;
		vm_notify(vm, "failed", err);
	}
}

static void
vm_create_domain(struct vm *vm)
{
	libxl_asyncop_how how = { .callback = vm_created_cb,
		.u.for_callback = vm };
	char err[MSG_VM_REASON_MAX + 1];
	int rc;

	if (vm->cancel) {
		vm_end(vm, "stopped", "stopped before it was created");
		return;
	}
	vm->phase = VP_CREATING;
	libxl_domain_config_init(&vm->dc);
	vm->dc_live = true;
	if (dom_config_build(&vm->spec, &vm->dc, err, sizeof(err)) < 0) {
		vm_end(vm, "failed", err);
		return;
	}
	xen_clear_err(vm->av->xen);
	vm->domid = (uint32_t)INVALID_DOMID;
	vm->ops++;
	if ((rc = libxl_domain_create_new(vm->av->ctx, &vm->dc, &vm->domid,
	    &how, NULL)) != 0) {
		vm->ops--;
		vm_xl_err(vm->av, rc, err, sizeof(err), "create");
		vm_end(vm, "failed", err);
	}
}

/* The VM of UUID (or NAME), adopting a domain the agent did not know. */
struct vm *
vm_find(struct agent_vm *av, const char *uuid, const char *name)
{
	libxl_dominfo *doms;
	struct vm *vm;
	char u[DOM_UUID_TEXT + 1], *dn;
	int n = 0;

	TAILQ_FOREACH(vm, &av->vms, entry)
		if (strcmp(vm->uuid, uuid) == 0 ||
		    (name != NULL && strcmp(vm->name, name) == 0))
			return vm;
	if ((doms = libxl_list_domain(av->ctx, &n)) == NULL)
		return NULL;
	for (int i = 0; i < n && vm == NULL; i++) {
		if (doms[i].domid == 0 || doms[i].dying)
			continue;
		snprintf(u, sizeof(u), LIBXL_UUID_FMT,
		    LIBXL_UUID_BYTES(doms[i].uuid));
		dn = libxl_domid_to_name(av->ctx, doms[i].domid);
		if (strcmp(u, uuid) == 0 || (name != NULL && dn != NULL &&
		    strcmp(dn, name) == 0)) {
			if ((vm = vm_alloc(av, dn ? dn : "", u)) != NULL) {
				vm->domid = doms[i].domid;
				vm->phase = VP_RUNNING;
				(void)vm_watch(vm);
				log_info("vm %s (%s): adopted domain %u", vm->name,
				    vm->uuid, vm->domid);
			}
		}
		free(dn);
	}
	libxl_dominfo_list_free(doms, n);
	return vm;
}

void
agent_vm_set_notify(struct agent_vm *av, vm_notify_fn *fn, void *arg)
{
	av->notify = fn;
	av->notify_arg = arg;
}

/* Domains running when the agent starts: their deaths are reported. */
static void
vm_adopt_all(struct agent_vm *av)
{
	libxl_dominfo *doms;
	struct vm *vm;
	char u[DOM_UUID_TEXT + 1], *dn;
	int n = 0;

	if ((doms = libxl_list_domain(av->ctx, &n)) == NULL)
		return;
	for (int i = 0; i < n; i++) {
		if (doms[i].domid == 0 || doms[i].dying)
			continue;
		snprintf(u, sizeof(u), LIBXL_UUID_FMT,
		    LIBXL_UUID_BYTES(doms[i].uuid));
		dn = libxl_domid_to_name(av->ctx, doms[i].domid);
		if ((vm = vm_alloc(av, dn ? dn : "", u)) != NULL) {
			vm->domid = doms[i].domid;
			vm->phase = VP_RUNNING;
			(void)vm_watch(vm);
			log_info("vm %s (%s): adopted running domain %u",
			    vm->name, vm->uuid, vm->domid);
			/*
			 * An incoming copy is renamed before it is unpaused,
			 * so one still named so never ran: the agent that
			 * restored it died, and the source has its VM back.
			 */
			if (vm_mig_named(vm->name, VM_MIG_SUFFIX_IN)) {
				log_warnx("vm %s: an unfinished incoming "
				    "migration; destroying it", vm->name);
				vm->quiet = true;
				vm_destroy_domain(vm);
			}
		}
		free(dn);
	}
	libxl_dominfo_list_free(doms, n);
}

int
agent_vm_new(struct event_base *base, const char *dir,
    struct agent_vm **out)
{
	struct agent_vm *av;
	char d[PATH_MAX];
	int r;

	*out = NULL;
	if ((av = calloc(1, sizeof(*av))) == NULL)
		return -ENOMEM;
	av->base = base;
	TAILQ_INIT(&av->vms);
	TAILQ_INIT(&av->evts);
	if ((r = xen_open(&av->xen)) < 0)
		goto fail;
	av->ctx = xen_ctx(av->xen);
	r = -ENOMEM;
	if ((av->outq = json_array()) == NULL ||
	    (av->ev_flush = event_new(base, -1, 0, vm_flush_cb, av)) == NULL ||
	    (av->ev_evts = event_new(base, -1, 0, vm_evts_cb, av)) == NULL ||
	    (av->xlev = xlev_new(base, &vm_xlev_ops, av->ctx)) == NULL)
		goto fail;
	if (dir == NULL) {
		if ((r = img_dir_choose(IMG_PERSIST_DIR, IMG_VOLATILE_DIR, d,
		    sizeof(d))) < 0) {
			log_warnx("vm: no image directory: %s", strerror(-r));
			goto fail;
		}
		dir = d;
	}
	if ((av->cache = img_cache_new(base, dir)) == NULL) {
		r = -errno;
		log_warn("vm: image cache %s", dir);
		goto fail;
	}
	libxl_osevent_register_hooks(av->ctx, xlev_hooks(), av->xlev);
	libxl_event_register_callbacks(av->ctx, &vm_event_hooks, av);
	libxl_childproc_setmode(av->ctx, &vm_childproc_hooks, av);
	log_info("vm: libxl on the loop; images in %s", dir);
	vm_adopt_all(av);
	*out = av;
	return 0;
fail:
	agent_vm_free(av);
	return r;
}

void
agent_vm_free(struct agent_vm *av)
{
	struct vm_evt *e;
	struct vm *vm;

	if (av == NULL)
		return;
	while ((vm = TAILQ_FIRST(&av->vms)) != NULL) {
		vm_unwatch(vm);
		for (int i = 0; i < VI_N; i++)
			img_cancel(vm->img[i].rq);
		TAILQ_REMOVE(&av->vms, vm, entry);
		/* Ops in flight die with the ctx; their VM is not freed. */
		if (vm->ops == 0)
			vm_free(vm);
	}
	while ((e = TAILQ_FIRST(&av->evts)) != NULL) {
		TAILQ_REMOVE(&av->evts, e, entry);
		free(e);
	}
	mig_listener_free(av->mig_listener);
	sodium_free(av->mig_sk);
	/* libxl deregisters its fds through the hooks while it frees. */
	xen_close(av->xen);
	xlev_free(av->xlev);
	img_cache_free(av->cache);
	if (av->ev_flush)
		event_free(av->ev_flush);
	if (av->ev_evts)
		event_free(av->ev_evts);
	json_decref(av->outq);
	free(av);
}
