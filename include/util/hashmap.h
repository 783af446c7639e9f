/*
 * hashmap: a string-keyed hash table with chaining.
 *
 * Keys are copied in; values are opaque pointers owned by the caller. Not
 * thread-safe: the owner provides locking. Iteration order is unspecified.
 */
#ifndef SECRETSFS_UTIL_HASHMAP_H
#define SECRETSFS_UTIL_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(size_t initial_buckets);
void hashmap_free(struct hashmap *map);
size_t hashmap_count(const struct hashmap *map);

void *hashmap_get(const struct hashmap *map, const char *key);
/* Inserts or replaces. Returns 0 or -ENOMEM; *old_value gets a replaced value or NULL. */
int hashmap_put(struct hashmap *map, const char *key, void *value, void **old_value);
/* Removes and returns the value, or NULL when absent. */
void *hashmap_remove(struct hashmap *map, const char *key);

/* Calls fn for every entry until it returns non-zero, which is returned. */
int hashmap_foreach(const struct hashmap *map,
		    int (*fn)(const char *key, void *value, void *ctx), void *ctx);

#endif
