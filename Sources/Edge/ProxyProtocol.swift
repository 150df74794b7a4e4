public import IPAddress

/// The addresses a PROXY protocol header (HAProxy, versions 1 and 2) announces.
public struct ProxyHeader: Equatable, Sendable {
    public enum Command: Equatable, Sendable {
        /// The proxy relays a client connection; `source` is the client.
        case proxy
        /// The proxy speaks for itself (health checks, v2 LOCAL, v1 UNKNOWN); use the peer address.
        case local
    }

    public var command: Command
    public var source: IPAddress?
    public var destination: IPAddress?
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var version: Int

    public init(command: Command, source: IPAddress?, destination: IPAddress?, sourcePort: UInt16?, destinationPort: UInt16?, version: Int) {
        self.command = command
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.version = version
    }
}

/// A bounds-checked parser for PROXY protocol headers. It never reads past the buffer it is
/// given and refuses anything that does not follow the specification exactly.
public enum ProxyProtocolParser {
    public enum Result: Equatable, Sendable {
        /// The bytes so far are a valid prefix of a header; read more.
        case needMoreData
        /// The bytes do not start with a PROXY header at all.
        case notProxy
        /// A complete header that spans `length` bytes.
        case header(ProxyHeader, length: Int)
        /// A header that violates the specification.
        case invalid(String)
    }

    /// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    /// Longest v1 line including CRLF (specification: 107 bytes).
    static let v1MaxLength = 107
    /// Largest v2 header we accept (16-byte preamble + address block + TLVs).
    public static let v2MaxLength = 16 + 1024

    public static func parse(_ bytes: some Collection<UInt8>) -> Result {
        let b = Array(bytes.prefix(v2MaxLength))
        if b.isEmpty { return .needMoreData }
        if startsWithPrefix(b, of: v2Signature) {
            return b.count < v2Signature.count ? .needMoreData : parseV2(b)
        }
        if startsWithPrefix(b, of: v1Prefix) {
            return b.count < v1Prefix.count ? .needMoreData : parseV1(b)
        }
        return .notProxy
    }

    /// True when `bytes` and `prefix` agree on their common length.
    private static func startsWithPrefix(_ bytes: [UInt8], of prefix: [UInt8]) -> Bool {
        let n = min(bytes.count, prefix.count)
        return bytes[0..<n].elementsEqual(prefix[0..<n])
    }

    private static func parseV1(_ b: [UInt8]) -> Result {
        // Find CRLF within the first 107 bytes.
        var end: Int?
        var i = 0
        while i < min(b.count, v1MaxLength) {
            if b[i] == 0x0A { return .invalid("v1: LF without CR") }
            if b[i] == 0x0D {
                guard i + 1 < b.count else { return .needMoreData }
                guard b[i + 1] == 0x0A else { return .invalid("v1: CR without LF") }
                end = i
                break
            }
            i += 1
        }
        guard let end else {
            return b.count >= v1MaxLength ? .invalid("v1: header longer than 107 bytes") : .needMoreData
        }
        let line = b[0..<end]
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return .invalid("v1: non-printable byte") }
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 2, fields[0] == "PROXY" else { return .invalid("v1: malformed") }
        switch fields[1] {
        case "UNKNOWN":
            return .header(ProxyHeader(command: .local, source: nil, destination: nil, sourcePort: nil, destinationPort: nil, version: 1), length: end + 2)
        case "TCP4", "TCP6":
            guard fields.count == 6 else { return .invalid("v1: expected 6 fields") }
            let isV4 = fields[1] == "TCP4"
            let src: IPAddress?
            let dst: IPAddress?
            if isV4 {
                src = IPv4Address(fields[2]).map(IPAddress.v4)
                dst = IPv4Address(fields[3]).map(IPAddress.v4)
            } else {
                src = IPv6Address(fields[2]).map(IPAddress.v6)
                dst = IPv6Address(fields[3]).map(IPAddress.v6)
            }
            guard let src, let dst else { return .invalid("v1: bad address") }
            guard let sport = parsePort(fields[4]), let dport = parsePort(fields[5]) else { return .invalid("v1: bad port") }
            return .header(ProxyHeader(command: .proxy, source: src, destination: dst, sourcePort: sport, destinationPort: dport, version: 1), length: end + 2)
        default:
            return .invalid("v1: unknown protocol \(fields[1].prefix(8))")
        }
    }

    /// Decimal 0–65535 without leading zeros.
    private static func parsePort(_ text: String) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if text.count > 1, text.hasPrefix("0") { return nil }
        return UInt16(text)
    }

    private static func parseV2(_ b: [UInt8]) -> Result {
        guard b.count >= 16 else { return .needMoreData }
        let versionCommand = b[12]
        guard versionCommand >> 4 == 2 else { return .invalid("v2: version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("v2: command \(command)") }
        let family = b[13]
        let length = Int(b[14]) << 8 | Int(b[15])
        guard 16 + length <= v2MaxLength else { return .invalid("v2: header too long (\(length) bytes)") }
        guard b.count >= 16 + length else { return .needMoreData }
        let total = 16 + length
        if command == 0 {
            return .header(ProxyHeader(command: .local, source: nil, destination: nil, sourcePort: nil, destinationPort: nil, version: 2), length: total)
        }
        let body = b[16..<total]
        func port(_ offset: Int) -> UInt16 { UInt16(body[body.startIndex + offset]) << 8 | UInt16(body[body.startIndex + offset + 1]) }
        switch family {
        case 0x11, 0x12: // TCP over IPv4, UDP over IPv4
            guard length >= 12 else { return .invalid("v2: IPv4 address block too short") }
            let s = body.startIndex
            let src = IPv4Address(body[s], body[s + 1], body[s + 2], body[s + 3])
            let dst = IPv4Address(body[s + 4], body[s + 5], body[s + 6], body[s + 7])
            return .header(ProxyHeader(command: .proxy, source: .v4(src), destination: .v4(dst), sourcePort: port(8), destinationPort: port(10), version: 2), length: total)
        case 0x21, 0x22: // TCP/UDP over IPv6
            guard length >= 36 else { return .invalid("v2: IPv6 address block too short") }
            let s = body.startIndex
            guard let src = IPv6Address(bytes: body[s..<s + 16]), let dst = IPv6Address(bytes: body[s + 16..<s + 32]) else {
                return .invalid("v2: bad IPv6 address")
            }
            return .header(ProxyHeader(command: .proxy, source: .v6(src), destination: .v6(dst), sourcePort: port(32), destinationPort: port(34), version: 2), length: total)
        case 0x00: // UNSPEC: the receiver must ignore the addresses.
            return .header(ProxyHeader(command: .local, source: nil, destination: nil, sourcePort: nil, destinationPort: nil, version: 2), length: total)
        default:
            return .invalid("v2: unsupported address family 0x\(String(family, radix: 16))")
        }
    }

    /// Encodes a v1 line (used by tests and by clients that front a server).
    public static func encodeV1(source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16) -> [UInt8] {
        let proto = source.isIPv4 ? "TCP4" : "TCP6"
        return Array("PROXY \(proto) \(source) \(destination) \(sourcePort) \(destinationPort)\r\n".utf8)
    }

    /// Encodes a v2 PROXY header for TCP over IPv4.
    public static func encodeV2(source: IPv4Address, destination: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, tlv: [UInt8] = []) -> [UInt8] {
        var out = v2Signature
        out.append(0x21)
        out.append(0x11)
        let length = 12 + tlv.count
        out.append(UInt8(length >> 8))
        out.append(UInt8(length & 0xFF))
        for v in [source.value, destination.value] {
            out += [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        out += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF)]
        out += tlv
        return out
    }
}
