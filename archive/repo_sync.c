/*
 * repo_sync.c — repo-sync: bring one repository level with another for a stanza.
 *
 *   drbackup --stanza=S repo-sync --from=N --to=M
 *
 * Both repositories must hold the same cluster under the stanza (the stanza record is
 * copied to M when M lacks it). Then, for each kind of content (sync_kinds below: the WAL
 * archive now, backup sets later), both repositories are listed under the kind's
 * directory and every object N has and M lacks is copied: read from N through the whole
 * pipeline (decrypt, decompress, verified against the checksum its name carries) and
 * streamed straight into a put to M with M's own key and compression. An object in M
 * becomes visible only once the bytes from N have verified, so a damaged source never
 * lands in M. Nothing is deleted or overwritten: an object whose identity (a WAL name) M
 * holds with another checksum is a conflict, reported, left alone, and makes the command
 * fail (DRB_ERR_STANZA) after everything else has been copied.
 *
 * Copies run in process-max threads; each streams one object with bounded buffers, only
 * the two name listings are held in memory. Running it again copies nothing new: the
 * object names carry their checksums, so "present" is a name comparison.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "error.h"
#include "log.h"
#include "mem.h"
#include "repo_config.h"
#include "stanza.h"
#include "wal.h"

/* Length of the "-<sha256 hex>" suffix every archived object name ends with. */
#define CHECKSUM_SUFFIX_LEN (1 + 64)

/*
 * One kind of repository content repo-sync copies. Objects of a kind live under
 * "stanza/<stanza>/<dir>/"; parse splits a path relative to that directory into the
 * object's identity (its first *key_len bytes: two objects with the same identity and
 * different checksums conflict) and the SHA-256 of its plain content, and returns false
 * for anything that is not an object of the kind (it is then left alone).
 */
typedef struct sync_kind
{
	const char *noun;			/* "WAL files", for the report */
	const char *noun1;			/* "WAL file", the same for a count of 1 */
	const char *what;			/* "WAL archive", for messages about one object */
	const char *dir;
	bool		(*parse) (const char *rel, size_t *key_len, uint8_t sha256[32]);
} sync_kind;

/*
 * The WAL archive (archive/archive.h): "<archive-id>/<dir>/<wal-name>-<sha256 hex>".
 * The identity is everything before the final "-<sha256>".
 */
static bool
parse_archive_object(const char *rel, size_t *key_len, uint8_t sha256[32])
{
	const char *base = strrchr(rel, '/');
	const char *dash = strrchr(rel, '-');
	size_t		len = strlen(rel);
	char		name[64];
	wal_name	w;

	if (base == NULL || dash == NULL || dash < base || len - (size_t) (dash - rel) != CHECKSUM_SUFFIX_LEN)
		return false;
	if (hex_decode(dash + 1, sha256, 32) != 0)
		return false;
	base++;
	if ((size_t) (dash - base) >= sizeof(name) || dash == base)
		return false;
	memcpy(name, base, (size_t) (dash - base));
	name[dash - base] = '\0';
	if (wal_name_parse(name, &w) != 0)
	{
		err_clear();
		return false;
	}
	*key_len = (size_t) (dash - rel);
	return true;
}

/* What repo-sync copies, in order. Backup sets join here (issue 4). */
static const sync_kind sync_kinds[] = {
	{"WAL files", "WAL file", "WAL archive", "archive", parse_archive_object},
};

/* --- listings --- */

typedef struct sync_object
{
	char	   *rel;			/* path relative to the kind's directory */
	size_t		key_len;
	uint8_t		sha256[32];
} sync_object;

typedef struct object_list
{
	const sync_kind *kind;
	size_t		prefix_len;
	int			repo_index;
	sync_object *v;
	size_t		n;
	size_t		cap;
} object_list;

static int
list_cb(const storage_info *info, void *arg)
{
	object_list *l = arg;
	const char *rel = info->path + l->prefix_len;
	sync_object o;

	if (strlen(info->path) <= l->prefix_len || !l->kind->parse(rel, &o.key_len, o.sha256))
	{
		log_warn("repository %d: '%s' is not a %s object name: ignored", l->repo_index,
				 info->path, l->kind->what);
		return 0;
	}
	if (l->n == l->cap)
	{
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	o.rel = xstrdup(rel);
	l->v[l->n++] = o;
	return 0;
}

static int
object_cmp(const void *a, const void *b)
{
	return strcmp(((const sync_object *) a)->rel, ((const sync_object *) b)->rel);
}

/* List every object of l->kind under prefix in repo, sorted by path. */
static int
object_list_load(object_list *l, repo_t *repo, const char *prefix)
{
	l->prefix_len = strlen(prefix);
	l->repo_index = repo_index(repo);
	if (storage_list(repo_storage(repo), prefix, list_cb, l) != 0)
		return err_wrap("repository %d: unable to list '%s'", repo_index(repo), prefix);
	qsort(l->v, l->n, sizeof(*l->v), object_cmp);
	return 0;
}

static void
object_list_free(object_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].rel);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Index of the first entry of l not sorting before key (binary search). */
static size_t
lower_bound(const object_list *l, const char *key, size_t key_len)
{
	size_t		lo = 0;
	size_t		hi = l->n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		/* a path that is a proper prefix of key sorts before it: strncmp sees its NUL */
		if (strncmp(l->v[mid].rel, key, key_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef enum presence
{
	MISSING,
	PRESENT,
	CONFLICT,
} presence;

/*
 * Where o stands in the target listing: present (same identity and checksum, i.e. the
 * same path), conflicting (same identity, another checksum; *other, NULL on entry, names
 * it) or missing.
 */
static presence
target_presence(const object_list *to, const sync_object *o, const sync_object **other)
{
	/* every path starting with the identity sorts together from its lower bound */
	for (size_t i = lower_bound(to, o->rel, o->key_len); i < to->n; i++)
	{
		const sync_object *t = &to->v[i];

		if (strncmp(t->rel, o->rel, o->key_len) != 0)
			break;
		if (t->key_len != o->key_len)
			continue;
		if (memcmp(t->sha256, o->sha256, 32) == 0)
			return PRESENT;
		*other = t;
	}
	return *other ? CONFLICT : MISSING;
}

/* --- copying --- */

/*
 * A pass-through filter in front of the put chain: when the target side fails, it keeps
 * that error so it is reported as the target's, not wrapped as a read failure of the
 * source by repo_get.
 */
typedef struct put_guard
{
	filter_t	base;
	bool		failed;
	drb_err		kind;
	char		msg[1024];
} put_guard;

static int
guard_note(put_guard *g, int rc)
{
	if (rc != 0 && !g->failed)
	{
		g->failed = true;
		g->kind = err_kind();
		snprintf(g->msg, sizeof(g->msg), "%s", err_msg());
	}
	return rc;
}

static int
guard_process(filter_t *f, const uint8_t *in, size_t len)
{
	return guard_note((put_guard *) f, filter_push(f->next, in, len));
}

static int
guard_finish(filter_t *f)
{
	return guard_note((put_guard *) f, filter_finish(f->next));
}

static void
guard_destroy(filter_t *f)
{
	free(f);
}

static const filter_ops guard_ops = {"repo-sync-guard", guard_process, guard_finish, guard_destroy};

/* State shared by the copy threads of one kind. */
typedef struct sync_run
{
	repo_t	   *from;
	repo_t	   *to;
	const char *prefix;			/* "stanza/<s>/<dir>/" */
	const sync_object **todo;
	size_t		ntodo;

	pthread_mutex_t lock;
	size_t		next;			/* next todo entry to take */
	uint64_t	copied;
	uint64_t	bytes;			/* plain bytes copied */
	uint64_t	failed;
	bool		stop;			/* a copy failed: take no more */
	drb_err		first_kind;
	char		first_error[2048];
} sync_run;

/*
 * Copy one object: stream the verified plain bytes from the source into a put to the
 * target under the same path. The put is finished (made visible) only after repo_get has
 * checked the whole object against the checksum in its name; any failure aborts it.
 */
static int
copy_object(sync_run *run, const sync_object *o, uint64_t *bytes)
{
	char	   *path = xasprintf("%s%s", run->prefix, o->rel);
	put_guard  *guard = xcalloc(1, sizeof(*guard));
	repo_object_result put_result;
	filter_t   *put;
	int			rc;

	put = repo_put_open(run->to, path, &put_result);
	if (put == NULL)
	{
		free(guard);
		rc = err_wrap("repo-sync from repository %d to %d", repo_index(run->from),
					  repo_index(run->to));
		free(path);
		return rc;
	}
	guard->base.ops = &guard_ops;
	guard->base.next = put;

	rc = repo_get(run->from, path, &guard->base, o->sha256, NULL);
	/* both sides name the object; say which copy it was */
	if (rc != 0 && guard->failed)
		rc = err_set(guard->kind, "repo-sync from repository %d to %d: %s", repo_index(run->from),
					 repo_index(run->to), guard->msg);
	else if (rc != 0)
		rc = err_wrap("repo-sync from repository %d to %d", repo_index(run->from),
					  repo_index(run->to));
	else
	{
		*bytes = put_result.size;
		log_detail("copied '%s' from repository %d to %d (%" PRIu64 " bytes)", path,
				   repo_index(run->from), repo_index(run->to), put_result.size);
	}
	filter_chain_free(&guard->base);	/* aborts the put unless it finished */
	free(path);
	return rc;
}

static void *
copy_worker(void *arg)
{
	sync_run   *run = arg;

	for (;;)
	{
		const sync_object *o;
		uint64_t	bytes = 0;
		int			rc;

		pthread_mutex_lock(&run->lock);
		if (run->stop || run->next >= run->ntodo)
		{
			pthread_mutex_unlock(&run->lock);
			return NULL;
		}
		o = run->todo[run->next++];
		pthread_mutex_unlock(&run->lock);

		rc = copy_object(run, o, &bytes);

		pthread_mutex_lock(&run->lock);
		if (rc == 0)
		{
			run->copied++;
			run->bytes += bytes;
		}
		else
		{
			/* a failing repository would fail every copy: stop, a rerun resumes */
			if (run->failed++ == 0)
			{
				run->first_kind = err_kind();
				snprintf(run->first_error, sizeof(run->first_error), "%s", err_msg());
			}
			else
				log_error("%s", err_msg());
			run->stop = true;
		}
		pthread_mutex_unlock(&run->lock);
		err_clear();
	}
}

/* Copy run->todo with up to process_max threads (the caller's thread is one of them). */
static void
copy_all(sync_run *run, int process_max)
{
	pthread_t	threads[64];
	int			nthread = 0;

	if (process_max < 1)
		process_max = 1;
	if ((size_t) process_max > run->ntodo)
		process_max = (int) run->ntodo;
	for (int i = 1; i < process_max && nthread < (int) (sizeof(threads) / sizeof(threads[0])); i++)
	{
		if (pthread_create(&threads[nthread], NULL, copy_worker, run) != 0)
		{
			log_warn("unable to start copy thread %d: continuing with %d", i + 1, i);
			break;
		}
		nthread++;
	}
	copy_worker(run);
	for (int i = 0; i < nthread; i++)
		pthread_join(threads[i], NULL);
}

/* --- the command --- */

/* Outcome of one kind, for the report and the exit code. */
typedef struct kind_result
{
	bool		listed;			/* both listings were read: the counts mean something */
	uint64_t	copied;
	uint64_t	present;
	uint64_t	conflicts;
	uint64_t	bytes;
} kind_result;

/*
 * Sync one kind from `from` to `to`. Conflicts are counted in res and described in
 * *conflict_msg (the first; later ones are logged); returns -1 only for a listing or copy
 * failure.
 */
static int
sync_kind_run(const config_t *cfg, const sync_kind *kind, repo_t *from, repo_t *to,
			  kind_result *res, char *conflict_msg, size_t conflict_size)
{
	char	   *prefix = xasprintf("stanza/%s/%s/", cfg_str(cfg, "stanza"), kind->dir);
	object_list have = {.kind = kind};
	object_list want = {.kind = kind};
	sync_run	run = {0};
	int			rc = -1;

	memset(res, 0, sizeof(*res));
	if (object_list_load(&have, from, prefix) != 0 || object_list_load(&want, to, prefix) != 0)
		goto done;
	res->listed = true;

	run.todo = xcalloc(have.n ? have.n : 1, sizeof(*run.todo));
	for (size_t i = 0; i < have.n; i++)
	{
		const sync_object *other = NULL;
		char		hex_from[65];
		char		hex_to[65];

		switch (target_presence(&want, &have.v[i], &other))
		{
			case PRESENT:
				res->present++;
				break;
			case MISSING:
				run.todo[run.ntodo++] = &have.v[i];
				break;
			case CONFLICT:
				hex_encode(have.v[i].sha256, 32, hex_from);
				hex_encode(other->sha256, 32, hex_to);
				if (res->conflicts++ == 0)
					snprintf(conflict_msg, conflict_size, "'%s%.*s' has checksum %s in repository %d "
							 "but %s in repository %d", prefix, (int) have.v[i].key_len,
							 have.v[i].rel, hex_to, repo_index(to), hex_from, repo_index(from));
				else
					log_warn("conflict: '%s%.*s' has checksum %s in repository %d but %s in "
							 "repository %d: not overwritten", prefix, (int) have.v[i].key_len,
							 have.v[i].rel, hex_to, repo_index(to), hex_from, repo_index(from));
				break;
		}
	}
	log_info("repo-sync: %zu %s to copy from repository %d to %d, %" PRIu64 " present, %" PRIu64
			 " conflicting", run.ntodo, kind->noun, repo_index(from), repo_index(to),
			 res->present, res->conflicts);

	run.from = from;
	run.to = to;
	run.prefix = prefix;
	pthread_mutex_init(&run.lock, NULL);
	copy_all(&run, (int) cfg_int(cfg, "process-max"));
	pthread_mutex_destroy(&run.lock);
	res->copied = run.copied;
	res->bytes = run.bytes;
	log_info("repo-sync: %" PRIu64 " %s (%" PRIu64 " bytes) copied from repository %d to %d",
			 run.copied, kind->noun, run.bytes, repo_index(from), repo_index(to));
	if (run.failed)
		rc = err_set(run.first_kind, "%s", run.first_error);
	else
		rc = 0;

done:
	free(run.todo);
	object_list_free(&have);
	object_list_free(&want);
	free(prefix);
	return rc;
}

/*
 * Both repositories must hold the stanza for the same cluster. The source must have the
 * record; a target without one gets a copy of the source's.
 */
static int
stanza_match(const char *stanza, repo_t *from, repo_t *to)
{
	stanza_info src;
	stanza_info dst;

	if (stanza_info_read(from, stanza, &src) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
			return err_set(DRB_ERR_NOT_FOUND, "repository %d holds no stanza '%s': nothing to "
						   "copy (run stanza-create first)", repo_index(from), stanza);
		return err_wrap("unable to read stanza '%s' in repository %d", stanza, repo_index(from));
	}
	if (stanza_info_read(to, stanza, &dst) != 0)
	{
		if (err_kind() != DRB_ERR_NOT_FOUND)
			return err_wrap("unable to read stanza '%s' in repository %d", stanza, repo_index(to));
		err_clear();
		if (stanza_info_write(to, &src) != 0)
			return err_wrap("unable to copy the record of stanza '%s' to repository %d", stanza,
							repo_index(to));
		log_info("stanza '%s' record copied from repository %d to %d (system identifier %" PRIu64
				 ")", stanza, repo_index(from), repo_index(to), src.system_id);
		return 0;
	}
	if (src.system_id != dst.system_id || src.pg_version != dst.pg_version)
		return err_set(DRB_ERR_STANZA, "stanza '%s' belongs to system identifier %" PRIu64
					   " (PostgreSQL %d) in repository %d but to %" PRIu64 " (PostgreSQL %d) in "
					   "repository %d: refusing to mix clusters", stanza, src.system_id,
					   src.pg_version, repo_index(from), dst.system_id, dst.pg_version,
					   repo_index(to));
	return 0;
}

static int
check_options(const config_t *cfg, int *from, int *to)
{
	if (cfg_str(cfg, "stanza") == NULL)
		return err_set(DRB_ERR_USAGE, "repo-sync needs --stanza=NAME");
	if (!cfg_is_set(cfg, "from") || !cfg_is_set(cfg, "to"))
		return err_set(DRB_ERR_USAGE, "repo-sync needs --from=N and --to=M (the repository to "
					   "copy from and the one to bring level)");
	*from = (int) cfg_int(cfg, "from");
	*to = (int) cfg_int(cfg, "to");
	if (*from == *to)
		return err_set(DRB_ERR_USAGE, "repo-sync --from and --to name the same repository (%d)",
					   *from);
	for (int i = 0; i < 2; i++)
	{
		int			n = i == 0 ? *from : *to;

		if (!cfg_repo_configured(cfg, n))
			return err_set(DRB_ERR_CONFIG, "repo-sync: repository %d is not configured (no "
						   "repo%d-* option is set)", n, n);
	}
	return 0;
}

int
cmd_repo_sync(config_t *cfg)
{
	const char *stanza = cfg_str(cfg, "stanza");
	repo_t	   *from = NULL;
	repo_t	   *to = NULL;
	int			from_n = 0;
	int			to_n = 0;
	uint64_t	conflicts = 0;
	char		conflict_msg[1024] = "";
	int			rc = -1;

	if (check_options(cfg, &from_n, &to_n) != 0)
		return -1;
	if ((from = repo_config_open(cfg, from_n)) == NULL)
		return -1;				/* the repository layer names the repository */
	if ((to = repo_config_create_open(cfg, to_n)) == NULL)
		goto done;
	if (stanza_match(stanza, from, to) != 0)
		goto done;

	rc = 0;
	for (size_t k = 0; k < sizeof(sync_kinds) / sizeof(sync_kinds[0]) && rc == 0; k++)
	{
		kind_result res;
		char		msg[1024] = "";

		rc = sync_kind_run(cfg, &sync_kinds[k], from, to, &res, msg, sizeof(msg));
		if (!res.listed)
			break;
		printf("repo-sync: %" PRIu64 " %s copied from repository %d to %d, %" PRIu64
			   " already present", res.copied,
			   res.copied == 1 ? sync_kinds[k].noun1 : sync_kinds[k].noun, from_n, to_n, res.present);
		if (res.conflicts)
			printf(", %" PRIu64 " conflicting (not overwritten)", res.conflicts);
		printf("\n");
		fflush(stdout);
		if (res.conflicts && conflicts == 0)
			snprintf(conflict_msg, sizeof(conflict_msg), "%s", msg);
		conflicts += res.conflicts;
	}
	if (rc == 0 && conflicts)
		rc = err_set(DRB_ERR_STANZA, "repo-sync: repository %d holds %" PRIu64 " file%s under the "
					 "same name as repository %d but with other content, not overwritten (first: %s)",
					 to_n, conflicts, conflicts == 1 ? "" : "s", from_n, conflict_msg);
	else if (conflicts)
		log_warn("conflict: %s: not overwritten", conflict_msg);	/* the error is another */

done:
	if (to)
		repo_close(to);
	repo_close(from);
	return rc;
}
