/*
 * main.c — drbackup entry point: parse configuration, dispatch the command, turn the
 * one recorded error into one line on stderr and the documented exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>


#include <config.h>  /* autoconf: PACKAGE_VERSION */

#include "command.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "options.h"

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

/*
 * Register every secret option's resolved value, whatever its source, so that no log line
 * or error can show it (config.c registers values as it reads them; this also covers
 * values normalised on the way).
 */
static void
register_secret_values(const config_t *cfg)
{
	for (size_t i = 0; i < opt_count; i++)
	{
		const opt_def *def = &opt_table[i];
		char		name[OPT_NAME_MAX];

		if (!def->secret)
			continue;
		for (int n = def->indexed ? 1 : 0; n <= (def->indexed ? REPO_MAX : 0); n++)
		{
			opt_full_name(def, n, name);
			log_register_secret(cfg_str(cfg, name));
		}
	}
}

/* "backup command begin 0.1.0: --stanza=main --repo1-cipher-pass=<redacted> ..." (info). */
static void
log_command_begin(const config_t *cfg, drb_command cmd)
{
	buf_t		line;

	if (!log_enabled(LOG_INFO))
		return;
	buf_init(&line);
	buf_printf(&line, "%s command begin %s:", config_command_name(cmd), PACKAGE_VERSION);
	for (int i = 0; i < config_nargs(cfg); i++)
		buf_printf(&line, " %s", config_arg(cfg, i));
	for (size_t i = 0; i < opt_count; i++)
	{
		const opt_def *def = &opt_table[i];
		char		name[OPT_NAME_MAX];

		for (int n = def->indexed ? 1 : 0; n <= (def->indexed ? REPO_MAX : 0); n++)
		{
			opt_full_name(def, n, name);
			if (!cfg_is_set(cfg, name))
				continue;
			if (def->secret)
				buf_printf(&line, " --%s=<redacted>", name);
			else
				buf_printf(&line, " --%s=%s", name, cfg_str(cfg, name));
		}
	}
	log_info("%s", buf_cstr(&line));
	buf_free(&line);
}

static double
elapsed_seconds(const struct timeval *start)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return (double) (now.tv_sec - start->tv_sec) + (double) (now.tv_usec - start->tv_usec) / 1e6;
}

int
main(int argc, char **argv)
{
	struct timeval start;
	config_t   *cfg;
	drb_command cmd;
	int			rc = 0;

	gettimeofday(&start, NULL);
	cfg = config_parse(argc, argv);
	if (cfg == NULL)
	{
		log_error("%s", err_msg());
		return err_exit_code(err_kind());
	}

	cmd = config_command(cfg);
	register_secret_values(cfg);
	if (cmd != CMD_HELP && cmd != CMD_VERSION)
		log_command_begin(cfg, cmd);
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
				rc = handlers[cmd] (cfg);
			}
			break;
	}

	if (rc != 0)
	{
		if (err_is_quiet())
		{
			/* an expected answer: one plain stderr line, redacted like every other */
			char	   *clean = log_redact(err_msg());

			fprintf(stderr, "drbackup: %s: %s\n", config_command_name(cmd), clean);
			free(clean);
		}
		else
			log_error("%s", err_msg());
		rc = err_exit_code(err_kind());
	}
	if (cmd != CMD_HELP && cmd != CMD_VERSION)
	{
		if (rc == 0)
			log_info("%s command end: completed successfully (%.3fs)", config_command_name(cmd),
					 elapsed_seconds(&start));
		else
			log_info("%s command end: %s with exit code %d (%.3fs)%s%s",
					 config_command_name(cmd), err_is_quiet() ? "answered" : "aborted", rc,
					 elapsed_seconds(&start), err_is_quiet() ? ": " : "",
					 err_is_quiet() ? err_msg() : "");
	}
	config_free(cfg);
	log_forget_secrets();
	log_close();
	return rc;
}
