/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's interactive consoles (PROTOCOL.md 6.2: vm.console_attach,
 * vm.console_input, vm.console_detach; the notifies vm.console_output and
 * vm.console_closed), grouped by file:
 *  - vm_console_attach.c, the relay: a domain's PV console pty on the
 *    loop, fanned out to the sessions attached to it, with backpressure
 *    from the link.  It knows neither libxl nor the link: both come in
 *    as struct vca_ops, so a test drives it with openpty();
 *  - vm_console_xl.c, the ops' Xen side: which pty a VM's console is
 *    (libxl_console_get_tty, as xl console finds it) and whether its
 *    domain is still the one attached to.
 *
 * Everything runs on the agent's one event loop.  Errors: the methods
 * return their result, or NULL with err set (error code "failed").
 */
#ifndef HV_AGENT_VM_CONSOLE_ATTACH_H
#define HV_AGENT_VM_CONSOLE_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include <jansson.h>

#include "console.h"

/* Past HIGH bytes unsent on the link no tty is read; below LOW again,
 * reading resumes.  Bounded: a notify is at most CONSOLE_OUTPUT_MAX raw. */
#define VCA_BACKLOG_HIGH	(256 * 1024)
#define VCA_BACKLOG_LOW		(64 * 1024)
#define VCA_SESSIONS_MAX	32	/* on this agent, all VMs together */
#define VCA_CHECK_MS		1000	/* the domains' liveness pass */
/* Input a tty has not taken yet, per VM; past it an input is refused. */
#define VCA_INPUT_PENDING_MAX	(4 * CONSOLE_INPUT_MAX)

struct event_base;
struct vca;
struct vca_ops {
	/*
	 * The console pty of UUID's running domain: its path into PATH and
	 * the domain into *DOMID.  0, or -errno with ERR saying why (the
	 * attach fails with it).
	 */
	int (*tty)(void *arg, const char *uuid, char *path, size_t pathlen,
	    uint32_t *domid, char *err, size_t errlen);
	/* Whether UUID still runs as DOMID. */
	bool (*alive)(void *arg, const char *uuid, uint32_t domid);
	/* Sends notify METHOD, taking PARAMS.  It may end the link, and so
	 * call vca_drop_all() from inside. */
	void (*notify)(void *arg, const char *method, json_t *params);
	/* Bytes the link holds, not yet written. */
	size_t (*backlog)(void *arg);
};

/* OPS and ARG must outlive the relay.  NULL and errno on failure. */
struct vca *vca_new(struct event_base *base, const struct vca_ops *ops,
    void *arg);
/* NULL-safe; ends every session without a notify, ttys restored. */
void vca_free(struct vca *r);
/* The methods; PARAMS passed their schema (MSG_S_VM_CONSOLE_*). */
json_t *vca_attach(struct vca *r, const json_t *params, char *err,
    size_t errlen);
json_t *vca_input(struct vca *r, const json_t *params, char *err,
    size_t errlen);
json_t *vca_detach(struct vca *r, const json_t *params, char *err,
    size_t errlen);
/* The link dropped: every session ends, unannounced (there is no one to
 * tell; hvd ends its side when the session goes). */
void vca_drop_all(struct vca *r);
/* The link's backlog went down: reading resumes once it is below LOW. */
void vca_drained(struct vca *r);
/* The liveness pass the timer runs: a domain gone ends its sessions
 * (vm.console_closed "the domain is gone"). */
void vca_check(struct vca *r);
unsigned vca_sessions(const struct vca *r);
/* True while reading is paused for the link's backlog. */
bool vca_paused(const struct vca *r);
/*
 * The open rule: PATH must be /dev/pts/N (a guest can write the xenstore
 * key it comes from), opened O_RDWR | O_NOCTTY | O_NONBLOCK without
 * following a symlink, a pty slave (character device, Unix98 pty major),
 * then raw (cfmakeraw), as xl console makes it; its attributes before
 * go to *SAVED.  The fd, or -errno with ERR saying why.
 */
int vca_tty_open(const char *path, struct termios *saved, char *err,
    size_t errlen);

/* vm_console_xl.c: struct vca_ops' Xen side over the agent's VMs. */
struct agent_vm;
/* V NULL: "no Xen on this host". */
int agent_vm_console_tty(struct agent_vm *v, const char *uuid, char *path,
    size_t pathlen, uint32_t *domid, char *err, size_t errlen);
/* From the agent's own VM list only: no libxl call. */
bool agent_vm_console_alive(struct agent_vm *v, const char *uuid,
    uint32_t domid);

#endif
