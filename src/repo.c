/*
 * repo.c — a repository: its key file, and the filter chains every object passes through
 * (see repo.h; the byte layout is in docs/repository-format.md).
 *
 *   put:  plain bytes -> sha256+size -> compress -> trailer writer -> [encrypt]
 *                     -> header writer -> storage writer
 *   get:  storage read -> header reader -> [decrypt] -> trailer reader -> decompress
 *                      -> sha256+size (verified against the trailer) -> caller's sink
 *
 * On get the part after the header reader is built only once the header is parsed: the
 * object's own compression type, cipher, chunk size and salt decide it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <zstd.h>

#include "error.h"
#include "filter_compress.h"
#include "filter_crypt.h"
#include "filter_hash.h"
#include "keyring.h"
#include "log.h"
#include "mem.h"
#include "object_format.h"
#include "repo.h"

#define REPO_KEY_FILE		"drbackup.repo"
#define REPO_KEY_FILE_COPY	"drbackup.repo.copy"
#define PUT_FD_BUFFER		(1024 * 1024)
#define READ_AHEAD_MIN		(4 * 1024 * 1024)	/* files from this size are read ahead */

static const char *const key_file_names[2] = {REPO_KEY_FILE, REPO_KEY_FILE_COPY};

struct repo
{
	int			index;
	storage_t  *storage;
	keyring_t  *keyring;
	compress_type compress;
	int			compress_level;
	uint32_t	chunk_size;
};

/* --- names --- */

static const char *const compress_names[] = {"none", "zstd", "lz4", "gz"};
static const char *const cipher_names[] = {"none", "aes-256-gcm"};

int
compress_type_parse(const char *name)
{
	for (int i = 0; name && i < (int) (sizeof(compress_names) / sizeof(compress_names[0])); i++)
		if (strcmp(name, compress_names[i]) == 0)
			return i;
	return -1;
}

const char *
compress_type_name(compress_type t)
{
	return (unsigned) t < sizeof(compress_names) / sizeof(compress_names[0])
		? compress_names[t] : "unknown";
}

int
cipher_type_parse(const char *name)
{
	for (int i = 0; name && i < (int) (sizeof(cipher_names) / sizeof(cipher_names[0])); i++)
		if (strcmp(name, cipher_names[i]) == 0)
			return i;
	return -1;
}

const char *
cipher_type_name(cipher_type t)
{
	return (unsigned) t < sizeof(cipher_names) / sizeof(cipher_names[0]) ? cipher_names[t] : "unknown";
}

/* --- settings --- */

static int
settings_check(const repo_settings *s, uint32_t *chunk_size)
{
	if (s->storage == NULL)
		return err_set(DRB_ERR_INTERNAL, "repository %d has no storage driver", s->index);
	if ((unsigned) s->cipher > CIPHER_AES_256_GCM)
		return err_set(DRB_ERR_CONFIG, "repository %d: unknown cipher type", s->index);
	if ((unsigned) s->compress > COMPRESS_GZ)
		return err_set(DRB_ERR_CONFIG, "repository %d: unknown compress type", s->index);
	if (compress_level_check(s->compress, s->compress_level) != 0)
		return -1;
	if (s->chunk_size != 0 && (s->chunk_size < OBJECT_CHUNK_MIN || s->chunk_size > OBJECT_CHUNK_MAX))
		return err_set(DRB_ERR_CONFIG, "repository %d: encryption chunk size %zu is outside "
					   "4 KiB..16 MiB", s->index, s->chunk_size);
	if (s->cipher != CIPHER_NONE && (s->passphrase == NULL || s->passphrase[0] == '\0'))
		return err_set(DRB_ERR_CONFIG, "repository %d: repo%d-cipher-type=%s needs repo%d-cipher-pass",
					   s->index, s->index, cipher_type_name(s->cipher), s->index);
	*chunk_size = s->chunk_size ? (uint32_t) s->chunk_size : OBJECT_CHUNK_DEFAULT;
	return 0;
}

/* --- key files --- */

/* The two key files as read, and the keyring opened from one of them. */
typedef struct key_files
{
	buf_t		text[2];		/* drbackup.repo, drbackup.repo.copy */
	bool		read[2];
	bool		present[2];
	int			used;			/* which file the keyring came from */
	keyring_t  *keyring;
} key_files;

static void
key_files_free(key_files *kf)
{
	for (int i = 0; i < 2; i++)
	{
		secure_zero(kf->text[i].data, kf->text[i].cap);
		buf_free(&kf->text[i]);
	}
	keyring_free(kf->keyring);
}

/* Read key file i (missing is fine); -1 on any other storage error. */
static int
key_file_read(const repo_settings *s, key_files *kf, int i)
{
	if (kf->read[i])
		return 0;
	kf->read[i] = true;
	if (storage_get_buf(s->storage, key_file_names[i], &kf->text[i]) == 0)
	{
		kf->present[i] = true;
		return 0;
	}
	buf_reset(&kf->text[i]);
	if (err_kind() == DRB_ERR_NOT_FOUND)
		return 0;
	return err_wrap("repository %d (%s): unable to read %s", s->index, s->storage->description,
					key_file_names[i]);
}

/*
 * Open the keyring of one key file text: damaged file -> DRB_ERR_INTEGRITY, cipher
 * different from the settings -> DRB_ERR_CONFIG, wrong passphrase -> DRB_ERR_CRYPTO.
 */
static keyring_t *
key_file_open(const repo_settings *s, const buf_t *text, const char *name)
{
	char	   *source = xasprintf("'%s'", name);
	char	   *what = xasprintf("repository %d", s->index);
	keyring_info info;
	keyring_t  *k = NULL;

	if (keyring_inspect((const char *) text->data, text->len, source, &info) != 0)
		err_wrap("repository %d (%s)", s->index, s->storage->description);
	else if (info.cipher != CIPHER_NONE && s->cipher == CIPHER_NONE)
		err_set(DRB_ERR_CONFIG, "repository %d is encrypted but repo%d-cipher-type=none (its key "
				"file records cipher %s)", s->index, s->index, cipher_type_name(info.cipher));
	else if (info.cipher == CIPHER_NONE && s->cipher != CIPHER_NONE)
		err_set(DRB_ERR_CONFIG, "repository %d is not encrypted but repo%d-cipher-type=%s",
				s->index, s->index, cipher_type_name(s->cipher));
	else
	{
		/* the key cache is keyed by index and location: two repositories never share it */
		char	   *repo_id = xasprintf("repo%d %s", s->index, s->storage->description);

		k = keyring_open_cached((const char *) text->data, text->len, s->passphrase, source,
								what, s->key_cache_dir, repo_id);
		if (k == NULL && err_kind() == DRB_ERR_INTEGRITY)
			err_wrap("repository %d (%s)", s->index, s->storage->description);
		free(repo_id);
	}
	free(source);
	free(what);
	return k;
}

/*
 * Open the repository key: drbackup.repo, or drbackup.repo.copy when the main file is
 * missing, damaged or does not open (e.g. an interrupted key-rotate). The copy is read
 * only when needed. NOT_FOUND "is not initialised" when neither file exists.
 */
static int
key_files_load(const repo_settings *s, key_files *kf)
{
	drb_err		main_kind = DRB_OK;
	char	   *main_msg = NULL;
	bool		same;

	if (key_file_read(s, kf, 0) != 0)
		return -1;
	if (kf->present[0])
	{
		kf->keyring = key_file_open(s, &kf->text[0], REPO_KEY_FILE);
		if (kf->keyring)
		{
			kf->used = 0;
			return 0;
		}
		if (err_kind() != DRB_ERR_INTEGRITY && err_kind() != DRB_ERR_CRYPTO)
			return -1;
		main_kind = err_kind();
		main_msg = xstrdup(err_msg());
	}

	if (key_file_read(s, kf, 1) != 0)
	{
		free(main_msg);
		return -1;
	}
	if (!kf->present[1] && !kf->present[0])
		return err_set(DRB_ERR_NOT_FOUND, "repository %d (%s) is not initialised: no %s "
					   "(run drbackup repo-create)", s->index, s->storage->description,
					   REPO_KEY_FILE);
	same = kf->present[0] && kf->present[1] && kf->text[0].len == kf->text[1].len &&
		memcmp(kf->text[0].data, kf->text[1].data, kf->text[0].len) == 0;
	if (kf->present[1] && !same)
		kf->keyring = key_file_open(s, &kf->text[1], REPO_KEY_FILE_COPY);
	if (kf->keyring == NULL)
	{
		/*
		 * Report the main file's problem, unless it was merely damaged and the copy says
		 * something more useful (a wrong passphrase or a cipher mismatch).
		 */
		bool		copy_tried = kf->present[1] && !same;

		if (main_msg && !(copy_tried && main_kind == DRB_ERR_INTEGRITY &&
						  err_kind() != DRB_ERR_INTEGRITY))
			err_set(main_kind, "%s", main_msg);
		free(main_msg);
		return -1;
	}
	kf->used = 1;
	if (!kf->present[0])
		log_warn("repository %d (%s): %s is missing, using %s (run repo-create to repair)",
				 s->index, s->storage->description, REPO_KEY_FILE, REPO_KEY_FILE_COPY);
	else
		log_warn("repository %d (%s): using %s because %s did not open (%s); run repo-create "
				 "to repair", s->index, s->storage->description, REPO_KEY_FILE_COPY,
				 REPO_KEY_FILE, main_msg);
	free(main_msg);
	return 0;
}

static int
key_file_write(const repo_settings *s, int i, const char *text)
{
	if (storage_put_buf(s->storage, key_file_names[i], text, strlen(text)) != 0)
		return err_wrap("repository %d (%s): unable to write %s", s->index,
						s->storage->description, key_file_names[i]);
	return 0;
}

/*
 * After initialising: drbackup.repo must hold what we wrote. Another repo-create running
 * at the same moment could have replaced it with a different key; the copy must never
 * hold a key other than the main file's, so stop before writing it.
 */
static int
key_file_check_written(const repo_settings *s, const char *text)
{
	buf_t		back;
	bool		same;

	buf_init(&back);
	if (storage_get_buf(s->storage, REPO_KEY_FILE, &back) != 0)
	{
		buf_free(&back);
		return err_wrap("repository %d (%s): unable to read back %s", s->index,
						s->storage->description, REPO_KEY_FILE);
	}
	same = back.len == strlen(text) && memcmp(back.data, text, back.len) == 0;
	buf_free(&back);
	if (!same)
		return err_set(DRB_ERR_LOCK, "repository %d (%s) was initialised by another process at "
					   "the same time: run repo-create again", s->index, s->storage->description);
	return 0;
}

static int
not_empty_cb(const storage_info *info, void *arg)
{
	*(char **) arg = xstrdup(info->path);
	return -1;
}

int
repo_create(const repo_settings *s)
{
	key_files	kf = {0};
	uint32_t	chunk_size;
	int			rc;

	if (settings_check(s, &chunk_size) != 0)
		return -1;
	rc = key_files_load(s, &kf);
	if (rc == 0)
	{
		/* initialised: make both files identical to the one that opened */
		const buf_t *good;
		char	   *text;

		rc = key_file_read(s, &kf, 1);
		good = &kf.text[kf.used];
		text = xstrndup((const char *) good->data, good->len);
		for (int i = 0; i < 2 && rc == 0; i++)
			if (!kf.present[i] || kf.text[i].len != good->len ||
				memcmp(kf.text[i].data, good->data, good->len) != 0)
			{
				log_warn("repository %d (%s): rewriting %s from %s", s->index,
						 s->storage->description, key_file_names[i], key_file_names[kf.used]);
				rc = key_file_write(s, i, text);
			}
		free(text);
	}
	else if (err_kind() == DRB_ERR_NOT_FOUND && !kf.present[0] && !kf.present[1])
	{
		/* new repository: refuse a non-empty location (lost key files must not be replaced) */
		char	   *found = NULL;
		keyring_t  *k;
		char	   *text;

		err_clear();
		rc = storage_list(s->storage, "", not_empty_cb, &found);
		if (rc != 0 && found == NULL && err_kind() == DRB_ERR_NOT_FOUND)
			rc = 0;				/* the location does not exist yet: empty */
		if (found)
		{
			rc = err_set(DRB_ERR_STANZA, "repository %d (%s) has no %s but is not empty (it "
						 "holds '%s'): refusing to initialise it; restore %s or %s, or use an "
						 "empty location", s->index, s->storage->description, REPO_KEY_FILE,
						 found, REPO_KEY_FILE, REPO_KEY_FILE_COPY);
			free(found);
		}
		else if (rc == 0 && (k = keyring_generate(s->cipher)) != NULL)
		{
			text = keyring_serialize(k, s->passphrase);
			keyring_free(k);
			rc = text ? key_file_write(s, 0, text) : -1;
			if (rc == 0)
				rc = key_file_check_written(s, text);
			if (rc == 0)
				rc = key_file_write(s, 1, text);
			if (rc == 0)
				log_info("repository %d (%s): initialised (cipher %s)", s->index,
						 s->storage->description, cipher_type_name(s->cipher));
			free(text);
		}
		else
			rc = -1;
	}
	key_files_free(&kf);
	return rc;
}

int
repo_key_rotate(const repo_settings *s, const char *new_passphrase)
{
	key_files	kf = {0};
	uint32_t	chunk_size;
	char	   *text = NULL;
	int			rc;

	if (settings_check(s, &chunk_size) != 0)
		return -1;
	if (s->cipher == CIPHER_NONE)
		return err_set(DRB_ERR_CONFIG, "repository %d is not encrypted: there is no key to rotate",
					   s->index);
	if (new_passphrase == NULL || new_passphrase[0] == '\0')
		return err_set(DRB_ERR_CONFIG, "repository %d: the new passphrase is empty", s->index);
	rc = key_files_load(s, &kf);
	if (rc == 0)
	{
		text = keyring_serialize(kf.keyring, new_passphrase);
		rc = text ? 0 : -1;
	}
	/* main first, then the copy: either order opens with the new passphrase afterwards */
	if (rc == 0)
		rc = key_file_write(s, 0, text);
	if (rc == 0)
		rc = key_file_write(s, 1, text);
	if (rc == 0)
		log_info("repository %d (%s): data key re-wrapped under the new passphrase",
				 s->index, s->storage->description);
	free(text);
	key_files_free(&kf);
	return rc;
}

repo_t *
repo_open(const repo_settings *s)
{
	key_files	kf = {0};
	uint32_t	chunk_size;
	repo_t	   *repo;

	if (settings_check(s, &chunk_size) != 0)
		return NULL;
	if (key_files_load(s, &kf) != 0)
	{
		key_files_free(&kf);
		return NULL;
	}
	repo = xcalloc(1, sizeof(*repo));
	repo->index = s->index;
	repo->storage = s->storage;
	repo->keyring = kf.keyring;
	kf.keyring = NULL;
	repo->compress = s->compress;
	repo->compress_level = s->compress_level;
	repo->chunk_size = chunk_size;
	key_files_free(&kf);
	return repo;
}

void
repo_close(repo_t *repo)
{
	if (repo == NULL)
		return;
	keyring_free(repo->keyring);
	storage_free(repo->storage);
	free(repo);
}

storage_t *
repo_storage(repo_t *repo)
{
	return repo->storage;
}

int
repo_index(const repo_t *repo)
{
	return repo->index;
}

/*
 * Link filters f[0] -> f[1] -> ... -> f[n-1]; NULL entries are skipped (optional
 * stages). If failed is set (a constructor returned NULL), frees them all and returns NULL.
 */
static filter_t *
link_filters(filter_t **f, size_t n, bool failed)
{
	filter_t   *head = NULL;
	filter_t   *tail = NULL;

	for (size_t i = 0; i < n; i++)
	{
		if (f[i] == NULL)
			continue;
		if (failed)
		{
			f[i]->next = NULL;
			filter_chain_free(f[i]);
			continue;
		}
		if (tail)
			tail->next = f[i];
		else
			head = f[i];
		tail = f[i];
	}
	return failed ? NULL : head;
}

/* --- frame-parallel zstd (objects pushed in large pieces) --- */

/*
 * A zstd compressor for put chains whose bytes arrive in large pushes (put_buf, the
 * encoder archive-push uses): the compressed stream is a series of independent standard
 * zstd frames of FRAME_SIZE plain bytes each (the last one shorter), which every reader
 * takes (docs/repository-format.md: concatenated frames), compressed FRAME_THREADS at a
 * time straight from the pushed memory: no copy, no window shared across threads, so two
 * CPUs compress one object about twice as fast as one. Pushes that are not a whole number
 * of frames are collected in a buffer of FRAME_PENDING bytes first. A batch of frames is
 * compressed and pushed on, in order, before the push that brought it returns, so the
 * caller may release its memory right after.
 */
#define FRAME_SIZE		(1024 * 1024)
#define FRAME_BATCH		4				/* frames compressed per batch at most */
#define FRAME_THREADS	2				/* the caller and one helper */
#define FRAME_PENDING	(FRAME_THREADS * FRAME_SIZE)
#define FRAMES_MIN		(4 * 1024 * 1024)	/* objects from this size are split in frames */

typedef struct frame_job
{
	const uint8_t *in;
	size_t		len;
	size_t		outlen;
	size_t		zerr;			/* a ZSTD error code, or 0 */
} frame_job;

typedef struct frames_filter
{
	filter_t	base;
	int			level;
	ZSTD_CCtx  *cctx[FRAME_THREADS];	/* one per thread */
	size_t		out_cap;		/* ZSTD_compressBound(FRAME_SIZE): each job's room in out */
	uint8_t    *out;			/* FRAME_BATCH * out_cap, allocated at first use */
	uint8_t    *pending;		/* FRAME_PENDING, allocated at first use */
	size_t		npending;
	bool		any;			/* a frame was pushed on */

	/* the batch being compressed, shared with the helper under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	frame_job	jobs[FRAME_BATCH];
	int			njobs;
	int			claimed;		/* jobs taken by a thread */
	int			finished;		/* jobs done */
	bool		helper_started;
	bool		helper_failed;	/* could not start: the caller compresses alone */
	bool		quit;
	pthread_t	helper;
} frames_filter;

/* Compress job i with thread t's context. */
static void
frame_compress(frames_filter *ff, int t, int i)
{
	frame_job  *j = &ff->jobs[i];
	size_t		r = ZSTD_compress2(ff->cctx[t], ff->out + (size_t) i * ff->out_cap, ff->out_cap,
								   j->in, j->len);

	j->zerr = ZSTD_isError(r) ? r : 0;
	j->outlen = ZSTD_isError(r) ? 0 : r;
}

/* Take and compress jobs of the current batch until none is left (lock held on entry and exit). */
static void
frame_work(frames_filter *ff, int t)
{
	while (ff->claimed < ff->njobs)
	{
		int			i = ff->claimed++;

		pthread_mutex_unlock(&ff->lock);
		frame_compress(ff, t, i);
		pthread_mutex_lock(&ff->lock);
		if (++ff->finished == ff->njobs)
			pthread_cond_broadcast(&ff->cond);
	}
}

static void *
frame_helper_main(void *arg)
{
	frames_filter *ff = arg;

	pthread_mutex_lock(&ff->lock);
	for (;;)
	{
		while (ff->claimed >= ff->njobs && !ff->quit)
			pthread_cond_wait(&ff->cond, &ff->lock);
		if (ff->quit)
			break;
		frame_work(ff, 1);
	}
	pthread_mutex_unlock(&ff->lock);
	return NULL;
}

/* Compress n frames of in (each FRAME_SIZE, the last len - (n-1)*FRAME_SIZE) and push them on. */
static int
frame_batch(frames_filter *ff, const uint8_t *in, size_t len)
{
	int			n = len == 0 ? 1 : (int) ((len + FRAME_SIZE - 1) / FRAME_SIZE);

	if (ff->out == NULL)
		ff->out = xmalloc(FRAME_BATCH * ff->out_cap);
	if (n > 1 && !ff->helper_started && !ff->helper_failed)
	{
		if (pthread_create(&ff->helper, NULL, frame_helper_main, ff) == 0)
			ff->helper_started = true;
		else
			ff->helper_failed = true;
	}

	pthread_mutex_lock(&ff->lock);
	for (int i = 0; i < n; i++)
	{
		size_t		off = (size_t) i * FRAME_SIZE;

		ff->jobs[i] = (frame_job) {in + off, len - off < FRAME_SIZE ? len - off : FRAME_SIZE, 0, 0};
	}
	ff->njobs = n;
	ff->claimed = 0;
	ff->finished = 0;
	pthread_cond_broadcast(&ff->cond);
	frame_work(ff, 0);
	while (ff->finished < ff->njobs)
		pthread_cond_wait(&ff->cond, &ff->lock);
	pthread_mutex_unlock(&ff->lock);

	for (int i = 0; i < n; i++)
	{
		if (ff->jobs[i].zerr)
			return err_set(DRB_ERR_INTERNAL, "zstd compression failed: %s",
						   ZSTD_getErrorName(ff->jobs[i].zerr));
		if (filter_push(ff->base.next, ff->out + (size_t) i * ff->out_cap, ff->jobs[i].outlen) != 0)
			return -1;
	}
	ff->any = true;
	return 0;
}

/* Compress the collected bytes (all of them, also a short last frame). */
static int
frame_flush_pending(frames_filter *ff)
{
	static const uint8_t empty[1];
	int			rc = frame_batch(ff, ff->pending ? ff->pending : empty, ff->npending);

	ff->npending = 0;
	return rc;
}

static int
frames_process(filter_t *f, const uint8_t *in, size_t len)
{
	frames_filter *ff = (frames_filter *) f;

	while (len > 0)
	{
		if (ff->npending > 0 || len < FRAME_SIZE)
		{
			size_t		n = len < FRAME_PENDING - ff->npending ? len : FRAME_PENDING - ff->npending;

			if (ff->pending == NULL)
				ff->pending = xmalloc(FRAME_PENDING);
			memcpy(ff->pending + ff->npending, in, n);
			ff->npending += n;
			in += n;
			len -= n;
			if (ff->npending == FRAME_PENDING && frame_flush_pending(ff) != 0)
				return -1;
			continue;
		}

		/* whole frames straight from the caller's memory */
		size_t		n = len / FRAME_SIZE < FRAME_BATCH ? len / FRAME_SIZE : FRAME_BATCH;

		if (frame_batch(ff, in, n * FRAME_SIZE) != 0)
			return -1;
		in += n * FRAME_SIZE;
		len -= n * FRAME_SIZE;
	}
	return 0;
}

static int
frames_finish(filter_t *f)
{
	frames_filter *ff = (frames_filter *) f;

	/* the rest, or an empty frame for an empty object (a stream needs one frame) */
	if ((ff->npending > 0 || !ff->any) && frame_flush_pending(ff) != 0)
		return -1;
	return filter_finish(f->next);
}

static void
frames_destroy(filter_t *f)
{
	frames_filter *ff = (frames_filter *) f;

	if (ff->helper_started)
	{
		pthread_mutex_lock(&ff->lock);
		ff->quit = true;
		pthread_cond_broadcast(&ff->cond);
		pthread_mutex_unlock(&ff->lock);
		pthread_join(ff->helper, NULL);
	}
	pthread_cond_destroy(&ff->cond);
	pthread_mutex_destroy(&ff->lock);
	for (int t = 0; t < FRAME_THREADS; t++)
		ZSTD_freeCCtx(ff->cctx[t]);
	free(ff->out);
	free(ff->pending);
	free(ff);
}

static const filter_ops frames_ops = {"compress-frames", frames_process, frames_finish, frames_destroy};

/* The frame-parallel zstd compressor at level; NULL + err on failure. */
static filter_t *
frames_new(int level)
{
	frames_filter *ff = xcalloc(1, sizeof(*ff));

	ff->base.ops = &frames_ops;
	ff->level = level;
	ff->out_cap = ZSTD_compressBound(FRAME_SIZE);
	pthread_mutex_init(&ff->lock, NULL);
	pthread_cond_init(&ff->cond, NULL);
	for (int t = 0; t < FRAME_THREADS; t++)
	{
		ff->cctx[t] = ZSTD_createCCtx();
		if (ff->cctx[t] == NULL ||
			ZSTD_isError(ZSTD_CCtx_setParameter(ff->cctx[t], ZSTD_c_compressionLevel, level)))
		{
			frames_destroy(&ff->base);
			err_set(DRB_ERR_INTERNAL, "unable to initialise zstd compression");
			return NULL;
		}
	}
	return &ff->base;
}

/* Several CPUs to compress with? (looked up once) */
static bool
frames_parallel(void)
{
	static int	cpus = 0;
	int			n = __atomic_load_n(&cpus, __ATOMIC_RELAXED);

	if (n == 0)
	{
		n = (int) sysconf(_SC_NPROCESSORS_ONLN);
		__atomic_store_n(&cpus, n, __ATOMIC_RELAXED);
	}
	return n >= 2;
}

/* --- put --- */

/* Head of a put chain: owns the results the filters behind it share. */
typedef struct put_head
{
	filter_t	base;
	int			repo_index;
	char	   *path;
	hash_result plain;			/* filled by the hash filter (or given by the caller), read
								 * by the trailer writer */
	bool		prehashed;		/* plain was given: no hash stage */
	uint64_t	pushed;			/* bytes pushed (checked against plain.size when prehashed) */
	uint64_t	stored;			/* counted by the header writer */
	repo_object_result *result;
} put_head;

static int
put_head_process(filter_t *f, const uint8_t *in, size_t len)
{
	put_head   *p = (put_head *) f;

	p->pushed += len;
	if (filter_push(f->next, in, len) != 0)
		return err_wrap("repository %d: unable to put '%s'", p->repo_index, p->path);
	return 0;
}

static int
put_head_finish(filter_t *f)
{
	put_head   *p = (put_head *) f;

	if (p->prehashed && p->pushed != p->plain.size)
		return err_set(DRB_ERR_INTERNAL, "repository %d: unable to put '%s': %llu bytes given "
					   "for a checksum of %llu bytes", p->repo_index, p->path,
					   (unsigned long long) p->pushed, (unsigned long long) p->plain.size);
	if (filter_finish(f->next) != 0)
		return err_wrap("repository %d: unable to put '%s'", p->repo_index, p->path);
	if (p->result)
	{
		p->result->size = p->plain.size;
		p->result->stored_size = p->stored;
		memcpy(p->result->sha256, p->plain.sha256, 32);
	}
	log_debug("repository %d: put '%s' (%llu bytes, %llu stored)", p->repo_index, p->path,
			  (unsigned long long) p->plain.size, (unsigned long long) p->stored);
	return 0;
}

static void
put_head_destroy(filter_t *f)
{
	free(((put_head *) f)->path);
	free(f);
}

static const filter_ops put_head_ops = {"repo-put", put_head_process, put_head_finish, put_head_destroy};

/*
 * The put chain. size_hint (0: unknown) lets the compressor use worker threads for a large
 * object: zstd's own (one frame) for streamed input, or, with frames (the caller pushes
 * large pieces), independent frames compressed in parallel (frames_new). With
 * plain_sha256 the caller's checksum of exactly plain_len bytes goes into the trailer and
 * the chain has no hash stage.
 */
static filter_t *
put_open(repo_t *repo, const char *path, repo_object_result *result, uint64_t size_hint,
		 const uint8_t *plain_sha256, uint64_t plain_len, buf_t *memory, bool frames)
{
	put_head   *p;
	object_header h = {0};
	uint8_t		raw[OBJECT_HEADER_SIZE];
	uint8_t		key[KEYRING_KEY_SIZE];
	bool		encrypt = repo->keyring->cipher != CIPHER_NONE;
	filter_t   *f[7];
	bool		failed = false;

	h.version = OBJECT_FORMAT_VERSION;
	h.compress = (uint8_t) repo->compress;
	h.cipher = (uint8_t) repo->keyring->cipher;
	if (encrypt)
	{
		h.chunk_size = repo->chunk_size;
		memcpy(h.key_id, repo->keyring->key_id, OBJECT_KEY_ID_SIZE);
		if (RAND_bytes(h.salt, OBJECT_SALT_SIZE) != 1)
		{
			err_set(DRB_ERR_CRYPTO, "repository %d: unable to generate a salt for '%s'",
					repo->index, path);
			return NULL;
		}
		if (keyring_object_key(repo->keyring, h.salt, key) != 0)
			return NULL;
	}
	object_header_encode(&h, raw);

	p = xcalloc(1, sizeof(*p));
	p->base.ops = &put_head_ops;
	p->repo_index = repo->index;
	p->path = xstrdup(path);
	p->result = result;
	if (plain_sha256)
	{
		p->prehashed = true;
		p->plain.size = plain_len;
		memcpy(p->plain.sha256, plain_sha256, 32);
		p->plain.done = true;
	}

	/* plain -> [sha256+size] -> compress -> trailer -> [encrypt] -> header -> storage writer
	 * (or memory) */
	f[0] = &p->base;
	f[1] = plain_sha256 ? NULL : filter_hash_new(&p->plain, NULL, NULL);
	if (frames && repo->compress == COMPRESS_ZSTD && size_hint >= FRAMES_MIN && frames_parallel())
		f[2] = frames_new(repo->compress_level);
	else
		f[2] = filter_compress_new_sized(repo->compress, repo->compress_level, size_hint);
	f[3] = filter_trailer_writer_new(&p->plain);
	f[4] = encrypt ? filter_encrypt_new(key, raw, repo->chunk_size) : NULL;
	f[5] = filter_header_writer_new(raw, &p->stored);
	secure_zero(key, sizeof(key));
	failed = (!plain_sha256 && f[1] == NULL) || f[2] == NULL || (encrypt && f[4] == NULL);
	f[6] = failed ? NULL : memory ? filter_sink_buf_new(memory) : storage_write_open(repo->storage, path);
	if (f[6] == NULL && !failed)
	{
		err_wrap("repository %d: unable to put '%s'", repo->index, path);
		failed = true;
	}
	return link_filters(f, 7, failed);
}

filter_t *
repo_put_open(repo_t *repo, const char *path, repo_object_result *result)
{
	return put_open(repo, path, result, 0, NULL, 0, NULL, false);
}

filter_t *
repo_put_open_sized(repo_t *repo, const char *path, repo_object_result *result,
					uint64_t size_hint, bool caller_hashes)
{
	static const uint8_t later[32] = {0};	/* replaced by repo_put_set_plain */

	return put_open(repo, path, result, size_hint, caller_hashes ? later : NULL, 0, NULL, false);
}

int
repo_put_set_plain(filter_t *head, const uint8_t sha256[32], uint64_t size)
{
	put_head   *p = (put_head *) head;

	if (head == NULL || head->ops != &put_head_ops || !p->prehashed)
		return err_set(DRB_ERR_INTERNAL, "repo_put_set_plain on a chain that hashes itself");
	memcpy(p->plain.sha256, sha256, 32);
	p->plain.size = size;
	return 0;
}

/*
 * Read-ahead for large files in repo_put_fd: a helper thread fills one of two buffers from
 * the file while the caller pushes the other through the chain, so reading (a copy out of
 * the page cache, or disk waits) overlaps hashing and compression.
 */
typedef struct read_ahead
{
	int			fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint8_t    *buf[2];
	ssize_t		len[2];			/* bytes; 0 at end of file; -1 on error (errno in err) */
	int			err[2];
	bool		full[2];		/* filled by the helper, not yet pushed by the caller */
	bool		stop;
} read_ahead;

static void *
read_ahead_main(void *arg)
{
	read_ahead *ra = arg;

	for (int i = 0;; i ^= 1)
	{
		size_t		got = 0;
		int			e = 0;
		bool		stop;

		pthread_mutex_lock(&ra->lock);
		while (ra->full[i] && !ra->stop)
			pthread_cond_wait(&ra->cond, &ra->lock);
		stop = ra->stop;
		pthread_mutex_unlock(&ra->lock);
		if (stop)
			return NULL;

		while (got < PUT_FD_BUFFER)
		{
			ssize_t		n = read(ra->fd, ra->buf[i] + got, PUT_FD_BUFFER - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				e = errno;
			if (n <= 0)
				break;
			got += (size_t) n;
		}

		pthread_mutex_lock(&ra->lock);
		ra->len[i] = e ? -1 : (ssize_t) got;
		ra->err[i] = e;
		ra->full[i] = true;
		pthread_cond_broadcast(&ra->cond);
		pthread_mutex_unlock(&ra->lock);
		if (e || got == 0)
			return NULL;
	}
}

/* Push the whole file into head with read-ahead, then finish it; 1 if no thread could start. */
static int
put_fd_read_ahead(repo_t *repo, const char *path, int fd, filter_t *head)
{
	read_ahead	ra = {0};
	pthread_t	thread;
	int			rc = 0;

	ra.fd = fd;
	ra.buf[0] = xmalloc(PUT_FD_BUFFER);
	ra.buf[1] = xmalloc(PUT_FD_BUFFER);
	pthread_mutex_init(&ra.lock, NULL);
	pthread_cond_init(&ra.cond, NULL);
	if (pthread_create(&thread, NULL, read_ahead_main, &ra) != 0)
		rc = 1;
	for (int i = 0; rc == 0; i ^= 1)
	{
		ssize_t		len;

		pthread_mutex_lock(&ra.lock);
		while (!ra.full[i])
			pthread_cond_wait(&ra.cond, &ra.lock);
		len = ra.len[i];
		pthread_mutex_unlock(&ra.lock);

		if (len < 0)
		{
			errno = ra.err[i];
			rc = err_set(DRB_ERR_STORAGE, "repository %d: unable to read the input of '%s': %m",
						 repo->index, path);
		}
		else if (len == 0)
		{
			rc = filter_finish(head);
			break;
		}
		else
			rc = filter_push(head, ra.buf[i], (size_t) len);

		pthread_mutex_lock(&ra.lock);
		ra.full[i] = false;
		pthread_cond_broadcast(&ra.cond);
		pthread_mutex_unlock(&ra.lock);
	}
	if (rc != 1)
	{
		pthread_mutex_lock(&ra.lock);
		ra.stop = true;
		pthread_cond_broadcast(&ra.cond);
		pthread_mutex_unlock(&ra.lock);
		pthread_join(thread, NULL);
	}
	pthread_cond_destroy(&ra.cond);
	pthread_mutex_destroy(&ra.lock);
	free(ra.buf[0]);
	free(ra.buf[1]);
	return rc;
}

/* Push the whole file into head with plain reads, then finish it. */
static int
put_fd_simple(repo_t *repo, const char *path, int fd, filter_t *head)
{
	uint8_t    *buf = xmalloc(PUT_FD_BUFFER);
	int			rc = 0;

	for (;;)
	{
		ssize_t		n = read(fd, buf, PUT_FD_BUFFER);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = err_set(DRB_ERR_STORAGE, "repository %d: unable to read the input of '%s': %m",
						 repo->index, path);
			break;
		}
		if (n == 0)
		{
			rc = filter_finish(head);
			break;
		}
		if ((rc = filter_push(head, buf, (size_t) n)) != 0)
			break;
	}
	free(buf);
	return rc;
}

int
repo_put_fd(repo_t *repo, const char *path, int fd, repo_object_result *result)
{
	struct stat st;
	bool		regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	filter_t   *head = put_open(repo, path, result, regular ? (uint64_t) st.st_size : 0, NULL, 0,
							 NULL, false);
	int			rc = 1;

	if (head == NULL)
		return -1;
	(void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (regular && st.st_size >= READ_AHEAD_MIN)
		rc = put_fd_read_ahead(repo, path, fd, head);
	if (rc == 1)
		rc = put_fd_simple(repo, path, fd, head);
	filter_chain_free(head);
	return rc;
}

/* Push data/len through a new put chain and finish it. */
static int
put_buf(repo_t *repo, const char *path, const void *data, size_t len, const uint8_t *sha256,
		repo_object_result *result)
{
	filter_t   *head = put_open(repo, path, result, len, sha256, len, NULL, true);
	int			rc;

	if (head == NULL)
		return -1;
	rc = filter_push(head, data, len);
	if (rc == 0)
		rc = filter_finish(head);
	filter_chain_free(head);
	return rc;
}

int
repo_put_buf(repo_t *repo, const char *path, const void *data, size_t len,
			 repo_object_result *result)
{
	return put_buf(repo, path, data, len, NULL, result);
}

filter_t *
repo_encode_open(repo_t *repo, buf_t *out, repo_object_result *result, uint64_t size_hint)
{
	return put_open(repo, "(object in memory)", result, size_hint, NULL, 0, out, true);
}

int
repo_put_buf_hashed(repo_t *repo, const char *path, const void *data, size_t len,
					const uint8_t sha256[32], repo_object_result *result)
{
	return put_buf(repo, path, data, len, sha256, result);
}

/* --- get --- */

typedef struct get_state
{
	repo_t	   *repo;
	const char *path;
	filter_t   *sink;			/* the caller's */
	const uint8_t *expected_sha256;
	object_trailer trailer;		/* filled by the trailer reader at finish */
	hash_result plain;
	filter_t   *hash;			/* the filter in front of the sink, once built */
	uint64_t	stored;
	uint8_t    *const *ring;	/* the caller's ring to decode into (repo_get_ring), or NULL */
} get_state;

static int
get_verify(const hash_result *plain, void *arg)
{
	get_state  *g = arg;

	return object_verify(g->path, &g->trailer, plain, g->expected_sha256);
}

/* Check the object's cipher and key against the repository; the filter to decrypt or NULL. */
static int
get_key_check(get_state *g, const object_header *h)
{
	const keyring_t *k = g->repo->keyring;
	char		obj_id[2 * OBJECT_KEY_ID_SIZE + 1];
	char		repo_id[2 * OBJECT_KEY_ID_SIZE + 1];

	if (h->cipher == CIPHER_NONE && k->cipher != CIPHER_NONE)
		return err_set(DRB_ERR_CRYPTO, "object '%s' is not encrypted but repository %d is "
					   "(cipher %s): refusing unauthenticated data", g->path, g->repo->index,
					   cipher_type_name(k->cipher));
	if (h->cipher != CIPHER_NONE && k->cipher == CIPHER_NONE)
		return err_set(DRB_ERR_CRYPTO, "object '%s' is encrypted (cipher %s) but repository %d "
					   "has no key", g->path, cipher_type_name(h->cipher), g->repo->index);
	if (h->cipher != CIPHER_NONE && memcmp(h->key_id, k->key_id, OBJECT_KEY_ID_SIZE) != 0)
	{
		hex_encode(h->key_id, OBJECT_KEY_ID_SIZE, obj_id);
		hex_encode(k->key_id, OBJECT_KEY_ID_SIZE, repo_id);
		return err_set(DRB_ERR_CRYPTO, "object '%s' is encrypted with key %s but the repository "
					   "key is %s", g->path, obj_id, repo_id);
	}
	return 0;
}

/* The read chain behind the header, chosen by the header (object_body_chain_fn). */
static filter_t *
get_body_chain(const object_header *h, const uint8_t raw[OBJECT_HEADER_SIZE], void *arg)
{
	get_state  *g = arg;
	uint8_t		key[KEYRING_KEY_SIZE];
	filter_t   *f[4] = {NULL};
	bool		failed;
	filter_t   *head;

	if (get_key_check(g, h) != 0)
		return NULL;
	if (h->cipher != CIPHER_NONE)
	{
		if (keyring_object_key(g->repo->keyring, h->salt, key) != 0)
			return NULL;
		f[0] = filter_decrypt_new(key, raw, h->chunk_size, g->path);
		secure_zero(key, sizeof(key));
		if (f[0] == NULL)
			return NULL;
	}

	/* [decrypt] -> trailer -> decompress (the object's own type) -> sha256+size, verified */
	f[1] = filter_trailer_reader_new(g->path, &g->trailer);
	f[2] = filter_decompress_new((compress_type) h->compress, g->path);
	f[3] = filter_hash_new(&g->plain, get_verify, g);
	failed = f[2] == NULL || f[3] == NULL;
	/* zstd output goes into the hash filter's ring buffers in turn: hashed in place, on
	 * the hash filter's helper, while the next pieces are decompressed */
	_Static_assert(COMPRESS_OUT_SIZE == HASH_STAGE_SIZE, "decompressor pieces fill the ring");
	if (!failed)
		(void) filter_decompress_use_buffers(f[2], g->ring ? filter_hash_use_ring(f[3], g->ring)
											 : filter_hash_ring(f[3]), HASH_RING_N);
	head = link_filters(f, 4, failed);
	if (head)
	{
		g->hash = f[3];
		g->hash->next = g->sink;
	}
	return head;
}

int
repo_get(repo_t *repo, const char *path, filter_t *sink, const uint8_t *expected_sha256,
		 repo_object_result *result)
{
	return repo_get_ring(repo, path, sink, expected_sha256, NULL, result);
}

int
repo_get_ring(repo_t *repo, const char *path, filter_t *sink, const uint8_t *expected_sha256,
			  uint8_t *const *ring, repo_object_result *result)
{
	get_state	g = {0};
	filter_t   *head;
	int			rc;

	g.repo = repo;
	g.path = path;
	g.sink = sink;
	g.expected_sha256 = expected_sha256;
	g.ring = ring;

	/* storage read -> header -> (get_body_chain) -> caller's sink */
	head = filter_header_reader_new(path, get_body_chain, &g, &g.stored);
	rc = storage_read(repo->storage, path, 0, 0, head);
	if (rc == 0)
		rc = filter_finish(head);
	if (g.hash)
		g.hash->next = NULL;	/* the sink is the caller's */
	filter_chain_free(head);
	if (rc != 0)
		return err_wrap("repository %d", repo->index);
	if (result)
	{
		result->size = g.plain.size;
		result->stored_size = g.stored;
		memcpy(result->sha256, g.plain.sha256, 32);
	}
	return 0;
}

int
repo_get_buf(repo_t *repo, const char *path, struct buf *out, repo_object_result *result)
{
	filter_t   *sink = filter_sink_buf_new(out);
	int			rc = repo_get(repo, path, sink, NULL, result);

	filter_chain_free(sink);
	return rc;
}

int
repo_get_file(repo_t *repo, const char *path, const char *local, const uint8_t *expected_sha256,
			  bool durable, repo_object_result *result)
{
	char	   *tmp = xasprintf("%s.drbtmp.%d", local, (int) getpid());
	int			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	filter_t   *sink;
	int			rc;

	if (fd < 0)
	{
		rc = err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", tmp);
		free(tmp);
		return rc;
	}
	sink = filter_sink_fd_new(fd);
	rc = repo_get(repo, path, sink, expected_sha256, result);
	filter_chain_free(sink);
	if (rc == 0 && durable && fsync(fd) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to fsync '%s': %m", tmp);
	if (close(fd) != 0 && rc == 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", tmp);
	if (rc == 0 && rename(tmp, local) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %m", tmp, local);
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}
