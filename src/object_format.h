/*
 * object_format.h — the byte layout of a repository object and the filters that write
 * and check its framing (docs/repository-format.md is the reference).
 *
 *   stored object = header | body
 *   header        = zstd skippable frame, 72 bytes: magic 0x184D2A5D (LE), size 64 (LE),
 *                   "DRBK", version, compress type, cipher, flags, chunk size, key id,
 *                   object salt, reserved zeros
 *   logical stream = compressed stream | trailer
 *   trailer       = zstd skippable frame, 56 bytes: magic 0x184D2A5E (LE), size 48 (LE),
 *                   "DRBT", plain size, SHA-256 of the plain bytes, reserved zeros
 *   body          = the logical stream as is (cipher none), or cut into authenticated
 *                   chunks (filter_crypt.h)
 *
 * The filters here only frame and check; they hold at most one header or one trailer:
 *   put:  ... compress -> trailer writer -> [encrypt] -> header writer -> storage writer
 *   get:  storage read -> header reader -> [decrypt] -> trailer reader -> decompress -> ...
 * The header reader decides the rest of the read chain: once it has parsed the header it
 * asks its callback for the filter that takes the body (the chain after the header depends
 * on the object's own compression and cipher, not on today's settings).
 *
 * Every error message names the object path given to the constructor.
 */
#ifndef DRB_OBJECT_FORMAT_H
#define DRB_OBJECT_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "filter.h"
#include "filter_hash.h"

#define OBJECT_HEADER_SIZE		72
#define OBJECT_TRAILER_SIZE		56
#define OBJECT_FORMAT_VERSION	1
#define OBJECT_KEY_ID_SIZE		8
#define OBJECT_SALT_SIZE		32
#define OBJECT_CHUNK_MIN		(4 * 1024)
#define OBJECT_CHUNK_MAX		(16 * 1024 * 1024)
#define OBJECT_CHUNK_DEFAULT	(1024 * 1024)

/* The decoded header. compress and cipher hold the enum values of repo.h. */
typedef struct object_header
{
	uint8_t		version;
	uint8_t		compress;		/* compress_type */
	uint8_t		cipher;			/* cipher_type */
	uint8_t		flags;
	uint32_t	chunk_size;		/* plain bytes per encryption chunk; 0 when unencrypted */
	uint8_t		key_id[OBJECT_KEY_ID_SIZE];	/* zero when unencrypted */
	uint8_t		salt[OBJECT_SALT_SIZE];		/* zero when unencrypted */
} object_header;

typedef struct object_trailer
{
	uint64_t	size;			/* plain bytes */
	uint8_t		sha256[32];		/* of the plain bytes */
} object_trailer;

/* Big-endian helpers shared by the object filters. */
static inline void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static inline void
be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t) (v >> 32));
	be32_put(p + 4, (uint32_t) v);
}

static inline uint64_t
be64_get(const uint8_t *p)
{
	return (uint64_t) be32_get(p) << 32 | be32_get(p + 4);
}

/* Serialise a header into exactly OBJECT_HEADER_SIZE bytes. */
void		object_header_encode(const object_header *h, uint8_t out[OBJECT_HEADER_SIZE]);

/*
 * Parse and check a header: magic ("not a drbackup object"), version ("unsupported format
 * version N"), known compress type and cipher, zero flags and reserved bytes, chunk size
 * in range for encrypted objects, zero key id/salt/chunk size for plain ones.
 * DRB_ERR_INTEGRITY naming path on failure.
 */
int			object_header_decode(const uint8_t in[OBJECT_HEADER_SIZE], const char *path,
								 object_header *out);

void		object_trailer_encode(const object_trailer *t, uint8_t out[OBJECT_TRAILER_SIZE]);
/* DRB_ERR_INTEGRITY "truncated object 'path'" when the bytes are not a valid trailer. */
int			object_trailer_decode(const uint8_t in[OBJECT_TRAILER_SIZE], const char *path,
								  object_trailer *out);

/*
 * The final check of a read: the plain bytes seen (actual) against the trailer — size,
 * then SHA-256 ("checksum mismatch: expected X, got Y") — and against expected_sha256
 * when the caller has one (e.g. from a manifest). DRB_ERR_INTEGRITY naming path.
 */
int			object_verify(const char *path, const object_trailer *trailer,
						  const hash_result *actual, const uint8_t *expected_sha256);

/*
 * Header writer: emits the header bytes (copied) before everything else, then passes the
 * body through; *stored_size counts every byte it emits (the size of the stored object).
 */
filter_t   *filter_header_writer_new(const uint8_t header[OBJECT_HEADER_SIZE],
									 uint64_t *stored_size);

/*
 * Header reader: collects and decodes the header, then calls body_chain(header, raw
 * header bytes, arg), which returns the filter that takes the body — it becomes the
 * reader's next filter (and so is freed with the reader's chain) — or NULL after
 * err_set, which fails the read. *stored_size counts every byte received.
 * An object shorter than its header fails at finish.
 */
typedef filter_t *(*object_body_chain_fn) (const object_header *header,
										   const uint8_t raw[OBJECT_HEADER_SIZE], void *arg);

filter_t   *filter_header_reader_new(const char *path, object_body_chain_fn body_chain,
									 void *arg, uint64_t *stored_size);

/*
 * Trailer writer: passes the compressed stream through and appends the trailer at finish,
 * taken from *plain — the result of the hash filter upstream, which has finished (and so
 * filled *plain) before this filter's finish runs.
 */
filter_t   *filter_trailer_writer_new(const hash_result *plain);

/*
 * Trailer reader: passes everything but the last OBJECT_TRAILER_SIZE bytes of the logical
 * stream through; at finish decodes those into *out ("truncated object" when missing or
 * invalid) before finishing the next filter, so the verify step downstream has them.
 */
filter_t   *filter_trailer_reader_new(const char *path, object_trailer *out);

#endif
