/*
 * notifier (fs/internal.h): tells the kernel of names another host removed,
 * so that it unhashes them as an unlink on this host would, and a program
 * watching such a file with inotify hears IN_DELETE_SELF, which is what the
 * kernel lets a FUSE daemon raise (docs/cluster.md, "Programs that watch
 * for change"). A name another host made needs nothing: this daemon never
 * lets the kernel cache a negative entry (a lookup's ENOENT is an error
 * reply), and the hook drops the folder's attributes.
 *
 * Why a thread of its own: the change hook of a remote change runs on the
 * replica's applying thread, holding the domain's writer lock; the kernel
 * carries out notify_delete holding the lock of the name's folder (and of
 * the name's inode), which a request on that folder (a create, an unlink)
 * holds while it waits in the daemon for that same writer lock. So
 * the hook only queues a notice, and this thread, holding nothing of the
 * daemon, delivers it; the kernel's lock is then released by the request
 * finishing, whatever it waits for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fs/internal.h"
#include "fs/nodes.h"
#include "util/log.h"

/* Bounds what waits while the thread is held up by the kernel's lock: a
 * notice dropped leaves a stale name for ENTRY_TIMEOUT at most. */
#define NOTICES_MAX 10000

struct notice {
	struct notice *next;
	uint64_t child; /* the node the kernel knew the name by */
	char name[];
};

struct notifier {
	struct fs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct notice *head, **tail;
	size_t count;
	bool dropping; /* logged once per run of overflow */
	bool stop;
};

/* Splits vpath at its last slash: parent into buf ("" for the top). */
static int split(const char *vpath, char *parent, size_t len, const char **base)
{
	const char *slash = strrchr(vpath, '/');
	size_t plen = slash ? (size_t)(slash - vpath) : 0;
	if (plen >= len)
		return -ENAMETOOLONG;
	memcpy(parent, vpath, plen);
	parent[plen] = '\0';
	*base = slash ? slash + 1 : vpath;
	return 0;
}

/* A name that lists nothing now: the kernel unhashes its entry as an
 * unlink would (notify_delete), if that entry is still the node it knew;
 * else only the cached entry goes. */
static void tell_gone(struct fs *fs, const struct notice *n)
{
	char parent[VPATH_MAX];
	const char *base;
	fuse_ino_t dir;
	int rc;
	if (split(n->name, parent, sizeof(parent), &base) || !(dir = nodes_find(fs->nodes, parent)))
		return;
	rc = fuse_lowlevel_notify_delete(fs->se, dir, n->child, base, strlen(base));
	/* -ENOENT: no entry of that node; -ENOTEMPTY: a folder the kernel
	 * still holds children of (gone here, so stale there). */
	if (rc)
		fuse_lowlevel_notify_inval_entry(fs->se, dir, base, strlen(base));
}

static void *run(void *arg)
{
	struct notifier *nt = arg;
	pthread_mutex_lock(&nt->lock);
	while (!nt->stop) {
		struct notice *n = nt->head;
		if (!n) {
			pthread_cond_wait(&nt->cond, &nt->lock);
			continue;
		}
		if (!(nt->head = n->next))
			nt->tail = &nt->head;
		nt->count--;
		pthread_mutex_unlock(&nt->lock);
		tell_gone(nt->fs, n);
		free(n);
		pthread_mutex_lock(&nt->lock);
	}
	pthread_mutex_unlock(&nt->lock);
	return NULL;
}

int notifier_start(struct fs *fs, struct notifier **out)
{
	struct notifier *nt = calloc(1, sizeof(*nt));
	int rc;
	*out = NULL;
	if (!nt)
		return -ENOMEM;
	nt->fs = fs;
	nt->tail = &nt->head;
	pthread_mutex_init(&nt->lock, NULL);
	pthread_cond_init(&nt->cond, NULL);
	if ((rc = pthread_create(&nt->thread, NULL, run, nt))) {
		pthread_cond_destroy(&nt->cond);
		pthread_mutex_destroy(&nt->lock);
		free(nt);
		return -rc;
	}
	*out = nt;
	return 0;
}

void notifier_post(struct notifier *nt, const char *name, uint64_t child)
{
	size_t len = strlen(name);
	struct notice *n;
	if (!nt)
		return;
	pthread_mutex_lock(&nt->lock);
	if (nt->count >= NOTICES_MAX || !(n = malloc(sizeof(*n) + len + 1))) {
		if (!nt->dropping)
			log_warn("kernel notices: %zu waiting, later ones dropped: names another "
				 "host changed may look stale here for up to %.0f s",
				 nt->count, ENTRY_TIMEOUT);
		nt->dropping = true;
		pthread_mutex_unlock(&nt->lock);
		return;
	}
	nt->dropping = false;
	n->next = NULL;
	n->child = child;
	memcpy(n->name, name, len + 1);
	*nt->tail = n;
	nt->tail = &n->next;
	nt->count++;
	pthread_cond_signal(&nt->cond);
	pthread_mutex_unlock(&nt->lock);
}

void notifier_stop(struct notifier *nt)
{
	if (!nt)
		return;
	pthread_mutex_lock(&nt->lock);
	nt->stop = true;
	pthread_cond_signal(&nt->cond);
	pthread_mutex_unlock(&nt->lock);
	pthread_join(nt->thread, NULL);
	while (nt->head) {
		struct notice *n = nt->head;
		nt->head = n->next;
		free(n);
	}
	pthread_cond_destroy(&nt->cond);
	pthread_mutex_destroy(&nt->lock);
	free(nt);
}
