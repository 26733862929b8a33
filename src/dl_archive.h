/*
 * dl_archive.h — libarchive through dynlib.h, for restore/export.c, which includes it
 * through export_libarchive.h after libarchive's <archive.h> (a name the project's own
 * archive/archive.h shadows; only <archive_entry.h> is included here). Call
 * dl_archive_load() before the first archive_* call (export does).
 */
#ifndef DRB_DL_ARCHIVE_H
#define DRB_DL_ARCHIVE_H

#include <archive_entry.h>

#include "dynlib.h"

struct archive;

typedef struct dl_archive_api
{
	struct archive *(*write_new) (void);
	int			(*write_add_filter_zstd) (struct archive *a);
	int			(*write_set_format_pax_restricted) (struct archive *a);
	int			(*write_open_fd) (struct archive *a, int fd);
	int			(*write_header) (struct archive *a, struct archive_entry *e);
	la_ssize_t	(*write_data) (struct archive *a, const void *buf, size_t len);
	int			(*write_close) (struct archive *a);
	int			(*write_fail) (struct archive *a);
	int			(*write_free) (struct archive *a);
	const char *(*error_string) (struct archive *a);
	struct archive_entry *(*entry_new) (void);
	void		(*entry_free) (struct archive_entry *e);
	void		(*entry_set_pathname) (struct archive_entry *e, const char *name);
	void		(*entry_set_filetype) (struct archive_entry *e, unsigned int type);
	void		(*entry_set_perm) (struct archive_entry *e, __LA_MODE_T perm);
	void		(*entry_set_size) (struct archive_entry *e, la_int64_t size);
	void		(*entry_set_mtime) (struct archive_entry *e, time_t t, long ns);
	void		(*entry_set_uid) (struct archive_entry *e, la_int64_t uid);
	void		(*entry_set_gid) (struct archive_entry *e, la_int64_t gid);
} dl_archive_api;

extern dl_archive_api dl_archive;

#define archive_write_new		(dl_archive.write_new)
#define archive_write_add_filter_zstd (dl_archive.write_add_filter_zstd)
#define archive_write_set_format_pax_restricted (dl_archive.write_set_format_pax_restricted)
#define archive_write_open_fd	(dl_archive.write_open_fd)
#define archive_write_header	(dl_archive.write_header)
#define archive_write_data		(dl_archive.write_data)
#define archive_write_close		(dl_archive.write_close)
#define archive_write_fail		(dl_archive.write_fail)
#define archive_write_free		(dl_archive.write_free)
#define archive_error_string	(dl_archive.error_string)
#define archive_entry_new		(dl_archive.entry_new)
#define archive_entry_free		(dl_archive.entry_free)
#define archive_entry_set_pathname (dl_archive.entry_set_pathname)
#define archive_entry_set_filetype (dl_archive.entry_set_filetype)
#define archive_entry_set_perm	(dl_archive.entry_set_perm)
#define archive_entry_set_size	(dl_archive.entry_set_size)
#define archive_entry_set_mtime (dl_archive.entry_set_mtime)
#define archive_entry_set_uid	(dl_archive.entry_set_uid)
#define archive_entry_set_gid	(dl_archive.entry_set_gid)

#endif
