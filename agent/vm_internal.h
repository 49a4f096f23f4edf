/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Shared by vm.c (lifecycle), vm_cmd.c (the vm.* methods), vm_migrate.c
 * (migration), vm_console.c (vm.console) and vm_console_xl.c (the
 * attached console's Xen side) only: struct vm, struct agent_vm and the few
 * functions that cross those files.  No other file may include this
 * header; the agent's VM interface is vm.h.
 */
#ifndef HV_AGENT_VM_INTERNAL_H
#define HV_AGENT_VM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>
#include <libxl.h>

#include "domain.h"
#include "msg.h"
#include "vm.h"

struct event;
struct event_base;
struct mig_listener;
struct vm_mig;
struct xen;

/* xenconsoled --log=guest writes VM_CONSOLE_DIR/guest-<domain name>.log */
#define VM_CONSOLE_DIR		"/var/log/xen/console"

/* The names a migrating VM's domains have on each side (PROTOCOL.md 6.2). */
#define VM_MIG_SUFFIX_IN	"--incoming"
#define VM_MIG_SUFFIX_AWAY	"--migratedaway"

/* How long a guest asked to reboot has to shut down for it before it is
 * reset (destroyed and created again). */
#define VM_REBOOT_TIMEOUT_S	30

enum vm_phase { VP_FETCHING, VP_CREATING, VP_RUNNING, VP_REBOOTING,
    VP_STOPPING, VP_DESTROYING };
enum vm_after { VA_STOPPED, VA_CRASHED, VA_REBOOT };
enum vm_img { VI_KERNEL, VI_INITRAMFS, VI_DISK, VI_N };

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
	bool died;			/* death seen while destroying */
	bool remove_disk;		/* vm.destroy: the disk copy goes */
	bool quiet;			/* it ends without a vm.state: it moved */
	struct vm_mig *mig;		/* vm_migrate.c's, while it migrates */
	enum vm_after after;
	char reason[MSG_VM_REASON_MAX + 1];
	struct event *ev_timeout;	/* shutdown or reboot grace */
	struct event *ev_create;	/* vm_create_domain() on a new pass */
};
TAILQ_HEAD(vm_list, vm);

struct vm_evt;

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
	json_t *outq;			/* [method, params] notifies to send */
	struct event *ev_flush;
	vm_notify_fn *notify;
	void *notify_arg;
	uint8_t *mig_sk;		/* the agent's X25519 key (sodium_malloc) */
	struct mig_listener *mig_listener;	/* made at the first migrate_in */
	struct {
		char peer[MSG_MIG_ADDR_MAX + 1];
		int64_t at;
	} refused[16];			/* migration.refused, per peer */
};

/* vm.c */
/* libxl's error as text for a notify or a reply. */
void vm_xl_err(struct agent_vm *av, int rc, char *err, size_t errlen,
    const char *what);
/* Queues a vm.state notify of STATE (REASON may be NULL or ""). */
void vm_notify(struct vm *vm, const char *state, const char *reason);
/* Queues a notify of METHOD; takes PARAMS (NULL: nothing is sent). */
void vm_notify_method(struct agent_vm *av, const char *method,
    json_t *params);
/* Sets the reason the VM's next state will be reported with. */
void vm_reason(struct vm *vm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Reports STATE once and forgets the VM (freed when no op holds it). */
void vm_end(struct vm *vm, const char *state, const char *reason);
/* A new VM on AV's list, no domain yet.  NULL on failure. */
struct vm *vm_alloc(struct agent_vm *av, const char *name, const char *uuid);
/* CREATING: the create op starts from a timer, on a later pass. */
void vm_create_later(struct vm *vm);
/* DESTROYING: the destroy op, unless one runs already. */
void vm_destroy_domain(struct vm *vm);
/* A hard reset: the domain is destroyed and created again from the VM's
 * spec (it must have one); running follows, with WHY as its reason. */
void vm_reset(struct vm *vm, const char *why);
/* Death events for the VM's current domain: 0 or -EIO. */
int vm_watch(struct vm *vm);
/* An asyncop for a migration's suspend or restore; its end comes back on
 * the loop as vm_mig_op_done(). */
libxl_asyncop_how vm_mig_how(struct vm *vm);
/* The VM of UUID (or NAME), adopting a domain the agent did not know. */
struct vm *vm_find(struct agent_vm *av, const char *uuid, const char *name);

/* vm_cmd.c */
/* Every method's failure when V is NULL: sets err, returns NULL. */
json_t *vm_cmd_no_xen(char *err, size_t errlen);
/* The VM of params.uuid, or NULL when no domain has it. */
struct vm *vm_cmd_of(struct agent_vm *av, const json_t *params);
/* The VM of params.uuid if it runs here; else NULL with err saying so. */
struct vm *vm_cmd_running(struct agent_vm *av, const json_t *params,
    char *err, size_t errlen);
/* A new VM (FETCHING, nothing started) from checked vm.create params;
 * NULL with err set. */
struct vm *vm_cmd_new_from(struct agent_vm *av, const json_t *params,
    char *err, size_t errlen);
/* Starts the VM's image fetches: 0, or -errno with err set. */
int vm_cmd_fetch(struct vm *vm, char *err, size_t errlen);

/* vm_migrate.c */
/* NULL-safe; the VM's migration state, with its channel and fds. */
void vm_mig_free(struct vm_mig *m);
/* A migration's suspend or restore ended with libxl's RC. */
void vm_mig_op_done(struct vm *vm, int rc);
/* A migrating VM's images: R 0, or -errno with ERR. */
void vm_mig_images(struct vm *vm, int r, const char *err);
/* NAME ends in SUFFIX (and has something before it). */
bool vm_mig_named(const char *name, const char *suffix);

#endif
