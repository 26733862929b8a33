/*
 * restore_files.c — writing the data directory of a backup from its manifest (restore.h).
 *
 * Three steps, and nothing is written before the first has read the whole manifest:
 *
 *  plan     the manifest is read once (manifest_reader validates every line) and every
 *           entry is checked again as hostile input: its parent must be a directory or a
 *           tablespace link listed before it, the only links are tablespaces
 *           ("pg_tblspc/<oid>") pointing to a clean absolute path outside the target (or
 *           their relocation), files of one object must not overlap, and restore's own
 *           files (backup_label, ...) must not be listed. What the writing needs goes
 *           into an unlinked temporary file of records (never memory); files are grouped
 *           by the object holding their bytes, each group keeping its records' positions
 *           in that file (8 bytes per file), sorted by offset in the object.
 *  prepare  the target must be empty (tablespaces: hold no "PG_<major>_" directory)
 *           unless --delta or --force. --force empties it (links removed, never
 *           followed); --delta walks it merged with the records in manifest order and
 *           removes what the backup does not have or what has another type. Then
 *           directories (0700 until the end), tablespace links and empty files, in
 *           manifest order.
 *  fetch    process-max threads take the objects biggest first. An object is read once
 *           (repo_get) into a splitter sink (object_plan.h) that cuts its plain stream
 *           into the files at their offsets, hashes each file while writing it and checks
 *           its size and SHA-256 at its end; bytes of files not needed are discarded.
 *           With --delta the existing files of the object are hashed first, matching
 *           ones are kept, and the object is fetched only when one differs; a fetched
 *           file is written to "<file>.drbtmp" and renamed over the old one once
 *           verified, so a failed delta restore never leaves a half file under the real
 *           name. Files of DIRECT_MIN_FILE or more are written around the page cache
 *           (direct_io.h) and fdatasynced when complete; smaller ones only have their
 *           write-back started then.
 *
 * At the end: the small files written are fdatasynced (one journal commit covers them
 * all, instead of one per file), modes and mtimes of directories, backup_label and
 * tablespace_map from the header (tablespace_map with the relocated paths), fsync of
 * every directory of the target and of each tablespace location.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "direct_io.h"
#include "error.h"
#include "fileutil.h"
#include "filter_hash.h"
#include "log.h"
#include "mem.h"
#include "object_plan.h"
#include "progress.h"
#include "restore.h"

#define STR_MAX			4096	/* longest path or link destination in a record */
#define KEPT_BIT		(UINT64_C(1) << 63)	/* on a group's position: --delta kept it */
#define YIELD_NICE		5		/* threads not on the critical path (worker_main) */
#define HASH_DROP_STEP	(16 * 1024 * 1024)

/* One manifest entry in the records file, followed by its path and link destination. */
typedef struct rec
{
	uint8_t		kind;			/* MANIFEST_DIR / _LINK / _FILE_ENTRY */
	uint8_t		pad;
	uint16_t	path_len;
	uint16_t	link_len;		/* links: where it points on this host (relocated) */
	uint16_t	pad2;
	uint32_t	mode;
	uint32_t	group;			/* files: 1-based object group; 0 = no object (empty) */
	int64_t		mtime;
	uint64_t	size;
	uint64_t	offset;			/* in the object's plain stream */
	uint8_t		sha256[32];
} rec;

/* A record read back, with its strings. */
typedef struct entry
{
	rec			r;
	char		path[STR_MAX];
	char		link[STR_MAX];
} entry;

/* A tablespace link of the manifest and where it points on this host. */
typedef struct tblspc
{
	uint32_t	oid;
	char	   *dest;
	bool		walked;			/* --delta: its link was right and its contents cleaned */
} tblspc;

typedef struct restore_run
{
	const restore_files_settings *s;
	const manifest_header *h;
	int			fd;				/* records file */
	uint64_t	end;			/* bytes in it */
	object_plan plan;			/* the files by object: the groups */
	size_t	   *order;			/* group indexes, biggest first */
	tblspc	   *ts;
	size_t		nts;
	uint32_t   *reloc_oids;		/* settings' relocations, parsed */
	bool	   *reloc_used;
	char	   *pgdata_resolved;	/* the target with symbolic links resolved */
	char		pg_prefix[16];	/* "PG_<major>_": our directory in a tablespace */
	uint64_t	total_bytes;	/* of every file */
	uint64_t	removed;
	/* fetching */
	pthread_mutex_t lock;
	atomic_size_t next_job;
	atomic_bool failed;
	bool		critical;		/* the biggest object is more than one thread's share */
	drb_err		fail_kind;
	char	   *fail_msg;
	atomic_uint_fast64_t done_bytes;	/* written or kept, for progress */
	atomic_uint_fast64_t files;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t fetched;
	atomic_uint_fast64_t kept;
	/* small files written, fdatasynced together at the end (record positions; lock) */
	uint64_t   *to_sync;
	size_t		nsync;
	size_t		capsync;
} restore_run;

/* ------------------------------------------------------------------------------------ */
/* Paths                                                                                */
/* ------------------------------------------------------------------------------------ */

static char *
target_path(const restore_run *run, const char *rel)
{
	return xasprintf("%s/%s", run->s->pgdata, rel);
}

/*
 * An absolute path with the symbolic links of its longest existing ancestor resolved and
 * the rest appended, so that two paths can be compared for containment on this host.
 */
static char *
path_resolved(const char *path)
{
	char	   *head = xstrdup(path);
	char		real[PATH_MAX];
	char	   *out;

	for (;;)
	{
		char	   *slash;

		if (realpath(head[0] ? head : "/", real) != NULL)
			break;
		slash = strrchr(head, '/');
		if (slash == NULL)
		{
			strcpy(real, "/");
			head[0] = '\0';
			break;
		}
		*slash = '\0';
	}
	{
		const char *rest = path + strlen(head);	/* "" or "/..." */

		out = xasprintf("%s%s", strcmp(real, "/") == 0 && rest[0] ? "" : real, rest);
	}
	free(head);
	return out;
}

/* Whether path is root or under it (both resolved, absolute). */
static bool
path_within(const char *path, const char *root)
{
	size_t		n = strlen(root);

	if (strcmp(root, "/") == 0)
		return true;
	return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* A clean absolute directory: '/' then components without "", "." or "..", and no
 * control characters (tablespace_map is line based). */
static bool
absolute_dir_ok(const char *dir)
{
	return dir != NULL && dir[0] == '/' && dir[1] != '\0' && manifest_path_safe(dir + 1) &&
		strlen(dir) < STR_MAX;
}

/* mkdir -p; the directories it creates get mode. */
static int
mkdir_p(const char *dir, mode_t mode)
{
	char	   *copy = xstrdup(dir);
	struct stat st;
	int			rc = 0;

	for (char *p = copy + 1;; p++)
	{
		char		c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) != 0 && errno != EEXIST)
			rc = err_set(DRB_ERR_STORAGE, "unable to create directory '%s': %m", copy);
		else if (stat(copy, &st) != 0 || !S_ISDIR(st.st_mode))
			rc = err_set(DRB_ERR_STORAGE, "'%s' exists and is not a directory", copy);
		*p = c;
		if (rc != 0 || c == '\0')
			break;
	}
	free(copy);
	return rc;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Entry names of dir sorted with strcmp (manifest order of siblings); NULL + err. */
static char **
dir_names(const char *dir, size_t *n)
{
	DIR		   *d = opendir(dir);
	struct dirent *de;
	char	  **names = xmalloc(sizeof(char *));
	size_t		cap = 1;

	*n = 0;
	if (d == NULL)
	{
		free(names);
		err_set(DRB_ERR_STORAGE, "unable to read directory '%s': %m", dir);
		return NULL;
	}
	while ((de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (*n == cap)
		{
			cap *= 2;
			names = xrealloc(names, cap * sizeof(char *));
		}
		names[(*n)++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, *n, sizeof(char *), name_cmp);
	return names;
}

static void
names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ------------------------------------------------------------------------------------ */
/* Removing, never following symbolic links                                             */
/* ------------------------------------------------------------------------------------ */

/* nftw's callback has no argument; only the single-threaded prepare step removes. */
static uint64_t remove_count;
static int	remove_errno;
static char remove_failed[STR_MAX];

static int
remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	int			rc;

	(void) st;
	(void) ftw;
	if (flag == FTW_DP)
		rc = rmdir(path);
	else
	{
		rc = unlink(path);
		if (rc == 0)
			remove_count++;
	}
	if (rc != 0 && errno != ENOENT)
	{
		remove_errno = errno;
		snprintf(remove_failed, sizeof(remove_failed), "%s", path);
		return 1;
	}
	return 0;
}

/* Remove path and, when it is a directory (not a link to one), everything under it. */
static int
remove_tree(restore_run *run, const char *path)
{
	remove_count = 0;
	remove_errno = 0;
	if (nftw(path, remove_cb, 16, FTW_PHYS | FTW_DEPTH) != 0)
	{
		if (remove_errno == 0 && errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to remove '%s': %s",
					   remove_errno ? remove_failed : path,
					   strerror(remove_errno ? remove_errno : errno));
	}
	run->removed += remove_count;
	return 0;
}

/* Remove every entry of dir (prefix NULL) or those whose name starts with prefix. */
static int
remove_children(restore_run *run, const char *dir, const char *prefix)
{
	size_t		n;
	char	  **names;
	int			rc = 0;

	if (access(dir, F_OK) != 0)
		return 0;
	if ((names = dir_names(dir, &n)) == NULL)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
	{
		if (prefix == NULL || strncmp(names[i], prefix, strlen(prefix)) == 0)
		{
			char	   *p = xasprintf("%s/%s", dir, names[i]);

			rc = remove_tree(run, p);
			free(p);
		}
	}
	names_free(names, n);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Records                                                                              */
/* ------------------------------------------------------------------------------------ */

static int
rec_read(const restore_run *run, uint64_t pos, entry *e)
{
	ssize_t		n = pread(run->fd, e, sizeof(rec) + STR_MAX * 2, (off_t) pos);

	if (n < (ssize_t) sizeof(rec))
		return err_set(DRB_ERR_STORAGE, "restore: unable to read the records file at %" PRIu64
					   ": %s", pos, n < 0 ? strerror(errno) : "short read");
	/* the strings follow the fixed part contiguously: move them into place */
	{
		const char *strs = (const char *) e + sizeof(rec);
		size_t		need = sizeof(rec) + e->r.path_len + e->r.link_len;
		char		tmp[STR_MAX];

		if ((size_t) n < need)
			return err_set(DRB_ERR_STORAGE, "restore: short record in the records file at %"
						   PRIu64, pos);
		memcpy(tmp, strs + e->r.path_len, e->r.link_len);
		memmove(e->path, strs, e->r.path_len);
		e->path[e->r.path_len] = '\0';
		memcpy(e->link, tmp, e->r.link_len);
		e->link[e->r.link_len] = '\0';
	}
	return 0;
}

/* A sequential reader of the records file. */
typedef struct cursor
{
	const restore_run *run;
	uint64_t	pos;			/* of the current entry */
	uint64_t	next;
	bool		valid;			/* e holds an entry; false at the end */
	entry		e;
} cursor;

static int
cursor_next(cursor *c)
{
	c->pos = c->next;
	c->valid = c->pos < c->run->end;
	if (!c->valid)
		return 0;
	if (rec_read(c->run, c->pos, &c->e) != 0)
		return -1;
	c->next = c->pos + sizeof(rec) + c->e.r.path_len + c->e.r.link_len;
	return 0;
}

static cursor *
cursor_open(const restore_run *run)
{
	cursor	   *c = xcalloc(1, sizeof(*c));

	c->run = run;
	return c;
}

/* ------------------------------------------------------------------------------------ */
/* Plan                                                                                 */
/* ------------------------------------------------------------------------------------ */

/* "pg_tblspc/<oid>": *oid set. */
static bool
tablespace_link(const char *path, uint32_t *oid)
{
	const char *p = path + strlen("pg_tblspc/");
	size_t		n;

	if (strncmp(path, "pg_tblspc/", strlen("pg_tblspc/")) != 0)
		return false;
	n = strspn(p, "0123456789");
	if (n == 0 || n > 10 || p[n] != '\0')
		return false;
	*oid = (uint32_t) strtoul(p, NULL, 10);
	return strtoul(p, NULL, 10) <= UINT32_MAX;
}

/* Where the tablespace link of oid points on this host; DRB_ERR_INTEGRITY / _USAGE. */
static int
plan_link(restore_run *run, const manifest_entry *e, const char **dest)
{
	uint32_t	oid;
	char	   *resolved;

	if (!tablespace_link(e->path, &oid))
		return err_set(DRB_ERR_INTEGRITY, "link '%s' is not a tablespace link "
					   "(pg_tblspc/<oid>): a backup holds no other links", e->path);
	if (!absolute_dir_ok(e->link_target))
		return err_set(DRB_ERR_INTEGRITY, "tablespace link '%s' points to '%s', not a clean "
					   "absolute path", e->path, e->link_target);
	*dest = e->link_target;
	for (size_t i = 0; i < run->s->nts; i++)
	{
		if (run->reloc_oids[i] == oid)
		{
			*dest = run->s->ts_dirs[i];
			run->reloc_used[i] = true;
		}
	}
	resolved = path_resolved(*dest);
	if (path_within(resolved, run->pgdata_resolved))
	{
		int			rc = err_set(*dest == e->link_target ? DRB_ERR_INTEGRITY : DRB_ERR_USAGE,
								 "tablespace %" PRIu32 " would be restored to '%s', which is "
								 "inside the target '%s'", oid, *dest, run->s->pgdata);

		free(resolved);
		return rc;
	}
	free(resolved);
	for (size_t i = 0; i < run->nts; i++)
		if (strcmp(run->ts[i].dest, *dest) == 0)
			return err_set(DRB_ERR_USAGE, "tablespaces %" PRIu32 " and %" PRIu32 " would both "
						   "be restored to '%s'", run->ts[i].oid, oid, *dest);
	run->ts = xrealloc(run->ts, (run->nts + 1) * sizeof(tblspc));
	run->ts[run->nts++] = (tblspc) {oid, xstrdup(*dest), false};
	return 0;
}

/* The parent of path must be the deepest directory or link of the stack (entries come
 * depth first, so an ancestor is never popped before its descendants). */
typedef struct parent_stack
{
	char	  **paths;
	size_t		depth;
	size_t		cap;
} parent_stack;

static bool
parent_listed(parent_stack *st, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t		plen = slash ? (size_t) (slash - path) : 0;

	while (st->depth > 0)
	{
		const char *top = st->paths[st->depth - 1];
		size_t		n = strlen(top);

		if (strncmp(path, top, n) == 0 && path[n] == '/')
			break;
		free(st->paths[--st->depth]);
	}
	if (plen == 0)
		return true;
	return st->depth > 0 && strlen(st->paths[st->depth - 1]) == plen;
}

static void
parent_push(parent_stack *st, const char *path)
{
	if (st->depth == st->cap)
	{
		st->cap = st->cap ? st->cap * 2 : 16;
		st->paths = xrealloc(st->paths, st->cap * sizeof(char *));
	}
	st->paths[st->depth++] = xstrdup(path);
}

static bool
reserved_name(const char *path)
{
	static const char *const names[] = {
		"backup_label", "tablespace_map", "backup_manifest", "backup_manifest.drbtmp",
		"recovery.signal", NULL
	};

	for (int i = 0; names[i]; i++)
		if (strcmp(path, names[i]) == 0)
			return true;
	return false;
}

/* One entry into the records file (and its group). */
static int
plan_entry(restore_run *run, FILE *out, parent_stack *st, const manifest_entry *e)
{
	rec			r = {0};
	const char *dest = NULL;
	size_t		plen = strlen(e->path);
	size_t		llen;

	if (plen >= STR_MAX)
		return err_set(DRB_ERR_INTEGRITY, "path '%.100s...' is too long", e->path);
	if (reserved_name(e->path))
		return err_set(DRB_ERR_INTEGRITY, "the manifest lists '%s', which no backup holds "
					   "(restore writes it)", e->path);
	if (!parent_listed(st, e->path))
		return err_set(DRB_ERR_INTEGRITY, "'%s' is listed without its parent directory",
					   e->path);
	r.kind = (uint8_t) e->type;
	r.mode = e->mode;
	r.mtime = e->mtime;
	r.path_len = (uint16_t) plen;
	if (e->type == MANIFEST_LINK && plan_link(run, e, &dest) != 0)
		return -1;
	llen = dest ? strlen(dest) : 0;
	r.link_len = (uint16_t) llen;
	if (e->type == MANIFEST_FILE_ENTRY)
	{
		r.size = e->size;
		r.offset = e->offset;
		memcpy(r.sha256, e->sha256, 32);
		run->total_bytes += e->size;
		if (e->size > 0)
		{
			size_t		g = object_plan_group(&run->plan, e->ref, e->object);

			object_plan_add(&run->plan, g, run->end, e->size);
			r.group = (uint32_t) (g + 1);
		}
	}
	else
		parent_push(st, e->path);
	if (fwrite(&r, sizeof(r), 1, out) != 1 || fwrite(e->path, 1, plen, out) != plen ||
		(llen && fwrite(dest, 1, llen, out) != llen))
		return err_set(DRB_ERR_STORAGE, "restore: unable to write the records file: %m");
	run->end += sizeof(r) + plen + llen;
	return 0;
}

/*
 * One object's files: their records read back (writer_load, for planning too) and, while
 * fetching, written into the target directory (writer_ops).
 */
typedef struct file_writer
{
	restore_run *run;
	const char *object;			/* object path, for messages */
	entry	   *e;				/* the current file's record */
	char	   *abs;			/* the file's name in the target */
	char	   *tmp;			/* where it is written (abs, or abs.drbtmp with --delta) */
	int			fd;
	uint64_t	written;		/* bytes written to fd */
	uint64_t	flushed;		/* bytes whose write-back was started */
	uint64_t	pos;			/* the current file's record */
	direct_writer *direct;		/* large files: around the page cache (made on first use) */
	bool		use_direct;		/* the current file goes through direct */
	uint8_t    *ring[HASH_RING_N];	/* a large single-file object's is decoded into these
									 * (repo_get_ring) and written from them, or NULL */
} file_writer;

/* Write-back is started every this many bytes, so the fdatasync at close finds little left
 * to do: the disk works while the next bytes are decompressed. */
#define WRITEBACK_STEP	(16 * 1024 * 1024)

/* Stop early when another thread failed. */
static int
writer_check(const file_writer *w)
{
	if (atomic_load(&w->run->failed))
		return err_set(DRB_ERR_INTERNAL, "restore stopped (another file failed)");
	return 0;
}

/* The record at pos, unless --delta kept the file. */
static int
writer_load(void *arg, uint64_t pos, object_file *f)
{
	file_writer *w = arg;

	if (writer_check(w) != 0)
		return -1;
	if (pos & KEPT_BIT)
		return 0;
	if (rec_read(w->run, pos, w->e) != 0)
		return -1;
	w->pos = pos;
	*f = (object_file) {w->e->path, w->e->r.offset, w->e->r.size, w->e->r.sha256};
	return 1;
}

/* After the object: a file left open (failed or mismatched) is removed, never kept half. */
static void
writer_release(file_writer *w)
{
	/* first: its helper may still be writing to fd */
	direct_writer_free(w->direct);
	if (w->fd >= 0)
	{
		close(w->fd);
		unlink(w->tmp);
	}
	free(w->e);
	free(w->abs);
	free(w->tmp);
}

static int
order_cmp(const void *a, const void *b, void *arg)
{
	const restore_run *run = arg;
	const object_group *x = &run->plan.groups[*(const size_t *) a];
	const object_group *y = &run->plan.groups[*(const size_t *) b];

	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

/* Read and check the whole manifest into the records file and the groups. */
static int
plan(restore_run *run, manifest_reader *mr)
{
	parent_stack st = {0};
	manifest_entry e;
	FILE	   *out;
	int			dupfd;
	int			rc;

	if ((run->fd = tmpfile_open("restore")) < 0)
		return -1;
	if ((dupfd = dup(run->fd)) < 0 || (out = fdopen(dupfd, "w")) == NULL)
	{
		if (dupfd >= 0)
			close(dupfd);
		return err_set(DRB_ERR_STORAGE, "restore: unable to open the records file: %m");
	}
	setvbuf(out, NULL, _IOFBF, 256 * 1024);
	while ((rc = manifest_reader_next(mr, &e)) == 1)
	{
		if (plan_entry(run, out, &st, &e) != 0)
		{
			rc = err_wrap("manifest of backup %s", run->s->label);
			break;
		}
	}
	if (fclose(out) != 0 && rc == 0)
		rc = err_set(DRB_ERR_STORAGE, "restore: unable to write the records file: %m");
	for (size_t i = 0; i < st.depth; i++)
		free(st.paths[i]);
	free(st.paths);
	if (rc != 0)
		return -1;

	for (size_t i = 0; i < run->s->nts; i++)
		if (!run->reloc_used[i])
			return err_set(DRB_ERR_USAGE, "tablespace-map names tablespace %s, but backup %s "
						   "has no tablespace with that OID", run->s->ts_oids[i], run->s->label);
	{
		file_writer w = {.run = run, .e = xmalloc(sizeof(entry)), .fd = -1};
		int			rc = 0;

		for (size_t i = 0; i < run->plan.ngroups && rc == 0; i++)
			rc = object_plan_sort(&run->plan.groups[i], writer_load, &w);
		writer_release(&w);
		if (rc != 0)
			return -1;
	}
	run->order = xmalloc((run->plan.ngroups ? run->plan.ngroups : 1) * sizeof(size_t));
	for (size_t i = 0; i < run->plan.ngroups; i++)
		run->order[i] = i;
	qsort_r(run->order, run->plan.ngroups, sizeof(size_t), order_cmp, run);
	return 0;
}

/* Parse the settings' relocations ("OID" -> absolute directory). */
static int
relocations_parse(restore_run *run)
{
	const restore_files_settings *s = run->s;

	run->reloc_oids = xcalloc(s->nts ? s->nts : 1, sizeof(uint32_t));
	run->reloc_used = xcalloc(s->nts ? s->nts : 1, sizeof(bool));
	for (size_t i = 0; i < s->nts; i++)
	{
		char	   *endp;
		unsigned long v;

		errno = 0;
		v = strtoul(s->ts_oids[i], &endp, 10);
		if (s->ts_oids[i][0] < '0' || s->ts_oids[i][0] > '9' || *endp != '\0' || errno ||
			v == 0 || v > UINT32_MAX)
			return err_set(DRB_ERR_USAGE, "tablespace-map: '%s' is not a tablespace OID",
						   s->ts_oids[i]);
		if (!absolute_dir_ok(s->ts_dirs[i]))
			return err_set(DRB_ERR_USAGE, "tablespace-map: '%s' (tablespace %s) is not a clean "
						   "absolute path", s->ts_dirs[i], s->ts_oids[i]);
		run->reloc_oids[i] = (uint32_t) v;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Prepare                                                                              */
/* ------------------------------------------------------------------------------------ */

/* Without --delta or --force: the target and our directory in each tablespace are new. */
static int
check_empty(restore_run *run)
{
	size_t		n;
	char	  **names;

	if (run->s->delta || run->s->force)
		return 0;
	if (access(run->s->pgdata, F_OK) == 0)
	{
		if ((names = dir_names(run->s->pgdata, &n)) == NULL)
			return -1;
		names_free(names, n);
		if (n > 0)
			return err_set(DRB_ERR_USAGE, "the target '%s' is not empty: restore over it with "
						   "--delta, or replace its contents with --force", run->s->pgdata);
	}
	for (size_t t = 0; t < run->nts; t++)
	{
		if (access(run->ts[t].dest, F_OK) != 0)
			continue;
		if ((names = dir_names(run->ts[t].dest, &n)) == NULL)
			return -1;
		for (size_t i = 0; i < n; i++)
		{
			if (strncmp(names[i], run->pg_prefix, strlen(run->pg_prefix)) == 0)
			{
				int			rc = err_set(DRB_ERR_USAGE, "tablespace %" PRIu32 " location '%s' "
										 "already holds '%s': restore over it with --delta, "
										 "or replace it with --force", run->ts[t].oid,
										 run->ts[t].dest, names[i]);

				names_free(names, n);
				return rc;
			}
		}
		names_free(names, n);
	}
	return 0;
}

static tblspc *
tblspc_of(restore_run *run, const char *dest)
{
	for (size_t i = 0; i < run->nts; i++)
		if (strcmp(run->ts[i].dest, dest) == 0)
			return &run->ts[i];
	return NULL;
}

/*
 * --delta: walk dir (rel to the target) merged with the records in manifest order and
 * remove what the backup does not have, or has with another type. In a tablespace
 * location (ts_root) names the backup does not list are not ours and stay.
 */
static int
delta_walk(restore_run *run, cursor *c, const char *rel, const char *abs, bool ts_root)
{
	size_t		n;
	char	  **names = dir_names(abs, &n);
	int			rc = 0;

	if (names == NULL)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++)
	{
		char	   *crel = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		char	   *cabs = xasprintf("%s/%s", abs, names[i]);
		struct stat st;
		bool		match;

		while (rc == 0 && c->valid && manifest_path_cmp(c->e.path, crel) < 0)
			rc = cursor_next(c);
		match = rc == 0 && c->valid && strcmp(c->e.path, crel) == 0;
		if (rc != 0 || lstat(cabs, &st) != 0)
		{
			/* a failed read of the records, or the name vanished: nothing to remove */
		}
		else if (!match)
		{
			if (!ts_root)
				rc = remove_tree(run, cabs);
		}
		else if (c->e.r.kind == MANIFEST_DIR)
		{
			if (S_ISDIR(st.st_mode))
			{
				if ((rc = cursor_next(c)) == 0)
					rc = delta_walk(run, c, crel, cabs, false);
			}
			else
			{
				if (S_ISLNK(st.st_mode))
					log_warn("'%s' is a symbolic link; the backup has a directory there: the "
							 "link is replaced (what it points to is left alone)", cabs);
				rc = remove_tree(run, cabs);
			}
		}
		else if (c->e.r.kind == MANIFEST_LINK)
		{
			char		to[STR_MAX];
			ssize_t		len = S_ISLNK(st.st_mode) ? readlink(cabs, to, sizeof(to) - 1) : -1;

			if (len >= 0)
				to[len] = '\0';
			if (len >= 0 && strcmp(to, c->e.link) == 0 && access(c->e.link, F_OK) == 0)
			{
				tblspc	   *ts = tblspc_of(run, c->e.link);

				if (ts)
					ts->walked = true;
				if ((rc = cursor_next(c)) == 0)
					rc = delta_walk(run, c, crel, cabs, true);
			}
			else
				rc = remove_tree(run, cabs);	/* made again, and its directory cleaned */
		}
		else if (!S_ISREG(st.st_mode))
			rc = remove_tree(run, cabs);
		free(crel);
		free(cabs);
	}
	names_free(names, n);
	return rc;
}

static int
prepare_delta(restore_run *run)
{
	cursor	   *c = cursor_open(run);
	int			rc;

	if (access(run->s->pgdata, F_OK) != 0)
	{
		free(c);
		return 0;
	}
	rc = cursor_next(c);
	if (rc == 0)
		rc = delta_walk(run, c, "", run->s->pgdata, false);
	free(c);
	/* a tablespace whose link was missing or wrong: our directory there is not trusted */
	for (size_t i = 0; i < run->nts && rc == 0; i++)
		if (!run->ts[i].walked)
			rc = remove_children(run, run->ts[i].dest, run->pg_prefix);
	return rc;
}

static int
prepare_force(restore_run *run)
{
	int			rc = remove_children(run, run->s->pgdata, NULL);

	for (size_t i = 0; i < run->nts && rc == 0; i++)
		rc = remove_children(run, run->ts[i].dest, run->pg_prefix);
	return rc;
}

/* An empty file (no object); --delta keeps an empty regular file. */
static int
write_empty(restore_run *run, const entry *e, const char *abs)
{
	struct stat st;
	struct timespec ts[2] = {{e->r.mtime, 0}, {e->r.mtime, 0}};
	int			fd;

	if (run->s->delta && lstat(abs, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
	{
		atomic_fetch_add(&run->kept, 1);
		if (chmod(abs, e->r.mode) != 0 || utimensat(AT_FDCWD, abs, ts, 0) != 0)
			return err_set(DRB_ERR_STORAGE, "unable to set mode and time of '%s': %m", abs);
		return 0;
	}
	fd = open(abs, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", abs);
	if (fchmod(fd, e->r.mode) != 0 || futimens(fd, ts) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to set mode and time of '%s': %m", abs);
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", abs);
	return 0;
}

/* Directories, tablespace links and empty files, in manifest order. */
static int
prepare_tree(restore_run *run)
{
	cursor	   *c = cursor_open(run);
	struct stat st;
	int			rc;

	if ((rc = mkdir_p(run->s->pgdata, 0700)) != 0)
	{
		free(c);
		return rc;
	}
	/* PostgreSQL starts only in a directory of mode 0700 or 0750 */
	if (stat(run->s->pgdata, &st) == 0 && (st.st_mode & 0027) != 0 &&
		chmod(run->s->pgdata, 0700) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to set the mode of '%s': %m", run->s->pgdata);
	while (rc == 0 && (rc = cursor_next(c)) == 0 && c->valid)
	{
		const entry *e = &c->e;
		char	   *abs = target_path(run, e->path);

		if (e->r.kind == MANIFEST_DIR)
		{
			if (mkdir(abs, 0700) != 0 &&
				(errno != EEXIST || lstat(abs, &st) != 0 || !S_ISDIR(st.st_mode)))
				rc = err_set(DRB_ERR_STORAGE, "unable to create directory '%s': %m", abs);
		}
		else if (e->r.kind == MANIFEST_LINK)
		{
			if (lstat(abs, &st) == 0)
			{
				if (!S_ISLNK(st.st_mode))
					rc = err_set(DRB_ERR_STORAGE, "'%s' exists and is not a symbolic link", abs);
				else
					rc = mkdir_p(e->link, 0700);	/* kept by --delta: its location may be gone */
			}
			else if ((rc = mkdir_p(e->link, 0700)) == 0 && symlink(e->link, abs) != 0)
				rc = err_set(DRB_ERR_STORAGE, "unable to create the link '%s' -> '%s': %m",
							 abs, e->link);
		}
		else if (e->r.group == 0)
		{
			if ((rc = write_empty(run, e, abs)) == 0)
				atomic_fetch_add(&run->files, 1);
		}
		free(abs);
	}
	free(c);
	return rc;
}

/* ------------------------------------------------------------------------------------ */
/* Fetch: the files of an object (object_splitter_new cuts its stream)                  */
/* ------------------------------------------------------------------------------------ */

static int
writer_open(void *arg, const object_file *f)
{
	file_writer *w = arg;

	(void) f;
	free(w->abs);
	free(w->tmp);
	w->abs = target_path(w->run, w->e->path);
	w->tmp = w->run->s->delta ? xasprintf("%s.drbtmp", w->abs) : xstrdup(w->abs);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", w->tmp);
	/* a large file is written around the page cache: no copy into the kernel, no dirty
	 * pages left for the fdatasync, and the disk works while the next bytes are made */
	w->use_direct = f->size >= DIRECT_MIN_FILE;
	if (w->use_direct)
	{
		if (w->direct == NULL)
			w->direct = direct_writer_new();
		direct_writer_open(w->direct, w->fd);
	}
	return 0;
}

/* The ring's pieces are filled again only after the writer has given them back. */
_Static_assert(HASH_RING_N >= DIRECT_LENT_DEPTH + 2, "the ring outlasts the writer's queue");

static int
writer_write(void *arg, const object_file *f, const uint8_t *in, size_t len)
{
	file_writer *w = arg;

	(void) f;
	if (writer_check(w) != 0)
		return -1;
	if (w->use_direct)
	{
		/* a piece of the ring is filled again only after our next three writes have
		 * returned (repo_get_ring): the disk reads it from there */
		bool		lent = hash_ring_slot(w->ring, in, len) >= 0;

		if ((lent ? direct_writer_write_lent(w->direct, in, len)
			 : direct_writer_write(w->direct, in, len)) != 0)
			return err_set(DRB_ERR_STORAGE, "unable to write '%s' (from object '%s'): %m",
						   w->tmp, w->object);
		w->written += len;
		atomic_fetch_add(&w->run->done_bytes, (uint64_t) len);
		return 0;
	}
	while (len > 0)
	{
		ssize_t		n = write(w->fd, in, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return err_set(DRB_ERR_STORAGE, "unable to write '%s' (from object '%s'): %m",
						   w->tmp, w->object);
		}
		in += n;
		len -= (size_t) n;
		w->written += (uint64_t) n;
		atomic_fetch_add(&w->run->done_bytes, (uint64_t) n);
	}
	if (w->written - w->flushed >= WRITEBACK_STEP)
	{
		/* a hint: errors show at the fdatasync in writer_close */
		(void) sync_file_range(w->fd, (off64_t) w->flushed, (off64_t) (w->written - w->flushed),
							   SYNC_FILE_RANGE_WRITE);
		w->flushed = w->written;
	}
	return 0;
}

/* The file is whole and checked: set mode and time, close, rename (--delta). */
static int
writer_close(void *arg, const object_file *f)
{
	file_writer *w = arg;
	struct timespec ts[2] = {{w->e->r.mtime, 0}, {w->e->r.mtime, 0}};
	int			fd = w->fd;
	bool		direct = w->use_direct;

	(void) f;
	if (direct && direct_writer_close(w->direct) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to write '%s' (from object '%s'): %m",
					   w->tmp, w->object);
	w->use_direct = false;
	w->fd = -1;
	w->written = w->flushed = 0;

	/*
	 * A large file is made durable now (its data is on the disk already). A small one only
	 * has its write-back started: finish() fdatasyncs it with all the others at the end,
	 * when one journal commit covers them all, instead of one commit and cache flush per
	 * file here (that cost about a millisecond each). Not one syncfs either, which would
	 * also wait for every other writer's dirty data on the file system.
	 */
	if (!direct)
	{
		(void) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);	/* errors: at the end */
		pthread_mutex_lock(&w->run->lock);
		if (w->run->nsync == w->run->capsync)
		{
			w->run->capsync = w->run->capsync ? w->run->capsync * 2 : 1024;
			w->run->to_sync = xrealloc(w->run->to_sync, w->run->capsync * sizeof(uint64_t));
		}
		w->run->to_sync[w->run->nsync++] = w->pos;
		pthread_mutex_unlock(&w->run->lock);
	}
	else if (fdatasync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to write '%s' to disk: %m", w->tmp);
		close(fd);
		unlink(w->tmp);
		return -1;
	}
	if (fchmod(fd, w->e->r.mode) != 0 || futimens(fd, ts) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to set mode and time of '%s': %m", w->tmp);
		close(fd);
		unlink(w->tmp);
		return -1;
	}
	if (close(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", w->tmp);
		unlink(w->tmp);
		return -1;
	}
	if (w->run->s->delta && rename(w->tmp, w->abs) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %m", w->tmp, w->abs);
		unlink(w->tmp);
		return -1;
	}
	atomic_fetch_add(&w->run->files, 1);
	atomic_fetch_add(&w->run->bytes, w->e->r.size);
	return 0;
}

static const object_split_ops writer_ops = {writer_load, writer_open, writer_write,
writer_close};

/* ------------------------------------------------------------------------------------ */
/* Fetch: jobs                                                                          */
/* ------------------------------------------------------------------------------------ */

/* SHA-256 of a small file, read into buf (HASH_STAGE_SIZE) and hashed here; -1 + err. */
static int
hash_small_file(int fd, const char *path, uint8_t *buf, uint8_t sha[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	ssize_t		n;
	bool		ok;

	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	while (ok && (n = read(fd, buf, HASH_STAGE_SIZE)) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			EVP_MD_CTX_free(md);
			return err_set(DRB_ERR_STORAGE, "unable to read '%s': %m", path);
		}
		ok = EVP_DigestUpdate(md, buf, (size_t) n) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, sha, &len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : err_set(DRB_ERR_INTERNAL, "SHA-256 of '%s' failed", path);
}

/*
 * SHA-256 of a regular file (not following a link) of size bytes; -1 + err. A small file
 * is hashed in this thread from buf (HASH_STAGE_SIZE bytes). A large one is read into the
 * ring of a hash filter, which hashes each piece on its helper while the next is read,
 * and the pages read are dropped from the page cache behind us (every HASH_DROP_STEP
 * bytes): hashing a cluster must not fill memory with data nobody will read again, and
 * the few pages reused stay warm.
 */
static int
hash_file(const char *path, uint64_t size, uint8_t *buf, uint8_t sha[32])
{
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	hash_result res;
	filter_t   *h;
	uint8_t   **ring;
	int			k = 0;
	int			rc = 0;
	ssize_t		n;
	uint64_t	dropped = 0;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open '%s': %m", path);
	if (size < DIRECT_MIN_FILE)
	{
		rc = hash_small_file(fd, path, buf, sha);
		close(fd);
		return rc;
	}
	if ((h = filter_hash_new(&res, NULL, NULL)) == NULL)
	{
		close(fd);
		return -1;
	}
	ring = filter_hash_ring(h);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (rc == 0 && (n = read(fd, ring[k], HASH_STAGE_SIZE)) != 0)
	{
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to read '%s': %m", path);
			break;
		}
		rc = filter_push(h, ring[k], (size_t) n);
		k = (k + 1) % HASH_RING_N;
		if (res.size - dropped >= HASH_DROP_STEP)
		{
			posix_fadvise(fd, (off_t) dropped, (off_t) (res.size - dropped), POSIX_FADV_DONTNEED);
			dropped = res.size;
		}
	}
	if (rc == 0)
		rc = filter_finish(h);
	if (rc == 0)
		memcpy(sha, res.sha256, 32);
	filter_chain_free(h);
	close(fd);
	return rc;
}

/*
 * --delta: hash the existing files of g; a match is kept (its mode and time set, its
 * position marked). Returns the number still needed, or -1.
 */
static ssize_t
delta_check(restore_run *run, object_group *g)
{
	entry	   *e = xmalloc(sizeof(entry));
	uint8_t    *buf = xmalloc(HASH_STAGE_SIZE);
	ssize_t		needed = 0;

	for (size_t i = 0; i < g->n && needed >= 0; i++)
	{
		char	   *abs;
		struct stat st;
		uint8_t		sha[32];

		if (atomic_load(&run->failed) || rec_read(run, g->pos[i], e) != 0)
		{
			needed = -1;
			break;
		}
		abs = target_path(run, e->path);
		if (lstat(abs, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t) st.st_size == e->r.size)
		{
			if (hash_file(abs, e->r.size, buf, sha) != 0)
				needed = -1;
			else if (memcmp(sha, e->r.sha256, 32) == 0)
			{
				struct timespec ts[2] = {{e->r.mtime, 0}, {e->r.mtime, 0}};

				if (((st.st_mode & 07777) != e->r.mode && chmod(abs, e->r.mode) != 0) ||
					(st.st_mtime != e->r.mtime && utimensat(AT_FDCWD, abs, ts, 0) != 0))
				{
					err_set(DRB_ERR_STORAGE, "unable to set mode and time of '%s': %m", abs);
					needed = -1;
				}
				else
				{
					g->pos[i] |= KEPT_BIT;
					atomic_fetch_add(&run->kept, 1);
					atomic_fetch_add(&run->files, 1);
					atomic_fetch_add(&run->done_bytes, e->r.size);
				}
				free(abs);
				continue;
			}
		}
		free(abs);
		if (needed >= 0)
			needed++;
	}
	free(e);
	free(buf);
	return needed;
}

static int
run_job(restore_run *run, object_group *g)
{
	char	   *object;
	filter_t   *sp;
	file_writer w = {.run = run, .fd = -1};
	repo_object_result res = {0};
	uint8_t		expect[32];
	const uint8_t *expected = NULL;
	char	   *single = NULL;	/* the one file of a single-file object */
	int			rc = 0;

	if (run->s->delta)
	{
		ssize_t		needed = delta_check(run, g);

		if (needed <= 0)
			return needed < 0 ? -1 : 0;
	}
	object = backup_object_path(run->s->stanza, g->ref, g->object);
	sp = object_splitter_new(g, object, &writer_ops, &w);
	if (sp == NULL)
	{
		free(object);
		return -1;
	}
	w.object = object;
	w.e = xmalloc(sizeof(entry));
	/* an object holding one file from its start is that file: the read chain checks the
	 * file's checksum as the object's, and the splitter need not hash it again */
	if (g->n == 1)
	{
		object_file f;
		int			loaded = writer_load(&w, g->pos[0], &f);

		if (loaded < 0)
			rc = -1;
		else if (loaded > 0 && f.offset == 0)
		{
			memcpy(expect, f.sha256, 32);
			expected = expect;
			single = xstrdup(f.path);
			object_splitter_trust_object(sp);
			/* a large file is decoded into aligned buffers and written from them */
			if (f.size >= DIRECT_MIN_FILE)
				for (int i = 0; i < HASH_RING_N; i++)
					w.ring[i] = xaligned_alloc(4096, HASH_STAGE_SIZE);
		}
	}
	if (rc == 0)
		rc = repo_get_ring(run->s->repo, object, sp, expected, w.ring[0] ? w.ring : NULL, &res);
	filter_chain_free(sp);
	writer_release(&w);
	for (int i = 0; i < HASH_RING_N; i++)
		free(w.ring[i]);	/* after the writer: its helper may have been writing from them */
	if (rc != 0 && single)
		err_wrap("unable to restore '%s' from object '%s'", single, object);
	else if (rc != 0)
		err_wrap("unable to restore from object '%s'", object);
	else
		atomic_fetch_add(&run->fetched, res.size);
	free(single);
	free(object);
	return rc;
}

static void
fail(restore_run *run)
{
	pthread_mutex_lock(&run->lock);
	if (!atomic_load(&run->failed))
	{
		run->fail_kind = err_kind();
		run->fail_msg = xstrdup(err_msg());
		atomic_store(&run->failed, true);
	}
	pthread_mutex_unlock(&run->lock);
}

static void *
worker_main(void *arg)
{
	restore_run *run = arg;
	size_t		i;
	bool		yielding = false;

	while (!atomic_load(&run->failed) &&
		   (i = atomic_fetch_add(&run->next_job, 1)) < run->plan.ngroups)
	{
		/*
		 * The biggest object, when it is more than one thread's share of the work, decides
		 * when the restore ends: the threads doing the rest leave it the CPUs it can use
		 * (a lower priority, which the threads they start inherit) and take the rest.
		 * The total work is the same; only its order changes.
		 */
		if (i > 0 && run->critical && !yielding)
		{
			(void) setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid), YIELD_NICE);
			yielding = true;
		}
		if (run_job(run, &run->plan.groups[run->order[i]]) != 0)
			fail(run);
	}
	return NULL;
}

/* The objects on process-max threads, biggest first; a bar on a terminal. */
static int
fetch(restore_run *run)
{
	int			nthreads = run->s->process_max < 1 ? 1 : run->s->process_max;
	pthread_t  *t;
	bool	   *started;
	progress	bar;
	size_t		nstarted = 0;

	progress_start(&bar, run->total_bytes);
	if ((size_t) nthreads > run->plan.ngroups)
		nthreads = run->plan.ngroups ? (int) run->plan.ngroups : 1;
	run->critical = nthreads > 1 &&
		run->plan.groups[run->order[0]].bytes > run->total_bytes / (uint64_t) nthreads;
	t = xcalloc((size_t) nthreads, sizeof(*t));
	started = xcalloc((size_t) nthreads, sizeof(*started));
	for (int i = 0; i < nthreads; i++)
		if ((started[i] = pthread_create(&t[i], NULL, worker_main, run) == 0))
			nstarted++;
	if (nstarted == 0)
		worker_main(run);
	/* each thread takes one index past the last job on its way out */
	while (bar.on && atomic_load(&run->next_job) < run->plan.ngroups + nstarted &&
		   !atomic_load(&run->failed))
	{
		progress_update(&bar, atomic_load(&run->done_bytes));
		for (int k = 0; k < 10 && atomic_load(&run->next_job) < run->plan.ngroups + nstarted; k++)
			usleep(100 * 1000);
	}
	for (int i = 0; i < nthreads; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	progress_finish(&bar, atomic_load(&run->done_bytes));
	free(t);
	free(started);
	if (atomic_load(&run->failed))
		return err_set(run->fail_kind, "%s", run->fail_msg);
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Finish                                                                               */
/* ------------------------------------------------------------------------------------ */

/* Write a small file whole (mode 0600). */
static int
write_small(const char *path, const char *text)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t		len = strlen(text);
	bool		ok;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", path);
	ok = write(fd, text, len) == (ssize_t) len && fdatasync(fd) == 0;
	if (close(fd) != 0)
		ok = false;
	if (!ok)
		return err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", path);
	return 0;
}

/* tablespace_map with the relocated tablespaces' lines ("<oid> <path>") rewritten;
 * caller frees. */
static char *
tablespace_map_relocated(const restore_run *run, const char *map)
{
	buf_t		b;
	char	   *out;

	buf_init(&b);
	for (const char *line = map; *line;)
	{
		const char *nl = strchr(line, '\n');
		size_t		len = nl ? (size_t) (nl - line) + 1 : strlen(line);
		size_t		digits = strspn(line, "0123456789");
		const char *dest = NULL;

		if (digits > 0 && digits <= 10 && line[digits] == ' ')
		{
			uint32_t	oid = (uint32_t) strtoul(line, NULL, 10);

			for (size_t i = 0; i < run->s->nts; i++)
				if (run->reloc_oids[i] == oid)
					dest = run->s->ts_dirs[i];
		}
		if (dest)
			buf_printf(&b, "%.*s %s\n", (int) digits, line, dest);
		else
			buf_append(&b, line, len);
		line += len;
	}
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* fdatasync a file written earlier (writer_close started its write-back) */
static int
sync_file(const char *path)
{
	int			fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open '%s': %m", path);
	if (fdatasync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to write '%s' to disk: %m", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
pos_cmp(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

/* fdatasync the small files written (in manifest order); their write-back runs already */
static int
sync_written(restore_run *run)
{
	entry	   *e = xmalloc(sizeof(entry));
	int			rc = 0;

	qsort(run->to_sync, run->nsync, sizeof(uint64_t), pos_cmp);
	for (size_t i = 0; i < run->nsync && rc == 0; i++)
	{
		char	   *abs;

		if ((rc = rec_read(run, run->to_sync[i], e)) != 0)
			break;
		abs = target_path(run, e->path);
		rc = sync_file(abs);
		free(abs);
	}
	free(e);
	return rc;
}

/* fsync a directory: the names created in it are durable */
static int
sync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int			rc = 0;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open '%s' to sync it: %m", dir);
	if (fsync(fd) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to sync directory '%s': %m", dir);
	close(fd);
	return rc;
}

/* Directory modes and times (now that nothing is created in them), the backup's
 * backup_label and tablespace_map, then everything to disk. */
static int
finish(restore_run *run)
{
	cursor	   *c = cursor_open(run);
	char	   *path;
	int			rc;

	while ((rc = cursor_next(c)) == 0 && c->valid)
	{
		struct timespec ts[2] = {{c->e.r.mtime, 0}, {c->e.r.mtime, 0}};
		char	   *abs;

		if (c->e.r.kind == MANIFEST_FILE_ENTRY)
			continue;
		abs = target_path(run, c->e.path);
		if (c->e.r.kind == MANIFEST_DIR &&
			(chmod(abs, c->e.r.mode) != 0 || utimensat(AT_FDCWD, abs, ts, 0) != 0))
			rc = err_set(DRB_ERR_STORAGE, "unable to set mode and time of '%s': %m", abs);
		else if (c->e.r.kind == MANIFEST_DIR)
			rc = sync_dir(abs);
		else if (c->e.r.kind == MANIFEST_LINK &&
				 utimensat(AT_FDCWD, abs, ts, AT_SYMLINK_NOFOLLOW) != 0)
			rc = err_set(DRB_ERR_STORAGE, "unable to set the time of link '%s': %m", abs);
		free(abs);
		if (rc != 0)
			break;
	}
	free(c);
	if (rc != 0 || sync_written(run) != 0)
		return -1;

	path = target_path(run, "backup_label");
	rc = write_small(path, run->h->backup_label ? run->h->backup_label : "");
	free(path);
	if (rc == 0 && run->h->tablespace_map && run->h->tablespace_map[0])
	{
		char	   *map = tablespace_map_relocated(run, run->h->tablespace_map);

		path = target_path(run, "tablespace_map");
		rc = write_small(path, map);
		free(path);
		free(map);
	}
	if (rc == 0)
		rc = sync_dir(run->s->pgdata);
	for (size_t i = 0; i < run->nts && rc == 0; i++)
		rc = sync_dir(run->ts[i].dest);
	return rc;
}

/* ------------------------------------------------------------------------------------ */

static void
run_free(restore_run *run)
{
	if (run->fd >= 0)
		close(run->fd);
	object_plan_free(&run->plan);
	free(run->order);
	for (size_t i = 0; i < run->nts; i++)
		free(run->ts[i].dest);
	free(run->ts);
	free(run->reloc_oids);
	free(run->reloc_used);
	free(run->pgdata_resolved);
	free(run->fail_msg);
	free(run->to_sync);
	pthread_mutex_destroy(&run->lock);
}

int
restore_files(const restore_files_settings *s, manifest_header *h, restore_files_result *out)
{
	restore_run run = {0};
	manifest_reader *mr;
	int			rc;

	memset(out, 0, sizeof(*out));
	if (s->pgdata == NULL || s->pgdata[0] != '/')
		return err_set(DRB_ERR_USAGE, "restore: the target '%s' is not an absolute path",
					   s->pgdata ? s->pgdata : "");
	run.s = s;
	run.h = h;
	run.fd = -1;
	pthread_mutex_init(&run.lock, NULL);
	if (relocations_parse(&run) != 0)
	{
		run_free(&run);
		return -1;
	}
	mr = manifest_reader_open(s->repo, s->stanza, s->label, h);
	if (mr == NULL)
	{
		run_free(&run);
		return err_wrap("unable to read the manifest of backup %s", s->label);
	}
	run.pgdata_resolved = path_resolved(s->pgdata);
	snprintf(run.pg_prefix, sizeof(run.pg_prefix), "PG_%d_", h->pg_version);

	/* the whole manifest, checked, before anything is written */
	rc = plan(&run, mr);
	manifest_reader_close(mr);
	if (rc == 0)
		rc = check_empty(&run);
	if (rc == 0)
		log_info("restore of backup %s: %" PRIu64 " bytes in %zu objects to %s", s->label,
				 run.total_bytes, run.plan.ngroups, s->pgdata);

	if (rc == 0 && s->delta)
		rc = prepare_delta(&run);
	else if (rc == 0 && s->force)
		rc = prepare_force(&run);
	if (rc == 0)
		rc = prepare_tree(&run);
	if (rc == 0)
		rc = fetch(&run);
	if (rc == 0)
		rc = finish(&run);

	out->files = atomic_load(&run.files);
	out->bytes = atomic_load(&run.bytes);
	out->fetched_bytes = atomic_load(&run.fetched);
	out->kept = atomic_load(&run.kept);
	out->removed = run.removed;
	run_free(&run);
	if (rc != 0)
		manifest_header_free(h);
	return rc;
}
