/* Shared by the report writers and reader: the record writer and a small JSON parser. Not
 * part of the public API. */
#ifndef LIBRA_REPORT_INTERNAL_H
#define LIBRA_REPORT_INTERNAL_H

#include <stddef.h>

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
/* The value of key in an object, or NULL. */
const lb_json *lb__json_get(const lb_json *obj, const char *key);
const char *lb__json_type_name(lb_json_type t);

#endif
