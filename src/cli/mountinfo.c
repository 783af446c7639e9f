/*
 * mountinfo: what /proc/self/mountinfo says is mounted where. For messages
 * that say where a store is mounted, for backup through the daemon, and
 * for refusing a mount on top of another FUSE mount.
 *
 * Any user can mount a FUSE filesystem of type fuse.secretsfs whose source
 * names any store (fusermount3 -o fsname=STORE,subtype=secretsfs): the
 * type and source alone prove nothing. What a user cannot choose is the
 * user_id= the kernel shows among the super options (fusermount3 sets it
 * to the caller and refuses it as an option), so a mount of a store is one
 * that root or the store file's owner made.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

/* mountinfo writes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* user_id=N among a FUSE mount's super options, or -1. */
static long super_user_id(const char *opts)
{
	for (const char *o = opts; o; o = strchr(o, ',')) {
		if (*o == ',')
			o++;
		if (strncmp(o, "user_id=", 8) != 0)
			continue;
		char *end;
		long id = strtol(o + 8, &end, 10);
		return end != o + 8 && (*end == ',' || *end == '\0') && id >= 0 ? id : -1;
	}
	return -1;
}

/* One line into e: 0, or -EINVAL for a line that does not parse. */
static int parse_line(const char *line, struct mount_entry *e)
{
	char point[sizeof(e->point)], fstype[sizeof(e->fstype)], source[sizeof(e->source)];
	char opts[1024] = "";
	const char *sep = strstr(line, " - ");
	if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
	    sscanf(sep + 3, "%63s %4095s %1023s", fstype, source, opts) < 2)
		return -EINVAL;
	unescape(point);
	unescape(source);
	memcpy(e->point, point, sizeof(point));
	memcpy(e->fstype, fstype, sizeof(fstype));
	memcpy(e->source, source, sizeof(source));
	e->user_id = super_user_id(opts);
	return 0;
}

/* The last entry (the topmost mount) that match() accepts: 0 or -ENOENT. */
static int find_last(int (*match)(const struct mount_entry *, const void *), const void *arg,
		     struct mount_entry *out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[10240];
	struct mount_entry e;
	int rc = -ENOENT;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (parse_line(line, &e) == 0 && match(&e, arg)) {
			*out = e;
			rc = 0;
		}
	fclose(f);
	return rc;
}

static int point_is(const struct mount_entry *e, const void *path)
{
	return strcmp(e->point, path) == 0;
}

/* A secretsfs mount made by root or by the owner of the store file. */
static bool made_by(const struct mount_entry *e, uid_t store_owner)
{
	return strcmp(e->fstype, "fuse.secretsfs") == 0 &&
	       (e->user_id == 0 || (e->user_id > 0 && (uid_t)e->user_id == store_owner));
}

bool mountinfo_is_store(const struct mount_entry *e)
{
	struct stat sb;
	return strcmp(e->fstype, "fuse.secretsfs") == 0 && stat(e->source, &sb) == 0 &&
	       made_by(e, sb.st_uid);
}

struct store_file {
	const char *path;
	uid_t owner;
};

static int mount_of(const struct mount_entry *e, const void *arg)
{
	const struct store_file *f = arg;
	return strcmp(e->source, f->path) == 0 && made_by(e, f->owner);
}

int mountinfo_at(const char *path_abs, struct mount_entry *out)
{
	return find_last(point_is, path_abs, out);
}

int mountinfo_of_store(const char *store_abs, struct mount_entry *out)
{
	struct stat sb;
	if (stat(store_abs, &sb) != 0)
		return -errno;
	struct store_file f = { store_abs, sb.st_uid };
	return find_last(mount_of, &f, out);
}

const char *mountinfo_busy(const char *store, const char *advice, char *buf, size_t cap)
{
	struct mount_entry e;
	char *abs = realpath(store, NULL);
	int found = abs && mountinfo_of_store(abs, &e) == 0;
	free(abs);
	if (found)
		snprintf(buf, cap, "already mounted at %s%s", e.point, advice);
	else
		snprintf(buf, cap, "in use by another process (a secretsfs command, or a mount in "
				   "another mount namespace)");
	return buf;
}
