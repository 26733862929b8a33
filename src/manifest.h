/*
 * manifest.h — the manifest of one backup: every directory, link and file of the cluster as
 * the backup saw it, and where each file's bytes are in the repository.
 *
 * Stored per repository at stanza/<s>/backup/<label>/backup.manifest and the redundant copy
 * backup.manifest.copy, both through the repository pipeline (checksummed, compressed,
 * encrypted when the repository is). The plain text is JSON lines (docs/backup-format.md):
 *
 *   line 1   {"format":1,"label":..,...}            the backup (manifest_header)
 *   then     one line per entry, in manifest order (manifest_path_cmp):
 *            {"t":"d","p":"base","m":448,"mt":..}
 *            {"t":"l","p":"pg_tblspc/16385","m":511,"mt":..,"dst":"/srv/ts1"}
 *            {"t":"f","p":"base/5/1259","m":384,"mt":..,"s":8192,"h":"<sha256 hex>",
 *             "r":"<label of the backup holding the bytes>","o":"<object>","off":0,
 *             "bad":[3,17]}
 *   last     {"end":true,"entries":N}                (a manifest cut short is detected)
 *
 * Memory: writing and reading stream one entry at a time, whatever the number of files
 * (a 1,000,000-file manifest never sits in memory). Paths are relative to the data
 * directory ('/'-separated, no "." or ".." components, no leading '/'); tablespace files
 * are under "pg_tblspc/<oid>/...".
 */
#ifndef DRB_MANIFEST_H
#define DRB_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo.h"

#define MANIFEST_FORMAT		1
#define MANIFEST_FILE		"backup.manifest"
#define MANIFEST_FILE_COPY	"backup.manifest.copy"

typedef enum backup_type
{
	BACKUP_FULL,
	BACKUP_DIFF,
	BACKUP_INCR,
} backup_type;

const char *backup_type_name(backup_type t);	/* "full", "diff", "incr" */
int			backup_type_parse(const char *name);	/* -1 if unknown */

typedef struct manifest_tablespace
{
	uint32_t	oid;
	char	   *name;
	char	   *location;		/* absolute path on the database host */
} manifest_tablespace;

/* The backup as a whole. Strings are owned (manifest_header_free). */
typedef struct manifest_header
{
	int			format;			/* MANIFEST_FORMAT */
	char	   *label;			/* e.g. 20261121-013000F, 20261121-013000F_20261122-013000I */
	backup_type type;
	char	   *parent;			/* label of the backup it is based on; NULL for full */
	char	   *drbackup_version;
	uint64_t	system_id;
	int			pg_version;		/* major, e.g. 15 */
	int			pg_version_num;	/* e.g. 150018 */
	uint32_t	timeline;		/* of the start LSN */
	uint64_t	start_lsn;
	uint64_t	stop_lsn;
	int64_t		start_time;		/* seconds since the epoch (database server clock) */
	int64_t		stop_time;
	char		wal_start[25];	/* segment of start_lsn, e.g. 000000010000000000000004 */
	char		wal_stop[25];	/* segment of stop_lsn */
	uint32_t	wal_segment_size;
	bool		data_checksums; /* pages were verified */
	char	   *backup_label;	/* as returned by pg_backup_stop */
	char	   *tablespace_map;	/* as returned by pg_backup_stop; NULL when none */
	manifest_tablespace *tablespaces;
	size_t		ntablespaces;
	char	   *compress;		/* compress type name the data objects were written with */
	/* totals */
	uint64_t	file_count;
	uint64_t	size;			/* plain bytes of all files (the cluster's size) */
	uint64_t	size_copied;	/* plain bytes this backup stored (not referenced) */
	uint64_t	repo_size;		/* bytes of this backup's objects in the repository */
	uint64_t	object_count;	/* objects this backup stored (bundles count once) */
	uint64_t	damaged_pages;	/* sum of every file's bad blocks */
} manifest_header;

void		manifest_header_free(manifest_header *h);

typedef enum manifest_entry_type
{
	MANIFEST_DIR = 'd',
	MANIFEST_LINK = 'l',
	MANIFEST_FILE_ENTRY = 'f',
} manifest_entry_type;

/*
 * One entry. When read, the strings and bad[] belong to the reader and stay valid until
 * the next manifest_reader_next; when written, the caller keeps ownership.
 * A file of size 0 has no object (object NULL).
 */
typedef struct manifest_entry
{
	manifest_entry_type type;
	const char *path;
	uint32_t	mode;			/* permission bits (07777) */
	int64_t		mtime;
	const char *link_target;	/* MANIFEST_LINK */
	/* MANIFEST_FILE_ENTRY */
	uint64_t	size;
	uint8_t		sha256[32];
	const char *ref;			/* label of the backup whose objects hold the bytes */
	const char *object;			/* object name relative to that backup's directory,
								 * e.g. "data/b000017" (a bundle) or "data/f000003" */
	uint64_t	offset;			/* offset of the file's plain bytes in the object's plain
								 * stream (0 for an object of its own) */
	const uint32_t *bad;		/* damaged blocks (block numbers of the relation, as
								 * PostgreSQL numbers them across 1 GiB segments) */
	size_t		nbad;
} manifest_entry;

/*
 * Order of entries: path components compared one by one with strcmp, so that a directory
 * comes right before its contents ("base" < "base/1" < "base/1/112" < "base/10" <
 * "base.old"). A walk that visits each directory's names sorted with strcmp, depth
 * first, produces this order. Returns <0, 0, >0.
 */
int			manifest_path_cmp(const char *a, const char *b);

/*
 * Path safety for entries read from a repository (hostile input): relative, non-empty,
 * no empty, "." or ".." component, no leading '/', no control characters.
 */
bool		manifest_path_safe(const char *path);

/* --- writing --- */

typedef struct manifest_writer manifest_writer;

/*
 * Start writing the manifest of h->label into each of repos[0..nrepo-1] (main object and
 * copy, streamed at once). The header is written first, so it must be complete.
 * NULL + err on failure.
 */
manifest_writer *manifest_writer_open(repo_t *const *repos, int nrepo, const char *stanza,
									  const manifest_header *h);

/* Append one entry; entries must come in manifest order (DRB_ERR_INTERNAL otherwise). */
int			manifest_writer_add(manifest_writer *w, const manifest_entry *e);

/* Write the end line and commit every object (visible only now). sha256 (may be NULL)
 * receives the checksum of the plain manifest text. Frees w either way. */
int			manifest_writer_close(manifest_writer *w, uint8_t sha256[32]);

/* Abort: nothing is committed. Frees w. */
void		manifest_writer_abort(manifest_writer *w);

/* --- reading --- */

typedef struct manifest_reader manifest_reader;

/*
 * Open the manifest of label in repo: the main object, or the copy when the main one is
 * missing or fails verification (a warning names the damaged one). The manifest is
 * decoded into an unlinked temporary file first (bounded memory), then read line by line.
 * h receives the header (caller frees with manifest_header_free). Hostile content (bad
 * JSON, unknown format, unsafe path, entries out of order, missing end line, wrong entry
 * count) is DRB_ERR_INTEGRITY naming the object and the line. DRB_ERR_NOT_FOUND when
 * neither object exists.
 */
manifest_reader *manifest_reader_open(repo_t *repo, const char *stanza, const char *label,
									  manifest_header *h);

/*
 * Next entry: 1 and *e filled, 0 at the (verified) end, -1 + err. open has checked the
 * shape (end line, count); each entry is checked as it is read, so a refused entry
 * (DRB_ERR_INTEGRITY naming the object and line) comes from here, and ends the reading.
 */
int			manifest_reader_next(manifest_reader *r, manifest_entry *e);

void		manifest_reader_close(manifest_reader *r);

/* Object path of a backup's file: "stanza/<s>/backup/<label>/<name>"; caller frees. */
char	   *backup_object_path(const char *stanza, const char *label, const char *name);

/* --- field checks shared with the catalog (hostile input) --- */

/* An LSN as PostgreSQL writes it: "X/Y", upper-case hex without leading zeros. */
bool		manifest_lsn_parse(const char *text, uint64_t *lsn);
/* That LSN under key of a JSON object (jansson's json_t; jsonutil.h's jfield_* conventions). */
struct json_t;
bool		manifest_jfield_lsn(struct json_t *obj, const char *key, uint64_t *lsn, char *why);
/* A system identifier as decimal text without leading zeros. */
bool		manifest_sysid_parse(const char *text, uint64_t *sysid);
/* A WAL segment file name (TTTTTTTTXXXXXXXXYYYYYYYY, upper-case hex; see wal.h). */
bool		manifest_wal_segment_valid(const char *name);
/* A WAL segment size PostgreSQL allows: a power of two from 1 MiB to 1 GiB. */
bool		manifest_wal_segment_size_valid(uint64_t size);

#endif
