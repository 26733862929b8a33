/*
 * test_expire.c — retention planning (expire.c) and the WAL inventory (wal_inventory.c).
 *
 * expire_plan, on catalogs and inventories built in memory: full retention by count (four
 * fulls with diffs and incrs) and by time (backdated stop times, the boundary, the base
 * full older than the window), diff retention, dependents (incr chains, references),
 * the newest backup never removed (odd catalogs: a newest incr of an older full, orphans,
 * retention 1), no retention set, and the WAL rule: exactly the segments, .partial and
 * .backup files before the oldest retained backup's start segment on its timeline and
 * earlier ones, history kept, log rollover, nothing without a retained backup or with an
 * unusable start segment.
 * wal_inventory_load, on a posix repository holding objects named like the archive's:
 * ranges per timeline with gaps, other kinds, names that are not ours, the last segment's
 * mtime, segment size (1 GiB rollover), has / has_range, and a WAL name stored twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "test_util.h"
#include "archive.h"
#include "error.h"
#include "expire.h"
#include "mem.h"
#include "storage_posix.h"
#include "wal_inventory.h"

#define MIB			(1024u * 1024u)
#define DAY			INT64_C(86400)
#define NOW			INT64_C(1795000000)		/* a fixed "now" (2026-11-18) */
#define SYSID		UINT64_C(7301234567890123456)

/* ---------------------------------------------------------------------------------------
 * Catalogs and inventories in memory
 * ------------------------------------------------------------------------------------- */

static const catalog_backup *
cat_get(const catalog *c, const char *label)
{
	for (size_t i = 0; i < c->nbackups; i++)
		if (strcmp(c->backups[i].label, label) == 0)
			return &c->backups[i];
	return NULL;
}

/*
 * Append a record (the catalog keeps label order: tests add in that order). references
 * are the parent's plus the label itself, as catalog_backup_from_header makes them.
 */
static void
cat_push(catalog *c, const char *label, backup_type type, const char *parent,
		 int64_t stop_time, const char *wal_start)
{
	catalog_backup *b;
	const catalog_backup *p;
	long		pi = -1;

	if (parent && cat_get(c, parent))
		pi = cat_get(c, parent) - c->backups;
	c->backups = xrealloc(c->backups, (c->nbackups + 1) * sizeof(*c->backups));
	p = pi >= 0 ? &c->backups[pi] : NULL;	/* after the move */
	b = &c->backups[c->nbackups++];
	memset(b, 0, sizeof(*b));
	b->label = xstrdup(label);
	b->type = type;
	b->parent = parent ? xstrdup(parent) : NULL;
	b->nreferences = (p ? p->nreferences : 0) + 1;
	b->references = xcalloc(b->nreferences, sizeof(char *));
	for (size_t i = 0; p && i < p->nreferences; i++)
		b->references[i] = xstrdup(p->references[i]);
	b->references[b->nreferences - 1] = xstrdup(label);
	b->start_time = stop_time - 60;
	b->stop_time = stop_time;
	b->timeline = 1;
	snprintf(b->wal_start, sizeof(b->wal_start), "%s", wal_start);
	snprintf(b->wal_stop, sizeof(b->wal_stop), "%s", wal_start);
	b->wal_segment_size = 16 * MIB;
}

static void
cat_clear(catalog *c)
{
	for (size_t i = 0; i < c->nbackups; i++)
	{
		catalog_backup *b = &c->backups[i];

		free(b->label);
		free(b->parent);
		for (size_t r = 0; r < b->nreferences; r++)
			free(b->references[r]);
		free(b->references);
	}
	free(c->backups);
	memset(c, 0, sizeof(*c));
}

/* Inventory entries by name; path = name so a plan's WAL list reads back easily. */
static void
inv_push(wal_inventory *inv, const char *name)
{
	wal_object *o;
	wal_name	w;

	if (wal_name_parse(name, &w) != 0)
		fail_msg("bad test WAL name %s: %s", name, err_msg());
	if (w.kind == WAL_SEGMENT)
	{
		inv->segments = xrealloc(inv->segments, (inv->nsegments + 1) * sizeof(wal_object));
		o = &inv->segments[inv->nsegments++];
	}
	else
	{
		inv->others = xrealloc(inv->others, (inv->nothers + 1) * sizeof(wal_object));
		o = &inv->others[inv->nothers++];
	}
	memset(o, 0, sizeof(*o));
	o->w = w;
	o->path = xstrdup(name);
}

/* Segments tli/log/seg from..to (16 MiB: seg below 0x100). */
static void
inv_push_run(wal_inventory *inv, uint32_t tli, uint32_t log, uint32_t from, uint32_t to)
{
	char		name[32];

	for (uint32_t s = from; s <= to; s++)
	{
		snprintf(name, sizeof(name), "%08X%08X%08X", tli, log, s);
		inv_push(inv, name);
	}
}

static void
inv_clear(wal_inventory *inv)
{
	for (size_t i = 0; i < inv->nsegments; i++)
		free(inv->segments[i].path);
	for (size_t i = 0; i < inv->nothers; i++)
		free(inv->others[i].path);
	free(inv->segments);
	free(inv->others);
	memset(inv, 0, sizeof(*inv));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The plan's labels equal the space-separated list (in catalog order). */
static void
assert_labels(const expire_plan_t *p, const char *expected)
{
	char	   *copy = xstrdup(expected);
	size_t		n = 0;

	for (char *tok = strtok(copy, " "); tok; tok = strtok(NULL, " "), n++)
	{
		if (n >= p->nbackups)
			fail_msg("plan has %zu backups, expected more: %s", p->nbackups, expected);
		assert_string_equal(p->backups[n], tok);
	}
	if (n != p->nbackups)
		fail_msg("plan has %zu backups, expected %zu (%s); extra: %s", p->nbackups, n, expected,
				 p->backups[n]);
	free(copy);
}

/* The plan's WAL objects equal the space-separated list (any order). */
static void
assert_wal(const expire_plan_t *p, const char *expected)
{
	char	   *copy = xstrdup(expected);
	char	  **want = NULL;
	char	  **got = xcalloc(p->nwal + 1, sizeof(char *));
	size_t		n = 0;

	for (char *tok = strtok(copy, " "); tok; tok = strtok(NULL, " "))
	{
		want = xrealloc(want, (n + 1) * sizeof(char *));
		want[n++] = tok;
	}
	for (size_t i = 0; i < p->nwal; i++)
		got[i] = p->wal[i]->path;
	if (n != p->nwal)
	{
		for (size_t i = 0; i < p->nwal; i++)
			print_message("planned: %s\n", got[i]);
		fail_msg("plan removes %zu WAL files, expected %zu", p->nwal, n);
	}
	qsort(want, n, sizeof(char *), str_cmp);
	qsort(got, n, sizeof(char *), str_cmp);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(got[i], want[i]);
	free(want);
	free(got);
	free(copy);
}

/* ---------------------------------------------------------------------------------------
 * Full retention
 * ------------------------------------------------------------------------------------- */

#define F1	"20261101-010000F"
#define F2	"20261103-010000F"
#define F3	"20261105-010000F"
#define F4	"20261107-010000F"

/* Four fulls, each with dependents, as a nightly schedule leaves them. */
static void
four_fulls(catalog *c)
{
	memset(c, 0, sizeof(*c));
	cat_push(c, F1, BACKUP_FULL, NULL, NOW - 17 * DAY, "000000010000000000000002");
	cat_push(c, F1 "_20261102-010000D", BACKUP_DIFF, F1, NOW - 16 * DAY, "000000010000000000000004");
	cat_push(c, F1 "_20261102-130000I", BACKUP_INCR, F1 "_20261102-010000D", NOW - 15 * DAY,
			 "000000010000000000000005");
	cat_push(c, F2, BACKUP_FULL, NULL, NOW - 15 * DAY + 3600, "000000010000000000000007");
	cat_push(c, F2 "_20261104-010000I", BACKUP_INCR, F2, NOW - 14 * DAY, "000000010000000000000009");
	cat_push(c, F3, BACKUP_FULL, NULL, NOW - 13 * DAY, "00000001000000000000000B");
	cat_push(c, F3 "_20261106-010000D", BACKUP_DIFF, F3, NOW - 12 * DAY, "00000001000000000000000D");
	cat_push(c, F4, BACKUP_FULL, NULL, NOW - 11 * DAY, "00000001000000000000000F");
	cat_push(c, F4 "_20261108-010000I", BACKUP_INCR, F4, NOW - 10 * DAY, "000000010000000000000011");
}

static void
test_count_retention(void **state)
{
	catalog		c;
	expire_settings s = {.retention_full = 2};
	expire_plan_t p;

	(void) state;
	four_fulls(&c);
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_false(p.retention_unset);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I "
				  F2 " " F2 "_20261104-010000I");
	expire_plan_free(&p);

	s.retention_full = 3;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I");
	expire_plan_free(&p);

	s.retention_full = 4;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);

	/* retention 1: only the newest full and its incr stay */
	s.retention_full = 1;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I "
				  F2 " " F2 "_20261104-010000I " F3 " " F3 "_20261106-010000D");
	expire_plan_free(&p);
	cat_clear(&c);
}

static void
test_time_retention(void **state)
{
	catalog		c;
	expire_settings s = {.retention_full = 12, .retention_full_time = true};
	expire_plan_t p;

	(void) state;
	four_fulls(&c);

	/*
	 * 12 days: F4 (11 days) is inside; F3 (13 days) is the newest older one and stays as
	 * the window's base; F1 and F2 go with their dependents.
	 */
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I "
				  F2 " " F2 "_20261104-010000I");
	expire_plan_free(&p);

	/* 14 days: F3 and F4 inside, F2 (15 days less an hour) is the base */
	s.retention_full = 14;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I");
	expire_plan_free(&p);

	/* a full that stopped exactly retention days ago is outside the window */
	s.retention_full = 13;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I "
				  F2 " " F2 "_20261104-010000I");
	expire_plan_free(&p);
	assert_int_equal(expire_plan(&c, NULL, &s, NOW - 1, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I");
	expire_plan_free(&p);

	/* every full older than the window: the newest of them stays with its dependents */
	s.retention_full = 1;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261102-010000D " F1 "_20261102-130000I "
				  F2 " " F2 "_20261104-010000I " F3 " " F3 "_20261106-010000D");
	expire_plan_free(&p);

	/* a long window keeps everything */
	s.retention_full = 30;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);
	cat_clear(&c);
}

/* ---------------------------------------------------------------------------------------
 * Differential retention and dependents
 * ------------------------------------------------------------------------------------- */

#define D1	F1 "_20261102-010000D"
#define D2	F1 "_20261103-010000D"
#define D3	F1 "_20261104-010000D"

static void
test_diff_retention(void **state)
{
	catalog		c = {0};
	expire_settings s = {.retention_full = 1, .retention_diff = 1};
	expire_plan_t p;

	(void) state;
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 5 * DAY, "000000010000000000000002");
	cat_push(&c, D1, BACKUP_DIFF, F1, NOW - 4 * DAY, "000000010000000000000004");
	cat_push(&c, F1 "_20261102-120000I", BACKUP_INCR, D1, NOW - 4 * DAY + 3600,
			 "000000010000000000000005");
	cat_push(&c, D2, BACKUP_DIFF, F1, NOW - 3 * DAY, "000000010000000000000006");
	cat_push(&c, D3, BACKUP_DIFF, F1, NOW - 2 * DAY, "000000010000000000000008");
	cat_push(&c, F1 "_20261104-120000I", BACKUP_INCR, D3, NOW - 2 * DAY + 3600,
			 "000000010000000000000009");

	/* one diff stays: the newest, with its incr; the others go with theirs */
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, D1 " " F1 "_20261102-120000I " D2);
	expire_plan_free(&p);

	s.retention_diff = 2;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, D1 " " F1 "_20261102-120000I");
	expire_plan_free(&p);

	/* unset: every diff of a retained full stays */
	s.retention_diff = 0;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);
	cat_clear(&c);
}

static void
test_dependents(void **state)
{
	catalog		c = {0};
	expire_settings s = {.retention_full = 1};
	expire_plan_t p;

	(void) state;
	/* a chain of incrs on incrs goes with its full */
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 5 * DAY, "000000010000000000000002");
	cat_push(&c, F1 "_20261101-020000I", BACKUP_INCR, F1, NOW - 5 * DAY + 3600,
			 "000000010000000000000003");
	cat_push(&c, F1 "_20261101-030000I", BACKUP_INCR, F1 "_20261101-020000I",
			 NOW - 5 * DAY + 7200, "000000010000000000000004");
	cat_push(&c, F1 "_20261101-040000I", BACKUP_INCR, F1 "_20261101-030000I",
			 NOW - 5 * DAY + 10800, "000000010000000000000005");
	cat_push(&c, F2, BACKUP_FULL, NULL, NOW - 3 * DAY, "000000010000000000000007");
	cat_push(&c, F2 "_20261103-020000D", BACKUP_DIFF, F2, NOW - 3 * DAY + 3600,
			 "000000010000000000000008");
	cat_push(&c, F2 "_20261103-030000I", BACKUP_INCR, F2, NOW - 3 * DAY + 7200,
			 "000000010000000000000009");
	cat_push(&c, F3, BACKUP_FULL, NULL, NOW - 1 * DAY, "00000001000000000000000B");

	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261101-020000I " F1 "_20261101-030000I "
				  F1 "_20261101-040000I " F2 " " F2 "_20261103-020000D " F2 "_20261103-030000I");
	expire_plan_free(&p);

	/*
	 * F2 kept, its diff expired by diff retention (F3's diff is newer), and F2's incr,
	 * whose parent is the full, refers to objects of that diff: the incr goes too, since
	 * its bytes would be gone.
	 */
	s.retention_full = 2;
	s.retention_diff = 1;
	{
		catalog_backup *i = &c.backups[6];

		i->references = xrealloc(i->references, 3 * sizeof(char *));
		i->references[2] = i->references[1];
		i->references[1] = xstrdup(F2 "_20261103-020000D");
		i->nreferences = 3;
	}
	cat_push(&c, F3 "_20261105-020000D", BACKUP_DIFF, F3, NOW - 1 * DAY + 3600,
			 "00000001000000000000000C");
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, F1 " " F1 "_20261101-020000I " F1 "_20261101-030000I "
				  F1 "_20261101-040000I " F2 "_20261103-020000D " F2 "_20261103-030000I");
	expire_plan_free(&p);
	cat_clear(&c);
}

/* ---------------------------------------------------------------------------------------
 * The newest backup, and no retention
 * ------------------------------------------------------------------------------------- */

static void
test_newest_never_removed(void **state)
{
	catalog		c = {0};
	expire_settings s = {.retention_full = 1};
	expire_plan_t p;

	(void) state;
	/* a lone full with retention 1 */
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 40 * DAY, "000000010000000000000002");
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);

	/*
	 * Odd catalog: F1's incr stopped after F2 (a clock step, a hand-edited catalog). It is
	 * the newest complete backup, so it stays, and so does F1 it needs.
	 */
	cat_push(&c, F1 "_20261102-010000I", BACKUP_INCR, F1, NOW - 1 * DAY, "000000010000000000000005");
	cat_push(&c, F2, BACKUP_FULL, NULL, NOW - 2 * DAY, "000000010000000000000004");
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);

	/* time retention cannot take it either */
	s.retention_full_time = true;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);
	cat_clear(&c);

	/* no full at all (lost): orphan incrs are left alone, the newest kept */
	cat_push(&c, F1 "_20261102-010000I", BACKUP_INCR, F1, NOW - 2 * DAY, "000000010000000000000005");
	cat_push(&c, F1 "_20261103-010000I", BACKUP_INCR, F1 "_20261102-010000I", NOW - 1 * DAY,
			 "000000010000000000000006");
	s.retention_full_time = false;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");
	expire_plan_free(&p);

	/* diff retention cannot remove the newest diff's chain */
	cat_clear(&c);
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 5 * DAY, "000000010000000000000002");
	cat_push(&c, D1, BACKUP_DIFF, F1, NOW - 1 * DAY, "000000010000000000000004");
	cat_push(&c, D2, BACKUP_DIFF, F1, NOW - 2 * DAY, "000000010000000000000006");
	s.retention_diff = 1;
	assert_int_equal(expire_plan(&c, NULL, &s, NOW, &p), 0);
	assert_labels(&p, "");		/* D1 is pinned as newest (stopped last); D2 is the one kept */
	expire_plan_free(&p);
	cat_clear(&c);
}

static void
test_retention_unset(void **state)
{
	catalog		c;
	wal_inventory inv = {.seg_size = 16 * MIB};
	expire_settings s = {0};
	expire_plan_t p;

	(void) state;
	four_fulls(&c);
	inv_push_run(&inv, 1, 0, 1, 0x12);
	s.retention_diff = 1;		/* diff retention alone expires nothing */
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_true(p.retention_unset);
	assert_labels(&p, "");
	assert_int_equal(p.nwal, 0);
	assert_null(p.wal_keep_from);
	expire_plan_free(&p);
	inv_clear(&inv);
	cat_clear(&c);

	/* an empty catalog with retention: nothing, and no WAL either */
	memset(&c, 0, sizeof(c));
	inv.seg_size = 16 * MIB;
	inv_push_run(&inv, 1, 0, 1, 4);
	s.retention_full = 2;
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_false(p.retention_unset);
	assert_int_equal(p.nbackups, 0);
	assert_int_equal(p.nwal, 0);
	assert_null(p.wal_keep_from);
	expire_plan_free(&p);
	inv_clear(&inv);
}

/* ---------------------------------------------------------------------------------------
 * WAL
 * ------------------------------------------------------------------------------------- */

/*
 * Timeline 1 ran to segment 8 (ending in 8.partial) when timeline 2 was promoted;
 * timeline 2 holds 8..0x14. .backup files of each backup, one history file, and a stray
 * timeline 3 segment early on.
 */
static void
timeline_archive(wal_inventory *inv)
{
	memset(inv, 0, sizeof(*inv));
	inv->seg_size = 16 * MIB;
	inv_push_run(inv, 1, 0, 1, 7);
	inv_push(inv, "000000010000000000000008.partial");
	inv_push(inv, "000000010000000000000002.00000028.backup");
	inv_push(inv, "000000010000000000000003.00000028.backup");
	inv_push_run(inv, 2, 0, 8, 0x14);
	inv_push(inv, "00000002.history");
	inv_push(inv, "00000002000000000000000C.00000028.backup");
	inv_push(inv, "000000020000000000000012.00000060.backup");
	inv_push(inv, "000000030000000000000005");
}

static void
test_wal_removal(void **state)
{
	catalog		c = {0};
	wal_inventory inv;
	expire_settings s = {.retention_full = 2};
	expire_plan_t p;

	(void) state;
	timeline_archive(&inv);
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 5 * DAY, "000000010000000000000003");
	cat_push(&c, F2, BACKUP_FULL, NULL, NOW - 3 * DAY, "00000002000000000000000C");
	c.backups[1].timeline = 2;
	cat_push(&c, F3, BACKUP_FULL, NULL, NOW - 1 * DAY, "000000020000000000000012");
	c.backups[2].timeline = 2;

	/* F1 goes: everything before F2's start on timelines 1 and 2 goes, history stays */
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_labels(&p, F1);
	assert_string_equal(p.wal_keep_from, "00000002000000000000000C");
	assert_wal(&p, "000000010000000000000001 000000010000000000000002 000000010000000000000003 "
			   "000000010000000000000004 000000010000000000000005 000000010000000000000006 "
			   "000000010000000000000007 000000010000000000000008.partial "
			   "000000010000000000000002.00000028.backup 000000010000000000000003.00000028.backup "
			   "000000020000000000000008 000000020000000000000009 00000002000000000000000A "
			   "00000002000000000000000B");
	expire_plan_free(&p);

	/* everything retained: only what precedes F1's start on timeline 1 goes */
	s.retention_full = 3;
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_labels(&p, "");
	assert_string_equal(p.wal_keep_from, "000000010000000000000003");
	assert_wal(&p, "000000010000000000000001 000000010000000000000002 "
			   "000000010000000000000002.00000028.backup");
	expire_plan_free(&p);

	/* a retained backup whose start segment is unusable: no WAL can be proved unneeded */
	s.retention_full = 2;
	snprintf(c.backups[1].wal_start, sizeof(c.backups[1].wal_start), "%s", "");
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_labels(&p, F1);
	assert_int_equal(p.nwal, 0);
	assert_null(p.wal_keep_from);
	expire_plan_free(&p);

	inv_clear(&inv);
	cat_clear(&c);
}

/* With 16 MiB segments, ...00FF is followed by 00000001 00000000. */
static void
test_wal_removal_rollover(void **state)
{
	catalog		c = {0};
	wal_inventory inv = {.seg_size = 16 * MIB};
	expire_settings s = {.retention_full = 1};
	expire_plan_t p;

	(void) state;
	inv_push_run(&inv, 1, 0, 0xFD, 0xFF);
	inv_push_run(&inv, 1, 1, 0, 2);
	cat_push(&c, F1, BACKUP_FULL, NULL, NOW - 2 * DAY, "0000000100000000000000FE");
	cat_push(&c, F2, BACKUP_FULL, NULL, NOW - 1 * DAY, "000000010000000100000001");
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_labels(&p, F1);
	assert_string_equal(p.wal_keep_from, "000000010000000100000001");
	assert_wal(&p, "0000000100000000000000FD 0000000100000000000000FE 0000000100000000000000FF "
			   "000000010000000100000000");
	expire_plan_free(&p);

	/* 1 GiB segments: 4 per log; ...0003 is the last of log 0 */
	inv_clear(&inv);
	inv.seg_size = 1024 * MIB;
	inv_push_run(&inv, 1, 0, 2, 3);
	inv_push_run(&inv, 1, 1, 0, 1);
	snprintf(c.backups[1].wal_start, sizeof(c.backups[1].wal_start), "000000010000000100000000");
	assert_int_equal(expire_plan(&c, &inv, &s, NOW, &p), 0);
	assert_wal(&p, "000000010000000000000002 000000010000000000000003");
	expire_plan_free(&p);
	inv_clear(&inv);
	cat_clear(&c);
}

/* ---------------------------------------------------------------------------------------
 * Inventory on a posix repository
 * ------------------------------------------------------------------------------------- */

typedef struct fixture
{
	char		tmp[64];
	archive_repo r;
	char	   *prefix;			/* "stanza/main/archive/15-<sysid>/" */
} fixture;

static int
setup(void **state)
{
	fixture    *f = xcalloc(1, sizeof(*f));
	repo_settings s = {0};
	char	   *root;

	strcpy(f->tmp, "/tmp/drb-expire-XXXXXX");
	if (mkdtemp(f->tmp) == NULL)
		return -1;
	root = xasprintf("%s/repo", f->tmp);
	s.index = 1;
	s.storage = storage_posix_new(root);
	s.cipher = CIPHER_NONE;
	s.compress = COMPRESS_NONE;
	if (repo_create(&s) != 0)
		return -1;
	f->r.repo = repo_open(&s);
	free(root);
	if (f->r.repo == NULL)
		return -1;
	f->r.index = 1;
	snprintf(f->r.stanza.name, sizeof(f->r.stanza.name), "main");
	f->r.stanza.system_id = SYSID;
	f->r.stanza.pg_version = 15;
	f->prefix = xasprintf("stanza/main/archive/15-%" PRIu64 "/", SYSID);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture    *f = *state;

	repo_close(f->r.repo);
	test_rm_rf(f->tmp);
	free(f->prefix);
	free(f);
	return 0;
}

static const char SHA_A[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char SHA_B[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/* Store an object at prefix + rel (content does not matter to the inventory). */
static void
put_rel(fixture *f, const char *rel)
{
	char	   *path = xasprintf("%s%s", f->prefix, rel);

	if (storage_put_buf(repo_storage(f->r.repo), path, "x", 1) != 0)
		fail_msg("put %s: %s", path, err_msg());
	free(path);
}

/* Store an archived WAL file as archive-push names it. */
static void
put_wal(fixture *f, const char *name, const char *sha)
{
	char	   *rel;

	if (strstr(name, ".history"))
		rel = xasprintf("history/%s-%s", name, sha);
	else
		rel = xasprintf("%.16s/%s-%s", name, name, sha);
	put_rel(f, rel);
	free(rel);
}

static void
set_mtime(fixture *f, const char *name, const char *sha, int64_t when)
{
	char	   *path = xasprintf("%s/repo/%s%.16s/%s-%s", f->tmp, f->prefix, name, name, sha);
	struct timeval tv[2] = {{(time_t) when, 0}, {(time_t) when, 0}};

	assert_int_equal(utimes(path, tv), 0);
	free(path);
}

static void
assert_range(const wal_range *r, uint32_t tli, const char *first, const char *last,
			 uint64_t count)
{
	assert_int_equal(r->tli, tli);
	assert_string_equal(r->first, first);
	assert_string_equal(r->last, last);
	assert_int_equal(r->count, count);
}

static void
test_inventory_ranges(void **state)
{
	fixture    *f = *state;
	wal_inventory inv;
	char	   *missing;
	char	   *other;
	const char *segs[] = {
		"000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
		"000000010000000000000005", "000000010000000000000006", "00000001000000000000000A",
		"000000020000000000000005", "000000020000000000000006", "000000020000000000000007",
	};

	for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
		put_wal(f, segs[i], i % 2 ? SHA_A : SHA_B);
	set_mtime(f, "000000010000000000000003", SHA_B, NOW - 100);
	set_mtime(f, "000000020000000000000007", SHA_B, NOW - 7);
	put_wal(f, "000000010000000000000007.partial", SHA_A);
	put_wal(f, "000000010000000000000002.00000028.backup", SHA_A);
	put_wal(f, "00000002.history", SHA_A);
	/* not ours: ignored with a warning */
	put_rel(f, "README");
	put_rel(f, "0000000100000000/000000010000000000000004");		/* no checksum */
	put_rel(f, "0000000100000000/000000010000000000000004-ABCDEF");	/* short, upper case */
	put_rel(f, "0000000100000001/000000010000000000000004-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");	/* wrong directory */
	put_rel(f, "0000000100000000/junk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	/* another cluster's archive is not listed */
	other = xasprintf("stanza/main/archive/14-1/0000000100000000/000000010000000000000004-%s", SHA_A);
	assert_int_equal(storage_put_buf(repo_storage(f->r.repo), other, "x", 1), 0);
	free(other);

	assert_int_equal(wal_inventory_load(&f->r, 16 * MIB, &inv), 0);
	assert_string_equal(inv.archive_id, "15-7301234567890123456");
	assert_int_equal(inv.seg_size, 16 * MIB);
	assert_int_equal(inv.nsegments, 9);
	for (size_t i = 0; i < inv.nsegments; i++)
		assert_string_equal(inv.segments[i].w.name, segs[i]);		/* sorted */
	assert_int_equal(inv.segments[0].stored_size, 1);
	assert_memory_equal(inv.segments[1].sha256,
						"\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
	assert_non_null(strstr(inv.segments[1].path, "/0000000100000000/000000010000000000000002-"));

	assert_int_equal(inv.nothers, 3);
	assert_string_equal(inv.others[0].w.name, "000000010000000000000002.00000028.backup");
	assert_string_equal(inv.others[1].w.name, "000000010000000000000007.partial");
	assert_string_equal(inv.others[2].w.name, "00000002.history");
	assert_int_equal(inv.others[2].w.kind, WAL_HISTORY);

	assert_int_equal(inv.nranges, 4);
	assert_range(&inv.ranges[0], 1, "000000010000000000000001", "000000010000000000000003", 3);
	assert_int_equal(inv.ranges[0].last_mtime, NOW - 100);
	assert_range(&inv.ranges[1], 1, "000000010000000000000005", "000000010000000000000006", 2);
	assert_range(&inv.ranges[2], 1, "00000001000000000000000A", "00000001000000000000000A", 1);
	assert_range(&inv.ranges[3], 2, "000000020000000000000005", "000000020000000000000007", 3);
	assert_int_equal(inv.ranges[3].last_mtime, NOW - 7);

	assert_true(wal_inventory_has(&inv, "000000010000000000000005"));
	assert_true(wal_inventory_has(&inv, "00000001000000000000000A"));
	assert_false(wal_inventory_has(&inv, "000000010000000000000004"));
	assert_false(wal_inventory_has(&inv, "000000010000000000000007"));	/* only .partial */
	assert_false(wal_inventory_has(&inv, "000000030000000000000001"));

	assert_true(wal_inventory_has_range(&inv, "000000010000000000000001",
										"000000010000000000000003", &missing));
	assert_null(missing);
	assert_true(wal_inventory_has_range(&inv, "000000010000000000000006",
										"000000010000000000000006", NULL));
	assert_false(wal_inventory_has_range(&inv, "000000010000000000000002",
										 "000000010000000000000006", &missing));
	assert_string_equal(missing, "000000010000000000000004");
	free(missing);
	assert_false(wal_inventory_has_range(&inv, "000000010000000000000006",
										 "00000001000000000000000A", &missing));
	assert_string_equal(missing, "000000010000000000000007");
	free(missing);
	assert_false(wal_inventory_has_range(&inv, "000000000000000000000000",
										 "000000010000000000000001", &missing));
	free(missing);
	/* two timelines, or last before first: not a range */
	assert_false(wal_inventory_has_range(&inv, "000000010000000000000005",
										 "000000020000000000000006", &missing));
	assert_string_equal(missing, "000000010000000000000005");
	free(missing);
	assert_false(wal_inventory_has_range(&inv, "000000010000000000000003",
										 "000000010000000000000001", NULL));
	assert_false(wal_inventory_has_range(&inv, "00000003000000000000000A",
										 "00000003000000000000000B", &missing));
	assert_string_equal(missing, "00000003000000000000000A");
	free(missing);
	wal_inventory_free(&inv);
	assert_null(inv.segments);
}

/* The segment size decides which names follow each other. */
static void
test_inventory_segment_size(void **state)
{
	fixture    *f = *state;
	wal_inventory inv;
	wal_name	w;

	put_wal(f, "000000010000000000000003", SHA_A);
	put_wal(f, "000000010000000100000000", SHA_A);
	put_wal(f, "000000010000000100000001", SHA_A);

	assert_int_equal(wal_inventory_load(&f->r, 1024 * MIB, &inv), 0);
	assert_int_equal(inv.nranges, 1);
	assert_range(&inv.ranges[0], 1, "000000010000000000000003", "000000010000000100000001", 3);
	assert_true(wal_inventory_has_range(&inv, "000000010000000000000003",
										"000000010000000100000001", NULL));
	wal_inventory_free(&inv);

	assert_int_equal(wal_inventory_load(&f->r, 16 * MIB, &inv), 0);
	assert_int_equal(inv.nranges, 2);
	assert_range(&inv.ranges[1], 1, "000000010000000100000000", "000000010000000100000001", 2);
	wal_inventory_free(&inv);

	assert_int_equal(wal_name_parse("0000000100000002000000FF", &w), 0);
	assert_int_equal(wal_segment_position(&w, 16 * MIB), 2 * 256 + 255);
	assert_int_equal(wal_segment_position(&w, 1 * MIB), 2 * 4096 + 255);

	/* an empty archive, and a size that is not a power of two */
	test_rm_rf(f->tmp);
	assert_int_equal(wal_inventory_load(&f->r, 16 * MIB, &inv), 0);
	assert_int_equal(inv.nsegments, 0);
	assert_int_equal(inv.nranges, 0);
	wal_inventory_free(&inv);
	assert_int_equal(wal_inventory_load(&f->r, 3 * MIB, &inv), -1);
}

static void
test_inventory_twice(void **state)
{
	fixture    *f = *state;
	wal_inventory inv;

	put_wal(f, "000000010000000000000001", SHA_A);
	put_wal(f, "000000010000000000000002", SHA_A);
	put_wal(f, "000000010000000000000002", SHA_B);
	assert_int_equal(wal_inventory_load(&f->r, 16 * MIB, &inv), -1);
	assert_int_equal(err_kind(), DRB_ERR_INTEGRITY);
	assert_non_null(strstr(err_msg(), "000000010000000000000002-0123456789abcdef"));
	assert_non_null(strstr(err_msg(), "000000010000000000000002-fedcba9876543210"));
	assert_null(inv.segments);

	/* a repository that is not open reports why */
	{
		archive_repo closed = {.index = 2, .open_error = "repository 2 is unreachable",
		.open_kind = DRB_ERR_STORAGE};

		assert_int_equal(wal_inventory_load(&closed, 16 * MIB, &inv), -1);
		assert_int_equal(err_kind(), DRB_ERR_STORAGE);
		assert_string_equal(err_msg(), "repository 2 is unreachable");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_retention),
		cmocka_unit_test(test_time_retention),
		cmocka_unit_test(test_diff_retention),
		cmocka_unit_test(test_dependents),
		cmocka_unit_test(test_newest_never_removed),
		cmocka_unit_test(test_retention_unset),
		cmocka_unit_test(test_wal_removal),
		cmocka_unit_test(test_wal_removal_rollover),
		cmocka_unit_test_setup_teardown(test_inventory_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_segment_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inventory_twice, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
