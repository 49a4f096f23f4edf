/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * DHCP leases for full mode: which address each client MAC gets, decided
 * and recorded in one short transaction per packet, committed before
 * dhcp.c replies.
 *
 * The order of preference: an adopted host's underlay_ip (hosts.boot_mac
 * equals the MAC), else the MAC's own lease if its address is still free
 * and in dhcp-range, else the address the client asked for if free, else
 * the lowest free address in dhcp-range.  "Free" means not hvd's own
 * address, not the subnet's network or broadcast address, not any host's
 * underlay_ip, and not held by another MAC's unexpired row.
 *
 * MACs hvd does not know (strangers, see struct lease_limit) get new
 * offers only within the caller's bounds: a rate and a count of addresses
 * held by unconfirmed offers.  A refusal is decided from two point reads
 * and memory, and writes nothing, so a flood costs no commits; nor does a
 * retransmitted DISCOVER while half its offer's hold remains.
 *
 * Invariants: an underlay_ip is never leased to another MAC; two MACs never
 * hold the same address (ip is UNIQUE, and a taken-over row is deleted in
 * the same transaction); an adopted host is never limited.  Work per call
 * is bounded by the rows in the tables, never by anything a client sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "db_internal.h"

_Static_assert(sizeof(((struct lease_limit *)0)->seen_key) ==
    crypto_shorthash_siphashx24_KEYBYTES, "lease: seen_key size");
_Static_assert((LEASE_SEEN_BITS & (LEASE_SEEN_BITS - 1)) == 0,
    "lease: LEASE_SEEN_BITS is not a power of 2");

/* "10.0.0.5" or "10.0.0.5/24" (an underlay may carry its prefix). */
static bool
lease_parse_ip(const char *s, uint32_t *out)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t n = strcspn(s, "/");

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

static void
lease_fmt_ip(uint32_t ip, char out[INET_ADDRSTRLEN])
{
	struct in_addr a = { htonl(ip) };

	inet_ntop(AF_INET, &a, out, INET_ADDRSTRLEN);
}

static int
lease_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The addresses in dhcp-range that others hold, sorted; and how many
 * rows are strangers' unconfirmed offers. */
struct lease_used {
	uint32_t *ip;
	size_t n, cap;
	size_t held;
};

static int
lease_used_add(struct lease_used *u, uint32_t ip)
{
	uint32_t *tmp;

	if (u->n == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 64;
		if ((tmp = reallocarray(u->ip, u->cap, sizeof(*tmp))) == NULL)
			return -ENOMEM;
		u->ip = tmp;
	}
	u->ip[u->n++] = ip;
	return 0;
}

static int
lease_used_load(struct db *db, const char *mac, const struct lease_pool *p,
    int64_t now, struct lease_used *u)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_LEASE_USED,
	    "SELECT l.ip, l.state = 'offered' AND NOT EXISTS (SELECT 1 FROM "
	    "hosts h WHERE h.boot_mac = l.mac AND "
	    "coalesce(h.underlay_ip, '') != '' AND h.state != 'retired') "
	    "FROM dhcp_leases l WHERE l.mac != ?1 AND l.expires_at > ?2 "
	    "UNION ALL SELECT underlay_ip, 0 FROM hosts "
	    "WHERE coalesce(underlay_ip, '') != ''");
	uint32_t ip;
	int rc, r = 0;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (sqlite3_column_int(st, 1))
			u->held++;
		if (s && lease_parse_ip(s, &ip) && ip >= p->first &&
		    ip <= p->last && (r = lease_used_add(u, ip)) < 0)
			break;
	}
	if (r == 0)
		r = db_err(db, rc, "lease used");
	sqlite3_reset(st);
	if (r == 0 && u->n > 0)
		qsort(u->ip, u->n, sizeof(*u->ip), lease_cmp);
	return r;
}

static bool
lease_free(const struct lease_pool *p, const struct lease_used *u, uint32_t ip)
{
	if (ip < p->first || ip > p->last || ip == p->server ||
	    (ip & p->mask) != p->net || (ip | p->mask) == UINT32_MAX ||
	    ip == p->net)
		return false;
	return u->n == 0 || bsearch(&ip, u->ip, u->n, sizeof(*u->ip),
	    lease_cmp) == NULL;
}

/* One pass over the sorted used list: the first gap is the lowest free. */
static int
lease_lowest(const struct lease_pool *p, const struct lease_used *u,
    uint32_t *ip)
{
	uint32_t cand = p->first;
	size_t i = 0;

	for (;;) {
		while (i < u->n && u->ip[i] < cand)
			i++;
		if (i < u->n && u->ip[i] == cand) {
			if (cand == p->last)
				return -ENOSPC;
			cand++;
			continue;
		}
		if (lease_free(p, u, cand)) {
			*ip = cand;
			return 0;
		}
		/* hvd's own, the network or the broadcast address. */
		if (cand == p->last)
			return -ENOSPC;
		cand++;
	}
}

void
db_lease_limit_init(struct lease_limit *l)
{
	memset(l, 0, sizeof(*l));
	randombytes_buf(l->seen_key, sizeof(l->seen_key));
}

/* A new second refills the bucket; a clock step back only restarts it. */
static void
lease_refill(struct lease_limit *l, int64_t now)
{
	if (now > l->filled_at)
		l->tokens = l->rate;
	l->filled_at = now;
	if (l->tokens > l->rate)
		l->tokens = l->rate;
}

/* Four bits of a period's filter per MAC, keyed so that nobody can aim
 * MACs at the bits another client sets. */
static void
lease_seen_bits(const struct lease_limit *l, const char *mac, uint32_t bit[4])
{
	uint8_t h[crypto_shorthash_siphashx24_BYTES];

	crypto_shorthash_siphashx24(h, (const unsigned char *)mac, strlen(mac),
	    l->seen_key);
	for (size_t i = 0; i < 4; i++)
		bit[i] = ((uint32_t)h[4 * i] | (uint32_t)h[4 * i + 1] << 8 |
		    (uint32_t)h[4 * i + 2] << 16 | (uint32_t)h[4 * i + 3] << 24) &
		    (LEASE_SEEN_BITS - 1);
}

/* Every LEASE_SEEN_S the older period is forgotten. */
static void
lease_seen_age(struct lease_limit *l, int64_t now)
{
	bool both;

	if (now >= l->seen_since && now - l->seen_since < LEASE_SEEN_S)
		return;
	both = now < l->seen_since || now - l->seen_since >= 2 * LEASE_SEEN_S;
	l->seen_cur ^= 1;
	memset(l->seen[l->seen_cur], 0, sizeof(l->seen[0]));
	if (both)
		memset(l->seen[l->seen_cur ^ 1], 0, sizeof(l->seen[0]));
	l->seen_since = now;
}

static bool
lease_seen(const struct lease_limit *l, const char *mac)
{
	uint32_t bit[4];

	lease_seen_bits(l, mac, bit);
	for (unsigned g = 0; g < 2; g++) {
		size_t i = 0;

		while (i < 4 && (l->seen[g][bit[i] / 8] & (1u << (bit[i] % 8))))
			i++;
		if (i == 4)
			return true;
	}
	return false;
}

static void
lease_seen_add(struct lease_limit *l, const char *mac)
{
	uint32_t bit[4];

	lease_seen_bits(l, mac, bit);
	for (size_t i = 0; i < 4; i++)
		l->seen[l->seen_cur][bit[i] / 8] |= (uint8_t)(1u << (bit[i] % 8));
}

/*
 * A stranger's token.  A first sight leaves half the bucket to strangers
 * that ask again (*repeat), so a flood of one-shot MACs cannot take the
 * turn of a real client retransmitting.  -EAGAIN: none; mac is noted.
 */
static int
lease_admit(struct lease_limit *l, const char *mac, int64_t now, bool *repeat)
{
	lease_refill(l, now);
	lease_seen_age(l, now);
	*repeat = lease_seen(l, mac);
	if (l->tokens <= (*repeat ? 0 : l->rate / 2)) {
		lease_seen_add(l, mac);
		return -EAGAIN;
	}
	l->tokens--;
	return 0;
}

/* Whether mac's own row lets it through unlimited: hvd acknowledged it,
 * or (offer) an offer to it still runs, or (request) hvd has seen it. */
static bool
lease_own_admits(const struct lease_row *own, bool have_own, bool request,
    int64_t now)
{
	if (!have_own)
		return false;
	if (request || strcmp(own->state, "bound") == 0 ||
	    strcmp(own->state, "released") == 0)
		return true;
	return strcmp(own->state, "offered") == 0 && own->expires_at > now;
}

int
db_lease_get(struct db *db, const char *mac, struct lease_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_LEASE_GET,
	    "SELECT mac, ip, state, expires_at, updated_at, hostname, client_id "
	    "FROM dhcp_leases WHERE mac = ?");
	int rc, r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		db_text(out->mac, sizeof(out->mac), st, 0);
		db_text(out->ip, sizeof(out->ip), st, 1);
		db_text(out->state, sizeof(out->state), st, 2);
		out->expires_at = sqlite3_column_int64(st, 3);
		out->updated_at = sqlite3_column_int64(st, 4);
		db_text(out->hostname, sizeof(out->hostname), st, 5);
		db_text(out->client_id, sizeof(out->client_id), st, 6);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "lease get");
	}
	sqlite3_reset(st);
	return r;
}

/* The underlay_ip of the host whose boot MAC this is, if it has one. */
static int
lease_host_ip(struct db *db, const char *mac, uint32_t *ip, char *name,
    size_t namelen)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_LEASE_HOST_IP,
	    "SELECT underlay_ip, coalesce(name, fingerprint) FROM hosts "
	    "WHERE boot_mac = ? AND coalesce(underlay_ip, '') != '' AND "
	    "state != 'retired' ORDER BY id LIMIT 1");
	int rc, r = -ENOENT;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		db_text(name, namelen, st, 1);
		if (s && lease_parse_ip(s, ip))
			r = 0;
		else
			log_warnx("dhcp: host %s: underlay_ip '%.46s' is not an "
			    "IPv4 address", name, s ? s : "");
	} else if (rc != SQLITE_DONE) {
		r = db_err(db, rc, "lease host");
	}
	sqlite3_reset(st);
	return r;
}

/*
 * Decides mac's address.  request: the client asks for want and gets it or
 * -EADDRNOTAVAIL; otherwise want is only a preference.  lim (NULL: none)
 * bounds what a stranger gets: -EAGAIN or -EBUSY.
 */
static int
lease_pick(struct db *db, const char *mac, const struct lease_pool *p,
    uint32_t want, bool request, struct lease_limit *lim, int64_t now,
    uint32_t *ip, struct lease_row *own, bool *have_own)
{
	struct lease_used used = { 0 };
	uint32_t own_ip;
	char host[API_NAME_MAX + 80];
	bool limited, own_ok, repeat = false;
	int r;

	*have_own = false;
	if ((r = lease_host_ip(db, mac, ip, host, sizeof(host))) == 0) {
		if ((*ip & p->mask) == p->net && *ip != p->server) {
			if ((r = db_lease_get(db, mac, own)) == 0)
				*have_own = true;
			else if (r != -ENOENT)
				return r;
			return request && want != *ip ? -EADDRNOTAVAIL : 0;
		}
		log_warnx("dhcp: host %s (%s): its underlay_ip is not on the "
		    "boot subnet; leasing it an address from dhcp-range", host,
		    mac);
		lim = NULL;	/* adopted all the same */
	} else if (r != -ENOENT) {
		return r;
	}
	if ((r = db_lease_get(db, mac, own)) == 0)
		*have_own = true;
	else if (r != -ENOENT)
		return r;
	/* The bucket before the scan: a flood is refused from memory. */
	limited = lim && !lease_own_admits(own, *have_own, request, now);
	if (limited && (r = lease_admit(lim, mac, now, &repeat)) < 0)
		return r;
	if ((r = lease_used_load(db, mac, p, now, &used)) < 0)
		goto out;
	own_ok = *have_own && lease_parse_ip(own->ip, &own_ip) &&
	    lease_free(p, &used, own_ip);
	/* A known row whose address is gone would take a new one. */
	if (lim && !limited && !own_ok) {
		limited = true;
		if ((r = lease_admit(lim, mac, now, &repeat)) < 0)
			goto out;
	}
	if (limited && !request && used.held >= (repeat ? lim->held_max :
	    lim->held_max - lim->held_max / 2)) {
		lease_seen_add(lim, mac);
		r = -EBUSY;
		goto out;
	}
	r = 0;
	if (own_ok) {
		*ip = own_ip;
		if (request && want != own_ip)
			r = -EADDRNOTAVAIL;
	} else if (want && lease_free(p, &used, want)) {
		*ip = want;
	} else if (request) {
		r = -EADDRNOTAVAIL;
	} else {
		r = lease_lowest(p, &used, ip);
	}
out:
	free(used.ip);
	return r;
}

/* Gives ip to mac, taking it from any other row (expired, or a host's). */
static int
lease_write(struct db *db, const char *mac, uint32_t ip, const char *state,
    int64_t expires_at, const char *hostname, const char *client_id,
    int64_t now)
{
	char ipstr[INET_ADDRSTRLEN];
	sqlite3_stmt *st;
	int r;

	lease_fmt_ip(ip, ipstr);
	if ((st = db_stmt(db, DB_S_LEASE_CLAIM,
	    "DELETE FROM dhcp_leases WHERE ip = ? AND mac != ?")) == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, ipstr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, mac, -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "lease claim");
	sqlite3_reset(st);
	if (r < 0)
		return r;
	if ((st = db_stmt(db, DB_S_LEASE_PUT,
	    "INSERT INTO dhcp_leases (mac, ip, state, expires_at, hostname, "
	    "client_id, updated_at) VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), "
	    "coalesce(?6, ''), ?7) ON CONFLICT (mac) DO UPDATE SET "
	    "ip = excluded.ip, state = excluded.state, "
	    "expires_at = excluded.expires_at, "
	    "hostname = coalesce(?5, hostname), "
	    "client_id = coalesce(?6, client_id), "
	    "updated_at = excluded.updated_at")) == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ipstr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, expires_at);
	if (hostname)
		sqlite3_bind_text(st, 5, hostname, -1, SQLITE_STATIC);
	if (client_id)
		sqlite3_bind_text(st, 6, client_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, now);
	r = db_err(db, sqlite3_step(st), "lease put");
	sqlite3_reset(st);
	return r;
}

int
db_lease_offer(struct db *db, const char *mac, const struct lease_pool *p,
    uint32_t want, struct lease_limit *lim, int64_t hold_until, int64_t now,
    uint32_t *ip)
{
	struct lease_row own;
	bool have_own, same;
	uint32_t own_ip = 0;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = lease_pick(db, mac, p, want, false, lim, now, ip, &own,
	    &have_own)) < 0)
		goto out;
	same = have_own && lease_parse_ip(own.ip, &own_ip) && own_ip == *ip &&
	    (strcmp(own.state, "bound") == 0 || strcmp(own.state, "offered") == 0);
	/* A retransmitted DISCOVER while half its hold remains, or a host
	 * whose lease still runs: the row already says this, so nothing is
	 * written (a retransmitting client costs no commit each time).  Roll
	 * back rather than commit: committing even an empty BEGIN IMMEDIATE
	 * fires the commit hook, bumping the generation and waking the
	 * subscriber. */
	if (same && own.expires_at >= hold_until - (hold_until - now) / 2) {
		db_rollback(db);
		return 0;
	}
	r = lease_write(db, mac, *ip, same ? own.state : "offered", hold_until,
	    NULL, NULL, now);
out:
	return db_tx_end(db, r);
}

int
db_lease_request(struct db *db, const char *mac, const struct lease_pool *p,
    uint32_t want, struct lease_limit *lim, const char *hostname,
    const char *client_id, int64_t expires_at, int64_t now)
{
	char ipstr[INET_ADDRSTRLEN], detail[96];
	struct lease_row own;
	bool have_own;
	uint32_t ip;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = lease_pick(db, mac, p, want, true, lim, now, &ip, &own,
	    &have_own)) < 0)
		goto out;
	lease_fmt_ip(ip, ipstr);
	if ((r = lease_write(db, mac, ip, "bound", expires_at, hostname,
	    client_id, now)) < 0)
		goto out;
	/* Renewals are not news; a new binding is. */
	if (!have_own || strcmp(own.ip, ipstr) != 0 ||
	    strcmp(own.state, "bound") != 0 || own.expires_at <= now) {
		snprintf(detail, sizeof(detail), "%s bound until %lld", ipstr,
		    (long long)expires_at);
		r = db_event_add(db, "dhcp.lease", mac, "dhcp", detail, now);
	}
out:
	return db_tx_end(db, r);
}

int
db_lease_release(struct db *db, const char *mac, uint32_t ip, int64_t now)
{
	char ipstr[INET_ADDRSTRLEN];
	sqlite3_stmt *st;
	int r;

	lease_fmt_ip(ip, ipstr);
	if ((r = db_tx_begin(db)) < 0)
		return r;
	/* The row stays: the MAC gets the same address back if it is free. */
	if ((st = db_stmt(db, DB_S_LEASE_RELEASE,
	    "UPDATE dhcp_leases SET state = 'released', "
	    "expires_at = min(expires_at, ?3), updated_at = ?3 "
	    "WHERE mac = ?1 AND ip = ?2 AND state != 'declined'")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ipstr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	r = db_err(db, sqlite3_step(st), "lease release");
	sqlite3_reset(st);
	if (r == 0 && sqlite3_changes(db->sql) != 1)
		r = -ENOENT;
out:
	return db_tx_end(db, r);
}

int
db_lease_decline(struct db *db, const char *mac, uint32_t ip,
    int64_t hold_until, int64_t now)
{
	char ipstr[INET_ADDRSTRLEN], holder[32], detail[96];
	sqlite3_stmt *st;
	int r;

	lease_fmt_ip(ip, ipstr);
	if ((r = db_tx_begin(db)) < 0)
		return r;
	/* Only the MAC that held the address may have it withheld. */
	if ((st = db_stmt(db, DB_S_LEASE_DROP,
	    "DELETE FROM dhcp_leases WHERE mac = ? AND ip = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ipstr, -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "lease decline");
	sqlite3_reset(st);
	if (r < 0)
		goto out;
	if (sqlite3_changes(db->sql) != 1) {
		r = -ENOENT;
		goto out;
	}
	snprintf(holder, sizeof(holder), "declined:%s", ipstr);
	snprintf(detail, sizeof(detail), "%s declined (in use by another "
	    "station); withheld until %lld", ipstr, (long long)hold_until);
	if ((r = lease_write(db, holder, ip, "declined", hold_until, NULL, NULL,
	    now)) == 0)
		r = db_event_add(db, "dhcp.declined", mac, "dhcp", detail, now);
out:
	return db_tx_end(db, r);
}

int
db_host_underlay(struct db *db, const struct host_row *h, bool full_dhcp,
    char *out, size_t len)
{
	struct lease_row l;

	if (h->underlay_ip[0])
		snprintf(out, len, "%s", h->underlay_ip);
	else if (full_dhcp && db_lease_get(db, h->boot_mac, &l) == 0 &&
	    strcmp(l.state, "released") != 0)
		snprintf(out, len, "%s", l.ip);
	else if (h->boot_ip[0])
		snprintf(out, len, "%s", h->boot_ip);
	else
		return -ENOENT;
	return 0;
}
