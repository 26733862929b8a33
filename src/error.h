/*
 * error.h — the one error path of drbackup.
 *
 * A function that can fail returns -1 (or NULL) after calling err_set(), which records
 * an error kind and a message in thread-local state; callers that add context call
 * err_wrap() ("unable to put 'x': " + previous message) and return -1 in turn. The
 * command layer prints err_msg() once, as "drbackup: ERROR: <message>", and exits with
 * err_exit_code(). Every message names the object or file and the operation.
 * The exit-code table is documented in docs/exit-codes.md; keep both in step.
 */
#ifndef DRB_ERROR_H
#define DRB_ERROR_H

#include <stdbool.h>

typedef enum drb_err
{
	DRB_OK = 0,
	DRB_ERR_NOT_FOUND,		/* object/file/segment does not exist            exit 1 */
	DRB_ERR_USAGE,			/* unknown option, bad value, missing argument    exit 2 */
	DRB_ERR_CONFIG,			/* config file unreadable/unsafe, bad settings    exit 3 */
	DRB_ERR_STORAGE,		/* repository I/O, network, HTTP errors           exit 4 */
	DRB_ERR_INTEGRITY,		/* checksum mismatch, corrupt/truncated object    exit 5 */
	DRB_ERR_CRYPTO,			/* wrong passphrase / key, crypto failure         exit 6 */
	DRB_ERR_PG,				/* PostgreSQL connection or query failure         exit 7 */
	DRB_ERR_STANZA,			/* stanza mismatch, conflicting content          exit 8 */
	DRB_ERR_LOCK,			/* another process holds the lock                 exit 9 */
	DRB_ERR_INTERNAL,		/* bug or out of resources                        exit 10 */
	DRB_ERR_RECOVERY_ABORT, /* archive-get failed during archive recovery: stop   exit 126
							 * PostgreSQL (> 125) instead of letting it take the failure
							 * for the end of the archive and promote early */
} drb_err;

/* Record an error; always returns -1 so callers can write "return err_set(...)". */
int			err_set(drb_err kind, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with context, keeping its kind; returns -1. */
int			err_wrap(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/*
 * Mark the current error as an expected answer rather than a failure (archive-get of a WAL
 * file that does not exist): main() prints it as a plain "drbackup: <command>: <message>"
 * line, without "ERROR", and still exits with its kind's code. err_set clears the mark.
 */
void		err_mark_quiet(void);
bool		err_is_quiet(void);

drb_err		err_kind(void);
const char *err_msg(void);
void		err_clear(void);

/* Process exit code for an error kind (0 for DRB_OK). */
int			err_exit_code(drb_err kind);

/* Short name of an error kind, e.g. "integrity" (for JSON reports). */
const char *err_kind_name(drb_err kind);

#endif
