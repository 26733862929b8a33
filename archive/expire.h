/*
 * expire.h — retention: which backups and which WAL a repository keeps.
 *
 * expire_plan is pure (no I/O): given a catalog, the WAL inventory, the retention
 * settings and the current time, it decides what goes:
 *   - full retention by count (retention_full = N: the N newest full backups stay) or by
 *     time (retention_full_time: every full backup that stopped less than N days before
 *     now stays, plus the newest one older than that, so the whole N days stay
 *     recoverable); when unset, no backup expires (a warning says so);
 *   - diff retention (retention_diff = N: the N newest differential backups stay; unset =
 *     all diffs of retained fulls);
 *   - a backup goes with the backup it depends on (diff -> its full; incr -> its parent);
 *   - the newest complete backup is never removed, whatever the settings;
 *   - WAL: segments, .partial and .backup files positioned before the start segment
 *     (wal_start) of the oldest retained backup are removed, on that backup's timeline
 *     and on earlier timelines; everything from there on stays (PITR from the oldest
 *     retained backup to the end of the archive). History files always stay. With no
 *     retained backup at all (empty catalog) no WAL is removed.
 *
 * cmd_expire (expire.c) runs the plan per selected repository under the stanza's backup
 * lock: removes the catalog records first (so a half-done expire never lists a backup
 * whose objects are gone), then the backups' objects, then the WAL objects. --dry-run
 * prints the plan and changes nothing.
 */
#ifndef DRB_EXPIRE_H
#define DRB_EXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "repo_config.h"		/* config_t */
#include "wal_inventory.h"

typedef struct expire_settings
{
	int			retention_full;		/* 0 = unset */
	bool		retention_full_time;	/* retention_full counts days, not backups */
	int			retention_diff;		/* 0 = unset */
} expire_settings;

typedef struct expire_plan_t
{
	char	  **backups;		/* labels to remove (owned) */
	size_t		nbackups;
	const wal_object **wal;		/* WAL objects to remove (pointers into the inventory) */
	size_t		nwal;
	char	   *wal_keep_from;	/* first segment kept on the oldest retained backup's
								 * timeline, NULL when nothing constrains it */
	bool		retention_unset; /* no full retention configured: nothing expired */
} expire_plan_t;

int			expire_plan(const catalog *c, const wal_inventory *inv, const expire_settings *s,
						int64_t now, expire_plan_t *out);
void		expire_plan_free(expire_plan_t *p);

/* The expire command's work, for a caller that already holds the stanza's backup lock
 * (cmd_expire takes it; backup calls this at its end with its own lock). */
int			expire_run(const config_t *cfg, bool dry_run);

#endif
