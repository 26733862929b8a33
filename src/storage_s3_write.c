/*
 * storage_s3_write.c — the S3 writer (storage.h's write contract; storage_s3.intern.h
 * for what it shares with the driver core).
 *
 * A sink filter. Bytes collect in a buffer of up to part_size; at finish a single PUT
 * sends them. Once more than part_size bytes arrive, a multipart upload starts and each
 * full buffer becomes a part sent by a worker thread (at most upload_concurrency at once,
 * each with its own HTTP client from the pool); finish sends the last part and completes
 * the upload. Any failure, or a free without a successful finish, aborts the upload.
 * Every request goes through s3_call_run, so retries and error messages are the core's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "storage_s3.intern.h"

#define S3_MAX_PARTS		10000
#define S3_FIRST_BUF		(64 * 1024)

typedef struct s3_part
{
	struct s3_writer *w;
	pthread_t	thread;
	bool		busy;			/* thread started, not joined yet */
	bool		done;			/* thread finished (under w->lock) */
	int			number;
	uint8_t    *data;
	size_t		len;
	/* results, read after join */
	int			rc;
	drb_err		kind;
	char	   *errmsg;
	char	   *etag;
	uint8_t		md5[16];
} s3_part;

typedef struct s3_writer
{
	filter_t	base;
	s3_storage *s;
	char	   *key;
	char	   *desc;
	uint8_t    *buf;
	size_t		len;
	size_t		cap;
	bool		finished;
	bool		failed;
	char	   *upload_id;		/* multipart upload in progress */
	int			nparts;			/* parts handed to workers so far */
	char	  **etags;			/* [part number - 1] */
	uint8_t    *md5s;			/* 16 bytes per part, for the multipart ETag check */
	size_t		parts_cap;
	s3_part    *slots;			/* upload_concurrency of them */
	uint8_t    *spare;			/* a part-size buffer to reuse */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	drb_err		err_kind;		/* first failure of a part */
	char	   *err_msg;
} s3_writer;

/* The headers that ask for server-side encryption (PUT, CreateMultipartUpload). */
static size_t
sse_headers(const s3_storage *s, sigv4_pair *h)
{
	if (s->sse_kms_key_id == NULL)
		return 0;
	h[0] = (sigv4_pair) {"x-amz-server-side-encryption", "aws:kms"};
	h[1] = (sigv4_pair) {"x-amz-server-side-encryption-aws-kms-key-id", s->sse_kms_key_id};
	return 2;
}

/* An ETag header value without its quotes (caller frees). */
static char *
etag_bare(const char *etag)
{
	size_t		n;

	if (etag == NULL)
		return NULL;
	n = strlen(etag);
	if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"')
		return xstrndup(etag + 1, n - 2);
	return xstrdup(etag);
}

/* Without SSE-KMS a single-part ETag is the MD5 of the bytes stored: compare. */
static int
put_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	const uint8_t *raw_md5 = call->arg;
	char	   *etag;
	char		hex[33];
	int			rc = 0;

	(void) client;
	if (s->sse_kms_key_id != NULL)
		return 0;
	etag = etag_bare(http_response_header(resp, "etag"));
	hex_encode(raw_md5, 16, hex);
	if (etag && strlen(etag) == 32 && strcasecmp(etag, hex) != 0)
		rc = err_set(DRB_ERR_INTEGRITY, "unable to put '%s': the server stored MD5 %s, "
					 "expected %s", call->desc, etag, hex);
	free(etag);
	return rc;
}

/* Whole object in one PUT, with Content-MD5 and the body's SHA-256. */
static int
put_single(s3_writer *w)
{
	char		md5[25];
	uint8_t		raw_md5[16];
	sigv4_pair	h[4];
	s3_call		call = {.method = "PUT", .key = w->key, .headers = h, .body = w->buf,
		.body_len = w->len,
	.op = "put", .desc = w->desc, .ok = {200}, .answer = put_answer, .arg = raw_md5};

	s3_md5_base64(w->buf, w->len, md5, raw_md5);
	h[0] = (sigv4_pair) {"content-md5", md5};
	h[1] = (sigv4_pair) {"content-type", "application/octet-stream"};
	call.nheaders = 2 + sse_headers(w->s, h + 2);
	return s3_call_run(w->s, &call);
}

/* The UploadId of an InitiateMultipartUploadResult, into the writer at call->arg. */
static int
create_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	s3_writer  *w = call->arg;
	xmlDocPtr	doc = s3_xml_parse(&resp->body);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;
	int			rc = 0;

	(void) s;
	(void) client;
	w->upload_id = s3_xml_is(root, "InitiateMultipartUploadResult") ?
		s3_xml_child_text(root, "UploadId") : NULL;
	if (w->upload_id == NULL || w->upload_id[0] == '\0')
		rc = err_set(DRB_ERR_STORAGE, "unable to start a multipart upload of '%s': no "
					 "UploadId in the answer", w->desc);
	if (doc)
		xmlFreeDoc(doc);
	return rc;
}

static int
multipart_create(s3_writer *w)
{
	sigv4_pair	q[] = {{"uploads", NULL}};
	sigv4_pair	h[3] = {{"content-type", "application/octet-stream"}};
	s3_call		call = {.method = "POST", .key = w->key, .params = q, .nparams = 1, .headers = h,
		.op = "start a multipart upload of", .desc = w->desc, .ok = {200},
	.answer = create_answer, .arg = w};

	call.nheaders = 1 + sse_headers(w->s, h + 1);
	return s3_call_run(w->s, &call);
}

/* Best effort: the upload's parts must not linger (nor become visible). */
static void
multipart_abort(s3_writer *w)
{
	sigv4_pair	q[1];
	s3_call		call = {.method = "DELETE", .key = w->key, .params = q, .nparams = 1,
		.op = "abort the multipart upload of", .desc = w->desc, .ok = {204, 200, 404}};
	drb_err		kind = err_kind();
	char	   *saved = xstrdup(err_msg());

	if (w->upload_id == NULL)
	{
		free(saved);
		return;
	}
	q[0] = (sigv4_pair) {"uploadId", w->upload_id};
	if (s3_call_run(w->s, &call) != 0)
		log_warn("%s", err_msg());
	else
		log_debug("aborted the multipart upload of '%s'", w->desc);
	free(w->upload_id);
	w->upload_id = NULL;
	/* keep the error that made us abort */
	if (kind != DRB_OK)
		err_set(kind, "%s", saved);
	else
		err_clear();
	free(saved);
}

/* The part's ETag, which the Complete request must list. */
static int
part_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	s3_part    *p = call->arg;
	const char *etag = http_response_header(resp, "etag");

	(void) s;
	(void) client;
	if (etag == NULL)
		return err_set(DRB_ERR_STORAGE, "unable to %s '%s': no ETag in the answer", call->op,
					   call->desc);
	p->etag = xstrdup(etag);
	return 0;
}

/* Worker thread: upload one part (with retries), record its ETag or its error. */
static void *
part_thread(void *arg)
{
	s3_part    *p = arg;
	s3_writer  *w = p->w;
	char		md5[25];
	char		number[16];
	char	   *what = xasprintf("upload part %d of", p->number);
	sigv4_pair	q[2];
	sigv4_pair	h[1];
	s3_call		call = {.method = "PUT", .key = w->key, .params = q, .nparams = 2, .headers = h,
		.nheaders = 1, .body = p->data, .body_len = p->len,
	.op = what, .desc = w->desc, .ok = {200}, .answer = part_answer, .arg = p};

	s3_md5_base64(p->data, p->len, md5, p->md5);
	snprintf(number, sizeof(number), "%d", p->number);
	q[0] = (sigv4_pair) {"partNumber", number};
	q[1] = (sigv4_pair) {"uploadId", w->upload_id};
	h[0] = (sigv4_pair) {"content-md5", md5};
	p->rc = s3_call_run(w->s, &call);
	if (p->rc != 0)
	{
		p->kind = err_kind();
		p->errmsg = xstrdup(err_msg());
	}
	free(what);

	pthread_mutex_lock(&w->lock);
	p->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Join a finished part thread and take its result; its buffer becomes the spare. */
static void
part_collect(s3_writer *w, s3_part *p)
{
	pthread_join(p->thread, NULL);
	p->busy = false;
	p->done = false;
	if (p->rc == 0)
	{
		w->etags[p->number - 1] = p->etag;
		memcpy(w->md5s + 16 * (size_t) (p->number - 1), p->md5, 16);
	}
	else
	{
		if (w->err_msg == NULL)
		{
			w->err_kind = p->kind;
			w->err_msg = p->errmsg;
		}
		else
			free(p->errmsg);
		free(p->etag);
	}
	p->etag = NULL;
	p->errmsg = NULL;
	if (w->spare == NULL)
		w->spare = p->data;
	else
		free(p->data);
	p->data = NULL;
}

/* Wait for one part thread (or all, when all is true) and collect; false if none ran. */
static bool
parts_wait(s3_writer *w, bool all)
{
	bool		any = false;

	for (;;)
	{
		bool		busy = false;

		pthread_mutex_lock(&w->lock);
		for (;;)
		{
			bool		finished = false;

			busy = false;
			for (int i = 0; i < w->s->concurrency; i++)
			{
				busy |= w->slots[i].busy;
				finished |= w->slots[i].busy && w->slots[i].done;
			}
			if (!busy || finished)
				break;
			pthread_cond_wait(&w->cond, &w->lock);
		}
		pthread_mutex_unlock(&w->lock);
		if (!busy)
			return any;
		for (int i = 0; i < w->s->concurrency; i++)
		{
			bool		done;

			pthread_mutex_lock(&w->lock);
			done = w->slots[i].busy && w->slots[i].done;
			pthread_mutex_unlock(&w->lock);
			if (done)
			{
				part_collect(w, &w->slots[i]);
				any = true;
			}
		}
		if (!all)
			return any;
	}
}

/* Re-raise the first part failure in this thread. */
static int
parts_error(s3_writer *w)
{
	return err_set(w->err_kind, "%s", w->err_msg);
}

/* Hand the full buffer to a worker as the next part. */
static int
part_submit(s3_writer *w)
{
	s3_storage *s = w->s;
	s3_part    *p = NULL;

	if (w->upload_id == NULL && multipart_create(w) != 0)
		return -1;
	if (w->nparts >= S3_MAX_PARTS)
		return err_set(DRB_ERR_STORAGE, "unable to put '%s': more than %d parts of %zu bytes "
					   "(raise the part size)", w->desc, S3_MAX_PARTS, s->part_size);
	for (;;)
	{
		for (int i = 0; i < s->concurrency && p == NULL; i++)
			if (!w->slots[i].busy)
				p = &w->slots[i];
		if (w->err_msg)
			return parts_error(w);
		if (p)
			break;
		parts_wait(w, false);
	}
	if ((size_t) w->nparts >= w->parts_cap)
	{
		size_t		cap = w->parts_cap ? w->parts_cap * 2 : 64;

		w->etags = xrealloc(w->etags, cap * sizeof(char *));
		memset(w->etags + w->parts_cap, 0, (cap - w->parts_cap) * sizeof(char *));
		w->md5s = xrealloc(w->md5s, cap * 16);
		w->parts_cap = cap;
	}
	p->w = w;
	p->number = ++w->nparts;
	p->data = w->buf;
	p->len = w->len;
	p->rc = 0;
	p->done = false;
	p->busy = true;
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	if (pthread_create(&p->thread, NULL, part_thread, p) != 0)
	{
		p->busy = false;
		w->buf = p->data;		/* keep ownership straight for the cleanup */
		w->len = p->len;
		w->cap = s->part_size;
		p->data = NULL;
		return err_set(DRB_ERR_INTERNAL, "unable to start a thread to upload part %d of '%s': %s",
					   p->number, w->desc, strerror(errno));
	}
	return 0;
}

/* The ETag S3 gives a multipart object: MD5 of the parts' MD5s, "-", part count. */
static char *
multipart_etag(const s3_writer *w)
{
	uint8_t		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char		hex[33];

	if (EVP_Digest(w->md5s, 16 * (size_t) w->nparts, md, &mdlen, EVP_md5(), NULL) != 1)
		return NULL;
	hex_encode(md, 16, hex);
	return xasprintf("%s-%d", hex, w->nparts);
}

/*
 * After a lost answer a resent Complete finds no upload: did the first one succeed? Only
 * our own parts give the object the multipart ETag computed from their MD5s.
 */
static bool
multipart_already_complete(s3_writer *w, http_client *client)
{
	s3_call		call = {.method = "HEAD", .key = w->key};
	http_response resp = {0};
	int			attempts;
	char	   *want = multipart_etag(w);
	char	   *have = NULL;
	bool		same = false;

	if (want && s3_send(w->s, client, &call, &resp, &attempts) == 0 && resp.status == 200)
	{
		have = etag_bare(http_response_header(&resp, "etag"));
		same = have && strcasecmp(have, want) == 0;
	}
	http_response_free(&resp);
	free(want);
	free(have);
	return same;
}

/*
 * 200: S3 may answer 200 and still fail, the body is then an <Error> document. 404: an
 * earlier (maybe silently resent) Complete may have succeeded.
 */
static int
complete_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	s3_writer  *w = call->arg;
	char	   *code;
	char	   *message;
	int			rc = 0;

	(void) s;
	if (resp->status == 404)
		return multipart_already_complete(w, client) ? 0 : S3_UNEXPECTED;
	s3_error_fields(resp, &code, &message);
	if (code)
		rc = err_set(DRB_ERR_STORAGE, "unable to complete the multipart upload of '%s': "
					 "%s: %s", w->desc, code, message ? message : "");
	free(code);
	free(message);
	return rc;
}

static int
multipart_complete(s3_writer *w)
{
	sigv4_pair	q[] = {{"uploadId", w->upload_id}};
	buf_t		body;
	s3_call		call = {.method = "POST", .key = w->key, .params = q, .nparams = 1,
		.op = "complete the multipart upload of", .desc = w->desc, .ok = {200, 404},
	.answer = complete_answer, .arg = w};
	int			rc;

	buf_init(&body);
	buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload "
				   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < w->nparts; i++)
	{
		buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
		s3_xml_escape_append(&body, w->etags[i]);
		buf_append_str(&body, "</ETag></Part>");
	}
	buf_append_str(&body, "</CompleteMultipartUpload>");
	call.body = body.data;
	call.body_len = body.len;
	rc = s3_call_run(w->s, &call);
	if (rc == 0)
	{
		free(w->upload_id);		/* done: nothing to abort any more */
		w->upload_id = NULL;
	}
	buf_free(&body);
	return rc;
}

/* Stop everything after a failure: wait for the workers, abort the upload. */
static int
writer_fail(s3_writer *w)
{
	drb_err		kind = err_kind();
	char	   *saved = xstrdup(err_msg());

	w->failed = true;
	parts_wait(w, true);
	multipart_abort(w);
	err_set(kind == DRB_OK ? DRB_ERR_STORAGE : kind, "%s", saved);
	free(saved);
	return -1;
}

static int
writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	s3_writer  *w = (s3_writer *) f;
	size_t		part = w->s->part_size;

	if (w->failed || w->finished)
		return err_set(DRB_ERR_INTERNAL, "write to '%s' after it %s", w->desc,
					   w->failed ? "failed" : "was finished");
	while (len > 0)
	{
		size_t		n;

		if (w->len == part && part_submit(w) != 0)
			return writer_fail(w);
		if (w->buf == NULL)
		{
			/* the first buffer grows with the data (most objects are small); later ones
			 * are full parts, reused from finished workers when possible */
			if (w->nparts > 0 && w->spare)
			{
				w->buf = w->spare;
				w->spare = NULL;
				w->cap = part;
			}
			else
			{
				w->cap = w->nparts > 0 ? part : (len < S3_FIRST_BUF ? S3_FIRST_BUF : len);
				if (w->cap > part)
					w->cap = part;
				w->buf = xmalloc(w->cap);
			}
		}
		if (w->len == w->cap && w->cap < part)
		{
			w->cap = w->cap * 2 > part ? part : w->cap * 2;
			w->buf = xrealloc(w->buf, w->cap);
		}
		n = w->cap - w->len;
		if (n > len)
			n = len;
		memcpy(w->buf + w->len, in, n);
		w->len += n;
		in += n;
		len -= n;
	}
	return 0;
}

static int
writer_finish(filter_t *f)
{
	s3_writer  *w = (s3_writer *) f;

	if (w->failed || w->finished)
		return err_set(DRB_ERR_INTERNAL, "finish of '%s' after it %s", w->desc,
					   w->failed ? "failed" : "was finished");
	if (w->nparts == 0)
	{
		if (put_single(w) != 0)
		{
			w->failed = true;
			return -1;
		}
	}
	else
	{
		if (w->len > 0 && part_submit(w) != 0)
			return writer_fail(w);
		parts_wait(w, true);
		if (w->err_msg)
		{
			parts_error(w);
			return writer_fail(w);
		}
		if (multipart_complete(w) != 0)
			return writer_fail(w);
	}
	w->finished = true;
	free(w->buf);
	w->buf = NULL;
	free(w->spare);
	w->spare = NULL;
	log_debug("stored '%s' (%d part%s)", w->desc, w->nparts ? w->nparts : 1,
			  w->nparts > 1 ? "s" : "");
	return filter_finish(f->next);
}

static void
writer_destroy(filter_t *f)
{
	s3_writer  *w = (s3_writer *) f;

	if (!w->finished)
	{
		/* never finished: nothing may become visible */
		parts_wait(w, true);
		multipart_abort(w);
	}
	for (size_t i = 0; i < w->parts_cap; i++)
		free(w->etags ? w->etags[i] : NULL);
	free(w->etags);
	free(w->md5s);
	free(w->slots);
	free(w->buf);
	free(w->spare);
	free(w->err_msg);
	free(w->upload_id);
	free(w->key);
	free(w->desc);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

static const filter_ops s3_writer_ops = {"s3-writer", writer_process, writer_finish, writer_destroy};

filter_t *
s3_write_open(storage_t *st, const char *path)
{
	s3_storage *s = (s3_storage *) st;
	s3_writer  *w = xcalloc(1, sizeof(*w));

	w->base.ops = &s3_writer_ops;
	w->s = s;
	w->key = s3_key(s, path);
	w->desc = s3_desc(s, path);
	w->slots = xcalloc((size_t) s->concurrency, sizeof(s3_part));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return &w->base;
}

