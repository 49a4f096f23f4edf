/*
 * hv-agent's VMs on libxl (PROTOCOL.md 6.2, vm.*): create from images
 * fetched by the image store, shutdown with a timeout, destroy, reboot,
 * list, console log; every state a VM reaches is a vm.state notify.
 *
 * libxl runs on the agent's loop: its fds and timeouts through
 * xlevent.c, long operations (create, destroy) as asynchronous ops whose
 * completion callback, like the domain death events, only queues what
 * happened; the queue is worked from a libevent callback of our own.  So
 * no libxl call is made from inside libxl, and no VM is freed under a
 * libxl callback.
 *
 * A VM's life here: FETCHING (images, then its disk copy) -> CREATING (the
 * create op) -> RUNNING -> (shutdown asked: STOPPING) -> DESTROYING (the
 * destroy op) -> gone, or CREATING again when the guest rebooted.  What
 * the VM becomes when its domain is gone (stopped, crashed, rebooted) is
 * decided when the reason is known (the request, or the guest's shutdown
 * reason) and reported once, when the domain is gone.
 *
 * Invariants: one struct vm per uuid; a VM with an op in flight is not
 * freed (libxl writes its domid); death events find their VM by serial,
 * never by pointer, since they may arrive after the VM is gone.
 * Must never: create a second domain for a uuid or name that runs, block
 * the loop on libxl, or echo a cmdline in a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <libxl.h>
#include <libxl_utils.h>

#include "agent.h"
#include "domain.h"
#include "log.h"
#include "msg.h"
#include "vm.h"

#define VM_CONSOLE_DIR		"/var/log/xen/console"
#define VM_CONSOLE_JSON_MAX	65400	/* the reply must fit one frame */

enum vm_phase { VP_FETCHING, VP_CREATING, VP_RUNNING, VP_STOPPING,
    VP_DESTROYING };
enum vm_after { VA_STOPPED, VA_CRASHED, VA_REBOOT };
enum vm_img { VI_KERNEL, VI_INITRAMFS, VI_DISK, VI_N };

static const char *const vm_img_names[VI_N] = { "kernel", "initramfs",
	"disk" };

struct vm {
	TAILQ_ENTRY(vm) entry;
	struct agent_vm *av;
	uint64_t serial;		/* death events' for_user */
	char name[MSG_VM_NAME_MAX + 1];
	char uuid[DOM_UUID_TEXT + 1];
	bool has_spec;			/* false: adopted, config unknown */
	struct dom_spec spec;		/* image fields hold cache paths */
	struct {
		char url[IMG_URL_MAX + 1];
		char sha[IMG_SHA_HEX + 1];
		struct img_req *rq;
	} img[VI_N];
	unsigned fetching;		/* image requests outstanding */
	enum vm_phase phase;
	uint32_t domid;			/* INVALID_DOMID when none */
	libxl_evgen_domain_death *death;
	libxl_domain_config dc;		/* alive while creating */
	bool dc_live;
	unsigned ops;			/* libxl ops in flight */
	bool gone;			/* off the list, freed when ops == 0 */
	bool cancel;			/* stop asked before it ran */
	bool rebooted;			/* the next running is a reboot */
	bool remove_disk;		/* vm.destroy: the disk copy goes */
	enum vm_after after;
	char reason[MSG_VM_REASON_MAX + 1];
	struct event *ev_timeout;	/* shutdown grace */
	struct event *ev_create;	/* vm_create_domain() on a new pass */
};
TAILQ_HEAD(vm_list, vm);

/* What a libxl callback saw, worked later from the loop. */
struct vm_evt {
	TAILQ_ENTRY(vm_evt) entry;
	enum { VE_CREATED, VE_DESTROYED, VE_SHUTDOWN, VE_DEATH } kind;
	struct vm *vm;			/* VE_CREATED, VE_DESTROYED */
	uint64_t serial;		/* VE_SHUTDOWN, VE_DEATH */
	uint32_t domid;
	int rc;
	int reason;			/* libxl_shutdown_reason */
};

struct agent_vm {
	struct event_base *base;
	struct xen *xen;
	libxl_ctx *ctx;
	struct xlev *xlev;
	struct img_cache *cache;
	struct vm_list vms;
	uint64_t next_serial;
	TAILQ_HEAD(, vm_evt) evts;
	struct event *ev_evts;
	json_t *outq;			/* vm.state params to send */
	struct event *ev_flush;
	vm_notify_fn *notify;
	void *notify_arg;
};

static void vm_destroy_domain(struct vm *vm);
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
static void
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
			av->notify(av->notify_arg, json_incref(p));
	}
	json_array_clear(av->outq);
}

static void
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
	json_array_append_new(vm->av->outq, p);
	event_active(vm->av->ev_flush, EV_TIMEOUT, 0);
}

static void
vm_reason(struct vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
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
static void
vm_end(struct vm *vm, const char *state, const char *reason)
{
	if (vm->gone)
		return;
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
	if (vm->phase != VP_STOPPING)
		return;
	log_warnx("vm %s: no clean shutdown in time; destroying it", vm->name);
	vm->after = VA_STOPPED;
	vm_reason(vm, "shutdown timed out; destroyed");
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
static void
vm_create_later(struct vm *vm)
{
	struct timeval now = { 0, 0 };

	vm->phase = VP_CREATING;
	evtimer_add(vm->ev_create, &now);
}

static struct vm *
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

/* Death events for the VM's current domain. */
static int
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
		/* Only a save or migration suspends; the agent does neither. */
		log_warnx("vm %s: suspended; left alone", vm->name);
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
	vm_notify(vm, "running", vm->rebooted ? "reboot" : NULL);
	vm->rebooted = false;
	vm->reason[0] = '\0';
}

static void
vm_on_destroyed(struct vm *vm, int rc)
{
	char err[MSG_VM_REASON_MAX + 1];

	if (rc == 0 || rc == ERROR_DOMAIN_NOTFOUND) {
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
			vm->ops--;
			if (vm->gone) {
				if (vm->ops == 0)
					vm_free(vm);
			} else if (e->kind == VE_CREATED) {
				vm_on_created(vm, e->rc);
			} else {
				vm_on_destroyed(vm, e->rc);
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
			} else if (vm->phase != VP_DESTROYING) {
				if (vm->reason[0] == '\0')
					vm_reason(vm, "the domain was destroyed "
					    "outside hv-agent");
				vm_dead(vm);
			} else {
				vm_dead(vm);
			}
			break;
		}
		free(e);
	}
}

static void
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

static void
vm_disk_done(void *arg, int r, const char *path, const char *err)
{
	struct vm *vm = arg;

	vm->img[VI_DISK].rq = NULL;
	if (r < 0) {
		vm_end(vm, "failed", err);
		return;
	}
	snprintf(vm->spec.disk, sizeof(vm->spec.disk), "%s", path);
	vm_create_later(vm);
}

static void
vm_img_done(struct vm *vm, enum vm_img i, int r, const char *path,
    const char *err)
{
	char msg[MSG_VM_REASON_MAX + 1];

	vm->img[i].rq = NULL;
	vm->fetching--;
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s image: %s", vm_img_names[i], err);
		vm_end(vm, "failed", msg);
		return;
	}
	if (i == VI_KERNEL)
		snprintf(vm->spec.kernel, sizeof(vm->spec.kernel), "%s", path);
	else if (i == VI_INITRAMFS)
		snprintf(vm->spec.initramfs, sizeof(vm->spec.initramfs), "%s",
		    path);
	if (vm->fetching > 0)
		return;
	if (vm->cancel) {
		vm_end(vm, "stopped", "stopped before it was created");
		return;
	}
	if (vm->img[VI_DISK].sha[0] == '\0') {
		vm_create_later(vm);
		return;
	}
	if ((vm->img[VI_DISK].rq = img_disk(vm->av->cache, vm->img[VI_DISK].sha,
	    vm->uuid, vm_disk_done, vm)) == NULL)
		vm_end(vm, "failed", "disk copy: out of memory");
}

static void
vm_kernel_done(void *arg, int r, const char *path, const char *err)
{
	vm_img_done(arg, VI_KERNEL, r, path, err);
}

static void
vm_initramfs_done(void *arg, int r, const char *path, const char *err)
{
	vm_img_done(arg, VI_INITRAMFS, r, path, err);
}

static void
vm_diskimg_done(void *arg, int r, const char *path, const char *err)
{
	vm_img_done(arg, VI_DISK, r, path, err);
}

static img_done_fn *const vm_img_cbs[VI_N] = { vm_kernel_done,
	vm_initramfs_done, vm_diskimg_done };

/*
 * vm.create params -> spec and image refs.  The wire form names images
 * {url, sha256}; agent/domain.c checks everything else, on a copy whose
 * images are stand-in paths replaced by cache paths once fetched.
 */
static int
vm_create_parse(const json_t *params, struct dom_spec *ds,
    char url[VI_N][IMG_URL_MAX + 1], char sha[VI_N][IMG_SHA_HEX + 1],
    char *err, size_t errlen)
{
	char e[200], stand[16 + IMG_SHA_HEX];
	json_t *copy;
	int r = -EINVAL;

	if (msg_check(MSG_S_VM_CREATE, params, err, errlen) < 0)
		return -EINVAL;
	if ((copy = json_deep_copy(params)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < VI_N; i++) {
		json_t *o = json_object_get(params, vm_img_names[i]);
		const char *u, *s;

		url[i][0] = sha[i][0] = '\0';
		if (o == NULL)
			continue;
		u = json_string_value(json_object_get(o, "url"));
		s = json_string_value(json_object_get(o, "sha256"));
		if (img_ref_check(u, s, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "params.%s.url: %s",
			    vm_img_names[i], e);
			goto out;
		}
		snprintf(url[i], IMG_URL_MAX + 1, "%s", u);
		snprintf(sha[i], IMG_SHA_HEX + 1, "%s", s);
		snprintf(stand, sizeof(stand), "/images/%s", s);
		json_object_set_new(copy, vm_img_names[i], json_string(stand));
	}
	r = dom_spec_from_json(copy, ds, err, errlen);
out:
	json_decref(copy);
	return r;
}

int
agent_vm_create_check(const json_t *params, char *err, size_t errlen)
{
	char url[VI_N][IMG_URL_MAX + 1], sha[VI_N][IMG_SHA_HEX + 1];
	struct dom_spec *ds;
	int r;

	if ((ds = malloc(sizeof(*ds))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = vm_create_parse(params, ds, url, sha, err, errlen);
	free(ds);
	return r;
}

/* The VM of UUID (or NAME), adopting a domain the agent did not know. */
static struct vm *
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

static json_t *
vm_accepted(bool existing)
{
	return existing ? json_pack("{s:b, s:b}", "accepted", 1, "existing", 1) :
	    json_pack("{s:b}", "accepted", 1);
}

static json_t *
vm_no_xen(char *err, size_t errlen)
{
	snprintf(err, errlen, "no Xen on this host");
	return NULL;
}

json_t *
agent_vm_create(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	char url[VI_N][IMG_URL_MAX + 1], sha[VI_N][IMG_SHA_HEX + 1];
	struct dom_spec *ds = NULL;
	struct vm *vm;
	json_t *res = NULL;

	if (av == NULL)
		return vm_no_xen(err, errlen);
	if ((ds = malloc(sizeof(*ds))) == NULL)
		goto nomem;
	if (vm_create_parse(params, ds, url, sha, err, errlen) < 0)
		goto out;
	if ((vm = vm_find(av, ds->uuid, ds->name)) != NULL) {
		if (strcmp(vm->uuid, ds->uuid) != 0) {
			snprintf(err, errlen, "name %s is taken by VM %s",
			    ds->name, vm->uuid);
			goto out;
		}
		/* Never twice; a VM on its way reports when it gets there. */
		if (vm->phase == VP_RUNNING)
			vm_notify(vm, "running", NULL);
		res = vm_accepted(true);
		goto out;
	}
	if ((vm = vm_alloc(av, ds->name, ds->uuid)) == NULL)
		goto nomem;
	vm->spec = *ds;
	vm->has_spec = true;
	vm->phase = VP_FETCHING;
	for (int i = 0; i < VI_N; i++) {
		snprintf(vm->img[i].url, sizeof(vm->img[i].url), "%s", url[i]);
		snprintf(vm->img[i].sha, sizeof(vm->img[i].sha), "%s", sha[i]);
	}
	/* The disk copy is made after the fetches, in vm_img_done(). */
	for (int i = 0; i < VI_N; i++) {
		if (sha[i][0] == '\0')
			continue;
		if ((vm->img[i].rq = img_fetch(av->cache, url[i], sha[i],
		    vm_img_cbs[i], vm)) == NULL) {
			snprintf(err, errlen, "%s image: cannot start the fetch",
			    vm_img_names[i]);
			vm_end(vm, "failed", err);
			res = vm_accepted(false);
			goto out;
		}
		vm->fetching++;
	}
	log_info("vm %s (%s): creating", vm->name, vm->uuid);
	res = vm_accepted(false);
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	free(ds);
	return res;
}

/* The VM of params.uuid, or NULL when no domain has it. */
static struct vm *
vm_of(struct agent_vm *av, const json_t *params)
{
	return vm_find(av, json_string_value(json_object_get(params, "uuid")),
	    NULL);
}

/* A stop of a VM that does not run: say so, it is what hvd wants. */
static json_t *
vm_not_running(struct agent_vm *av, const json_t *params)
{
	struct vm tmp;

	memset(&tmp, 0, sizeof(tmp));
	tmp.av = av;
	tmp.domid = (uint32_t)INVALID_DOMID;
	snprintf(tmp.uuid, sizeof(tmp.uuid), "%s",
	    json_string_value(json_object_get(params, "uuid")));
	vm_notify(&tmp, "stopped", "not running on this host");
	return vm_accepted(false);
}

json_t *
agent_vm_shutdown(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct timeval tv = { 0, 0 };
	struct vm *vm;
	int rc;

	if (av == NULL)
		return vm_no_xen(err, errlen);
	if ((vm = vm_of(av, params)) == NULL)
		return vm_not_running(av, params);
	tv.tv_sec = (time_t)json_integer_value(json_object_get(params,
	    "timeout_s"));
	vm->after = VA_STOPPED;
	switch (vm->phase) {
	case VP_FETCHING:
	case VP_CREATING:
		vm->cancel = true;
		break;
	case VP_RUNNING:
		vm_reason(vm, "shutdown");
		vm->phase = VP_STOPPING;
		xen_clear_err(av->xen);
		if (tv.tv_sec == 0 || (rc = libxl_domain_shutdown(av->ctx,
		    vm->domid, NULL)) != 0) {
			if (tv.tv_sec != 0)
				log_warnx("vm %s: clean shutdown refused (%s); "
				    "destroying it", vm->name,
				    xen_lasterr(av->xen));
			vm_reason(vm, "destroyed (no clean shutdown)");
			vm_destroy_domain(vm);
			break;
		}
		evtimer_add(vm->ev_timeout, &tv);
		break;
	case VP_STOPPING:
		/* A new grace from now. */
		evtimer_add(vm->ev_timeout, &tv);
		break;
	case VP_DESTROYING:
		break;
	}
	return vm_accepted(false);
}

json_t *
agent_vm_destroy(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct vm *vm;

	if (av == NULL)
		return vm_no_xen(err, errlen);
	if ((vm = vm_of(av, params)) == NULL) {
		/* Its disk copy may outlive the domain. */
		if (av->cache != NULL)
			(void)img_disk_remove(av->cache, json_string_value(
			    json_object_get(params, "uuid")));
		return vm_not_running(av, params);
	}
	vm->after = VA_STOPPED;
	vm->remove_disk = true;
	if (vm->phase == VP_FETCHING || vm->phase == VP_CREATING) {
		vm->cancel = true;
	} else {
		vm_reason(vm, "destroyed");
		vm_destroy_domain(vm);
	}
	return vm_accepted(false);
}

json_t *
agent_vm_reboot(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct vm *vm;
	int rc;

	if (av == NULL)
		return vm_no_xen(err, errlen);
	if ((vm = vm_of(av, params)) == NULL || vm->phase != VP_RUNNING) {
		snprintf(err, errlen, "%s is not running here",
		    json_string_value(json_object_get(params, "uuid")));
		return NULL;
	}
	xen_clear_err(av->xen);
	if ((rc = libxl_domain_reboot(av->ctx, vm->domid, NULL)) != 0) {
		vm_xl_err(av, rc, err, errlen, "reboot");
		return NULL;
	}
	return vm_accepted(false);
}

static const char *
vm_list_state(const libxl_dominfo *d)
{
	if (d->dying)
		return "dying";
	if (d->shutdown)
		return d->shutdown_reason == LIBXL_SHUTDOWN_REASON_CRASH ?
		    "crashed" : "shutdown";
	if (d->paused)
		return "paused";
	return "running";
}

json_t *
agent_vm_list(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	libxl_dominfo *doms;
	json_t *vms, *o;
	char u[DOM_UUID_TEXT + 1], *dn;
	int n = 0;

	(void)params;
	if (av == NULL)
		return vm_no_xen(err, errlen);
	xen_clear_err(av->xen);
	if ((doms = libxl_list_domain(av->ctx, &n)) == NULL) {
		vm_xl_err(av, ERROR_FAIL, err, errlen, "list domains");
		return NULL;
	}
	if ((vms = json_array()) == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		if (doms[i].domid == 0)
			continue;
		if (json_array_size(vms) == MSG_VM_LIST_MAX) {
			log_warnx("vm: more than %d domains; vm.list is cut",
			    MSG_VM_LIST_MAX);
			break;
		}
		snprintf(u, sizeof(u), LIBXL_UUID_FMT,
		    LIBXL_UUID_BYTES(doms[i].uuid));
		dn = libxl_domid_to_name(av->ctx, doms[i].domid);
		o = json_pack("{s:s, s:s, s:i, s:s, s:I, s:i}",
		    "name", dn && strlen(dn) <= MSG_VM_NAME_MAX ? dn : "",
		    "uuid", u, "domid", (int)doms[i].domid,
		    "state", vm_list_state(&doms[i]),
		    "memory_mib", (json_int_t)(doms[i].current_memkb / 1024),
		    "vcpus", (int)doms[i].vcpu_online);
		free(dn);
		if (o == NULL || json_array_append_new(vms, o) < 0) {
			json_decref(vms);
			vms = NULL;
			goto out;
		}
	}
out:
	libxl_dominfo_list_free(doms, n);
	if (vms == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return json_pack("{s:o}", "vms", vms);
}

/* Bytes a JSON string escape of C takes (jansson's default escaping). */
static size_t
vm_json_cost(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
	    c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/* Length of the valid UTF-8 sequence at P (at most N bytes), or 0. */
static size_t
vm_utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

json_t *
vm_console_tail(const char *path, size_t bytes, size_t maxjson)
{
	unsigned char *buf = NULL;
	struct stat sb;
	size_t n = 0, start = 0, cost = 0, i;
	off_t off;
	ssize_t got;
	json_t *s = NULL;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	memset(&sb, 0, sizeof(sb));
	sb.st_mode = S_IFREG;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		e = S_ISREG(sb.st_mode) ? errno : EINVAL;
		close(fd);
		errno = e;
		return NULL;
	}
	off = sb.st_size > (off_t)bytes ? sb.st_size - (off_t)bytes : 0;
	if ((buf = malloc(bytes + 1)) == NULL)
		goto out;
	while (n < bytes && (got = pread(fd, buf + n, bytes - n,
	    off + (off_t)n)) > 0)
		n += (size_t)got;
	/* A character cut by the window's start is dropped. */
	if (off > 0)
		while (start < n && start < 3 && (buf[start] & 0xc0) == 0x80)
			start++;
	/* Invalid UTF-8 becomes '?'. */
	for (i = start; i < n;) {
		size_t l = vm_utf8_len(buf + i, n - i);

		if (l == 0) {
			buf[i++] = '?';
			continue;
		}
		i += l;
	}
	/* The newest bytes that fit, on a character boundary. */
	for (i = n; i > start; i--) {
		size_t c = vm_json_cost(buf[i - 1]);

		if (cost + c > maxjson)
			break;
		cost += c;
	}
	while (i < n && (buf[i] & 0xc0) == 0x80)
		i++;
	s = json_stringn((const char *)buf + i, n - i);
	if (s == NULL)
		errno = ENOMEM;
out:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return s;
}

json_t *
agent_vm_console(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	char path[PATH_MAX];
	struct vm *vm;
	json_t *log;

	if (av == NULL)
		return vm_no_xen(err, errlen);
	if ((vm = vm_of(av, params)) == NULL || vm->name[0] == '\0') {
		snprintf(err, errlen, "%s is not running here",
		    json_string_value(json_object_get(params, "uuid")));
		return NULL;
	}
	snprintf(path, sizeof(path), VM_CONSOLE_DIR "/guest-%s.log", vm->name);
	if ((log = vm_console_tail(path, (size_t)json_integer_value(
	    json_object_get(params, "bytes")), VM_CONSOLE_JSON_MAX)) == NULL) {
		snprintf(err, errlen, "%s: %s (is xenconsoled running with "
		    "--log=guest?)", path, strerror(errno));
		return NULL;
	}
	return json_pack("{s:o}", "log", log);
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
