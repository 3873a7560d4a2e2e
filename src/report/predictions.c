/* A run's test predictions as CSV (OUT/runs/<run>.predictions.csv, docs/formats.md):
 *   index,label,pred,logit_0,...,logit_{C-1}[,pred_<variant>...]
 * one row per test image in test-split order; logits printed %.9g, so that they read back as
 * the same floats and every metric can be recomputed from the file. */
#include "libra/metrics.h"
#include "libra/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lb_predictions_free(lb_predictions *p)
{
    if (!p) return;
    lb_free(p->label);
    lb_free(p->pred);
    lb_free(p->logits);
    for (int v = 0; v < p->n_variants; v++) lb_free(p->variant[v]);
    lb_free(p->variant);
    lb_free(p->variant_pred);
    memset(p, 0, sizeof *p);
}

int lb_predictions_set(lb_predictions *p, const float *logits, const int *labels, int n, int C)
{
    lb_predictions_free(p);
    if (n < 0 || C < 1 || (n > 0 && (!logits || !labels)))
        return lb_error(LB_EINVAL, "predictions: %d rows of %d classes (logits %s, labels %s)", n, C,
                        logits ? "given" : "NULL", labels ? "given" : "NULL");
    p->n = n;
    p->n_classes = C;
    p->label = lb_malloc((size_t)n * sizeof(int) + 1);
    p->pred = lb_malloc((size_t)n * sizeof(int) + 1);
    p->logits = lb_malloc((size_t)n * C * sizeof(float) + 1);
    if (!p->label || !p->pred || !p->logits) {
        lb_predictions_free(p);
        return lb_error(LB_ENOMEM, "predictions: out of memory for %d rows", n);
    }
    if (n > 0) {
        memcpy(p->label, labels, (size_t)n * sizeof(int));
        memcpy(p->logits, logits, (size_t)n * C * sizeof(float));
    }
    lb_argmax_rows(p->logits, (size_t)n, C, p->pred);
    return LB_OK;
}

/* name: printable, without space, comma or quote (a CSV header cell as it stands, e.g.
 * "fsmote:k=3"), not yet a variant. */
static int check_variant_name(const lb_predictions *p, const char *name)
{
    int ok = name && *name;
    for (const char *c = name; ok && *c; c++) ok = *c > ' ' && *c < 127 && *c != ',' && *c != '"';
    if (!ok)
        return lb_error(LB_EINVAL, "predictions: variant name '%s' is empty or holds a space, comma, quote or "
                                   "control character", name ? name : "(null)");
    for (int v = 0; v < p->n_variants; v++)
        if (!strcmp(p->variant[v], name)) return lb_error(LB_EINVAL, "predictions: variant '%s' twice", name);
    return LB_OK;
}

/* Room for one more variant (names and predictions grown by one). */
static int grow_variants(lb_predictions *p)
{
    char **names = lb_realloc(p->variant, ((size_t)p->n_variants + 1) * sizeof *names);
    if (!names) return lb_error(LB_ENOMEM, "predictions: out of memory");
    p->variant = names;
    int *vp = lb_realloc(p->variant_pred, ((size_t)p->n_variants + 1) * (size_t)p->n * sizeof(int) + 1);
    if (!vp) return lb_error(LB_ENOMEM, "predictions: out of memory");
    p->variant_pred = vp;
    return LB_OK;
}

int lb_predictions_add_variant(lb_predictions *p, const char *name, const float *scores)
{
    int rc = check_variant_name(p, name);
    if (rc == LB_OK && p->n > 0 && !scores) rc = lb_error(LB_EINVAL, "predictions: variant '%s' without scores", name);
    if (rc == LB_OK) rc = grow_variants(p);
    char *copy = rc == LB_OK ? lb_strdup(name) : NULL;
    if (rc == LB_OK && !copy) rc = lb_error(LB_ENOMEM, "predictions: out of memory");
    if (rc != LB_OK) return rc;
    lb_argmax_rows(scores, (size_t)p->n, p->n_classes, p->variant_pred + (size_t)p->n_variants * p->n);
    p->variant[p->n_variants++] = copy;
    return LB_OK;
}

int lb_predictions_to_csv(const lb_predictions *p, lb_buf *out)
{
    lb_buf_puts(out, "index,label,pred");
    for (int c = 0; c < p->n_classes; c++) lb_buf_printf(out, ",logit_%d", c);
    for (int v = 0; v < p->n_variants; v++) lb_buf_printf(out, ",pred_%s", p->variant[v]);
    lb_buf_puts(out, "\n");
    for (int i = 0; i < p->n; i++) {
        lb_buf_printf(out, "%d,%d,%d", i, p->label[i], p->pred[i]);
        for (int c = 0; c < p->n_classes; c++) lb_buf_printf(out, ",%.9g", p->logits[(size_t)i * p->n_classes + c]);
        for (int v = 0; v < p->n_variants; v++) lb_buf_printf(out, ",%d", p->variant_pred[(size_t)v * p->n + i]);
        lb_buf_puts(out, "\n");
    }
    return lb_buf_status(out, "predictions");
}

int lb_predictions_write_csv(const lb_predictions *p, const char *path)
{
    lb_buf b = {0};
    int rc = lb_predictions_to_csv(p, &b);
    if (rc == LB_OK) rc = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return rc;
}

/* ---- reading ---- */

typedef struct {
    const char *name, *s, *end; /* the file (for messages), the text left, its end */
    int line;
} reader;

/* The cells of the next line into cells (at most max, pointers into a NUL-terminated copy
 * held in *line_buf); the count, or -1 at the end of the text. */
static int next_line(reader *r, char **line_buf, char **cells, int max)
{
    if (r->s >= r->end) return -1;
    const char *nl = memchr(r->s, '\n', (size_t)(r->end - r->s));
    size_t len = nl ? (size_t)(nl - r->s) : (size_t)(r->end - r->s);
    r->line++;
    char *l = lb_realloc(*line_buf, len + 1);
    if (!l) return lb_error(LB_ENOMEM, "%s: out of memory", r->name), -2;
    *line_buf = l;
    memcpy(l, r->s, len);
    l[len] = '\0';
    if (len && l[len - 1] == '\r') l[len - 1] = '\0';
    r->s += len + (nl != NULL);
    int n = 0;
    for (char *c = l; n < max;) {
        cells[n++] = c;
        char *comma = strchr(c, ',');
        if (!comma) break;
        *comma = '\0';
        c = comma + 1;
    }
    return n;
}

/* The header: index,label,pred, logit_0.. in order, then pred_<variant> columns. */
static int read_header(reader *r, lb_predictions *p, char **cells, int n)
{
    if (n < 4 || strcmp(cells[0], "index") || strcmp(cells[1], "label") || strcmp(cells[2], "pred"))
        return lb_error(LB_EFORMAT, "%s:1: the header must start index,label,pred,logit_0", r->name);
    int C = 0;
    char want[32];
    for (; 3 + C < n && (snprintf(want, sizeof want, "logit_%d", C), !strcmp(cells[3 + C], want)); C++) {
    }
    if (C < 1) return lb_error(LB_EFORMAT, "%s:1: no logit_0 column after pred", r->name);
    p->n_classes = C;
    for (int i = 3 + C; i < n; i++) {
        if (strncmp(cells[i], "pred_", 5) != 0)
            return lb_error(LB_EFORMAT, "%s:1: column %d is '%s', not logit_%d or pred_<variant>", r->name, i + 1,
                            cells[i], C);
        int rc = check_variant_name(p, cells[i] + 5);
        if (rc == LB_OK) rc = grow_variants(p);
        if (rc == LB_OK && !(p->variant[p->n_variants] = lb_strdup(cells[i] + 5)))
            rc = lb_error(LB_ENOMEM, "out of memory for the variant's name");
        if (rc != LB_OK) return lb_error(rc, "%s:1: column '%s': %s", r->name, cells[i], lb_last_error());
        p->n_variants++;
    }
    return LB_OK;
}

/* An integer cell in [lo, hi). */
static int int_cell(const reader *r, const char *cell, const char *col, long lo, long hi, int *out)
{
    char *e;
    errno = 0;
    long v = strtol(cell, &e, 10);
    if (e == cell || *e || errno || v < lo || v >= hi)
        return lb_error(LB_EFORMAT, "%s:%d: %s '%s' is not an integer in [%ld, %ld)", r->name, r->line, col, cell, lo, hi);
    *out = (int)v;
    return LB_OK;
}

/* Row i (line r->line) into p, growing its arrays to hold it. */
static int read_row(reader *r, lb_predictions *p, char **cells, int n, int i, int *cap)
{
    int C = p->n_classes, cols = 3 + C + p->n_variants, rc = LB_OK;
    if (n != cols) return lb_error(LB_EFORMAT, "%s:%d: %d cells, the header has %d", r->name, r->line, n, cols);
    if (i == *cap) {
        int nc = *cap ? 2 * *cap : 1024;
        int *l = lb_realloc(p->label, (size_t)nc * sizeof(int)), *pr = l ? lb_realloc(p->pred, (size_t)nc * sizeof(int)) : NULL;
        if (l) p->label = l;
        if (pr) p->pred = pr;
        float *lg = pr ? lb_realloc(p->logits, (size_t)nc * C * sizeof(float)) : NULL;
        if (lg) p->logits = lg;
        int *vp = lg ? lb_realloc(p->variant_pred, (size_t)nc * p->n_variants * sizeof(int) + 1) : NULL;
        if (vp) p->variant_pred = vp;
        if (!vp) return lb_error(LB_ENOMEM, "%s: out of memory at line %d", r->name, r->line);
        *cap = nc;
    }
    int idx;
    if ((rc = int_cell(r, cells[0], "index", i, (long)i + 1, &idx)) != LB_OK) return rc;
    if ((rc = int_cell(r, cells[1], "label", 0, C, &p->label[i])) != LB_OK) return rc;
    if ((rc = int_cell(r, cells[2], "pred", 0, C, &p->pred[i])) != LB_OK) return rc;
    for (int c = 0; c < C; c++) {
        char *e;
        float v = strtof(cells[3 + c], &e);
        if (e == cells[3 + c] || *e)
            return lb_error(LB_EFORMAT, "%s:%d: logit_%d '%s' is not a number", r->name, r->line, c, cells[3 + c]);
        p->logits[(size_t)i * C + c] = v;
    }
    for (int v = 0; v < p->n_variants; v++) /* stored row by row while reading; transposed at the end */
        if ((rc = int_cell(r, cells[3 + C + v], p->variant[v], 0, C, &p->variant_pred[(size_t)i * p->n_variants + v])) !=
            LB_OK)
            return rc;
    return LB_OK;
}

/* The variants' predictions from row-major [n][V] to one block [V][n] per variant. */
static int transpose_variants(lb_predictions *p)
{
    int V = p->n_variants, n = p->n;
    if (V < 2 || n == 0) return LB_OK;
    int *t = lb_malloc((size_t)V * n * sizeof(int));
    if (!t) return lb_error(LB_ENOMEM, "predictions: out of memory");
    for (int i = 0; i < n; i++)
        for (int v = 0; v < V; v++) t[(size_t)v * n + i] = p->variant_pred[(size_t)i * V + v];
    lb_free(p->variant_pred);
    p->variant_pred = t;
    return LB_OK;
}

int lb_predictions_parse_csv(lb_predictions *p, const char *text, size_t len, const char *name)
{
    memset(p, 0, sizeof *p);
    enum { MAX_CELLS = 4096 };
    char **cells = lb_malloc(MAX_CELLS * sizeof *cells), *line = NULL;
    reader r = {name, text, text + len, 0};
    int rc = cells ? LB_OK : lb_error(LB_ENOMEM, "%s: out of memory", name), n, cap = 0;
    if (rc == LB_OK && (n = next_line(&r, &line, cells, MAX_CELLS)) < 0)
        rc = n == -1 ? lb_error(LB_EFORMAT, "%s: empty (no header)", name) : LB_ENOMEM;
    if (rc == LB_OK) rc = read_header(&r, p, cells, n);
    while (rc == LB_OK && (n = next_line(&r, &line, cells, MAX_CELLS)) != -1) {
        if (n < 0) rc = LB_ENOMEM;
        else if ((rc = read_row(&r, p, cells, n, p->n, &cap)) == LB_OK) p->n++;
    }
    if (rc == LB_OK) rc = transpose_variants(p);
    lb_free(cells);
    lb_free(line);
    if (rc != LB_OK) lb_predictions_free(p);
    return rc;
}

int lb_predictions_read_csv(lb_predictions *p, const char *path)
{
    memset(p, 0, sizeof *p);
    char *text = NULL;
    size_t n = 0;
    int rc = lb_read_file(path, (size_t)1 << 31, &text, &n);
    if (rc == LB_OK) rc = lb_predictions_parse_csv(p, text, n, path);
    lb_free(text);
    return rc;
}
