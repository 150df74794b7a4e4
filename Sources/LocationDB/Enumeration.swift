import IPAddress

/// Which networks an enumeration returns (the reference enumerator's filters): the family must
/// match when set; then a network matches if its country is listed, OR its ASN is listed, OR it
/// has any of `flags`. With no country, ASN or flag given every network (of the family) matches.
public struct NetworkFilter: Sendable, Hashable {
    public var family: AddressFamily?
    public var countryCodes: Set<CountryCode>
    public var asns: Set<UInt32>
    public var flags: NetworkFlags

    public init(family: AddressFamily? = nil, countryCodes: Set<CountryCode> = [], asns: Set<UInt32> = [], flags: NetworkFlags = []) {
        self.family = family
        self.countryCodes = countryCodes
        self.asns = asns
        self.flags = flags
    }

    public static let all = NetworkFilter()

    public func matches(_ network: LocationNetwork) -> Bool {
        if let family {
            guard network.isIPv4 == (family == .ipv4) else { return false }
        }
        if countryCodes.isEmpty, asns.isEmpty, flags.isEmpty { return true }
        if countryCodes.contains(network.countryCode) { return true }
        if asns.contains(network.asn) { return true }
        if !flags.isEmpty, !network.flags.intersection(flags).isEmpty { return true }
        return false
    }
}

/// The networks of a database in the reference order (ascending first address, supernet before
/// subnets; IPv4 comes out where `::ffff:0:0/96` sorts).
public struct NetworkSequence: Sequence, Sendable {
    let database: LocationDatabase
    let filter: NetworkFilter

    public struct Iterator: IteratorProtocol {
        let database: LocationDatabase
        let filter: NetworkFilter
        var cursor: TreeCursor

        public mutating func next() -> LocationNetwork? {
            // The tree was validated at open, so the cursor cannot fail here.
            while let raw = (try? cursor.next()) ?? nil {
                let network = database.network(raw)
                if filter.matches(network) { return network }
            }
            return nil
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(database: database, filter: filter, cursor: database.treeCursor())
    }
}

extension LocationDatabase {
    func treeCursor() -> TreeCursor {
        TreeCursor(storage: storage, nodeOffset: nodeOffset, nodeCount: treeNodeCount, networkCount: networkCount, validating: false)
    }

    func network(_ raw: TreeNetwork) -> LocationNetwork {
        LocationNetwork(prefix: raw.address.prefix(depth: raw.depth),
                        properties: NetworkProperties(packed: index.recordProperties(raw.record)))
    }

    /// Networks as stored (overlapping: a supernet and its subnets all appear), filtered.
    public func networks(matching filter: NetworkFilter = .all) -> NetworkSequence {
        NetworkSequence(database: self, filter: filter)
    }

    /// Non-overlapping networks: every address is attributed to its deepest network (what a
    /// lookup returns), each network's share is cut into the fewest aligned blocks, and blocks
    /// whose network matches `filter` are returned in ascending order (the reference's
    /// `FLATTEN` mode, used by `export`).
    public func flattenedNetworks(matching filter: NetworkFilter = .all) -> [LocationNetwork] {
        var result: [LocationNetwork] = []
        forEachFlattenedNetwork { if filter.matches($0) { result.append($0) } }
        return result
    }

    /// Calls `body` with every flattened network (see `flattenedNetworks`), unfiltered, in order.
    public func forEachFlattenedNetwork(_ body: (LocationNetwork) -> Void) {
        let none = UInt64.max
        withoutActuallyEscaping(body) { body in
            struct Sink: IntervalSink {
                let index: LookupIndex
                let body: (LocationNetwork) -> Void
                mutating func interval(first: Address128, last: Address128, value: UInt64, depth: UInt8) {
                    guard value != UInt64.max else { return }
                    let properties = NetworkProperties(packed: index.recordProperties(UInt32(truncatingIfNeeded: value)))
                    summarizeRange(first, last) { start, length in
                        body(LocationNetwork(prefix: start.prefix(depth: length), properties: properties))
                    }
                }
            }
            var sweep = IntervalSweep(first: .zero, last: .max, baseValue: none, baseDepth: 0, sink: Sink(index: index, body: body))
            var cursor = treeCursor()
            while let raw = (try? cursor.next()) ?? nil {
                // Value: the record, tagged with the depth so that two networks never merge.
                let value = UInt64(raw.record) | UInt64(raw.depth) << 32
                sweep.add(first: raw.address, last: raw.address.lastAddress(raw.depth), value: value, depth: 0)
            }
            sweep.finish()
        }
    }

    /// Address space not covered by any network that has a country code (the reference's
    /// `list-bogons`): gaps between such networks, per family, in ascending order.
    /// As in libloc, the IPv6 gaps start at `::` and are only closed at the top of the space
    /// when the database has an IPv6 network with a country.
    public func bogons(family: AddressFamily? = nil) -> [IPPrefix] {
        var result: [IPPrefix] = []
        var gap4Start = Address128.ipv4First
        var gap6Start = Address128.zero
        var exhausted4 = false, exhausted6 = false
        func emitGap(_ first: Address128, _ last: Address128) {
            summarizeRange(first, last) { start, length in result.append(start.prefix(depth: length)) }
        }
        var cursor = treeCursor()
        while let raw = (try? cursor.next()) ?? nil {
            let properties = NetworkProperties(packed: index.recordProperties(raw.record))
            if properties.countryCode.isNone { continue }
            let isIPv4 = raw.depth >= 96 && raw.address.isIPv4Mapped
            let first = raw.address, last = raw.address.lastAddress(raw.depth)
            if isIPv4 {
                if exhausted4 || gap4Start > last { continue }
                if gap4Start < first { emitGap(gap4Start, first.predecessor) }
                if last == .max { exhausted4 = true } else { gap4Start = last.successor }
            } else {
                if exhausted6 || gap6Start > last { continue }
                if gap6Start < first { emitGap(gap6Start, first.predecessor) }
                if last == .max { exhausted6 = true } else { gap6Start = last.successor }
            }
        }
        // The closing gaps of both families go through libloc's sorted stack together, so
        // they come out in address order (IPv4, at ::ffff:0:0/96, before the IPv6 tail).
        var closing: [(Address128, Int)] = []
        if gap6Start != .zero, !exhausted6 { summarizeRange(gap6Start, .max) { closing.append(($0, $1)) } }
        if !exhausted4, gap4Start <= .ipv4Last { summarizeRange(gap4Start, .ipv4Last) { closing.append(($0, $1)) } }
        closing.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        result += closing.map { $0.0.prefix(depth: $0.1) }
        let filtered: [IPPrefix]
        switch family {
        case .none: filtered = result
        case .ipv4?: filtered = result.filter { if case .v4 = $0 { true } else { false } }
        case .ipv6?: filtered = result.filter { if case .v6 = $0 { true } else { false } }
        }
        return filtered
    }
}
