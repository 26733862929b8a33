/*
 * command.h — the command handlers main() dispatches to.
 *
 * A handler reads its options from cfg, calls the core and reports. It returns 0 on
 * success or -1 after err_set(); main() prints the one error line and exits with the
 * code of the error kind (docs/exit-codes.md). No storage or crypto logic lives here.
 */
#ifndef DRB_COMMAND_H
#define DRB_COMMAND_H

#include "config.h"

int			cmd_repo_create(config_t *cfg);
int			cmd_stanza_create(config_t *cfg);
int			cmd_repo_ls(config_t *cfg);
int			cmd_repo_put(config_t *cfg);
int			cmd_repo_get(config_t *cfg);
int			cmd_repo_rm(config_t *cfg);
int			cmd_archive_push(config_t *cfg);	/* archive/archive_push.c */
int			cmd_archive_get(config_t *cfg);		/* archive/archive_get.c */
int			cmd_repo_sync(config_t *cfg);		/* archive/repo_sync.c */
int			cmd_archive_push_async(config_t *cfg);	/* archive/archive_async.c */
int			cmd_archive_get_async(config_t *cfg);	/* archive/archive_get_async.c */
int			cmd_backup(config_t *cfg);			/* archive/backup.c */
int			cmd_expire(config_t *cfg);			/* archive/expire.c */
int			cmd_info(config_t *cfg);			/* archive/info.c */
int			cmd_restore(config_t *cfg);			/* restore/restore.c */
int			cmd_verify(config_t *cfg);			/* restore/verify.c */
int			cmd_restore_test(config_t *cfg);	/* restore/restore_test.c */
int			cmd_check(config_t *cfg);			/* src/cmd_check.c */
int			cmd_export(config_t *cfg);			/* restore/export.c */
int			cmd_key_rotate(config_t *cfg);		/* src/cmd_key_rotate.c */
int			cmd_metrics(config_t *cfg);			/* archive/metrics.c */

#endif
