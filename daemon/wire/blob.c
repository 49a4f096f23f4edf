/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Refcounted immutable byte strings.  A cached API response is a blob: the
 * cache holds one reference and every in-flight HTTP response holds another,
 * so invalidating the cache never frees bytes still being sent.
 *
 * Single-threaded by design (one event loop): the count is not atomic.
 */
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct blob {
	unsigned refs;
	size_t len;
	char data[];
};

struct blob *
blob_new(const char *data, size_t len)
{
	struct blob *b;

	if ((b = malloc(sizeof(*b) + len + 1)) == NULL)
		return NULL;
	b->refs = 1;
	b->len = len;
	memcpy(b->data, data, len);
	b->data[len] = '\0';
	return b;
}

struct blob *
blob_ref(struct blob *b)
{
	b->refs++;
	return b;
}

void
blob_unref(struct blob *b)
{
	if (b != NULL && --b->refs == 0)
		free(b);
}

const char *
blob_data(const struct blob *b)
{
	return b->data;
}

size_t
blob_len(const struct blob *b)
{
	return b->len;
}
