/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Shared by backup.c (taking a backup) and restore.c (restoring one) only:
 * the backup's format, its names and the rules for them.  No other file
 * includes this header.
 */
#ifndef HVD_BACKUP_FORMAT_H
#define HVD_BACKUP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

#define BACKUP_MAGIC		"hypervisor-backup 1\n"
#define BACKUP_DB_MAX		(1024ll * 1024 * 1024)
#define BACKUP_KEY_LEN		32
#define BACKUP_ENTRIES_MAX	65536
#define BACKUP_CHUNK		(256 * 1024)	/* one read */
#define BACKUP_TURN		(1024 * 1024)	/* copied per loop turn */
#define BACKUP_NAME_MAX		80	/* "images/" + 64, "boot/" + 72 */
#define BACKUP_IMAGES		"images/"
#define BACKUP_BOOT		"boot/"
/* The TCP API's self-signed pair, as state-dir/tls/ holds it. */
#define BACKUP_TLS_CERT		"tls/api.crt"
#define BACKUP_TLS_KEY		"tls/api.key"
#define BACKUP_TLS_MAX		(64 * 1024)

extern const char backup_hex[];

enum backup_kind { BK_MANIFEST, BK_DB, BK_KEY, BK_IMAGE, BK_BOOT, BK_TLS_CERT,
	BK_TLS_KEY };

/* A name of the boot root a backup carries (boot.c's rule), or the
 * ".NAME.source" note hvctl boot import writes beside one. */
bool backup_boot_name(const char *s);
/* 64 lowercase hex digits: an image's content address. */
bool backup_sha_name(const char *s);
/* NAME made printable and short, for a message. */
const char *backup_shown(const char *name, char *buf, size_t len);
/* What a tar entry may be, by its name alone: a kind, or -1 with why. */
int backup_classify(const char *name, char *why, size_t len);
/* Removes DIR, its files and, DEPTH levels down, its directories: only
 * backup's and restore's temporary directories, whose shape they know. */
void backup_rmtree(const char *dir, int depth);

#endif
