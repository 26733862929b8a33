/*
 * storage.h — one interface for every repository storage driver (posix, s3, gcs).
 *
 * Paths are relative to the repository root, '/'-separated, without a leading '/',
 * without empty, "." or ".." components (storage_path_valid). Drivers map them onto a
 * directory, a bucket + prefix, etc.
 *
 * Contract every driver keeps:
 * - read:   streams bytes [offset, offset+length) (length 0 = to the end) of an object
 *           into sink with filter_push; never calls filter_finish(sink). A missing object
 *           fails with DRB_ERR_NOT_FOUND. Transient failures are retried by the driver,
 *           resuming where the bytes stopped; nothing is pushed twice.
 * - write:  write_open returns a sink filter. Bytes pushed are not visible to anyone until
 *           filter_finish(writer) returns 0: then the whole object is visible and durable
 *           (posix: temp file + fsync + rename + fsync dir; s3: PUT / multipart complete
 *           acknowledged). Freeing the writer without a successful finish aborts: nothing
 *           becomes visible (temp file removed, multipart upload aborted). An existing
 *           object of that name is replaced atomically.
 * - head:   size and mtime of one object; DRB_ERR_NOT_FOUND if missing.
 * - list:   every object whose path starts with prefix (recursively, no delimiter), in
 *           lexical order, calling cb once per object; cb returning -1 stops the list
 *           and list returns -1 (cb has set the error).
 * - remove: deletes one object; a missing object is success.
 * - remove_many: deletes a set of objects (batched where the store allows).
 * All errors name the driver, the object path and the operation.
 */
#ifndef DRB_STORAGE_H
#define DRB_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"

typedef struct storage storage_t;

typedef struct storage_info
{
	const char *path;			/* relative to the repository root */
	uint64_t	size;
	int64_t		mtime;			/* seconds since the epoch, 0 if unknown */
} storage_info;

typedef int (*storage_list_cb) (const storage_info *info, void *arg);

typedef struct storage_ops
{
	const char *type;			/* "posix", "s3", "gcs" */
	int			(*read) (storage_t *s, const char *path, uint64_t offset, uint64_t length,
						 filter_t *sink);
	filter_t   *(*write_open) (storage_t *s, const char *path);
	int			(*head) (storage_t *s, const char *path, storage_info *out);
	int			(*list) (storage_t *s, const char *prefix, storage_list_cb cb, void *arg);
	int			(*remove) (storage_t *s, const char *path);
	int			(*remove_many) (storage_t *s, const char *const *paths, size_t n);
	void		(*free) (storage_t *s);
} storage_ops;

struct storage
{
	const storage_ops *ops;
	char	   *description;	/* e.g. "posix:/var/lib/drbackup", "s3://bucket/prefix" */
};

bool		storage_path_valid(const char *path);

/* Wrappers: validate the path, then call the driver. Same contracts as above. */
int			storage_read(storage_t *s, const char *path, uint64_t offset, uint64_t length,
						 filter_t *sink);
filter_t   *storage_write_open(storage_t *s, const char *path);
int			storage_head(storage_t *s, const char *path, storage_info *out);
int			storage_list(storage_t *s, const char *prefix, storage_list_cb cb, void *arg);
int			storage_remove(storage_t *s, const char *path);
int			storage_remove_many(storage_t *s, const char *const *paths, size_t n);
void		storage_free(storage_t *s);

/* Convenience: whole small object into / from memory (bounded by the caller). */
struct buf;
int			storage_get_buf(storage_t *s, const char *path, struct buf *out);
int			storage_put_buf(storage_t *s, const char *path, const void *data, size_t len);

#endif
