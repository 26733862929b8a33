/*
 * restore_test.c — `drbackup restore-test`: the automated restore drill (restore_test.h).
 *
 * The phases, each timed (their sum is the measured recovery time):
 *  choose   the repositories read; the target: the end of the archive, --to-time, or a
 *           random moment in the recoverable window of the repository used (--repo, else
 *           the first that can restore); the backup chosen by the restore code
 *  restore  the data directory written into a fresh scratch directory (restore_perform:
 *           every file verified), tablespaces relocated inside it, then the scratch
 *           configuration (restore_test_server.c)
 *  replay   PostgreSQL started there as the cluster's user with the recovery target and
 *           recovery_target_action = promote, until it leaves recovery
 *  checks   the point reached against the target and the archive, pg_amcheck on every
 *           database, each query of --checks, a clean shutdown, pg_checksums
 * The first failure ends the test; the server is stopped in every case; the result goes
 * to the catalog, the JSON report and the Prometheus file; the scratch directory is
 * removed unless --keep.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "restore_test.h"
#include "timeutil.h"

#define CHECKS_FILE_MAX		(1024 * 1024)
#define CATALOG_LOCK_WAIT	60		/* seconds to wait for a backup's lock to record */

/* ---------------------------------------------------------------------------------------
 * The checks file
 * ------------------------------------------------------------------------------------- */

typedef struct rt_query
{
	char	   *sql;
	int			line;			/* where it starts in the file */
} rt_query;

static void
queries_free(rt_query *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i].sql);
	free(q);
}

/*
 * The statements of a SQL file, split on ';' outside quotes ('...', "...") and comments
 * (-- to the end of the line, / * ... * /); statements holding only blanks and comments
 * are skipped.
 */
static int
checks_read(const char *path, rt_query **out, size_t *n)
{
	FILE	   *f = fopen(path, "r");
	char	   *text;
	size_t		len;
	size_t		start = 0;
	int			line = 1,
				start_line = 0;
	bool		code = false;
	char		quote = 0;
	bool		line_comment = false;
	int			block_comment = 0;

	*out = NULL;
	*n = 0;
	if (f == NULL)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_CONFIG,
					   "unable to open the checks file '%s': %m", path);
	text = xmalloc(CHECKS_FILE_MAX + 1);
	len = fread(text, 1, CHECKS_FILE_MAX + 1, f);
	fclose(f);
	if (len > CHECKS_FILE_MAX)
	{
		free(text);
		return err_set(DRB_ERR_CONFIG, "the checks file '%s' is over %d bytes", path,
					   CHECKS_FILE_MAX);
	}
	text[len] = '\0';
	for (size_t i = 0; i <= len; i++)
	{
		char		c = text[i];
		bool		end = c == '\0';

		if (!end && line_comment)
		{
			if (c == '\n')
				line_comment = false;
		}
		else if (!end && block_comment)
		{
			if (c == '*' && text[i + 1] == '/')
				block_comment--, i++;
			else if (c == '/' && text[i + 1] == '*')
				block_comment++, i++;
		}
		else if (!end && quote)
		{
			if (c == quote)
				quote = 0;		/* a doubled quote closes and reopens: same result */
		}
		else if (!end && c == '-' && text[i + 1] == '-')
			line_comment = true, i++;
		else if (!end && c == '/' && text[i + 1] == '*')
			block_comment = 1, i++;
		else if (end || c == ';')
		{
			if (code)
			{
				*out = xrealloc(*out, (*n + 1) * sizeof(rt_query));
				(*out)[*n].sql = xstrndup(text + start, i - start);
				(*out)[*n].line = start_line;
				(*n)++;
			}
			code = false;
			start = i + 1;
		}
		else if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
		{
			if (!code)
			{
				code = true;
				start = i;
				start_line = line;
			}
			if (c == '\'' || c == '"')
				quote = c;
		}
		if (c == '\n')
			line++;
	}
	free(text);
	if (*n == 0)
		return err_set(DRB_ERR_CONFIG, "the checks file '%s' holds no query", path);
	return 0;
}

/* The query on one line, cut to 100 characters, for messages. */
static char *
query_excerpt(const char *sql)
{
	buf_t		b;
	bool		blank = false;

	buf_init(&b);
	for (const char *p = sql; *p && b.len < 100; p++)
	{
		bool		space = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';

		if (space)
		{
			blank = true;
			continue;
		}
		if (blank && b.len > 0)
			buf_append_str(&b, " ");
		blank = false;
		buf_append(&b, p, 1);
	}
	if (strlen(sql) > 100 && b.len >= 100)
		buf_append_str(&b, "...");
	return (char *) buf_cstr(&b);
}

/* ---------------------------------------------------------------------------------------
 * The result as it goes
 * ------------------------------------------------------------------------------------- */

typedef struct rt_run_state
{
	rt_result	r;
	drb_err		kind;			/* the error kind of the failure */
	double		check_start;
} rt_run_state;

static void
check_begin(rt_run_state *st)
{
	st->check_start = clock_seconds();
}

static rt_check *
check_add(rt_run_state *st, const char *name, bool ok, char *message)
{
	rt_result  *r = &st->r;
	rt_check   *c;

	r->checks = xrealloc(r->checks, (r->nchecks + 1) * sizeof(rt_check));
	c = &r->checks[r->nchecks++];
	c->name = xstrdup(name);
	c->ok = ok;
	c->seconds = st->check_start > 0 ? clock_seconds() - st->check_start : 0;
	c->message = message;
	st->check_start = 0;
	return c;
}

static void
check_pass(rt_run_state *st, const char *name, const char *note)
{
	check_add(st, name, true, note ? xstrdup(note) : NULL);
	printf("restore-test: check '%s' ok%s%s\n", name, note ? ": " : "", note ? note : "");
	fflush(stdout);
}

/* Record the failure of check name (the test ends); always returns -1. */
static int
check_fail(rt_run_state *st, const char *name, drb_err kind, const char *fmt,...)
__attribute__((format(printf, 4, 5)));

static int
check_fail(rt_run_state *st, const char *name, drb_err kind, const char *fmt,...)
{
	va_list		ap;
	char	   *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = xstrdup("(no message)");
	va_end(ap);
	check_add(st, name, false, xstrdup(msg));
	st->r.success = false;
	st->r.failed_check = xstrdup(name);
	st->r.error = msg;
	st->kind = kind;
	return -1;
}

/* The failure of a step that failed with err_set: its message and kind. */
static int
check_fail_err(rt_run_state *st, const char *name)
{
	drb_err		kind = err_kind() != DRB_OK ? err_kind() : DRB_ERR_INTERNAL;

	return check_fail(st, name, kind, "%s", err_msg());
}

static void
result_free(rt_result *r)
{
	free(r->failed_check);
	free(r->error);
	for (size_t i = 0; i < r->nchecks; i++)
	{
		free(r->checks[i].name);
		free(r->checks[i].message);
	}
	free(r->checks);
	free(r->scratch);
	restore_outcome_free(&r->outcome);
	rt_recovery_log_free(&r->log);
}

/* ---------------------------------------------------------------------------------------
 * The target
 * ------------------------------------------------------------------------------------- */

/* The fraction of a --to-time text in microseconds (its digits after HH:MM:SS). */
static int64_t
time_fraction_us(const char *text)
{
	const char *p = text + strspn(text, " \t");
	int64_t		us = 0;
	int			n = 0;

	if (strlen(p) < 16)
		return 0;
	p += 16;					/* "YYYY-MM-DD HH:MM" */
	if (*p != ':')
		return 0;
	p += 3;						/* ":SS" */
	if (*p != '.' && *p != ',')
		return 0;
	for (p++; *p >= '0' && *p <= '9' && n < 6; p++, n++)
		us = us * 10 + (*p - '0');
	for (; n < 6; n++)
		us *= 10;
	return us;
}

static uint64_t
random_u64(void)
{
	uint64_t	v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
		v = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (clock_seconds() * 1e9);
	return v;
}

/*
 * A random moment, uniform to the microsecond, in [from + 1 s, to] of the repository used:
 * --repo, else the first with a window (with --set, the first listing that backup, from
 * its stop). *pick false when the window holds no such moment.
 */
static int
random_target(rt_run_state *st, restore_repos *rr, const char *set, bool *pick)
{
	rt_result  *r = &st->r;

	*pick = false;
	for (int i = 0; i < rr->nrepo; i++)
	{
		restore_window w;
		int64_t		from,
					to;
		uint64_t	lsn;

		if (rr->cats[i] == NULL || !restore_window_get(rr->cats[i], rr->invs[i], &w))
			continue;
		if (set)
		{
			const catalog_backup *b = catalog_find(rr->cats[i], set);

			if (b == NULL)
				continue;
			from = b->stop_time;
			restore_backup_reach(b, rr->invs[i], &to, &lsn);
		}
		else
		{
			from = w.earliest;
			to = w.latest;
		}
		if (to < from + 1)
		{
			printf("restore-test: the recoverable window of repository %d ends where it "
				   "starts (no WAL archived after the backup yet): testing the end of the "
				   "archive instead of a random moment\n", rr->numbers[i]);
			return 0;
		}
		r->target_us = (from + 1) * 1000000 +
			(int64_t) (random_u64() % (uint64_t) ((to - from - 1) * 1000000 + 1));
		*pick = true;
		return 0;
	}
	return err_set(DRB_ERR_NOT_FOUND, "no repository holds a restorable backup%s%s%s: no "
				   "recoverable window to pick a random target from", set ? " '" : "",
				   set ? set : "", set ? "'" : "");
}

/* ---------------------------------------------------------------------------------------
 * The phases
 * ------------------------------------------------------------------------------------- */

/* The newest PostgreSQL major any readable catalog records (0: none). */
static int
pg_major(const restore_repos *rr)
{
	for (int i = 0; i < rr->nrepo; i++)
	{
		const catalog_backup *b = rr->cats[i] ? catalog_latest(rr->cats[i], -1) : NULL;

		if (b)
			return b->pg_version;
	}
	return 0;
}

/* One value of a one-row query; NULL (and *is_null) when NULL; NULL + *why on error. */
static char *
query_value(PGconn *conn, const char *sql, bool *is_null, char **why)
{
	PGresult   *res = PQexec(conn, sql);
	char	   *v = NULL;

	*is_null = false;
	*why = NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		*why = xstrdup(PQresultErrorMessage(res));
	else if (PQntuples(res) != 1 || PQnfields(res) < 1)
		*why = xasprintf("returned %d rows", PQntuples(res));
	else if (PQgetisnull(res, 0, 0))
		*is_null = true;
	else
		v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (*why)
	{
		char	   *nl;

		while ((nl = strchr(*why, '\n')) != NULL)
			*nl = ' ';
	}
	return v;
}

/* Where the archive the recovery read from ends: the end LSN it must have reached. */
static uint64_t
archive_end_lsn(const rt_result *r, const restore_repos *rr)
{
	const restore_outcome *o = &r->outcome;
	const wal_inventory *inv = rr->invs[o->repo_pos];
	uint32_t	tli = 0;
	uint64_t	end = 0;

	if (r->time_target || inv == NULL || inv->seg_size == 0)
		return o->reach_lsn;
	/* the end of the archive: the last segment of the newest timeline from the backup's */
	for (size_t i = 0; i < inv->nranges; i++)
		if (inv->ranges[i].tli >= o->timeline && inv->ranges[i].tli >= tli)
		{
			wal_name	w;

			if (wal_name_parse(inv->ranges[i].last, &w) != 0)
			{
				err_clear();
				continue;
			}
			if (inv->ranges[i].tli > tli)
				end = 0;
			tli = inv->ranges[i].tli;
			if ((wal_segment_position(&w, inv->seg_size) + 1) * inv->seg_size > end)
				end = (wal_segment_position(&w, inv->seg_size) + 1) * inv->seg_size;
		}
	return end > o->reach_lsn ? end : o->reach_lsn;
}

/*
 * Did recovery replay the archive to its end? Redo must have ended in the last segment
 * the archive holds: ending earlier means a segment after it was missing or unreadable.
 */
static bool
reached_archive_end(const rt_result *r, const restore_repos *rr, char **why)
{
	const wal_inventory *inv = rr->invs[r->outcome.repo_pos];
	uint64_t	seg = inv && inv->seg_size ? inv->seg_size : 16u * 1024 * 1024;
	uint64_t	end = archive_end_lsn(r, rr);

	*why = NULL;
	if (!r->log.redo_done)
	{
		*why = xstrdup("the server log does not say where redo ended (no \"redo done at\" "
					   "line)");
		return false;
	}
	if (end == 0 || r->log.redo_done_lsn / seg + 1 >= end / seg)
		return true;
	{
		char		next[25];

		wal_segment_name(r->outcome.timeline, r->log.redo_done_lsn / seg + 1, (uint32_t) seg,
						 next);
		*why = xasprintf("recovery ended at %X/%X, but the archive of repository %d holds WAL "
						 "up to %X/%X: segment %s (or the one after it) is missing or could "
						 "not be restored",
						 (unsigned) (r->log.redo_done_lsn >> 32),
						 (unsigned) r->log.redo_done_lsn, r->outcome.repo,
						 (unsigned) ((end - 1) >> 32), (unsigned) (end - 1), next);
	}
	return false;
}

/* Why the server stopped, from its log: the FATAL line and archive-get's error. */
static char *
server_stop_reason(const rt_recovery_log *l)
{
	if (l->fatal && l->tool_error)
		return xasprintf("%s (archive-get: %s)", l->fatal, l->tool_error);
	if (l->fatal)
		return xstrdup(l->fatal);
	if (l->tool_error)
		return xasprintf("archive-get: %s", l->tool_error);
	return xstrdup("the server log says nothing about why");
}

/* Start the server and wait until it leaves recovery; *conn: a connection to db. */
static int
phase_replay(rt_run_state *st, rt_server *srv, const restore_repos *rr, const char *db,
			 int timeout, PGconn **conn)
{
	rt_result  *r = &st->r;
	double		deadline = clock_seconds() + timeout;
	bool		restarted = false;
	char	   *why = NULL;
	int			rc = -1;

	*conn = NULL;
	check_begin(st);
	if (rt_server_start(srv) != 0)
		return check_fail_err(st, "start");
	printf("restore-test: PostgreSQL started in %s on port %d (pid %d, user %s); waiting for "
		   "recovery\n", srv->pgdata, srv->port, (int) srv->pid, srv->user);
	fflush(stdout);
	for (;;)
	{
		PGconn	   *c;

		if (rt_interrupted)
		{
			check_fail(st, "recovery", DRB_ERR_PG, "interrupted while waiting for recovery");
			goto out;
		}
		if (!rt_server_alive(srv))
		{
			char	   *reason;

			rt_recovery_log_free(&r->log);
			if (rt_recovery_log_read(srv, &r->log) != 0)
			{
				check_fail_err(st, "recovery");
				goto out;
			}
			srv->pid = 0;
			if (r->time_target && r->log.target_not_reached && !restarted)
			{
				char	   *short_;

				/* no commit after the target in the archive: fine if it is the end */
				if (!reached_archive_end(r, rr, &short_))
				{
					check_fail(st, "recovery", DRB_ERR_INTEGRITY, "recovery ended before the "
							   "target: %s", short_);
					free(short_);
					goto out;
				}
				printf("restore-test: the archive holds no commit after the target: "
					   "recovering to its end instead\n");
				fflush(stdout);
				r->stop = "end-of-archive";
				restarted = true;
				if (rt_server_drop_target(srv) != 0 || rt_server_start(srv) != 0)
				{
					check_fail_err(st, "start");
					goto out;
				}
				continue;
			}
			reason = server_stop_reason(&r->log);
			check_fail(st, "recovery", DRB_ERR_INTEGRITY,
					   "the scratch server stopped during recovery: %s", reason);
			free(reason);
			goto out;
		}
		free(why);
		if ((c = rt_server_connect(srv, db, &why)) != NULL)
		{
			bool		is_null;
			char	   *v = query_value(c, "SELECT pg_is_in_recovery()", &is_null, &why);

			if (v && strcmp(v, "f") == 0)
			{
				free(v);
				*conn = c;
				break;
			}
			free(v);
			PQfinish(c);
		}
		if (clock_seconds() > deadline)
		{
			check_fail(st, "recovery", DRB_ERR_PG, "recovery did not end within %d s "
					   "(test-timeout)%s%s", timeout, why ? ": " : "", why ? why : "");
			goto out;
		}
		{
			struct timespec ts = {0, 250 * 1000000L};

			nanosleep(&ts, NULL);
		}
	}
	rt_recovery_log_free(&r->log);
	if (rt_recovery_log_read(srv, &r->log) != 0)
	{
		check_fail_err(st, "recovery");
		goto out;
	}
	check_pass(st, "recovery", restarted ? "promoted at the end of the archive" : "promoted");
	rc = 0;
out:
	free(why);
	return rc;
}

/* The point reached against the target and the archive. */
static int
check_target(rt_run_state *st, const restore_repos *rr, PGconn *conn)
{
	rt_result  *r = &st->r;
	bool		is_null;
	char	   *why = NULL;
	char	   *v;
	char		a[48],
				b[48];

	check_begin(st);
	v = query_value(conn, "SELECT (extract(epoch FROM pg_last_xact_replay_timestamp()) * "
					"1000000)::bigint", &is_null, &why);
	if (v == NULL && !is_null)
	{
		check_fail(st, "target", DRB_ERR_PG, "unable to read pg_last_xact_replay_timestamp(): %s",
				   why);
		free(why);
		return -1;
	}
	r->replay_known = v != NULL;
	r->replay_us = v ? strtoll(v, NULL, 10) : 0;
	free(v);

	if (r->time_target && r->stop == NULL && r->log.stopped)
	{
		r->stop = "target";
		if (r->log.stop_time_us <= r->target_us)
		{
			rt_format_us(r->log.stop_time_us, a, sizeof(a));
			return check_fail(st, "target", DRB_ERR_INTEGRITY, "recovery stopped before the %s "
							  "of transaction %u at %s, which is not after the target %s",
							  r->log.stopped_abort ? "abort" : "commit", r->log.stop_xid, a,
							  r->target_text);
		}
	}
	else
	{
		r->stop = "end-of-archive";
		if (!reached_archive_end(r, rr, &why))
		{
			check_fail(st, "target", DRB_ERR_INTEGRITY, "%s", why);
			free(why);
			return -1;
		}
	}
	if (r->time_target && r->replay_known && r->replay_us > r->target_us)
	{
		rt_format_us(r->replay_us, a, sizeof(a));
		return check_fail(st, "target", DRB_ERR_INTEGRITY, "the last replayed transaction "
						  "(%s) is after the target %s", a, r->target_text);
	}
	if (r->replay_known)
		rt_format_us(r->replay_us, a, sizeof(a));
	else
		snprintf(a, sizeof(a), "none");
	if (strcmp(r->stop, "target") == 0)
	{
		rt_format_us(r->log.stop_time_us, b, sizeof(b));
		v = xasprintf("last replayed transaction %s <= target %s < next commit %s (xid %u)", a,
					  r->target_text, b, r->log.stop_xid);
	}
	else
		v = xasprintf("the end of the archive (redo done at %X/%X), last replayed transaction "
					  "%s", (unsigned) (r->log.redo_done_lsn >> 32),
					  (unsigned) r->log.redo_done_lsn, a);
	check_pass(st, "target", v);
	free(v);
	return 0;
}

/* pg_amcheck --all --install-missing, where amcheck is available. */
static int
check_amcheck(rt_run_state *st, rt_server *srv, PGconn *conn, const char *db, int jobs,
			  int timeout)
{
	bool		is_null;
	char	   *why = NULL;
	char	   *avail = query_value(conn, "SELECT count(*) FROM pg_available_extensions WHERE "
									"name = 'amcheck'", &is_null, &why);
	char		port[16],
				j[16];
	const char *args[] = {"--all", "--install-missing", "--no-password", "-h", srv->scratch,
		"-p", port, "-U", srv->role, "--maintenance-db", db, "-j", j, NULL};
	int			status;
	char	   *output = NULL;

	check_begin(st);
	if (avail == NULL || strcmp(avail, "0") == 0)
	{
		check_pass(st, "amcheck", "skipped: the amcheck extension is not installed on this "
				   "host (postgresql-contrib)");
		free(avail);
		free(why);
		return 0;
	}
	free(avail);
	snprintf(port, sizeof(port), "%d", srv->port);
	snprintf(j, sizeof(j), "%d", jobs > 0 ? jobs : 1);
	if (rt_run(srv, "pg_amcheck", args, timeout, &status, &output) != 0)
		return check_fail_err(st, "amcheck");
	if (status != 0)
	{
		check_fail(st, "amcheck", DRB_ERR_INTEGRITY, "pg_amcheck exited with %d: %s", status,
				   output);
		free(output);
		return -1;
	}
	free(output);
	check_pass(st, "amcheck", NULL);
	return 0;
}

/* Each query of the checks file: exactly one row, one column, true. */
static int
check_queries(rt_run_state *st, PGconn *conn, const rt_query *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		char	   *name = xasprintf("query %zu (line %d)", i + 1, q[i].line);
		char	   *sql = query_excerpt(q[i].sql);
		PGresult   *res;
		char	   *problem = NULL;

		check_begin(st);
		res = PQexec(conn, q[i].sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			char	   *msg = xstrdup(PQresultErrorMessage(res));

			for (char *p = msg; *p; p++)
				if (*p == '\n')
					*p = ' ';
			problem = xasprintf("failed: %s", msg);
			free(msg);
		}
		else if (PQntuples(res) != 1 || PQnfields(res) != 1)
			problem = xasprintf("returned %d rows of %d columns instead of one true",
								PQntuples(res), PQnfields(res));
		else if (PQgetisnull(res, 0, 0))
			problem = xstrdup("returned NULL");
		else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			problem = xasprintf("returned %s",
								strcmp(PQgetvalue(res, 0, 0), "f") == 0 ? "false" :
								"something else than a boolean");
		PQclear(res);
		if (problem)
		{
			check_fail(st, name, DRB_ERR_INTEGRITY, "%s: %s", problem, sql);
			free(problem);
			free(name);
			free(sql);
			return -1;
		}
		check_pass(st, name, NULL);
		free(name);
		free(sql);
	}
	return 0;
}

/* A clean shutdown, then pg_checksums --check when the cluster has data checksums. */
static int
check_shutdown(rt_run_state *st, rt_server *srv, int timeout)
{
	bool		clean;
	const char *args[] = {"--check", "-D", srv->pgdata, NULL};
	int			status;
	char	   *output = NULL;

	check_begin(st);
	if (rt_server_stop(srv, &clean) != 0)
		return check_fail_err(st, "shutdown");
	if (!clean)
		return check_fail(st, "shutdown", DRB_ERR_PG, "the scratch server did not shut down "
						  "cleanly (pg_ctl stop -m fast failed; it was killed)");
	check_pass(st, "shutdown", NULL);
	if (!st->r.data_checksums)
		return 0;
	check_begin(st);
	if (rt_run(srv, "pg_checksums", args, timeout, &status, &output) != 0)
		return check_fail_err(st, "checksums");
	if (status != 0)
	{
		check_fail(st, "checksums", DRB_ERR_INTEGRITY, "pg_checksums --check exited with %d: %s",
				   status, output);
		free(output);
		return -1;
	}
	free(output);
	check_pass(st, "checksums", NULL);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Signals: an interrupt ends the waits, so that the server is still stopped
 * ------------------------------------------------------------------------------------- */

static void
on_signal(int sig)
{
	(void) sig;
	rt_interrupted = 1;
}

static void
signals_catch(struct sigaction *old)
{
	struct sigaction sa;
	const int	sigs[3] = {SIGINT, SIGTERM, SIGHUP};

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
}

static void
signals_restore(const struct sigaction *old)
{
	const int	sigs[3] = {SIGINT, SIGTERM, SIGHUP};

	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
}

/* ---------------------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------------------- */

/* Stop the server, record, report, clean up, print the summary. */
static void
finish(rt_run_state *st, const config_t *cfg, restore_repos *rr, rt_server *srv,
	   bool srv_ready)
{
	rt_result  *r = &st->r;
	const char *report = cfg_str(cfg, "report");
	const char *metrics = cfg_str(cfg, "metrics");
	int64_t		last_success = 0;
	bool		clean;

	if (srv_ready && rt_server_alive(srv) && rt_server_stop(srv, &clean) != 0)
	{
		log_warn("%s", err_msg());
		err_clear();
	}
	r->finished = time(NULL);
	if (r->success)
		last_success = r->started;
	if (rt_catalog_record(cfg, rr, r, CATALOG_LOCK_WAIT, &last_success) != 0)
	{
		log_warn("%s", err_msg());
		err_clear();
	}
	if (!r->success && metrics)
	{
		int64_t		previous = rt_metrics_previous_success(metrics, r->stanza);

		if (previous > last_success)
			last_success = previous;
	}
	if (report && rt_report_write(r, report) != 0)
	{
		log_warn("%s", err_msg());
		err_clear();
	}
	if (metrics && rt_metrics_write(r, metrics, last_success) != 0)
	{
		log_warn("%s", err_msg());
		err_clear();
	}
	if (srv_ready)
		rt_server_free(srv, r->kept);

	if (r->success)
		printf("restore-test of backup %s from repository %d passed: target %s%s reached "
			   "(%s); RTO %.1f s (choose %.1f, restore %.1f, replay %.1f, checks %.1f), "
			   "%.1f MiB restored\n", r->outcome.label, r->outcome.repo,
			   r->time_target ? r->target_text : "the end of the archive",
			   r->random ? " (random)" : "", r->stop, rt_total_seconds(r),
			   r->phase[RT_PHASE_CHOOSE], r->phase[RT_PHASE_RESTORE], r->phase[RT_PHASE_REPLAY],
			   r->phase[RT_PHASE_CHECKS], r->outcome.files.bytes / 1048576.0);
	else
		printf("restore-test%s%s FAILED at check '%s' after %.1f s\n",
			   r->outcome.label ? " of backup " : "", r->outcome.label ? r->outcome.label : "",
			   r->failed_check, rt_total_seconds(r));
	if (r->kept)
		printf("restore-test: the scratch directory is kept: %s\n", r->scratch);
	fflush(stdout);
}

int
cmd_restore_test(config_t *cfg)
{
	rt_run_state st;
	rt_result  *r = &st.r;
	restore_repos *rr = NULL;
	rt_server	srv;
	bool		srv_ready = false;
	restore_request req;
	rt_query   *queries = NULL;
	size_t		nqueries = 0;
	const char *db = cfg_str(cfg, "pg1-database") ? cfg_str(cfg, "pg1-database") : "postgres";
	int			timeout = (int) cfg_int(cfg, "test-timeout");
	struct sigaction old[3];
	PGconn	   *conn = NULL;
	double		t0 = clock_seconds();
	double		t;
	int			rc;

	memset(&st, 0, sizeof(st));
	memset(&req, 0, sizeof(req));
	memset(&srv, 0, sizeof(srv));
	r->stanza = cfg_str(cfg, "stanza");
	r->started = time(NULL);
	r->success = true;
	r->kept = cfg_bool(cfg, "keep");
	r->outcome.repo_pos = -1;
	rt_interrupted = 0;

	/* mistakes in the command line cost nothing */
	if (cfg_bool(cfg, "random-target") && cfg_str(cfg, "to-time"))
		return err_set(DRB_ERR_USAGE, "--random-target and --to-time are both given: a "
					   "restore test has one target");
	if (cfg_str(cfg, "checks") && checks_read(cfg_str(cfg, "checks"), &queries, &nqueries) != 0)
		return -1;
	if (restore_target_parse(cfg, &req.target) != 0)
	{
		queries_free(queries, nqueries);
		return -1;
	}

	/* choose */
	if ((rr = restore_repos_open(cfg)) == NULL)
	{
		check_fail_err(&st, "choose");
		goto done;
	}
	for (int i = 0; i < rr->nrepo; i++)
		if (rr->cats[i])
		{
			restore_window w;
			rt_repo_window *rw = &r->windows[r->nwindows++];

			rw->repo = rr->numbers[i];
			rw->valid = restore_window_get(rr->cats[i], rr->invs[i], &w);
			rw->earliest = w.earliest;
			rw->latest = w.latest;
		}
	if (cfg_bool(cfg, "random-target"))
	{
		if (random_target(&st, rr, cfg_str(cfg, "set"), &r->time_target) != 0)
		{
			check_fail_err(&st, "choose");
			goto done;
		}
		r->random = r->time_target;
	}
	else if (req.target.kind == TARGET_TIME)
	{
		r->time_target = true;
		r->target_us = req.target.time * 1000000 + time_fraction_us(req.target.value);
	}
	if (r->time_target)
	{
		/* PostgreSQL gets exactly the instant the checks compare with */
		rt_format_us(r->target_us, r->target_text, sizeof(r->target_text));
		req.target.kind = TARGET_TIME;
		req.target.value = r->target_text;
		req.target.time = r->target_us / 1000000;
		req.target.action = "promote";
		req.target.exclusive = false;
		printf("restore-test: target %s%s\n", r->target_text, r->random ? " (random)" : "");
	}
	else
		printf("restore-test: target: the end of the archived WAL\n");
	fflush(stdout);
	if (rt_server_init(&srv, cfg_str(cfg, "test-path"), cfg_str(cfg, "pg1-path"),
					   cfg_str(cfg, "pg-bin-path"), pg_major(rr), cfg_str(cfg, "pg1-user")) != 0)
	{
		check_fail_err(&st, "choose");
		srv_ready = srv.scratch != NULL;
		goto done;
	}
	srv_ready = true;
	r->scratch = xstrdup(srv.scratch);

	/* restore */
	req.pgdata = srv.pgdata;
	req.tablespace_dir = srv.tablespaces;
	req.set = cfg_str(cfg, "set");
	t = clock_seconds();
	rc = restore_perform(cfg, rr, &req, &r->outcome);
	r->phase[RT_PHASE_CHOOSE] = (t - t0) + r->outcome.choose_seconds;
	r->phase_ran[RT_PHASE_CHOOSE] = true;
	if (rc != 0)
	{
		if (r->outcome.label)
		{
			r->phase[RT_PHASE_RESTORE] = clock_seconds() - t - r->outcome.choose_seconds;
			r->phase_ran[RT_PHASE_RESTORE] = true;
		}
		check_fail_err(&st, r->outcome.label ? "restore" : "choose");
		goto done;
	}
	r->data_checksums = r->outcome.data_checksums;
	rc = rt_server_configure(&srv);
	r->port = srv.port;
	r->phase[RT_PHASE_RESTORE] = clock_seconds() - t - r->outcome.choose_seconds;
	r->phase_ran[RT_PHASE_RESTORE] = true;
	if (rc != 0)
	{
		check_fail_err(&st, "restore");
		goto done;
	}
	printf("restore-test: restored %" PRIu64 " files, %.1f MiB in %.1f s\n",
		   r->outcome.files.files, r->outcome.files.bytes / 1048576.0,
		   r->phase[RT_PHASE_RESTORE]);
	fflush(stdout);

	/* replay */
	signals_catch(old);
	t = clock_seconds();
	rc = phase_replay(&st, &srv, rr, db, timeout, &conn);
	r->phase[RT_PHASE_REPLAY] = clock_seconds() - t;
	r->phase_ran[RT_PHASE_REPLAY] = true;
	if (rc != 0)
		goto done_signals;

	/* checks */
	t = clock_seconds();
	r->phase_ran[RT_PHASE_CHECKS] = true;
	{
		bool		is_null;
		char	   *why = NULL;
		char	   *v = query_value(conn, "SHOW data_checksums", &is_null, &why);

		if (v)
			r->data_checksums = strcmp(v, "on") == 0;
		free(v);
		free(why);
	}
	rc = check_target(&st, rr, conn);
	if (rc == 0)
		rc = check_amcheck(&st, &srv, conn, db, (int) cfg_int(cfg, "process-max"), timeout);
	if (rc == 0)
		rc = check_queries(&st, conn, queries, nqueries);
	PQfinish(conn);
	conn = NULL;
	if (rc == 0)
		rc = check_shutdown(&st, &srv, timeout);
	r->phase[RT_PHASE_CHECKS] = clock_seconds() - t;

done_signals:
	if (conn)
		PQfinish(conn);
	finish(&st, cfg, rr, &srv, srv_ready);
	signals_restore(old);
	goto out;
done:
	finish(&st, cfg, rr, &srv, srv_ready);
out:
	queries_free(queries, nqueries);
	restore_repos_close(rr);
	rc = 0;
	if (!r->success)
		rc = err_set(st.kind, "restore-test failed: check '%s': %s", r->failed_check,
					 r->error);
	result_free(r);
	return rc;
}
