import TextFormats
/// The statuses the tunnel answers with, each with a short text body.
public enum TunnelStatus: Int, Sendable, CaseIterable {
    case established = 200
    case badRequest = 400
    case forbidden = 403
    case methodNotAllowed = 405
    case proxyAuthenticationRequired = 407
    case requestTimeout = 408
    case badGateway = 502
    case serviceUnavailable = 503
    case gatewayTimeout = 504

    public var reasonPhrase: String {
        switch self {
        case .established: "Connection Established"
        case .badRequest: "Bad Request"
        case .forbidden: "Forbidden"
        case .methodNotAllowed: "Method Not Allowed"
        case .proxyAuthenticationRequired: "Proxy Authentication Required"
        case .requestTimeout: "Request Timeout"
        case .badGateway: "Bad Gateway"
        case .serviceUnavailable: "Service Unavailable"
        case .gatewayTimeout: "Gateway Timeout"
        }
    }

    /// The name used for this outcome in logs and metrics.
    public var resultName: String {
        switch self {
        case .established: "ok"
        case .badRequest: "bad_request"
        case .forbidden: "forbidden"
        case .methodNotAllowed: "method_not_allowed"
        case .proxyAuthenticationRequired: "auth_required"
        case .requestTimeout: "request_timeout"
        case .badGateway: "bad_gateway"
        case .serviceUnavailable: "over_capacity"
        case .gatewayTimeout: "gateway_timeout"
        }
    }

    /// The full response: status line, headers and a short text body; every non-200 answer closes the connection.
    public func response(detail: String, realm: String? = nil) -> String {
        if self == .established {
            return "HTTP/1.1 200 Connection Established\r\n\r\n"
        }
        let body = "\(rawValue) \(reasonPhrase): \(detail)\n"
        var head = "HTTP/1.1 \(rawValue) \(reasonPhrase)\r\n"
        head += "Content-Type: text/plain; charset=utf-8\r\n"
        head += "Content-Length: \(body.utf8.count)\r\n"
        head += "Connection: close\r\n"
        if self == .methodNotAllowed { head += "Allow: CONNECT\r\n" }
        if self == .proxyAuthenticationRequired {
            head += "Proxy-Authenticate: Basic realm=\"\(realm ?? "ipquest")\"\r\n"
        }
        return head + "\r\n" + body
    }
}

/// A target host and port, as named by the client (host may be a name or an address literal).
public struct TargetAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`; the port is required and must be 1–65535.
    public init?(authority: Substring) {
        var hostPart: Substring
        var portPart: Substring
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portPart = rest.dropFirst()
            guard hostPart.utf8.contains(UInt8(ascii: ":")) else { return nil }
        } else {
            guard let colon = authority.lastIndex(of: ":") else { return nil }
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
            if hostPart.utf8.contains(UInt8(ascii: ":")) { return nil }
        }
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func isHostByte(_ b: UInt8) -> Bool {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"):
                return true
            default:
                return false
            }
        }
        guard !hostPart.isEmpty, portPart.utf8.count <= 5, portPart.utf8.allSatisfy(isDigit),
              let port = Int(portPart), (1...65535).contains(port),
              hostPart.utf8.allSatisfy(isHostByte)
        else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A parsed proxy request head.
public struct ProxyRequestHead: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// `CONNECT host:port`.
        case connect
        /// An absolute-form request (`GET http://host/path`) to forward; `originFormHead` is the head to send the
        /// target: request line in origin form, proxy headers removed, `Connection: close`.
        case forward(originFormHead: String)
    }

    public var method: String
    /// The request-target token exactly as sent (what `allowed_targets` is matched against for CONNECT).
    public var requestTarget: String
    public var target: TargetAddress
    public var kind: Kind
    /// The `Proxy-Authorization` header value, if present.
    public var proxyAuthorization: String?
}

public enum HeadParseOutcome: Sendable, Equatable {
    /// More bytes are needed.
    case incomplete
    /// `headLength` bytes form the head; bytes after it are early data for the target.
    case complete(ProxyRequestHead, headLength: Int)
    case rejected(TunnelStatus, detail: String)
}

public enum ProxyRequestHeadParser {
    /// Heads of this size or larger are refused with 400, as in the anchor.
    public static let maximumHeadSize = 16 * 1024

    /// Examines the bytes received so far.
    public static func parse(_ bytes: some Collection<UInt8>, allowForwarding: Bool) -> HeadParseOutcome {
        let buffer = Array(bytes)
        guard let end = endOfHead(buffer) else {
            if buffer.count >= maximumHeadSize { return .rejected(.badRequest, detail: "request head too large") }
            // A request line that is already complete and malformed need not wait for the rest.
            if let lineEnd = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                if case .rejected(let status, let detail) = parseRequestLine(buffer[..<lineEnd], allowForwarding: allowForwarding) {
                    return .rejected(status, detail: detail)
                }
            }
            return .incomplete
        }
        guard end <= maximumHeadSize else { return .rejected(.badRequest, detail: "request head too large") }
        return parseHead(buffer[..<end], headLength: end, allowForwarding: allowForwarding)
    }

    /// Index just past the blank line ending the head (`\r\n\r\n`, or bare `\n\n`), looking at the line feeds
    /// from `start` on. A caller that appends bytes can pass two bytes before the first new one: no end was
    /// found before it, and a line feed there may start one only with what follows.
    static func endOfHead(_ buffer: [UInt8], from start: Int = 0) -> Int? {
        var i = max(start, 0)
        let n = buffer.count
        while i < n {
            if buffer[i] == UInt8(ascii: "\n") {
                if i + 1 < n, buffer[i + 1] == UInt8(ascii: "\n") { return i + 2 }
                if i + 2 < n, buffer[i + 1] == UInt8(ascii: "\r"), buffer[i + 2] == UInt8(ascii: "\n") { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    private enum RequestLine {
        case connect(method: String, target: String, address: TargetAddress)
        case forward(method: String, target: String, address: TargetAddress, path: String, version: String)
        case rejected(TunnelStatus, detail: String)
    }

    private static func parseRequestLine(_ raw: ArraySlice<UInt8>, allowForwarding: Bool) -> RequestLine {
        var line = raw
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard line.allSatisfy({ $0 >= 0x21 && $0 < 0x7F || $0 == 0x20 }) else {
            return .rejected(.badRequest, detail: "request line has control or non-ASCII bytes")
        }
        let text = String(decoding: line, as: UTF8.self)
        let tokens = text.split(separator: " ", omittingEmptySubsequences: false)
        guard tokens.count == 3, tokens.allSatisfy({ !$0.isEmpty }) else {
            return .rejected(.badRequest, detail: "request line must be 'METHOD target HTTP/1.1'")
        }
        let method = String(tokens[0])
        let target = String(tokens[1])
        let version = String(tokens[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            return .rejected(.badRequest, detail: "unsupported HTTP version")
        }
        guard method.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "-") }) else {
            return .rejected(.badRequest, detail: "malformed method")
        }
        if method == "CONNECT" {
            guard let address = TargetAddress(authority: tokens[1]) else {
                return .rejected(.badRequest, detail: "CONNECT target must be host:port")
            }
            return .connect(method: method, target: target, address: address)
        }
        guard allowForwarding else {
            return .rejected(.methodNotAllowed, detail: "only CONNECT is supported")
        }
        guard target.lowercased().hasPrefix("http://") else {
            return .rejected(.badRequest, detail: "forwarded requests need an absolute http:// target")
        }
        let rest = target.dropFirst("http://".count)
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        let address: TargetAddress?
        if authority.hasPrefix("[") ? authority.contains("]:") : authority.contains(":") {
            address = TargetAddress(authority: authority)
        } else {
            address = TargetAddress(authority: authority + ":80")
        }
        guard let address, !authority.contains("@") else {
            return .rejected(.badRequest, detail: "malformed absolute target")
        }
        return .forward(method: method, target: target, address: address, path: path, version: version)
    }

    private static func parseHead(_ head: ArraySlice<UInt8>, headLength: Int, allowForwarding: Bool) -> HeadParseOutcome {
        var lines: [ArraySlice<UInt8>] = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        // Drop the empty lines that end the head.
        while let last = lines.last, last.isEmpty || last == [UInt8(ascii: "\r")] { lines.removeLast() }
        guard let first = lines.first else { return .rejected(.badRequest, detail: "empty request") }
        let requestLine = parseRequestLine(first, allowForwarding: allowForwarding)
        if case .rejected(let status, let detail) = requestLine { return .rejected(status, detail: detail) }

        // Header lines are checked and matched on their bytes; a String is made only for what
        // is kept: the credentials, and the headers a forwarded request passes on.
        var forwarding = false
        if case .forward = requestLine { forwarding = true }
        var proxyAuthorization: String?
        var forwardedHeaders: [String] = []
        var sawHost = false
        for rawLine in lines.dropFirst() {
            var line = rawLine
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard line.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else {
                return .rejected(.badRequest, detail: "header has control bytes")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                return .rejected(.badRequest, detail: "malformed header line")
            }
            let name = line[..<colon]
            // ASCII, no whitespace (control bytes other than tab are already refused).
            guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .rejected(.badRequest, detail: "malformed header name")
            }
            if Self.nameIs(name, "proxy-authorization") {
                var value = line[(colon + 1)...]
                while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
                while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
                proxyAuthorization = String(decoding: value, as: UTF8.self)
            } else if Self.nameIs(name, "proxy-connection") || Self.nameIs(name, "connection") || Self.nameIs(name, "keep-alive") {
                continue
            } else {
                if Self.nameIs(name, "host") { sawHost = true }
                if forwarding { forwardedHeaders.append(String(decoding: line, as: UTF8.self)) }
            }
        }

        switch requestLine {
        case .connect(let method, let target, let address):
            return .complete(
                ProxyRequestHead(
                    method: method, requestTarget: target, target: address, kind: .connect,
                    proxyAuthorization: proxyAuthorization),
                headLength: headLength)
        case .forward(let method, let target, let address, let path, let version):
            var out = "\(method) \(path) \(version)\r\n"
            if !sawHost { out += "Host: \(address.port == 80 ? address.host : address.description)\r\n" }
            for header in forwardedHeaders { out += header + "\r\n" }
            out += "Connection: close\r\n\r\n"
            return .complete(
                ProxyRequestHead(
                    method: method, requestTarget: target, target: address, kind: .forward(originFormHead: out),
                    proxyAuthorization: proxyAuthorization),
                headLength: headLength)
        case .rejected(let status, let detail):
            return .rejected(status, detail: detail)
        }
    }
}

extension ProxyRequestHeadParser {
    /// Whether a header name is `lowercase` (given in lower case), ignoring ASCII case.
    fileprivate static func nameIs(_ name: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for (byte, want) in zip(name, expected) {
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            if folded != want { return false }
        }
        return true
    }
}


/// Checks `Proxy-Authorization: Basic …` against the configured users.
public enum BasicProxyCredentials {
    public static func isAuthorized(_ header: String?, users: [String: String]) -> Bool {
        guard let header else { return false }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Base64.decode(parts[1].trimmingSpacesAndTabs),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { return false }
        let user = String(decoding: decoded[..<colon], as: UTF8.self)
        let password = Array(decoded[(colon + 1)...])
        guard let expected = users[user] else { return false }
        return constantTimeEqual(Array(expected.utf8), password)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// Standard base64 (RFC 4648), with padding optional.
enum Base64 {
    static func decode(_ text: Substring) -> [UInt8]? {
        var out: [UInt8] = []
        var accumulator: UInt32 = 0
        var bits = 0
        var sawPadding = false
        for ch in text.utf8 {
            let value: UInt32
            switch ch {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(ch - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(ch - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(ch - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): sawPadding = true; continue
            default: return nil
            }
            if sawPadding { return nil }
            accumulator = (accumulator << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((accumulator >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }

    static func encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let triple = (b0 << 16) | (b1 << 8) | b2
            out.append(alphabet[Int((triple >> 18) & 63)])
            out.append(alphabet[Int((triple >> 12) & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int((triple >> 6) & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
