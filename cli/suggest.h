/* "Did you mean ...?": the candidate closest to a mistyped word. */
#pragma once

#include <glib.h>

/* Edit distance with adjacent transpositions ("stakc" is 1 from "stack"). */
guint suggest_distance(const char *a, const char *b);

/* The candidate of @candidates (NULL-terminated) that @word most likely
 * meant: the closest within a distance that grows with the word's length
 * (1 up to 4 characters, then 2, then 3 from 9), or the only one @word is a
 * prefix of; NULL when none is close enough.  Ties go to the first. */
const char *suggest_closest(const char *word, const char *const *candidates);
