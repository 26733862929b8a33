/*
 * help.c — `drbackup help [COMMAND]`, docs/configuration.md and the man page
 * docs/drbackup.1, all written from the command and option tables in options.c (see
 * config.h). Nothing here names an option.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <config.h>				/* autoconf: PACKAGE_VERSION */

#include "config.h"
#include "error.h"
#include "options.h"

#define HELP_WIDTH		80
#define OPT_INDENT		8

/* Help groups in the order a command's help shows them. */
static const opt_group command_group_order[] = {
	OPT_GROUP_COMMAND, OPT_GROUP_RESTORE, OPT_GROUP_BACKUP, OPT_GROUP_ARCHIVE, OPT_GROUP_REPO, OPT_GROUP_GENERAL, OPT_GROUP_LOG, OPT_GROUP_PG,
};

/* Groups in the order of the general help and of the documentation. */
static const opt_group doc_group_order[] = {
	OPT_GROUP_GENERAL, OPT_GROUP_LOG, OPT_GROUP_PG, OPT_GROUP_COMMAND, OPT_GROUP_ARCHIVE, OPT_GROUP_BACKUP, OPT_GROUP_RESTORE, OPT_GROUP_REPO,
};

#define NGROUPS (sizeof(doc_group_order) / sizeof(doc_group_order[0]))

/*
 * Write text wrapped at HELP_WIDTH, every line indented by indent spaces. A blank line
 * ("\n\n") in text separates paragraphs.
 */
static void
write_wrapped(FILE *out, const char *text, int indent)
{
	const char *p = text;
	int			col = 0;

	while (*p)
	{
		size_t		n;

		if (p[0] == '\n')
		{
			if (col > 0)
				fputc('\n', out);
			if (p[1] == '\n')
				fputc('\n', out);
			col = 0;
			p += p[1] == '\n' ? 2 : 1;
			continue;
		}
		if (*p == ' ')
		{
			p++;
			continue;
		}
		n = strcspn(p, " \n");
		if (col > indent && col + 1 + (int) n > HELP_WIDTH)
		{
			fputc('\n', out);
			col = 0;
		}
		if (col == 0)
			col = fprintf(out, "%*s", indent, "");
		else
			col += fprintf(out, " ");
		col += fprintf(out, "%.*s", (int) n, p);
		p += n;
	}
	if (col > 0)
		fputc('\n', out);
}

/* "integer 1..64; default 1; stanza section only" — type, range, default, where. */
static void
describe_option(const opt_def *def, char *out, size_t size)
{
	char		lo[OPT_NAME_MAX];
	char		hi[OPT_NAME_MAX];
	char		env[OPT_NAME_MAX];
	size_t		used = 0;

#define ADD(...) \
	do { \
		if (used < size) \
			used += (size_t) snprintf(out + used, size - used, __VA_ARGS__); \
	} while (0)

	ADD("%s", opt_type_name(def->type));
	if (def->type == OPT_TYPE_INT)
		ADD(" %lld..%lld", (long long) def->min, (long long) def->max);
	else if (def->type == OPT_TYPE_SIZE)
	{
		opt_format_size(def->min, lo);
		opt_format_size(def->max, hi);
		ADD(" %s..%s", lo, hi);
	}
	else if (def->type == OPT_TYPE_ENUM)
	{
		ADD(":");
		for (const char *const *a = def->allowed; *a; a++)
			ADD("%s%s", a == def->allowed ? " " : ", ", *a);
	}
	if (def->def)
		ADD("; default %s", def->def);
	else
		ADD("; no default");
	opt_env_name(def, 0, env);
	if (def->secret)
		ADD("; secret: config file or %s only", env);
	else if (def->section == OPT_SECTION_CMDLINE)
		ADD("; command line or %s only", env);
	else if (def->section == OPT_SECTION_STANZA)
		ADD("; config file: stanza section only");
#undef ADD
}

/* One option: its name and value placeholder, the help text, then type/default/where. */
static void
write_option_help(FILE *out, const opt_def *def)
{
	char		name[OPT_NAME_MAX];
	char		arg[256];
	char		detail[512];

	opt_full_name(def, 0, name);
	opt_arg_name(def, arg, sizeof(arg));
	if (def->secret)
		fprintf(out, "  %s=%s  (not on the command line)\n", name, arg);
	else if (def->type == OPT_TYPE_BOOL)
		fprintf(out, "  --[no-]%s\n", name);
	else
		fprintf(out, "  --%s=%s\n", name, arg);
	write_wrapped(out, def->help, OPT_INDENT);
	detail[0] = '[';
	describe_option(def, detail + 1, sizeof(detail) - 2);
	detail[1] = (char) toupper((unsigned char) detail[1]);
	strcat(detail, "]");
	write_wrapped(out, detail, OPT_INDENT);
}

static void
write_general_help(FILE *out)
{
	size_t		width = 0;

	fprintf(out, "drbackup - PostgreSQL backup, point-in-time recovery and disaster recovery\n\n");
	fprintf(out, "Usage: drbackup [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < cmd_count; i++)
		if (!cmd_table[i].hidden && strlen(cmd_table[i].name) > width)
			width = strlen(cmd_table[i].name);
	for (size_t i = 0; i < cmd_count; i++)
		if (!cmd_table[i].hidden)
			fprintf(out, "  %-*s  %s\n", (int) width, cmd_table[i].name, cmd_table[i].summary);

	for (size_t g = 0; g < NGROUPS; g++)
	{
		bool		header = false;

		for (size_t i = 0; i < opt_count; i++)
		{
			const opt_def *def = &opt_table[i];

			if (def->group != doc_group_order[g] || def->commands != CMDS_ALL)
				continue;
			if (!header)
				fprintf(out, "\n%s (all commands):\n", opt_group_title(doc_group_order[g]));
			header = true;
			write_option_help(out, def);
		}
	}
	fprintf(out, "\n");
	write_wrapped(out, "Options are written --name=value or --name value, boolean options "
				  "--name or --no-name, before or after the command. Every option can also be "
				  "set in the environment (DRBACKUP_PROCESS_MAX for process-max) and most in "
				  "the config file ([global] or [STANZA] section). Precedence: command line, "
				  "environment, config file, default. 'drbackup help COMMAND' shows a "
				  "command's arguments and all the options it takes.", 0);
}

static void
write_command_help(FILE *out, const cmd_def *cmd)
{
	fprintf(out, "drbackup %s - %s\n\nUsage: drbackup [OPTIONS] %s\n\n", cmd->name, cmd->summary,
			cmd->usage);
	write_wrapped(out, cmd->help, 0);
	if (cmd->args[0].name)
	{
		fprintf(out, "\nArguments:\n");
		for (const cmd_arg *a = cmd->args; a->name; a++)
			fprintf(out, "  %-10s %s\n", a->name, a->help);
	}
	for (size_t g = 0; g < sizeof(command_group_order) / sizeof(command_group_order[0]); g++)
	{
		bool		header = false;

		for (size_t i = 0; i < opt_count; i++)
		{
			const opt_def *def = &opt_table[i];

			if (def->group != command_group_order[g] || !opt_takes(def, cmd->id))
				continue;
			if (!header)
				fprintf(out, "\n%s:\n", opt_group_title(command_group_order[g]));
			header = true;
			write_option_help(out, def);
		}
	}
}

int
config_write_help(FILE *out, const char *command)
{
	const cmd_def *cmd;

	if (command == NULL)
	{
		write_general_help(out);
		return 0;
	}
	cmd = cmd_find(command);
	if (cmd == NULL)
	{
		const char *close = cmd_suggest(command);

		if (close)
			return err_set(DRB_ERR_USAGE, "no help for unknown command '%s' (did you mean '%s'?)",
						   command, close);
		return err_set(DRB_ERR_USAGE, "no help for unknown command '%s' (see 'drbackup help')",
					   command);
	}
	write_command_help(out, cmd);
	return 0;
}

int
config_print_help(const char *command)
{
	int			rc = config_write_help(stdout, command);

	fflush(stdout);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * docs/configuration.md
 * ------------------------------------------------------------------------------------- */

/* The anchor GitHub derives from a heading: lower case, spaces to '-', punctuation dropped. */
static void
md_anchor(const char *heading, char *out, size_t size)
{
	size_t		j = 0;

	for (const char *p = heading; *p && j + 1 < size; p++)
	{
		if (isalnum((unsigned char) *p) || *p == '-' || *p == '_')
			out[j++] = (char) tolower((unsigned char) *p);
		else if (*p == ' ')
			out[j++] = '-';
	}
	out[j] = '\0';
}

/* "Options:" line of a command: groups it takes whole are one link, others name options. */
static void
md_command_options(FILE *out, const cmd_def *cmd)
{
	const char *sep = "";

	fprintf(out, "\nOptions:");
	for (size_t g = 0; g < sizeof(command_group_order) / sizeof(command_group_order[0]); g++)
	{
		opt_group	group = command_group_order[g];
		size_t		in_group = 0;
		size_t		taken = 0;
		char		anchor[128];

		for (size_t i = 0; i < opt_count; i++)
		{
			if (opt_table[i].group != group)
				continue;
			in_group++;
			taken += opt_takes(&opt_table[i], cmd->id);
		}
		if (taken == 0)
			continue;
		if (taken == in_group && group != OPT_GROUP_COMMAND)
		{
			md_anchor(opt_group_title(group), anchor, sizeof(anchor));
			fprintf(out, "%s all [%s](#%s)", sep, opt_group_title(group), anchor);
			sep = ";";
			continue;
		}
		for (size_t i = 0; i < opt_count; i++)
		{
			char		name[OPT_NAME_MAX];
			char		heading[OPT_NAME_MAX + 4];

			if (opt_table[i].group != group || !opt_takes(&opt_table[i], cmd->id))
				continue;
			opt_full_name(&opt_table[i], 0, name);
			snprintf(heading, sizeof(heading), "`--%s`", name);
			md_anchor(heading, anchor, sizeof(anchor));
			fprintf(out, "%s [`--%s`](#%s)", sep, name, anchor);
			sep = ",";
		}
		sep = ";";
	}
	fprintf(out, ".\n");
}

static void
md_commands(FILE *out)
{
	fprintf(out, "## Commands\n");
	for (size_t i = 0; i < cmd_count; i++)
	{
		const cmd_def *cmd = &cmd_table[i];

		if (cmd->hidden)
			continue;
		fprintf(out, "\n### %s\n\n", cmd->name);
		fprintf(out, "`drbackup [OPTIONS] %s`\n\n%s\n\n%s\n", cmd->usage, cmd->summary, cmd->help);
		if (cmd->args[0].name)
		{
			fprintf(out, "\nArguments:\n\n");
			for (const cmd_arg *a = cmd->args; a->name; a++)
				fprintf(out, "- `%s`: %s\n", a->name, a->help);
		}
		md_command_options(out, cmd);
	}
}

static void
md_option(FILE *out, const opt_def *def)
{
	char		name[OPT_NAME_MAX];
	char		env[OPT_NAME_MAX];
	char		lo[OPT_NAME_MAX];
	char		hi[OPT_NAME_MAX];

	opt_full_name(def, 0, name);
	opt_env_name(def, 0, env);
	fprintf(out, "\n#### `--%s`\n\n%s\n\n", name, def->help);
	fprintf(out, "| | |\n|---|---|\n");
	fprintf(out, "| Type | %s |\n", opt_type_name(def->type));
	if (def->def)
		fprintf(out, "| Default | `%s` |\n", def->def);
	else
		fprintf(out, "| Default | unset |\n");

	if (def->type == OPT_TYPE_INT)
		fprintf(out, "| Allowed | %lld .. %lld |\n", (long long) def->min, (long long) def->max);
	else if (def->type == OPT_TYPE_SIZE)
	{
		opt_format_size(def->min, lo);
		opt_format_size(def->max, hi);
		fprintf(out, "| Allowed | %s .. %s (bytes, or with a unit: KiB, MiB, GiB, TiB) |\n", lo, hi);
	}
	else if (def->type == OPT_TYPE_ENUM)
	{
		fprintf(out, "| Allowed |");
		for (const char *const *a = def->allowed; *a; a++)
			fprintf(out, "%s `%s`", a == def->allowed ? "" : ",", *a);
		fprintf(out, " |\n");
	}
	else if (def->type == OPT_TYPE_BOOL)
		fprintf(out, "| Allowed | `y`, `n` (`--%s` / `--no-%s`) |\n", name, name);
	else if (def->type == OPT_TYPE_PATH)
		fprintf(out, "| Allowed | absolute path |\n");
	else if (def->check_desc)
		fprintf(out, "| Allowed | %s |\n", def->check_desc);

	fprintf(out, "| Set in | %s%s |\n", def->secret ? "environment" : "command line, environment",
			def->section == OPT_SECTION_ANY ? ", config file (`[global]` or `[STANZA]`)" :
			def->section == OPT_SECTION_STANZA ? ", config file (`[STANZA]` only)" : "");
	fprintf(out, "| Environment | `%s` |\n", env);
	fprintf(out, "| Secret | %s |\n", def->secret ?
			"yes: refused on the command line, never shown; a config file holding it must not "
			"be readable by other users" : "no");
	if (def->commands == CMDS_ALL)
		fprintf(out, "| Commands | all |\n");
	else
	{
		bool		first = true;

		fprintf(out, "| Commands |");
		for (size_t i = 0; i < cmd_count; i++)
		{
			if (!opt_takes(def, cmd_table[i].id) || cmd_table[i].hidden)
				continue;
			fprintf(out, "%s %s", first ? "" : ",", cmd_table[i].name);
			first = false;
		}
		fprintf(out, " |\n");
	}
}

void
config_write_markdown(FILE *out)
{
	fprintf(out,
			"<!-- Generated by config_write_markdown() (src/help.c) from the tables in "
			"src/options.c. Do not edit: change the tables, then run "
			"`UPDATE_DOCS=1 tests/unit/test_config`. -->\n"
			"# drbackup configuration\n\n"
			"> **Generated file.** This reference is written from drbackup's option and command "
			"tables; the unit test `tests/unit/test_config` fails when it is out of date. "
			"`drbackup help` and `drbackup help COMMAND` print the same information.\n\n");

	fprintf(out,
			"## Giving options\n\n"
			"```\ndrbackup [GLOBAL OPTIONS] COMMAND [OPTIONS] [ARGS]\n```\n\n"
			"- On the command line as `--name=value` or `--name value`; boolean options also as "
			"`--name` (yes) and `--no-name` (no). Options may come before or after the command; "
			"`--` ends the options. `--help`/`-h` and `--version` are shortcuts for the `help` "
			"and `version` commands.\n"
			"- In the environment as `DRBACKUP_` + the name in upper case with `-` replaced by "
			"`_`: `DRBACKUP_REPO1_S3_BUCKET` for `repo1-s3-bucket`. Variables starting with "
			"`DRBACKUP_` that name no option are reported with a warning.\n"
			"- In the config file (`--config`, `DRBACKUP_CONFIG`, default "
			"`/etc/drbackup/drbackup.conf`): an INI file with `name=value` lines under a "
			"`[global]` section and one `[STANZA]` section per stanza; `#` and `;` start comment "
			"lines; whitespace around names and values is ignored. Unknown names are errors.\n\n"
			"Precedence: command line, then environment, then the config file's `[STANZA]` "
			"section (the stanza given by `--stanza`), then its `[global]` section, then the "
			"default. `help` and `version` read neither the environment nor the config file.\n\n"
			"Repository options exist once per repository: `repo<N>-...` stands for `repo1-...` "
			"to `repo%d-...`. Repository 1 is always configured; repository N is configured when "
			"any `repo<N>-` option is set.\n\n"
			"Secret options (passphrases, keys, tokens) are refused on the command line, where "
			"other users could see them in the process list: set them in the environment or in "
			"the config file. A config file holding a secret must not be readable by other "
			"users (`chmod 640`). Secret values never appear in output, logs or errors.\n\n"
			"Sizes are bytes or a number with a unit: `KiB`, `MiB`, `GiB`, `TiB` (also `K`/`KB`, "
			"`M`/`MB`, ... — all powers of 1024). Booleans are `y` or `n` (also `yes`/`no`, "
			"`true`/`false`, `on`/`off`).\n\n", REPO_MAX);

	md_commands(out);

	fprintf(out, "\n## Options\n");
	for (size_t g = 0; g < NGROUPS; g++)
	{
		fprintf(out, "\n### %s\n", opt_group_title(doc_group_order[g]));
		for (size_t i = 0; i < opt_count; i++)
			if (opt_table[i].group == doc_group_order[g])
				md_option(out, &opt_table[i]);
	}
}

/* ---------------------------------------------------------------------------------------
 * docs/drbackup.1 (man page)
 * ------------------------------------------------------------------------------------- */

/* What each exit code means (docs/exit-codes.md says the same, with examples). */
static const char *const exit_meanings[] = {
	[DRB_OK] = "success",
	[DRB_ERR_NOT_FOUND] = "the object, file or WAL segment does not exist",
	[DRB_ERR_USAGE] = "the command line is wrong (unknown option or command, bad value, "
	"missing argument, secret given on the command line)",
	[DRB_ERR_CONFIG] = "the configuration cannot be used (missing --config file, config file "
	"holding a secret readable by others, missing required setting)",
	[DRB_ERR_STORAGE] = "a repository could not be read or written (HTTP errors, connection "
	"refused after retries, disk errors)",
	[DRB_ERR_INTEGRITY] = "data failed verification (checksum mismatch, corrupt or truncated "
	"object)",
	[DRB_ERR_CRYPTO] = "key material is wrong (wrong passphrase, object encrypted with another "
	"repository's key)",
	[DRB_ERR_PG] = "PostgreSQL could not be reached or answered wrongly",
	[DRB_ERR_STANZA] = "the repository belongs to another cluster or holds conflicting content",
	[DRB_ERR_LOCK] = "another drbackup process holds the stanza's lock",
	[DRB_ERR_INTERNAL] = "a bug or lack of resources (out of memory)",
	[DRB_ERR_RECOVERY_ABORT] = "archive-get failed (other than \"not found\") during archive "
	"recovery: PostgreSQL stops instead of ending recovery early",
};

#define N_EXIT_KINDS (sizeof(exit_meanings) / sizeof(exit_meanings[0]))
_Static_assert(N_EXIT_KINDS == DRB_ERR_RECOVERY_ABORT + 1, "every error kind needs a meaning");

/*
 * Write text for roff: backslashes and hyphens escaped, a line never starting with a
 * control character, "\n\n" (paragraph break) as .PP and a single "\n" as a line break.
 */
static void
man_text(FILE *out, const char *text)
{
	bool		line_start = true;

	for (const char *p = text; *p; p++)
	{
		if (p[0] == '\n')
		{
			if (p[1] == '\n')
			{
				fputs("\n.PP\n", out);
				p++;
			}
			else
				fputs("\n.br\n", out);
			line_start = true;
			while (p[1] == ' ')
				p++;
			continue;
		}
		if (line_start && (*p == '.' || *p == '\''))
			fputs("\\&", out);
		line_start = false;
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else
			fputc(*p, out);
	}
	fputc('\n', out);
}

/* The same for a short piece inside a line: no line breaks expected. */
static void
man_inline(FILE *out, const char *text)
{
	for (const char *p = text; *p; p++)
	{
		if (*p == '\\')
			fputs("\\e", out);
		else if (*p == '-')
			fputs("\\-", out);
		else if (*p == '\n')
			fputc(' ', out);
		else
			fputc(*p, out);
	}
}

static void
man_commands(FILE *out)
{
	fputs(".SH COMMANDS\n", out);
	for (size_t i = 0; i < cmd_count; i++)
	{
		const cmd_def *cmd = &cmd_table[i];
		const char *sep = "";

		if (cmd->hidden)
			continue;
		fputs(".SS ", out);
		man_inline(out, cmd->name);
		fputs("\n.B drbackup\n[\\fIOPTIONS\\fR] ", out);
		man_inline(out, cmd->usage);
		fputs("\n.PP\n", out);
		man_text(out, cmd->summary);
		fputs(".PP\n", out);
		man_text(out, cmd->help);
		if (cmd->args[0].name)
		{
			fputs(".PP\nArguments:\n", out);
			for (const cmd_arg *a = cmd->args; a->name; a++)
			{
				fputs(".TP\n.I ", out);
				man_inline(out, a->name);
				fputc('\n', out);
				man_text(out, a->help);
			}
		}
		fputs(".PP\nOptions:", out);
		for (size_t g = 0; g < sizeof(command_group_order) / sizeof(command_group_order[0]); g++)
		{
			opt_group	group = command_group_order[g];
			size_t		in_group = 0;
			size_t		taken = 0;

			for (size_t j = 0; j < opt_count; j++)
			{
				in_group += opt_table[j].group == group;
				taken += opt_table[j].group == group && opt_takes(&opt_table[j], cmd->id);
			}
			if (taken == 0)
				continue;
			if (taken == in_group && group != OPT_GROUP_COMMAND)
			{
				/* a group taken whole: its title stands for its options */
				fprintf(out, "%s\nall ", sep);
				man_inline(out, opt_group_title(group));
				sep = ",";
				continue;
			}
			for (size_t j = 0; j < opt_count; j++)
			{
				char		name[OPT_NAME_MAX];

				if (opt_table[j].group != group || !opt_takes(&opt_table[j], cmd->id))
					continue;
				opt_full_name(&opt_table[j], 0, name);
				fprintf(out, "%s\n\\fB\\-\\-", sep);
				man_inline(out, name);
				fputs("\\fR", out);
				sep = ",";
			}
		}
		fputs(".\n", out);
	}
}

static void
man_option(FILE *out, const opt_def *def)
{
	char		name[OPT_NAME_MAX];
	char		arg[256];
	char		detail[512];
	char		env[OPT_NAME_MAX];

	opt_full_name(def, 0, name);
	opt_arg_name(def, arg, sizeof(arg));
	opt_env_name(def, 0, env);
	fputs(".TP\n", out);
	if (def->type == OPT_TYPE_BOOL)
	{
		fputs("\\fB\\-\\-\\fR[\\fBno\\-\\fR]\\fB", out);
		man_inline(out, name);
		fputs("\\fR\n", out);
	}
	else
	{
		fputs("\\fB\\-\\-", out);
		man_inline(out, name);
		fputs("\\fR=\\fI", out);
		man_inline(out, arg);
		fputs("\\fR\n", out);
	}
	man_text(out, def->help);
	describe_option(def, detail, sizeof(detail));
	detail[0] = (char) toupper((unsigned char) detail[0]);
	fputs(".br\n", out);
	man_inline(out, detail);
	fputs(".\n.br\nEnvironment: \\fB", out);
	man_inline(out, env);
	fputs("\\fR", out);
	if (def->secret)
		fputs(" (secret: refused on the command line, never shown)", out);
	fputs(".\n", out);
}

void
config_write_man(FILE *out)
{
	const opt_def *config_def = NULL;
	const opt_def *log_path_def = NULL;

	for (size_t i = 0; i < opt_count; i++)
	{
		if (strcmp(opt_table[i].name, "config") == 0)
			config_def = &opt_table[i];
		else if (strcmp(opt_table[i].name, "log-path") == 0)
			log_path_def = &opt_table[i];
	}

	fputs(".\\\" Generated by config_write_man() (src/help.c) from the tables in src/options.c.\n"
		  ".\\\" Do not edit: change the tables, then run UPDATE_DOCS=1 tests/unit/test_config.\n",
		  out);
	fprintf(out, ".TH DRBACKUP 1 \"\" \"drbackup %s\" \"User Commands\"\n", PACKAGE_VERSION);
	fputs(".nh\n.ad l\n", out);	/* option names are not to be hyphenated */
	fputs(".SH NAME\n"
		  "drbackup \\- PostgreSQL backup, point\\-in\\-time recovery and disaster recovery\n"
		  ".SH SYNOPSIS\n"
		  ".B drbackup\n"
		  "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n"
		  ".br\n"
		  ".B drbackup help\n"
		  "[\\fICOMMAND\\fR]\n"
		  ".SH DESCRIPTION\n", out);
	man_text(out, "drbackup backs up PostgreSQL clusters to one or more repositories (a local "
			 "directory, S3-compatible object storage or Google Cloud Storage), archives their "
			 "WAL, restores them to any point in time, and verifies that every backup can "
			 "really be restored. Data is compressed and encrypted on the way out; each "
			 "repository can be in another region.\n\n"
			 "Options are written --name=value or --name value, boolean options --name or "
			 "--no-name, before or after the command; -- ends the options. Every option can "
			 "also be set in the environment (DRBACKUP_ + the name in capitals with - as _, "
			 "DRBACKUP_PROCESS_MAX for process-max) and most in the config file, an INI file "
			 "with name=value lines in a [global] section and one [STANZA] section per stanza. "
			 "Precedence: command line, environment, the config file's [STANZA] section, its "
			 "[global] section, default. help and version read neither the environment nor "
			 "the config file.\n\n"
			 "Repository options exist once per repository: repo<N>-... stands for repo1-... "
			 "to repo4-...; repository 1 is always configured, repository N when any of its "
			 "options is set.\n\n"
			 "Secret options (passphrases, keys, tokens) are refused on the command line, where "
			 "other users could see them in the process list: set them in the environment or "
			 "in the config file, which must then not be readable by other users. Secret "
			 "values never appear in output, logs or errors.\n\n"
			 "Sizes are bytes or a number with a unit (KiB, MiB, GiB, TiB; also K/KB, M/MB, "
			 "... all powers of 1024). Booleans are y or n (also yes/no, true/false, on/off).");

	man_commands(out);

	fputs(".SH OPTIONS\n", out);
	for (size_t g = 0; g < NGROUPS; g++)
	{
		fputs(".SS ", out);
		man_inline(out, opt_group_title(doc_group_order[g]));
		fputc('\n', out);
		for (size_t i = 0; i < opt_count; i++)
			if (opt_table[i].group == doc_group_order[g])
				man_option(out, &opt_table[i]);
	}

	fputs(".SH FILES\n", out);
	if (config_def && config_def->def)
	{
		fputs(".TP\n.I ", out);
		man_inline(out, config_def->def);
		fputs("\n", out);
		man_text(out, "The default config file (--config). An example with every commonly "
				 "used option, drbackup.conf.example, is installed with the documentation.");
	}
	if (log_path_def && log_path_def->def)
	{
		fputs(".TP\n.I ", out);
		man_inline(out, log_path_def->def);
		fputs("/\\fISTANZA\\fP\\-\\fICOMMAND\\fP.log\n", out);
		man_text(out, "Log file of each stanza and command when log-level-file is not off "
				 "(all-COMMAND.log for commands without a stanza); lines start with the UTC "
				 "time, the process id and the level. The directory is created with mode "
				 "0750, the files with mode 0640.");
	}
	fputs(".TP\n.I share/doc/drbackup/examples\n", out);
	man_text(out, "Under the installation prefix: drbackup.conf.example, a cron file "
			 "(cron/drbackup) and systemd service and timer units (systemd/) for scheduled "
			 "backups, verification and restore tests.");

	fputs(".SH EXIT STATUS\n", out);
	man_text(out, "Every failure prints exactly one line on standard error, \"drbackup: ERROR: "
			 "<what failed, on which object or file>\", and exits with the code of its kind:");
	for (size_t k = 0; k < N_EXIT_KINDS; k++)
	{
		fprintf(out, ".TP\n.B %d\n", err_exit_code((drb_err) k));
		man_inline(out, err_kind_name((drb_err) k));
		fputs(": ", out);
		man_inline(out, exit_meanings[k]);
		fputs(".\n", out);
	}
	fputs(".PP\n", out);
	man_text(out, "help and version exit 0; drbackup without a command prints usage and exits 2.");

	fputs(".SH SEE ALSO\n"
		  ".BR postgres (1),\n"
		  ".BR pg_basebackup (1),\n"
		  ".BR pg_verifybackup (1)\n"
		  ".PP\n", out);
	man_text(out, "drbackup help COMMAND; docs/configuration.md, docs/exit-codes.md and "
			 "docs/logging.md in the source distribution.");
}
