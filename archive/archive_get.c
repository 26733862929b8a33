/*
 * archive_get.c — archive-get, PostgreSQL's restore_command.
 *
 * Fetches WAL-NAME (%f) from the first repository that has it (or --repo) into DEST (%p),
 * verified and atomically. PostgreSQL asks for files that do not exist all the time (the
 * next timeline's history file, the segment after the last archived one): "not found" is
 * an answer, not a failure, so it is one plain line and exit 1. Every other failure is a
 * real error with its own exit code. In asynchronous mode the prefetch worker's spool is
 * looked at first (spool.h).
 */
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "spool.h"

/*
 * PostgreSQL runs restore_command in the data directory and takes every exit code from 1
 * to 125 for "file not available". During archive recovery (recovery.signal, no
 * standby.signal) that means "end of the archive": recovery would finish there and the
 * server would promote, early, because a repository failed. An exit code above 125 makes
 * PostgreSQL stop instead, so that the DBA can fix the repository and start again. A
 * standby keeps ordinary codes: it retries by itself, and a passing outage must not stop it.
 */
static bool
in_archive_recovery(void)
{
	return access("recovery.signal", F_OK) == 0 && access("standby.signal", F_OK) != 0;
}

int
cmd_archive_get(config_t *cfg)
{
	const char *name = config_arg(cfg, 0);
	const char *dest = config_arg(cfg, 1);
	int			only = cfg_is_set(cfg, "repo") ? (int) cfg_int(cfg, "repo") : 0;
	archive_ctx ctx;
	wal_name	w;
	int			rc;

	if (wal_name_parse(name, &w) != 0)
		return -1;
	if (cfg_bool(cfg, "archive-async"))
	{
		bool		hit = false;

		/* the spool only saves time: when it fails, fetch directly */
		if (spool_get_prefetched(cfg, &w, dest, &hit) != 0)
		{
			log_warn("%s; fetching WAL file %s directly", err_msg(), w.name);
			err_clear();
		}
		else if (hit)
			return 0;
	}

	rc = archive_ctx_open(&ctx, cfg, true);
	if (rc == 0)
	{
		rc = archive_get_one(&ctx, &w, dest, only);
		archive_ctx_close(&ctx);
	}
	if (rc != 0 && err_kind() == DRB_ERR_NOT_FOUND)
		err_mark_quiet();		/* an answer, not a failure: one plain line, exit 1 */
	else if (rc != 0 && in_archive_recovery())
		err_set(DRB_ERR_RECOVERY_ABORT, "%s (stopping recovery: PostgreSQL would take this "
				"failure for the end of the archive and promote too early; fix the repository "
				"and start the server again)", err_msg());
	return rc;
}
