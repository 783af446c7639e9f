/*
 * fuzz_record: the store's record decoders (include/secrets/record.h) on
 * arbitrary bytes: record_decode_secret, record_decode_folder and
 * record_decode_version all see every input.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - what a decoder accepts keeps the rules it promises (names, version ids,
 *    labels that name a version, sizes, modes);
 *  - what it accepts re-encodes, and the encoding decodes again to the same
 *    name, versions, labels, tags (and every other field), and encodes to
 *    the same text: decode(encode(x)) == x.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "secrets/names.h"
#include "secrets/record.h"

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static const char *tag_value(const struct sm_secret *s, const char *key, size_t *count)
{
	const char *v = NULL;
	*count = 0;
	for (size_t i = 0; i < s->ntags; i++)
		if (strcmp(s->tags[i].key, key) == 0) {
			v = s->tags[i].value;
			(*count)++;
		}
	return v;
}

/* What record_decode_secret promises about a secret it accepted. */
static void check_secret_rules(const struct sm_secret *s)
{
	FUZZ_CHECK(s->name && name_check(s->name, NULL) == 0);
	FUZZ_CHECK(strlen(s->uuid) == SM_UUID_HEX_LEN);
	FUZZ_CHECK(strlen(s->arn_suffix) == SM_ARN_SUFFIX_LEN);
	FUZZ_CHECK(s->mode <= 07777);
	FUZZ_CHECK(s->persisted);
	FUZZ_CHECK(s->nversions == 0 || s->versions);
	for (size_t i = 0; i < s->nversions; i++) {
		const struct sm_version *v = &s->versions[i];
		FUZZ_CHECK(name_check_version_id(v->id, NULL) == 0);
		FUZZ_CHECK(strlen(v->key_id) == SM_KEY_ID_LEN);
		FUZZ_CHECK(v->size >= 1 && v->size <= SM_VALUE_MAX);
	}
	for (size_t i = 0; i < s->nlabels; i++) {
		FUZZ_CHECK(s->labels[i].name);
		/* Every label names a version in versions (docs/store-format.md). */
		FUZZ_CHECK(secret_find_version(s, s->labels[i].version_id) != NULL);
		for (size_t k = i + 1; k < s->nlabels; k++)
			FUZZ_CHECK(strcmp(s->labels[i].name, s->labels[k].name) != 0);
	}
	for (size_t i = 0; i < s->ntags; i++)
		FUZZ_CHECK(s->tags[i].key && s->tags[i].value);
	FUZZ_CHECK(s->rotation_days >= 0 && s->rotation_days <= 1000);
}

/* a and b are the same secret: the round trip kept everything. */
static void check_same_secret(const struct sm_secret *a, const struct sm_secret *b)
{
	FUZZ_CHECK(strcmp(a->name, b->name) == 0);
	FUZZ_CHECK(strcmp(a->uuid, b->uuid) == 0);
	FUZZ_CHECK(strcmp(a->arn_suffix, b->arn_suffix) == 0);
	FUZZ_CHECK(same_str(a->description, b->description));
	FUZZ_CHECK(same_str(a->kms_key_id, b->kms_key_id));
	FUZZ_CHECK(a->created_ms == b->created_ms && a->changed_ms == b->changed_ms &&
		   a->accessed_ms == b->accessed_ms);
	/* deleted and purge are written only for a deleted secret (deleted != 0). */
	FUZZ_CHECK(a->deleted_ms == b->deleted_ms);
	if (a->deleted_ms)
		FUZZ_CHECK(a->purge_ms == b->purge_ms);
	FUZZ_CHECK(a->mode == b->mode && a->uid == b->uid && a->gid == b->gid);

	FUZZ_CHECK(a->nversions == b->nversions);
	for (size_t i = 0; i < a->nversions; i++) {
		const struct sm_version *va = &a->versions[i], *vb = &b->versions[i];
		FUZZ_CHECK(strcmp(va->id, vb->id) == 0);
		FUZZ_CHECK(strcmp(va->key_id, vb->key_id) == 0);
		FUZZ_CHECK(va->created_ms == vb->created_ms);
		FUZZ_CHECK(va->size == vb->size);
		FUZZ_CHECK(va->binary == vb->binary);
	}

	FUZZ_CHECK(a->nlabels == b->nlabels);
	for (size_t i = 0; i < a->nlabels; i++) {
		const char *vid = secret_label_version(b, a->labels[i].name);
		FUZZ_CHECK(vid && strcmp(vid, a->labels[i].version_id) == 0);
	}

	FUZZ_CHECK(a->ntags == b->ntags);
	for (size_t i = 0; i < a->ntags; i++) {
		size_t na, nb;
		const char *va = tag_value(a, a->tags[i].key, &na);
		const char *vb = tag_value(b, a->tags[i].key, &nb);
		FUZZ_CHECK(na == nb);
		FUZZ_CHECK(vb && strcmp(va, vb) == 0);
	}
	FUZZ_CHECK(a->tags_ever == b->tags_ever);

	FUZZ_CHECK(same_str(a->rotation_command, b->rotation_command));
	if (a->rotation_command) {
		FUZZ_CHECK(a->rotation_days == b->rotation_days);
		FUZZ_CHECK(same_str(a->rotation_schedule, b->rotation_schedule));
		FUZZ_CHECK(a->last_rotated_ms == b->last_rotated_ms);
		FUZZ_CHECK(a->next_rotation_ms == b->next_rotation_ms);
	}
}

static void fuzz_secret(const uint8_t *data, size_t size)
{
	struct sm_secret *s = NULL, *again = NULL;
	if (record_decode_secret(data, size, &s) != 0) {
		FUZZ_CHECK(s == NULL);
		return;
	}
	FUZZ_CHECK(s != NULL);
	check_secret_rules(s);

	char *text = record_encode_secret(s);
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(record_decode_secret((const uint8_t *)text, strlen(text), &again) == 0);
	check_same_secret(s, again);
	check_same_secret(again, s);

	/* A decoded-and-encoded record is canonical: encoding again is stable. */
	char *text2 = record_encode_secret(again);
	FUZZ_CHECK(text2 != NULL && strcmp(text, text2) == 0);

	/* secret_clone copies every field too. */
	struct sm_secret *copy = secret_clone(s);
	FUZZ_CHECK(copy != NULL);
	check_same_secret(s, copy);

	free(text);
	free(text2);
	secret_free(copy);
	secret_free(again);
	secret_free(s);
}

static void fuzz_folder(const char *path, const uint8_t *data, size_t size)
{
	struct sm_folder *f = NULL, *again = NULL;
	if (record_decode_folder(path, data, size, &f) != 0) {
		FUZZ_CHECK(f == NULL);
		return;
	}
	FUZZ_CHECK(f != NULL && strcmp(f->path, path) == 0 && f->mode <= 07777);
	char *text = record_encode_folder(f);
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(record_decode_folder(path, (const uint8_t *)text, strlen(text), &again) == 0);
	FUZZ_CHECK(again->mode == f->mode && again->uid == f->uid && again->gid == f->gid);
	FUZZ_CHECK(again->created_ms == f->created_ms && again->changed_ms == f->changed_ms);
	free(text);
	folder_free(again);
	folder_free(f);
}

static void fuzz_version(const uint8_t *data, size_t size)
{
	struct sealed_version v, w;
	uint8_t *enc = NULL;
	size_t enc_len = 0;

	if (record_decode_version(data, size, &v) != 0)
		return;
	/* It points into data. */
	FUZZ_CHECK(v.wrapped_dek >= data && v.wrapped_dek + v.wrapped_dek_len <= data + size);
	FUZZ_CHECK(v.sealed_value >= data && v.sealed_value + v.sealed_value_len <= data + size);

	FUZZ_CHECK(record_encode_version(&v, &enc, &enc_len) == 0);
	FUZZ_CHECK(record_decode_version(enc, enc_len, &w) == 0);
	FUZZ_CHECK(w.binary == v.binary);
	FUZZ_CHECK(strcmp(w.key_id, v.key_id) == 0);
	FUZZ_CHECK(w.wrapped_dek_len == v.wrapped_dek_len &&
		   memcmp(w.wrapped_dek, v.wrapped_dek, v.wrapped_dek_len) == 0);
	FUZZ_CHECK(w.sealed_value_len == v.sealed_value_len &&
		   memcmp(w.sealed_value, v.sealed_value, v.sealed_value_len) == 0);
	/* The binary format has one encoding of each record. */
	FUZZ_CHECK(enc_len == size && memcmp(enc, data, size) == 0);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_secret(data, size);
	fuzz_folder("", data, size);
	fuzz_folder("prod/app", data, size);
	fuzz_version(data, size);
	return 0;
}
