/*
 * storage_s3_xml.c — the XML of S3's request and answer bodies (see storage_s3.intern.h):
 * escaping for the bodies drbackup sends, and reading the few elements it needs from
 * the answers. Parsing never touches the network and is quiet about malformed input
 * (the caller reports what it expected).
 */
#include <string.h>


#include "storage_s3.intern.h"

void
s3_xml_escape_append(buf_t *b, const char *s)
{
	for (; *s; s++)
	{
		switch (*s)
		{
			case '&':
				buf_append_str(b, "&amp;");
				break;
			case '<':
				buf_append_str(b, "&lt;");
				break;
			case '>':
				buf_append_str(b, "&gt;");
				break;
			case '"':
				buf_append_str(b, "&quot;");
				break;
			case '\'':
				buf_append_str(b, "&apos;");
				break;
			default:
				buf_append(b, s, 1);
		}
	}
}

xmlDocPtr
s3_xml_parse(const buf_t *b)
{
	if (b->len == 0 || b->len > INT32_MAX || dl_xml_load() != 0)
		return NULL;
	return xmlReadMemory((const char *) b->data, (int) b->len, NULL, NULL,
						 XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

bool
s3_xml_is(xmlNodePtr n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

/* The first child element name of n, NULL when there is none. */
static xmlNodePtr
xml_child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (s3_xml_is(c, name))
			return c;
	return NULL;
}

char *
s3_xml_child_text(xmlNodePtr n, const char *name)
{
	xmlNodePtr	c = xml_child(n, name);
	xmlChar    *t;
	char	   *r;

	if (c == NULL)
		return NULL;
	t = xmlNodeGetContent(c);
	r = xstrdup(t ? (const char *) t : "");
	xmlFree(t);
	return r;
}

void
s3_error_fields(const http_response *resp, char **code, char **message)
{
	xmlDocPtr	doc = s3_xml_parse(&resp->body);
	xmlNodePtr	root = doc ? xmlDocGetRootElement(doc) : NULL;

	*code = NULL;
	*message = NULL;
	if (s3_xml_is(root, "Error"))
	{
		*code = s3_xml_child_text(root, "Code");
		*message = s3_xml_child_text(root, "Message");
	}
	if (doc)
		xmlFreeDoc(doc);
}
