/* Who may do what, for both adapters: include/secrets/access.h. */
#include "secrets/access.h"

#include <errno.h>
#include <stdio.h>

#include "secrets/names.h"
#include "util/log.h"

int access_check(struct sm *sm, const struct policy *p, struct audit *a,
		 const struct access_subject *subject, const char *event, const char *secret)
{
	char action[96], arn[SM_NAME_MAX + 128] = "";
	const struct audit_caller *who = subject->who;
	if (!p)
		return 0;
	snprintf(action, sizeof(action), "secretsmanager:%s", event);
	if (secret && secret[0])
		sm_arn_of(sm, secret, arn, sizeof(arn));
	struct policy_request r = { .uid = who->uid, .gids = subject->gids, .ngids = subject->ngids,
				    .action = action, .name = secret ? secret : "",
				    .arn = arn[0] ? arn : NULL, .principal = who->principal };
	if (policy_allows(p, &r))
		return 0;
	if (who->principal)
		log_warn("%s: refused by the access policy: principal %s from %s, %s",
			 secret && secret[0] ? secret : "/", who->principal,
			 who->source ? who->source : "?", action);
	else
		log_warn("%s: refused by the access policy: uid %u, %s",
			 secret && secret[0] ? secret : "/", (unsigned)who->uid, action);
	struct audit_event ev = { .name = event, .secret = secret && secret[0] ? secret : NULL };
	audit_record(a, who, &ev, -EACCES);
	return -EACCES;
}

int access_begin(struct audit *a, const struct audit_caller *who, const char *event,
		 const char *secret)
{
	if (!audit_required(a))
		return 0;
	struct audit_event ev = { .name = event, .secret = secret, .detail_key = "eventStatus",
				  .detail_value = "started" };
	return audit_record(a, who, &ev, 0) ? -EIO : 0;
}
