package io.ouro.worker.opencl;

import com.aparapi.Range;
import com.aparapi.device.OpenCLDevice;

/**
 * The device side of the OpenCL backend: one {@link LoopKernel} in explicit-buffer mode over the
 * parameter, gradient and activation buffers, and one method per op. Buffers stay on the device
 * between ops; {@link #upload}/{@link #download} move them, and {@link Residency} checks that no op
 * reads a stale copy. All offsets and sizes are in floats.
 */
public final class OpenClOps implements AutoCloseable {

    public enum Buffer { PARAMS, GRADS, ACT }

    private static final int GROUP = 64;

    private final LoopKernel k = new LoopKernel();
    private final OpenCLDevice device;
    private final Residency residency = new Residency();
    private long bytesUp, bytesDown;

    /** Allocates the buffers and compiles the kernel for {@code device}; fails if it does not run as OpenCL. */
    public OpenClOps(OpenCLDevice device, int paramSize, int actSize) {
        this.device = device;
        k.w = new float[paramSize];
        k.gw = new float[paramSize];
        k.act = new float[actSize];
        k.setExplicit(true);
        KernelCheck.requireOpenCl(k, device);
    }

    public OpenCLDevice device() {
        return device;
    }

    /** True when the last launch ran as OpenCL on the device (never on Aparapi's Java thread pool). */
    public boolean isRunningOpenCl() {
        return k.isRunningCL();
    }

    public Residency residency() {
        return residency;
    }

    /** The host array of a buffer; after writing into it call {@link #upload}, before reading it {@link #download}. */
    public float[] host(Buffer b) {
        return array(b);
    }

    /** The host copy of b, checked to be current. */
    public float[] read(Buffer b) {
        residency.requireHost(b);
        return array(b);
    }

    /** Marks b as changed on the host (the device copy is now stale). */
    public void hostWrote(Buffer b) {
        residency.set(b, Residency.Side.HOST);
    }

    public void upload(Buffer b) {
        k.put(array(b));
        bytesUp += 4L * array(b).length;
        residency.set(b, Residency.Side.BOTH);
    }

    public void download(Buffer b) {
        k.get(array(b));
        bytesDown += 4L * array(b).length;
        residency.set(b, Residency.Side.BOTH);
    }

    /** Bytes moved host to device and device to host since the start. */
    public long bytesUploaded() {
        return bytesUp;
    }

    public long bytesDownloaded() {
        return bytesDown;
    }

    public void setRopeTables(float[] cos, float[] sin) {
        k.ropeCos = cos;
        k.ropeSin = sin;
        k.put(cos);
        k.put(sin);
        bytesUp += 4L * (cos.length + sin.length);
    }

    // C(i,j) (= or +=) sum_k A(i,k) B(j,k), C (m,n), with element (r,c) of X at xOff + r*xRs + c*xCs
    public void gemm(Buffer c, int cOff, int cRs, int cCs, Buffer a, int aOff, int aRs, int aCs,
                     Buffer b, int bOff, int bRs, int bCs, int m, int n, int kk, boolean accumulate) {
        reads(a, b, c);
        k.op = LoopKernel.OP_GEMM;
        k.tiles = (kk + LoopKernel.TILE - 1) / LoopKernel.TILE;
        k.gm = m;
        k.gn = n;
        k.gk = kk;
        k.accumulate = accumulate ? 1 : 0;
        k.aSel = a.ordinal();
        k.aOff = aOff;
        k.aRs = aRs;
        k.aCs = aCs;
        k.bSel = b.ordinal();
        k.bOff = bOff;
        k.bRs = bRs;
        k.bCs = bCs;
        k.cSel = c.ordinal();
        k.cOff = cOff;
        k.cRs = cRs;
        k.cCs = cCs;
        int t = LoopKernel.TILE;
        k.execute(Range.create2D(device, roundUp(n, t), roundUp(m, t), t, t));
        k.tiles = 0;
        wrote(c);
    }

    // out (N,O) act = x (N,I) act . w (O,I)^T from buffer wBuf
    public void linearForward(int outOff, int xOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, outOff, o, 1, Buffer.ACT, xOff, in, 1, wBuf, wOff, in, 1, n, o, in, false);
    }

    // dx (N,I) act += dout (N,O) act . w (O,I)
    public void linearBackwardInput(int dxOff, int doutOff, Buffer wBuf, int wOff, int n, int in, int o) {
        gemm(Buffer.ACT, dxOff, in, 1, Buffer.ACT, doutOff, o, 1, wBuf, wOff, 1, in, n, in, o, true);
    }

    // dw (O,I) in dwBuf += dout (N,O)^T act . x (N,I) act
    public void linearBackwardWeight(Buffer dwBuf, int dwOff, int doutOff, int xOff, int n, int in, int o) {
        gemm(dwBuf, dwOff, in, 1, Buffer.ACT, doutOff, 1, o, Buffer.ACT, xOff, 1, in, o, in, n, true);
    }

    public void fill(Buffer b, int off, int count, float value) {
        reads(b);
        k.op = LoopKernel.OP_FILL;
        k.cSel = b.ordinal();
        k.o0 = off;
        k.n0 = count;
        k.f0 = value;
        launch1D(count);
        wrote(b);
    }

    // act[acc + i] += act[x + i]
    public void add(int accOff, int xOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ADD;
        k.o0 = accOff;
        k.o1 = xOff;
        k.n0 = count;
        launch1D(count);
        wrote(Buffer.ACT);
    }

    // m = silu(g) * u, all in act
    public void swigluForward(int mOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_SWIGLU_FWD;
        k.o0 = gOff;
        k.o1 = uOff;
        k.o2 = mOff;
        k.n0 = count;
        launch1D(count);
        wrote(Buffer.ACT);
    }

    // dm -> dg +=, du +=, all in act
    public void swigluBackward(int dgOff, int duOff, int dmOff, int gOff, int uOff, int count) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_SWIGLU_BWD;
        k.o0 = gOff;
        k.o1 = uOff;
        k.o2 = dmOff;
        k.o3 = dgOff;
        k.o4 = duOff;
        k.n0 = count;
        launch1D(count);
        wrote(Buffer.ACT);
    }

    // x (N,D) act -> y (N,D) act, rstd (N) act; weight in params
    public void rmsnormForward(int yOff, int rstdOff, int xOff, int wOff, int n, int d, float eps) {
        reads(Buffer.ACT, Buffer.PARAMS);
        k.op = LoopKernel.OP_RMSNORM_FWD;
        k.o0 = xOff;
        k.o1 = yOff;
        k.o2 = rstdOff;
        k.o3 = wOff;
        k.n0 = n;
        k.n1 = d;
        k.f0 = eps;
        launch1D(n);
        wrote(Buffer.ACT);
    }

    // dy -> dx += (act); dw += (grads at dwOff) unless dwOff < 0
    public void rmsnormBackward(int dxOff, int dwOff, int dyOff, int xOff, int rstdOff, int wOff, int n, int d) {
        reads(Buffer.ACT, Buffer.PARAMS, Buffer.GRADS);
        k.op = LoopKernel.OP_RMSNORM_BWD_DX;
        k.o0 = xOff;
        k.o1 = dyOff;
        k.o2 = rstdOff;
        k.o3 = wOff;
        k.o4 = dxOff;
        k.n0 = n;
        k.n1 = d;
        launch1D(n);
        wrote(Buffer.ACT);
        if (dwOff >= 0) {
            k.op = LoopKernel.OP_RMSNORM_BWD_DW;
            k.o3 = dwOff;
            launch1D(d);
            wrote(Buffer.GRADS);
        }
    }

    // rotates x (rows, heads, hd) in act in place; forward or its transpose
    public void rope(int xOff, int rows, int seqLen, int heads, int hd, boolean forward) {
        reads(Buffer.ACT);
        k.op = LoopKernel.OP_ROPE;
        k.o0 = xOff;
        k.n0 = seqLen;
        k.n1 = heads;
        k.n2 = hd;
        k.gn = rows * heads * (hd / 2);
        k.f0 = forward ? 1f : -1f;
        launch1D(k.gn);
        wrote(Buffer.ACT);
    }

    @Override
    public void close() {
        k.dispose();
    }

    private void launch1D(int count) {
        k.tiles = 0;
        k.execute(Range.create(device, roundUp(Math.max(count, 1), GROUP), GROUP));
    }

    private void reads(Buffer... bs) {
        for (Buffer b : bs) {
            residency.requireDevice(b);
        }
    }

    private void wrote(Buffer b) {
        residency.set(b, Residency.Side.DEVICE);
    }

    private float[] array(Buffer b) {
        return switch (b) {
            case PARAMS -> k.w;
            case GRADS -> k.gw;
            case ACT -> k.act;
        };
    }

    private static int roundUp(int x, int m) {
        return (x + m - 1) / m * m;
    }
}
