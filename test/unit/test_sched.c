/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * VM placement (daemon/sched.c): the host with the most free memory among
 * those that fit wins; no overcommit; every constraint holds; a refusal
 * names each host's reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

static struct vm_spec
spec(unsigned vcpus, uint64_t mib)
{
	struct vm_spec s;

	memset(&s, 0, sizeof(s));
	strcpy(s.name, "web1");
	s.vcpus = vcpus;
	s.memory_mib = mib;
	return s;
}

static const struct sched_host rack[] = {
	{ "h1", "{\"rack\":\"r1\"}", true, true, false, 1024, 4, false },
	{ "h2", "{\"rack\":\"r2\"}", true, true, false, 3072, 2, false },
	{ "h3", "{\"rack\":\"r1\"}", true, true, true, 2048, 8, false },
	{ "h4", "{}", false, true, false, 8192, 16, false },	/* down */
	{ "h5", "{}", true, false, false, 8192, 16, false },	/* no Xen */
};
#define NRACK (sizeof(rack) / sizeof(rack[0]))

static void
test_most_free_memory_wins(void **state)
{
	struct vm_spec s = spec(1, 512);
	char err[512];
	size_t pick = 99;

	(void)state;
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(rack[pick].name, "h2");
	assert_string_equal(err, "");
}

static void
test_no_overcommit(void **state)
{
	struct vm_spec s = spec(3, 512);	/* h2 has only 2 CPUs */
	char err[512];
	size_t pick = 99;

	(void)state;
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(rack[pick].name, "h3");
	s = spec(1, 3073);			/* more than anyone up has */
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 3073 MiB; "
	    "h1 has 1024 MiB free; h2 has 3072 MiB free; h3 has 2048 MiB free; "
	    "h4 is not up; h5 reports no Xen");
}

static void
test_constraints(void **state)
{
	struct vm_spec s = spec(1, 256);
	char err[512];
	size_t pick = 99;

	(void)state;
	strcpy(s.place_label, "rack=r1");
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(rack[pick].name, "h3");	/* r1: h1 1024, h3 2048 */
	strcpy(s.anti_affinity, "web");			/* h3 runs one already */
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(rack[pick].name, "h1");
	s = spec(1, 256);
	strcpy(s.place_host, "h1");
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(rack[pick].name, "h1");
	strcpy(s.place_host, "h4");
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 256 MiB on host h4; "
	    "h4 is not up");
	strcpy(s.place_host, "h9");
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 256 MiB on host h9; "
	    "there is no host h9");
	s = spec(1, 256);
	strcpy(s.place_label, "rack=r9");
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 256 MiB with label "
	    "rack=r9; h1 lacks the label; h2 lacks the label; h3 lacks the label; "
	    "h4 is not up; h5 reports no Xen");
}

static void
test_ties_and_empty(void **state)
{
	static const struct sched_host same[] = {
		{ "hb", "{}", true, true, false, 1024, 4, false },
		{ "ha", "{}", true, true, false, 1024, 4, false },
		{ "hc", "{}", true, true, false, 1024, 8, false },
	};
	struct vm_spec s = spec(1, 128);
	char err[64];
	size_t pick = 99;

	(void)state;
	assert_int_equal(sched_pick(same, 3, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(same[pick].name, "hc");	/* more CPUs free */
	assert_int_equal(sched_pick(same, 2, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(same[pick].name, "ha");	/* then the name */
	assert_int_equal(sched_pick(same, 0, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 128 MiB; there are no "
	    "hosts");
	/* A short buffer is cut, never overrun. */
	s = spec(1, 1 << 20);
	assert_int_equal(sched_pick(rack, NRACK, &s, &pick, err, 40), -ENOSPC);
	assert_true(strlen(err) < 40);
}

/* A draining host is skipped even when it fits best, and says so. */
static void
test_draining_takes_nothing(void **state)
{
	struct sched_host r[NRACK];
	struct vm_spec s = spec(1, 512);
	char err[512];
	size_t pick = 99;

	(void)state;
	memcpy(r, rack, sizeof(r));
	r[1].draining = true;				/* h2, the best fit */
	assert_int_equal(sched_pick(r, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(r[pick].name, "h3");
	strcpy(s.place_host, "h2");
	assert_int_equal(sched_pick(r, NRACK, &s, &pick, err, sizeof(err)),
	    -ENOSPC);
	assert_string_equal(err, "no host fits 1 vCPU and 512 MiB on host h2; "
	    "h2 is draining");
	r[1].draining = false;
	assert_int_equal(sched_pick(r, NRACK, &s, &pick, err, sizeof(err)), 0);
	assert_string_equal(r[pick].name, "h2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_most_free_memory_wins),
		cmocka_unit_test(test_no_overcommit),
		cmocka_unit_test(test_constraints),
		cmocka_unit_test(test_ties_and_empty),
		cmocka_unit_test(test_draining_takes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
