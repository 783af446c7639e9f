#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/replica.h"
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
	"  --account N          12-digit account id in ARNs (default 000000000000)\n"
	"\n"
	"Many hosts, one store (docs/cluster.md): with --etcd, the store lives in etcd\n"
	"and STORE is this host's replica of it. An empty prefix gets a new store;\n"
	"a prefix that holds one is joined (the key or passphrase must unlock it).\n"
	"  --etcd URL[,URL...]  etcd members (http:// or https://)\n"
	"  --etcd-prefix P      key prefix in etcd (default /secretsfs/)\n"
	"  --etcd-user U        etcd user, with --etcd-password-file F\n"
	"  --etcd-ca F, --etcd-cert F, --etcd-key F  TLS: CA, client certificate and key\n";

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
		{ "etcd", required_argument, NULL, 'E' },
		{ "etcd-prefix", required_argument, NULL, 'P' },
		{ "etcd-user", required_argument, NULL, 'U' },
		{ "etcd-password-file", required_argument, NULL, 'W' },
		{ "etcd-ca", required_argument, NULL, 'C' },
		{ "etcd-cert", required_argument, NULL, 'T' },
		{ "etcd-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *key_file = NULL, *passphrase_file = NULL;
	const char *region = "us-east-1", *account = "000000000000";
	struct unlock_input in = { 0 };
	struct store *st = NULL;
	const char *etcd = NULL, *prefix = "/secretsfs/", *etcd_user = NULL, *etcd_pw = NULL;
	const char *etcd_ca = NULL, *etcd_cert = NULL, *etcd_key = NULL;
	struct replica_config cfg = { 0 };
	int c, status = 1;
	bool allow_short = false;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 'p': passphrase_file = optarg; break;
		case 'r': region = optarg; break;
		case 'a': account = optarg; break;
		case 'S': allow_short = true; break;
		case 'E': etcd = optarg; break;
		case 'P': prefix = optarg; break;
		case 'U': etcd_user = optarg; break;
		case 'W': etcd_pw = optarg; break;
		case 'C': etcd_ca = optarg; break;
		case 'T': etcd_cert = optarg; break;
		case 'K': etcd_key = optarg; break;
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
	if (!etcd && (etcd_user || etcd_pw || etcd_ca || etcd_cert || etcd_key ||
		      strcmp(prefix, "/secretsfs/") != 0)) {
		cli_error("the --etcd-* options need --etcd");
		return EXIT_MISUSE;
	}
	if (etcd && (!etcd_user != !etcd_pw)) {
		cli_error("give --etcd-user and --etcd-password-file together");
		return EXIT_MISUSE;
	}
	if (etcd && (prefix[0] != '/' || prefix[strlen(prefix) - 1] != '/' ||
		     strlen(prefix) > 200)) {
		cli_error("--etcd-prefix %s: must start and end with '/' (at most 200 "
			  "characters)", prefix);
		return EXIT_MISUSE;
	}
	if (etcd && replica_config_set_endpoints(&cfg, etcd)) {
		cli_error("--etcd %s: a comma-separated list of http:// or https:// URLs", etcd);
		replica_config_free(&cfg);
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
	int rc;
	if (etcd) {
		if (!(cfg.prefix = strdup(prefix)) ||
		    (etcd_user && !(cfg.user = strdup(etcd_user))) ||
		    (etcd_pw && !(cfg.password_file = realpath(etcd_pw, NULL))) ||
		    (etcd_ca && !(cfg.ca_file = realpath(etcd_ca, NULL))) ||
		    (etcd_cert && !(cfg.cert_file = realpath(etcd_cert, NULL))) ||
		    (etcd_key && !(cfg.key_file = realpath(etcd_key, NULL)))) {
			cli_error("etcd options: %s", strerror(errno));
			goto out;
		}
		if (!cli_cluster_init(path, &in.secret, &cfg, region, account))
			status = 0;
		goto out;
	}
	rc = store_open(path, STORE_CREATE, &st);
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
	replica_config_free(&cfg);
	unlock_input_free(&in);
	crypto_shutdown();
	return status;
}
