/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: mesh_state_parse() (lib/mesh_json.c) over arbitrary
 * bytes.  A finding is a crash, UB or leak, and also a broken promise: a
 * return other than 0 / -EINVAL / -ENOMEM, a refusal without a message or
 * with a state, or an accepted state that fails mesh_state_validate() or
 * does not survive encode -> parse unchanged (so every IPv4 or IPv6
 * address accepted has one text that reads back as the same 16 bytes).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mesh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
same(const struct mesh_state *a, const struct mesh_state *b)
{
	if (memcmp(&a->local, &b->local, sizeof(a->local)) != 0 ||
	    strcmp(a->underlay, b->underlay) != 0 || a->nnets != b->nnets)
		return false;
	for (size_t i = 0; i < a->nnets; i++) {
		const struct mesh_net *x = &a->nets[i], *y = &b->nets[i];

		if (x->vni != y->vni || x->nvteps != y->nvteps ||
		    x->nmacs != y->nmacs ||
		    (x->nvteps && memcmp(x->vteps, y->vteps,
		    x->nvteps * sizeof(*x->vteps)) != 0) ||
		    (x->nmacs && memcmp(x->macs, y->macs,
		    x->nmacs * sizeof(*x->macs)) != 0))
			return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mesh_state *st = NULL, *again = NULL;
	char err[256] = "", *text;
	json_t *j;
	int r;

	r = mesh_state_parse((const char *)data, size, &st, err, sizeof(err));
	if (r < 0) {
		if ((r != -EINVAL && r != -ENOMEM) || st != NULL ||
		    err[0] == '\0')
			abort();
		return 0;
	}
	if (r != 0 || st == NULL || mesh_state_validate(st, err,
	    sizeof(err)) != 0)
		abort();
	if ((j = mesh_state_to_json(st)) == NULL)
		abort();
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL || mesh_state_parse(text, strlen(text), &again, err,
	    sizeof(err)) != 0 || !same(st, again))
		abort();
	free(text);
	mesh_state_free(st);
	mesh_state_free(again);
	return 0;
}
