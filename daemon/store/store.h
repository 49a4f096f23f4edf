/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's store layer: SQLite (only store/db*.c touch sqlite3), migrations, sealed keys.
 */
#ifndef HVD_STORE_H
#define HVD_STORE_H

#include "wire.h"

/* db.c: only db*.c touch sqlite3. */
int db_open(const char *path, struct db **out);
int db_open_version(const char *path, int version, struct db **out);
void db_close(struct db *db);
int db_user_version(struct db *db);
int db_schema_dump(struct db *db, char **out);
uint64_t db_generation(struct db *db);
/* fn(arg) after every commit (at most DB_COMMIT_SUBSCRIBERS of them;
 * -ENOSPC beyond).  It runs inside SQLite: it may schedule work on the
 * loop, never call into the database.  db_off_commit() removes it. */
#define DB_COMMIT_SUBSCRIBERS	4
int db_on_commit(struct db *db, void (*fn)(void *arg), void *arg);
void db_off_commit(struct db *db, void (*fn)(void *arg), void *arg);
const char *db_conflict(struct db *db);
int db_ping(struct db *db);
/* Adds n to counter NAME (schema/010) and gives the first of the n values
 * reserved; -ENOENT for no such counter. */
int db_counter_reserve(struct db *db, const char *name, uint64_t n,
    uint64_t *first);
int db_backup_to(struct db *db, const char *path);

/* db_event.c */
struct event_row {
	int64_t id, time;
	char kind[48], subject[96], actor[64], detail[256];
};
int db_event_list(struct db *db, const char *subject, unsigned limit,
    struct event_row **out, size_t *n);
int db_event_since(struct db *db, int64_t after_id, unsigned limit,
    struct event_row **out, size_t *n);
/*
 * Retention: deletes at most batch of the oldest events the policy no
 * longer keeps (time before now - max_age_s, or beyond the newest max_rows),
 * never the newest event.  The count deleted (0: nothing due, and nothing
 * written), or -errno.  Callers repeat it from the loop while it returns
 * batch, so no call holds the database for long.
 */
int db_event_prune(struct db *db, int64_t now, int64_t max_age_s,
    uint64_t max_rows, unsigned batch);

/* db_network.c */
struct network {
	int64_t id;
	char name[API_NAME_MAX + 1];
	uint32_t vni;
	char description[API_DESC_MAX + 1];
	bool all_hosts;
	int64_t created_at, updated_at;
};
int db_network_create(struct db *db, struct network *n, const char *actor,
    int64_t now);
int db_network_get(struct db *db, const char *key, struct network *out);
int db_network_list(struct db *db, struct network **out, size_t *n);
int db_network_update(struct db *db, const char *key,
    const struct api_network *patch, struct network *out, const char *actor,
    int64_t now);
int db_network_delete(struct db *db, const char *key, const char *actor,
    int64_t now);
int db_count(struct db *db, const char *table, int64_t *out);

/* db_token.c */
struct token_row {
	char id[AUTH_ID_HEX + 1];
	uint8_t hash[AUTH_HASH_LEN];
	enum api_role role;
	char name[API_NAME_MAX + 1];
	int64_t created_at, last_used_at;
};
int db_token_insert(struct db *db, const struct token_row *t,
    const char *actor, int64_t now);
int db_token_get(struct db *db, const char *id, struct token_row *out);
int db_token_touch(struct db *db, const char *id, int64_t now);
int db_token_list(struct db *db, struct token_row **out, size_t *n);
int db_token_delete(struct db *db, const char *id, const char *actor,
    int64_t now);

/* keys.c: hvd's own keys, sealed at rest with state-dir/master.key. */
/* The TCP API's TLS pair (tls_cert.c): the operator's, or a self-signed
 * one kept in state-dir/tls/ and made at the first start. */
struct tls_pem {
	char *cert;			/* PEM, malloc'd */
	char *key;			/* PEM, sodium_malloc'd */
	char pin[64];			/* "sha256//" + base64(SHA-256(SPKI)) */
	char cert_path[PATH_MAX];
	int64_t expires;		/* the certificate's notAfter */
	bool self_signed;		/* state-dir/tls/, not api-tls-cert */
	bool created;			/* made by this call */
};
int tls_cert_load(const struct hvd_config *c, struct tls_pem *out, char *err,
    size_t errlen);
void tls_pem_free(struct tls_pem *p);

int keys_init(struct hvd *hvd);
void keys_shutdown(void);
const uint8_t *keys_link_public(void);
const uint8_t *keys_link_secret(void);

/* db_key.c */
int db_key_get(struct db *db, const char *name, uint8_t pub[32],
    uint8_t *sealed, size_t *sealed_len);
int db_key_put(struct db *db, const char *name, const uint8_t pub[32],
    const uint8_t *sealed, size_t sealed_len, int64_t now);

/* db_host.c */
struct host_row {
	int64_t id;
	char name[API_NAME_MAX + 1];
	char fingerprint[80];
	char state[16];
	char agent_pubkey[65];
	bool has_token, token_used;
	uint8_t token_hash[AUTH_HASH_LEN];
	char underlay_ip[46];
	int64_t last_seen_at;
	char boot_id[65];
	char boot_mac[18];
	char uuid[37], serial[65], product[65];
	char boot_ip[46];		/* who opened the current boot */
	int64_t boot_at;		/* when; 0: never booted */
	int64_t ovl_served_at;		/* 0: this boot's overlay not served */
	bool draining;			/* the scheduler places nothing here */
};
int db_host_by_pubkey(struct db *db, const char *pubhex, struct host_row *out);
int db_host_get(struct db *db, const char *name, struct host_row *out);
int db_host_by_mac(struct db *db, const char *mac, struct host_row *out);
int db_host_list(struct db *db, struct host_row **out, size_t *n);
int db_host_register(struct db *db, const char *name, const char *pubhex,
    const uint8_t *token_hash, const char *actor, int64_t now,
    struct host_row *out);
int db_host_set_state(struct db *db, int64_t id, const char *name,
    const char *state, const char *cause, const char *actor, int64_t now);
/* Marks h draining or not, with a host.draining or host.undrained event
 * when that changes it: 1 if it did, 0 if h was so already, or -errno. */
int db_host_set_draining(struct db *db, const struct host_row *h,
    bool draining, const char *actor, int64_t now);
int db_host_session_start(struct db *db, const struct host_row *h,
    const char *boot_id, bool consume_token, const char *facts_json,
    const char *peer, int64_t now);
int db_event_record(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now);

/* db_ident.c: host identity (discovery, boots, adoption, replacement). */
struct host_seen {		/* what a boot request tells about a machine */
	char fingerprint[HOST_FP_HEX];
	char mac[18], uuid[37], serial[65], product[65];
	char ip[46];		/* the requester */
	bool stage2;		/* the stage-2 script request opens a boot */
};
struct host_config {		/* the operator's per-host settings */
	char *labels, *mounts, *ssh_keys, *facts, *macs;	/* JSON text */
	uint32_t vnis[API_HOST_NETS_MAX];	/* explicit memberships */
	size_t nvnis;
};
int db_host_by_id(struct db *db, int64_t id, struct host_row *out);
int db_host_find(struct db *db, const char *key, struct host_row *out);
/* 1 (and the identity's last name) if fp was replaced or retired. */
int db_fingerprint_retired(struct db *db, const char *fp, char *name,
    size_t namelen);
/* Records a boot request: discovers an unknown fingerprint, refreshes a
 * known one, opens a boot on stage 2.  -EPERM: a retired fingerprint. */
int db_host_seen(struct db *db, const struct host_seen *s, int64_t now,
    struct host_row *out);
/* Claims the open boot's overlay: -EALREADY if it was served already. */
int db_host_ovl_claim(struct db *db, const struct host_row *h, const char *ip,
    const char *pubhex, const uint8_t token_hash[AUTH_HASH_LEN], int64_t now);
/* -EBUSY: h is not discovered; -EEXIST: the name is taken; -ENXIO: a VNI
 * names no network. */
int db_host_adopt(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *underlay_ip,
    const char *actor, int64_t now, struct host_row *out);
/* The discovered hardware hw takes over h's identity. */
int db_host_replace(struct db *db, const struct host_row *h,
    const struct host_row *hw, const char *actor, int64_t now,
    struct host_row *out);
int db_host_retire(struct db *db, const struct host_row *h, const char *actor,
    int64_t now);
/* Removes the record of a retired host, with a host.deleted event; its
 * fingerprint stays retired.  -EBUSY: h is not retired, a VM names it as
 * its host, or an unfinished migration has it at either end. */
int db_host_delete(struct db *db, const struct host_row *h, const char *actor,
    int64_t now);
int db_host_edit(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *actor, int64_t now);
int db_host_config(struct db *db, int64_t id, struct host_config *c);
void host_config_free(struct host_config *c);
int db_host_set_underlay(struct db *db, int64_t id, const char *ip);
int db_host_set_facts(struct db *db, int64_t id, const char *facts,
    const char *macs, int64_t now);

/* db_mesh.c */
struct mesh_member {		/* a host in a network, with an underlay IP */
	uint32_t vni;
	int64_t host_id;
	char ip[46], state[16], name[API_NAME_MAX + 1];
};
int db_mesh_members(struct db *db, struct mesh_member **out, size_t *n);
int db_network_vnis(struct db *db, uint32_t **out, size_t *n);
int db_network_set_members(struct db *db, int64_t net_id,
    char names[][API_NAME_MAX + 1], size_t n, const char *actor, int64_t now);

/* db_vm.c: VMs and the image store. */
struct vm_row {
	int64_t id;
	char name[64], uuid[37];
	int64_t host_id;		/* 0: not placed */
	char host[API_NAME_MAX + 1];
	char desired[12], state[12], type[8];
	unsigned vcpus;
	uint64_t memory_mib;
	char spec[4096];		/* the accepted spec, canonical JSON */
	int64_t domid;			/* -1: none reported */
	char reason[256];
	char anti_affinity[64];
	int64_t created_at, updated_at;
};
struct vm_nic_row {
	uint32_t vni;
	char mac[18];
	uint32_t rate_kbps;		/* transmit limit, 0: none */
	char host_ip[46];		/* the VM's host's underlay address */
	int64_t host_id, vm_id;
};
struct image_row {
	char name[64], kind[12], sha256[65];
	uint64_t size;
	int64_t created_at;
};
int db_vm_list(struct db *db, int64_t host_id, struct vm_row **out, size_t *n);
int db_vm_get(struct db *db, const char *key, struct vm_row *out);
/* -EEXIST: name, uuid or a MAC taken (db_conflict says which); -ENXIO: a
 * VNI names no network. */
int db_vm_create(struct db *db, const struct vm_row *v,
    const struct vm_nic_row *nics, size_t nnics, const char *actor,
    int64_t now, int64_t *id);
int db_vm_nics(struct db *db, int64_t vm_id, struct vm_nic_row **out,
    size_t *n);
int db_vm_set_state(struct db *db, const struct vm_row *v, const char *state,
    int64_t domid, const char *reason, const char *actor, int64_t now);
int db_vm_set_desired(struct db *db, const struct vm_row *v,
    const char *desired, const char *actor, int64_t now);
int db_vm_delete(struct db *db, const struct vm_row *v, const char *actor,
    int64_t now);
int db_image_list(struct db *db, struct image_row **out, size_t *n);
int db_image_get(struct db *db, const char *name, struct image_row *out);
int db_image_add(struct db *db, const struct image_row *im, const char *actor,
    int64_t now);
int db_image_delete(struct db *db, const struct image_row *im,
    const char *actor, int64_t now, bool *last);

/* db_migration.c: VM migrations (schema/007).  The key is never stored. */
struct migration_row {
	char id[33];			/* 32 lowercase hex */
	char vm_uuid[37], vm_name[64];
	int64_t source_id, target_id;
	char source[API_NAME_MAX + 1], target[API_NAME_MAX + 1];
	char phase[12];			/* preparing ... done, failed */
	unsigned timeout_s;
	int64_t started_at, ended_at;	/* ended_at 0: still open */
	char outcome[8];		/* "", "source", "target" */
	char reason[256];
};
int db_migration_insert(struct db *db, const struct migration_row *m,
    const char *actor, int64_t now);
int db_migration_open_list(struct db *db, struct migration_row **out,
    size_t *n);
int db_migration_get(struct db *db, const char *id, struct migration_row *out);
int db_migration_set_phase(struct db *db, const char *id, const char *phase);
/* The VM's host becomes m's target (with its event): one transaction.
 * -ENOENT: the VM is gone. */
int db_migration_move(struct db *db, const struct migration_row *m,
    const char *actor, int64_t now);
int db_migration_decide(struct db *db, const struct migration_row *m,
    const char *outcome, const char *reason, const char *actor, int64_t now);
int db_migration_close(struct db *db, const char *id, int64_t now);

/* db_lease.c: full-mode leases.  Addresses in host byte order. */
struct lease_pool {
	uint32_t first, last;		/* dhcp-range, inclusive */
	uint32_t net, mask;		/* the interface's subnet */
	uint32_t server;		/* hvd's own address: never leased */
};
struct lease_row {
	char mac[18], ip[16], state[12];
	int64_t expires_at, updated_at;
	char hostname[64], client_id[80];
};
/*
 * What MACs hvd does not know may take (dhcp-offer-max, dhcp-offer-rate).
 * hvd knows an adopted host's boot MAC, and a MAC whose lease it
 * acknowledged (its row is bound or released, and nobody has taken the
 * address since); those are never limited.  Any other MAC, a stranger,
 * gets a new offer only with a token from a bucket of rate per second
 * (also its size) and while fewer than held_max addresses are held by
 * strangers' unconfirmed offers.  A stranger seen for the first time may
 * use only half of either; one refused in the last LEASE_SEEN_S to 2 *
 * LEASE_SEEN_S seconds that asks again, as a real client retransmitting
 * does and a flood of random MACs does not, may use all of it.
 *
 * The caller owns one (about 1 MiB: keep it static), prepares it with
 * db_lease_limit_init(), sets held_max and rate whenever it likes, and
 * passes the same now as to the rows (unix seconds; a clock step only
 * refills or empties the bucket early).
 */
#define LEASE_SEEN_S		16
#define LEASE_SEEN_BITS		(1u << 22)	/* per period; a power of 2 */
struct lease_limit {
	unsigned held_max;		/* 0: strangers get no offer */
	unsigned rate;			/* offers per second to strangers */
	/* Kept by db_lease.c. */
	unsigned tokens;
	int64_t filled_at;
	int64_t seen_since;		/* when seen[seen_cur] began */
	unsigned seen_cur;
	uint8_t seen_key[16];
	uint8_t seen[2][LEASE_SEEN_BITS / 8];	/* refused strangers (Bloom) */
};
void db_lease_limit_init(struct lease_limit *l);
/* The address for mac: its host's underlay_ip, else its lease, else want
 * if free, else the lowest free; held until hold_until.  -ENOSPC: none.
 * With lim (NULL: no limits), a stranger may also get -EAGAIN (over the
 * rate) or -EBUSY (held_max reached); nothing is written then. */
int db_lease_offer(struct db *db, const char *mac, const struct lease_pool *p,
    uint32_t want, struct lease_limit *lim, int64_t hold_until, int64_t now,
    uint32_t *ip);
/* Binds want to mac until expires_at; -EADDRNOTAVAIL: NAK it.  With lim,
 * a stranger without any row (INIT-REBOOT) needs a token: -EAGAIN. */
int db_lease_request(struct db *db, const char *mac,
    const struct lease_pool *p, uint32_t want, struct lease_limit *lim,
    const char *hostname, const char *client_id, int64_t expires_at,
    int64_t now);
int db_lease_release(struct db *db, const char *mac, uint32_t ip, int64_t now);
/* The client found ip in use: it is withheld from everyone until hold_until. */
int db_lease_decline(struct db *db, const char *mac, uint32_t ip,
    int64_t hold_until, int64_t now);
int db_lease_get(struct db *db, const char *mac, struct lease_row *out);
/* The underlay address h has or gets: its own, else (full_dhcp) its MAC's
 * lease, else the address it booted from.  0, or -ENOENT if none. */
int db_host_underlay(struct db *db, const struct host_row *h, bool full_dhcp,
    char *out, size_t len);

/* auth_bearer.c: 0 with the token's role; -ENOENT no usable header,
 * -EACCES a wrong token. */
int auth_bearer(struct db *db, const char *authorization, enum api_role *role,
    char id[AUTH_ID_HEX + 1], int64_t now);

#endif
