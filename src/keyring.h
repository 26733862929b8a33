/*
 * keyring.h — a repository's data key and its key file (JSON, "drbackup.repo").
 *
 * Every encrypted repository has one random 32-byte data key. It never leaves memory in
 * clear: the key file holds it wrapped (AES-256-GCM, random 12-byte nonce, AAD
 * "drbackup-repo-key-v1") under a key-encryption key (KEK) = scrypt(passphrase, salt, N, r,
 * p), with the scrypt parameters, the key id (first 8 bytes of SHA-256("drbackup key id" ||
 * data key)) and a checksum (SHA-256 of the canonical JSON of all other fields) that
 * detects damage. Unencrypted repositories have a key file too, with cipher "none" and no
 * key, so the format version and cipher are always recorded. Layout:
 * docs/repository-format.md.
 *
 * Each object gets its own key: HKDF-SHA256(data key, salt = the object's random salt,
 * info = "drbackup object v1") — keyring_object_key().
 *
 * Rotation (`key-rotate`): keyring_open with the old passphrase, keyring_serialize with
 * the new one — the data key, its id and so every object stay the same; only the wrapping
 * changes (keyring_rewrap does both).
 *
 * Secrets: data keys and KEKs are wiped (secure_zero) when freed and never logged.
 * Errors: DRB_ERR_INTEGRITY for a damaged or unreadable key file, DRB_ERR_CRYPTO for a
 * wrong passphrase ("wrong passphrase for <what>").
 */
#ifndef DRB_KEYRING_H
#define DRB_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

#define KEYRING_FORMAT_VERSION	1
#define KEYRING_KEY_SIZE		32
#define KEYRING_KEY_ID_SIZE		8
#define KEYRING_SCRYPT_N		32768	/* default cost: 32 MiB, about 0.1 s */
#define KEYRING_SCRYPT_R		8
#define KEYRING_SCRYPT_P		1

typedef struct keyring
{
	cipher_type cipher;
	uint8_t		key_id[KEYRING_KEY_ID_SIZE];	/* zero for cipher none */
	uint8_t		data_key[KEYRING_KEY_SIZE];		/* secret; zero for cipher none */
} keyring_t;

/* What a key file says without the passphrase (checksum verified). */
typedef struct keyring_info
{
	int			format;
	cipher_type cipher;
	uint8_t		key_id[KEYRING_KEY_ID_SIZE];
	/* key derivation, for encrypted repositories */
	char		kdf_name[16];	/* "scrypt" */
	uint64_t	scrypt_n;
	uint32_t	scrypt_r;
	uint32_t	scrypt_p;
} keyring_info;

/* A new keyring: for aes-256-gcm with a fresh random data key (CSPRNG). NULL + err. */
keyring_t  *keyring_generate(cipher_type cipher);

/*
 * The key file text (JSON, newline-terminated; caller frees) for k, the data key wrapped
 * under passphrase with a fresh KDF salt and nonce (passphrase ignored for cipher none).
 * NULL + err on failure.
 */
char	   *keyring_serialize(const keyring_t *k, const char *passphrase);

/*
 * Parse key file text and verify its checksum; fills info. source names the file in
 * messages ("drbackup.repo of repository 1"). DRB_ERR_INTEGRITY when damaged.
 */
int			keyring_inspect(const char *text, size_t len, const char *source, keyring_info *info);

/*
 * Parse, verify and unwrap: the keyring, or NULL + err — DRB_ERR_INTEGRITY when the file
 * is damaged, DRB_ERR_CRYPTO "wrong passphrase for <what>" when the key does not unwrap.
 */
keyring_t  *keyring_open(const char *text, size_t len, const char *passphrase,
						 const char *source, const char *what);

/* Key-rotate: the same data key re-wrapped under new_passphrase (new key file text). */
char	   *keyring_rewrap(const char *text, size_t len, const char *old_passphrase,
						   const char *new_passphrase, const char *source, const char *what);

/* The per-object key: HKDF-SHA256(data key, salt, "drbackup object v1"). -1 + err. */
int			keyring_object_key(const keyring_t *k, const uint8_t salt[32],
							   uint8_t out[KEYRING_KEY_SIZE]);

/* Wipes and frees (NULL is fine). */
void		keyring_free(keyring_t *k);

/*
 * keyring_open through the local key cache, so that the next process that opens the same
 * repository skips scrypt (PostgreSQL starts one archive-push per WAL segment). Same
 * result and the same errors as keyring_open; with cache_dir NULL (or for cipher none) it
 * is keyring_open.
 *
 * The cache entry is the file <cache_dir>/<hex SHA-256 of "drbackup key cache v1", NUL,
 * repo_id> (repo_id names the repository, e.g. "repo1 s3://bucket/prefix"), mode 0600 in a
 * directory of this user that others cannot write to (created 0700 when missing, in a
 * parent of this user; a missing parent is created 0700 too, but never by root, which
 * would lock the PostgreSQL user out of its spool). It holds the data key wrapped
 * (AES-256-GCM) under a cheap key, HKDF-SHA256(passphrase, random cache salt), bound to
 * the SHA-256 of the key file text and to its key id. A hit needs: a regular file of this user not readable by others,
 * the right size and magic, the same key file digest and key id, a tag that verifies
 * under this passphrase and an unwrapped key whose id matches. Anything else — no entry,
 * a changed key file (re-created repository, key rotation), another passphrase, a
 * damaged or foreign file — is a miss: the key is unwrapped with scrypt as usual and the
 * entry rewritten atomically (temp file + rename; not fsynced: a lost entry is only a
 * miss). Cache problems never fail the open: they are logged at debug level and the
 * cache is skipped (e.g. a directory that cannot be created or written).
 * docs/repository-format.md §2.5 states the threat model.
 */
keyring_t  *keyring_open_cached(const char *text, size_t len, const char *passphrase,
								const char *source, const char *what,
								const char *cache_dir, const char *repo_id);

/*
 * Test hook: scrypt cost N used by keyring_serialize from now on (0 restores the default).
 * Only unit tests call this, to stay fast; production code never does.
 */
void		keyring_test_set_scrypt_n(uint64_t n);

/* Test hook: how many scrypt derivations this process has run (cache hits run none). */
uint64_t	keyring_test_kdf_runs(void);

#endif
