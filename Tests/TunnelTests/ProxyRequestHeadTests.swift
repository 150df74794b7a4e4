import Testing
@testable import Tunnel

/// The head parser checks and matches header lines on bytes. These tests hold it to the rules
/// as first written on Strings (kept below as the reference), on random heads built from the
/// pieces that matter: names in any case, odd separators and spacing, control and non-ASCII
/// bytes, and both request kinds.
@Suite struct ProxyRequestHeadTests {
    static let requestLines = ["CONNECT example.com:443 HTTP/1.1", "GET http://example.com/x?y HTTP/1.1", "CONNECT [::1]:8443 HTTP/1.0"]
    static let names = ["Host", "HOST", "Proxy-Authorization", "proxy-AUTHORIZATION", "Connection", "KEEP-alive", "Proxy-Connection",
                        "X-A", "Bad Name", "Ü", "", "X\u{1}", "\tX", "Hostx"]
    static let separators = [":", ": ", ":\t", " :", "::"]
    static let values = ["Basic dTpw", " v ", "\tx\t", "a:b", "é", "\u{7F}", "", "close"]

    @Test func agreesWithTheStringRulesOnRandomHeads() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let requestLine = Self.requestLines.randomElement(using: &generator)!
            var headerLines: [String] = []
            for _ in 0..<Int.random(in: 0...6, using: &generator) {
                headerLines.append(Self.names.randomElement(using: &generator)! + Self.separators.randomElement(using: &generator)!
                                   + Self.values.randomElement(using: &generator)!)
            }
            let ending = Bool.random(using: &generator) ? "\r\n" : "\n"
            let text = ([requestLine] + headerLines).joined(separator: ending) + ending + ending
            let outcome = ProxyRequestHeadParser.parse(Array(text.utf8), allowForwarding: true)
            switch Self.reference(headerLines) {
            case .rejected(let detail):
                #expect(outcome == .rejected(.badRequest, detail: detail), "\(text.debugDescription)")
            case .accepted(let authorization, let forwarded, let sawHost):
                guard case .complete(let head, let length) = outcome else {
                    Issue.record("\(text.debugDescription) gave \(outcome)")
                    continue
                }
                #expect(length == text.utf8.count)
                #expect(head.proxyAuthorization == authorization, "\(text.debugDescription)")
                if case .forward(let origin) = head.kind {
                    var expected = "GET /x?y HTTP/1.1\r\n"
                    if !sawHost { expected += "Host: example.com\r\n" }
                    for header in forwarded { expected += header + "\r\n" }
                    expected += "Connection: close\r\n\r\n"
                    #expect(origin == expected, "\(text.debugDescription)")
                }
            }
        }
    }

    enum Reference: Equatable {
        case rejected(String)
        case accepted(authorization: String?, forwarded: [String], sawHost: Bool)
    }

    /// The header rules written on Strings (the parser before it moved to bytes).
    static func reference(_ lines: [String]) -> Reference {
        var authorization: String?
        var forwarded: [String] = []
        var sawHost = false
        for line in lines {
            guard line.utf8.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else { return .rejected("header has control bytes") }
            guard let colon = line.firstIndex(of: ":"), colon > line.startIndex else { return .rejected("malformed header line") }
            let name = line[..<colon]
            guard name.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else { return .rejected("malformed header name") }
            var value = line[line.index(after: colon)...]
            while let f = value.first, f == " " || f == "\t" { value = value.dropFirst() }
            while let l = value.last, l == " " || l == "\t" { value = value.dropLast() }
            switch name.lowercased() {
            case "proxy-authorization": authorization = String(value)
            case "proxy-connection", "connection", "keep-alive": break
            case "host":
                sawHost = true
                forwarded.append(line)
            default: forwarded.append(line)
            }
        }
        return .accepted(authorization: authorization, forwarded: forwarded, sawHost: sawHost)
    }

    @Test func authorityCharactersAreCheckedOnBytes() {
        #expect(TargetAddress(authority: "example.com:443").map { "\($0)" } == "example.com:443")
        #expect(TargetAddress(authority: "[fe80::1%25eth0]:22").map { "\($0)" } == "[fe80::1%25eth0]:22")
        #expect(TargetAddress(authority: "ex_ample-1.com:65535")?.port == 65535)
        for bad in ["exämple.com:443", "a b:1", "a:0", "a:65536", "a:+80", "a:٣", "a:123456", ":80", "a:", "[::1:80", "::1:80"] {
            #expect(TargetAddress(authority: Substring(bad)) == nil, "\(bad)")
        }
    }
}
