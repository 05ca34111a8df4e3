#include "hvcore/init.h"

#include <libxml/parser.h>

void hv_init(void)
{
    xmlInitParser();
}
