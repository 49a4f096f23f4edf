/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * db_event.c against a real SQLite file, with time passed in: subjects and
 * details are stored escaped; retention deletes what is older than the
 * age limit or beyond the row limit, at most one batch per call, oldest
 * first, never the newest row, and a call with nothing due writes nothing
 * (the commit hook, which wakes the mesh planner, stays quiet).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"

static char tmpdir[] = "/tmp/hv-test-event.XXXXXX";
static char dbpath[256];
static struct db *db;

#define T0	1700000000
#define DAY	86400

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
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
	snprintf(dbpath, sizeof(dbpath), "%s/event-%d.db", tmpdir, n++);
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

static void
add(const char *subject, int64_t time)
{
	assert_int_equal(db_event_record(db, "test.event", subject, "test", "",
	    time), 0);
}

/* The events newest first; *n of them. */
static struct event_row *
list(size_t *n)
{
	struct event_row *rows = NULL;

	assert_int_equal(db_event_list(db, NULL, 1000000, &rows, n), 0);
	return rows;
}

static void
test_escaped(void **state)
{
	struct event_row *rows;
	size_t n;

	(void)state;
	assert_int_equal(db_event_record(db, "agent.rejected", "h\n1", "hvd",
	    "10.0.0.9: unknown type 'x\nhvd: FORGED\x1b[2J' \\ \xc3\xa9", T0),
	    0);
	rows = list(&n);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].subject, "h\\x0a1");
	assert_string_equal(rows[0].detail, "10.0.0.9: unknown type "
	    "'x\\x0ahvd: FORGED\\x1b[2J' \\x5c \\xc3\\xa9");
	assert_string_equal(rows[0].kind, "agent.rejected");
	free(rows);
	/* Plain text is stored as it is. */
	assert_int_equal(db_event_record(db, "host.up", "h1", "agent",
	    "session from 10.0.0.2 (boot 7f)", T0), 0);
	rows = list(&n);
	assert_string_equal(rows[0].detail, "session from 10.0.0.2 (boot 7f)");
	free(rows);
}

static void
test_age(void **state)
{
	struct event_row *rows;
	uint64_t gen;
	size_t n;

	(void)state;
	for (int i = 0; i < 10; i++)
		add("old", T0 + i);
	for (int i = 0; i < 5; i++)
		add("new", T0 + 50 * DAY + i);
	/* At T0 + 90 days nothing is older than 90 days: nothing written. */
	gen = db_generation(db);
	assert_int_equal(db_event_prune(db, T0 + 90 * DAY, 90 * DAY, 100000,
	    1000), 0);
	assert_int_equal(db_generation(db), gen);
	/* A day later the first five are; at T0 + 100 days all ten. */
	assert_int_equal(db_event_prune(db, T0 + 90 * DAY + 5, 90 * DAY, 100000,
	    1000), 5);
	assert_true(db_generation(db) > gen);
	assert_int_equal(db_event_prune(db, T0 + 100 * DAY, 90 * DAY, 100000,
	    1000), 5);
	assert_int_equal(db_event_prune(db, T0 + 100 * DAY, 90 * DAY, 100000,
	    1000), 0);
	rows = list(&n);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(rows[i].subject, "new");
	free(rows);
}

static void
test_rows_in_batches(void **state)
{
	struct event_row *rows;
	size_t n;
	int64_t newest;

	(void)state;
	for (int i = 0; i < 250; i++)
		add("r", T0 + i);
	rows = list(&n);
	newest = rows[0].id;
	free(rows);
	/* 150 beyond the limit of 100, 60 a call: 60, 60, 30, then none. */
	assert_int_equal(db_event_prune(db, T0, 90 * DAY, 100, 60), 60);
	assert_int_equal(db_event_prune(db, T0, 90 * DAY, 100, 60), 60);
	assert_int_equal(db_event_prune(db, T0, 90 * DAY, 100, 60), 30);
	assert_int_equal(db_event_prune(db, T0, 90 * DAY, 100, 60), 0);
	rows = list(&n);
	assert_int_equal(n, 100);
	/* The newest hundred stayed. */
	assert_int_equal(rows[0].id, newest);
	assert_int_equal(rows[99].id, newest - 99);
	assert_int_equal(rows[99].time, T0 + 150);
	free(rows);
	/* New rows push the oldest out again. */
	add("r", T0 + 250);
	add("r", T0 + 251);
	assert_int_equal(db_event_prune(db, T0, 90 * DAY, 100, 60), 2);
	rows = list(&n);
	assert_int_equal(n, 100);
	assert_int_equal(rows[99].time, T0 + 152);
	free(rows);
}

static void
test_newest_kept(void **state)
{
	struct event_row *rows;
	size_t n;
	int64_t newest;

	(void)state;
	for (int i = 0; i < 4; i++)
		add("x", T0 + i);
	/* Everything is years old: all go but the newest (ids never go
	 * back, so a client paging by id never sees one twice). */
	assert_int_equal(db_event_prune(db, T0 + 3650 * DAY, DAY, 100000,
	    1000), 3);
	assert_int_equal(db_event_prune(db, T0 + 3650 * DAY, DAY, 100000,
	    1000), 0);
	rows = list(&n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].time, T0 + 3);
	newest = rows[0].id;
	free(rows);
	add("x", T0 + 3650 * DAY);
	rows = list(&n);
	assert_int_equal(rows[0].id, newest + 1);
	free(rows);
}

static void
test_out_of_order_time(void **state)
{
	struct event_row *rows;
	size_t n;

	(void)state;
	/* The clock was ahead for the first row: the old rows behind it go,
	 * it stays until it is due itself. */
	add("ahead", T0 + 200 * DAY);
	add("old", T0);
	add("old", T0 + 1);
	add("now", T0 + 95 * DAY);
	assert_int_equal(db_event_prune(db, T0 + 95 * DAY, 90 * DAY, 100000,
	    1000), 2);
	rows = list(&n);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].subject, "now");
	assert_string_equal(rows[1].subject, "ahead");
	free(rows);
}

static void
test_bad_arguments(void **state)
{
	(void)state;
	add("x", T0);
	assert_int_equal(db_event_prune(db, T0, DAY, 100, 0), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_escaped, fresh, done),
		cmocka_unit_test_setup_teardown(test_age, fresh, done),
		cmocka_unit_test_setup_teardown(test_rows_in_batches, fresh, done),
		cmocka_unit_test_setup_teardown(test_newest_kept, fresh, done),
		cmocka_unit_test_setup_teardown(test_out_of_order_time, fresh,
		    done),
		cmocka_unit_test_setup_teardown(test_bad_arguments, fresh, done),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
