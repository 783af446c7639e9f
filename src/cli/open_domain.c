/*
 * A store file opened as a domain by a command that unlocks it itself
 * (mount, check, key, passwd, rekey): the file opened, the secret asked
 * for as the store's header says it is kept (a key file or a passphrase),
 * the store unlocked, and loaded and checked whole, so that nothing is
 * written over records that fail their checks (and a legacy store is
 * authenticated first on a writable open). Each refusal is one line that
 * names the store.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "secrets/secrets.h"
#include "store/store.h"

/* Why store_open refused path, for a message. */
static const char *open_refusal(int rc, const char *path, const char *busy_advice, char *buf,
				size_t cap)
{
	switch (rc) {
	case -EBUSY: return mountinfo_busy(path, busy_advice ? busy_advice : "", buf, cap);
	case -ENOENT: return "no such file";
	case -EACCES: return "permission denied";
	case -EPERM: return "TDB_NO_FSYNC is set in the environment; unset it";
	case -EAGAIN: return "a commit was interrupted; mount the store once to roll it back";
	case -EUCLEAN: return "its structure is damaged and could not be repaired";
	case -ENOMEM: return strerror(-rc);
	default: return "damaged or not a secretsfs store";
	}
}

/*
 * The kind of secret the store's header asks for, checked against what
 * was given (neither file: a passphrase, asked on the terminal) before
 * anything is read or derived. 0, or -errno with the refusal printed.
 */
static int check_kind(const char *path, struct store *st, const struct cli_open *how,
		      const char *consequence)
{
	enum unlock_kind kind;
	if (keyring_store_kind(st, &kind)) {
		cli_error("%s: cannot unlock: the store header is damaged or of an unknown format%s",
			  path, consequence);
		return -EIO;
	}
	if ((kind == UNLOCK_KEY_FILE) != (how->key_file != NULL)) {
		cli_error("%s: cannot unlock: %s%s", path,
			  unlock_refusal(-ENOKEY, how->key_file != NULL), consequence);
		return -ENOKEY;
	}
	return 0;
}

int cli_open_domain(const char *path, struct cli_open *how, struct sm **out)
{
	const char *consequence = how->consequence ? how->consequence : "";
	struct unlock_input local = { 0 }, *in = how->input ? how->input : &local;
	struct store *st = NULL;
	struct keyring *kr = NULL;
	char busy[4200];
	int rc;

	*out = NULL;
	memset(&how->damage, 0, sizeof(how->damage));
	memset(in, 0, sizeof(*in));
	if ((rc = store_open(path, how->readonly ? STORE_READONLY : 0, &st))) {
		cli_error("%s: cannot open: %s", path,
			  open_refusal(rc, path, how->busy_advice, busy, sizeof(busy)));
		goto out;
	}
	if (how->check_structure && (rc = store_check_structure(st))) {
		cli_error("%s: tdb's structure check fails (a mount repairs what an interrupted "
			  "commit left, and refuses any other damage)", path);
		goto out;
	}
	if ((rc = check_kind(path, st, how, consequence)) ||
	    (rc = unlock_input_read(in, how->key_file, how->passphrase_file, 0)))
		goto out;
	rc = keyring_unlock(st, &in->secret, &kr);
	if (in == &local)
		unlock_input_free(in); /* not needed past the unlock */
	if (rc) {
		cli_error("%s: cannot unlock: %s%s", path,
			  unlock_refusal(rc, how->key_file != NULL) ?:
			  rc == -EIO ? "the store header is damaged or of an unknown format" :
			  strerror(-rc), consequence);
		goto out;
	}
	struct sm_options so = { .recovery_window_days = SM_DEFAULT_RECOVERY_DAYS,
				 .root_mode = 0755 };
	if (how->options)
		so = *how->options;
	so.readonly |= how->readonly;
	so.skip_damaged |= how->skip_damaged;
	so.damage = &how->damage;
	rc = sm_open(st, kr, &so, out); /* takes st and kr */
	st = NULL;
	kr = NULL;
	if (rc && how->damage.count)
		cli_error("%s: %s%s (%zu problems: secretsfs check lists them%s)", path,
			  how->damage.first, consequence, how->damage.count,
			  how->damage_advice ? how->damage_advice : "");
	else if (rc)
		cli_error("%s: cannot load: %s%s", path, strerror(-rc), consequence);
out:
	keyring_free(kr);
	store_close(st);
	unlock_input_free(&local);
	return rc;
}
