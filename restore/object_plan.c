/*
 * object_plan.c — a manifest's files grouped by the object holding them (object_plan.h).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "filter.h"
#include "mem.h"
#include "object_plan.h"

/* FNV-1a of "ref/object". */
static uint64_t
key_hash(const char *ref, const char *object)
{
	uint64_t	h = UINT64_C(1469598103934665603);

	for (const char *p = ref; *p; p++)
		h = (h ^ (uint8_t) *p) * UINT64_C(1099511628211);
	h = (h ^ '/') * UINT64_C(1099511628211);
	for (const char *p = object; *p; p++)
		h = (h ^ (uint8_t) *p) * UINT64_C(1099511628211);
	return h;
}

/* Double the table (linear probing, at most half full) and put every group back. */
static void
slots_grow(object_plan *p)
{
	size_t		n = p->nslots ? p->nslots * 2 : 256;

	free(p->slots);
	p->slots = xcalloc(n, sizeof(size_t));
	p->nslots = n;
	for (size_t g = 0; g < p->ngroups; g++)
	{
		size_t		i = key_hash(p->groups[g].ref, p->groups[g].object) & (n - 1);

		while (p->slots[i])
			i = (i + 1) & (n - 1);
		p->slots[i] = g + 1;
	}
}

size_t
object_plan_group(object_plan *p, const char *ref, const char *object)
{
	size_t		i;

	if (p->ngroups * 2 >= p->nslots)
		slots_grow(p);
	i = key_hash(ref, object) & (p->nslots - 1);
	while (p->slots[i])
	{
		const object_group *g = &p->groups[p->slots[i] - 1];

		if (strcmp(g->ref, ref) == 0 && strcmp(g->object, object) == 0)
			return p->slots[i] - 1;
		i = (i + 1) & (p->nslots - 1);
	}
	if (p->ngroups == p->cap)
	{
		p->cap = p->cap ? p->cap * 2 : 64;
		p->groups = xrealloc(p->groups, p->cap * sizeof(object_group));
	}
	p->groups[p->ngroups] = (object_group) {xstrdup(ref), xstrdup(object), NULL, 0, 0, 0};
	p->slots[i] = ++p->ngroups;
	return p->ngroups - 1;
}

void
object_plan_add(object_plan *p, size_t g, uint64_t pos, uint64_t size)
{
	object_group *grp = &p->groups[g];

	if (grp->n == grp->cap)
	{
		grp->cap = grp->cap ? grp->cap * 2 : 8;
		grp->pos = xrealloc(grp->pos, grp->cap * sizeof(uint64_t));
	}
	grp->pos[grp->n++] = pos;
	grp->bytes += size;
}

typedef struct span
{
	uint64_t	offset;
	uint64_t	size;
	uint64_t	pos;
} span;

static int
span_cmp(const void *a, const void *b)
{
	const span *x = a,
			   *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return 0;
}

int
object_plan_sort(object_group *g, object_load_fn load, void *arg)
{
	span	   *sp = xmalloc((g->n ? g->n : 1) * sizeof(span));
	int			rc = 0;

	for (size_t i = 0; i < g->n && rc == 0; i++)
	{
		object_file f = {0};
		int			got = load(arg, g->pos[i], &f);

		if (got == 0)
			rc = err_set(DRB_ERR_INTERNAL, "object '%s' of backup %s: a file skipped while "
						 "planning", g->object, g->ref);
		else if (got < 0)
			rc = -1;
		sp[i] = (span) {f.offset, f.size, g->pos[i]};
	}
	if (rc == 0)
		qsort(sp, g->n, sizeof(span), span_cmp);
	for (size_t i = 0; i < g->n && rc == 0; i++)
	{
		if (i > 0 && sp[i].offset < sp[i - 1].offset + sp[i - 1].size)
		{
			rc = err_set(DRB_ERR_INTEGRITY, "two files overlap in object '%s' of backup %s "
						 "(offset %" PRIu64 ")", g->object, g->ref, sp[i].offset);
			break;
		}
		g->pos[i] = sp[i].pos;
	}
	free(sp);
	return rc;
}

void
object_plan_free(object_plan *p)
{
	for (size_t i = 0; i < p->ngroups; i++)
	{
		free(p->groups[i].ref);
		free(p->groups[i].object);
		free(p->groups[i].pos);
	}
	free(p->groups);
	free(p->slots);
	memset(p, 0, sizeof(*p));
}

/* ---------------------------------------------------------------------------------------
 * The splitter
 * ------------------------------------------------------------------------------------- */

typedef struct splitter
{
	filter_t	base;
	const object_group *g;
	const char *object;			/* object path, for messages */
	const object_split_ops *ops;
	void	   *arg;
	size_t		idx;			/* current file in g->pos */
	bool		loaded;			/* f describes g->pos[idx] */
	bool		open;			/* ops->open was called for it */
	object_file f;
	uint64_t	pos;			/* in the object's plain stream */
	EVP_MD_CTX *md;
	bool		trusted;		/* object_splitter_trust_object: no hashing here */
	bool		close_pending;	/* trusted: the file's close waits for finish */
} splitter;

/* Load the next file that is needed, or idx = n. */
static int
split_load(splitter *sp)
{
	for (; sp->idx < sp->g->n; sp->idx++)
	{
		int			rc = sp->ops->load(sp->arg, sp->g->pos[sp->idx], &sp->f);

		if (rc < 0)
			return -1;
		if (rc > 0)
			break;
	}
	if (sp->idx >= sp->g->n)
		return 0;
	if (sp->f.offset < sp->pos)
		return err_set(DRB_ERR_INTEGRITY, "'%s' starts at offset %" PRIu64 " of object '%s', "
					   "before the end of the previous file", sp->f.path, sp->f.offset,
					   sp->object);
	sp->loaded = true;
	return 0;
}

static int
split_open(splitter *sp)
{
	if (sp->ops->open(sp->arg, &sp->f) != 0)
		return -1;
	sp->open = true;
	if (sp->trusted)
		return 0;
	if (EVP_DigestInit_ex(sp->md, EVP_sha256(), NULL) != 1)
		return err_set(DRB_ERR_INTERNAL, "SHA-256 initialisation failed");
	return 0;
}

/* The file's last byte is through: its checksum must be the manifest's. */
static int
split_close(splitter *sp)
{
	uint8_t		sha[32];
	unsigned int len = 0;

	if (sp->trusted)
	{
		/* the read chain verifies the object (= this file) before it finishes us */
		sp->close_pending = true;
		sp->loaded = false;
		sp->idx++;
		return 0;
	}
	EVP_DigestFinal_ex(sp->md, sha, &len);
	if (memcmp(sha, sp->f.sha256, 32) != 0)
	{
		char		want[65],
					got[65];

		hex_encode(sp->f.sha256, 32, want);
		hex_encode(sha, 32, got);
		return err_set(DRB_ERR_INTEGRITY, "'%s' (%" PRIu64 " bytes at offset %" PRIu64 " of "
					   "object '%s') has SHA-256 %s, the manifest says %s", sp->f.path,
					   sp->f.size, sp->f.offset, sp->object, got, want);
	}
	sp->open = false;
	if (sp->ops->close(sp->arg, &sp->f) != 0)
		return -1;
	sp->loaded = false;
	sp->idx++;
	return 0;
}

static int
split_process(filter_t *flt, const uint8_t *in, size_t len)
{
	splitter   *sp = (splitter *) flt;

	while (len > 0)
	{
		uint64_t	start,
					end;
		size_t		n;

		if (!sp->loaded && split_load(sp) != 0)
			return -1;
		if (!sp->loaded)
		{
			sp->pos += len;		/* the rest of the object is not needed */
			return 0;
		}
		start = sp->f.offset;
		end = start + sp->f.size;
		if (sp->pos < start)
		{
			n = start - sp->pos < len ? (size_t) (start - sp->pos) : len;
			sp->pos += n;
			in += n;
			len -= n;
			continue;
		}
		if (!sp->open && split_open(sp) != 0)
			return -1;
		n = end - sp->pos < len ? (size_t) (end - sp->pos) : len;
		if (!sp->trusted)
			EVP_DigestUpdate(sp->md, in, n);
		if (sp->ops->write(sp->arg, &sp->f, in, n) != 0)
			return -1;
		sp->pos += n;
		in += n;
		len -= n;
		if (sp->pos == end && split_close(sp) != 0)
			return -1;
	}
	return 0;
}

static int
split_finish(filter_t *flt)
{
	splitter   *sp = (splitter *) flt;

	if (!sp->loaded && split_load(sp) != 0)
		return -1;
	if (sp->loaded)
		return err_set(DRB_ERR_INTEGRITY, "object '%s' ends at byte %" PRIu64 ", before the end "
					   "of '%s' (%" PRIu64 " bytes at offset %" PRIu64 ")", sp->object, sp->pos,
					   sp->f.path, sp->f.size, sp->f.offset);
	if (sp->close_pending)
	{
		sp->close_pending = false;
		sp->open = false;
		return sp->ops->close(sp->arg, &sp->f);
	}
	return 0;
}

void
object_splitter_trust_object(filter_t *flt)
{
	((splitter *) flt)->trusted = true;
}

static void
split_destroy(filter_t *flt)
{
	splitter   *sp = (splitter *) flt;

	EVP_MD_CTX_free(sp->md);
	free(sp);
}

static const filter_ops split_ops = {"object-splitter", split_process, split_finish,
split_destroy};

filter_t *
object_splitter_new(const object_group *g, const char *object, const object_split_ops *ops,
					void *arg)
{
	splitter   *sp = xcalloc(1, sizeof(*sp));

	sp->base.ops = &split_ops;
	sp->g = g;
	sp->object = object;
	sp->ops = ops;
	sp->arg = arg;
	sp->md = EVP_MD_CTX_new();
	if (sp->md == NULL)
	{
		free(sp);
		err_set(DRB_ERR_INTERNAL, "out of memory for SHA-256");
		return NULL;
	}
	return &sp->base;
}
