/// An immutable longest-prefix-match table built once from prefixes and values, for lookups on
/// hot paths (data-center classification, trusted proxies, allowlists).
///
/// Same matching rules as `PrefixTable`: IPv4-mapped IPv6 prefixes (inside `::ffff:0:0/96`) are
/// stored as IPv4, an IPv4 address that no IPv4 prefix covers may still match a short IPv6 prefix
/// covering `::ffff:0:0/96`, and the most specific prefix wins. When the same prefix is given twice
/// the later value wins.
///
/// Cost: building sorts the prefixes (O(n log n)); memory is about 0.5 MiB per family in use plus
/// 6 (IPv4) or 20 (IPv6) bytes per range (at most two ranges per prefix) plus the prefixes and values
/// themselves. A lookup reads one directory slot and, only when ranges start inside that /16, does a
/// binary search over two-byte keys. See `RangeIndex.swift`.
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
        var v4: [IPv4Prefix: Value] = [:]
        var v6: [IPv6Prefix: Value] = [:]
        for (prefix, value) in entries {
            switch prefix {
            case .v4(let p): v4[p] = value
            case .v6(let p):
                if let mapped = p.ipv4Mapped { v4[mapped] = value } else { v6[p] = value }
            }
        }
        self.init(v4: v4, v6: v6)
    }

    /// Builds the table from IPv4 entries only (the bulk path: no hashing when the prefixes are
    /// already unique). For a prefix given more than once the last value is kept.
    public init(ipv4 entries: [(prefix: IPv4Prefix, value: Value)]) {
        // Stable sort by prefix, then keep the last of each run of equal prefixes.
        let order = entries.indices.sorted { a, b in
            let x = entries[a].prefix, y = entries[b].prefix
            if x != y { return x < y }
            return a < b
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
        v4Prefixes = prefixes
        v4Values = values
        v4Index = prefixes.isEmpty ? nil : IPv4RangeIndex(prefixes: prefixes)
        v6Prefixes = []
        v6Values = []
        v6Index = nil
    }

    init(v4: [IPv4Prefix: Value], v6: [IPv6Prefix: Value]) {
        v4Prefixes = Array(v4.keys)
        v4Values = v4Prefixes.map { v4[$0]! }
        v4Index = v4Prefixes.isEmpty ? nil : IPv4RangeIndex(prefixes: v4Prefixes)
        v6Prefixes = Array(v6.keys)
        v6Values = v6Prefixes.map { v6[$0]! }
        v6Index = v6Prefixes.isEmpty ? nil : IPv6RangeIndex(prefixes: v6Prefixes)
    }

    /// Number of distinct prefixes (IPv4-mapped IPv6 prefixes count as IPv4).
    public var count: Int { v4Prefixes.count + v6Prefixes.count }
    public var isEmpty: Bool { count == 0 }

    /// Bytes held by the lookup structures (directory and ranges), not counting the prefix and
    /// value arrays.
    public var indexByteCount: Int { (v4Index?.byteCount ?? 0) + (v6Index?.byteCount ?? 0) }

    /// Number of address ranges the prefixes split the two address spaces into.
    public var rangeCount: Int { (v4Index?.rangeCount ?? 0) + (v6Index?.rangeCount ?? 0) }

    /// Internal position of the longest IPv4 prefix containing `address`, or nil.
    @inlinable
    func entryIndex(_ address: IPv4Address) -> Int? {
        guard let index = v4Index else { return nil }
        let e = index.entry(address.value)
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
        guard let index = v6Index else { return nil }
        let e = index.entry(address)
        return e == rangeIndexNoEntry ? nil : (v6Prefixes[Int(e)], v6Values[Int(e)])
    }

    @inlinable
    public func longestMatch(_ address: IPAddress) -> (prefix: IPPrefix, value: Value)? {
        switch address.unmapped {
        case .v4(let a):
            if let hit = longestMatch(a) { return (.v4(hit.prefix), hit.value) }
            // A v4 address may still fall in a short IPv6 prefix covering ::ffff:0:0/96.
            if let index = v6Index {
                let e = index.entry(IPv6Address(ipv4Mapped: a))
                if e != rangeIndexNoEntry { return (.v6(v6Prefixes[Int(e)]), v6Values[Int(e)]) }
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
        for i in v4Prefixes.indices.sorted(by: { v4Prefixes[$0] < v4Prefixes[$1] }) {
            out.append((.v4(v4Prefixes[i]), v4Values[i]))
        }
        for i in v6Prefixes.indices.sorted(by: { v6Prefixes[$0] < v6Prefixes[$1] }) {
            out.append((.v6(v6Prefixes[i]), v6Values[i]))
        }
        return out
    }
}
