/* secretsfs: AWS Secrets Manager as a local filesystem. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/log.h"

static const char usage[] =
	"usage: secretsfs COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  init STORE [--key-file F | --passphrase-file F] [--region R] [--account N]\n"
	"                      create a store and its master key\n"
	"  keygen FILE         write a new random key file (mode 0600)\n"
	"  mount STORE MOUNTPOINT [-f] [-o OPT,...]\n"
	"                      mount a store; unmount with fusermount3 -u MOUNTPOINT\n"
	"  key create|list|disable|enable TARGET [ALIAS|KEY]\n"
	"                      named keys (KMS's counterpart)\n"
	"  export MOUNTPOINT [PREFIX] > FILE\n"
	"  import MOUNTPOINT < FILE\n"
	"                      secrets as JSON lines, AWS CLI shaped\n"
	"  check STORE         verify every record of a store\n"
	"  backup STORE FILE   a consistent copy, also while mounted\n"
	"  passwd STORE        change the key file or passphrase (unmounted)\n"
	"  rekey STORE         replace the master key (unmounted)\n"
	"  compact STORE       give back the space of old versions (unmounted)\n"
	"  status MOUNTPOINT   mode (local or etcd), replication state, revision applied\n"
	"  rotate FILE         RotateSecret now, with the secret's rotation command\n"
	"  serve STORE --listen ADDR:PORT --credentials FILE [--key-file F | ...]\n"
	"                      the Secrets Manager API (AWS CLI, SDKs) over a store\n"
	"  random-password [OPTIONS]\n"
	"                      GetRandomPassword on standard output\n"
	"\n"
	"Run 'secretsfs COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
	/* As a mount helper (mount.fuse.secretsfs, or mount.fuse3 running
	 * "secretsfs STORE MOUNTPOINT -o ..."), argv is the mount command's. */
	const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strncmp(self, "mount.", 6) == 0 ||
	    (argc >= 3 && argv[1][0] != '-' && strchr(argv[1], '/') != NULL))
		return cmd_mount(argc, argv);
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	/* Commands speak through cli_error; the daemon's info lines are its own. */
	if (strcmp(cmd, "mount") != 0 && strcmp(cmd, "serve") != 0)
		log_set_threshold(LOG_WARNING);
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if (strcmp(cmd, "keygen") == 0)
		return cmd_keygen(argc - 1, argv + 1);
	if (strcmp(cmd, "mount") == 0)
		return cmd_mount(argc - 1, argv + 1);
	if (strcmp(cmd, "key") == 0)
		return cmd_key(argc - 1, argv + 1);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(cmd, "random-password") == 0)
		return cmd_random_password(argc - 1, argv + 1);
	if (strcmp(cmd, "rotate") == 0)
		return cmd_rotate(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "backup") == 0)
		return cmd_backup(argc - 1, argv + 1);
	if (strcmp(cmd, "passwd") == 0)
		return cmd_passwd(argc - 1, argv + 1);
	if (strcmp(cmd, "rekey") == 0)
		return cmd_rekey(argc - 1, argv + 1);
	if (strcmp(cmd, "compact") == 0)
		return cmd_compact(argc - 1, argv + 1);
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc - 1, argv + 1);
	cli_error("unknown command '%s' (see secretsfs --help)", cmd);
	return EXIT_MISUSE;
}
