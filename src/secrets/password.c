#include "secrets/password.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

void password_rules_default(struct password_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->length = PASSWORD_DEFAULT_LENGTH;
	r->require_each_included_type = true;
}

/* A uniform index below n, by rejection sampling of strong random bytes. */
static size_t uniform(size_t n)
{
	uint32_t limit = UINT32_MAX - UINT32_MAX % (uint32_t)n, x;
	do
		crypto_random_key(&x, sizeof(x), false);
	while (x >= limit);
	return x % n;
}

/* The characters of set that the exclusions leave, into out; their count. */
static size_t allowed(const char *set, const char *exclude, char *out)
{
	size_t n = 0;
	for (const char *p = set; *p; p++)
		if (!exclude || !strchr(exclude, *p))
			out[n++] = *p;
	out[n] = '\0';
	return n;
}

int password_generate(const struct password_rules *r, struct secbuf *out, const char **why)
{
	static const char *const sets[] = { "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz",
					    "0123456789", PASSWORD_PUNCTUATION, " " };
	bool on[5] = { !r->exclude_uppercase, !r->exclude_lowercase, !r->exclude_numbers,
		       !r->exclude_punctuation, r->include_space };
	char classes[5][40], pool[160];
	size_t counts[5], npool = 0, required = 0;
	int rc;

	if (r->length < 1 || r->length > PASSWORD_MAX_LENGTH) {
		*why = "the length is 1 to 4096";
		return -EINVAL;
	}
	for (int i = 0; i < 5; i++) {
		counts[i] = on[i] ? allowed(sets[i], r->exclude_characters, classes[i]) : 0;
		memcpy(pool + npool, classes[i], counts[i]);
		npool += counts[i];
		/* Space is not a required type (reference §11). */
		if (on[i] && i < 4 && r->require_each_included_type) {
			if (counts[i] == 0) {
				*why = "an included character type has every character excluded";
				return -EINVAL;
			}
			required++;
		}
	}
	if (npool == 0) {
		*why = "every character is excluded";
		return -EINVAL;
	}
	if (required > r->length) {
		*why = "the length is shorter than the number of required character types";
		return -EINVAL;
	}
	if ((rc = secbuf_reserve(out, r->length)))
		return rc;
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		if (on[i] && r->require_each_included_type)
			out->data[n++] = (uint8_t)classes[i][uniform(counts[i])];
	while (n < r->length)
		out->data[n++] = (uint8_t)pool[uniform(npool)];
	/* Fisher-Yates: the required characters land anywhere. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = uniform(i + 1);
		uint8_t t = out->data[i];
		out->data[i] = out->data[j];
		out->data[j] = t;
	}
	out->len = n;
	return 0;
}
