/*
 * restore_test_server.c — the scratch PostgreSQL of restore-test (restore_test.h): its
 * private configuration, the PostgreSQL programs run as the cluster's OS user, libpq to
 * its private socket, and what its log says about the end of recovery.
 *
 * Nothing here reads drbackup's configuration: the command hands over paths and names.
 * PostgreSQL never runs as root: when drbackup runs as root, each program is started in a
 * child that drops to the cluster's user (groups, gid, uid, in that order) before exec;
 * everything that child needs is prepared before fork(), so it calls only
 * async-signal-safe functions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "error.h"
#include "log.h"
#include "mem.h"
#include "restore_test.h"
#include "timeutil.h"

#define SOCKET_PATH_MAX		107		/* sizeof(sockaddr_un.sun_path) - 1 */
#define OUTPUT_TAIL			1500	/* bytes of a program's output kept for messages */
#define LOG_READ_MAX		(16 * 1024 * 1024)	/* the tail of the server log parsed */

extern char **environ;

/* ---------------------------------------------------------------------------------------
 * Small file helpers
 * ------------------------------------------------------------------------------------- */

static int
write_text(const char *path, const char *text, int flags, mode_t mode)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode);
	size_t		len = strlen(text);
	const char *p = text;

	if (fd < 0)
		return err_set(DRB_ERR_STORAGE, "unable to open '%s' for writing: %m", path);
	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			err_set(DRB_ERR_STORAGE, "unable to write '%s': %m", path);
			close(fd);
			return -1;
		}
		p += n;
		len -= (size_t) n;
	}
	if (close(fd) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to close '%s': %m", path);
	return 0;
}

/* The last max bytes of a file (whole lines where possible); NULL + err when unreadable. */
static char *
read_tail(const char *path, size_t max)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char	   *data;
	size_t		len = 0;
	off_t		from = 0;

	if (fd < 0)
	{
		err_set(errno == ENOENT ? DRB_ERR_NOT_FOUND : DRB_ERR_STORAGE,
				"unable to open '%s': %m", path);
		return NULL;
	}
	if (fstat(fd, &st) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to stat '%s': %m", path);
		close(fd);
		return NULL;
	}
	if ((size_t) st.st_size > max)
		from = st.st_size - (off_t) max;
	data = xmalloc(max + 1);
	while (len < max)
	{
		ssize_t		n = pread(fd, data + len, max - len, from + (off_t) len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	data[len] = '\0';
	if (from > 0)
	{
		char	   *nl = strchr(data, '\n');

		if (nl)
			memmove(data, nl + 1, strlen(nl + 1) + 1);
	}
	return data;
}

/* Lines of text folded into one (" | " between them), blank lines dropped, trimmed. */
static char *
one_line(const char *text)
{
	buf_t		b;

	buf_init(&b);
	for (const char *p = text; *p;)
	{
		size_t		len = strcspn(p, "\n");
		size_t		start = 0;

		while (start < len && (p[start] == ' ' || p[start] == '\t' || p[start] == '\r'))
			start++;
		while (len > start && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
			len--;
		if (len > start)
		{
			if (b.len > 0)
				buf_append_str(&b, " | ");
			for (size_t i = start; i < len; i++)
				buf_append(&b, (unsigned char) p[i] < 0x20 ? " " : p + i, 1);
		}
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	return (char *) buf_cstr(&b);
}

/* ---------------------------------------------------------------------------------------
 * The directory tree
 * ------------------------------------------------------------------------------------- */

static uid_t tree_uid;
static gid_t tree_gid;
static int	tree_errno;
static char tree_failed[PATH_MAX];

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	if (lchown(path, tree_uid, tree_gid) != 0 && tree_errno == 0)
	{
		tree_errno = errno;
		snprintf(tree_failed, sizeof(tree_failed), "%s", path);
	}
	return 0;
}

/* Give every file under dir (links themselves, not what they point to) to uid:gid. */
static int
chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	tree_uid = uid;
	tree_gid = gid;
	tree_errno = 0;
	if (nftw(dir, chown_one, 32, FTW_PHYS) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to walk '%s' to change its owner: %m", dir);
	if (tree_errno != 0)
		return err_set(DRB_ERR_STORAGE, "unable to change the owner of '%s': %s", tree_failed,
					   strerror(tree_errno));
	return 0;
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	if (remove(path) != 0 && tree_errno == 0)
	{
		tree_errno = errno;
		snprintf(tree_failed, sizeof(tree_failed), "%s", path);
	}
	return 0;
}

/* Remove dir and everything under it, never following a link. */
static int
remove_tree(const char *dir)
{
	tree_errno = 0;
	if (nftw(dir, remove_one, 32, FTW_DEPTH | FTW_PHYS) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to walk '%s' to remove it: %m", dir);
	if (tree_errno != 0)
		return err_set(DRB_ERR_STORAGE, "unable to remove '%s': %s", tree_failed,
					   strerror(tree_errno));
	return 0;
}

/* ---------------------------------------------------------------------------------------
 * Setup
 * ------------------------------------------------------------------------------------- */

static bool
is_program(const char *dir, const char *name)
{
	char	   *path = xasprintf("%s/%s", dir, name);
	bool		ok = access(path, X_OK) == 0;

	free(path);
	return ok;
}

/* The absolute path of a PostgreSQL program: in s->bin, else the first PATH entry. */
static char *
program_path(const rt_server *s, const char *program)
{
	const char *path = getenv("PATH");
	char	   *copy,
			   *save = NULL,
			   *found = NULL;

	if (s->bin)
	{
		if (is_program(s->bin, program))
			return xasprintf("%s/%s", s->bin, program);
		err_set(DRB_ERR_NOT_FOUND, "PostgreSQL program '%s' not found in '%s'", program, s->bin);
		return NULL;
	}
	copy = xstrdup(path ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save))
		if (d[0] == '/' && is_program(d, program))
			found = xasprintf("%s/%s", d, program);
	free(copy);
	if (found == NULL)
		err_set(DRB_ERR_NOT_FOUND, "PostgreSQL program '%s' not found in the PATH (set "
				"pg-bin-path, or install PostgreSQL's server package)", program);
	return found;
}

int
rt_server_init(rt_server *s, const char *test_path, const char *pg1_path,
			   const char *bin_path, int pg_major, const char *role_hint)
{
	struct passwd *pw = NULL;
	struct stat st;
	char	   *tmpl;

	memset(s, 0, sizeof(*s));
	s->role = role_hint ? xstrdup(role_hint) : NULL;

	/* who runs the server */
	if (geteuid() == 0)
	{
		if (pg1_path && stat(pg1_path, &st) == 0 && st.st_uid != 0)
		{
			if ((pw = getpwuid(st.st_uid)) == NULL)
				return err_set(DRB_ERR_CONFIG, "the owner (uid %u) of pg1-path '%s' has no "
							   "user name: unable to run PostgreSQL as it",
							   (unsigned) st.st_uid, pg1_path);
		}
		else if ((pw = getpwnam("postgres")) == NULL)
			return err_set(DRB_ERR_CONFIG, "restore-test runs as root but pg1-path%s%s%s is "
						   "not there to say who owns the cluster, and there is no user "
						   "'postgres': PostgreSQL never runs as root", pg1_path ? " '" : "",
						   pg1_path ? pg1_path : "", pg1_path ? "'" : "");
		s->switch_user = true;
	}
	else if ((pw = getpwuid(geteuid())) == NULL)
		return err_set(DRB_ERR_CONFIG, "this process's user (uid %u) has no name",
					   (unsigned) geteuid());
	s->user = xstrdup(pw->pw_name);
	s->uid = pw->pw_uid;
	s->gid = pw->pw_gid;

	/* the programs */
	if (bin_path)
	{
		if (!is_program(bin_path, "pg_ctl"))
			return err_set(DRB_ERR_CONFIG, "pg-bin-path '%s' holds no pg_ctl", bin_path);
		s->bin = xstrdup(bin_path);
	}
	else
	{
		char	   *debian = xasprintf("/usr/lib/postgresql/%d/bin", pg_major);

		if (pg_major > 0 && is_program(debian, "pg_ctl"))
			s->bin = debian;
		else
			free(debian);
	}

	/* the scratch directory */
	tmpl = xasprintf("%s/drbackup-restore-test-XXXXXX", test_path);
	if (mkdtemp(tmpl) == NULL)
	{
		err_set(DRB_ERR_STORAGE, "unable to create a scratch directory in test-path '%s': %m",
				test_path);
		free(tmpl);
		return -1;
	}
	s->scratch = tmpl;
	s->pgdata = xasprintf("%s/data", s->scratch);
	s->tablespaces = xasprintf("%s/tablespaces", s->scratch);
	s->log_path = xasprintf("%s/server.log", s->scratch);
	if (strlen(s->scratch) + strlen("/.s.PGSQL.65535") > SOCKET_PATH_MAX)
		return err_set(DRB_ERR_CONFIG, "test-path '%s' is too long: the scratch server's "
					   "socket '%s/.s.PGSQL.N' would exceed %d bytes; choose a shorter "
					   "test-path", test_path, s->scratch, SOCKET_PATH_MAX);
	if (s->switch_user && chown(s->scratch, s->uid, s->gid) != 0)
		return err_set(DRB_ERR_STORAGE, "unable to give the scratch directory '%s' to user "
					   "'%s': %m", s->scratch, s->user);
	return 0;
}

/*
 * Bind a TCP socket on 127.0.0.1 to port (0: one the kernel chooses), as PostgreSQL will
 * (SO_REUSEADDR), and close it: the port that was bound, or -1 with errno.
 */
static int
bind_probe(int port)
{
	struct sockaddr_in a;
	socklen_t	len = sizeof(a);
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			one = 1;
	int			bound = -1;

	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t) port);
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
		getsockname(fd, (struct sockaddr *) &a, &len) == 0)
		bound = ntohs(a.sin_port);
	close(fd);
	return bound;
}

/*
 * A TCP port on 127.0.0.1 that is free now, below the kernel's ephemeral range (a port
 * inside it may become some outgoing connection's local end before the server binds it,
 * and the scratch server would fail to start for no reason of its own); the kernel's
 * choice when there is no room below the range.
 */
static int
free_port(void)
{
	int			lo = 32768;		/* the range's start */
	FILE	   *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	unsigned int seed = (unsigned int) getpid() ^ (unsigned int) time(NULL);
	int			port;

	if (f)
	{
		if (fscanf(f, "%d", &lo) != 1)
			lo = 32768;
		fclose(f);
	}
	for (int i = 0; lo > 11024 && i < 200; i++)
		if ((port = bind_probe(10000 + (int) (rand_r(&seed) % (unsigned int) (lo - 10000)))) > 0)
			return port;
	if ((port = bind_probe(0)) < 0)
		return err_set(DRB_ERR_INTERNAL, "unable to find a free port on 127.0.0.1: %m");
	return port;
}

/* 'value' quoted for a PostgreSQL configuration file. */
static void
conf_line(buf_t *b, const char *name, const char *value)
{
	buf_printf(b, "%s = '", name);
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			buf_append(b, p, 1);
		buf_append(b, p, 1);
	}
	buf_append_str(b, "'\n");
}

int
rt_server_configure(rt_server *s)
{
	char	   *conf = xasprintf("%s/postgresql.conf", s->pgdata);
	char	   *auto_conf = xasprintf("%s/postgresql.auto.conf", s->pgdata);
	char	   *standby = xasprintf("%s/standby.signal", s->pgdata);
	char	   *hba = xasprintf("%s/pg_hba.conf", s->scratch);
	char	   *ident = xasprintf("%s/pg_ident.conf", s->scratch);
	char		port[16];
	buf_t		b;
	int			rc = -1;

	buf_init(&b);
	if ((s->port = free_port()) < 0)
		goto out;
	snprintf(port, sizeof(port), "%d", s->port);

	/* Debian keeps postgresql.conf in /etc: the copy then starts from the defaults */
	if (access(conf, F_OK) != 0 &&
		write_text(conf, "# created by drbackup restore-test: the backup has no "
				   "postgresql.conf\n", O_EXCL, 0600) != 0)
		goto out;
	if (unlink(standby) != 0 && errno != ENOENT)
	{
		err_set(DRB_ERR_STORAGE, "unable to remove '%s': %m", standby);
		goto out;
	}
	if (write_text(hba, "# drbackup restore-test: only the private socket directory\n"
				   "local all all trust\n", O_TRUNC, 0600) != 0 ||
		write_text(ident, "", O_TRUNC, 0600) != 0)
		goto out;

	buf_append_str(&b, "# scratch server settings written by drbackup restore-test: private, "
				   "never archiving\n");
	buf_printf(&b, "port = %d\n", s->port);
	conf_line(&b, "listen_addresses", "127.0.0.1");
	conf_line(&b, "unix_socket_directories", s->scratch);
	buf_append_str(&b, "unix_socket_permissions = 0700\n");
	conf_line(&b, "hba_file", hba);
	conf_line(&b, "ident_file", ident);
	conf_line(&b, "external_pid_file", "");
	conf_line(&b, "archive_mode", "off");
	conf_line(&b, "archive_command", "");
	conf_line(&b, "archive_library", "");
	conf_line(&b, "primary_conninfo", "");
	conf_line(&b, "primary_slot_name", "");
	conf_line(&b, "synchronous_standby_names", "");
	conf_line(&b, "hot_standby", "on");
	conf_line(&b, "shared_buffers", "128MB");
	conf_line(&b, "huge_pages", "try");
	conf_line(&b, "ssl", "off");
	conf_line(&b, "logging_collector", "off");
	conf_line(&b, "log_destination", "stderr");
	conf_line(&b, "log_min_messages", "warning");
	conf_line(&b, "lc_messages", "C");
	conf_line(&b, "cluster_name", "drbackup-restore-test");
	if (write_text(auto_conf, (const char *) buf_cstr(&b), O_APPEND, 0600) != 0)
		goto out;
	if (s->switch_user && chown_tree(s->scratch, s->uid, s->gid) != 0)
		goto out;
	rc = 0;
out:
	if (rc != 0)
		err_wrap("unable to configure the scratch copy in '%s'", s->scratch);
	buf_free(&b);
	free(conf);
	free(auto_conf);
	free(standby);
	free(hba);
	free(ident);
	return rc;
}

/* ---------------------------------------------------------------------------------------
 * Programs, as the cluster's user
 * ------------------------------------------------------------------------------------- */

volatile sig_atomic_t rt_interrupted = 0;

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int
rt_run(const rt_server *s, const char *program, const char *const *args, int timeout,
	   int *status, char **output)
{
	char	   *path = program_path(s, program);
	char	   *out_path;
	const char **argv;
	char	  **envp;
	size_t		nargs = 0,
				nenv = 0;
	gid_t		groups[256];
	int			ngroups = 256;
	struct passwd *pw;
	char	   *home = NULL;
	pid_t		pid;
	int			wstatus = 0;
	double		deadline = clock_seconds() + timeout;
	long		maxfd = sysconf(_SC_OPEN_MAX);

	*status = -1;
	if (output)
		*output = NULL;
	if (path == NULL)
		return -1;
	out_path = xasprintf("%s/%s.out", s->scratch, program);

	/* everything the child needs, before fork() */
	while (args[nargs])
		nargs++;
	argv = xcalloc(nargs + 2, sizeof(char *));
	argv[0] = path;
	for (size_t i = 0; i < nargs; i++)
		argv[i + 1] = args[i];
	while (environ[nenv])
		nenv++;
	envp = xcalloc(nenv + 2, sizeof(char *));
	nenv = 0;
	for (char **e = environ; *e; e++)
		if (!s->switch_user || strncmp(*e, "HOME=", 5) != 0)
			envp[nenv++] = *e;
	if (s->switch_user)
	{
		if ((pw = getpwnam(s->user)) != NULL)
			envp[nenv++] = home = xasprintf("HOME=%s", pw->pw_dir);
		if (getgrouplist(s->user, s->gid, groups, &ngroups) < 0)
			ngroups = 0;
	}
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	fflush(stdout);
	fflush(stderr);

	pid = fork();
	if (pid < 0)
	{
		err_set(DRB_ERR_INTERNAL, "unable to fork to run '%s': %m", path);
		goto out;
	}
	if (pid == 0)
	{
		int			fd;

		if (s->switch_user &&
			(setgroups((size_t) (ngroups > 0 ? ngroups : 1), ngroups > 0 ? groups : &s->gid) != 0 ||
			 setgid(s->gid) != 0 || setuid(s->uid) != 0 || setuid(0) == 0))
			_exit(126);
		if (chdir(s->scratch) != 0)
			_exit(126);
		if ((fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		if ((fd = open("/dev/null", O_RDONLY)) >= 0)
			dup2(fd, 0);
		for (long i = 3; i < maxfd; i++)
			close((int) i);
		execve(path, (char *const *) argv, envp);
		_exit(127);
	}

	for (;;)
	{
		pid_t		r = waitpid(pid, &wstatus, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
		{
			err_set(DRB_ERR_INTERNAL, "unable to wait for '%s': %m", path);
			goto out;
		}
		if (clock_seconds() > deadline || rt_interrupted)
		{
			kill(pid, SIGKILL);
			waitpid(pid, &wstatus, 0);
			log_warn("%s killed after %s", path, rt_interrupted ? "an interrupt" : "its timeout");
			wstatus = -1;
			break;
		}
		sleep_ms(50);
	}
	if (wstatus != -1 && WIFEXITED(wstatus))
		*status = WEXITSTATUS(wstatus);
	if (output)
	{
		char	   *tail = read_tail(out_path, OUTPUT_TAIL);

		err_clear();
		*output = tail ? one_line(tail) : xstrdup("");
		if (wstatus == -1)
		{
			char	   *more = xasprintf("killed after %d s%s%s", timeout, **output ? ": " : "",
										 *output);

			free(*output);
			*output = more;
		}
		else if (*status == 126 || *status == 127)
		{
			char	   *more = xasprintf("unable to run it as user '%s' (exit %d)%s%s", s->user,
										 *status, **output ? ": " : "", *output);

			free(*output);
			*output = more;
		}
		free(tail);
	}
	free(out_path);
	free(argv);
	free(envp);
	free(home);
	free(path);
	return 0;
out:
	free(out_path);
	free(argv);
	free(envp);
	free(home);
	free(path);
	return -1;
}

/* ---------------------------------------------------------------------------------------
 * The server
 * ------------------------------------------------------------------------------------- */

/* The postmaster's pid from postmaster.pid; 0 when not (yet) there. */
static pid_t
read_pid(const rt_server *s)
{
	char	   *path = xasprintf("%s/postmaster.pid", s->pgdata);
	FILE	   *f = fopen(path, "r");
	long		pid = 0;

	free(path);
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1 || pid <= 0 || pid > INT32_MAX)
		pid = 0;
	fclose(f);
	return (pid_t) pid;
}

int
rt_server_start(rt_server *s)
{
	const char *args[] = {"start", "-D", s->pgdata, "-l", s->log_path, "-W", "-s", NULL};
	int			status;
	char	   *output = NULL;

	if (rt_run(s, "pg_ctl", args, 60, &status, &output) != 0)
		return -1;
	if (status != 0)
	{
		err_set(DRB_ERR_PG, "pg_ctl start of the scratch copy '%s' as user '%s' failed "
				"(exit %d): %s", s->pgdata, s->user, status, output);
		free(output);
		return -1;
	}
	free(output);
	/* the postmaster writes its pid file first thing; give it a few seconds */
	for (int i = 0; i < 300 && s->pid == 0; i++)
	{
		if ((s->pid = read_pid(s)) != 0)
			break;
		sleep_ms(100);
	}
	if (s->pid == 0)
	{
		char	   *tail = read_tail(s->log_path, 800);
		char	   *line = tail ? one_line(tail) : xstrdup("no server log");

		err_clear();
		err_set(DRB_ERR_PG, "the scratch server in '%s' did not start: %s", s->pgdata, line);
		free(tail);
		free(line);
		return -1;
	}
	return 0;
}

bool
rt_server_alive(const rt_server *s)
{
	if (s->pid <= 0)
		return false;
	return kill(s->pid, 0) == 0 || errno == EPERM;
}

PGconn *
rt_server_connect(rt_server *s, const char *db, char **why)
{
	const char *candidates[4];
	int			n = 0;
	char		port[16];

	*why = NULL;
	if (dl_pq_load() != 0)
	{
		*why = xstrdup(err_msg());
		return NULL;
	}
	snprintf(port, sizeof(port), "%d", s->port);
	if (s->role)
		candidates[n++] = s->role;
	candidates[n++] = s->user;
	if (strcmp(s->user, "postgres") != 0)
		candidates[n++] = "postgres";
	for (int i = 0; i < n; i++)
	{
		const char *keys[] = {"host", "port", "user", "dbname", "connect_timeout",
		"application_name", NULL};
		const char *values[] = {s->scratch, port, candidates[i], db, "2",
		"drbackup-restore-test", NULL};
		PGconn	   *conn = PQconnectdbParams(keys, values, 0);
		const char *msg;

		if (conn && PQstatus(conn) == CONNECTION_OK)
		{
			if (s->role == NULL || strcmp(s->role, candidates[i]) != 0)
			{
				free(s->role);
				s->role = xstrdup(candidates[i]);
			}
			return conn;
		}
		msg = conn ? PQerrorMessage(conn) : "out of memory";
		free(*why);
		*why = one_line(msg);
		PQfinish(conn);
		/* another role only when this one does not exist */
		if (strstr(msg, "does not exist") == NULL || strstr(msg, "role") == NULL)
			break;
	}
	return NULL;
}

int
rt_server_stop(rt_server *s, bool *clean)
{
	const char *args[] = {"stop", "-D", s->pgdata, "-m", "fast", "-w", "-t", "120", "-s", NULL};
	int			status = -1;
	char	   *output = NULL;

	*clean = false;
	if (!rt_server_alive(s))
	{
		s->pid = 0;
		return 0;
	}
	if (rt_run(s, "pg_ctl", args, 150, &status, &output) == 0 && status == 0)
		*clean = true;
	else
		log_warn("pg_ctl stop of the scratch server (pid %d) failed: %s; killing it",
				 (int) s->pid, output ? output : err_msg());
	free(output);
	err_clear();
	for (int sig = 0; sig < 2 && rt_server_alive(s); sig++)
	{
		kill(s->pid, sig == 0 ? SIGQUIT : SIGKILL);
		for (int i = 0; i < 100 && rt_server_alive(s); i++)
			sleep_ms(100);
	}
	if (rt_server_alive(s))
		return err_set(DRB_ERR_PG, "unable to stop the scratch server (pid %d) in '%s'",
					   (int) s->pid, s->pgdata);
	s->pid = 0;
	return 0;
}

int
rt_server_drop_target(rt_server *s)
{
	char	   *path = xasprintf("%s/postgresql.auto.conf", s->pgdata);
	char	   *tmp = xasprintf("%s/postgresql.auto.conf.drbtmp", s->pgdata);
	char	   *old = read_tail(path, LOG_READ_MAX);
	buf_t		b;
	int			rc = -1;

	buf_init(&b);
	if (old == NULL)
		goto out;
	for (const char *p = old; *p;)
	{
		size_t		len = strcspn(p, "\n");
		const char *q = p;

		while (*q == ' ' || *q == '\t')
			q++;
		if (strncasecmp(q, "recovery_target", 15) == 0)
			buf_append_str(&b, "# removed by drbackup restore-test (recover to the end): ");
		buf_append(&b, p, len);
		buf_append_str(&b, "\n");
		p += len;
		if (*p == '\n')
			p++;
	}
	if (write_text(tmp, (const char *) buf_cstr(&b), O_TRUNC, 0600) != 0)
		goto out;
	if ((s->switch_user && chown(tmp, s->uid, s->gid) != 0) || rename(tmp, path) != 0)
	{
		err_set(DRB_ERR_STORAGE, "unable to replace '%s': %m", path);
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	buf_free(&b);
	free(old);
	free(path);
	free(tmp);
	return rc;
}

void
rt_server_free(rt_server *s, bool keep)
{
	if (s->scratch && !keep && remove_tree(s->scratch) != 0)
	{
		log_warn("%s", err_msg());
		err_clear();
	}
	free(s->scratch);
	free(s->pgdata);
	free(s->tablespaces);
	free(s->log_path);
	free(s->bin);
	free(s->user);
	free(s->role);
	memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------------------------------
 * The server log
 * ------------------------------------------------------------------------------------- */

static bool
digits(const char **p, int n, int *out)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

bool
rt_parse_pg_time(const char *text, int64_t *us)
{
	const char *p = text;
	struct tm	tm;
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				oh = 0,
				om = 0,
				os = 0,
				sign = 1;
	int64_t		frac = 0;
	int			nfrac = 0;

	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
		!digits(&p, 2, &d) || *p++ != ' ' || !digits(&p, 2, &h) || *p++ != ':' ||
		!digits(&p, 2, &mi) || *p++ != ':' || !digits(&p, 2, &sec))
		return false;
	if (*p == '.')
	{
		p++;
		while (*p >= '0' && *p <= '9')
		{
			if (nfrac < 6)
			{
				frac = frac * 10 + (*p - '0');
				nfrac++;
			}
			p++;
		}
		for (; nfrac < 6; nfrac++)
			frac *= 10;
	}
	if (*p == '+' || *p == '-')
	{
		sign = *p++ == '-' ? -1 : 1;
		if (!digits(&p, 2, &oh))
			return false;
		if (*p == ':' && (p++, !digits(&p, 2, &om)))
			return false;
		if (*p == ':' && (p++, !digits(&p, 2, &os)))
			return false;
	}
	else
		return false;			/* PostgreSQL always prints the offset */
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*us = ((int64_t) timegm(&tm) - sign * (int64_t) (oh * 3600 + om * 60 + os)) * 1000000 + frac;
	return true;
}

void
rt_format_us(int64_t us, char *out, size_t outlen)
{
	time_t		t = (time_t) (us / 1000000);
	struct tm	tm;

	if (gmtime_r(&t, &tm) == NULL)
	{
		snprintf(out, outlen, "@%" PRId64, us);
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (us % 1000000));
}

static void
keep_line(char **slot, const char *line, size_t len)
{
	free(*slot);
	*slot = xstrndup(line, len);
}

int
rt_recovery_log_read(const rt_server *s, rt_recovery_log *out)
{
	char	   *text = read_tail(s->log_path, LOG_READ_MAX);

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return -1;
	for (const char *p = text; *p;)
	{
		size_t		len = strcspn(p, "\n");
		char	   *line = xstrndup(p, len);
		const char *m;

		if ((m = strstr(line, "recovery stopping before commit of transaction ")) != NULL ||
			(m = strstr(line, "recovery stopping before abort of transaction ")) != NULL)
		{
			bool		abort_ = strstr(line, "before abort") != NULL;
			const char *q = strstr(m, "transaction ") + strlen("transaction ");
			char	   *end;
			unsigned long xid = strtoul(q, &end, 10);
			int64_t		us;

			if (strncmp(end, ", time ", 7) == 0 && rt_parse_pg_time(end + 7, &us))
			{
				out->stopped = true;
				out->stopped_abort = abort_;
				out->stop_xid = (uint32_t) xid;
				out->stop_time_us = us;
			}
		}
		else if ((m = strstr(line, "redo done at ")) != NULL)
		{
			unsigned int hi,
						lo;

			if (sscanf(m + strlen("redo done at "), "%X/%X", &hi, &lo) == 2)
			{
				out->redo_done = true;
				out->redo_done_lsn = ((uint64_t) hi << 32) | lo;
			}
		}
		else if (strstr(line, "recovery ended before configured recovery target was reached"))
			out->target_not_reached = true;
		else if ((m = strstr(line, "selected new timeline ID: ")) != NULL)
			out->new_timeline = (uint32_t) strtoul(m + strlen("selected new timeline ID: "),
													NULL, 10);
		if (strstr(line, "FATAL:  ") || strstr(line, "PANIC:  "))
			keep_line(&out->fatal, line, len);
		if (strstr(line, "drbackup: ERROR: "))
			keep_line(&out->tool_error, strstr(line, "drbackup: ERROR: "),
					  strlen(strstr(line, "drbackup: ERROR: ")));
		free(line);
		p += len;
		if (*p == '\n')
			p++;
	}
	free(text);
	return 0;
}

void
rt_recovery_log_free(rt_recovery_log *l)
{
	free(l->fatal);
	free(l->tool_error);
	memset(l, 0, sizeof(*l));
}
