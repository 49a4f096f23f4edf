/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Pure parsers and the template renderer behind HTTP boot: the stage-2
 * query (what iPXE says about the machine), HTTP Range headers, and
 * "{{name}}" substitution in iPXE templates.
 *
 * Every function is a strict pure function over its input (fuzzed by
 * fuzz_boot) and names what it rejected.  Must never: let a client value
 * reach a script unvalidated (values are rendered into iPXE scripts, so a
 * newline or a '$' in them would be script injection).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "numparse.h"

static bool
boot_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* iPXE's ${mac:hexhyp}: aa-bb-cc-dd-ee-ff; stored as aa:bb:cc:dd:ee:ff. */
static int
boot_mac(const char *v, char out[18])
{
	if (strlen(v) != 17)
		return -EINVAL;
	for (int i = 0; i < 17; i++) {
		char c = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 'a' : v[i]);

		if (i % 3 == 2) {
			if (c != '-' && c != ':')
				return -EINVAL;
			out[i] = ':';
		} else {
			if (!boot_is_hex(c))
				return -EINVAL;
			out[i] = c;
		}
	}
	out[17] = '\0';
	return strcmp(out, "00:00:00:00:00:00") == 0 ? -EINVAL : 0;
}

/* SMBIOS UUID as iPXE prints it (8-4-4-4-12 hex), lowercased. */
static int
boot_uuid(const char *v, char out[37])
{
	if (strlen(v) != 36)
		return -EINVAL;
	for (int i = 0; i < 36; i++) {
		char c = (char)(v[i] >= 'A' && v[i] <= 'F' ? v[i] - 'A' + 'a' : v[i]);

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -EINVAL;
		} else if (!boot_is_hex(c)) {
			return -EINVAL;
		}
		out[i] = c;
	}
	out[36] = '\0';
	return 0;
}

/* Free text from DMI: printable ASCII without script metacharacters. */
static int
boot_text(const char *v, char *out, size_t outlen)
{
	size_t n = strlen(v);

	if (n >= outlen)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c > 0x7e || c == '$' || c == '{' || c == '}' ||
		    c == '\\' || c == '"' || c == '\'' || c == '|' || c == '&' ||
		    c == ';' || c == '#')
			return -EINVAL;
	}
	memcpy(out, v, n + 1);
	return 0;
}

int
boot_query_set(struct boot_query *q, const char *key, const char *value,
    char *err, size_t errlen)
{
	static const char *const arches[] = { "i386", "x86_64", "arm32",
	    "arm64", "riscv32", "riscv64", "loong64" };
	int r = 0;

	if (value == NULL)
		value = "";
	if (strcmp(key, "mac") == 0) {
		if ((r = boot_mac(value, q->mac)) < 0)
			snprintf(err, errlen, "query 'mac' must be six hex octets "
			    "like 52-54-00-12-34-56");
	} else if (strcmp(key, "uuid") == 0) {
		/* Machines without SMBIOS give an empty UUID. */
		if (value[0] != '\0' && (r = boot_uuid(value, q->uuid)) < 0)
			snprintf(err, errlen, "query 'uuid' must be an SMBIOS UUID "
			    "(8-4-4-4-12 hex digits) or empty");
	} else if (strcmp(key, "serial") == 0) {
		if ((r = boot_text(value, q->serial, sizeof(q->serial))) < 0)
			snprintf(err, errlen, "query 'serial' must be at most %zu "
			    "printable characters without shell or iPXE syntax",
			    sizeof(q->serial) - 1);
	} else if (strcmp(key, "product") == 0) {
		if ((r = boot_text(value, q->product, sizeof(q->product))) < 0)
			snprintf(err, errlen, "query 'product' must be at most %zu "
			    "printable characters without shell or iPXE syntax",
			    sizeof(q->product) - 1);
	} else if (strcmp(key, "buildarch") == 0) {
		r = -EINVAL;
		for (size_t i = 0; i < sizeof(arches) / sizeof(*arches); i++)
			if (strcmp(value, arches[i]) == 0) {
				snprintf(q->buildarch, sizeof(q->buildarch), "%s",
				    arches[i]);
				r = 0;
			}
		if (r < 0)
			snprintf(err, errlen, "query 'buildarch' must be one of "
			    "i386, x86_64, arm32, arm64, riscv32, riscv64, loong64");
	} else {
		snprintf(err, errlen, "unknown query parameter '%.32s'", key);
		for (char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		return -EINVAL;
	}
	if (r == 0)
		q->present |= 1;
	return r;
}

int
boot_query_check(const struct boot_query *q, char *err, size_t errlen)
{
	if (q->mac[0] == '\0') {
		snprintf(err, errlen, "query 'mac' is required");
		return -EINVAL;
	}
	return 0;
}

/*
 * One "bytes=" range against a file of size bytes.  Returns 0 with the
 * range, -ENOENT when the header should be ignored (malformed or several
 * ranges: RFC 9110 lets a server send the whole file), -ERANGE when it
 * cannot be satisfied (416).
 */
int
boot_range_parse(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
	char a[24], b[24];
	const char *dash, *spec;
	uint64_t first, last;
	size_t alen, blen;

	if (strncmp(h, "bytes=", 6) != 0)
		return -ENOENT;
	spec = h + 6;
	if (strchr(spec, ',') || (dash = strchr(spec, '-')) == NULL)
		return -ENOENT;
	alen = (size_t)(dash - spec);
	blen = strlen(dash + 1);
	if (alen >= sizeof(a) || blen >= sizeof(b) || (alen == 0 && blen == 0))
		return -ENOENT;
	memcpy(a, spec, alen);
	a[alen] = '\0';
	memcpy(b, dash + 1, blen + 1);
	if (alen == 0) {
		/* Suffix: the last N bytes. */
		if (parse_u64(b, 0, UINT64_MAX, &last) < 0)
			return -ENOENT;
		if (last == 0 || size == 0)
			return -ERANGE;
		if (last > size)
			last = size;
		*off = size - last;
		*len = last;
		return 0;
	}
	if (parse_u64(a, 0, UINT64_MAX, &first) < 0)
		return -ENOENT;
	if (blen == 0)
		last = size ? size - 1 : 0;
	else if (parse_u64(b, 0, UINT64_MAX, &last) < 0 || last < first)
		return -ENOENT;
	if (first >= size)
		return -ERANGE;
	if (last >= size)
		last = size - 1;
	*off = first;
	*len = last - first + 1;
	return 0;
}

/*
 * Fills "{{name}}" from vars (NULL-terminated name/value pairs).  Unknown
 * names and unterminated braces are errors naming the line, so a broken
 * operator template is caught when it is loaded, not when a host boots.
 */
int
boot_render(const char *tpl, const char *const *vars, char **out, char *err,
    size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	unsigned line = 1;
	FILE *f;

	*out = NULL;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return -ENOMEM;
	for (const char *p = tpl; *p; p++) {
		const char *end, *const *v;
		size_t n;

		if (*p == '\n')
			line++;
		if (p[0] != '{' || p[1] != '{') {
			fputc(*p, f);
			continue;
		}
		if ((end = strstr(p + 2, "}}")) == NULL ||
		    memchr(p + 2, '\n', (size_t)(end - p - 2)) != NULL) {
			snprintf(err, errlen, "line %u: unterminated {{", line);
			goto fail;
		}
		n = (size_t)(end - p - 2);
		for (v = vars; v[0]; v += 2)
			if (strlen(v[0]) == n && strncmp(v[0], p + 2, n) == 0)
				break;
		if (v[0] == NULL) {
			snprintf(err, errlen, "line %u: unknown variable {{%.*s}}",
			    line, (int)(n > 32 ? 32 : n), p + 2);
			goto fail;
		}
		fputs(v[1], f);
		p = end + 1;
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	return 0;
fail:
	fclose(f);
	free(buf);
	return -EINVAL;
}
