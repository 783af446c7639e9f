#include "fs/nodes.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

struct node {
	uint64_t ino;
	uint64_t nlookup;
	char *vpath;
	bool detached;
};

struct node_table {
	pthread_mutex_t lock;
	struct hashmap *by_path; /* vpath -> node (attached nodes only) */
	struct hashmap *by_ino;  /* decimal ino -> node */
	uint64_t next_ino;
	struct node root;
};

struct node_table *nodes_new(void)
{
	struct node_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->by_path = hashmap_new(1024);
	t->by_ino = hashmap_new(1024);
	t->root.ino = NODES_ROOT_INO;
	t->root.vpath = strdup("");
	t->next_ino = NODES_ROOT_INO + 1;
	if (!t->by_path || !t->by_ino || !t->root.vpath) {
		nodes_free(t);
		return NULL;
	}
	return t;
}

static int free_node(const char *key, void *value, void *ctx)
{
	struct node *n = value;
	(void)key;
	(void)ctx;
	free(n->vpath);
	free(n);
	return 0;
}

void nodes_free(struct node_table *t)
{
	if (!t)
		return;
	if (t->by_ino)
		hashmap_foreach(t->by_ino, free_node, NULL);
	hashmap_free(t->by_ino);
	hashmap_free(t->by_path);
	free(t->root.vpath);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void ino_key(uint64_t ino, char buf[24])
{
	snprintf(buf, 24, "%llu", (unsigned long long)ino);
}

static struct node *find_ino(struct node_table *t, uint64_t ino)
{
	char key[24];
	if (ino == NODES_ROOT_INO)
		return &t->root;
	ino_key(ino, key);
	return hashmap_get(t->by_ino, key);
}

uint64_t nodes_find(struct node_table *t, const char *vpath)
{
	if (vpath[0] == '\0')
		return NODES_ROOT_INO;
	pthread_mutex_lock(&t->lock);
	struct node *n = hashmap_get(t->by_path, vpath);
	uint64_t ino = n ? n->ino : 0;
	pthread_mutex_unlock(&t->lock);
	return ino;
}

uint64_t nodes_lookup(struct node_table *t, const char *vpath, bool *first)
{
	char key[24];
	uint64_t ino = 0;
	if (first)
		*first = false;
	if (vpath[0] == '\0')
		return NODES_ROOT_INO;
	pthread_mutex_lock(&t->lock);
	struct node *n = hashmap_get(t->by_path, vpath);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n || !(n->vpath = strdup(vpath)))
			goto fail;
		n->ino = t->next_ino++;
		ino_key(n->ino, key);
		if (hashmap_put(t->by_ino, key, n, NULL))
			goto fail;
		if (hashmap_put(t->by_path, vpath, n, NULL)) {
			hashmap_remove(t->by_ino, key);
			goto fail;
		}
	}
	if (first)
		*first = n->nlookup == 0;
	n->nlookup++;
	ino = n->ino;
	pthread_mutex_unlock(&t->lock);
	return ino;
fail:
	if (n)
		free(n->vpath);
	free(n);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void nodes_forget(struct node_table *t, uint64_t ino, uint64_t nlookup)
{
	char key[24];
	if (ino == NODES_ROOT_INO)
		return;
	pthread_mutex_lock(&t->lock);
	struct node *n = find_ino(t, ino);
	if (n) {
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		if (n->nlookup == 0) {
			ino_key(ino, key);
			hashmap_remove(t->by_ino, key);
			if (!n->detached && hashmap_get(t->by_path, n->vpath) == n)
				hashmap_remove(t->by_path, n->vpath);
			free(n->vpath);
			free(n);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

int nodes_path(struct node_table *t, uint64_t ino, char *buf, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&t->lock);
	struct node *n = find_ino(t, ino);
	if (!n)
		rc = -ENOENT;
	else if (n->detached)
		rc = -ESTALE;
	else if ((size_t)snprintf(buf, len, "%s", n->vpath) >= len)
		rc = -ENAMETOOLONG;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static void detach_locked(struct node_table *t, const char *vpath)
{
	struct node *n = hashmap_remove(t->by_path, vpath);
	if (n)
		n->detached = true;
}

void nodes_detach(struct node_table *t, const char *vpath)
{
	pthread_mutex_lock(&t->lock);
	detach_locked(t, vpath);
	pthread_mutex_unlock(&t->lock);
}

struct move_ctx {
	const char *from;
	size_t from_len;
	struct node **moving;
	size_t count;
};

static int collect_moving(const char *key, void *value, void *ctx)
{
	struct move_ctx *m = ctx;
	if (strncmp(key, m->from, m->from_len) != 0 || (key[m->from_len] != '\0' && key[m->from_len] != '/'))
		return 0;
	struct node **moving = realloc(m->moving, (m->count + 1) * sizeof(*moving));
	if (!moving)
		return -ENOMEM;
	m->moving = moving;
	moving[m->count++] = value;
	return 0;
}

void nodes_move(struct node_table *t, const char *from, const char *to)
{
	struct move_ctx m = { from, strlen(from), NULL, 0 };
	pthread_mutex_lock(&t->lock);
	hashmap_foreach(t->by_path, collect_moving, &m);
	/* Whatever stood at the target (and below it) was replaced. */
	struct move_ctx old = { to, strlen(to), NULL, 0 };
	hashmap_foreach(t->by_path, collect_moving, &old);
	for (size_t i = 0; i < old.count; i++)
		detach_locked(t, old.moving[i]->vpath);
	for (size_t i = 0; i < m.count; i++)
		hashmap_remove(t->by_path, m.moving[i]->vpath);
	for (size_t i = 0; i < m.count; i++) {
		struct node *n = m.moving[i];
		char *path = NULL;
		if (asprintf(&path, "%s%s", to, n->vpath + m.from_len) < 0 ||
		    hashmap_put(t->by_path, path, n, NULL)) {
			free(path);
			n->detached = true; /* no memory: the kernel will look it up again */
			continue;
		}
		free(n->vpath);
		n->vpath = path;
	}
	pthread_mutex_unlock(&t->lock);
	free(m.moving);
	free(old.moving);
}
