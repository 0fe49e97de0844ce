package io.ouro.worker.comm;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InterfaceAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Which of an executor's network interfaces the gradient ring uses ({@code train.exchange_interface}).
 *
 * <p>By default the ring binds to and advertises the host Spark reports for the executor, which is whatever its
 * hostname resolves to: on GPU nodes usually the management Ethernet, not the fast fabric (InfiniBand over IP,
 * RoCE, a second 100–400 Gb/s port). A spec names the fabric instead:
 * <ul>
 *   <li>an interface name ({@code ib0}, {@code bond0}, {@code enp65s0f0}): its first IPv4 address, else its first
 *       IPv6 one; the interface must be up;</li>
 *   <li>a subnet in CIDR notation ({@code 10.2.0.0/16}, {@code fd00::/8}): the executor's address inside it, on
 *       any interface that is up (useful when the fabric's interface names differ between nodes).</li>
 * </ul>
 * Every executor resolves its own address; the ring order still groups ranks by the host Spark reports, so that
 * a node's ranks stay neighbours whichever interface carries the bytes. An executor without such an interface or
 * address fails its task with the spec and the interfaces it has ({@link #resolve}), rather than silently using
 * another network.
 */
public final class ExchangeInterface {

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.:@-]{1,64}");

    private ExchangeInterface() {
    }

    /**
     * Checks a spec's form without looking at this machine's interfaces (the driver's config check); blank is
     * the default. Returns the reason it is malformed, or null.
     */
    public static String malformed(String spec) {
        if (spec == null || spec.isBlank()) {
            return null;
        }
        if (spec.indexOf('/') >= 0) {
            try {
                Subnet.parse(spec);
                return null;
            } catch (IllegalArgumentException e) {
                return e.getMessage();
            }
        }
        return NAME.matcher(spec).matches() ? null
                : "expected an interface name (such as ib0) or a subnet (such as 10.2.0.0/16), got '" + spec + "'";
    }

    /**
     * The address this executor's ring binds to and advertises: {@code fallbackHost} when {@code spec} is blank,
     * else the address {@code spec} selects on this machine.
     *
     * @throws AllReduceException naming the spec and listing the interfaces that are up, when none matches
     */
    public static String resolve(String spec, String fallbackHost) {
        if (spec == null || spec.isBlank()) {
            return fallbackHost;
        }
        List<NetworkInterface> up = upInterfaces();
        InetAddress chosen = spec.indexOf('/') >= 0 ? inSubnet(Subnet.parse(spec), up) : onInterface(spec, up);
        if (chosen == null) {
            throw new AllReduceException("train.exchange_interface '" + spec + "': no "
                    + (spec.indexOf('/') >= 0 ? "address in that subnet is up" : "interface of that name is up with an address")
                    + " on " + fallbackHost + "; interfaces up there: " + describe(up), -1, fallbackHost);
        }
        return chosen.getHostAddress().replaceFirst("%.*$", ""); // no IPv6 scope suffix: peers use their own
    }

    private static InetAddress onInterface(String name, List<NetworkInterface> up) {
        for (NetworkInterface ni : up) {
            if (ni.getName().equals(name)) {
                InetAddress v6 = null;
                for (InetAddress a : Collections.list(ni.getInetAddresses())) {
                    if (a instanceof Inet4Address) {
                        return a;
                    }
                    if (v6 == null && !a.isLinkLocalAddress()) {
                        v6 = a;
                    }
                }
                return v6;
            }
        }
        return null;
    }

    private static InetAddress inSubnet(Subnet subnet, List<NetworkInterface> up) {
        for (NetworkInterface ni : up) {
            for (InetAddress a : Collections.list(ni.getInetAddresses())) {
                if (subnet.contains(a)) {
                    return a;
                }
            }
        }
        return null;
    }

    private static List<NetworkInterface> upInterfaces() {
        List<NetworkInterface> up = new ArrayList<>();
        try {
            for (NetworkInterface ni : Collections.list(NetworkInterface.getNetworkInterfaces())) {
                if (ni.isUp()) {
                    up.add(ni);
                }
            }
        } catch (SocketException e) {
            throw new AllReduceException("train.exchange_interface: cannot list this machine's interfaces: " + e, -1, "");
        }
        up.sort((x, y) -> Integer.compare(x.getIndex(), y.getIndex()));
        return up;
    }

    private static String describe(List<NetworkInterface> up) {
        List<String> parts = new ArrayList<>();
        for (NetworkInterface ni : up) {
            List<String> addrs = new ArrayList<>();
            for (InterfaceAddress ia : ni.getInterfaceAddresses()) {
                addrs.add(ia.getAddress().getHostAddress().replaceFirst("%.*$", "") + "/" + ia.getNetworkPrefixLength());
            }
            parts.add(ni.getName() + " " + addrs);
        }
        return parts.isEmpty() ? "none" : String.join(", ", parts);
    }

    /** A CIDR subnet: an address and a prefix length. */
    record Subnet(byte[] network, int prefix) {

        static Subnet parse(String cidr) {
            int slash = cidr.indexOf('/');
            String addr = cidr.substring(0, slash), bits = cidr.substring(slash + 1);
            byte[] network = literal(addr);
            if (network == null) {
                throw new IllegalArgumentException("expected a subnet such as 10.2.0.0/16, got '" + cidr + "'");
            }
            int prefix;
            try {
                prefix = Integer.parseInt(bits);
            } catch (NumberFormatException e) {
                prefix = -1;
            }
            if (prefix < 0 || prefix > network.length * 8) {
                throw new IllegalArgumentException("prefix length of '" + cidr + "': expected 0.."
                        + network.length * 8 + ", got '" + bits + "'");
            }
            return new Subnet(network, prefix);
        }

        /** An IPv4 or IPv6 literal's bytes, or null; never a name lookup (a config check must not touch DNS). */
        private static byte[] literal(String addr) {
            if (addr.indexOf(':') >= 0) { // Java reads a string with ':' as an IPv6 literal only
                try {
                    return addr.matches("[0-9A-Fa-f:.]+") ? InetAddress.getByName(addr).getAddress() : null;
                } catch (UnknownHostException e) {
                    return null;
                }
            }
            String[] parts = addr.split("\\.", -1);
            if (parts.length != 4) {
                return null;
            }
            byte[] b = new byte[4];
            for (int i = 0; i < 4; i++) {
                if (!parts[i].matches("[0-9]{1,3}") || Integer.parseInt(parts[i]) > 255) {
                    return null;
                }
                b[i] = (byte) Integer.parseInt(parts[i]);
            }
            return b;
        }

        boolean contains(InetAddress a) {
            byte[] b = a.getAddress();
            if (b.length != network.length) {
                return false;
            }
            for (int bit = 0; bit < prefix; bit++) {
                int mask = 0x80 >>> (bit & 7);
                if ((b[bit >> 3] & mask) != (network[bit >> 3] & mask)) {
                    return false;
                }
            }
            return true;
        }
    }
}
