/*
 * keyring.c — data key generation, wrapping under a passphrase (scrypt + AES-256-GCM),
 * the JSON key file with its checksum, per-object key derivation, and the local key
 * cache that spares later processes the scrypt cost (see keyring.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "error.h"
#include "filter_crypt.h"
#include "filter_hash.h"
#include "keyring.h"
#include "log.h"
#include "mem.h"

#define WRAP_AAD			"drbackup-repo-key-v1"
#define KEY_ID_LABEL		"drbackup key id"
#define OBJECT_KEY_INFO		"drbackup object v1"
#define KDF_SALT_SIZE		32
#define WRAP_NONCE_SIZE		12

/* Bounds accepted when reading a key file: memory of scrypt stays <= 256 MiB. */
#define SCRYPT_N_MIN		1024
#define SCRYPT_MEM_MAX		(256ull * 1024 * 1024)

static uint64_t test_scrypt_n = 0;
static uint64_t kdf_runs = 0;		/* scrypt derivations run (keyring_test_kdf_runs) */

void
keyring_test_set_scrypt_n(uint64_t n)
{
	test_scrypt_n = n;
}

uint64_t
keyring_test_kdf_runs(void)
{
	return __atomic_load_n(&kdf_runs, __ATOMIC_RELAXED);
}

static void
key_id_of(const uint8_t key[KEYRING_KEY_SIZE], uint8_t id[KEYRING_KEY_ID_SIZE])
{
	uint8_t		in[sizeof(KEY_ID_LABEL) - 1 + KEYRING_KEY_SIZE];
	uint8_t		digest[32];

	memcpy(in, KEY_ID_LABEL, sizeof(KEY_ID_LABEL) - 1);
	memcpy(in + sizeof(KEY_ID_LABEL) - 1, key, KEYRING_KEY_SIZE);
	sha256_buf(in, sizeof(in), digest);
	memcpy(id, digest, KEYRING_KEY_ID_SIZE);
	secure_zero(in, sizeof(in));
}

/* KEK = scrypt(passphrase, salt, N, r, p), 32 bytes. */
static int
derive_kek(const char *passphrase, const uint8_t salt[KDF_SALT_SIZE], uint64_t n, uint32_t r,
		   uint32_t p, uint8_t kek[KEYRING_KEY_SIZE])
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	uint64_t	maxmem = 128ull * r * (n + p + 2) + 1024 * 1024;
	OSSL_PARAM	params[7];
	int			ok;

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *) passphrase,
												  strlen(passphrase));
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, KDF_SALT_SIZE);
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	__atomic_fetch_add(&kdf_runs, 1, __ATOMIC_RELAXED);
	ok = ctx != NULL && EVP_KDF_derive(ctx, kek, KEYRING_KEY_SIZE, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
		return err_set(DRB_ERR_CRYPTO, "scrypt key derivation failed (N=%llu, r=%u, p=%u)",
					   (unsigned long long) n, r, p);
	return 0;
}

/* HKDF-SHA256(ikm, salt, info) into 32 bytes; false on failure (no err_set). */
static bool
hkdf_sha256(const void *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
			const char *info, uint8_t out[KEYRING_KEY_SIZE])
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM	params[5];
	bool		ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikmlen);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, saltlen);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info,
												  strlen(info));
	params[4] = OSSL_PARAM_construct_end();
	ok = ctx != NULL && EVP_KDF_derive(ctx, out, KEYRING_KEY_SIZE, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

int
keyring_object_key(const keyring_t *k, const uint8_t salt[32], uint8_t out[KEYRING_KEY_SIZE])
{
	if (!hkdf_sha256(k->data_key, KEYRING_KEY_SIZE, salt, 32, OBJECT_KEY_INFO, out))
		return err_set(DRB_ERR_CRYPTO, "HKDF derivation of an object key failed");
	return 0;
}

keyring_t *
keyring_generate(cipher_type cipher)
{
	keyring_t  *k = xcalloc(1, sizeof(*k));

	k->cipher = cipher;
	if (cipher == CIPHER_NONE)
		return k;
	if (RAND_priv_bytes(k->data_key, KEYRING_KEY_SIZE) != 1)
	{
		keyring_free(k);
		err_set(DRB_ERR_CRYPTO, "unable to generate a random data key");
		return NULL;
	}
	key_id_of(k->data_key, k->key_id);
	return k;
}

void
keyring_free(keyring_t *k)
{
	if (k == NULL)
		return;
	secure_zero(k, sizeof(*k));
	free(k);
}

/* --- JSON helpers --- */

static json_t *
json_hex(const uint8_t *data, size_t len)
{
	char	   *hex = xmalloc(2 * len + 1);
	json_t	   *j;

	hex_encode(data, len, hex);
	j = json_string(hex);
	free(hex);
	return j;
}

/* SHA-256 hex of the canonical form (sorted keys, no whitespace) of root minus "checksum". */
static void
json_checksum(const json_t *root, char out[65])
{
	json_t	   *copy = json_deep_copy(root);
	char	   *text;
	uint8_t		digest[32];

	json_object_del(copy, "checksum");
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	sha256_buf(text, strlen(text), digest);
	hex_encode(digest, 32, out);
	free(text);
	json_decref(copy);
}

char *
keyring_serialize(const keyring_t *k, const char *passphrase)
{
	json_t	   *root = json_object();
	char		checksum[65];
	char	   *text;
	char	   *result;

	json_object_set_new(root, "format", json_integer(KEYRING_FORMAT_VERSION));
	json_object_set_new(root, "cipher", json_string(cipher_type_name(k->cipher)));
	if (k->cipher != CIPHER_NONE)
	{
		uint64_t	n = test_scrypt_n ? test_scrypt_n : KEYRING_SCRYPT_N;
		uint8_t		salt[KDF_SALT_SIZE];
		uint8_t		nonce[WRAP_NONCE_SIZE];
		uint8_t		kek[KEYRING_KEY_SIZE];
		uint8_t		wrapped[KEYRING_KEY_SIZE];
		uint8_t		tag[CRYPT_TAG_SIZE];
		json_t	   *kdf;
		json_t	   *wrap;
		int			rc;

		if (passphrase == NULL || passphrase[0] == '\0')
		{
			json_decref(root);
			err_set(DRB_ERR_CONFIG, "a passphrase is required to wrap the data key");
			return NULL;
		}
		if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
		{
			json_decref(root);
			err_set(DRB_ERR_CRYPTO, "unable to generate random bytes");
			return NULL;
		}
		rc = derive_kek(passphrase, salt, n, KEYRING_SCRYPT_R, KEYRING_SCRYPT_P, kek);
		if (rc == 0)
			rc = aes_gcm_seal(kek, nonce, WRAP_AAD, sizeof(WRAP_AAD) - 1, k->data_key,
							  KEYRING_KEY_SIZE, wrapped, tag);
		secure_zero(kek, sizeof(kek));
		if (rc != 0)
		{
			json_decref(root);
			return NULL;
		}

		kdf = json_object();
		json_object_set_new(kdf, "name", json_string("scrypt"));
		json_object_set_new(kdf, "N", json_integer((json_int_t) n));
		json_object_set_new(kdf, "r", json_integer(KEYRING_SCRYPT_R));
		json_object_set_new(kdf, "p", json_integer(KEYRING_SCRYPT_P));
		json_object_set_new(kdf, "salt", json_hex(salt, sizeof(salt)));
		json_object_set_new(root, "kdf", kdf);
		json_object_set_new(root, "key-id", json_hex(k->key_id, KEYRING_KEY_ID_SIZE));
		wrap = json_object();
		json_object_set_new(wrap, "cipher", json_string("aes-256-gcm"));
		json_object_set_new(wrap, "nonce", json_hex(nonce, sizeof(nonce)));
		json_object_set_new(wrap, "ciphertext", json_hex(wrapped, sizeof(wrapped)));
		json_object_set_new(wrap, "tag", json_hex(tag, sizeof(tag)));
		json_object_set_new(root, "wrapped-key", wrap);
	}
	json_checksum(root, checksum);
	json_object_set_new(root, "checksum", json_string(checksum));
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	result = xasprintf("%s\n", text);
	free(text);
	return result;
}

/* --- reading --- */

typedef struct parsed_key_file
{
	keyring_info info;
	uint8_t		kdf_salt[KDF_SALT_SIZE];
	uint8_t		nonce[WRAP_NONCE_SIZE];
	uint8_t		wrapped[KEYRING_KEY_SIZE];
	uint8_t		tag[CRYPT_TAG_SIZE];
} parsed_key_file;

static int
damaged(const char *source, const char *detail)
{
	return err_set(DRB_ERR_INTEGRITY, "key file %s is damaged: %s", source, detail);
}

/* Decode a hex string member of obj into exactly len bytes. */
static bool
get_hex(json_t *obj, const char *name, uint8_t *out, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, name));

	return s != NULL && hex_decode(s, out, len) == 0;
}

static int
parse_key_file(const char *text, size_t len, const char *source, parsed_key_file *pk)
{
	json_error_t jerr;
	json_t	   *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *stored;
	const char *cipher;
	char		computed[65];
	json_t	   *j;
	int			ctype;

	memset(pk, 0, sizeof(*pk));
	if (root == NULL || !json_is_object(root))
	{
		json_decref(root);
		return damaged(source, "not valid JSON");
	}
	stored = json_string_value(json_object_get(root, "checksum"));
	json_checksum(root, computed);
	if (stored == NULL || strcmp(stored, computed) != 0)
	{
		json_decref(root);
		return damaged(source, "checksum mismatch");
	}

	j = json_object_get(root, "format");
	if (!json_is_integer(j))
	{
		json_decref(root);
		return damaged(source, "no format version");
	}
	if (json_integer_value(j) != KEYRING_FORMAT_VERSION)
	{
		err_set(DRB_ERR_INTEGRITY, "key file %s has format version %lld, this drbackup reads "
				"version %d", source, (long long) json_integer_value(j), KEYRING_FORMAT_VERSION);
		json_decref(root);
		return -1;
	}
	pk->info.format = KEYRING_FORMAT_VERSION;
	cipher = json_string_value(json_object_get(root, "cipher"));
	ctype = cipher ? cipher_type_parse(cipher) : -1;
	if (ctype < 0)
	{
		json_decref(root);
		return damaged(source, "unknown cipher");
	}
	pk->info.cipher = (cipher_type) ctype;

	if (pk->info.cipher != CIPHER_NONE)
	{
		json_t	   *kdf = json_object_get(root, "kdf");
		json_t	   *wrap = json_object_get(root, "wrapped-key");
		const char *name = json_string_value(json_object_get(kdf, "name"));
		json_int_t	n = json_integer_value(json_object_get(kdf, "N"));
		json_int_t	r = json_integer_value(json_object_get(kdf, "r"));
		json_int_t	p = json_integer_value(json_object_get(kdf, "p"));
		const char *wcipher = json_string_value(json_object_get(wrap, "cipher"));

		if (name == NULL || strcmp(name, "scrypt") != 0 ||
			n < SCRYPT_N_MIN || (n & (n - 1)) != 0 || r < 1 || r > 32 || p < 1 || p > 16 ||
			128ull * (uint64_t) r * (uint64_t) n > SCRYPT_MEM_MAX ||
			!get_hex(kdf, "salt", pk->kdf_salt, KDF_SALT_SIZE))
		{
			json_decref(root);
			return damaged(source, "missing or out-of-range key derivation parameters");
		}
		if (!get_hex(root, "key-id", pk->info.key_id, KEYRING_KEY_ID_SIZE) ||
			wcipher == NULL || strcmp(wcipher, "aes-256-gcm") != 0 ||
			!get_hex(wrap, "nonce", pk->nonce, WRAP_NONCE_SIZE) ||
			!get_hex(wrap, "ciphertext", pk->wrapped, KEYRING_KEY_SIZE) ||
			!get_hex(wrap, "tag", pk->tag, CRYPT_TAG_SIZE))
		{
			json_decref(root);
			return damaged(source, "missing or malformed wrapped key");
		}
		strcpy(pk->info.kdf_name, "scrypt");
		pk->info.scrypt_n = (uint64_t) n;
		pk->info.scrypt_r = (uint32_t) r;
		pk->info.scrypt_p = (uint32_t) p;
	}
	json_decref(root);
	return 0;
}

int
keyring_inspect(const char *text, size_t len, const char *source, keyring_info *info)
{
	parsed_key_file pk;

	if (parse_key_file(text, len, source, &pk) != 0)
		return -1;
	*info = pk.info;
	return 0;
}

keyring_t *
keyring_open(const char *text, size_t len, const char *passphrase, const char *source,
			 const char *what)
{
	parsed_key_file pk;
	keyring_t  *k;
	uint8_t		kek[KEYRING_KEY_SIZE];
	uint8_t		id[KEYRING_KEY_ID_SIZE];
	int			rc;

	if (parse_key_file(text, len, source, &pk) != 0)
		return NULL;
	k = xcalloc(1, sizeof(*k));
	k->cipher = pk.info.cipher;
	if (k->cipher == CIPHER_NONE)
		return k;

	if (passphrase == NULL || passphrase[0] == '\0')
	{
		keyring_free(k);
		err_set(DRB_ERR_CONFIG, "%s is encrypted and no passphrase was given", what);
		return NULL;
	}
	rc = derive_kek(passphrase, pk.kdf_salt, pk.info.scrypt_n, pk.info.scrypt_r,
					pk.info.scrypt_p, kek);
	if (rc == 0 && aes_gcm_open(kek, pk.nonce, WRAP_AAD, sizeof(WRAP_AAD) - 1, pk.wrapped,
								KEYRING_KEY_SIZE, pk.tag, k->data_key) != 0)
		rc = err_set(DRB_ERR_CRYPTO, "wrong passphrase for %s (the data key in %s does not "
					 "authenticate)", what, source);
	secure_zero(kek, sizeof(kek));
	if (rc == 0)
	{
		key_id_of(k->data_key, id);
		if (memcmp(id, pk.info.key_id, KEYRING_KEY_ID_SIZE) != 0)
			rc = damaged(source, "the key id does not match the unwrapped key");
	}
	if (rc != 0)
	{
		keyring_free(k);
		return NULL;
	}
	memcpy(k->key_id, pk.info.key_id, KEYRING_KEY_ID_SIZE);
	return k;
}

char *
keyring_rewrap(const char *text, size_t len, const char *old_passphrase,
			   const char *new_passphrase, const char *source, const char *what)
{
	keyring_t  *k = keyring_open(text, len, old_passphrase, source, what);
	char	   *result;

	if (k == NULL)
		return NULL;
	result = keyring_serialize(k, new_passphrase);
	keyring_free(k);
	return result;
}

/* --- key cache (keyring_open_cached) --- */

/*
 * One cache entry, CACHE_SIZE bytes:
 *     0  8  magic "DRBKEYC1"
 *     8 32  cache salt (random, new with every write)
 *    40 32  SHA-256 of the key file text the key was unwrapped from
 *    72  8  key id
 *    80 12  nonce
 *    92 32  data key, AES-256-GCM under HKDF-SHA256(passphrase, cache salt, CACHE_INFO)
 *   124 16  tag; AAD = bytes 0..79
 */
#define CACHE_MAGIC			"DRBKEYC1"
#define CACHE_INFO			"drbackup key cache v1"
#define CACHE_OFF_SALT		8
#define CACHE_OFF_DIGEST	40
#define CACHE_OFF_KEY_ID	72
#define CACHE_OFF_NONCE		80
#define CACHE_OFF_WRAPPED	92
#define CACHE_OFF_TAG		124
#define CACHE_AAD_SIZE		80
#define CACHE_SIZE			140

static unsigned long cache_temp_counter = 0;

/* <dir>/<hex SHA-256(CACHE_INFO NUL repo_id)>; caller frees. */
static char *
cache_file_name(const char *dir, const char *repo_id)
{
	buf_t		b;
	uint8_t		digest[32];
	char		hex[65];

	buf_init(&b);
	buf_append(&b, CACHE_INFO, sizeof(CACHE_INFO));	/* with its NUL as separator */
	buf_append_str(&b, repo_id);
	sha256_buf(b.data, b.len, digest);
	buf_free(&b);
	hex_encode(digest, sizeof(digest), hex);
	return xasprintf("%s/%s", dir, hex);
}

static bool
cache_kek(const char *passphrase, const uint8_t salt[KDF_SALT_SIZE], uint8_t kek[KEYRING_KEY_SIZE])
{
	return hkdf_sha256(passphrase, strlen(passphrase), salt, KDF_SALT_SIZE, CACHE_INFO, kek);
}

/* Read exactly len bytes; false on error or early end of file. */
static bool
read_exact(int fd, uint8_t *out, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = read(fd, out, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		out += n;
		len -= (size_t) n;
	}
	return true;
}

/*
 * The entry's data key, or NULL (a miss, its reason logged at debug level) unless every
 * check of keyring_open_cached passes.
 */
static keyring_t *
cache_load(const char *file, const parsed_key_file *pk, const uint8_t digest[32],
		   const char *passphrase)
{
	uint8_t		rec[CACHE_SIZE];
	uint8_t		kek[KEYRING_KEY_SIZE];
	uint8_t		id[KEYRING_KEY_ID_SIZE];
	const char *why = NULL;
	keyring_t  *k = NULL;
	struct stat st;
	int			fd;

	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
	{
		log_debug("key cache '%s': miss (%s)", file, errno == ENOENT ? "no entry" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
		(st.st_mode & 077) != 0)
		why = "not a private file of this user: ignored";
	else if (st.st_size != CACHE_SIZE || !read_exact(fd, rec, CACHE_SIZE))
		why = "damaged (wrong size)";
	else if (memcmp(rec, CACHE_MAGIC, 8) != 0)
		why = "damaged (no key cache magic)";
	else if (memcmp(rec + CACHE_OFF_DIGEST, digest, 32) != 0 ||
			 memcmp(rec + CACHE_OFF_KEY_ID, pk->info.key_id, KEYRING_KEY_ID_SIZE) != 0)
		why = "stale (the repository key file has changed)";
	close(fd);

	if (why == NULL)
	{
		k = xcalloc(1, sizeof(*k));
		k->cipher = pk->info.cipher;
		if (!cache_kek(passphrase, rec + CACHE_OFF_SALT, kek))
			why = "unable to derive the cache key";
		else if (aes_gcm_open(kek, rec + CACHE_OFF_NONCE, rec, CACHE_AAD_SIZE,
							  rec + CACHE_OFF_WRAPPED, KEYRING_KEY_SIZE, rec + CACHE_OFF_TAG,
							  k->data_key) != 0)
			why = "does not authenticate (another passphrase, or damaged)";
		else
		{
			key_id_of(k->data_key, id);
			if (memcmp(id, pk->info.key_id, KEYRING_KEY_ID_SIZE) != 0)
				why = "damaged (the key does not match its id)";
		}
		secure_zero(kek, sizeof(kek));
	}
	secure_zero(rec, sizeof(rec));
	if (why != NULL)
	{
		log_debug("key cache '%s': miss, %s", file, why);
		keyring_free(k);
		return NULL;
	}
	memcpy(k->key_id, pk->info.key_id, KEYRING_KEY_ID_SIZE);
	log_debug("key cache '%s': hit", file);
	return k;
}

/* A directory owned by the effective user that nobody else can write to. */
static bool
private_dir(const struct stat *st)
{
	return S_ISDIR(st->st_mode) && st->st_uid == geteuid() && (st->st_mode & 022) == 0;
}

/*
 * The cache directory is ready: it exists as a private directory of this user, or is
 * created (0700) inside a parent directory that belongs to this user. A missing parent
 * (the spool path) is created (0700) too, except by root: a spool directory made by root
 * would lock the PostgreSQL user out of it. false (logged) when the cache cannot be used.
 */
static bool
cache_dir_ready(const char *dir)
{
	struct stat st;
	char	   *parent;
	char	   *slash;
	bool		ok;

	if (lstat(dir, &st) == 0)
	{
		if (private_dir(&st))
			return true;
		log_debug("key cache: '%s' is not a directory of this user closed to others: not used",
				  dir);
		return false;
	}
	parent = xstrdup(dir);
	slash = strrchr(parent, '/');
	if (slash == NULL || slash == parent)
	{
		free(parent);
		log_debug("key cache: no parent directory for '%s': not used", dir);
		return false;
	}
	*slash = '\0';
	if (lstat(parent, &st) != 0 && errno == ENOENT && geteuid() != 0)
		(void) mkdir(parent, 0700);
	ok = lstat(parent, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid();
	if (!ok)
		log_debug("key cache: '%s' is missing or belongs to another user: cache not used",
				  parent);
	else if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		log_debug("key cache: unable to create directory '%s': %s", dir, strerror(errno));
		ok = false;
	}
	else if (lstat(dir, &st) != 0 || !private_dir(&st))
	{
		log_debug("key cache: '%s' is not a directory of this user closed to others: not used",
				  dir);
		ok = false;
	}
	free(parent);
	return ok;
}

/* Write the entry for k atomically (temp + rename); failures are logged and ignored. */
static void
cache_store(const char *dir, const char *file, const uint8_t digest[32], const keyring_t *k,
			const char *passphrase)
{
	uint8_t		rec[CACHE_SIZE];
	uint8_t		kek[KEYRING_KEY_SIZE];
	unsigned long seq = __atomic_fetch_add(&cache_temp_counter, 1, __ATOMIC_RELAXED);
	char	   *temp;
	bool		ok;
	int			fd;

	if (!cache_dir_ready(dir))
		return;
	memcpy(rec, CACHE_MAGIC, 8);
	memcpy(rec + CACHE_OFF_DIGEST, digest, 32);
	memcpy(rec + CACHE_OFF_KEY_ID, k->key_id, KEYRING_KEY_ID_SIZE);
	ok = RAND_bytes(rec + CACHE_OFF_SALT, KDF_SALT_SIZE) == 1 &&
		RAND_bytes(rec + CACHE_OFF_NONCE, WRAP_NONCE_SIZE) == 1 &&
		cache_kek(passphrase, rec + CACHE_OFF_SALT, kek) &&
		aes_gcm_seal(kek, rec + CACHE_OFF_NONCE, rec, CACHE_AAD_SIZE, k->data_key,
					 KEYRING_KEY_SIZE, rec + CACHE_OFF_WRAPPED, rec + CACHE_OFF_TAG) == 0;
	secure_zero(kek, sizeof(kek));
	if (!ok)
	{
		err_clear();
		log_debug("key cache '%s': unable to wrap the key, not written", file);
		return;
	}

	temp = xasprintf("%s.tmp.%d.%lu", file, (int) getpid(), seq);
	fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	ok = fd >= 0 && write(fd, rec, CACHE_SIZE) == CACHE_SIZE;
	if (fd >= 0 && close(fd) != 0)
		ok = false;
	if (ok && rename(temp, file) != 0)
		ok = false;
	if (!ok)
	{
		log_debug("key cache '%s': not written (%s)", file, strerror(errno));
		if (fd >= 0)
			(void) unlink(temp);
	}
	else
		log_debug("key cache '%s': written", file);
	free(temp);
}

keyring_t *
keyring_open_cached(const char *text, size_t len, const char *passphrase, const char *source,
					const char *what, const char *cache_dir, const char *repo_id)
{
	parsed_key_file pk;
	uint8_t		digest[32];
	char	   *file;
	keyring_t  *k;

	if (cache_dir == NULL || cache_dir[0] == '\0' || passphrase == NULL || passphrase[0] == '\0')
		return keyring_open(text, len, passphrase, source, what);
	if (parse_key_file(text, len, source, &pk) != 0)
		return NULL;
	if (pk.info.cipher == CIPHER_NONE)
		return keyring_open(text, len, passphrase, source, what);

	sha256_buf(text, len, digest);
	file = cache_file_name(cache_dir, repo_id ? repo_id : "");
	k = cache_load(file, &pk, digest, passphrase);
	if (k == NULL)
	{
		k = keyring_open(text, len, passphrase, source, what);
		if (k != NULL)
			cache_store(cache_dir, file, digest, k, passphrase);
	}
	secure_zero(&pk, sizeof(pk));
	free(file);
	return k;
}
