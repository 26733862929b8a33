/*
 * storage_gcs.c — the Google Cloud Storage driver over the JSON API, its core (see
 * storage_gcs.h, the contract in storage.h, and storage_gcs.intern.h for how its files
 * divide the work; the writer is in storage_gcs_write.c).
 *
 * Object names are "prefix/path". Every request carries "Authorization: Bearer <token>"
 * from gcs_auth; a 401 makes the driver drop that token and try once more with a new one.
 * Transport errors and retryable statuses are retried with http_backoff, up to
 * settings->retries extra attempts. HTTP clients come from a pool (http_pool), so one
 * driver may serve several threads (each request holds its own client).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "error.h"
#include "gcs_auth.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "storage_gcs.h"
#include "storage_gcs.intern.h"

#define GCS_DEFAULT_ENDPOINT	"https://storage.googleapis.com"
#define GCS_CHUNK_ALIGN			(256 * 1024)
#define GCS_DEFAULT_CHUNK		(16 * 1024 * 1024)
#define GCS_ERROR_QUOTE_MAX		300		/* bytes of a non-JSON error body quoted */
#define GCS_MAX_HEADERS			8
#define GCS_POOL_MAX			32		/* idle HTTP clients kept */

/* ---------------------------------------------------------------- helpers */

http_client *
gcs_client_get(gcs_storage *g)
{
	http_client *c = http_pool_get(g->pool);

	if (c == NULL)
		err_wrap("unable to create an HTTP client for %s", g->base.description);
	return c;
}

char *
gcs_object_name(const gcs_storage *g, const char *path)
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

void
gcs_try_reset(gcs_try *t)
{
	if (t->token)
	{
		secure_zero(t->token, strlen(t->token));
		free(t->token);
	}
	memset(t, 0, sizeof(*t));
}

int
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
bool
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
int
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
	gcs_try_reset(&t);
	return rc;
}

int
gcs_status_error(const http_response *resp, const char *op, const char *bucket, const char *name)
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
bool
gcs_json_u64(json_t *v, uint64_t *out)
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


int
gcs_call_run(gcs_storage *g, gcs_call *call)
{
	http_client *c = gcs_client_get(g);
	http_response resp = {0};
	char	   *what;
	int			rc;

	if (c == NULL)
		return -1;
	what = xasprintf("%s 'gs://%s/%s'", call->transport_op ? call->transport_op : call->op,
					 g->bucket, call->name);
	if ((rc = gcs_request(g, c, &call->req, &resp, what)) != 0)
		err_wrap("unable to %s", what);
	else if (!http_status_in(resp.status, call->ok, GCS_MAX_OK))
		rc = gcs_status_error(&resp, call->op, g->bucket, call->name);
	else if (call->answer)
		rc = call->answer(g, call, &resp, what);
	http_response_free(&resp);
	http_pool_put(g->pool, c);
	free(what);
	return rc;
}

static int	gcs_head(storage_t *s, const char *path, storage_info *out);

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
	char	   *name = gcs_object_name(g, path);
	char	   *url = object_url(g, name, "alt=media");
	char	   *what = xasprintf("read 'gs://%s/%s'", g->bucket, name);
	read_guard	guard = {{&guard_ops, sink}, 0, length, name};
	http_client *c = gcs_client_get(g);
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
				rc = gcs_status_error(&resp, "read", g->bucket, name);
			else if (!resp.sink_failed && !t.no_token)
				err_wrap("unable to %s after %d attempts (%" PRIu64 " bytes received)", what,
						 t.attempt, guard.pushed);
			break;
		}
	}
	http_response_free(&resp);
	http_pool_put(g->pool, c);
	gcs_try_reset(&t);
	free(what);
	free(url);
	free(name);
	return rc;
}


/* ---------------------------------------------------------------- head, list, remove */

/* Size and mtime from the object's metadata into the storage_info at call->arg. */
static int
head_answer(gcs_storage *g, gcs_call *call, const http_response *resp, const char *what)
{
	storage_info *out = call->arg;
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	int			rc = 0;

	(void) g;
	memset(out, 0, sizeof(*out));
	if (root == NULL || !gcs_json_u64(json_object_get(root, "size"), &out->size))
		rc = err_set(DRB_ERR_STORAGE, "unable to %s: the reply has no size", what);
	else
		out->mtime = http_parse_iso8601(json_string_value(json_object_get(root, "updated")));
	json_decref(root);
	return rc;
}

static int
gcs_head(storage_t *s, const char *path, storage_info *out)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *name = gcs_object_name(g, path);
	char	   *url = object_url(g, name, "fields=size%2Cupdated");
	gcs_call	call = {.req = {.method = "GET", .url = url}, .op = "get the metadata of",
	.name = name, .ok = {200}, .answer = head_answer, .arg = out};
	int			rc = gcs_call_run(g, &call);

	if (rc == 0)
		out->path = path;
	free(url);
	free(name);
	return rc;
}

/* A listing in progress: what to strip from names, where the objects go, the next token. */
typedef struct gcs_lister
{
	size_t		strip;
	storage_list_cb cb;
	void	   *arg;
	char	   *next;			/* pageToken of the next page (caller frees), NULL at the end */
} gcs_lister;

/* Call the lister's cb for each item of one list page; sets its next token or NULL. */
static int
list_answer(gcs_storage *g, gcs_call *call, const http_response *resp, const char *what)
{
	gcs_lister *l = call->arg;
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	json_t	   *items = root ? json_object_get(root, "items") : NULL;
	const char *tok = root ? json_string_value(json_object_get(root, "nextPageToken")) : NULL;
	size_t		i;
	json_t	   *item;
	int			rc = 0;

	l->next = NULL;
	if (root == NULL || (items && !json_is_array(items)))
	{
		json_decref(root);
		return err_set(DRB_ERR_STORAGE, "unable to %s: the reply is not a JSON object list", what);
	}
	json_array_foreach(items, i, item)
	{
		const char *name = json_string_value(json_object_get(item, "name"));
		storage_info info = {0};

		if (name == NULL || !gcs_json_u64(json_object_get(item, "size"), &info.size))
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to %s: an item has no name or size", what);
			break;
		}
		/* skip anything not strictly under the repository prefix (e.g. "prefix/" itself) */
		if (strlen(name) <= l->strip ||
			(g->prefix[0] && (strncmp(name, g->prefix, l->strip - 1) != 0 || name[l->strip - 1] != '/')))
			continue;
		info.path = name + l->strip;
		info.mtime = http_parse_iso8601(json_string_value(json_object_get(item, "updated")));
		if ((rc = l->cb(&info, l->arg)) != 0)
		{
			rc = -1;
			break;
		}
	}
	if (rc == 0 && tok && tok[0])
		l->next = xstrdup(tok);
	json_decref(root);
	return rc;
}

static int
gcs_list(storage_t *s, const char *prefix, storage_list_cb cb, void *arg)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *full = g->prefix[0] ? xasprintf("%s/%s", g->prefix, prefix) : xstrdup(prefix);
	char	   *full_enc = http_uri_encode(full, false);
	char	   *token = NULL;
	gcs_lister	l = {.strip = g->prefix[0] ? strlen(g->prefix) + 1 : 0, .cb = cb, .arg = arg};
	int			rc;

	do
	{
		char	   *tok_enc = token ? http_uri_encode(token, false) : NULL;
		char	   *url = xasprintf("%s/storage/v1/b/%s/o?prefix=%s&fields=items(name%%2Csize%%2Cupdated)"
									"%%2CnextPageToken%s%s", g->endpoint, g->bucket_enc, full_enc,
									tok_enc ? "&pageToken=" : "", tok_enc ? tok_enc : "");
		gcs_call	call = {.req = {.method = "GET", .url = url}, .op = "list", .name = full,
		.ok = {200}, .answer = list_answer, .arg = &l};

		l.next = NULL;
		rc = gcs_call_run(g, &call);
		free(token);
		token = l.next;
		free(url);
		free(tok_enc);
	} while (rc == 0 && token);
	free(token);
	free(full_enc);
	free(full);
	return rc;
}

int
gcs_delete_object(gcs_storage *g, const char *name)
{
	char	   *url = object_url(g, name, NULL);
	gcs_call	call = {.req = {.method = "DELETE", .url = url}, .op = "delete", .name = name,
	.ok = {204, 200, 404}};
	int			rc = gcs_call_run(g, &call);

	free(url);
	return rc;
}

static int
gcs_remove(storage_t *s, const char *path)
{
	gcs_storage *g = (gcs_storage *) s;
	char	   *name = gcs_object_name(g, path);
	int			rc = gcs_delete_object(g, name);

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

	gcs_auth_free(g->auth);
	http_pool_free(g->pool);
	free(g->base.description);
	free(g->endpoint);
	free(g->bucket);
	free(g->bucket_enc);
	free(g->prefix);
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
	http_options http = {.verify_tls = settings->verify_tls, .ca_file = settings->ca_file,
	.timeout_seconds = settings->timeout_seconds};
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
	g->pool = http_pool_new(&http, GCS_POOL_MAX);
	g->base.description = xasprintf("gs://%s%s%s", g->bucket, g->prefix[0] ? "/" : "", g->prefix);
	g->auth = settings->key_type == GCS_KEY_TOKEN ? gcs_auth_new_token(settings->key) :
		gcs_auth_new_service(settings->key, &http, g->retries);
	if (g->auth == NULL)
	{
		err_wrap("unable to set up GCS repository %s", g->base.description);
		gcs_free(&g->base);
		return NULL;
	}
	return &g->base;
}
