/*
 * A store replicated through etcd, from the command line (cli.h): init's
 * creating a store in etcd or joining one, and a mount's replica. The
 * domain and the replica meet here only, through callbacks: neither knows
 * the other (docs/replication.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/replica.h"
#include "secrets/keyring.h"
#include "secrets/secrets.h"
#include "store/store.h"

static int apply_to_domain(void *ctx, const struct store_op *ops, size_t count,
			   const struct store_op *local, bool (*keep)(void *kctx, const char *key),
			   void *kctx)
{
	return sm_apply(ctx, ops, count, local, keep, kctx);
}

static int domain_writable(void *ctx)
{
	return replica_writable(ctx);
}

static int domain_wait(void *ctx, long timeout_ms)
{
	return replica_wait(ctx, timeout_ms);
}

/* The store at path as a domain, unlocked with a secret already read. */
static int open_with(const char *path, const struct unlock_secret *secret, struct sm **out)
{
	struct store *st = NULL;
	struct keyring *kr = NULL;
	struct sm_options so = { .recovery_window_days = SM_DEFAULT_RECOVERY_DAYS,
				 .root_mode = 0755 };
	int rc = store_open(path, 0, &st);
	if (!rc && (rc = keyring_unlock(st, secret, &kr)))
		store_close(st);
	if (!rc)
		rc = sm_open(st, kr, &so, out); /* takes st and kr */
	return rc;
}

static int save_config(struct sm *sm, const struct replica_config *cfg)
{
	char *json = NULL;
	int rc = replica_config_encode(cfg, &json);
	if (!rc)
		rc = sm_local_put(sm, RECORD_KEY_CLUSTER, json, strlen(json));
	free(json);
	return rc;
}

static int save_applied(struct sm *sm, struct replica *r)
{
	struct replica_status s;
	char text[32];
	replica_status(r, &s);
	snprintf(text, sizeof(text), "%lld", (long long)s.applied_revision);
	return sm_local_put(sm, RECORD_KEY_REPLICA, text, strlen(text));
}

/* The end of an init: the revision applied recorded and said, or on
 * failure (rc) the new file removed; either way, all closed. */
static int finish(const char *path, struct sm *sm, struct replica *r, int rc, const char *done,
		  const char *prefix)
{
	if (!rc && (rc = save_applied(sm, r)))
		cli_error("%s: cannot record the revision applied: %s", path, strerror(-rc));
	if (!rc)
		printf("%s: %s the store in etcd under %s\n", path, done, prefix);
	replica_close(r);
	sm_close(sm);
	if (rc)
		unlink(path);
	return rc;
}

/* A new store: made here, then published into the empty prefix. */
static int create_new(const char *path, const struct unlock_secret *secret,
		      const struct replica_config *cfg, const char *region, const char *account)
{
	struct store *st = NULL;
	struct sm *sm = NULL;
	struct replica *r = NULL;
	char key_id[SM_KEY_ID_LEN + 1];
	int rc = store_open(path, STORE_CREATE, &st);
	if (rc) {
		cli_error("%s: cannot create store: %s", path, strerror(-rc));
		return rc;
	}
	rc = keyring_create(st, secret, region, account);
	store_close(st);
	if (rc) {
		cli_error("%s: cannot write the store's keys: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = open_with(path, secret, &sm))) {
		cli_error("%s: cannot open the new store: %s", path, strerror(-rc));
		goto fail;
	}
	/* The default named key now, by the one host that makes the store:
	 * two hosts writing first at once would each make one under its alias. */
	if ((rc = keyring_default_key(sm_keyring(sm), key_id)) || (rc = save_config(sm, cfg))) {
		cli_error("%s: cannot prepare the store: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = replica_open(cfg, sm_store(sm), 0, &r)) || (rc = replica_publish(r)))
		cli_error("%s: cannot create the store in etcd under %s: %s", path, cfg->prefix,
			  rc == -EEXIST ? "another host made one there first" : strerror(-rc));
fail:
	return finish(path, sm, r, rc, "created", cfg->prefix);
}

/* A store that etcd holds: a local replica made from its header and filled. */
static int join(const char *path, const struct unlock_secret *secret,
		const struct replica_config *cfg, const uint8_t *format, size_t format_len,
		const uint8_t *header, size_t header_len)
{
	struct sm *sm = NULL;
	struct replica *r = NULL;
	int rc = sm_create_replica(path, format, format_len, header, header_len, secret);
	if (rc) {
		cli_error("%s: cannot join the store in etcd under %s: %s", path, cfg->prefix,
			  rc == -ENOKEY || rc == -EACCES ? "the key or passphrase does not unlock it"
							 : strerror(-rc));
		return rc;
	}
	if ((rc = open_with(path, secret, &sm)) || (rc = save_config(sm, cfg))) {
		cli_error("%s: cannot open the new replica: %s", path, strerror(-rc));
		goto fail;
	}
	if ((rc = replica_open(cfg, sm_store(sm), 0, &r)) ||
	    (rc = replica_catch_up(r, apply_to_domain, sm)))
		cli_error("%s: cannot read the store from etcd: %s", path, strerror(-rc));
fail:
	return finish(path, sm, r, rc, "joined", cfg->prefix);
}

int cli_cluster_init(const char *path, const struct unlock_secret *secret,
		     const struct replica_config *cfg, const char *region, const char *account)
{
	struct replica *probe = NULL;
	uint8_t *format = NULL, *header = NULL;
	size_t format_len = 0, header_len = 0;
	int rc = replica_open(cfg, NULL, 0, &probe);
	if (rc) {
		cli_error("etcd: %s (see the messages above)", strerror(-rc));
		return rc;
	}
	rc = replica_fetch_header(probe, &format, &format_len, &header, &header_len);
	replica_close(probe);
	if (rc == -ENOENT)
		rc = create_new(path, secret, cfg, region, account);
	else if (!rc)
		rc = join(path, secret, cfg, format, format_len, header, header_len);
	else
		cli_error("etcd at %s: %s", cfg->endpoints[0],
			  rc == ETCD_E_NOTSENT ? "no member answers" :
			  rc == ETCD_E_UNKNOWN ? "no answer (no quorum?)" :
			  rc == -EBADMSG ? "the prefix holds something that is not a store" :
			  strerror(-rc));
	free(format);
	free(header);
	return rc;
}

int cli_cluster_attach(struct sm *sm, struct replica **out)
{
	struct replica_config cfg = { 0 };
	uint8_t *body = NULL;
	size_t len = 0;
	int64_t applied = 0;
	*out = NULL;
	int rc = sm_local_get(sm, RECORD_KEY_CLUSTER, &body, &len);
	if (rc == -ENOENT)
		return 0; /* a store of this host alone */
	if (!rc)
		rc = replica_config_decode(body, len, &cfg);
	free(body);
	body = NULL;
	if (rc) {
		cli_error("%s: its cluster record cannot be read: %s", store_path(sm_store(sm)),
			  strerror(-rc));
		return rc;
	}
	if (!sm_local_get(sm, RECORD_KEY_REPLICA, &body, &len)) {
		char text[32];
		snprintf(text, sizeof(text), "%.*s", (int)(len < 31 ? len : 31), (const char *)body);
		applied = strtoll(text, NULL, 10);
		free(body);
	}
	struct replica *r = NULL;
	if ((rc = replica_open(&cfg, sm_store(sm), applied, &r)) ||
	    (rc = replica_catch_up(r, apply_to_domain, sm)) ||
	    (rc = replica_start(r, apply_to_domain, sm))) {
		cli_error("%s: cannot replicate through etcd: %s", store_path(sm_store(sm)),
			  strerror(-rc));
		replica_close(r);
	} else {
		sm_set_cluster_hooks(sm, domain_writable, domain_wait, r);
		*out = r;
	}
	replica_config_free(&cfg);
	return rc;
}

static int refuse_detached(void *ctx)
{
	(void)ctx;
	return -EROFS;
}

void cli_cluster_detach(struct sm *sm, struct replica *r)
{
	if (!r)
		return;
	/* The read dates go out while etcd can still take them; after the
	 * replica is gone no change may land in this file alone (sm_close
	 * would otherwise store them here only, and the file would hold a
	 * record etcd never saw). */
	sm_flush_access(sm);
	sm_set_cluster_hooks(sm, refuse_detached, NULL, NULL);
	replica_close(r);
}

int cli_refuse_on_replica(struct sm *sm, const char *path, const char *what)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rc = sm_local_get(sm, RECORD_KEY_CLUSTER, &body, &len);
	free(body);
	if (rc == -ENOENT)
		return 0;
	cli_error("%s: %s: %s on the file would change this host's copy alone (not built for "
		  "replicas: docs/replication.md)", path,
		  rc ? "its cluster record cannot be read" : "a replica of a store in etcd", what);
	return -EPERM;
}
