/*
 * restore.h — the parts of `drbackup restore` (issue 5), each in its own file:
 *
 *   restore.c          the restore as one function (restore_perform: safety checks on the
 *                      target, then the parts below in order), used by the restore
 *                      command and by restore-test; the command's summary line
 *   restore_target.c   which backup can reach the recovery target, and the recovery
 *                      settings that go into postgresql.auto.conf
 *   restore_files.c    writing the data directory from the manifest, in parallel, every
 *                      file verified
 *   pg_manifest.c      backup_manifest in PostgreSQL's format (pg_manifest.h)
 *
 * A reader follows a byte from the bucket back to PGDATA through restore_files.c ->
 * repo.c (repo_get: the verifying filter chain) -> the storage driver.
 */
#ifndef DRB_RESTORE_H
#define DRB_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "repo_config.h"		/* config_t (a plain "config.h" from restore/ finds autoconf's) */
#include "archive.h"
#include "manifest.h"
#include "repo.h"
#include "wal_inventory.h"

/* --- restore_target.c --- */

typedef enum restore_target_kind
{
	TARGET_LATEST,				/* end of the archive (no recovery_target_*) */
	TARGET_TIME,
	TARGET_LSN,
	TARGET_XID,
	TARGET_NAME,
	TARGET_IMMEDIATE,
} restore_target_kind;

typedef struct restore_target
{
	restore_target_kind kind;
	const char *value;			/* as given (time text, LSN text, xid, name) */
	int64_t		time;			/* TARGET_TIME: parsed, seconds since the epoch */
	uint64_t	lsn;			/* TARGET_LSN: parsed */
	const char *action;			/* "pause", "promote", "shutdown" */
	const char *timeline;		/* NULL (PostgreSQL's default), "current", "latest", "N" */
	bool		exclusive;
} restore_target;

/*
 * From the options (to-time, to-lsn, to-xid, to-name, immediate, target-action,
 * target-timeline, target-exclusive): at most one target (DRB_ERR_USAGE naming both
 * otherwise); a time must parse ("YYYY-MM-DD HH:MM:SS[.fff][+-HH[:MM]|Z]"; no zone = UTC),
 * an LSN must be "X/Y", an xid decimal, target-timeline current|latest|digits.
 * Strings point into the configuration.
 */
int			restore_target_parse(const config_t *cfg, restore_target *t);

/*
 * Choose the backup: with set, that label (DRB_ERR_NOT_FOUND when no catalog lists it).
 * Else the newest complete backup whose consistency point comes before the target:
 * stop_time <= target time (TARGET_TIME), stop_lsn <= target LSN (TARGET_LSN), newest
 * otherwise. A target outside the recoverable window (before the oldest backup's stop,
 * or after the window's end by the WAL inventory) is DRB_ERR_USAGE with a message that
 * prints the window ("... the recoverable window of repository N is <earliest> to
 * <latest>"). cats/invs: one catalog and WAL inventory per repository in order (an
 * entry may be NULL/empty when a repository failed to open); numbers: the repository
 * number (1..4) of each position, for messages (NULL: position + 1); *repo_pos receives the
 * position of the repository chosen (the first, in order, that has the backup) and
 * *why one line saying which backup and why (caller frees).
 */
int			restore_choose_backup(const catalog *const *cats, const wal_inventory *const *invs,
								  const int *numbers, int nrepo, const char *set,
								  const restore_target *t, const catalog_backup **chosen,
								  int *repo_pos, char **why);

/*
 * The recoverable window of one repository (what `info` shows): earliest is the stop time
 * of the oldest backup whose WAL (wal_start .. wal_stop) is all archived — time targets
 * are reachable from earliest + 1 s, as a backup's stop time is cut to whole seconds;
 * latest is how far the archived WAL reaches from the newest such backup (the archive time
 * of the last segment of its unbroken run, or of a later timeline's run; never before its
 * stop), latest_lsn the end of that segment. oldest/newest point into c.
 */
typedef struct restore_window
{
	const catalog_backup *oldest;
	const catalog_backup *newest;
	int64_t		earliest;
	int64_t		latest;
	uint64_t	latest_lsn;
} restore_window;

/* Fill *w; false (and *w zeroed) when nothing in the repository is restorable. */
bool		restore_window_get(const catalog *c, const wal_inventory *inv, restore_window *w);

/*
 * How far recovery from backup b can go with the WAL of inv: the archive time and end LSN
 * of the last segment reachable without a gap (the same rule as the window's latest).
 */
void		restore_backup_reach(const catalog_backup *b, const wal_inventory *inv,
								 int64_t *time, uint64_t *lsn);

/*
 * The recovery settings for postgresql.auto.conf: restore_command (restore_cmd, as given),
 * recovery_target* per t, recovery_target_action, recovery_target_timeline,
 * recovery_target_inclusive. Values quoted for the PostgreSQL config parser (single
 * quotes doubled). Returns the lines, each ending in '\n' (caller frees).
 */
char	   *restore_recovery_settings(const restore_target *t, const char *restore_cmd);

/*
 * Rewrite pgdata/postgresql.auto.conf: every existing restore_command and recovery_target*
 * line is commented out ("# removed by drbackup restore: ..."),
 * the settings appended, written atomically (temp file + rename), and recovery.signal
 * created. Any standby.signal left is kept untouched.
 */
int			restore_write_recovery(const char *pgdata, const char *settings);

/* --- restore_files.c --- */

typedef struct restore_files_settings
{
	repo_t	   *repo;
	const char *stanza;
	const char *label;			/* the backup restored (its manifest is read) */
	const char *pgdata;			/* absolute target */
	const char *const *ts_oids;	/* tablespace relocations: ts_oids[i] -> ts_dirs[i] */
	const char *const *ts_dirs;
	size_t		nts;
	int			process_max;
	bool		delta;			/* keep files whose SHA-256 matches; remove extra files */
	bool		force;			/* the target may be non-empty (contents replaced) */
} restore_files_settings;

typedef struct restore_files_result
{
	uint64_t	files;
	uint64_t	bytes;			/* plain bytes written */
	uint64_t	fetched_bytes;	/* plain bytes fetched from the repository */
	uint64_t	kept;			/* delta: files kept because their checksum matched */
	uint64_t	removed;		/* delta/force: files removed that the backup does not have */
} restore_files_result;

/*
 * Restore the data directory of settings->label. First the whole manifest is read and
 * checked (manifest_reader; hostile paths, links other than pg_tblspc/<oid> with an
 * absolute target, a link or path escaping the target) BEFORE anything is written: any
 * problem is an error and the target is untouched. Then: directories (modes), tablespace
 * links (to their original location, or the relocation), files fetched object by object
 * in parallel (process-max), biggest first — a bundle is read once and cut into its files
 * at their offsets — each written, checked against its SHA-256 and size, its mode and
 * mtime set; backup_label and tablespace_map from the manifest header; everything
 * fsynced at the end. h receives the manifest header (caller frees).
 * Memory: per object, the list of its files' manifest positions (8 bytes each), not the
 * manifest itself.
 */
int			restore_files(const restore_files_settings *s, manifest_header *h,
						  restore_files_result *out);

/* --- restore.c --- */

/*
 * The repositories of a restore, opened (archive_ctx_open: every configured one, or only
 * --repo) with each one's catalog and WAL inventory read. A repository that cannot be
 * opened or read is kept with NULL cats[i]/invs[i] and a warning, as long as one can.
 */
typedef struct restore_repos
{
	archive_ctx ctx;
	int			nrepo;
	int			numbers[REPO_MAX];		/* repository number (1..4) of each position */
	const catalog *cats[REPO_MAX];		/* NULL: not readable */
	const wal_inventory *invs[REPO_MAX];	/* NULL: not readable */
	/* storage of the above */
	catalog		cat_store[REPO_MAX];
	bool		cat_ok[REPO_MAX];
	wal_inventory inv_store[REPO_MAX];
	bool		inv_ok[REPO_MAX];
} restore_repos;

/* NULL + err when no repository could be opened at all. Free with restore_repos_close. */
restore_repos *restore_repos_open(const config_t *cfg);
void		restore_repos_close(restore_repos *rr);

/* What to restore, and where. Strings belong to the caller. */
typedef struct restore_request
{
	restore_target target;
	const char *pgdata;			/* the target directory (made absolute) */
	const char *set;			/* a backup label, or NULL: chosen by the target */
	const char *tablespace_map;	/* "OID=DIR[,OID=DIR]" as the option gives it, or NULL */
	const char *tablespace_dir;	/* every tablespace to <tablespace_dir>/<oid> (restore-test);
								 * NULL: tablespace_map, else the original locations */
	bool		delta;
	bool		force;
} restore_request;

/* What restore_perform did (restore_outcome_free). */
typedef struct restore_outcome
{
	char	   *pgdata;			/* absolute */
	char	   *label;			/* the backup restored */
	backup_type type;
	uint32_t	timeline;
	int64_t		stop_time;
	uint64_t	stop_lsn;
	int			pg_version;		/* major */
	bool		data_checksums;	/* the backup's manifest says the cluster has them */
	uint64_t	size;			/* cluster bytes (manifest) */
	int			repo;			/* number (1..4) of the repository restored from */
	int			repo_pos;		/* its position in restore_repos */
	int64_t		earliest;		/* that repository's window (restore_window) */
	int64_t		latest;
	int64_t		reach_time;		/* how far the archived WAL reaches from this backup */
	uint64_t	reach_lsn;		/* (restore_backup_reach) */
	double		choose_seconds;	/* from the call to the backup chosen */
	double		files_seconds;	/* data directory, backup_manifest, recovery settings */
	restore_files_result files;
} restore_outcome;

/*
 * The whole restore: refuse a target where PostgreSQL runs, a non-empty one without
 * delta/force, '/', a bad tablespace map; open the repositories (rr NULL: opened and
 * closed here; else used as given); choose the backup (restore_choose_backup; the reason
 * printed on stdout as one line); write the data directory (restore_files), the
 * backup_manifest in PostgreSQL's format, and the recovery settings with restore_command =
 * this binary's archive-get with this configuration (--config, --stanza, --repo). Memory of
 * *out is filled as far as the restore went (free it either way).
 */
int			restore_perform(const config_t *cfg, restore_repos *rr, const restore_request *req,
						restore_outcome *out);
void		restore_outcome_free(restore_outcome *out);

#endif
