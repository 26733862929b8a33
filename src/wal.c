/*
 * wal.c — PostgreSQL WAL file names and segment headers (see wal.h).
 *
 * The XLOG_PAGE_MAGIC values come from src/include/access/xlog_internal.h of each release
 * branch (REL_12_STABLE .. REL_17_STABLE).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "wal.h"

#define XLP_LONG_HEADER		0x0002
#define WAL_SEG_SIZE_MIN	(1u << 20)
#define WAL_SEG_SIZE_MAX	(1u << 30)

static const struct
{
	int			major;
	uint16_t	magic;
}			page_magic[] = {
	{12, 0xD101},
	{13, 0xD106},
	{14, 0xD10D},
	{15, 0xD110},
	{16, 0xD113},
	{17, 0xD116},
};

#define PAGE_MAGIC_COUNT (sizeof(page_magic) / sizeof(page_magic[0]))

/* n upper-case hex digits (PostgreSQL writes names with %08X) into *out. */
static bool
parse_hex8(const char *s, uint32_t *out)
{
	uint32_t	v = 0;

	for (int i = 0; i < 8; i++)
	{
		char		c = s[i];

		if (c >= '0' && c <= '9')
			v = (v << 4) | (uint32_t) (c - '0');
		else if (c >= 'A' && c <= 'F')
			v = (v << 4) | (uint32_t) (c - 'A' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

int
wal_name_parse(const char *name, wal_name *out)
{
	size_t		len = name ? strlen(name) : 0;
	uint32_t	offset;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(out->name) || strchr(name, '/') != NULL)
		return err_set(DRB_ERR_USAGE, "'%s' is not a WAL file name (expected a segment, .partial, "
					   ".backup or .history file name, without a directory)", name ? name : "");

	if (len == 16 && strcmp(name + 8, ".history") == 0 && parse_hex8(name, &out->tli))
		out->kind = WAL_HISTORY;
	else if (len >= 24 && parse_hex8(name, &out->tli) && parse_hex8(name + 8, &out->log) &&
			 parse_hex8(name + 16, &out->seg) && out->seg < 0x1000)
	{
		/* segments per log file are 2^32 / segment size: at most 4096 (1 MiB segments) */
		if (len == 24)
			out->kind = WAL_SEGMENT;
		else if (len == 32 && strcmp(name + 24, ".partial") == 0)
			out->kind = WAL_PARTIAL;
		else if (len == 40 && name[24] == '.' && parse_hex8(name + 25, &offset) &&
				 strcmp(name + 33, ".backup") == 0)
			out->kind = WAL_BACKUP;
		else
			len = 0;
	}
	else
		len = 0;

	if (len == 0 || out->tli == 0)
	{
		memset(out, 0, sizeof(*out));
		return err_set(DRB_ERR_USAGE, "'%s' is not a WAL file name (expected a segment, .partial, "
					   ".backup or .history file name, without a directory)", name);
	}
	memcpy(out->name, name, len + 1);
	return 0;
}

void
wal_segment_next(const wal_name *w, uint32_t seg_size, wal_name *next)
{
	uint64_t	per_log = UINT64_C(0x100000000) / seg_size;
	wal_name	cur = *w;		/* next may be w */

	memset(next, 0, sizeof(*next));
	next->kind = WAL_SEGMENT;
	next->tli = cur.tli;
	next->log = cur.log;
	next->seg = cur.seg + 1;
	if (next->seg >= per_log)
	{
		next->log++;
		next->seg = 0;
	}
	snprintf(next->name, sizeof(next->name), "%08X%08X%08X", next->tli, next->log, next->seg);
}

void
wal_segment_name(uint32_t tli, uint64_t pos, uint32_t seg_size, char out[25])
{
	uint64_t	per_log = UINT64_C(0x100000000) / seg_size;

	snprintf(out, 25, "%08X%08X%08X", tli, (uint32_t) (pos / per_log),
			 (uint32_t) (pos % per_log));
}

uint16_t
wal_page_magic(int pg_major)
{
	for (size_t i = 0; i < PAGE_MAGIC_COUNT; i++)
		if (page_magic[i].major == pg_major)
			return page_magic[i].magic;
	return 0;
}

/* The major version whose WAL carries magic, or 0 when it is not one of ours. */
static int
page_magic_major(uint16_t magic)
{
	for (size_t i = 0; i < PAGE_MAGIC_COUNT; i++)
		if (page_magic[i].magic == magic)
			return page_magic[i].major;
	return 0;
}

static uint16_t
get16(const uint8_t *p)
{
	uint16_t	v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t	v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int
wal_header_check(const char *display_name, const uint8_t *head, size_t head_len,
				 uint64_t file_size, const wal_name *w, uint64_t system_id, int pg_major,
				 uint32_t *seg_size)
{
	uint16_t	want_magic = wal_page_magic(pg_major);
	uint16_t	magic;
	uint16_t	info;
	uint32_t	tli;
	uint64_t	pageaddr;
	uint64_t	sysid;
	uint32_t	size;
	uint64_t	start;

	if (want_magic == 0)
		return err_set(DRB_ERR_STANZA, "the stanza records PostgreSQL %d, which drbackup does not "
					   "support (12 to 17)", pg_major);
	if (w->kind != WAL_SEGMENT && w->kind != WAL_PARTIAL)
		return err_set(DRB_ERR_INTERNAL, "'%s' is not a WAL segment: it has no page header",
					   display_name);
	if (head_len < WAL_LONG_HEADER_SIZE)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' is too short to be a WAL segment "
					   "(%zu bytes)", display_name, head_len);

	magic = get16(head);
	info = get16(head + 2);
	tli = get32(head + 4);
	pageaddr = get64(head + 8);
	sysid = get64(head + 24);
	size = get32(head + 32);

	if (magic != want_magic)
	{
		int			major = page_magic_major(magic);

		if (major)
			return err_set(DRB_ERR_STANZA, "WAL file '%s' was written by PostgreSQL %d (WAL magic "
						   "0x%04X) but the stanza's cluster is PostgreSQL %d (WAL magic 0x%04X)",
						   display_name, major, magic, pg_major, want_magic);
		return err_set(DRB_ERR_STANZA, "WAL file '%s' has WAL magic 0x%04X, not that of "
					   "PostgreSQL %d (0x%04X): not a WAL segment of the stanza's cluster",
					   display_name, magic, pg_major, want_magic);
	}
	if ((info & XLP_LONG_HEADER) == 0)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' does not start with a long page header "
					   "(xlp_info 0x%04X): not the first page of a segment", display_name, info);
	if (sysid != system_id)
		return err_set(DRB_ERR_STANZA, "WAL file '%s' belongs to system identifier %" PRIu64
					   ", the stanza's cluster has system identifier %" PRIu64,
					   display_name, sysid, system_id);
	if (size < WAL_SEG_SIZE_MIN || size > WAL_SEG_SIZE_MAX || (size & (size - 1)) != 0)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' records segment size %" PRIu32 ", not "
					   "a power of two from 1 MiB to 1 GiB", display_name, size);
	if (w->kind == WAL_SEGMENT ? file_size != size : file_size > size)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' is %" PRIu64 " bytes but its header "
					   "records segment size %" PRIu32, display_name, file_size, size);
	if (w->seg >= UINT64_C(0x100000000) / size)
		return err_set(DRB_ERR_INTEGRITY, "WAL file name '%s' has segment number %08X, beyond "
					   "the %" PRIu64 " segments per log file of %" PRIu32 "-byte segments",
					   display_name, w->seg, UINT64_C(0x100000000) / size, size);

	/*
	 * The first page of a new timeline's first segment is copied from the old timeline, so
	 * its xlp_tli may be lower than the name's; never higher.
	 */
	if (tli == 0 || tli > w->tli)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' has timeline %" PRIu32 " in its header, "
					   "which does not fit the timeline %" PRIu32 " of its name",
					   display_name, tli, w->tli);
	start = ((uint64_t) w->log << 32) | ((uint64_t) w->seg * size);
	if (pageaddr != start)
		return err_set(DRB_ERR_INTEGRITY, "WAL file '%s' starts at WAL location %X/%X, not at "
					   "%X/%X as its name says", display_name, (unsigned) (pageaddr >> 32),
					   (unsigned) pageaddr, (unsigned) (start >> 32), (unsigned) start);
	*seg_size = size;
	return 0;
}
