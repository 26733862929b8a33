/*
 * test_config.c — configuration: precedence (command line > environment > config file
 * [stanza] > [global] > default), repository indexing, value parsing (int, size, bool,
 * enum, path), every error case with its kind and message, secrets (refused on the
 * command line, world-readable files refused, never echoed), help output, the option
 * table's own consistency, docs/configuration.md and the man page docs/drbackup.1 being
 * up to date, and logging (log file name, modes, line format, redaction on the console and
 * in the file, lines of concurrent threads never interleaved).
 *
 * UPDATE_DOCS=1 tests/unit/test_config rewrites docs/configuration.md and docs/drbackup.1
 * from the tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "config.h"
#include "dl_pq.h"
#include "dynlib.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "options.h"

extern char **environ;

static char tmpdir[64];
static char *conf_path;			/* an empty, private config file */

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */
static void
clear_drbackup_env(void)
{
	for (;;)
	{
		char	   *found = NULL;

		for (char **e = environ; e && *e; e++)
			if (strncmp(*e, "DRBACKUP_", 9) == 0)
			{
				found = xstrndup(*e, strcspn(*e, "="));
				break;
			}
		if (found == NULL)
			return;
		unsetenv(found);
		free(found);
	}
}

/* Write a config file with the given mode; returns its path (caller frees). */
static char *
write_conf(const char *name, const char *content, mode_t mode)
{
	char	   *path = xasprintf("%s/%s", tmpdir, name);
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

/* config_parse of "drbackup" + the NULL-terminated words. */
static config_t *
parse(const char *first,...)
{
	char	   *argv[64];
	int			argc = 0;
	va_list		ap;
	const char *w;

	argv[argc++] = (char *) "drbackup";
	va_start(ap, first);
	for (w = first; w != NULL; w = va_arg(ap, const char *))
		argv[argc++] = (char *) w;
	va_end(ap);
	argv[argc] = NULL;
	err_clear();
	return config_parse(argc, argv);
}

/* The parse must fail with kind, and its message must contain every given fragment. */
#define assert_fails(kind, cfg, ...) \
	do { \
		config_t   *c_ = (cfg); \
		const char *frags_[] = {__VA_ARGS__, NULL}; \
		if (c_ != NULL) \
			config_free(c_); \
		assert_null(c_); \
		assert_int_equal(err_kind(), (kind)); \
		for (const char **f_ = frags_; *f_; f_++) \
			if (strstr(err_msg(), *f_) == NULL) \
				fail_msg("message \"%s\" lacks \"%s\"", err_msg(), *f_); \
	} while (0)

static char *
capture_help(const char *command, int *rc)
{
	char	   *text = NULL;
	size_t		len = 0;
	FILE	   *f = open_memstream(&text, &len);

	*rc = config_write_help(f, command);
	fclose(f);
	return text;
}

static int
group_setup(void **state)
{
	(void) state;
	strcpy(tmpdir, "/tmp/drb-config-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	conf_path = write_conf("empty.conf", "", 0600);
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	test_rm_rf(tmpdir);
	free(conf_path);
	return 0;
}

static int
setup(void **state)
{
	(void) state;
	clear_drbackup_env();
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	clear_drbackup_env();
	log_set_console_level(LOG_WARN);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Values and precedence
 * ------------------------------------------------------------------------------------- */
static void
test_defaults(void **state)
{
	config_t   *cfg = parse("--config", conf_path, "repo-ls", NULL);

	(void) state;
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_REPO_LS);
	assert_string_equal(config_command_name(CMD_REPO_LS), "repo-ls");
	assert_int_equal(config_nargs(cfg), 0);
	assert_null(config_arg(cfg, 0));
	assert_int_equal(cfg_int(cfg, "process-max"), 1);
	assert_string_equal(cfg_source(cfg, "process-max"), "default");
	assert_false(cfg_is_set(cfg, "process-max"));
	assert_string_equal(cfg_str(cfg, "compress-type"), "zstd");
	/* unset: the compressor's own default applies (compress_level_range) */
	assert_false(cfg_is_set(cfg, "compress-level"));
	assert_null(cfg_str(cfg, "compress-level"));
	assert_string_equal(cfg_str(cfg, "log-level-console"), "warn");
	/* unset: text for the reporting commands, standard output for metrics */
	assert_null(cfg_str(cfg, "output"));
	assert_int_equal(cfg_int(cfg, "pg1-port"), 5432);
	assert_string_equal(cfg_str(cfg, "pg1-database"), "postgres");
	assert_null(cfg_str(cfg, "pg1-host"));
	assert_null(cfg_str(cfg, "stanza"));
	assert_null(cfg_str(cfg, "repo"));
	assert_string_equal(cfg_repo_str(cfg, 1, "type"), "posix");
	assert_string_equal(cfg_repo_str(cfg, 3, "path"), "/var/lib/drbackup");
	assert_int_equal(cfg_repo_int(cfg, 2, "s3-part-size"), 8 * 1024 * 1024);
	assert_string_equal(cfg_repo_str(cfg, 2, "s3-part-size"), "8MiB");
	assert_int_equal(cfg_repo_int(cfg, 1, "gcs-chunk-size"), 16 * 1024 * 1024);
	assert_true(cfg_repo_bool(cfg, 4, "s3-verify-tls"));
	assert_int_equal(cfg_repo_int(cfg, 1, "storage-retries"), 4);
	assert_int_equal(cfg_repo_int(cfg, 1, "storage-timeout"), 60);
	assert_null(cfg_repo_str(cfg, 1, "retention-full"));
	assert_int_equal(cfg_repo_int(cfg, 1, "retention-full"), 0);
	assert_null(cfg_repo_str(cfg, 1, "cipher-pass"));
	assert_string_equal(cfg_str(cfg, "repo1-s3-region"), "us-east-1");
	config_free(cfg);
}

static void
test_precedence(void **state)
{
	char	   *file = write_conf("prec.conf",
								  "# comment\n"
								  "; another comment\n"
								  "[global]\n"
								  "  process-max = 2  \r\n"
								  "repo1-s3-bucket=global-bucket\n"
								  "compress-type=lz4\n"
								  "\n"
								  "[main]\n"
								  "process-max=3\n"
								  "pg1-path=/pg/main\n"
								  "[other]\n"
								  "process-max=9\n"
								  "pg1-path=/pg/other\n", 0600);
	config_t   *cfg;

	(void) state;
	/* file only, no stanza: [global] */
	cfg = parse("--config", file, "repo-ls", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "process-max"), 2);
	assert_string_equal(cfg_source(cfg, "process-max"), "config file");
	assert_true(cfg_is_set(cfg, "process-max"));
	assert_string_equal(cfg_str(cfg, "compress-type"), "lz4");
	assert_null(cfg_str(cfg, "pg1-path"));
	config_free(cfg);

	/* the stanza section wins over [global]; other stanzas are not used */
	cfg = parse("--config", file, "--stanza=main", "repo-ls", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "process-max"), 3);
	assert_string_equal(cfg_str(cfg, "pg1-path"), "/pg/main");
	assert_string_equal(cfg_repo_str(cfg, 1, "s3-bucket"), "global-bucket");
	config_free(cfg);

	/* environment over the file */
	setenv("DRBACKUP_PROCESS_MAX", "4", 1);
	setenv("DRBACKUP_REPO1_S3_BUCKET", "env-bucket", 1);
	cfg = parse("--config", file, "--stanza=main", "repo-ls", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "process-max"), 4);
	assert_string_equal(cfg_source(cfg, "process-max"), "environment");
	assert_string_equal(cfg_repo_str(cfg, 1, "s3-bucket"), "env-bucket");
	config_free(cfg);

	/* command line over everything, before or after the command */
	cfg = parse("--config", file, "repo-ls", "--process-max=5", "--stanza", "main", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "process-max"), 5);
	assert_string_equal(cfg_source(cfg, "process-max"), "command line");
	assert_string_equal(cfg_str(cfg, "pg1-path"), "/pg/main");
	config_free(cfg);

	/* the config file itself can come from the environment */
	unsetenv("DRBACKUP_PROCESS_MAX");
	setenv("DRBACKUP_CONFIG", file, 1);
	setenv("DRBACKUP_STANZA", "other", 1);
	cfg = parse("repo-ls", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "process-max"), 9);
	assert_string_equal(cfg_str(cfg, "pg1-path"), "/pg/other");
	assert_string_equal(cfg_str(cfg, "stanza"), "other");
	config_free(cfg);
	free(file);
}

static void
test_repo_indexing(void **state)
{
	char	   *file = write_conf("repos.conf", "[global]\nrepo4-type=gcs\n", 0600);
	config_t   *cfg;

	(void) state;
	setenv("DRBACKUP_REPO3_S3_BUCKET", "b3", 1);
	cfg = parse("--config", file, "--repo2-path=/r2/", "repo-ls", NULL);
	assert_non_null(cfg);
	assert_string_equal(cfg_repo_str(cfg, 2, "path"), "/r2");	/* trailing '/' dropped */
	assert_string_equal(cfg_str(cfg, "repo2-path"), "/r2");
	assert_string_equal(cfg_repo_str(cfg, 1, "path"), "/var/lib/drbackup");
	assert_string_equal(cfg_repo_str(cfg, 3, "s3-bucket"), "b3");
	assert_null(cfg_repo_str(cfg, 2, "s3-bucket"));
	assert_string_equal(cfg_repo_str(cfg, 4, "type"), "gcs");
	assert_string_equal(cfg_repo_str(cfg, 3, "type"), "posix");
	assert_true(cfg_repo_configured(cfg, 1));
	assert_true(cfg_repo_configured(cfg, 2));
	assert_true(cfg_repo_configured(cfg, 3));
	assert_true(cfg_repo_configured(cfg, 4));
	assert_false(cfg_repo_configured(cfg, 5));
	config_free(cfg);

	unsetenv("DRBACKUP_REPO3_S3_BUCKET");
	cfg = parse("--config", conf_path, "repo-ls", NULL);
	assert_non_null(cfg);
	assert_true(cfg_repo_configured(cfg, 1));	/* always */
	assert_false(cfg_repo_configured(cfg, 2));
	assert_false(cfg_repo_configured(cfg, 3));
	assert_false(cfg_repo_configured(cfg, 4));
	config_free(cfg);

	/* --repo selects one */
	cfg = parse("--config", conf_path, "repo-put", "--repo", "3", "local", "remote", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_int(cfg, "repo"), 3);
	assert_int_equal(config_nargs(cfg), 2);
	assert_string_equal(config_arg(cfg, 0), "local");
	assert_string_equal(config_arg(cfg, 1), "remote");
	config_free(cfg);
	free(file);
}

static void
test_value_parsing(void **state)
{
	config_t   *cfg;

	(void) state;
	cfg = parse("--config", conf_path, "repo-ls",
				"--repo1-s3-part-size=512MiB", "--repo2-s3-part-size=5GiB",
				"--repo3-s3-part-size=6291456", "--repo4-s3-part-size=8mb",
				"--no-repo1-s3-verify-tls", "--repo2-s3-verify-tls=n", "--repo3-s3-verify-tls",
				"--repo4-s3-verify-tls=yes",
				"--repo1-type=gcs", "--repo2-gcs-chunk-size=256KiB", "--pg1-port=007",
				"--output", "json", "--compress-type=none", "--compress-level=22", NULL);
	assert_non_null(cfg);
	assert_int_equal(cfg_repo_int(cfg, 1, "s3-part-size"), INT64_C(512) * 1024 * 1024);
	assert_int_equal(cfg_repo_int(cfg, 2, "s3-part-size"), INT64_C(5) * 1024 * 1024 * 1024);
	assert_int_equal(cfg_repo_int(cfg, 3, "s3-part-size"), 6291456);
	assert_string_equal(cfg_repo_str(cfg, 3, "s3-part-size"), "6MiB");
	assert_int_equal(cfg_repo_int(cfg, 4, "s3-part-size"), 8 * 1024 * 1024);
	assert_false(cfg_repo_bool(cfg, 1, "s3-verify-tls"));
	assert_string_equal(cfg_repo_str(cfg, 1, "s3-verify-tls"), "n");
	assert_false(cfg_repo_bool(cfg, 2, "s3-verify-tls"));
	assert_true(cfg_repo_bool(cfg, 3, "s3-verify-tls"));
	assert_true(cfg_is_set(cfg, "repo3-s3-verify-tls"));
	assert_true(cfg_repo_bool(cfg, 4, "s3-verify-tls"));
	assert_string_equal(cfg_repo_str(cfg, 1, "type"), "gcs");
	assert_int_equal(cfg_repo_int(cfg, 2, "gcs-chunk-size"), 256 * 1024);
	assert_int_equal(cfg_int(cfg, "pg1-port"), 7);
	assert_string_equal(cfg_str(cfg, "pg1-port"), "7");
	assert_string_equal(cfg_str(cfg, "output"), "json");
	assert_int_equal(cfg_int(cfg, "compress-level"), 22);	/* none ignores the level */
	config_free(cfg);
}

static void
test_opt_parse_value(void **state)
{
	const opt_def *part;
	const opt_def *port;
	int			index;
	int64_t		num;
	char	   *norm;
	static const char *const bad_sizes[] = {
		"", "1.5GiB", "-5MiB", "5 MiB", "MiB", "5XB", "99999999999999999999", "9999999999TiB",
		"5242879", "5368709121", "6GiB",
	};

	(void) state;
	assert_int_equal(opt_resolve("repo1-s3-part-size", &part, &index), OPT_RESOLVED);
	assert_int_equal(index, 1);
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
	{
		if (opt_parse_value(part, bad_sizes[i], &num, &norm) == 0)
			fail_msg("size '%s' accepted", bad_sizes[i]);
		assert_null(norm);
	}
	assert_int_equal(opt_parse_value(part, "5MiB", &num, &norm), 0);	/* the bounds */
	assert_int_equal(num, 5 * 1024 * 1024);
	free(norm);
	assert_int_equal(opt_parse_value(part, "5368709120", &num, &norm), 0);
	assert_string_equal(norm, "5GiB");
	free(norm);
	assert_int_equal(opt_parse_value(part, "5242881", &num, &norm), 0);
	assert_string_equal(norm, "5242881");	/* no unit divides it */
	free(norm);

	assert_int_equal(opt_resolve("pg1-port", &port, &index), OPT_RESOLVED);
	assert_int_equal(index, 0);
	assert_int_equal(opt_parse_value(port, "65535", &num, &norm), 0);
	free(norm);
	assert_int_equal(opt_parse_value(port, "65536", &num, &norm), -1);
	assert_int_equal(opt_parse_value(port, "0", &num, &norm), -1);
	assert_int_equal(opt_parse_value(port, "12a", &num, &norm), -1);
	assert_int_equal(opt_parse_value(port, " 12", &num, &norm), -1);
	assert_int_equal(opt_parse_value(port, "+12", &num, &norm), -1);

	assert_int_equal(opt_resolve("repo-path", &part, &index), OPT_NEEDS_INDEX);
	assert_int_equal(opt_resolve("repo0-path", &part, &index), OPT_BAD_INDEX);
	assert_int_equal(opt_resolve("repo5-path", &part, &index), OPT_BAD_INDEX);
	assert_int_equal(index, 5);
	assert_int_equal(opt_resolve("repo1-nothing", &part, &index), OPT_UNKNOWN);
	assert_int_equal(opt_resolve("repo", &part, &index), OPT_RESOLVED);
	assert_int_equal(opt_resolve("pg2-path", &part, &index), OPT_UNKNOWN);

	assert_int_equal(edit_distance("kitten", "sitting"), 3);
	assert_int_equal(edit_distance("", "abc"), 3);
	assert_int_equal(edit_distance("same", "same"), 0);
}

static void
test_args_and_shortcuts(void **state)
{
	config_t   *cfg;

	(void) state;
	/* options after the command and "--" before arguments that look like options */
	cfg = parse("--config", conf_path, "repo-rm", "a", "--repo=2", "--", "-odd", "--x", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_REPO_RM);
	assert_int_equal(config_nargs(cfg), 3);
	assert_string_equal(config_arg(cfg, 0), "a");
	assert_string_equal(config_arg(cfg, 1), "-odd");
	assert_string_equal(config_arg(cfg, 2), "--x");
	assert_int_equal(cfg_int(cfg, "repo"), 2);
	config_free(cfg);

	cfg = parse("repo-put", "--help", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_HELP);
	assert_int_equal(config_nargs(cfg), 1);
	assert_string_equal(config_arg(cfg, 0), "repo-put");
	config_free(cfg);

	cfg = parse("-h", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_HELP);
	assert_int_equal(config_nargs(cfg), 0);
	config_free(cfg);

	cfg = parse("help", "repo-get", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_HELP);
	assert_string_equal(config_arg(cfg, 0), "repo-get");
	config_free(cfg);

	cfg = parse("--version", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_command(cfg), CMD_VERSION);
	config_free(cfg);

	/* help and version do not need a readable config file */
	cfg = parse("--config=/nonexistent/drbackup.conf", "version", NULL);
	assert_non_null(cfg);
	config_free(cfg);

	cfg = parse("--config", conf_path, "repo-get", "some/object", NULL);
	assert_non_null(cfg);
	assert_int_equal(config_nargs(cfg), 1);
	config_free(cfg);

	cfg = parse("--config", conf_path, "--stanza=db-1.main_x", "stanza-create", NULL);
	assert_non_null(cfg);
	assert_string_equal(cfg_str(cfg, "stanza"), "db-1.main_x");
	config_free(cfg);
}

/* Whole content of a file (NUL-terminated); NULL when it cannot be read. Caller frees. */
static char *
slurp(const char *path)
{
	FILE	   *in = fopen(path, "r");
	buf_t		b;
	char		chunk[4096];
	size_t		n;

	if (in == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
		buf_append(&b, chunk, n);
	fclose(in);
	buf_cstr(&b);
	return (char *) b.data;
}

/* Number of lines of text matching the extended regex (every line when all is set: -1 if not). */
static int
count_matching(const char *text, const char *pattern, bool all)
{
	regex_t		re;
	int			count = 0;
	const char *p = text;

	assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	while (*p)
	{
		size_t		len = strcspn(p, "\n");
		char	   *line = xstrndup(p, len);

		if (regexec(&re, line, 0, NULL, 0) == 0)
			count++;
		else if (all)
			count = -1000000;
		free(line);
		p += len + (p[len] == '\n');
	}
	regfree(&re);
	return count < 0 ? -1 : count;
}

#define LINE_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} UTC P[0-9]+ "

static void
test_log_file(void **state)
{
	char	   *expect = xasprintf("%s/logs/sub/all-repo-ls.log", tmpdir);
	char	   *logdir = xasprintf("--log-path=%s/logs/sub", tmpdir);
	char	   *text;
	config_t   *cfg;
	struct stat st;
	mode_t		old_umask;

	(void) state;
	/* the directory and the file are created with exactly 0750 and 0640, whatever the umask */
	old_umask = umask(077);
	cfg = parse("--config", conf_path, logdir, "--log-level-file=info", "repo-ls", NULL);
	umask(old_umask);
	assert_non_null(cfg);
	assert_int_equal(stat(expect, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	text = xasprintf("%s/logs", tmpdir);
	assert_int_equal(stat(text, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0750);
	free(text);

	/* one line per message: UTC time with milliseconds, pid, level in capitals */
	log_info("first %d", 1);
	log_debug("not at level info");
	log_warn("second");
	config_free(cfg);
	log_close();
	text = slurp(expect);
	assert_non_null(text);
	assert_int_equal(count_matching(text, LINE_RE "INFO: first 1$", false), 1);
	assert_int_equal(count_matching(text, LINE_RE "WARN: second$", false), 1);
	assert_null(strstr(text, "not at level info"));
	assert_int_equal(count_matching(text, LINE_RE "[A-Z]+: ", true), 2);
	free(text);

	/* a second command appends */
	cfg = parse("--config", conf_path, logdir, "--log-level-file=debug", "repo-ls", NULL);
	assert_non_null(cfg);
	log_debug("third");
	config_free(cfg);
	log_close();
	text = slurp(expect);
	assert_int_equal(count_matching(text, LINE_RE "(INFO|WARN|DEBUG): ", true), 3);
	assert_int_equal(count_matching(text, LINE_RE "DEBUG: third$", false), 1);
	free(text);

	/* with a stanza: STANZA-COMMAND.log */
	free(expect);
	expect = xasprintf("%s/logs/sub/main-repo-ls.log", tmpdir);
	cfg = parse("--config", conf_path, logdir, "--log-level-file=info", "--stanza=main",
				"repo-ls", NULL);
	assert_non_null(cfg);
	config_free(cfg);
	log_close();
	assert_int_equal(access(expect, F_OK), 0);
	free(expect);
	free(logdir);
}

/* A log file that cannot be opened: log_open_file fails and names it; parsing still works. */
static void
test_log_file_unusable(void **state)
{
	char	   *blocker = xasprintf("%s/not-a-dir", tmpdir);
	char	   *path = xasprintf("%s/not-a-dir/x.log", tmpdir);
	char	   *logdir = xasprintf("--log-path=%s", blocker);
	FILE	   *f = fopen(blocker, "w");
	config_t   *cfg;

	(void) state;
	assert_non_null(f);
	fclose(f);
	err_clear();
	assert_int_equal(log_open_file(path, LOG_INFO), -1);
	assert_int_equal(err_kind(), DRB_ERR_CONFIG);
	assert_non_null(strstr(err_msg(), path));

	/* the command goes on without a file (the warning is the console's: off here) */
	cfg = parse("--config", conf_path, logdir, "--log-level-file=info",
				"--log-level-console=off", "repo-ls", NULL);
	assert_non_null(cfg);
	assert_false(log_enabled(LOG_ERROR));
	config_free(cfg);
	log_set_console_level(LOG_WARN);
	free(blocker);
	free(path);
	free(logdir);
}

/* Run fn with stderr going to a file; returns what it wrote (caller frees). */
static char *
capture_stderr(void (*fn) (void))
{
	char	   *path = xasprintf("%s/stderr.txt", tmpdir);
	int			saved = dup(STDERR_FILENO);
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char	   *text;

	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	text = slurp(path);
	unlink(path);
	free(path);
	return text;
}

static void
console_messages(void)
{
	log_error("cannot open 's3://bucket' with key Swordfish-42-xyz (code %d)", 403);
	log_warn("longest match: Swordfish-42-xyz-longer");
	log_info("info is below the console level");
}

static void
test_log_redaction(void **state)
{
	char	   *path = xasprintf("%s/redact.log", tmpdir);
	char	   *big = xmalloc(3000);
	char	   *text;

	(void) state;
	log_register_secret("Swordfish-42-xyz");
	log_register_secret("Swordfish-42-xyz-longer");
	log_register_secret("Swordfish-42-xyz");	/* registered twice: harmless */
	log_register_secret("");
	log_register_secret(NULL);

	/* console: the usual prefixes, one line per message, secrets replaced */
	log_set_console_level(LOG_WARN);
	text = capture_stderr(console_messages);
	assert_string_equal(text,
						"drbackup: ERROR: cannot open 's3://bucket' with key <redacted> (code 403)\n"
						"drbackup: WARN: longest match: <redacted>\n");
	free(text);

	/* file: also when the message is longer than any fixed buffer (no cut secret escapes) */
	memset(big, 'a', 2999);
	big[2999] = '\0';
	memcpy(big + 1020, "Swordfish-42-xyz", 16);
	memcpy(big + 2980, "Swordfish-42-xyz", 16);
	assert_int_equal(log_open_file(path, LOG_DEBUG), 0);
	log_set_console_level(LOG_OFF);
	log_debug("%s", big);
	log_info("pass=Swordfish-42-xyz;");
	log_info("first line\nsecond line\n");	/* each line gets its header */
	log_close();
	log_set_console_level(LOG_WARN);
	text = slurp(path);
	assert_null(strstr(text, "Swordfish"));
	assert_non_null(strstr(text, "INFO: pass=<redacted>;\n"));
	assert_int_equal(count_matching(text, LINE_RE "(INFO|DEBUG): ", true), 4);
	assert_int_equal(count_matching(text, LINE_RE "INFO: (first|second) line$", false), 2);
	assert_non_null(strstr(text, "aaaa<redacted>aaa"));
	free(text);

	text = log_redact("a Swordfish-42-xyz b");
	assert_string_equal(text, "a <redacted> b");
	free(text);
	log_forget_secrets();
	text = log_redact("a Swordfish-42-xyz b");
	assert_string_equal(text, "a Swordfish-42-xyz b");
	free(text);
	free(big);
	free(path);
}

#define LOG_THREADS 4
#define LOG_LINES 2000

static void *
log_thread(void *arg)
{
	long		id = (long) arg;

	for (int i = 0; i < LOG_LINES; i++)
		log_info("thread %ld line %d %s end", id, i,
				 "................................................................................"
				 "................................................................................");
	return NULL;
}

/* Lines logged by several threads at once arrive whole, each exactly once. */
static void
test_log_threads(void **state)
{
	char	   *path = xasprintf("%s/threads.log", tmpdir);
	pthread_t	threads[LOG_THREADS];
	char	   *text;

	(void) state;
	assert_int_equal(log_open_file(path, LOG_INFO), 0);
	log_set_console_level(LOG_OFF);
	for (long i = 0; i < LOG_THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, log_thread, (void *) i), 0);
	for (int i = 0; i < LOG_THREADS; i++)
		pthread_join(threads[i], NULL);
	log_close();
	log_set_console_level(LOG_WARN);
	text = slurp(path);
	assert_int_equal(count_matching(text, LINE_RE "INFO: thread [0-3] line [0-9]+ \\.{160} end$",
									true), LOG_THREADS * LOG_LINES);
	free(text);
	free(path);
}

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------- */
static void
test_cli_errors(void **state)
{
	(void) state;
	assert_fails(DRB_ERR_USAGE, parse(NULL), "no command", "drbackup help");
	assert_fails(DRB_ERR_USAGE, parse("--config", conf_path, NULL), "no command");
	assert_fails(DRB_ERR_USAGE, parse("--bogus", "repo-ls", NULL),
				 "unknown option '--bogus'", "drbackup help");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo1-s3-bukcet=x", NULL),
				 "unknown option '--repo1-s3-bukcet'", "did you mean '--repo1-s3-bucket'");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo3-s3-regoin=x", NULL),
				 "did you mean '--repo3-s3-region'");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--proces-max=2", NULL),
				 "did you mean '--process-max'");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "-x", NULL), "unknown option '-x'");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo-path=/x", NULL),
				 "'--repo-path'", "needs a repository number", "--repo1-path");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo5-path=/x", NULL),
				 "'--repo5-path'", "5 is out of range 1..4");
	assert_fails(DRB_ERR_USAGE, parse("repo-lst", NULL),
				 "unknown command 'repo-lst'", "did you mean 'repo-ls'");
	assert_fails(DRB_ERR_USAGE, parse("frobnicate", NULL), "unknown command 'frobnicate'");
	assert_fails(DRB_ERR_USAGE, parse("--help", "frobnicate", NULL), "unknown command");

	/* bad values name the option, the value and what is allowed */
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--process-max=65", NULL),
				 "'65'", "'--process-max'", "from 1 to 64");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--process-max", "many", NULL),
				 "'many'", "from 1 to 64");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--compress-type=xz", NULL),
				 "'xz'", "'--compress-type'", "one of none, zstd, lz4, gz");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo2-s3-part-size=1MiB", NULL),
				 "'1MiB'", "'--repo2-s3-part-size'", "from 5MiB to 5GiB");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo1-s3-verify-tls=maybe", NULL),
				 "'maybe'", "y or n");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo1-path=relative", NULL),
				 "'relative'", "absolute path");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--stanza=a/b", NULL),
				 "'a/b'", "'--stanza'", "letters, digits");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo=0", NULL), "'0'", "from 1 to 4");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--process-max=", NULL), "'--process-max'");

	/* options and commands */
	assert_fails(DRB_ERR_USAGE, parse("repo-put", "--output=json", "a", "b", NULL),
				 "'--output'", "not valid for command 'repo-put'");
	assert_fails(DRB_ERR_USAGE, parse("version", "--repo1-path=/x", NULL),
				 "not valid for command 'version'");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo", NULL), "'--repo' needs a value");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--process-max=2", "--process-max=3", NULL),
				 "'--process-max' is given more than once");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--no-process-max", NULL),
				 "only boolean options");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--no-repo1-s3-verify-tls=y", NULL),
				 "does not take a value");

	/* positional arguments from the command table */
	assert_fails(DRB_ERR_USAGE, parse("repo-put", "only-one", NULL),
				 "'repo-put' needs 2 arguments but got 1", "repo-put LOCAL PATH");
	assert_fails(DRB_ERR_USAGE, parse("repo-rm", NULL), "needs at least 1 argument but got 0");
	assert_fails(DRB_ERR_USAGE, parse("repo-get", NULL), "needs at least 1 argument");
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "a", "b", NULL),
				 "takes at most 1 argument but got 2");
	assert_fails(DRB_ERR_USAGE, parse("version", "x", NULL), "'version' needs 0 arguments");
	assert_fails(DRB_ERR_USAGE, parse("--config", conf_path, "stanza-create", NULL),
				 "'stanza-create' requires option '--stanza'");

	/* compress-level checked against compress-type */
	assert_fails(DRB_ERR_USAGE, parse("--config", conf_path, "repo-ls", "--compress-type=gz",
									  "--compress-level=12", NULL),
				 "compress-level", "12", "'gz'", "0 to 9");
	assert_fails(DRB_ERR_USAGE, parse("--config", conf_path, "repo-ls", "--compress-level=0", NULL),
				 "'zstd'", "1 to 19");
	assert_fails(DRB_ERR_USAGE, parse("--config", conf_path, "repo-ls", "--compress-type=lz4",
									  "--compress-level=13", NULL), "0 to 12");
}

static void
test_env_errors(void **state)
{
	(void) state;
	setenv("DRBACKUP_PROCESS_MAX", "0", 1);
	assert_fails(DRB_ERR_CONFIG, parse("--config", conf_path, "repo-ls", NULL),
				 "'0'", "DRBACKUP_PROCESS_MAX", "from 1 to 64");
	unsetenv("DRBACKUP_PROCESS_MAX");

	/* an unknown DRBACKUP_ variable is only a warning */
	setenv("DRBACKUP_NO_SUCH_OPTION", "1", 1);
	{
		config_t   *cfg = parse("--config", conf_path, "repo-ls", NULL);

		assert_non_null(cfg);
		config_free(cfg);
	}
	unsetenv("DRBACKUP_NO_SUCH_OPTION");

	setenv("DRBACKUP_CONFIG", "/nonexistent/drbackup.conf", 1);
	assert_fails(DRB_ERR_CONFIG, parse("repo-ls", NULL),
				 "unable to open config file '/nonexistent/drbackup.conf'");
}

static void
test_file_errors(void **state)
{
	struct
	{
		const char *content;
		const char *frag1;
		const char *frag2;
	}			cases[] = {
		{"[global]\nprocess-max=2\nbogus-key=1\n", "unknown option 'bogus-key'", "line 3"},
		{"[global]\nrepo1-s3-bukcet=b\n", "did you mean 'repo1-s3-bucket'", "line 2"},
		{"[global]\nrepo-path=/x\n", "needs a repository number", "line 2"},
		{"process-max=2\n", "outside any section", "line 1"},
		{"[global]\npg1-path=/pg\n", "'pg1-path'", "stanza section"},
		{"[main]\nstanza=main\n", "'stanza'", "may not be set in a config file"},
		{"[main]\nrepo=2\n", "'repo'", "may not be set in a config file"},
		{"[global]\nprocess-max=100\n", "'100'", "line 2"},
		{"[other]\ncompress-type=rar\n", "'rar'", "one of none"},	/* unused sections checked too */
		{"[global]\nprocess-max=2\nprocess-max=3\n", "set twice", "lines 2 and 3"},
		{"[global]\njust words\n", "line 2", "key=value"},
		{"[bad/name]\nprocess-max=2\n", "invalid section [bad/name]", "line 2"},
		{"[global\nprocess-max=2\n", "line 1", "section"},
		{"[global]\ncompress-level=20\n", "compress-level", "1 to 19"},
	};

	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char	   *file = write_conf("bad.conf", cases[i].content, 0600);
		config_t   *cfg = parse("--config", file, "repo-ls", NULL);

		if (cfg != NULL)
			fail_msg("case %zu accepted: %s", i, cases[i].content);
		assert_int_equal(err_kind(), DRB_ERR_CONFIG);
		if (strstr(err_msg(), cases[i].frag1) == NULL || strstr(err_msg(), cases[i].frag2) == NULL)
			fail_msg("case %zu: message \"%s\" lacks \"%s\" or \"%s\"", i, err_msg(),
					 cases[i].frag1, cases[i].frag2);
		if (i < 3 && strstr(err_msg(), file) == NULL)
			fail_msg("case %zu: message \"%s\" does not name the file", i, err_msg());
		free(file);
	}

	assert_fails(DRB_ERR_CONFIG, parse("--config", "/nonexistent/x.conf", "repo-ls", NULL),
				 "unable to open config file '/nonexistent/x.conf'");
	assert_fails(DRB_ERR_CONFIG, parse("--config", tmpdir, "repo-ls", NULL), "not a regular file");
}

/* ---------------------------------------------------------------------------------------
 * Secrets
 * ------------------------------------------------------------------------------------- */
static void
test_secret_refused_on_command_line(void **state)
{
	char	   *redacted;

	(void) state;
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo1-cipher-pass=hunter2-cli", NULL),
				 "'--repo1-cipher-pass'", "secret", "DRBACKUP_REPO1_CIPHER_PASS");
	assert_null(strstr(err_msg(), "hunter2-cli"));
	/* the value was registered: even if it were printed, it would be redacted */
	redacted = log_redact("x hunter2-cli y");
	assert_null(strstr(redacted, "hunter2-cli"));
	free(redacted);

	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo2-s3-key-secret", "sk-cli-value", NULL),
				 "'--repo2-s3-key-secret'");
	assert_null(strstr(err_msg(), "sk-cli-value"));
	/* a misspelt secret option does not echo its value either */
	assert_fails(DRB_ERR_USAGE, parse("repo-ls", "--repo1-cipher-pas=typo-secret", NULL),
				 "unknown option");
	assert_null(strstr(err_msg(), "typo-secret"));
}

static void
test_secret_from_env_and_file(void **state)
{
	char	   *file = write_conf("secret.conf",
								  "[global]\nrepo1-cipher-type=aes-256-gcm\n"
								  "repo1-cipher-pass=file-pass-123\n", 0640);
	config_t   *cfg;
	char	   *redacted;

	(void) state;
	cfg = parse("--config", file, "repo-ls", NULL);
	assert_non_null(cfg);
	assert_string_equal(cfg_repo_str(cfg, 1, "cipher-pass"), "file-pass-123");
	config_free(cfg);
	redacted = log_redact("pass file-pass-123.");
	assert_string_equal(redacted, "pass <redacted>.");
	free(redacted);

	setenv("DRBACKUP_REPO2_S3_KEY", "env-key-456", 1);
	cfg = parse("--config", file, "repo-ls", NULL);
	assert_non_null(cfg);
	assert_string_equal(cfg_repo_str(cfg, 2, "s3-key"), "env-key-456");
	assert_true(cfg_repo_configured(cfg, 2));
	config_free(cfg);
	redacted = log_redact("env-key-456");
	assert_string_equal(redacted, "<redacted>");
	free(redacted);

	/* a bad secret value is reported without the value */
	setenv("DRBACKUP_REPO2_S3_KEY", "", 1);
	assert_fails(DRB_ERR_CONFIG, parse("--config", file, "repo-ls", NULL),
				 "'repo2-s3-key'", "not shown: secret");
	free(file);
}

static void
test_world_readable_secret_file(void **state)
{
	char	   *file = write_conf("open.conf",
								  "[global]\nrepo1-cipher-pass=open-secret-789\n"
								  "[main]\nrepo3-s3-key=open-key\nrepo1-cipher-pass=again\n", 0644);
	char	   *expect = xasprintf("config file '%s' holds secrets (repo1-cipher-pass, repo3-s3-key) "
								   "but is readable by other users: chmod 640 it", file);
	char	   *plain;
	config_t   *cfg;

	(void) state;
	assert_fails(DRB_ERR_CONFIG, parse("--config", file, "repo-ls", NULL), "holds secrets");
	assert_string_equal(err_msg(), expect);
	assert_null(strstr(err_msg(), "open-secret-789"));

	/* group-readable is fine */
	assert_int_equal(chmod(file, 0640), 0);
	cfg = parse("--config", file, "repo-ls", NULL);
	assert_non_null(cfg);
	config_free(cfg);

	/* a world-readable file without secrets is fine too */
	plain = write_conf("plain.conf", "[global]\nprocess-max=2\n", 0644);
	cfg = parse("--config", plain, "repo-ls", NULL);
	assert_non_null(cfg);
	config_free(cfg);

	/* a secret only in another stanza's section still counts */
	free(file);
	file = write_conf("open2.conf", "[global]\nprocess-max=2\n[x]\nrepo1-gcs-key=k\n", 0604);
	assert_fails(DRB_ERR_CONFIG, parse("--config", file, "repo-ls", NULL),
				 "holds secrets (repo1-gcs-key)");
	free(plain);
	free(file);
	free(expect);
}

/* ---------------------------------------------------------------------------------------
 * Help and documentation
 * ------------------------------------------------------------------------------------- */
static void
test_help(void **state)
{
	int			rc;
	char	   *text;
	config_t   *cfg;

	(void) state;
	text = capture_help(NULL, &rc);
	assert_int_equal(rc, 0);
	for (size_t i = 0; i < cmd_count; i++)
	{
		char		line[128];

		/* every command listed as "  NAME  summary", except the hidden worker commands */
		snprintf(line, sizeof(line), "  %s ", cmd_table[i].name);
		if (cmd_table[i].hidden)
			assert_null(strstr(text, line));
		else
			assert_non_null(strstr(text, line));
	}
	assert_non_null(strstr(text, "Usage: drbackup [GLOBAL OPTIONS] COMMAND"));
	assert_non_null(strstr(text, "--process-max=N"));
	assert_non_null(strstr(text, "--log-level-console=off|error|warn|info|detail|debug|trace"));
	assert_null(strstr(text, "--repo<N>-s3-bucket"));	/* not a general option */
	free(text);

	text = capture_help("repo-put", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(text, "Usage: drbackup [OPTIONS] repo-put LOCAL PATH"));
	assert_non_null(strstr(text, "LOCAL"));
	assert_non_null(strstr(text, "--repo=N"));
	assert_non_null(strstr(text, "--repo<N>-s3-bucket=BUCKET"));
	assert_non_null(strstr(text, "[Size 5MiB..5GiB; default 8MiB]"));
	assert_non_null(strstr(text, "--[no-]repo<N>-s3-verify-tls"));
	assert_non_null(strstr(text, "  repo<N>-cipher-pass=PASS  (not on the command line)"));
	assert_null(strstr(text, "--repo<N>-cipher-pass"));
	assert_non_null(strstr(text, "secret: config file or DRBACKUP_REPO<N>_CIPHER_PASS"));
	assert_non_null(strstr(text, "--process-max=N"));
	assert_null(strstr(text, "--output"));
	free(text);

	text = capture_help("repo-ls", &rc);
	assert_non_null(strstr(text, "--output=text|json"));
	free(text);

	/* values are never shown, secrets included */
	setenv("DRBACKUP_REPO1_CIPHER_PASS", "help-secret", 1);
	cfg = parse("--config", conf_path, "repo-ls", NULL);
	assert_non_null(cfg);
	text = capture_help("repo-ls", &rc);
	assert_null(strstr(text, "help-secret"));
	free(text);
	config_free(cfg);

	text = capture_help("repo-lx", &rc);
	assert_int_equal(rc, -1);
	assert_int_equal(err_kind(), DRB_ERR_USAGE);
	assert_non_null(strstr(err_msg(), "'repo-lx'"));
	assert_non_null(strstr(err_msg(), "did you mean 'repo-ls'"));
	free(text);
}

static void
test_tables_consistent(void **state)
{
	(void) state;
	for (size_t i = 0; i < opt_count; i++)
	{
		const opt_def *d = &opt_table[i];
		char		env[OPT_NAME_MAX];
		int64_t		num;
		char	   *norm;

		assert_non_null(d->help);
		assert_true(d->commands != 0);
		assert_true((d->commands & ~CMDS_ALL) == 0);
		if (d->indexed)
			assert_int_equal(strncmp(d->name, "repo-", 5), 0);
		if (d->type == OPT_TYPE_ENUM)
			assert_non_null(d->allowed);
		if (d->type == OPT_TYPE_INT || d->type == OPT_TYPE_SIZE)
			assert_true(d->min <= d->max);
		if (d->def)
		{
			if (opt_parse_value(d, d->def, &num, &norm) != 0)
				fail_msg("default '%s' of '%s' is invalid", d->def, d->name);
			/* defaults are written canonically, so docs show what cfg_str returns */
			assert_string_equal(norm, d->def);
			free(norm);
		}
		if (d->secret)
			assert_int_not_equal(d->section, OPT_SECTION_CMDLINE);
		opt_env_name(d, REPO_MAX, env);
		assert_true(strlen(env) < OPT_NAME_MAX - 1);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(opt_table[j].name, d->name);
	}
	for (size_t i = 0; i < cmd_count; i++)
	{
		assert_ptr_equal(cmd_by_id(cmd_table[i].id), &cmd_table[i]);
		assert_ptr_equal(cmd_find(cmd_table[i].name), &cmd_table[i]);
	}
	for (int c = CMD_NONE + 1; c < CMD_COUNT; c++)
		assert_non_null(cmd_by_id((drb_command) c));
}

/*
 * Compare srcdir/name with what writer produces now (UPDATE_DOCS=1: rewrite it first).
 * Returns the generated text (caller frees).
 */
static char *
check_generated(const char *name, void (*writer) (FILE *))
{
	const char *srcdir = getenv("srcdir");
	char	   *path = xasprintf("%s/%s", srcdir && *srcdir ? srcdir : ".", name);
	char	   *generated = NULL;
	size_t		glen = 0;
	FILE	   *f = open_memstream(&generated, &glen);
	char	   *current;

	writer(f);
	fclose(f);

	if (getenv("UPDATE_DOCS"))
	{
		FILE	   *out = fopen(path, "w");

		assert_non_null(out);
		fwrite(generated, 1, glen, out);
		assert_int_equal(fclose(out), 0);
	}

	current = slurp(path);
	if (current == NULL)
		fail_msg("cannot read %s: run UPDATE_DOCS=1 tests/unit/test_config", path);
	if (strlen(current) != glen || memcmp(current, generated, glen) != 0)
		fail_msg("%s is out of date with the option table: run UPDATE_DOCS=1 "
				 "tests/unit/test_config", path);
	free(current);
	free(path);
	return generated;
}

static void
test_docs_up_to_date(void **state)
{
	char	   *generated = check_generated("docs/configuration.md", config_write_markdown);

	(void) state;
	/* and it documents every option and command */
	for (size_t i = 0; i < opt_count; i++)
	{
		char		name[OPT_NAME_MAX + 8];
		char		full[OPT_NAME_MAX];

		opt_full_name(&opt_table[i], 0, full);
		snprintf(name, sizeof(name), "`--%s`", full);
		if (strstr(generated, name) == NULL)
			fail_msg("%s is not documented", name);
	}
	for (size_t i = 0; i < cmd_count; i++)
		if (cmd_table[i].hidden)
			assert_null(strstr(generated, cmd_table[i].usage));
		else
			assert_non_null(strstr(generated, cmd_table[i].usage));
	assert_non_null(strstr(generated, "DRBACKUP_REPO<N>_S3_BUCKET"));
	assert_non_null(strstr(generated, "Generated"));
	free(generated);
}

/* "repo<N>-s3-bucket" as roff writes it: "repo<N>\-s3\-bucket". */
static void
roff_name(const char *name, char *out, size_t size)
{
	size_t		j = 0;

	for (const char *p = name; *p && j + 3 < size; p++)
	{
		if (*p == '-')
			out[j++] = '\\';
		out[j++] = *p;
	}
	out[j] = '\0';
}

static void
test_man_page_up_to_date(void **state)
{
	char	   *generated = check_generated("docs/drbackup.1", config_write_man);
	char		want[256];

	(void) state;
	/* the sections a man page has */
	assert_true(strncmp(generated, ".\\\" Generated", 13) == 0);
	assert_non_null(strstr(generated, "\n.TH DRBACKUP 1 "));
	{
		const char *const sections[] = {"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS",
		"FILES", "EXIT STATUS", "SEE ALSO"};
		const char *last = generated;

		for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		{
			snprintf(want, sizeof(want), "\n.SH %s\n", sections[i]);
			last = strstr(last, want);
			if (last == NULL)
				fail_msg("section %s missing or out of order", sections[i]);
		}
	}
	/* every option with its environment variable, every visible command, no hidden one */
	for (size_t i = 0; i < opt_count; i++)
	{
		char		full[OPT_NAME_MAX];
		char		roff[2 * OPT_NAME_MAX];

		opt_full_name(&opt_table[i], 0, full);
		roff_name(full, roff, sizeof(roff));
		snprintf(want, sizeof(want), ".TP\n\\fB\\-\\-%s\\fR", roff);
		if (strstr(generated, want) == NULL)
		{
			snprintf(want, sizeof(want), ".TP\n\\fB\\-\\-\\fR[\\fBno\\-\\fR]\\fB%s\\fR", roff);
			if (strstr(generated, want) == NULL)
				fail_msg("option %s has no entry", full);
		}
		opt_env_name(&opt_table[i], 0, full);
		snprintf(want, sizeof(want), "Environment: \\fB%s\\fR", full);
		if (strstr(generated, want) == NULL)
			fail_msg("environment variable %s missing", full);
	}
	for (size_t i = 0; i < cmd_count; i++)
	{
		char		roff[2 * OPT_NAME_MAX];

		roff_name(cmd_table[i].name, roff, sizeof(roff));
		snprintf(want, sizeof(want), "\n.SS %s\n", roff);
		if (cmd_table[i].hidden)
			assert_null(strstr(generated, want));
		else if (strstr(generated, want) == NULL)
			fail_msg("command %s has no entry", cmd_table[i].name);
	}
	/* every exit code with its kind */
	for (int k = DRB_OK; k <= DRB_ERR_RECOVERY_ABORT; k++)
	{
		char		roff[2 * OPT_NAME_MAX];

		roff_name(err_kind_name((drb_err) k), roff, sizeof(roff));
		snprintf(want, sizeof(want), ".TP\n.B %d\n%s: ", err_exit_code((drb_err) k), roff);
		if (strstr(strstr(generated, ".SH EXIT STATUS"), want) == NULL)
			fail_msg("exit code %d (%s) missing", err_exit_code((drb_err) k),
					 err_kind_name((drb_err) k));
	}
	/* no line a roff reader would take for a request by accident */
	for (const char *p = generated; p; p = strchr(p + 1, '\n'))
	{
		const char *line = *p == '\n' ? p + 1 : p;

		if (*line == '\'')
			fail_msg("line starts with a quote: %.40s", line);
	}
	free(generated);
}

/*
 * Libraries opened on first use (dynlib.h): a missing one is one configuration error
 * naming the file, what needs it and the package, every time it is asked for; a present
 * one fills its table (libpq answers a call).
 */
static void
test_dynlib_load(void **state)
{
	static void *slot;
	static const dynlib_sym syms[] = {{"no_such_function", &slot}};
	dynlib		missing = {"libdrbackup-missing.so.9", "testing", "no-such-package", syms, 1};
	dynlib		partial = {"libz.so.1", "testing", "zlib1g", syms, 1};

	(void) state;
	for (int i = 0; i < 2; i++)
	{
		err_clear();
		assert_int_equal(dynlib_load(&missing), -1);
		assert_int_equal(err_kind(), DRB_ERR_CONFIG);
		assert_non_null(strstr(err_msg(), "unable to load libdrbackup-missing.so.9, needed for "
								"testing (Debian package no-such-package)"));
	}
	err_clear();
	assert_int_equal(dynlib_load(&partial), -1);
	assert_non_null(strstr(err_msg(), "it has no symbol no_such_function"));
	free(missing.why);			/* a real library's table lives as long as the process */
	free(partial.why);

	err_clear();
	assert_int_equal(dl_pq_load(), 0);
	assert_int_equal(dl_pq_load(), 0);
	assert_non_null(dl_pq.connectdbParams);
	assert_int_equal(PQstatus(NULL), CONNECTION_BAD);	/* through the table */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repo_indexing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_parsing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opt_parse_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_args_and_shortcuts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_file_unusable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_redaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_refused_on_command_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_from_env_and_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_world_readable_secret_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_consistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docs_up_to_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_man_page_up_to_date, setup, teardown),
		cmocka_unit_test(test_dynlib_load),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
