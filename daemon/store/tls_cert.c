/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tls_cert.c: the TCP API's certificate and key (store.h, tls_cert_load).
 *
 * The operator's own pair (api-tls-cert, api-tls-key) is read as it is.
 * Without one, hvd keeps a self-signed pair in state-dir/tls/ (api.crt
 * 0644, api.key 0600 in a 0700 directory), made at the first start with
 * GnuTLS: ECDSA P-256, ten years, subject CN=hvd, names localhost, this
 * machine's hostname, 127.0.0.1, ::1 and the listen address when it is a
 * specific one.  Living in the state directory, it is in every backup, so
 * a restored hvd presents the key its clients pinned.
 *
 * The pin is what clients check without a CA (lib/tls_pin.h).
 *
 * Invariants: a key file readable by group or others is refused (named);
 * the cert and key must be a pair (their key ids match); new files are
 * written whole (lib/file_replace.h); the key's PEM lives in
 * sodium_malloc'd memory and is wiped by tls_pem_free().
 * Must never log or return the key anywhere but to the TLS listener.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "file_replace.h"
#include "store.h"
#include "tls_pin.h"

#define TLS_DIR			"tls"
#define TLS_CERT_FILE		"api.crt"
#define TLS_KEY_FILE		"api.key"
#define TLS_FILE_MAX		(64 * 1024)
#define TLS_DAYS		(10 * 365)

static int
tls_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
tls_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

/* Reads PATH whole into BUF (SECRET: sodium_malloc'd) as a NUL-ended text. */
static int
tls_read(const char *path, bool secret, char **out, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, r;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return tls_fail(err, errlen, -errno, "%s: %s", path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size <= 0 || st.st_size > TLS_FILE_MAX) {
		close(fd);
		return tls_fail(err, errlen, -EINVAL, "%s: not a regular file "
		    "of 1..%d bytes", path, TLS_FILE_MAX);
	}
	if (secret && (st.st_mode & 077) != 0) {
		close(fd);
		return tls_fail(err, errlen, -EPERM, "%s: readable by group or "
		    "others (mode %04o); chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
	}
	buf = secret ? sodium_malloc((size_t)st.st_size + 1) :
	    malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return tls_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size &&
	    (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	r = got == (size_t)st.st_size ? 0 : -EIO;
	close(fd);
	buf[got] = '\0';
	if (r < 0) {
		secret ? sodium_free(buf) : free(buf);
		return tls_fail(err, errlen, r, "%s: short read", path);
	}
	*out = buf;
	return 0;
}

static void
tls_san_ip(gnutls_x509_crt_t crt, const char *text)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, text, a) == 1)
		gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
		    a, 4, GNUTLS_FSAN_APPEND);
	else if (inet_pton(AF_INET6, text, a) == 1)
		gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
		    a, 16, GNUTLS_FSAN_APPEND);
}

/* A new self-signed pair in DIR for LISTEN_HOST. */
static int
tls_create(const char *dir, const char *listen_host, char *err, size_t errlen)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t kd = { NULL, 0 }, cd = { NULL, 0 };
	unsigned char serial[16];
	char host[256];
	time_t now = time(NULL);
	int g, r;

	if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
	    (g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (g = gnutls_x509_crt_init(&crt)) < 0)
		goto gfail;
	randombytes_buf(serial, sizeof(serial));
	serial[0] &= 0x7f;		/* a positive INTEGER */
	if ((g = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (g = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (g = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (g = gnutls_x509_crt_set_expiration_time(crt,
	    now + (time_t)TLS_DAYS * 86400)) < 0 ||
	    (g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME,
	    0, "hvd", 3)) < 0 ||
	    (g = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (g = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (g = gnutls_x509_crt_set_key_usage(crt,
	    GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (g = gnutls_x509_crt_set_key_purpose_oid(crt,
	    GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	    "localhost", 9, GNUTLS_FSAN_APPEND)) < 0)
		goto gfail;
	if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0' &&
	    strcmp(host, "localhost") != 0) {
		host[sizeof(host) - 1] = '\0';
		gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
		    host, (unsigned)strlen(host), GNUTLS_FSAN_APPEND);
	}
	tls_san_ip(crt, "127.0.0.1");
	tls_san_ip(crt, "::1");
	if (strcmp(listen_host, "0.0.0.0") != 0 && strcmp(listen_host, "::") != 0 &&
	    strcmp(listen_host, "127.0.0.1") != 0 && strcmp(listen_host, "::1") != 0)
		tls_san_ip(crt, listen_host);
	if ((g = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (g = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
	    GNUTLS_PKCS_PLAIN, &kd)) < 0 ||
	    (g = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cd)) < 0)
		goto gfail;
	/* The key first: a certificate without its key is never left. */
	if ((r = file_replace(dir, TLS_KEY_FILE, kd.data, kd.size, 0600)) < 0 ||
	    (r = file_replace(dir, TLS_CERT_FILE, cd.data, cd.size, 0644)) < 0)
		r = tls_fail(err, errlen, r, "%s: cannot write the new TLS pair: "
		    "%s", dir, strerror(-r));
	goto out;
gfail:
	r = tls_fail(err, errlen, -EIO, "cannot make a TLS certificate: %s",
	    gnutls_strerror(g));
out:
	if (kd.data != NULL) {
		sodium_memzero(kd.data, kd.size);
		gnutls_free(kd.data);
	}
	gnutls_free(cd.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return r;
}

/* Checks the pair and fills OUT's pin. */
static int
tls_check(struct tls_pem *out, const char *cpath, const char *kpath,
    char *err, size_t errlen)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_datum_t d;
	unsigned char cid[64], kid[64];
	size_t cidlen = sizeof(cid), kidlen = sizeof(kid);
	int g, r = 0;

	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_privkey_init(&key) < 0) {
		r = tls_fail(err, errlen, -ENOMEM, "TLS: out of memory");
		goto out;
	}
	d.data = (unsigned char *)out->cert;
	d.size = (unsigned)strlen(out->cert);
	if ((g = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0) {
		r = tls_fail(err, errlen, -EINVAL, "%s: not a PEM certificate: %s",
		    cpath, gnutls_strerror(g));
		goto out;
	}
	d.data = (unsigned char *)out->key;
	d.size = (unsigned)strlen(out->key);
	if ((g = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL,
	    GNUTLS_PKCS_PLAIN)) < 0) {
		r = tls_fail(err, errlen, -EINVAL, "%s: not an unencrypted PEM "
		    "private key: %s", kpath, gnutls_strerror(g));
		goto out;
	}
	if (gnutls_x509_crt_get_key_id(crt, 0, cid, &cidlen) < 0 ||
	    gnutls_x509_privkey_get_key_id(key, 0, kid, &kidlen) < 0 ||
	    cidlen != kidlen || memcmp(cid, kid, cidlen) != 0) {
		r = tls_fail(err, errlen, -EINVAL, "%s does not hold the key of "
		    "%s", kpath, cpath);
		goto out;
	}
	if (tls_pin_of_pem(out->cert, out->pin) < 0) {
		r = tls_fail(err, errlen, -EINVAL, "%s: no public key", cpath);
		goto out;
	}
	out->expires = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
out:
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return r;
}

int
tls_cert_load(const struct hvd_config *c, struct tls_pem *out, char *err,
    size_t errlen)
{
	char dir[PATH_MAX], cpath[PATH_MAX], kpath[PATH_MAX];
	bool own = c->api_tls_cert[0] != '\0';
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	if (own) {
		snprintf(cpath, sizeof(cpath), "%s", c->api_tls_cert);
		snprintf(kpath, sizeof(kpath), "%s", c->api_tls_key);
	} else {
		if (snprintf(dir, sizeof(dir), "%s/%s", c->state_dir, TLS_DIR) >=
		    (int)sizeof(dir))
			return tls_fail(err, errlen, -ENAMETOOLONG, "state-dir: too "
			    "long");
		if (mkdir(dir, 0700) == -1 && errno != EEXIST)
			return tls_fail(err, errlen, -errno, "%s: %s", dir,
			    strerror(errno));
		snprintf(cpath, sizeof(cpath), "%s/%s", dir, TLS_CERT_FILE);
		snprintf(kpath, sizeof(kpath), "%s/%s", dir, TLS_KEY_FILE);
		if (stat(cpath, &st) == -1 && errno == ENOENT &&
		    stat(kpath, &st) == -1 && errno == ENOENT) {
			if ((r = tls_create(dir, c->api_listen_host, err,
			    errlen)) < 0)
				return r;
			out->created = true;
		}
	}
	snprintf(out->cert_path, sizeof(out->cert_path), "%s", cpath);
	out->self_signed = !own;
	if ((r = tls_read(cpath, false, &out->cert, err, errlen)) < 0 ||
	    (r = tls_read(kpath, true, &out->key, err, errlen)) < 0 ||
	    (r = tls_check(out, cpath, kpath, err, errlen)) < 0) {
		tls_pem_free(out);
		return r;
	}
	return 0;
}

void
tls_pem_free(struct tls_pem *p)
{
	if (p == NULL)
		return;
	free(p->cert);
	if (p->key != NULL)
		sodium_free(p->key);	/* wipes it */
	p->cert = p->key = NULL;
}
