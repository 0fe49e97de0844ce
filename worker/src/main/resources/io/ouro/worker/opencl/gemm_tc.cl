/*
 * The GEMM on NVIDIA tensor cores (OpenClOps.GemmKernel.TENSOR): C(i,j) (= or +=) sum_k A(i,k) B(j,k) with the
 * operands rounded to bfloat16 (nearest, ties to even) as they are loaded and the products summed in fp32, through
 * the warp-wide PTX instruction mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80 and later). Operands and
 * strides as the other GEMMs (gemm.cl). A work-group is 4 warps of 32 items, local (32, 4): warp ly takes 16 rows of
 * C, its lanes lx the group's 32 columns as four 16 x 8 tiles. Global range (ceil(n/32)*32, ceil(m/64)*4).
 *
 * The instruction is used only where ClKernels defined OURO_TC_PTX (the device passed TensorCores' probe) and the
 * compiler is NVIDIA's. Everywhere else ouro_tc_mma_emulated computes what the instruction's contract says each lane
 * gets: for each of its accumulator elements it finds, through the PTX ISA's fragment table, which lane holds each A
 * and B element it needs and in which register half, and asks the same fragment builders the instruction's operands
 * come from (ouro_tc_frag_a, ouro_tc_frag_b) for that lane's register. A builder that put an element where the ISA
 * does not is off by O(1) there, so this kernel's fragment layout is tested on any OpenCL device (GemmOpenClTest);
 * the instruction itself runs only on the GPU. (No barriers: pocl takes very long to compile barriers inside the
 * dispatcher's helper functions.)
 *
 * Fragments (PTX ISA, mma.m16n8k16 with .bf16; g = lane / 4, t = lane % 4; a register's low half holds the element
 * with the lower column or row): A (16 x 16, row-major) a0 = (g, 2t..2t+1), a1 = (g+8, 2t..2t+1), a2 = (g, 2t+8..2t+9),
 * a3 = (g+8, 2t+8..2t+9); B (16 x 8, k x n) b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g); C (16 x 8, fp32)
 * c0, c1 = (g, 2t), (g, 2t+1), c2, c3 = (g+8, 2t), (g+8, 2t+1).
 */

/* X(r, c) of an operand, zero outside rows x cols */
float ouro_tc_at(__global const float *x, int r, int c, int rows, int cols, int rs, int cs) {
    return r < rows && c < cols ? x[r * rs + c * cs] : 0.0f;
}

/* two values as the bfloat16 pair of one 32-bit register, lo in the low half */
uint ouro_tc_pair(float lo, float hi) {
    return (uint) ouro_to_bf16(lo) | ((uint) ouro_to_bf16(hi) << 16);
}

float ouro_tc_lo(uint r) {
    return as_float(r << 16);
}

float ouro_tc_hi(uint r) {
    return as_float(r & 0xFFFF0000u);
}

/* register `reg` (0..3) of `lane`'s A fragment of the 16 x 16 tile of A at (i0, k0) */
uint ouro_tc_frag_a(__global const float *A, int i0, int k0, int lane, int reg, int m, int kk, int rs, int cs) {
    const int r = i0 + (lane >> 2) + ((reg & 1) ? 8 : 0), c = k0 + 2 * (lane & 3) + ((reg & 2) ? 8 : 0);
    return ouro_tc_pair(ouro_tc_at(A, r, c, m, kk, rs, cs), ouro_tc_at(A, r, c + 1, m, kk, rs, cs));
}

/* register `reg` (0..1) of `lane`'s B fragment of the 16 (k) x 8 (n) tile at (k0, j0); B(j, k) as the GEMM's B */
uint ouro_tc_frag_b(__global const float *B, int j0, int k0, int lane, int reg, int n, int kk, int rs, int cs) {
    const int j = j0 + (lane >> 2), c = k0 + 2 * (lane & 3) + (reg ? 8 : 0);
    return ouro_tc_pair(ouro_tc_at(B, j, c, n, kk, rs, cs), ouro_tc_at(B, j, c + 1, n, kk, rs, cs));
}

/* d += A B as mma.m16n8k16 gives it to `lane`, each operand element taken from the lane and register holding it */
void ouro_tc_mma_emulated(float *d, __global const float *A, __global const float *B, int i0, int j0, int k0, int lane,
                          int m, int n, int kk, int aRs, int aCs, int bRs, int bCs) {
    const int g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        float s = d[e];
        for (int k = 0; k < 16; k++) {
            const uint ra = ouro_tc_frag_a(A, i0, k0, (row & 7) * 4 + ((k & 7) >> 1), (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0),
                                           m, kk, aRs, aCs);
            const uint rb = ouro_tc_frag_b(B, j0, k0, col * 4 + ((k & 7) >> 1), k >= 8 ? 1 : 0, n, kk, bRs, bCs);
            s = fma((k & 1) ? ouro_tc_hi(ra) : ouro_tc_lo(ra), (k & 1) ? ouro_tc_hi(rb) : ouro_tc_lo(rb), s);
        }
        d[e] = s;
    }
}

void ouro_gemm_tc(This *this, int gx, int gy, int lx, int ly) {
    const int m = this->gm, n = this->gn, kk = this->gk;
    __global const float *A = ouro_buf(this, this->aSel, this->aOff);
    __global const float *B = ouro_buf(this, this->bSel, this->bOff);
    __global float *C = ouro_buf(this, this->cSel, this->cOff);
    const int aRs = this->aRs, aCs = this->aCs, bRs = this->bRs, bCs = this->bCs;
    const int g = lx >> 2, t = lx & 3;
    const int i0 = gy * 16, j0 = gx - lx; /* this warp's rows, the group's columns */
    float acc[4][4];
    for (int q = 0; q < 4; q++) {
        for (int e = 0; e < 4; e++) {
            acc[q][e] = 0.0f;
        }
    }
    /* the loops are the same for every lane of a warp (mma.sync needs all 32): lanes past C load zeros */
    for (int k0 = 0; k0 < kk; k0 += 16) {
#if defined(OURO_TC_PTX) && defined(__NV_CL_C_VERSION)
        const uint a0 = ouro_tc_frag_a(A, i0, k0, lx, 0, m, kk, aRs, aCs), a1 = ouro_tc_frag_a(A, i0, k0, lx, 1, m, kk, aRs, aCs);
        const uint a2 = ouro_tc_frag_a(A, i0, k0, lx, 2, m, kk, aRs, aCs), a3 = ouro_tc_frag_a(A, i0, k0, lx, 3, m, kk, aRs, aCs);
        for (int q = 0; q < 4; q++) {
            const uint b0 = ouro_tc_frag_b(B, j0 + q * 8, k0, lx, 0, n, kk, bRs, bCs);
            const uint b1 = ouro_tc_frag_b(B, j0 + q * 8, k0, lx, 1, n, kk, bRs, bCs);
            float d0, d1, d2, d3;
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                         "{%10,%11,%12,%13};"
                         : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1),
                           "f"(acc[q][0]), "f"(acc[q][1]), "f"(acc[q][2]), "f"(acc[q][3]));
            acc[q][0] = d0;
            acc[q][1] = d1;
            acc[q][2] = d2;
            acc[q][3] = d3;
        }
#else
        for (int q = 0; q < 4; q++) {
            ouro_tc_mma_emulated(acc[q], A, B, i0, j0 + q * 8, k0, lx, m, n, kk, aRs, aCs, bRs, bCs);
        }
#endif
    }
    const int add = this->accumulate == 1;
    const int r0 = i0 + g, r1 = i0 + g + 8;
    for (int q = 0; q < 4; q++) {
        for (int e = 0; e < 4; e++) {
            const int i = e >= 2 ? r1 : r0, j = j0 + q * 8 + 2 * t + (e & 1);
            if (i < m && j < n) {
                __global float *p = C + i * this->cRs + j * this->cCs;
                *p = add ? *p + acc[q][e] : acc[q][e];
            }
        }
    }
}
