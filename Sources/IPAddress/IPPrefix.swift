/// Why a prefix (CIDR) text was refused.
public enum PrefixParseError: Error, Equatable, CustomStringConvertible, Sendable {
    case badAddress(String)
    case badLength(String)
    case hostBitsSet(String, canonical: String)

    public var description: String {
        switch self {
        case .badAddress(let t): return "'\(t)' is not an IP address or CIDR prefix"
        case .badLength(let t): return "'\(t)' has an invalid prefix length"
        case .hostBitsSet(let t, let c): return "'\(t)' has host bits set (did you mean \(c)?)"
        }
    }
}

/// Splits "addr/len" strictly: the length is 1–3 decimal digits without leading zeros.
private func splitPrefix(_ text: Substring) -> (Substring, Int?)? {
    guard let slash = text.firstIndex(of: "/") else { return (text, nil) }
    let lengthText = text[text.index(after: slash)...]
    guard !lengthText.isEmpty, lengthText.count <= 3, lengthText.allSatisfy(\.isASCII),
          lengthText.allSatisfy(\.isNumber),
          !(lengthText.count > 1 && lengthText.first == "0"),
          let length = Int(lengthText)
    else { return nil }
    return (text[..<slash], length)
}

/// An IPv4 network: an address with its host bits cleared, and a length 0–32.
public struct IPv4Prefix: Hashable, Sendable, Comparable {
    public let network: IPv4Address
    public let length: UInt8

    /// Builds the prefix, clearing any host bits of `address`.
    public init(_ address: IPv4Address, length: UInt8) {
        precondition(length <= 32, "IPv4 prefix length must be 0...32")
        self.length = length
        network = IPv4Address(address.value & IPv4Prefix.mask(length))
    }

    @inline(__always)
    public static func mask(_ length: UInt8) -> UInt32 {
        length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(length))
    }

    public var netmask: IPv4Address { IPv4Address(IPv4Prefix.mask(length)) }
    public var first: IPv4Address { network }
    public var last: IPv4Address { IPv4Address(network.value | ~IPv4Prefix.mask(length)) }
    /// Number of addresses (2^(32-length)).
    public var size: UInt64 { 1 << (32 - UInt64(length)) }

    @inline(__always)
    public func contains(_ address: IPv4Address) -> Bool {
        address.value & IPv4Prefix.mask(length) == network.value
    }

    public func contains(_ other: IPv4Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    /// Parses `a.b.c.d/n`, or a bare address as /32. With `strict`, set host bits are an error.
    public init(parsing text: some StringProtocol, strict: Bool = true) throws(PrefixParseError) {
        let raw = String(text)
        guard let (addressText, len) = splitPrefix(Substring(raw)) else { throw .badLength(raw) }
        guard let address = IPv4Address(addressText) else { throw .badAddress(raw) }
        let length = len ?? 32
        guard length <= 32 else { throw .badLength(raw) }
        self.init(address, length: UInt8(length))
        if strict, network != address { throw .hostBitsSet(raw, canonical: description) }
    }

    public init?(_ text: some StringProtocol) {
        guard let p = try? IPv4Prefix(parsing: text) else { return nil }
        self = p
    }

    public static func < (lhs: IPv4Prefix, rhs: IPv4Prefix) -> Bool {
        (lhs.network, lhs.length) < (rhs.network, rhs.length)
    }
}

extension IPv4Prefix: CustomStringConvertible {
    public var description: String { "\(network)/\(length)" }
}

/// An IPv6 network: an address with its host bits cleared, and a length 0–128.
public struct IPv6Prefix: Hashable, Sendable, Comparable {
    public let network: IPv6Address
    public let length: UInt8

    public init(_ address: IPv6Address, length: UInt8) {
        precondition(length <= 128, "IPv6 prefix length must be 0...128")
        self.length = length
        let (mh, ml) = IPv6Prefix.mask(length)
        network = IPv6Address(high: address.high & mh, low: address.low & ml)
    }

    @inline(__always)
    public static func mask(_ length: UInt8) -> (UInt64, UInt64) {
        switch length {
        case 0: return (0, 0)
        case 1...64: return (~UInt64(0) << (64 - UInt64(length)), 0)
        default: return (~UInt64(0), length >= 128 ? ~UInt64(0) : ~UInt64(0) << (128 - UInt64(length)))
        }
    }

    public var first: IPv6Address { network }
    public var last: IPv6Address {
        let (mh, ml) = IPv6Prefix.mask(length)
        return IPv6Address(high: network.high | ~mh, low: network.low | ~ml)
    }

    @inline(__always)
    public func contains(_ address: IPv6Address) -> Bool {
        let (mh, ml) = IPv6Prefix.mask(length)
        return address.high & mh == network.high && address.low & ml == network.low
    }

    public func contains(_ other: IPv6Prefix) -> Bool {
        other.length >= length && contains(other.network)
    }

    /// The IPv4 prefix this is, when it lies inside `::ffff:0:0/96`.
    public var ipv4Mapped: IPv4Prefix? {
        guard length >= 96, let v4 = network.ipv4Mapped else { return nil }
        return IPv4Prefix(v4, length: length - 96)
    }

    public init(parsing text: some StringProtocol, strict: Bool = true) throws(PrefixParseError) {
        let raw = String(text)
        guard let (addressText, len) = splitPrefix(Substring(raw)) else { throw .badLength(raw) }
        guard let address = IPv6Address(addressText) else { throw .badAddress(raw) }
        let length = len ?? 128
        guard length <= 128 else { throw .badLength(raw) }
        self.init(address, length: UInt8(length))
        if strict, network != address { throw .hostBitsSet(raw, canonical: description) }
    }

    public init?(_ text: some StringProtocol) {
        guard let p = try? IPv6Prefix(parsing: text) else { return nil }
        self = p
    }

    public static func < (lhs: IPv6Prefix, rhs: IPv6Prefix) -> Bool {
        (lhs.network, lhs.length) < (rhs.network, rhs.length)
    }
}

extension IPv6Prefix: CustomStringConvertible {
    public var description: String { "\(network)/\(length)" }
}

/// A prefix of either family.
public enum IPPrefix: Hashable, Sendable {
    case v4(IPv4Prefix)
    case v6(IPv6Prefix)

    public init(parsing text: some StringProtocol, strict: Bool = true) throws(PrefixParseError) {
        let raw = String(text)
        if raw.contains(":") {
            self = .v6(try IPv6Prefix(parsing: raw, strict: strict))
        } else {
            self = .v4(try IPv4Prefix(parsing: raw, strict: strict))
        }
    }

    public init?(_ text: some StringProtocol) {
        guard let p = try? IPPrefix(parsing: text) else { return nil }
        self = p
    }

    public func contains(_ address: IPAddress) -> Bool {
        switch (self, address.unmapped) {
        case (.v4(let p), .v4(let a)): return p.contains(a)
        case (.v6(let p), .v6(let a)): return p.contains(a)
        case (.v6(let p), .v4(let a)): return p.contains(IPv6Address(ipv4Mapped: a))
        case (.v4, .v6): return false
        }
    }

    public var length: UInt8 {
        switch self {
        case .v4(let p): return p.length
        case .v6(let p): return p.length
        }
    }
}

extension IPPrefix: CustomStringConvertible {
    public var description: String {
        switch self {
        case .v4(let p): return p.description
        case .v6(let p): return p.description
        }
    }
}
