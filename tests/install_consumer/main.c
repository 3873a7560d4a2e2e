/* A user's program built against an installed libra: trains one tiny step and checks the
 * gradient reached the parameter. */
#include <libra.h>
#include <stdio.h>

int main(void)
{
    lb_graph *g = lb_graph_new();
    lb_params *P = lb_params_new();
    int wshape[2] = {3, 2};
    int w = lb_params_add(P, "w", 2, wshape);
    for (int i = 0; i < 6; i++) lb_params_value(P, w)[i] = 0.1f * (float)(i + 1);
    float xin[3] = {1, 2, 3};
    int xshape[2] = {1, 3};
    lb_node *y = lb_sum(g, lb_matmul(g, lb_input(g, 2, xshape, xin), lb_param(g, P, w), 0, 0));
    if (!y || lb_backward(g, y) != LB_OK) {
        fprintf(stderr, "consumer: %s\n", lb_last_error());
        return 1;
    }
    /* dy/dw[i][j] = x[i] */
    float g02 = lb_params_gradient(P, w)[4];
    printf("libra %s: y = %g, dy/dw[2][0] = %g\n", lb_version(), y->val[0], g02);
    lb_params_free(P);
    lb_graph_free(g);
    return (g02 == 3.0f) ? 0 : 1;
}
