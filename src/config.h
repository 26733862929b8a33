/*
 * config.h — command line, environment and INI configuration.
 *
 * drbackup [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]. Every option is defined once in the
 * option table (options.c: name, type, default, range or allowed values, section, secret
 * flag, which commands take it, help text); parsing, validation, `help` and
 * docs/configuration.md all come from that table.
 *
 * Precedence: command line > environment (DRBACKUP_<NAME> with '-' -> '_', upper case)
 * > config file ([<stanza>] section, then [global]) > default.
 * The config file is --config (default /etc/drbackup/drbackup.conf; a missing default file
 * is fine, a missing --config file is an error). A file that holds a secret option and is
 * readable by "other" is refused (DRB_ERR_CONFIG).
 * Repository options exist for repo1..repo4: the table holds "repo-s3-bucket" once and the
 * parser accepts "repo1-s3-bucket" .. "repo4-s3-bucket".
 * Secret values are registered with log_register_secret() so they never reach output.
 */
#ifndef DRB_CONFIG_H
#define DRB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define REPO_MAX 4

typedef enum drb_command
{
	CMD_NONE = 0,
	CMD_HELP,
	CMD_VERSION,
	CMD_REPO_CREATE,
	CMD_STANZA_CREATE,
	CMD_REPO_LS,
	CMD_REPO_PUT,
	CMD_REPO_GET,
	CMD_REPO_RM,
	CMD_ARCHIVE_PUSH,
	CMD_ARCHIVE_GET,
	CMD_REPO_SYNC,
	CMD_ARCHIVE_PUSH_ASYNC,		/* hidden: the asynchronous archive-push worker */
	CMD_ARCHIVE_GET_ASYNC,		/* hidden: the archive-get prefetch worker */
	CMD_BACKUP,
	CMD_EXPIRE,
	CMD_INFO,
	CMD_RESTORE,
	CMD_VERIFY,
	CMD_RESTORE_TEST,
	CMD_CHECK,
	CMD_EXPORT,
	CMD_KEY_ROTATE,
	CMD_METRICS,
	CMD_COUNT
} drb_command;

typedef struct config config_t;

/*
 * Parse everything; NULL with err_set (DRB_ERR_USAGE or DRB_ERR_CONFIG) on bad input.
 * help and version read neither the environment nor the config file. On success the
 * console log level is set from log-level-console, and when log-level-file is not off the
 * log file <log-path>/<stanza|all>-<command>.log is opened (failing that is a warning).
 */
config_t   *config_parse(int argc, char **argv);
void		config_free(config_t *cfg);

drb_command config_command(const config_t *cfg);
const char *config_command_name(drb_command cmd);
/* Positional arguments after the command. */
int			config_nargs(const config_t *cfg);
const char *config_arg(const config_t *cfg, int i);

/*
 * Resolved values (explicit or default). Unknown names, and cfg_int/cfg_bool on an option
 * of another type, abort (programming error). cfg_str works for every type and returns the
 * canonical text ("8MiB", "y"/"n", paths without trailing '/').
 */
const char *cfg_str(const config_t *cfg, const char *name);		/* NULL if unset, no default */
int64_t		cfg_int(const config_t *cfg, const char *name);		/* int, size (bytes); 0 if unset */
bool		cfg_bool(const config_t *cfg, const char *name);
bool		cfg_is_set(const config_t *cfg, const char *name);		/* given explicitly */

/* --output for the reporting commands (repo-ls, info, verify): "text" (default) or "json";
 * anything else (a file name is only for metrics) is DRB_ERR_USAGE. */
int			cfg_output_json(const config_t *cfg, bool *json);
/* "command line", "environment", "config file" or "default". */
const char *cfg_source(const config_t *cfg, const char *name);

/* Repository options by index: cfg_repo_str(cfg, 2, "s3-bucket") is "repo2-s3-bucket". */
const char *cfg_repo_str(const config_t *cfg, int repo, const char *suffix);
int64_t		cfg_repo_int(const config_t *cfg, int repo, const char *suffix);
bool		cfg_repo_bool(const config_t *cfg, int repo, const char *suffix);
/* A repository is configured when any of its options is set; repo1 always is. */
bool		cfg_repo_configured(const config_t *cfg, int repo);

#include <stdio.h>

/* Help text generated from the tables (help.c). Returns 0, or -1 for an unknown command. */
int			config_print_help(const char *command);
/* The same, written to out (config_print_help writes to stdout). */
int			config_write_help(FILE *out, const char *command);
/* docs/configuration.md content, from the option table. */
void		config_write_markdown(FILE *out);
/* docs/drbackup.1, the man page (roff), from the same tables. */
void		config_write_man(FILE *out);

#endif
