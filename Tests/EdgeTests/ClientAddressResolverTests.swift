import Foundation
import HTTPTypes
import IPAddress
import IPQuestTestSupport
import Testing
@testable import Edge

/// Who a request comes from behind trusted proxies: only the configured source is read, and a
/// chain that cannot be read to an untrusted hop is never attributed to the proxy.
@Suite struct ClientAddressResolverTests {
    static let trusted = TrustedProxies(["10.0.0.0/8", "127.0.0.1/32"].map { try! IPPrefix(parsing: $0) })

    static func fields(_ pairs: [(String, String)]) -> HTTPFields {
        var f = HTTPFields()
        for (name, value) in pairs { f.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return f
    }

    func resolve(_ source: RealIPSource, peer: String = "10.0.0.5", _ pairs: [(String, String)]) -> ClientAddressResolver.Resolution {
        ClientAddressResolver(trustedProxies: Self.trusted, source: source).resolve(peer: IPAddress(peer)!, fields: Self.fields(pairs))
    }

    func isUnattributed(_ r: ClientAddressResolver.Resolution) -> Bool {
        if case .unattributed = r { return true }
        return false
    }

    @Test func untrustedPeerIgnoresEveryHeader() {
        let spoofed = [("Forwarded", "for=1.1.1.1"), ("X-Forwarded-For", "2.2.2.2"), ("X-Real-IP", "3.3.3.3"), ("CF-Connecting-IP", "4.4.4.4")]
        for source in RealIPSource.allCases {
            #expect(resolve(source, peer: "198.51.100.1", spoofed) == .client(IPAddress("198.51.100.1")!))
        }
    }

    /// Issue 20, item 1: behind a proxy that appends X-Forwarded-For, a client's own
    /// `Forwarded` (or X-Real-IP) header used to win because it was read first.
    @Test func onlyTheConfiguredHeaderIsRead() {
        let request = [("Forwarded", "for=9.9.9.9"), ("X-Real-IP", "9.9.9.9"), ("True-Client-IP", "9.9.9.9"),
                       ("X-Forwarded-For", "203.0.113.9")]
        #expect(resolve(.xForwardedFor, request) == .client(IPAddress("203.0.113.9")!))
        // A proxy that only sets X-Real-IP: the client's X-Forwarded-For is ignored.
        let realIP = [("X-Forwarded-For", "9.9.9.9"), ("X-Real-IP", "198.51.100.20")]
        #expect(resolve(.xRealIP, realIP) == .client(IPAddress("198.51.100.20")!))
        #expect(resolve(.cfConnectingIP, [("X-Forwarded-For", "9.9.9.9"), ("CF-Connecting-IP", "198.51.100.21")]) == .client(IPAddress("198.51.100.21")!))
        #expect(resolve(.flyClientIP, [("Fly-Client-IP", "2001:db8::5")]) == .client(IPAddress("2001:db8::5")!))
        #expect(resolve(.trueClientIP, [("True-Client-IP", "198.51.100.22")]) == .client(IPAddress("198.51.100.22")!))
    }

    @Test func listIsReadFromTheRightSkippingTrustedHops() {
        // The client prepended a fake address; the proxies appended the real one.
        #expect(resolve(.xForwardedFor, [("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-For", "10.1.1.1")])
                == .client(IPAddress("203.0.113.9")!))
        #expect(resolve(.forwarded, [("Forwarded", "for=\"[2001:db8::7]:4711\";proto=https, for=10.2.2.2")]) == .client(IPAddress("2001:db8::7")!))
        #expect(resolve(.forwarded, [("Forwarded", "For=\"192.0.2.60:8080\"")]) == .client(IPAddress("192.0.2.60")!))
        #expect(resolve(.xForwardedFor, peer: "::ffff:10.0.0.5", [("X-Forwarded-For", "198.51.100.3")]) == .client(IPAddress("198.51.100.3")!))
        #expect(resolve(.xForwardedFor, [("X-Forwarded-For", "::ffff:198.51.100.4")]) == .client(IPAddress("198.51.100.4")!))
    }

    /// Issue 20, item 2: an unreadable hop used to make the nearest trusted proxy the client,
    /// so a few hundred `for=unknown` requests banned the proxy's network for everyone.
    @Test func unreadableChainsAreNeverTheProxy() {
        let cases: [(RealIPSource, [(String, String)])] = [
            (.forwarded, [("Forwarded", "for=unknown")]),
            (.forwarded, [("Forwarded", "for=_hidden")]),
            (.forwarded, [("Forwarded", "proto=http")]),
            (.forwarded, [("Forwarded", "for=1.2.3.4;for=5.6.7.8")]),
            (.xForwardedFor, [("X-Forwarded-For", "1.2.3.4, garbage, 10.9.9.9")]),
            (.xForwardedFor, [("X-Forwarded-For", "")]),
            (.xForwardedFor, [("X-Forwarded-For", "10.3.3.3, 10.4.4.4")]),  // only trusted hops
            (.xForwardedFor, []),  // the proxy itself (a health check)
            (.xRealIP, [("X-Real-IP", "1.2.3.4"), ("X-Real-IP", "5.6.7.8")]),  // the client's copy came through
            (.xRealIP, [("X-Real-IP", "1.2.3.4:99999x")]),
            (.xRealIP, [("X-Real-IP", "127.0.0.1")]),
            (.proxyProtocol, [("X-Forwarded-For", "1.2.3.4")]),
        ]
        for (source, pairs) in cases {
            #expect(isUnattributed(resolve(source, pairs)), "\(source) \(pairs)")
        }
    }

    @Test func nodesParseStrictly() {
        #expect(ClientAddressResolver.parseNode("1.2.3.4:") == nil)
        #expect(ClientAddressResolver.parseNode("[2001:db8::1]:") == nil)
        #expect(ClientAddressResolver.parseNode("[2001:db8::1]:80") == IPAddress("2001:db8::1"))
        #expect(ClientAddressResolver.parseNode("\"1.2.3.4:80\"") == IPAddress("1.2.3.4"))
        #expect(ClientAddressResolver.parseNode("01.2.3.4") == nil)
        #expect(ClientAddressResolver.parseNode("1.2.3.4:٣") == nil, "digits are ASCII only")
    }

    /// Random field values never crash the parsers, and never yield the proxy.
    @Test func fuzzedChainsNeverResolveToATrustedAddress() {
        var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 0x1D_2026)
        print("ClientAddressResolverTests fuzz seed: \(rng.seed) (FUZZ_SEED to repeat)")
        let alphabet = Array("0123456789abcdef.:[]\";=, for_unknown10.0.0.5127.0.0.1".utf8)
        for _ in 0..<20_000 {
            let value = String(decoding: (0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
            for source in [RealIPSource.xForwardedFor, .forwarded, .xRealIP] {
                guard let field = source.field else { continue }
                if case .client(let c) = resolve(source, [(field.rawName, value)]) {
                    #expect(!Self.trusted.contains(c), "\(source) '\(value)' resolved to trusted \(c)")
                }
            }
        }
    }
}

/// SplitMix64: a generator whose seed is printed, so a failing fuzz run can be repeated.

