/*
 * test_pgdata.c — page checksums (page_checksum.c), the PGDATA walk (pgdata.c) and the
 * copy of one cluster file (backup_file.c).
 *
 * page_checksum.c: every page of three relation files copied from a PostgreSQL 15 cluster
 * made by "initdb -k" (tests/unit/data: base/1/1259 blocks 0-5, base/1/1259_fsm,
 * global/1262) verifies with its stored pd_checksum; one damaged byte gives the value
 * pg_checksums printed for the same damage; page_check's classes: OK, NEW (all zero), BAD
 * (damaged byte, wrong block number, non-zero page with pd_upper 0, insane headers even
 * with a matching checksum), SKIPPED (pd_lsn at or above the start, even when damaged).
 * pgdata.c: relation names; a synthetic data directory with every kind of excluded entry,
 * two tablespaces (a link, in-place), other versions' directories, a socket, a FIFO and a
 * foreign symlink, checked entry by entry in order; a symlinked pg_wal (and pg_wal/summaries
 * for 17); entries vanishing during the walk; a tablespace with a missing location; errors.
 * backup_file.c: bytes, size and SHA-256 of a multi-step file against OpenSSL's one-shot
 * digest; damaged blocks reported with their relation block numbers (first_blkno), pages
 * newer than the start not reported, a trailing partial page not checked, check_pages off,
 * a page bad on the first read but good when read again (pread is interposed by this
 * program to play the concurrent writer), a page truncated away before the re-read, a
 * vanished file (DRB_ERR_NOT_FOUND), a failing sink.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "test_util.h"
#include "backup_file.h"
#include "error.h"
#include "filter.h"
#include "mem.h"
#include "page_checksum.h"
#include "pgdata.h"

#define PAGE		PG_PAGE_SIZE

/* ---------------------------------------------------------------------------------------
 * helpers
 * --------------------------------------------------------------------------------------- */

/* tests/unit/data/<name>: from $srcdir (make check) or next to this source file. */
static char *
fixture_path(const char *name)
{
	const char *srcdir = getenv("srcdir");
	char	   *file;
	char	   *path;

	if (srcdir != NULL && *srcdir)
		return xasprintf("%s/tests/unit/data/%s", srcdir, name);
	file = xstrdup(__FILE__);
	path = xasprintf("%s/data/%s", dirname(file), name);
	free(file);
	return path;
}

/* Whole contents of a fixture; *len receives its size. */
static uint8_t *
load_fixture(const char *name, size_t *len)
{
	char	   *path = fixture_path(name);
	FILE	   *f = fopen(path, "rb");
	uint8_t    *data;
	long		size;

	if (f == NULL)
		fail_msg("cannot open fixture %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size > 0 && size % PAGE == 0);
	rewind(f);
	data = xmalloc((size_t) size);
	assert_int_equal(fread(data, 1, (size_t) size, f), (size_t) size);
	fclose(f);
	free(path);
	*len = (size_t) size;
	return data;
}

static uint16_t
get16(const uint8_t *page, size_t off)
{
	uint16_t	v;

	memcpy(&v, page + off, 2);
	return v;
}

static void
put16(uint8_t *page, size_t off, uint16_t v)
{
	memcpy(page + off, &v, 2);
}

static void
set_lsn(uint8_t *page, uint64_t lsn)
{
	uint32_t	hi = (uint32_t) (lsn >> 32);
	uint32_t	lo = (uint32_t) lsn;

	memcpy(page, &hi, 4);
	memcpy(page + 4, &lo, 4);
}

/* Store the checksum that makes page valid at blkno. */
static void
reseal(uint8_t *page, uint32_t blkno)
{
	put16(page, 8, pg_checksum_page(page, blkno));
}

static void
write_file(const char *path, const void *data, size_t len)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	assert_int_equal(close(fd), 0);
}

static char *
make_scratch(void)
{
	char		tmpl[] = "/tmp/drb_test_pgdata_XXXXXX";

	assert_non_null(mkdtemp(tmpl));
	return xstrdup(tmpl);
}

/* ---------------------------------------------------------------------------------------
 * page checksums
 * --------------------------------------------------------------------------------------- */

static const char *const fixtures[] = {"pg15_1259_6pages", "pg15_1259_fsm", "pg15_1262"};

static void
test_checksum_real_pages(void **state)
{
	(void) state;
	for (size_t f = 0; f < 3; f++)
	{
		size_t		len;
		uint8_t    *data = load_fixture(fixtures[f], &len);

		for (uint32_t b = 0; b < len / PAGE; b++)
		{
			uint8_t    *page = data + (size_t) b * PAGE;
			uint16_t	stored = get16(page, 8);

			assert_int_equal(pg_checksum_page(page, b), stored);
			assert_int_equal(page_check(page, b, UINT64_MAX), PAGE_OK);
			/* the block number is part of it */
			assert_int_not_equal(pg_checksum_page(page, b + 1), stored);
			assert_int_equal(page_check(page, b + PG_RELSEG_BLOCKS, UINT64_MAX), PAGE_BAD);
			/* pd_checksum itself does not count, and the page is not modified */
			put16(page, 8, 0);
			assert_int_equal(pg_checksum_page(page, b), stored);
			assert_int_equal(get16(page, 8), 0);
			put16(page, 8, stored);
		}
		free(data);
	}
}

/* Known values: stored checksums and LSNs, and what pg_checksums printed for one damage. */
static void
test_checksum_known_values(void **state)
{
	size_t		len;
	uint8_t    *data = load_fixture("pg15_1259_6pages", &len);
	uint8_t    *unaligned = xmalloc(PAGE + 1);

	(void) state;
	assert_int_equal(len, 6 * PAGE);
	assert_int_equal(get16(data + 3 * PAGE, 8), 1026);
	assert_int_equal(pg_checksum_page(data + 3 * PAGE, 3), 1026);
	assert_int_equal(page_lsn(data), UINT64_C(0x159C930));
	assert_int_equal(page_lsn(data + 2 * PAGE), UINT64_C(0x17520D8));

	/* "dd" of 0xff at byte 5000 of block 3: pg_checksums said "calculated checksum 28B2" */
	data[3 * PAGE + 5000] = 0xff;
	assert_int_equal(pg_checksum_page(data + 3 * PAGE, 3), 0x28B2);
	assert_int_equal(page_check(data + 3 * PAGE, 3, UINT64_MAX), PAGE_BAD);

	/* any alignment */
	memcpy(unaligned + 1, data, PAGE);
	assert_int_equal(pg_checksum_page(unaligned + 1, 0), get16(data, 8));
	assert_int_equal(page_check(unaligned + 1, 0, UINT64_MAX), PAGE_OK);
	free(unaligned);
	free(data);
}

static void
test_page_check_classes(void **state)
{
	size_t		len;
	uint8_t    *data = load_fixture("pg15_1259_6pages", &len);
	uint8_t    *page = xmalloc(PAGE);
	uint64_t	lsn;

	(void) state;
	memcpy(page, data + PAGE, PAGE);	/* block 1 */
	lsn = page_lsn(page);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_OK);
	/* older than the start: checked */
	assert_int_equal(page_check(page, 1, lsn + 1), PAGE_OK);

	/* one flipped byte */
	page[4000] ^= 0x01;
	assert_int_equal(page_check(page, 1, lsn + 1), PAGE_BAD);
	/* written at or after the start: skipped, even damaged */
	assert_int_equal(page_check(page, 1, lsn), PAGE_SKIPPED);
	assert_int_equal(page_check(page, 1, lsn - 1), PAGE_SKIPPED);
	set_lsn(page, UINT64_C(0x500000000));
	assert_int_equal(page_lsn(page), UINT64_C(0x500000000));
	assert_int_equal(page_check(page, 1, UINT64_C(0x400000000)), PAGE_SKIPPED);
	assert_int_equal(page_check(page, 1, UINT64_C(0x500000001)), PAGE_BAD);

	/* all zero: new */
	memset(page, 0, PAGE);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_NEW);
	assert_int_equal(page_check(page, 1, 0), PAGE_NEW);
	/* pd_upper 0 with something in it: invalid, whatever its checksum */
	page[PAGE - 1] = 1;
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	/* insane headers with matching checksums */
	memcpy(page, data + PAGE, PAGE);
	put16(page, 10, get16(page, 10) | 0x0008); /* unknown pd_flags bit */
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	memcpy(page, data + PAGE, PAGE);
	put16(page, 12, (uint16_t) (get16(page, 14) + 8));	/* pd_lower > pd_upper */
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	memcpy(page, data + PAGE, PAGE);
	put16(page, 16, 8188);		/* pd_special not MAXALIGNed */
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	memcpy(page, data + PAGE, PAGE);
	put16(page, 16, 8200);		/* pd_special beyond the page */
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	memcpy(page, data + PAGE, PAGE);
	put16(page, 16, 4096);		/* pd_upper > pd_special */
	put16(page, 14, 4104);
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_BAD);

	/* and a sane change resealed is fine (the checks above failed on the header) */
	memcpy(page, data + PAGE, PAGE);
	put16(page, 10, 0x0007);
	reseal(page, 1);
	assert_int_equal(page_check(page, 1, UINT64_MAX), PAGE_OK);

	free(page);
	free(data);
}

/* ---------------------------------------------------------------------------------------
 * relation names
 * --------------------------------------------------------------------------------------- */

static void
test_relation_name(void **state)
{
	static const struct
	{
		const char *name;
		bool		yes;
		uint32_t	segno;
	}			cases[] = {
		{"1259", true, 0},
		{"1259.3", true, 3},
		{"1259_fsm", true, 0},
		{"1259_vm", true, 0},
		{"1259_init", true, 0},
		{"1259_vm.1", true, 1},
		{"1259_fsm.12", true, 12},
		{"4294967295", true, 0},
		{"16384.32767", true, 32767},
		{"pg_internal.init", false, 0},
		{"PG_VERSION", false, 0},
		{"pg_filenode.map", false, 0},
		{"1259a", false, 0},
		{"t1_1259", false, 0},
		{"t3_16500_fsm", false, 0},
		{"", false, 0},
		{"0", false, 0},
		{"01259", false, 0},
		{"4294967296", false, 0},
		{"12345678901", false, 0},
		{"1259.", false, 0},
		{"1259.0", false, 0},
		{"1259.01", false, 0},
		{"1259.1a", false, 0},
		{"1259.1.2", false, 0},
		{"1259_", false, 0},
		{"1259_fsmx", false, 0},
		{"1259_main", false, 0},
		{"1259_vm_fsm", false, 0},
		{"-1259", false, 0},
		{"1259 ", false, 0},
		{"pgsql_tmp123.0", false, 0},
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		uint32_t	segno = 999;
		bool		yes = pgdata_relation_name(cases[i].name, &segno);

		if (yes != cases[i].yes)
			fail_msg("pgdata_relation_name(\"%s\") = %d", cases[i].name, yes);
		if (yes)
			assert_int_equal(segno, cases[i].segno);
	}
	assert_true(pgdata_relation_name("1259.7", NULL));
}

/* ---------------------------------------------------------------------------------------
 * the walk
 * --------------------------------------------------------------------------------------- */

typedef struct seen_entry
{
	pgdata_kind kind;
	char	   *path;
	char	   *abs_path;
	uint32_t	mode;
	int64_t		mtime;
	uint64_t	size;
	char	   *link_target;
	bool		relation;
	uint32_t	segno;
} seen_entry;

typedef struct seen_list
{
	seen_entry	e[256];
	size_t		n;
	/* optional actions during the walk */
	const char *delete_at;		/* when this path is seen... */
	const char *delete_what[4]; /* ...remove these (absolute) */
	int			fail_after;		/* >0: fail on that call */
} seen_list;

static int
collect(const pgdata_entry *e, void *arg)
{
	seen_list  *l = arg;
	seen_entry *s;

	assert_true(l->n < 256);
	s = &l->e[l->n++];
	s->kind = e->kind;
	s->path = xstrdup(e->path);
	s->abs_path = xstrdup(e->abs_path);
	s->mode = e->mode;
	s->mtime = e->mtime;
	s->size = e->size;
	s->link_target = e->link_target ? xstrdup(e->link_target) : NULL;
	s->relation = e->relation;
	s->segno = e->segno;
	if (l->delete_at != NULL && strcmp(e->path, l->delete_at) == 0)
		for (int i = 0; i < 4 && l->delete_what[i] != NULL; i++)
			test_rm_rf(l->delete_what[i]);
	if (l->fail_after > 0 && (int) l->n == l->fail_after)
		return err_set(DRB_ERR_INTERNAL, "callback stops at '%s'", e->path);
	return 0;
}

static void
seen_free(seen_list *l)
{
	for (size_t i = 0; i < l->n; i++)
	{
		free(l->e[i].path);
		free(l->e[i].abs_path);
		free(l->e[i].link_target);
	}
	l->n = 0;
}

typedef struct expect
{
	char		kind;			/* 'd', 'l', 'f' */
	const char *path;
	uint32_t	mode;
	uint64_t	size;
	bool		relation;
	uint32_t	segno;
	const char *link_target;	/* relative to the scratch dir */
} expect;

static void
check_seen(const seen_list *l, const expect *x, size_t nx, const char *root, const char *scratch)
{
	size_t		n = l->n < nx ? l->n : nx;

	for (size_t i = 0; i < n; i++)
	{
		const seen_entry *s = &l->e[i];
		pgdata_kind kind = x[i].kind == 'd' ? PGDATA_DIR : x[i].kind == 'l' ? PGDATA_LINK : PGDATA_FILE;
		char	   *abs = xasprintf("%s/%s", root, x[i].path);

		if (strcmp(s->path, x[i].path) != 0)
			fail_msg("entry %zu: got '%s', expected '%s'", i, s->path, x[i].path);
		if (s->kind != kind)
			fail_msg("entry '%s': kind %d, expected %c", s->path, s->kind, x[i].kind);
		if (s->mode != x[i].mode)
			fail_msg("entry '%s': mode %o, expected %o", s->path, s->mode, x[i].mode);
		assert_string_equal(s->abs_path, abs);
		if (s->size != x[i].size)
			fail_msg("entry '%s': size %llu, expected %llu", s->path,
					 (unsigned long long) s->size, (unsigned long long) x[i].size);
		if (s->relation != x[i].relation || s->segno != x[i].segno)
			fail_msg("entry '%s': relation %d segno %u, expected %d %u", s->path,
					 s->relation, s->segno, x[i].relation, x[i].segno);
		if (x[i].link_target != NULL)
		{
			char	   *target = xasprintf("%s/%s", scratch, x[i].link_target);

			assert_non_null(s->link_target);
			assert_string_equal(s->link_target, target);
			free(target);
		}
		else
			assert_null(s->link_target);
		free(abs);
	}
	if (l->n != nx)
	{
		for (size_t i = 0; i < l->n; i++)
			fprintf(stderr, "  seen: %s\n", l->e[i].path);
		fail_msg("%zu entries, expected %zu", l->n, nx);
	}
}

/* Create directories and files given as "d path mode" / "f path mode size" lines. */
static void
build_tree(const char *base, const char *const *spec)
{
	for (size_t i = 0; spec[i] != NULL; i++)
	{
		char		kind;
		char		rel[256];
		unsigned	mode;
		unsigned long size = 0;
		char	   *path;

		assert_true(sscanf(spec[i], "%c %255s %o %lu", &kind, rel, &mode, &size) >= 3);
		path = xasprintf("%s/%s", base, rel);
		if (kind == 'd')
			assert_int_equal(mkdir(path, 0700), 0);
		else
		{
			uint8_t    *data = xcalloc(1, size + 1);

			memset(data, 'x', size);
			write_file(path, data, size);
			free(data);
		}
		assert_int_equal(chmod(path, mode), 0);
		free(path);
	}
}

static void
make_socket(const char *path)
{
	struct sockaddr_un addr = {0};
	int			fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	addr.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(addr.sun_path));
	strcpy(addr.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
	close(fd);
}

static void
make_link(const char *scratch, const char *target_rel, const char *root, const char *link_rel)
{
	char	   *target = xasprintf("%s/%s", scratch, target_rel);
	char	   *link = xasprintf("%s/%s", root, link_rel);

	assert_int_equal(symlink(target, link), 0);
	free(target);
	free(link);
}

static const char *const synthetic_tree[] = {
	"d pgdata 0700",
	"f pgdata/PG_VERSION 0600 3",
	"f pgdata/backup_label 0600 10",
	"f pgdata/backup_manifest 0600 10",
	"d pgdata/base 0700",
	"d pgdata/base/1 0700",
	"f pgdata/base/1/1259 0600 16384",
	"f pgdata/base/1/1259.1 0600 8192",
	"f pgdata/base/1/1259_fsm 0600 24576",
	"f pgdata/base/1/1259_vm 0600 8192",
	"f pgdata/base/1/1259a 0600 10",
	"f pgdata/base/1/16400 0600 8192",
	"f pgdata/base/1/16400.1 0600 8192",
	"f pgdata/base/1/16400_fsm 0600 8192",
	"f pgdata/base/1/16400_init 0600 0",
	"f pgdata/base/1/16400_vm 0600 8192",
	"f pgdata/base/1/PG_VERSION 0600 3",
	"f pgdata/base/1/pg_filenode.map 0600 512",
	"f pgdata/base/1/pg_internal.init 0600 100",
	"d pgdata/base/1/pgsql_tmp 0700",
	"f pgdata/base/1/pgsql_tmp/pgsql_tmp1.0 0600 10",
	"f pgdata/base/1/t3_16500 0600 8192",
	"f pgdata/base/1/t3_16500_fsm 0600 8192",
	"f pgdata/base/1/t3_16500.1 0600 8192",
	"d pgdata/base/10 0750",
	"f pgdata/base/10/2608 0640 8192",
	"d pgdata/base/2 0700",
	"d pgdata/base/pgsql_tmp 0700",
	"f pgdata/base/pgsql_tmp/pgsql_tmp123.0 0600 10",
	"f pgdata/current_logfiles.tmp 0600 10",
	"d pgdata/global 0700",
	"f pgdata/global/1262 0600 8192",
	"f pgdata/global/pg_control 0600 8192",
	"f pgdata/global/pg_internal.init 0600 100",
	"f pgdata/global/pg_internal.init.123 0600 100",
	"d pgdata/pg_dynshmem 0700",
	"f pgdata/pg_dynshmem/mem.1 0600 10",
	"d pgdata/pg_notify 0700",
	"f pgdata/pg_notify/0000 0600 8192",
	"d pgdata/pg_replslot 0700",
	"d pgdata/pg_replslot/slot1 0700",
	"f pgdata/pg_replslot/slot1/state 0600 200",
	"d pgdata/pg_serial 0700",
	"f pgdata/pg_serial/0000 0600 10",
	"d pgdata/pg_snapshots 0700",
	"f pgdata/pg_snapshots/0000-1 0600 10",
	"d pgdata/pg_stat 0700",
	"f pgdata/pg_stat/pgstat.stat 0600 100",
	"d pgdata/pg_stat_tmp 0700",
	"f pgdata/pg_stat_tmp/global.stat 0600 100",
	"d pgdata/pg_subtrans 0700",
	"f pgdata/pg_subtrans/0000 0600 8192",
	"d pgdata/pg_tblspc 0700",
	"d pgdata/pg_tblspc/16386 0700",
	"d pgdata/pg_tblspc/16386/PG_15_202209061 0700",
	"d pgdata/pg_tblspc/16386/PG_15_202209061/5 0700",
	"f pgdata/pg_tblspc/16386/PG_15_202209061/5/1000 0600 8192",
	"d pgdata/pg_tblspc/16386/PG_16_202307071 0700",
	"f pgdata/pg_tblspc/16386/PG_16_202307071/x 0600 1",
	"d pgdata/pg_wal 0700",
	"f pgdata/pg_wal/000000010000000000000001 0600 4096",
	"d pgdata/pg_wal/archive_status 0700",
	"f pgdata/pg_wal/archive_status/000000010000000000000001.done 0600 0",
	"d pgdata/pg_xact 0700",
	"f pgdata/pg_xact/0000 0600 8192",
	"f pgdata/postgresql.auto.conf.tmp 0600 10",
	"f pgdata/postgresql.conf 0640 100",
	"f pgdata/postmaster.opts 0600 10",
	"f pgdata/postmaster.pid 0600 10",
	"f pgdata/recovery.signal 0600 0",
	"f pgdata/standby.signal 0600 0",
	"f pgdata/tablespace_map 0600 10",
	"d ts1 0700",
	"d ts1/PG_14_202107181 0700",
	"d ts1/PG_14_202107181/16384 0700",
	"f ts1/PG_14_202107181/16384/999 0600 8192",
	"d ts1/PG_15_202209061 0700",
	"d ts1/PG_15_202209061/16384 0700",
	"f ts1/PG_15_202209061/16384/16390 0600 16384",
	"f ts1/PG_15_202209061/16384/16390.2 0600 8192",
	"f ts1/PG_15_202209061/16384/16392 0600 8192",
	"f ts1/PG_15_202209061/16384/16392_init 0600 8192",
	"f ts1/PG_15_202209061/16384/t4_16391 0600 8192",
	"d ts1/PG_15_202209061/pgsql_tmp 0700",
	"f ts1/PG_15_202209061/pgsql_tmp/pgsql_tmp9.1 0600 10",
	"f ts1/stray_file 0600 10",
	"d logs 0700",
	"f logs/server.log 0600 10",
	NULL
};

#define TS1 "pg_tblspc/16385/PG_15_202209061"
#define TS2 "pg_tblspc/16386/PG_15_202209061"

static const expect synthetic_expect[] = {
	{'f', "PG_VERSION", 0600, 3},
	{'d', "base", 0700},
	{'d', "base/1", 0700},
	{'f', "base/1/1259", 0600, 16384, true, 0},
	{'f', "base/1/1259.1", 0600, 8192, true, 1},
	{'f', "base/1/1259_fsm", 0600, 24576, true, 0},
	{'f', "base/1/1259_vm", 0600, 8192, true, 0},
	{'f', "base/1/1259a", 0600, 10, false, 0},
	{'f', "base/1/16400_init", 0600, 0, true, 0},
	{'f', "base/1/PG_VERSION", 0600, 3},
	{'f', "base/1/pg_filenode.map", 0600, 512},
	{'d', "base/10", 0750},
	{'f', "base/10/2608", 0640, 8192, true, 0},
	{'d', "base/2", 0700},
	{'d', "global", 0700},
	{'f', "global/1262", 0600, 8192, true, 0},
	{'f', "global/pg_control", 0600, 8192},
	{'d', "pg_dynshmem", 0700},
	{'l', "pg_log", 0777, 0, false, 0, "logs"},
	{'d', "pg_notify", 0700},
	{'d', "pg_replslot", 0700},
	{'d', "pg_serial", 0700},
	{'d', "pg_snapshots", 0700},
	{'d', "pg_stat", 0700},
	{'f', "pg_stat/pgstat.stat", 0600, 100},
	{'d', "pg_stat_tmp", 0700},
	{'d', "pg_subtrans", 0700},
	{'d', "pg_tblspc", 0700},
	{'l', "pg_tblspc/16385", 0777, 0, false, 0, "ts1"},
	{'d', TS1, 0700},
	{'d', TS1 "/16384", 0700},
	{'f', TS1 "/16384/16390", 0600, 16384, true, 0},
	{'f', TS1 "/16384/16390.2", 0600, 8192, true, 2},
	{'f', TS1 "/16384/16392_init", 0600, 8192, true, 0},
	{'d', "pg_tblspc/16386", 0700},
	{'d', TS2, 0700},
	{'d', TS2 "/5", 0700},
	{'f', TS2 "/5/1000", 0600, 8192, true, 0},
	{'d', "pg_wal", 0700},
	{'d', "pg_wal/archive_status", 0700},
	{'d', "pg_xact", 0700},
	{'f', "pg_xact/0000", 0600, 8192},
	{'f', "postgresql.conf", 0640, 100},
};

static void
test_walk_synthetic(void **state)
{
	char	   *scratch = make_scratch();
	char	   *root = xasprintf("%s/pgdata", scratch);
	char	   *path;
	seen_list  *l = xcalloc(1, sizeof(*l));
	struct timespec times[2] = {{1234567890, 0}, {1234567890, 0}};
	size_t		nx = sizeof(synthetic_expect) / sizeof(synthetic_expect[0]);

	(void) state;
	build_tree(scratch, synthetic_tree);
	make_link(scratch, "ts1", root, "pg_tblspc/16385");
	make_link(scratch, "logs", root, "pg_log");
	path = xasprintf("%s/sock", root);
	make_socket(path);
	free(path);
	path = xasprintf("%s/fifo", root);
	assert_int_equal(mkfifo(path, 0600), 0);
	free(path);
	path = xasprintf("%s/postgresql.conf", root);
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	free(path);

	assert_int_equal(pgdata_walk(root, 15, collect, l), 0);
	check_seen(l, synthetic_expect, nx, root, scratch);
	assert_int_equal(l->e[nx - 1].mtime, 1234567890);
	seen_free(l);

	/* a trailing '/' on the data directory changes nothing */
	path = xasprintf("%s/", root);
	assert_int_equal(pgdata_walk(path, 15, collect, l), 0);
	check_seen(l, synthetic_expect, nx, root, scratch);
	seen_free(l);
	free(path);

	/* for 14, the other version directory of the tablespaces is the one */
	assert_int_equal(pgdata_walk(root, 14, collect, l), 0);
	{
		bool		found14 = false;

		for (size_t i = 0; i < l->n; i++)
		{
			assert_null(strstr(l->e[i].path, "PG_15_"));
			if (strcmp(l->e[i].path, "pg_tblspc/16385/PG_14_202107181/16384/999") == 0)
				found14 = l->e[i].relation;
		}
		assert_true(found14);
	}
	seen_free(l);

	free(l);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(root);
	free(scratch);
}

static void
test_walk_symlinked_pg_wal(void **state)
{
	static const char *const tree[] = {
		"d pgdata 0700",
		"d pgdata/base 0700",
		"d walreal 0750",
		"f walreal/000000010000000000000001 0600 4096",
		"d walreal/archive_status 0710",
		"f walreal/archive_status/000000010000000000000001.ready 0600 0",
		NULL
	};
	static const expect x15[] = {
		{'d', "base", 0700},
		{'d', "pg_wal", 0750},
		{'d', "pg_wal/archive_status", 0710},
	};
	static const expect x17[] = {
		{'d', "base", 0700},
		{'d', "pg_wal", 0750},
		{'d', "pg_wal/archive_status", 0710},
		{'d', "pg_wal/summaries", 0750},	/* missing: pg_wal's mode */
	};
	char	   *scratch = make_scratch();
	char	   *root = xasprintf("%s/pgdata", scratch);
	char	   *status = xasprintf("%s/walreal/archive_status", scratch);
	seen_list  *l = xcalloc(1, sizeof(*l));

	(void) state;
	build_tree(scratch, tree);
	make_link(scratch, "walreal", root, "pg_wal");

	assert_int_equal(pgdata_walk(root, 15, collect, l), 0);
	check_seen(l, x15, 3, root, scratch);
	seen_free(l);
	assert_int_equal(pgdata_walk(root, 17, collect, l), 0);
	check_seen(l, x17, 4, root, scratch);
	seen_free(l);

	/* without archive_status on disk it is still there, with pg_wal's mode */
	assert_int_equal(test_rm_rf(status), 0);
	assert_int_equal(pgdata_walk(root, 15, collect, l), 0);
	assert_int_equal(l->n, 3);
	assert_string_equal(l->e[2].path, "pg_wal/archive_status");
	assert_int_equal(l->e[2].mode, 0750);
	seen_free(l);

	free(l);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(status);
	free(root);
	free(scratch);
}

/* Entries removed while the walk runs are skipped; a tablespace without its location too. */
static void
test_walk_vanishing(void **state)
{
	static const char *const tree[] = {
		"d pgdata 0700",
		"d pgdata/base 0700",
		"d pgdata/base/1 0700",
		"f pgdata/base/1/1259 0600 8192",
		"f pgdata/base/1/2000 0600 8192",
		"f pgdata/base/1/3000 0600 8192",
		"d pgdata/base/5 0700",
		"f pgdata/base/5/1 0600 8192",
		"d pgdata/global 0700",
		"f pgdata/global/1262 0600 8192",
		"d pgdata/pg_tblspc 0700",
		NULL
	};
	static const expect x[] = {
		{'d', "base", 0700},
		{'d', "base/1", 0700},
		{'f', "base/1/1259", 0600, 8192, true, 0},
		{'f', "base/1/3000", 0600, 8192, true, 0},
		{'d', "global", 0700},
		{'f', "global/1262", 0600, 8192, true, 0},
		{'d', "pg_tblspc", 0700},
		{'l', "pg_tblspc/16999", 0777, 0, false, 0, "gone"},
	};
	char	   *scratch = make_scratch();
	char	   *root = xasprintf("%s/pgdata", scratch);
	char	   *f2000 = xasprintf("%s/base/1/2000", root);
	char	   *d5 = xasprintf("%s/base/5", root);
	seen_list  *l = xcalloc(1, sizeof(*l));

	(void) state;
	build_tree(scratch, tree);
	make_link(scratch, "gone", root, "pg_tblspc/16999");
	l->delete_at = "base/1/1259";
	l->delete_what[0] = f2000;
	l->delete_what[1] = d5;
	assert_int_equal(pgdata_walk(root, 15, collect, l), 0);
	check_seen(l, x, sizeof(x) / sizeof(x[0]), root, scratch);
	seen_free(l);

	free(l);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(f2000);
	free(d5);
	free(root);
	free(scratch);
}

static void
test_walk_errors(void **state)
{
	static const char *const tree[] = {
		"d pgdata 0700",
		"f pgdata/PG_VERSION 0600 3",
		"d pgdata/base 0700",
		"f pgdata/file 0600 3",
		NULL
	};
	char	   *scratch = make_scratch();
	char	   *root = xasprintf("%s/pgdata", scratch);
	char	   *missing = xasprintf("%s/nothere", scratch);
	char	   *file = xasprintf("%s/file", root);
	seen_list  *l = xcalloc(1, sizeof(*l));

	(void) state;
	build_tree(scratch, tree);

	assert_int_equal(pgdata_walk(missing, 15, collect, l), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), missing));
	assert_int_equal(l->n, 0);

	assert_int_equal(pgdata_walk(file, 15, collect, l), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), file));

	/* the callback stops the walk with its own error */
	l->fail_after = 2;
	assert_int_equal(pgdata_walk(root, 15, collect, l), -1);
	assert_int_equal(l->n, 2);
	assert_int_equal(err_kind(), DRB_ERR_INTERNAL);
	assert_string_equal(err_msg(), "callback stops at 'base'");
	seen_free(l);

	free(l);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(file);
	free(missing);
	free(root);
	free(scratch);
}

/* ---------------------------------------------------------------------------------------
 * copying a file
 * --------------------------------------------------------------------------------------- */

/*
 * pread interposed for this program (the library's calls bind to it): counts calls and,
 * when reread_page is set, plays a writer that finished its write between the first read
 * and the re-read (returns those bytes), or, with reread_truncated, a truncation.
 */
static int	pread_calls;
static const uint8_t *reread_page;
static bool reread_truncated;

ssize_t
pread(int fd, void *buf, size_t count, off_t offset)
{
	ssize_t		n;

	pread_calls++;
	if (reread_truncated)
		return 0;
	n = (ssize_t) syscall(SYS_pread64, fd, buf, count, offset);
	if (n == (ssize_t) count && reread_page != NULL && count == PAGE)
		memcpy(buf, reread_page, PAGE);
	return n;
}

/* Pages of the fixture, resealed for blocks first_blkno.. ; n pages, plus tail bytes. */
static uint8_t *
make_relation(size_t n, uint32_t first_blkno, size_t tail)
{
	size_t		len;
	uint8_t    *src = load_fixture("pg15_1259_6pages", &len);
	uint8_t    *data = xmalloc(n * PAGE + tail);

	for (size_t i = 0; i < n; i++)
	{
		uint8_t    *page = data + i * PAGE;

		memcpy(page, src + (i % 6) * PAGE, PAGE);
		reseal(page, first_blkno + (uint32_t) i);
	}
	for (size_t i = 0; i < tail; i++)
		data[n * PAGE + i] = (uint8_t) (i * 7 + 1);
	free(src);
	return data;
}

/* Copy path into a buffer sink; checks bytes, size and SHA-256 against data. */
static void
copy_and_compare(const char *path, const uint8_t *data, size_t len, bool check,
				 uint32_t first_blkno, uint64_t start_lsn, backup_file_result *res)
{
	buf_t		out;
	filter_t   *sink;
	uint8_t		digest[32];

	buf_init(&out);
	sink = filter_sink_buf_new(&out);
	if (backup_file_copy(path, check, first_blkno, start_lsn, sink, res) != 0)
		fail_msg("backup_file_copy: %s", err_msg());
	assert_int_equal(res->size, len);
	assert_int_equal(out.len, len);
	if (len > 0)
		assert_memory_equal(out.data, data, len);
	SHA256(data, len, digest);
	assert_memory_equal(res->sha256, digest, 32);
	filter_chain_free(sink);
	buf_free(&out);
}

static void
test_copy_clean_and_damaged(void **state)
{
	const size_t npages = 200;	/* 1.6 MB: two read steps */
	const size_t tail = 3000;
	const size_t len = npages * PAGE + tail;
	uint8_t    *data = make_relation(npages, 0, tail);
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/16384", scratch);
	backup_file_result res;

	(void) state;
	write_file(path, data, len);
	pread_calls = 0;
	copy_and_compare(path, data, len, true, 0, UINT64_MAX, &res);
	assert_int_equal(res.nbad, 0);
	assert_null(res.bad);
	assert_int_equal(res.pages_checked, npages);	/* not the partial tail */
	assert_int_equal(pread_calls, 0);

	/* damage blocks 3, 127 (end of the first step), 128 and 199 */
	data[3 * PAGE + 5000] ^= 0xff;
	data[127 * PAGE + 100] ^= 0x01;
	data[128 * PAGE + 8191] ^= 0x80;
	data[199 * PAGE + 30] ^= 0x10;
	write_file(path, data, len);
	pread_calls = 0;
	copy_and_compare(path, data, len, true, 0, UINT64_MAX, &res);
	assert_int_equal(res.nbad, 4);
	assert_int_equal(res.bad[0], 3);
	assert_int_equal(res.bad[1], 127);
	assert_int_equal(res.bad[2], 128);
	assert_int_equal(res.bad[3], 199);
	assert_int_equal(pread_calls, 4);	/* each read again once */
	free(res.bad);

	/* without check_pages nothing is checked or reported */
	pread_calls = 0;
	copy_and_compare(path, data, len, false, 0, UINT64_MAX, &res);
	assert_int_equal(res.nbad, 0);
	assert_null(res.bad);
	assert_int_equal(res.pages_checked, 0);
	assert_int_equal(pread_calls, 0);

	free(data);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(path);
	free(scratch);
}

/* Block numbers are first_blkno + page index (segment ".1" starts at 131072). */
static void
test_copy_segment_block_numbers(void **state)
{
	const size_t npages = 6;
	uint8_t    *data = make_relation(npages, PG_RELSEG_BLOCKS, 0);
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/16384.1", scratch);
	backup_file_result res;

	(void) state;
	data[4 * PAGE + 2000] ^= 0x04;
	write_file(path, data, npages * PAGE);
	copy_and_compare(path, data, npages * PAGE, true, PG_RELSEG_BLOCKS, UINT64_MAX, &res);
	assert_int_equal(res.nbad, 1);
	assert_int_equal(res.bad[0], PG_RELSEG_BLOCKS + 4);
	free(res.bad);

	/* checked as if segment 0, every page is at the wrong block */
	copy_and_compare(path, data, npages * PAGE, true, 0, UINT64_MAX, &res);
	assert_int_equal(res.nbad, npages);
	for (size_t i = 0; i < npages; i++)
		assert_int_equal(res.bad[i], i);
	free(res.bad);

	free(data);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(path);
	free(scratch);
}

/* Pages written after the start are not reported, damaged or not; new pages are fine. */
static void
test_copy_newer_pages(void **state)
{
	size_t		len;
	uint8_t    *data = load_fixture("pg15_1259_6pages", &len);
	uint8_t    *file = xmalloc(len + PAGE);
	const uint64_t start = UINT64_C(0x1700000);
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/1259", scratch);
	backup_file_result res;

	(void) state;
	/* block 1 (0/1687D58) is older than the start, block 2 (0/17520D8) newer */
	assert_true(page_lsn(data + PAGE) < start);
	assert_true(page_lsn(data + 2 * PAGE) >= start);
	data[PAGE + 6000] ^= 0x20;
	data[2 * PAGE + 6000] ^= 0x20;
	memcpy(file, data, len);
	memset(file + len, 0, PAGE);	/* block 6: a new page */
	write_file(path, file, len + PAGE);
	pread_calls = 0;
	copy_and_compare(path, file, len + PAGE, true, 0, start, &res);
	assert_int_equal(res.nbad, 1);
	assert_int_equal(res.bad[0], 1);
	assert_int_equal(res.pages_checked, 7);
	assert_int_equal(pread_calls, 1);
	free(res.bad);

	free(file);
	free(data);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(path);
	free(scratch);
}

/*
 * A page torn on the first read and whole on the second is not reported, and the bytes
 * pushed are those of the first read; a page truncated away before the re-read neither.
 */
static void
test_copy_reread(void **state)
{
	const size_t npages = 4;
	uint8_t    *good = make_relation(npages, 0, 0);
	uint8_t    *torn = xmalloc(npages * PAGE);
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/1259", scratch);
	backup_file_result res;

	(void) state;
	memcpy(torn, good, npages * PAGE);
	memset(torn + 2 * PAGE + 4096, 0x5a, 4096);	/* half of block 2 from another write */
	write_file(path, torn, npages * PAGE);

	pread_calls = 0;
	reread_page = good + 2 * PAGE;
	copy_and_compare(path, torn, npages * PAGE, true, 0, UINT64_MAX, &res);
	reread_page = NULL;
	assert_int_equal(pread_calls, 1);
	assert_int_equal(res.nbad, 0);
	assert_null(res.bad);

	pread_calls = 0;
	reread_truncated = true;
	copy_and_compare(path, torn, npages * PAGE, true, 0, UINT64_MAX, &res);
	reread_truncated = false;
	assert_int_equal(pread_calls, 1);
	assert_int_equal(res.nbad, 0);

	/* and with a plain re-read, it is bad twice */
	pread_calls = 0;
	copy_and_compare(path, torn, npages * PAGE, true, 0, UINT64_MAX, &res);
	assert_int_equal(pread_calls, 1);
	assert_int_equal(res.nbad, 1);
	assert_int_equal(res.bad[0], 2);
	free(res.bad);

	free(torn);
	free(good);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(path);
	free(scratch);
}

static void
test_copy_small_and_empty(void **state)
{
	static const char text[] = "15\n";
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/PG_VERSION", scratch);
	backup_file_result res;

	(void) state;
	write_file(path, text, 3);
	copy_and_compare(path, (const uint8_t *) text, 3, true, 0, UINT64_MAX, &res);
	assert_int_equal(res.pages_checked, 0);
	write_file(path, "", 0);
	copy_and_compare(path, (const uint8_t *) "", 0, true, 0, UINT64_MAX, &res);
	assert_int_equal(res.pages_checked, 0);

	assert_int_equal(test_rm_rf(scratch), 0);
	free(path);
	free(scratch);
}

/* A sink that refuses everything. */
static int
refuse_process(filter_t *f, const uint8_t *in, size_t len)
{
	(void) f;
	(void) in;
	(void) len;
	return err_set(DRB_ERR_STORAGE, "sink is full");
}

static int
refuse_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
refuse_destroy(filter_t *f)
{
	free(f);
}

static const filter_ops refuse_ops = {"refuse", refuse_process, refuse_finish, refuse_destroy};

static void
test_copy_errors(void **state)
{
	char	   *scratch = make_scratch();
	char	   *path = xasprintf("%s/1259", scratch);
	char	   *dir = xasprintf("%s/adir", scratch);
	buf_t		out;
	filter_t   *sink;
	filter_t   *refuse = xcalloc(1, sizeof(filter_t));
	backup_file_result res;

	(void) state;
	buf_init(&out);
	sink = filter_sink_buf_new(&out);

	/* vanished */
	assert_int_equal(backup_file_copy(path, true, 0, UINT64_MAX, sink, &res), -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_non_null(strstr(err_msg(), path));
	assert_null(res.bad);
	assert_int_equal(out.len, 0);

	/* not readable as a file */
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(backup_file_copy(dir, true, 0, UINT64_MAX, sink, &res), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), dir));

	/* the sink fails: its error, with the file named */
	write_file(path, "abc", 3);
	refuse->ops = &refuse_ops;
	assert_int_equal(backup_file_copy(path, true, 0, UINT64_MAX, refuse, &res), -1);
	assert_int_equal(err_kind(), DRB_ERR_STORAGE);
	assert_non_null(strstr(err_msg(), path));
	assert_non_null(strstr(err_msg(), "sink is full"));
	assert_null(res.bad);

	filter_chain_free(refuse);
	filter_chain_free(sink);
	buf_free(&out);
	assert_int_equal(test_rm_rf(scratch), 0);
	free(dir);
	free(path);
	free(scratch);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_real_pages),
		cmocka_unit_test(test_checksum_known_values),
		cmocka_unit_test(test_page_check_classes),
		cmocka_unit_test(test_relation_name),
		cmocka_unit_test(test_walk_synthetic),
		cmocka_unit_test(test_walk_symlinked_pg_wal),
		cmocka_unit_test(test_walk_vanishing),
		cmocka_unit_test(test_walk_errors),
		cmocka_unit_test(test_copy_clean_and_damaged),
		cmocka_unit_test(test_copy_segment_block_numbers),
		cmocka_unit_test(test_copy_newer_pages),
		cmocka_unit_test(test_copy_reread),
		cmocka_unit_test(test_copy_small_and_empty),
		cmocka_unit_test(test_copy_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
