/*
 * sigv4.h — AWS Signature Version 4, header authentication (HMAC-SHA256 over OpenSSL).
 *
 * The caller describes a request — method, raw (unencoded) path, raw query parameters,
 * the headers to sign and the payload hash — and sigv4_sign() returns the canonical
 * request, the string to sign, the signature and the Authorization header value, as
 * specified in AWS's "Signature Version 4 signing process" and S3's "Authenticating
 * Requests: Using the Authorization Header":
 * - the path is URI-encoded once, '/' kept (S3 style: no double encoding, no
 *   dot-segment normalisation); use sigv4_canonical_uri() for the URL sent, too;
 * - parameters are encoded (RFC 3986 unreserved set) and sorted by name, then value;
 *   use sigv4_canonical_query() for the URL's query string so both always match;
 * - header names are lower-cased, values trimmed with inner runs of white space
 *   collapsed to one space; repeated names are joined with ',' in order; sorted by name.
 * Every header passed is signed: pass "host", "x-amz-date" (the amz_date given to
 * sigv4_sign), "x-amz-content-sha256" and, with temporary credentials,
 * "x-amz-security-token" yourself, and send exactly the headers you signed.
 *
 * The time is an argument (amz_date, "YYYYMMDDTHHMMSSZ") so that tests use fixed dates.
 * Nothing here logs; the secret key only enters the signing-key derivation and the
 * intermediate buffers holding it are wiped.
 */
#ifndef DRB_SIGV4_H
#define DRB_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

typedef struct sigv4_pair
{
	const char *name;
	const char *value;			/* NULL is the same as "" */
} sigv4_pair;

typedef struct sigv4_credentials
{
	const char *access_key;
	const char *secret_key;
	const char *region;			/* "us-east-1" */
	const char *service;		/* "s3" */
} sigv4_credentials;

typedef struct sigv4_request
{
	const char *method;
	const char *path;			/* raw absolute path, e.g. "/bucket/dir/a b"; "" means "/" */
	const sigv4_pair *params;	/* raw query parameters, any order */
	size_t		nparams;
	const sigv4_pair *headers;	/* headers to sign, any order and case */
	size_t		nheaders;
	const char *payload_hash;	/* hex SHA-256 of the body, or SIGV4_UNSIGNED_PAYLOAD */
} sigv4_request;

typedef struct sigv4_result
{
	char	   *canonical_request;
	char	   *string_to_sign;
	char	   *signed_headers;	/* "host;x-amz-date" */
	char		signature[65];	/* lower-case hex */
	char	   *authorization;	/* value of the Authorization header */
} sigv4_result;

/* "YYYYMMDDTHHMMSSZ" (UTC) into out. */
void		sigv4_amz_date(time_t t, char out[17]);

/* Lower-case hex SHA-256 of len bytes into out (64 hex digits + NUL). */
void		sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* The canonical URI of a raw path (also the path to put in the URL). Caller frees. */
char	   *sigv4_canonical_uri(const char *path);

/* The canonical query string ("" when n is 0; also the URL's query). Caller frees. */
char	   *sigv4_canonical_query(const sigv4_pair *params, size_t n);

/*
 * Sign req with cred at amz_date. Fills out (free with sigv4_result_free) and returns 0;
 * returns -1 with DRB_ERR_INTERNAL when OpenSSL fails or DRB_ERR_USAGE for a malformed
 * date or missing credential.
 */
int			sigv4_sign(const sigv4_credentials *cred, const sigv4_request *req,
					   const char *amz_date, sigv4_result *out);
void		sigv4_result_free(sigv4_result *r);

#endif
