/*
 * storage_s3.c — the S3 storage driver core (see storage_s3.h for what it offers,
 * storage.h for the contract it keeps, storage_s3.intern.h for how its files divide the
 * work; the writer is in storage_s3_write.c).
 *
 * Sections: settings, keys and URLs; signed requests with retries; the one way every
 * operation runs (s3_call_run) and the errors for S3's answers; read; head; list; remove
 * and remove_many.
 *
 * Requests are signed again on every attempt; every error names the operation and the
 * object as "<service>://bucket/prefix/path".
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "sigv4.h"
#include "storage_s3.h"
#include "storage_s3.intern.h"

#define S3_DELETE_BATCH		1000
#define S3_POOL_MAX			32	/* idle HTTP clients kept */
#define S3_MIN_PART_SIZE	((size_t) 5 * 1024 * 1024)
#define S3_MAX_HEADERS		16

/* --------------------------------------------------------------------------------------
 * Settings, keys, URLs
 * ------------------------------------------------------------------------------------*/

static const storage_ops s3_ops;

char *
s3_key(const s3_storage *s, const char *path)
{
	if (s->prefix[0] == '\0')
		return xstrdup(path);
	return xasprintf("%s/%s", s->prefix, path);
}

char *
s3_desc(const s3_storage *s, const char *path)
{
	return xasprintf("%s/%s", s->base.description, path);
}

/* Host that requests go to (and that is signed). */
static char *
s3_host(const s3_storage *s)
{
	if (s->path_style)
		return xstrdup(s->endpoint_host);
	return xasprintf("%s.%s", s->bucket, s->endpoint_host);
}

/* Raw (unencoded) absolute path of a key, or of the bucket when key is NULL. */
static char *
s3_raw_path(const s3_storage *s, const char *key)
{
	if (s->path_style)
		return key ? xasprintf("/%s/%s", s->bucket, key) : xasprintf("/%s", s->bucket);
	return key ? xasprintf("/%s", key) : xstrdup("/");
}

static pthread_once_t s3_once = PTHREAD_ONCE_INIT;

static void
s3_global_init(void)
{
	xmlInitParser();
}

storage_t *
storage_s3_new(const s3_settings *settings)
{
	s3_storage *s;
	const char *ep = settings->endpoint;
	const char *service = settings->service && settings->service[0] ? settings->service : "s3";
	char	   *slash;

	if (ep == NULL || ep[0] == '\0' || settings->bucket == NULL || settings->bucket[0] == '\0' ||
		settings->access_key == NULL || settings->secret_key == NULL)
	{
		err_set(DRB_ERR_CONFIG, "%s repository needs an endpoint, a bucket, an access key and a "
				"secret key", service);
		return NULL;
	}
	if (dl_xml_load() != 0 || dl_curl_load() != 0)
		return NULL;
	pthread_once(&s3_once, s3_global_init);

	s = xcalloc(1, sizeof(*s));
	s->base.ops = &s3_ops;
	s->https = true;
	if (strncasecmp(ep, "http://", 7) == 0)
	{
		s->https = false;
		ep += 7;
	}
	else if (strncasecmp(ep, "https://", 8) == 0)
		ep += 8;
	s->endpoint_host = xstrdup(ep);
	if ((slash = strchr(s->endpoint_host, '/')) != NULL)
		*slash = '\0';			/* an endpoint is a host, not a path */
	s->bucket = xstrdup(settings->bucket);
	s->prefix = xstrdup(settings->prefix ? settings->prefix : "");
	while (s->prefix[0] == '/')
		memmove(s->prefix, s->prefix + 1, strlen(s->prefix));
	while (s->prefix[0] && s->prefix[strlen(s->prefix) - 1] == '/')
		s->prefix[strlen(s->prefix) - 1] = '\0';
	s->region = xstrdup(settings->region && settings->region[0] ? settings->region : "us-east-1");
	s->access_key = xstrdup(settings->access_key);
	s->secret_key = xstrdup(settings->secret_key);
	s->session_token = settings->session_token && settings->session_token[0] ?
		xstrdup(settings->session_token) : NULL;
	s->sse_kms_key_id = settings->sse_kms_key_id && settings->sse_kms_key_id[0] ?
		xstrdup(settings->sse_kms_key_id) : NULL;
	s->path_style = settings->path_style;
	s->part_size = settings->part_size < S3_MIN_PART_SIZE ? S3_MIN_PART_SIZE : settings->part_size;
	s->concurrency = settings->upload_concurrency < 1 ? 1 : settings->upload_concurrency;
	s->retries = settings->retries < 0 ? 0 : settings->retries;
	s->pool = http_pool_new(&(http_options) {.verify_tls = settings->verify_tls,
		.ca_file = settings->ca_file, .timeout_seconds = settings->timeout_seconds}, S3_POOL_MAX);
	s->base.description = s->prefix[0] ?
		xasprintf("%s://%s/%s", service, s->bucket, s->prefix) :
		xasprintf("%s://%s", service, s->bucket);

	log_register_secret(s->secret_key);
	log_register_secret(s->session_token);
	return &s->base;
}

static void
free_secret(char *p)
{
	if (p)
	{
		secure_zero(p, strlen(p));
		free(p);
	}
}

static void
s3_free(storage_t *st)
{
	s3_storage *s = (s3_storage *) st;

	http_pool_free(s->pool);
	free(s->endpoint_host);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->access_key);
	free_secret(s->secret_key);
	free_secret(s->session_token);
	free(s->sse_kms_key_id);
	free(s->base.description);
	free(s);
}

/* --------------------------------------------------------------------------------------
 * Small helpers: digests, dates
 * ------------------------------------------------------------------------------------*/

void
s3_md5_base64(const void *data, size_t len, char out[25], uint8_t *md5)
{
	uint8_t		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
		memset(md, 0, 16);		/* the server then refuses the body: BadDigest */
	EVP_EncodeBlock((unsigned char *) out, md, 16);
	if (md5)
		memcpy(md5, md, 16);
}


/* --------------------------------------------------------------------------------------
 * Errors for S3's answers
 * ------------------------------------------------------------------------------------*/

/*
 * The error for an unexpected HTTP status: "unable to <op> '<desc>': HTTP 403
 * SignatureDoesNotMatch: <message>". 404 and NoSuchKey give DRB_ERR_NOT_FOUND.
 */
static int
s3_status_error(const http_response *resp, const char *op, const char *desc, int attempts)
{
	char	   *code;
	char	   *message;
	char		detail[256] = "";
	char		tail[64] = "";
	drb_err		kind = DRB_ERR_STORAGE;

	s3_error_fields(resp, &code, &message);
	if ((code && strcmp(code, "NoSuchKey") == 0) || (code == NULL && resp->status == 404))
		kind = DRB_ERR_NOT_FOUND;
	if (code == NULL && resp->body.len > 0)
	{
		/* not S3's XML (a proxy's page?): show the start of it on one line */
		size_t		n = 0;

		for (size_t i = 0; i < resp->body.len && n < 120; i++)
		{
			char		c = (char) resp->body.data[i];

			detail[n++] = (c == '\n' || c == '\r' || c == '\t' || (unsigned char) c < 0x20) ? ' ' : c;
		}
		detail[n] = '\0';
	}
	if (attempts > 1)
		snprintf(tail, sizeof(tail), " (after %d attempts)", attempts);
	if (code)
		err_set(kind, "unable to %s '%s': HTTP %ld %s: %s%s", op, desc, resp->status, code,
				message ? message : "", tail);
	else if (detail[0])
		err_set(kind, "unable to %s '%s': HTTP %ld: %s%s", op, desc, resp->status, detail, tail);
	else
		err_set(kind, "unable to %s '%s': HTTP %ld%s%s", op, desc, resp->status,
				resp->status == 404 ? " (no such object)" :
				resp->status == 403 ? " (access denied: check the credentials, the clock and "
				"the bucket policy)" : "", tail);
	free(code);
	free(message);
	return -1;
}

/* --------------------------------------------------------------------------------------
 * Signed requests with retries
 * ------------------------------------------------------------------------------------*/

/* One attempt: sign at the current time, send. Same return as http_execute. */
static int
s3_attempt(s3_storage *s, http_client *client, s3_call *call, http_response *resp)
{
	sigv4_pair	h[S3_MAX_HEADERS + 8];
	size_t		nh = 0;
	char		amz_date[17];
	char		payload_hash[65];
	char		range[64];
	char	   *host = s3_host(s);
	char	   *raw_path = s3_raw_path(s, call->key);
	char	   *uri;
	char	   *query;
	char	   *url;
	const char *lines[S3_MAX_HEADERS + 9];
	char	   *owned[S3_MAX_HEADERS + 9];
	size_t		nlines = 0;
	sigv4_credentials cred = {s->access_key, s->secret_key, s->region, "s3"};
	sigv4_request sreq;
	sigv4_result sig;
	http_request req = {0};
	int			rc;

	sigv4_amz_date(time(NULL), amz_date);
	if (call->body_len > 0)
		sigv4_sha256_hex(call->body, call->body_len, payload_hash);
	else
		strcpy(payload_hash, SIGV4_EMPTY_SHA256);

	h[nh++] = (sigv4_pair) {"host", host};
	h[nh++] = (sigv4_pair) {"x-amz-date", amz_date};
	h[nh++] = (sigv4_pair) {"x-amz-content-sha256", payload_hash};
	if (s->session_token)
		h[nh++] = (sigv4_pair) {"x-amz-security-token", s->session_token};
	if (call->ranged)
	{
		if (call->range_len > 0)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, call->range_start,
					 call->range_start + call->range_len - 1);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", call->range_start);
		h[nh++] = (sigv4_pair) {"range", range};
	}
	if (call->if_match)
		h[nh++] = (sigv4_pair) {"if-match", call->if_match};
	for (size_t i = 0; i < call->nheaders && i < S3_MAX_HEADERS; i++)
		h[nh++] = call->headers[i];

	sreq.method = call->method;
	sreq.path = raw_path;
	sreq.params = call->params;
	sreq.nparams = call->nparams;
	sreq.headers = h;
	sreq.nheaders = nh;
	sreq.payload_hash = payload_hash;
	if (sigv4_sign(&cred, &sreq, amz_date, &sig) != 0)
	{
		free(host);
		free(raw_path);
		return -1;
	}

	uri = sigv4_canonical_uri(raw_path);
	query = sigv4_canonical_query(call->params, call->nparams);
	url = xasprintf("%s://%s%s%s%s", s->https ? "https" : "http", host, uri,
					query[0] ? "?" : "", query);
	for (size_t i = 0; i < nh; i++)
	{
		owned[nlines] = xasprintf("%s: %s", h[i].name, h[i].value ? h[i].value : "");
		lines[nlines] = owned[nlines];
		nlines++;
	}
	owned[nlines] = xasprintf("Authorization: %s", sig.authorization);
	lines[nlines] = owned[nlines];
	nlines++;

	req.method = call->method;
	req.url = url;
	req.headers = lines;
	req.nheaders = nlines;
	req.body = call->body;
	req.body_len = call->body_len;
	req.sink = call->sink;
	req.sink_status = call->sink_status;
	log_trace("%s: %s %s", s->base.description, call->method, url);
	rc = http_execute(client, &req, resp);

	for (size_t i = 0; i < nlines; i++)
		free(owned[i]);
	sigv4_result_free(&sig);
	free(url);
	free(query);
	free(uri);
	free(raw_path);
	free(host);
	return rc;
}

/* Worth another attempt: 5xx, 408, 429, and S3's 400 RequestTimeout. */
static bool
s3_retryable(const http_response *resp)
{
	char	   *code;
	char	   *message;
	bool		retry;

	if (http_retryable(resp->status))
		return true;
	if (resp->status != 400)
		return false;
	s3_error_fields(resp, &code, &message);
	retry = code && strcmp(code, "RequestTimeout") == 0;
	free(code);
	free(message);
	return retry;
}

/*
 * Send call, retrying transport failures and retryable statuses up to s->retries times
 * with back-off, signing each attempt again. A read whose body broke off resumes with a
 * Range from the next byte, pinned to the first response's ETag. Returns 0 with the
 * final response (any status; the caller judges it), or -1: transport failure after
 * the last attempt ("... (after N attempts)") or the sink's own error.
 * *attempts is set to the number of attempts made.
 */
int
s3_send(s3_storage *s, http_client *client, s3_call *call, http_response *resp, int *attempts)
{
	for (int attempt = 1;; attempt++)
	{
		int			rc;
		char		why[256];

		*attempts = attempt;
		if (client == NULL)
			return -1;
		if (call->sink_buf)
			buf_reset(call->sink_buf);	/* a page fetched again starts empty */
		rc = s3_attempt(s, client, call, resp);
		if (rc == 0 && !s3_retryable(resp))
			return 0;
		if (rc != 0 && (resp->sink_failed || err_kind() == DRB_ERR_INTERNAL ||
						err_kind() == DRB_ERR_USAGE || err_kind() == DRB_ERR_CONFIG))
			return -1;			/* not a transport problem: retrying cannot help */
		if (call->resumable && resp->sink_bytes > 0)
		{
			/* the body broke off: go on from the next byte, of the same object version */
			const char *etag = http_response_header(resp, "etag");

			if (call->if_match == NULL && etag)
				call->if_match = xstrdup(etag);
			call->range_start += resp->sink_bytes;
			if (call->range_len > 0)
			{
				call->range_len -= resp->sink_bytes;
				if (call->range_len == 0)
				{
					resp->status = call->sink_status;	/* every byte asked for arrived */
					return 0;
				}
			}
			call->ranged = true;
			call->sink_status = 206;
		}
		if (rc != 0)
			snprintf(why, sizeof(why), "%s", err_msg());
		else
			snprintf(why, sizeof(why), "HTTP %ld", resp->status);
		if (attempt > s->retries)
		{
			if (rc != 0)
				return err_set(DRB_ERR_STORAGE, "%s (after %d attempt%s)", why, attempt,
							   attempt == 1 ? "" : "s");
			return 0;
		}
		log_detail("%s: %s %s failed (%s), attempt %d of %d; retrying", s->base.description,
				   call->method, call->key ? call->key : "(bucket)", why, attempt, s->retries + 1);
		http_backoff(attempt);
	}
}


/* --------------------------------------------------------------------------------------
 * Every operation: one call, judged the same way
 * ------------------------------------------------------------------------------------*/

int
s3_call_run(s3_storage *s, s3_call *call)
{
	http_client *client = http_pool_get(s->pool);
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	rc = s3_send(s, client, call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to %s '%s'", call->transport_op ? call->transport_op : call->op,
				 call->desc);
	else
	{
		rc = S3_UNEXPECTED;
		if (http_status_in(resp.status, call->ok, S3_MAX_OK))
			rc = call->answer ? call->answer(s, client, call, &resp) : 0;
		if (rc == S3_UNEXPECTED)
			rc = s3_status_error(&resp, call->op, call->desc, attempts);
	}
	http_response_free(&resp);
	http_pool_put(s->pool, client);
	free(call->if_match);
	call->if_match = NULL;
	return rc;
}

/* s3_call_run on the object at path: call's key and desc are set from path. */
static int
s3_object_call(s3_storage *s, const char *path, s3_call *call)
{
	char	   *key = s3_key(s, path);
	char	   *desc = s3_desc(s, path);
	int			rc;

	call->key = key;
	call->desc = desc;
	rc = s3_call_run(s, call);
	call->key = NULL;
	call->desc = NULL;
	free(key);
	free(desc);
	return rc;
}

/* --------------------------------------------------------------------------------------
 * read
 * ------------------------------------------------------------------------------------*/

/*
 * Size of the object after a 416 answer: from "Content-Range: bytes *\/N" when the server
 * sends it, else from a HEAD; -1 when unknown.
 */
static int64_t
unsatisfied_range_size(s3_storage *s, http_client *client, const http_response *resp,
					   const char *key)
{
	const char *cr = http_response_header(resp, "content-range");
	const char *star = cr ? strstr(cr, "*/") : NULL;
	s3_call		call = {.method = "HEAD", .key = key};
	http_response head = {0};
	int			attempts;
	int64_t		size = -1;

	if (star)
		return (int64_t) strtoll(star + 2, NULL, 10);
	if (s3_send(s, client, &call, &head, &attempts) == 0 && head.status == 200 &&
		http_response_header(&head, "content-length"))
		size = (int64_t) strtoll(http_response_header(&head, "content-length"), NULL, 10);
	http_response_free(&head);
	return size;
}

/*
 * The bytes asked for came (status as expected), or the range starts exactly at the end
 * of the object (416 for an open-ended range); S3_UNEXPECTED for other statuses.
 */
static int
read_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	if (resp->status == call->sink_status)
		return 0;
	if (resp->status == 416 && call->ranged && call->range_len == 0 &&
		unsatisfied_range_size(s, client, resp, call->key) == (int64_t) call->range_start)
		return 0;				/* nothing (left) from that offset to the end */
	if (resp->status == 200 && call->ranged)
		return err_set(DRB_ERR_STORAGE, "unable to get '%s': the server ignored the Range header "
					   "(HTTP 200 instead of 206)", call->desc);
	return S3_UNEXPECTED;
}

static int
s3_read(storage_t *st, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	s3_call		call = {.method = "GET", .sink = sink, .resumable = true,
		.ranged = offset > 0 || length > 0, .range_start = offset, .range_len = length,
	.op = "get", .ok = {200, 206, 416}, .answer = read_answer};

	call.sink_status = call.ranged ? 206 : 200;
	return s3_object_call((s3_storage *) st, path, &call);
}

/* --------------------------------------------------------------------------------------
 * head
 * ------------------------------------------------------------------------------------*/

/* Size and mtime from a 200 answer's headers into the storage_info at call->arg. */
static int
head_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	storage_info *out = call->arg;
	const char *len = http_response_header(resp, "content-length");

	(void) s;
	(void) client;
	out->size = len ? strtoull(len, NULL, 10) : 0;
	out->mtime = http_parse_date(http_response_header(resp, "last-modified"));
	return 0;
}

static int
s3_head(storage_t *st, const char *path, storage_info *out)
{
	s3_call		call = {.method = "HEAD", .op = "head", .ok = {200}, .answer = head_answer,
	.arg = out};
	int			rc = s3_object_call((s3_storage *) st, path, &call);

	if (rc == 0)
		out->path = path;
	return rc;
}

/* --------------------------------------------------------------------------------------
 * list (ListObjectsV2, continuation tokens)
 * ------------------------------------------------------------------------------------*/

/* A listing in progress: where its objects go, the page being read, the next token. */
typedef struct s3_lister
{
	storage_list_cb cb;
	void	   *arg;
	buf_t		page;
	char	   *next;			/* continuation token for the next page, NULL at the end */
} s3_lister;

/* One page of the lister at call->arg: its cb for each object; its next token or NULL. */
static int
list_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	s3_lister  *l = call->arg;
	const char *desc = call->desc;
	char	  **token = &l->next;
	xmlDocPtr	doc = s3_xml_parse(&l->page);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t		plen = strlen(s->prefix);
	char	   *truncated;
	int			rc = 0;

	(void) client;
	(void) resp;
	*token = NULL;
	if (!s3_xml_is(root, "ListBucketResult"))
	{
		if (doc)
			xmlFreeDoc(doc);
		return err_set(DRB_ERR_STORAGE, "unable to list '%s': the listing is not a "
					   "ListBucketResult document", desc);
	}
	for (xmlNodePtr c = root->children; c && rc == 0; c = c->next)
	{
		char	   *key;
		char	   *size;
		char	   *mtime;
		storage_info info;

		if (!s3_xml_is(c, "Contents"))
			continue;
		key = s3_xml_child_text(c, "Key");
		size = s3_xml_child_text(c, "Size");
		mtime = s3_xml_child_text(c, "LastModified");
		if (key && (plen == 0 || (strncmp(key, s->prefix, plen) == 0 && key[plen] == '/')))
		{
			info.path = plen ? key + plen + 1 : key;
			info.size = size ? strtoull(size, NULL, 10) : 0;
			info.mtime = http_parse_iso8601(mtime);
			rc = l->cb(&info, l->arg);
		}
		free(key);
		free(size);
		free(mtime);
	}
	truncated = s3_xml_child_text(root, "IsTruncated");
	if (rc == 0 && truncated && strcmp(truncated, "true") == 0)
	{
		*token = s3_xml_child_text(root, "NextContinuationToken");
		if (*token == NULL || (*token)[0] == '\0')
		{
			free(*token);
			*token = NULL;
			rc = err_set(DRB_ERR_STORAGE, "unable to list '%s': truncated listing without a "
						 "continuation token", desc);
		}
	}
	free(truncated);
	xmlFreeDoc(doc);
	return rc;
}

static int
s3_list(storage_t *st, const char *prefix, storage_list_cb cb, void *arg)
{
	s3_storage *s = (s3_storage *) st;
	char	   *key_prefix = s->prefix[0] ? xasprintf("%s/%s", s->prefix, prefix) : xstrdup(prefix);
	char	   *desc = s3_desc(s, prefix);
	char	   *token = NULL;
	s3_lister	l = {.cb = cb, .arg = arg};
	int			rc = 0;

	do
	{
		sigv4_pair	q[3] = {{"list-type", "2"}, {"prefix", key_prefix}, {"continuation-token", token}};
		filter_t   *sink;
		s3_call		call = {.method = "GET", .params = q, .nparams = token ? 3 : 2,
			.sink_status = 200, .sink_buf = &l.page,
		.op = "list", .desc = desc, .ok = {200}, .answer = list_answer, .arg = &l};

		buf_init(&l.page);
		sink = filter_sink_buf_new(&l.page);
		call.sink = sink;
		l.next = NULL;
		rc = s3_call_run(s, &call);
		free(token);
		token = l.next;
		filter_chain_free(sink);
		buf_free(&l.page);
	} while (rc == 0 && token);

	free(token);
	free(key_prefix);
	free(desc);
	return rc;
}

/* --------------------------------------------------------------------------------------
 * remove, remove_many (DeleteObjects)
 * ------------------------------------------------------------------------------------*/

static int
s3_remove(storage_t *st, const char *path)
{
	/* a missing object is success */
	s3_call		call = {.method = "DELETE", .op = "delete", .ok = {204, 200, 404}};

	return s3_object_call((s3_storage *) st, path, &call);
}

/* Check a DeleteResult: every <Error> other than NoSuchKey is a failure. */
static int
delete_answer(s3_storage *s, http_client *client, s3_call *call, const http_response *resp)
{
	xmlDocPtr	doc = s3_xml_parse(&resp->body);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t		plen = strlen(s->prefix);
	int			failures = 0;
	int			rc = 0;

	(void) client;
	if (s3_xml_is(root, "Error"))
	{
		xmlFreeDoc(doc);
		return s3_status_error(resp, call->op, call->desc, 1);
	}
	if (!s3_xml_is(root, "DeleteResult"))
	{
		if (doc)
			xmlFreeDoc(doc);
		return err_set(DRB_ERR_STORAGE, "unable to delete objects in '%s': the answer is not a "
					   "DeleteResult document", s->base.description);
	}
	for (xmlNodePtr c = root->children; c; c = c->next)
	{
		char	   *key;
		char	   *code;
		char	   *message;

		if (!s3_xml_is(c, "Error"))
			continue;
		code = s3_xml_child_text(c, "Code");
		if (code && strcmp(code, "NoSuchKey") == 0)
		{
			free(code);
			continue;
		}
		if (failures++ == 0)
		{
			const char *path;

			key = s3_xml_child_text(c, "Key");
			message = s3_xml_child_text(c, "Message");
			path = key ? key : "?";
			if (key && plen && strncmp(key, s->prefix, plen) == 0 && key[plen] == '/')
				path = key + plen + 1;
			rc = err_set(DRB_ERR_STORAGE, "unable to delete '%s/%s': %s: %s", s->base.description,
						 path, code ? code : "error", message ? message : "");
			free(key);
			free(message);
		}
		free(code);
	}
	if (failures > 1)
		err_wrap("%d objects could not be deleted, the first", failures);
	xmlFreeDoc(doc);
	return rc;
}

static int
delete_batch(s3_storage *s, const char *const *paths, size_t n)
{
	buf_t		body;
	char		md5[25];
	char	   *transport_op = xasprintf("delete %zu objects in", n);
	sigv4_pair	q[] = {{"delete", NULL}};
	sigv4_pair	h[2] = {{"content-md5", md5}, {"content-type", "application/xml"}};
	s3_call		call = {.method = "POST", .params = q, .nparams = 1, .headers = h, .nheaders = 2,
		.op = "delete objects in", .desc = s->base.description, .transport_op = transport_op,
	.ok = {200}, .answer = delete_answer};
	int			rc;

	buf_init(&body);
	buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++)
	{
		char	   *key = s3_key(s, paths[i]);

		buf_append_str(&body, "<Object><Key>");
		s3_xml_escape_append(&body, key);
		buf_append_str(&body, "</Key></Object>");
		free(key);
	}
	buf_append_str(&body, "</Delete>");
	s3_md5_base64(body.data, body.len, md5, NULL);
	call.body = body.data;
	call.body_len = body.len;
	rc = s3_call_run(s, &call);
	buf_free(&body);
	free(transport_op);
	return rc;
}

static int
s3_remove_many(storage_t *st, const char *const *paths, size_t n)
{
	s3_storage *s = (s3_storage *) st;
	int			rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += S3_DELETE_BATCH)
		rc = delete_batch(s, paths + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH);
	return rc;
}

static const storage_ops s3_ops = {
	.type = "s3",
	.read = s3_read,
	.write_open = s3_write_open,
	.head = s3_head,
	.list = s3_list,
	.remove = s3_remove,
	.remove_many = s3_remove_many,
	.free = s3_free,
};
