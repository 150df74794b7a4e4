import Foundation
import LocationDB
import Synchronization
import IPQuestTestSupport
import Testing
import TextFormats

/// `ipquest location update` as a process, against a loopback resolver (the DNS version check)
/// and a loopback HTTP server (the download): what it installs, when it stays put, and that a
/// failed update never touches the database in place.
@Suite(.serialized, .timeLimit(.minutes(2)), .tags(.processes))
struct LocationUpdateCommandTests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["IPQUEST_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/ipquest").path
    }

    /// A directory with a signing key, two signed versions of a small database (and their xz
    /// downloads), and a tampered copy of the newer one.
    struct Fixture {
        let directory: String
        let keyPath: String
        let older: [UInt8], newer: [UInt8]
        let olderCreated: UInt64, newerCreated: UInt64
        let newerXZ: [UInt8], tamperedXZ: [UInt8]
        var installed: String { directory + "/installed/location.db" }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("locupdate-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory + "/installed", withIntermediateDirectories: true)
            let key = try DatabaseSigningKey.generate(bits: 256)
            keyPath = directory + "/key.pem"
            try key.publicKey.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
            var writer = SmallDatabase.writer()
            olderCreated = 1_700_000_000
            writer.createdAt = olderCreated
            older = try writer.makeBytes(signingKeys: [key])
            newerCreated = olderCreated + 86_400
            writer.createdAt = newerCreated
            newer = try writer.makeBytes(signingKeys: [key])
            // Still a well-formed database, but not the one signed: one letter of the vendor.
            var tampered = newer
            let vendor = Array("Test Vendor".utf8)
            let at = try #require((0...(tampered.count - vendor.count)).first { Array(tampered[$0..<($0 + vendor.count)]) == vendor })
            tampered[at] = UInt8(ascii: "B")
            newerXZ = try Self.xz(newer)
            tamperedXZ = try Self.xz(tampered)
        }

        static func xz(_ bytes: [UInt8]) throws -> [UInt8] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/xz")
            process.arguments = ["-c", "-0"]
            let input = Pipe(), output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            try process.run()
            // Small databases: write all, then read all.
            input.fileHandleForWriting.write(Data(bytes))
            try input.fileHandleForWriting.close()
            let compressed = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return [UInt8](compressed)
        }

        func install(_ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: installed)) }
        func installedBytes() -> [UInt8]? { FileManager.default.contents(atPath: installed).map { [UInt8]($0) } }
        func leftovers() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: directory + "/installed").filter { $0 != "location.db" }
        }
    }

    /// What one `location update` run did, and what the HTTP server was asked.
    struct Run {
        var status: Int32
        var stderr: String
        var requests: [LoopbackFileServer.Request]
    }

    /// Runs `location update` against a resolver announcing `announced` (nil: it never answers)
    /// and a server answering every request with `answer` (status, body).
    func update(_ fixture: Fixture, announced: String?, answer: (Int, [UInt8])) throws -> Run {
        let resolver = try LoopbackResolver(txt: announced)
        defer { resolver.stop() }
        let server = try LoopbackFileServer { _ in answer }
        defer { server.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["location", "update", "-d", fixture.installed, "-k", fixture.keyPath,
                             "--url", "http://127.0.0.1:\(server.port)/databases/1/location.db.xz",
                             "--nameserver", "127.0.0.1:\(resolver.port)"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stderr: String(decoding: text, as: UTF8.self), requests: server.requests.withLock { $0 })
    }

    @Test("a newer version announced over DNS is downloaded, verified and installed")
    func freshInstall() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.directory) }

        let run = try update(f, announced: HTTPDate.format(f.newerCreated), answer: (200, f.newerXZ))
        #expect(run.status == 0, "\(run.stderr)")
        #expect(f.installedBytes() == f.newer)
        #expect(run.stderr.contains("Updated to the database of \(HTTPDate.format(f.newerCreated))"))
        #expect(run.requests.map(\.path) == ["/databases/1/location.db.xz"])
        #expect(run.requests.first?.fields["if-modified-since"] == HTTPDate.format(f.newerCreated))
        #expect(try f.leftovers().isEmpty)
    }

    @Test("when DNS says the installed database is the newest, nothing is downloaded")
    func alreadyNewest() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.directory) }
        try f.install(f.newer)

        let run = try update(f, announced: HTTPDate.format(f.newerCreated), answer: (200, f.newerXZ))
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("Already on the latest version"))
        #expect(run.requests.isEmpty)
        #expect(f.installedBytes() == f.newer)
    }

    @Test("without a DNS answer, If-Modified-Since carries the installed version; 304 exits 3")
    func notModified() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.directory) }
        try f.install(f.older)

        let run = try update(f, announced: nil, answer: (304, []))
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stderr.contains("Could not discover the latest version over DNS"))
        #expect(run.requests.first?.fields["if-modified-since"] == HTTPDate.format(f.olderCreated))
        #expect(f.installedBytes() == f.older)
        #expect(try f.leftovers().isEmpty)
    }

    @Test("a download that fails verification, or an HTTP error, leaves the installed database as it was")
    func failuresKeepTheInstalledDatabase() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.directory) }
        try f.install(f.older)
        let announced = HTTPDate.format(f.newerCreated)

        var run = try update(f, announced: announced, answer: (200, f.tamperedXZ))
        #expect(run.status == 1)
        #expect(run.stderr.contains("Could not verify the downloaded database"), "\(run.stderr)")
        #expect(f.installedBytes() == f.older)
        #expect(try f.leftovers().isEmpty)

        run = try update(f, announced: announced, answer: (500, Array("oops".utf8)))
        #expect(run.status == 1)
        #expect(run.stderr.contains("Could not download a new database: HTTP status 500"), "\(run.stderr)")
        #expect(f.installedBytes() == f.older)

        // Not xz at all.
        run = try update(f, announced: announced, answer: (200, Array(repeating: 0x41, count: 4096)))
        #expect(run.status == 1)
        #expect(run.stderr.contains("Could not decompress the download"), "\(run.stderr)")
        #expect(f.installedBytes() == f.older)
        #expect(try f.leftovers().isEmpty)
    }
}

/// An HTTP/1.1 server on a loopback port: one request per connection, answered by `respond`
/// (status, body). Records each request's path and header fields (lower-cased names).
final class LoopbackFileServer: @unchecked Sendable {
    struct Request: Sendable { var path: String; var fields: [String: String] }
    let port: UInt16
    let requests = Mutex<[Request]>([])
    private let fd: Int32
    private let respond: @Sendable (Request) -> (Int, [UInt8])

    init(respond: @escaping @Sendable (Request) -> (Int, [UInt8])) throws {
        self.respond = respond
        (fd, port) = try loopbackSocket(type: SOCK_STREAM)
        Thread { [self] in self.serve() }.start()
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var head: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while !head.ends(with: Array("\r\n\r\n".utf8)), head.count < 65_536 {
                let n = recv(client, &chunk, 1, 0)
                if n <= 0 { break }
                head.append(chunk[0])
            }
            let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n")
            var request = Request(path: lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "", fields: [:])
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                request.fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            requests.withLock { $0.append(request) }
            let (status, body) = respond(request)
            let answer = Array("HTTP/1.1 \(status) Whatever\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
            var sent = 0
            while sent < answer.count {
                let n = answer[sent...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { break }
                sent += n
            }
            close(client)
        }
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
