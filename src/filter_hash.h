/*
 * filter_hash.h — SHA-256 and size of the bytes passing through (an observer filter).
 *
 * The filter passes every byte on unchanged. At finish it stores the digest and byte count
 * in the caller's hash_result, runs the optional check callback — which may refuse the
 * stream, e.g. a checksum mismatch on restore — and only then finishes the next filter, so
 * a sink is never finished after bytes that failed verification.
 *
 * Speed: pushes of HASH_THREAD_MIN bytes or more are hashed by a helper thread of the
 * filter, so hashing overlaps the work around it:
 *   - up to HASH_STAGE_SIZE bytes (the pieces of a streamed pipeline, e.g. decompressed
 *     output on get): the bytes are copied into the filter's one staging buffer, passed on,
 *     and process() returns while the helper still hashes the copy — hashing piece N
 *     overlaps producing piece N+1 (decompression) as well as consuming piece N (the sink);
 *   - larger pushes (a whole object in memory): hashed in place while the same bytes go on
 *     to the next filter; process() returns once both are done (nothing copied or kept).
 *   - pieces pushed from the filter's own ring (filter_hash_ring: HASH_RING_N buffers the
 *     filter before it fills in turn, e.g. a decompressor's output) are hashed in place and
 *     process() returns at once, up to HASH_RING_N - 1 of them queued: the helper hashes
 *     older pieces while newer ones are made, nothing is copied, and a short stall of
 *     either side does not stop the other. A piece is accepted only when at most
 *     HASH_RING_N - 2 are queued, so the buffer filled next is never one still queued.
 * Either way the caller may reuse its buffer once process() returns. Jobs are hashed in
 * order; finish waits for the last one. Small pushes are hashed inline. The thread starts
 * on the first large push and is joined by destroy; the staging buffer is allocated on
 * first use (memory: HASH_STAGE_SIZE, or the ring's HASH_RING_N x HASH_STAGE_SIZE).
 */
#ifndef DRB_FILTER_HASH_H
#define DRB_FILTER_HASH_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"

#define HASH_THREAD_MIN		(64 * 1024)
#define HASH_STAGE_SIZE		(1024 * 1024)
#define HASH_RING_N			4

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

/*
 * The filter's ring: HASH_RING_N buffers of HASH_STAGE_SIZE bytes, owned by the filter
 * and freed with it (after its helper is done), for the filter before it to fill in turn
 * (0, 1, ..., HASH_RING_N - 1, 0, ...) and push from. Allocated on the first call.
 */
uint8_t   **filter_hash_ring(filter_t *f);

/*
 * The same with the caller's HASH_RING_N buffers of HASH_STAGE_SIZE bytes as the ring (not
 * freed by the filter; they must outlive it), e.g. aligned ones that the sink writes from
 * in place. Returns the ring in use: the filter's own if it already had one.
 */
uint8_t   **filter_hash_use_ring(filter_t *f, uint8_t *const *ring);

/*
 * The index of the buffer of ring (HASH_RING_N of HASH_STAGE_SIZE bytes, as above) that
 * holds all of [in, in + len); -1 if none does or ring[0] is NULL (no ring).
 */
int			hash_ring_slot(uint8_t *const *ring, const uint8_t *in, size_t len);

/* One-shot SHA-256 (OpenSSL). */
void		sha256_buf(const void *data, size_t len, uint8_t out[32]);

#endif
