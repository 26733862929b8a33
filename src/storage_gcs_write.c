/*
 * storage_gcs_write.c — the GCS writer (storage.h's write contract; storage_gcs.intern.h
 * for what it shares with the driver core).
 *
 * Writes buffer up to chunk_size bytes: an object that fits is sent in one media upload;
 * a larger one goes through a resumable session whose chunks are acknowledged with 308
 * and a Range header. Either way GCS shows the object only once the upload completes;
 * a writer freed before that deletes its session. The size and MD5 the store reports
 * for the new object are checked against what was sent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "storage_gcs.intern.h"

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
upload_verify(gcs_writer *w, const http_response *resp)
{
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	uint64_t	size = 0;
	const char *md5 = root ? json_string_value(json_object_get(root, "md5Hash")) : NULL;
	int			rc = 0;

	if (root == NULL || !gcs_json_u64(json_object_get(root, "size"), &size))
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

		if (gcs_delete_object(w->g, w->name) != 0)
			log_warn("unable to remove the mismatching object: %s", err_msg());
		err_set(kind, "%s", saved);
		free(saved);
	}
	return rc;
}

/* The session URI from a reply's Location header, into the writer at call->arg. */
static int
session_answer(gcs_storage *g, gcs_call *call, const http_response *resp, const char *what)
{
	gcs_writer *w = call->arg;
	const char *loc = http_response_header(resp, "location");

	(void) g;
	if (loc == NULL || loc[0] == '\0')
		return err_set(DRB_ERR_STORAGE, "unable to %s: no Location header in the reply", what);
	w->session = xstrdup(loc);
	return 0;
}

/* URL that starts an upload of w's object with uploadType type. Caller frees. */
static char *
upload_url(const gcs_writer *w, const char *type)
{
	char	   *enc = http_uri_encode(w->name, false);
	char	   *url = xasprintf("%s/upload/storage/v1/b/%s/o?uploadType=%s&name=%s",
								w->g->endpoint, w->g->bucket_enc, type, enc);

	free(enc);
	return url;
}

/* Start the resumable session; sets w->session. */
static int
session_start(gcs_writer *w)
{
	char	   *url = upload_url(w, "resumable");
	const char *headers[] = {"X-Upload-Content-Type: application/octet-stream"};
	gcs_call	call = {.req = {.method = "POST", .url = url, .headers = headers, .nheaders = 1},
		.op = "start the resumable upload of", .name = w->name, .transport_op = "start the upload of",
	.ok = {200, 201}, .answer = session_answer, .arg = w};
	int			rc = gcs_call_run(w->g, &call);

	free(url);
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
session_put(gcs_writer *w, bool final)
{
	gcs_storage *g = w->g;
	http_client *c = gcs_client_get(g);
	char	   *what;
	char		crange[96];
	char		total[32];
	const char *headers[] = {crange};
	http_request req = {.method = "PUT", .url = w->session, .headers = headers, .nheaders = 1};
	http_response resp = {0};
	gcs_try		t = {0};
	bool		query = false;
	int			rc = -1;

	if (c == NULL)
		return -1;
	what = xasprintf("upload to 'gs://%s/%s'", g->bucket, w->name);
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
			rc = gcs_status_error(&resp, "continue the resumable upload (session gone) of", g->bucket, w->name);
			break;
		}
		if (!gcs_again(g, &t, rc, &resp, what))
		{
			if (rc == 0)
				rc = gcs_status_error(&resp, "upload", g->bucket, w->name);
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
	http_pool_put(g->pool, c);
	gcs_try_reset(&t);
	free(what);
	return rc;
}

/* The upload is complete: check what the store reports against what was sent. */
static int
media_answer(gcs_storage *g, gcs_call *call, const http_response *resp, const char *what)
{
	gcs_writer *w = call->arg;

	(void) g;
	(void) what;
	w->done = true;
	return upload_verify(w, resp);
}

/* Upload the whole (small) object in one request. */
static int
media_upload(gcs_writer *w)
{
	char	   *url = upload_url(w, "media");
	const char *headers[] = {"Content-Type: application/octet-stream"};
	gcs_call	call = {.req = {.method = "POST", .url = url, .headers = headers, .nheaders = 1,
		.body = w->buf, .body_len = w->len},
	.op = "upload", .name = w->name, .ok = {200, 201}, .answer = media_answer, .arg = w};
	int			rc = gcs_call_run(w->g, &call);

	free(url);
	return rc;
}

/* Send the full buffer as a non-final chunk, starting the session if needed. */
static int
writer_flush(gcs_writer *w)
{
	if (w->session == NULL && session_start(w) != 0)
		return -1;
	return session_put(w, false);
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

	if (w->failed || w->done)
		return err_set(DRB_ERR_INTERNAL, "finish of 'gs://%s/%s' after it %s", w->g->bucket, w->name,
					   w->failed ? "failed" : "was finished");
	EVP_DigestFinal_ex(w->md5, digest, &dlen);
	EVP_EncodeBlock((uint8_t *) w->md5_b64, digest, (int) dlen);
	if ((w->session ? session_put(w, true) : media_upload(w)) != 0)
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
	http_client *c = gcs_client_get(w->g);
	char	   *what = xasprintf("cancel the upload of 'gs://%s/%s'", w->g->bucket, w->name);

	if (c == NULL || gcs_request(w->g, c, &req, &resp, what) != 0)
		log_warn("unable to %s: %s", what, err_msg());
	else if (resp.status != 499 && resp.status != 204 && resp.status != 200 && resp.status != 404)
		log_warn("unable to %s: HTTP %ld", what, resp.status);
	http_response_free(&resp);
	http_pool_put(w->g->pool, c);
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

filter_t *
gcs_write_open(storage_t *s, const char *path)
{
	gcs_storage *g = (gcs_storage *) s;
	gcs_writer *w = xcalloc(1, sizeof(*w));

	w->base.ops = &writer_ops;
	w->g = g;
	w->name = gcs_object_name(g, path);
	w->md5 = EVP_MD_CTX_new();
	if (w->md5 == NULL || EVP_DigestInit_ex(w->md5, EVP_md5(), NULL) != 1)
	{
		err_set(DRB_ERR_CRYPTO, "unable to start the MD5 of 'gs://%s/%s'", g->bucket, w->name);
		writer_destroy(&w->base);
		return NULL;
	}
	return &w->base;
}
