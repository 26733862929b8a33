/*
 * storage_posix.c — repository in a local or NFS directory (see storage_posix.h and the
 * driver contract in storage.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "mem.h"
#include "storage_posix.h"

#define POSIX_READ_PIECE	(256 * 1024)
#define TEMP_MARK			".drbtmp."

typedef struct posix_storage
{
	storage_t	base;
	char	   *root;			/* absolute, no trailing '/' ("" for "/") */
} posix_storage;

/* Temp-file sequence, shared by every storage object of the process. */
static unsigned long temp_counter = 0;

static char *
full_path(const posix_storage *s, const char *path)
{
	return xasprintf("%s/%s", s->root, path);
}

/* Directory part of an absolute path: "/a/b" -> "/a", "/a" -> "/". */
static char *
parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL || slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t) (slash - path));
}

/* fsync a directory so that entries created, renamed or removed in it are durable. */
static int
sync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open directory '%s' to sync it: %m", dir);
	/* some file systems cannot fsync a directory (EINVAL); nothing more can be done there */
	if (fsync(fd) != 0 && errno != EINVAL)
	{
		int			rc = err_set(DRB_ERR_STORAGE, "unable to sync directory '%s': %m", dir);

		close(fd);
		return rc;
	}
	close(fd);
	return 0;
}

/* mkdir -p, fsyncing the parent of every directory it creates. */
static int
make_dirs(const char *dir)
{
	struct stat st;
	char	   *parent;
	int			rc = 0;

	if (stat(dir, &st) == 0)
	{
		if (S_ISDIR(st.st_mode))
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to create directory '%s': a file of that name "
					   "exists", dir);
	}
	if (errno != ENOENT)
		return err_set(DRB_ERR_STORAGE, "unable to stat directory '%s': %m", dir);

	parent = parent_dir(dir);
	if (strcmp(parent, dir) != 0)
		rc = make_dirs(parent);
	if (rc == 0 && mkdir(dir, 0750) != 0 && errno != EEXIST)
		rc = err_set(DRB_ERR_STORAGE, "unable to create directory '%s': %m", dir);
	if (rc == 0)
		rc = sync_dir(parent);
	free(parent);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * read
 * ------------------------------------------------------------------------------------- */
static int
posix_read(storage_t *base, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	posix_storage *s = (posix_storage *) base;
	char	   *file = full_path(s, path);
	uint8_t    *piece = NULL;
	uint64_t	pos = offset;
	uint64_t	remaining = length ? length : UINT64_MAX;
	struct stat st;
	int			fd;
	int			rc = 0;

	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			rc = err_set(DRB_ERR_NOT_FOUND, "unable to open missing file '%s' for read", file);
		else
			rc = err_set(DRB_ERR_STORAGE, "unable to open '%s' for read: %m", file);
		free(file);
		return rc;
	}
	if (fstat(fd, &st) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to stat '%s': %m", file);
	else if (!S_ISREG(st.st_mode))
		rc = err_set(DRB_ERR_NOT_FOUND, "unable to read '%s': not a regular file", file);
	else if (offset > (uint64_t) st.st_size)
		rc = err_set(DRB_ERR_STORAGE, "unable to read '%s' from offset %llu: the file has only "
					 "%llu bytes", file, (unsigned long long) offset,
					 (unsigned long long) st.st_size);
	if (rc == 0)
	{
		(void) posix_fadvise(fd, (off_t) offset, (off_t) length, POSIX_FADV_SEQUENTIAL);
		piece = xmalloc(POSIX_READ_PIECE);
	}

	/* fill whole pieces (pread may return less) and push each one on */
	while (rc == 0 && remaining > 0)
	{
		size_t		want = remaining < POSIX_READ_PIECE ? (size_t) remaining : POSIX_READ_PIECE;
		size_t		have = 0;

		while (have < want)
		{
			ssize_t		n = pread(fd, piece + have, want - have, (off_t) (pos + have));

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
			{
				rc = err_set(DRB_ERR_STORAGE, "unable to read '%s' at offset %llu: %m", file,
							 (unsigned long long) (pos + have));
				break;
			}
			if (n == 0)
				break;
			have += (size_t) n;
		}
		if (rc != 0 || have == 0)
			break;
		rc = filter_push(sink, piece, have);
		pos += have;
		remaining -= have;
		if (have < want)
			break;				/* end of file */
	}

	free(piece);
	close(fd);
	free(file);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * write: a sink filter over a temp file, renamed into place by finish
 * ------------------------------------------------------------------------------------- */
typedef struct posix_writer
{
	filter_t	base;
	char	   *file;			/* final name */
	char	   *temp;			/* temp name in the same directory */
	char	   *dir;
	int			fd;				/* -1 once closed */
	bool		renamed;		/* temp is gone: nothing to clean up */
} posix_writer;

static int
writer_process(filter_t *f, const uint8_t *in, size_t len)
{
	posix_writer *w = (posix_writer *) f;

	if (w->fd < 0)
		return err_set(DRB_ERR_INTERNAL, "write to '%s' after it was finished", w->file);
	while (len > 0)
	{
		ssize_t		n = write(w->fd, in, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", w->temp);
		in += n;
		len -= (size_t) n;
	}
	return 0;
}

static int
writer_finish(filter_t *f)
{
	posix_writer *w = (posix_writer *) f;
	int			fd = w->fd;

	if (fd < 0)
		return err_set(DRB_ERR_INTERNAL, "'%s' finished twice or after a failure", w->file);
	w->fd = -1;
	if (fsync(fd) != 0)
	{
		int			rc = err_set(DRB_ERR_STORAGE, "unable to sync '%s': %m", w->temp);

		close(fd);
		return rc;
	}
	/* NFS reports some write errors only at close */
	if (close(fd) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", w->temp);
	if (rename(w->temp, w->file) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %m", w->temp, w->file);
	w->renamed = true;
	if (sync_dir(w->dir) != 0)
		return err_wrap("'%s' was written but may not be durable", w->file);
	return filter_finish(f->next);
}

static void
writer_destroy(filter_t *f)
{
	posix_writer *w = (posix_writer *) f;

	if (w->fd >= 0)
		close(w->fd);
	if (!w->renamed)
		(void) unlink(w->temp);
	free(w->file);
	free(w->temp);
	free(w->dir);
	free(w);
}

static const filter_ops writer_ops = {"posix-writer", writer_process, writer_finish, writer_destroy};

static filter_t *
posix_write_open(storage_t *base, const char *path)
{
	posix_storage *s = (posix_storage *) base;
	posix_writer *w = xcalloc(1, sizeof(*w));
	unsigned long seq = __atomic_fetch_add(&temp_counter, 1, __ATOMIC_RELAXED);

	w->base.ops = &writer_ops;
	w->file = full_path(s, path);
	w->temp = xasprintf("%s" TEMP_MARK "%d.%lu", w->file, (int) getpid(), seq);
	w->dir = parent_dir(w->file);
	w->renamed = true;			/* nothing to remove until the temp file exists */

	w->fd = open(w->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (w->fd < 0 && errno == ENOENT)
	{
		if (make_dirs(w->dir) != 0)
		{
			err_wrap("unable to open '%s' for write", w->file);
			writer_destroy(&w->base);
			return NULL;
		}
		w->fd = open(w->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	}
	if (w->fd < 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to create temporary file '%s' for '%s': %m", w->temp,
				w->file);
		writer_destroy(&w->base);
		return NULL;
	}
	w->renamed = false;
	return &w->base;
}

/* ---------------------------------------------------------------------------------------
 * head
 * ------------------------------------------------------------------------------------- */
static int
posix_head(storage_t *base, const char *path, storage_info *out)
{
	posix_storage *s = (posix_storage *) base;
	char	   *file = full_path(s, path);
	struct stat st;
	int			rc = 0;

	if (stat(file, &st) != 0)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			rc = err_set(DRB_ERR_NOT_FOUND, "unable to stat missing file '%s'", file);
		else
			rc = err_set(DRB_ERR_STORAGE, "unable to stat '%s': %m", file);
	}
	else if (!S_ISREG(st.st_mode))
		rc = err_set(DRB_ERR_NOT_FOUND, "unable to stat '%s': not a regular file", file);
	else
	{
		out->path = path;
		out->size = (uint64_t) st.st_size;
		out->mtime = (int64_t) st.st_mtime;
	}
	free(file);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * list: depth first, one directory's names in memory per level, sorted so that the
 * concatenated paths come out in byte order (a directory sorts as "name/")
 * ------------------------------------------------------------------------------------- */
typedef struct list_entry
{
	char	   *name;
	bool		dir;
	uint64_t	size;
	int64_t		mtime;
} list_entry;

static int
list_entry_cmp(const void *x, const void *y)
{
	const list_entry *a = x;
	const list_entry *b = y;
	const unsigned char *p = (const unsigned char *) a->name;
	const unsigned char *q = (const unsigned char *) b->name;
	int			ca;
	int			cb;

	while (*p && *p == *q)
	{
		p++;
		q++;
	}
	ca = *p ? *p : a->dir ? '/' : 0;
	cb = *q ? *q : b->dir ? '/' : 0;
	return ca - cb;
}

static void
list_entries_free(list_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/*
 * Read directory root/rel (rel is "" or ends with '/'), keeping files and directories
 * whose names start with name_prefix, temp files excluded. A missing directory is empty.
 */
static int
list_read_dir(const posix_storage *s, const char *rel, const char *name_prefix,
			  list_entry **out, size_t *count)
{
	char	   *dirpath = xasprintf("%s/%s", s->root, rel);
	size_t		plen = strlen(name_prefix);
	list_entry *e = NULL;
	size_t		n = 0;
	size_t		cap = 0;
	struct dirent *de;
	DIR		   *d;
	int			rc = 0;

	*out = NULL;
	*count = 0;
	d = opendir(dirpath);
	if (d == NULL)
	{
		if (errno != ENOENT && errno != ENOTDIR)
			rc = err_set(DRB_ERR_STORAGE, "unable to list directory '%s': %m", dirpath);
		free(dirpath);
		return rc;
	}
	for (;;)
	{
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (de == NULL)
		{
			if (errno != 0)
				rc = err_set(DRB_ERR_STORAGE, "unable to list directory '%s': %m", dirpath);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			strncmp(de->d_name, name_prefix, plen) != 0 || strstr(de->d_name, TEMP_MARK) != NULL)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
		{
			if (errno == ENOENT)
				continue;		/* removed while we list */
			rc = err_set(DRB_ERR_STORAGE, "unable to stat '%s%s': %m", dirpath, de->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			e = xrealloc(e, cap * sizeof(list_entry));
		}
		e[n].name = xstrdup(de->d_name);
		e[n].dir = S_ISDIR(st.st_mode);
		e[n].size = (uint64_t) st.st_size;
		e[n].mtime = (int64_t) st.st_mtime;
		n++;
	}
	closedir(d);
	free(dirpath);
	if (rc != 0)
	{
		list_entries_free(e, n);
		return rc;
	}
	if (n > 1)
		qsort(e, n, sizeof(list_entry), list_entry_cmp);
	*out = e;
	*count = n;
	return 0;
}

/* rel: buffer holding the relative directory ("" or "a/b/"), restored on return. */
static int
list_walk(const posix_storage *s, buf_t *rel, const char *name_prefix, storage_list_cb cb,
		  void *arg)
{
	list_entry *e;
	size_t		n;
	size_t		rel_len = rel->len;
	int			rc;

	rc = list_read_dir(s, buf_cstr(rel), name_prefix, &e, &n);
	for (size_t i = 0; rc == 0 && i < n; i++)
	{
		buf_append_str(rel, e[i].name);
		if (e[i].dir)
		{
			buf_append_str(rel, "/");
			rc = list_walk(s, rel, "", cb, arg);
		}
		else
		{
			storage_info info = {buf_cstr(rel), e[i].size, e[i].mtime};

			rc = cb(&info, arg);
		}
		rel->len = rel_len;
	}
	list_entries_free(e, n);
	return rc;
}

static int
posix_list(storage_t *base, const char *prefix, storage_list_cb cb, void *arg)
{
	posix_storage *s = (posix_storage *) base;
	const char *slash = strrchr(prefix, '/');
	buf_t		rel;
	int			rc;

	/* start in the prefix's directory; its last component filters that directory's names */
	buf_init(&rel);
	if (slash)
		buf_append(&rel, prefix, (size_t) (slash - prefix) + 1);
	rc = list_walk(s, &rel, slash ? slash + 1 : prefix, cb, arg);
	buf_free(&rel);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * remove, free
 * ------------------------------------------------------------------------------------- */
static int
posix_remove(storage_t *base, const char *path)
{
	posix_storage *s = (posix_storage *) base;
	char	   *file = full_path(s, path);
	int			rc = 0;

	if (unlink(file) != 0 && errno != ENOENT && errno != ENOTDIR)
		rc = err_set(DRB_ERR_STORAGE, "unable to remove '%s': %m", file);
	free(file);
	return rc;
}

static int
posix_remove_many(storage_t *base, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (posix_remove(base, paths[i]) != 0)
			return -1;
	return 0;
}

static void
posix_free(storage_t *base)
{
	posix_storage *s = (posix_storage *) base;

	free(s->root);
	free(s->base.description);
	free(s);
}

static const storage_ops posix_ops = {
	.type = "posix",
	.read = posix_read,
	.write_open = posix_write_open,
	.head = posix_head,
	.list = posix_list,
	.remove = posix_remove,
	.remove_many = posix_remove_many,
	.free = posix_free,
};

storage_t *
storage_posix_new(const char *root)
{
	posix_storage *s;
	size_t		n;

	if (root == NULL || root[0] != '/')
	{
		err_set(DRB_ERR_CONFIG, "posix repository path '%s' is not an absolute path",
				root ? root : "(null)");
		return NULL;
	}
	n = strlen(root);
	while (n > 0 && root[n - 1] == '/')
		n--;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &posix_ops;
	s->root = xstrndup(root, n);
	s->base.description = xasprintf("posix:%s", n ? s->root : "/");
	return &s->base;
}
