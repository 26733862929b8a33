/*
 * archive_get_async.c — the archive-get prefetch worker (hidden command
 * archive-get-async WAL-NAME), started by archive-get when archive-async=y.
 *
 * One worker per stanza (get.lock). Recovery's position is the segment archive-get was
 * last asked for: WAL-NAME at start, then get.pos, which archive-get rewrites on every
 * call. The worker keeps the segments that follow it in in/, fetched process-max at a
 * time with archive_get_one (verified, written under a temporary name and renamed), up to
 * archive-get-queue-max bytes ahead. It stops at the first segment no repository has and
 * looks again every MISSING_RETRY_MS (a standby waits for WAL still being archived), or
 * at once when recovery moves on. Segments are named from the segment size in a fetched
 * segment's header (xlp_seg_size); until one is in the spool, the header of the
 * requested segment is read from the repository (the transfer stops after 40 bytes).
 * After IDLE_MS without a new request or a new segment the worker exits and empties
 * in/: what it fetched is only meant for the recovery that is running now.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "spool_intern.h"

#define IDLE_MS				20000
#define MISSING_RETRY_MS	2000

typedef struct get_worker
{
	const config_t *cfg;
	spool_t		sp;
	archive_ctx ctx;
	int			only;			/* --repo, or 0: the repositories in order */
	int			threads;
	int64_t		queue_max;
	uint32_t	seg_size;		/* 0 until known */

	/* the current round */
	wal_name   *todo;
	int		   *result;			/* 0, or the error kind */
	size_t		ntodo;
} get_worker;

/* in/ keeps only WAL file names: anything else is a temporary file left behind */
static bool
in_keep(const char *name)
{
	wal_name	w;

	if (wal_name_parse(name, &w) != 0)
	{
		err_clear();
		return false;
	}
	return true;
}

static bool
in_keep_none(const char *name)
{
	(void) name;
	return false;
}

/* Recovery's position: get.pos ("<wal> <segment size or 0>"), else the start argument. */
static void
read_pos(get_worker *gw, const char *start, wal_name *pos, uint32_t *size_hint)
{
	char	   *path = xasprintf("%s/get.pos", gw->sp.dir);
	char	   *text = spool_read_small(path, 256);
	char		name[64];
	unsigned int size = 0;

	free(path);
	*size_hint = 0;
	if (text != NULL && sscanf(text, "%63s %u", name, &size) >= 1 &&
		wal_name_parse(name, pos) == 0 && pos->kind == WAL_SEGMENT)
		*size_hint = size;
	else if (wal_name_parse(start, pos) != 0)
		memset(pos, 0, sizeof(*pos));
	err_clear();
	free(text);
}

/* A sink keeping the first bytes of a stream, then stopping it. */
typedef struct head_sink
{
	filter_t	base;
	uint8_t		head[WAL_LONG_HEADER_SIZE];
	size_t		got;
} head_sink;

static int
head_process(filter_t *f, const uint8_t *in, size_t len)
{
	head_sink  *h = (head_sink *) f;
	size_t		take = sizeof(h->head) - h->got;

	if (take > len)
		take = len;
	memcpy(h->head + h->got, in, take);
	h->got += take;
	if (h->got == sizeof(h->head))
		return err_set(DRB_ERR_INTERNAL, "segment header read: transfer stopped");
	return 0;
}

static int
head_finish(filter_t *f)
{
	(void) f;
	return 0;
}

static void
head_destroy(filter_t *f)
{
	free(f);
}

static const filter_ops head_ops = {"wal-header", head_process, head_finish, head_destroy};

/* The segment size from the header of w as stored in the first repository having it. */
static uint32_t
peek_seg_size(get_worker *gw, const wal_name *w)
{
	for (int i = 0; i < gw->ctx.nrepo; i++)
	{
		archive_repo *r = &gw->ctx.repos[i];
		uint8_t		sha[32];
		bool		found;
		char	   *path = NULL;
		head_sink  *h;
		uint32_t	size = 0;

		if (r->repo == NULL || (gw->only != 0 && r->index != gw->only))
			continue;
		if (archive_find(r, w, &found, sha, &path) != 0 || !found)
		{
			err_clear();
			free(path);
			continue;
		}
		h = xcalloc(1, sizeof(*h));
		h->base.ops = &head_ops;
		repo_get(r->repo, path, &h->base, NULL, NULL);
		err_clear();
		if (h->got == sizeof(h->head))
			size = spool_header_seg_size(h->head, h->got);
		filter_chain_free(&h->base);
		free(path);
		if (size != 0)
			return size;
	}
	return 0;
}

/* The segment size from any segment already in in/. */
static uint32_t
spooled_seg_size(get_worker *gw)
{
	size_t		n;
	char	  **names = spool_list(gw->sp.in, &n);
	uint32_t	size = 0;

	for (size_t i = 0; i < n && size == 0; i++)
	{
		char	   *path = xasprintf("%s/%s", gw->sp.in, names[i]);
		FILE	   *f = fopen(path, "rbe");
		uint8_t		head[WAL_LONG_HEADER_SIZE];

		if (f != NULL)
		{
			size = spool_header_seg_size(head, fread(head, 1, sizeof(head), f));
			fclose(f);
		}
		free(path);
	}
	spool_names_free(names, n);
	return size;
}

static void
fetch_job(void *arg, size_t i)
{
	get_worker *gw = arg;
	char	   *dest = xasprintf("%s/%s", gw->sp.in, gw->todo[i].name);

	if (archive_get_one(&gw->ctx, &gw->todo[i], dest, gw->only) == 0)
	{
		gw->result[i] = 0;
		log_info("prefetched %s", gw->todo[i].name);
	}
	else
	{
		gw->result[i] = (int) err_kind();
		if (err_kind() != DRB_ERR_NOT_FOUND)
			log_warn("unable to prefetch %s: %s", gw->todo[i].name, err_msg());
		err_clear();
	}
	free(dest);
}

static bool
in_spool(get_worker *gw, const char *name)
{
	char	   *path = xasprintf("%s/%s", gw->sp.in, name);
	bool		present = access(path, F_OK) == 0;

	free(path);
	return present;
}

static void
worker_run(get_worker *gw, const char *start)
{
	spool_watch watch;
	char		last[64] = "";
	int64_t		activity = spool_now_ms();
	size_t		missing = 0;	/* window position of the first missing segment, 0: none */
	int64_t		missing_retry_at = 0;

	gw->todo = xcalloc((size_t) gw->threads, sizeof(wal_name));
	gw->result = xcalloc((size_t) gw->threads, sizeof(int));
	spool_watch_init(&watch);
	spool_watch_add(&watch, gw->sp.dir);
	spool_watch_add(&watch, gw->sp.in);
	for (;;)
	{
		int64_t		now = spool_now_ms();
		wal_name	pos;
		uint32_t	hint;
		size_t		window;
		wal_name	cur;
		size_t		first_k[64];
		bool		fetched = false;

		read_pos(gw, start, &pos, &hint);
		if (pos.kind != WAL_SEGMENT || pos.name[0] == '\0')
			break;
		if (strcmp(pos.name, last) != 0)
		{
			snprintf(last, sizeof(last), "%s", pos.name);
			missing = 0;
			activity = now;
		}
		if (gw->seg_size == 0)
			gw->seg_size = hint ? hint : spooled_seg_size(gw);
		if (gw->seg_size == 0)
			gw->seg_size = peek_seg_size(gw, &pos);
		if (missing != 0 && now >= missing_retry_at)
			missing = 0;

		/* the next segments not in the spool yet, at most one per thread */
		gw->ntodo = 0;
		if (gw->seg_size != 0)
		{
			window = (size_t) (gw->queue_max / gw->seg_size);
			if (window < 1)
				window = 1;
			cur = pos;
			for (size_t k = 1; k <= window && gw->ntodo < (size_t) gw->threads; k++)
			{
				wal_name	next;

				if (missing != 0 && k >= missing)
					break;
				wal_segment_next(&cur, gw->seg_size, &next);
				cur = next;
				if (!in_spool(gw, cur.name))
				{
					first_k[gw->ntodo] = k;
					gw->todo[gw->ntodo++] = cur;
				}
			}
		}
		if (gw->ntodo > 0)
		{
			spool_parallel(gw->threads, gw->ntodo, fetch_job, gw);
			for (size_t i = 0; i < gw->ntodo; i++)
			{
				if (gw->result[i] == 0)
					fetched = true;
				else if (missing == 0 || first_k[i] < missing)
				{
					missing = first_k[i];
					missing_retry_at = spool_now_ms() + MISSING_RETRY_MS;
				}
			}
		}
		if (fetched)
		{
			activity = spool_now_ms();
			continue;
		}
		if (now - activity >= IDLE_MS)
			break;
		spool_watch_wait(&watch, 500);
	}
	spool_watch_close(&watch);
	free(gw->todo);
	free(gw->result);
}

int
cmd_archive_get_async(config_t *cfg)
{
	get_worker	gw;
	const char *level = cfg_str(cfg, "log-level-file");
	char	   *path;
	int			lock_fd;
	int			rc;

	memset(&gw, 0, sizeof(gw));
	gw.cfg = cfg;
	gw.only = cfg_is_set(cfg, "repo") ? (int) cfg_int(cfg, "repo") : 0;
	gw.threads = (int) cfg_int(cfg, "process-max");
	if (gw.threads > 64)
		gw.threads = 64;
	gw.queue_max = cfg_int(cfg, "archive-get-queue-max");
	if (gw.queue_max == 0)
		return 0;				/* prefetching is disabled */
	if (spool_open(&gw.sp, cfg) != 0)
		return -1;
	path = xasprintf("%s/get.lock", gw.sp.dir);
	rc = spool_lock_try(path, &lock_fd);
	free(path);
	if (rc != 0 || lock_fd < 0)
	{
		spool_close(&gw.sp);
		return rc;				/* another prefetch worker runs */
	}

	spool_lock_note_pid(lock_fd);
	path = xasprintf("%s/get.log", gw.sp.dir);
	if (log_open_file(path, level && strcmp(level, "off") != 0 ?
					  (log_level) log_level_parse(level) : LOG_INFO) != 0)
		err_clear();
	free(path);
	log_info("archive-get prefetch worker started after %s (process-max %d)", config_arg(cfg, 0),
			 gw.threads);

	rc = spool_mkdir(gw.sp.in);
	if (rc == 0)
		rc = archive_ctx_open(&gw.ctx, cfg, true);
	if (rc == 0)
	{
		spool_remove_unless(gw.sp.in, in_keep);
		worker_run(&gw, config_arg(cfg, 0));
		archive_ctx_close(&gw.ctx);
		/* what is left was fetched for a recovery that no longer asks */
		spool_remove_unless(gw.sp.in, in_keep_none);
		log_info("no new request: the prefetch worker exits");
	}
	else
		log_error("archive-get prefetch worker: %s", err_msg());
	spool_close(&gw.sp);
	close(lock_fd);
	return rc;
}
