/*
 * filter_crypt.h — AES-256-GCM over fixed-size chunks (encrypt and decrypt filters).
 *
 * The logical stream of an object is cut into chunks of chunk_size plain bytes: all full
 * except the last, which may be shorter or empty and carries the FINAL flag. Each chunk is
 * stored as
 *     u32 BE word (length | 0x80000000 when final) | ciphertext (length bytes) | 16-byte tag
 * under the per-object key (keyring_object_key), with
 *     nonce = 4 zero bytes | u64 BE chunk index (0, 1, 2, ...)
 *     AAD   = the 72 header bytes | u64 BE chunk index | the u32 word
 * so every chunk is bound to its object header, its position and its final marker.
 *
 * The decrypter releases a chunk's plain bytes only after its tag has been verified, and
 * diagnoses failures (DRB_ERR_INTEGRITY, naming the object path; chunks numbered from 0):
 *   - "authentication failed in chunk N"  (a modified chunk; for chunk 0 possibly the header)
 *   - "chunk N is out of order (it authenticates as chunk M): chunks dropped or reordered"
 *     (found by trying the neighbouring indices N-4..N+4)
 *   - "truncated after chunk N (no final chunk)" / "truncated inside chunk N"
 *   - "data after the final chunk N"
 *   - "non-final chunk N has length L, expected C" / length above the chunk size
 * Memory: one stored chunk and one plain chunk (2 x chunk_size + 20 bytes) per filter.
 */
#ifndef DRB_FILTER_CRYPT_H
#define DRB_FILTER_CRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "object_format.h"

#define CRYPT_KEY_SIZE		32
#define CRYPT_TAG_SIZE		16
#define CRYPT_CHUNK_FINAL	0x80000000u
#define CRYPT_CHUNK_OVERHEAD (4 + CRYPT_TAG_SIZE)

/*
 * New encrypter of the logical stream. key: the 32-byte object key (copied, wiped on
 * destroy); header: the object's 72 header bytes (copied); chunk_size within
 * OBJECT_CHUNK_MIN..OBJECT_CHUNK_MAX. NULL + err on failure.
 */
filter_t   *filter_encrypt_new(const uint8_t key[CRYPT_KEY_SIZE],
							   const uint8_t header[OBJECT_HEADER_SIZE], size_t chunk_size);

/* New decrypter; the same parameters as the encrypter, and path for error messages. */
filter_t   *filter_decrypt_new(const uint8_t key[CRYPT_KEY_SIZE],
							   const uint8_t header[OBJECT_HEADER_SIZE], size_t chunk_size,
							   const char *path);

/*
 * AES-256-GCM of one small message with an explicit 12-byte nonce and AAD (used to wrap
 * the data key). seal writes len bytes of ciphertext and a 16-byte tag; open returns -1
 * without err_set when the tag does not verify (the caller knows what that means).
 */
int			aes_gcm_seal(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[12],
						 const void *aad, size_t aadlen, const uint8_t *in, size_t len,
						 uint8_t *out, uint8_t tag[CRYPT_TAG_SIZE]);
int			aes_gcm_open(const uint8_t key[CRYPT_KEY_SIZE], const uint8_t nonce[12],
						 const void *aad, size_t aadlen, const uint8_t *in, size_t len,
						 const uint8_t tag[CRYPT_TAG_SIZE], uint8_t *out);

#endif
