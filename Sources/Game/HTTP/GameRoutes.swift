public import Edge
public import HTTPServing
import Foundation
public import Hummingbird
import HTTPTypes
import IPAddress
import Logging
import TextFormats
import GameRules

/// Everything the HTTP handlers need.
public struct GameRoutes: Sendable {
    public let engine: GameEngine
    public let resolver: ClientAddressResolver
    public let claimLimiter: TokenBucketLimiter<NetworkKey>
    /// Prometheus text exposition, when metrics are enabled.
    public let metricsText: (@Sendable () -> String)?
    /// Country, AS and data-center lookups; nil when neither database is configured.
    public let intelligence: AddressIntelligence?
    public let dataCenterPolicy: DataCenterPolicy
    /// Whole-response cache for the pages and API answers computed per request (nil: off).
    public let cache: ResponseCacheMiddleware<GameRequestContext>.Configuration?

    public init(
        engine: GameEngine, resolver: ClientAddressResolver, claimLimiter: TokenBucketLimiter<NetworkKey>,
        metricsText: (@Sendable () -> String)? = nil, intelligence: AddressIntelligence? = nil, dataCenterPolicy: DataCenterPolicy = .init(),
        cache: ResponseCacheMiddleware<GameRequestContext>.Configuration? = nil
    ) {
        self.cache = cache
        self.engine = engine
        self.resolver = resolver
        self.claimLimiter = claimLimiter
        self.metricsText = metricsText
        self.intelligence = intelligence
        self.dataCenterPolicy = dataCenterPolicy
    }

    /// `/ip`: the address as text, readable from any origin, never stored by a cache.
    static let ipFields: HTTPFields = [.contentType: "text/plain; charset=utf-8", .cacheControl: "private, no-store", .accessControlAllowOrigin: "*"]
    static let ipv6Refusal = "IPv4 only: the game counts IPv4 addresses"

    /// The handlers of the API routes of `RouteTable`, by path. Snapshot routes get the
    /// table's generic answer unless their query parameters need more (`/api/leaderboard`,
    /// `/api/blocks`).
    public func handlers() -> [String: RouteTable.Handler] {
        var h: [String: RouteTable.Handler] = [:]
        for route in RouteTable.routes {
            guard case .snapshot(let key) = route.answer else { continue }
            let parameter = route.path.firstIndex(of: "{").map { String(route.path[route.path.index(after: $0)...].dropLast()) }
            h[route.path] = { request, context in
                try serve(try key(parameter.flatMap { context.parameters.get($0) }), request)
            }
        }
        h["/claim"] = { request, context in
            try await claim(request, context, nameText: request.uri.queryParameters.get("name"))
        }
        h["/claim/**"] = { request, context in
            let raw = context.parameters.getCatchAll().joined(separator: "/")
            return try await claim(request, context, nameText: raw.removingPercentEncoding ?? raw)
        }
        h["/ip"] = { request, context in
            let client = try clientAddress(request, context)
            // ipv4.games' page shows its IPv6 notice on any answer but 200.
            guard client.isIPv4 else {
                throw HTTPError(.badRequest, headers: [.accessControlAllowOrigin: "*"], message: "\(Self.ipv6Refusal), and you came from \(client)")
            }
            return Response(status: .ok, headers: Self.ipFields, body: .init(byteBuffer: ByteBuffer(string: "\(client)\n")))
        }
        h["/api/ip"] = { request, context in
            let client = try clientAddress(request, context)
            let datacenter = context.dataCenter.map { JSONText.quoted($0.provider) } ?? "null"
            let body = "{\"ip\":\"\(client)\",\"version\":\(client.isIPv4 ? 4 : 6),\"v4\":\(client.isIPv4),\"datacenter\":\(datacenter)}"
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "private, no-store", .accessControlAllowOrigin: "*"],
                            body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        h["/api/leaderboard"] = { request, _ in
            let period = try period(request)
            let residential = try residential(request)
            let key = Snapshot.leaderboardKey(period, residential: residential)
            let query = request.uri.queryParameters
            guard query.get("limit") != nil || query.get("cursor") != nil else { return try serve(key, request) }
            let limit = try Self.integer(query.get("limit"), name: "limit", default: Snapshot.leaderboardPageSize, 1...Snapshot.maxLeaderboardPageSize)
            let offset = try Self.integer(query.get("cursor"), name: "cursor", default: 0, 0...Int(Int32.max))
            guard let page = engine.leaderboardPage(period, residential: residential, offset: offset, limit: limit) else {
                throw HTTPError(.notFound)
            }
            return jsonResponse(page)
        }
        h["/api/blocks"] = { request, _ in
            try serve(Snapshot.blocksKey(try period(request)), request)
        }
        // Capture The IP's player page data: the player's rank in every block where it holds addresses.
        h["/api/users"] = { request, _ in
            guard let text = request.uri.queryParameters.get("name") else {
                throw HTTPError(.badRequest, message: PlayerName.ValidationError.missing.description)
            }
            let name: PlayerName
            do throws(PlayerName.ValidationError) { name = try PlayerName(validating: String(text)) } catch {
                throw HTTPError(.badRequest, message: error.description)
            }
            let standing = engine.player(name, period: .all)
            let now = engine.clock.seconds
            let nick = JSONText.quoted(name.value)
            let rows = (standing?.blocks ?? []).map { b in
                "{\"block\":\(b.block),\"rank\":\(b.rank),\"max_rank\":\(b.worstRank),\"is_tied\":\(b.isTied),\"claims\":\(b.count),\"nick\":\(nick),\"players\":\(b.players)}"
            }.joined(separator: ",")
            return jsonResponse("{\"name\":\(nick),\"updated_at\":\(now),\"last_updated_at\":\(JSONText.quoted(rfc3339(now))),\"rankings\":[\(rows)]}")
        }
        h["/api/countries"] = { _, _ in
            let list = engine.withBoard { $0.countries() }
            return jsonResponse("{\"countries\":[\(AreaJSON.encode(list, field: "country", value: { JSONText.quoted($0.key) }))]}")
        }
        h["/api/countries/{code}"] = { _, context in
            let text = context.parameters.get("code") ?? ""
            guard let code = ClaimOrigin.normalizedCountry(text) else {
                throw HTTPError(.badRequest, message: "'\(text)' is not a country code; use two letters such as DE")
            }
            guard let area = engine.withBoard({ $0.country(code) }) else {
                throw HTTPError(.notFound, message: "no claims from country \(code)")
            }
            let name = intelligence?.countryName(code).map(JSONText.quoted) ?? "null"
            return jsonResponse(AreaJSON.encode(area, fields: "\"country\":\"\(code)\",\"country_name\":\(name)"))
        }
        h["/api/as"] = { _, _ in
            let list = engine.withBoard { $0.autonomousSystems(limit: 100) }
            return jsonResponse("{\"autonomous_systems\":[\(AreaJSON.encode(list, field: "asn", value: { "\($0.asn ?? 0)" }))]}")
        }
        h["/api/as/{asn}"] = { _, context in
            let text = context.parameters.get("asn") ?? ""
            guard let asn = Self.parseASN(text) else {
                throw HTTPError(.badRequest, message: "'\(text)' is not an AS number; use a number such as 3320 or AS3320")
            }
            guard let area = engine.withBoard({ $0.autonomousSystem(asn) }) else {
                throw HTTPError(.notFound, message: "no claims from AS\(asn)")
            }
            let name = intelligence?.autonomousSystemName(asn).map(JSONText.quoted) ?? "null"
            return jsonResponse(AreaJSON.encode(area, fields: "\"asn\":\(asn),\"as_name\":\(name)"))
        }
        h["/api/players/**"] = { request, context in
            let raw = context.parameters.getCatchAll().joined(separator: "/")
            let text = raw.removingPercentEncoding ?? raw
            let name: PlayerName
            do throws(PlayerName.ValidationError) { name = try PlayerName(validating: text) } catch {
                throw HTTPError(.badRequest, message: error.description)
            }
            let period = try period(request)
            guard let standing = engine.player(name, period: period) else {
                throw HTTPError(.notFound, message: "no player named '\(text)'")
            }
            return jsonResponse(PlayerJSON.encode(standing, period: period))
        }
        h["/statusz"] = { request, context in
            let client = context.peer.flatMap { clientAddress(peer: $0, headers: request.headers) }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store", .accessControlAllowOrigin: "*"],
                            body: .init(byteBuffer: ByteBuffer(string: Statusz.text(engine: engine, client: client, claimLimiter: claimLimiter))))
        }
        h["/healthz"] = { _, _ in
            let (addresses, players) = engine.withBoard { ($0.addressCount, $0.playerCount) }
            return jsonResponse("{\"status\":\"ok\",\"addresses\":\(addresses),\"players\":\(players)}", cache: "no-store")
        }
        if let metricsText {
            h["/metrics"] = { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: metricsText())))
            }
        }
        return h
    }


    func period(_ request: Request) throws -> Period {
        guard let text = request.uri.queryParameters.get("period") else { return .all }
        guard let p = Period(rawValue: text) else {
            throw HTTPError(.badRequest, message: "unknown period '\(text)'; use all, year, month, week, day or hour")
        }
        return p
    }

    /// `residential=1|true` selects the leaderboard over addresses outside data centers.
    func residential(_ request: Request) throws -> Bool {
        guard let text = request.uri.queryParameters.get("residential") else { return false }
        switch text.lowercased() {
        case "1", "true", "yes": return true
        case "0", "false", "no", "": return false
        default: throw HTTPError(.badRequest, message: "residential must be true or false, got '\(text)'")
        }
    }

    /// An integer query parameter within `range` (absent: `default`); else 400 naming it.
    static func integer(_ text: String?, name: String, default value: Int, _ range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw HTTPError(.badRequest, message: "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return n
    }

    /// "3320" or "AS3320" (any case).
    static func parseASN(_ text: String) -> UInt32? {
        let digits = text.lowercased().hasPrefix("as") ? text.dropFirst(2) : Substring(text)
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let n = UInt32(digits), n > 0 else { return nil }
        return n
    }

    func clientAddress(_ request: Request, _ context: GameRequestContext) throws -> IPAddress {
        guard let peer = context.peer else {
            throw HTTPError(.badRequest, message: "cannot determine the client address")
        }
        switch resolver.resolve(peer: peer, fields: request.headers) {
        case .client(let client):
            return client
        case .unattributed(_, let reason):
            throw HTTPError(.badRequest, headers: [.accessControlAllowOrigin: "*"],
                            message: "cannot tell who sent this request: \(reason); nothing was claimed")
        }
    }

    /// The client behind `peer` (the peer itself unless it is a trusted proxy), or nil when a
    /// trusted proxy did not say readably for whom it asks.
    func clientAddress(peer: IPAddress, headers fields: HTTPFields) -> IPAddress? {
        resolver.resolve(peer: peer, fields: fields).client
    }

    // MARK: Claims

    func claim(_ request: Request, _ context: GameRequestContext, nameText: String?) async throws -> Response {
        let client = try clientAddress(request, context)
        if let refusal = claimsLimited(client) { throw refusal }
        guard let address = client.ipv4 else {
            throw HTTPError(.badRequest, headers: [.accessControlAllowOrigin: "*"], message: "\(Self.ipv6Refusal), and you came from \(client)")
        }
        guard let nameText else {
            throw HTTPError(.badRequest, headers: [.accessControlAllowOrigin: "*"], message: PlayerName.ValidationError.missing.description)
        }
        let name: PlayerName
        do throws(PlayerName.ValidationError) { name = try PlayerName(validating: nameText) } catch {
            throw HTTPError(.badRequest, headers: [.accessControlAllowOrigin: "*"], message: error.description)
        }
        let origin = intelligence?.origin(of: address) ?? .unknown
        let outcome: Scoreboard.Outcome
        do {
            outcome = try await engine.claim(address: address, name: name, origin: origin)
        } catch {
            throw Self.claimRefusal(error)
        }
        return ClaimResponse.make(address: address, name: name, origin: origin, outcome: outcome, accept: request.headers[.accept])
    }

    /// The claim bucket's refusal when the client's network has claimed too often (takes a token otherwise).
    func claimsLimited(_ client: IPAddress) -> Refusal? {
        guard case .limited(let retryAfter) = claimLimiter.acquire(NetworkKey(client)) else { return nil }
        return Refusal(.tooManyRequests, "too many claims from your network; retry in \(retryAfter) s",
                       headers: [.retryAfter: "\(retryAfter)", .accessControlAllowOrigin: "*"])
    }

    /// The answer to a claim the engine did not store.
    static func claimRefusal(_ error: any Error) -> Refusal {
        if (error as? ClaimError) == .queueFull {
            return Refusal(.serviceUnavailable, "claims queue full; retry in 1 s", headers: [.retryAfter: "1", .accessControlAllowOrigin: "*"])
        }
        return Refusal(.serviceUnavailable, "claim not stored: \(error)", headers: [.retryAfter: "5", .accessControlAllowOrigin: "*"])
    }

    // MARK: Snapshots

    func serve(_ key: String, _ request: Request) throws -> Response {
        guard let answer = snapshotAnswer(key, request.headers) else { throw HTTPError(.notFound) }
        return Response(status: answer.status, headers: answer.headers, body: answer.body.isEmpty ? .init() : .init(contentsOf: answer.body))
    }

    /// A snapshot body as the client asked for it: 304 when its `If-None-Match` names the
    /// current ETag (or, without `If-None-Match`, when `If-Modified-Since` is not before its
    /// `Last-Modified`), gzip when it accepts that. Shared by the router and `FastRoutes`.
    /// The body comes in parts (`EncodedBody.parts`); none for 304.
    func snapshotAnswer(_ key: String, _ requestHeaders: HTTPFields) -> (status: HTTPResponse.Status, headers: HTTPFields, body: [ByteBuffer])? {
        guard let encoded = engine.snapshot[key] else { return nil }
        if ConditionalRequest.isNotModified(requestHeaders, etag: encoded.etag, modifiedAt: encoded.modifiedAt) {
            return (.notModified, encoded.headers, [])
        }
        if acceptsGzip(requestHeaders), let gzip = encoded.gzip {
            return (.ok, encoded.gzipHeaders, [gzip])
        }
        return (.ok, encoded.headers, encoded.parts)
    }

    func acceptsGzip(_ headers: HTTPFields) -> Bool {
        guard let value = headers[.acceptEncoding] else { return false }
        for part in value.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard fields.first == "gzip" else { continue }
            return !fields.dropFirst().contains { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" }
        }
        return false
    }

    func jsonResponse(_ body: String, cache: String = "public, max-age=1") -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: cache, .accessControlAllowOrigin: "*"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Formats errors with `ErrorBody` (JSON under /api, plain text elsewhere); unknown routes get a 404 body.
struct ErrorFormattingMiddleware: RouterMiddleware {
    typealias Context = GameRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let json = ErrorBody.isJSON(path: request.uri.path)
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "not found: \(request.uri.path)" : error.status.reasonPhrase)
            return Self.errorResponse(status: error.status, headers: error.headers, message: message, json: json)
        } catch let refusal as Refusal {
            return Self.errorResponse(status: refusal.status, headers: refusal.headers, message: refusal.message, json: json)
        }
    }

    static func errorResponse(status: HTTPResponse.Status, headers: HTTPFields, message: String, json: Bool) -> Response {
        let (headers, body) = ErrorBody.parts(status: status, headers: headers, message: message, json: json)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
