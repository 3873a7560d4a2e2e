/* Tests of the CSV reader of csv:FILE (src/data/csv.c): the layout of the file (quotes, CRLF,
 * byte-order mark, blank lines), header detection, columns by name and by index, where
 * relative paths point, every kind of unusable row (as a warning, and as an error under
 * strict), every file-level error, and every allocation made to fail in turn.
 *
 * Where the reference values come from: every expected row, line number and message below is
 * worked out by hand from the CSV text next to it and the rules at the top of csv.c. */
#include "check_util.h"
#include "data/csv.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/libra_test_csv_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void cleanup_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(tmpdir);
}

/* tmpdir/rel, in a rotating set of buffers so several can be live at once. */
static const char *tp(const char *rel)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 1024, "%s/%s", tmpdir, rel);
    return b;
}

static const char *write_bytes(const char *name, const void *data, size_t n)
{
    const char *path = tp(name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
    return path;
}

/* Writes a CSV text (no NUL bytes) as tmpdir/name. */
static const char *write_csv(const char *name, const char *text) { return write_bytes(name, text, strlen(text)); }

/* A row as expected: its line, path, label and split. */
static void check_row(const lb__csv_table *t, int i, int line, const char *path, const char *label, int split)
{
    ck_assert_int_lt(i, t->n);
    ck_assert_int_eq(t->rows[i].line, line);
    ck_assert_str_eq(t->rows[i].path, path);
    ck_assert_str_eq(t->rows[i].label, label);
    ck_assert_int_eq(t->rows[i].split, split);
}

/* Reads a CSV with the given columns, non-strict, and asserts success. */
static void read_ok(const char *file, const char *root, const char *p, const char *l, const char *s,
                    lb_notes *w, lb__csv_table *t)
{
    int rc = lb__csv_read(file, root, p, l, s, 0, w, t);
    ck_assert_msg(rc == LB_OK, "%s: %s", file, lb_last_error());
}

/* ------------------------------------------------------------------ layouts */

/* Defaults (path = column 1, label = column 2); relative paths go under the CSV's folder. */
START_TEST(test_defaults_no_header)
{
    make_tmpdir();
    const char *f = write_csv("x.csv", "a.png,cat\nb/c.JPG, dog \n");
    lb_notes w = {0};
    lb__csv_table t;
    read_ok(f, NULL, NULL, NULL, NULL, &w, &t);
    /* "a.png" ends in .png, so line 1 is data; " dog " is trimmed (unquoted) */
    ck_assert_int_eq(t.n, 2);
    ck_assert_int_eq(t.has_header, 0);
    ck_assert_int_eq(t.has_split, 0);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, tp("b/c.JPG"), "dog", LB__SPLIT_ANY);
    ck_assert_int_eq(w.n, 0);
    lb__csv_free(&t);
    ck_assert_ptr_null(t.rows);
    ck_assert_int_eq(t.n, 0);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_defaults_header)
{
    make_tmpdir();
    /* "file" has no image extension: line 1 is the header */
    const char *f = write_csv("x.csv", "file,label\na.png,cat\nsub/b.webp,dog\n");
    lb__csv_table t;
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.n, 2);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 3, tp("sub/b.webp"), "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* every extension of the list, any case, makes line 1 data; "png" alone (no dot) and a
     * dot in a folder name do not */
    static const char *const data[] = {"a.png", "a.JPG", "a.jpeg", "a.bmp", "a.gif", "a.tga", "a.pnm", "a.ppm",
                                       "a.pgm", "a.psd", "a.hdr", "a.pic", "a.tif", "a.TIFF", "a.webp", NULL};
    for (int i = 0; data[i]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s,x\nb.png,y\n", data[i]);
        read_ok(write_csv("e.csv", text), NULL, NULL, NULL, NULL, NULL, &t);
        ck_assert_msg(t.has_header == 0 && t.n == 2, "%s read as a header", data[i]);
        lb__csv_free(&t);
    }
    static const char *const head[] = {"png", "a.txt", "d.png/file", "a.png.bak", NULL};
    for (int i = 0; head[i]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s,x\nb.png,y\n", head[i]);
        read_ok(write_csv("e.csv", text), NULL, NULL, NULL, NULL, NULL, &t);
        ck_assert_msg(t.has_header == 1 && t.n == 1, "%s read as data", head[i]);
        lb__csv_free(&t);
    }
    cleanup_tmpdir();
}
END_TEST

static const char *kaggle = "id,filename,class,fold\n"
                            "1,a.png,cat,train\n"
                            "2,b.png, dog ,VAL\n"
                            "3,c.png,cat, Test \n"
                            "4,d.png,dog,validation\n"
                            "5,e.png,dog,Valid\n";

START_TEST(test_columns_by_name)
{
    make_tmpdir();
    const char *f = write_csv("k.csv", kaggle);
    lb__csv_table t;
    read_ok(f, NULL, "filename", "class", "fold", NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.has_split, 1);
    ck_assert_int_eq(t.n, 5);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_TRAIN);
    check_row(&t, 1, 3, tp("b.png"), "dog", LB__SPLIT_VAL);
    check_row(&t, 2, 4, tp("c.png"), "cat", LB__SPLIT_TEST);
    check_row(&t, 3, 5, tp("d.png"), "dog", LB__SPLIT_VAL);
    check_row(&t, 4, 6, tp("e.png"), "dog", LB__SPLIT_VAL);
    lb__csv_free(&t);
    /* names and numbers mixed: a name makes line 1 the header even though "2" is a number */
    read_ok(f, NULL, "2", "class", NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.has_split, 0);
    check_row(&t, 4, 6, tp("e.png"), "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* a header whose path cell looks like an image is still the header when a name is given */
    read_ok(write_csv("h.csv", "x.png,y\na.png,cat\n"), NULL, NULL, "y", NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.n, 1);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_columns_by_index)
{
    make_tmpdir();
    /* the same columns by number: "filename" is no image, so line 1 is the header */
    const char *f = write_csv("k.csv", kaggle);
    lb__csv_table t;
    read_ok(f, NULL, "2", "3", "4", NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.n, 5);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_TRAIN);
    check_row(&t, 2, 4, tp("c.png"), "cat", LB__SPLIT_TEST);
    lb__csv_free(&t);
    /* no header: line 1 is data; leading zeros are decimal */
    f = write_csv("n.csv", "7,a.png,cat\n8,b.png,dog\n");
    read_ok(f, NULL, "02", "3", NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 0);
    ck_assert_int_eq(t.n, 2);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, tp("b.png"), "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* label before path */
    read_ok(f, NULL, "2", "1", NULL, NULL, &t);
    check_row(&t, 1, 2, tp("b.png"), "8", LB__SPLIT_ANY);
    lb__csv_free(&t);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_root_and_absolute)
{
    make_tmpdir();
    const char *f = write_csv("r.csv", "a.png,cat\n/abs/b.png,dog\n./c.png,cat\n");
    lb__csv_table t;
    /* root given: relative paths go under it (its trailing '/' dropped); absolute ones stay */
    read_ok(f, "/data/imgs/", NULL, NULL, NULL, NULL, &t);
    check_row(&t, 0, 1, "/data/imgs/a.png", "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, "/abs/b.png", "dog", LB__SPLIT_ANY);
    check_row(&t, 2, 3, "/data/imgs/./c.png", "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    read_ok(f, "rel", NULL, NULL, NULL, NULL, &t);
    check_row(&t, 0, 1, "rel/a.png", "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, "/abs/b.png", "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    read_ok(f, "/", NULL, NULL, NULL, NULL, &t);
    check_row(&t, 0, 1, "/a.png", "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* root NULL: the CSV's folder */
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, "/abs/b.png", "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* a CSV named without a folder: its folder is the current one, paths as written */
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    int rc = lb__csv_read("r.csv", NULL, NULL, NULL, NULL, 0, NULL, &t);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == LB_OK, "%s", lb_last_error());
    check_row(&t, 0, 1, "a.png", "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 2, "/abs/b.png", "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    ck_assert_err(lb__csv_read(f, "", NULL, NULL, NULL, 0, NULL, &t), LB_EINVAL, "root= is empty");
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_quotes)
{
    make_tmpdir();
    /* line 1: a quoted comma and doubled quotes; lines 2-3: one record whose path holds a
     * newline; line 4: plain; line 5: empty label (a warning on line 5, not 4); line 6: a
     * quoted label with spaces (trimmed) and a quoted path with spaces (kept); line 7: a '"'
     * inside an unquoted cell is literal; line 8: blanks around a quoted cell are dropped */
    const char *text = "\"a,b.png\",\"say \"\"hi\"\"\"\n"
                       "\"multi\nline.png\",x\n"
                       "c.png,y\n"
                       "d.png,\n"
                       "\" e.png\",\" z \"\n"
                       "5\"f.png,q\"r\n"
                       "  \"g.png\"  ,  \"w\"  \n";
    const char *f = write_csv("q.csv", text);
    lb_notes w = {0};
    lb__csv_table t;
    read_ok(f, NULL, NULL, NULL, NULL, &w, &t);
    ck_assert_int_eq(t.has_header, 0);
    ck_assert_int_eq(t.n, 6);
    check_row(&t, 0, 1, tp("a,b.png"), "say \"hi\"", LB__SPLIT_ANY);
    check_row(&t, 1, 2, tp("multi\nline.png"), "x", LB__SPLIT_ANY);
    check_row(&t, 2, 4, tp("c.png"), "y", LB__SPLIT_ANY);
    check_row(&t, 3, 6, tp(" e.png"), "z", LB__SPLIT_ANY);
    check_row(&t, 4, 7, tp("5\"f.png"), "q\"r", LB__SPLIT_ANY);
    check_row(&t, 5, 8, tp("g.png"), "w", LB__SPLIT_ANY);
    ck_assert_int_eq(w.n, 1);
    char want[1200];
    snprintf(want, sizeof want, "%s:5: empty label cell (row skipped)", f);
    ck_assert_str_eq(w.msg[0], want);
    lb_notes_free(&w);
    lb__csv_free(&t);
    /* a quoted field may span several lines, and CRLF inside it is kept */
    f = write_csv("q2.csv", "\"a\r\n\n.png\",x\r\nb.png,\"\"\"\"\r\n");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 2);
    check_row(&t, 0, 1, tp("a\r\n\n.png"), "x", LB__SPLIT_ANY);
    check_row(&t, 1, 4, tp("b.png"), "\"", LB__SPLIT_ANY); /* after the record of lines 1-3 */
    lb__csv_free(&t);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_crlf_bom_blank)
{
    make_tmpdir();
    lb__csv_table t;
    /* CRLF: no CR left in the cells; the last record ends with CR and the end of the file */
    const char *f = write_csv("c.csv", "path,label\r\na.png,cat\r\nb.png,dog\r");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 1);
    ck_assert_int_eq(t.n, 2);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 3, tp("b.png"), "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* a CR not followed by LF is an ordinary character */
    f = write_csv("c2.csv", "a\r.png,cat\n");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    check_row(&t, 0, 1, tp("a\r.png"), "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* BOM: stripped, so the header name "filename" matches; lines still count from 1 */
    f = write_csv("b.csv", "\xEF\xBB\xBF" "filename,label\na.png,cat\n");
    read_ok(f, NULL, "filename", NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 1);
    check_row(&t, 0, 2, tp("a.png"), "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* a BOM before a data line: the path is "a.png", not "\xEF\xBB\xBF" "a.png" */
    f = write_csv("b2.csv", "\xEF\xBB\xBF" "a.png,cat\n");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.has_header, 0);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* blank lines: line 1 empty, 2 spaces, 3 data, 4 a tab, 5 empty, 6 data (CRLF), 7 blank
     * at the end of the file without a newline */
    f = write_csv("bl.csv", "\n  \na.png,cat\n\t\n\nb.png,dog\r\n  ");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 2);
    check_row(&t, 0, 3, tp("a.png"), "cat", LB__SPLIT_ANY);
    check_row(&t, 1, 6, tp("b.png"), "dog", LB__SPLIT_ANY);
    lb__csv_free(&t);
    /* no final newline */
    f = write_csv("nl.csv", "a.png,cat");
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 1);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_ANY);
    lb__csv_free(&t);
    cleanup_tmpdir();
}
END_TEST

/* More rows than the table's first allocation (256). */
START_TEST(test_many_rows)
{
    make_tmpdir();
    lb_buf b = {0};
    lb_buf_puts(&b, "path,label\n");
    for (int i = 0; i < 1000; i++) lb_buf_printf(&b, "img%d.png,c%d\n", i, i % 7);
    const char *f = write_bytes("m.csv", b.p, b.n);
    lb_buf_free(&b);
    lb__csv_table t;
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 1000);
    char p[1100];
    snprintf(p, sizeof p, "%s/img999.png", tmpdir);
    check_row(&t, 999, 1001, p, "c5", LB__SPLIT_ANY); /* 999 % 7 = 5, line 999 + 2 */
    lb__csv_free(&t);
    cleanup_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ unusable rows */

/* Lines 2-8 of this file are unusable, one of each kind; line 9 is the one good row. */
static const char *bad_rows[] = {
    "a.png",             /* only 1 cell */
    ",cat,train",        /* empty path */
    "b.png, ,train",     /* empty label (blank) */
    "c.png,cat,",        /* empty split */
    "d.png,cat,holdout", /* unknown split */
    "f.png,\"Dis\neased\",train", /* a line break in the label (the record spans lines 7-8) */
};
static const char *bad_why[] = {
    "only 1 cell (label is column 2)",
    "empty path cell",
    "empty label cell",
    "empty split cell",
    "split 'holdout' is not train, val, valid, validation or test",
    "the label holds a line break or other control character",
};
#define N_BAD ((int)(sizeof bad_rows / sizeof bad_rows[0]))

START_TEST(test_bad_rows_warn)
{
    make_tmpdir();
    lb_buf b = {0};
    lb_buf_puts(&b, "path,label,split\n");
    for (int i = 0; i < N_BAD; i++) lb_buf_printf(&b, "%s\n", bad_rows[i]);
    lb_buf_puts(&b, "e.png,cat,TRAIN\n");
    const char *f = write_bytes("bad.csv", b.p, b.n);
    lb_buf_free(&b);
    lb_notes w = {0};
    lb__csv_table t;
    read_ok(f, NULL, NULL, NULL, "3", &w, &t);
    ck_assert_int_eq(t.n, 1);
    check_row(&t, 0, 9, tp("e.png"), "cat", LB__SPLIT_TRAIN);
    ck_assert_int_eq(w.n, N_BAD);
    for (int i = 0; i < N_BAD; i++) {
        char want[1200];
        snprintf(want, sizeof want, "%s:%d: %s (row skipped)", f, i + 2, bad_why[i]);
        ck_assert_str_eq(w.msg[i], want);
    }
    lb__csv_free(&t);
    /* warnings are added to what the notes already hold */
    read_ok(f, NULL, NULL, NULL, "split", &w, &t);
    ck_assert_int_eq(w.n, 2 * N_BAD);
    lb__csv_free(&t);
    lb_notes_free(&w);
    /* a long split value is cut in the message */
    f = write_csv("long.csv", "a.png,x,0123456789012345678901234567890123456789abcdef\nb.png,y,test\n");
    read_ok(f, NULL, NULL, NULL, "3", &w, &t);
    ck_assert_int_eq(t.n, 1);
    ck_assert_int_eq(w.n, 1);
    char want[1200];
    snprintf(want, sizeof want,
             "%s:1: split '0123456789012345678901234567890123456789...' is not train, val, valid, validation or test "
             "(row skipped)",
             f);
    ck_assert_str_eq(w.msg[0], want);
    lb__csv_free(&t);
    lb_notes_free(&w);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_bad_rows_strict)
{
    make_tmpdir();
    for (int i = 0; i < N_BAD; i++) {
        char text[256], want[1200];
        snprintf(text, sizeof text, "path,label,split\n%s\ne.png,cat,test\n", bad_rows[i]);
        const char *f = write_csv("s.csv", text);
        lb_notes w = {0};
        lb__csv_table t;
        snprintf(want, sizeof want, "%s:2: %s", f, bad_why[i]);
        ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, "3", 1, &w, &t), LB_EINVAL, want);
        ck_assert_str_eq(lb_last_error(), want);
        ck_assert_ptr_null(t.rows);
        ck_assert_int_eq(t.n, 0);
        ck_assert_int_eq(w.n, 0);
        /* no notes to keep them in: nothing is skipped in silence, the row is an error */
        ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, "3", 0, NULL, &t), LB_EINVAL, want);
        /* non-strict: a warning and the good row */
        read_ok(f, NULL, NULL, NULL, "3", &w, &t);
        ck_assert_int_eq(t.n, 1);
        ck_assert_int_eq(w.n, 1);
        lb__csv_free(&t);
        lb_notes_free(&w);
    }
    cleanup_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ file-level errors */

START_TEST(test_bad_files)
{
    make_tmpdir();
    lb__csv_table t;
    char want[1200];
    ck_assert_err(lb__csv_read(tp("missing.csv"), NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EIO, tp("missing.csv"));
    ck_assert_err(lb__csv_read(NULL, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EINVAL, "no file given");
    ck_assert_err(lb__csv_read(tmpdir, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EIO, "not a regular file");
    /* over 1 GiB (a sparse file: refused from its size, before anything is read) */
    const char *big = write_csv("big.csv", "");
    ck_assert_int_eq(truncate(big, (off_t)(1 << 30) + 1), 0);
    ck_assert_err(lb__csv_read(big, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT,
                  "1073741825 bytes, more than the 1073741824 this reader takes");
    unlink(big);
    /* the quoted field of line 2 is never closed; the error names line 2, not the end */
    const char *f = write_csv("u.csv", "a.png,cat\nb.png,\"dog\nc.png,x\nd.png,y\n");
    snprintf(want, sizeof want, "%s:2: not valid CSV: the quoted field starting on this line is never closed", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    ck_assert_ptr_null(t.rows);
    /* a quote at the very end of the file */
    f = write_csv("u2.csv", "a.png,cat\n\n\"");
    snprintf(want, sizeof want, "%s:3: not valid CSV: the quoted field starting on this line is never closed", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    /* text after a closing quote (line 2 after the quoted newline of line 1) */
    f = write_csv("t.csv", "\"a\n.png\"x,cat\n");
    snprintf(want, sizeof want, "%s:2: not valid CSV: text after the closing quote of a field", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    /* a NUL byte, unquoted (line 2) and quoted (line 3, after a quoted newline) */
    f = write_bytes("z.csv", "a.png,x\nb\0.png,y\n", 17);
    snprintf(want, sizeof want, "%s:2: a NUL byte: not a CSV text file", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    f = write_bytes("z2.csv", "a.png,x\n\"b\n\0.png\",y\n", 20);
    snprintf(want, sizeof want, "%s:3: a NUL byte: not a CSV text file", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_bad_columns)
{
    make_tmpdir();
    lb__csv_table t;
    char want[1200];
    const char *f = write_csv("h.csv", "filename,label,split\na.png,cat,train\n");
    snprintf(want, sizeof want, "%s: label=class: no such column in the header ('filename', 'label', 'split')", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, "class", NULL, 0, NULL, &t), LB_EINVAL, want);
    ck_assert_str_eq(lb_last_error(), want);
    /* names are matched exactly */
    ck_assert_err(lb__csv_read(f, NULL, "FILENAME", NULL, NULL, 0, NULL, &t), LB_EINVAL, "path=FILENAME: no such");
    snprintf(want, sizeof want, "%s: split=4: beyond the 3 columns of the header ('filename', 'label', 'split')", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, "4", 0, NULL, &t), LB_EINVAL, want);
    /* the default label column beyond a one-column header */
    f = write_csv("one.csv", "x\na.png\n");
    snprintf(want, sizeof want, "%s: label=2 (the default): beyond the 1 column of the header ('x')", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EINVAL, want);
    /* numbers out of range, empty settings, the same column twice */
    snprintf(want, sizeof want, "%s: path=0: a column number must be from 1 to 4096", f);
    ck_assert_err(lb__csv_read(f, NULL, "0", NULL, NULL, 0, NULL, &t), LB_EINVAL, want);
    ck_assert_err(lb__csv_read(f, NULL, NULL, "4097", NULL, 0, NULL, &t), LB_EINVAL, "label=4097: a column number");
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, "99999999999999999999", 0, NULL, &t), LB_EINVAL,
                  "split=99999999999999999999: a column number must be from 1 to 4096");
    ck_assert_err(lb__csv_read(f, NULL, NULL, "", NULL, 0, NULL, &t), LB_EINVAL,
                  "label= is empty: give a header name or a column number");
    f = write_csv("two.csv", "a.png,cat\n");
    snprintf(want, sizeof want, "%s: path and label are both column 1", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, "1", NULL, 0, NULL, &t), LB_EINVAL, want);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, "2", 0, NULL, &t), LB_EINVAL, "label and split are both column 2");
    /* a long header is listed shortened: cells cut at 40 characters, the count at the end */
    lb_buf b = {0};
    for (int i = 0; i < 40; i++) lb_buf_printf(&b, "%scolumn_%02d_with_a_rather_long_name_%s", i ? "," : "", i,
                                                i == 0 ? "that_goes_beyond_forty" : "x");
    lb_buf_puts(&b, "\n");
    f = write_bytes("wide.csv", b.p, b.n);
    lb_buf_free(&b);
    ck_assert_err(lb__csv_read(f, NULL, "nope", NULL, NULL, 0, NULL, &t), LB_EINVAL,
                  "('column_00_with_a_rather_long_name_that_g...', 'column_01_with_a_rather_long_name_x', ");
    ck_error_mentions(", ... (40 columns))");
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_too_many_columns)
{
    make_tmpdir();
    lb__csv_table t;
    lb_buf b = {0};
    /* 2 + 4094 = 4096 cells, the last "train": accepted; 4097: an error naming the line */
    lb_buf_puts(&b, "a.png,cat");
    for (int i = 2; i < 4096; i++) lb_buf_puts(&b, ",");
    lb_buf_puts(&b, "train\n");
    const char *f = write_bytes("w.csv", b.p, b.n);
    read_ok(f, NULL, NULL, NULL, NULL, NULL, &t);
    ck_assert_int_eq(t.n, 1);
    lb__csv_free(&t);
    read_ok(f, NULL, NULL, NULL, "4096", NULL, &t);
    check_row(&t, 0, 1, tp("a.png"), "cat", LB__SPLIT_TRAIN);
    lb__csv_free(&t);
    lb_buf_puts(&b, "b.png,dog,"); /* 3 cells, and one more per further comma: 3 + 4094 */
    for (int i = 3; i < 4097; i++) lb_buf_puts(&b, ",");
    f = write_bytes("w2.csv", b.p, b.n);
    lb_buf_free(&b);
    char want[1200];
    snprintf(want, sizeof want, "%s:2: more than 4096 columns", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, NULL, &t), LB_EFORMAT, want);
    ck_assert_ptr_null(t.rows);
    cleanup_tmpdir();
}
END_TEST

START_TEST(test_no_usable_row)
{
    make_tmpdir();
    lb__csv_table t;
    lb_notes w = {0};
    char want[1200];
    const char *f = write_csv("e.csv", "");
    snprintf(want, sizeof want, "%s: no usable row: the file is empty", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, &w, &t), LB_EINVAL, want);
    /* blank lines and a BOM only: empty too */
    f = write_csv("e2.csv", "\xEF\xBB\xBF \n\t\r\n\n");
    snprintf(want, sizeof want, "%s: no usable row: the file is empty", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, &w, &t), LB_EINVAL, want);
    /* an empty file with a column name: still "no usable row" */
    ck_assert_err(lb__csv_read(f, NULL, "file", NULL, NULL, 0, &w, &t), LB_EINVAL, "no usable row");
    f = write_csv("h.csv", "path,label\n\n");
    snprintf(want, sizeof want, "%s: no usable row: only a header", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, &w, &t), LB_EINVAL, want);
    ck_assert_int_eq(w.n, 0);
    /* every row skipped: the warnings are kept, the error names the first problem */
    f = write_csv("s.csv", "path,label\na.png,\n,b\n");
    snprintf(want, sizeof want, "%s: no usable row: all 2 rows skipped (the first, line 2: empty label cell)", f);
    ck_assert_err(lb__csv_read(f, NULL, NULL, NULL, NULL, 0, &w, &t), LB_EINVAL, want);
    ck_assert_ptr_null(t.rows);
    ck_assert_int_eq(w.n, 2);
    lb_notes_free(&w);
    cleanup_tmpdir();
}
END_TEST

/* ------------------------------------------------------------------ out of memory */

/* Every allocation of a read made to fail in turn (and every later one): LB_ENOMEM with a
 * message saying what was being allocated, nothing kept, *out empty. The file has a header,
 * quotes, a bad row (a warning) and more rows than the first table allocation. */
START_TEST(test_alloc_failures)
{
    make_tmpdir();
    lb_buf b = {0};
    lb_buf_puts(&b, "\xEF\xBB\xBF" "name,label,split\n\"q,1.png\",\"a \"\"b\"\"\",train\nbad.png,,test\n");
    for (int i = 0; i < 300; i++) lb_buf_printf(&b, "i%d.png,c%d,%s\n", i, i % 3, i % 2 ? "val" : "test");
    const char *f = write_bytes("a.csv", b.p, b.n);
    lb_buf_free(&b);
    int64_t live0 = lb_alloc_live();
    for (uint64_t n = 1;; n++) {
        lb_notes w = {0};
        lb__csv_table t;
        lb_clear_error();
        lb_alloc_fail_at(n, 1);
        int rc = lb__csv_read(f, NULL, "name", "label", "split", 0, &w, &t);
        uint64_t injected = lb_alloc_injected();
        lb_alloc_fail_at(0, 0);
        if (injected == 0) {
            ck_assert_msg(rc == LB_OK, "fails without a failing allocation: %s", lb_last_error());
            ck_assert_int_eq(t.n, 301);
            ck_assert_int_eq(w.n, 1);
            ck_assert_msg(n > 300, "only %llu allocations", (unsigned long long)n);
            lb__csv_free(&t);
            lb_notes_free(&w);
            ck_assert_int_eq(lb_alloc_live(), live0);
            break;
        }
        ck_assert_msg(rc == LB_ENOMEM, "allocation %llu failing: status %d (%s)", (unsigned long long)n, rc,
                      lb_last_error());
        ck_assert_int_eq(lb_last_status(), LB_ENOMEM);
        const char *m = lb_last_error();
        ck_assert_msg(strstr(m, "memory") && strlen(m) > strlen("out of memory") + 2,
                      "allocation %llu: the message does not say what was being allocated: '%s'",
                      (unsigned long long)n, m);
        ck_assert_ptr_null(t.rows);
        ck_assert_int_eq(t.n, 0);
        lb_notes_free(&w);
        ck_assert_msg(lb_alloc_live() == live0, "allocation %llu failing: %lld allocations not given back",
                      (unsigned long long)n, (long long)(lb_alloc_live() - live0));
    }
    cleanup_tmpdir();
}
END_TEST

static Suite *csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_defaults_no_header);
    tcase_add_test(tc, test_defaults_header);
    tcase_add_test(tc, test_columns_by_name);
    tcase_add_test(tc, test_columns_by_index);
    tcase_add_test(tc, test_root_and_absolute);
    tcase_add_test(tc, test_quotes);
    tcase_add_test(tc, test_crlf_bom_blank);
    tcase_add_test(tc, test_many_rows);
    tcase_add_test(tc, test_bad_rows_warn);
    tcase_add_test(tc, test_bad_rows_strict);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_bad_columns);
    tcase_add_test(tc, test_too_many_columns);
    tcase_add_test(tc, test_no_usable_row);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lb_run_suite(csv_suite()); }
