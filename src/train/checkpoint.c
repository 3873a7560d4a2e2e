/* Checkpoints: capture/restore of model + optimizer + training state, and the file format
 * (header with magic, version, payload size and CRC32; tagged little-endian sections).
 * Files are written with lb_write_file_atomic (temporary file, fsync, rename). */
#include "libra/train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CKPT_MAGIC "LIBRACKP"
#define CKPT_VERSION 1u
#define CKPT_HEADER 32u

/* ---------------------------------------------------------------- meta */

void lb_checkpoint_init(lb_checkpoint *c)
{
    memset(c, 0, sizeof *c);
    c->best_step = -1;
}

void lb_checkpoint_free(lb_checkpoint *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_meta; i++) {
        lb_free(c->meta_key[i]);
        lb_free(c->meta_val[i]);
    }
    lb_free(c->meta_key);
    lb_free(c->meta_val);
    lb_free(c->params);
    lb_free(c->state);
    lb_free(c->optim_m);
    lb_free(c->optim_v);
    lb_free(c->best_params);
    lb_free(c->best_state);
    lb_free(c->val_labels);
    lb_free(c->val_logits);
    lb_curve_free(&c->loss);
    memset(c, 0, sizeof *c);
    c->best_step = -1;
}

const char *lb_checkpoint_get(const lb_checkpoint *c, const char *key)
{
    for (int i = 0; i < c->n_meta; i++)
        if (strcmp(c->meta_key[i], key) == 0) return c->meta_val[i];
    return NULL;
}

int lb_checkpoint_set(lb_checkpoint *c, const char *key, const char *value)
{
    char *v = lb_strdup(value ? value : "");
    if (!v) return lb_error(LB_ENOMEM, "checkpoint: out of memory");
    for (int i = 0; i < c->n_meta; i++)
        if (strcmp(c->meta_key[i], key) == 0) {
            lb_free(c->meta_val[i]);
            c->meta_val[i] = v;
            return LB_OK;
        }
    if (c->n_meta == c->cap_meta) {
        int cap = c->cap_meta ? 2 * c->cap_meta : 32;
        char **k = lb_realloc(c->meta_key, (size_t)cap * sizeof *k);
        if (k) c->meta_key = k;
        char **vv = k ? lb_realloc(c->meta_val, (size_t)cap * sizeof *vv) : NULL;
        if (!vv) {
            lb_free(v);
            return lb_error(LB_ENOMEM, "checkpoint: out of memory");
        }
        c->meta_val = vv;
        c->cap_meta = cap;
    }
    char *k = lb_strdup(key);
    if (!k) {
        lb_free(v);
        return lb_error(LB_ENOMEM, "checkpoint: out of memory");
    }
    c->meta_key[c->n_meta] = k;
    c->meta_val[c->n_meta++] = v;
    return LB_OK;
}

/* ---------------------------------------------------------------- capture / restore */

static float *dup_floats(const float *src, size_t n)
{
    float *d = lb_malloc((n ? n : 1) * sizeof(float));
    if (d && n) memcpy(d, src, n * sizeof(float));
    return d;
}

/* The strings by which a checkpoint and a model must agree. */
static int model_identity(const lb_model *m, char *input, char *outputs, char **layout)
{
    sprintf(input, "%dx%dx%d", m->in_c, m->in_h, m->in_w);
    sprintf(outputs, "%d", lb_model_n_outputs(m));
    lb_buf b = {0};
    lb_model_layout(m, &b);
    *layout = lb_buf_take(&b);
    return *layout ? LB_OK : lb_error(LB_ENOMEM, "checkpoint: out of memory");
}

int lb_checkpoint_capture(lb_checkpoint *c, const lb_model *m, const lb_optim *o, long step)
{
    char input[48], outputs[16], *layout;
    if (model_identity(m, input, outputs, &layout) != LB_OK) return LB_ENOMEM;
    int rc = lb_checkpoint_set(c, "arch", m->arch);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "input", input);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "n_outputs", outputs);
    if (rc == LB_OK) rc = lb_checkpoint_set(c, "layout", layout);
    lb_free(layout);
    if (rc != LB_OK) return rc;

    lb_free(c->params);
    lb_free(c->state);
    lb_free(c->optim_m);
    lb_free(c->optim_v);
    c->optim_m = c->optim_v = NULL;
    c->n_params = m->params->size;
    c->params = dup_floats(m->params->data, c->n_params);
    c->n_state = m->state_size;
    c->state = dup_floats(m->state, c->n_state);
    if (!c->params || !c->state) return lb_error(LB_ENOMEM, "checkpoint: out of memory for %zu parameters", c->n_params);
    c->has_optim = o != NULL;
    if (o) {
        c->optim_kind = (int)o->cfg.kind;
        c->optim_k = lb_optim_state_per_param(o);
        c->optim_step = o->step;
        if (c->optim_k >= 1 && !(c->optim_m = dup_floats(o->m, o->n))) return lb_error(LB_ENOMEM, "checkpoint: out of memory");
        if (c->optim_k >= 2 && !(c->optim_v = dup_floats(o->v, o->n))) return lb_error(LB_ENOMEM, "checkpoint: out of memory");
    }
    c->step = step;
    c->model_rng = m->rng;
    return LB_OK;
}

static int differs(const char *what, const char *ck, const char *model)
{
    return lb_error(LB_EINVAL, "checkpoint is of a different architecture: %s '%s' in the checkpoint, '%s' in the model",
                    what, ck ? ck : "(missing)", model);
}

int lb_checkpoint_restore(const lb_checkpoint *c, lb_model *m, lb_optim *o)
{
    char input[48], outputs[16], *layout;
    if (model_identity(m, input, outputs, &layout) != LB_OK) return LB_ENOMEM;
    const char *keys[4] = {"arch", "input", "n_outputs", "layout"};
    const char *mine[4] = {m->arch, input, outputs, layout};
    for (int i = 0; i < 4; i++) {
        const char *v = lb_checkpoint_get(c, keys[i]);
        if (!v || strcmp(v, mine[i]) != 0) {
            int rc = differs(keys[i], v, mine[i]);
            lb_free(layout);
            return rc;
        }
    }
    lb_free(layout);
    if (c->n_params != m->params->size || c->n_state != m->state_size)
        return lb_error(LB_EFORMAT, "checkpoint holds %zu parameters and %zu buffers, the model %zu and %zu",
                        c->n_params, c->n_state, m->params->size, m->state_size);
    if (o) {
        if (!c->has_optim) return lb_error(LB_EINVAL, "checkpoint has no optimizer state to resume from");
        if (c->optim_kind != (int)o->cfg.kind)
            return lb_error(LB_EINVAL, "checkpoint was trained with optimizer %s, not %s",
                            lb_optim_kind_name((lb_optim_kind)c->optim_kind), lb_optim_kind_name(o->cfg.kind));
        if (c->optim_k != lb_optim_state_per_param(o))
            return lb_error(LB_EINVAL, "checkpoint's %s state has %d arrays, this optimizer %d (momentum on/off?)",
                            lb_optim_kind_name(o->cfg.kind), c->optim_k, lb_optim_state_per_param(o));
    }
    memcpy(m->params->data, c->params, c->n_params * sizeof(float));
    if (c->n_state) memcpy(m->state, c->state, c->n_state * sizeof(float));
    m->rng = c->model_rng;
    if (o) {
        if (c->optim_k >= 1) memcpy(o->m, c->optim_m, o->n * sizeof(float));
        if (c->optim_k >= 2) memcpy(o->v, c->optim_v, o->n * sizeof(float));
        o->step = c->optim_step;
    }
    return LB_OK;
}

lb_model *lb_model_new_checkpoint(const lb_checkpoint *c)
{
    const char *arch = lb_checkpoint_get(c, "arch"), *input = lb_checkpoint_get(c, "input"),
               *outs = lb_checkpoint_get(c, "n_outputs");
    int ch, h, w, n;
    if (!arch || !input || !outs || sscanf(input, "%dx%dx%d", &ch, &h, &w) != 3 || sscanf(outs, "%d", &n) != 1) {
        lb_error(LB_EFORMAT, "checkpoint: meta arch/input/n_outputs missing or malformed");
        return NULL;
    }
    lb_model *m = lb_model_new_arch(arch, ch, h, w, n);
    if (!m) return NULL;
    if (lb_checkpoint_restore(c, m, NULL) != LB_OK) {
        lb_model_free(m);
        return NULL;
    }
    if (c->best_params) {
        memcpy(m->params->data, c->best_params, c->n_params * sizeof(float));
        if (c->n_state) memcpy(m->state, c->best_state, c->n_state * sizeof(float));
    }
    return m;
}

/* ---------------------------------------------------------------- encoding */

/* Little-endian fields into the byte buffer (lb_buf holds bytes as well as text). */
static void put_u32(lb_buf *b, uint32_t v)
{
    unsigned char le[4];
    for (int i = 0; i < 4; i++) le[i] = (unsigned char)(v >> (8 * i));
    lb_buf_put(b, le, 4);
}

static void put_u64(lb_buf *b, uint64_t v)
{
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(v >> (8 * i));
    lb_buf_put(b, le, 8);
}

static void put_bytes(lb_buf *b, const void *src, size_t n) { lb_buf_put(b, src, n); }

static void put_f32s(lb_buf *b, const float *x, size_t n)
{
    for (size_t i = 0; i < n && !b->oom; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(b, u);
    }
}

/* A section: tag, 4 reserved bytes, u64 length, then the body written by the caller;
 * returns the position of the length field to patch. */
static size_t section_begin(lb_buf *b, const char tag[4])
{
    put_bytes(b, tag, 4);
    put_u32(b, 0);
    size_t at = b->n;
    put_u64(b, 0);
    return at;
}

static void section_end(lb_buf *b, size_t at)
{
    if (b->oom) return;
    uint64_t len = b->n - at - 8;
    for (int i = 0; i < 8; i++) b->p[at + i] = (char)(unsigned char)(len >> (8 * i));
}

static uint32_t crc_of(const unsigned char *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

/* The file header with zero payload size and CRC, patched by patch_header once known. */
static void put_header(lb_buf *b)
{
    put_bytes(b, CKPT_MAGIC, 8);
    put_u32(b, CKPT_VERSION);
    put_u32(b, CKPT_HEADER);
    put_u64(b, 0);
    put_u32(b, 0);
    put_u32(b, 0);
}

/* META: the count, then each key and value as a u32 length and its bytes. */
static void put_meta(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "META");
    put_u32(b, (uint32_t)c->n_meta);
    for (int i = 0; i < c->n_meta; i++) {
        size_t kl = strlen(c->meta_key[i]), vl = strlen(c->meta_val[i]);
        put_u32(b, (uint32_t)kl);
        put_bytes(b, c->meta_key[i], kl);
        put_u32(b, (uint32_t)vl);
        put_bytes(b, c->meta_val[i], vl);
    }
    section_end(b, at);
}

/* A section of a u64 count and that many floats (PARM, STAT). */
static void put_float_section(lb_buf *b, const char tag[4], const float *x, size_t n)
{
    size_t at = section_begin(b, tag);
    put_u64(b, n);
    put_f32s(b, x, n);
    section_end(b, at);
}

/* OPTM: optimizer kind, arrays per parameter, step, then the moment arrays. */
static void put_optim(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "OPTM");
    put_u32(b, (uint32_t)c->optim_kind);
    put_u32(b, (uint32_t)c->optim_k);
    put_u64(b, (uint64_t)c->optim_step);
    put_u64(b, c->n_params);
    if (c->optim_k >= 1) put_f32s(b, c->optim_m, c->n_params);
    if (c->optim_k >= 2) put_f32s(b, c->optim_v, c->n_params);
    section_end(b, at);
}

/* BEST: the step of the kept parameters, then the parameters and buffers. */
static void put_best(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "BEST");
    put_u64(b, (uint64_t)c->best_step);
    put_u64(b, c->n_params);
    put_f32s(b, c->best_params, c->n_params);
    put_u64(b, c->n_state);
    put_f32s(b, c->best_state, c->n_state);
    section_end(b, at);
}

/* VALS: u32 n, u32 C, n i32 labels, n * C floats of logits. */
static void put_vals(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "VALS");
    put_u32(b, (uint32_t)c->n_val);
    put_u32(b, (uint32_t)c->val_classes);
    for (int i = 0; i < c->n_val; i++) put_u32(b, (uint32_t)c->val_labels[i]);
    put_f32s(b, c->val_logits, (size_t)c->n_val * (size_t)c->val_classes);
    section_end(b, at);
}

/* TRST: the step and both RNG states. */
static void put_train_state(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "TRST");
    put_u64(b, (uint64_t)c->step);
    for (int i = 0; i < 4; i++) put_u64(b, c->model_rng.s[i]);
    for (int i = 0; i < 4; i++) put_u64(b, c->data_rng.s[i]);
    section_end(b, at);
}

/* CURV: the loss curve as (step, value) pairs, then the running window's sum and count. */
static void put_curve(lb_buf *b, const lb_checkpoint *c)
{
    size_t at = section_begin(b, "CURV");
    put_u64(b, (uint64_t)c->loss.n);
    for (size_t i = 0; i < c->loss.n; i++) {
        put_u64(b, (uint64_t)c->loss.step[i]);
        put_f32s(b, &c->loss.value[i], 1);
    }
    uint64_t bits;
    memcpy(&bits, &c->window_sum, 8);
    put_u64(b, bits);
    put_u64(b, (uint64_t)c->window_n);
    section_end(b, at);
}

/* Fills in the header's payload size and CRC32 of the payload. */
static void patch_header(lb_buf *b)
{
    uint64_t payload = b->n - CKPT_HEADER;
    uint32_t crc = crc_of((const unsigned char *)b->p + CKPT_HEADER, (size_t)payload);
    for (int i = 0; i < 8; i++) b->p[16 + i] = (char)(unsigned char)(payload >> (8 * i));
    for (int i = 0; i < 4; i++) b->p[24 + i] = (char)(unsigned char)(crc >> (8 * i));
}

int lb_checkpoint_write(const lb_checkpoint *c, const char *path)
{
    lb_buf b = {0};
    put_header(&b);
    put_meta(&b, c);
    put_float_section(&b, "PARM", c->params, c->n_params);
    put_float_section(&b, "STAT", c->state, c->n_state);
    if (c->has_optim) put_optim(&b, c);
    put_train_state(&b, c);
    put_curve(&b, c);
    if (c->best_params) put_best(&b, c);
    if (c->val_logits) put_vals(&b, c);
    if (b.oom) {
        lb_buf_free(&b);
        return lb_error(LB_ENOMEM, "%s: out of memory while encoding the checkpoint", path);
    }
    patch_header(&b);
    int rc = lb_buf_write(&b, path);
    lb_buf_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- decoding */

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    int bad;
    int oom; /* bad because an allocation failed, not because of the bytes */
} rbuf;

static int need(rbuf *r, size_t k)
{
    if (r->bad || r->n - r->pos < k) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static uint32_t get_u32(rbuf *r)
{
    if (!need(r, 4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)r->p[r->pos++] << (8 * i);
    return v;
}

static uint64_t get_u64(rbuf *r)
{
    if (!need(r, 8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)r->p[r->pos++] << (8 * i);
    return v;
}

/* n floats into a new array (NULL and r->bad if they are not all there). */
static float *get_f32s(rbuf *r, uint64_t n)
{
    if (n > (r->n - r->pos) / 4) {
        r->bad = 1;
        return NULL;
    }
    float *x = lb_malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!x) {
        r->bad = r->oom = 1;
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t u = get_u32(r);
        memcpy(&x[i], &u, 4);
    }
    return x;
}

static char *get_str(rbuf *r)
{
    uint32_t len = get_u32(r);
    if (!need(r, len)) return NULL;
    if (memchr(r->p + r->pos, '\0', len)) {
        r->bad = 1;
        return NULL;
    }
    char *s = lb_malloc((size_t)len + 1);
    if (!s) {
        r->bad = r->oom = 1;
        return NULL;
    }
    memcpy(s, r->p + r->pos, len);
    s[len] = '\0';
    r->pos += len;
    return s;
}

static int parse_section(rbuf *r, const char *tag, lb_checkpoint *c)
{
    if (memcmp(tag, "META", 4) == 0) {
        uint32_t n = get_u32(r);
        for (uint32_t i = 0; i < n && !r->bad; i++) {
            char *k = get_str(r), *v = k ? get_str(r) : NULL;
            if (v && lb_checkpoint_set(c, k, v) != LB_OK) r->bad = r->oom = 1;
            lb_free(k);
            lb_free(v);
        }
    } else if (memcmp(tag, "PARM", 4) == 0) {
        c->n_params = (size_t)get_u64(r);
        c->params = get_f32s(r, c->n_params);
    } else if (memcmp(tag, "STAT", 4) == 0) {
        c->n_state = (size_t)get_u64(r);
        c->state = get_f32s(r, c->n_state);
    } else if (memcmp(tag, "OPTM", 4) == 0) {
        c->has_optim = 1;
        c->optim_kind = (int)get_u32(r);
        c->optim_k = (int)get_u32(r);
        c->optim_step = (long)get_u64(r);
        uint64_t n = get_u64(r);
        /* the moments must match the parameters, so PARM must come first (fuzzer find) */
        if (c->optim_k < 0 || c->optim_k > 2 || !c->params || n != c->n_params) r->bad = 1;
        if (c->optim_k >= 1 && !r->bad) c->optim_m = get_f32s(r, n);
        if (c->optim_k >= 2 && !r->bad) c->optim_v = get_f32s(r, n);
    } else if (memcmp(tag, "BEST", 4) == 0) {
        c->best_step = (long)get_u64(r);
        /* the kept model must match the parameters and buffers, so PARM and STAT come first */
        if (get_u64(r) != c->n_params || !c->params || c->best_step < 0) r->bad = 1;
        if (!r->bad) c->best_params = get_f32s(r, c->n_params);
        if (!r->bad && get_u64(r) != c->n_state) r->bad = 1;
        if (!r->bad) c->best_state = get_f32s(r, c->n_state);
    } else if (memcmp(tag, "VALS", 4) == 0) {
        uint32_t n = get_u32(r), C = get_u32(r);
        /* each sample is at least 4 + 4 C bytes: a count the section cannot hold is refused first */
        if (C < 1 || C > 100000 || n > (r->n - r->pos) / (4 + 4 * (uint64_t)C)) return r->bad = 1, LB_EFORMAT;
        c->n_val = (int)n;
        c->val_classes = (int)C;
        if (!(c->val_labels = lb_malloc(sizeof(int) * ((size_t)n + 1)))) return r->bad = r->oom = 1, LB_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            c->val_labels[i] = (int)get_u32(r);
            if (c->val_labels[i] < 0 || c->val_labels[i] >= (int)C) r->bad = 1;
        }
        if (!r->bad) c->val_logits = get_f32s(r, (uint64_t)n * C);
    } else if (memcmp(tag, "TRST", 4) == 0) {
        c->step = (long)get_u64(r);
        for (int i = 0; i < 4; i++) c->model_rng.s[i] = get_u64(r);
        for (int i = 0; i < 4; i++) c->data_rng.s[i] = get_u64(r);
    } else if (memcmp(tag, "CURV", 4) == 0) {
        uint64_t n = get_u64(r);
        if (n > (r->n - r->pos) / 12) return r->bad = 1, LB_EFORMAT;
        if (lb_curve_reserve(&c->loss, (size_t)n + 1) != LB_OK) return r->bad = r->oom = 1, LB_ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
            c->loss.step[i] = (int64_t)get_u64(r);
            uint32_t u = get_u32(r);
            memcpy(&c->loss.value[i], &u, 4);
        }
        c->loss.n = (size_t)n;
        uint64_t bits = get_u64(r);
        memcpy(&c->window_sum, &bits, 8);
        c->window_n = (long)get_u64(r);
    }
    /* unknown tags: skipped, so a later minor addition does not break older readers */
    return r->bad ? LB_EFORMAT : LB_OK;
}

/* Checks the header of the file p[0..size): magic, version, header size, payload size, CRC. */
static int check_header(const unsigned char *p, size_t size, const char *path)
{
    if (size < 8 || memcmp(p, CKPT_MAGIC, 8) != 0)
        return lb_error(LB_EFORMAT, "%s: not a libra checkpoint (wrong magic; expected \"%s\")", path, CKPT_MAGIC);
    if (size < CKPT_HEADER)
        return lb_error(LB_EFORMAT, "%s: truncated: %zu bytes, shorter than the %u-byte header", path, size,
                        CKPT_HEADER);
    rbuf r = {p, size, 8, 0, 0};
    uint32_t version = get_u32(&r), header = get_u32(&r);
    uint64_t payload = get_u64(&r);
    uint32_t crc = get_u32(&r);
    if (version != CKPT_VERSION)
        return lb_error(LB_EFORMAT, "%s: checkpoint version %u is not supported (this build reads version %u)", path,
                        version, CKPT_VERSION);
    if (header != CKPT_HEADER)
        return lb_error(LB_EFORMAT, "%s: header size %u, expected %u", path, header, CKPT_HEADER);
    if (payload > size - CKPT_HEADER)
        return lb_error(LB_EFORMAT, "%s: truncated: the header announces %llu payload bytes, the file has %zu", path,
                        (unsigned long long)payload, size - CKPT_HEADER);
    if (payload < size - CKPT_HEADER)
        return lb_error(LB_EFORMAT, "%s: %zu unexpected bytes after the payload", path,
                        (size_t)(size - CKPT_HEADER - payload));
    uint32_t actual = crc_of(p + CKPT_HEADER, (size_t)payload);
    if (actual != crc)
        return lb_error(LB_EFORMAT, "%s: CRC mismatch (stored %08x, computed %08x): the file is corrupt", path, crc,
                        actual);
    return LB_OK;
}

/* Records a known section tag in *seen_known, refusing one seen before: a known section twice
 * would leak the first copy, or pair moments with other parameters (fuzzer finds). */
static int mark_section(const char *tag, int *seen_known, const char *path)
{
    static const char known[][5] = {"META", "PARM", "STAT", "OPTM", "TRST", "CURV", "BEST", "VALS"};
    for (int k = 0; k < 8; k++)
        if (memcmp(tag, known[k], 4) == 0) {
            if (*seen_known & (1 << k)) return lb_error(LB_EFORMAT, "%s: section %s appears twice", path, tag);
            *seen_known |= 1 << k;
        }
    return LB_OK;
}

/* Parses the sections of the payload p[CKPT_HEADER..size) into c, and checks that the
 * required ones are there. */
static int read_sections(lb_checkpoint *c, const unsigned char *p, size_t size, const char *path)
{
    rbuf r = {p, size, CKPT_HEADER, 0, 0};
    int seen_meta = 0, seen_parm = 0, seen_trst = 0, seen_known = 0;
    while (r.pos < size) {
        if (!need(&r, 16)) break;
        char tag[5] = {0};
        memcpy(tag, p + r.pos, 4);
        r.pos += 8;
        uint64_t len = get_u64(&r);
        if (len > size - r.pos)
            return lb_error(LB_EFORMAT, "%s: section %s claims %llu bytes, %zu remain", path, tag,
                            (unsigned long long)len, size - r.pos);
        int rc = mark_section(tag, &seen_known, path);
        if (rc != LB_OK) return rc;
        rbuf sec = {p + r.pos, (size_t)len, 0, 0, 0};
        if (parse_section(&sec, tag, c) != LB_OK || sec.pos != sec.n) {
            if (sec.oom) return lb_error(LB_ENOMEM, "%s: out of memory reading section %s", path, tag);
            return lb_error(LB_EFORMAT, "%s: section %s is malformed", path, tag);
        }
        seen_meta |= memcmp(tag, "META", 4) == 0;
        seen_parm |= memcmp(tag, "PARM", 4) == 0;
        seen_trst |= memcmp(tag, "TRST", 4) == 0;
        r.pos += (size_t)len;
    }
    if (r.bad) return lb_error(LB_EFORMAT, "%s: a section header is cut short", path);
    if (!seen_meta || !seen_parm || !seen_trst)
        return lb_error(LB_EFORMAT, "%s: missing section %s", path, !seen_meta ? "META" : !seen_parm ? "PARM" : "TRST");
    if (c->has_optim && c->optim_k >= 1 && !c->optim_m)
        return lb_error(LB_EFORMAT, "%s: optimizer state without parameters", path);
    return LB_OK;
}

int lb_checkpoint_read(lb_checkpoint *c, const char *path)
{
    lb_checkpoint_init(c);
    char *text = NULL;
    size_t size = 0;
    int rc = lb_read_file(path, SIZE_MAX - 1, &text, &size);
    if (rc != LB_OK) {
        if (rc == LB_EIO) lb_error_prefix("checkpoint");
        return rc;
    }
    const unsigned char *p = (const unsigned char *)text;
    rc = check_header(p, size, path);
    if (rc == LB_OK) rc = read_sections(c, p, size, path);
    lb_free(text);
    if (rc != LB_OK) lb_checkpoint_free(c);
    return rc;
}

