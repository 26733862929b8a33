/*
 * backup.c — the backup command: coordinates PostgreSQL, the repositories and the catalog.
 *
 * The order of a backup, and why:
 *  1. the stanza lock (one backup or expire per stanza on this host);
 *  2. every selected repository opened with its stanza record, which must be the cluster
 *     we connect to (system identifier, version);
 *  3. interrupted backups (a directory under stanza/<s>/backup/ without a catalog record)
 *     are removed: they were never listed, so nothing can depend on them;
 *  4. type and parent chosen from the catalog of the first repository (the parent must be
 *     in every repository's catalog, else the backup becomes full, with a warning);
 *  5. pg_backup_start on one session; the data directory is scanned and copied
 *     (backup_job.c) while that session stays open; pg_backup_stop returns backup_label
 *     and tablespace_map, which go into the manifest (never read from disk);
 *  6. wait until the WAL from the start segment to the stop segment is in every
 *     repository (archive-check, archive-timeout);
 *  7. manifest (main + copy), then the catalog record: only now is the backup listed;
 *  8. expire, unless expire-auto=n.
 * A failure anywhere before 7 leaves an unlisted directory that step 3 of the next run
 * removes.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "backup_job.h"
#include "catalog.h"
#include "command.h"
#include "error.h"
#include "expire.h"
#include "lock.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "pg.h"
#include "timeutil.h"

#define SEG_NAME_LEN 24

/* --- interrupted backups --- */

typedef struct stray
{
	const catalog *cat;
	size_t		prefix_len;
	char	  **paths;
	size_t		n;
	size_t		cap;
	char	   *last_label;		/* for one message per backup */
} stray;

static int
stray_cb(const storage_info *info, void *arg)
{
	stray	   *st = arg;
	const char *rest = info->path + st->prefix_len;
	const char *slash = strchr(rest, '/');
	char	   *label;

	if (slash == NULL)
		return 0;				/* backup.catalog and its copy */
	label = xstrndup(rest, (size_t) (slash - rest));
	if (catalog_find(st->cat, label) == NULL)
	{
		if (st->last_label == NULL || strcmp(st->last_label, label) != 0)
		{
			log_warn("removing backup %s, which did not complete (interrupted or failed)",
					 label);
			free(st->last_label);
			st->last_label = xstrdup(label);
		}
		if (st->n == st->cap)
		{
			st->cap = st->cap ? st->cap * 2 : 64;
			st->paths = xrealloc(st->paths, st->cap * sizeof(char *));
		}
		st->paths[st->n++] = xstrdup(info->path);
	}
	free(label);
	return 0;
}

/* Remove every object of backups the catalog does not list. */
static int
remove_interrupted(repo_t *repo, const char *stanza, const catalog *cat)
{
	char	   *prefix = stanza_path(stanza, "backup/");
	stray		st = {cat, strlen(prefix), NULL, 0, 0, NULL};
	int			rc = storage_list(repo_storage(repo), prefix, stray_cb, &st);

	if (rc == 0 && st.n > 0)
		rc = storage_remove_many(repo_storage(repo), (const char *const *) st.paths, st.n);
	if (rc != 0)
		err_wrap("repository %d: unable to remove an interrupted backup", repo_index(repo));
	for (size_t i = 0; i < st.n; i++)
		free(st.paths[i]);
	free(st.paths);
	free(st.last_label);
	free(prefix);
	return rc;
}

/* --- backup_label --- */

/* "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)" and "START TIMELINE: 1" */
static int
label_parse(const char *text, char wal_start[25], uint32_t *tli)
{
	const char *p = strstr(text, "(file ");
	const char *t = strstr(text, "START TIMELINE: ");

	if (p == NULL || strlen(p + 6) < SEG_NAME_LEN || p[6 + SEG_NAME_LEN] != ')' || t == NULL)
		return err_set(DRB_ERR_PG, "unexpected backup_label from pg_backup_stop: '%.200s'", text);
	memcpy(wal_start, p + 6, SEG_NAME_LEN);
	wal_start[SEG_NAME_LEN] = '\0';
	*tli = (uint32_t) strtoul(t + 16, NULL, 10);
	return 0;
}

/* Segment name holding the byte before lsn (where a record ending at lsn lies). */
static void
segment_of(uint32_t tli, uint64_t lsn, uint32_t seg_size, char out[25])
{
	wal_segment_name(tli, (lsn - 1) / seg_size, seg_size, out);
}

/* --- WAL of the backup --- */

/* Wait until every segment first..last is in every repository. */
static int
wait_for_wal(archive_ctx *ctx, const char *first, const char *last, uint32_t seg_size,
			 int timeout)
{
	wal_name	w,
				end;
	time_t		deadline = time(NULL) + timeout;

	if (wal_name_parse(first, &w) != 0 || wal_name_parse(last, &end) != 0)
		return -1;
	for (;;)
	{
		for (int i = 0; i < ctx->nrepo; i++)
		{
			bool		found = false;
			uint8_t		sha[32];

			for (;;)
			{
				if (archive_find(&ctx->repos[i], &w, &found, sha, NULL) != 0)
					return err_wrap("unable to check the archive for the backup's WAL");
				if (found)
					break;
				if (time(NULL) >= deadline)
					return err_set(DRB_ERR_STORAGE, "WAL segment %s needed by the backup did "
								   "not reach repository %d within archive-timeout (%d s): "
								   "check archive_command and pg_stat_archiver", w.name,
								   ctx->repos[i].index, timeout);
				usleep(200 * 1000);
			}
		}
		if (w.log == end.log && w.seg == end.seg)
			return 0;
		wal_segment_next(&w, seg_size, &w);
	}
}

/* --- choosing type and parent --- */

static bool
in_every_catalog(catalog *cats, int n, const char *label)
{
	for (int i = 0; i < n; i++)
		if (catalog_find(&cats[i], label) == NULL)
			return false;
	return true;
}

static const catalog_backup *
choose_parent(catalog *cats, int n, backup_type *type, bool type_given)
{
	const catalog_backup *full = catalog_latest(&cats[0], BACKUP_FULL);
	const catalog_backup *parent = NULL;

	if (!type_given)
		*type = full ? BACKUP_INCR : BACKUP_FULL;
	if (*type == BACKUP_DIFF)
		parent = full;
	else if (*type == BACKUP_INCR)
		parent = catalog_latest(&cats[0], -1);
	if (*type != BACKUP_FULL && (parent == NULL || !in_every_catalog(cats, n, parent->label)))
	{
		log_warn("no full backup to base a %s backup on%s: taking a full backup",
				 backup_type_name(*type), parent ? " in every repository" : "");
		*type = BACKUP_FULL;
		parent = NULL;
	}
	return parent;
}

static void
print_summary(const manifest_header *h, double secs)
{
	printf("backup %s (%s%s%s) complete: %" PRIu64 " files, %.1f MiB, %.1f MiB copied, "
		   "%.1f MiB stored in %" PRIu64 " objects, %.1f s (%.1f MiB/s), %" PRIu64
		   " damaged pages, WAL %s..%s\n",
		   h->label, backup_type_name(h->type), h->parent ? " of " : "",
		   h->parent ? h->parent : "", h->file_count, h->size / 1048576.0,
		   h->size_copied / 1048576.0, h->repo_size / 1048576.0, h->object_count, secs,
		   secs > 0 ? h->size_copied / 1048576.0 / secs : 0.0, h->damaged_pages,
		   h->wal_start, h->wal_stop);
	fflush(stdout);
}

int
cmd_backup(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	drb_lock   *lock = NULL;
	archive_ctx ctx = {0};
	pg_conn    *conn = NULL;
	pg_cluster_info pgi;
	catalog		cats[REPO_MAX];
	int			ncats = 0;
	repo_t	   *repos[REPO_MAX];
	const catalog_backup *parent = NULL;
	manifest_reader *parent_reader = NULL;
	manifest_header parent_header = {0};
	manifest_header h = {0};
	backup_type type = BACKUP_FULL;
	backup_job *job = NULL;
	pg_tablespace *ts = NULL;
	size_t		nts = 0;
	uint64_t	start_lsn = 0;
	uint32_t	seg_size = 0;
	uint8_t		manifest_sha[32];
	double		t0 = clock_seconds();
	bool		started = false;
	int			rc = -1;

	lock = lock_acquire(cfg_str(cfg, "lock-path"), stanza, "backup", "backup or expire");
	if (lock == NULL)
		return -1;
	if (archive_ctx_open(&ctx, cfg, true) != 0)
		goto out;
	for (int i = 0; i < ctx.nrepo; i++)
	{
		if (ctx.repos[i].repo == NULL)
		{
			err_set(ctx.repos[i].open_kind, "%s", ctx.repos[i].open_error);
			goto out;
		}
		repos[i] = ctx.repos[i].repo;
	}

	conn = pg_connect(cfg);
	if (conn == NULL || pg_cluster_check(conn, cfg, &pgi) != 0 ||
		pg_wal_segment_size(conn, &seg_size) != 0)
		goto out;
	if (pgi.system_id != ctx.repos[0].stanza.system_id ||
		pgi.version_major != ctx.repos[0].stanza.pg_version)
	{
		err_set(DRB_ERR_STANZA, "stanza '%s' belongs to system identifier %" PRIu64
				" (PostgreSQL %d) but the cluster at pg1 is system identifier %" PRIu64
				" (PostgreSQL %d): wrong pg1-* settings, or run stanza-create for a new cluster",
				stanza, ctx.repos[0].stanza.system_id, ctx.repos[0].stanza.pg_version,
				pgi.system_id, pgi.version_major);
		goto out;
	}

	for (int i = 0; i < ctx.nrepo; i++)
	{
		if (catalog_read(repos[i], stanza, &cats[i]) != 0)
			goto out;
		ncats++;
		if (remove_interrupted(repos[i], stanza, &cats[i]) != 0)
			goto out;
	}

	if (cfg_str(cfg, "type"))
		type = (backup_type) backup_type_parse(cfg_str(cfg, "type"));
	parent = choose_parent(cats, ncats, &type, cfg_str(cfg, "type") != NULL);
	if (parent)
	{
		parent_reader = manifest_reader_open(repos[0], stanza, parent->label, &parent_header);
		if (parent_reader == NULL)
		{
			err_wrap("unable to read the manifest of backup %s, the parent of this %s backup",
					 parent->label, backup_type_name(type));
			goto out;
		}
	}

	/* a label not taken yet (two backups within one second) */
	for (;;)
	{
		char	   *full_label = parent ? xstrndup(parent->label, 16) : NULL;
		bool		taken = false;

		free(h.label);
		h.label = backup_label_make(type, full_label, (int64_t) time(NULL));
		free(full_label);
		for (int i = 0; i < ncats; i++)
			taken |= catalog_find(&cats[i], h.label) != NULL;
		if (!taken)
			break;
		sleep(1);
	}

	log_info("backup %s: %s backup%s%s", h.label, backup_type_name(type),
			 parent ? " based on " : "", parent ? parent->label : "");
	if (pg_backup_start(conn, h.label, cfg_bool(cfg, "start-fast"), &start_lsn,
						&h.start_time) != 0)
		goto out;
	started = true;
	if (pg_tablespaces(conn, &ts, &nts) != 0)
		goto out;

	{
		backup_job_settings s = {
			.repos = repos, .nrepo = ctx.nrepo, .stanza = stanza, .label = h.label,
			.pgdata = pgi.data_directory, .pg_major = pgi.version_major,
			.process_max = (int) cfg_int(cfg, "process-max"),
			.bundle_limit = (uint64_t) cfg_int(cfg, "bundle-limit"),
			.bundle_size = (uint64_t) cfg_int(cfg, "bundle-size"),
			.check_pages = cfg_is_set(cfg, "checksum-page") ? cfg_bool(cfg, "checksum-page") :
			pgi.data_checksums,
			.start_lsn = start_lsn, .parent = parent_reader,
			.parent_header = parent ? &parent_header : NULL,
		};

		h.data_checksums = s.check_pages;
		job = backup_job_scan(&s);
		if (job == NULL || backup_job_run(job) != 0)
			goto out;
	}

	if (pg_backup_stop(conn, &h.stop_lsn, &h.backup_label, &h.tablespace_map, &h.stop_time) != 0)
		goto out;
	started = false;
	if (label_parse(h.backup_label, h.wal_start, &h.timeline) != 0)
		goto out;
	segment_of(h.timeline, h.stop_lsn, seg_size, h.wal_stop);

	if (cfg_bool(cfg, "archive-check") &&
		wait_for_wal(&ctx, h.wal_start, h.wal_stop, seg_size,
					 (int) cfg_int(cfg, "archive-timeout")) != 0)
		goto out;

	h.format = MANIFEST_FORMAT;
	h.type = type;
	h.parent = parent ? xstrdup(parent->label) : NULL;
	h.drbackup_version = xstrdup(PACKAGE_VERSION);
	h.system_id = pgi.system_id;
	h.pg_version = pgi.version_major;
	h.pg_version_num = pgi.version_num;
	h.start_lsn = start_lsn;
	h.wal_segment_size = seg_size;
	h.compress = xstrdup(cfg_str(cfg, "compress-type"));
	h.ntablespaces = nts;
	h.tablespaces = nts ? xcalloc(nts, sizeof(*h.tablespaces)) : NULL;
	for (size_t i = 0; i < nts; i++)
	{
		h.tablespaces[i].oid = ts[i].oid;
		h.tablespaces[i].name = xstrdup(ts[i].name);
		h.tablespaces[i].location = xstrdup(ts[i].location);
	}
	if (backup_job_write_manifest(job, &h, manifest_sha) != 0)
		goto out;

	for (int i = 0; i < ncats; i++)
	{
		catalog_backup b;
		const catalog_backup *p = parent ? catalog_find(&cats[i], parent->label) : NULL;

		catalog_backup_from_header(&b, &h, p, clock_seconds() - t0, manifest_sha);
		b.repo_size = backup_job_repo_size(job, i);
		catalog_add(&cats[i], &b);
		catalog_backup_clear(&b);
		if (catalog_write(repos[i], &cats[i]) != 0)
		{
			err_wrap("backup %s is stored but could not be recorded in repository %d's catalog",
					 h.label, ctx.repos[i].index);
			goto out;
		}
	}
	print_summary(&h, clock_seconds() - t0);
	rc = 0;

out:
	if (rc != 0 && started)
		log_warn("backup %s stopped before completion; the next backup removes what it stored",
				 h.label ? h.label : "");
	backup_job_free(job);
	if (parent_reader)
		manifest_reader_close(parent_reader);
	manifest_header_free(&parent_header);
	manifest_header_free(&h);
	pg_tablespaces_free(ts, nts);
	pg_disconnect(conn);			/* ends a started backup if still open */
	for (int i = 0; i < ncats; i++)
		catalog_free(&cats[i]);
	archive_ctx_close(&ctx);
	if (rc == 0 && cfg_bool(cfg, "expire-auto") && expire_run(cfg, false) != 0)
		rc = err_wrap("the backup completed but expire failed");
	lock_release(lock);
	return rc;
}
