/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's VM pieces that need no Xen: the vm.* message schemas
 * (proto/msg.c) and vm.create's whole check, the image store
 * (agent/images.c) against an in-process HTTP server on loopback (fetch,
 * sha256 mismatch refused and deleted, 404, cache hit without HTTP, a
 * tampered cached file fetched again, a shared download, the disk copy,
 * the directory choice), libxl's osevent hooks on libevent
 * (agent/xlevent.c) with fake "occurred" functions, and the console tail.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <libxl.h>
#include <sodium.h>

#include "msg.h"
#include "vm.h"

#define UUID "6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2d"
#define MIGID "00112233445566778899aabbccddeeff"
#define SHA0 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* ---- schemas ---- */

static void
check_cases(const struct { enum msg_schema s; const char *json;
    const char *error; } *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_loads(cases[i].json, 0, NULL);
		char err[256] = "";
		int r;

		if (v == NULL)
			fail_msg("bad test JSON %zu", i);
		r = msg_check(cases[i].s, v, err, sizeof(err));
		json_decref(v);
		if (cases[i].error == NULL && r != 0)
			fail_msg("case %zu rejected: %s", i, err);
		if (cases[i].error != NULL) {
			if (r == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err, cases[i].error);
		}
	}
}

#define CR0 "\"name\":\"web1\",\"uuid\":\"" UUID "\",\"vcpus\":1," \
	"\"memory_mib\":64,\"type\":\"pv\""
#define IMGREF(s) "{\"url\":\"http://10.0.0.1:8080/images/" s "\"," \
	"\"sha256\":\"" s "\"}"

static const struct {
	enum msg_schema s;
	const char *json;
	const char *error;
} schema_cases[] = {
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":" IMGREF(SHA0) ",\"nics\":[]}",
	    NULL },
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":" IMGREF(SHA0) ",\"initramfs\":"
	    IMGREF(SHA0) ",\"cmdline\":\"ro\",\"disk\":" IMGREF(SHA0) ","
	    "\"nics\":[{\"bridge\":\"br100\",\"mac\":\"00:16:3e:00:00:01\"}]}",
	    NULL },
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":\"/boot/k\",\"nics\":[]}",
	    "params.kernel: must be an object" },
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":{\"url\":\"x\"},\"nics\":[]}",
	    "params.kernel: missing field 'sha256'" },
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":{\"url\":\"x\",\"sha256\":"
	    "\"ABCDEF\"},\"nics\":[]}",
	    "params.kernel.sha256: must be 64 lowercase hex digits" },
	{ MSG_S_VM_CREATE, "{" CR0 ",\"kernel\":" IMGREF(SHA0) ",\"nics\":[],"
	    "\"x\":1}", "params: unknown field 'x'" },
	{ MSG_S_VM_CREATE, "{\"name\":\"a\",\"uuid\":\"" UUID "\",\"vcpus\":0,"
	    "\"memory_mib\":64,\"type\":\"pv\",\"nics\":[]}",
	    "params.vcpus: must be in 1..128" },
	{ MSG_S_VM_CREATE, "{\"name\":\"a\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
	    "\"memory_mib\":64,\"type\":\"hvm\",\"nics\":[]}",
	    "params.type: not an allowed value" },
	{ MSG_S_VM_CREATE, "{\"name\":\"a\",\"uuid\":\"6F1C0A52-8f2e-4b7a-9c1d-"
	    "3e5f7a9b0c2d\",\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\","
	    "\"nics\":[]}", "params.uuid: must be a lowercase 8-4-4-4-12 hex uuid" },
	{ MSG_S_VM_ACCEPTED, "{\"accepted\":true}", NULL },
	{ MSG_S_VM_ACCEPTED, "{\"accepted\":true,\"existing\":true}", NULL },
	{ MSG_S_VM_ACCEPTED, "{}", "params: missing field 'accepted'" },
	{ MSG_S_VM_REF, "{\"uuid\":\"" UUID "\"}", NULL },
	{ MSG_S_VM_REF, "{\"uuid\":\"" UUID "\",\"force\":true}",
	    "params: unknown field 'force'" },
	{ MSG_S_VM_SHUTDOWN, "{\"uuid\":\"" UUID "\",\"timeout_s\":0}", NULL },
	{ MSG_S_VM_SHUTDOWN, "{\"uuid\":\"" UUID "\",\"timeout_s\":3601}",
	    "params.timeout_s: must be in 0..3600" },
	{ MSG_S_VM_SHUTDOWN, "{\"uuid\":\"" UUID "\"}",
	    "params: missing field 'timeout_s'" },
	{ MSG_S_VM_CONSOLE, "{\"uuid\":\"" UUID "\",\"bytes\":65536}", NULL },
	{ MSG_S_VM_CONSOLE, "{\"uuid\":\"" UUID "\",\"bytes\":0}",
	    "params.bytes: must be in 1..65536" },
	{ MSG_S_VM_CONSOLE, "{\"uuid\":\"" UUID "\",\"bytes\":65537}",
	    "params.bytes: must be in 1..65536" },
	{ MSG_S_VM_CONSOLE_RESULT, "{\"log\":\"boot\\n\"}", NULL },
	{ MSG_S_VM_LIST_RESULT, "{\"vms\":[]}", NULL },
	{ MSG_S_VM_LIST_RESULT, "{\"vms\":[{\"name\":\"web1\",\"uuid\":\"" UUID
	    "\",\"domid\":3,\"state\":\"paused\",\"memory_mib\":64,\"vcpus\":1}]}",
	    NULL },
	{ MSG_S_VM_LIST_RESULT, "{\"vms\":[{\"name\":\"web1\",\"uuid\":\"" UUID
	    "\",\"domid\":0,\"state\":\"running\",\"memory_mib\":64,\"vcpus\":1}]}",
	    "params.vms[0].domid: must be in 1..65535" },
	{ MSG_S_VM_LIST_RESULT, "{\"vms\":[{\"name\":\"web1\",\"uuid\":\"" UUID
	    "\",\"domid\":3,\"state\":\"stopped\",\"memory_mib\":64,\"vcpus\":1}]}",
	    "params.vms[0].state: not an allowed value" },
	{ MSG_S_VM_STATE, "{\"uuid\":\"" UUID "\",\"name\":\"web1\",\"state\":"
	    "\"running\",\"domid\":7}", NULL },
	{ MSG_S_VM_STATE, "{\"uuid\":\"" UUID "\",\"name\":\"web1\",\"state\":"
	    "\"crashed\",\"reason\":\"crash\"}", NULL },
	{ MSG_S_VM_STATE, "{\"uuid\":\"" UUID "\",\"name\":\"web1\",\"state\":"
	    "\"paused\"}", "params.state: not an allowed value" },
	{ MSG_S_VM_STATE, "{\"uuid\":\"" UUID "\",\"name\":\"web1\",\"state\":"
	    "\"failed\",\"reason\":\"" "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123456789"
	    "0123456789\"}", "params.reason: longer than 256 bytes" },
	{ MSG_S_VM_MIGRATE_IN, "{\"vm\":{" CR0 ",\"kernel\":" IMGREF(SHA0)
	    ",\"nics\":[]},\"id\":\"" MIGID "\",\"key\":\"" SHA0 "\","
	    "\"peer_key\":\"" SHA0 "\",\"peer\":\"10.0.0.2\",\"timeout_s\":60}",
	    NULL },
	{ MSG_S_VM_MIGRATE_IN, "{\"vm\":{" CR0 ",\"nics\":[]},\"id\":\""
	    MIGID "\",\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\","
	    "\"peer\":\"10.0.0.2\",\"timeout_s\":9}",
	    "params.timeout_s: must be in 10..3600" },
	{ MSG_S_VM_MIGRATE_IN, "{\"vm\":{" CR0 ",\"nics\":[]},\"id\":\"abc\","
	    "\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\",\"peer\":\"x\","
	    "\"timeout_s\":60}", "params.id: must be 32 lowercase hex digits" },
	{ MSG_S_VM_MIGRATE_IN, "{\"vm\":{" CR0 "},\"id\":\"" MIGID "\","
	    "\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\",\"peer\":\"x\","
	    "\"timeout_s\":60}", "params.vm: missing field 'nics'" },
	{ MSG_S_VM_MIGRATE_IN_RESULT, "{\"accepted\":true,\"port\":8472}",
	    NULL },
	{ MSG_S_VM_MIGRATE_IN_RESULT, "{\"accepted\":true,\"port\":0}",
	    "params.port: must be in 1..65535" },
	{ MSG_S_VM_MIGRATE_OUT, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\",\"peer\":"
	    "\"fd00::2\",\"port\":8472,\"timeout_s\":3600}", NULL },
	{ MSG_S_VM_MIGRATE_OUT, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\",\"peer\":"
	    "\"fd00::2\",\"timeout_s\":60}", "params: missing field 'port'" },
	{ MSG_S_VM_MIGRATE_OUT, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"key\":\"" SHA0 "\",\"peer_key\":\"" SHA0 "\",\"peer\":"
	    "\"0123456789012345678901234567890123456789012345\",\"port\":1,"
	    "\"timeout_s\":60}", "params.peer: longer than 45 bytes" },
	{ MSG_S_VM_MIGRATE_END, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"outcome\":\"target\"}", NULL },
	{ MSG_S_VM_MIGRATE_END, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"outcome\":\"both\"}", "params.outcome: not an allowed value" },
	{ MSG_S_VM_MIGRATE_END_RESULT, "{\"state\":\"gone\"}", NULL },
	{ MSG_S_VM_MIGRATE_END_RESULT, "{\"state\":\"paused\"}",
	    "params.state: not an allowed value" },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"source\",\"phase\":\"copying\",\"bytes\":65536,"
	    "\"round\":2}", NULL },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"source\",\"phase\":\"copying\",\"mode\":\"stop-copy\"}",
	    NULL },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"source\",\"phase\":\"copying\",\"mode\":\"fast\"}",
	    "params.mode: not an allowed value" },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"target\",\"phase\":\"done\",\"domid\":4}", NULL },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"target\",\"phase\":\"moving\"}",
	    "params.phase: not an allowed value" },
	{ MSG_S_VM_MIGRATION, "{\"uuid\":\"" UUID "\",\"id\":\"" MIGID "\","
	    "\"role\":\"source\",\"phase\":\"failed\",\"bytes\":-1}",
	    "params.bytes: must not be negative" },
	{ MSG_S_MIGRATION_REFUSED, "{\"peer\":\"10.0.0.9\",\"reason\":"
	    "\"unknown id\"}", NULL },
	{ MSG_S_MIGRATION_REFUSED, "{\"peer\":\"10.0.0.9\"}",
	    "params: missing field 'reason'" },
};

static void
test_schemas(void **state)
{
	(void)state;
	check_cases((const void *)schema_cases,
	    sizeof(schema_cases) / sizeof(*schema_cases));
}

static void
test_create_check(void **state)
{
	static const struct {
		const char *json;
		const char *error;
	} cases[] = {
		{ "{" CR0 ",\"kernel\":" IMGREF(SHA0) ",\"nics\":[]}", NULL },
		{ "{" CR0 ",\"disk\":" IMGREF(SHA0) ",\"nics\":[]}", NULL },
		{ "{" CR0 ",\"nics\":[]}",
		    "params: a kernel or a disk (or both) is required to boot" },
		{ "{" CR0 ",\"disk\":" IMGREF(SHA0) ",\"cmdline\":\"x\","
		    "\"nics\":[]}", "params.cmdline: only with a kernel" },
		{ "{" CR0 ",\"kernel\":{\"url\":\"http://hvd.lan/images/" SHA0
		    "\",\"sha256\":\"" SHA0 "\"},\"nics\":[]}",
		    "params.kernel.url: host must be a numeric address" },
		{ "{" CR0 ",\"kernel\":{\"url\":\"https://10.0.0.1/images/" SHA0
		    "\",\"sha256\":\"" SHA0 "\"},\"nics\":[]}",
		    "params.kernel.url: must be http://address[:port]/images/"
		    "<sha256>" },
		{ "{" CR0 ",\"kernel\":{\"url\":\"http://10.0.0.1/images/x\","
		    "\"sha256\":\"" SHA0 "\"},\"nics\":[]}",
		    "params.kernel.url: path must be /images/<the image's sha256>" },
		{ "{" CR0 ",\"kernel\":{\"url\":\"http://[::1]:80/images/" SHA0
		    "\",\"sha256\":\"" SHA0 "\"},\"nics\":[]}", NULL },
		{ "{" CR0 ",\"kernel\":" IMGREF(SHA0) ",\"nics\":[{\"bridge\":"
		    "\"br0\",\"mac\":\"00:16:3e:00:00:01\"}]}",
		    "params.nics[0].bridge: must be br<VNI>, VNI in 1..16777215" },
		{ "{\"name\":\"Web\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
		    "\"memory_mib\":64,\"type\":\"pv\",\"kernel\":" IMGREF(SHA0) ","
		    "\"nics\":[]}", NULL /* prefix checked below */ },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		json_t *v = json_loads(cases[i].json, 0, NULL);
		char err[256] = "";
		int r;

		assert_non_null(v);
		r = agent_vm_create_check(v, err, sizeof(err));
		json_decref(v);
		if (i == sizeof(cases) / sizeof(*cases) - 1) {
			assert_int_equal(r, -EINVAL);
			assert_memory_equal(err, "params.name:", 12);
			continue;
		}
		if (cases[i].error == NULL && r != 0)
			fail_msg("case %zu rejected: %s", i, err);
		if (cases[i].error != NULL) {
			if (r == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err, cases[i].error);
		}
	}
}

/* Without Xen every vm.* method fails the same way. */
static void
test_no_xen(void **state)
{
	char err[128] = "";
	json_t *p = json_pack("{s:s}", "uuid", UUID);

	(void)state;
	assert_null(agent_vm_destroy(NULL, p, err, sizeof(err)));
	assert_string_equal(err, "no Xen on this host");
	err[0] = '\0';
	assert_null(agent_vm_list(NULL, p, err, sizeof(err)));
	assert_string_equal(err, "no Xen on this host");
	json_decref(p);
}

/* ---- image store ---- */

struct srv {
	struct event_base *base;
	struct evhttp *http;
	uint16_t port;
	unsigned requests;
	const char *body;		/* served for every /images/ path */
	size_t len;
	int status;
};

struct done {
	int calls, r;
	char path[512], err[256];
};

static char tmpdir[256];
static char sha_good[IMG_SHA_HEX + 1];
static const char body_good[] = "a kernel image, or close enough\n";

static void
srv_cb(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	struct evbuffer *b = evbuffer_new();

	s->requests++;
	if (s->status != 200) {
		evhttp_send_error(req, s->status, NULL);
		evbuffer_free(b);
		return;
	}
	evbuffer_add(b, s->body, s->len);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
srv_start(struct srv *s)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	s->base = event_base_new();
	assert_non_null(s->base);
	s->http = evhttp_new(s->base);
	assert_non_null(s->http);
	evhttp_set_gencb(s->http, srv_cb, s);
	bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&ss, &sl), 0);
	s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	s->status = 200;
	s->body = body_good;
	s->len = strlen(body_good);
}

static void
srv_stop(struct srv *s)
{
	evhttp_free(s->http);
	event_base_free(s->base);
}

static void
on_done(void *arg, int r, const char *path, const char *err)
{
	struct done *d = arg;

	d->calls++;
	d->r = r;
	snprintf(d->path, sizeof(d->path), "%s", path ? path : "");
	snprintf(d->err, sizeof(d->err), "%s", err ? err : "");
	if (r == 0)
		assert_null(err);
}

/* Runs the loop until every D has been called (or 10 s pass). */
static void
wait_done(struct srv *s, struct done *d, int n)
{
	for (int t = 0; t < 10000; t++) {
		bool all = true;

		for (int i = 0; i < n; i++)
			all = all && d[i].calls > 0;
		if (all)
			return;
		event_base_loop(s->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
	fail_msg("image callback never came");
}

static void
url_of(const struct srv *s, const char *sha, char *out, size_t len)
{
	snprintf(out, len, "http://127.0.0.1:%u/images/%s", s->port, sha);
}

static bool
file_is(const char *path, const char *content)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd == -1)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)strlen(content) && memcmp(buf, content, n) == 0;
}

static bool
exists(const char *dir, const char *name)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void
test_fetch_verify_cache(void **state)
{
	struct srv s = { 0 };
	struct img_cache *c;
	struct done d[3];
	char url[256], path[512], part[80];

	(void)state;
	srv_start(&s);
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	url_of(&s, sha_good, url, sizeof(url));

	/* Two requests, one download, both told. */
	memset(d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[0]));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[1]));
	assert_int_equal(d[0].calls, 0);	/* never from inside img_fetch */
	wait_done(&s, d, 2);
	assert_int_equal(s.requests, 1);
	assert_int_equal(d[0].r, 0);
	assert_int_equal(d[1].r, 0);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, sha_good);
	assert_string_equal(d[0].path, path);
	assert_true(file_is(path, body_good));
	snprintf(part, sizeof(part), ".%s.part", sha_good);
	assert_false(exists(tmpdir, part));

	/* A cache hit: no HTTP at all. */
	memset(d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[0]));
	wait_done(&s, d, 1);
	assert_int_equal(d[0].r, 0);
	assert_int_equal(s.requests, 1);

	/* A cancelled request is not called back. */
	memset(d, 0, sizeof(d));
	img_cancel(img_fetch(c, url, sha_good, on_done, &d[0]));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[1]));
	wait_done(&s, &d[1], 1);
	assert_int_equal(d[0].calls, 0);

	img_cache_free(c);

	/* A new process (a new cache) hashes the file before reusing it. */
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	memset(d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[0]));
	wait_done(&s, d, 1);
	assert_int_equal(d[0].r, 0);
	assert_int_equal(s.requests, 1);

	/* Tampered in place: found out, fetched again. */
	img_cache_free(c);
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	{
		int fd = open(path, O_WRONLY | O_TRUNC);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "evil", 4), 4);
		close(fd);
	}
	memset(d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[0]));
	wait_done(&s, d, 1);
	assert_int_equal(d[0].r, 0);
	assert_int_equal(s.requests, 2);
	assert_true(file_is(path, body_good));

	/* Changed after this process verified it (size): fetched again. */
	{
		int fd = open(path, O_WRONLY | O_APPEND);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "x", 1), 1);
		close(fd);
	}
	memset(d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d[0]));
	wait_done(&s, d, 1);
	assert_int_equal(d[0].r, 0);
	assert_int_equal(s.requests, 3);
	assert_true(file_is(path, body_good));

	img_cache_free(c);
	srv_stop(&s);
}

static void
test_fetch_refused(void **state)
{
	struct srv s = { 0 };
	struct img_cache *c;
	struct done d;
	char url[256], part[80];

	(void)state;
	srv_start(&s);
	assert_non_null(c = img_cache_new(s.base, tmpdir));

	/* The server sends other bytes than the hash names: refused. */
	s.body = "not the image you asked for\n";
	s.len = strlen(s.body);
	url_of(&s, SHA0, url, sizeof(url));
	memset(&d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, SHA0, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, -EBADMSG);
	assert_non_null(strstr(d.err, "sha256 mismatch"));
	assert_false(exists(tmpdir, SHA0));
	snprintf(part, sizeof(part), ".%s.part", SHA0);
	assert_false(exists(tmpdir, part));

	/* 404. */
	s.status = 404;
	memset(&d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, SHA0, on_done, &d));
	wait_done(&s, &d, 1);
	assert_true(d.r < 0);
	assert_non_null(strstr(d.err, "HTTP 404"));
	assert_false(exists(tmpdir, SHA0));
	assert_false(exists(tmpdir, part));

	/* Nobody listening. */
	memset(&d, 0, sizeof(d));
	snprintf(url, sizeof(url), "http://127.0.0.1:1/images/%s", SHA0);
	assert_non_null(img_fetch(c, url, SHA0, on_done, &d));
	wait_done(&s, &d, 1);
	assert_true(d.r < 0);
	assert_false(exists(tmpdir, SHA0));

	/* A bad reference is refused before any work. */
	errno = 0;
	assert_null(img_fetch(c, "http://localhost/images/" SHA0, SHA0,
	    on_done, &d));
	assert_int_equal(errno, EINVAL);

	img_cache_free(c);
	srv_stop(&s);
}

/* Many HTTP chunks and several hashing slices. */
static void
test_fetch_large(void **state)
{
	struct srv s = { 0 };
	struct img_cache *c;
	struct done d;
	uint8_t h[crypto_hash_sha256_BYTES];
	char sha[IMG_SHA_HEX + 1], url[256], path[512];
	size_t len = 9u << 20;
	char *big = malloc(len);
	struct stat sb;

	(void)state;
	assert_non_null(big);
	randombytes_buf(big, len);
	crypto_hash_sha256(h, (const uint8_t *)big, len);
	sodium_bin2hex(sha, sizeof(sha), h, sizeof(h));
	srv_start(&s);
	s.body = big;
	s.len = len;
	url_of(&s, sha, url, sizeof(url));
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	memset(&d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, 0);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, sha);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)len);
	img_cache_free(c);
	/* Re-verified in slices by a new cache, without HTTP. */
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	memset(&d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, 0);
	assert_int_equal(s.requests, 1);
	img_cache_free(c);
	unlink(path);
	srv_stop(&s);
	free(big);
}

static void
test_disk_copy(void **state)
{
	struct srv s = { 0 };
	struct img_cache *c;
	struct done d;
	char url[256], path[512];
	int fd;

	(void)state;
	srv_start(&s);
	assert_non_null(c = img_cache_new(s.base, tmpdir));
	url_of(&s, sha_good, url, sizeof(url));
	memset(&d, 0, sizeof(d));
	assert_non_null(img_fetch(c, url, sha_good, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, 0);

	memset(&d, 0, sizeof(d));
	assert_non_null(img_disk(c, sha_good, UUID, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, 0);
	snprintf(path, sizeof(path), "%s/vm/%s.disk", tmpdir, UUID);
	assert_string_equal(d.path, path);
	assert_true(file_is(path, body_good));

	/* The guest writes; a re-create keeps its disk. */
	assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
	assert_int_equal(write(fd, "guest data", 10), 10);
	close(fd);
	memset(&d, 0, sizeof(d));
	assert_non_null(img_disk(c, sha_good, UUID, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, 0);
	assert_true(file_is(path, "guest data"));
	/* ... and the cached image is untouched. */
	snprintf(path, sizeof(path), "%s/%s", tmpdir, sha_good);
	assert_true(file_is(path, body_good));

	assert_int_equal(img_disk_remove(c, UUID), 0);
	assert_int_equal(img_disk_remove(c, UUID), -ENOENT);

	/* No such image. */
	memset(&d, 0, sizeof(d));
	assert_non_null(img_disk(c, SHA0, UUID, on_done, &d));
	wait_done(&s, &d, 1);
	assert_int_equal(d.r, -ENOENT);

	img_cache_free(c);
	srv_stop(&s);
}

static void
test_dir_choose(void **state)
{
	char out[512], persist[300], vol[300];

	(void)state;
	/* A directory on a disk filesystem (the test's tmpdir) is kept. */
	snprintf(persist, sizeof(persist), "%s", tmpdir);
	snprintf(vol, sizeof(vol), "%s/run/hv/images", tmpdir);
	assert_int_equal(img_dir_choose(persist, vol, out, sizeof(out)), 0);
	assert_string_equal(out, persist);
	/* Missing: the RAM directory, created. */
	snprintf(persist, sizeof(persist), "%s/no/such", tmpdir);
	assert_int_equal(img_dir_choose(persist, vol, out, sizeof(out)), 0);
	assert_string_equal(out, vol);
	assert_true(exists(tmpdir, "run/hv/images"));
	/* On tmpfs (not local storage): the RAM directory too. */
	if (access("/dev/shm", W_OK) == 0) {
		char shm[] = "/dev/shm/test_vm.XXXXXX";

		assert_non_null(mkdtemp(shm));
		assert_int_equal(img_dir_choose(shm, vol, out, sizeof(out)), 0);
		assert_string_equal(out, vol);
		rmdir(shm);
	}
}

/* ---- libxl osevent hooks ---- */

struct fake {
	int fd_calls, to_calls;
	void *last_for;
	short last_events, last_revents;
};

static void
fake_fd(void *ctx, void *for_libxl, int fd, short events, short revents)
{
	struct fake *f = ctx;

	(void)fd;
	f->fd_calls++;
	f->last_for = for_libxl;
	f->last_events = events;
	f->last_revents = revents;
}

static void
fake_timeout(void *ctx, void *for_libxl)
{
	struct fake *f = ctx;

	f->to_calls++;
	f->last_for = for_libxl;
}

static const struct xlev_ops fake_ops = { fake_fd, fake_timeout };

static void
test_osevent_hooks(void **state)
{
	const libxl_osevent_hooks *h = xlev_hooks();
	struct event_base *base = event_base_new();
	struct fake f = { 0 };
	struct xlev *x;
	struct timeval abs;
	void *reg = NULL, *reg2 = NULL, *treg = NULL, *treg2 = NULL;
	int p[2];
	int tag1, tag2;

	(void)state;
	assert_non_null(base);
	assert_non_null(x = xlev_new(base, &fake_ops, &f));
	assert_int_equal(pipe(p), 0);

	/* Readable pipe, registered for POLLIN: reported with its tag. */
	assert_int_equal(h->fd_register(x, p[0], &reg, POLLIN, &tag1), 0);
	assert_non_null(reg);
	assert_int_equal(write(p[1], "x", 1), 1);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.fd_calls, 1);
	assert_ptr_equal(f.last_for, &tag1);
	assert_int_equal(f.last_events, POLLIN);
	assert_int_equal(f.last_revents, POLLIN);

	/* events == 0: registered, silent. */
	assert_int_equal(h->fd_modify(x, p[0], &reg, 0), 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.fd_calls, 1);
	assert_int_equal(xlev_count(x), 1);

	/* A second registration of the same fd, for POLLOUT on the write end
	 * and POLLIN again on the read end: each reported on its own. */
	assert_int_equal(h->fd_register(x, p[1], &reg2, POLLOUT, &tag2), 0);
	assert_int_equal(h->fd_modify(x, p[0], &reg, POLLIN), 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.fd_calls, 3);
	h->fd_deregister(x, p[1], reg2);
	h->fd_deregister(x, p[0], reg);
	assert_int_equal(xlev_count(x), 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.fd_calls, 3);

	/* A timeout in the past fires at once, and is freed by firing. */
	gettimeofday(&abs, NULL);
	abs.tv_sec -= 1;
	assert_int_equal(h->timeout_register(x, &treg, abs, &tag1), 0);
	/* One an hour away, made "now" by timeout_modify({0,0}). */
	gettimeofday(&abs, NULL);
	abs.tv_sec += 3600;
	assert_int_equal(h->timeout_register(x, &treg2, abs, &tag2), 0);
	assert_int_equal(xlev_count(x), 2);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.to_calls, 1);
	assert_ptr_equal(f.last_for, &tag1);
	assert_int_equal(xlev_count(x), 1);
	abs.tv_sec = abs.tv_usec = 0;
	assert_int_equal(h->timeout_modify(x, &treg2, abs), 0);
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(f.to_calls, 2);
	assert_ptr_equal(f.last_for, &tag2);
	assert_int_equal(xlev_count(x), 0);

	/* What libxl still holds at the end is freed (LeakSanitizer). */
	assert_int_equal(h->fd_register(x, p[0], &reg, POLLIN, &tag1), 0);
	gettimeofday(&abs, NULL);
	abs.tv_sec += 3600;
	assert_int_equal(h->timeout_register(x, &treg, abs, &tag2), 0);
	xlev_free(x);
	close(p[0]);
	close(p[1]);
	event_base_free(base);
}

/* ---- console ---- */

static void
test_console_tail(void **state)
{
	char path[512];
	json_t *s;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/guest-web1.log", tmpdir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	/* "é" is c3 a9; \xff is not UTF-8; ESC needs \u001b in JSON. */
	assert_int_equal(write(fd, "old line\nn\xc3\xa9w \xff\x1b[0m\n", 20), 20);
	close(fd);

	assert_non_null(s = vm_console_tail(path, 65536, 65400));
	assert_string_equal(json_string_value(s),
	    "old line\nn\xc3\xa9w ?\x1b[0m\n");
	json_decref(s);
	/* The window cuts "é" in two: its second byte is dropped. */
	assert_non_null(s = vm_console_tail(path, 9, 65400));
	assert_string_equal(json_string_value(s), "w ?\x1b[0m\n");
	json_decref(s);
	/* Escaped size bound: "\u001b[0m\n" costs 6+3+2 = 11 bytes. */
	assert_non_null(s = vm_console_tail(path, 65536, 11));
	assert_string_equal(json_string_value(s), "\x1b[0m\n");
	json_decref(s);
	errno = 0;
	snprintf(path, sizeof(path), "%s/guest-none.log", tmpdir);
	assert_null(vm_console_tail(path, 100, 65400));
	assert_int_equal(errno, ENOENT);
}

static int
setup(void **state)
{
	uint8_t h[crypto_hash_sha256_BYTES];

	(void)state;
	if (sodium_init() < 0)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_vm.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	crypto_hash_sha256(h, (const uint8_t *)body_good, strlen(body_good));
	sodium_bin2hex(sha_good, sizeof(sha_good), h, sizeof(h));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemas),
		cmocka_unit_test(test_create_check),
		cmocka_unit_test(test_no_xen),
		cmocka_unit_test(test_fetch_verify_cache),
		cmocka_unit_test(test_fetch_refused),
		cmocka_unit_test(test_fetch_large),
		cmocka_unit_test(test_disk_copy),
		cmocka_unit_test(test_dir_choose),
		cmocka_unit_test(test_osevent_hooks),
		cmocka_unit_test(test_console_tail),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
