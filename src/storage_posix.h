/*
 * storage_posix.h — repository in a local or NFS directory.
 *
 * Atomic put: write "<path>.drbtmp.<pid>.<n>" in the target directory, fsync it, rename
 * over the final name, fsync the directory. Missing parent directories are created (and
 * their parents fsynced). Temp files are never listed. Files are created mode 0640,
 * directories 0750.
 */
#ifndef DRB_STORAGE_POSIX_H
#define DRB_STORAGE_POSIX_H

#include "storage.h"

/* root: absolute path of the repository directory (created on first write if missing). */
storage_t  *storage_posix_new(const char *root);

#endif
