/*
 * strlist: a growable list of copied strings (record keys collected by a
 * walk, to be acted on once the walk is over).
 */
#ifndef SECRETSFS_UTIL_STRLIST_H
#define SECRETSFS_UTIL_STRLIST_H

#include <stddef.h>

struct strlist {
	char **items;
	size_t count, cap;
};

/* Appends a copy of s; 0 or -ENOMEM. */
int strlist_add(struct strlist *l, const char *s);
/* Frees every string and the list; leaves it empty. */
void strlist_free(struct strlist *l);

#endif
