/*
 * archive_async.c — the asynchronous archive-push worker (hidden command
 * archive-push-async), started by archive-push when archive-async=y.
 *
 * One worker per stanza (worker.lock). It scans pg1-path/pg_wal/archive_status for .ready
 * files (history files first, then oldest first), pushes them process-max at a time to
 * every repository (each file mapped and encoded as archive-push does it: hashed while it
 * is compressed, archive_push_encoded), and acknowledges each in the spool (out/<wal>.ok)
 * only once it is durable in every reachable repository and, for each repository that
 * could not take it (unreachable, erroring), a copy is fsynced under
 * lag/repo<N>/<wal>-<sha256>. A file no repository stored, a conflict or a foreign segment
 * gets out/<wal>.error instead, and archive-push reports it (removing it asks for another
 * attempt).
 *
 * Lagging repositories are retried every RETRY_MS: re-opened if they never opened, then
 * brought level from the local copies, oldest first, each verified against the checksum
 * in its name before it is pushed and removed only afterwards. The worker exits after
 * IDLE_MS without work once nothing is lagging. Everything it writes appears atomically,
 * so a kill -9 at any moment loses nothing: the next worker pushes again (a file already
 * stored is a success without upload) and removes the temp files left behind.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "command.h"
#include "error.h"
#include "filter_hash.h"
#include "log.h"
#include "mem.h"
#include "repo_config.h"
#include "spool_intern.h"
#include "stanza.h"

/* Exit after this long without work (and nothing lagging). */
#define IDLE_MS			30000
/* Retry a lagging repository this often. */
#define RETRY_MS		10000
/* A file acknowledged this recently is not pushed again while PostgreSQL catches up
 * (between archive-push consuming the .ok and PostgreSQL renaming .ready to .done). */
#define RECENT_MS		5000
/* Acknowledgements of files that are no longer .ready are removed after this long. */
#define STALE_ACK_S		300
/* How often the stale acknowledgements are looked for, and the queue alert repeated. */
#define HOUSEKEEP_MS	60000
/* Files taken per round, per thread (the ready list is scanned again after each round). */
#define ROUND_PER_THREAD 8

typedef struct repo_lag
{
	bool		lagging;		/* pushes are spooled instead of sent */
	int64_t		retry_at;		/* next attempt to bring it level (ms) */
} repo_lag;

typedef struct recent_ack
{
	char		name[64];
	int64_t		at;
} recent_ack;

typedef struct push_worker
{
	const config_t *cfg;
	spool_t		sp;
	archive_ctx ctx;
	char	   *wal_dir;		/* pg1-path/pg_wal */
	char	   *status_dir;		/* pg1-path/pg_wal/archive_status */
	int			threads;
	int64_t		queue_max;		/* alert threshold in bytes, 0: none */

	pthread_mutex_t lock;		/* guards lag[], recent[] and bad[] while threads run */
	repo_lag	lag[REPO_MAX];	/* by position in ctx.repos */
	recent_ack *recent;
	size_t		nrecent;
	char	  **bad;			/* "repo<N>/<copy>": local copies a repository refused */
	size_t		nbad;

	/* the current round */
	char	  **round;
	size_t		nround;
	bool		worked;			/* something was pushed or drained this round */
} push_worker;

/* ---------------------------------------------------------------------------------------
 * Spool names
 * ------------------------------------------------------------------------------------- */

/* out/ keeps only acknowledgements and errors */
static bool
out_keep(const char *name)
{
	size_t		len = strlen(name);

	return (len > 3 && strcmp(name + len - 3, ".ok") == 0) ||
		(len > 6 && strcmp(name + len - 6, ".error") == 0);
}

/* A lag copy is named "<wal>-<sha256 hex>"; split it. */
static bool
lag_name_parse(const char *name, wal_name *w, uint8_t sha256[32])
{
	const char *dash = strrchr(name, '-');
	char		wal[64];

	if (dash == NULL || strlen(dash + 1) != 64 || (size_t) (dash - name) >= sizeof(wal))
		return false;
	memcpy(wal, name, (size_t) (dash - name));
	wal[dash - name] = '\0';
	if (hex_decode(dash + 1, sha256, 32) != 0)
		return false;
	if (wal_name_parse(wal, w) != 0)
	{
		err_clear();
		return false;
	}
	return true;
}

static bool
lag_keep(const char *name)
{
	wal_name	w;
	uint8_t		sha[32];

	return lag_name_parse(name, &w, sha);
}

static char *
lag_dir(const push_worker *pw, int ri)
{
	return xasprintf("%s/repo%d", pw->sp.lag, pw->ctx.repos[ri].index);
}

/* ---------------------------------------------------------------------------------------
 * Acknowledgements
 * ------------------------------------------------------------------------------------- */

static void
write_ack(push_worker *pw, const char *wal, const struct stat *st, const uint8_t sha256[32])
{
	char		hex[65];
	char		line[160];
	char	   *path = xasprintf("%s/%s.ok", pw->sp.out, wal);
	int			len;

	hex_encode(sha256, 32, hex);
	len = snprintf(line, sizeof(line), "%llu %lld.%09ld %s\n", (unsigned long long) st->st_size,
				   (long long) st->st_mtim.tv_sec, (long) st->st_mtim.tv_nsec, hex);
	if (spool_write_file(path, line, (size_t) len, true) != 0)
	{
		log_error("%s", err_msg());
		err_clear();
	}
	else
	{
		pthread_mutex_lock(&pw->lock);
		pw->recent = xrealloc(pw->recent, (pw->nrecent + 1) * sizeof(recent_ack));
		snprintf(pw->recent[pw->nrecent].name, sizeof(pw->recent[0].name), "%s", wal);
		pw->recent[pw->nrecent].at = spool_now_ms();
		pw->nrecent++;
		pthread_mutex_unlock(&pw->lock);
	}
	free(path);
}

/* Record why wal could not be archived (kind, message) for archive-push to report. */
static void
write_error(push_worker *pw, const char *wal, drb_err kind, const char *msg)
{
	char	   *path = xasprintf("%s/%s.error", pw->sp.out, wal);
	char	   *line = xasprintf("%d %s\n", (int) kind, msg);

	for (char *c = line; *c; c++)
		if (*c == '\n' && c[1] != '\0')
			*c = ' ';
	log_error("%s", msg);
	if (spool_write_file(path, line, strlen(line), true) != 0)
	{
		log_error("%s", err_msg());
		err_clear();
	}
	free(line);
	free(path);
}

static bool
recently_acked(push_worker *pw, const char *wal, int64_t now)
{
	size_t		keep = 0;
	bool		found = false;

	for (size_t i = 0; i < pw->nrecent; i++)
	{
		if (now - pw->recent[i].at > RECENT_MS)
			continue;
		if (strcmp(pw->recent[i].name, wal) == 0)
			found = true;
		pw->recent[keep++] = pw->recent[i];
	}
	pw->nrecent = keep;
	return found;
}

/* ---------------------------------------------------------------------------------------
 * Pushing one file
 * ------------------------------------------------------------------------------------- */

static void
mark_lagging(push_worker *pw, int ri, const char *why)
{
	pthread_mutex_lock(&pw->lock);
	if (!pw->lag[ri].lagging)
		log_warn("repository %d is lagging, WAL is kept in the spool for it until it answers: %s",
				 pw->ctx.repos[ri].index, why);
	pw->lag[ri].lagging = true;
	pw->lag[ri].retry_at = spool_now_ms() + RETRY_MS;
	pthread_mutex_unlock(&pw->lock);
}

/*
 * Keep a fsynced local copy of a file for repository ri (no-op when one exists): from
 * memory, or copied from src when the file is too large to hold (data NULL).
 */
static int
lag_copy(push_worker *pw, int ri, const wal_name *w, const char *src, const uint8_t *data,
		 size_t len, const uint8_t sha256[32], bool *created)
{
	char		hex[65];
	char	   *dir = lag_dir(pw, ri);
	char	   *path;
	int			rc = 0;

	*created = false;
	hex_encode(sha256, 32, hex);
	path = xasprintf("%s/%s-%s", dir, w->name, hex);
	if (access(path, F_OK) != 0)
	{
		rc = spool_mkdir(dir);
		if (rc == 0)
			rc = data ? spool_write_file(path, data, len, true) : spool_copy_file(src, path);
		if (rc == 0)
			*created = true;
		else
			err_wrap("unable to keep WAL file '%s' for lagging repository %d", w->name,
					 pw->ctx.repos[ri].index);
	}
	free(path);
	free(dir);
	return rc;
}

static void
lag_copy_remove(push_worker *pw, int ri, const wal_name *w, const uint8_t sha256[32])
{
	char		hex[65];
	char	   *dir = lag_dir(pw, ri);
	char	   *path;

	hex_encode(sha256, 32, hex);
	path = xasprintf("%s/%s-%s", dir, w->name, hex);
	unlink(path);
	free(path);
	free(dir);
}

/*
 * Check a ready file and hold it: mapped (f->data; archive-push's way, see archive.h), or,
 * larger than ARCHIVE_LOAD_MAX, hashed in a streaming pass only (f->data NULL, *sha256
 * set, *hashed true). A mapped file is hashed while it is encoded for the first
 * repository (archive_push_encoded), or by push_sha when no repository takes it.
 */
static int
load_ready(push_worker *pw, const char *path, struct stat *st, archive_file *f,
		   uint8_t sha256[32], bool *hashed)
{
	uint64_t	size;

	memset(f, 0, sizeof(*f));
	*hashed = false;
	if (stat(path, st) != 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to stat WAL file '%s': %m", path);
	if ((uint64_t) st->st_size > ARCHIVE_LOAD_MAX)
	{
		if (archive_check_file(&pw->ctx, path, &f->w, sha256, &size) != 0)
			return -1;
		f->path = path;
		f->len = (size_t) size;
		*hashed = true;
		return 0;
	}
	if (archive_file_map(path, f) != 0)
		return -1;
	if (archive_file_check(&pw->ctx, f) != 0)
	{
		archive_file_unmap(f);
		return -1;
	}
	return 0;
}

/* PostgreSQL never changes a ready file: when it did, something else is at work. */
static int
ready_unchanged(const char *path, const struct stat *st)
{
	struct stat after;

	if (stat(path, &after) != 0 || after.st_size != st->st_size ||
		after.st_mtim.tv_sec != st->st_mtim.tv_sec || after.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
		return err_set(DRB_ERR_STORAGE, "WAL file '%s' changed while it was archived", path);
	return 0;
}

/* The checksum of a mapped ready file, computed once. */
static void
push_sha(const archive_file *f, uint8_t sha256[32], bool *hashed)
{
	if (!*hashed)
		sha256_buf(f->data, f->len, sha256);
	*hashed = true;
}

/*
 * Push one ready file to every repository and acknowledge it, or record why not:
 * - a repository that answers stores it (or already has it);
 * - a lagging one (unreachable, erroring: DRB_ERR_STORAGE) gets a local copy instead,
 *   without being tried while it lags, unless every repository lags;
 * - a conflict, a foreign segment, a repository that cannot open for another reason
 *   than storage failure, or no repository storing it: out/<wal>.error.
 */
static void
push_file(push_worker *pw, const char *wal)
{
	char	   *path = xasprintf("%s/%s", pw->wal_dir, wal);
	struct stat st;
	archive_file f;
	const wal_name *w = &f.w;
	uint8_t		sha[32];
	bool		hashed;
	bool		spooled[REPO_MAX] = {false};
	bool		try_all = true;
	int			stored = 0;
	drb_err		fail_kind = DRB_OK;
	buf_t		why;

	buf_init(&why);
	if (load_ready(pw, path, &st, &f, sha, &hashed) != 0)
	{
		write_error(pw, wal, err_kind(), err_msg());
		err_clear();
		goto done;				/* f holds nothing */
	}

	pthread_mutex_lock(&pw->lock);
	for (int i = 0; i < pw->ctx.nrepo; i++)
		if (!pw->lag[i].lagging)
			try_all = false;
	pthread_mutex_unlock(&pw->lock);

	for (int i = 0; i < pw->ctx.nrepo && fail_kind == DRB_OK; i++)
	{
		archive_repo *r = &pw->ctx.repos[i];
		bool		lagging;
		bool		skipped;
		int			rc;

		pthread_mutex_lock(&pw->lock);
		lagging = pw->lag[i].lagging;
		pthread_mutex_unlock(&pw->lock);

		if (r->repo == NULL && r->open_kind != DRB_ERR_STORAGE)
		{
			/* misconfigured, no stanza record, wrong key: a copy would only hide it */
			fail_kind = r->open_kind != DRB_OK ? r->open_kind : DRB_ERR_CONFIG;
			buf_printf(&why, "%s%s", why.len ? "; " : "",
					   r->open_error ? r->open_error : "repository did not open");
			break;
		}
		if (r->repo != NULL && (!lagging || try_all))
		{
			if (f.data)
			{
				uint8_t		got[32];

				/* the first encoding hashes the file as it compresses it */
				rc = archive_push_encoded(r, &f, got, &skipped);
				if (rc == 0 && !hashed)
				{
					memcpy(sha, got, 32);
					hashed = true;
				}
			}
			else
				rc = archive_push_path(r, w, path, sha, &skipped);
			if (rc == 0)
			{
				log_detail("pushed %s to repository %d%s", wal, r->index,
						   skipped ? " (already stored)" : "");
				stored++;
				continue;
			}
			buf_printf(&why, "%s%s", why.len ? "; " : "", err_msg());
			if (err_kind() != DRB_ERR_STORAGE)
			{
				/* a conflict, a refused segment: never hidden behind a local copy */
				fail_kind = err_kind();
				err_clear();
				break;
			}
			mark_lagging(pw, i, err_msg());
			err_clear();
		}
		else if (r->repo == NULL && try_all)
			buf_printf(&why, "%s%s", why.len ? "; " : "",
					   r->open_error ? r->open_error : "repository did not open");

		if (f.data)
			push_sha(&f, sha, &hashed);
		if (lag_copy(pw, i, w, path, f.data, f.len, sha, &spooled[i]) != 0)
		{
			fail_kind = err_kind();
			buf_printf(&why, "%s%s", why.len ? "; " : "", err_msg());
			err_clear();
			break;
		}
	}

	if (fail_kind == DRB_OK && ready_unchanged(path, &st) != 0)
	{
		fail_kind = err_kind();
		buf_printf(&why, "%s%s", why.len ? "; " : "", err_msg());
		err_clear();
	}
	if (fail_kind == DRB_OK && stored == 0)
	{
		fail_kind = DRB_ERR_STORAGE;
		if (why.len == 0)
			buf_printf(&why, "every repository is lagging");
	}
	if (fail_kind != DRB_OK)
	{
		char	   *msg = xasprintf("unable to archive WAL file '%s' asynchronously: %s", wal,
									buf_cstr(&why));

		/* not acknowledged: the copies made for this attempt are not needed */
		for (int i = 0; i < pw->ctx.nrepo; i++)
			if (spooled[i])
				lag_copy_remove(pw, i, w, sha);
		write_error(pw, wal, fail_kind, msg);
		free(msg);
		goto done;
	}
	write_ack(pw, wal, &st, sha);
	__atomic_store_n(&pw->worked, true, __ATOMIC_RELAXED);
	log_info("archived %s (%zu bytes)%s", wal, f.len, stored < pw->ctx.nrepo ?
			 ", kept in the spool for lagging repositories" : "");

done:
	buf_free(&why);
	if (f.data)
		archive_file_unmap(&f);
	free(path);
}

static void
push_job(void *arg, size_t i)
{
	push_worker *pw = arg;

	push_file(pw, pw->round[i]);
}

/* ---------------------------------------------------------------------------------------
 * The ready queue
 * ------------------------------------------------------------------------------------- */

static bool
is_history(const char *name)
{
	size_t		len = strlen(name);

	return len > 8 && strcmp(name + len - 8, ".history") == 0;
}

/* History files first (recovery needs them to choose a timeline), then by name. */
static int
ready_cmp(const void *a, const void *b)
{
	const char *x = *(char *const *) a;
	const char *y = *(char *const *) b;

	if (is_history(x) != is_history(y))
		return is_history(x) ? -1 : 1;
	return strcmp(x, y);
}

/*
 * The ready files still to push (at most max, in push order) into pw->round; also warns
 * when the queue is above archive-push-queue-max.
 */
static void
scan_ready(push_worker *pw, size_t max, int64_t now, int64_t *alert_at)
{
	size_t		n;
	char	  **names = spool_list(pw->status_dir, &n);
	uint64_t	queued = 0;

	pw->nround = 0;
	for (size_t i = 0; i < n; i++)
	{
		size_t		len = strlen(names[i]);
		char	   *p;

		if (len <= 6 || strcmp(names[i] + len - 6, ".ready") != 0)
		{
			free(names[i]);
			continue;
		}
		names[i][len - 6] = '\0';
		if (pw->queue_max > 0)
		{
			struct stat st;

			p = xasprintf("%s/%s", pw->wal_dir, names[i]);
			if (stat(p, &st) == 0)
				queued += (uint64_t) st.st_size;
			free(p);
		}

		/* acknowledged, or failed and not asked again yet */
		p = xasprintf("%s/%s.ok", pw->sp.out, names[i]);
		bool		skip = access(p, F_OK) == 0;

		free(p);
		if (!skip)
		{
			p = xasprintf("%s/%s.error", pw->sp.out, names[i]);
			skip = access(p, F_OK) == 0;
			free(p);
		}
		if (skip || recently_acked(pw, names[i], now))
		{
			free(names[i]);
			continue;
		}
		names[pw->nround++] = names[i];
	}
	qsort(names, pw->nround, sizeof(char *), ready_cmp);
	while (pw->nround > max)
		free(names[--pw->nround]);
	pw->round = names;

	if (pw->queue_max > 0 && queued > (uint64_t) pw->queue_max && now >= *alert_at)
	{
		log_warn("%llu bytes of WAL are waiting to be archived, more than "
				 "archive-push-queue-max (%lld): archiving is not keeping up (nothing is dropped)",
				 (unsigned long long) queued, (long long) pw->queue_max);
		*alert_at = now + HOUSEKEEP_MS;
	}
}

static void
round_free(push_worker *pw)
{
	spool_names_free(pw->round, pw->nround);
	pw->round = NULL;
	pw->nround = 0;
}

/* Acknowledgements and errors of files that are no longer .ready, after STALE_ACK_S. */
static void
remove_stale_acks(push_worker *pw)
{
	size_t		n;
	char	  **names = spool_list(pw->sp.out, &n);
	time_t		now = time(NULL);

	for (size_t i = 0; i < n; i++)
	{
		char	   *dot = strrchr(names[i], '.');
		char	   *path;
		char	   *ready;
		struct stat st;

		if (dot == NULL || !out_keep(names[i]))
			continue;
		path = xasprintf("%s/%s", pw->sp.out, names[i]);
		ready = xasprintf("%s/%.*s.ready", pw->status_dir, (int) (dot - names[i]), names[i]);
		if (stat(path, &st) == 0 && now - st.st_mtime > STALE_ACK_S && access(ready, F_OK) != 0)
		{
			unlink(path);
			log_detail("removed stale acknowledgement '%s'", names[i]);
		}
		free(ready);
		free(path);
	}
	spool_names_free(names, n);
}

/* ---------------------------------------------------------------------------------------
 * Lagging repositories
 * ------------------------------------------------------------------------------------- */

/* Open repository ri that did not open with the context; check it holds our cluster. */
static int
reopen_repo(push_worker *pw, int ri)
{
	archive_repo *r = &pw->ctx.repos[ri];
	const stanza_info *ref = NULL;
	stanza_info info;
	repo_t	   *repo;

	for (int i = 0; i < pw->ctx.nrepo; i++)
		if (i != ri && pw->ctx.repos[i].repo != NULL)
			ref = &pw->ctx.repos[i].stanza;

	repo = repo_config_open(pw->cfg, r->index);
	if (repo == NULL)
		return -1;
	if (stanza_info_read(repo, pw->ctx.stanza, &info) != 0)
	{
		repo_close(repo);
		return -1;
	}
	if (ref != NULL && (ref->system_id != info.system_id || ref->pg_version != info.pg_version))
	{
		repo_close(repo);
		return err_set(DRB_ERR_STANZA, "repository %d holds stanza '%s' of system identifier "
					   "%llu (PostgreSQL %d), the other repositories of system identifier %llu "
					   "(PostgreSQL %d)", r->index, pw->ctx.stanza,
					   (unsigned long long) info.system_id, info.pg_version,
					   (unsigned long long) ref->system_id, ref->pg_version);
	}
	r->repo = repo;
	r->stanza = info;
	free(r->open_error);
	r->open_error = NULL;
	log_info("repository %d opened", r->index);
	return 0;
}

/* A copy repository ri refused for another reason than a storage failure (a conflict,
 * damage): reported once, then left alone for this worker's lifetime. */
static void
mark_bad(push_worker *pw, int ri, const char *name)
{
	log_error("repository %d: spooled copy %s is left in the spool: %s", pw->ctx.repos[ri].index,
			  name, err_msg());
	pthread_mutex_lock(&pw->lock);
	pw->bad = xrealloc(pw->bad, (pw->nbad + 1) * sizeof(char *));
	pw->bad[pw->nbad++] = xasprintf("repo%d/%s", pw->ctx.repos[ri].index, name);
	pthread_mutex_unlock(&pw->lock);
}

static bool
is_bad(push_worker *pw, int ri, const char *name)
{
	char	   *key = xasprintf("repo%d/%s", pw->ctx.repos[ri].index, name);
	bool		found = false;

	pthread_mutex_lock(&pw->lock);
	for (size_t i = 0; i < pw->nbad && !found; i++)
		found = strcmp(pw->bad[i], key) == 0;
	pthread_mutex_unlock(&pw->lock);
	free(key);
	return found;
}

typedef struct drain_round
{
	push_worker *pw;
	int			ri;
	char	  **names;
	size_t		n;
} drain_round;

/*
 * Bring one local copy to its repository: verified against the checksum in its name,
 * pushed (already stored with the same content is fine), then removed. A copy that
 * cannot be stored for another reason than storage failure stays and is reported.
 */
static int
drain_one(push_worker *pw, int ri, const char *name)
{
	archive_repo *r = &pw->ctx.repos[ri];
	char	   *dir = lag_dir(pw, ri);
	char	   *path = xasprintf("%s/%s", dir, name);
	wal_name	w;
	uint8_t		want[32];
	uint8_t		got[32];
	uint8_t    *data = NULL;
	size_t		len;
	struct stat st;
	bool		skipped;
	int			rc = -1;

	if (!lag_name_parse(name, &w, want))
		err_set(DRB_ERR_INTERNAL, "'%s' is not a spooled WAL copy", path);
	else if (stat(path, &st) != 0)
		err_set(DRB_ERR_INTERNAL, "unable to stat '%s': %m", path);
	else if ((uint64_t) st.st_size > ARCHIVE_LOAD_MAX)
	{
		/* streamed: a copy whose content does not match its name is refused and taken back */
		rc = archive_push_path(r, &w, path, want, &skipped);
	}
	else if (spool_read_file(path, &data, &len) == 0)
	{
		sha256_buf(data, len, got);
		if (memcmp(want, got, 32) != 0)
			err_set(DRB_ERR_INTEGRITY, "spooled copy '%s' is damaged (its checksum does not "
					"match its name): repository %d still lacks %s, use repo-sync",
					path, r->index, w.name);
		else
			rc = archive_push_one(r, &w, data, len, want, &skipped);
	}
	if (rc == 0)
	{
		unlink(path);
		log_info("repository %d: pushed %s from the spool%s", r->index, w.name,
				 skipped ? " (already stored)" : "");
	}
	free(data);
	free(path);
	free(dir);
	return rc;
}

static void
drain_job(void *arg, size_t i)
{
	drain_round *d = arg;
	push_worker *pw = d->pw;
	bool		lagging;

	pthread_mutex_lock(&pw->lock);
	lagging = pw->lag[d->ri].lagging;
	pthread_mutex_unlock(&pw->lock);
	if (lagging)
		return;					/* it failed again meanwhile */
	if (drain_one(pw, d->ri, d->names[i]) == 0)
	{
		__atomic_store_n(&pw->worked, true, __ATOMIC_RELAXED);
		return;
	}
	if (err_kind() == DRB_ERR_STORAGE)
		mark_lagging(pw, d->ri, err_msg());
	else
		mark_bad(pw, d->ri, d->names[i]);
	err_clear();
}

/* The local copies still to push to repository ri, oldest first. */
static char **
lag_list(push_worker *pw, int ri, size_t *n)
{
	char	   *dir = lag_dir(pw, ri);
	char	  **names = spool_list(dir, n);
	size_t		keep = 0;

	for (size_t i = 0; i < *n; i++)
	{
		if (lag_keep(names[i]) && !is_bad(pw, ri, names[i]))
			names[keep++] = names[i];
		else
			free(names[i]);
	}
	*n = keep;
	free(dir);
	return names;
}

/*
 * Retry, when their time has come, the repositories that did not open (open them) and
 * the lagging ones (push the oldest copy). Then push the copies of the repositories that
 * answer, a bounded round at a time, in parallel. No push threads run meanwhile.
 * Returns the number of copies still waiting in the spool.
 */
static size_t
retry_lagging(push_worker *pw, int64_t now)
{
	size_t		waiting = 0;

	for (int ri = 0; ri < pw->ctx.nrepo; ri++)
	{
		archive_repo *r = &pw->ctx.repos[ri];
		repo_lag   *lag = &pw->lag[ri];
		drain_round d = {.pw = pw, .ri = ri};
		size_t		first = 0;

		d.names = lag_list(pw, ri, &d.n);
		if (now >= lag->retry_at && (r->repo == NULL || lag->lagging))
		{
			if (r->repo == NULL && reopen_repo(pw, ri) != 0)
			{
				/* keep the latest cause: pushes decide on it (spool or refuse) */
				free(r->open_error);
				r->open_error = xstrdup(err_msg());
				r->open_kind = err_kind();
				if (r->open_kind == DRB_ERR_STORAGE)
					mark_lagging(pw, ri, err_msg());
				log_info("repository %d is still unavailable: %s", r->index, err_msg());
				err_clear();
				lag->retry_at = now + RETRY_MS;
			}
			if (r->repo != NULL && lag->lagging)
			{
				if (d.n == 0)
					lag->lagging = false;
				else if (drain_one(pw, ri, d.names[0]) == 0)
				{
					first = 1;
					lag->lagging = false;
				}
				else if (err_kind() != DRB_ERR_STORAGE)
				{
					/* this copy cannot go in (reported); the others may */
					mark_bad(pw, ri, d.names[0]);
					err_clear();
					first = 1;
					lag->lagging = false;
				}
				else
				{
					log_info("repository %d is still lagging: %s", r->index, err_msg());
					err_clear();
					lag->retry_at = now + RETRY_MS;
				}
				if (!lag->lagging)
					log_info("repository %d answers again: %zu spooled files to push",
							 r->index, d.n - first);
			}
		}

		if (r->repo != NULL && !lag->lagging && d.n > first)
		{
			size_t		take = d.n - first;
			size_t		max = (size_t) pw->threads * ROUND_PER_THREAD;
			drain_round sub = d;

			if (take > max)
				take = max;
			sub.names = d.names + first;
			sub.n = take;
			spool_parallel(pw->threads, take, drain_job, &sub);
			pw->worked = true;
			spool_names_free(d.names, d.n);
			d.names = lag_list(pw, ri, &d.n);
		}
		else if (first == 1)
			pw->worked = true;
		waiting += d.n;
		spool_names_free(d.names, d.n);
	}
	return waiting;
}

/* ---------------------------------------------------------------------------------------
 * The worker
 * ------------------------------------------------------------------------------------- */

/* Record err for every file waiting, so that archive-push reports it at once. */
static void
fail_all_ready(push_worker *pw, drb_err kind, const char *msg)
{
	int64_t		alert = INT64_MAX;

	scan_ready(pw, SIZE_MAX, spool_now_ms(), &alert);
	for (size_t i = 0; i < pw->nround; i++)
		write_error(pw, pw->round[i], kind, msg);
	round_free(pw);
}

static int
worker_run(push_worker *pw)
{
	spool_watch watch;
	int64_t		idle_since = spool_now_ms();
	int64_t		housekeep_at = 0;
	int64_t		alert_at = 0;

	spool_watch_init(&watch);
	spool_watch_add(&watch, pw->status_dir);
	spool_watch_add(&watch, pw->sp.out);
	for (;;)
	{
		int64_t		now = spool_now_ms();
		size_t		waiting;
		size_t		todo;

		pw->worked = false;
		waiting = retry_lagging(pw, now);

		scan_ready(pw, (size_t) pw->threads * ROUND_PER_THREAD, now, &alert_at);
		todo = pw->nround;
		if (todo > 0)
			spool_parallel(pw->threads, todo, push_job, pw);
		round_free(pw);

		if (now >= housekeep_at)
		{
			remove_stale_acks(pw);
			housekeep_at = now + HOUSEKEEP_MS;
		}
		if (todo > 0 || pw->worked)
		{
			idle_since = spool_now_ms();
			continue;
		}
		if (waiting == 0 && now - idle_since >= IDLE_MS)
			break;
		spool_watch_wait(&watch, 1000);
	}
	spool_watch_close(&watch);
	log_info("no more WAL to archive: the worker exits");
	return 0;
}

int
cmd_archive_push_async(config_t *cfg)
{
	push_worker pw;
	const char *pg = cfg_str(cfg, "pg1-path");
	const char *level = cfg_str(cfg, "log-level-file");
	char	   *lock_path;
	char	   *log_path;
	int			lock_fd;
	int			rc;

	memset(&pw, 0, sizeof(pw));
	pw.cfg = cfg;
	if (pg == NULL)
		return err_set(DRB_ERR_CONFIG, "asynchronous archiving (archive-async) needs pg1-path "
					   "in the stanza's section: the worker pushes the files listed in "
					   "pg1-path/pg_wal/archive_status");
	if (spool_open(&pw.sp, cfg) != 0)
		return -1;
	lock_path = xasprintf("%s/worker.lock", pw.sp.dir);
	rc = spool_lock_try(lock_path, &lock_fd);
	free(lock_path);
	if (rc != 0 || lock_fd < 0)
	{
		/* another worker runs: nothing to do */
		spool_close(&pw.sp);
		return rc;
	}

	spool_lock_note_pid(lock_fd);
	signal(SIGPIPE, SIG_IGN);
	log_path = xasprintf("%s/worker.log", pw.sp.dir);
	if (log_open_file(log_path, level && strcmp(level, "off") != 0 ?
					  (log_level) log_level_parse(level) : LOG_INFO) != 0)
		err_clear();			/* no log: still archive */
	free(log_path);
	log_info("archive-push worker started (process-max %lld)",
			 (long long) cfg_int(cfg, "process-max"));

	pw.wal_dir = xasprintf("%s/pg_wal", pg);
	pw.status_dir = xasprintf("%s/pg_wal/archive_status", pg);
	pw.threads = (int) cfg_int(cfg, "process-max");
	pw.queue_max = cfg_int(cfg, "archive-push-queue-max");
	pthread_mutex_init(&pw.lock, NULL);

	rc = spool_mkdir(pw.sp.out);
	if (rc == 0)
		rc = spool_mkdir(pw.sp.lag);
	if (rc == 0 && archive_ctx_open(&pw.ctx, cfg, false) != 0)
	{
		/* no repository at all: every waiting archive-push learns why */
		fail_all_ready(&pw, err_kind(), err_msg());
		rc = -1;
	}
	else if (rc == 0)
	{
		/* a killed predecessor's leftovers; what lags from before is retried at once */
		spool_remove_unless(pw.sp.out, out_keep);
		for (int i = 0; i < pw.ctx.nrepo; i++)
		{
			char	   *dir = lag_dir(&pw, i);
			char	  **copies;
			size_t		n;

			spool_remove_unless(dir, lag_keep);
			copies = spool_list(dir, &n);
			spool_names_free(copies, n);
			free(dir);
			pw.lag[i].retry_at = spool_now_ms() + RETRY_MS;
			if (pw.ctx.repos[i].repo == NULL && pw.ctx.repos[i].open_kind == DRB_ERR_STORAGE)
				mark_lagging(&pw, i, pw.ctx.repos[i].open_error);
			else if (pw.ctx.repos[i].repo != NULL && n > 0)
			{
				/* copies from an earlier worker: bring it level first thing */
				pw.lag[i].lagging = true;
				pw.lag[i].retry_at = 0;
			}
		}
		rc = worker_run(&pw);
		archive_ctx_close(&pw.ctx);
	}
	if (rc != 0)
		log_error("archive-push worker: %s", err_msg());
	pthread_mutex_destroy(&pw.lock);
	spool_names_free(pw.bad, pw.nbad);
	free(pw.recent);
	free(pw.wal_dir);
	free(pw.status_dir);
	spool_close(&pw.sp);
	close(lock_fd);
	return rc;
}
