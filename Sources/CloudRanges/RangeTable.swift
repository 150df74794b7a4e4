public import IPAddress

/// What a lookup answers: the most specific published range containing the address.
public struct Classification: Hashable, Sendable {
    public var provider: String
    public var service: String?
    public var region: String?
    /// The matched prefix (as published).
    public var prefix: IPPrefix

    public init(provider: String, service: String?, region: String?, prefix: IPPrefix) {
        self.provider = provider
        self.service = service
        self.region = region
        self.prefix = prefix
    }
}

/// Prefix counts and the share of the address space a provider's ranges cover.
public struct ProviderStatistics: Hashable, Sendable {
    public var provider: String
    /// Distinct prefixes in the table attributed to this provider.
    public var ipv4Prefixes: Int
    public var ipv6Prefixes: Int
    /// Addresses covered by the union of the provider's prefixes.
    public var ipv4Addresses: UInt64
    /// Fraction of the IPv4 space (2^32) covered.
    public var ipv4Share: Double
    /// Fraction of the IPv6 space (2^128) covered.
    public var ipv6Share: Double
}

/// An immutable classification table built from published ranges of several providers.
///
/// When the same prefix is published more than once (AWS lists a CIDR under `AMAZON` and again under
/// `EC2`; Azure under `AzureCloud` and a service tag), the entry naming a specific service wins over
/// a provider-wide one (`AMAZON`, `AzureCloud`, none), then the first one given. Different prefixes
/// nest freely: a lookup answers the most specific one.
public struct RangeTable: Sendable {
    /// Services that only say "somewhere at this provider".
    public static let providerWideServices: Set<String> = ["AMAZON", "AzureCloud"]

    let lookup: CompiledPrefixTable<Int32>
    let ranges: [CloudRange]

    public init(_ input: some Sequence<CloudRange>) {
        var chosen: [IPPrefix: Int] = [:]
        var ranges: [CloudRange] = []
        func specificity(_ r: CloudRange) -> Int {
            guard let s = r.service else { return 0 }
            return RangeTable.providerWideServices.contains(s) ? 1 : 2
        }
        for range in input {
            if let existing = chosen[range.prefix] {
                if specificity(range) > specificity(ranges[existing]) { ranges[existing] = range }
            } else {
                chosen[range.prefix] = ranges.count
                ranges.append(range)
            }
        }
        self.ranges = ranges
        lookup = CompiledPrefixTable(ranges.enumerated().map { (prefix: $1.prefix, value: Int32($0)) })
    }

    public static let empty = RangeTable([])

    /// Number of distinct prefixes.
    public var count: Int { ranges.count }
    public var isEmpty: Bool { ranges.isEmpty }

    /// The distinct ranges, in the order first given.
    public var allRanges: [CloudRange] { ranges }

    /// The most specific range containing `address`, or nil for an address no provider publishes.
    @inlinable
    public func classify(_ address: IPAddress) -> Classification? {
        guard let hit = lookupHit(address) else { return nil }
        return Classification(provider: hit.provider, service: hit.service, region: hit.region, prefix: hit.prefix)
    }

    @inlinable
    public func classify(_ address: IPv4Address) -> Classification? { classify(.v4(address)) }

    @usableFromInline
    func lookupHit(_ address: IPAddress) -> CloudRange? {
        guard let hit = lookup.longestMatch(address) else { return nil }
        return ranges[Int(hit.value)]
    }

    /// Per-provider prefix counts and covered shares, sorted by provider name.
    public func statistics() -> [ProviderStatistics] {
        var byProvider: [String: [IPPrefix]] = [:]
        for r in ranges { byProvider[r.provider, default: []].append(r.prefix) }
        return byProvider.keys.sorted().map { provider in
            let prefixes = byProvider[provider]!
            var v4: [IPv4Prefix] = [], v6: [IPv6Prefix] = []
            for p in prefixes {
                switch p {
                case .v4(let x): v4.append(x)
                case .v6(let x): v6.append(x)
                }
            }
            let v4Union = RangeTable.outermost(v4).reduce(UInt64(0)) { $0 + $1.size }
            let v6Union = RangeTable.outermost(v6).reduce(0.0) { $0 + Double(sign: .plus, exponent: 128 - Int($1.length), significand: 1) }
            return ProviderStatistics(
                provider: provider, ipv4Prefixes: v4.count, ipv6Prefixes: v6.count,
                ipv4Addresses: v4Union, ipv4Share: Double(v4Union) / 4_294_967_296.0,
                ipv6Share: v6Union / Double(sign: .plus, exponent: 128, significand: 1))
        }
    }

    /// The prefixes not contained in another one of the list, in address order.
    public static func outermost(_ prefixes: [IPv4Prefix]) -> [IPv4Prefix] {
        var out: [IPv4Prefix] = []
        for p in prefixes.sorted() {
            if let last = out.last, last.contains(p) { continue }
            out.append(p)
        }
        return out
    }

    public static func outermost(_ prefixes: [IPv6Prefix]) -> [IPv6Prefix] {
        var out: [IPv6Prefix] = []
        for p in prefixes.sorted() {
            if let last = out.last, last.contains(p) { continue }
            out.append(p)
        }
        return out
    }
}
