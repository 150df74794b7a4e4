import CompressNIO
import HTTPServing
public import HTTPTypes
public import NIOCore
import Synchronization
import TextFormats
public import GameRules

// The snapshot as the HTTP layer serves it: each view the engine encodes (Engine/Snapshots.swift)
// stored once per version as a response body with its headers, validator and gzip form.

/// One pre-encoded response body with its validator and compressed form.
public struct EncodedBody: Sendable {
    /// The body as it is sent: one buffer, or several (`/score` is kept in chunks between
    /// refreshes, so only the ones that changed are encoded again).
    public let parts: [ByteBuffer]
    /// The body in one buffer.
    public var body: ByteBuffer { parts.joined() }
    /// Strong validator over the content (the `now` stamp excluded, so an idle board keeps
    /// its ETag and clients keep getting 304).
    public let etag: String
    let compressed: LazyGzip
    /// The response fields of this body, built once per snapshot rather than per request.
    public let headers: HTTPFields
    public let gzipHeaders: HTTPFields
    /// Unix seconds when this content was first published (`Last-Modified`).
    public let modifiedAt: Int64

    init(parts: [ByteBuffer], etag: String, modifiedAt: Int64) {
        self.parts = parts
        self.etag = etag
        self.modifiedAt = modifiedAt
        compressed = LazyGzip(parts)
        headers = [
            .contentType: "application/json",
            .eTag: etag,
            .lastModified: HTTPDate.format(UInt64(max(0, modifiedAt))),
            .cacheControl: "public, max-age=1, stale-while-revalidate=5",
            .vary: "Accept-Encoding",
            .accessControlAllowOrigin: "*",
        ]
        var zipped = headers
        zipped[.contentEncoding] = "gzip"
        gzipHeaders = zipped
    }

    /// The gzip form, compressed by the first request that accepts it (then shared); nil for
    /// small bodies. A snapshot rebuilt under a stream of claims so never pays for bodies
    /// nobody asks for compressed.
    public var gzip: ByteBuffer? { compressed.value }
}

/// A body's gzip form, made once on first use.
final class LazyGzip: Sendable {
    private let source: [ByteBuffer]
    private let made = Mutex<ByteBuffer??>(nil)

    init(_ source: [ByteBuffer]) { self.source = source }

    var value: ByteBuffer? {
        if let done = made.withLock({ $0 }) { return done }
        var reading = source.joined() // compressing moves the copy's reader index; `source` is untouched
        let result: ByteBuffer? = reading.readableBytes > 256 ? try? reading.compress(with: .gzip()) : nil
        return made.withLock { stored in
            if stored == nil { stored = .some(result) } // a concurrent first use may have won
            return stored!
        }
    }
}

/// The read models of one moment, encoded once and served to every reader.
public struct Snapshot: Sendable {
    public var bodies: [String: EncodedBody] = [:]
    public var createdAt: Int64 = 0
    /// The top of each leaderboard (its body holds the first page): later pages inside it
    /// are encoded per request from these; pages past it, from the whole ranking
    /// (`GameEngine.leaderboardPage`). A board of a million players is never sent, nor
    /// encoded, nor kept, whole.
    public var leaderboards: [String: Scoreboard.Ranking] = [:]
    /// Entries in a leaderboard body and in a page without `limit`.
    public static let leaderboardPageSize = 100
    public static let maxLeaderboardPageSize = 1_000

    /// One page of a leaderboard: entries from `offset` on, at most `limit`, wrapped like the
    /// snapshot body (`total_players`, `next_cursor`).
    public static func leaderboardPage(_ ranking: Scoreboard.Ranking, period: Period, residential: Bool, offset: Int, limit: Int, now: Int64) -> String {
        let start = min(offset, ranking.count)
        let page = ranking.entries(start..<min(ranking.count, start + limit))
        return LeaderboardJSON.wrap(LeaderboardJSON.entries(page[...]), period: period, residential: residential, updatedAt: now,
                                    total: ranking.count, limit: limit, next: start + page.count < ranking.count ? start + page.count : nil)
    }

    public subscript(key: String) -> EncodedBody? { bodies[key] }

    public static func scoreKey(_ p: Period) -> String { "score/\(p.rawValue)" }
    public static func leaderboardKey(_ p: Period, residential: Bool = false) -> String {
        "api/leaderboard/\(p.rawValue)\(residential ? "/residential" : "")"
    }
    public static func blocksKey(_ p: Period) -> String { "api/blocks/\(p.rawValue)" }
    /// Capture The IP's `/api/ranks/{period}`.
    public static func ranksKey(_ p: Period) -> String { "api/ranks/\(p.rawValue)" }
    public static let recentKey = "recent"
    public static let apiRecentKey = "api/recent"
}

extension EncodedView {
    /// The response body, written once into one buffer (or given in parts).
    var buffers: [ByteBuffer] {
        if let parts { return parts.buffers }
        return [buffer]
    }

    private var buffer: ByteBuffer {
        if let body { return ByteBuffer(string: body) }
        var out = ByteBufferAllocator().buffer(capacity: head.utf8.count + content.count + tail.utf8.count)
        out.writeString(head)
        out.writeBytes(content)
        out.writeString(tail)
        return out
    }
}

/// Holds the current snapshot; publishing swaps it atomically.
final class SnapshotStore: Sendable {
    private let state = Mutex(Snapshot())

    var current: Snapshot { state.withLock { $0 } }

    /// Publishes new bodies, keeping the old encoding of any body whose content is unchanged
    /// and every body `fresh` does not mention (its period did not move).
    func publish(_ fresh: [String: EncodedView], leaderboards: [String: Scoreboard.Ranking] = [:], now: Int64) {
        let previous = current
        var next = previous
        next.leaderboards.merge(leaderboards) { _, new in new }
        for (key, item) in fresh {
            // Bodies reach tens of MB at a million players: a hash of 32-byte stripes, not FNV's byte at a time.
            let etag = "\"\(item.parts.map { StripeHash.hex($0.contentHash) } ?? StripeHash.hex64(item.content))\""
            if let old = previous.bodies[key], old.etag == etag {
                next.bodies[key] = old
                continue
            }
            next.bodies[key] = EncodedBody(parts: item.buffers, etag: etag, modifiedAt: now)
        }
        state.withLock { $0 = next }
    }
}
