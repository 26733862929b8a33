/*
 * filter_hash.h — SHA-256 and size of the bytes passing through (an observer filter).
 *
 * The filter passes every byte on unchanged. At finish it stores the digest and byte count
 * in the caller's hash_result, runs the optional check callback — which may refuse the
 * stream, e.g. a checksum mismatch on restore — and only then finishes the next filter, so
 * a sink is never finished after bytes that failed verification.
 *
 * Speed: large pushes (>= 64 KiB) are hashed by a helper thread of the filter while the
 * calling thread pushes the very same bytes on to the next filter (compression on put, the
 * sink on get); process() returns once both are done, so no bytes are copied or kept and
 * the caller's buffer rules are unchanged. The thread is started on the first large push
 * and joined by destroy. Small pushes are hashed inline.
 */
#ifndef DRB_FILTER_HASH_H
#define DRB_FILTER_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"

typedef struct hash_result
{
	uint64_t	size;			/* bytes seen */
	uint8_t		sha256[32];
	bool		done;			/* set once finish has computed the digest */
} hash_result;

/* Called at finish with the final result; return -1 after err_set to fail the stream. */
typedef int (*hash_check_fn) (const hash_result *result, void *arg);

/*
 * New SHA-256 + size observer. result is owned by the caller and must outlive the filter;
 * it is reset here. check may be NULL.
 */
filter_t   *filter_hash_new(hash_result *result, hash_check_fn check, void *arg);

/* One-shot SHA-256 (OpenSSL). */
void		sha256_buf(const void *data, size_t len, uint8_t out[32]);

#endif
