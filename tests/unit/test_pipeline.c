/*
 * test_pipeline.c — the data pipeline: repo_put_* / repo_get round trips for every
 * compression type x cipher at chunk-boundary sizes (whole buffers and odd-sized pushes),
 * the on-disk layout checked independently of the code (header, trailer, chunk nonce and
 * AAD decrypted with OpenSSL directly), `zstd -dc` / `lz4 -dc` reading plain objects,
 * tampering (flipped bits in each chunk, header and trailer, truncation, dropped and
 * swapped chunks, appended garbage, wrong passphrase, another repository's key, missing
 * encryption) each with its own error kind and message naming the object, key files
 * (scrypt parameters recorded, checksum, fallback to and repair from the copy, cipher
 * mismatch, rotation), settings checks and bounded memory with the posix driver; the
 * pre-hashed put (the caller's checksum is what the trailer records), parallel zstd
 * (who gets worker threads, one standard frame), the hash filter's staged pieces (order
 * kept while the caller reuses its buffer) and its ring (a decompressor's pieces hashed
 * in place, queued, never refilled early), and the key cache (hit without scrypt — counted
 * by keyring_test_kdf_runs —, private files, miss on another passphrase, rotation,
 * re-created repository, damaged/foreign/symlinked/other-owner entries, unusable
 * directories).
 *
 * Storage: an in-memory storage_t test double (reads are pushed in odd piece sizes to
 * exercise every filter's buffering) and, for the memory test, storage_posix.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "test_util.h"
#include "error.h"
#include "filter.h"
#include "filter_compress.h"
#include "filter_hash.h"
#include "keyring.h"
#include "mem.h"
#include "object_format.h"
#include "repo.h"
#include "storage.h"
#include "storage_posix.h"

#define TEST_CHUNK	4096
#define TEST_PASS	"correct horse battery staple"
#define OBJ			"backup/main/20261121-000000F/pg_data/base/5/16384.zst"

/* ------------------------------------------------------------------------------------ */
/* In-memory storage double                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct mem_object
{
	char	   *path;
	buf_t		data;
} mem_object;

typedef struct mem_storage
{
	storage_t	base;
	mem_object	obj[64];
	size_t		n;
	int			refs;			/* repo_close frees through storage_free: count owners */
	uint64_t	writes;			/* objects committed */
} mem_storage;

static mem_object *
mem_find(mem_storage *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->obj[i].path, path) == 0)
			return &m->obj[i];
	return NULL;
}

/* Pieces of odd sizes, so every filter sees bytes split at unexpected places. */
static const size_t piece_sizes[] = {1, 5, 71, 4096, 13, 65537, 300007, 1048579, 3, 4097};

static int
mem_read(storage_t *s, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	mem_object *o = mem_find((mem_storage *) s, path);
	size_t		pos;
	size_t		end;
	size_t		k = 0;

	if (o == NULL)
		return err_set(DRB_ERR_NOT_FOUND, "mem: object '%s' not found", path);
	pos = offset < o->data.len ? (size_t) offset : o->data.len;
	end = length == 0 || offset + length > o->data.len ? o->data.len : (size_t) (offset + length);
	while (pos < end)
	{
		size_t		n = piece_sizes[k++ % (sizeof(piece_sizes) / sizeof(piece_sizes[0]))];

		if (n > end - pos)
			n = end - pos;
		if (filter_push(sink, o->data.data + pos, n) != 0)
			return -1;
		pos += n;
	}
	return 0;
}

typedef struct mem_writer
{
	filter_t	base;
	mem_storage *m;
	char	   *path;
	buf_t		data;
} mem_writer;

static int
mem_writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	buf_append(&((mem_writer *) f)->data, in, len);
	return 0;
}

static int
mem_writer_finish(filter_t *f)
{
	mem_writer *w = (mem_writer *) f;
	mem_object *o = mem_find(w->m, w->path);

	if (o == NULL)
	{
		assert_true(w->m->n < 64);
		o = &w->m->obj[w->m->n++];
		o->path = xstrdup(w->path);
		buf_init(&o->data);
	}
	buf_free(&o->data);
	o->data = w->data;			/* the object becomes visible only now */
	buf_init(&w->data);
	w->m->writes++;
	return 0;
}

static void
mem_writer_destroy(filter_t *f)
{
	mem_writer *w = (mem_writer *) f;

	buf_free(&w->data);			/* unfinished: nothing visible */
	free(w->path);
	free(w);
}

static const filter_ops mem_writer_ops = {"mem-writer", mem_writer_process, mem_writer_finish,
mem_writer_destroy};

static filter_t *
mem_write_open(storage_t *s, const char *path)
{
	mem_writer *w = xcalloc(1, sizeof(*w));

	w->base.ops = &mem_writer_ops;
	w->m = (mem_storage *) s;
	w->path = xstrdup(path);
	buf_init(&w->data);
	return &w->base;
}

static int
mem_head(storage_t *s, const char *path, storage_info *out)
{
	mem_object *o = mem_find((mem_storage *) s, path);

	if (o == NULL)
		return err_set(DRB_ERR_NOT_FOUND, "mem: object '%s' not found", path);
	out->path = o->path;
	out->size = o->data.len;
	out->mtime = 0;
	return 0;
}

static int
mem_list(storage_t *s, const char *prefix, storage_list_cb cb, void *arg)
{
	mem_storage *m = (mem_storage *) s;

	for (size_t i = 0; i < m->n; i++)
		if (strncmp(m->obj[i].path, prefix, strlen(prefix)) == 0)
		{
			storage_info info = {m->obj[i].path, m->obj[i].data.len, 0};

			if (cb(&info, arg) != 0)
				return -1;
		}
	return 0;
}

static int
mem_remove(storage_t *s, const char *path)
{
	mem_storage *m = (mem_storage *) s;
	mem_object *o = mem_find(m, path);

	if (o)
	{
		free(o->path);
		buf_free(&o->data);
		*o = m->obj[--m->n];
	}
	return 0;
}

static int
mem_remove_many(storage_t *s, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mem_remove(s, paths[i]);
	return 0;
}

static void
mem_free(storage_t *s)
{
	mem_storage *m = (mem_storage *) s;

	if (--m->refs > 0)
		return;
	for (size_t i = 0; i < m->n; i++)
	{
		free(m->obj[i].path);
		buf_free(&m->obj[i].data);
	}
	free(m->base.description);
	free(m);
}

static const storage_ops mem_ops = {"mem", mem_read, mem_write_open, mem_head, mem_list,
mem_remove, mem_remove_many, mem_free};

static mem_storage *
mem_new(void)
{
	mem_storage *m = xcalloc(1, sizeof(*m));

	m->base.ops = &mem_ops;
	m->base.description = xstrdup("mem:test");
	m->refs = 1;
	return m;
}

/* The stored bytes of an object (to inspect or tamper with); fails the test if missing. */
static buf_t *
mem_raw(mem_storage *m, const char *path)
{
	mem_object *o = mem_find(m, path);

	assert_non_null(o);
	return &o->data;
}

static void
mem_set(mem_storage *m, const char *path, const uint8_t *data, size_t len)
{
	assert_int_equal(storage_put_buf(&m->base, path, data, len), 0);
}

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                              */
/* ------------------------------------------------------------------------------------ */

static repo_settings
settings_for(mem_storage *m, cipher_type cipher, compress_type compress, const char *pass)
{
	repo_settings s = {0};

	s.index = 1;
	s.storage = &m->base;
	s.cipher = cipher;
	s.passphrase = pass;
	s.compress = compress;
	s.compress_level = compress == COMPRESS_ZSTD ? 3 : compress == COMPRESS_GZ ? 1 : 0;
	s.chunk_size = TEST_CHUNK;
	return s;
}

/* repo_open on a shared mem storage (the repo gets its own reference). */
static repo_t *
open_with(mem_storage *m, const repo_settings *s)
{
	repo_t	   *r;

	m->refs++;
	r = repo_open(s);
	if (r == NULL)
		m->refs--;
	return r;
}

static repo_t *
create_open(mem_storage *m, cipher_type cipher, compress_type compress)
{
	repo_settings s = settings_for(m, cipher, compress, cipher ? TEST_PASS : NULL);
	repo_t	   *r;

	if (repo_create(&s) != 0)
		fail_msg("repo_create: %s", err_msg());
	r = open_with(m, &s);
	if (r == NULL)
		fail_msg("repo_open: %s", err_msg());
	return r;
}

/* Deterministic test data: random runs and repetitive runs (compressible about 2:1). */
static uint8_t *
make_data(size_t len, uint32_t seed)
{
	uint8_t    *d = xmalloc(len ? len : 1);
	uint32_t	x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++)
	{
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		d[i] = (i / 512) % 2 ? (uint8_t) ("pg_data tuple "[i % 14]) : (uint8_t) x;
	}
	return d;
}

#define assert_err(kind, ...) assert_err_impl(kind, __FILE__, __LINE__, __VA_ARGS__, NULL)

/* The current error has this kind and contains every given substring. */
static void
assert_err_impl(drb_err kind, const char *file, int line,...)
{
	va_list		ap;
	const char *sub;

	if (err_kind() != kind)
		fail_msg("%s:%d: error kind %s, expected %s: %s", file, line, err_kind_name(err_kind()),
				 err_kind_name(kind), err_msg());
	va_start(ap, line);
	while ((sub = va_arg(ap, const char *)) != NULL)
		if (strstr(err_msg(), sub) == NULL)
			fail_msg("%s:%d: error '%s' does not contain '%s'", file, line, err_msg(), sub);
	va_end(ap);
	err_clear();
}

/* Get must fail; returns after checking that nothing but an error came out. */
static void
get_fails(repo_t *r, const char *path)
{
	buf_t		out;

	buf_init(&out);
	err_clear();
	assert_int_equal(repo_get_buf(r, path, &out, NULL), -1);
	buf_free(&out);
}

static void
flip_bit(mem_storage *m, const char *path, size_t offset, int bit)
{
	buf_t	   *raw = mem_raw(m, path);

	assert_true(offset < raw->len);
	raw->data[offset] ^= (uint8_t) (1 << bit);
}

static bool
have_tool(const char *name)
{
	char	   *cmd = xasprintf("command -v %s >/dev/null 2>&1", name);
	int			rc = system(cmd);

	free(cmd);
	return rc == 0;
}

/* ------------------------------------------------------------------------------------ */
/* Memory stays bounded (first: before other tests raise the high-water mark)           */
/* ------------------------------------------------------------------------------------ */

static long
max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* The temporary directory of a test, removed by tmpdir_teardown even when the test fails. */
static char tmpdir[64];

static int
tmpdir_setup(void **state)
{
	(void) state;
	strcpy(tmpdir, "/tmp/drb-pipeline-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
tmpdir_teardown(void **state)
{
	(void) state;
	return test_rm_rf(tmpdir);
}

static void
test_memory_bounded_posix(void **state)
{
	const char *tmp = tmpdir;
	char	   *root;
	char	   *input;
	size_t		total = 160u * 1024 * 1024;
	uint8_t    *block = make_data(1024 * 1024, 7);
	repo_settings s = {0};
	repo_object_result put;
	repo_object_result got;
	filter_t   *sink;
	repo_t	   *r;
	long		before;
	int			fd;

	(void) state;
	root = xasprintf("%s/repo", tmp);
	input = xasprintf("%s/input", tmp);
	fd = open(input, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (size_t done = 0; done < total; done += 1024 * 1024)
	{
		block[done / 1024 / 1024 % 1024] ^= 0x5a;	/* no two megabytes alike */
		assert_int_equal(write(fd, block, 1024 * 1024), 1024 * 1024);
	}
	close(fd);

	s.index = 2;
	s.storage = storage_posix_new(root);
	s.cipher = CIPHER_AES_256_GCM;
	s.passphrase = TEST_PASS;
	s.compress = COMPRESS_ZSTD;
	s.compress_level = 3;
	if (repo_create(&s) != 0)
		fail_msg("repo_create: %s", err_msg());
	r = repo_open(&s);
	if (r == NULL)
		fail_msg("repo_open: %s", err_msg());

	before = max_rss_kib();
	fd = open(input, O_RDONLY);
	if (repo_put_fd(r, "big/object", fd, &put) != 0)
		fail_msg("repo_put_fd: %s", err_msg());
	close(fd);
	sink = filter_sink_null_new();
	if (repo_get(r, "big/object", sink, put.sha256, &got) != 0)
		fail_msg("repo_get: %s", err_msg());
	filter_chain_free(sink);

	assert_int_equal(put.size, total);
	assert_int_equal(got.size, total);
	assert_memory_equal(put.sha256, got.sha256, 32);
	assert_int_equal(got.stored_size, put.stored_size);
	/* a 160 MiB object through both chains: growth stays well below the object size */
	if (max_rss_kib() - before > 40 * 1024)
		fail_msg("max RSS grew by %ld KiB for a 160 MiB object", max_rss_kib() - before);

	repo_close(r);
	free(root);
	free(input);
	free(block);
}

/* ------------------------------------------------------------------------------------ */
/* Round trips                                                                          */
/* ------------------------------------------------------------------------------------ */

static void
roundtrip_one(repo_t *r, mem_storage *m, size_t len, uint32_t seed, bool streamed)
{
	uint8_t    *data = make_data(len, seed);
	uint8_t		sha[32];
	repo_object_result put = {0};
	repo_object_result got = {0};
	buf_t		out;
	char	   *path = xasprintf("rt/%zu-%u-%d", len, seed, streamed);

	sha256_buf(data, len, sha);
	if (!streamed)
		assert_int_equal(repo_put_buf(r, path, data, len, &put), 0);
	else
	{
		/* odd-sized pushes: 1, 2, 3, 5, 8, ... bytes, then large steps */
		filter_t   *head = repo_put_open(r, path, &put);
		size_t		pos = 0;
		size_t		a = 1;
		size_t		b = 2;

		assert_non_null(head);
		while (pos < len)
		{
			size_t		n = a < len - pos ? a : len - pos;

			assert_int_equal(filter_push(head, data + pos, n), 0);
			pos += n;
			b = a + b;
			a = b - a;
			if (a > 300000)
				a = 7, b = 11;
		}
		assert_int_equal(filter_finish(head), 0);
		filter_chain_free(head);
	}
	assert_int_equal(put.size, len);
	assert_memory_equal(put.sha256, sha, 32);
	assert_int_equal(put.stored_size, mem_raw(m, path)->len);

	buf_init(&out);
	if (repo_get_buf(r, path, &out, &got) != 0)
		fail_msg("get %s: %s", path, err_msg());
	assert_int_equal(out.len, len);
	if (len)
		assert_memory_equal(out.data, data, len);
	assert_int_equal(got.size, len);
	assert_memory_equal(got.sha256, sha, 32);
	assert_int_equal(got.stored_size, put.stored_size);

	/* also through repo_get with the expected checksum */
	buf_reset(&out);
	{
		filter_t   *sink = filter_sink_buf_new(&out);

		assert_int_equal(repo_get(r, path, sink, sha, NULL), 0);
		filter_chain_free(sink);
	}
	assert_int_equal(out.len, len);
	buf_free(&out);
	storage_remove(&m->base, path);
	free(path);
	free(data);
}

static void
roundtrip_matrix(cipher_type cipher)
{
	/*
	 * Plain sizes around the encryption chunk, both for the plain bytes and for the
	 * logical stream (plain + 56-byte trailer when uncompressed).
	 */
	const size_t sizes[] = {
		0, 1, TEST_CHUNK - 1, TEST_CHUNK, TEST_CHUNK + 1,
		TEST_CHUNK - OBJECT_TRAILER_SIZE - 1, TEST_CHUNK - OBJECT_TRAILER_SIZE,
		TEST_CHUNK - OBJECT_TRAILER_SIZE + 1, 2 * TEST_CHUNK - OBJECT_TRAILER_SIZE,
		7 * TEST_CHUNK + 333, 3 * 1024 * 1024 + 5,
		/* exact multiples of the codecs' 1 MiB output buffer */
		1024 * 1024, 2 * 1024 * 1024,
	};

	for (int c = COMPRESS_NONE; c <= COMPRESS_GZ; c++)
	{
		mem_storage *m = mem_new();
		repo_t	   *r = create_open(m, cipher, (compress_type) c);

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		{
			roundtrip_one(r, m, sizes[i], (uint32_t) (i + 1), false);
			roundtrip_one(r, m, sizes[i], (uint32_t) (i + 100), true);
		}
		/* and a large one */
		roundtrip_one(r, m, 20u * 1024 * 1024 + 17, 42, false);
		repo_close(r);
		mem_free(&m->base);
	}
}

static void
test_roundtrip_plain(void **state)
{
	(void) state;
	roundtrip_matrix(CIPHER_NONE);
}

static void
test_roundtrip_encrypted(void **state)
{
	(void) state;
	roundtrip_matrix(CIPHER_AES_256_GCM);
}

/* Objects are read with their own compression type, whatever today's settings say. */
static void
test_read_uses_object_compression(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_LZ4);
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_GZ, TEST_PASS);
	uint8_t    *data = make_data(100000, 3);
	buf_t		out;

	(void) state;
	assert_int_equal(repo_put_buf(r, "a", data, 100000, NULL), 0);
	repo_close(r);
	s.chunk_size = 0;			/* another chunk size too */
	r = open_with(m, &s);
	assert_non_null(r);
	buf_init(&out);
	assert_int_equal(repo_get_buf(r, "a", &out, NULL), 0);
	assert_int_equal(out.len, 100000);
	assert_memory_equal(out.data, data, 100000);
	assert_int_equal(mem_raw(m, "a")->data[13], COMPRESS_LZ4);
	buf_free(&out);
	repo_close(r);
	mem_free(&m->base);
	free(data);
}

/* A sink that keeps what it gets and counts the pieces lying in a given ring. */
typedef struct ring_sink
{
	filter_t	base;
	buf_t	   *out;
	uint8_t    *const *ring;
	int			in_ring;
	int			pieces;
} ring_sink;

static int
ring_sink_process(filter_t *f, const uint8_t *in, size_t len)
{
	ring_sink  *k = (ring_sink *) f;

	k->pieces++;
	for (int i = 0; i < HASH_RING_N; i++)
		if (in >= k->ring[i] && in + len <= k->ring[i] + HASH_STAGE_SIZE)
			k->in_ring++;
	buf_append(k->out, in, len);
	return 0;
}

static int
ring_sink_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
ring_sink_destroy(filter_t *f)
{
	free(f);
}

static const filter_ops ring_sink_ops = {"ring-sink", ring_sink_process, ring_sink_finish,
ring_sink_destroy};

/*
 * repo_get_ring: a zstd object is decoded into the caller's ring (every piece the sink
 * gets lies in it) and checked as by repo_get; an lz4 one leaves the ring unused. The
 * ring stays the caller's (freed here: ASan reports a filter that frees it too).
 */
static void
test_repo_get_ring(void **state)
{
	const size_t len = 5 * HASH_STAGE_SIZE + 12345;
	uint8_t    *data = make_data(len, 77);
	uint8_t		sha[32];
	uint8_t    *ring[HASH_RING_N];

	(void) state;
	sha256_buf(data, len, sha);
	for (int i = 0; i < HASH_RING_N; i++)
		ring[i] = xaligned_alloc(4096, HASH_STAGE_SIZE);
	for (int c = 0; c < 2; c++)
	{
		mem_storage *m = mem_new();
		repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, c == 0 ? COMPRESS_ZSTD : COMPRESS_LZ4);
		buf_t		out;
		ring_sink  *k = xcalloc(1, sizeof(*k));
		repo_object_result got = {0};
		uint8_t		bad[32];

		buf_init(&out);
		k->base.ops = &ring_sink_ops;
		k->out = &out;
		k->ring = ring;
		assert_int_equal(repo_put_buf(r, "obj", data, len, NULL), 0);
		if (repo_get_ring(r, "obj", &k->base, sha, ring, &got) != 0)
			fail_msg("repo_get_ring: %s", err_msg());
		assert_int_equal(out.len, len);
		assert_memory_equal(out.data, data, len);
		assert_memory_equal(got.sha256, sha, 32);
		assert_int_equal(k->pieces, 6);
		assert_int_equal(k->in_ring, c == 0 ? 6 : 0);
		/* a wrong expected checksum still fails */
		memcpy(bad, sha, 32);
		bad[0] ^= 1;
		buf_reset(&out);
		assert_int_equal(repo_get_ring(r, "obj", &k->base, bad, ring, NULL), -1);
		filter_chain_free(&k->base);
		buf_free(&out);
		repo_close(r);
		mem_free(&m->base);
	}
	for (int i = 0; i < HASH_RING_N; i++)
		free(ring[i]);
	free(data);
}

/* repo_put_fd: small files (plain reads) and large ones (read-ahead), and read errors. */
static void
test_put_fd_paths(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	const size_t sizes[] = {100000, 5u * 1024 * 1024 + 3};
	const char *dir = tmpdir;

	(void) state;
	for (size_t i = 0; i < 2; i++)
	{
		uint8_t    *data = make_data(sizes[i], (uint32_t) (20 + i));
		char	   *file = xasprintf("%s/f%zu", dir, i);
		repo_object_result res;
		uint8_t		sha[32];
		buf_t		out;
		int			fd = open(file, O_CREAT | O_WRONLY | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, sizes[i]), (ssize_t) sizes[i]);

		/* a descriptor open for writing only: reads fail, nothing becomes visible */
		err_clear();
		assert_int_equal(repo_put_fd(r, "fd/obj", fd, NULL), -1);
		assert_err(DRB_ERR_STORAGE, "unable to read the input of 'fd/obj'");
		assert_null(mem_find(m, "fd/obj"));
		close(fd);

		fd = open(file, O_RDONLY);
		assert_int_equal(repo_put_fd(r, "fd/obj", fd, &res), 0);
		close(fd);
		sha256_buf(data, sizes[i], sha);
		assert_int_equal(res.size, sizes[i]);
		assert_memory_equal(res.sha256, sha, 32);
		buf_init(&out);
		assert_int_equal(repo_get_buf(r, "fd/obj", &out, NULL), 0);
		assert_int_equal(out.len, sizes[i]);
		assert_memory_equal(out.data, data, sizes[i]);
		buf_free(&out);
		storage_remove(&m->base, "fd/obj");
		unlink(file);
		free(file);
		free(data);
	}
	repo_close(r);
	mem_free(&m->base);
}

/* An aborted put (chain freed without finish) leaves nothing behind. */
static void
test_put_abort_leaves_nothing(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	filter_t   *head = repo_put_open(r, "aborted", NULL);
	uint8_t    *data = make_data(50000, 9);

	(void) state;
	assert_non_null(head);
	assert_int_equal(filter_push(head, data, 50000), 0);
	filter_chain_free(head);
	assert_null(mem_find(m, "aborted"));
	get_fails(r, "aborted");
	assert_err(DRB_ERR_NOT_FOUND, "aborted", "repository 1");
	repo_close(r);
	mem_free(&m->base);
	free(data);
}

/* ------------------------------------------------------------------------------------ */
/* Layout, checked independently of the implementation                                  */
/* ------------------------------------------------------------------------------------ */

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
test_layout_plain(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_NONE, COMPRESS_NONE);
	uint8_t    *data = make_data(1000, 5);
	uint8_t		sha[32];
	buf_t	   *raw;
	const uint8_t *t;

	(void) state;
	assert_int_equal(repo_put_buf(r, OBJ, data, 1000, NULL), 0);
	raw = mem_raw(m, OBJ);
	assert_int_equal(raw->len, 72 + 1000 + 56);
	assert_int_equal(le32(raw->data), 0x184D2A5D);
	assert_int_equal(le32(raw->data + 4), 64);
	assert_memory_equal(raw->data + 8, "DRBK", 4);
	assert_int_equal(raw->data[12], 1);		/* version */
	assert_int_equal(raw->data[13], 0);		/* compress none */
	assert_int_equal(raw->data[14], 0);		/* cipher none */
	assert_int_equal(raw->data[15], 0);		/* flags */
	for (int i = 16; i < 72; i++)
		assert_int_equal(raw->data[i], 0);	/* chunk size, key id, salt, reserved */
	assert_memory_equal(raw->data + 72, data, 1000);
	t = raw->data + 72 + 1000;
	sha256_buf(data, 1000, sha);
	assert_int_equal(le32(t), 0x184D2A5E);
	assert_int_equal(le32(t + 4), 48);
	assert_memory_equal(t + 8, "DRBT", 4);
	assert_int_equal(be64_get(t + 12), 1000);
	assert_memory_equal(t + 20, sha, 32);
	for (int i = 52; i < 56; i++)
		assert_int_equal(t[i], 0);
	repo_close(r);
	mem_free(&m->base);
	free(data);
}

/* Decrypt one stored chunk with OpenSSL directly, following the documented scheme. */
static bool
spec_decrypt_chunk(const uint8_t data_key[32], const uint8_t *object, uint64_t index,
				   const uint8_t *stored, uint8_t *plain)
{
	uint8_t		okey[32];
	uint8_t		nonce[12] = {0};
	uint8_t		aad[72 + 8 + 4];
	uint32_t	word = be32_get(stored);
	int			len = (int) (word & 0x7fffffff);
	EVP_KDF    *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	OSSL_PARAM	p[5];
	int			n;
	bool		ok;

	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) data_key, 32);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) (object + 28), 32);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, "drbackup object v1", 18);
	p[4] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(kctx, okey, 32, p), 1);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);

	be64_put(nonce + 4, index);
	memcpy(aad, object, 72);
	be64_put(aad + 72, index);
	memcpy(aad + 80, stored, 4);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
		EVP_DecryptInit_ex(c, NULL, NULL, okey, nonce) == 1 &&
		EVP_DecryptUpdate(c, NULL, &n, aad, sizeof(aad)) == 1 &&
		EVP_DecryptUpdate(c, plain, &n, stored + 4, len) == 1 &&
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *) (stored + 4 + len)) == 1 &&
		EVP_DecryptFinal_ex(c, plain + len, &n) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok;
}

static void
test_layout_encrypted(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_NONE);
	size_t		len = 2 * TEST_CHUNK + 100;	/* logical: 2 full chunks + 156 bytes */
	uint8_t    *data = make_data(len, 6);
	buf_t	   *raw;
	buf_t	   *keyfile;
	keyring_t  *k;
	uint8_t		plain[TEST_CHUNK];
	const uint8_t *c0;
	const uint8_t *c2;
	size_t		stride = 4 + TEST_CHUNK + 16;

	(void) state;
	assert_int_equal(repo_put_buf(r, OBJ, data, len, NULL), 0);
	raw = mem_raw(m, OBJ);
	keyfile = mem_raw(m, "drbackup.repo");
	k = keyring_open((const char *) keyfile->data, keyfile->len, TEST_PASS, "kf", "repository 1");
	assert_non_null(k);

	assert_int_equal(raw->data[14], 1);		/* cipher aes-256-gcm */
	assert_int_equal(be32_get(raw->data + 16), TEST_CHUNK);
	assert_memory_equal(raw->data + 20, k->key_id, 8);
	assert_int_equal(raw->len, 72 + 2 * stride + 4 + 156 + 16);

	c0 = raw->data + 72;
	assert_int_equal(be32_get(c0), TEST_CHUNK);	/* not final */
	assert_true(spec_decrypt_chunk(k->data_key, raw->data, 0, c0, plain));
	assert_memory_equal(plain, data, TEST_CHUNK);
	/* the same chunk does not authenticate at another index */
	assert_false(spec_decrypt_chunk(k->data_key, raw->data, 1, c0, plain));

	c2 = raw->data + 72 + 2 * stride;
	assert_int_equal(be32_get(c2), 0x80000000u | 156);	/* final */
	assert_true(spec_decrypt_chunk(k->data_key, raw->data, 2, c2, plain));
	assert_memory_equal(plain, data + 2 * TEST_CHUNK, 100);
	assert_memory_equal(plain + 100, "\x5e\x2a\x4d\x18\x30\0\0\0DRBT", 12);	/* trailer */

	keyring_free(k);
	repo_close(r);
	mem_free(&m->base);
	free(data);
}

/* A plain zstd / lz4 object is a valid .zst / .lz4 file for the command-line tools. */
static void
cli_decodes(compress_type type, const char *tool, size_t len)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_NONE, type);
	uint8_t    *data = make_data(len, 8);
	const char *dir = tmpdir;
	char	   *obj;
	char	   *cmd;
	buf_t	   *raw;
	uint8_t    *back = xmalloc(len + 1);
	FILE	   *fp;
	size_t		n;

	assert_int_equal(repo_put_buf(r, "x", data, len, NULL), 0);
	raw = mem_raw(m, "x");
	obj = xasprintf("%s/object", dir);
	fp = fopen(obj, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(raw->data, 1, raw->len, fp), raw->len);
	fclose(fp);
	cmd = xasprintf("%s -dcq < %s", tool, obj);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	n = fread(back, 1, len + 1, fp);
	assert_int_equal(pclose(fp), 0);
	assert_int_equal(n, len);
	assert_memory_equal(back, data, len);
	unlink(obj);
	free(cmd);
	free(obj);
	free(back);
	free(data);
	repo_close(r);
	mem_free(&m->base);
}

static void
test_cli_reads_plain_objects(void **state)
{
	(void) state;
	if (!have_tool("zstd") || !have_tool("lz4"))
		skip();
	cli_decodes(COMPRESS_ZSTD, "zstd", 3 * 1024 * 1024 + 11);
	/* large enough for parallel zstd: still one standard frame for the CLI */
	cli_decodes(COMPRESS_ZSTD, "zstd", COMPRESS_PARALLEL_MIN + 5 * 1024 * 1024 + 7);
	cli_decodes(COMPRESS_LZ4, "lz4", 3 * 1024 * 1024 + 11);
}

/* ------------------------------------------------------------------------------------ */
/* Tampering with encrypted objects                                                     */
/* ------------------------------------------------------------------------------------ */

/*
 * An encrypted, uncompressed object of 5 chunks: chunks 0..3 full (4096 plain bytes),
 * chunk 4 final with 1056 bytes (1000 data + 56 trailer). Offsets are exact.
 */
#define STRIDE		(4 + TEST_CHUNK + 16)
#define CHUNK_AT(i) (72 + (size_t) (i) * STRIDE)
#define T_LEN		(4 * TEST_CHUNK + 1000)

typedef struct tamper_fixture
{
	mem_storage *m;
	repo_t	   *r;
	uint8_t    *data;
	buf_t		pristine;
} tamper_fixture;

static int
tamper_setup(void **state)
{
	tamper_fixture *t = xcalloc(1, sizeof(*t));
	buf_t	   *raw;

	t->m = mem_new();
	t->r = create_open(t->m, CIPHER_AES_256_GCM, COMPRESS_NONE);
	t->data = make_data(T_LEN, 11);
	assert_int_equal(repo_put_buf(t->r, OBJ, t->data, T_LEN, NULL), 0);
	raw = mem_raw(t->m, OBJ);
	assert_int_equal(raw->len, CHUNK_AT(4) + 4 + 1056 + 16);
	buf_init(&t->pristine);
	buf_append(&t->pristine, raw->data, raw->len);
	*state = t;
	err_clear();
	return 0;
}

static int
tamper_teardown(void **state)
{
	tamper_fixture *t = *state;

	buf_free(&t->pristine);
	repo_close(t->r);
	mem_free(&t->m->base);
	free(t->data);
	free(t);
	return 0;
}

/* Put back the untouched object and check it still reads (the tamper was the cause). */
static void
restore_and_check(tamper_fixture *t)
{
	buf_t		out;

	mem_set(t->m, OBJ, t->pristine.data, t->pristine.len);
	buf_init(&out);
	assert_int_equal(repo_get_buf(t->r, OBJ, &out, NULL), 0);
	assert_int_equal(out.len, T_LEN);
	buf_free(&out);
}

static void
test_tamper_flip_in_chunks(void **state)
{
	tamper_fixture *t = *state;

	flip_bit(t->m, OBJ, CHUNK_AT(0) + 4 + 10, 0);		/* first chunk, ciphertext */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 0");
	restore_and_check(t);

	flip_bit(t->m, OBJ, CHUNK_AT(2) + 4 + 2000, 7);	/* middle chunk */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 2 (the chunk was modified");
	restore_and_check(t);

	flip_bit(t->m, OBJ, CHUNK_AT(4) + 4 + 1055, 3);	/* final chunk, last byte */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 4");
	restore_and_check(t);

	flip_bit(t->m, OBJ, CHUNK_AT(1) + 4 + TEST_CHUNK + 15, 1);	/* a tag */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 1");
	restore_and_check(t);
}

static void
test_tamper_length_words(void **state)
{
	tamper_fixture *t = *state;

	flip_bit(t->m, OBJ, CHUNK_AT(1) + 3, 0);			/* length 4097 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "chunk 1 has length 4097, more than the chunk size 4096");
	restore_and_check(t);

	flip_bit(t->m, OBJ, CHUNK_AT(1) + 2, 4);			/* length 0, not final */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "non-final chunk 1 has length 0, expected 4096");
	restore_and_check(t);

	flip_bit(t->m, OBJ, CHUNK_AT(1), 7);				/* final flag set on chunk 1 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 1");
	restore_and_check(t);
}

static void
test_tamper_header(void **state)
{
	tamper_fixture *t = *state;

	flip_bit(t->m, OBJ, 0, 0);							/* skippable frame magic */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is not a drbackup object");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 9, 2);							/* "DRBK" */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is not a drbackup object");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 12, 1);							/* version 1 -> 3 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "unsupported format version 3");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 40, 4);							/* salt */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "authentication failed in chunk 0 (the chunk or the object header");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 65, 0);							/* reserved */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "header is damaged (non-zero flags or reserved bytes)");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 16, 0);							/* chunk size 16 MiB + 4096 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "chunk size 16781312 is outside 4 KiB..16 MiB");
	restore_and_check(t);

	flip_bit(t->m, OBJ, 13, 3);							/* compress type 8 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "unknown compression type 8");
	restore_and_check(t);
}

static void
truncate_to(tamper_fixture *t, size_t len)
{
	mem_set(t->m, OBJ, t->pristine.data, len);
}

static void
test_tamper_truncation(void **state)
{
	tamper_fixture *t = *state;

	truncate_to(t, CHUNK_AT(3));					/* after chunk 2 */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated after chunk 2 (no final chunk)");

	truncate_to(t, CHUNK_AT(4));					/* the final chunk dropped */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated after chunk 3 (no final chunk)");

	truncate_to(t, CHUNK_AT(3) + 1000);				/* mid-chunk */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated inside chunk 3 (1000 of its 4116 bytes");

	truncate_to(t, CHUNK_AT(4) + 2);				/* inside a length word */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated inside the length word of chunk 4");

	truncate_to(t, t->pristine.len - 1);			/* the last tag byte */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated inside chunk 4");

	truncate_to(t, 72);								/* header only */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is truncated after the header");

	truncate_to(t, 40);								/* inside the header */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "truncated object", "only 40 bytes of its 72-byte header");

	truncate_to(t, 0);								/* empty */
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "is not a drbackup object (0 bytes");
	restore_and_check(t);
}

static void
test_tamper_dropped_and_swapped_chunks(void **state)
{
	tamper_fixture *t = *state;
	buf_t		b;

	/* drop chunk 1 */
	buf_init(&b);
	buf_append(&b, t->pristine.data, CHUNK_AT(1));
	buf_append(&b, t->pristine.data + CHUNK_AT(2), t->pristine.len - CHUNK_AT(2));
	mem_set(t->m, OBJ, b.data, b.len);
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ,
			   "chunk 1 is out of order (it authenticates as chunk 2): chunks dropped or reordered");

	/* swap chunks 2 and 3 */
	buf_reset(&b);
	buf_append(&b, t->pristine.data, CHUNK_AT(2));
	buf_append(&b, t->pristine.data + CHUNK_AT(3), STRIDE);
	buf_append(&b, t->pristine.data + CHUNK_AT(2), STRIDE);
	buf_append(&b, t->pristine.data + CHUNK_AT(4), t->pristine.len - CHUNK_AT(4));
	mem_set(t->m, OBJ, b.data, b.len);
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "chunk 2 is out of order (it authenticates as chunk 3)");

	/* chunk 0 repeated in place of chunk 1: authenticates at an earlier index */
	buf_reset(&b);
	buf_append(&b, t->pristine.data, CHUNK_AT(1));
	buf_append(&b, t->pristine.data + CHUNK_AT(0), STRIDE);
	buf_append(&b, t->pristine.data + CHUNK_AT(2), t->pristine.len - CHUNK_AT(2));
	mem_set(t->m, OBJ, b.data, b.len);
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "chunk 1 is out of order (it authenticates as chunk 0)");

	/* garbage after the final chunk */
	buf_reset(&b);
	buf_append(&b, t->pristine.data, t->pristine.len);
	buf_append(&b, "garbage", 7);
	mem_set(t->m, OBJ, b.data, b.len);
	get_fails(t->r, OBJ);
	assert_err(DRB_ERR_INTEGRITY, OBJ, "data after the final chunk 4");

	buf_free(&b);
	restore_and_check(t);
}

static void
test_wrong_key_or_cipher(void **state)
{
	tamper_fixture *t = *state;
	mem_storage *other = mem_new();
	repo_t	   *r2 = create_open(other, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	repo_t	   *plain;
	mem_storage *pm = mem_new();
	buf_t	   *raw;
	char		id2[17];
	char		id1[17];
	repo_settings s = settings_for(t->m, CIPHER_AES_256_GCM, COMPRESS_NONE, "not the passphrase");

	/* wrong passphrase */
	err_clear();
	assert_null(open_with(t->m, &s));
	assert_err(DRB_ERR_CRYPTO, "wrong passphrase for repository 1");

	/* an object written under another repository's key */
	assert_int_equal(repo_put_buf(r2, "foreign", t->data, 5000, NULL), 0);
	raw = mem_raw(other, "foreign");
	mem_set(t->m, "foreign", raw->data, raw->len);
	get_fails(t->r, "foreign");
	hex_encode(raw->data + 20, 8, id2);
	hex_encode(mem_raw(t->m, OBJ)->data + 20, 8, id1);
	assert_err(DRB_ERR_CRYPTO, "object 'foreign' is encrypted with key", id2,
			   "but the repository key is", id1);

	/* an unencrypted object slipped into an encrypted repository */
	plain = create_open(pm, CIPHER_NONE, COMPRESS_ZSTD);
	assert_int_equal(repo_put_buf(plain, "unsealed", t->data, 5000, NULL), 0);
	raw = mem_raw(pm, "unsealed");
	mem_set(t->m, "unsealed", raw->data, raw->len);
	get_fails(t->r, "unsealed");
	assert_err(DRB_ERR_CRYPTO, "object 'unsealed' is not encrypted but repository 1 is");

	/* and an encrypted one in a plain repository */
	raw = mem_raw(t->m, OBJ);
	mem_set(pm, OBJ, raw->data, raw->len);
	get_fails(plain, OBJ);
	assert_err(DRB_ERR_CRYPTO, OBJ, "is encrypted (cipher aes-256-gcm) but repository 1 has no key");

	/* missing object: not found passes through */
	get_fails(t->r, "no/such/object");
	assert_err(DRB_ERR_NOT_FOUND, "no/such/object");

	repo_close(r2);
	repo_close(plain);
	mem_free(&other->base);
	mem_free(&pm->base);
}

/* ------------------------------------------------------------------------------------ */
/* Tampering with plain-text objects                                                    */
/* ------------------------------------------------------------------------------------ */

static void
test_tamper_plain(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *rn = create_open(m, CIPHER_NONE, COMPRESS_NONE);
	repo_t	   *rz;
	uint8_t    *data = make_data(10000, 12);
	uint8_t		sha[32];
	uint8_t		bad[32];
	char		sha_hex[65];
	char		bad_hex[65];
	buf_t	   *raw;
	size_t		tr;
	repo_settings s = settings_for(m, CIPHER_NONE, COMPRESS_ZSTD, NULL);
	filter_t   *sink;
	buf_t		out;

	(void) state;
	sha256_buf(data, 10000, sha);
	hex_encode(sha, 32, sha_hex);
	assert_int_equal(repo_put_buf(rn, "n", data, 10000, NULL), 0);
	tr = 72 + 10000;			/* trailer offset */

	/* a flipped bit in the (uncompressed) data */
	flip_bit(m, "n", 72 + 5000, 0);
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "object 'n'", "checksum mismatch: expected", sha_hex);
	flip_bit(m, "n", 72 + 5000, 0);

	/* a flipped bit in the trailer's checksum */
	flip_bit(m, "n", tr + 20, 0);
	memcpy(bad, sha, 32);
	bad[0] ^= 1;
	hex_encode(bad, 32, bad_hex);
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "object 'n'", "checksum mismatch: expected", bad_hex, "got", sha_hex);
	flip_bit(m, "n", tr + 20, 0);

	/* in the trailer's size */
	flip_bit(m, "n", tr + 19, 0);
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "object 'n'", "size mismatch: the trailer records 10001 bytes");
	flip_bit(m, "n", tr + 19, 0);

	/* in the trailer's magic */
	flip_bit(m, "n", tr + 1, 0);
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "truncated object 'n': no valid trailer");
	flip_bit(m, "n", tr + 1, 0);

	/* truncated */
	raw = mem_raw(m, "n");
	raw->len -= 10;
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "truncated object 'n'");
	raw = mem_raw(m, "n");
	raw->len = 72 + 30;
	get_fails(rn, "n");
	assert_err(DRB_ERR_INTEGRITY, "truncated object 'n'", "only 30 bytes");
	raw->len = 72 + 10000 + 56;
	buf_init(&out);
	assert_int_equal(repo_get_buf(rn, "n", &out, NULL), 0);
	buf_free(&out);

	/* the caller's expected checksum */
	memcpy(bad, sha, 32);
	bad[31] ^= 0x80;
	buf_init(&out);
	sink = filter_sink_buf_new(&out);
	assert_int_equal(repo_get(rn, "n", sink, bad, NULL), -1);
	filter_chain_free(sink);
	buf_free(&out);
	assert_err(DRB_ERR_INTEGRITY, "object 'n'", "checksum mismatch against the caller's record");

	/* zstd: damaged frame magic; and a frame cut short before an intact trailer */
	rz = open_with(m, &s);
	assert_non_null(rz);
	assert_int_equal(repo_put_buf(rz, "z", data, 10000, NULL), 0);
	flip_bit(m, "z", 72, 0);
	get_fails(rz, "z");
	assert_err(DRB_ERR_INTEGRITY, "object 'z': corrupt compressed data (zstd:");
	flip_bit(m, "z", 72, 0);
	assert_int_equal(repo_get_buf(rz, "z", &out, NULL), 0);
	assert_int_equal(out.len, 10000);
	buf_free(&out);
	repo_close(rz);
	repo_close(rn);
	mem_free(&m->base);
	free(data);
}

/* For each codec: the compressed stream cut short, the trailer intact. */
static void
test_compressed_stream_cut(void **state)
{
	uint8_t    *data = make_data(200000, 13);

	(void) state;
	for (int c = COMPRESS_ZSTD; c <= COMPRESS_GZ; c++)
	{
		mem_storage *m = mem_new();
		repo_t	   *r = create_open(m, CIPHER_NONE, (compress_type) c);
		buf_t	   *raw;
		buf_t		cut;

		assert_int_equal(repo_put_buf(r, "c", data, 200000, NULL), 0);
		raw = mem_raw(m, "c");
		buf_init(&cut);
		buf_append(&cut, raw->data, raw->len - 56 - 5);
		buf_append(&cut, raw->data + raw->len - 56, 56);
		mem_set(m, "c", cut.data, cut.len);
		get_fails(r, "c");
		assert_err(DRB_ERR_INTEGRITY, "object 'c': corrupt compressed data",
				   compress_type_name((compress_type) c));

		/* no compressed stream at all */
		buf_reset(&cut);
		buf_append(&cut, raw->data, 72);
		buf_append(&cut, raw->data + raw->len - 56, 56);
		mem_set(m, "c", cut.data, cut.len);
		get_fails(r, "c");
		assert_err(DRB_ERR_INTEGRITY, "object 'c': corrupt compressed data", "no compressed frame");
		buf_free(&cut);
		repo_close(r);
		mem_free(&m->base);
	}
	free(data);
}

/* ------------------------------------------------------------------------------------ */
/* Key files                                                                            */
/* ------------------------------------------------------------------------------------ */

static json_t *
load_json(mem_storage *m, const char *name)
{
	buf_t	   *raw = mem_raw(m, name);
	json_t	   *j = json_loadb((const char *) raw->data, raw->len, 0, NULL);

	assert_non_null(j);
	return j;
}

static void
test_key_file_default_scrypt(void **state)
{
	mem_storage *m = mem_new();
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD, TEST_PASS);
	json_t	   *j;
	json_t	   *kdf;
	buf_t	   *main_raw;
	buf_t	   *copy_raw;
	repo_t	   *r;
	keyring_info info;

	(void) state;
	keyring_test_set_scrypt_n(0);	/* the production default, once */
	assert_int_equal(repo_create(&s), 0);
	keyring_test_set_scrypt_n(1024);

	j = load_json(m, "drbackup.repo");
	kdf = json_object_get(j, "kdf");
	assert_int_equal(json_integer_value(json_object_get(j, "format")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "cipher")), "aes-256-gcm");
	assert_string_equal(json_string_value(json_object_get(kdf, "name")), "scrypt");
	assert_true(json_integer_value(json_object_get(kdf, "N")) >= 32768);
	assert_int_equal(json_integer_value(json_object_get(kdf, "r")), 8);
	assert_int_equal(json_integer_value(json_object_get(kdf, "p")), 1);
	assert_int_equal(strlen(json_string_value(json_object_get(kdf, "salt"))), 64);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "key-id"))), 16);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "checksum"))), 64);
	{
		char	   *text = json_dumps(j, 0);

		assert_null(strstr(text, TEST_PASS));
		free(text);
	}
	json_decref(j);

	main_raw = mem_raw(m, "drbackup.repo");
	copy_raw = mem_raw(m, "drbackup.repo.copy");
	assert_int_equal(main_raw->len, copy_raw->len);
	assert_memory_equal(main_raw->data, copy_raw->data, main_raw->len);
	assert_int_equal(keyring_inspect((const char *) main_raw->data, main_raw->len, "kf", &info), 0);
	assert_int_equal(info.scrypt_n, 32768);

	r = open_with(m, &s);
	assert_non_null(r);
	repo_close(r);
	mem_free(&m->base);
}

/* The key id is the first 8 bytes of SHA-256("drbackup key id" || data key). */
static void
test_key_id_definition(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_NONE);
	buf_t	   *raw = mem_raw(m, "drbackup.repo");
	keyring_t  *k = keyring_open((const char *) raw->data, raw->len, TEST_PASS, "kf", "r");
	uint8_t		in[15 + 32];
	uint8_t		digest[32];
	char		hex[17];
	json_t	   *j = load_json(m, "drbackup.repo");

	(void) state;
	assert_non_null(k);
	memcpy(in, "drbackup key id", 15);
	memcpy(in + 15, k->data_key, 32);
	sha256_buf(in, sizeof(in), digest);
	assert_memory_equal(k->key_id, digest, 8);
	hex_encode(digest, 8, hex);
	assert_string_equal(json_string_value(json_object_get(j, "key-id")), hex);
	json_decref(j);
	keyring_free(k);
	repo_close(r);
	mem_free(&m->base);
}

static void
test_key_file_damage_and_copy(void **state)
{
	mem_storage *m = mem_new();
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD, TEST_PASS);
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	uint8_t    *data = make_data(30000, 14);
	buf_t		good;
	buf_t	   *raw;
	buf_t		out;
	char	   *p;

	(void) state;
	assert_int_equal(repo_put_buf(r, "obj", data, 30000, NULL), 0);
	repo_close(r);
	buf_init(&good);
	raw = mem_raw(m, "drbackup.repo");
	buf_append(&good, raw->data, raw->len);

	/* damage the main file: still valid JSON, a changed value -> checksum mismatch */
	p = strstr((char *) buf_cstr(raw), "\"r\": 8");
	assert_non_null(p);
	p[5] = '4';
	r = open_with(m, &s);
	if (r == NULL)
		fail_msg("open with damaged main file: %s", err_msg());
	buf_init(&out);
	assert_int_equal(repo_get_buf(r, "obj", &out, NULL), 0);
	assert_int_equal(out.len, 30000);
	repo_close(r);

	/* repo_create repairs it from the copy */
	assert_int_equal(repo_create(&s), 0);
	raw = mem_raw(m, "drbackup.repo");
	assert_int_equal(raw->len, good.len);
	assert_memory_equal(raw->data, good.data, good.len);

	/* main missing: the copy is used, repo_create restores the main */
	storage_remove(&m->base, "drbackup.repo");
	r = open_with(m, &s);
	assert_non_null(r);
	repo_close(r);
	assert_int_equal(repo_create(&s), 0);
	assert_memory_equal(mem_raw(m, "drbackup.repo")->data, good.data, good.len);

	/* copy damaged (not JSON): main still opens, repo_create rewrites the copy */
	raw = mem_raw(m, "drbackup.repo.copy");
	raw->data[0] = 'x';
	r = open_with(m, &s);
	assert_non_null(r);
	repo_close(r);
	assert_int_equal(repo_create(&s), 0);
	assert_memory_equal(mem_raw(m, "drbackup.repo.copy")->data, good.data, good.len);

	/* both damaged */
	mem_raw(m, "drbackup.repo")->data[0] = 'x';
	mem_raw(m, "drbackup.repo.copy")->len -= 20;
	err_clear();
	assert_null(open_with(m, &s));
	assert_err(DRB_ERR_INTEGRITY, "repository 1 (mem:test)", "key file 'drbackup.repo' is damaged");

	/* both gone: not initialised */
	storage_remove(&m->base, "drbackup.repo");
	storage_remove(&m->base, "drbackup.repo.copy");
	assert_null(open_with(m, &s));
	assert_err(DRB_ERR_NOT_FOUND, "repository 1 (mem:test) is not initialised");

	/* ... and a location holding objects is not re-initialised with a new key */
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_STANZA, "has no drbackup.repo but is not empty", "'obj'");
	assert_null(mem_find(m, "drbackup.repo"));

	buf_free(&good);
	buf_free(&out);
	free(data);
	mem_free(&m->base);
}

static void
test_cipher_mismatch(void **state)
{
	mem_storage *enc = mem_new();
	mem_storage *pl = mem_new();
	repo_settings s;
	repo_t	   *r;
	json_t	   *j;

	(void) state;
	r = create_open(enc, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	repo_close(r);
	s = settings_for(enc, CIPHER_NONE, COMPRESS_ZSTD, NULL);
	assert_null(open_with(enc, &s));
	assert_err(DRB_ERR_CONFIG, "repository 1 is encrypted but repo1-cipher-type=none");
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CONFIG, "repository 1 is encrypted but repo1-cipher-type=none");

	r = create_open(pl, CIPHER_NONE, COMPRESS_ZSTD);
	repo_close(r);
	j = load_json(pl, "drbackup.repo");
	assert_string_equal(json_string_value(json_object_get(j, "cipher")), "none");
	assert_int_equal(json_integer_value(json_object_get(j, "format")), 1);
	assert_null(json_object_get(j, "wrapped-key"));
	json_decref(j);
	s = settings_for(pl, CIPHER_AES_256_GCM, COMPRESS_ZSTD, TEST_PASS);
	assert_null(open_with(pl, &s));
	assert_err(DRB_ERR_CONFIG, "repository 1 is not encrypted but repo1-cipher-type=aes-256-gcm");

	/* repo_create on an initialised repository: wrong passphrase refused, right one fine */
	s = settings_for(enc, CIPHER_AES_256_GCM, COMPRESS_ZSTD, "guess");
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CRYPTO, "wrong passphrase for repository 1");
	s.passphrase = TEST_PASS;
	assert_int_equal(repo_create(&s), 0);

	mem_free(&enc->base);
	mem_free(&pl->base);
}

static void
test_key_rotate(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_GZ);
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_GZ, TEST_PASS);
	uint8_t    *data = make_data(70000, 15);
	buf_t		before;
	buf_t		out;
	json_t	   *j1;
	json_t	   *j2;

	(void) state;
	assert_int_equal(repo_put_buf(r, "kept", data, 70000, NULL), 0);
	repo_close(r);
	buf_init(&before);
	buf_append(&before, mem_raw(m, "kept")->data, mem_raw(m, "kept")->len);
	j1 = load_json(m, "drbackup.repo");

	assert_int_equal(repo_key_rotate(&s, "new passphrase"), 0);
	j2 = load_json(m, "drbackup.repo");
	assert_string_equal(json_string_value(json_object_get(j1, "key-id")),
						json_string_value(json_object_get(j2, "key-id")));
	assert_string_not_equal(json_string_value(json_object_get(json_object_get(j1, "kdf"), "salt")),
							json_string_value(json_object_get(json_object_get(j2, "kdf"), "salt")));
	assert_memory_equal(mem_raw(m, "drbackup.repo")->data, mem_raw(m, "drbackup.repo.copy")->data,
						mem_raw(m, "drbackup.repo")->len);
	/* the object was not rewritten */
	assert_memory_equal(mem_raw(m, "kept")->data, before.data, before.len);

	assert_null(open_with(m, &s));
	assert_err(DRB_ERR_CRYPTO, "wrong passphrase for repository 1");
	s.passphrase = "new passphrase";
	r = open_with(m, &s);
	assert_non_null(r);
	buf_init(&out);
	assert_int_equal(repo_get_buf(r, "kept", &out, NULL), 0);
	assert_int_equal(out.len, 70000);
	assert_memory_equal(out.data, data, 70000);
	repo_close(r);

	/* an interrupted rotation (main new, copy old): both passphrases still open it */
	{
		char	   *old_text;
		buf_t	   *main_raw = mem_raw(m, "drbackup.repo");

		old_text = keyring_rewrap((const char *) main_raw->data, main_raw->len, "new passphrase",
								  TEST_PASS, "kf", "repository 1");
		assert_non_null(old_text);
		mem_set(m, "drbackup.repo.copy", (const uint8_t *) old_text, strlen(old_text));
		free(old_text);
		s.passphrase = TEST_PASS;
		r = open_with(m, &s);
		assert_non_null(r);
		repo_close(r);
		s.passphrase = "new passphrase";
		r = open_with(m, &s);
		assert_non_null(r);
		repo_close(r);
	}

	json_decref(j1);
	json_decref(j2);
	buf_free(&before);
	buf_free(&out);
	free(data);
	mem_free(&m->base);
}

static void
test_settings_checked(void **state)
{
	mem_storage *m = mem_new();
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD, TEST_PASS);

	(void) state;
	s.chunk_size = 1000;
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CONFIG, "chunk size 1000 is outside 4 KiB..16 MiB");
	s.chunk_size = 32u * 1024 * 1024;
	assert_null(repo_open(&s));
	assert_err(DRB_ERR_CONFIG, "outside 4 KiB..16 MiB");
	s.chunk_size = 0;
	s.compress_level = 20;
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CONFIG, "compress-level=20 is not valid for compress-type=zstd (allowed 1..19)");
	s.compress = COMPRESS_GZ;
	s.compress_level = 10;
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CONFIG, "compress-type=gz (allowed 0..9)");
	s.compress_level = 9;
	s.passphrase = "";
	assert_int_equal(repo_create(&s), -1);
	assert_err(DRB_ERR_CONFIG, "repo1-cipher-type=aes-256-gcm needs repo1-cipher-pass");
	assert_int_equal(m->writes, 0);
	mem_free(&m->base);

	assert_int_equal(compress_type_parse("lz4"), COMPRESS_LZ4);
	assert_int_equal(compress_type_parse("bzip2"), -1);
	assert_int_equal(cipher_type_parse("aes-256-gcm"), CIPHER_AES_256_GCM);
	assert_string_equal(cipher_type_name(CIPHER_NONE), "none");
}

/* The hash filter's check runs before the sink is finished. */
typedef struct finish_probe
{
	filter_t	base;
	bool		finished;
} finish_probe;

static int
probe_process(filter_t *f, const uint8_t *in, size_t len)
{
	(void) f;
	(void) in;
	(void) len;
	return 0;
}

static int
probe_finish(filter_t *f)
{
	((finish_probe *) f)->finished = true;
	return 0;
}

static void
probe_destroy(filter_t *f)
{
	(void) f;
}

static const filter_ops probe_ops = {"probe", probe_process, probe_finish, probe_destroy};

static void
test_sink_not_finished_on_failure(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	uint8_t    *data = make_data(300000, 16);
	finish_probe probe = {{&probe_ops, NULL}, false};
	uint8_t		bad[32] = {0};

	(void) state;
	assert_int_equal(repo_put_buf(r, "p", data, 300000, NULL), 0);
	assert_int_equal(repo_get(r, "p", &probe.base, bad, NULL), -1);
	assert_false(probe.finished);
	assert_err(DRB_ERR_INTEGRITY, "checksum mismatch against the caller's record");
	assert_int_equal(repo_get(r, "p", &probe.base, NULL, NULL), 0);
	assert_true(probe.finished);
	repo_close(r);
	mem_free(&m->base);
	free(data);
}

/* ------------------------------------------------------------------------------------ */
/* Pre-hashed put, parallel compression, the hash filter's staging                      */
/* ------------------------------------------------------------------------------------ */

static void
test_put_buf_hashed(void **state)
{
	mem_storage *m = mem_new();
	repo_t	   *r = create_open(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD);
	const size_t sizes[] = {0, 300000, COMPRESS_PARALLEL_MIN + 1024 * 1024 + 3};

	(void) state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		uint8_t    *data = make_data(sizes[i], (uint32_t) (40 + i));
		uint8_t		sha[32];
		repo_object_result put;
		repo_object_result got;
		buf_t		out;

		sha256_buf(data, sizes[i], sha);
		assert_int_equal(repo_put_buf_hashed(r, "h", data, sizes[i], sha, &put), 0);
		assert_int_equal(put.size, sizes[i]);
		assert_memory_equal(put.sha256, sha, 32);
		assert_int_equal(put.stored_size, mem_raw(m, "h")->len);
		buf_init(&out);
		{
			filter_t   *sink = filter_sink_buf_new(&out);

			if (repo_get(r, "h", sink, sha, &got) != 0)
				fail_msg("get: %s", err_msg());
			filter_chain_free(sink);
		}
		assert_int_equal(out.len, sizes[i]);
		if (sizes[i])
			assert_memory_equal(out.data, data, sizes[i]);
		assert_memory_equal(got.sha256, sha, 32);
		buf_free(&out);
		free(data);
	}

	/*
	 * The caller's checksum is what the trailer records, not a second hash of the bytes:
	 * a wrong one is stored as given, and reading the object then detects the mismatch.
	 */
	{
		uint8_t    *data = make_data(200000, 44);
		uint8_t		sha[32];
		repo_object_result put;

		sha256_buf(data, 200000, sha);
		sha[0] ^= 1;
		assert_int_equal(repo_put_buf_hashed(r, "wrong", data, 200000, sha, &put), 0);
		assert_memory_equal(put.sha256, sha, 32);
		get_fails(r, "wrong");
		assert_err(DRB_ERR_INTEGRITY, "'wrong'", "checksum mismatch");
		free(data);
	}
	repo_close(r);
	mem_free(&m->base);
}

/* Does this libzstd accept worker threads at all? */
static bool
zstd_has_threads(void)
{
	ZSTD_CCtx  *c = ZSTD_createCCtx();
	bool		ok = !ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, 2));

	ZSTD_freeCCtx(c);
	return ok;
}

static void
test_compress_parallel(void **state)
{
	int			expect = zstd_has_threads() && sysconf(_SC_NPROCESSORS_ONLN) >= 2
		? COMPRESS_PARALLEL_WORKERS : 0;
	size_t		len = 2 * COMPRESS_PARALLEL_MIN + 333;
	uint8_t    *data = make_data(len, 45);
	const size_t pieces[] = {7 * 1024 * 1024, 1, 65536, 3 * 1024 * 1024 + 5};
	filter_t   *f;
	buf_t		out;
	buf_t		back;
	uint8_t    *plain;
	size_t		pos = 0;

	(void) state;
	/* who gets worker threads */
	f = filter_compress_new_sized(COMPRESS_ZSTD, 3, COMPRESS_PARALLEL_MIN);
	assert_int_equal(filter_compress_workers(f), expect);
	filter_chain_free(f);
	f = filter_compress_new_sized(COMPRESS_ZSTD, 3, COMPRESS_PARALLEL_MIN - 1);
	assert_int_equal(filter_compress_workers(f), 0);
	filter_chain_free(f);
	f = filter_compress_new(COMPRESS_ZSTD, 3);
	assert_int_equal(filter_compress_workers(f), 0);
	filter_chain_free(f);
	for (int t = COMPRESS_NONE; t <= COMPRESS_GZ; t++)
	{
		if (t == COMPRESS_ZSTD)
			continue;
		f = filter_compress_new_sized((compress_type) t, t == COMPRESS_GZ ? 1 : 0, len);
		assert_int_equal(filter_compress_workers(f), 0);
		filter_chain_free(f);
	}
	f = filter_decompress_new(COMPRESS_ZSTD, "x");
	assert_int_equal(filter_compress_workers(f), 0);
	filter_chain_free(f);

	/* a parallel stream, pushed in uneven pieces: one standard frame with the bytes */
	buf_init(&out);
	f = filter_compress_new_sized(COMPRESS_ZSTD, 3, len);
	assert_int_equal(filter_compress_workers(f), expect);
	f->next = filter_sink_buf_new(&out);
	for (size_t k = 0; pos < len; k++)
	{
		size_t		n = pieces[k % 4] < len - pos ? pieces[k % 4] : len - pos;

		assert_int_equal(filter_push(f, data + pos, n), 0);
		pos += n;
	}
	assert_int_equal(filter_finish(f), 0);
	filter_chain_free(f);
	assert_true(out.len < len);
	assert_int_equal(ZSTD_findFrameCompressedSize(out.data, out.len), out.len);
	plain = xmalloc(len);
	assert_int_equal(ZSTD_decompress(plain, len, out.data, out.len), len);
	assert_memory_equal(plain, data, len);

	/* and our own decompressor reads it */
	buf_init(&back);
	f = filter_decompress_new(COMPRESS_ZSTD, "x");
	f->next = filter_sink_buf_new(&back);
	assert_int_equal(filter_push(f, out.data, out.len), 0);
	assert_int_equal(filter_finish(f), 0);
	filter_chain_free(f);
	assert_int_equal(back.len, len);
	assert_memory_equal(back.data, data, len);

	buf_free(&back);
	buf_free(&out);
	free(plain);
	free(data);
}

/*
 * The hash filter hashes small pushes inline, pieces up to HASH_STAGE_SIZE from its own
 * copy after process() returned, larger pushes in place: mixed in one stream the digest
 * is still that of the bytes in order, even though the caller scribbles over its buffer
 * as soon as each push returns.
 */
static void
test_hash_filter_staging(void **state)
{
	const size_t pieces[] = {100, HASH_THREAD_MIN, HASH_STAGE_SIZE, HASH_STAGE_SIZE - 1,
		3 * HASH_STAGE_SIZE + 17, 5, HASH_THREAD_MIN - 1, 300000, HASH_STAGE_SIZE + 1};
	size_t		len = 0;
	uint8_t    *data;
	uint8_t    *scratch = xmalloc(4 * HASH_STAGE_SIZE);
	uint8_t		sha[32];
	hash_result res;
	buf_t		out;
	filter_t   *h;
	size_t		pos = 0;

	(void) state;
	for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		len += pieces[i];
	data = make_data(len, 46);
	sha256_buf(data, len, sha);

	for (int round = 0; round < 2; round++)
	{
		buf_init(&out);
		h = filter_hash_new(&res, NULL, NULL);
		h->next = filter_sink_buf_new(&out);
		pos = 0;
		for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		{
			memcpy(scratch, data + pos, pieces[i]);
			assert_int_equal(filter_push(h, scratch, pieces[i]), 0);
			memset(scratch, 0xAA, pieces[i]);	/* the caller's buffer is reused at once */
			pos += pieces[i];
		}
		if (round == 0)
		{
			assert_int_equal(filter_finish(h), 0);
			assert_true(res.done);
			assert_int_equal(res.size, len);
			assert_memory_equal(res.sha256, sha, 32);
			assert_int_equal(out.len, len);
			assert_memory_equal(out.data, data, len);
		}
		/* round 1: freed while the last staged piece may still be hashed */
		filter_chain_free(h);
		buf_free(&out);
	}
	free(scratch);
	free(data);
}

/* A sink that fails on its fail_at-th push (counting from 1), after keeping the bytes. */
typedef struct failing_sink
{
	filter_t	base;
	buf_t	   *out;
	int			pushes;
	int			fail_at;
} failing_sink;

static int
failing_process(filter_t *f, const uint8_t *in, size_t len)
{
	failing_sink *k = (failing_sink *) f;

	if (++k->pushes == k->fail_at)
		return err_set(DRB_ERR_STORAGE, "sink failed on purpose");
	buf_append(k->out, in, len);
	return 0;
}

static int
failing_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
failing_destroy(filter_t *f)
{
	free(f);
}

static const filter_ops failing_ops = {"failing", failing_process, failing_finish, failing_destroy};

static filter_t *
failing_sink_new(buf_t *out, int fail_at)
{
	failing_sink *k = xcalloc(1, sizeof(*k));

	k->base.ops = &failing_ops;
	k->out = out;
	k->fail_at = fail_at;
	return &k->base;
}

/*
 * A zstd decompressor writing into the hash filter's ring (what repo_get builds): pieces
 * are hashed in place, several queued, while the next are decompressed. Data that
 * decompresses much faster than it hashes (long runs, each MiB different) keeps the queue
 * full, so a buffer refilled while still queued would change the digest or the bytes.
 * Sizes around the ring's piece size; then a sink failing mid-stream, the chain freed
 * with jobs queued (the sanitizer run catches a helper reading freed memory).
 */
static void
test_hash_ring_in_place(void **state)
{
	const size_t sizes[] = {0, 100, HASH_THREAD_MIN + 3, HASH_STAGE_SIZE,
		HASH_RING_N * HASH_STAGE_SIZE + 1, 37 * HASH_STAGE_SIZE + 4321};

	(void) state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		size_t		len = sizes[i];
		uint8_t    *data = xmalloc(len + 1);
		uint8_t		sha[32];
		size_t		bound = ZSTD_compressBound(len);
		uint8_t    *z = xmalloc(bound);
		size_t		zlen;

		for (size_t j = 0; j < len; j++)
			data[j] = (uint8_t) ((j >> 20) * 31 + ((j & 0xFFFF) == 0 ? j >> 16 : 0));
		sha256_buf(data, len, sha);
		zlen = ZSTD_compress(z, bound, data, len, 3);
		assert_false(ZSTD_isError(zlen));

		for (int fail_at = 0; fail_at <= (len > 3 * HASH_STAGE_SIZE ? 3 : 0); fail_at += 3)
		{
			hash_result res;
			buf_t		out;
			filter_t   *d = filter_decompress_new(COMPRESS_ZSTD, "ring-test");
			filter_t   *h = filter_hash_new(&res, NULL, NULL);
			int			rc = 0;

			buf_init(&out);
			assert_true(filter_decompress_use_buffers(d, filter_hash_ring(h), HASH_RING_N));
			d->next = h;
			h->next = fail_at ? failing_sink_new(&out, fail_at) : filter_sink_buf_new(&out);
			/* compressed input in small pushes: many decompressed pieces per push */
			for (size_t pos = 0; pos < zlen && rc == 0; pos += 4096)
				rc = filter_push(d, z + pos, zlen - pos < 4096 ? zlen - pos : 4096);
			if (rc == 0)
				rc = filter_finish(d);
			if (fail_at == 0)
			{
				assert_int_equal(rc, 0);
				assert_int_equal(res.size, len);
				assert_memory_equal(res.sha256, sha, 32);
				assert_int_equal(out.len, len);
				if (len > 0)
					assert_memory_equal(out.data, data, len);
			}
			else
			{
				assert_int_equal(rc, -1);
				assert_string_equal(err_msg(), "sink failed on purpose");
			}
			filter_chain_free(d);
			buf_free(&out);
		}
		free(z);
		free(data);
	}
	/* only zstd decompressors take lent buffers */
	{
		hash_result res;
		filter_t   *h = filter_hash_new(&res, NULL, NULL);
		filter_t   *d = filter_decompress_new(COMPRESS_LZ4, "ring-test");
		filter_t   *c = filter_compress_new(COMPRESS_ZSTD, 3);

		assert_false(filter_decompress_use_buffers(d, filter_hash_ring(h), HASH_RING_N));
		assert_false(filter_decompress_use_buffers(c, filter_hash_ring(h), HASH_RING_N));
		filter_chain_free(d);
		filter_chain_free(c);
		filter_chain_free(h);
	}
}

/* ------------------------------------------------------------------------------------ */
/* Key cache                                                                            */
/* ------------------------------------------------------------------------------------ */

/* The single entry of a cache directory (the test fails unless there is exactly one). */
static char *
cache_entry(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char	   *found = NULL;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (found)
			fail_msg("more than one entry in %s: %s and %s", dir, found, de->d_name);
		found = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (found == NULL)
		fail_msg("no entry in %s", dir);
	return found;
}

static size_t
count_entries(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	size_t		n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
read_file(const char *path, buf_t *out)
{
	FILE	   *fp = fopen(path, "rb");
	uint8_t		b[4096];
	size_t		n;

	assert_non_null(fp);
	buf_reset(out);
	while ((n = fread(b, 1, sizeof(b), fp)) > 0)
		buf_append(out, b, n);
	fclose(fp);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int			fd;

	unlink(path);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * Open (expecting success or failure) and return how many scrypt derivations it took:
 * 0 means the key came from the cache.
 */
static uint64_t
open_kdf_runs(mem_storage *m, const repo_settings *s, bool expect_ok)
{
	uint64_t	before = keyring_test_kdf_runs();
	repo_t	   *r = open_with(m, s);

	if (expect_ok && r == NULL)
		fail_msg("repo_open: %s", err_msg());
	if (!expect_ok && r != NULL)
		fail_msg("repo_open succeeded, expected a failure");
	repo_close(r);
	return keyring_test_kdf_runs() - before;
}

static repo_settings
cached_settings(mem_storage *m, const char *pass, const char *dir)
{
	repo_settings s = settings_for(m, CIPHER_AES_256_GCM, COMPRESS_ZSTD, pass);

	s.key_cache_dir = dir;
	return s;
}

static void
test_key_cache_hit(void **state)
{
	mem_storage *m = mem_new();
	char	   *dir = xasprintf("%s/spool/keys", tmpdir);
	repo_settings s = cached_settings(m, TEST_PASS, dir);
	uint8_t    *data = make_data(50000, 47);
	buf_t		entry;
	buf_t		out;
	buf_t	   *kf;
	keyring_t  *k;
	char	   *file;
	char	   *spool;
	struct stat st;
	repo_t	   *r;

	(void) state;
	assert_int_equal(repo_create(&s), 0);
	spool = xasprintf("%s/spool", tmpdir);
	assert_int_equal(mkdir(spool, 0750), 0);	/* the spool path exists; keys/ does not */
	assert_int_equal(open_kdf_runs(m, &s, true), 1);	/* miss: scrypt, entry written */
	assert_int_equal(open_kdf_runs(m, &s, true), 0);	/* hit */
	assert_int_equal(open_kdf_runs(m, &s, true), 0);

	/* the directories and the entry are private */
	file = cache_entry(dir);
	assert_int_equal(lstat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(lstat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 140);

	/* neither the data key nor the passphrase is in it in clear */
	buf_init(&entry);
	read_file(file, &entry);
	kf = mem_raw(m, "drbackup.repo");
	k = keyring_open((const char *) kf->data, kf->len, TEST_PASS, "kf", "r");
	assert_non_null(k);
	assert_null(memmem(entry.data, entry.len, k->data_key, KEYRING_KEY_SIZE));
	assert_null(memmem(entry.data, entry.len, TEST_PASS, strlen(TEST_PASS)));
	assert_memory_equal(entry.data, "DRBKEYC1", 8);
	assert_memory_equal(entry.data + 72, k->key_id, KEYRING_KEY_ID_SIZE);

	/* a key from the cache decrypts what a key from scrypt encrypted, and back */
	r = open_with(m, &s);
	assert_non_null(r);
	assert_int_equal(repo_put_buf(r, "obj", data, 50000, NULL), 0);
	repo_close(r);
	{
		repo_settings plain = s;

		plain.key_cache_dir = NULL;	/* no cache configured: scrypt every time */
		assert_int_equal(open_kdf_runs(m, &plain, true), 1);
		r = open_with(m, &plain);
		buf_init(&out);
		assert_int_equal(repo_get_buf(r, "obj", &out, NULL), 0);
		assert_int_equal(out.len, 50000);
		assert_memory_equal(out.data, data, 50000);
		repo_close(r);
		buf_free(&out);
	}

	/* another repository index over the same location has its own entry */
	s.index = 2;
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(open_kdf_runs(m, &s, true), 0);
	assert_int_equal(count_entries(dir), 2);

	keyring_free(k);
	buf_free(&entry);
	free(file);
	free(spool);
	free(dir);
	free(data);
	mem_free(&m->base);
}

/* Another passphrase is never answered from the cache; rotation makes the entry stale. */
static void
test_key_cache_passphrase_change(void **state)
{
	mem_storage *m = mem_new();
	char	   *dir = xasprintf("%s/keys", tmpdir);
	repo_settings s = cached_settings(m, TEST_PASS, dir);
	repo_settings wrong = cached_settings(m, "not the passphrase", dir);
	repo_settings rotated = cached_settings(m, "rotated passphrase", dir);
	buf_t		before;
	buf_t		after;
	char	   *file;

	(void) state;
	assert_int_equal(repo_create(&s), 0);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	file = cache_entry(dir);
	buf_init(&before);
	buf_init(&after);
	read_file(file, &before);

	/* a wrong passphrase: scrypt runs and refuses; the entry is left as it was */
	assert_true(open_kdf_runs(m, &wrong, false) >= 1);
	assert_err(DRB_ERR_CRYPTO, "wrong passphrase for repository 1");
	read_file(file, &after);
	assert_int_equal(after.len, before.len);
	assert_memory_equal(after.data, before.data, before.len);
	assert_int_equal(open_kdf_runs(m, &s, true), 0);

	/* rotation: the key file changes, so the entry is stale for either passphrase */
	assert_int_equal(repo_key_rotate(&s, "rotated passphrase"), 0);
	assert_int_equal(open_kdf_runs(m, &rotated, true), 1);
	assert_int_equal(open_kdf_runs(m, &rotated, true), 0);
	assert_true(open_kdf_runs(m, &s, false) >= 1);
	assert_err(DRB_ERR_CRYPTO, "wrong passphrase for repository 1");
	assert_int_equal(open_kdf_runs(m, &rotated, true), 0);

	buf_free(&before);
	buf_free(&after);
	free(file);
	free(dir);
	mem_free(&m->base);
}

/* A repository created again (new data key, same passphrase) never gets the old key. */
static void
test_key_cache_key_file_recreated(void **state)
{
	mem_storage *m = mem_new();
	char	   *dir = xasprintf("%s/keys", tmpdir);
	repo_settings s = cached_settings(m, TEST_PASS, dir);
	uint8_t    *data = make_data(20000, 48);
	uint8_t		old_id[8];
	buf_t		old_obj;
	buf_t		old_entry;
	char	   *file;
	repo_t	   *r;

	(void) state;
	assert_int_equal(repo_create(&s), 0);
	r = open_with(m, &s);
	assert_non_null(r);
	assert_int_equal(repo_put_buf(r, "obj", data, 20000, NULL), 0);
	repo_close(r);
	buf_init(&old_obj);
	buf_append(&old_obj, mem_raw(m, "obj")->data, mem_raw(m, "obj")->len);
	memcpy(old_id, old_obj.data + 20, 8);
	file = cache_entry(dir);
	buf_init(&old_entry);
	read_file(file, &old_entry);

	/* wipe the location and initialise it again */
	storage_remove(&m->base, "obj");
	storage_remove(&m->base, "drbackup.repo");
	storage_remove(&m->base, "drbackup.repo.copy");
	assert_int_equal(repo_create(&s), 0);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);	/* stale entry: miss */
	assert_int_equal(open_kdf_runs(m, &s, true), 0);

	r = open_with(m, &s);
	assert_int_equal(repo_put_buf(r, "new", data, 20000, NULL), 0);
	assert_memory_not_equal(mem_raw(m, "new")->data + 20, old_id, 8);
	/* an object under the old key is refused: the old key is gone */
	mem_set(m, "old", old_obj.data, old_obj.len);
	get_fails(r, "old");
	assert_err(DRB_ERR_CRYPTO, "is encrypted with key");
	repo_close(r);

	/* the old entry put back is still only a miss */
	write_file(file, old_entry.data, old_entry.len, 0600);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(open_kdf_runs(m, &s, true), 0);

	buf_free(&old_obj);
	buf_free(&old_entry);
	free(file);
	free(dir);
	free(data);
	mem_free(&m->base);
}

/* Damaged or foreign entries are ignored (scrypt runs) and replaced by a good one. */
static void
test_key_cache_damaged_or_foreign(void **state)
{
	mem_storage *m = mem_new();
	mem_storage *other = mem_new();
	char	   *dir = xasprintf("%s/keys", tmpdir);
	repo_settings s = cached_settings(m, TEST_PASS, dir);
	repo_settings so = cached_settings(other, TEST_PASS, dir);
	char	   *decoy = xasprintf("%s/decoy", tmpdir);
	char	   *file;
	char	   *other_file = NULL;
	buf_t		good;
	buf_t		bad;
	buf_t		now;
	struct stat st;

	(void) state;
	assert_int_equal(repo_create(&s), 0);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	file = cache_entry(dir);
	buf_init(&good);
	buf_init(&bad);
	buf_init(&now);
	read_file(file, &good);

	for (int damage = 0; damage < 7; damage++)
	{
		buf_reset(&bad);
		buf_append(&bad, good.data, good.len);
		switch (damage)
		{
			case 0:				/* a flipped bit in the wrapped key */
				bad.data[100] ^= 0x10;
				write_file(file, bad.data, bad.len, 0600);
				break;
			case 1:				/* a flipped bit in the tag */
				bad.data[130] ^= 0x01;
				write_file(file, bad.data, bad.len, 0600);
				break;
			case 2:				/* truncated */
				write_file(file, bad.data, 100, 0600);
				break;
			case 3:				/* not an entry at all */
				memcpy(bad.data, "XXXXXXXX", 8);
				write_file(file, bad.data, bad.len, 0600);
				break;
			case 4:				/* readable by others: not trusted */
				write_file(file, good.data, good.len, 0644);
				break;
			case 5:				/* a symbolic link: not followed, target untouched */
				write_file(decoy, good.data, good.len, 0600);
				unlink(file);
				assert_int_equal(symlink(decoy, file), 0);
				break;
			case 6:				/* another repository's entry under this name */
				{
					char	   *files[2];

					assert_int_equal(repo_create(&so), 0);
					so.index = 1;
					/* the other repository has another description: give it one */
					free(other->base.description);
					other->base.description = xstrdup("mem:other");
					assert_int_equal(open_kdf_runs(other, &so, true), 1);
					assert_int_equal(count_entries(dir), 2);
					{
						DIR		   *d = opendir(dir);
						struct dirent *de;
						int			n = 0;

						while ((de = readdir(d)) != NULL)
							if (de->d_name[0] != '.')
								files[n++] = xasprintf("%s/%s", dir, de->d_name);
						closedir(d);
					}
					other_file = strcmp(files[0], file) == 0 ? files[1] : files[0];
					free(strcmp(files[0], file) == 0 ? files[0] : files[1]);
					read_file(other_file, &bad);
					write_file(file, bad.data, bad.len, 0600);
					break;
				}
		}
		if (open_kdf_runs(m, &s, true) != 1)
			fail_msg("damage %d: the entry was used", damage);
		/* rewritten: a private regular file that hits next time */
		assert_int_equal(lstat(file, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(st.st_size, 140);
		if (open_kdf_runs(m, &s, true) != 0)
			fail_msg("damage %d: the entry was not rewritten", damage);
		if (damage == 5)
		{
			read_file(decoy, &now);
			assert_int_equal(now.len, good.len);
			assert_memory_equal(now.data, good.data, good.len);
		}
	}

	/* owned by another user (only root can arrange that) */
	if (geteuid() == 0)
	{
		assert_int_equal(chown(file, 65534, 65534), 0);
		assert_int_equal(open_kdf_runs(m, &s, true), 1);
		assert_int_equal(lstat(file, &st), 0);
		assert_int_equal(st.st_uid, 0);
		assert_int_equal(open_kdf_runs(m, &s, true), 0);
	}

	buf_free(&good);
	buf_free(&bad);
	buf_free(&now);
	free(other_file);
	free(file);
	free(decoy);
	free(dir);
	mem_free(&m->base);
	mem_free(&other->base);
}

/* A cache that cannot be used or written is skipped silently: opening still works. */
static void
test_key_cache_unusable_dir(void **state)
{
	mem_storage *m = mem_new();
	repo_settings s = cached_settings(m, TEST_PASS, "/dev/null/keys");
	char	   *open_dir = xasprintf("%s/open", tmpdir);
	char	   *foreign_dir = xasprintf("%s/foreign", tmpdir);
	char	   *nospool = xasprintf("%s/nospool", tmpdir);
	char	   *nospool_keys = xasprintf("%s/nospool/keys", tmpdir);
	char	   *file_parent = xasprintf("%s/file", tmpdir);
	char	   *file_keys = xasprintf("%s/file/keys", tmpdir);
	struct stat st;

	(void) state;
	assert_int_equal(repo_create(&s), 0);

	/* cannot be created (the parent is not a directory) */
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	write_file(file_parent, "x", 1, 0600);
	s.key_cache_dir = file_keys;
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);

	/* a directory others can write to is not used */
	assert_int_equal(mkdir(open_dir, 0700), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	s.key_cache_dir = open_dir;
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(count_entries(open_dir), 0);

	/* a directory of another user (root can arrange that; root can write anywhere) */
	if (geteuid() == 0)
	{
		assert_int_equal(mkdir(foreign_dir, 0700), 0);
		assert_int_equal(chown(foreign_dir, 65534, 65534), 0);
		s.key_cache_dir = foreign_dir;
		assert_int_equal(open_kdf_runs(m, &s, true), 1);
		assert_int_equal(open_kdf_runs(m, &s, true), 1);
		assert_int_equal(count_entries(foreign_dir), 0);
	}

	/*
	 * A missing spool directory: root does not create it (it would lock the PostgreSQL
	 * user out); another user creates both levels, private.
	 */
	s.key_cache_dir = nospool_keys;
	if (geteuid() == 0)
	{
		assert_int_equal(open_kdf_runs(m, &s, true), 1);
		assert_int_equal(lstat(nospool, &st), -1);
		assert_int_equal(open_kdf_runs(m, &s, true), 1);
		/* an existing spool directory of ours: the key directory is created in it */
		assert_int_equal(mkdir(nospool, 0750), 0);
	}
	assert_int_equal(open_kdf_runs(m, &s, true), 1);
	assert_int_equal(lstat(nospool_keys, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(open_kdf_runs(m, &s, true), 0);

	free(open_dir);
	free(foreign_dir);
	free(nospool);
	free(nospool_keys);
	free(file_parent);
	free(file_keys);
	mem_free(&m->base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory_bounded_posix, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_roundtrip_plain),
		cmocka_unit_test(test_roundtrip_encrypted),
		cmocka_unit_test(test_read_uses_object_compression),
		cmocka_unit_test_setup_teardown(test_put_fd_paths, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_put_abort_leaves_nothing),
		cmocka_unit_test(test_layout_plain),
		cmocka_unit_test(test_layout_encrypted),
		cmocka_unit_test_setup_teardown(test_cli_reads_plain_objects, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_flip_in_chunks, tamper_setup, tamper_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_length_words, tamper_setup, tamper_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_header, tamper_setup, tamper_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_truncation, tamper_setup, tamper_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_dropped_and_swapped_chunks, tamper_setup,
										tamper_teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_or_cipher, tamper_setup, tamper_teardown),
		cmocka_unit_test(test_tamper_plain),
		cmocka_unit_test(test_compressed_stream_cut),
		cmocka_unit_test(test_key_file_default_scrypt),
		cmocka_unit_test(test_key_id_definition),
		cmocka_unit_test(test_key_file_damage_and_copy),
		cmocka_unit_test(test_cipher_mismatch),
		cmocka_unit_test(test_key_rotate),
		cmocka_unit_test(test_settings_checked),
		cmocka_unit_test(test_sink_not_finished_on_failure),
		cmocka_unit_test(test_put_buf_hashed),
		cmocka_unit_test(test_compress_parallel),
		cmocka_unit_test(test_hash_filter_staging),
		cmocka_unit_test(test_hash_ring_in_place),
		cmocka_unit_test(test_repo_get_ring),
		cmocka_unit_test_setup_teardown(test_key_cache_hit, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_key_cache_passphrase_change, tmpdir_setup,
										tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_key_cache_key_file_recreated, tmpdir_setup,
										tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_key_cache_damaged_or_foreign, tmpdir_setup,
										tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_key_cache_unusable_dir, tmpdir_setup,
										tmpdir_teardown),
	};

	keyring_test_set_scrypt_n(1024);	/* fast key files; one test uses the default */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
