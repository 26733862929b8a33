/*
 * backup_file.h — copy one file of the cluster into a filter chain, verifying its pages.
 *
 * backup_file_copy reads the file at abs_path from its start to its end *as it is now*
 * (PostgreSQL may extend or truncate relation files during a backup; WAL replay from the
 * backup's start fixes whatever was read mid-change, so the size read is what counts and
 * is returned), pushes every byte into sink (never finishing it: the caller may append
 * more files to the same bundle object), and computes the SHA-256 and size of exactly
 * those bytes.
 *
 * With check_pages, each whole 8 KiB page is classified with page_check (page_checksum.h)
 * using block number first_blkno + page index. A PAGE_BAD page is read again from the
 * file with pread (a concurrent write may have torn the first read) and checked once
 * more; only a page that is bad twice is reported in bad[] — and the bytes pushed are
 * those of the first read (a valid backup either way: replay rewrites pages newer than the
 * start). A trailing partial page is not checked.
 *
 * Memory: one read buffer (1 MiB), whatever the file size. A file that vanished since the
 * walk (ENOENT) fails with DRB_ERR_NOT_FOUND so the caller can drop it from the backup;
 * other read errors are DRB_ERR_STORAGE naming the file.
 */
#ifndef DRB_BACKUP_FILE_H
#define DRB_BACKUP_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"

typedef struct backup_file_result
{
	uint64_t	size;			/* bytes read and pushed */
	uint8_t		sha256[32];		/* of those bytes */
	uint32_t   *bad;			/* damaged blocks, ascending (caller frees) */
	size_t		nbad;
	uint64_t	pages_checked;	/* pages classified (statistics) */
} backup_file_result;

int			backup_file_copy(const char *abs_path, bool check_pages, uint32_t first_blkno,
							 uint64_t start_lsn, filter_t *sink, backup_file_result *out);

#endif
