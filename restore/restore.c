/*
 * restore.c — the restore command: options, safety checks on the target, then the parts
 * of restore.h in order, and the summary.
 *
 * The order, and why:
 *  1. the recovery target and the target directory are checked first (a running
 *     PostgreSQL, a non-empty directory without --delta or --force, a bad tablespace-map):
 *     a mistake at 3 a.m. costs nothing, not even a repository round trip;
 *  2. every repository (or --repo) opened, its catalog and WAL inventory read; a
 *     repository that fails is skipped with a warning as long as another can serve;
 *  3. the backup chosen (restore_choose_backup), the reason printed;
 *  4. the data directory written (restore_files, which reads the whole manifest before
 *     writing anything);
 *  5. backup_manifest in PostgreSQL's format, from a second read of the manifest (the
 *     checksums are the manifest's: no file is read again) plus backup_label and
 *     tablespace_map as written;
 *  6. the recovery settings, with restore_command = this binary's archive-get with this
 *     configuration: only now does the directory start as a recovering cluster.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "filter_hash.h"
#include "log.h"
#include "mem.h"
#include "pg_manifest.h"
#include "restore.h"
#include "timeutil.h"

#define DEFAULT_SEG_SIZE	(16u * 1024 * 1024)

/* --- the target directory --- */

/* path made absolute (against the working directory) with ".", ".." and "//" folded. */
static char *
path_absolute(const char *path)
{
	char		cwd[PATH_MAX];
	char	   *full;
	char	   *out;
	size_t		n = 0;

	if (path[0] == '/')
		full = xstrdup(path);
	else
	{
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return NULL;
		full = xasprintf("%s/%s", cwd, path);
	}
	out = xmalloc(strlen(full) + 2);
	for (char *p = full; *p;)
	{
		size_t		len;

		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
		{
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;			/* the slash before the dropped component */
		}
		else if (len > 0 && !(len == 1 && p[0] == '.'))
		{
			out[n++] = '/';
			memcpy(out + n, p, len);
			n += len;
		}
		p += len;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	free(full);
	return out;
}

/* A process whose pid postmaster.pid names, alive (a postgres process, when /proc says). */
static int
check_not_running(const char *pgdata)
{
	char	   *path = xasprintf("%s/postmaster.pid", pgdata);
	FILE	   *f = fopen(path, "r");
	long		pid = 0;
	char		comm[64] = "";

	free(path);
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0 || pid > INT32_MAX)
		return 0;
	if (kill((pid_t) pid, 0) != 0 && errno != EPERM)
		return 0;
	/* a stale file whose pid was reused by an unrelated process is not a server */
	path = xasprintf("/proc/%ld/comm", pid);
	if ((f = fopen(path, "r")) != NULL)
	{
		if (fgets(comm, sizeof(comm), f) == NULL)
			comm[0] = '\0';
		fclose(f);
	}
	free(path);
	if (comm[0] != '\0' && strstr(comm, "postgres") == NULL && strstr(comm, "postmaster") == NULL)
	{
		log_warn("'%s/postmaster.pid' names pid %ld, which is not a PostgreSQL process (%.*s): "
				 "taken as stale", pgdata, pid, (int) strcspn(comm, "\n"), comm);
		return 0;
	}
	return err_set(DRB_ERR_LOCK, "PostgreSQL is running in %s (pid %ld): stop it first", pgdata,
				   pid);
}

/* Refuse a target where PostgreSQL runs, and a non-empty one without --delta/--force. */
static int
check_target(const char *pgdata, bool delta, bool force)
{
	struct stat st;
	DIR		   *d;
	struct dirent *de;
	bool		empty = true;

	if (stat(pgdata, &st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_USAGE, "unable to use the target '%s': %m", pgdata);
	}
	if (!S_ISDIR(st.st_mode))
		return err_set(DRB_ERR_USAGE, "the target '%s' is not a directory", pgdata);
	if (check_not_running(pgdata) != 0)
		return -1;
	if ((d = opendir(pgdata)) == NULL)
		return err_set(DRB_ERR_USAGE, "unable to read the target '%s': %m", pgdata);
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	if (!empty && !delta && !force)
		return err_set(DRB_ERR_USAGE, "the target '%s' is not empty: restore over it with "
					   "--delta, or replace its contents with --force", pgdata);
	return 0;
}

/* --tablespace-map "OID=DIR[,OID=DIR]": strings owned by the caller's arrays. */
static int
tablespace_map_parse(const char *text, char ***oids, char ***dirs, size_t *n)
{
	char	   *copy;
	char	   *save = NULL;

	*oids = *dirs = NULL;
	*n = 0;
	if (text == NULL)
		return 0;
	copy = xstrdup(text);
	for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		char	   *eq = strchr(item, '=');
		char	   *dir;

		if (eq == NULL || eq == item || eq[1] == '\0')
		{
			err_set(DRB_ERR_USAGE, "tablespace-map: '%s' is not OID=DIR", item);
			free(copy);
			return -1;
		}
		*eq = '\0';
		if (eq[1] != '/')
		{
			err_set(DRB_ERR_USAGE, "tablespace-map: '%s' (tablespace %s) is not an absolute "
					"path", eq + 1, item);
			free(copy);
			return -1;
		}
		dir = path_absolute(eq + 1);
		*oids = xrealloc(*oids, (*n + 1) * sizeof(char *));
		*dirs = xrealloc(*dirs, (*n + 1) * sizeof(char *));
		(*oids)[*n] = xstrdup(item);
		(*dirs)[*n] = dir;
		(*n)++;
	}
	free(copy);
	return 0;
}

static void
strings_free(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

/* --- restore_command --- */

/* One word for /bin/sh: as is when plain, else in single quotes. */
static void
shell_word(buf_t *b, const char *word)
{
	if (word[0] != '\0' && strspn(word, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
								  "0123456789/._-+=:,@%") == strlen(word))
	{
		buf_append_str(b, word);
		return;
	}
	buf_append_str(b, "'");
	for (const char *p = word; *p; p++)
	{
		if (*p == '\'')
			buf_append_str(b, "'\\''");
		else
			buf_append(b, p, 1);
	}
	buf_append_str(b, "'");
}

/* "<this binary> --config=<file> --stanza=<s> [--repo=N] archive-get %f "%p"". */
static char *
restore_command(const config_t *cfg, const char *stanza)
{
	char		exe[PATH_MAX];
	ssize_t		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *config = cfg_str(cfg, "config");
	buf_t		b;
	char	   *word;

	if (n <= 0)
	{
		err_set(DRB_ERR_INTERNAL, "unable to find this program's path (/proc/self/exe): %m");
		return NULL;
	}
	exe[n] = '\0';
	buf_init(&b);
	shell_word(&b, exe);
	/* a missing default config file is no config at all; a relative one is made absolute
	 * (PostgreSQL runs restore_command in the data directory) */
	if (config && access(config, F_OK) == 0)
	{
		char	   *abs = path_absolute(config);

		word = xasprintf("--config=%s", abs ? abs : config);
		buf_append_str(&b, " ");
		shell_word(&b, word);
		free(word);
		free(abs);
	}
	word = xasprintf("--stanza=%s", stanza);
	buf_append_str(&b, " ");
	shell_word(&b, word);
	free(word);
	if (cfg_is_set(cfg, "repo"))
		buf_printf(&b, " --repo=%" PRId64, cfg_int(cfg, "repo"));
	buf_append_str(&b, " archive-get %f \"%p\"");
	return (char *) buf_cstr(&b);
}

/* --- backup_manifest --- */

/* A file restore wrote itself (backup_label, tablespace_map), when present. */
static int
pg_manifest_add_written(pg_manifest *m, const char *pgdata, const char *name)
{
	char	   *path = xasprintf("%s/%s", pgdata, name);
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	buf_t		b;
	uint8_t		sha[32];
	uint8_t		chunk[8192];
	ssize_t		n;
	int			rc = 0;

	if (fd < 0)
	{
		rc = errno == ENOENT ? 0 : err_set(DRB_ERR_STORAGE, "unable to open '%s': %m", path);
		free(path);
		return rc;
	}
	buf_init(&b);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		buf_append(&b, chunk, (size_t) n);
	if (n < 0 || fstat(fd, &st) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to read '%s': %m", path);
	close(fd);
	if (rc == 0)
	{
		sha256_buf(b.data, b.len, sha);
		rc = pg_manifest_add(m, name, b.len, (int64_t) st.st_mtime, sha);
	}
	buf_free(&b);
	free(path);
	return rc;
}

/* backup_manifest for pg_verifybackup: every file of the backup's manifest, then the two
 * files restore wrote from its header. */
static int
write_pg_manifest(repo_t *repo, const char *stanza, const char *label, const char *pgdata,
				  const manifest_header *h)
{
	manifest_header h2;
	manifest_reader *r = manifest_reader_open(repo, stanza, label, &h2);
	pg_manifest *m;
	manifest_entry e;
	uint8_t		empty_sha[32];
	int			rc;

	if (r == NULL)
		return -1;
	manifest_header_free(&h2);
	if ((m = pg_manifest_open(pgdata)) == NULL)
	{
		manifest_reader_close(r);
		return -1;
	}
	sha256_buf("", 0, empty_sha);
	while ((rc = manifest_reader_next(r, &e)) == 1)
		/* an empty file's checksum is not recorded (the manifest may hold zeros) */
		if (e.type == MANIFEST_FILE_ENTRY &&
			pg_manifest_add(m, e.path, e.size, e.mtime, e.size ? e.sha256 : empty_sha) != 0)
		{
			rc = -1;
			break;
		}
	manifest_reader_close(r);
	if (rc == 0)
		rc = pg_manifest_add_written(m, pgdata, "backup_label");
	if (rc == 0)
		rc = pg_manifest_add_written(m, pgdata, "tablespace_map");
	if (rc != 0)
	{
		pg_manifest_abort(m);
		return -1;
	}
	return pg_manifest_close(m, h->timeline, h->start_lsn, h->stop_lsn);
}

/* --- the summary --- */

/* "time 2026-...", "LSN 0/3000060", ... for the summary line. */
static char *
target_text(const restore_target *t)
{
	buf_t		b;

	buf_init(&b);
	switch (t->kind)
	{
		case TARGET_LATEST:
			buf_append_str(&b, "the end of the archived WAL");
			break;
		case TARGET_TIME:
			buf_printf(&b, "time %s", t->value);
			break;
		case TARGET_LSN:
			buf_printf(&b, "LSN %s", t->value);
			break;
		case TARGET_XID:
			buf_printf(&b, "transaction %s", t->value);
			break;
		case TARGET_NAME:
			buf_printf(&b, "restore point '%s'", t->value);
			break;
		case TARGET_IMMEDIATE:
			buf_append_str(&b, "the end of the backup (consistency)");
			break;
	}
	if (t->timeline)
		buf_printf(&b, " on timeline %s", t->timeline);
	if (t->kind != TARGET_LATEST)
		buf_printf(&b, "%s, then %s", t->exclusive ? " (exclusive)" : "",
				   t->action ? t->action : "pause");
	return (char *) buf_cstr(&b);
}

/* --- the repositories --- */

restore_repos *
restore_repos_open(const config_t *cfg)
{
	restore_repos *rr = xcalloc(1, sizeof(*rr));
	const char *stanza = cfg_str(cfg, "stanza");

	if (archive_ctx_open(&rr->ctx, cfg, true) != 0)
	{
		archive_ctx_close(&rr->ctx);
		free(rr);
		return NULL;
	}
	rr->nrepo = rr->ctx.nrepo;
	for (int i = 0; i < rr->nrepo; i++)
	{
		archive_repo *ar = &rr->ctx.repos[i];
		const catalog_backup *latest;
		uint32_t	seg_size = DEFAULT_SEG_SIZE;

		rr->numbers[i] = ar->index;
		if (ar->repo == NULL)
		{
			log_warn("repository %d is not used: %s", ar->index, ar->open_error);
			continue;
		}
		if (catalog_read(ar->repo, stanza, &rr->cat_store[i]) != 0)
		{
			log_warn("repository %d is not used: unable to read its catalog: %s", ar->index,
					 err_msg());
			continue;
		}
		rr->cat_ok[i] = true;
		latest = catalog_latest(&rr->cat_store[i], -1);
		if (latest && latest->wal_segment_size != 0)
			seg_size = latest->wal_segment_size;
		if (wal_inventory_load(ar, seg_size, &rr->inv_store[i]) != 0)
		{
			log_warn("repository %d is not used: unable to list its WAL archive: %s",
					 ar->index, err_msg());
			continue;
		}
		rr->inv_ok[i] = true;
		rr->cats[i] = &rr->cat_store[i];
		rr->invs[i] = &rr->inv_store[i];
	}
	return rr;
}

void
restore_repos_close(restore_repos *rr)
{
	if (rr == NULL)
		return;
	for (int i = 0; i < rr->nrepo; i++)
	{
		if (rr->cat_ok[i])
			catalog_free(&rr->cat_store[i]);
		if (rr->inv_ok[i])
			wal_inventory_free(&rr->inv_store[i]);
	}
	archive_ctx_close(&rr->ctx);
	free(rr);
}

/* --- the restore --- */

/* Every tablespace of the backup to <dir>/<oid> (restore-test's scratch copy). */
static int
tablespace_dir_map(repo_t *repo, const char *stanza, const char *label, const char *dir,
				   char ***oids, char ***dirs, size_t *n)
{
	manifest_header h;
	manifest_reader *r = manifest_reader_open(repo, stanza, label, &h);

	*oids = *dirs = NULL;
	*n = 0;
	if (r == NULL)
		return -1;
	manifest_reader_close(r);
	for (size_t i = 0; i < h.ntablespaces; i++)
	{
		*oids = xrealloc(*oids, (*n + 1) * sizeof(char *));
		*dirs = xrealloc(*dirs, (*n + 1) * sizeof(char *));
		(*oids)[*n] = xasprintf("%u", h.tablespaces[i].oid);
		(*dirs)[*n] = xasprintf("%s/%u", dir, h.tablespaces[i].oid);
		(*n)++;
	}
	manifest_header_free(&h);
	return 0;
}

int
restore_perform(const config_t *cfg, restore_repos *given_rr, const restore_request *req,
			restore_outcome *out)
{
	const char *stanza = cfg_str(cfg, "stanza");
	const restore_target *t = &req->target;
	char	  **ts_oids = NULL,
			  **ts_dirs = NULL;
	size_t		nts = 0;
	restore_repos *rr = given_rr;
	const catalog_backup *chosen = NULL;
	int			pos = -1;
	char	   *why = NULL;
	char	   *cmd = NULL;
	char	   *settings = NULL;
	manifest_header h = {0};
	double		t0 = clock_seconds();
	double		t1;
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	out->repo_pos = -1;

	/* 1. everything that can be refused without a repository */
	if (req->pgdata == NULL)
		return err_set(DRB_ERR_USAGE, "restore needs a target directory: --pgdata, or pg1-path");
	if ((out->pgdata = path_absolute(req->pgdata)) == NULL)
		return err_set(DRB_ERR_USAGE, "unable to make '%s' an absolute path: %m", req->pgdata);
	if (strcmp(out->pgdata, "/") == 0)
		return err_set(DRB_ERR_USAGE, "refusing to restore into '/'");
	if (tablespace_map_parse(req->tablespace_map, &ts_oids, &ts_dirs, &nts) != 0 ||
		check_target(out->pgdata, req->delta, req->force) != 0)
		goto out;

	/* 2. repositories */
	if (rr == NULL && (rr = restore_repos_open(cfg)) == NULL)
		goto out;

	/* 3. the backup */
	if (restore_choose_backup(rr->cats, rr->invs, rr->numbers, rr->nrepo, req->set, t,
							  &chosen, &pos, &why) != 0)
		goto out;
	log_info("%s", why);
	printf("%s\n", why);
	fflush(stdout);
	out->label = xstrdup(chosen->label);
	out->type = chosen->type;
	out->timeline = chosen->timeline;
	out->stop_time = chosen->stop_time;
	out->stop_lsn = chosen->stop_lsn;
	out->pg_version = chosen->pg_version;
	out->size = chosen->size;
	out->repo = rr->numbers[pos];
	out->repo_pos = pos;
	{
		restore_window w;

		if (restore_window_get(rr->cats[pos], rr->invs[pos], &w))
		{
			out->earliest = w.earliest;
			out->latest = w.latest;
		}
		restore_backup_reach(chosen, rr->invs[pos], &out->reach_time, &out->reach_lsn);
	}
	if ((cmd = restore_command(cfg, stanza)) == NULL ||
		(settings = restore_recovery_settings(t, cmd)) == NULL)
		goto out;
	if (req->tablespace_dir && nts == 0 &&
		tablespace_dir_map(rr->ctx.repos[pos].repo, stanza, chosen->label, req->tablespace_dir,
						   &ts_oids, &ts_dirs, &nts) != 0)
	{
		err_wrap("restore of backup %s to %s: unable to read its tablespaces", chosen->label,
				 out->pgdata);
		goto out;
	}
	t1 = clock_seconds();
	out->choose_seconds = t1 - t0;

	/* 4. the data directory */
	{
		restore_files_settings s = {
			.repo = rr->ctx.repos[pos].repo, .stanza = stanza, .label = chosen->label,
			.pgdata = out->pgdata, .ts_oids = (const char *const *) ts_oids,
			.ts_dirs = (const char *const *) ts_dirs, .nts = nts,
			.process_max = (int) cfg_int(cfg, "process-max"),
			.delta = req->delta, .force = req->force,
		};

		if (restore_files(&s, &h, &out->files) != 0)
		{
			err_wrap("restore of backup %s to %s failed", chosen->label, out->pgdata);
			goto out;
		}
	}
	out->data_checksums = h.data_checksums;
	out->size = h.size;
	log_info("restore of backup %s: %" PRIu64 " files, %" PRIu64 " bytes written, %" PRIu64
			 " bytes fetched, %" PRIu64 " kept, %" PRIu64 " removed", h.label, out->files.files,
			 out->files.bytes, out->files.fetched_bytes, out->files.kept, out->files.removed);

	/* 5. backup_manifest, 6. recovery */
	if (write_pg_manifest(rr->ctx.repos[pos].repo, stanza, chosen->label, out->pgdata, &h) != 0)
	{
		err_wrap("restore of backup %s to %s: unable to write backup_manifest", chosen->label,
				 out->pgdata);
		goto out;
	}
	if (restore_write_recovery(out->pgdata, settings) != 0)
	{
		err_wrap("restore of backup %s to %s: unable to write the recovery settings",
				 chosen->label, out->pgdata);
		goto out;
	}
	out->files_seconds = clock_seconds() - t1;
	rc = 0;
out:
	manifest_header_free(&h);
	free(settings);
	free(cmd);
	free(why);
	if (given_rr == NULL)
		restore_repos_close(rr);
	strings_free(ts_oids, nts);
	strings_free(ts_dirs, nts);
	return rc;
}

void
restore_outcome_free(restore_outcome *out)
{
	free(out->pgdata);
	free(out->label);
	memset(out, 0, sizeof(*out));
}

/* --- the command --- */

int
cmd_restore(config_t *cfg)
{
	restore_request req = {0};
	restore_outcome out = {0};
	double		t0 = clock_seconds();
	int			rc;

	if (restore_target_parse(cfg, &req.target) != 0)
		return -1;
	req.pgdata = cfg_str(cfg, "pgdata") ? cfg_str(cfg, "pgdata") : cfg_str(cfg, "pg1-path");
	req.set = cfg_str(cfg, "set");
	req.tablespace_map = cfg_str(cfg, "tablespace-map");
	req.delta = cfg_bool(cfg, "delta");
	req.force = cfg_bool(cfg, "force");
	rc = restore_perform(cfg, NULL, &req, &out);
	if (rc == 0)
	{
		char	   *target = target_text(&req.target);
		char		counts[96] = "";

		if (req.delta)
			snprintf(counts, sizeof(counts), " (%" PRIu64 " kept, %" PRIu64 " removed)",
					 out.files.kept, out.files.removed);
		printf("restore of backup %s to %s complete: %" PRIu64 " files%s, %.1f MiB (%.1f MiB "
			   "fetched), %.1f s; start PostgreSQL to recover to %s\n", out.label, out.pgdata,
			   out.files.files, counts, out.size / 1048576.0,
			   out.files.fetched_bytes / 1048576.0, clock_seconds() - t0, target);
		fflush(stdout);
		free(target);
	}
	restore_outcome_free(&out);
	return rc;
}
