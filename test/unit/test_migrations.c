/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Migrations: a database upgraded from every earlier schema version must
 * equal a freshly created one, and data written at an old version survives.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "schema.h"

static char tmpdir[] = "/tmp/hv-test-migrations.XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

static char *
dump_of(const char *path, int version)
{
	struct db *db;
	char *dump;

	assert_int_equal(db_open_version(path, version, &db), 0);
	assert_int_equal(db_schema_dump(db, &dump), 0);
	db_close(db);
	return dump;
}

static void
test_upgrade_from_every_version(void **state)
{
	char fresh[256], path[256];
	char *want, *got;

	(void)state;
	assert_true(schema_migration_count >= 2);
	snprintf(fresh, sizeof(fresh), "%s/fresh.db", tmpdir);
	want = dump_of(fresh, schema_migration_count);
	assert_non_null(strstr(want, "CREATE TABLE networks"));
	for (int v = 0; v < schema_migration_count; v++) {
		struct db *db;

		snprintf(path, sizeof(path), "%s/from-%d.db", tmpdir, v);
		assert_int_equal(db_open_version(path, v, &db), 0);
		assert_int_equal(db_user_version(db), v);
		db_close(db);
		/* db_open() upgrades to the newest version. */
		assert_int_equal(db_open(path, &db), 0);
		assert_int_equal(db_user_version(db), schema_migration_count);
		db_close(db);
		got = dump_of(path, schema_migration_count);
		if (strcmp(want, got) != 0)
			fail_msg("upgrade from version %d differs:\n--- fresh\n%s\n"
			    "--- upgraded\n%s", v, want, got);
		free(got);
	}
	free(want);
}

static void
test_data_survives_upgrade(void **state)
{
	struct network n = { .vni = 42, .all_hosts = true }, back;
	char path[256];
	struct db *db;

	(void)state;
	snprintf(path, sizeof(path), "%s/data.db", tmpdir);
	/* Networks exist since migration 1: write there, then upgrade. */
	assert_int_equal(db_open_version(path, 1, &db), 0);
	snprintf(n.name, sizeof(n.name), "old");
	assert_int_equal(db_network_create(db, &n, "test", 1000), 0);
	db_close(db);
	assert_int_equal(db_open(path, &db), 0);
	assert_int_equal(db_network_get(db, "old", &back), 0);
	assert_int_equal(back.vni, 42);
	assert_int_equal(back.created_at, 1000);
	db_close(db);
}

static void
test_newer_schema_refused(void **state)
{
	char path[256], sql[400];
	struct db *db;

	(void)state;
	snprintf(path, sizeof(path), "%s/future.db", tmpdir);
	assert_int_equal(db_open(path, &db), 0);
	db_close(db);
	snprintf(sql, sizeof(sql), "sqlite3 '%s' 'PRAGMA user_version = %d'",
	    path, schema_migration_count + 1);
	assert_int_equal(system(sql), 0);
	assert_int_equal(db_open(path, &db), -EPROTO);
	assert_null(db);
}

static void
test_constraints(void **state)
{
	struct network a = { .vni = 7 }, b = { .vni = 7 }, c = { .vni = 8 };
	char path[256];
	struct db *db;

	(void)state;
	snprintf(path, sizeof(path), "%s/constraints.db", tmpdir);
	assert_int_equal(db_open(path, &db), 0);
	snprintf(a.name, sizeof(a.name), "a");
	snprintf(b.name, sizeof(b.name), "b");
	snprintf(c.name, sizeof(c.name), "a");
	assert_int_equal(db_network_create(db, &a, "t", 1), 0);
	assert_int_equal(db_network_create(db, &b, "t", 1), -EEXIST);
	assert_string_equal(db_conflict(db), "networks.vni");
	assert_int_equal(db_network_create(db, &c, "t", 1), -EEXIST);
	assert_string_equal(db_conflict(db), "networks.name");
	assert_int_equal(db_network_delete(db, "7", "t", 2), 0);
	assert_int_equal(db_network_delete(db, "7", "t", 2), -ENOENT);
	db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upgrade_from_every_version),
		cmocka_unit_test(test_data_survives_upgrade),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_constraints),
	};

	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, setup, teardown);
}
