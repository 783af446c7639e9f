/*
 * nodes: the inode table of the mount. Each inode the kernel knows stands
 * for a virtual path ("prod/db", ".versions/prod/db/<id>", ".deleted/x");
 * what the path means is decided afresh on every request, so nodes never
 * hold domain state. Counts lookups the FUSE way (lookup/forget). Renames
 * move a node, or every node below a folder, to the new path; unlinks
 * detach one. Thread-safe.
 */
#ifndef SECRETSFS_FS_NODES_H
#define SECRETSFS_FS_NODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node_table;

struct node_table *nodes_new(void);
void nodes_free(struct node_table *t);

/* Finds or makes the node of vpath and counts one lookup; 0 on -ENOMEM.
 * *first (if not NULL): the kernel held no reference to it before. */
uint64_t nodes_lookup(struct node_table *t, const char *vpath, bool *first);
void nodes_forget(struct node_table *t, uint64_t ino, uint64_t nlookup);
/* The node of vpath, if the kernel knows one (no lookup counted); else 0. */
uint64_t nodes_find(struct node_table *t, const char *vpath);
/* Copies the node's current path into buf: -ENOENT unknown, -ESTALE detached. */
int nodes_path(struct node_table *t, uint64_t ino, char *buf, size_t len);
/* After a rename: nodes at from (and below it) now stand for to (and below). */
void nodes_move(struct node_table *t, const char *from, const char *to);
/* After an unlink or rmdir: the node no longer answers to vpath. */
void nodes_detach(struct node_table *t, const char *vpath);

#define NODES_ROOT_INO 1

#endif
