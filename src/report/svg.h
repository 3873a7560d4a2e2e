/* The chart functions of report.html (internal). */
#ifndef LIBRA_REPORT_SVG_H
#define LIBRA_REPORT_SVG_H

#include "report/report_internal.h"

/* The style sheet of every report page. */
extern const char lb__report_css[];

#define LB_PALETTE_N 10
extern const char *const lb__palette[LB_PALETTE_N];

/* One line of a line chart. name goes to the legend (NULL: not listed); title is the hover
 * text (NULL: name). A non-finite point breaks the line. */
typedef struct lb_series {
    const char *name, *title, *color;
    const double *x, *y;
    size_t n;
    int dashed;
    int dots;   /* a dot at each point instead of a line (operating points) */
} lb_series;

/* HTML-escapes s (& < > " '); max_chars > 0 cuts it to that many characters plus an ellipsis. */
void lb__html_escape(lb_buf *b, const char *s, int max_chars);
/* Colour swatches with names (NULL names are skipped). */
void lb__html_legend(lb_buf *b, const char *const *names, const char *const *colors, size_t n);

void lb__svg_line_chart(lb_buf *b, const lb_series *s, size_t ns, const char *xlabel,
                       const char *ylabel, int y_from_zero);
/* Grouped bars: v[g * ns + k] is series k in group g; ymax NaN: from the data; NaN values
 * draw no bar. */
void lb__svg_bar_chart(lb_buf *b, const char *const *groups, size_t ng, const char *const *names,
                      const char *const *colors, size_t ns, const double *v, const char *ylabel,
                      double ymax, int value_labels);
/* Confusion matrix counts [C*C] as row-normalised colours (share of each true class). */
void lb__svg_heatmap(lb_buf *b, const char *const *labels, int C, const int64_t *cm,
                    const char *label);

/* Horizontal dot plot: one row per item (in the order given) with its mean and interval [lo,
 * hi] (NaN: none); mark 1 shades the row as the best, 2 as not distinguishable from it. */
void lb__svg_dot_plot(lb_buf *b, const char *const *labels, const double *mean, const double *lo, const double *hi,
                      const int *mark, size_t n, const char *xlabel);
/* Values v [nr * nc] (shares in [0, 1]; NaN: empty cell) as coloured cells with their
 * percentage, rows labelled on the left, columns on top. */
void lb__svg_value_heatmap(lb_buf *b, const char *const *rows, size_t nr, const char *const *cols, size_t nc,
                           const double *v, const char *label);
/* One line per series over nx categories (profiles), with the intervals as bars:
 * mean/lo/hi [ns * nx], series k at k * nx. */
void lb__svg_sweep_plot(lb_buf *b, const char *const *xlabels, size_t nx, const char *const *names,
                        const char *const *colors, size_t ns, const double *mean, const double *lo, const double *hi,
                        const char *ylabel);

#endif
