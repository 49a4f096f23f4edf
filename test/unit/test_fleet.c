/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * fleet.c's telemetry history: samples are averaged per step, the ring
 * holds exactly retention/step points, oldest first, and the latest sample
 * is what the API and /metrics show.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "fleet.h"

static json_t *
sample(double cpu, double load1, long long used)
{
	return json_pack("{s:{s:f, s:i}, s:[f, f, f], s:{s:I, s:I, s:I}, "
	    "s:[{s:s, s:i, s:i, s:i, s:i, s:f, s:f}], s:[], s:[], s:n}",
	    "cpu", "percent", cpu, "count", 2,
	    "load", load1, 0.0, 0.0,
	    "memory", "total_bytes", (json_int_t)1000, "available_bytes",
	    (json_int_t)(1000 - used), "used_bytes", (json_int_t)used,
	    "nics", "name", "eth0", "rx_bytes", 0, "tx_bytes", 0, "rx_errors", 0,
	    "tx_errors", 0, "rx_bps", 800.0, "tx_bps", 80.0,
	    "disks", "temps", "xen");
}

static void
test_history_ring(void **state)
{
	struct hvd hvd = { 0 };
	struct host_row row = { .id = 1 };
	struct fleet_host *fh;
	json_t *s, *j, *hist, *first, *last;

	(void)state;
	hvd.base = event_base_new();
	hvd.conf = config_new();
	hvd.conf->telemetry_step_s = 10;
	hvd.conf->telemetry_retention_s = 60;
	snprintf(row.name, sizeof(row.name), "h1");
	assert_non_null(fh = fleet_get(&hvd, &row));
	assert_ptr_equal(fleet_find("h1"), fh);
	assert_ptr_equal(fleet_by_id(1), fh);
	assert_null(fleet_by_id(2));
	/* 200 s of one sample a second, starting at t = 1000. */
	for (int t = 0; t < 200; t++) {
		s = sample(t, t / 10.0, 100 + t);
		fleet_telemetry(fh, s, 1000 + t);
		json_decref(s);
	}
	j = fleet_telemetry_json(fh);
	hist = json_object_get(j, "history");
	/* Retention 60 s at 10 s steps: exactly 6 points kept. */
	assert_int_equal(json_array_size(hist), 6);
	first = json_array_get(hist, 0);
	last = json_array_get(hist, 5);
	/* The last complete step is [1180, 1190); the one filling is 1190.
	 * Times are the API's: RFC 3339 in UTC. */
	assert_string_equal(json_string_value(json_object_get(last, "t")),
	    "1970-01-01T00:19:40Z");
	assert_string_equal(json_string_value(json_object_get(first, "t")),
	    "1970-01-01T00:18:50Z");
	assert_string_equal(json_string_value(json_object_get(j, "at")),
	    "1970-01-01T00:19:59Z");
	/* Averages over the step: cpu 180..189 -> 184.5, load 18.45. */
	assert_float_equal(json_number_value(json_object_get(last,
	    "cpu_percent")), 184.5, 0.01);
	assert_float_equal(json_number_value(json_object_get(last, "load1")),
	    18.45, 0.01);
	/* Memory and rates are the step's last sample, not a sum. */
	assert_int_equal(json_integer_value(json_object_get(last,
	    "memory_used_bytes")), 100 + 189);
	assert_int_equal(json_integer_value(json_object_get(last, "rx_bps")), 800);
	/* The latest sample is served whole. */
	assert_float_equal(json_number_value(json_object_get(json_object_get(
	    json_object_get(j, "latest"), "cpu"), "percent")), 199, 0.001);
	json_decref(j);
	fleet_shutdown();
	assert_null(fleet_find("h1"));
	config_free(hvd.conf);
	event_base_free(hvd.base);
}

static void
test_timestamps_must_grow(void **state)
{
	struct hvd hvd = { 0 };
	struct host_row row = { .id = 2 };
	struct fleet_host *fh;

	(void)state;
	hvd.base = event_base_new();
	hvd.conf = config_new();
	snprintf(row.name, sizeof(row.name), "h2");
	assert_non_null(fh = fleet_get(&hvd, &row));
	assert_true(fleet_accept_timestamp(fh, 100));
	assert_false(fleet_accept_timestamp(fh, 100));	/* replay */
	assert_false(fleet_accept_timestamp(fh, 99));	/* older */
	assert_true(fleet_accept_timestamp(fh, 101));
	/* The id index survives growth past its first table. */
	for (int64_t id = 100; id < 1100; id++) {
		struct host_row r = { .id = id };

		snprintf(r.name, sizeof(r.name), "n%lld", (long long)id);
		assert_non_null(fleet_get(&hvd, &r));
	}
	for (int64_t id = 100; id < 1100; id++)
		assert_int_equal(fleet_name(fleet_by_id(id))[0], 'n');
	assert_ptr_equal(fleet_by_id(2), fh);
	fleet_shutdown();
	config_free(hvd.conf);
	event_base_free(hvd.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_ring),
		cmocka_unit_test(test_timestamps_must_grow),
	};

	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
