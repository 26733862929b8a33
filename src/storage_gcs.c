/*
 * storage_gcs.c — the Google Cloud Storage driver over the JSON API (see storage_gcs.h
 * and the contract in storage.h).
 *
 * Object names are "prefix/path". Every request carries "Authorization: Bearer <token>"
 * from gcs_auth; a 401 makes the driver drop that token and try once more with a new one.
 * Transport errors and retryable statuses are retried with http_backoff, up to
 * settings->retries extra attempts. HTTP clients come from a small pool, so one driver
 * may serve several threads (each request holds its own client).
 *
 * Writes buffer up to chunk_size bytes: an object that fits is sent in one media upload;
 * a larger one goes through a resumable session whose chunks are acknowledged with 308
 * and a Range header. Either way GCS shows the object only once the upload completes;
 * a writer freed before that deletes its session. The size and MD5 the store reports
 * for the new object are checked against what was sent.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"
#include "gcs_auth.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "storage_gcs.h"

#define GCS_DEFAULT_ENDPOINT	"https://storage.googleapis.com"
#define GCS_CHUNK_ALIGN			(256 * 1024)
#define GCS_DEFAULT_CHUNK		(16 * 1024 * 1024)
#define GCS_ERROR_QUOTE_MAX		300		/* bytes of a non-JSON error body quoted */
#define GCS_MAX_HEADERS			8

typedef struct gcs_storage
{
	storage_t	base;
	char	   *endpoint;		/* without a trailing '/' */
	char	   *bucket;
	char	   *bucket_enc;		/* percent-encoded for URLs */
	char	   *prefix;			/* "" or "a/b" */
	size_t		chunk_size;
	int			retries;
	char	   *ca_file;
	http_options http;
	gcs_auth   *auth;
	pthread_mutex_t pool_lock;
	http_client **idle;			/* clients not in use */
	size_t		nidle;
	size_t		idle_cap;
} gcs_storage;

/* State of one request across its attempts. */
typedef struct gcs_try
{
	int			attempt;		/* attempts sent so far */
	bool		refreshed;		/* already retried once after a 401 */
	bool		no_token;		/* no access token could be had: do not retry */
	char	   *token;			/* token the last attempt used */
} gcs_try;

/* ---------------------------------------------------------------- helpers */

/* Take an idle HTTP client or make one; NULL with an error. */
static http_client *
client_get(gcs_storage *g)
{
	http_client *c = NULL;

	pthread_mutex_lock(&g->pool_lock);
	if (g->nidle > 0)
		c = g->idle[--g->nidle];
	pthread_mutex_unlock(&g->pool_lock);
	if (c == NULL && (c = http_client_new(&g->http)) == NULL)
		err_wrap("unable to create an HTTP client for %s", g->base.description);
	return c;
}

/* Give a client back to the pool. */
static void
client_put(gcs_storage *g, http_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&g->pool_lock);
	if (g->nidle == g->idle_cap)
	{
		g->idle_cap = g->idle_cap ? g->idle_cap * 2 : 4;
		g->idle = xrealloc(g->idle, g->idle_cap * sizeof(*g->idle));
	}
	g->idle[g->nidle++] = c;
	pthread_mutex_unlock(&g->pool_lock);
}

/* Full object name for a repository path. Caller frees. */
static char *
object_name(const gcs_storage *g, const char *path)
{
	return g->prefix[0] ? xasprintf("%s/%s", g->prefix, path) : xstrdup(path);
}

/* URL of an object's resource, with an optional query (without '?'). Caller frees. */
static char *
object_url(const gcs_storage *g, const char *name, const char *query)
{
	char	   *enc = http_uri_encode(name, false);
	char	   *url = xasprintf("%s/storage/v1/b/%s/o/%s%s%s", g->endpoint, g->bucket_enc, enc,
								query ? "?" : "", query ? query : "");

	free(enc);
	return url;
}

static void
try_reset(gcs_try *t)
{
	if (t->token)
	{
		secure_zero(t->token, strlen(t->token));
		free(t->token);
	}
	memset(t, 0, sizeof(*t));
}

/*
 * One attempt of req with the current access token added. Returns http_execute's
 * result; -1 with t->no_token set when no token could be had. resp is reset first.
 */
static int
gcs_send(gcs_storage *g, http_client *c, const http_request *req, http_response *resp, gcs_try *t)
{
	const char *headers[GCS_MAX_HEADERS + 1];
	http_request r = *req;
	char	   *auth_line;
	int			rc;

	http_response_free(resp);
	if (t->token)
	{
		secure_zero(t->token, strlen(t->token));
		free(t->token);
	}
	t->token = gcs_auth_token(g->auth);
	if (t->token == NULL)
	{
		t->no_token = true;
		return -1;
	}
	if (req->nheaders > GCS_MAX_HEADERS)
		return err_set(DRB_ERR_INTERNAL, "too many headers for a GCS request");
	for (size_t i = 0; i < req->nheaders; i++)
		headers[i] = req->headers[i];
	auth_line = xasprintf("Authorization: Bearer %s", t->token);
	headers[req->nheaders] = auth_line;
	r.headers = headers;
	r.nheaders = req->nheaders + 1;
	t->attempt++;
	rc = http_execute(c, &r, resp);
	secure_zero(auth_line, strlen(auth_line));
	free(auth_line);
	return rc;
}

/*
 * After an attempt that did not succeed: true when another attempt should be made
 * (after a back-off sleep, or at once with a new token after a first 401).
 */
static bool
gcs_again(gcs_storage *g, gcs_try *t, int rc, const http_response *resp, const char *what)
{
	if (t->no_token)
		return false;
	if (rc != 0)
	{
		if (resp->sink_failed)
			return false;
	}
	else if (resp->status == 401)
	{
		if (t->refreshed || !gcs_auth_invalidate(g->auth, t->token))
			return false;
		t->refreshed = true;
		log_detail("%s: HTTP 401, retrying with a new access token", what);
		return true;
	}
	else if (!http_retryable(resp->status))
		return false;
	if (t->attempt > g->retries)
		return false;
	if (rc != 0)
		log_detail("%s: attempt %d failed (%s), retrying", what, t->attempt, err_msg());
	else
		log_detail("%s: attempt %d got HTTP %ld, retrying", what, t->attempt, resp->status);
	http_backoff(t->attempt);
	return true;
}

/*
 * req with retries (see gcs_again). Returns 0 with resp holding the last reply (any
 * status) or -1 when the last attempt failed without a reply.
 */
static int
gcs_request(gcs_storage *g, http_client *c, const http_request *req, http_response *resp,
			const char *what)
{
	gcs_try		t = {0};
	int			rc;

	do
		rc = gcs_send(g, c, req, resp, &t);
	while ((rc != 0 || resp->status >= 300) && gcs_again(g, &t, rc, resp, what));
	if (rc != 0 && !t.no_token && t.attempt > 1)
		err_wrap("after %d attempts", t.attempt);
	try_reset(&t);
	return rc;
}

/*
 * Record the error for a reply with an unexpected status: DRB_ERR_NOT_FOUND for 404,
 * DRB_ERR_STORAGE otherwise, with GCS's error message (or the start of the body).
 */
static int
status_error(const http_response *resp, const char *op, const char *bucket, const char *name)
{
	const char *body = resp->body.len ? (const char *) resp->body.data : "";
	json_t	   *root = json_loadb(body, resp->body.len, 0, NULL);
	json_t	   *e = root ? json_object_get(root, "error") : NULL;
	const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message")) : NULL;
	int			n = resp->body.len < GCS_ERROR_QUOTE_MAX ? (int) resp->body.len : GCS_ERROR_QUOTE_MAX;

	if (msg == NULL && json_is_string(e))
		msg = json_string_value(e);
	err_set(resp->status == 404 ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
			"unable to %s 'gs://%s/%s': HTTP %ld%s%.*s", op, bucket, name, resp->status,
			(msg || n) ? ": " : "", msg ? (int) strlen(msg) : n, msg ? msg : body);
	json_decref(root);
	return -1;
}

/* A JSON number or decimal string as uint64; false when neither. */
static bool
json_u64(json_t *v, uint64_t *out)
{
	char	   *end;

	if (json_is_integer(v) && json_integer_value(v) >= 0)
	{
		*out = (uint64_t) json_integer_value(v);
		return true;
	}
	if (!json_is_string(v) || json_string_value(v)[0] == '\0')
		return false;
	*out = strtoull(json_string_value(v), &end, 10);
	return *end == '\0';
}

/* RFC 3339 time ("2024-05-01T12:34:56.789Z") to epoch seconds; 0 when unparsable. */
static int64_t
parse_rfc3339(const char *s)
{
	struct tm	tm = {0};

	if (s == NULL || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
							&tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm);
}

static int	gcs_head(storage_t *s, const char *path, storage_info *out);
static int	delete_object(gcs_storage *g, const char *name);

/* ---------------------------------------------------------------- read */

/* Passes bytes on to the caller's sink, counting them and refusing more than asked. */
typedef struct read_guard
{
	filter_t	base;
	uint64_t	pushed;
	uint64_t	limit;			/* 0 = none */
	const char *name;
} read_guard;

static int
guard_process(filter_t *f, const uint8_t *in, size_t len)
{
	read_guard *rg = (read_guard *) f;

	if (rg->limit && rg->pushed + len > rg->limit)
		return err_set(DRB_ERR_INTEGRITY, "GCS sent more bytes of '%s' than the range asked for",
					   rg->name);
	rg->pushed += len;
	return filter_push(f->next, in, len);
}

static int
guard_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
guard_destroy(filter_t *f)
{
	(void) f;
}

static const filter_ops guard_ops = {"gcs-read", guard_process, guard_finish, guard_destroy};

/* A 416 for a read from offset: fine (nothing to read) at the end, an error past it. */
static int
read_past_end(storage_t *s, const char *path, uint64_t offset, const char *what)
{
	storage_info info;

	if (gcs_head(s, path, &info) != 0)
		return err_wrap("unable to %s", what);
	if (offset > info.size)
		return err_set(DRB_ERR_STORAGE, "unable to %s from offset %" PRIu64 ": the object has only %"
					   PRIu64 " bytes", what, offset, info.size);
	return 0;
}

static int
gcs_read(storage_t *s, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *name = object_name(g, path);
	char	   *url = object_url(g, name, "alt=media");
	char	   *what = xasprintf("read 'gs://%s/%s'", g->bucket, name);
	read_guard	guard = {{&guard_ops, sink}, 0, length, name};
	http_client *c = client_get(g);
	http_response resp = {0};
	gcs_try		t = {0};
	char		range[64];
	const char *headers[1] = {range};
	http_request req = {.method = "GET", .url = url, .headers = headers, .sink = &guard.base};
	int			rc = -1;

	while (c != NULL)
	{
		uint64_t	pos = offset + guard.pushed;
		uint64_t	before = guard.pushed;

		if (length && guard.pushed == length)
		{
			rc = 0;				/* every byte arrived before the failure */
			break;
		}
		req.nheaders = 0;
		if (length)
			snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, pos, offset + length - 1);
		else if (pos > 0)
			snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", pos);
		req.nheaders = (length || pos > 0) ? 1 : 0;
		/* with a Range, only a 206 body may reach the sink: a 200 would be the whole object */
		req.sink_status = req.nheaders ? 206 : 0;

		rc = gcs_send(g, c, &req, &resp, &t);
		if (rc == 0 && resp.status == 200 && req.nheaders)
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to %s: the server ignored the Range header", what);
			break;
		}
		if (rc == 0 && (resp.status == 200 || resp.status == 206))
			break;
		if (rc == 0 && resp.status == 416)
		{
			/* nothing at or after pos: the end when resuming, else compare with the size */
			if (guard.pushed == 0)
				rc = read_past_end(s, path, offset, what);
			break;
		}
		if (guard.pushed > before)
			t.attempt = 0;		/* bytes came: this attempt made progress, do not count it */
		if (!gcs_again(g, &t, rc, &resp, what))
		{
			if (rc == 0)
				rc = status_error(&resp, "read", g->bucket, name);
			else if (!resp.sink_failed && !t.no_token)
				err_wrap("unable to %s after %d attempts (%" PRIu64 " bytes received)", what,
						 t.attempt, guard.pushed);
			break;
		}
	}
	http_response_free(&resp);
	client_put(g, c);
	try_reset(&t);
	free(what);
	free(url);
	free(name);
	return rc;
}

/* ---------------------------------------------------------------- write */

typedef struct gcs_writer
{
	filter_t	base;
	gcs_storage *g;
	char	   *name;
	uint8_t    *buf;			/* bytes from buf_offset not yet persisted */
	size_t		len;
	size_t		cap;
	uint64_t	buf_offset;		/* object offset of buf[0] */
	uint64_t	total;			/* bytes pushed so far */
	char	   *session;		/* resumable session URI, once started */
	EVP_MD_CTX *md5;
	char		md5_b64[32];	/* standard base64 MD5, set by finish */
	bool		failed;
	bool		done;
} gcs_writer;

/*
 * Check the metadata of a completed upload. On a mismatch the object holds other bytes
 * than were sent: delete it (best effort) so that it is not taken for good.
 */
static int
upload_verify(gcs_writer *w, http_response *resp)
{
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	uint64_t	size = 0;
	const char *md5 = root ? json_string_value(json_object_get(root, "md5Hash")) : NULL;
	int			rc = 0;

	if (root == NULL || !json_u64(json_object_get(root, "size"), &size))
		rc = err_set(DRB_ERR_INTEGRITY, "GCS answered the upload of 'gs://%s/%s' without the "
					 "object's size", w->g->bucket, w->name);
	else if (size != w->total)
		rc = err_set(DRB_ERR_INTEGRITY, "GCS stored %" PRIu64 " bytes for 'gs://%s/%s' but %" PRIu64
					 " were sent", size, w->g->bucket, w->name, w->total);
	else if (md5 && strcmp(md5, w->md5_b64) != 0)
		rc = err_set(DRB_ERR_INTEGRITY, "GCS reports MD5 %s for 'gs://%s/%s' but the bytes sent have %s",
					 md5, w->g->bucket, w->name, w->md5_b64);
	json_decref(root);
	if (rc != 0)
	{
		drb_err		kind = err_kind();
		char	   *saved = xstrdup(err_msg());

		if (delete_object(w->g, w->name) != 0)
			log_warn("unable to remove the mismatching object: %s", err_msg());
		err_set(kind, "%s", saved);
		free(saved);
	}
	return rc;
}

/* Start the resumable session; sets w->session. */
static int
session_start(gcs_writer *w, http_client *c)
{
	gcs_storage *g = w->g;
	char	   *enc = http_uri_encode(w->name, false);
	char	   *url = xasprintf("%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s",
								g->endpoint, g->bucket_enc, enc);
	char	   *what = xasprintf("start the upload of 'gs://%s/%s'", g->bucket, w->name);
	const char *headers[] = {"X-Upload-Content-Type: application/octet-stream"};
	http_request req = {.method = "POST", .url = url, .headers = headers, .nheaders = 1};
	http_response resp = {0};
	const char *loc;
	int			rc = gcs_request(g, c, &req, &resp, what);

	if (rc != 0)
		err_wrap("unable to %s", what);
	else if (resp.status != 200 && resp.status != 201)
		rc = status_error(&resp, "start the resumable upload of", g->bucket, w->name);
	else if ((loc = http_response_header(&resp, "location")) == NULL || loc[0] == '\0')
		rc = err_set(DRB_ERR_STORAGE, "unable to %s: no Location header in the reply", what);
	else
		w->session = xstrdup(loc);
	http_response_free(&resp);
	free(what);
	free(url);
	free(enc);
	return rc;
}

/* Bytes persisted according to a 308 reply's Range header ("bytes=0-N"); 0 if none. */
static bool
persisted_of(const http_response *resp, uint64_t *out)
{
	const char *range = http_response_header(resp, "range");
	uint64_t	last;

	*out = 0;
	if (range == NULL)
		return true;
	if (sscanf(range, "bytes=0-%" SCNu64, &last) != 1)
		return false;
	*out = last + 1;
	return true;
}

/* Drop the buffered bytes before object offset upto (now persisted). */
static int
advance_to(gcs_writer *w, uint64_t upto)
{
	size_t		drop;

	if (upto < w->buf_offset || upto > w->buf_offset + w->len)
		return err_set(DRB_ERR_STORAGE, "GCS reports %" PRIu64 " bytes persisted for the upload of "
					   "'gs://%s/%s', outside the %" PRIu64 "-%" PRIu64 " range held", upto,
					   w->g->bucket, w->name, w->buf_offset, w->buf_offset + w->len);
	drop = (size_t) (upto - w->buf_offset);
	memmove(w->buf, w->buf + drop, w->len - drop);
	w->len -= drop;
	w->buf_offset = upto;
	return 0;
}

/*
 * Send the buffered bytes into the session. Not final: returns once the store has
 * acknowledged (part of) them; what it did not take stays buffered. Final: declares the
 * total and returns once the object is complete and verified. After a transport error
 * or retryable status, asks the session how far it got and resends from there.
 */
static int
session_put(gcs_writer *w, http_client *c, bool final)
{
	gcs_storage *g = w->g;
	char	   *what = xasprintf("upload to 'gs://%s/%s'", g->bucket, w->name);
	char		crange[96];
	char		total[32];
	const char *headers[] = {crange};
	http_request req = {.method = "PUT", .url = w->session, .headers = headers, .nheaders = 1};
	http_response resp = {0};
	gcs_try		t = {0};
	bool		query = false;
	int			rc = -1;

	snprintf(total, sizeof(total), final ? "%" PRIu64 : "*", w->total);
	for (;;)
	{
		uint64_t	before = w->buf_offset;
		uint64_t	persisted;

		if (query || w->len == 0)
		{
			/* a status query, or the final request when every byte is already there */
			snprintf(crange, sizeof(crange), "Content-Range: bytes */%s", total);
			req.body = NULL;
			req.body_len = 0;
		}
		else
		{
			snprintf(crange, sizeof(crange), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%s",
					 w->buf_offset, w->buf_offset + w->len - 1, total);
			req.body = w->buf;
			req.body_len = w->len;
		}

		rc = gcs_send(g, c, &req, &resp, &t);
		if (rc == 0 && resp.status == 308)
		{
			if (!persisted_of(&resp, &persisted))
			{
				rc = err_set(DRB_ERR_STORAGE, "unable to %s: unparsable Range '%s' in the 308 reply",
							 what, http_response_header(&resp, "range"));
				break;
			}
			if ((rc = advance_to(w, persisted)) != 0)
				break;
			if (query)
			{
				t.attempt--;	/* an answered status query costs no attempt */
				query = false;	/* now resend what it lacks, if anything */
				if (!final && w->len == 0)
					break;
				continue;
			}
			if (!final)
				break;
			if (w->buf_offset == before)
			{
				rc = err_set(DRB_ERR_STORAGE, "unable to %s: the store took none of the final %zu bytes",
							 what, w->len);
				break;
			}
			continue;			/* the final chunk was taken in part: send the rest */
		}
		if (rc == 0 && (resp.status == 200 || resp.status == 201))
		{
			if (!final)
				rc = err_set(DRB_ERR_STORAGE, "unable to %s: the store completed the upload before "
							 "its last chunk", what);
			else
			{
				w->done = true;
				rc = upload_verify(w, &resp);
			}
			break;
		}
		if (rc == 0 && (resp.status == 404 || resp.status == 410))
		{
			rc = status_error(&resp, "continue the resumable upload (session gone) of", g->bucket, w->name);
			break;
		}
		if (!gcs_again(g, &t, rc, &resp, what))
		{
			if (rc == 0)
				rc = status_error(&resp, "upload", g->bucket, w->name);
			else if (!t.no_token)
				err_wrap("unable to %s after %d attempts", what, t.attempt);
			break;
		}
		/* after a 401 nothing was taken; otherwise ask how far the store got */
		if (!(rc == 0 && resp.status == 401))
			query = true;
		rc = -1;
	}
	http_response_free(&resp);
	try_reset(&t);
	free(what);
	return rc;
}

/* Upload the whole (small) object in one request. */
static int
media_upload(gcs_writer *w, http_client *c)
{
	gcs_storage *g = w->g;
	char	   *enc = http_uri_encode(w->name, false);
	char	   *url = xasprintf("%s/upload/storage/v1/b/%s/o?uploadType=media&name=%s",
								g->endpoint, g->bucket_enc, enc);
	char	   *what = xasprintf("upload 'gs://%s/%s'", g->bucket, w->name);
	const char *headers[] = {"Content-Type: application/octet-stream"};
	http_request req = {.method = "POST", .url = url, .headers = headers, .nheaders = 1,
		.body = w->buf, .body_len = w->len};
	http_response resp = {0};
	int			rc = gcs_request(g, c, &req, &resp, what);

	if (rc != 0)
		err_wrap("unable to %s", what);
	else if (resp.status != 200 && resp.status != 201)
		rc = status_error(&resp, "upload", g->bucket, w->name);
	else
	{
		w->done = true;
		rc = upload_verify(w, &resp);
	}
	http_response_free(&resp);
	free(what);
	free(url);
	free(enc);
	return rc;
}

/* Send the full buffer as a non-final chunk, starting the session if needed. */
static int
writer_flush(gcs_writer *w)
{
	http_client *c = client_get(w->g);
	int			rc = -1;

	if (c != NULL && (w->session != NULL || session_start(w, c) == 0))
		rc = session_put(w, c, false);
	client_put(w->g, c);
	return rc;
}

static int
writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	gcs_writer *w = (gcs_writer *) f;

	if (w->failed || w->done)
		return err_set(DRB_ERR_INTERNAL, "write to 'gs://%s/%s' after it %s", w->g->bucket, w->name,
					   w->failed ? "failed" : "was finished");
	while (len > 0)
	{
		size_t		n;

		if (w->len == w->g->chunk_size && writer_flush(w) != 0)
		{
			w->failed = true;
			return -1;
		}
		if (w->len == w->cap)
		{
			w->cap = w->cap ? w->cap * 2 : 64 * 1024;
			if (w->cap > w->g->chunk_size)
				w->cap = w->g->chunk_size;
			w->buf = xrealloc(w->buf, w->cap);
		}
		n = w->cap - w->len < len ? w->cap - w->len : len;
		memcpy(w->buf + w->len, in, n);
		EVP_DigestUpdate(w->md5, in, n);
		w->len += n;
		w->total += n;
		in += n;
		len -= n;
	}
	return 0;
}

static int
writer_finish(filter_t *f)
{
	gcs_writer *w = (gcs_writer *) f;
	uint8_t		digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	http_client *c;
	int			rc = -1;

	if (w->failed || w->done)
		return err_set(DRB_ERR_INTERNAL, "finish of 'gs://%s/%s' after it %s", w->g->bucket, w->name,
					   w->failed ? "failed" : "was finished");
	EVP_DigestFinal_ex(w->md5, digest, &dlen);
	EVP_EncodeBlock((uint8_t *) w->md5_b64, digest, (int) dlen);
	if ((c = client_get(w->g)) != NULL)
		rc = w->session ? session_put(w, c, true) : media_upload(w, c);
	client_put(w->g, c);
	if (rc != 0)
	{
		w->failed = true;
		return -1;
	}
	return filter_finish(f->next);
}

/* Cancel an unfinished session (best effort), keeping the caller's error state. */
static void
session_cancel(gcs_writer *w)
{
	drb_err		kind = err_kind();
	char	   *saved = xstrdup(err_msg());
	http_request req = {.method = "DELETE", .url = w->session};
	http_response resp = {0};
	http_client *c = client_get(w->g);
	char	   *what = xasprintf("cancel the upload of 'gs://%s/%s'", w->g->bucket, w->name);

	if (c == NULL || gcs_request(w->g, c, &req, &resp, what) != 0)
		log_warn("unable to %s: %s", what, err_msg());
	else if (resp.status != 499 && resp.status != 204 && resp.status != 200 && resp.status != 404)
		log_warn("unable to %s: HTTP %ld", what, resp.status);
	http_response_free(&resp);
	client_put(w->g, c);
	free(what);
	if (kind == DRB_OK)
		err_clear();
	else
		err_set(kind, "%s", saved);
	free(saved);
}

static void
writer_destroy(filter_t *f)
{
	gcs_writer *w = (gcs_writer *) f;

	if (w->session && !w->done)
		session_cancel(w);
	EVP_MD_CTX_free(w->md5);
	free(w->session);
	free(w->buf);
	free(w->name);
	free(w);
}

static const filter_ops writer_ops = {"gcs-write", writer_process, writer_finish, writer_destroy};

static filter_t *
gcs_write_open(storage_t *s, const char *path)
{
	gcs_storage *g = (gcs_storage *) s;
	gcs_writer *w = xcalloc(1, sizeof(*w));

	w->base.ops = &writer_ops;
	w->g = g;
	w->name = object_name(g, path);
	w->md5 = EVP_MD_CTX_new();
	if (w->md5 == NULL || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1)
	{
		err_set(DRB_ERR_CRYPTO, "unable to start the MD5 of 'gs://%s/%s'", g->bucket, w->name);
		writer_destroy(&w->base);
		return NULL;
	}
	return &w->base;
}

/* ---------------------------------------------------------------- head, list, remove */

static int
gcs_head(storage_t *s, const char *path, storage_info *out)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *name = object_name(g, path);
	char	   *url = object_url(g, name, "fields=size%2Cupdated");
	char	   *what = xasprintf("get the metadata of 'gs://%s/%s'", g->bucket, name);
	http_request req = {.method = "GET", .url = url};
	http_response resp = {0};
	http_client *c = client_get(g);
	int			rc = -1;

	if (c != NULL && (rc = gcs_request(g, c, &req, &resp, what)) != 0)
		err_wrap("unable to %s", what);
	else if (c != NULL && resp.status != 200)
		rc = status_error(&resp, "get the metadata of", g->bucket, name);
	else if (c != NULL)
	{
		json_t	   *root = json_loadb((const char *) resp.body.data, resp.body.len, 0, NULL);

		memset(out, 0, sizeof(*out));
		out->path = path;
		if (root == NULL || !json_u64(json_object_get(root, "size"), &out->size))
			rc = err_set(DRB_ERR_STORAGE, "unable to %s: the reply has no size", what);
		else
			out->mtime = parse_rfc3339(json_string_value(json_object_get(root, "updated")));
		json_decref(root);
	}
	http_response_free(&resp);
	client_put(g, c);
	free(what);
	free(url);
	free(name);
	return rc;
}

/* Call cb for each item of one list page; sets *next_token (caller frees) or NULL. */
static int
list_page(gcs_storage *g, const http_response *resp, size_t strip, storage_list_cb cb, void *arg,
		  char **next_token, const char *what)
{
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	json_t	   *items = root ? json_object_get(root, "items") : NULL;
	const char *tok = root ? json_string_value(json_object_get(root, "nextPageToken")) : NULL;
	size_t		i;
	json_t	   *item;
	int			rc = 0;

	*next_token = NULL;
	if (root == NULL || (items && !json_is_array(items)))
	{
		json_decref(root);
		return err_set(DRB_ERR_STORAGE, "unable to %s: the reply is not a JSON object list", what);
	}
	json_array_foreach(items, i, item)
	{
		const char *name = json_string_value(json_object_get(item, "name"));
		storage_info info = {0};

		if (name == NULL || !json_u64(json_object_get(item, "size"), &info.size))
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to %s: an item has no name or size", what);
			break;
		}
		/* skip anything not strictly under the repository prefix (e.g. "prefix/" itself) */
		if (strlen(name) <= strip ||
			(g->prefix[0] && (strncmp(name, g->prefix, strip - 1) != 0 || name[strip - 1] != '/')))
			continue;
		info.path = name + strip;
		info.mtime = parse_rfc3339(json_string_value(json_object_get(item, "updated")));
		if ((rc = cb(&info, arg)) != 0)
		{
			rc = -1;
			break;
		}
	}
	if (rc == 0 && tok && tok[0])
		*next_token = xstrdup(tok);
	json_decref(root);
	return rc;
}

static int
gcs_list(storage_t *s, const char *prefix, storage_list_cb cb, void *arg)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *full = g->prefix[0] ? xasprintf("%s/%s", g->prefix, prefix) : xstrdup(prefix);
	char	   *full_enc = http_uri_encode(full, false);
	size_t		strip = g->prefix[0] ? strlen(g->prefix) + 1 : 0;
	char	   *what = xasprintf("list 'gs://%s/%s'", g->bucket, full);
	char	   *token = NULL;
	http_client *c = client_get(g);
	int			rc = c ? 0 : -1;

	while (rc == 0)
	{
		char	   *tok_enc = token ? http_uri_encode(token, false) : NULL;
		char	   *url = xasprintf("%s/storage/v1/b/%s/o?prefix=%s&fields=items(name%%2Csize%%2Cupdated)"
									"%%2CnextPageToken%s%s", g->endpoint, g->bucket_enc, full_enc,
									tok_enc ? "&pageToken=" : "", tok_enc ? tok_enc : "");
		http_request req = {.method = "GET", .url = url};
		http_response resp = {0};

		free(token);
		token = NULL;
		if ((rc = gcs_request(g, c, &req, &resp, what)) != 0)
			err_wrap("unable to %s", what);
		else if (resp.status != 200)
			rc = status_error(&resp, "list", g->bucket, full);
		else
			rc = list_page(g, &resp, strip, cb, arg, &token, what);
		http_response_free(&resp);
		free(url);
		free(tok_enc);
		if (token == NULL)
			break;
	}
	free(token);
	client_put(g, c);
	free(what);
	free(full_enc);
	free(full);
	return rc;
}

/* Delete one object by its full name; a missing object is success. */
static int
delete_object(gcs_storage *g, const char *name)
{
	char	   *url = object_url(g, name, NULL);
	char	   *what = xasprintf("delete 'gs://%s/%s'", g->bucket, name);
	http_request req = {.method = "DELETE", .url = url};
	http_response resp = {0};
	http_client *c = client_get(g);
	int			rc = -1;

	if (c != NULL && (rc = gcs_request(g, c, &req, &resp, what)) != 0)
		err_wrap("unable to %s", what);
	else if (c != NULL && resp.status != 204 && resp.status != 200 && resp.status != 404)
		rc = status_error(&resp, "delete", g->bucket, name);
	http_response_free(&resp);
	client_put(g, c);
	free(what);
	free(url);
	return rc;
}

static int
gcs_remove(storage_t *s, const char *path)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *name = object_name(g, path);
	int			rc = delete_object(g, name);

	free(name);
	return rc;
}

static int
gcs_remove_many(storage_t *s, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (gcs_remove(s, paths[i]) != 0)
			return -1;
	return 0;
}

static void
gcs_free(storage_t *s)
{
	gcs_storage *g = (gcs_storage *) s;

	for (size_t i = 0; i < g->nidle; i++)
		http_client_free(g->idle[i]);
	free(g->idle);
	pthread_mutex_destroy(&g->pool_lock);
	gcs_auth_free(g->auth);
	free(g->base.description);
	free(g->endpoint);
	free(g->bucket);
	free(g->bucket_enc);
	free(g->prefix);
	free(g->ca_file);
	free(g);
}

static const storage_ops gcs_ops = {
	"gcs", gcs_read, gcs_write_open, gcs_head, gcs_list, gcs_remove, gcs_remove_many, gcs_free,
};

/* A copy of s without leading and trailing characters c. */
static char *
strip_char(const char *s, char c)
{
	size_t		n;

	while (*s == c)
		s++;
	n = strlen(s);
	while (n > 0 && s[n - 1] == c)
		n--;
	return xstrndup(s, n);
}

storage_t *
storage_gcs_new(const gcs_settings *settings)
{
	const char *endpoint = settings->endpoint && settings->endpoint[0] ?
		settings->endpoint : GCS_DEFAULT_ENDPOINT;
	gcs_storage *g;

	if (settings->bucket == NULL || settings->bucket[0] == '\0')
	{
		err_set(DRB_ERR_CONFIG, "GCS repository needs a bucket");
		return NULL;
	}
	if (settings->key == NULL || settings->key[0] == '\0')
	{
		err_set(DRB_ERR_CONFIG, "GCS repository 'gs://%s' needs a key (%s)", settings->bucket,
				settings->key_type == GCS_KEY_TOKEN ? "an access token" : "a service-account key file");
		return NULL;
	}
	if (strncmp(endpoint, "https://", 8) != 0 && strncmp(endpoint, "http://", 7) != 0)
	{
		err_set(DRB_ERR_CONFIG, "GCS endpoint '%s' is not an http:// or https:// URL", endpoint);
		return NULL;
	}

	g = xcalloc(1, sizeof(*g));
	g->base.ops = &gcs_ops;
	g->endpoint = xstrdup(endpoint);
	while (strlen(g->endpoint) > 8 && g->endpoint[strlen(g->endpoint) - 1] == '/')
		g->endpoint[strlen(g->endpoint) - 1] = '\0';
	g->bucket = xstrdup(settings->bucket);
	g->bucket_enc = http_uri_encode(settings->bucket, false);
	g->prefix = strip_char(settings->prefix ? settings->prefix : "", '/');
	/* resumable chunks must be multiples of 256 KiB: round down, but keep at least one */
	g->chunk_size = settings->chunk_size == 0 ? GCS_DEFAULT_CHUNK :
		settings->chunk_size < GCS_CHUNK_ALIGN ? GCS_CHUNK_ALIGN :
		settings->chunk_size / GCS_CHUNK_ALIGN * GCS_CHUNK_ALIGN;
	g->retries = settings->retries < 0 ? 0 : settings->retries;
	g->ca_file = settings->ca_file ? xstrdup(settings->ca_file) : NULL;
	g->http.verify_tls = settings->verify_tls;
	g->http.ca_file = g->ca_file;
	g->http.timeout_seconds = settings->timeout_seconds;
	pthread_mutex_init(&g->pool_lock, NULL);
	g->base.description = xasprintf("gs://%s%s%s", g->bucket, g->prefix[0] ? "/" : "", g->prefix);
	g->auth = settings->key_type == GCS_KEY_TOKEN ? gcs_auth_new_token(settings->key) :
		gcs_auth_new_service(settings->key, &g->http, g->retries);
	if (g->auth == NULL)
	{
		err_wrap("unable to set up GCS repository %s", g->base.description);
		gcs_free(&g->base);
		return NULL;
	}
	return &g->base;
}
