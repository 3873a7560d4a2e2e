/* libra: umbrella header. Modules, bottom up: base + tensor (the engine), layers, optim,
 * losses, data, metrics, report, train, study. */
#ifndef LIBRA_H
#define LIBRA_H
#include "libra/base.h"
#include "libra/tensor.h"
#include "libra/layers.h"
#include "libra/optim.h"
#include "libra/losses.h"
#include "libra/data.h"
#include "libra/metrics.h"
#include "libra/report.h"
#include "libra/train.h"
#include "libra/study.h"
#endif
