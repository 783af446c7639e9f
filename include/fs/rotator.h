/*
 * rotator: runs rotations (RotateSecret) in the daemon. The rotation
 * command, the Lambda's counterpart, runs four times (createSecret,
 * setSecret, testSecret, finishSecret) on a worker thread, so that it can
 * read and write the secret through the mount while requests are served.
 * Its output goes to the log line by line. docs/rotation.md is the contract.
 */
#ifndef SECRETSFS_FS_ROTATOR_H
#define SECRETSFS_FS_ROTATOR_H

#include "secrets/secrets.h"

#define ROTATION_STEP_TIMEOUT_S 300

struct rotator;

/* mountpoint: the absolute path the command reaches the secrets through. */
int rotator_start(struct sm *sm, const char *mountpoint, struct rotator **out);
/* Stops after the rotation in progress (its command is killed). */
void rotator_stop(struct rotator *r);
/* RotateSecret now: the checks are made at once (-EBUSY, -EINVAL), the
 * steps run in the background. */
int rotator_rotate(struct rotator *r, const char *name);
/* Starts every scheduled rotation that is due. */
void rotator_run_due(struct rotator *r);

#endif
