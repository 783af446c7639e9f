/* secretsfs rotate FILE: RotateSecret on a mounted secret, and its outcome. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: secretsfs rotate FILE\n"
	"\n"
	"Rotates the secret FILE (a path under a secretsfs mount) now, with its\n"
	"user.sm.rotation_command, and waits for the four steps (createSecret,\n"
	"setSecret, testSecret, finishSecret). Prints the outcome; exit status 0 if\n"
	"the rotation succeeded. See docs/rotation.md.\n";

int cmd_rotate(int argc, char **argv)
{
	cli_harden_process();
	int parsed = cli_help_only(argc, argv, usage);
	if (parsed >= 0)
		return parsed;
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	const char *file = argv[optind];
	if (setxattr(file, "user.sm.rotate", "now", 3, 0) != 0) {
		int e = errno;
		cli_error("%s: rotation not started: %s", file,
			  e == EBUSY ? "a rotation is running, or AWSPENDING sits on a version that is "
				       "not current (see the log)" :
			  e == EINVAL ? "no user.sm.rotation_command, or no current value (see the log)" :
			  e == ENOTSUP ? "not a secret of a secretsfs mount" : strerror(e));
		return 1;
	}
	char status[512];
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	for (;;) {
		ssize_t n = getxattr(file, "user.sm.rotation_status", status, sizeof(status) - 1);
		if (n < 0) {
			cli_error("%s: cannot read the rotation status: %s", file, strerror(errno));
			return 1;
		}
		status[n] = '\0';
		if (strncmp(status, "running", 7) != 0)
			break;
		nanosleep(&pause, NULL);
	}
	printf("%s: rotation %s\n", file, status);
	return strncmp(status, "succeeded", 9) == 0 ? 0 : 1;
}
