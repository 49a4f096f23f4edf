/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's own key pairs.  The agent-link static key is created on first start
 * and kept in the `keys` table with its secret sealed (crypto_secretbox)
 * under the master key in state-dir/master.key (mode 0600).  Backing up
 * state-dir therefore backs up everything; the database alone reveals no
 * secret.
 *
 * Invariants: secrets live only in sodium_malloc'd, mlock'd memory and are
 * wiped on shutdown; the master key file is written whole (file_replace.h),
 * mode 0600, and refused if it is readable by anyone else.
 * Must never log a secret or write one to the database unsealed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "file_replace.h"
#include "store.h"

#define KEYS_MASTER_FILE	"master.key"

struct keys_secret {
	uint8_t master[crypto_secretbox_KEYBYTES];
	uint8_t link_priv[32];
};

static struct keys_secret *keys_secret;	/* sodium_malloc'd */
static uint8_t keys_link_pub[32];

static int
keys_load_master(const char *dir, uint8_t master[crypto_secretbox_KEYBYTES])
{
	char path[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", dir, KEYS_MASTER_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno != ENOENT)
			return -errno;
		randombytes_buf(master, crypto_secretbox_KEYBYTES);
		if ((r = file_replace(dir, KEYS_MASTER_FILE, master,
		    crypto_secretbox_KEYBYTES, 0600)) < 0)
			return r;
		log_info("keys: created master key %s", path);
		return 0;
	}
	r = 0;
	if (fstat(fd, &st) == -1)
		r = -errno;
	else if ((st.st_mode & 077) != 0) {
		log_warnx("keys: %s is readable by others (mode %04o); "
		    "chmod 0600 it", path, (unsigned)st.st_mode & 0777);
		r = -EPERM;
	} else if ((n = read(fd, master, crypto_secretbox_KEYBYTES)) !=
	    crypto_secretbox_KEYBYTES) {
		log_warnx("keys: %s: not a master key", path);
		r = -EINVAL;
	}
	close(fd);
	return r;
}

static int
keys_seal(const uint8_t *secret, size_t len, uint8_t *out)
{
	uint8_t *nonce = out;

	randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
	return crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, secret,
	    len, nonce, keys_secret->master) == 0 ? 0 : -EIO;
}

static int
keys_unseal(const uint8_t *sealed, size_t slen, uint8_t *out, size_t len)
{
	if (slen != crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len)
		return -EINVAL;
	return crypto_secretbox_open_easy(out, sealed + crypto_secretbox_NONCEBYTES,
	    slen - crypto_secretbox_NONCEBYTES, sealed, keys_secret->master) == 0 ?
	    0 : -EBADMSG;
}

int
keys_init(struct hvd *hvd)
{
	uint8_t sealed[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 32];
	uint8_t pub[32];
	size_t slen = sizeof(sealed);
	int r;

	if ((keys_secret = sodium_malloc(sizeof(*keys_secret))) == NULL)
		return -ENOMEM;
	if ((r = keys_load_master(hvd->conf->state_dir, keys_secret->master)) < 0)
		return r;
	r = db_key_get(hvd->db, "agent-link", pub, sealed, &slen);
	if (r == -ENOENT) {
		crypto_box_keypair(keys_link_pub, keys_secret->link_priv);
		if ((r = keys_seal(keys_secret->link_priv, 32, sealed)) < 0 ||
		    (r = db_key_put(hvd->db, "agent-link", keys_link_pub, sealed,
		    sizeof(sealed), hvd_now_wall())) < 0)
			return r;
		log_info("keys: created the agent-link key");
		return 0;
	}
	if (r < 0)
		return r;
	if ((r = keys_unseal(sealed, slen, keys_secret->link_priv, 32)) < 0) {
		log_warnx("keys: the agent-link key does not open with %s/%s; "
		    "is it the master key this database was made with?",
		    hvd->conf->state_dir, KEYS_MASTER_FILE);
		return r;
	}
	memcpy(keys_link_pub, pub, 32);
	return 0;
}

void
keys_shutdown(void)
{
	sodium_free(keys_secret);	/* wipes */
	keys_secret = NULL;
}

const uint8_t *
keys_link_public(void)
{
	return keys_link_pub;
}

const uint8_t *
keys_link_secret(void)
{
	return keys_secret ? keys_secret->link_priv : NULL;
}
