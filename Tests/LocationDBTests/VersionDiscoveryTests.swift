@testable import LocationDB
import Testing

@Suite("DNS version discovery")
struct VersionDiscoveryTests {
    @Test("nameservers are read from resolv.conf text")
    func resolvConf() {
        let text = "# comment\nsearch example.org\nnameserver 10.0.0.2\nnameserver\t192.168.1.1\nnameserver fe80::1\noptions ndots:1\n"
        #expect(DatabaseVersionDiscovery.nameservers(resolvConf: text) == ["10.0.0.2", "192.168.1.1"])
    }

    @Test("a TXT answer is parsed; malformed answers throw")
    func parseAnswer() throws {
        let name: [UInt8] = [3, 95, 118, 49, 3, 95, 100, 98, 8] + Array("location".utf8) + [6] + Array("ipfire".utf8) + [3] + Array("org".utf8) + [0]
        let text = Array("Sat, 29 Oct 2022 05:59:54 GMT".utf8)
        var answer: [UInt8] = [0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0] + name + [0, 16, 0, 1]
        answer += [0xC0, 12, 0, 16, 0, 1, 0, 0, 0x0E, 0x10, 0, UInt8(text.count + 1), UInt8(text.count)] + text
        let texts = try DatabaseVersionDiscovery.parseTXTAnswer(answer, id: 0x1234)
        #expect(texts == ["Sat, 29 Oct 2022 05:59:54 GMT"])
        #expect(parseHTTPDate(texts[0]) == 1_667_023_194)
        #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.parseTXTAnswer(answer, id: 0x9999) }
        for cut in [3, 12, 20, answer.count - 5] {
            #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.parseTXTAnswer(Array(answer.prefix(cut)), id: 0x1234) }
        }
    }

    @Test("with no reachable resolver the check fails cleanly and quickly", .timeLimit(.minutes(1)))
    func noNetwork() {
        // 192.0.2.1 (TEST-NET-1) never answers.
        #expect(throws: LocationDatabaseError.self) {
            try DatabaseVersionDiscovery.latestVersion(nameservers: ["192.0.2.1"], timeoutMilliseconds: 300)
        }
    }
}
