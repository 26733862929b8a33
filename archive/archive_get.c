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
#include "archive.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "spool.h"

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

	if (archive_ctx_open(&ctx, cfg, true) != 0)
		return -1;
	rc = archive_get_one(&ctx, &w, dest, only);
	archive_ctx_close(&ctx);
	if (rc != 0 && err_kind() == DRB_ERR_NOT_FOUND)
		err_mark_quiet();		/* an answer, not a failure: one plain line, exit 1 */
	return rc;
}
