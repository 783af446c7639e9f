/*
 * A store file opened as a domain by a command that works on it unmounted
 * (key, passwd, rekey): loaded and checked whole, so that nothing is
 * written over records that fail their checks (and a legacy store is
 * authenticated first, as by a mount).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "secrets/secrets.h"

int cli_open_domain(const char *path, struct store *st, struct keyring *kr, bool readonly,
		    const char *consequence, struct sm **out)
{
	struct sm_damage damage = { 0 };
	struct sm_options so = { .recovery_window_days = SM_DEFAULT_RECOVERY_DAYS,
				 .readonly = readonly, .root_mode = 0755,
				 .skip_damaged = readonly, .damage = &damage };
	int rc = sm_open(st, kr, &so, out);
	if (rc)
		cli_error("%s: %s%s (secretsfs check lists every problem)", path,
			  damage.count ? damage.first : strerror(-rc), consequence);
	return rc;
}
