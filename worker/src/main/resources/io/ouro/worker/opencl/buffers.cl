/*
 * Buffer addressing for the hand-written ops, over LoopKernel's fields. The constants OURO_ACT_SHIFT, OURO_ACT_MASK,
 * OURO_SEL_GRADS and OURO_SEL_ACT are LoopKernel's, defined into the program by ClKernels. Every device buffer stays
 * below 2^29 floats (Aparapi 3.0.2 sizes buffers in a 32-bit int of bytes), so the parameters come in segments
 * (w0..w7, gradients g0..g7) and the activation arena in windows (act0..act7) addressed by a global offset: window
 * g >> OURO_ACT_SHIFT, element g & OURO_ACT_MASK. No region straddles two windows, so a pointer taken at a region's
 * first element reaches the whole region.
 */

__global float *ouro_act(This *this, int g) {
    const int w = g >> OURO_ACT_SHIFT;
    __global float *b = w == 0 ? this->act0 : w == 1 ? this->act1 : w == 2 ? this->act2 : w == 3 ? this->act3
            : w == 4 ? this->act4 : w == 5 ? this->act5 : w == 6 ? this->act6 : this->act7;
    return b + (g & OURO_ACT_MASK);
}

/* the parameters of segment s */
__global float *ouro_par(This *this, int s) {
    return s == 0 ? this->w0 : s == 1 ? this->w1 : s == 2 ? this->w2 : s == 3 ? this->w3 : s == 4 ? this->w4
            : s == 5 ? this->w5 : s == 6 ? this->w6 : this->w7;
}

/* the gradients of segment s */
__global float *ouro_grad(This *this, int s) {
    return s == 0 ? this->g0 : s == 1 ? this->g1 : s == 2 ? this->g2 : s == 3 ? this->g3 : s == 4 ? this->g4
            : s == 5 ? this->g5 : s == 6 ? this->g6 : this->g7;
}

/* the weights' bfloat16 copy of segment s (train.matmul bf16_tensor; 16-bit values, two per float of wh<s>) */
__global ushort *ouro_wcopy(This *this, int s) {
    return (__global ushort *) (s == 0 ? this->wh0 : s == 1 ? this->wh1 : s == 2 ? this->wh2 : s == 3 ? this->wh3
            : s == 4 ? this->wh4 : s == 5 ? this->wh5 : s == 6 ? this->wh6 : this->wh7);
}

/* the GEMM operand a selector names (LoopKernel.SEL_*), at offset off */
__global float *ouro_buf(This *this, int sel, int off) {
    return sel == OURO_SEL_ACT ? ouro_act(this, off)
            : (sel < OURO_SEL_GRADS ? ouro_par(this, sel) : ouro_grad(this, sel - OURO_SEL_GRADS)) + off;
}
