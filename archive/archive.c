/*
 * archive.c — the WAL archive of a stanza in its repositories (see archive.h).
 *
 * A WAL file's way out. archive-push: archive_file_map maps it and checks its header
 * against the stanza; archive_push_encoded asks each repository with one narrow LIST
 * whether the name is stored, and when it is not, encodes the file through the repository
 * pipeline in memory (SHA-256 in parallel with compression) and stores it under
 * "<name>-<sha256>". The async worker does the same with each ready file (files above
 * ARCHIVE_LOAD_MAX: archive_check_file hashes it in one pass, archive_push_path streams it).
 * A name found with the same checksum is read back and verified before it counts as stored.
 * The way back (archive_get_one) finds the object the same way and lets the
 * pipeline verify the bytes against the checksum in the name before the file is renamed
 * into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "archive.h"
#include "filter_hash.h"
#include "log.h"
#include "mem.h"
#include "repo_config.h"

#define READ_CHUNK			(1024 * 1024)
#define WAL_FILE_MAX		((uint64_t) 1024 * 1024 * 1024)	/* the largest segment size */

/* ---------------------------------------------------------------------------------------
 * Opening the repositories
 * ------------------------------------------------------------------------------------- */

typedef struct open_job
{
	const config_t *cfg;
	const char *stanza;
	archive_repo *r;
} open_job;

static void
repo_failed(archive_repo *r)
{
	r->open_error = xstrdup(err_msg());
	r->open_kind = err_kind();
	repo_close(r->repo);
	r->repo = NULL;
}

/* Open one repository and read the stanza record; failures land in r->open_error. */
static void *
open_main(void *arg)
{
	open_job   *job = arg;
	archive_repo *r = job->r;

	r->repo = repo_config_open(job->cfg, r->index);
	if (r->repo == NULL)
	{
		repo_failed(r);
		return NULL;
	}
	if (stanza_info_read(r->repo, job->stanza, &r->stanza) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
			err_set(DRB_ERR_STANZA, "repository %d has no stanza '%s' (run stanza-create)",
					r->index, job->stanza);
		repo_failed(r);
	}
	return NULL;
}

/* The first open repository, or NULL. */
static const archive_repo *
first_open(const archive_ctx *ctx)
{
	for (int i = 0; i < ctx->nrepo; i++)
		if (ctx->repos[i].repo)
			return &ctx->repos[i];
	return NULL;
}

int
archive_ctx_open(archive_ctx *ctx, const config_t *cfg, bool only_selected)
{
	int			idx[REPO_MAX];
	open_job	jobs[REPO_MAX];
	pthread_t	threads[REPO_MAX];
	bool		started[REPO_MAX] = {false};
	const archive_repo *ref;
	buf_t		why;

	memset(ctx, 0, sizeof(*ctx));
	ctx->cfg = cfg;
	ctx->stanza = cfg_str(cfg, "stanza");
	if (ctx->stanza == NULL || !stanza_name_valid(ctx->stanza))
		return err_set(DRB_ERR_USAGE, "WAL archiving needs a valid --stanza=NAME (got '%s')",
					   ctx->stanza ? ctx->stanza : "");
	if (only_selected)
		ctx->nrepo = repo_config_selected(cfg, true, idx);
	else
	{
		for (int n = 1; n <= REPO_MAX; n++)
			if (cfg_repo_configured(cfg, n))
				idx[ctx->nrepo++] = n;
	}

	/* each repository costs a few round trips (key file, stanza record): overlap them */
	for (int i = 0; i < ctx->nrepo; i++)
	{
		ctx->repos[i].index = idx[i];
		jobs[i] = (open_job) {cfg, ctx->stanza, &ctx->repos[i]};
		if (i < ctx->nrepo - 1)	/* the last one is opened by this thread */
			started[i] = pthread_create(&threads[i], NULL, open_main, &jobs[i]) == 0;
		if (!started[i])
			open_main(&jobs[i]);
	}
	for (int i = 0; i < ctx->nrepo; i++)
		if (started[i])
			pthread_join(threads[i], NULL);

	ref = first_open(ctx);
	if (ref == NULL)
	{
		buf_init(&why);
		for (int i = 0; i < ctx->nrepo; i++)
			buf_printf(&why, "%s%s", i ? "; " : "", ctx->repos[i].open_error);
		if (ctx->nrepo == 1)
			err_set(ctx->repos[0].open_kind, "%s", buf_cstr(&why));
		else
			err_set(ctx->nrepo ? ctx->repos[0].open_kind : DRB_ERR_CONFIG,
					"no repository could be opened for stanza '%s': %s", ctx->stanza,
					ctx->nrepo ? buf_cstr(&why) : "none is configured");
		buf_free(&why);
		archive_ctx_close(ctx);
		return -1;
	}
	for (int i = 0; i < ctx->nrepo; i++)
	{
		const archive_repo *r = &ctx->repos[i];

		if (r->repo && (r->stanza.system_id != ref->stanza.system_id ||
						r->stanza.pg_version != ref->stanza.pg_version))
		{
			err_set(DRB_ERR_STANZA, "repositories disagree about stanza '%s': repository %d "
					"holds system identifier %" PRIu64 " (PostgreSQL %d), repository %d holds "
					"system identifier %" PRIu64 " (PostgreSQL %d)", ctx->stanza, ref->index,
					ref->stanza.system_id, ref->stanza.pg_version, r->index,
					r->stanza.system_id, r->stanza.pg_version);
			archive_ctx_close(ctx);
			return -1;
		}
	}
	return 0;
}

void
archive_ctx_close(archive_ctx *ctx)
{
	for (int i = 0; i < ctx->nrepo; i++)
	{
		repo_close(ctx->repos[i].repo);
		ctx->repos[i].repo = NULL;
		free(ctx->repos[i].open_error);
		ctx->repos[i].open_error = NULL;
	}
	ctx->nrepo = 0;
}

/* ---------------------------------------------------------------------------------------
 * Names and lookup
 * ------------------------------------------------------------------------------------- */

char *
archive_object_prefix(const archive_repo *r, const wal_name *w)
{
	char		dir[17];

	if (w->kind == WAL_HISTORY)
		snprintf(dir, sizeof(dir), "history");
	else
		snprintf(dir, sizeof(dir), "%.16s", w->name);
	return xasprintf("stanza/%s/archive/%d-%" PRIu64 "/%s/%s-", r->stanza.name,
					 r->stanza.pg_version, r->stanza.system_id, dir, w->name);
}

char *
archive_object_path(const archive_repo *r, const wal_name *w, const uint8_t sha256[32])
{
	char	   *prefix = archive_object_prefix(r, w);
	char		hex[65];
	char	   *path;

	hex_encode(sha256, 32, hex);
	path = xasprintf("%s%s", prefix, hex);
	free(prefix);
	return path;
}

typedef struct find_state
{
	size_t		prefix_len;
	int			count;
	uint8_t		sha256[32];
	char	   *first;
	buf_t		all;			/* every match, for the error message */
} find_state;

/* A stored name is "<prefix><64 lower-case hex digits>"; anything else is not ours. */
static int
find_cb(const storage_info *info, void *arg)
{
	find_state *fs = arg;
	const char *rest = info->path + fs->prefix_len;
	uint8_t		sha[32];

	if (strlen(rest) != 64 || strspn(rest, "0123456789abcdef") != 64 ||
		hex_decode(rest, sha, sizeof(sha)) != 0)
		return 0;
	if (fs->count++ == 0)
	{
		memcpy(fs->sha256, sha, sizeof(sha));
		fs->first = xstrdup(info->path);
	}
	buf_printf(&fs->all, "%s'%s'", fs->all.len ? ", " : "", info->path);
	return 0;
}

int
archive_find(const archive_repo *r, const wal_name *w, bool *found, uint8_t sha256[32],
			 char **path)
{
	char	   *prefix;
	find_state	fs = {0};
	int			rc;

	*found = false;
	if (path)
		*path = NULL;
	if (r->repo == NULL)
		return err_set(r->open_kind, "%s", r->open_error);
	prefix = archive_object_prefix(r, w);
	fs.prefix_len = strlen(prefix);
	buf_init(&fs.all);
	rc = storage_list(repo_storage(r->repo), prefix, find_cb, &fs);
	if (rc != 0)
		err_wrap("repository %d: unable to look for WAL file %s", r->index, w->name);
	else if (fs.count > 1)
		rc = err_set(DRB_ERR_INTEGRITY, "WAL file %s is stored %d times in repository %d with "
					 "different content (%s): remove the wrong ones", w->name, fs.count,
					 r->index, buf_cstr(&fs.all));
	else if (fs.count == 1)
	{
		*found = true;
		memcpy(sha256, fs.sha256, 32);
		if (path)
		{
			*path = fs.first;
			fs.first = NULL;
		}
	}
	free(fs.first);
	buf_free(&fs.all);
	free(prefix);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * Push
 * ------------------------------------------------------------------------------------- */

/*
 * w is stored with checksum stored: *store false when that is sha256 and the object
 * verifies (skipped); true when it is sha256 but damaged (store it again); an error when
 * it is another checksum.
 */
static int
push_decide_found(const archive_repo *r, const wal_name *w, const uint8_t stored[32],
				  const uint8_t sha256[32], bool *store)
{
	char		have[65];
	char		want[65];

	*store = false;
	if (memcmp(stored, sha256, 32) == 0)
	{
		/*
		 * Same name, same checksum. A re-push happens after a failure or a killed worker, so
		 * do not trust the name alone: read the object back and verify it. A store that kept
		 * a partial upload (a lenient S3 implementation, a crash) gets the object again.
		 */
		char	   *path = archive_object_path(r, w, sha256);
		filter_t   *null_sink = filter_sink_null_new();
		int			rc = repo_get(r->repo, path, null_sink, sha256, NULL);

		filter_chain_free(null_sink);
		if (rc != 0 && err_kind() == DRB_ERR_INTEGRITY)
		{
			log_warn("%s; storing WAL file %s in repository %d again", err_msg(), w->name,
					 r->index);
			err_clear();
			*store = true;
			rc = 0;
		}
		else if (rc == 0)
			log_debug("WAL file %s is already archived in repository %d with the same content "
					  "(verified)", w->name, r->index);
		free(path);
		return rc;
	}
	hex_encode(stored, 32, have);
	hex_encode(sha256, 32, want);
	return err_set(DRB_ERR_STANZA, "WAL file %s is already archived in repository %d with "
				   "different content (stored sha256 %s, this file sha256 %s): refusing to "
				   "overwrite", w->name, r->index, have, want);
}

/* push_decide_found after one narrow LIST; *store true when w is not stored yet. */
static int
push_decide(const archive_repo *r, const wal_name *w, const uint8_t sha256[32], bool *store)
{
	uint8_t		stored[32];
	bool		found;

	*store = false;
	if (archive_find(r, w, &found, stored, NULL) != 0)
		return -1;
	if (!found)
	{
		*store = true;
		return 0;
	}
	return push_decide_found(r, w, stored, sha256, store);
}

int
archive_push_one(const archive_repo *r, const wal_name *w, const uint8_t *data, size_t len,
				 const uint8_t sha256[32], bool *skipped)
{
	bool		store;
	char	   *path;
	int			rc;

	*skipped = false;
	if (push_decide(r, w, sha256, &store) != 0)
		return -1;
	if (!store)
	{
		*skipped = true;
		return 0;
	}
	path = archive_object_path(r, w, sha256);
	rc = repo_put_buf_hashed(r->repo, path, data, len, sha256, NULL);
	if (rc == 0)
		log_debug("WAL file %s archived in repository %d", w->name, r->index);
	free(path);
	return rc;
}

/*
 * Bytes of a mapping encoded per step (then dropped from the process): one batch of the
 * encoder's 1 MiB frames (FRAME_BATCH, four), compressed by two threads while a third
 * hashes. Each step ends with the threads meeting, so fewer larger steps are faster
 * (2 MiB: 34 ms a push, 4 MiB: 32 ms, 8 MiB: 30 ms here), but a step's pages count in
 * the push's memory: at 8 MiB it would exceed pgBackRest's whole push (19 MiB).
 */
#define ENCODE_STEP (4 * 1024 * 1024)

/* Encode a mapped file step by step, releasing each encoded step's pages. */
static int
encode_mapped(const archive_repo *r, const archive_file *f, buf_t *out, repo_object_result *res)
{
	filter_t   *head = repo_encode_open(r->repo, out, res, f->len);
	long		page = sysconf(_SC_PAGESIZE);
	size_t		off = 0;
	int			rc = head ? 0 : -1;

	while (rc == 0 && off < f->len)
	{
		size_t		n = f->len - off < ENCODE_STEP ? f->len - off : ENCODE_STEP;
		size_t		from = off - off % (size_t) page;

		rc = filter_push(head, f->data + off, n);
		off += n;
		/* the chain has consumed these bytes: whole pages before off can go */
		if (rc == 0 && f->len && off - off % (size_t) page > from)
			(void) madvise((void *) (f->data + from), off - off % (size_t) page - from,
						   MADV_DONTNEED);
	}
	if (rc == 0)
		rc = filter_finish(head);
	filter_chain_free(head);
	return rc;
}

int
archive_push_encoded(const archive_repo *r, const archive_file *f, uint8_t sha256[32],
					 bool *skipped)
{
	const wal_name *w = &f->w;
	repo_object_result res;
	bool		found;
	uint8_t		stored[32];
	buf_t		encoded;
	char	   *path;
	int			rc;

	*skipped = false;
	if (archive_find(r, w, &found, stored, NULL) != 0)
		return -1;
	if (found)
	{
		bool		store;

		/* a re-push: only the checksum is needed to tell "same" from "conflict" */
		sha256_buf(f->data, f->len, sha256);
		if (push_decide_found(r, w, stored, sha256, &store) != 0)
			return -1;
		*skipped = !store;
		if (!store)
			return 0;
	}
	buf_init(&encoded);
	rc = encode_mapped(r, f, &encoded, &res);
	if (rc == 0)
	{
		memcpy(sha256, res.sha256, 32);
		path = archive_object_path(r, w, sha256);
		rc = storage_put_buf(repo_storage(r->repo), path, encoded.data, encoded.len);
		if (rc != 0)
			err_wrap("repository %d: unable to archive WAL file %s", r->index, w->name);
		else
			log_debug("WAL file %s archived in repository %d", w->name, r->index);
		free(path);
	}
	buf_free(&encoded);
	return rc;
}

int
archive_push_path(const archive_repo *r, const wal_name *w, const char *path,
				  const uint8_t sha256[32], bool *skipped)
{
	repo_object_result res;
	bool		store;
	char	   *obj;
	int			fd;
	int			rc;

	*skipped = false;
	if (push_decide(r, w, sha256, &store) != 0)
		return -1;
	if (!store)
	{
		*skipped = true;
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to open WAL file '%s': %m", path);
	obj = archive_object_path(r, w, sha256);
	rc = repo_put_fd(r->repo, obj, fd, &res);
	close(fd);
	if (rc == 0 && memcmp(res.sha256, sha256, 32) != 0)
	{
		/* the name would lie about the content: take it back */
		if (storage_remove(repo_storage(r->repo), obj) != 0)
			log_warn("%s", err_msg());
		rc = err_set(DRB_ERR_INTEGRITY, "WAL file '%s' changed while it was being archived in "
					 "repository %d", path, r->index);
	}
	free(obj);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * Reading a local WAL file
 * ------------------------------------------------------------------------------------- */

/* Parse path's base name into w and open it: a regular file of at most 1 GiB. */
static int
open_wal_file(const char *path, wal_name *w, int *fd, uint64_t *size)
{
	const char *base = strrchr(path, '/');
	struct stat st;
	int			rc = 0;

	*fd = -1;
	*size = 0;
	if (wal_name_parse(base ? base + 1 : path, w) != 0)
		return err_wrap("unable to archive '%s'", path);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to open WAL file '%s': %m", path);
	if (fstat(*fd, &st) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to stat WAL file '%s': %m", path);
	else if (!S_ISREG(st.st_mode))
		rc = err_set(DRB_ERR_USAGE, "WAL file '%s' is not a regular file", path);
	else if ((uint64_t) st.st_size > WAL_FILE_MAX)
		rc = err_set(DRB_ERR_INTEGRITY, "WAL file '%s' is %" PRIu64 " bytes, larger than any "
					 "WAL segment (1 GiB)", path, (uint64_t) st.st_size);
	if (rc != 0)
	{
		close(*fd);
		*fd = -1;
		return rc;
	}
	*size = (uint64_t) st.st_size;
	return 0;
}

/* The header of a segment or .partial against each open repository's stanza record. */
static int
check_header(const archive_ctx *ctx, const char *path, const wal_name *w, const uint8_t *head,
			 size_t head_len, uint64_t size)
{
	if (w->kind != WAL_SEGMENT && w->kind != WAL_PARTIAL)
		return 0;
	for (int i = 0; i < ctx->nrepo; i++)
	{
		const archive_repo *r = &ctx->repos[i];
		uint32_t	seg_size;

		if (r->repo && wal_header_check(w->name, head, head_len, size, w, r->stanza.system_id,
										r->stanza.pg_version, &seg_size) != 0)
			return err_wrap("refusing to archive '%s' for stanza '%s'", path, ctx->stanza);
	}
	return 0;
}

/*
 * Read path once in chunks: hash every byte, keep them in *data when keep, and check the
 * header against the stanza.
 */
static int
read_wal_file(const archive_ctx *ctx, const char *path, wal_name *w, bool keep,
			  uint8_t **data, uint64_t *size, uint8_t sha256[32])
{
	EVP_MD_CTX *md = NULL;
	uint8_t    *buf = NULL;
	uint8_t		head[WAL_LONG_HEADER_SIZE];
	size_t		head_len = 0;
	uint64_t	done = 0;
	unsigned int mdlen = 32;
	int			fd;
	int			rc = 0;

	*data = NULL;
	if (open_wal_file(path, w, &fd, size) != 0)
		return -1;
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = xmalloc(keep ? (size_t) (*size ? *size : 1) : READ_CHUNK);
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rc = err_set(DRB_ERR_INTERNAL, "unable to start SHA-256 of '%s'", path);

	/* read and hash chunk by chunk, while each chunk is still in the CPU cache */
	while (rc == 0 && done < *size)
	{
		size_t		want = *size - done < READ_CHUNK ? (size_t) (*size - done) : READ_CHUNK;
		uint8_t    *at = keep ? buf + done : buf;
		size_t		got = 0;

		while (got < want)
		{
			ssize_t		n = read(fd, at + got, want - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				rc = err_set(DRB_ERR_STORAGE, "unable to read WAL file '%s': %m", path);
			else if (n == 0)
				rc = err_set(DRB_ERR_INTEGRITY, "WAL file '%s' shrank while being read (%" PRIu64
							 " of %" PRIu64 " bytes)", path, done + got, *size);
			if (n <= 0)
				break;
			got += (size_t) n;
		}
		if (rc != 0)
			break;
		if (head_len < sizeof(head))
		{
			size_t		n = got < sizeof(head) - head_len ? got : sizeof(head) - head_len;

			memcpy(head + head_len, at, n);
			head_len += n;
		}
		if (EVP_DigestUpdate(md, at, got) != 1)
			rc = err_set(DRB_ERR_INTERNAL, "SHA-256 of '%s' failed", path);
		done += got;
	}
	if (rc == 0 && EVP_DigestFinal_ex(md, sha256, &mdlen) != 1)
		rc = err_set(DRB_ERR_INTERNAL, "SHA-256 of '%s' failed", path);
	EVP_MD_CTX_free(md);
	close(fd);
	if (rc == 0)
		rc = check_header(ctx, path, w, head, head_len, *size);
	if (rc == 0 && keep)
		*data = buf;
	else
		free(buf);
	return rc;
}

int
archive_load_file(const archive_ctx *ctx, const char *path, wal_name *w, uint8_t **data,
				  size_t *len, uint8_t sha256[32])
{
	uint64_t	size = 0;

	*len = 0;
	if (read_wal_file(ctx, path, w, true, data, &size, sha256) != 0)
		return -1;
	*len = (size_t) size;
	return 0;
}

int
archive_check_file(const archive_ctx *ctx, const char *path, wal_name *w, uint8_t sha256[32],
				   uint64_t *size)
{
	uint8_t    *none;

	return read_wal_file(ctx, path, w, false, &none, size, sha256);
}

int
archive_file_map(const char *path, archive_file *f)
{
	static const uint8_t empty[1];
	uint64_t	size;
	void	   *map;
	int			fd;

	memset(f, 0, sizeof(*f));
	if (open_wal_file(path, &f->w, &fd, &size) != 0)
		return -1;
	f->path = path;
	if (size == 0)
		map = (void *) empty;
	else
	{
		/* PostgreSQL just wrote it: map the page cache instead of copying it; pages come in
		 * as they are read and leave once encoded (archive_push_encoded) */
		map = mmap(NULL, (size_t) size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
		{
			close(fd);
			return err_set(DRB_ERR_STORAGE, "unable to map WAL file '%s': %m", path);
		}
		(void) madvise(map, (size_t) size, MADV_SEQUENTIAL);
	}
	close(fd);
	f->data = map;
	f->len = (size_t) size;
	return 0;
}

int
archive_file_check(const archive_ctx *ctx, const archive_file *f)
{
	return check_header(ctx, f->path, &f->w, f->data, f->len, f->len);
}

void
archive_file_unmap(archive_file *f)
{
	if (f->len)
		munmap((void *) f->data, f->len);
	f->data = NULL;
	f->len = 0;
}

/* ---------------------------------------------------------------------------------------
 * Get
 * ------------------------------------------------------------------------------------- */

/*
 * archive-get writes through repo_get_file without fsync: PostgreSQL makes a restored file
 * durable itself (durable_rename) when it keeps it, and after a crash asks for it again.
 */
int
archive_get_one(const archive_ctx *ctx, const wal_name *w, const char *dest, int only)
{
	drb_err		first_kind = DRB_OK;
	char	   *first_error = NULL;
	int			tried = 0;

	for (int i = 0; i < ctx->nrepo; i++)
	{
		const archive_repo *r = &ctx->repos[i];
		uint8_t		sha[32];
		bool		found;
		char	   *obj = NULL;
		int			rc;

		if (only && r->index != only)
			continue;
		tried++;
		rc = archive_find(r, w, &found, sha, &obj);
		if (rc == 0 && !found)
			continue;
		if (rc == 0)
		{
			rc = repo_get_file(r->repo, obj, dest, sha, false, NULL);
			if (rc != 0)
				err_wrap("unable to fetch WAL file %s", w->name);
		}
		free(obj);
		if (rc == 0)
		{
			if (first_error)
				log_warn("%s; WAL file %s fetched from repository %d instead", first_error,
						 w->name, r->index);
			else
				log_detail("WAL file %s fetched from repository %d", w->name, r->index);
			free(first_error);
			return 0;
		}
		if (first_error == NULL)
		{
			first_error = xstrdup(err_msg());
			first_kind = err_kind();
		}
		else
			log_warn("%s", err_msg());
	}
	if (first_error)
	{
		err_set(first_kind, "%s", first_error);
		free(first_error);
		return -1;
	}
	if (tried == 0)
		return err_set(DRB_ERR_CONFIG, "repository %d is not configured", only);
	if (only)
		return err_set(DRB_ERR_NOT_FOUND, "WAL file %s not found in repository %d", w->name, only);
	return err_set(DRB_ERR_NOT_FOUND, "WAL file %s not found in any repository", w->name);
}
