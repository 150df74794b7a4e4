import CompressNIO
import Foundation
import Hummingbird
import HTTPTypes
import IPAddress
import NIOCore
import Synchronization

/// One static asset compiled into the binary: fingerprinted path, ETag, pre-gzipped body.
struct WebAsset: Sendable {
    let path: String
    let contentType: String
    let body: ByteBuffer
    let gzip: ByteBuffer?
    let etag: String

    init(name: String, ext: String, contentType: String, text: String) {
        let hash = fnv1a64(text)
        path = "/assets/\(name).\(hash.prefix(12)).\(ext)"
        self.contentType = contentType
        var buffer = ByteBuffer(string: text)
        body = buffer
        gzip = try? buffer.compress(with: .gzip())
        etag = "\"\(hash)\""
    }
}

/// The web pages: home, player, block and the assets, on top of the game's read models.
/// Wired by `GameServer` with one `WebSite(routes:).register(on:)` call.
public struct WebSite: Sendable {
    let routes: GameRoutes
    let data = WebData()
    let maps = BlockMapCache()
    let fragments = FragmentCache()
    let css: WebAsset
    let js: WebAsset
    let icon: WebAsset
    /// How often the home page polls the API.
    let pollMilliseconds: Int

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    public init(routes: GameRoutes, pollMilliseconds: Int = 2_000) {
        self.routes = routes
        self.pollMilliseconds = pollMilliseconds
        css = WebAsset(name: "app", ext: "css", contentType: "text/css; charset=utf-8", text: WebStyle.css)
        js = WebAsset(name: "app", ext: "js", contentType: "text/javascript; charset=utf-8", text: WebScript.js)
        icon = WebAsset(name: "icon", ext: "svg", contentType: "image/svg+xml", text: Self.iconSVG)
    }

    var shell: WebPages.Shell { .init(cssPath: css.path, jsPath: js.path, iconPath: icon.path) }
    var engine: GameEngine { routes.engine }

    public func register(on router: Router<GameRequestContext>) {
        router.get("/") { request, context in try home(request, context) }
        router.get("/index.html") { request, context in try home(request, context) }
        router.get("/players/**") { request, context in
            let raw = context.parameters.getCatchAll().joined(separator: "/")
            return player(request, name: raw.removingPercentEncoding ?? raw)
        }
        router.get("/user.html") { request, _ in
            player(request, name: request.uri.queryParameters.get("name") ?? "")
        }
        router.get("/blocks/{block}") { request, context in
            guard let b = Self.blockNumber(context.parameters.get("block")) else { return notFound(request, "No block \(HTML.escape(context.parameters.get("block") ?? "")): blocks are 0 to 255.") }
            return try block(request, b)
        }
        router.get("/blocks/{block}/map.png") { request, context in
            guard let b = Self.blockNumber(context.parameters.get("block")) else { return notFound(request, "No such block.") }
            let map = maps.map(block: b, engine: engine)
            return send(request, body: ByteBuffer(bytes: map.png), gzip: nil, etag: map.etag, contentType: "image/png", cache: "public, max-age=10")
        }
        router.get("/countries") { request, _ in
            let (countries, systems) = engine.withBoard { ($0.countries(), $0.autonomousSystems(limit: 100)) }
            let body = WebPages.areaIndex(shell, countries: countries, systems: systems) { routes.intelligence?.autonomousSystemName($0) }
            return html(request, body, cache: "public, max-age=5")
        }
        router.get("/countries/{code}") { request, context in
            let text = context.parameters.get("code") ?? ""
            guard let code = ClaimOrigin.normalizedCountry(text) else {
                return notFound(request, "<strong>\(HTML.escape(text))</strong> is not a country code: use two letters, such as DE.")
            }
            guard let standing = engine.withBoard({ $0.country(code) }) else {
                return notFound(request, "No claims from country <strong>\(code)</strong> yet.")
            }
            let input = WebPages.AreaInput(key: code, name: routes.intelligence?.countryName(code), standing: standing)
            return html(request, WebPages.area(shell, input), cache: "public, max-age=5")
        }
        router.get("/as/{asn}") { request, context in
            let text = context.parameters.get("asn") ?? ""
            guard let asn = GameRoutes.parseASN(text) else {
                return notFound(request, "<strong>\(HTML.escape(text))</strong> is not an AS number: use a number such as 3320.")
            }
            guard let standing = engine.withBoard({ $0.autonomousSystem(asn) }) else {
                return notFound(request, "No claims from AS\(asn) yet.")
            }
            let input = WebPages.AreaInput(key: "AS\(asn)", name: routes.intelligence?.autonomousSystemName(asn), standing: standing)
            return html(request, WebPages.area(shell, input), cache: "public, max-age=5")
        }
        router.get("/leaderboard") { request, _ in
            let period = period(request)
            let residential = (try? routes.residential(request)) ?? false
            // From the snapshot (decoded once per version), like the home page's board.
            let board = data.leaderboard(engine, period, residential: residential)?.0.players ?? []
            return html(request, WebPages.leaderboard(shell, board, period: period, residential: residential), cache: "public, max-age=5")
        }
        router.get("/assets/{file}") { request, context in
            let path = "/assets/" + (context.parameters.get("file") ?? "")
            guard let asset = [css, js, icon].first(where: { $0.path == path }) else {
                return notFound(request, "No such asset.")
            }
            return send(request, body: asset.body, gzip: asset.gzip, etag: asset.etag, contentType: asset.contentType, cache: "public, max-age=31536000, immutable")
        }
    }

    static func blockNumber(_ text: String?) -> Int? {
        guard let text, !text.isEmpty, text.count <= 3, text.allSatisfy(\.isASCII), let n = Int(text), (0..<256).contains(n), String(n) == text else { return nil }
        return n
    }

    func period(_ request: Request) -> Period {
        request.uri.queryParameters.get("period").flatMap { Period(rawValue: String($0)) } ?? .all
    }

    // MARK: Pages

    func home(_ request: Request, _ context: GameRequestContext) throws -> Response {
        let period = period(request)
        let query = request.uri.queryParameters
        let blocks = data.blocks(engine), board = data.leaderboard(engine, period), recent = data.recent(engine)
        var input = WebPages.HomeInput(
            blocks: blocks?.0,
            leaderboard: board?.0,
            recent: recent?.0,
            clientIP: try? routes.clientAddress(request, context),
            host: Self.host(request),
            period: period,
            boardAll: query.get("board") == "all",
            recentAll: query.get("recent") == "all",
            now: engine.nowSeconds,
            pollMilliseconds: pollMilliseconds
        )
        input.etags = (blocks?.etag ?? "", board?.etag ?? "", recent?.etag ?? "")
        if let blocks {
            input.cachedMap = fragments.get("map|\(blocks.etag)") { WebPages.mapSection(blocks.0) }
        }
        if let board {
            input.cachedBoard = fragments.get("board|\(period.rawValue)|\(input.boardAll)|\(board.etag)") {
                WebPages.boardSection(board.0, period: period, all: input.boardAll)
            }
        }
        return html(request, WebPages.home(shell, input), cache: "private, max-age=5")
    }

    func player(_ request: Request, name text: String) -> Response {
        guard let name = PlayerName(text) else {
            return notFound(request, text.isEmpty ? "Which player? Use /players/NAME." : "No player named <strong>\(HTML.escape(text))</strong>: \(HTML.escape(PlayerName.rule)).")
        }
        let period = period(request)
        guard let standing = engine.player(name, period: period) else {
            return notFound(request, "No player named <strong>\(HTML.escape(text))</strong>.")
        }
        let base = WebPages.playerHref(name.value)
        let joiner = base.contains("?") ? "&" : "?"
        let body = WebPages.player(shell, standing, period: period, linkBase: { "\(base)\(joiner)period=\($0.rawValue)" })
        return html(request, body, cache: "public, max-age=5")
    }

    func block(_ request: Request, _ block: Int) throws -> Response {
        let period = period(request)
        let detail = engine.blockDetail(block, period: period)
        let map = maps.map(block: block, engine: engine)
        let input = WebPages.BlockInput(
            block: block, period: period, standing: detail.standing, top: detail.top,
            mapVersion: String(map.etag.filter { $0 != "\"" }.prefix(12)),
            legend: map.legend, tiedAreas: map.tiedAreas
        )
        return html(request, WebPages.block(shell, input), cache: "public, max-age=5")
    }

    func notFound(_ request: Request, _ messageHTML: String) -> Response {
        html(request, WebPages.notFound(shell, message: messageHTML), status: .notFound, cache: "no-store")
    }

    // MARK: Responses

    static func host(_ request: Request) -> String {
        let raw = request.head.authority ?? ""
        let ok = !raw.isEmpty && raw.count <= 255 && raw.unicodeScalars.allSatisfy { s in
            s.isASCII && (CharacterSet.alphanumerics.contains(s) || ".-:[]".unicodeScalars.contains(s))
        }
        return ok ? raw : "localhost"
    }

    static func securityHeaders(_ headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.xContentTypeOptions] = "nosniff"
        headers[.webReferrerPolicy] = "same-origin"
        headers[.webFrameOptions] = "DENY"
    }

    func html(_ request: Request, _ text: String, status: HTTPResponse.Status = .ok, cache: String) -> Response {
        var buffer = ByteBuffer(string: text)
        let gzip: ByteBuffer? = buffer.readableBytes > 1024 && routes.acceptsGzip(request.headers) ? (try? buffer.compress(with: .gzip())) : nil
        return send(request, body: ByteBuffer(string: text), gzip: gzip, etag: "\"\(fnv1a64(text))\"", contentType: "text/html; charset=utf-8", cache: cache, status: status)
    }

    func send(_ request: Request, body: ByteBuffer, gzip: ByteBuffer?, etag: String, contentType: String, cache: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType,
            .cacheControl: cache,
            .vary: "Accept-Encoding",
        ]
        Self.securityHeaders(&headers)
        if status == .ok {
            headers[.eTag] = etag
            if let match = request.headers[.ifNoneMatch],
               match.split(separator: ",").contains(where: { let t = $0.trimmingCharacters(in: .whitespaces); return t == etag || t == "W/" + etag || t == "*" }) {
                return Response(status: .notModified, headers: headers)
            }
        }
        if let gzip, routes.acceptsGzip(request.headers) {
            headers[.contentEncoding] = "gzip"
            return Response(status: status, headers: headers, body: .init(byteBuffer: gzip))
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    static let iconSVG = """
    <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b3d28"/><rect x="2" y="2" width="5" height="5" fill="#7fd1a8"/><rect x="9" y="2" width="5" height="5" fill="#f2c14e"/><rect x="2" y="9" width="5" height="5" fill="#e58a8a"/><rect x="9" y="9" width="5" height="5" fill="#9db4f0"/></svg>

    """
}

/// Rendered page sections keyed by the snapshot ETags they were made from.
final class FragmentCache: Sendable {
    private let entries = Mutex<[String: String]>([:])

    func get(_ key: String, make: () -> String) -> String {
        if let hit = entries.withLock({ $0[key] }) { return hit }
        let value = make()
        entries.withLock { e in
            if e.count >= 64 { e.removeAll(keepingCapacity: true) }
            e[key] = value
        }
        return value
    }
}

/// Rendered block maps, rebuilt at most every few seconds and only when the board changed.
final class BlockMapCache: Sendable {
    struct Entry: Sendable {
        var png: [UInt8]
        var etag: String
        var boardTag: String
        var builtAt: ContinuousClock.Instant
        var legend: [(name: String, areas: Int)]
        var tiedAreas: Int
    }

    static let minimumAge: Duration = .seconds(3)
    /// A rebuild scans every owner under the board's lock: across all blocks, at most one
    /// rebuild per interval (a crawler walking /blocks/0…255 gets stale maps, not lock time).
    static let rebuildInterval: Duration = .seconds(1)
    private let entries = Mutex<[Int: Entry]>([:])
    private let lastRebuild = Mutex<ContinuousClock.Instant?>(nil)

    func map(block: Int, engine: GameEngine) -> Entry {
        let boardTag = engine.snapshot[Snapshot.blocksKey(.all)]?.etag ?? ""
        let now = ContinuousClock.now
        if let hit = entries.withLock({ $0[block] }) {
            if hit.boardTag == boardTag || now - hit.builtAt < Self.minimumAge { return hit }
            let mayRebuild = lastRebuild.withLock { last -> Bool in
                if let last, now - last < Self.rebuildInterval { return false }
                last = now
                return true
            }
            if !mayRebuild { return hit }
        }
        let (names, holders) = engine.areaHolders(block)
        let png = HilbertMap.png(names: names, holders: holders)
        var areas = [Int](repeating: 0, count: names.count)
        var tied = 0
        for h in holders {
            if h >= 0 { areas[Int(h)] += 1 } else if h == -2 { tied += 1 }
        }
        let legend = zip(names, areas).map { (name: $0.0.value, areas: $0.1) }
            .sorted { $0.areas != $1.areas ? $0.areas > $1.areas : $0.name < $1.name }
            .prefix(12).map { $0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in png { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let entry = Entry(png: png, etag: "\"\(String(hash, radix: 16))\"", boardTag: boardTag, builtAt: now, legend: legend, tiedAreas: tied)
        entries.withLock { $0[block] = entry }
        return entry
    }
}

extension HTTPField.Name {
    static let webFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let webReferrerPolicy = HTTPField.Name("Referrer-Policy")!
}
