/*
 * sigv4.c — AWS Signature Version 4 (see sigv4.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "error.h"
#include "http.h"
#include "mem.h"
#include "sigv4.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"

void
sigv4_amz_date(time_t t, char out[17])
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void
sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t		md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
	{
		/* SHA-256 cannot fail short of a broken OpenSSL; never return a valid-looking hash */
		memset(out, '0', 64);
		out[64] = '\0';
		return;
	}
	hex_encode(md, 32, out);
}

char *
sigv4_canonical_uri(const char *path)
{
	if (path == NULL || path[0] == '\0')
		return xstrdup("/");
	return http_uri_encode(path, true);
}

typedef struct enc_pair
{
	char	   *name;
	char	   *value;
	size_t		order;			/* input position, for stable sorting */
} enc_pair;

static int
enc_pair_cmp(const void *a, const void *b)
{
	const enc_pair *x = a;
	const enc_pair *y = b;
	int			c = strcmp(x->name, y->name);

	if (c == 0)
		c = strcmp(x->value, y->value);
	if (c == 0)
		c = x->order < y->order ? -1 : x->order > y->order;
	return c;
}

char *
sigv4_canonical_query(const sigv4_pair *params, size_t n)
{
	enc_pair   *e = xcalloc(n ? n : 1, sizeof(*e));
	buf_t		out;

	for (size_t i = 0; i < n; i++)
	{
		e[i].name = http_uri_encode(params[i].name, false);
		e[i].value = http_uri_encode(params[i].value ? params[i].value : "", false);
		e[i].order = i;
	}
	qsort(e, n, sizeof(*e), enc_pair_cmp);
	buf_init(&out);
	for (size_t i = 0; i < n; i++)
	{
		buf_printf(&out, "%s%s=%s", i ? "&" : "", e[i].name, e[i].value);
		free(e[i].name);
		free(e[i].value);
	}
	free(e);
	buf_cstr(&out);
	return (char *) out.data;
}

/* Value trimmed, inner runs of white space collapsed to one space, appended to out. */
static void
append_trimmed(buf_t *out, const char *v)
{
	bool		pending_space = false;

	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
			pending_space = true;
		else
		{
			if (pending_space)
				buf_append(out, " ", 1);
			pending_space = false;
			buf_append(out, v, 1);
		}
	}
}

/* Canonical headers block (each "name:value\n") and the signed-headers list. */
static void
canonical_headers(const sigv4_pair *headers, size_t n, buf_t *block, buf_t *signed_list)
{
	enc_pair   *e = xcalloc(n ? n : 1, sizeof(*e));

	for (size_t i = 0; i < n; i++)
	{
		e[i].name = xstrdup(headers[i].name);
		for (char *p = e[i].name; *p; p++)
			*p = (char) tolower((unsigned char) *p);
		e[i].value = (char *) (headers[i].value ? headers[i].value : "");
		e[i].order = i;
	}
	/* by name only, then input order: repeated headers keep their order */
	for (size_t i = 1; i < n; i++)
	{
		enc_pair	cur = e[i];
		size_t		j = i;

		while (j > 0 && strcmp(e[j - 1].name, cur.name) > 0)
		{
			e[j] = e[j - 1];
			j--;
		}
		e[j] = cur;
	}
	for (size_t i = 0; i < n; i++)
	{
		bool		repeat = i > 0 && strcmp(e[i - 1].name, e[i].name) == 0;

		if (repeat)
			buf_append(block, ",", 1);
		else
		{
			if (i > 0)
			{
				buf_append(block, "\n", 1);
				buf_append(signed_list, ";", 1);
			}
			buf_printf(block, "%s:", e[i].name);
			buf_append_str(signed_list, e[i].name);
		}
		append_trimmed(block, e[i].value);
	}
	if (n > 0)
		buf_append(block, "\n", 1);
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

static bool
hmac256(const void *key, size_t keylen, const char *msg, uint8_t out[32])
{
	unsigned int len = 0;

	return HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) msg, strlen(msg),
				out, &len) != NULL && len == 32;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
static bool
signing_key(const sigv4_credentials *cred, const char *date8, uint8_t key[32])
{
	char	   *k0 = xasprintf("AWS4%s", cred->secret_key);
	uint8_t		k1[32];
	uint8_t		k2[32];
	uint8_t		k3[32];
	bool		ok;

	ok = hmac256(k0, strlen(k0), date8, k1) &&
		hmac256(k1, 32, cred->region, k2) &&
		hmac256(k2, 32, cred->service, k3) &&
		hmac256(k3, 32, SIGV4_TERMINATOR, key);
	secure_zero(k0, strlen(k0));
	free(k0);
	secure_zero(k1, sizeof(k1));
	secure_zero(k2, sizeof(k2));
	secure_zero(k3, sizeof(k3));
	return ok;
}

static bool
amz_date_valid(const char *d)
{
	if (d == NULL || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !(d[i] >= '0' && d[i] <= '9'))
			return false;
	return true;
}

int
sigv4_sign(const sigv4_credentials *cred, const sigv4_request *req, const char *amz_date,
		   sigv4_result *out)
{
	buf_t		creq;
	buf_t		hblock;
	buf_t		hlist;
	char	   *uri;
	char	   *query;
	char		creq_hash[65];
	char		date8[9];
	char	   *scope;
	uint8_t		key[32];
	uint8_t		sig[32];
	bool		ok;

	memset(out, 0, sizeof(*out));
	if (!amz_date_valid(amz_date))
		return err_set(DRB_ERR_USAGE, "invalid signing date '%s' (expected YYYYMMDDTHHMMSSZ)",
					   amz_date ? amz_date : "(null)");
	if (cred->access_key == NULL || cred->secret_key == NULL || cred->region == NULL ||
		cred->service == NULL)
		return err_set(DRB_ERR_USAGE, "incomplete credentials for request signing "
					   "(access key, secret key, region and service are required)");
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';

	uri = sigv4_canonical_uri(req->path);
	query = sigv4_canonical_query(req->params, req->nparams);
	buf_init(&hblock);
	buf_init(&hlist);
	canonical_headers(req->headers, req->nheaders, &hblock, &hlist);
	buf_init(&creq);
	buf_printf(&creq, "%s\n%s\n%s\n%s\n%s\n%s", req->method, uri, query, buf_cstr(&hblock),
			   buf_cstr(&hlist), req->payload_hash ? req->payload_hash : SIGV4_EMPTY_SHA256);
	free(uri);
	free(query);
	buf_free(&hblock);

	sigv4_sha256_hex(creq.data, creq.len, creq_hash);
	scope = xasprintf("%s/%s/%s/%s", date8, cred->region, cred->service, SIGV4_TERMINATOR);
	out->canonical_request = xstrdup(buf_cstr(&creq));
	buf_free(&creq);
	out->string_to_sign = xasprintf("%s\n%s\n%s\n%s", SIGV4_ALGORITHM, amz_date, scope, creq_hash);
	out->signed_headers = xstrdup(buf_cstr(&hlist));
	buf_free(&hlist);

	ok = signing_key(cred, date8, key) && hmac256(key, sizeof(key), out->string_to_sign, sig);
	secure_zero(key, sizeof(key));
	if (!ok)
	{
		free(scope);
		sigv4_result_free(out);
		return err_set(DRB_ERR_INTERNAL, "unable to compute HMAC-SHA256 for request signing");
	}
	hex_encode(sig, sizeof(sig), out->signature);
	out->authorization = xasprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
								   SIGV4_ALGORITHM, cred->access_key, scope, out->signed_headers,
								   out->signature);
	free(scope);
	return 0;
}

void
sigv4_result_free(sigv4_result *r)
{
	if (r == NULL)
		return;
	free(r->canonical_request);
	free(r->string_to_sign);
	free(r->signed_headers);
	free(r->authorization);
	memset(r, 0, sizeof(*r));
}
