/* secretsfs random-password: GetRandomPassword on standard output. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/password.h"

static const char usage[] =
	"usage: secretsfs random-password [OPTIONS]\n"
	"\n"
	"Prints a random password (GetRandomPassword) and a newline. By default 32\n"
	"characters with at least one upper-case letter, lower-case letter, digit and\n"
	"punctuation character from !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\n"
	"\n"
	"  --length N                       1 to 4096 (default 32)\n"
	"  --exclude-characters CHARS       never use these\n"
	"  --exclude-numbers  --exclude-punctuation\n"
	"  --exclude-uppercase  --exclude-lowercase\n"
	"  --include-space                  space may appear\n"
	"  --no-require-each-included-type  do not force one of each type\n";

int cmd_random_password(int argc, char **argv)
{
	enum { O_EXCL_CHARS = 256, O_NUM, O_PUNCT, O_UPPER, O_LOWER, O_SPACE, O_NOREQ, O_LEN };
	static const struct option longopts[] = {
		{ "length", required_argument, NULL, O_LEN },
		{ "exclude-characters", required_argument, NULL, O_EXCL_CHARS },
		{ "exclude-numbers", no_argument, NULL, O_NUM },
		{ "exclude-punctuation", no_argument, NULL, O_PUNCT },
		{ "exclude-uppercase", no_argument, NULL, O_UPPER },
		{ "exclude-lowercase", no_argument, NULL, O_LOWER },
		{ "include-space", no_argument, NULL, O_SPACE },
		{ "no-require-each-included-type", no_argument, NULL, O_NOREQ },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct password_rules rules;
	struct secbuf pw = { 0 };
	const char *why = NULL;
	char *end;
	int c, status = 1;

	cli_harden_process(); /* it holds a generated value */
	password_rules_default(&rules);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_LEN:
			errno = 0;
			long n = strtol(optarg, &end, 10);
			if (errno || *end || n < 1 || n > PASSWORD_MAX_LENGTH) {
				cli_error("--length %s: give 1 to 4096", optarg);
				return EXIT_MISUSE;
			}
			rules.length = (size_t)n;
			break;
		case O_EXCL_CHARS:
			if (strlen(optarg) > 4096) {
				cli_error("--exclude-characters: at most 4096 characters");
				return EXIT_MISUSE;
			}
			rules.exclude_characters = optarg;
			break;
		case O_NUM: rules.exclude_numbers = true; break;
		case O_PUNCT: rules.exclude_punctuation = true; break;
		case O_UPPER: rules.exclude_uppercase = true; break;
		case O_LOWER: rules.exclude_lowercase = true; break;
		case O_SPACE: rules.include_space = true; break;
		case O_NOREQ: rules.require_each_included_type = false; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return EXIT_MISUSE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	/* One of each included type (space aside) must fit: say the length that does. */
	size_t required = rules.require_each_included_type
				  ? (size_t)!rules.exclude_uppercase + !rules.exclude_lowercase +
					    !rules.exclude_numbers + !rules.exclude_punctuation
				  : 0;
	if (required > rules.length) {
		cli_error("--length %zu is shorter than the %zu character types required: give "
			  "--length %zu or more, or --no-require-each-included-type",
			  rules.length, required, required);
		return EXIT_MISUSE;
	}
	if (crypto_init(1 << 16))
		return 1;
	int rc = password_generate(&rules, &pw, &why);
	if (rc == -EINVAL) {
		cli_error("cannot make such a password: %s", why);
		status = EXIT_MISUSE;
	} else if (rc) {
		cli_error("cannot make a password: %s", strerror(-rc));
	} else if (secbuf_reserve(&pw, pw.len + 1) == 0) {
		/* Straight from locked memory to the pipe: no stdio buffer. */
		pw.data[pw.len++] = '\n';
		size_t off = 0;
		status = 0;
		while (off < pw.len) {
			ssize_t w = write(STDOUT_FILENO, pw.data + off, pw.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				status = 1;
				break;
			}
			off += (size_t)w;
		}
	}
	secbuf_free(&pw);
	crypto_shutdown();
	return status;
}
