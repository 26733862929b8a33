/*
 * wal_inventory.c — what WAL one repository holds for a stanza (see wal_inventory.h).
 *
 * One LIST of the stanza's archive directory; every object name is split into its
 * directory, WAL name and checksum ("<dir>/<wal-name>-<64 hex>", archive.h). Segments go
 * into one array sorted by name (for 24 upper-case hex digits, name order is (timeline,
 * log, seg) order), everything else into a second one. Ranges are then one pass over the
 * sorted segments. Nothing is read but names, sizes and modification times.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "wal_inventory.h"

#define SHA256_HEX_LEN	64

typedef struct load_state
{
	const archive_repo *r;
	size_t		prefix_len;
	wal_inventory *inv;
	size_t		seg_cap;
	size_t		other_cap;
} load_state;

uint64_t
wal_segment_position(const wal_name *w, uint32_t seg_size)
{
	return (uint64_t) w->log * (UINT64_C(0x100000000) / seg_size) + w->seg;
}

/*
 * Split rel ("<dir>/<wal-name>-<sha256 hex>") into a parsed WAL name and its checksum.
 * The directory must be the one archive_object_prefix gives the name. False when rel is
 * not an archive object name.
 */
static bool
parse_object_name(const char *rel, wal_name *w, uint8_t sha256[32])
{
	const char *slash = strchr(rel, '/');
	const char *dash = strrchr(rel, '-');
	char		name[64];
	size_t		name_len;

	if (slash == NULL || dash == NULL || dash < slash || strchr(slash + 1, '/') != NULL)
		return false;
	if (strlen(dash + 1) != SHA256_HEX_LEN ||
		strspn(dash + 1, "0123456789abcdef") != SHA256_HEX_LEN ||
		hex_decode(dash + 1, sha256, 32) != 0)
		return false;
	name_len = (size_t) (dash - slash - 1);
	if (name_len == 0 || name_len >= sizeof(name))
		return false;
	memcpy(name, slash + 1, name_len);
	name[name_len] = '\0';
	if (wal_name_parse(name, w) != 0)
	{
		err_clear();
		return false;
	}
	if (w->kind == WAL_HISTORY)
		return (size_t) (slash - rel) == 7 && strncmp(rel, "history", 7) == 0;
	return slash - rel == 16 && strncmp(rel, name, 16) == 0;
}

static int
load_cb(const storage_info *info, void *arg)
{
	load_state *st = arg;
	wal_inventory *inv = st->inv;
	wal_object	o;

	memset(&o, 0, sizeof(o));
	if (strlen(info->path) <= st->prefix_len ||
		!parse_object_name(info->path + st->prefix_len, &o.w, o.sha256))
	{
		log_warn("repository %d: '%s' is not a WAL archive object name: ignored",
				 st->r->index, info->path);
		return 0;
	}
	o.path = xstrdup(info->path);
	o.stored_size = info->size;
	o.mtime = info->mtime;
	if (o.w.kind == WAL_SEGMENT)
	{
		if (inv->nsegments == st->seg_cap)
		{
			st->seg_cap = st->seg_cap ? 2 * st->seg_cap : 1024;
			inv->segments = xrealloc(inv->segments, st->seg_cap * sizeof(*inv->segments));
		}
		inv->segments[inv->nsegments++] = o;
	}
	else
	{
		if (inv->nothers == st->other_cap)
		{
			st->other_cap = st->other_cap ? 2 * st->other_cap : 64;
			inv->others = xrealloc(inv->others, st->other_cap * sizeof(*inv->others));
		}
		inv->others[inv->nothers++] = o;
	}
	return 0;
}

static int
object_name_cmp(const void *a, const void *b)
{
	return strcmp(((const wal_object *) a)->w.name, ((const wal_object *) b)->w.name);
}

/* Sorted v must name each WAL file once; DRB_ERR_INTEGRITY naming both objects if not. */
static int
check_unique(const archive_repo *r, const wal_object *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1].w.name, v[i].w.name) == 0)
			return err_set(DRB_ERR_INTEGRITY, "repository %d holds WAL file %s twice, with "
						   "different checksums: '%s' and '%s'", r->index, v[i].w.name,
						   v[i - 1].path, v[i].path);
	return 0;
}

/* Group the sorted segments into runs of consecutive positions on one timeline. */
static void
build_ranges(wal_inventory *inv)
{
	size_t		cap = 0;
	wal_range  *cur = NULL;
	uint64_t	prev_pos = 0;

	for (size_t i = 0; i < inv->nsegments; i++)
	{
		const wal_object *o = &inv->segments[i];
		uint64_t	pos = wal_segment_position(&o->w, inv->seg_size);

		if (cur == NULL || cur->tli != o->w.tli || pos != prev_pos + 1)
		{
			if (inv->nranges == cap)
			{
				cap = cap ? 2 * cap : 16;
				inv->ranges = xrealloc(inv->ranges, cap * sizeof(*inv->ranges));
			}
			cur = &inv->ranges[inv->nranges++];
			memset(cur, 0, sizeof(*cur));
			cur->tli = o->w.tli;
			memcpy(cur->first, o->w.name, 24);
		}
		memcpy(cur->last, o->w.name, 24);	/* segment names are 24 characters */
		cur->last[24] = '\0';
		cur->count++;
		cur->last_mtime = o->mtime;
		prev_pos = pos;
	}
}

int
wal_inventory_load(const archive_repo *r, uint32_t seg_size, wal_inventory *out)
{
	load_state	st;
	char	   *prefix;

	memset(out, 0, sizeof(*out));
	if (r->repo == NULL)
		return err_set(r->open_kind, "%s", r->open_error ? r->open_error : "repository not open");
	if (seg_size == 0 || (seg_size & (seg_size - 1)) != 0)
		return err_set(DRB_ERR_INTERNAL, "WAL segment size %" PRIu32 " is not a power of two",
					   seg_size);
	out->archive_id = xasprintf("%d-%" PRIu64, r->stanza.pg_version, r->stanza.system_id);
	out->seg_size = seg_size;
	prefix = xasprintf("stanza/%s/archive/%s/", r->stanza.name, out->archive_id);

	memset(&st, 0, sizeof(st));
	st.r = r;
	st.prefix_len = strlen(prefix);
	st.inv = out;
	if (storage_list(repo_storage(r->repo), prefix, load_cb, &st) != 0)
	{
		err_wrap("repository %d: unable to list the WAL archive '%s'", r->index, prefix);
		free(prefix);
		wal_inventory_free(out);
		return -1;
	}
	free(prefix);

	if (out->nsegments > 0)
		qsort(out->segments, out->nsegments, sizeof(*out->segments), object_name_cmp);
	if (out->nothers > 0)
		qsort(out->others, out->nothers, sizeof(*out->others), object_name_cmp);
	if (check_unique(r, out->segments, out->nsegments) != 0 ||
		check_unique(r, out->others, out->nothers) != 0)
	{
		wal_inventory_free(out);
		return -1;
	}
	build_ranges(out);
	return 0;
}

void
wal_inventory_free(wal_inventory *inv)
{
	for (size_t i = 0; i < inv->nsegments; i++)
		free(inv->segments[i].path);
	for (size_t i = 0; i < inv->nothers; i++)
		free(inv->others[i].path);
	free(inv->segments);
	free(inv->others);
	free(inv->ranges);
	free(inv->archive_id);
	memset(inv, 0, sizeof(*inv));
}

/* Index of the first segment whose name does not sort before name. */
static size_t
segment_lower_bound(const wal_inventory *inv, const char *name)
{
	size_t		lo = 0;
	size_t		hi = inv->nsegments;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (strcmp(inv->segments[mid].w.name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool
wal_inventory_has(const wal_inventory *inv, const char *segment)
{
	size_t		i = segment_lower_bound(inv, segment);

	return i < inv->nsegments && strcmp(inv->segments[i].w.name, segment) == 0;
}

bool
wal_inventory_has_range(const wal_inventory *inv, const char *first, const char *last,
						char **missing)
{
	wal_name	want;
	wal_name	stop;
	wal_name	next;
	size_t		i;

	if (missing)
		*missing = NULL;
	if (wal_name_parse(first, &want) != 0 || wal_name_parse(last, &stop) != 0 ||
		want.kind != WAL_SEGMENT || stop.kind != WAL_SEGMENT || want.tli != stop.tli ||
		strcmp(first, last) > 0)
	{
		/* not a range on one timeline: nothing can prove it present */
		err_clear();
		if (missing)
			*missing = xstrdup(first);
		return false;
	}

	/* walk the sorted segments alongside the expected names */
	for (i = segment_lower_bound(inv, first);; i++)
	{
		if (i >= inv->nsegments || strcmp(inv->segments[i].w.name, want.name) != 0)
		{
			if (missing)
				*missing = xstrdup(want.name);
			return false;
		}
		if (strcmp(want.name, last) == 0)
			return true;
		wal_segment_next(&want, inv->seg_size, &next);
		want = next;
	}
}
