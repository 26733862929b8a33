/*
 * expire.c — retention: the plan (expire_plan, pure) and the expire command.
 *
 *   drbackup --stanza=S expire [--dry-run] [--repo=N]
 *
 * Per selected repository, under the stanza's backup lock: read the catalog, list the WAL
 * archive, plan with that repository's retention settings, print the plan, then (unless
 * --dry-run) write the catalog without the expired records, remove the expired backups'
 * objects and the expired WAL objects, in that order. A crash between the steps leaves
 * only unreferenced objects behind (a backup directory without a catalog record looks
 * like an interrupted backup, which the backup command cleans up; WAL before the oldest
 * retained backup is removed by the next expire), never a catalog record whose objects
 * are gone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "expire.h"
#include "lock.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#define SECONDS_PER_DAY		INT64_C(86400)
#define DEFAULT_SEG_SIZE	(16u * 1024u * 1024u)

/* ---------------------------------------------------------------------------------------
 * The plan
 * ------------------------------------------------------------------------------------- */

typedef struct plan_state
{
	const catalog *c;
	bool	   *gone;			/* per record: expires */
	bool	   *pinned;			/* per record: must stay (the newest backup and what it needs) */
} plan_state;

/* Index of label in the catalog, or -1. */
static long
record_index(const catalog *c, const char *label)
{
	if (label == NULL)
		return -1;
	for (size_t i = 0; i < c->nbackups; i++)
		if (strcmp(c->backups[i].label, label) == 0)
			return (long) i;
	return -1;
}

/* Pin record i and everything it needs: its parent chain and the backups it refers to. */
static void
pin_with_needs(plan_state *ps, long i)
{
	const catalog_backup *b;

	if (i < 0 || ps->pinned[i])
		return;
	ps->pinned[i] = true;
	b = &ps->c->backups[i];
	pin_with_needs(ps, record_index(ps->c, b->parent));
	for (size_t r = 0; r < b->nreferences; r++)
		pin_with_needs(ps, record_index(ps->c, b->references[r]));
}

/*
 * The newest complete backup: the one that stopped last (the latest point it restores
 * to), the later record on a tie. Every catalog record is complete.
 */
static long
newest_record(const catalog *c)
{
	long		best = -1;

	for (size_t i = 0; i < c->nbackups; i++)
		if (best < 0 || c->backups[i].stop_time >= c->backups[best].stop_time)
			best = (long) i;
	return best;
}

static void
expire_record(plan_state *ps, size_t i)
{
	if (!ps->pinned[i])
		ps->gone[i] = true;
}

/* Does record i depend on a record that goes (its parent, or a backup it refers to)? */
static bool
needs_gone_record(const plan_state *ps, size_t i)
{
	const catalog_backup *b = &ps->c->backups[i];
	long		p = record_index(ps->c, b->parent);

	if (p >= 0 && ps->gone[p])
		return true;
	for (size_t r = 0; r < b->nreferences; r++)
	{
		long		ref = record_index(ps->c, b->references[r]);

		if (ref >= 0 && (size_t) ref != i && ps->gone[ref])
			return true;
	}
	return false;
}

/* Dependents go with what they depend on, transitively. */
static void
expire_dependents(plan_state *ps)
{
	bool		changed = true;

	while (changed)
	{
		changed = false;
		for (size_t i = 0; i < ps->c->nbackups; i++)
			if (!ps->gone[i] && !ps->pinned[i] && needs_gone_record(ps, i))
			{
				ps->gone[i] = true;
				changed = true;
			}
	}
}

/* Full retention by count: all but the newest n full backups (catalog order) go. */
static void
expire_full_count(plan_state *ps, int n)
{
	size_t		nfull = 0;
	size_t		seen = 0;

	for (size_t i = 0; i < ps->c->nbackups; i++)
		if (ps->c->backups[i].type == BACKUP_FULL)
			nfull++;
	for (size_t i = 0; i < ps->c->nbackups && nfull > (size_t) n; i++)
		if (ps->c->backups[i].type == BACKUP_FULL && seen++ < nfull - (size_t) n)
			expire_record(ps, i);
}

/*
 * Full retention by time: full backups that stopped less than days before now stay, and
 * so does the newest full backup that stopped earlier (the base the oldest point of the
 * window is restored from); older full backups go.
 */
static void
expire_full_time(plan_state *ps, int days, int64_t now)
{
	int64_t		cutoff = now - (int64_t) days * SECONDS_PER_DAY;
	long		base = -1;

	for (size_t i = 0; i < ps->c->nbackups; i++)
	{
		const catalog_backup *b = &ps->c->backups[i];

		if (b->type == BACKUP_FULL && b->stop_time <= cutoff &&
			(base < 0 || b->stop_time >= ps->c->backups[base].stop_time))
			base = (long) i;
	}
	for (size_t i = 0; i < ps->c->nbackups; i++)
	{
		const catalog_backup *b = &ps->c->backups[i];

		if (b->type == BACKUP_FULL && b->stop_time <= cutoff && (long) i != base)
			expire_record(ps, i);
	}
}

/* Differential retention: of the diffs still kept, all but the newest n go. */
static void
expire_diff_count(plan_state *ps, int n)
{
	size_t		ndiff = 0;
	size_t		seen = 0;

	for (size_t i = 0; i < ps->c->nbackups; i++)
		if (ps->c->backups[i].type == BACKUP_DIFF && !ps->gone[i])
			ndiff++;
	for (size_t i = 0; i < ps->c->nbackups && ndiff > (size_t) n; i++)
		if (ps->c->backups[i].type == BACKUP_DIFF && !ps->gone[i] &&
			seen++ < ndiff - (size_t) n)
			expire_record(ps, i);
}

static void
plan_add_wal(expire_plan_t *out, const wal_object *o, size_t *cap)
{
	if (out->nwal == *cap)
	{
		*cap = *cap ? 2 * *cap : 256;
		out->wal = xrealloc(out->wal, *cap * sizeof(*out->wal));
	}
	out->wal[out->nwal++] = o;
}

/*
 * WAL no retained backup needs: positioned before the start segment of the retained
 * backup whose WAL starts first, on its timeline or an earlier one. Every other retained
 * backup starts at or after that position, so nothing it needs is touched. A retained
 * backup without a valid start segment stops all WAL removal (nothing can be proved
 * unneeded).
 */
static void
plan_wal(const plan_state *ps, const wal_inventory *inv, expire_plan_t *out)
{
	wal_name	oldest;
	uint64_t	oldest_pos = 0;
	bool		found = false;
	size_t		cap = 0;

	for (size_t i = 0; i < ps->c->nbackups; i++)
	{
		wal_name	w;
		uint64_t	pos;

		if (ps->gone[i])
			continue;
		if (wal_name_parse(ps->c->backups[i].wal_start, &w) != 0 || w.kind != WAL_SEGMENT)
		{
			err_clear();
			return;
		}
		pos = wal_segment_position(&w, inv->seg_size);
		if (!found || pos < oldest_pos || (pos == oldest_pos && w.tli < oldest.tli))
		{
			oldest = w;
			oldest_pos = pos;
			found = true;
		}
	}
	if (!found)
		return;
	out->wal_keep_from = xstrdup(oldest.name);

	for (size_t i = 0; i < inv->nsegments; i++)
	{
		const wal_object *o = &inv->segments[i];

		if (o->w.tli <= oldest.tli && wal_segment_position(&o->w, inv->seg_size) < oldest_pos)
			plan_add_wal(out, o, &cap);
	}
	for (size_t i = 0; i < inv->nothers; i++)
	{
		const wal_object *o = &inv->others[i];

		if (o->w.kind != WAL_HISTORY && o->w.tli <= oldest.tli &&
			wal_segment_position(&o->w, inv->seg_size) < oldest_pos)
			plan_add_wal(out, o, &cap);
	}
}

int
expire_plan(const catalog *c, const wal_inventory *inv, const expire_settings *s,
			int64_t now, expire_plan_t *out)
{
	plan_state	ps;

	memset(out, 0, sizeof(*out));
	if (s->retention_full <= 0)
	{
		out->retention_unset = true;
		return 0;
	}
	if (c->nbackups == 0)
		return 0;

	ps.c = c;
	ps.gone = xcalloc(c->nbackups, sizeof(bool));
	ps.pinned = xcalloc(c->nbackups, sizeof(bool));
	pin_with_needs(&ps, newest_record(c));

	if (s->retention_full_time)
		expire_full_time(&ps, s->retention_full, now);
	else
		expire_full_count(&ps, s->retention_full);
	expire_dependents(&ps);
	if (s->retention_diff > 0)
	{
		expire_diff_count(&ps, s->retention_diff);
		expire_dependents(&ps);
	}

	out->backups = xcalloc(c->nbackups, sizeof(char *));
	for (size_t i = 0; i < c->nbackups; i++)
		if (ps.gone[i])
			out->backups[out->nbackups++] = xstrdup(c->backups[i].label);
	if (inv)
		plan_wal(&ps, inv, out);

	free(ps.gone);
	free(ps.pinned);
	return 0;
}

void
expire_plan_free(expire_plan_t *p)
{
	for (size_t i = 0; i < p->nbackups; i++)
		free(p->backups[i]);
	free(p->backups);
	free(p->wal);
	free(p->wal_keep_from);
	memset(p, 0, sizeof(*p));
}

/* ---------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------- */


typedef struct path_list
{
	char	  **v;
	size_t		n;
	size_t		cap;
} path_list;

static int
collect_cb(const storage_info *info, void *arg)
{
	path_list  *l = arg;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = xstrdup(info->path);
	return 0;
}

static void
path_list_free(path_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Remove every object of one backup: "stanza/<s>/backup/<label>/..." . */
static int
remove_backup_objects(const archive_repo *r, const char *stanza, const char *label,
					  size_t *removed)
{
	char	   *prefix = xasprintf("stanza/%s/backup/%s/", stanza, label);
	path_list	l = {0};
	int			rc;

	rc = storage_list(repo_storage(r->repo), prefix, collect_cb, &l);
	if (rc != 0)
		err_wrap("unable to list backup %s ('%s')", label, prefix);
	else if ((rc = storage_remove_many(repo_storage(r->repo), (const char *const *) l.v, l.n)) != 0)
		err_wrap("unable to remove the objects of backup %s", label);
	else
		*removed += l.n;
	path_list_free(&l);
	free(prefix);
	return rc;
}

static int
remove_wal_objects(const archive_repo *r, const expire_plan_t *plan)
{
	const char **paths;
	int			rc;

	if (plan->nwal == 0)
		return 0;
	paths = xcalloc(plan->nwal, sizeof(*paths));
	for (size_t i = 0; i < plan->nwal; i++)
		paths[i] = plan->wal[i]->path;
	rc = storage_remove_many(repo_storage(r->repo), paths, plan->nwal);
	free(paths);
	if (rc != 0)
		return err_wrap("unable to remove expired WAL");
	return 0;
}

static void
settings_of(const config_t *cfg, int n, expire_settings *s)
{
	const char *type = cfg_repo_str(cfg, n, "retention-full-type");

	memset(s, 0, sizeof(*s));
	s->retention_full = (int) cfg_repo_int(cfg, n, "retention-full");
	s->retention_full_time = type != NULL && strcmp(type, "time") == 0;
	s->retention_diff = (int) cfg_repo_int(cfg, n, "retention-diff");
}

static void
print_plan(const archive_repo *r, const catalog *c, const expire_plan_t *plan)
{
	char		when[32];

	for (size_t i = 0; i < plan->nbackups; i++)
	{
		const catalog_backup *b = catalog_find(c, plan->backups[i]);

		if (!format_utc(b->stop_time, when, sizeof(when)))
			snprintf(when, sizeof(when), "@%" PRId64, b->stop_time);
		printf("repository %d: expire backup %s (%s, stopped %s)\n", r->index, b->label,
			   backup_type_name(b->type), when);
	}
	if (plan->nwal > 0)
		printf("repository %d: remove %zu WAL files before %s\n", r->index, plan->nwal,
			   plan->wal_keep_from);
	if (plan->nbackups == 0 && plan->nwal == 0)
		printf("repository %d: nothing to expire\n", r->index);
	fflush(stdout);
}

/* Expire one repository of the stanza per its retention settings. */
static int
expire_repo(const config_t *cfg, const archive_repo *r, bool dry_run)
{
	catalog		c;
	wal_inventory inv;
	expire_plan_t plan;
	expire_settings s;
	const catalog_backup *latest;
	uint32_t	seg_size = DEFAULT_SEG_SIZE;
	size_t		removed = 0;
	int			rc = -1;

	if (r->repo == NULL)
		return err_set(r->open_kind, "%s", r->open_error);
	settings_of(cfg, r->index, &s);
	if (catalog_read(r->repo, r->stanza.name, &c) != 0)
		return err_wrap("unable to read the catalog");
	latest = catalog_latest(&c, -1);
	if (latest && latest->wal_segment_size != 0)
		seg_size = latest->wal_segment_size;
	if (wal_inventory_load(r, seg_size, &inv) != 0)
	{
		catalog_free(&c);
		return -1;
	}
	expire_plan(&c, &inv, &s, (int64_t) time(NULL), &plan);
	if (plan.retention_unset)
		log_warn("repository %d: repo%d-retention-full is not set: no backup or WAL expires "
				 "and the repository keeps growing", r->index, r->index);
	print_plan(r, &c, &plan);

	if (dry_run)
	{
		printf("repository %d: dry run: nothing removed\n", r->index);
		rc = 0;
		goto out;
	}

	/* the catalog first: no record may outlive its objects */
	if (plan.nbackups > 0)
	{
		for (size_t i = 0; i < plan.nbackups; i++)
			catalog_remove(&c, plan.backups[i]);
		if (catalog_write(r->repo, &c) != 0)
		{
			err_wrap("unable to write the catalog without the expired backups");
			goto out;
		}
	}
	for (size_t i = 0; i < plan.nbackups; i++)
		if (remove_backup_objects(r, r->stanza.name, plan.backups[i], &removed) != 0)
			goto out;
	if (remove_wal_objects(r, &plan) != 0)
		goto out;
	log_info("repository %d: expired %zu backups (%zu objects) and %zu WAL files", r->index,
			 plan.nbackups, removed, plan.nwal);
	rc = 0;

out:
	expire_plan_free(&plan);
	wal_inventory_free(&inv);
	catalog_free(&c);
	return rc;
}

/*
 * Expire every selected repository of the stanza; the caller holds the stanza's backup
 * lock (the backup command calls this at its end). Every repository is tried; failures
 * are reported together in one error.
 */
int
expire_run(const config_t *cfg, bool dry_run)
{
	archive_ctx ctx;
	buf_t		why;
	drb_err		kind = DRB_OK;
	int			nfailed = 0;

	if (archive_ctx_open(&ctx, cfg, true) != 0)
		return err_wrap("expire");
	buf_init(&why);
	for (int i = 0; i < ctx.nrepo; i++)
	{
		if (expire_repo(cfg, &ctx.repos[i], dry_run) == 0)
			continue;
		if (nfailed++ == 0)
			kind = err_kind();
		buf_printf(&why, "%srepository %d: %s", why.len ? "; " : "", ctx.repos[i].index,
				   err_msg());
	}
	archive_ctx_close(&ctx);
	if (nfailed > 0)
		err_set(kind, "expire failed: %s", buf_cstr(&why));
	buf_free(&why);
	return nfailed > 0 ? -1 : 0;
}

int
cmd_expire(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	drb_lock   *lock;
	int			rc;

	lock = lock_acquire(cfg_str(cfg, "lock-path"), stanza, "backup", "backup or expire");
	if (lock == NULL)
		return -1;
	rc = expire_run(cfg, cfg_bool(cfg, "dry-run"));
	lock_release(lock);
	return rc;
}
