/*
 * fileutil.h — small local-file helpers shared by the commands.
 *
 * tmpfile_open gives a private scratch file that no one else can see and that vanishes
 * when its descriptor is closed, even after a crash: an O_TMPFILE in $TMPDIR (default
 * /tmp), or, where the file system refuses O_TMPFILE, a mkostemp() file there unlinked at
 * once. file_write_atomic replaces a small file so that a reader sees either the old or
 * the new content, never half of it, and leaves nothing behind on failure.
 *
 * Those two return -1 after err_set() (DRB_ERR_STORAGE, or DRB_ERR_NOT_FOUND when the
 * target's directory does not exist) with a message naming the directory or file;
 * callers add what they were doing with err_wrap(). fd_write_all is the plain write loop
 * under them: -1 with errno, no message, for callers that name the file themselves.
 */
#ifndef DRB_FILEUTIL_H
#define DRB_FILEUTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Open an unlinked temporary file for reading and writing (close-on-exec, mode 0600).
 * what names the user in the fallback's short-lived name ("drbackup-<what>.XXXXXX").
 * Returns the descriptor, owned by the caller, or -1 + err naming the directory.
 */
int			tmpfile_open(const char *what);

/*
 * Replace path with len bytes of data, mode mode: "<path>.drbtmp.<pid>" is written,
 * given the mode, fsynced and renamed over path, then the directory is fsynced (best
 * effort). Returns 0, or -1 + err with the temporary file removed and path untouched.
 */
int			file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/*
 * Write all len bytes of data to fd, retrying short writes and EINTR: 0, or -1 with errno
 * set (no err_set: the caller names the file).
 */
int			fd_write_all(int fd, const void *data, size_t len);

#endif
