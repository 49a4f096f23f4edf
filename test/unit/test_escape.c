/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * escape_text(): a table of inputs and the exact text each must become
 * (newline, ESC, DEL, the backslash, high bytes), and truncation at every
 * boundary around an escape: never cut inside "\xNN", always terminated,
 * never past dstlen, and the return says how long the whole text is.
 * escape_line() (log lines) differs only in keeping the backslash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "escape.h"

static const struct {
	const char *in, *out, *line;	/* line: escape_line(), if not out */
} esc_cases[] = {
	{ "", "", NULL },
	{ "plain text: host h1, 10.0.0.1:8471 ~!", "plain text: host h1, "
	    "10.0.0.1:8471 ~!", NULL },
	{ "a\nb", "a\\x0ab", NULL },
	{ "a\r\nhvd: forged", "a\\x0d\\x0ahvd: forged", NULL },
	{ "\x1b[2J", "\\x1b[2J", NULL },
	{ "tab\there", "tab\\x09here", NULL },
	{ "\x01\x1f", "\\x01\\x1f", NULL },
	{ "del\x7f", "del\\x7f", NULL },
	{ "back\\slash", "back\\x5cslash", "back\\slash" },
	/* A literal "\x41" stays readable; a log line keeps text escaped
	 * upstream as it is. */
	{ "\\x41", "\\x5cx41", "\\x41" },
	{ "a\\x0a\n", "a\\x5cx0a\\x0a", "a\\x0a\\x0a" },
	{ "caf\xc3\xa9", "caf\\xc3\\xa9", NULL },
	{ "\x80\xff", "\\x80\\xff", NULL },
	{ " ~", " ~", NULL },		/* the printable range's two ends */
};

static void
test_table(void **state)
{
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(esc_cases) / sizeof(*esc_cases); i++) {
		size_t n = escape_text(out, sizeof(out), esc_cases[i].in);

		assert_string_equal(out, esc_cases[i].out);
		assert_int_equal(n, strlen(esc_cases[i].out));
		assert_int_equal(escape_needed(esc_cases[i].in),
		    strcmp(esc_cases[i].in, esc_cases[i].out) != 0);
		n = escape_line(out, sizeof(out), esc_cases[i].in);
		assert_string_equal(out, esc_cases[i].line ? esc_cases[i].line :
		    esc_cases[i].out);
		assert_int_equal(n, strlen(out));
	}
}

/* "ab\n" escapes to "ab\x0a" (6 bytes): each dstlen keeps a whole prefix. */
static void
test_truncation(void **state)
{
	static const struct {
		size_t dstlen;
		const char *out;
	} cut[] = {
		{ 1, "" }, { 2, "a" }, { 3, "ab" }, { 4, "ab" }, { 5, "ab" },
		{ 6, "ab" }, { 7, "ab\\x0a" }, { 8, "ab\\x0a" },
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cut) / sizeof(*cut); i++) {
		memset(out, 'Z', sizeof(out));
		assert_int_equal(escape_text(out, cut[i].dstlen, "ab\n"), 6);
		assert_string_equal(out, cut[i].out);
		/* Nothing written past dstlen. */
		for (size_t j = cut[i].dstlen; j < sizeof(out); j++)
			assert_int_equal(out[j], 'Z');
	}
	/* Nothing fits after an escape that did not: no later plain byte
	 * slips in behind the gap. */
	assert_int_equal(escape_text(out, 4, "a\nb"), 6);
	assert_string_equal(out, "a");
	/* dstlen 0 writes nothing and still counts. */
	out[0] = 'Z';
	assert_int_equal(escape_text(out, 0, "\n"), 4);
	assert_int_equal(out[0], 'Z');
}

static void
test_worst_case_fits(void **state)
{
	char in[65], out[ESCAPE_MAX(64) + 1];

	(void)state;
	memset(in, 0x1b, 64);
	in[64] = '\0';
	assert_int_equal(escape_text(out, sizeof(out), in), ESCAPE_MAX(64));
	assert_int_equal(strlen(out), ESCAPE_MAX(64));
	for (size_t i = 0; i < strlen(out); i++)
		assert_true(out[i] >= 0x20 && out[i] < 0x7f);
	/* A log line too: nothing in it starts a line or drives a terminal. */
	for (unsigned c = 1; c < 256; c++) {
		char one[2] = { (char)c, '\0' };

		escape_line(out, sizeof(out), one);
		for (size_t i = 0; out[i]; i++)
			assert_true(out[i] >= 0x20 && out[i] < 0x7f);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_worst_case_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
