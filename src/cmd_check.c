/*
 * cmd_check.c — check: prove the set-up works end to end, one line per check.
 *
 *   drbackup --stanza=S check [--repo=N] [--archive-timeout=SECONDS]
 *
 * In this order (docs/check-and-metrics.md):
 *   config                    the configuration parsed (we would not be here otherwise)
 *   repoN open                per repository: key unwrapped, stanza record read
 *   repoN write/read/delete   a probe object "stanza/<s>/check/probe-<host>-<pid>" written
 *                             through the pipeline, read back and compared, removed and
 *                             confirmed gone
 *   cluster                   the running cluster is the one recorded for the stanza
 *                             (system identifier, major version) in every open repository,
 *                             and pg1-path is its data directory
 *   archive_mode              on or always
 *   archive_command           calls drbackup archive-push %p for this stanza
 *   wal switch                a little WAL written, then pg_switch_wal()
 *   repoN wal archived        that segment reached the repository within archive-timeout
 *
 * Each line is "<check>: ok (<detail>)", "<check>: error: <reason>" or "<check>: not run:
 * <why>" (a check that needs an earlier one that failed). Checks after a failure still run
 * when they can. The command fails with the error kind of the first failure and the one
 * line "check failed: N of M checks"; not-run checks count as failed.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "pg.h"
#include "repo_config.h"
#include "stanza.h"
#include "timeutil.h"

/* The tally of one run: how many checks, how many did not pass, the first failure's kind. */
typedef struct check_tally
{
	int			total;
	int			failed;
	drb_err		first_kind;
} check_tally;

/* One selected repository and how far its checks got. */
typedef struct check_repo
{
	archive_repo ar;			/* ar.repo NULL when it could not be opened */
	bool		writable;		/* the probe round trip passed */
	bool		wal_done;		/* its wal archived check has a result */
} check_repo;

/* ---------------------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------------------- */

static void
report_line(const char *name, const char *verdict, const char *fmt, va_list ap)
{
	char	   *detail = NULL;

	if (fmt)
	{
		if (vasprintf(&detail, fmt, ap) < 0)
			detail = NULL;
	}
	if (strcmp(verdict, "ok") == 0 && detail)
		printf("%s: ok (%s)\n", name, detail);
	else if (strcmp(verdict, "ok") == 0)
		printf("%s: ok\n", name);
	else
		printf("%s: %s: %s\n", name, verdict, detail ? detail : "(no detail)");
	fflush(stdout);
	free(detail);
}

/* Print "<name>: ok (<detail>)" (no parenthesis when fmt is NULL). */
static void
check_ok(check_tally *t, const char *name, const char *fmt,...) __attribute__((format(printf, 3, 4)));
static void
check_ok(check_tally *t, const char *name, const char *fmt,...)
{
	va_list		ap;

	t->total++;
	va_start(ap, fmt);
	report_line(name, "ok", fmt, ap);
	va_end(ap);
}

/* Print "<name>: error: <reason>" and count the failure. */
static void
check_fail(check_tally *t, const char *name, drb_err kind, const char *fmt,...) __attribute__((format(printf, 4, 5)));
static void
check_fail(check_tally *t, const char *name, drb_err kind, const char *fmt,...)
{
	va_list		ap;

	t->total++;
	t->failed++;
	if (t->first_kind == DRB_OK)
		t->first_kind = kind;
	va_start(ap, fmt);
	report_line(name, "error", fmt, ap);
	va_end(ap);
}

/* check_fail with the current error (kind and message), which is then cleared. */
static void
check_fail_err(check_tally *t, const char *name)
{
	drb_err		kind = err_kind() == DRB_OK ? DRB_ERR_INTERNAL : err_kind();

	check_fail(t, name, kind, "%s", err_msg());
	err_clear();
}

/* Print "<name>: not run: <why>"; counts as not passed (an earlier failure set the kind). */
static void
check_skip(check_tally *t, const char *name, const char *why)
{
	t->total++;
	t->failed++;
	if (t->first_kind == DRB_OK)
		t->first_kind = DRB_ERR_INTERNAL;
	printf("%s: not run: %s\n", name, why);
	fflush(stdout);
}

/* ---------------------------------------------------------------------------------------
 * Repositories
 * ------------------------------------------------------------------------------------- */

/* Open repository r->ar.index and read the stanza record; 0 or -1 with err set. */
static int
repo_open_stanza(const config_t *cfg, const char *stanza, check_repo *r)
{
	r->ar.repo = repo_config_open(cfg, r->ar.index);
	if (r->ar.repo == NULL)
		return -1;
	if (stanza_info_read(r->ar.repo, stanza, &r->ar.stanza) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
			err_set(DRB_ERR_STANZA, "repository %d has no record of stanza '%s' (run "
					"stanza-create)", r->ar.index, stanza);
		else
			err_wrap("repository %d: unable to read the record of stanza '%s'", r->ar.index,
					 stanza);
		repo_close(r->ar.repo);
		r->ar.repo = NULL;
		return -1;
	}
	return 0;
}

/* "stanza/<s>/check/probe-<host>-<pid>", the host name reduced to path-safe characters. */
static char *
probe_path(const char *stanza)
{
	char		host[256] = "";

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	for (char *p = host; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '.' && *p != '-' && *p != '_')
			*p = '_';
	return xasprintf("stanza/%s/check/probe-%s-%ld", stanza, host, (long) getpid());
}

/*
 * Write a probe object through the pipeline, read it back and compare, remove it and
 * confirm it is gone. The probe is removed again whatever failed after it was written.
 */
static int
probe_round_trip(repo_t *repo, const char *path)
{
	storage_t  *st = repo_storage(repo);
	char	   *data = xasprintf("drbackup check probe %s, written %lld\n", path,
								 (long long) time(NULL));
	size_t		len = strlen(data);
	buf_t		got;
	storage_info info;
	int			rc = -1;

	buf_init(&got);
	if (repo_put_buf(repo, path, data, len, NULL) != 0)
	{
		err_wrap("unable to write the probe object '%s'", path);
		goto out;
	}
	if (repo_get_buf(repo, path, &got, NULL) != 0)
	{
		err_wrap("wrote the probe object '%s' but unable to read it back", path);
		storage_remove(st, path);
		goto out;
	}
	if (got.len != len || memcmp(got.data, data, len) != 0)
	{
		err_set(DRB_ERR_INTEGRITY, "the probe object '%s' read back differs from what was "
				"written (%zu bytes written, %zu read)", path, len, got.len);
		storage_remove(st, path);
		goto out;
	}
	if (storage_remove(st, path) != 0)
	{
		err_wrap("wrote and read the probe object '%s' but unable to delete it", path);
		goto out;
	}
	if (storage_head(st, path, &info) == 0)
	{
		err_set(DRB_ERR_STORAGE, "the probe object '%s' is still there after it was deleted",
				path);
		goto out;
	}
	if (err_kind() != DRB_ERR_NOT_FOUND)
	{
		err_wrap("unable to confirm the probe object '%s' was deleted", path);
		goto out;
	}
	err_clear();
	rc = 0;
out:
	buf_free(&got);
	free(data);
	return rc;
}

static void
check_repositories(const config_t *cfg, const char *stanza, check_repo *repos, int n,
				   check_tally *t)
{
	char	   *probe = probe_path(stanza);

	for (int i = 0; i < n; i++)
	{
		check_repo *r = &repos[i];
		char		name[64];

		snprintf(name, sizeof(name), "repo%d open", r->ar.index);
		if (repo_open_stanza(cfg, stanza, r) != 0)
			check_fail_err(t, name);
		else
			check_ok(t, name, "%s, stanza '%s': PostgreSQL %d, system identifier %" PRIu64,
					 repo_storage(r->ar.repo)->description, stanza, r->ar.stanza.pg_version,
					 r->ar.stanza.system_id);

		snprintf(name, sizeof(name), "repo%d write/read/delete", r->ar.index);
		if (r->ar.repo == NULL)
			check_skip(t, name, "the repository could not be opened");
		else if (probe_round_trip(r->ar.repo, probe) != 0)
			check_fail_err(t, name);
		else
		{
			r->writable = true;
			check_ok(t, name, "probe object %s", probe);
		}
	}
	free(probe);
}

/* ---------------------------------------------------------------------------------------
 * The cluster and its archiving settings
 * ------------------------------------------------------------------------------------- */

/*
 * The running cluster against each open repository's stanza record, then pg1-path against
 * its data directory. Returns true when it matches.
 */
static bool
check_cluster(pg_conn *pc, const config_t *cfg, const char *stanza, const check_repo *repos,
			  int n, check_tally *t)
{
	pg_cluster_info ci;
	buf_t		where;
	int			compared = 0;

	if (pg_cluster_identify(pc, &ci) != 0)
	{
		check_fail_err(t, "cluster");
		return false;
	}
	buf_init(&where);
	for (int i = 0; i < n; i++)
	{
		const archive_repo *ar = &repos[i].ar;

		if (ar->repo == NULL)
			continue;
		if (ar->stanza.system_id != ci.system_id || ar->stanza.pg_version != ci.version_major)
		{
			check_fail(t, "cluster", DRB_ERR_STANZA,
					   "the running cluster (system identifier %" PRIu64 ", PostgreSQL %d, data "
					   "directory '%s') is not the one recorded for stanza '%s' in repository %d "
					   "(system identifier %" PRIu64 ", PostgreSQL %d): pg1-* points at another "
					   "cluster, or the stanza belongs to another cluster",
					   ci.system_id, ci.version_major, ci.data_directory, stanza, ar->index,
					   ar->stanza.system_id, ar->stanza.pg_version);
			buf_free(&where);
			return false;
		}
		buf_printf(&where, "%srepo%d", compared++ ? ", " : "", ar->index);
	}
	if (pg_cluster_check(pc, cfg, &ci) != 0)
	{
		check_fail_err(t, "cluster");
		buf_free(&where);
		return false;
	}
	if (compared == 0)
	{
		check_skip(t, "cluster", "no repository could be opened to compare the cluster with");
		buf_free(&where);
		return false;
	}
	check_ok(t, "cluster", "PostgreSQL %d.%d, system identifier %" PRIu64 ", as recorded in %s",
			 ci.version_major, ci.version_num % 10000, ci.system_id, buf_cstr(&where));
	buf_free(&where);
	return true;
}

static bool
check_archive_mode(pg_conn *pc, check_tally *t)
{
	char	   *mode;
	bool		ok;

	if (pg_query_value(pc, "SHOW archive_mode", &mode) != 0)
	{
		err_wrap("unable to read archive_mode");
		check_fail_err(t, "archive_mode");
		return false;
	}
	ok = strcmp(mode, "on") == 0 || strcmp(mode, "always") == 0;
	if (ok)
		check_ok(t, "archive_mode", "%s", mode);
	else
		check_fail(t, "archive_mode", DRB_ERR_CONFIG, "archive_mode is '%s': set archive_mode = "
				   "on and restart PostgreSQL", mode);
	free(mode);
	return ok;
}

/*
 * The stanza an archive_command passes: "--stanza=S", "--stanza S" (either quoted with ' or
 * "), or DRBACKUP_STANZA=S in its environment. NULL when it names none; caller frees.
 */
static char *
command_stanza(const char *cmd)
{
	static const char *const keys[] = {"--stanza", "DRBACKUP_STANZA="};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
	{
		const char *p = strstr(cmd, keys[k]);
		const char *end;

		if (p == NULL)
			continue;
		p += strlen(keys[k]);
		if (k == 0)
		{
			if (*p == '=')
				p++;
			else if (*p == ' ' || *p == '\t')
				while (*p == ' ' || *p == '\t')
					p++;
			else
				continue;
		}
		if (*p == '\'' || *p == '"')
			p++;
		end = p;
		while (*end && !isspace((unsigned char) *end) && strchr("'\";|&", *end) == NULL)
			end++;
		if (end > p)
			return xstrndup(p, (size_t) (end - p));
	}
	return NULL;
}

/*
 * Whether cmd has the word as one of its words (split at blanks and ; | &, quotes
 * dropped); with program set, a word whose last path component is it also counts
 * ("/usr/bin/drbackup" for "drbackup", but not "/tmp/drbackup-x/cp").
 */
static bool
command_has_word(const char *cmd, const char *word, bool program)
{
	const char *p = cmd;

	while (*p)
	{
		const char *start;
		const char *end;
		const char *base;

		while (*p && (isspace((unsigned char) *p) || strchr(";|&'\"", *p)))
			p++;
		start = p;
		while (*p && !isspace((unsigned char) *p) && strchr(";|&'\"", *p) == NULL)
			p++;
		end = p;
		base = start;
		if (program)
			for (const char *q = start; q < end; q++)
				if (*q == '/')
					base = q + 1;
		if (end > base && (size_t) (end - base) == strlen(word) &&
			strncmp(base, word, (size_t) (end - base)) == 0)
			return true;
	}
	return false;
}

/* What is wrong with archive_command for stanza, or NULL when it looks right (caller frees). */
static char *
archive_command_problem(const char *cmd, const char *stanza)
{
	char	   *given;
	char	   *why = NULL;
	const char *example = "drbackup --stanza=%s archive-push %%p";
	char	   *ex = xasprintf(example, stanza);

	if (cmd[0] == '\0' || strcmp(cmd, "(disabled)") == 0)
		why = xasprintf("archive_command is not set: set it to '%s'", ex);
	else if (!command_has_word(cmd, "drbackup", true))
		why = xasprintf("archive_command '%s' does not call drbackup: set it to '%s'", cmd, ex);
	else if (!command_has_word(cmd, "archive-push", false))
		why = xasprintf("archive_command '%s' does not run archive-push: set it to '%s'", cmd, ex);
	else if (strstr(cmd, "%p") == NULL)
		why = xasprintf("archive_command '%s' does not pass the WAL file (%%p) to archive-push",
						cmd);
	else if ((given = command_stanza(cmd)) == NULL)
		why = xasprintf("archive_command '%s' names no stanza: add --stanza=%s", cmd, stanza);
	else
	{
		if (strcmp(given, stanza) != 0)
			why = xasprintf("archive_command '%s' archives to stanza '%s', not '%s'", cmd, given,
							stanza);
		free(given);
	}
	free(ex);
	return why;
}

static bool
check_archive_command(pg_conn *pc, const char *stanza, check_tally *t)
{
	char	   *cmd = NULL;
	char	   *lib = NULL;
	char	   *why;
	bool		ok;

	/* PostgreSQL 15+: an archive_library replaces archive_command */
	if (pg_query_value(pc, "SELECT coalesce((SELECT setting FROM pg_catalog.pg_settings "
					   "WHERE name = 'archive_library'), '')", &lib) != 0 ||
		pg_query_value(pc, "SHOW archive_command", &cmd) != 0)
	{
		err_wrap("unable to read archive_command");
		check_fail_err(t, "archive_command");
		free(lib);
		return false;
	}
	if (lib[0] != '\0')
		why = xasprintf("archive_library is set ('%s'): PostgreSQL ignores archive_command; "
						"reset archive_library", lib);
	else
		why = archive_command_problem(cmd, stanza);
	ok = why == NULL;
	if (!ok)
		check_fail(t, "archive_command", DRB_ERR_CONFIG, "%s", why);
	else
		check_ok(t, "archive_command", "%s", cmd);
	free(why);
	free(cmd);
	free(lib);
	return ok;
}

/*
 * Write a little WAL (a non-transactional logical message, so the switch always closes a
 * segment holding something new) and switch; name receives the segment switched away from.
 */
static bool
check_wal_switch(pg_conn *pc, check_tally *t, wal_name *w)
{
	char	   *lsn = NULL;
	char	   *seg = NULL;

	if (pg_query_value(pc, "SELECT pg_catalog.pg_logical_emit_message(false, 'drbackup', "
					   "'check')::text", &lsn) != 0 ||
		pg_query_value(pc, "SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal())",
					   &seg) != 0)
	{
		err_wrap("unable to switch WAL");
		check_fail_err(t, "wal switch");
		free(lsn);
		return false;
	}
	free(lsn);
	if (wal_name_parse(seg, w) != 0 || w->kind != WAL_SEGMENT)
	{
		err_clear();
		check_fail(t, "wal switch", DRB_ERR_PG, "pg_switch_wal() gave '%s', not a WAL "
				   "segment name", seg);
		free(seg);
		return false;
	}
	check_ok(t, "wal switch", "segment %s", seg);
	free(seg);
	return true;
}

/* pg_stat_archiver's last failure, for a segment that did not arrive ("" when none). */
static char *
archiver_last_failure(pg_conn *pc)
{
	char	   *v = NULL;

	if (pg_query_value(pc, "SELECT coalesce('; pg_stat_archiver: last failure archiving ' || "
					   "last_failed_wal || ' at ' || last_failed_time::text, '') "
					   "FROM pg_catalog.pg_stat_archiver", &v) != 0)
	{
		err_clear();
		return xstrdup("");
	}
	return v;
}

/*
 * Wait until segment w is in every repository that passed its probe, polling each with
 * one narrow LIST every 200 ms, for up to timeout seconds; one line per repository.
 */
static void
check_wal_arrival(pg_conn *pc, check_repo *repos, int n, const wal_name *w, int timeout,
				  check_tally *t)
{
	double		start = clock_seconds();
	int			pending = 0;
	char		name[64];

	for (int i = 0; i < n; i++)
		if (repos[i].writable)
			pending++;
	for (;;)
	{
		double		elapsed = clock_seconds() - start;

		for (int i = 0; i < n; i++)
		{
			check_repo *r = &repos[i];
			bool		found = false;
			uint8_t		sha[32];

			if (!r->writable || r->wal_done)
				continue;
			snprintf(name, sizeof(name), "repo%d wal archived", r->ar.index);
			if (archive_find(&r->ar, w, &found, sha, NULL) != 0)
			{
				err_wrap("unable to look for WAL segment %s in repository %d", w->name,
						 r->ar.index);
				check_fail_err(t, name);
			}
			else if (found)
				check_ok(t, name, "%s after %.1f s", w->name, elapsed);
			else if (elapsed >= timeout)
			{
				char	   *failure = archiver_last_failure(pc);

				check_fail(t, name, DRB_ERR_STORAGE, "WAL segment %s did not reach repository "
						   "%d within archive-timeout (%d s): check archive_command and the "
						   "PostgreSQL log%s", w->name, r->ar.index, timeout, failure);
				free(failure);
			}
			else
				continue;
			r->wal_done = true;
			pending--;
		}
		if (pending == 0)
			break;
		usleep(200 * 1000);
	}
}

/* ---------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------- */

int
cmd_check(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	const char *file = cfg_str(cfg, "config");
	check_repo	repos[REPO_MAX];
	int			idx[REPO_MAX];
	int			n;
	check_tally t = {0};
	pg_conn    *pc;
	bool		cluster_ok = false;
	bool		mode_ok = false;
	bool		command_ok = false;
	bool		switched = false;
	wal_name	w;
	char		name[64];

	if (stanza == NULL || !stanza_name_valid(stanza))
		return err_set(DRB_ERR_USAGE, "check needs a valid --stanza=NAME");

	if (file && access(file, R_OK) == 0)
		check_ok(&t, "config", "%s", file);
	else
		check_ok(&t, "config", "%s not present: command line and environment only",
				 file ? file : "no file");

	memset(repos, 0, sizeof(repos));
	n = repo_config_selected(cfg, true, idx);
	for (int i = 0; i < n; i++)
		repos[i].ar.index = idx[i];
	check_repositories(cfg, stanza, repos, n, &t);

	pc = pg_connect(cfg);
	if (pc == NULL)
	{
		check_fail_err(&t, "cluster");
		check_skip(&t, "archive_mode", "no connection to PostgreSQL");
		check_skip(&t, "archive_command", "no connection to PostgreSQL");
	}
	else
	{
		cluster_ok = check_cluster(pc, cfg, stanza, repos, n, &t);
		mode_ok = check_archive_mode(pc, &t);
		command_ok = check_archive_command(pc, stanza, &t);
	}

	if (!cluster_ok)
		check_skip(&t, "wal switch", pc ? "the cluster does not match the stanza" :
				   "no connection to PostgreSQL");
	else if (!mode_ok || !command_ok)
		check_skip(&t, "wal switch", "PostgreSQL does not archive to drbackup for this stanza");
	else
		switched = check_wal_switch(pc, &t, &w);

	if (switched)
		check_wal_arrival(pc, repos, n, &w, (int) cfg_int(cfg, "archive-timeout"), &t);
	for (int i = 0; i < n; i++)
	{
		if (repos[i].wal_done)
			continue;
		snprintf(name, sizeof(name), "repo%d wal archived", repos[i].ar.index);
		check_skip(&t, name, !switched ? "no WAL switch" :
				   repos[i].ar.repo == NULL ? "the repository could not be opened" :
				   "the repository could not be written");
	}

	pg_disconnect(pc);
	for (int i = 0; i < n; i++)
		repo_close(repos[i].ar.repo);
	if (t.failed > 0)
		return err_set(t.first_kind, "check failed: %d of %d checks", t.failed, t.total);
	return 0;
}
