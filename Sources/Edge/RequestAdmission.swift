public import HTTPTypes
public import IPAddress
public import Logging
import Metrics
import TextFormats

/// The per-network limits and bans every request is admitted against.
public struct RequestLimits: Sendable {
    /// In-flight budgets, taken per request head at the channel (`ConnectionLifecycleHandler`).
    public var reads: InFlightLimiter
    public var claims: InFlightLimiter
    /// One token bucket per network for every route (429 when empty).
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

/// A refusal: status, the words the client reads and the headers that go with them. Every
/// refusal of the game is one of these, rendered by `ErrorBody`, whichever path answers.
public struct Refusal: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields
    /// Why a ban rule refused the request ("path", "user-agent"): whoever answers logs
    /// "request banned" with it, on the request's logger (its id and client).
    public var bannedBy: String?
    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:], bannedBy: String? = nil) {
        self.status = status
        self.message = message
        self.headers = headers
        self.bannedBy = bannedBy
    }

    /// The log line a ban-rule refusal leaves, whichever path answered.
    public func log(to logger: Logger) {
        if let bannedBy { logger.info("request banned", metadata: ["reason": "\(bannedBy)"]) }
    }
}

/// Admission: the one decision every request passes, on every path — the router
/// (`AdmissionMiddleware`) and the answers given on the event loop (`FastResponseHandler`'s
/// responder) call the same `admit`, in the same order: ban rules (user agent, path), a
/// banned network, the network's token bucket (strikes lead to a ban), the route's
/// data-center policy. The in-flight budgets come earlier, per head, at the channel.
public struct RequestAdmission: Sendable {
    public struct DataCenters: Sendable {
        public var policy: DataCenterPolicy
        public var classify: @Sendable (IPAddress) -> DataCenterTag?
        public init(policy: DataCenterPolicy, classify: @escaping @Sendable (IPAddress) -> DataCenterTag?) {
            self.policy = policy
            self.classify = classify
        }
    }

    public enum Verdict: Sendable {
        /// Serve it; `dataCenter` is the client's provider when the route tags them.
        case admitted(dataCenter: DataCenterTag?)
        case refused(Refusal)
    }

    public let limits: RequestLimits
    public let rules: RuleBook
    public let dataCenters: DataCenters?

    private let forbidden = Counter(label: "ipquest_requests_forbidden_total")
    private let limited = Counter(label: "ipquest_requests_rate_limited_total")
    private let banned = Counter(label: "ipquest_bans_total")
    private let refusedBanned = Counter(label: "ipquest_requests_refused_banned_total")

    public init(limits: RequestLimits, rules: RuleBook, dataCenters: DataCenters? = nil) {
        self.limits = limits
        self.rules = rules
        self.dataCenters = dataCenters
    }

    /// - Parameters:
    ///   - path: the normalized path (`RequestPath.normalized`).
    ///   - client: the attributed client; nil when a trusted proxy named none readably —
    ///     such a request keys no limit (its only candidate would be the proxy, and every
    ///     client behind it would pay).
    public func admit(path: String, userAgent: String?, client: IPAddress?, logger: Logger? = nil) -> Verdict {
        if let reason = rules.violation(userAgent: userAgent, path: path) {
            forbidden.increment()
            return .refused(Refusal(.forbidden, "forbidden", bannedBy: reason))
        }
        guard let client else { return .admitted(dataCenter: nil) }
        let key = NetworkKey(client)
        if limits.bans.isBanned(key) {
            refusedBanned.increment()
            return .refused(Refusal(.forbidden, "your network \(key) is banned for a while after too many refused requests"))
        }
        if let network = limits.network, case .limited(let retryAfter) = network.acquire(key) {
            limited.increment()
            if let strikes = limits.strikes, case .limited = strikes.acquire(key) {
                limits.bans.ban(key, forSeconds: limits.banSeconds)
                banned.increment()
                logger?.notice("network banned", metadata: ["network": "\(key)", "seconds": "\(limits.banSeconds)"])
            }
            return .refused(Refusal(.tooManyRequests, "too many requests from your network; retry in \(retryAfter) s",
                                    headers: [.retryAfter: "\(retryAfter)"]))
        }
        guard let dataCenters else { return .admitted(dataCenter: nil) }
        let action = dataCenters.policy.action(for: path)
        guard action != .allow, let tag = dataCenters.classify(client) else { return .admitted(dataCenter: nil) }
        Counter(label: "ipquest_datacenter_requests_total", dimensions: [("provider", tag.provider), ("action", action.rawValue)]).increment()
        if action == .deny {
            return .refused(Refusal(.forbidden, "requests from data-center networks are not accepted here: \(client) is in \(tag.provider)'s published ranges"))
        }
        return .admitted(dataCenter: tag)
    }
}

/// How every error answer is written: JSON (`{"error": …, "status": …}`) under `/api/`, a
/// line of plain text elsewhere, never stored by caches unless the headers say otherwise.
public enum ErrorBody {
    public static func isJSON(path: String) -> Bool { path.hasPrefix("/api/") }

    public static func parts(status: HTTPResponse.Status, headers: HTTPFields, message: String, json: Bool) -> (HTTPFields, String) {
        var headers = headers
        let body: String
        if json {
            headers[.contentType] = "application/json"
            body = "{\"error\":\(JSONText.quoted(message)),\"status\":\(status.code)}"
        } else {
            headers[.contentType] = "text/plain; charset=utf-8"
            body = message + "\n"
        }
        if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
        return (headers, body)
    }
}
