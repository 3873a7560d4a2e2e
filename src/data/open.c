/* Command-line specs, data options and presets: the strings that select the data (lb_data_new is in load.c). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "data/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- sources ---- */

void lb_source_free(lb_source *s)
{
    if (!s) return;
    for (int i = 0; i < LB_SOURCE_MAX_PATHS; i++) lb_free(s->path[i]);
    for (int i = 0; i < 4; i++) lb_free(s->csv[i]);
    memset(s, 0, sizeof *s);
}

#define SOURCE_FORMS                                                                                               \
    "fmnist, fmnist:DIR, folder:PATH, csv:FILE[,root=DIR][,path=COL][,label=COL][,split=COL], idx:DIR or "       \
    "idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS[,VAL_IMAGES,VAL_LABELS]"

static const char *const csv_keys[4] = {"root", "path", "label", "split"};

/* The positional paths of a source spec into out->path (exactly n of them, or for idx 1, 4
 * or 6; keys only for csv). */
static int source_paths(const lb_spec *sp, int n, lb_source *out, const char *usage)
{
    int got = lb_spec_n_args(sp);
    int count_ok = out->kind == LB_SOURCE_IDX ? got == 1 || got == 4 || got == 6 : got == n;
    if ((out->kind != LB_SOURCE_CSV && lb_spec_count(sp) > 0) || !count_ok)
        return lb_error(LB_EINVAL, "data source '%s': %s", lb_spec_text(sp), usage);
    n = got;
    for (int k = 0; k < n; k++)
        if (!(out->path[k] = lb_strdup(lb_spec_arg(sp, k)))) return lb_error(LB_ENOMEM, "data source '%s': out of memory", lb_spec_text(sp));
    return LB_OK;
}

/* csv's keys (root, path, label, split), each at most once. */
static int csv_options(const lb_spec *sp, lb_source *out)
{
    for (int i = 0; i < lb_spec_count(sp); i++) {
        const char *k = lb_spec_key(sp, i), *v = lb_spec_value(sp, i);
        int slot = -1;
        for (int j = 0; j < 4; j++)
            if (strcmp(k, csv_keys[j]) == 0) slot = j;
        if (slot < 0)
            return lb_error(LB_EINVAL, "data source '%s': unknown key '%s' (csv takes root, path, label, split)",
                            lb_spec_text(sp), k);
        if (!v || !*v) return lb_error(LB_EINVAL, "data source '%s': %s needs a value", lb_spec_text(sp), k);
        if (out->csv[slot]) return lb_error(LB_EINVAL, "data source '%s': %s is given twice", lb_spec_text(sp), k);
        if (!(out->csv[slot] = lb_strdup(v))) return lb_error(LB_ENOMEM, "data source '%s': out of memory", lb_spec_text(sp));
    }
    return LB_OK;
}

int lb_source_parse(lb_source *out, const char *spec)
{
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return lb_error(LB_EINVAL, "empty data source (expected " SOURCE_FORMS ")");
    lb_spec *sp = lb_spec_new(spec);
    if (!sp) {
        lb_error_prefix("data source");
        return lb_last_status();
    }
    const char *name = lb_spec_name(sp);
    int rc;
    if (strcmp(name, "fmnist") == 0) {
        out->kind = LB_SOURCE_FMNIST;
        rc = lb_spec_n_args(sp) == 0 && lb_spec_count(sp) == 0 ? LB_OK : source_paths(sp, 1, out, "fmnist takes one folder");
    } else if (strcmp(name, "folder") == 0) {
        out->kind = LB_SOURCE_FOLDER;
        rc = source_paths(sp, 1, out, "folder needs one path, as in folder:PATH");
    } else if (strcmp(name, "idx") == 0) {
        out->kind = LB_SOURCE_IDX;
        rc = source_paths(sp, 4, out,
                          "idx needs a folder (idx:DIR, holding train-*, test-* and optionally val-* IDX files), or "
                          "four comma-separated files TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS, or six "
                          "with VAL_IMAGES,VAL_LABELS after them");
    } else if (strcmp(name, "csv") == 0) {
        out->kind = LB_SOURCE_CSV;
        rc = source_paths(sp, 1, out, "csv needs one file, as in csv:labels.csv,root=images,label=diagnosis");
        if (rc == LB_OK) rc = csv_options(sp, out);
    } else {
        rc = lb_error(LB_EINVAL, "data source '%s': unknown (expected " SOURCE_FORMS ")", spec);
    }
    lb_spec_free(sp);
    if (rc != LB_OK) lb_source_free(out);
    return rc;
}

/* p made absolute: its realpath if it exists, else joined to the working directory. */
static char *absolute_path(const char *p)
{
    char *r = realpath(p, NULL), *out = NULL;
    if (r) {
        out = lb_strdup(r);
        free(r);
        return out;
    }
    if (p[0] == '/') return lb_strdup(p);
    char cwd[4096];
    return getcwd(cwd, sizeof cwd) ? lb_strfmt("%s/%s", cwd, p) : lb_strdup(p);
}

char *lb_source_format(const lb_source *s, int absolute)
{
    static const char *const names[4] = {"fmnist", "folder", "idx", "csv"};
    lb_buf b = {0};
    lb_buf_puts(&b, names[s->kind]);
    for (int k = 0; k < LB_SOURCE_MAX_PATHS && s->path[k]; k++) {
        char *p = absolute ? absolute_path(s->path[k]) : lb_strdup(s->path[k]);
        if (!p) b.oom = 1;
        else lb_buf_printf(&b, "%c%s", k ? ',' : ':', p);
        lb_free(p);
    }
    for (int k = 0; k < 4; k++) {
        if (!s->csv[k]) continue;
        char *v = absolute && k == 0 ? absolute_path(s->csv[k]) : lb_strdup(s->csv[k]);
        if (!v) b.oom = 1;
        else lb_buf_printf(&b, ",%s=%s", csv_keys[k], v);
        lb_free(v);
    }
    return lb_buf_take(&b);
}

int lb_parse_size(const char *s, int *h, int *w)
{
    if (!s || !*s) return lb_error(LB_EINVAL, "size '': expected HxW, e.g. 28x28");
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *x = strchr(buf, 'x');
    if (!x) x = strchr(buf, 'X');
    int a, b;
    if (x) {
        *x = '\0';
        if (lb_parse_int(buf, &a) || lb_parse_int(x + 1, &b))
            return lb_error(LB_EINVAL, "size '%s': expected HxW, e.g. 28x28", s);
    } else {
        if (lb_parse_int(buf, &a)) return lb_error(LB_EINVAL, "size '%s': expected HxW, e.g. 28x28", s);
        b = a;
    }
    if (a < 1 || b < 1 || a > 4096 || b > 4096)
        return lb_error(LB_EINVAL, "size '%s': each side must be 1..4096", s);
    *h = a;
    *w = b;
    return LB_OK;
}

/* ---- options ---- */

void lb_data_opts_init(lb_data_opts *o)
{
    memset(o, 0, sizeof *o);
    o->test_frac = 0.2;
    o->val_frac = LB_VAL_DEFAULT;
    o->seed = 1;
}

void lb_data_opts_free(lb_data_opts *o)
{
    lb_free(o->data);
    lb_free(o->imbalance);
    lb_free(o->order);
    lb_free(o->classes);
    lb_free(o->name);
    lb_free(o->description);
    memset(o, 0, sizeof *o);
}

static int set_str(char **slot, const char *v)
{
    char *d = lb_strdup(v);
    if (!d) return lb_error(LB_ENOMEM, "data option '%s': out of memory", v);
    lb_free(*slot);
    *slot = d;
    return LB_OK;
}

int lb_data_opts_set(lb_data_opts *o, const char *key, const char *value)
{
    if (!key || !value) return lb_error(LB_EINVAL, "data option: missing key or value");
    double d;
    int i;
    if (strcmp(key, "data") == 0 || strcmp(key, "source") == 0) {
        lb_source s = {0};
        lb_dense_spec ds = {0};
        int dense = strncmp(value, "dense:", 6) == 0;
        int rc = dense ? lb_dense_spec_parse(&ds, value) : LB_OK;
        if (rc == LB_OK) rc = lb_source_parse(&s, dense ? ds.source : value);
        lb_source_free(&s);
        lb_dense_spec_free(&ds);
        return rc ? rc : set_str(&o->data, value);
    }
    if (strcmp(key, "imbalance") == 0 || strcmp(key, "profile") == 0) { /* 'A|B|...': a sweep's profiles */
        char **list = NULL;
        int n = 0, rc = strchr(value, '|') ? lb_profile_list(value, &list, &n) : lb_profile_check(value);
        for (int i = 0; i < n; i++) lb_free(list[i]);
        lb_free(list);
        return rc ? rc : set_str(&o->imbalance, value);
    }
    if (strcmp(key, "order") == 0) return set_str(&o->order, value);
    if (strcmp(key, "classes") == 0) {
        if (!*value || value[0] == ',' || value[strlen(value) - 1] == ',' || strstr(value, ",,"))
            return lb_error(LB_EINVAL, "classes = '%s': give the class names separated by commas, as in Healthy,Diseased",
                            value);
        return set_str(&o->classes, value);
    }
    if (strcmp(key, "name") == 0) return set_str(&o->name, value);
    if (strcmp(key, "description") == 0) return set_str(&o->description, value);
    if (strcmp(key, "val") == 0) {
        if (lb_parse_double(value, &d) || !(d >= 0.0 && d < 1.0))
            return lb_error(LB_EINVAL, "val = '%s': the validation fraction must be a number in [0, 1)", value);
        o->val_frac = d;
        return LB_OK;
    }
    if (strcmp(key, "test") == 0) {
        if (lb_parse_double(value, &d) || !(d > 0.0 && d < 1.0))
            return lb_error(LB_EINVAL, "test = '%s': the test fraction must be a number in (0, 1)", value);
        o->test_frac = d;
        return LB_OK;
    }
    if (strcmp(key, "channels") == 0) {
        if (lb_parse_int(value, &i) || (i != 0 && i != 1 && i != 3))
            return lb_error(LB_EINVAL, "channels = '%s': must be 1 (gray) or 3 (RGB)", value);
        o->channels = i;
        return LB_OK;
    }
    if (strcmp(key, "size") == 0) return lb_parse_size(value, &o->height, &o->width);
    if (strcmp(key, "strict") == 0) {
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes")) o->strict = 1;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no")) o->strict = 0;
        else return lb_error(LB_EINVAL, "strict = '%s': must be 0/1, true/false or yes/no", value);
        return LB_OK;
    }
    if (strcmp(key, "seed") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || errno || value[0] == '-')
            return lb_error(LB_EINVAL, "seed = '%s': must be a non-negative integer", value);
        o->seed = (uint64_t)v;
        return LB_OK;
    }
    return lb_error(LB_EINVAL,
                    "unknown data option '%s' (known: data, imbalance, order, classes, val, test, channels, "
                    "size, strict, seed, name, description)", key);
}

/* ---- presets ---- */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Rewrites the relative paths of a source spec (and a csv's root) as relative to `dir`. */
static char *rebase_source(const char *spec, const char *dir)
{
    if (strncmp(spec, "dense:", 6) == 0) { /* the dense options kept, its source rebased */
        lb_dense_spec ds;
        if (lb_dense_spec_parse(&ds, spec) != LB_OK) return NULL;
        char *inner = rebase_source(ds.source, dir), *out = NULL;
        if (inner) out = lb__dense_spec_format(&ds, inner);
        lb_free(inner);
        lb_dense_spec_free(&ds);
        return out;
    }
    lb_source s;
    if (lb_source_parse(&s, spec) != LB_OK) return NULL;
    char **paths[LB_SOURCE_MAX_PATHS + 1];
    for (int k = 0; k < LB_SOURCE_MAX_PATHS; k++) paths[k] = &s.path[k];
    paths[LB_SOURCE_MAX_PATHS] = &s.csv[0];
    for (int k = 0; k < LB_SOURCE_MAX_PATHS + 1; k++) {
        if (!*paths[k] || (*paths[k])[0] == '/') continue;
        char *p = lb_strfmt("%s/%s", dir, *paths[k]);
        if (!p) {
            lb_source_free(&s);
            return NULL;
        }
        lb_free(*paths[k]);
        *paths[k] = p;
    }
    char *out = lb_source_format(&s, 0);
    lb_source_free(&s);
    return out;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* The file of preset `name` into *path: name itself when it looks like a path, else the
 * first of SEARCH_DIR/datasets/NAME.ini and datasets/NAME.ini that exists. */
static int find_preset(const char *name, const char *search_dir, char **path)
{
    *path = NULL;
    int looks_like_path = strchr(name, '/') != NULL ||
                          (strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".ini") == 0);
    if (looks_like_path) {
        if (!file_exists(name)) return lb_error(LB_EIO, "preset '%s': file not found", name);
        *path = lb_strdup(name);
    } else {
        char *tried1 = NULL, *tried2 = NULL;
        int rc = LB_OK;
        if (search_dir) tried1 = lb_strfmt("%s/datasets/%s.ini", search_dir, name);
        tried2 = lb_strfmt("datasets/%s.ini", name);
        if (tried1 && file_exists(tried1)) *path = lb_strdup(tried1);
        else if (tried2 && file_exists(tried2)) *path = lb_strdup(tried2);
        else
            rc = lb_error(LB_EIO, "preset '%s' not found (looked for %s%s%s)", name, tried1 ? tried1 : "",
                          tried1 ? " and " : "", tried2 ? tried2 : "");
        lb_free(tried1);
        lb_free(tried2);
        if (rc) return rc;
    }
    if (!*path) return lb_error(LB_ENOMEM, "preset '%s': out of memory", name);
    return LB_OK;
}

/* Applies one line of a preset ("key = value", # comments, blank lines) to o; the source
 * paths are taken relative to the preset's folder dir. Sets *have_name on a name key. */
static int apply_preset_line(lb_data_opts *o, char *line, const char *path, int line_no, const char *dir,
                             int *have_name)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (!*s) return LB_OK;
    char *eq = strchr(s, '=');
    if (!eq) return lb_error(LB_EINVAL, "%s:%d: expected 'key = value', got '%s'", path, line_no, s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    char *rebased = NULL;
    if (strcmp(key, "data") == 0 || strcmp(key, "source") == 0) {
        rebased = rebase_source(val, dir);
        if (rebased) val = rebased;
    }
    int rc = lb_data_opts_set(o, key, val);
    lb_free(rebased);
    if (rc) {
        if (strncmp(lb_last_error(), "unknown data option", 19) == 0)
            lb_error(LB_EINVAL, "%s:%d: unknown key '%s' (known: data, imbalance, order, classes, val, test, "
                                "channels, size, strict, seed, name, description)", path, line_no, key);
        else
            lb_error_prefix("%s:%d", path, line_no);
    }
    if (strcmp(key, "name") == 0) *have_name = 1;
    return rc;
}

/* Applies every line of the open preset file f (at path, in folder dir) to o. */
static int read_preset(lb_data_opts *o, FILE *f, const char *path, const char *dir, int *have_name)
{
    int rc = LB_OK, line_no = 0;
    char line[1024];
    while (rc == LB_OK && fgets(line, sizeof line, f)) {
        line_no++;
        if (!strchr(line, '\n') && !feof(f))
            return lb_error(LB_EINVAL, "%s:%d: line longer than %d characters", path, line_no, (int)sizeof line - 2);
        rc = apply_preset_line(o, line, path, line_no, dir, have_name);
    }
    if (rc == LB_OK && ferror(f)) rc = lb_error(LB_EIO, "%s: read error", path);
    return rc;
}

/* Names the preset after its file, without .ini (left unnamed when out of memory). */
static void default_preset_name(lb_data_opts *o, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *nm = lb_strdup(base);
    if (nm) {
        size_t L = strlen(nm);
        if (L > 4 && strcmp(nm + L - 4, ".ini") == 0) nm[L - 4] = '\0';
        lb_free(o->name);
        o->name = nm;
    }
}

int lb_data_preset_load(lb_data_opts *o, const char *name, const char *search_dir)
{
    if (!name || !*name) return lb_error(LB_EINVAL, "empty preset name");
    char *path;
    int rc = find_preset(name, search_dir, &path);
    if (rc) return rc;
    FILE *f = fopen(path, "r");
    if (!f) {
        rc = lb_error(LB_EIO, "preset %s: cannot open (%s)", path, strerror(errno));
        lb_free(path);
        return rc;
    }
    /* The preset's folder, for its relative source paths. */
    char *dir = lb_strdup(path);
    if (!dir) {
        fclose(f);
        rc = lb_error(LB_ENOMEM, "preset %s: out of memory", path);
        lb_free(path);
        return rc;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");

    int have_name = 0;
    rc = read_preset(o, f, path, dir, &have_name);
    fclose(f);
    /* The preset's name defaults to its file name without .ini. */
    if (rc == LB_OK && !have_name) default_preset_name(o, path);
    lb_free(dir);
    lb_free(path);
    return rc;
}
