/*
 * http.h — one HTTP request over libcurl, for the object-store drivers.
 *
 * An http_client wraps one curl easy handle (connections are kept alive between
 * requests); use one client per thread. http_execute performs exactly one attempt:
 * retrying (with re-signing) is the caller's job, using http_retryable() and
 * http_backoff(). Transport failures (connect refused, reset, timeout, TLS) return -1
 * with DRB_ERR_STORAGE and curl's message; any HTTP status returns 0 with status set.
 *
 * Response body: when req->sink is set and the status is 2xx, body bytes are pushed
 * into req->sink as they arrive (never finished by http); resp->sink_bytes counts them.
 * Otherwise (error statuses, or no sink) the body is collected in resp->body, capped at
 * 1 MiB. Response header names are stored lower-cased.
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
	int			timeout_seconds;	/* connect timeout and low-speed (stall) limit */
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

http_client *http_client_new(const http_options *options);
void		http_client_free(http_client *client);

/* One attempt. resp must be zero-initialised or reset by http_response_free. */
int			http_execute(http_client *client, const http_request *req, http_response *resp);
const char *http_response_header(const http_response *resp, const char *name);
void		http_response_free(http_response *resp);

/* True for statuses worth retrying: 408, 429, 500, 502, 503, 504 and other 5xx. */
bool		http_retryable(long status);
/* Sleep before attempt number attempt (1-based): base 100 ms * 2^(attempt-1), capped at
 * 10 s, with full jitter. */
void		http_backoff(int attempt);

/* RFC 3986 percent-encoding; keep_slash leaves '/' as is (for paths). Caller frees. */
char	   *http_uri_encode(const char *s, bool keep_slash);

#endif
