/*
 * filters: ListSecrets' Filters (reference §5.5), on a secret's metadata.
 *
 * name, tag-key, tag-value, primary-region and owning-service match a
 * prefix, case-sensitively; description and all match words: the value is
 * split at spaces, and each of its words must begin some word of the
 * field, ignoring case (all: of the name, description, tag keys or tag
 * values). A field's words are split at spaces, at its separator when it
 * uses only one kind of "/-_+=.@" (a field that mixes two kinds is one
 * word), and at case changes (COMPANYthings: COMPAN, Ythings). A value
 * beginning with "!" matches a secret none of whose fields match the rest.
 * Values of one filter: any may match; filters: all must.
 * A store has one region and no owning services: primary-region and
 * owning-service match only negated.
 */
#ifndef SECRETSFS_SECRETS_FILTERS_H
#define SECRETSFS_SECRETS_FILTERS_H

#include <stdbool.h>
#include <stddef.h>

#include "secrets/record.h"

#define FILTERS_MAX 10
#define FILTER_VALUES_MAX 10
#define FILTER_VALUE_MAX 512

enum filter_key {
	FILTER_DESCRIPTION,
	FILTER_NAME,
	FILTER_TAG_KEY,
	FILTER_TAG_VALUE,
	FILTER_PRIMARY_REGION,
	FILTER_OWNING_SERVICE,
	FILTER_ALL,
};

struct sm_filter {
	enum filter_key key;
	const char *const *values;
	size_t nvalues;
};

/* "description", "name", ... into *out; -EINVAL for any other. */
int filter_key_parse(const char *name, enum filter_key *out);
/* A value as the service allows it: up to 512 characters of letters,
 * digits, space and ":_@/+=.-!", "!" first to negate; -EINVAL with *why. */
int filter_value_check(const char *value, const char **why);
bool filter_matches(const struct sm_secret *s, const struct sm_filter *filters, size_t n);

#endif
