/*
 * metrics.c — metrics: Prometheus text for node_exporter's text-file collector.
 *
 *   drbackup --stanza=S metrics [--repo=N] [--output=FILE|-]
 *
 * For the stanza, in every selected repository (all configured ones by default): the
 * stanza record, the catalog, one LIST of the WAL archive (wal_inventory) and one LIST of
 * everything under "stanza/<s>/" (the size). From those, gauges labelled
 * {stanza="S",repo="N"} (docs/check-and-metrics.md):
 *
 *   drbackup_up                                     1 when the repository could be read
 *   drbackup_last_archived_wal_age_seconds          now - storage mtime of the newest WAL
 *                                                   segment (or .partial) object
 *   drbackup_last_backup_age_seconds{type}          now - stop time of the newest backup of
 *                                                   each type present
 *   drbackup_recoverable_window_seconds             latest - earliest of the window info
 *                                                   shows (restore_window_get), 0 when none
 *   drbackup_repo_size_bytes                        bytes stored under stanza/<s>/
 *   drbackup_restore_test_last_success_timestamp_seconds  newest successful restore test
 *
 * A series without a value (no WAL archived yet, no backup of a type, no successful restore
 * test) is left out. A repository that cannot be read gets drbackup_up 0 and no other
 * series; its error is a warning on stderr and the command still succeeds: metrics are for
 * monitoring, and the alert is drbackup_up == 0. With --output=FILE the text is written to
 * "<FILE>.drbtmp.<pid>" next to it, fsynced and renamed over FILE (mode 0644), so the
 * collector never reads a partial file; "-" or no --output writes to standard output.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "catalog.h"
#include "command.h"
#include "error.h"
#include "fileutil.h"
#include "log.h"
#include "mem.h"
#include "metrics_names.h"
#include "restore.h"
#include "wal_inventory.h"

#define DEFAULT_SEG_SIZE	(16u * 1024u * 1024u)

/* What one repository says about the stanza; valid only when up. */
typedef struct repo_metrics
{
	int			index;
	bool		up;
	bool		has_wal;
	int64_t		last_wal_mtime;
	bool		has_backup[3];	/* by backup_type: full, diff, incr */
	int64_t		last_backup_stop[3];
	int64_t		window;			/* seconds, 0 when nothing is restorable */
	uint64_t	size;
	bool		has_restore_test;
	int64_t		restore_test_time;
} repo_metrics;

/* ---------------------------------------------------------------------------------------
 * Reading one repository
 * ------------------------------------------------------------------------------------- */

static int
size_cb(const storage_info *info, void *arg)
{
	*(uint64_t *) arg += info->size;
	return 0;
}

static void
from_catalog(repo_metrics *m, const catalog *c)
{
	for (size_t i = 0; i < c->nbackups; i++)
	{
		const catalog_backup *b = &c->backups[i];
		const catalog_restore_test *rt = &b->restore_test;

		if ((int) b->type >= 0 && (int) b->type < 3 &&
			(!m->has_backup[b->type] || b->stop_time > m->last_backup_stop[b->type]))
		{
			m->has_backup[b->type] = true;
			m->last_backup_stop[b->type] = b->stop_time;
		}
		if (rt->present && rt->success &&
			(!m->has_restore_test || rt->time > m->restore_test_time))
		{
			m->has_restore_test = true;
			m->restore_test_time = rt->time;
		}
	}
}

static void
from_inventory(repo_metrics *m, const wal_inventory *inv)
{
	for (size_t i = 0; i < inv->nsegments; i++)
		if (!m->has_wal || inv->segments[i].mtime > m->last_wal_mtime)
		{
			m->has_wal = true;
			m->last_wal_mtime = inv->segments[i].mtime;
		}
	for (size_t i = 0; i < inv->nothers; i++)
		if (inv->others[i].w.kind == WAL_PARTIAL &&
			(!m->has_wal || inv->others[i].mtime > m->last_wal_mtime))
		{
			m->has_wal = true;
			m->last_wal_mtime = inv->others[i].mtime;
		}
}

/* Fill m from repository m->index; -1 with err set (naming the repository) when it fails. */
static int
read_repo(const config_t *cfg, const char *stanza, repo_metrics *m)
{
	archive_repo r;
	catalog		c;
	wal_inventory inv;
	const catalog_backup *latest;
	restore_window w;
	uint32_t	seg_size = DEFAULT_SEG_SIZE;
	char	   *prefix;
	int			rc = -1;

	memset(&r, 0, sizeof(r));
	r.index = m->index;
	r.repo = repo_config_open(cfg, m->index);
	if (r.repo == NULL)
		return -1;
	catalog_init(&c, stanza);
	memset(&inv, 0, sizeof(inv));
	if (stanza_info_read(r.repo, stanza, &r.stanza) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
			err_set(DRB_ERR_STANZA, "repository %d has no record of stanza '%s' (run "
					"stanza-create)", m->index, stanza);
		goto out;
	}
	catalog_free(&c);
	if (catalog_read(r.repo, stanza, &c) != 0)
	{
		err_wrap("repository %d: unable to read the catalog of stanza '%s'", m->index, stanza);
		catalog_init(&c, stanza);
		goto out;
	}
	latest = catalog_latest(&c, -1);
	if (latest && latest->wal_segment_size != 0)
		seg_size = latest->wal_segment_size;
	if (wal_inventory_load(&r, seg_size, &inv) != 0)
	{
		memset(&inv, 0, sizeof(inv));
		goto out;
	}
	prefix = xasprintf("stanza/%s/", stanza);
	rc = storage_list(repo_storage(r.repo), prefix, size_cb, &m->size);
	if (rc != 0)
		err_wrap("repository %d: unable to list '%s'", m->index, prefix);
	free(prefix);
	if (rc != 0)
		goto out;

	from_catalog(m, &c);
	from_inventory(m, &inv);
	if (restore_window_get(&c, &inv, &w))
		m->window = w.latest > w.earliest ? w.latest - w.earliest : 0;
	m->up = true;
	rc = 0;
out:
	wal_inventory_free(&inv);
	catalog_free(&c);
	repo_close(r.repo);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * Prometheus text
 * ------------------------------------------------------------------------------------- */

/* A label value with '\', '"' and newline escaped as the text format requires. */
static void
label_value(buf_t *b, const char *v)
{
	for (; *v; v++)
	{
		if (*v == '\\')
			buf_append_str(b, "\\\\");
		else if (*v == '"')
			buf_append_str(b, "\\\"");
		else if (*v == '\n')
			buf_append_str(b, "\\n");
		else
			buf_append(b, v, 1);
	}
}

static void
family(buf_t *b, const char *name, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* name{stanza="S",repo="N"[,type="T"]} value */
static void
series(buf_t *b, const char *name, const char *stanza, int repo, const char *type,
	   int64_t value)
{
	buf_printf(b, "%s{stanza=\"", name);
	label_value(b, stanza);
	buf_printf(b, "\",repo=\"%d\"", repo);
	if (type)
		buf_printf(b, ",type=\"%s\"", type);
	buf_printf(b, "} %" PRId64 "\n", value);
}

/* Seconds from then to now; 0 when then lies in the future (clock skew). */
static int64_t
age(int64_t now, int64_t then)
{
	return now > then ? now - then : 0;
}

static void
render(buf_t *b, const char *stanza, const repo_metrics *m, int n, int64_t now)
{
	static const backup_type types[] = {BACKUP_FULL, BACKUP_DIFF, BACKUP_INCR};

	family(b, "drbackup_up", "1 when the repository could be read, else 0 (its other "
		   "series are then absent).");
	for (int i = 0; i < n; i++)
		series(b, "drbackup_up", stanza, m[i].index, NULL, m[i].up ? 1 : 0);

	family(b, "drbackup_last_archived_wal_age_seconds", "Seconds since the newest WAL "
		   "segment in the repository was stored (RPO exposure).");
	for (int i = 0; i < n; i++)
		if (m[i].up && m[i].has_wal)
			series(b, "drbackup_last_archived_wal_age_seconds", stanza, m[i].index, NULL,
				   age(now, m[i].last_wal_mtime));

	family(b, "drbackup_last_backup_age_seconds", "Seconds since the newest backup of each "
		   "type in the repository ended.");
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
			if (m[i].up && m[i].has_backup[types[k]])
				series(b, "drbackup_last_backup_age_seconds", stanza, m[i].index,
					   backup_type_name(types[k]), age(now, m[i].last_backup_stop[types[k]]));

	family(b, "drbackup_recoverable_window_seconds", METRICS_HELP_WINDOW);
	for (int i = 0; i < n; i++)
		if (m[i].up)
			series(b, "drbackup_recoverable_window_seconds", stanza, m[i].index, NULL,
				   m[i].window);

	family(b, "drbackup_repo_size_bytes", "Bytes stored for the stanza in the repository "
		   "(backups, WAL archive, records).");
	for (int i = 0; i < n; i++)
		if (m[i].up)
			series(b, "drbackup_repo_size_bytes", stanza, m[i].index, NULL, (int64_t) m[i].size);

	family(b, "drbackup_restore_test_last_success_timestamp_seconds",
		   METRICS_HELP_RESTORE_TEST_LAST_SUCCESS);
	for (int i = 0; i < n; i++)
		if (m[i].up && m[i].has_restore_test)
			series(b, "drbackup_restore_test_last_success_timestamp_seconds", stanza,
				   m[i].index, NULL, m[i].restore_test_time);
}

/* ---------------------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------------------- */

static int
write_stdout(const buf_t *text)
{
	if (fwrite(text->data, 1, text->len, stdout) != text->len || fflush(stdout) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to write the metrics to standard output: %s",
					   strerror(errno));
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------- */

int
cmd_metrics(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	const char *output = cfg_str(cfg, "output");
	repo_metrics m[REPO_MAX];
	int			idx[REPO_MAX];
	int			n;
	buf_t		text;
	int			rc;

	if (stanza == NULL || !stanza_name_valid(stanza))
		return err_set(DRB_ERR_USAGE, "metrics needs a valid --stanza=NAME");
	if (output && (strcmp(output, "text") == 0 || strcmp(output, "json") == 0))
		return err_set(DRB_ERR_USAGE, "metrics writes Prometheus text: --output names the file "
					   "to write (an absolute path, or - for standard output), not a format "
					   "('%s')", output);

	memset(m, 0, sizeof(m));
	n = repo_config_selected(cfg, true, idx);
	for (int i = 0; i < n; i++)
	{
		m[i].index = idx[i];
		if (read_repo(cfg, stanza, &m[i]) != 0)
		{
			log_warn("metrics: repository %d reported as down: %s", idx[i], err_msg());
			err_clear();
		}
	}

	buf_init(&text);
	render(&text, stanza, m, n, (int64_t) time(NULL));
	if (output == NULL || strcmp(output, "-") == 0)
		rc = write_stdout(&text);
	else if ((rc = file_write_atomic(output, text.data, text.len, 0644)) != 0)
		err_wrap("unable to write the metrics file '%s'", output);
	buf_free(&text);
	return rc;
}
