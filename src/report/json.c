/* A small JSON parser (RFC 8259) into a tree whose values remember their line and column,
 * so the record reader can say where a file is wrong. */
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

#define MAX_DEPTH 64

typedef struct {
    const char *s, *end, *name;
    const char *line_start;
    int line;
} parser;

static int fail(parser *p, const char *at, const char *what)
{
    /* report the position of `at`, counting lines up to it */
    int line = p->line;
    const char *ls = p->line_start;
    for (const char *q = ls; q < at && q < p->end; q++)
        if (*q == '\n') {
            line++;
            ls = q + 1;
        }
    return lb_error(LB_EFORMAT, "%s:%d:%d: %s", p->name, line, (int)(at - ls) + 1, what);
}

static void skip_ws(parser *p)
{
    while (p->s < p->end) {
        char c = *p->s;
        if (c == '\n') {
            p->line++;
            p->line_start = p->s + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return;
        }
        p->s++;
    }
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static void put_utf8(lb_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    lb_buf_put(b, u, n);
}

/* p->s is at the opening quote. Bytes >= 0x80 are copied as they are. */
static int parse_string(parser *p, char **out)
{
    lb_buf b = {0};
    const char *start = p->s++;
    lb_buf_put(&b, "", 0);
    for (;;) {
        if (p->s >= p->end) {
            lb_buf_free(&b);
            return fail(p, start, "unterminated string");
        }
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') break;
        if (c < 0x20) {
            lb_buf_free(&b);
            return fail(p, p->s, "control character in string (escape it)");
        }
        if (c != '\\') {
            lb_buf_put(&b, p->s++, 1);
            continue;
        }
        const char *esc = p->s++;
        if (p->s >= p->end) continue; /* reported as unterminated */
        char e = *p->s++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            lb_buf_put(&b, &map[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || p->end - p->s < 4 || !hex4(p->s, &cp)) {
            lb_buf_free(&b);
            return fail(p, esc, "invalid escape in string");
        }
        p->s += 4;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair encodes one code point */
            if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u' || !hex4(p->s + 2, &lo) ||
                lo < 0xDC00 || lo > 0xDFFF) {
                lb_buf_free(&b);
                return fail(p, esc, "unpaired UTF-16 surrogate in \\u escape");
            }
            p->s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            lb_buf_free(&b);
            return fail(p, esc, "unpaired UTF-16 surrogate in \\u escape");
        } else if (cp == 0) {
            lb_buf_free(&b);
            return fail(p, esc, "\\u0000 is not supported (strings are C strings)");
        }
        put_utf8(&b, cp);
    }
    p->s++;
    if (b.oom) {
        lb_buf_free(&b);
        return lb_error(LB_ENOMEM, "%s: out of memory", p->name);
    }
    *out = b.p;
    return LB_OK;
}

static int is_digit(const parser *p, const char *q) { return q < p->end && *q >= '0' && *q <= '9'; }

static int parse_number(parser *p, lb_json *v)
{
    const char *q = p->s;
    if (q < p->end && *q == '-') q++;
    if (!is_digit(p, q)) return fail(p, p->s, "invalid number");
    if (*q == '0')
        q++;
    else
        while (is_digit(p, q)) q++;
    if (q < p->end && *q == '.') {
        q++;
        if (!is_digit(p, q)) return fail(p, q, "digit expected after decimal point");
        while (is_digit(p, q)) q++;
    }
    if (q < p->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < p->end && (*q == '+' || *q == '-')) q++;
        if (!is_digit(p, q)) return fail(p, q, "digit expected in exponent");
        while (is_digit(p, q)) q++;
    }
    size_t n = (size_t)(q - p->s);
    v->str = lb_malloc(n + 1);
    if (!v->str) return lb_error(LB_ENOMEM, "%s: out of memory", p->name);
    memcpy(v->str, p->s, n);
    v->str[n] = '\0';
    v->type = LB_JSON_NUMBER;
    p->s = q;
    return LB_OK;
}

static int parse_value(parser *p, lb_json *v, int depth);

/* Appends a value slot (and a key slot for objects) to a container. */
static lb_json *grow(lb_json *v, size_t *cap, int with_keys)
{
    if (v->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        lb_json *items = lb_realloc(v->items, nc * sizeof *items);
        if (!items) return NULL;
        v->items = items;
        if (with_keys) {
            char **keys = lb_realloc(v->keys, nc * sizeof *keys);
            if (!keys) return NULL;
            v->keys = keys;
        }
        *cap = nc;
    }
    lb_json *slot = &v->items[v->n];
    memset(slot, 0, sizeof *slot);
    if (with_keys) v->keys[v->n] = NULL;
    return slot;
}

static int parse_container(parser *p, lb_json *v, int depth)
{
    int is_obj = *p->s == '{';
    char close = is_obj ? '}' : ']';
    v->type = is_obj ? LB_JSON_OBJECT : LB_JSON_ARRAY;
    size_t cap = 0;
    p->s++;
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        return LB_OK;
    }
    for (;;) {
        lb_json *slot = grow(v, &cap, is_obj);
        if (!slot) return lb_error(LB_ENOMEM, "%s: out of memory", p->name);
        if (is_obj) {
            if (p->s >= p->end || *p->s != '"')
                return fail(p, p->s, "object key (a string) expected");
            const char *key_at = p->s;
            int st = parse_string(p, &v->keys[v->n]);
            if (st) return st;
            v->n++; /* the key is owned from here, so a later error frees it */
            for (size_t i = 0; i + 1 < v->n; i++)
                if (!strcmp(v->keys[i], v->keys[v->n - 1])) {
                    char msg[200];
                    snprintf(msg, sizeof msg, "duplicate key \"%.150s\"", v->keys[i]);
                    return fail(p, key_at, msg);
                }
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':')
                return fail(p, p->s, "':' expected after object key");
            p->s++;
            skip_ws(p);
            int st2 = parse_value(p, slot, depth + 1);
            if (st2) return st2;
        } else {
            v->n++;
            int st = parse_value(p, slot, depth + 1);
            if (st) return st;
        }
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            skip_ws(p);
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            return LB_OK;
        }
        return fail(p, p->s, is_obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int parse_value(parser *p, lb_json *v, int depth)
{
    memset(v, 0, sizeof *v);
    v->line = p->line;
    v->col = (int)(p->s - p->line_start) + 1;
    if (depth > MAX_DEPTH) return fail(p, p->s, "nesting deeper than 64 levels");
    if (p->s >= p->end) return fail(p, p->s, "value expected, found end of input");
    char c = *p->s;
    if (c == '{' || c == '[') return parse_container(p, v, depth);
    if (c == '"') {
        v->type = LB_JSON_STRING;
        return parse_string(p, &v->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
    static const char *words[] = {"null", "true", "false"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(p->end - p->s) >= n && !memcmp(p->s, words[i], n)) {
            v->type = i == 0 ? LB_JSON_NULL : LB_JSON_BOOL;
            v->boolean = i == 1;
            p->s += n;
            return LB_OK;
        }
    }
    return fail(p, p->s, "value expected (object, array, string, number, true, false or null)");
}

int lb__json_parse(const char *text, size_t len, const char *name, lb_json *out)
{
    parser p = {text, text + len, name ? name : "<json>", text, 1};
    skip_ws(&p);
    int st = parse_value(&p, out, 0);
    if (!st) {
        skip_ws(&p);
        if (p.s < p.end) st = fail(&p, p.s, "unexpected text after the JSON value");
    }
    if (st) lb__json_free(out);
    return st;
}

void lb__json_free(lb_json *v)
{
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        lb__json_free(&v->items[i]);
        if (v->keys) lb_free(v->keys[i]);
    }
    lb_free(v->items);
    lb_free(v->keys);
    lb_free(v->str);
    memset(v, 0, sizeof *v);
}

const lb_json *lb__json_get(const lb_json *obj, const char *key)
{
    if (!obj || obj->type != LB_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

const char *lb__json_type_name(lb_json_type t)
{
    static const char *names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[t];
}
