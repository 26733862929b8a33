/*
 * storage_s3.h — Amazon S3 and S3-compatible object stores (also GCS via its XML API
 * with HMAC keys). Signature V4 header auth (sigv4.h), path-style or virtual-host URLs,
 * multipart upload above part_size with parts uploaded concurrently (aborted on failure),
 * ListObjectsV2 with continuation tokens, DeleteObjects in batches of 1000, retries with
 * exponential back-off + jitter on 5xx, 429, SlowDown and connection errors.
 * Errors name the HTTP status, the S3 error code and the object key.
 */
#ifndef DRB_STORAGE_S3_H
#define DRB_STORAGE_S3_H

#include <stdbool.h>
#include <stddef.h>

#include "storage.h"

typedef struct s3_settings
{
	const char *endpoint;		/* "s3.amazonaws.com", "host:port" or "http://127.0.0.1:8080" (https default) */
	const char *bucket;
	const char *region;			/* "us-east-1"; "auto" for GCS */
	const char *prefix;			/* key prefix inside the bucket, "" or e.g. "drbackup" (no slashes at ends) */
	const char *access_key;
	const char *secret_key;
	const char *session_token;	/* NULL when not using temporary credentials */
	bool		path_style;		/* true: http://endpoint/bucket/key; false: http://bucket.endpoint/key */
	bool		verify_tls;
	const char *ca_file;		/* NULL: system CAs */
	size_t		part_size;		/* multipart above this size; >= 5 MiB */
	int			upload_concurrency; /* parts in flight per object, >= 1 */
	const char *sse_kms_key_id; /* NULL: no SSE header */
	int			retries;		/* attempts after the first */
	int			timeout_seconds;	/* per request inactivity/connect timeout */
	const char *service;		/* description prefix, "s3" or "gcs" */
} s3_settings;

/* Copies what it needs from settings. Never fails for valid settings (no network). */
storage_t  *storage_s3_new(const s3_settings *settings);

#endif
