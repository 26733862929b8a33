/*
 * wal_inventory.h — what WAL one repository holds for a stanza, by timeline, with gaps.
 *
 * Built from one LIST of "stanza/<s>/archive/<archive-id>/" (object names carry the WAL
 * name and checksum: archive.h), so no object is read. Segments are grouped per timeline
 * and sorted by position; consecutive segments (wal_segment_next with the segment size)
 * form a range; a missing segment between two ranges of one timeline is a gap.
 * .partial, .backup and .history objects are kept in their own lists (history files do
 * not count for ranges; .partial ends a timeline and is not a gap filler).
 *
 * Used by info (archive ranges and gaps), expire (what WAL to remove) and verify.
 */
#ifndef DRB_WAL_INVENTORY_H
#define DRB_WAL_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"

typedef struct wal_object
{
	wal_name	w;
	char	   *path;			/* object path in the repository */
	uint8_t		sha256[32];		/* from the name */
	uint64_t	stored_size;
	int64_t		mtime;			/* when it was stored (storage mtime) */
} wal_object;

typedef struct wal_range
{
	uint32_t	tli;
	char		first[25];		/* first segment name of the range */
	char		last[25];		/* last segment name */
	uint64_t	count;			/* segments */
	int64_t		last_mtime;		/* storage mtime of the last segment */
} wal_range;

typedef struct wal_inventory
{
	char	   *archive_id;		/* "<pg major>-<system id>" */
	uint32_t	seg_size;
	wal_object *segments;		/* WAL_SEGMENT only, sorted by (tli, log, seg) */
	size_t		nsegments;
	wal_object *others;			/* .partial, .backup, .history, sorted by name */
	size_t		nothers;
	wal_range  *ranges;			/* per timeline ascending, then by position */
	size_t		nranges;
} wal_inventory;

/*
 * List the archive of r's stanza (archive id from its stanza record). seg_size: the
 * segment size in bytes (from a backup's manifest; 16 MiB when unknown). Objects whose
 * names are not "<wal name>-<64 hex>" are ignored with a warning (not ours). Two objects
 * for one WAL name: DRB_ERR_INTEGRITY naming both.
 */
int			wal_inventory_load(const archive_repo *r, uint32_t seg_size, wal_inventory *out);
void		wal_inventory_free(wal_inventory *inv);

/* Is segment name (24 hex) in the inventory? */
bool		wal_inventory_has(const wal_inventory *inv, const char *segment);

/*
 * Every segment from first to last (names on one timeline, first <= last) present?
 * *missing (may be NULL) receives the first absent one (caller frees) when not.
 */
bool		wal_inventory_has_range(const wal_inventory *inv, const char *first, const char *last,
									char **missing);

/* Position of a segment for comparisons: log * (2^32 / seg_size) + seg. */
uint64_t	wal_segment_position(const wal_name *w, uint32_t seg_size);

#endif
