/* A small JSON writer for the programs' result files. */
#include "common/cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_json_init(cli_json *j) { memset(j, 0, sizeof *j); }

void cli_json_free(cli_json *j)
{
    free(j->p);
    memset(j, 0, sizeof *j);
}

static void put(cli_json *j, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        size_t room = j->cap - j->n;
        int k = vsnprintf(j->p ? j->p + j->n : NULL, j->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            j->oom = 1;
            return;
        }
        if (j->p && (size_t)k < room) {
            j->n += (size_t)k;
            return;
        }
        size_t cap = j->cap ? 2 * j->cap : 1024;
        while (cap < j->n + (size_t)k + 1) cap *= 2;
        char *p = realloc(j->p, cap);
        if (!p) {
            j->oom = 1;
            return;
        }
        j->p = p;
        j->cap = cap;
    }
}

static void put_escaped(cli_json *j, const char *s)
{
    put(j, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') put(j, "\\%c", *c);
        else if (*c == '\n') put(j, "\\n");
        else if (*c == '\t') put(j, "\\t");
        else if (*c < 0x20) put(j, "\\u%04x", *c);
        else put(j, "%c", *c);
    }
    put(j, "\"");
}

/* Comma, newline and indentation before a member, and its key. */
static void member(cli_json *j, const char *key)
{
    if (j->depth > 0) {
        put(j, j->count[j->depth] ? ",\n" : "\n");
        j->count[j->depth]++;
        put(j, "%*s", 2 * j->depth, "");
    }
    if (key) {
        put_escaped(j, key);
        put(j, ": ");
    }
}

static void open_(cli_json *j, const char *key, char c)
{
    member(j, key);
    put(j, "%c", c);
    if (j->depth < 31) j->count[++j->depth] = 0;
}

static void close_(cli_json *j, char c)
{
    int had = j->count[j->depth];
    if (j->depth > 0) j->depth--;
    if (had) put(j, "\n%*s", 2 * j->depth, "");
    put(j, "%c", c);
    if (j->depth == 0) put(j, "\n");
}

void cli_json_begin_object(cli_json *j, const char *key) { open_(j, key, '{'); }
void cli_json_end_object(cli_json *j) { close_(j, '}'); }
void cli_json_begin_array(cli_json *j, const char *key) { open_(j, key, '['); }
void cli_json_end_array(cli_json *j) { close_(j, ']'); }

void cli_json_string(cli_json *j, const char *key, const char *s)
{
    member(j, key);
    if (s) put_escaped(j, s);
    else put(j, "null");
}

void cli_json_number(cli_json *j, const char *key, double v)
{
    member(j, key);
    if (isfinite(v)) put(j, "%.9g", v);
    else put(j, "null");
}

void cli_json_int(cli_json *j, const char *key, long long v)
{
    member(j, key);
    put(j, "%lld", v);
}

/* Numbers of a short array on one line: [0.91, 0.85, ...] */
static void inline_floats(cli_json *j, const char *key, const float *v, int n)
{
    member(j, key);
    put(j, "[");
    for (int i = 0; i < n; i++) {
        if (isfinite(v[i])) put(j, "%s%.9g", i ? ", " : "", v[i]);
        else put(j, "%snull", i ? ", " : "");
    }
    put(j, "]");
}

void cli_json_floats(cli_json *j, const char *key, const float *v, int n) { inline_floats(j, key, v, n); }

void cli_json_ints(cli_json *j, const char *key, const int *v, int n)
{
    member(j, key);
    put(j, "[");
    for (int i = 0; i < n; i++) put(j, "%s%d", i ? ", " : "", v[i]);
    put(j, "]");
}

void cli_json_metrics(cli_json *j, const lb_metrics *m, const char *const *class_names)
{
    int C = m->n_classes;
    cli_json_int(j, "n", (long long)m->n);
    cli_json_number(j, "accuracy", m->accuracy);
    cli_json_number(j, "balanced_accuracy", m->balanced_accuracy);
    cli_json_number(j, "macro_f1", m->macro_f1);
    cli_json_number(j, "weighted_f1", m->weighted_f1);
    cli_json_number(j, "g_mean", m->g_mean);
    cli_json_number(j, "minority_recall", m->minority_recall);
    cli_json_number(j, "many_shot_acc", m->many_shot_acc);
    cli_json_number(j, "medium_shot_acc", m->medium_shot_acc);
    cli_json_number(j, "few_shot_acc", m->few_shot_acc);
    cli_json_number(j, "roc_auc", m->roc_auc);
    cli_json_number(j, "pr_auc", m->pr_auc);
    cli_json_number(j, "ece", m->ece);
    if (class_names) {
        cli_json_begin_array(j, "class_names");
        for (int c = 0; c < C; c++) cli_json_string(j, NULL, class_names[c]);
        cli_json_end_array(j);
    }
    inline_floats(j, "per_class_recall", m->recall, C);
    inline_floats(j, "per_class_precision", m->precision, C);
    inline_floats(j, "per_class_f1", m->f1, C);
    cli_json_begin_array(j, "confusion");
    for (int t = 0; t < C; t++) {
        member(j, NULL);
        put(j, "[");
        for (int p = 0; p < C; p++) put(j, "%s%lld", p ? ", " : "", (long long)m->confusion[(size_t)t * C + p]);
        put(j, "]");
    }
    cli_json_end_array(j);
}
