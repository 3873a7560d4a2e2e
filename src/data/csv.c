/* The CSV reader of csv:FILE[,root=DIR][,path=COL][,label=COL][,split=COL]: a CSV file listing
 * image files and their labels, one row per image (the Kaggle layout).
 *
 * The file (RFC 4180, read leniently where the RFC leaves a choice):
 *   - at most 1 GiB (lb_read_file's limit) and 4096 columns per record (more: LB_EFORMAT);
 *   - a UTF-8 byte-order mark at the very start is ignored;
 *   - records end at LF or CRLF (a CR elsewhere is an ordinary character); a line holding only
 *     spaces and tabs is skipped;
 *   - fields are separated by ','; an unquoted field is trimmed of surrounding spaces and
 *     tabs, and a '"' inside it is an ordinary character;
 *   - a field whose first character after spaces and tabs is '"' is quoted: up to the closing
 *     '"' everything is literal (commas, CR, LF), '""' stands for one '"', and the text is
 *     kept untrimmed. Only spaces and tabs may follow the closing quote before the next ',' or
 *     the end of the record (anything else: LB_EFORMAT naming the line); a quote never closed
 *     is LB_EFORMAT naming the line where the quoted field started;
 *   - a NUL byte anywhere is LB_EFORMAT (the file is not text);
 *   - line numbers are physical lines: a record's line is the one where it starts, and the
 *     lines of a quoted field's embedded newlines are counted.
 *
 * Columns: path (default column 1), label (default column 2) and split (default none), each
 * a 1-based index (decimal digits) or a header name (anything else; matched exactly, the first
 * header cell of that name wins). Two of them may not be the same column.
 *
 * The header: if any column is given by name, the first record is the header (a name not
 * among its cells is LB_EINVAL listing them). Otherwise the first record is the header exactly
 * when its path cell is missing or does not end in an image extension: '.' and one of png jpg
 * jpeg bmp gif tga pnm ppm pgm psd hdr pic tif tiff webp, any case. With a header, an index
 * beyond its cells is LB_EINVAL naming the key and listing the cells.
 *
 * A row: the path cell as read (absolute: kept; else DIR + "/" + path, DIR being root= or the
 * CSV's own folder, or the path as written when FILE has no folder part); the label cell
 * trimmed; the split cell trimmed, any case: train, val / valid / validation, test. A row with
 * too few cells, an empty path or label cell, or an empty or other split value is skipped with
 * the warning "FILE:LINE: problem (row skipped)", or is the LB_EINVAL error "FILE:LINE: problem"
 * under strict. A file without any usable row is LB_EINVAL. */
#include "data/csv.h"

#include <stdio.h>
#include <string.h>

#define CSV_MAX_BYTES ((size_t)1 << 30)
#define CSV_MAX_COLS 4096

enum { COL_PATH, COL_LABEL, COL_SPLIT, N_COLS };
static const char *const col_keys[N_COLS] = {"path", "label", "split"};

static const char *const image_ext[] = {"png", "jpg", "jpeg", "bmp", "gif", "tga", "pnm", "ppm",
                                        "pgm", "psd", "hdr", "pic", "tif", "tiff", "webp", NULL};

/* The text being read and where the reader stands in it. */
typedef struct {
    const char *file;
    const char *s;
    size_t n, pos;
    int line; /* the physical line at pos */
} csv_in;

/* One record: its cells, each NUL-terminated in `text` at offset at[i]. */
typedef struct {
    lb_buf text;
    size_t *at; /* [CSV_MAX_COLS] */
    int n;
    int line;
} csv_record;

/* One column setting: its index (0-based, -1 none), or the header name it asks for. */
typedef struct {
    const char *spec; /* as given (NULL: the default) */
    const char *name; /* non-NULL: to be found in the header */
    int index;
} csv_col;

typedef struct {
    csv_in in;
    char *text;       /* the whole file */
    csv_record rec;
    int pending;      /* rec holds a data record not yet taken (the first, when no header) */
    csv_col col[N_COLS];
    char *dir;        /* prefix of relative paths, NULL: none */
    int cap;          /* of the table's rows */
    int n_records;    /* data records seen */
    int n_skipped;
    char first_problem[256];
} csv_reader;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int equal_any_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b)) return 0;
    return *a == *b;
}

/* ------------------------------------------------------------------ the records */

/* Bytes of the end of line at p: 1 for LF (or a CR ending the file), 2 for CRLF, else 0. */
static size_t eol_len(const csv_in *in, size_t p)
{
    if (p >= in->n) return 0;
    if (in->s[p] == '\n') return 1;
    if (in->s[p] != '\r') return 0;
    if (p + 1 == in->n) return 1;
    return in->s[p + 1] == '\n' ? 2 : 0;
}

static int nul_error(const csv_in *in, int line)
{
    return lb_error(LB_EFORMAT, "%s:%d: a NUL byte: not a CSV text file", in->file, line);
}

/* Skips lines holding only spaces and tabs; 0 when the input ends first. */
static int skip_blank_lines(csv_in *in)
{
    while (in->pos < in->n) {
        size_t p = in->pos;
        while (p < in->n && is_blank(in->s[p])) p++;
        if (p == in->n) break;
        size_t k = eol_len(in, p);
        if (!k) return 1;
        in->pos = p + k;
        in->line++;
    }
    in->pos = in->n;
    return 0;
}

/* An unquoted cell from in->pos up to ',' or the end of the record, trimmed. */
static int unquoted_cell(csv_in *in, csv_record *r)
{
    size_t a = in->pos, b = a;
    for (; b < in->n; b++) {
        char c = in->s[b];
        if (c == ',' || c == '\n' || (c == '\r' && eol_len(in, b))) break;
        if (c == '\0') return nul_error(in, in->line);
    }
    in->pos = b;
    while (b > a && is_blank(in->s[b - 1])) b--;
    lb_buf_put(&r->text, in->s + a, b - a);
    return LB_OK;
}

/* Appends s[a, b) (inside quotes) to the cell, counting its newlines. */
static int quoted_run(csv_in *in, csv_record *r, size_t a, size_t b)
{
    const char *p = in->s + a, *end = in->s + b;
    const char *z = memchr(p, '\0', (size_t)(end - p));
    for (const char *q; (q = memchr(p, '\n', (size_t)(end - p))) != NULL; p = q + 1) {
        if (z && z < q) return nul_error(in, in->line);
        in->line++;
    }
    if (z) return nul_error(in, in->line);
    lb_buf_put(&r->text, in->s + a, b - a);
    return LB_OK;
}

/* A quoted cell, in->pos at its opening quote; afterwards in->pos is past the closing quote
 * and the blanks after it. */
static int quoted_cell(csv_in *in, csv_record *r)
{
    int start = in->line;
    in->pos++;
    for (;;) {
        const char *q = memchr(in->s + in->pos, '"', in->n - in->pos);
        size_t end = q ? (size_t)(q - in->s) : in->n;
        int rc = quoted_run(in, r, in->pos, end);
        if (rc != LB_OK) return rc;
        if (!q)
            return lb_error(LB_EFORMAT, "%s:%d: not valid CSV: the quoted field starting on this line is never closed",
                            in->file, start);
        in->pos = end + 1;
        if (in->pos < in->n && in->s[in->pos] == '"') {
            lb_buf_put(&r->text, "\"", 1);
            in->pos++;
            continue;
        }
        break;
    }
    while (in->pos < in->n && is_blank(in->s[in->pos])) in->pos++;
    if (in->pos < in->n && in->s[in->pos] != ',' && !eol_len(in, in->pos))
        return lb_error(LB_EFORMAT, "%s:%d: not valid CSV: text after the closing quote of a field", in->file,
                        in->line);
    return LB_OK;
}

/* Reads the next record into r: 1 if there was one, 0 at the end of the input, or an error. */
static int read_record(csv_in *in, csv_record *r)
{
    if (!skip_blank_lines(in)) return 0;
    r->n = 0;
    r->text.n = 0;
    r->line = in->line;
    for (;;) {
        if (r->n == CSV_MAX_COLS)
            return lb_error(LB_EFORMAT, "%s:%d: more than %d columns", in->file, r->line, CSV_MAX_COLS);
        r->at[r->n++] = r->text.n;
        while (in->pos < in->n && is_blank(in->s[in->pos])) in->pos++;
        int quoted = in->pos < in->n && in->s[in->pos] == '"';
        int rc = quoted ? quoted_cell(in, r) : unquoted_cell(in, r);
        if (rc != LB_OK) return rc;
        lb_buf_put(&r->text, "", 1);
        if (in->pos < in->n && in->s[in->pos] == ',') {
            in->pos++;
            continue;
        }
        size_t k = eol_len(in, in->pos);
        in->pos += k;
        in->line += k > 0;
        break;
    }
    if (r->text.oom)
        return lb_error(LB_ENOMEM, "%s:%d: out of memory for the cells of a record", in->file, r->line);
    return 1;
}

static const char *cell(const csv_record *r, int i) { return r->text.p + r->at[i]; }

/* ------------------------------------------------------------------ the columns */

/* Reads one column setting: NULL (the default), digits (an index) or a name. */
static int parse_col(const csv_in *in, int which, const char *spec, csv_col *c)
{
    c->spec = spec;
    c->name = NULL;
    c->index = which == COL_PATH ? 0 : which == COL_LABEL ? 1 : -1;
    if (!spec) return LB_OK;
    if (!*spec)
        return lb_error(LB_EINVAL, "%s: %s= is empty: give a header name or a column number", in->file,
                        col_keys[which]);
    size_t digits = strspn(spec, "0123456789");
    if (spec[digits]) {
        c->name = spec;
        c->index = -1;
        return LB_OK;
    }
    long v = 0;
    for (const char *p = spec; *p && v <= CSV_MAX_COLS; p++) v = v * 10 + (*p - '0');
    if (v < 1 || v > CSV_MAX_COLS)
        return lb_error(LB_EINVAL, "%s: %s=%s: a column number must be from 1 to %d", in->file, col_keys[which], spec,
                        CSV_MAX_COLS);
    c->index = (int)v - 1;
    return LB_OK;
}

/* "a, b, c" from the header's cells, shortened to fit `size`. */
static void list_cells(const csv_record *h, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < h->n; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s'%.40s%s'", i ? ", " : "", cell(h, i), strlen(cell(h, i)) > 40 ? "..." : "");
        size_t m = strlen(one);
        if (k + m + 32 >= size) {
            snprintf(buf + k, size - k, ", ... (%d columns)", h->n);
            return;
        }
        memcpy(buf + k, one, m + 1);
        k += m;
    }
}

/* Finds or checks every column against the header h. */
static int resolve_in_header(csv_reader *rd, const csv_record *h)
{
    char cells[512];
    for (int c = 0; c < N_COLS; c++) {
        csv_col *col = &rd->col[c];
        if (col->name) {
            for (int i = 0; i < h->n && col->index < 0; i++)
                if (!strcmp(cell(h, i), col->name)) col->index = i;
            if (col->index >= 0) continue;
            list_cells(h, cells, sizeof cells);
            return lb_error(LB_EINVAL, "%s: %s=%s: no such column in the header (%s)", rd->in.file, col_keys[c],
                            col->name, cells);
        }
        if (col->index >= h->n) {
            list_cells(h, cells, sizeof cells);
            return lb_error(LB_EINVAL, "%s: %s=%d%s: beyond the %d column%s of the header (%s)", rd->in.file,
                            col_keys[c], col->index + 1, col->spec ? "" : " (the default)", h->n,
                            h->n == 1 ? "" : "s", cells);
        }
    }
    return LB_OK;
}

static int same_columns(const csv_reader *rd)
{
    for (int a = 0; a < N_COLS; a++)
        for (int b = a + 1; b < N_COLS; b++)
            if (rd->col[a].index >= 0 && rd->col[a].index == rd->col[b].index)
                return lb_error(LB_EINVAL, "%s: %s and %s are both column %d", rd->in.file, col_keys[a], col_keys[b],
                                rd->col[a].index + 1);
    return LB_OK;
}

static int has_image_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return 0;
    for (int i = 0; image_ext[i]; i++)
        if (equal_any_case(dot + 1, image_ext[i])) return 1;
    return 0;
}

/* Whether the first record r is a header, by the rule at the top. */
static int is_header(const csv_reader *rd, const csv_record *r)
{
    for (int c = 0; c < N_COLS; c++)
        if (rd->col[c].name) return 1;
    int p = rd->col[COL_PATH].index;
    return p >= r->n || !has_image_ext(cell(r, p));
}

/* Reads the first record: the header (the columns are then resolved against it) or the
 * first data record, left pending. An empty file is left to the "no usable row" error. */
static int read_first(csv_reader *rd, lb__csv_table *out)
{
    int got = read_record(&rd->in, &rd->rec);
    if (got <= 0) return got;
    if (!is_header(rd, &rd->rec)) {
        rd->pending = 1;
        return same_columns(rd);
    }
    out->has_header = 1;
    int rc = resolve_in_header(rd, &rd->rec);
    return rc != LB_OK ? rc : same_columns(rd);
}

/* ------------------------------------------------------------------ the rows */

/* A copy of s without surrounding spaces and tabs (NULL when out of memory). */
static char *trimmed(const char *s)
{
    while (is_blank(*s)) s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1])) n--;
    return lb_strndup(s, n);
}

/* The split of a split cell (trimmed, any case), or -1. */
static int split_of(const char *v)
{
    v += strspn(v, " \t");
    size_t n = strlen(v);
    while (n && is_blank(v[n - 1])) n--;
    char word[16];
    if (n >= sizeof word) return -1;
    memcpy(word, v, n);
    word[n] = '\0';
    if (equal_any_case(word, "train")) return LB__SPLIT_TRAIN;
    if (equal_any_case(word, "val") || equal_any_case(word, "valid") || equal_any_case(word, "validation")) return LB__SPLIT_VAL;
    if (equal_any_case(word, "test")) return LB__SPLIT_TEST;
    return -1;
}

/* The split cell's problem, written to why (returns 1), or 0 with *split set. */
static int split_problem(const char *v, int *split, char *why, size_t size)
{
    if ((*split = split_of(v)) >= 0) return 0;
    v += strspn(v, " \t");
    size_t n = strlen(v);
    while (n && is_blank(v[n - 1])) n--;
    if (n == 0) snprintf(why, size, "empty split cell");
    else
        snprintf(why, size, "split '%.*s%s' is not train, val, valid, validation or test", n > 40 ? 40 : (int)n, v,
                 n > 40 ? "..." : "");
    return 1;
}

/* A class name is printed, and stored one per line in settings and checkpoints: no byte
 * below 0x20 (but the tab, trimmed at the ends) and no DEL. */
static int has_control(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f) return 1;
    return 0;
}

/* What makes record r unusable, written to why (returns 1), or 0 if it can be used. The
 * split cell is read into *split. */
static int row_problem(const csv_reader *rd, const csv_record *r, int *split, char *why, size_t size)
{
    *split = LB__SPLIT_ANY;
    for (int c = 0; c < N_COLS; c++)
        if (rd->col[c].index >= r->n) {
            snprintf(why, size, "only %d cell%s (%s is column %d)", r->n, r->n == 1 ? "" : "s", col_keys[c],
                     rd->col[c].index + 1);
            return 1;
        }
    const char *label = cell(r, rd->col[COL_LABEL].index);
    const char *problem = !*cell(r, rd->col[COL_PATH].index)         ? "empty path cell"
                          : strspn(label, " \t") == strlen(label) ? "empty label cell"
                          : has_control(label)                      ? "the label holds a line break or other control character"
                                                                    : NULL;
    if (problem) {
        snprintf(why, size, "%s", problem);
        return 1;
    }
    if (rd->col[COL_SPLIT].index < 0) return 0;
    return split_problem(cell(r, rd->col[COL_SPLIT].index), split, why, size);
}

/* The image path of a row: absolute as written, else dir + "/" + path. */
static char *row_path(const csv_reader *rd, const char *p)
{
    if (p[0] == '/' || !rd->dir) return lb_strdup(p);
    return lb_strfmt("%s/%s", rd->dir, p);
}

static int grow_rows(csv_reader *rd, lb__csv_table *t)
{
    if (t->n < rd->cap) return LB_OK;
    int cap = rd->cap ? 2 * rd->cap : 256;
    lb__csv_row *rows = lb_realloc(t->rows, sizeof *rows * (size_t)cap);
    if (!rows) return lb_error(LB_ENOMEM, "%s: out of memory for a table of %d rows", rd->in.file, cap);
    t->rows = rows;
    rd->cap = cap;
    return LB_OK;
}

/* Appends the usable record r to the table. */
static int add_row(csv_reader *rd, const csv_record *r, int split, lb__csv_table *t)
{
    int rc = grow_rows(rd, t);
    if (rc != LB_OK) return rc;
    lb__csv_row *row = &t->rows[t->n];
    row->line = r->line;
    row->split = split;
    row->path = row_path(rd, cell(r, rd->col[COL_PATH].index));
    row->label = row->path ? trimmed(cell(r, rd->col[COL_LABEL].index)) : NULL;
    if (!row->label) {
        lb_free(row->path);
        return lb_error(LB_ENOMEM, "%s:%d: out of memory for the row's path and label", rd->in.file, r->line);
    }
    t->n++;
    return LB_OK;
}

/* Takes one data record: a row, a warning, or (strict) the error. */
static int take_record(csv_reader *rd, const csv_record *r, int strict, lb_notes *warnings, lb__csv_table *t)
{
    char why[160];
    int split;
    rd->n_records++;
    if (!row_problem(rd, r, &split, why, sizeof why)) return add_row(rd, r, split, t);
    if (strict || !warnings) return lb_error(LB_EINVAL, "%s:%d: %s", rd->in.file, r->line, why);
    if (rd->n_skipped++ == 0) snprintf(rd->first_problem, sizeof rd->first_problem, "line %d: %s", r->line, why);
    return lb_notes_add(warnings, "%s:%d: %s (row skipped)", rd->in.file, r->line, why);
}

static int read_rows(csv_reader *rd, int strict, lb_notes *warnings, lb__csv_table *t)
{
    int rc = LB_OK;
    if (rd->pending) rc = take_record(rd, &rd->rec, strict, warnings, t);
    while (rc == LB_OK) {
        int got = read_record(&rd->in, &rd->rec);
        if (got <= 0) return got;
        rc = take_record(rd, &rd->rec, strict, warnings, t);
    }
    return rc;
}

static int no_rows_error(const csv_reader *rd, const lb__csv_table *t)
{
    const char *f = rd->in.file;
    if (rd->n_records == 0 && t->has_header) return lb_error(LB_EINVAL, "%s: no usable row: only a header", f);
    if (rd->n_records == 0) return lb_error(LB_EINVAL, "%s: no usable row: the file is empty", f);
    return lb_error(LB_EINVAL, "%s: no usable row: all %d rows skipped (the first, %s)", f, rd->n_skipped,
                    rd->first_problem);
}

/* ------------------------------------------------------------------ the reader */

/* The folder relative paths are taken from: root without trailing '/', or FILE's folder. */
static int set_dir(csv_reader *rd, const char *file, const char *root)
{
    if (root && !*root) return lb_error(LB_EINVAL, "%s: root= is empty", file);
    const char *base = root, *slash = root ? NULL : strrchr(file, '/');
    if (!root && !slash) return LB_OK; /* FILE in the current folder: paths as written */
    size_t n = root ? strlen(root) : (size_t)(slash - file);
    if (!root) base = file;
    while (n && base[n - 1] == '/') n--;
    if (!(rd->dir = lb_strndup(base, n))) return lb_error(LB_ENOMEM, "%s: out of memory for the image folder", file);
    return LB_OK;
}

static int reader_open(csv_reader *rd, const char *file, const char *root)
{
    size_t n = 0;
    int rc = lb_read_file(file, CSV_MAX_BYTES, &rd->text, &n);
    if (rc != LB_OK) return rc;
    rd->in.file = file;
    rd->in.s = rd->text;
    rd->in.n = n;
    rd->in.line = 1;
    if (n >= 3 && !memcmp(rd->text, "\xEF\xBB\xBF", 3)) rd->in.pos = 3;
    if (!(rd->rec.at = lb_malloc(sizeof(size_t) * CSV_MAX_COLS)))
        return lb_error(LB_ENOMEM, "%s: out of memory for the cells of a record", file);
    return set_dir(rd, file, root);
}

static void reader_free(csv_reader *rd)
{
    lb_free(rd->text);
    lb_free(rd->rec.at);
    lb_buf_free(&rd->rec.text);
    lb_free(rd->dir);
}

int lb__csv_read(const char *file, const char *root, const char *path_col, const char *label_col,
                 const char *split_col, int strict, lb_notes *warnings, lb__csv_table *out)
{
    memset(out, 0, sizeof *out);
    if (!file || !*file) return lb_error(LB_EINVAL, "csv: no file given");
    csv_reader rd;
    memset(&rd, 0, sizeof rd);
    rd.in.file = file;
    const char *specs[N_COLS] = {path_col, label_col, split_col};
    int rc = LB_OK;
    for (int c = 0; c < N_COLS && rc == LB_OK; c++) rc = parse_col(&rd.in, c, specs[c], &rd.col[c]);
    if (rc == LB_OK) rc = reader_open(&rd, file, root);
    if (rc == LB_OK) rc = read_first(&rd, out);
    if (rc == LB_OK) rc = read_rows(&rd, strict, warnings, out);
    if (rc == LB_OK && out->n == 0) rc = no_rows_error(&rd, out);
    out->has_split = rd.col[COL_SPLIT].index >= 0;
    reader_free(&rd);
    if (rc != LB_OK) lb__csv_free(out);
    return rc;
}

void lb__csv_free(lb__csv_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        lb_free(t->rows[i].path);
        lb_free(t->rows[i].label);
    }
    lb_free(t->rows);
    memset(t, 0, sizeof *t);
}
