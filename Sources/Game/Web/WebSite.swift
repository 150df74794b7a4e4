import CompressNIO
import Edge
import HTTPServing
import Foundation
public import Hummingbird
import HTTPTypes
import IPAddress
import NIOCore
import Synchronization
import TextFormats
import GameRules

/// One static asset compiled into the binary: fingerprinted path, ETag, pre-gzipped body.
struct WebAsset: Sendable {
    let path: String
    let contentType: String
    let body: ByteBuffer
    let gzip: ByteBuffer?
    let etag: String

    init(name: String, ext: String, contentType: String, text: String) {
        let hash = FNV1a.hex64(text.utf8)
        path = "/assets/\(name).\(hash.prefix(12)).\(ext)"
        self.contentType = contentType
        var buffer = ByteBuffer(string: text)
        body = buffer
        gzip = try? buffer.compress(with: .gzip())
        etag = "\"\(hash)\""
    }
}

/// The web pages: home, player, block and the assets, on top of the game's read models.
/// Wired by `GameServer`: its `handlers()` join the API's in `RouteTable.register`.
public struct WebSite: Sendable {
    let routes: GameRoutes
    let data = WebData()
    let maps = PictureCache<BlockMapLegend>(rebuildInterval: .seconds(1))
    let pictures = PictureCache<Void>()
    let fragments = FragmentCache()
    /// `web.root`: a community's own files, served before the built-in pages.
    let root: StaticFiles?
    let css: WebAsset
    let js: WebAsset
    let icon: WebAsset
    /// How often the home page polls the API.
    let pollMilliseconds: Int

    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    public init(routes: GameRoutes, root: StaticFiles? = nil, pollMilliseconds: Int = 2_000) {
        self.routes = routes
        self.root = root
        self.pollMilliseconds = pollMilliseconds
        css = WebAsset(name: "app", ext: "css", contentType: "text/css; charset=utf-8", text: WebStyle.css)
        js = WebAsset(name: "app", ext: "js", contentType: "text/javascript; charset=utf-8", text: WebScript.js)
        icon = WebAsset(name: "icon", ext: "svg", contentType: "image/svg+xml", text: Self.iconSVG)
    }

    var shell: WebPages.Shell { .init(cssPath: css.path, jsPath: js.path, iconPath: icon.path) }
    var engine: GameEngine { routes.engine }

    /// The handlers of the page routes of `RouteTable`, by path.
    public func handlers() -> [String: RouteTable.Handler] {
        var h: [String: RouteTable.Handler] = [:]
        // The pages a community's front end may replace: its file wins when `web.root` has one.
        h["/"] = { request, context in try staticFile(request) ?? home(request, context) }
        h["/index.html"] = { request, context in try staticFile(request) ?? home(request, context) }
        h["/players/**"] = { request, context in
            let raw = context.parameters.getCatchAll().joined(separator: "/")
            return player(request, name: raw.removingPercentEncoding ?? raw)
        }
        // ipv4.games' and Capture The IP's player page links.
        for path in ["/user.html", "/users.html"] {
            h[path] = { request, _ in
                staticFile(request) ?? player(request, name: request.uri.queryParameters.get("name") ?? "")
            }
        }
        h["/about.html"] = { request, _ in
            staticFile(request) ?? html(request, WebPages.about(shell), cache: "public, max-age=300")
        }
        h["/favicon.ico"] = { request, _ in
            staticFile(request) ?? send(request, body: ByteBuffer(bytes: Self.favicon), gzip: nil, etag: Self.faviconETag, contentType: "image/x-icon", cache: "public, max-age=86400")
        }
        // ipv4.games' picture of one /8: addresses per /20 along a 64×64 Hilbert curve.
        h["/plot/{block}"] = { request, context in
            guard let b = Self.blockNumber(context.parameters.get("block")) else { return notFound(request, "No such block: blocks are 0 to 255.") }
            let picture = pictures.picture("plot|\(b)", engine: engine) {
                let counts = engine.areaCounts(blocks: b..<(b + 1), shift: 12) ?? []
                return (HilbertMap.png(side: 64, pixels: HilbertMap.densityPixels(counts, side: 64, levels: HilbertMap.plotLevels),
                                       palette: HilbertMap.densityPalette((0x0B, 0x3D, 0x28), levels: HilbertMap.plotLevels)), ())
            }
            return send(request, body: ByteBuffer(bytes: picture.png), gzip: nil, etag: picture.etag, contentType: "image/png", cache: "public, max-age=10")
        }
        // Where in the whole IPv4 space a player holds addresses: one pixel per /16.
        h["/player-map.png"] = { request, _ in
            guard let name = PlayerName(request.uri.queryParameters.get("name").map { String($0) } ?? ""),
                  engine.withBoard({ $0.isKnown(name) }) else {
                return notFound(request, "No such player.")
            }
            let picture = pictures.picture("player|\(name.value)", engine: engine) {
                let counts = engine.areaCounts(blocks: 0..<256, shift: 16, of: name) ?? []
                let colour = NameColour.rgb(hueClass: NameColour.hueClass(name.value), lightness: 0.35)
                return (HilbertMap.png(side: 256, pixels: HilbertMap.densityPixels(counts, side: 256, levels: HilbertMap.playerMapLevels),
                                       palette: HilbertMap.densityPalette(colour, levels: HilbertMap.playerMapLevels)), ())
            }
            return send(request, body: ByteBuffer(bytes: picture.png), gzip: nil, etag: picture.etag, contentType: "image/png", cache: "public, max-age=10")
        }
        h["/blocks/{block}"] = { request, context in
            guard let b = Self.blockNumber(context.parameters.get("block")) else { return notFound(request, "No block \(HTML.escape(context.parameters.get("block") ?? "")): blocks are 0 to 255.") }
            return try block(request, b)
        }
        h["/blocks/{block}/map.png"] = { request, context in
            guard let b = Self.blockNumber(context.parameters.get("block")) else { return notFound(request, "No such block.") }
            let map = maps.map(block: b, engine: engine)
            return send(request, body: ByteBuffer(bytes: map.png), gzip: nil, etag: map.etag, contentType: "image/png", cache: "public, max-age=10")
        }
        h["/countries"] = { request, _ in
            let (countries, systems) = engine.withBoard { ($0.countries(), $0.autonomousSystems(limit: 100)) }
            let body = WebPages.areaIndex(shell, countries: countries, systems: systems) { routes.intelligence?.autonomousSystemName($0) }
            return html(request, body, cache: "public, max-age=5")
        }
        h["/countries/{code}"] = { request, context in
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
        h["/as/{asn}"] = { request, context in
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
        h["/leaderboard"] = { request, _ in
            let period = period(request)
            let residential = (try? routes.residential(request)) ?? false
            // From the snapshot (decoded once per version), like the home page's board.
            let board = data.leaderboard(engine, period, residential: residential)?.0.players ?? []
            return html(request, WebPages.leaderboard(shell, board, period: period, residential: residential), cache: "public, max-age=5")
        }
        h["/assets/{file}"] = { request, context in
            let path = "/assets/" + (context.parameters.get("file") ?? "")
            guard let asset = [css, js, icon].first(where: { $0.path == path }) else {
                return notFound(request, "No such asset.")
            }
            return send(request, body: asset.body, gzip: asset.gzip, etag: asset.etag, contentType: asset.contentType, cache: "public, max-age=31536000, immutable")
        }
        // Any other path: a file of `web.root`, else the router's 404.
        if root != nil {
            h["/**"] = { request, _ in
                guard let response = staticFile(request) else { throw HTTPError(.notFound) }
                return response
            }
        }
        return h
    }

    /// The `web.root` file a request names, with validators and gzip; nil without one.
    func staticFile(_ request: Request) -> Response? {
        guard let root, let file = root.file(forPath: request.uri.path) else { return nil }
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "public, max-age=300",
            .vary: "Accept-Encoding",
            .eTag: file.etag,
            .lastModified: HTTPDate.format(UInt64(max(0, file.modifiedAt))),
            .xContentTypeOptions: "nosniff",
        ]
        if ConditionalRequest.isNotModified(request.headers, etag: file.etag, modifiedAt: file.modifiedAt) {
            return Response(status: .notModified, headers: headers)
        }
        if let gzip = file.gzip, routes.acceptsGzip(request.headers) {
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: gzip))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.body))
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
        let history = engine.holdings(of: name, days: 30)
        let body = WebPages.player(shell, standing, period: period, history: history, linkBase: { "\(base)\(joiner)period=\($0.rawValue)" })
        return html(request, body, cache: "public, max-age=5")
    }

    func block(_ request: Request, _ block: Int) throws -> Response {
        let period = period(request)
        let detail = engine.blockDetail(block, period: period)
        let map = maps.map(block: block, engine: engine)
        let input = WebPages.BlockInput(
            block: block, period: period, standing: detail.standing, top: detail.top,
            mapVersion: String(map.etag.filter { $0 != "\"" }.prefix(12)),
            legend: map.extra.legend, tiedAreas: map.extra.tiedAreas
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
        return send(request, body: ByteBuffer(string: text), gzip: gzip, etag: "\"\(FNV1a.hex64(text.utf8))\"", contentType: "text/html; charset=utf-8", cache: cache, status: status)
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
            if ConditionalRequest.isNotModified(request.headers, etag: etag) {
                return Response(status: .notModified, headers: headers)
            }
        }
        if let gzip, routes.acceptsGzip(request.headers) {
            headers[.contentEncoding] = "gzip"
            return Response(status: status, headers: headers, body: .init(byteBuffer: gzip))
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// `/favicon.ico`: the icon's four squares as a 16×16 PNG inside an ICO container.
    static let favicon: [UInt8] = {
        var pixels = [UInt8](repeating: 0, count: 256)
        for y in 0..<16 {
            for x in 0..<16 {
                let inside = (2..<7).contains(x) || (9..<14).contains(x)
                guard inside, (2..<7).contains(y) || (9..<14).contains(y) else { continue }
                pixels[y * 16 + x] = UInt8(1 + (x >= 8 ? 1 : 0) + (y >= 8 ? 2 : 0))
            }
        }
        let png = HilbertMap.png(side: 16, pixels: pixels, palette: [0x0B, 0x3D, 0x28, 0x7F, 0xD1, 0xA8, 0xF2, 0xC1, 0x4E, 0xE5, 0x8A, 0x8A, 0x9D, 0xB4, 0xF0])
        let size = UInt32(png.count)
        let entry: [UInt8] = [16, 16, 0, 0, 1, 0, 32, 0, UInt8(size & 0xFF), UInt8((size >> 8) & 0xFF), UInt8((size >> 16) & 0xFF), UInt8(size >> 24), 22, 0, 0, 0]
        return [0, 0, 1, 0, 1, 0] + entry + png
    }()
    static let faviconETag = "\"\(FNV1a.hex64(favicon))\""

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

/// Rendered pictures by key (block maps, plots, player maps), rebuilt when the board changed
/// and the picture is at least `minimumAge` old; with `rebuildInterval`, at most one rebuild
/// per interval across all keys (a crawler walking every block gets stale pictures, not lock
/// time). `Extra` is what a rendering computes besides the PNG (a block map's legend).
final class PictureCache<Extra: Sendable>: Sendable {
    struct Entry: Sendable {
        var png: [UInt8]
        var etag: String
        var boardTag: String
        var builtAt: ContinuousClock.Instant
        var extra: Extra
    }

    let minimumAge: Duration
    let rebuildInterval: Duration?
    let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])
    private let lastRebuild = Mutex<ContinuousClock.Instant?>(nil)

    init(capacity: Int = 256, rebuildInterval: Duration? = nil, minimumAge: Duration = .seconds(3)) {
        self.capacity = capacity
        self.rebuildInterval = rebuildInterval
        self.minimumAge = minimumAge
    }

    /// `tag` says what the picture shows has changed (by default: anything on the board did).
    func picture(_ key: String, engine: GameEngine, tag: String? = nil, make: () -> (png: [UInt8], extra: Extra)) -> Entry {
        let boardTag = tag ?? engine.snapshot[Snapshot.blocksKey(.all)]?.etag ?? ""
        let now = ContinuousClock.now
        if let hit = entries.withLock({ $0[key] }) {
            if hit.boardTag == boardTag || now - hit.builtAt < minimumAge { return hit }
            if let rebuildInterval {
                let mayRebuild = lastRebuild.withLock { last -> Bool in
                    if let last, now - last < rebuildInterval { return false }
                    last = now
                    return true
                }
                if !mayRebuild { return hit }
            }
        }
        let made = make()
        let entry = Entry(png: made.png, etag: "\"\(FNV1a.hex64(made.png))\"", boardTag: boardTag, builtAt: now, extra: made.extra)
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[key] = entry
        }
        return entry
    }
}

/// What a block map shows beside its pixels.
struct BlockMapLegend: Sendable {
    var legend: [(name: String, areas: Int)]
    var tiedAreas: Int
}

extension PictureCache where Extra == BlockMapLegend {
    /// The per-/24 map of one block: scans every owner of the block under the board's lock,
    /// so rebuilds are throttled (see `WebSite.maps`), and made again only when an owner in
    /// that block changed, not on every claim elsewhere (at 50 M addresses a rebuild takes
    /// ~10 ms: /blocks/N's p99 under a trickle of claims in another block, issue 24).
    func map(block: Int, engine: GameEngine) -> Entry {
        picture("block|\(block)", engine: engine, tag: "owners \(engine.ownersVersion(block: block))") {
            let (names, holders) = engine.areaHolders(block)
            var areas = [Int](repeating: 0, count: names.count)
            var tied = 0
            for h in holders {
                if h >= 0 { areas[Int(h)] += 1 } else if h == -2 { tied += 1 }
            }
            let legend = zip(names, areas).map { (name: $0.0.value, areas: $0.1) }
                .sorted { $0.areas != $1.areas ? $0.areas > $1.areas : $0.name < $1.name }
                .prefix(12).map { $0 }
            return (HilbertMap.png(names: names, holders: holders), BlockMapLegend(legend: legend, tiedAreas: tied))
        }
    }
}

extension HTTPField.Name {
    static let webFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let webReferrerPolicy = HTTPField.Name("Referrer-Policy")!
}
