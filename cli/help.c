#include "cli/help.h"

#include <string.h>

#define HELP_WIDTH 79

/* One form of a synopsis after @lead ("usage: turtlectl stack create "),
 * wrapped at spaces outside brackets and parentheses, so that an optional
 * group stays on one line; continuation lines are indented by @indent. */
static void print_form(FILE *out, const char *lead, const char *form, gsize indent)
{
    gsize column = strlen(lead);
    int depth = 0;
    const char *word = form;

    fputs(lead, out);
    while (*word != '\0') {
        /* The next unit: up to a space at depth 0. */
        const char *end = word;
        for (; *end != '\0'; end++) {
            if (*end == '[' || *end == '(')
                depth++;
            else if ((*end == ']' || *end == ')') && depth > 0)
                depth--;
            else if (*end == ' ' && depth == 0)
                break;
        }
        /* An option and its value ("--to PEER") wrap as one. */
        if (word[0] == '-' && *end == ' ' && end[1] != '\0' && strchr("-[(|", end[1]) == NULL) {
            const char *value_end = end + 1;
            while (*value_end != '\0' && *value_end != ' ')
                value_end++;
            end = value_end;
        }
        gsize len = (gsize)(end - word);
        if (word != form && column + 1 + len > HELP_WIDTH) {
            fprintf(out, "\n%*s", (int)indent, "");
            column = indent;
        } else if (word != form) {
            fputc(' ', out);
            column++;
        }
        fwrite(word, 1, len, out);
        column += len;
        word = *end == ' ' ? end + 1 : end;
    }
    fputc('\n', out);
}

void help_usage(FILE *out, const char *words, const CmdVerb *verb, gboolean first)
{
    if (verb->verbs != NULL) {
        for (guint i = 0; verb->verbs[i].name != NULL; i++) {
            g_autofree char *sub = g_strdup_printf("%s %s", words, verb->verbs[i].name);
            help_usage(out, sub, &verb->verbs[i], first && i == 0);
        }
        return;
    }
    /* A verb without arguments has one form, empty (g_strsplit gives none). */
    const char *synopsis = verb->synopsis != NULL && *verb->synopsis != '\0' ? verb->synopsis : " ";
    g_auto(GStrv) forms = g_strsplit(synopsis, "\n", -1);
    for (guint i = 0; forms[i] != NULL; i++) {
        g_strstrip(forms[i]);
        g_autofree char *lead =
            g_strdup_printf("%sturtlectl %s%s", first && i == 0 ? "usage: " : "       ", words,
                            *forms[i] != '\0' ? " " : "");
        print_form(out, lead, forms[i], strlen("usage: turtlectl ") + strlen(words) + 1);
    }
}

void help_usage_all(FILE *out, const char *words, const CmdVerb *verbs)
{
    for (guint i = 0; verbs[i].name != NULL; i++) {
        g_autofree char *verb_words = g_strdup_printf("%s %s", words, verbs[i].name);
        help_usage(out, verb_words, &verbs[i], i == 0);
    }
}

/* @text with every line indented by @indent (a block of prose). */
static void print_block(FILE *out, const char *text)
{
    fputs(text, out);
    if (*text != '\0' && text[strlen(text) - 1] != '\n')
        fputc('\n', out);
}

void help_verbs(FILE *out, const char *words, const char *summary, const CmdVerb *verbs,
                const char *notes)
{
    int width = 0;

    help_usage_all(out, words, verbs);
    if (summary != NULL)
        fprintf(out, "\n%c%s.\n", g_ascii_toupper(summary[0]), summary + 1);
    fputs("\nVerbs:\n", out);
    for (guint i = 0; verbs[i].name != NULL; i++)
        width = MAX(width, (int)strlen(verbs[i].name));
    for (guint i = 0; verbs[i].name != NULL; i++)
        fprintf(out, "  %-*s  %s\n", width, verbs[i].name,
                verbs[i].summary != NULL ? verbs[i].summary : "");
    if (notes != NULL) {
        fputc('\n', out);
        print_block(out, notes);
    }
    fprintf(out,
            "\n\"turtlectl help %s VERB\" shows a verb's options;\n\"turtlectl help\" the "
            "global ones.\n",
            words);
}

void help_verb(FILE *out, const char *words, const CmdVerb *verb)
{
    if (verb->verbs != NULL) {
        help_verbs(out, words, verb->summary, verb->verbs, verb->help);
        return;
    }
    help_usage(out, words, verb, TRUE);
    if (verb->summary != NULL)
        fprintf(out, "\n%c%s.\n", g_ascii_toupper(verb->summary[0]), verb->summary + 1);
    if (verb->help != NULL) {
        fputc('\n', out);
        print_block(out, verb->help);
    }
    fputs("\nGlobal options (--socket, --url, --remote, --token, --cacert, --format):\n"
          "turtlectl help.\n",
          out);
}

const CmdVerb *help_find_verb(const CmdVerb *verbs, const char *name)
{
    for (guint i = 0; verbs[i].name != NULL; i++) {
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    }
    return NULL;
}

const char **help_verb_names(const CmdVerb *verbs)
{
    guint n = 0;
    while (verbs[n].name != NULL)
        n++;
    const char **names = g_new0(const char *, n + 1);
    for (guint i = 0; i < n; i++)
        names[i] = verbs[i].name;
    return names;
}
