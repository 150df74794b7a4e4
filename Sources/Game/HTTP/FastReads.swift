import Dispatch
import Edge
import HTTPTypes
import IPAddress
import Metrics
import Synchronization

/// The snapshot routes (`/recent`, `/score[/period]`, `/api/recent`, `/api/leaderboard`,
/// `/api/blocks`) answered by `Edge.FastResponseHandler` on the event loop.
///
/// The answer is the router's answer, byte for byte in its content: the same
/// `GameRoutes.snapshotAnswer`, the same guards in the same order (`RequestGuardMiddleware`'s
/// rules and per-network bucket, `DataCenterPolicyMiddleware`), the same request metrics
/// (Hummingbird's `hb.requests` and `http.server.request.duration`). Whatever would not be a
/// plain success — a ban, a data-center client on a tagged or denied route, an empty bucket, a
/// query string, an unknown period — returns nil and goes to the router, which answers it.
/// Checks without side effects come first; taking a token is last, so a request handed on
/// has changed nothing (an empty bucket stays empty for the router's own attempt).
struct FastReads: Sendable {
    let routes: GameRoutes
    let guards: EdgeGuards
    let classifyDataCenters: Bool
    private let metrics = EndpointMetrics()

    init(routes: GameRoutes, guards: EdgeGuards) {
        self.routes = routes
        self.guards = guards
        classifyDataCenters = routes.intelligence?.cloud != nil
    }

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

    func answer(_ request: HTTPRequest, peer: IPAddress?) -> FastResponseHandler.Answer? {
        let start = DispatchTime.now().uptimeNanoseconds
        // No query string: parameters go to the router, which validates them.
        guard let path = request.path, let route = Self.route(path), let peer else { return nil }
        if guards.rules.violation(userAgent: request.headerFields[.userAgent], path: path) != nil { return nil }
        let client = routes.clientAddress(peer: peer, headers: request.headerFields)
        if classifyDataCenters, routes.dataCenterPolicy.action(for: path) != .allow,
           routes.intelligence?.dataCenter(of: client) != nil {
            return nil
        }
        guard let snapshot = routes.snapshotAnswer(route.key, request.headerFields) else { return nil }
        if let network = guards.limits.network, case .limited = network.acquire(NetworkKey(client)) { return nil }
        metrics.record(route: route.template, method: request.method, status: snapshot.status, since: start)
        return .init(head: HTTPResponse(status: snapshot.status, headerFields: snapshot.headers), body: snapshot.body)
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
