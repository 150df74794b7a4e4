import Testing
@testable import IPAddress

@Suite struct IPv4ParsingTests {
    @Test(arguments: [
        ("0.0.0.0", UInt32(0)), ("255.255.255.255", UInt32.max), ("1.2.3.4", UInt32(0x0102_0304)),
        ("127.0.0.1", UInt32(0x7F00_0001)), ("10.0.0.255", UInt32(0x0A00_00FF)),
    ])
    func parsesValid(text: String, value: UInt32) {
        #expect(IPv4Address(text)?.value == value)
        #expect(IPv4Address(value).description == text)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3.00",
        "0x1.2.3.4", "1..3.4", ".1.2.3", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "+1.2.3.4", "1.2.3.-4",
        "1234.1.1.1", "4294967295", "1.2.3.4/8", "١.٢.٣.٤", "1.2.3.4\u{0}",
    ])
    func rejectsInvalid(text: String) {
        #expect(IPv4Address(text) == nil, "accepted \(text)")
    }

    @Test func blockIsFirstOctet() {
        #expect(IPv4Address("203.0.113.9")!.block == 203)
    }
}

@Suite struct IPv6ParsingTests {
    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("1:0:0:1:0:0:0:1", "1:0:0:1::1"), ("1:0:0:0:1:0:0:1", "1::1:0:0:1"),
        ("fe80::", "fe80::"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1::2:3:4:5:6:7", "1:0:2:3:4:5:6:7"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::ffff:0102:0304", "::ffff:1.2.3.4"), ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ])
    func parsesAndFormatsCanonically(text: String, canonical: String) {
        let a = IPv6Address(text)
        #expect(a?.description == canonical, "\(text)")
        if let a { #expect(IPv6Address(a.description) == a) }
    }

    @Test(arguments: [
        "", ":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", "1:2:3:4:5:6:7", "::1:",
        ":1::", "fe80::1%eth0", "[::1]", "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "1:2:3:4:5:6:7:1.2.3.4",
    ])
    func rejectsInvalid(text: String) {
        #expect(IPv6Address(text) == nil, "accepted \(text)")
    }

    @Test func mappedIPv4RoundTrips() {
        let v4 = IPv4Address(198, 51, 100, 7)
        let mapped = IPv6Address(ipv4Mapped: v4)
        #expect(mapped.ipv4Mapped == v4)
        #expect(IPAddress.v6(mapped).unmapped == .v4(v4))
        #expect(IPAddress("::ffff:198.51.100.7")?.ipv4 == v4)
        #expect(IPv6Address("::1")!.ipv4Mapped == nil)
    }

    @Test func bytesRoundTrip() {
        let a = IPv6Address("2001:db8:1:2:3:4:5:6")!
        #expect(IPv6Address(bytes: a.bytes) == a)
        #expect(a.bytes.count == 16)
        #expect(a.bytes[0] == 0x20 && a.bytes[15] == 0x06)
    }
}
