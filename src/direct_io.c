/*
 * direct_io.c — sequential O_DIRECT file writer with write-behind (direct_io.h).
 *
 * Writer's handshake with its helper: jobs (bytes, length, offset) are queued under the
 * mutex, at most DIRECT_LENT_DEPTH; the helper writes the oldest and then removes it, so
 * the file is written in order. A buffer of ours is refilled only when no job is queued
 * (double buffering), a lent one is given back by waiting until its job is done, and the
 * descriptor's flags are changed by the caller only when no job is queued. The helper may
 * drop O_DIRECT itself (a write refused with EINVAL), hence the atomic flag.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "direct_io.h"
#include "mem.h"

#define DIRECT_ALIGN	4096

struct direct_writer
{
	int			fd;
	uint8_t    *buf[2];			/* DIRECT_BUF_SIZE each, DIRECT_ALIGN-aligned */
	int			cur;			/* the buffer being filled */
	size_t		fill;
	uint64_t	offset;			/* file offset of the next byte handed to the helper */
	atomic_bool direct;			/* fd has O_DIRECT set */
	bool		was_direct;
	bool		lent_queued;	/* a queued job may write the caller's bytes */

	pthread_t	thread;
	bool		started;
	bool		start_failed;
	bool		quit;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct
	{
		const uint8_t *data;
		size_t		len;
		uint64_t	off;
	}			jobs[DIRECT_LENT_DEPTH];	/* FIFO: jobs[head], then the next count - 1 */
	int			head;
	int			count;
	int			job_errno;		/* first failure, reported by the next call */
};

/* Set or clear O_DIRECT on fd; false if the file system refuses. */
static bool
set_direct(int fd, bool on)
{
	int			fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return false;
	return fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) == 0;
}

/* Drop O_DIRECT (a file system or a length that refuses it); false if even that fails. */
static bool
direct_off(direct_writer *w)
{
	if (!set_direct(w->fd, false))
		return false;
	w->direct = false;
	return true;
}

/* pwrite all of data at off; an EINVAL under O_DIRECT retries without it. 0, or -1 + errno. */
static int
write_at(direct_writer *w, const uint8_t *data, size_t len, uint64_t off)
{
	while (len > 0)
	{
		ssize_t		n = pwrite(w->fd, data, len, (off_t) off);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EINVAL && w->direct && direct_off(w))
				continue;
			return -1;
		}
		data += n;
		len -= (size_t) n;
		off += (uint64_t) n;
	}
	return 0;
}

static void *
helper_main(void *arg)
{
	direct_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;)
	{
		int			e;

		while (w->count == 0 && !w->quit)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->count == 0)
			break;
		pthread_mutex_unlock(&w->lock);
		e = write_at(w, w->jobs[w->head].data, w->jobs[w->head].len, w->jobs[w->head].off) == 0
			? 0 : errno;
		pthread_mutex_lock(&w->lock);
		if (e != 0 && w->job_errno == 0)
			w->job_errno = e;
		w->head = (w->head + 1) % DIRECT_LENT_DEPTH;
		w->count--;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/*
 * Wait until at most max jobs are queued (0: the helper is idle); -1 with errno if a
 * write failed (the error is consumed).
 */
static int
wait_queue(direct_writer *w, int max)
{
	int			e;

	if (!w->started)
		return 0;
	pthread_mutex_lock(&w->lock);
	while (w->count > max)
		pthread_cond_wait(&w->cond, &w->lock);
	e = w->job_errno;
	w->job_errno = 0;
	pthread_mutex_unlock(&w->lock);
	if (e != 0)
	{
		errno = e;
		return -1;
	}
	return 0;
}

static int
wait_idle(direct_writer *w)
{
	w->lent_queued = false;
	return wait_queue(w, 0);
}

/*
 * Write len bytes of data at the current offset: queued for the helper (data must then
 * stay unchanged until its job is done), or here when there is no helper. The caller has
 * made room in the queue.
 */
static int
post(direct_writer *w, const uint8_t *data, size_t len)
{
	if (!w->started && !w->start_failed)
	{
		if (pthread_create(&w->thread, NULL, helper_main, w) == 0)
			w->started = true;
		else
			w->start_failed = true;
	}
	if (w->started)
	{
		int			tail;

		pthread_mutex_lock(&w->lock);
		tail = (w->head + w->count) % DIRECT_LENT_DEPTH;
		w->jobs[tail].data = data;
		w->jobs[tail].len = len;
		w->jobs[tail].off = w->offset;
		w->count++;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
	else if (write_at(w, data, len, w->offset) != 0)
		return -1;
	w->offset += len;
	return 0;
}

/* Hand buf[cur] (full) to the helper. */
static int
submit(direct_writer *w)
{
	if (wait_idle(w) != 0 || post(w, w->buf[w->cur], w->fill) != 0)
		return -1;
	w->fill = 0;
	w->cur ^= 1;
	return 0;
}

direct_writer *
direct_writer_new(void)
{
	direct_writer *w = xcalloc(1, sizeof(*w));

	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	return w;
}

void
direct_writer_open(direct_writer *w, int fd)
{
	w->fd = fd;
	w->fill = 0;
	w->offset = 0;
	w->cur = 0;
	w->direct = w->was_direct = set_direct(fd, true);
}

int
direct_writer_write(direct_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (w->lent_queued && wait_idle(w) != 0)	/* the lender gets its bytes back now */
		return -1;
	if (w->buf[0] == NULL)
		for (int i = 0; i < 2; i++)
			w->buf[i] = xaligned_alloc(DIRECT_ALIGN, DIRECT_BUF_SIZE);
	while (len > 0)
	{
		size_t		n = DIRECT_BUF_SIZE - w->fill;

		if (n > len)
			n = len;
		memcpy(w->buf[w->cur] + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == DIRECT_BUF_SIZE && submit(w) != 0)
			return -1;
	}
	return 0;
}

int
direct_writer_write_lent(direct_writer *w, const void *data, size_t len)
{
	if (w->fill > 0)
		return direct_writer_write(w, data, len);	/* behind copied bytes: copied too */

	/*
	 * Not whole blocks (a file's last bytes) or not aligned: this piece and the rest of the
	 * file go through the page cache (their offsets are no longer aligned). The flag
	 * changes once the queue is empty.
	 */
	if (atomic_load(&w->direct) &&
		(((uintptr_t) data % DIRECT_ALIGN) != 0 || len % DIRECT_ALIGN != 0) &&
		(wait_idle(w) != 0 || !direct_off(w)))
		return -1;
	/* room for this job, and the lender's bytes of DIRECT_LENT_DEPTH calls ago back */
	if (wait_queue(w, DIRECT_LENT_DEPTH - 1) != 0)
		return -1;
	w->lent_queued = true;
	return post(w, data, len);
}

int
direct_writer_close(direct_writer *w)
{
	if (wait_idle(w) != 0)
		return -1;
	if (w->fill > 0)
	{
		/* the tail need not be a multiple of the block size: written through the cache */
		if (w->direct && !direct_off(w))
			return -1;
		if (write_at(w, w->buf[w->cur], w->fill, w->offset) != 0)
			return -1;
		w->offset += w->fill;
		w->fill = 0;
	}
	if (w->direct)
		(void) direct_off(w);
	w->fd = -1;
	return 0;
}

int
direct_writer_was_direct(const direct_writer *w)
{
	return w->was_direct;
}

void
direct_writer_free(direct_writer *w)
{
	if (w == NULL)
		return;
	if (w->started)
	{
		pthread_mutex_lock(&w->lock);
		while (w->count > 0)
			pthread_cond_wait(&w->cond, &w->lock);
		w->quit = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->buf[0]);
	free(w->buf[1]);
	free(w);
}
