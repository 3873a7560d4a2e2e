#!/usr/bin/python3
"""Writes tests/ref/loss_refs.h (reference values for tests/test_losses.c) and
tests/ref/loss_input.csv (the same logits as a libra-losses --input file).

Independent of libra's C code: every value comes from PyTorch in float64 (torch 1.13 and
torchvision 0.14 from Debian): F.cross_entropy (weights, label_smoothing), F.binary_cross_
entropy_with_logits, torchvision.ops.sigmoid_focal_loss, and short torch formulas written
from the papers for softmax focal (Lin et al.), LDAM (Cao et al.), logit adjustment (Menon et
al.), balanced softmax (Ren et al.) and the class-balanced weights (Cui et al.). Gradients are
torch autograd. Run once from the repo root:
    /usr/bin/python3 tests/ref/make_loss_refs.py
The C tests do not need Python; both outputs are committed.
"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torchvision.ops import sigmoid_focal_loss

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))

# ---- inputs: float32 logits (libra's input type), used exactly in float64 ----
rng = np.random.default_rng(20240505)
MAIN_N, MAIN_C = 8, 4
main_logits = (rng.standard_normal((MAIN_N, MAIN_C)) * 2.5).astype(np.float32)
main_logits[6] = [7.5, -3.0, 1.25, -6.0]     # one confident, correct row (p_y near 1)
main_targets = np.array([0, 1, 2, 3, 0, 0, 0, 3])
COUNTS = np.array([600, 150, 40, 10])
# large logits: |z| up to 1e4, targets both on and off the largest logit
large_logits = np.array([[1e4, -1e4, 0.0, 5e3],
                         [-1e4, 1e4, 3e3, -2e3],
                         [0.5, -1e4, 1e4, -0.5]], dtype=np.float32)
large_targets = np.array([0, 2, 1])
SETS = {"main": (main_logits, main_targets), "large": (large_logits, large_targets)}


def cb_weights(counts, beta):
    """Cui et al.'s effective-number weights (1-beta)/(1-beta^n), normalised to sum to C."""
    w = np.array([(1 - beta) / (1 - beta ** float(n)) for n in counts])
    return w * len(counts) / w.sum()


def normalised(w):
    w = np.asarray(w, dtype=np.float64)
    return w * len(w) / w.sum()


def run(fn, logits, targets):
    """Per-sample (weighted) losses, their gradients wrt each sample's logits, and the mean."""
    z = torch.tensor(logits.astype(np.float64), requires_grad=True)
    y = torch.tensor(targets)
    per, mean = fn(z, y)
    per.sum().backward()   # rows are independent: row i of the gradient is d l_i / d z_i
    return per.detach().numpy(), z.grad.numpy(), float(mean)


def onehot(y, C):
    return F.one_hot(y, C).to(torch.float64)


# Each case: (spec, step, total_steps, function returning (per-sample, mean)).
def ce(smoothing=0.0):
    def f(z, y):
        return (F.cross_entropy(z, y, reduction="none", label_smoothing=smoothing),
                F.cross_entropy(z, y, label_smoothing=smoothing))
    return f


def wce(w):
    wt = torch.tensor(w)
    def f(z, y):  # PyTorch's weighted mean: sum w_y l / sum w_y
        return F.cross_entropy(z, y, weight=wt, reduction="none"), F.cross_entropy(z, y, weight=wt)
    return f


def bce(pos_weight):
    def f(z, y):
        pw = torch.tensor(np.broadcast_to(pos_weight, (z.shape[1],)).copy())
        per = F.binary_cross_entropy_with_logits(z, onehot(y, z.shape[1]), pos_weight=pw,
                                                 reduction="none").sum(1)
        return per, per.mean()
    return f


def focal(gamma, alpha=None):
    def f(z, y):
        logp = F.log_softmax(z, dim=1).gather(1, y[:, None])[:, 0]
        per = -(1 - logp.exp()) ** gamma * logp
        if alpha is not None:
            per = per * torch.tensor(np.broadcast_to(alpha, (z.shape[1],)).copy())[y]
        return per, per.mean()
    return f


def sfocal(gamma, alpha, w=None):
    def f(z, y):
        per = sigmoid_focal_loss(z, onehot(y, z.shape[1]), alpha=alpha, gamma=gamma,
                                 reduction="none").sum(1)
        if w is not None:
            per = per * torch.tensor(w)[y]
        return per, per.mean()
    return f


def ldam(max_m, s, w=None):
    m = 1.0 / np.sqrt(np.sqrt(COUNTS.astype(np.float64)))
    m = torch.tensor(m * (max_m / m.max()))
    wt = None if w is None else torch.tensor(w)
    def f(z, y):
        out = torch.where(onehot(y, z.shape[1]) > 0, z - m[y][:, None], z)
        return (F.cross_entropy(s * out, y, weight=wt, reduction="none"),
                F.cross_entropy(s * out, y, weight=wt))
    return f


def adjusted(offset):
    off = torch.tensor(offset)
    def f(z, y):
        return F.cross_entropy(z + off, y, reduction="none"), F.cross_entropy(z + off, y)
    return f


prior = COUNTS / COUNTS.sum()
CASES = [
    ("ce", 0, 0, ce()),
    ("ce:smoothing=0.1", 0, 0, ce(0.1)),
    ("bce", 0, 0, bce(1.0)),
    ("bce:pos_weight=2", 0, 0, bce(2.0)),
    ("bce:pos_weight=1,2,3,4", 0, 0, bce(np.array([1.0, 2, 3, 4]))),
    ("wce", 0, 0, wce(normalised(1.0 / COUNTS))),
    ("wce:weights=sqrt", 0, 0, wce(normalised(1.0 / np.sqrt(COUNTS)))),
    ("wce:weights=effective,beta=0.99", 0, 0, wce(cb_weights(COUNTS, 0.99))),
    ("wce:weights=1,2,4,8", 0, 0, wce(normalised([1.0, 2, 4, 8]))),
    ("focal:gamma=2", 0, 0, focal(2.0)),
    ("focal:gamma=0.5,alpha=0.25", 0, 0, focal(0.5, 0.25)),
    ("focal:gamma=2,alpha=0.1,0.2,0.3,0.4", 0, 0, focal(2.0, np.array([0.1, 0.2, 0.3, 0.4]))),
    ("focal:gamma=1,alpha=inverse", 0, 0, focal(1.0, normalised(1.0 / COUNTS))),
    ("focal:gamma=2,alpha=effective,beta=0.99", 0, 0, focal(2.0, cb_weights(COUNTS, 0.99))),
    ("focal:gamma=2,alpha=inverse,drw=0.5", 40, 100, focal(2.0)),
    ("focal:gamma=2,alpha=inverse,drw=0.5", 60, 100, focal(2.0, normalised(1.0 / COUNTS))),
    ("sigmoid_focal", 0, 0, sfocal(2.0, 0.25)),
    ("sigmoid_focal:gamma=1.5,alpha=-1", 0, 0, sfocal(1.5, -1)),
    ("sigmoid_focal:gamma=0,alpha=0.75", 0, 0, sfocal(0.0, 0.75)),
    ("cb_focal", 0, 0, sfocal(1.0, -1, cb_weights(COUNTS, 0.9999))),
    ("cb_focal:beta=0.99,gamma=2", 0, 0, sfocal(2.0, -1, cb_weights(COUNTS, 0.99))),
    ("ldam", 0, 0, ldam(0.5, 30.0)),
    ("ldam:max_m=0.5,s=30,drw=0.8", 10, 100, ldam(0.5, 30.0)),
    ("ldam:max_m=0.5,s=30,drw=0.8", 90, 100, ldam(0.5, 30.0, cb_weights(COUNTS, 0.9999))),
    ("ldam:max_m=0.3,s=10,drw_step=5", 5, 0, ldam(0.3, 10.0, cb_weights(COUNTS, 0.9999))),
    ("logit_adjust", 0, 0, adjusted(np.log(prior))),
    ("logit_adjust:tau=0.5", 0, 0, adjusted(0.5 * np.log(prior))),
    ("balanced_softmax", 0, 0, adjusted(np.log(COUNTS.astype(np.float64)))),
]

# ---- the worked binary example of docs/losses.md ----
# Five images, class 0 Healthy (common), 1 Diseased (rare); logits (log P(H), log P(D)).
WORKED_PD = [0.10, 0.40, 0.70, 0.90, 0.20]
WORKED_Y = [0, 0, 0, 1, 1]
worked_logits = np.array([[math.log(1 - p), math.log(p)] for p in WORKED_PD], dtype=np.float32)


def worked(gamma, alpha_rare):
    z = torch.tensor(worked_logits.astype(np.float64))
    y = torch.tensor(WORKED_Y)
    logpt = F.log_softmax(z, dim=1).gather(1, y[:, None])[:, 0]
    pt = logpt.exp()
    at = torch.where(y == 1, torch.tensor(alpha_rare), torch.tensor(1 - alpha_rare))
    return pt.numpy(), (-logpt).numpy(), (-at * (1 - pt) ** gamma * logpt).numpy()


def fmt(v):
    return "%.17g" % v


def cfloat(v):
    """A C float literal that reads back as the same float32."""
    t = "%.9g" % v
    return t + ("f" if ("." in t or "e" in t) else ".0f")


def main():
    out = ["/* Generated by tests/ref/make_loss_refs.py (torch %s, torchvision %s, float64); "
           "do not edit. */" % (torch.__version__, torchvision.__version__),
           "#ifndef LIBRA_LOSS_REFS_H", "#define LIBRA_LOSS_REFS_H"]
    for name, (lg, tg) in SETS.items():
        n, c = lg.shape
        out.append("#define LREF_%s_N %d" % (name.upper(), n))
        out.append("#define LREF_%s_C %d" % (name.upper(), c))
        out.append("static const float lref_%s_logits[] = {%s};" % (name, ", ".join(cfloat(v) for v in lg.ravel())))
        out.append("static const int lref_%s_targets[] = {%s};" % (name, ", ".join(str(v) for v in tg)))
    out.append("static const int lref_counts[] = {%s};" % ", ".join(str(v) for v in COUNTS))
    out.append("typedef struct {\n    const char *set; /* \"main\" or \"large\" */\n    const char *spec;\n"
               "    long step, total_steps;\n    double mean;\n    double loss[8];\n    double grad[32];\n} lref_case;")
    out.append("static const lref_case lref_cases[] = {")
    count = 0
    e2e = None
    for name, (lg, tg) in SETS.items():
        for spec, step, total, fn in CASES:
            per, grad, mean = run(fn, lg, tg)
            if not (np.isfinite(per).all() and np.isfinite(grad).all() and math.isfinite(mean)):
                continue  # torch's own formula is not finite here (e.g. (1-p)^0.5 at p = 1)
            out.append("    {\"%s\", \"%s\", %d, %d, %s,\n     {%s},\n     {%s}}," % (
                name, spec, step, total, fmt(mean), ", ".join(fmt(v) for v in per),
                ", ".join(fmt(v) for v in grad.ravel())))
            count += 1
            if name == "main" and spec == "focal:gamma=2":
                e2e = (per, mean)
    out.append("};")
    out.append("#define LREF_NCASES %d" % count)
    # values the end-to-end test reads back from libra-losses' CSV output
    out.append("/* e2e_losses.sh: libra-losses --loss focal:gamma=2 --input tests/ref/loss_input.csv */")
    out.append("#define LREF_E2E_FOCAL_MEAN %s" % fmt(e2e[1]))
    out.append("#define LREF_E2E_FOCAL_LOSS0 %s" % fmt(e2e[0][0]))
    pt, ce_v, fl_v = worked(2.0, 0.25)
    out.append("/* docs/losses.md worked example: P(Diseased) = %s, labels %s, gamma 2, alpha 0.25 on "
               "Diseased */" % (WORKED_PD, WORKED_Y))
    out.append("static const float lref_worked_logits[] = {%s};" % ", ".join(cfloat(v) for v in worked_logits.ravel()))
    out.append("static const int lref_worked_targets[] = {%s};" % ", ".join(str(v) for v in WORKED_Y))
    out.append("static const double lref_worked_pt[] = {%s};" % ", ".join(fmt(v) for v in pt))
    out.append("static const double lref_worked_ce[] = {%s};" % ", ".join(fmt(v) for v in ce_v))
    out.append("static const double lref_worked_focal[] = {%s};" % ", ".join(fmt(v) for v in fl_v))
    out.append("#endif")
    with open(os.path.join(HERE, "loss_refs.h"), "w") as f:
        f.write("\n".join(out) + "\n")
    with open(os.path.join(HERE, "loss_input.csv"), "w") as f:
        f.write("target,%s\n" % ",".join("logit_%d" % c for c in range(MAIN_C)))
        for i in range(MAIN_N):
            f.write("%d,%s\n" % (main_targets[i], ",".join("%.9g" % v for v in main_logits[i])))
    print("worked example (gamma=2, alpha=0.25 on Diseased):")
    print(" i  P(H)  P(D)  label     p_t       CE        FL")
    for i in range(5):
        print("%2d  %.2f  %.2f  %-8s  %.6f  %.6f  %.6f" % (i + 1, 1 - WORKED_PD[i], WORKED_PD[i],
              "Diseased" if WORKED_Y[i] else "Healthy", pt[i], ce_v[i], fl_v[i]))
    print("means: CE %.6f  FL %.6f" % (ce_v.mean(), fl_v.mean()))
    print("%d cases written" % count)


if __name__ == "__main__":
    main()
