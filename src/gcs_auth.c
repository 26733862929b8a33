/*
 * gcs_auth.c — service-account JWT and OAuth2 access tokens for GCS (see gcs_auth.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "error.h"
#include "gcs_auth.h"
#include "log.h"
#include "mem.h"

#define KEY_FILE_MAX		(256 * 1024)	/* a key file is a few KiB */
#define JWT_LIFETIME		3600
#define REFRESH_MARGIN		300		/* refresh this many seconds before expiry */
#define ERROR_BODY_MAX		300		/* bytes of an error body quoted in messages */

struct gcs_auth
{
	bool		is_static;
	gcs_sa_key	key;
	http_client *client;		/* token endpoint only; used under lock */
	int			retries;
	pthread_mutex_t lock;
	char	   *token;			/* cached access token, NULL when none */
	time_t		refresh_at;		/* fetch a new token from this time on */
};

/* Wipe and free a NUL-terminated secret. */
static void
free_secret(char *s)
{
	if (s)
	{
		secure_zero(s, strlen(s));
		free(s);
	}
}

/* Read a whole small file into a NUL-terminated buffer; NULL with errno on failure. */
static char *
read_small_file(const char *path, size_t *len_out)
{
	FILE	   *f = fopen(path, "rb");
	char	   *data;
	size_t		len;
	int			saved;

	if (f == NULL)
		return NULL;
	data = xmalloc(KEY_FILE_MAX + 1);
	len = fread(data, 1, KEY_FILE_MAX + 1, f);
	saved = ferror(f) ? errno : (len > KEY_FILE_MAX ? EFBIG : 0);
	fclose(f);
	if (saved != 0)
	{
		secure_zero(data, KEY_FILE_MAX + 1);
		free(data);
		errno = saved;
		return NULL;
	}
	data[len] = '\0';
	*len_out = len;
	return data;
}

/* A string member of obj, or NULL when absent, empty or not a string. */
static const char *
json_str(json_t *obj, const char *name)
{
	json_t	   *v = json_object_get(obj, name);
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;

	return (s && s[0]) ? s : NULL;
}

/* Parse an RSA private key from PEM text; NULL when it is not one. */
static EVP_PKEY *
parse_rsa_pem(const char *pem)
{
	BIO		   *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY   *pkey;

	if (bio == NULL)
		return NULL;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey && !EVP_PKEY_is_a(pkey, "RSA"))
	{
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

int
gcs_sa_key_load(const char *path, gcs_sa_key *key)
{
	size_t		len = 0;
	char	   *text;
	json_t	   *root;
	json_error_t jerr;
	const char *type,
			   *email,
			   *pem,
			   *kid,
			   *uri;
	EVP_PKEY   *pkey;

	memset(key, 0, sizeof(*key));
	text = read_small_file(path, &len);
	if (text == NULL)
		return err_set(DRB_ERR_CONFIG, "unable to read GCS key file '%s': %s", path, strerror(errno));
	root = json_loadb(text, len, 0, &jerr);
	secure_zero(text, len);
	free(text);
	if (root == NULL || !json_is_object(root))
	{
		err_set(DRB_ERR_CONFIG, "GCS key file '%s' is not a JSON object%s%s", path,
				root ? "" : ": ", root ? "" : jerr.text);
		json_decref(root);
		return -1;
	}

	type = json_str(root, "type");
	email = json_str(root, "client_email");
	pem = json_str(root, "private_key");
	kid = json_str(root, "private_key_id");
	uri = json_str(root, "token_uri");
	if (type && strcmp(type, "service_account") != 0)
		err_set(DRB_ERR_CONFIG, "GCS key file '%s' has type '%s', expected 'service_account'", path, type);
	else if (email == NULL)
		err_set(DRB_ERR_CONFIG, "GCS key file '%s' has no 'client_email'", path);
	else if (pem == NULL)
		err_set(DRB_ERR_CONFIG, "GCS key file '%s' has no 'private_key'", path);
	else if (uri && strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0)
		err_set(DRB_ERR_CONFIG, "GCS key file '%s' has a 'token_uri' that is not an http(s) URL", path);
	else if ((pkey = parse_rsa_pem(pem)) == NULL)
		err_set(DRB_ERR_CONFIG, "GCS key file '%s': 'private_key' is not a PEM-encoded RSA private key", path);
	else
	{
		key->path = xstrdup(path);
		key->client_email = xstrdup(email);
		key->private_key_id = kid ? xstrdup(kid) : NULL;
		key->token_uri = xstrdup(uri ? uri : GCS_DEFAULT_TOKEN_URI);
		key->pkey = pkey;
	}
	/* wipe the PEM text jansson holds before releasing it */
	if (pem)
		secure_zero((char *) pem, strlen(pem));
	json_decref(root);
	return key->pkey ? 0 : -1;
}

void
gcs_sa_key_free(gcs_sa_key *key)
{
	free(key->path);
	free(key->client_email);
	free(key->private_key_id);
	free(key->token_uri);
	EVP_PKEY_free(key->pkey);
	memset(key, 0, sizeof(*key));
}

char *
gcs_base64url(const uint8_t *data, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char	   *out = xmalloc(len / 3 * 4 + 5);
	char	   *o = out;
	size_t		i = 0;

	for (; i + 3 <= len; i += 3)
	{
		uint32_t	v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1] << 8 | data[i + 2];

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1)
	{
		uint32_t	v = (uint32_t) data[i] << 16;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
	}
	else if (len - i == 2)
	{
		uint32_t	v = (uint32_t) data[i] << 16 | (uint32_t) data[i + 1] << 8;

		*o++ = alphabet[v >> 18];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
	}
	*o = '\0';
	return out;
}

/* base64url of the compact JSON encoding of obj (which is released). */
static char *
b64_json(json_t *obj)
{
	char	   *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char	   *out;

	json_decref(obj);
	if (text == NULL)
		return NULL;
	out = gcs_base64url((const uint8_t *) text, strlen(text));
	free(text);
	return out;
}

char *
gcs_jwt_build(const gcs_sa_key *key, int64_t iat)
{
	json_t	   *header = json_object();
	json_t	   *claims = json_object();
	char	   *h64,
			   *c64,
			   *input,
			   *s64,
			   *jwt = NULL;
	EVP_MD_CTX *md;
	uint8_t    *sig = NULL;
	size_t		siglen = 0;

	json_object_set_new(header, "alg", json_string("RS256"));
	json_object_set_new(header, "typ", json_string("JWT"));
	if (key->private_key_id)
		json_object_set_new(header, "kid", json_string(key->private_key_id));
	json_object_set_new(claims, "iss", json_string(key->client_email));
	json_object_set_new(claims, "scope", json_string(GCS_SCOPE_READ_WRITE));
	json_object_set_new(claims, "aud", json_string(key->token_uri));
	json_object_set_new(claims, "iat", json_integer(iat));
	json_object_set_new(claims, "exp", json_integer(iat + JWT_LIFETIME));
	h64 = b64_json(header);
	c64 = b64_json(claims);
	if (h64 == NULL || c64 == NULL)
	{
		free(h64);
		free(c64);
		err_set(DRB_ERR_INTERNAL, "unable to encode the JWT for GCS key file '%s'", key->path);
		return NULL;
	}
	input = xasprintf("%s.%s", h64, c64);
	free(h64);
	free(c64);

	md = EVP_MD_CTX_new();
	if (md == NULL ||
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, (EVP_PKEY *) key->pkey) != 1 ||
		EVP_DigestSign(md, NULL, &siglen, (const uint8_t *) input, strlen(input)) != 1)
		err_set(DRB_ERR_CRYPTO, "unable to sign the JWT with the private key of GCS key file '%s'",
				key->path);
	else if (EVP_DigestSign(md, (sig = xmalloc(siglen)), &siglen,
							(const uint8_t *) input, strlen(input)) != 1)
		err_set(DRB_ERR_CRYPTO, "unable to sign the JWT with the private key of GCS key file '%s'",
				key->path);
	else
	{
		s64 = gcs_base64url(sig, siglen);
		jwt = xasprintf("%s.%s", input, s64);
		free(s64);
	}
	EVP_MD_CTX_free(md);
	free(sig);
	free(input);
	return jwt;
}

gcs_auth *
gcs_auth_new_service(const char *key_file, const http_options *http, int retries)
{
	gcs_auth   *auth = xcalloc(1, sizeof(*auth));

	if (gcs_sa_key_load(key_file, &auth->key) != 0)
	{
		free(auth);
		return NULL;
	}
	auth->client = http_client_new(http);
	if (auth->client == NULL)
	{
		err_wrap("unable to create the HTTP client for GCS key file '%s'", key_file);
		gcs_sa_key_free(&auth->key);
		free(auth);
		return NULL;
	}
	auth->retries = retries < 0 ? 0 : retries;
	pthread_mutex_init(&auth->lock, NULL);
	return auth;
}

gcs_auth *
gcs_auth_new_token(const char *token)
{
	gcs_auth   *auth = xcalloc(1, sizeof(*auth));

	auth->is_static = true;
	auth->token = xstrdup(token);
	log_register_secret(token);
	pthread_mutex_init(&auth->lock, NULL);
	return auth;
}

void
gcs_auth_free(gcs_auth *auth)
{
	if (auth == NULL)
		return;
	free_secret(auth->token);
	if (!auth->is_static)
	{
		gcs_sa_key_free(&auth->key);
		http_client_free(auth->client);
	}
	pthread_mutex_destroy(&auth->lock);
	free(auth);
}

/* Record an error for a token-endpoint reply with HTTP status other than 200. */
static int
token_status_error(const http_response *resp)
{
	const char *body = (const char *) resp->body.data;
	int			n = (int) (resp->body.len < ERROR_BODY_MAX ? resp->body.len : ERROR_BODY_MAX);
	json_t	   *root = body ? json_loadb(body, resp->body.len, 0, NULL) : NULL;
	const char *code = root ? json_str(root, "error") : NULL;
	const char *desc = root ? json_str(root, "error_description") : NULL;

	if (code)
		err_set(DRB_ERR_STORAGE, "HTTP %ld: %s%s%s", resp->status, code,
				desc ? ": " : "", desc ? desc : "");
	else
		err_set(DRB_ERR_STORAGE, "HTTP %ld: %.*s", resp->status, body ? n : 0, body ? body : "");
	json_decref(root);
	return -1;
}

/* Parse a 200 reply: take access_token and expires_in into the cache. */
static int
token_take(gcs_auth *auth, const http_response *resp)
{
	json_t	   *root = json_loadb((const char *) resp->body.data, resp->body.len, 0, NULL);
	const char *token = root ? json_str(root, "access_token") : NULL;
	json_t	   *exp = root ? json_object_get(root, "expires_in") : NULL;
	json_int_t	lifetime = json_is_integer(exp) ? json_integer_value(exp) : 0;
	json_int_t	margin;

	if (token == NULL || lifetime <= 0)
	{
		json_decref(root);
		return err_set(DRB_ERR_STORAGE, "the reply has no access_token or no positive expires_in");
	}
	log_register_secret(token);
	free_secret(auth->token);
	auth->token = xstrdup(token);
	secure_zero((char *) token, strlen(token));
	margin = lifetime / 2 < REFRESH_MARGIN ? lifetime / 2 : REFRESH_MARGIN;
	auth->refresh_at = time(NULL) + (time_t) (lifetime - margin);
	json_decref(root);
	return 0;
}

/* Exchange a fresh JWT for an access token (lock held). */
static int
token_fetch(gcs_auth *auth)
{
	char	   *jwt = gcs_jwt_build(&auth->key, (int64_t) time(NULL));
	char	   *body;
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
	http_request req = {0};
	http_response resp = {0};
	int			rc = -1;

	if (jwt == NULL)
		return -1;
	body = xasprintf("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
	free_secret(jwt);
	req.method = "POST";
	req.url = auth->key.token_uri;
	req.headers = headers;
	req.nheaders = 2;
	req.body = (const uint8_t *) body;
	req.body_len = strlen(body);

	for (int attempt = 1;; attempt++)
	{
		rc = http_execute(auth->client, &req, &resp);
		if (rc == 0 && resp.status == 200)
		{
			rc = token_take(auth, &resp);
			break;
		}
		if (attempt > auth->retries || (rc == 0 && !http_retryable(resp.status)))
		{
			if (rc == 0)
				rc = token_status_error(&resp);
			break;
		}
		log_detail("GCS token endpoint '%s' attempt %d failed (%s), retrying", auth->key.token_uri,
				   attempt, rc == 0 ? "retryable HTTP status" : err_msg());
		http_response_free(&resp);
		http_backoff(attempt);
	}
	http_response_free(&resp);
	free_secret(body);
	if (rc != 0)
		err_wrap("unable to get a GCS access token for '%s' (key file '%s') from '%s'",
				 auth->key.client_email, auth->key.path, auth->key.token_uri);
	return rc;
}

char *
gcs_auth_token(gcs_auth *auth)
{
	char	   *copy = NULL;

	pthread_mutex_lock(&auth->lock);
	if (auth->is_static ||
		(auth->token && time(NULL) < auth->refresh_at) ||
		token_fetch(auth) == 0)
		copy = xstrdup(auth->token);
	pthread_mutex_unlock(&auth->lock);
	return copy;
}

bool
gcs_auth_invalidate(gcs_auth *auth, const char *token)
{
	if (auth->is_static)
		return false;
	pthread_mutex_lock(&auth->lock);
	if (auth->token && strcmp(auth->token, token) == 0)
	{
		free_secret(auth->token);
		auth->token = NULL;
	}
	pthread_mutex_unlock(&auth->lock);
	return true;
}
