import Foundation
@testable import LocationDB
import Synchronization
import Testing
import TextFormats

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
        #expect(HTTPDate.parse(texts[0]) == 1_667_023_194)
        #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.parseTXTAnswer(answer, id: 0x9999) }
        for cut in [3, 12, 20, answer.count - 5] {
            #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.parseTXTAnswer(Array(answer.prefix(cut)), id: 0x1234) }
        }
    }

    @Test("the newest version is asked of a resolver over UDP and read from its TXT answer", .timeLimit(.minutes(1)))
    func roundTrip() throws {
        let resolver = try LoopbackResolver(txt: "Sat, 29 Oct 2022 05:59:54 GMT")
        defer { resolver.stop() }
        #expect(try DatabaseVersionDiscovery.latestVersion(nameservers: ["127.0.0.1:\(resolver.port)"]) == 1_667_023_194)
        #expect(resolver.questions.withLock { $0 } == ["_v1._db.location.ipfire.org"])
    }

    @Test("with no answering resolver the check fails cleanly and quickly", .timeLimit(.minutes(1)))
    func noAnswer() throws {
        let silent = try LoopbackResolver(txt: nil)
        defer { silent.stop() }
        let started = ContinuousClock.now
        #expect(throws: LocationDatabaseError.self) {
            try DatabaseVersionDiscovery.latestVersion(nameservers: ["127.0.0.1:\(silent.port)"], timeoutMilliseconds: 300)
        }
        #expect(ContinuousClock.now - started < .seconds(3))
        #expect(silent.questions.withLock { $0.count } == 1)
        #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.latestVersion(nameservers: ["127.0.0.1:0"]) }
        #expect(throws: LocationDatabaseError.self) { try DatabaseVersionDiscovery.latestVersion(nameservers: ["127.0.0.1:x"]) }
    }
}

/// A DNS server on a loopback UDP port: answers every query with one TXT record, or (with
/// `txt: nil`) never answers. Records the names asked.
final class LoopbackResolver: @unchecked Sendable {
    let port: UInt16
    let questions = Mutex<[String]>([])
    private let fd: Int32
    private let running = Atomic<Bool>(true)
    private let txt: String?

    init(txt: String?) throws {
        self.txt = txt
        (fd, port) = try loopbackSocket(type: SOCK_DGRAM)
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        Thread { [self] in self.serve() }.start()
    }

    func stop() { running.store(false, ordering: .relaxed) }

    private func serve() {
        defer { close(fd) }
        var query = [UInt8](repeating: 0, count: 512)
        while running.load(ordering: .relaxed) {
            var from = sockaddr_storage()
            var fromLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let n = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &query, query.count, 0, $0, &fromLength) }
            }
            guard n > 12 else { continue }
            // The question: labels from offset 12 up to the root label, then type and class.
            var labels: [String] = [], i = 12
            while i < n, query[i] != 0, i + 1 + Int(query[i]) <= n {
                labels.append(String(decoding: query[(i + 1)..<(i + 1 + Int(query[i]))], as: UTF8.self))
                i += 1 + Int(query[i])
            }
            questions.withLock { $0.append(labels.joined(separator: ".")) }
            guard let txt, i + 5 <= n else { continue }
            let text = Array(txt.utf8)
            var answer: [UInt8] = [query[0], query[1], 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0] + query[12..<(i + 5)]
            answer += [0xC0, 12, 0, 16, 0, 1, 0, 0, 0x0E, 0x10, 0, UInt8(text.count + 1), UInt8(text.count)] + text
            _ = withUnsafePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, answer, answer.count, 0, $0, fromLength) }
            }
        }
    }
}

/// A socket of `type` bound to 127.0.0.1 on a free port (listening, for a stream socket), and the port.
func loopbackSocket(type: __socket_type) throws -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(type.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0, type != SOCK_STREAM || listen(fd, 16) == 0 else {
        close(fd)
        throw LocationDatabaseError.ioError("cannot bind a socket on 127.0.0.1")
    }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return (fd, UInt16(bigEndian: address.sin_port))
}
