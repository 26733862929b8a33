/*
 * wal.h — PostgreSQL WAL file names and segment headers (PostgreSQL 12 to 17).
 *
 * File names handed to archive_command / restore_command:
 *   segment   TTTTTTTTXXXXXXXXYYYYYYYY            (timeline, log, segment within log; hex)
 *   partial   TTTTTTTTXXXXXXXXYYYYYYYY.partial   (end of a timeline at promotion)
 *   backup    TTTTTTTTXXXXXXXXYYYYYYYY.XXXXXXXX.backup  (backup history file)
 *   history   TTTTTTTT.history                    (timeline history file)
 * Anything else is not a WAL file. A segment's first page has the long page header:
 * xlp_magic (u16, version-specific), xlp_info (u16, XLP_LONG_HEADER 0x0002), xlp_tli (u32),
 * xlp_pageaddr (u64), xlp_rem_len (u32), padding to 24, xlp_sysid (u64 @24),
 * xlp_seg_size (u32 @32), xlp_xlog_blcksz (u32 @36); native byte order (little-endian here).
 */
#ifndef DRB_WAL_H
#define DRB_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum wal_kind
{
	WAL_SEGMENT,
	WAL_PARTIAL,
	WAL_BACKUP,
	WAL_HISTORY,
} wal_kind;

typedef struct wal_name
{
	wal_kind	kind;
	uint32_t	tli;
	uint32_t	log;			/* segments: XXXXXXXX */
	uint32_t	seg;			/* segments: YYYYYYYY */
	char		name[64];		/* the file name as given */
} wal_name;

#define WAL_LONG_HEADER_SIZE 40

/*
 * Parse a file name (basename only; a path is refused). DRB_ERR_USAGE if not a WAL name:
 * hex digits must be upper case (as PostgreSQL writes them), the timeline is not 0, and
 * YYYYYYYY is below 0x1000 (2^32 / segment size, the smallest segment size being 1 MiB).
 */
int			wal_name_parse(const char *name, wal_name *out);

/*
 * The segment after w (a segment or .partial), for a segment size (bytes, power of two):
 * YYYYYYYY rolls over into the next XXXXXXXX after 2^32 / seg_size segments.
 */
void		wal_segment_next(const wal_name *w, uint32_t seg_size, wal_name *next);

/*
 * The name of segment number pos (log * (2^32 / seg_size) + seg, counted from the start of
 * WAL; the inverse of wal_inventory.h's wal_segment_position) on timeline tli.
 */
void		wal_segment_name(uint32_t tli, uint64_t pos, uint32_t seg_size, char out[25]);

/* WAL page magic (XLOG_PAGE_MAGIC) of a PostgreSQL major version 12..17; 0 if unknown. */
uint16_t	wal_page_magic(int pg_major);

/*
 * Check the long page header (head: the first head_len bytes) of a segment or .partial
 * file against the stanza: magic of pg_major, system identifier, XLP_LONG_HEADER set,
 * segment size a power of two from 1 MiB to 1 GiB, equal to file_size for complete
 * segments (a .partial may be shorter), timeline (not above the name's: a new timeline's
 * first segment begins with a page of the old one) and page address consistent with the
 * name. Another cluster or PostgreSQL version fails with DRB_ERR_STANZA naming the file
 * and both values ("WAL file '...' belongs to system identifier X, the stanza's cluster
 * has system identifier Y"); a header that is not a valid first page (too short, no long
 * header, bad size, address or timeline) with DRB_ERR_INTEGRITY. On success *seg_size is
 * the segment size from the header.
 */
int			wal_header_check(const char *display_name, const uint8_t *head, size_t head_len,
							 uint64_t file_size, const wal_name *w, uint64_t system_id,
							 int pg_major, uint32_t *seg_size);

#endif
