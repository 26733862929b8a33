/*
 * options.c — the command table, the option table and the value rules (see options.h).
 *
 * To add an option: add one row to opt_table below (help, parsing, validation and
 * docs/configuration.md follow; regenerate the doc with UPDATE_DOCS=1 tests/unit/test_config).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"
#include "options.h"

#define KIB		INT64_C(1024)
#define MIB		(KIB * 1024)
#define GIB		(MIB * 1024)
#define TIB		(GIB * 1024)

/* NULL-terminated list of allowed values for an enum row. */
#define ALLOWED(...)	((const char *const[]) {__VA_ARGS__, NULL})

#define LOG_LEVELS		ALLOWED("off", "error", "warn", "info", "detail", "debug", "trace")

/* --output: a format (text, json) or, for metrics, a file ("-": standard output) */
static bool
output_ok(const char *value)
{
	return strcmp(value, "text") == 0 || strcmp(value, "json") == 0 ||
		strcmp(value, "-") == 0 || value[0] == '/';
}

static bool
stanza_name_ok(const char *value)
{
	if (value[0] == '\0' || strlen(value) > 64)
		return false;
	for (const char *p = value; *p; p++)
		if (!isalnum((unsigned char) *p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

/* ---------------------------------------------------------------------------------------
 * Commands
 * ------------------------------------------------------------------------------------- */
const cmd_def cmd_table[] = {
	{
		.id = CMD_HELP, .name = "help", .usage = "help [COMMAND]",
		.summary = "Show help for drbackup or for one command.",
		.help = "Without COMMAND, lists the commands and the general options. With COMMAND, "
		"shows its usage, what it does and every option it takes, with type and default. "
		"`drbackup COMMAND --help` does the same.",
		.args = (const cmd_arg[]) {{"COMMAND", "command to describe"}, {NULL, NULL}},
		.min_args = 0, .max_args = 1,
	},
	{
		.id = CMD_VERSION, .name = "version", .usage = "version",
		.summary = "Show the drbackup version.",
		.help = "Prints \"drbackup VERSION\". `drbackup --version` does the same.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0,
	},
	{
		.id = CMD_REPO_CREATE, .name = "repo-create", .usage = "repo-create",
		.summary = "Initialise repositories.",
		.help = "Initialises every configured repository, or only the one given with --repo: "
		"writes the repository key file with a new random data key (wrapped with "
		"repo<N>-cipher-pass when repo<N>-cipher-type is not none) and its redundant copy. "
		"Running it again on an initialised repository succeeds when the cipher settings "
		"and the passphrase match, and fails otherwise.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0,
	},
	{
		.id = CMD_STANZA_CREATE, .name = "stanza-create", .usage = "stanza-create",
		.summary = "Initialise a stanza in the repositories.",
		.help = "Connects to the stanza's PostgreSQL cluster (pg1-* options), reads its system "
		"identifier and version, and records them in every configured repository, or only "
		"the one given with --repo. A repository that already holds the stanza for another "
		"cluster is refused. Requires --stanza.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_REPO_LS, .name = "repo-ls", .usage = "repo-ls [PREFIX]",
		.summary = "List objects in a repository.",
		.help = "Lists every object of the repository (repo 1 unless --repo is given) whose "
		"path starts with PREFIX, in lexical order, with its size and modification time. "
		"--output=json prints a JSON array instead.",
		.args = (const cmd_arg[]) {{"PREFIX", "list only paths starting with this (default: all)"},
		{NULL, NULL}},
		.min_args = 0, .max_args = 1,
	},
	{
		.id = CMD_REPO_PUT, .name = "repo-put", .usage = "repo-put LOCAL PATH",
		.summary = "Store a local file in a repository.",
		.help = "Stores the local file LOCAL as object PATH in the repository (repo 1 unless "
		"--repo is given), through the repository pipeline: checksum, compression, "
		"encryption. The object becomes visible only once it is complete; an existing "
		"object of that name is replaced.",
		.args = (const cmd_arg[]) {{"LOCAL", "local file to read"},
		{"PATH", "object path in the repository, relative, '/'-separated"}, {NULL, NULL}},
		.min_args = 2, .max_args = 2,
	},
	{
		.id = CMD_REPO_GET, .name = "repo-get", .usage = "repo-get PATH [LOCAL]",
		.summary = "Fetch an object from a repository.",
		.help = "Reads object PATH from the repository (repo 1 unless --repo is given), "
		"verifies it (authentication, checksum, size) and writes its plain content to "
		"LOCAL, or to standard output when LOCAL is omitted.",
		.args = (const cmd_arg[]) {{"PATH", "object path in the repository"},
		{"LOCAL", "local file to write (default: standard output)"}, {NULL, NULL}},
		.min_args = 1, .max_args = 2,
	},
	{
		.id = CMD_REPO_RM, .name = "repo-rm", .usage = "repo-rm PATH...",
		.summary = "Remove objects from a repository.",
		.help = "Removes each object PATH from the repository (repo 1 unless --repo is given). "
		"Removing an object that does not exist is not an error.",
		.args = (const cmd_arg[]) {{"PATH...", "object paths in the repository"}, {NULL, NULL}},
		.min_args = 1, .max_args = -1,
	},
	{
		.id = CMD_ARCHIVE_PUSH, .name = "archive-push", .usage = "archive-push WAL-PATH",
		.summary = "Archive a WAL file (PostgreSQL's archive_command).",
		.help = "Stores the WAL segment, .partial, .history or .backup file at WAL-PATH (%p) in "
		"every configured repository and exits 0 only once it is durable in all of them. A file "
		"already stored with the same content is a success without a second upload; different "
		"content under the same name is refused. With archive-async, a background worker pushes "
		"ready segments ahead and this command answers from its acknowledgements. "
		"Use: archive_command = 'drbackup --stanza=NAME archive-push %p'.",
		.args = (const cmd_arg[]) {{"WAL-PATH", "path of the WAL file (%p)"}, {NULL, NULL}},
		.min_args = 1, .max_args = 1, .needs_stanza = true,
	},
	{
		.id = CMD_ARCHIVE_GET, .name = "archive-get", .usage = "archive-get WAL-NAME DEST",
		.summary = "Fetch a WAL file (PostgreSQL's restore_command).",
		.help = "Fetches WAL-NAME (%f) from the first repository that has it (or --repo), "
		"verifies it and writes it atomically to DEST (%p). Exits 1 quietly when no repository "
		"has the file, as PostgreSQL expects while it probes for timelines. With archive-async, "
		"the following segments are prefetched in parallel into the spool. "
		"Use: restore_command = 'drbackup --stanza=NAME archive-get %f \"%p\"'.",
		.args = (const cmd_arg[]) {{"WAL-NAME", "WAL file name (%f)"},
		{"DEST", "where to write it (%p)"}, {NULL, NULL}},
		.min_args = 2, .max_args = 2, .needs_stanza = true,
	},
	{
		.id = CMD_REPO_SYNC, .name = "repo-sync", .usage = "repo-sync --from=N --to=M",
		.summary = "Copy what one repository has and another lacks.",
		.help = "Brings repository M level with repository N for the stanza: every archived WAL "
		"file N has and M lacks is read from N, verified, and written to M. Nothing is deleted "
		"or overwritten; a file stored with different content in M is reported.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_ARCHIVE_PUSH_ASYNC, .name = "archive-push-async", .usage = "archive-push-async",
		.summary = "Asynchronous archive-push worker (started by archive-push).",
		.help = "Internal: pushes ready WAL segments ahead of PostgreSQL's requests.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true, .hidden = true,
	},
	{
		.id = CMD_ARCHIVE_GET_ASYNC, .name = "archive-get-async", .usage = "archive-get-async WAL-NAME",
		.summary = "archive-get prefetch worker (started by archive-get).",
		.help = "Internal: fetches the WAL segments following WAL-NAME into the spool.",
		.args = (const cmd_arg[]) {{"WAL-NAME", "first segment to prefetch"}, {NULL, NULL}},
		.min_args = 1, .max_args = 1, .needs_stanza = true, .hidden = true,
	},
	{
		.id = CMD_BACKUP, .name = "backup", .usage = "backup [--type=full|diff|incr]",
		.summary = "Take a base backup of the stanza's cluster.",
		.help = "Takes a full, differential (changes since the last full) or incremental "
		"(changes since the last backup) backup of the cluster, reading the data directory and "
		"every tablespace once and writing to every configured repository (or --repo) in "
		"parallel (process-max). Without --type: incr when a full backup exists, else full. "
		"Uses non-exclusive pg_backup_start/pg_backup_stop, verifies page checksums while "
		"reading, bundles small files, and marks the backup complete only once the WAL from "
		"its start to its stop is in the archive. An interrupted backup found at the start is "
		"removed. Runs expire afterwards unless expire-auto=n. One backup or expire per "
		"stanza at a time.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_EXPIRE, .name = "expire", .usage = "expire [--dry-run]",
		.summary = "Remove backups and WAL beyond the retention settings.",
		.help = "Applies repo<N>-retention-full (a count, or days with "
		"repo<N>-retention-full-type=time) and repo<N>-retention-diff to every configured "
		"repository (or --repo): removes expired backups with the backups that depend on "
		"them, and the WAL no retained backup needs. The newest complete backup is never "
		"removed. --dry-run prints what would go and changes nothing.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_INFO, .name = "info", .usage = "info [--output=json]",
		.summary = "Show backups, WAL archive and the recoverable window.",
		.help = "For the stanza (or every stanza in the repositories when --stanza is not "
		"given) and each repository: every backup with type, parent, times, LSNs, sizes and "
		"status, the WAL archive per timeline with its gaps, the recoverable window (earliest "
		"and latest time one can restore to) and the last restore test. --output=json prints "
		"the schema documented in docs/info.md.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0,
	},
	{
		.id = CMD_RESTORE, .name = "restore", .usage = "restore [--pgdata=DIR] [--set=LABEL] [TARGET]",
		.summary = "Restore a backup and set up point-in-time recovery.",
		.help = "Writes the data directory (pg1-path, or --pgdata) and tablespaces from a "
		"backup, in parallel (process-max), every file verified against the manifest, and "
		"sets up recovery: recovery.signal, and restore_command (archive-get with this "
		"configuration) plus the recovery target in postgresql.auto.conf. Without --set it "
		"picks the newest complete backup that can reach the target, in any repository (or "
		"--repo), and says which and why; a target outside the recoverable window is refused. "
		"Targets: --to-time, --to-lsn, --to-xid, --to-name, --immediate; none = the end of the "
		"archive. Also writes backup_manifest in PostgreSQL's format, so pg_verifybackup can "
		"check the result. Refuses a non-empty target without --delta or --force, and any "
		"target where PostgreSQL runs.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_VERIFY, .name = "verify", .usage = "verify [--set=LABEL] [--output=json]",
		.summary = "Check every object of the repositories, and that they agree.",
		.help = "Reads every backup and WAL object of the stanza in each repository (or --repo), "
		"in parallel (process-max) with bounded memory: authenticates, decompresses and checks "
		"each against its manifest or WAL checksum. Checks that the WAL each backup needs is "
		"archived and that the archive has no gap from the oldest backup to the newest segment "
		"of each timeline, and compares the repositories of different regions (same backups, "
		"same WAL, same checksums). Prints every problem with the object's name and exits "
		"non-zero if there is any. --set limits the backups checked to one.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_RESTORE_TEST, .name = "restore-test",
		.usage = "restore-test [--to-time=T | --random-target] [--checks=FILE] [--report=FILE] [--metrics=FILE] [--keep]",
		.summary = "Prove a backup restores: restore, start, recover, check, report.",
		.help = "Restores a backup (the newest, the one reaching --to-time, or one reaching a "
		"random time in the recoverable window with --random-target) into a scratch directory, "
		"starts PostgreSQL there on a free 127.0.0.1 port, waits for recovery to reach the "
		"target and promote, checks the server answers and the point reached, runs pg_amcheck "
		"on every database, every query of --checks (each must return true), shuts down "
		"cleanly and runs pg_checksums when the cluster has checksums. Measures each phase "
		"(the recovery time objective), writes a JSON report and a Prometheus text file, "
		"records the result in the catalog, removes the scratch directory unless --keep, and "
		"exits non-zero naming the failed check.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_CHECK, .name = "check", .usage = "check",
		.summary = "Check the set-up end to end: configuration, repositories, archiving.",
		.help = "Validates the configuration; for each repository writes, reads back and "
		"deletes a probe object; checks the stanza matches the running cluster (system "
		"identifier, version); checks archive_mode and that archive_command calls drbackup "
		"for this stanza; forces a WAL switch and waits (archive-timeout) until that segment "
		"is in every repository. One line per check, OK or the reason; exits non-zero on any "
		"failure. Run it after set-up and after every configuration change.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
	{
		.id = CMD_EXPORT, .name = "export", .usage = "export --set=LABEL FILE.tar|FILE.tar.zst|-",
		.summary = "Write a backup as a plain tar that restores without drbackup.",
		.help = "Writes the data directory as of backup LABEL as a tar archive (zstd-compressed "
		"when FILE ends in .zst; '-' writes a plain tar to standard output): every file "
		"verified, tablespaces as directories under pg_tblspc/<oid>/ (start PostgreSQL with "
		"allow_in_place_tablespaces=on when there are any), backup_label, the "
		"WAL segments from the backup's start to its stop under pg_wal/ (so PostgreSQL "
		"reaches consistency with no restore_command), and a backup_manifest. Untar it into "
		"an empty directory and start PostgreSQL.",
		.args = (const cmd_arg[]) {{"FILE", "FILE.tar, FILE.tar.zst, or - for standard output"},
		{NULL, NULL}},
		.min_args = 1, .max_args = 1, .needs_stanza = true,
	},
	{
		.id = CMD_KEY_ROTATE, .name = "key-rotate", .usage = "key-rotate",
		.summary = "Re-wrap the repositories' data keys under a new passphrase.",
		.help = "For every configured repository (or --repo) with encryption, wraps the "
		"repository's data key under the new passphrase (cipher-pass-new from the "
		"environment DRBACKUP_CIPHER_PASS_NEW or the config file, or cipher-pass-new-file) "
		"and rewrites the key file and its copy; no data object is rewritten. Afterwards the "
		"old passphrase is refused; put the new one in repo<N>-cipher-pass. See "
		"docs/key-rotation.md for rotating a multi-region set-up.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0,
	},
	{
		.id = CMD_METRICS, .name = "metrics", .usage = "metrics [--output=FILE]",
		.summary = "Prometheus metrics for node_exporter's text-file collector.",
		.help = "Prints (or writes atomically to --output) Prometheus text: the age of the last "
		"archived WAL segment (RPO exposure), the age of the last backup of each type, the "
		"recoverable window, the size of each repository, and the time of the last "
		"successful restore test, per stanza and repository.",
		.args = (const cmd_arg[]) {{NULL, NULL}},
		.min_args = 0, .max_args = 0, .needs_stanza = true,
	},
};

const size_t cmd_count = sizeof(cmd_table) / sizeof(cmd_table[0]);

/* ---------------------------------------------------------------------------------------
 * Options, in help and documentation order
 * ------------------------------------------------------------------------------------- */
const opt_def opt_table[] = {
	/* general */
	{
		.name = "config", .type = OPT_TYPE_STRING, .group = OPT_GROUP_GENERAL,
		.section = OPT_SECTION_CMDLINE, .commands = CMDS_ALL,
		.def = "/etc/drbackup/drbackup.conf", .arg = "FILE",
		.help = "Configuration file. A missing default file is ignored; a missing file given "
		"with --config or DRBACKUP_CONFIG is an error. A file holding a secret option must "
		"not be readable by other users.",
	},
	{
		.name = "stanza", .type = OPT_TYPE_STRING, .group = OPT_GROUP_GENERAL,
		.section = OPT_SECTION_CMDLINE, .commands = CMDS_ALL,
		.check = stanza_name_ok, .check_desc = "1 to 64 letters, digits, '_', '.' or '-'",
		.arg = "NAME",
		.help = "Stanza (one PostgreSQL cluster) to work on; selects the [NAME] section of the "
		"config file, whose settings override [global]. Required by stanza-create.",
	},
	{
		.name = "process-max", .type = OPT_TYPE_INT, .group = OPT_GROUP_GENERAL,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "1", .min = 1, .max = 64,
		.help = "Maximum number of parallel processes or threads for transfers.",
	},
	{
		.name = "compress-type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_GENERAL,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "zstd",
		.allowed = ALLOWED("none", "zstd", "lz4", "gz"),
		.help = "Compression of the files written to repositories.",
	},
	{
		.name = "compress-level", .type = OPT_TYPE_INT, .group = OPT_GROUP_GENERAL,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .min = 0, .max = 22,
		.help = "Compression level. Unset: the type's default (zstd 3, lz4 1, gz 6). The valid "
		"range depends on compress-type: zstd 1..19, lz4 0..12, gz 0..9; ignored for none.",
	},

	/* logging */
	{
		.name = "log-level-console", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_LOG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "warn", .allowed = LOG_LEVELS,
		.help = "Level of the messages written to standard error.",
	},
	{
		.name = "log-level-file", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_LOG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "off", .allowed = LOG_LEVELS,
		.help = "Level of the messages written to the log file "
		"log-path/STANZA-COMMAND.log (all-COMMAND.log without a stanza).",
	},
	{
		.name = "log-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_LOG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "/var/log/drbackup",
		.help = "Directory of the log files.",
	},

	/* PostgreSQL */
	{
		.name = "pg1-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_STANZA, .commands = CMDS_ALL,
		.help = "Data directory of the PostgreSQL cluster.",
	},
	{
		.name = "pg1-port", .type = OPT_TYPE_INT, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "5432", .min = 1, .max = 65535,
		.help = "Port of the PostgreSQL cluster.",
	},
	{
		.name = "pg1-socket-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL,
		.help = "Unix socket directory of the PostgreSQL cluster (unset: the libpq default).",
	},
	{
		.name = "pg1-user", .type = OPT_TYPE_STRING, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .arg = "USER",
		.help = "PostgreSQL user to connect as (unset: the libpq default).",
	},
	{
		.name = "pg1-database", .type = OPT_TYPE_STRING, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .def = "postgres", .arg = "DB",
		.help = "Database to connect to.",
	},
	{
		.name = "pg1-host", .type = OPT_TYPE_STRING, .group = OPT_GROUP_PG,
		.section = OPT_SECTION_ANY, .commands = CMDS_ALL, .arg = "HOST",
		.help = "Host of the PostgreSQL cluster (unset: connect through the Unix socket).",
	},

	/* WAL archiving */
	{
		.name = "archive-async", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_ARCHIVE,
		.section = OPT_SECTION_ANY, .commands = CMDS_ARCHIVE, .def = "n",
		.help = "Asynchronous archiving: a background worker pushes ready segments ahead "
		"(in parallel, process-max) and archive-get prefetches following segments.",
	},
	{
		.name = "spool-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_ARCHIVE,
		.section = OPT_SECTION_ANY, .commands = CMDS_REPO, .def = "/var/spool/drbackup",
		.help = "Local directory for the asynchronous workers' queues and acknowledgements, "
		"the copies kept for a lagging repository, and the key cache. Must be writable by the "
		"PostgreSQL OS user.",
	},
	{
		.name = "archive-timeout", .type = OPT_TYPE_INT, .group = OPT_GROUP_ARCHIVE,
		.section = OPT_SECTION_ANY,
		.commands = CMDS_ARCHIVE | CMD_BIT(CMD_BACKUP) | CMD_BIT(CMD_CHECK), .def = "60",
		.min = 1, .max = 86400, .arg = "SECONDS",
		.help = "How long archive-push waits for the asynchronous worker's acknowledgement "
		"before it fails (PostgreSQL then retries), and how long backup waits for the WAL "
		"of the backup to reach the archive.",
	},
	{
		.name = "archive-push-queue-max", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_ARCHIVE,
		.section = OPT_SECTION_ANY, .commands = CMDS_ARCHIVE, .min = 16 * MIB, .max = 4 * TIB,
		.help = "Alert threshold for WAL waiting to be archived: above it a warning is "
		"logged. WAL is never dropped. Unset: no alert.",
	},
	{
		.name = "archive-get-queue-max", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_ARCHIVE,
		.section = OPT_SECTION_ANY, .commands = CMDS_ARCHIVE, .def = "128MiB",
		.min = 0, .max = 64 * GIB,
		.help = "How much WAL archive-get prefetches ahead in asynchronous mode (0 disables "
		"prefetching).",
	},

	/* backups */
	{
		.name = "type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_BACKUP),
		.allowed = ALLOWED("full", "diff", "incr"),
		.help = "Backup type. Unset: incr when a full backup exists in the repositories, "
		"else full. A diff or incr without a full backup to base it on becomes a full "
		"backup (with a warning).",
	},
	{
		.name = "start-fast", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP), .def = "n",
		.help = "Ask PostgreSQL for an immediate checkpoint at the start of the backup instead "
		"of waiting for the next spread one.",
	},
	{
		.name = "archive-check", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP), .def = "y",
		.help = "Wait (archive-timeout) until the WAL from the backup's start to its stop is in "
		"every repository before marking the backup complete. Turning it off leaves a "
		"backup that may not restore; only for clusters archived by other means.",
	},
	{
		.name = "checksum-page", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP),
		.help = "Verify PostgreSQL page checksums while reading relation files and record "
		"damaged pages in the manifest. Unset: on when the cluster has data checksums.",
	},
	{
		.name = "bundle-limit", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP), .def = "2MiB",
		.min = 0, .max = GIB,
		.help = "Files smaller than this are bundled with others into shared objects (0: "
		"every file gets an object of its own).",
	},
	{
		.name = "bundle-size", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP), .def = "32MiB",
		.min = MIB, .max = 4 * GIB,
		.help = "Target plain size of one bundle object.",
	},
	{
		.name = "expire-auto", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_BACKUP), .def = "y",
		.help = "Run expire after a successful backup.",
	},
	{
		.name = "dry-run", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_EXPIRE), .def = "n",
		.help = "Show what expire would remove; change nothing.",
	},
	{
		.name = "lock-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_BACKUP,
		.section = OPT_SECTION_ANY, .commands = CMDS_BACKUP, .def = "/tmp/drbackup",
		.help = "Directory of the lock files that keep two backups or expires of one stanza "
		"from running at once (created when missing).",
	},

	/* restore */
	{
		.name = "pgdata", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE),
		.help = "Data directory to restore into. Unset: pg1-path.",
	},
	{
		.name = "set", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE,
		.commands = CMD_BIT(CMD_RESTORE) | CMD_BIT(CMD_VERIFY) | CMD_BIT(CMD_RESTORE_TEST) |
		CMD_BIT(CMD_EXPORT),
		.arg = "LABEL",
		.help = "Backup to restore (verify: to check). Unset: the newest complete backup that "
		"can reach the target (verify: every backup).",
	},
	{
		.name = "to-time", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE) | CMD_BIT(CMD_RESTORE_TEST),
		.arg = "TIMESTAMP",
		.help = "Recover to this time (recovery_target_time), e.g. '2026-11-20 14:03:00+00'. "
		"Give a time zone; without one, UTC is assumed.",
	},
	{
		.name = "to-lsn", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .arg = "LSN",
		.help = "Recover to this WAL location (recovery_target_lsn), e.g. 0/3000060.",
	},
	{
		.name = "to-xid", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .arg = "XID",
		.help = "Recover to this transaction id (recovery_target_xid).",
	},
	{
		.name = "to-name", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .arg = "NAME",
		.help = "Recover to this restore point (recovery_target_name, from pg_create_restore_point).",
	},
	{
		.name = "immediate", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .def = "n",
		.help = "Recover only until the backup is consistent (recovery_target = 'immediate').",
	},
	{
		.name = "target-action", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .def = "pause",
		.allowed = ALLOWED("pause", "promote", "shutdown"),
		.help = "What PostgreSQL does at the target (recovery_target_action).",
	},
	{
		.name = "target-timeline", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .arg = "current|latest|N",
		.help = "Timeline to recover along (recovery_target_timeline). Unset: PostgreSQL's "
		"default, latest.",
	},
	{
		.name = "target-exclusive", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .def = "n",
		.help = "Stop just before the target instead of just after it (recovery_target_inclusive = off).",
	},
	{
		.name = "delta", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .def = "n",
		.help = "Restore over an existing data directory: fetch only files whose checksum "
		"differs from the manifest and remove files the backup does not have.",
	},
	{
		.name = "force", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .def = "n",
		.help = "Restore into a non-empty directory, replacing everything in it (never while "
		"PostgreSQL runs there).",
	},
	{
		.name = "tablespace-map", .type = OPT_TYPE_STRING, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE), .arg = "OID=DIR[,OID=DIR]",
		.help = "Restore tablespaces elsewhere than their original locations.",
	},
	{
		.name = "random-target", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE_TEST), .def = "n",
		.help = "restore-test: recover to a random time inside the recoverable window.",
	},
	{
		.name = "checks", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST), .arg = "FILE",
		.help = "restore-test: SQL file of checks, one query per statement (separated by ';'), "
		"each returning a single true.",
	},
	{
		.name = "report", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST), .arg = "FILE",
		.help = "restore-test: write the JSON report here (written atomically).",
	},
	{
		.name = "metrics", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST), .arg = "FILE",
		.help = "restore-test: write the Prometheus text file here (for node_exporter's "
		"text-file collector; written atomically).",
	},
	{
		.name = "keep", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_RESTORE_TEST), .def = "n",
		.help = "restore-test: keep the scratch directory (the server is stopped either way).",
	},
	{
		.name = "test-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST), .def = "/var/tmp",
		.help = "restore-test: where the scratch data directory is created (needs room for "
		"a whole cluster).",
	},
	{
		.name = "test-timeout", .type = OPT_TYPE_INT, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST), .def = "3600",
		.min = 10, .max = 604800, .arg = "SECONDS",
		.help = "restore-test: how long recovery may take before the test fails.",
	},
	{
		.name = "pg-bin-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_RESTORE,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_RESTORE_TEST),
		.help = "restore-test: directory of pg_ctl, pg_amcheck and pg_checksums. Unset: "
		"/usr/lib/postgresql/<major>/bin (Debian), else the PATH.",
	},

	/* operations */
	{
		.name = "cipher-pass-new", .type = OPT_TYPE_STRING, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_ANY, .secret = true, .commands = CMD_BIT(CMD_KEY_ROTATE),
		.arg = "PASSPHRASE",
		.help = "key-rotate: the new passphrase (environment or config file only, never the "
		"command line).",
	},
	{
		.name = "cipher-pass-new-file", .type = OPT_TYPE_PATH, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_ANY, .commands = CMD_BIT(CMD_KEY_ROTATE), .arg = "FILE",
		.help = "key-rotate: read the new passphrase from this file (first line; the file must "
		"not be readable by others).",
	},

	/* command options */
	{
		.name = "repo", .type = OPT_TYPE_INT, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_CMDLINE, .commands = CMDS_REPO, .min = 1, .max = REPO_MAX,
		.help = "Repository to work on. Unset: repository 1 for repo-ls, repo-put, repo-get and "
		"repo-rm; every configured repository for repo-create and stanza-create; for "
		"archive-get, the repositories in order; archive-push always writes to all.",
	},
	{
		.name = "output", .type = OPT_TYPE_STRING, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_CMDLINE,
		.commands = CMD_BIT(CMD_REPO_LS) | CMD_BIT(CMD_INFO) | CMD_BIT(CMD_VERIFY) |
		CMD_BIT(CMD_METRICS),
		.check = output_ok, .check_desc = "text, json, or (metrics) an absolute file path or -",
		.arg = "text|json|FILE",
		.help = "repo-ls, info, verify: output format, text (default) or json. metrics: the "
		"file to write (atomically; default: standard output).",
	},
	{
		.name = "from", .type = OPT_TYPE_INT, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_REPO_SYNC), .min = 1, .max = REPO_MAX,
		.help = "Repository to copy from (repo-sync; required).",
	},
	{
		.name = "to", .type = OPT_TYPE_INT, .group = OPT_GROUP_COMMAND,
		.section = OPT_SECTION_CMDLINE, .commands = CMD_BIT(CMD_REPO_SYNC), .min = 1, .max = REPO_MAX,
		.help = "Repository to copy to (repo-sync; required).",
	},

	/* repositories (repo1..repo4) */
	{
		.name = "repo-type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "posix",
		.allowed = ALLOWED("posix", "s3", "gcs"),
		.help = "Storage type: a local or NFS directory, S3 (or S3-compatible), or Google Cloud "
		"Storage.",
	},
	{
		.name = "repo-path", .type = OPT_TYPE_PATH, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO,
		.def = "/var/lib/drbackup",
		.help = "posix: the repository directory. s3, gcs: the key prefix inside the bucket "
		"(without its leading '/').",
	},
	{
		.name = "repo-cipher-type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "none",
		.allowed = ALLOWED("none", "aes-256-gcm"),
		.help = "Encryption of the repository.",
	},
	{
		.name = "repo-cipher-pass", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "PASS",
		.help = "Passphrase protecting the repository's data key (required when "
		"repo<N>-cipher-type is not none).",
	},
	{
		.name = "repo-s3-bucket", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .arg = "BUCKET",
		.help = "S3 bucket. Required for repo<N>-type=s3.",
	},
	{
		.name = "repo-s3-endpoint", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .arg = "HOST",
		.help = "S3 endpoint: host, host:port or a URL (https unless http:// is given), e.g. "
		"s3.eu-west-1.amazonaws.com. Required for repo<N>-type=s3.",
	},
	{
		.name = "repo-s3-region", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "us-east-1",
		.arg = "REGION",
		.help = "S3 region used in request signatures.",
	},
	{
		.name = "repo-s3-key", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "KEY",
		.help = "S3 access key id. Unset: AWS_ACCESS_KEY_ID, then ~/.aws/credentials.",
	},
	{
		.name = "repo-s3-key-secret", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "SECRET",
		.help = "S3 secret access key. Unset: AWS_SECRET_ACCESS_KEY, then ~/.aws/credentials.",
	},
	{
		.name = "repo-s3-token", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "TOKEN",
		.help = "S3 session token for temporary credentials. Unset: AWS_SESSION_TOKEN.",
	},
	{
		.name = "repo-s3-uri-style", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "host",
		.allowed = ALLOWED("host", "path"),
		.help = "host: https://BUCKET.ENDPOINT/KEY (virtual-host style); path: "
		"https://ENDPOINT/BUCKET/KEY (path style, for most S3-compatible stores).",
	},
	{
		.name = "repo-s3-verify-tls", .type = OPT_TYPE_BOOL, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "y",
		.help = "Verify the server's TLS certificate and host name.",
	},
	{
		.name = "repo-s3-ca-file", .type = OPT_TYPE_PATH, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO,
		.help = "CA certificates (PEM) to verify the S3 server with (unset: the system's).",
	},
	{
		.name = "repo-s3-part-size", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "8MiB",
		.min = 5 * MIB, .max = 5 * GIB,
		.help = "Objects larger than this are uploaded in parts of this size (multipart upload).",
	},
	{
		.name = "repo-s3-upload-concurrency", .type = OPT_TYPE_INT, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "2",
		.min = 1, .max = 16,
		.help = "Parts of one multipart upload in flight at the same time. Memory per upload is "
		"about repo-s3-part-size x (this + 1).",
	},
	{
		.name = "repo-s3-kms-key-id", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .arg = "KEY-ID",
		.help = "KMS key for server-side encryption (SSE-KMS). Unset: no SSE-KMS header.",
	},
	{
		.name = "repo-gcs-bucket", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .arg = "BUCKET",
		.help = "GCS bucket. Required for repo<N>-type=gcs.",
	},
	{
		.name = "repo-gcs-endpoint", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO,
		.def = "storage.googleapis.com", .arg = "HOST",
		.help = "GCS endpoint: host, host:port or a URL (https unless http:// is given).",
	},
	{
		.name = "repo-gcs-key-type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "service",
		.allowed = ALLOWED("service", "token", "hmac"),
		.help = "service: repo<N>-gcs-key is a service-account JSON key file (JSON API); "
		"token: repo<N>-gcs-key is an OAuth2 access token (JSON API); hmac: "
		"repo<N>-gcs-key and repo<N>-gcs-key-secret are an HMAC key pair (S3-compatible XML "
		"API).",
	},
	{
		.name = "repo-gcs-key", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "KEY",
		.help = "GCS credential, by repo<N>-gcs-key-type: service-account key file path, access "
		"token, or HMAC access id.",
	},
	{
		.name = "repo-gcs-key-secret", .type = OPT_TYPE_STRING, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .secret = true, .commands = CMDS_REPO,
		.arg = "SECRET",
		.help = "GCS HMAC secret (repo<N>-gcs-key-type=hmac).",
	},
	{
		.name = "repo-gcs-chunk-size", .type = OPT_TYPE_SIZE, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "16MiB",
		.min = 256 * KIB, .max = GIB,
		.help = "Objects larger than this use a resumable upload in chunks of this size "
		"(rounded down to a multiple of 256KiB).",
	},
	{
		.name = "repo-storage-retries", .type = OPT_TYPE_INT, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "4",
		.min = 0, .max = 20,
		.help = "Retries of a failed storage request (5xx, 429, connection errors), with "
		"exponential back-off and jitter.",
	},
	{
		.name = "repo-storage-timeout", .type = OPT_TYPE_INT, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "60",
		.min = 1, .max = 3600, .arg = "SECONDS",
		.help = "Seconds a storage request may stall (connect or no data) before it fails.",
	},
	{
		.name = "repo-retention-full", .type = OPT_TYPE_INT, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO,
		.min = 1, .max = 9999999,
		.help = "Full backups to keep (repo<N>-retention-full-type=count) or days to keep "
		"them (repo<N>-retention-full-type=time). Unset: keep all.",
	},
	{
		.name = "repo-retention-full-type", .type = OPT_TYPE_ENUM, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO, .def = "count",
		.allowed = ALLOWED("count", "time"),
		.help = "Meaning of repo<N>-retention-full: a number of backups or a number of days.",
	},
	{
		.name = "repo-retention-diff", .type = OPT_TYPE_INT, .group = OPT_GROUP_REPO,
		.section = OPT_SECTION_ANY, .indexed = true, .commands = CMDS_REPO,
		.min = 1, .max = 9999999,
		.help = "Differential backups to keep. Unset: keep those of the retained full backups.",
	},
};

const size_t opt_count = sizeof(opt_table) / sizeof(opt_table[0]);

/* ---------------------------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------------------------- */

/* If name is "repo<digits>-rest", return the number and point *rest at "rest". */
static bool
split_repo_index(const char *name, int *index, const char **rest)
{
	const char *p = name + 4;
	long		n = 0;

	if (strncmp(name, "repo", 4) != 0 || !isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
	{
		if (n < 1000)
			n = n * 10 + (*p - '0');
		p++;
	}
	if (*p != '-' || p[1] == '\0')
		return false;
	*index = (int) n;
	*rest = p + 1;
	return true;
}

opt_resolve_result
opt_resolve(const char *name, const opt_def **def, int *index)
{
	const char *rest;
	int			n;

	*def = NULL;
	*index = 0;
	if (split_repo_index(name, &n, &rest))
	{
		for (size_t i = 0; i < opt_count; i++)
		{
			if (opt_table[i].indexed && strcmp(opt_table[i].name + 5, rest) == 0)
			{
				*def = &opt_table[i];
				*index = n;
				return n >= 1 && n <= REPO_MAX ? OPT_RESOLVED : OPT_BAD_INDEX;
			}
		}
		return OPT_UNKNOWN;
	}
	for (size_t i = 0; i < opt_count; i++)
	{
		if (strcmp(opt_table[i].name, name) == 0)
		{
			*def = &opt_table[i];
			return opt_table[i].indexed ? OPT_NEEDS_INDEX : OPT_RESOLVED;
		}
	}
	return OPT_UNKNOWN;
}

size_t
opt_position(const opt_def *def)
{
	return (size_t) (def - opt_table);
}

bool
opt_takes(const opt_def *def, drb_command cmd)
{
	return (def->commands & CMD_BIT(cmd)) != 0;
}

void
opt_full_name(const opt_def *def, int index, char out[OPT_NAME_MAX])
{
	if (!def->indexed)
		snprintf(out, OPT_NAME_MAX, "%s", def->name);
	else if (index == 0)
		snprintf(out, OPT_NAME_MAX, "repo<N>-%s", def->name + 5);
	else
		snprintf(out, OPT_NAME_MAX, "repo%d-%s", index, def->name + 5);
}

void
opt_env_name(const opt_def *def, int index, char out[OPT_NAME_MAX])
{
	char		name[OPT_NAME_MAX];
	size_t		n;

	opt_full_name(def, index, name);
	n = (size_t) snprintf(out, OPT_NAME_MAX, "DRBACKUP_%s", name);
	for (size_t i = 0; i < n && i < OPT_NAME_MAX; i++)
	{
		if (out[i] == '-')
			out[i] = '_';
		else if (out[i] != '<' && out[i] != '>')
			out[i] = (char) toupper((unsigned char) out[i]);
	}
}

const cmd_def *
cmd_find(const char *name)
{
	for (size_t i = 0; i < cmd_count; i++)
		if (strcmp(cmd_table[i].name, name) == 0)
			return &cmd_table[i];
	return NULL;
}

const cmd_def *
cmd_by_id(drb_command id)
{
	for (size_t i = 0; i < cmd_count; i++)
		if (cmd_table[i].id == id)
			return &cmd_table[i];
	return NULL;
}

const char *
opt_type_name(opt_type type)
{
	switch (type)
	{
		case OPT_TYPE_STRING:
			return "string";
		case OPT_TYPE_PATH:
			return "path";
		case OPT_TYPE_INT:
			return "integer";
		case OPT_TYPE_SIZE:
			return "size";
		case OPT_TYPE_BOOL:
			return "boolean";
		case OPT_TYPE_ENUM:
			return "enum";
	}
	return "?";
}

const char *
opt_group_title(opt_group group)
{
	static const char *const titles[OPT_GROUP_COUNT] = {
		[OPT_GROUP_GENERAL] = "General options",
		[OPT_GROUP_LOG] = "Logging options",
		[OPT_GROUP_PG] = "PostgreSQL options",
		[OPT_GROUP_COMMAND] = "Command options",
		[OPT_GROUP_ARCHIVE] = "WAL archiving options",
		[OPT_GROUP_BACKUP] = "Backup options",
		[OPT_GROUP_RESTORE] = "Restore options",
		[OPT_GROUP_REPO] = "Repository options (repo1 .. repo4)",
	};

	return (unsigned) group < OPT_GROUP_COUNT ? titles[group] : "Options";
}

/* ---------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------- */

/* Decimal integer, all of text, optional leading '-'. */
static bool
parse_int(const char *text, int64_t *out)
{
	char	   *end;
	long long	v;

	if (!(isdigit((unsigned char) text[0]) || (text[0] == '-' && isdigit((unsigned char) text[1]))))
		return false;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool
parse_size(const char *text, int64_t *out)
{
	static const struct
	{
		const char *unit;
		int64_t		mult;
	}			units[] = {
		{"", 1}, {"b", 1},
		{"k", KIB}, {"kb", KIB}, {"kib", KIB},
		{"m", MIB}, {"mb", MIB}, {"mib", MIB},
		{"g", GIB}, {"gb", GIB}, {"gib", GIB},
		{"t", TIB}, {"tb", TIB}, {"tib", TIB},
	};
	const char *p = text;
	int64_t		v = 0;

	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
	{
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*p++ - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		if (strcasecmp(p, units[i].unit) == 0)
		{
			if (v > INT64_MAX / units[i].mult)
				return false;
			*out = v * units[i].mult;
			return true;
		}
	}
	return false;
}

static int
parse_bool(const char *text)
{
	static const char *const yes[] = {"y", "yes", "true", "on"};
	static const char *const no[] = {"n", "no", "false", "off"};

	for (size_t i = 0; i < 4; i++)
	{
		if (strcmp(text, yes[i]) == 0)
			return 1;
		if (strcmp(text, no[i]) == 0)
			return 0;
	}
	return -1;
}

void
opt_format_size(int64_t bytes, char out[OPT_NAME_MAX])
{
	static const struct
	{
		const char *unit;
		int64_t		mult;
	}			units[] = {{"TiB", TIB}, {"GiB", GIB}, {"MiB", MIB}, {"KiB", KIB}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		if (bytes != 0 && bytes % units[i].mult == 0)
		{
			snprintf(out, OPT_NAME_MAX, "%" PRId64 "%s", bytes / units[i].mult, units[i].unit);
			return;
		}
	}
	snprintf(out, OPT_NAME_MAX, "%" PRId64, bytes);
}

int
opt_parse_value(const opt_def *def, const char *text, int64_t *num, char **norm)
{
	char		buf[OPT_NAME_MAX];
	int64_t		v = 0;

	*num = 0;
	*norm = NULL;
	if (text == NULL || text[0] == '\0')
		return -1;

	switch (def->type)
	{
		case OPT_TYPE_STRING:
			if (def->check && !def->check(text))
				return -1;
			*norm = xstrdup(text);
			return 0;

		case OPT_TYPE_PATH:
			{
				size_t		n = strlen(text);

				if (text[0] != '/')
					return -1;
				while (n > 1 && text[n - 1] == '/')
					n--;
				*norm = xstrndup(text, n);
				if (def->check && !def->check(*norm))
				{
					free(*norm);
					*norm = NULL;
					return -1;
				}
				return 0;
			}

		case OPT_TYPE_INT:
			if (!parse_int(text, &v) || v < def->min || v > def->max)
				return -1;
			*num = v;
			*norm = xasprintf("%" PRId64, v);
			return 0;

		case OPT_TYPE_SIZE:
			if (!parse_size(text, &v) || v < def->min || v > def->max)
				return -1;
			*num = v;
			opt_format_size(v, buf);
			*norm = xstrdup(buf);
			return 0;

		case OPT_TYPE_BOOL:
			{
				int			b = parse_bool(text);

				if (b < 0)
					return -1;
				*num = b;
				*norm = xstrdup(b ? "y" : "n");
				return 0;
			}

		case OPT_TYPE_ENUM:
			for (const char *const *a = def->allowed; *a; a++)
			{
				if (strcmp(*a, text) == 0)
				{
					*norm = xstrdup(text);
					return 0;
				}
			}
			return -1;
	}
	return -1;
}

static void
join_allowed(const opt_def *def, const char *sep, char *out, size_t size)
{
	size_t		used = 0;

	out[0] = '\0';
	for (const char *const *a = def->allowed; *a && used < size; a++)
		used += (size_t) snprintf(out + used, size - used, "%s%s", a == def->allowed ? "" : sep, *a);
}

void
opt_describe_allowed(const opt_def *def, char *out, size_t size)
{
	char		lo[OPT_NAME_MAX];
	char		hi[OPT_NAME_MAX];

	switch (def->type)
	{
		case OPT_TYPE_STRING:
			snprintf(out, size, "%s", def->check_desc ? def->check_desc : "a non-empty value");
			return;
		case OPT_TYPE_PATH:
			snprintf(out, size, "an absolute path");
			return;
		case OPT_TYPE_INT:
			snprintf(out, size, "an integer from %" PRId64 " to %" PRId64, def->min, def->max);
			return;
		case OPT_TYPE_SIZE:
			opt_format_size(def->min, lo);
			opt_format_size(def->max, hi);
			snprintf(out, size, "a size from %s to %s (bytes, or with a unit: KiB, MiB, GiB, "
					 "TiB)", lo, hi);
			return;
		case OPT_TYPE_BOOL:
			snprintf(out, size, "y or n");
			return;
		case OPT_TYPE_ENUM:
			{
				char		list[256];

				join_allowed(def, ", ", list, sizeof(list));
				snprintf(out, size, "one of %s", list);
				return;
			}
	}
	snprintf(out, size, "a valid value");
}

void
opt_arg_name(const opt_def *def, char *out, size_t size)
{
	if (def->arg)
	{
		snprintf(out, size, "%s", def->arg);
		return;
	}
	switch (def->type)
	{
		case OPT_TYPE_INT:
			snprintf(out, size, "N");
			return;
		case OPT_TYPE_SIZE:
			snprintf(out, size, "SIZE");
			return;
		case OPT_TYPE_PATH:
			snprintf(out, size, "PATH");
			return;
		case OPT_TYPE_BOOL:
			snprintf(out, size, "y|n");
			return;
		case OPT_TYPE_ENUM:
			join_allowed(def, "|", out, size);
			return;
		case OPT_TYPE_STRING:
			break;
	}
	snprintf(out, size, "TEXT");
}

/* ---------------------------------------------------------------------------------------
 * Suggestions
 * ------------------------------------------------------------------------------------- */
size_t
edit_distance(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);
	size_t	   *row = xmalloc((lb + 1) * sizeof(size_t));
	size_t		result;

	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++)
	{
		size_t		diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++)
		{
			size_t		up = row[j];
			size_t		best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	result = row[lb];
	free(row);
	return result;
}

/* Largest distance still worth suggesting for a name of this length. */
static size_t
close_enough(const char *name)
{
	size_t		n = strlen(name) / 3;

	return n < 1 ? 1 : n > 3 ? 3 : n;
}

bool
opt_suggest(const char *name, char out[OPT_NAME_MAX])
{
	const char *rest;
	int			index = 1;
	size_t		best = SIZE_MAX;

	/* keep the user's repository index when it is a valid one */
	if (split_repo_index(name, &index, &rest) && (index < 1 || index > REPO_MAX))
		index = 1;
	else if (!split_repo_index(name, &index, &rest))
		index = 1;

	for (size_t i = 0; i < opt_count; i++)
	{
		char		candidate[OPT_NAME_MAX];
		size_t		d;

		opt_full_name(&opt_table[i], index, candidate);
		d = edit_distance(name, candidate);
		if (d < best)
		{
			best = d;
			memcpy(out, candidate, OPT_NAME_MAX);
		}
	}
	return best <= close_enough(name);
}

const char *
cmd_suggest(const char *name)
{
	const char *found = NULL;
	size_t		best = SIZE_MAX;

	for (size_t i = 0; i < cmd_count; i++)
	{
		size_t		d = edit_distance(name, cmd_table[i].name);

		if (d < best)
		{
			best = d;
			found = cmd_table[i].name;
		}
	}
	return best <= close_enough(name) ? found : NULL;
}
