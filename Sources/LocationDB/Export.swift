import IPAddress

/// Output formats of `location export` and `list-networks-*` (IPFire's `location/export.py`).
public enum ExportFormat: String, CaseIterable, Sendable {
    case list
    case ipset
    case nftables
    case xtGeoIP = "xt_geoip"
}

/// One output set (a country, AS or flag for one family) being written in one format.
public struct ExportSet: Sendable {
    public let name: String
    public let family: AddressFamily?
    public let format: ExportFormat
    public private(set) var networkCount = 0
    private var lines: [UInt8] = []

    public init(name: String, family: AddressFamily?, format: ExportFormat) {
        self.name = name
        self.family = family
        self.format = format
    }

    /// `DEv4`, `AS3320v6`; `v?` when no family is set; xt_geoip uses the bare name.
    public var tag: String {
        if format == .xtGeoIP { return name }
        switch family {
        case .ipv4?: return name + "v4"
        case .ipv6?: return name + "v6"
        case nil: return name + "v?"
        }
    }

    public var fileName: String {
        switch format {
        case .list: return tag + ".networks"
        case .ipset: return tag + ".ipset"
        case .nftables: return tag + ".set"
        case .xtGeoIP: return tag + (family == .ipv6 ? ".iv6" : ".iv4")
        }
    }

    public var isBinary: Bool { format == .xtGeoIP }

    public mutating func write(_ network: LocationNetwork) {
        networkCount += 1
        switch format {
        case .list: lines += Array((network.description + "\n").utf8)
        case .ipset: lines += Array("add \(tag) \(network)\n".utf8)
        case .nftables: lines += Array("\t\(network),\n".utf8)
        case .xtGeoIP:
            // First and last address in network byte order: 4 bytes each for IPv4, 16 for IPv6.
            switch network.prefix {
            case .v4(let p):
                for v in [p.first.value, p.last.value] { for s in stride(from: 24, through: 0, by: -8) { lines.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
            case .v6(let p):
                lines += p.first.bytes
                lines += p.last.bytes
            }
        }
    }

    /// ipset's hash size: the next power of two ≥ count / 0.75, at least 64.
    var hashSize: Int {
        guard networkCount > 0 else { return 64 }
        var size = 1
        while Double(size) < Double(networkCount) / 0.75 { size <<= 1 }
        return max(size, 64)
    }

    /// The complete output. `knownSize` is false for a stream that cannot be rewound (the
    /// reference then keeps the provisional ipset header, hash size 64).
    public func output(knownSize: Bool = true) -> [UInt8] {
        switch format {
        case .list, .xtGeoIP: return lines
        case .ipset:
            let size = knownSize ? hashSize : 64
            var padded = String(size)
            if padded.count < 8 { padded = String(repeating: " ", count: 8 - padded.count) + padded }
            let header = "create \(tag) hash:net family inet\(family == .ipv6 ? "6" : "") hashsize \(padded) maxelem 1048576 -exist\nflush \(tag)\n"
            return Array(header.utf8) + lines
        case .nftables:
            return Array("define \(tag) = {\n".utf8) + lines + Array("}\n".utf8)
        }
    }
}

/// What `location export` exports: countries (including the flag pseudo-codes A1, A2, A3, XD)
/// and autonomous systems.
public enum ExportObject: Hashable, Sendable {
    case country(CountryCode)
    case autonomousSystem(UInt32)

    /// `DE`, `A3`, `AS3320`; nil for anything else (the reference warns and skips).
    public init?(_ text: String) {
        if text.hasPrefix("AS"), let n = UInt32(text.dropFirst(2)), text.dropFirst(2).allSatisfy(\.isASCII) {
            self = .autonomousSystem(n)
        } else if let code = CountryCode(text),
                  code.isValidCountry || NetworkFlags.specialCountryCodes.contains(where: { $0.0 == code }) {
            self = .country(code)
        } else {
            return nil
        }
    }

    var name: String {
        switch self {
        case .country(let c): return c.description
        case .autonomousSystem(let n): return "AS\(n)"
        }
    }
}

extension LocationDatabase {
    /// The sets `location export` writes, in its order: per family (IPv6 first unless given),
    /// one set per object. Networks are the flattened ones. A flag pseudo-code (`A3`) receives
    /// every network with that flag; unlike the reference 0.9.16 this also works when only
    /// pseudo-codes are requested (the reference then exports nothing).
    /// With no objects: A1, A2, A3, XD and every country of the database.
    public func export(objects requested: [ExportObject], families: [AddressFamily] = [.ipv6, .ipv4],
                       format: ExportFormat) -> [ExportSet] {
        var objects = requested
        if objects.isEmpty {
            objects = NetworkFlags.specialCountryCodes.map { .country($0.0) } + countries.map { .country($0.code) }
        }
        // Countries first, then ASes (the reference keeps them in one dict in that order).
        var ordered: [ExportObject] = []
        for o in objects where !ordered.contains(o) { if case .country = o { ordered.append(o) } }
        for o in objects where !ordered.contains(o) { if case .autonomousSystem = o { ordered.append(o) } }

        var filter = NetworkFilter()
        var flagSets: [(NetworkFlags, Int)] = []
        for (i, o) in ordered.enumerated() {
            switch o {
            case .country(let code):
                if let special = NetworkFlags.specialCountryCodes.first(where: { $0.0 == code }) {
                    filter.flags.insert(special.1)
                    flagSets.append((special.1, i))
                } else {
                    filter.countryCodes.insert(code)
                }
            case .autonomousSystem(let n): filter.asns.insert(n)
            }
        }
        let flattened = flattenedNetworks(matching: filter)
        var result: [ExportSet] = []
        for family in families {
            var sets = ordered.map { ExportSet(name: $0.name, family: family, format: format) }
            var countryIndex: [CountryCode: Int] = [:], asIndex: [UInt32: Int] = [:]
            for (i, o) in ordered.enumerated() {
                switch o {
                case .country(let c): countryIndex[c] = i
                case .autonomousSystem(let n): asIndex[n] = i
                }
            }
            for network in flattened where network.isIPv4 == (family == .ipv4) {
                if let i = countryIndex[network.countryCode], !NetworkFlags.specialCountryCodes.contains(where: { $0.0 == network.countryCode }) {
                    sets[i].write(network)
                }
                if let i = asIndex[network.asn] { sets[i].write(network) }
                for (flag, i) in flagSets where network.flags.contains(flag) { sets[i].write(network) }
            }
            result += sets
        }
        return result
    }
}
