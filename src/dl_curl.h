/*
 * dl_curl.h — libcurl through dynlib.h: include this instead of <curl/curl.h>, and call
 * dl_curl_load() before the first curl_* call (http_client_new does).
 */
#ifndef DRB_DL_CURL_H
#define DRB_DL_CURL_H

/* curl's type-checking macros would wrap curl_easy_setopt/getinfo around the table */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

#include "dynlib.h"

typedef struct dl_curl_api
{
	CURLcode	(*global_init) (long flags);
	CURL	   *(*easy_init) (void);
	CURLcode	(*easy_setopt) (CURL *curl, CURLoption option,...);
	CURLcode	(*easy_perform) (CURL *curl);
	void		(*easy_reset) (CURL *curl);
	void		(*easy_cleanup) (CURL *curl);
	CURLcode	(*easy_getinfo) (CURL *curl, CURLINFO info,...);
	const char *(*easy_strerror) (CURLcode code);
	struct curl_slist *(*slist_append) (struct curl_slist *list, const char *s);
	void		(*slist_free_all) (struct curl_slist *list);
} dl_curl_api;

extern dl_curl_api dl_curl;

/* curl.h defines these two as macros (argument-count checks) even without type checks */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_global_init	(dl_curl.global_init)
#define curl_easy_init		(dl_curl.easy_init)
#define curl_easy_setopt	(dl_curl.easy_setopt)
#define curl_easy_perform	(dl_curl.easy_perform)
#define curl_easy_reset		(dl_curl.easy_reset)
#define curl_easy_cleanup	(dl_curl.easy_cleanup)
#define curl_easy_getinfo	(dl_curl.easy_getinfo)
#define curl_easy_strerror	(dl_curl.easy_strerror)
#define curl_slist_append	(dl_curl.slist_append)
#define curl_slist_free_all (dl_curl.slist_free_all)

#endif
