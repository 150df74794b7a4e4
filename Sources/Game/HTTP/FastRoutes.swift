import Dispatch
import Edge
import HTTPTypes
import IPAddress
import Metrics
import NIOCore
import Synchronization
import GameRules

/// The game's hot routes answered by the Edge fast paths instead of the router: the snapshot
/// reads (`/recent`, `/score[/period]`, `/api/recent`, `/api/leaderboard`, `/api/blocks`) by
/// both `FastResponseHandler` and `HTTP1FastPathHandler`, and claims (`/claim?name=`,
/// `/claim/NAME`) and `/ip` by the latter on cleartext HTTP/1.1.
///
/// Every answer is the router's answer: the same snapshot bytes (`GameRoutes.snapshotAnswer`),
/// the same claim engine and claim answer (`ClaimResponse`), the same guards in an order that
/// leaves nothing changed when a request is handed on (`RequestGuardMiddleware`'s rules and
/// per-network bucket, `DataCenterPolicyMiddleware`), the same request metrics (Hummingbird's
/// `hb.requests` and `http.server.request.duration`). Whatever is not a plain success — a ban,
/// an empty network bucket, a data-center client on a tagged or denied route, a name to
/// reject, an IPv6 claim, a query string on a read, percent-encoding in a name — returns nil
/// and goes to the router, which answers it. Checks without side effects come first; taking a
/// token is last. Two refusals are answered here because they come after a token was taken:
/// the claim bucket's 429 and the engine's 503s, with the router's text and headers.
struct FastRoutes: Sendable {
    let routes: GameRoutes
    let guards: EdgeGuards
    let classifyDataCenters: Bool
    private let metrics = EndpointMetrics()

    init(routes: GameRoutes, guards: EdgeGuards) {
        self.routes = routes
        self.guards = guards
        classifyDataCenters = routes.intelligence?.cloud != nil
    }

    /// Everything the byte-level fast path may answer.
    func reply(_ request: HTTPRequest, peer: IPAddress?) -> FastReply? {
        guard let path = request.path else { return nil }
        if path.hasPrefix("/claim") { return claim(request, target: path, peer: peer) }
        if path == "/ip" { return ip(request, peer: peer).map(FastReply.answer) }
        return read(request, peer: peer).map(FastReply.answer)
    }

    /// Whether a request target may be one of ours (checked on the raw bytes, before a head
    /// is decoded): the claim prefix, `/ip`, or a snapshot route.
    static func isCandidate(_ target: UnsafeRawBufferPointer) -> Bool {
        func starts(_ prefix: StaticString) -> Bool {
            guard target.count >= prefix.utf8CodeUnitCount else { return false }
            for i in 0..<prefix.utf8CodeUnitCount where target[i] != prefix.utf8Start[i] { return false }
            return true
        }
        if starts("/claim") { return true }
        if target.count == 3 { return starts("/ip") }
        return starts("/recent") || starts("/score") || starts("/api/recent") || starts("/api/leaderboard") || starts("/api/blocks")
    }

    // MARK: Snapshot reads

    /// The snapshot key and the route template (as the router names it in metrics).
    static func route(_ path: String) -> (key: String, template: String)? {
        switch path {
        case "/recent": return (Snapshot.recentKey, "/recent")
        case "/score": return (Snapshot.scoreKey(.all), "/score")
        case "/score/hour", "/score/day", "/score/week", "/score/month":
            return (Snapshot.scoreKey(Period(rawValue: String(path.dropFirst(7)))!), "/score/{period}")
        case "/api/recent": return (Snapshot.apiRecentKey, "/api/recent")
        case "/api/leaderboard": return (Snapshot.leaderboardKey(.all), "/api/leaderboard")
        case "/api/blocks": return (Snapshot.blocksKey(.all), "/api/blocks")
        default: return nil
        }
    }

    func read(_ request: HTTPRequest, peer: IPAddress?) -> FastResponseHandler.Answer? {
        let start = DispatchTime.now().uptimeNanoseconds
        // No query string: parameters go to the router, which validates them.
        guard let path = request.path, let route = Self.route(path), let peer else { return nil }
        guard let client = admitted(request, path: path, peer: peer) else { return nil }
        guard let snapshot = routes.snapshotAnswer(route.key, request.headerFields) else { return nil }
        if !takeNetworkToken(client) { return nil }
        metrics.record(route: route.template, method: request.method, status: snapshot.status, since: start)
        return .init(head: HTTPResponse(status: snapshot.status, headerFields: snapshot.headers), body: snapshot.body)
    }

    // MARK: /ip

    func ip(_ request: HTTPRequest, peer: IPAddress?) -> FastResponseHandler.Answer? {
        let start = DispatchTime.now().uptimeNanoseconds
        // An IPv6 client gets the router's 400.
        guard request.method == .get, let peer, let client = admitted(request, path: "/ip", peer: peer), client.isIPv4 else { return nil }
        if !takeNetworkToken(client) { return nil }
        metrics.record(route: "/ip", method: request.method, status: .ok, since: start)
        return .init(head: HTTPResponse(status: .ok, headerFields: GameRoutes.ipFields), body: ByteBuffer(string: "\(client)\n"))
    }

    // MARK: Claims

    /// The name of `/claim?name=NAME` (the only parameter) or `/claim/NAME` (one segment), when
    /// it needs no decoding; with the route template for metrics.
    static func claimName(_ target: String) -> (name: Substring, template: String)? {
        let utf8 = target.utf8
        let plain: (UInt8) -> Bool = { $0 != UInt8(ascii: "%") && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "#") && $0 != UInt8(ascii: "?") }
        if target.hasPrefix("/claim?name=") {
            let name = target.dropFirst(12)
            // In a query, "+" may mean a space: the router decides.
            guard !name.isEmpty, name.utf8.allSatisfy({ plain($0) && $0 != UInt8(ascii: "+") }) else { return nil }
            return (name, "/claim")
        }
        if target.hasPrefix("/claim/"), utf8.count > 7 {
            let name = target.dropFirst(7)
            guard name.utf8.allSatisfy({ plain($0) && $0 != UInt8(ascii: "/") }) else { return nil }
            return (name, "/claim/**")
        }
        return nil
    }

    func claim(_ request: HTTPRequest, target: String, peer: IPAddress?) -> FastReply? {
        let start = DispatchTime.now().uptimeNanoseconds
        guard request.method == .get, let peer, let (text, template) = Self.claimName(target),
              let name = try? PlayerName(validating: String(text))
        else { return nil }
        let path = template == "/claim" ? "/claim" : target
        guard let client = admitted(request, path: path, peer: peer), let address = client.ipv4 else { return nil }
        if !takeNetworkToken(client) { return nil }
        let method = request.method
        if case .limited(let retryAfter) = routes.claimLimiter.acquire(NetworkKey(client)) {
            metrics.record(route: template, method: method, status: .tooManyRequests, since: start)
            return .answer(Self.error(.tooManyRequests, "too many claims from your network; retry in \(retryAfter) s", retryAfter: retryAfter))
        }
        let origin = routes.intelligence?.origin(of: address) ?? .unknown
        let format = ClaimResponse.format(accept: request.headerFields.value(of: .accept))
        let engine = routes.engine
        let metrics = self.metrics
        return .deferred { done in
            engine.submit(address: address, name: name, origin: origin) { result in
                // Runs on the writer's thread: hand the result over, build the answer on the loop.
                done {
                    let answer: FastResponseHandler.Answer
                    switch result {
                    case .success(let outcome):
                        let (headers, body) = ClaimResponse.parts(address: address, name: name, origin: origin, outcome: outcome, format: format)
                        answer = .init(head: HTTPResponse(status: ClaimResponse.status(format), headerFields: headers), body: body)
                    case .failure(ClaimError.queueFull):
                        answer = Self.error(.serviceUnavailable, "claims queue full; retry in 1 s", retryAfter: 1)
                    case .failure(let error):
                        answer = Self.error(.serviceUnavailable, "claim not stored: \(error)", retryAfter: 5)
                    }
                    metrics.record(route: template, method: method, status: answer.head.status, since: start)
                    return answer
                }
            }
        }
    }

    /// A refusal as the router words it for claims (plain text, CORS open).
    static func error(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int) -> FastResponseHandler.Answer {
        let (headers, body) = ErrorFormattingMiddleware.errorParts(
            status: status, headers: [.retryAfter: "\(retryAfter)", .accessControlAllowOrigin: "*"], message: message, json: false)
        return .init(head: HTTPResponse(status: status, headerFields: headers), body: body)
    }

    // MARK: Guards

    /// The client, when no ban rule or ban, data-center policy or unattributed address stands in the way
    /// (none of these checks changes anything).
    private func admitted(_ request: HTTPRequest, path: String, peer: IPAddress) -> IPAddress? {
        if guards.rules.violation(userAgent: request.headerFields.value(of: .userAgent), path: path) != nil { return nil }
        // Unattributed (the router answers 400 or serves it without limits) or banned (403): the router's.
        guard let client = routes.clientAddress(peer: peer, headers: request.headerFields), !guards.limits.isBanned(client) else { return nil }
        if classifyDataCenters, routes.dataCenterPolicy.action(for: path) != .allow,
           routes.intelligence?.dataCenter(of: client) != nil {
            return nil
        }
        return client
    }

    /// `RequestGuardMiddleware`'s bucket per network; false hands the request to the router,
    /// whose own attempt fails the same way (429, strikes, bans).
    private func takeNetworkToken(_ client: IPAddress) -> Bool {
        guard let network = guards.limits.network else { return true }
        if case .limited = network.acquire(NetworkKey(client)) { return false }
        return true
    }
}

/// Hummingbird's per-endpoint request metrics, recorded for answers the router never saw.
final class EndpointMetrics: Sendable {
    private struct Key: Hashable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    private let cache = Mutex<[Key: (Counter, Metrics.Timer)]>([:])

    func record(route: String, method: HTTPRequest.Method, status: HTTPResponse.Status, since start: UInt64) {
        let key = Key(route: route, method: method, status: status.code)
        let (counter, timer) = cache.withLock { cache in
            if let hit = cache[key] { return hit }
            let dimensions = [
                ("http.route", route), ("http.request.method", method.rawValue), ("http.response.status_code", String(status.code)),
            ]
            let made = (Counter(label: "hb.requests", dimensions: dimensions),
                        Metrics.Timer(label: "http.server.request.duration", dimensions: dimensions, preferredDisplayUnit: .seconds))
            cache[key] = made
            return made
        }
        counter.increment()
        timer.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
    }
}
