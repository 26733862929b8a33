/*
 * backup_job.c — what a backup copies, in parallel and bundled (see backup_job.h).
 *
 * The scan file: one record per walked entry, appended in manifest order. A record is a
 * fixed part (scan_rec) followed by its strings (path, path on this host, link target).
 * Workers update the fixed part of the records they copy in place with pwrite (each
 * record belongs to one job, so no two threads write the same bytes). Damaged-page lists
 * (rare) stay in memory, keyed by record offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backup_file.h"
#include "backup_job.h"
#include "error.h"
#include "fileutil.h"
#include "log.h"
#include "mem.h"
#include "page_checksum.h"
#include "pgdata.h"
#include "progress.h"

#define REF_MAX		256			/* labels a manifest may refer to */

enum rec_state
{
	REC_NONE = 0,				/* directory or link */
	REC_PENDING,				/* to copy */
	REC_COPIED,
	REC_REFERENCED,				/* bytes in the parent's objects */
	REC_EMPTY,					/* size 0: no object */
	REC_VANISHED,				/* gone before it was read: not in the manifest */
};

typedef struct scan_rec
{
	uint8_t		kind;			/* MANIFEST_DIR / _LINK / _FILE_ENTRY */
	uint8_t		state;
	uint8_t		relation;
	uint8_t		obj_kind;		/* 'b' bundle, 'f' file, 0 none */
	uint32_t	mode;
	uint32_t	segno;
	uint32_t	obj_id;
	uint32_t	ref;			/* index into refs[] */
	uint32_t	nbad;
	uint16_t	path_len;
	uint16_t	abs_len;
	uint16_t	link_len;
	uint16_t	pad;
	int64_t		mtime;
	uint64_t	size;
	uint64_t	offset;			/* in the object's plain stream */
	uint8_t		sha256[32];
} scan_rec;

#define STR_MAX 4096

typedef struct bad_list
{
	uint64_t	rec;			/* record offset */
	uint32_t   *bad;
	size_t		nbad;
} bad_list;

typedef struct job
{
	uint64_t	first;			/* record offset: the file, or the bundle's first record */
	uint64_t	end;			/* bundle: offset after its last record */
	uint64_t	size;
	uint32_t	id;
	char		kind;			/* 'f' or 'b' */
} job;

struct backup_job
{
	backup_job_settings s;
	int			fd;				/* the scan file */
	FILE	   *out;			/* appends while scanning */
	uint64_t	end;			/* bytes in the scan file */
	char	   *refs[REF_MAX];
	int			nrefs;
	job		   *jobs;
	size_t		njobs;
	size_t		jobs_cap;
	uint64_t	copy_bytes;		/* planned */
	/* running */
	pthread_mutex_t lock;
	atomic_size_t next_job;
	atomic_uint_fast64_t done_bytes;
	atomic_bool failed;
	drb_err		fail_kind;
	char	   *fail_msg;
	bad_list   *bads;
	size_t		nbads;
	size_t		bads_cap;
	uint64_t	repo_size[8];
	uint64_t	objects;
	/* the bundle being planned */
	uint64_t	bundle_first;
	uint64_t	bundle_size;
	bool		bundle_open;
};

/* --- scan file records --- */

static int
rec_read(backup_job *j, uint64_t off, scan_rec *r, char *path, char *abs, char *link,
		 uint64_t *next)
{
	uint8_t		buf[sizeof(scan_rec) + 3 * STR_MAX];
	ssize_t		n = pread(j->fd, buf, sizeof(buf), (off_t) off);
	size_t		need;

	if (n < (ssize_t) sizeof(scan_rec))
		return err_set(DRB_ERR_INTERNAL, "backup scan file: short read at %" PRIu64, off);
	memcpy(r, buf, sizeof(*r));
	need = sizeof(*r) + r->path_len + r->abs_len + r->link_len;
	if ((size_t) n < need)
		return err_set(DRB_ERR_INTERNAL, "backup scan file: short record at %" PRIu64, off);
	if (path)
	{
		memcpy(path, buf + sizeof(*r), r->path_len);
		path[r->path_len] = '\0';
	}
	if (abs)
	{
		memcpy(abs, buf + sizeof(*r) + r->path_len, r->abs_len);
		abs[r->abs_len] = '\0';
	}
	if (link)
	{
		memcpy(link, buf + sizeof(*r) + r->path_len + r->abs_len, r->link_len);
		link[r->link_len] = '\0';
	}
	if (next)
		*next = off + need;
	return 0;
}

static int
rec_update(backup_job *j, uint64_t off, const scan_rec *r)
{
	if (pwrite(j->fd, r, sizeof(*r), (off_t) off) != (ssize_t) sizeof(*r))
		return err_set(DRB_ERR_STORAGE, "unable to write the backup scan file: %s",
					   strerror(errno));
	return 0;
}

static void
bad_add(backup_job *j, uint64_t rec, const uint32_t *bad, size_t nbad)
{
	pthread_mutex_lock(&j->lock);
	if (j->nbads == j->bads_cap)
	{
		j->bads_cap = j->bads_cap ? j->bads_cap * 2 : 16;
		j->bads = xrealloc(j->bads, j->bads_cap * sizeof(*j->bads));
	}
	j->bads[j->nbads].rec = rec;
	j->bads[j->nbads].bad = xmalloc((nbad ? nbad : 1) * sizeof(uint32_t));
	memcpy(j->bads[j->nbads].bad, bad, nbad * sizeof(uint32_t));
	j->bads[j->nbads].nbad = nbad;
	j->nbads++;
	pthread_mutex_unlock(&j->lock);
}

static const bad_list *
bad_find(const backup_job *j, uint64_t rec)
{
	for (size_t i = 0; i < j->nbads; i++)
		if (j->bads[i].rec == rec)
			return &j->bads[i];
	return NULL;
}

/* --- scanning --- */

static void
job_add(backup_job *j, char kind, uint64_t first, uint64_t end, uint64_t size)
{
	if (j->njobs == j->jobs_cap)
	{
		j->jobs_cap = j->jobs_cap ? j->jobs_cap * 2 : 64;
		j->jobs = xrealloc(j->jobs, j->jobs_cap * sizeof(*j->jobs));
	}
	j->jobs[j->njobs] = (job) {first, end, size, (uint32_t) j->njobs + 1, kind};
	j->njobs++;
}

static void
bundle_close(backup_job *j)
{
	if (j->bundle_open)
		job_add(j, 'b', j->bundle_first, j->end, j->bundle_size);
	j->bundle_open = false;
	j->bundle_size = 0;
}

static int
ref_index(backup_job *j, const char *label)
{
	for (int i = 0; i < j->nrefs; i++)
		if (strcmp(j->refs[i], label) == 0)
			return i;
	if (j->nrefs == REF_MAX)
		return -1;
	j->refs[j->nrefs] = xstrdup(label);
	return j->nrefs++;
}

/* "data/b000017" -> 'b', 17 */
static bool
object_name_parse(const char *name, uint8_t *kind, uint32_t *id)
{
	char		k;
	unsigned int n;
	int			used = 0;

	if (name == NULL || sscanf(name, "data/%c%u%n", &k, &n, &used) != 2 || name[used] != '\0' ||
		(k != 'b' && k != 'f'))
		return false;
	*kind = (uint8_t) k;
	*id = n;
	return true;
}

/* SHA-256 of no bytes: the checksum of every empty file */
static const uint8_t sha256_empty[32] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

typedef struct scan_state
{
	backup_job *j;
	manifest_entry pe;			/* the parent's current entry */
	int			pstate;			/* 1 entry in pe, 0 parent at its end */
} scan_state;

/* Advance the parent to the first entry >= path; the matching entry or NULL. */
static const manifest_entry *
parent_match(scan_state *ss, const char *path)
{
	while (ss->pstate == 1)
	{
		int			c = manifest_path_cmp(ss->pe.path, path);

		if (c == 0)
			return &ss->pe;
		if (c > 0)
			return NULL;
		ss->pstate = manifest_reader_next(ss->j->s.parent, &ss->pe);
	}
	return NULL;
}

static int
scan_cb(const pgdata_entry *e, void *arg)
{
	scan_state *ss = arg;
	backup_job *j = ss->j;
	scan_rec	r = {0};
	uint64_t	off = j->end;
	const manifest_entry *pe = NULL;
	size_t		plen = strlen(e->path),
				alen = strlen(e->abs_path),
				llen = e->link_target ? strlen(e->link_target) : 0;

	if (plen >= STR_MAX || alen >= STR_MAX || llen >= STR_MAX)
		return err_set(DRB_ERR_STORAGE, "path too long in the data directory: '%s'", e->path);
	r.kind = e->kind == PGDATA_DIR ? MANIFEST_DIR : e->kind == PGDATA_LINK ? MANIFEST_LINK :
		MANIFEST_FILE_ENTRY;
	r.mode = e->mode;
	r.mtime = e->mtime;
	r.relation = e->relation;
	r.segno = e->segno;
	r.path_len = (uint16_t) plen;
	r.abs_len = (uint16_t) alen;
	r.link_len = (uint16_t) llen;

	if (ss->pstate < 0)
		return -1;
	if (j->s.parent)
	{
		pe = parent_match(ss, e->path);
		if (ss->pstate < 0)
			return err_wrap("unable to read the parent backup's manifest");
	}

	if (r.kind == MANIFEST_FILE_ENTRY)
	{
		r.size = e->size;
		if (e->size == 0)
		{
			r.state = REC_EMPTY;
			memcpy(r.sha256, sha256_empty, 32);
		}
		else if (pe && pe->type == MANIFEST_FILE_ENTRY && pe->size == e->size &&
				 pe->mtime == e->mtime && pe->mtime < j->s.parent_header->start_time &&
				 object_name_parse(pe->object, &r.obj_kind, &r.obj_id) &&
				 ref_index(j, pe->ref) >= 0)
		{
			r.state = REC_REFERENCED;
			r.ref = (uint32_t) ref_index(j, pe->ref);
			r.offset = pe->offset;
			memcpy(r.sha256, pe->sha256, 32);
			r.nbad = (uint32_t) pe->nbad;
			if (pe->nbad)
				bad_add(j, off, pe->bad, pe->nbad);
		}
		else
		{
			r.state = REC_PENDING;
			j->copy_bytes += e->size;
			if (e->size >= j->s.bundle_limit)
				job_add(j, 'f', off, 0, e->size);
			else
			{
				if (!j->bundle_open)
				{
					j->bundle_open = true;
					j->bundle_first = off;
				}
				j->bundle_size += e->size;
			}
		}
	}

	if (fwrite(&r, sizeof(r), 1, j->out) != 1 ||
		fwrite(e->path, 1, plen, j->out) != plen ||
		fwrite(e->abs_path, 1, alen, j->out) != alen ||
		(llen && fwrite(e->link_target, 1, llen, j->out) != llen))
		return err_set(DRB_ERR_STORAGE, "unable to write the backup scan file: %s",
					   strerror(errno));
	j->end += sizeof(r) + plen + alen + llen;
	if (j->bundle_open && j->bundle_size >= j->s.bundle_size)
		bundle_close(j);
	return 0;
}

static int
job_cmp(const void *a, const void *b)
{
	const job  *x = a,
			   *y = b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->id < y->id ? -1 : 1;
}

backup_job *
backup_job_scan(const backup_job_settings *s)
{
	backup_job *j = xcalloc(1, sizeof(*j));
	scan_state	ss = {0};
	int			rc;

	j->s = *s;
	pthread_mutex_init(&j->lock, NULL);
	j->fd = -1;
	if (s->nrepo < 1 || s->nrepo > 8)
	{
		err_set(DRB_ERR_INTERNAL, "backup to %d repositories", s->nrepo);
		backup_job_free(j);
		return NULL;
	}
	ref_index(j, s->label);		/* refs[0]: this backup */
	j->fd = tmpfile_open("scan");
	if (j->fd < 0 || (j->out = fdopen(dup(j->fd), "w")) == NULL)
	{
		if (j->fd >= 0)
			err_set(DRB_ERR_STORAGE, "unable to open the backup scan file: %s", strerror(errno));
		backup_job_free(j);
		return NULL;
	}
	setvbuf(j->out, NULL, _IOFBF, 256 * 1024);

	ss.j = j;
	ss.pstate = 0;
	if (s->parent)
	{
		ss.pstate = manifest_reader_next(s->parent, &ss.pe);
		if (ss.pstate < 0)
		{
			err_wrap("unable to read the parent backup's manifest");
			backup_job_free(j);
			return NULL;
		}
	}
	rc = pgdata_walk(s->pgdata, s->pg_major, scan_cb, &ss);
	/* read the parent to its end: its end line and count get verified */
	while (rc == 0 && ss.pstate == 1)
		ss.pstate = manifest_reader_next(s->parent, &ss.pe);
	if (rc == 0 && ss.pstate < 0)
		rc = err_wrap("unable to read the parent backup's manifest");
	bundle_close(j);
	if (rc == 0 && fflush(j->out) != 0)
		rc = err_set(DRB_ERR_STORAGE, "unable to write the backup scan file: %s", strerror(errno));
	fclose(j->out);
	j->out = NULL;
	if (rc != 0)
	{
		err_wrap("unable to scan the data directory '%s'", s->pgdata);
		backup_job_free(j);
		return NULL;
	}
	if (j->njobs > 0)
		qsort(j->jobs, j->njobs, sizeof(*j->jobs), job_cmp);
	log_info("backup %s: %zu objects to write, %" PRIu64 " bytes to copy", s->label, j->njobs,
			 j->copy_bytes);
	return j;
}

/* --- copying --- */

static void
fail(backup_job *j)
{
	pthread_mutex_lock(&j->lock);
	if (!j->failed)
	{
		j->fail_kind = err_kind();
		j->fail_msg = xstrdup(err_msg());
		atomic_store(&j->failed, true);
	}
	pthread_mutex_unlock(&j->lock);
}

/*
 * One object in every repository: returns the head (a tee when several) or NULL; chains[]
 * receives each repository's chain head. A file of its own ('f') is hashed once, by
 * backup_file_copy (the chains get its checksum with repo_put_set_plain), and may be
 * compressed by several threads; a bundle's chains hash the whole bundle themselves.
 */
static filter_t *
object_open(backup_job *j, const job *jb, repo_object_result *res, filter_t **chains)
{
	char		name[32];
	char	   *path;
	bool		single = jb->kind == 'f';

	snprintf(name, sizeof(name), "data/%c%06" PRIu32, jb->kind, jb->id);
	path = backup_object_path(j->s.stanza, j->s.label, name);
	for (int i = 0; i < j->s.nrepo; i++)
	{
		chains[i] = repo_put_open_sized(j->s.repos[i], path, &res[i], single ? jb->size : 0,
										single);
		if (chains[i] == NULL)
		{
			for (int k = 0; k < i; k++)
				filter_chain_free(chains[k]);
			free(path);
			return NULL;
		}
	}
	free(path);
	return j->s.nrepo == 1 ? chains[0] : filter_tee_new(chains, j->s.nrepo);
}

/* Copy the file of record off into sink; fills r (state, size, sha, offset). */
static int
copy_one(backup_job *j, uint64_t off, scan_rec *r, const char *path, const char *abs,
		 filter_t *sink, uint64_t offset)
{
	backup_file_result fr = {0};
	bool		check = j->s.check_pages && r->relation;

	if (backup_file_copy(abs, check, r->segno * PG_RELSEG_BLOCKS, j->s.start_lsn, sink, &fr) != 0)
	{
		if (err_kind() == DRB_ERR_NOT_FOUND)
		{
			log_detail("backup %s: '%s' vanished, left out (dropped while the backup ran)",
					   j->s.label, path);
			r->state = REC_VANISHED;
			free(fr.bad);
			err_clear();
			return 0;
		}
		free(fr.bad);
		return err_wrap("unable to back up '%s'", path);
	}
	r->state = fr.size == 0 ? REC_EMPTY : REC_COPIED;
	r->size = fr.size;
	r->offset = offset;
	memcpy(r->sha256, fr.sha256, 32);
	r->nbad = (uint32_t) fr.nbad;
	if (fr.nbad)
	{
		buf_t		list;

		buf_init(&list);
		for (size_t i = 0; i < fr.nbad && i < 20; i++)
			buf_printf(&list, "%s%" PRIu32, i ? ", " : "", fr.bad[i]);
		log_warn("invalid page checksums in '%s': block%s %s%s", path, fr.nbad > 1 ? "s" : "",
				 buf_cstr(&list), fr.nbad > 20 ? ", ..." : "");
		buf_free(&list);
		bad_add(j, off, fr.bad, fr.nbad);
	}
	free(fr.bad);
	atomic_fetch_add(&j->done_bytes, fr.size);
	return 0;
}

static int
run_job(backup_job *j, const job *jb)
{
	repo_object_result res[8] = {{0}};
	filter_t   *chains[8] = {NULL};
	filter_t   *head = object_open(j, jb, res, chains);
	scan_rec	r;
	char	   *path = xmalloc(STR_MAX);
	char	   *abs = xmalloc(STR_MAX);
	uint64_t	off = jb->first,
				next;
	uint64_t	pushed = 0;
	uint64_t   *offs = NULL;
	scan_rec   *recs = NULL;
	size_t		n = 0,
				cap = 0;
	int			rc = -1;

	if (head == NULL)
		goto out;
	/* the records this object holds; committed to the scan file only once it is stored */
	do
	{
		if (rec_read(j, off, &r, path, abs, NULL, &next) != 0)
			goto out;
		if (r.kind == MANIFEST_FILE_ENTRY && r.state == REC_PENDING &&
			(jb->kind == 'f' || r.size < j->s.bundle_limit))
		{
			if (copy_one(j, off, &r, path, abs, head, pushed) != 0)
				goto out;
			if (r.state == REC_COPIED)
			{
				pushed += r.size;
				r.obj_kind = (uint8_t) jb->kind;
				r.obj_id = jb->id;
				r.ref = 0;
			}
			if (n == cap)
			{
				cap = cap ? cap * 2 : 64;
				offs = xrealloc(offs, cap * sizeof(*offs));
				recs = xrealloc(recs, cap * sizeof(*recs));
			}
			offs[n] = off;
			recs[n++] = r;
		}
		off = next;
	} while (jb->kind == 'b' && off < jb->end && !atomic_load(&j->failed));

	if (atomic_load(&j->failed))
		goto out;
	/* a file of its own: its checksum, computed while it was read, is the object's */
	if (jb->kind == 'f' && n == 1 && recs[0].state == REC_COPIED)
		for (int i = 0; i < j->s.nrepo; i++)
			if (repo_put_set_plain(chains[i], recs[0].sha256, recs[0].size) != 0)
				goto out;
	/* nothing pushed (every file vanished or became empty): no object at all */
	if (pushed > 0 && filter_finish(head) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (rec_update(j, offs[i], &recs[i]) != 0)
			goto out;
	pthread_mutex_lock(&j->lock);
	for (int i = 0; i < j->s.nrepo; i++)
		j->repo_size[i] += res[i].stored_size;
	if (pushed > 0)
		j->objects++;
	pthread_mutex_unlock(&j->lock);
	rc = 0;
out:
	filter_chain_free(head);
	free(offs);
	free(recs);
	free(path);
	free(abs);
	return rc;
}

static void *
worker_main(void *arg)
{
	backup_job *j = arg;
	size_t		i;

	while (!atomic_load(&j->failed) && (i = atomic_fetch_add(&j->next_job, 1)) < j->njobs)
		if (run_job(j, &j->jobs[i]) != 0)
			fail(j);
	return NULL;
}

int
backup_job_run(backup_job *j)
{
	int			nthreads = j->s.process_max < 1 ? 1 : j->s.process_max;
	pthread_t  *t = xcalloc((size_t) nthreads, sizeof(*t));
	bool	   *started = xcalloc((size_t) nthreads, sizeof(*started));
	progress	bar;
	size_t		nstarted = 0;

	progress_start(&bar, j->copy_bytes);
	if ((size_t) nthreads > j->njobs)
		nthreads = j->njobs ? (int) j->njobs : 1;
	for (int i = 0; i < nthreads; i++)
		if ((started[i] = pthread_create(&t[i], NULL, worker_main, j) == 0))
			nstarted++;
	if (nstarted == 0)
		worker_main(j);
	/* each thread takes one index past the last job on its way out */
	if (bar.on)
	{
		while (atomic_load(&j->next_job) < j->njobs + nstarted && !atomic_load(&j->failed))
		{
			progress_update(&bar, atomic_load(&j->done_bytes));
			for (int k = 0; k < 10 && atomic_load(&j->next_job) < j->njobs + nstarted; k++)
				usleep(100 * 1000);
		}
	}
	for (int i = 0; i < nthreads; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	progress_finish(&bar, atomic_load(&j->done_bytes));
	free(t);
	free(started);
	if (j->failed)
		return err_set(j->fail_kind, "%s", j->fail_msg);
	return 0;
}

uint64_t
backup_job_repo_size(const backup_job *j, int i)
{
	return i >= 0 && i < 8 ? j->repo_size[i] : 0;
}

int
backup_job_write_manifest(backup_job *j, manifest_header *h, uint8_t sha256[32])
{
	manifest_writer *w;
	char	   *path = xmalloc(STR_MAX);
	char	   *link = xmalloc(STR_MAX);
	char		object[32];
	uint64_t	off = 0,
				next;
	scan_rec	r;
	int			rc = -1;

	/* totals first: the header line leads the manifest */
	h->file_count = h->size = h->size_copied = h->damaged_pages = 0;
	for (off = 0; off < j->end; off = next)
	{
		if (rec_read(j, off, &r, NULL, NULL, NULL, &next) != 0)
			goto out;
		if (r.kind != MANIFEST_FILE_ENTRY || r.state == REC_VANISHED)
			continue;
		if (r.state == REC_PENDING)
		{
			err_set(DRB_ERR_INTERNAL, "backup %s: a file was not copied", j->s.label);
			goto out;
		}
		h->file_count++;
		h->size += r.size;
		if (r.state == REC_COPIED)
			h->size_copied += r.size;
		h->damaged_pages += r.nbad;
	}
	h->repo_size = j->repo_size[0];
	h->object_count = j->objects;

	w = manifest_writer_open(j->s.repos, j->s.nrepo, j->s.stanza, h);
	if (w == NULL)
		goto out;
	for (off = 0; off < j->end; off = next)
	{
		manifest_entry e = {0};
		const bad_list *bl = NULL;

		if (rec_read(j, off, &r, path, NULL, link, &next) != 0)
		{
			manifest_writer_abort(w);
			goto out;
		}
		if (r.state == REC_VANISHED)
			continue;
		e.type = (manifest_entry_type) r.kind;
		e.path = path;
		e.mode = r.mode;
		e.mtime = r.mtime;
		if (r.kind == MANIFEST_LINK)
			e.link_target = link;
		if (r.kind == MANIFEST_FILE_ENTRY)
		{
			e.size = r.size;
			memcpy(e.sha256, r.sha256, 32);
			if (r.state == REC_COPIED || r.state == REC_REFERENCED)
			{
				snprintf(object, sizeof(object), "data/%c%06" PRIu32, r.obj_kind, r.obj_id);
				e.object = object;
				e.ref = j->refs[r.ref];
				e.offset = r.offset;
			}
			if (r.nbad && (bl = bad_find(j, off)) != NULL)
			{
				e.bad = bl->bad;
				e.nbad = bl->nbad;
			}
		}
		if (manifest_writer_add(w, &e) != 0)
		{
			manifest_writer_abort(w);
			goto out;
		}
	}
	rc = manifest_writer_close(w, sha256);
out:
	free(path);
	free(link);
	return rc;
}

void
backup_job_free(backup_job *j)
{
	if (j == NULL)
		return;
	if (j->out)
		fclose(j->out);
	if (j->fd >= 0)
		close(j->fd);
	for (int i = 0; i < j->nrefs; i++)
		free(j->refs[i]);
	for (size_t i = 0; i < j->nbads; i++)
		free(j->bads[i].bad);
	free(j->bads);
	free(j->jobs);
	free(j->fail_msg);
	pthread_mutex_destroy(&j->lock);
	free(j);
}
