/*
 * The door every mutation of the domain goes through: the writer lock,
 * taken only when the store may change now, and the re-planning of an
 * operation whose commit another host made stale (docs/replication.md).
 *
 * A local store has no cluster hooks: write_begin is the read-only check
 * and the lock, and no commit is ever -ESTALE. A replica's hooks come from
 * the CLI, which knows the cluster layer the domain must not include.
 * write_begin_local is the same door without the cluster's say.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"

void sm_set_cluster_hooks(struct sm *sm, sm_writable_fn writable, sm_wait_applied_fn wait_applied,
			  void *ctx)
{
	sm->writable = writable;
	sm->wait_applied = wait_applied;
	sm->cluster_ctx = ctx;
}

/* -EROFS on a read-only store; then, when asked for, the cluster's say. */
static int may_change(struct sm *sm, bool ask_cluster)
{
	if (sm->opt.readonly)
		return -EROFS;
	return ask_cluster && sm->writable ? sm->writable(sm->cluster_ctx) : 0;
}

int sm_writable(struct sm *sm)
{
	return may_change(sm, true);
}

static int begin(struct sm *sm, bool ask_cluster)
{
	int rc = may_change(sm, ask_cluster);
	if (!rc)
		pthread_mutex_lock(&sm->write_lock);
	return rc;
}

int write_begin(struct sm *sm)
{
	return begin(sm, true);
}

int write_begin_local(struct sm *sm)
{
	return begin(sm, false);
}

void write_end(struct sm *sm)
{
	pthread_mutex_unlock(&sm->write_lock);
}

bool write_again(struct sm *sm, const char *what, int *rc, int *tries)
{
	if (*rc != -ESTALE)
		return false;
	if (++*tries > SM_STALE_RETRIES) {
		log_warn("%s: refused: another host changed what this change was planned on %d "
			 "times running; given up (EBUSY)", what, *tries);
		*rc = -EBUSY;
		return false;
	}
	/* Plan again on what the other host committed: the replica applies it
	 * (taking the writer lock this operation has let go). A wait that
	 * times out still tries again: the commit compares once more. */
	int w = sm->wait_applied ? sm->wait_applied(sm->cluster_ctx, SM_STALE_WAIT_MS) : 0;
	if (w && w != -ETIMEDOUT) {
		log_warn("%s: not planned again: waiting for the replica failed: %s", what,
			 strerror(-w));
		*rc = w;
		return false;
	}
	log_info("%s: changed on another host meanwhile; planning the change again (%d)", what,
		 *tries);
	return true;
}
