/* Fuzz target: the CSV reader of csv:FILE (lb__csv_read, src/data/csv.c).
 *
 * Input layout: byte 0 = flags, the rest = the CSV file, written to SCRATCH/csv/in.csv.
 *   flags bit 0: strict (an unusable row is an error, not a warning),
 *   flags bit 1: the columns by name: path=path, label=label (split=split with bit 4),
 *   flags bit 2: the columns by index: path=1, label=2 (split=3 with bit 4); with bit 1 too,
 *                path by name and label (and split) by index,
 *   flags bit 3: root=imgs (else the CSV's folder),
 *   flags bit 4: a split column (split=3 when neither bit 1 nor bit 2),
 *   flags bit 5: no notes for the warnings (warnings = NULL: every unusable row is an error).
 * On success every row must be usable and the table consistent; on failure the message must
 * be there and the table empty; either way nothing allocated may be left behind. */
#include "fuzz_common.h"

#include "../src/data/csv.h"

/* The column settings the flags ask for. */
static void fz_csv_columns(int flags, const char **p, const char **l, const char **s)
{
    int by_name = flags & 2, by_index = flags & 4, split = flags & 16;
    *p = by_name ? "path" : by_index ? "1" : NULL;
    *l = by_index ? "2" : by_name ? "label" : NULL;
    *s = !split ? NULL : by_index ? "3" : by_name ? "split" : "3";
}

static void fz_csv_check_table(const lb__csv_table *t, int flags, const char *file)
{
    FZ_CHECK(t->n >= 1 && t->rows != NULL, "n = %d accepted", t->n);
    FZ_CHECK(t->has_split == ((flags & 16) != 0), "has_split %d, flags %d", t->has_split, flags);
    if (flags & 2) FZ_CHECK(t->has_header, "a column by name, yet no header");
    size_t dir = strrchr(file, '/') - file;
    for (int i = 0; i < t->n; i++) {
        const lb__csv_row *r = &t->rows[i];
        FZ_CHECK(r->path && r->path[0], "row %d: empty path", i);
        FZ_CHECK(r->label && r->label[0], "row %d: empty label", i);
        size_t k = strlen(r->label);
        FZ_CHECK(r->label[0] != ' ' && r->label[0] != '\t' && r->label[k - 1] != ' ' && r->label[k - 1] != '\t',
                 "row %d: label '%s' not trimmed", i, r->label);
        for (size_t j = 0; j < k; j++)
            FZ_CHECK((unsigned char)r->label[j] >= 0x20 ? r->label[j] != 0x7f : r->label[j] == '\t',
                     "row %d: a control character (0x%02x) in the label", i, (unsigned char)r->label[j]);
        FZ_CHECK(r->line >= 1 && (i == 0 || r->line > t->rows[i - 1].line), "row %d: line %d after line %d", i,
                 r->line, i ? t->rows[i - 1].line : 0);
        if (t->has_split) FZ_CHECK(r->split >= LB__SPLIT_TRAIN && r->split <= LB__SPLIT_TEST, "split %d", r->split);
        else FZ_CHECK(r->split == LB__SPLIT_ANY, "split %d without a split column", r->split);
        if (r->path[0] != '/' && (flags & 8)) FZ_CHECK(!strncmp(r->path, "imgs/", 5), "path '%s'", r->path);
        if (r->path[0] != '/' && !(flags & 8))
            FZ_CHECK(!strncmp(r->path, file, dir + 1), "path '%s' not under the CSV's folder", r->path);
    }
}

int libra_fuzz_csv(const uint8_t *data, size_t size)
{
    if (size < 1) return LB_OK;
    int flags = data[0];
    char path[512];
    fz_mkdir("csv");
    fz_write(path, sizeof path, "csv/in.csv", data + 1, size - 1);
    const char *pc, *lc, *sc;
    fz_csv_columns(flags, &pc, &lc, &sc);
    lb_notes notes = {0};
    lb__csv_table t;
    int64_t live0 = lb_alloc_live();
    lb_clear_error();
    int rc = lb__csv_read(path, (flags & 8) ? "imgs" : NULL, pc, lc, sc, flags & 1, (flags & 32) ? NULL : &notes, &t);
    if (rc == LB_OK) {
        fz_csv_check_table(&t, flags, path);
    } else {
        FZ_CHECK(lb_last_error()[0] != '\0', "error %d without a message", rc);
        FZ_CHECK(lb_last_status() == rc, "status %d stored, %d returned", lb_last_status(), rc);
        FZ_CHECK(t.rows == NULL && t.n == 0, "a failed read left %d rows", t.n);
    }
    if (flags & 1) FZ_CHECK(notes.n == 0, "strict, yet %d warnings", notes.n);
    for (int i = 0; i < notes.n_kept; i++)
        FZ_CHECK(!strncmp(notes.msg[i], path, strlen(path)) && strstr(notes.msg[i], "(row skipped)"),
                 "warning '%s'", notes.msg[i]);
    lb__csv_free(&t);
    lb_notes_free(&notes);
    FZ_CHECK(lb_alloc_live() == live0, "%lld allocations left behind", (long long)(lb_alloc_live() - live0));
    return rc;
}

#ifndef LIBRA_FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    libra_fuzz_csv(data, size);
    return 0;
}
#endif
