/// An immutable longest-prefix-match table built once from prefixes and values, for lookups on
/// hot paths (data-center classification, trusted proxies, allowlists).
///
/// Same matching rules as `PrefixTable`: IPv4-mapped IPv6 prefixes (inside `::ffff:0:0/96`) are
/// stored as IPv4, an IPv4 address that no IPv4 prefix covers may still match a short IPv6 prefix
/// covering `::ffff:0:0/96`, and the most specific prefix wins. When the same prefix is given twice
/// the later value wins.
///
/// Cost: building sorts the prefixes (O(n log n)). A family with at most `scanLimit` prefixes (trusted
/// proxies, denied networks) has no index: a lookup scans them, and costs no memory beyond them.
/// Above that, memory is 2 MiB (8 MiB above 200,000 IPv4
/// prefixes) of IPv4 directory and 0.5 MiB of IPv6 directory, for the families in use, plus about
/// 24 (IPv4) or 20 (IPv6) bytes at most per range (at most two ranges per prefix), plus the prefixes and
/// values themselves. A lookup reads one directory entry and, only where many ranges start close
/// together, a sub-directory entry and a short binary search. See `RangeIndex.swift`.
public struct CompiledPrefixTable<Value: Sendable>: Sendable {
    @usableFromInline let v4Prefixes: [IPv4Prefix]
    @usableFromInline let v4Values: [Value]
    @usableFromInline let v4Index: IPv4RangeIndex?
    @usableFromInline let v6Prefixes: [IPv6Prefix]
    @usableFromInline let v6Values: [Value]
    @usableFromInline let v6Index: IPv6RangeIndex?

    /// An empty table.
    public init() {
        self.init(EmptyCollection<(prefix: IPPrefix, value: Value)>())
    }

    /// Builds the table; for a prefix given more than once the last value is kept.
    public init(_ entries: some Sequence<(prefix: IPPrefix, value: Value)>) {
        var v4: [(prefix: IPv4Prefix, value: Value)] = []
        var v6: [(prefix: IPv6Prefix, value: Value)] = []
        for (prefix, value) in entries {
            switch prefix {
            case .v4(let p): v4.append((p, value))
            case .v6(let p):
                if let mapped = p.ipv4Mapped { v4.append((mapped, value)) } else { v6.append((p, value)) }
            }
        }
        let (p4, values4) = Self.sortedUnique(v4)
        let (p6, values6) = Self.sortedUnique(v6)
        self.init(v4Prefixes: p4, v4Values: values4, v6Prefixes: p6, v6Values: values6)
    }

    /// Builds the table from IPv4 entries only (the bulk path: one integer sort, no hashing).
    /// For a prefix given more than once the last value is kept.
    public init(ipv4 entries: [(prefix: IPv4Prefix, value: Value)]) {
        let (prefixes, values) = Self.sortedUnique(entries)
        self.init(v4Prefixes: prefixes, v4Values: values, v6Prefixes: [], v6Values: [])
    }

    /// Both families sorted by (network, length) and unique.
    init(v4Prefixes: [IPv4Prefix], v4Values: [Value], v6Prefixes: [IPv6Prefix], v6Values: [Value]) {
        self.v4Prefixes = v4Prefixes
        self.v4Values = v4Values
        // A finer directory once there are many ranges: shorter searches for 8 MiB instead of 0.5.
        v4Index = v4Prefixes.count <= Self.scanLimit ? nil
            : IPv4RangeIndex(sortedPrefixes: v4Prefixes, directoryBits: v4Prefixes.count > 200_000 ? 20 : 18)
        self.v6Prefixes = v6Prefixes
        self.v6Values = v6Values
        v6Index = v6Prefixes.count <= Self.scanLimit ? nil : IPv6RangeIndex(sortedPrefixes: v6Prefixes)
    }

    /// Sorts by (network, length) and keeps the last value of a repeated prefix. The sort key packs
    /// network, length and input position into one integer.
    static func sortedUnique(_ entries: [(prefix: IPv4Prefix, value: Value)]) -> ([IPv4Prefix], [Value]) {
        var order: [Int]
        if entries.count < 1 << 26 {
            var keys = [UInt64](repeating: 0, count: entries.count)
            for (i, e) in entries.enumerated() {
                keys[i] = (UInt64(e.prefix.network.value) << 6 | UInt64(e.prefix.length)) << 26 | UInt64(i)
            }
            keys.sort()
            order = keys.map { Int($0 & (1 << 26 - 1)) }
        } else {
            order = entries.indices.sorted { a, b in
                let x = entries[a].prefix, y = entries[b].prefix
                return x != y ? x < y : a < b
            }
        }
        var prefixes: [IPv4Prefix] = []
        var values: [Value] = []
        prefixes.reserveCapacity(order.count)
        values.reserveCapacity(order.count)
        for (position, i) in order.enumerated() {
            if position + 1 < order.count, entries[order[position + 1]].prefix == entries[i].prefix { continue }
            prefixes.append(entries[i].prefix)
            values.append(entries[i].value)
        }
        return (prefixes, values)
    }

    /// Sorts by (network, length) and keeps the last value of a repeated prefix.
    static func sortedUnique(_ entries: [(prefix: IPv6Prefix, value: Value)]) -> ([IPv6Prefix], [Value]) {
        let order = entries.indices.sorted { a, b in
            let x = entries[a].prefix, y = entries[b].prefix
            return x != y ? x < y : a < b
        }
        var prefixes: [IPv6Prefix] = []
        var values: [Value] = []
        prefixes.reserveCapacity(order.count)
        values.reserveCapacity(order.count)
        for (position, i) in order.enumerated() {
            if position + 1 < order.count, entries[order[position + 1]].prefix == entries[i].prefix { continue }
            prefixes.append(entries[i].prefix)
            values.append(entries[i].value)
        }
        return (prefixes, values)
    }

    /// Number of distinct prefixes (IPv4-mapped IPv6 prefixes count as IPv4).
    public var count: Int { v4Prefixes.count + v6Prefixes.count }
    public var isEmpty: Bool { count == 0 }

    /// Bytes held by the lookup structures (directory and ranges), not counting the prefix and
    /// value arrays.
    public var indexByteCount: Int { (v4Index?.byteCount ?? 0) + (v6Index?.byteCount ?? 0) }

    /// Number of address ranges the prefixes split the two address spaces into.
    public var rangeCount: Int { (v4Index?.rangeCount ?? 0) + (v6Index?.rangeCount ?? 0) }

    /// Families with at most this many prefixes are scanned instead of indexed: a scan of 32 prefixes
    /// takes tens of nanoseconds, and an index costs 2 MiB (IPv4) or 0.5 MiB (IPv6) resident.
    public static var scanLimit: Int { 32 }

    /// Position of the longest prefix that `contains` accepts, for families small enough to scan.
    @inlinable
    static func scanForLongest<Prefix>(
        _ prefixes: [Prefix], length: (Prefix) -> UInt8, contains: (Prefix) -> Bool
    ) -> Int? {
        var best: Int?
        for (i, prefix) in prefixes.enumerated() where contains(prefix) {
            if best == nil || length(prefix) > length(prefixes[best!]) { best = i }
        }
        return best
    }

    /// Internal position of the longest IPv4 prefix containing `address`, or nil.
    @inlinable
    func entryIndex(_ address: IPv4Address) -> Int? {
        guard let index = v4Index else {
            return Self.scanForLongest(v4Prefixes, length: \.length) { $0.contains(address) }
        }
        let e = index.entry(address.value)
        return e == rangeIndexNoEntry ? nil : Int(e)
    }

    /// Internal position of the longest IPv6 prefix containing `address`, or nil.
    @inlinable
    func entryIndex(_ address: IPv6Address) -> Int? {
        guard let index = v6Index else {
            return Self.scanForLongest(v6Prefixes, length: \.length) { $0.contains(address) }
        }
        let e = index.entry(address)
        return e == rangeIndexNoEntry ? nil : Int(e)
    }

    @inlinable
    public func longestMatch(_ address: IPv4Address) -> (prefix: IPv4Prefix, value: Value)? {
        guard let i = entryIndex(address) else { return nil }
        return (v4Prefixes[i], v4Values[i])
    }

    /// The value of the longest IPv4 prefix containing `address`.
    @inlinable
    public func value(_ address: IPv4Address) -> Value? {
        guard let i = entryIndex(address) else { return nil }
        return v4Values[i]
    }

    @inlinable
    public func longestMatch(_ address: IPv6Address) -> (prefix: IPv6Prefix, value: Value)? {
        if let v4address = address.ipv4Mapped, let hit = longestMatch(v4address) {
            return (IPv6Prefix(IPv6Address(ipv4Mapped: hit.prefix.network), length: hit.prefix.length + 96), hit.value)
        }
        guard let e = entryIndex(address) else { return nil }
        return (v6Prefixes[e], v6Values[e])
    }

    @inlinable
    public func longestMatch(_ address: IPAddress) -> (prefix: IPPrefix, value: Value)? {
        switch address.unmapped {
        case .v4(let a):
            if let hit = longestMatch(a) { return (.v4(hit.prefix), hit.value) }
            // A v4 address may still fall in a short IPv6 prefix covering ::ffff:0:0/96.
            if !v6Prefixes.isEmpty, let e = entryIndex(IPv6Address(ipv4Mapped: a)) {
                return (.v6(v6Prefixes[e]), v6Values[e])
            }
            return nil
        case .v6(let a):
            guard let hit = longestMatch(a) else { return nil }
            return (.v6(hit.prefix), hit.value)
        }
    }

    @inlinable
    public func contains(_ address: IPAddress) -> Bool { longestMatch(address) != nil }

    @inlinable
    public func contains(_ address: IPv4Address) -> Bool {
        if entryIndex(address) != nil { return true }
        return longestMatch(IPAddress.v4(address)) != nil
    }

    /// All entries, IPv4 first, each family in address order.
    public var entries: [(prefix: IPPrefix, value: Value)] {
        var out: [(prefix: IPPrefix, value: Value)] = []
        out.reserveCapacity(count)
        for i in v4Prefixes.indices { out.append((.v4(v4Prefixes[i]), v4Values[i])) }
        for i in v6Prefixes.indices { out.append((.v6(v6Prefixes[i]), v6Values[i])) }
        return out
    }
}
