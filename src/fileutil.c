/*
 * fileutil.c — unlinked temporary files and atomic small-file writes (fileutil.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fileutil.h"
#include "mem.h"

int
tmpfile_open(const char *what)
{
	const char *dir = getenv("TMPDIR");
	int			fd;

	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		char	   *tmpl = xasprintf("%s/drbackup-%s.XXXXXX", dir, what);

		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd >= 0)
			unlink(tmpl);
		free(tmpl);
	}
	if (fd < 0)
		err_set(DRB_ERR_STORAGE, "unable to create a temporary file in '%s': %m", dir);
	return fd;
}

int
fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char	   *tmp = xasprintf("%s.drbtmp.%ld", path, (long) getpid());
	char	   *dircopy = xstrdup(path);
	int			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int			dfd;
	int			rc = -1;

	if (fd < 0)
	{
		err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
				"unable to create '%s': %m", tmp);
		goto out;
	}
	if (fd_write_all(fd, data, len) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", tmp);
		close(fd);
		goto fail;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to set the mode of or fsync '%s': %m", tmp);
		close(fd);
		goto fail;
	}
	if (close(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", tmp);
		goto fail;
	}
	if (rename(tmp, path) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %m", tmp, path);
		goto fail;
	}
	/* the rename is durable once the directory is: best effort, the file is in place */
	dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
	{
		(void) fsync(dfd);
		close(dfd);
	}
	rc = 0;
	goto out;
fail:
	unlink(tmp);
out:
	free(tmp);
	free(dircopy);
	return rc;
}
