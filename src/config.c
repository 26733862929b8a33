/*
 * config.c — configuration from the command line, the environment and the config file.
 *
 * The rules (names, types, ranges, sections, secrets, which command takes what) are the
 * tables in options.c; this file only knows where values come from and in which order
 * they win: command line > environment > config file ([stanza], then [global]) > default.
 * See config.h for the contract.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "filter_compress.h"
#include "error.h"
#include "ini.h"
#include "log.h"
#include "mem.h"
#include "options.h"

extern char **environ;

#define ENV_PREFIX		"DRBACKUP_"
#define ENV_PREFIX_LEN	(sizeof(ENV_PREFIX) - 1)

/* Where a value came from, lowest precedence first. */
typedef enum cfg_src
{
	SRC_UNSET = 0,
	SRC_DEFAULT,
	SRC_FILE,
	SRC_ENV,
	SRC_CLI,
} cfg_src;

typedef struct cfg_slot
{
	char	   *text;			/* canonical text, NULL when unset */
	int64_t		num;			/* int, size: the number; bool: 1/0 */
	cfg_src		source;
} cfg_slot;

struct config
{
	drb_command command;
	int			nargs;
	char	  **args;
	cfg_slot   *slots;			/* opt_count * REPO_MAX; non-indexed options use the first */
};

/* An option found on the command line, before the command is known. */
typedef struct cli_opt
{
	const opt_def *def;
	int			index;
	const char *value;
} cli_opt;

typedef struct cli_words
{
	cli_opt    *opts;
	int			nopts;
	const char *command;		/* first word that is not an option */
	const char **args;			/* the words after it */
	int			nargs;
	bool		help;			/* --help or -h */
	bool		version;		/* --version */
} cli_words;

/* One key=value line of the config file. */
typedef struct ini_entry
{
	const opt_def *def;
	int			index;
	char	   *value;
	char	   *section;
	int			line;
} ini_entry;

typedef struct ini_file
{
	const char *path;
	ini_entry  *entries;
	size_t		n;
} ini_file;

/* ---------------------------------------------------------------------------------------
 * Slots
 * ------------------------------------------------------------------------------------- */
static cfg_slot *
slot_of(const config_t *cfg, const opt_def *def, int index)
{
	return &cfg->slots[opt_position(def) * REPO_MAX + (index > 0 ? index - 1 : 0)];
}

static void
slot_clear(cfg_slot *slot, const opt_def *def)
{
	if (slot->text && def->secret)
		secure_zero(slot->text, strlen(slot->text));
	free(slot->text);
	slot->text = NULL;
	slot->num = 0;
	slot->source = SRC_UNSET;
}

/* Store an already checked value (takes norm) unless a higher source set the slot. */
static void
slot_store(config_t *cfg, const opt_def *def, int index, char *norm, int64_t num, cfg_src src)
{
	cfg_slot   *slot = slot_of(cfg, def, index);

	if (slot->source > src)
	{
		if (def->secret)
			secure_zero(norm, strlen(norm));
		free(norm);
		return;
	}
	slot_clear(slot, def);
	slot->text = norm;
	slot->num = num;
	slot->source = src;
}

/*
 * Check text against def's rules. On success *norm and *num hold the canonical value. On
 * failure err_set names the option, where it came from ("where": NULL for the command
 * line), the value (unless secret) and what is allowed.
 */
static int
check_value(const opt_def *def, int index, const char *text, cfg_src src, const char *where,
			char **norm, int64_t *num)
{
	char		allowed[512];
	char		name[OPT_NAME_MAX];
	drb_err		kind = src == SRC_CLI ? DRB_ERR_USAGE : DRB_ERR_CONFIG;

	if (opt_parse_value(def, text, num, norm) == 0)
		return 0;
	opt_describe_allowed(def, allowed, sizeof(allowed));
	opt_full_name(def, index, name);
	if (def->secret)
		return err_set(kind, "invalid value for option '%s%s'%s%s (not shown: secret): expected %s",
					   src == SRC_CLI ? "--" : "", name, where ? " in " : "", where ? where : "",
					   allowed);
	return err_set(kind, "invalid value '%s' for option '%s%s'%s%s: expected %s",
				   text, src == SRC_CLI ? "--" : "", name, where ? " in " : "", where ? where : "",
				   allowed);
}

static int
assign_value(config_t *cfg, const opt_def *def, int index, const char *text, cfg_src src,
			 const char *where)
{
	char	   *norm;
	int64_t		num;

	if (check_value(def, index, text, src, where, &norm, &num) != 0)
		return -1;
	slot_store(cfg, def, index, norm, num, src);
	return 0;
}

static void
assign_defaults(config_t *cfg)
{
	for (size_t i = 0; i < opt_count; i++)
	{
		const opt_def *def = &opt_table[i];
		int			last = def->indexed ? REPO_MAX : 1;

		if (def->def == NULL)
			continue;
		for (int index = 1; index <= last; index++)
		{
			char	   *norm;
			int64_t		num;

			if (opt_parse_value(def, def->def, &num, &norm) != 0)
			{
				fprintf(stderr, "drbackup: internal error: bad default '%s' for option '%s'\n",
						def->def, def->name);
				abort();
			}
			slot_store(cfg, def, def->indexed ? index : 0, norm, num, SRC_DEFAULT);
		}
	}
}

/* ---------------------------------------------------------------------------------------
 * Option names
 * ------------------------------------------------------------------------------------- */

/*
 * Resolve a user-facing option name. On failure err_set(kind) explains: unknown (with the
 * closest name when one is close), missing or out-of-range repository number. dash is
 * "--" for the command line, "" elsewhere; where is NULL or " in config file ...".
 */
static int
resolve_name(const char *name, const char *dash, drb_err kind, const char *where,
			 const opt_def **def, int *index)
{
	char		full[OPT_NAME_MAX];
	char		suggestion[OPT_NAME_MAX];

	where = where ? where : "";
	switch (opt_resolve(name, def, index))
	{
		case OPT_RESOLVED:
			return 0;
		case OPT_NEEDS_INDEX:
			opt_full_name(*def, 1, full);
			return err_set(kind, "option '%s%s'%s needs a repository number: %s%s (repo1 .. repo%d)",
						   dash, name, where, dash, full, REPO_MAX);
		case OPT_BAD_INDEX:
			return err_set(kind, "option '%s%s'%s: repository number %d is out of range 1..%d",
						   dash, name, where, *index, REPO_MAX);
		case OPT_UNKNOWN:
			break;
	}
	if (opt_suggest(name, suggestion))
		return err_set(kind, "unknown option '%s%s'%s (did you mean '%s%s'?)",
					   dash, name, where, dash, suggestion);
	return err_set(kind, "unknown option '%s%s'%s (see 'drbackup help')", dash, name, where);
}

/* ---------------------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------------------- */

/* Split argv into options, the command and its arguments; values are checked later. */
static int
cli_scan(int argc, char **argv, cli_words *w)
{
	bool		options_done = false;

	memset(w, 0, sizeof(*w));
	w->opts = xcalloc((size_t) argc + 1, sizeof(cli_opt));
	w->args = xcalloc((size_t) argc + 1, sizeof(char *));

	for (int i = 1; i < argc; i++)
	{
		const char *word = argv[i];
		const char *eq;
		char	   *name;
		const opt_def *def;
		int			index;
		const char *value;
		int			rc;

		if (options_done || word[0] != '-' || word[1] == '\0')
		{
			if (w->command == NULL)
				w->command = word;
			else
				w->args[w->nargs++] = word;
			continue;
		}
		if (strcmp(word, "--") == 0)
		{
			options_done = true;
			continue;
		}
		if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0)
		{
			w->help = true;
			continue;
		}
		if (strcmp(word, "--version") == 0)
		{
			w->version = true;
			continue;
		}
		if (word[1] != '-')
			return err_set(DRB_ERR_USAGE, "unknown option '%s' (options are written --name=value; "
						   "see 'drbackup help')", word);

		eq = strchr(word + 2, '=');
		name = eq ? xstrndup(word + 2, (size_t) (eq - word - 2)) : xstrdup(word + 2);
		value = eq ? eq + 1 : NULL;

		/* --no-NAME negates a boolean option */
		if (strncmp(name, "no-", 3) == 0 && opt_resolve(name + 3, &def, &index) == OPT_RESOLVED)
		{
			if (def->type != OPT_TYPE_BOOL)
				rc = err_set(DRB_ERR_USAGE, "option '--%s' is not valid: only boolean options "
							 "can be negated with --no-", name);
			else if (value != NULL)
				rc = err_set(DRB_ERR_USAGE, "option '--%s' does not take a value", name);
			else
				rc = 0;
			value = "n";
		}
		else
			rc = resolve_name(name, "--", DRB_ERR_USAGE, NULL, &def, &index);
		if (rc != 0)
		{
			free(name);
			return -1;
		}

		if (value == NULL)
		{
			if (def->type == OPT_TYPE_BOOL)
				value = "y";
			else if (i + 1 < argc)
				value = argv[++i];
			else
			{
				err_set(DRB_ERR_USAGE, "option '--%s' needs a value", name);
				free(name);
				return -1;
			}
		}

		if (def->secret)
		{
			char		env[OPT_NAME_MAX];
			char		full[OPT_NAME_MAX];

			log_register_secret(value);
			opt_full_name(def, index, full);
			opt_env_name(def, index, env);
			free(name);
			return err_set(DRB_ERR_USAGE, "option '--%s' is a secret and may not be given on the "
						   "command line (other users can see it in the process list): set it "
						   "in the config file or in the environment variable %s", full, env);
		}

		for (int j = 0; j < w->nopts; j++)
		{
			if (w->opts[j].def == def && w->opts[j].index == index)
			{
				char		full[OPT_NAME_MAX];

				opt_full_name(def, index, full);
				free(name);
				return err_set(DRB_ERR_USAGE, "option '--%s' is given more than once", full);
			}
		}
		free(name);
		w->opts[w->nopts].def = def;
		w->opts[w->nopts].index = index;
		w->opts[w->nopts].value = value;
		w->nopts++;
	}
	return 0;
}

static void
cli_words_free(cli_words *w)
{
	free(w->opts);
	free(w->args);
}

/* Decide the command from the words and shortcuts; fills cfg->command and cfg->args. */
static int
cli_command(config_t *cfg, const cli_words *w)
{
	const cmd_def *cmd = NULL;

	if (w->command != NULL)
	{
		cmd = cmd_find(w->command);
		if (cmd == NULL)
		{
			const char *close = cmd_suggest(w->command);

			if (close)
				return err_set(DRB_ERR_USAGE, "unknown command '%s' (did you mean '%s'?)",
							   w->command, close);
			return err_set(DRB_ERR_USAGE, "unknown command '%s' (see 'drbackup help')", w->command);
		}
	}

	if (w->version)
	{
		cfg->command = CMD_VERSION;
		return 0;
	}
	if (w->help)
	{
		/* "drbackup repo-put --help" is "drbackup help repo-put" */
		cfg->command = CMD_HELP;
		if (cmd != NULL && cmd->id != CMD_HELP)
		{
			cfg->args = xcalloc(1, sizeof(char *));
			cfg->args[0] = xstrdup(cmd->name);
			cfg->nargs = 1;
		}
		else if (cmd != NULL && w->nargs > 0)
		{
			cfg->args = xcalloc(1, sizeof(char *));
			cfg->args[0] = xstrdup(w->args[0]);
			cfg->nargs = 1;
		}
		return 0;
	}
	if (cmd == NULL)
		return err_set(DRB_ERR_USAGE, "no command given: usage: drbackup [GLOBAL OPTIONS] COMMAND "
					   "[OPTIONS] [ARGS]; 'drbackup help' lists the commands");

	cfg->command = cmd->id;
	if (w->nargs < cmd->min_args || (cmd->max_args >= 0 && w->nargs > cmd->max_args))
	{
		const char *what;

		if (w->nargs < cmd->min_args)
			what = cmd->min_args == cmd->max_args ? "needs" : "needs at least";
		else
			what = cmd->min_args == cmd->max_args ? "needs" : "takes at most";
		return err_set(DRB_ERR_USAGE, "command '%s' %s %d argument%s but got %d: usage: "
					   "drbackup [OPTIONS] %s",
					   cmd->name, what, w->nargs < cmd->min_args ? cmd->min_args : cmd->max_args,
					   (w->nargs < cmd->min_args ? cmd->min_args : cmd->max_args) == 1 ? "" : "s",
					   w->nargs, cmd->usage);
	}
	cfg->args = xcalloc((size_t) w->nargs + 1, sizeof(char *));
	for (int i = 0; i < w->nargs; i++)
		cfg->args[i] = xstrdup(w->args[i]);
	cfg->nargs = w->nargs;
	return 0;
}

/* Check the command-line options against the command and store them. */
static int
cli_apply(config_t *cfg, const cli_words *w)
{
	for (int i = 0; i < w->nopts; i++)
	{
		const cli_opt *o = &w->opts[i];

		/* with --help every known option is tolerated: the user asks what they mean */
		if (!w->help && !opt_takes(o->def, cfg->command))
		{
			char		full[OPT_NAME_MAX];
			const char *cmd = config_command_name(cfg->command);

			opt_full_name(o->def, o->index, full);
			return err_set(DRB_ERR_USAGE, "option '--%s' is not valid for command '%s' (see "
						   "'drbackup help %s')", full, cmd, cmd);
		}
		if (assign_value(cfg, o->def, o->index, o->value, SRC_CLI, NULL) != 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Environment
 * ------------------------------------------------------------------------------------- */

/* Every DRBACKUP_<NAME> variable; unknown ones are reported as a warning and ignored. */
static int
env_apply(config_t *cfg)
{
	for (char **e = environ; e && *e; e++)
	{
		const char *var = *e;
		const char *eq = strchr(var, '=');
		char	   *envname;
		char	   *name;
		const opt_def *def;
		int			index;
		char		expect[OPT_NAME_MAX];
		char		where[OPT_NAME_MAX + 32];
		int			rc;

		if (eq == NULL || strncmp(var, ENV_PREFIX, ENV_PREFIX_LEN) != 0)
			continue;
		envname = xstrndup(var, (size_t) (eq - var));
		name = xstrdup(envname + ENV_PREFIX_LEN);
		for (char *p = name; *p; p++)
			*p = *p == '_' ? '-' : (char) (*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);

		if (opt_resolve(name, &def, &index) != OPT_RESOLVED ||
			(opt_env_name(def, index, expect), strcmp(expect, envname) != 0))
		{
			log_warn("environment variable %s is not a drbackup option: ignored", envname);
			free(name);
			free(envname);
			continue;
		}
		if (def->secret)
			log_register_secret(eq + 1);
		snprintf(where, sizeof(where), "environment variable %s", envname);
		rc = assign_value(cfg, def, index, eq + 1, SRC_ENV, where);
		free(name);
		free(envname);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Config file
 * ------------------------------------------------------------------------------------- */
static void
ini_free(ini_file *ini)
{
	for (size_t i = 0; i < ini->n; i++)
	{
		if (ini->entries[i].def->secret)
			secure_zero(ini->entries[i].value, strlen(ini->entries[i].value));
		free(ini->entries[i].value);
		free(ini->entries[i].section);
	}
	free(ini->entries);
	ini->entries = NULL;
	ini->n = 0;
}

static bool
section_name_ok(const char *name)
{
	const opt_def *stanza;
	int			index;

	if (strcmp(name, "global") == 0)
		return true;
	opt_resolve("stanza", &stanza, &index);
	return stanza->check(name);
}

/* ini_parse_file callback: keep one key=value after the section, name and duplicate rules. */
static int
ini_add(const char *section, const char *key, const char *value, int lineno, void *arg)
{
	ini_file   *ini = arg;
	const opt_def *def;
	int			index;
	char		where[PATH_MAX + 64];
	char		full[OPT_NAME_MAX];

	snprintf(where, sizeof(where), " in config file '%s' line %d", ini->path, lineno);
	if (section[0] == '\0')
		return err_set(DRB_ERR_CONFIG, "option '%s'%s is outside any section: put it under "
					   "[global] or [STANZA]", key, where);
	if (!section_name_ok(section))
		return err_set(DRB_ERR_CONFIG, "invalid section [%s]%s: expected [global] or a stanza "
					   "name (letters, digits, '_', '.', '-')", section, where);
	if (resolve_name(key, "", DRB_ERR_CONFIG, where, &def, &index) != 0)
		return -1;
	opt_full_name(def, index, full);

	if (def->section == OPT_SECTION_CMDLINE)
	{
		char		env[OPT_NAME_MAX];

		opt_env_name(def, index, env);
		return err_set(DRB_ERR_CONFIG, "option '%s'%s may not be set in a config file: give it on "
					   "the command line or as %s", full, where, env);
	}
	if (def->section == OPT_SECTION_STANZA && strcmp(section, "global") == 0)
		return err_set(DRB_ERR_CONFIG, "option '%s'%s must be set in a stanza section, not in "
					   "[global]", full, where);
	for (size_t i = 0; i < ini->n; i++)
	{
		if (ini->entries[i].def == def && ini->entries[i].index == index &&
			strcmp(ini->entries[i].section, section) == 0)
			return err_set(DRB_ERR_CONFIG, "option '%s' is set twice in section [%s] of config "
						   "file '%s' (lines %d and %d)", full, section, ini->path,
						   ini->entries[i].line, lineno);
	}

	if (def->secret)
		log_register_secret(value);
	ini->entries = xrealloc(ini->entries, (ini->n + 1) * sizeof(ini_entry));
	ini->entries[ini->n].def = def;
	ini->entries[ini->n].index = index;
	ini->entries[ini->n].value = xstrdup(value);
	ini->entries[ini->n].section = xstrdup(section);
	ini->entries[ini->n].line = lineno;
	ini->n++;
	return 0;
}

/* Refuse a file holding secrets that "other" may read. */
static int
ini_check_secrets(const ini_file *ini, mode_t mode)
{
	buf_t		names;
	int			rc;

	if ((mode & S_IROTH) == 0)
		return 0;
	buf_init(&names);
	for (size_t i = 0; i < ini->n; i++)
	{
		char		full[OPT_NAME_MAX];
		bool		seen = false;

		if (!ini->entries[i].def->secret)
			continue;
		for (size_t j = 0; j < i; j++)
			if (ini->entries[j].def == ini->entries[i].def &&
				ini->entries[j].index == ini->entries[i].index)
				seen = true;
		if (seen)
			continue;
		opt_full_name(ini->entries[i].def, ini->entries[i].index, full);
		buf_printf(&names, "%s%s", names.len ? ", " : "", full);
	}
	if (names.len == 0)
	{
		buf_free(&names);
		return 0;
	}
	rc = err_set(DRB_ERR_CONFIG, "config file '%s' holds secrets (%s) but is readable by other "
				 "users: chmod 640 it", ini->path, buf_cstr(&names));
	buf_free(&names);
	return rc;
}

/* Check every value; store those of [global], then those of [stanza] over them. */
static int
ini_apply(config_t *cfg, const ini_file *ini, const char *stanza)
{
	for (int pass = 0; pass < 3; pass++)
	{
		for (size_t i = 0; i < ini->n; i++)
		{
			const ini_entry *e = &ini->entries[i];
			bool		global = strcmp(e->section, "global") == 0;
			bool		mine = stanza != NULL && strcmp(e->section, stanza) == 0;
			char		where[PATH_MAX + 64];
			char	   *norm;
			int64_t		num;

			/* pass 0: check sections not used now; 1: [global]; 2: [stanza] */
			if ((pass == 0 && (global || mine)) || (pass == 1 && !global) || (pass == 2 && !mine))
				continue;
			snprintf(where, sizeof(where), "config file '%s' line %d", ini->path, e->line);
			if (check_value(e->def, e->index, e->value, SRC_FILE, where, &norm, &num) != 0)
				return -1;
			if (pass == 0)
			{
				if (e->def->secret)
					secure_zero(norm, strlen(norm));
				free(norm);
			}
			else
				slot_store(cfg, e->def, e->index, norm, num, SRC_FILE);
		}
	}
	return 0;
}

/*
 * Read the config file: syntax and names first (ini_add), then the permission rule for
 * secrets, then the values. A missing file is fine unless it was asked for explicitly.
 */
static int
file_apply(config_t *cfg, const char *path, bool explicit, const char *stanza)
{
	struct stat st;
	ini_file	ini = {path, NULL, 0};
	int			rc;

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT && !explicit)
			return 0;
		return err_set(DRB_ERR_CONFIG, "unable to open config file '%s': %m", path);
	}
	if (!S_ISREG(st.st_mode))
		return err_set(DRB_ERR_CONFIG, "config file '%s' is not a regular file", path);
	rc = ini_parse_file(path, ini_add, &ini);
	if (rc != 0 && err_kind() == DRB_ERR_NOT_FOUND)
		rc = err_set(DRB_ERR_CONFIG, "config file '%s' disappeared while being read", path);
	if (rc == 0)
		rc = ini_check_secrets(&ini, st.st_mode);
	if (rc == 0)
		rc = ini_apply(cfg, &ini, stanza);
	ini_free(&ini);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * Checks across options, logging
 * ------------------------------------------------------------------------------------- */
static const opt_def *
def_of(const char *name, int *index)
{
	const opt_def *def;

	if (opt_resolve(name, &def, index) != OPT_RESOLVED)
	{
		fprintf(stderr, "drbackup: internal error: unknown option name '%s'\n", name);
		abort();
	}
	return def;
}

static int
check_combinations(const config_t *cfg)
{
	const cmd_def *cmd = cmd_by_id(cfg->command);
	int			type = compress_type_parse(cfg_str(cfg, "compress-type"));
	int			lo,
				hi,
				dflt;
	bool		cli;

	if (cmd && cmd->needs_stanza && cfg_str(cfg, "stanza") == NULL)
		return err_set(DRB_ERR_USAGE, "command '%s' requires option '--stanza' (or the environment "
					   "variable DRBACKUP_STANZA)", cmd->name);

	/* a level the chosen compressor does not have is a mistake wherever it came from */
	if (type <= COMPRESS_NONE || !cfg_is_set(cfg, "compress-level"))
		return 0;
	compress_level_range((compress_type) type, &lo, &hi, &dflt);
	int64_t		level = cfg_int(cfg, "compress-level");

	cli = strcmp(cfg_source(cfg, "compress-level"), "command line") == 0 ||
		strcmp(cfg_source(cfg, "compress-type"), "command line") == 0;
	if (level < lo || level > hi)
		return err_set(cli ? DRB_ERR_USAGE : DRB_ERR_CONFIG,
					   "option 'compress-level' is %lld (from %s) but compress-type '%s' "
					   "allows levels %d to %d", (long long) level,
					   cfg_source(cfg, "compress-level"), cfg_str(cfg, "compress-type"), lo, hi);
	return 0;
}

/* Console level always; the log file when log-level-file is not off (failure: a warning). */
static void
apply_logging(const config_t *cfg)
{
	int			console = log_level_parse(cfg_str(cfg, "log-level-console"));
	int			file = log_level_parse(cfg_str(cfg, "log-level-file"));

	if (console >= 0)
		log_set_console_level((log_level) console);
	if (file > LOG_OFF && cfg->command != CMD_HELP && cfg->command != CMD_VERSION)
	{
		const char *stanza = cfg_str(cfg, "stanza");
		char	   *path = xasprintf("%s/%s-%s.log", cfg_str(cfg, "log-path"),
									 stanza ? stanza : "all", config_command_name(cfg->command));

		if (log_open_file(path, (log_level) file) != 0)
		{
			log_warn("%s: logging to file disabled", err_msg());
			err_clear();
		}
		free(path);
	}
}

/* ---------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------- */
config_t *
config_parse(int argc, char **argv)
{
	config_t   *cfg = xcalloc(1, sizeof(config_t));
	cli_words	words;
	int			rc;

	cfg->slots = xcalloc(opt_count * REPO_MAX, sizeof(cfg_slot));
	assign_defaults(cfg);

	rc = cli_scan(argc, argv, &words);
	if (rc == 0)
		rc = cli_command(cfg, &words);
	if (rc == 0)
		rc = cli_apply(cfg, &words);
	/* help and version need no environment or config file (and must work without them) */
	if (rc == 0 && cfg->command != CMD_HELP && cfg->command != CMD_VERSION)
	{
		rc = env_apply(cfg);
		if (rc == 0)
		{
			int			index;
			const cfg_slot *conf = slot_of(cfg, def_of("config", &index), 0);

			rc = file_apply(cfg, conf->text, conf->source > SRC_DEFAULT, cfg_str(cfg, "stanza"));
		}
	}
	if (rc == 0)
		rc = check_combinations(cfg);
	cli_words_free(&words);
	if (rc != 0)
	{
		config_free(cfg);
		return NULL;
	}
	apply_logging(cfg);
	return cfg;
}

void
config_free(config_t *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < opt_count; i++)
		for (int j = 0; j < REPO_MAX; j++)
			slot_clear(&cfg->slots[i * REPO_MAX + (size_t) j], &opt_table[i]);
	free(cfg->slots);
	for (int i = 0; i < cfg->nargs; i++)
		free(cfg->args[i]);
	free(cfg->args);
	free(cfg);
}

drb_command
config_command(const config_t *cfg)
{
	return cfg->command;
}

const char *
config_command_name(drb_command cmd)
{
	const cmd_def *def = cmd_by_id(cmd);

	return def ? def->name : "none";
}

int
config_nargs(const config_t *cfg)
{
	return cfg->nargs;
}

const char *
config_arg(const config_t *cfg, int i)
{
	return i >= 0 && i < cfg->nargs ? cfg->args[i] : NULL;
}

/* The slot for a name; unknown names and wrong types are programming errors. */
static const cfg_slot *
lookup(const config_t *cfg, const char *name, int type_mask)
{
	int			index;
	const opt_def *def = def_of(name, &index);

	if (type_mask && !(type_mask & (1 << def->type)))
	{
		fprintf(stderr, "drbackup: internal error: option '%s' is a %s\n", name,
				opt_type_name(def->type));
		abort();
	}
	return slot_of(cfg, def, index);
}

const char *
cfg_str(const config_t *cfg, const char *name)
{
	return lookup(cfg, name, 0)->text;
}

int64_t
cfg_int(const config_t *cfg, const char *name)
{
	return lookup(cfg, name, 1 << OPT_TYPE_INT | 1 << OPT_TYPE_SIZE)->num;
}

bool
cfg_bool(const config_t *cfg, const char *name)
{
	return lookup(cfg, name, 1 << OPT_TYPE_BOOL)->num != 0;
}

bool
cfg_is_set(const config_t *cfg, const char *name)
{
	return lookup(cfg, name, 0)->source > SRC_DEFAULT;
}

const char *
cfg_source(const config_t *cfg, const char *name)
{
	switch (lookup(cfg, name, 0)->source)
	{
		case SRC_CLI:
			return "command line";
		case SRC_ENV:
			return "environment";
		case SRC_FILE:
			return "config file";
		case SRC_DEFAULT:
		case SRC_UNSET:
			break;
	}
	return "default";
}

static void
repo_name(int repo, const char *suffix, char out[OPT_NAME_MAX])
{
	if (repo < 1 || repo > REPO_MAX)
	{
		fprintf(stderr, "drbackup: internal error: repository number %d for '%s'\n", repo, suffix);
		abort();
	}
	snprintf(out, OPT_NAME_MAX, "repo%d-%s", repo, suffix);
}

const char *
cfg_repo_str(const config_t *cfg, int repo, const char *suffix)
{
	char		name[OPT_NAME_MAX];

	repo_name(repo, suffix, name);
	return cfg_str(cfg, name);
}

int64_t
cfg_repo_int(const config_t *cfg, int repo, const char *suffix)
{
	char		name[OPT_NAME_MAX];

	repo_name(repo, suffix, name);
	return cfg_int(cfg, name);
}

bool
cfg_repo_bool(const config_t *cfg, int repo, const char *suffix)
{
	char		name[OPT_NAME_MAX];

	repo_name(repo, suffix, name);
	return cfg_bool(cfg, name);
}

bool
cfg_repo_configured(const config_t *cfg, int repo)
{
	if (repo == 1)
		return true;
	if (repo < 1 || repo > REPO_MAX)
		return false;
	for (size_t i = 0; i < opt_count; i++)
		if (opt_table[i].indexed && slot_of(cfg, &opt_table[i], repo)->source > SRC_DEFAULT)
			return true;
	return false;
}

int
cfg_output_json(const config_t *cfg, bool *json)
{
	const char *v = cfg_str(cfg, "output");

	*json = v != NULL && strcmp(v, "json") == 0;
	if (v != NULL && !*json && strcmp(v, "text") != 0)
		return err_set(DRB_ERR_USAGE, "option --output: '%s' is not one of text, json", v);
	return 0;
}
