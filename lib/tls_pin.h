/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tls_pin.h: the one rule for a TLS key's pin, which hvd logs and shows
 * and hvctl checks: "sha256//" and the base64 of the SHA-256 of the
 * certificate's SubjectPublicKeyInfo (DER), curl's --pinnedpubkey form.
 * A renewed certificate on the same key keeps its pin.
 */
#ifndef HV_TLS_PIN_H
#define HV_TLS_PIN_H

#include <stddef.h>

#define TLS_PIN_LEN	52	/* "sha256//" and 44 base64 characters */
#define TLS_PIN_SIZE	(TLS_PIN_LEN + 1)

/* The pin of the PEM certificate PEM (NUL-terminated) into PIN; 0, or
 * -EINVAL when it is not one. */
int tls_pin_of_pem(const char *pem, char pin[TLS_PIN_SIZE]);

#endif
