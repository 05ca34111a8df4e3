/* Process-wide set-up of the libraries behind hvcore, so that callers need
 * not include them. */
#pragma once

/* Initialises libxml2's parser: call once in the main thread before any
 * thread parses or builds XML (domain, storage and migration code do). */
void hv_init(void);
