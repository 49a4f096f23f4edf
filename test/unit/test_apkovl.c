/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * apkovl.c and ovl_parse.c: the overlay for an adopted and a discovery
 * host, read back with GNU tar (entry list, order, modes, owners, file
 * contents, agent.conf through the agent's own parser), byte-for-byte
 * determinism, rejected inputs; the /ovl path table; the fingerprint.
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

#include "agent_link.h"
#include "apkovl.h"

#define HVD_KEY	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define AGENT_KEY "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
#define TOKEN	"hvb_5555555555555555555555555555555555555555555555555555555555555555"
#define MESH	"{\"version\":1,\"networks\":[]}\n"
#define SSHKEY	"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA admin@x"

static const struct apkovl_mount test_mounts[] = {
	{ "UUID=0a1b2c3d-aaaa-bbbb-cccc-0123456789ab", "/var/lib/hv/store",
	    "ext4", "defaults,noatime" },
	{ "LABEL=scratch", "/srv/scratch", "xfs", "defaults" },
};
static const char *const test_world[] = { "lvm2", "xen", "bridge", NULL };

static struct apkovl_input
adopted(void)
{
	return (struct apkovl_input){
		.hostname = "h7",
		.boot_if = "eth0",
		.hvd_url = "http://10.77.0.1:80",
		.hvd_agent = "10.77.0.1:8471",
		.hvd_key_hex = HVD_KEY,
		.agent_key_hex = AGENT_KEY,
		.boot_token = TOKEN,
		.mesh_json = MESH,
		.ssh_keys = SSHKEY,
		.mounts = test_mounts,
		.nmounts = 2,
		.world = test_world,
		.mtime = 1700000000,
	};
}

static struct apkovl_input
discovery(void)
{
	return (struct apkovl_input){
		.discovery = true,
		.hostname = "discovered",
		.boot_if = "eth0",
		.hvd_url = "http://10.77.0.1:80",
		.hvd_agent = "10.77.0.1:8471",
		.hvd_key_hex = HVD_KEY,
	};
}

/* A temp dir holding ovl.tar.gz, and (after extract) its tree in x/. */
struct unpacked {
	char dir[64];
	char list[8192];	/* "perm owner name" lines from tar -tv */
};

static char *
run(const char *cmd, size_t *len)
{
	char *buf = calloc(1, 1 << 20);
	size_t n = 0, r;
	FILE *p;

	assert_non_null(buf);
	assert_non_null(p = popen(cmd, "r"));
	while ((r = fread(buf + n, 1, (1 << 20) - 1 - n, p)) > 0)
		n += r;
	assert_int_equal(pclose(p), 0);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void
unpack(const unsigned char *ovl, size_t len, struct unpacked *u)
{
	char path[128], cmd[256], *out, *line, *save = NULL;
	FILE *f;

	snprintf(u->dir, sizeof(u->dir), "/tmp/test_apkovl.XXXXXX");
	assert_non_null(mkdtemp(u->dir));
	snprintf(path, sizeof(path), "%s/ovl.tar.gz", u->dir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(ovl, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "tar -tvzf %s", path);
	out = run(cmd, NULL);
	/* Keep permissions, owner and name: drop size, date and time. */
	u->list[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		char perm[16], owner[40];
		int off = 0;

		assert_int_equal(sscanf(line, "%15s %39s %*s %*s %*s %n", perm,
		    owner, &off), 2);
		assert_true(off > 0);
		snprintf(u->list + strlen(u->list), sizeof(u->list) -
		    strlen(u->list), "%s %s %s\n", perm, owner, line + off);
	}
	free(out);
	snprintf(cmd, sizeof(cmd), "mkdir %s/x && tar -xzf %s -C %s/x", u->dir,
	    path, u->dir);
	assert_int_equal(system(cmd), 0);
}

static void
cleanup(struct unpacked *u)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", u->dir);
	assert_int_equal(system(cmd), 0);
}

/* Contents of x/<rel>, or NULL when absent. */
static char *
slurp(const struct unpacked *u, const char *rel)
{
	char path[256], *buf;
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/x/%s", u->dir, rel);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	assert_non_null(buf = calloc(1, 1 << 20));
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
assert_file(const struct unpacked *u, const char *rel, const char *want)
{
	char *got = slurp(u, rel);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static const char adopted_list[] =
    "drwxr-xr-x root/root etc/\n"
    "-rw-r--r-- root/root etc/.default_boot_services\n"
    "drwxr-xr-x root/root etc/apk/\n"
    "-rw-r--r-- root/root etc/apk/repositories\n"
    "-rw-r--r-- root/root etc/apk/world\n"
    "-rw-r--r-- root/root etc/fstab\n"
    "-rw-r--r-- root/root etc/hostname\n"
    "-rw-r--r-- root/root etc/hosts\n"
    "drwxr-xr-x root/root etc/hv/\n"
    "-rw------- root/root etc/hv/agent.conf\n"
    "-rw------- root/root etc/hv/agent.key\n"
    "-rw-r--r-- root/root etc/hv/mesh.json\n"
    "drwxr-xr-x root/root etc/network/\n"
    "-rw-r--r-- root/root etc/network/interfaces\n"
    "drwxr-xr-x root/root etc/runlevels/\n"
    "drwxr-xr-x root/root etc/runlevels/boot/\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/bootmisc -> /etc/init.d/bootmisc\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/hostname -> /etc/init.d/hostname\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/localmount -> /etc/init.d/localmount\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/modules -> /etc/init.d/modules\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/networking -> /etc/init.d/networking\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/sysctl -> /etc/init.d/sysctl\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/syslog -> /etc/init.d/syslog\n"
    "drwxr-xr-x root/root etc/runlevels/default/\n"
    "lrwxrwxrwx root/root etc/runlevels/default/hv-agent -> /etc/init.d/hv-agent\n"
    "lrwxrwxrwx root/root etc/runlevels/default/xenconsoled -> /etc/init.d/xenconsoled\n"
    "lrwxrwxrwx root/root etc/runlevels/default/xenstored -> /etc/init.d/xenstored\n"
    "drwxr-xr-x root/root etc/runlevels/shutdown/\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/killprocs -> /etc/init.d/killprocs\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/mount-ro -> /etc/init.d/mount-ro\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/savecache -> /etc/init.d/savecache\n"
    "drwxr-xr-x root/root etc/runlevels/sysinit/\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/devfs -> /etc/init.d/devfs\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/dmesg -> /etc/init.d/dmesg\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/hwdrivers -> /etc/init.d/hwdrivers\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/mdev -> /etc/init.d/mdev\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/modloop -> /etc/init.d/modloop\n"
    "drwx------ root/root root/\n"
    "drwx------ root/root root/.ssh/\n"
    "-rw------- root/root root/.ssh/authorized_keys\n"
    "drwxr-xr-x root/root srv/\n"
    "drwxr-xr-x root/root srv/scratch/\n"
    "drwxr-xr-x root/root var/\n"
    "drwxr-xr-x root/root var/lib/\n"
    "drwxr-xr-x root/root var/lib/hv/\n"
    "drwxr-xr-x root/root var/lib/hv/store/\n";

static void
test_adopted(void **state)
{
	struct apkovl_input in = adopted();
	unsigned char *ovl = NULL;
	struct agent_conf c;
	struct unpacked u;
	char err[256] = "", *conf, *all;
	size_t len = 0, n;

	(void)state;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	assert_non_null(ovl);
	/* "A few KiB" (DESIGN section 4). */
	if (len < 100 || len > 8192)
		fail_msg("overlay is %zu bytes", len);
	unpack(ovl, len, &u);
	assert_string_equal(u.list, adopted_list);

	assert_file(&u, "etc/hostname", "h7\n");
	assert_file(&u, "etc/hosts", "127.0.0.1\tlocalhost localhost.localdomain "
	    "h7\n::1\t\tlocalhost localhost.localdomain\n");
	assert_file(&u, "etc/network/interfaces", "auto lo\niface lo inet "
	    "loopback\n\nauto eth0\niface eth0 inet dhcp\n\thostname h7\n");
	assert_file(&u, "etc/apk/world", "alpine-base\nbridge\nhv-agent\nlvm2\n"
	    "xen\nxen-hypervisor\n");
	assert_file(&u, "etc/apk/repositories", "http://10.77.0.1:80/alpine/main\n"
	    "http://10.77.0.1:80/alpine/community\n");
	assert_file(&u, "etc/.default_boot_services", "");
	assert_file(&u, "etc/hv/agent.key", AGENT_KEY "\n");
	assert_file(&u, "etc/hv/mesh.json", MESH);
	assert_file(&u, "etc/fstab",
	    "UUID=0a1b2c3d-aaaa-bbbb-cccc-0123456789ab\t/var/lib/hv/store\text4\t"
	    "defaults,noatime\t0 0\nLABEL=scratch\t/srv/scratch\txfs\tdefaults\t"
	    "0 0\n");
	assert_file(&u, "root/.ssh/authorized_keys", SSHKEY "\n");

	/* Every entry carries the one fixed mtime (1700000000). */
	snprintf(err, sizeof(err), "TZ=UTC0 tar --full-time -tvzf %s/ovl.tar.gz"
	    " | grep -v ' 2023-11-14 22:13:20 ' | wc -l", u.dir);
	all = run(err, NULL);
	assert_string_equal(all, "0\n");
	free(all);

	/* The agent's own parser takes agent.conf as written. */
	assert_non_null(conf = slurp(&u, "etc/hv/agent.conf"));
	agent_conf_defaults(&c);
	assert_int_equal(agent_conf_parse(&c, conf, strlen(conf), "agent.conf",
	    err, sizeof(err)), 0);
	assert_string_equal(c.hvd_host, "10.77.0.1");
	assert_int_equal(c.hvd_port, 8471);
	assert_int_equal(c.hvd_key[0], 0x00);
	assert_int_equal(c.hvd_key[31], 0xff);
	assert_string_equal(c.host, "h7");
	assert_string_equal(c.boot_token, TOKEN);
	assert_string_equal(c.key_file, "/etc/hv/agent.key");
	free(conf);

	/* The secrets are where they belong and nowhere else. */
	snprintf(err, sizeof(err), "tar -xOzf %s/ovl.tar.gz", u.dir);
	all = run(err, &n);
	assert_non_null(strstr(all, AGENT_KEY));
	assert_null(strstr(strstr(all, AGENT_KEY) + 1, AGENT_KEY));
	assert_null(strstr(strstr(all, TOKEN) + 1, TOKEN));
	free(all);
	cleanup(&u);
	free(ovl);
}

static const char discovery_list[] =
    "drwxr-xr-x root/root etc/\n"
    "-rw-r--r-- root/root etc/.default_boot_services\n"
    "drwxr-xr-x root/root etc/apk/\n"
    "-rw-r--r-- root/root etc/apk/repositories\n"
    "-rw-r--r-- root/root etc/apk/world\n"
    "-rw-r--r-- root/root etc/hostname\n"
    "-rw-r--r-- root/root etc/hosts\n"
    "drwxr-xr-x root/root etc/hv/\n"
    "-rw------- root/root etc/hv/agent.conf\n"
    "drwxr-xr-x root/root etc/network/\n"
    "-rw-r--r-- root/root etc/network/interfaces\n"
    "drwxr-xr-x root/root etc/runlevels/\n"
    "drwxr-xr-x root/root etc/runlevels/boot/\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/bootmisc -> /etc/init.d/bootmisc\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/hostname -> /etc/init.d/hostname\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/modules -> /etc/init.d/modules\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/networking -> /etc/init.d/networking\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/sysctl -> /etc/init.d/sysctl\n"
    "lrwxrwxrwx root/root etc/runlevels/boot/syslog -> /etc/init.d/syslog\n"
    "drwxr-xr-x root/root etc/runlevels/default/\n"
    "lrwxrwxrwx root/root etc/runlevels/default/hv-agent -> /etc/init.d/hv-agent\n"
    "lrwxrwxrwx root/root etc/runlevels/default/xenconsoled -> /etc/init.d/xenconsoled\n"
    "lrwxrwxrwx root/root etc/runlevels/default/xenstored -> /etc/init.d/xenstored\n"
    "drwxr-xr-x root/root etc/runlevels/shutdown/\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/killprocs -> /etc/init.d/killprocs\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/mount-ro -> /etc/init.d/mount-ro\n"
    "lrwxrwxrwx root/root etc/runlevels/shutdown/savecache -> /etc/init.d/savecache\n"
    "drwxr-xr-x root/root etc/runlevels/sysinit/\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/devfs -> /etc/init.d/devfs\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/dmesg -> /etc/init.d/dmesg\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/hwdrivers -> /etc/init.d/hwdrivers\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/mdev -> /etc/init.d/mdev\n"
    "lrwxrwxrwx root/root etc/runlevels/sysinit/modloop -> /etc/init.d/modloop\n";

static void
test_discovery(void **state)
{
	struct apkovl_input in = discovery();
	unsigned char *ovl = NULL;
	struct agent_conf c;
	struct unpacked u;
	char err[256] = "", *conf, *url, *all;
	size_t len = 0;

	(void)state;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	unpack(ovl, len, &u);
	assert_string_equal(u.list, discovery_list);
	assert_null(slurp(&u, "etc/hv/agent.key"));
	assert_file(&u, "etc/apk/world", "alpine-base\nhv-agent\nxen\n"
	    "xen-hypervisor\n");
	assert_file(&u, "etc/hostname", "discovered\n");

	assert_non_null(conf = slurp(&u, "etc/hv/agent.conf"));
	assert_non_null(strstr(conf, "# discovery overlay: no credentials\n"));
	assert_null(strstr(conf, "boot-token"));
	assert_null(strstr(conf, "key-file"));
	/* Until the agent knows discovery-url, parse the rest of the file. */
	assert_non_null(url = strstr(conf, "discovery-url "
	    "http://10.77.0.1:80/boot/discover\n"));
	memmove(url, strchr(url, '\n') + 1, strlen(strchr(url, '\n') + 1) + 1);
	agent_conf_defaults(&c);
	assert_int_equal(agent_conf_parse(&c, conf, strlen(conf), "agent.conf",
	    err, sizeof(err)), 0);
	assert_string_equal(c.host, "discovered");
	assert_string_equal(c.boot_token, "");
	free(conf);

	/* No private material anywhere in the archive. */
	snprintf(err, sizeof(err), "tar -xOzf %s/ovl.tar.gz", u.dir);
	all = run(err, NULL);
	assert_null(strstr(all, "hvb_"));
	assert_null(strstr(all, "agent.key"));
	assert_null(strstr(all, "PRIVATE"));
	free(all);
	cleanup(&u);
	free(ovl);

	/* A discovery overlay refuses credentials rather than carry them. */
	in.agent_key_hex = AGENT_KEY;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), -EINVAL);
	assert_null(ovl);
	in.agent_key_hex = NULL;
	in.boot_token = TOKEN;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), -EINVAL);
}

static void
test_deterministic(void **state)
{
	struct apkovl_input in = adopted();
	unsigned char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	char err[256];

	(void)state;
	assert_int_equal(apkovl_build(&in, &a, &alen, err, sizeof(err)), 0);
	/* A second later: a gzip header timestamp would differ. */
	sleep(1);
	assert_int_equal(apkovl_build(&in, &b, &blen, err, sizeof(err)), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	/* gzip magic, deflate, no FNAME, MTIME zero. */
	assert_int_equal(a[0], 0x1f);
	assert_int_equal(a[1], 0x8b);
	assert_int_equal(a[2], 8);
	assert_int_equal(a[3] & 0x08, 0);
	assert_int_equal(a[4] | a[5] | a[6] | a[7], 0);
	free(b);

	/* Another token gives other bytes. */
	in.boot_token = "hvb_6555555555555555555555555555555555555555555555555555555555555555";
	assert_int_equal(apkovl_build(&in, &b, &blen, err, sizeof(err)), 0);
	assert_true(alen != blen || memcmp(a, b, alen) != 0);
	free(a);
	free(b);
}

struct bad_case {
	const char *what;
	void (*set)(struct apkovl_input *, struct apkovl_mount *);
	const char *err;	/* substring of the message */
};

#define SET(name, ...) \
	static void name(struct apkovl_input *in, struct apkovl_mount *m) \
	{ (void)in; (void)m; __VA_ARGS__; }

SET(host_upper, in->hostname = "H7")
SET(host_digit, in->hostname = "7h")
SET(host_empty, in->hostname = "")
SET(host_nl, in->hostname = "h7\nboot-token x")
SET(host_long, in->hostname = "a123456789012345678901234567890123456789012345678901234567890123")
SET(if_nl, in->boot_if = "eth0\nauto eth1")
SET(if_long, in->boot_if = "eth0123456789012")
SET(if_dotdot, in->boot_if = "..")
SET(url_ftp, in->hvd_url = "ftp://10.77.0.1")
SET(url_slash, in->hvd_url = "http://10.77.0.1/")
SET(url_space, in->hvd_url = "http://10.77.0.1 x")
SET(url_nl, in->hvd_url = "http://10.77.0.1\nhttp://evil")
SET(agent_noport, in->hvd_agent = "10.77.0.1")
SET(agent_name, in->hvd_agent = "hvd.example:8471")
SET(agent_port0, in->hvd_agent = "10.77.0.1:0")
SET(hvdkey_short, in->hvd_key_hex = &HVD_KEY[1])
SET(hvdkey_upper, in->hvd_key_hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff")
SET(key_null, in->agent_key_hex = NULL)
SET(key_nl, in->agent_key_hex = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0\n")
SET(token_null, in->boot_token = NULL)
SET(token_prefix, in->boot_token = "hvt_5555555555555555555555555555555555555555555555555555555555555555")
SET(token_nl, in->boot_token = "hvb_555555555555555555555555555555555555555555555555555555555555555\n")
SET(ssh_cr, in->ssh_keys = "ssh-ed25519 AAAA x\r\n")
SET(ssh_ctl, in->ssh_keys = "ssh-ed25519 AAAA \x01x\n")
SET(world_space, { static const char *const w[] = { "a b", NULL }; in->world = w; })
SET(world_dash, { static const char *const w[] = { "-x", NULL }; in->world = w; })
SET(world_nl, { static const char *const w[] = { "x\ny", NULL }; in->world = w; })
SET(mtime_neg, in->mtime = -1)
#define PEM "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n"
SET(apkkey_name, { static const struct apkovl_key k[] = { { "../x.rsa.pub", PEM } }; in->apk_keys = k; in->napk_keys = 1; })
SET(apkkey_dot, { static const struct apkovl_key k[] = { { ".x.rsa.pub", PEM } }; in->apk_keys = k; in->napk_keys = 1; })
SET(apkkey_ext, { static const struct apkovl_key k[] = { { "site.pem", PEM } }; in->apk_keys = k; in->napk_keys = 1; })
SET(apkkey_pem, { static const struct apkovl_key k[] = { { "a.rsa.pub", "ssh-rsa AAAA\n" } }; in->apk_keys = k; in->napk_keys = 1; })
SET(apkkey_ctl, { static const struct apkovl_key k[] = { { "a.rsa.pub", PEM "\x1b[2J" } }; in->apk_keys = k; in->napk_keys = 1; })
SET(apkkey_twice, { static const struct apkovl_key k[] = { { "a.rsa.pub", PEM }, { "a.rsa.pub", PEM } }; in->apk_keys = k; in->napk_keys = 2; })
SET(apkkey_many, { in->napk_keys = APKOVL_KEYS_MAX + 1; })
SET(mounts_null, in->mounts = NULL)
SET(mount_etc, snprintf(m->path, sizeof(m->path), "/etc/x"))
SET(mount_root, snprintf(m->path, sizeof(m->path), "/root"))
SET(mount_varrun, snprintf(m->path, sizeof(m->path), "/var/run/x"))
SET(mount_dotdot, snprintf(m->path, sizeof(m->path), "/srv/../etc"))
SET(mount_double, snprintf(m->path, sizeof(m->path), "/srv//x"))
SET(mount_rel, snprintf(m->path, sizeof(m->path), "srv/x"))
SET(mount_trail, snprintf(m->path, sizeof(m->path), "/srv/x/"))
SET(mount_slash, snprintf(m->path, sizeof(m->path), "/"))
SET(mount_space, snprintf(m->path, sizeof(m->path), "/srv/a b"))
SET(mount_dup, snprintf(m->path, sizeof(m->path), "/var/lib/hv/store"))
SET(mount_dev, snprintf(m->source, sizeof(m->source), "/dev/sda1"))
SET(mount_label, snprintf(m->source, sizeof(m->source), "LABEL=a b"))
SET(mount_uuid, snprintf(m->source, sizeof(m->source), "UUID=xyz"))
SET(mount_fstype, snprintf(m->fstype, sizeof(m->fstype), "ext4 x"))
SET(mount_opts, snprintf(m->options, sizeof(m->options), "defaults\n/x"))
SET(mount_unterm, memset(m->options, 'a', sizeof(m->options)))

static const struct bad_case bad_cases[] = {
	{ "host upper", host_upper, "hostname" },
	{ "host digit", host_digit, "hostname" },
	{ "host empty", host_empty, "hostname" },
	{ "host newline", host_nl, "hostname" },
	{ "host long", host_long, "hostname" },
	{ "if newline", if_nl, "boot_if" },
	{ "if long", if_long, "boot_if" },
	{ "if ..", if_dotdot, "boot_if" },
	{ "url ftp", url_ftp, "hvd_url" },
	{ "url slash", url_slash, "hvd_url" },
	{ "url space", url_space, "hvd_url" },
	{ "url newline", url_nl, "hvd_url" },
	{ "agent no port", agent_noport, "hvd_agent" },
	{ "agent name", agent_name, "hvd_agent" },
	{ "agent port 0", agent_port0, "hvd_agent" },
	{ "hvd key short", hvdkey_short, "hvd_key_hex" },
	{ "hvd key upper", hvdkey_upper, "hvd_key_hex" },
	{ "agent key missing", key_null, "agent_key_hex" },
	{ "agent key newline", key_nl, "agent_key_hex" },
	{ "token missing", token_null, "boot_token" },
	{ "token prefix", token_prefix, "boot_token" },
	{ "token newline", token_nl, "boot_token" },
	{ "ssh CR", ssh_cr, "ssh_keys" },
	{ "ssh control", ssh_ctl, "ssh_keys" },
	{ "world space", world_space, "world package 0" },
	{ "world dash", world_dash, "world package 0" },
	{ "world newline", world_nl, "world package 0" },
	{ "mtime", mtime_neg, "mtime" },
	{ "apk key ../", apkkey_name, "apk key 0: its name" },
	{ "apk key dotfile", apkkey_dot, "apk key 0: its name" },
	{ "apk key .pem", apkkey_ext, "apk key 0: its name" },
	{ "apk key not PEM", apkkey_pem, "apk key 0: not a PEM public key" },
	{ "apk key escape", apkkey_ctl, "apk key 0: not a PEM public key" },
	{ "apk key twice", apkkey_twice, "apk key a.rsa.pub twice" },
	{ "apk keys too many", apkkey_many, "at most 8 apk keys" },
	{ "mounts NULL", mounts_null, "mounts" },
	{ "mount /etc", mount_etc, "mount 1: path" },
	{ "mount /root", mount_root, "mount 1: path" },
	{ "mount /var/run", mount_varrun, "mount 1: path" },
	{ "mount ..", mount_dotdot, "mount 1: path" },
	{ "mount //", mount_double, "mount 1: path" },
	{ "mount relative", mount_rel, "mount 1: path" },
	{ "mount trailing /", mount_trail, "mount 1: path" },
	{ "mount /", mount_slash, "mount 1: path" },
	{ "mount space", mount_space, "mount 1: path" },
	{ "mount dup", mount_dup, "share a mount point" },
	{ "mount /dev", mount_dev, "mount 1: source" },
	{ "mount label", mount_label, "mount 1: source" },
	{ "mount uuid", mount_uuid, "mount 1: source" },
	{ "mount fstype", mount_fstype, "mount 1: fstype" },
	{ "mount options", mount_opts, "mount 1: options" },
	{ "mount unterminated", mount_unterm, "NUL-terminated" },
};

static void
test_bad_inputs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(*bad_cases); i++) {
		struct apkovl_mount m[2] = { test_mounts[0], test_mounts[1] };
		struct apkovl_input in = adopted();
		unsigned char *ovl = (unsigned char *)"x";
		size_t len = 1;
		char err[256] = "";

		in.mounts = m;
		bad_cases[i].set(&in, &m[1]);
		if (apkovl_build(&in, &ovl, &len, err, sizeof(err)) != -EINVAL ||
		    strstr(err, bad_cases[i].err) == NULL)
			fail_msg("%s: err '%s'", bad_cases[i].what, err);
		assert_null(ovl);
		assert_int_equal(len, 0);
		/* Errors never carry a secret. */
		assert_null(strstr(err, AGENT_KEY));
		assert_null(strstr(err, "5555555555555555"));
	}
}

static void
test_limits(void **state)
{
	struct apkovl_mount many[APKOVL_MOUNTS_MAX + 1];
	struct apkovl_input in = adopted();
	unsigned char *ovl = NULL;
	size_t len = 0;
	char err[256], *big;

	(void)state;
	assert_non_null(big = malloc(APKOVL_TEXT_MAX + 2));
	memset(big, '{', APKOVL_TEXT_MAX + 1);
	big[APKOVL_TEXT_MAX + 1] = '\0';
	in.mesh_json = big;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "mesh_json"));
	/* Exactly the limit is fine. */
	big[APKOVL_TEXT_MAX] = '\0';
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	free(ovl);
	free(big);

	/* An empty mesh.json is written, NULL leaves it out. */
	in = adopted();
	for (size_t i = 0; i <= APKOVL_MOUNTS_MAX; i++) {
		many[i] = test_mounts[0];
		snprintf(many[i].path, sizeof(many[i].path), "/srv/d%zu", i);
	}
	in.mounts = many;
	in.nmounts = APKOVL_MOUNTS_MAX + 1;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), -EINVAL);
	in.nmounts = APKOVL_MOUNTS_MAX;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	free(ovl);
}

static void
test_optional_files(void **state)
{
	struct apkovl_input in = adopted();
	unsigned char *ovl = NULL;
	struct unpacked u;
	size_t len = 0;
	char err[256];

	(void)state;
	in.mesh_json = "";
	in.ssh_keys = "";
	in.nmounts = 0;
	in.world = NULL;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	unpack(ovl, len, &u);
	assert_file(&u, "etc/hv/mesh.json", "");
	assert_null(strstr(u.list, " root/\n"));
	assert_null(strstr(u.list, "authorized_keys"));
	assert_null(strstr(u.list, "etc/fstab"));
	assert_null(strstr(u.list, "localmount"));
	assert_file(&u, "etc/apk/world", "alpine-base\nhv-agent\nxen\n"
	    "xen-hypervisor\n");
	cleanup(&u);
	free(ovl);

	in.mesh_json = NULL;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	unpack(ovl, len, &u);
	assert_null(strstr(u.list, "mesh.json"));
	/* No site keys: no keys directory, only Alpine's repositories. */
	assert_null(strstr(u.list, "etc/apk/keys"));
	assert_file(&u, "etc/apk/repositories", "http://10.77.0.1:80/alpine/main\n"
	    "http://10.77.0.1:80/alpine/community\n");
	cleanup(&u);
	free(ovl);
}

/* The site's repository keys: each in etc/apk/keys, 0644, as given, and
 * the site's repository named after Alpine's. */
static void
test_apk_keys(void **state)
{
	static const struct apkovl_key keys[] = {
		{ "dev@site-5f3c8a2b.rsa.pub", PEM },
		{ "ops@site-00aa11bb.rsa.pub",
		    "-----BEGIN PUBLIC KEY-----\nMIIC\n-----END PUBLIC KEY-----\n" },
	};
	struct apkovl_input in = adopted();
	unsigned char *ovl = NULL;
	struct unpacked u;
	size_t len = 0;
	char err[256];

	(void)state;
	in.apk_keys = keys;
	in.napk_keys = 2;
	assert_int_equal(apkovl_build(&in, &ovl, &len, err, sizeof(err)), 0);
	unpack(ovl, len, &u);
	assert_non_null(strstr(u.list, "drwxr-xr-x root/root etc/apk/keys/\n"));
	assert_non_null(strstr(u.list,
	    "-rw-r--r-- root/root etc/apk/keys/dev@site-5f3c8a2b.rsa.pub\n"));
	assert_file(&u, "etc/apk/keys/dev@site-5f3c8a2b.rsa.pub", PEM);
	assert_file(&u, "etc/apk/keys/ops@site-00aa11bb.rsa.pub",
	    "-----BEGIN PUBLIC KEY-----\nMIIC\n-----END PUBLIC KEY-----\n");
	assert_file(&u, "etc/apk/repositories", "http://10.77.0.1:80/alpine/main\n"
	    "http://10.77.0.1:80/alpine/community\n"
	    "http://10.77.0.1:80/alpine/hypervisor\n");
	cleanup(&u);
	free(ovl);
}

struct path_case {
	const char *path;
	const char *uuid, *mac;	/* NULL: rejected */
	const char *err;	/* substring, when rejected */
};

static const struct path_case path_cases[] = {
	{ "/ovl/4c4c4544-0042-3510-8052-b4c04f4e5831/52:54:00:12:34:56.apkovl.tar.gz",
	    "4c4c4544-0042-3510-8052-b4c04f4e5831", "52:54:00:12:34:56", NULL },
	{ "/ovl/4C4C4544-0042-3510-8052-B4C04F4E5831/52-54-00-AB-CD-EF.apkovl.tar.gz",
	    "4c4c4544-0042-3510-8052-b4c04f4e5831", "52:54:00:ab:cd:ef", NULL },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz", "", "52:54:00:12:34:56", NULL },
	{ "/ovl//02-00-00-00-00-01.apkovl.tar.gz", "", "02:00:00:00:00:01", NULL },
	{ "/ovl/../52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "uuid" },
	{ "/ovl/%2e%2e/52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "'%'" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz?x=1", NULL, NULL, "'?'" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz#x", NULL, NULL, "'#'" },
	{ "/ovl//52:54:00:12:34:56", NULL, NULL, ".apkovl.tar.gz" },
	{ "/ovl//52:54:00:12:34:56.tar.gz", NULL, NULL, ".apkovl.tar.gz" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar", NULL, NULL, ".apkovl.tar.gz" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz/", NULL, NULL, "extra '/'" },
	{ "/ovl///52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "extra '/'" },
	{ "//ovl//52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "/ovl/" },
	{ "/ovl/52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "/ovl/<uuid>" },
	{ "/OVL//52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "/ovl/" },
	{ "/ovl//52:54:00:12:34:56.APKOVL.TAR.GZ", NULL, NULL, ".apkovl.tar.gz" },
	{ "/ovl/4c4c4544-0042-3510-8052-b4c04f4e583/52:54:00:12:34:56.apkovl.tar.gz",
	    NULL, NULL, "uuid" },
	{ "/ovl/4c4c4544-0042-3510-8052-b4c04f4e5831a/52:54:00:12:34:56.apkovl.tar.gz",
	    NULL, NULL, "uuid" },
	{ "/ovl/4c4c4544x0042-3510-8052-b4c04f4e5831/52:54:00:12:34:56.apkovl.tar.gz",
	    NULL, NULL, "uuid" },
	{ "/ovl/4c4c4544-0042-3510-8052-b4c04f4e583g/52:54:00:12:34:56.apkovl.tar.gz",
	    NULL, NULL, "uuid" },
	{ "/ovl//52:54:00:12:34:5g.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//52:54:00-12:34:56.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//5254.0012.3456.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//525400123456.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//52:54:00:12:34:567.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//00:00:00:00:00:00.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//ff:ff:ff:ff:ff:ff.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//01:00:5e:00:00:01.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl//{MAC}.apkovl.tar.gz", NULL, NULL, "mac" },
	{ "/ovl/{UUID}/52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "uuid" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz\n", NULL, NULL,
	    ".apkovl.tar.gz" },
	{ "/ovl/ /52:54:00:12:34:56.apkovl.tar.gz", NULL, NULL, "uuid" },
	{ "/ovl//52:54:00:12:34:56.apkovl.tar.gz.apkovl.tar.gz", NULL, NULL,
	    "mac" },
	{ "/ovl/4c4c4544-0042-3510-8052-b4c04f4e5831/52:54:00:12:34:56.apkovl.tar.gz"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL,
	    NULL, "too long" },
	{ "", NULL, NULL, "/ovl/" },
	{ "/ovl/", NULL, NULL, "/ovl/<uuid>" },
	{ "\\ovl\\x", NULL, NULL, "'\\'" },
};

static void
test_path_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(*path_cases); i++) {
		const struct path_case *pc = &path_cases[i];
		char uuid[37], mac[18], err[256] = "";
		int r = ovl_path_parse(pc->path, uuid, mac, err, sizeof(err));

		if (pc->uuid != NULL) {
			if (r != 0)
				fail_msg("'%s': %s", pc->path, err);
			assert_string_equal(uuid, pc->uuid);
			assert_string_equal(mac, pc->mac);
		} else {
			if (r != -EINVAL || strstr(err, pc->err) == NULL)
				fail_msg("'%s': r %d err '%s'", pc->path, r, err);
			assert_string_equal(uuid, "");
			assert_string_equal(mac, "");
		}
	}
}

static void
test_fingerprint(void **state)
{
	char a[HOST_FP_HEX], b[HOST_FP_HEX];

	(void)state;
	/* BLAKE2b-256("hv-fp-v1\n" uuid "\n" mac), computed independently. */
	host_fingerprint("4c4c4544-0042-3510-8052-b4c04f4e5831",
	    "52:54:00:12:34:56", a);
	assert_string_equal(a, "5fd08d3ce343398c757f68fe900ce8bd"
	    "add74927ab2af5d4ae97451f32920cfa");
	host_fingerprint("4C4C4544-0042-3510-8052-B4C04F4E5831",
	    "52-54-00-12-34-56", b);
	assert_string_equal(a, b);
	host_fingerprint("", "52:54:00:12:34:56", a);
	assert_string_equal(a, "24146ab0492458102c9d8c7c5b3f9144"
	    "6ed0c5f956eab95299d4d91e23eb2f2a");
	/* The separator keeps uuid and mac apart. */
	host_fingerprint("", "52:54:00:12:34:57", b);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adopted),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_optional_files),
		cmocka_unit_test(test_apk_keys),
		cmocka_unit_test(test_path_parse),
		cmocka_unit_test(test_fingerprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
