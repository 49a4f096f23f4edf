/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's host readers: the /proc and /sys parsers over real samples
 * copied from a Debian 12 VM (each must parse to the exact numbers in it)
 * and over malformed variants (each must be refused with the exact message
 * an operator would read); procfs_read()'s refusals; then facts, telemetry
 * and xen against this machine's real /proc and /sys, cross-checked with
 * independent sources (sysconf, sysinfo, ioctl, uname), and against fake
 * trees where the numbers are known in advance.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "log.h"

/* Real samples: /proc/stat, meminfo, net/dev and cpuinfo of the VM these
 * tests were written on; loadavg from the same VM under some load. */
static const char stat_sample[] =
    "cpu  18836 0 33752 264481 851 0 7514 34 0 0\n"
    "cpu0 8217 0 16351 134328 100 0 3739 17 0 0\n"
    "cpu1 10619 0 17401 130152 751 0 3774 16 0 0\n"
    "intr 2096377 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 15 0 0 "
    "0 0 326 113 0 39 1 95341 0 325 272 0 1994 4479 1 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
    " 0 0 0 0 0 0 0 0\n"
    "ctxt 4150390\n"
    "btime 1795314971\n"
    "processes 32853\n"
    "procs_running 2\n"
    "procs_blocked 0\n"
    "softirq 48838675 0 82530 4 47427246 95341 0 3 107926 1033835 91790\n";

static const char meminfo_sample[] =
    "MemTotal:       24684084 kB\n"
    "MemFree:        24279908 kB\n"
    "MemAvailable:   24358236 kB\n"
    "Buffers:             400 kB\n"
    "Cached:           262448 kB\n"
    "SwapCached:            0 kB\n"
    "Active:           130268 kB\n"
    "Inactive:         135376 kB\n"
    "Active(anon):       1504 kB\n"
    "Inactive(anon):    10192 kB\n"
    "Active(file):     128764 kB\n"
    "Inactive(file):   125184 kB\n"
    "Unevictable:       11556 kB\n"
    "Mlocked:           10636 kB\n"
    "SwapTotal:             0 kB\n"
    "SwapFree:              0 kB\n"
    "Zswap:                 0 kB\n"
    "Zswapped:              0 kB\n"
    "Dirty:               100 kB\n"
    "Writeback:             0 kB\n"
    "AnonPages:         14388 kB\n"
    "Mapped:            15844 kB\n"
    "Shmem:              8872 kB\n"
    "KReclaimable:      59888 kB\n"
    "Slab:              82528 kB\n"
    "SReclaimable:      59888 kB\n"
    "SUnreclaim:        22640 kB\n"
    "KernelStack:        1284 kB\n"
    "PageTables:         1140 kB\n"
    "SecPageTables:         0 kB\n"
    "NFS_Unstable:          0 kB\n"
    "Bounce:                0 kB\n"
    "WritebackTmp:          0 kB\n"
    "CommitLimit:    12342040 kB\n"
    "Committed_AS:      58696 kB\n"
    "VmallocTotal:   34359738367 kB\n"
    "VmallocUsed:       14092 kB\n"
    "VmallocChunk:          0 kB\n"
    "Percpu:              688 kB\n"
    "AnonHugePages:         0 kB\n"
    "ShmemHugePages:        0 kB\n"
    "ShmemPmdMapped:        0 kB\n"
    "FileHugePages:         0 kB\n"
    "FilePmdMapped:         0 kB\n"
    "Balloon:               0 kB\n"
    "HugePages_Total:       0\n"
    "HugePages_Free:        0\n"
    "HugePages_Rsvd:        0\n"
    "HugePages_Surp:        0\n"
    "Hugepagesize:       2048 kB\n"
    "Hugetlb:               0 kB\n"
    "DirectMap4k:       24576 kB\n"
    "DirectMap2M:     2072576 kB\n"
    "DirectMap1G:    25165824 kB\n";

static const char net_dev_sample[] =
    "Inter-|   Receive                                                |  Tran"
    "smit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes "
    "   packets errs drop fifo colls carrier compressed\n"
    "    lo: 1398356465949 49540093    0    0    0     0          0         0"
    " 1398356465949 49540093    0    0    0     0       0          0\n"
    "  ifb0:       0       0    0    0    0     0          0         0       "
    " 0       0    0    0    0     0       0          0\n"
    "  ifb1:       0       0    0    0    0     0          0         0       "
    " 0       0    0    0    0     0       0          0\n"
    "  eth0: 21433646     619    0    0    0     0          0         0    29"
    "851     330    0    0    0     0       0          0\n";

static const char loadavg_sample[] =
    "1.17 0.86 0.37 1/84 21224\n";

static const char cpuinfo_sample[] =
    "processor\t: 0\n"
    "vendor_id\t: GenuineIntel\n"
    "cpu family\t: 6\n"
    "model\t\t: 167\n"
    "model name\t: Intel(R) Xeon(R) Processor\n"
    "stepping\t: 1\n"
    "microcode\t: 0x1\n"
    "cpu MHz\t\t: 2599.998\n"
    "cache size\t: 491520 KB\n"
    "physical id\t: 0\n"
    "siblings\t: 2\n"
    "core id\t\t: 0\n"
    "cpu cores\t: 2\n"
    "apicid\t\t: 0\n"
    "initial apicid\t: 0\n"
    "fpu\t\t: yes\n"
    "fpu_exception\t: yes\n"
    "cpuid level\t: 36\n"
    "wp\t\t: yes\n"
    "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov"
    " pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm "
    "constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pn"
    "i pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_de"
    "adline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefe"
    "tch cpuid_fault fsgsbase tsc_adjust bmi1 hle avx2 smep bmi2 erms invpcid"
    " rtm avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512c"
    "d sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx_vnni avx51"
    "2_bf16 arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnn"
    "i avx512_bitalg avx512_vpopcntdq rdpid cldemote movdiri movdir64b fsrm s"
    "erialize tsxldtrk amx_bf16 avx512_fp16 amx_tile amx_int8 arch_capabiliti"
    "es\n"
    "bugs\t\t: spectre_v1 spectre_v2 spec_store_bypass swapgs retbleed bhi sp"
    "ectre_v2_user its its_native_only\n"
    "bogomips\t: 5199.99\n"
    "clflush size\t: 64\n"
    "cache_alignment\t: 64\n"
    "address sizes\t: 48 bits physical, 57 bits virtual\n"
    "power management:\n"
    "\n"
    "processor\t: 1\n"
    "vendor_id\t: GenuineIntel\n";

/* A typical RAM-booted Debian live host, plus a NAS and a FUSE mount. */
static const char mounts_sample[] =
    "rootfs / rootfs rw 0 0\n"
    "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
    "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
    "devtmpfs /dev devtmpfs rw,nosuid,size=12334460k,mode=755 0 0\n"
    "tmpfs /run tmpfs rw,nosuid,nodev,size=4936820k,mode=755 0 0\n"
    "overlay / overlay rw,relatime,lowerdir=/run/live/rootfs/filesystem."
    "squashfs/,upperdir=/run/live/overlay/rw 0 0\n"
    "/dev/loop0 /run/live/rootfs/filesystem.squashfs squashfs ro 0 0\n"
    "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec 0 0\n"
    "xenfs /proc/xen xenfs rw,relatime 0 0\n"
    "/dev/sda1 /var/lib/hv\\040data ext4 rw,relatime 0 0\n"
    "/dev/sdb1 /srv xfs rw,relatime 0 0\n"
    "nas:/export /mnt/nas nfs4 rw,relatime,vers=4.2 0 0\n"
    "sshfs#x /mnt/s fuse.sshfs rw 0 0\n"
    "/dev/sdc1 /srv xfs rw,relatime 0 0\n";

#define NET_DEV_HEAD \
    "Inter-|   Receive                                                |  " \
    "Transmit\n" \
    " face |bytes    packets errs drop fifo frame compressed multicast|" \
    "bytes    packets errs drop fifo colls carrier compressed\n"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the parsers over real samples --- */

static void
test_parse_stat_sample(void **state)
{
	struct procfs_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(stat_sample, strlen(stat_sample),
	    &st), 0);
	assert_int_equal(st.user, 18836);
	assert_int_equal(st.nice, 0);
	assert_int_equal(st.system, 33752);
	assert_int_equal(st.idle, 264481);
	assert_int_equal(st.iowait, 851);
	assert_int_equal(st.irq, 0);
	assert_int_equal(st.softirq, 7514);
	assert_int_equal(st.steal, 34);
	assert_int_equal(st.ncpu, 2);
}

static void
test_parse_meminfo_sample(void **state)
{
	struct procfs_meminfo mi;

	(void)state;
	assert_int_equal(procfs_parse_meminfo(meminfo_sample,
	    strlen(meminfo_sample), &mi), 0);
	assert_int_equal(mi.total, 24684084ULL * 1024);
	assert_int_equal(mi.free, 24279908ULL * 1024);
	assert_int_equal(mi.available, 24358236ULL * 1024);
	assert_int_equal(mi.buffers, 400ULL * 1024);
	assert_int_equal(mi.cached, 262448ULL * 1024);
	assert_int_equal(mi.swap_total, 0);
	assert_int_equal(mi.swap_free, 0);
}

static void
test_parse_net_dev_sample(void **state)
{
	static struct procfs_net_dev nd;

	(void)state;
	assert_int_equal(procfs_parse_net_dev(net_dev_sample,
	    strlen(net_dev_sample), &nd), 0);
	assert_int_equal(nd.n, 4);
	assert_int_equal(nd.skipped, 0);
	assert_string_equal(nd.ifs[0].name, "lo");
	assert_int_equal(nd.ifs[0].rx_bytes, 1398356465949ULL);
	assert_int_equal(nd.ifs[0].rx_packets, 49540093);
	assert_string_equal(nd.ifs[1].name, "ifb0");
	assert_string_equal(nd.ifs[2].name, "ifb1");
	assert_string_equal(nd.ifs[3].name, "eth0");
	assert_int_equal(nd.ifs[3].rx_bytes, 21433646);
	assert_int_equal(nd.ifs[3].rx_packets, 619);
	assert_int_equal(nd.ifs[3].tx_bytes, 29851);
	assert_int_equal(nd.ifs[3].tx_packets, 330);
	assert_int_equal(nd.ifs[3].rx_errs + nd.ifs[3].tx_errs +
	    nd.ifs[3].rx_drop + nd.ifs[3].tx_drop, 0);
}

static void
test_parse_loadavg_cpuinfo_mounts_samples(void **state)
{
	struct procfs_loadavg la;
	struct procfs_cpuinfo ci;
	static struct procfs_mounts m;

	(void)state;
	assert_int_equal(procfs_parse_loadavg(loadavg_sample,
	    strlen(loadavg_sample), &la), 0);
	assert_int_equal(la.centi[0], 117);
	assert_int_equal(la.centi[1], 86);
	assert_int_equal(la.centi[2], 37);
	assert_int_equal(la.running, 1);
	assert_int_equal(la.total, 84);
	assert_int_equal(la.last_pid, 21224);

	assert_int_equal(procfs_parse_cpuinfo(cpuinfo_sample,
	    strlen(cpuinfo_sample), &ci), 0);
	assert_string_equal(ci.model, "Intel(R) Xeon(R) Processor");

	/* rootfs and overlay on "/" (the later wins), the escaped blank,
	 * /srv remounted; no pseudo, tmpfs, squashfs, NFS or FUSE. */
	assert_int_equal(procfs_parse_mounts(mounts_sample,
	    strlen(mounts_sample), &m), 0);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.skipped, 0);
	assert_string_equal(m.m[0].dir, "/");
	assert_string_equal(m.m[0].type, "overlay");
	assert_string_equal(m.m[1].dir, "/var/lib/hv data");
	assert_string_equal(m.m[1].type, "ext4");
	assert_string_equal(m.m[2].dir, "/srv");
	assert_string_equal(m.m[2].type, "xfs");
}

/* --- the parsers over malformed input --- */

enum parser { P_STAT, P_LOADAVG, P_MEMINFO, P_NET_DEV, P_CPUINFO, P_MOUNTS };

struct reject_case {
	enum parser p;
	const char *text;
	int r;
	const char *err;
};

#define H	NET_DEV_HEAD
#define C16	" 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
#define MEM7	"MemTotal: 100 kB\nMemFree: 50 kB\nBuffers: 1 kB\n" \
		"Cached: 2 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"

static const struct reject_case reject_cases[] = {
	{ P_STAT, "", -EINVAL,
	    "line 1: expected the aggregate 'cpu' line, got end of input" },
	{ P_STAT, "intr 1 2\n", -EINVAL,
	    "line 1: expected the aggregate 'cpu' line, got 'intr'" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7\n", -EINVAL,
	    "line 1: 7 cpu fields, expected 8 to 10" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8 9 10 11\n", -EINVAL,
	    "line 1: more than 10 cpu fields" },
	{ P_STAT, "cpu  1 2 x3 4 5 6 7 8\n", -EINVAL,
	    "line 1: expected a number for the cpu field, got 'x3'" },
	{ P_STAT, "cpu  1 2 3a 4 5 6 7 8\n", -EINVAL,
	    "line 1: expected a number for the cpu field, got '3a'" },
	{ P_STAT, "cpu  -1 2 3 4 5 6 7 8\n", -EINVAL,
	    "line 1: expected a number for the cpu field, got '-1'" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\r\n", -EINVAL,
	    "line 1: expected a number for the cpu field, got '8?'" },
	{ P_STAT, "cpu  99999999999999999999 2 3 4 5 6 7 8\n", -EINVAL,
	    "line 1: the cpu field '99999999999999999999' overflows 64 bits" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\ncpu1 1 2 3 4 5 6 7 8\n"
	    "cpu0 1 2 3 4 5 6 7 8\nintr 0\n", -EINVAL,
	    "line 3: cpu0 out of order" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nintr 0\n",
	    -EINVAL, "line 2: cpu0 has 8 fields, the aggregate line 10" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\nintr 0\n", -EINVAL,
	    "line 2: expected cpu0 or another cpuN line, got 'intr'" },
	/* Cut at a line boundary inside the cpu block: the count would lie. */
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\n", -EINVAL,
	    "line 3: expected a key after the cpu lines, got end of input" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8", -EINVAL,
	    "line 2: expected end of line, got end of input" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4", -EINVAL,
	    "line 2: 4 cpu fields, expected 8 to 10" },
	{ P_STAT, "cpu  1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\nIntr 0\n",
	    -EINVAL, "line 3: expected a key after the cpu lines, got 'Intr'" },

	{ P_LOADAVG, "", -EINVAL,
	    "line 1: expected load 1 as N.NN, got end of input" },
	{ P_LOADAVG, "1.17 0.86 0.37 1/84 21224", -EINVAL,
	    "line 1: expected end of line, got end of input" },
	{ P_LOADAVG, "1.1 0.86 0.37 1/84 21224\n", -EINVAL,
	    "line 1: expected load 1 as N.NN, got '1.1'" },
	{ P_LOADAVG, "-1.00 0.86 0.37 1/84 21224\n", -EINVAL,
	    "line 1: expected load 1 as N.NN, got '-1.00'" },
	{ P_LOADAVG, "1.17  0.86 0.37 1/84 21224\n", -EINVAL,
	    "line 1: expected load 2 as N.NN, got a blank" },
	{ P_LOADAVG, "1.17 0.86 0.375 1/84 21224\n", -EINVAL,
	    "line 1: expected load 3 as N.NN, got '0.375'" },
	{ P_LOADAVG, "1.17 0.86 0.37 1-84 21224\n", -EINVAL,
	    "line 1: expected '/' after the running count, got '-84'" },
	{ P_LOADAVG, "1.17 0.86 0.37 1/99999999999 21224\n", -EINVAL,
	    "line 1: the task count 99999999999 is too large" },
	{ P_LOADAVG, "1.17 0.86 0.37 1/84\n", -EINVAL,
	    "line 1: expected ' ' after the task count, got end of line" },
	{ P_LOADAVG, "1.17 0.86 0.37 1/84 21224\n\n", -EINVAL,
	    "line 2: expected end of input, got end of line" },

	{ P_MEMINFO, "", -EINVAL, "line 1: no MemTotal" },
	{ P_MEMINFO, MEM7, -EINVAL, "line 7: no MemAvailable" },
	{ P_MEMINFO, "MemTotal: 100 kB\nMemTotal: 100 kB\n", -EINVAL,
	    "line 2: MemTotal repeated" },
	{ P_MEMINFO, "MemTotal: 100\n", -EINVAL, "line 1: MemTotal is not in kB" },
	{ P_MEMINFO, "MemTotal: 100 MB\n", -EINVAL,
	    "line 1: MemTotal is not in kB" },
	{ P_MEMINFO, "MemTotal 100 kB\n", -EINVAL,
	    "line 1: expected 'Key:', got 'MemTotal'" },
	{ P_MEMINFO, "MemTotal:100 kB\n", -EINVAL,
	    "line 1: expected a blank before the value, got '100'" },
	{ P_MEMINFO, "MemTotal: 18014398509481984 kB\n", -EINVAL,
	    "line 1: MemTotal overflows" },
	{ P_MEMINFO, "MemTotal: 100 kB", -EINVAL,
	    "line 1: expected end of line, got end of input" },
	{ P_MEMINFO, "Mem\x01Total: 1 kB\n", -EINVAL,
	    "line 1: expected 'Key:', got 'Mem?Total:'" },
	{ P_MEMINFO, ": 1 kB\n", -EINVAL, "line 1: expected 'Key:', got ':'" },

	{ P_NET_DEV, "", -EINVAL, "line 1: unknown first header line" },
	{ P_NET_DEV, "Inter-|   Receive                                      "
	    "          |  Transmit\nbogus\n", -EINVAL,
	    "line 2: unknown second header line" },
	{ P_NET_DEV, H "  eth0" C16, -EINVAL,
	    "line 3: expected 'NAME:', got 'eth0'" },
	{ P_NET_DEV, H "eth/0:" C16, -EINVAL,
	    "line 3: 'eth/0' is not an interface name" },
	{ P_NET_DEV, H ".:" C16, -EINVAL, "line 3: '.' is not an interface name" },
	{ P_NET_DEV, H "abcdefghijklmnopq:" C16, -EINVAL,
	    "line 3: expected 'NAME:', got 'abcdefghijklmnopq:'" },
	{ P_NET_DEV, H "eth0: 1 2 3\n", -EINVAL,
	    "line 3: expected a blank before the rx drop, got end of line" },
	{ P_NET_DEV, H "eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n", -EINVAL,
	    "line 3: expected a number for the rx errs, got 'x'" },
	{ P_NET_DEV, H "eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", -EINVAL,
	    "line 3: expected a blank before the rx bytes, got '1'" },
	{ P_NET_DEV, H "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
	    -EINVAL, "line 3: expected end of line, got a blank" },
	{ P_NET_DEV, H "lo:" C16 "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
	    -EINVAL, "line 4: expected end of line, got end of input" },

	{ P_CPUINFO, "", -EINVAL,
	    "line 1: expected a processor block, got end of input" },
	{ P_CPUINFO, "processor\t: 0\nmodel name\t: X", -EINVAL,
	    "line 2: expected end of line, got end of input" },
	{ P_CPUINFO, "processor\t: 0\nbogus line\n", -EINVAL,
	    "line 2: expected 'key: value', got 'bogus'" },
	{ P_CPUINFO, "processor\t: 0\n\t: x\n", -EINVAL,
	    "line 2: expected a key before ':'" },
	{ P_CPUINFO, "processor\t: 0\nmodel name\t: A\x01" "B\n", -EINVAL,
	    "line 2: control or non-ASCII byte in line" },
	{ P_CPUINFO, "processor\t: 0\nmodel name\t: Caf\xc3\xa9\n", -EINVAL,
	    "line 2: control or non-ASCII byte in line" },
	{ P_CPUINFO, "model name\t: 0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "45678901234567890123456789\n", -EINVAL,
	    "line 1: model name longer than 127 bytes" },
	/* arm64 has no "model name"; a later block does not count. */
	{ P_CPUINFO, "processor\t: 0\nCPU implementer\t: 0x41\n\nprocessor\t: 1\n"
	    "model name\t: late\n", -ENOENT,
	    "no 'model name' in the first processor block" },
	{ P_CPUINFO, "processor\t: 0\nmodel name\t:\n", -ENOENT,
	    "no 'model name' in the first processor block" },

	{ P_MOUNTS, "/dev/vda / ext4 rw 0\n", -EINVAL,
	    "line 1: expected ' ' after the dump, got end of line" },
	{ P_MOUNTS, "/dev/vda / ext4\n", -EINVAL,
	    "line 1: expected ' ' after the type, got end of line" },
	{ P_MOUNTS, " / ext4 rw 0 0\n", -EINVAL,
	    "line 1: expected the source, got a blank" },
	{ P_MOUNTS, "/dev/vda relative ext4 rw 0 0\n", -EINVAL,
	    "line 1: expected an absolute mount point, got 'relative'" },
	{ P_MOUNTS, "/dev/vda /a\\04 ext4 rw 0 0\n", -EINVAL,
	    "line 1: expected \\ooo in the mount point, got '\\04'" },
	{ P_MOUNTS, "/dev/vda /a\\09x ext4 rw 0 0\n", -EINVAL,
	    "line 1: expected \\ooo in the mount point, got '\\09x'" },
	{ P_MOUNTS, "/dev/vda /a\\000 ext4 rw 0 0\n", -EINVAL,
	    "line 1: escape \\000 out of range" },
	{ P_MOUNTS, "/dev/vda /a\\400 ext4 rw 0 0\n", -EINVAL,
	    "line 1: escape \\400 out of range" },
	{ P_MOUNTS, "/dev/vda / ext4 rw 0 0 extra\n", -EINVAL,
	    "line 1: expected end of line, got a blank" },
	{ P_MOUNTS, "/dev/vda / ext4 rw 0 0", -EINVAL,
	    "line 1: expected end of line, got end of input" },
	{ P_MOUNTS, "/dev/vda / ext4 rw x 0\n", -EINVAL,
	    "line 1: expected a number for the dump, got 'x'" },
	{ P_MOUNTS, "/dev/vda / averyveryveryverylongfilesystemtype rw 0 0\n",
	    -EINVAL, "line 1: type longer than 31 bytes" },
	{ P_MOUNTS, "/dev/vda /a\x01 ext4 rw 0 0\n", -EINVAL,
	    "line 1: control character in mount point" },
	{ P_MOUNTS, "/dev/vda / ext4 rw 0 0\nx\n", -EINVAL,
	    "line 2: expected ' ' after the source, got end of line" },
};

/* Runs parser P; the error text goes to ERR. */
static int
run_parser(enum parser p, const char *text, size_t len,
    char err[PROCFS_ERR_MAX])
{
	static struct procfs_stat st;
	static struct procfs_loadavg la;
	static struct procfs_meminfo mi;
	static struct procfs_net_dev nd;
	static struct procfs_cpuinfo ci;
	static struct procfs_mounts mo;
	int r = 0;

	switch (p) {
	case P_STAT:
		r = procfs_parse_stat(text, len, &st);
		memcpy(err, st.err, PROCFS_ERR_MAX);
		break;
	case P_LOADAVG:
		r = procfs_parse_loadavg(text, len, &la);
		memcpy(err, la.err, PROCFS_ERR_MAX);
		break;
	case P_MEMINFO:
		r = procfs_parse_meminfo(text, len, &mi);
		memcpy(err, mi.err, PROCFS_ERR_MAX);
		break;
	case P_NET_DEV:
		r = procfs_parse_net_dev(text, len, &nd);
		memcpy(err, nd.err, PROCFS_ERR_MAX);
		break;
	case P_CPUINFO:
		r = procfs_parse_cpuinfo(text, len, &ci);
		memcpy(err, ci.err, PROCFS_ERR_MAX);
		break;
	case P_MOUNTS:
		r = procfs_parse_mounts(text, len, &mo);
		memcpy(err, mo.err, PROCFS_ERR_MAX);
		break;
	}
	return r;
}

static void
test_parse_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reject_cases) / sizeof(*reject_cases); i++) {
		const struct reject_case *c = &reject_cases[i];
		char err[PROCFS_ERR_MAX];
		int r;

		r = run_parser(c->p, c->text, strlen(c->text), err);
		if (r != c->r)
			fail_msg("case %zu: got %d (%s), want %d: %s", i, r, err,
			    c->r, c->err);
		if (strcmp(err, c->err) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, err, c->err);
	}
}

/*
 * Every prefix of every sample, in an exact-size heap copy so that reading
 * one byte past LEN is an ASan finding.  A line-oriented parser may accept
 * a prefix only at a line end: it must never take half a line as whole.
 * (stat stops reading after its cpu block and cpuinfo after its first
 * block, so the property holds for them only up to there.)
 */
static void
test_parse_prefixes(void **state)
{
	const struct {
		enum parser p;
		const char *text;
		bool whole_lines;
	} samples[] = {
		{ P_STAT, stat_sample, false },
		{ P_LOADAVG, loadavg_sample, true },
		{ P_MEMINFO, meminfo_sample, true },
		{ P_NET_DEV, net_dev_sample, true },
		{ P_CPUINFO, cpuinfo_sample, false },
		{ P_MOUNTS, mounts_sample, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(*samples); i++) {
		size_t len = strlen(samples[i].text);
		unsigned accepted = 0;

		for (size_t n = 0; n <= len; n++) {
			char err[PROCFS_ERR_MAX];
			char *copy = malloc(n ? n : 1);
			int r;

			assert_non_null(copy);
			memcpy(copy, samples[i].text, n);
			r = run_parser(samples[i].p, copy, n, err);
			if (r == 0) {
				accepted++;
				if (samples[i].whole_lines && n > 0 &&
				    copy[n - 1] != '\n')
					fail_msg("sample %zu: accepted a prefix of "
					    "%zu bytes cut mid-line", i, n);
			} else if (err[0] == '\0') {
				fail_msg("sample %zu prefix %zu: refused without "
				    "a message", i, n);
			}
			free(copy);
		}
		/* The whole sample is one of them. */
		assert_true(accepted >= 1);
	}
}

static void
test_parse_bounds(void **state)
{
	static struct procfs_net_dev nd;
	static struct procfs_mounts m;
	char *buf;
	size_t off = 0, cap = 128 * 1024;

	(void)state;
	assert_non_null(buf = malloc(cap));
	off = (size_t)snprintf(buf, cap, "%s", NET_DEV_HEAD);
	for (int i = 0; i < 300; i++)
		off += (size_t)snprintf(buf + off, cap - off, "if%d:" C16, i);
	assert_int_equal(procfs_parse_net_dev(buf, off, &nd), 0);
	assert_int_equal(nd.n, PROCFS_NETIF_MAX);
	assert_int_equal(nd.skipped, 300 - PROCFS_NETIF_MAX);
	assert_string_equal(nd.ifs[PROCFS_NETIF_MAX - 1].name, "if255");
	assert_int_equal(nd.ifs[7].tx_bytes, 9);

	off = 0;
	for (int i = 0; i < 40; i++)
		off += (size_t)snprintf(buf + off, cap - off,
		    "/dev/vd%d /m%d ext4 rw 0 0\n", i, i);
	/* A mount point longer than the struct holds is counted, not cut. */
	off += (size_t)snprintf(buf + off, cap - off, "/dev/x /%0300d ext4 rw "
	    "0 0\n", 7);
	assert_int_equal(procfs_parse_mounts(buf, off, &m), 0);
	assert_int_equal(m.n, PROCFS_MOUNT_MAX);
	assert_int_equal(m.skipped, 40 - PROCFS_MOUNT_MAX + 1);
	assert_string_equal(m.m[PROCFS_MOUNT_MAX - 1].dir, "/m31");
	free(buf);
}

static void
test_parse_attrs(void **state)
{
	static const struct {
		const char *in;
		size_t len;	/* 0: strlen */
		int r;
		const char *out;
	} attrs[] = {
		{ "eth0\n", 0, 0, "eth0" },
		{ "  ST1000DM003-1CH1   \n", 0, 0, "ST1000DM003-1CH1" },
		{ "To Be Filled By O.E.M.\n", 0, 0, "To Be Filled By O.E.M." },
		{ "\n", 0, -ENODATA, NULL },
		{ "", 0, -ENODATA, NULL },
		{ "  \t \n", 0, -ENODATA, NULL },
		{ "a\x01" "b\n", 0, -EINVAL, NULL },
		{ "caf\xc3\xa9\n", 0, -EINVAL, NULL },
		{ "a\0b", 3, -EINVAL, NULL },
		{ "abcdefghijklmnopqrstuvwx\n", 0, -EOVERFLOW, NULL },
		{ "abcdefghijklmnopqrstuvw\n", 0, 0, "abcdefghijklmnopqrstuvw" },
	};
	static const struct {
		const char *in;
		int r;
		int64_t v;
	} nums[] = {
		{ "1500\n", 0, 1500 },
		{ "-1\n", 0, -1 },
		{ " 42 ", 0, 42 },
		{ "0\n", 0, 0 },
		{ "9223372036854775807\n", 0, INT64_MAX },
		{ "-9223372036854775808\n", 0, INT64_MIN },
		{ "9223372036854775808\n", -ERANGE, 0 },
		{ "-9223372036854775809\n", -ERANGE, 0 },
		{ "99999999999999999999999\n", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ "-", -EINVAL, 0 },
		{ "1 2\n", -EINVAL, 0 },
		{ "+5\n", -EINVAL, 0 },
		{ "0x10\n", -EINVAL, 0 },
		{ "--1\n", -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(attrs) / sizeof(*attrs); i++) {
		char out[24] = "unset";
		size_t len = attrs[i].len ? attrs[i].len : strlen(attrs[i].in);
		int r = procfs_parse_attr(attrs[i].in, len, out, sizeof(out));

		if (r != attrs[i].r)
			fail_msg("attr %zu: got %d, want %d", i, r, attrs[i].r);
		if (attrs[i].out != NULL)
			assert_string_equal(out, attrs[i].out);
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(*nums); i++) {
		int64_t v = 12345;
		int r = procfs_parse_attr_i64(nums[i].in, strlen(nums[i].in), &v);

		if (r != nums[i].r)
			fail_msg("i64 %zu '%s': got %d, want %d", i, nums[i].in, r,
			    nums[i].r);
		if (r == 0 && v != nums[i].v)
			fail_msg("i64 %zu: got %lld", i, (long long)v);
	}
}

static void
test_parse_vpd80(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		int r;
		const char *out;
	} cases[] = {
		{ "\x00\x80\x00\x0c WD-WCC4N123", 16, 0, "WD-WCC4N123" },
		{ "\x00\x80\x00\x08" "ABC\0\0\0\0\0", 12, 0, "ABC" },
		{ "\x00\x80\x00\x00", 4, -ENODATA, NULL },
		{ "\x00\x80\x00\x04    ", 8, -ENODATA, NULL },
		{ "\x00\x83\x00\x03" "ABC", 7, -EINVAL, NULL },
		{ "\x00\x80\x00\x05" "ABC", 7, -EINVAL, NULL },
		{ "\x00\x80\x00\x02" "ABC", 7, -EINVAL, NULL },
		{ "\x00\x80\x00", 3, -EINVAL, NULL },
		{ "\x00\x80\x00\x03" "A\nC", 7, -EINVAL, NULL },
		{ "\x00\x80\x00\x03" "A\xff" "C", 7, -EINVAL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char out[32] = "";
		int r = procfs_parse_vpd80(cases[i].in, cases[i].len, out,
		    sizeof(out));

		if (r != cases[i].r)
			fail_msg("vpd %zu: got %d, want %d", i, r, cases[i].r);
		if (cases[i].out != NULL)
			assert_string_equal(out, cases[i].out);
	}
}

/* --- temporary trees --- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *
tree_new(void)
{
	char *d = strdup("/tmp/hv-agent-test.XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void
tree_free(char *d)
{
	nftw(d, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

/* Writes ROOT/REL (parents created) in place, keeping its inode, so an fd
 * the agent holds open sees the new contents. */
static void
tree_putn(const char *root, const char *rel, const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(path, 0755) == -1 && errno != EEXIST)
			fail_msg("mkdir %s: %s", path, strerror(errno));
		*s = '/';
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1)
		fail_msg("%s: %s", path, strerror(errno));
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
tree_put(const char *root, const char *rel, const char *text)
{
	tree_putn(root, rel, text, strlen(text));
}

/* --- procfs_read --- */

static void
test_read_refusals(void **state)
{
	char *root = tree_new(), buf[64], path[4096];
	size_t len = 99;
	int dfd, fd;

	(void)state;
	tree_put(root, "f", "hello\n");
	tree_put(root, "sub/g", "in sub\n");
	snprintf(path, sizeof(path), "%s/l", root);
	assert_int_equal(symlink("f", path), 0);
	snprintf(path, sizeof(path), "%s/ld", root);
	assert_int_equal(symlink("sub", path), 0);
	snprintf(path, sizeof(path), "%s/p", root);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_true((dfd = open(root, O_PATH | O_DIRECTORY)) >= 0);

	assert_int_equal(procfs_read(dfd, "f", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "hello\n", 6);
	/* Exactly CAP bytes is a whole file, one byte less is not. */
	assert_int_equal(procfs_read(dfd, "f", buf, 6, &len), 0);
	assert_int_equal(len, 6);
	assert_int_equal(procfs_read(dfd, "f", buf, 4, &len), -EFBIG);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "hell", 4);

	assert_int_equal(procfs_read(dfd, "l", buf, sizeof(buf), &len), -ELOOP);
	/* Only the last component is O_NOFOLLOW: /sys/class/net/X/ is a link. */
	assert_int_equal(procfs_read(dfd, "ld/g", buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 7);
	assert_int_equal(procfs_read(dfd, "sub/../f", buf, sizeof(buf), &len),
	    -EINVAL);
	assert_int_equal(procfs_read(dfd, "..", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(procfs_read(dfd, "/etc/hostname", buf, sizeof(buf),
	    &len), -EINVAL);
	assert_int_equal(procfs_read(dfd, "", buf, sizeof(buf), &len), -EINVAL);
	/* A FIFO is refused at once rather than waiting for a writer. */
	assert_int_equal(procfs_read(dfd, "p", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(procfs_read(dfd, "sub", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(procfs_read(dfd, "missing", buf, sizeof(buf), &len),
	    -ENOENT);
	assert_int_equal(procfs_read(-1, "f", buf, sizeof(buf), &len), -EBADF);
	/* ".." inside a name is fine; only the component is refused. */
	tree_put(root, "a..b", "x");
	assert_int_equal(procfs_read(dfd, "a..b", buf, sizeof(buf), &len), 0);

	/* A kept fd sees a file rewritten in place. */
	assert_true((fd = procfs_open(dfd, "f")) >= 0);
	tree_put(root, "f", "second contents\n");
	assert_int_equal(procfs_pread(fd, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 16);
	assert_memory_equal(buf, "second contents\n", 16);
	close(fd);
	close(dfd);
	tree_free(root);
}

/* procfs regenerates a file on pread at offset 0: a kept fd is fresh. */
static void
test_read_real_proc_fresh(void **state)
{
	char a[128], b[128];
	size_t la, lb;
	int pfd, fd;

	(void)state;
	assert_true((pfd = open("/proc", O_PATH | O_DIRECTORY)) >= 0);
	assert_true((fd = procfs_open(pfd, "uptime")) >= 0);
	assert_int_equal(procfs_pread(fd, a, sizeof(a), &la), 0);
	usleep(30 * 1000);	/* uptime counts hundredths */
	assert_int_equal(procfs_pread(fd, b, sizeof(b), &lb), 0);
	assert_true(la > 0 && lb > 0);
	assert_false(la == lb && memcmp(a, b, la) == 0);
	close(fd);
	close(pfd);
}

/* --- the real /proc and /sys of this machine --- */

/* Every entry of DIR but "." and "..", in N (at most MAX). */
static int
list_dir(const char *dir, char names[][256], int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < max) {
		if (de->d_name[0] == '.')
			continue;
		memcpy(names[n++], de->d_name, strlen(de->d_name) + 1);
	}
	closedir(d);
	return n;
}

/* The entry of array A whose KEY is the string VAL, or NULL. */
static json_t *
find_by(json_t *a, const char *key, const char *val)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e) {
		const char *s = json_string_value(json_object_get(e, key));

		if (s != NULL && strcmp(s, val) == 0)
			return e;
	}
	return NULL;
}

static char *
read_text(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return buf;
}

static void
test_real_proc(void **state)
{
	static struct procfs_net_dev nd;
	static struct procfs_mounts m;
	static char buf[256 * 1024];
	static char names[512][256];
	struct procfs_stat st;
	struct procfs_meminfo mi;
	struct procfs_loadavg la;
	struct sysinfo si;
	size_t len;
	int pfd, n, r;

	(void)state;
	assert_true((pfd = open("/proc", O_PATH | O_DIRECTORY)) >= 0);
	assert_int_equal(procfs_read(pfd, "stat", buf, sizeof(buf), &len), 0);
	if (procfs_parse_stat(buf, len, &st) != 0)
		fail_msg("/proc/stat: %s", st.err);
	assert_int_equal(st.ncpu, sysconf(_SC_NPROCESSORS_ONLN));
	assert_true(st.idle > 0);

	assert_int_equal(procfs_read(pfd, "meminfo", buf, sizeof(buf), &len), 0);
	if (procfs_parse_meminfo(buf, len, &mi) != 0)
		fail_msg("/proc/meminfo: %s", mi.err);
	assert_int_equal(sysinfo(&si), 0);
	assert_int_equal(mi.total, (uint64_t)si.totalram * si.mem_unit);
	assert_true(mi.available <= mi.total && mi.free <= mi.total);

	assert_int_equal(procfs_read(pfd, "loadavg", buf, sizeof(buf), &len), 0);
	if (procfs_parse_loadavg(buf, len, &la) != 0)
		fail_msg("/proc/loadavg: %s", la.err);
	assert_true(la.total >= la.running && la.total > 0);

	/* Every interface the kernel lists in sysfs, and no other. */
	assert_int_equal(procfs_read(pfd, "net/dev", buf, sizeof(buf), &len), 0);
	if (procfs_parse_net_dev(buf, len, &nd) != 0)
		fail_msg("/proc/net/dev: %s", nd.err);
	n = list_dir("/sys/class/net", names, 512);
	assert_int_equal(nd.n, n);
	for (int i = 0; i < n; i++) {
		unsigned j;

		for (j = 0; j < nd.n; j++)
			if (strcmp(nd.ifs[j].name, names[i]) == 0)
				break;
		if (j == nd.n)
			fail_msg("%s missing from /proc/net/dev", names[i]);
	}

	r = procfs_read(pfd, "self/mounts", buf, sizeof(buf), &len);
	assert_int_equal(r, 0);
	if (procfs_parse_mounts(buf, len, &m) != 0)
		fail_msg("/proc/self/mounts: %s", m.err);
	assert_true(m.n >= 1);
	assert_string_equal(m.m[0].dir, "/");
	for (unsigned i = 0; i < m.n; i++)
		assert_string_not_equal(m.m[i].type, "proc");
	close(pfd);
}

static void
test_facts_real(void **state)
{
	static char names[512][256];
	struct utsname u;
	struct sysinfo si;
	json_t *f, *nics, *disks, *dmi, *v;
	char text[256], path[1024];
	int n, sock;

	(void)state;
	assert_non_null(f = facts_collect());
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(f, "cpu"), "count")), sysconf(_SC_NPROCESSORS_ONLN));
	v = json_object_get(json_object_get(f, "cpu"), "model");
	assert_true(json_is_string(v) || json_is_null(v));
#if defined(__x86_64__) || defined(__i386__)
	assert_true(json_is_string(v) && json_string_length(v) > 0);
#endif
	assert_int_equal(sysinfo(&si), 0);
	{
		json_int_t total = json_integer_value(json_object_get(
		    json_object_get(f, "memory"), "total_bytes"));
		json_int_t want = (json_int_t)si.totalram * si.mem_unit;

		assert_true(total > 0);
		assert_true(llabs(total - want) < sysconf(_SC_PAGESIZE));
	}

	/* Every non-lo interface, with the MTU the kernel gives an ioctl. */
	nics = json_object_get(f, "nics");
	assert_true(json_is_array(nics));
	assert_null(find_by(nics, "name", "lo"));
	n = list_dir("/sys/class/net", names, 512);
	assert_int_equal(json_array_size(nics), n - 1);
	assert_true((sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) >= 0);
	for (int i = 0; i < n; i++) {
		struct ifreq ifr;
		json_t *nic, *speed;

		if (strcmp(names[i], "lo") == 0)
			continue;
		if ((nic = find_by(nics, "name", names[i])) == NULL)
			fail_msg("facts lack interface %s", names[i]);
		memset(&ifr, 0, sizeof(ifr));
		assert_true(strlen(names[i]) < sizeof(ifr.ifr_name));
		memcpy(ifr.ifr_name, names[i], strlen(names[i]) + 1);
		assert_int_equal(ioctl(sock, SIOCGIFMTU, &ifr), 0);
		assert_int_equal(json_integer_value(json_object_get(nic, "mtu")),
		    ifr.ifr_mtu);
		snprintf(path, sizeof(path), "/sys/class/net/%.255s/address",
		    names[i]);
		if (read_text(path, text, sizeof(text)) && text[0] != '\0')
			assert_string_equal(json_string_value(json_object_get(nic,
			    "mac")), text);
		/* -1 or EINVAL (link down) in sysfs must be null here. */
		snprintf(path, sizeof(path), "/sys/class/net/%.255s/speed",
		    names[i]);
		speed = json_object_get(nic, "speed_mbps");
		if (read_text(path, text, sizeof(text)) == NULL ||
		    text[0] == '\0' || text[0] == '-')
			assert_true(json_is_null(speed));
		else
			assert_int_equal(json_integer_value(speed), atoll(text));
		assert_true(json_is_string(json_object_get(nic, "operstate")));
	}
	close(sock);

	/* Every block device but loop, ram, zram and dm-. */
	disks = json_object_get(f, "disks");
	n = list_dir("/sys/block", names, 512);
	for (int i = 0; i < n; i++) {
		bool skip = strncmp(names[i], "loop", 4) == 0 ||
		    strncmp(names[i], "ram", 3) == 0 ||
		    strncmp(names[i], "zram", 4) == 0 ||
		    strncmp(names[i], "dm-", 3) == 0;
		json_t *d = find_by(disks, "name", names[i]);

		if (skip) {
			assert_null(d);
			continue;
		}
		if (d == NULL)
			fail_msg("facts lack disk %s", names[i]);
		snprintf(path, sizeof(path), "/sys/block/%.255s/size", names[i]);
		assert_non_null(read_text(path, text, sizeof(text)));
		assert_int_equal(json_integer_value(json_object_get(d,
		    "size_bytes")), atoll(text) * 512);
		snprintf(path, sizeof(path), "/sys/block/%.255s/serial", names[i]);
		if (read_text(path, text, sizeof(text)) && text[0] != '\0')
			assert_string_equal(json_string_value(json_object_get(d,
			    "serial")), text);
		assert_true(json_is_boolean(json_object_get(d, "rotational")));
	}

	assert_int_equal(uname(&u), 0);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(f, "kernel"), "release")), u.release);
	dmi = json_object_get(f, "dmi");
	assert_int_equal(json_object_size(dmi), 6);
	{
		const char *k;

		json_object_foreach(dmi, k, v) {
			snprintf(path, sizeof(path), "/sys/class/dmi/id/%s", k);
			if (access(path, R_OK) != 0)
				assert_true(json_is_null(v));
			else
				assert_true(json_is_string(v) || json_is_null(v));
		}
	}
	json_decref(f);
}

/* A host whose every fact is known: the whole object must match. */
static void
test_facts_fake_tree(void **state)
{
	static const char vpd[] = "\x00\x80\x00\x0c" "  Z1D5K2XB  ";
	static const char want[] =
	    "{\"cpu\": {\"model\": \"AMD EPYC 7302P 16-Core Processor\","
	    "  \"count\": 3},"
	    " \"memory\": {\"total_bytes\": 102400},"
	    " \"nics\": ["
	    "  {\"name\": \"eth0\", \"mac\": \"3c:ec:ef:00:00:01\","
	    "   \"speed_mbps\": 10000, \"mtu\": 9000, \"operstate\": \"up\"},"
	    "  {\"name\": \"eth1\", \"mac\": \"3c:ec:ef:00:00:02\","
	    "   \"speed_mbps\": null, \"mtu\": 1500, \"operstate\": \"down\"},"
	    "  {\"name\": \"vif3.0\", \"mac\": null, \"speed_mbps\": null,"
	    "   \"mtu\": null, \"operstate\": null}],"
	    " \"disks\": ["
	    "  {\"name\": \"nvme0n1\", \"size_bytes\": 1024000000000,"
	    "   \"serial\": \"S4EWNX0R123456\", \"model\": \"Samsung SSD 980\","
	    "   \"rotational\": false},"
	    "  {\"name\": \"sda\", \"size_bytes\": 1000204886016,"
	    "   \"serial\": \"Z1D5K2XB\", \"model\": \"ST1000DM003-1CH1\","
	    "   \"rotational\": true},"
	    "  {\"name\": \"sr0\", \"size_bytes\": null, \"serial\": null,"
	    "   \"model\": null, \"rotational\": null},"
	    "  {\"name\": \"vda\", \"size_bytes\": 512, \"serial\": \"overlayblk\","
	    "   \"model\": null, \"rotational\": true}],"
	    " \"dmi\": {\"sys_vendor\": \"Supermicro\", \"product_name\":"
	    "  \"AS -1114S-WN10RT\", \"product_uuid\": null, \"product_serial\":"
	    "  null, \"board_name\": \"H12SSW-NT\", \"bios_version\": \"2.4\"}}";
	char *root = tree_new();
	json_t *f, *w;
	json_error_t je;

	(void)state;
	tree_put(root, "proc/cpuinfo", "processor\t: 0\nvendor_id\t: "
	    "AuthenticAMD\nmodel name\t: AMD EPYC 7302P 16-Core Processor\n\n"
	    "processor\t: 1\nmodel name\t: other\n\n");
	tree_put(root, "proc/stat", "cpu  1 2 3 4 5 6 7 8 9 10\n"
	    "cpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\n"
	    "cpu3 1 2 3 4 5 6 7 8 9 10\nintr 1 0 0\n");
	tree_put(root, "proc/meminfo", "MemTotal: 100 kB\nMemFree: 50 kB\n"
	    "MemAvailable: 60 kB\nBuffers: 1 kB\nCached: 2 kB\n"
	    "SwapTotal: 0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n");
	tree_put(root, "sys/class/net/lo/mtu", "65536\n");
	tree_put(root, "sys/class/net/eth0/address", "3c:ec:ef:00:00:01\n");
	tree_put(root, "sys/class/net/eth0/speed", "10000\n");
	tree_put(root, "sys/class/net/eth0/mtu", "9000\n");
	tree_put(root, "sys/class/net/eth0/operstate", "up\n");
	tree_put(root, "sys/class/net/eth1/address", "3c:ec:ef:00:00:02\n");
	tree_put(root, "sys/class/net/eth1/speed", "-1\n");
	tree_put(root, "sys/class/net/eth1/mtu", "1500\n");
	tree_put(root, "sys/class/net/eth1/operstate", "down\n");
	tree_put(root, "sys/class/net/vif3.0/mtu", "jumbo\n");
	tree_put(root, "sys/block/sda/size", "1953525168\n");
	tree_put(root, "sys/block/sda/queue/rotational", "1\n");
	tree_put(root, "sys/block/sda/device/model", "ST1000DM003-1CH1  \n");
	tree_putn(root, "sys/block/sda/device/vpd_pg80", vpd, sizeof(vpd) - 1);
	tree_put(root, "sys/block/nvme0n1/size", "2000000000\n");
	tree_put(root, "sys/block/nvme0n1/queue/rotational", "0\n");
	tree_put(root, "sys/block/nvme0n1/device/serial", "S4EWNX0R123456  \n");
	tree_put(root, "sys/block/nvme0n1/device/model", "Samsung SSD 980\n");
	tree_put(root, "sys/block/vda/size", "1\n");
	tree_put(root, "sys/block/vda/serial", "overlayblk\n");
	tree_put(root, "sys/block/vda/queue/rotational", "1\n");
	tree_put(root, "sys/block/sr0/removable", "1\n");
	tree_put(root, "sys/block/loop0/size", "0\n");
	tree_put(root, "sys/block/ram0/size", "0\n");
	tree_put(root, "sys/block/zram0/size", "0\n");
	tree_put(root, "sys/block/dm-0/size", "0\n");
	tree_put(root, "sys/class/dmi/id/sys_vendor", "Supermicro\n");
	tree_put(root, "sys/class/dmi/id/product_name", "AS -1114S-WN10RT\n");
	tree_put(root, "sys/class/dmi/id/product_serial", "   \n");
	tree_put(root, "sys/class/dmi/id/board_name", "H12SSW-NT\n");
	tree_put(root, "sys/class/dmi/id/bios_version", "2.4\n");

	assert_non_null(f = facts_collect_at(root));
	assert_true(json_is_string(json_object_get(json_object_get(f, "kernel"),
	    "release")));
	json_object_del(f, "kernel");
	if ((w = json_loads(want, 0, &je)) == NULL)
		fail_msg("want: %s", je.text);
	if (!json_equal(f, w)) {
		char *got = json_dumps(f, JSON_INDENT(1) | JSON_SORT_KEYS);

		fail_msg("facts differ:\n%s", got);
	}
	json_decref(w);
	json_decref(f);
	tree_free(root);
}

/* Nothing readable at all: nulls and empty lists, never NULL. */
static void
test_facts_missing_everything(void **state)
{
	json_t *f;

	(void)state;
	assert_non_null(f = facts_collect_at("/nonexistent-hv-agent-root"));
	assert_true(json_is_null(json_object_get(json_object_get(f, "cpu"),
	    "model")));
	assert_true(json_is_null(json_object_get(json_object_get(f, "cpu"),
	    "count")));
	assert_true(json_is_null(json_object_get(json_object_get(f, "memory"),
	    "total_bytes")));
	assert_int_equal(json_array_size(json_object_get(f, "nics")), 0);
	assert_true(json_is_array(json_object_get(f, "nics")));
	assert_int_equal(json_array_size(json_object_get(f, "disks")), 0);
	assert_true(json_is_array(json_object_get(f, "disks")));
	assert_true(json_is_null(json_object_get(json_object_get(f, "dmi"),
	    "sys_vendor")));
	assert_true(json_is_string(json_object_get(json_object_get(f, "kernel"),
	    "release")));
	json_decref(f);
}

static void
test_telemetry_real(void **state)
{
	static char names[512][256];
	struct telemetry t;
	struct sysinfo si;
	struct statvfs sv;
	json_t *s1 = NULL, *s2 = NULL, *cpu, *mem, *nics, *root_disk;
	int64_t t0;
	double pct;
	int n;

	(void)state;
	assert_int_equal(telemetry_init(&t), 0);
	t0 = now_ms();
	assert_int_equal(telemetry_sample(&t, t0, &s1), 0);
	assert_true(json_is_null(json_object_get(json_object_get(s1, "cpu"),
	    "percent")));
	usleep(200 * 1000);
	assert_int_equal(telemetry_sample(&t, now_ms(), &s2), 0);

	cpu = json_object_get(s2, "cpu");
	assert_true(json_is_real(json_object_get(cpu, "percent")));
	pct = json_real_value(json_object_get(cpu, "percent"));
	assert_true(pct >= 0.0 && pct <= 100.0);
	assert_int_equal(json_integer_value(json_object_get(cpu, "count")),
	    sysconf(_SC_NPROCESSORS_ONLN));
	assert_int_equal(json_array_size(json_object_get(s2, "load")), 3);

	mem = json_object_get(s2, "memory");
	assert_int_equal(sysinfo(&si), 0);
	assert_int_equal(json_integer_value(json_object_get(mem, "total_bytes")),
	    (json_int_t)si.totalram * si.mem_unit);
	assert_int_equal(json_integer_value(json_object_get(mem, "used_bytes")),
	    json_integer_value(json_object_get(mem, "total_bytes")) -
	    json_integer_value(json_object_get(mem, "available_bytes")));
	assert_true(json_integer_value(json_object_get(mem, "used_bytes")) > 0);

	/* Both samples saw each interface, so each has a rate now. */
	nics = json_object_get(s2, "nics");
	assert_null(find_by(nics, "name", "lo"));
	n = list_dir("/sys/class/net", names, 512);
	assert_int_equal(json_array_size(nics), n - 1);
	for (int i = 0; i < n; i++) {
		json_t *nic = find_by(nics, "name", names[i]);

		if (strcmp(names[i], "lo") == 0)
			continue;
		assert_non_null(nic);
		assert_true(json_is_integer(json_object_get(nic, "rx_bps")));
		assert_true(json_integer_value(json_object_get(nic, "rx_bps")) >= 0);
		assert_true(json_is_integer(json_object_get(nic, "tx_bps")));
		assert_true(json_is_null(json_object_get(find_by(json_object_get(s1,
		    "nics"), "name", names[i]), "rx_bps")));
	}

	assert_non_null(root_disk = find_by(json_object_get(s2, "disks"),
	    "mount", "/"));
	assert_int_equal(statvfs("/", &sv), 0);
	assert_int_equal(json_integer_value(json_object_get(root_disk,
	    "total_bytes")), (json_int_t)sv.f_blocks * sv.f_frsize);
	assert_true(json_integer_value(json_object_get(root_disk, "free_bytes")) <=
	    json_integer_value(json_object_get(root_disk, "total_bytes")));
	assert_null(find_by(json_object_get(s2, "disks"), "mount", "/proc"));
	assert_true(json_is_array(json_object_get(s2, "temps")));
	assert_true(json_is_null(json_object_get(s2, "xen")));

	json_decref(s1);
	json_decref(s2);
	telemetry_dispose(&t);
	telemetry_dispose(&t);
	telemetry_dispose(NULL);
}

static void
expect_json(json_t *got, const char *want)
{
	json_error_t je;
	json_t *w = json_loads(want, JSON_DECODE_ANY, &je);

	if (w == NULL)
		fail_msg("want '%s': %s", want, je.text);
	if (!json_equal(got, w)) {
		char *s = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);

		fail_msg("got %s\nwant %s", s, want);
	}
	json_decref(w);
}

/* Everything written to stderr while F(ARG) runs. */
static void
capture_stderr(void (*f)(void *), void *arg, char *out, size_t cap)
{
	FILE *tmp = tmpfile();
	int saved = dup(2);
	size_t n;

	assert_non_null(tmp);
	fflush(stderr);
	dup2(fileno(tmp), 2);
	f(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(out, 1, cap - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
}

struct sample_try {
	struct telemetry *t;
	int64_t now;
	json_t *out;
};

static void
sample_try(void *arg)
{
	struct sample_try *st = arg;

	assert_int_equal(telemetry_sample(st->t, st->now, &st->out), 0);
}

/* Known counters under a fake /proc and /sys, samples at chosen times. */
static void
test_telemetry_fake_tree(void **state)
{
	char *root = tree_new();
	struct telemetry t;
	struct stat st_root, st_etc;
	json_t *s;
	size_t ndisks;

	(void)state;
	tree_put(root, "proc/stat", "cpu  100 0 100 700 50 0 0 50 0 0\n"
	    "cpu0 50 0 50 350 25 0 0 25 0 0\ncpu1 50 0 50 350 25 0 0 25 0 0\n"
	    "intr 0\n");
	tree_put(root, "proc/loadavg", "0.50 0.25 0.10 1/100 1234\n");
	tree_put(root, "proc/meminfo", "MemTotal: 1000 kB\nMemFree: 500 kB\n"
	    "MemAvailable: 600 kB\nBuffers: 1 kB\nCached: 2 kB\n"
	    "SwapTotal: 0 kB\nSwapFree: 0 kB\n");
	tree_put(root, "proc/net/dev", NET_DEV_HEAD
	    "    lo: 9 9 0 0 0 0 0 0 9 9 0 0 0 0 0 0\n"
	    "  eth0: 1000 10 1 0 0 0 0 0 5000 20 2 0 0 0 0 0\n"
	    "vif1.0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
	/* /etc shares "/"'s filesystem on most hosts: one entry, not two. */
	tree_put(root, "proc/self/mounts", "/dev/vda / ext4 rw 0 0\n"
	    "proc /proc proc rw 0 0\n/dev/vda /etc ext4 rw 0 0\n"
	    "/dev/x /nonexistent-hv-agent-mount ext4 rw 0 0\n");
	tree_put(root, "sys/class/hwmon/hwmon0/name", "coretemp\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp1_input", "45000\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp1_label", "Package id 0\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp2_input", "47500\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp10_input", "-5000\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp1_max", "100000\n");
	tree_put(root, "sys/class/hwmon/hwmon1/temp1_input", "38000\n");
	tree_put(root, "sys/class/hwmon/hwmon1/temp_input", "1\n");
	tree_put(root, "sys/class/hwmon/hwmon2/name", "nvme\n");
	tree_put(root, "sys/class/hwmon/hwmon2/temp1_input", "garbage\n");

	assert_int_equal(telemetry_init_at(&t, root), 0);
	assert_int_equal(telemetry_sample(&t, 1000, &s), 0);
	expect_json(json_object_get(s, "cpu"), "{\"percent\": null, \"count\": 2}");
	expect_json(json_object_get(s, "load"), "[0.5, 0.25, 0.1]");
	expect_json(json_object_get(s, "memory"), "{\"total_bytes\": 1024000,"
	    " \"available_bytes\": 614400, \"used_bytes\": 409600}");
	expect_json(json_object_get(s, "nics"), "["
	    "{\"name\": \"eth0\", \"rx_bytes\": 1000, \"tx_bytes\": 5000,"
	    " \"rx_errors\": 1, \"tx_errors\": 2, \"rx_bps\": null,"
	    " \"tx_bps\": null},"
	    "{\"name\": \"vif1.0\", \"rx_bytes\": 0, \"tx_bytes\": 0,"
	    " \"rx_errors\": 0, \"tx_errors\": 0, \"rx_bps\": null,"
	    " \"tx_bps\": null}]");
	/* Numeric order (temp2 before temp10); no name: the chip's dir. */
	expect_json(json_object_get(s, "temps"), "["
	    "{\"sensor\": \"coretemp\", \"label\": \"Package id 0\","
	    " \"celsius\": 45.0},"
	    "{\"sensor\": \"coretemp\", \"label\": \"temp2\", \"celsius\": 47.5},"
	    "{\"sensor\": \"coretemp\", \"label\": \"temp10\", \"celsius\": -5.0},"
	    "{\"sensor\": \"hwmon1\", \"label\": \"temp1\", \"celsius\": 38.0}]");
	expect_json(json_object_get(s, "xen"), "null");
	assert_int_equal(stat("/", &st_root), 0);
	assert_int_equal(stat("/etc", &st_etc), 0);
	ndisks = st_root.st_dev == st_etc.st_dev ? 1 : 2;
	assert_int_equal(json_array_size(json_object_get(s, "disks")), ndisks);
	assert_non_null(find_by(json_object_get(s, "disks"), "mount", "/"));
	json_decref(s);

	/* One second later: +30 busy of +100 jiffies; eth0 +125000 bytes in;
	 * its tx counter was reset; vif1.0 moved; vif2.0 is new. */
	tree_put(root, "proc/stat", "cpu  130 0 100 760 50 0 0 60 0 0\n"
	    "cpu0 65 0 50 380 25 0 0 30 0 0\ncpu1 65 0 50 380 25 0 0 30 0 0\n"
	    "intr 0\n");
	tree_put(root, "proc/net/dev", NET_DEV_HEAD
	    "vif2.0: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n"
	    "vif1.0: 250 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	    "  eth0: 126000 10 1 0 0 0 0 0 4000 20 2 0 0 0 0 0\n");
	tree_put(root, "sys/class/hwmon/hwmon0/temp1_input", "46000\n");
	/* Not seen until the next walk, TELEMETRY_RESCAN_MS later. */
	tree_put(root, "sys/class/hwmon/hwmon0/temp3_input", "50000\n");
	assert_int_equal(telemetry_sample(&t, 2000, &s), 0);
	expect_json(json_object_get(s, "cpu"), "{\"percent\": 30.0, \"count\": 2}");
	expect_json(json_object_get(s, "nics"), "["
	    "{\"name\": \"vif2.0\", \"rx_bytes\": 5, \"tx_bytes\": 5,"
	    " \"rx_errors\": 0, \"tx_errors\": 0, \"rx_bps\": null,"
	    " \"tx_bps\": null},"
	    "{\"name\": \"vif1.0\", \"rx_bytes\": 250, \"tx_bytes\": 0,"
	    " \"rx_errors\": 0, \"tx_errors\": 0, \"rx_bps\": 2000,"
	    " \"tx_bps\": 0},"
	    "{\"name\": \"eth0\", \"rx_bytes\": 126000, \"tx_bytes\": 4000,"
	    " \"rx_errors\": 1, \"tx_errors\": 2, \"rx_bps\": 1000000,"
	    " \"tx_bps\": null}]");
	assert_int_equal(json_array_size(json_object_get(s, "temps")), 4);
	expect_json(json_array_get(json_object_get(s, "temps"), 0),
	    "{\"sensor\": \"coretemp\", \"label\": \"Package id 0\","
	    " \"celsius\": 46.0}");
	json_decref(s);

	/* Nothing moved: no percent rather than a division by zero.  A
	 * broken loadavg nulls its section only, with one warning.  The walk
	 * finds temp3. */
	tree_put(root, "proc/loadavg", "garbage\n");
	{
		struct sample_try st = { &t, 2000 + TELEMETRY_RESCAN_MS, NULL };
		char err[1024];

		capture_stderr(sample_try, &st, err, sizeof(err));
		assert_string_equal(err, "telemetry: /proc/loadavg: line 1: "
		    "expected load 1 as N.NN, got 'garbage'; not reported until "
		    "it recovers\n");
		s = st.out;
	}
	expect_json(json_object_get(s, "cpu"), "{\"percent\": null, \"count\": 2}");
	expect_json(json_object_get(s, "load"), "null");
	assert_true(json_is_object(json_object_get(s, "memory")));
	assert_int_equal(json_array_size(json_object_get(s, "temps")), 5);
	expect_json(json_array_get(json_object_get(s, "temps"), 2),
	    "{\"sensor\": \"coretemp\", \"label\": \"temp3\", \"celsius\": 50.0}");
	/* 58 s passed since sample 2 and vif1.0's rx is unchanged. */
	expect_json(json_object_get(find_by(json_object_get(s, "nics"), "name",
	    "vif1.0"), "rx_bps"), "0");
	json_decref(s);

	/* The same time again: no interval, so no rates; and loadavg, still
	 * broken, is not logged a second time. */
	{
		struct sample_try st = { &t, 2000 + TELEMETRY_RESCAN_MS, NULL };
		char err[1024];

		capture_stderr(sample_try, &st, err, sizeof(err));
		assert_string_equal(err, "");
		s = st.out;
	}
	expect_json(json_object_get(s, "load"), "null");
	expect_json(json_object_get(find_by(json_object_get(s, "nics"), "name",
	    "eth0"), "rx_bps"), "null");
	json_decref(s);
	telemetry_dispose(&t);
	tree_free(root);
}

static void
test_telemetry_init_refusals(void **state)
{
	char *root = tree_new();
	struct telemetry t;
	json_t *s = (json_t *)1;

	(void)state;
	/* A zeroed struct (the caller's calloc) must not close fd 0. */
	if (fcntl(0, F_GETFD) == -1)
		assert_int_equal(open("/dev/null", O_RDONLY), 0);
	memset(&t, 0, sizeof(t));
	telemetry_dispose(&t);
	assert_int_not_equal(fcntl(0, F_GETFD), -1);
	assert_int_equal(telemetry_sample(&t, 0, &s), -EINVAL);

	assert_int_equal(telemetry_init_at(&t, "/nonexistent-hv-agent-root"),
	    -ENOENT);
	assert_null(t.buf);
	assert_false(t.live);
	s = (json_t *)1;
	assert_int_equal(telemetry_sample(&t, 0, &s), -EINVAL);
	assert_null(s);
	/* No proc/ under the root: refused. */
	assert_int_equal(telemetry_init_at(&t, root), -ENOENT);
	/* An empty proc/: every section null, no crash, a valid object. */
	tree_put(root, "proc/.keep", "");
	assert_int_equal(telemetry_init_at(&t, root), 0);
	assert_int_equal(telemetry_sample(&t, 5, &s), 0);
	expect_json(s, "{\"cpu\": null, \"load\": null, \"memory\": null,"
	    " \"nics\": null, \"disks\": [], \"temps\": [], \"xen\": null}");
	json_decref(s);
	telemetry_dispose(&t);
	tree_free(root);
}

struct xen_try {
	int procfd;
	int r;
	struct xen *x;
};

static void
xen_try_open(void *arg)
{
	struct xen_try *t = arg;

	t->r = xen_open_at(t->procfd, &t->x);
}

static void
xen_try_open_real(void *arg)
{
	struct xen_try *t = arg;

	t->r = xen_open(&t->x);
}

static void
test_xen_absent(void **state)
{
	struct xen_try t = { -1, 0, (struct xen *)1 };
	char *root = tree_new(), err[4096], path[4096];

	(void)state;
	/* This machine has no Xen: -ENODEV, quietly, and no handle. */
	capture_stderr(xen_try_open_real, &t, err, sizeof(err));
	assert_int_equal(t.r, -ENODEV);
	assert_null(t.x);
	assert_string_equal(err, "");

	/* A domU has xenfs but no control_d. */
	snprintf(path, sizeof(path), "%s/proc", root);
	tree_put(root, "proc/xen/capabilities", "\n");
	assert_true((t.procfd = open(path, O_PATH | O_DIRECTORY)) >= 0);
	t.x = (struct xen *)1;
	capture_stderr(xen_try_open, &t, err, sizeof(err));
	assert_int_equal(t.r, -ENODEV);
	assert_null(t.x);
	assert_string_equal(err, "");

	/*
	 * control_d without a hypervisor: libxl is asked and fails.  Its
	 * chatter stays at debug level; exactly one line is ours.
	 */
	tree_put(root, "proc/xen/capabilities", "control_d\n");
	t.x = (struct xen *)1;
	capture_stderr(xen_try_open, &t, err, sizeof(err));
	assert_true(t.r < 0);
	assert_int_not_equal(t.r, -ENODEV);
	assert_null(t.x);
	if (strncmp(err, "xen: cannot open libxl: ", 24) != 0 ||
	    strchr(err, '\n') != err + strlen(err) - 1)
		fail_msg("stderr was: '%s'", err);
	close(t.procfd);
	xen_close(NULL);
	tree_free(root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_stat_sample),
		cmocka_unit_test(test_parse_meminfo_sample),
		cmocka_unit_test(test_parse_net_dev_sample),
		cmocka_unit_test(test_parse_loadavg_cpuinfo_mounts_samples),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_prefixes),
		cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_parse_attrs),
		cmocka_unit_test(test_parse_vpd80),
		cmocka_unit_test(test_read_refusals),
		cmocka_unit_test(test_read_real_proc_fresh),
		cmocka_unit_test(test_real_proc),
		cmocka_unit_test(test_facts_real),
		cmocka_unit_test(test_facts_fake_tree),
		cmocka_unit_test(test_facts_missing_everything),
		cmocka_unit_test(test_telemetry_real),
		cmocka_unit_test(test_telemetry_fake_tree),
		cmocka_unit_test(test_telemetry_init_refusals),
		cmocka_unit_test(test_xen_absent),
	};

	log_init(true, LOG_LEVEL_WARN, "test_agent_procfs");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
