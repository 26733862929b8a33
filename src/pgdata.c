/*
 * pgdata.c — what of a PostgreSQL data directory a backup copies (see pgdata.h).
 *
 * The walk reads one directory at a time into a sorted array of names and recurses depth
 * first, so memory is the name lists of the directories on the current path. Each
 * directory is walked with a role that says which rules apply to its names:
 *
 *   root        the excluded files and directories of pgdata.h (matched at this level
 *               only: PostgreSQL matches them by name at any depth, but they only ever
 *               exist at the top); "pg_wal" is emitted as a directory (also when it is a
 *               symlink: its target's mode) followed by "pg_wal/archive_status" (and, for
 *               PostgreSQL 17 and later, "pg_wal/summaries"), always, like basebackup.c
 *               does, because the server needs them at startup; the excluded-contents
 *               directories are emitted themselves, empty (the server needs them too)
 *   pg_tblspc   a symlink is a tablespace: PGDATA_LINK (link_target = readlink), then its
 *               location; a plain directory (an in-place tablespace) is walked the same
 *   location    only the "PG_<major>_" directories are ours; everything else is skipped
 *   db parent   base/ and PG_<major>_*: a directory named by digits is a database
 *   db          relation files (relation = true, segno); temporary relations
 *               "t<backend>_<relfilenode>[_fork][.N]" are skipped (basebackup.c does the
 *               same: they are gone after a restart anyway); forks of unlogged relations
 *               (those with a "<relfilenode>_init" in the same directory) are skipped,
 *               except the init fork
 *   global      relation files (relation = true)
 *   plain       everything else
 *
 * Everywhere: names starting with "pgsql_tmp" and "pg_internal.init" (a prefix, as in
 * basebackup.c: the server writes "pg_internal.init.<pid>" first) are skipped. A symlink
 * other than a tablespace or pg_wal is emitted as PGDATA_LINK (link_target = readlink)
 * without following it, with a warning (its target's contents are not in the backup).
 * Paths that vanish (ENOENT) between readdir and lstat/opendir/readlink are skipped
 * silently; a tablespace link whose location is missing is emitted without contents, with
 * a warning. The data directory itself has no entry (paths are relative to it); that it
 * is missing or not a directory is DRB_ERR_STORAGE.
 *
 * Relation names accept what PostgreSQL writes: a relfilenode of 1 to 10 digits without
 * a leading zero (at most 4294967295), an optional fork "_fsm", "_vm" or "_init", an
 * optional segment ".N" (N >= 1, no leading zero).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "pgdata.h"

typedef enum dir_role
{
	ROLE_ROOT,
	ROLE_TBLSPC,
	ROLE_LOCATION,
	ROLE_DB_PARENT,
	ROLE_DB,
	ROLE_GLOBAL,
	ROLE_PLAIN,
} dir_role;

typedef enum rel_fork
{
	FORK_MAIN,
	FORK_FSM,
	FORK_VM,
	FORK_INIT,
} rel_fork;

typedef struct walk_ctx
{
	int			pg_major;
	char		version_prefix[32]; /* "PG_15_" */
	pgdata_cb	cb;
	void	   *arg;
} walk_ctx;

/* Files left out at the top of the data directory (basebackup.c's list). */
static const char *const excluded_root_files[] = {
	"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map",
	"backup_manifest", "postgresql.auto.conf.tmp", "current_logfiles.tmp",
	"recovery.signal", "standby.signal", NULL
};

/* Directories kept, empty, at the top of the data directory. */
static const char *const excluded_root_contents[] = {
	"pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp",
	"pg_subtrans", "pg_replslot", NULL
};

static bool
in_list(const char *name, const char *const *list)
{
	for (int i = 0; list[i] != NULL; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

/*
 * Parse an unsigned decimal number of 1 to 10 digits without a leading zero and at most
 * UINT32_MAX at *p; advances *p past it. Returns false (and leaves *p) if there is none.
 */
static bool
parse_u32(const char **p, uint32_t *out)
{
	const char *s = *p;
	uint64_t	v = 0;
	int			n = 0;

	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9')
	{
		if (++n > 10)
			return false;
		v = v * 10 + (uint64_t) (*s - '0');
		s++;
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t) v;
	*p = s;
	return true;
}

/*
 * Parse "<relfilenode>[_fork][.N]"; *node_len receives the length of the relfilenode
 * digits. Returns false when name is not a relation file name.
 */
static bool
parse_relation(const char *name, size_t *node_len, rel_fork *fork, uint32_t *segno)
{
	const char *p = name;
	uint32_t	node;
	uint32_t	seg = 0;
	rel_fork	f = FORK_MAIN;

	if (!parse_u32(&p, &node))
		return false;
	*node_len = (size_t) (p - name);
	if (*p == '_')
	{
		if (strncmp(p, "_fsm", 4) == 0)
		{
			f = FORK_FSM;
			p += 4;
		}
		else if (strncmp(p, "_vm", 3) == 0)
		{
			f = FORK_VM;
			p += 3;
		}
		else if (strncmp(p, "_init", 5) == 0)
		{
			f = FORK_INIT;
			p += 5;
		}
		else
			return false;
	}
	if (*p == '.')
	{
		p++;
		if (!parse_u32(&p, &seg))
			return false;
	}
	if (*p != '\0')
		return false;
	*fork = f;
	*segno = seg;
	return true;
}

/* True when name is a relation file name (see pgdata.h); segno may be NULL. */
bool
pgdata_relation_name(const char *name, uint32_t *segno)
{
	size_t		node_len;
	rel_fork	fork;
	uint32_t	seg;

	if (!parse_relation(name, &node_len, &fork, &seg))
		return false;
	if (segno != NULL)
		*segno = seg;
	return true;
}

/* "t<backend id>_<relation file name>": a temporary relation's file. */
static bool
temp_relation_name(const char *name)
{
	const char *p = name + 1;
	uint32_t	backend;
	size_t		node_len;
	rel_fork	fork;
	uint32_t	seg;

	if (name[0] != 't' || !parse_u32(&p, &backend) || *p != '_')
		return false;
	return parse_relation(p + 1, &node_len, &fork, &seg);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * Read the names of directory abs (without "." and "..") sorted with strcmp. Returns 0,
 * 1 when the directory vanished (ENOENT; *names NULL), or -1 with err set.
 */
static int
read_names(const char *abs, char ***names_out, size_t *n_out)
{
	DIR		   *dir;
	struct dirent *de;
	char	  **names = NULL;
	size_t		n = 0;
	size_t		cap = 0;

	*names_out = NULL;
	*n_out = 0;
	dir = opendir(abs);
	if (dir == NULL)
	{
		if (errno == ENOENT)
			return 1;
		return err_set(DRB_ERR_STORAGE, "unable to open directory '%s': %s", abs,
					   strerror(errno));
	}
	for (;;)
	{
		errno = 0;
		de = readdir(dir);
		if (de == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(char *));
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (errno != 0)
	{
		int			e = errno;

		closedir(dir);
		free_names(names, n);
		return err_set(DRB_ERR_STORAGE, "unable to read directory '%s': %s", abs, strerror(e));
	}
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof(char *), name_cmp);
	*names_out = names;
	*n_out = n;
	return 0;
}

/* True when the sorted names hold "<first node_len chars of name>_init". */
static bool
has_init_fork(char **names, size_t n, const char *name, size_t node_len)
{
	char		key[32];
	const char *k = key;

	snprintf(key, sizeof(key), "%.*s_init", (int) node_len, name);
	return bsearch(&k, names, n, sizeof(char *), name_cmp) != NULL;
}

/* A file of a database directory that the backup leaves out. */
static bool
db_file_excluded(char **names, size_t n, const char *name)
{
	size_t		node_len;
	rel_fork	fork;
	uint32_t	seg;

	if (temp_relation_name(name))
		return true;
	if (!parse_relation(name, &node_len, &fork, &seg) || fork == FORK_INIT)
		return false;
	return has_init_fork(names, n, name, node_len);
}

static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int
emit(walk_ctx *ctx, pgdata_kind kind, const char *rel, const char *abs, const struct stat *st,
	 const char *link_target, bool relation, uint32_t segno)
{
	pgdata_entry e = {0};

	e.kind = kind;
	e.path = rel;
	e.abs_path = abs;
	e.mode = (uint32_t) (st->st_mode & 07777);
	e.mtime = (int64_t) st->st_mtime;
	e.size = kind == PGDATA_FILE ? (uint64_t) st->st_size : 0;
	e.link_target = link_target;
	e.relation = relation;
	e.segno = relation ? segno : 0;
	return ctx->cb(&e, ctx->arg);
}

/* readlink into a new string; NULL with errno set on failure. */
static char *
read_link(const char *abs)
{
	size_t		cap = 256;

	for (;;)
	{
		char	   *target = xmalloc(cap);
		ssize_t		len = readlink(abs, target, cap);

		if (len < 0)
		{
			int			e = errno;

			free(target);
			errno = e;
			return NULL;
		}
		if ((size_t) len < cap)
		{
			target[len] = '\0';
			return target;
		}
		free(target);
		cap *= 2;
	}
}

static int	walk_dir(walk_ctx *ctx, const char *rel, const char *abs, dir_role role);

/*
 * pg_wal: a directory (whatever it is on disk) with archive_status (and summaries from
 * PostgreSQL 17), never its contents. st is pg_wal's lstat.
 */
static int
emit_pg_wal(walk_ctx *ctx, const char *rel, const char *abs, const struct stat *lst)
{
	static const char *const subdirs[] = {"archive_status", "summaries"};
	struct stat st = *lst;
	struct stat target;

	if (S_ISLNK(lst->st_mode))
	{
		if (stat(abs, &target) == 0 && S_ISDIR(target.st_mode))
			st = target;
		else
			st.st_mode = S_IFDIR | 0700;
	}
	if (emit(ctx, PGDATA_DIR, rel, abs, &st, NULL, false, 0) != 0)
		return -1;
	for (int i = 0; i < 2; i++)
	{
		char	   *sub_rel;
		char	   *sub_abs;
		struct stat sub_st;
		int			rc;

		if (i == 1 && ctx->pg_major < 17)
			break;
		sub_rel = xasprintf("%s/%s", rel, subdirs[i]);
		sub_abs = xasprintf("%s/%s", abs, subdirs[i]);
		/* its own mode when present, pg_wal's otherwise (basebackup.c does the same) */
		if (lstat(sub_abs, &sub_st) != 0 || !S_ISDIR(sub_st.st_mode))
			sub_st = st;
		rc = emit(ctx, PGDATA_DIR, sub_rel, sub_abs, &sub_st, NULL, false, 0);
		free(sub_rel);
		free(sub_abs);
		if (rc != 0)
			return -1;
	}
	return 0;
}

/* A symlink in pg_tblspc: the link, then the location's PG_<major>_ directories. */
static int
walk_tablespace(walk_ctx *ctx, const char *rel, const char *abs, const struct stat *lst)
{
	char	   *target = read_link(abs);
	int			rc;

	if (target == NULL)
	{
		if (errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to read tablespace link '%s': %s", abs,
					   strerror(errno));
	}
	rc = emit(ctx, PGDATA_LINK, rel, abs, lst, target, false, 0);
	if (rc == 0)
	{
		struct stat st;

		if (stat(abs, &st) != 0 && errno == ENOENT)
			log_warn("tablespace '%s' points to missing location '%s': skipped", rel, target);
		else
			rc = walk_dir(ctx, rel, abs, ROLE_LOCATION);
	}
	free(target);
	return rc;
}

/* Any other symlink: recorded as a link, not followed. */
static int
emit_other_link(walk_ctx *ctx, const char *rel, const char *abs, const struct stat *lst)
{
	char	   *target = read_link(abs);
	int			rc;

	if (target == NULL)
	{
		if (errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to read symlink '%s': %s", abs, strerror(errno));
	}
	log_warn("symlink '%s' is backed up as a link to '%s', without its target's contents",
			 rel, target);
	rc = emit(ctx, PGDATA_LINK, rel, abs, lst, target, false, 0);
	free(target);
	return rc;
}

/* The role of directory name found in a directory of role parent (see the file comment). */
static dir_role
child_role(dir_role parent, const char *name, bool *contents)
{
	*contents = true;
	switch (parent)
	{
		case ROLE_ROOT:
			if (in_list(name, excluded_root_contents))
				*contents = false;
			if (strcmp(name, "base") == 0)
				return ROLE_DB_PARENT;
			if (strcmp(name, "global") == 0)
				return ROLE_GLOBAL;
			if (strcmp(name, "pg_tblspc") == 0)
				return ROLE_TBLSPC;
			return ROLE_PLAIN;
		case ROLE_TBLSPC:
			return ROLE_LOCATION;
		case ROLE_LOCATION:
			return ROLE_DB_PARENT;	/* a PG_<major>_ directory (walk_entry checked) */
		case ROLE_DB_PARENT:
			return all_digits(name) ? ROLE_DB : ROLE_PLAIN;
		default:
			return ROLE_PLAIN;
	}
}

/* One name of directory (rel, abs) of role role; names is the directory's sorted listing. */
static int
walk_entry(walk_ctx *ctx, dir_role role, char **names, size_t n, const char *name,
		   const char *rel, const char *abs)
{
	struct stat st;

	if (strncmp(name, "pgsql_tmp", 9) == 0 || strncmp(name, "pg_internal.init", 16) == 0)
		return 0;
	if (role == ROLE_ROOT && in_list(name, excluded_root_files))
		return 0;
	if (role == ROLE_LOCATION && strncmp(name, ctx->version_prefix, strlen(ctx->version_prefix)) != 0)
	{
		log_debug("skipped '%s': not this PostgreSQL version's tablespace directory", rel);
		return 0;
	}
	if (lstat(abs, &st) != 0)
	{
		if (errno == ENOENT)
			return 0;
		return err_set(DRB_ERR_STORAGE, "unable to stat '%s': %s", abs, strerror(errno));
	}

	if (role == ROLE_ROOT && strcmp(name, "pg_wal") == 0 &&
		(S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
		return emit_pg_wal(ctx, rel, abs, &st);

	if (S_ISLNK(st.st_mode))
	{
		if (role == ROLE_LOCATION)
			return 0;			/* not a version directory */
		if (role == ROLE_TBLSPC)
			return walk_tablespace(ctx, rel, abs, &st);
		return emit_other_link(ctx, rel, abs, &st);
	}

	if (S_ISDIR(st.st_mode))
	{
		bool		contents;
		dir_role	sub = child_role(role, name, &contents);

		if (emit(ctx, PGDATA_DIR, rel, abs, &st, NULL, false, 0) != 0)
			return -1;
		return contents ? walk_dir(ctx, rel, abs, sub) : 0;
	}

	if (S_ISREG(st.st_mode))
	{
		bool		relation = false;
		uint32_t	segno = 0;

		if (role == ROLE_LOCATION)
			return 0;			/* a file named PG_<major>_...: not a version directory */
		if (role == ROLE_DB && db_file_excluded(names, n, name))
			return 0;
		if (role == ROLE_DB || role == ROLE_GLOBAL)
			relation = pgdata_relation_name(name, &segno);
		return emit(ctx, PGDATA_FILE, rel, abs, &st, NULL, relation, segno);
	}

	log_warn("skipped '%s': not a regular file, directory or symlink", rel);
	return 0;
}

/* Walk the contents of directory (rel, abs); rel is "" for the data directory itself. */
static int
walk_dir(walk_ctx *ctx, const char *rel, const char *abs, dir_role role)
{
	char	  **names;
	size_t		n;
	int			rc;

	rc = read_names(abs, &names, &n);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	for (size_t i = 0; i < n && rc == 0; i++)
	{
		char	   *child_rel = *rel ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		char	   *child_abs = xasprintf("%s/%s", abs, names[i]);

		rc = walk_entry(ctx, role, names, n, names[i], child_rel, child_abs);
		free(child_rel);
		free(child_abs);
	}
	free_names(names, n);
	return rc;
}

/* Walk pgdata in manifest order, calling cb for every entry a backup copies. */
int
pgdata_walk(const char *pgdata, int pg_major, pgdata_cb cb, void *arg)
{
	walk_ctx	ctx;
	struct stat st;
	char	   *root;
	size_t		len;
	int			rc;

	if (stat(pgdata, &st) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to stat data directory '%s': %s", pgdata,
					   strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(DRB_ERR_STORAGE, "data directory '%s' is not a directory", pgdata);
	ctx.pg_major = pg_major;
	snprintf(ctx.version_prefix, sizeof(ctx.version_prefix), "PG_%d_", pg_major);
	ctx.cb = cb;
	ctx.arg = arg;
	/* no trailing '/': paths are built as root + "/" + name */
	root = xstrdup(pgdata);
	len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		root[--len] = '\0';
	rc = walk_dir(&ctx, "", root, ROLE_ROOT);
	free(root);
	return rc;
}
