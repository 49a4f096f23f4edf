/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * apkovl build benchmark: builds the overlays of BENCH_HOSTS distinct hosts
 * (own name, agent key, boot token, mesh.json of 4 networks x 10 VTEPs,
 * two mounts, two SSH keys), timing each apkovl_build() call, and prints
 * p50, p99 (wall clock and the thread's CPU time), overlays per second and
 * the size of one overlay.
 *
 * usage: apkovl-bench [-n HOSTS] [-o FILE]   (-o: write host 0's overlay)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "apkovl.h"

struct host {
	char name[16], key[65], token[69], mesh[4096], ssh[256];
};

static double
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile index into n sorted values. */
static size_t
rank(size_t n, unsigned pct)
{
	return (n * pct + 99) / 100 - 1;
}

static void
random_hex(char *out, size_t bytes)
{
	unsigned char b[64];

	randombytes_buf(b, bytes);
	sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

/* 4 networks x 10 VTEPs, the shape the agent's mesh.json has. */
static void
mesh_json(char *out, size_t len, unsigned host)
{
	size_t n = 0;

	n += (size_t)snprintf(out + n, len - n, "{\"version\":1,\"host\":\"h%04u\","
	    "\"local\":\"10.77.%u.%u\",\"networks\":[", host, host / 250,
	    host % 250 + 2);
	for (unsigned net = 0; net < 4; net++) {
		n += (size_t)snprintf(out + n, len - n, "%s{\"name\":\"net%u\","
		    "\"vni\":%u,\"mtu\":1450,\"vteps\":[", net ? "," : "", net,
		    10000 + net);
		for (unsigned v = 0; v < 10; v++)
			n += (size_t)snprintf(out + n, len - n, "%s{\"host\":"
			    "\"h%04u\",\"ip\":\"10.77.%u.%u\",\"mac\":"
			    "\"52:54:00:%02x:%02x:%02x\"}", v ? "," : "",
			    host + v + 1, (host + v + 1) / 250 % 250,
			    (host + v + 1) % 250 + 2, net, v, host & 0xff);
		n += (size_t)snprintf(out + n, len - n, "]}");
	}
	snprintf(out + n, len - n, "]}\n");
}

int
main(int argc, char **argv)
{
	static const struct apkovl_mount mounts[] = {
		{ "LABEL=hvstore", "/var/lib/hv/store", "ext4", "defaults,noatime" },
		{ "UUID=0a1b2c3d-aaaa-bbbb-cccc-0123456789ab", "/srv/images", "xfs",
		    "defaults" },
	};
	static const char *const world[] = { "lvm2", "e2fsprogs", "xfsprogs",
	    NULL };
	unsigned nhosts = 1000, warm = 50;
	const char *outfile = NULL;
	char hvd_key[65], err[256];
	struct host *h;
	double *t, *cpu, total = 0, t0, c0;
	size_t first_len = 0;
	int c;

	while ((c = getopt(argc, argv, "n:o:")) != -1) {
		if (c == 'n')
			nhosts = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'o')
			outfile = optarg;
		else
			return 2;
	}
	if (nhosts == 0 || sodium_init() < 0)
		return 2;
	h = calloc(nhosts, sizeof(*h));
	t = calloc(nhosts, sizeof(*t));
	cpu = calloc(nhosts, sizeof(*cpu));
	if (h == NULL || t == NULL || cpu == NULL)
		return 1;
	random_hex(hvd_key, 32);
	for (unsigned i = 0; i < nhosts; i++) {
		snprintf(h[i].name, sizeof(h[i].name), "h%04u", i);
		random_hex(h[i].key, 32);
		memcpy(h[i].token, "hvb_", 4);
		random_hex(h[i].token + 4, 32);
		mesh_json(h[i].mesh, sizeof(h[i].mesh), i);
		snprintf(h[i].ssh, sizeof(h[i].ssh), "ssh-ed25519 "
		    "AAAAC3NzaC1lZDI1NTE5AAAAI%043u admin@ops\nssh-ed25519 "
		    "AAAAC3NzaC1lZDI1NTE5AAAAI%043u backup@ops\n", i, i + 1);
	}
	for (unsigned pass = 0; pass < 2; pass++) {
		/* Pass 0 warms caches and the allocator on the first hosts. */
		unsigned n = pass ? nhosts : (warm < nhosts ? warm : nhosts);

		for (unsigned i = 0; i < n; i++) {
			struct apkovl_input in = {
				.hostname = h[i].name,
				.boot_if = "eth0",
				.hvd_url = "http://10.77.0.1:80",
				.hvd_agent = "10.77.0.1:8471",
				.hvd_key_hex = hvd_key,
				.agent_key_hex = h[i].key,
				.boot_token = h[i].token,
				.mesh_json = h[i].mesh,
				.ssh_keys = h[i].ssh,
				.mounts = mounts,
				.nmounts = 2,
				.world = world,
				.mtime = 0,
			};
			unsigned char *ovl = NULL;
			size_t len = 0;

			t0 = now_ms(CLOCK_MONOTONIC);
			c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
			if (apkovl_build(&in, &ovl, &len, err, sizeof(err)) < 0) {
				fprintf(stderr, "apkovl bench: %s: %s\n", h[i].name, err);
				return 1;
			}
			if (pass) {
				cpu[i] = now_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
				t[i] = now_ms(CLOCK_MONOTONIC) - t0;
				total += t[i];
			}
			if (pass && i == 0) {
				first_len = len;
				if (outfile != NULL) {
					FILE *f = fopen(outfile, "w");

					if (f == NULL || fwrite(ovl, 1, len, f) != len ||
					    fclose(f) != 0) {
						fprintf(stderr, "apkovl bench: %s: %s\n",
						    outfile, strerror(errno));
						return 1;
					}
				}
			}
			sodium_memzero(ovl, len);
			free(ovl);
		}
	}
	qsort(t, nhosts, sizeof(*t), cmp_double);
	qsort(cpu, nhosts, sizeof(*cpu), cmp_double);
	printf("apkovl bench: %u hosts, mesh.json %zu bytes, one overlay %zu "
	    "bytes\n", nhosts, strlen(h[0].mesh), first_len);
	printf("apkovl bench: p50 %.3f ms, p99 %.3f ms, %.0f overlays/s "
	    "(goal p99 < 5 ms)\n", t[rank(nhosts, 50)], t[rank(nhosts, 99)],
	    nhosts / (total / 1e3));
	/* CPU time tells the build's own cost from time spent preempted. */
	printf("apkovl bench: CPU time per build p50 %.3f ms, p99 %.3f ms\n",
	    cpu[rank(nhosts, 50)], cpu[rank(nhosts, 99)]);
	sodium_memzero(h, nhosts * sizeof(*h));
	free(h);
	free(t);
	free(cpu);
	return 0;
}
