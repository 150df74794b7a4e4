import Foundation
import IPQuestTestSupport
import Testing
@testable import Game
@testable import GameRules

/// HTTPS with HTTP/2 by ALPN, certificate renewal without restart, and cleartext HTTP/2 (h2c),
/// driven by real clients: openssl makes the certificates, curl (nghttp2) speaks HTTP/2.
@Suite(.serialized, .tags(.processes)) struct HTTP2Tests {
    static func tool(_ path: String, _ arguments: [String]) async throws -> ToolOutput {
        try await runTool(path, arguments)
    }

    /// A self-signed certificate for 127.0.0.1 with common name `name`, written beside and then
    /// renamed over `dir/cert.pem` and `dir/key.pem` (as renewal tools do).
    static func makeCertificate(in dir: String, name: String) async throws {
        let made = try await tool("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=\(name)", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", dir + "/key.new", "-out", dir + "/cert.new",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(rename(dir + "/key.new", dir + "/key.pem") == 0 && rename(dir + "/cert.new", dir + "/cert.pem") == 0)
    }

    /// curl over loopback; `-w` reports the protocol version used.
    static func curl(_ arguments: [String]) async throws -> ToolOutput {
        try await tool("/usr/bin/curl", ["-sS", "--max-time", "10", "-w", "\n%{http_version} %{http_code}"] + arguments)
    }

    @Test func httpsNegotiatesHTTP2AndHTTP1AndReloadsRenewedCertificates() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try await Self.makeCertificate(in: dir, name: "first")
        let server = try await TestServer.start(configure: {
            $0.tlsCertificate = dir + "/cert.pem"
            $0.tlsKey = dir + "/key.pem"
            $0.tlsCheckSeconds = 1
            $0.maxBodyBytes = 1_000
        }, directory: dir)
        let base = "https://127.0.0.1:\(server.port)"
        let secure = ["--cacert", dir + "/cert.pem"]

        // HTTP/2 by ALPN, the claim counted for the stream's real source address.
        let h2 = try await Self.curl(secure + ["--http2", "--interface", "127.5.0.1", "-H", "Accept: text/plain", base + "/claim?name=alice"])
        #expect(h2.stdout == "The land at 127.5.0.1 was claimed for alice.\n\n2 200", "\(h2.stderr)")
        // HTTP/1.1 on the same port.
        let h1 = try await Self.curl(secure + ["--http1.1", base + "/ip", "--interface", "127.5.0.2"])
        #expect(h1.stdout == "127.5.0.2\n\n1.1 200", "\(h1.stderr)")
        // Per-stream limits: a body over the limit is refused on its stream.
        let big = try await Self.curl(secure + ["--http2", "-X", "POST", "--data-binary", String(repeating: "x", count: 5_000), base + "/claim"])
        #expect(big.stdout.hasSuffix("2 413"), "\(big.stdout) \(big.stderr)")
        #expect(try await Self.curl(secure + ["--http2", base + "/healthz"]).stdout.hasSuffix("2 200"))

        // Renewal: new files, no restart; new connections get the new certificate.
        try await Self.makeCertificate(in: dir, name: "second")
        var subject = ""
        let deadline = ContinuousClock.now + .seconds(15)
        while !subject.contains("CN=second"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            let probe = try await Self.curl(["-v", "--cacert", dir + "/cert.pem", "--http2", base + "/healthz"])
            subject = probe.stderr.split(separator: "\n").first { $0.contains("subject:") }.map(String.init) ?? ""
        }
        #expect(subject.contains("CN=second"))
        // A broken renewal keeps the last good certificate in service.
        try "not a certificate".write(toFile: dir + "/cert.pem", atomically: true, encoding: .utf8)
        try await Task.sleep(for: .milliseconds(2_500))
        let still = try await Self.curl(["-k", "--http2", base + "/healthz"])
        #expect(still.stdout.hasSuffix("2 200"), "\(still.stderr)")
        await server.stop()
    }

    @Test func cleartextHTTP2WithPriorKnowledge() async throws {
        let server = try await TestServer.start { $0.http2 = true }
        defer { server.removeFiles() }
        let base = "http://127.0.0.1:\(server.port)"
        let claim = try await Self.curl(["--http2-prior-knowledge", "--interface", "127.5.1.1", "-H", "Accept: text/plain", base + "/claim/bob"])
        #expect(claim.stdout == "The land at 127.5.1.1 was claimed for bob.\n\n2 200", "\(claim.stderr)")
        // Several streams multiplexed on one connection. (curl 7.88 cannot reuse a prior-knowledge
        // connection sequentially, so the streams go in parallel.)
        let many = try await Self.curl(["--http2-prior-knowledge", "--parallel", "--parallel-immediate", "--no-progress-meter",
                                        base + "/healthz", base + "/ip", base + "/api/recent"])
        #expect(many.stdout.components(separatedBy: "2 200").count - 1 == 3, "\(many.stdout) \(many.stderr)")
        await server.stop()
    }
}
