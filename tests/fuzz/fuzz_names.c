/*
 * fuzz_names: the name rules of include/secrets/names.h on arbitrary text,
 * each compared with a reference written here from the rules as names.h and
 * AWS state them, and value_is_string compared with a UTF-8 validator that
 * follows the Unicode standard's table of well-formed byte sequences
 * (Unicode 15, table 3-7) rather than decoding code points.
 *
 * The input as bytes goes to value_is_string; cut at its first NUL, it is
 * the name, component, version id or label for the other checks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "secrets/names.h"

/* ---- references ---- */

/* Unicode table 3-7: the well-formed UTF-8 byte sequences; NUL is not a
 * SecretString character. */
static bool ref_utf8_string(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t b = s[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t more;
		if (b == 0x00)
			return false;
		if (b <= 0x7f) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf) {
			more = 1;
		} else if (b == 0xe0) {
			more = 2, lo = 0xa0;
		} else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
			more = 2;
		} else if (b == 0xed) {
			more = 2, hi = 0x9f;
		} else if (b == 0xf0) {
			more = 3, lo = 0x90;
		} else if (b >= 0xf1 && b <= 0xf3) {
			more = 3;
		} else if (b == 0xf4) {
			more = 3, hi = 0x8f;
		} else {
			return false; /* 80..C1, F5..FF never start a sequence */
		}
		if (n - i - 1 < more)
			return false;
		/* The second byte has the narrowed range, the rest 80..BF. */
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += more + 1;
	}
	return true;
}

static bool ref_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '/' || c == '_' || c == '+' || c == '=' || c == '.' || c == '@' || c == '-';
}

/* One component [p, p + n): not empty, ".", ".."; no leading '.' at the top. */
static bool ref_component(const char *p, size_t n, bool top)
{
	if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return false;
	if (top && p[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '/' || !ref_name_char(p[i]))
			return false;
	return true;
}

/* names.h: 1 to 512 bytes of [A-Za-z0-9/_+=.@-], a path of good components. */
static bool ref_name(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > SM_NAME_MAX)
		return false;
	size_t start = 0;
	bool top = true;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || name[i] == '/') {
			if (!ref_component(name + start, i - start, top))
				return false;
			start = i + 1;
			top = false;
		}
	}
	return true;
}

/* Printable ASCII other than space and '/', in [min, max] bytes. */
static bool ref_graphic_without_slash(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || c == '/')
			return false;
	}
	return true;
}

static bool ref_version_id(const char *id)
{
	return ref_graphic_without_slash(id, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX);
}

/* names.h says "printable ASCII without '/'"; the rule (and its message)
 * leaves out spaces too, as a label is a folder name under .stages/. */
static bool ref_label(const char *label)
{
	return ref_graphic_without_slash(label, 1, SM_LABEL_MAX) && strcmp(label, ".") != 0 &&
	       strcmp(label, "..") != 0;
}

/* names.h: a top-level ".NAME" other than the views; ".NAME.swa" to
 * ".NAME.swp" anywhere; "NAME~" anywhere. The folder part must be a name,
 * the leaf a file name (at most 255 bytes) of name characters but for the
 * backup's '~'. */
static bool ref_scratch(const char *name)
{
	static const char *const views[] = { ".versions", ".stages", ".fields", ".deleted" };
	size_t n = strlen(name);
	if (n > SM_NAME_MAX)
		return false;
	const char *slash = strrchr(name, '/');
	const char *leaf = slash ? slash + 1 : name;
	size_t ln = strlen(leaf);
	if (ln == 0 || ln > 255)
		return false;
	if (slash) {
		char folder[SM_NAME_MAX + 1];
		memcpy(folder, name, (size_t)(slash - name));
		folder[slash - name] = '\0';
		if (!ref_name(folder))
			return false;
	}
	if (leaf[ln - 1] == '~')
		return ref_component(leaf, ln - 1, false);
	if (!ref_component(leaf, ln, false))
		return false;
	/* ".NAME.swX", NAME not empty, X in a..p */
	if (ln >= 6 && leaf[0] == '.' && memcmp(leaf + ln - 4, ".sw", 3) == 0 &&
	    leaf[ln - 1] >= 'a' && leaf[ln - 1] <= 'p')
		return true;
	if (slash || leaf[0] != '.')
		return false;
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (strcmp(leaf, views[i]) == 0)
			return false;
	return true;
}

/* ---- the checks: rc is 0, or -EINVAL with a reason ---- */

static bool verdict(int rc, const char *why)
{
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		FUZZ_CHECK(why != NULL && why[0] != '\0');
	return rc == 0;
}

static void check_name(const char *s)
{
	const char *why = NULL;
	bool ok = verdict(name_check(s, &why), why);
	FUZZ_CHECK(ok == ref_name(s));
	FUZZ_CHECK((name_check(s, NULL) == 0) == ok);

	if (ok) {
		/* name_parent / name_join / name_is_below put a name back together. */
		char parent[SM_NAME_MAX + 1], joined[SM_NAME_MAX + 1];
		const char *slash = strrchr(s, '/');
		const char *leaf = slash ? slash + 1 : s;
		name_parent(s, parent, sizeof(parent));
		FUZZ_CHECK(strlen(parent) == (slash ? (size_t)(slash - s) : 0));
		FUZZ_CHECK(name_join(parent, leaf, joined, sizeof(joined)) == 0);
		FUZZ_CHECK(strcmp(joined, s) == 0);
		FUZZ_CHECK(name_is_below(s, parent));
		FUZZ_CHECK(name_is_below(s, s));
		FUZZ_CHECK(name_is_below(s, ""));
		/* A shorter buffer is cut, never overrun. */
		char small[4];
		name_parent(s, small, sizeof(small));
		FUZZ_CHECK(strlen(small) < sizeof(small));
		FUZZ_CHECK(name_join(parent, leaf, small, sizeof(small)) ==
			   (strlen(s) < sizeof(small) ? 0 : -ENAMETOOLONG));
	}
}

static void check_component(const char *s)
{
	for (int top = 0; top <= 1; top++) {
		const char *why = NULL;
		bool ok = verdict(name_check_component(s, top, &why), why);
		FUZZ_CHECK(ok == ref_component(s, strlen(s), top));
	}
}

static void check_version_id(const char *s)
{
	const char *why = NULL;
	bool ok = verdict(name_check_version_id(s, &why), why);
	FUZZ_CHECK(ok == ref_version_id(s));
	FUZZ_CHECK((name_check_version_id(s, NULL) == 0) == ok);
}

static void check_label(const char *s)
{
	const char *why = NULL;
	bool ok = verdict(name_check_label(s, &why), why);
	FUZZ_CHECK(ok == ref_label(s));
	FUZZ_CHECK((name_check_label(s, NULL) == 0) == ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* value_is_string sees the bytes as they are, NULs included; a heap
	 * copy of exactly size bytes lets ASan catch a read past the end. */
	uint8_t *bytes = malloc(size ? size : 1);
	FUZZ_CHECK(bytes != NULL);
	memcpy(bytes, data, size);
	FUZZ_CHECK(value_is_string(bytes, size) == ref_utf8_string(bytes, size));
	free(bytes);

	char *s = fuzz_cstring(data, size);
	check_name(s);
	check_component(s);
	check_version_id(s);
	check_label(s);
	FUZZ_CHECK(name_is_scratch(s) == ref_scratch(s));
	free(s);
	return 0;
}
