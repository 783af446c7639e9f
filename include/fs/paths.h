/*
 * paths: what a virtual path of the mount stands for.
 *
 *   ""                         the top folder
 *   NAME, FOLDER               live secrets and folders
 *   .versions/NAME/VERSION-ID  every stored version (NAME is a folder here)
 *   .stages/LABEL/NAME         the version of NAME that carries LABEL
 *   .fields/NAME/KEY           one top-level field of a JSON value
 *   .deleted/NAME              secrets scheduled for deletion
 *
 * Decided afresh against the domain on every request. Also turns a target
 * into a struct stat with the modes each view shows.
 */
#ifndef SECRETSFS_FS_PATHS_H
#define SECRETSFS_FS_PATHS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "secrets/secrets.h"

/* A view prefix, a 512-byte name, a label or version id, a field name. */
#define VPATH_MAX (SM_NAME_MAX + SM_LABEL_MAX + 300)

enum view { VIEW_LIVE, VIEW_VERSIONS, VIEW_STAGES, VIEW_FIELDS, VIEW_DELETED };

enum target_kind {
	T_ROOT,           /* "" */
	T_FOLDER,         /* a live folder */
	T_SECRET,         /* a live secret */
	T_VIEW_ROOT,      /* .versions .stages .fields .deleted */
	T_STAGE_LABEL,    /* .stages/LABEL: the top folder as seen through LABEL */
	T_VIEW_FOLDER,    /* a folder inside a view */
	T_SECRET_DIR,     /* .versions/NAME or .fields/NAME: a secret as a folder */
	T_VERSION,        /* .versions/NAME/ID */
	T_STAGE_SECRET,   /* .stages/LABEL/NAME */
	T_FIELD,          /* .fields/NAME/KEY */
	T_DELETED_SECRET, /* .deleted/NAME */
};

struct target {
	enum target_kind kind;
	enum view view;
	char name[SM_NAME_MAX + 1];             /* secret or folder ("" for the top) */
	char version_id[SM_VERSION_ID_MAX + 1]; /* T_VERSION */
	char label[SM_LABEL_MAX + 1];           /* VIEW_STAGES */
	char field[256];                        /* T_FIELD */
	struct sm_attr attr;
};

/* 0, or -ENOENT when the path stands for nothing now. */
int path_resolve(struct sm *sm, const char *vpath, struct target *t);
bool target_is_dir(const struct target *t);
/* Does this target show a secret's value (reads allowed)? */
bool target_is_value(const struct target *t);
void target_stat(const struct target *t, unsigned long ino, struct stat *st);
/* The view a top-level name opens, if any (".versions" -> VIEW_VERSIONS). */
bool path_view_name(const char *component, enum view *view);

#endif
