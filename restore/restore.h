/*
 * restore.h — the parts of `drbackup restore` (issue 5), each in its own file:
 *
 *   restore.c          the command: options, safety checks on the target, then the parts
 *                      below in order, progress and the summary line
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

#endif
