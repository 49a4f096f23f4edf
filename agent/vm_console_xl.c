/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The Xen side of the interactive console relay (vm_console_attach.h):
 * which pty a VM's console is and whether its domain is still the one the
 * relay opened it for.
 *
 * The pty is the one xl console uses: libxl_console_get_tty(ctx, domid, 0,
 * LIBXL_CONSOLE_TYPE_PV) reads /local/domain/<domid>/console/tty, which
 * xenconsoled writes when it gives the domain's PV console (hvc0 in the
 * guest) a pty; xenconsoled holds the master and the relay opens the
 * slave.  That key is in the guest's own xenstore directory, so the
 * guest can write it: the relay opens only what vca_tty_open() allows.
 *
 * Invariants: liveness is decided from the agent's own VM list, never by
 * asking libxl, so the relay's timer costs nothing.
 * Must never: create, adopt or change a domain for a console.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>

#include "agent.h"
#include "vm.h"
#include "vm_console_attach.h"
#include "vm_internal.h"

/* A domain is there in these phases (VP_DESTROYING: on its way out). */
static bool
vm_console_has_domain(const struct vm *vm)
{
	return vm->domid != (uint32_t)INVALID_DOMID && vm->domid != 0 &&
	    (vm->phase == VP_RUNNING || vm->phase == VP_REBOOTING ||
	    vm->phase == VP_STOPPING);
}

int
agent_vm_console_tty(struct agent_vm *av, const char *uuid, char *path,
    size_t pathlen, uint32_t *domid, char *err, size_t errlen)
{
	struct vm *vm;
	char *tty = NULL;
	int rc;

	if (av == NULL) {
		snprintf(err, errlen, "no Xen on this host");
		return -ENODEV;
	}
	if ((vm = vm_find(av, uuid, NULL)) == NULL ||
	    !vm_console_has_domain(vm)) {
		snprintf(err, errlen, "%s is not running here", uuid);
		return -ESRCH;
	}
	xen_clear_err(av->xen);
	if ((rc = libxl_console_get_tty(av->ctx, vm->domid, 0,
	    LIBXL_CONSOLE_TYPE_PV, &tty)) != 0 || tty == NULL) {
		vm_xl_err(av, rc, err, errlen, "console");
		free(tty);
		return -EIO;
	}
	if (tty[0] == '\0' || strlen(tty) >= pathlen) {
		snprintf(err, errlen, "vm %s has no console pty yet (is "
		    "xenconsoled running?)", vm->name);
		free(tty);
		return -ENOENT;
	}
	snprintf(path, pathlen, "%s", tty);
	free(tty);
	*domid = vm->domid;
	return 0;
}

bool
agent_vm_console_alive(struct agent_vm *av, const char *uuid,
    uint32_t domid)
{
	struct vm *vm;

	if (av == NULL)
		return false;
	TAILQ_FOREACH(vm, &av->vms, entry)
		if (strcmp(vm->uuid, uuid) == 0)
			return vm->domid == domid && vm_console_has_domain(vm);
	return false;
}
