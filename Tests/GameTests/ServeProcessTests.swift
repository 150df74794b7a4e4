import Foundation
import Synchronization
import IPQuestTestSupport
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// The real `ipquest` binary as a separate process: exit codes, signals, kill -9.
@Suite(.serialized, .tags(.processes)) struct ServeProcessTests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["IPQUEST_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/ipquest").path
    }

    struct Running: @unchecked Sendable {
        let process: Process
        let port: UInt16
        let stderr: Pipe
    }

    static func tempDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-proc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func launch(_ arguments: [String]) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Wait (bounded) for the "listening on" line.
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        func listeningLine() -> Substring? { text.split(separator: "\n").first { $0.contains("listening on") && text.contains($0 + "\n") } }
        while Date() < deadline, listeningLine() == nil {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        guard let portText = listeningLine()?.split(separator: ":").last?.trimmingCharacters(in: .whitespacesAndNewlines), let port = UInt16(portText) else {
            process.terminate()
            throw LoopbackHTTPClient.Failure.socket("server did not start: \(text)")
        }
        return Running(process: process, port: port, stderr: err)
    }

    static func launchAsync(_ arguments: [String]) async throws -> Running {
        try await onThread { try launch(arguments) }
    }

    static func runAsync(_ arguments: [String]) async throws -> ToolOutput {
        try await runTool(binary, arguments)
    }

    @Test func metricsOnTheirOwnAddressOnly() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A free port for the metrics listener (bound and released).
        let (probe, metricsPort) = try boundLoopbackSocket(listening: false)
        close(probe)
        try "metrics: { address: \"127.0.0.1:\(metricsPort)\" }\nlocation: { database: \"\" }\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let server = try await Self.launchAsync(["serve", "--port", "0", "--database", dir + "/m.sqlite", "--config", dir + "/c.yaml"])
        defer { server.process.terminate() }
        let main = LoopbackHTTPClient(port: server.port)
        #expect(try await main.get("/claim?name=metered", source: "127.6.0.1").status == 200)
        #expect(try await main.get("/metrics").status == 404)
        // Snapshot reads answered on the event loop (FastRoutes) and by the router (a query
        // string sends them there) are counted under the same route and labels.
        #expect(try await main.get("/score/week").status == 200)
        #expect(try await main.get("/score/week?via=router").status == 200)
        var metrics = try await LoopbackHTTPClient(port: metricsPort).get("/metrics")
        for _ in 0..<50 where metrics.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            metrics = try await LoopbackHTTPClient(port: metricsPort).get("/metrics")
        }
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("ipquest_claims_total 1"))
        for family in ["ipquest_claim_queue_depth", "ipquest_claim_batch_size", "ipquest_claim_commit_duration", "ipquest_connections_open",
                       "ipquest_requests_in_flight", "ipquest_http_requests_total"] {
            #expect(metrics.text.contains(family), "metrics lack \(family)")
        }
        let weekly = metrics.text.split(separator: "\n").filter {
            $0.hasPrefix("ipquest_http_requests_total") && $0.contains("route=\"/score/{period}\"") && $0.contains("\"200\"")
        }
        #expect(weekly.count == 1 && weekly.first?.hasSuffix(" 2") == true, "\(weekly)")
    }

    /// A span per request reaches an OTLP/HTTP collector (a loopback server that records what
    /// is posted to /v1/traces), carrying the service name and the route.
    @Test func requestSpansAreExportedOverOTLP() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let collector = try FakeCollector()
        defer { collector.stop() }
        try "tracing: { endpoint: \"http://127.0.0.1:\(collector.port)\", service_name: ipquest-test }\nlocation: { database: \"\" }\n"
            .write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let server = try await Self.launchAsync(["serve", "--port", "0", "--database", dir + "/t.sqlite", "--config", dir + "/c.yaml"])
        defer { server.process.terminate() }
        #expect(try await LoopbackHTTPClient(port: server.port).get("/claim?name=traced", source: "127.6.1.1").status == 200)
        var exported = Data()
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            exported = collector.received.withLock { $0.filter { $0.path == "/v1/traces" }.reduce(Data()) { $0 + $1.body } }
            if exported.range(of: Data("/claim".utf8)) != nil { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(exported.range(of: Data("ipquest-test".utf8)) != nil, "service name in the resource")
        #expect(exported.range(of: Data("/claim".utf8)) != nil, "the claim's span")
        #expect(collector.received.withLock { $0.allSatisfy { $0.contentType == "application/x-protobuf" } })
    }

    @Test func badConfigurationIsOneLineNamingTheKeyAndExitCode2() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let badPort = try await Self.runAsync(["serve", "--port", "99999", "--database", dir + "/x.sqlite"])
        #expect(badPort.status == 2)
        #expect(badPort.stderr == "ipquest: invalid configuration: port: 99999 is outside 0…65535\n")
        try "port: 8080\nrate_limit:\n  burst: -1\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let badFile = try await Self.runAsync(["serve", "--config", dir + "/c.yaml"])
        #expect(badFile.status == 2)
        #expect(badFile.stderr == "ipquest: invalid configuration: rate_limit.burst: -1 is outside 1…1000000\n")
        let badProxy = try await Self.runAsync(["serve", "--trusted-proxy", "10.0.0.1/8", "--database", dir + "/x.sqlite"])
        #expect(badProxy.status == 2 && badProxy.stderr.contains("trusted_proxies[0]"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.sqlite"), "nothing is created on a bad configuration")
    }

    @Test func sigtermFinishesAndKeepsClaims() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/game.sqlite"
        let server = try await Self.launchAsync(["serve", "--port", "0", "--database", db])
        let client = LoopbackHTTPClient(port: server.port)
        for i in 0..<50 {
            #expect(try await client.get("/claim?name=term", source: LoopbackHTTPClient.sourceAddress(i)).status == 200)
        }
        kill(server.process.processIdentifier, SIGTERM)
        try await onThread { server.process.waitUntilExit() }
        #expect(server.process.terminationStatus == 0)
        #expect(server.process.terminationReason == .exit)
        let export = try await Self.runAsync(["claims", "export", "--database", db, "--output", dir + "/out.tsv"])
        #expect(export.status == 0)
        let lines = try String(contentsOfFile: dir + "/out.tsv", encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "ip\tname\tclaimed_at\tcountry\tasn\tprovider")
        #expect(lines.count == 51)
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: "\t")[1] == "term" })

        // Import into a fresh database restores the same claims; a bad row aborts everything.
        let restored = dir + "/restored.sqlite"
        #expect(try await Self.runAsync(["claims", "import", "--database", restored, dir + "/out.tsv"]).status == 0)
        let restoredClaims = try await SQLiteClaimStorage(path: restored).loadAll()
        #expect(restoredClaims.count == 50)
        #expect(Set(restoredClaims.map(\.claimedAt)).count >= 1 && restoredClaims.allSatisfy { $0.name.value == "term" })
        // Origins survive export and import (six columns); bad origins are named.
        try "ip\tname\tclaimed_at\tcountry\tasn\tprovider\n1.2.3.4\tok\t5\tDE\t3320\taws\n1.2.3.5\tok\t5\t\t\t\n"
            .write(toFile: dir + "/origins.tsv", atomically: true, encoding: .utf8)
        let withOrigins = dir + "/origins.sqlite"
        #expect(try await Self.runAsync(["claims", "import", "--database", withOrigins, dir + "/origins.tsv"]).status == 0)
        let origins = try await SQLiteClaimStorage(path: withOrigins).loadAll().sorted { $0.address < $1.address }.map(\.origin)
        #expect(origins == [ClaimOrigin(country: "DE", asn: 3320, provider: "aws"), .unknown])
        try "1.2.3.4\tok\t5\tDEU\t3320\taws\n".write(toFile: dir + "/badorigin.tsv", atomically: true, encoding: .utf8)
        let badOrigin = try await Self.runAsync(["claims", "import", "--database", withOrigins, dir + "/badorigin.tsv"])
        #expect(badOrigin.status == 2 && badOrigin.stderr.contains("line 1: 'DEU' is not a two-letter country code"))
        try "ip\tname\tclaimed_at\n1.2.3.4\tok\t5\n1.2.3\tbad\t6\n".write(toFile: dir + "/bad.tsv", atomically: true, encoding: .utf8)
        let bad = try await Self.runAsync(["claims", "import", "--database", restored, dir + "/bad.tsv"])
        #expect(bad.status == 2 && bad.stderr.contains("line 3: '1.2.3' is not an IPv4 address"))
        #expect(try await SQLiteClaimStorage(path: restored).loadAll().count == 50)
    }

    /// Claims are acknowledged only after commit: SIGKILL in the middle of a storm loses none
    /// of the acknowledged ones.
    @Test func killDuringClaimStormLosesNoAcknowledgedClaim() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/game.sqlite"
        let server = try await Self.launchAsync(["serve", "--port", "0", "--database", db, "--durability", "normal"])
        let client = LoopbackHTTPClient(port: server.port, timeoutSeconds: 5)
        let acknowledged = Mutex<[String: String]>([:])
        let killed = Atomic<Bool>(false)
        await runOnThreads(9) { worker in
            if worker == 8 {
                // The killer: wait for a good number of acknowledgements, then SIGKILL.
                while acknowledged.withLock({ $0.count }) < 1_500 { usleep(1_000) }
                kill(server.process.processIdentifier, SIGKILL)
                killed.store(true, ordering: .sequentiallyConsistent)
                return
            }
            var i = worker
            while !killed.load(ordering: .sequentiallyConsistent), i < 40_000 {
                let source = LoopbackHTTPClient.sourceAddress(i)
                let name = "k\(i % 97)"
                if let r = try? client.get("/claim?name=\(name)", source: source), r.status == 200 {
                    acknowledged.withLock { $0[source] = name }
                }
                i += 8
            }
        }
        try await onThread { server.process.waitUntilExit() }
        #expect(server.process.terminationReason == .uncaughtSignal)
        let acked = acknowledged.withLock { $0 }
        #expect(acked.count >= 1_500)
        let stored = try await SQLiteClaimStorage(path: db).loadAll()
        let owners = Dictionary(uniqueKeysWithValues: stored.map { ($0.address.description, $0.name.value) })
        let lost = acked.filter { owners[$0.key] != $0.value }
        #expect(lost.isEmpty, "lost \(lost.count) acknowledged claims, e.g. \(lost.first.map { "\($0)" } ?? "")")

        // And the server starts again on the same file with everything in place.
        let again = try await Self.launchAsync(["serve", "--port", "0", "--database", db])
        let health = try await LoopbackHTTPClient(port: again.port).get("/healthz").text
        #expect(health.contains("\"addresses\":\(stored.count)"))
        kill(again.process.processIdentifier, SIGTERM)
        try await onThread { again.process.waitUntilExit() }
        #expect(again.process.terminationStatus == 0)
    }
}


/// A minimal OTLP/HTTP collector on loopback: records each POST and answers 200 with an empty
/// (valid) protobuf response.
final class FakeCollector: @unchecked Sendable {
    struct Post: Sendable { var path: String; var contentType: String; var body: Data }
    let port: UInt16
    let received = Mutex<[Post]>([])
    private let fd: Int32
    private let running = Atomic<Bool>(true)

    init() throws {
        (fd, port) = try boundLoopbackSocket(listening: true)
        Thread { [self] in self.serve() }.start()
    }

    func stop() {
        running.store(false, ordering: .relaxed)
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    private func serve() {
        while running.load(ordering: .relaxed) {
            let client = accept(fd, nil, nil)
            if client < 0 { return }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = Data()
            var chunk = [UInt8](repeating: 0, count: 65_536)
            // Requests on one keep-alive connection, one after another.
            while true {
                while buffer.range(of: Data("\r\n\r\n".utf8)) == nil {
                    let n = recv(client, &chunk, chunk.count, 0)
                    if n <= 0 { break }
                    buffer.append(contentsOf: chunk[0..<n])
                }
                guard let headEnd = buffer.range(of: Data("\r\n\r\n".utf8)) else { break }
                let head = String(decoding: buffer[..<headEnd.lowerBound], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                var fields: [String: String] = [:]
                for line in lines.dropFirst() {
                    if let colon = line.firstIndex(of: ":") {
                        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                    }
                }
                let length = Int(fields["content-length"] ?? "0") ?? 0
                buffer.removeSubrange(..<headEnd.upperBound)
                while buffer.count < length {
                    let n = recv(client, &chunk, chunk.count, 0)
                    if n <= 0 { break }
                    buffer.append(contentsOf: chunk[0..<n])
                }
                let body = buffer.prefix(length)
                buffer.removeFirst(min(length, buffer.count))
                let path = lines.first.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" } ?? ""
                received.withLock { $0.append(Post(path: path, contentType: fields["content-type"] ?? "", body: Data(body))) }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n".utf8)
                _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            close(client)
        }
    }
}
