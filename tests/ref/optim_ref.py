#!/usr/bin/python3
"""One-off generator of the reference values in tests/test_optim.c.

Runs torch.optim on fixed parameters and fixed per-step gradients and prints, for each
configuration, the parameters after each of the first three steps as C initialisers.
The output is committed as optim_ref.txt; the tests do not need Python.
Run: /usr/bin/python3 tests/ref/optim_ref.py > tests/ref/optim_ref.txt
"""
import torch

W0 = [0.5, -1.2, 2.0, 0.0]
GRADS = [[0.1, -0.3, 0.8, -2.0],
         [0.4, 0.2, -0.6, 1.5],
         [-0.2, 0.05, 0.3, 0.7]]

CONFIGS = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1), None),
    ("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), None),
    ("sgd_nesterov_wd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                                  weight_decay=0.01), None),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01), None),
    ("adam_wd", lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6,
                                           weight_decay=0.1), None),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1), None),
    ("sgd_clip", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.5), 1.0),
]

for name, make, clip in CONFIGS:
    w = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    opt = make([w])
    rows = []
    for g in GRADS:
        w.grad = torch.tensor(g, dtype=torch.float32)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([w], clip)
        opt.step()
        rows.append(", ".join("%.9ef" % x for x in w.detach().tolist()))
    print("/* %s */" % name)
    print("{" + ",\n ".join("{%s}" % r for r in rows) + "},")
