/*
 * test_manifest.c — backup manifests and the backup catalog (src/manifest.c, src/catalog.c).
 *
 * Covers: manifest order (component-wise, not strcmp) and path safety; labels (make, valid,
 * type, chain); a 100,000-entry manifest written and read back field by field, with heap
 * use measured to stay flat while entries stream (mallinfo2), the returned checksum being
 * that of the stored plain text, and main and copy identical; every header field and
 * large numbers (system id 2^64-1, LSNs, sizes near 2^63) exactly; links, tablespace links,
 * names that are not UTF-8; the writer refusing bad headers, out-of-order, duplicate and
 * unsafe entries without spoiling the objects, and abort leaving nothing; the reader
 * refusing each kind of hostile manifest (crafted with repo_put_buf) with
 * DRB_ERR_INTEGRITY naming the object and line; fallback to the copy when the main object
 * is corrupted (a flipped byte in the stored file), deleted or refused, with a warning in
 * the log; both damaged; the catalog's round trip, add/replace/remove/find/latest,
 * references, fallback, hostile catalogs, and catalog_write refusing what it could not
 * read back. Repository: storage_posix in a temporary directory, cipher none and
 * aes-256-gcm, zstd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "catalog.h"
#include "error.h"
#include "filter_hash.h"
#include "keyring.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "repo.h"
#include "storage.h"
#include "storage_posix.h"

#define TEST_PASS	"correct horse battery staple"
#define STANZA		"main"
#define FULL		"20261121-013000F"
#define DIFF		"20261121-013000F_20261122-010000D"
#define INCR		"20261121-013000F_20261122-020000I"
#define INCR2		"20261121-013000F_20261123-020000I"
#define FULL2		"20261122-030000F"
#define OTHER_FULL	"20261120-000000F"
#define SHA_A		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* ------------------------------------------------------------------------------------ */
/* Fixture: a posix repository in a temporary directory                                 */
/* ------------------------------------------------------------------------------------ */

typedef struct fixture
{
	char		dir[64];
	char	   *root;
	char	   *log;
	repo_t	   *repo;
} fixture;

static cipher_type cipher_none = CIPHER_NONE;
static cipher_type cipher_aes = CIPHER_AES_256_GCM;

static int
repo_setup(void **state)
{
	cipher_type cipher = *(cipher_type *) *state;
	fixture    *f = xcalloc(1, sizeof(*f));
	repo_settings s = {0};

	strcpy(f->dir, "/tmp/drb-manifest-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->root = xasprintf("%s/repo", f->dir);
	f->log = xasprintf("%s/log", f->dir);
	s.index = 1;
	s.storage = storage_posix_new(f->root);
	s.cipher = cipher;
	s.passphrase = cipher == CIPHER_NONE ? NULL : TEST_PASS;
	s.compress = COMPRESS_ZSTD;
	s.compress_level = 3;
	s.chunk_size = 16384;
	if (repo_create(&s) != 0 || (f->repo = repo_open(&s)) == NULL)
	{
		fprintf(stderr, "repository: %s\n", err_msg());
		return -1;
	}
	*state = f;
	return 0;
}

static int
repo_teardown(void **state)
{
	fixture    *f = *state;

	log_close();
	repo_close(f->repo);
	test_rm_rf(f->dir);
	free(f->root);
	free(f->log);
	free(f);
	return 0;
}

/* Heap in use (all arenas, mmapped blocks included). */
static size_t
heap_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static char *
object_file(fixture *f, const char *object)
{
	return xasprintf("%s/%s", f->root, object);
}

/* Flip one bit in the middle of a stored object. */
static void
damage(fixture *f, const char *object)
{
	char	   *file = object_file(f, object);
	int			fd = open(file, O_RDWR);
	struct stat st;
	uint8_t		b;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pread(fd, &b, 1, st.st_size / 2), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, st.st_size / 2), 1);
	close(fd);
	free(file);
}

/* Copy a local file (the tests keep a good object aside to put it back). */
static void
file_copy(const char *from, const char *to)
{
	FILE	   *in = fopen(from, "rb");
	FILE	   *out = fopen(to, "wb");
	char		b[65536];
	size_t		n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(b, 1, sizeof(b), in)) > 0)
		assert_int_equal(fwrite(b, 1, n, out), n);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

static void
delete_object(fixture *f, const char *object)
{
	assert_int_equal(storage_remove(repo_storage(f->repo), object), 0);
}

static bool
object_exists(fixture *f, const char *object)
{
	storage_info info;

	if (storage_head(repo_storage(f->repo), object, &info) == 0)
		return true;
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	return false;
}

/* The plain text of an object. */
static char *
get_text(fixture *f, const char *object)
{
	buf_t		b;

	buf_init(&b);
	if (repo_get_buf(f->repo, object, &b, NULL) != 0)
		fail_msg("get '%s': %s", object, err_msg());
	buf_cstr(&b);
	return (char *) b.data;
}

static void
put_text(fixture *f, const char *object, const char *text)
{
	if (repo_put_buf(f->repo, object, text, strlen(text), NULL) != 0)
		fail_msg("put '%s': %s", object, err_msg());
}

/* Warnings logged while a test runs go to the fixture's log file. */
static void
log_capture(fixture *f)
{
	unlink(f->log);
	assert_int_equal(log_open_file(f->log, LOG_WARN), 0);
}

static char *
log_captured(fixture *f)
{
	FILE	   *fp;
	char	   *text = xcalloc(1, 65536);

	log_close();
	fp = fopen(f->log, "r");
	if (fp)
	{
		size_t		n = fread(text, 1, 65535, fp);

		text[n] = '\0';
		fclose(fp);
	}
	return text;
}

static void
assert_contains(const char *text, const char *needle)
{
	if (strstr(text, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", text, needle);
}

/* Replace the first occurrence of old in text (which must contain it); new string. */
static char *
replace_once(const char *text, const char *old, const char *new)
{
	const char *at = strstr(text, old);

	if (at == NULL)
		fail_msg("'%s' not found in the text", old);
	return xasprintf("%.*s%s%s", (int) (at - text), text, new, at + strlen(old));
}

/* ------------------------------------------------------------------------------------ */
/* Headers and generated entries                                                        */
/* ------------------------------------------------------------------------------------ */

static manifest_tablespace test_tablespaces[2] = {
	{16385, "ts1", "/srv/ts1"},
	{16390, "ts two", "/srv/ts two"},
};

static void
header_init(manifest_header *h, const char *label, backup_type type, const char *parent)
{
	memset(h, 0, sizeof(*h));
	h->format = MANIFEST_FORMAT;
	h->label = (char *) label;
	h->type = type;
	h->parent = (char *) parent;
	h->drbackup_version = "0.9.1";
	h->system_id = UINT64_MAX;
	h->pg_version = 15;
	h->pg_version_num = 150018;
	h->timeline = 3;
	h->start_lsn = 0x1234567800000028ull;
	h->stop_lsn = 0xFFFFFFFF00002000ull;
	h->start_time = 1795224600;
	h->stop_time = 1795224661;
	strcpy(h->wal_start, "000000030000000100000004");
	strcpy(h->wal_stop, "0000000300000001000000FF");
	h->wal_segment_size = 16u << 20;
	h->data_checksums = true;
	h->backup_label = "START WAL LOCATION: 0/4000028 (file 000000030000000100000004)\n"
		"CHECKPOINT LOCATION: 0/4000060\nBACKUP METHOD: streamed\nLABEL: \"drbackup\" \\ é\n";
	h->tablespace_map = "16385 /srv/ts1\n16390 /srv/ts two\n";
	h->tablespaces = test_tablespaces;
	h->ntablespaces = 2;
	h->compress = "zstd";
	h->file_count = 99000;
	h->size = INT64_MAX;
	h->size_copied = (1ull << 62) + 5;
	h->repo_size = 123456789012345ull;
	h->object_count = 101;
	h->damaged_pages = 7;
}

static void
assert_header_equal(const manifest_header *a, const manifest_header *b)
{
	assert_int_equal(a->format, b->format);
	assert_string_equal(a->label, b->label);
	assert_int_equal(a->type, b->type);
	if (a->parent || b->parent)
	{
		assert_non_null(a->parent);
		assert_non_null(b->parent);
		assert_string_equal(a->parent, b->parent);
	}
	assert_string_equal(a->drbackup_version, b->drbackup_version);
	assert_true(a->system_id == b->system_id);
	assert_int_equal(a->pg_version, b->pg_version);
	assert_int_equal(a->pg_version_num, b->pg_version_num);
	assert_int_equal(a->timeline, b->timeline);
	assert_true(a->start_lsn == b->start_lsn);
	assert_true(a->stop_lsn == b->stop_lsn);
	assert_true(a->start_time == b->start_time);
	assert_true(a->stop_time == b->stop_time);
	assert_string_equal(a->wal_start, b->wal_start);
	assert_string_equal(a->wal_stop, b->wal_stop);
	assert_int_equal(a->wal_segment_size, b->wal_segment_size);
	assert_int_equal(a->data_checksums, b->data_checksums);
	assert_string_equal(a->backup_label, b->backup_label);
	if (a->tablespace_map || b->tablespace_map)
	{
		assert_non_null(a->tablespace_map);
		assert_non_null(b->tablespace_map);
		assert_string_equal(a->tablespace_map, b->tablespace_map);
	}
	assert_int_equal(a->ntablespaces, b->ntablespaces);
	for (size_t i = 0; i < a->ntablespaces; i++)
	{
		assert_int_equal(a->tablespaces[i].oid, b->tablespaces[i].oid);
		assert_string_equal(a->tablespaces[i].name, b->tablespaces[i].name);
		assert_string_equal(a->tablespaces[i].location, b->tablespaces[i].location);
	}
	assert_string_equal(a->compress, b->compress);
	assert_true(a->file_count == b->file_count);
	assert_true(a->size == b->size);
	assert_true(a->size_copied == b->size_copied);
	assert_true(a->repo_size == b->repo_size);
	assert_true(a->object_count == b->object_count);
	assert_true(a->damaged_pages == b->damaged_pages);
}

#define GEN_PER_DIR 1000

typedef struct gen
{
	char		path[64];
	char		object[32];
	uint32_t	bad[2];
} gen;

/*
 * Entry i of a generated manifest of backup INCR, in manifest order: "base", then
 * directories base/dNNNN each followed by GEN_PER_DIR files. Every field varies with i.
 */
static void
gen_entry(uint64_t i, manifest_entry *e, gen *g)
{
	uint64_t	j,
				d,
				k;

	memset(e, 0, sizeof(*e));
	e->path = g->path;
	if (i == 0)
	{
		e->type = MANIFEST_DIR;
		strcpy(g->path, "base");
		e->mode = 0700;
		e->mtime = 1700000000;
		return;
	}
	j = i - 1;
	d = j / (GEN_PER_DIR + 1);
	k = j % (GEN_PER_DIR + 1);
	e->mtime = i % 5 == 0 ? -(int64_t) i : 1700000000 + (int64_t) i;
	if (k == 0)
	{
		e->type = MANIFEST_DIR;
		snprintf(g->path, sizeof(g->path), "base/d%04u", (unsigned) d);
		e->mode = 0750;
		return;
	}
	e->type = MANIFEST_FILE_ENTRY;
	snprintf(g->path, sizeof(g->path), "base/d%04u/f%05u", (unsigned) d, (unsigned) k);
	e->mode = k % 7 == 0 ? 0644 : 0600;
	e->size = k % 50 == 0 ? 0 : k * 100 + d + ((uint64_t) (k % 11 == 0) << 40);
	for (int b = 0; b < 32; b++)
		e->sha256[b] = (uint8_t) (i * 7 + (uint64_t) b * 13);
	if (e->size > 0)
	{
		snprintf(g->object, sizeof(g->object), "data/%c%06u", k % 4 ? 'b' : 'f', (unsigned) d);
		e->object = g->object;
		e->ref = k % 3 == 0 ? FULL : INCR;
		e->offset = k % 4 ? k * 1000 : 0;
	}
	if (k % 97 == 0)
	{
		g->bad[0] = (uint32_t) k;
		g->bad[1] = (uint32_t) k + 4000000000u;
		e->bad = g->bad;
		e->nbad = 2;
	}
}

static void
assert_entry_equal(const manifest_entry *a, const manifest_entry *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->path, b->path);
	assert_int_equal(a->mode, b->mode);
	assert_true(a->mtime == b->mtime);
	if (a->type == MANIFEST_LINK)
		assert_string_equal(a->link_target, b->link_target);
	else
		assert_null(b->link_target);
	if (a->type != MANIFEST_FILE_ENTRY)
		return;
	assert_true(a->size == b->size);
	assert_memory_equal(a->sha256, b->sha256, 32);
	if (a->object)
	{
		assert_non_null(b->object);
		assert_string_equal(a->object, b->object);
		assert_string_equal(a->ref, b->ref);
		assert_true(a->offset == b->offset);
	}
	else
	{
		assert_null(b->object);
		assert_null(b->ref);
	}
	assert_int_equal(a->nbad, b->nbad);
	if (a->nbad)
		assert_memory_equal(a->bad, b->bad, a->nbad * sizeof(uint32_t));
}

/* Write the generated manifest of INCR with n entries; sha256 may be NULL. */
static void
write_generated(fixture *f, uint64_t n, uint8_t *sha256)
{
	manifest_header h;
	manifest_writer *w;
	manifest_entry e;
	gen			g;

	header_init(&h, INCR, BACKUP_INCR, FULL);
	w = manifest_writer_open(&f->repo, 1, STANZA, &h);
	if (w == NULL)
		fail_msg("manifest_writer_open: %s", err_msg());
	for (uint64_t i = 0; i < n; i++)
	{
		gen_entry(i, &e, &g);
		if (manifest_writer_add(w, &e) != 0)
			fail_msg("manifest_writer_add %" PRIu64 ": %s", i, err_msg());
	}
	if (manifest_writer_close(w, sha256) != 0)
		fail_msg("manifest_writer_close: %s", err_msg());
}

/* Open INCR's manifest and check every entry against the generator. */
static void
read_generated(fixture *f, uint64_t n)
{
	manifest_header expect;
	manifest_header h;
	manifest_reader *r;
	manifest_entry e;
	manifest_entry want;
	gen			g;
	uint64_t	i = 0;
	int			rc;

	header_init(&expect, INCR, BACKUP_INCR, FULL);
	r = manifest_reader_open(f->repo, STANZA, INCR, &h);
	if (r == NULL)
		fail_msg("manifest_reader_open: %s", err_msg());
	assert_header_equal(&expect, &h);
	while ((rc = manifest_reader_next(r, &e)) == 1)
	{
		assert_true(i < n);
		gen_entry(i++, &want, &g);
		assert_entry_equal(&want, &e);
	}
	if (rc != 0)
		fail_msg("manifest_reader_next: %s", err_msg());
	assert_true(i == n);
	assert_int_equal(manifest_reader_next(r, &e), 0);
	manifest_reader_close(r);
	manifest_header_free(&h);
}

/* ------------------------------------------------------------------------------------ */
/* Order, paths, labels                                                                 */
/* ------------------------------------------------------------------------------------ */

static void
test_path_cmp(void **state)
{
	/* each sorts before the next; strcmp would put "base.old" before "base/1" */
	const char *order[] = {
		"PG_VERSION", "a", "a/b", "a/b/c", "a/bc", "a.b", "base", "base/1", "base/1/112",
		"base/1/112/x", "base/10", "base/10/1", "base.old", "base0", "global", "pg_tblspc",
		"pg_tblspc/16385", "pg_tblspc/16385/PG_15_202209061", "pg_wal",
	};
	size_t		n = sizeof(order) / sizeof(order[0]);

	(void) state;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
		{
			int			c = manifest_path_cmp(order[i], order[j]);

			if ((i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0))
				fail_msg("manifest_path_cmp('%s', '%s') = %d", order[i], order[j], c);
		}
	assert_true(strcmp("base.old", "base/1") < 0);	/* the case that differs from strcmp */
	assert_true(manifest_path_cmp("a\xff", "a/b") > 0);	/* bytes compare unsigned */
	assert_true(manifest_path_cmp("a\xff", "a\x01") > 0);
}

static void
test_path_safe(void **state)
{
	const char *good[] = {
		"base", "base/1/112", "pg_tblspc/16385/PG_15_202209061/5/1", ".hidden", "..a", "a..",
		"a/...", "caf\xc3\xa9", "caf\xe9", "a b",
	};
	const char *bad[] = {
		"", "/", "/etc", "/etc/passwd", ".", "..", "../x", "a/..", "a/../b", "a/./b", "./a",
		"a//b", "a/", "a\nb", "a\tb", "a\x7f", "a\x1b[31m",
	};

	(void) state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!manifest_path_safe(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (manifest_path_safe(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(manifest_path_safe(NULL));
}

static void
test_labels(void **state)
{
	char	   *l;
	const char *valid[] = {FULL, DIFF, INCR, "19991231-235959F", "20000229-000000F_20000301-000000D"};
	const char *invalid[] = {
		"", "20261121-013000", "20261121-013000I", "20261121-013000D", "20261121_013000F",
		"20261321-013000F", "20261100-013000F", "20261132-013000F", "20261121-243000F",
		"20261121-016000F", "20261121-013060F", "2026112-0130000F", "20261121-013000F_",
		"20261121-013000F_20261122-020000F", "20261121-013000I_20261122-020000I",
		"20261121-013000F-20261122-020000I", "20261121-013000F_20261122-020000IX",
		"20261121-013000F/20261122-020000I", "../../etc/passwd", "20261121-01300aF",
		"20261121-013000F_20261122-020000I_20261123-020000I",
	};

	(void) state;
	l = backup_label_make(BACKUP_FULL, NULL, 1795224600);
	assert_string_equal(l, FULL);
	free(l);
	l = backup_label_make(BACKUP_INCR, FULL, 1795312800);
	assert_string_equal(l, INCR);
	free(l);
	l = backup_label_make(BACKUP_DIFF, FULL, 1795312800 - 3600);
	assert_string_equal(l, DIFF);
	free(l);
	l = backup_label_make(BACKUP_INCR, INCR, 1795312800 + 86400);	/* chain's full part */
	assert_string_equal(l, INCR2);
	free(l);
	assert_null(backup_label_make(BACKUP_INCR, NULL, 1795312800));
	assert_int_equal(err_kind(), DRB_ERR_INTERNAL);
	assert_null(backup_label_make(BACKUP_INCR, "nonsense", 1795312800));
	assert_null(backup_label_make(BACKUP_FULL, NULL, 253402300800));	/* year 10000 */

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		if (!backup_label_valid(valid[i]))
			fail_msg("'%s' refused", valid[i]);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
		if (backup_label_valid(invalid[i]))
			fail_msg("'%s' accepted", invalid[i]);
	assert_false(backup_label_valid(NULL));

	assert_int_equal(backup_label_type(FULL), BACKUP_FULL);
	assert_int_equal(backup_label_type(DIFF), BACKUP_DIFF);
	assert_int_equal(backup_label_type(INCR), BACKUP_INCR);
	assert_int_equal(backup_label_type("x"), -1);

	assert_true(backup_label_in_chain(INCR, FULL));
	assert_true(backup_label_in_chain(INCR, INCR));
	assert_true(backup_label_in_chain(INCR2, INCR));
	assert_false(backup_label_in_chain(INCR, INCR2));	/* later */
	assert_false(backup_label_in_chain(FULL, INCR));
	assert_false(backup_label_in_chain(INCR, OTHER_FULL));	/* another chain */
	assert_false(backup_label_in_chain(FULL2, FULL));
	assert_false(backup_label_in_chain(INCR, "x"));

	assert_string_equal(backup_type_name(BACKUP_FULL), "full");
	assert_string_equal(backup_type_name(BACKUP_DIFF), "diff");
	assert_string_equal(backup_type_name(BACKUP_INCR), "incr");
	assert_int_equal(backup_type_parse("full"), BACKUP_FULL);
	assert_int_equal(backup_type_parse("diff"), BACKUP_DIFF);
	assert_int_equal(backup_type_parse("incr"), BACKUP_INCR);
	assert_int_equal(backup_type_parse("Full"), -1);
	assert_int_equal(backup_type_parse(NULL), -1);

	l = backup_object_path(STANZA, FULL, "data/b000017");
	assert_string_equal(l, "stanza/main/backup/20261121-013000F/data/b000017");
	free(l);
}

static void
test_field_parsers(void **state)
{
	uint64_t	v;

	(void) state;
	assert_true(manifest_lsn_parse("0/2000028", &v));
	assert_true(v == 0x2000028);
	assert_true(manifest_lsn_parse("FFFFFFFF/FFFFFFFF", &v));
	assert_true(v == UINT64_MAX);
	assert_false(manifest_lsn_parse("0/02000028", &v));	/* not as PostgreSQL writes it */
	assert_false(manifest_lsn_parse("0/2000028a", &v));
	assert_false(manifest_lsn_parse(" 0/1", &v));
	assert_false(manifest_lsn_parse("-1/0", &v));
	assert_false(manifest_lsn_parse("100000000/0", &v));
	assert_false(manifest_lsn_parse("0/1x", &v));
	assert_false(manifest_lsn_parse("", &v));

	assert_true(manifest_sysid_parse("18446744073709551615", &v));
	assert_true(v == UINT64_MAX);
	assert_true(manifest_sysid_parse("0", &v));
	assert_false(manifest_sysid_parse("18446744073709551616", &v));
	assert_false(manifest_sysid_parse("01", &v));
	assert_false(manifest_sysid_parse("-1", &v));
	assert_false(manifest_sysid_parse("1 ", &v));
	assert_false(manifest_sysid_parse("", &v));

	assert_true(manifest_wal_segment_valid("000000010000000000000004"));
	assert_false(manifest_wal_segment_valid("00000001000000000000000a"));
	assert_false(manifest_wal_segment_valid("000000000000000000000004"));	/* timeline 0 */
	assert_false(manifest_wal_segment_valid("00000001.history"));
	assert_false(manifest_wal_segment_valid("000000010000000000000004.partial"));
	assert_false(manifest_wal_segment_valid(NULL));

	/* the check keeps the caller's pending error */
	err_set(DRB_ERR_STORAGE, "earlier problem");
	assert_false(manifest_wal_segment_valid("0000000X0000000000000004"));
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_string_equal(err_msg(), "earlier problem");
	err_clear();

	assert_true(manifest_wal_segment_size_valid(16u << 20));
	assert_true(manifest_wal_segment_size_valid(1u << 20));
	assert_true(manifest_wal_segment_size_valid(1u << 30));
	assert_false(manifest_wal_segment_size_valid(3u << 20));
	assert_false(manifest_wal_segment_size_valid(1u << 19));
	assert_false(manifest_wal_segment_size_valid(1ull << 31));
}

/* ------------------------------------------------------------------------------------ */
/* Manifest round trip                                                                  */
/* ------------------------------------------------------------------------------------ */

static void
test_manifest_round_trip_large(void **state)
{
	fixture    *f = *state;
	const uint64_t n = 100000;
	manifest_header h;
	manifest_header got;
	manifest_writer *w;
	manifest_reader *r;
	manifest_entry e;
	manifest_entry want;
	gen			g;
	uint8_t		sha[32] = {0};
	uint8_t		zero[32] = {0};
	uint8_t		text_sha[32];
	size_t		base = 0;
	size_t		peak = 0;
	char	   *main_path = backup_object_path(STANZA, INCR, MANIFEST_FILE);
	char	   *copy_path = backup_object_path(STANZA, INCR, MANIFEST_FILE_COPY);
	char	   *main_text;
	char	   *copy_text;
	uint64_t	i = 0;
	int			rc;

	/* write: the heap stays flat while 95,000 entries stream */
	header_init(&h, INCR, BACKUP_INCR, FULL);
	w = manifest_writer_open(&f->repo, 1, STANZA, &h);
	if (w == NULL)
		fail_msg("manifest_writer_open: %s", err_msg());
	assert_false(object_exists(f, main_path));	/* nothing visible before close */
	for (i = 0; i < n; i++)
	{
		gen_entry(i, &e, &g);
		if (manifest_writer_add(w, &e) != 0)
			fail_msg("manifest_writer_add %" PRIu64 ": %s", i, err_msg());
		if (i == 5000)
			base = heap_used();
		if (i > 5000 && i % 1000 == 0 && heap_used() > peak)
			peak = heap_used();
	}
	assert_false(object_exists(f, main_path));
	assert_false(object_exists(f, copy_path));
	if (manifest_writer_close(w, sha) != 0)
		fail_msg("manifest_writer_close: %s", err_msg());
	if (peak > base + 1024 * 1024)
		fail_msg("writer heap grew by %zu bytes over 95,000 entries", peak - base);

	/* main and copy hold the same text, whose checksum close returned */
	main_text = get_text(f, main_path);
	copy_text = get_text(f, copy_path);
	assert_string_equal(main_text, copy_text);
	assert_true(strlen(main_text) > 10 * 1024 * 1024);	/* the streamed text is big */
	sha256_buf(main_text, strlen(main_text), text_sha);
	assert_memory_not_equal(sha, zero, 32);
	assert_memory_equal(sha, text_sha, 32);
	assert_true(strncmp(main_text, "{\"format\":1,\"label\":\"" INCR "\"", 40) == 0);
	assert_non_null(strstr(main_text, "\"system-id\":\"18446744073709551615\""));
	assert_non_null(strstr(main_text, "\"start-lsn\":\"12345678/28\""));
	assert_non_null(strstr(main_text, "\"stop-lsn\":\"FFFFFFFF/2000\""));
	assert_non_null(strstr(main_text, "\"size\":9223372036854775807"));
	assert_non_null(strstr(main_text, "\n{\"end\":true,\"entries\":100000}\n"));
	free(main_text);
	free(copy_text);

	/* read: every field of every entry; the heap stays flat too */
	r = manifest_reader_open(f->repo, STANZA, INCR, &got);
	if (r == NULL)
		fail_msg("manifest_reader_open: %s", err_msg());
	assert_header_equal(&h, &got);
	peak = 0;
	i = 0;
	while ((rc = manifest_reader_next(r, &e)) == 1)
	{
		assert_true(i < n);
		gen_entry(i, &want, &g);
		assert_entry_equal(&want, &e);
		if (i == 5000)
			base = heap_used();
		if (i > 5000 && i % 1000 == 0 && heap_used() > peak)
			peak = heap_used();
		i++;
	}
	if (rc != 0)
		fail_msg("manifest_reader_next: %s", err_msg());
	assert_true(i == n);
	if (peak > base + 1024 * 1024)
		fail_msg("reader heap grew by %zu bytes over 95,000 entries", peak - base);
	assert_int_equal(manifest_reader_next(r, &e), 0);
	manifest_reader_close(r);
	manifest_header_free(&got);
	free(main_path);
	free(copy_path);
}

/* Links, tablespaces, a full without tablespace map, text that is not UTF-8. */
static void
test_manifest_links_and_bytes(void **state)
{
	fixture    *f = *state;
	manifest_tablespace ts[1] = {{16390, "caf\xe9", "/srv/t\xe9"}};
	manifest_header h;
	manifest_header got;
	manifest_writer *w;
	manifest_reader *r;
	manifest_entry e;
	manifest_entry list[8];
	size_t		n = 0;
	char	   *path = backup_object_path(STANZA, FULL, MANIFEST_FILE);
	char	   *text;
	int			rc;

	header_init(&h, FULL, BACKUP_FULL, NULL);
	h.tablespace_map = NULL;
	h.tablespaces = ts;
	h.ntablespaces = 1;
	h.backup_label = "LABEL: \xff\xfe\n";
	h.data_checksums = false;

	memset(list, 0, sizeof(list));
	list[n++] = (manifest_entry) {.type = MANIFEST_FILE_ENTRY, .path = "PG_VERSION", .mode = 0600,
		.mtime = 5, .size = 3, .ref = FULL, .object = "data/b000001", .offset = 77};
	list[n++] = (manifest_entry) {.type = MANIFEST_DIR, .path = "base", .mode = 0700, .mtime = 6};
	list[n++] = (manifest_entry) {.type = MANIFEST_FILE_ENTRY, .path = "base/caf\xe9", .mode = 0640,
		.mtime = 7, .size = 0};
	list[n++] = (manifest_entry) {.type = MANIFEST_DIR, .path = "pg_tblspc", .mode = 0700, .mtime = 8};
	list[n++] = (manifest_entry) {.type = MANIFEST_LINK, .path = "pg_tblspc/16385", .mode = 0777,
		.mtime = 9, .link_target = "/srv/ts1"};
	list[n++] = (manifest_entry) {.type = MANIFEST_LINK, .path = "pg_tblspc/16390", .mode = 0777,
		.mtime = 10, .link_target = "/srv/t\xe9"};
	list[n++] = (manifest_entry) {.type = MANIFEST_LINK, .path = "pg_wal", .mode = 0777,
		.mtime = 11, .link_target = "../wal dir"};
	list[0].sha256[0] = 0xab;

	w = manifest_writer_open(&f->repo, 1, STANZA, &h);
	if (w == NULL)
		fail_msg("manifest_writer_open: %s", err_msg());
	for (size_t i = 0; i < n; i++)
		if (manifest_writer_add(w, &list[i]) != 0)
			fail_msg("add '%s': %s", list[i].path, err_msg());
	if (manifest_writer_close(w, NULL) != 0)
		fail_msg("manifest_writer_close: %s", err_msg());

	/* bytes that are not UTF-8 went in as hex */
	text = get_text(f, path);
	assert_non_null(strstr(text, "\"px\":\"626173652f636166e9\""));
	assert_non_null(strstr(text, "\"dstx\":\"2f7372762f74e9\""));
	assert_non_null(strstr(text, "\"backup-label-hex\":"));
	assert_non_null(strstr(text, "\"name-hex\":\"636166e9\""));
	assert_non_null(strstr(text, "\"tablespace-map\":null"));
	assert_non_null(strstr(text, "\"parent\":null"));
	assert_non_null(strstr(text, "\"dst\":\"../wal dir\""));
	assert_null(strstr(text, "\"bad\""));	/* only written when there are bad blocks */
	free(text);

	r = manifest_reader_open(f->repo, STANZA, FULL, &got);
	if (r == NULL)
		fail_msg("manifest_reader_open: %s", err_msg());
	assert_header_equal(&h, &got);
	assert_null(got.parent);
	assert_null(got.tablespace_map);
	for (size_t i = 0; (rc = manifest_reader_next(r, &e)) == 1; i++)
	{
		assert_true(i < n);
		assert_entry_equal(&list[i], &e);
	}
	assert_int_equal(rc, 0);
	manifest_reader_close(r);
	manifest_header_free(&got);
	free(path);
}

/* Two repositories at once: main and copy in each. */
static void
test_manifest_two_repositories(void **state)
{
	fixture    *f = *state;
	char	   *root2 = xasprintf("%s/repo2", f->dir);
	repo_settings s = {0};
	repo_t	   *repos[2];
	manifest_header h;
	manifest_header got;
	manifest_writer *w;
	manifest_reader *r;
	manifest_entry e = {.type = MANIFEST_DIR, .path = "base", .mode = 0700};

	s.index = 2;
	s.storage = storage_posix_new(root2);
	s.compress = COMPRESS_LZ4;
	assert_int_equal(repo_create(&s), 0);
	repos[0] = f->repo;
	repos[1] = repo_open(&s);
	assert_non_null(repos[1]);

	header_init(&h, FULL, BACKUP_FULL, NULL);
	w = manifest_writer_open(repos, 2, STANZA, &h);
	assert_non_null(w);
	assert_int_equal(manifest_writer_add(w, &e), 0);
	assert_int_equal(manifest_writer_close(w, NULL), 0);
	for (int i = 0; i < 2; i++)
	{
		r = manifest_reader_open(repos[i], STANZA, FULL, &got);
		if (r == NULL)
			fail_msg("repository %d: %s", i + 1, err_msg());
		assert_int_equal(manifest_reader_next(r, &e), 1);
		assert_string_equal(e.path, "base");
		assert_int_equal(manifest_reader_next(r, &e), 0);
		manifest_reader_close(r);
		manifest_header_free(&got);
	}
	repo_close(repos[1]);
	free(root2);
}

/* ------------------------------------------------------------------------------------ */
/* Writer refusals                                                                      */
/* ------------------------------------------------------------------------------------ */

static void
expect_header_refused(fixture *f, const manifest_header *h, const char *what)
{
	manifest_writer *w = manifest_writer_open(&f->repo, 1, STANZA, h);

	if (w != NULL)
	{
		manifest_writer_abort(w);
		fail_msg("header with %s accepted", what);
	}
	assert_int_equal(err_kind(), DRB_ERR_INTERNAL);
}

static void
test_writer_refusals(void **state)
{
	fixture    *f = *state;
	manifest_tablespace rel[1] = {{16385, "ts", "srv/ts"}};
	manifest_tablespace dup[2] = {{16385, "a", "/a"}, {16385, "b", "/b"}};
	manifest_header h;
	manifest_writer *w;
	char	   *main_path = backup_object_path(STANZA, INCR, MANIFEST_FILE);
	char	   *copy_path = backup_object_path(STANZA, INCR, MANIFEST_FILE_COPY);
	manifest_entry e;

#define REFUSE_HEADER(what, change) \
	do { header_init(&h, INCR, BACKUP_INCR, FULL); change; expect_header_refused(f, &h, what); } while (0)

	REFUSE_HEADER("a bad label", h.label = "nonsense");
	REFUSE_HEADER("a type that is not the label's", h.type = BACKUP_DIFF);
	REFUSE_HEADER("no parent", h.parent = NULL);
	REFUSE_HEADER("a parent of another chain", h.parent = OTHER_FULL);
	REFUSE_HEADER("itself as parent", h.parent = INCR);
	REFUSE_HEADER("a later parent", h.parent = INCR2);
	REFUSE_HEADER("format 2", h.format = 2);
	REFUSE_HEADER("timeline 0", h.timeline = 0);
	REFUSE_HEADER("start after stop", h.start_lsn = h.stop_lsn + 1);
	REFUSE_HEADER("a bad WAL name", strcpy(h.wal_start, "00000003000000010000000"));
	REFUSE_HEADER("a bad segment size", h.wal_segment_size = 3u << 20);
	REFUSE_HEADER("an unknown compress type", h.compress = "rar");
	REFUSE_HEADER("a relative tablespace", (h.tablespaces = rel, h.ntablespaces = 1));
	REFUSE_HEADER("a tablespace twice", (h.tablespaces = dup, h.ntablespaces = 2));
	REFUSE_HEADER("no backup_label", h.backup_label = NULL);
	REFUSE_HEADER("a total above 2^63", h.size = (uint64_t) INT64_MAX + 1);
	header_init(&h, FULL, BACKUP_FULL, INCR);
	expect_header_refused(f, &h, "a full with a parent");

	header_init(&h, INCR, BACKUP_INCR, FULL);
	w = manifest_writer_open(&f->repo, 1, STANZA, &h);
	assert_non_null(w);

#define ENTRY(...) (e = (manifest_entry) {__VA_ARGS__}, &e)
#define REFUSE_ENTRY(...) \
	do { \
		if (manifest_writer_add(w, ENTRY(__VA_ARGS__)) == 0) \
			fail_msg("entry '%s' accepted", e.path); \
		assert_int_equal(err_kind(), DRB_ERR_INTERNAL); \
	} while (0)

	assert_int_equal(manifest_writer_add(w, ENTRY(.type = MANIFEST_DIR, .path = "base/1", .mode = 0700)), 0);
	REFUSE_ENTRY(.type = MANIFEST_DIR, .path = "base", .mode = 0700);	/* before base/1 */
	assert_contains(err_msg(), "manifest order");
	REFUSE_ENTRY(.type = MANIFEST_DIR, .path = "base/1", .mode = 0700);	/* duplicate */
	REFUSE_ENTRY(.type = MANIFEST_DIR, .path = "base.old", .mode = 0700 | 0100000);
	REFUSE_ENTRY(.type = MANIFEST_DIR, .path = "base/2/../x", .mode = 0700);
	REFUSE_ENTRY(.type = MANIFEST_DIR, .path = "/etc", .mode = 0700);
	REFUSE_ENTRY(.type = (manifest_entry_type) 'x', .path = "base/2", .mode = 0700);
	REFUSE_ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2", .size = 5);	/* no object */
	REFUSE_ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2", .size = 5, .object = "data/f1",
				 .ref = OTHER_FULL);
	REFUSE_ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2", .size = 5, .object = "data/f1",
				 .ref = INCR2);	/* later than the backup */
	REFUSE_ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2", .size = 5, .object = "../f1",
				 .ref = FULL);
	REFUSE_ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2", .size = 5, .object = "data/f1",
				 .ref = FULL, .nbad = 1);
	REFUSE_ENTRY(.type = MANIFEST_LINK, .path = "pg_tblspc/16385", .link_target = "srv/ts");
	REFUSE_ENTRY(.type = MANIFEST_LINK, .path = "pg_tblspc/16385", .link_target = "/srv/../etc");
	REFUSE_ENTRY(.type = MANIFEST_LINK, .path = "pg_wal", .link_target = "");
	REFUSE_ENTRY(.type = MANIFEST_LINK, .path = "pg_wal", .link_target = "/a\nb");
	/* refused entries spoil nothing: the writer goes on */
	assert_int_equal(manifest_writer_add(w, ENTRY(.type = MANIFEST_FILE_ENTRY, .path = "base/2",
												  .size = 5, .object = "data/f1", .ref = FULL)), 0);
	manifest_writer_abort(w);
	assert_false(object_exists(f, main_path));
	assert_false(object_exists(f, copy_path));

	/* a reader of an aborted manifest finds nothing */
	assert_null(manifest_reader_open(f->repo, STANZA, INCR, &h));
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_null(manifest_reader_open(f->repo, STANZA, "../x", &h));
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	free(main_path);
	free(copy_path);
}

/* ------------------------------------------------------------------------------------ */
/* Hostile manifests                                                                    */
/* ------------------------------------------------------------------------------------ */

/* The header line of a real manifest of FULL (with its newline). */
static char *
real_header_line(fixture *f)
{
	manifest_header h;
	manifest_writer *w;
	char	   *path = backup_object_path(STANZA, FULL, MANIFEST_FILE);
	char	   *text;
	char	   *nl;

	header_init(&h, FULL, BACKUP_FULL, NULL);
	w = manifest_writer_open(&f->repo, 1, STANZA, &h);
	assert_non_null(w);
	assert_int_equal(manifest_writer_close(w, NULL), 0);
	text = get_text(f, path);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	nl[1] = '\0';
	free(path);
	return text;
}

/*
 * Store text as FULL's main manifest only, open it and read it to the end: refused (by
 * open, or by next for an entry), naming the object and needle. Returns whether open did.
 */
static bool
expect_manifest_refused(fixture *f, const char *text, const char *needle)
{
	char	   *main_path = backup_object_path(STANZA, FULL, MANIFEST_FILE);
	char	   *copy_path = backup_object_path(STANZA, FULL, MANIFEST_FILE_COPY);
	manifest_header h;
	manifest_reader *r;
	manifest_entry e;
	int			rc = -1;

	delete_object(f, copy_path);
	put_text(f, main_path, text);
	r = manifest_reader_open(f->repo, STANZA, FULL, &h);
	if (r == NULL)
		assert_null(h.label);	/* nothing left in h */
	else
		while ((rc = manifest_reader_next(r, &e)) == 1)
			;
	if (r != NULL && rc == 0)
		fail_msg("manifest accepted:\n%s", text);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_contains(err_msg(), main_path);
	assert_contains(err_msg(), needle);
	if (r != NULL)
	{
		assert_int_equal(manifest_reader_next(r, &e), -1);	/* stays refused */
		manifest_reader_close(r);
		manifest_header_free(&h);
	}
	free(main_path);
	free(copy_path);
	return r == NULL;
}

static void
expect_manifest_accepted(fixture *f, const char *text, uint64_t entries)
{
	char	   *main_path = backup_object_path(STANZA, FULL, MANIFEST_FILE);
	manifest_header h;
	manifest_reader *r;
	manifest_entry e;
	uint64_t	n = 0;
	int			rc;

	put_text(f, main_path, text);
	r = manifest_reader_open(f->repo, STANZA, FULL, &h);
	if (r == NULL)
		fail_msg("manifest refused: %s\n%s", err_msg(), text);
	while ((rc = manifest_reader_next(r, &e)) == 1)
		n++;
	assert_int_equal(rc, 0);
	assert_true(n == entries);
	manifest_reader_close(r);
	manifest_header_free(&h);
	free(main_path);
}

#define D_BASE		"{\"t\":\"d\",\"p\":\"base\",\"m\":448,\"mt\":1}\n"
#define F_BASE_1	"{\"t\":\"f\",\"p\":\"base/1\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A \
	"\",\"r\":\"" FULL "\",\"o\":\"data/f000001\",\"off\":0}\n"
#define END(n)		"{\"end\":true,\"entries\":" #n "}\n"

static void
test_reader_hostile(void **state)
{
	fixture    *f = *state;
	char	   *header = real_header_line(f);
	char	   *bad_header;
	char	   *text;
	static const struct
	{
		const char *body;
		const char *needle;
	}			cases[] = {
		{"{\"t\":\"d\",\"p\":\"base/../etc\",\"m\":448,\"mt\":1}\n" END(1), "line 2: the path is not"},
		{"{\"t\":\"d\",\"p\":\"/etc\",\"m\":448,\"mt\":1}\n" END(1), "line 2: the path is not"},
		{"{\"t\":\"d\",\"p\":\"..\",\"m\":448,\"mt\":1}\n" END(1), "not a safe"},
		{"{\"t\":\"d\",\"p\":\"base\\u0001x\",\"m\":448,\"mt\":1}\n" END(1), "not a safe"},
		{"{\"t\":\"d\",\"px\":\"2e2e\",\"m\":448,\"mt\":1}\n" END(1), "not a safe"},
		{"{\"t\":\"d\",\"px\":\"6100\",\"m\":448,\"mt\":1}\n" END(1), "not hex text"},
		{"{\"t\":\"d\",\"p\":\"a\",\"px\":\"61\",\"m\":448,\"mt\":1}\n" END(1), "both"},
		{F_BASE_1 D_BASE END(2), "line 3: entry 'base' does not come after 'base/1'"},
		{D_BASE D_BASE END(2), "out of order"},
		{D_BASE F_BASE_1, "line 3: the last line is not the end line"},
		{D_BASE F_BASE_1 END(3), "counts 3 entries, the manifest has 2"},
		{D_BASE F_BASE_1 END(1), "counts 1 entries"},
		{D_BASE "{\"end\":false,\"entries\":1}\n", "\"end\" is not true"},
		{D_BASE END(1) D_BASE, "line 4: the last line is not the end line"},
		{D_BASE END(1) "\n", "line 4: the last line is not the end line"},
		{D_BASE "{\"end\":true,\"entries\":1,\"entries\":1}\n", "line 3: the last line is not"},
		{D_BASE "{\"end\":true,\"entries\":1}", "not terminated"},
		{D_BASE "{\"t\":\"d\",\"p\":\"base/1\",\n" END(2), "line 3: not valid JSON"},
		{"[1,2]\n" END(1), "not a JSON object"},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":448,\"mt\":1,\"m\":448}\n" END(1), "not valid JSON"},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":448,\"mt\":1,\"zz\":1}\n" END(1), "unknown field \"zz\""},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":448,\"mt\":1,\"s\":1}\n" END(1), "unknown field \"s\""},
		{"{\"t\":\"x\",\"p\":\"base\",\"m\":448,\"mt\":1}\n" END(1), "\"t\" is not"},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":65535,\"mt\":1}\n" END(1), "\"m\""},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":448}\n" END(1), "\"mt\" is missing"},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":448,\"mt\":1.5}\n" END(1), "\"mt\""},
		{"{\"t\":\"d\",\"p\":\"base\",\"m\":\"448\",\"mt\":1}\n" END(1), "\"m\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"xyz\",\"r\":\"" FULL
			"\",\"o\":\"data/f1\",\"off\":0}\n" END(1), "\"h\" is not a SHA-256"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "0\",\"r\":\"" FULL
			"\",\"o\":\"data/f1\",\"off\":0}\n" END(1), "SHA-256"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"g" SHA_A "\",\"r\":\"" FULL
			"\",\"o\":\"data/f1\",\"off\":0}\n" END(1), "SHA-256"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\",\"r\":\""
			OTHER_FULL "\",\"o\":\"data/f1\",\"off\":0}\n" END(1), "the ref of 'a'"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A
			"\",\"r\":\"../../x\",\"o\":\"data/f1\",\"off\":0}\n" END(1), "the ref of 'a'"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\",\"r\":\"" FULL
			"\",\"o\":\"../../drbackup.repo\",\"off\":0}\n" END(1), "the object of 'a'"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\",\"r\":\"" FULL
			"\",\"o\":\"data/f1\"}\n" END(1), "\"off\" is missing"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\",\"r\":\"" FULL
			"\"}\n" END(1), "without \"o\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\"}\n" END(1),
			"has no object"},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":-1,\"h\":\"" SHA_A "\"}\n" END(1), "\"s\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":0,\"h\":\"" SHA_A "\",\"bad\":[-1]}\n"
			END(1), "\"bad\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":0,\"h\":\"" SHA_A "\",\"bad\":[4294967296]}\n"
			END(1), "\"bad\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":0,\"h\":\"" SHA_A "\",\"bad\":[]}\n"
			END(1), "\"bad\""},
		{"{\"t\":\"f\",\"p\":\"a\",\"m\":384,\"mt\":2,\"s\":5,\"h\":\"" SHA_A "\",\"r\":\"" FULL
			"\",\"o\":\"data/f1\",\"off\":9223372036854775807}\n" END(1), "above 2^63"},
		{"{\"t\":\"l\",\"p\":\"pg_tblspc/16385\",\"m\":511,\"mt\":1,\"dst\":\"srv/ts\"}\n" END(1),
			"tablespace link"},
		{"{\"t\":\"l\",\"p\":\"pg_tblspc/16385\",\"m\":511,\"mt\":1,\"dst\":\"/srv/../etc\"}\n" END(1),
			"tablespace link"},
		{"{\"t\":\"l\",\"p\":\"pg_wal\",\"m\":511,\"mt\":1}\n" END(1), "\"dst\" is missing"},
		{"{\"t\":\"l\",\"p\":\"pg_wal\",\"m\":511,\"mt\":1,\"dst\":\"\"}\n" END(1), "no target"},
		{"{\"t\":\"l\",\"p\":\"pg_wal\",\"m\":511,\"mt\":1,\"dst\":\"/a\\nb\"}\n" END(1), "control"},
	};

	/* the crafted base is valid: what follows is refused for its one change only */
	text = xasprintf("%s" D_BASE F_BASE_1 END(2), header);
	expect_manifest_accepted(f, text, 2);
	free(text);
	text = xasprintf("%s" END(0), header);
	expect_manifest_accepted(f, text, 0);
	free(text);
	text = xasprintf("%s{\"t\":\"l\",\"p\":\"pg_wal\",\"m\":511,\"mt\":1,\"dst\":\"../x\"}\n" END(1),
					 header);
	expect_manifest_accepted(f, text, 1);
	free(text);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		text = xasprintf("%s%s", header, cases[i].body);
		expect_manifest_refused(f, text, cases[i].needle);
		free(text);
	}

	/* cut short or miscounted: refused at open (where the copy could stand in); a bad
	 * entry: refused by next, naming its line */
	text = xasprintf("%s" D_BASE F_BASE_1, header);
	assert_true(expect_manifest_refused(f, text, "line 3: the last line is not the end line"));
	free(text);
	text = xasprintf("%s" D_BASE END(2), header);
	assert_true(expect_manifest_refused(f, text, "line 3: the end line counts 2 entries, the "
										"manifest has 1"));
	free(text);
	text = xasprintf("%s" D_BASE "{\"t\":\"d\",\"p\":\"../x\",\"m\":448,\"mt\":1}\n" END(2), header);
	assert_false(expect_manifest_refused(f, text, "line 3: the path is not a safe relative path"));
	free(text);

	/* header damage */
	expect_manifest_refused(f, "", "is empty");
	expect_manifest_refused(f, "\n" END(0), "line 1: not valid JSON");
	bad_header = replace_once(header, "\"format\":1", "\"format\":2");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "line 1: unknown manifest format 2");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"label\":\"" FULL "\"", "\"label\":\"" OTHER_FULL "\"");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "is of backup '" OTHER_FULL "', not '" FULL "'");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"type\":\"full\"", "\"type\":\"incr\"");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "does not match label");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"parent\":null", "\"parent\":\"" FULL "\"");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "parent");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"system-id\":\"18446744073709551615\"", "\"system-id\":18");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "\"system-id\" is not a string");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"start-lsn\":\"12345678/28\"", "\"start-lsn\":\"0/x\"");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "\"start-lsn\" is not an LSN");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"wal-start\":\"", "\"wal-start\":\"../");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "\"wal-start\"");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"location\":\"/srv/ts1\"", "\"location\":\"srv\"");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "tablespace 0");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, "\"compress\":\"zstd\"", "\"compress\":\"zstd\",\"x\":1");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "unknown field \"x\"");
	free(text);
	free(bad_header);
	bad_header = replace_once(header, ",\"size\":9223372036854775807", "");
	text = xasprintf("%s" END(0), bad_header);
	expect_manifest_refused(f, text, "\"size\" is missing");
	free(text);
	free(bad_header);
	free(header);
}

/* ------------------------------------------------------------------------------------ */
/* Fallback to the copy                                                                 */
/* ------------------------------------------------------------------------------------ */

static void
test_manifest_fallback(void **state)
{
	fixture    *f = *state;
	char	   *main_path = backup_object_path(STANZA, INCR, MANIFEST_FILE);
	char	   *copy_path = backup_object_path(STANZA, INCR, MANIFEST_FILE_COPY);
	char	   *main_file = object_file(f, main_path);
	char	   *copy_file = object_file(f, copy_path);
	char	   *saved;
	char	   *log;
	char	   *good;
	manifest_header h;
	const uint64_t n = 3000;

	write_generated(f, n, NULL);
	good = get_text(f, main_path);
	saved = xasprintf("%s/saved", f->dir);
	assert_int_equal(rename(main_file, saved), 0);

	/* main corrupted (one flipped bit in the stored file): the copy, with a warning */
	file_copy(saved, main_file);
	damage(f, main_path);
	log_capture(f);
	read_generated(f, n);
	log = log_captured(f);
	assert_contains(log, main_path);
	assert_contains(log, "using the copy");
	free(log);

	/* main deleted */
	delete_object(f, main_path);
	log_capture(f);
	read_generated(f, n);
	log = log_captured(f);
	assert_contains(log, "is missing");
	assert_contains(log, copy_path);
	free(log);

	/* main whole but its content refused (checked at open): the copy */
	{
		char	   *cut = xstrdup(good);

		strstr(cut, "\n{\"end\"")[1] = '\0';	/* drop the end line */
		put_text(f, main_path, cut);
		free(cut);
		log_capture(f);
		read_generated(f, n);
		log = log_captured(f);
		assert_contains(log, "line 3001: the last line is not the end line");
		free(log);
	}

	/* both corrupted: the main object's error, the copy's appended */
	file_copy(saved, main_file);
	damage(f, main_path);
	damage(f, copy_path);
	assert_null(manifest_reader_open(f->repo, STANZA, INCR, &h));
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_contains(err_msg(), main_path);
	assert_contains(err_msg(), "the copy failed too");
	assert_contains(err_msg(), copy_path);

	/* main damaged, copy missing: integrity still */
	delete_object(f, copy_path);
	assert_null(manifest_reader_open(f->repo, STANZA, INCR, &h));
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);

	/* main missing, copy damaged: the copy's damage */
	rename(main_file, copy_file);
	assert_null(manifest_reader_open(f->repo, STANZA, INCR, &h));
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_contains(err_msg(), copy_path);

	/* neither */
	delete_object(f, copy_path);
	assert_null(manifest_reader_open(f->repo, STANZA, INCR, &h));
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);

	/* the main object restored: read without any warning */
	assert_int_equal(rename(saved, main_file), 0);
	log_capture(f);
	read_generated(f, n);
	log = log_captured(f);
	assert_string_equal(log, "");
	free(log);

	free(good);
	free(saved);
	free(main_path);
	free(copy_path);
	free(main_file);
	free(copy_file);
}

/* ------------------------------------------------------------------------------------ */
/* Catalog                                                                              */
/* ------------------------------------------------------------------------------------ */

static void
assert_backup_equal(const catalog_backup *a, const catalog_backup *b)
{
	assert_string_equal(a->label, b->label);
	assert_int_equal(a->type, b->type);
	if (a->parent || b->parent)
	{
		assert_non_null(a->parent);
		assert_non_null(b->parent);
		assert_string_equal(a->parent, b->parent);
	}
	assert_int_equal(a->nreferences, b->nreferences);
	for (size_t i = 0; i < a->nreferences; i++)
		assert_string_equal(a->references[i], b->references[i]);
	assert_true(a->system_id == b->system_id);
	assert_int_equal(a->pg_version, b->pg_version);
	assert_int_equal(a->timeline, b->timeline);
	assert_true(a->start_lsn == b->start_lsn);
	assert_true(a->stop_lsn == b->stop_lsn);
	assert_true(a->start_time == b->start_time);
	assert_true(a->stop_time == b->stop_time);
	assert_string_equal(a->wal_start, b->wal_start);
	assert_string_equal(a->wal_stop, b->wal_stop);
	assert_int_equal(a->wal_segment_size, b->wal_segment_size);
	assert_true(a->file_count == b->file_count);
	assert_true(a->size == b->size);
	assert_true(a->size_copied == b->size_copied);
	assert_true(a->repo_size == b->repo_size);
	assert_true(a->damaged_pages == b->damaged_pages);
	assert_true(a->duration == b->duration);
	assert_memory_equal(a->manifest_sha256, b->manifest_sha256, 32);
	assert_int_equal(a->restore_test.present, b->restore_test.present);
	if (a->restore_test.present)
	{
		assert_int_equal(a->restore_test.success, b->restore_test.success);
		assert_true(a->restore_test.time == b->restore_test.time);
		assert_true(a->restore_test.duration == b->restore_test.duration);
		if (a->restore_test.target)
			assert_string_equal(a->restore_test.target, b->restore_test.target);
		else
			assert_null(b->restore_test.target);
		if (a->restore_test.failed_check)
			assert_string_equal(a->restore_test.failed_check, b->restore_test.failed_check);
		else
			assert_null(b->restore_test.failed_check);
	}
}

/* A catalog of FULL, DIFF, INCR, INCR2 (added out of order) and FULL2. */
static void
catalog_sample(catalog *c, catalog_backup rec[5])
{
	manifest_header h;
	uint8_t		sha[32];

	catalog_init(c, STANZA);
	for (int i = 0; i < 32; i++)
		sha[i] = (uint8_t) (0xf0 + i);
	header_init(&h, FULL, BACKUP_FULL, NULL);
	catalog_backup_from_header(&rec[0], &h, NULL, 3600.25, sha);
	rec[0].restore_test.present = true;
	rec[0].restore_test.success = false;
	rec[0].restore_test.time = 1795400000;
	rec[0].restore_test.duration = 12.5;
	rec[0].restore_test.target = xstrdup("2026-11-22 00:00:00+00");
	rec[0].restore_test.failed_check = xstrdup("row count of \"t1\"\n");
	header_init(&h, DIFF, BACKUP_DIFF, FULL);
	h.size = 5;
	catalog_backup_from_header(&rec[1], &h, &rec[0], 1.0, sha);
	header_init(&h, INCR, BACKUP_INCR, DIFF);
	catalog_backup_from_header(&rec[2], &h, &rec[1], 0, NULL);
	rec[2].restore_test.present = true;
	rec[2].restore_test.success = true;
	rec[2].restore_test.time = 1795400001;
	rec[2].restore_test.duration = 0.125;
	header_init(&h, INCR2, BACKUP_INCR, INCR);
	h.stop_lsn = UINT64_MAX;
	catalog_backup_from_header(&rec[3], &h, &rec[2], 7.75, sha);
	header_init(&h, FULL2, BACKUP_FULL, NULL);
	h.system_id = 0;
	catalog_backup_from_header(&rec[4], &h, NULL, 2, sha);

	catalog_add(c, &rec[3]);
	catalog_add(c, &rec[0]);
	catalog_add(c, &rec[4]);
	catalog_add(c, &rec[2]);
	catalog_add(c, &rec[1]);
}

static void
test_catalog_memory(void **state)
{
	catalog		c;
	catalog_backup rec[5];
	catalog_backup changed;

	(void) state;
	catalog_sample(&c, rec);

	/* references: the parent's and its own */
	assert_int_equal(rec[0].nreferences, 1);
	assert_string_equal(rec[0].references[0], FULL);
	assert_null(rec[0].parent);
	assert_int_equal(rec[1].nreferences, 2);
	assert_string_equal(rec[1].references[1], DIFF);
	assert_string_equal(rec[1].parent, FULL);
	assert_int_equal(rec[3].nreferences, 4);
	assert_string_equal(rec[3].references[0], FULL);
	assert_string_equal(rec[3].references[1], DIFF);
	assert_string_equal(rec[3].references[2], INCR);
	assert_string_equal(rec[3].references[3], INCR2);
	assert_true(rec[0].system_id == UINT64_MAX);
	assert_string_equal(rec[0].wal_start, "000000030000000100000004");
	assert_true(rec[0].duration == 3600.25);
	assert_int_equal(rec[0].manifest_sha256[31], (uint8_t) (0xf0 + 31));
	assert_int_equal(rec[2].manifest_sha256[0], 0);	/* NULL checksum: zeros */

	/* label order whatever the order of adding; deep copies */
	assert_int_equal(c.nbackups, 5);
	assert_string_equal(c.backups[0].label, FULL);
	assert_string_equal(c.backups[1].label, DIFF);
	assert_string_equal(c.backups[2].label, INCR);
	assert_string_equal(c.backups[3].label, INCR2);
	assert_string_equal(c.backups[4].label, FULL2);
	assert_ptr_not_equal(c.backups[0].label, rec[0].label);
	assert_ptr_not_equal(c.backups[0].restore_test.target, rec[0].restore_test.target);
	for (int i = 0; i < 5; i++)
		assert_backup_equal(&rec[i], catalog_find(&c, rec[i].label));
	assert_null(catalog_find(&c, OTHER_FULL));

	/* latest by the backup's own time, not label order (FULL2 sorts last, INCR2 is newer) */
	assert_string_equal(catalog_latest(&c, -1)->label, INCR2);
	assert_string_equal(catalog_latest(&c, BACKUP_FULL)->label, FULL2);
	assert_string_equal(catalog_latest(&c, BACKUP_DIFF)->label, DIFF);
	assert_string_equal(catalog_latest(&c, BACKUP_INCR)->label, INCR2);

	/* replace */
	{
		manifest_header h;

		header_init(&h, INCR, BACKUP_INCR, DIFF);
		h.size = 42;
		catalog_backup_from_header(&changed, &h, &rec[1], 9, NULL);
	}
	catalog_add(&c, &changed);
	assert_int_equal(c.nbackups, 5);
	assert_true(catalog_find(&c, INCR)->size == 42);
	assert_false(catalog_find(&c, INCR)->restore_test.present);
	catalog_backup_clear(&changed);

	/* remove */
	catalog_remove(&c, DIFF);
	assert_int_equal(c.nbackups, 4);
	assert_null(catalog_find(&c, DIFF));
	assert_string_equal(c.backups[1].label, INCR);
	catalog_remove(&c, DIFF);	/* absent: no-op */
	assert_int_equal(c.nbackups, 4);
	catalog_remove(&c, FULL2);
	catalog_remove(&c, FULL);
	catalog_remove(&c, INCR);
	catalog_remove(&c, INCR2);
	assert_int_equal(c.nbackups, 0);
	assert_null(catalog_latest(&c, -1));

	for (int i = 0; i < 5; i++)
		catalog_backup_clear(&rec[i]);
	catalog_free(&c);
}

static void
test_catalog_round_trip(void **state)
{
	fixture    *f = *state;
	catalog		c;
	catalog		got;
	catalog_backup rec[5];
	char	   *text;

	/* nothing yet: an empty catalog */
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	assert_int_equal(got.nbackups, 0);
	assert_string_equal(got.stanza, STANZA);
	catalog_free(&got);

	catalog_sample(&c, rec);
	if (catalog_write(f->repo, &c) != 0)
		fail_msg("catalog_write: %s", err_msg());
	if (catalog_read(f->repo, STANZA, &got) != 0)
		fail_msg("catalog_read: %s", err_msg());
	assert_string_equal(got.stanza, STANZA);
	assert_int_equal(got.nbackups, 5);
	for (size_t i = 0; i < 5; i++)
		assert_backup_equal(&c.backups[i], &got.backups[i]);
	catalog_free(&got);

	/* the text: numbers that must stay exact are text; main and copy alike */
	text = get_text(f, "stanza/main/backup/backup.catalog");
	assert_contains(text, "\"system-id\": \"18446744073709551615\"");
	assert_contains(text, "\"stop-lsn\": \"FFFFFFFF/FFFFFFFF\"");
	assert_contains(text, "\"size\": 9223372036854775807");
	assert_contains(text, "\"format\": 1");
	{
		char	   *copy = get_text(f, "stanza/main/backup/backup.catalog.copy");

		assert_string_equal(text, copy);
		free(copy);
	}
	free(text);

	/* another stanza's catalog is elsewhere */
	assert_int_equal(catalog_read(f->repo, "other", &got), 0);
	assert_int_equal(got.nbackups, 0);
	catalog_free(&got);

	for (int i = 0; i < 5; i++)
		catalog_backup_clear(&rec[i]);
	catalog_free(&c);
}

static void
test_catalog_fallback(void **state)
{
	fixture    *f = *state;
	const char *main_path = "stanza/main/backup/backup.catalog";
	const char *copy_path = "stanza/main/backup/backup.catalog.copy";
	char	   *main_file = object_file(f, main_path);
	char	   *saved = xasprintf("%s/saved", f->dir);
	catalog		c;
	catalog		got;
	catalog_backup rec[5];
	char	   *log;

	catalog_sample(&c, rec);
	assert_int_equal(catalog_write(f->repo, &c), 0);
	file_copy(main_file, saved);

	/* main corrupted */
	damage(f, main_path);
	log_capture(f);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	log = log_captured(f);
	assert_contains(log, main_path);
	assert_contains(log, "using the copy");
	free(log);
	assert_int_equal(got.nbackups, 5);
	assert_backup_equal(&c.backups[3], &got.backups[3]);
	catalog_free(&got);

	/* main deleted */
	delete_object(f, main_path);
	log_capture(f);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	log = log_captured(f);
	assert_contains(log, "is missing");
	free(log);
	assert_int_equal(got.nbackups, 5);
	catalog_free(&got);

	/* main refused (hostile content, pipeline-valid): the copy */
	put_text(f, main_path, "{\"format\":1,\"stanza\":\"main\",\"backups\":[{\"label\":\"../x\"}]}");
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	assert_int_equal(got.nbackups, 5);
	catalog_free(&got);

	/* both damaged */
	file_copy(saved, main_file);
	damage(f, main_path);
	damage(f, copy_path);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_contains(err_msg(), main_path);
	assert_contains(err_msg(), copy_path);
	assert_int_equal(got.nbackups, 0);	/* left zeroed: nothing to free */
	assert_null(got.stanza);
	assert_null(got.backups);
	catalog_free(&got);

	/* main missing, copy damaged */
	delete_object(f, main_path);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	catalog_free(&got);

	/* main damaged, copy missing */
	file_copy(saved, main_file);
	damage(f, main_path);
	delete_object(f, copy_path);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	catalog_free(&got);

	/* a rewrite repairs both */
	assert_int_equal(catalog_write(f->repo, &c), 0);
	log_capture(f);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	log = log_captured(f);
	assert_string_equal(log, "");
	free(log);
	assert_int_equal(got.nbackups, 5);
	catalog_free(&got);

	for (int i = 0; i < 5; i++)
		catalog_backup_clear(&rec[i]);
	catalog_free(&c);
	free(main_file);
	free(saved);
}

/* Store text as the main catalog only; catalog_read refuses it naming needle. */
static void
expect_catalog_refused(fixture *f, const char *text, const char *needle)
{
	catalog		got;

	delete_object(f, "stanza/main/backup/backup.catalog.copy");
	put_text(f, "stanza/main/backup/backup.catalog", text);
	if (catalog_read(f->repo, STANZA, &got) == 0)
		fail_msg("catalog accepted:\n%s", text);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_contains(err_msg(), "stanza/main/backup/backup.catalog");
	assert_contains(err_msg(), needle);
	assert_int_equal(got.nbackups, 0);
	catalog_free(&got);
}

static void
test_catalog_hostile(void **state)
{
	fixture    *f = *state;
	catalog		c;
	catalog		got;
	catalog_backup rec[5];
	char	   *good;
	static const struct
	{
		const char *old;
		const char *new;
		const char *needle;
	}			cases[] = {
		{"\"label\": \"" FULL2 "\"", "\"label\": \"../../etc\"", "not a backup label"},
		{"\"label\": \"" FULL2 "\"", "\"label\": 5", "\"label\" is not a string"},
		{"\"type\": \"diff\"", "\"type\": \"weird\"", "the type of"},
		{"\"type\": \"diff\"", "\"type\": \"incr\"", "the type of"},
		{"\"parent\": null", "\"parent\": \"" FULL "\"", "the parent of"},
		{"\"parent\": \"" FULL "\"", "\"parent\": \"" OTHER_FULL "\"", "the parent of"},
		{"\"" FULL "\",\n        \"" DIFF "\"", "\"x\",\n        \"" DIFF "\"", "reference 0"},
		{"\"" FULL "\",\n        \"" DIFF "\"", "\"" OTHER_FULL "\",\n        \"" DIFF "\"",
			"reference 0"},
		{"\"" FULL "\",\n        \"" DIFF "\"", "\"" DIFF "\",\n        \"" FULL "\"",
			"not in label order"},
		{"\"references\": [\n        \"" FULL2 "\"\n      ]", "\"references\": []", "\"references\""},
		{"\"system-id\": \"0\"", "\"system-id\": \"-1\"", "\"system-id\""},
		{"\"system-id\": \"0\"", "\"system-id\": 0", "\"system-id\""},
		{"\"start-lsn\": \"12345678/28\"", "\"start-lsn\": \"0/zz\"", "\"start-lsn\""},
		{"\"start-lsn\": \"12345678/28\"", "\"start-lsn\": \"FFFFFFFF/FFFFFFFF\"", "after its stop"},
		{"\"wal-start\": \"000000030000000100000004\"", "\"wal-start\": \"../../x\"", "\"wal-start\""},
		{"\"wal-segment-size\": 16777216", "\"wal-segment-size\": 1000", "\"wal-segment-size\""},
		{"\"timeline\": 3", "\"timeline\": 0", "\"timeline\""},
		{"\"size\": 5", "\"size\": -5", "\"size\""},
		{"\"duration\": 2.0", "\"duration\": -2.0", "\"duration\""},
		{"\"duration\": 2.0", "\"duration\": \"2\"", "\"duration\""},
		{"\"manifest-sha256\": \"f0", "\"manifest-sha256\": \"", "\"manifest-sha256\""},
		{"\"success\": false", "\"success\": 0", "\"success\""},
		{"\"success\": false", "\"success\": false, \"extra\": 1", "restore-test"},
		{"\"duration\": 2.0", "\"duration\": 2.0, \"bogus\": 1", "unknown field \"bogus\""},
		{"\"stanza\": \"main\"", "\"stanza\": \"other\"", "another stanza"},
		{"\"format\": 1", "\"format\": 2", "not a catalog of format 1"},
		{"\"backups\": [", "\"backups\": 5, \"b\": [", "not a catalog"},
		{"\"file-count\": 99000,", "", "\"file-count\" is missing"},
	};

	catalog_sample(&c, rec);
	assert_int_equal(catalog_write(f->repo, &c), 0);
	good = get_text(f, "stanza/main/backup/backup.catalog");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *text = replace_once(good, cases[i].old, cases[i].new);

		expect_catalog_refused(f, text, cases[i].needle);
		free(text);
	}
	{
		/* FULL2 renamed to a full that sorts before FULL (its references too) */
		char	   *a = replace_once(good, "\"label\": \"" FULL2 "\"",
									 "\"label\": \"20261120-000000F\"");
		char	   *b = replace_once(a, "\"references\": [\n        \"" FULL2 "\"",
									 "\"references\": [\n        \"20261120-000000F\"");

		expect_catalog_refused(f, b, "labels out of order");
		free(a);
		free(b);
	}
	expect_catalog_refused(f, "{\"format\":1,", "not valid JSON");
	expect_catalog_refused(f, "[]", "not a catalog");
	expect_catalog_refused(f, "", "not valid JSON");

	/* the unchanged text still reads (the cases above changed one thing each) */
	put_text(f, "stanza/main/backup/backup.catalog", good);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	assert_int_equal(got.nbackups, 5);
	catalog_free(&got);
	free(good);

	/* catalog_write refuses what catalog_read would refuse; nothing is stored */
	{
		catalog		bad;
		catalog_backup b = rec[0];

		catalog_init(&bad, "other");
		b.label = "20261121-013000X";
		catalog_add(&bad, &b);
		assert_int_equal(catalog_write(f->repo, &bad), -1);
		assert_int_equal(err_kind(), DRB_ERR_INTERNAL);
		assert_false(object_exists(f, "stanza/other/backup/backup.catalog"));
		catalog_free(&bad);

		catalog_init(&bad, "other");
		b = rec[1];
		b.nreferences = 1;		/* lacks itself */
		catalog_add(&bad, &b);
		assert_int_equal(catalog_write(f->repo, &bad), -1);
		assert_int_equal(err_kind(), DRB_ERR_INTERNAL);
		assert_false(object_exists(f, "stanza/other/backup/backup.catalog"));
		catalog_free(&bad);
	}

	/* free text that is not UTF-8 is stored with '?' */
	free(rec[0].restore_test.failed_check);
	rec[0].restore_test.failed_check = xstrdup("caf\xe9 check");
	catalog_add(&c, &rec[0]);
	assert_int_equal(catalog_write(f->repo, &c), 0);
	assert_int_equal(catalog_read(f->repo, STANZA, &got), 0);
	assert_string_equal(catalog_find(&got, FULL)->restore_test.failed_check, "caf? check");
	catalog_free(&got);

	for (int i = 0; i < 5; i++)
		catalog_backup_clear(&rec[i]);
	catalog_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_cmp),
		cmocka_unit_test(test_path_safe),
		cmocka_unit_test(test_labels),
		cmocka_unit_test(test_field_parsers),
		cmocka_unit_test(test_catalog_memory),
#define BOTH_CIPHERS(t) \
		cmocka_unit_test_prestate_setup_teardown(t, repo_setup, repo_teardown, &cipher_none), \
		cmocka_unit_test_prestate_setup_teardown(t, repo_setup, repo_teardown, &cipher_aes)
		BOTH_CIPHERS(test_manifest_round_trip_large),
		BOTH_CIPHERS(test_manifest_links_and_bytes),
		BOTH_CIPHERS(test_manifest_two_repositories),
		BOTH_CIPHERS(test_writer_refusals),
		BOTH_CIPHERS(test_reader_hostile),
		BOTH_CIPHERS(test_manifest_fallback),
		BOTH_CIPHERS(test_catalog_round_trip),
		BOTH_CIPHERS(test_catalog_fallback),
		BOTH_CIPHERS(test_catalog_hostile),
	};

	keyring_test_set_scrypt_n(1024);
	log_set_console_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
