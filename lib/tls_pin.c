/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tls_pin.c: see tls_pin.h.  GnuTLS reads the certificate; libsodium
 * hashes and encodes.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "tls_pin.h"

int
tls_pin_of_pem(const char *pem, char pin[TLS_PIN_SIZE])
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t d = { (unsigned char *)(uintptr_t)pem,
	    (unsigned)strlen(pem) }, spki = { NULL, 0 };
	unsigned char h[crypto_hash_sha256_BYTES];
	int r = -EINVAL;

	if (gnutls_x509_crt_init(&crt) == 0 && gnutls_pubkey_init(&pub) == 0 &&
	    gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) == 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) == 0) {
		crypto_hash_sha256(h, spki.data, spki.size);
		memcpy(pin, "sha256//", 8);
		sodium_bin2base64(pin + 8, TLS_PIN_SIZE - 8, h, sizeof(h),
		    sodium_base64_VARIANT_ORIGINAL);
		r = 0;
	}
	gnutls_free(spki.data);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	return r;
}
