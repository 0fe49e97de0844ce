package io.ouro.worker.opencl;

/**
 * Reading and writing {@link LoopKernel}'s buffers: the one place a segment, window, operand or stash buffer is picked.
 *
 * <p>What Aparapi sees here is a chain of {@code if}s, one per buffer, which is also what makes every buffer one of
 * the kernel's arguments. What runs is shorter: {@link ClKernels#accessors} replaces each accessor's translation by
 * one pointer select and one load or store, generated from the same constants. Same arguments, same result.
 */
abstract class BufferAccess extends KernelFields {

    /** Parameter idx of segment pseg. */
    float pw(int idx) {
        float x = 0f;
        if (pseg == 0) { x = w0[idx]; }
        if (pseg == 1) { x = w1[idx]; }
        if (pseg == 2) { x = w2[idx]; }
        if (pseg == 3) { x = w3[idx]; }
        if (pseg == 4) { x = w4[idx]; }
        if (pseg == 5) { x = w5[idx]; }
        if (pseg == 6) { x = w6[idx]; }
        if (pseg == 7) { x = w7[idx]; }
        return x;
    }

    /** Sets parameter idx of segment pseg. */
    void pset(int idx, float v) {
        if (pseg == 0) { w0[idx] = v; }
        if (pseg == 1) { w1[idx] = v; }
        if (pseg == 2) { w2[idx] = v; }
        if (pseg == 3) { w3[idx] = v; }
        if (pseg == 4) { w4[idx] = v; }
        if (pseg == 5) { w5[idx] = v; }
        if (pseg == 6) { w6[idx] = v; }
        if (pseg == 7) { w7[idx] = v; }
    }

    /** Gradient idx of segment pseg. */
    float gr(int idx) {
        float x = 0f;
        if (pseg == 0) { x = g0[idx]; }
        if (pseg == 1) { x = g1[idx]; }
        if (pseg == 2) { x = g2[idx]; }
        if (pseg == 3) { x = g3[idx]; }
        if (pseg == 4) { x = g4[idx]; }
        if (pseg == 5) { x = g5[idx]; }
        if (pseg == 6) { x = g6[idx]; }
        if (pseg == 7) { x = g7[idx]; }
        return x;
    }

    /** Sets gradient idx of segment pseg. */
    void gset(int idx, float v) {
        if (pseg == 0) { g0[idx] = v; }
        if (pseg == 1) { g1[idx] = v; }
        if (pseg == 2) { g2[idx] = v; }
        if (pseg == 3) { g3[idx] = v; }
        if (pseg == 4) { g4[idx] = v; }
        if (pseg == 5) { g5[idx] = v; }
        if (pseg == 6) { g6[idx] = v; }
        if (pseg == 7) { g7[idx] = v; }
    }

    /** Adds v to gradient idx of segment pseg. */
    void gradAdd(int idx, float v) {
        if (pseg == 0) { g0[idx] = g0[idx] + v; }
        if (pseg == 1) { g1[idx] = g1[idx] + v; }
        if (pseg == 2) { g2[idx] = g2[idx] + v; }
        if (pseg == 3) { g3[idx] = g3[idx] + v; }
        if (pseg == 4) { g4[idx] = g4[idx] + v; }
        if (pseg == 5) { g5[idx] = g5[idx] + v; }
        if (pseg == 6) { g6[idx] = g6[idx] + v; }
        if (pseg == 7) { g7[idx] = g7[idx] + v; }
    }

    /** Adam's first moment idx of segment pseg. */
    float m1r(int idx) {
        float x = 0f;
        if (pseg == 0) { x = ma0[idx]; }
        if (pseg == 1) { x = ma1[idx]; }
        if (pseg == 2) { x = ma2[idx]; }
        if (pseg == 3) { x = ma3[idx]; }
        if (pseg == 4) { x = ma4[idx]; }
        if (pseg == 5) { x = ma5[idx]; }
        if (pseg == 6) { x = ma6[idx]; }
        if (pseg == 7) { x = ma7[idx]; }
        return x;
    }

    /** Sets Adam's first moment idx of segment pseg. */
    void m1w(int idx, float v) {
        if (pseg == 0) { ma0[idx] = v; }
        if (pseg == 1) { ma1[idx] = v; }
        if (pseg == 2) { ma2[idx] = v; }
        if (pseg == 3) { ma3[idx] = v; }
        if (pseg == 4) { ma4[idx] = v; }
        if (pseg == 5) { ma5[idx] = v; }
        if (pseg == 6) { ma6[idx] = v; }
        if (pseg == 7) { ma7[idx] = v; }
    }

    /** Adam's second moment idx of segment pseg. */
    float m2r(int idx) {
        float x = 0f;
        if (pseg == 0) { x = mb0[idx]; }
        if (pseg == 1) { x = mb1[idx]; }
        if (pseg == 2) { x = mb2[idx]; }
        if (pseg == 3) { x = mb3[idx]; }
        if (pseg == 4) { x = mb4[idx]; }
        if (pseg == 5) { x = mb5[idx]; }
        if (pseg == 6) { x = mb6[idx]; }
        if (pseg == 7) { x = mb7[idx]; }
        return x;
    }

    /** Sets Adam's second moment idx of segment pseg. */
    void m2w(int idx, float v) {
        if (pseg == 0) { mb0[idx] = v; }
        if (pseg == 1) { mb1[idx] = v; }
        if (pseg == 2) { mb2[idx] = v; }
        if (pseg == 3) { mb3[idx] = v; }
        if (pseg == 4) { mb4[idx] = v; }
        if (pseg == 5) { mb5[idx] = v; }
        if (pseg == 6) { mb6[idx] = v; }
        if (pseg == 7) { mb7[idx] = v; }
    }

    /** Activation value at global offset g: window g >> ACT_SHIFT, element g & ACT_MASK of it. */
    float ar(int g) {
        int b = g >> ACT_SHIFT;
        int l = g & ACT_MASK;
        float x = 0f;
        if (b == 0) { x = act0[l]; }
        if (b == 1) { x = act1[l]; }
        if (b == 2) { x = act2[l]; }
        if (b == 3) { x = act3[l]; }
        if (b == 4) { x = act4[l]; }
        if (b == 5) { x = act5[l]; }
        if (b == 6) { x = act6[l]; }
        if (b == 7) { x = act7[l]; }
        return x;
    }

    /** Sets the activation value at global offset g. */
    void aw(int g, float v) {
        int b = g >> ACT_SHIFT;
        int l = g & ACT_MASK;
        if (b == 0) { act0[l] = v; }
        if (b == 1) { act1[l] = v; }
        if (b == 2) { act2[l] = v; }
        if (b == 3) { act3[l] = v; }
        if (b == 4) { act4[l] = v; }
        if (b == 5) { act5[l] = v; }
        if (b == 6) { act6[l] = v; }
        if (b == 7) { act7[l] = v; }
    }

    /**
     * Element idx of the operand sel names: {@link #SEL_PARAMS} + s parameters of segment s, {@link #SEL_GRADS} + s
     * gradients of segment s, {@link #SEL_ACT} activations (idx a global offset). No call to ar(): Aparapi can emit a
     * helper after the helper that calls it.
     */
    float load(int sel, int idx) {
        float x = 0f;
        if (sel == 0) { x = w0[idx]; }
        if (sel == 1) { x = w1[idx]; }
        if (sel == 2) { x = w2[idx]; }
        if (sel == 3) { x = w3[idx]; }
        if (sel == 4) { x = w4[idx]; }
        if (sel == 5) { x = w5[idx]; }
        if (sel == 6) { x = w6[idx]; }
        if (sel == 7) { x = w7[idx]; }
        if (sel == 8) { x = g0[idx]; }
        if (sel == 9) { x = g1[idx]; }
        if (sel == 10) { x = g2[idx]; }
        if (sel == 11) { x = g3[idx]; }
        if (sel == 12) { x = g4[idx]; }
        if (sel == 13) { x = g5[idx]; }
        if (sel == 14) { x = g6[idx]; }
        if (sel == 15) { x = g7[idx]; }
        if (sel == SEL_ACT) {
            int b = idx >> ACT_SHIFT;
            int l = idx & ACT_MASK;
            if (b == 0) { x = act0[l]; }
            if (b == 1) { x = act1[l]; }
            if (b == 2) { x = act2[l]; }
            if (b == 3) { x = act3[l]; }
            if (b == 4) { x = act4[l]; }
            if (b == 5) { x = act5[l]; }
            if (b == 6) { x = act6[l]; }
            if (b == 7) { x = act7[l]; }
        }
        return x;
    }

    /** Sets (add 0) or adds to (add 1) element idx of the operand sel names. */
    void store(int sel, int idx, float v, int add) {
        if (sel == 0) { w0[idx] = add == 1 ? w0[idx] + v : v; }
        if (sel == 1) { w1[idx] = add == 1 ? w1[idx] + v : v; }
        if (sel == 2) { w2[idx] = add == 1 ? w2[idx] + v : v; }
        if (sel == 3) { w3[idx] = add == 1 ? w3[idx] + v : v; }
        if (sel == 4) { w4[idx] = add == 1 ? w4[idx] + v : v; }
        if (sel == 5) { w5[idx] = add == 1 ? w5[idx] + v : v; }
        if (sel == 6) { w6[idx] = add == 1 ? w6[idx] + v : v; }
        if (sel == 7) { w7[idx] = add == 1 ? w7[idx] + v : v; }
        if (sel == 8) { g0[idx] = add == 1 ? g0[idx] + v : v; }
        if (sel == 9) { g1[idx] = add == 1 ? g1[idx] + v : v; }
        if (sel == 10) { g2[idx] = add == 1 ? g2[idx] + v : v; }
        if (sel == 11) { g3[idx] = add == 1 ? g3[idx] + v : v; }
        if (sel == 12) { g4[idx] = add == 1 ? g4[idx] + v : v; }
        if (sel == 13) { g5[idx] = add == 1 ? g5[idx] + v : v; }
        if (sel == 14) { g6[idx] = add == 1 ? g6[idx] + v : v; }
        if (sel == 15) { g7[idx] = add == 1 ? g7[idx] + v : v; }
        if (sel == SEL_ACT) {
            int b = idx >> ACT_SHIFT;
            int l = idx & ACT_MASK;
            if (b == 0) { act0[l] = add == 1 ? act0[l] + v : v; }
            if (b == 1) { act1[l] = add == 1 ? act1[l] + v : v; }
            if (b == 2) { act2[l] = add == 1 ? act2[l] + v : v; }
            if (b == 3) { act3[l] = add == 1 ? act3[l] + v : v; }
            if (b == 4) { act4[l] = add == 1 ? act4[l] + v : v; }
            if (b == 5) { act5[l] = add == 1 ? act5[l] + v : v; }
            if (b == 6) { act6[l] = add == 1 ? act6[l] + v : v; }
            if (b == 7) { act7[l] = add == 1 ? act7[l] + v : v; }
        }
    }

    /** Element idx of slot 0 (the activations, a global offset) or slot 1 + i (stash buffer i). */
    float slotLoad(int slot, int idx) {
        float x = 0f;
        if (slot == 0) { x = ar(idx); }
        if (slot == 1) { x = s0[idx]; }
        if (slot == 2) { x = s1[idx]; }
        if (slot == 3) { x = s2[idx]; }
        if (slot == 4) { x = s3[idx]; }
        if (slot == 5) { x = s4[idx]; }
        if (slot == 6) { x = s5[idx]; }
        if (slot == 7) { x = s6[idx]; }
        if (slot == 8) { x = s7[idx]; }
        if (slot == 9) { x = s8[idx]; }
        if (slot == 10) { x = s9[idx]; }
        if (slot == 11) { x = s10[idx]; }
        if (slot == 12) { x = s11[idx]; }
        if (slot == 13) { x = s12[idx]; }
        if (slot == 14) { x = s13[idx]; }
        if (slot == 15) { x = s14[idx]; }
        if (slot == 16) { x = s15[idx]; }
        return x;
    }

    /** Sets element idx of a slot (see {@link #slotLoad}). */
    void slotStore(int slot, int idx, float x) {
        if (slot == 0) { aw(idx, x); }
        if (slot == 1) { s0[idx] = x; }
        if (slot == 2) { s1[idx] = x; }
        if (slot == 3) { s2[idx] = x; }
        if (slot == 4) { s3[idx] = x; }
        if (slot == 5) { s4[idx] = x; }
        if (slot == 6) { s5[idx] = x; }
        if (slot == 7) { s6[idx] = x; }
        if (slot == 8) { s7[idx] = x; }
        if (slot == 9) { s8[idx] = x; }
        if (slot == 10) { s9[idx] = x; }
        if (slot == 11) { s10[idx] = x; }
        if (slot == 12) { s11[idx] = x; }
        if (slot == 13) { s12[idx] = x; }
        if (slot == 14) { s13[idx] = x; }
        if (slot == 15) { s14[idx] = x; }
        if (slot == 16) { s15[idx] = x; }
    }

    float sigmoid(float x) {
        return 1f / (1f + exp(-x));
    }

    float softplus(float x) {
        float r = 0f;
        if (x > 0f) {
            r = x + log(1f + exp(-x));
        } else {
            r = log(1f + exp(x));
        }
        return r;
    }
}
