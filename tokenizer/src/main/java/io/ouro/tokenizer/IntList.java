package io.ouro.tokenizer;

import java.util.Iterator;

/** A growable int array. */
public final class IntList implements Iterable<Integer> {
    private int[] a;
    private int n;

    public IntList(int capacity) {
        a = new int[Math.max(4, capacity)];
    }

    public void add(int v) {
        if (n == a.length) {
            a = java.util.Arrays.copyOf(a, a.length * 2);
        }
        a[n++] = v;
    }

    void addAll(int[] v) {
        if (n + v.length > a.length) {
            a = java.util.Arrays.copyOf(a, Math.max(a.length * 2, n + v.length));
        }
        System.arraycopy(v, 0, a, n, v.length);
        n += v.length;
    }

    public int size() {
        return n;
    }

    public int get(int i) {
        return a[i];
    }

    public void clear() {
        n = 0;
    }

    public int[] toArray() {
        return java.util.Arrays.copyOf(a, n);
    }

    @Override
    public Iterator<Integer> iterator() {
        return java.util.stream.IntStream.range(0, n).map(i -> a[i]).iterator();
    }
}
