/*
 * The stash in bfloat16 (StepShape.bf16Stash): the stash buffers s0..s15 hold 16-bit values, two per float of the
 * buffer, at 16-bit offsets. OURO_STASH16 copies n0 values between the activation buffer (slot 0, floats) and one
 * stash buffer (slot 1 + i): into the stash each float is rounded to the nearest bfloat16, ties to even (as
 * Safetensors.toBf16, which the Java reference uses), out of it widened back exactly. cSel / o0 the destination,
 * aSel / o1 the source; chunk values per work item.
 */

#define OURO_STASH16 10

__global ushort *ouro_stash16(This *this, int slot) {
    __global float *s = slot == 1 ? this->s0 : slot == 2 ? this->s1 : slot == 3 ? this->s2 : slot == 4 ? this->s3
            : slot == 5 ? this->s4 : slot == 6 ? this->s5 : slot == 7 ? this->s6 : slot == 8 ? this->s7
            : slot == 9 ? this->s8 : slot == 10 ? this->s9 : slot == 11 ? this->s10 : slot == 12 ? this->s11
            : slot == 13 ? this->s12 : slot == 14 ? this->s13 : slot == 15 ? this->s14 : this->s15;
    return (__global ushort *) s;
}

ushort ouro_to_bf16(float f) {
    uint b = as_uint(f);
    if (isnan(f)) {
        return (ushort) ((b >> 16) | 0x40);
    }
    return (ushort) ((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

void ouro_stash16_copy(This *this, int gx) {
    const int n = this->n0, c = this->chunk, from = gx * c, to = min(n, from + c);
    if (this->cSel != 0) {
        __global ushort *dst = ouro_stash16(this, this->cSel) + this->o0;
        __global const float *src = ouro_act(this, this->o1);
        for (int i = from; i < to; i++) {
            dst[i] = ouro_to_bf16(src[i]);
        }
    } else {
        __global const ushort *src = ouro_stash16(this, this->aSel) + this->o1;
        __global float *dst = ouro_act(this, this->o0);
        for (int i = from; i < to; i++) {
            dst[i] = as_float(((uint) src[i]) << 16);
        }
    }
}
