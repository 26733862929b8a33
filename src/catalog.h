/*
 * catalog.h — the backup catalog of a stanza in one repository: every complete backup.
 *
 * Stored at stanza/<s>/backup/backup.catalog and the redundant copy backup.catalog.copy,
 * through the repository pipeline (checksummed; encrypted when the repository is). JSON
 * (docs/backup-format.md):
 *   {"format":1,"stanza":"main","backups":[{...catalog_backup...}, ...]}
 * with backups in label order (= start order). A backup is listed only once it is
 * complete in that repository (its manifest written and its WAL archived); a backup
 * directory without a catalog entry is an interrupted backup.
 *
 * Writing is atomic per object (storage contract); the main object is written first, then
 * the copy, so one of them is always whole. Reading uses the copy when the main object is
 * missing or damaged (with a warning). The catalog is small (one record per backup) and
 * held in memory.
 */
#ifndef DRB_CATALOG_H
#define DRB_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "repo.h"

#define CATALOG_FORMAT		1
#define CATALOG_FILE		"backup.catalog"
#define CATALOG_FILE_COPY	"backup.catalog.copy"

/* Result of the last restore test of a backup (issue: restore-test); absent = never. */
typedef struct catalog_restore_test
{
	bool		present;
	bool		success;
	int64_t		time;			/* when it ran (seconds since the epoch) */
	double		duration;		/* seconds, all phases */
	char	   *target;			/* recovery target reached or requested, free text */
	char	   *failed_check;	/* NULL on success */
} catalog_restore_test;

/* One backup: the manifest header's summary. Strings owned by the catalog. */
typedef struct catalog_backup
{
	char	   *label;
	backup_type type;
	char	   *parent;			/* NULL for full */
	char	  **references;		/* labels whose objects this backup's manifest refers to
								 * (itself included), i.e. what must be kept to restore it */
	size_t		nreferences;
	uint64_t	system_id;
	int			pg_version;
	uint32_t	timeline;
	uint64_t	start_lsn;
	uint64_t	stop_lsn;
	int64_t		start_time;
	int64_t		stop_time;
	char		wal_start[25];
	char		wal_stop[25];
	uint32_t	wal_segment_size;
	uint64_t	file_count;
	uint64_t	size;			/* cluster bytes */
	uint64_t	size_copied;	/* bytes this backup stored */
	uint64_t	repo_size;		/* bytes of this backup's objects in the repository */
	uint64_t	damaged_pages;
	double		duration;		/* seconds the backup took */
	uint8_t		manifest_sha256[32];	/* of the manifest's plain text */
	catalog_restore_test restore_test;
} catalog_backup;

typedef struct catalog
{
	char	   *stanza;
	catalog_backup *backups;	/* sorted by label */
	size_t		nbackups;
} catalog;

/* An empty catalog for stanza (as when no backup was ever taken). */
void		catalog_init(catalog *c, const char *stanza);
void		catalog_free(catalog *c);

/*
 * Read the catalog of stanza from repo (copy used when the main object is missing or
 * damaged). Neither object present: an empty catalog, success. Both damaged, or content
 * that is not a valid catalog (hostile JSON, unsafe labels): DRB_ERR_INTEGRITY naming the
 * object.
 */
int			catalog_read(repo_t *repo, const char *stanza, catalog *out);

/* Write main then copy. */
int			catalog_write(repo_t *repo, const catalog *c);

/* Lookup; NULL when absent. */
catalog_backup *catalog_find(const catalog *c, const char *label);

/* Newest backup (any type, or of a type when type >= 0); NULL when none. */
catalog_backup *catalog_latest(const catalog *c, int type);

/*
 * Insert a copy of b (deep copy; label order kept; a record with the same label is
 * replaced). A summary from a manifest header: catalog_backup_from_header.
 */
void		catalog_add(catalog *c, const catalog_backup *b);

/* Remove the record of label (no-op when absent). */
void		catalog_remove(catalog *c, const char *label);

/* Fill b from a manifest header (deep copies; references: parent's references + label;
 * parent NULL = just label). Caller frees with catalog_backup_clear. */
void		catalog_backup_from_header(catalog_backup *b, const manifest_header *h,
									   const catalog_backup *parent, double duration,
									   const uint8_t manifest_sha256[32]);
void		catalog_backup_clear(catalog_backup *b);

/*
 * Backup labels: full "YYYYMMDD-HHMMSSF"; diff/incr "<full label>_YYYYMMDD-HHMMSS{D|I}"
 * (the full they descend from, then their own start time, UTC). Returns a new string.
 * backup_label_valid checks the syntax (used on hostile input too).
 */
char	   *backup_label_make(backup_type type, const char *full_label, int64_t when);
bool		backup_label_valid(const char *label);

/* The type a label names (its last letter: F, D, I); -1 when the label is not valid. */
int			backup_label_type(const char *label);

/*
 * Whether the backup label may refer to ref (use its objects, be based on it): ref is
 * label itself or an earlier backup of the same chain (the same full label in its first
 * 16 characters, sorting before label). False when either is not a valid label.
 */
bool		backup_label_in_chain(const char *label, const char *ref);

#endif
