/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Host identity at boot time: the stage-2 request and the overlay request
 * name a machine by SMBIOS UUID and boot MAC; their fingerprint finds it in
 * the inventory or records it as discovered.  This file builds the
 * overlay and decides who may have it; api/boot_ovl.c serves it
 * (GET /ovl/{UUID}/{MAC}.apkovl.tar.gz) and takes a discovery agent's
 * hardware facts (POST /boot/discover).
 *
 * Must never: serve credentials twice for one boot, or to an address other
 * than the one that opened the boot (or, in full DHCP mode, holds the
 * MAC's lease); put a secret into a discovery overlay or a log line.
 * Every refusal writes an `ovl.refused` event.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fleet.h"

#define IDENT_BOOT_IF	"eth0"	/* the underlay NIC of a booted host */

/* Lab mode: an unknown machine is adopted on sight, named after its
 * fingerprint.  Production never does this (lab-auto-adopt is off). */
static int
ident_auto_adopt(struct hvd *hvd, struct host_row *h)
{
	struct api_host_spec *hs;
	struct host_row out;
	char ul[sizeof(out.underlay_ip)];
	int r = -EEXIST;

	if ((hs = calloc(1, sizeof(*hs))) == NULL)
		return -ENOMEM;
	snprintf(hs->labels, sizeof(hs->labels), "{\"lab\":\"auto\"}");
	for (int n = 6; n <= 12 && r == -EEXIST; n += 2) {
		snprintf(hs->name, sizeof(hs->name), "node-%.*s", n, h->fingerprint);
		r = db_host_adopt(hvd->db, h, hs, db_host_underlay(hvd->db, h,
		    hvd->conf->dhcp_mode == DHCP_FULL, ul, sizeof(ul)) == 0 ?
		    ul : NULL, "lab", hvd_now_wall(), &out);
	}
	free(hs);
	if (r < 0)
		return r;
	log_info("ident: lab-auto-adopt: %s is now host %s", h->boot_mac,
	    out.name);
	*h = out;
	return fleet_get(hvd, h) ? 0 : -ENOMEM;
}

int
ident_boot(struct hvd *hvd, const struct boot_query *q, const char *ip,
    bool stage2, struct host_row *h)
{
	struct host_seen s = { .stage2 = stage2 };
	int r;

	host_fingerprint(q->uuid, q->mac, s.fingerprint);
	snprintf(s.mac, sizeof(s.mac), "%s", q->mac);
	snprintf(s.uuid, sizeof(s.uuid), "%s", q->uuid);
	snprintf(s.serial, sizeof(s.serial), "%s", q->serial);
	snprintf(s.product, sizeof(s.product), "%s", q->product);
	snprintf(s.ip, sizeof(s.ip), "%s", ip ? ip : "");
	if ((r = db_host_seen(hvd->db, &s, hvd_now_wall(), h)) < 0)
		return r;
	if (strcmp(h->state, "discovered") == 0 && hvd->conf->lab_auto_adopt &&
	    (r = ident_auto_adopt(hvd, h)) < 0)
		log_warnx("ident: lab-auto-adopt of %s failed (%d)", q->mac, r);
	return 0;
}

/* Mounts as the inventory stores them (JSON written by db_ident.c). */
static size_t
ident_mounts(const char *text, struct apkovl_mount *m, size_t cap)
{
	json_t *arr = json_loads(text ? text : "[]", 0, NULL), *e;
	size_t i, n = 0;

	json_array_foreach(arr, i, e) {
		if (n == cap)
			break;
		snprintf(m[n].source, sizeof(m[n].source), "%s",
		    json_string_value(json_object_get(e, "source")) ?: "");
		snprintf(m[n].path, sizeof(m[n].path), "%s",
		    json_string_value(json_object_get(e, "path")) ?: "");
		snprintf(m[n].fstype, sizeof(m[n].fstype), "%s",
		    json_string_value(json_object_get(e, "fstype")) ?: "auto");
		snprintf(m[n].options, sizeof(m[n].options), "%s",
		    json_string_value(json_object_get(e, "options")) ?: "defaults");
		n++;
	}
	json_decref(arr);
	return n;
}

static int
ident_key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct apkovl_key *)a)->name,
	    ((const struct apkovl_key *)b)->name);
}

/*
 * The site's repository keys, alpine-mirror/keys/NAME.rsa.pub, in name
 * order: a few small files, read per overlay through the served-file rule.
 * A file apkovl_key_check() refuses is skipped, with a warning, so a bad
 * key never stops a boot.  The PEMs are malloc'd; ident_keys_free().
 */
static size_t
ident_keys(const struct hvd *hvd, struct apkovl_key *keys, size_t cap)
{
	char dir[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t n = 0;
	int dfd, fd;
	DIR *d;

	if (snprintf(dir, sizeof(dir), "%s/keys", hvd->conf->alpine_mirror) >=
	    (int)sizeof(dir) ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	if ((fd = dup(dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL && n < cap) {
		struct apkovl_key *k = &keys[n];
		const char *why;
		char *pem;
		ssize_t got;

		if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(k->name))
			continue;
		if ((fd = served_open(dfd, de->d_name, &st)) < 0)
			continue;
		pem = st.st_size > 0 && st.st_size <= APKOVL_KEY_MAX ?
		    malloc((size_t)st.st_size + 1) : NULL;
		got = pem ? pread(fd, pem, (size_t)st.st_size, 0) : -1;
		close(fd);
		if (got != (ssize_t)st.st_size) {
			free(pem);
			continue;
		}
		pem[got] = '\0';
		snprintf(k->name, sizeof(k->name), "%s", de->d_name);
		k->pem = pem;
		if ((why = apkovl_key_check(k)) != NULL) {
			log_warnx("boot: %s/%s left out of overlays: %s", dir,
			    de->d_name, why);
			free(pem);
			continue;
		}
		n++;
	}
	closedir(d);
	close(dfd);
	qsort(keys, n, sizeof(*keys), ident_key_cmp);
	return n;
}

static void
ident_keys_free(struct apkovl_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)(uintptr_t)keys[i].pem);
}

/* Builds h's overlay: with fresh credentials (agent_key, token) or, for a
 * discovered machine, without any. */
int
ident_overlay(struct hvd *hvd, const struct host_row *h,
    const char *agent_key_hex, const char *token, unsigned char **out,
    size_t *len, char *err, size_t errlen)
{
	struct apkovl_mount mounts[API_HOST_MOUNTS_MAX];
	struct apkovl_key keys[APKOVL_KEYS_MAX];
	struct apkovl_input in = { 0 };
	struct host_config cfg = { 0 };
	char agent[ADDR_STRLEN], url[ADDR_STRLEN], hvdkey[65];
	char hostname[API_NAME_MAX + 1], query[96];
	char *mesh = NULL;
	int r;

	if ((r = db_host_config(hvd->db, h->id, &cfg)) < 0) {
		snprintf(err, errlen, "database error");
		return r;
	}
	addr_agents(hvd, agent, sizeof(agent));
	addr_boot_url(hvd, url, sizeof(url));
	sodium_bin2hex(hvdkey, sizeof(hvdkey), keys_link_public(), 32);
	in.discovery = agent_key_hex == NULL;
	if (in.discovery) {
		snprintf(hostname, sizeof(hostname), "discovered-%.8s",
		    h->fingerprint);
		snprintf(query, sizeof(query), "mac=%s&uuid=%s", h->boot_mac,
		    h->uuid);
		in.discovery_query = query;
	}
	else
		snprintf(hostname, sizeof(hostname), "%s", h->name);
	in.hostname = hostname;
	in.boot_if = IDENT_BOOT_IF;
	in.hvd_url = url;
	in.hvd_agent = agent;
	in.hvd_key_hex = hvdkey;
	in.agent_key_hex = agent_key_hex;
	in.boot_token = token;
	if (!in.discovery) {
		mesh = mesh_host_json(hvd, h);
		in.mesh_json = mesh;
		in.ssh_keys = cfg.ssh_keys;
		in.mounts = mounts;
		in.nmounts = ident_mounts(cfg.mounts, mounts, API_HOST_MOUNTS_MAX);
	}
	in.apk_keys = keys;
	in.napk_keys = ident_keys(hvd, keys, APKOVL_KEYS_MAX);
	in.mtime = 0;
	r = apkovl_build(&in, out, len, err, errlen);
	ident_keys_free(keys, in.napk_keys);
	free(mesh);
	host_config_free(&cfg);
	return r;
}

/* Whether ip may fetch h's overlay: it opened the boot, or holds the
 * MAC's lease in full DHCP mode. */
bool
ident_ip_allowed(struct hvd *hvd, const struct host_row *h, const char *ip)
{
	struct lease_row l;

	if (h->boot_ip[0] && strcmp(h->boot_ip, ip) == 0)
		return true;
	return hvd->conf->dhcp_mode == DHCP_FULL &&
	    db_lease_get(hvd->db, h->boot_mac, &l) == 0 &&
	    strcmp(l.state, "bound") == 0 && strcmp(l.ip, ip) == 0;
}
