#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/keyring.h"
#include "store/store.h"

static const char usage[] =
	"usage: secretsfs init STORE [--key-file F | --passphrase-file F] [--region R] [--account N]\n"
	"\n"
	"Creates a new store (a tdb file) with a random master key, wrapped by the\n"
	"key in F (see secretsfs keygen) or by a passphrase (Argon2id). With neither\n"
	"option the passphrase is asked on the terminal, twice.\n"
	"\n"
	"  --key-file F         unlock with this key file\n"
	"  --passphrase-file F  unlock with the first line of F as the passphrase\n"
	"  --allow-short-passphrase  accept a passphrase under " PASSPHRASE_MIN_TEXT " characters\n"
	"  --region R           region in ARNs (default us-east-1)\n"
	"  --account N          12-digit account id in ARNs (default 000000000000)\n";

static int valid_region(const char *r)
{
	/* ^([a-z]+-)+[0-9]+$ as Secrets Manager validates it */
	size_t i = 0, groups = 0;
	while (r[i]) {
		size_t start = i;
		while (r[i] >= 'a' && r[i] <= 'z')
			i++;
		if (i == start || r[i] != '-')
			break;
		i++;
		groups++;
	}
	if (!groups || !isdigit((unsigned char)r[i]))
		return 0;
	while (isdigit((unsigned char)r[i]))
		i++;
	return r[i] == '\0' && strlen(r) <= 128;
}

static int valid_account(const char *a)
{
	if (strlen(a) != 12)
		return 0;
	for (; *a; a++)
		if (!isdigit((unsigned char)*a))
			return 0;
	return 1;
}

int cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "region", required_argument, NULL, 'r' },
		{ "account", required_argument, NULL, 'a' },
		{ "allow-short-passphrase", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *key_file = NULL, *passphrase_file = NULL;
	const char *region = "us-east-1", *account = "000000000000";
	struct unlock_input in = { 0 };
	struct store *st = NULL;
	int c, status = 1;
	bool allow_short = false;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 'p': passphrase_file = optarg; break;
		case 'r': region = optarg; break;
		case 'a': account = optarg; break;
		case 'S': allow_short = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return EXIT_MISUSE;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	const char *path = argv[optind];
	if (key_file && passphrase_file) {
		cli_error("give --key-file or --passphrase-file, not both");
		return EXIT_MISUSE;
	}
	if (!valid_region(region)) {
		cli_error("'%s' is not a region name (like us-east-1)", region);
		return EXIT_MISUSE;
	}
	if (!valid_account(account)) {
		cli_error("'%s' is not a 12-digit account id", account);
		return EXIT_MISUSE;
	}
	if (access(path, F_OK) == 0) {
		cli_error("%s: already exists; refusing to overwrite a store", path);
		return 1;
	}
	if (crypto_init(0))
		return 1;
	if (unlock_input_read(&in, key_file, passphrase_file, 1) ||
	    passphrase_judge(&in.secret, allow_short))
		goto out;
	int rc = store_open(path, STORE_CREATE, &st);
	if (rc) {
		cli_error("%s: cannot create store: %s", path, strerror(-rc));
		goto out;
	}
	rc = keyring_create(st, &in.secret, region, account);
	if (rc) {
		cli_error("%s: cannot write the store's keys: %s", path, strerror(-rc));
		store_close(st);
		st = NULL;
		unlink(path);
		goto out;
	}
	status = 0;
out:
	store_close(st);
	unlock_input_free(&in);
	crypto_shutdown();
	return status;
}
