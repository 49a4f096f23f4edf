/*
 * db_lease.c against a real SQLite file, with time passed in: the lowest
 * free address, the same address for the same MAC, NAK for a wrong one,
 * expiry, release, decline, exhaustion, and an adopted host's underlay_ip,
 * which it always gets and nobody else ever does.
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

	assert_int_equal(db_lease_offer(db, mac, &pool, want, now + 60, now,
	    &got), 0);
	return got;
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
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), "node-a",
	    "01525400", T0 + 3600, T0), 0);
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
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL,
	    NULL, T0 + 7200, T0 + 1800), 0);
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.100"), NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	/* A asking for another address than its own: NAK. */
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.103"), NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	/* Outside the range, or the subnet: NAK. */
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.50"), NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, C, &pool, ip("192.168.0.100"), NULL,
	    NULL, T0 + 3600, T0), -EADDRNOTAVAIL);
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
	    ip("10.0.0.104"), NULL, NULL, T0 + 600, T0), 0);
}

static void
test_expiry_makes_addresses_reusable(void **state)
{
	struct lease_row row;

	(void)state;
	assert_int_equal(offer(A, 0, T0), ip("10.0.0.100"));
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL,
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
	assert_int_equal(db_lease_request(db, A, &pool, ip("10.0.0.100"), NULL,
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
	assert_int_equal(db_lease_offer(db, A, &pool, 0, T0 + 60, T0, &got),
	    -ENOSPC);
	/* hvd's own, the network and the broadcast address are never
	 * leased, even inside the range. */
	pool.first = ip("10.0.0.0");
	pool.last = ip("10.0.0.2");
	assert_int_equal(offer(B, 0, T0), ip("10.0.0.2"));
	assert_int_equal(db_lease_offer(db, C, &pool, 0, T0 + 60, T0, &got),
	    -ENOSPC);
	pool.first = ip("10.0.0.254");
	pool.last = ip("10.0.0.255");
	assert_int_equal(offer(C, 0, T0), ip("10.0.0.254"));
	assert_int_equal(db_lease_offer(db, "52:54:00:00:00:0e", &pool, 0,
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
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.100"), NULL,
	    NULL, T0 + 600, T0), 0);
	host_add("h1", H, "10.0.0.20/24");
	/* A host inside the range reserves its address too. */
	host_add("h2", "52:54:00:00:00:bb", "10.0.0.101");
	assert_int_equal(offer(H, 0, T0 + 1), ip("10.0.0.20"));
	assert_int_equal(offer(H, ip("10.0.0.100"), T0 + 2), ip("10.0.0.20"));
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.100"), NULL,
	    NULL, T0 + 600, T0 + 2), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, H, &pool, ip("10.0.0.20"), NULL,
	    NULL, T0 + 600, T0 + 2), 0);
	assert_int_equal(db_lease_get(db, H, &row), 0);
	assert_string_equal(row.ip, "10.0.0.20");
	assert_string_equal(row.state, "bound");
	/* Nobody else gets a host's address, whatever they ask for. */
	assert_int_equal(offer(A, ip("10.0.0.101"), T0 + 3), ip("10.0.0.100"));
	assert_int_equal(offer(B, 0, T0 + 3), ip("10.0.0.102"));
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.20"), NULL,
	    NULL, T0 + 600, T0 + 3), -EADDRNOTAVAIL);
	assert_int_equal(db_lease_request(db, C, &pool, ip("10.0.0.101"), NULL,
	    NULL, T0 + 600, T0 + 3), -EADDRNOTAVAIL);
	/* An underlay off the boot subnet cannot be offered: range instead. */
	host_add("h3", C, "192.168.7.7");
	assert_int_equal(offer(C, 0, T0 + 4), ip("10.0.0.103"));
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
	};

	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, setup, teardown);
}
