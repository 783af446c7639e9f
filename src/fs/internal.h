/*
 * fs/internal: what the FUSE adapter's own sources share, and nothing
 * outside src/fs may include (scripts/check-layers enforces it).
 *
 * The adapter is split by noun: fs.c (the mount's life, the one
 * fuse_lowlevel_ops table, attribute timeouts and the change hook),
 * entries.c (names, inodes, attributes), handles.c (open files, writers,
 * commits), dirs.c (listings, statfs), xattr_ops.c (the extended-attribute
 * requests), authorize.c (the caller, the access policy, the audit's
 * records around a change), notifier.c (names another host removed, told
 * to the kernel from a thread of its own). Each request handler op_*
 * is in the table in fs.c.
 */
#ifndef SECRETSFS_FS_INTERNAL_H
#define SECRETSFS_FS_INTERNAL_H

#define FUSE_USE_VERSION 312

#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "secrets/audit.h"
#include "fs/fs.h"
#include "fs/paths.h"
#include "secrets/policy.h"
#include "secrets/secrets.h"

struct fs {
	struct sm *sm;
	struct audit *audit;
	const struct policy *policy;
	pthread_mutex_t writers_lock;
	struct handle *writers;   /* open write handles, for their sizes */
	struct rotator *rotator;
	struct node_table *nodes;
	struct notifier *notifier;
	struct fuse_session *se;
	struct fs_options opt;
	bool mounted;
};

enum handle_kind { HANDLE_READ, HANDLE_WRITE, HANDLE_DIR };

struct handle {
	enum handle_kind kind;
	fuse_ino_t ino;
	pthread_mutex_t lock;
	struct sm_snapshot *snap; /* readers: the version they opened */
	struct secbuf buf;        /* writers: the whole new value, in secure memory */
	bool dirty;               /* written or truncated since the last commit */
	bool created;             /* made by create(): commit even when empty */
	bool append;
	int failed;               /* a refused write poisons the handle: nothing commits */
	bool create_refused;      /* the name's CreateSecret was refused: it goes with the
				   * last writer of the inode (writers_lock) */
	struct handle *next_writer, *prev_writer;
	struct audit_caller opener; /* who opened it: the commit's caller */
	char field[256];          /* .fields readers: the field they read */
	struct sm_listing listing; /* directories: entries as of opendir */
};

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Attribute timeouts and the kernel's cached attributes (fs.c). */
extern const double ENTRY_TIMEOUT;     /* names */
extern const double VIEW_ATTR_TIMEOUT; /* the short one: views, writers, new nodes */
/* How long the kernel may keep the attributes of vpath. */
double attr_timeout(const char *vpath);
/* Puts an open writer's size into st, if there is one; how long the kernel
 * may keep st (vpath NULL: a path no longer known). */
double attr_validity(struct fs *fs, fuse_ino_t ino, const char *vpath, struct stat *st);
/* Drops the kernel's cached attributes of ino (not its entry, not its pages). */
void forget_attributes(struct fs *fs, fuse_ino_t ino);
/* Drops the kernel's cached name vpath (not from a request on its folder). */
void forget_entry(struct fs *fs, const char *vpath);

/* Names another host removed, told to the kernel from a thread that holds
 * no lock of the daemon (notifier.c). notifier_post only queues: the
 * kernel is to unhash name, which it knew as node child, as an unlink
 * does. notifier_stop drops what is still queued. */
struct notifier;
int notifier_start(struct fs *fs, struct notifier **out);
void notifier_post(struct notifier *nt, const char *name, uint64_t child);
void notifier_stop(struct notifier *nt);

/* The caller, the access policy and the audit trail (authorize.c). */
struct audit_caller caller_of(fuse_req_t req);
/* One audit record of an operation, with its outcome. */
int audit_event(struct fs *fs, const struct audit_caller *who, const char *name,
		const char *secret, int outcome);
/* Under audit_required, the record that a change is starting: -EIO when it
 * cannot be written, so the change is refused before it is made. */
int audit_begin(struct fs *fs, const struct audit_caller *who, const char *name,
		const char *secret);
/* The access policy (policy=FILE), on top of the kernel's checks: -EACCES,
 * logged and audited, when it does not allow event on secret. */
int authorize(struct fs *fs, fuse_req_t req, const char *event, const char *secret);
/* GetSecretValue or PutSecretValue on name; reading an editor's scratch
 * file of a secret (NAME~, .NAME.swp) needs GetSecretValue on it too. */
int authorize_value(struct fs *fs, fuse_req_t req, const char *event, const char *name);
/* create, mknod: CreateSecret (scratch names excepted), and PutSecretValue
 * when the name still holds a hidden or deleted secret. */
int authorize_create(struct fs *fs, fuse_req_t req, const char *name);
/* A secret's value moving from one name to another: GetSecretValue on from,
 * PutSecretValue on a to that holds a secret, else CreateSecret. */
int authorize_move(struct fs *fs, fuse_req_t req, const char *from, const char *to);
/* Policy, then the audit's announcement of a change. */
int gate(struct fs *fs, fuse_req_t req, const char *event, const char *secret);

/* Paths of inodes and new names (entries.c). */
int stat_vpath(struct fs *fs, const char *vpath, fuse_ino_t ino, struct stat *st);
/* ino's virtual path (buf: VPATH_MAX); -ENOENT once it has none. */
int path_of(struct fs *fs, fuse_ino_t ino, char *buf);

/* A name about to be made below parent: a live secret or folder, or (in
 * .stages/LABEL/) a secret created through that label. */
struct new_child {
	char vpath[VPATH_MAX];
	char name[SM_NAME_MAX + 1];
	char label[SM_LABEL_MAX + 1]; /* "" outside .stages */
};

/* What the new name is for: only files may be top-level scratch names. */
enum child_use { CHILD_FILE, CHILD_OTHER };

int new_child(struct fs *fs, fuse_ino_t parent, const char *name, bool allow_stage,
	      enum child_use use, struct new_child *c);

/* Handles (handles.c). */
struct handle *handle_new(enum handle_kind kind, fuse_ino_t ino);
void handle_free(struct handle *h);
/* The size a dirty writer of ino holds, if any. */
bool writer_size(struct fs *fs, fuse_ino_t ino, off_t *size);
/* ftruncate: resizes a writer's buffer; a refusal poisons the handle. */
int truncate_handle(struct handle *h, off_t size);

/* The request handlers, one per fuse_lowlevel_ops entry. */
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		struct fuse_file_info *fi);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
	       const char *newname, unsigned int flags);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
	      struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags);
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
