/*
 * The GEMM on NVIDIA tensor cores (OpenClOps.GemmKernel.TENSOR): C(i,j) (= or +=) sum_k A(i,k) B(j,k) with the operands
 * rounded to bfloat16 (ouro_to_bf16: nearest, ties to even) once, as a work-group stages them in local memory, and the
 * products summed in fp32 by the warp-wide PTX instruction mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80
 * and later). Operands and strides as the other GEMMs (gemm.cl).
 *
 * Blocking. A work-group of 256 items (local (16, 16); linear id tid = ly * 16 + lx, warp tid / 32, lane tid % 32, as
 * NVIDIA groups items into warps) computes a 128 x 128 block of C. Its 8 warps form a 2 (rows) x 4 (columns) grid, each
 * warp a 64 x 32 tile of C as 4 x 4 mma tiles of 16 x 8 (64 fp32 accumulators per lane). k is walked in stages of 32: a
 * stage of A is 128 rows x 16 bfloat16 pairs (uints), of B 128 columns x 16 pairs, 2048 uints each; two stages of each
 * (double buffering) fill LoopKernel's local tiles, tileA and tileB (64 x 65 floats, 4160 words each; 4096 used).
 * Global range (ceil(n/128)*16, ceil(m/128)*16).
 *
 * The bfloat16 copies. With bCopy 1 (GemmOps: train.matmul bf16_tensor, B a parameter segment) B is fetched from the
 * weights' bfloat16 copy (ouro_wcopy, 16-bit values at the weights' offsets), with aCopy / bCopy 2 A or B from an
 * activation range's bfloat16 copy in the arena (ouro_act_bf16), and staged as fetched: half the bytes, no rounding;
 * the tiles, fragments and products are the same, so the result is bit for bit the one of fetching the fp32 values
 * and rounding them here.
 *
 * Double buffering. Stage 0 is fetched, rounded and stored, then a barrier; in each step kt every item first fetches
 * its share of stage kt+1 from global memory into registers (16 floats of A, 16 of B: pairs 256 e + tid, e < 8), then
 * the warps multiply stage kt out of one buffer, then the items round and store stage kt+1 into the other buffer, then
 * one barrier: the global loads are in flight during the products, and a buffer is written only after every item passed
 * the barrier that ended the products reading it. Trip counts and barriers are the same for every item (items past C
 * compute on zeros and store nothing), as pocl and the GPU need.
 *
 * Local layout (ouro_tc_swz). A staged row (an A row or a B column) is 16 uints (64 bytes) in four 16-byte chunks;
 * chunk c of row r sits at chunk position c ^ ((r >> 1) & 3). The 8 rows one ldmatrix phase (or one fragment load:
 * lanes g = 0..7) reads then fall in 8 distinct 16-byte bank groups, so neither conflicts; the staging stores of a
 * k-contiguous operand do not conflict either (those of a transposed one are 4-way).
 *
 * Fragments (PTX ISA, mma.m16n8k16 with .bf16; g = lane / 4, t = lane % 4; a register's low half holds the element with
 * the lower k): A (16 x 16, row-major) a0 = (g, 2t..2t+1), a1 = (g+8, 2t..2t+1), a2 = (g, 2t+8..2t+9), a3 = (g+8,
 * 2t+8..2t+9); B (16 x 8, k x n) b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g); C (16 x 8, fp32) c0, c1 = (g, 2t),
 * (g, 2t+1), c2, c3 = (g+8, 2t), (g+8, 2t+1). ouro_tc_frag_a / ouro_tc_frag_b read a lane's register from the staged
 * tiles by this table.
 *
 * Where it runs what. With OURO_TC_PTX (ClKernels defines it only where the device passed TensorCores' probe) under
 * NVIDIA's compiler, each lane loads its own fragments and issues the instruction; with OURO_TC_LDMATRIX too (the
 * probe's ldmatrix check passed) the fragments come from ldmatrix.sync.aligned.m8n8.x4.shared.b16, each lane giving the
 * address of one staged row (ouro_tc_frags_a, ouro_tc_frags_b). Everywhere else ouro_tc_mma_emulated computes what the
 * instruction's contract gives each lane: for each of its accumulator elements it finds, through the table above, which
 * lane holds each A and B element it needs and in which register half, and reads that lane's register through the same
 * ouro_tc_frag_a / ouro_tc_frag_b from the same staged tiles. So on any OpenCL device (pocl in the tests) the staging,
 * the rounding, the swizzle, the double buffering and the fragment indexing run as on the GPU; a builder that puts an
 * element where the ISA does not is off by O(1) there (GemmOpenClTest). What only the GPU runs: the two asm statements.
 * Test hook: with this->n0 == 1 (GemmOps.tensorFragments) the kernel writes each lane's raw fragment registers, as
 * ouro_tc_frags_a / _b load them, to C instead of multiplying (Bf16RoundingOpenClTest).
 */

/*
 * Under NVIDIA's compiler every loop over registers is unrolled, so that the accumulators, the prefetched floats and
 * the fragments stay in registers (indexed by constants); elsewhere the loops stay loops (pocl compiles them faster).
 */
#if defined(OURO_TC_PTX) && defined(__NV_CL_C_VERSION)
#define OURO_TC_UNROLL _Pragma("unroll")
#define OURO_TC_NATIVE 1 /* the lanes load their own fragments for the instruction */
#else
#define OURO_TC_UNROLL
#define OURO_TC_NATIVE 0 /* the emulation reads other lanes' registers itself */
#endif

#define OURO_TC_STAGE 2048 /* uints of one stage of one operand: 128 rows x 16 bfloat16 pairs */
#define OURO_TC_DUMP 24    /* uints a lane's fragments take per k16 step: 4 A tiles x 4 registers, 4 B tiles x 2 */

/* uint index of pair kp (0..15) of staged row r: 16-byte chunks permuted by bits 1..2 of the row (see the header) */
int ouro_tc_swz(int r, int kp) {
    return r * 16 + ((((kp >> 2) ^ (r >> 1)) & 3) << 2) + (kp & 3);
}

/* two values as the bfloat16 pair of one 32-bit register, lo in the low half: the one rounding, ouro_to_bf16 */
uint ouro_tc_pair(float lo, float hi) {
    return (uint) ouro_to_bf16(lo) | ((uint) ouro_to_bf16(hi) << 16);
}

float ouro_tc_lo(uint r) {
    return as_float(r << 16);
}

float ouro_tc_hi(uint r) {
    return as_float(r & 0xFFFF0000u);
}

/*
 * The staged row and pair of this item's e-th pair (e < 8) of a stage: pair p = 256 e + tid; a k-contiguous operand
 * by rows (row p / 16, pair p % 16: neighbouring items read neighbouring words), another by pairs (row p % 128,
 * pair p / 128: neighbouring items read neighbouring rows).
 */
int ouro_tc_row(int e, int tid, int kFast) {
    const int p = e * 256 + tid;
    return kFast ? p >> 4 : p & 127;
}

int ouro_tc_kp(int e, int tid, int kFast) {
    const int p = e * 256 + tid;
    return kFast ? p & 15 : p >> 7;
}

/* this item's e-th pair of the stage at k0 of X (rows x kk, X(r, k) at r*rs + k*cs, rows from r0), zero outside X */
float2 ouro_tc_fetch(__global const float *X, int e, int r0, int k0, int rows, int kk, int rs, int cs, int tid) {
    const int kFast = cs == 1;
    const int r = r0 + ouro_tc_row(e, tid, kFast), k = k0 + 2 * ouro_tc_kp(e, tid, kFast);
    return (float2) (r < rows && k < kk ? X[r * rs + k * cs] : 0.0f,
                     r < rows && k + 1 < kk ? X[r * rs + (k + 1) * cs] : 0.0f);
}

/*
 * The same pair of a bfloat16 copy of X (the weights' copy, ouro_wcopy, or an activation copy in the arena: rounded
 * once, by ouro_weight_bf16 or ouro_act_bf16), as the staged register itself: half the bytes of the fp32 fetch, and no
 * rounding here.
 */
uint ouro_tc_fetch16(__global const ushort *X, int e, int r0, int k0, int rows, int kk, int rs, int cs, int tid) {
    const int kFast = cs == 1;
    const int r = r0 + ouro_tc_row(e, tid, kFast), k = k0 + 2 * ouro_tc_kp(e, tid, kFast);
    return (r < rows && k < kk ? (uint) X[r * rs + k * cs] : 0u)
           | (r < rows && k + 1 < kk ? (uint) X[r * rs + (k + 1) * cs] : 0u) << 16;
}

/*
 * Stores a fetched pair into a stage buffer: fp32 values (their bits in v) rounded to a bfloat16 pair, the only place
 * the operands are rounded; a pair fetched from a bfloat16 copy (ready) as it is.
 */
void ouro_tc_stage(__local uint *t, int e, uint2 v, int ready, int kFast, int tid) {
    t[ouro_tc_swz(ouro_tc_row(e, tid, kFast), ouro_tc_kp(e, tid, kFast))] =
            ready ? v.x : ouro_tc_pair(as_float(v.x), as_float(v.y));
}

/* register `reg` (0..3) of `lane`'s A fragment of the 16 x 16 tile at staged row r0, pair kp0 (k0 / 2) */
uint ouro_tc_frag_a(__local const uint *t, int r0, int kp0, int lane, int reg) {
    return t[ouro_tc_swz(r0 + (lane >> 2) + (reg & 1) * 8, kp0 + (lane & 3) + (reg >> 1) * 4)];
}

/* register `reg` (0..1) of `lane`'s B fragment of the 16 (k) x 8 (n) tile at staged column n0, pair kp0 */
uint ouro_tc_frag_b(__local const uint *t, int n0, int kp0, int lane, int reg) {
    return t[ouro_tc_swz(n0 + (lane >> 2), kp0 + (lane & 3) + reg * 4)];
}

#if defined(OURO_TC_PTX) && defined(OURO_TC_LDMATRIX) && defined(__NV_CL_C_VERSION)
/* four 8 x 8 bfloat16 matrices, one staged row address (16 bytes) from each lane; lane l gets row l / 4 of each */
uint4 ouro_tc_ldmatrix4(__local const uint *p) {
    const uint addr = (uint) (size_t) p;
    uint r0, r1, r2, r3;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
    return (uint4) (r0, r1, r2, r3);
}
#endif

/* `lane`'s A fragment (a0..a3) of the 16 x 16 tile at staged row r0, pair kp0 */
uint4 ouro_tc_frags_a(__local const uint *ta, int r0, int kp0, int lane) {
#if defined(OURO_TC_PTX) && defined(OURO_TC_LDMATRIX) && defined(__NV_CL_C_VERSION)
    /* matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15) = a0..a3 */
    return ouro_tc_ldmatrix4(ta + ouro_tc_swz(r0 + (lane & 7) + ((lane >> 3) & 1) * 8, kp0 + (lane >> 4) * 4));
#else
    return (uint4) (ouro_tc_frag_a(ta, r0, kp0, lane, 0), ouro_tc_frag_a(ta, r0, kp0, lane, 1),
                    ouro_tc_frag_a(ta, r0, kp0, lane, 2), ouro_tc_frag_a(ta, r0, kp0, lane, 3));
#endif
}

/* `lane`'s B fragments of two 16 x 8 tiles at staged columns n0 and n0 + 8: b0, b1 of the first, then of the second */
uint4 ouro_tc_frags_b(__local const uint *tb, int n0, int kp0, int lane) {
#if defined(OURO_TC_PTX) && defined(OURO_TC_LDMATRIX) && defined(__NV_CL_C_VERSION)
    /* matrices (n 0-7, k 0-7), (0-7, 8-15), (8-15, 0-7), (8-15, 8-15) */
    return ouro_tc_ldmatrix4(tb + ouro_tc_swz(n0 + (lane & 7) + ((lane >> 4) & 1) * 8,
                                              kp0 + ((lane >> 3) & 1) * 4));
#else
    return (uint4) (ouro_tc_frag_b(tb, n0, kp0, lane, 0), ouro_tc_frag_b(tb, n0, kp0, lane, 1),
                    ouro_tc_frag_b(tb, n0 + 8, kp0, lane, 0), ouro_tc_frag_b(tb, n0 + 8, kp0, lane, 1));
#endif
}

/* d += A B as mma.m16n8k16 gives it to `lane`, each operand element read from the lane and register holding it */
void ouro_tc_mma_emulated(float *d, __local const uint *ta, __local const uint *tb, int r0, int n0, int kp0,
                          int lane) {
    const int g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        float s = d[e];
        for (int k = 0; k < 16; k++) {
            const uint ra = ouro_tc_frag_a(ta, r0, kp0, (row & 7) * 4 + ((k & 7) >> 1),
                                           (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0));
            const uint rb = ouro_tc_frag_b(tb, n0, kp0, col * 4 + ((k & 7) >> 1), k >= 8 ? 1 : 0);
            s = fma((k & 1) ? ouro_tc_hi(ra) : ouro_tc_lo(ra), (k & 1) ? ouro_tc_hi(rb) : ouro_tc_lo(rb), s);
        }
        d[e] = s;
    }
}

void ouro_gemm_tc(This *this, int gx, int gy, int lx, int ly) {
    const int m = this->gm, n = this->gn, kk = this->gk;
    __global const float *A = ouro_buf(this, this->aSel, this->aOff);
    __global const float *B = ouro_buf(this, this->bSel, this->bOff);
    /*
     * Operands already bfloat16 (GemmOps sets them only for fresh copies): B from the weights' copy of its segment
     * (bCopy 1), A or B from an activation copy in the arena at their offset (2); fetched as ready pairs
     */
    const int aCopy = this->aCopy, bCopy = this->bCopy;
    __global const ushort *A16 = (__global const ushort *) ouro_act(this, aCopy == 2 ? this->aOff : 0);
    __global const ushort *B16 = bCopy == 1 ? ouro_wcopy(this, this->bSel) + this->bOff
                                            : (__global const ushort *) ouro_act(this, bCopy == 2 ? this->bOff : 0);
    __global float *C = ouro_buf(this, this->cSel, this->cOff);
    const int aRs = this->aRs, aCs = this->aCs, bRs = this->bRs, bCs = this->bCs;
    __local uint *TA = (__local uint *) this->tileA;
    __local uint *TB = (__local uint *) this->tileB;
    const int tid = ly * 16 + lx, lane = tid & 31, warp = tid >> 5;
    const int rowBase = (gy - ly) * 8, colBase = (gx - lx) * 8; /* the group's 128 x 128 block of C */
    const int wr = (warp & 1) * 64, wc = (warp >> 1) * 32;      /* this warp's 64 x 32 tile in it */
    const int aKFast = aCs == 1, bKFast = bCs == 1, nk = (kk + 31) / 32, dump = this->n0 == 1;
    float acc[64];
    OURO_TC_UNROLL
    for (int q = 0; q < 64; q++) {
        acc[q] = 0.0f;
    }
    uint2 va[8], vb[8]; /* this item's pairs of the next stage: float bits, or a ready bfloat16 pair in .x */
    /* kt = -1 only stages the first stage; each later kt multiplies stage kt while stage kt + 1 is fetched */
    for (int kt = -1; kt < nk; kt++) {
        const int s = (kt & 1) * OURO_TC_STAGE, more = kt + 1 < nk;
        if (more) {
            OURO_TC_UNROLL
            for (int e = 0; e < 8; e++) {
                va[e] = aCopy ? (uint2) (ouro_tc_fetch16(A16, e, rowBase, (kt + 1) * 32, m, kk, aRs, aCs, tid), 0u)
                              : as_uint2(ouro_tc_fetch(A, e, rowBase, (kt + 1) * 32, m, kk, aRs, aCs, tid));
                vb[e] = bCopy ? (uint2) (ouro_tc_fetch16(B16, e, colBase, (kt + 1) * 32, n, kk, bRs, bCs, tid), 0u)
                              : as_uint2(ouro_tc_fetch(B, e, colBase, (kt + 1) * 32, n, kk, bRs, bCs, tid));
            }
        }
        OURO_TC_UNROLL
        for (int h = 0; h < 2; h++) {
            if (kt < 0) {
                break;
            }
            uint4 fa[4], fb[2];
            if (dump || OURO_TC_NATIVE) {
                OURO_TC_UNROLL
                for (int mi = 0; mi < 4; mi++) {
                    fa[mi] = ouro_tc_frags_a(TA + s, wr + 16 * mi, h * 8, lane);
                }
                OURO_TC_UNROLL
                for (int j = 0; j < 2; j++) {
                    fb[j] = ouro_tc_frags_b(TB + s, wc + 16 * j, h * 8, lane);
                }
            }
            if (dump) {
                __global uint *out = (__global uint *) C
                        + ((((gy / 16) * ((n + 127) / 128) + gx / 16) * nk + kt) * 2 + h) * 256 * OURO_TC_DUMP
                        + tid * OURO_TC_DUMP;
                for (int mi = 0; mi < 4; mi++) {
                    vstore4(fa[mi], mi, out);
                }
                for (int j = 0; j < 2; j++) {
                    vstore4(fb[j], 4 + j, out);
                }
                continue;
            }
#if defined(OURO_TC_PTX) && defined(__NV_CL_C_VERSION)
            OURO_TC_UNROLL
            for (int mi = 0; mi < 4; mi++) {
                OURO_TC_UNROLL
                for (int ni = 0; ni < 4; ni++) {
                    float *d = acc + 16 * mi + 4 * ni;
                    const uint b0 = (ni & 1) ? fb[ni >> 1].z : fb[ni >> 1].x;
                    const uint b1 = (ni & 1) ? fb[ni >> 1].w : fb[ni >> 1].y;
                    float d0, d1, d2, d3;
                    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                                 "{%8,%9}, {%10,%11,%12,%13};"
                                 : "=f"(d0), "=f"(d1), "=f"(d2), "=f"(d3)
                                 : "r"(fa[mi].x), "r"(fa[mi].y), "r"(fa[mi].z), "r"(fa[mi].w), "r"(b0), "r"(b1),
                                   "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]));
                    d[0] = d0;
                    d[1] = d1;
                    d[2] = d2;
                    d[3] = d3;
                }
            }
#else
            for (int mi = 0; mi < 4; mi++) {
                for (int ni = 0; ni < 4; ni++) {
                    ouro_tc_mma_emulated(acc + 16 * mi + 4 * ni, TA + s, TB + s, wr + 16 * mi, wc + 8 * ni, h * 8,
                                         lane);
                }
            }
#endif
        }
        if (more) {
            OURO_TC_UNROLL
            for (int e = 0; e < 8; e++) {
                ouro_tc_stage(TA + (OURO_TC_STAGE - s), e, va[e], aCopy, aKFast, tid);
                ouro_tc_stage(TB + (OURO_TC_STAGE - s), e, vb[e], bCopy, bKFast, tid);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (dump) {
        return;
    }
    const int add = this->accumulate == 1, g = lane >> 2, t = lane & 3;
    OURO_TC_UNROLL
    for (int mi = 0; mi < 4; mi++) {
        OURO_TC_UNROLL
        for (int ni = 0; ni < 4; ni++) {
            OURO_TC_UNROLL
            for (int e = 0; e < 4; e++) {
                const int i = rowBase + wr + 16 * mi + g + (e >= 2 ? 8 : 0);
                const int j = colBase + wc + 8 * ni + 2 * t + (e & 1);
                if (i < m && j < n) {
                    __global float *p = C + i * this->cRs + j * this->cCs;
                    const float v = acc[16 * mi + 4 * ni + e];
                    *p = add ? *p + v : v;
                }
            }
        }
    }
}
