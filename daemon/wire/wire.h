/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's wire layer: pure functions over buffers: the config parser, tokens, DHCP and TFTP
 * packets, boot queries, the overlay path and archive, placement.  No I/O
 * beyond what a caller hands in, no database, no event loop.
 */
#ifndef HVD_WIRE_H
#define HVD_WIRE_H

#include "hvd.h"
#include "apkovl.h"

/* config.c */
struct hvd_config *config_new(void);
void config_free(struct hvd_config *conf);
void config_local(struct hvd_config *conf, const char *dir);
int config_parse(struct hvd_config *conf, const char *buf, size_t len,
    const char *fname, char *err, size_t errlen);
int config_validate(const struct hvd_config *conf, const char *fname,
    char *err, size_t errlen);
struct hvd_config *config_load(const char *path, char *err, size_t errlen);
/* Names the first setting that a reload cannot change, or NULL. */
const char *config_restart_needed(const struct hvd_config *old,
    const struct hvd_config *new);

/* session_parse.c: the dashboard's cookie, login body and Last-Event-ID. */
#define SESSION_ID_LEN		32	/* bytes; the cookie is its hex */
#define SESSION_LOGIN_MAX	4096	/* bytes of login body */
int session_cookie_parse(const char *s, uint8_t id[SESSION_ID_LEN]);
/* forward: AUTH_TOKEN_STRLEN below */
int session_login_parse(const char *body, size_t len, char token[],
    const char **why);
int session_last_event_id(const char *s, uint64_t *id);

/* auth.c */
#define AUTH_ID_HEX	16			/* public token id */
#define AUTH_SECRET_LEN	32			/* bytes of secret */
#define AUTH_HASH_LEN	32
/* "hvt_" id "_" secret-hex, plus NUL */
#define AUTH_TOKEN_STRLEN (4 + AUTH_ID_HEX + 1 + 2 * AUTH_SECRET_LEN + 1)
int auth_token_generate(char token[AUTH_TOKEN_STRLEN],
    char id[AUTH_ID_HEX + 1], uint8_t hash[AUTH_HASH_LEN]);
int auth_token_parse(const char *s, size_t len, char id[AUTH_ID_HEX + 1],
    uint8_t secret[AUTH_SECRET_LEN]);
void auth_secret_hash(const uint8_t secret[AUTH_SECRET_LEN],
    uint8_t hash[AUTH_HASH_LEN]);
bool auth_role_allows(enum api_role have, enum api_role need);
#define AUTH_BOOT_TOKEN_STRLEN	(4 + 2 * AUTH_SECRET_LEN + 1)
void auth_boot_token_generate(char token[AUTH_BOOT_TOKEN_STRLEN],
    uint8_t hash[AUTH_HASH_LEN]);
int auth_boot_token_hash(const char *token, uint8_t hash[AUTH_HASH_LEN]);

/* blob.c: refcounted immutable bytes, shared by cached responses. */
struct blob *blob_new(const char *data, size_t len);
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b);
const char *blob_data(const struct blob *b);
size_t blob_len(const struct blob *b);

/* boot_parse.c: pure parsers behind HTTP boot (fuzzed). */
struct boot_query {
	unsigned present;
	char mac[18];		/* aa:bb:cc:dd:ee:ff */
	char uuid[37];		/* "" when the machine has none */
	char serial[65], product[65];
	char buildarch[12];
};
int boot_query_set(struct boot_query *q, const char *key, const char *value,
    char *err, size_t errlen);
int boot_query_check(const struct boot_query *q, char *err, size_t errlen);
int boot_range_parse(const char *h, uint64_t size, uint64_t *off,
    uint64_t *len);
int boot_render(const char *tpl, const char *const *vars, char **out,
    char *err, size_t errlen);

/* sched.c: VM placement, a pure function (no overcommit). */
struct sched_host {
	const char *name;
	const char *labels;	/* JSON object text */
	bool up, has_xen;
	bool holds_group;	/* runs a VM of the spec's anti-affinity group */
	uint64_t free_mib;	/* Xen's free memory less VMs not running yet */
	unsigned free_vcpus;	/* physical CPUs less placed vCPUs */
	bool draining;		/* hvctl host drain: takes no new VMs */
};
/* 0 and *pick, or -ENOSPC with err saying host by host why nothing fits. */
int sched_pick(const struct sched_host *hosts, size_t n,
    const struct vm_spec *s, size_t *pick, char *err, size_t errlen);

/* dhcp_proto.c: the DHCP wire format (RFC 2131, 2132; PXE 2.1), pure
 * functions over caller-owned buffers (fuzzed). */
#define DHCP_SERVER_PORT	67
#define DHCP_CLIENT_PORT	68
#define DHCP_PROXY_PORT		4011
#define DHCP_PACKET_MAX		1472	/* largest datagram parsed */
#define DHCP_REPLY_MAX		576	/* every client accepts this much */
#define DHCP_FILE_MAX		127	/* the BOOTP file field, less its NUL */
enum dhcp_type {
	DHCP_DISCOVER = 1, DHCP_OFFER, DHCP_REQUEST, DHCP_DECLINE, DHCP_ACK,
	DHCP_NAK, DHCP_RELEASE, DHCP_INFORM
};
struct dhcp_opt {
	uint16_t off;			/* of the value, in dhcp_msg.buf */
	uint8_t len;
	bool present;
};
struct dhcp_msg {
	const uint8_t *buf;		/* the parsed buffer, not owned */
	uint8_t op, hops, type;		/* type: option 53 */
	uint32_t xid;			/* as on the wire */
	uint16_t secs, flags;		/* as on the wire */
	uint32_t ciaddr, yiaddr, siaddr, giaddr;	/* network order */
	uint8_t chaddr[6];
	char file[DHCP_FILE_MAX + 1];	/* "" when overloaded */
	struct dhcp_opt opt[256];	/* the first of each code */
};
/* What a client boots, from options 60, 77, 93 and 175. */
enum dhcp_client {
	DHCP_CLIENT_OTHER,		/* no "PXEClient" vendor class */
	DHCP_CLIENT_BIOS,		/* PXE, architecture 0 */
	DHCP_CLIENT_EFI64,		/* PXE, architecture 7 or 9 */
	DHCP_CLIENT_IPXE,		/* already iPXE: gets the stage-1 URL */
	DHCP_CLIENT_UNSUPPORTED,	/* PXE, no loader for its architecture */
};
/* A reply in words; dhcp_build() puts it on the wire. */
struct dhcp_answer {
	uint8_t type;			/* DHCP_OFFER, DHCP_ACK or DHCP_NAK */
	uint32_t yiaddr, siaddr, server_id;	/* network order */
	bool proxy;			/* option 60 "PXEClient": proxyDHCP */
	bool pxe_bypass;		/* option 43: skip boot server discovery */
	const char *file;		/* boot file or URL, NULL: none */
	uint32_t mask, router, dns;	/* network order, 0: omitted */
	uint32_t lease_s;		/* 0: omitted, with T1 and T2 */
	const char *message;		/* option 56 of a NAK */
};
/* op: 1 for requests (what hvd serves), 2 for replies (tests). */
int dhcp_parse(const uint8_t *buf, size_t len, uint8_t op, struct dhcp_msg *m,
    char *err, size_t errlen);
const uint8_t *dhcp_opt_data(const struct dhcp_msg *m, uint8_t code,
    size_t *len);
bool dhcp_opt_addr(const struct dhcp_msg *m, uint8_t code, uint32_t *addr);
enum dhcp_client dhcp_classify(const struct dhcp_msg *m, uint16_t *arch);
const char *dhcp_client_name(enum dhcp_client c);
/* -EMSGSIZE if the answer does not fit cap (at least 300) bytes. */
int dhcp_build(const struct dhcp_msg *req, const struct dhcp_answer *a,
    uint8_t *out, size_t cap, size_t *len);

/* dhcp_proto.c: the site a reply is built for, and the proxy policy. */
struct dhcp_site {
	enum dhcp_mode mode;
	uint32_t addr, mask;		/* the interface's, network order */
	uint32_t boot_server;		/* siaddr, network order */
	char url[128];			/* stage-1 script, for iPXE clients */
	uint32_t router, dns;		/* network order, 0: none */
	uint32_t lease_s;
};
/* Fills a's boot fields for client c; false if hvd has no boot for c. */
bool dhcp_boot_answer(const struct dhcp_site *s, enum dhcp_client c,
    struct dhcp_answer *a);
/* The proxyDHCP answer to m received on port; -ENOENT with *why if none. */
int dhcp_proxy_answer(const struct dhcp_site *s, const struct dhcp_msg *m,
    uint16_t port, struct dhcp_answer *a, const char **why);

/* tftp_proto.c: TFTP packets (RFC 1350, 2347, 2348, 2349, 7440) and the
 * send window of a read transfer, as pure functions over buffers and
 * explicit state; tftp.c does every system call. */
enum tftp_op {
	TFTP_RRQ = 1, TFTP_WRQ, TFTP_DATA, TFTP_ACK, TFTP_ERROR, TFTP_OACK,
};
enum tftp_errcode {
	TFTP_EUNDEF = 0,	/* not defined, see the message */
	TFTP_ENOTFOUND = 1,
	TFTP_EACCESS = 2,
	TFTP_EILLEGAL = 4,
	TFTP_EOPTION = 8,	/* RFC 2347: option negotiation failed */
};
enum tftp_mode { TFTP_MODE_OCTET, TFTP_MODE_NETASCII };
#define TFTP_HDR_LEN		4
#define TFTP_REQUEST_MAX	512	/* RFC 2347, options included */
#define TFTP_FILENAME_MAX	255
#define TFTP_OPTNAME_MAX	32
#define TFTP_OPTVALUE_MAX	64
#define TFTP_OPTIONS_MAX	16
#define TFTP_BLKSIZE_MIN	8	/* RFC 2348 */
#define TFTP_BLKSIZE_MAX	65464
#define TFTP_WINDOWSIZE_MAX	65535	/* RFC 7440 */
#define TFTP_TIMEOUT_MAX_S	255	/* RFC 2349 */
#define TFTP_CLIENT_TIMEOUT_MAX_S 60	/* longer requests are not acknowledged */
#define TFTP_ERRMSG_MAX		128
#define TFTP_RTO_MIN_MS		100	/* floor of the adaptive retransmit timer */
struct tftp_request {
	enum tftp_op op;			/* TFTP_RRQ or TFTP_WRQ */
	char filename[TFTP_FILENAME_MAX + 1];	/* raw bytes, NUL-free */
	enum tftp_mode mode;
	unsigned blksize;		/* 0: not requested */
	unsigned windowsize;		/* 0: not requested */
	unsigned timeout_s;		/* 0: not requested */
	bool tsize;
	unsigned ignored;		/* unknown options, ignored (RFC 2347) */
};
/* Parses a request.  0, or -EINVAL with the TFTP error code to answer in
 * *code and err naming the rejected token (escaped, bounded). */
int tftp_request_parse(const uint8_t *buf, size_t len, struct tftp_request *req,
    uint16_t *code, char *err, size_t errlen);
/* hvd's policy on a parsed request: read-only, octet only, no absolute
 * path, no "..", printable ASCII names.  Same return as the parser. */
int tftp_request_check(const struct tftp_request *req, uint16_t *code,
    char *err, size_t errlen);
struct tftp_limits {
	unsigned blksize_max, windowsize_max, timeout_ms;
};
struct tftp_params {
	unsigned blksize, windowsize, timeout_ms;
	bool oack;			/* answer with an OACK first */
	bool ack_blksize, ack_windowsize, ack_timeout, ack_tsize;
	unsigned timeout_s;		/* echoed when ack_timeout */
	uint64_t tsize;
};
void tftp_negotiate(const struct tftp_request *req, const struct tftp_limits *lim,
    uint64_t size, struct tftp_params *p);
/* Builders return the packet length, 0 if cap is too small. */
size_t tftp_oack_build(const struct tftp_params *p, uint8_t *buf, size_t cap);
size_t tftp_error_build(uint16_t code, const char *msg, uint8_t *buf, size_t cap);
void tftp_data_header(uint64_t block, uint8_t hdr[TFTP_HDR_LEN]);
struct tftp_reply {
	enum tftp_op op;		/* TFTP_ACK or TFTP_ERROR */
	uint16_t block;			/* ACK */
	uint16_t code;			/* ERROR */
	char msg[TFTP_ERRMSG_MAX];	/* ERROR, escaped */
};
/* Parses what a client sends during a transfer: ACK or ERROR only. */
int tftp_reply_parse(const uint8_t *buf, size_t len, struct tftp_reply *r,
    char *err, size_t errlen);
/* Copies len bytes for a log line: printable ASCII kept, the rest as \xNN,
 * "..." when cut; always NUL-terminated. */
void tftp_escape(const uint8_t *src, size_t len, char *dst, size_t cap);
/* The send window of one transfer: blocks are numbered from 1 without
 * wrapping (the wire carries the low 16 bits), go-back-N on a partial ACK,
 * timer-driven resends that probe up to one window further (tftp_proto.c
 * says why),
 * an adaptive retransmit timer (RFC 6298 estimator, Karn's rule) between
 * TFTP_RTO_MIN_MS and the negotiated timeout, and a deadline of
 * timeout * (retries + 1) without progress. */
#define TFTP_REPEAT_MIN_MS	500	/* between answers to a repeated request */
struct tftp_window {
	uint64_t nblocks;	/* size / blksize + 1: the last one is short */
	uint64_t acked;		/* highest block acknowledged */
	uint64_t sent;		/* last block in flight */
	unsigned windowsize;
	bool oack;		/* the OACK awaits ACK 0 */
	bool answered;		/* the client acknowledged something */
	bool resent;		/* the flight was retransmitted: no RTT sample */
	bool probe_ok;		/* windowsize negotiated: resends may probe */
	bool have_rtt;
	bool at_deadline;	/* the timer was armed for the deadline */
	unsigned extra;		/* blocks past the window, one per resend */
	unsigned timeout_ms, retries, rto_ms;
	int64_t srtt8, rttvar4;	/* ms, scaled by 8 and 4 */
	int64_t sent_at, progress_at;	/* monotonic ms */
	uint64_t retransmits;	/* timer-driven resends */
};
enum tftp_win_event { TFTP_WIN_IGNORE, TFTP_WIN_MORE, TFTP_WIN_DONE };
enum tftp_win_timer { TFTP_TIMER_RESEND, TFTP_TIMER_WAIT, TFTP_TIMER_GIVEUP };
void tftp_window_init(struct tftp_window *w, uint64_t size,
    const struct tftp_params *p, unsigned retries, int64_t now);
/* What to send now: *count == 0 means the OACK. */
void tftp_window_span(const struct tftp_window *w, uint64_t *first,
    unsigned *count);
/* Records that the span went out; returns the ms until the timer fires. */
unsigned tftp_window_sent(struct tftp_window *w, bool retransmit, int64_t now);
/* Ms until the transfer gives up without progress, at least 1. */
unsigned tftp_window_deadline(const struct tftp_window *w, int64_t now);
/* The client repeated its request: true to resend the span now. */
bool tftp_window_repeat(const struct tftp_window *w, int64_t now);
enum tftp_win_event tftp_window_ack(struct tftp_window *w, uint16_t block,
    int64_t now);
/* The timer fired: resend the span, wait (until the deadline), or give up. */
enum tftp_win_timer tftp_window_expired(struct tftp_window *w, int64_t now);

/* http_target.c: the request target as libmicrohttpd parses it. */
#define HTTP_TARGET_MAX		8192	/* bytes of request target: 414 */
#define HTTP_ARGS_MAX		64	/* query arguments: 414 */
#define HTTP_HEADERS_MAX	64	/* header fields: 431 */
#define HTTP_HEADER_BYTES_MAX	16384	/* their names and values: 431 */
struct MHD_Connection;
struct http_target {		/* filled while libmicrohttpd parses a request */
	bool nul;		/* a NUL in the target, raw or %00 */
	bool args_cut;		/* the query was too big to let it parse */
	size_t target_len;
	unsigned nargs;
};
/* From libmicrohttpd's URI log callback, with the raw request target. */
void http_target_scan(struct http_target *e, char *target);
/* e's request was parsed (or is gone): later unescapes are not its. */
void http_target_done(const struct http_target *e);
/* libmicrohttpd's unescape callback. */
size_t http_target_unescape(void *cls, struct MHD_Connection *conn, char *s);

#endif
