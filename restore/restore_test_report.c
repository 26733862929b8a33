/*
 * restore_test_report.c — what restore-test leaves behind (restore_test.h): the JSON
 * report, the Prometheus text file for node_exporter's text-file collector, and the
 * record in the catalog that `info` shows. docs/operations.md describes each field and
 * metric for users.
 *
 * Both files are replaced atomically (a temporary file in the same directory, fsynced,
 * renamed, the directory fsynced): a collector or a script never reads half a file.
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

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "fileutil.h"
#include "jsonutil.h"
#include "lock.h"
#include "log.h"
#include "mem.h"
#include "metrics_names.h"
#include "restore_test.h"

#define FAILED_CHECK_MAX	300		/* characters of the failure kept in the catalog */

const char *const rt_phase_names[RT_PHASE_COUNT] = {"choose", "restore", "replay", "checks"};

double
rt_total_seconds(const rt_result *r)
{
	double		total = 0;

	for (int i = 0; i < RT_PHASE_COUNT; i++)
		if (r->phase_ran[i])
			total += r->phase[i];
	return total;
}

/* ---------------------------------------------------------------------------------------
 * The JSON report
 * ------------------------------------------------------------------------------------- */

static json_t *
us_time(int64_t us)
{
	char		out[48];

	rt_format_us(us, out, sizeof(out));
	return json_string(out);
}

static json_t *
report_json(const rt_result *r)
{
	const restore_outcome *o = &r->outcome;
	json_t	   *root = json_object();
	json_t	   *target = json_object();
	json_t	   *reached = json_object();
	json_t	   *phases = json_object();
	json_t	   *checks = json_array();

	json_object_set_new(root, "stanza", json_string(r->stanza));
	json_object_set_new(root, "success", json_boolean(r->success));
	json_object_set_new(root, "failed-check", jval_text(r->failed_check));
	json_object_set_new(root, "error", jval_text(r->error));
	json_object_set_new(root, "started", jval_utc(r->started));
	json_object_set_new(root, "finished", jval_utc(r->finished));

	json_object_set_new(target, "type", json_string(r->time_target ? "time" : "latest"));
	json_object_set_new(target, "random", json_boolean(r->random));
	json_object_set_new(target, "time", r->time_target ? us_time(r->target_us) : json_null());
	json_object_set_new(root, "target", target);

	if (o->label)
	{
		json_object_set_new(root, "backup", json_pack("{s:s, s:s, s:i, s:i, s:o, s:o, s:i, s:b}",
													  "label", o->label,
													  "type", backup_type_name(o->type),
													  "repo", o->repo,
													  "timeline", (int) o->timeline,
													  "stop-time", jval_utc(o->stop_time),
													  "stop-lsn", jval_lsn(o->stop_lsn),
													  "pg-version", o->pg_version,
													  "data-checksums", r->data_checksums));
		json_object_set_new(root, "window", json_pack("{s:i, s:o, s:o, s:I}",
													  "repo", o->repo,
													  "earliest", jval_utc(o->earliest),
													  "latest", jval_utc(o->latest),
													  "seconds", (json_int_t) (o->latest - o->earliest)));
	}
	else
	{
		json_object_set_new(root, "backup", json_null());
		json_object_set_new(root, "window", json_null());
	}

	json_object_set_new(reached, "stop", r->stop ? json_string(r->stop) : json_null());
	json_object_set_new(reached, "last-replayed-commit",
						r->replay_known ? us_time(r->replay_us) : json_null());
	json_object_set_new(reached, "next-commit",
						r->log.stopped ? us_time(r->log.stop_time_us) : json_null());
	json_object_set_new(reached, "next-xid",
						r->log.stopped ? json_integer(r->log.stop_xid) : json_null());
	json_object_set_new(reached, "redo-done-lsn",
						r->log.redo_done ? jval_lsn(r->log.redo_done_lsn) : json_null());
	json_object_set_new(reached, "new-timeline",
						r->log.new_timeline ? json_integer(r->log.new_timeline) : json_null());
	json_object_set_new(root, "reached", reached);

	for (int i = 0; i < RT_PHASE_COUNT; i++)
		if (r->phase_ran[i])
			json_object_set_new(phases, rt_phase_names[i], json_real(r->phase[i]));
	json_object_set_new(root, "phases", phases);
	json_object_set_new(root, "rto-seconds", json_real(rt_total_seconds(r)));
	json_object_set_new(root, "restored", json_pack("{s:I, s:I, s:I, s:I}",
													"files", (json_int_t) o->files.files,
													"bytes", (json_int_t) o->files.bytes,
													"fetched-bytes", (json_int_t) o->files.fetched_bytes,
													"cluster-size", (json_int_t) o->size));
	for (size_t i = 0; i < r->nchecks; i++)
		json_array_append_new(checks, json_pack("{s:o, s:b, s:f, s:o}",
												"name", jval_text(r->checks[i].name),
												"ok", r->checks[i].ok,
												"seconds", r->checks[i].seconds,
												"message", jval_text(r->checks[i].message)));
	json_object_set_new(root, "checks", checks);
	json_object_set_new(root, "scratch", json_pack("{s:o, s:b, s:i}",
												   "path", jval_text(r->scratch),
												   "kept", r->kept, "port", r->port));
	return root;
}

int
rt_report_write(const rt_result *r, const char *path)
{
	json_t	   *j = report_json(r);
	char	   *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	char	   *with_nl;
	int			rc;

	json_decref(j);
	if (text == NULL)
		return err_set(DRB_ERR_INTERNAL, "unable to encode the restore-test report");
	with_nl = xasprintf("%s\n", text);
	free(text);
	rc = file_write_atomic(path, with_nl, strlen(with_nl), 0644);
	free(with_nl);
	if (rc != 0)
		err_wrap("unable to write the restore-test report '%s'", path);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * The Prometheus text file
 * ------------------------------------------------------------------------------------- */

/* A label value: backslash, double quote and line feed escaped. */
static void
label_value(buf_t *b, const char *v)
{
	for (const char *p = v; *p; p++)
	{
		if (*p == '\\' || *p == '"')
		{
			buf_append_str(b, "\\");
			buf_append(b, p, 1);
		}
		else if (*p == '\n')
			buf_append_str(b, "\\n");
		else
			buf_append(b, p, 1);
	}
}

static void
metric_head(buf_t *b, const char *name, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* name{stanza="S"[,key="value"]} */
static void
metric_series(buf_t *b, const char *name, const char *stanza, const char *key,
			  const char *value)
{
	/* source: these series can share node_exporter's text-file directory with the metrics
	 * command's (same names for the window and the last success): the label keeps them
	 * distinct series */
	buf_printf(b, "%s{source=\"restore-test\",stanza=\"", name);
	label_value(b, stanza);
	if (key)
	{
		buf_printf(b, "\",%s=\"", key);
		label_value(b, value);
	}
	buf_append_str(b, "\"} ");
}

int
rt_metrics_write(const rt_result *r, const char *path, int64_t last_success)
{
	buf_t		b;
	int			rc;

	buf_init(&b);
	metric_head(&b, "drbackup_restore_test_success",
				"1 when the last restore test of the stanza passed every check, else 0.");
	metric_series(&b, "drbackup_restore_test_success", r->stanza, NULL, NULL);
	buf_printf(&b, "%d\n", r->success ? 1 : 0);

	metric_head(&b, "drbackup_restore_test_duration_seconds",
				"Seconds each phase of the last restore test took; phase=\"total\" is their "
				"sum, the measured recovery time.");
	for (int i = 0; i < RT_PHASE_COUNT; i++)
		if (r->phase_ran[i])
		{
			metric_series(&b, "drbackup_restore_test_duration_seconds", r->stanza, "phase",
						  rt_phase_names[i]);
			buf_printf(&b, "%.3f\n", r->phase[i]);
		}
	metric_series(&b, "drbackup_restore_test_duration_seconds", r->stanza, "phase", "total");
	buf_printf(&b, "%.3f\n", rt_total_seconds(r));

	metric_head(&b, "drbackup_restore_test_timestamp_seconds",
				"When the last restore test started (seconds since the epoch).");
	metric_series(&b, "drbackup_restore_test_timestamp_seconds", r->stanza, NULL, NULL);
	buf_printf(&b, "%" PRId64 "\n", r->started);

	/* the HELP texts of the two series the metrics command writes too are the same as
	 * there (archive/metrics.c): node_exporter merges families across files */
	metric_head(&b, "drbackup_restore_test_last_success_timestamp_seconds",
				METRICS_HELP_RESTORE_TEST_LAST_SUCCESS);
	metric_series(&b, "drbackup_restore_test_last_success_timestamp_seconds", r->stanza, NULL,
				  NULL);
	buf_printf(&b, "%" PRId64 "\n", last_success);

	metric_head(&b, "drbackup_restore_test_restored_bytes",
				"Bytes the last restore test wrote into its scratch data directory.");
	metric_series(&b, "drbackup_restore_test_restored_bytes", r->stanza, NULL, NULL);
	buf_printf(&b, "%" PRIu64 "\n", r->outcome.files.bytes);

	if (r->nwindows > 0)
	{
		metric_head(&b, "drbackup_recoverable_window_seconds", METRICS_HELP_WINDOW);
		for (int i = 0; i < r->nwindows; i++)
		{
			char		repo[16];

			snprintf(repo, sizeof(repo), "%d", r->windows[i].repo);
			metric_series(&b, "drbackup_recoverable_window_seconds", r->stanza, "repo", repo);
			buf_printf(&b, "%" PRId64 "\n", r->windows[i].valid
					   ? r->windows[i].latest - r->windows[i].earliest : (int64_t) 0);
		}
	}
	rc = file_write_atomic(path, buf_cstr(&b), b.len, 0644);
	buf_free(&b);
	if (rc != 0)
		err_wrap("unable to write the restore-test metrics '%s'", path);
	return rc;
}

int64_t
rt_metrics_previous_success(const char *path, const char *stanza)
{
	static const char name[] = "drbackup_restore_test_last_success_timestamp_seconds{";
	FILE	   *f = fopen(path, "r");
	char		line[1024];
	char	   *want;
	int64_t		value = 0;

	if (f == NULL)
		return 0;
	want = xasprintf("source=\"restore-test\",stanza=\"%s\"}", stanza);
	while (fgets(line, sizeof(line), f))
	{
		char	   *end;

		if (strncmp(line, name, sizeof(name) - 1) != 0 ||
			strncmp(line + sizeof(name) - 1, want, strlen(want)) != 0)
			continue;
		value = strtoll(line + sizeof(name) - 1 + strlen(want), &end, 10);
		if (value < 0)
			value = 0;
	}
	fclose(f);
	free(want);
	return value;
}

/* ---------------------------------------------------------------------------------------
 * The catalog
 * ------------------------------------------------------------------------------------- */

/* The backup lock, retried once a second for up to wait seconds while another holds it. */
static drb_lock *
lock_wait(const config_t *cfg, const char *stanza, int wait)
{
	for (int i = 0;; i++)
	{
		drb_lock   *lock = lock_acquire(cfg_str(cfg, "lock-path"), stanza, "backup",
										"backup, expire or restore-test record");

		if (lock || err_kind() != DRB_ERR_LOCK || i >= wait)
			return lock;
		sleep(1);
	}
}

int
rt_catalog_record(const config_t *cfg, restore_repos *rr, const rt_result *r, int wait,
				  int64_t *last_success)
{
	const restore_outcome *o = &r->outcome;
	repo_t	   *repo;
	drb_lock   *lock;
	catalog		c;
	catalog_backup *b;
	int			rc = -1;

	*last_success = 0;
	if (o->label == NULL || o->repo_pos < 0 || rr == NULL ||
		(repo = rr->ctx.repos[o->repo_pos].repo) == NULL)
		return 0;
	if ((lock = lock_wait(cfg, r->stanza, wait)) == NULL)
		return err_wrap("unable to record the restore test in the catalog of repository %d",
						o->repo);
	if (catalog_read(repo, r->stanza, &c) != 0)
	{
		err_wrap("unable to record the restore test in the catalog of repository %d", o->repo);
		lock_release(lock);
		return -1;
	}
	if ((b = catalog_find(&c, o->label)) == NULL)
	{
		log_warn("backup %s left the catalog of repository %d during the restore test "
				 "(expired?): its result is not recorded there", o->label, o->repo);
		rc = 0;
	}
	else
	{
		catalog_restore_test *t = &b->restore_test;

		free(t->target);
		free(t->failed_check);
		t->present = true;
		t->success = r->success;
		t->time = r->started;
		t->duration = rt_total_seconds(r);
		if (r->time_target)
			t->target = xasprintf("%s%s%s", r->target_text, r->random ? " (random)" : "",
								  r->stop && strcmp(r->stop, "end-of-archive") == 0
								  ? ", reached as the end of the archive" : "");
		else
			t->target = xstrdup("the end of the archive");
		t->failed_check = NULL;
		if (!r->success)
		{
			char	   *text = xasprintf("%s: %s", r->failed_check ? r->failed_check : "?",
										 r->error ? r->error : "");

			if (strlen(text) > FAILED_CHECK_MAX)
				strcpy(text + FAILED_CHECK_MAX - 3, "...");
			t->failed_check = text;
		}
		rc = catalog_write(repo, &c);
		if (rc != 0)
			err_wrap("unable to record the restore test in the catalog of repository %d",
					 o->repo);
	}
	for (size_t i = 0; i < c.nbackups; i++)
		if (c.backups[i].restore_test.present && c.backups[i].restore_test.success &&
			c.backups[i].restore_test.time > *last_success)
			*last_success = c.backups[i].restore_test.time;
	catalog_free(&c);
	lock_release(lock);
	return rc;
}
