#include "secrets/names.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static bool allowed_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("/_+=.@-", c) != NULL;
}

static int refuse(const char **why, const char *rule)
{
	if (why)
		*why = rule;
	return -EINVAL;
}

int name_check_component(const char *component, bool top_level, const char **why)
{
	size_t len = strlen(component);
	if (len == 0)
		return refuse(why, "a name may not have an empty path component");
	if (strcmp(component, ".") == 0 || strcmp(component, "..") == 0)
		return refuse(why, "a name may not have a '.' or '..' component");
	if (top_level && component[0] == '.')
		return refuse(why, "top-level names beginning with '.' are reserved for secretsfs");
	for (size_t i = 0; i < len; i++) {
		if (component[i] == '/' || !allowed_char((unsigned char)component[i]))
			return refuse(why, "names may contain only ASCII letters, digits and /_+=.@-");
	}
	return 0;
}

int name_check(const char *name, const char **why)
{
	size_t len = strlen(name);
	if (len == 0)
		return refuse(why, "a name must be at least 1 character");
	if (len > SM_NAME_MAX)
		return refuse(why, "a name may be at most 512 characters");
	const char *start = name;
	bool top = true;
	for (;;) {
		const char *slash = strchr(start, '/');
		size_t clen = slash ? (size_t)(slash - start) : strlen(start);
		char component[SM_NAME_MAX + 1];
		memcpy(component, start, clen);
		component[clen] = '\0';
		int rc = name_check_component(component, top, why);
		if (rc)
			return rc;
		if (!slash)
			return 0;
		start = slash + 1;
		top = false;
	}
}

/* vim's swap files: .NAME.swp, and .swo ... .swa when that one is taken. */
static bool is_swap_name(const char *c)
{
	size_t len = strlen(c);
	return len > 5 && c[0] == '.' && c[len - 4] == '.' && c[len - 3] == 's' &&
	       c[len - 2] == 'w' && c[len - 1] >= 'a' && c[len - 1] <= 'p';
}

bool name_is_scratch(const char *name)
{
	static const char *const views[] = { ".versions", ".stages", ".fields", ".deleted" };
	const char *why, *slash = strrchr(name, '/');
	const char *leaf = slash ? slash + 1 : name;
	char folder[SM_NAME_MAX + 1], stem[256];
	size_t len = strlen(leaf);

	if (len == 0 || len > 255 || strlen(name) > SM_NAME_MAX)
		return false;
	/* The folder part, if any, must be a valid name. */
	if (slash && ((size_t)(slash - name) >= sizeof(folder) ||
		      (snprintf(folder, sizeof(folder), "%.*s", (int)(slash - name), name),
		       name_check(folder, &why))))
		return false;
	if (leaf[len - 1] == '~') {
		/* Editors' backups (NAME~): the name before the tilde must be valid. */
		memcpy(stem, leaf, len - 1);
		stem[len - 1] = '\0';
		return len > 1 && name_check_component(stem, false, &why) == 0;
	}
	if (name_check_component(leaf, false, &why) != 0)
		return false;
	if (is_swap_name(leaf))
		return true;
	if (slash || leaf[0] != '.')
		return false;
	for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
		if (strcmp(leaf, views[i]) == 0)
			return false; /* the views' own names */
	return true;
}

bool name_scratch_owner(const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(name, '/');
	const char *leaf = slash ? slash + 1 : name;
	size_t folder = (size_t)(leaf - name), llen = strlen(leaf), skip, stem;

	if (!name_is_scratch(name))
		return false;
	if (leaf[llen - 1] == '~') {
		skip = 0; /* NAME~ */
		stem = llen - 1;
	} else if (is_swap_name(leaf)) {
		skip = 1; /* .NAME.swp */
		stem = llen - 5;
	} else {
		return false;
	}
	if (folder + stem >= len)
		return false;
	snprintf(buf, len, "%.*s%.*s", (int)folder, name, (int)stem, leaf + skip);
	return name_check(buf, NULL) == 0;
}

int name_check_version_id(const char *id, const char **why)
{
	size_t len = strlen(id);
	if (len < SM_VERSION_ID_MIN || len > SM_VERSION_ID_MAX)
		return refuse(why, "a version id is 32 to 64 characters");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		/* Version ids become file names under .versions/. */
		if (c <= ' ' || c >= 0x7f || c == '/')
			return refuse(why, "a version id is printable ASCII without '/'");
	}
	return 0;
}

int name_check_label(const char *label, const char **why)
{
	size_t len = strlen(label);
	if (len < 1 || len > SM_LABEL_MAX)
		return refuse(why, "a staging label is 1 to 256 characters");
	if (strcmp(label, ".") == 0 || strcmp(label, "..") == 0)
		return refuse(why, "a staging label may not be '.' or '..'");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)label[i];
		if (c <= ' ' || c >= 0x7f || c == '/')
			return refuse(why, "a staging label is printable ASCII without '/' or spaces");
	}
	return 0;
}

char *name_parent(const char *name, char *buf, size_t len)
{
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;
	if (plen >= len)
		plen = len - 1;
	memcpy(buf, name, plen);
	buf[plen] = '\0';
	return buf;
}

int name_join(const char *folder, const char *leaf, char *buf, size_t len)
{
	int n = folder[0] ? snprintf(buf, len, "%s/%s", folder, leaf)
			  : snprintf(buf, len, "%s", leaf);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

bool name_is_below(const char *name, const char *folder)
{
	size_t flen = strlen(folder);
	if (flen == 0)
		return true;
	return strncmp(name, folder, flen) == 0 && (name[flen] == '\0' || name[flen] == '/');
}

bool value_is_string(const unsigned char *v, size_t len)
{
	return !memchr(v, 0, len) && text_is_utf8(v, len);
}

bool text_is_utf8(const unsigned char *v, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = v[i];
		size_t extra;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			extra = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			extra = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			extra = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + extra >= len)
			return false;
		for (size_t k = 1; k <= extra; k++) {
			if ((v[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (v[i + k] & 0x3f);
		}
		/* Reject overlong forms, surrogates and values past U+10FFFF. */
		if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
		    (extra == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += extra + 1;
	}
	return true;
}
