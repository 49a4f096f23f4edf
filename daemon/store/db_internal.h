/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Shared by db*.c only: the sqlite3 handle and statement cache.  No other
 * file may include this header (CONVENTIONS 15).
 */
#ifndef HVD_DB_INTERNAL_H
#define HVD_DB_INTERNAL_H

#include <sqlite3.h>

#include "store.h"

struct db {
	sqlite3 *sql;
	char path[PATH_MAX];
	uint64_t generation;		/* bumped by every committed change */
	struct {
		void (*fn)(void *arg);
		void *arg;
	} on_commit[DB_COMMIT_SUBSCRIBERS];	/* db_on_commit() */
	char conflict[64];		/* "networks.vni" after -EEXIST */
	sqlite3_stmt *stmts[128];	/* lazily prepared, keyed by slot */
};

/* Each caller owns a fixed slot so its statement is prepared once. */
enum db_slot {
	DB_S_BEGIN, DB_S_COMMIT, DB_S_ROLLBACK,
	DB_S_EVENT_ADD, DB_S_EVENT_LIST, DB_S_EVENT_LIST_SUBJECT,
	DB_S_EVENT_PRUNE_DUE, DB_S_EVENT_PRUNE, DB_S_EVENT_SINCE,
	DB_S_NET_INSERT, DB_S_NET_GET_NAME, DB_S_NET_GET_VNI, DB_S_NET_LIST,
	DB_S_NET_UPDATE, DB_S_NET_DELETE,
	DB_S_TOKEN_INSERT, DB_S_TOKEN_GET, DB_S_TOKEN_TOUCH, DB_S_TOKEN_LIST,
	DB_S_TOKEN_DELETE,
	DB_S_COUNT_HOSTS, DB_S_COUNT_NETWORKS, DB_S_COUNT_VMS,
	DB_S_PING,
	DB_S_KEY_GET, DB_S_KEY_PUT,
	DB_S_HOST_BY_KEY, DB_S_HOST_BY_NAME, DB_S_HOST_LIST, DB_S_HOST_INSERT,
	DB_S_HOST_STATE, DB_S_HOST_SESSION, DB_S_HOST_TOKEN_USED,
	DB_S_HOST_BY_MAC,
	DB_S_LEASE_HOST_IP, DB_S_LEASE_GET, DB_S_LEASE_USED, DB_S_LEASE_CLAIM,
	DB_S_LEASE_PUT, DB_S_LEASE_RELEASE, DB_S_LEASE_DROP,
	DB_S_HOST_BY_FP, DB_S_FP_RETIRED, DB_S_HOST_SEEN_UPDATE,
	DB_S_HOST_SEEN_INSERT, DB_S_HOST_BOOT_OPEN, DB_S_HOST_OVL_CLAIM,
	DB_S_HOST_ADOPT, DB_S_HOST_IP_TAKEN, DB_S_MEMBER_CLEAR, DB_S_MEMBER_ADD,
	DB_S_FP_RETIRE, DB_S_HOST_DELETE, DB_S_HOST_REBIND, DB_S_LEASE_FORGET,
	DB_S_HOST_RETIRE, DB_S_HOST_EDIT_LABELS, DB_S_HOST_EDIT_KEYS,
	DB_S_HOST_EDIT_MOUNTS, DB_S_HOST_CONFIG, DB_S_HOST_VNIS,
	DB_S_HOST_FACTS, DB_S_HOST_UNDERLAY, DB_S_HOST_BY_ID,
	DB_S_MESH_MEMBERS, DB_S_NET_VNIS, DB_S_NET_MEMBERS_CLEAR,
	DB_S_NET_MEMBERS_ADD, DB_S_NET_ALL_OFF,
	DB_S_VM_LIST, DB_S_VM_GET, DB_S_VM_INSERT, DB_S_VM_NIC_INSERT,
	DB_S_VM_NICS, DB_S_VM_STATE, DB_S_VM_DESIRED, DB_S_VM_DELETE,
	DB_S_IMAGE_LIST, DB_S_IMAGE_GET, DB_S_IMAGE_ADD, DB_S_IMAGE_USED,
	DB_S_IMAGE_DELETE, DB_S_IMAGE_SHARED,
	DB_S_MIG_INSERT, DB_S_MIG_OPEN, DB_S_MIG_GET, DB_S_MIG_PHASE,
	DB_S_MIG_MOVE_VM, DB_S_MIG_MOVED, DB_S_MIG_DECIDE, DB_S_MIG_CLOSE,
	DB_S_HOST_DRAIN,
	DB_S_COUNTER_RESERVE,
	DB_S__MAX
};
_Static_assert(DB_S__MAX <= sizeof(((struct db *)0)->stmts) /
    sizeof(((struct db *)0)->stmts[0]), "db: more slots than statements");

/* Returns the reset statement for slot, or NULL after logging. */
sqlite3_stmt *db_stmt(struct db *db, enum db_slot slot, const char *sql);
/* Translates a sqlite3 result code into -errno, logging unexpected ones. */
int db_err(struct db *db, int rc, const char *what);
/* BEGIN IMMEDIATE: 0, or -errno with no transaction open. */
int db_tx_begin(struct db *db);
/* Ends the transaction db_tx_begin() opened: commits when r >= 0, rolls
 * back otherwise or when the commit fails.  Returns r, or the commit's
 * -errno. */
int db_tx_end(struct db *db, int r);
/* Abandons the open transaction, if any, without firing the commit hook. */
void db_rollback(struct db *db);
int db_run(struct db *db, enum db_slot slot, const char *sql, int *changes,
    const char *types, ...);
int db_event_add(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now);
void db_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col);
/* Steps st once: fill()s row and returns 0, or -ENOENT without a row, or
 * -errno; resets st. */
int db_one(struct db *db, sqlite3_stmt *st, void (*fill)(sqlite3_stmt *st,
    void *row), void *row, const char *what);
/* Steps st to the end, converting each row with fill into a growing array
 * of rowsize-byte elements; resets st.  *out is malloc'd (the caller frees
 * it), or NULL with *n = 0 for no rows. */
int db_collect(struct db *db, sqlite3_stmt *st, size_t rowsize,
    void (*fill)(sqlite3_stmt *st, void *row), const char *what, void **out,
    size_t *n);

/* db_host.c: the columns of struct host_row, in db_host_row()'s order. */
#define HOST_COLS "id, coalesce(name, ''), fingerprint, state, " \
    "coalesce(agent_pubkey, ''), boot_token_hash, " \
    "boot_token_used_at IS NOT NULL, coalesce(underlay_ip, ''), " \
    "coalesce(last_seen_at, 0), coalesce(boot_id, ''), boot_mac, " \
    "coalesce(smbios_uuid, ''), coalesce(serial, ''), coalesce(product, ''), " \
    "coalesce(boot_ip, ''), coalesce(boot_at, 0), coalesce(ovl_served_at, 0), " \
    "draining"

void db_host_row(sqlite3_stmt *st, struct host_row *h);
/* Steps st once: 0 and *out, -ENOENT, or -errno; resets st. */
int db_host_one(struct db *db, sqlite3_stmt *st, struct host_row *out);

#endif
