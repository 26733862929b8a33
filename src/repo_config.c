/*
 * repo_config.c — build storage drivers and repository settings from options (see
 * repo_config.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ini.h"
#include "log.h"
#include "mem.h"
#include "filter_compress.h"
#include "repo_config.h"
#include "storage_gcs.h"
#include "storage_posix.h"
#include "storage_s3.h"

/* Credentials resolved for one S3 repository; strings owned here. */
typedef struct s3_credentials
{
	char	   *access_key;
	char	   *secret_key;
	char	   *session_token;
} s3_credentials;

static void
s3_credentials_free(s3_credentials *c)
{
	if (c->secret_key)
		secure_zero(c->secret_key, strlen(c->secret_key));
	if (c->session_token)
		secure_zero(c->session_token, strlen(c->session_token));
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	memset(c, 0, sizeof(*c));
}

typedef struct profile_reader
{
	const char *profile;
	s3_credentials *creds;
} profile_reader;

static int
read_profile_entry(const char *section, const char *key, const char *value, int line, void *arg)
{
	profile_reader *r = arg;
	char	  **slot = NULL;

	(void) line;
	if (strcmp(section, r->profile) != 0)
		return 0;
	if (strcmp(key, "aws_access_key_id") == 0)
		slot = &r->creds->access_key;
	else if (strcmp(key, "aws_secret_access_key") == 0)
		slot = &r->creds->secret_key;
	else if (strcmp(key, "aws_session_token") == 0)
		slot = &r->creds->session_token;
	if (slot)
	{
		free(*slot);
		*slot = xstrdup(value);
	}
	return 0;
}

/* The AWS chain, in the order the AWS CLI uses. */
static int
s3_resolve_credentials(const config_t *cfg, int n, s3_credentials *out)
{
	const char *key = cfg_repo_str(cfg, n, "s3-key");
	const char *secret = cfg_repo_str(cfg, n, "s3-key-secret");
	const char *token = cfg_repo_str(cfg, n, "s3-token");

	memset(out, 0, sizeof(*out));
	if (key || secret)
	{
		if (!key || !secret)
			return err_set(DRB_ERR_CONFIG, "repo%d-s3-key and repo%d-s3-key-secret must be set together",
						   n, n);
		out->access_key = xstrdup(key);
		out->secret_key = xstrdup(secret);
		out->session_token = token ? xstrdup(token) : NULL;
		return 0;
	}
	if (getenv("AWS_ACCESS_KEY_ID") && getenv("AWS_SECRET_ACCESS_KEY"))
	{
		out->access_key = xstrdup(getenv("AWS_ACCESS_KEY_ID"));
		out->secret_key = xstrdup(getenv("AWS_SECRET_ACCESS_KEY"));
		if (getenv("AWS_SESSION_TOKEN") && *getenv("AWS_SESSION_TOKEN"))
			out->session_token = xstrdup(getenv("AWS_SESSION_TOKEN"));
	}
	else
	{
		const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
		char	   *dflt = NULL;
		profile_reader r = {getenv("AWS_PROFILE") ? getenv("AWS_PROFILE") : "default", out};

		if (file == NULL && getenv("HOME"))
			file = dflt = xasprintf("%s/.aws/credentials", getenv("HOME"));
		if (file && ini_parse_file(file, read_profile_entry, &r) != 0 &&
			err_kind() != DRB_ERR_NOT_FOUND)
		{
			free(dflt);
			s3_credentials_free(out);
			return err_wrap("repository %d: reading AWS credentials", n);
		}
		free(dflt);
		err_clear();
	}
	if (!out->access_key || !out->secret_key)
	{
		s3_credentials_free(out);
		return err_set(DRB_ERR_CONFIG, "repository %d: no S3 credentials: set repo%d-s3-key and "
					   "repo%d-s3-key-secret, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
					   "~/.aws/credentials", n, n, n);
	}
	log_register_secret(out->secret_key);
	log_register_secret(out->session_token);
	return 0;
}

/* repoN-path as an object-store key prefix: leading and trailing slashes removed. */
static char *
object_prefix(const char *path)
{
	size_t		len;

	if (path == NULL)
		return xstrdup("");
	while (*path == '/')
		path++;
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	return xstrndup(path, len);
}

static const char *
require(const config_t *cfg, int n, const char *suffix)
{
	const char *v = cfg_repo_str(cfg, n, suffix);

	if (v == NULL || *v == '\0')
		err_set(DRB_ERR_CONFIG, "repository %d: repo%d-%s is required for repo%d-type=%s",
				n, n, suffix, n, cfg_repo_str(cfg, n, "type"));
	return v && *v ? v : NULL;
}

static storage_t *
s3_storage(const config_t *cfg, int n, bool gcs_hmac)
{
	s3_settings s = {0};
	s3_credentials creds = {0};
	storage_t  *st;
	char	   *prefix;

	if (gcs_hmac)
	{
		if (!(s.bucket = require(cfg, n, "gcs-bucket")))
			return NULL;
		s.endpoint = cfg_repo_str(cfg, n, "gcs-endpoint");
		s.region = "auto";
		s.path_style = true;
		s.verify_tls = true;
		s.service = "gcs";
		/* HMAC access id and secret come straight from the options */
		if (!(s.access_key = require(cfg, n, "gcs-key")) ||
			!(s.secret_key = require(cfg, n, "gcs-key-secret")))
			return NULL;
	}
	else
	{
		if (!(s.bucket = require(cfg, n, "s3-bucket")) ||
			!(s.endpoint = require(cfg, n, "s3-endpoint")))
			return NULL;
		if (s3_resolve_credentials(cfg, n, &creds) != 0)
			return NULL;
		s.region = cfg_repo_str(cfg, n, "s3-region");
		s.path_style = strcmp(cfg_repo_str(cfg, n, "s3-uri-style"), "path") == 0;
		s.verify_tls = cfg_repo_bool(cfg, n, "s3-verify-tls");
		s.ca_file = cfg_repo_str(cfg, n, "s3-ca-file");
		s.sse_kms_key_id = cfg_repo_str(cfg, n, "s3-kms-key-id");
		s.access_key = creds.access_key;
		s.secret_key = creds.secret_key;
		s.session_token = creds.session_token;
		s.service = "s3";
	}
	prefix = object_prefix(cfg_repo_str(cfg, n, "path"));
	s.prefix = prefix;
	s.part_size = (size_t) cfg_repo_int(cfg, n, "s3-part-size");
	s.upload_concurrency = (int) cfg_repo_int(cfg, n, "s3-upload-concurrency");
	s.retries = (int) cfg_repo_int(cfg, n, "storage-retries");
	s.timeout_seconds = (int) cfg_repo_int(cfg, n, "storage-timeout");
	st = storage_s3_new(&s);
	free(prefix);
	s3_credentials_free(&creds);
	return st;
}

static storage_t *
gcs_storage(const config_t *cfg, int n)
{
	gcs_settings g = {0};
	const char *key_type = cfg_repo_str(cfg, n, "gcs-key-type");
	storage_t  *st;
	char	   *prefix;
	char	   *endpoint;

	if (strcmp(key_type, "hmac") == 0)
		return s3_storage(cfg, n, true);
	if (!(g.bucket = require(cfg, n, "gcs-bucket")) || !(g.key = require(cfg, n, "gcs-key")))
		return NULL;
	g.key_type = strcmp(key_type, "token") == 0 ? GCS_KEY_TOKEN : GCS_KEY_SERVICE;
	endpoint = strstr(cfg_repo_str(cfg, n, "gcs-endpoint"), "://")
		? xstrdup(cfg_repo_str(cfg, n, "gcs-endpoint"))
		: xasprintf("https://%s", cfg_repo_str(cfg, n, "gcs-endpoint"));
	g.endpoint = endpoint;
	prefix = object_prefix(cfg_repo_str(cfg, n, "path"));
	g.prefix = prefix;
	g.verify_tls = true;
	g.chunk_size = (size_t) cfg_repo_int(cfg, n, "gcs-chunk-size");
	g.retries = (int) cfg_repo_int(cfg, n, "storage-retries");
	g.timeout_seconds = (int) cfg_repo_int(cfg, n, "storage-timeout");
	st = storage_gcs_new(&g);
	free(prefix);
	free(endpoint);
	return st;
}

storage_t *
repo_config_storage(const config_t *cfg, int n)
{
	const char *type = cfg_repo_str(cfg, n, "type");

	if (strcmp(type, "posix") == 0)
	{
		const char *path = cfg_repo_str(cfg, n, "path");

		if (path == NULL || path[0] != '/')
		{
			err_set(DRB_ERR_CONFIG, "repository %d: repo%d-path must be an absolute path, not '%s'",
					n, n, path ? path : "");
			return NULL;
		}
		return storage_posix_new(path);
	}
	if (strcmp(type, "s3") == 0)
		return s3_storage(cfg, n, false);
	if (strcmp(type, "gcs") == 0)
		return gcs_storage(cfg, n);
	err_set(DRB_ERR_CONFIG, "repository %d: unknown repo%d-type '%s'", n, n, type);
	return NULL;
}

/*
 * The key cache directory, <spool-path>/keys (NULL without a spool path). The string is
 * interned for the life of the process (repo_settings borrows it; one value per config).
 */
static const char *
key_cache_dir(const config_t *cfg)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static char *interned[8];
	const char *spool = cfg_str(cfg, "spool-path");
	char	   *dir;
	const char *result = NULL;

	if (spool == NULL || spool[0] == '\0')
		return NULL;
	dir = xasprintf("%s/keys", spool);
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < sizeof(interned) / sizeof(interned[0]) && result == NULL; i++)
		if (interned[i] == NULL)
			result = interned[i] = dir;
		else if (strcmp(interned[i], dir) == 0)
			result = interned[i];
	pthread_mutex_unlock(&lock);
	if (result != dir)
		free(dir);
	return result;				/* NULL (no cache) once 8 different paths were seen */
}

int
repo_config_settings(const config_t *cfg, int n, repo_settings *out)
{
	memset(out, 0, sizeof(*out));
	out->index = n;
	out->cipher = (cipher_type) cipher_type_parse(cfg_repo_str(cfg, n, "cipher-type"));
	out->passphrase = cfg_repo_str(cfg, n, "cipher-pass");
	out->compress = (compress_type) compress_type_parse(cfg_str(cfg, "compress-type"));
	if (cfg_is_set(cfg, "compress-level"))
		out->compress_level = (int) cfg_int(cfg, "compress-level");
	else
	{
		int			lo,
					hi;

		compress_level_range(out->compress, &lo, &hi, &out->compress_level);
	}
	if (out->cipher != CIPHER_NONE && (out->passphrase == NULL || *out->passphrase == '\0'))
		return err_set(DRB_ERR_CONFIG, "repository %d: repo%d-cipher-type=%s needs repo%d-cipher-pass "
					   "(in the config file or DRBACKUP_REPO%d_CIPHER_PASS)", n, n,
					   cipher_type_name(out->cipher), n, n);
	out->key_cache_dir = key_cache_dir(cfg);
	out->storage = repo_config_storage(cfg, n);
	return out->storage ? 0 : -1;
}

repo_t *
repo_config_open(const config_t *cfg, int n)
{
	repo_settings s;
	repo_t	   *repo;

	if (repo_config_settings(cfg, n, &s) != 0)
		return NULL;
	repo = repo_open(&s);
	if (repo == NULL)
		storage_free(s.storage);
	return repo;
}

repo_t *
repo_config_create_open(const config_t *cfg, int n)
{
	repo_settings s;
	repo_t	   *repo;

	if (repo_config_settings(cfg, n, &s) != 0)
		return NULL;
	if (repo_create(&s) != 0)
	{
		storage_free(s.storage);
		return NULL;
	}
	repo = repo_open(&s);
	if (repo == NULL)
		storage_free(s.storage);
	return repo;
}

int
repo_config_selected(const config_t *cfg, bool all_when_unset, int idx[REPO_MAX])
{
	int			count = 0;

	if (cfg_is_set(cfg, "repo"))
	{
		idx[0] = (int) cfg_int(cfg, "repo");
		return 1;
	}
	if (!all_when_unset)
	{
		idx[0] = 1;
		return 1;
	}
	for (int n = 1; n <= REPO_MAX; n++)
		if (cfg_repo_configured(cfg, n))
			idx[count++] = n;
	return count;
}
