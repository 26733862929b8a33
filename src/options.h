/*
 * options.h — the command and option tables, and the value rules they imply.
 *
 * Every command and every option drbackup knows is one row in a table in options.c.
 * config.c parses the command line, environment and config file from these rows;
 * help.c prints `drbackup help` and writes docs/configuration.md from them. Adding an
 * option is adding one row; nothing else names options one by one (the command handlers
 * read values by name through config.h).
 *
 * Repository options are "indexed": the table holds "repo-s3-bucket" once and users write
 * "repo1-s3-bucket" .. "repo4-s3-bucket". PostgreSQL options are literal names ("pg1-path").
 *
 * Value rules (opt_parse_value):
 *   string  any non-empty text (plus the row's check function, if any)
 *   path    absolute path; trailing slashes are dropped
 *   int     decimal integer within [min, max]
 *   size    integer with an optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (case
 *           insensitive, all powers of 1024) within [min, max] bytes
 *   bool    y/n (also yes/no, true/false, on/off); stored as "y" or "n"
 *   enum    exactly one of the row's allowed values
 */
#ifndef DRB_OPTIONS_H
#define DRB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum opt_type
{
	OPT_TYPE_STRING,
	OPT_TYPE_PATH,
	OPT_TYPE_INT,
	OPT_TYPE_SIZE,
	OPT_TYPE_BOOL,
	OPT_TYPE_ENUM,
} opt_type;

/* Where an option may be set (the command line and the environment always work). */
typedef enum opt_section
{
	OPT_SECTION_CMDLINE,		/* command line or environment only, never a config file */
	OPT_SECTION_ANY,			/* also config file, [global] or a stanza section */
	OPT_SECTION_STANZA,			/* also config file, stanza section only */
} opt_section;

/* Grouping for help and documentation only. */
typedef enum opt_group
{
	OPT_GROUP_GENERAL,
	OPT_GROUP_LOG,
	OPT_GROUP_PG,
	OPT_GROUP_COMMAND,
	OPT_GROUP_ARCHIVE,
	OPT_GROUP_BACKUP,
	OPT_GROUP_RESTORE,
	OPT_GROUP_REPO,
	OPT_GROUP_COUNT
} opt_group;

/* Command sets for opt_def.commands. */
#define CMD_BIT(c)		(1u << (c))
#define CMDS_ALL		(((1u << CMD_COUNT) - 1) & ~CMD_BIT(CMD_NONE))
/* commands that open repositories (they take the repoN-* options) */
#define CMDS_ARCHIVE	(CMD_BIT(CMD_ARCHIVE_PUSH) | CMD_BIT(CMD_ARCHIVE_GET) | \
						 CMD_BIT(CMD_ARCHIVE_PUSH_ASYNC) | CMD_BIT(CMD_ARCHIVE_GET_ASYNC))
/* backups and their catalog (they take the lock and retention options) */
#define CMDS_BACKUP		(CMD_BIT(CMD_BACKUP) | CMD_BIT(CMD_EXPIRE) | CMD_BIT(CMD_INFO) | \
						 CMD_BIT(CMD_RESTORE) | CMD_BIT(CMD_VERIFY) | CMD_BIT(CMD_RESTORE_TEST) | \
						 CMD_BIT(CMD_CHECK) | CMD_BIT(CMD_EXPORT) | CMD_BIT(CMD_KEY_ROTATE) | \
						 CMD_BIT(CMD_METRICS))
#define CMDS_REPO		(CMD_BIT(CMD_REPO_CREATE) | CMD_BIT(CMD_STANZA_CREATE) | \
						 CMD_BIT(CMD_REPO_LS) | CMD_BIT(CMD_REPO_PUT) | \
						 CMD_BIT(CMD_REPO_GET) | CMD_BIT(CMD_REPO_RM) | \
						 CMD_BIT(CMD_REPO_SYNC) | CMDS_ARCHIVE | CMDS_BACKUP)

/* Longest option name, environment variable name or formatted value description. */
#define OPT_NAME_MAX	64

/* Extra check for string values; true when acceptable. */
typedef bool (*opt_check_fn) (const char *value);

typedef struct opt_def
{
	const char *name;			/* "process-max"; indexed: "repo-s3-bucket" */
	opt_type	type;
	opt_group	group;
	opt_section section;
	bool		indexed;		/* repository option, repo1..repo4 */
	bool		secret;			/* never on the command line, never printed */
	uint32_t	commands;		/* CMD_BIT set of commands that take it */
	const char *def;			/* default as text, NULL: unset */
	int64_t		min;			/* int and size: inclusive range */
	int64_t		max;
	const char *const *allowed; /* enum: NULL-terminated allowed values */
	opt_check_fn check;			/* string/path: extra check, NULL if none */
	const char *check_desc;		/* what check accepts ("letters, digits, ...") */
	const char *arg;			/* placeholder in help ("NAME"), NULL: from the type */
	const char *help;
} opt_def;

typedef struct cmd_arg
{
	const char *name;			/* "LOCAL" */
	const char *help;
} cmd_arg;

typedef struct cmd_def
{
	drb_command id;
	const char *name;			/* "repo-put" */
	const char *usage;			/* after "drbackup [OPTIONS] ": "repo-put LOCAL PATH" */
	const char *summary;		/* one line */
	const char *help;			/* longer description; "\n\n" separates paragraphs */
	const cmd_arg *args;		/* positional arguments, {NULL, NULL}-terminated */
	int			min_args;
	int			max_args;		/* -1: no limit */
	bool		needs_stanza;
	bool		hidden;			/* internal (worker processes): not in help or docs */
} cmd_def;

extern const opt_def opt_table[];
extern const size_t opt_count;
extern const cmd_def cmd_table[];
extern const size_t cmd_count;

/* Result of resolving a user-facing option name. */
typedef enum opt_resolve_result
{
	OPT_RESOLVED,				/* *def and *index set (index 0 for non-indexed options) */
	OPT_UNKNOWN,				/* no such option */
	OPT_NEEDS_INDEX,			/* "repo-path": an indexed option written without its index */
	OPT_BAD_INDEX,				/* "repo7-path": *def set, *index holds the number given */
} opt_resolve_result;

/* Map "repo2-s3-bucket" to (repo-s3-bucket, 2), "process-max" to (process-max, 0). */
opt_resolve_result opt_resolve(const char *name, const opt_def **def, int *index);

/* Position of def in opt_table. */
size_t		opt_position(const opt_def *def);

/* True when command cmd takes option def. */
bool		opt_takes(const opt_def *def, drb_command cmd);

/* "repo2-s3-bucket" for (repo-s3-bucket, 2); index 0 on an indexed option: "repo<N>-s3-bucket". */
void		opt_full_name(const opt_def *def, int index, char out[OPT_NAME_MAX]);

/* "DRBACKUP_REPO2_S3_BUCKET"; index 0 on an indexed option: "DRBACKUP_REPO<N>_S3_BUCKET". */
void		opt_env_name(const opt_def *def, int index, char out[OPT_NAME_MAX]);

/*
 * Check and normalise a value. On success returns 0, sets *num (int, size: the number;
 * bool: 1/0; others 0) and *norm (caller frees: the canonical text). On failure returns
 * -1 without err_set and without keeping anything; opt_describe_allowed says why.
 */
int			opt_parse_value(const opt_def *def, const char *text, int64_t *num, char **norm);

/* What def accepts, for error messages: "an integer from 1 to 64". */
void		opt_describe_allowed(const opt_def *def, char *out, size_t size);

/* Short type name: "string", "path", "integer", "size", "boolean", "enum". */
const char *opt_type_name(opt_type type);

/* Placeholder for the value in help: row's arg, else "N", "SIZE", "PATH", "TEXT", a|b|c. */
void		opt_arg_name(const opt_def *def, char *out, size_t size);

/* "8MiB" for 8388608; plain bytes when no binary unit divides it. */
void		opt_format_size(int64_t bytes, char out[OPT_NAME_MAX]);

const char *opt_group_title(opt_group group);

/* Closest option name to a misspelt one, written into out; false if none is close. */
bool		opt_suggest(const char *name, char out[OPT_NAME_MAX]);

const cmd_def *cmd_find(const char *name);
const cmd_def *cmd_by_id(drb_command id);
/* Closest command name to a misspelt one, NULL if none is close. */
const char *cmd_suggest(const char *name);

/* Levenshtein distance (used for suggestions). */
size_t		edit_distance(const char *a, const char *b);

#endif
