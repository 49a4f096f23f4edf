/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's connection to hvd and its configuration (agent.conf).
 * Grouped by file: conf.c, link.c.
 */
#ifndef HV_AGENT_LINK_H
#define HV_AGENT_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* conf.c */
struct agent_conf {
	char hvd_host[64];
	int hvd_family;
	uint16_t hvd_port;
	uint8_t hvd_key[32];
	char host[64];
	char boot_token[69];		/* "" when none */
	char key_file[256];
	char session_file[256];
	char mesh_file[256];		/* missing file: no mesh to apply */
	uint32_t mesh_interval_s;	/* reconcile period, 1..3600 */
	char discovery_url[256];	/* set: discovery mode, no session */
	bool discovery_reboot;		/* reboot once adopted */
	char fstab[256];		/* UUID=/LABEL= lines mounted at start */
};
void agent_conf_defaults(struct agent_conf *c);
int agent_conf_parse(struct agent_conf *c, const char *buf, size_t len,
    const char *fname, char *err, size_t errlen);
int agent_conf_load(struct agent_conf *c, const char *path, char *err,
    size_t errlen);
int agent_key_load(const char *path, uint8_t key[32], char *err,
    size_t errlen);

struct event_base;
/* discover.c: discovery mode (an unadopted machine's agent). */
struct agent_discover;
struct agent_discover *agent_discover_new(struct event_base *base,
    const struct agent_conf *conf);
void agent_discover_free(struct agent_discover *ad);

/* link.c */
struct event_base;
struct agent_link;
struct agent_link *agent_link_new(struct event_base *base,
    const struct agent_conf *conf, const uint8_t key[32]);
void agent_link_start(struct agent_link *al);
void agent_link_free(struct agent_link *al);
struct agent_mesh;
/* Borrowed: serves mesh.apply; NULL (the default) answers it "failed". */
void agent_link_set_mesh(struct agent_link *al, struct agent_mesh *am);
struct agent_vm;
/* Borrowed: serves vm.* and sends its vm.state; NULL: "no Xen". */
void agent_link_set_vm(struct agent_link *al, struct agent_vm *vm);
/* Delay before reconnect attempt n (1-based), PROTOCOL.md section 10;
 * rnd is uniform in [0, 1). */
unsigned agent_backoff_ms(unsigned attempt, double rnd);

#endif
