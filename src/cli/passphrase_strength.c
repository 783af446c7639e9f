/*
 * passphrase_strength: what a new passphrase (init, passwd, rekey) must be.
 *
 * Under PASSPHRASE_MIN_CHARS characters (UTF-8 code points) it is refused
 * unless the caller insists (--allow-short-passphrase). Obviously weak ones
 * get one warning line and are accepted: a short unit repeated
 * ("aaaaaaaaaaaa", "abcabcabcabc"), a run of consecutive characters
 * ("abcdefghijkl", "1234567890123"), digits only (a date, a phone number),
 * or a common password word with at most 6 characters around it
 * ("Password2024!"). Argon2id slows each guess; it cannot make a guessable
 * passphrase safe. The passphrase is judged in place, in secure memory, and
 * no message says anything about it but the rule; which kind of weak it
 * is only when standard error is a terminal.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static size_t utf8_chars(const uint8_t *p, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += (p[i] & 0xc0) != 0x80;
	return n;
}

/* The whole passphrase is a unit of 1 to 4 bytes repeated. */
static bool repeats_a_unit(const uint8_t *p, size_t len)
{
	for (size_t unit = 1; unit <= 4 && unit < len; unit++) {
		size_t i = unit;
		while (i < len && p[i] == p[i - unit])
			i++;
		if (i == len)
			return true;
	}
	return false;
}

/* Each character one after (or one before) the last; 9 wraps to 0. */
static bool is_a_run(const uint8_t *p, size_t len)
{
	if (len < 3)
		return false;
	for (int dir = -1; dir <= 1; dir += 2) {
		size_t i = 1;
		for (; i < len; i++) {
			int step = p[i] - p[i - 1];
			bool wrap = dir > 0 ? p[i - 1] == '9' && p[i] == '0' : p[i - 1] == '0' && p[i] == '9';
			if (step != dir && !wrap)
				break;
		}
		if (i == len)
			return true;
	}
	return false;
}

static bool digits_only(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit(p[i]))
			return false;
	return true;
}

/* Contains a common password word, case aside, with at most 6 other bytes. */
static bool common_word(const uint8_t *p, size_t len)
{
	static const char *const words[] = {
		"password", "passwort", "passphrase", "secret", "qwerty", "azerty", "letmein",
		"iloveyou", "welcome", "changeme", "admin", "123456", "abc123", "monkey", "dragon",
	};
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);
		if (wl > len || len - wl > 6)
			continue;
		for (size_t at = 0; at + wl <= len; at++) {
			size_t i = 0;
			while (i < wl && tolower(p[at + i]) == words[w][i])
				i++;
			if (i == wl)
				return true;
		}
	}
	return false;
}

int passphrase_judge(const struct unlock_secret *s, bool allow_short)
{
	if (s->kind != UNLOCK_PASSPHRASE)
		return 0;
	if (utf8_chars(s->bytes, s->len) < PASSPHRASE_MIN_CHARS && !allow_short) {
		cli_error("the new passphrase is shorter than %d characters: choose a longer one "
			  "(several unrelated words), or give --allow-short-passphrase",
			  PASSPHRASE_MIN_CHARS);
		return -EINVAL;
	}
	const char *why = repeats_a_unit(s->bytes, s->len) ? "a short pattern repeated" :
			  is_a_run(s->bytes, s->len)	     ? "a run of consecutive characters" :
			  digits_only(s->bytes, s->len)	     ? "digits only" :
			  common_word(s->bytes, s->len)	     ? "a common password word" : NULL;
	/* Which kind of weak it is narrows a search: said to the person at a
	 * terminal, not to a CI or script log that others may read. */
	if (why && isatty(STDERR_FILENO))
		fprintf(stderr, "secretsfs: warning: the new passphrase is easy to guess (%s); "
				"several unrelated words are better\n", why);
	else if (why)
		fprintf(stderr, "secretsfs: warning: the new passphrase looks easy to guess; "
				"several unrelated words are better\n");
	return 0;
}
