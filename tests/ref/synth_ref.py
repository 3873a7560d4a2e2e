#!/usr/bin/python3
"""One-off imbalanced-learn reference for tests/test_synth.c: the danger set of
Borderline-SMOTE-1 and ADASYN's normalised per-row ratios on a hand-made 2-D fixture.

The fixture: class 0 is a jittered 4 x 4 grid over [6, 73]^2; class 1 has one point in the
middle of class 0 (noise), three on the right edge of class 0 (danger) and four in a cluster
of their own further right (safe). Row order: the 16 rows of class 0, then the 8 of class 1.
No query of class 1 has two rows at the same distance among its 7 nearest, so that the
neighbour order (and so imblearn's answer) does not depend on how ties are broken.

Run with Debian's python3-imblearn (0.10):  /usr/bin/python3 tests/ref/synth_ref.py
Its output is pasted into tests/test_synth.c (which needs no Python at run time).
"""
import numpy as np
from imblearn.over_sampling import ADASYN, BorderlineSMOTE

X0 = [(14, 9), (14, 34), (6, 51), (9, 71), (33, 12), (26, 30), (33, 54), (27, 72),
      (48, 8), (47, 29), (52, 54), (47, 74), (73, 14), (67, 26), (71, 50), (67, 71)]
X1 = [(41, 43), (83, 31), (81, 53), (77, 72), (110, 40), (113, 61), (121, 49), (104, 78)]
X = np.array(X0 + X1, dtype=float)
y = np.array([0] * len(X0) + [1] * len(X1))
n0 = len(X0)

# the fixture has no ties where they would matter
D = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
for i in np.flatnonzero(y == 1):
    d = np.sort(np.delete(D[i], i))[:7]
    assert len(set(d)) == len(d), f"a tie among the nearest of row {i}: {d}"

# Borderline-1 with m = 5: imblearn's own danger test (in_danger_noise, kind='danger')
b = BorderlineSMOTE(k_neighbors=3, m_neighbors=5, kind="borderline-1", random_state=0)
b.fit_resample(X, y)  # fits b.nn_m_ on X (m + 1 neighbours)
Xc = X[y == 1]
danger = np.flatnonzero(b._in_danger_noise(b.nn_m_, Xc, 1, y, kind="danger"))
noise = np.flatnonzero(b._in_danger_noise(b.nn_m_, Xc, 1, y, kind="noise"))
print("borderline m=5 danger (class positions):", ",".join(map(str, danger)))
print("borderline m=5 danger (rows):", ",".join(str(n0 + i) for i in danger))
print("borderline m=5 noise (class positions):", ",".join(map(str, noise)))

# ADASYN with k = 5: the lines of ADASYN._fit_resample up to the rounding
a = ADASYN(n_neighbors=5, random_state=0)
a._validate_estimator()
a.nn_.fit(X)
nns = a.nn_.kneighbors(Xc, return_distance=False)[:, 1:]
k = a.nn_.n_neighbors - 1
ratio_nn = np.sum(y[nns] != 1, axis=1) / k
print("adasyn k=5 other-class share:", ",".join(f"{v:.17g}" for v in ratio_nn))
ratio_nn /= np.sum(ratio_nn)
print("adasyn k=5 normalised ratios:", ",".join(f"{v:.17g}" for v in ratio_nn))
for n_make in (8, 24):
    rint = np.rint(ratio_nn * n_make).astype(int)
    print(f"adasyn {n_make} to make: np.rint gives", ",".join(map(str, rint)), "(sum", rint.sum(), ")")
