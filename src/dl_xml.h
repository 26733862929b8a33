/*
 * dl_xml.h — libxml2 through dynlib.h: include this instead of <libxml/parser.h> and
 * <libxml/tree.h>, and call dl_xml_load() before the first xml* call (storage_s3_new and
 * s3_xml_parse do).
 */
#ifndef DRB_DL_XML_H
#define DRB_DL_XML_H

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "dynlib.h"

typedef struct dl_xml_api
{
	void		(*initParser) (void);
	xmlDocPtr	(*readMemory) (const char *buffer, int size, const char *URL,
							   const char *encoding, int options);
	xmlNodePtr	(*docGetRootElement) (const xmlDoc *doc);
	xmlChar    *(*nodeGetContent) (const xmlNode *cur);
	void		(*freeDoc) (xmlDocPtr cur);
	xmlFreeFunc *free_var;		/* libxml2's variable xmlFree (the function to free with) */
} dl_xml_api;

extern dl_xml_api dl_xml;

#undef xmlFree
#define xmlInitParser		(dl_xml.initParser)
#define xmlReadMemory		(dl_xml.readMemory)
#define xmlDocGetRootElement (dl_xml.docGetRootElement)
#define xmlNodeGetContent	(dl_xml.nodeGetContent)
#define xmlFreeDoc			(dl_xml.freeDoc)
#define xmlFree				(*dl_xml.free_var)

#endif
