/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl's private header, grouped by file.
 *
 * Exit codes are part of the interface (scripts branch on them):
 */
#ifndef HVCTL_H
#define HVCTL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

enum hvctl_exit {
	HVCTL_OK = 0,
	HVCTL_FAIL = 1,		/* server error, or anything else */
	HVCTL_USAGE = 2,	/* bad command line */
	HVCTL_NOT_RUNNING = 3,	/* nothing listens on the socket or URL */
	HVCTL_DENIED = 4,	/* socket permissions, 401 or 403 */
	HVCTL_REJECTED = 5,	/* the API refused the request (other 4xx) */
};

#define HVCTL_SOCKET_DEFAULT "/run/hypervisor/hvd.sock"

struct hvctl {
	const char *socket;
	const char *url;	/* http(s)://host:port, instead of the socket */
	const char *token;	/* bearer token for url */
	const char *ca;		/* https: a CA file vouches (--ca) */
	const char *pin;	/* https: the key's pin (--pin) */
	/* tls_trust.c's, resolved by tls_trust_prepare(). */
	char tls_pin[64];	/* the pin checked, "" with --ca or http */
	char tls_known[PATH_MAX + 16];	/* "FILE line N" it came from */
	bool tls_remember;	/* a new pin: remember it once it worked */
	char tls_err[256];	/* libcurl's CURL_ERROR_SIZE detail */
	bool json;
	/* A long-running command: its GETs wait out an hvd restart. */
	bool follow;
};

struct hvctl_reply {
	long status;
	json_t *body;		/* owned; NULL when the body was empty */
	bool via_tcp;		/* over url, not the socket */
	bool sent_token;	/* with a bearer token */
};

/* tls_trust.c: how an https URL's key is trusted (CA, pin, known hosts). */
int tls_trust_prepare(struct hvctl *h);
void tls_trust_apply(struct hvctl *h, CURL *c);
void tls_trust_remember(struct hvctl *h);
bool tls_trust_explain(struct hvctl *h, CURLcode cc);
/* tls_names.c: pure string rules of the above (fuzz_tls_names). */
bool url_is_https(const char *url);
/* "host:port" of an https URL into OUT (":443" added when none), or
 * -EINVAL: no host, userinfo, or too long. */
int url_hostport(const char *url, char *out, size_t len);
/* "sha256//" and 44 base64 characters. */
bool tls_pin_valid(const char *pin);
/* One known-hosts line "HOST:PORT PIN", split in place; -EINVAL if it is
 * not one (a comment, no space, a bad pin, a '/' in the host). */
int known_hosts_line(char *line, const char **hostport, const char **pin);

/* client.c */
int client_call(struct hvctl *h, const char *method, const char *path,
    json_t *body, struct hvctl_reply *out);
int client_check(const struct hvctl_reply *r, const char *what);
int client_download(struct hvctl *h, const char *path, int fd,
    struct hvctl_reply *out);
int client_upload(struct hvctl *h, const char *path, FILE *f, uint64_t size,
    struct hvctl_reply *out);
void client_reply_dispose(struct hvctl_reply *r);
void client_global_init(void);
void client_global_cleanup(void);
/* SIGINT and SIGTERM set a flag instead of killing hvctl, for a command
 * that runs until stopped (top); client_interrupted() reads it, and a
 * request or a wait for hvd in progress then ends (HVCTL_FAIL, quietly). */
void client_catch_interrupt(void);
bool client_interrupted(void);

/* output.c */
struct table;
struct table *table_new(const char *const *headers, size_t ncols);
void table_add(struct table *t, const char *const *cells);
void table_print(struct table *t);
void table_free(struct table *t);
void output_json(const json_t *j);
const char *output_str(const json_t *obj, const char *key);
const char *output_cell(const json_t *obj, const char *key);
const char *output_epoch(int64_t secs, char *buf, size_t len);
const char *output_time(const json_t *obj, const char *key, char *buf,
    size_t len);

/* cmd_status.c, cmd_net.c, cmd_token.c */
int cmd_status(struct hvctl *h, int argc, char **argv);
int cmd_net_create(struct hvctl *h, int argc, char **argv);
int cmd_net_list(struct hvctl *h, int argc, char **argv);
int cmd_net_show(struct hvctl *h, int argc, char **argv);
int cmd_net_delete(struct hvctl *h, int argc, char **argv);
int cmd_token_create(struct hvctl *h, int argc, char **argv);
int cmd_token_list(struct hvctl *h, int argc, char **argv);
int cmd_token_revoke(struct hvctl *h, int argc, char **argv);

/* cmd_host.c, cmd_top.c */
int cmd_host_add(struct hvctl *h, int argc, char **argv);
int cmd_host_list(struct hvctl *h, int argc, char **argv);
int cmd_host_show(struct hvctl *h, int argc, char **argv);
int cmd_host_delete(struct hvctl *h, int argc, char **argv);
int cmd_host_call(struct hvctl *h, int argc, char **argv);
int cmd_host_telemetry(struct hvctl *h, int argc, char **argv);
/* cmd_host_drain.c */
int cmd_host_drain(struct hvctl *h, int argc, char **argv);
int cmd_host_undrain(struct hvctl *h, int argc, char **argv);
/* cmd_host_ident.c */
int cmd_host_adopt(struct hvctl *h, int argc, char **argv);
int cmd_host_replace(struct hvctl *h, int argc, char **argv);
int cmd_host_retire(struct hvctl *h, int argc, char **argv);
int cmd_host_edit(struct hvctl *h, int argc, char **argv);
int host_table(const json_t *hosts);
int cmd_top(struct hvctl *h, int argc, char **argv);

/* cmd_image.c, cmd_vm.c */
int cmd_image_add(struct hvctl *h, int argc, char **argv);
int cmd_image_list(struct hvctl *h, int argc, char **argv);
int cmd_image_rm(struct hvctl *h, int argc, char **argv);
int cmd_vm_create(struct hvctl *h, int argc, char **argv);
int cmd_vm_list(struct hvctl *h, int argc, char **argv);
int cmd_vm_show(struct hvctl *h, int argc, char **argv);
int cmd_vm_stop(struct hvctl *h, int argc, char **argv);
int cmd_vm_start(struct hvctl *h, int argc, char **argv);
int cmd_vm_reboot(struct hvctl *h, int argc, char **argv);
int cmd_vm_destroy(struct hvctl *h, int argc, char **argv);
int cmd_vm_console(struct hvctl *h, int argc, char **argv);
/* cmd_vm_console.c: vm console [--attach] (the log is cmd_vm_console). */
int cmd_vm_console_main(struct hvctl *h, int argc, char **argv);
int cmd_vm_migrate(struct hvctl *h, int argc, char **argv);

/* cmd_backup.c */
int cmd_backup(struct hvctl *h, int argc, char **argv);

/* cmd_boot.c */
int cmd_boot_import(struct hvctl *h, int argc, char **argv);
int cmd_boot_list(struct hvctl *h, int argc, char **argv);

/* main.c */
int hvctl_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
