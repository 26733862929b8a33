/*
 * filter_compress.h — streaming compression and decompression filters.
 *
 * Types (repo.h compress_type): zstd (one zstd frame, ZSTD_compressStream2; repo.c also
 * writes objects as several independent 1 MiB frames, which this decompressor reads), lz4 (one LZ4
 * frame, LZ4F API), gz (one gzip member, zlib deflate with the gzip wrapper), none (bytes
 * pass through). The output of each is a standard stream the matching command-line tool
 * reads; the decompressors also accept several concatenated frames/members.
 *
 * Memory is bounded by the codec's window plus an output buffer of COMPRESS_OUT_SIZE:
 * output is collected there and pushed on in pieces of that size (and the rest at finish).
 * Decompression bounds the zstd window at 8 MiB (levels up to 19 never exceed it).
 *
 * Parallel zstd: a compressor told that its stream is large (size hint of
 * COMPRESS_PARALLEL_MIN or more) on a machine with more than one CPU uses zstd's
 * multi-threaded mode — COMPRESS_PARALLEL_WORKERS worker threads compressing jobs of
 * COMPRESS_PARALLEL_JOB bytes at once — when the libzstd it runs with supports it (checked
 * at run time: ZSTD_CCtx_setParameter(ZSTD_c_nbWorkers) fails without threads; then it
 * stays single-threaded). The output is still one standard zstd frame, readable by any
 * decoder with the same window bound; memory grows by about two jobs per worker
 * (a few MiB), whatever the object size.
 *
 * Errors: compressing fails only on internal errors (DRB_ERR_INTERNAL); decompressing
 * fails with DRB_ERR_INTEGRITY "object 'path': corrupt compressed data (...)" — also when
 * the stream ends inside a frame or is missing altogether.
 */
#ifndef DRB_FILTER_COMPRESS_H
#define DRB_FILTER_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "repo.h"

#define COMPRESS_OUT_SIZE (1024 * 1024)
#define COMPRESS_PARALLEL_MIN		(4 * 1024 * 1024)
#define COMPRESS_PARALLEL_WORKERS	2
#define COMPRESS_PARALLEL_JOB		(1024 * 1024)

/*
 * Levels each compressor takes and the one used when compress-level is not set:
 * zstd 1..19 (3), lz4 0..12 (1: fast mode; above 2 is LZ4-HC), gz 0..9 (6), none 0..0.
 * The one table of levels; configuration validates against it.
 */
void		compress_level_range(compress_type type, int *lo, int *hi, int *dflt);

/*
 * Check a level for a type. DRB_ERR_CONFIG naming the type and the valid range otherwise
 * (none accepts any level: it has nothing to tune).
 */
int			compress_level_check(compress_type type, int level);

/* New compressor; NULL + err on failure. level must have passed compress_level_check. */
filter_t   *filter_compress_new(compress_type type, int level);

/*
 * New compressor for a stream of about size_hint bytes (0: unknown; a hint, not a
 * promise: any length is still compressed correctly). Large zstd streams are compressed
 * in parallel as described above.
 */
filter_t   *filter_compress_new_sized(compress_type type, int level, uint64_t size_hint);

/* Worker threads a compressor made by this module uses (0: compresses in the caller's thread). */
int			filter_compress_workers(const filter_t *f);

/* New decompressor; path names the object in error messages. NULL + err on failure. */
filter_t   *filter_decompress_new(compress_type type, const char *path);

/*
 * Make a zstd decompressor (not yet used) write its output into bufs[0] .. bufs[n - 1]
 * (n >= 2, COMPRESS_OUT_SIZE bytes each) in turn instead of its own buffer: after pushing
 * one it fills the next, so a piece stays unchanged until n - 1 more pushes have
 * returned. The array and buffers stay the caller's and must outlive the filter
 * (filter_hash_ring lends its own this way, to hash pieces in place). false, with nothing
 * changed, for other filters.
 */
bool		filter_decompress_use_buffers(filter_t *f, uint8_t *const *bufs, int n);

#endif
