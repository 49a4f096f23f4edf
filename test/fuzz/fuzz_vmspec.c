/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: vm_spec_decode() (proto/vmspec.c) over arbitrary bytes.
 * A finding is a crash, UB or leak, and also a broken promise: a return
 * other than 0 / -EINVAL, a refusal without a message or with a struct not
 * zeroed, an accepted spec that breaks the documented rules, or one that
 * does not survive to_json -> dump -> decode unchanged.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
rules_hold(const struct vm_spec *s)
{
	if (s->name[0] == '\0' || s->vcpus < 1 || s->vcpus > VM_VCPUS_MAX ||
	    s->memory_mib < VM_MEMORY_MIN_MIB ||
	    s->memory_mib > VM_MEMORY_MAX_MIB || s->nnics > VM_NICS_MAX ||
	    (s->kernel[0] == '\0' && s->disk[0] == '\0') ||
	    (s->kernel[0] == '\0' && (s->initramfs[0] || s->cmdline[0])))
		return false;
	for (size_t i = 0; i < s->nnics; i++) {
		if (s->nics[i].vni < 1 || s->nics[i].vni > 16777215 ||
		    (s->nics[i].has_mac && !vm_mac_acceptable(s->nics[i].mac)))
			return false;
		for (size_t j = 0; j < i; j++)
			if (s->nics[j].vni == s->nics[i].vni)
				return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct vm_spec zero;
	struct vm_spec a, b;
	char err[256] = "", *text;
	json_t *j;
	int r;

	r = vm_spec_decode((const char *)data, size, &a, err, sizeof(err));
	if (r < 0) {
		if (r != -EINVAL || err[0] == '\0' ||
		    memcmp(&a, &zero, sizeof(a)) != 0)
			abort();
		return 0;
	}
	if (r != 0 || !rules_hold(&a))
		abort();
	if ((j = vm_spec_to_json(&a)) == NULL)
		abort();
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL || vm_spec_decode(text, strlen(text), &b, err,
	    sizeof(err)) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	free(text);
	return 0;
}
