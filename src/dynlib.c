/*
 * dynlib.c — loading libcurl, libpq, libxml2 and libarchive on first use (dynlib.h).
 *
 * Each library is a table of its functions' names and the slots of its dl_<lib> table;
 * dynlib_load opens the SONAME (RTLD_NOW: a missing symbol is an error here, not a crash
 * later) and fills every slot, under one mutex, once.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "dl_archive.h"
#include "dl_curl.h"
#include "dl_pq.h"
#include "dl_xml.h"
#include "error.h"
#include "mem.h"

dl_curl_api dl_curl;
dl_pq_api	dl_pq;
dl_xml_api	dl_xml;
dl_archive_api dl_archive;

static pthread_mutex_t dynlib_lock = PTHREAD_MUTEX_INITIALIZER;

int
dynlib_load(dynlib *lib)
{
	int			state = __atomic_load_n(&lib->state, __ATOMIC_ACQUIRE);
	void	   *h;

	if (state == 0)
	{
		pthread_mutex_lock(&dynlib_lock);
		if (lib->state == 0)
		{
			h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
			state = 1;
			if (h == NULL)
			{
				const char *e = dlerror();

				lib->why = xasprintf("%s", e ? e : "not found");
				state = -1;
			}
			for (size_t i = 0; state == 1 && i < lib->nsyms; i++)
				if ((*lib->syms[i].slot = dlsym(h, lib->syms[i].name)) == NULL)
				{
					lib->why = xasprintf("it has no symbol %s", lib->syms[i].name);
					state = -1;
				}
			/* a failed library stays mapped if it opened: harmless, and never retried */
			__atomic_store_n(&lib->state, state, __ATOMIC_RELEASE);
		}
		state = lib->state;
		pthread_mutex_unlock(&dynlib_lock);
	}
	if (state < 0)
		return err_set(DRB_ERR_CONFIG, "unable to load %s, needed for %s (Debian package %s): %s",
					   lib->soname, lib->needed_for, lib->package, lib->why);
	return 0;
}

#define SYM(table, member, name) {name, (void **) &table.member}

static const dynlib_sym curl_syms[] = {
	SYM(dl_curl, global_init, "curl_global_init"),
	SYM(dl_curl, easy_init, "curl_easy_init"),
	SYM(dl_curl, easy_setopt, "curl_easy_setopt"),
	SYM(dl_curl, easy_perform, "curl_easy_perform"),
	SYM(dl_curl, easy_reset, "curl_easy_reset"),
	SYM(dl_curl, easy_cleanup, "curl_easy_cleanup"),
	SYM(dl_curl, easy_getinfo, "curl_easy_getinfo"),
	SYM(dl_curl, easy_strerror, "curl_easy_strerror"),
	SYM(dl_curl, slist_append, "curl_slist_append"),
	SYM(dl_curl, slist_free_all, "curl_slist_free_all"),
};

static const dynlib_sym pq_syms[] = {
	SYM(dl_pq, connectdbParams, "PQconnectdbParams"),
	SYM(dl_pq, status, "PQstatus"),
	SYM(dl_pq, errorMessage, "PQerrorMessage"),
	SYM(dl_pq, finish, "PQfinish"),
	SYM(dl_pq, serverVersion, "PQserverVersion"),
	SYM(dl_pq, exec, "PQexec"),
	SYM(dl_pq, execParams, "PQexecParams"),
	SYM(dl_pq, resultStatus, "PQresultStatus"),
	SYM(dl_pq, resultErrorMessage, "PQresultErrorMessage"),
	SYM(dl_pq, ntuples, "PQntuples"),
	SYM(dl_pq, nfields, "PQnfields"),
	SYM(dl_pq, getvalue, "PQgetvalue"),
	SYM(dl_pq, getisnull, "PQgetisnull"),
	SYM(dl_pq, clear, "PQclear"),
};

static const dynlib_sym xml_syms[] = {
	SYM(dl_xml, initParser, "xmlInitParser"),
	SYM(dl_xml, readMemory, "xmlReadMemory"),
	SYM(dl_xml, docGetRootElement, "xmlDocGetRootElement"),
	SYM(dl_xml, nodeGetContent, "xmlNodeGetContent"),
	SYM(dl_xml, freeDoc, "xmlFreeDoc"),
	SYM(dl_xml, free_var, "xmlFree"),
};

static const dynlib_sym archive_syms[] = {
	SYM(dl_archive, write_new, "archive_write_new"),
	SYM(dl_archive, write_add_filter_zstd, "archive_write_add_filter_zstd"),
	SYM(dl_archive, write_set_format_pax_restricted, "archive_write_set_format_pax_restricted"),
	SYM(dl_archive, write_open_fd, "archive_write_open_fd"),
	SYM(dl_archive, write_header, "archive_write_header"),
	SYM(dl_archive, write_data, "archive_write_data"),
	SYM(dl_archive, write_close, "archive_write_close"),
	SYM(dl_archive, write_fail, "archive_write_fail"),
	SYM(dl_archive, write_free, "archive_write_free"),
	SYM(dl_archive, error_string, "archive_error_string"),
	SYM(dl_archive, entry_new, "archive_entry_new"),
	SYM(dl_archive, entry_free, "archive_entry_free"),
	SYM(dl_archive, entry_set_pathname, "archive_entry_set_pathname"),
	SYM(dl_archive, entry_set_filetype, "archive_entry_set_filetype"),
	SYM(dl_archive, entry_set_perm, "archive_entry_set_perm"),
	SYM(dl_archive, entry_set_size, "archive_entry_set_size"),
	SYM(dl_archive, entry_set_mtime, "archive_entry_set_mtime"),
	SYM(dl_archive, entry_set_uid, "archive_entry_set_uid"),
	SYM(dl_archive, entry_set_gid, "archive_entry_set_gid"),
};

#define NSYMS(a) (sizeof(a) / sizeof((a)[0]))

static dynlib curl_lib = {"libcurl.so.4", "s3 and gcs repositories", "libcurl4",
curl_syms, NSYMS(curl_syms)};
static dynlib pq_lib = {"libpq.so.5", "connecting to PostgreSQL", "libpq5",
pq_syms, NSYMS(pq_syms)};
static dynlib xml_lib = {"libxml2.so.2", "s3 repositories", "libxml2",
xml_syms, NSYMS(xml_syms)};
static dynlib archive_lib = {"libarchive.so.13", "export", "libarchive13",
archive_syms, NSYMS(archive_syms)};

int
dl_curl_load(void)
{
	return dynlib_load(&curl_lib);
}

int
dl_pq_load(void)
{
	return dynlib_load(&pq_lib);
}

int
dl_xml_load(void)
{
	return dynlib_load(&xml_lib);
}

int
dl_archive_load(void)
{
	return dynlib_load(&archive_lib);
}
