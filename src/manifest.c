/*
 * manifest.c — the manifest of one backup (see manifest.h; the format, field by field, is
 * in docs/backup-format.md).
 *
 * Writing: every line is made with jansson (one compact JSON object per line), gathered in
 * a buffer of WRITE_BUFFER bytes and pushed at once into two put chains per repository
 * (backup.manifest and backup.manifest.copy). Memory does not depend on the number of
 * entries: the buffer, the previous path (for the order check) and the chains.
 *
 * Reading: the object is decoded (and verified by the pipeline: checksum, and
 * authentication when encrypted) into an unlinked temporary file in $TMPDIR (or /tmp),
 * mode 0600 — in clear, also for an encrypted repository, and gone when the reader closes
 * or the process dies. manifest_reader_open then checks the shape of the text without
 * parsing the entries (every line terminated, the last one the end line with the right
 * count: a manifest cut short is refused at open, where the copy can stand in) and parses
 * the header. manifest_reader_next reads one line with getline, parses it with json_loadb
 * and checks it (fields, path safety, order). Memory: one line and its JSON.
 *
 * Why entries are checked as they are read rather than all at open: parsing is the cost of
 * reading a manifest (about 10 us per line with jansson here), and a second pass would
 * double it for every backup and restore of a large cluster. An entry refused by next()
 * means an object that passed its checksum holds bad content — a writer bug or a forger
 * holding the key — and its copy, written from the same entries, would hold the same; so
 * the copy is not tried then, and the caller gets DRB_ERR_INTEGRITY naming the line.
 *
 * Decisions beyond manifest.h:
 * - Both sides run the same checks (header_check, entry_check): the writer refuses
 *   (DRB_ERR_INTERNAL) what a reader would refuse (DRB_ERR_INTEGRITY).
 * - Text that is not valid UTF-8 (file names and link targets are bytes; JSON strings are
 *   UTF-8) is written as hex under a sibling key: "px" for "p", "dstx" for "dst",
 *   "<key>-hex" for the header's texts.
 * - Unknown keys are refused: a change of meaning needs a new format number.
 * - An entry's ref must be the backup itself or an earlier backup of its chain
 *   (backup_label_in_chain); a tablespace link (pg_tblspc/<oid>) must point to an absolute
 *   path without ".", ".." or empty components; other link targets only need to be
 *   non-empty and free of control characters (what restore makes of them is its choice).
 * - A file with no object (size 0) has no "r", "o" and "off"; a file with an object has
 *   all three. "bad" is written only when there are damaged blocks.
 * - manifest_reader_open falls back to the copy on any failure of the main object
 *   (missing, damaged, cut short, refused header, read error), with a warning naming it.
 *   When both fail, the error is the main object's, with the copy's failure appended —
 *   except when the main object is missing: then it is the copy's (DRB_ERR_NOT_FOUND when
 *   both are missing). After an error from manifest_reader_next, only close is meaningful.
 * - manifest_writer_close commits the objects one after another (per repository: main,
 *   then copy); if one commit fails, those before it stay (a manifest without a catalog
 *   entry is an interrupted backup).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "catalog.h"
#include "error.h"
#include "fileutil.h"
#include "jsonutil.h"
#include "log.h"
#include "manifest.h"
#include "mem.h"
#include "pg.h"
#include "wal.h"

#define WRITE_BUFFER	(64 * 1024)

/* ------------------------------------------------------------------------------------ */
/* Small things                                                                         */
/* ------------------------------------------------------------------------------------ */

const char *
backup_type_name(backup_type t)
{
	switch (t)
	{
		case BACKUP_FULL:
			return "full";
		case BACKUP_DIFF:
			return "diff";
		case BACKUP_INCR:
			return "incr";
	}
	return "unknown";
}

int
backup_type_parse(const char *name)
{
	if (name == NULL)
		return -1;
	if (strcmp(name, "full") == 0)
		return BACKUP_FULL;
	if (strcmp(name, "diff") == 0)
		return BACKUP_DIFF;
	if (strcmp(name, "incr") == 0)
		return BACKUP_INCR;
	return -1;
}

char *
backup_object_path(const char *stanza, const char *label, const char *name)
{
	return xasprintf("stanza/%s/backup/%s/%s", stanza, label, name);
}

void
manifest_header_free(manifest_header *h)
{
	if (h == NULL)
		return;
	free(h->label);
	free(h->parent);
	free(h->drbackup_version);
	free(h->backup_label);
	free(h->tablespace_map);
	for (size_t i = 0; i < h->ntablespaces; i++)
	{
		free(h->tablespaces[i].name);
		free(h->tablespaces[i].location);
	}
	free(h->tablespaces);
	free(h->compress);
	memset(h, 0, sizeof(*h));
}

int
manifest_path_cmp(const char *a, const char *b)
{
	for (;;)
	{
		size_t		la = strcspn(a, "/");
		size_t		lb = strcspn(b, "/");
		int			c = memcmp(a, b, la < lb ? la : lb);

		if (c != 0)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;	/* a component sorts before its extensions */
		a += la;
		b += lb;
		if (*a == '\0' || *b == '\0')
			return (*a != '\0') - (*b != '\0');	/* a directory before its contents */
		a++;
		b++;
	}
}

static bool
no_control_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

bool
manifest_path_safe(const char *path)
{
	const char *p = path;

	if (path == NULL || *path == '\0')
		return false;
	for (;;)
	{
		size_t		n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
			!no_control_chars(p, n))
			return false;
		p += n;
		if (*p == '\0')
			return true;
		p++;
	}
}

/* An absolute path without empty, "." or ".." components (a tablespace location). */
static bool
absolute_path_safe(const char *path)
{
	return path != NULL && path[0] == '/' && manifest_path_safe(path + 1);
}

/* "pg_tblspc/<oid>": the link of a tablespace. */
static bool
is_tablespace_link(const char *path)
{
	const char *oid = path + strlen("pg_tblspc/");
	size_t		n;

	if (strncmp(path, "pg_tblspc/", strlen("pg_tblspc/")) != 0)
		return false;
	n = strspn(oid, "0123456789");
	return n > 0 && n <= 10 && oid[n] == '\0';
}

bool
manifest_lsn_parse(const char *text, uint64_t *lsn)
{
	char		canonical[32];

	if (text == NULL || strlen(text) > 17 || lsn_parse(text, lsn) != 0)
		return false;
	lsn_format(*lsn, canonical, sizeof(canonical));
	return strcmp(canonical, text) == 0;
}

bool
manifest_sysid_parse(const char *text, uint64_t *sysid)
{
	char		canonical[32];
	size_t		len = text ? strlen(text) : 0;

	if (len == 0 || len > 20 || strspn(text, "0123456789") != len)
		return false;
	errno = 0;
	*sysid = strtoull(text, NULL, 10);
	if (errno != 0)
		return false;
	snprintf(canonical, sizeof(canonical), "%" PRIu64, *sysid);
	return strcmp(canonical, text) == 0;
}

bool
manifest_wal_segment_valid(const char *name)
{
	wal_name	w;
	drb_err		kind = err_kind();
	char	   *msg;
	bool		ok;

	if (name == NULL || strnlen(name, 25) != 24)
		return false;
	/* wal_name_parse records an error when it refuses: keep the caller's instead */
	msg = kind != DRB_OK ? xstrdup(err_msg()) : NULL;
	ok = wal_name_parse(name, &w) == 0 && w.kind == WAL_SEGMENT;
	if (msg)
		err_set(kind, "%s", msg);
	else
		err_clear();
	free(msg);
	return ok;
}

bool
manifest_wal_segment_size_valid(uint64_t size)
{
	return size >= (1u << 20) && size <= (1u << 30) && (size & (size - 1)) == 0;
}

/* ------------------------------------------------------------------------------------ */
/* JSON fields (hostile input on the way in)                                            */
/* ------------------------------------------------------------------------------------ */

/*
 * Text under key, or decoded from hex under hexkey (text that is not UTF-8). *owned gets
 * the decoded copy (caller frees), NULL when *out points into obj.
 */
static bool
text_get(json_t *obj, const char *key, const char *hexkey, bool required, const char **out,
		 char **owned, char *why)
{
	json_t	   *x = json_object_get(obj, hexkey);
	const char *hex;
	size_t		len;
	char	   *text;

	*owned = NULL;
	if (x == NULL)
		return jfield_str(obj, key, required, out, why);
	if (json_object_get(obj, key) != NULL)
		return jfield_why(why, "both \"%s\" and \"%s\"", key, hexkey);
	hex = json_is_string(x) ? json_string_value(x) : "";
	len = strlen(hex);
	if (len == 0 || len % 2 != 0)
		return jfield_why(why, "\"%s\" is not hex text", hexkey);
	text = xmalloc(len / 2 + 1);
	if (hex_decode(hex, (uint8_t *) text, len / 2) != 0 || memchr(text, '\0', len / 2) != NULL)
	{
		free(text);
		return jfield_why(why, "\"%s\" is not hex text", hexkey);
	}
	text[len / 2] = '\0';
	*out = *owned = text;
	return true;
}

/* text_get into a string of one's own (NULL when absent and optional). */
static bool
text_dup(json_t *obj, const char *key, const char *hexkey, bool required, char **dst,
		 char *why)
{
	const char *text;
	char	   *owned;

	if (!text_get(obj, key, hexkey, required, &text, &owned, why))
		return false;
	*dst = owned ? owned : text ? xstrdup(text) : NULL;
	return true;
}

/* Set key to s, or hexkey to the hex of s's bytes when s is not valid UTF-8. */
static void
text_put(json_t *obj, const char *key, const char *hexkey, const char *s)
{
	json_t	   *v = json_string(s);

	if (v == NULL)
	{
		size_t		len = strlen(s);
		char	   *hex = xmalloc(2 * len + 1);

		hex_encode((const uint8_t *) s, len, hex);
		json_object_set_new(obj, hexkey, json_string(hex));
		free(hex);
		return;
	}
	json_object_set_new(obj, key, v);
}

bool
manifest_jfield_lsn(json_t *obj, const char *key, uint64_t *lsn, char *why)
{
	const char *text;

	if (!jfield_str(obj, key, true, &text, why))
		return false;
	if (!manifest_lsn_parse(text, lsn))
		return jfield_why(why, "\"%s\" is not an LSN", key);
	return true;
}

static bool
sha256_get(json_t *obj, const char *key, uint8_t out[32], char *why)
{
	const char *text;

	if (!jfield_str(obj, key, true, &text, why))
		return false;
	if (strlen(text) != 64 || hex_decode(text, out, 32) != 0)
		return jfield_why(why, "\"%s\" is not a SHA-256 in hex", key);
	return true;
}

/* ------------------------------------------------------------------------------------ */
/* Header                                                                               */
/* ------------------------------------------------------------------------------------ */

/* What a manifest header must be, written or read. */
static bool
header_check(const manifest_header *h, char *why)
{
	if (h->format != MANIFEST_FORMAT)
		return jfield_why(why, "unknown manifest format %d", h->format);
	if (!backup_label_valid(h->label))
		return jfield_why(why, "the label is not a backup label");
	if (backup_label_type(h->label) != (int) h->type)
		return jfield_why(why, "type %s does not match label '%s'", backup_type_name(h->type),
					   h->label);
	if (h->type == BACKUP_FULL ? h->parent != NULL :
		h->parent == NULL || strcmp(h->parent, h->label) == 0 ||
		!backup_label_in_chain(h->label, h->parent))
		return jfield_why(why, "the parent is not an earlier backup of the chain of '%s'", h->label);
	if (h->drbackup_version == NULL)
		return jfield_why(why, "the drbackup version is missing");
	if (h->pg_version <= 0 || h->pg_version_num <= 0)
		return jfield_why(why, "the PostgreSQL version is missing");
	if (h->timeline == 0)
		return jfield_why(why, "the timeline is 0");
	if (h->start_lsn > h->stop_lsn)
		return jfield_why(why, "the start LSN is after the stop LSN");
	if (!manifest_wal_segment_valid(h->wal_start) || !manifest_wal_segment_valid(h->wal_stop))
		return jfield_why(why, "the WAL range is not two WAL segment names");
	if (!manifest_wal_segment_size_valid(h->wal_segment_size))
		return jfield_why(why, "WAL segment size %" PRIu32 " is not a power of two from 1 MiB to "
					   "1 GiB", h->wal_segment_size);
	if (h->backup_label == NULL)
		return jfield_why(why, "the backup_label text is missing");
	if (h->ntablespaces > 0 && h->tablespaces == NULL)
		return jfield_why(why, "the tablespaces are missing");
	for (size_t i = 0; i < h->ntablespaces; i++)
	{
		const manifest_tablespace *t = &h->tablespaces[i];

		if (t->oid == 0 || t->name == NULL || !absolute_path_safe(t->location))
			return jfield_why(why, "tablespace %zu lacks an oid, a name or an absolute location", i);
		for (size_t j = 0; j < i; j++)
			if (h->tablespaces[j].oid == t->oid)
				return jfield_why(why, "tablespace %" PRIu32 " is listed twice", t->oid);
	}
	if (h->compress == NULL || compress_type_parse(h->compress) < 0)
		return jfield_why(why, "the compress type is not known");
	if (h->file_count > INT64_MAX || h->size > INT64_MAX || h->size_copied > INT64_MAX ||
		h->repo_size > INT64_MAX || h->object_count > INT64_MAX || h->damaged_pages > INT64_MAX)
		return jfield_why(why, "a total is above 2^63");
	return true;
}

static json_t *
header_to_json(const manifest_header *h)
{
	json_t	   *o = json_object();
	json_t	   *ts = json_array();
	char		sysid[32];

	snprintf(sysid, sizeof(sysid), "%" PRIu64, h->system_id);
	json_object_set_new(o, "format", json_integer(h->format));
	json_object_set_new(o, "label", json_string(h->label));
	json_object_set_new(o, "type", json_string(backup_type_name(h->type)));
	json_object_set_new(o, "parent", h->parent ? json_string(h->parent) : json_null());
	text_put(o, "drbackup-version", "drbackup-version-hex", h->drbackup_version);
	json_object_set_new(o, "system-id", json_string(sysid));
	json_object_set_new(o, "pg-version", json_integer(h->pg_version));
	json_object_set_new(o, "pg-version-num", json_integer(h->pg_version_num));
	json_object_set_new(o, "timeline", json_integer(h->timeline));
	json_object_set_new(o, "start-lsn", jval_lsn(h->start_lsn));
	json_object_set_new(o, "stop-lsn", jval_lsn(h->stop_lsn));
	json_object_set_new(o, "start-time", json_integer(h->start_time));
	json_object_set_new(o, "stop-time", json_integer(h->stop_time));
	json_object_set_new(o, "wal-start", json_string(h->wal_start));
	json_object_set_new(o, "wal-stop", json_string(h->wal_stop));
	json_object_set_new(o, "wal-segment-size", json_integer(h->wal_segment_size));
	json_object_set_new(o, "data-checksums", json_boolean(h->data_checksums));
	text_put(o, "backup-label", "backup-label-hex", h->backup_label);
	if (h->tablespace_map)
		text_put(o, "tablespace-map", "tablespace-map-hex", h->tablespace_map);
	else
		json_object_set_new(o, "tablespace-map", json_null());
	for (size_t i = 0; i < h->ntablespaces; i++)
	{
		json_t	   *t = json_object();

		json_object_set_new(t, "oid", json_integer(h->tablespaces[i].oid));
		text_put(t, "name", "name-hex", h->tablespaces[i].name);
		text_put(t, "location", "location-hex", h->tablespaces[i].location);
		json_array_append_new(ts, t);
	}
	json_object_set_new(o, "tablespaces", ts);
	json_object_set_new(o, "compress", json_string(h->compress));
	json_object_set_new(o, "file-count", json_integer((json_int_t) h->file_count));
	json_object_set_new(o, "size", json_integer((json_int_t) h->size));
	json_object_set_new(o, "size-copied", json_integer((json_int_t) h->size_copied));
	json_object_set_new(o, "repo-size", json_integer((json_int_t) h->repo_size));
	json_object_set_new(o, "object-count", json_integer((json_int_t) h->object_count));
	json_object_set_new(o, "damaged-pages", json_integer((json_int_t) h->damaged_pages));
	return o;
}

static const char *const header_keys[] = {
	"format", "label", "type", "parent", "drbackup-version", "drbackup-version-hex",
	"system-id", "pg-version", "pg-version-num", "timeline", "start-lsn", "stop-lsn",
	"start-time", "stop-time", "wal-start", "wal-stop", "wal-segment-size", "data-checksums",
	"backup-label", "backup-label-hex", "tablespace-map", "tablespace-map-hex", "tablespaces",
	"compress", "file-count", "size", "size-copied", "repo-size", "object-count",
	"damaged-pages", NULL
};

static const char *const tablespace_keys[] = {
	"oid", "name", "name-hex", "location", "location-hex", NULL
};

static bool
tablespaces_get(json_t *o, manifest_header *h, char *why)
{
	json_t	   *ts = json_object_get(o, "tablespaces");
	json_t	   *t;
	size_t		i;

	if (!json_is_array(ts))
		return jfield_why(why, "\"tablespaces\" is not an array");
	if (json_array_size(ts) == 0)
		return true;
	h->tablespaces = xcalloc(json_array_size(ts), sizeof(manifest_tablespace));
	json_array_foreach(ts, i, t)
	{
		manifest_tablespace *mt = &h->tablespaces[i];
		json_int_t	oid;

		h->ntablespaces = i + 1;
		if (!json_is_object(t))
			return jfield_why(why, "tablespace %zu is not an object", i);
		if (!jfield_keys_allowed(t, tablespace_keys, why) ||
			!jfield_int(t, "oid", 1, UINT32_MAX, &oid, why) ||
			!text_dup(t, "name", "name-hex", true, &mt->name, why) ||
			!text_dup(t, "location", "location-hex", true, &mt->location, why))
			return false;
		mt->oid = (uint32_t) oid;
	}
	return true;
}

/* Fill h (zeroed by the caller; freed by the caller on failure too) from the first line. */
static bool
header_from_json(json_t *o, manifest_header *h, char *why)
{
	const char *text;
	json_int_t	v;
	json_t	   *b;
	int			type;

	if (!jfield_keys_allowed(o, header_keys, why))
		return false;
	if (!jfield_int(o, "format", INT32_MIN, INT32_MAX, &v, why))
		return false;
	h->format = (int) v;
	if (h->format != MANIFEST_FORMAT)
		return jfield_why(why, "unknown manifest format %d", h->format);
	if (!jfield_str(o, "label", true, &text, why))
		return false;
	h->label = xstrdup(text);
	if (!jfield_str(o, "type", true, &text, why))
		return false;
	if ((type = backup_type_parse(text)) < 0)
		return jfield_why(why, "\"type\" is not full, diff or incr");
	h->type = (backup_type) type;
	if (!jfield_str(o, "parent", false, &text, why))
		return false;
	h->parent = text ? xstrdup(text) : NULL;
	if (!text_dup(o, "drbackup-version", "drbackup-version-hex", true, &h->drbackup_version, why))
		return false;
	if (!jfield_str(o, "system-id", true, &text, why))
		return false;
	if (!manifest_sysid_parse(text, &h->system_id))
		return jfield_why(why, "\"system-id\" is not a decimal number");
	if (!jfield_int(o, "pg-version", 1, INT32_MAX, &v, why))
		return false;
	h->pg_version = (int) v;
	if (!jfield_int(o, "pg-version-num", 1, INT32_MAX, &v, why))
		return false;
	h->pg_version_num = (int) v;
	if (!jfield_int(o, "timeline", 1, UINT32_MAX, &v, why))
		return false;
	h->timeline = (uint32_t) v;
	if (!manifest_jfield_lsn(o, "start-lsn", &h->start_lsn, why) ||
		!manifest_jfield_lsn(o, "stop-lsn", &h->stop_lsn, why))
		return false;
	if (!jfield_int(o, "start-time", INT64_MIN, INT64_MAX, &v, why))
		return false;
	h->start_time = v;
	if (!jfield_int(o, "stop-time", INT64_MIN, INT64_MAX, &v, why))
		return false;
	h->stop_time = v;
	if (!jfield_str(o, "wal-start", true, &text, why))
		return false;
	if (!manifest_wal_segment_valid(text))
		return jfield_why(why, "\"wal-start\" is not a WAL segment name");
	memcpy(h->wal_start, text, 25);
	if (!jfield_str(o, "wal-stop", true, &text, why))
		return false;
	if (!manifest_wal_segment_valid(text))
		return jfield_why(why, "\"wal-stop\" is not a WAL segment name");
	memcpy(h->wal_stop, text, 25);
	if (!jfield_int(o, "wal-segment-size", 0, UINT32_MAX, &v, why))
		return false;
	h->wal_segment_size = (uint32_t) v;
	b = json_object_get(o, "data-checksums");
	if (!json_is_boolean(b))
		return jfield_why(why, "\"data-checksums\" is not true or false");
	h->data_checksums = json_is_true(b);
	if (!text_dup(o, "backup-label", "backup-label-hex", true, &h->backup_label, why) ||
		!text_dup(o, "tablespace-map", "tablespace-map-hex", false, &h->tablespace_map, why))
		return false;
	if (json_object_get(o, "tablespace-map") == NULL && h->tablespace_map == NULL)
		return jfield_why(why, "\"tablespace-map\" is missing");
	if (!tablespaces_get(o, h, why))
		return false;
	if (!jfield_str(o, "compress", true, &text, why))
		return false;
	h->compress = xstrdup(text);
	return jfield_u64(o, "file-count", &h->file_count, why) &&
		jfield_u64(o, "size", &h->size, why) &&
		jfield_u64(o, "size-copied", &h->size_copied, why) &&
		jfield_u64(o, "repo-size", &h->repo_size, why) &&
		jfield_u64(o, "object-count", &h->object_count, why) &&
		jfield_u64(o, "damaged-pages", &h->damaged_pages, why);
}

/* ------------------------------------------------------------------------------------ */
/* Entries                                                                              */
/* ------------------------------------------------------------------------------------ */

/* What an entry of the backup label must be, written or read (order aside). */
static bool
entry_check(const manifest_entry *e, const char *label, char *why)
{
	if (e->type != MANIFEST_DIR && e->type != MANIFEST_LINK && e->type != MANIFEST_FILE_ENTRY)
		return jfield_why(why, "unknown entry type");
	if (!manifest_path_safe(e->path))
		return jfield_why(why, "the path is not a safe relative path");
	if (e->mode > 07777)
		return jfield_why(why, "mode %o is more than permission bits", e->mode);
	if (e->type == MANIFEST_LINK)
	{
		if (e->link_target == NULL || e->link_target[0] == '\0' ||
			!no_control_chars(e->link_target, strlen(e->link_target)))
			return jfield_why(why, "link '%s' has no target or one with control characters",
						   e->path);
		if (is_tablespace_link(e->path) && !absolute_path_safe(e->link_target))
			return jfield_why(why, "tablespace link '%s' does not point to a clean absolute path",
						   e->path);
	}
	if (e->type != MANIFEST_FILE_ENTRY)
		return true;
	if (e->size > INT64_MAX || e->offset > INT64_MAX - e->size)
		return jfield_why(why, "file '%s' has a size or offset above 2^63", e->path);
	if (e->object == NULL)
	{
		if (e->size != 0)
			return jfield_why(why, "file '%s' of %" PRIu64 " bytes has no object", e->path, e->size);
	}
	else
	{
		if (!manifest_path_safe(e->object))
			return jfield_why(why, "the object of '%s' is not a safe relative path", e->path);
		if (!backup_label_in_chain(label, e->ref))
			return jfield_why(why, "the ref of '%s' is not this backup or an earlier one of its "
						   "chain", e->path);
	}
	if (e->nbad > 0 && e->bad == NULL)
		return jfield_why(why, "file '%s' has %zu damaged blocks but no list", e->path, e->nbad);
	return true;
}

static json_t *
entry_to_json(const manifest_entry *e)
{
	json_t	   *o = json_object();
	char		type[2] = {(char) e->type, '\0'};
	char		hex[65];

	json_object_set_new(o, "t", json_string(type));
	text_put(o, "p", "px", e->path);
	json_object_set_new(o, "m", json_integer(e->mode));
	json_object_set_new(o, "mt", json_integer(e->mtime));
	if (e->type == MANIFEST_LINK)
		text_put(o, "dst", "dstx", e->link_target);
	if (e->type == MANIFEST_FILE_ENTRY)
	{
		json_object_set_new(o, "s", json_integer((json_int_t) e->size));
		hex_encode(e->sha256, 32, hex);
		json_object_set_new(o, "h", json_string(hex));
		if (e->object)
		{
			json_object_set_new(o, "r", json_string(e->ref));
			json_object_set_new(o, "o", json_string(e->object));
			json_object_set_new(o, "off", json_integer((json_int_t) e->offset));
		}
		if (e->nbad > 0)
		{
			json_t	   *bad = json_array();

			for (size_t i = 0; i < e->nbad; i++)
				json_array_append_new(bad, json_integer(e->bad[i]));
			json_object_set_new(o, "bad", bad);
		}
	}
	return o;
}

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                               */
/* ------------------------------------------------------------------------------------ */

struct manifest_writer
{
	int			nobj;			/* 2 per repository: main, copy */
	filter_t  **chain;
	char	  **path;
	repo_object_result *result;
	char	   *label;
	buf_t		pending;		/* lines not pushed yet (about WRITE_BUFFER bytes at most) */
	buf_t		prev;			/* path of the last entry */
	uint64_t	entries;
	bool		failed;			/* a push failed: the objects are incomplete */
};

static void
writer_free(manifest_writer *w)
{
	for (int i = 0; i < w->nobj; i++)
	{
		filter_chain_free(w->chain[i]);	/* aborts an unfinished object */
		free(w->path[i]);
	}
	free(w->chain);
	free(w->path);
	free(w->result);
	free(w->label);
	buf_free(&w->pending);
	buf_free(&w->prev);
	free(w);
}

static int
writer_flush(manifest_writer *w)
{
	for (int i = 0; i < w->nobj; i++)
		if (filter_push(w->chain[i], w->pending.data, w->pending.len) != 0)
		{
			w->failed = true;
			return err_wrap("unable to write manifest '%s'", w->path[i]);
		}
	buf_reset(&w->pending);
	return 0;
}

/* Append one line (takes o); pushes when the buffer is full. */
static int
writer_line(manifest_writer *w, json_t *o)
{
	char	   *text = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (text == NULL)
		return err_set(DRB_ERR_INTERNAL, "unable to format a line of the manifest of backup '%s'",
					   w->label);
	buf_append_str(&w->pending, text);
	buf_append(&w->pending, "\n", 1);
	free(text);
	return w->pending.len >= WRITE_BUFFER ? writer_flush(w) : 0;
}

manifest_writer *
manifest_writer_open(repo_t *const *repos, int nrepo, const char *stanza,
					 const manifest_header *h)
{
	manifest_writer *w;
	char		why[JFIELD_WHY_SIZE];

	if (repos == NULL || nrepo < 1 || stanza == NULL || h == NULL)
	{
		err_set(DRB_ERR_INTERNAL, "manifest_writer_open: no repository, stanza or header");
		return NULL;
	}
	if (!header_check(h, why))
	{
		err_set(DRB_ERR_INTERNAL, "refusing to write the manifest of backup '%s': %s",
				h->label ? h->label : "(none)", why);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->nobj = 2 * nrepo;
	w->chain = xcalloc((size_t) w->nobj, sizeof(filter_t *));
	w->path = xcalloc((size_t) w->nobj, sizeof(char *));
	w->result = xcalloc((size_t) w->nobj, sizeof(repo_object_result));
	w->label = xstrdup(h->label);
	buf_init(&w->pending);
	buf_init(&w->prev);
	for (int i = 0; i < w->nobj; i++)
	{
		w->path[i] = backup_object_path(stanza, h->label, i % 2 ? MANIFEST_FILE_COPY : MANIFEST_FILE);
		w->chain[i] = repo_put_open(repos[i / 2], w->path[i], &w->result[i]);
		if (w->chain[i] == NULL)
		{
			err_wrap("unable to write manifest '%s'", w->path[i]);
			writer_free(w);
			return NULL;
		}
	}
	if (writer_line(w, header_to_json(h)) != 0)
	{
		writer_free(w);
		return NULL;
	}
	return w;
}

int
manifest_writer_add(manifest_writer *w, const manifest_entry *e)
{
	char		why[JFIELD_WHY_SIZE];

	if (w->failed)
		return err_set(DRB_ERR_INTERNAL, "the manifest of backup '%s' failed earlier", w->label);
	if (!entry_check(e, w->label, why))
		return err_set(DRB_ERR_INTERNAL, "refusing an entry of the manifest of backup '%s': %s",
					   w->label, why);
	if (w->entries > 0 && manifest_path_cmp(buf_cstr(&w->prev), e->path) >= 0)
		return err_set(DRB_ERR_INTERNAL, "manifest of backup '%s': entry '%s' does not come "
					   "after '%s' in manifest order", w->label, e->path, buf_cstr(&w->prev));
	if (writer_line(w, entry_to_json(e)) != 0)
		return -1;
	buf_reset(&w->prev);
	buf_append_str(&w->prev, e->path);
	w->entries++;
	return 0;
}

int
manifest_writer_close(manifest_writer *w, uint8_t sha256[32])
{
	json_t	   *end;
	int			rc = -1;

	if (w->failed)
	{
		err_set(DRB_ERR_INTERNAL, "the manifest of backup '%s' failed earlier", w->label);
		goto out;
	}
	end = json_object();
	json_object_set_new(end, "end", json_true());
	json_object_set_new(end, "entries", json_integer((json_int_t) w->entries));
	if (writer_line(w, end) != 0 || writer_flush(w) != 0)
		goto out;
	for (int i = 0; i < w->nobj; i++)
	{
		if (filter_finish(w->chain[i]) != 0)
		{
			err_wrap("unable to write manifest '%s'", w->path[i]);
			goto out;
		}
		filter_chain_free(w->chain[i]);
		w->chain[i] = NULL;
	}
	if (sha256)
		memcpy(sha256, w->result[0].sha256, 32);
	rc = 0;
out:
	writer_free(w);
	return rc;
}

void
manifest_writer_abort(manifest_writer *w)
{
	if (w)
		writer_free(w);
}

/* ------------------------------------------------------------------------------------ */
/* Reader                                                                               */
/* ------------------------------------------------------------------------------------ */

struct manifest_reader
{
	int			repo_index;
	char	   *label;			/* the backup asked for */
	char	   *object;			/* the object being read (main or copy), for messages */
	int			fd;				/* the decoded manifest (unlinked temporary file) */
	FILE	   *fp;				/* reads fd (a dup of it) */
	char	   *line;
	size_t		linecap;
	uint64_t	lineno;
	json_t	   *cur;			/* the current entry's line; e's strings point into it */
	char	   *path_owned;		/* decoded "px" / "dstx" of the current entry */
	char	   *dst_owned;
	uint32_t   *bad;
	size_t		badcap;
	buf_t		prev;			/* path of the previous entry */
	uint64_t	entries;
	bool		done;
	bool		failed;			/* next() failed: it fails from now on */
};

static int
reader_fail(manifest_reader *r, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* DRB_ERR_INTEGRITY naming the object and the line. */
static int
reader_fail(manifest_reader *r, const char *fmt,...)
{
	char		msg[JFIELD_WHY_SIZE + 64];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err_set(DRB_ERR_INTEGRITY, "repository %d: manifest '%s' line %" PRIu64 ": %s",
				   r->repo_index, r->object, r->lineno, msg);
}

static void
reader_entry_release(manifest_reader *r)
{
	json_decref(r->cur);
	r->cur = NULL;
	free(r->path_owned);
	free(r->dst_owned);
	r->path_owned = r->dst_owned = NULL;
}

/* Next line (without its newline) in r->line: 1, 0 at the end of the file, -1 + err. */
static int
reader_getline(manifest_reader *r, size_t *len)
{
	ssize_t		n;

	errno = 0;
	n = getline(&r->line, &r->linecap, r->fp);
	if (n < 0)
	{
		if (ferror(r->fp))
			return err_set(DRB_ERR_STORAGE, "unable to read the decoded manifest '%s': %s",
						   r->object, strerror(errno ? errno : EIO));
		return 0;
	}
	r->lineno++;
	if (r->line[n - 1] != '\n')
		return reader_fail(r, "the line is not terminated (the manifest is cut short)");
	r->line[n - 1] = '\0';
	*len = (size_t) n - 1;
	return 1;
}

/* The line as a JSON object (NULL + err). */
static json_t *
reader_parse_line(manifest_reader *r, size_t len)
{
	json_error_t jerr;
	json_t	   *o = json_loadb(r->line, len, JSON_REJECT_DUPLICATES, &jerr);

	if (o == NULL)
	{
		reader_fail(r, "not valid JSON (%s)", jerr.text);
		return NULL;
	}
	if (!json_is_object(o))
	{
		json_decref(o);
		reader_fail(r, "not a JSON object");
		return NULL;
	}
	return o;
}

static const char *const dir_keys[] = {"t", "p", "px", "m", "mt", NULL};
static const char *const link_keys[] = {"t", "p", "px", "m", "mt", "dst", "dstx", NULL};
static const char *const file_keys[] = {
	"t", "p", "px", "m", "mt", "s", "h", "r", "o", "off", "bad", NULL
};

/* Fill e from an entry line; strings point into o or r's buffers. */
static bool
entry_from_json(manifest_reader *r, json_t *o, manifest_entry *e, char *why)
{
	const char *t;
	json_int_t	v;
	json_t	   *bad;

	memset(e, 0, sizeof(*e));
	if (!jfield_str(o, "t", true, &t, why))
		return false;
	if (strlen(t) != 1 || strchr("dlf", t[0]) == NULL)
		return jfield_why(why, "\"t\" is not d, l or f");
	e->type = (manifest_entry_type) t[0];
	if (!jfield_keys_allowed(o, e->type == MANIFEST_DIR ? dir_keys :
					  e->type == MANIFEST_LINK ? link_keys : file_keys, why))
		return false;
	if (!text_get(o, "p", "px", true, &e->path, &r->path_owned, why))
		return false;
	if (!jfield_int(o, "m", 0, 07777, &v, why))
		return false;
	e->mode = (uint32_t) v;
	if (!jfield_int(o, "mt", INT64_MIN, INT64_MAX, &v, why))
		return false;
	e->mtime = v;
	if (e->type == MANIFEST_LINK)
		return text_get(o, "dst", "dstx", true, &e->link_target, &r->dst_owned, why);
	if (e->type == MANIFEST_DIR)
		return true;

	if (!jfield_u64(o, "s", &e->size, why) || !sha256_get(o, "h", e->sha256, why))
		return false;
	if (json_object_get(o, "o") != NULL)
	{
		if (!jfield_str(o, "o", true, &e->object, why) || !jfield_str(o, "r", true, &e->ref, why) ||
			!jfield_u64(o, "off", &e->offset, why))
			return false;
	}
	else if (json_object_get(o, "r") != NULL || json_object_get(o, "off") != NULL)
		return jfield_why(why, "\"r\" or \"off\" without \"o\"");
	bad = json_object_get(o, "bad");
	if (bad != NULL)
	{
		json_t	   *b;
		size_t		i;

		if (!json_is_array(bad) || json_array_size(bad) == 0)
			return jfield_why(why, "\"bad\" is not a list of block numbers");
		if (json_array_size(bad) > r->badcap)
		{
			r->badcap = json_array_size(bad);
			r->bad = xrealloc(r->bad, r->badcap * sizeof(uint32_t));
		}
		json_array_foreach(bad, i, b)
		{
			if (!json_is_integer(b) || json_integer_value(b) < 0 ||
				json_integer_value(b) > UINT32_MAX)
				return jfield_why(why, "\"bad\" is not a list of block numbers");
			r->bad[i] = (uint32_t) json_integer_value(b);
		}
		e->bad = r->bad;
		e->nbad = json_array_size(bad);
	}
	return true;
}

/* The end line o of a manifest of entries entries. */
static bool
end_line_check(json_t *o, uint64_t entries, char *why)
{
	static const char *const end_keys[] = {"end", "entries", NULL};
	json_int_t	n;

	if (!jfield_keys_allowed(o, end_keys, why) || !jfield_int(o, "entries", 0, INT64_MAX, &n, why))
		return false;
	if (!json_is_true(json_object_get(o, "end")))
		return jfield_why(why, "\"end\" is not true");
	if ((uint64_t) n != entries)
		return jfield_why(why, "the end line counts %" PRIu64 " entries, the manifest has %" PRIu64,
					   (uint64_t) n, entries);
	return true;
}

/* The end line: the count, then nothing after it. 0 or -1 + err. */
static int
reader_end(manifest_reader *r, json_t *o)
{
	char		why[JFIELD_WHY_SIZE];
	size_t		len;
	int			rc;

	if (!end_line_check(o, r->entries, why))
		return reader_fail(r, "%s", why);
	rc = reader_getline(r, &len);
	if (rc > 0)
		return reader_fail(r, "data after the end line");
	return rc;
}

/* Next entry, checked: 1 and e, 0 at the verified end, -1 + err. */
static int
reader_read_entry(manifest_reader *r, manifest_entry *e)
{
	char		why[JFIELD_WHY_SIZE];
	size_t		len;
	int			rc;

	reader_entry_release(r);
	rc = reader_getline(r, &len);
	if (rc == 0)
		return err_set(DRB_ERR_INTEGRITY, "repository %d: manifest '%s' ends after line %" PRIu64
					   " without its end line (it is cut short)", r->repo_index, r->object,
					   r->lineno);
	if (rc < 0)
		return -1;
	if ((r->cur = reader_parse_line(r, len)) == NULL)
		return -1;
	if (json_object_get(r->cur, "end") != NULL)
		return reader_end(r, r->cur);
	if (!entry_from_json(r, r->cur, e, why) || !entry_check(e, r->label, why))
		return reader_fail(r, "%s", why);
	if (r->entries > 0 && manifest_path_cmp(buf_cstr(&r->prev), e->path) >= 0)
		return reader_fail(r, "entry '%s' does not come after '%s' (entries out of order)",
						   e->path, buf_cstr(&r->prev));
	buf_reset(&r->prev);
	buf_append_str(&r->prev, e->path);
	r->entries++;
	return 1;
}

/* Forget what a previous attempt read (another object comes). */
static void
reader_reset(manifest_reader *r)
{
	reader_entry_release(r);
	if (r->fp)
		fclose(r->fp);
	r->fp = NULL;
	r->lineno = 0;
	r->entries = 0;
	r->done = false;
	r->failed = false;
	buf_reset(&r->prev);
}

/*
 * The shape of the decoded text, without parsing the entries: every line terminated, the
 * last one the end line, counting the lines between it and the header. A manifest cut
 * short or miscounted is refused here, at open, where the copy can still stand in.
 */
static int
reader_check_shape(manifest_reader *r)
{
	uint8_t		block[65536];
	char		last[256];
	char		why[JFIELD_WHY_SIZE];
	off_t		pos = 0;
	off_t		line_start = 0;
	off_t		last_start = 0;
	json_error_t jerr;
	json_t	   *o;
	bool		ok;

	r->lineno = 0;
	for (;;)
	{
		ssize_t		n = pread(r->fd, block, sizeof(block), pos);
		uint8_t    *p = block;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_set(DRB_ERR_STORAGE, "unable to read the decoded manifest '%s': %m",
						   r->object);
		if (n == 0)
			break;
		while ((p = memchr(p, '\n', (size_t) (block + n - p))) != NULL)
		{
			r->lineno++;
			last_start = line_start;
			line_start = pos + (p - block) + 1;
			p++;
		}
		pos += n;
	}
	if (pos == 0)
		return err_set(DRB_ERR_INTEGRITY, "repository %d: manifest '%s' is empty", r->repo_index,
					   r->object);
	if (line_start != pos)
	{
		r->lineno++;
		return reader_fail(r, "the line is not terminated (the manifest is cut short)");
	}
	if (r->lineno < 2 || pos - 1 - last_start >= (off_t) sizeof(last) ||
		pread(r->fd, last, (size_t) (pos - 1 - last_start), last_start) != pos - 1 - last_start)
		return reader_fail(r, "the last line is not the end line (the manifest is cut short or "
						   "has data after its end)");
	o = json_loadb(last, (size_t) (pos - 1 - last_start), JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL || !json_is_object(o) || json_object_get(o, "end") == NULL)
	{
		json_decref(o);
		return reader_fail(r, "the last line is not the end line (the manifest is cut short or "
						   "has data after its end)");
	}
	ok = end_line_check(o, r->lineno - 2, why);
	json_decref(o);
	if (!ok)
		return reader_fail(r, "%s", why);
	r->lineno = 0;
	return 0;
}

/*
 * Decode path into the temporary file, check its shape and read its header into h; the
 * reader is then before the first entry. On failure h is freed (and zeroed).
 */
static int
reader_load(manifest_reader *r, repo_t *repo, const char *path, manifest_header *h)
{
	char		why[JFIELD_WHY_SIZE];
	filter_t   *sink;
	json_t	   *o;
	size_t		len;
	int			fd;
	int			rc;

	reader_reset(r);
	free(r->object);
	r->object = xstrdup(path);
	if (ftruncate(r->fd, 0) != 0 || lseek(r->fd, 0, SEEK_SET) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to reuse the temporary file of manifest '%s': %m",
					   path);
	sink = filter_sink_fd_new(r->fd);
	rc = repo_get(repo, path, sink, NULL, NULL);
	filter_chain_free(sink);
	if (rc != 0 || reader_check_shape(r) != 0)
		return -1;
	if (lseek(r->fd, 0, SEEK_SET) != 0 || (fd = dup(r->fd)) < 0)
		return err_set(DRB_ERR_STORAGE, "unable to read the decoded manifest '%s': %m", path);
	if ((r->fp = fdopen(fd, "r")) == NULL)
	{
		close(fd);
		return err_set(DRB_ERR_STORAGE, "unable to read the decoded manifest '%s': %m", path);
	}

	rc = reader_getline(r, &len);
	if (rc == 0)
		return err_set(DRB_ERR_INTEGRITY, "repository %d: manifest '%s' is empty", r->repo_index,
					   path);
	if (rc < 0 || (o = reader_parse_line(r, len)) == NULL)
		return -1;
	memset(h, 0, sizeof(*h));
	if (!header_from_json(o, h, why) || !header_check(h, why))
	{
		json_decref(o);
		manifest_header_free(h);
		return reader_fail(r, "%s", why);
	}
	json_decref(o);
	if (strcmp(h->label, r->label) != 0)
	{
		rc = reader_fail(r, "the manifest is of backup '%s', not '%s'", h->label, r->label);
		manifest_header_free(h);
		return rc;
	}
	return 0;
}

manifest_reader *
manifest_reader_open(repo_t *repo, const char *stanza, const char *label, manifest_header *h)
{
	manifest_reader *r;
	char	   *main_path;
	char	   *copy_path;
	int			rc;

	memset(h, 0, sizeof(*h));
	if (!backup_label_valid(label))
	{
		err_set(DRB_ERR_USAGE, "'%s' is not a backup label", label ? label : "");
		return NULL;
	}
	r = xcalloc(1, sizeof(*r));
	r->repo_index = repo_index(repo);
	r->label = xstrdup(label);
	buf_init(&r->prev);
	if ((r->fd = tmpfile_open("manifest")) < 0)
	{
		err_wrap("unable to read a manifest");
		manifest_reader_close(r);
		return NULL;
	}
	main_path = backup_object_path(stanza, label, MANIFEST_FILE);
	copy_path = backup_object_path(stanza, label, MANIFEST_FILE_COPY);
	rc = reader_load(r, repo, main_path, h);
	if (rc != 0)
	{
		drb_err		main_kind = err_kind();
		char	   *main_msg = xstrdup(err_msg());

		rc = reader_load(r, repo, copy_path, h);
		if (rc == 0 && main_kind == DRB_ERR_NOT_FOUND)
			log_warn("manifest '%s' is missing from repository %d; using the copy '%s'",
					 main_path, r->repo_index, copy_path);
		else if (rc == 0)
			log_warn("%s; using the copy '%s'", main_msg, copy_path);
		else if (main_kind != DRB_ERR_NOT_FOUND)
		{
			char	   *copy_msg = xstrdup(err_msg());

			if (err_kind() == DRB_ERR_NOT_FOUND)
				err_set(main_kind, "%s (and there is no copy '%s')", main_msg, copy_path);
			else
				err_set(main_kind, "%s (the copy failed too: %s)", main_msg, copy_msg);
			free(copy_msg);
		}
		free(main_msg);
	}
	free(main_path);
	free(copy_path);
	if (rc != 0)
	{
		manifest_reader_close(r);
		return NULL;
	}
	close(r->fd);				/* r->fp keeps the file */
	r->fd = -1;
	return r;
}

int
manifest_reader_next(manifest_reader *r, manifest_entry *e)
{
	int			rc;

	if (r->done)
		return 0;
	if (r->failed)
		return err_set(DRB_ERR_INTERNAL, "manifest '%s' read on after an error", r->object);
	rc = reader_read_entry(r, e);
	if (rc == 0)
		r->done = true;
	if (rc < 0)
		r->failed = true;
	return rc;
}

void
manifest_reader_close(manifest_reader *r)
{
	if (r == NULL)
		return;
	reader_reset(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r->line);
	free(r->bad);
	free(r->label);
	free(r->object);
	buf_free(&r->prev);
	free(r);
}
