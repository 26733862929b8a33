/*
 * restore_test.h — the parts of `drbackup restore-test` (issue 6), each in its own file:
 *
 *   restore_test.c          the command: the target, the restore (restore_perform), then
 *                           the scratch server started, recovery awaited, every check run,
 *                           the server stopped, the result recorded; phases timed
 *   restore_test_server.c   the scratch PostgreSQL: its private configuration, pg_ctl and
 *                           the other PostgreSQL programs run as the cluster's OS user (never
 *                           root), libpq to its private socket, what its log says about
 *                           where recovery stopped
 *   restore_test_report.c   the JSON report, the Prometheus text file and the catalog record
 *
 * The scratch server is private: it listens on a free 127.0.0.1 port whose pg_hba.conf
 * admits no TCP connection, and on a Unix socket in the scratch directory (mode 0700,
 * owned by the cluster's user); it never archives (archive_mode = off), so the copy can
 * never write into the repositories it was restored from.
 */
#ifndef DRB_RESTORE_TEST_H
#define DRB_RESTORE_TEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dl_pq.h"

#include "restore.h"

/* --- restore_test_server.c --- */

typedef struct rt_server
{
	char	   *scratch;		/* the scratch directory (mkdtemp), also the socket directory */
	char	   *pgdata;			/* <scratch>/data */
	char	   *tablespaces;	/* <scratch>/tablespaces: each at <oid> */
	char	   *log_path;		/* <scratch>/server.log (pg_ctl -l) */
	char	   *bin;			/* directory of pg_ctl & co.; NULL: found in the PATH */
	char	   *user;			/* OS user the server and the tools run as */
	uid_t		uid;
	gid_t		gid;
	bool		switch_user;	/* running as root: setgid/setuid to user in each child */
	char	   *role;			/* database role to connect as, once known */
	int			port;
	pid_t		pid;			/* the postmaster, once started (0: none) */
} rt_server;

/*
 * Create the scratch directory under test_path (mkdtemp "drbackup-restore-test-XXXXXX"),
 * decide who runs the server (as root: the owner of pg1_path, else the user "postgres";
 * not root: this process's user) and give the directory to that user, and find the
 * PostgreSQL programs: bin_path when given (it must hold pg_ctl), else
 * /usr/lib/postgresql/<pg_major>/bin when it does, else the PATH. role_hint: pg1-user or
 * NULL.
 */
int			rt_server_init(rt_server *s, const char *test_path, const char *pg1_path,
						   const char *bin_path, int pg_major, const char *role_hint);

/*
 * After the restore: append the scratch settings to postgresql.auto.conf (port, sockets,
 * no archiving, hot standby, small shared_buffers, log to stderr in English, the private
 * pg_hba.conf), create an empty postgresql.conf when the backup has none (Debian keeps it
 * in /etc), remove standby.signal, pick the port, and give every file to the user.
 */
int			rt_server_configure(rt_server *s);

/* pg_ctl start (not waiting) as the user; s->pid from postmaster.pid. */
int			rt_server_start(rt_server *s);

/* Set by restore-test's SIGINT/SIGTERM/SIGHUP handler: waits stop, children are killed. */
extern volatile sig_atomic_t rt_interrupted;

/* Is the postmaster alive? */
bool		rt_server_alive(const rt_server *s);

/*
 * Connect to database db through the private socket (connect_timeout 2 s). NULL when
 * the server does not accept the connection (yet); *why then says why (caller frees).
 * The role is s->role, else tried in turn: the role hint, the OS user, "postgres".
 */
PGconn	   *rt_server_connect(rt_server *s, const char *db, char **why);

/*
 * Stop the server: pg_ctl stop -m fast as the user (clean shutdown, *clean true); when
 * that fails, SIGQUIT then SIGKILL to the postmaster. The server is down afterwards in
 * every case but a process that cannot be signalled (an error).
 */
int			rt_server_stop(rt_server *s, bool *clean);

/*
 * Run <bin>/<program> args... as the user in the scratch directory, stdin /dev/null,
 * stdout+stderr into <scratch>/<program>.out; killed after timeout seconds. *status: the
 * exit code (-1 when killed or signalled). *output (may be NULL): the last lines of what
 * it printed (caller frees). -1 only when it cannot be run at all.
 */
int			rt_run(const rt_server *s, const char *program, const char *const *args,
				   int timeout, int *status, char **output);

/* Comment out every recovery_target* line of postgresql.auto.conf (recover to the end). */
int			rt_server_drop_target(rt_server *s);

/* Remove the scratch directory (when !keep) and free s. The server must be down. */
void		rt_server_free(rt_server *s, bool keep);

/* What the server log says about the end of recovery (the last occurrence of each). */
typedef struct rt_recovery_log
{
	bool		stopped;		/* "recovery stopping before commit|abort of transaction" */
	bool		stopped_abort;	/* ... of an abort */
	uint32_t	stop_xid;
	int64_t		stop_time_us;	/* its time, microseconds since the epoch */
	bool		redo_done;		/* "redo done at X/Y" */
	uint64_t	redo_done_lsn;
	bool		target_not_reached;	/* "recovery ended before configured recovery target
									 * was reached" (PostgreSQL 14 and later: FATAL) */
	uint32_t	new_timeline;	/* "selected new timeline ID: N" (0: none) */
	char	   *fatal;			/* the last FATAL or PANIC line, or NULL */
	char	   *tool_error;		/* the last "drbackup: ERROR" line (archive-get), or NULL */
} rt_recovery_log;

/* Read and parse the server log; *out freed with rt_recovery_log_free. */
int			rt_recovery_log_read(const rt_server *s, rt_recovery_log *out);
void		rt_recovery_log_free(rt_recovery_log *l);

/*
 * "2026-11-21 02:30:00.123456+01" / "+05:30" / "-03" / "+00" (PostgreSQL's ISO output)
 * to microseconds since the epoch; false when it is not such a time.
 */
bool		rt_parse_pg_time(const char *text, int64_t *us);

/* "YYYY-MM-DD HH:MM:SS.ffffff+00" of microseconds since the epoch; out >= 40 bytes. */
void		rt_format_us(int64_t us, char *out, size_t outlen);

/* --- restore_test.c / restore_test_report.c: the result --- */

typedef enum rt_phase
{
	RT_PHASE_CHOOSE,			/* repositories read, target and backup chosen */
	RT_PHASE_RESTORE,			/* fetch + write of the data directory, its configuration */
	RT_PHASE_REPLAY,			/* server start to the end of recovery (promoted) */
	RT_PHASE_CHECKS,			/* target, amcheck, queries, shutdown, pg_checksums */
	RT_PHASE_COUNT
} rt_phase;

extern const char *const rt_phase_names[RT_PHASE_COUNT];

typedef struct rt_check
{
	char	   *name;
	bool		ok;
	double		seconds;
	char	   *message;		/* NULL when ok */
} rt_check;

typedef struct rt_repo_window
{
	int			repo;
	bool		valid;
	int64_t		earliest;
	int64_t		latest;
} rt_repo_window;

typedef struct rt_result
{
	const char *stanza;
	int64_t		started;		/* seconds since the epoch */
	int64_t		finished;
	bool		success;
	char	   *failed_check;	/* NULL on success */
	char	   *error;			/* its message */
	/* the target */
	bool		time_target;	/* else the end of the archive */
	bool		random;
	int64_t		target_us;
	char		target_text[48];
	/* the backup (outcome.label NULL when none was chosen) */
	restore_outcome outcome;
	/* where recovery ended */
	const char *stop;			/* "target", "end-of-archive" or NULL (not reached) */
	bool		replay_known;	/* pg_last_xact_replay_timestamp() not NULL */
	int64_t		replay_us;
	rt_recovery_log log;
	bool		data_checksums;
	/* phases, checks */
	double		phase[RT_PHASE_COUNT];
	bool		phase_ran[RT_PHASE_COUNT];
	rt_check   *checks;
	size_t		nchecks;
	/* every readable repository's window, for the metrics */
	rt_repo_window windows[REPO_MAX];
	int			nwindows;
	/* the scratch copy */
	char	   *scratch;
	bool		kept;
	int			port;
} rt_result;

/* Total of the phases that ran: the measured recovery time. */
double		rt_total_seconds(const rt_result *r);

/* The JSON report, written atomically (temp file, fsync, rename). */
int			rt_report_write(const rt_result *r, const char *path);

/*
 * The Prometheus text file, written atomically. last_success: the time of the newest
 * successful restore test (0: none known); on failure the caller passes the previous one.
 */
int			rt_metrics_write(const rt_result *r, const char *path, int64_t last_success);

/* The value of drbackup_restore_test_last_success_timestamp_seconds in an earlier file
 * (0 when absent or unreadable). */
int64_t		rt_metrics_previous_success(const char *path, const char *stanza);

/*
 * Record the result on the backup tested in the catalog of the repository it came from,
 * under the stanza's backup lock (waiting for it up to lock_wait seconds), so that `info`
 * shows it. *last_success receives the newest successful restore test that catalog now
 * records (0: none).
 */
int			rt_catalog_record(const config_t *cfg, restore_repos *rr, const rt_result *r,
							  int lock_wait, int64_t *last_success);

#endif
