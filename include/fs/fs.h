/*
 * fs: the FUSE adapter. Maps kernel requests (libfuse's low-level API) onto
 * the secrets domain: paths to secrets and views, file handles to snapshots
 * (readers) and secure write buffers (writers), close/fsync to commits, and
 * domain errors to errno replies. Owns no Secrets Manager rules itself.
 */
#ifndef SECRETSFS_FS_FS_H
#define SECRETSFS_FS_FS_H

#include <stdbool.h>

#include "secrets/policy.h"
#include "secrets/secrets.h"

/*
 * Every read is direct I/O (a snapshot per open), and for each READ the kernel
 * pins min(count, max_read) bytes of the caller's buffer, whatever the file's
 * size: 32 pages for a 128 KiB read(2) of a 100-byte secret. 8 KiB serves
 * most secrets in one round trip and pins 2 pages (docs/performance.md).
 */
#define FS_DEFAULT_MAX_READ 8192u
#define FS_DEFAULT_MAX_THREADS 16u

struct fs_options {
	bool allow_other;
	bool readonly;
	bool debug;          /* libfuse's request trace */
	const char *fsname;  /* shown in /proc/mounts, e.g. the store path */
	unsigned max_threads; /* 0: FS_DEFAULT_MAX_THREADS */
	unsigned max_read;   /* bytes the kernel pins of a reader's buffer; 0: FS_DEFAULT_MAX_READ */
	const char *kernel_flags; /* ",nosuid,nodev..." or "" */
	int new_uid, new_gid;     /* owner of new secrets and folders; -1: the caller */
	int new_umask;            /* -1: secrets 0600 less the caller's umask */
	const char *mountpoint;   /* absolute: where rotation commands find the secrets */
	const char *rotation_dir; /* resolved: rotation commands only from below it; NULL: anywhere */
	const char *audit_log;    /* NULL: no audit trail */
	bool audit_required;      /* refuse what cannot be recorded */
	const struct policy *policy; /* NULL: none; not owned */
};

struct fs;

/* Mounts sm (not owned) at mountpoint. Errors are logged; -errno. */
int fs_mount(struct sm *sm, const char *mountpoint, const struct fs_options *opt, struct fs **out);
/* Serves requests on several threads until unmounted or signalled. */
int fs_serve(struct fs *fs);
/* Periodic upkeep: scheduled rotations that are due. */
void fs_tick(struct fs *fs);
/* RotateSecret of name to version token (NULL: a new id), its steps run by
 * the mount's rotator (for the API, which has none: cli joins them). */
int fs_rotate(struct fs *fs, const char *name, const char *token);
/* Unmounts (if still mounted) and frees. */
void fs_destroy(struct fs *fs);

#endif
