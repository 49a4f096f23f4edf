/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The mesh state's JSON form (lib/mesh.h): a strict parser, the same
 * checks over a state built in memory, and the encoder.
 *
 * Addresses are IPv4 or IPv6, one family per state, held as in6_addr
 * (IPv4-mapped for IPv4), and each has exactly one text: a dotted quad, or
 * IPv6 that is not IPv4-mapped or -compatible.
 *
 * Invariants: a state that leaves here is valid (mesh_state_validate()
 * passes), and bounded by MESH_NETS_MAX, MESH_VTEPS_MAX, MESH_MACS_MAX;
 * what mesh_state_to_json() writes parses back to the same state.  Error
 * text names the JSON path of the rejected value.  Never touches the
 * kernel.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh.h"

static int mj_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
mj_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void
mesh_state_free(struct mesh_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nnets; i++) {
		free(st->nets[i].vteps);
		free(st->nets[i].macs);
	}
	free(st->nets);
	free(st);
}

bool
mesh_ip_is_v4(const struct in6_addr *a)
{
	return IN6_IS_ADDR_V4MAPPED(a);
}

int
mesh_ip_parse(const char *text, struct in6_addr *out)
{
	struct in6_addr a;
	struct in_addr v4;

	if (text == NULL || strlen(text) >= MESH_IP_STRLEN)
		return -EINVAL;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memset(&a, 0, sizeof(a));
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12], &v4, 4);
	} else if (inet_pton(AF_INET6, text, &a) != 1 ||
	    IN6_IS_ADDR_V4MAPPED(&a) || IN6_IS_ADDR_V4COMPAT(&a)) {
		/* A second spelling of an IPv4 address would dodge its rules. */
		return -EINVAL;
	}
	*out = a;
	return 0;
}

void
mesh_ip_str(const struct in6_addr *a, char *buf, size_t len)
{
	bool v4 = mesh_ip_is_v4(a);
	const void *raw = v4 ? (const void *)&a->s6_addr[12] : (const void *)a;

	if (len == 0)
		return;
	if (inet_ntop(v4 ? AF_INET : AF_INET6, raw, buf, (socklen_t)(len <
	    MESH_IP_STRLEN ? len : MESH_IP_STRLEN)) == NULL)
		snprintf(buf, len, "?");
}

enum mj_class { MJ_UNICAST, MJ_NOT_UNICAST, MJ_LINK_LOCAL };

/*
 * IPv4: not 0/8, loopback, multicast, reserved or broadcast.  IPv6: not
 * ::/96 (::, ::1, and IPv4-compatible, which has no text of its own),
 * multicast, or link-local (a VTEP needs an address routable without a
 * zone).
 */
static enum mj_class
mj_class(const struct in6_addr *a)
{
	static const uint8_t zero[12];
	const uint8_t *b = a->s6_addr;

	if (mesh_ip_is_v4(a))
		return b[12] != 0 && b[12] != 127 && (b[12] >> 5) != 7 ?
		    MJ_UNICAST : MJ_NOT_UNICAST;
	if (memcmp(b, zero, sizeof(zero)) == 0 || b[0] == 0xff)
		return MJ_NOT_UNICAST;
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return MJ_LINK_LOCAL;
	return MJ_UNICAST;
}

static const char *
mj_family(const struct in6_addr *a)
{
	return mesh_ip_is_v4(a) ? "IPv4" : "IPv6";
}

/* Why A cannot be a remote VTEP of a node at LOCAL, or NULL if it can. */
static const char *
mj_remote_why(const struct in6_addr *a, const struct in6_addr *local)
{
	bool v4 = mesh_ip_is_v4(a);

	if (v4 != mesh_ip_is_v4(local))
		return v4 ? "an IPv4 VTEP for an IPv6 local address" :
		    "an IPv6 VTEP for an IPv4 local address";
	switch (mj_class(a)) {
	case MJ_LINK_LOCAL:
		return "a link-local IPv6 address; a VTEP needs a routable one";
	case MJ_NOT_UNICAST:
		break;
	case MJ_UNICAST:
		if (memcmp(a, local, sizeof(*a)) != 0)
			return NULL;
		break;
	}
	return v4 ? "not a remote unicast IPv4 address" :
	    "not a remote unicast IPv6 address";
}

static int
mj_cmp_ip(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct in6_addr));
}

static int
mj_cmp_mac(const void *a, const void *b)
{
	return memcmp(((const struct mesh_mac *)a)->mac,
	    ((const struct mesh_mac *)b)->mac, 6);
}

static int
mj_cmp_vni(const void *a, const void *b)
{
	uint32_t x = ((const struct mesh_net *)a)->vni;
	uint32_t y = ((const struct mesh_net *)b)->vni;

	return x < y ? -1 : x > y;
}

static bool
mj_ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

int
mesh_state_validate(const struct mesh_state *st, char *err, size_t errlen)
{
	struct in6_addr *ips = NULL;
	struct mesh_mac *macs = NULL;
	struct mesh_net *nets = NULL;
	size_t total = 0;
	char a[MESH_IP_STRLEN];
	const char *why;
	int r = 0;

	if (st == NULL)
		return mj_fail(err, errlen, "no state");
	switch (mj_class(&st->local)) {
	case MJ_UNICAST:
		break;
	case MJ_NOT_UNICAST:
		return mj_fail(err, errlen, "local: not a unicast %s address",
		    mj_family(&st->local));
	case MJ_LINK_LOCAL:
		return mj_fail(err, errlen, "local: a link-local IPv6 address; "
		    "a VTEP needs a routable one");
	}
	if (memchr(st->underlay, '\0', sizeof(st->underlay)) == NULL ||
	    (st->underlay[0] && !mj_ifname_ok(st->underlay)))
		return mj_fail(err, errlen, "underlay: not an interface name");
	if (st->nnets > MESH_NETS_MAX)
		return mj_fail(err, errlen, "networks: more than %u",
		    MESH_NETS_MAX);
	if (st->nnets && (nets = calloc(st->nnets, sizeof(*nets))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < st->nnets; i++) {
		const struct mesh_net *n = &st->nets[i];

		if (n->vni < 1 || n->vni > MESH_VNI_MAX) {
			r = mj_fail(err, errlen, "networks[%zu].vni: not in "
			    "1..%u", i, MESH_VNI_MAX);
			goto out;
		}
		if (n->nvteps > MESH_VTEPS_MAX) {
			r = mj_fail(err, errlen, "networks[%zu].vteps: more "
			    "than %u", i, MESH_VTEPS_MAX);
			goto out;
		}
		total += n->nmacs;
		if (total > MESH_MACS_MAX) {
			r = mj_fail(err, errlen, "networks[%zu].macs: more than "
			    "%u in all", i, MESH_MACS_MAX);
			goto out;
		}
		for (size_t k = 0; k < n->nvteps; k++)
			if ((why = mj_remote_why(&n->vteps[k], &st->local))) {
				r = mj_fail(err, errlen, "networks[%zu].vteps[%zu]:"
				    " %s", i, k, why);
				goto out;
			}
		for (size_t k = 0; k < n->nmacs; k++) {
			static const uint8_t zero[6];

			if ((n->macs[k].mac[0] & 1) ||
			    memcmp(n->macs[k].mac, zero, 6) == 0) {
				r = mj_fail(err, errlen, "networks[%zu].macs[%zu]."
				    "mac: multicast or all-zero", i, k);
				goto out;
			}
			if ((why = mj_remote_why(&n->macs[k].vtep,
			    &st->local))) {
				r = mj_fail(err, errlen, "networks[%zu].macs[%zu]."
				    "vtep: %s", i, k, why);
				goto out;
			}
		}
		/* Duplicates: sort copies, compare neighbours. */
		free(ips);
		ips = NULL;
		if (n->nvteps) {
			if ((ips = malloc(n->nvteps * sizeof(*ips))) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			memcpy(ips, n->vteps, n->nvteps * sizeof(*ips));
			qsort(ips, n->nvteps, sizeof(*ips), mj_cmp_ip);
			for (size_t k = 1; k < n->nvteps; k++)
				if (mj_cmp_ip(&ips[k], &ips[k - 1]) == 0) {
					mesh_ip_str(&ips[k], a, sizeof(a));
					r = mj_fail(err, errlen, "networks[%zu]."
					    "vteps: %s is listed twice", i, a);
					goto out;
				}
		}
		free(macs);
		macs = NULL;
		if (n->nmacs) {
			if ((macs = malloc(n->nmacs * sizeof(*macs))) == NULL) {
				r = -ENOMEM;
				goto out;
			}
			memcpy(macs, n->macs, n->nmacs * sizeof(*macs));
			qsort(macs, n->nmacs, sizeof(*macs), mj_cmp_mac);
			for (size_t k = 1; k < n->nmacs; k++)
				if (memcmp(macs[k].mac, macs[k - 1].mac, 6) == 0) {
					const uint8_t *m = macs[k].mac;

					r = mj_fail(err, errlen, "networks[%zu].macs:"
					    " %02x:%02x:%02x:%02x:%02x:%02x is "
					    "listed twice", i, m[0], m[1], m[2],
					    m[3], m[4], m[5]);
					goto out;
				}
		}
		nets[i].vni = n->vni;
	}
	if (st->nnets) {
		qsort(nets, st->nnets, sizeof(*nets), mj_cmp_vni);
		for (size_t i = 1; i < st->nnets; i++)
			if (nets[i].vni == nets[i - 1].vni) {
				r = mj_fail(err, errlen, "networks: VNI %u is "
				    "listed twice", nets[i].vni);
				goto out;
			}
	}
out:
	free(ips);
	free(macs);
	free(nets);
	return r;
}

static int
mj_ip(const json_t *v, struct in6_addr *out, const char *path, char *err,
    size_t errlen)
{
	const char *s = json_string_value(v);
	struct in6_addr a;

	if (s == NULL)
		return mj_fail(err, errlen, "%s: not a string", path);
	if (mesh_ip_parse(s, out) == 0)
		return 0;
	if (strlen(s) < MESH_IP_STRLEN && inet_pton(AF_INET6, s, &a) == 1)
		return mj_fail(err, errlen, "%s: an IPv4-mapped or -compatible "
		    "IPv6 address; write IPv4 as a dotted quad", path);
	return mj_fail(err, errlen, "%s: not an IPv4 or IPv6 address", path);
}

static int
mj_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
mj_mac(const json_t *v, uint8_t mac[6], const char *path, char *err,
    size_t errlen)
{
	const char *s = json_string_value(v);

	if (s == NULL)
		return mj_fail(err, errlen, "%s: not a string", path);
	if (strlen(s) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		int hi = mj_hex(s[3 * i]), lo = mj_hex(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			goto bad;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
bad:
	return mj_fail(err, errlen, "%s: not a MAC address like "
	    "aa:bb:cc:dd:ee:ff", path);
}

/* Every key of OBJ is in KEYS (NULL-terminated), and the REQ ones exist. */
static int
mj_keys(const json_t *obj, const char *const *keys, unsigned nreq,
    const char *path, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(obj))
		return mj_fail(err, errlen, "%s: not an object", path);
	json_object_foreach((json_t *)obj, k, v) {
		for (i = 0; keys[i]; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return mj_fail(err, errlen, "%s: unknown key '%.32s'",
			    path, k);
	}
	for (i = 0; i < nreq; i++)
		if (json_object_get(obj, keys[i]) == NULL)
			return mj_fail(err, errlen, "%s: missing '%s'", path,
			    keys[i]);
	return 0;
}

static int
mj_net(const json_t *jn, struct mesh_net *n, size_t idx, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "vni", "vteps", "macs", NULL };
	static const char *const mkeys[] = { "mac", "vtep", NULL };
	char path[96];
	const json_t *jv, *jm, *x;
	json_int_t vni;
	size_t k;
	int r;

	snprintf(path, sizeof(path), "networks[%zu]", idx);
	if ((r = mj_keys(jn, keys, 2, path, err, errlen)) < 0)
		return r;
	x = json_object_get(jn, "vni");
	if (!json_is_integer(x) || (vni = json_integer_value(x)) < 1 ||
	    vni > MESH_VNI_MAX)
		return mj_fail(err, errlen, "%s.vni: not an integer in 1..%u",
		    path, MESH_VNI_MAX);
	n->vni = (uint32_t)vni;
	jv = json_object_get(jn, "vteps");
	if (!json_is_array(jv))
		return mj_fail(err, errlen, "%s.vteps: not an array", path);
	if (json_array_size(jv) > MESH_VTEPS_MAX)
		return mj_fail(err, errlen, "%s.vteps: more than %u", path,
		    MESH_VTEPS_MAX);
	if (json_array_size(jv) && (n->vteps = calloc(json_array_size(jv),
	    sizeof(*n->vteps))) == NULL)
		return -ENOMEM;
	json_array_foreach(jv, k, x) {
		char p[128];

		snprintf(p, sizeof(p), "%s.vteps[%zu]", path, k);
		if ((r = mj_ip(x, &n->vteps[k], p, err, errlen)) < 0)
			return r;
		n->nvteps++;
	}
	if ((jm = json_object_get(jn, "macs")) == NULL)
		return 0;
	if (!json_is_array(jm))
		return mj_fail(err, errlen, "%s.macs: not an array", path);
	if (json_array_size(jm) > MESH_MACS_MAX)
		return mj_fail(err, errlen, "%s.macs: more than %u", path,
		    MESH_MACS_MAX);
	if (json_array_size(jm) && (n->macs = calloc(json_array_size(jm),
	    sizeof(*n->macs))) == NULL)
		return -ENOMEM;
	json_array_foreach(jm, k, x) {
		char p[128], q[140];

		snprintf(p, sizeof(p), "%s.macs[%zu]", path, k);
		if ((r = mj_keys(x, mkeys, 2, p, err, errlen)) < 0)
			return r;
		snprintf(q, sizeof(q), "%s.mac", p);
		if ((r = mj_mac(json_object_get(x, "mac"), n->macs[k].mac, q,
		    err, errlen)) < 0)
			return r;
		snprintf(q, sizeof(q), "%s.vtep", p);
		if ((r = mj_ip(json_object_get(x, "vtep"), &n->macs[k].vtep, q,
		    err, errlen)) < 0)
			return r;
		n->nmacs++;
	}
	return 0;
}

int
mesh_state_from_json(json_t *j, struct mesh_state **out, char *err,
    size_t errlen)
{
	static const char *const keys[] = { "version", "local", "networks",
	    "underlay", NULL };
	struct mesh_state *st;
	const json_t *x, *jn;
	const char *u;
	size_t i;
	int r;

	*out = NULL;
	if ((r = mj_keys(j, keys, 3, "state", err, errlen)) < 0)
		return r;
	x = json_object_get(j, "version");
	if (!json_is_integer(x) || json_integer_value(x) != MESH_JSON_VERSION)
		return mj_fail(err, errlen, "version: must be %d",
		    MESH_JSON_VERSION);
	jn = json_object_get(j, "networks");
	if (!json_is_array(jn))
		return mj_fail(err, errlen, "networks: not an array");
	if (json_array_size(jn) > MESH_NETS_MAX)
		return mj_fail(err, errlen, "networks: more than %u",
		    MESH_NETS_MAX);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	if ((r = mj_ip(json_object_get(j, "local"), &st->local, "local", err,
	    errlen)) < 0)
		goto fail;
	if ((x = json_object_get(j, "underlay")) != NULL) {
		if ((u = json_string_value(x)) == NULL ||
		    (u[0] && !mj_ifname_ok(u))) {
			r = mj_fail(err, errlen, "underlay: not an interface "
			    "name");
			goto fail;
		}
		memcpy(st->underlay, u, strlen(u) + 1);
	}
	if (json_array_size(jn) && (st->nets = calloc(json_array_size(jn),
	    sizeof(*st->nets))) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	json_array_foreach(jn, i, x) {
		/* Counted first, so a failure frees what this net holds. */
		st->nnets++;
		if ((r = mj_net(x, &st->nets[i], i, err, errlen)) < 0)
			goto fail;
	}
	if ((r = mesh_state_validate(st, err, errlen)) < 0)
		goto fail;
	*out = st;
	return 0;
fail:
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	mesh_state_free(st);
	return r;
}

int
mesh_state_parse(const char *buf, size_t len, struct mesh_state **out,
    char *err, size_t errlen)
{
	json_error_t je;
	json_t *j;
	int r;

	*out = NULL;
	if (len > MESH_JSON_MAX)
		return mj_fail(err, errlen, "state: longer than %u bytes",
		    MESH_JSON_MAX);
	if ((j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return mj_fail(err, errlen, "state: line %d column %d: %s",
		    je.line, je.column, je.text);
	r = mesh_state_from_json(j, out, err, errlen);
	json_decref(j);
	return r;
}

static json_t *
mj_ip_json(const struct in6_addr *a)
{
	char s[MESH_IP_STRLEN];

	mesh_ip_str(a, s, sizeof(s));
	return json_string(s);
}

json_t *
mesh_state_to_json(const struct mesh_state *st)
{
	json_t *j, *nets;

	j = json_pack("{s:i, s:o, s:s, s:o}", "version", MESH_JSON_VERSION,
	    "local", mj_ip_json(&st->local), "underlay", st->underlay,
	    "networks", nets = json_array());
	if (j == NULL)
		goto enomem;
	for (size_t i = 0; i < st->nnets; i++) {
		const struct mesh_net *n = &st->nets[i];
		json_t *vteps = json_array(), *macs = json_array();

		if (json_array_append_new(nets, json_pack("{s:I, s:o, s:o}",
		    "vni", (json_int_t)n->vni, "vteps", vteps, "macs",
		    macs)) < 0)
			goto enomem;
		for (size_t k = 0; k < n->nvteps; k++)
			if (json_array_append_new(vteps,
			    mj_ip_json(&n->vteps[k])) < 0)
				goto enomem;
		for (size_t k = 0; k < n->nmacs; k++) {
			const uint8_t *m = n->macs[k].mac;
			char s[18];

			snprintf(s, sizeof(s), "%02x:%02x:%02x:%02x:%02x:%02x",
			    m[0], m[1], m[2], m[3], m[4], m[5]);
			if (json_array_append_new(macs, json_pack("{s:s, s:o}",
			    "mac", s, "vtep", mj_ip_json(&n->macs[k].vtep))) < 0)
				goto enomem;
		}
	}
	return j;
enomem:
	json_decref(j);
	errno = ENOMEM;
	return NULL;
}

json_t *
mesh_stats_to_json(const struct mesh_stats *s)
{
	json_t *j = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}",
	    "links_added", (int)s->links_added,
	    "links_changed", (int)s->links_changed,
	    "links_deleted", (int)s->links_deleted,
	    "fdb_added", (int)s->fdb_added,
	    "fdb_deleted", (int)s->fdb_deleted,
	    "fdb_unchanged", (int)s->fdb_unchanged);

	if (j == NULL)
		errno = ENOMEM;
	return j;
}
