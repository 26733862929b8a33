/*
 * filter_hash.c — SHA-256 + size observer with a helper thread for large pushes
 * (see filter_hash.h).
 *
 * Handshake with the helper: jobs (data, len) are queued under the mutex (a FIFO of up
 * to HASH_RING_N - 1); the helper hashes the oldest and then removes it. The digest
 * context is touched by one thread at a time: the helper only while jobs are queued, the
 * caller only when none is (hash_wait first). Jobs are hashed strictly in push order.
 * Only ring pieces are ever queued behind other jobs: every other push first waits for
 * the queue to drain, so a copied or in-place job is alone in it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "filter_hash.h"
#include "mem.h"

typedef struct hash_filter
{
	filter_t	base;
	EVP_MD_CTX *md;
	hash_result *result;
	hash_check_fn check;
	void	   *check_arg;

	/* helper thread */
	bool		thread_started;
	bool		thread_failed;	/* could not start: hash inline from then on */
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct
	{
		const uint8_t *data;
		size_t		len;
	}			jobs[HASH_RING_N];	/* FIFO: jobs[head], then the next count - 1 */
	int			head;
	int			count;
	bool		job_failed;		/* a digest update failed (reported by hash_wait) */
	bool		quit;
	uint8_t    *stage;			/* HASH_STAGE_SIZE copy of a push hashed after it returned */
	uint8_t    *ring[HASH_RING_N];	/* filter_hash_ring: filled by the filter before this one */
	bool		ring_lent;		/* ring is the caller's (filter_hash_use_ring): not freed */
} hash_filter;

static void *
hash_thread_main(void *arg)
{
	hash_filter *h = arg;

	pthread_mutex_lock(&h->lock);
	for (;;)
	{
		bool		ok;

		const uint8_t *data;
		size_t		len;

		while (h->count == 0 && !h->quit)
			pthread_cond_wait(&h->cond, &h->lock);
		if (h->count == 0)
			break;
		data = h->jobs[h->head].data;
		len = h->jobs[h->head].len;
		pthread_mutex_unlock(&h->lock);
		ok = EVP_DigestUpdate(h->md, data, len) == 1;
		pthread_mutex_lock(&h->lock);
		if (!ok)
			h->job_failed = true;
		h->head = (h->head + 1) % HASH_RING_N;
		h->count--;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static bool
hash_thread_start(hash_filter *h)
{
	if (h->thread_started)
		return true;
	if (h->thread_failed)
		return false;
	if (pthread_create(&h->thread, NULL, hash_thread_main, h) != 0)
	{
		h->thread_failed = true;
		return false;
	}
	h->thread_started = true;
	return true;
}

/* Queue a job once at most max_before jobs are ahead of it. */
static void
hash_post(hash_filter *h, const uint8_t *data, size_t len, int max_before)
{
	pthread_mutex_lock(&h->lock);
	while (h->count > max_before)
		pthread_cond_wait(&h->cond, &h->lock);
	h->jobs[(h->head + h->count) % HASH_RING_N].data = data;
	h->jobs[(h->head + h->count) % HASH_RING_N].len = len;
	h->count++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* Wait until no job is queued; -1 + err if any update failed. */
static int
hash_wait(hash_filter *h)
{
	bool		failed;

	if (!h->thread_started)
		return 0;
	pthread_mutex_lock(&h->lock);
	while (h->count > 0)
		pthread_cond_wait(&h->cond, &h->lock);
	failed = h->job_failed;
	pthread_mutex_unlock(&h->lock);
	return failed ? err_set(DRB_ERR_INTERNAL, "SHA-256 update failed") : 0;
}

int
hash_ring_slot(uint8_t *const *ring, const uint8_t *in, size_t len)
{
	uintptr_t	p = (uintptr_t) in;

	if (ring[0] == NULL || len > HASH_STAGE_SIZE)
		return -1;
	for (int i = 0; i < HASH_RING_N; i++)
	{
		uintptr_t	b = (uintptr_t) ring[i];

		if (p >= b && p - b <= HASH_STAGE_SIZE - len)
			return i;
	}
	return -1;
}

static int
hash_process(filter_t *f, const uint8_t *in, size_t len)
{
	hash_filter *h = (hash_filter *) f;
	int			rc = 0;

	h->result->size += len;
	if (len >= HASH_THREAD_MIN && hash_ring_slot(h->ring, in, len) >= 0 && hash_thread_start(h))
	{
		/*
		 * From the ring: queued behind at most HASH_RING_N - 2 others, so that the buffer
		 * the filter before us fills next (the one after this) is no longer queued when we
		 * return. The pieces are hashed in place while the next ones are made.
		 */
		hash_post(h, in, len, HASH_RING_N - 2);
		if (f->next && (rc = filter_push(f->next, in, len)) != 0)
			(void) hash_wait(h);
		return rc;
	}

	/* whatever happens next, the jobs queued come first in the digest */
	if (hash_wait(h) != 0)
		return -1;
	if (len < HASH_THREAD_MIN || !hash_thread_start(h))
	{
		if (EVP_DigestUpdate(h->md, in, len) != 1)
			return err_set(DRB_ERR_INTERNAL, "SHA-256 update failed");
		return f->next ? filter_push(f->next, in, len) : 0;
	}

	if (len <= HASH_STAGE_SIZE)
	{
		/* hashed from a copy while the caller goes on producing the next piece */
		if (h->stage == NULL)
			h->stage = xmalloc(HASH_STAGE_SIZE);
		memcpy(h->stage, in, len);
		hash_post(h, h->stage, len, 0);
		return f->next ? filter_push(f->next, in, len) : 0;
	}

	/* a large push is hashed in place: the caller's buffer is released only afterwards */
	hash_post(h, in, len, 0);
	if (f->next)
		rc = filter_push(f->next, in, len);
	if (hash_wait(h) != 0 && rc == 0)
		rc = -1;
	return rc;
}

static int
hash_finish(filter_t *f)
{
	hash_filter *h = (hash_filter *) f;
	unsigned int n = 0;

	if (hash_wait(h) != 0)
		return -1;
	if (EVP_DigestFinal_ex(h->md, h->result->sha256, &n) != 1 || n != 32)
		return err_set(DRB_ERR_INTERNAL, "SHA-256 finalisation failed");
	h->result->done = true;
	if (h->check && h->check(h->result, h->check_arg) != 0)
		return -1;
	return filter_finish(f->next);
}

static void
hash_destroy(filter_t *f)
{
	hash_filter *h = (hash_filter *) f;

	if (h->thread_started)
	{
		pthread_mutex_lock(&h->lock);
		h->quit = true;
		pthread_cond_broadcast(&h->cond);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	EVP_MD_CTX_free(h->md);
	free(h->stage);
	for (int i = 0; i < HASH_RING_N && !h->ring_lent; i++)
		free(h->ring[i]);
	free(h);
}

static const filter_ops hash_ops = {"sha256", hash_process, hash_finish, hash_destroy};

filter_t *
filter_hash_new(hash_result *result, hash_check_fn check, void *arg)
{
	hash_filter *h = xcalloc(1, sizeof(*h));

	h->base.ops = &hash_ops;
	h->md = EVP_MD_CTX_new();
	if (h->md == NULL || EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
	{
		EVP_MD_CTX_free(h->md);
		free(h);
		err_set(DRB_ERR_INTERNAL, "unable to initialise SHA-256");
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	memset(result, 0, sizeof(*result));
	h->result = result;
	h->check = check;
	h->check_arg = arg;
	return &h->base;
}

uint8_t   **
filter_hash_ring(filter_t *f)
{
	hash_filter *h = (hash_filter *) f;

	if (h->ring[0] == NULL)
		for (int i = 0; i < HASH_RING_N; i++)
			h->ring[i] = xmalloc(HASH_STAGE_SIZE);
	return h->ring;
}

uint8_t   **
filter_hash_use_ring(filter_t *f, uint8_t *const *ring)
{
	hash_filter *h = (hash_filter *) f;

	if (h->ring[0] == NULL)
	{
		for (int i = 0; i < HASH_RING_N; i++)
			h->ring[i] = ring[i];
		h->ring_lent = true;
	}
	return h->ring;
}

void
sha256_buf(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}
