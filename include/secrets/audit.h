/*
 * audit: the audit trail (BRIEF §9), the one both adapters write. One JSON
 * line per operation, reads included, shaped like a CloudTrail record:
 * eventTime, eventSource, eventName, userIdentity (a local process: uid,
 * gid, pid, executable; an API caller: its principal and access key id),
 * sourceIPAddress and userAgent for API callers, requestParameters (the
 * secret's name and ARN, the version or label), and errorCode on failure.
 * Never a value, a key or a token of a value. Each line is one O_APPEND
 * write, so lines stay whole between threads and processes.
 *
 * With audit_required, an operation whose record cannot be written is
 * refused: reads before any data is served, changes before they are made
 * (a "started" line), so nothing happens unrecorded.
 */
#ifndef SECRETSFS_SECRETS_AUDIT_H
#define SECRETSFS_SECRETS_AUDIT_H

#include <stdbool.h>
#include <sys/types.h>

#include "secrets/secrets.h"

struct audit;

/* A local process (the mount), or an API caller (principal set). */
struct audit_caller {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	const char *principal;     /* API: the credentials file's principal; NULL: local */
	const char *access_key_id; /* API: the key it signed with; NULL: unsigned (auth none) */
	const char *source;        /* API: the client's address */
	const char *user_agent;    /* API: as the client sent it, or NULL */
};

struct audit_event {
	const char *name;          /* eventName: GetSecretValue, PutSecretValue... */
	const char *source;        /* NULL: secretsmanager.amazonaws.com */
	const char *secret;        /* the secret's name, or NULL */
	const char *version_id;    /* or NULL */
	const char *stage;         /* or NULL */
	const char *detail_key;    /* one more request parameter, or NULL */
	const char *detail_value;
	bool force_delete;         /* DeleteSecret's ForceDeleteWithoutRecovery */
	bool read_only;
	const char *error_code;    /* with an outcome: the exception the API answered
				    * (NULL: named after the errno) */
};

/* NULL path: no audit (every call is then a no-op returning 0). */
int audit_open(const char *path, bool required, struct sm *sm, struct audit **out);
void audit_close(struct audit *a);
bool audit_required(const struct audit *a);
/* Records ev with its outcome (0 or -errno). Returns -EIO when the line
 * could not be written (callers refuse the operation if required). */
int audit_record(struct audit *a, const struct audit_caller *who, const struct audit_event *ev,
		 int outcome);

#endif
