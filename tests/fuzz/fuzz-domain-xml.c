/* hvcore's parsers of domain XML, which comes from libvirt and so, for a
 * domain that migrated in, from another host: hv_domain_parse_identity,
 * hv_domain_parse_boot_files, hv_migrate_check_devices and
 * hv_migrate_rewrite_xml. */
#include <string.h>

#include "hvcore/domain.h"
#include "hvcore/error.h"
#include "hvcore/migrate.h"
#include "tests/fuzz/fuzz-util.h"

/* What a migration to another host rewrites (as in tests/unit/test-migrate.c):
 * no value is also a key, so a second pass must change nothing. */
static const char *const paths[][2] = {
    {"/s/a/pools/images/k", "/s/b&c/pools/images/k"},
    {"/s/a/pools/images/i", "/s/b/pools/images/i"},
    {"/s/a/pools/disks/d", "/s/b/pools/disks/d"},
    {"/s/a/pools/images/base", "/s/b/pools/images/base"},
    {"/s/a/consoles/x.log", "/s/b/consoles/x.log"},
};

static void check_refusal(const char *what, const GError *error)
{
    FUZZ_CHECK(error != NULL && error->domain == HV_ERROR && error->message != NULL,
               "%s failed without an HV_ERROR", what);
}

static void check_rewrite(const char *xml)
{
    g_autoptr(GHashTable) table = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) empty = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GError) error = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(paths); i++)
        g_hash_table_insert(table, (gpointer)paths[i][0], (gpointer)paths[i][1]);
    g_autofree char *once = hv_migrate_rewrite_xml(xml, table, &error);
    if (once == NULL) {
        check_refusal("rewrite", error);
        return;
    }
    /* What it wrote must read back, and hold no mapped path any more. */
    g_autofree char *again = hv_migrate_rewrite_xml(once, table, &error);
    FUZZ_CHECK(again != NULL, "rewrite refuses its own output (%s):\n%s", error->message, once);
    g_autofree char *plain = hv_migrate_rewrite_xml(once, empty, &error);
    FUZZ_CHECK(plain != NULL, "rewrite refuses its own output:\n%s", once);
    FUZZ_CHECK(g_str_equal(again, plain), "a second rewrite still changed something:\n%s\n%s",
               plain, again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers take C strings, as libvirt hands them over. */
    g_autofree char *xml = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;

    g_autoptr(HvStackIdentity) identity = hv_domain_parse_identity(xml, &error);
    if (identity != NULL)
        FUZZ_CHECK(identity->id != NULL && identity->name != NULL && identity->tenant != NULL,
                   "identity without id, name or tenant");
    else
        check_refusal("parse_identity", error);
    g_clear_error(&error);

    g_autoptr(HvBootFiles) files = hv_domain_parse_boot_files(xml, &error);
    if (files == NULL)
        check_refusal("parse_boot_files", error);
    g_clear_error(&error);

    if (!hv_migrate_check_devices(xml, &error))
        check_refusal("check_devices", error);
    g_clear_error(&error);

    check_rewrite(xml);
    return 0;
}
