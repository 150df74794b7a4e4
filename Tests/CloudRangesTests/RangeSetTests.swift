import AsyncHTTPClient
import Foundation
import IPAddress
import Logging
import Testing
@testable import CloudRanges

private func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "cloudranges-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func address(_ text: String) -> IPAddress { IPAddress(text)! }

/// Fails the test instead of hanging when `body` takes longer than `seconds`.
private func withDeadline<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw DeadlineExceeded()
        }
        group.cancelAll()
        return value
    }
}

private struct DeadlineExceeded: Error {}

@Suite("Range table")
struct RangeTableTests {
    @Test("Most specific prefix wins across providers; specific services beat provider-wide ones")
    func classification() throws {
        let aws = try RangeParser.parse(try Fixture.data("aws-ip-ranges.json"), format: .aws, provider: "aws")
        let azure = try RangeParser.parse(try Fixture.data("azure-service-tags.json"), format: .azure, provider: "azure")
        let table = RangeTable(aws.ranges + azure.ranges + [CloudRange(prefix: IPPrefix("52.94.1.128/25")!, provider: "override")])
        #expect(table.classify(address("3.5.141.7"))?.service == "S3") // AMAZON and S3 publish the same /22
        #expect(table.classify(address("52.94.0.1")) == Classification(provider: "aws", service: "AMAZON", region: "us-east-1", prefix: IPPrefix("52.94.0.0/22")!))
        #expect(table.classify(address("52.94.1.1"))?.service == "EC2")
        #expect(table.classify(address("52.94.1.200"))?.provider == "override")
        #expect(table.classify(address("20.36.40.1"))?.service == "AzureStorage")
        #expect(table.classify(address("2600:1f18:1234::1"))?.region == "us-east-1")
        #expect(table.classify(address("::ffff:18.208.1.1"))?.service == "EC2")
        #expect(table.classify(address("8.8.8.8")) == nil)
        #expect(table.classify(address("2001:db8::1")) == nil)
    }

    @Test("Statistics: prefix counts and covered address share per provider")
    func statistics() {
        let table = RangeTable([
            CloudRange(prefix: IPPrefix("10.0.0.0/8")!, provider: "a"),
            CloudRange(prefix: IPPrefix("10.1.0.0/16")!, provider: "a"), // inside the /8: not counted twice
            CloudRange(prefix: IPPrefix("11.0.0.0/8")!, provider: "a"),
            CloudRange(prefix: IPPrefix("2001:db8::/32")!, provider: "b"),
            CloudRange(prefix: IPPrefix("192.0.2.0/24")!, provider: "b"),
        ])
        let stats = table.statistics()
        #expect(stats.map(\.provider) == ["a", "b"])
        #expect(stats[0].ipv4Prefixes == 3 && stats[0].ipv6Prefixes == 0)
        #expect(stats[0].ipv4Addresses == 2 << 24)
        #expect(stats[0].ipv4Share == 2.0 / 256.0)
        #expect(stats[1].ipv4Addresses == 256)
        #expect(stats[1].ipv6Share == 1.0 / 4_294_967_296.0)
    }
}

@Suite("Range set refresh", .timeLimit(.minutes(1)))
struct RangeSetTests {
    @Test("File sources: load, keep the last good data when the file breaks, pick up changes")
    func fileSources() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/hosting.txt"
        try "198.51.100.0/24\n".write(toFile: path, atomically: true, encoding: .utf8)
        let set = RangeSet(sources: [
            RangeSource(name: "hosting", location: .file(path)),
            RangeSource(name: "gcp", location: .file(Fixture.path("gcp-cloud.json"))),
        ])
        #expect(set.classify(address("198.51.100.1")) == nil) // nothing loaded yet
        var statuses = await set.refresh()
        #expect(statuses.map(\.ranges) == [1, 5])
        #expect(statuses[1].malformed == 1)
        #expect(set.classify(address("198.51.100.1"))?.provider == "hosting")
        #expect(set.classify(address("34.80.1.1"))?.region == "asia-east1")

        // Broken file: the error shows, the old data stays.
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        statuses = await set.refresh()
        #expect(statuses[0].lastError?.contains("empty") == true)
        #expect(statuses[0].consecutiveFailures == 1)
        #expect(statuses[0].ranges == 1)
        #expect(set.classify(address("198.51.100.1"))?.provider == "hosting")

        // Missing file: same.
        try FileManager.default.removeItem(atPath: path)
        statuses = await set.refresh()
        #expect(statuses[0].consecutiveFailures == 2)
        #expect(set.classify(address("198.51.100.1"))?.provider == "hosting")

        // Repaired and changed: picked up, error cleared.
        try "203.0.113.0/24\n".write(toFile: path, atomically: true, encoding: .utf8)
        statuses = await set.refresh()
        #expect(statuses[0].lastError == nil && statuses[0].consecutiveFailures == 0)
        #expect(set.classify(address("198.51.100.1")) == nil)
        #expect(set.classify(address("203.0.113.9"))?.provider == "hosting")
        #expect(set.table.count == 6)
    }

    @Test("run() refreshes on its interval and stops when cancelled")
    func periodicRefresh() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/list.txt"
        try "198.51.100.0/24\n".write(toFile: path, atomically: true, encoding: .utf8)
        let set = RangeSet(sources: [RangeSource(name: "hosting", location: .file(path))], refreshInterval: .milliseconds(50))
        let running = Task { await set.run() }
        func waitFor(_ text: String) async throws -> Bool {
            for _ in 0..<200 {
                if set.classify(IPAddress(text)!) != nil { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        #expect(try await waitFor("198.51.100.1"))
        try "203.0.113.0/24\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await waitFor("203.0.113.1"))
        #expect(set.classify(IPAddress("198.51.100.1")!) == nil)
        running.cancel()
        await running.value
    }

    @Test("HTTP sources: conditional requests, failures keep data, changes swap in without a dropped lookup, disk cache survives a restart")
    func httpSources() async throws {
        let server = try await LoopbackHTTPServer()
        let cache = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: cache) }
        do {
            try await withDeadline(45) {
                try await Self.exerciseHTTPSources(server, cache: cache)
            }
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }

    private static func exerciseHTTPSources(_ server: LoopbackHTTPServer, cache: String) async throws {
        let aws = String(decoding: try Fixture.data("aws-ip-ranges.json"), as: UTF8.self)
        server.set("/ip-ranges.json", .init(body: aws, etag: "\"v1\"", lastModified: "Sat, 21 Nov 2026 15:11:33 GMT", contentType: "application/json"))
        server.set("/hosting.txt", .init(body: "198.51.100.0/24\n", etag: "\"h1\"", contentType: "text/plain"))
        let sources = [
            RangeSource(name: "aws", location: .url(server.url("/ip-ranges.json"))),
            RangeSource(name: "hosting", location: .url(server.url("/hosting.txt"))),
        ]
        let set = RangeSet(sources: sources, cacheDirectory: cache, requestTimeout: .seconds(5))

        var statuses = await set.refresh()
        #expect(statuses.map(\.ranges) == [12, 1])
        #expect(statuses.allSatisfy { $0.origin == .network && $0.lastError == nil })
        #expect(set.classify(address("18.208.7.7"))?.service == "EC2")

        // Second refresh: conditional requests, 304, nothing rebuilt.
        let tableBefore = set.table
        statuses = await set.refresh()
        let conditional = server.requests.suffix(2)
        #expect(conditional.map { $0.headers.first(name: "If-None-Match") } == ["\"v1\"", "\"h1\""])
        #expect(conditional.first?.headers.first(name: "If-Modified-Since") == "Sat, 21 Nov 2026 15:11:33 GMT")
        #expect(statuses.allSatisfy { $0.lastError == nil && $0.ranges > 0 })
        #expect(set.table.count == tableBefore.count)

        // The hosting source starts failing (500, then an empty body): its ranges stay.
        server.set("/hosting.txt", .init(status: .internalServerError, body: "oops"))
        statuses = await set.refresh()
        #expect(statuses[1].lastError?.contains("HTTP 500") == true)
        #expect(statuses[1].ranges == 1)
        #expect(set.classify(address("198.51.100.7"))?.provider == "hosting")
        server.set("/hosting.txt", .init(body: "\n", etag: "\"h-empty\""))
        statuses = await set.refresh()
        #expect(statuses[1].lastError?.contains("empty") == true)
        #expect(statuses[1].consecutiveFailures == 2)
        #expect(set.classify(address("198.51.100.7"))?.provider == "hosting")
        #expect(set.classify(address("18.208.7.7"))?.provider == "aws")

        // The source changes while lookups run: every lookup answers (old or new data), and the new
        // data is in place once the refresh returns.
        server.set("/hosting.txt", .init(body: "198.51.100.0/24\n203.0.113.0/24\n", etag: "\"h2\""))
        let lookups = Task.detached { () -> (total: Int, misses: Int) in
            var total = 0, misses = 0
            while !Task.isCancelled {
                if set.classify(IPAddress("198.51.100.7")!) == nil { misses += 1 }
                total += 1
                if total % 1024 == 0 { await Task.yield() }
            }
            return (total, misses)
        }
        statuses = await set.refresh()
        try await Task.sleep(for: .milliseconds(20))
        lookups.cancel()
        let counted = await lookups.value
        #expect(counted.total > 0)
        #expect(counted.misses == 0)
        #expect(statuses[1].lastError == nil && statuses[1].ranges == 2)
        #expect(set.classify(address("203.0.113.50"))?.provider == "hosting")

        // Restart without network: the cache answers.
        let unreachable = [
            RangeSource(name: "aws", location: .url(server.url("/ip-ranges.json"))),
            RangeSource(name: "hosting", location: .url(server.url("/hosting.txt"))),
        ]
        server.set("/ip-ranges.json", .init(status: .serviceUnavailable))
        server.set("/hosting.txt", .init(status: .serviceUnavailable))
        let restarted = RangeSet(sources: unreachable, cacheDirectory: cache, requestTimeout: .seconds(5))
        await restarted.loadCache()
        #expect(restarted.classify(IPAddress("203.0.113.50")!)?.provider == "hosting")
        #expect(restarted.classify(IPAddress("18.208.7.7")!)?.service == "EC2")
        let afterFailure = await restarted.refresh()
        #expect(afterFailure.allSatisfy { $0.origin == .cache && $0.lastError != nil && $0.ranges > 0 })
        #expect(restarted.classify(IPAddress("18.208.7.7")!)?.provider == "aws")
        // And the cached ETag makes the next request conditional.
        server.set("/ip-ranges.json", .init(body: aws, etag: "\"v1\""))
        _ = await restarted.refresh()
        #expect(server.requests.last(where: { $0.path == "/ip-ranges.json" })?.headers.first(name: "If-None-Match") == "\"v1\"")
    }

    @Test("Azure: the download page's ServiceTags_Public link is followed, and not re-fetched while unchanged")
    func azureDownloadPage() async throws {
        let server = try await LoopbackHTTPServer()
        do {
            try await withDeadline(30) {
                let tags = String(decoding: try Fixture.data("azure-service-tags.json"), as: UTF8.self)
                let link = server.url("/download/7/1/D/71D86715/ServiceTags_Public_20261116.json")
                server.set("/download/details.aspx?id=56519", .init(
                    body: "<html><body><a href=\"\(link)\" class=\"mscom-link\">Download</a></body></html>", contentType: "text/html; charset=utf-8"))
                server.set("/download/7/1/D/71D86715/ServiceTags_Public_20261116.json", .init(body: tags, contentType: "application/json"))
                let set = RangeSet(sources: [RangeSource(name: "azure", location: .url(server.url("/download/details.aspx?id=56519")))], requestTimeout: .seconds(5))
                let statuses = await set.refresh()
                #expect(statuses[0].ranges == 12 && statuses[0].lastError == nil)
                #expect(set.classify(IPAddress("20.53.1.1")!)?.service == "AzureCloud")
                let before = server.requests.count
                _ = await set.refresh()
                #expect(server.requests.count == before + 1) // the page only
                #expect(serviceTagsLink("no link here") == nil)
            }
        } catch {
            try await server.shutdown()
            throw error
        }
        try await server.shutdown()
    }
}

/// The link finder, reachable from tests.
private func serviceTagsLink(_ html: String) -> String? {
    RangeSet.serviceTagsLink(in: Data(html.utf8))
}
