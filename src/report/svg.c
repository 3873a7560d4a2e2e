/* Inline SVG charts for report.html: one bar chart, one line chart, one heatmap.
 * Legends are HTML (they wrap by themselves); hover titles are SVG <title> elements. */
#include <math.h>
#include <string.h>

#include "report/svg.h"

const char *const lb__palette[LB_PALETTE_N] = {"#2c6fbb", "#e0701f", "#2f9a48", "#c9352f",
                                              "#7b57b3", "#8c5a3c", "#cf5aa8", "#6b6b6b",
                                              "#a3a12a", "#1ca3b8"};

void lb__html_escape(lb_buf *b, const char *s, int max_chars)
{
    int chars = 0;
    for (const char *p = s ? s : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c & 0xC0) != 0x80 && max_chars > 0 && ++chars > max_chars) { /* at a character start */
            lb_buf_puts(b, "&#8230;");
            return;
        }
        switch (c) {
        case '&': lb_buf_puts(b, "&amp;"); break;
        case '<': lb_buf_puts(b, "&lt;"); break;
        case '>': lb_buf_puts(b, "&gt;"); break;
        case '"': lb_buf_puts(b, "&quot;"); break;
        case '\'': lb_buf_puts(b, "&#39;"); break;
        default: lb_buf_put(b, p, 1);
        }
    }
}

void lb__html_legend(lb_buf *b, const char *const *names, const char *const *colors, size_t n)
{
    lb_buf_puts(b, "<div class=\"legend\">");
    for (size_t i = 0; i < n; i++) {
        if (!names[i]) continue;
        lb_buf_printf(b, "<span><i style=\"background:%s\"></i>", colors[i]);
        lb__html_escape(b, names[i], 0);
        lb_buf_puts(b, "</span>");
    }
    lb_buf_puts(b, "</div>\n");
}

/* Data range [v0, v1] mapped onto the plot area starting at pixel (L, T), PW x PH large. */
typedef struct {
    double x0, x1, y0, y1, L, T, PW, PH;
} frame;

static double fx(const frame *f, double x) { return f->L + (x - f->x0) / (f->x1 - f->x0) * f->PW; }
static double fy(const frame *f, double y)
{
    return f->T + f->PH - (y - f->y0) / (f->y1 - f->y0) * f->PH;
}

/* A 1-2-5 step giving about `target` intervals over `range`. */
static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/* Widens [*lo, *hi] to whole steps and returns the step. */
static double snap(double *lo, double *hi, int target)
{
    if (!(*hi > *lo)) *hi = *lo + 1;
    double step = nice_step(*hi - *lo, target);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

static void svg_open(lb_buf *b, double w, double h, const char *label)
{
    lb_buf_printf(b,
                  "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
                  "role=\"img\" aria-label=\"",
                  w, h, w, h);
    lb__html_escape(b, label, 0);
    lb_buf_puts(b, "\" xmlns=\"http://www.w3.org/2000/svg\">\n");
}

/* Horizontal grid lines with labels on the left, and the rotated axis title. */
static void y_axis(lb_buf *b, const frame *f, double step, const char *label)
{
    for (double v = f->y0; v <= f->y1 + step * 1e-6; v += step) {
        double y = fy(f, v);
        lb_buf_printf(
            b,
            "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
            "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.6g</text>\n",
            f->L, f->L + f->PW, y, y, f->L - 6, y + 4, fabs(v) < step * 1e-6 ? 0.0 : v);
    }
    lb_buf_printf(b,
                  "<text class=\"axis\" transform=\"translate(14 %.1f) rotate(-90)\" "
                  "text-anchor=\"middle\">",
                  f->T + f->PH / 2);
    lb__html_escape(b, label, 0);
    lb_buf_puts(b, "</text>\n");
}

void lb__svg_line_chart(lb_buf *b, const lb_series *s, size_t ns, const char *xlabel,
                       const char *ylabel, int y_from_zero)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t k = 0; k < ns; k++)
        for (size_t i = 0; i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            x0 = fmin(x0, s[k].x[i]);
            x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, s[k].y[i]);
            y1 = fmax(y1, s[k].y[i]);
        }
    if (!isfinite(x0)) {
        lb_buf_puts(b, "<p class=\"note\">No points were recorded.</p>\n");
        return;
    }
    if (y_from_zero && y0 > 0) y0 = 0;
    frame f = {x0, x1, y0, y1, 64, 12, 880, 250};
    double ys = snap(&f.y0, &f.y1, 5), xs = snap(&f.x0, &f.x1, 10);
    svg_open(b, 960, 310, ylabel);
    y_axis(b, &f, ys, ylabel);
    for (double v = f.x0; v <= f.x1 + xs * 1e-6; v += xs)
        lb_buf_printf(
            b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.6g</text>\n",
            fx(&f, v), f.T + f.PH + 16, v);
    lb_buf_printf(b, "<text class=\"axis\" x=\"%.1f\" y=\"304\" text-anchor=\"middle\">",
                  f.L + f.PW / 2);
    lb__html_escape(b, xlabel, 0);
    lb_buf_puts(b, "</text>\n");
    for (size_t k = 0; k < ns; k++) {
        for (size_t i = 0; s[k].dots && i < s[k].n; i++) {
            if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i])) continue;
            lb_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"#000\"><title>",
                          fx(&f, s[k].x[i]), fy(&f, s[k].y[i]), s[k].color);
            lb__html_escape(b, s[k].title ? s[k].title : s[k].name, 0);
            lb_buf_puts(b, "</title></circle>\n");
        }
        if (s[k].dots) continue;
        int open = 0; /* a NaN ends one polyline; the next finite point starts another */
        for (size_t i = 0; i <= s[k].n; i++) {
            int ok = i < s[k].n && isfinite(s[k].x[i]) && isfinite(s[k].y[i]);
            if (ok && !open) {
                lb_buf_printf(b, "<polyline class=\"line\" stroke=\"%s\"%s points=\"", s[k].color,
                              s[k].dashed ? " stroke-dasharray=\"5 3\"" : "");
                open = 1;
            }
            if (ok) lb_buf_printf(b, "%.1f,%.1f ", fx(&f, s[k].x[i]), fy(&f, s[k].y[i]));
            if (!ok && open) {
                lb_buf_puts(b, "\"><title>");
                lb__html_escape(b, s[k].title ? s[k].title : s[k].name, 0);
                lb_buf_puts(b, "</title></polyline>\n");
                open = 0;
            }
        }
    }
    lb_buf_puts(b, "</svg>\n");
}

void lb__svg_bar_chart(lb_buf *b, const char *const *groups, size_t ng, const char *const *names,
                      const char *const *colors, size_t ns, const double *v, const char *ylabel,
                      double ymax, int value_labels)
{
    double hi = ymax;
    if (!isfinite(hi)) {
        hi = 0;
        for (size_t i = 0; i < ng * ns; i++)
            if (isfinite(v[i])) hi = fmax(hi, v[i]);
    }
    size_t longest = 0;
    for (size_t g = 0; g < ng; g++)
        if (strlen(groups[g]) > longest) longest = strlen(groups[g]);
    double W = 960, PW = W - 80;
    int rotate = (double)longest * 6.5 > PW / (double)ng; /* labels would overlap */
    double B = rotate ? 20 + fmin((double)longest, 18) * 5.2 : 34;
    frame f = {0, 1, 0, hi, 64, 14, PW, 240};
    double ys = snap(&f.y0, &f.y1, 5);
    svg_open(b, W, f.T + f.PH + B, ylabel);
    y_axis(b, &f, ys, ylabel);
    double gw = f.PW / (double)ng, bw = gw * 0.8 / (double)ns;
    for (size_t g = 0; g < ng; g++) {
        double gx = f.L + gw * (double)g + gw * 0.1, ly = f.T + f.PH + 14;
        for (size_t k = 0; k < ns; k++) {
            double val = v[g * ns + k];
            if (!isfinite(val)) continue;
            double y = fy(&f, fmin(val, f.y1)), x = gx + bw * (double)k;
            lb_buf_printf(
                b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>",
                x, y, fmax(bw - 1, 1), f.T + f.PH - y, colors[k]);
            lb__html_escape(b, groups[g], 0);
            if (names && names[k]) {
                lb_buf_puts(b, " / ");
                lb__html_escape(b, names[k], 0);
            }
            lb_buf_printf(b, ": %.6g</title></rect>", val);
            if (value_labels)
                lb_buf_printf(
                    b,
                    "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.6g</text>",
                    x + bw / 2, y - 3, val);
            lb_buf_puts(b, "\n");
        }
        if (rotate)
            lb_buf_printf(b,
                          "<text class=\"tick\" text-anchor=\"end\" transform=\"translate(%.1f "
                          "%.1f) rotate(-35)\">",
                          f.L + gw * ((double)g + 0.5), ly - 4);
        else
            lb_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                          f.L + gw * ((double)g + 0.5), ly);
        lb__html_escape(b, groups[g], 18);
        lb_buf_puts(b, "</text>\n");
    }
    lb_buf_puts(b, "</svg>\n");
}

void lb__svg_heatmap(lb_buf *b, const char *const *labels, int C, const int64_t *cm,
                    const char *label)
{
    double cell = C <= 10 ? 34 : fmax(6, 340.0 / C), L = 120, T = 8;
    double side = cell * C, longest = 0;
    for (int c = 0; c < C; c++) longest = fmax(longest, fmin(17, (double)strlen(labels[c])));
    double below = longest * 5.0 + 30; /* room for the rotated column labels */
    svg_open(b, L + side + 10, T + side + below, label);
    for (int t = 0; t < C; t++) {
        int64_t row = 0;
        for (int p = 0; p < C; p++) row += cm[t * C + p];
        for (int p = 0; p < C; p++) {
            int64_t k = cm[t * C + p];
            double v = row ? (double)k / (double)row : 0; /* share of class t's test images */
            int r = (int)lround(255 - v * (255 - 24)), g = (int)lround(255 - v * (255 - 84)),
                bl = (int)lround(255 - v * (255 - 160));
            lb_buf_printf(b,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"rgb(%d,%d,%d)\"><title>true ",
                          L + cell * p, T + cell * t, cell, cell, r, g, bl);
            lb__html_escape(b, labels[t], 0);
            lb_buf_puts(b, ", predicted ");
            lb__html_escape(b, labels[p], 0);
            lb_buf_printf(b, ": %lld (%.1f%% of the row)</title></rect>", (long long)k, 100 * v);
            if (C <= 12 && k > 0)
                lb_buf_printf(b,
                              "<text class=\"cell\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                              "style=\"fill:%s\">%.0f</text>",
                              L + cell * (p + 0.5), T + cell * (t + 0.5) + 4,
                              v > 0.5 ? "#fff" : "#222", 100 * v);
        }
        lb_buf_puts(b, "\n");
        if (cell < 10) continue; /* names would overlap; the hover titles still have them */
        lb_buf_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 5,
                      T + cell * (t + 0.5) + 4);
        lb__html_escape(b, labels[t], 16);
        lb_buf_puts(b, "</text>\n");
    }
    for (int p = 0; p < C && cell >= 10; p++) {
        lb_buf_printf(b,
                      "<text class=\"tick\" text-anchor=\"end\" transform=\"translate(%.1f %.1f) "
                      "rotate(-50)\">",
                      L + cell * (p + 0.5) + 3, T + side + 8);
        lb__html_escape(b, labels[p], 16);
        lb_buf_puts(b, "</text>\n");
    }
    lb_buf_printf(b,
                  "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
                  "<text class=\"axis\" x=\"6\" y=\"%.1f\">true &#8595;</text>"
                  "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">predicted "
                  "&#8594;</text>\n</svg>\n",
                  L, T, side, side, T + 12, L + side, T + side + below - 6);
}
