/* Helpers shared by the libFuzzer targets: a failed check prints what went
 * wrong and aborts, which libFuzzer reports as a crash with the input. */
#pragma once

#include <glib.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/json.h"

#define FUZZ_FAIL(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz check failed at %s:%d: ", __FILE__, __LINE__);                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FUZZ_FAIL(__VA_ARGS__);                                                                \
    } while (0)

/* libFuzzer's entry point; declared here for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static inline const char *fuzz_json_text(json_object *value)
{
    return json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN);
}

/* Two encodings must be the same JSON value. */
static inline void fuzz_check_json_equal(const char *what, json_object *a, json_object *b)
{
    if (!json_object_equal(a, b))
        FUZZ_FAIL("%s: %s != %s", what, fuzz_json_text(a), fuzz_json_text(b));
}
