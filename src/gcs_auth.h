/*
 * gcs_auth.h — OAuth2 access tokens for Google Cloud Storage's JSON API.
 *
 * Two modes:
 * - service account: a JSON key file (client_email, private_key, private_key_id,
 *   token_uri) is read once; an RS256-signed JWT assertion (scope devstorage.read_write,
 *   aud = token_uri, valid one hour) is exchanged at token_uri for an access token, which
 *   is cached and fetched again shortly before it expires or after the store rejected it.
 * - static token: the given bearer token is used as is, for ever.
 *
 * A gcs_auth may be shared by several threads: gcs_auth_token() serialises refreshes
 * with a mutex, and the token exchange uses the auth object's own HTTP client.
 * Secrets: the private key lives only in an OpenSSL key object (the PEM text is wiped
 * after parsing); every access token is registered with log_register_secret() and wiped
 * before it is freed. Errors name the key file and what is wrong with it.
 *
 * The JWT and base64url helpers are public for the unit tests.
 */
#ifndef DRB_GCS_AUTH_H
#define DRB_GCS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define GCS_SCOPE_READ_WRITE	"https://www.googleapis.com/auth/devstorage.read_write"
#define GCS_DEFAULT_TOKEN_URI	"https://oauth2.googleapis.com/token"

/* A parsed service-account key. */
typedef struct gcs_sa_key
{
	char	   *path;			/* key file, for messages */
	char	   *client_email;
	char	   *private_key_id; /* NULL when the file has none (no "kid" then) */
	char	   *token_uri;
	void	   *pkey;			/* EVP_PKEY * (RSA) */
} gcs_sa_key;

/*
 * Read and check a service-account key file. On success fills *key (free it with
 * gcs_sa_key_free) and returns 0; otherwise returns -1 with DRB_ERR_CONFIG naming the
 * file and the problem (unreadable, not JSON, wrong type, missing field, bad PEM).
 */
int			gcs_sa_key_load(const char *path, gcs_sa_key *key);
void		gcs_sa_key_free(gcs_sa_key *key);

/* base64url (RFC 4648 section 5) of len bytes, without '=' padding. Caller frees. */
char	   *gcs_base64url(const uint8_t *data, size_t len);

/*
 * The signed JWT assertion "header.claims.signature" for key, issued at iat (seconds
 * since the epoch) and expiring at iat + 3600. Caller frees. NULL with DRB_ERR_CRYPTO
 * if signing fails.
 */
char	   *gcs_jwt_build(const gcs_sa_key *key, int64_t iat);

typedef struct gcs_auth gcs_auth;

/*
 * Service-account mode: loads the key file now (errors as gcs_sa_key_load); tokens are
 * fetched on first use. retries = extra attempts at the token endpoint on transport
 * errors and retryable statuses.
 */
gcs_auth   *gcs_auth_new_service(const char *key_file, const http_options *http, int retries);
/* Static-token mode; the token is copied and registered as a secret. */
gcs_auth   *gcs_auth_new_token(const char *token);
void		gcs_auth_free(gcs_auth *auth);

/*
 * A valid access token (a copy the caller wipes with secure_zero and frees). In
 * service-account mode, fetches a new one when none is cached, it expires within the
 * refresh margin, or it was invalidated. NULL with an error naming the key file and the
 * token endpoint's HTTP status and error on failure.
 */
char	   *gcs_auth_token(gcs_auth *auth);

/*
 * The store answered 401 to a request made with token: forget it if it is still the
 * cached one, so that the next gcs_auth_token() fetches a new one. Returns true when a
 * new token can be expected (service-account mode), false for a static token.
 */
bool		gcs_auth_invalidate(gcs_auth *auth, const char *token);

#endif
