/* The one place where hvcore's types and the api/ wire models meet. */
#pragma once

#include "api/host.h"
#include "hvcore/probe.h"

ApiHost *convert_host_report(const HvHostReport *report);
