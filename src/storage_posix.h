/*
 * storage_posix.h — repository in a local or NFS directory.
 *
 * Atomic put: write "<path>.drbtmp.<pid>.<n>" in the target directory, fsync it, rename
 * over the final name, fsync the directory. Missing parent directories are created (and
 * their parents fsynced). Temp files are never listed. Files are created mode 0640,
 * directories 0750 (both less the umask).
 *
 * Beyond storage.h: reads push 256 KiB pieces; a read starting past the end of the file
 * fails (DRB_ERR_STORAGE), one running past it stops at the end. A path through a file
 * ("a/b" where "a" is a file) or naming a directory counts as missing. list walks only
 * the directory holding the prefix's last component and holds one directory's names per
 * level in memory; objects removed while listing are skipped. Empty directories left by
 * remove stay (they are never listed).
 */
#ifndef DRB_STORAGE_POSIX_H
#define DRB_STORAGE_POSIX_H

#include "storage.h"

/*
 * root: absolute path of the repository directory (created on first write if missing).
 * NULL with DRB_ERR_CONFIG when root is not absolute.
 */
storage_t  *storage_posix_new(const char *root);

#endif
