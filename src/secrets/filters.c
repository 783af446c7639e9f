/* ListSecrets' Filters: include/secrets/filters.h is the contract. */
#include "secrets/filters.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static const char *const key_names[] = {
	[FILTER_DESCRIPTION] = "description",
	[FILTER_NAME] = "name",
	[FILTER_TAG_KEY] = "tag-key",
	[FILTER_TAG_VALUE] = "tag-value",
	[FILTER_PRIMARY_REGION] = "primary-region",
	[FILTER_OWNING_SERVICE] = "owning-service",
	[FILTER_ALL] = "all",
};

int filter_key_parse(const char *name, enum filter_key *out)
{
	for (size_t i = 0; i < sizeof(key_names) / sizeof(key_names[0]); i++)
		if (strcmp(name, key_names[i]) == 0) {
			*out = (enum filter_key)i;
			return 0;
		}
	return -EINVAL;
}

int filter_value_check(const char *value, const char **why)
{
	if (strlen(value) > FILTER_VALUE_MAX) {
		*why = "a filter value is at most 512 characters";
		return -EINVAL;
	}
	for (const char *p = value; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(" :_@/+=.-!", *p)) {
			*why = "a filter value has letters, digits, spaces and :_@/+=.-! only";
			return -EINVAL;
		}
	return 0;
}

/* A word of a field, as a span of it. */
struct span {
	const char *p;
	size_t len;
};

/* Does a (the pattern's word) begin b, ignoring case? */
static bool begins(const struct span *word, const char *pat, size_t plen)
{
	return plen <= word->len && strncasecmp(word->p, pat, plen) == 0;
}

/* Splits one chunk (no spaces) at case changes, calling fn for each word;
 * true as soon as fn does. */
typedef bool (*word_fn)(const struct span *w, const void *ctx);

static bool case_words(const char *p, size_t len, word_fn fn, const void *ctx)
{
	size_t start = 0;
	for (size_t i = 1; i < len; i++) {
		bool lower_upper = islower((unsigned char)p[i - 1]) && isupper((unsigned char)p[i]);
		bool upper_run_end = i + 1 < len && isupper((unsigned char)p[i - 1]) &&
				     isupper((unsigned char)p[i]) && islower((unsigned char)p[i + 1]);
		if (lower_upper || upper_run_end) {
			struct span w = { p + start, i - start };
			if (fn(&w, ctx))
				return true;
			start = i;
		}
	}
	struct span w = { p + start, len - start };
	return len > start && fn(&w, ctx);
}

/* The words of a field (see filters.h), to fn; true as soon as fn is. */
static bool field_words(const char *field, word_fn fn, const void *ctx)
{
	static const char seps[] = "/-_+=.@";
	const char *p = field;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (!len)
			break;
		char kind = 0;
		bool mixed = false;
		for (size_t i = 0; i < len; i++)
			if (strchr(seps, p[i])) {
				mixed |= kind && kind != p[i];
				kind = p[i];
			}
		struct span whole = { p, len };
		if (mixed) {
			if (fn(&whole, ctx))
				return true;
		} else if (!kind) {
			if (case_words(p, len, fn, ctx))
				return true;
		} else {
			size_t s = 0;
			for (size_t i = 0; i <= len; i++)
				if (i == len || p[i] == kind) {
					if (i > s && case_words(p + s, i - s, fn, ctx))
						return true;
					s = i + 1;
				}
		}
		p += len;
	}
	return false;
}

struct pattern_word {
	const char *p;
	size_t len;
};

static bool word_begins(const struct span *w, const void *ctx)
{
	const struct pattern_word *pw = ctx;
	return begins(w, pw->p, pw->len);
}

/* Every word of pattern begins some word of field (description, all). */
static bool words_match(const char *pattern, const char *field)
{
	bool any = false;
	if (!field)
		return false;
	for (const char *p = pattern; *p;) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ");
		if (!len)
			break;
		struct pattern_word pw = { p, len };
		if (!field_words(field, word_begins, &pw))
			return false;
		any = true;
		p += len;
	}
	return any;
}

static bool prefix_match(const char *pattern, const char *field)
{
	return field && strncmp(field, pattern, strlen(pattern)) == 0;
}

/* Does one field of s, of the filter's kind, match pattern (without "!")? */
static bool any_field(const struct sm_secret *s, enum filter_key key, const char *pattern)
{
	switch (key) {
	case FILTER_NAME:
		return prefix_match(pattern, s->name);
	case FILTER_DESCRIPTION:
		return words_match(pattern, s->description);
	case FILTER_TAG_KEY:
	case FILTER_TAG_VALUE:
		for (size_t i = 0; i < s->ntags; i++)
			if (prefix_match(pattern, key == FILTER_TAG_KEY ? s->tags[i].key
									: s->tags[i].value))
				return true;
		return false;
	case FILTER_ALL:
		if (words_match(pattern, s->name) || words_match(pattern, s->description))
			return true;
		for (size_t i = 0; i < s->ntags; i++)
			if (words_match(pattern, s->tags[i].key) ||
			    words_match(pattern, s->tags[i].value))
				return true;
		return false;
	default: /* primary-region, owning-service: no such field here */
		return false;
	}
}

static bool one_filter(const struct sm_secret *s, const struct sm_filter *f)
{
	for (size_t i = 0; i < f->nvalues; i++) {
		const char *v = f->values[i];
		bool negated = v[0] == '!';
		if (any_field(s, f->key, v + negated) != negated)
			return true;
	}
	return false;
}

bool filter_matches(const struct sm_secret *s, const struct sm_filter *filters, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!one_filter(s, &filters[i]))
			return false;
	return true;
}
