/*
 * backup_file.c — copy one file of the cluster into a filter chain, verifying its pages
 * (see backup_file.h).
 *
 * The file is read in steps of BACKUP_FILE_STEP bytes (1 MiB, a whole number of pages),
 * each step filled completely unless the end of the file comes first, so every page of
 * the file but a trailing partial one is whole within one step. Each step is hashed
 * (SHA-256, OpenSSL EVP), its pages checked, then pushed into the sink.
 *
 * The second read of a page found bad is a pread at the page's offset into a separate
 * page buffer. When that read comes back short (the file was truncated meanwhile, which
 * PostgreSQL only does to pages the WAL replay will deal with) the page is not reported.
 * On failure, out->bad is NULL and the other fields of out are unspecified.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "backup_file.h"
#include "error.h"
#include "mem.h"
#include "page_checksum.h"

#define BACKUP_FILE_STEP	(1024 * 1024)

/* Read until len bytes or the end of the file; returns the count or -1 (errno set). */
static ssize_t
read_full(int fd, uint8_t *buf, size_t len)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		n = read(fd, buf + got, len - got);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t) n;
	}
	return (ssize_t) got;
}

/* pread of one whole page; returns 1 when read whole, 0 when short (truncated), -1 on error. */
static int
reread_page(int fd, uint64_t offset, uint8_t *page)
{
	size_t		got = 0;

	while (got < PG_PAGE_SIZE)
	{
		ssize_t		n = pread(fd, page + got, PG_PAGE_SIZE - got, (off_t) (offset + got));

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		got += (size_t) n;
	}
	return 1;
}

typedef struct bad_list
{
	uint32_t   *blocks;
	size_t		n;
	size_t		cap;
} bad_list;

static void
bad_add(bad_list *bad, uint32_t blkno)
{
	if (bad->n == bad->cap)
	{
		bad->cap = bad->cap ? bad->cap * 2 : 16;
		bad->blocks = xrealloc(bad->blocks, bad->cap * sizeof(uint32_t));
	}
	bad->blocks[bad->n++] = blkno;
}

/*
 * Check the whole pages of one step read at file offset step_off; a page bad on the first
 * read is read again and checked once more. Returns 0 or -1 (err set).
 */
static int
check_step(const char *path, int fd, const uint8_t *buf, size_t len, uint64_t step_off,
		   uint32_t first_blkno, uint64_t start_lsn, uint8_t *page, bad_list *bad,
		   uint64_t *checked)
{
	for (size_t off = 0; off + PG_PAGE_SIZE <= len; off += PG_PAGE_SIZE)
	{
		uint64_t	file_off = step_off + off;
		uint32_t	blkno = first_blkno + (uint32_t) (file_off / PG_PAGE_SIZE);
		int			rc;

		(*checked)++;
		if (page_check(buf + off, blkno, start_lsn) != PAGE_BAD)
			continue;
		rc = reread_page(fd, file_off, page);
		if (rc < 0)
			return err_set(DRB_ERR_STORAGE, "unable to read block %u of '%s' again: %s",
						   blkno, path, strerror(errno));
		if (rc > 0 && page_check(page, blkno, start_lsn) == PAGE_BAD)
			bad_add(bad, blkno);
	}
	return 0;
}

/* Read abs_path to its current end into sink, hashing and (optionally) checking pages. */
int
backup_file_copy(const char *abs_path, bool check_pages, uint32_t first_blkno,
				 uint64_t start_lsn, filter_t *sink, backup_file_result *out)
{
	int			fd;
	uint8_t    *buf = NULL;
	uint8_t    *page = NULL;
	EVP_MD_CTX *md = NULL;
	bad_list	bad = {0};
	uint64_t	total = 0;
	uint64_t	checked = 0;
	unsigned int md_len = 0;
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	fd = open(abs_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return err_set(DRB_ERR_NOT_FOUND, "unable to open missing file '%s' for read",
						   abs_path);
		return err_set(DRB_ERR_STORAGE, "unable to open file '%s' for read: %s", abs_path,
					   strerror(errno));
	}
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
	{
		err_set(DRB_ERR_INTERNAL, "unable to start SHA-256 of '%s'", abs_path);
		goto done;
	}
	buf = xmalloc(BACKUP_FILE_STEP);
	if (check_pages)
		page = xmalloc(PG_PAGE_SIZE);

	for (;;)
	{
		ssize_t		n = read_full(fd, buf, BACKUP_FILE_STEP);

		if (n < 0)
		{
			err_set(DRB_ERR_STORAGE, "unable to read file '%s': %s", abs_path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t) n) != 1)
		{
			err_set(DRB_ERR_INTERNAL, "unable to compute SHA-256 of '%s'", abs_path);
			goto done;
		}
		if (check_pages &&
			check_step(abs_path, fd, buf, (size_t) n, total, first_blkno, start_lsn, page,
					   &bad, &checked) != 0)
			goto done;
		if (filter_push(sink, buf, (size_t) n) != 0)
		{
			err_wrap("unable to back up file '%s': ", abs_path);
			goto done;
		}
		total += (uint64_t) n;
		if ((size_t) n < BACKUP_FILE_STEP)
			break;
	}

	if (EVP_DigestFinal_ex(md, out->sha256, &md_len) != 1 || md_len != sizeof(out->sha256))
	{
		err_set(DRB_ERR_INTERNAL, "unable to finish SHA-256 of '%s'", abs_path);
		goto done;
	}
	out->size = total;
	out->bad = bad.blocks;
	out->nbad = bad.n;
	out->pages_checked = checked;
	bad.blocks = NULL;
	rc = 0;

done:
	free(bad.blocks);
	free(page);
	free(buf);
	EVP_MD_CTX_free(md);
	close(fd);
	return rc;
}
