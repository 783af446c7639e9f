/*
 * rotator: runs rotations (RotateSecret) in the daemon. The rotation
 * command, the Lambda's counterpart, runs four times (createSecret,
 * setSecret, testSecret, finishSecret) on a worker thread, so that it can
 * read and write the secret through the mount while requests are served.
 * Its output goes to the log line by line. docs/rotation.md is the contract.
 */
#ifndef SECRETSFS_FS_ROTATOR_H
#define SECRETSFS_FS_ROTATOR_H

#include <limits.h>

#include "secrets/secrets.h"

#define ROTATION_STEP_TIMEOUT_S 300

struct rotator;

/* mountpoint: the absolute path the command reaches the secrets through;
 * rotation_dir: the resolved folder commands must lie in (NULL: anywhere). */
int rotator_start(struct sm *sm, const char *mountpoint, const char *rotation_dir,
		  struct rotator **out);
/*
 * The one check of a rotation command's path, made when it is set and again
 * right before each step runs (docs/rotation.md): an absolute path whose
 * resolved form (into resolved: what is stored and what runs) is an
 * executable regular file, owned, with every folder above it up to /, by
 * root or the mounting user and writable by no one else (a sticky folder
 * such as /tmp excepted), and inside rotation_dir when the mount has one.
 * 0, or -EINVAL with the rule it broke logged for the secret name.
 */
int rotator_check_command(const struct rotator *r, const char *name, const char *path,
			  char resolved[PATH_MAX]);
/* Stops after the rotation in progress (its command is killed). */
void rotator_stop(struct rotator *r);
/* RotateSecret now: the checks are made at once (-EBUSY, -EINVAL), the
 * steps run in the background. token: the new version's id (the API's
 * ClientRequestToken), or NULL for a new one. */
int rotator_rotate(struct rotator *r, const char *name, const char *token);
/* Starts every scheduled rotation that is due. */
void rotator_run_due(struct rotator *r);

#endif
