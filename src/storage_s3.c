/*
 * storage_s3.c — the S3 storage driver (see storage_s3.h for what it offers, storage.h
 * for the contract it keeps).
 *
 * Sections: settings and URLs; HTTP clients (a pool, one client per thread at a time);
 * signed requests with retries; error messages from S3's XML; read; head; list; remove
 * and remove_many; the writer (one PUT up to part_size, else a multipart upload whose
 * parts are sent by worker threads).
 *
 * Object keys are prefix + "/" + path (just path when the prefix is empty). Requests are
 * signed again on every attempt; every error names the operation and the object as
 * "<service>://bucket/prefix/path".
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "error.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "sigv4.h"
#include "storage_s3.h"

#define S3_MAX_PARTS		10000
#define S3_DELETE_BATCH		1000
#define S3_POOL_MAX			32
#define S3_MIN_PART_SIZE	((size_t) 5 * 1024 * 1024)
#define S3_MAX_HEADERS		16
#define S3_FIRST_BUF		(64 * 1024)

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
	char	   *ca_file;
	bool		path_style;
	http_options http;
	size_t		part_size;
	int			concurrency;
	int			retries;

	pthread_mutex_t pool_lock;
	http_client *pool[S3_POOL_MAX];
	int			npool;
} s3_storage;

/* One S3 call: what to send, and for reads where the bytes go. */
typedef struct s3_call
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
} s3_call;

/* --------------------------------------------------------------------------------------
 * Settings, keys, URLs
 * ------------------------------------------------------------------------------------*/

static const storage_ops s3_ops;

static char *
s3_key(const s3_storage *s, const char *path)
{
	if (s->prefix[0] == '\0')
		return xstrdup(path);
	return xasprintf("%s/%s", s->prefix, path);
}

/* "s3://bucket/prefix/path" for messages. */
static char *
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
	s->ca_file = settings->ca_file ? xstrdup(settings->ca_file) : NULL;
	s->path_style = settings->path_style;
	s->http.verify_tls = settings->verify_tls;
	s->http.ca_file = s->ca_file;
	s->http.timeout_seconds = settings->timeout_seconds;
	s->part_size = settings->part_size < S3_MIN_PART_SIZE ? S3_MIN_PART_SIZE : settings->part_size;
	s->concurrency = settings->upload_concurrency < 1 ? 1 : settings->upload_concurrency;
	s->retries = settings->retries < 0 ? 0 : settings->retries;
	pthread_mutex_init(&s->pool_lock, NULL);
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

	for (int i = 0; i < s->npool; i++)
		http_client_free(s->pool[i]);
	pthread_mutex_destroy(&s->pool_lock);
	free(s->endpoint_host);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->access_key);
	free_secret(s->secret_key);
	free_secret(s->session_token);
	free(s->sse_kms_key_id);
	free(s->ca_file);
	free(s->base.description);
	free(s);
}

/* --------------------------------------------------------------------------------------
 * HTTP clients: taken from the pool by whichever thread needs one, given back after.
 * ------------------------------------------------------------------------------------*/

static http_client *
pool_get(s3_storage *s)
{
	http_client *c = NULL;

	pthread_mutex_lock(&s->pool_lock);
	if (s->npool > 0)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->pool_lock);
	return c ? c : http_client_new(&s->http);
}

static void
pool_put(s3_storage *s, http_client *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&s->pool_lock);
	if (s->npool < S3_POOL_MAX)
	{
		s->pool[s->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->pool_lock);
	http_client_free(c);
}

/* --------------------------------------------------------------------------------------
 * Small helpers: digests, XML
 * ------------------------------------------------------------------------------------*/

/* Base64 of the MD5 of data (Content-MD5); raw digest into md5 when not NULL. */
static void
md5_base64(const void *data, size_t len, char out[25], uint8_t *md5)
{
	uint8_t		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
		memset(md, 0, 16);		/* the server then refuses the body: BadDigest */
	EVP_EncodeBlock((unsigned char *) out, md, 16);
	if (md5)
		memcpy(md5, md, 16);
}

static void
xml_escape_append(buf_t *b, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				buf_append_str(b, "&amp;");
				break;
			case '<':
				buf_append_str(b, "&lt;");
				break;
			case '>':
				buf_append_str(b, "&gt;");
				break;
			case '"':
				buf_append_str(b, "&quot;");
				break;
			case '\'':
				buf_append_str(b, "&apos;");
				break;
			default:
				buf_append(b, s, 1);
		}
	}
}

static xmlDocPtr
xml_parse(const buf_t *b)
{
	if (b->len == 0 || b->len > INT32_MAX)
		return NULL;
	return xmlReadMemory((const char *) b->data, (int) b->len, NULL, NULL,
						 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static bool
xml_is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

static xmlNodePtr
xml_child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (xml_is(c, name))
			return c;
	return NULL;
}

/* Text of the child element name of n (xstrdup'ed), NULL when absent. */
static char *
xml_child_text(xmlNodePtr n, const char *name)
{
	xmlNodePtr	c = xml_child(n, name);
	xmlChar    *t;
	char	   *r;

	if (c == NULL)
		return NULL;
	t = xmlNodeGetContent(c);
	r = xstrdup(t ? (const char *) t : "");
	xmlFree(t);
	return r;
}

/* "2009-10-12T17:50:30.000Z" → seconds since the epoch (0 if unparsable). */
static int64_t
parse_iso8601(const char *s)
{
	struct tm	tm = {0};
	int			y,
				mo,
				d,
				h,
				mi,
				sec;

	if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
		return 0;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t) timegm(&tm);
}

/* "Wed, 12 Oct 2009 17:50:00 GMT" → seconds since the epoch (0 if unparsable). */
static int64_t
parse_http_date(const char *s)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
	"Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm	tm = {0};
	char		mon[4];
	int			d,
				y,
				h,
				mi,
				sec;
	const char *comma;

	if (s == NULL)
		return 0;
	comma = strchr(s, ',');
	if (comma)
		s = comma + 1;
	if (sscanf(s, "%d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &sec) != 6)
		return 0;
	tm.tm_mon = -1;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			tm.tm_mon = i;
	if (tm.tm_mon < 0)
		return 0;
	tm.tm_year = y - 1900;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (int64_t) timegm(&tm);
}

/* Code and Message of an S3 <Error> body (either may be NULL; caller frees). */
static void
s3_error_fields(const http_response *resp, char **code, char **message)
{
	xmlDocPtr	doc = xml_parse(&resp->body);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;

	*code = NULL;
	*message = NULL;
	if (xml_is(root, "Error"))
	{
		*code = xml_child_text(root, "Code");
		*message = xml_child_text(root, "Message");
	}
	if (doc)
		xmlFreeDoc(doc);
}

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
static int
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

static int
s3_read(storage_t *st, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	s3_storage *s = (s3_storage *) st;
	char	   *key = s3_key(s, path);
	char	   *desc = s3_desc(s, path);
	http_client *client = pool_get(s);
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	call.method = "GET";
	call.key = key;
	call.sink = sink;
	call.ranged = offset > 0 || length > 0;
	call.range_start = offset;
	call.range_len = length;
	call.sink_status = call.ranged ? 206 : 200;
	call.resumable = true;

	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to get '%s'", desc);
	else if (resp.status == call.sink_status)
		rc = 0;
	else if (resp.status == 416 && call.ranged && call.range_len == 0 &&
			 unsatisfied_range_size(s, client, &resp, key) == (int64_t) call.range_start)
		rc = 0;					/* nothing (left) from that offset to the end */
	else if (resp.status == 200 && call.ranged)
		rc = err_set(DRB_ERR_STORAGE, "unable to get '%s': the server ignored the Range header "
					 "(HTTP 200 instead of 206)", desc);
	else
		rc = s3_status_error(&resp, "get", desc, attempts);

	http_response_free(&resp);
	pool_put(s, client);
	free(call.if_match);
	free(key);
	free(desc);
	return rc;
}

/* --------------------------------------------------------------------------------------
 * head
 * ------------------------------------------------------------------------------------*/

static int
s3_head(storage_t *st, const char *path, storage_info *out)
{
	s3_storage *s = (s3_storage *) st;
	char	   *key = s3_key(s, path);
	char	   *desc = s3_desc(s, path);
	http_client *client = pool_get(s);
	s3_call		call = {.method = "HEAD", .key = key};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to head '%s'", desc);
	else if (resp.status == 200)
	{
		const char *len = http_response_header(&resp, "content-length");

		out->path = path;
		out->size = len ? strtoull(len, NULL, 10) : 0;
		out->mtime = parse_http_date(http_response_header(&resp, "last-modified"));
	}
	else
		rc = s3_status_error(&resp, "head", desc, attempts);

	http_response_free(&resp);
	pool_put(s, client);
	free(key);
	free(desc);
	return rc;
}

/* --------------------------------------------------------------------------------------
 * list (ListObjectsV2, continuation tokens)
 * ------------------------------------------------------------------------------------*/

/* One page: calls cb for each object; *token set to the next token or NULL. */
static int
list_page(s3_storage *s, const buf_t *page, const char *desc, storage_list_cb cb, void *arg,
		  char **token)
{
	xmlDocPtr	doc = xml_parse(page);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t		plen = strlen(s->prefix);
	char	   *truncated;
	int			rc = 0;

	*token = NULL;
	if (!xml_is(root, "ListBucketResult"))
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

		if (!xml_is(c, "Contents"))
			continue;
		key = xml_child_text(c, "Key");
		size = xml_child_text(c, "Size");
		mtime = xml_child_text(c, "LastModified");
		if (key && (plen == 0 || (strncmp(key, s->prefix, plen) == 0 && key[plen] == '/')))
		{
			info.path = plen ? key + plen + 1 : key;
			info.size = size ? strtoull(size, NULL, 10) : 0;
			info.mtime = parse_iso8601(mtime);
			rc = cb(&info, arg);
		}
		free(key);
		free(size);
		free(mtime);
	}
	truncated = xml_child_text(root, "IsTruncated");
	if (rc == 0 && truncated && strcmp(truncated, "true") == 0)
	{
		*token = xml_child_text(root, "NextContinuationToken");
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
	http_client *client = pool_get(s);
	char	   *token = NULL;
	int			rc = 0;

	do
	{
		sigv4_pair	q[3] = {{"list-type", "2"}, {"prefix", key_prefix}, {"continuation-token", token}};
		buf_t		page;
		filter_t   *sink;
		s3_call		call = {0};
		http_response resp = {0};
		int			attempts = 0;
		char	   *next = NULL;

		buf_init(&page);
		sink = filter_sink_buf_new(&page);
		call.method = "GET";
		call.params = q;
		call.nparams = token ? 3 : 2;
		call.sink = sink;
		call.sink_status = 200;
		call.sink_buf = &page;
		rc = s3_send(s, client, &call, &resp, &attempts);
		if (rc != 0)
			err_wrap("unable to list '%s'", desc);
		else if (resp.status != 200)
			rc = s3_status_error(&resp, "list", desc, attempts);
		else
			rc = list_page(s, &page, desc, cb, arg, &next);
		free(token);
		token = next;
		http_response_free(&resp);
		filter_chain_free(sink);
		buf_free(&page);
		free(call.if_match);
	} while (rc == 0 && token);

	free(token);
	pool_put(s, client);
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
	s3_storage *s = (s3_storage *) st;
	char	   *key = s3_key(s, path);
	char	   *desc = s3_desc(s, path);
	http_client *client = pool_get(s);
	s3_call		call = {.method = "DELETE", .key = key};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to delete '%s'", desc);
	else if (resp.status == 204 || resp.status == 200 || resp.status == 404)
		rc = 0;					/* a missing object is success */
	else
		rc = s3_status_error(&resp, "delete", desc, attempts);
	http_response_free(&resp);
	pool_put(s, client);
	free(key);
	free(desc);
	return rc;
}

/* Check a DeleteResult: every <Error> other than NoSuchKey is a failure. */
static int
delete_result_check(s3_storage *s, const http_response *resp)
{
	xmlDocPtr	doc = xml_parse(&resp->body);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t		plen = strlen(s->prefix);
	int			failures = 0;
	int			rc = 0;

	if (xml_is(root, "Error"))
	{
		xmlFreeDoc(doc);
		return s3_status_error(resp, "delete objects in", s->base.description, 1);
	}
	if (!xml_is(root, "DeleteResult"))
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

		if (!xml_is(c, "Error"))
			continue;
		code = xml_child_text(c, "Code");
		if (code && strcmp(code, "NoSuchKey") == 0)
		{
			free(code);
			continue;
		}
		if (failures++ == 0)
		{
			const char *path;

			key = xml_child_text(c, "Key");
			message = xml_child_text(c, "Message");
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
delete_batch(s3_storage *s, http_client *client, const char *const *paths, size_t n)
{
	buf_t		body;
	char		md5[25];
	sigv4_pair	q[] = {{"delete", NULL}};
	sigv4_pair	h[2] = {{"content-md5", md5}, {"content-type", "application/xml"}};
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	buf_init(&body);
	buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++)
	{
		char	   *key = s3_key(s, paths[i]);

		buf_append_str(&body, "<Object><Key>");
		xml_escape_append(&body, key);
		buf_append_str(&body, "</Key></Object>");
		free(key);
	}
	buf_append_str(&body, "</Delete>");
	md5_base64(body.data, body.len, md5, NULL);

	call.method = "POST";
	call.params = q;
	call.nparams = 1;
	call.headers = h;
	call.nheaders = 2;
	call.body = body.data;
	call.body_len = body.len;
	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to delete %zu objects in '%s'", n, s->base.description);
	else if (resp.status != 200)
		rc = s3_status_error(&resp, "delete objects in", s->base.description, attempts);
	else
		rc = delete_result_check(s, &resp);
	http_response_free(&resp);
	buf_free(&body);
	return rc;
}

static int
s3_remove_many(storage_t *st, const char *const *paths, size_t n)
{
	s3_storage *s = (s3_storage *) st;
	http_client *client = pool_get(s);
	int			rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += S3_DELETE_BATCH)
		rc = delete_batch(s, client, paths + i, n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH);
	pool_put(s, client);
	return rc;
}

/* --------------------------------------------------------------------------------------
 * The writer: a sink filter. Bytes collect in a buffer of up to part_size; at finish a
 * single PUT sends them. Once more than part_size bytes arrive, a multipart upload starts
 * and each full buffer becomes a part sent by a worker thread (at most upload_concurrency
 * at once, each with its own HTTP client); finish sends the last part and completes the
 * upload. Any failure, or a free without a successful finish, aborts the upload.
 * ------------------------------------------------------------------------------------*/

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

/* Whole object in one PUT, with Content-MD5 and the body's SHA-256. */
static int
put_single(s3_writer *w)
{
	s3_storage *s = w->s;
	http_client *client = pool_get(s);
	char		md5[25];
	uint8_t		raw_md5[16];
	sigv4_pair	h[4];
	size_t		nh;
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	md5_base64(w->buf, w->len, md5, raw_md5);
	h[0] = (sigv4_pair) {"content-md5", md5};
	h[1] = (sigv4_pair) {"content-type", "application/octet-stream"};
	nh = 2 + sse_headers(s, h + 2);
	call.method = "PUT";
	call.key = w->key;
	call.headers = h;
	call.nheaders = nh;
	call.body = w->buf;
	call.body_len = w->len;
	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to put '%s'", w->desc);
	else if (resp.status != 200)
		rc = s3_status_error(&resp, "put", w->desc, attempts);
	else if (s->sse_kms_key_id == NULL)
	{
		/* without SSE-KMS a single-part ETag is the MD5 of the bytes stored */
		char	   *etag = etag_bare(http_response_header(&resp, "etag"));
		char		hex[33];

		hex_encode(raw_md5, 16, hex);
		if (etag && strlen(etag) == 32 && strcasecmp(etag, hex) != 0)
			rc = err_set(DRB_ERR_INTEGRITY, "unable to put '%s': the server stored MD5 %s, "
						 "expected %s", w->desc, etag, hex);
		free(etag);
	}
	http_response_free(&resp);
	pool_put(s, client);
	return rc;
}

static int
multipart_create(s3_writer *w)
{
	s3_storage *s = w->s;
	http_client *client = pool_get(s);
	sigv4_pair	q[] = {{"uploads", NULL}};
	sigv4_pair	h[3] = {{"content-type", "application/octet-stream"}};
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	call.method = "POST";
	call.key = w->key;
	call.params = q;
	call.nparams = 1;
	call.headers = h;
	call.nheaders = 1 + sse_headers(s, h + 1);
	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to start a multipart upload of '%s'", w->desc);
	else if (resp.status != 200)
		rc = s3_status_error(&resp, "start a multipart upload of", w->desc, attempts);
	else
	{
		xmlDocPtr	doc = xml_parse(&resp.body);
		xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;

		w->upload_id = xml_is(root, "InitiateMultipartUploadResult") ?
			xml_child_text(root, "UploadId") : NULL;
		if (w->upload_id == NULL || w->upload_id[0] == '\0')
			rc = err_set(DRB_ERR_STORAGE, "unable to start a multipart upload of '%s': no "
						 "UploadId in the answer", w->desc);
		if (doc)
			xmlFreeDoc(doc);
	}
	http_response_free(&resp);
	pool_put(s, client);
	return rc;
}

/* Best effort: the upload's parts must not linger (nor become visible). */
static void
multipart_abort(s3_writer *w)
{
	s3_storage *s = w->s;
	http_client *client;
	sigv4_pair	q[1];
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	drb_err		kind = err_kind();
	char	   *saved = xstrdup(err_msg());

	if (w->upload_id == NULL)
	{
		free(saved);
		return;
	}
	client = pool_get(s);
	q[0] = (sigv4_pair) {"uploadId", w->upload_id};
	call.method = "DELETE";
	call.key = w->key;
	call.params = q;
	call.nparams = 1;
	if (s3_send(s, client, &call, &resp, &attempts) != 0)
		log_warn("unable to abort the multipart upload of '%s': %s", w->desc, err_msg());
	else if (resp.status != 204 && resp.status != 200 && resp.status != 404)
	{
		s3_status_error(&resp, "abort the multipart upload of", w->desc, attempts);
		log_warn("%s", err_msg());
	}
	else
		log_debug("aborted the multipart upload of '%s'", w->desc);
	http_response_free(&resp);
	pool_put(s, client);
	free(w->upload_id);
	w->upload_id = NULL;
	/* keep the error that made us abort */
	if (kind != DRB_OK)
		err_set(kind, "%s", saved);
	else
		err_clear();
	free(saved);
}

/* Worker thread: upload one part (with retries), record its ETag or its error. */
static void *
part_thread(void *arg)
{
	s3_part    *p = arg;
	s3_writer  *w = p->w;
	s3_storage *s = w->s;
	http_client *client = pool_get(s);
	char		md5[25];
	char		number[16];
	sigv4_pair	q[2];
	sigv4_pair	h[1];
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;
	char	   *what = xasprintf("upload part %d of", p->number);

	md5_base64(p->data, p->len, md5, p->md5);
	snprintf(number, sizeof(number), "%d", p->number);
	q[0] = (sigv4_pair) {"partNumber", number};
	q[1] = (sigv4_pair) {"uploadId", w->upload_id};
	h[0] = (sigv4_pair) {"content-md5", md5};
	call.method = "PUT";
	call.key = w->key;
	call.params = q;
	call.nparams = 2;
	call.headers = h;
	call.nheaders = 1;
	call.body = p->data;
	call.body_len = p->len;
	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to %s '%s'", what, w->desc);
	else if (resp.status != 200)
		rc = s3_status_error(&resp, what, w->desc, attempts);
	else if (http_response_header(&resp, "etag") == NULL)
		rc = err_set(DRB_ERR_STORAGE, "unable to %s '%s': no ETag in the answer", what, w->desc);
	else
		p->etag = xstrdup(http_response_header(&resp, "etag"));
	p->rc = rc;
	if (rc != 0)
	{
		p->kind = err_kind();
		p->errmsg = xstrdup(err_msg());
	}
	http_response_free(&resp);
	pool_put(s, client);
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

static int
multipart_complete(s3_writer *w)
{
	s3_storage *s = w->s;
	http_client *client = pool_get(s);
	sigv4_pair	q[] = {{"uploadId", w->upload_id}};
	buf_t		body;
	s3_call		call = {0};
	http_response resp = {0};
	int			attempts = 0;
	int			rc;

	buf_init(&body);
	buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload "
				   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (int i = 0; i < w->nparts; i++)
	{
		buf_printf(&body, "<Part><PartNumber>%d</PartNumber><ETag>", i + 1);
		xml_escape_append(&body, w->etags[i]);
		buf_append_str(&body, "</ETag></Part>");
	}
	buf_append_str(&body, "</CompleteMultipartUpload>");

	call.method = "POST";
	call.key = w->key;
	call.params = q;
	call.nparams = 1;
	call.body = body.data;
	call.body_len = body.len;
	rc = s3_send(s, client, &call, &resp, &attempts);
	if (rc != 0)
		err_wrap("unable to complete the multipart upload of '%s'", w->desc);
	else if (resp.status == 200)
	{
		/* S3 may answer 200 and still fail: the body is then an <Error> document */
		char	   *code;
		char	   *message;

		s3_error_fields(&resp, &code, &message);
		if (code)
			rc = err_set(DRB_ERR_STORAGE, "unable to complete the multipart upload of '%s': "
						 "%s: %s", w->desc, code, message ? message : "");
		free(code);
		free(message);
	}
	else if (resp.status == 404 && multipart_already_complete(w, client))
		rc = 0;					/* an earlier (maybe silently resent) Complete succeeded */
	else
		rc = s3_status_error(&resp, "complete the multipart upload of", w->desc, attempts);
	if (rc == 0)
	{
		free(w->upload_id);		/* done: nothing to abort any more */
		w->upload_id = NULL;
	}
	http_response_free(&resp);
	buf_free(&body);
	pool_put(s, client);
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

static filter_t *
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
