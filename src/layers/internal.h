/* Within src/layers: the layer-list architectures (layer_list.c) for arch.c. */
#ifndef LIBRA_LAYERS_INTERNAL_H
#define LIBRA_LAYERS_INTERNAL_H

#include "libra/layers.h"

/* 1 if arch is a layer list ("conv:32,3;bn;relu;...", or one layer word such as "dense"). */
int lb__is_layer_list(const char *arch);
/* Adds the layers of the list to the empty model m and sets m->arch to the canonical list. */
int lb__model_layers(lb_model *m, const char *arch, int n_classes);
/* The resnet[:depth=D,width=W] spec's trunk (no pooling, no dense layer: it ends in
 * [4W, H/4, W/4]) added to m, its canonical spec appended to canon (arch.c). */
int lb__resnet_trunk(lb_model *m, const char *arch, lb_buf *canon);

#endif
