import Foundation
import HTTPDownload
import NIOHTTP1
import Testing
import TextFormats

/// `HTTPDownloader` against a real loopback server (`LoopbackHTTPServer`): conditional requests,
/// the size cap while the body streams in, refused statuses, the time limit.
@Suite("HTTP conditional downloads", .timeLimit(.minutes(1)))
struct HTTPDownloadTests {
    static let published: UInt64 = 1_700_000_000

    /// Runs `body` against a fresh server (the suite's time limit stops a hang).
    private func withServer(_ body: @escaping @Sendable (LoopbackHTTPServer) async throws -> Void) async throws {
        let server = try await LoopbackHTTPServer()
        do {
            try await body(server)
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    private static func downloader(maxBytes: Int = 1 << 20, timeout: Duration = .seconds(10)) -> HTTPDownloader {
        HTTPDownloader(maxBytes: maxBytes, timeout: timeout, userAgent: "ipquest-test/1")
    }

    @Test("200 gives the body and its validators; the same validators give 304 (ETag, or Last-Modified alone); a new ETag downloads again")
    func validators() async throws {
        try await withServer { server in
            let lastModified = HTTPDate.format(Self.published)
            server.set("/feed.json", .init(body: #"{"v":1}"#, etag: "\"a1\"", lastModified: lastModified, contentType: "application/json"))
            let downloader = Self.downloader()

            guard case .downloaded(let first) = try await downloader.download(server.url("/feed.json")) else {
                Issue.record("expected a download")
                return
            }
            #expect(String(decoding: first.body, as: UTF8.self) == #"{"v":1}"#)
            #expect(first.validators == DownloadValidators(etag: "\"a1\"", lastModified: lastModified))
            #expect(first.validators.lastModifiedSeconds == Self.published)
            #expect(first.contentType == "application/json" && !first.isHTML)
            let unconditional = try #require(server.requests.last)
            #expect(unconditional.headers.first(name: "If-None-Match") == nil)
            #expect(unconditional.headers.first(name: "If-Modified-Since") == nil)
            #expect(unconditional.headers.first(name: "User-Agent") == "ipquest-test/1")

            // Both validators back: 304.
            guard case .notModified = try await downloader.download(server.url("/feed.json"), validators: first.validators) else {
                Issue.record("expected 304 for the same ETag")
                return
            }
            let conditional = try #require(server.requests.last)
            #expect(conditional.headers.first(name: "If-None-Match") == "\"a1\"")
            #expect(conditional.headers.first(name: "If-Modified-Since") == lastModified)

            // Only a time (LocationDB's case: the creation time of the database in place).
            guard case .notModified = try await downloader.download(
                server.url("/feed.json"), validators: DownloadValidators(modifiedSince: Self.published)) else {
                Issue.record("expected 304 for the same Last-Modified")
                return
            }
            #expect(server.requests.last?.headers.first(name: "If-Modified-Since") == lastModified)

            // Changed on the server: the old validators download the new copy.
            server.set("/feed.json", .init(body: #"{"v":2}"#, etag: "\"a2\"", lastModified: HTTPDate.format(Self.published + 60)))
            guard case .downloaded(let second) = try await downloader.download(server.url("/feed.json"), validators: first.validators) else {
                Issue.record("expected the changed file")
                return
            }
            #expect(String(decoding: second.body, as: UTF8.self) == #"{"v":2}"#)
            #expect(second.etag == "\"a2\"" && second.validators.lastModifiedSeconds == Self.published + 60)
        }
    }

    @Test("into a file: the bytes written, and no file for a 304 or a refused download")
    func toFile() async throws {
        let directory = NSTemporaryDirectory() + "httpdownload-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withServer { server in
            let body = String(repeating: "0123456789", count: 1000)
            server.set("/db.xz", .init(body: body, etag: "\"d1\""))
            let path = directory + "/db.xz"
            guard case .downloaded(let download) = try await Self.downloader().download(server.url("/db.xz"), toFile: path) else {
                Issue.record("expected a download")
                return
            }
            #expect(download.body == 10_000)
            #expect(FileManager.default.contents(atPath: path) == Data(body.utf8))
            try FileManager.default.removeItem(atPath: path)

            guard case .notModified = try await Self.downloader().download(
                server.url("/db.xz"), validators: download.validators, toFile: path) else {
                Issue.record("expected 304")
                return
            }
            #expect(!FileManager.default.fileExists(atPath: path))

            let error = await failure { () async throws(DownloadError) in
                try await Self.downloader(maxBytes: 5_000).download(server.url("/db.xz"), toFile: path)
            }
            guard case .tooLarge(5_000)? = error.map(Kind.init) else {
                Issue.record("expected tooLarge, got \(String(describing: error))")
                return
            }
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test("a body over the cap is refused while it streams in: the answer never ends, yet the download fails at once")
    func overTheCapMidStream() async throws {
        try await withServer { server in
            // No Content-Length (chunked), and no end after the body: only counting as the bytes
            // arrive can refuse it before the 60-second time limit.
            server.set("/big", .init(body: String(repeating: "x", count: 64 * 1024), delivery: .stallAfterBody))
            let started = ContinuousClock.now
            let error = await failure { () async throws(DownloadError) in
                try await Self.downloader(maxBytes: 1_000, timeout: .seconds(60)).download(server.url("/big"))
            }
            guard case .tooLarge(1_000)? = error.map(Kind.init) else {
                Issue.record("expected tooLarge, got \(String(describing: error))")
                return
            }
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(error?.description == "the download is larger than 1000 bytes")

            // A declared Content-Length over the cap is refused before the body.
            server.set("/declared", .init(body: String(repeating: "y", count: 2_000)))
            let declared = await failure { () async throws(DownloadError) in
                try await Self.downloader(maxBytes: 1_000).download(server.url("/declared"))
            }
            guard case .tooLarge(1_000)? = declared.map(Kind.init) else {
                Issue.record("expected tooLarge, got \(String(describing: declared))")
                return
            }
            // Exactly at the cap is fine.
            server.set("/exact", .init(body: String(repeating: "z", count: 1_000)))
            guard case .downloaded(let exact) = try await Self.downloader(maxBytes: 1_000).download(server.url("/exact")) else {
                Issue.record("expected a download")
                return
            }
            #expect(exact.body.count == 1_000)
        }
    }

    @Test("a status other than 200 and 304 is an error naming it")
    func refusedStatus() async throws {
        try await withServer { server in
            server.set("/broken", .init(status: .internalServerError, body: "oops", etag: "\"x\""))
            let error = await failure { () async throws(DownloadError) in try await Self.downloader().download(server.url("/broken")) }
            guard case .status(500)? = error.map(Kind.init) else {
                Issue.record("expected status 500, got \(String(describing: error))")
                return
            }
            #expect(error?.description == "HTTP status 500")
            let missing = await failure { () async throws(DownloadError) in try await Self.downloader().download(server.url("/missing")) }
            guard case .status(404)? = missing.map(Kind.init) else {
                Issue.record("expected status 404, got \(String(describing: missing))")
                return
            }
        }
    }

    @Test("a server that never answers, or never ends its answer, times out at the limit")
    func timeout() async throws {
        try await withServer { server in
            server.set("/silent", .init(body: "never sent", delivery: .never))
            server.set("/slow", .init(body: "a first part", delivery: .stallAfterBody))
            for path in ["/silent", "/slow"] {
                let started = ContinuousClock.now
                let error = await failure { () async throws(DownloadError) in
                    try await Self.downloader(timeout: .milliseconds(300)).download(server.url(path))
                }
                let elapsed = ContinuousClock.now - started
                guard case .timedOut(.milliseconds(300))? = error.map(Kind.init) else {
                    Issue.record("\(path): expected a timeout, got \(String(describing: error))")
                    continue
                }
                #expect(error?.description == "no complete answer within 300 ms")
                #expect(elapsed >= .milliseconds(300), "\(path)")
                #expect(elapsed < .seconds(10), "\(path)")
            }
            #expect(server.requests.map(\.path) == ["/silent", "/slow"])
        }
    }

    @Test("nothing listening: the connection error, not only a timeout (AsyncHTTPClient retries the connection until the limit)")
    func transport() async throws {
        let server = try await LoopbackHTTPServer()
        let url = server.url("/gone")
        try await server.shutdown()
        let error = await failure { () async throws(DownloadError) in
            try await Self.downloader(timeout: .milliseconds(500)).download(url)
        }
        guard case .transport? = error.map(Kind.init) else {
            Issue.record("expected a transport error, got \(String(describing: error))")
            return
        }
        #expect(error?.description.lowercased().contains("refused") == true, "\(String(describing: error))")
    }
}

/// The error's case, comparable (the transport error's payload is not).
private enum Kind: Equatable {
    case status(UInt), tooLarge(Int), timedOut(Duration), cannotWrite(String), transport

    init(_ error: DownloadError) {
        switch error {
        case .status(let code): self = .status(code)
        case .tooLarge(let limit): self = .tooLarge(limit)
        case .timedOut(let limit): self = .timedOut(limit)
        case .cannotWrite(let path): self = .cannotWrite(path)
        case .transport: self = .transport
        }
    }
}

/// The error `body` throws; nil when it succeeds.
private func failure<T>(_ body: () async throws(DownloadError) -> T) async -> DownloadError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error
    }
}
