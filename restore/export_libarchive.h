/*
 * export_libarchive.h — libarchive's <archive.h> and <archive_entry.h> for restore/export.c,
 * with its functions called through the table of dl_archive.h (loaded on first use).
 *
 * The project's own archive/archive.h (the WAL archive) is found first by
 * #include <archive.h>, because archive/ is on the include path. This header is
 * included as <export_libarchive.h> (found through -I restore) and takes the next
 * archive.h on the search path, which is libarchive's in the system directories.
 */
#ifndef DRB_EXPORT_LIBARCHIVE_H
#define DRB_EXPORT_LIBARCHIVE_H

#include_next <archive.h>
#include <archive_entry.h>

#include "dl_archive.h"

#endif
