#include "fs/paths.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum view view;
} views[] = {
	{ ".versions", VIEW_VERSIONS },
	{ ".stages", VIEW_STAGES },
	{ ".fields", VIEW_FIELDS },
	{ ".deleted", VIEW_DELETED },
};

bool path_view_name(const char *component, enum view *view)
{
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++) {
		if (strcmp(component, views[i].name) == 0) {
			*view = views[i].view;
			return true;
		}
	}
	return false;
}

static int copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		return -ENOENT;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

/* Splits "a/b/c" into "a/b" and "c"; false when there is no slash. */
static bool split_last(const char *path, char *parent, size_t cap, const char **leaf)
{
	const char *slash = strrchr(path, '/');
	if (!slash || copy(parent, cap, path, (size_t)(slash - path)))
		return false;
	*leaf = slash + 1;
	return true;
}

static int resolve_live(struct sm *sm, const char *rest, struct target *t)
{
	if (copy(t->name, sizeof(t->name), rest, strlen(rest)))
		return -ENOENT;
	int rc = sm_attr(sm, SM_VIEW_LIVE, rest, &t->attr);
	if (!rc && !rest[0])
		t->kind = T_VIEW_FOLDER;
	return rc;
}

static int resolve_versions(struct sm *sm, const char *rest, struct target *t)
{
	const char *leaf;
	char parent[SM_NAME_MAX + 1];
	if (resolve_live(sm, rest, t) == 0) {
		t->kind = t->attr.kind == SM_KIND_FOLDER ? T_VIEW_FOLDER : T_SECRET_DIR;
		return 0;
	}
	if (!split_last(rest, parent, sizeof(parent), &leaf) ||
	    copy(t->version_id, sizeof(t->version_id), leaf, strlen(leaf)))
		return -ENOENT;
	snprintf(t->name, sizeof(t->name), "%s", parent);
	t->kind = T_VERSION;
	return sm_version_attr(sm, t->name, t->version_id, &t->attr);
}

static int resolve_stages(struct sm *sm, const char *rest, struct target *t)
{
	const char *slash = strchr(rest, '/');
	size_t llen = slash ? (size_t)(slash - rest) : strlen(rest);
	const char *why;
	if (copy(t->label, sizeof(t->label), rest, llen) || name_check_label(t->label, &why))
		return -ENOENT;
	if (!slash) {
		t->kind = T_STAGE_LABEL;
		return sm_attr(sm, SM_VIEW_LIVE, "", &t->attr);
	}
	int rc = resolve_live(sm, slash + 1, t);
	if (rc)
		return rc;
	if (t->attr.kind == SM_KIND_FOLDER) {
		t->kind = T_VIEW_FOLDER;
		return 0;
	}
	/* The file exists for every live secret, so a write can add the label;
	 * it shows the size of the version holding the label, 0 if none does. */
	struct sm_snapshot *snap;
	t->kind = T_STAGE_SECRET;
	if ((rc = sm_snapshot_label(sm, t->name, t->label, &snap)) == 0) {
		t->attr.size = sm_snapshot_size(snap);
		sm_snapshot_free(snap);
	} else if (rc == -EACCES) {
		rc = 0; /* still a file; opening it says why it cannot be read */
	}
	return rc;
}

static int resolve_fields(struct sm *sm, const char *rest, struct target *t)
{
	const char *leaf;
	char parent[SM_NAME_MAX + 1];
	struct sm_snapshot *snap = NULL;
	struct secbuf field = { 0 };
	int rc;

	if (resolve_live(sm, rest, t) == 0) {
		if (t->attr.kind == SM_KIND_FOLDER) {
			t->kind = T_VIEW_FOLDER;
			return 0;
		}
		/* A secret is a folder here only when its value is a JSON object. */
		struct sm_listing names;
		t->kind = T_SECRET_DIR;
		if ((rc = sm_snapshot_current(sm, t->name, &snap)) == 0 &&
		    (rc = sm_snapshot_field_names(sm, snap, &names)) == 0)
			sm_listing_free(&names);
		sm_snapshot_free(snap);
		/* A disabled key refuses; anything else means "no fields here". */
		return rc == -EACCES ? rc : rc ? -ENOENT : 0;
	}
	if (!split_last(rest, parent, sizeof(parent), &leaf) ||
	    copy(t->field, sizeof(t->field), leaf, strlen(leaf)) ||
	    sm_attr(sm, SM_VIEW_LIVE, parent, &t->attr) || t->attr.kind != SM_KIND_SECRET)
		return -ENOENT;
	snprintf(t->name, sizeof(t->name), "%s", parent);
	t->kind = T_FIELD;
	if ((rc = sm_snapshot_current(sm, t->name, &snap)) == 0 &&
	    (rc = sm_snapshot_field(sm, snap, t->field, &field)) == 0)
		t->attr.size = field.len;
	secbuf_free(&field);
	sm_snapshot_free(snap);
	return rc == -EACCES ? rc : rc ? -ENOENT : 0;
}

static int resolve_deleted(struct sm *sm, const char *rest, struct target *t)
{
	if (copy(t->name, sizeof(t->name), rest, strlen(rest)))
		return -ENOENT;
	int rc = sm_attr(sm, SM_VIEW_DELETED, rest, &t->attr);
	t->kind = t->attr.kind == SM_KIND_FOLDER ? T_VIEW_FOLDER : T_DELETED_SECRET;
	return rc;
}

int path_resolve(struct sm *sm, const char *vpath, struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (vpath[0] == '\0') {
		t->kind = T_ROOT;
		return sm_attr(sm, SM_VIEW_LIVE, "", &t->attr);
	}
	const char *slash = strchr(vpath, '/');
	char top[16];
	size_t tlen = slash ? (size_t)(slash - vpath) : strlen(vpath);
	if (vpath[0] == '.' && tlen < sizeof(top)) {
		memcpy(top, vpath, tlen);
		top[tlen] = '\0';
	}
	if (vpath[0] == '.' && tlen < sizeof(top) && path_view_name(top, &t->view)) {
		if (!slash) {
			t->kind = T_VIEW_ROOT;
			return sm_attr(sm, SM_VIEW_LIVE, "", &t->attr);
		}
		const char *rest = slash + 1;
		switch (t->view) {
		case VIEW_VERSIONS: return resolve_versions(sm, rest, t);
		case VIEW_STAGES: return resolve_stages(sm, rest, t);
		case VIEW_FIELDS: return resolve_fields(sm, rest, t);
		case VIEW_DELETED: return resolve_deleted(sm, rest, t);
		default: return -ENOENT;
		}
	}
	if (vpath[0] == '.' && !name_is_scratch(vpath))
		return -ENOENT;
	t->view = VIEW_LIVE; /* secrets, folders, and top-level scratch files */
	int rc = resolve_live(sm, vpath, t);
	t->kind = t->attr.kind == SM_KIND_FOLDER ? T_FOLDER : T_SECRET;
	return rc;
}

bool target_is_dir(const struct target *t)
{
	switch (t->kind) {
	case T_SECRET:
	case T_VERSION:
	case T_STAGE_SECRET:
	case T_FIELD:
	case T_DELETED_SECRET:
		return false;
	default:
		return true;
	}
}

bool target_is_value(const struct target *t)
{
	return t->kind == T_SECRET || t->kind == T_VERSION || t->kind == T_STAGE_SECRET ||
	       t->kind == T_FIELD;
}

/* A secret's read bits, as r-x for a folder that shows its parts. */
static uint32_t listing_mode(uint32_t mode)
{
	uint32_t r = mode & 0444;
	return r | (r >> 2);
}

static void set_time(struct timespec *ts, int64_t ms)
{
	ts->tv_sec = ms / 1000;
	ts->tv_nsec = (ms % 1000) * 1000000;
}

void target_stat(const struct target *t, unsigned long ino, struct stat *st)
{
	const struct sm_attr *a = &t->attr;
	uint32_t mode = a->mode;

	memset(st, 0, sizeof(*st));
	switch (t->kind) {
	case T_VIEW_ROOT:
		/* .deleted is sticky and world-writable like /tmp: owners restore
		 * their own; .stages is writable for creating through a label. */
		mode = t->view == VIEW_DELETED ? 01777 : 0555;
		break;
	case T_VIEW_FOLDER:
		if (t->view == VIEW_DELETED)
			mode = 01777;
		else if (t->view != VIEW_STAGES)
			mode = listing_mode(a->mode);
		break;
	case T_SECRET_DIR:
		mode = listing_mode(a->mode);
		break;
	case T_VERSION:
	case T_FIELD:
		mode = a->mode & 0444;
		break;
	default:
		break;
	}
	st->st_ino = ino;
	st->st_mode = (target_is_dir(t) ? S_IFDIR : S_IFREG) | mode;
	st->st_nlink = target_is_dir(t) ? 2 : 1;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = target_is_dir(t) ? 0 : (off_t)a->size;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	set_time(&st->st_atim, a->accessed_ms ? a->accessed_ms : a->created_ms);
	set_time(&st->st_mtim, a->changed_ms);
	/* No birth time through FUSE: ctime carries CreatedDate. */
	set_time(&st->st_ctim, a->created_ms);
	if (t->kind == T_DELETED_SECRET)
		set_time(&st->st_mtim, a->purge_ms); /* when it goes for good */
}
