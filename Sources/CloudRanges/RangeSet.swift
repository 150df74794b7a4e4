public import AsyncHTTPClient
public import Foundation
import HTTPDownload
public import IPAddress
public import Logging
import Metrics
import TextFormats

/// The state of one source after the latest refresh.
public struct SourceStatus: Sendable, CustomStringConvertible {
    public var source: RangeSource
    /// Ranges currently contributed (the last good copy, whatever happened since).
    public var ranges: Int
    /// Malformed entries in the last good copy.
    public var malformed: Int
    /// Where the current data came from.
    public var origin: Origin
    public var lastSuccess: Date?
    public var lastAttempt: Date?
    /// The latest failure, cleared by the next success.
    public var lastError: String?
    public var consecutiveFailures: Int

    public enum Origin: String, Sendable {
        case none, file, network, cache
    }

    public var description: String {
        var text = "\(source): \(ranges) ranges (\(origin.rawValue))"
        if malformed > 0 { text += ", \(malformed) malformed" }
        if let lastError { text += ", failing ×\(consecutiveFailures): \(lastError)" }
        return text
    }
}

/// Cloud provider ranges from several sources, refreshed in the background and swapped in atomically.
///
/// - `classify` is synchronous and cheap (a lock-protected reference read and a table lookup); it
///   never waits for a refresh.
/// - `refresh()` fetches every source (conditional requests with `If-None-Match` /
///   `If-Modified-Since`), parses, and when something changed builds a new `RangeTable` and swaps it.
/// - A source that fails (network, HTTP status, empty or unparsable file) keeps its last good data;
///   the failure is logged and counted in metrics. The table never silently loses a provider.
/// - With a cache directory, each URL source's last good body is kept on disk and loaded by
///   `loadCache()`, so a restart without network still classifies.
///
/// Metrics: `cloudranges_refresh_total{source,result=updated|not_modified|failed}`,
/// `cloudranges_source_ranges{source}`, `cloudranges_source_malformed{source}`,
/// `cloudranges_source_failures{source}` (consecutive), `cloudranges_source_last_success_seconds{source}`
/// (Unix time), `cloudranges_table_prefixes`, `cloudranges_table_build_seconds` (timer).
public final class RangeSet: Sendable {
    public let sources: [RangeSource]
    public let refreshInterval: Duration
    private let current: LockedTable
    private let refresher: Refresher
    private let logger: Logger

    /// - Parameters:
    ///   - cacheDirectory: where last good copies of URL sources are kept; nil for none.
    ///   - requestTimeout: per HTTP request, connection to last byte.
    ///   - maxBodyBytes: larger responses are a failure, refused as they stream in (Azure's file is about 4 MB).
    public init(
        sources: [RangeSource],
        cacheDirectory: String? = nil,
        refreshInterval: Duration = .seconds(6 * 3600),
        httpClient: HTTPClient = .shared,
        requestTimeout: Duration = .seconds(60),
        maxBodyBytes: Int = 64 << 20,
        logger: Logger = Logger(label: "ipquest.cloudranges")
    ) {
        self.sources = sources
        self.refreshInterval = refreshInterval
        self.logger = logger
        current = LockedTable()
        refresher = Refresher(
            sources: sources, cacheDirectory: cacheDirectory,
            downloader: HTTPDownloader(httpClient: httpClient, maxBytes: maxBodyBytes, timeout: requestTimeout,
                                       userAgent: "ipquest-cloudranges/1"),
            logger: logger, publish: current)
    }

    /// The table in use now.
    public var table: RangeTable { current.get() }

    /// The most specific published range containing `address`, from the table in use now.
    public func classify(_ address: IPAddress) -> Classification? { current.get().classify(address) }

    /// Loads the on-disk last good copies (for URL sources that have one) and publishes a table.
    /// Sources already loaded by a refresh are left alone.
    public func loadCache() async { await refresher.loadCache() }

    /// Refreshes every source once and publishes a new table if anything changed. With
    /// `network: false` only file sources are read (URL sources keep what they have, e.g. the cache).
    @discardableResult
    public func refresh(network: Bool = true) async -> [SourceStatus] { await refresher.refreshAll(network: network) }

    /// The latest state of every source.
    public func statuses() async -> [SourceStatus] { await refresher.statuses() }

    /// The first `ServiceTags_Public_YYYYMMDD.json` download link in an HTML page (Azure's
    /// download page names a new file every week).
    static func serviceTagsLink(in html: Data) -> String? {
        let text = String(decoding: html, as: UTF8.self)
        guard let regex = try? Regex(#"https?://[^"'\s<>]*/ServiceTags_Public_[0-9]+\.json"#),
              let match = try? regex.firstMatch(in: text)
        else { return nil }
        return String(text[match.range])
    }

    /// Loads the cache, then refreshes every `refreshInterval` until the task is cancelled.
    public func run() async {
        await loadCache()
        while !Task.isCancelled {
            await refresh()
            do { try await Task.sleep(for: refreshInterval) } catch { break }
        }
    }
}

/// The published table; the only state the request path touches.
private final class LockedTable: @unchecked Sendable {
    private let lock = NSLock()
    private var table = RangeTable.empty

    func get() -> RangeTable {
        lock.lock()
        defer { lock.unlock() }
        return table
    }

    func set(_ new: RangeTable) {
        lock.lock()
        table = new
        lock.unlock()
    }
}

/// Metadata stored beside a cached body.
private struct CacheMetadata: Codable {
    var location: String
    var etag: String?
    var lastModified: String?
    var resolvedURL: String?
    var fetchedAt: Date
}

/// Serialises refreshes; owns the per-source state.
private actor Refresher {
    struct State {
        var parsed: ParsedRanges?
        var origin: SourceStatus.Origin = .none
        /// ETag and Last-Modified of the last good copy.
        var validators = DownloadValidators()
        /// For the Azure download page: the JSON file it pointed to last time.
        var resolvedURL: String?
        var lastSuccess: Date?
        var lastAttempt: Date?
        var lastError: String?
        var consecutiveFailures = 0
        /// Hash of the last file body read, to skip re-parsing an unchanged file.
        var fileBodyHash: Int?
    }

    enum Outcome: String {
        case updated
        case notModified = "not_modified"
        case failed
    }

    let sources: [RangeSource]
    let cacheDirectory: String?
    let downloader: HTTPDownloader
    let logger: Logger
    let publish: LockedTable
    var states: [State]
    var cacheLoaded = false

    init(sources: [RangeSource], cacheDirectory: String?, downloader: HTTPDownloader, logger: Logger, publish: LockedTable) {
        self.sources = sources
        self.cacheDirectory = cacheDirectory
        self.downloader = downloader
        self.logger = logger
        self.publish = publish
        states = Array(repeating: State(), count: sources.count)
    }

    func statuses() -> [SourceStatus] {
        zip(sources, states).map { source, state in
            SourceStatus(source: source, ranges: state.parsed?.ranges.count ?? 0, malformed: state.parsed?.malformed.count ?? 0,
                         origin: state.origin, lastSuccess: state.lastSuccess, lastAttempt: state.lastAttempt,
                         lastError: state.lastError, consecutiveFailures: state.consecutiveFailures)
        }
    }

    func loadCache() {
        guard !cacheLoaded else { return }
        cacheLoaded = true
        guard let cacheDirectory else { return }
        var loaded = false
        for (i, source) in sources.enumerated() {
            guard case .url = source.location, states[i].parsed == nil else { continue }
            let (bodyPath, metaPath) = cachePaths(cacheDirectory, source)
            guard let body = FileManager.default.contents(atPath: bodyPath),
                  let metaData = FileManager.default.contents(atPath: metaPath),
                  let meta = try? JSONDecoder().decode(CacheMetadata.self, from: metaData),
                  meta.location == source.location.description
            else { continue }
            do {
                let parsed = try RangeParser.parse(body, format: source.format, provider: source.name)
                states[i].parsed = parsed
                states[i].origin = .cache
                states[i].validators = DownloadValidators(etag: meta.etag, lastModified: meta.lastModified)
                states[i].resolvedURL = meta.resolvedURL
                loaded = true
                logger.info("loaded cached ranges", metadata: [
                    "source": "\(source)", "ranges": "\(parsed.ranges.count)", "fetched_at": "\(meta.fetchedAt)",
                ])
                recordGauges(i)
            } catch {
                logger.warning("ignoring unreadable cache", metadata: ["source": "\(source)", "error": "\(error)"])
            }
        }
        if loaded { rebuild() }
    }

    func refreshAll(network: Bool) async -> [SourceStatus] {
        var changed = false
        for i in sources.indices {
            if !network, case .url = sources[i].location { continue }
            let outcome = await refresh(i)
            Counter(label: "cloudranges_refresh_total", dimensions: [("source", sources[i].description), ("result", outcome.rawValue)]).increment()
            if outcome == .updated { changed = true }
        }
        if changed { rebuild() }
        return statuses()
    }

    private func refresh(_ i: Int) async -> Outcome {
        let source = sources[i]
        states[i].lastAttempt = Date()
        do {
            let outcome: Outcome
            switch source.location {
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw RefreshError.cannotRead(path)
                }
                if data.hashValue == states[i].fileBodyHash, states[i].parsed != nil {
                    outcome = .notModified
                } else {
                    try accept(i, data, origin: .file)
                    states[i].fileBodyHash = data.hashValue
                    outcome = .updated
                }
            case .url(let url):
                outcome = try await fetch(i, url)
            }
            states[i].lastSuccess = Date()
            states[i].lastError = nil
            states[i].consecutiveFailures = 0
            recordGauges(i)
            return outcome
        } catch {
            states[i].lastError = "\(error)"
            states[i].consecutiveFailures += 1
            recordGauges(i)
            logger.error("range source failed; keeping its last good data", metadata: [
                "source": "\(source)", "error": "\(error)",
                "kept_ranges": "\(states[i].parsed?.ranges.count ?? 0)",
                "consecutive_failures": "\(states[i].consecutiveFailures)",
            ])
            return .failed
        }
    }

    /// Parses a new body; on success it becomes the source's data.
    private func accept(_ i: Int, _ data: Data, origin: SourceStatus.Origin) throws {
        let source = sources[i]
        let parsed = try RangeParser.parse(data, format: source.format, provider: source.name)
        if !parsed.malformed.isEmpty {
            logger.warning("malformed entries skipped", metadata: [
                "source": "\(source)", "count": "\(parsed.malformed.count)",
                "first": "\(parsed.malformed.prefix(5).map(\.description))",
            ])
        }
        states[i].parsed = parsed
        states[i].origin = origin
    }

    private func fetch(_ i: Int, _ url: String) async throws -> Outcome {
        let source = sources[i]
        var target = url
        var conditional = true
        guard case .downloaded(var download) = try await get(url, validators: states[i].validators) else { return .notModified }
        // Azure's download page: follow the link to the current ServiceTags_Public_*.json.
        if source.format == .azure, download.isHTML {
            guard let link = RangeSet.serviceTagsLink(in: download.body) else {
                throw RefreshError.noServiceTagsLink(url)
            }
            if link == states[i].resolvedURL, states[i].parsed != nil { return .notModified }
            target = link
            conditional = false
            // Unconditional, so a 304 is the server's mistake.
            guard case .downloaded(let file) = try await get(link, validators: DownloadValidators()) else {
                throw RefreshError.httpStatus(link, 304)
            }
            download = file
        }
        try accept(i, download.body, origin: .network)
        if conditional { states[i].validators = download.validators }
        states[i].resolvedURL = target == url ? nil : target
        writeCache(i, download.body)
        return .updated
    }

    /// One conditional GET; a refused status names the URL.
    private func get(_ url: String, validators: DownloadValidators) async throws -> DownloadOutcome<Data> {
        do {
            return try await downloader.download(url, validators: validators)
        } catch .status(let code) {
            throw RefreshError.httpStatus(url, code)
        }
    }

    private func writeCache(_ i: Int, _ body: Data) {
        guard let cacheDirectory else { return }
        let source = sources[i]
        let (bodyPath, metaPath) = cachePaths(cacheDirectory, source)
        do {
            try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
            let meta = CacheMetadata(location: source.location.description, etag: states[i].validators.etag,
                                     lastModified: states[i].validators.lastModified, resolvedURL: states[i].resolvedURL, fetchedAt: Date())
            try body.write(to: URL(fileURLWithPath: bodyPath), options: .atomic)
            try JSONEncoder().encode(meta).write(to: URL(fileURLWithPath: metaPath), options: .atomic)
        } catch {
            logger.warning("could not write range cache", metadata: ["source": "\(source)", "error": "\(error)"])
        }
    }

    private func cachePaths(_ directory: String, _ source: RangeSource) -> (String, String) {
        let safeName = source.name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        let base = "\(directory)/\(String(safeName))-\(Refresher.stableHash(source.location.description))"
        return (base + ".data", base + ".meta.json")
    }

    /// FNV-1a, stable across runs (unlike `Hasher`), for cache file names.
    static func stableHash(_ text: String) -> String { String(FNV1a.hash64(text.utf8), radix: 16) }

    private func rebuild() {
        let start = ContinuousClock.now
        let table = RangeTable(states.compactMap(\.parsed).flatMap(\.ranges))
        let elapsed = ContinuousClock.now - start
        publish.set(table)
        Metrics.Timer(label: "cloudranges_table_build_seconds").recordNanoseconds(elapsed.nanoseconds)
        Gauge(label: "cloudranges_table_prefixes").record(table.count)
        logger.info("published range table", metadata: [
            "prefixes": "\(table.count)", "build_ms": "\(elapsed.nanoseconds / 1_000_000)",
        ])
    }

    private func recordGauges(_ i: Int) {
        let name = sources[i].description
        let state = states[i]
        Gauge(label: "cloudranges_source_ranges", dimensions: [("source", name)]).record(state.parsed?.ranges.count ?? 0)
        Gauge(label: "cloudranges_source_malformed", dimensions: [("source", name)]).record(state.parsed?.malformed.count ?? 0)
        Gauge(label: "cloudranges_source_failures", dimensions: [("source", name)]).record(state.consecutiveFailures)
        if let success = state.lastSuccess {
            Gauge(label: "cloudranges_source_last_success_seconds", dimensions: [("source", name)]).record(success.timeIntervalSince1970)
        }
    }
}

/// Why a refresh of one source failed.
public enum RefreshError: Error, CustomStringConvertible {
    case cannotRead(String)
    case httpStatus(String, UInt)
    case noServiceTagsLink(String)

    public var description: String {
        switch self {
        case .cannotRead(let path): return "cannot read \(path)"
        case .httpStatus(let url, let code): return "HTTP \(code) from \(url)"
        case .noServiceTagsLink(let url): return "no ServiceTags_Public_*.json link on \(url)"
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
