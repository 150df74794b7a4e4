#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
public import Foundation
import HTTPDownload

/// Replaces a libloc database file with a newer published one, as IPFire's `location update`
/// does: ask DNS for the newest version, download the xz-compressed database over HTTP(S) with
/// `If-Modified-Since`, decompress it with `xz`, open it, check it is newer than both the
/// announced version and the current file, verify its signature, and rename it into place
/// (read-only), so the old file is never half replaced.
public struct LocationDatabaseUpdate: Sendable {
    public enum Result: Sendable, Equatable {
        /// The file was replaced by the database created at this time.
        case updated(createdAt: UInt64)
        /// DNS announces no newer version than the current file's.
        case latestAnnounced
        /// Nothing newer to download (304, or the download is not newer).
        case nothingNewer
        /// `refreshAfter` has not passed since the current file was created (`--cron`).
        case recentEnough
    }

    /// Why an update failed; the file in place is untouched.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public var database: String
    public var publicKeyPath: String
    public var url: String
    /// DNS servers for the version lookup (nil: /etc/resolv.conf's).
    public var nameservers: [String]?
    /// Skip when the current file is younger than this (nil: always look).
    public var refreshAfter: Duration?
    /// A download larger than this is refused (today's database is about 30 MB compressed).
    public var maxDownloadBytes = 1 << 30
    /// For the whole download, connection to last byte.
    public var downloadTimeout: Duration = .seconds(600)

    public init(database: String, publicKeyPath: String, url: String, nameservers: [String]? = nil, refreshAfter: Duration? = nil) {
        self.database = database
        self.publicKeyPath = publicKeyPath
        self.url = url
        self.nameservers = nameservers
        self.refreshAfter = refreshAfter
    }

    /// Runs the update; `log` receives the progress lines worth showing (not the failure).
    public func run(now: Date = Date(), log: (String) -> Void) async throws(Failure) -> Result {
        let current = try? LocationDatabase(path: database)
        if let refreshAfter, let current,
           Double(current.createdAt) >= now.timeIntervalSince1970 - Double(refreshAfter.components.seconds) {
            return .recentEnough
        }
        var latest: UInt64?
        do {
            latest = try DatabaseVersionDiscovery.latestVersion(nameservers: nameservers)
        } catch {
            log("Could not discover the latest version over DNS: \(error)")
        }
        if let latest, let current, current.createdAt >= latest { return .latestAnnounced }

        let validators = (latest ?? current?.createdAt).map { DownloadValidators(modifiedSince: $0) } ?? DownloadValidators()
        let directory = (database as NSString).deletingLastPathComponent
        let compressed = (directory as NSString).appendingPathComponent(".location-update-\(getpid()).db.xz")
        defer { try? FileManager.default.removeItem(atPath: compressed) }
        let downloader = HTTPDownloader(maxBytes: maxDownloadBytes, timeout: downloadTimeout, userAgent: "location/ipquest")
        do {
            if case .notModified = try await downloader.download(url, validators: validators, toFile: compressed) { return .nothingNewer }
        } catch {
            throw Failure(description: "Could not download a new database: \(error)")
        }
        let candidate = (directory as NSString).appendingPathComponent(".location-update-\(getpid()).db")
        defer { try? FileManager.default.removeItem(atPath: candidate) }
        try decompress(compressed, to: candidate)
        let downloaded: LocationDatabase
        do { downloaded = try LocationDatabase(path: candidate) } catch {
            throw Failure(description: "The downloaded database is invalid: \(error)")
        }
        if let latest, downloaded.createdAt < latest {
            throw Failure(description: "The downloaded database is older than the published version")
        }
        if let current, downloaded.createdAt <= current.createdAt { return .nothingNewer }
        do {
            try downloaded.verify(publicKeyPEM: String(contentsOfFile: publicKeyPath, encoding: .utf8))
        } catch {
            throw Failure(description: "Could not verify the downloaded database: \(error)")
        }
        chmod(candidate, 0o444)
        guard rename(candidate, database) == 0 else {
            throw Failure(description: "Could not replace \(database): \(String(cString: strerror(errno)))")
        }
        return .updated(createdAt: downloaded.createdAt)
    }

    /// `xz -dc SOURCE > DESTINATION`.
    func decompress(_ source: String, to destination: String) throws(Failure) {
        let xz = Process()
        xz.executableURL = URL(fileURLWithPath: "/usr/bin/xz")
        xz.arguments = ["-dc", source]
        _ = FileManager.default.createFile(atPath: destination, contents: nil)
        xz.standardOutput = FileHandle(forWritingAtPath: destination)
        do { try xz.run() } catch {
            throw Failure(description: "Could not decompress the download (needs /usr/bin/xz): \(error.localizedDescription)")
        }
        xz.waitUntilExit()
        guard xz.terminationStatus == 0 else { throw Failure(description: "Could not decompress the download") }
    }
}
