/*
 * spool_intern.h — what spool.c shares with the two asynchronous workers
 * (archive_async.c: archive-push-async; archive_get_async.c: archive-get-async).
 *
 * Layout of the spool: spool.h, plus what the implementation adds to it:
 *   out/<wal>.ok                 "<size> <mtime s>.<ns> <sha256>" of the file pushed, so an
 *                                acknowledgement never answers for another file of that name
 *   out/<wal>.error              "<error kind number> <message>": archive-push exits with the
 *                                code of that kind; removing the file asks for a new attempt
 *   lag/repo<N>/<wal>-<sha256>   the copies for a lagging repository, checked against the
 *                                checksum in their name before they are pushed
 *   worker.lock, get.lock        hold the worker's process id
 *   worker.log, get.log          the two workers' logs
 *   get.pos                      "<wal> <segment size or 0>": the segment archive-get was
 *                                last asked for (recovery's position, for the prefetch worker)
 *
 * Every file these helpers write appears under its final name complete or not at all: it
 * is written as "<name>.tmp" in the same directory, (fsynced), renamed, (and the
 * directory fsynced). Only one process writes each directory (out/ and lag/: the push
 * worker; in/: the prefetch worker, through archive_get_one's own temporary names; the
 * spool's top directory: archive-get, get.pos only), so a fixed temporary name never
 * collides, and a worker removes the leftovers of a killed predecessor when it starts.
 *
 * Workers are started detached (double fork, setsid, stdio on /dev/null) by re-executing
 * the running program with the options of its own command line (/proc/self/cmdline), so
 * they see exactly the configuration the caller saw (environment included).
 */
#ifndef DRB_SPOOL_INTERN_H
#define DRB_SPOOL_INTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo_config.h"		/* config_t (a plain "config.h" from archive/ finds autoconf's) */

/* Paths of one stanza's spool; every string is owned by the struct. */
typedef struct spool
{
	char	   *dir;			/* <spool-path>/archive/<stanza> */
	char	   *out;			/* dir/out: push acknowledgements and errors */
	char	   *in;				/* dir/in: prefetched segments */
	char	   *lag;			/* dir/lag: copies for lagging repositories (lag/repo<N>) */
} spool_t;

/* Suffix of the temporary names (removed by the next worker when left behind). */
#define SPOOL_TMP_SUFFIX ".tmp"

/* Fill sp for cfg's stanza and create sp->dir (and its parents). -1 + err on failure. */
int			spool_open(spool_t *sp, const config_t *cfg);
void		spool_close(spool_t *sp);

/* mkdir -p (mode 0750 less umask); an existing directory is success. -1 + err. */
int			spool_mkdir(const char *path);

/* fsync a directory (after a rename or unlink in it). -1 + err naming it. */
int			spool_fsync_dir(const char *path);

/*
 * Write data to path atomically: "<path>.tmp", rename. durable: fsync the file before
 * the rename and the directory after it. -1 + err naming path (the temp file is removed).
 */
int			spool_write_file(const char *path, const void *data, size_t len, bool durable);

/*
 * Copy the regular file src to dst atomically and durably (temp file in dst's directory,
 * fsync, rename, fsync directory): for moves across filesystems. -1 + err.
 */
int			spool_copy_file(const char *src, const char *dst);

/* A whole small file (at most max bytes) as a NUL-terminated string; caller frees.
 * NULL + DRB_ERR_NOT_FOUND when it does not exist, other kinds on read errors. */
char	   *spool_read_small(const char *path, size_t max);

/* Read a whole file into memory; caller frees *data. -1 + err. */
int			spool_read_file(const char *path, uint8_t **data, size_t *len);

/*
 * Try to take the exclusive lock on path (flock; the file is created). Sets *fd to the
 * open descriptor holding it (keep it open for as long as the lock must be held), or to
 * -1 when another process holds it. -1 + err on other failures.
 */
int			spool_lock_try(const char *path, int *fd);

/* Write the calling process's id into the lock file held open as fd (for operators:
 * which process is the worker). Failures are ignored. */
void		spool_lock_note_pid(int fd);

/* True when another process holds the lock on path (tested by taking and dropping it). */
bool		spool_lock_held(const char *path);

/*
 * Start the worker `command` (a hidden command name) detached: the running program is
 * re-executed with the options of its own command line, the command word replaced by
 * `command` and the positional arguments replaced by arg (none when NULL). Returns when
 * the intermediate process is reaped (never a zombie). -1 + err when it cannot fork.
 */
int			spool_worker_start(const char *command, const char *arg);

/*
 * The argument vector spool_worker_start executes, built from the NUL-separated command
 * line in cmdline (as /proc/self/cmdline holds it). NULL-terminated; caller frees the
 * array and every string. NULL + err when no command word is found.
 */
char	  **spool_worker_argv(const char *cmdline, size_t len, const char *command,
							  const char *arg);

/* Remove every entry of dir (not recursively) for which keep(name) is false. */
void		spool_remove_unless(const char *dir, bool (*keep) (const char *name));

/* Names in dir (files of any kind, no "." entries), sorted; caller frees with
 * spool_names_free. NULL with *n = 0 when dir is missing or empty. */
char	  **spool_list(const char *dir, size_t *n);
void		spool_names_free(char **names, size_t n);

/* Run job(arg, i) for every i in [0, n) on up to nthreads threads; returns when all ran. */
void		spool_parallel(int nthreads, size_t n, void (*job) (void *arg, size_t i), void *arg);

/* Milliseconds of a monotonic clock. */
int64_t		spool_now_ms(void);

/*
 * Wake-ups on directory changes (inotify: files created, renamed in or out, deleted).
 * When inotify is unavailable spool_watch_wait just sleeps a short while, so callers
 * must re-check their condition after every wake-up in any case.
 */
typedef struct spool_watch
{
	int			fd;				/* inotify descriptor or -1 */
} spool_watch;

void		spool_watch_init(spool_watch *w);
void		spool_watch_add(spool_watch *w, const char *dir);
/* Wait until a watched directory changes or timeout_ms pass. */
void		spool_watch_wait(spool_watch *w, int timeout_ms);
void		spool_watch_close(spool_watch *w);

/* The segment size in a WAL segment's long page header (xlp_seg_size, u32 little-endian
 * at offset 32) if it is a power of two from 1 MiB to 1 GiB; else 0. */
uint32_t	spool_header_seg_size(const uint8_t *head, size_t len);

#endif
