/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's private header, grouped by the file that defines each symbol.
 *
 * The agent runs in dom0 of every Xen host and reports to hvd.  Everything
 * here is single-threaded and owned by the agent's one event loop.
 */
#ifndef HV_AGENT_H
#define HV_AGENT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* facts.c */
/*
 * Hardware facts for the agent's hello: cpu, memory, nics, disks, dmi and
 * kernel.  Best-effort: a missing or unreadable file becomes JSON null (or
 * an absent list entry), never a failure.  Returns a new reference, or NULL
 * with errno set (ENOMEM) when the object itself cannot be built.
 */
json_t *facts_collect(void);
/* The same, reading ROOT/proc and ROOT/sys instead of the real ones (tests). */
json_t *facts_collect_at(const char *root);

/* storage.c */
/*
 * Mounts the UUID= and LABEL= lines of FSTAB (formatting only on an
 * explicit x-hv-format=DEV; see storage.c).  Every outcome is logged; a
 * missing device or file is not an error.  The number of such lines, or
 * -errno when FSTAB exists but cannot be read.
 */
int agent_storage_mount(const char *fstab);
/*
 * The last pass's lines as the facts' "mounts": [{"source","path",
 * "device"|null,"fstype"|null,"mounted","error"?}]; "mounted" is read from
 * /proc/self/mountinfo now.  A new reference, or NULL when out of memory.
 */
json_t *agent_storage_json(void);

/* telemetry.c */
#define TELEMETRY_BUF_SIZE	(64 * 1024)	/* one read buffer for all */
#define TELEMETRY_RESCAN_MS	60000		/* hwmon and mounts re-walked */
#define TELEMETRY_SENSORS_MAX	128
#define TELEMETRY_MOUNTS_MAX	32

struct xen;
struct procfs_net_dev;
struct procfs_mounts;
struct telemetry_sensor;

/*
 * Embedded in the agent; telemetry_init() sets it up and
 * telemetry_dispose() releases what it holds.  It keeps the previous CPU and
 * NIC counters so each sample can report rates since the last one.
 */
struct telemetry {
	bool live;			/* set up; false in a zeroed struct */
	int rootfd, procfd, sysfd;	/* -1 when closed */
	int statfd, loadfd, memfd, netfd;	/* kept open for pread */
	char *buf;			/* TELEMETRY_BUF_SIZE, reused */
	struct xen *xen;		/* borrowed; NULL: "xen" is null */

	bool cpu_valid;			/* prev_busy, prev_total are set */
	uint64_t prev_busy, prev_total;	/* jiffies */
	bool net_valid;			/* net[!cur] was read at net_ms */
	int64_t net_ms;
	struct procfs_net_dev *net[2];	/* [cur] is the latest */
	unsigned cur;

	int64_t scanned_ms;		/* last hwmon and mounts walk */
	bool scanned;
	struct telemetry_sensor *sensors;	/* TELEMETRY_SENSORS_MAX */
	unsigned nsensors;
	struct procfs_mounts *mounts;	/* statvfs'ed each sample */

	unsigned failing;		/* sections whose failure was logged */
	bool warned_nics, warned_sensors, warned_mounts;	/* overflow */
};

/* Opens the real /proc and /sys.  0 or -errno; on error nothing is held. */
int telemetry_init(struct telemetry *t);
/* The same under ROOT (a directory holding proc/ and sys/; tests). */
int telemetry_init_at(struct telemetry *t, const char *root);
/*
 * NULL-safe, repeatable, and a no-op on a zeroed struct that never went
 * through telemetry_init() (its fds would read as 0, stdin).
 */
void telemetry_dispose(struct telemetry *t);
/* X is borrowed and must outlive its use here; NULL stops xen sampling. */
void telemetry_set_xen(struct telemetry *t, struct xen *x);
/*
 * One sample at monotonic NOW_MS: *out gets a new object
 *   {"cpu":{"percent","count"}, "load":[1,5,15], "memory":{"total_bytes",
 *    "available_bytes","used_bytes"}, "nics":[{"name","rx_bytes","tx_bytes",
 *    "rx_errors","tx_errors","rx_bps","tx_bps"}], "disks":[{"mount",
 *    "total_bytes","free_bytes"}], "temps":[{"sensor","label","celsius"}],
 *    "xen":{...}|null}
 * percent and *_bps (bits per second) are null on the first sample and
 * whenever a counter went backwards.  A section whose source cannot be read
 * is null (logged once until it recovers).  0, or -ENOMEM / -EINVAL.
 */
int telemetry_sample(struct telemetry *t, int64_t now_ms, json_t **out);

/* procfs.c */
/*
 * Strict pure parsers over kernel text (no NUL terminator needed).  Each
 * returns 0, or -EINVAL for malformed input, and then out->err names the
 * line and the rejected token ("line 3: expected a number for the rx
 * bytes, got 'x7'").  On error the rest of *out is unspecified.
 */
#define PROCFS_ERR_MAX		96
#define PROCFS_NETIF_MAX	256	/* a Xen host has one vif per VM NIC */
#define PROCFS_MOUNT_MAX	TELEMETRY_MOUNTS_MAX
#define PROCFS_MOUNT_DIR_MAX	256
#define PROCFS_MODEL_MAX	128

/* /proc/stat: the aggregate "cpu" line, in jiffies, and the cpuN count. */
struct procfs_stat {
	uint64_t user, nice, system, idle, iowait, irq, softirq, steal;
	unsigned ncpu;
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_stat(const char *buf, size_t len, struct procfs_stat *out);

/* /proc/loadavg: loads in hundredths (the kernel prints two decimals). */
struct procfs_loadavg {
	uint32_t centi[3];		/* 1, 5, 15 minutes */
	uint32_t running, total;	/* scheduling entities */
	uint32_t last_pid;
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_loadavg(const char *buf, size_t len,
    struct procfs_loadavg *out);

/* /proc/meminfo, in bytes.  Every field here is required. */
struct procfs_meminfo {
	uint64_t total, available, free, buffers, cached;
	uint64_t swap_total, swap_free;
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_meminfo(const char *buf, size_t len,
    struct procfs_meminfo *out);

/*
 * /proc/net/dev.  At most PROCFS_NETIF_MAX interfaces are kept, in file
 * order; further well-formed lines are counted in "skipped".
 */
struct procfs_netif {
	char name[IFNAMSIZ];
	uint64_t rx_bytes, rx_packets, rx_errs, rx_drop;
	uint64_t tx_bytes, tx_packets, tx_errs, tx_drop;
};
struct procfs_net_dev {
	unsigned n, skipped;
	struct procfs_netif ifs[PROCFS_NETIF_MAX];
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_net_dev(const char *buf, size_t len,
    struct procfs_net_dev *out);
/* The kernel's rule (dev_valid_name), narrowed to printable ASCII. */
bool procfs_ifname_valid(const char *s, size_t len);

/*
 * /proc/cpuinfo: "model name" of the first processor block only.  -ENOENT
 * (err set) when that block has none, as on arm64.
 */
struct procfs_cpuinfo {
	char model[PROCFS_MODEL_MAX];
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_cpuinfo(const char *buf, size_t len,
    struct procfs_cpuinfo *out);

/*
 * /proc/self/mounts, keeping only real filesystems whose statvfs cannot
 * hang: pseudo filesystems, tmpfs and network filesystems are left out,
 * except that "/" is always kept.  A later mount on the same directory
 * replaces the earlier one.  Entries beyond PROCFS_MOUNT_MAX or with a
 * directory longer than PROCFS_MOUNT_DIR_MAX - 1 are counted in "skipped".
 */
struct procfs_mount {
	char dir[PROCFS_MOUNT_DIR_MAX];	/* octal escapes decoded */
	char type[32];
};
struct procfs_mounts {
	unsigned n, skipped;
	struct procfs_mount m[PROCFS_MOUNT_MAX];
	char err[PROCFS_ERR_MAX];
};
int procfs_parse_mounts(const char *buf, size_t len, struct procfs_mounts *out);

/*
 * A one-value sysfs attribute.  Surrounding blanks and the newline are
 * trimmed; the value must be printable ASCII.  -ENODATA when it is empty,
 * -EOVERFLOW when it does not fit OUT, -EINVAL otherwise.
 */
int procfs_parse_attr(const char *buf, size_t len, char *out, size_t outlen);
/* A decimal attribute such as "1500\n" or "-1\n": 0 or -EINVAL / -ERANGE. */
int procfs_parse_attr_i64(const char *buf, size_t len, int64_t *out);
/*
 * SCSI VPD page 0x80 (unit serial number), binary: the serial, trimmed,
 * into OUT.  -ENODATA when blank, -EOVERFLOW when it does not fit OUT,
 * -EINVAL when the page is malformed.
 */
int procfs_parse_vpd80(const char *buf, size_t len, char *out, size_t outlen);

/*
 * Reads PATH under DIRFD (a relative path without ".." components) into BUF,
 * at most CAP bytes, with O_NOFOLLOW on the last component.  0 with *len
 * set, or -errno.  -EFBIG means the file is longer than CAP: BUF then holds
 * its first CAP bytes and *len == CAP, which callers that only need a
 * prefix may use.
 */
int procfs_read(int dirfd, const char *path, char *buf, size_t cap,
    size_t *len);
/*
 * The same over an fd kept open: reads from offset 0 with pread, which makes
 * procfs and sysfs generate fresh contents.
 */
int procfs_pread(int fd, char *buf, size_t cap, size_t *len);
/* Opens PATH under DIRFD for procfs_pread(): an fd, or -errno. */
int procfs_open(int dirfd, const char *path);

/* xen.c */
/*
 * libxl handle.  xen_open() returns -ENODEV, without touching libxl, when
 * this is not a Xen dom0 (/proc/xen/capabilities lacks "control_d").
 * libxl's own messages go to log_debug; failures are logged once here.
 */
int xen_open(struct xen **out);
/* The same, reading PROCFD/xen/capabilities (tests). */
int xen_open_at(int procfd, struct xen **out);
/*
 * {"total_memory_bytes","free_memory_bytes","nr_cpus","nr_domains",
 *  "xen_version"} as a new object in *out.  0, or -ENOMEM, or -EIO (or
 * the errno closest to libxl's ERROR_*) after logging the first failure.
 */
int xen_physinfo(struct xen *x, json_t **out);
/* The context, for agent/vm.c, which puts it on the loop. */
struct libxl__ctx;
struct libxl__ctx *xen_ctx(struct xen *x);
/* libxl's last error-level message since xen_clear_err(), or "". */
const char *xen_lasterr(const struct xen *x);
void xen_clear_err(struct xen *x);
/* NULL-safe. */
void xen_close(struct xen *x);

/* mesh.c */
/*
 * The host's side of the VXLAN mesh (lib/mesh.h): the state last received
 * (or read from mesh-file at start) is applied now and again every
 * interval, so a hand-deleted FDB entry comes back within one period.
 */
struct event_base;
struct agent_mesh;
/*
 * Reads PATH (a missing file means nothing to apply yet), applies it at
 * once, synchronously, and arms the reconcile timer.  NULL only when out
 * of memory; every other failure is logged and retried by the timer.
 */
struct agent_mesh *agent_mesh_new(struct event_base *base, const char *path,
    unsigned interval_s);
/* NULL-safe. */
void agent_mesh_free(struct agent_mesh *am);
/* The mesh.apply params check (error code "invalid"): 0 or -EINVAL. */
int agent_mesh_check(const json_t *params, char *err, size_t errlen);
/*
 * mesh.apply: applies PARAMS, keeps them as the state to reconcile and
 * writes them to the mesh file atomically.  Returns {"applied":true,
 * "stats":{...}}, or NULL with err set when the apply failed (the state
 * is still kept, and the timer retries it).
 */
json_t *agent_mesh_apply(struct agent_mesh *am, json_t *params, char *err,
    size_t errlen);

#endif
