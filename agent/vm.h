/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's VMs: the image store (images.c), libxl on the libevent loop
 * (xlevent.c) and the vm.* methods (vm.c, vm_cmd.c, vm_console.c).
 * Grouped by file.
 *
 * Everything runs on the agent's one event loop; no call here blocks on
 * the network or on libxl, and no callback is ever made from inside the
 * function that started the work (callers need not fear re-entrancy).
 */
#ifndef HV_AGENT_VM_H
#define HV_AGENT_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <jansson.h>

struct event_base;

/* images.c */
/*
 * Images are files named by their SHA-256 (lowercase hex) in one cache
 * directory: IMG_PERSIST_DIR when it is a directory on a mounted local
 * filesystem (not tmpfs or ramfs), else IMG_VOLATILE_DIR in RAM.  A file
 * exists under its final name only after its hash was checked; downloads
 * go to ".<sha256>.part" and are renamed.  A file this process did not
 * verify itself (found at start, or on local storage after a reboot) is
 * hashed again before use; one it verified is reused when its size, inode
 * and mtime are unchanged.
 *
 * Fetches: http://<numeric address>[:port]/images/<sha256> only (no DNS on
 * the loop, no redirects), streamed to the file and hashed as it arrives
 * (crypto_hash_sha256).  A body whose hash differs is deleted and the fetch
 * fails.  Several requests for one image share one download.
 *
 * VM disks are writable, so a VM never runs on the cached image: its disk
 * is a copy, IMG_VM_SUBDIR/<uuid>.disk in the cache directory, made once
 * and kept (with the guest's writes) until img_disk_remove().
 */
#define IMG_PERSIST_DIR		"/var/lib/hv/images"
#define IMG_VOLATILE_DIR	"/run/hv/images"
#define IMG_VM_SUBDIR		"vm"
#define IMG_SHA_HEX		64
#define IMG_URL_MAX		255
#define IMG_PATH_MAX		255
#define IMG_TIMEOUT_S		60	/* HTTP connect and idle read */

/*
 * The cache directory: PERSIST if it is a directory on a filesystem that
 * is neither tmpfs nor ramfs, else VOLATILE (created 0700 with its
 * parents).  Writes the choice to OUT.  0 or -errno.
 */
int img_dir_choose(const char *persist, const char *volatile_dir, char *out,
    size_t outlen);
/* URL and hash as vm.create carries them: 0, or -EINVAL with err set. */
int img_ref_check(const char *url, const char *sha256, char *err,
    size_t errlen);

struct img_cache;
struct img_req;
/*
 * R is 0 with PATH the file to use, or -errno with ERR saying why; called
 * from the loop, once, unless the request was cancelled first.  The
 * request is freed after the callback returns.
 */
typedef void img_done_fn(void *arg, int r, const char *path, const char *err);

/* DIR must exist.  NULL and errno on failure. */
struct img_cache *img_cache_new(struct event_base *base, const char *dir);
/* NULL-safe.  Pending requests are dropped without their callbacks. */
void img_cache_free(struct img_cache *c);
const char *img_cache_dir(const struct img_cache *c);
/* URL and SHA256 must pass img_ref_check().  NULL and errno on failure. */
struct img_req *img_fetch(struct img_cache *c, const char *url,
    const char *sha256, img_done_fn *cb, void *arg);
/*
 * The VM's disk: copies the cached image SHA256 (which must have been
 * fetched) to <dir>/vm/<uuid>.disk unless that file exists already.
 */
struct img_req *img_disk(struct img_cache *c, const char *sha256,
    const char *uuid, img_done_fn *cb, void *arg);
/* Deletes the VM's disk copy: 0, or -errno (-ENOENT when none). */
int img_disk_remove(struct img_cache *c, const char *uuid);
/* NULL-safe; the callback will not be called.  A download goes on. */
void img_cancel(struct img_req *rq);

/* xlevent.c */
/*
 * libxl's osevent hooks on libevent.  The occurred functions are libxl's
 * (libxl_osevent_occurred_fd/_timeout) in the agent; tests pass fakes.
 */
struct xlev;
struct xlev_ops {
	void (*fd_occurred)(void *ctx, void *for_libxl, int fd, short events,
	    short revents);
	void (*timeout_occurred)(void *ctx, void *for_libxl);
};
/* CTX is handed to the ops.  NULL and errno on failure. */
struct xlev *xlev_new(struct event_base *base, const struct xlev_ops *ops,
    void *ctx);
/* NULL-safe; after libxl_ctx_free() (libxl deregisters nothing then). */
void xlev_free(struct xlev *x);
/* libxl's hooks table, its user pointer being the struct xlev. */
struct libxl_osevent_hooks;
const struct libxl_osevent_hooks *xlev_hooks(void);
/* Registrations alive (tests). */
unsigned xlev_count(const struct xlev *x);

/* vm.c (lifecycle), vm_cmd.c (the methods), vm_console.c (vm.console) */
struct agent_vm;
/*
 * Called with a notify's method (vm.state, vm.migration,
 * migration.refused) and params (a new reference the callee takes), from
 * the loop, in the order they happened.
 */
typedef void vm_notify_fn(void *arg, const char *method, json_t *params);
/*
 * -ENODEV without Xen (not a dom0), else a libxl context on BASE with the
 * image cache in DIR (NULL: img_dir_choose() of the defaults).  Domains
 * already running are adopted, so their deaths are reported.
 */
int agent_vm_new(struct event_base *base, const char *dir,
    struct agent_vm **out);
/* NULL-safe. */
void agent_vm_free(struct agent_vm *v);
void agent_vm_set_notify(struct agent_vm *v, vm_notify_fn *fn, void *arg);
/*
 * vm.create's whole check (error code invalid): its msg schema, then
 * images (img_ref_check) and the rest as agent/domain.h says.  0 or
 * -EINVAL/-ENOMEM with err naming the path.
 */
int agent_vm_create_check(const json_t *params, char *err, size_t errlen);
/*
 * The vm.* methods (PROTOCOL.md 6.2), params already checked (schema, or
 * agent_vm_create_check()).  Each returns the result, or NULL with err
 * set (error code failed).  V may be NULL: every method then fails "no
 * Xen on this host".
 */
json_t *agent_vm_create(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_shutdown(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_destroy(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_reboot(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_list(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_console(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
/* vm_migrate.c: vm.migrate_in, vm.migrate_out, vm.migrate_end. */
json_t *agent_vm_migrate_in(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_migrate_out(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
json_t *agent_vm_migrate_end(struct agent_vm *v, json_t *params, char *err,
    size_t errlen);
/* The agent's static X25519 secret, for the migration channel (copied). */
void agent_vm_set_key(struct agent_vm *v, const uint8_t sk[32]);
/*
 * The last BYTES bytes of the console log at PATH as a JSON string:
 * invalid UTF-8 becomes '?', a character cut at the start is dropped, and
 * the oldest bytes go first until the escaped string fits in MAXJSON
 * bytes.  NULL and errno (ENOENT: no log).
 */
json_t *vm_console_tail(const char *path, size_t bytes, size_t maxjson);

#endif
