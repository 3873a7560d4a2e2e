/* The CSV reader of the data source csv:FILE[,root=DIR][,path=COL][,label=COL][,split=COL]:
 * a CSV file listing image files and their labels (the Kaggle layout). The rules it reads by
 * are at the top of src/data/csv.c and in docs/data.md ("CSV-labelled images"). Internal to
 * src/data (and to the tests and the fuzz target). */
#ifndef LIBRA_DATA_CSV_H
#define LIBRA_DATA_CSV_H

#include "libra/base.h"

/* Which split a CSV row asks for. */
enum { LB__SPLIT_ANY = 0, LB__SPLIT_TRAIN, LB__SPLIT_VAL, LB__SPLIT_TEST };

typedef struct lb__csv_row {
    int line;      /* 1-based line number in the file where the record starts */
    char *path;    /* the image path: as written if absolute, else root + "/" + path */
    char *label;   /* the label cell, trimmed of surrounding spaces, never empty */
    int split;     /* LB__SPLIT_* (ANY when there is no split column) */
} lb__csv_row;

typedef struct lb__csv_table {
    lb__csv_row *rows;
    int n;
    int has_header;    /* the first record was a header */
    int has_split;     /* a split column was used */
} lb__csv_table;

/* Reads FILE. root NULL: the CSV's own folder. path_col / label_col / split_col: a header name
 * or a 1-based column index as a decimal string, or NULL for the defaults (path = column 1,
 * label = column 2, no split column). A row that cannot be used (too few cells, an empty path
 * or label cell, a split value other than train / val / valid / validation / test, any case)
 * becomes a warning "FILE:LINE: problem (row skipped)" in *warnings when strict == 0, or the
 * LB_EINVAL error "FILE:LINE: problem" when strict != 0 (or warnings is NULL: nothing is
 * skipped in silence). File-level problems are errors always: cannot open (LB_EIO, naming the
 * file), not valid CSV (an unterminated quote: LB_EFORMAT naming the line where the quoted
 * field started; text after a closing quote, a NUL byte, more than 4096 columns: LB_EFORMAT
 * naming the line), a column name not in the header or an index beyond the columns (LB_EINVAL
 * naming the flag key and the header's columns), no usable row (LB_EINVAL). On failure *out
 * is empty; *warnings keeps what was added for the rows read before it. */
int lb__csv_read(const char *file, const char *root, const char *path_col, const char *label_col,
                 const char *split_col, int strict, lb_notes *warnings, lb__csv_table *out);
void lb__csv_free(lb__csv_table *t);

#endif
