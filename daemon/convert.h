/* The one place where hvcore's types and the api/ wire models meet. */
#pragma once

#include "api/host.h"
#include "api/stack.h"
#include "hvcore/domain.h"
#include "hvcore/probe.h"

ApiHost *convert_host_report(const HvHostReport *report);

/* The hvcore spec of @stack's domain: identity, size, cpu, iommu, cmdline.
 * The caller adds what only the host knows: boot file paths, the console
 * log, and the record for <metadata>. */
HvStackSpec *convert_stack_spec(const ApiStack *stack);
