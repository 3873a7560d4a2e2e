/* A dense task's run record (OUT/runs/<name>.json of a dense study) written and read back. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

#define DENSE_FORMAT "libra-dense-run"
#define DENSE_VERSION 1
#define MAX_DENSE_CLASSES 100000

void lb_dense_record_free(lb_dense_record *r)
{
    if (!r) return;
    lb_free(r->strategy);
    lb_free(r->loss_spec);
    lb_free(r->ap);
    lb_free(r->image_ap);
    lb_free(r->maps);
    lb_curve_free(&r->loss);
    lb_curve_free(&r->val_map);
    memset(r, 0, sizeof *r);
}

static void put_doubles(lb_jw *w, const char *key, const double *v, int n)
{
    lb_jw_array(w, key, 1);
    for (int i = 0; i < n; i++) lb_jw_float(w, NULL, v ? v[i] : NAN);
    lb_jw_end(w, ']');
}

int lb_dense_record_to_json(const lb_dense_record *r, lb_buf *out)
{
    if (r->n_classes < 1 || !r->loss_spec)
        return lb_error(LB_EINVAL, "a dense record needs its classes and loss");
    lb_jw w;
    lb_jw_init(&w, out);
    lb_jw_object(&w, NULL, 0);
    lb_jw_string(&w, "format", DENSE_FORMAT);
    lb_jw_int(&w, "version", DENSE_VERSION);
    lb_jw_string(&w, "strategy", r->strategy);
    lb_jw_string(&w, "loss", r->loss_spec);
    lb_jw_float(&w, "prior", r->prior);
    lb_buf seed = {0};
    lb_buf_printf(&seed, "%" PRIu64, r->seed);
    lb_jw_string(&w, "seed", seed.p);
    lb_buf_free(&seed);
    lb_jw_int(&w, "n_classes", r->n_classes);
    lb_jw_bool(&w, "one_vs_all", r->one_vs_all);
    lb_jw_int(&w, "total_steps", r->total_steps);
    lb_jw_int(&w, "steps", r->steps);
    lb_jw_int(&w, "diverged_step", r->diverged_step);
    lb_jw_string(&w, "diverged_reason", r->diverged_step ? r->diverged_reason : "");
    lb_jw_float(&w, "train_seconds", r->train_seconds);
    lb_jw_float(&w, "wall_seconds", r->wall_seconds);
    lb_jw_float(&w, "images_per_second", r->images_per_second);
    lb_jw_float(&w, "foreground_share", r->foreground_share);
    lb_jw_float(&w, "test_foreground_share", r->test_foreground_share);
    lb_jw_float(&w, "mean_ap", r->mean_ap);
    lb_jw_float(&w, "image_mean_ap", r->image_mean_ap);
    put_doubles(&w, "ap", r->ap, r->n_classes);
    put_doubles(&w, "image_ap", r->image_ap, r->n_classes);
    lb_jw_float(&w, "final_loss", r->final_loss);
    lb__jw_curve(&w, "loss_curve", &r->loss);
    lb__jw_curve(&w, "val_mean_ap", &r->val_map);
    lb_jw_int(&w, "grid_h", r->grid_h);
    lb_jw_int(&w, "grid_w", r->grid_w);
    lb_jw_int(&w, "n_maps", r->maps ? r->n_maps : 0);
    lb_jw_floats(&w, "maps", r->maps, r->maps ? (size_t)r->n_maps * r->n_classes * r->grid_h * r->grid_w : 0);
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->param_hash);
    lb_jw_string(&w, "param_hash", hash);
    lb_jw_end(&w, '}');
    lb_buf_puts(out, "\n");
    return lb_buf_status(out, "a dense record");
}

int lb_dense_record_write_json(const lb_dense_record *r, const char *path)
{
    lb_buf b = {0};
    int st = lb_dense_record_to_json(r, &b);
    if (st == LB_OK) st = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return st;
}

/* ---- reading ---- */

static int get_double(const char *path, const lb_json *obj, const char *k, double *out)
{
    float f;
    int st = lb__json_get_float(path, obj, k, &f);
    if (st) return st;
    const lb_json *v = lb__json_get(obj, k);
    *out = v->type == LB_JSON_NULL ? NAN : strtod(v->str, NULL);
    return LB_OK;
}

static int get_long(const char *path, const lb_json *obj, const char *k, long *out)
{
    int64_t v;
    int st = lb__json_get_int64(path, obj, k, 0, &v);
    *out = (long)v;
    return st;
}

static int get_doubles(const char *path, const lb_json *obj, const char *k, int n, double **out)
{
    const lb_json *v = NULL;
    int st = lb__json_member(path, obj, k, LB_JSON_ARRAY, &v);
    if (st) return st;
    if (v->n != (size_t)n) return lb__json_bad(path, v, "\"%s\" has %zu values, expected %d (one per class)", k, v->n, n);
    if (!(*out = lb_malloc((size_t)n * sizeof(double)))) return lb_error(LB_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n && !st; i++) {
        float f;
        st = lb__json_to_float(path, &v->items[i], k, &f);
        (*out)[i] = v->items[i].type == LB_JSON_NULL ? NAN : st ? 0 : strtod(v->items[i].str, NULL);
    }
    return st;
}

static int read_maps(const char *path, const lb_json *obj, lb_dense_record *r)
{
    long n_maps, gh, gw;
    int st = get_long(path, obj, "n_maps", &n_maps);
    if (!st) st = get_long(path, obj, "grid_h", &gh);
    if (!st) st = get_long(path, obj, "grid_w", &gw);
    if (st) return st;
    if (gh < 1 || gw < 1 || gh > 4096 || gw > 4096 || n_maps > 64)
        return lb__json_bad(path, obj, "grid %ldx%ld or %ld maps out of range", gh, gw, n_maps);
    r->n_maps = (int)n_maps, r->grid_h = (int)gh, r->grid_w = (int)gw;
    const lb_json *v = NULL;
    if ((st = lb__json_member(path, obj, "maps", LB_JSON_ARRAY, &v)) != LB_OK) return st;
    size_t n = (size_t)n_maps * r->n_classes * gh * gw;
    if (v->n != n) return lb__json_bad(path, v, "\"maps\" has %zu values, expected %zu", v->n, n);
    if (n == 0) return LB_OK;
    if (!(r->maps = lb_malloc(n * sizeof(float)))) return lb_error(LB_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n && !st; i++) st = lb__json_to_float(path, &v->items[i], "a map value", &r->maps[i]);
    return st;
}

static int read_header(const char *path, const lb_json *obj, lb_dense_record *r)
{
    char *fmt = NULL, *seed = NULL;
    int64_t version = 0, C = 0;
    int st = lb__json_get_string(path, obj, "format", &fmt);
    if (!st && strcmp(fmt, DENSE_FORMAT) != 0)
        st = lb__json_bad(path, obj, "format \"%s\" is not a dense run record (\"%s\")", fmt, DENSE_FORMAT);
    if (!st) st = lb__json_get_int64(path, obj, "version", 1, &version);
    if (!st && version != DENSE_VERSION)
        st = lb__json_bad(path, obj, "dense record version %" PRId64 " is not %d", version, DENSE_VERSION);
    if (!st) st = lb__json_get_string(path, obj, "strategy", &r->strategy);
    if (!st) st = lb__json_get_string(path, obj, "loss", &r->loss_spec);
    if (!st) st = lb__json_get_string(path, obj, "seed", &seed);
    if (!st) {
        char *end = NULL;
        r->seed = strtoull(seed, &end, 10);
        if (!*seed || *end) st = lb__json_bad(path, obj, "seed \"%s\" is not a decimal integer", seed);
    }
    if (!st) st = lb__json_get_int64(path, obj, "n_classes", 1, &C);
    if (!st && C > MAX_DENSE_CLASSES) st = lb__json_bad(path, obj, "n_classes %" PRId64 " is out of range", C);
    r->n_classes = (int)C;
    lb_free(fmt);
    lb_free(seed);
    return st;
}

static int read_fields(const char *path, const lb_json *obj, lb_dense_record *r)
{
    const lb_json *ova = NULL, *reason = NULL;
    int st = get_double(path, obj, "prior", &r->prior);
    if (!st) st = lb__json_member(path, obj, "one_vs_all", LB_JSON_BOOL, &ova);
    if (!st) r->one_vs_all = ova->boolean;
    if (!st) st = get_long(path, obj, "total_steps", &r->total_steps);
    if (!st) st = get_long(path, obj, "steps", &r->steps);
    if (!st) st = get_long(path, obj, "diverged_step", &r->diverged_step);
    if (!st) st = lb__json_member(path, obj, "diverged_reason", LB_JSON_STRING, &reason);
    if (!st) snprintf(r->diverged_reason, sizeof r->diverged_reason, "%s", reason->str);
    if (!st) st = get_double(path, obj, "train_seconds", &r->train_seconds);
    if (!st) st = get_double(path, obj, "wall_seconds", &r->wall_seconds);
    if (!st) st = get_double(path, obj, "images_per_second", &r->images_per_second);
    if (!st) st = get_double(path, obj, "foreground_share", &r->foreground_share);
    if (!st) st = get_double(path, obj, "test_foreground_share", &r->test_foreground_share);
    if (!st) st = get_double(path, obj, "mean_ap", &r->mean_ap);
    if (!st) st = get_double(path, obj, "image_mean_ap", &r->image_mean_ap);
    if (!st) st = get_doubles(path, obj, "ap", r->n_classes, &r->ap);
    if (!st) st = get_doubles(path, obj, "image_ap", r->n_classes, &r->image_ap);
    if (!st) st = lb__json_get_float(path, obj, "final_loss", &r->final_loss);
    if (!st) st = lb__json_read_curve(path, obj, "loss_curve", &r->loss);
    if (!st) st = lb__json_read_curve(path, obj, "val_mean_ap", &r->val_map);
    if (!st) st = read_maps(path, obj, r);
    char *hash = NULL;
    if (!st) st = lb__json_get_string(path, obj, "param_hash", &hash);
    if (!st) r->param_hash = strtoull(hash, NULL, 16);
    lb_free(hash);
    return st;
}

static const char *const dense_keys[] = {
    "format", "version", "strategy", "loss", "prior", "seed", "n_classes", "one_vs_all", "total_steps", "steps",
    "diverged_step", "diverged_reason", "train_seconds", "wall_seconds", "images_per_second", "foreground_share",
    "test_foreground_share", "mean_ap", "image_mean_ap", "ap", "image_ap", "final_loss", "loss_curve",
    "val_mean_ap", "grid_h", "grid_w", "n_maps", "maps", "param_hash", NULL};

int lb_dense_record_read_json(lb_dense_record *r, const char *path)
{
    memset(r, 0, sizeof *r);
    char *text = NULL;
    size_t n = 0;
    int st = lb_read_file(path, (size_t)1 << 30, &text, &n);
    if (st) return st;
    lb_json root;
    st = lb__json_parse(text, n, path, &root);
    lb_free(text);
    if (st) return st;
    if (root.type != LB_JSON_OBJECT) st = lb__json_bad(path, &root, "a dense run record must be a JSON object");
    if (!st) st = lb__json_only_keys(path, &root, "a dense run record", dense_keys);
    if (!st) st = read_header(path, &root, r);
    if (!st) st = read_fields(path, &root, r);
    lb__json_free(&root);
    if (st) lb_dense_record_free(r);
    return st;
}
