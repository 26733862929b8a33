/*
 * storage_gcs.intern.h — what the two files of the GCS driver share; nothing else
 * includes it.
 *
 * The driver (storage_gcs.h) is two files, one job each:
 * - storage_gcs.c:       settings, URLs, requests with an access token and retries, the
 *                        errors for GCS's answers, and read, head, list, remove;
 * - storage_gcs_write.c: the writer, one media upload up to chunk_size, else a resumable
 *                        session (cancelled when the writer is freed unfinished), with
 *                        the stored size and MD5 checked against what was sent.
 *
 * Contract between them:
 * - A gcs_storage does not change after storage_gcs_new; its HTTP clients live in an
 *   http_pool and gcs_auth is thread-safe, so several threads may use one driver.
 * - Every request carries "Authorization: Bearer <token>" (gcs_send); a 401 drops that
 *   token and tries once more with a new one; transport errors and retryable statuses
 *   are retried with back-off up to retries extra attempts (gcs_again, gcs_request).
 * - A gcs_call states one plain operation: the request, the words for its messages, the
 *   accepted statuses and what to read from an accepted answer. gcs_call_run does the
 *   rest, the same way for every such operation, with exactly one outcome:
 *     no HTTP client: -1 with gcs_client_get's error;
 *     transport failure after the last attempt: "unable to <what>: <cause>";
 *     a status not accepted: gcs_status_error (op, 'gs://bucket/name', GCS's message);
 *     an accepted status: answer()'s result (0 when there is no answer()).
 *   Reads and resumable chunks, which resume from where bytes stopped, run their own
 *   loops over gcs_send and gcs_again.
 * - Object names are prefix + "/" + path (just path when the prefix is empty); messages
 *   name objects as 'gs://bucket/name'.
 */
#ifndef DRB_STORAGE_GCS_INTERN_H
#define DRB_STORAGE_GCS_INTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gcs_auth.h"
#include "http.h"
#include "storage.h"

#define GCS_MAX_OK		3		/* accepted statuses per call */

typedef struct gcs_storage
{
	storage_t	base;
	char	   *endpoint;		/* without a trailing '/' */
	char	   *bucket;
	char	   *bucket_enc;		/* percent-encoded for URLs */
	char	   *prefix;			/* "" or "a/b" */
	size_t		chunk_size;
	int			retries;
	gcs_auth   *auth;
	http_pool  *pool;
} gcs_storage;

/* State of one request across its attempts. */
typedef struct gcs_try
{
	int			attempt;		/* attempts sent so far */
	bool		refreshed;		/* already retried once after a 401 */
	bool		no_token;		/* no access token could be had: do not retry */
	char	   *token;			/* token the last attempt used */
} gcs_try;

typedef struct gcs_call gcs_call;

/*
 * Reads an accepted answer of call: 0, or -1 with the error set. what is the call's
 * "<op> 'gs://bucket/name'" (or transport_op's words), for messages.
 */
typedef int (*gcs_answer_fn) (gcs_storage *g, gcs_call *call, const http_response *resp,
							  const char *what);

/* One plain GCS operation: the request, then how gcs_call_run judges its answer. */
struct gcs_call
{
	http_request req;			/* method, url, headers, body */
	const char *op;				/* "delete": "unable to <op> 'gs://bucket/<name>': HTTP ..." */
	const char *name;			/* the object's full name (or listing prefix) */
	const char *transport_op;	/* other words for failures without an answer and for
								 * retry logs; NULL: op */
	long		ok[GCS_MAX_OK]; /* accepted statuses; unused slots 0 */
	gcs_answer_fn answer;		/* reads an accepted answer; NULL: nothing to read */
	void	   *arg;			/* for answer */
};

/* storage_gcs.c */

/* A client from the pool; NULL with "unable to create an HTTP client for <store>". */
http_client *gcs_client_get(gcs_storage *g);
/* Full object name for a repository path. Caller frees. */
char	   *gcs_object_name(const gcs_storage *g, const char *path);
/* Forgets (and wipes) the token of t and zeroes it for another request. */
void		gcs_try_reset(gcs_try *t);
/*
 * One attempt of req with the current access token added. Returns http_execute's
 * result; -1 with t->no_token set when no token could be had. resp is reset first.
 */
int			gcs_send(gcs_storage *g, http_client *c, const http_request *req,
					 http_response *resp, gcs_try *t);
/*
 * After an attempt that did not succeed: true when another attempt should be made
 * (after a back-off sleep, or at once with a new token after a first 401).
 */
bool		gcs_again(gcs_storage *g, gcs_try *t, int rc, const http_response *resp,
					  const char *what);
/*
 * req with retries (see gcs_again). Returns 0 with resp holding the last reply (any
 * status) or -1 when the last attempt failed without a reply.
 */
int			gcs_request(gcs_storage *g, http_client *c, const http_request *req,
						http_response *resp, const char *what);
/*
 * Records the error for a reply with an unexpected status: DRB_ERR_NOT_FOUND for 404,
 * DRB_ERR_STORAGE otherwise, with GCS's error message (or the start of the body).
 * Returns -1.
 */
int			gcs_status_error(const http_response *resp, const char *op, const char *bucket,
							 const char *name);
/* A JSON number or decimal string as uint64; false when neither. */
bool		gcs_json_u64(json_t *v, uint64_t *out);
/* Runs call and judges its answer as the contract above says; 0 or -1. */
int			gcs_call_run(gcs_storage *g, gcs_call *call);
/* Deletes one object by its full name; a missing object is success. */
int			gcs_delete_object(gcs_storage *g, const char *name);

/* storage_gcs_write.c */

/* The writer sink for path (storage.h's write_open); NULL when MD5 cannot start. */
filter_t   *gcs_write_open(storage_t *s, const char *path);

#endif
