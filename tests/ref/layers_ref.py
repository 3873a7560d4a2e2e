#!/usr/bin/python3
"""One-off generator of the reference values in tests/test_layers.c.

Builds the reference network smallcnn with tiny widths (c1=2, c2=3, fc=4, 3 classes, input
1x8x8, batch 2) in PyTorch, fills every parameter with a fixed formula and prints the
logits. Parameter k (in libra's order: each layer's weight then bias) gets
value[i] = 0.3 * sin(1.3 * i + 0.5 * k); input x[i] = cos(0.37 * i).
Then the same for resnet:depth=8,width=2 (He et al.'s CIFAR ResNet with 1x1 projection
shortcuts) in training mode, and for the layer list
conv:2,3;leaky_relu:0.1;avgpool:2;conv:3,3,s=2,p=0;relu;flatten;dense:4;relu;dense.
Run: /usr/bin/python3 tests/ref/layers_ref.py > tests/ref/layers_ref.txt
"""
import math
import os
import sys
import torch
import torch.nn as nn


def net(bn):
    layers = [nn.Conv2d(1, 2, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(2))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(2, 3, 3, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(3))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 4), nn.ReLU(),
               nn.Linear(4, 3)]
    m = nn.Sequential(*layers)
    with torch.no_grad():
        for k, p in enumerate(m.parameters()):
            flat = torch.tensor([0.3 * math.sin(1.3 * i + 0.5 * k) for i in range(p.numel())])
            p.copy_(flat.view_as(p))
    return m


def fill(m):
    with torch.no_grad():
        for k, p in enumerate(m.parameters()):
            flat = torch.tensor([0.3 * math.sin(1.3 * i + 0.5 * k) for i in range(p.numel())])
            p.copy_(flat.view_as(p))
    return m


def resnet8(width, classes):
    """He et al.'s CIFAR ResNet-8 as libra builds it: the builder bench/torch_ref.py times."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
    import torch_ref
    return torch_ref.resnet(8, 1, classes, width)


def layer_list():
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.1), nn.AvgPool2d(2),
                         nn.Conv2d(2, 3, 3, stride=2, padding=0), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))


def show(name, t):
    vals = t.detach().reshape(-1).tolist()
    print("/* %s */ {%s}," % (name, ", ".join("%.9ef" % v for v in vals)))


x = torch.tensor([math.cos(0.37 * i) for i in range(2 * 64)]).view(2, 1, 8, 8)
m = net(False)
show("logits, no bn", m(x))
m = net(True)
m.train()
show("logits, bn, training", m(x))
show("bn1 running_mean", m[1].running_mean)
show("bn1 running_var", m[1].running_var)
m.eval()
show("logits, bn, eval after one training pass", m(x))
m = fill(resnet8(2, 3))
m.train()
show("resnet:depth=8,width=2 logits, training", m(x))
m = fill(layer_list())
show("layer list logits", m(x))
