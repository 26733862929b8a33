/*
 * keyring.c — data key generation, wrapping under a passphrase (scrypt + AES-256-GCM),
 * the JSON key file with its checksum, and per-object key derivation (see keyring.h).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

void
keyring_test_set_scrypt_n(uint64_t n)
{
	test_scrypt_n = n;
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
	ok = ctx != NULL && EVP_KDF_derive(ctx, kek, KEYRING_KEY_SIZE, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
		return err_set(DRB_ERR_CRYPTO, "scrypt key derivation failed (N=%llu, r=%u, p=%u)",
					   (unsigned long long) n, r, p);
	return 0;
}

int
keyring_object_key(const keyring_t *k, const uint8_t salt[32], uint8_t out[KEYRING_KEY_SIZE])
{
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM	params[5];
	int			ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) k->data_key,
												  KEYRING_KEY_SIZE);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, 32);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, OBJECT_KEY_INFO,
												  sizeof(OBJECT_KEY_INFO) - 1);
	params[4] = OSSL_PARAM_construct_end();
	ok = ctx != NULL && EVP_KDF_derive(ctx, out, KEYRING_KEY_SIZE, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	if (!ok)
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
