/*
 * object_plan.h — which files of a backup manifest each repository object holds.
 *
 * restore and export both read a manifest into a records file of their own and group the
 * files by the object holding their bytes, (ref, object): the label of the backup that
 * stored it and the object's name in it. Each group keeps the callers' record positions
 * (opaque numbers to this module) and the sum of its files' sizes. Groups are numbered in
 * the order the manifest first names each object; a hash table finds a pair's group in
 * constant time, so a manifest of a million files plans in one pass.
 *
 * object_plan_sort puts a group's positions in the order of the files' offsets in the
 * object (the order its plain stream delivers them) and refuses a group in which two files
 * overlap: DRB_ERR_INTEGRITY, "two files overlap in object 'O' of backup R (offset N)".
 *
 * object_splitter_new is the sink both put at the end of an object's read chain: it cuts
 * the plain stream into the group's files, checks each file's SHA-256 against the
 * manifest's and hands the bytes to the caller's callbacks (restore writes files into the
 * data directory, export writes tar entries). The caller's records are read back through
 * one object_load_fn, for planning and splitting alike.
 *
 * An object_plan starts zeroed ({0}) and owns everything it points to; object_plan_free
 * releases it. Not thread-safe while groups are added; read-only use from several threads
 * afterwards is safe.
 */
#ifndef DRB_OBJECT_PLAN_H
#define DRB_OBJECT_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"

typedef struct object_group
{
	char	   *ref;			/* label of the backup holding the object */
	char	   *object;			/* e.g. "data/b000017" */
	uint64_t   *pos;			/* record positions, sorted by offset once planned */
	size_t		n;
	size_t		cap;
	uint64_t	bytes;			/* sum of the files' sizes */
} object_group;

typedef struct object_plan
{
	object_group *groups;		/* in the order the manifest first names each object */
	size_t		ngroups;
	size_t		cap;
	size_t	   *slots;			/* hash table: group index + 1, 0 = free */
	size_t		nslots;
} object_plan;

/* One file of a group, as the caller's records describe it. */
typedef struct object_file
{
	const char *path;			/* in the backup, for messages */
	uint64_t	offset;			/* in the object's plain stream */
	uint64_t	size;			/* > 0 */
	const uint8_t *sha256;		/* the manifest's checksum of the file */
} object_file;

/*
 * Describe the file whose record is at position pos in *f (pointers valid until the next
 * call): 1, 0 to skip the file (not needed: only while splitting), or -1 + err.
 */
typedef int (*object_load_fn) (void *arg, uint64_t pos, object_file *f);

/* The index of the group of (ref, object), created empty at the pair's first mention. */
size_t		object_plan_group(object_plan *p, const char *ref, const char *object);

/* Add the file at record position pos, size bytes, to group g. */
void		object_plan_add(object_plan *p, size_t g, uint64_t pos, uint64_t size);

/*
 * Sort g's positions by the files' offsets (read through load); 0, or -1 + err (load's
 * error, or two files overlapping).
 */
int			object_plan_sort(object_group *g, object_load_fn load, void *arg);

/* Free the groups and the table; p is zeroed, ready for reuse. */
void		object_plan_free(object_plan *p);

/* What an object splitter does with the files (load as above; the others 0, or -1 + err). */
typedef struct object_split_ops
{
	object_load_fn load;
	/* f's first byte comes next. */
	int			(*open) (void *arg, const object_file *f);
	/* The next len bytes of f. */
	int			(*write) (void *arg, const object_file *f, const uint8_t *data, size_t len);
	/* f's last byte was written and its SHA-256 is the manifest's. */
	int			(*close) (void *arg, const object_file *f);
} object_split_ops;

/*
 * A sink filter for the plain stream of g's object (named object in messages): the bytes
 * of g's files, in the order object_plan_sort left them, go to ops, and each file's SHA-256
 * is checked against the manifest's; bytes between and after the files are dropped.
 * DRB_ERR_INTEGRITY when a file starts before the end of the previous one, when a file's
 * checksum differs (then close is not called: a file opened and not closed is the
 * caller's to discard) and when the stream ends before the last file. Freed with
 * filter_chain_free (arg is not freed); NULL + err when out of memory.
 */
filter_t   *object_splitter_new(const object_group *g, const char *object,
								const object_split_ops *ops, void *arg);

/*
 * For a group of one file at offset 0 whose checksum the caller gives the read chain as the
 * object's expected checksum (repo_get's expected_sha256): the object is then exactly the
 * file, so the splitter does not hash it again, and calls close only from its finish —
 * which the read chain reaches only after it has verified the object. Saves one SHA-256
 * pass over every large file on restore.
 */
void		object_splitter_trust_object(filter_t *splitter);

#endif
