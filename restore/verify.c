/*
 * verify.c — `drbackup verify`: is everything in the repositories whole, and do they agree?
 *
 *   drbackup --stanza=S verify [--repo=N] [--set=LABEL] [--output=text|json]
 *
 * Per selected repository (all configured ones by default), in this order:
 *  1. the stanza record, the catalog, one LIST of the backup directory and one of the WAL
 *     archive (wal_inventory); the stanza record and catalog objects (main and copy) read;
 *  2. each backup of the catalog (or --set): both manifest objects read against the
 *     manifest checksum the catalog holds; the manifest streamed once (manifest_reader
 *     validates it), its files grouped by the object holding them; every object the
 *     backup owns read once (verify_objects.c: each file's size and SHA-256 checked at its
 *     offset); a file stored by an earlier backup: that backup must be in the catalog and
 *     its object in the listing (its bytes are checked with that backup's objects); the
 *     WAL from wal-start to wal-stop must be archived;
 *  3. objects under the backup directory that no manifest names: "orphan" warnings (an
 *     interrupted backup or expire leaves them; they do not fail verify);
 *  4. every WAL archive object read against the checksum in its name, segments' headers
 *     checked; the archive continuous on each timeline from the oldest backup's wal-start
 *     (on later timelines from their switch point in the .history file, which must be
 *     there) to the newest segment.
 * Then, with more than one repository: the same backups in every catalog, and the same WAL
 * (names and checksums) from each repository's oldest backup on.
 *
 * Memory: one backup at a time; per backup, its objects and, per object, its files'
 * offsets and positions in an unlinked records file (verify.h). Problems are collected and
 * printed at the end, one line each; the command fails (DRB_ERR_INTEGRITY, exit 5) when
 * there is any problem other than an orphan (docs/verify.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "archive.h"
#include "catalog.h"
#include "command.h"
#include "error.h"
#include "fileutil.h"
#include "jsonutil.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "verify.h"
#include "wal_inventory.h"

#define DEFAULT_SEG_SIZE	(16u * 1024u * 1024u)

/* ------------------------------------------------------------------------------------ */
/* A string set (object listing, groups, references): open addressing, FNV-1a           */
/* ------------------------------------------------------------------------------------ */

typedef struct smap_ent
{
	char	   *key;
	uint64_t	val;
	bool		named;			/* listing: a manifest or the catalog names this object */
} smap_ent;

typedef struct smap
{
	smap_ent   *e;
	size_t		cap;			/* power of two */
	size_t		n;
} smap;

static uint64_t
str_hash(const char *s)
{
	uint64_t	h = UINT64_C(1469598103934665603);

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * UINT64_C(1099511628211);
	return h;
}

/* The entry of key; with create, added (val 0) when absent; NULL when absent otherwise. */
static smap_ent *
smap_get(smap *m, const char *key, bool create)
{
	size_t		i;

	if (create && (m->n + 1) * 2 > m->cap)
	{
		smap		bigger = {xcalloc(m->cap ? m->cap * 2 : 64, sizeof(smap_ent)),
		m->cap ? m->cap * 2 : 64, 0};

		for (size_t k = 0; k < m->cap; k++)
			if (m->e[k].key)
			{
				for (i = str_hash(m->e[k].key) & (bigger.cap - 1); bigger.e[i].key;
					 i = (i + 1) & (bigger.cap - 1))
					;
				bigger.e[i] = m->e[k];
				bigger.n++;
			}
		free(m->e);
		*m = bigger;
	}
	if (m->cap == 0)
		return NULL;
	for (i = str_hash(key) & (m->cap - 1); m->e[i].key; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->e[i].key, key) == 0)
			return &m->e[i];
	if (!create)
		return NULL;
	m->e[i].key = xstrdup(key);
	m->n++;
	return &m->e[i];
}

static void
smap_free(smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->e[i].key);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------------------ */
/* The run                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct vproblem
{
	char	   *object;
	const char *kind;
	char	   *message;
	bool		warning;		/* reported, does not fail verify (orphans) */
	bool		storage;		/* the repository could not be read (exit 4 if nothing worse) */
} vproblem;

typedef struct vrepo
{
	archive_repo *ar;
	catalog		cat;
	bool		cat_ok;
	wal_inventory inv;
	bool		inv_ok;
	smap		listing;		/* objects under stanza/<s>/backup/ */
	bool		listing_ok;
	vproblem   *problems;
	size_t		nproblems;
	size_t		cap;
	uint64_t	backups;
	uint64_t	wal;
} vrepo;

typedef struct vdiff
{
	const char *kind;			/* backup-missing, wal-missing, wal-different */
	int			repo;
	char	   *object;			/* label or first WAL name */
	char	   *last;			/* WAL: last name of a range (NULL: one file) */
	uint64_t	count;
	char	   *message;
} vdiff;

typedef struct vrun
{
	const char *stanza;
	const char *set;
	archive_ctx ctx;
	vrepo		repos[REPO_MAX];
	int			nrepo;
	verify_pool pool;
	atomic_uint_fast64_t stored[REPO_MAX];
	pthread_mutex_t lock;
	vdiff	   *diffs;
	size_t		ndiffs;
} vrun;

static void
problem_add(vrun *run, vrepo *vr, const char *object, const char *kind, bool storage,
			const char *message)
{
	vproblem   *p;

	pthread_mutex_lock(&run->lock);
	if (vr->nproblems == vr->cap)
	{
		vr->cap = vr->cap ? vr->cap * 2 : 16;
		vr->problems = xrealloc(vr->problems, vr->cap * sizeof(*vr->problems));
	}
	p = &vr->problems[vr->nproblems++];
	p->object = xstrdup(object);
	p->kind = kind;
	p->message = xstrdup(message);
	p->warning = strcmp(kind, "orphan") == 0;
	p->storage = storage;
	pthread_mutex_unlock(&run->lock);
}

static void
problem(vrun *run, vrepo *vr, const char *object, const char *kind, const char *fmt,...)
__attribute__((format(printf, 5, 6)));

static void
problem(vrun *run, vrepo *vr, const char *object, const char *kind, const char *fmt,...)
{
	va_list		ap;
	char		text[8192];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	problem_add(run, vr, object, kind, false, text);
}

/* verify_pool.report: a problem found while reading an object. */
static void
pool_report(void *arg, const verify_job *job, const char *kind, const char *message)
{
	vrun	   *run = arg;

	problem_add(run, &run->repos[job->repo_pos], job->path, kind,
				strcmp(kind, "unreadable") == 0, message);
}

static void
diff_add(vrun *run, const char *kind, int repo, const char *object, const char *last,
		 uint64_t count, char *message)
{
	vdiff	   *d;

	run->diffs = xrealloc(run->diffs, (run->ndiffs + 1) * sizeof(*run->diffs));
	d = &run->diffs[run->ndiffs++];
	d->kind = kind;
	d->repo = repo;
	d->object = xstrdup(object);
	d->last = last ? xstrdup(last) : NULL;
	d->count = count;
	d->message = message;
}

/* ------------------------------------------------------------------------------------ */
/* Jobs                                                                                 */
/* ------------------------------------------------------------------------------------ */

typedef struct joblist
{
	verify_job *v;
	size_t		n;
	size_t		cap;
} joblist;

static verify_job *
job_add(joblist *jl, const vrun *run, const vrepo *vr, verify_job_kind kind, char *path)
{
	verify_job *j;

	if (jl->n == jl->cap)
	{
		jl->cap = jl->cap ? jl->cap * 2 : 64;
		jl->v = xrealloc(jl->v, jl->cap * sizeof(*jl->v));
	}
	j = &jl->v[jl->n++];
	memset(j, 0, sizeof(*j));
	j->kind = kind;
	j->repo_pos = (int) (vr - run->repos);
	j->repo = vr->ar->repo;
	j->path = path;
	j->records_fd = -1;
	return j;
}

static void
joblist_run_free(vrun *run, joblist *jl)
{
	verify_jobs_run(&run->pool, jl->v, jl->n);
	for (size_t i = 0; i < jl->n; i++)
		verify_job_free(&jl->v[i]);
	free(jl->v);
	memset(jl, 0, sizeof(*jl));
}

/* Mark path as named in the listing; its size (0 when not listed). */
static uint64_t
listing_name(vrepo *vr, const char *path)
{
	smap_ent   *e = smap_get(&vr->listing, path, false);

	if (e == NULL)
		return 0;
	e->named = true;
	return e->val;
}

/* A metadata object (and its copy): read alone, against sha256 when given. */
static void
meta_jobs(joblist *jl, vrun *run, vrepo *vr, const char *path, const char *copy,
		  const uint8_t *sha256)
{
	const char *paths[2] = {path, copy};

	for (int i = 0; i < 2; i++)
	{
		verify_job *j = job_add(jl, run, vr, VJ_META, xstrdup(paths[i]));

		j->estimate = listing_name(vr, paths[i]);
		if (sha256)
		{
			j->has_sha = true;
			memcpy(j->sha256, sha256, 32);
		}
	}
}

/* ------------------------------------------------------------------------------------ */
/* Backups                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct vgroup
{
	char	   *object;
	verify_span *spans;
	size_t		n;
	size_t		cap;
	uint64_t	bytes;
} vgroup;

static int
span_cmp(const void *a, const void *b)
{
	const verify_span *x = a;
	const verify_span *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return x->pos < y->pos ? -1 : 1;
}

/* A file stored by another backup: that backup listed, its object present. */
static void
check_reference(vrun *run, vrepo *vr, smap *refs, const catalog_backup *b,
				const manifest_entry *e)
{
	char	   *key = xasprintf("%s/%s", e->ref, e->object);
	smap_ent   *seen = smap_get(refs, key, true);
	char	   *path;

	free(key);
	if (seen->val)
		return;
	seen->val = 1;
	path = backup_object_path(run->stanza, e->ref, e->object);
	if (catalog_find(&vr->cat, e->ref) == NULL)
		problem(run, vr, path, "reference", "backup %s stores file '%s' here, but backup %s is "
				"not in the catalog", b->label, e->path, e->ref);
	else if (vr->listing_ok && smap_get(&vr->listing, path, false) == NULL)
		problem(run, vr, path, "missing", "not in the repository; backup %s needs it for file "
				"'%s'", b->label, e->path);
	free(path);
}

/* Read the manifest into the records file and the groups; -1 + err when it fails. */
static int
plan_backup(vrun *run, vrepo *vr, const catalog_backup *b, manifest_reader *mr, int fd,
			vgroup **groups, size_t *ngroups)
{
	smap		gmap = {0};
	smap		refs = {0};
	manifest_entry e;
	FILE	   *out;
	int			dupfd = dup(fd);
	uint64_t	pos = 0;
	size_t		cap = 0;
	int			rc;

	if (dupfd < 0 || (out = fdopen(dupfd, "w")) == NULL)
	{
		if (dupfd >= 0)
			close(dupfd);
		return err_set(DRB_ERR_STORAGE, "unable to open verify's records file: %m");
	}
	setvbuf(out, NULL, _IOFBF, 256 * 1024);
	while ((rc = manifest_reader_next(mr, &e)) == 1)
	{
		smap_ent   *ge;
		vgroup	   *g;
		verify_rec	rec = {0};

		if (e.type != MANIFEST_FILE_ENTRY || e.object == NULL)
			continue;
		if (strcmp(e.ref, b->label) != 0)
		{
			check_reference(run, vr, &refs, b, &e);
			continue;
		}
		ge = smap_get(&gmap, e.object, true);
		if (ge->val == 0)
		{
			if (*ngroups == cap)
			{
				cap = cap ? cap * 2 : 64;
				*groups = xrealloc(*groups, cap * sizeof(vgroup));
			}
			memset(&(*groups)[*ngroups], 0, sizeof(vgroup));
			(*groups)[*ngroups].object = xstrdup(e.object);
			ge->val = ++(*ngroups);
		}
		g = &(*groups)[ge->val - 1];
		if (g->n == g->cap)
		{
			g->cap = g->cap ? g->cap * 2 : 8;
			g->spans = xrealloc(g->spans, g->cap * sizeof(verify_span));
		}
		g->spans[g->n].offset = e.offset;
		g->spans[g->n++].pos = pos;
		g->bytes += e.size;
		rec.offset = e.offset;
		rec.size = e.size;
		memcpy(rec.sha256, e.sha256, 32);
		rec.path_len = (uint32_t) strlen(e.path);
		if (fwrite(&rec, sizeof(rec), 1, out) != 1 || fwrite(e.path, 1, rec.path_len, out) != rec.path_len)
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to write verify's records file: %m");
			break;
		}
		pos += sizeof(rec) + rec.path_len;
	}
	if (fclose(out) != 0 && rc == 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to write verify's records file: %m");
	smap_free(&gmap);
	smap_free(&refs);
	return rc;
}

/* Everything about one backup; problems recorded, nothing returned. */
static void
verify_backup(vrun *run, vrepo *vr, const catalog_backup *b)
{
	char	   *mpath = backup_object_path(run->stanza, b->label, MANIFEST_FILE);
	char	   *mcopy = backup_object_path(run->stanza, b->label, MANIFEST_FILE_COPY);
	static const uint8_t zero[32];
	joblist		jl = {0};
	manifest_header h = {0};
	manifest_reader *mr;
	vgroup	   *groups = NULL;
	size_t		ngroups = 0;
	int			fd = -1;

	vr->backups++;
	for (size_t i = 0; i < b->nreferences; i++)
		if (catalog_find(&vr->cat, b->references[i]) == NULL)
		{
			char	   *dir = xasprintf("stanza/%s/backup/%s/", run->stanza, b->references[i]);

			problem(run, vr, dir, "reference", "backup %s needs backup %s, which is not in the "
					"catalog", b->label, b->references[i]);
			free(dir);
		}
	meta_jobs(&jl, run, vr, mpath, mcopy,
			  memcmp(b->manifest_sha256, zero, 32) != 0 ? b->manifest_sha256 : NULL);

	if ((mr = manifest_reader_open(vr->ar->repo, run->stanza, b->label, &h)) == NULL)
		problem(run, vr, mpath, "manifest", "unable to read the manifest of backup %s: %s",
				b->label, err_msg());
	else if (strcmp(h.label, b->label) != 0)
		problem(run, vr, mpath, "manifest", "the manifest is the one of backup %s, not of %s",
				h.label, b->label);
	else if ((fd = tmpfile_open("verify")) < 0 ||
			 plan_backup(run, vr, b, mr, fd, &groups, &ngroups) != 0)
	{
		problem(run, vr, mpath, "manifest", "%s", err_msg());
		for (size_t i = 0; i < ngroups; i++)
		{
			free(groups[i].object);
			free(groups[i].spans);
		}
		ngroups = 0;
	}
	if (mr)
		manifest_reader_close(mr);
	manifest_header_free(&h);
	err_clear();

	for (size_t i = 0; i < ngroups; i++)
	{
		vgroup	   *g = &groups[i];
		verify_job *j = job_add(&jl, run, vr, VJ_BACKUP,
								backup_object_path(run->stanza, b->label, g->object));

		qsort(g->spans, g->n, sizeof(verify_span), span_cmp);
		j->spans = g->spans;	/* the job owns them now */
		j->nspans = g->n;
		j->records_fd = fd;
		j->estimate = g->bytes;
		listing_name(vr, j->path);
		free(g->object);
	}
	free(groups);
	joblist_run_free(run, &jl);
	if (fd >= 0)
		close(fd);

	if (vr->inv_ok)
	{
		char	   *missing = NULL;

		if (!wal_inventory_has_range(&vr->inv, b->wal_start, b->wal_stop, &missing))
		{
			wal_name	w;
			char	   *obj = NULL;

			if (wal_name_parse(missing, &w) == 0)
				obj = archive_object_prefix(vr->ar, &w);
			err_clear();
			problem(run, vr, obj ? obj : missing, "wal-missing", "WAL segment %s is not in the "
					"archive; backup %s needs %s to %s to be consistent", missing, b->label,
					b->wal_start, b->wal_stop);
			free(obj);
		}
		free(missing);
	}
	free(mpath);
	free(mcopy);
}

/* ------------------------------------------------------------------------------------ */
/* Orphans                                                                              */
/* ------------------------------------------------------------------------------------ */

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Objects under the backup directory that nothing names: in a listed backup's directory,
 * one warning each; in a directory of a backup the catalog does not list (an interrupted
 * backup, or an expire that stopped), one warning for the directory.
 */
static void
report_orphans(vrun *run, vrepo *vr)
{
	char	   *prefix = xasprintf("stanza/%s/backup/", run->stanza);
	size_t		plen = strlen(prefix);
	char	  **keys = xmalloc((vr->listing.n + 1) * sizeof(char *));
	size_t		n = 0;

	for (size_t i = 0; i < vr->listing.cap; i++)
		if (vr->listing.e[i].key && !vr->listing.e[i].named)
			keys[n++] = vr->listing.e[i].key;
	qsort(keys, n, sizeof(char *), str_cmp);
	for (size_t i = 0; i < n;)
	{
		const char *rest = keys[i] + plen;
		size_t		llen = strcspn(rest, "/");
		char	   *label = xstrndup(rest, llen);
		size_t		k = i;

		while (k < n && strncmp(keys[k] + plen, label, llen) == 0 && keys[k][plen + llen] == '/')
			k++;
		if (rest[llen] == '\0')
		{
			problem(run, vr, keys[i], "orphan", "not a catalog object");
			k = i + 1;
		}
		else if (run->set && strcmp(label, run->set) != 0)
			;
		else if (catalog_find(&vr->cat, label) != NULL)
			for (size_t m = i; m < k; m++)
				problem(run, vr, keys[m], "orphan", "no manifest names this object (an "
						"interrupted write or expire left it)");
		else if (!run->set)
		{
			char	   *dir = xasprintf("%s%s/", prefix, label);

			problem(run, vr, dir, "orphan", "%zu object%s of backup %s, which is not in the "
					"catalog (an interrupted backup, or an expire that did not finish)",
					k - i, k - i == 1 ? "" : "s", label);
			free(dir);
		}
		free(label);
		i = k > i ? k : i + 1;
	}
	free(keys);
	free(prefix);
}

/* ------------------------------------------------------------------------------------ */
/* The WAL archive                                                                      */
/* ------------------------------------------------------------------------------------ */

static const wal_object *
history_of(const wal_inventory *inv, uint32_t tli)
{
	char		name[32];

	snprintf(name, sizeof(name), "%08X.history", tli);
	for (size_t i = 0; i < inv->nothers; i++)
		if (strcmp(inv->others[i].w.name, name) == 0)
			return &inv->others[i];
	return NULL;
}

/*
 * The switch point of a timeline from its history file (its last entry: "<parent tli>
 * <switch LSN> <reason>"), as a segment position on that timeline; -1 + err.
 */
static int
history_switch(vrepo *vr, const wal_object *o, uint64_t *pos)
{
	buf_t		b;
	repo_object_result res;
	bool		found = false;
	uint64_t	lsn = 0;
	const char *p;

	buf_init(&b);
	if (repo_get_buf(vr->ar->repo, o->path, &b, &res) != 0)
	{
		buf_free(&b);
		return -1;
	}
	for (p = buf_cstr(&b); *p;)
	{
		size_t		n = strcspn(p, "\n");
		unsigned	parent,
					hi,
					lo;

		if (p[0] != '#' && sscanf(p, "%u %X/%X", &parent, &hi, &lo) == 3)
		{
			lsn = ((uint64_t) hi << 32) | lo;
			found = true;
		}
		p += n + (p[n] == '\n');
	}
	buf_free(&b);
	if (!found)
		return err_set(DRB_ERR_INTEGRITY, "history file '%s' has no switch point", o->path);
	*pos = lsn / vr->inv.seg_size;
	return 0;
}

/* No gap from where each timeline must start to its newest segment. */
static void
check_continuity(vrun *run, vrepo *vr, const catalog_backup *oldest)
{
	const wal_inventory *inv = &vr->inv;
	size_t		ri = 0;

	while (ri < inv->nranges)
	{
		uint32_t	tli = inv->ranges[ri].tli;
		size_t		rend = ri;
		uint64_t	start = 0;
		wal_name	w;

		while (rend < inv->nranges && inv->ranges[rend].tli == tli)
			rend++;
		if (wal_name_parse(inv->ranges[ri].first, &w) == 0)
			start = wal_segment_position(&w, inv->seg_size);
		if (tli > 1)
		{
			const wal_object *h = history_of(inv, tli);
			char		name[32];
			uint64_t	sw = 0;

			snprintf(name, sizeof(name), "%08X.history", tli);
			if (h == NULL)
			{
				char	   *obj = NULL;

				if (wal_name_parse(name, &w) == 0)
					obj = archive_object_prefix(vr->ar, &w);
				problem(run, vr, obj ? obj : name, "history-missing", "history file %s of "
						"timeline %" PRIu32 " is not in the archive (recovery cannot follow "
						"the timeline)", name, tli);
				free(obj);
			}
			else if (history_switch(vr, h, &sw) != 0)
				problem(run, vr, h->path, "damaged", "%s", err_msg());
			else
				start = sw;
		}
		if (oldest && tli < oldest->timeline)
		{
			ri = rend;
			continue;			/* WAL older than every backup: not needed */
		}
		if (oldest && tli == oldest->timeline && wal_name_parse(oldest->wal_start, &w) == 0)
			start = wal_segment_position(&w, inv->seg_size);
		err_clear();
		for (size_t i = ri; i < rend; i++)
		{
			const wal_range *r = &inv->ranges[i];
			uint64_t	first,
						last;

			wal_name_parse(r->first, &w);
			first = wal_segment_position(&w, inv->seg_size);
			wal_name_parse(r->last, &w);
			last = wal_segment_position(&w, inv->seg_size);
			if (last < start)
				continue;
			if (first > start)
			{
				char		a[25],
							z[25];
				char	   *obj;

				wal_segment_name(tli, start, inv->seg_size, a);
				wal_segment_name(tli, first - 1, inv->seg_size, z);
				wal_name_parse(a, &w);
				obj = archive_object_prefix(vr->ar, &w);
				if (first - start == 1)
					problem(run, vr, obj, "wal-gap", "WAL segment %s is missing: the archive of "
							"timeline %" PRIu32 " has a gap before %s", a, tli, r->first);
				else
					problem(run, vr, obj, "wal-gap", "WAL segments %s to %s (%" PRIu64 ") are "
							"missing: the archive of timeline %" PRIu32 " has a gap before %s",
							a, z, first - start, tli, r->first);
				free(obj);
			}
			start = last + 1;
		}
		ri = rend;
	}
}

/* Every WAL object read; segments' headers checked. */
static void
verify_wal(vrun *run, vrepo *vr, bool seg_size_known)
{
	joblist		jl = {0};
	const wal_object *sets[2] = {vr->inv.segments, vr->inv.others};
	size_t		counts[2] = {vr->inv.nsegments, vr->inv.nothers};

	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < counts[s]; i++)
		{
			const wal_object *o = &sets[s][i];
			verify_job *j = job_add(&jl, run, vr, VJ_WAL, xstrdup(o->path));

			j->has_sha = true;
			memcpy(j->sha256, o->sha256, 32);
			j->w = o->w;
			j->system_id = vr->ar->stanza.system_id;
			j->pg_major = vr->ar->stanza.pg_version;
			j->seg_size = seg_size_known ? vr->inv.seg_size : 0;
			j->estimate = o->w.kind == WAL_SEGMENT ? vr->inv.seg_size : o->stored_size;
			vr->wal++;
		}
	joblist_run_free(run, &jl);
}

/* ------------------------------------------------------------------------------------ */
/* Regions                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct wal_seen
{
	const wal_object *o;
	int			pos;			/* repository position */
} wal_seen;

static int
wal_seen_cmp(const void *a, const void *b)
{
	const wal_seen *x = a;
	const wal_seen *y = b;
	int			c = strcmp(x->o->w.name, y->o->w.name);

	return c ? c : x->pos - y->pos;
}

/* A run of consecutive WAL names with the same difference in one repository. */
typedef struct pending
{
	bool		open;
	wal_name	first;
	wal_name	last;
	uint64_t	count;
	int			other;			/* a repository that has them (or differs) */
} pending;

static void
pending_flush(vrun *run, pending *p, const char *kind, int repo)
{
	char	   *msg;

	if (!p->open)
		return;
	if (strcmp(kind, "wal-missing") == 0)
		msg = p->count == 1 ?
			xasprintf("WAL %s is missing (repository %d has it)", p->first.name, p->other) :
			xasprintf("WAL %s to %s (%" PRIu64 " files) are missing (repository %d has them)",
					  p->first.name, p->last.name, p->count, p->other);
	else
		msg = p->count == 1 ?
			xasprintf("WAL %s has another checksum than in repository %d", p->first.name,
					  p->other) :
			xasprintf("WAL %s to %s (%" PRIu64 " files) have other checksums than in "
					  "repository %d", p->first.name, p->last.name, p->count, p->other);
	diff_add(run, kind, repo, p->first.name, p->count > 1 ? p->last.name : NULL, p->count, msg);
	p->open = false;
}

static void
pending_add(vrun *run, pending *p, const char *kind, int repo, const wal_name *w, int other,
			uint32_t seg_size)
{
	bool		follows = false;

	if (p->open && w->kind == WAL_SEGMENT && p->last.kind == WAL_SEGMENT && p->other == other)
	{
		wal_name	next;

		wal_segment_next(&p->last, seg_size, &next);
		follows = strcmp(next.name, w->name) == 0;
	}
	if (follows)
	{
		p->last = *w;
		p->count++;
		return;
	}
	pending_flush(run, p, kind, repo);
	p->open = true;
	p->first = p->last = *w;
	p->count = 1;
	p->other = other;
}

/* Where repository vr's WAL must start: its oldest backup's wal-start (position). */
static uint64_t
wal_floor(const vrepo *vr)
{
	wal_name	w;

	if (vr->cat.nbackups == 0 || wal_name_parse(vr->cat.backups[0].wal_start, &w) != 0)
	{
		err_clear();
		return 0;
	}
	return wal_segment_position(&w, vr->inv.seg_size);
}

static void
compare_regions(vrun *run)
{
	int			idx[REPO_MAX];
	int			n = 0;
	wal_seen   *all = NULL;
	size_t		nall = 0,
				cap = 0;
	pending		miss[REPO_MAX] = {0},
				other[REPO_MAX] = {0};

	/* backups: every label of any catalog in every catalog */
	for (int i = 0; i < run->nrepo; i++)
		if (run->repos[i].cat_ok)
			idx[n++] = i;
	for (int a = 0; a < n && n > 1; a++)
		for (size_t k = 0; k < run->repos[idx[a]].cat.nbackups; k++)
		{
			const char *label = run->repos[idx[a]].cat.backups[k].label;
			bool		first = true;

			if (run->set && strcmp(label, run->set) != 0)
				continue;
			for (int c = 0; c < a && first; c++)
				first = catalog_find(&run->repos[idx[c]].cat, label) == NULL;
			if (!first)
				continue;		/* reported from the first catalog holding it */
			for (int c = 0; c < n; c++)
				if (catalog_find(&run->repos[idx[c]].cat, label) == NULL)
					diff_add(run, "backup-missing", run->repos[idx[c]].ar->index, label, NULL, 1,
							 xasprintf("backup %s is not in the catalog (repository %d has it)",
									   label, run->repos[idx[a]].ar->index));
		}

	/* WAL: names and checksums, from each repository's oldest backup on */
	n = 0;
	for (int i = 0; i < run->nrepo; i++)
		if (run->repos[i].inv_ok && run->repos[i].cat_ok)
			idx[n++] = i;
	if (n < 2)
		return;
	for (int a = 0; a < n; a++)
	{
		const wal_inventory *inv = &run->repos[idx[a]].inv;
		const wal_object *sets[2] = {inv->segments, inv->others};
		size_t		counts[2] = {inv->nsegments, inv->nothers};

		for (int s = 0; s < 2; s++)
			for (size_t i = 0; i < counts[s]; i++)
			{
				if (nall == cap)
				{
					cap = cap ? cap * 2 : 1024;
					all = xrealloc(all, cap * sizeof(*all));
				}
				all[nall].o = &sets[s][i];
				all[nall++].pos = idx[a];
			}
	}
	if (nall == 0)
		return;
	qsort(all, nall, sizeof(*all), wal_seen_cmp);
	for (size_t i = 0; i < nall;)
	{
		size_t		k = i;
		const wal_seen *ref = &all[i];

		while (k < nall && strcmp(all[k].o->w.name, ref->o->w.name) == 0)
			k++;
		for (int a = 0; a < n; a++)
		{
			vrepo	   *vr = &run->repos[idx[a]];
			const wal_seen *mine = NULL;

			for (size_t m = i; m < k; m++)
				if (all[m].pos == idx[a])
					mine = &all[m];
			if (mine == NULL)
			{
				if (ref->o->w.kind == WAL_HISTORY ||
					wal_segment_position(&ref->o->w, vr->inv.seg_size) >= wal_floor(vr))
					pending_add(run, &miss[a], "wal-missing", vr->ar->index, &ref->o->w,
								run->repos[ref->pos].ar->index, vr->inv.seg_size);
			}
			else if (mine != ref && memcmp(mine->o->sha256, ref->o->sha256, 32) != 0)
				pending_add(run, &other[a], "wal-different", vr->ar->index, &ref->o->w,
							run->repos[ref->pos].ar->index, vr->inv.seg_size);
		}
		i = k;
	}
	for (int a = 0; a < n; a++)
	{
		pending_flush(run, &miss[a], "wal-missing", run->repos[idx[a]].ar->index);
		pending_flush(run, &other[a], "wal-different", run->repos[idx[a]].ar->index);
	}
	free(all);
}

/* ------------------------------------------------------------------------------------ */
/* One repository                                                                       */
/* ------------------------------------------------------------------------------------ */

static int
listing_cb(const storage_info *info, void *arg)
{
	smap_ent   *e = smap_get(arg, info->path, true);

	e->val = info->size;
	return 0;
}

/* Catalog, WAL inventory and backup listing of an open repository. */
static void
load_repo(vrun *run, vrepo *vr)
{
	archive_repo *ar = vr->ar;
	char	   *cpath = stanza_path(run->stanza, "backup/" CATALOG_FILE);
	char	   *prefix = xasprintf("stanza/%s/backup/", run->stanza);
	uint32_t	seg_size = DEFAULT_SEG_SIZE;

	if (catalog_read(ar->repo, run->stanza, &vr->cat) != 0)
		problem_add(run, vr, cpath, "catalog", err_kind() == DRB_ERR_STORAGE, err_msg());
	else
	{
		vr->cat_ok = true;
		if (vr->cat.nbackups && vr->cat.backups[vr->cat.nbackups - 1].wal_segment_size)
			seg_size = vr->cat.backups[vr->cat.nbackups - 1].wal_segment_size;
	}
	if (wal_inventory_load(ar, seg_size, &vr->inv) != 0)
		problem_add(run, vr, "archive", "archive", err_kind() == DRB_ERR_STORAGE, err_msg());
	else
		vr->inv_ok = true;
	if (storage_list(repo_storage(ar->repo), prefix, listing_cb, &vr->listing) != 0)
	{
		err_wrap("repository %d: unable to list '%s'", ar->index, prefix);
		problem_add(run, vr, prefix, "repository", true, err_msg());
	}
	else
		vr->listing_ok = true;
	err_clear();
	free(cpath);
	free(prefix);
}

static void
verify_repo(vrun *run, vrepo *vr)
{
	joblist		jl = {0};
	char	   *spath = stanza_path(run->stanza, "stanza.info");
	char	   *scopy = stanza_path(run->stanza, "stanza.info.copy");
	char	   *cpath = stanza_path(run->stanza, "backup/" CATALOG_FILE);
	char	   *ccopy = stanza_path(run->stanza, "backup/" CATALOG_FILE_COPY);
	const catalog_backup *oldest = NULL;

	meta_jobs(&jl, run, vr, spath, scopy, NULL);
	if (smap_get(&vr->listing, cpath, false) || smap_get(&vr->listing, ccopy, false) ||
		(vr->cat_ok && vr->cat.nbackups > 0))
		meta_jobs(&jl, run, vr, cpath, ccopy, NULL);
	joblist_run_free(run, &jl);
	if (vr->cat_ok)
	{
		for (size_t i = 0; i < vr->cat.nbackups; i++)
		{
			const catalog_backup *b = &vr->cat.backups[i];

			if (run->set && strcmp(b->label, run->set) != 0)
				continue;
			if (oldest == NULL)
				oldest = b;
			verify_backup(run, vr, b);
		}
		if (run->set && oldest == NULL)
			problem(run, vr, run->set, "backup-missing", "backup %s is not in the catalog",
					run->set);
		if (vr->listing_ok)
			report_orphans(run, vr);
	}
	if (vr->inv_ok)
	{
		verify_wal(run, vr, vr->cat_ok && vr->cat.nbackups > 0);
		check_continuity(run, vr, oldest);
	}
	free(spath);
	free(scopy);
	free(cpath);
	free(ccopy);
}

/* ------------------------------------------------------------------------------------ */
/* The report                                                                           */
/* ------------------------------------------------------------------------------------ */

static size_t
failures(const vrepo *vr, bool *integrity)
{
	size_t		n = 0;

	for (size_t i = 0; i < vr->nproblems; i++)
		if (!vr->problems[i].warning)
		{
			n++;
			if (!vr->problems[i].storage)
				*integrity = true;
		}
	return n;
}

static void
print_json(vrun *run, bool ok)
{
	json_t	   *repos = json_array();
	json_t	   *diffs = json_array();
	json_t	   *doc;
	char	   *text;

	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];
		json_t	   *probs = json_array();

		for (size_t k = 0; k < vr->nproblems; k++)
			json_array_append_new(probs, json_pack("{s:o, s:s, s:s, s:o}",
												   "object", jval_text(vr->problems[k].object),
												   "kind", vr->problems[k].kind,
												   "severity", vr->problems[k].warning ? "warning" : "error",
												   "message", jval_text(vr->problems[k].message)));
		json_array_append_new(repos, json_pack("{s:i, s:I, s:I, s:I, s:o}",
											   "repo", vr->ar->index,
											   "backups-checked", (json_int_t) vr->backups,
											   "wal-checked", (json_int_t) vr->wal,
											   "bytes", (json_int_t) atomic_load(&run->stored[i]),
											   "problems", probs));
	}
	for (size_t k = 0; k < run->ndiffs; k++)
	{
		const vdiff *d = &run->diffs[k];
		json_t	   *o = json_pack("{s:s, s:i, s:o}", "kind", d->kind, "repo", d->repo,
								  "object", jval_text(d->object));

		if (strcmp(d->kind, "backup-missing") != 0)
		{
			json_object_set_new(o, "last", d->last ? json_string(d->last) : json_string(d->object));
			json_object_set_new(o, "count", json_integer((json_int_t) d->count));
		}
		json_object_set_new(o, "message", jval_text(d->message));
		json_array_append_new(diffs, o);
	}
	doc = json_pack("{s:o, s:o, s:b}", "repositories", repos, "differences", diffs, "ok", ok);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(doc);
}

static void
print_text(vrun *run)
{
	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];

		for (size_t k = 0; k < vr->nproblems; k++)
			printf("repository %d: %s: %s%s\n", vr->ar->index, vr->problems[k].object,
				   vr->problems[k].warning ? "warning: " : "", vr->problems[k].message);
	}
	for (size_t k = 0; k < run->ndiffs; k++)
		printf("repository %d: %s: %s\n", run->diffs[k].repo, run->diffs[k].object,
			   run->diffs[k].message);
	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];
		bool		integrity = false;
		size_t		nfail = failures(vr, &integrity);

		printf("verify: %" PRIu64 " backup%s, %" PRIu64 " WAL files, %.1f MiB read in "
			   "repository %d: %zu problem%s", vr->backups, vr->backups == 1 ? "" : "s", vr->wal,
			   atomic_load(&run->stored[i]) / 1048576.0, vr->ar->index, nfail,
			   nfail == 1 ? "" : "s");
		if (vr->nproblems > nfail)
			printf(", %zu warning%s", vr->nproblems - nfail, vr->nproblems - nfail == 1 ? "" : "s");
		printf("\n");
	}
	if (run->nrepo > 1)
		printf("verify: repositories compared: %zu difference%s\n", run->ndiffs,
			   run->ndiffs == 1 ? "" : "s");
}

/* ------------------------------------------------------------------------------------ */
/* The command                                                                          */
/* ------------------------------------------------------------------------------------ */

static void
run_free(vrun *run)
{
	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];

		for (size_t k = 0; k < vr->nproblems; k++)
		{
			free(vr->problems[k].object);
			free(vr->problems[k].message);
		}
		free(vr->problems);
		if (vr->cat_ok)
			catalog_free(&vr->cat);
		if (vr->inv_ok)
			wal_inventory_free(&vr->inv);
		smap_free(&vr->listing);
	}
	for (size_t k = 0; k < run->ndiffs; k++)
	{
		free(run->diffs[k].object);
		free(run->diffs[k].last);
		free(run->diffs[k].message);
	}
	free(run->diffs);
	archive_ctx_close(&run->ctx);
	pthread_mutex_destroy(&run->lock);
}

/* Plain bytes verify expects to read (the progress bar's 100%). */
static uint64_t
expected_bytes(const vrun *run)
{
	uint64_t	total = 0;

	for (int i = 0; i < run->nrepo; i++)
	{
		const vrepo *vr = &run->repos[i];

		for (size_t k = 0; vr->cat_ok && k < vr->cat.nbackups; k++)
			if (!run->set || strcmp(vr->cat.backups[k].label, run->set) == 0)
				total += vr->cat.backups[k].size_copied;
		if (vr->inv_ok)
		{
			total += (uint64_t) vr->inv.nsegments * vr->inv.seg_size;
			for (size_t k = 0; k < vr->inv.nothers; k++)
				total += vr->inv.others[k].stored_size;
		}
	}
	return total;
}

int
cmd_verify(config_t *cfg)
{
	vrun	   *run = xcalloc(1, sizeof(*run));
	bool		json = false;
	bool		integrity = false;
	size_t		nfail = 0;
	char	   *first = NULL;
	int			rc = 0;

	if (cfg_output_json(cfg, &json) != 0)
	{
		free(run);
		return -1;
	}
	run->stanza = cfg_str(cfg, "stanza");
	run->set = cfg_str(cfg, "set");
	pthread_mutex_init(&run->lock, NULL);
	if (run->stanza == NULL)
	{
		free(run);
		return err_set(DRB_ERR_USAGE, "verify needs --stanza");
	}
	if (run->set && !backup_label_valid(run->set))
	{
		err_set(DRB_ERR_USAGE, "--set: '%s' is not a backup label", run->set);
		free(run);
		return -1;
	}
	if (archive_ctx_open(&run->ctx, cfg, true) != 0)
	{
		archive_ctx_close(&run->ctx);
		free(run);
		return -1;
	}
	run->nrepo = run->ctx.nrepo;
	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];

		vr->ar = &run->ctx.repos[i];
		if (vr->ar->repo == NULL)
		{
			char	   *obj = xasprintf("repository %d", vr->ar->index);

			problem_add(run, vr, obj, "repository", vr->ar->open_kind != DRB_ERR_INTEGRITY,
						vr->ar->open_error ? vr->ar->open_error : "not open");
			free(obj);
			continue;
		}
		load_repo(run, vr);
	}
	if (run->set)
	{
		bool		found = false;

		for (int i = 0; i < run->nrepo && !found; i++)
			found = run->repos[i].cat_ok && catalog_find(&run->repos[i].cat, run->set) != NULL;
		if (!found)
		{
			run_free(run);
			err_set(DRB_ERR_NOT_FOUND, "backup %s is in no repository's catalog", cfg_str(cfg, "set"));
			free(run);
			return -1;
		}
	}

	run->pool.process_max = (int) cfg_int(cfg, "process-max");
	progress_start(&run->pool.bar, expected_bytes(run));
	run->pool.stored = run->stored;
	run->pool.report = pool_report;
	run->pool.arg = run;
	for (int i = 0; i < run->nrepo; i++)
		if (run->repos[i].ar->repo != NULL)
			verify_repo(run, &run->repos[i]);
	verify_progress_end(&run->pool);
	if (run->nrepo > 1)
		compare_regions(run);

	for (int i = 0; i < run->nrepo; i++)
	{
		vrepo	   *vr = &run->repos[i];

		nfail += failures(vr, &integrity);
		for (size_t k = 0; k < vr->nproblems && first == NULL; k++)
			if (!vr->problems[k].warning)
				first = xasprintf("repository %d: %s (%s)", vr->ar->index,
								  vr->problems[k].object, vr->problems[k].kind);
	}
	if (run->ndiffs > 0)
	{
		integrity = true;
		if (first == NULL)
			first = xasprintf("repository %d: %s (%s)", run->diffs[0].repo, run->diffs[0].object,
							  run->diffs[0].kind);
	}
	if (json)
		print_json(run, nfail + run->ndiffs == 0);
	else
		print_text(run);
	fflush(stdout);
	if (nfail + run->ndiffs > 0)
		rc = err_set(integrity ? DRB_ERR_INTEGRITY : DRB_ERR_STORAGE,
					 "verify found %zu problem%s and %zu difference%s between repositories; "
					 "first: %s", nfail, nfail == 1 ? "" : "s", run->ndiffs,
					 run->ndiffs == 1 ? "" : "s", first);
	free(first);
	run_free(run);
	free(run);
	return rc;
}
