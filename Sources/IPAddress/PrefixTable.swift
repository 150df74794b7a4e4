/// A longest-prefix-match table from IP prefixes to values, for both families.
///
/// IPv4-mapped IPv6 prefixes (inside `::ffff:0:0/96`) are stored as IPv4 so that a peer seen
/// as `::ffff:a.b.c.d` on a dual-stack socket matches the same entries as `a.b.c.d`.
///
/// Storage: one hash map per prefix length that occurs (the source of truth for `insert`,
/// `subscript(exact:)` and `entries`), plus a `CompiledPrefixTable` built from them for fast
/// lookups. `insert` drops the compiled table; `compile()`, `init(_:)` and `PrefixSet`'s
/// initializers build it. Without it, lookups probe the hash maps from the longest length down
/// (cost bounded by the number of distinct lengths, ≤ 33 / 129); with it, a lookup is one
/// directory read and at most a short binary search.
public struct PrefixTable<Value: Sendable>: Sendable {
    private var v4: [UInt8: [UInt32: Value]] = [:]
    private var v4Lengths: [UInt8] = [] // descending
    private var v6: [UInt8: [IPv6Address: Value]] = [:]
    private var v6Lengths: [UInt8] = [] // descending
    /// Reflects exactly the maps above when non-nil.
    private var compiledTable: CompiledPrefixTable<Value>?

    public init() {}

    /// Builds a table from entries (the last value wins for a repeated prefix) and compiles it.
    public init(_ entries: some Sequence<(prefix: IPPrefix, value: Value)>) {
        for (prefix, value) in entries { insert(prefix, value) }
        compile()
    }

    /// Builds the fast lookup structure for the current entries. Call after a batch of inserts;
    /// a later `insert` discards it again.
    public mutating func compile() {
        if compiledTable == nil { compiledTable = CompiledPrefixTable(entries) }
    }

    /// Whether lookups currently use the compiled structure.
    public var isCompiled: Bool { compiledTable != nil }

    /// The compiled, immutable form of this table (built now if not compiled yet).
    public func compiled() -> CompiledPrefixTable<Value> {
        compiledTable ?? CompiledPrefixTable(entries)
    }

    public var count: Int {
        v4.values.reduce(0) { $0 + $1.count } + v6.values.reduce(0) { $0 + $1.count }
    }

    public var isEmpty: Bool { v4.isEmpty && v6.isEmpty }

    /// Inserts or replaces the value of `prefix`.
    public mutating func insert(_ prefix: IPv4Prefix, _ value: Value) {
        compiledTable = nil
        if v4[prefix.length] == nil {
            v4Lengths.append(prefix.length)
            v4Lengths.sort(by: >)
        }
        v4[prefix.length, default: [:]][prefix.network.value] = value
    }

    public mutating func insert(_ prefix: IPv6Prefix, _ value: Value) {
        if let mapped = prefix.ipv4Mapped {
            insert(mapped, value)
            return
        }
        compiledTable = nil
        if v6[prefix.length] == nil {
            v6Lengths.append(prefix.length)
            v6Lengths.sort(by: >)
        }
        v6[prefix.length, default: [:]][prefix.network] = value
    }

    public mutating func insert(_ prefix: IPPrefix, _ value: Value) {
        switch prefix {
        case .v4(let p): insert(p, value)
        case .v6(let p): insert(p, value)
        }
    }

    /// The value stored for exactly this prefix.
    public subscript(exact prefix: IPv4Prefix) -> Value? {
        v4[prefix.length]?[prefix.network.value]
    }

    public func longestMatch(_ address: IPv4Address) -> (prefix: IPv4Prefix, value: Value)? {
        if let compiledTable { return compiledTable.longestMatch(address) }
        for length in v4Lengths {
            let key = address.value & IPv4Prefix.mask(length)
            if let value = v4[length]?[key] {
                return (IPv4Prefix(IPv4Address(key), length: length), value)
            }
        }
        return nil
    }

    public func longestMatch(_ address: IPv6Address) -> (prefix: IPv6Prefix, value: Value)? {
        if let compiledTable { return compiledTable.longestMatch(address) }
        if let v4address = address.ipv4Mapped, let hit = longestMatch(v4address) {
            return (IPv6Prefix(IPv6Address(ipv4Mapped: hit.prefix.network), length: hit.prefix.length + 96), hit.value)
        }
        for length in v6Lengths {
            let prefix = IPv6Prefix(address, length: length)
            if let value = v6[length]?[prefix.network] { return (prefix, value) }
        }
        return nil
    }

    public func longestMatch(_ address: IPAddress) -> (prefix: IPPrefix, value: Value)? {
        if let compiledTable { return compiledTable.longestMatch(address) }
        switch address.unmapped {
        case .v4(let a):
            if let hit = longestMatch(a) { return (.v4(hit.prefix), hit.value) }
            // A v4 address may still fall in a short IPv6 prefix covering ::ffff:0:0/96.
            if let hit = longestMatch(IPv6Address(ipv4Mapped: a)) { return (.v6(hit.prefix), hit.value) }
            return nil
        case .v6(let a):
            guard let hit = longestMatch(a) else { return nil }
            return (.v6(hit.prefix), hit.value)
        }
    }

    /// All entries, IPv4 first, each family in address order.
    public var entries: [(prefix: IPPrefix, value: Value)] {
        var out: [(IPPrefix, Value)] = []
        for (length, map) in v4 {
            for (key, value) in map { out.append((.v4(IPv4Prefix(IPv4Address(key), length: length)), value)) }
        }
        for (length, map) in v6 {
            for (key, value) in map { out.append((.v6(IPv6Prefix(key, length: length)), value)) }
        }
        return out.sorted { a, b in
            switch (a.0, b.0) {
            case (.v4(let x), .v4(let y)): return x < y
            case (.v6(let x), .v6(let y)): return x < y
            case (.v4, .v6): return true
            case (.v6, .v4): return false
            }
        }
    }
}

/// A set of prefixes answering "is this address inside any of them?".
public struct PrefixSet: Sendable {
    private var table = PrefixTable<Bool>()

    public init() {}

    public init(_ prefixes: some Sequence<IPPrefix>) {
        for p in prefixes { table.insert(p, true) }
        table.compile()
    }

    /// Parses each text as a prefix or bare address; throws on the first bad entry.
    public init(parsing texts: some Sequence<String>) throws(PrefixParseError) {
        for t in texts { table.insert(try IPPrefix(parsing: t), true) }
        table.compile()
    }

    /// Adds a prefix. Lookups fall back to the slower hash probing until `compile()` is called.
    public mutating func insert(_ prefix: IPPrefix) { table.insert(prefix, true) }

    /// Builds the fast lookup structure after a batch of `insert`s.
    public mutating func compile() { table.compile() }

    public func contains(_ address: IPAddress) -> Bool { table.longestMatch(address) != nil }
    public func contains(_ address: IPv4Address) -> Bool { table.longestMatch(address) != nil }

    public var isEmpty: Bool { table.isEmpty }
    public var count: Int { table.count }
    public var prefixes: [IPPrefix] { table.entries.map(\.prefix) }

    /// Loopback, RFC 1918, link-local, CGNAT and unique-local ranges.
    public static let privateAndLoopback: PrefixSet = {
        try! PrefixSet(parsing: [
            "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
            "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10",
        ])
    }()
}
