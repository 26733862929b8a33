/*
 * test_storage_posix.c — the posix driver against the storage.h contract: round trip,
 * ranged reads and their piece size, missing objects, abort and failed finish leave
 * nothing behind, overwrite, list (prefix, byte order, temp files hidden, early stop),
 * head, remove and remove_many, path validation; and the O_DIRECT writer restore uses
 * for large files (direct_io.h): byte-exact files at buffer-boundary sizes from odd-sized
 * writes, around the page cache where the file system allows it, and a write error
 * reported rather than swallowed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "direct_io.h"
#include "error.h"
#include "filter.h"
#include "mem.h"
#include "storage.h"
#include "storage_posix.h"

typedef struct fixture
{
	char		tmp[64];		/* temp directory */
	char	   *root;			/* tmp/repo, not created up front */
	storage_t  *s;
} fixture;

static int
setup(void **state)
{
	fixture    *f = xcalloc(1, sizeof(*f));

	strcpy(f->tmp, "/tmp/drb-posix-XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	f->root = xasprintf("%s/repo", f->tmp);
	f->s = storage_posix_new(f->root);
	if (f->s == NULL)
		return -1;
	*state = f;
	err_clear();
	return 0;
}

static int
teardown(void **state)
{
	fixture    *f = *state;

	storage_free(f->s);
	test_rm_rf(f->tmp);
	free(f->root);
	free(f);
	return 0;
}

static char *
disk_path(fixture *f, const char *rel)
{
	return xasprintf("%s/%s", f->root, rel);
}

static bool
exists(fixture *f, const char *rel)
{
	char	   *p = disk_path(f, rel);
	struct stat st;
	bool		r = stat(p, &st) == 0;

	free(p);
	return r;
}

/* Number of entries in a directory whose names contain needle (NULL: all). */
static int
count_entries(const char *dir, const char *needle)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (needle == NULL || strstr(de->d_name, needle))
			n++;
	}
	closedir(d);
	return n;
}

static uint8_t *
pattern(size_t n)
{
	uint8_t    *p = xmalloc(n);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t) (i * 7 + i / 251);
	return p;
}

static void
put(fixture *f, const char *path, const char *text)
{
	assert_int_equal(storage_put_buf(f->s, path, text, strlen(text)), 0);
}

/* Read [offset, offset+length) into a fresh buffer; returns the rc. */
static int
read_range(fixture *f, const char *path, uint64_t offset, uint64_t length, buf_t *out)
{
	filter_t   *sink = filter_sink_buf_new(out);
	int			rc = storage_read(f->s, path, offset, length, sink);

	filter_chain_free(sink);
	return rc;
}

/* --- a sink recording the size of every push --- */
typedef struct piece_sink
{
	filter_t	base;
	size_t		pushes;
	size_t		largest;
	size_t		total;
} piece_sink;

static int
piece_process(filter_t *f, const uint8_t *in, size_t len)
{
	piece_sink *p = (piece_sink *) f;

	(void) in;
	p->pushes++;
	p->total += len;
	if (len > p->largest)
		p->largest = len;
	return 0;
}

static int
piece_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
piece_destroy(filter_t *f)
{
	(void) f;
}

static const filter_ops piece_ops = {"pieces", piece_process, piece_finish, piece_destroy};

/* ------------------------------------------------------------------------------------- */

static void
test_round_trip(void **state)
{
	fixture    *f = *state;
	size_t		n = 600 * 1024 + 17;
	uint8_t    *data = pattern(n);
	buf_t		out;
	struct stat st;
	char	   *file;
	char	   *dir;

	assert_false(exists(f, ""));	/* the root is created by the first write */
	assert_int_equal(storage_put_buf(f->s, "a/b/c.bin", data, n), 0);

	buf_init(&out);
	assert_int_equal(read_range(f, "a/b/c.bin", 0, 0, &out), 0);
	assert_int_equal(out.len, n);
	assert_memory_equal(out.data, data, n);
	buf_free(&out);

	/* nothing but the object in its directory, created 0640 under a 022 umask */
	dir = disk_path(f, "a/b");
	assert_int_equal(count_entries(dir, NULL), 1);
	file = disk_path(f, "a/b/c.bin");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640 & ~(mode_t) 022);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	free(file);
	free(dir);

	/* an empty object */
	assert_int_equal(storage_put_buf(f->s, "empty", "", 0), 0);
	buf_init(&out);
	assert_int_equal(read_range(f, "empty", 0, 0, &out), 0);
	assert_int_equal(out.len, 0);
	buf_free(&out);
	free(data);
}

static void
test_read_pieces(void **state)
{
	fixture    *f = *state;
	size_t		n = 600 * 1024;
	uint8_t    *data = pattern(n);
	piece_sink	sink = {{&piece_ops, NULL}, 0, 0, 0};

	assert_int_equal(storage_put_buf(f->s, "big", data, n), 0);
	assert_int_equal(storage_read(f->s, "big", 0, 0, &sink.base), 0);
	assert_int_equal(sink.total, n);
	assert_int_equal(sink.largest, 256 * 1024);
	assert_int_equal(sink.pushes, 3);	/* 256 + 256 + 88 KiB */
	free(data);
}

static void
test_read_range(void **state)
{
	fixture    *f = *state;
	size_t		n = 300 * 1024;
	uint8_t    *data = pattern(n);
	buf_t		out;

	assert_int_equal(storage_put_buf(f->s, "r", data, n), 0);

	buf_init(&out);
	assert_int_equal(read_range(f, "r", 10, 5, &out), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.data, data + 10, 5);

	/* offset only: to the end, across a piece boundary */
	buf_reset(&out);
	assert_int_equal(read_range(f, "r", 1000, 0, &out), 0);
	assert_int_equal(out.len, n - 1000);
	assert_memory_equal(out.data, data + 1000, n - 1000);

	/* a range running past the end stops at the end */
	buf_reset(&out);
	assert_int_equal(read_range(f, "r", n - 3, 100, &out), 0);
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.data, data + n - 3, 3);

	/* at the end: nothing; past the end: an error naming the file */
	buf_reset(&out);
	assert_int_equal(read_range(f, "r", n, 0, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(read_range(f, "r", n + 1, 0, &out), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "/repo/r"));
	assert_non_null(strstr(err_msg(), "offset"));
	buf_free(&out);
	free(data);
}

static void
test_missing(void **state)
{
	fixture    *f = *state;
	buf_t		out;
	storage_info info;

	buf_init(&out);
	assert_int_equal(read_range(f, "no/such/object", 0, 0, &out), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_non_null(strstr(err_msg(), "no/such/object"));
	assert_int_equal(storage_head(f->s, "nothing", &info), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);

	/* through a file, or naming a directory: missing as well */
	put(f, "file", "x");
	put(f, "dir/obj", "y");
	assert_int_equal(read_range(f, "file/below", 0, 0, &out), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_int_equal(read_range(f, "dir", 0, 0, &out), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_int_equal(storage_head(f->s, "dir", &info), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_int_equal(out.len, 0);
	buf_free(&out);
}

static void
test_abort_leaves_nothing(void **state)
{
	fixture    *f = *state;
	filter_t   *w;
	char	   *dir;

	w = storage_write_open(f->s, "x/obj");
	assert_non_null(w);
	assert_int_equal(filter_push(w, "partial", 7), 0);
	dir = disk_path(f, "x");
	assert_int_equal(count_entries(dir, ".drbtmp."), 1);	/* it was being written */
	assert_false(exists(f, "x/obj"));
	filter_chain_free(w);		/* no finish: abort */
	assert_false(exists(f, "x/obj"));
	assert_int_equal(count_entries(dir, NULL), 0);

	/* aborting an overwrite keeps the old object intact */
	put(f, "x/obj", "old");
	w = storage_write_open(f->s, "x/obj");
	assert_non_null(w);
	assert_int_equal(filter_push(w, "new content", 11), 0);
	filter_chain_free(w);
	{
		buf_t		out;

		buf_init(&out);
		assert_int_equal(storage_get_buf(f->s, "x/obj", &out), 0);
		assert_int_equal(out.len, 3);
		assert_memory_equal(out.data, "old", 3);
		buf_free(&out);
	}
	assert_int_equal(count_entries(dir, NULL), 1);
	free(dir);
}

static void
test_failed_finish_leaves_nothing(void **state)
{
	fixture    *f = *state;
	filter_t   *w;
	char	   *dir;

	/* a non-empty directory where the object should go makes the rename fail */
	put(f, "d/obj/inner", "z");
	w = storage_write_open(f->s, "d/obj");
	assert_non_null(w);
	assert_int_equal(filter_push(w, "data", 4), 0);
	assert_int_equal(filter_finish(w), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "unable to rename"));
	assert_non_null(strstr(err_msg(), "/d/obj'"));
	filter_chain_free(w);
	dir = disk_path(f, "d");
	assert_int_equal(count_entries(dir, ".drbtmp."), 0);
	free(dir);

	/* a file where a parent directory should be: write_open fails naming it */
	put(f, "plain", "p");
	assert_null(storage_write_open(f->s, "plain/sub/obj"));
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "plain/sub"));
}

static void
test_overwrite(void **state)
{
	fixture    *f = *state;
	buf_t		out;

	put(f, "o", "first version, longer");
	put(f, "o", "second");
	buf_init(&out);
	assert_int_equal(storage_get_buf(f->s, "o", &out), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.data, "second", 6);
	buf_free(&out);
}

typedef struct collected
{
	char	   *paths[64];
	uint64_t	sizes[64];
	int			n;
	int			stop_after;		/* 0: never stop */
} collected;

static int
collect(const storage_info *info, void *arg)
{
	collected  *c = arg;

	if (c->stop_after && c->n >= c->stop_after)
		return err_set(DRB_ERR_INTERNAL, "stopped by the callback");
	c->paths[c->n] = xstrdup(info->path);
	c->sizes[c->n] = info->size;
	c->n++;
	return 0;
}

static void
collected_free(collected *c)
{
	for (int i = 0; i < c->n; i++)
		free(c->paths[i]);
	c->n = 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
expect_list(fixture *f, const char *prefix, const char *const *expected, int n)
{
	collected	c = {0};

	assert_int_equal(storage_list(f->s, prefix, collect, &c), 0);
	assert_int_equal(c.n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(c.paths[i], expected[i]);
	collected_free(&c);
}

static void
test_list(void **state)
{
	fixture    *f = *state;
	static const char *const files[] = {
		"b", "a.b", "a/x", "a/y/z", "a-c", "ab", "archive/1", "c", "a/y.z", "A",
	};
	const char *sorted[10];
	filter_t   *pending;
	char	   *junk;
	int			fd;
	collected	c = {0};

	for (size_t i = 0; i < 10; i++)
	{
		put(f, files[i], files[i]);
		sorted[i] = files[i];
	}
	/* a crashed writer's temp file and an unfinished write are never listed */
	junk = disk_path(f, "a/x.drbtmp.1.2");
	fd = open(junk, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	free(junk);
	pending = storage_write_open(f->s, "a/pending");
	assert_non_null(pending);

	/* byte order of the whole paths ("a.b" < "a/x" because '.' < '/') */
	qsort(sorted, 10, sizeof(char *), cmp_str);
	expect_list(f, "", sorted, 10);

	{
		static const char *const a[] = {"a-c", "a.b", "a/x", "a/y.z", "a/y/z", "ab", "archive/1"};
		static const char *const a_dir[] = {"a/x", "a/y.z", "a/y/z"};
		static const char *const a_y[] = {"a/y.z", "a/y/z"};
		static const char *const a_y_dir[] = {"a/y/z"};

		expect_list(f, "a", a, 7);
		expect_list(f, "a/", a_dir, 3);
		expect_list(f, "a/y", a_y, 2);
		expect_list(f, "a/y/", a_y_dir, 1);
		expect_list(f, "zz", NULL, 0);
		expect_list(f, "no/such/dir/", NULL, 0);
		expect_list(f, "b/", NULL, 0);	/* "b" is a file */
	}

	/* sizes come with the entries */
	assert_int_equal(storage_list(f->s, "archive/", collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.sizes[0], strlen("archive/1"));
	collected_free(&c);

	/* the callback stops the walk */
	c.stop_after = 2;
	assert_int_equal(storage_list(f->s, "", collect, &c), -1);
	assert_int_equal(c.n, 2);
	assert_string_equal(err_msg(), "stopped by the callback");
	collected_free(&c);

	filter_chain_free(pending);
}

static void
test_list_missing_root(void **state)
{
	fixture    *f = *state;

	expect_list(f, "", NULL, 0);
	expect_list(f, "x/", NULL, 0);
}

static void
test_head(void **state)
{
	fixture    *f = *state;
	storage_info info;
	char	   *file;
	struct stat st;

	put(f, "h/obj", "12345");
	assert_int_equal(storage_head(f->s, "h/obj", &info), 0);
	assert_string_equal(info.path, "h/obj");
	assert_int_equal(info.size, 5);
	file = disk_path(f, "h/obj");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(info.mtime, st.st_mtime);
	free(file);
}

static void
test_remove(void **state)
{
	fixture    *f = *state;
	storage_info info;
	const char *const many[] = {"m/1", "m/2", "m/never-existed", "m/deep/3"};
	char	   *dir;

	put(f, "gone", "x");
	assert_int_equal(storage_remove(f->s, "gone"), 0);
	assert_false(exists(f, "gone"));
	assert_int_equal(storage_remove(f->s, "gone"), 0);	/* idempotent */
	assert_int_equal(storage_remove(f->s, "never/was"), 0);
	assert_int_equal(storage_head(f->s, "gone", &info), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);

	put(f, "m/1", "1");
	put(f, "m/2", "2");
	put(f, "m/deep/3", "3");
	put(f, "m/keep", "k");
	assert_int_equal(storage_remove_many(f->s, many, 4), 0);
	assert_false(exists(f, "m/1"));
	assert_false(exists(f, "m/2"));
	assert_false(exists(f, "m/deep/3"));
	assert_true(exists(f, "m/keep"));
	assert_int_equal(storage_remove_many(f->s, many, 0), 0);

	/* a directory is not an object: removing it fails and names it */
	put(f, "m/sub/x", "x");
	assert_int_equal(storage_remove(f->s, "m/sub"), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "unable to remove"));
	assert_non_null(strstr(err_msg(), "m/sub"));
	dir = disk_path(f, "m/sub");
	assert_int_equal(count_entries(dir, NULL), 1);
	free(dir);
}

static void
test_invalid_paths(void **state)
{
	fixture    *f = *state;
	static const char *const bad[] = {"", "/abs", "a//b", "../x", "a/../b", "a/./b", "a/", "."};
	buf_t		out;
	storage_info info;

	buf_init(&out);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		assert_int_equal(read_range(f, bad[i], 0, 0, &out), -1);
		assert_int_equal(err_kind(), DRB_ERR_USAGE);
		assert_null(storage_write_open(f->s, bad[i]));
		assert_int_equal(err_kind(), DRB_ERR_USAGE);
		assert_int_equal(storage_head(f->s, bad[i], &info), -1);
		assert_int_equal(storage_remove(f->s, bad[i]), -1);
		assert_int_equal(err_kind(), DRB_ERR_USAGE);
	}
	assert_int_equal(storage_list(f->s, "../", collect, NULL), -1);
	assert_false(exists(f, ""));	/* nothing was created anywhere */
	buf_free(&out);

	assert_null(storage_posix_new("relative/path"));
	assert_int_equal(err_kind(), DRB_ERR_CONFIG);
	assert_non_null(strstr(err_msg(), "relative/path"));
}

static void
test_root_trailing_slash(void **state)
{
	fixture    *f = *state;
	char	   *root = xasprintf("%s/", f->root);
	storage_t  *s = storage_posix_new(root);
	buf_t		out;

	assert_non_null(s);
	{
		char	   *expect = xasprintf("posix:%s", f->root);

		assert_string_equal(s->description, expect);
		free(expect);
	}
	assert_int_equal(storage_put_buf(s, "t", "v", 1), 0);
	buf_init(&out);
	assert_int_equal(storage_get_buf(f->s, "t", &out), 0);
	assert_int_equal(out.len, 1);
	buf_free(&out);
	storage_free(s);
	free(root);
}

/* ------------------------------------------------------------------------------------ */
/* The O_DIRECT writer                                                                  */
/* ------------------------------------------------------------------------------------ */

/* Whether the file system of dir takes O_DIRECT at all (tmpfs did not always). */
static bool
dir_takes_o_direct(const char *dir)
{
	char	   *p = xasprintf("%s/probe", dir);
	int			fd = open(p, O_WRONLY | O_CREAT | O_DIRECT, 0600);

	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
	return fd >= 0;
}

/*
 * Files of sizes around the buffer size, written in odd-sized pieces through one writer
 * reused from file to file, read back byte for byte; where the file system takes
 * O_DIRECT the writer must have used it.
 */
static void
test_direct_writer_files(void **state)
{
	fixture    *f = *state;
	const size_t sizes[] = {0, 1, 4095, 4096, DIRECT_BUF_SIZE - 1, DIRECT_BUF_SIZE,
		DIRECT_BUF_SIZE + 1, 2 * DIRECT_BUF_SIZE, 3 * DIRECT_BUF_SIZE + 12345};
	const size_t pieces[] = {1, 4096, 65537, 1048576, 7, 3 * 1048576 + 5};
	direct_writer *w = direct_writer_new();
	bool		direct_ok = dir_takes_o_direct(f->tmp);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		char	   *path = xasprintf("%s/file%zu", f->tmp, i);
		uint8_t    *data = xmalloc(sizes[i] + 1);
		uint8_t    *back = xmalloc(sizes[i] + 1);
		size_t		pos = 0;
		size_t		k = i;
		struct stat st;
		int			fd;

		for (size_t j = 0; j < sizes[i]; j++)
			data[j] = (uint8_t) ((j * 2654435761u + i) >> 13);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		direct_writer_open(w, fd);
		while (pos < sizes[i])
		{
			size_t		n = pieces[k++ % (sizeof(pieces) / sizeof(pieces[0]))];

			if (n > sizes[i] - pos)
				n = sizes[i] - pos;
			assert_int_equal(direct_writer_write(w, data + pos, n), 0);
			pos += n;
		}
		assert_int_equal(direct_writer_close(w), 0);
		if (direct_ok && sizes[i] > 0)
			assert_true(direct_writer_was_direct(w));
		/* the descriptor is an ordinary one again: the caller may append and sync */
		assert_int_equal(fdatasync(fd), 0);
		assert_int_equal(close(fd), 0);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal((size_t) st.st_size, sizes[i]);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, back, sizes[i] + 1), (ssize_t) sizes[i]);
		close(fd);
		if (sizes[i] > 0)
			assert_memory_equal(back, data, sizes[i]);
		free(data);
		free(back);
		free(path);
	}
	direct_writer_free(w);
}

/*
 * Lent pieces (direct_writer_write_lent) from a ring of DIRECT_LENT_DEPTH + 1 aligned
 * buffers filled in turn, each scribbled over the moment the writer has given it back:
 * the file must hold exactly the bytes lent, also when lent pieces follow copied bytes or
 * a piece that is not whole blocks, and when the file ends in a partial piece.
 */
static void
test_direct_writer_lent(void **state)
{
	fixture    *f = *state;
	enum
	{
		RING = DIRECT_LENT_DEPTH + 1, PIECE = 64 * 1024, COPY = 1
	};
	/* each file: the lengths of its pieces, up to a 0; COPY: 5000 bytes copied instead */
	static const size_t plans[][12] = {
		{PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, 100},
		{PIECE, PIECE, 8192, PIECE, PIECE, 4096},
		{PIECE, PIECE, COPY, PIECE, PIECE, PIECE, 3},
		{PIECE, 4097, PIECE, PIECE, PIECE},
		{PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE, PIECE},
	};
	uint8_t    *ring[RING];
	direct_writer *w = direct_writer_new();
	bool		direct_ok = dir_takes_o_direct(f->tmp);

	for (int i = 0; i < RING; i++)
		ring[i] = xaligned_alloc(4096, PIECE);
	for (size_t p = 0; p < sizeof(plans) / sizeof(plans[0]); p++)
	{
		char	   *path = xasprintf("%s/lent%zu", f->tmp, p);
		uint8_t    *expect = xmalloc(16 * PIECE);
		uint8_t    *back = xmalloc(16 * PIECE + 1);
		size_t		total = 0;
		int			k = 0;
		int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		direct_writer_open(w, fd);
		for (int j = 0; j < 12 && plans[p][j] != 0; j++)
		{
			bool		lent = plans[p][j] != COPY;
			size_t		n = lent ? plans[p][j] : 5000;
			uint8_t    *piece = lent ? ring[k % RING] : back;

			for (size_t b = 0; b < n; b++)
				piece[b] = (uint8_t) ((total + b) * 2654435761u >> 11) ^ (uint8_t) p;
			memcpy(expect + total, piece, n);
			assert_int_equal(lent ? direct_writer_write_lent(w, piece, n)
							 : direct_writer_write(w, piece, n), 0);
			total += n;
			if (lent)
			{
				/* the piece lent DIRECT_LENT_DEPTH calls ago is ours again: scribble */
				k++;
				memset(ring[(k + RING - 1 - DIRECT_LENT_DEPTH) % RING], 0xEE, PIECE);
			}
		}
		assert_int_equal(direct_writer_close(w), 0);
		for (int i = 0; i < RING; i++)
			memset(ring[i], 0xDD, PIECE);	/* close gave everything back */
		if (direct_ok)
			assert_true(direct_writer_was_direct(w));
		assert_int_equal(close(fd), 0);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(read(fd, back, 16 * PIECE + 1), (ssize_t) total);
		close(fd);
		assert_memory_equal(back, expect, total);
		free(expect);
		free(back);
		free(path);
	}
	for (int i = 0; i < RING; i++)
		free(ring[i]);
	direct_writer_free(w);
}

/* A write that fails (a read-only descriptor) is an error with errno, not silence. */
static void
test_direct_writer_error(void **state)
{
	fixture    *f = *state;
	char	   *path = xasprintf("%s/ro", f->tmp);
	uint8_t    *data = xcalloc(1, 2 * DIRECT_BUF_SIZE + 1);
	direct_writer *w = direct_writer_new();
	int			fd;
	int			rc;

	fd = open(path, O_RDONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	direct_writer_open(w, fd);
	/* the first full buffer goes to the helper; its failure shows at the next call */
	rc = direct_writer_write(w, data, 2 * DIRECT_BUF_SIZE + 1);
	if (rc == 0)
		rc = direct_writer_close(w);
	assert_int_equal(rc, -1);
	assert_int_equal(errno, EBADF);
	direct_writer_free(w);
	close(fd);
	free(data);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_finish_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_missing_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_trailing_slash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_writer_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_writer_lent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_direct_writer_error, setup, teardown),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
