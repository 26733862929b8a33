/*
 * export.c — `drbackup export --set LABEL FILE.tar|FILE.tar.zst|-`: a backup as a plain tar
 * that restores with nothing but tar and PostgreSQL (libarchive).
 *
 * What the tar holds, for a backup of the cluster as it was at LABEL:
 *   - every directory and file of the backup's manifest, each file's bytes verified
 *     against its SHA-256 as they stream into the tar (never a whole file in memory);
 *   - tablespaces as plain directories under pg_tblspc/<oid>/ (not links), so the
 *     untarred directory is self-contained; tablespace_map is therefore left out
 *     (PostgreSQL would replace those directories by links to the original locations).
 *     PostgreSQL 15 reads such in-place tablespaces, but the end of recovery refuses
 *     directories in pg_tblspc unless allow_in_place_tablespaces=on: the summary line
 *     says so when the backup has tablespaces (docs/restore.md, Export);
 *   - backup_label from the backup;
 *   - pg_wal/ with the WAL segments from the backup's start to its stop (and the
 *     timeline's history file when the archive has one), each marked archived
 *     (archive_status/<segment>.done), so PostgreSQL reaches consistency by crash
 *     recovery from backup_label with no restore_command;
 *   - backup_manifest in PostgreSQL's format, for pg_verifybackup.
 *
 * Steps: plan (the manifest is read once: directories, tablespace directories and empty
 * files go into the tar at once, every other file becomes a record in an unlinked
 * temporary file, grouped by the object holding its bytes and sorted by offset), fetch
 * (each object read once, in the order the manifest first names it, its plain stream cut
 * into tar entries; the size is known from the manifest so the header goes first), WAL,
 * backup_manifest. The tar is written to FILE.tmp and renamed to FILE once complete and
 * fsynced; on any failure FILE.tmp is removed and FILE never appears. '-' streams a plain
 * tar to standard output (a failure then leaves a truncated stream and a non-zero exit).
 *
 * Memory: per object, the positions of its files' records (8 bytes each); file bytes pass
 * through in the pipeline's chunks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <export_libarchive.h>	/* libarchive (see that header) */

#include "command.h"
#include "error.h"
#include "filter_hash.h"
#include "log.h"
#include "mem.h"
#include "object_plan.h"
#include "pg_manifest.h"
#include "restore.h"

#define EXPORT_PATH_MAX		4096	/* longest path in a record */
#define EXPORT_COPY_BUF		(256 * 1024)
#define EXPORT_WAL_MAX		(UINT64_C(1) << 20)	/* segments in one backup, at most */
#define DEFAULT_SEG_SIZE	(16u * 1024 * 1024)

/* One file of the manifest in the records file, followed by its path. */
typedef struct xrec
{
	uint64_t	size;
	uint64_t	offset;			/* in the object's plain stream */
	int64_t		mtime;
	uint32_t	mode;
	uint32_t	path_len;
	uint8_t		sha256[32];
} xrec;

typedef struct xentry
{
	xrec		r;
	char		path[EXPORT_PATH_MAX + 1];
} xentry;

typedef struct export_run
{
	repo_t	   *repo;
	const char *stanza;
	const char *label;
	struct archive *tar;
	const char *out_name;		/* for messages: FILE or "standard output" */
	char	   *workdir;		/* temporary files (records, WAL, backup_manifest) */
	int			rec_fd;
	uint64_t	rec_end;
	object_plan plan;			/* the files by object: the groups */
	pg_manifest *pgm;
	bool		have_pg_wal;	/* the manifest lists pg_wal/ */
	bool		have_archive_status;
	uint8_t    *copy_buf;
	/* totals */
	uint64_t	files;
	uint64_t	bytes;
	uint64_t	wal_segments;
} export_run;

/* ------------------------------------------------------------------------------------ */
/* The tar                                                                              */
/* ------------------------------------------------------------------------------------ */

/* An entry header: a directory (size 0) or a regular file of size bytes. */
static int
tar_header(export_run *run, const char *path, bool dir, uint32_t mode, int64_t mtime,
		   uint64_t size)
{
	struct archive_entry *ae = archive_entry_new();
	int			rc;

	if (ae == NULL)
		return err_set(DRB_ERR_INTERNAL, "export: out of memory for a tar entry");
	archive_entry_set_pathname(ae, path);
	archive_entry_set_filetype(ae, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ae, mode & 07777);
	archive_entry_set_size(ae, dir ? 0 : (la_int64_t) size);
	archive_entry_set_mtime(ae, (time_t) mtime, 0);
	archive_entry_set_uid(ae, getuid());
	archive_entry_set_gid(ae, getgid());
	rc = archive_write_header(run->tar, ae);
	archive_entry_free(ae);
	if (rc == ARCHIVE_WARN)
		log_warn("export: tar entry '%s': %s", path, archive_error_string(run->tar));
	else if (rc != ARCHIVE_OK)
		return err_set(DRB_ERR_STORAGE, "unable to write the tar entry '%s' to %s: %s", path,
					   run->out_name, archive_error_string(run->tar));
	return 0;
}

static int
tar_data(export_run *run, const char *path, const void *data, size_t len)
{
	while (len > 0)
	{
		la_ssize_t	n = archive_write_data(run->tar, data, len);

		if (n <= 0)
			return err_set(DRB_ERR_STORAGE, "unable to write '%s' into %s: %s", path,
						   run->out_name, archive_error_string(run->tar));
		data = (const uint8_t *) data + n;
		len -= (size_t) n;
	}
	return 0;
}

/* A whole entry from memory. */
static int
tar_add_buf(export_run *run, const char *path, const void *data, size_t len, uint32_t mode,
			int64_t mtime)
{
	if (tar_header(run, path, false, mode, mtime, len) != 0)
		return -1;
	return tar_data(run, path, data, len);
}

/* A whole entry from a local file (read in EXPORT_COPY_BUF steps). */
static int
tar_add_file(export_run *run, const char *path, const char *local, uint32_t mode)
{
	int			fd = open(local, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	uint64_t	left;
	int			rc;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "export: unable to open '%s': %m", local);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return err_set(DRB_ERR_STORAGE, "export: '%s' is not a readable regular file", local);
	}
	rc = tar_header(run, path, false, mode, (int64_t) st.st_mtime, (uint64_t) st.st_size);
	left = (uint64_t) st.st_size;
	while (rc == 0 && left > 0)
	{
		ssize_t		n = read(fd, run->copy_buf,
							 left < EXPORT_COPY_BUF ? (size_t) left : EXPORT_COPY_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = err_set(DRB_ERR_STORAGE, "export: unable to read '%s': %s", local,
						 n < 0 ? strerror(errno) : "file shrank while being read");
		else
		{
			rc = tar_data(run, path, run->copy_buf, (size_t) n);
			left -= (uint64_t) n;
		}
	}
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Plan                                                                                 */
/* ------------------------------------------------------------------------------------ */

static int
rec_read(const export_run *run, uint64_t pos, xentry *e)
{
	ssize_t		n = pread(run->rec_fd, &e->r, sizeof(xrec), (off_t) pos);

	if (n == (ssize_t) sizeof(xrec) && e->r.path_len <= EXPORT_PATH_MAX)
		n = pread(run->rec_fd, e->path, e->r.path_len, (off_t) (pos + sizeof(xrec)));
	else
		n = -2;
	if (n != (ssize_t) e->r.path_len)
		return err_set(DRB_ERR_STORAGE, "export: unable to read the records file at %" PRIu64
					   ": %s", pos, n == -1 ? strerror(errno) : "short read");
	e->path[e->r.path_len] = '\0';
	return 0;
}

/* "pg_tblspc/<oid>" with a decimal oid. */
static bool
tablespace_link(const char *path)
{
	const char *p = path + strlen("pg_tblspc/");
	size_t		n;

	if (strncmp(path, "pg_tblspc/", strlen("pg_tblspc/")) != 0)
		return false;
	n = strspn(p, "0123456789");
	return n > 0 && n <= 10 && p[n] == '\0';
}

/* Files the export writes itself; a manifest that lists one is hostile. */
static bool
export_reserved(const char *path)
{
	return strcmp(path, "backup_label") == 0 || strcmp(path, "tablespace_map") == 0 ||
		strcmp(path, "backup_manifest") == 0 || strncmp(path, "pg_wal/", 7) == 0;
}

/* One manifest entry: into the tar now (directories, empty files) or into the records. */
static int
plan_entry(export_run *run, const manifest_entry *e, const uint8_t empty_sha[32])
{
	size_t		plen = strlen(e->path);

	if (plen > EXPORT_PATH_MAX)
		return err_set(DRB_ERR_INTEGRITY, "path '%.100s...' is too long", e->path);
	if (e->type == MANIFEST_DIR)
	{
		if (strcmp(e->path, "pg_wal") == 0)
			run->have_pg_wal = true;
		else if (strcmp(e->path, "pg_wal/archive_status") == 0)
			run->have_archive_status = true;
		else if (export_reserved(e->path))
			return err_set(DRB_ERR_INTEGRITY, "the manifest lists directory '%s', where the "
						   "export writes WAL", e->path);
		return tar_header(run, e->path, true, e->mode, e->mtime, 0);
	}
	if (export_reserved(e->path))
		return err_set(DRB_ERR_INTEGRITY, "the manifest lists '%s', which no backup holds "
					   "(the export writes it)", e->path);
	if (e->type == MANIFEST_LINK)
	{
		/* a tablespace: its contents follow under this path, as a plain directory */
		if (!tablespace_link(e->path))
			return err_set(DRB_ERR_INTEGRITY, "link '%s' is not a tablespace link "
						   "(pg_tblspc/<oid>): a backup holds no other links", e->path);
		return tar_header(run, e->path, true, 0700, e->mtime, 0);
	}
	if (e->size == 0)
	{
		if (tar_header(run, e->path, false, e->mode, e->mtime, 0) != 0 ||
			pg_manifest_add(run->pgm, e->path, 0, e->mtime, empty_sha) != 0)
			return -1;
		run->files++;
		return 0;
	}
	{
		xrec		r = {e->size, e->offset, e->mtime, e->mode, (uint32_t) plen, {0}};
		size_t		g = object_plan_group(&run->plan, e->ref, e->object);

		memcpy(r.sha256, e->sha256, 32);
		if (pwrite(run->rec_fd, &r, sizeof(r), (off_t) run->rec_end) != (ssize_t) sizeof(r) ||
			pwrite(run->rec_fd, e->path, plen, (off_t) (run->rec_end + sizeof(r))) !=
			(ssize_t) plen)
			return err_set(DRB_ERR_STORAGE, "export: unable to write the records file in '%s': "
						   "%m", run->workdir);
		object_plan_add(&run->plan, g, run->rec_end, e->size);
		run->rec_end += sizeof(r) + plen;
	}
	return 0;
}

/*
 * One object's files: their records read back (tarw_load, for planning too) and, while
 * fetching, written into the tar (tarw_ops).
 */
typedef struct tar_writer
{
	export_run *run;
	xentry	   *e;				/* the current file's record */
} tar_writer;

static int
tarw_load(void *arg, uint64_t pos, object_file *f)
{
	tar_writer *w = arg;

	if (rec_read(w->run, pos, w->e) != 0)
		return -1;
	*f = (object_file) {w->e->path, w->e->r.offset, w->e->r.size, w->e->r.sha256};
	return 1;
}

/* Read the manifest; directories and empty files go into the tar, the rest is planned. */
static int
plan(export_run *run, manifest_header *h)
{
	manifest_reader *r = manifest_reader_open(run->repo, run->stanza, run->label, h);
	manifest_entry e;
	uint8_t		empty_sha[32];
	tar_writer	w;
	int			rc;

	if (r == NULL)
		return -1;
	sha256_buf("", 0, empty_sha);
	while ((rc = manifest_reader_next(r, &e)) == 1)
		if (plan_entry(run, &e, empty_sha) != 0)
		{
			rc = -1;
			break;
		}
	manifest_reader_close(r);
	if (rc != 0)
		return err_wrap("manifest of backup %s", run->label);
	w.run = run;
	w.e = xmalloc(sizeof(xentry));
	for (size_t i = 0; i < run->plan.ngroups && rc == 0; i++)
		rc = object_plan_sort(&run->plan.groups[i], tarw_load, &w);
	free(w.e);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Fetch: an object's plain stream cut into tar entries                                 */
/* ------------------------------------------------------------------------------------ */

static int
tarw_open(void *arg, const object_file *f)
{
	tar_writer *w = arg;

	return tar_header(w->run, f->path, false, w->e->r.mode, w->e->r.mtime, f->size);
}

static int
tarw_write(void *arg, const object_file *f, const uint8_t *data, size_t len)
{
	tar_writer *w = arg;

	return tar_data(w->run, f->path, data, len);
}

/* The file's last byte is in the tar and checked: into backup_manifest. */
static int
tarw_close(void *arg, const object_file *f)
{
	tar_writer *w = arg;

	if (pg_manifest_add(w->run->pgm, f->path, f->size, w->e->r.mtime, f->sha256) != 0)
		return -1;
	w->run->files++;
	w->run->bytes += f->size;
	return 0;
}

static const object_split_ops tarw_ops = {tarw_load, tarw_open, tarw_write, tarw_close};

/* Read one object and write its files into the tar. */
static int
fetch_group(export_run *run, const object_group *g)
{
	char	   *object = backup_object_path(run->stanza, g->ref, g->object);
	tar_writer	w = {run, xmalloc(sizeof(xentry))};
	filter_t   *sp = object_splitter_new(g, object, &tarw_ops, &w);
	repo_object_result res = {0};
	int			rc;

	if (sp == NULL)
		rc = -1;
	else
		rc = repo_get(run->repo, object, sp, NULL, &res);
	filter_chain_free(sp);
	free(w.e);
	if (rc != 0)
		err_wrap("unable to export from object '%s'", object);
	free(object);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* WAL, backup_label, backup_manifest                                                   */
/* ------------------------------------------------------------------------------------ */

/* Fetch one WAL file into the work directory and add it under pg_wal/. */
static int
add_wal(export_run *run, const archive_ctx *ctx, const wal_name *w, bool *found)
{
	char	   *local = xasprintf("%s/%s", run->workdir, w->name);
	char	   *path = xasprintf("pg_wal/%s", w->name);
	int			rc = archive_get_one(ctx, w, local, 0);

	*found = rc == 0;
	if (rc == 0)
		rc = tar_add_file(run, path, local, 0600);
	unlink(local);
	free(path);
	free(local);
	return rc;
}

/*
 * The WAL from the backup's start segment to its stop segment, each marked archived so
 * that the exported cluster does not archive it again; the timeline's history file when
 * the archive has one.
 */
static int
export_wal(export_run *run, const archive_ctx *ctx, const manifest_header *h)
{
	uint32_t	seg_size = h->wal_segment_size ? h->wal_segment_size : DEFAULT_SEG_SIZE;
	int64_t		now = (int64_t) time(NULL);
	wal_name	w,
				stop;
	bool		found;

	if (wal_name_parse(h->wal_start, &w) != 0 || wal_name_parse(h->wal_stop, &stop) != 0 ||
		w.kind != WAL_SEGMENT || stop.kind != WAL_SEGMENT || w.tli != stop.tli)
		return err_set(DRB_ERR_INTEGRITY, "backup %s: WAL range %s .. %s is not valid",
					   run->label, h->wal_start, h->wal_stop);
	if (!run->have_pg_wal && tar_header(run, "pg_wal", true, 0700, now, 0) != 0)
		return -1;
	if (!run->have_archive_status &&
		tar_header(run, "pg_wal/archive_status", true, 0700, now, 0) != 0)
		return -1;
	if (w.tli > 1)
	{
		wal_name	hist;
		char		name[32];

		snprintf(name, sizeof(name), "%08X.history", w.tli);
		if (wal_name_parse(name, &hist) != 0)
			return -1;
		if (add_wal(run, ctx, &hist, &found) != 0)
		{
			if (found || err_kind() != DRB_ERR_NOT_FOUND)
				return -1;
			log_info("export: no history file %s in the archive: left out", name);
			err_clear();
		}
	}
	for (uint64_t n = 0;; n++)
	{
		char	   *done;

		if (n >= EXPORT_WAL_MAX)
			return err_set(DRB_ERR_INTEGRITY, "backup %s: WAL range %s .. %s is longer than %"
						   PRIu64 " segments", run->label, h->wal_start, h->wal_stop,
						   EXPORT_WAL_MAX);
		if (add_wal(run, ctx, &w, &found) != 0)
			return err_wrap("backup %s needs WAL segment %s", run->label, w.name);
		done = xasprintf("pg_wal/archive_status/%s.done", w.name);
		if (tar_add_buf(run, done, "", 0, 0600, now) != 0)
		{
			free(done);
			return -1;
		}
		free(done);
		run->wal_segments++;
		if (strcmp(w.name, stop.name) == 0)
			break;
		{
			wal_name	next;

			wal_segment_next(&w, seg_size, &next);
			w = next;
		}
	}
	return 0;
}

/* backup_label from the manifest header, listed in backup_manifest too. */
static int
export_backup_label(export_run *run, const manifest_header *h)
{
	size_t		len;
	uint8_t		sha[32];

	if (h->backup_label == NULL || h->backup_label[0] == '\0')
		return err_set(DRB_ERR_INTEGRITY, "backup %s has no backup_label in its manifest",
					   run->label);
	len = strlen(h->backup_label);
	sha256_buf(h->backup_label, len, sha);
	if (tar_add_buf(run, "backup_label", h->backup_label, len, 0600, h->stop_time) != 0)
		return -1;
	return pg_manifest_add(run->pgm, "backup_label", len, h->stop_time, sha);
}

/* ------------------------------------------------------------------------------------ */
/* The command                                                                          */
/* ------------------------------------------------------------------------------------ */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s),
				m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A private work directory next to the output (same file system), or in TMPDIR for '-'. */
static char *
make_workdir(const char *file)
{
	char	   *dir;
	char	   *tmpl;

	if (file == NULL)
	{
		const char *t = getenv("TMPDIR");

		dir = xstrdup(t && t[0] ? t : "/tmp");
	}
	else
	{
		const char *slash = strrchr(file, '/');

		dir = slash == NULL ? xstrdup(".") :
			slash == file ? xstrdup("/") : xstrndup(file, (size_t) (slash - file));
	}
	tmpl = xasprintf("%s/.drbackup-export.XXXXXX", dir);
	free(dir);
	if (mkdtemp(tmpl) == NULL)
	{
		err_set(DRB_ERR_STORAGE, "export: unable to create a work directory like '%s': %m",
				tmpl);
		free(tmpl);
		return NULL;
	}
	return tmpl;
}

/* Remove the work directory and what export left in it (no subdirectories). */
static void
remove_workdir(const char *dir, pg_manifest *pgm)
{
	static const char *const names[] = {"backup_manifest", "backup_manifest.drbtmp", NULL};

	if (dir == NULL)
		return;
	if (pgm)
		pg_manifest_abort(pgm);
	for (int i = 0; names[i]; i++)
	{
		char	   *p = xasprintf("%s/%s", dir, names[i]);

		unlink(p);
		free(p);
	}
	if (rmdir(dir) != 0)
		log_warn("export: unable to remove the work directory '%s': %m", dir);
}

static void
export_run_free(export_run *run)
{
	object_plan_free(&run->plan);
	free(run->copy_buf);
	if (run->rec_fd >= 0)
		close(run->rec_fd);
}

/* Open the records file (unlinked at once) in the work directory. */
static int
records_open(export_run *run)
{
	char	   *p = xasprintf("%s/records", run->workdir);

	run->rec_fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (run->rec_fd < 0)
	{
		err_set(DRB_ERR_STORAGE, "export: unable to create '%s': %m", p);
		free(p);
		return -1;
	}
	unlink(p);
	free(p);
	return 0;
}

/* Everything into the open tar; backup_manifest last. */
static int
export_contents(export_run *run, const archive_ctx *ctx, manifest_header *h)
{
	char	   *local;
	int			rc;

	if ((run->pgm = pg_manifest_open(run->workdir)) == NULL)
		return err_wrap("export: backup_manifest");
	if (records_open(run) != 0 || plan(run, h) != 0)
		return -1;
	for (size_t i = 0; i < run->plan.ngroups; i++)
		if (fetch_group(run, &run->plan.groups[i]) != 0)
			return -1;
	if (export_backup_label(run, h) != 0 || export_wal(run, ctx, h) != 0)
		return -1;
	rc = pg_manifest_close(run->pgm, h->timeline, h->start_lsn, h->stop_lsn);
	run->pgm = NULL;
	if (rc != 0)
		return err_wrap("export: unable to write backup_manifest");
	local = xasprintf("%s/backup_manifest", run->workdir);
	rc = tar_add_file(run, "backup_manifest", local, 0600);
	free(local);
	return rc;
}

/* The output: FILE.tmp (mode 0600) or standard output. *tmp receives the name (or NULL). */
static int
output_open(const char *file, char **tmp)
{
	int			fd;

	*tmp = NULL;
	if (file == NULL)
	{
		if (isatty(STDOUT_FILENO))
			return err_set(DRB_ERR_USAGE, "export: refusing to write a tar to a terminal "
						   "(redirect standard output, or give a file name)");
		return STDOUT_FILENO;
	}
	if (access(file, F_OK) == 0)
		return err_set(DRB_ERR_USAGE, "export: '%s' exists: refusing to overwrite it", file);
	*tmp = xasprintf("%s.tmp", file);
	fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		err_set(DRB_ERR_STORAGE, "export: unable to create '%s': %m", *tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return fd;
}

/* fsync FILE.tmp, rename it to FILE, fsync the directory. */
static int
output_commit(int fd, const char *tmp, const char *file)
{
	char	   *dir;
	const char *slash = strrchr(file, '/');
	int			dfd;

	if (fsync(fd) != 0)
		return err_set(DRB_ERR_STORAGE, "export: unable to fsync '%s': %m", tmp);
	if (rename(tmp, file) != 0)
		return err_set(DRB_ERR_STORAGE, "export: unable to rename '%s' to '%s': %m", tmp, file);
	dir = slash == NULL ? xstrdup(".") :
		slash == file ? xstrdup("/") : xstrndup(file, (size_t) (slash - file));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
	{
		fsync(dfd);
		close(dfd);
	}
	free(dir);
	return 0;
}

static int
tar_open(export_run *run, int fd, bool zstd)
{
	run->tar = archive_write_new();
	if (run->tar == NULL)
		return err_set(DRB_ERR_INTERNAL, "export: out of memory for libarchive");
	if (archive_write_set_format_pax_restricted(run->tar) != ARCHIVE_OK ||
		(zstd && archive_write_add_filter_zstd(run->tar) != ARCHIVE_OK) ||
		archive_write_open_fd(run->tar, fd) != ARCHIVE_OK)
		return err_set(DRB_ERR_INTERNAL, "export: unable to start the tar%s: %s",
					   zstd ? " (zstd)" : "", archive_error_string(run->tar));
	return 0;
}

/*
 * drbackup export --set LABEL FILE: the backup (from the first repository, in order, that
 * has it with its WAL) as a tar; see the top of this file.
 */
int
cmd_export(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	const char *set = cfg_str(cfg, "set");
	const char *arg = config_nargs(cfg) == 1 ? config_arg(cfg, 0) : NULL;
	const char *file;
	bool		zstd;
	restore_repos *rr = NULL;
	restore_target target = {.kind = TARGET_IMMEDIATE};
	const catalog_backup *chosen = NULL;
	int			pos = -1;
	char	   *why = NULL;
	char	   *tmp = NULL;
	manifest_header h = {0};
	export_run	run = {.rec_fd = -1};
	int			fd = -1;
	int			rc = -1;

	if (stanza == NULL)
		return err_set(DRB_ERR_USAGE, "export needs --stanza");
	if (set == NULL)
		return err_set(DRB_ERR_USAGE, "export needs --set=LABEL (drbackup info lists the backups)");
	if (arg == NULL)
		return err_set(DRB_ERR_USAGE, "export needs one argument: FILE.tar, FILE.tar.zst or -");
	file = strcmp(arg, "-") == 0 ? NULL : arg;
	zstd = file != NULL && ends_with(file, ".zst");
	if (file && (ends_with(file, ".gz") || ends_with(file, ".bz2") || ends_with(file, ".xz") ||
				 ends_with(file, ".lz4") || ends_with(file, ".tgz")))
		return err_set(DRB_ERR_USAGE, "export: '%s': only FILE.tar and FILE.tar.zst are "
					   "written", file);
	if (dl_archive_load() != 0)
		return -1;

	/* the backup, before anything is created */
	if ((rr = restore_repos_open(cfg)) == NULL)
		return -1;
	if (restore_choose_backup(rr->cats, rr->invs, rr->numbers, rr->nrepo, set, &target,
							  &chosen, &pos, &why) != 0)
	{
		err_wrap("export of backup %s", set);
		goto out;
	}
	log_info("export: %s", why);
	run.repo = rr->ctx.repos[pos].repo;
	run.stanza = stanza;
	run.label = chosen->label;
	run.out_name = file ? file : "standard output";
	run.copy_buf = xmalloc(EXPORT_COPY_BUF);

	if ((fd = output_open(file, &tmp)) < 0)
		goto out;
	if ((run.workdir = make_workdir(file)) == NULL || tar_open(&run, fd, zstd) != 0)
		goto out;
	if (export_contents(&run, &rr->ctx, &h) != 0)
	{
		err_wrap("export of backup %s to %s failed", run.label, run.out_name);
		goto out;
	}
	if (archive_write_close(run.tar) != ARCHIVE_OK)
	{
		err_set(DRB_ERR_STORAGE, "export of backup %s: unable to finish %s: %s", run.label,
				run.out_name, archive_error_string(run.tar));
		goto out;
	}
	if (file && output_commit(fd, tmp, file) != 0)
		goto out;
	rc = 0;
	{
		FILE	   *msg = file ? stdout : stderr;

		fprintf(msg, "export of backup %s (repository %d) to %s complete: %" PRIu64 " files, "
				"%.1f MiB, %" PRIu64 " WAL segments; untar it into an empty directory and "
				"start PostgreSQL%s\n", run.label, rr->numbers[pos], run.out_name, run.files,
				run.bytes / 1048576.0, run.wal_segments, h.ntablespaces == 0 ? "" :
				" with -c allow_in_place_tablespaces=on (its tablespaces are directories "
				"under pg_tblspc/)");
		fflush(msg);
	}
out:
	if (run.tar)
	{
		if (rc != 0)
			archive_write_fail(run.tar);
		archive_write_free(run.tar);
	}
	if (fd >= 0 && fd != STDOUT_FILENO)
		close(fd);
	if (rc != 0 && tmp)
		unlink(tmp);
	remove_workdir(run.workdir, rc == 0 ? NULL : run.pgm);
	free(run.workdir);
	export_run_free(&run);
	manifest_header_free(&h);
	free(tmp);
	free(why);
	restore_repos_close(rr);
	return rc;
}
