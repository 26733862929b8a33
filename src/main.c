/*
 * main.c — drbackup entry point: parse configuration, dispatch the command, turn the
 * one recorded error into one line on stderr and the documented exit code.
 */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include <config.h>  /* autoconf: PACKAGE_VERSION */

#include "command.h"
#include "config.h"
#include "error.h"
#include "log.h"

typedef int (*command_fn) (config_t *cfg);

static const command_fn handlers[CMD_COUNT] = {
	[CMD_REPO_CREATE] = cmd_repo_create,
	[CMD_STANZA_CREATE] = cmd_stanza_create,
	[CMD_REPO_LS] = cmd_repo_ls,
	[CMD_REPO_PUT] = cmd_repo_put,
	[CMD_REPO_GET] = cmd_repo_get,
	[CMD_REPO_RM] = cmd_repo_rm,
	[CMD_ARCHIVE_PUSH] = cmd_archive_push,
	[CMD_ARCHIVE_GET] = cmd_archive_get,
	[CMD_REPO_SYNC] = cmd_repo_sync,
	[CMD_ARCHIVE_PUSH_ASYNC] = cmd_archive_push_async,
	[CMD_ARCHIVE_GET_ASYNC] = cmd_archive_get_async,
	[CMD_BACKUP] = cmd_backup,
	[CMD_EXPIRE] = cmd_expire,
	[CMD_INFO] = cmd_info,
	[CMD_RESTORE] = cmd_restore,
	[CMD_VERIFY] = cmd_verify,
	[CMD_RESTORE_TEST] = cmd_restore_test,
	[CMD_CHECK] = cmd_check,
	[CMD_EXPORT] = cmd_export,
	[CMD_KEY_ROTATE] = cmd_key_rotate,
	[CMD_METRICS] = cmd_metrics,
};

int
main(int argc, char **argv)
{
	config_t   *cfg;
	drb_command cmd;
	int			rc = 0;

	cfg = config_parse(argc, argv);
	if (cfg == NULL)
	{
		log_error("%s", err_msg());
		return err_exit_code(err_kind());
	}

	cmd = config_command(cfg);
	switch (cmd)
	{
		case CMD_HELP:
			rc = config_print_help(config_nargs(cfg) > 0 ? config_arg(cfg, 0) : NULL);
			break;
		case CMD_VERSION:
			printf("drbackup %s\n", PACKAGE_VERSION);
			break;
		default:
			if (cmd <= CMD_NONE || cmd >= CMD_COUNT || handlers[cmd] == NULL)
				rc = err_set(DRB_ERR_INTERNAL, "command '%s' is not implemented",
							 config_command_name(cmd));
			else
			{
				curl_global_init(CURL_GLOBAL_DEFAULT);
				rc = handlers[cmd] (cfg);
				curl_global_cleanup();
			}
			break;
	}

	if (rc != 0)
	{
		if (err_is_quiet())
			fprintf(stderr, "drbackup: %s: %s\n", config_command_name(cmd), err_msg());
		else
			log_error("%s", err_msg());
		rc = err_exit_code(err_kind());
	}
	config_free(cfg);
	log_forget_secrets();
	log_close();
	return rc;
}
