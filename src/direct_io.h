/*
 * direct_io.h — writing a large file sequentially around the page cache.
 *
 * A restore writes gigabytes that nobody reads soon after; through the page cache every
 * byte is copied into the kernel and every page allocated, managed as dirty and flushed
 * later, which costs about as much CPU as decompressing it. A direct_writer collects the
 * caller's bytes in an aligned buffer and writes each full buffer with O_DIRECT (the disk
 * reads it from our memory), on a helper thread, so that the disk works while the caller
 * produces the next buffer (double buffering: two buffers of DIRECT_BUF_SIZE, 4096-aligned;
 * 4 MiB writes, because this machine's disk took smaller O_DIRECT writes at half the rate).
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

typedef struct direct_writer direct_writer;

/* A writer with no file, and its two buffers; the thread is made on first use. */
direct_writer *direct_writer_new(void);

/* Start writing the open, empty, writable descriptor fd (not owned) from offset 0. */
void		direct_writer_open(direct_writer *w, int fd);

/* Append len bytes; 0, or -1 with errno (a failed write of an earlier buffer included). */
int			direct_writer_write(direct_writer *w, const void *data, size_t len);

/* Write what is left and wait for the helper: 0, or -1 with errno. fd stays open. */
int			direct_writer_close(direct_writer *w);

/* Whether the last file went (at least partly) around the page cache (for tests). */
int			direct_writer_was_direct(const direct_writer *w);

/* Stop the helper and free everything (a file still open is abandoned, not closed). */
void		direct_writer_free(direct_writer *w);

#endif
