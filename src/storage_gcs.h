/*
 * storage_gcs.h — Google Cloud Storage through its native JSON API.
 *
 * Auth: a service-account JSON key (RS256-signed JWT exchanged for an OAuth2 access
 * token at the key's token_uri, refreshed before expiry) or a static bearer token.
 * Uploads: simple media upload up to chunk_size, resumable upload above it. Reads with
 * Range. Listing with pageToken. The HMAC/XML-API way of using GCS is storage_s3 with
 * region "auto" and endpoint storage.googleapis.com.
 */
#ifndef DRB_STORAGE_GCS_H
#define DRB_STORAGE_GCS_H

#include <stdbool.h>
#include <stddef.h>

#include "storage.h"

typedef enum gcs_key_type
{
	GCS_KEY_SERVICE,			/* key = path of a service-account JSON key file */
	GCS_KEY_TOKEN,				/* key = static OAuth2 bearer token */
} gcs_key_type;

typedef struct gcs_settings
{
	const char *endpoint;		/* default "https://storage.googleapis.com"; http:// allowed (tests) */
	const char *bucket;
	const char *prefix;			/* key prefix, "" or no slashes at the ends */
	gcs_key_type key_type;
	const char *key;
	bool		verify_tls;
	const char *ca_file;
	size_t		chunk_size;		/* resumable upload chunk, multiple of 256 KiB */
	int			retries;
	int			timeout_seconds;
} gcs_settings;

storage_t  *storage_gcs_new(const gcs_settings *settings);

#endif
