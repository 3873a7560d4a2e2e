/* The study's summary charts for report.html: a dot plot of means with intervals, a heatmap of
 * values (recall per strategy and class; validation scores over a grid), and the sweep's plot
 * of balanced accuracy against the imbalance profile. Inline SVG, sized by its viewBox. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/svg.h"

static void open_svg(lb_buf *b, double w, double h, const char *label)
{
    lb_buf_printf(b,
                  "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
                  "aria-label=\"",
                  w, h, w, h);
    lb__html_escape(b, label, 0);
    lb_buf_puts(b, "\" xmlns=\"http://www.w3.org/2000/svg\">\n");
}

/* [lo, hi] widened to a step of 0.01, 0.02, 0.05 or 0.1 (values are shares in [0, 1]). */
static double share_axis(double *lo, double *hi)
{
    if (!(*hi > *lo)) {
        *lo -= 0.01;
        *hi += 0.01;
    }
    double r = *hi - *lo, step = r <= 0.05 ? 0.01 : r <= 0.1 ? 0.02 : r <= 0.3 ? 0.05 : 0.1;
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

void lb__svg_dot_plot(lb_buf *b, const char *const *labels, const double *mean, const double *lo, const double *hi,
                      const int *mark, size_t n, const char *xlabel)
{
    double x0 = INFINITY, x1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double a = isfinite(lo[i]) ? lo[i] : mean[i], z = isfinite(hi[i]) ? hi[i] : mean[i];
        if (isfinite(a)) x0 = fmin(x0, a);
        if (isfinite(z)) x1 = fmax(x1, z);
    }
    if (!isfinite(x0)) return;
    x0 = fmax(0, x0);
    x1 = fmin(1, x1);
    double step = share_axis(&x0, &x1);
    const double L = 300, W = 400, T = 8, R = 20, H = 20 * (double)n;
    open_svg(b, L + W + R, T + H + 42, xlabel);
    for (double v = x0; v <= x1 + step * 1e-6; v += step) {
        double x = L + (v - x0) / (x1 - x0) * W;
        lb_buf_printf(b,
                      "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" "
                      "y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n",
                      x, x, T, T + H, x, T + H + 14, 100 * v);
    }
    for (size_t i = 0; i < n; i++) {
        double y = T + 20 * (double)i + 10;
        if (mark[i])
            lb_buf_printf(b, "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"20\" fill=\"%s\"/>\n", y - 10, L + W,
                          mark[i] == 1 ? "#cfe8cf" : "#eaf5ea");
        lb_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 8, y + 4);
        lb__html_escape(b, labels[i], 44);
        lb_buf_puts(b, "</text>\n");
        if (!isfinite(mean[i])) continue;
        double xm = L + (mean[i] - x0) / (x1 - x0) * W;
        if (isfinite(lo[i]) && isfinite(hi[i]))
            lb_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" stroke-width=\"1.5\"/>\n",
                          L + (fmax(lo[i], x0) - x0) / (x1 - x0) * W, L + (fmin(hi[i], x1) - x0) / (x1 - x0) * W, y, y);
        lb_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#000\"><title>", xm, y,
                      mark[i] == 1 ? "#2f9a48" : "#2c6fbb");
        lb__html_escape(b, labels[i], 0);
        lb_buf_printf(b, ": %.2f%%", 100 * mean[i]);
        if (isfinite(lo[i])) lb_buf_printf(b, " [%.2f, %.2f]", 100 * lo[i], 100 * hi[i]);
        lb_buf_puts(b, "</title></circle>\n");
    }
    lb_buf_printf(b, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + W / 2, T + H + 34);
    lb__html_escape(b, xlabel, 0);
    lb_buf_puts(b, "</text>\n</svg>\n");
}

/* White to blue over [lo, hi]. */
static void cell_color(double t, char *out, size_t n)
{
    t = fmin(1, fmax(0, t));
    snprintf(out, n, "rgb(%d,%d,%d)", (int)lround(255 - t * (255 - 44)), (int)lround(255 - t * (255 - 111)),
             (int)lround(255 - t * (255 - 187)));
}

void lb__svg_value_heatmap(lb_buf *b, const char *const *rows, size_t nr, const char *const *cols, size_t nc,
                           const double *v, const char *label)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < nr * nc; i++)
        if (isfinite(v[i])) {
            lo = fmin(lo, v[i]);
            hi = fmax(hi, v[i]);
        }
    if (!isfinite(lo)) return;
    if (!(hi > lo)) hi = lo + 1e-9;
    const double L = 300, T = 92, cw = nc > 12 ? 34 : 46, ch = 20;
    open_svg(b, L + cw * (double)nc + 10, T + ch * (double)nr + 8, label);
    for (size_t c = 0; c < nc; c++) { /* column labels, turned so that long names fit */
        lb_buf_printf(b, "<text transform=\"translate(%.1f %.1f) rotate(-50)\">", L + cw * ((double)c + 0.5), T - 6);
        lb__html_escape(b, cols[c], 16);
        lb_buf_puts(b, "</text>\n");
    }
    for (size_t r = 0; r < nr; r++) {
        double y = T + ch * (double)r;
        lb_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 8, y + 14);
        lb__html_escape(b, rows[r], 44);
        lb_buf_puts(b, "</text>\n");
        for (size_t c = 0; c < nc; c++) {
            double x = L + cw * (double)c, val = v[r * nc + c];
            char color[32] = "#f4f4f4";
            if (isfinite(val)) cell_color((val - lo) / (hi - lo), color, sizeof color);
            lb_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x, y, cw,
                          ch, color);
            lb__html_escape(b, rows[r], 0);
            lb_buf_puts(b, ", ");
            lb__html_escape(b, cols[c], 0);
            if (isfinite(val)) lb_buf_printf(b, ": %.2f%%", 100 * val);
            lb_buf_puts(b, "</title></rect>\n");
            if (isfinite(val))
                lb_buf_printf(b, "<text class=\"cell\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">%.0f</text>\n",
                              x + cw / 2, y + 14, (val - lo) / (hi - lo) > 0.6 ? "#fff" : "#111", 100 * val);
        }
    }
    lb_buf_puts(b, "</svg>\n");
}

void lb__svg_sweep_plot(lb_buf *b, const char *const *xlabels, size_t nx, const char *const *names,
                        const char *const *colors, size_t ns, const double *mean, const double *lo, const double *hi,
                        const char *ylabel)
{
    double y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < ns * nx; i++) {
        double a = isfinite(lo[i]) ? lo[i] : mean[i], z = isfinite(hi[i]) ? hi[i] : mean[i];
        if (isfinite(a)) y0 = fmin(y0, a);
        if (isfinite(z)) y1 = fmax(y1, z);
    }
    if (!isfinite(y0) || nx == 0) return;
    y0 = fmax(0, y0);
    y1 = fmin(1, y1);
    double step = share_axis(&y0, &y1);
    const double L = 56, T = 10, W = 760, H = 320, dx = W / (double)nx;
    open_svg(b, L + W + 10, T + H + 44, ylabel);
    for (double v = y0; v <= y1 + step * 1e-6; v += step) {
        double y = T + H - (v - y0) / (y1 - y0) * H;
        lb_buf_printf(b,
                      "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                      "text-anchor=\"end\">%.0f</text>\n",
                      L, L + W, y, y, L - 6, y + 4, 100 * v);
    }
    for (size_t x = 0; x < nx; x++) {
        lb_buf_printf(b, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", L + dx * ((double)x + 0.5),
                      T + H + 18);
        lb__html_escape(b, xlabels[x], 24);
        lb_buf_puts(b, "</text>\n");
    }
    lb_buf_printf(b, "<text class=\"axis\" transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
                  T + H / 2);
    lb__html_escape(b, ylabel, 0);
    lb_buf_puts(b, "</text>\n");
    for (size_t k = 0; k < ns; k++) {
        double off = ((double)k - (double)(ns - 1) / 2) * fmin(4, dx * 0.5 / (double)(ns ? ns : 1));
        lb_buf_printf(b, "<g><title>");
        lb__html_escape(b, names[k], 0);
        lb_buf_printf(b, "</title><polyline class=\"line\" stroke=\"%s\"%s points=\"", colors[k],
                      k >= LB_PALETTE_N ? " stroke-dasharray=\"5 3\"" : "");
        for (size_t x = 0; x < nx; x++) {
            double m = mean[k * nx + x];
            if (isfinite(m))
                lb_buf_printf(b, "%.1f,%.1f ", L + dx * ((double)x + 0.5) + off, T + H - (m - y0) / (y1 - y0) * H);
        }
        lb_buf_puts(b, "\"/>\n");
        for (size_t x = 0; x < nx; x++) {
            double m = mean[k * nx + x], a = lo[k * nx + x], z = hi[k * nx + x], cx = L + dx * ((double)x + 0.5) + off;
            if (!isfinite(m)) continue;
            if (isfinite(a) && isfinite(z))
                lb_buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", cx, cx,
                              T + H - (fmax(a, y0) - y0) / (y1 - y0) * H, T + H - (fmin(z, y1) - y0) / (y1 - y0) * H,
                              colors[k]);
            lb_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", cx,
                          T + H - (m - y0) / (y1 - y0) * H, colors[k]);
        }
        lb_buf_puts(b, "</g>\n");
    }
    lb_buf_puts(b, "</svg>\n");
}
