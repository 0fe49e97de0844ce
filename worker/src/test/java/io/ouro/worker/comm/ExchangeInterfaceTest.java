package io.ouro.worker.comm;

import org.junit.jupiter.api.Test;

import java.net.InetAddress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code train.exchange_interface} picks the ring's address on this machine by interface name or by subnet, and
 * an executor without it fails naming the spec and the interfaces it has. Uses the loopback interface (named
 * {@code lo} on Linux, which every machine running these tests has) and class E space, which no machine uses.
 */
class ExchangeInterfaceTest {

    @Test
    void blankKeepsSparksHost() {
        assertEquals("exec-7.cluster", ExchangeInterface.resolve("", "exec-7.cluster"));
        assertEquals("exec-7.cluster", ExchangeInterface.resolve(null, "exec-7.cluster"));
    }

    @Test
    void anInterfaceNameGivesItsIpv4Address() {
        assertEquals("127.0.0.1", ExchangeInterface.resolve("lo", "exec-7"));
    }

    @Test
    void aSubnetGivesTheAddressInsideIt() throws Exception {
        assertEquals("127.0.0.1", ExchangeInterface.resolve("127.0.0.0/8", "exec-7"));
        assertEquals("127.0.0.1", ExchangeInterface.resolve("127.0.0.1/32", "exec-7"));
        String v6 = ExchangeInterface.resolve("::1/128", "exec-7");
        assertTrue(InetAddress.getByName(v6).isLoopbackAddress(), v6);
    }

    @Test
    void noSuchInterfaceOrSubnetIsAClearError() {
        AllReduceException e = assertThrows(AllReduceException.class,
                () -> ExchangeInterface.resolve("ib9", "exec-7"));
        assertTrue(e.getMessage().startsWith("train.exchange_interface 'ib9': no interface of that name is up with an"
                + " address on exec-7; interfaces up there: "), e.getMessage());
        assertTrue(e.getMessage().contains("lo [") && e.getMessage().contains("127.0.0.1/8"), "lists what the machine has: " + e.getMessage());
        AllReduceException s = assertThrows(AllReduceException.class,
                () -> ExchangeInterface.resolve("240.0.0.0/4", "exec-7"));
        assertTrue(s.getMessage().startsWith("train.exchange_interface '240.0.0.0/4': no address in that subnet is up on"
                + " exec-7"),
                s.getMessage());
    }

    @Test
    void subnetsMatchByPrefixBits() throws Exception {
        ExchangeInterface.Subnet net = ExchangeInterface.Subnet.parse("10.2.128.0/17");
        assertTrue(net.contains(InetAddress.getByName("10.2.200.9")));
        assertFalse(net.contains(InetAddress.getByName("10.2.127.255")), "bit 17 differs");
        assertFalse(ExchangeInterface.Subnet.parse("fd00::/8").contains(InetAddress.getByName("10.2.200.9")),
                "an IPv6 subnet holds no IPv4 address");
        assertTrue(ExchangeInterface.Subnet.parse("0.0.0.0/0").contains(InetAddress.getByName("192.0.2.1")));
    }

    @Test
    void malformedSpecsAreNamedWithoutLookingAtTheMachine() {
        assertNull(ExchangeInterface.malformed(""));
        assertNull(ExchangeInterface.malformed("ib0"));
        assertNull(ExchangeInterface.malformed("enp65s0f0.100"));
        assertNull(ExchangeInterface.malformed("fd00::/8"));
        assertEquals("prefix length of '10.0.0.0/40': expected 0..32, got '40'", ExchangeInterface.malformed("10.0.0.0/40"));
        assertEquals("expected a subnet such as 10.2.0.0/16, got 'host.example/8'", ExchangeInterface.malformed("host.example/8"));
        assertEquals("expected a subnet such as 10.2.0.0/16, got '10.0.0.300/8'", ExchangeInterface.malformed("10.0.0.300/8"));
        assertEquals("expected a subnet such as 10.2.0.0/16, got '10.0.0/8'", ExchangeInterface.malformed("10.0.0/8"));
        assertEquals("expected a subnet such as 10.2.0.0/16, got 'fd00::zz/8'", ExchangeInterface.malformed("fd00::zz/8"));
    }
}
