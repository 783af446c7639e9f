/*
 * names: the rules for secret names, folder paths, staging labels and
 * version ids, as Secrets Manager and a filesystem together allow them.
 *
 * A name is 1 to 512 bytes of ASCII letters, digits and "/_+=.@-"; as a path
 * it has no empty, "." or ".." component, and its first component may not
 * begin with "." (those belong to secretsfs: .versions, .deleted, ...).
 * Each check returns 0 or -EINVAL and sets *why to the rule broken.
 */
#ifndef SECRETSFS_SECRETS_NAMES_H
#define SECRETSFS_SECRETS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define SM_NAME_MAX 512
#define SM_VERSION_ID_MIN 32
#define SM_VERSION_ID_MAX 64
#define SM_VALUE_MAX 65536
#define SM_DESCRIPTION_MAX 2048 /* characters */
#define SM_TAG_KEY_MAX 128      /* characters */
#define SM_TAG_VALUE_MAX 256    /* characters */
#define SM_MAX_TAGS 50

int name_check(const char *name, const char **why);
/* A scratch name, for tools' temporary files: a top-level ".NAME" other
 * than the views' names (.versions .stages .fields .deleted), as rsync's are;
 * vim's swap files ".NAME.swp" (.swa to .swp) anywhere; and editors'
 * backups "NAME~" anywhere ("~" is otherwise not a name character).
 * Scratch files live in memory only; see sm_create. */
bool name_is_scratch(const char *name);
/* The secret an editor's scratch file stands for: "DIR/NAME~" (a backup)
 * and "DIR/.NAME.swp" (a swap file) give "DIR/NAME" in buf. False for any
 * other name, rsync's ".NAME.XXXXXX" included: its temp holds what rsync
 * writes, not a copy of NAME. */
bool name_scratch_owner(const char *name, char *buf, size_t len);
/* One path component of a name (a file or folder name in a directory). */
int name_check_component(const char *component, bool top_level, const char **why);
int name_check_version_id(const char *id, const char **why);
/* A staging label: 1 to 256 printable ASCII characters without '/' (it is a
 * folder name under .stages/), and not "." or "..". */
int name_check_label(const char *label, const char **why);
#define SM_LABEL_MAX 256
#define SM_MAX_LABELS 20

/* The folder part of a name ("" for the top level) into buf; returns buf. */
char *name_parent(const char *name, char *buf, size_t len);
/* "a/b" + "c" -> "a/b/c"; "" + "c" -> "c". -ENAMETOOLONG if it does not fit. */
int name_join(const char *folder, const char *leaf, char *buf, size_t len);
/* True when name is folder itself or lies below it ("" contains all). */
bool name_is_below(const char *name, const char *folder);

/* A SecretString is valid UTF-8 without NUL bytes; anything else is binary. */
bool value_is_string(const unsigned char *value, size_t len);
/* Valid UTF-8 (NUL allowed: a SecretString sent as JSON may hold one). */
bool text_is_utf8(const unsigned char *value, size_t len);

#endif
