#include "util/hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct hashmap {
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
};

static uint64_t hash_key(const char *key)
{
	/* FNV-1a: fast on short path-like keys, good enough spread. */
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

struct hashmap *hashmap_new(size_t initial_buckets)
{
	struct hashmap *map = calloc(1, sizeof(*map));
	if (!map)
		return NULL;
	map->nbuckets = initial_buckets < 16 ? 16 : initial_buckets;
	map->buckets = calloc(map->nbuckets, sizeof(*map->buckets));
	if (!map->buckets) {
		free(map);
		return NULL;
	}
	return map;
}

void hashmap_free(struct hashmap *map)
{
	if (!map)
		return;
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct entry *e = map->buckets[i];
		while (e) {
			struct entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(map->buckets);
	free(map);
}

size_t hashmap_count(const struct hashmap *map)
{
	return map->count;
}

static struct entry **find_slot(const struct hashmap *map, const char *key, uint64_t hash)
{
	struct entry **slot = &map->buckets[hash % map->nbuckets];
	while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
		slot = &(*slot)->next;
	return slot;
}

void *hashmap_get(const struct hashmap *map, const char *key)
{
	struct entry **slot = find_slot(map, key, hash_key(key));
	return *slot ? (*slot)->value : NULL;
}

static void grow(struct hashmap *map)
{
	size_t nbuckets = map->nbuckets * 2;
	struct entry **buckets = calloc(nbuckets, sizeof(*buckets));
	if (!buckets)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < map->nbuckets; i++) {
		struct entry *e = map->buckets[i];
		while (e) {
			struct entry *next = e->next;
			e->next = buckets[e->hash % nbuckets];
			buckets[e->hash % nbuckets] = e;
			e = next;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->nbuckets = nbuckets;
}

int hashmap_put(struct hashmap *map, const char *key, void *value, void **old_value)
{
	uint64_t hash = hash_key(key);
	struct entry **slot = find_slot(map, key, hash);

	if (old_value)
		*old_value = NULL;
	if (*slot) {
		if (old_value)
			*old_value = (*slot)->value;
		(*slot)->value = value;
		return 0;
	}
	size_t keylen = strlen(key);
	struct entry *e = malloc(sizeof(*e) + keylen + 1);
	if (!e)
		return -ENOMEM;
	memcpy(e->key, key, keylen + 1);
	e->hash = hash;
	e->value = value;
	e->next = NULL;
	*slot = e;
	map->count++;
	if (map->count > map->nbuckets)
		grow(map);
	return 0;
}

void *hashmap_remove(struct hashmap *map, const char *key)
{
	struct entry **slot = find_slot(map, key, hash_key(key));
	struct entry *e = *slot;
	if (!e)
		return NULL;
	void *value = e->value;
	*slot = e->next;
	free(e);
	map->count--;
	return value;
}

int hashmap_foreach(const struct hashmap *map,
		    int (*fn)(const char *key, void *value, void *ctx), void *ctx)
{
	for (size_t i = 0; i < map->nbuckets; i++) {
		for (struct entry *e = map->buckets[i]; e;) {
			struct entry *next = e->next; /* fn may not remove, but be safe */
			int rc = fn(e->key, e->value, ctx);
			if (rc)
				return rc;
			e = next;
		}
	}
	return 0;
}
