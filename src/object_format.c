/*
 * object_format.c — header and trailer of repository objects and their filters
 * (see object_format.h and docs/repository-format.md).
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mem.h"
#include "object_format.h"
#include "repo.h"

#define HEADER_MAGIC		0x184D2A5Du	/* zstd skippable frame, little-endian on disk */
#define TRAILER_MAGIC		0x184D2A5Eu
#define HEADER_FRAME_SIZE	(OBJECT_HEADER_SIZE - 8)
#define TRAILER_FRAME_SIZE	(OBJECT_TRAILER_SIZE - 8)

/* Header offsets (from the start of the object). */
#define HOFF_TAG		8			/* "DRBK" */
#define HOFF_VERSION	12
#define HOFF_COMPRESS	13
#define HOFF_CIPHER		14
#define HOFF_FLAGS		15
#define HOFF_CHUNK		16
#define HOFF_KEY_ID		20
#define HOFF_SALT		28
#define HOFF_RESERVED	60

/* Trailer offsets (from the start of the trailer). */
#define TOFF_TAG		8			/* "DRBT" */
#define TOFF_SIZE		12
#define TOFF_SHA256		20
#define TOFF_RESERVED	52

static void
le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static uint32_t
le32_get(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

void
object_header_encode(const object_header *h, uint8_t out[OBJECT_HEADER_SIZE])
{
	memset(out, 0, OBJECT_HEADER_SIZE);
	le32_put(out, HEADER_MAGIC);
	le32_put(out + 4, HEADER_FRAME_SIZE);
	memcpy(out + HOFF_TAG, "DRBK", 4);
	out[HOFF_VERSION] = h->version;
	out[HOFF_COMPRESS] = h->compress;
	out[HOFF_CIPHER] = h->cipher;
	out[HOFF_FLAGS] = h->flags;
	be32_put(out + HOFF_CHUNK, h->chunk_size);
	memcpy(out + HOFF_KEY_ID, h->key_id, OBJECT_KEY_ID_SIZE);
	memcpy(out + HOFF_SALT, h->salt, OBJECT_SALT_SIZE);
}

int
object_header_decode(const uint8_t in[OBJECT_HEADER_SIZE], const char *path, object_header *out)
{
	if (le32_get(in) != HEADER_MAGIC || le32_get(in + 4) != HEADER_FRAME_SIZE ||
		memcmp(in + HOFF_TAG, "DRBK", 4) != 0)
		return err_set(DRB_ERR_INTEGRITY, "'%s' is not a drbackup object (bad header magic)", path);

	memset(out, 0, sizeof(*out));
	out->version = in[HOFF_VERSION];
	out->compress = in[HOFF_COMPRESS];
	out->cipher = in[HOFF_CIPHER];
	out->flags = in[HOFF_FLAGS];
	out->chunk_size = be32_get(in + HOFF_CHUNK);
	memcpy(out->key_id, in + HOFF_KEY_ID, OBJECT_KEY_ID_SIZE);
	memcpy(out->salt, in + HOFF_SALT, OBJECT_SALT_SIZE);

	if (out->version != OBJECT_FORMAT_VERSION)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': unsupported format version %u "
					   "(this drbackup reads version %d)", path, out->version, OBJECT_FORMAT_VERSION);
	if (out->compress > COMPRESS_GZ)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': header is damaged (unknown compression "
					   "type %u)", path, out->compress);
	if (out->cipher > CIPHER_AES_256_GCM)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': header is damaged (unknown cipher %u)",
					   path, out->cipher);
	if (out->flags != 0 || !all_zero(in + HOFF_RESERVED, OBJECT_HEADER_SIZE - HOFF_RESERVED))
		return err_set(DRB_ERR_INTEGRITY, "object '%s': header is damaged (non-zero flags or "
					   "reserved bytes)", path);
	if (out->cipher == CIPHER_NONE)
	{
		if (out->chunk_size != 0 || !all_zero(out->key_id, OBJECT_KEY_ID_SIZE) ||
			!all_zero(out->salt, OBJECT_SALT_SIZE))
			return err_set(DRB_ERR_INTEGRITY, "object '%s': header is damaged (chunk size, key id "
						   "or salt set in an unencrypted object)", path);
	}
	else if (out->chunk_size < OBJECT_CHUNK_MIN || out->chunk_size > OBJECT_CHUNK_MAX)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': header is damaged (chunk size %u is "
					   "outside 4 KiB..16 MiB)", path, out->chunk_size);
	return 0;
}

void
object_trailer_encode(const object_trailer *t, uint8_t out[OBJECT_TRAILER_SIZE])
{
	memset(out, 0, OBJECT_TRAILER_SIZE);
	le32_put(out, TRAILER_MAGIC);
	le32_put(out + 4, TRAILER_FRAME_SIZE);
	memcpy(out + TOFF_TAG, "DRBT", 4);
	be64_put(out + TOFF_SIZE, t->size);
	memcpy(out + TOFF_SHA256, t->sha256, 32);
}

int
object_trailer_decode(const uint8_t in[OBJECT_TRAILER_SIZE], const char *path, object_trailer *out)
{
	if (le32_get(in) != TRAILER_MAGIC || le32_get(in + 4) != TRAILER_FRAME_SIZE ||
		memcmp(in + TOFF_TAG, "DRBT", 4) != 0 ||
		!all_zero(in + TOFF_RESERVED, OBJECT_TRAILER_SIZE - TOFF_RESERVED))
		return err_set(DRB_ERR_INTEGRITY, "truncated object '%s': no valid trailer at its end", path);
	out->size = be64_get(in + TOFF_SIZE);
	memcpy(out->sha256, in + TOFF_SHA256, 32);
	return 0;
}

int
object_verify(const char *path, const object_trailer *trailer, const hash_result *actual,
			  const uint8_t *expected_sha256)
{
	char		want[65];
	char		got[65];

	if (actual->size != trailer->size)
		return err_set(DRB_ERR_INTEGRITY, "object '%s': size mismatch: the trailer records %llu "
					   "bytes, the data has %llu", path, (unsigned long long) trailer->size,
					   (unsigned long long) actual->size);
	hex_encode(actual->sha256, 32, got);
	if (memcmp(actual->sha256, trailer->sha256, 32) != 0)
	{
		hex_encode(trailer->sha256, 32, want);
		return err_set(DRB_ERR_INTEGRITY, "object '%s': checksum mismatch: expected %s, got %s",
					   path, want, got);
	}
	if (expected_sha256 && memcmp(actual->sha256, expected_sha256, 32) != 0)
	{
		hex_encode(expected_sha256, 32, want);
		return err_set(DRB_ERR_INTEGRITY, "object '%s': checksum mismatch against the caller's "
					   "record: expected %s, got %s", path, want, got);
	}
	return 0;
}

/* --- header writer --- */

typedef struct header_writer
{
	filter_t	base;
	uint8_t		header[OBJECT_HEADER_SIZE];
	bool		header_sent;
	uint64_t   *stored_size;
} header_writer;

static int
header_writer_send(header_writer *w)
{
	if (w->header_sent)
		return 0;
	w->header_sent = true;
	*w->stored_size += OBJECT_HEADER_SIZE;
	return filter_push(w->base.next, w->header, OBJECT_HEADER_SIZE);
}

static int
header_writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	header_writer *w = (header_writer *) f;

	if (header_writer_send(w) != 0)
		return -1;
	*w->stored_size += len;
	return filter_push(f->next, in, len);
}

static int
header_writer_finish(filter_t *f)
{
	if (header_writer_send((header_writer *) f) != 0)
		return -1;
	return filter_finish(f->next);
}

static void
object_filter_free(filter_t *f)
{
	free(f);
}

static const filter_ops header_writer_ops = {
	"object-header-writer", header_writer_process, header_writer_finish, object_filter_free
};

filter_t *
filter_header_writer_new(const uint8_t header[OBJECT_HEADER_SIZE], uint64_t *stored_size)
{
	header_writer *w = xcalloc(1, sizeof(*w));

	w->base.ops = &header_writer_ops;
	memcpy(w->header, header, OBJECT_HEADER_SIZE);
	w->stored_size = stored_size;
	*stored_size = 0;
	return &w->base;
}

/* --- header reader --- */

typedef struct header_reader
{
	filter_t	base;
	char	   *path;
	object_body_chain_fn body_chain;
	void	   *arg;
	uint64_t   *stored_size;
	uint8_t		raw[OBJECT_HEADER_SIZE];
	size_t		have;			/* header bytes collected */
	bool		ready;			/* header decoded, next filter set */
} header_reader;

static int
header_reader_process(filter_t *f, const uint8_t *in, size_t len)
{
	header_reader *r = (header_reader *) f;

	*r->stored_size += len;
	if (!r->ready)
	{
		size_t		n = OBJECT_HEADER_SIZE - r->have;
		object_header h;

		if (n > len)
			n = len;
		memcpy(r->raw + r->have, in, n);
		r->have += n;
		in += n;
		len -= n;
		if (r->have < OBJECT_HEADER_SIZE)
			return 0;
		if (object_header_decode(r->raw, r->path, &h) != 0)
			return -1;
		f->next = r->body_chain(&h, r->raw, r->arg);
		if (f->next == NULL)
			return -1;
		r->ready = true;
	}
	return filter_push(f->next, in, len);
}

static int
header_reader_finish(filter_t *f)
{
	header_reader *r = (header_reader *) f;

	if (!r->ready)
	{
		/* a short object that starts like ours was cut; anything else is not ours */
		static const uint8_t start[8] = {0x5D, 0x2A, 0x4D, 0x18, HEADER_FRAME_SIZE, 0, 0, 0};

		if (r->have > 0 && memcmp(r->raw, start, r->have < 8 ? r->have : 8) == 0)
			return err_set(DRB_ERR_INTEGRITY, "truncated object '%s': only %zu bytes of its "
						   "%d-byte header", r->path, r->have, OBJECT_HEADER_SIZE);
		return err_set(DRB_ERR_INTEGRITY, "'%s' is not a drbackup object (%zu bytes, shorter "
					   "than a header)", r->path, r->have);
	}
	return filter_finish(f->next);
}

static void
header_reader_destroy(filter_t *f)
{
	free(((header_reader *) f)->path);
	free(f);
}

static const filter_ops header_reader_ops = {
	"object-header-reader", header_reader_process, header_reader_finish, header_reader_destroy
};

filter_t *
filter_header_reader_new(const char *path, object_body_chain_fn body_chain, void *arg,
						 uint64_t *stored_size)
{
	header_reader *r = xcalloc(1, sizeof(*r));

	r->base.ops = &header_reader_ops;
	r->path = xstrdup(path);
	r->body_chain = body_chain;
	r->arg = arg;
	r->stored_size = stored_size;
	*stored_size = 0;
	return &r->base;
}

/* --- trailer writer --- */

typedef struct trailer_writer
{
	filter_t	base;
	const hash_result *plain;
} trailer_writer;

static int
trailer_writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	return filter_push(f->next, in, len);
}

static int
trailer_writer_finish(filter_t *f)
{
	trailer_writer *w = (trailer_writer *) f;
	object_trailer t;
	uint8_t		raw[OBJECT_TRAILER_SIZE];

	if (!w->plain->done)
		return err_set(DRB_ERR_INTERNAL, "object trailer written before the plain bytes were hashed");
	t.size = w->plain->size;
	memcpy(t.sha256, w->plain->sha256, 32);
	object_trailer_encode(&t, raw);
	if (filter_push(f->next, raw, sizeof(raw)) != 0)
		return -1;
	return filter_finish(f->next);
}

static const filter_ops trailer_writer_ops = {
	"object-trailer-writer", trailer_writer_process, trailer_writer_finish, object_filter_free
};

filter_t *
filter_trailer_writer_new(const hash_result *plain)
{
	trailer_writer *w = xcalloc(1, sizeof(*w));

	w->base.ops = &trailer_writer_ops;
	w->plain = plain;
	return &w->base;
}

/* --- trailer reader --- */

typedef struct trailer_reader
{
	filter_t	base;
	char	   *path;
	object_trailer *out;
	uint8_t		held[OBJECT_TRAILER_SIZE];	/* the last bytes seen so far */
	size_t		nheld;
} trailer_reader;

static int
trailer_reader_process(filter_t *f, const uint8_t *in, size_t len)
{
	trailer_reader *r = (trailer_reader *) f;

	if (len >= OBJECT_TRAILER_SIZE)
	{
		/* everything held plus all but the last trailer-size bytes of in can go on */
		if (r->nheld > 0 && filter_push(f->next, r->held, r->nheld) != 0)
			return -1;
		if (filter_push(f->next, in, len - OBJECT_TRAILER_SIZE) != 0)
			return -1;
		memcpy(r->held, in + len - OBJECT_TRAILER_SIZE, OBJECT_TRAILER_SIZE);
		r->nheld = OBJECT_TRAILER_SIZE;
		return 0;
	}
	else
	{
		size_t		excess = r->nheld + len > OBJECT_TRAILER_SIZE
			? r->nheld + len - OBJECT_TRAILER_SIZE : 0;

		if (excess > 0)
		{
			if (filter_push(f->next, r->held, excess) != 0)
				return -1;
			memmove(r->held, r->held + excess, r->nheld - excess);
			r->nheld -= excess;
		}
		memcpy(r->held + r->nheld, in, len);
		r->nheld += len;
		return 0;
	}
}

static int
trailer_reader_finish(filter_t *f)
{
	trailer_reader *r = (trailer_reader *) f;

	if (r->nheld < OBJECT_TRAILER_SIZE)
		return err_set(DRB_ERR_INTEGRITY, "truncated object '%s': no valid trailer at its end "
					   "(only %zu bytes after the header)", r->path, r->nheld);
	if (object_trailer_decode(r->held, r->path, r->out) != 0)
		return -1;
	return filter_finish(f->next);
}

static void
trailer_reader_destroy(filter_t *f)
{
	free(((trailer_reader *) f)->path);
	free(f);
}

static const filter_ops trailer_reader_ops = {
	"object-trailer-reader", trailer_reader_process, trailer_reader_finish, trailer_reader_destroy
};

filter_t *
filter_trailer_reader_new(const char *path, object_trailer *out)
{
	trailer_reader *r = xcalloc(1, sizeof(*r));

	r->base.ops = &trailer_reader_ops;
	r->path = xstrdup(path);
	r->out = out;
	return &r->base;
}
