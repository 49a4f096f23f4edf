/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's api layer: REST handlers, boot pages, metrics, backup.
 */
#ifndef HVD_API_H
#define HVD_API_H

#include "fleet.h"

/* api.c: REST routes. */
void api_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *reply);
void api_shutdown(void);

/* api_network.c, api_token.c: one file per resource. */
void api_networks_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_networks_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_network_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_patch(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_shutdown(void);
void api_tokens_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_tokens_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_token_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* backup.c, restore.c: one file holds the inventory, the master key, the
 * images and the boot files. */
void api_backup(struct hvd *, const struct http_request *, struct http_reply *);
/* Ends a backup still being written (its client gets 503): before
 * http_shutdown(), as its reply is deferred. */
void backup_shutdown(void);
/* Unpacks a backup into conf's state-dir, which must hold no inventory,
 * and its boot files into conf's boot-root; checks it whole first and
 * leaves nothing on failure (err says why, naming the entry or image). */
int backup_restore(const struct hvd_config *conf, const char *file, char *err,
    size_t errlen);

/* api_host.c */
void api_hosts_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_hosts_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_host_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_telemetry(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_command(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_show_config(struct hvd *hvd, const struct host_row *h, json_t *j);

/* api_host_ident.c */
void api_host_adopt(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_replace(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_retire(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_edit(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* api_host_drain.c: maintenance mode (fleet/drain.c). */
void api_host_drain(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_undrain(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_drain_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* api_image.c: the image store. */
bool image_name_valid(const char *s);
bool api_image_is_upload(const char *method, const char *url);
void api_images_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_image_add(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_image_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* api_vm.c */
void api_vms_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_vms_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_vm_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_stop(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_start(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_reboot(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_destroy(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_console(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_migrate(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_operation_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* api_vm_console.c: interactive consoles (fleet/console.c). */
void api_vm_console_attach(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_consoles_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_console_read(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_console_input(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_console_detach(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* boot.c: iPXE scripts and boot files over HTTP, the boot root. */
int boot_init(struct hvd *hvd);
void boot_shutdown(void);
void boot_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);
json_t *boot_status_json(void);

/* metrics.c */
void metrics_count_request(const char *route, const char *method,
    unsigned status);
int metrics_render(struct hvd *hvd, char **out, size_t *len);
void metrics_shutdown(void);

/* dash_session.c: the dashboard's sign-in (POST/GET/DELETE
 * /api/v1/session); dash_session_check is http_routes.session. */
void api_session_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_session_show(struct hvd *, const struct http_request *, struct http_reply *);
void api_session_delete(struct hvd *, const struct http_request *, struct http_reply *);
int dash_session_check(struct hvd *hvd, const char *cookie, const char *method,
    const char *csrf, enum api_role *role, char *actor, size_t actorlen,
    const char **why);
void dash_session_metrics(FILE *f);
void dash_session_shutdown(void);

/* dashboard.c: the dashboard's page (GET /) and files (GET /ui/NAME). */
void api_dashboard_page(struct hvd *, const struct http_request *, struct http_reply *);
void api_dashboard_asset(struct hvd *, const struct http_request *, struct http_reply *, const char *name);

/* feed.c: the live feed, GET /api/v1/feed (Server-Sent Events).
 * feed_shutdown() before http_shutdown(). */
void api_feed(struct hvd *, const struct http_request *, struct http_reply *);
int feed_init(struct hvd *hvd);
void feed_shutdown(void);
void feed_metrics(FILE *f);

/* boot_ovl.c: the overlay and discovery routes of the boot listener. */
void boot_ovl_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);
void boot_discover_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);

#endif
