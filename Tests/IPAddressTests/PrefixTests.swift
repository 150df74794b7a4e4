import Testing
@testable import IPAddress


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
