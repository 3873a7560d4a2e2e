/* libra: umbrella header. */
#ifndef LIBRA_H
#define LIBRA_H
#include "libra/base.h"
#include "libra/tensor.h"
#endif
