/*
 * verify_objects.c — reading and checking objects for `drbackup verify` (verify.h).
 *
 * Every object is read once with repo_get, which authenticates (encrypted repositories),
 * decompresses and checks the object's trailer (size and SHA-256 of the plain bytes) and,
 * for WAL and manifests, the checksum the caller expects. What reaches the sink is checked
 * again for what only the caller knows:
 *
 *  backup objects  the plain stream is cut at the files' offsets; each file is hashed and
 *                  compared with the manifest's size and SHA-256; bytes that belong to no
 *                  file (between files, or after the last one) and an object that ends
 *                  inside a file are problems too. File mismatches are collected while the
 *                  object streams and reported only after repo_get: when the object itself
 *                  fails verification, one problem names the object (and how many of its
 *                  files came out wrong) instead of a line per file.
 *  WAL segments    the first page's long header against the stanza (system identifier,
 *                  PostgreSQL version, timeline, address, segment size) and the size.
 *
 * The sinks never fail the chain for a mismatch, so the whole object is always read and
 * every file of it checked.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "error.h"
#include "mem.h"
#include "verify.h"

#define MISMATCH_SHOWN	10		/* file mismatches listed per object; the rest counted */
#define PATH_MAX_REC	4096

void
verify_job_free(verify_job *job)
{
	free(job->path);
	free(job->spans);
	memset(job, 0, sizeof(*job));
}

/* ------------------------------------------------------------------------------------ */
/* The sink                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct vsink
{
	filter_t	base;
	verify_pool *pool;
	const verify_job *job;
	uint64_t	pos;			/* bytes seen */
	/* VJ_BACKUP */
	size_t		idx;			/* current span */
	bool		loaded;			/* rec/path hold spans[idx] */
	verify_rec	rec;
	char		path[PATH_MAX_REC + 1];
	EVP_MD_CTX *md;
	uint64_t	stray;			/* bytes that belong to no file */
	size_t		bad_files;
	buf_t		messages;		/* the first MISMATCH_SHOWN mismatches, '\n'-separated */
	char	   *setup_error;	/* records file unreadable: reported instead of files */
	/* VJ_WAL */
	uint8_t		head[WAL_LONG_HEADER_SIZE];
	size_t		head_len;
} vsink;

static void
sink_mismatch(vsink *s, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
sink_mismatch(vsink *s, const char *fmt,...)
{
	va_list		ap;
	char		text[PATH_MAX_REC + 512];

	s->bad_files++;
	if (s->bad_files > MISMATCH_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	buf_append_str(&s->messages, text);
	buf_append_str(&s->messages, "\n");
}

/* Load spans[idx]'s record; false (and setup_error) when the records file fails. */
static bool
sink_load(vsink *s)
{
	const verify_span *sp = &s->job->spans[s->idx];
	ssize_t		n = pread(s->job->records_fd, &s->rec, sizeof(s->rec), (off_t) sp->pos);

	if (n == (ssize_t) sizeof(s->rec) && s->rec.path_len <= PATH_MAX_REC)
		n = pread(s->job->records_fd, s->path, s->rec.path_len,
				  (off_t) (sp->pos + sizeof(s->rec))) == (ssize_t) s->rec.path_len ? 0 : -2;
	else if (n >= 0)
		n = -2;
	if (n != 0)
	{
		if (s->setup_error == NULL)
			s->setup_error = xasprintf("unable to read verify's records file: %s",
									   n == -1 ? strerror(errno) : "short read");
		return false;
	}
	s->path[s->rec.path_len] = '\0';
	s->loaded = true;
	EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
	return true;
}

/* The current file's last byte has been hashed. */
static void
sink_file_done(vsink *s)
{
	uint8_t		sha[32];
	unsigned int len = 0;

	EVP_DigestFinal_ex(s->md, sha, &len);
	if (memcmp(sha, s->rec.sha256, 32) != 0)
	{
		char		want[65],
					got[65];

		hex_encode(s->rec.sha256, 32, want);
		hex_encode(sha, 32, got);
		sink_mismatch(s, "file '%s' (%" PRIu64 " bytes at offset %" PRIu64 ") has SHA-256 %s, "
					  "the manifest says %s", s->path, s->rec.size, s->rec.offset, got, want);
	}
	s->loaded = false;
	s->idx++;
}

static void
backup_process(vsink *s, const uint8_t *in, size_t len)
{
	while (len > 0)
	{
		uint64_t	start,
					end;
		size_t		n;

		if (!s->loaded)
		{
			/* files of size 0 have no object; a span that starts before the position
			 * overlaps the previous file */
			while (s->idx < s->job->nspans && s->job->spans[s->idx].offset < s->pos)
			{
				if (!sink_load(s))
					return;
				sink_mismatch(s, "file '%s' starts at offset %" PRIu64 ", inside the previous "
							  "file", s->path, s->rec.offset);
				s->loaded = false;
				s->idx++;
			}
			if (s->idx >= s->job->nspans)
			{
				s->stray += len;
				s->pos += len;
				return;
			}
			if (!sink_load(s))
				return;
		}
		start = s->rec.offset;
		end = start + s->rec.size;
		if (s->pos < start)
		{
			n = start - s->pos < len ? (size_t) (start - s->pos) : len;
			s->stray += n;
		}
		else
		{
			n = end - s->pos < len ? (size_t) (end - s->pos) : len;
			EVP_DigestUpdate(s->md, in, n);
		}
		s->pos += n;
		in += n;
		len -= n;
		if (s->pos == end && s->pos >= start)
			sink_file_done(s);
	}
}

static int
sink_process(filter_t *f, const uint8_t *in, size_t len)
{
	vsink	   *s = (vsink *) f;

	atomic_fetch_add(&s->pool->done, (uint64_t) len);
	if (s->job->kind == VJ_BACKUP)
	{
		if (s->setup_error == NULL)
			backup_process(s, in, len);
		return 0;
	}
	if (s->head_len < sizeof(s->head))
	{
		size_t		n = sizeof(s->head) - s->head_len < len ? sizeof(s->head) - s->head_len : len;

		memcpy(s->head + s->head_len, in, n);
		s->head_len += n;
	}
	s->pos += len;
	return 0;
}

static int
sink_finish(filter_t *f)
{
	vsink	   *s = (vsink *) f;

	if (s->job->kind != VJ_BACKUP || s->setup_error != NULL)
		return 0;
	/* a file still open, or files not reached: the object ends too early */
	if (s->loaded)
	{
		sink_mismatch(s, "the object ends at byte %" PRIu64 ", inside file '%s' (%" PRIu64
					  " bytes at offset %" PRIu64 ")", s->pos, s->path, s->rec.size,
					  s->rec.offset);
		s->loaded = false;
		s->idx++;
	}
	if (s->idx < s->job->nspans && sink_load(s))
	{
		size_t		missing = s->job->nspans - s->idx;

		/* one line for all the files the object does not reach */
		sink_mismatch(s, "the object ends at byte %" PRIu64 ", before %zu more file%s (the "
					  "first: '%s', %" PRIu64 " bytes at offset %" PRIu64 ")", s->pos, missing,
					  missing == 1 ? "" : "s", s->path, s->rec.size, s->rec.offset);
		s->loaded = false;
		s->idx = s->job->nspans;
	}
	return 0;
}

static void
sink_destroy(filter_t *f)
{
	vsink	   *s = (vsink *) f;

	EVP_MD_CTX_free(s->md);
	buf_free(&s->messages);
	free(s->setup_error);
	free(s);
}

static const filter_ops sink_ops = {"verify-sink", sink_process, sink_finish, sink_destroy};

static vsink *
sink_new(verify_pool *pool, const verify_job *job)
{
	vsink	   *s = xcalloc(1, sizeof(*s));

	s->base.ops = &sink_ops;
	s->pool = pool;
	s->job = job;
	buf_init(&s->messages);
	if (job->kind == VJ_BACKUP && (s->md = EVP_MD_CTX_new()) == NULL)
	{
		free(s);
		return NULL;
	}
	return s;
}

/* ------------------------------------------------------------------------------------ */
/* One job                                                                              */
/* ------------------------------------------------------------------------------------ */

static const char *
read_failure_kind(drb_err kind)
{
	switch (kind)
	{
		case DRB_ERR_NOT_FOUND:
			return "missing";
		case DRB_ERR_INTEGRITY:
		case DRB_ERR_CRYPTO:
			return "damaged";
		default:
			return "unreadable";
	}
}

/* After a successful read: what the sink found. */
static void
report_contents(verify_pool *pool, const verify_job *job, vsink *s,
				const repo_object_result *res)
{
	if (job->kind == VJ_BACKUP)
	{
		const char *p = (const char *) buf_cstr(&s->messages);

		if (s->setup_error)
		{
			pool->report(pool->arg, job, "internal", s->setup_error);
			return;
		}
		while (*p)
		{
			size_t		n = strcspn(p, "\n");
			char	   *line = xstrndup(p, n);

			pool->report(pool->arg, job, "file-mismatch", line);
			free(line);
			p += n + (p[n] == '\n');
		}
		if (s->bad_files > MISMATCH_SHOWN)
		{
			char	   *m = xasprintf("%zu more files of this object differ from the manifest",
									  s->bad_files - MISMATCH_SHOWN);

			pool->report(pool->arg, job, "file-mismatch", m);
			free(m);
		}
		if (s->stray > 0)
		{
			char	   *m = xasprintf("%" PRIu64 " of its %" PRIu64 " bytes belong to no file "
									  "of the manifest", s->stray, res->size);

			pool->report(pool->arg, job, "file-mismatch", m);
			free(m);
		}
		return;
	}
	if (job->kind == VJ_WAL && (job->w.kind == WAL_SEGMENT || job->w.kind == WAL_PARTIAL))
	{
		uint32_t	seg_size = 0;

		if (wal_header_check(job->w.name, s->head, s->head_len, res->size, &job->w,
							 job->system_id, job->pg_major, &seg_size) != 0)
			pool->report(pool->arg, job, err_kind() == DRB_ERR_STANZA ? "wal-foreign" : "damaged",
						 err_msg());
		else if (job->w.kind == WAL_SEGMENT && job->seg_size != 0 && res->size != job->seg_size)
		{
			char	   *m = xasprintf("WAL segment of %" PRIu64 " bytes, the cluster's segments "
									  "have %" PRIu32, res->size, job->seg_size);

			pool->report(pool->arg, job, "damaged", m);
			free(m);
		}
		err_clear();
	}
}

static void
run_job(verify_pool *pool, const verify_job *job)
{
	vsink	   *s = sink_new(pool, job);
	repo_object_result res = {0};

	if (s == NULL)
	{
		pool->report(pool->arg, job, "internal", "out of memory for SHA-256");
		return;
	}
	if (repo_get(job->repo, job->path, &s->base, job->has_sha ? job->sha256 : NULL, &res) != 0)
	{
		drb_err		kind = err_kind();
		char	   *m;

		if (job->kind == VJ_BACKUP && s->bad_files > 0)
			m = xasprintf("%s (%zu of its %zu files came out different from the manifest)",
						  err_msg(), s->bad_files, job->nspans);
		else
			m = xstrdup(err_msg());
		pool->report(pool->arg, job, read_failure_kind(kind), m);
		free(m);
		err_clear();
	}
	else
	{
		atomic_fetch_add(&pool->stored[job->repo_pos], res.stored_size);
		report_contents(pool, job, s, &res);
	}
	filter_chain_free(&s->base);
}

/* ------------------------------------------------------------------------------------ */
/* The pool                                                                             */
/* ------------------------------------------------------------------------------------ */

typedef struct pool_run
{
	verify_pool *pool;
	verify_job *jobs;
	size_t	   *order;
	size_t		n;
	atomic_size_t next;
	atomic_size_t finished;
} pool_run;

static void *
worker_main(void *arg)
{
	pool_run   *r = arg;
	size_t		i;

	while ((i = atomic_fetch_add(&r->next, 1)) < r->n)
	{
		run_job(r->pool, &r->jobs[r->order[i]]);
		atomic_fetch_add(&r->finished, 1);
	}
	return NULL;
}

void
verify_progress_end(verify_pool *pool)
{
	progress_finish(&pool->bar, atomic_load(&pool->done));
}

static int
order_cmp(const void *a, const void *b, void *arg)
{
	const verify_job *jobs = arg;
	const verify_job *x = &jobs[*(const size_t *) a];
	const verify_job *y = &jobs[*(const size_t *) b];

	if (x->estimate != y->estimate)
		return x->estimate > y->estimate ? -1 : 1;
	return *(const size_t *) a < *(const size_t *) b ? -1 : 1;
}

int
verify_jobs_run(verify_pool *pool, verify_job *jobs, size_t n)
{
	pool_run	r = {.pool = pool, .jobs = jobs, .n = n};
	int			nthreads = pool->process_max < 1 ? 1 : pool->process_max;
	pthread_t  *t;
	bool	   *started;
	size_t		nstarted = 0;

	if (n == 0)
		return 0;
	r.order = xmalloc(n * sizeof(size_t));
	for (size_t i = 0; i < n; i++)
		r.order[i] = i;
	qsort_r(r.order, n, sizeof(size_t), order_cmp, jobs);
	if ((size_t) nthreads > n)
		nthreads = (int) n;
	t = xcalloc((size_t) nthreads, sizeof(*t));
	started = xcalloc((size_t) nthreads, sizeof(*started));
	for (int i = 0; i < nthreads; i++)
		if ((started[i] = pthread_create(&t[i], NULL, worker_main, &r) == 0))
			nstarted++;
	if (nstarted == 0)
		worker_main(&r);
	while (pool->bar.on && atomic_load(&r.finished) < n)
	{
		progress_update(&pool->bar, atomic_load(&pool->done));
		for (int k = 0; k < 5 && atomic_load(&r.finished) < n; k++)
			usleep(100 * 1000);
	}
	for (int i = 0; i < nthreads; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	free(t);
	free(started);
	free(r.order);
	return 0;
}
