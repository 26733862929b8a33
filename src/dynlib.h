/*
 * dynlib.h — libraries drbackup loads only when a command needs them.
 *
 * libcurl (S3 and GCS repositories), libpq (commands that talk to PostgreSQL), libxml2
 * (S3 answers) and libarchive (export) pull some thirty further shared libraries in with
 * them (GnuTLS, Kerberos, LDAP, ICU, ...). Linked the ordinary way, the dynamic loader
 * maps and relocates all of them at every start: about 6 ms, a fifth of an archive-push
 * or archive-get to a posix repository, which PostgreSQL runs once per WAL segment. So
 * drbackup does not link them: each is opened with dlopen() by its SONAME the first time
 * a command needs it, and its functions are called through a table (dl_curl.h, dl_pq.h,
 * dl_xml.h, dl_archive.h: include one of those instead of the library's header; it maps
 * the library's function names onto the table, so the calling code reads as usual).
 *
 * dl_<lib>_load() must run before the first call into the library (the modules' entry
 * points do it: http_client_new, pg_connect, rt_server_connect, storage_s3_new,
 * s3_xml_parse, export). It is thread-safe and cheap after the first call. A missing or
 * incomplete library is DRB_ERR_CONFIG naming the file, what needs it and the Debian
 * package that provides it.
 */
#ifndef DRB_DYNLIB_H
#define DRB_DYNLIB_H

#include <stddef.h>

typedef struct dynlib_sym
{
	const char *name;
	void	  **slot;			/* where the address goes (a member of the table) */
} dynlib_sym;

typedef struct dynlib
{
	const char *soname;			/* e.g. "libcurl.so.4" */
	const char *needed_for;		/* for the error message */
	const char *package;		/* Debian package providing it */
	const dynlib_sym *syms;
	size_t		nsyms;
	int			state;			/* 0 not tried, 1 loaded, -1 failed */
	char	   *why;			/* the failure, repeated by later calls */
} dynlib;

/* Open lib and fill its table (once); 0, or -1 + err. */
int			dynlib_load(dynlib *lib);

int			dl_curl_load(void);
int			dl_pq_load(void);
int			dl_xml_load(void);
int			dl_archive_load(void);

#endif
