public import IPAddress

/// Where a claimed address sits on the Internet, looked up once when the claim is made and
/// stored with it: its country and autonomous system (from the location database) and, when it
/// belongs to a cloud provider's published ranges, that provider.
public struct ClaimOrigin: Hashable, Sendable {
    /// ISO 3166-1 alpha-2 code in upper case, or nil when unknown.
    public var country: String?
    /// Autonomous system number, or nil when unknown.
    public var asn: UInt32?
    /// The cloud provider whose published ranges hold the address ("aws", "gcp", …); nil for
    /// addresses outside every data-center range (residential, as far as we know).
    public var provider: String?

    public init(country: String? = nil, asn: UInt32? = nil, provider: String? = nil) {
        self.country = country.flatMap(Self.normalizedCountry)
        self.asn = asn == 0 ? nil : asn
        self.provider = provider.flatMap { $0.isEmpty ? nil : $0 }
    }

    public static let unknown = ClaimOrigin()

    public var isDataCenter: Bool { provider != nil }

    /// Two ASCII letters in upper case, or nil.
    public static func normalizedCountry(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == 2, bytes.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else { return nil }
        return text.uppercased()
    }

    /// The country packed in 16 bits (0 = unknown), as the board keeps it.
    var packedCountry: UInt16 {
        guard let c = country else { return 0 }
        let b = Array(c.utf8)
        return UInt16(b[0]) << 8 | UInt16(b[1])
    }

    static func unpackCountry(_ packed: UInt16) -> String? {
        guard packed != 0 else { return nil }
        return String(decoding: [UInt8(packed >> 8), UInt8(packed & 0xFF)], as: UTF8.self)
    }
}

/// Looks up the origin of a claimed address. The server's implementation reads the location
/// database and the cloud ranges; tests and tools may supply their own.
public protocol ClaimOriginLookup: Sendable {
    func origin(of address: IPv4Address) -> ClaimOrigin
}
