/*
 * repo.h — a repository: storage driver + data key + the object pipeline.
 *
 * This is the middle of the three files a reader follows from PGDATA to the bucket:
 * command -> repo.c (the filter chain) -> storage driver.
 *
 *   put:  plain bytes -> sha256+size -> compress -> object trailer -> encrypt -> storage writer
 *   get:  storage read -> decrypt -> split trailer -> decompress -> sha256+size -> sink,
 *         verified against the trailer (and the expected checksum when the caller has one)
 *
 * Object format, key wrapping and names: docs/repository-format.md.
 * The repository key file "drbackup.repo" (with redundant copy "drbackup.repo.copy") sits
 * at the repository root: format version, cipher, the random data key wrapped under a
 * key-encryption key derived from the passphrase (scrypt).
 */
#ifndef DRB_REPO_H
#define DRB_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "storage.h"

typedef enum compress_type
{
	COMPRESS_NONE = 0,
	COMPRESS_ZSTD = 1,
	COMPRESS_LZ4 = 2,
	COMPRESS_GZ = 3,
} compress_type;

typedef enum cipher_type
{
	CIPHER_NONE = 0,
	CIPHER_AES_256_GCM = 1,
} cipher_type;

int			compress_type_parse(const char *name);	/* -1 if unknown */
const char *compress_type_name(compress_type t);
int			cipher_type_parse(const char *name);	/* -1 if unknown */
const char *cipher_type_name(cipher_type t);

typedef struct repo_settings
{
	int			index;			/* 1..4, used in messages */
	storage_t  *storage;		/* ownership passes to the repo on success of repo_open */
	cipher_type cipher;
	const char *passphrase;		/* required for CIPHER_AES_256_GCM */
	compress_type compress;
	int			compress_level;
	size_t		chunk_size;		/* encryption chunk (plain bytes); 0 = default 1 MiB */
	const char *key_cache_dir;	/* local directory caching the unwrapped key between processes
								 * (see repo_open); NULL = no cache */
} repo_settings;

typedef struct repo repo_t;

typedef struct repo_object_result
{
	uint64_t	size;			/* plain bytes */
	uint64_t	stored_size;	/* bytes in the repository */
	uint8_t		sha256[32];		/* of the plain bytes */
} repo_object_result;

/*
 * Initialise a repository: write drbackup.repo (+ copy) with a new random data key when
 * absent. When present: succeed if cipher matches and the passphrase opens it, else fail.
 * A missing, damaged or different key file is rewritten from the one that opened. A
 * location without key files that already holds objects is refused (DRB_ERR_STANZA).
 * Does not take ownership of settings->storage.
 */
int			repo_create(const repo_settings *settings);

/*
 * key-rotate: re-wrap the repository's data key under new_passphrase (settings hold the
 * current one) and rewrite drbackup.repo, then drbackup.repo.copy. Objects are untouched:
 * the data key and its id stay the same. Does not take ownership of settings->storage.
 */
int			repo_key_rotate(const repo_settings *settings, const char *new_passphrase);

/* Open an initialised repository (reads and unwraps the key). NULL + err on failure:
 * DRB_ERR_NOT_FOUND "repository N (...) is not initialised", DRB_ERR_CRYPTO wrong passphrase,
 * DRB_ERR_CONFIG cipher settings that do not match the key file or bad settings (compress
 * level, chunk size), DRB_ERR_INTEGRITY both key files damaged. drbackup.repo.copy is read
 * only when drbackup.repo is missing, damaged or does not open (a warning is logged). */
repo_t	   *repo_open(const repo_settings *settings);
void		repo_close(repo_t *repo);
storage_t  *repo_storage(repo_t *repo);
int			repo_index(const repo_t *repo);

/*
 * Put: returns the head of a chain taking plain bytes. filter_finish(head) completes the
 * object (atomically visible; result filled); filter_chain_free(head) without a
 * successful finish aborts (nothing visible). NULL + err on failure.
 */
filter_t   *repo_put_open(repo_t *repo, const char *path, repo_object_result *result);
/*
 * repo_put_open for a caller that knows more: size_hint (0: unknown) lets the compressor
 * use worker threads for a large object; with caller_hashes the chain has no hash stage —
 * the caller hashes the plain bytes itself and hands over their SHA-256 and size with
 * repo_put_set_plain before filter_finish(head) (a size that differs from the bytes pushed
 * fails the finish).
 */
filter_t   *repo_put_open_sized(repo_t *repo, const char *path, repo_object_result *result,
								uint64_t size_hint, bool caller_hashes);
int			repo_put_set_plain(filter_t *head, const uint8_t sha256[32], uint64_t size);
/* Reads fd to its end (regular files of 4 MiB or more with a read-ahead thread). */
int			repo_put_fd(repo_t *repo, const char *path, int fd, repo_object_result *result);
int			repo_put_buf(repo_t *repo, const char *path, const void *data, size_t len,
						 repo_object_result *result);
/*
 * The put chain with memory instead of storage at its end: the whole stored object (header,
 * compressed and encrypted body, trailer) is appended to out as bytes are pushed, and at
 * finish result gets the size and SHA-256 of the plain bytes (hashed in parallel with
 * compression). For a caller that names an object after its checksum: encode, then
 * storage_put_buf(repo_storage(repo), name, out). The format does not depend on the
 * object's name. size_hint: expected size (0 unknown). Memory: the stored size.
 */
filter_t   *repo_encode_open(repo_t *repo, struct buf *out, repo_object_result *result,
							 uint64_t size_hint);
/* repo_put_buf for a caller that already has the SHA-256 of data (not hashed again). */
int			repo_put_buf_hashed(repo_t *repo, const char *path, const void *data, size_t len,
								const uint8_t sha256[32], repo_object_result *result);

/*
 * Get: streams the verified plain bytes into sink and finishes it. If expected_sha256 is
 * non-NULL it must match too. Detects and names (with the object path): not a drbackup
 * object, unsupported version, encrypted with another key, authentication failure in
 * chunk N, chunk out of order (dropped/reordered), truncated object, checksum mismatch.
 * Because data reaches the sink before the end is verified, callers writing files must
 * write to a temporary name and rename only on success.
 */
int			repo_get(repo_t *repo, const char *path, filter_t *sink,
					 const uint8_t *expected_sha256, repo_object_result *result);
/*
 * repo_get decoding into the caller's ring: HASH_RING_N buffers of HASH_STAGE_SIZE bytes
 * (filter_hash.h), which zstd output fills in turn and the checksum is computed in place
 * from. A sink that recognises a piece as one of the ring's may keep reading it until it
 * returns from its next push (the piece's buffer is filled again only after that), e.g.
 * to write it to disk with no copy. Other objects (not zstd) leave the ring unused.
 */
int			repo_get_ring(repo_t *repo, const char *path, filter_t *sink,
						  const uint8_t *expected_sha256, uint8_t *const *ring,
						  repo_object_result *result);
int			repo_get_buf(repo_t *repo, const char *path, struct buf *out,
						 repo_object_result *result);

/*
 * Get into a local file atomically: written to "<local>.drbtmp.<pid>" (mode 0600) next to
 * it, verified, and renamed over local only when complete; nothing at local on failure.
 * durable: fsync the file before the rename.
 */
int			repo_get_file(repo_t *repo, const char *path, const char *local,
						  const uint8_t *expected_sha256, bool durable,
						  repo_object_result *result);

#endif
