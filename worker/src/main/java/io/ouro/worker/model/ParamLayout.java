package io.ouro.worker.model;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The layout of the one flat parameter buffer: every tensor of the model as a {@link TensorView}
 * named as in HF Ouro checkpoints. The gradient buffer and the optimizer moments use the same layout.
 *
 * <p>Order: embeddings, then per layer input_layernorm, q/k/v/o projections, input_layernorm_2,
 * post_attention_layernorm, gate/up/down projections, post_attention_layernorm_2; then the final norm,
 * lm_head and the exit gate. Linear weights are stored as HF does, {@code [out, in]}.
 */
public final class ParamLayout {

    /** Indices into {@link #layer(int)}'s array. */
    public static final int IN_NORM = 0, Q = 1, K = 2, V = 3, O = 4, IN_NORM_2 = 5,
            POST_NORM = 6, GATE = 7, UP = 8, DOWN = 9, POST_NORM_2 = 10, LAYER_TENSORS = 11;

    private final LoopConfig config;
    private final List<TensorView> tensors;
    private final Map<String, TensorView> byName;
    private final TensorView[][] layers;
    private final TensorView embed, finalNorm, lmHead, gateWeight, gateBias;
    private final long total;

    public ParamLayout(LoopConfig c) {
        this.config = c;
        List<TensorView> list = new ArrayList<>();
        long[] cursor = {0};
        int d = c.hidden();
        embed = add(list, cursor, "model.embed_tokens.weight", TensorKind.EMBEDDING, c.vocab(), d);
        layers = new TensorView[c.layers()][];
        for (int i = 0; i < c.layers(); i++) {
            String p = "model.layers." + i + ".";
            TensorView[] l = new TensorView[LAYER_TENSORS];
            l[IN_NORM] = add(list, cursor, p + "input_layernorm.weight", TensorKind.NORM, d);
            l[Q] = add(list, cursor, p + "self_attn.q_proj.weight", TensorKind.LINEAR, d, d);
            l[K] = add(list, cursor, p + "self_attn.k_proj.weight", TensorKind.LINEAR, d, d);
            l[V] = add(list, cursor, p + "self_attn.v_proj.weight", TensorKind.LINEAR, d, d);
            l[O] = add(list, cursor, p + "self_attn.o_proj.weight", TensorKind.LINEAR, d, d);
            l[IN_NORM_2] = add(list, cursor, p + "input_layernorm_2.weight", TensorKind.NORM, d);
            l[POST_NORM] = add(list, cursor, p + "post_attention_layernorm.weight", TensorKind.NORM, d);
            l[GATE] = add(list, cursor, p + "mlp.gate_proj.weight", TensorKind.LINEAR, c.ffn(), d);
            l[UP] = add(list, cursor, p + "mlp.up_proj.weight", TensorKind.LINEAR, c.ffn(), d);
            l[DOWN] = add(list, cursor, p + "mlp.down_proj.weight", TensorKind.LINEAR, d, c.ffn());
            l[POST_NORM_2] = add(list, cursor, p + "post_attention_layernorm_2.weight", TensorKind.NORM, d);
            layers[i] = l;
        }
        finalNorm = add(list, cursor, "model.norm.weight", TensorKind.NORM, d);
        lmHead = add(list, cursor, "lm_head.weight", TensorKind.LINEAR, c.vocab(), d);
        gateWeight = add(list, cursor, "model.early_exit_gate.weight", TensorKind.LINEAR, 1, d);
        gateBias = add(list, cursor, "model.early_exit_gate.bias", TensorKind.BIAS, 1);
        this.tensors = Collections.unmodifiableList(list);
        Map<String, TensorView> m = new LinkedHashMap<>();
        for (TensorView t : list) {
            m.put(t.name(), t);
        }
        this.byName = Collections.unmodifiableMap(m);
        this.total = cursor[0];
    }

    private static TensorView add(List<TensorView> list, long[] cursor, String name, TensorKind kind, int... shape) {
        long size = 1;
        for (int s : shape) {
            size *= s;
        }
        TensorView v = new TensorView(name, kind, shape, cursor[0], size);
        cursor[0] += size;
        list.add(v);
        return v;
    }

    public LoopConfig config() {
        return config;
    }

    /** Number of parameters. */
    public long totalSize() {
        return total;
    }

    /** Size as a Java array length, or a clear error for models too large for one array. */
    public int arraySize() {
        if (total > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a model with " + total + " parameters does not fit one Java array "
                    + "(limit " + (Integer.MAX_VALUE - 8) + "); the reference backend cannot hold it");
        }
        return (int) total;
    }

    public List<TensorView> tensors() {
        return tensors;
    }

    public TensorView get(String name) {
        TensorView v = byName.get(name);
        if (v == null) {
            throw new IllegalArgumentException("no parameter tensor named '" + name + "'");
        }
        return v;
    }

    public TensorView[] layer(int i) {
        return layers[i].clone();
    }

    public TensorView embed() {
        return embed;
    }

    public TensorView finalNorm() {
        return finalNorm;
    }

    public TensorView lmHead() {
        return lmHead;
    }

    public TensorView gateWeight() {
        return gateWeight;
    }

    public TensorView gateBias() {
        return gateBias;
    }

    /**
     * The parameters as ranges {@code {from, to}} of the flat layout, in the order a training step's backward
     * finishes their gradients: the tail (final norm, LM head, exit gate) after the first loop step's head, then
     * each layer of the first loop step from the last to the first, then the embedding. ({@link
     * io.ouro.worker.step.LoopSchedule} reports them in this order; gradient buckets are cut from them.)
     */
    public List<long[]> gradientGroups() {
        List<long[]> out = new ArrayList<>();
        out.add(new long[] {finalNorm.offset(), total});
        for (int l = layers.length - 1; l >= 0; l--) {
            long to = l + 1 < layers.length ? layers[l + 1][0].offset() : finalNorm.offset();
            out.add(new long[] {layers[l][0].offset(), to});
        }
        out.add(new long[] {embed.offset(), embed.offset() + embed.size()});
        return out;
    }

    /** True for the exit gate's tensors (of any layout of this shape): the only ones Stage II trains. */
    public boolean isGate(TensorView v) {
        return v.name().equals(gateWeight.name()) || v.name().equals(gateBias.name());
    }
}
