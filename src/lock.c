/*
 * lock.c — stanza locks with flock() (see lock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "lock.h"
#include "mem.h"

struct drb_lock
{
	int			fd;
	char	   *path;
};

drb_lock *
lock_acquire(const char *lock_path, const char *stanza, const char *name, const char *what)
{
	drb_lock   *l;
	char	   *path;
	int			fd;
	char		pid[32];
	ssize_t		n;

	if (mkdir(lock_path, 0770) != 0 && errno != EEXIST)
	{
		err_set(DRB_ERR_LOCK, "unable to create lock directory '%s': %s", lock_path,
				strerror(errno));
		return NULL;
	}
	path = xasprintf("%s/%s-%s.lock", lock_path, stanza, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0)
	{
		err_set(DRB_ERR_LOCK, "unable to open lock file '%s': %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		int			e = errno;

		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			err_set(DRB_ERR_LOCK, "unable to acquire the %s lock of stanza '%s': held by "
					"process %s (a %s is running)", name, stanza, pid[0] ? pid : "?", what);
		else
			err_set(DRB_ERR_LOCK, "unable to lock '%s': %s", path, strerror(e));
		free(path);
		return NULL;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long) getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t) n, 0) != n)
	{
		/* the pid is informative only */
	}
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->path = path;
	return l;
}

void
lock_release(drb_lock *l)
{
	if (l == NULL)
		return;
	if (ftruncate(l->fd, 0) != 0)
	{
		/* informative only */
	}
	close(l->fd);				/* drops the flock */
	free(l->path);
	free(l);
}
