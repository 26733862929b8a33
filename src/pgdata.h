/*
 * pgdata.h — what of a PostgreSQL data directory a backup copies.
 *
 * pgdata_walk visits the data directory and every tablespace, depth first, each directory's
 * names sorted with strcmp, so entries come in manifest order (manifest_path_cmp). Paths
 * given to the callback are relative to the data directory; a tablespace is the link
 * "pg_tblspc/<oid>" followed by the contents of its "PG_<major>_<catversion>" directory
 * (other versions' directories in the same location are not ours and are skipped), under
 * "pg_tblspc/<oid>/PG_.../...". No other symlink is followed (a symlinked pg_wal is
 * recorded as a directory, empty).
 *
 * Left out, as PostgreSQL documents for base backups (basebackup.c, "Backing up the data
 * directory"): the contents of pg_wal (the directory itself and pg_wal/archive_status are
 * kept, empty), pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_stat_tmp, pg_subtrans,
 * pg_replslot; the files postmaster.pid, postmaster.opts, backup_label, tablespace_map,
 * backup_manifest, postgresql.auto.conf.tmp, current_logfiles.tmp, recovery.signal,
 * standby.signal, every pg_internal.init; temporary files and directories (names starting
 * with "pgsql_tmp"); and the forks of unlogged relations except their init fork (a
 * relation directory holding "<relfilenode>_init" drops "<relfilenode>", "<relfilenode>.N",
 * "_fsm", "_vm"). Files that vanish while walking (dropped tables) are skipped silently.
 * Sockets, FIFOs and devices are skipped with a warning.
 */
#ifndef DRB_PGDATA_H
#define DRB_PGDATA_H

#include <stdbool.h>
#include <stdint.h>

typedef enum pgdata_kind
{
	PGDATA_DIR,
	PGDATA_LINK,
	PGDATA_FILE,
} pgdata_kind;

typedef struct pgdata_entry
{
	pgdata_kind kind;
	const char *path;			/* relative to the data directory */
	const char *abs_path;		/* where to read it on this host (through tablespace links) */
	uint32_t	mode;			/* permission bits */
	int64_t		mtime;
	uint64_t	size;			/* files */
	const char *link_target;	/* links: the tablespace location */
	bool		relation;		/* a relation data file whose pages carry checksums
								 * (base/, global/, pg_tblspc/: "<digits>" with an optional
								 * "_fsm"/"_vm"/"_init" fork and ".N" segment suffix) */
	uint32_t	segno;			/* relation files: the ".N" segment number, else 0 */
} pgdata_entry;

/* cb returns 0 to go on, -1 (err set) to stop the walk, which then returns -1. Strings in
 * the entry are valid during the call only. */
typedef int (*pgdata_cb) (const pgdata_entry *e, void *arg);

/*
 * Walk pgdata (absolute path). pg_major selects the tablespace directory name prefix
 * "PG_<major>_". An unreadable directory or file stat error other than vanishing is
 * DRB_ERR_STORAGE naming the path.
 */
int			pgdata_walk(const char *pgdata, int pg_major, pgdata_cb cb, void *arg);

/* True when name (a file name, no directory) is a relation file name as above; segno
 * receives the ".N" suffix (0 when none). */
bool		pgdata_relation_name(const char *name, uint32_t *segno);

#endif
