/*
 * info.c — info: backups, WAL archive and recoverable window, per stanza and repository.
 *
 *   drbackup [--stanza=S] info [--output=text|json] [--repo=N]
 *
 * Every selected repository (all configured ones by default) is opened once. The stanzas
 * shown are --stanza, or every stanza that has a record ("stanza/<name>/stanza.info") in
 * any open repository. For each stanza and repository: the stanza record, the catalog
 * (backups), one LIST of the WAL archive (wal_inventory) and, from those two, which
 * backups have their WAL and the recoverable window.
 *
 * The report is first built as one JSON document (the schema of docs/info.md); the text
 * output is rendered from that document, so both always say the same thing. A repository
 * that cannot be opened or read appears with status "error" and its message; the command
 * then fails (DRB_ERR_STORAGE) after printing everything else.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "archive.h"
#include "catalog.h"
#include "command.h"
#include "error.h"
#include "jsonutil.h"
#include "log.h"
#include "mem.h"
#include "wal_inventory.h"

#define INFO_FORMAT			1
#define DEFAULT_SEG_SIZE	(16u * 1024u * 1024u)

/* One selected repository, opened once for every stanza. */
typedef struct info_repo
{
	int			index;
	repo_t	   *repo;			/* NULL when it could not be opened */
	char	   *error;
	drb_err		kind;
} info_repo;

/* ---------------------------------------------------------------------------------------
 * Small formatting helpers
 * ------------------------------------------------------------------------------------- */

static json_t *
json_u64(uint64_t v)
{
	return json_integer((json_int_t) v);
}

static uint64_t
name_position(const char *name, uint32_t seg_size)
{
	wal_name	w;

	if (wal_name_parse(name, &w) != 0)
	{
		err_clear();
		return 0;
	}
	return wal_segment_position(&w, seg_size);
}

/* ---------------------------------------------------------------------------------------
 * The report of one stanza in one repository
 * ------------------------------------------------------------------------------------- */

static json_t *
restore_test_json(const catalog_restore_test *t)
{
	if (!t->present)
		return json_null();
	return json_pack("{s:o, s:b, s:f, s:o, s:o}",
					 "time", jval_utc(t->time),
					 "success", t->success,
					 "duration", t->duration,
					 "target", jval_text(t->target),
					 "failed-check", jval_text(t->failed_check));
}

static json_t *
backup_json(const catalog_backup *b, const wal_inventory *inv)
{
	json_t	   *o = json_object();
	json_t	   *refs = json_array();
	char	   *missing = NULL;
	bool		wal_present = wal_inventory_has_range(inv, b->wal_start, b->wal_stop, &missing);

	for (size_t i = 0; i < b->nreferences; i++)
		json_array_append_new(refs, json_string(b->references[i]));
	json_object_set_new(o, "label", json_string(b->label));
	json_object_set_new(o, "type", json_string(backup_type_name(b->type)));
	json_object_set_new(o, "parent", jval_text(b->parent));
	json_object_set_new(o, "references", refs);
	json_object_set_new(o, "status", json_string("complete"));
	json_object_set_new(o, "start-time", jval_utc(b->start_time));
	json_object_set_new(o, "stop-time", jval_utc(b->stop_time));
	json_object_set_new(o, "duration", json_real(b->duration));
	json_object_set_new(o, "start-lsn", jval_lsn(b->start_lsn));
	json_object_set_new(o, "stop-lsn", jval_lsn(b->stop_lsn));
	json_object_set_new(o, "timeline", json_integer(b->timeline));
	json_object_set_new(o, "wal-start", json_string(b->wal_start));
	json_object_set_new(o, "wal-stop", json_string(b->wal_stop));
	json_object_set_new(o, "wal-present", json_boolean(wal_present));
	json_object_set_new(o, "wal-missing", jval_text(missing));
	json_object_set_new(o, "system-id", json_sprintf("%" PRIu64, b->system_id));
	json_object_set_new(o, "pg-version", json_integer(b->pg_version));
	json_object_set_new(o, "size", json_u64(b->size));
	json_object_set_new(o, "size-copied", json_u64(b->size_copied));
	json_object_set_new(o, "repo-size", json_u64(b->repo_size));
	json_object_set_new(o, "file-count", json_u64(b->file_count));
	json_object_set_new(o, "damaged-pages", json_u64(b->damaged_pages));
	json_object_set_new(o, "restore-test", restore_test_json(&b->restore_test));
	free(missing);
	return o;
}

/* Names of the non-segment objects of one kind (and timeline, unless tli is 0). */
static json_t *
others_json(const wal_inventory *inv, wal_kind kind, uint32_t tli)
{
	json_t	   *a = json_array();

	for (size_t i = 0; i < inv->nothers; i++)
		if (inv->others[i].w.kind == kind && (tli == 0 || inv->others[i].w.tli == tli))
			json_array_append_new(a, json_string(inv->others[i].w.name));
	return a;
}

static size_t
count_others(const wal_inventory *inv, wal_kind kind)
{
	size_t		n = 0;

	for (size_t i = 0; i < inv->nothers; i++)
		n += inv->others[i].w.kind == kind;
	return n;
}

/* One timeline: its ranges [ri, rend) and the gaps between them. */
static json_t *
timeline_json(const wal_inventory *inv, size_t ri, size_t rend)
{
	json_t	   *ranges = json_array();
	json_t	   *gaps = json_array();
	uint64_t	total = 0;
	uint32_t	tli = inv->ranges[ri].tli;

	for (size_t i = ri; i < rend; i++)
	{
		const wal_range *r = &inv->ranges[i];

		total += r->count;
		json_array_append_new(ranges, json_pack("{s:s, s:s, s:I, s:o}", "first", r->first,
												"last", r->last, "count", (json_int_t) r->count,
												"last-archived", jval_utc(r->last_mtime)));
		if (i + 1 < rend)
		{
			uint64_t	after = name_position(r->last, inv->seg_size) + 1;
			uint64_t	before = name_position(inv->ranges[i + 1].first, inv->seg_size) - 1;
			char		first[25];
			char		last[25];

			wal_segment_name(tli, after, inv->seg_size, first);
			wal_segment_name(tli, before, inv->seg_size, last);
			json_array_append_new(gaps, json_pack("{s:s, s:s, s:I}", "first", first, "last", last,
												  "count", (json_int_t) (before - after + 1)));
		}
	}
	return json_pack("{s:i, s:s, s:s, s:I, s:o, s:o, s:o}",
					 "timeline", (int) tli,
					 "first", inv->ranges[ri].first,
					 "last", inv->ranges[rend - 1].last,
					 "count", (json_int_t) total,
					 "ranges", ranges,
					 "gaps", gaps,
					 "partial", others_json(inv, WAL_PARTIAL, tli));
}

static json_t *
archive_json(const wal_inventory *inv)
{
	json_t	   *timelines = json_array();
	size_t		ri = 0;

	while (ri < inv->nranges)
	{
		size_t		rend = ri + 1;

		while (rend < inv->nranges && inv->ranges[rend].tli == inv->ranges[ri].tli)
			rend++;
		json_array_append_new(timelines, timeline_json(inv, ri, rend));
		ri = rend;
	}
	return json_pack("{s:s, s:I, s:I, s:o, s:o, s:I}",
					 "archive-id", inv->archive_id,
					 "segment-size", (json_int_t) inv->seg_size,
					 "segment-count", (json_int_t) inv->nsegments,
					 "timelines", timelines,
					 "history", others_json(inv, WAL_HISTORY, 0),
					 "backup-files", (json_int_t) count_others(inv, WAL_BACKUP));
}

/* The range holding segment name, or NULL. */
static const wal_range *
range_of(const wal_inventory *inv, const char *name)
{
	wal_name	w;
	uint64_t	pos;

	if (wal_name_parse(name, &w) != 0)
	{
		err_clear();
		return NULL;
	}
	pos = wal_segment_position(&w, inv->seg_size);
	for (size_t i = 0; i < inv->nranges; i++)
	{
		const wal_range *r = &inv->ranges[i];

		if (r->tli == w.tli && name_position(r->first, inv->seg_size) <= pos &&
			pos <= name_position(r->last, inv->seg_size))
			return r;
	}
	return NULL;
}

/*
 * The recoverable window. earliest: stop time of the oldest backup whose WAL (wal_start ..
 * wal_stop) is all in the archive. latest: archive time (storage mtime) of the last
 * segment of the unbroken run that starts at the newest such backup's wal_start on its
 * timeline — an upper bound of the last commit one can restore to — and never before that
 * backup's stop time. continuous: one unbroken run of segments leads from the oldest such
 * backup's start to that last segment (else a gap, or a timeline switch, lies between).
 */
static json_t *
window_json(const catalog *c, const wal_inventory *inv)
{
	const catalog_backup *oldest = NULL;
	const catalog_backup *newest = NULL;
	const wal_range *run = NULL;
	int64_t		latest;

	for (size_t i = 0; i < c->nbackups; i++)
		if (wal_inventory_has_range(inv, c->backups[i].wal_start, c->backups[i].wal_stop, NULL))
		{
			if (oldest == NULL)
				oldest = &c->backups[i];
			newest = &c->backups[i];
		}
	if (oldest == NULL)
		return json_pack("{s:n, s:n, s:n, s:n, s:b}", "earliest", "earliest-backup", "latest",
						 "latest-segment", "continuous", 0);
	run = range_of(inv, newest->wal_start);
	latest = run && run->last_mtime > newest->stop_time ? run->last_mtime : newest->stop_time;
	return json_pack("{s:o, s:s, s:o, s:o, s:b}",
					 "earliest", jval_utc(oldest->stop_time),
					 "earliest-backup", oldest->label,
					 "latest", jval_utc(latest),
					 "latest-segment", jval_text(run ? run->last : NULL),
					 "continuous", run != NULL && run == range_of(inv, oldest->wal_start));
}

static json_t *
repo_error_json(int index, drb_err kind, const char *message)
{
	return json_pack("{s:i, s:s, s:{s:s, s:o}}", "repo", index, "status", "error",
					 "error", "kind", err_kind_name(kind), "message", jval_text(message));
}

/* Everything about stanza in one open repository; *failed set when it could not be read. */
static json_t *
repo_stanza_json(const info_repo *ir, const char *stanza, bool *failed)
{
	archive_repo r;
	catalog		c;
	wal_inventory inv;
	const catalog_backup *latest;
	uint32_t	seg_size = DEFAULT_SEG_SIZE;
	json_t	   *backups;
	json_t	   *o;

	*failed = true;
	if (ir->repo == NULL)
		return repo_error_json(ir->index, ir->kind, ir->error);

	memset(&r, 0, sizeof(r));
	r.index = ir->index;
	r.repo = ir->repo;
	if (stanza_info_read(ir->repo, stanza, &r.stanza) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
			err_set(DRB_ERR_STANZA, "repository %d has no stanza '%s' (run stanza-create)",
					ir->index, stanza);
		return repo_error_json(ir->index, err_kind(), err_msg());
	}
	if (catalog_read(ir->repo, stanza, &c) != 0)
	{
		err_wrap("repository %d: unable to read the catalog of stanza '%s'", ir->index, stanza);
		return repo_error_json(ir->index, err_kind(), err_msg());
	}
	latest = catalog_latest(&c, -1);
	if (latest && latest->wal_segment_size != 0)
		seg_size = latest->wal_segment_size;
	if (wal_inventory_load(&r, seg_size, &inv) != 0)
	{
		catalog_free(&c);
		return repo_error_json(ir->index, err_kind(), err_msg());
	}

	backups = json_array();
	for (size_t i = 0; i < c.nbackups; i++)
		json_array_append_new(backups, backup_json(&c.backups[i], &inv));
	o = json_pack("{s:i, s:s, s:{s:o, s:i, s:i, s:s}, s:o, s:o, s:o}",
				  "repo", ir->index,
				  "status", "ok",
				  "cluster",
				  "system-id", json_sprintf("%" PRIu64, r.stanza.system_id),
				  "pg-version", r.stanza.pg_version,
				  "pg-version-num", r.stanza.pg_version_num,
				  "created", r.stanza.created,
				  "recoverable", window_json(&c, &inv),
				  "archive", archive_json(&inv),
				  "backups", backups);
	wal_inventory_free(&inv);
	catalog_free(&c);
	*failed = false;
	return o;
}

/* ---------------------------------------------------------------------------------------
 * Repositories and stanzas
 * ------------------------------------------------------------------------------------- */

static int
open_repos(const config_t *cfg, info_repo repos[REPO_MAX])
{
	int			idx[REPO_MAX];
	int			n = repo_config_selected(cfg, true, idx);

	for (int i = 0; i < n; i++)
	{
		memset(&repos[i], 0, sizeof(repos[i]));
		repos[i].index = idx[i];
		repos[i].repo = repo_config_open(cfg, idx[i]);
		if (repos[i].repo == NULL)
		{
			repos[i].error = xstrdup(err_msg());
			repos[i].kind = err_kind();
		}
	}
	return n;
}

static void
close_repos(info_repo *repos, int n)
{
	for (int i = 0; i < n; i++)
	{
		repo_close(repos[i].repo);
		free(repos[i].error);
	}
}

/* Whether each selected repository opened (and listed, without --stanza). */
static json_t *
repos_json(const info_repo *repos, int n)
{
	json_t	   *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, repos[i].repo ?
							  json_pack("{s:i, s:s}", "repo", repos[i].index, "status", "ok") :
							  repo_error_json(repos[i].index, repos[i].kind, repos[i].error));
	return a;
}

typedef struct name_set
{
	char	  **v;
	size_t		n;
} name_set;

static void
name_set_add(name_set *s, const char *name, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == len && strncmp(s->v[i], name, len) == 0)
			return;
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = xstrndup(name, len);
}

static void
name_set_free(name_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* "stanza/<name>/stanza.info" or its copy names a stanza. */
static int
stanza_cb(const storage_info *info, void *arg)
{
	const char *rest = info->path + strlen("stanza/");
	const char *slash = strchr(rest, '/');
	char		name[128];

	if (slash == NULL || (strcmp(slash + 1, "stanza.info") != 0 &&
						  strcmp(slash + 1, "stanza.info.copy") != 0))
		return 0;
	if ((size_t) (slash - rest) >= sizeof(name))
		return 0;
	memcpy(name, rest, (size_t) (slash - rest));
	name[slash - rest] = '\0';
	if (stanza_name_valid(name))
		name_set_add(arg, name, strlen(name));
	return 0;
}

/*
 * Every stanza with a record in an open repository, sorted. A repository whose listing
 * fails gets that error as its status (it then shows as failed under every stanza).
 */
static void
find_stanzas(info_repo *repos, int n, name_set *out)
{
	for (int i = 0; i < n; i++)
	{
		if (repos[i].repo == NULL)
			continue;
		if (storage_list(repo_storage(repos[i].repo), "stanza/", stanza_cb, out) != 0)
		{
			err_wrap("repository %d: unable to list the stanzas", repos[i].index);
			repos[i].error = xstrdup(err_msg());
			repos[i].kind = err_kind();
			repo_close(repos[i].repo);
			repos[i].repo = NULL;
		}
	}
	qsort(out->v, out->n, sizeof(*out->v), name_cmp);
}

/* ---------------------------------------------------------------------------------------
 * Text output, rendered from the JSON document
 * ------------------------------------------------------------------------------------- */

static const char *
jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "-";
}

static json_int_t
jint(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* 1536 -> "1.5 KiB". */
static void
human_size(uint64_t v, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double		d = (double) v;
	int			u = 0;

	while (d >= 1024.0 && u < 5)
	{
		d /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%" PRIu64 " B", v);
	else
		snprintf(out, 32, "%.1f %s", d, units[u]);
}

static void
print_backup_text(FILE *f, const json_t *b)
{
	const json_t *rt = json_object_get(b, "restore-test");
	char		size[32];
	char		copied[32];
	char		repo_size[32];

	fprintf(f, "        %s backup: %s\n", jstr(b, "type"), jstr(b, "label"));
	if (json_is_string(json_object_get(b, "parent")))
		fprintf(f, "            based on: %s\n", jstr(b, "parent"));
	fprintf(f, "            start / stop: %s / %s (%.1f s)\n", jstr(b, "start-time"),
			jstr(b, "stop-time"), json_real_value(json_object_get(b, "duration")));
	fprintf(f, "            lsn start / stop: %s / %s, timeline %d\n", jstr(b, "start-lsn"),
			jstr(b, "stop-lsn"), (int) jint(b, "timeline"));
	fprintf(f, "            wal start / stop: %s / %s\n", jstr(b, "wal-start"), jstr(b, "wal-stop"));
	if (!json_is_true(json_object_get(b, "wal-present")))
		fprintf(f, "            WAL MISSING from the archive: %s (not restorable from this "
				"repository)\n", jstr(b, "wal-missing"));
	human_size((uint64_t) jint(b, "size"), size);
	human_size((uint64_t) jint(b, "size-copied"), copied);
	human_size((uint64_t) jint(b, "repo-size"), repo_size);
	fprintf(f, "            database size: %s, copied: %s, in repository: %s, files: %" JSON_INTEGER_FORMAT "\n",
			size, copied, repo_size, jint(b, "file-count"));
	if (jint(b, "damaged-pages") > 0)
		fprintf(f, "            DAMAGED PAGES: %" JSON_INTEGER_FORMAT " (see the manifest)\n",
				jint(b, "damaged-pages"));
	if (json_is_object(rt))
	{
		if (json_is_true(json_object_get(rt, "success")))
			fprintf(f, "            restore test: ok at %s (%.1f s, target %s)\n",
					jstr(rt, "time"), json_real_value(json_object_get(rt, "duration")),
					jstr(rt, "target"));
		else
			fprintf(f, "            restore test: FAILED at %s (%s)\n", jstr(rt, "time"),
					jstr(rt, "failed-check"));
	}
}

static void
print_archive_text(FILE *f, const json_t *a)
{
	const json_t *tl;
	const json_t *h = json_object_get(a, "history");
	size_t		i;
	char		seg[32];

	human_size((uint64_t) jint(a, "segment-size"), seg);
	fprintf(f, "        wal archive: %s, %s segments\n", jstr(a, "archive-id"), seg);
	if (json_array_size(json_object_get(a, "timelines")) == 0)
		fprintf(f, "            empty\n");
	json_array_foreach(json_object_get(a, "timelines"), i, tl)
	{
		const json_t *g;
		const json_t *p;
		size_t		j;

		fprintf(f, "            timeline %d: %s .. %s, %" JSON_INTEGER_FORMAT " segments\n",
				(int) jint(tl, "timeline"), jstr(tl, "first"), jstr(tl, "last"),
				jint(tl, "count"));
		json_array_foreach(json_object_get(tl, "gaps"), j, g)
			fprintf(f, "                GAP: %s .. %s (%" JSON_INTEGER_FORMAT " missing)\n",
					jstr(g, "first"), jstr(g, "last"), jint(g, "count"));
		json_array_foreach(json_object_get(tl, "partial"), j, p)
			fprintf(f, "                partial: %s\n", json_string_value(p));
	}
	if (json_array_size(h) > 0)
	{
		const json_t *name;

		fprintf(f, "            history:");
		json_array_foreach(h, i, name)
			fprintf(f, " %s", json_string_value(name));
		fprintf(f, "\n");
	}
}

static void
print_repo_text(FILE *f, const json_t *r)
{
	const json_t *cl = json_object_get(r, "cluster");
	const json_t *w = json_object_get(r, "recoverable");
	const json_t *b;
	size_t		i;

	if (strcmp(jstr(r, "status"), "ok") != 0)
	{
		fprintf(f, "    repository %d: error: %s\n", (int) jint(r, "repo"),
				jstr(json_object_get(r, "error"), "message"));
		return;
	}
	fprintf(f, "    repository %d: ok\n", (int) jint(r, "repo"));
	fprintf(f, "        cluster: PostgreSQL %d, system id %s\n", (int) jint(cl, "pg-version"),
			jstr(cl, "system-id"));
	if (json_is_string(json_object_get(w, "earliest")))
		fprintf(f, "        recoverable: %s .. %s (latest: archive time of %s)%s\n",
				jstr(w, "earliest"), jstr(w, "latest"), jstr(w, "latest-segment"),
				json_is_true(json_object_get(w, "continuous")) ? "" :
				", NOT CONTINUOUS: see the WAL archive");
	else
		fprintf(f, "        recoverable: nothing (no backup with its WAL)\n");
	print_archive_text(f, json_object_get(r, "archive"));
	if (json_array_size(json_object_get(r, "backups")) == 0)
		fprintf(f, "        no backups\n");
	json_array_foreach(json_object_get(r, "backups"), i, b)
		print_backup_text(f, b);
}

static void
print_text(FILE *f, const json_t *doc)
{
	const json_t *s;
	size_t		i;

	if (json_array_size(json_object_get(doc, "stanzas")) == 0)
	{
		json_array_foreach(json_object_get(doc, "repositories"), i, s)
			if (strcmp(jstr(s, "status"), "ok") != 0)
				fprintf(f, "repository %d: error: %s\n", (int) jint(s, "repo"),
						jstr(json_object_get(s, "error"), "message"));
		fprintf(f, "no stanzas\n");
	}
	json_array_foreach(json_object_get(doc, "stanzas"), i, s)
	{
		const json_t *r;
		size_t		j;

		fprintf(f, "%sstanza: %s\n", i ? "\n" : "", jstr(s, "name"));
		fprintf(f, "    status: %s\n", jstr(s, "status"));
		json_array_foreach(json_object_get(s, "repositories"), j, r)
			print_repo_text(f, r);
	}
}

/* ---------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------- */

int
cmd_info(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	info_repo	repos[REPO_MAX];
	int			nrepo;
	name_set	stanzas = {0};
	json_t	   *doc;
	json_t	   *list;
	int			nfailed = 0;
	bool		json_out = false;

	if (cfg_output_json(cfg, &json_out) != 0)
		return -1;
	if (stanza && !stanza_name_valid(stanza))
		return err_set(DRB_ERR_USAGE, "'%s' is not a valid stanza name", stanza);
	nrepo = open_repos(cfg, repos);
	if (stanza)
		name_set_add(&stanzas, stanza, strlen(stanza));
	else
		find_stanzas(repos, nrepo, &stanzas);

	list = json_array();
	for (size_t s = 0; s < stanzas.n; s++)
	{
		json_t	   *rl = json_array();
		bool		stanza_failed = false;

		for (int i = 0; i < nrepo; i++)
		{
			bool		failed;

			json_array_append_new(rl, repo_stanza_json(&repos[i], stanzas.v[s], &failed));
			stanza_failed |= failed;
			nfailed += failed;
		}
		json_array_append_new(list, json_pack("{s:s, s:s, s:o}", "name", stanzas.v[s],
											  "status", stanza_failed ? "error" : "ok",
											  "repositories", rl));
	}
	/* without a stanza to show them under, repositories that failed still count */
	if (stanzas.n == 0)
		for (int i = 0; i < nrepo; i++)
			nfailed += repos[i].repo == NULL;
	doc = json_pack("{s:i, s:o, s:o}", "format", INFO_FORMAT, "repositories",
					repos_json(repos, nrepo), "stanzas", list);

	if (json_out)
	{
		char	   *text = json_dumps(doc, JSON_INDENT(2));

		fputs(text, stdout);
		fputc('\n', stdout);
		free(text);
	}
	else
		print_text(stdout, doc);
	fflush(stdout);

	json_decref(doc);
	name_set_free(&stanzas);
	close_repos(repos, nrepo);
	if (nfailed > 0)
		return err_set(DRB_ERR_STORAGE, "info: %d repository report%s could not be read (see "
					   "the status above)", nfailed, nfailed == 1 ? "" : "s");
	return 0;
}
