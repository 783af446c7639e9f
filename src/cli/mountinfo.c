/*
 * mountinfo: what /proc/self/mountinfo says is mounted where. For messages
 * that say where a store is mounted, and for refusing a mount on top of
 * another FUSE mount.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One line into e: 0, or -EINVAL for a line that does not parse. */
static int parse_line(const char *line, struct mount_entry *e)
{
	char point[sizeof(e->point)], fstype[sizeof(e->fstype)], source[sizeof(e->source)];
	const char *sep = strstr(line, " - ");
	if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
	    sscanf(sep + 3, "%63s %4095s", fstype, source) != 2)
		return -EINVAL;
	unescape(point);
	unescape(source);
	memcpy(e->point, point, sizeof(point));
	memcpy(e->fstype, fstype, sizeof(fstype));
	memcpy(e->source, source, sizeof(source));
	return 0;
}

/* The last entry (the topmost mount) that match() accepts: 0 or -ENOENT. */
static int find_last(int (*match)(const struct mount_entry *, const char *), const char *arg,
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

static int point_is(const struct mount_entry *e, const char *path)
{
	return strcmp(e->point, path) == 0;
}

static int secretsfs_of(const struct mount_entry *e, const char *store_abs)
{
	return strcmp(e->fstype, "fuse.secretsfs") == 0 && strcmp(e->source, store_abs) == 0;
}

int mountinfo_at(const char *path_abs, struct mount_entry *out)
{
	return find_last(point_is, path_abs, out);
}

int mountinfo_of_store(const char *store_abs, struct mount_entry *out)
{
	return find_last(secretsfs_of, store_abs, out);
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
