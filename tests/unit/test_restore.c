/*
 * test_restore.c — the recovery target (restore_target.c) and PostgreSQL's backup_manifest
 * (pg_manifest.c):
 *   - restore_target_parse: every kind of target from the options, conflicts, bad values,
 *     target-action / target-exclusive / target-timeline rules;
 *   - time parsing: forms, zones and offsets, fractions, invalid dates, independence from TZ;
 *   - restore_choose_backup: catalogs built in memory and WAL inventories built by hand —
 *     newest backup before a time or LSN target, backups whose WAL is missing skipped, the
 *     window (its message), later timelines, several repositories, --set;
 *   - restore_recovery_settings: the exact text and its quoting;
 *   - restore_write_recovery: earlier recovery settings commented out, the rest kept,
 *     recovery.signal, mode kept, a second restore over the first;
 *   - pg_manifest: the exact layout and checksum, and PostgreSQL 15's pg_verifybackup
 *     accepting a manifest written for a fixture directory (escaped and non-UTF-8 names, a
 *     tablespace link, files added from several threads) and rejecting it once a byte of
 *     a file is flipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "catalog.h"
#include "config.h"
#include "error.h"
#include "filter_hash.h"
#include "mem.h"
#include "pg_manifest.h"
#include "restore.h"
#include "wal_inventory.h"

#define PG_VERIFYBACKUP "/usr/lib/postgresql/15/bin/pg_verifybackup"

extern char **environ;

static char tmpdir[64];
static char *conf_path;

/* Epoch seconds of the times the cases use (computed independently with Python). */
#define T_2026_11_20_140300		INT64_C(1795183380)
#define T_2024_02_29_000000		INT64_C(1709164800)
#define T_2026_11_21_020007		INT64_C(1795226407)
#define T_2026_11_21_023000		INT64_C(1795228200)
#define T_2026_11_20_010007		(T_2026_11_21_020007 - 86400 - 3600)
#define T_2026_11_21_021000		(T_2026_11_21_023000 - 1200)
#define T_2026_11_21_030000		(T_2026_11_21_023000 + 1800)
#define T_2026_11_21_040000		(T_2026_11_21_023000 + 5400)

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static void
clear_drbackup_env(void)
{
	for (;;)
	{
		char	   *found = NULL;

		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, "DRBACKUP_", 9) == 0)
			{
				found = xstrndup(*e, strcspn(*e, "="));
				break;
			}
		if (found == NULL)
			return;
		unsetenv(found);
		free(found);
	}
}

/* config_parse of "drbackup --config=<empty> --stanza=main restore" + the words. */
static config_t *
parse_restore(const char *first,...)
{
	char	   *argv[32];
	int			argc = 0;
	char	   *conf = xasprintf("--config=%s", conf_path);
	va_list		ap;
	config_t   *cfg;

	argv[argc++] = (char *) "drbackup";
	argv[argc++] = conf;
	argv[argc++] = (char *) "--stanza=main";
	argv[argc++] = (char *) "--log-level-file=off";
	argv[argc++] = (char *) "restore";
	va_start(ap, first);
	for (const char *w = first; w != NULL; w = va_arg(ap, const char *))
		argv[argc++] = (char *) w;
	va_end(ap);
	argv[argc] = NULL;
	err_clear();
	cfg = config_parse(argc, argv);
	free(conf);
	if (cfg == NULL)
		fail_msg("config_parse failed: %s", err_msg());
	return cfg;
}

/* restore_target_parse of the words must fail with kind and a message holding every fragment. */
#define assert_target_fails(kind, words, ...) \
	do { \
		config_t   *c_ = parse_restore words; \
		restore_target t_; \
		const char *frags_[] = {__VA_ARGS__, NULL}; \
		int			rc_ = restore_target_parse(c_, &t_); \
		config_free(c_); \
		assert_int_equal(rc_, -1); \
		assert_int_equal(err_kind(), (kind)); \
		for (const char **f_ = frags_; *f_; f_++) \
			if (strstr(err_msg(), *f_) == NULL) \
				fail_msg("message \"%s\" lacks \"%s\"", err_msg(), *f_); \
	} while (0)

/* The message of the current error must hold every fragment. */
#define assert_msg_has(...) \
	do { \
		const char *frags_[] = {__VA_ARGS__, NULL}; \
		for (const char **f_ = frags_; *f_; f_++) \
			if (strstr(err_msg(), *f_) == NULL) \
				fail_msg("message \"%s\" lacks \"%s\"", err_msg(), *f_); \
	} while (0)

/* Parse one --to-time value; returns the settings text's recovery_target_time line value. */
static int
parse_time_value(const char *value, int64_t *seconds, char **normalised)
{
	char	   *opt = xasprintf("--to-time=%s", value);
	config_t   *cfg = parse_restore(opt, NULL);
	restore_target t;
	int			rc = restore_target_parse(cfg, &t);

	*normalised = NULL;
	if (rc == 0)
	{
		char	   *s = restore_recovery_settings(&t, "x");
		const char *line = s ? strstr(s, "recovery_target_time = '") : NULL;

		assert_int_equal(t.kind, TARGET_TIME);
		*seconds = t.time;
		assert_non_null(line);
		line += strlen("recovery_target_time = '");
		*normalised = xstrndup(line, strcspn(line, "'"));
		free(s);
	}
	config_free(cfg);
	free(opt);
	return rc;
}

static char *
read_text(const char *path)
{
	FILE	   *f = fopen(path, "r");
	buf_t		b;
	char		chunk[4096];
	size_t		n;

	if (f == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return (char *) buf_cstr(&b);
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *
make_dir(const char *name)
{
	char	   *path = xasprintf("%s/%s", tmpdir, name);

	test_rm_rf(path);
	assert_int_equal(mkdir(path, 0700), 0);
	return path;
}

/* ---------------------------------------------------------------------------------------
 * Catalogs and WAL inventories built by hand
 * ------------------------------------------------------------------------------------- */

static void
add_backup(catalog *c, const char *label, backup_type type, uint32_t tli, const char *wal_start,
		   const char *wal_stop, uint64_t stop_lsn, int64_t stop_time)
{
	catalog_backup b;

	memset(&b, 0, sizeof(b));
	b.label = (char *) label;
	b.type = type;
	b.timeline = tli;
	b.start_lsn = stop_lsn - 0xD8;
	b.stop_lsn = stop_lsn;
	b.start_time = stop_time - 7;
	b.stop_time = stop_time;
	snprintf(b.wal_start, sizeof(b.wal_start), "%s", wal_start);
	snprintf(b.wal_stop, sizeof(b.wal_stop), "%s", wal_stop);
	b.wal_segment_size = 16 * 1024 * 1024;
	catalog_add(c, &b);
}

/* An inventory of segments tli/log 0/seg first..last (16 MiB segments), each archived
 * at mtime0 + 60 * index, the last one at last_mtime. Appended to what inv holds. */
static void
inv_add_run(wal_inventory *inv, uint32_t tli, uint32_t first, uint32_t last, int64_t last_mtime)
{
	inv->seg_size = 16 * 1024 * 1024;
	for (uint32_t seg = first; seg <= last; seg++)
	{
		wal_object *o;
		char		name[25];

		snprintf(name, sizeof(name), "%08X%08X%08X", tli, 0u, seg);
		inv->segments = xrealloc(inv->segments, (inv->nsegments + 1) * sizeof(*o));
		o = &inv->segments[inv->nsegments++];
		memset(o, 0, sizeof(*o));
		assert_int_equal(wal_name_parse(name, &o->w), 0);
		o->mtime = last_mtime - 60 * (int64_t) (last - seg);
	}
	inv->ranges = xrealloc(inv->ranges, (inv->nranges + 1) * sizeof(*inv->ranges));
	{
		wal_range  *r = &inv->ranges[inv->nranges++];

		memset(r, 0, sizeof(*r));
		r->tli = tli;
		snprintf(r->first, sizeof(r->first), "%08X%08X%08X", tli, 0u, first);
		snprintf(r->last, sizeof(r->last), "%08X%08X%08X", tli, 0u, last);
		r->count = last - first + 1;
		r->last_mtime = last_mtime;
	}
}

#define LABEL_B1	"20261120-010000F"
#define LABEL_B2	"20261120-010000F_20261121-020000I"
#define LABEL_B3	"20261122-010000F"

/*
 * B1 full stopped 2026-11-20 01:00:07 at 0/2000100 (WAL segment 2), B2 incr stopped
 * 2026-11-21 02:00:07 at 0/5000100 (segment 5), B3 full stopped 2026-11-22 at 0/9000100
 * (segment 9, not archived).
 */
static void
standard_catalog(catalog *c)
{
	catalog_init(c, "main");
	add_backup(c, LABEL_B3, BACKUP_FULL, 1, "000000010000000000000009",
			   "000000010000000000000009", 0x9000100, T_2026_11_21_020007 + 86400 - 3600);
	add_backup(c, LABEL_B1, BACKUP_FULL, 1, "000000010000000000000002",
			   "000000010000000000000002", 0x2000100, T_2026_11_20_010007);
	add_backup(c, LABEL_B2, BACKUP_INCR, 1, "000000010000000000000005",
			   "000000010000000000000005", 0x5000100, T_2026_11_21_020007);
}

typedef struct choice
{
	const catalog_backup *b;
	int			pos;
	char	   *why;
	int			rc;
} choice;

static choice
choose(const catalog *const *cats, const wal_inventory *const *invs, int n, const char *set,
	   const restore_target *t)
{
	choice		c;

	err_clear();
	c.rc = restore_choose_backup(cats, invs, NULL, n, set, t, &c.b, &c.pos, &c.why);
	if (c.rc != 0)
	{
		assert_null(c.b);
		assert_null(c.why);
	}
	return c;
}

static restore_target
time_target(int64_t when)
{
	restore_target t;

	memset(&t, 0, sizeof(t));
	t.kind = TARGET_TIME;
	t.time = when;
	t.action = "pause";
	return t;
}

static restore_target
lsn_target(uint64_t lsn)
{
	restore_target t;

	memset(&t, 0, sizeof(t));
	t.kind = TARGET_LSN;
	t.lsn = lsn;
	t.action = "pause";
	return t;
}

static restore_target
kind_target(restore_target_kind kind, const char *value)
{
	restore_target t;

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	t.value = value;
	t.action = "pause";
	return t;
}

/* ---------------------------------------------------------------------------------------
 * restore_target_parse
 * ------------------------------------------------------------------------------------- */

static void
test_target_kinds(void **state)
{
	config_t   *cfg;
	restore_target t;

	(void) state;

	cfg = parse_restore(NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_LATEST);
	assert_null(t.value);
	assert_string_equal(t.action, "pause");
	assert_null(t.timeline);
	assert_false(t.exclusive);
	config_free(cfg);

	cfg = parse_restore("--to-time=2026-11-20 14:03:00", "--target-action=promote", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_TIME);
	assert_string_equal(t.value, "2026-11-20 14:03:00");
	assert_true(t.time == T_2026_11_20_140300);
	assert_string_equal(t.action, "promote");
	config_free(cfg);

	cfg = parse_restore("--to-lsn=1a/0B000060", "--target-exclusive", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_LSN);
	assert_true(t.lsn == ((UINT64_C(0x1a) << 32) | 0x0B000060));
	assert_true(t.exclusive);
	config_free(cfg);

	cfg = parse_restore("--to-xid=123456", "--target-timeline=latest", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_XID);
	assert_string_equal(t.value, "123456");
	assert_string_equal(t.timeline, "latest");
	config_free(cfg);

	/* an epoch-qualified xid (64 bits), as PostgreSQL 13+ takes it */
	cfg = parse_restore("--to-xid=4294967396", "--target-timeline=3", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_string_equal(t.timeline, "3");
	config_free(cfg);

	cfg = parse_restore("--to-name=before upgrade", "--target-action=shutdown",
						"--target-timeline=current", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_NAME);
	assert_string_equal(t.value, "before upgrade");
	assert_string_equal(t.action, "shutdown");
	assert_string_equal(t.timeline, "current");
	config_free(cfg);

	cfg = parse_restore("--immediate", NULL);
	assert_int_equal(restore_target_parse(cfg, &t), 0);
	assert_int_equal(t.kind, TARGET_IMMEDIATE);
	assert_null(t.value);
	config_free(cfg);
}

static void
test_target_conflicts_and_bad_values(void **state)
{
	char		long_name[80];

	(void) state;

	assert_target_fails(DRB_ERR_USAGE, ("--to-time=2026-11-20 14:03:00", "--to-lsn=0/1", NULL),
						"--to-time and --to-lsn");
	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=100", "--immediate", NULL),
						"--to-xid and --immediate");
	assert_target_fails(DRB_ERR_USAGE, ("--to-name=x", "--to-lsn=0/1", NULL),
						"--to-lsn and --to-name");

	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=0/", NULL), "invalid --to-lsn '0/'");
	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=G/1", NULL), "invalid --to-lsn");
	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=0/123456789", NULL), "invalid --to-lsn");
	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=1/2/3", NULL), "invalid --to-lsn");
	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=0x1/2", NULL), "invalid --to-lsn");
	assert_target_fails(DRB_ERR_USAGE, ("--to-lsn=16777216", NULL), "invalid --to-lsn");

	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=abc", NULL), "invalid --to-xid 'abc'");
	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=2", NULL), "invalid --to-xid '2'");
	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=-5", NULL), "invalid --to-xid");
	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=99999999999999999999999", NULL),
						"invalid --to-xid");
	assert_target_fails(DRB_ERR_USAGE, ("--to-xid=18446744073709551616", NULL),
						"invalid --to-xid");

	memset(long_name, 'n', 64);
	long_name[64] = '\0';
	{
		char	   *opt = xasprintf("--to-name=%s", long_name);

		assert_target_fails(DRB_ERR_USAGE, (opt, NULL), "invalid --to-name", "1 to 63");
		long_name[63] = '\0';	/* 63 characters are fine */
		free(opt);
		opt = xasprintf("--to-name=%s", long_name);
		{
			config_t   *cfg = parse_restore(opt, NULL);
			restore_target t;

			assert_int_equal(restore_target_parse(cfg, &t), 0);
			config_free(cfg);
		}
		free(opt);
	}
	assert_target_fails(DRB_ERR_USAGE, ("--to-name=a\nb", NULL), "invalid --to-name");

	assert_target_fails(DRB_ERR_USAGE, ("--target-timeline=newest", NULL),
						"invalid --target-timeline 'newest'");
	assert_target_fails(DRB_ERR_USAGE, ("--target-timeline=0", NULL), "invalid --target-timeline");
	assert_target_fails(DRB_ERR_USAGE, ("--target-timeline=4294967296", NULL),
						"invalid --target-timeline");

	/* options that mean nothing without a target, or with this kind of target */
	assert_target_fails(DRB_ERR_USAGE, ("--target-action=promote", NULL),
						"--target-action needs a recovery target");
	assert_target_fails(DRB_ERR_USAGE, ("--target-exclusive", NULL), "--target-exclusive");
	assert_target_fails(DRB_ERR_USAGE, ("--immediate", "--target-exclusive", NULL),
						"--target-exclusive applies to");
	assert_target_fails(DRB_ERR_USAGE, ("--to-name=x", "--target-exclusive", NULL),
						"--target-exclusive applies to");
}

/* ---------------------------------------------------------------------------------------
 * Time parsing
 * ------------------------------------------------------------------------------------- */

static void
check_time(const char *value, int64_t seconds, const char *normalised)
{
	int64_t		got = -1;
	char	   *norm = NULL;

	if (parse_time_value(value, &got, &norm) != 0)
		fail_msg("'%s' did not parse: %s", value, err_msg());
	if (got != seconds)
		fail_msg("'%s' parsed to %lld, expected %lld", value, (long long) got,
				 (long long) seconds);
	if (strcmp(norm, normalised) != 0)
		fail_msg("'%s' normalised to '%s', expected '%s'", value, norm, normalised);
	free(norm);
}

static void
check_time_fails(const char *value, const char *fragment)
{
	int64_t		got;
	char	   *norm;

	if (parse_time_value(value, &got, &norm) == 0)
		fail_msg("'%s' parsed to %lld, expected an error", value, (long long) got);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("invalid --to-time", fragment, "YYYY-MM-DD HH:MM:SS");
}

static void
test_time_parsing(void **state)
{
	const int64_t t = T_2026_11_20_140300;
	char	   *saved_tz = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;

	(void) state;
	/* a zone-less time is UTC whatever TZ says */
	setenv("TZ", "America/New_York", 1);
	tzset();

	check_time("2026-11-20 14:03:00", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20T14:03:00Z", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 14:03:00z", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 14:03:00 UTC", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 14:03:00+00", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 15:03:00+01", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 15:03:00+0100", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 15:03:00 +01:00", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 08:33:00-05:30", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-21 00:03:00+10", t, "2026-11-20 14:03:00+00");	/* day before in UTC */
	check_time("2026-11-20 14:03", t, "2026-11-20 14:03:00+00");
	check_time("2026-11-20 14:03:00.123", t, "2026-11-20 14:03:00.123+00");
	check_time("2026-11-20 14:03:00,5+00", t, "2026-11-20 14:03:00.5+00");
	check_time("2026-11-20 16:03:00.000001+02", t, "2026-11-20 14:03:00.000001+00");
	check_time("  2026-11-20 14:03:00  ", t, "2026-11-20 14:03:00+00");
	check_time("2024-02-29 00:00:00", T_2024_02_29_000000, "2024-02-29 00:00:00+00");
	check_time("2024-02-29 00:00:00-00:30", T_2024_02_29_000000 + 1800,
			   "2024-02-29 00:30:00+00");

	check_time_fails("2023-02-29 00:00:00", "no such date");
	check_time_fails("2026-13-01 00:00:00", "no such date");
	check_time_fails("2026-04-31 00:00:00", "no such date");
	check_time_fails("2026-11-20 24:00:00", "no such time");
	check_time_fails("2026-11-20 14:60:00", "no such time");
	check_time_fails("2026-11-20 14:03:60", "no such time");
	check_time_fails("2026-11-20 14:03:00.1234567", "6 fractional digits");
	check_time_fails("2026-11-20 14:03:00.", "no digits after");
	check_time_fails("2026-11-20 14:03:00+16", "offset out of range");
	check_time_fails("2026-11-20 14:03:00+1", "two digits of hours");
	check_time_fails("2026-11-20 14:03:00+01:3", "minutes must be two digits");
	check_time_fails("2026-11-20", "no time");
	check_time_fails("2026-11-20 14", "no time HH:MM");
	check_time_fails("20261120 140300", "no date");
	check_time_fails("yesterday", "no date");
	check_time_fails("2026-11-20 14:03:00 CET", "unexpected text");
	check_time_fails("2026-11-20 14:03:00+01 junk", "unexpected text");
	check_time_fails("1969-12-31 23:59:59", "no such date");
	check_time_fails("1970-01-01 00:30:00+01", "before 1970");

	if (saved_tz)
		setenv("TZ", saved_tz, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved_tz);
}

/* ---------------------------------------------------------------------------------------
 * restore_choose_backup
 * ------------------------------------------------------------------------------------- */

static void
test_choose_one_repository(void **state)
{
	catalog		c;
	wal_inventory inv;
	const catalog *cats[1] = {&c};
	const wal_inventory *invs[1] = {&inv};
	restore_target t;
	choice		ch;

	(void) state;
	standard_catalog(&c);
	memset(&inv, 0, sizeof(inv));
	/* segments 2..7 archived, the last at 03:00:00; segment 9 (B3) missing */
	inv_add_run(&inv, 1, 2, 7, T_2026_11_21_030000);

	t = time_target(T_2026_11_21_023000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, 0);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_int_equal(ch.pos, 0);
	assert_string_equal(ch.why,
						"restoring backup 20261120-010000F_20261121-020000I (incr, stopped "
						"2026-11-21 02:00:07+00 at 0/5000100) from repository 1: the newest "
						"backup that stopped before the target 2026-11-21 02:30:00+00");
	free(ch.why);

	/* the stop time is cut to the second and consistency may come up to a second later:
	 * a target one second after the stop: that backup; in the stop's second: the one
	 * before */
	t = time_target(T_2026_11_21_020007 + 1);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	free(ch.why);
	t = time_target(T_2026_11_21_020007);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B1);
	free(ch.why);

	/* the window's ends: the second after B1's stop and the archive time of segment 7 */
	t = time_target(T_2026_11_20_010007 + 1);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B1);
	free(ch.why);
	t = time_target(T_2026_11_21_030000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	free(ch.why);

	t = time_target(T_2026_11_20_010007);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("the target 2026-11-20 01:00:07+00 is outside the recoverable window",
				   "the recoverable window of repository 1 is 2026-11-20 01:00:08+00 to "
				   "2026-11-21 03:00:00+00");
	t = time_target(T_2026_11_21_030000 + 1);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("2026-11-21 03:00:01+00 is outside",
				   "repository 1 is 2026-11-20 01:00:08+00 to 2026-11-21 03:00:00+00");

	/* latest and immediate: the newest restorable backup (B3 lacks its WAL) */
	t = kind_target(TARGET_LATEST, NULL);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_non_null(strstr(ch.why, "the newest backup; recovery replays the archived WAL to "
						   "its end (last segment archived at 2026-11-21 03:00:00+00)"));
	free(ch.why);
	t = kind_target(TARGET_IMMEDIATE, NULL);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_non_null(strstr(ch.why, "consistent (at 0/5000100)"));
	free(ch.why);

	/* xid and name cannot be placed: the newest, saying so */
	t = kind_target(TARGET_XID, "1234");
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_non_null(strstr(ch.why, "transaction 1234"));
	assert_non_null(strstr(ch.why, "--set"));
	free(ch.why);
	t = kind_target(TARGET_NAME, "before upgrade");
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_non_null(strstr(ch.why, "'before upgrade'"));
	free(ch.why);

	/* LSN targets: stop LSN <= target, within the archived WAL (segment 7 ends at 0/8000000) */
	t = lsn_target(0x5000100);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	assert_non_null(strstr(ch.why, "the newest backup that stopped before the target LSN "
						   "0/5000100"));
	free(ch.why);
	t = lsn_target(0x50000FF);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B1);
	free(ch.why);
	t = lsn_target(0x8000000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B2);
	free(ch.why);
	t = lsn_target(0x8000001);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("the target LSN 0/8000001 is outside",
				   "the recoverable window of repository 1 is 0/2000100 to 0/8000000");
	t = lsn_target(0x2000000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("0/2000000 is outside");

	/* once B3's WAL is archived it is the newest */
	inv_add_run(&inv, 1, 9, 9, T_2026_11_21_040000 + 86400);
	t = kind_target(TARGET_LATEST, NULL);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_string_equal(ch.b->label, LABEL_B3);
	free(ch.why);

	wal_inventory_free(&inv);
	catalog_free(&c);
}

static void
test_choose_set(void **state)
{
	catalog		c;
	wal_inventory inv;
	const catalog *cats[1] = {&c};
	const wal_inventory *invs[1] = {&inv};
	restore_target t;
	choice		ch;

	(void) state;
	standard_catalog(&c);
	memset(&inv, 0, sizeof(inv));
	inv_add_run(&inv, 1, 2, 7, T_2026_11_21_030000);

	t = time_target(T_2026_11_21_023000);
	ch = choose(cats, invs, 1, LABEL_B1, &t);
	assert_int_equal(ch.rc, 0);
	assert_string_equal(ch.b->label, LABEL_B1);
	assert_non_null(strstr(ch.why, "restoring backup 20261120-010000F (full, stopped "
						   "2026-11-20 01:00:07+00 at 0/2000100) from repository 1: chosen "
						   "with --set"));
	free(ch.why);

	ch = choose(cats, invs, 1, "20261101-000000F", &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_msg_has("backup '20261101-000000F' is not in the catalog of any repository");

	t = kind_target(TARGET_LATEST, NULL);
	ch = choose(cats, invs, 1, LABEL_B3, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
	assert_msg_has("backup '20261122-010000F' cannot be restored",
				   "repository 1 lacks WAL segment 000000010000000000000009");

	/* a target before the chosen backup's end cannot be reached from it */
	t = time_target(T_2026_11_21_020007 - 60);
	ch = choose(cats, invs, 1, LABEL_B2, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("backup '20261120-010000F_20261121-020000I' cannot be restored",
				   "it stopped at 2026-11-21 02:00:07+00, after the target 2026-11-21 "
				   "01:59:07+00");
	t = time_target(T_2026_11_21_030000 + 60);
	ch = choose(cats, invs, 1, LABEL_B2, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("after the end of the WAL archived from it in repository 1",
				   "repository 1 is 2026-11-20 01:00:08+00 to 2026-11-21 03:00:00+00");

	wal_inventory_free(&inv);
	catalog_free(&c);
}

static void
test_choose_later_timeline(void **state)
{
	catalog		c;
	wal_inventory inv;
	const catalog *cats[1] = {&c};
	const wal_inventory *invs[1] = {&inv};
	restore_target t;
	choice		ch;

	(void) state;
	standard_catalog(&c);
	memset(&inv, 0, sizeof(inv));
	inv_add_run(&inv, 1, 2, 5, T_2026_11_21_021000);

	t = time_target(T_2026_11_21_030000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_msg_has("repository 1 is 2026-11-20 01:00:08+00 to 2026-11-21 02:10:00+00");

	/* timeline 2 (a promotion after B2) archived until 04:00: the window reaches there */
	inv_add_run(&inv, 2, 5, 6, T_2026_11_21_040000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, 0);
	assert_string_equal(ch.b->label, LABEL_B2);
	free(ch.why);
	t = lsn_target(0x6FFFFFF);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, 0);
	free(ch.why);
	t = time_target(T_2026_11_21_040000 + 1);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_msg_has("to 2026-11-21 04:00:00+00");

	wal_inventory_free(&inv);
	catalog_free(&c);
}

static void
test_choose_gap(void **state)
{
	catalog		c;
	wal_inventory inv;
	const catalog *cats[1] = {&c};
	const wal_inventory *invs[1] = {&inv};
	restore_target t;
	choice		ch;
	const int64_t t_1120_0500 = T_2026_11_20_010007 + 4 * 3600 - 7;

	(void) state;
	standard_catalog(&c);
	memset(&inv, 0, sizeof(inv));
	/* segment 4 missing: B1's run ends at 3 (archived 2026-11-20 05:00), B2's at 7 */
	inv_add_run(&inv, 1, 2, 3, t_1120_0500);
	inv_add_run(&inv, 1, 5, 7, T_2026_11_21_030000);

	t = time_target(t_1120_0500 - 3600);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, 0);
	assert_string_equal(ch.b->label, LABEL_B1);
	free(ch.why);

	/* between the end of B1's run and B2's stop: nothing can reach it */
	t = time_target(T_2026_11_21_020007 - 3600);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("the target 2026-11-21 01:00:07+00 cannot be reached: the WAL archive of "
				   "repository 1 has a gap (segment 000000010000000000000004 is missing) "
				   "between backup 20261120-010000F and the target",
				   "the recoverable window of repository 1 is 2026-11-20 01:00:08+00 to "
				   "2026-11-21 03:00:00+00");
	ch = choose(cats, invs, 1, LABEL_B1, &t);
	assert_int_equal(ch.rc, -1);
	assert_msg_has("(segment 000000010000000000000004 is missing)");

	/* after B2: B2, the window ending with B2's run */
	t = time_target(T_2026_11_21_023000);
	ch = choose(cats, invs, 1, NULL, &t);
	assert_int_equal(ch.rc, 0);
	assert_string_equal(ch.b->label, LABEL_B2);
	free(ch.why);

	wal_inventory_free(&inv);
	catalog_free(&c);
}

static void
test_choose_several_repositories(void **state)
{
	catalog		c1,
				c2;
	wal_inventory i1,
				i2,
				empty;
	restore_target t;
	choice		ch;

	(void) state;
	standard_catalog(&c1);
	standard_catalog(&c2);
	memset(&i1, 0, sizeof(i1));
	memset(&i2, 0, sizeof(i2));
	memset(&empty, 0, sizeof(empty));
	empty.seg_size = 16 * 1024 * 1024;
	/* repository 1's archive lags: it ends at 02:10; repository 2's at 03:00 */
	inv_add_run(&i1, 1, 2, 5, T_2026_11_21_021000);
	inv_add_run(&i2, 1, 2, 7, T_2026_11_21_030000);
	{
		const catalog *cats[2] = {&c1, &c2};
		const wal_inventory *invs[2] = {&i1, &i2};

		/* within both windows: the same backup in both, the first repository keeps it */
		t = time_target(T_2026_11_21_021000 - 60);
		ch = choose(cats, invs, 2, NULL, &t);
		assert_int_equal(ch.rc, 0);
		assert_string_equal(ch.b->label, LABEL_B2);
		assert_int_equal(ch.pos, 0);
		assert_ptr_equal(ch.b, catalog_find(&c1, LABEL_B2));
		free(ch.why);

		/* only repository 2's archive reaches the target */
		t = time_target(T_2026_11_21_023000);
		ch = choose(cats, invs, 2, NULL, &t);
		assert_int_equal(ch.rc, 0);
		assert_string_equal(ch.b->label, LABEL_B2);
		assert_int_equal(ch.pos, 1);
		assert_ptr_equal(ch.b, catalog_find(&c2, LABEL_B2));
		assert_non_null(strstr(ch.why, "from repository 2:"));
		free(ch.why);

		/* outside both: each window printed */
		t = time_target(T_2026_11_21_040000);
		ch = choose(cats, invs, 2, NULL, &t);
		assert_int_equal(ch.rc, -1);
		assert_int_equal(err_kind(), DRB_ERR_USAGE);
		assert_msg_has("repository 1 is 2026-11-20 01:00:08+00 to 2026-11-21 02:10:00+00",
					   "repository 2 is 2026-11-20 01:00:08+00 to 2026-11-21 03:00:00+00");

		/* --set picks the first repository that can reach the target */
		ch = choose(cats, invs, 2, LABEL_B2, &(restore_target)
		{
			.kind = TARGET_TIME, .time = T_2026_11_21_023000, .action = "pause"
		});
		assert_int_equal(ch.rc, 0);
		assert_int_equal(ch.pos, 1);
		free(ch.why);
	}
	{
		/* repository 1 could not be opened */
		const catalog *cats[2] = {NULL, &c2};
		const wal_inventory *invs[2] = {NULL, &i2};

		t = kind_target(TARGET_LATEST, NULL);
		ch = choose(cats, invs, 2, NULL, &t);
		assert_int_equal(ch.rc, 0);
		assert_int_equal(ch.pos, 1);
		assert_string_equal(ch.b->label, LABEL_B2);
		free(ch.why);

		t = time_target(T_2026_11_21_040000);
		ch = choose(cats, invs, 2, NULL, &t);
		assert_int_equal(ch.rc, -1);
		assert_msg_has("repository 1 could not be read",
					   "the recoverable window of repository 2 is");
	}
	{
		/* nothing restorable anywhere */
		catalog		none;
		const catalog *cats[3] = {NULL, &c1, &none};
		const wal_inventory *invs[3] = {NULL, &empty, &i1};

		catalog_init(&none, "main");
		t = kind_target(TARGET_LATEST, NULL);
		ch = choose(cats, invs, 3, NULL, &t);
		assert_int_equal(ch.rc, -1);
		assert_int_equal(err_kind(), DRB_ERR_NOT_FOUND);
		assert_msg_has("no backup can be restored", "repository 1 could not be read",
					   "repository 2 has no backup whose WAL is all archived (backup "
					   "20261122-010000F lacks WAL segment 000000010000000000000009)",
					   "repository 3 has no backup");
		catalog_free(&none);
	}

	wal_inventory_free(&i1);
	wal_inventory_free(&i2);
	catalog_free(&c1);
	catalog_free(&c2);
}

/* ---------------------------------------------------------------------------------------
 * Recovery settings
 * ------------------------------------------------------------------------------------- */

static void
check_settings(const char *words_first, const char *words_second, const char *cmd,
			   const char *expected)
{
	config_t   *cfg = parse_restore(words_first, words_second, NULL);
	restore_target t;
	char	   *s;

	if (restore_target_parse(cfg, &t) != 0)
		fail_msg("target: %s", err_msg());
	s = restore_recovery_settings(&t, cmd);
	if (s == NULL)
		fail_msg("settings: %s", err_msg());
	assert_string_equal(s, expected);
	free(s);
	config_free(cfg);
}

static void
test_recovery_settings(void **state)
{
	const char *cmd = "/usr/bin/drbackup --config=/etc/drb.conf --stanza=main archive-get %f \"%p\"";
	const char *cmd_q = "restore_command = '/usr/bin/drbackup --config=/etc/drb.conf "
		"--stanza=main archive-get %f \"%p\"'\n";
	char	   *expected;
	restore_target t;

	(void) state;

	check_settings(NULL, NULL, cmd, cmd_q);

	expected = xasprintf("%srecovery_target_time = '2026-11-20 14:03:00.25+00'\n"
						 "recovery_target_inclusive = 'true'\n"
						 "recovery_target_action = 'promote'\n", cmd_q);
	check_settings("--to-time=2026-11-20 15:03:00.25+01", "--target-action=promote", cmd,
				   expected);
	free(expected);

	expected = xasprintf("%srecovery_target_lsn = '1A/B000060'\n"
						 "recovery_target_inclusive = 'false'\n"
						 "recovery_target_action = 'pause'\n", cmd_q);
	check_settings("--to-lsn=1a/b000060", "--target-exclusive", cmd, expected);
	free(expected);

	expected = xasprintf("%srecovery_target_xid = '4294967396'\n"
						 "recovery_target_inclusive = 'true'\n"
						 "recovery_target_action = 'pause'\n"
						 "recovery_target_timeline = 'latest'\n", cmd_q);
	check_settings("--to-xid=4294967396", "--target-timeline=latest", cmd, expected);
	free(expected);

	/* quotes doubled, backslashes doubled (the config lexer takes \ as an escape) */
	check_settings("--to-name=it's a \\ point", "--target-action=shutdown",
				   "cp '/arch ive/%f' \"%p\" # a\\b",
				   "restore_command = 'cp ''/arch ive/%f'' \"%p\" # a\\\\b'\n"
				   "recovery_target_name = 'it''s a \\\\ point'\n"
				   "recovery_target_action = 'shutdown'\n");

	expected = xasprintf("%srecovery_target = 'immediate'\n"
						 "recovery_target_action = 'pause'\n"
						 "recovery_target_timeline = '2'\n", cmd_q);
	check_settings("--immediate", "--target-timeline=2", cmd, expected);
	free(expected);

	/* a line break cannot be written into postgresql.auto.conf */
	t = kind_target(TARGET_LATEST, NULL);
	err_clear();
	assert_null(restore_recovery_settings(&t, "cp %f %p\nrecovery_target = 'immediate'"));
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_msg_has("restore_command", "line break");
}

static void
test_write_recovery(void **state)
{
	char	   *pgdata = make_dir("pgdata-recovery");
	char	   *auto_conf = xasprintf("%s/postgresql.auto.conf", pgdata);
	char	   *signal = xasprintf("%s/recovery.signal", pgdata);
	char	   *standby = xasprintf("%s/standby.signal", pgdata);
	char	   *tmp = xasprintf("%s/postgresql.auto.conf.drbtmp", pgdata);
	const char *old =
		"# Do not edit this file manually!\n"
		"# It will be overwritten by the ALTER SYSTEM command.\n"
		"work_mem = '64MB'\n"
		"restore_command = 'cp /old/%f \"%p\"'\n"
		"Recovery_Target_Time='2020-01-01 00:00:00+00'\n"
		"  recovery_target_action = 'promote'\n"
		"recovery_target\t'immediate'\n"
		"# recovery_target_xid = '5'\n"
		"recovery_targets_other = 'kept'\n"
		"primary_conninfo = 'host=x'";
	const char *settings = "restore_command = 'drbackup archive-get %f \"%p\"'\n"
		"recovery_target_time = '2026-11-20 14:03:00+00'\n";
	char	   *text;
	struct stat st;

	(void) state;
	write_bytes(auto_conf, old, strlen(old));
	assert_int_equal(chmod(auto_conf, 0640), 0);
	write_bytes(standby, "", 0);

	assert_int_equal(restore_write_recovery(pgdata, settings), 0);
	text = read_text(auto_conf);
	assert_string_equal(text,
						"# Do not edit this file manually!\n"
						"# It will be overwritten by the ALTER SYSTEM command.\n"
						"work_mem = '64MB'\n"
						"# removed by drbackup restore: restore_command = 'cp /old/%f \"%p\"'\n"
						"# removed by drbackup restore: Recovery_Target_Time='2020-01-01 00:00:00+00'\n"
						"# removed by drbackup restore:   recovery_target_action = 'promote'\n"
						"# removed by drbackup restore: recovery_target\t'immediate'\n"
						"# recovery_target_xid = '5'\n"
						"recovery_targets_other = 'kept'\n"
						"primary_conninfo = 'host=x'\n"
						"# recovery settings written by drbackup restore\n"
						"restore_command = 'drbackup archive-get %f \"%p\"'\n"
						"recovery_target_time = '2026-11-20 14:03:00+00'\n");
	free(text);
	assert_int_equal(stat(auto_conf, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(stat(signal, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(stat(standby, &st), 0);	/* left alone */
	assert_int_equal(access(tmp, F_OK), -1);

	/* a second restore over the first: the first one's settings are commented out too */
	assert_int_equal(restore_write_recovery(pgdata, "restore_command = 'second'\n"), 0);
	text = read_text(auto_conf);
	assert_non_null(strstr(text,
						   "# recovery settings written by drbackup restore\n"
						   "# removed by drbackup restore: restore_command = 'drbackup archive-get %f \"%p\"'\n"
						   "# removed by drbackup restore: recovery_target_time = '2026-11-20 14:03:00+00'\n"
						   "# recovery settings written by drbackup restore\n"
						   "restore_command = 'second'\n"));
	/* exactly one active restore_command */
	{
		int			active = 0;

		for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (strncmp(p, "restore_command", 15) == 0)
				active++;
		assert_int_equal(active, 1);
	}
	free(text);

	/* no postgresql.auto.conf yet: created with ALTER SYSTEM's header, mode 0600 */
	assert_int_equal(unlink(auto_conf), 0);
	assert_int_equal(unlink(signal), 0);
	assert_int_equal(restore_write_recovery(pgdata, settings), 0);
	text = read_text(auto_conf);
	assert_string_equal(text,
						"# Do not edit this file manually!\n"
						"# It will be overwritten by the ALTER SYSTEM command.\n"
						"# recovery settings written by drbackup restore\n"
						"restore_command = 'drbackup archive-get %f \"%p\"'\n"
						"recovery_target_time = '2026-11-20 14:03:00+00'\n");
	free(text);
	assert_int_equal(stat(auto_conf, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(access(signal, F_OK), 0);

	/* a data directory that does not exist */
	err_clear();
	{
		char	   *missing = xasprintf("%s/nope", pgdata);

		assert_int_equal(restore_write_recovery(missing, settings), -1);
		assert_int_equal(err_kind(), DRB_ERR_STORAGE);
		assert_msg_has("nope");
		free(missing);
	}

	test_rm_rf(pgdata);
	free(pgdata);
	free(auto_conf);
	free(signal);
	free(standby);
	free(tmp);
}

/* ---------------------------------------------------------------------------------------
 * pg_manifest
 * ------------------------------------------------------------------------------------- */

static void
test_pg_manifest_layout(void **state)
{
	char	   *dir = make_dir("pgm-layout");
	char	   *path = xasprintf("%s/backup_manifest", dir);
	pg_manifest *m;
	uint8_t		h1[32],
				h2[32],
				sum[32];
	char		hex1[65],
				hex2[65],
				hexsum[65];
	char	   *text,
			   *prefix,
			   *expected;

	(void) state;
	memset(h1, 0xab, sizeof(h1));
	memset(h2, 0x01, sizeof(h2));
	hex_encode(h1, 32, hex1);
	hex_encode(h2, 32, hex2);

	m = pg_manifest_open(dir);
	assert_non_null(m);
	assert_int_equal(pg_manifest_add(m, "base/1/112", 8192, T_2026_11_20_140300, h1), 0);
	assert_int_equal(pg_manifest_add(m, "a \"q\"\\b\t\x01" "caf\xc3\xa9", 3, 0, h2), 0);
	assert_int_equal(pg_manifest_add(m, "bad\xff", 0, 86399, h2), 0);
	assert_int_equal(pg_manifest_add(m, "sur\xed\xa0\x80", 1, 86400, h2), 0);
	assert_int_equal(pg_manifest_close(m, 2, UINT64_C(0x100000028), UINT64_C(0x1000A0100)), 0);

	prefix = xasprintf("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
					   "\"Files\": [\n"
					   "{ \"Path\": \"base/1/112\", \"Size\": 8192, \"Last-Modified\": \"2026-11-20 14:03:00 GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" },\n"
					   "{ \"Path\": \"a \\\"q\\\"\\\\b\\t\\u0001caf\xc3\xa9\", \"Size\": 3, \"Last-Modified\": \"1970-01-01 00:00:00 GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" },\n"
					   "{ \"Encoded-Path\": \"626164ff\", \"Size\": 0, \"Last-Modified\": \"1970-01-01 23:59:59 GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" },\n"
					   "{ \"Encoded-Path\": \"737572eda080\", \"Size\": 1, \"Last-Modified\": \"1970-01-02 00:00:00 GMT\", \"Checksum-Algorithm\": \"SHA256\", \"Checksum\": \"%s\" }\n"
					   "],\n"
					   "\"WAL-Ranges\": [\n"
					   "{ \"Timeline\": 2, \"Start-LSN\": \"1/28\", \"End-LSN\": \"1/A0100\" }\n"
					   "],\n", hex1, hex2, hex2, hex2);
	sha256_buf(prefix, strlen(prefix), sum);
	hex_encode(sum, 32, hexsum);
	expected = xasprintf("%s\"Manifest-Checksum\": \"%s\"}\n", prefix, hexsum);
	text = read_text(path);
	assert_non_null(text);
	assert_string_equal(text, expected);
	free(text);
	free(expected);
	free(prefix);

	/* no file at all */
	m = pg_manifest_open(dir);
	assert_non_null(m);
	assert_int_equal(pg_manifest_close(m, 1, 0x2000028, 0x2000100), 0);
	text = read_text(path);
	assert_non_null(strstr(text, "\"Files\": [\n],\n\"WAL-Ranges\": [\n"));
	free(text);

	/* abort: the temporary file goes, the manifest there stays as it was */
	text = read_text(path);
	m = pg_manifest_open(dir);
	assert_non_null(m);
	assert_int_equal(pg_manifest_add(m, "x", 1, 0, h1), 0);
	pg_manifest_abort(m);
	{
		char	   *tmp = xasprintf("%s/backup_manifest.drbtmp", dir);
		char	   *after = read_text(path);

		assert_int_equal(access(tmp, F_OK), -1);
		assert_string_equal(after, text);
		free(after);
		free(tmp);
	}
	free(text);

	/* a directory that does not exist */
	err_clear();
	{
		char	   *missing = xasprintf("%s/nope", dir);

		assert_null(pg_manifest_open(missing));
		assert_int_equal(err_kind(), DRB_ERR_STORAGE);
		assert_msg_has("backup_manifest.drbtmp");
		free(missing);
	}

	test_rm_rf(dir);
	free(dir);
	free(path);
}

typedef struct fixture_file
{
	char	   *rel;			/* path relative to the data directory */
	uint64_t	size;
	int64_t		mtime;
	uint8_t		sha256[32];
} fixture_file;

/* Write a fixture file with len pseudo-random bytes; records its size, mtime, checksum. */
static void
fixture_write(const char *pgdata, const char *rel, size_t len, unsigned seed, fixture_file *out)
{
	char	   *path = xasprintf("%s/%s", pgdata, rel);
	uint8_t    *data = xmalloc(len ? len : 1);
	struct stat st;

	for (size_t i = 0; i < len; i++)
	{
		seed = seed * 1103515245u + 12345u;
		data[i] = (uint8_t) (seed >> 16);
	}
	write_bytes(path, data, len);
	assert_int_equal(stat(path, &st), 0);
	out->rel = xstrdup(rel);
	out->size = (uint64_t) st.st_size;
	out->mtime = st.st_mtime;
	sha256_buf(data, len, out->sha256);
	free(data);
	free(path);
}

typedef struct add_job
{
	pg_manifest *m;
	fixture_file *files;
	size_t		from,
				to;
	int			rc;
} add_job;

static void *
add_thread(void *arg)
{
	add_job    *j = arg;

	j->rc = 0;
	for (size_t i = j->from; i < j->to; i++)
		j->rc |= pg_manifest_add(j->m, j->files[i].rel, j->files[i].size, j->files[i].mtime,
								 j->files[i].sha256);
	return NULL;
}

/* Run pg_verifybackup -n on dir; its exit status, and its output in *out (caller frees). */
static int
verifybackup(const char *dir, char **out)
{
	char	   *log = xasprintf("%s.verify.log", dir);
	char	   *cmd = xasprintf("'%s' -n '%s' >'%s' 2>&1", PG_VERIFYBACKUP, dir, log);
	int			status = system(cmd);

	*out = read_text(log);
	unlink(log);
	free(cmd);
	free(log);
	if (status == -1 || !WIFEXITED(status))
		fail_msg("pg_verifybackup did not run: status %d", status);
	return WEXITSTATUS(status);
}

/* Many threads adding at once: every line whole, each path once, the checksum right. */
static void
test_pg_manifest_threads(void **state)
{
	enum
	{
		NTHREADS = 8, PER_THREAD = 5000
	};
	char	   *dir = make_dir("pgm-threads");
	char	   *path = xasprintf("%s/backup_manifest", dir);
	fixture_file *files = xcalloc(NTHREADS * PER_THREAD, sizeof(*files));
	add_job		jobs[NTHREADS];
	pthread_t	threads[NTHREADS];
	pg_manifest *m;
	char	   *text,
			   *mark;
	uint8_t		sum[32];
	char		hexsum[65];
	size_t		lines = 0;
	uint8_t    *seen = xcalloc(NTHREADS * PER_THREAD, 1);

	(void) state;
	for (size_t i = 0; i < NTHREADS * PER_THREAD; i++)
	{
		files[i].rel = xasprintf("base/1/%zu", 100000 + i);
		files[i].size = i;
		files[i].mtime = (int64_t) i;
		memset(files[i].sha256, (int) (i & 0xff), 32);
	}
	m = pg_manifest_open(dir);
	assert_non_null(m);
	for (int i = 0; i < NTHREADS; i++)
	{
		jobs[i].m = m;
		jobs[i].files = files;
		jobs[i].from = (size_t) i * PER_THREAD;
		jobs[i].to = (size_t) (i + 1) * PER_THREAD;
		assert_int_equal(pthread_create(&threads[i], NULL, add_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
	{
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
	}
	assert_int_equal(pg_manifest_close(m, 1, 0x2000028, 0x2000100), 0);

	text = read_text(path);
	assert_non_null(text);
	for (char *line = strstr(text, "\"Files\": [\n") + 11; strncmp(line, "{ \"Path", 7) == 0;
		 line = strchr(line, '\n') + 1)
	{
		size_t		n;
		uint64_t	size;
		char		hex[65];

		if (sscanf(line, "{ \"Path\": \"base/1/%zu\", \"Size\": %" SCNu64, &n, &size) != 2)
			fail_msg("damaged line: %.200s", line);
		n -= 100000;
		assert_true(n < NTHREADS * PER_THREAD);
		assert_true(size == n);
		assert_int_equal(seen[n], 0);
		seen[n] = 1;
		hex_encode(files[n].sha256, 32, hex);
		assert_non_null(strstr(line, hex));
		lines++;
	}
	assert_int_equal(lines, NTHREADS * PER_THREAD);
	mark = strstr(text, "\"Manifest-Checksum\": \"");
	assert_non_null(mark);
	sha256_buf(text, (size_t) (mark - text), sum);
	hex_encode(sum, 32, hexsum);
	assert_memory_equal(mark + 22, hexsum, 64);

	free(text);
	for (size_t i = 0; i < NTHREADS * PER_THREAD; i++)
		free(files[i].rel);
	free(files);
	free(seen);
	test_rm_rf(dir);
	free(dir);
	free(path);
}

static void
test_pg_manifest_verifybackup(void **state)
{
	char	   *pgdata = make_dir("pgm-pgdata");
	char	   *tsdir = make_dir("pgm-tablespace");
	char	   *path;
	fixture_file files[1100];
	size_t		nfiles = 0;
	pg_manifest *m;
	add_job		jobs[4];
	pthread_t	threads[4];
	char	   *out;
	int			rc;
	const char *label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
		"CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n"
		"START TIME: 2026-11-21 08:33:21 UTC\nLABEL: drbackup test\nSTART TIMELINE: 1\n";

	(void) state;
	if (access(PG_VERIFYBACKUP, X_OK) != 0)
		fail_msg("%s is needed for this test (PostgreSQL 15's pg_verifybackup)", PG_VERIFYBACKUP);

	/* a small data directory: files, an escaped and a non-UTF-8 name, a tablespace link */
	path = xasprintf("%s/base", pgdata);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/base/5", pgdata);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/global", pgdata);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/pg_tblspc", pgdata);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/pg_tblspc/16385", pgdata);
	assert_int_equal(symlink(tsdir, path), 0);
	free(path);
	path = xasprintf("%s/PG_15_202209061", tsdir);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);
	path = xasprintf("%s/PG_15_202209061/5", tsdir);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);

	fixture_write(pgdata, "PG_VERSION", 3, 1, &files[nfiles++]);
	write_bytes(path = xasprintf("%s/backup_label", pgdata), label, strlen(label));
	free(path);
	{
		fixture_file *f = &files[nfiles++];
		struct stat st;

		path = xasprintf("%s/backup_label", pgdata);
		assert_int_equal(stat(path, &st), 0);
		free(path);
		f->rel = xstrdup("backup_label");
		f->size = strlen(label);
		f->mtime = st.st_mtime;
		sha256_buf(label, strlen(label), f->sha256);
	}
	fixture_write(pgdata, "global/pg_control", 8192, 2, &files[nfiles++]);
	fixture_write(pgdata, "base/5/1259", 3 * 8192, 3, &files[nfiles++]);
	fixture_write(pgdata, "base/5/empty", 0, 4, &files[nfiles++]);
	fixture_write(pgdata, "base/5/it's \"quoted\" \\ caf\xc3\xa9", 100, 5, &files[nfiles++]);
	fixture_write(pgdata, "base/5/latin1-\xe9t\xe9", 10, 6, &files[nfiles++]);
	fixture_write(pgdata, "pg_tblspc/16385/PG_15_202209061/5/16386", 8192, 7,
				  &files[nfiles++]);
	for (int i = 0; i < 1000; i++)
	{
		char		rel[64];

		snprintf(rel, sizeof(rel), "base/5/%d", 20000 + i);
		fixture_write(pgdata, rel, (size_t) (i % 7) * 100, 100 + (unsigned) i, &files[nfiles++]);
	}
	/* files pg_verifybackup ignores need not be listed */
	write_bytes(path = xasprintf("%s/postgresql.auto.conf", pgdata), "x = 1\n", 6);
	free(path);
	write_bytes(path = xasprintf("%s/recovery.signal", pgdata), "", 0);
	free(path);
	path = xasprintf("%s/pg_wal", pgdata);
	assert_int_equal(mkdir(path, 0700), 0);
	free(path);

	/* added from four threads at once, in no particular order */
	m = pg_manifest_open(pgdata);
	assert_non_null(m);
	for (int i = 0; i < 4; i++)
	{
		jobs[i].m = m;
		jobs[i].files = files;
		jobs[i].from = nfiles * (size_t) i / 4;
		jobs[i].to = nfiles * (size_t) (i + 1) / 4;
		assert_int_equal(pthread_create(&threads[i], NULL, add_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_int_equal(jobs[i].rc, 0);
	}
	assert_int_equal(pg_manifest_close(m, 1, 0x2000028, 0x2000100), 0);

	rc = verifybackup(pgdata, &out);
	if (rc != 0)
		fail_msg("pg_verifybackup rejected the manifest (exit %d): %s", rc, out);
	assert_non_null(strstr(out, "backup successfully verified"));
	free(out);

	/* a byte flipped in a file (same size): the checksum no longer matches */
	path = xasprintf("%s/base/5/1259", pgdata);
	{
		int			fd = open(path, O_RDWR);
		uint8_t		byte;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &byte, 1, 4000), 1);
		byte ^= 0x40;
		assert_int_equal(pwrite(fd, &byte, 1, 4000), 1);
		close(fd);
	}
	free(path);
	rc = verifybackup(pgdata, &out);
	assert_int_not_equal(rc, 0);
	if (strstr(out, "base/5/1259") == NULL || strstr(out, "checksum mismatch") == NULL)
		fail_msg("unexpected pg_verifybackup output: %s", out);
	free(out);

	/* a byte flipped in the manifest itself: its checksum no longer matches */
	path = xasprintf("%s/base/5/1259", pgdata);
	{
		int			fd = open(path, O_RDWR);
		uint8_t		byte;

		assert_int_equal(pread(fd, &byte, 1, 4000), 1);
		byte ^= 0x40;			/* restore the file */
		assert_int_equal(pwrite(fd, &byte, 1, 4000), 1);
		close(fd);
	}
	free(path);
	rc = verifybackup(pgdata, &out);
	assert_int_equal(rc, 0);
	free(out);
	path = xasprintf("%s/backup_manifest", pgdata);
	{
		char	   *text = read_text(path);
		char	   *p = strstr(text, "\"Size\": 8192");

		assert_non_null(p);
		p[9] = '3';				/* 8192 -> 8193 */
		write_bytes(path, text, strlen(text));
		free(text);
	}
	free(path);
	rc = verifybackup(pgdata, &out);
	assert_int_not_equal(rc, 0);
	if (strstr(out, "manifest checksum mismatch") == NULL)
		fail_msg("unexpected pg_verifybackup output: %s", out);
	free(out);

	for (size_t i = 0; i < nfiles; i++)
		free(files[i].rel);
	test_rm_rf(pgdata);
	test_rm_rf(tsdir);
	free(pgdata);
	free(tsdir);
}

/* ---------------------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------------------- */

static int
group_setup(void **state)
{
	(void) state;
	clear_drbackup_env();
	strcpy(tmpdir, "/tmp/drb-restore-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	conf_path = xasprintf("%s/empty.conf", tmpdir);
	{
		int			fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0)
			return -1;
		close(fd);
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	test_rm_rf(tmpdir);
	free(conf_path);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target_kinds),
		cmocka_unit_test(test_target_conflicts_and_bad_values),
		cmocka_unit_test(test_time_parsing),
		cmocka_unit_test(test_choose_one_repository),
		cmocka_unit_test(test_choose_set),
		cmocka_unit_test(test_choose_later_timeline),
		cmocka_unit_test(test_choose_gap),
		cmocka_unit_test(test_pg_manifest_threads),
		cmocka_unit_test(test_choose_several_repositories),
		cmocka_unit_test(test_recovery_settings),
		cmocka_unit_test(test_write_recovery),
		cmocka_unit_test(test_pg_manifest_layout),
		cmocka_unit_test(test_pg_manifest_verifybackup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
