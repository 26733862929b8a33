/*
 * filter.c — chain plumbing and the trivial sinks (see filter.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "filter.h"
#include "mem.h"

int
filter_push(filter_t *f, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	return f->ops->process(f, buf, len);
}

int
filter_finish(filter_t *f)
{
	if (f == NULL)
		return 0;
	return f->ops->finish(f);
}

filter_t *
filter_chain(filter_t *first,...)
{
	va_list		ap;
	filter_t   *prev = first;
	filter_t   *f;

	va_start(ap, first);
	while ((f = va_arg(ap, filter_t *)) != NULL)
	{
		prev->next = f;
		prev = f;
	}
	va_end(ap);
	return first;
}

void
filter_chain_free(filter_t *head)
{
	while (head)
	{
		filter_t   *next = head->next;

		head->ops->destroy(head);
		head = next;
	}
}

/* Default finish for filters with nothing to flush. */
static int
pass_finish(filter_t *f)
{
	return filter_finish(f->next);
}

static void
plain_destroy(filter_t *f)
{
	free(f);
}

/* --- memory sink --- */
typedef struct
{
	filter_t	base;
	buf_t	   *out;
} sink_buf;

static int
sink_buf_process(filter_t *f, const uint8_t *in, size_t len)
{
	buf_append(((sink_buf *) f)->out, in, len);
	return 0;
}

static const filter_ops sink_buf_ops = {"sink-buf", sink_buf_process, pass_finish, plain_destroy};

filter_t *
filter_sink_buf_new(struct buf *out)
{
	sink_buf   *s = xcalloc(1, sizeof(*s));

	s->base.ops = &sink_buf_ops;
	s->out = out;
	return &s->base;
}

/* --- fd sink --- */
typedef struct
{
	filter_t	base;
	int			fd;
} sink_fd;

static int
sink_fd_process(filter_t *f, const uint8_t *in, size_t len)
{
	int			fd = ((sink_fd *) f)->fd;

	while (len > 0)
	{
		ssize_t		n = write(fd, in, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return err_set(DRB_ERR_STORAGE, "unable to write output: %m");
		}
		in += n;
		len -= (size_t) n;
	}
	return 0;
}

static const filter_ops sink_fd_ops = {"sink-fd", sink_fd_process, pass_finish, plain_destroy};

filter_t *
filter_sink_fd_new(int fd)
{
	sink_fd    *s = xcalloc(1, sizeof(*s));

	s->base.ops = &sink_fd_ops;
	s->fd = fd;
	return &s->base;
}

/* --- null sink --- */
static int
sink_null_process(filter_t *f, const uint8_t *in, size_t len)
{
	(void) f;
	(void) in;
	(void) len;
	return 0;
}

static const filter_ops sink_null_ops = {"sink-null", sink_null_process, pass_finish, plain_destroy};

filter_t *
filter_sink_null_new(void)
{
	filter_t   *s = xcalloc(1, sizeof(*s));

	s->ops = &sink_null_ops;
	return s;
}

/* --- size counter --- */
typedef struct
{
	filter_t	base;
	uint64_t   *count;
} size_filter;

static int
size_process(filter_t *f, const uint8_t *in, size_t len)
{
	*((size_filter *) f)->count += len;
	return filter_push(f->next, in, len);
}

static const filter_ops size_ops = {"size", size_process, pass_finish, plain_destroy};

filter_t *
filter_size_new(uint64_t *count)
{
	size_filter *s = xcalloc(1, sizeof(*s));

	s->base.ops = &size_ops;
	s->count = count;
	*count = 0;
	return &s->base;
}

/* --- tee: the same bytes into several chains --- */
typedef struct
{
	filter_t	base;
	int			n;
	filter_t   *out[8];
} tee_filter;

static int
tee_process(filter_t *f, const uint8_t *in, size_t len)
{
	tee_filter *t = (tee_filter *) f;

	for (int i = 0; i < t->n; i++)
		if (filter_push(t->out[i], in, len) != 0)
			return -1;
	return 0;
}

static int
tee_finish(filter_t *f)
{
	tee_filter *t = (tee_filter *) f;

	for (int i = 0; i < t->n; i++)
		if (filter_finish(t->out[i]) != 0)
			return -1;
	return 0;
}

static void
tee_destroy(filter_t *f)
{
	tee_filter *t = (tee_filter *) f;

	for (int i = 0; i < t->n; i++)
		filter_chain_free(t->out[i]);
	free(t);
}

static const filter_ops tee_ops = {"tee", tee_process, tee_finish, tee_destroy};

filter_t *
filter_tee_new(filter_t *const *chains, int n)
{
	tee_filter *t = xcalloc(1, sizeof(*t));

	if (n < 1 || n > 8)
		abort();
	t->base.ops = &tee_ops;
	t->n = n;
	for (int i = 0; i < n; i++)
		t->out[i] = chains[i];
	return &t->base;
}
