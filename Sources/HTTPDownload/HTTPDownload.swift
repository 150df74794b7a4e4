public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import TextFormats

/// The validators of the last good copy of a published file: its `ETag` and `Last-Modified`,
/// sent back as `If-None-Match` and `If-Modified-Since` so an unchanged file answers 304.
public struct DownloadValidators: Sendable, Hashable {
    public var etag: String?
    /// An HTTP date (IMF-fixdate), sent back as the server wrote it.
    public var lastModified: String?

    public init(etag: String? = nil, lastModified: String? = nil) {
        self.etag = etag
        self.lastModified = lastModified
    }

    /// `If-Modified-Since` from a Unix time (e.g. the creation time of the copy in place).
    public init(etag: String? = nil, modifiedSince seconds: UInt64) {
        self.init(etag: etag, lastModified: HTTPDate.format(seconds))
    }

    public var isEmpty: Bool { etag == nil && lastModified == nil }

    /// `lastModified` as a Unix time (nil when absent or not an IMF-fixdate).
    public var lastModifiedSeconds: UInt64? { lastModified.flatMap(HTTPDate.parse) }
}

/// What a conditional download gave.
public enum DownloadOutcome<Body: Sendable>: Sendable {
    /// 304: the copy the validators came from is still current.
    case notModified
    /// 200 with its whole body (within the size cap and the time limit).
    case downloaded(Downloaded<Body>)
}

/// A complete 200 answer: the body and the new validators.
public struct Downloaded<Body: Sendable>: Sendable {
    /// The body (`Data`), or the number of bytes written to the file (`download(_:validators:toFile:)`).
    public var body: Body
    /// The answer's `ETag` and `Last-Modified`, for the next request.
    public var validators: DownloadValidators
    /// The answer's `Content-Type`, if any.
    public var contentType: String?

    public var etag: String? { validators.etag }
    public var lastModified: String? { validators.lastModified }
    /// Whether the answer is an HTML page (`Content-Type` says so).
    public var isHTML: Bool { contentType?.lowercased().contains("html") ?? false }
}

/// Why a download failed. The descriptions are the texts callers show after their own context
/// ("Could not download a new database: HTTP status 500").
public enum DownloadError: Error, CustomStringConvertible {
    /// Any status but 200 and 304 (after redirects).
    case status(UInt)
    /// The body, declared or received so far, is over the cap (`limit` bytes).
    case tooLarge(limit: Int)
    /// No complete answer (head and body) within the time limit.
    case timedOut(Duration)
    /// The file to download into could not be created or written.
    case cannotWrite(path: String)
    /// Connection, TLS, protocol or redirect errors, and cancellation: AsyncHTTPClient's error.
    case transport(any Error)

    public var description: String {
        switch self {
        case .status(let code): return "HTTP status \(code)"
        case .tooLarge(let limit): return "the download is larger than \(limit) bytes"
        case .timedOut(let limit): return "no complete answer within \(Self.text(limit))"
        case .cannotWrite(let path): return "cannot write \(path)"
        case .transport(let error): return "\(error)"
        }
    }

    /// "60 s", "1.5 s", "250 ms".
    static func text(_ duration: Duration) -> String {
        let milliseconds = duration.nanosecondsClamped / 1_000_000
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(Double(milliseconds) / 1000) s"
    }
}

/// Conditional downloads of published files (location databases, cloud range feeds): one GET
/// with the validators of the last good copy, 304 as `.notModified`, only 200 accepted
/// otherwise, the body counted against `maxBytes` as it streams in (a declared `Content-Length`
/// over the cap is refused before any of the body is read), and the whole exchange, head and
/// body, bounded by `timeout`.
///
/// The time limit has two halves with one end. Until the head arrives it is AsyncHTTPClient's
/// request deadline, which on a host that never accepted a connection reports the last
/// connection error ("connection refused") rather than only that time ran out. That deadline
/// ends with the head, so the body is a race in a task group between streaming it and
/// `Task.sleep(until:)` the same end: the first to finish wins and the other is cancelled
/// (AsyncHTTPClient closes the connection of a body nobody reads any more).
public struct HTTPDownloader: Sendable {
    public var httpClient: HTTPClient
    /// Larger bodies are refused while they stream in.
    public var maxBytes: Int
    /// For the whole exchange: connection, head and body.
    public var timeout: Duration
    public var userAgent: String

    public init(httpClient: HTTPClient = .shared, maxBytes: Int, timeout: Duration, userAgent: String) {
        self.httpClient = httpClient
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.userAgent = userAgent
    }

    /// Downloads `url` into memory.
    public func download(_ url: String, validators: DownloadValidators = DownloadValidators()) async throws(DownloadError) -> DownloadOutcome<Data> {
        try await perform(url, validators: validators) { MemorySink() }
    }

    /// Downloads `url` into the file at `path` (created or truncated once the answer is a 200;
    /// removed again when the download fails). The body is the number of bytes written.
    public func download(_ url: String, validators: DownloadValidators = DownloadValidators(), toFile path: String) async throws(DownloadError) -> DownloadOutcome<Int> {
        try await perform(url, validators: validators) { () throws(DownloadError) in try FileSink(path: path) }
    }

    /// The request with its validators.
    func request(_ url: String, validators: DownloadValidators) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: userAgent)
        if let etag = validators.etag { request.headers.add(name: "If-None-Match", value: etag) }
        if let lastModified = validators.lastModified { request.headers.add(name: "If-Modified-Since", value: lastModified) }
        return request
    }

    private func perform<Sink: DownloadSink>(
        _ url: String, validators: DownloadValidators, sink makeSink: @escaping @Sendable () throws(DownloadError) -> Sink
    ) async throws(DownloadError) -> DownloadOutcome<Sink.Body> {
        let (maxBytes, timeout) = (maxBytes, timeout)
        let end = ContinuousClock.now + timeout
        do {
            let response = try await httpClient.execute(request(url, validators: validators),
                                                        deadline: .now() + .nanoseconds(timeout.nanosecondsClamped))
            switch response.status {
            case .notModified: return .notModified
            case .ok: break
            default: throw DownloadError.status(response.status.code)
            }
            if let declared = response.headers.first(name: "Content-Length").flatMap(Int.init), declared > maxBytes {
                throw DownloadError.tooLarge(limit: maxBytes)
            }
            return try await withThrowingTaskGroup(of: DownloadOutcome<Sink.Body>?.self) { group in
                group.addTask { try await Self.receive(response, maxBytes: maxBytes, sink: makeSink) }
                group.addTask {
                    try await Task.sleep(until: end, clock: .continuous)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let outcome = first else { throw DownloadError.timedOut(timeout) }
                return outcome
            }
        } catch let error as DownloadError {
            throw error
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw .timedOut(timeout)
        } catch {
            throw .transport(error)
        }
    }

    /// The body of a 200 into the sink, counted against the cap as it arrives.
    private static func receive<Sink: DownloadSink>(
        _ response: HTTPClientResponse, maxBytes: Int, sink makeSink: () throws(DownloadError) -> Sink
    ) async throws -> DownloadOutcome<Sink.Body> {
        var sink = try makeSink()
        do {
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                guard received <= maxBytes else { throw DownloadError.tooLarge(limit: maxBytes) }
                try sink.write(chunk)
            }
            // A cancelled body stream ends like a complete one: not a download.
            try Task.checkCancellation()
            let validators = DownloadValidators(etag: response.headers.first(name: "ETag"),
                                                lastModified: response.headers.first(name: "Last-Modified"))
            return .downloaded(Downloaded(body: try sink.finish(), validators: validators,
                                          contentType: response.headers.first(name: "Content-Type")))
        } catch {
            sink.abandon()
            throw error
        }
    }
}

/// Where a body goes as it streams in (made and used inside the download's task).
protocol DownloadSink: SendableMetatype {
    associatedtype Body: Sendable
    mutating func write(_ chunk: ByteBuffer) throws(DownloadError)
    mutating func finish() throws(DownloadError) -> Body
    mutating func abandon()
}

struct MemorySink: DownloadSink {
    var data = Data()
    mutating func write(_ chunk: ByteBuffer) { data.append(contentsOf: chunk.readableBytesView) }
    mutating func finish() -> Data { data }
    mutating func abandon() { data = Data() }
}

struct FileSink: DownloadSink {
    let path: String
    let file: FileHandle
    var written = 0

    init(path: String) throws(DownloadError) {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw .cannotWrite(path: path)
        }
        self.path = path
        self.file = file
    }

    mutating func write(_ chunk: ByteBuffer) throws(DownloadError) {
        do { try file.write(contentsOf: Data(chunk.readableBytesView)) } catch { throw .cannotWrite(path: path) }
        written += chunk.readableBytes
    }

    mutating func finish() throws(DownloadError) -> Int {
        do { try file.close() } catch { throw .cannotWrite(path: path) }
        return written
    }

    mutating func abandon() {
        try? file.close()
        try? FileManager.default.removeItem(atPath: path)
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to `Int64`.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return whole.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : whole + attoseconds / 1_000_000_000
    }
}
