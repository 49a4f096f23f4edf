/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Output for people (aligned tables) and for scripts (--json).
 *
 * Invariant: a table never truncates a cell; columns grow to fit.  A time
 * is shown one way everywhere: RFC 3339 in UTC, as the API sends it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "hvctl.h"

struct table {
	size_t ncols, nrows, cap;
	char **cells;		/* row-major, headers first */
	size_t *width;
};

struct table *
table_new(const char *const *headers, size_t ncols)
{
	struct table *t;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->width = calloc(ncols, sizeof(*t->width))) == NULL) {
		free(t);
		return NULL;
	}
	t->ncols = ncols;
	table_add(t, headers);
	return t;
}

void
table_add(struct table *t, const char *const *cells)
{
	char **nc;

	if (t == NULL)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;

		if ((nc = reallocarray(t->cells, cap * t->ncols,
		    sizeof(*nc))) == NULL)
			return;
		t->cells = nc;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = cells[i] && cells[i][0] ? cells[i] : "-";
		size_t w = strlen(s);

		t->cells[t->nrows * t->ncols + i] = strdup(s);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

void
table_print(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s  ", (int)t->width[i], s ? s : "");
		}
	}
}

void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->width);
	free(t);
}

void
output_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
}

const char *
output_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/* For display: "-" when the value is missing or null. */
const char *
output_cell(const json_t *obj, const char *key)
{
	const char *s = output_str(obj, key);

	return s ? s : "-";
}

/* Unix seconds as RFC 3339 in UTC (2026-12-03T19:30:00Z), or "-" for 0:
 * one format in every table and show block, whatever the local zone, and
 * the API's own (api_time_format). */
const char *
output_epoch(int64_t secs, char *buf, size_t len)
{
	return api_time_format(secs, buf, len) ? buf : "-";
}

/* obj's key as the API sends a time (RFC 3339 text) as it is; "-" when
 * missing or null.  An integer (an older hvd's epoch seconds) as
 * output_epoch() shows it. */
const char *
output_time(const json_t *obj, const char *key, char *buf, size_t len)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (!json_is_integer(v))
		return "-";
	return output_epoch((int64_t)json_integer_value(v), buf, len);
}
