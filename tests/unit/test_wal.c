/*
 * test_wal.c — WAL file knowledge (wal.c) and the archive core (archive.c).
 *
 * wal.c: name parsing of every kind and of names that must be refused (paths, lower-case
 * hex, wrong lengths and suffixes, timeline 0), the next segment for 16 MiB, 64 MiB and
 * 1 GiB segments with log rollover, the page magic table, and the header check against a
 * crafted long page header (good, wrong magic, wrong system identifier, wrong sizes,
 * missing long-header flag, timeline and page address).
 * archive.c, on two posix repositories (one encrypted): object names, load + hash of a
 * crafted segment, push to both, idempotent re-push, conflicting re-push, a name stored
 * twice, get into place, get falling through a damaged or unreachable repository, and
 * "not found" only when every repository answered that it is absent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "archive.h"
#include "error.h"
#include "filter_hash.h"
#include "mem.h"
#include "storage_posix.h"
#include "wal.h"

#define MIB			(1024u * 1024u)
#define SYSID		UINT64_C(7301234567890123456)
#define SEG_NAME	"000000010000000200000003"

/* ---------------------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------------------- */

static void
test_parse_kinds(void **state)
{
	wal_name	w;

	(void) state;
	assert_int_equal(wal_name_parse("000000010000000A000000FF", &w), 0);
	assert_int_equal(w.kind, WAL_SEGMENT);
	assert_int_equal(w.tli, 1);
	assert_int_equal(w.log, 0xA);
	assert_int_equal(w.seg, 0xFF);
	assert_string_equal(w.name, "000000010000000A000000FF");

	assert_int_equal(wal_name_parse("0000002A00000000000000C0.partial", &w), 0);
	assert_int_equal(w.kind, WAL_PARTIAL);
	assert_int_equal(w.tli, 0x2A);
	assert_int_equal(w.log, 0);
	assert_int_equal(w.seg, 0xC0);
	assert_string_equal(w.name, "0000002A00000000000000C0.partial");

	assert_int_equal(wal_name_parse("000000010000000000000002.00000028.backup", &w), 0);
	assert_int_equal(w.kind, WAL_BACKUP);
	assert_int_equal(w.tli, 1);
	assert_int_equal(w.seg, 2);

	assert_int_equal(wal_name_parse("0000000B.history", &w), 0);
	assert_int_equal(w.kind, WAL_HISTORY);
	assert_int_equal(w.tli, 0xB);
	assert_string_equal(w.name, "0000000B.history");

	/* the largest segment number there is: 1 MiB segments */
	assert_int_equal(wal_name_parse("FFFFFFFFFFFFFFFF00000FFF", &w), 0);
	assert_int_equal(w.tli, 0xFFFFFFFF);
	assert_int_equal(w.log, 0xFFFFFFFF);
	assert_int_equal(w.seg, 0xFFF);
}

static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"pg_wal/000000010000000000000001",	/* a path */
		"/000000010000000000000001",
		"../00000002.history",
		"000000010000000a000000ff",	/* PostgreSQL writes upper case */
		"0000000b.history",
		"000000010000000000000001.PARTIAL",
		"00000002.HISTORY",
		"00000001000000000000001",	/* 23 digits */
		"0000000100000000000000011",	/* 25 digits */
		"00000001000000000000000G",
		"000000000000000000000001",	/* timeline 0 */
		"00000000.history",
		"000000010000000000001000",	/* segment number beyond 2^32 / 1 MiB */
		"000000010000000000000001.part",
		"000000010000000000000001.partial.x",
		"000000010000000000000001.partialx",
		"000000010000000000000001.0000028.backup",
		"000000010000000000000001.00000028.backupx",
		"000000010000000000000001.0000002g.backup",
		"000000010000000000000001.00000028",
		"00000002.history.tmp",
		"0000002.history",
		"RECOVERYXLOG",
		"000000010000000000000001 ",
	};
	wal_name	w;

	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		err_clear();
		if (wal_name_parse(bad[i], &w) != -1)
			fail_msg("'%s' was accepted as a WAL name", bad[i]);
		assert_int_equal(err_kind(), DRB_ERR_USAGE);
		assert_non_null(strstr(err_msg(), "not a WAL file name"));
	}
	assert_int_equal(wal_name_parse(NULL, &w), -1);
}

static void
expect_next(const char *from, uint32_t seg_size, const char *want)
{
	wal_name	w;
	wal_name	n;

	assert_int_equal(wal_name_parse(from, &w), 0);
	wal_segment_next(&w, seg_size, &n);
	assert_string_equal(n.name, want);
	assert_int_equal(n.kind, WAL_SEGMENT);
	/* the result parses back to the same numbers */
	assert_int_equal(wal_name_parse(n.name, &w), 0);
	assert_int_equal(w.tli, n.tli);
	assert_int_equal(w.log, n.log);
	assert_int_equal(w.seg, n.seg);
}

static void
test_next_segment(void **state)
{
	(void) state;
	/* 16 MiB: 256 segments per log */
	expect_next("000000010000000000000001", 16 * MIB, "000000010000000000000002");
	expect_next("0000000100000000000000FE", 16 * MIB, "0000000100000000000000FF");
	expect_next("0000000100000000000000FF", 16 * MIB, "000000010000000100000000");
	expect_next("0000000300000A1F000000FF", 16 * MIB, "0000000300000A2000000000");
	/* 64 MiB: 64 segments per log */
	expect_next("00000001000000050000003E", 64 * MIB, "00000001000000050000003F");
	expect_next("00000001000000050000003F", 64 * MIB, "000000010000000600000000");
	/* 1 GiB: 4 per log; 1 MiB: 4096 per log */
	expect_next("000000020000000700000003", 1024 * MIB, "000000020000000800000000");
	expect_next("000000020000000700000FFF", 1 * MIB, "000000020000000800000000");
	expect_next("0000000200000007000000FF", 1 * MIB, "000000020000000700000100");
	/* the segment after a .partial */
	expect_next("000000010000000000000009.partial", 16 * MIB, "00000001000000000000000A");
}

static void
test_segment_name(void **state)
{
	char		name[25];

	(void) state;
	/* position = log * (2^32 / size) + seg */
	wal_segment_name(1, 0, 16 * MIB, name);
	assert_string_equal(name, "000000010000000000000000");
	wal_segment_name(1, 0xFF, 16 * MIB, name);
	assert_string_equal(name, "0000000100000000000000FF");
	wal_segment_name(3, 0x100, 16 * MIB, name);
	assert_string_equal(name, "000000030000000100000000");
	wal_segment_name(2, 7 * 4 + 3, 1024 * MIB, name);
	assert_string_equal(name, "000000020000000700000003");
	wal_segment_name(2, 8 * 4096 + 0x100, 1 * MIB, name);
	assert_string_equal(name, "000000020000000800000100");
	/* the LSN 0/5000100 lies in segment 5 of 16 MiB */
	wal_segment_name(1, (UINT64_C(0x5000100) - 1) / (16 * MIB), 16 * MIB, name);
	assert_string_equal(name, "000000010000000000000005");
}

static void
test_page_magic(void **state)
{
	(void) state;
	assert_int_equal(wal_page_magic(12), 0xD101);
	assert_int_equal(wal_page_magic(13), 0xD106);
	assert_int_equal(wal_page_magic(14), 0xD10D);
	assert_int_equal(wal_page_magic(15), 0xD110);
	assert_int_equal(wal_page_magic(16), 0xD113);
	assert_int_equal(wal_page_magic(17), 0xD116);
	assert_int_equal(wal_page_magic(11), 0);
	assert_int_equal(wal_page_magic(18), 0);
	assert_int_equal(wal_page_magic(0), 0);
}

/* ---------------------------------------------------------------------------------------
 * Header check
 * ------------------------------------------------------------------------------------- */

/* A long page header as PostgreSQL writes it at the start of segment name. */
static void
make_header(uint8_t *h, uint16_t magic, uint16_t info, uint32_t tli, uint64_t pageaddr,
			uint64_t sysid, uint32_t seg_size)
{
	uint32_t	rem = 0;
	uint32_t	blcksz = 8192;

	memset(h, 0, WAL_LONG_HEADER_SIZE);
	memcpy(h, &magic, 2);
	memcpy(h + 2, &info, 2);
	memcpy(h + 4, &tli, 4);
	memcpy(h + 8, &pageaddr, 8);
	memcpy(h + 16, &rem, 4);
	memcpy(h + 24, &sysid, 8);
	memcpy(h + 32, &seg_size, 4);
	memcpy(h + 36, &blcksz, 4);
}

/* Start LSN of log 2, segment 3 with 16 MiB segments. */
#define SEG_START	((UINT64_C(2) << 32) | (UINT64_C(3) * 16 * MIB))

static int
check(const uint8_t *h, size_t len, uint64_t file_size, const char *name, uint64_t sysid,
	  int major, uint32_t *seg_size)
{
	wal_name	w;

	assert_int_equal(wal_name_parse(name, &w), 0);
	err_clear();
	return wal_header_check(name, h, len, file_size, &w, sysid, major, seg_size);
}

static void
expect_refused(const uint8_t *h, size_t len, uint64_t file_size, const char *name, int major,
			   drb_err kind, const char *text1, const char *text2)
{
	uint32_t	seg_size = 0;

	assert_int_equal(check(h, len, file_size, name, SYSID, major, &seg_size), -1);
	assert_int_equal(err_kind(), kind);
	if (strstr(err_msg(), name) == NULL || (text1 && strstr(err_msg(), text1) == NULL) ||
		(text2 && strstr(err_msg(), text2) == NULL))
		fail_msg("unexpected message: %s", err_msg());
}

static void
test_header_good(void **state)
{
	uint8_t		h[WAL_LONG_HEADER_SIZE];
	uint32_t	seg_size = 0;

	(void) state;
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	assert_int_equal(check(h, sizeof(h), 16 * MIB, SEG_NAME, SYSID, 15, &seg_size), 0);
	assert_int_equal(seg_size, 16 * MIB);

	/* other flags may be set along with the long header (a continuation record) */
	make_header(h, 0xD110, 0x0003, 1, SEG_START, SYSID, 16 * MIB);
	assert_int_equal(check(h, sizeof(h), 16 * MIB, SEG_NAME, SYSID, 15, &seg_size), 0);

	/* a .partial may be shorter than its segment */
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	assert_int_equal(check(h, sizeof(h), 16 * MIB, SEG_NAME ".partial", SYSID, 15, &seg_size), 0);
	assert_int_equal(check(h, sizeof(h), 5 * MIB, SEG_NAME ".partial", SYSID, 15, &seg_size), 0);

	/* the first segment of timeline 2 starts with a page written on timeline 1 */
	assert_int_equal(check(h, sizeof(h), 16 * MIB, "000000020000000200000003", SYSID, 15,
						   &seg_size), 0);

	/* 64 MiB segments, PostgreSQL 17 */
	make_header(h, 0xD116, 0x0002, 1, (UINT64_C(5) << 32) | (UINT64_C(0x3F) * 64 * MIB),
				SYSID, 64 * MIB);
	assert_int_equal(check(h, sizeof(h), 64 * MIB, "00000001000000050000003F", SYSID, 17,
						   &seg_size), 0);
	assert_int_equal(seg_size, 64 * MIB);

	/* PostgreSQL 12 */
	make_header(h, 0xD101, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	assert_int_equal(check(h, sizeof(h), 16 * MIB, SEG_NAME, SYSID, 12, &seg_size), 0);
}

static void
test_header_refused(void **state)
{
	uint8_t		h[WAL_LONG_HEADER_SIZE];
	uint32_t	seg_size = 0;

	(void) state;
	/* another PostgreSQL version: both versions named */
	make_header(h, 0xD113, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_STANZA, "PostgreSQL 16",
				   "PostgreSQL 15");
	/* a magic no release has */
	make_header(h, 0x1234, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_STANZA, "0x1234", "0xD110");
	/* a stanza of a version drbackup does not know */
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	assert_int_equal(check(h, sizeof(h), 16 * MIB, SEG_NAME, SYSID, 11, &seg_size), -1);
	assert_int_equal(err_kind(), DRB_ERR_STANZA);

	/* another cluster: both system identifiers named */
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID + 1, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_STANZA, "7301234567890123457",
				   "7301234567890123456");

	/* missing long-header flag */
	make_header(h, 0xD110, 0x0001, 1, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "long page header",
				   NULL);

	/* sizes: file size differs, not a power of two, too small, too large */
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 8 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "8388608", "16777216");
	expect_refused(h, sizeof(h), 16 * MIB + 1, SEG_NAME ".partial", 15, DRB_ERR_INTEGRITY,
				   "16777217", NULL);
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 24 * MIB);
	expect_refused(h, sizeof(h), 24 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "power of two", NULL);
	make_header(h, 0xD110, 0x0002, 1, 0, SYSID, MIB / 2);
	expect_refused(h, sizeof(h), MIB / 2, "000000010000000000000000", 15, DRB_ERR_INTEGRITY,
				   "power of two", NULL);
	make_header(h, 0xD110, 0x0002, 1, 0, SYSID, 2048 * MIB);
	expect_refused(h, sizeof(h), 2048u * MIB, "000000010000000000000000", 15, DRB_ERR_INTEGRITY,
				   "power of two", NULL);

	/* the header's page address or timeline does not fit the name */
	make_header(h, 0xD110, 0x0002, 1, SEG_START + 16 * MIB, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "2/4000000",
				   "2/3000000");
	make_header(h, 0xD110, 0x0002, 2, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "timeline 2", NULL);
	make_header(h, 0xD110, 0x0002, 0, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, sizeof(h), 16 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY, "timeline 0", NULL);
	/* a segment number beyond what 64 MiB segments allow */
	make_header(h, 0xD110, 0x0002, 1, (UINT64_C(5) << 32), SYSID, 64 * MIB);
	expect_refused(h, sizeof(h), 64 * MIB, "000000010000000500000040", 15, DRB_ERR_INTEGRITY,
				   "segment number", NULL);

	/* too short to hold a header */
	make_header(h, 0xD110, 0x0002, 1, SEG_START, SYSID, 16 * MIB);
	expect_refused(h, WAL_LONG_HEADER_SIZE - 1, 16 * MIB, SEG_NAME, 15, DRB_ERR_INTEGRITY,
				   "too short", NULL);
}

/* ---------------------------------------------------------------------------------------
 * Archive core on two posix repositories
 * ------------------------------------------------------------------------------------- */

typedef struct fixture
{
	char		tmp[64];
	char	   *root[2];
	archive_ctx ctx;
	char	   *seg_path;		/* a crafted 16 MiB segment SEG_NAME */
} fixture;

static repo_t *
make_repo(const char *root, int index, bool encrypted)
{
	repo_settings s = {0};
	repo_t	   *r;

	s.index = index;
	s.storage = storage_posix_new(root);
	s.cipher = encrypted ? CIPHER_AES_256_GCM : CIPHER_NONE;
	s.passphrase = encrypted ? "unit-test-pass" : NULL;
	s.compress = COMPRESS_ZSTD;
	s.compress_level = 3;
	if (repo_create(&s) != 0)
		fail_msg("repo_create: %s", err_msg());
	r = repo_open(&s);
	if (r == NULL)
		fail_msg("repo_open: %s", err_msg());
	return r;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE	   *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A 16 MiB segment of cluster sysid: long header, then varied bytes. */
static uint8_t *
make_segment(uint64_t sysid, uint8_t salt)
{
	uint8_t    *seg = xmalloc(16 * MIB);

	for (size_t i = 0; i < 16 * MIB; i++)
		seg[i] = (uint8_t) ((i * 31 + salt) ^ (i >> 13));
	make_header(seg, 0xD110, 0x0002, 1, SEG_START, sysid, 16 * MIB);
	return seg;
}

static int
setup(void **state)
{
	fixture    *f = xcalloc(1, sizeof(*f));
	uint8_t    *seg;

	strcpy(f->tmp, "/tmp/drb-wal-XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	f->ctx.stanza = "main";
	f->ctx.nrepo = 2;
	for (int i = 0; i < 2; i++)
	{
		archive_repo *r = &f->ctx.repos[i];

		f->root[i] = xasprintf("%s/repo%d", f->tmp, i + 1);
		r->index = i + 1;
		r->repo = make_repo(f->root[i], i + 1, i == 0);
		snprintf(r->stanza.name, sizeof(r->stanza.name), "main");
		r->stanza.system_id = SYSID;
		r->stanza.pg_version = 15;
		r->stanza.pg_version_num = 150010;
	}
	f->seg_path = xasprintf("%s/%s", f->tmp, SEG_NAME);
	seg = make_segment(SYSID, 1);
	write_file(f->seg_path, seg, 16 * MIB);
	free(seg);
	err_clear();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture    *f = *state;

	archive_ctx_close(&f->ctx);
	test_rm_rf(f->tmp);
	free(f->root[0]);
	free(f->root[1]);
	free(f->seg_path);
	free(f);
	return 0;
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Number of entries in dir whose name contains text. */
static int
count_names(const char *dir, const char *text)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	int			n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (strstr(de->d_name, text))
			n++;
	closedir(d);
	return n;
}

static bool
same_file(const char *a, const char *b)
{
	char	   *cmd = xasprintf("cmp -s '%s' '%s'", a, b);
	int			rc = system(cmd);

	free(cmd);
	return rc == 0;
}

static void
test_archive_names(void **state)
{
	fixture    *f = *state;
	wal_name	w;
	uint8_t		sha[32];
	char	   *p;

	for (int i = 0; i < 32; i++)
		sha[i] = (uint8_t) (0xA0 + i);
	assert_int_equal(wal_name_parse(SEG_NAME ".partial", &w), 0);
	p = archive_object_prefix(&f->ctx.repos[0], &w);
	assert_string_equal(p, "stanza/main/archive/15-7301234567890123456/0000000100000002/"
						SEG_NAME ".partial-");
	free(p);
	assert_int_equal(wal_name_parse("00000003.history", &w), 0);
	p = archive_object_path(&f->ctx.repos[1], &w, sha);
	assert_string_equal(p, "stanza/main/archive/15-7301234567890123456/history/00000003.history-"
						"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
	free(p);
	assert_int_equal(wal_name_parse("000000010000000200000003.00000028.backup", &w), 0);
	p = archive_object_prefix(&f->ctx.repos[0], &w);
	assert_string_equal(p, "stanza/main/archive/15-7301234567890123456/0000000100000002/"
						"000000010000000200000003.00000028.backup-");
	free(p);
}

static void
test_archive_push_and_get(void **state)
{
	fixture    *f = *state;
	wal_name	w;
	uint8_t    *data;
	size_t		len;
	uint8_t		sha[32];
	uint8_t		want[32];
	uint8_t		found_sha[32];
	bool		skipped = true;
	bool		found;
	char	   *obj;
	char	   *full;
	char	   *dest = xasprintf("%s/dest", f->tmp);
	struct stat before;
	struct stat after;

	/* load: one read, the hash of the bytes, the header checked */
	assert_int_equal(archive_load_file(&f->ctx, f->seg_path, &w, &data, &len, sha), 0);
	assert_int_equal(len, 16 * MIB);
	assert_int_equal(w.kind, WAL_SEGMENT);
	sha256_buf(data, len, want);
	assert_memory_equal(sha, want, 32);

	for (int i = 0; i < 2; i++)
	{
		const archive_repo *r = &f->ctx.repos[i];

		assert_int_equal(archive_find(r, &w, &found, found_sha, NULL), 0);
		assert_false(found);
		assert_int_equal(archive_push_one(r, &w, data, len, sha, &skipped), 0);
		assert_false(skipped);
		obj = archive_object_path(r, &w, sha);
		full = xasprintf("%s/%s", f->root[i], obj);
		assert_true(file_exists(full));
		assert_int_equal(stat(full, &before), 0);

		/* idempotent: found by its checksum, nothing written again */
		{
			char	   *found_path;

			assert_int_equal(archive_find(r, &w, &found, found_sha, &found_path), 0);
			assert_true(found);
			assert_memory_equal(found_sha, sha, 32);
			assert_string_equal(found_path, obj);
			free(found_path);
			free(obj);
		}
		assert_int_equal(archive_push_one(r, &w, data, len, sha, &skipped), 0);
		assert_true(skipped);
		assert_int_equal(stat(full, &after), 0);
		assert_int_equal(before.st_ino, after.st_ino);
		free(full);
	}

	/* conflicting content under the same name: refused, naming both checksums */
	{
		uint8_t		other[32];
		char		hex_stored[65];
		char		hex_new[65];

		data[100] ^= 0xFF;
		sha256_buf(data, len, other);
		assert_int_equal(archive_push_one(&f->ctx.repos[1], &w, data, len, other, &skipped), -1);
		assert_int_equal(err_kind(), DRB_ERR_STANZA);
		hex_encode(sha, 32, hex_stored);
		hex_encode(other, 32, hex_new);
		assert_non_null(strstr(err_msg(), hex_stored));
		assert_non_null(strstr(err_msg(), hex_new));
		assert_non_null(strstr(err_msg(), "repository 2"));
		assert_non_null(strstr(err_msg(), "refusing to overwrite"));
		obj = archive_object_path(&f->ctx.repos[1], &w, other);
		full = xasprintf("%s/%s", f->root[1], obj);
		assert_false(file_exists(full));
		free(obj);
		free(full);
	}
	free(data);

	/* get: verified, in place, no temporary file left */
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 0), 0);
	assert_true(same_file(dest, f->seg_path));
	assert_int_equal(count_names(f->tmp, ".drbtmp."), 0);
	unlink(dest);
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 2), 0);
	assert_true(same_file(dest, f->seg_path));

	/* missing everywhere: NOT_FOUND */
	assert_int_equal(wal_name_parse("000000010000000200000004", &w), 0);
	unlink(dest);
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 0), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_string_equal(err_msg(), "WAL file 000000010000000200000004 not found in any repository");
	assert_false(file_exists(dest));
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 1), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_non_null(strstr(err_msg(), "not found in repository 1"));
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 3), -1);
	assert_int_equal(err_kind(), DRB_ERR_CONFIG);
	free(dest);
}

/* archive-push's path: encode in memory (hash in parallel), name by the checksum found */
static void
test_archive_push_encoded(void **state)
{
	fixture    *f = *state;
	archive_file af;
	uint8_t		want[32];
	uint8_t		got[32];
	uint8_t		again[32];
	bool		skipped = true;
	char	   *obj;
	char	   *full;
	char	   *dest = xasprintf("%s/dest-enc", f->tmp);
	struct stat before;
	struct stat after;

	assert_int_equal(archive_file_map(f->seg_path, &af), 0);
	assert_int_equal(archive_file_check(&f->ctx, &af), 0);
	sha256_buf(af.data, af.len, want);
	for (int i = 0; i < 2; i++)
	{
		const archive_repo *r = &f->ctx.repos[i];

		memset(got, 0, sizeof(got));
		assert_int_equal(archive_push_encoded(r, &af, got, &skipped), 0);
		assert_false(skipped);
		assert_memory_equal(got, want, 32);		/* the pipeline's checksum names the object */
		obj = archive_object_path(r, &af.w, want);
		full = xasprintf("%s/%s", f->root[i], obj);
		assert_true(file_exists(full));
		assert_int_equal(stat(full, &before), 0);
		/* a re-push is recognised by the checksum and writes nothing */
		assert_int_equal(archive_push_encoded(r, &af, again, &skipped), 0);
		assert_true(skipped);
		assert_memory_equal(again, want, 32);
		assert_int_equal(stat(full, &after), 0);
		assert_int_equal(before.st_ino, after.st_ino);
		free(obj);
		free(full);
	}
	/* a partial object under the right name (a lenient store kept an interrupted upload):
	 * a re-push verifies it, finds it broken and stores it again instead of skipping */
	{
		char	   *o = archive_object_path(&f->ctx.repos[0], &af.w, want);
		char	   *p = xasprintf("%s/%s", f->root[0], o);

		assert_int_equal(truncate(p, 1000), 0);
		assert_int_equal(archive_push_encoded(&f->ctx.repos[0], &af, again, &skipped), 0);
		assert_false(skipped);
		assert_int_equal(stat(p, &after), 0);
		assert_true(after.st_size > 1000);
		free(o);
		free(p);
	}
	/* what was stored reads back as the file, from each repository */
	for (int i = 1; i <= 2; i++)
	{
		assert_int_equal(archive_get_one(&f->ctx, &af.w, dest, i), 0);
		assert_true(same_file(dest, f->seg_path));
		unlink(dest);
	}
	/* other content under the stored name: refused, the stored object untouched */
	{
		char	   *other_path = xasprintf("%s/other/%s", f->tmp, af.w.name);
		char	   *other_dir = xasprintf("%s/other", f->tmp);
		archive_file of;
		FILE	   *fp;

		mkdir(other_dir, 0700);
		fp = fopen(other_path, "w");
		assert_non_null(fp);
		assert_int_equal(fwrite(af.data, 1, af.len, fp), af.len);
		fseek(fp, 4096, SEEK_SET);
		fputc(af.data[4096] ^ 0x01, fp);
		fclose(fp);
		assert_int_equal(archive_file_map(other_path, &of), 0);
		assert_int_equal(archive_push_encoded(&f->ctx.repos[0], &of, got, &skipped), -1);
		assert_int_equal(err_kind(), DRB_ERR_STANZA);
		assert_non_null(strstr(err_msg(), "refusing to overwrite"));
		archive_file_unmap(&of);
		free(other_path);
		free(other_dir);
	}
	assert_int_equal(archive_get_one(&f->ctx, &af.w, dest, 1), 0);
	assert_true(same_file(dest, f->seg_path));
	archive_file_unmap(&af);
	free(dest);
}

static void
test_archive_get_fallthrough(void **state)
{
	fixture    *f = *state;
	wal_name	w;
	uint8_t    *data;
	size_t		len;
	uint8_t		sha[32];
	bool		skipped;
	char	   *obj;
	char	   *full;
	char	   *dest = xasprintf("%s/dest", f->tmp);
	int			fd;

	assert_int_equal(archive_load_file(&f->ctx, f->seg_path, &w, &data, &len, sha), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(archive_push_one(&f->ctx.repos[i], &w, data, len, sha, &skipped), 0);
	free(data);

	/* damage repository 1's object: repository 2 serves the file */
	obj = archive_object_path(&f->ctx.repos[0], &w, sha);
	full = xasprintf("%s/%s", f->root[0], obj);
	fd = open(full, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "XXXX", 4, 200), 4);
	close(fd);
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 0), 0);
	assert_true(same_file(dest, f->seg_path));
	unlink(dest);

	/* pinned to the damaged repository: an integrity error, nothing at dest */
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 1), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_false(file_exists(dest));
	assert_int_equal(count_names(f->tmp, ".drbtmp."), 0);

	/* repository 2 unreachable and repository 1 damaged: the error, not "not found" */
	repo_close(f->ctx.repos[1].repo);
	f->ctx.repos[1].repo = NULL;
	f->ctx.repos[1].open_error = xstrdup("repository 2 (test): unreachable");
	f->ctx.repos[1].open_kind = DRB_ERR_STORAGE;
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 0), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);

	/* a file absent from the readable repository while the other failed: the failure */
	assert_int_equal(wal_name_parse("000000010000000200000004", &w), 0);
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 0), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), "unreachable"));
	/* and a push to it reports why */
	assert_int_equal(archive_push_one(&f->ctx.repos[1], &w, (const uint8_t *) "x", 1, sha,
									  &skipped), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	free(obj);
	free(full);
	free(dest);
}

static void
test_archive_find_twice(void **state)
{
	fixture    *f = *state;
	const archive_repo *r = &f->ctx.repos[1];
	wal_name	w;
	uint8_t		sha_a[32];
	uint8_t		sha_b[32];
	uint8_t		got[32];
	bool		found;
	char	   *a;
	char	   *b;
	char	   *prefix;
	char	   *junk;

	assert_int_equal(wal_name_parse("00000002.history", &w), 0);
	sha256_buf("a", 1, sha_a);
	sha256_buf("b", 1, sha_b);

	/* objects that are not "<prefix><64 hex>" are not taken for the file */
	prefix = archive_object_prefix(r, &w);
	junk = xasprintf("%sxyz", prefix);
	assert_int_equal(repo_put_buf(r->repo, junk, "j", 1, NULL), 0);
	assert_int_equal(archive_find(r, &w, &found, got, NULL), 0);
	assert_false(found);

	a = archive_object_path(r, &w, sha_a);
	b = archive_object_path(r, &w, sha_b);
	assert_int_equal(repo_put_buf(r->repo, a, "a", 1, NULL), 0);
	assert_int_equal(archive_find(r, &w, &found, got, NULL), 0);
	assert_true(found);
	assert_memory_equal(got, sha_a, 32);
	assert_int_equal(repo_put_buf(r->repo, b, "b", 1, NULL), 0);
	assert_int_equal(archive_find(r, &w, &found, got, NULL), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_non_null(strstr(err_msg(), a));
	assert_non_null(strstr(err_msg(), b));
	free(a);
	free(b);
	free(prefix);
	free(junk);
}

static void
test_archive_load_refused(void **state)
{
	fixture    *f = *state;
	wal_name	w;
	uint8_t    *data = NULL;
	size_t		len;
	uint8_t		sha[32];
	uint8_t		want[32];
	uint64_t	size;
	char	   *path;
	uint8_t    *seg;

	/* another cluster's segment */
	seg = make_segment(SYSID + 7, 2);
	path = xasprintf("%s/other", f->tmp);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/other/%s", f->tmp, SEG_NAME);
	write_file(path, seg, 16 * MIB);
	free(seg);
	assert_int_equal(archive_load_file(&f->ctx, path, &w, &data, &len, sha), -1);
	assert_int_equal(err_kind(), DRB_ERR_STANZA);
	assert_non_null(strstr(err_msg(), "7301234567890123463"));
	assert_non_null(strstr(err_msg(), "7301234567890123456"));
	assert_non_null(strstr(err_msg(), "stanza 'main'"));
	assert_null(data);
	assert_int_equal(archive_check_file(&f->ctx, path, &w, sha, &size), -1);
	assert_int_equal(err_kind(), DRB_ERR_STANZA);
	free(path);

	/* truncated segment */
	path = xasprintf("%s/other/000000010000000200000005", f->tmp);
	seg = make_segment(SYSID, 3);
	write_file(path, seg, 1000);
	free(seg);
	assert_int_equal(archive_load_file(&f->ctx, path, &w, &data, &len, sha), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	free(path);

	/* not a WAL name, missing file */
	path = xasprintf("%s/other/RECOVERYXLOG", f->tmp);
	write_file(path, "x", 1);
	assert_int_equal(archive_load_file(&f->ctx, path, &w, &data, &len, sha), -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	free(path);
	path = xasprintf("%s/other/000000010000000200000009", f->tmp);
	assert_int_equal(archive_load_file(&f->ctx, path, &w, &data, &len, sha), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	free(path);

	/* a history file has no header to check; the streaming pass hashes the same */
	path = xasprintf("%s/other/00000002.history", f->tmp);
	write_file(path, "1\t0/3000000\tno recovery target specified\n", 42);
	assert_int_equal(archive_load_file(&f->ctx, path, &w, &data, &len, sha), 0);
	assert_int_equal(w.kind, WAL_HISTORY);
	assert_int_equal(len, 42);
	assert_memory_equal(data, "1\t0/3000000", 11);
	sha256_buf(data, len, want);
	assert_memory_equal(sha, want, 32);
	free(data);
	memset(sha, 0, sizeof(sha));
	assert_int_equal(archive_check_file(&f->ctx, path, &w, sha, &size), 0);
	assert_int_equal(size, 42);
	assert_memory_equal(sha, want, 32);
	free(path);
}

static void
test_archive_push_path(void **state)
{
	fixture    *f = *state;
	wal_name	w;
	uint8_t		sha[32];
	uint64_t	size;
	bool		skipped;
	char	   *dest = xasprintf("%s/dest", f->tmp);

	assert_int_equal(archive_check_file(&f->ctx, f->seg_path, &w, sha, &size), 0);
	assert_int_equal(size, 16 * MIB);
	assert_int_equal(archive_push_path(&f->ctx.repos[0], &w, f->seg_path, sha, &skipped), 0);
	assert_false(skipped);
	assert_int_equal(archive_push_path(&f->ctx.repos[0], &w, f->seg_path, sha, &skipped), 0);
	assert_true(skipped);
	assert_int_equal(archive_get_one(&f->ctx, &w, dest, 1), 0);
	assert_true(same_file(dest, f->seg_path));

	/* the file changed after it was hashed: refused and the object taken back */
	sha[0] ^= 1;
	assert_int_equal(archive_push_path(&f->ctx.repos[1], &w, f->seg_path, sha, &skipped), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	{
		bool		found;
		uint8_t		got[32];

		assert_int_equal(archive_find(&f->ctx.repos[1], &w, &found, got, NULL), 0);
		assert_false(found);
	}
	free(dest);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kinds),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_next_segment),
		cmocka_unit_test(test_segment_name),
		cmocka_unit_test(test_page_magic),
		cmocka_unit_test(test_header_good),
		cmocka_unit_test(test_header_refused),
		cmocka_unit_test_setup_teardown(test_archive_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_push_and_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_push_encoded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_get_fallthrough, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_find_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_load_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_archive_push_path, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
