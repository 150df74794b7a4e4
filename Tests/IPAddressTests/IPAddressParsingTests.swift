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

@Suite struct PrefixTests {
    @Test func v4PrefixBasics() throws {
        let p = try IPv4Prefix(parsing: "10.0.0.0/8")
        #expect(p.contains(IPv4Address("10.255.1.2")!))
        #expect(!p.contains(IPv4Address("11.0.0.0")!))
        #expect(p.netmask == IPv4Address("255.0.0.0"))
        #expect(p.last == IPv4Address("10.255.255.255"))
        #expect(p.size == 1 << 24)
        #expect(try IPv4Prefix(parsing: "1.2.3.4").length == 32)
        #expect(try IPv4Prefix(parsing: "0.0.0.0/0").contains(IPv4Address("200.1.1.1")!))
        #expect(p.contains(try IPv4Prefix(parsing: "10.1.0.0/16")))
        #expect(!(try IPv4Prefix(parsing: "10.1.0.0/16")).contains(p))
    }

    @Test func strictParsingNamesTheProblem() {
        #expect(throws: PrefixParseError.hostBitsSet("10.0.0.1/8", canonical: "10.0.0.0/8")) { try IPv4Prefix(parsing: "10.0.0.1/8") }
        #expect(throws: PrefixParseError.badLength("10.0.0.0/33")) { try IPv4Prefix(parsing: "10.0.0.0/33") }
        #expect(throws: PrefixParseError.badLength("10.0.0.0/08")) { try IPv4Prefix(parsing: "10.0.0.0/08") }
        #expect(throws: PrefixParseError.badLength("10.0.0.0/")) { try IPv4Prefix(parsing: "10.0.0.0/") }
        #expect(throws: PrefixParseError.badAddress("10.0.0/8")) { try IPv4Prefix(parsing: "10.0.0/8") }
        #expect((try? IPv4Prefix(parsing: "10.0.0.1/8", strict: false))?.description == "10.0.0.0/8")
    }

    @Test func v6Prefix() throws {
        let p = try IPv6Prefix(parsing: "2001:db8::/32")
        #expect(p.contains(IPv6Address("2001:db8:ffff::1")!))
        #expect(!p.contains(IPv6Address("2001:db9::")!))
        #expect(p.last == IPv6Address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"))
        #expect(try IPv6Prefix(parsing: "::ffff:10.0.0.0/104").ipv4Mapped == (try IPv4Prefix(parsing: "10.0.0.0/8")))
        #expect(throws: PrefixParseError.self) { try IPv6Prefix(parsing: "2001:db8::1/32") }
        #expect(throws: PrefixParseError.self) { try IPv6Prefix(parsing: "::/129") }
        #expect(IPPrefix("::/0")!.contains(.v6(IPv6Address("1::")!)))
        #expect(IPPrefix("::ffff:0:0/96")!.contains(.v4(IPv4Address("1.2.3.4")!)))
    }
}

@Suite struct PrefixTableTests {
    @Test func longestMatchWins() throws {
        var t = PrefixTable<String>()
        t.insert(try IPPrefix(parsing: "10.0.0.0/8"), "eight")
        t.insert(try IPPrefix(parsing: "10.1.0.0/16"), "sixteen")
        t.insert(try IPPrefix(parsing: "10.1.2.3/32"), "host")
        t.insert(try IPPrefix(parsing: "0.0.0.0/0"), "default")
        #expect(t.longestMatch(IPv4Address("10.1.2.3")!)?.value == "host")
        #expect(t.longestMatch(IPv4Address("10.1.2.4")!)?.value == "sixteen")
        #expect(t.longestMatch(IPv4Address("10.1.2.4")!)?.prefix.description == "10.1.0.0/16")
        #expect(t.longestMatch(IPv4Address("10.2.0.0")!)?.value == "eight")
        #expect(t.longestMatch(IPv4Address("11.0.0.0")!)?.value == "default")
        #expect(t.count == 4)
    }

    @Test func mappedAddressesMatchV4Entries() throws {
        var t = PrefixTable<Int>()
        t.insert(try IPPrefix(parsing: "192.0.2.0/24"), 1)
        t.insert(try IPPrefix(parsing: "2001:db8::/32"), 2)
        #expect(t.longestMatch(IPAddress("::ffff:192.0.2.77")!)?.value == 1)
        #expect(t.longestMatch(IPAddress("2001:db8::5")!)?.value == 2)
        #expect(t.longestMatch(IPAddress("2001:db9::5")!) == nil)
        // A v4-mapped IPv6 prefix is stored as IPv4.
        t.insert(try IPPrefix(parsing: "::ffff:198.51.100.0/120"), 3)
        #expect(t.longestMatch(IPv4Address("198.51.100.1")!)?.value == 3)
    }

    @Test func agreesWithBruteForceOnRandomPrefixes() {
        var rng = SystemRandomNumberGenerator()
        var table = PrefixTable<Int>()
        var prefixes: [IPv4Prefix] = []
        for i in 0..<2_000 {
            let p = IPv4Prefix(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)), length: UInt8.random(in: 0...32, using: &rng))
            table.insert(p, i)
            prefixes.append(p)
        }
        var latest: [IPv4Prefix: Int] = [:]
        for (i, p) in prefixes.enumerated() { latest[p] = i }
        for _ in 0..<2_000 {
            // Half the probes inside a known prefix, half anywhere.
            let base = prefixes.randomElement()!
            let a = Bool.random() ? IPv4Address(base.network.value | (UInt32.random(in: 0...UInt32.max) & ~IPv4Prefix.mask(base.length))) : IPv4Address(UInt32.random(in: 0...UInt32.max))
            let expected = latest.filter { $0.key.contains(a) }.max { $0.key.length < $1.key.length }
            let got = table.longestMatch(a)
            #expect(got?.prefix == expected?.key)
            #expect(got?.value == expected?.value)
        }
    }

    @Test func prefixSet() throws {
        let s = try PrefixSet(parsing: ["127.0.0.0/8", "::1", "10.0.0.0/8"])
        #expect(s.contains(IPAddress("127.9.9.9")!))
        #expect(s.contains(IPAddress("::1")!))
        #expect(!s.contains(IPAddress("192.168.1.1")!))
        #expect(PrefixSet.privateAndLoopback.contains(IPAddress("100.64.1.1")!))
        #expect(throws: PrefixParseError.self) { try PrefixSet(parsing: ["10.0.0.1/8"]) }
    }
}
