/*
 * storage_s3.intern.h — what the files of the S3 driver share; nothing else includes it.
 *
 * The driver (storage_s3.h) is three files, one job each:
 * - storage_s3.c:       settings, keys and URLs, signed requests with retries, the
 *                       errors for S3's answers, and read, head, list, remove, remove_many;
 * - storage_s3_write.c: the writer, one PUT or a multipart upload whose parts worker
 *                       threads send (aborted on failure or when freed unfinished);
 * - storage_s3_xml.c:   the little XML that S3's bodies need (libxml2).
 *
 * Contract between them:
 * - An s3_storage does not change after storage_s3_new; its HTTP clients live in an
 *   http_pool, so any number of threads may run requests on one driver at once.
 * - An s3_call states one operation: the request (method, key, query, headers, body,
 *   where a 2xx body goes) and how its answer is judged (the words for messages, the
 *   accepted statuses, what to read from an accepted answer). s3_call_run does the rest,
 *   the same way for every operation: a client from the pool, a signed request retried
 *   with back-off (s3_send), then exactly one outcome:
 *     transport failure after the last attempt: "unable to <op> '<desc>': <cause>";
 *     a status not accepted, or that answer() declines with S3_UNEXPECTED: the message
 *       of s3_status_error (HTTP status, S3 error code and message, attempts);
 *     an accepted status: answer()'s result (0 when there is no answer()).
 *   The client goes back to the pool and call->if_match is freed before it returns.
 * - Object keys are prefix + "/" + path (just path when the prefix is empty); messages
 *   name objects as "<service>://bucket/prefix/path" (s3_desc).
 */
#ifndef DRB_STORAGE_S3_INTERN_H
#define DRB_STORAGE_S3_INTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dl_xml.h"

#include "filter.h"
#include "http.h"
#include "mem.h"
#include "sigv4.h"
#include "storage.h"

#define S3_UNEXPECTED		1	/* from an answer(): report the status as unexpected */
#define S3_MAX_OK			3	/* accepted statuses per call */

typedef struct s3_storage
{
	storage_t	base;
	bool		https;
	char	   *endpoint_host;	/* "host[:port]" */
	char	   *bucket;
	char	   *prefix;			/* "" or "a/b" */
	char	   *region;
	char	   *access_key;
	char	   *secret_key;
	char	   *session_token;	/* NULL without temporary credentials */
	char	   *sse_kms_key_id; /* NULL: no SSE-KMS headers */
	bool		path_style;
	size_t		part_size;
	int			concurrency;
	int			retries;
	http_pool  *pool;
} s3_storage;

typedef struct s3_call s3_call;

/*
 * Reads an accepted answer of call: returns 0, -1 with the error set, or S3_UNEXPECTED
 * to have the status reported like one that is not accepted. client is the caller's for
 * the duration (e.g. for a HEAD that settles what the answer means).
 */
typedef int (*s3_answer_fn) (s3_storage *s, http_client *client, s3_call *call,
							 const http_response *resp);

/* One S3 operation: the request, then how s3_call_run judges its answer. */
struct s3_call
{
	const char *method;
	const char *key;			/* object key; NULL addresses the bucket */
	const sigv4_pair *params;
	size_t		nparams;
	const sigv4_pair *headers;	/* extra headers, signed and sent */
	size_t		nheaders;
	const uint8_t *body;
	size_t		body_len;
	filter_t   *sink;			/* 2xx body goes here (reads, listings) */
	long		sink_status;
	buf_t	   *sink_buf;		/* listings: the buffer behind sink, emptied per attempt */
	bool		resumable;		/* reads: a broken-off body resumes with a Range */
	/* ranged reads: updated as bytes arrive so a retry resumes where they stopped */
	bool		ranged;
	uint64_t	range_start;
	uint64_t	range_len;		/* 0: to the end */
	char	   *if_match;		/* ETag the resumed bytes must come from (owned) */

	const char *op;				/* "get", "upload part 3 of": "unable to <op> '<desc>'" */
	const char *desc;			/* the object (or bucket) in messages */
	const char *transport_op;	/* other words for a failure without an answer; NULL: op */
	long		ok[S3_MAX_OK];	/* accepted statuses; unused slots 0 */
	s3_answer_fn answer;		/* reads an accepted answer; NULL: nothing to read */
	void	   *arg;			/* for answer */
};

/* storage_s3.c */

/* The key of a repository path (caller frees). */
char	   *s3_key(const s3_storage *s, const char *path);
/* "<service>://bucket/prefix/path" for messages (caller frees). */
char	   *s3_desc(const s3_storage *s, const char *path);
/*
 * Sends call on client, retrying transport failures and retryable statuses up to
 * s->retries times with back-off, signing each attempt again; a resumable read goes on
 * from the next byte. 0 with the final response (any status), or -1 (transport failure
 * after the last attempt, "... (after N attempts)", or the sink's own error; also when
 * client is NULL). *attempts is the number of attempts made.
 */
int			s3_send(s3_storage *s, http_client *client, s3_call *call, http_response *resp,
					int *attempts);
/* Runs call and judges its answer as the contract above says; 0 or -1. */
int			s3_call_run(s3_storage *s, s3_call *call);
/* Base64 of the MD5 of data (Content-MD5); the raw digest into md5 when not NULL. */
void		s3_md5_base64(const void *data, size_t len, char out[25], uint8_t *md5);

/* storage_s3_write.c */

/* The writer sink for path (storage.h's write_open); never NULL. */
filter_t   *s3_write_open(storage_t *st, const char *path);

/* storage_s3_xml.c */

/* s with &, <, >, " and ' escaped, appended to b. */
void		s3_xml_escape_append(buf_t *b, const char *s);
/* The document in b; NULL when b is empty or not XML. Free with xmlFreeDoc. */
xmlDocPtr	s3_xml_parse(const buf_t *b);
/* True when n is an element called name. */
bool		s3_xml_is(xmlNodePtr n, const char *name);
/* Text of the first child element name of n (caller frees); NULL when there is none. */
char	   *s3_xml_child_text(xmlNodePtr n, const char *name);
/* Code and Message of an S3 <Error> body in resp (either may be NULL; caller frees). */
void		s3_error_fields(const http_response *resp, char **code, char **message);

#endif
