#include "cli/complete.h"

#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/help.h"
#include "cli/remotes.h"

/* Where the names of one kind come from: GET @path, the string @key of
 * each item of the answer's @member.  The kind is @noun's own (its verbs'
 * NAME or ID) and @placeholder in any synopsis (NULL: no other name). */
typedef struct {
    const char *noun;
    const char *placeholder;
    const char *path;
    const char *member;
    const char *key;
} NameSource;

/* The paths and members of the CmdList definitions in cli/cmd-*.c;
 * operations are listed by GET /v1/operations where turtled has it (an
 * older turtled's 404 or 405 just offers no ids). */
static const NameSource name_sources[] = {
    {"stack", "STACK", "/v1/stacks", "stacks", "name"},
    {"image", "IMAGE", "/v1/images", "images", "name"},
    {"tenant", "TENANT", "/v1/tenants", "tenants", "name"},
    {"peer", "PEER", "/v1/peers", "peers", "name"},
    {"network", "NETWORK", "/v1/networks", "networks", "name"},
    {"device-class", "CLASS", "/v1/device-classes", "device_classes", "name"},
    {"operation", NULL, "/v1/operations", "operations", "id"},
    /* No path: the remotes of the config files, not turtled's. */
    {"remote", "REMOTE", NULL, NULL, NULL},
};

/* ---- synopses ---------------------------------------------------------------------- */

/* An option of a synopsis: "--vcpus" and its value's placeholder "N" or its
 * choices "table|json" (NULL for a flag); the description is from the
 * verb's help, when it has a line for the option. */
typedef struct {
    char *name;
    char *value;
    char *description;
} SynOption;

static void syn_option_free(gpointer data)
{
    SynOption *option = data;
    g_free(option->name);
    g_free(option->value);
    g_free(option->description);
    g_free(option);
}

/* What a synopsis says: its options (every form's) and, for each form,
 * its positional placeholders in order. */
typedef struct {
    GPtrArray *options; /* SynOption */
    GPtrArray *forms;   /* a GPtrArray of placeholders (char *) per form */
} Synopsis;

static Synopsis *synopsis_new(void)
{
    Synopsis *syn = g_new0(Synopsis, 1);
    syn->options = g_ptr_array_new_with_free_func(syn_option_free);
    syn->forms = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    return syn;
}

static void synopsis_free(Synopsis *syn)
{
    if (syn == NULL)
        return;
    g_ptr_array_unref(syn->options);
    g_ptr_array_unref(syn->forms);
    g_free(syn);
}

static SynOption *synopsis_find_option(const Synopsis *syn, const char *name)
{
    for (guint i = 0; syn != NULL && i < syn->options->len; i++) {
        SynOption *option = g_ptr_array_index(syn->options, i);
        if (strcmp(option->name, name) == 0)
            return option;
    }
    return NULL;
}

/* "table|json|yaml|csv", "external": lower-case words are the values themselves. */
static gboolean value_is_choices(const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '|' && *p != '-')
            return FALSE;
    }
    return *value != '\0';
}

static gboolean choice_listed(const char *choices, const char *choice)
{
    g_auto(GStrv) listed = g_strsplit(choices, "|", -1);
    return g_strv_contains((const char *const *)listed, choice);
}

/* One more use of an option: the first gives its value; a later form that
 * names other choices ("--mode nat|isolated", "--mode external") adds them. */
static void synopsis_add_option(Synopsis *syn, const char *name, const char *value)
{
    SynOption *known = synopsis_find_option(syn, name);
    if (known == NULL) {
        SynOption *option = g_new0(SynOption, 1);
        option->name = g_strdup(name);
        option->value = g_strdup(value);
        g_ptr_array_add(syn->options, option);
        return;
    }
    if (known->value == NULL || value == NULL) {
        if (known->value == NULL)
            known->value = g_strdup(value);
        return;
    }
    if (value_is_choices(known->value) && value_is_choices(value) &&
        !choice_listed(known->value, value)) {
        char *merged = g_strconcat(known->value, "|", value, NULL);
        g_free(known->value);
        known->value = merged;
    }
}

/* A synopsis token without its brackets, parentheses and "...". */
static char *token_clean(const char *raw)
{
    const char *start = raw;
    while (*start == '[' || *start == '(')
        start++;
    gsize len = strlen(start);
    while (len > 0 && strchr("]).", start[len - 1]) != NULL)
        len--;
    return g_strndup(start, len);
}

/* "[--secure-boot]", "--disk IMAGE)": the group ends with the token. */
static gboolean token_closes(const char *raw)
{
    gsize len = strlen(raw);
    while (len > 0 && raw[len - 1] == '.')
        len--;
    return len > 0 && (raw[len - 1] == ']' || raw[len - 1] == ')');
}

/* One form: "--name VALUE" is an option with a value unless the option's
 * group closes or a new group, an option or "|" follows; other words are
 * positional placeholders. */
static void synopsis_add_form(Synopsis *syn, const char *form)
{
    g_auto(GStrv) raw = g_strsplit(form, " ", -1);
    GPtrArray *positional = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; raw[i] != NULL; i++) {
        g_autofree char *word = token_clean(raw[i]);
        if (*word == '\0' || strcmp(word, "|") == 0)
            continue;
        if (!g_str_has_prefix(word, "--")) {
            g_ptr_array_add(positional, g_steal_pointer(&word));
            continue;
        }
        g_autofree char *value = NULL;
        if (!token_closes(raw[i]) && raw[i + 1] != NULL && raw[i + 1][0] != '[' &&
            raw[i + 1][0] != '(') {
            value = token_clean(raw[i + 1]);
            if (*value == '\0' || *value == '-' || *value == '|')
                g_clear_pointer(&value, g_free);
            else
                i++;
        }
        synopsis_add_option(syn, word, value);
    }
    g_ptr_array_add(syn->forms, positional);
}

/* The descriptions of the options that @help has a line for:
 * "  --vcpus N          vCPUs (1-64)": what follows the first gap of two
 * spaces or more after the option. */
static void synopsis_describe(Synopsis *syn, const char *help)
{
    g_auto(GStrv) lines = g_strsplit(help != NULL ? help : "", "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *line = lines[i];
        while (*line == ' ')
            line++;
        if (!g_str_has_prefix(line, "--"))
            continue;
        g_autofree char *name = g_strndup(line, strcspn(line, " "));
        SynOption *option = synopsis_find_option(syn, name);
        const char *gap = strstr(line, "  ");
        if (option == NULL || option->description != NULL || gap == NULL)
            continue;
        while (*gap == ' ')
            gap++;
        if (*gap != '\0')
            option->description = g_strdup(gap);
    }
}

static Synopsis *synopsis_parse(const char *synopsis, const char *help)
{
    Synopsis *syn = synopsis_new();
    g_auto(GStrv) forms = g_strsplit(synopsis != NULL ? synopsis : "", "\n", -1);
    for (guint i = 0; forms[i] != NULL; i++)
        synopsis_add_form(syn, forms[i]);
    synopsis_describe(syn, help);
    return syn;
}

/* ---- what a placeholder stands for -------------------------------------------------- */

/* "NETWORK[,mac=MAC]": its leading word, "NETWORK". */
static char *placeholder_word(const char *placeholder)
{
    gsize len = 0;
    /* strchr() finds the terminator too: test it first. */
    while (placeholder[len] != '\0' &&
           (g_ascii_isalnum(placeholder[len]) || strchr("._-", placeholder[len]) != NULL))
        len++;
    return g_strndup(placeholder, len);
}

/* FILE, PATH, SPEC.json: a file of the machine turtlectl runs on. */
static gboolean placeholder_is_file(const char *word)
{
    if (strcmp(word, "FILE") == 0 || strcmp(word, "PATH") == 0)
        return TRUE;
    const char *dot = strchr(word, '.');
    if (dot == NULL || dot == word || dot[1] == '\0')
        return FALSE;
    for (const char *p = word; p < dot; p++) {
        if (!g_ascii_isupper(*p))
            return FALSE;
    }
    for (const char *p = dot + 1; *p != '\0'; p++) {
        if (!g_ascii_islower(*p))
            return FALSE;
    }
    return TRUE;
}

static const NameSource *names_of_noun(const char *noun)
{
    for (guint i = 0; i < G_N_ELEMENTS(name_sources); i++) {
        if (strcmp(name_sources[i].noun, noun) == 0)
            return &name_sources[i];
    }
    return NULL;
}

static const NameSource *names_of_placeholder(const char *word)
{
    for (guint i = 0; i < G_N_ELEMENTS(name_sources); i++) {
        if (name_sources[i].placeholder != NULL && strcmp(name_sources[i].placeholder, word) == 0)
            return &name_sources[i];
    }
    return NULL;
}

/* ---- where the command line is -------------------------------------------------------- */

typedef struct {
    const CmdNoun *const *nouns;
    gsize n_nouns;
    Synopsis *globals;        /* args_global_synopsis */
    gboolean help;            /* "turtlectl help ..." */
    const CmdNoun *noun;      /* once typed */
    const CmdVerb *verbs;     /* what the next word chooses from; NULL once at a leaf verb */
    const CmdVerb *verb;      /* the leaf verb, once typed */
    Synopsis *verb_syn;       /* its synopsis */
    GPtrArray *positional;    /* the words after the leaf verb that are no options */
    GPtrArray *global_words;  /* the global options typed (with values): the connection's */
    const SynOption *pending; /* the last word is this option: the current word is its value */
    gboolean options_end;     /* after "--" */
    gboolean lost;            /* an unknown noun or verb: nothing to offer */
    gboolean daemon_failed;   /* no more requests: one failed */
    gint64 deadline;          /* monotonic time after which no request starts */
} Position;

static void position_clear(Position *pos)
{
    synopsis_free(pos->globals);
    synopsis_free(pos->verb_syn);
    g_ptr_array_unref(pos->positional);
    g_ptr_array_unref(pos->global_words);
}

/* The option @name as the command line at hand takes it: the leaf verb's
 * own first (image create's --format is the image's), then the global
 * ones; *global tells which. */
static const SynOption *position_find_option(const Position *pos, const char *name,
                                             gboolean *global)
{
    const SynOption *option = synopsis_find_option(pos->verb_syn, name);
    *global = option == NULL;
    return option != NULL ? option : synopsis_find_option(pos->globals, name);
}

/* An option word; returns how many of the words after it it takes (its
 * value: 0 or 1).  Global options are kept for the connection. */
static int position_take_option(Position *pos, char *word, char *next)
{
    gboolean global = FALSE;
    g_autofree char *name = g_strndup(word, strcspn(word, "="));
    const SynOption *option = position_find_option(pos, name, &global);
    gboolean wants_value = option != NULL && option->value != NULL && strchr(word, '=') == NULL;

    if (option != NULL && global) {
        g_ptr_array_add(pos->global_words, word);
        if (wants_value && next != NULL)
            g_ptr_array_add(pos->global_words, next);
    }
    if (wants_value && next == NULL)
        pos->pending = option;
    return wants_value && next != NULL ? 1 : 0;
}

static const CmdNoun *position_find_noun(const Position *pos, const char *name)
{
    for (gsize i = 0; i < pos->n_nouns; i++) {
        if (strcmp(pos->nouns[i]->name, name) == 0)
            return pos->nouns[i];
    }
    return NULL;
}

/* A word that is no option: "help", the noun, a verb, a sub-verb, then the
 * positional arguments. */
static void position_take_word(Position *pos, char *word)
{
    if (pos->noun == NULL) {
        if (!pos->help && strcmp(word, "help") == 0) {
            pos->help = TRUE;
            return;
        }
        pos->noun = position_find_noun(pos, word);
        pos->verbs = pos->noun != NULL ? pos->noun->verbs : NULL;
        pos->lost = pos->noun == NULL;
        return;
    }
    if (pos->verbs != NULL) {
        const CmdVerb *verb = help_find_verb(pos->verbs, word);
        if (verb == NULL) {
            pos->lost = TRUE;
            return;
        }
        pos->verbs = verb->verbs;
        if (verb->verbs == NULL) {
            pos->verb = verb;
            pos->verb_syn = synopsis_parse(verb->synopsis, verb->help);
        }
        return;
    }
    if (pos->help) {
        pos->lost = TRUE; /* help takes no more words after a verb */
        return;
    }
    g_ptr_array_add(pos->positional, word);
}

static void position_walk(Position *pos, int n_words, char **words)
{
    for (int i = 0; i < n_words && !pos->lost; i++) {
        char *word = words[i];
        pos->pending = NULL;
        if (!pos->options_end && strcmp(word, "--") == 0) {
            pos->options_end = TRUE;
            continue;
        }
        if (!pos->options_end && word[0] == '-' && word[1] != '\0') {
            i += position_take_option(pos, word, i + 1 < n_words ? words[i + 1] : NULL);
            continue;
        }
        position_take_word(pos, word);
    }
}

/* ---- the candidates ------------------------------------------------------------------ */

/* Prints @prefix@value (and its description) when @value starts with
 * @typed; a tab or newline in either would break the answer's lines. */
static void offer(const char *prefix, const char *value, const char *description, const char *typed)
{
    if (!g_str_has_prefix(value, typed) || strpbrk(value, "\t\n") != NULL)
        return;
    printf("%s%s", prefix, value);
    if (description != NULL && strpbrk(description, "\t\n") == NULL)
        printf("\t%s", description);
    putchar('\n');
}

static void offer_nouns(const Position *pos, const char *typed)
{
    for (gsize i = 0; i < pos->n_nouns; i++)
        offer("", pos->nouns[i]->name, pos->nouns[i]->summary, typed);
    if (!pos->help)
        offer("", "help", "the help of turtlectl, of a noun or of a verb", typed);
}

static void offer_verbs(const CmdVerb *verbs, const char *typed)
{
    for (guint i = 0; verbs[i].name != NULL; i++)
        offer("", verbs[i].name, verbs[i].summary, typed);
}

static void offer_options_of(const Synopsis *syn, const Synopsis *shadow, const char *typed)
{
    for (guint i = 0; syn != NULL && i < syn->options->len; i++) {
        const SynOption *option = g_ptr_array_index(syn->options, i);
        if (synopsis_find_option(shadow, option->name) == NULL)
            offer("", option->name, option->description, typed);
    }
}

/* The connection the command line asks for: the global options typed
 * (their --format aside: completion prints no formatted output), then
 * the environment and the config files as for any verb. */
static gboolean position_connect(Position *pos, Ctl *ctl)
{
    g_autoptr(GError) error = NULL;
    int next = 0;

    if (ctl->client != NULL)
        return TRUE;
    if (!args_parse_globals((int)pos->global_words->len, (char **)pos->global_words->pdata,
                            &ctl->globals, &next, &error)) {
        fprintf(stderr, "turtlectl: __complete: %s\n", error->message);
        return FALSE;
    }
    ctl->globals.format = NULL;
    if (!ctl_connect(ctl, &error)) {
        fprintf(stderr, "turtlectl: __complete: %s\n", error->message);
        return FALSE;
    }
    return TRUE;
}

/* The names of @source that start with @typed, from the first page of its
 * list, within what is left of the time. */
static void offer_remotes(const char *prefix, const char *typed)
{
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) files = remotes_default_files();
    g_autoptr(GPtrArray) remotes = NULL;
    g_autofree char *default_name = NULL;

    if (!remotes_list((const char *const *)files, &remotes, &default_name, &error)) {
        fprintf(stderr, "turtlectl: __complete: %s\n", error->message);
        return;
    }
    for (guint i = 0; i < remotes->len; i++) {
        const Remote *remote = g_ptr_array_index(remotes, i);
        offer(prefix, remote->name, remote->url != NULL ? remote->url : remote->socket, typed);
    }
}

static void offer_names(Position *pos, Ctl *ctl, const NameSource *source, const char *prefix,
                        const char *typed)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) body = NULL;
    json_object *items = NULL;
    gint64 left_ms = (pos->deadline - g_get_monotonic_time()) / 1000;

    if (source->path == NULL) {
        offer_remotes(prefix, typed);
        return;
    }
    if (pos->daemon_failed || left_ms <= 0 || !position_connect(pos, ctl)) {
        pos->daemon_failed = TRUE;
        return;
    }
    g_autofree char *path = g_strdup_printf("%s?limit=%d", source->path, COMPLETE_LIST_LIMIT);
    if (!client_get_within(ctl->client, path, (guint)left_ms, &body, &error)) {
        fprintf(stderr, "turtlectl: __complete: GET %s: %s\n", path, error->message);
        pos->daemon_failed = TRUE;
        return;
    }
    if (body == NULL || !json_object_object_get_ex(body, source->member, &items) ||
        !json_object_is_type(items, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *key = NULL;
        if (json_object_object_get_ex(json_object_array_get_idx(items, i), source->key, &key) &&
            json_object_is_type(key, json_type_string))
            offer(prefix, json_object_get_string(key), NULL, typed);
    }
}

/* The value of @option (@prefix: "--name=" when typed in one word). */
static const char *offer_value(Position *pos, Ctl *ctl, const SynOption *option, const char *prefix,
                               const char *typed)
{
    if (value_is_choices(option->value)) {
        g_auto(GStrv) choices = g_strsplit(option->value, "|", -1);
        for (guint i = 0; choices[i] != NULL; i++)
            offer(prefix, choices[i], NULL, typed);
        return COMPLETE_DIRECTIVE_WORDS;
    }
    g_autofree char *word = placeholder_word(option->value);
    if (placeholder_is_file(word))
        return COMPLETE_DIRECTIVE_FILES;
    /* An option's NAME or ID is rarely the noun's own ("--hostname NAME"). */
    const NameSource *source = names_of_placeholder(word);
    if (source != NULL)
        offer_names(pos, ctl, source, prefix, typed);
    return COMPLETE_DIRECTIVE_WORDS;
}

/* The placeholders of the next positional argument, every form's; with
 * none, the verb's own options. */
static const char *offer_positional(Position *pos, Ctl *ctl, const char *typed)
{
    guint index = pos->positional->len;
    const NameSource *done[G_N_ELEMENTS(name_sources)] = {NULL};
    guint n_done = 0;
    gboolean any = FALSE;
    gboolean files = FALSE;

    for (guint f = 0; f < pos->verb_syn->forms->len; f++) {
        GPtrArray *form = g_ptr_array_index(pos->verb_syn->forms, f);
        if (index >= form->len)
            continue;
        any = TRUE;
        g_autofree char *word = placeholder_word(g_ptr_array_index(form, index));
        const NameSource *source = NULL;
        if (placeholder_is_file(word))
            files = TRUE;
        else if (strcmp(word, "NAME") == 0 || strcmp(word, "ID") == 0)
            /* What create and add name is new: nothing to offer. */
            source = strcmp(pos->verb->name, "create") != 0 && strcmp(pos->verb->name, "add") != 0
                         ? names_of_noun(pos->noun->name)
                         : NULL;
        else
            source = names_of_placeholder(word);
        gboolean seen = FALSE;
        for (guint i = 0; i < n_done; i++)
            seen = seen || done[i] == source;
        if (source != NULL && !seen) {
            done[n_done++] = source;
            offer_names(pos, ctl, source, "", typed);
        }
    }
    if (!any)
        offer_options_of(pos->verb_syn, NULL, typed);
    return files ? COMPLETE_DIRECTIVE_FILES : COMPLETE_DIRECTIVE_WORDS;
}

static const char *complete_current(Position *pos, Ctl *ctl, const char *current)
{
    if (pos->lost)
        return COMPLETE_DIRECTIVE_WORDS;
    if (pos->pending != NULL)
        return offer_value(pos, ctl, pos->pending, "", current);
    if (!pos->options_end && current[0] == '-') {
        const char *equals = strchr(current, '=');
        if (equals == NULL) {
            offer_options_of(pos->verb_syn, NULL, current);
            offer_options_of(pos->globals, pos->verb_syn, current);
            return COMPLETE_DIRECTIVE_WORDS;
        }
        gboolean global = FALSE;
        g_autofree char *prefix = g_strndup(current, (gsize)(equals - current) + 1);
        g_autofree char *name = g_strndup(current, (gsize)(equals - current));
        const SynOption *option = position_find_option(pos, name, &global);
        if (option == NULL || option->value == NULL)
            return COMPLETE_DIRECTIVE_WORDS;
        return offer_value(pos, ctl, option, prefix, equals + 1);
    }
    if (pos->noun == NULL) {
        offer_nouns(pos, current);
        return COMPLETE_DIRECTIVE_WORDS;
    }
    if (pos->verbs != NULL) {
        offer_verbs(pos->verbs, current);
        return COMPLETE_DIRECTIVE_WORDS;
    }
    if (pos->help)
        return COMPLETE_DIRECTIVE_WORDS;
    return offer_positional(pos, ctl, current);
}

int complete_run(Ctl *ctl, const CmdNoun *const *nouns, gsize n_nouns, int argc, char **argv)
{
    Position pos = {
        .nouns = nouns,
        .n_nouns = n_nouns,
        .globals = synopsis_parse(args_global_synopsis, NULL),
        .positional = g_ptr_array_new(),
        .global_words = g_ptr_array_new(),
        .deadline = g_get_monotonic_time() + COMPLETE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND,
    };
    const char *current = argc > 0 ? argv[argc - 1] : "";

    position_walk(&pos, argc > 0 ? argc - 1 : 0, argv);
    const char *directive = complete_current(&pos, ctl, current);
    printf("%s\n", directive);
    position_clear(&pos);
    return CTL_EXIT_OK;
}
