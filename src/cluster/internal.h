/*
 * Shared by src/cluster's sources only: the JSON helpers both halves of the
 * wire format use (requests and unary answers in etcd_wire.c, the stream,
 * status, auth and errors in etcd_stream.c).
 */
#ifndef SECRETSFS_CLUSTER_INTERNAL_H
#define SECRETSFS_CLUSTER_INTERNAL_H

#include <json-c/json.h>

#include "cluster/etcd_wire.h"

/* Parses exactly one JSON object from json[0..len): 0, -EBADMSG or -EFBIG. */
int wire_parse(const char *json, size_t len, json_object **out);
/* The object's member name, which must have the type wanted when present:
 * 0 with *out NULL when absent, -EBADMSG when of another type. */
int wire_member(json_object *obj, const char *name, json_type type, json_object **out);
/* int64 (JSON string or number), absent = 0. */
int wire_int64(json_object *obj, const char *name, int64_t *out);
int wire_uint64(json_object *obj, const char *name, uint64_t *out);
int wire_bool(json_object *obj, const char *name, bool *out);
/* A string member copied (truncated) into buf; absent = "". */
int wire_text(json_object *obj, const char *name, char *buf, size_t size);
int wire_header(json_object *obj, struct etcd_header *out);
int wire_kv(json_object *obj, struct etcd_kv *out);
/* A list of kvs under name: *kvs malloc'd (NULL when absent or empty). */
int wire_kvs(json_object *obj, const char *name, struct etcd_kv **kvs, size_t *n);
void wire_kvs_free(struct etcd_kv *kvs, size_t n);
/* Adds name: base64(data) to obj. */
int wire_put_bytes(json_object *obj, const char *name, const void *data, size_t len);
int wire_put_int64(json_object *obj, const char *name, int64_t v);
int wire_put_bool(json_object *obj, const char *name, bool v);
int wire_put_string(json_object *obj, const char *name, const char *s);
/* The object as a malloc'd string (and drops the reference). */
int wire_finish(json_object *obj, char **json);

#endif
