/*
 * direct_io.h — writing a large file sequentially around the page cache.
 *
 * A restore writes gigabytes that nobody reads soon after; through the page cache every
 * byte is copied into the kernel and every page allocated, managed as dirty and flushed
 * later, which costs about as much CPU as decompressing it. A direct_writer collects the
 * caller's bytes in an aligned buffer and writes each full buffer with O_DIRECT (the disk
 * reads it from our memory), on a helper thread, so that the disk works while the caller
 * produces the next buffer (double buffering: two buffers of DIRECT_BUF_SIZE, 4096-aligned).
 * A caller whose bytes already sit in aligned buffers that stay put for a while (restore
 * decodes a large file into a ring of them) lends them instead: written from there, no
 * copy (measured here: the copy cost a restore of 1.5 GB about 0.15 s of CPU).
 *
 * The file's last bytes (after the last full buffer) are written without O_DIRECT.
 * Where the file system refuses O_DIRECT (fcntl or a write answers EINVAL), the writer
 * falls back to ordinary writes for the rest of the file: never an error of its own.
 * Durability is the caller's: direct_writer_close() leaves the descriptor open and
 * unsynced (an fdatasync is still needed for metadata and the device's cache).
 *
 * Errors: -1 with errno set (no err_set: the caller names the file). A writer serves one
 * file at a time; reuse it for the next file after close. Not thread-safe.
 *
 * (Reading big files with O_DIRECT was measured too and lost here: ordinary reads with
 * the kernel's read-ahead were faster; restore's delta hashing drops what it read from
 * the page cache instead.)
 */
#ifndef DRB_DIRECT_IO_H
#define DRB_DIRECT_IO_H

#include <stddef.h>
#include <stdint.h>

#define DIRECT_BUF_SIZE		(4 * 1024 * 1024)
#define DIRECT_MIN_FILE		(8 * 1024 * 1024)	/* smaller files: plain writes pay off */
#define DIRECT_LENT_DEPTH	2	/* lent pieces queued at most (direct_writer_write_lent) */

typedef struct direct_writer direct_writer;

/* A writer with no file; its two buffers and its thread are made on first use. */
direct_writer *direct_writer_new(void);

/* Start writing the open, empty, writable descriptor fd (not owned) from offset 0. */
void		direct_writer_open(direct_writer *w, int fd);

/* Append len bytes; 0, or -1 with errno (a failed write of an earlier buffer included). */
int			direct_writer_write(direct_writer *w, const void *data, size_t len);

/*
 * Append len bytes written from where they are, with no copy: the caller lends data until
 * the writer has returned from the DIRECT_LENT_DEPTH-th call after this one (write,
 * write_lent or close; close gives everything back), and must not change those bytes
 * before, e.g. one buffer of a ring of DIRECT_LENT_DEPTH + 2 or more that is filled in turn.
 * Pieces are written on the helper, up to DIRECT_LENT_DEPTH queued, so the disk has the
 * next write while the caller makes more: aligned whole blocks (data and len multiples of
 * 4096) with O_DIRECT, anything else through the page cache, as is the rest of that file.
 * Bytes after copied ones (direct_writer_write) are copied too. 0, or -1 with errno.
 */
int			direct_writer_write_lent(direct_writer *w, const void *data, size_t len);

/* Write what is left and wait for the helper: 0, or -1 with errno. fd stays open. */
int			direct_writer_close(direct_writer *w);

/* Whether the last file went (at least partly) around the page cache (for tests). */
int			direct_writer_was_direct(const direct_writer *w);

/* Stop the helper and free everything (a file still open is abandoned, not closed). */
void		direct_writer_free(direct_writer *w);

#endif
