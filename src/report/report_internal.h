/* Shared by the report writers and reader: the record writer and a small JSON parser. Not
 * part of the public API. */
#ifndef LIBRA_REPORT_INTERNAL_H
#define LIBRA_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "libra/report.h"


/* ---- JSON parser: a tree of values, each knowing where it started ---- */
typedef enum {
    LB_JSON_NULL,
    LB_JSON_BOOL,
    LB_JSON_NUMBER,
    LB_JSON_STRING,
    LB_JSON_ARRAY,
    LB_JSON_OBJECT
} lb_json_type;

typedef struct lb_json {
    lb_json_type type;
    int line, col; /* 1-based position of the value's first character */
    int boolean;
    char *str;             /* STRING: decoded text; NUMBER: the token as written */
    size_t n;              /* ARRAY / OBJECT: number of items */
    struct lb_json *items; /* ARRAY / OBJECT: the values */
    char **keys;           /* OBJECT: the keys (unique) */
} lb_json;

/* Parses text[0..len) as one JSON value. Errors (LB_EFORMAT / LB_ENOMEM) read
 * "<name>:<line>:<col>: <what>". Nesting deeper than 64 levels is refused. */
int lb__json_parse(const char *text, size_t len, const char *name, lb_json *out);
void lb__json_free(lb_json *v);

/* Reading values of a parsed record, each error LB_EFORMAT "<path>:<line>:<col>: <what>"
 * (json_io.c): a located message; every key of obj one of allowed (NULL-terminated); the
 * member k of type t; a number or null (NaN) as a float; an integer >= lo; a string (copied);
 * a curve of [step, value] points appended to c. */
int lb__json_bad(const char *path, const lb_json *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int lb__json_only_keys(const char *path, const lb_json *obj, const char *where, const char *const *allowed);
int lb__json_member(const char *path, const lb_json *obj, const char *k, lb_json_type t, const lb_json **out);
int lb__json_to_float(const char *path, const lb_json *v, const char *what, float *out);
int lb__json_to_int64(const char *path, const lb_json *v, const char *what, int64_t lo, int64_t *out);
int lb__json_get_float(const char *path, const lb_json *obj, const char *k, float *out);
int lb__json_get_int64(const char *path, const lb_json *obj, const char *k, int64_t lo, int64_t *out);
int lb__json_get_string(const char *path, const lb_json *obj, const char *k, char **out);
int lb__json_read_curve(const char *path, const lb_json *obj, const char *k, lb_curve *c);
/* The value of key in an object, or NULL. */
const lb_json *lb__json_get(const lb_json *obj, const char *key);
const char *lb__json_type_name(lb_json_type t);

/* ---- pieces of results.json that a sweep's results.json shares ---- */
/* A record as an item of "runs" (with prefix: its predictions path prefixed "PREFIX/"). */
/* A curve as [[step, value], ...] under key (json_io.c). */
void lb__jw_curve(lb_jw *w, const char *key, const lb_curve *c);
void lb__jw_record(lb_jw *w, const lb_run_record *r, const char *prefix);
/* "summary": the summary lines, and "bootstrap" / "oracle" when the study had them. */
void lb__jw_summary(lb_jw *w, const lb_results *s);
void lb__jw_summary_rows(lb_jw *w, const lb_summary_row *rows, size_t n);
void lb__jw_summary_row(lb_jw *w, const lb_summary_row *r); /* one item of "summary" */
/* "dataset": what a study trained and tested on. */
void lb__jw_dataset(lb_jw *w, const lb_dataset_info *d);
/* Every record checked against the class count before anything is written. */
int lb__check_records(const lb_results *s, const char *path);

#endif
