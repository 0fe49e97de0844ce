package io.ouro.worker.model;

/**
 * Where the model runs, as the config says it: {@code gpu} (the first OpenCL GPU), {@code gpu:<n>} (the
 * n-th OpenCL GPU, e.g. the address Spark's {@code gpu} resource gave a task), {@code cpu} (the
 * first OpenCL CPU device), {@code opencl:<index>} (an index into {@code OpenClDevices.list()}), or
 * {@code java} (the plain-Java reference backend, no OpenCL).
 */
public record DeviceSpec(Kind kind, int index) {

    public enum Kind { GPU, CPU, OPENCL_INDEX, JAVA }

    public static DeviceSpec parse(String text) {
        String s = text == null ? "" : text.trim().toLowerCase(java.util.Locale.ROOT);
        switch (s) {
            case "gpu":
                return new DeviceSpec(Kind.GPU, -1);
            case "cpu":
                return new DeviceSpec(Kind.CPU, -1);
            case "java":
                return new DeviceSpec(Kind.JAVA, -1);
            default:
                if (s.startsWith("gpu:")) {
                    try {
                        int i = Integer.parseInt(s.substring("gpu:".length()));
                        if (i >= 0) {
                            return new DeviceSpec(Kind.GPU, i);
                        }
                    } catch (NumberFormatException ignored) {
                        // falls through to the error below
                    }
                }
                if (s.startsWith("opencl:")) {
                    try {
                        int i = Integer.parseInt(s.substring("opencl:".length()));
                        if (i >= 0) {
                            return new DeviceSpec(Kind.OPENCL_INDEX, i);
                        }
                    } catch (NumberFormatException ignored) {
                        // falls through to the error below
                    }
                }
                throw new IllegalArgumentException("device: expected gpu | gpu:<n> | cpu | opencl:<index> | java, got '" + text + "'");
        }
    }

    @Override
    public String toString() {
        if (kind == Kind.OPENCL_INDEX) {
            return "opencl:" + index;
        }
        return kind.name().toLowerCase(java.util.Locale.ROOT) + (kind == Kind.GPU && index >= 0 ? ":" + index : "");
    }
}
