/*
 * storage.c — path validation and thin wrappers over the driver table (see storage.h).
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mem.h"
#include "storage.h"

bool
storage_path_valid(const char *path)
{
	const char *p = path;

	if (path == NULL || path[0] == '\0' || path[0] == '/')
		return false;
	while (*p)
	{
		const char *slash = strchr(p, '/');
		size_t		n = slash ? (size_t) (slash - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char) p[i] < 0x20)
				return false;
		if (!slash)
			break;
		p = slash + 1;
		if (*p == '\0')
			return false;		/* trailing slash */
	}
	return true;
}

static int
bad_path(storage_t *s, const char *path)
{
	return err_set(DRB_ERR_USAGE, "invalid repository path '%s' for %s (must be relative, "
				   "without empty, '.' or '..' components)", path ? path : "(null)", s->description);
}

int
storage_read(storage_t *s, const char *path, uint64_t offset, uint64_t length, filter_t *sink)
{
	if (!storage_path_valid(path))
		return bad_path(s, path);
	return s->ops->read(s, path, offset, length, sink);
}

filter_t *
storage_write_open(storage_t *s, const char *path)
{
	if (!storage_path_valid(path))
	{
		bad_path(s, path);
		return NULL;
	}
	return s->ops->write_open(s, path);
}

int
storage_head(storage_t *s, const char *path, storage_info *out)
{
	if (!storage_path_valid(path))
		return bad_path(s, path);
	return s->ops->head(s, path, out);
}

int
storage_list(storage_t *s, const char *prefix, storage_list_cb cb, void *arg)
{
	if (prefix == NULL || prefix[0] == '/' || strstr(prefix, "..") != NULL)
		return bad_path(s, prefix);
	return s->ops->list(s, prefix, cb, arg);
}

int
storage_remove(storage_t *s, const char *path)
{
	if (!storage_path_valid(path))
		return bad_path(s, path);
	return s->ops->remove(s, path);
}

int
storage_remove_many(storage_t *s, const char *const *paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!storage_path_valid(paths[i]))
			return bad_path(s, paths[i]);
	if (n == 0)
		return 0;
	return s->ops->remove_many(s, paths, n);
}

void
storage_free(storage_t *s)
{
	if (s)
		s->ops->free(s);
}

int
storage_get_buf(storage_t *s, const char *path, struct buf *out)
{
	filter_t   *sink = filter_sink_buf_new(out);
	int			rc = storage_read(s, path, 0, 0, sink);

	filter_chain_free(sink);
	return rc;
}

int
storage_put_buf(storage_t *s, const char *path, const void *data, size_t len)
{
	filter_t   *w = storage_write_open(s, path);
	int			rc;

	if (w == NULL)
		return -1;
	rc = filter_push(w, data, len);
	if (rc == 0)
		rc = filter_finish(w);
	filter_chain_free(w);
	return rc;
}
