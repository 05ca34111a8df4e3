/* libxml2 helpers shared by hvcore's XML builders and readers.  Only
 * hvcore's .c files (and their unit tests) include this. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

/* A child element of @parent in @ns (may be NULL).  Text goes in through
 * xmlNodeAddContent, which escapes it; NULL text adds none. */
xmlNodePtr hv_xml_add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text);
/* An attribute, stored as literal text (xmlNewProp). */
void hv_xml_set(xmlNodePtr node, const char *name, const char *value);
/* A new document whose root is @name; *@root gets the root. */
xmlDocPtr hv_xml_new_doc(const char *name, xmlNodePtr *root);
/* @doc as UTF-8 text without an XML declaration, indented;
 * HV_ERROR_FAILED naming @what when it cannot. */
char *hv_xml_serialize(xmlDocPtr doc, const char *what, GError **error);
/* Parses @xml safely (no network, no entities, no DTD, quiet) and checks
 * that its root is the un-namespaced element @root_name; HV_ERROR_INVALID
 * naming @what otherwise. */
xmlDocPtr hv_xml_read(const char *xml, const char *root_name, const char *what, GError **error);
/* The string value of the XPath expression @expr (string(...)) at @ctx's
 * node, or NULL when empty. */
char *hv_xml_string(xmlXPathContextPtr ctx, const char *expr);
