import Testing
@testable import IPAddress


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
