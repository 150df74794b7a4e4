public import Edge
import Foundation
public import Hummingbird
import HTTPTypes
import Metrics
import NIOCore
import Synchronization

/// Whole-response cache for anonymous GETs.
///
/// The key is the path, the query and the request headers responses vary on (`Accept`,
/// `Accept-Encoding`). A hit is fresh for `ttl` from its render and is dropped after `tti`
/// without hits; entries are evicted oldest-first past `maxBytes`. Concurrent misses for one
/// key wait for a single render (request coalescing). Requests with credentials or cookies,
/// responses other than 200, and responses with `Set-Cookie` or `Cache-Control: no-store` or
/// `private` are never cached. Hits carry `Age`; responses without a `Cache-Control` get
/// `public, max-age=ttl, stale-while-revalidate=ttl` so a CDN can share the load.
public struct ResponseCacheMiddleware<Context: RequestContext>: RouterMiddleware {
    public struct Configuration: Sendable {
        public var ttl: Duration
        public var tti: Duration
        public var maxBytes: Int
        /// Paths (exact, or prefixes ending in `*`) whose responses may be cached.
        public var paths: [String]

        public init(ttl: Duration = .seconds(2), tti: Duration = .seconds(30), maxBytes: Int = 32 << 20, paths: [String] = ["*"]) {
            self.ttl = ttl
            self.tti = tti
            self.maxBytes = maxBytes
            self.paths = paths
        }
    }

    let store: ResponseCacheStore
    let configuration: Configuration

    public init(configuration: Configuration = .init(), store: ResponseCacheStore = ResponseCacheStore()) {
        self.configuration = configuration
        self.store = store
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get || request.method == .head,
              request.headers[.authorization] == nil, request.headers[.cookie] == nil,
              matches(RequestPath.normalized(request.uri.path))
        else { return try await next(request, context) }

        let key = "\(request.uri.path)?\(request.uri.query ?? "")|\(request.headers[.accept] ?? "")|\(request.headers[.acceptEncoding] ?? "")"
        let now = ContinuousClock.now
        let condition = request.headers[.ifNoneMatch]
        switch store.lookup(key, now: now, tti: configuration.tti) {
        case .hit(let entry):
            return entry.response(now: now, ifNoneMatch: condition)
        case .wait(let pending):
            if let entry = await pending.wait() { return entry.response(now: ContinuousClock.now, ifNoneMatch: condition) }
            return try await next(request, context)
        case .render(let promise):
            do {
                let response = try await next(request, context)
                guard CachedResponse.isCacheable(response) else {
                    store.abandon(key, promise: promise)
                    return response
                }
                let entry = try await CachedResponse.capture(response, now: ContinuousClock.now, ttl: configuration.ttl)
                store.complete(key, entry: entry, promise: promise, maxBytes: configuration.maxBytes)
                return entry.response(now: ContinuousClock.now, ifNoneMatch: condition)
            } catch {
                store.abandon(key, promise: promise)
                throw error
            }
        }
    }

    private func matches(_ path: String) -> Bool {
        configuration.paths.contains { $0.hasSuffix("*") ? path.hasPrefix($0.dropLast()) : path == $0 }
    }
}

/// One stored response.
public struct CachedResponse: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let body: ByteBuffer
    let renderedAt: ContinuousClock.Instant
    let expires: ContinuousClock.Instant

    var size: Int { body.readableBytes + 256 }

    /// The stored answer, or 304 without a body when `ifNoneMatch` names its ETag (or `*`):
    /// a client revalidating gets the same answer from a hit as from the handler.
    func response(now: ContinuousClock.Instant, ifNoneMatch: String? = nil) -> Response {
        var headers = headers
        let age = max(0, (now - renderedAt).components.seconds)
        headers[.age] = "\(age)"
        if let ifNoneMatch, let etag = headers[.eTag], ConditionalRequest.matches(ifNoneMatch, etag) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// Only plain 200s without cookies or no-store/private may be shared.
    static func isCacheable(_ response: Response) -> Bool {
        guard response.status == .ok, response.headers[.setCookie] == nil else { return false }
        let cacheControl = response.headers[.cacheControl]?.lowercased() ?? ""
        return !cacheControl.contains("no-store") && !cacheControl.contains("private")
    }

    /// Collects a cacheable response's body into an entry.
    static func capture(_ response: Response, now: ContinuousClock.Instant, ttl: Duration) async throws -> CachedResponse {
        let collector = BodyCollector()
        try await response.body.write(CollectingWriter(collector: collector))
        var headers = response.headers
        if headers[.cacheControl] == nil {
            let seconds = ttl.components.seconds
            headers[.cacheControl] = "public, max-age=\(seconds), stale-while-revalidate=\(seconds)"
        }
        return CachedResponse(status: response.status, headers: headers, body: collector.buffer, renderedAt: now, expires: now + ttl)
    }
}

private final class BodyCollector: @unchecked Sendable {
    // Only touched by the single task that writes the body.
    var buffer = ByteBuffer()
}

private struct CollectingWriter: ResponseBodyWriter {
    let collector: BodyCollector
    mutating func write(_ buffer: ByteBuffer) async throws {
        var b = buffer
        collector.buffer.writeBuffer(&b)
    }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// The cache's entries and in-flight renders, shared by all requests.
public final class ResponseCacheStore: Sendable {
    enum Lookup {
        case hit(CachedResponse)
        case wait(RenderPromise)
        case render(RenderPromise)
    }

    /// Completed by the one request that renders; the others wait on it.
    final class RenderPromise: Sendable {
        private struct PromiseState {
            var done = false
            var value: CachedResponse?
            var waiters: [CheckedContinuation<CachedResponse?, Never>] = []
        }

        private let state = Mutex(PromiseState())

        func wait() async -> CachedResponse? {
            await withCheckedContinuation { c in
                let ready: CachedResponse?? = state.withLock { s in
                    if s.done { return .some(s.value) }
                    s.waiters.append(c)
                    return nil
                }
                if let ready { c.resume(returning: ready) }
            }
        }

        func fulfil(_ entry: CachedResponse?) {
            let waiters = state.withLock { s in
                s.done = true
                s.value = entry
                defer { s.waiters = [] }
                return s.waiters
            }
            for w in waiters { w.resume(returning: entry) }
        }
    }

    struct State {
        var entries: [String: (entry: CachedResponse, lastHit: ContinuousClock.Instant)] = [:]
        var order: [String] = [] // insertion order, for eviction
        var bytes = 0
        var pending: [String: RenderPromise] = [:]
    }

    private let state = Mutex(State())
    private let hits = Counter(label: "ipquest_cache_hits_total")
    private let misses = Counter(label: "ipquest_cache_misses_total")
    private let coalesced = Counter(label: "ipquest_cache_coalesced_total")

    public init() {}

    func lookup(_ key: String, now: ContinuousClock.Instant, tti: Duration) -> Lookup {
        let result: Lookup = state.withLock { s in
            if let found = s.entries[key] {
                if found.entry.expires > now, now - found.lastHit < tti {
                    s.entries[key]?.lastHit = now
                    return .hit(found.entry)
                }
                s.entries.removeValue(forKey: key)
                s.bytes -= found.entry.size
            }
            if let pending = s.pending[key] { return .wait(pending) }
            let promise = RenderPromise()
            s.pending[key] = promise
            return .render(promise)
        }
        switch result {
        case .hit: hits.increment()
        case .wait: coalesced.increment()
        case .render: misses.increment()
        }
        return result
    }

    func complete(_ key: String, entry: CachedResponse, promise: RenderPromise, maxBytes: Int) {
        state.withLock { s in
            s.pending.removeValue(forKey: key)
            guard entry.size <= maxBytes else { return }
            if let old = s.entries[key] { s.bytes -= old.entry.size } else { s.order.append(key) }
            s.entries[key] = (entry, entry.renderedAt)
            s.bytes += entry.size
            while s.bytes > maxBytes, !s.order.isEmpty {
                let victim = s.order.removeFirst()
                if let gone = s.entries.removeValue(forKey: victim) { s.bytes -= gone.entry.size }
            }
            if s.order.count > 2 * max(s.entries.count, 16) { s.order = s.order.filter { s.entries[$0] != nil } }
        }
        promise.fulfil(entry)
    }

    func abandon(_ key: String, promise: RenderPromise) {
        state.withLock { _ = $0.pending.removeValue(forKey: key) }
        promise.fulfil(nil)
    }

    public var entryCount: Int { state.withLock { $0.entries.count } }
}

