public import Edge
public import Hummingbird
import HTTPTypes
import GameRules

/// Every route the game answers, in one list: its path (the router's syntax), which methods
/// it takes, what answers it, and whether whole answers may be shared by the response cache.
///
/// Read by all three places that need to know: the router (`register`: a route without a
/// handler, or a handler without a route, stops the server at start), the answers given on
/// the event loop (`eventLoopRoute`: the snapshot reads, `/ip` and claims), and the guards
/// (`isClaim` picks the in-flight budget; `cachedPaths` feeds `ResponseCacheMiddleware`).
/// Its `path` is also the `route` label of the request metrics on both paths.
public enum RouteTable {
    public typealias Handler = @Sendable (Request, GameRequestContext) async throws -> Response

    public enum Methods: Sendable {
        /// GET (HEAD follows); the other standard methods get 405 naming GET.
        case read
        /// GET (HEAD follows) only.
        case page
        /// Any of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS (Capture The IP claims with any).
        case claim
    }

    public enum Answer: Sendable {
        /// A pre-encoded snapshot; `key` names it from the path's one `{…}` segment, or throws
        /// the 404 for a segment that names none.
        case snapshot(key: @Sendable (_ segment: String?) throws(Refusal) -> String)
        /// A claim: the event loop answers it once durable; the router otherwise.
        case claim
        /// The client's own address (`/ip`).
        case clientAddress
        /// Computed per request by the router's handler.
        case computed
    }

    public struct Route: Sendable {
        public var path: String
        public var methods: Methods
        public var answer: Answer
        /// Whole answers may be shared for a second by the response cache (computed per request
        /// from the live board). Snapshot routes are pre-encoded already; per-client ones never.
        public var shared: Bool
        /// Registered only when its handler exists (`/metrics` without metrics, `/**` without `web.root`).
        public var optional: Bool

        init(_ path: String, _ methods: Methods = .read, _ answer: Answer = .computed, shared: Bool = false, optional: Bool = false) {
            self.path = path
            self.methods = methods
            self.answer = answer
            self.shared = shared
            self.optional = optional
        }
    }

    static func period(_ segment: String?, all: Bool, use: String) throws(Refusal) -> Period {
        guard let text = segment, let period = Period(rawValue: text), all || period != .all else {
            throw Refusal(.notFound, "unknown period '\(segment ?? "")'; use \(use)")
        }
        return period
    }

    public static let routes: [Route] = [
        // Claims and the client's address.
        Route("/claim", .claim, .claim),
        Route("/claim/**", .claim, .claim),
        Route("/ip", .read, .clientAddress),
        Route("/api/ip"),
        // Snapshot reads, pre-encoded once per board version.
        Route("/recent", .read, .snapshot { _ in Snapshot.recentKey }),
        Route("/score", .read, .snapshot { _ in Snapshot.scoreKey(.all) }),
        Route("/score/{period}", .read, .snapshot { segment throws(Refusal) in
            Snapshot.scoreKey(try period(segment, all: false, use: "hour, day, week, month or year"))
        }),
        Route("/api/recent", .read, .snapshot { _ in Snapshot.apiRecentKey }),
        Route("/api/leaderboard", .read, .snapshot { _ in Snapshot.leaderboardKey(.all) }),
        Route("/api/blocks", .read, .snapshot { _ in Snapshot.blocksKey(.all) }),
        Route("/api/ranks", .read, .snapshot { _ in Snapshot.ranksKey(.week) }),
        Route("/api/ranks/{period}", .read, .snapshot { segment throws(Refusal) in
            Snapshot.ranksKey(try period(segment, all: true, use: "all, year, month, week, day or hour"))
        }),
        // Computed per request from the live board.
        Route("/api/users", shared: true),
        Route("/api/countries", shared: true),
        Route("/api/countries/{code}", shared: true),
        Route("/api/as", shared: true),
        Route("/api/as/{asn}", shared: true),
        Route("/api/players/**", shared: true),
        Route("/statusz"),
        Route("/healthz"),
        Route("/metrics", optional: true),
        // Web pages.
        Route("/", .page),
        Route("/index.html", .page),
        Route("/players/**", .page, shared: true),
        Route("/user.html", .page, shared: true),
        Route("/users.html", .page, shared: true),
        Route("/about.html", .page),
        Route("/favicon.ico", .page),
        Route("/plot/{block}", .page, shared: true),
        Route("/player-map.png", .page),
        Route("/blocks/{block}", .page, shared: true),
        Route("/blocks/{block}/map.png", .page, shared: true),
        Route("/countries", .page, shared: true),
        Route("/countries/{code}", .page, shared: true),
        Route("/as/{asn}", .page, shared: true),
        Route("/leaderboard", .page, shared: true),
        Route("/assets/{file}", .page),
        // `web.root`: any other path may be one of its files.
        Route("/**", .page, optional: true),
    ]

    /// The response cache's patterns for the shared routes (a trailing `*` is a prefix).
    public static var cachedPaths: [String] {
        routes.filter(\.shared).map { route in
            guard let brace = route.path.firstIndex(where: { $0 == "{" || $0 == "*" }) else { return route.path }
            return String(route.path[..<brace]) + "*"
        }
    }

    /// The route the event loop may answer for a path without its query string: a snapshot
    /// read, `/ip` or a claim, with the path's variable part (`{…}` or `**`). Nil for every other route.
    public static func eventLoopRoute(for path: Substring) -> (route: Route, segment: String?)? {
        for pattern in eventLoopPatterns {
            guard let fixed = pattern.variableAfter else {
                if path == pattern.route.path { return (pattern.route, nil) }
                continue
            }
            guard path.hasPrefix(fixed) else { continue }
            let variable = path.dropFirst(fixed.count)
            if !variable.isEmpty, pattern.rest || !variable.contains("/") { return (pattern.route, String(variable)) }
        }
        return nil
    }

    /// Whether a request path is a claim (the claims' in-flight budget, not the reads').
    public static func isClaim(_ path: String) -> Bool {
        let path = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard case .claim? = eventLoopRoute(for: path)?.route.answer else { return false }
        return true
    }

    /// A route the event loop answers, split once into its fixed part and whether its one
    /// variable part is a segment (`{…}`) or the rest of the path (`**`).
    private struct Pattern {
        var route: Route
        /// What precedes the variable part; nil for a fixed path.
        var variableAfter: String?
        var rest: Bool
    }

    private static let eventLoopPatterns: [Pattern] = routes.compactMap { route in
        if case .computed = route.answer { return nil }
        guard let variable = route.path.firstIndex(where: { $0 == "{" || $0 == "*" }) else {
            return Pattern(route: route, variableAfter: nil, rest: false)
        }
        precondition(route.path.hasSuffix("}") || route.path.hasSuffix("**"), "\(route.path): the event loop matches one final variable part")
        return Pattern(route: route, variableAfter: String(route.path[..<variable]), rest: route.path.hasSuffix("**"))
    }

    static let otherMethods: [HTTPRequest.Method] = [.post, .put, .delete, .patch]
    static let claimMethods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .options]

    /// Registers every route of the table with its handler. `handlers` must hold exactly the
    /// table's paths (optional ones may be missing): anything else is a programming error.
    public static func register(_ handlers: [String: Handler], on router: Router<GameRequestContext>) {
        let known = Set(routes.map(\.path))
        for path in handlers.keys { precondition(known.contains(path), "handler for \(path), which the route table does not list") }
        for route in routes {
            guard let handler = handlers[route.path] else {
                precondition(route.optional, "route \(route.path) has no handler")
                continue
            }
            let path = RouterPath(stringLiteral: route.path)
            switch route.methods {
            case .claim:
                for method in claimMethods { router.on(path, method: method, use: handler) }
            case .page:
                router.get(path, use: handler)
            case .read:
                router.get(path, use: handler)
                for method in otherMethods {
                    router.on(path, method: method) { _, _ -> Response in
                        throw HTTPError(.methodNotAllowed, headers: [.allow: "GET, HEAD"], message: "method not allowed; use GET")
                    }
                }
            }
        }
    }
}
