/*
 * files: small whole-file operations that must survive a crash: a file
 * replaced atomically (a reader sees the old bytes or the new, never a
 * mix, and after a power loss one of the two), and a folder's entries
 * made durable. 0 or a negative errno.
 */
#ifndef SECRETSFS_UTIL_FILES_H
#define SECRETSFS_UTIL_FILES_H

#include <stddef.h>

/* All of data to fd, through short writes and EINTR. */
int files_write_all(int fd, const void *data, size_t len);

/* fsync of the folder that holds path: a create, rename or unlink in it
 * on disk. */
int files_sync_parent(const char *path);

/* path's contents become data (mode 0600, owned by the caller): written to
 * a new file beside it, synced, renamed over it, the folder synced. */
int files_replace(const char *path, const void *data, size_t len);

/* A regular file of at most max bytes, read whole into *data (malloc'd,
 * NUL-terminated past *len); -EFBIG when larger, -EINVAL when not a
 * regular file. */
int files_read_small(const char *path, size_t max, char **data, size_t *len);

#endif
