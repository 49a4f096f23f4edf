/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The vm.* methods behind the agent's dispatch table (agent/link.c,
 * PROTOCOL.md 6.2): vm.create (its check, its params parsed into a spec
 * and image refs, the images fetched and the disk copied, then the VM
 * handed to vm.c to create), vm.shutdown with a timeout, vm.destroy,
 * vm.reboot (reset when the guest does not reboot in time) and vm.list.
 * A handler starts the work and answers "accepted"; what the VM becomes
 * is reported by vm.c as vm.state notifies, and an image fetch's
 * completion (here) leads into create.
 *
 * Invariants: params were checked (schema, or agent_vm_create_check())
 * before a handler runs; a VM is looked up only through vm_find(), so
 * there is one struct vm per uuid; an image callback forgets its request
 * first, and the disk copy starts only when no fetch is outstanding.
 * Must never: start a second VM for a uuid or name that is known, wait on
 * libxl for a domain (long work goes through vm.c's asynchronous ops), or
 * echo a cmdline in a message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <libxl.h>
#include <libxl_utils.h>

#include "agent.h"
#include "domain.h"
#include "log.h"
#include "msg.h"
#include "vm.h"
#include "vm_internal.h"

static const char *const vm_img_names[VI_N] = { "kernel", "initramfs",
	"disk" };

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
		for (int j = 0; j < VI_N; j++) {
			img_cancel(vm->img[j].rq);
			vm->img[j].rq = NULL;
		}
		if (vm->mig != NULL)
			vm_mig_images(vm, r, msg);
		else
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
	/* A migration's target restores; it never creates. */
	if (vm->mig != NULL) {
		vm_mig_images(vm, 0, NULL);
		return;
	}
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

static json_t *
vm_accepted(bool existing)
{
	return existing ? json_pack("{s:b, s:b}", "accepted", 1, "existing", 1) :
	    json_pack("{s:b}", "accepted", 1);
}

json_t *
vm_cmd_no_xen(char *err, size_t errlen)
{
	snprintf(err, errlen, "no Xen on this host");
	return NULL;
}

struct vm *
vm_cmd_new_from(struct agent_vm *av, const json_t *params, char *err,
    size_t errlen)
{
	char url[VI_N][IMG_URL_MAX + 1], sha[VI_N][IMG_SHA_HEX + 1];
	struct dom_spec *ds;
	struct vm *vm = NULL;

	if ((ds = malloc(sizeof(*ds))) == NULL)
		goto nomem;
	if (vm_create_parse(params, ds, url, sha, err, errlen) < 0)
		goto out;
	if ((vm = vm_alloc(av, ds->name, ds->uuid)) == NULL)
		goto nomem;
	vm->spec = *ds;
	vm->has_spec = true;
	vm->phase = VP_FETCHING;
	for (int i = 0; i < VI_N; i++) {
		snprintf(vm->img[i].url, sizeof(vm->img[i].url), "%s", url[i]);
		snprintf(vm->img[i].sha, sizeof(vm->img[i].sha), "%s", sha[i]);
	}
	goto out;
nomem:
	snprintf(err, errlen, "out of memory");
out:
	free(ds);
	return vm;
}

int
vm_cmd_fetch(struct vm *vm, char *err, size_t errlen)
{
	/* The disk copy is made after the fetches, in vm_img_done(). */
	for (int i = 0; i < VI_N; i++) {
		if (vm->img[i].sha[0] == '\0')
			continue;
		if ((vm->img[i].rq = img_fetch(vm->av->cache, vm->img[i].url,
		    vm->img[i].sha, vm_img_cbs[i], vm)) == NULL) {
			snprintf(err, errlen, "%s image: cannot start the fetch",
			    vm_img_names[i]);
			return -ENOMEM;
		}
		vm->fetching++;
	}
	return 0;
}

json_t *
agent_vm_create(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct vm *vm;
	const char *name, *uuid;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	/* Checked by the dispatch (agent_vm_create_check()). */
	name = json_string_value(json_object_get(params, "name"));
	uuid = json_string_value(json_object_get(params, "uuid"));
	if ((vm = vm_find(av, uuid, name)) != NULL) {
		if (strcmp(vm->uuid, uuid) != 0) {
			snprintf(err, errlen, "name %s is taken by VM %s", name,
			    vm->uuid);
			return NULL;
		}
		if (vm->mig != NULL) {
			snprintf(err, errlen, "%s is migrating", vm->name);
			return NULL;
		}
		/* Never twice; a VM on its way reports when it gets there. */
		if (vm->phase == VP_RUNNING)
			vm_notify(vm, "running", NULL);
		return vm_accepted(true);
	}
	if ((vm = vm_cmd_new_from(av, params, err, errlen)) == NULL)
		return NULL;
	if (vm_cmd_fetch(vm, err, errlen) < 0)
		vm_end(vm, "failed", err);
	else
		log_info("vm %s (%s): creating", vm->name, vm->uuid);
	return vm_accepted(false);
}

/* The VM's own operations wait while it migrates: which copy runs is the
 * migration's to decide. */
static bool
vm_cmd_migrating(const struct vm *vm, char *err, size_t errlen)
{
	if (vm->mig == NULL)
		return false;
	snprintf(err, errlen, "%s is migrating; try again when the migration "
	    "ends", vm->name);
	return true;
}

/* The VM of params.uuid, or NULL when no domain has it. */
struct vm *
vm_cmd_of(struct agent_vm *av, const json_t *params)
{
	return vm_find(av, json_string_value(json_object_get(params, "uuid")),
	    NULL);
}

struct vm *
vm_cmd_running(struct agent_vm *av, const json_t *params, char *err,
    size_t errlen)
{
	struct vm *vm = vm_cmd_of(av, params);

	if (vm != NULL && vm->phase == VP_RUNNING)
		return vm;
	snprintf(err, errlen, "%s is not running here",
	    json_string_value(json_object_get(params, "uuid")));
	return NULL;
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
		return vm_cmd_no_xen(err, errlen);
	if ((vm = vm_cmd_of(av, params)) == NULL)
		return vm_not_running(av, params);
	if (vm_cmd_migrating(vm, err, errlen))
		return NULL;
	tv.tv_sec = (time_t)json_integer_value(json_object_get(params,
	    "timeout_s"));
	vm->after = VA_STOPPED;
	switch (vm->phase) {
	case VP_FETCHING:
	case VP_CREATING:
		vm->cancel = true;
		break;
	case VP_RUNNING:
	case VP_REBOOTING:
		/* A stop overrides a reboot asked before it. */
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
		return vm_cmd_no_xen(err, errlen);
	if ((vm = vm_cmd_of(av, params)) == NULL) {
		/* Its disk copy may outlive the domain. */
		if (av->cache != NULL)
			(void)img_disk_remove(av->cache, json_string_value(
			    json_object_get(params, "uuid")));
		return vm_not_running(av, params);
	}
	if (vm_cmd_migrating(vm, err, errlen))
		return NULL;
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

/*
 * The guest is asked; vm.c's reboot path (its shutdown reason reboot, the
 * domain destroyed and created again) brings it back.  A guest that has
 * not gone down for it after VM_REBOOT_TIMEOUT_S, or that libxl cannot
 * ask, is reset.  Only a VM with a spec: an adopted one could not be
 * created again, so it is refused rather than left stopped.
 */
json_t *
agent_vm_reboot(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	struct timeval tv = { VM_REBOOT_TIMEOUT_S, 0 };
	char why[MSG_VM_REASON_MAX + 1], reason[MSG_VM_REASON_MAX + 1];
	struct vm *vm;
	int rc;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	if ((vm = vm_cmd_of(av, params)) == NULL) {
		snprintf(err, errlen, "%s is not running here",
		    json_string_value(json_object_get(params, "uuid")));
		return NULL;
	}
	if (vm_cmd_migrating(vm, err, errlen))
		return NULL;
	switch (vm->phase) {
	case VP_FETCHING:
	case VP_CREATING:
		snprintf(err, errlen, "%s is still being created; not rebooted",
		    vm->name);
		return NULL;
	case VP_STOPPING:
	case VP_DESTROYING:
		snprintf(err, errlen, "%s is stopping; not rebooted", vm->name);
		return NULL;
	case VP_REBOOTING:
		/* Asked already: the first request's grace goes on. */
		return vm_accepted(false);
	case VP_RUNNING:
		break;
	}
	if (!vm->has_spec) {
		snprintf(err, errlen, "%s was adopted (it ran before this agent "
		    "started), so its config is unknown here and it could not "
		    "be created again; stop and start it instead", vm->name);
		return NULL;
	}
	vm->phase = VP_REBOOTING;
	xen_clear_err(av->xen);
	if ((rc = libxl_domain_reboot(av->ctx, vm->domid, NULL)) != 0) {
		vm_xl_err(av, rc, why, sizeof(why), "reboot");
		log_warnx("vm %s: clean reboot refused (%s); resetting it",
		    vm->name, why);
		snprintf(reason, sizeof(reason), "no clean reboot (%.160s); "
		    "reset (destroyed and created again)", why);
		vm_reset(vm, reason);
		return vm_accepted(false);
	}
	log_info("vm %s (%s): reboot asked", vm->name, vm->uuid);
	evtimer_add(vm->ev_timeout, &tv);
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
		return vm_cmd_no_xen(err, errlen);
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
