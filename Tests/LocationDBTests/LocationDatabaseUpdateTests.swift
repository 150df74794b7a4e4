import Foundation
import LocationDB
import Testing
import TextFormats

/// `LocationDatabaseUpdate` in process, against the loopback resolver and file server of
/// `LocationUpdateCommandTests`: the download's size cap and what a refused download leaves.
@Suite(.timeLimit(.minutes(1)))
struct LocationDatabaseUpdateTests {
    @Test("a download over maxDownloadBytes is refused with its message and leaves the database in place; at the cap it installs")
    func sizeCap() async throws {
        let f = try LocationUpdateCommandTests.Fixture()
        defer { try? FileManager.default.removeItem(atPath: f.directory) }
        try f.install(f.older)
        let resolver = try LoopbackResolver(txt: HTTPDate.format(f.newerCreated))
        defer { resolver.stop() }
        let download = f.newerXZ
        let server = try LoopbackFileServer { _ in (200, download) }
        defer { server.stop() }
        var update = LocationDatabaseUpdate(database: f.installed, publicKeyPath: f.keyPath,
                                            url: "http://127.0.0.1:\(server.port)/databases/1/location.db.xz",
                                            nameservers: ["127.0.0.1:\(resolver.port)"])
        update.maxDownloadBytes = download.count - 1
        do {
            let result = try await update.run { _ in }
            Issue.record("expected a refused download, got \(result)")
        } catch {
            #expect(error.description == "Could not download a new database: the download is larger than \(download.count - 1) bytes")
        }
        #expect(f.installedBytes() == f.older)
        #expect(try f.leftovers().isEmpty)

        update.maxDownloadBytes = download.count
        #expect(try await update.run { _ in } == .updated(createdAt: f.newerCreated))
        #expect(f.installedBytes() == f.newer)
        #expect(try f.leftovers().isEmpty)
        let requests = server.requests.withLock { $0 }
        #expect(requests.map { $0.fields["if-modified-since"] } == [HTTPDate.format(f.newerCreated), HTTPDate.format(f.newerCreated)])
        #expect(requests.map { $0.fields["user-agent"] } == ["location/ipquest", "location/ipquest"])
    }
}
