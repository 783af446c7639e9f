/*
 * replica_config (cluster/replica.h): how a replica reaches etcd, as the
 * JSON record "sfs/cluster" holds it, and the rule for which tdb keys are
 * shared through etcd.
 */
#include "cluster/replica.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util/log.h"

static bool has_prefix(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

bool replica_key_shared(const char *key)
{
	/* The store's records; not "sfs/state" (each replica's own sum over
	 * its own records) nor the replica's bookkeeping. */
	return has_prefix(key, "secret/") || has_prefix(key, "dir/") || has_prefix(key, "ver/") ||
	       has_prefix(key, "key/") || has_prefix(key, "cat/") ||
	       strcmp(key, "sfs/header") == 0 || strcmp(key, "sfs/format") == 0;
}

const char *replica_state_name(enum replica_state s)
{
	switch (s) {
	case REPLICA_SYNCED: return "synced";
	case REPLICA_DEGRADED: return "degraded";
	case REPLICA_OFFLINE: return "offline";
	case REPLICA_RESYNCING: return "resyncing";
	}
	return "unknown";
}

void replica_config_free(struct replica_config *c)
{
	for (size_t i = 0; i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->prefix);
	free(c->user);
	free(c->password_file);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	memset(c, 0, sizeof(*c));
}

static int add_endpoint(struct replica_config *c, const char *url, size_t len)
{
	if (len == 0 || len > 200 ||
	    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
		log_error("etcd endpoints: '%.*s' is not an http:// or https:// URL (of at most "
			  "200 characters)", (int)(len > 200 ? 200 : len), url);
		return -EINVAL;
	}
	if (c->n_endpoints == ETCD_ENDPOINTS_MAX) {
		log_error("etcd endpoints: at most %d", ETCD_ENDPOINTS_MAX);
		return -EINVAL;
	}
	char **grown = realloc(c->endpoints, (c->n_endpoints + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->endpoints = grown;
	if (!(c->endpoints[c->n_endpoints] = strndup(url, len)))
		return -ENOMEM;
	c->n_endpoints++;
	return 0;
}

int replica_config_set_endpoints(struct replica_config *c, const char *list)
{
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int rc = add_endpoint(c, p, len);
		if (rc)
			return rc;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

static int put_text(json_object *o, const char *name, const char *value)
{
	if (!value)
		return 0;
	json_object *s = json_object_new_string(value);
	if (!s || json_object_object_add(o, name, s)) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

int replica_config_encode(const struct replica_config *c, char **json)
{
	json_object *o = json_object_new_object(), *eps = json_object_new_array();
	int rc = (!o || !eps) ? -ENOMEM : 0;
	for (size_t i = 0; !rc && i < c->n_endpoints; i++) {
		json_object *s = json_object_new_string(c->endpoints[i]);
		if (!s || json_object_array_add(eps, s)) {
			json_object_put(s);
			rc = -ENOMEM;
		}
	}
	if (!rc) {
		rc = json_object_object_add(o, "endpoints", eps) ? -ENOMEM : 0;
		if (!rc)
			eps = NULL;
	}
	if (!rc)
		rc = put_text(o, "prefix", c->prefix) ?: put_text(o, "user", c->user) ?:
		     put_text(o, "password_file", c->password_file) ?:
		     put_text(o, "ca_file", c->ca_file) ?: put_text(o, "cert_file", c->cert_file) ?:
		     put_text(o, "key_file", c->key_file);
	if (!rc) {
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		if (!text || !(*json = strdup(text)))
			rc = -ENOMEM;
	}
	json_object_put(eps);
	json_object_put(o);
	return rc;
}

static int get_text(json_object *o, const char *name, bool required, char **out)
{
	json_object *v;
	if (!json_object_object_get_ex(o, name, &v))
		return required ? -EBADMSG : 0;
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	return (*out = strdup(json_object_get_string(v))) ? 0 : -ENOMEM;
}

int replica_config_decode(const uint8_t *json, size_t len, struct replica_config *out)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o = NULL, *eps;
	int rc = -EBADMSG;
	memset(out, 0, sizeof(*out));
	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, (const char *)json, (int)len);
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "endpoints", &eps) ||
	    !json_object_is_type(eps, json_type_array))
		goto out;
	for (size_t i = 0; i < json_object_array_length(eps); i++) {
		json_object *e = json_object_array_get_idx(eps, i);
		if (!json_object_is_type(e, json_type_string) ||
		    add_endpoint(out, json_object_get_string(e), strlen(json_object_get_string(e))))
			goto out;
	}
	rc = get_text(o, "prefix", true, &out->prefix) ?: get_text(o, "user", false, &out->user) ?:
	     get_text(o, "password_file", false, &out->password_file) ?:
	     get_text(o, "ca_file", false, &out->ca_file) ?:
	     get_text(o, "cert_file", false, &out->cert_file) ?:
	     get_text(o, "key_file", false, &out->key_file);
	if (!rc && (!out->n_endpoints || !out->prefix[0]))
		rc = -EBADMSG;
out:
	if (rc) {
		log_error("store record sfs/cluster is not a cluster configuration");
		replica_config_free(out);
	}
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}
