/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * db_lease.c against a real SQLite file, with time passed in: the lowest
 * free address, the same address for the same MAC, NAK for a wrong one,
 * expiry, release, decline, exhaustion, and an adopted host's underlay_ip,
 * which it always gets and nobody else ever does.  Then the bounds on MACs
 * hvd does not know (struct lease_limit): the rate, the addresses held by
 * their offers, the half kept for clients that ask again, and that
 * adopted hosts and bound leases pass whatever strangers did.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "store.h"

static char tmpdir[] = "/tmp/hv-test-lease.XXXXXX";
static char dbpath[256];
static struct db *db;

#define A "52:54:00:00:00:0a"
#define B "52:54:00:00:00:0b"
#define C "52:54:00:00:00:0c"
#define H "52:54:00:00:00:aa"
#define T0 1000000

static uint32_t
ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return ntohl(a.s_addr);
}

/* 10.0.0.100-104 on 10.0.0.0/24, hvd at 10.0.0.1. */
static struct lease_pool pool;
static struct lease_limit lim;		/* about 1 MiB */

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	pool.first = ip("10.0.0.100");
	pool.last = ip("10.0.0.104");
	pool.net = ip("10.0.0.0");
	pool.mask = ip("255.255.255.0");
	pool.server = ip("10.0.0.1");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

static int
fresh(void **state)
{
	static int n;

	(void)state;
	snprintf(dbpath, sizeof(dbpath), "%s/lease-%d.db", tmpdir, n++);
	return db_open(dbpath, &db);
}

static int
done(void **state)
{
	(void)state;
	db_close(db);
	db = NULL;
	return 0;
}

/* The adopt API comes later: enrol, then set the columns with sqlite3. */
static void
host_add(const char *name, const char *mac, const char *underlay)
{
	char pub[65], cmd[512];
	struct host_row h;

	snprintf(pub, sizeof(pub), "%064x", (unsigned char)name[1]);
	assert_int_equal(db_host_register(db, name, pub, NULL, "test", T0, &h), 0);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"UPDATE hosts SET boot_mac = "
	    "'%s', underlay_ip = '%s' WHERE name = '%s'\"", dbpath, mac, underlay,
	    name);
	assert_int_equal(system(cmd), 0);
}

static uint32_t
offer(const char *mac, uint32_t want, int64_t now)
{
	uint32_t got = 0;

	assert_int_equal(db_lease_offer(db, mac, &pool, want, NULL, now + 60, now,
	    &got), 0);
	return got;
}

/* An offer within lim: 0 and the address, or the negative errno. */
static int64_t
offer_lim(const char *mac, int64_t now)
{
	uint32_t got = 0;
	int r = db_lease_offer(db, mac, &pool, 0, &lim, now + 60, now, &got);

	return r < 0 ? r : (int64_t)got;
}

static const char *
stranger(int i)
{
	static char mac[8][18];
	static int n;

	n = (n + 1) % 8;
	snprintf(mac[n], sizeof(mac[n]), "02:00:00:00:%02x:%02x", i >> 8, i & 255);
	return mac[n];
}

/* 100 addresses, 10.0.0.100-199, and fresh bounds. */
static void
big_pool(unsigned held_max, unsigned rate)
{
	pool.last = ip("10.0.0.199");
	db_lease_limit_init(&lim);
	lim.held_max = held_max;
	lim.rate = rate;
}

static int
done_big(void **state)
{
	pool.last = ip("10.0.0.104");
	return done(state);
}

static void
test_lowest_free_and_same_again(void **state)
{
	struct lease_row row;

	(void)state;
	assert_int_equal(offer(A, 0, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_get(db, A, &row), 0);
	assert_string_equal(row.state, "offered");
	assert_int_equal(row.expires_at, T0 + 60);
	/* A's offer is held: B gets the next one. */
	assert_int_equal(offer(B, 0, T0), ip("10.0.0.101"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL,
	    "node-a", "01525400", T0 + 3600, T0), 0);
	assert_int_equal(db_lease_get(db, A, &row), 0);
	assert_string_equal(row.ip, "10.0.0.100");
	assert_string_equal(row.state, "bound");
	assert_string_equal(row.hostname, "node-a");
	assert_int_equal(row.expires_at, T0 + 3600);
	/* A reboots: the same address, the lease's end untouched. */
	assert_int_equal(offer(A, 0, T0 + 10), ip("10.0.0.100"));
	assert_int_equal(db_lease_get(db, A, &row), 0);
	assert_string_equal(row.state, "bound");
	assert_int_equal(row.expires_at, T0 + 3600);
	/* Renewal (ciaddr): fine; another MAC asking for A's: NAK. */
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 7200, T0 + 1800), 0);
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	/* A asking for another address than its own: NAK. */
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.103"), NULL, NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	/* Outside the range, or the subnet: NAK. */
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.50"), NULL, NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, C, &pool, ip("192.168.0.100"),
	    NULL, NULL, NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
}

static void
test_wanted_address(void **state)
{
	(void)state;
	/* A free address the client asks for is honoured ... */
	assert_int_equal(offer(A, ip("10.0.0.103"), T0), ip("10.0.0.103"));
	/* ... a taken or foreign one is not. */
	assert_int_equal(offer(B, ip("10.0.0.103"), T0), ip("10.0.0.100"));
	assert_int_equal(offer(C, ip("10.0.0.7"), T0), ip("10.0.0.101"));
	/* INIT-REBOOT without a record: granted if free. */
	assert_int_equal(db_lease_request(db, "52:54:00:00:00:0d", &pool,
	    ip("10.0.0.104"), NULL, NULL, NULL, T0 + 600, T0), 0);
}

static void
test_expiry_makes_addresses_reusable(void **state)
{
	struct lease_row row;

	(void)state;
	assert_int_equal(offer(A, 0, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 600, T0), 0);
	assert_int_equal(offer(B, 0, T0), ip("10.0.0.101"));
	/* Unanswered offer and lease both run out; C gets the lowest. */
	assert_int_equal(offer(C, 0, T0 + 601), ip("10.0.0.100"));
	assert_int_equal(db_lease_get(db, A, &row), -ENOENT);
	/* A comes back: its address is C's now, B's expired offer is free. */
	assert_int_equal(offer(A, 0, T0 + 602), ip("10.0.0.101"));
	assert_int_equal(db_lease_get(db, B, &row), -ENOENT);
	/* B's own expired row is gone, so B takes the next. */
	assert_int_equal(offer(B, 0, T0 + 603), ip("10.0.0.102"));
}

static void
test_release_and_decline(void **state)
{
	struct lease_row row;

	(void)state;
	assert_int_equal(offer(A, 0, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 600, T0), 0);
	assert_int_equal(db_lease_release(db, A, ip("10.0.0.100"), T0 + 5), 0);
	assert_int_equal(db_lease_get(db, A, &row), 0);
	assert_string_equal(row.state, "released");
	assert_int_equal(row.expires_at, T0 + 5);
	/* Released, not forgotten: A gets the same address back ... */
	assert_int_equal(offer(A, 0, T0 + 6), ip("10.0.0.100"));
	/* ... and releasing what one does not hold is refused. */
	assert_int_equal(db_lease_release(db, B, ip("10.0.0.100"), T0 + 7),
	    -ENOENT);

	/* A found 10.0.0.100 in use: withheld from everyone for a while. */
	assert_int_equal(db_lease_decline(db, B, ip("10.0.0.100"), T0 + 900,
	    T0 + 8), -ENOENT);
	assert_int_equal(db_lease_decline(db, A, ip("10.0.0.100"), T0 + 900,
	    T0 + 8), 0);
	assert_int_equal(db_lease_get(db, "declined:10.0.0.100", &row), 0);
	assert_string_equal(row.state, "declined");
	assert_int_equal(offer(A, 0, T0 + 9), ip("10.0.0.101"));
	assert_int_equal(offer(B, ip("10.0.0.100"), T0 + 9), ip("10.0.0.102"));
	/* After the hold, the address is free again. */
	assert_int_equal(offer(C, 0, T0 + 901), ip("10.0.0.100"));
}

static void
test_exhaustion_and_reserved(void **state)
{
	char mac[18];
	uint32_t got;

	(void)state;
	for (int i = 0; i < 5; i++) {
		snprintf(mac, sizeof(mac), "52:54:00:00:01:%02x", i);
		assert_int_equal(offer(mac, 0, T0), ip("10.0.0.100") + (uint32_t)i);
	}
	assert_int_equal(db_lease_offer(db, A, &pool, 0, NULL, T0 + 60, T0, &got),
	    -ENOSPC);
	/* hvd's own, the network and the broadcast address are never
	 * leased, even inside the range. */
	pool.first = ip("10.0.0.0");
	pool.last = ip("10.0.0.2");
	assert_int_equal(offer(B, 0, T0), ip("10.0.0.2"));
	assert_int_equal(db_lease_offer(db, C, &pool, 0, NULL, T0 + 60, T0, &got),
	    -ENOSPC);
	pool.first = ip("10.0.0.254");
	pool.last = ip("10.0.0.255");
	assert_int_equal(offer(C, 0, T0), ip("10.0.0.254"));
	assert_int_equal(db_lease_offer(db, "52:54:00:00:00:0e", &pool, 0, NULL,
	    T0 + 60, T0, &got), -ENOSPC);
	pool.first = ip("10.0.0.100");
	pool.last = ip("10.0.0.104");
}

static void
test_adopted_host_keeps_its_address(void **state)
{
	struct lease_row row;

	(void)state;
	/* H had a dynamic lease before it was adopted. */
	assert_int_equal(offer(H, 0, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 600, T0), 0);
	host_add("h1", H, "10.0.0.20/24");
	/* A host inside the range reserves its address too. */
	host_add("h2", "52:54:00:00:00:bb", "10.0.0.101");
	assert_int_equal(offer(H, 0, T0 + 1), ip("10.0.0.20"));
	assert_int_equal(offer(H, ip("10.0.0.100"), T0 + 2), ip("10.0.0.20"));
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.100"), NULL, NULL,
	    NULL, T0 + 600, T0 + 2), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.20"), NULL, NULL,
	    NULL, T0 + 600, T0 + 2), 0);
	assert_int_equal(db_lease_get(db, H, &row), 0);
	assert_string_equal(row.ip, "10.0.0.20");
	assert_string_equal(row.state, "bound");
	/* Nobody else gets a host's address, whatever they ask for. */
	assert_int_equal(offer(A, ip("10.0.0.101"), T0 + 3), ip("10.0.0.100"));
	assert_int_equal(offer(B, 0, T0 + 3), ip("10.0.0.102"));
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.20"), NULL, NULL,
	    NULL, T0 + 600, T0 + 3), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.101"), NULL, NULL,
	    NULL, T0 + 600, T0 + 3), -EADDRNOTAVAIL);
	/* An underlay off the boot subnet cannot be offered: range instead. */
	host_add("h3", C, "192.168.7.7");
	assert_int_equal(offer(C, 0, T0 + 4), ip("10.0.0.103"));
}

static void
test_stranger_rate(void **state)
{
	struct lease_row row;

	(void)state;
	big_pool(100, 4);
	assert_int_equal(offer(A, 0, T0 - 100), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), &lim,
	    NULL, NULL, T0 + 600, T0 - 100), 0);
	host_add("h1", H, "10.0.0.20");
	/* 4 a second; first sights may take only the first half. */
	assert_int_equal(offer_lim(stranger(1), T0), ip("10.0.0.101"));
	assert_int_equal(offer_lim(stranger(2), T0), ip("10.0.0.102"));
	assert_int_equal(offer_lim(stranger(3), T0), -EAGAIN);
	assert_int_equal(offer_lim(stranger(4), T0), -EAGAIN);
	/* Nothing was written for them. */
	assert_int_equal(db_lease_get(db, stranger(3), &row), -ENOENT);
	/* A refused MAC asking again may take the other half ... */
	assert_int_equal(offer_lim(stranger(3), T0), ip("10.0.0.103"));
	assert_int_equal(offer_lim(stranger(4), T0), ip("10.0.0.104"));
	/* ... until the bucket is empty. */
	assert_int_equal(offer_lim(stranger(5), T0), -EAGAIN);
	assert_int_equal(offer_lim(stranger(5), T0), -EAGAIN);
	/* A retransmit of a running offer takes no token. */
	assert_int_equal(offer_lim(stranger(1), T0), ip("10.0.0.101"));
	/* An adopted host, and a MAC with a bound lease, always pass. */
	assert_int_equal(offer_lim(H, T0), ip("10.0.0.20"));
	assert_int_equal(offer_lim(A, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.20"), &lim,
	    NULL, NULL, T0 + 600, T0), 0);
	/* The next second refills it. */
	assert_int_equal(offer_lim(stranger(5), T0 + 1), ip("10.0.0.105"));
	assert_int_equal(offer_lim(stranger(6), T0 + 1), ip("10.0.0.106"));
	assert_int_equal(offer_lim(stranger(7), T0 + 1), -EAGAIN);
	/* A clock step back refills nothing (and forgets who was refused:
	 * stranger 7 is a first sight again). */
	assert_int_equal(offer_lim(stranger(7), T0 - 5), -EAGAIN);
	assert_int_equal(offer_lim(stranger(7), T0 - 5), ip("10.0.0.107"));
	assert_int_equal(offer_lim(stranger(8), T0 - 5), -EAGAIN);
	assert_int_equal(offer_lim(stranger(8), T0 - 5), ip("10.0.0.108"));
	assert_int_equal(offer_lim(stranger(14), T0 - 5), -EAGAIN);
	assert_int_equal(offer_lim(stranger(14), T0 - 5), -EAGAIN);
	/* A refusal is remembered for LEASE_SEEN_S to twice that: after,
	 * the same MAC is a first sight again. */
	assert_int_equal(offer_lim(stranger(9), T0 + 2), ip("10.0.0.109"));
	assert_int_equal(offer_lim(stranger(10), T0 + 2), ip("10.0.0.110"));
	assert_int_equal(offer_lim(stranger(11), T0 + 2), -EAGAIN);
	assert_int_equal(offer_lim(stranger(12), T0 + 3 + 2 * LEASE_SEEN_S),
	    ip("10.0.0.111"));
	assert_int_equal(offer_lim(stranger(13), T0 + 3 + 2 * LEASE_SEEN_S),
	    ip("10.0.0.112"));
	assert_int_equal(offer_lim(stranger(11), T0 + 3 + 2 * LEASE_SEEN_S),
	    -EAGAIN);
}

static void
test_stranger_held(void **state)
{
	(void)state;
	big_pool(6, 1000);
	host_add("h1", H, "10.0.0.20");
	assert_int_equal(offer(A, 0, T0 - 100), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), &lim,
	    NULL, NULL, T0 + 600, T0 - 100), 0);
	/* First sights may hold half of held_max ... */
	for (int i = 1; i <= 3; i++)
		assert_int_equal(offer_lim(stranger(i), T0),
		    ip("10.0.0.100") + (uint32_t)i);
	assert_int_equal(offer_lim(stranger(4), T0), -EBUSY);
	/* ... MACs that ask again the rest. */
	assert_int_equal(offer_lim(stranger(4), T0), ip("10.0.0.104"));
	assert_int_equal(offer_lim(stranger(5), T0 + 1), -EBUSY);
	assert_int_equal(offer_lim(stranger(5), T0 + 1), ip("10.0.0.105"));
	assert_int_equal(offer_lim(stranger(6), T0 + 1), -EBUSY);
	assert_int_equal(offer_lim(stranger(6), T0 + 1), ip("10.0.0.106"));
	assert_int_equal(offer_lim(stranger(7), T0 + 1), -EBUSY);
	assert_int_equal(offer_lim(stranger(7), T0 + 1), -EBUSY);
	/* Known MACs are not held back by it. */
	assert_int_equal(offer_lim(H, T0 + 1), ip("10.0.0.20"));
	assert_int_equal(offer_lim(A, T0 + 1), ip("10.0.0.100"));
	/* A confirmed offer is no longer unconfirmed: a place frees up. */
	assert_int_equal(db_lease_request(db, stranger(1), &pool,
	    ip("10.0.0.101"), &lim, NULL, NULL, T0 + 600, T0 + 2), 0);
	assert_int_equal(offer_lim(stranger(7), T0 + 2), ip("10.0.0.107"));
	/* Offers run out after their hold: first sights get in again. */
	assert_int_equal(offer_lim(stranger(8), T0 + 61), ip("10.0.0.102"));
	/* held_max 0: strangers get nothing, hosts all the same. */
	lim.held_max = 0;
	assert_int_equal(offer_lim(stranger(9), T0 + 200), -EBUSY);
	assert_int_equal(offer_lim(stranger(9), T0 + 200), -EBUSY);
	assert_int_equal(offer_lim(H, T0 + 200), ip("10.0.0.20"));
}

static void
test_stranger_request_and_retransmit(void **state)
{
	struct lease_row row;

	(void)state;
	big_pool(100, 2);
	/* INIT-REBOOT from a MAC without a row takes a token too. */
	assert_int_equal(db_lease_request(db, stranger(1), &pool,
	    ip("10.0.0.150"), &lim, NULL, NULL, T0 + 600, T0), 0);
	assert_int_equal(db_lease_request(db, stranger(2), &pool,
	    ip("10.0.0.151"), &lim, NULL, NULL, T0 + 600, T0), -EAGAIN);
	assert_int_equal(db_lease_get(db, stranger(2), &row), -ENOENT);
	assert_int_equal(db_lease_request(db, stranger(2), &pool,
	    ip("10.0.0.151"), &lim, NULL, NULL, T0 + 600, T0), 0);
	/* A MAC hvd made an offer to needs none to REQUEST it. */
	assert_int_equal(offer_lim(stranger(3), T0 + 1), ip("10.0.0.100"));
	assert_int_equal(offer_lim(stranger(4), T0 + 1), -EAGAIN);
	assert_int_equal(offer_lim(stranger(4), T0 + 1), ip("10.0.0.101"));
	assert_int_equal(db_lease_request(db, stranger(3), &pool,
	    ip("10.0.0.100"), &lim, NULL, NULL, T0 + 600, T0 + 1), 0);
	/* A retransmitted DISCOVER rewrites nothing while half the hold
	 * remains, then extends it. */
	assert_int_equal(db_lease_get(db, stranger(4), &row), 0);
	assert_int_equal(row.expires_at, T0 + 61);
	assert_int_equal(offer_lim(stranger(4), T0 + 20), ip("10.0.0.101"));
	assert_int_equal(db_lease_get(db, stranger(4), &row), 0);
	assert_int_equal(row.expires_at, T0 + 61);
	assert_int_equal(offer_lim(stranger(4), T0 + 40), ip("10.0.0.101"));
	assert_int_equal(db_lease_get(db, stranger(4), &row), 0);
	assert_int_equal(row.expires_at, T0 + 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lowest_free_and_same_again,
		    fresh, done),
		cmocka_unit_test_setup_teardown(test_wanted_address, fresh, done),
		cmocka_unit_test_setup_teardown(test_expiry_makes_addresses_reusable,
		    fresh, done),
		cmocka_unit_test_setup_teardown(test_release_and_decline, fresh,
		    done),
		cmocka_unit_test_setup_teardown(test_exhaustion_and_reserved,
		    fresh, done),
		cmocka_unit_test_setup_teardown(test_adopted_host_keeps_its_address,
		    fresh, done),
		cmocka_unit_test_setup_teardown(test_stranger_rate, fresh,
		    done_big),
		cmocka_unit_test_setup_teardown(test_stranger_held, fresh,
		    done_big),
		cmocka_unit_test_setup_teardown(test_stranger_request_and_retransmit,
		    fresh, done_big),
	};

	if (sodium_init() < 0)
		return 1;
	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, setup, teardown);
}
