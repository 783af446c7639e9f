#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/keyring.h"

static const char usage[] =
	"usage: secretsfs keygen FILE\n"
	"\n"
	"Writes a new random 256-bit key, as 64 hex digits, to FILE (mode 0600).\n"
	"FILE must not exist. Use it with 'secretsfs init --key-file FILE' and\n"
	"'secretsfs mount -o key_file=FILE'.\n";

int cmd_keygen(int argc, char **argv)
{
	cli_harden_process();
	int parsed = cli_help_only(argc, argv, usage);
	if (parsed >= 0)
		return parsed;
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	if (crypto_init(0))
		return 1;
	int rc = keyring_write_key_file(argv[optind]);
	crypto_shutdown();
	if (rc) {
		cli_error("%s: %s", argv[optind],
			  rc == -17 ? "already exists; refusing to overwrite a key" : strerror(-rc));
		return 1;
	}
	return 0;
}
