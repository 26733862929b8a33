/*
 * archive_push.c — archive-push, PostgreSQL's archive_command.
 *
 * Synchronous mode: the WAL file is mapped and checked against the stanza, then pushed to
 * every configured repository in parallel (one thread per repository); each encodes it
 * in memory, hashing in parallel with compression, and stores it under the name its
 * checksum gives (archive_push_encoded). Files above ARCHIVE_LOAD_MAX are hashed first and
 * streamed.
 * Exit 0 only when it is durable in all of them; otherwise one line names each repository
 * that failed and why, and PostgreSQL retries later (repositories that already have the
 * file then answer "already archived" without a second upload).
 * Asynchronous mode (archive-async): the spool worker's acknowledgement answers (spool.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "spool.h"

typedef struct push_job
{
	const archive_repo *r;
	const wal_name *w;
	const char *path;			/* streamed from here when file is NULL */
	const uint8_t *sha256;		/* streamed files: hashed beforehand */
	const archive_file *file;	/* mapped files */
	uint8_t		sha256_out[32]; /* mapped files: the checksum the encoding found */
	bool		skipped;
	int			rc;
	drb_err		kind;
	char	   *error;
} push_job;

static void *
push_main(void *arg)
{
	push_job   *j = arg;

	if (j->r->repo == NULL)
		j->rc = err_set(j->r->open_kind, "%s", j->r->open_error);
	else if (j->file)
		j->rc = archive_push_encoded(j->r, j->file, j->sha256_out, &j->skipped);
	else
		j->rc = archive_push_path(j->r, j->w, j->path, j->sha256, &j->skipped);
	if (j->rc != 0)
	{
		j->kind = err_kind();
		j->error = xstrdup(err_msg());
	}
	return NULL;
}

/* Run one job per repository, in parallel when there are several. */
static void
push_all(push_job *jobs, int n)
{
	pthread_t	threads[REPO_MAX];
	bool		started[REPO_MAX] = {false};

	for (int i = 0; i < n; i++)
	{
		/* the last (or only) job runs here; a repository that did not open needs no thread */
		if (i < n - 1 && jobs[i].r->repo != NULL)
			started[i] = pthread_create(&threads[i], NULL, push_main, &jobs[i]) == 0;
		if (!started[i])
			push_main(&jobs[i]);
	}
	for (int i = 0; i < n; i++)
		if (started[i])
			pthread_join(threads[i], NULL);
}

/* One error line for every repository that failed, naming those that succeeded. */
static int
push_report(const wal_name *w, push_job *jobs, int n)
{
	int			failed = 0;
	drb_err		kind = DRB_OK;
	buf_t		msg;
	buf_t		ok;

	buf_init(&msg);
	buf_init(&ok);
	for (int i = 0; i < n; i++)
	{
		if (jobs[i].rc == 0)
		{
			buf_printf(&ok, "%s%d", ok.len ? ", " : "", jobs[i].r->index);
			log_info("WAL file %s %s repository %d", w->name,
					 jobs[i].skipped ? "was already archived in" : "archived in", jobs[i].r->index);
			continue;
		}
		if (failed++ == 0)
			kind = jobs[i].kind;
		buf_printf(&msg, "%s%s", msg.len ? "; " : "", jobs[i].error);
	}
	if (failed == 1 && ok.len == 0)
		err_set(kind, "%s", buf_cstr(&msg));
	else if (failed)
		err_set(kind, "WAL file %s is not archived in every repository: %s%s%s%s", w->name,
				buf_cstr(&msg), ok.len ? " (it is in repository " : "", ok.len ? buf_cstr(&ok) : "",
				ok.len ? ")" : "");
	buf_free(&msg);
	buf_free(&ok);
	return failed ? -1 : 0;
}

/* archive_ctx_open run by a thread while the file is mapped and hashed. */
typedef struct open_task
{
	archive_ctx *ctx;
	const config_t *cfg;
	int			rc;
	drb_err		kind;
	char	   *error;
} open_task;

static void *
open_task_main(void *arg)
{
	open_task  *t = arg;

	t->rc = archive_ctx_open(t->ctx, t->cfg, false);
	if (t->rc != 0)
	{
		t->kind = err_kind();
		t->error = xstrdup(err_msg());
	}
	return NULL;
}

/* Push to every repository, from a mapped file (f) or streamed from path (f NULL). */
static int
push_to_all(archive_ctx *ctx, const char *path, const wal_name *w, const archive_file *f,
			const uint8_t sha256[32])
{
	push_job	jobs[REPO_MAX];
	int			rc;

	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < ctx->nrepo; i++)
	{
		jobs[i].r = &ctx->repos[i];
		jobs[i].w = w;
		jobs[i].path = path;
		jobs[i].file = f;
		jobs[i].sha256 = sha256;
	}
	push_all(jobs, ctx->nrepo);
	rc = push_report(w, jobs, ctx->nrepo);
	for (int i = 0; i < ctx->nrepo; i++)
		free(jobs[i].error);
	return rc;
}

/* A segment larger than ARCHIVE_LOAD_MAX: checked and hashed in one pass, pushed streaming. */
static int
push_streamed(archive_ctx *ctx, const char *path)
{
	wal_name	w;
	uint8_t		sha256[32];
	uint64_t	size;

	if (archive_check_file(ctx, path, &w, sha256, &size) != 0)
		return -1;
	return push_to_all(ctx, path, &w, NULL, sha256);
}

int
cmd_archive_push(config_t *cfg)
{
	const char *path = config_arg(cfg, 0);
	archive_ctx ctx;
	archive_file f;
	open_task	task = {&ctx, cfg, 0, DRB_OK, NULL};
	pthread_t	thread;
	bool		started;
	struct stat st;
	int			rc;

	if (cfg_bool(cfg, "archive-async"))
		return spool_push_wait(cfg, path);

	if (stat(path, &st) == 0 && (uint64_t) st.st_size > ARCHIVE_LOAD_MAX)
	{
		if (archive_ctx_open(&ctx, cfg, false) != 0)
			return -1;
		rc = push_streamed(&ctx, path);
		archive_ctx_close(&ctx);
		return rc;
	}

	/* open the repositories (round trips) while the file is mapped and hashed (CPU) */
	started = pthread_create(&thread, NULL, open_task_main, &task) == 0;
	if (!started)
		open_task_main(&task);
	rc = archive_file_map(path, &f);
	if (started)
		pthread_join(thread, NULL);
	if (task.rc != 0)
	{
		if (rc == 0)
		{
			err_set(task.kind, "%s", task.error);
			archive_file_unmap(&f);
		}
		free(task.error);
		return -1;				/* ctx is closed by a failed open */
	}
	if (rc == 0)
		rc = archive_file_check(&ctx, &f);
	if (rc == 0)
		rc = push_to_all(&ctx, path, &f.w, &f, NULL);
	if (f.data)
		archive_file_unmap(&f);
	archive_ctx_close(&ctx);
	return rc;
}
