@_exported import IPAddress  // the public API speaks in IPAddress types

/// A two-letter country code as stored in the database (two ASCII bytes; zero means "none").
public struct CountryCode: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The two bytes, first byte in the high half (`"DE"` is `0x4445`).
    public let rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Any two ASCII characters; nil otherwise. No case folding and no validation of the letters.
    public init?(_ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 2, bytes.allSatisfy({ $0 > 0 && $0 < 0x80 }) else { return nil }
        rawValue = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
    }

    public static let none = CountryCode(rawValue: 0)

    public var isNone: Bool { rawValue == 0 }

    /// libloc's rule for a real country: two letters A–Z that do not start with `X`.
    public var isValidCountry: Bool {
        let a = UInt8(rawValue >> 8), b = UInt8(truncatingIfNeeded: rawValue)
        let upper = UInt8(ascii: "A")...UInt8(ascii: "Z")
        return upper.contains(a) && upper.contains(b) && a != UInt8(ascii: "X")
    }

    /// The code as text; empty for `none`. Bytes after a NUL are ignored, as the C library does.
    public var description: String {
        let a = UInt8(rawValue >> 8), b = UInt8(truncatingIfNeeded: rawValue)
        if a == 0 { return "" }
        if b == 0 { return String(decoding: [a], as: UTF8.self) }
        return String(decoding: [a, b], as: UTF8.self)
    }

    public static func < (lhs: CountryCode, rhs: CountryCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The per-network flags of the format (`enum loc_network_flags`).
public struct NetworkFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let anonymousProxy = NetworkFlags(rawValue: 1)
    public static let satelliteProvider = NetworkFlags(rawValue: 2)
    public static let anycast = NetworkFlags(rawValue: 4)
    public static let drop = NetworkFlags(rawValue: 8)

    /// The pseudo country code libloc uses for each flag (`A1`, `A2`, `A3`, `XD`).
    public static let specialCountryCodes: [(CountryCode, NetworkFlags)] = [
        (CountryCode("A1")!, .anonymousProxy),
        (CountryCode("A2")!, .satelliteProvider),
        (CountryCode("A3")!, .anycast),
        (CountryCode("XD")!, .drop),
    ]
}

/// The properties stored for one network: everything but its address and prefix length.
public struct NetworkProperties: Hashable, Sendable {
    public var countryCode: CountryCode
    public var asn: UInt32
    public var flags: NetworkFlags

    public init(countryCode: CountryCode = .none, asn: UInt32 = 0, flags: NetworkFlags = []) {
        self.countryCode = countryCode
        self.asn = asn
        self.flags = flags
    }

    /// Packs into one word (country in bits 48–63, flags 32–47, ASN 0–31).
    @inline(__always)
    var packed: UInt64 {
        UInt64(countryCode.rawValue) << 48 | UInt64(flags.rawValue) << 32 | UInt64(asn)
    }

    @inline(__always)
    init(packed: UInt64) {
        countryCode = CountryCode(rawValue: UInt16(truncatingIfNeeded: packed >> 48))
        flags = NetworkFlags(rawValue: UInt16(truncatingIfNeeded: packed >> 32))
        asn = UInt32(truncatingIfNeeded: packed)
    }
}

/// A network of the database with its properties: the answer to a lookup, or one enumerated entry.
public struct LocationNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The network. IPv4 networks (stored under `::ffff:0:0/96`) are reported as `.v4`.
    public var prefix: IPPrefix
    public var properties: NetworkProperties

    public init(prefix: IPPrefix, properties: NetworkProperties) {
        self.prefix = prefix
        self.properties = properties
    }

    public var countryCode: CountryCode { properties.countryCode }
    /// The autonomous system number; 0 means none.
    public var asn: UInt32 { properties.asn }
    public var flags: NetworkFlags { properties.flags }
    public var isIPv4: Bool { if case .v4 = prefix { true } else { false } }

    /// The network as libloc prints it (`inet_ntop` text plus `/length`).
    public var description: String { LocationFormatting.text(of: prefix) }
}

/// An autonomous system record.
public struct AutonomousSystem: Hashable, Sendable, CustomStringConvertible {
    public var number: UInt32
    public var name: String

    public init(number: UInt32, name: String) {
        self.number = number
        self.name = name
    }

    /// `AS15169 - GOOGLE`, as the reference prints it.
    public var description: String { "AS\(number) - \(name)" }
}

/// A country record.
public struct Country: Hashable, Sendable {
    public var code: CountryCode
    /// Two-letter continent code (`EU`, `AS`, …); `none` when unset.
    public var continentCode: CountryCode
    public var name: String

    public init(code: CountryCode, continentCode: CountryCode, name: String) {
        self.code = code
        self.continentCode = continentCode
        self.name = name
    }
}

/// Address family selector for enumerations.
public enum AddressFamily: Sendable, Hashable {
    case ipv4, ipv6
}
