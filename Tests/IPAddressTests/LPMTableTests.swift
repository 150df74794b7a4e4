import IPQuestTestSupport
import Testing
@testable import IPAddress

/// Deterministic generator so a failure can be replayed.


/// Longest match by scanning every prefix: the reference the tables are checked against.
private func bruteForceV4(_ entries: [(IPv4Prefix, Int)], _ address: IPv4Address) -> (IPv4Prefix, Int)? {
    var best: (IPv4Prefix, Int)?
    for (p, v) in entries where p.contains(address) {
        if best == nil || p.length > best!.0.length { best = (p, v) }
    }
    return best
}

private func bruteForceV6(_ entries: [(IPv6Prefix, Int)], _ address: IPv6Address) -> (IPv6Prefix, Int)? {
    var best: (IPv6Prefix, Int)?
    for (p, v) in entries where p.contains(address) {
        if best == nil || p.length > best!.0.length { best = (p, v) }
    }
    return best
}

/// Random IPv4 prefixes with heavy nesting: half are carved out of earlier ones.
private func randomV4Prefixes(_ count: Int, _ rng: inout SplitMix64) -> [IPv4Prefix] {
    var out: [IPv4Prefix] = []
    var seen = Set<IPv4Prefix>()
    while out.count < count {
        let p: IPv4Prefix
        if !out.isEmpty, Bool.random(using: &rng) {
            let parent = out.randomElement(using: &rng)!
            let length = UInt8.random(in: parent.length...32, using: &rng)
            let offset = UInt32(truncatingIfNeeded: UInt64.random(in: 0..<parent.size, using: &rng))
            p = IPv4Prefix(IPv4Address(parent.network.value | offset), length: length)
        } else {
            p = IPv4Prefix(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)), length: UInt8.random(in: 0...32, using: &rng))
        }
        if seen.insert(p).inserted { out.append(p) }
    }
    return out
}

/// Addresses that stress boundaries: first/last/neighbours of each prefix, plus uniform ones.
private func probeAddresses(_ prefixes: [IPv4Prefix], uniform: Int, _ rng: inout SplitMix64) -> [IPv4Address] {
    var out: [IPv4Address] = [IPv4Address(0), IPv4Address(.max)]
    for p in prefixes {
        out.append(p.first)
        out.append(p.last)
        out.append(IPv4Address(p.first.value &- 1))
        out.append(IPv4Address(p.last.value &+ 1))
        out.append(IPv4Address(p.network.value | UInt32(truncatingIfNeeded: UInt64.random(in: 0..<p.size, using: &rng))))
    }
    for _ in 0..<uniform { out.append(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng))) }
    return out
}

@Suite("Compiled longest-prefix-match table")
struct LPMTableTests {
    @Test("IPv4: random nested prefixes agree with a brute-force scan", arguments: [1, 17, 300, 2_000])
    func ipv4MatchesBruteForce(prefixCount: Int) {
        var rng = SplitMix64(seed: UInt64(prefixCount) &* 7919)
        let prefixes = randomV4Prefixes(prefixCount, &rng)
        let entries = prefixes.enumerated().map { ($1, $0) }
        let table = CompiledPrefixTable(entries.map { (prefix: IPPrefix.v4($0.0), value: $0.1) })
        #expect(table.count == prefixCount)
        #expect(table.rangeCount <= 2 * prefixCount + 1)
        var hits = 0
        for address in probeAddresses(prefixes, uniform: 2_000, &rng) {
            let expected = bruteForceV4(entries, address)
            let got = table.longestMatch(address)
            #expect(got?.prefix == expected?.0, "address \(address)")
            #expect(got?.value == expected?.1, "address \(address)")
            if expected != nil { hits += 1 }
        }
        #expect(hits > 0)
    }

    @Test("IPv4: many prefixes inside one /16 (dense slots, sub-directories) agree with brute force")
    func ipv4DenseSlot() {
        var rng = SplitMix64(seed: 42)
        var prefixes: [IPv4Prefix] = [IPv4Prefix("10.1.0.0/16")!]
        var seen = Set(prefixes)
        while prefixes.count < 1_500 {
            let p = IPv4Prefix(IPv4Address(0x0A01_0000 | UInt32.random(in: 0...0xFFFF, using: &rng)), length: UInt8.random(in: 17...32, using: &rng))
            if seen.insert(p).inserted { prefixes.append(p) }
        }
        let entries = prefixes.enumerated().map { ($1, $0) }
        let table = CompiledPrefixTable(ipv4: entries.map { (prefix: $0.0, value: $0.1) })
        for low in stride(from: 0, through: 0xFFFF, by: 7) {
            let address = IPv4Address(0x0A01_0000 | UInt32(low))
            #expect(table.longestMatch(address)?.value == bruteForceV4(entries, address)?.1)
        }
        #expect(table.longestMatch(IPv4Address("10.0.255.255")!) == nil)
        #expect(table.longestMatch(IPv4Address("10.2.0.0")!) == nil)
    }

    @Test("IPv4: edges of the address space and the default route")
    func ipv4Edges() {
        let table = CompiledPrefixTable<String>([
            (prefix: IPPrefix("0.0.0.0/0")!, value: "default"),
            (prefix: IPPrefix("255.255.255.255/32")!, value: "top"),
            (prefix: IPPrefix("0.0.0.0/32")!, value: "bottom"),
            (prefix: IPPrefix("128.0.0.0/1")!, value: "upper half"),
        ])
        #expect(table.longestMatch(IPv4Address("0.0.0.0")!)?.value == "bottom")
        #expect(table.longestMatch(IPv4Address("0.0.0.1")!)?.value == "default")
        #expect(table.longestMatch(IPv4Address("127.255.255.255")!)?.value == "default")
        #expect(table.longestMatch(IPv4Address("128.0.0.0")!)?.value == "upper half")
        #expect(table.longestMatch(IPv4Address("255.255.255.254")!)?.value == "upper half")
        #expect(table.longestMatch(IPv4Address("255.255.255.255")!)?.value == "top")
        #expect(table.longestMatch(IPv4Address("255.255.255.255")!)?.prefix == IPv4Prefix("255.255.255.255/32")!)
    }

    @Test("Repeated prefixes keep the last value; empty tables match nothing")
    func duplicatesAndEmpty() {
        let table = CompiledPrefixTable<Int>([
            (prefix: IPPrefix("192.0.2.0/24")!, value: 1),
            (prefix: IPPrefix("192.0.2.0/24")!, value: 2),
            (prefix: IPPrefix("2001:db8::/32")!, value: 3),
            (prefix: IPPrefix("2001:db8::/32")!, value: 4),
        ])
        #expect(table.count == 2)
        #expect(table.longestMatch(IPv4Address("192.0.2.9")!)?.value == 2)
        #expect(table.longestMatch(IPv6Address("2001:db8::1")!)?.value == 4)
        let bulk = CompiledPrefixTable<Int>(ipv4: [
            (prefix: IPv4Prefix("192.0.2.0/24")!, value: 1),
            (prefix: IPv4Prefix("192.0.2.0/24")!, value: 2),
        ])
        #expect(bulk.count == 1)
        #expect(bulk.value(IPv4Address("192.0.2.200")!) == 2)
        let empty = CompiledPrefixTable<Int>()
        #expect(empty.isEmpty)
        #expect(empty.longestMatch(IPv4Address("1.2.3.4")!) == nil)
        #expect(empty.longestMatch(IPAddress("::1")!) == nil)
    }

    @Test("IPv6: random nested prefixes agree with a brute-force scan")
    func ipv6MatchesBruteForce() {
        var rng = SplitMix64(seed: 6)
        var prefixes: [IPv6Prefix] = [IPv6Prefix("::/0")!, IPv6Prefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")!]
        var seen = Set(prefixes)
        while prefixes.count < 800 {
            let p: IPv6Prefix
            if Bool.random(using: &rng) {
                let parent = prefixes.randomElement(using: &rng)!
                let length = UInt8.random(in: parent.length...128, using: &rng)
                let random = IPv6Address(high: rng.next(), low: rng.next())
                let (mh, ml) = IPv6Prefix.mask(parent.length)
                p = IPv6Prefix(IPv6Address(high: parent.network.high | (random.high & ~mh), low: parent.network.low | (random.low & ~ml)), length: length)
            } else {
                // Mostly inside 2000::/4 with a shared /16 to hit the binary-search path.
                let high = (0x2603 << 48) | (rng.next() >> 16)
                p = IPv6Prefix(IPv6Address(high: high, low: rng.next()), length: UInt8.random(in: 16...128, using: &rng))
            }
            if p.ipv4Mapped == nil, seen.insert(p).inserted { prefixes.append(p) }
        }
        let entries = prefixes.enumerated().map { ($1, $0) }
        let table = CompiledPrefixTable(entries.map { (prefix: IPPrefix.v6($0.0), value: $0.1) })
        var probes: [IPv6Address] = [.any, IPv6Address(high: .max, low: .max)]
        for p in prefixes {
            probes.append(p.first)
            probes.append(p.last)
            if p.last.low != .max { probes.append(IPv6Address(high: p.last.high, low: p.last.low + 1)) }
            if p.first.low != 0 { probes.append(IPv6Address(high: p.first.high, low: p.first.low - 1)) }
        }
        for _ in 0..<1_000 { probes.append(IPv6Address(high: (0x2603 << 48) | (rng.next() >> 16), low: rng.next())) }
        for address in probes {
            let expected = bruteForceV6(entries, address)
            let got = table.longestMatch(address)
            #expect(got?.prefix == expected?.0, "address \(address)")
            #expect(got?.value == expected?.1, "address \(address)")
        }
    }

    @Test("IPv4-mapped prefixes and addresses match across families like PrefixTable")
    func mappedAddresses() {
        let table = CompiledPrefixTable<String>([
            (prefix: IPPrefix("::ffff:198.51.100.0/120")!, value: "mapped v4 /24"),
            (prefix: IPPrefix("::/0")!, value: "v6 default"),
        ])
        // Stored as 198.51.100.0/24.
        #expect(table.longestMatch(IPv4Address("198.51.100.7")!)?.prefix == IPv4Prefix("198.51.100.0/24")!)
        let viaMapped = table.longestMatch(IPv6Address("::ffff:198.51.100.7")!)
        #expect(viaMapped?.value == "mapped v4 /24")
        #expect(viaMapped?.prefix == IPv6Prefix("::ffff:198.51.100.0/120")!)
        // A v4 address outside every v4 prefix still falls into ::/0, as with PrefixTable.
        #expect(table.longestMatch(IPAddress("203.0.113.1")!)?.value == "v6 default")
        #expect(table.longestMatch(IPAddress("::ffff:198.51.100.1")!)?.prefix == .v4(IPv4Prefix("198.51.100.0/24")!))
    }

    @Test("PrefixTable answers the same compiled and uncompiled, and insert drops the compiled form")
    func prefixTableCompiledAndHashPathsAgree() {
        var rng = SplitMix64(seed: 99)
        let prefixes = randomV4Prefixes(500, &rng)
        var table = PrefixTable<Int>()
        for (i, p) in prefixes.enumerated() { table.insert(p, i) }
        table.insert(IPPrefix("2001:db8::/32")!, -1)
        table.insert(IPPrefix("2001:db8:1::/48")!, -2)
        #expect(!table.isCompiled)
        var compiled = table
        compiled.compile()
        #expect(compiled.isCompiled)
        #expect(compiled.count == table.count)
        for address in probeAddresses(prefixes, uniform: 1_000, &rng) {
            let a = table.longestMatch(address), b = compiled.longestMatch(address)
            #expect(a?.prefix == b?.prefix && a?.value == b?.value, "address \(address)")
            let c = table.longestMatch(IPAddress.v4(address)), d = compiled.longestMatch(IPAddress.v4(address))
            #expect(c?.prefix == d?.prefix && c?.value == d?.value)
        }
        #expect(compiled.longestMatch(IPv6Address("2001:db8:1::5")!)?.value == -2)
        #expect(compiled.longestMatch(IPv6Address("2001:db8:2::5")!)?.value == -1)
        compiled.insert(IPPrefix("2001:db8:1:2::/64")!, -3)
        #expect(!compiled.isCompiled)
        #expect(compiled.longestMatch(IPv6Address("2001:db8:1:2::5")!)?.value == -3)
        compiled.compile()
        #expect(compiled.longestMatch(IPv6Address("2001:db8:1:2::5")!)?.value == -3)
        #expect(compiled.compiled().count == compiled.count)
    }

    @Test("Large tables (finer directory) agree with the hash-probing PrefixTable")
    func largeTableAgreesWithHashProbing() {
        var rng = SplitMix64(seed: 2026)
        var hashTable = PrefixTable<Int>()
        var bulk: [(prefix: IPv4Prefix, value: Int)] = []
        var prefixes: [IPv4Prefix] = []
        for i in 0..<210_000 {
            let length = UInt8.random(in: 8...32, using: &rng)
            let p = IPv4Prefix(IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)), length: length)
            hashTable.insert(p, i)
            bulk.append((p, i))
            prefixes.append(p)
        }
        let compiled = CompiledPrefixTable(ipv4: bulk)
        #expect(compiled.count == hashTable.count)
        var probes = (0..<20_000).map { _ in IPv4Address(UInt32.random(in: 0...UInt32.max, using: &rng)) }
        for p in prefixes.prefix(5_000) { probes += [p.first, p.last, IPv4Address(p.last.value &+ 1)] }
        for address in probes {
            let expected = hashTable.longestMatch(address)
            let got = compiled.longestMatch(address)
            #expect(got?.prefix == expected?.prefix && got?.value == expected?.value, "address \(address)")
        }
    }

    @Test("PrefixSet is compiled by its initializers and keeps its answers")
    func prefixSetUsesCompiledTable() throws {
        let set = PrefixSet.privateAndLoopback
        #expect(set.contains(IPAddress("10.20.30.40")!))
        #expect(set.contains(IPAddress("::1")!))
        #expect(set.contains(IPAddress("::ffff:192.168.1.1")!))
        #expect(set.contains(IPv4Address("100.64.0.1")!))
        #expect(!set.contains(IPAddress("8.8.8.8")!))
        #expect(!set.contains(IPAddress("2001:4860::8888")!))
        var growing = try PrefixSet(parsing: ["203.0.113.0/24"])
        growing.insert(IPPrefix("198.51.100.0/24")!)
        #expect(growing.contains(IPAddress("198.51.100.1")!))
        growing.compile()
        #expect(growing.contains(IPAddress("198.51.100.1")!))
        #expect(growing.contains(IPAddress("203.0.113.255")!))
        #expect(!growing.contains(IPAddress("203.0.114.0")!))
        #expect(growing.count == 2)
    }
}

@Suite("Small compiled tables")
struct SmallCompiledTableTests {
    @Test func smallFamiliesAreScannedWithoutAnIndex() throws {
        let texts = ["10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16", "::1/128", "fc00::/7", "2001:db8::/32"]
        let small = CompiledPrefixTable(try texts.map { (prefix: try IPPrefix(parsing: $0), value: $0) })
        #expect(small.indexByteCount == 0, "a few prefixes need no directory")
        #expect(small.longestMatch(IPAddress("10.1.2.3")!)?.value == "10.1.0.0/16")
        #expect(small.longestMatch(IPAddress("10.2.2.3")!)?.value == "10.0.0.0/8")
        #expect(small.longestMatch(IPAddress("fd00::5")!)?.value == "fc00::/7")
        #expect(small.longestMatch(IPAddress("11.0.0.1")!) == nil)
        let many = CompiledPrefixTable(
            (0..<(CompiledPrefixTable<Int>.scanLimit + 1)).map { (prefix: IPPrefix.v4(IPv4Prefix(IPv4Address(UInt32($0) << 24), length: 8)), value: $0) })
        #expect(many.indexByteCount > 0, "past the scan limit the table is indexed")
        #expect(many.longestMatch(IPAddress("5.6.7.8")!)?.value == 5)
    }
}
