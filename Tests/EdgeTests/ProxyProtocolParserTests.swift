import Testing
import IPAddress
@testable import Edge

@Suite struct ProxyProtocolParserTests {
    @Test func parsesV1TCP4() {
        let line = Array("PROXY TCP4 203.0.113.7 127.0.0.1 51000 8080\r\nGET / HTTP/1.1\r\n".utf8)
        guard case .header(let h, let length) = ProxyProtocolParser.parse(line) else { Issue.record("not parsed"); return }
        #expect(h.source == IPAddress("203.0.113.7"))
        #expect(h.destination == IPAddress("127.0.0.1"))
        #expect(h.sourcePort == 51000 && h.destinationPort == 8080)
        #expect(h.command == .proxy && h.version == 1)
        #expect(length == 45)
        #expect(line[length] == UInt8(ascii: "G"))
    }

    @Test func parsesV1TCP6AndUnknown() {
        guard case .header(let h, _) = ProxyProtocolParser.parse(Array("PROXY TCP6 2001:db8::1 ::1 1 2\r\n".utf8)) else { Issue.record(); return }
        #expect(h.source == IPAddress("2001:db8::1"))
        guard case .header(let u, let n) = ProxyProtocolParser.parse(Array("PROXY UNKNOWN\r\n".utf8)) else { Issue.record(); return }
        #expect(u.command == .local && u.source == nil && n == 15)
    }

    @Test(arguments: [
        "PROXY TCP4 203.0.113.7 127.0.0.1 51000 8080\n",       // LF without CR
        "PROXY TCP4 203.0.113.07 127.0.0.1 51000 8080\r\n",    // leading zero
        "PROXY TCP4 2001:db8::1 127.0.0.1 51000 8080\r\n",     // family mismatch
        "PROXY TCP4 203.0.113.7 127.0.0.1 65536 8080\r\n",     // port overflow
        "PROXY TCP4 203.0.113.7 127.0.0.1 051 8080\r\n",       // port leading zero
        "PROXY TCP4 203.0.113.7 127.0.0.1 51000\r\n",          // missing field
        "PROXY TCP4  203.0.113.7 127.0.0.1 1 2\r\n",           // double space
        "PROXY UDP4 203.0.113.7 127.0.0.1 1 2\r\n",            // unknown protocol
    ])
    func rejectsMalformedV1(text: String) {
        if case .invalid = ProxyProtocolParser.parse(Array(text.utf8)) {} else {
            Issue.record("accepted or misread: \(text.debugDescription) → \(ProxyProtocolParser.parse(Array(text.utf8)))")
        }
    }

    @Test func v1WithoutEndWithinLimitIsInvalid() {
        let long = Array(("PROXY TCP4 " + String(repeating: "1", count: 120)).utf8)
        if case .invalid = ProxyProtocolParser.parse(long) {} else { Issue.record("over-long v1 header not refused") }
    }

    @Test func partialHeadersAskForMore() {
        let full = Array("PROXY TCP4 203.0.113.7 127.0.0.1 51000 8080\r\n".utf8)
        for n in 1..<full.count {
            #expect(ProxyProtocolParser.parse(full.prefix(n)) == .needMoreData, "prefix \(n)")
        }
        let v2 = ProxyProtocolParser.encodeV2(source: IPv4Address("198.51.100.9")!, destination: IPv4Address("127.0.0.1")!, sourcePort: 4000, destinationPort: 80)
        for n in 1..<v2.count {
            #expect(ProxyProtocolParser.parse(v2.prefix(n)) == .needMoreData, "v2 prefix \(n)")
        }
    }

    @Test func parsesV2WithTLVs() {
        let tlv: [UInt8] = [0x04, 0x00, 0x03, 0x61, 0x62, 0x63] // PP2_TYPE_NOOP, 3 bytes
        let header = ProxyProtocolParser.encodeV2(source: IPv4Address("198.51.100.9")!, destination: IPv4Address("127.0.0.1")!, sourcePort: 4000, destinationPort: 80, tlv: tlv)
        guard case .header(let h, let length) = ProxyProtocolParser.parse(header + Array("GET".utf8)) else { Issue.record(); return }
        #expect(h.source == IPAddress("198.51.100.9") && h.sourcePort == 4000 && h.version == 2)
        #expect(length == header.count)
    }

    @Test func v2LocalAndBadVersions() {
        var local = ProxyProtocolParser.v2Signature + [0x20, 0x00, 0x00, 0x00]
        guard case .header(let h, _) = ProxyProtocolParser.parse(local) else { Issue.record(); return }
        #expect(h.command == .local)
        local[12] = 0x10 // version 1 in a v2 frame
        if case .invalid = ProxyProtocolParser.parse(local) {} else { Issue.record("bad version accepted") }
        var badCommand = ProxyProtocolParser.v2Signature + [0x2F, 0x11, 0x00, 0x0C] + [UInt8](repeating: 0, count: 12)
        if case .invalid = ProxyProtocolParser.parse(badCommand) {} else { Issue.record("bad command accepted") }
        badCommand[12] = 0x21
        badCommand[15] = 0x04 // IPv4 block too short
        if case .invalid = ProxyProtocolParser.parse(badCommand) {} else { Issue.record("short address block accepted") }
        let huge = ProxyProtocolParser.v2Signature + [0x21, 0x11, 0xFF, 0xFF]
        if case .invalid = ProxyProtocolParser.parse(huge) {} else { Issue.record("oversized v2 accepted") }
    }

    @Test func plainHTTPIsNotProxy() {
        #expect(ProxyProtocolParser.parse(Array("GET / HTTP/1.1\r\n".utf8)) == .notProxy)
        #expect(ProxyProtocolParser.parse(Array("PROXZ".utf8)) == .notProxy)
    }

    /// Random and mutated inputs: the parser must answer, never trap, and a header's length
    /// must lie within the input.
    @Test func fuzzNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let seeds: [[UInt8]] = [
            Array("PROXY TCP4 203.0.113.7 127.0.0.1 51000 8080\r\n".utf8),
            Array("PROXY TCP6 2001:db8::1 ::1 1 2\r\n".utf8),
            ProxyProtocolParser.encodeV2(source: IPv4Address(1), destination: IPv4Address(2), sourcePort: 1, destinationPort: 2, tlv: [1, 0, 1, 9]),
            ProxyProtocolParser.v2Signature + [0x21, 0x21, 0x00, 0x24] + [UInt8](repeating: 7, count: 36),
        ]
        for round in 0..<50_000 {
            var input = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !input.isEmpty: input[Int.random(in: 0..<input.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !input.isEmpty: input.removeSubrange(Int.random(in: 0..<input.count, using: &rng)...)
                case 2: input.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...input.count, using: &rng))
                default: input += (0..<Int.random(in: 0...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            if case .header(_, let length) = ProxyProtocolParser.parse(input) {
                #expect(length > 0 && length <= input.count)
            }
        }
    }
}

@Suite struct TokenBucketLimiterTests {
    final class FakeClock: @unchecked Sendable {
        var nanoseconds: UInt64 = 1_000_000_000
        func advance(seconds: Double) { nanoseconds += UInt64(seconds * 1e9) }
    }

    @Test func burstThenRefill() {
        let clock = FakeClock()
        let limiter = TokenBucketLimiter<UInt32>(configuration: .init(burst: 127, refillPerSecond: 1, capacity: 1024), clock: { clock.nanoseconds })
        for i in 0..<127 {
            #expect(limiter.acquire(7) == .allowed(remaining: 126 - i))
        }
        #expect(limiter.acquire(7) == .limited(retryAfter: 1))
        #expect(limiter.acquire(8) == .allowed(remaining: 126), "another network has its own bucket")
        clock.advance(seconds: 2.5)
        #expect(limiter.acquire(7) == .allowed(remaining: 1))
        #expect(limiter.acquire(7) == .allowed(remaining: 0))
        #expect(limiter.acquire(7) == .limited(retryAfter: 1))
    }

    @Test func retryAfterReflectsRate() {
        let clock = FakeClock()
        let limiter = TokenBucketLimiter<Int>(configuration: .init(burst: 1, refillPerSecond: 0.1, capacity: 64), clock: { clock.nanoseconds })
        #expect(limiter.acquire(1) == .allowed(remaining: 0))
        #expect(limiter.acquire(1) == .limited(retryAfter: 10))
    }

    @Test func memoryIsBoundedAndIdleBucketsExpire() {
        let clock = FakeClock()
        let limiter = TokenBucketLimiter<Int>(configuration: .init(burst: 2, refillPerSecond: 1, capacity: 320), clock: { clock.nanoseconds })
        for key in 0..<10_000 { _ = limiter.acquire(key) }
        #expect(limiter.count <= 320)
        #expect(limiter.count >= 160, "the table fills up to its bound")
        clock.advance(seconds: 5) // everyone refilled: indistinguishable from new
        limiter.sweep()
        #expect(limiter.count == 0)
        for key in 0..<40 { #expect(limiter.acquire(key) == .allowed(remaining: 1)) }
    }
}
