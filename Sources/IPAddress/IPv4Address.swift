/// An IPv4 address held as its 32-bit big-endian value (`1.2.3.4` is `0x01020304`).
public struct IPv4Address: Hashable, Comparable, Sendable {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Strict dotted-quad parsing: exactly four decimal parts of 1–3 digits, each ≤ 255,
    /// no leading zeros (so no octal ambiguity), no signs, no whitespace.
    public init?(_ text: some StringProtocol) {
        var text = String(text)
        guard let v = text.withUTF8({ IPv4Address.parse($0) }) else { return nil }
        value = v
    }

    /// Parses from raw bytes (for example a header value) without building a `String`.
    public init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard let v = IPv4Address.parse(bytes) else { return nil }
        value = v
    }

    @inline(__always)
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32? {
        var result: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var parts = 0
        var leadingZero = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits == 0 { leadingZero = byte == UInt8(ascii: "0") } else if leadingZero { return nil }
                digits += 1
                if digits > 3 { return nil }
                part = part * 10 + UInt32(byte &- UInt8(ascii: "0"))
            case UInt8(ascii: "."):
                guard digits > 0, part <= 255, parts < 3 else { return nil }
                result = result << 8 | part
                parts += 1
                part = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, part <= 255, parts == 3 else { return nil }
        return result << 8 | part
    }

    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16), UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value))
    }

    /// The /8 block number (the first octet).
    public var block: UInt8 { UInt8(value >> 24) }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }

    public static let any = IPv4Address(0)
    public static let loopback = IPv4Address(127, 0, 0, 1)
}

extension IPv4Address: CustomStringConvertible, LosslessStringConvertible {
    public var description: String {
        // Hand-rolled: this runs on every claim response and every /recent entry.
        var buffer: (UInt64, UInt64) = (0, 0)
        return withUnsafeMutableBytes(of: &buffer) { raw -> String in
            var i = 0
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = UInt8(truncatingIfNeeded: value >> UInt32(shift))
                if octet >= 100 { raw[i] = 48 + octet / 100; i += 1 }
                if octet >= 10 { raw[i] = 48 + (octet / 10) % 10; i += 1 }
                raw[i] = 48 + octet % 10; i += 1
                if shift > 0 { raw[i] = UInt8(ascii: "."); i += 1 }
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<i]), as: UTF8.self)
        }
    }
}

extension IPv4Address: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let address = IPv4Address(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an IPv4 address: \(text)")
        }
        self = address
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
