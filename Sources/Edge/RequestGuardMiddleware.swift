import Foundation
public import Hummingbird
import HTTPTypes
public import IPAddress
import Metrics
import Synchronization
import Logging

/// User-agent and path bans. Replaced as a whole on reload (SIGHUP), never edited in place.
public struct RequestRules: Sendable, Equatable {
    public var bannedUserAgents: Set<String> = []
    /// Regular expressions matched against the whole User-Agent value (case-insensitive).
    public var bannedUserAgentPatterns: [String] = []
    /// Exact paths, or prefixes when they end with `*`.
    public var bannedPaths: [String] = []

    public init(bannedUserAgents: Set<String> = [], bannedUserAgentPatterns: [String] = [], bannedPaths: [String] = []) {
        self.bannedUserAgents = bannedUserAgents
        self.bannedUserAgentPatterns = bannedUserAgentPatterns
        self.bannedPaths = bannedPaths
    }

    /// Checks that every pattern compiles; the error names the bad one.
    public func validate() throws(RuleError) {
        for (i, p) in bannedUserAgentPatterns.enumerated() where (try? NSRegularExpression(pattern: p)) == nil {
            throw RuleError(index: i, pattern: p)
        }
    }

    public struct RuleError: Error, CustomStringConvertible, Equatable {
        public var index: Int
        public var pattern: String
        public var description: String { "pattern \(index) '\(pattern)' is not a valid regular expression" }
    }
}

/// The current rules, swapped atomically on reload.
public final class RuleBook: Sendable {
    private struct Compiled {
        var rules: RequestRules
        var patterns: [NSRegularExpression]
        var exactPaths: Set<String>
        var pathPrefixes: [String]
    }

    private let state: Mutex<Compiled>
    private let reloads = Counter(label: "ipquest_rules_reloads_total")

    public init(_ rules: RequestRules = .init()) throws(RequestRules.RuleError) {
        state = Mutex(try RuleBook.compile(rules))
    }

    private static func compile(_ rules: RequestRules) throws(RequestRules.RuleError) -> Compiled {
        try rules.validate()
        let patterns = rules.bannedUserAgentPatterns.compactMap { try? NSRegularExpression(pattern: "^(?:\($0))$", options: [.caseInsensitive]) }
        return Compiled(
            rules: rules,
            patterns: patterns,
            exactPaths: Set(rules.bannedPaths.filter { !$0.hasSuffix("*") }),
            pathPrefixes: rules.bannedPaths.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
        )
    }

    public func replace(_ rules: RequestRules) throws(RequestRules.RuleError) {
        let compiled = try RuleBook.compile(rules)
        state.withLock { $0 = compiled }
        reloads.increment()
    }

    public var rules: RequestRules { state.withLock { $0.rules } }

    /// Why a request is banned, or nil.
    public func violation(userAgent: String?, path: String) -> String? {
        state.withLock { c in
            if c.exactPaths.contains(path) || c.pathPrefixes.contains(where: { path.hasPrefix($0) }) { return "path" }
            guard let ua = userAgent else { return nil }
            if c.rules.bannedUserAgents.contains(ua) { return "user-agent" }
            let range = NSRange(ua.startIndex..., in: ua)
            if c.patterns.contains(where: { $0.firstMatch(in: ua, range: range) != nil }) { return "user-agent" }
            return nil
        }
    }
}

/// Guards every request: bans by user agent and path (403), a token bucket per network for
/// all routes (429; networks that keep hitting it are banned at accept for a while). The
/// in-flight budgets in `Limits` are taken earlier, per request head, by
/// `ConnectionLifecycleHandler.Admission`; this middleware reports them as a gauge.
/// Echoes or assigns `X-Request-ID` and puts it in the request's log metadata.
public struct RequestGuardMiddleware<Context: RequestContext>: RouterMiddleware {
    public struct Limits: Sendable {
        public var reads: InFlightLimiter
        public var claims: InFlightLimiter
        public var network: TokenBucketLimiter<NetworkKey>?
        /// Refusals a network may collect (refilling slowly) before it is banned.
        public var strikes: TokenBucketLimiter<NetworkKey>?
        public var bans: BanList<NetworkKey>
        public var banSeconds: Double

        public init(reads: InFlightLimiter, claims: InFlightLimiter, network: TokenBucketLimiter<NetworkKey>?, strikes: TokenBucketLimiter<NetworkKey>?, bans: BanList<NetworkKey>, banSeconds: Double) {
            self.reads = reads
            self.claims = claims
            self.network = network
            self.strikes = strikes
            self.bans = bans
            self.banSeconds = banSeconds
        }

        /// Whether the client's network is banned now. Checked per request on the client the
        /// request is attributed to (behind a proxy: the one the proxy names), not only at accept.
        public func isBanned(_ client: IPAddress) -> Bool { bans.isBanned(NetworkKey(client)) }
    }

    let limits: Limits
    let rules: RuleBook
    let clientAddress: @Sendable (Request, Context) -> IPAddress?

    let forbidden = Counter(label: "ipquest_requests_forbidden_total")
    let limited = Counter(label: "ipquest_requests_rate_limited_total")
    let banned = Counter(label: "ipquest_bans_total")
    let refusedBanned = Counter(label: "ipquest_requests_refused_banned_total")
    let inFlightGauge = Gauge(label: "ipquest_requests_in_flight")

    public init(limits: Limits, rules: RuleBook, clientAddress: @escaping @Sendable (Request, Context) -> IPAddress?) {
        self.limits = limits
        self.rules = rules
        self.clientAddress = clientAddress
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = RequestID.acceptable(request.headers[RequestID.field]) ?? RequestID.next()
        context.logger[metadataKey: "request_id"] = "\(requestID)"
        // Resolved once: the log line, the ban and the bucket all key on the same client.
        let client = clientAddress(request, context)
        context.logger[metadataKey: "client"] = "\(client.map { "\($0)" } ?? "unattributed")"
        var response = try await guarded(request, client: client, context: context, next: next)
        response.headers[RequestID.field] = requestID
        return response
    }

    private func guarded(_ request: Request, client: IPAddress?, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = RequestPath.normalized(request.uri.path)
        if let reason = rules.violation(userAgent: request.headers[.userAgent], path: path) {
            forbidden.increment()
            context.logger.info("request banned", metadata: ["reason": "\(reason)"])
            return Self.plain(.forbidden, "forbidden\n")
        }
        // Unattributed requests (a trusted proxy that named no readable client) key no limit:
        // their only candidate would be the proxy, and every client behind it would pay.
        if let client, limits.isBanned(client) {
            refusedBanned.increment()
            return Self.plain(.forbidden, "your network \(NetworkKey(client)) is banned for a while after too many refused requests\n")
        }
        if let network = limits.network, let client {
            let key = NetworkKey(client)
            if case .limited(let retryAfter) = network.acquire(key) {
                limited.increment()
                if let strikes = limits.strikes, case .limited = strikes.acquire(key) {
                    limits.bans.ban(key, forSeconds: limits.banSeconds)
                    banned.increment()
                    context.logger.notice("network banned", metadata: ["network": "\(key)", "seconds": "\(limits.banSeconds)"])
                }
                var r = Self.plain(.tooManyRequests, "too many requests from your network; retry in \(retryAfter) s\n")
                r.headers[.retryAfter] = "\(retryAfter)"
                return r
            }
        }
        // The in-flight budgets are taken per request head at the channel
        // (ConnectionLifecycleHandler.Admission), before requests can queue for an executor.
        inFlightGauge.record(limits.reads.inFlight + limits.claims.inFlight)
        return try await next(request, context)
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
