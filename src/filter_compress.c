/*
 * filter_compress.c — zstd, lz4, gz and none as compress / decompress filters
 * (see filter_compress.h).
 *
 * Every codec writes into the same output buffer (out, outlen of COMPRESS_OUT_SIZE);
 * out_flush() pushes it on. Compressors push only full buffers until finish, so the next
 * filter sees few, large pushes; decompressors likewise.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include "error.h"
#include "filter_compress.h"
#include "log.h"
#include "mem.h"

#define LZ4_SLICE		(256 * 1024)	/* input fed to LZ4F_compressUpdate at a time */
#define ZSTD_WINDOW_LOG_MAX 23			/* 8 MiB: enough for levels 1..19 */
#define ZLIB_SLICE		(1u << 30)		/* zlib counts in uInt */

typedef struct codec_filter
{
	filter_t	base;
	compress_type type;
	bool		decompress;
	char	   *path;			/* decompress: object named in errors */
	uint8_t    *out;
	size_t		outlen;
	uint8_t    *const *lent;	/* buffers lent by the caller, used in turn; or NULL */
	int			nlent;
	int			lent_cur;		/* the one out points to */
	ZSTD_CCtx  *zc;
	ZSTD_DCtx  *zd;
	LZ4F_cctx  *lc;
	LZ4F_dctx  *ld;
	LZ4F_preferences_t lprefs;
	int			workers;		/* zstd worker threads (compress) */
	z_stream	z;
	bool		z_ready;
	/* decompress: a complete frame/member seen, and none left open */
	bool		frame_seen;
	bool		frame_open;
} codec_filter;

void
compress_level_range(compress_type type, int *lo, int *hi, int *dflt)
{
	static const struct
	{
		int			lo,
					hi,
					dflt;
	}			levels[] = {
		[COMPRESS_NONE] = {0, 0, 0},
		[COMPRESS_ZSTD] = {1, 19, 3},
		[COMPRESS_LZ4] = {0, 12, 1},
		[COMPRESS_GZ] = {0, 9, 6},
	};

	*lo = levels[type].lo;
	*hi = levels[type].hi;
	*dflt = levels[type].dflt;
}

int
compress_level_check(compress_type type, int level)
{
	int			lo,
				hi,
				dflt;

	if (type == COMPRESS_NONE)
		return 0;
	compress_level_range(type, &lo, &hi, &dflt);
	if (level < lo || level > hi)
		return err_set(DRB_ERR_CONFIG, "compress-level=%d is not valid for compress-type=%s "
					   "(allowed %d..%d)", level, compress_type_name(type), lo, hi);
	return 0;
}

static int
out_flush(codec_filter *c)
{
	size_t		n = c->outlen;

	c->outlen = 0;
	if (n == 0)
		return 0;
	if (c->lent != NULL)
	{
		uint8_t    *pushed = c->out;

		/* the next output goes to the next buffer, whatever the push does with this one */
		c->lent_cur = (c->lent_cur + 1) % c->nlent;
		c->out = c->lent[c->lent_cur];
		return filter_push(c->base.next, pushed, n);
	}
	return filter_push(c->base.next, c->out, n);
}

static int
corrupt(codec_filter *c, const char *detail)
{
	return err_set(DRB_ERR_INTEGRITY, "object '%s': corrupt compressed data (%s: %s)",
				   c->path, compress_type_name(c->type), detail);
}

/* --- zstd --- */

static int
zstd_compress(codec_filter *c, const uint8_t *in, size_t len, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer ib;

	/* worker threads are fed job-sized slices: one large slice keeps them waiting longer */
	while (c->workers > 0 && mode == ZSTD_e_continue && len > COMPRESS_PARALLEL_JOB)
	{
		if (zstd_compress(c, in, COMPRESS_PARALLEL_JOB, mode) != 0)
			return -1;
		in += COMPRESS_PARALLEL_JOB;
		len -= COMPRESS_PARALLEL_JOB;
	}
	ib = (ZSTD_inBuffer) {in, len, 0};

	for (;;)
	{
		ZSTD_outBuffer ob = {c->out, COMPRESS_OUT_SIZE, c->outlen};
		size_t		r = ZSTD_compressStream2(c->zc, &ob, &ib, mode);

		if (ZSTD_isError(r))
			return err_set(DRB_ERR_INTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
		c->outlen = ob.pos;
		if (c->outlen == COMPRESS_OUT_SIZE && out_flush(c) != 0)
			return -1;
		if (mode == ZSTD_e_end ? r == 0 : ib.pos == ib.size && ob.pos < ob.size)
			return 0;
	}
}

static int
zstd_decompress(codec_filter *c, const uint8_t *in, size_t len)
{
	ZSTD_inBuffer ib = {in, len, 0};

	for (;;)
	{
		ZSTD_outBuffer ob = {c->out, COMPRESS_OUT_SIZE, c->outlen};
		size_t		in_before = ib.pos;
		size_t		r = ZSTD_decompressStream(c->zd, &ob, &ib);

		if (ZSTD_isError(r))
			return corrupt(c, ZSTD_getErrorName(r));
		if (ib.pos > in_before || ob.pos > c->outlen)
			c->frame_open = r != 0;
		if (r == 0)
			c->frame_seen = true;
		c->outlen = ob.pos;
		if (c->outlen == COMPRESS_OUT_SIZE)
		{
			/* a full buffer: more output may be pending even without new input */
			if (out_flush(c) != 0)
				return -1;
			continue;
		}
		if (ib.pos == ib.size)
			return 0;
	}
}

/* --- lz4 --- */

static int
lz4_compress(codec_filter *c, const uint8_t *in, size_t len)
{
	while (len > 0)
	{
		size_t		n = len < LZ4_SLICE ? len : LZ4_SLICE;
		size_t		r;

		if (COMPRESS_OUT_SIZE - c->outlen < LZ4F_compressBound(n, &c->lprefs) && out_flush(c) != 0)
			return -1;
		r = LZ4F_compressUpdate(c->lc, c->out + c->outlen, COMPRESS_OUT_SIZE - c->outlen, in, n, NULL);
		if (LZ4F_isError(r))
			return err_set(DRB_ERR_INTERNAL, "lz4 compression failed: %s", LZ4F_getErrorName(r));
		c->outlen += r;
		in += n;
		len -= n;
	}
	return 0;
}

static int
lz4_compress_end(codec_filter *c)
{
	size_t		r;

	if (COMPRESS_OUT_SIZE - c->outlen < LZ4F_compressBound(0, &c->lprefs) && out_flush(c) != 0)
		return -1;
	r = LZ4F_compressEnd(c->lc, c->out + c->outlen, COMPRESS_OUT_SIZE - c->outlen, NULL);
	if (LZ4F_isError(r))
		return err_set(DRB_ERR_INTERNAL, "lz4 compression failed: %s", LZ4F_getErrorName(r));
	c->outlen += r;
	return 0;
}

static int
lz4_decompress(codec_filter *c, const uint8_t *in, size_t len)
{
	for (;;)
	{
		size_t		dst = COMPRESS_OUT_SIZE - c->outlen;
		size_t		src = len;
		size_t		r = LZ4F_decompress(c->ld, c->out + c->outlen, &dst, in, &src, NULL);

		if (LZ4F_isError(r))
			return corrupt(c, LZ4F_getErrorName(r));
		if (src > 0 || dst > 0)
			c->frame_open = r != 0;
		if (r == 0 && (src > 0 || dst > 0))
			c->frame_seen = true;
		in += src;
		len -= src;
		c->outlen += dst;
		if (c->outlen == COMPRESS_OUT_SIZE)
		{
			if (out_flush(c) != 0)
				return -1;
			continue;
		}
		if (len == 0)
			return 0;
		if (src == 0 && dst == 0)
			return corrupt(c, "decoder made no progress");
	}
}

/* --- gz --- */

static int
gz_compress(codec_filter *c, const uint8_t *in, size_t len, int flush)
{
	do
	{
		uInt		n = len > ZLIB_SLICE ? ZLIB_SLICE : (uInt) len;
		int			r;

		c->z.next_in = (Bytef *) in;
		c->z.avail_in = n;
		do
		{
			c->z.next_out = c->out + c->outlen;
			c->z.avail_out = (uInt) (COMPRESS_OUT_SIZE - c->outlen);
			r = deflate(&c->z, len > n ? Z_NO_FLUSH : flush);
			if (r == Z_STREAM_ERROR)
				return err_set(DRB_ERR_INTERNAL, "gzip compression failed");
			c->outlen = COMPRESS_OUT_SIZE - c->z.avail_out;
			if (c->outlen == COMPRESS_OUT_SIZE && out_flush(c) != 0)
				return -1;
		} while (c->z.avail_in > 0 || (flush == Z_FINISH && r != Z_STREAM_END));
		in += n;
		len -= n;
	} while (len > 0);
	return 0;
}

static int
gz_decompress(codec_filter *c, const uint8_t *in, size_t len)
{
	while (len > 0 || c->outlen == COMPRESS_OUT_SIZE)
	{
		uInt		n = len > ZLIB_SLICE ? ZLIB_SLICE : (uInt) len;
		int			r;

		if (c->outlen == COMPRESS_OUT_SIZE && out_flush(c) != 0)
			return -1;
		c->z.next_in = (Bytef *) in;
		c->z.avail_in = n;
		c->z.next_out = c->out + c->outlen;
		c->z.avail_out = (uInt) (COMPRESS_OUT_SIZE - c->outlen);
		r = inflate(&c->z, Z_NO_FLUSH);
		if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
			return corrupt(c, c->z.msg ? c->z.msg : "inflate failed");
		if (n - c->z.avail_in > 0 || c->z.avail_out < COMPRESS_OUT_SIZE - c->outlen)
			c->frame_open = true;
		in += n - c->z.avail_in;
		len -= n - c->z.avail_in;
		c->outlen = COMPRESS_OUT_SIZE - c->z.avail_out;
		if (r == Z_STREAM_END)
		{
			/* one member complete; another may follow */
			c->frame_open = false;
			c->frame_seen = true;
			inflateReset(&c->z);
		}
		else if (r == Z_BUF_ERROR && c->outlen < COMPRESS_OUT_SIZE && len > 0)
			return corrupt(c, "inflate made no progress");
	}
	return 0;
}

/* --- filter ops --- */

static int
codec_process(filter_t *f, const uint8_t *in, size_t len)
{
	codec_filter *c = (codec_filter *) f;

	switch (c->type)
	{
		case COMPRESS_ZSTD:
			return c->decompress ? zstd_decompress(c, in, len) : zstd_compress(c, in, len, ZSTD_e_continue);
		case COMPRESS_LZ4:
			return c->decompress ? lz4_decompress(c, in, len) : lz4_compress(c, in, len);
		case COMPRESS_GZ:
			return c->decompress ? gz_decompress(c, in, len) : gz_compress(c, in, len, Z_NO_FLUSH);
		case COMPRESS_NONE:
			break;
	}
	return filter_push(f->next, in, len);
}

static int
codec_finish(filter_t *f)
{
	codec_filter *c = (codec_filter *) f;
	int			rc = 0;

	if (!c->decompress)
	{
		if (c->type == COMPRESS_ZSTD)
			rc = zstd_compress(c, NULL, 0, ZSTD_e_end);
		else if (c->type == COMPRESS_LZ4)
			rc = lz4_compress_end(c);
		else if (c->type == COMPRESS_GZ)
			rc = gz_compress(c, NULL, 0, Z_FINISH);
	}
	else if (c->type != COMPRESS_NONE)
	{
		if (c->frame_open)
			return corrupt(c, "the stream ends inside a frame");
		if (!c->frame_seen)
			return corrupt(c, "no compressed frame");
	}
	if (rc == 0)
		rc = out_flush(c);
	return rc == 0 ? filter_finish(f->next) : -1;
}

static void
codec_destroy(filter_t *f)
{
	codec_filter *c = (codec_filter *) f;

	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	if (c->lc)
		LZ4F_freeCompressionContext(c->lc);
	if (c->ld)
		LZ4F_freeDecompressionContext(c->ld);
	if (c->z_ready)
	{
		if (c->decompress)
			inflateEnd(&c->z);
		else
			deflateEnd(&c->z);
	}
	if (c->lent == NULL)
		free(c->out);
	free(c->path);
	free(c);
}

static const filter_ops compress_ops = {"compress", codec_process, codec_finish, codec_destroy};
static const filter_ops decompress_ops = {"decompress", codec_process, codec_finish, codec_destroy};

static codec_filter *
codec_new(compress_type type, bool decompress, const char *path)
{
	codec_filter *c = xcalloc(1, sizeof(*c));

	c->base.ops = decompress ? &decompress_ops : &compress_ops;
	c->type = type;
	c->decompress = decompress;
	c->path = xstrdup(path ? path : "");
	if (type != COMPRESS_NONE)
		c->out = xmalloc(COMPRESS_OUT_SIZE);
	return c;
}

static filter_t *
codec_fail(codec_filter *c, const char *what)
{
	codec_destroy(&c->base);
	err_set(DRB_ERR_INTERNAL, "unable to initialise %s", what);
	return NULL;
}

/*
 * Switch a zstd compressor to COMPRESS_PARALLEL_WORKERS worker threads if this machine and
 * libzstd allow; it stays single-threaded otherwise (not an error).
 */
static void
zstd_try_parallel(codec_filter *c)
{
	static int	cpus = 0;		/* CPUs online, looked up once (0: not yet) */
	int			n = __atomic_load_n(&cpus, __ATOMIC_RELAXED);
	size_t		r;

	if (n == 0)
	{
		n = (int) sysconf(_SC_NPROCESSORS_ONLN);
		__atomic_store_n(&cpus, n, __ATOMIC_RELAXED);
	}
	if (n < 2)
		return;
	r = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_nbWorkers, COMPRESS_PARALLEL_WORKERS);
	if (ZSTD_isError(r))
	{
		log_debug("zstd: no multi-threaded compression in this libzstd (%s)",
				  ZSTD_getErrorName(r));
		return;
	}
	r = ZSTD_CCtx_setParameter(c->zc, ZSTD_c_jobSize, COMPRESS_PARALLEL_JOB);
	if (ZSTD_isError(r))
	{
		/* default jobs are several times larger: keep memory as documented instead */
		(void) ZSTD_CCtx_setParameter(c->zc, ZSTD_c_nbWorkers, 0);
		return;
	}
	c->workers = COMPRESS_PARALLEL_WORKERS;
}

filter_t *
filter_compress_new(compress_type type, int level)
{
	return filter_compress_new_sized(type, level, 0);
}

int
filter_compress_workers(const filter_t *f)
{
	return f->ops == &compress_ops ? ((const codec_filter *) f)->workers : 0;
}

filter_t *
filter_compress_new_sized(compress_type type, int level, uint64_t size_hint)
{
	codec_filter *c = codec_new(type, false, NULL);

	switch (type)
	{
		case COMPRESS_NONE:
			break;
		case COMPRESS_ZSTD:
			c->zc = ZSTD_createCCtx();
			if (c->zc == NULL ||
				ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level)))
				return codec_fail(c, "zstd compression");
			if (size_hint >= COMPRESS_PARALLEL_MIN)
				zstd_try_parallel(c);
			break;
		case COMPRESS_LZ4:
			{
				size_t		r;

				c->lprefs.frameInfo.blockSizeID = LZ4F_max256KB;
				c->lprefs.frameInfo.blockMode = LZ4F_blockLinked;
				c->lprefs.compressionLevel = level;
				if (LZ4F_isError(LZ4F_createCompressionContext(&c->lc, LZ4F_VERSION)))
					return codec_fail(c, "lz4 compression");
				r = LZ4F_compressBegin(c->lc, c->out, COMPRESS_OUT_SIZE, &c->lprefs);
				if (LZ4F_isError(r))
					return codec_fail(c, "lz4 compression");
				c->outlen = r;
				break;
			}
		case COMPRESS_GZ:
			if (deflateInit2(&c->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
				return codec_fail(c, "gzip compression");
			c->z_ready = true;
			break;
	}
	return &c->base;
}

filter_t *
filter_decompress_new(compress_type type, const char *path)
{
	codec_filter *c = codec_new(type, true, path);

	switch (type)
	{
		case COMPRESS_NONE:
			break;
		case COMPRESS_ZSTD:
			c->zd = ZSTD_createDCtx();
			if (c->zd == NULL ||
				ZSTD_isError(ZSTD_DCtx_setParameter(c->zd, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX)))
				return codec_fail(c, "zstd decompression");
			break;
		case COMPRESS_LZ4:
			if (LZ4F_isError(LZ4F_createDecompressionContext(&c->ld, LZ4F_VERSION)))
				return codec_fail(c, "lz4 decompression");
			break;
		case COMPRESS_GZ:
			if (inflateInit2(&c->z, 15 + 16) != Z_OK)
				return codec_fail(c, "gzip decompression");
			c->z_ready = true;
			break;
	}
	return &c->base;
}

bool
filter_decompress_use_buffers(filter_t *f, uint8_t *const *bufs, int n)
{
	codec_filter *c = (codec_filter *) f;

	if (f->ops != &decompress_ops || c->type != COMPRESS_ZSTD || c->lent != NULL ||
		c->outlen != 0 || n < 2)
		return false;
	free(c->out);
	c->lent = bufs;
	c->nlent = n;
	c->lent_cur = 0;
	c->out = bufs[0];
	return true;
}
