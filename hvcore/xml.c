#include "hvcore/xml-private.h"

#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlsave.h>

#include "hvcore/error.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlParserCtxt, xmlFreeParserCtxt)

xmlNodePtr hv_xml_add(xmlNodePtr parent, xmlNsPtr ns, const char *name, const char *text)
{
    /* xmlNewChild's content argument is parsed for entity references. */
    xmlNodePtr node = xmlNewChild(parent, ns, BAD_CAST name, NULL);

    if (text)
        xmlNodeAddContent(node, BAD_CAST text);
    return node;
}

void hv_xml_set(xmlNodePtr node, const char *name, const char *value)
{
    xmlNewProp(node, BAD_CAST name, BAD_CAST value);
}

xmlDocPtr hv_xml_new_doc(const char *name, xmlNodePtr *root)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");

    *root = xmlNewDocNode(doc, NULL, BAD_CAST name, NULL);
    xmlDocSetRootElement(doc, *root);
    return doc;
}

char *hv_xml_serialize(xmlDocPtr doc, const char *what, GError **error)
{
    g_autoptr(xmlBuffer) buffer = xmlBufferCreate();
    xmlSaveCtxtPtr save =
        buffer ? xmlSaveToBuffer(buffer, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL) : NULL;

    if (!save || xmlSaveDoc(save, doc) < 0) {
        if (save)
            xmlSaveClose(save);
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot serialize the %s XML", what);
        return NULL;
    }
    xmlSaveClose(save); /* flushes into the buffer */
    return g_strndup((const char *)xmlBufferContent(buffer), (gsize)xmlBufferLength(buffer));
}

xmlDocPtr hv_xml_read(const char *xml, const char *root_name, const char *what, GError **error)
{
    g_autoptr(xmlParserCtxt) parser = xmlNewParserCtxt();
    xmlDocPtr doc;
    xmlNodePtr root;

    if (!parser) {
        g_set_error(error, HV_ERROR, HV_ERROR_FAILED, "cannot allocate an XML parser");
        return NULL;
    }
    doc = xmlCtxtReadMemory(parser, xml, (int)strlen(xml), NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *xml_error = xmlCtxtGetLastError(parser);
        g_autofree char *detail =
            xml_error && xml_error->message ? g_strstrip(g_strdup(xml_error->message)) : NULL;

        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "%s XML does not parse: %s", what,
                    detail ? detail : "unknown error");
        return NULL;
    }
    /* libvirt never writes a DTD; one here could only be declaring entities. */
    root = xmlDocGetRootElement(doc);
    if (doc->intSubset || doc->extSubset || !root || root->ns ||
        !xmlStrEqual(root->name, BAD_CAST root_name)) {
        g_set_error(error, HV_ERROR, HV_ERROR_INVALID, "%s XML is not a <%s> without a DTD", what,
                    root_name);
        xmlFreeDoc(doc);
        return NULL;
    }
    return doc;
}

char *hv_xml_string(xmlXPathContextPtr ctx, const char *expr)
{
    g_autoptr(xmlXPathObject) value = xmlXPathEvalExpression(BAD_CAST expr, ctx);

    if (!value || value->type != XPATH_STRING || !value->stringval || !*value->stringval)
        return NULL;
    return g_strdup((const char *)value->stringval);
}
