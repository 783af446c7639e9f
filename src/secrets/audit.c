/* The audit trail; include/secrets/audit.h is the contract. */
#include "secrets/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/timeutil.h"

struct audit {
	int fd;
	bool required;
	struct sm *sm;
};

int audit_open(const char *path, bool required, struct sm *sm, struct audit **out)
{
	*out = NULL;
	if (!path)
		return 0;
	struct audit *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->fd < 0) {
		int rc = -errno;
		free(a);
		return rc;
	}
	a->required = required;
	a->sm = sm;
	*out = a;
	return 0;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	close(a->fd);
	free(a);
}

bool audit_required(const struct audit *a)
{
	return a && a->required;
}

/* A JSON line under construction; long lines are cut, never split. */
struct line {
	char buf[8192];
	size_t len;
	bool overflow;
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->len + n >= sizeof(l->buf)) {
		l->overflow = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_json(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
		if (*p == '"' || *p == '\\') {
			char two[2] = { '\\', (char)*p };
			put(l, two, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			put(l, esc, 6);
		} else {
			put(l, (const char *)p, 1);
		}
	}
	put(l, "\"", 1);
}

static void put_field(struct line *l, const char *key, const char *value)
{
	put_json(l, key);
	put(l, ":", 1);
	put_json(l, value);
}

static void put_number(struct line *l, const char *key, long long n)
{
	char num[32];
	put_json(l, key);
	snprintf(num, sizeof(num), ":%lld", n);
	put_str(l, num);
}

/* userIdentity, and for an API caller where it called from. */
static void put_caller(struct line *l, const struct audit_caller *who, const char *exe)
{
	if (who->principal) {
		/* An access key of the credentials file is an IAM user's, as
		 * CloudTrail names it; a request under --auth none has none. */
		put_str(l, who->access_key_id ? ",\"userIdentity\":{\"type\":\"IAMUser\","
					      : ",\"userIdentity\":{\"type\":\"Unknown\",");
		put_field(l, "userName", who->principal);
		if (who->access_key_id) {
			put_str(l, ",");
			put_field(l, "accessKeyId", who->access_key_id);
		}
		put_str(l, "}");
		if (who->source) {
			put_str(l, ",");
			put_field(l, "sourceIPAddress", who->source);
		}
		if (who->user_agent) {
			put_str(l, ",");
			put_field(l, "userAgent", who->user_agent);
		}
		return;
	}
	put_str(l, ",\"userIdentity\":{\"type\":\"LocalUser\",");
	put_number(l, "uid", who->uid);
	put_str(l, ",");
	put_number(l, "gid", who->gid);
	put_str(l, ",");
	put_number(l, "pid", who->pid);
	put_str(l, ",");
	put_field(l, "executable", exe);
	put_str(l, "}");
}

static const char *error_code(int outcome)
{
	switch (-outcome) {
	case ENOENT: case ENODATA: return "ResourceNotFoundException";
	case EEXIST: return "ResourceExistsException";
	case EINVAL: return "InvalidParameterException";
	case EACCES: case EPERM: return "AccessDeniedException";
	case EFBIG: case E2BIG: case ENOSPC: return "LimitExceededException";
	case EBUSY: return "InvalidRequestException";
	case EIO: return "DecryptionFailure";
	case ECANCELED: return "RequestCanceled"; /* its writer was killed */
	default: return "InternalServiceError";
	}
}

int audit_record(struct audit *a, const struct audit_caller *who, const struct audit_event *ev,
		 int outcome)
{
	struct line l = { .len = 0 };
	char date[40], exe[4096] = "", link[64], uuid[37], arn[SM_NAME_MAX + 128] = "";
	if (!a)
		return 0;
	time_format_iso8601(time_now_ms(), date, sizeof(date));
	/* Best effort: the caller may be gone, or in another pid namespace. */
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)who->pid);
	ssize_t n = who->pid > 0 && !who->principal ? readlink(link, exe, sizeof(exe) - 1) : -1;
	exe[n > 0 ? n : 0] = '\0';
	keyring_new_uuid(uuid);
	if (ev->secret)
		sm_arn_of(a->sm, ev->secret, arn, sizeof(arn));
	put_str(&l, "{");
	put_field(&l, "eventVersion", "1.08");
	put_str(&l, ",");
	put_field(&l, "eventTime", date);
	put_str(&l, ",");
	put_field(&l, "eventSource", ev->source ? ev->source : "secretsmanager.amazonaws.com");
	put_str(&l, ",");
	put_field(&l, "eventName", ev->name);
	put_caller(&l, who, exe);
	put_str(&l, ",\"requestParameters\":{");
	bool first = true;
	if (ev->secret) {
		put_field(&l, "secretId", arn[0] ? arn : ev->secret);
		put_str(&l, ",");
		put_field(&l, "name", ev->secret);
		first = false;
	}
	if (ev->version_id && ev->version_id[0]) {
		put_str(&l, first ? "" : ",");
		put_field(&l, "versionId", ev->version_id);
		first = false;
	}
	if (ev->stage) {
		put_str(&l, first ? "" : ",");
		put_field(&l, "versionStage", ev->stage);
		first = false;
	}
	if (ev->detail_key && ev->detail_value) {
		put_str(&l, first ? "" : ",");
		put_field(&l, ev->detail_key, ev->detail_value);
		first = false;
	}
	if (ev->force_delete)
		put_str(&l, first ? "\"forceDeleteWithoutRecovery\":true"
				  : ",\"forceDeleteWithoutRecovery\":true");
	put_str(&l, "},");
	put_str(&l, ev->read_only ? "\"readOnly\":true," : "\"readOnly\":false,");
	if (outcome) {
		put_field(&l, "errorCode", ev->error_code ? ev->error_code : error_code(outcome));
		put_str(&l, ",");
		put_field(&l, "errorMessage", strerror(-outcome));
		put_str(&l, ",");
	}
	put_field(&l, "eventID", uuid);
	put_str(&l, "}\n");
	if (l.overflow) {
		/* A field too long for a line: say so rather than cut the JSON. */
		l.len = 0;
		l.overflow = false;
		put_str(&l, "{");
		put_field(&l, "eventTime", date);
		put_str(&l, ",");
		put_field(&l, "eventName", ev->name);
		put_str(&l, ",\"truncated\":true}\n");
	}
	ssize_t w = write(a->fd, l.buf, l.len);
	if (w != (ssize_t)l.len) {
		log_error("audit log write failed: %s", w < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}
