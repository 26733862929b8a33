/*
 * http.c — one HTTP request over a libcurl easy handle (see http.h).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dl_curl.h"
#include "error.h"
#include "http.h"
#include "mem.h"

#define HTTP_BODY_CAP			(1024 * 1024)
#define HTTP_DEFAULT_TIMEOUT	60
#define HTTP_BACKOFF_BASE_MS	100
#define HTTP_BACKOFF_CAP_MS		10000

struct http_client
{
	CURL	   *curl;
	bool		verify_tls;
	char	   *ca_file;
	long		timeout_seconds;
	char		errbuf[CURL_ERROR_SIZE];
};

struct http_pool
{
	http_options options;		/* options.ca_file points at ca_file */
	char	   *ca_file;
	int			max_idle;
	pthread_mutex_t lock;
	http_client **idle;			/* max_idle slots, nidle of them in use */
	int			nidle;
};

/* State of one http_execute call, shared with the curl callbacks. */
typedef struct http_transfer
{
	const http_request *req;
	http_response *resp;
	long		status;			/* from the last status line seen */
	size_t		upload_pos;
} http_transfer;

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_OK;

static void
http_global_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	http_global_rc = curl_global_init(CURL_GLOBAL_ALL);
}

http_client *
http_client_new(const http_options *options)
{
	http_client *c;

	if (dl_curl_load() != 0)
		return NULL;
	pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK)
	{
		err_set(DRB_ERR_INTERNAL, "unable to initialise libcurl: %s", curl_easy_strerror(http_global_rc));
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->curl = curl_easy_init();
	if (c->curl == NULL)
	{
		free(c);
		err_set(DRB_ERR_INTERNAL, "unable to create a libcurl handle");
		return NULL;
	}
	c->verify_tls = options ? options->verify_tls : true;
	c->ca_file = options && options->ca_file ? xstrdup(options->ca_file) : NULL;
	c->timeout_seconds = options && options->timeout_seconds > 0 ?
		options->timeout_seconds : HTTP_DEFAULT_TIMEOUT;
	return c;
}

void
http_client_free(http_client *client)
{
	if (client == NULL)
		return;
	curl_easy_cleanup(client->curl);
	free(client->ca_file);
	free(client);
}

http_pool *
http_pool_new(const http_options *options, int max_idle)
{
	http_pool  *pool = xcalloc(1, sizeof(*pool));

	pool->options.verify_tls = options ? options->verify_tls : true;
	pool->ca_file = options && options->ca_file ? xstrdup(options->ca_file) : NULL;
	pool->options.ca_file = pool->ca_file;
	pool->options.timeout_seconds = options ? options->timeout_seconds : 0;
	pool->max_idle = max_idle < 1 ? 1 : max_idle;
	pool->idle = xcalloc((size_t) pool->max_idle, sizeof(*pool->idle));
	pthread_mutex_init(&pool->lock, NULL);
	return pool;
}

http_client *
http_pool_get(http_pool *pool)
{
	http_client *c = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->nidle > 0)
		c = pool->idle[--pool->nidle];
	pthread_mutex_unlock(&pool->lock);
	return c ? c : http_client_new(&pool->options);
}

void
http_pool_put(http_pool *pool, http_client *client)
{
	if (client == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	if (pool->nidle < pool->max_idle)
	{
		pool->idle[pool->nidle++] = client;
		client = NULL;
	}
	pthread_mutex_unlock(&pool->lock);
	http_client_free(client);	/* the pool is full: NULL when it was kept */
}

void
http_pool_free(http_pool *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->nidle; i++)
		http_client_free(pool->idle[i]);
	free(pool->idle);
	pthread_mutex_destroy(&pool->lock);
	free(pool->ca_file);
	free(pool);
}

static void
headers_clear(http_response *resp)
{
	for (size_t i = 0; i < resp->nheaders; i++)
	{
		free(resp->header_names[i]);
		free(resp->header_values[i]);
	}
	free(resp->header_names);
	free(resp->header_values);
	resp->header_names = NULL;
	resp->header_values = NULL;
	resp->nheaders = 0;
}

void
http_response_free(http_response *resp)
{
	if (resp == NULL)
		return;
	headers_clear(resp);
	buf_free(&resp->body);
	memset(resp, 0, sizeof(*resp));
}

const char *
http_response_header(const http_response *resp, const char *name)
{
	for (size_t i = 0; i < resp->nheaders; i++)
		if (strcmp(resp->header_names[i], name) == 0)
			return resp->header_values[i];
	return NULL;
}

/* Status line ("HTTP/1.1 200 OK") or "Name: value"; a new status line starts over. */
static size_t
header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	http_transfer *t = arg;
	http_response *resp = t->resp;
	size_t		len = size * nmemb;
	const char *colon;
	const char *v;
	const char *end = data + len;
	char	   *name;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
	{
		const char *sp = memchr(data, ' ', len);

		t->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		headers_clear(resp);
		return len;
	}
	colon = memchr(data, ':', len);
	if (colon == NULL || colon == data)
		return len;				/* blank line ending the headers, or junk */
	while (end > colon + 1 && isspace((unsigned char) end[-1]))
		end--;
	v = colon + 1;
	while (v < end && isspace((unsigned char) *v))
		v++;
	name = xstrndup(data, (size_t) (colon - data));
	for (char *p = name; *p; p++)
		*p = (char) tolower((unsigned char) *p);
	resp->header_names = xrealloc(resp->header_names, (resp->nheaders + 1) * sizeof(char *));
	resp->header_values = xrealloc(resp->header_values, (resp->nheaders + 1) * sizeof(char *));
	resp->header_names[resp->nheaders] = name;
	resp->header_values[resp->nheaders] = xstrndup(v, (size_t) (end - v));
	resp->nheaders++;
	return len;
}

static bool
body_goes_to_sink(const http_transfer *t)
{
	if (t->req->sink == NULL)
		return false;
	if (t->req->sink_status != 0)
		return t->status == t->req->sink_status;
	return t->status >= 200 && t->status < 300;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	http_transfer *t = arg;
	http_response *resp = t->resp;
	size_t		len = size * nmemb;

	if (body_goes_to_sink(t))
	{
		if (filter_push(t->req->sink, data, len) != 0)
		{
			resp->sink_failed = true;
			return 0;			/* makes curl stop with CURLE_WRITE_ERROR */
		}
		resp->sink_bytes += len;
		return len;
	}
	if (resp->body.len < HTTP_BODY_CAP)
	{
		size_t		room = HTTP_BODY_CAP - resp->body.len;

		buf_append(&resp->body, data, len < room ? len : room);
	}
	return len;
}

static size_t
read_cb(char *out, size_t size, size_t nmemb, void *arg)
{
	http_transfer *t = arg;
	size_t		room = size * nmemb;
	size_t		left = t->req->body_len - t->upload_pos;
	size_t		n = left < room ? left : room;

	if (n > 0)
		memcpy(out, t->req->body + t->upload_pos, n);
	t->upload_pos += n;
	return n;
}

/* curl rewinds the upload when it resends a request on a fresh connection. */
static int
seek_cb(void *arg, curl_off_t offset, int origin)
{
	http_transfer *t = arg;

	if (origin != SEEK_SET || offset < 0 || (uint64_t) offset > t->req->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	t->upload_pos = (size_t) offset;
	return CURL_SEEKFUNC_OK;
}

/* Options for one request on a freshly reset handle. */
static int
setup_handle(http_client *c, const http_request *req, http_transfer *t, struct curl_slist *hdrs)
{
	CURL	   *h = c->curl;
	CURLcode	rc = CURLE_OK;
	const char *m = req->method ? req->method : "GET";

#define SETOPT(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val); } while (0)
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(CURLOPT_USERAGENT, "drbackup");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, c->timeout_seconds);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(CURLOPT_LOW_SPEED_TIME, c->timeout_seconds);
	SETOPT(CURLOPT_SSL_VERIFYPEER, c->verify_tls ? 1L : 0L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, c->verify_tls ? 2L : 0L);
	if (c->ca_file)
		SETOPT(CURLOPT_CAINFO, c->ca_file);
	SETOPT(CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(CURLOPT_HEADERDATA, t);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_WRITEDATA, t);
	SETOPT(CURLOPT_HTTPHEADER, hdrs);

	if (strcmp(m, "GET") == 0)
		SETOPT(CURLOPT_HTTPGET, 1L);
	else if (strcmp(m, "HEAD") == 0)
		SETOPT(CURLOPT_NOBODY, 1L);
	else if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0)
	{
		/* Both send the body through the read callback with a Content-Length. */
		SETOPT(CURLOPT_UPLOAD, 1L);
		SETOPT(CURLOPT_READFUNCTION, read_cb);
		SETOPT(CURLOPT_READDATA, t);
		SETOPT(CURLOPT_SEEKFUNCTION, seek_cb);
		SETOPT(CURLOPT_SEEKDATA, t);
		SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t) req->body_len);
		if (strcmp(m, "POST") == 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, "POST");
	}
	else
		SETOPT(CURLOPT_CUSTOMREQUEST, m);
#undef SETOPT

	if (rc != CURLE_OK)
		return err_set(DRB_ERR_INTERNAL, "unable to set up HTTP %s request: %s", m, curl_easy_strerror(rc));
	return 0;
}

/* A transport failure, in words that name the cause (connection refused, timeout, ...). */
static int
transport_error(http_client *c, CURLcode rc)
{
	const char *what = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
	long		os_errno = 0;

	/* certificate problems do not go away by retrying: the settings must change */
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
		rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_ISSUER_ERROR ||
		rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
		return err_set(DRB_ERR_CONFIG, "%s (check the CA file and TLS verification settings)", what);

	curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno != 0 && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR ||
						  rc == CURLE_SEND_ERROR))
	{
		char		ebuf[128];
		char	   *e = strerror_r((int) os_errno, ebuf, sizeof(ebuf));	/* GNU variant */
		char		lower[128];

		snprintf(lower, sizeof(lower), "%s", e);
		lower[0] = (char) tolower((unsigned char) lower[0]);
		return err_set(DRB_ERR_STORAGE, "%s (%s)", lower, what);
	}
	return err_set(DRB_ERR_STORAGE, "%s", what);
}

int
http_execute(http_client *client, const http_request *req, http_response *resp)
{
	http_transfer t = {0};
	struct curl_slist *hdrs = NULL;
	const char *m = req->method ? req->method : "GET";
	CURLcode	rc;
	int			result = 0;

	http_response_free(resp);
	t.req = req;
	t.resp = resp;

	for (size_t i = 0; i < req->nheaders; i++)
		hdrs = curl_slist_append(hdrs, req->headers[i]);
	if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0)
		hdrs = curl_slist_append(hdrs, "Expect:");

	curl_easy_reset(client->curl);	/* keeps live connections */
	client->errbuf[0] = '\0';
	if (setup_handle(client, req, &t, hdrs) != 0)
	{
		curl_slist_free_all(hdrs);
		return -1;
	}

	rc = curl_easy_perform(client->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	else
	{
		resp->status = t.status;
		if (!resp->sink_failed)
			transport_error(client, rc);
		result = -1;
	}
	buf_cstr(&resp->body);
	curl_slist_free_all(hdrs);
	return result;
}

bool
http_retryable(long status)
{
	if (status == 501 || status == 505)
		return false;			/* Not Implemented, HTTP Version Not Supported: permanent */
	return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

bool
http_status_in(long status, const long *accepted, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (accepted[i] != 0 && accepted[i] == status)
			return true;
	return false;
}

void
http_backoff(int attempt)
{
	uint32_t	r = 0;
	long		cap_ms = HTTP_BACKOFF_CAP_MS;
	long		ms;
	struct timespec ts;

	if (attempt < 1)
		attempt = 1;
	if (attempt <= 8)
	{
		cap_ms = HTTP_BACKOFF_BASE_MS * (1L << (attempt - 1));
		if (cap_ms > HTTP_BACKOFF_CAP_MS)
			cap_ms = HTTP_BACKOFF_CAP_MS;
	}
	if (getrandom(&r, sizeof(r), 0) != (ssize_t) sizeof(r))
		r = (uint32_t) rand();
	ms = (long) (r % (uint32_t) (cap_ms + 1));
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

char *
http_uri_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_t		out;

	buf_init(&out);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		bool		unreserved = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';

		if (unreserved || (keep_slash && *p == '/'))
			buf_append(&out, p, 1);
		else
		{
			char		enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			buf_append(&out, enc, 3);
		}
	}
	buf_cstr(&out);
	return (char *) out.data;
}

/* "2009-10-12T17:50:30.000Z" → seconds since the epoch (0 if unparsable). */
int64_t
http_parse_iso8601(const char *s)
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
int64_t
http_parse_date(const char *s)
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
