/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's core header: the handle every layer gets and the configuration.
 * Each layer of daemon/ (wire, store, net, fleet, api: see the README's
 * architecture section) has its own header for what it offers upward and
 * includes the one below it; a file includes only its own layer's header.
 *
 * struct hvd is a handle, not a god-struct: it holds the event base, the
 * active configuration and the database, which every subsystem needs.  Each
 * subsystem keeps its own state static in its file behind <mod>_init() and
 * <mod>_shutdown().
 */
#ifndef HVD_H
#define HVD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include <stdio.h>

#include <jansson.h>

#include "api.h"
#include "vmspec.h"
#include "log.h"

#define HVD_CONF_DEFAULT	"/etc/hypervisor/hvd.conf"
#define HVD_IPXE_DIR		"/usr/lib/ipxe"		/* Debian's ipxe package */
#define HVD_CONF_MAX_BYTES	(1024 * 1024)
#define HVD_SOCKET_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct event_base;
struct MHD_Connection;
struct db;

struct hvd_config {
	char state_dir[PATH_MAX];
	char api_socket[HVD_SOCKET_PATH_MAX + 1];	/* "" = no unix socket */
	unsigned api_socket_mode;
	enum api_role api_socket_peer_role;	/* peers neither root nor hvd */
	bool api_tcp;				/* api-listen given */
	char api_listen_host[64];		/* numeric IPv4 or IPv6 */
	uint16_t api_listen_port;		/* 0 = ephemeral */
	bool api_tls;				/* TLS on the TCP API */
	char api_tls_cert[PATH_MAX];		/* "" = state-dir/tls/api.crt */
	char api_tls_key[PATH_MAX];		/* "" = state-dir/tls/api.key */
	bool api_plaintext_tokens_loopback;	/* api-tls off: tokens from
						 * 127/8 and ::1 only */
	size_t api_body_max;
	enum log_level log_level;
	bool agent_listen;			/* agent-listen given */
	char agent_listen_host[64];
	uint16_t agent_listen_port;
	unsigned heartbeat_ms;			/* agents' telemetry interval */
	unsigned telemetry_step_s;		/* history resolution */
	unsigned telemetry_retention_s;		/* history length */
	unsigned events_max_age_s;		/* events retention: age */
	unsigned events_max_rows;		/* ... and row count */
	/* Network boot (issue 3). */
	char boot_root[PATH_MAX];		/* served files: iPXE, xen, ... */
	char boot_templates[PATH_MAX];		/* operator's iPXE overrides */
	char source_archive[PATH_MAX];		/* GET /source.tar.gz (AGPL) */
	char alpine_mirror[PATH_MAX];		/* served at /alpine/ if present */
	char boot_server[64];			/* address clients use, "" = auto */
	bool boot_http;				/* boot-http-listen given */
	char boot_http_host[64];
	uint16_t boot_http_port;
	bool tftp;				/* tftp-listen given */
	char tftp_host[64];
	uint16_t tftp_port;
	unsigned tftp_blksize_max;
	unsigned tftp_windowsize_max;
	unsigned tftp_timeout_ms;
	unsigned tftp_retries;
	enum dhcp_mode { DHCP_OFF, DHCP_PROXY, DHCP_FULL } dhcp_mode;
	char dhcp_interface[16];		/* IFNAMSIZ */
	char dhcp_range_start[16], dhcp_range_end[16];	/* IPv4, full mode */
	char dhcp_router[16], dhcp_dns[16];	/* "" = none */
	unsigned dhcp_lease_s;
	/* Offers to MACs hvd does not know (full mode). */
	unsigned dhcp_offer_max;		/* held at once: addresses, or */
	bool dhcp_offer_max_pct;		/* ... percent of dhcp-range */
	unsigned dhcp_offer_rate;		/* per second */
	bool lab_auto_adopt;			/* adopt unknown hosts (labs only) */
	bool mesh_anchor;			/* hvd's own VXLAN devices */
	uint64_t image_max_bytes;		/* largest image upload */
	/* Per-client limits of the TCP listeners (API and boot). */
	unsigned http_conn_max;			/* connections per listener */
	unsigned http_conn_per_ip;		/* ... per source address */
	unsigned http_conn_reserve;		/* kept for new addresses */
	unsigned http_header_timeout_s;		/* headers complete within */
	unsigned http_idle_timeout_s;		/* inactivity closes */
};

struct hvd {
	struct event_base *base;
	struct hvd_config *conf;	/* owned; swapped on SIGHUP */
	const char *conf_path;		/* NULL: built-in local config */
	struct db *db;			/* owned */
	time_t started_wall;
	struct timespec started_mono;
};

/* Monotonic seconds, the "now" passed to decisions (CONVENTIONS 11). */
int64_t hvd_now_mono(void);
int64_t hvd_now_mono_ms(void);		/* the same, in milliseconds */
int64_t hvd_now_wall(void);
int64_t hvd_now_wall_ms(void);		/* the same, in milliseconds */

#endif
