/* libra study: strategies (what changes between runs of a comparison), their tuning grids,
 * and one (strategy, seed) run as a job that turns into a result record.
 *
 * A strategy is LOSS[@SAMPLER][+posthoc]:
 *   ce, wce:weights=inverse, focal:gamma=2, ce@oversample, ldam:drw=0.8, ce+posthoc
 * and the aliases `undersample` / `oversample` / `balanced` mean ce with that sampler.
 * A loss value written with '|' is a grid: focal:gamma=0.5|1|2,alpha=0.25|0.75 has six
 * points, each trained and judged by validation balanced accuracy.
 *
 * Several runs share one trained model when only evaluation differs: a run is identified by
 * its training key LOSS@SAMPLER and its seed; `+posthoc` only adds the post-hoc corrections
 * of the same model's logits to the record. */
#ifndef LIBRA_STUDY_H
#define LIBRA_STUDY_H

#include "libra/report.h"
#include "libra/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lb_strategy {
    char *spec;       /* as written, aliases expanded: "ce@oversample" */
    char *loss;       /* the loss part, possibly a grid: "focal:gamma=1|2" */
    char *sampler;    /* the sampler part: "shuffle" when none is given */
    int posthoc;      /* +posthoc: report prior correction and logit adjustment too */
    int n_points;     /* grid points of the loss (1 without a grid) */
    char **points;    /* each point's loss spec, in order */
} lb_strategy;

/* Parses one strategy. Errors (empty parts, an unknown suffix, a malformed grid) name the
 * strategy. The loss and sampler specs themselves are checked when a run is made, or by
 * lb_strategy_check. */
int lb_strategy_parse(lb_strategy *out, const char *text);
void lb_strategy_free(lb_strategy *s);
/* Creates (and frees) every grid point's loss and the sampler once, so a misspelt key is
 * reported before hours of training rather than in the middle. */
int lb_strategy_check(const lb_strategy *s, int n_classes, const int *class_counts);

/* Splits a --strategies list into strategies. ';' always separates. A ',' separates only
 * where the next part starts a strategy: it begins with a letter and has no '=' before a
 * ':' (so "focal:gamma=2,alpha=0.25,ce@oversample" is two strategies, and the commas inside
 * "wce:weights=1,2,4" stay in it). *items is an array of n strings (lb_free each, then it). */
int lb_strategy_split(const char *list, char ***items, int *n);

/* Expands '|' alternatives in the values of a spec "name:k1=a|b,k2=c|d" into the cartesian
 * product, in order (the last key varies fastest). A spec without '|' gives itself. */
int lb_grid_expand(const char *spec, char ***points, int *n);

/* The default strategies of a study (a NULL-terminated list). */
extern const char *const lb_default_strategies[];

/* "focal:gamma=2@shuffle" -> a file-name-safe slug; buf of size >= 8. */
const char *lb_slug(const char *s, char *buf, size_t size);

/* Trains one model (o with loss, sampler and seed set by the caller; o->monitor should be
 * LB_MONITOR_VAL so the record has its validation curve) on `data`, then fills rec:
 * strategy = "LOSS@SAMPLER", seed, steps, wall seconds, images/s, the test metrics,
 * the loss and validation curves, and both post-hoc variants computed from the same model's
 * test logits: "prior_correction" (softmax / prior, renormalised: the same as logit
 * adjustment with tau = 1) and "logit_adjust" with tau chosen from {0, 0.25, ..., 3} by
 * validation balanced accuracy (tau = 1 when there is no validation split).
 * hooks (may be NULL) are passed through to lb_train_run. */
int lb_study_run_one(const lb_train_opts *o, const lb_data *data, const lb_train_hooks *hooks,
                     lb_run_record *rec);

/* Final validation balanced accuracy of a record (the last point of its val curve; NaN if
 * it has none). */
float lb_run_record_val_bacc(const lb_run_record *rec);

#ifdef __cplusplus
}
#endif
#endif
