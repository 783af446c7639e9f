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
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/replica.h"
#include "secrets/keyring.h"
#include "secrets/secrets.h"
#include "store/store.h"
#include "util/files.h"
#include "util/log.h"

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

/*
 * The replica's note: its cluster record, copied beside the file as
 * STORE.etcd. A replica commits without syncing (etcd holds each commit
 * first), so a power loss can leave its file torn; the note is what makes
 * it again from etcd when it cannot be read, since the record inside may
 * be lost with it. It holds no secret (endpoints, prefix, user name and
 * file paths) and is trusted no more than the store file: a rebuild
 * accepts only a store the key unlocks, and records it authenticates.
 */
#define NOTE_MAX (64 * 1024)

static char *note_path(const char *path)
{
	char *p = NULL;
	return asprintf(&p, "%s.etcd", path) < 0 ? NULL : p;
}

static int write_note(const char *path, const struct replica_config *cfg)
{
	char *json = NULL, *old = NULL, *note = note_path(path);
	size_t old_len = 0;
	int rc = note ? replica_config_encode(cfg, &json) : -ENOMEM;
	if (!rc && !(files_read_small(note, NOTE_MAX, &old, &old_len) == 0 &&
		     old_len == strlen(json) && memcmp(old, json, old_len) == 0))
		rc = files_replace(note, json, strlen(json));
	if (rc)
		log_warn("%s: cannot write %s (%s): a damaged replica could not be made again "
			 "from etcd by itself", path, note ? note : "its note", strerror(-rc));
	free(old);
	free(json);
	free(note);
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
		  const struct replica_config *cfg)
{
	if (!rc && (rc = save_applied(sm, r)))
		cli_error("%s: cannot record the revision applied: %s", path, strerror(-rc));
	if (!rc && (rc = write_note(path, cfg)))
		cli_error("%s: cannot write its note %s.etcd: %s", path, path, strerror(-rc));
	if (!rc && done)
		printf("%s: %s the store in etcd under %s\n", path, done, cfg->prefix);
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
	return finish(path, sm, r, rc, "created", cfg);
}

/* A store that etcd holds: a local replica made from its header and filled. */
static int join(const char *path, const struct unlock_secret *secret,
		const struct replica_config *cfg, const uint8_t *format, size_t format_len,
		const uint8_t *header, size_t header_len, const char *done)
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
	return finish(path, sm, r, rc, done, cfg);
}

/* The store etcd holds under cfg->prefix, its format and header:
 * -ENOENT when the prefix is empty; other refusals printed. */
static int fetch_store(const struct replica_config *cfg, uint8_t **format, size_t *format_len,
		       uint8_t **header, size_t *header_len)
{
	struct replica *probe = NULL;
	int rc = replica_open(cfg, NULL, 0, &probe);
	if (rc) {
		cli_error("etcd: %s (see the messages above)", strerror(-rc));
		return rc;
	}
	rc = replica_fetch_header(probe, format, format_len, header, header_len);
	replica_close(probe);
	if (rc && rc != -ENOENT)
		cli_error("etcd at %s: %s", cfg->endpoints[0],
			  rc == ETCD_E_NOTSENT ? "no member answers" :
			  rc == ETCD_E_UNKNOWN ? "no answer (no quorum?)" :
			  rc == -EBADMSG ? "the prefix holds something that is not a store" :
			  strerror(-rc));
	return rc;
}

int cli_cluster_init(const char *path, const struct unlock_secret *secret,
		     const struct replica_config *cfg, const char *region, const char *account)
{
	uint8_t *format = NULL, *header = NULL;
	size_t format_len = 0, header_len = 0;
	int rc = fetch_store(cfg, &format, &format_len, &header, &header_len);
	if (rc == -ENOENT)
		rc = create_new(path, secret, cfg, region, account);
	else if (!rc)
		rc = join(path, secret, cfg, format, format_len, header, header_len, "joined");
	free(format);
	free(header);
	return rc;
}

bool cli_cluster_has_note(const char *path)
{
	char *note = note_path(path);
	bool has = note && access(note, F_OK) == 0;
	free(note);
	return has;
}

int cli_cluster_rebuild(const char *path, const struct unlock_secret *secret)
{
	struct replica_config cfg = { 0 };
	uint8_t *format = NULL, *header = NULL;
	size_t format_len = 0, header_len = 0, len = 0;
	char *note = note_path(path), *json = NULL, *fresh = NULL, *kept = NULL;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc = note ? files_read_small(note, NOTE_MAX, &json, &len) : -ENOMEM;
	if (rc) {
		cli_error("%s: cannot read %s: %s", path, note ? note : "its note", strerror(-rc));
		goto out;
	}
	if ((rc = replica_config_decode((const uint8_t *)json, len, &cfg))) {
		cli_error("%s: %s cannot be read as a cluster record: %s", path, note,
			  strerror(-rc));
		goto out;
	}
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
	if (asprintf(&fresh, "%s.rebuild", path) < 0 ||
	    asprintf(&kept, "%s.damaged-%s", path, stamp) < 0) {
		fresh = kept = NULL;
		rc = -ENOMEM;
		goto out;
	}
	fprintf(stderr, "secretsfs: %s: a replica that cannot be read (torn by a power loss, "
		"or damaged): made again from etcd under %s\n", path, cfg.prefix);
	log_warn("%s: a replica that cannot be read: made again from etcd under %s", path,
		 cfg.prefix);
	if ((rc = fetch_store(&cfg, &format, &format_len, &header, &header_len))) {
		if (rc == -ENOENT)
			cli_error("%s: etcd holds no store under %s", path, cfg.prefix);
		goto out;
	}
	unlink(fresh); /* a rebuild that died before its rename */
	if ((rc = join(fresh, secret, &cfg, format, format_len, header, header_len, NULL)))
		goto out;
	/* The damaged file kept for a look, under a name no mount opens. */
	if (rename(path, kept) != 0) {
		rc = -errno;
	} else if (rename(fresh, path) != 0) {
		rc = -errno;
		rename(kept, path);
	}
	if (rc) {
		cli_error("%s: cannot put the new replica in place: %s", path, strerror(-rc));
		unlink(fresh);
		goto out;
	}
	/* The new replica is in place: what follows cannot undo that, so it
	 * is said, not made the mount's failure. */
	char *fresh_note = note_path(fresh);
	int lag = files_sync_parent(path);
	if (!lag && fresh_note && rename(fresh_note, note) != 0)
		lag = -errno;
	if (lag)
		log_warn("%s: the new replica is in place, but its folder or its note could not "
			 "be brought up to date (%s)", path, strerror(-lag));
	free(fresh_note);
	fprintf(stderr, "secretsfs: %s: made again from etcd; the damaged file is kept as %s\n",
		path, kept);
	log_warn("%s: made again from etcd; the damaged file is kept as %s", path, kept);
out:
	replica_config_free(&cfg);
	free(format);
	free(header);
	free(json);
	free(note);
	free(fresh);
	free(kept);
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
		/* etcd holds every commit first: this copy needs no sync of
		 * its own, and is made again from etcd (the note) if a power
		 * loss tears it. */
		if (!sm_readonly(sm)) {
			write_note(store_path(sm_store(sm)), &cfg);
			store_set_durable(sm_store(sm), false);
		}
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
	/* A clean stop leaves the file whole on disk. */
	int rc = store_sync(sm_store(sm));
	if (!rc)
		rc = store_set_durable(sm_store(sm), true);
	if (rc)
		log_warn("%s: cannot sync the replica at its stop (%s): a power loss now could "
			 "mean making it again from etcd", store_path(sm_store(sm)), strerror(-rc));
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
