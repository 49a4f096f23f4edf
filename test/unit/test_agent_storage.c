/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agent/storage.c without disks: which fstab lines are taken, what the
 * facts' "mounts" then say, and the strict facts schema for them.  The
 * mounting and formatting paths run in test/netns/storage.sh (loop devices).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "msg.h"

static void
test_no_disks(void **state)
{
	char path[] = "/tmp/hv-storage-unit.XXXXXX";
	const char *want = "[{\"source\":\"LABEL=hv-unit-nowhere-1\","
	    "\"path\":\"/srv/a\",\"device\":null,\"fstype\":null,"
	    "\"mounted\":false,\"error\":\"no such device\"},"
	    "{\"source\":\"UUID=00000000-0000-0000-0000-00000000beef\","
	    "\"path\":\"/srv/b\",\"device\":null,\"fstype\":null,"
	    "\"mounted\":false,\"error\":\"options refused\"},"
	    "{\"source\":\"LABEL=hv-unit-nowhere-2\",\"path\":\"/srv/c\","
	    "\"device\":null,\"fstype\":null,\"mounted\":false,\"error\":"
	    "\"no such device; not formatted: Invalid argument\"}]";
	json_t *m, *w, *f;
	char err[256];
	FILE *fp;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(fp = fdopen(fd, "w"));
	fputs("# comment\n"
	    "/dev/sda1 / ext4 defaults 0 1\n"
	    "proc /proc proc defaults 0 0\n"
	    "LABEL=hv-unit-nowhere-1\t/srv/a\text4\tdefaults,noatime\t0 0\n"
	    "UUID=00000000-0000-0000-0000-00000000beef /srv/b auto user 0 0\n"
	    "LABEL=bad/label /srv/d ext4 defaults 0 0\n"
	    "LABEL=x /srv/../etc ext4 defaults 0 0\n"
	    "LABEL=x\n"
	    /* x-hv-format with fstype auto: refused, nothing run. */
	    "LABEL=hv-unit-nowhere-2 /srv/c auto x-hv-format=vdz 0 0\n", fp);
	fclose(fp);
	assert_int_equal(agent_storage_mount(path), 3);
	assert_non_null(m = agent_storage_json());
	assert_non_null(w = json_loads(want, 0, NULL));
	if (!json_equal(m, w))
		fail_msg("mounts differ: %s", json_dumps(m, JSON_COMPACT));
	json_decref(w);
	json_decref(m);

	/* The real facts carry them and pass the strict schema. */
	assert_non_null(f = facts_collect());
	assert_int_equal(json_array_size(json_object_get(f, "mounts")), 3);
	if (msg_check(MSG_S_FACTS, f, err, sizeof(err)) != 0)
		fail_msg("facts refused: %s", err);
	json_array_append_new(json_object_get(f, "mounts"),
	    json_pack("{s:s,s:s,s:n,s:n,s:b,s:s}", "source", "LABEL=a", "path",
	    "/a", "device", "fstype", "mounted", 0, "colour", "red"));
	assert_int_not_equal(msg_check(MSG_S_FACTS, f, err, sizeof(err)), 0);
	json_array_remove(json_object_get(f, "mounts"), 3);
	json_array_append_new(json_object_get(f, "mounts"),
	    json_pack("{s:s,s:s,s:n,s:n}", "source", "LABEL=a", "path", "/a",
	    "device", "fstype"));
	assert_int_not_equal(msg_check(MSG_S_FACTS, f, err, sizeof(err)), 0);
	json_decref(f);

	/* A missing fstab: nothing to do, and the facts list is empty. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(agent_storage_mount(path), 0);
	assert_non_null(m = agent_storage_json());
	assert_int_equal(json_array_size(m), 0);
	json_decref(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_disks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
