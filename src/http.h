/*
 * http.h — one HTTP request over libcurl, for the object-store drivers.
 *
 * An http_client wraps one curl easy handle (connections are kept alive between
 * requests); use one client per thread. http_execute performs exactly one attempt:
 * retrying (with re-signing) is the caller's job, using http_retryable() and
 * http_backoff(). Transport failures (connect refused, reset, timeout, TLS) return -1
 * with DRB_ERR_STORAGE and curl's message, except certificate verification failures and
 * unusable CA files: DRB_ERR_CONFIG, as retrying cannot help; any HTTP status returns 0
 * with status set.
 *
 * Request: the body (PUT, POST) is sent from memory with a Content-Length; "Expect:" is
 * suppressed; no credentials are ever put in the URL or in curl's user/password options
 * (object stores authenticate with signed headers). Redirects are not followed. TLS peer
 * and host verification are on unless options->verify_tls is false.
 *
 * Response body: when req->sink is set and the status is 2xx (or exactly req->sink_status
 * when that is non-zero), body bytes are pushed into req->sink as they arrive (never
 * finished by http); resp->sink_bytes counts them, also when the transfer fails midway
 * (the caller can resume from there). Otherwise (error statuses, or no sink) the body is
 * collected in resp->body, capped at 1 MiB. Response header names are stored lower-cased,
 * values without surrounding white space.
 *
 * Stalls: a connection that cannot be opened within timeout_seconds, or a transfer that
 * moves no byte for timeout_seconds, fails as a transport error.
 *
 * Pools: a driver serving several threads keeps its clients in an http_pool. A thread
 * takes a client with http_pool_get, owns it alone until it gives it back with
 * http_pool_put, and never uses it after that. The pool keeps at most max_idle idle
 * clients (their connections stay open for the next request); a client given back to a
 * full pool is freed. Clients are made on demand, so a pool costs nothing until used.
 *
 * The first http_client_new() initialises libcurl and sets SIGPIPE to be ignored in the
 * whole process (a peer closing a TLS connection must not kill drbackup).
 */
#ifndef DRB_HTTP_H
#define DRB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "mem.h"

typedef struct http_options
{
	bool		verify_tls;
	const char *ca_file;		/* NULL: system default */
	int			timeout_seconds;	/* connect timeout and low-speed (stall) limit; <= 0: 60 */
} http_options;

typedef struct http_request
{
	const char *method;			/* "GET", "PUT", "POST", "DELETE", "HEAD" */
	const char *url;			/* full URL, already encoded */
	const char *const *headers; /* "Name: value" lines */
	size_t		nheaders;
	const uint8_t *body;		/* request body (may be NULL) */
	size_t		body_len;
	filter_t   *sink;			/* optional streaming sink for 2xx bodies */
	long		sink_status;	/* 0: stream any 2xx body; else only this status (e.g. 206) */
} http_request;

typedef struct http_response
{
	long		status;
	buf_t		body;
	char	  **header_names;	/* lower-case */
	char	  **header_values;
	size_t		nheaders;
	uint64_t	sink_bytes;
	bool		sink_failed;	/* the sink returned an error (err state is the sink's) */
} http_response;

typedef struct http_client http_client;

/* A new client; options NULL means TLS verification on, system CAs, 60 s timeout. */
http_client *http_client_new(const http_options *options);
void		http_client_free(http_client *client);

/*
 * One attempt. resp must be zero-initialised or reset by http_response_free; whatever it
 * still holds from an earlier call is freed first. Returns 0 when an HTTP status was
 * received (resp->status), -1 on a transport failure (DRB_ERR_STORAGE, curl's message) or
 * when the sink failed (resp->sink_failed, the sink's error is kept).
 */
int			http_execute(http_client *client, const http_request *req, http_response *resp);
/* Value of a response header (name in lower case), NULL when absent. */
const char *http_response_header(const http_response *resp, const char *name);
/* Frees what resp holds and zeroes it, ready for the next http_execute. */
void		http_response_free(http_response *resp);

/* True for statuses worth retrying: 408, 429, 500, 502, 503, 504 and other 5xx except
 * 501 (Not Implemented) and 505, which do not change on a retry. */
bool		http_retryable(long status);
/* True when status is one of the n statuses in accepted (0 entries never match). */
bool		http_status_in(long status, const long *accepted, size_t n);
/* Sleep before attempt number attempt (1-based): base 100 ms * 2^(attempt-1), capped at
 * 10 s, with full jitter. */
void		http_backoff(int attempt);

typedef struct http_pool http_pool;

/* A pool making clients with a copy of options (NULL: as http_client_new); keeps at
 * most max_idle (>= 1) idle clients. No network, no libcurl call: never fails. */
http_pool  *http_pool_new(const http_options *options, int max_idle);
/* An idle client of the pool, else a new one; NULL with http_client_new's error.
 * Thread-safe. The caller owns the client until http_pool_put. */
http_client *http_pool_get(http_pool *pool);
/* Gives client back for reuse, or frees it when max_idle clients are already idle.
 * NULL is ignored. Thread-safe. */
void		http_pool_put(http_pool *pool, http_client *client);
/* Frees the idle clients and the pool. Every client taken must have been given back. */
void		http_pool_free(http_pool *pool);

/* RFC 3986 percent-encoding; keep_slash leaves '/' as is (for paths). Caller frees. */
char	   *http_uri_encode(const char *s, bool keep_slash);

/* Times in object-store answers, as seconds since the epoch (0 when unparsable):
 * ISO 8601 / RFC 3339 "2009-10-12T17:50:30.000Z" (S3 listings, GCS metadata) and the
 * HTTP date "Wed, 12 Oct 2009 17:50:00 GMT" (Last-Modified). */
int64_t		http_parse_iso8601(const char *s);
int64_t		http_parse_date(const char *s);

#endif
