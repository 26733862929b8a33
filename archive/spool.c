/*
 * spool.c — the local spool of the asynchronous workers: the two calls archive-push and
 * archive-get make in asynchronous mode (spool.h), and the file, lock, process and
 * thread helpers the workers share with them (spool_intern.h).
 *
 * archive-push never pushes anything itself in asynchronous mode: it makes sure the
 * worker runs and waits for the worker's verdict on its file (out/<wal>.ok or .error).
 * archive-get takes a prefetched segment from in/ when there is one and tells the
 * prefetch worker where recovery is (get.pos: "<wal> <segment size or 0>").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "options.h"
#include "spool.h"
#include "spool_intern.h"

/* How often archive-push checks that the worker still runs while it waits (ms). */
#define WORKER_CHECK_MS 1000
/* Longest wait between two looks at the acknowledgement when inotify is unavailable. */
#define ACK_POLL_MS 10

/* ---------------------------------------------------------------------------------------
 * Files and directories
 * ------------------------------------------------------------------------------------- */

int
spool_open(spool_t *sp, const config_t *cfg)
{
	const char *root = cfg_str(cfg, "spool-path");
	const char *stanza = cfg_str(cfg, "stanza");

	memset(sp, 0, sizeof(*sp));
	if (root == NULL || stanza == NULL)
		return err_set(DRB_ERR_CONFIG, "asynchronous archiving needs spool-path and a stanza");
	sp->dir = xasprintf("%s/archive/%s", root, stanza);
	sp->out = xasprintf("%s/out", sp->dir);
	sp->in = xasprintf("%s/in", sp->dir);
	sp->lag = xasprintf("%s/lag", sp->dir);
	if (spool_mkdir(sp->dir) != 0)
	{
		spool_close(sp);
		return err_wrap("spool-path");
	}
	return 0;
}

void
spool_close(spool_t *sp)
{
	free(sp->dir);
	free(sp->out);
	free(sp->in);
	free(sp->lag);
	memset(sp, 0, sizeof(*sp));
}

int
spool_mkdir(const char *path)
{
	char	   *p = xstrdup(path);

	for (char *s = p + 1;; s++)
	{
		if (*s != '/' && *s != '\0')
			continue;

		char		c = *s;

		*s = '\0';
		if (mkdir(p, 0750) != 0 && errno != EEXIST)
		{
			err_set(DRB_ERR_CONFIG, "unable to create directory '%s': %m", p);
			free(p);
			return -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);

	struct stat st;

	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return err_set(DRB_ERR_CONFIG, "'%s' is not a directory", path);
	return 0;
}

int
spool_fsync_dir(const char *path)
{
	int			fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open directory '%s' to sync it: %m", path);
	if (fsync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to sync directory '%s': %m", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* The directory part of path ("." when there is none); caller frees. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t) (slash - path));
}

/* Write all of data to fd. */
static int
write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Finish a temp file: (fsync,) close, rename over path, (fsync the directory). */
static int
tmp_commit(int fd, const char *tmp, const char *path, bool durable)
{
	if (durable && fsync(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to sync '%s': %m", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", tmp);
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to rename '%s' to '%s': %m", tmp, path);
		unlink(tmp);
		return -1;
	}
	if (durable)
	{
		char	   *dir = dir_of(path);
		int			rc = spool_fsync_dir(dir);

		free(dir);
		return rc;
	}
	return 0;
}

int
spool_write_file(const char *path, const void *data, size_t len, bool durable)
{
	char	   *tmp = xasprintf("%s" SPOOL_TMP_SUFFIX, path);
	int			fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int			rc;

	if (fd < 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", tmp);
		free(tmp);
		return -1;
	}
	if (write_all(fd, data, len) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", tmp);
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	rc = tmp_commit(fd, tmp, path, durable);
	free(tmp);
	return rc;
}

int
spool_copy_file(const char *src, const char *dst)
{
	static const size_t piece = 1024 * 1024;
	int			in = open(src, O_RDONLY | O_CLOEXEC);
	char	   *tmp;
	int			out;
	uint8_t    *buf;
	int			rc = 0;

	if (in < 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to open '%s': %m", src);
	tmp = xasprintf("%s" SPOOL_TMP_SUFFIX, dst);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to create '%s': %m", tmp);
		close(in);
		free(tmp);
		return -1;
	}
	buf = xmalloc(piece);
	for (;;)
	{
		ssize_t		n = read(in, buf, piece);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to read '%s': %m", src);
			break;
		}
		if (n == 0)
			break;
		if (write_all(out, buf, (size_t) n) != 0)
		{
			rc = err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", tmp);
			break;
		}
	}
	free(buf);
	close(in);
	if (rc != 0)
	{
		close(out);
		unlink(tmp);
	}
	else
		rc = tmp_commit(out, tmp, dst, true);
	free(tmp);
	return rc;
}

int
spool_read_file(const char *path, uint8_t **data, size_t *len)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t		cap;
	size_t		got = 0;

	*data = NULL;
	*len = 0;
	if (fd < 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to open '%s': %m", path);
	if (fstat(fd, &st) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to stat '%s': %m", path);
		close(fd);
		return -1;
	}
	/* to the end of the file, whatever its size said (files of /proc say 0) */
	cap = (size_t) st.st_size + 1;
	if (cap < 4096)
		cap = 4096;
	*data = xmalloc(cap);
	for (;;)
	{
		ssize_t		n;

		if (got + 1 == cap)
		{
			cap *= 2;
			*data = xrealloc(*data, cap);
		}
		n = read(fd, *data + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			err_set(DRB_ERR_STORAGE, "unable to read '%s': %m", path);
			close(fd);
			free(*data);
			*data = NULL;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t) n;
	}
	close(fd);
	(*data)[got] = '\0';
	*len = got;
	return 0;
}

char *
spool_read_small(const char *path, size_t max)
{
	uint8_t    *data;
	size_t		len;

	if (spool_read_file(path, &data, &len) != 0)
		return NULL;
	if (len > max)
	{
		data[max] = '\0';
	}
	return (char *) data;
}

void
spool_remove_unless(const char *dir, bool (*keep) (const char *name))
{
	size_t		n;
	char	  **names = spool_list(dir, &n);

	for (size_t i = 0; i < n; i++)
	{
		if (keep(names[i]))
			continue;

		char	   *path = xasprintf("%s/%s", dir, names[i]);

		if (unlink(path) == 0)
			log_detail("removed stale spool file '%s'", path);
		free(path);
	}
	spool_names_free(names, n);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

char **
spool_list(const char *dir, size_t *n)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	char	  **names = NULL;
	size_t		cap = 0;

	*n = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL)
	{
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (*n == cap)
		{
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(char *));
		}
		names[(*n)++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(names, *n, sizeof(char *), name_cmp);
	return names;
}

void
spool_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

uint32_t
spool_header_seg_size(const uint8_t *head, size_t len)
{
	uint32_t	size;

	if (len < 36)
		return 0;
	size = (uint32_t) head[32] | (uint32_t) head[33] << 8 | (uint32_t) head[34] << 16 |
		(uint32_t) head[35] << 24;
	if (size < 1024 * 1024 || size > 1024 * 1024 * 1024 || (size & (size - 1)) != 0)
		return 0;
	return size;
}

/* ---------------------------------------------------------------------------------------
 * Locks, time, wake-ups, threads
 * ------------------------------------------------------------------------------------- */

int
spool_lock_try(const char *path, int *fd)
{
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (*fd < 0)
		return err_set(DRB_ERR_LOCK, "unable to open lock file '%s': %m", path);
	if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
		return 0;

	int			saved = errno;

	close(*fd);
	*fd = -1;
	if (saved == EWOULDBLOCK)
		return 0;
	errno = saved;
	return err_set(DRB_ERR_LOCK, "unable to lock '%s': %m", path);
}

void
spool_lock_note_pid(int fd)
{
	char		line[32];
	int			len = snprintf(line, sizeof(line), "%d\n", (int) getpid());

	if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t) len, 0) != len)
		log_detail("unable to write the worker's process id into its lock file: %m");
}

bool
spool_lock_held(const char *path)
{
	int			fd;

	if (spool_lock_try(path, &fd) != 0)
	{
		err_clear();
		return false;
	}
	if (fd < 0)
		return true;
	close(fd);
	return false;
}

int64_t
spool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
spool_watch_init(spool_watch *w)
{
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

void
spool_watch_add(spool_watch *w, const char *dir)
{
	if (w->fd < 0)
		return;
	if (inotify_add_watch(w->fd, dir, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
						  IN_CLOSE_WRITE) < 0)
	{
		close(w->fd);
		w->fd = -1;
	}
}

void
spool_watch_wait(spool_watch *w, int timeout_ms)
{
	if (w->fd < 0)
	{
		long		ms = timeout_ms < ACK_POLL_MS ? timeout_ms : ACK_POLL_MS;
		struct timespec ts = {0, ms * 1000000L};

		nanosleep(&ts, NULL);
		return;
	}

	struct pollfd p = {.fd = w->fd, .events = POLLIN};

	if (poll(&p, 1, timeout_ms) > 0)
	{
		char		drain[4096];

		while (read(w->fd, drain, sizeof(drain)) > 0)
			;
	}
}

void
spool_watch_close(spool_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

typedef struct parallel_run
{
	pthread_mutex_t lock;
	size_t		next;
	size_t		n;
	void		(*job) (void *arg, size_t i);
	void	   *arg;
} parallel_run;

static void *
parallel_thread(void *p)
{
	parallel_run *run = p;

	for (;;)
	{
		size_t		i;

		pthread_mutex_lock(&run->lock);
		i = run->next++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->n)
			break;
		run->job(run->arg, i);
	}
	return NULL;
}

void
spool_parallel(int nthreads, size_t n, void (*job) (void *arg, size_t i), void *arg)
{
	parallel_run run = {.next = 0, .n = n, .job = job, .arg = arg};
	pthread_t  *threads;
	int			started = 0;

	if (n == 0)
		return;
	if (nthreads < 1)
		nthreads = 1;
	if ((size_t) nthreads > n)
		nthreads = (int) n;
	pthread_mutex_init(&run.lock, NULL);
	threads = xcalloc((size_t) nthreads, sizeof(pthread_t));
	/* the calling thread works too: one thread fewer to start */
	for (int t = 1; t < nthreads; t++)
		if (pthread_create(&threads[started], NULL, parallel_thread, &run) == 0)
			started++;
	parallel_thread(&run);
	for (int t = 0; t < started; t++)
		pthread_join(threads[t], NULL);
	free(threads);
	pthread_mutex_destroy(&run.lock);
}

/* ---------------------------------------------------------------------------------------
 * Starting a worker
 * ------------------------------------------------------------------------------------- */

/* True when option word "--name" (no '=') takes the next word as its value. */
static bool
option_takes_next(const char *word)
{
	const char *name = word + 2;
	const opt_def *def;
	int			index;

	if (strcmp(word, "--help") == 0 || strcmp(word, "--version") == 0)
		return false;
	if (strncmp(name, "no-", 3) == 0 && opt_resolve(name + 3, &def, &index) == OPT_RESOLVED &&
		def->type == OPT_TYPE_BOOL)
		return false;
	if (opt_resolve(name, &def, &index) == OPT_RESOLVED && def->type == OPT_TYPE_BOOL)
		return false;
	return true;
}

char **
spool_worker_argv(const char *cmdline, size_t len, const char *command, const char *arg)
{
	char	  **words = NULL;
	size_t		nwords = 0;
	char	  **argv;
	size_t		n = 0;
	bool		options_done = false;
	bool		command_seen = false;

	/* split at the NULs (the last word may lack its NUL) */
	for (size_t pos = 0; pos < len;)
	{
		size_t		wlen = strnlen(cmdline + pos, len - pos);

		words = xrealloc(words, (nwords + 1) * sizeof(char *));
		words[nwords++] = xstrndup(cmdline + pos, wlen);
		pos += wlen + 1;
	}

	argv = xcalloc(nwords + 3, sizeof(char *));
	for (size_t i = 0; i < nwords; i++)
	{
		const char *word = words[i];

		if (i == 0)
			argv[n++] = xstrdup(word);
		else if (options_done || word[0] != '-' || word[1] == '\0')
		{
			/* the command word is replaced, positional arguments are dropped */
			if (!command_seen)
			{
				argv[n++] = xstrdup(command);
				if (arg != NULL)
					argv[n++] = xstrdup(arg);
				command_seen = true;
			}
		}
		else if (strcmp(word, "--") == 0)
		{
			argv[n++] = xstrdup(word);
			options_done = true;
		}
		else
		{
			argv[n++] = xstrdup(word);
			if (word[1] == '-' && strchr(word, '=') == NULL && option_takes_next(word) &&
				i + 1 < nwords)
				argv[n++] = xstrdup(words[++i]);
		}
	}
	for (size_t i = 0; i < nwords; i++)
		free(words[i]);
	free(words);
	if (!command_seen)
	{
		for (size_t i = 0; i < n; i++)
			free(argv[i]);
		free(argv);
		err_set(DRB_ERR_INTERNAL, "no command word in this process's command line");
		return NULL;
	}
	return argv;
}

/* In the detached grandchild: a clean process state, then exec. Only async-signal-safe
 * calls here (the parent may have had threads). */
static void
exec_detached(char **argv)
{
	sigset_t	none;
	int			devnull;

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0)
	{
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
	}
	if (close_range(3, ~0U, 0) != 0)
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	execv("/proc/self/exe", argv);
	_exit(127);
}

int
spool_worker_start(const char *command, const char *arg)
{
	uint8_t    *cmdline;
	size_t		len;
	char	  **argv;
	pid_t		pid;
	int			status;

	if (spool_read_file("/proc/self/cmdline", &cmdline, &len) != 0)
		return err_wrap("unable to start the %s worker", command);
	argv = spool_worker_argv((const char *) cmdline, len, command, arg);
	free(cmdline);
	if (argv == NULL)
		return err_wrap("unable to start the %s worker", command);

	pid = fork();
	if (pid == 0)
	{
		/* the intermediate child: fork the worker and exit, so that init reaps it */
		if (fork() == 0)
			exec_detached(argv);
		_exit(0);
	}
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
	if (pid < 0)
		return err_set(DRB_ERR_INTERNAL, "unable to start the %s worker: fork failed: %m",
					   command);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	log_detail("started the %s worker", command);
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * archive-push
 * ------------------------------------------------------------------------------------- */

/*
 * Whether ok_path acknowledges the file described by st: the worker writes
 * "<size> <mtime seconds>.<nanoseconds> <sha256>" of the file it pushed, so an
 * acknowledgement left over from an older file of the same name is never taken.
 * A stale one is removed (the worker then pushes the current file).
 */
static bool
ack_valid(const char *ok_path, const struct stat *st)
{
	char	   *text = spool_read_small(ok_path, 256);
	unsigned long long size;
	long long	sec;
	long		nsec;
	bool		valid;

	if (text == NULL)
	{
		err_clear();
		return false;
	}
	valid = sscanf(text, "%llu %lld.%ld", &size, &sec, &nsec) == 3 &&
		size == (unsigned long long) st->st_size && sec == (long long) st->st_mtim.tv_sec &&
		nsec == st->st_mtim.tv_nsec;
	free(text);
	if (!valid)
	{
		log_warn("ignoring the acknowledgement '%s': it was written for another file of the "
				 "same name", ok_path);
		unlink(ok_path);
	}
	return valid;
}

/* The worker's recorded failure ("<error kind> <message>") as the current error. */
static int
ack_error(const char *error_path, const char *wal)
{
	char	   *text = spool_read_small(error_path, 4096);
	int			kind = DRB_ERR_STORAGE;
	int			used = 0;
	int			rc;

	if (text == NULL)
	{
		err_clear();
		return err_set(DRB_ERR_STORAGE, "the asynchronous worker could not archive WAL file "
					   "'%s'", wal);
	}
	text[strcspn(text, "\n")] = '\0';
	if (sscanf(text, "%d %n", &kind, &used) < 1 || kind <= DRB_OK || kind > DRB_ERR_INTERNAL)
	{
		kind = DRB_ERR_STORAGE;
		used = 0;
	}
	rc = err_set((drb_err) kind, "%s", text + used);
	free(text);
	return rc;
}

/* Refuse what the worker would never push: it pushes only the files PostgreSQL marked
 * ready in pg1-path's pg_wal. */
static int
check_pushable(const config_t *cfg, const char *wal_path, const char *wal)
{
	const char *pg = cfg_str(cfg, "pg1-path");
	char	   *wal_dir;
	char	   *pg_wal;
	char	   *ready;
	struct stat a,
				b;
	int			rc = 0;

	if (pg == NULL)
		return err_set(DRB_ERR_CONFIG, "asynchronous archiving (archive-async) needs pg1-path "
					   "in the stanza's section: the worker pushes the files listed in "
					   "pg1-path/pg_wal/archive_status");
	wal_dir = dir_of(wal_path);
	pg_wal = xasprintf("%s/pg_wal", pg);
	ready = xasprintf("%s/archive_status/%s.ready", pg_wal, wal);
	if (stat(wal_dir, &a) != 0 || stat(pg_wal, &b) != 0 || a.st_dev != b.st_dev ||
		a.st_ino != b.st_ino)
		rc = err_set(DRB_ERR_CONFIG, "asynchronous archive-push only archives WAL files in "
					 "pg1-path/pg_wal ('%s'), '%s' is elsewhere: check pg1-path", pg_wal,
					 wal_path);
	else if (access(ready, F_OK) != 0)
		rc = err_set(DRB_ERR_USAGE, "asynchronous archive-push only archives WAL files "
					 "PostgreSQL marked ready, and '%s' does not exist", ready);
	free(wal_dir);
	free(pg_wal);
	free(ready);
	return rc;
}

/* Start the push worker unless it runs. */
static int
ensure_push_worker(const spool_t *sp)
{
	char	   *lock = xasprintf("%s/worker.lock", sp->dir);
	bool		held = spool_lock_held(lock);

	free(lock);
	if (held)
		return 0;
	return spool_worker_start("archive-push-async", NULL);
}

int
spool_push_wait(const config_t *cfg, const char *wal_path)
{
	const char *slash = strrchr(wal_path, '/');
	const char *wal = slash ? slash + 1 : wal_path;
	int64_t		timeout = cfg_int(cfg, "archive-timeout");
	spool_t		sp;
	wal_name	w;
	struct stat st;
	char	   *ok_path;
	char	   *error_path;
	spool_watch watch;
	int64_t		deadline;
	int64_t		next_check;
	int			rc = -1;

	if (wal_name_parse(wal, &w) != 0)
		return -1;
	if (stat(wal_path, &st) != 0)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to stat WAL file '%s': %m", wal_path);
	if (spool_open(&sp, cfg) != 0)
		return -1;
	ok_path = xasprintf("%s/%s.ok", sp.out, wal);
	error_path = xasprintf("%s/%s.error", sp.out, wal);

	/* the common case: the worker pushed it ahead of PostgreSQL's call */
	if (access(ok_path, F_OK) == 0 && ack_valid(ok_path, &st))
	{
		unlink(ok_path);
		rc = 0;
		goto done;
	}
	if (check_pushable(cfg, wal_path, wal) != 0 || spool_mkdir(sp.out) != 0)
		goto done;

	/* an error recorded by an earlier attempt: removing it asks the worker to retry */
	unlink(error_path);
	spool_watch_init(&watch);
	spool_watch_add(&watch, sp.out);
	deadline = spool_now_ms() + timeout * 1000;
	next_check = 0;
	for (;;)
	{
		int64_t		now = spool_now_ms();

		if (access(ok_path, F_OK) == 0 && ack_valid(ok_path, &st))
		{
			unlink(ok_path);
			rc = 0;
			break;
		}
		if (access(error_path, F_OK) == 0)
		{
			rc = ack_error(error_path, wal);
			break;
		}
		if (now >= deadline)
		{
			rc = err_set(DRB_ERR_STORAGE, "WAL file '%s' not acknowledged by the asynchronous "
						 "worker within %lld s (see %s/worker.log)", wal, (long long) timeout,
						 sp.dir);
			break;
		}
		/* the worker may have ended (idle) just before this file became ready */
		if (now >= next_check)
		{
			if (ensure_push_worker(&sp) != 0)
				break;
			next_check = now + WORKER_CHECK_MS;
		}
		spool_watch_wait(&watch, (int) (deadline - now < 100 ? deadline - now : 100));
	}
	spool_watch_close(&watch);

done:
	free(ok_path);
	free(error_path);
	spool_close(&sp);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * archive-get
 * ------------------------------------------------------------------------------------- */

/* Move a prefetched segment to dest: a rename on one filesystem, else a durable copy. */
static int
move_to_dest(const char *src, const char *dest)
{
	/* PostgreSQL fetches the file again after a crash: no need to make the rename durable */
	if (rename(src, dest) == 0)
		return 0;
	if (errno != EXDEV)
		return err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
					   "unable to move '%s' to '%s': %m", src, dest);
	if (spool_copy_file(src, dest) != 0)
		return -1;
	unlink(src);
	return 0;
}

/* The segment size from the header of a spooled segment file; 0 when unknown. */
static uint32_t
file_seg_size(const char *path)
{
	uint8_t		head[40];
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t		n;

	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head));
	close(fd);
	return n > 0 ? spool_header_seg_size(head, (size_t) n) : 0;
}

/* Drop prefetched segments that recovery has gone past (only complete ones: temporary
 * files belong to the worker writing them). */
static void
drop_older(const spool_t *sp, const wal_name *w)
{
	size_t		n;
	char	  **names = spool_list(sp->in, &n);

	for (size_t i = 0; i < n; i++)
	{
		wal_name	old;

		if (strcmp(names[i], w->name) >= 0)
			continue;
		if (wal_name_parse(names[i], &old) != 0)
		{
			err_clear();
			continue;
		}

		char	   *path = xasprintf("%s/%s", sp->in, names[i]);

		unlink(path);
		free(path);
	}
	spool_names_free(names, n);
}

/* Tell the prefetch worker where recovery is: "<wal> <segment size or 0>" in get.pos. */
static void
write_pos(const spool_t *sp, const wal_name *w, uint32_t seg_size)
{
	char	   *pos = xasprintf("%s/get.pos", sp->dir);
	char		line[128];
	int			len = snprintf(line, sizeof(line), "%s %u\n", w->name, seg_size);

	if (spool_write_file(pos, line, (size_t) len, false) != 0)
	{
		log_warn("archive-get prefetch: %s", err_msg());
		err_clear();
	}
	free(pos);
}

int
spool_get_prefetched(const config_t *cfg, const wal_name *w, const char *dest, bool *hit)
{
	spool_t		sp;
	char	   *src;
	char	   *lock;

	*hit = false;
	if (w->kind != WAL_SEGMENT || cfg_int(cfg, "archive-get-queue-max") == 0)
		return 0;

	/* The spool only speeds recovery up: a spool problem is a warning and a direct fetch,
	 * never a failed restore_command (recovery would end there). */
	if (spool_open(&sp, cfg) != 0 || spool_mkdir(sp.in) != 0)
	{
		log_warn("archive-get prefetch disabled: %s", err_msg());
		err_clear();
		if (sp.dir)
			spool_close(&sp);
		return 0;
	}

	/* the position first: the worker must not fetch w again once it leaves in/ */
	src = xasprintf("%s/%s", sp.in, w->name);
	write_pos(&sp, w, file_seg_size(src));
	if (access(src, F_OK) == 0)
	{
		if (move_to_dest(src, dest) == 0)
		{
			*hit = true;
			log_detail("WAL segment %s found in the spool (prefetched)", w->name);
		}
		else
		{
			/* gone meanwhile (the worker emptied the spool): a plain miss */
			if (err_kind() != DRB_ERR_NOT_FOUND)
				log_warn("unable to use prefetched segment %s: %s", w->name, err_msg());
			err_clear();
		}
	}
	free(src);
	drop_older(&sp, w);

	lock = xasprintf("%s/get.lock", sp.dir);
	if (!spool_lock_held(lock) && spool_worker_start("archive-get-async", w->name) != 0)
	{
		log_warn("archive-get prefetch: %s", err_msg());
		err_clear();
	}
	free(lock);
	spool_close(&sp);
	return 0;
}
