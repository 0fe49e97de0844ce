/* Which hand-written op runs: LoopKernel.hand (ClKernels' constants), after gemm.cl, decode.cl, bf16.cl, gemm_tc.cl, xent.cl and reduce.cl. */
void ouro_hand(This *this, int gx, int gy, int lx, int ly) {
    if (this->hand == OURO_GEMM_OUTER) {
        ouro_gemm_outer(this, gx, gy);
    } else if (this->hand == OURO_PACK) {
        ouro_pack(this, gx, gy);
    } else if (this->hand == OURO_ATTN_FWD) {
        ouro_attn_fwd(this, gx);
    } else if (this->hand == OURO_ATTN_BWD_Q) {
        ouro_attn_bwd_q(this, gx);
    } else if (this->hand == OURO_ATTN_BWD_KV) {
        ouro_attn_bwd_kv(this, gx);
    } else if (this->hand == OURO_FLASH_FWD) {
        ouro_flash_fwd(this, gx, lx);
    } else if (this->hand == OURO_FLASH_BWD_Q) {
        ouro_flash_bwd_q(this, gx, lx);
    } else if (this->hand == OURO_FLASH_BWD_KV) {
        ouro_flash_bwd_kv(this, gx, lx);
    } else if (this->hand == OURO_GEMM_DOT) {
        ouro_gemm_dot(this, gx, gy);
    } else if (this->hand == OURO_GEMM_TILED) {
        ouro_gemm_tiled(this, gx, gy, lx, ly);
    } else if (this->hand == OURO_GEMM_TC) {
        ouro_gemm_tc(this, gx, gy, lx, ly);
    } else if (this->hand == OURO_CE_FWD) {
        ouro_ce_fwd(this, gx);
    } else if (this->hand == OURO_CE_BWD) {
        ouro_ce_bwd(this, gx);
    } else if (this->hand == OURO_STORE_ROWS) {
        ouro_store_rows(this, gx);
    } else if (this->hand == OURO_GEMV) {
        ouro_gemv(this, gx);
    } else if (this->hand == OURO_STASH16) {
        ouro_stash16_copy(this, gx);
    } else if (this->hand == OURO_CE_FWD_WG) {
        ouro_ce_fwd_wg(this, gx, lx);
    } else if (this->hand == OURO_CE_BWD_WG) {
        ouro_ce_bwd_wg(this, gx, lx);
    } else if (this->hand == OURO_RMSNORM_DW_PARTIAL) {
        ouro_rmsnorm_dw_partial(this, gx, gy);
    } else if (this->hand == OURO_RMSNORM_DW_SUM) {
        ouro_rmsnorm_dw_sum(this, gx);
    } else if (this->hand == OURO_EMBED_BWD) {
        ouro_embed_bwd(this, gx);
    } else if (this->hand == OURO_WEIGHT_BF16) {
        ouro_weight_bf16(this, gx);
    } else if (this->hand == OURO_ACT_BF16) {
        ouro_act_bf16(this, gx);
    }
}

/* Phase p of a phased op (DeviceOp.Code.PHASES: no barrier in here, LoopKernel puts one after each phase). */
void ouro_phase(This *this, int gx, int p, int lx, int ly) {
    if (this->hand == OURO_DECODE_STEP) {
        ouro_decode_phase(this, p, lx);
    }
}
