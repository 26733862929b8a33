/*
 * page_checksum.h — PostgreSQL data page checksums (PostgreSQL 12 to 17, BLCKSZ 8192).
 *
 * pg_checksum_page computes the checksum PostgreSQL stores in pd_checksum (the FNV-1a
 * based algorithm of src/include/storage/checksum_impl.h, with pd_checksum taken as zero,
 * mixed with the block number, reduced modulo 65535 plus one). Block numbers are those of
 * the whole relation: segment file ".N" starts at block N * 131072 (1 GiB / 8 KiB).
 *
 * page_check classifies one page read during a backup, given the backup's start LSN:
 *   PAGE_OK        checksum matches
 *   PAGE_NEW       all zero (a new, never written page: valid)
 *   PAGE_SKIPPED   pd_lsn >= start_lsn: written after the backup started, WAL replay will
 *                  rewrite it, its checksum does not matter (and may be torn right now)
 *   PAGE_BAD       checksum mismatch or an invalid header on a page older than the start
 * A PAGE_BAD page may be one being written while read: the caller reads it again and
 * calls page_check once more before reporting it (archive/backup_file.c does).
 */
#ifndef DRB_PAGE_CHECKSUM_H
#define DRB_PAGE_CHECKSUM_H

#include <stdint.h>

#define PG_PAGE_SIZE		8192
#define PG_RELSEG_BLOCKS	131072u

typedef enum page_status
{
	PAGE_OK,
	PAGE_NEW,
	PAGE_SKIPPED,
	PAGE_BAD,
} page_status;

uint16_t	pg_checksum_page(const uint8_t *page, uint32_t blkno);

/* pd_lsn of a page (the first 8 bytes: xlogid, xrecoff, native order) */
uint64_t	page_lsn(const uint8_t *page);

page_status page_check(const uint8_t *page, uint32_t blkno, uint64_t start_lsn);

#endif
