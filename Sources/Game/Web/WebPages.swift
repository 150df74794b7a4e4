import IPAddress
import Foundation
import GameRules

/// Server-rendered HTML. Every name goes through `HTML.escape` (text and attributes) and every
/// link through `WebPages.playerHref` (percent-encoded), so stored names render as text.
enum WebPages {
    struct Shell {
        var cssPath: String
        var jsPath: String
        var iconPath: String
    }

    static func playerHref(_ name: String) -> String {
        // "." and ".." would be dot segments that browsers collapse in a path.
        if name == "." || name == ".." { return "/user.html?name=" + URLPath.encodeSegment(name) }
        return "/players/" + URLPath.encodeSegment(name)
    }

    static func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }

    static func ago(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        if s < 60 { return "\(s) s ago" }
        if s < 3600 { return "\(s / 60) min ago" }
        if s < 86_400 { return "\(s / 3600) h ago" }
        return "\(s / 86_400) d ago"
    }

    static func isoTime(_ t: Int64) -> String {
        // Civil-from-days (Howard Hinnant), UTC, so no Foundation date formatting per row.
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = t - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs % 3600 / 60)):\(two(secs % 60))Z"
    }

    static func page(_ shell: Shell, title: String, bodyAttributes: String = "", main: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTML.escape(title))</title>
        <meta name="description" content="IPQuest: capture the IP. Claim IPv4 addresses for your name and rule /8 blocks.">
        <link rel="icon" href="\(shell.iconPath)" type="image/svg+xml">
        <link rel="stylesheet" href="\(shell.cssPath)">
        <script src="\(shell.jsPath)" defer></script>
        </head>
        <body\(bodyAttributes)>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top"><h1><a href="/">IPQuest</a></h1><p>capture the IP: claim IPv4 addresses, rule /8 blocks</p></header>
        <main id="main">
        \(main)
        </main>
        <footer>Scores also as JSON: <a href="/api/leaderboard">/api/leaderboard</a>, <a href="/api/blocks">/api/blocks</a>, <a href="/api/recent">/api/recent</a>, and ipv4.games-style <a href="/score">/score</a>.</footer>
        </body>
        </html>

        """
    }

    static func periodNav(current: Period, href: (Period) -> String, label: String) -> String {
        let order: [Period] = [.hour, .day, .week, .month, .year, .all]
        let items = order.map { p -> String in
            let text = p == .all ? "all time" : p.rawValue
            let currentAttr = p == current ? " aria-current=\"true\"" : ""
            return "<li><a href=\"\(HTML.escape(href(p)))\" data-period=\"\(p.rawValue)\"\(currentAttr)>\(text)</a></li>"
        }.joined()
        return "<ul class=\"periods\" aria-label=\"\(HTML.escape(label))\">\(items)</ul>"
    }

    // MARK: Home

    struct HomeInput {
        var blocks: WebData.Blocks?
        var leaderboard: WebData.Leaderboard?
        var recent: WebData.Recent?
        var clientIP: IPAddress?
        var host: String
        var period: Period
        var boardAll: Bool
        var recentAll: Bool
        var now: Int64
        var pollMilliseconds: Int
        /// ETags of the snapshots this page was rendered from, so the first poll gets 304.
        var etags: (blocks: String, board: String, recent: String) = ("", "", "")
        /// Sections already rendered for these snapshots (they do not depend on the visitor).
        var cachedBoard: String?
        var cachedMap: String?
    }

    static func tile(_ t: WebData.Tile) -> String {
        var classes = "tile"
        if ReservedBlocks.contains(t.block) { classes += " reserved" }
        let who: String
        let count: String
        let title: String
        let key: String
        if let holder = t.holder {
            classes += " h\(NameColour.hueClass(holder))"
            who = "<a class=\"who\" href=\"\(HTML.escape(playerHref(holder)))\">\(HTML.escape(holder))</a>"
            count = "\(t.count)"
            title = "\(t.block).0.0.0/8: \(holder) with \(plural(t.count, "address", "addresses"))"
            key = holder
        } else if t.tied {
            classes += " tied"
            who = "<span class=\"who\">tied</span>"
            count = "\(t.count)"
            title = "\(t.block).0.0.0/8: tied at \(plural(t.count, "address", "addresses")) each"
            key = " tied"
        } else {
            classes += " empty"
            who = "<span class=\"who\">—</span>"
            count = ""
            title = "\(t.block).0.0.0/8: nobody yet"
            key = ""
        }
        let reserved = ReservedBlocks.contains(t.block) ? "<span class=\"rsv\">reserved</span>" : ""
        return "<li id=\"b-\(t.block)\" class=\"\(classes)\" data-holder=\"\(HTML.escape(key))\" title=\"\(HTML.escape(title))\">"
            + "<a class=\"cidr\" href=\"/blocks/\(t.block)\" aria-label=\"block \(t.block).0.0.0/8\">\(t.block)/8</a>\(who)<span class=\"n\">\(count)</span>\(reserved)</li>"
    }

    /// The leaderboard section (cached by the server per snapshot, period and "show all").
    static func boardSection(_ leaderboard: WebData.Leaderboard?, period: Period, all boardAll: Bool) -> String {
        let players = leaderboard?.players ?? []
        let shownPlayers = players.prefix(boardAll ? 1000 : 10)
        let boardItems = shownPlayers.map { p in
            "<li><span class=\"rank\">\(p.rank)</span><a class=\"name\" href=\"\(HTML.escape(playerHref(p.name)))\">\(HTML.escape(p.name))</a><span class=\"stats\">\(plural(p.block_count, "block", "blocks")), \(plural(p.addresses, "address", "addresses"))</span></li>"
        }.joined(separator: "\n")
        let boardMoreHref = "/?period=\(period.rawValue)\(boardAll ? "" : "&board=all")#leaderboard"
        let boardMoreText = boardAll ? "Show top 10" : "Show all \(players.count)"
        return """
        <section id="leaderboard" aria-labelledby="board-h">
        <h2 id="board-h">Leaderboard</h2>
        \(periodNav(current: period, href: { "/?period=\($0.rawValue)\(boardAll ? "&board=all" : "")#leaderboard" }, label: "Leaderboard period"))
        <ol id="board" class="board">
        \(boardItems)
        </ol>
        <p id="board-empty" class="empty-note"\(players.isEmpty ? "" : " hidden")>No claims in this period yet.</p>
        <p class="more-link"><a id="board-more" href="\(HTML.escape(boardMoreHref))" role="button" aria-controls="board" aria-expanded="\(boardAll)"\(players.count > 10 ? "" : " hidden")>\(boardMoreText)</a></p>
        <p class="more-link"><a id="board-residential" href="/leaderboard?residential=1&amp;period=\(period.rawValue)">Residential only</a> · <a href="/countries">By country and network</a></p>
        </section>
        """
    }

    /// The block map section (cached by the server per snapshot).
    static func mapSection(_ blocks: WebData.Blocks?) -> String {
        let tiles = (blocks?.blocks ?? []).map(tile).joined(separator: "\n")
        return """
        <section id="blocks" aria-labelledby="map-h">
        <h2 id="map-h">Who rules each /8 block</h2>
        <ul class="legend"><li>Each tile: the block, its holder and the holder's address count.</li><li><span class="swatch tied"></span>tied</li><li><span class="swatch empty"></span>nobody yet</li><li><span class="swatch reserved"></span>reserved (0, 10, 127, 224–255)</li></ul>
        <ol id="map" class="map" aria-label="The 256 /8 blocks">
        \(tiles)
        </ol>
        </section>
        """
    }

    static func home(_ shell: Shell, _ input: HomeInput) -> String {
        let updated = max(input.blocks?.updated_at ?? 0, input.recent?.updated_at ?? 0)
        var attributes = " data-page=\"home\" data-period=\"\(input.period.rawValue)\" data-poll=\"\(input.pollMilliseconds)\""
        attributes += " data-updated=\"\(updated)\" data-now=\"\(input.now)\""
        attributes += " data-board-all=\"\(input.boardAll ? 1 : 0)\" data-recent-all=\"\(input.recentAll ? 1 : 0)\""
        attributes += " data-etag-blocks=\"\(HTML.escape(input.etags.blocks))\" data-etag-board=\"\(HTML.escape(input.etags.board))\" data-etag-recent=\"\(HTML.escape(input.etags.recent))\""

        // Claim form.
        let ipText: String
        if let ip = input.clientIP {
            ipText = "<strong class=\"ip\" id=\"your-ip\">\(HTML.escape(ip.description))</strong>"
                + (ip.isIPv4 ? "" : " <span class=\"muted\">(IPv6: the game counts IPv4 addresses only)</span>")
        } else {
            ipText = "<strong class=\"ip\" id=\"your-ip\">unknown</strong>"
        }
        let origin = "http://" + input.host
        let claim = """
        <section class="card" id="claim" aria-labelledby="claim-h">
        <h2 id="claim-h">Claim your address</h2>
        <p>Your IP as this server sees it: \(ipText)</p>
        <form id="claim-form" class="claim" action="/claim" method="get">
        <label for="claim-name">Name</label>
        <input id="claim-name" name="name" required pattern="[A-Za-z0-9@\\/:.\\^+!*_\\-]{1,40}" title="\(HTML.escape(PlayerName.rule))" autocomplete="nickname" autocapitalize="off" spellcheck="false" aria-describedby="claim-msg claim-rule" placeholder="your name">
        <button type="submit">Claim it</button>
        </form>
        <p id="claim-msg" class="msg" role="status" aria-live="polite"></p>
        <p id="claim-rule" class="muted">A name is 1–40 characters: ASCII letters, digits and <code>@ / : . ^ + ! - _ *</code>.</p>
        <div class="url"><span>Claim URL:</span> <code id="claim-url">\(HTML.escape(origin))/claim?name=NAME</code> <button type="button" id="claim-copy" class="quiet" hidden>Copy</button></div>
        <p class="muted">Send it from every IPv4 address you can reach. The last name sent from an address owns it; whoever holds the most addresses in a /8 block rules that block.</p>
        </section>
        """

        let board = input.cachedBoard ?? boardSection(input.leaderboard, period: input.period, all: input.boardAll)

        // Recent claims.
        let claims = input.recent?.claims ?? []
        let shownClaims = claims.prefix(input.recentAll ? 50 : 10)
        let recentItems = shownClaims.map { c in
            "<li><span class=\"ip\">\(HTML.escape(c.ip))</span>by<a class=\"name\" href=\"\(HTML.escape(playerHref(c.name)))\">\(HTML.escape(c.name))</a><time datetime=\"\(isoTime(c.claimed_at))\" data-t=\"\(c.claimed_at)\">\(ago(input.now - c.claimed_at))</time></li>"
        }.joined(separator: "\n")
        let recent = """
        <section id="recent-claims" aria-labelledby="recent-h">
        <h2 id="recent-h">Recent claims</h2>
        <ol id="recent" class="recent">
        \(recentItems)
        </ol>
        <p id="recent-empty" class="empty-note"\(claims.isEmpty ? "" : " hidden")>No claims yet. Be the first.</p>
        <p class="more-link"><a id="recent-more" href="/?recent=\(input.recentAll ? "10" : "all")#recent-claims" role="button" aria-controls="recent" aria-expanded="\(input.recentAll)"\(claims.count > 10 ? "" : " hidden")>\(input.recentAll ? "Show 10" : "Show all \(claims.count)")</a></p>
        </section>
        """

        let map = input.cachedMap ?? mapSection(input.blocks)

        let status = """
        <p class="status">Last updated <span id="updated" data-updated="\(updated)">\(updated > 0 ? ago(input.now - updated) : "never")</span> · <span id="live">as loaded</span></p>
        <noscript><p>Live updates need JavaScript. This page shows the board as it was when loaded; reload for news.</p></noscript>
        """

        let main = claim + "\n" + status + "\n<div class=\"grid2\">\n" + board + "\n" + recent + "\n</div>\n" + map
        return page(shell, title: "IPQuest: who rules the internet", bodyAttributes: attributes, main: main)
    }

    // MARK: Player

    static func player(_ shell: Shell, _ s: Scoreboard.PlayerStanding, period: Period, history: [(day: Int64, addresses: Int)] = [],
                       linkBase: (Period) -> String) -> String {
        let name = s.name.value
        let held = s.blocksHeld
        let lines = s.blocks.map { b -> String in
            let summary = PlayerJSON.summary(b)
            let cidr = "\(b.block).0.0.0/8"
            let linked = HTML.escape(summary).replacingOccurrences(of: cidr, with: "<a href=\"/blocks/\(b.block)\">\(cidr)</a>")
            return "<li data-block=\"\(b.block)\">\(linked)</li>"
        }.joined(separator: "\n")
        let main = """
        <h2>Player <span class="name" id="player-name">\(HTML.escape(name))</span></h2>
        \(periodNav(current: period, href: linkBase, label: "Period"))
        <p id="player-summary"><strong id="p-addresses">\(s.addresses)</strong> \(s.addresses == 1 ? "address" : "addresses"), <strong id="p-held">\(held.count)</strong> \(held.count == 1 ? "block" : "blocks") held (\(period == .all ? "all time" : "this " + period.rawValue)).</p>
        \(s.blocks.isEmpty ? "<p class=\"empty-note\">No addresses in this period.</p>" : barChart(s))
        <h2>Per block</h2>
        <ul class="standings" id="standings">
        \(lines)
        </ul>
        <h2>Where and since when</h2>
        <figure class="spacemap"><img id="player-map" src="/player-map.png?name=\(HTML.escape(URLPath.encodeSegment(name)))" width="256" height="256" alt="Where \(HTML.escape(name)) holds addresses in the IPv4 space">
        <figcaption>The whole IPv4 space along a Hilbert curve, one pixel per /16 (nearby networks stay nearby; block 0 top left, 255 top right): the darker, the more addresses held there.</figcaption></figure>
        \(historyChart(history))
        \(playerOrigins(s))
        <p><a href="/">Back to the map</a></p>
        """
        return page(shell, title: "\(name) · IPQuest", bodyAttributes: " data-page=\"player\"", main: main)
    }

    /// Addresses held at the end of each day as an SVG bar chart, oldest day left.
    static func historyChart(_ history: [(day: Int64, addresses: Int)]) -> String {
        guard let last = history.last else { return "" }
        let maxCount = max(1, history.map(\.addresses).max() ?? 1)
        let left = 48, top = 10, plotH = 90, barW = 16
        let width = left + history.count * barW + 10, height = top + plotH + 24
        func date(_ day: Int64) -> String { String(rfc3339(day * 86_400).prefix(10)) }
        var out = "<svg class=\"history\" id=\"history\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-labelledby=\"history-title\" xmlns=\"http://www.w3.org/2000/svg\">"
        out += "<title id=\"history-title\">Addresses held at the end of each of the last \(history.count) days (UTC), \(date(history[0].day)) to \(date(last.day))</title>"
        out += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + history.count * barW)\" y2=\"\(top + plotH)\"/>"
        out += "<text class=\"axis\" x=\"\(left - 4)\" y=\"\(top + 8)\" text-anchor=\"end\">\(maxCount)</text>"
        out += "<text class=\"axis\" x=\"\(left - 4)\" y=\"\(top + plotH)\" text-anchor=\"end\">0</text>"
        out += "<text class=\"axis\" x=\"\(left)\" y=\"\(top + plotH + 16)\">\(date(history[0].day))</text>"
        out += "<text class=\"axis\" x=\"\(left + history.count * barW)\" y=\"\(top + plotH + 16)\" text-anchor=\"end\">\(date(last.day))</text>"
        for (i, point) in history.enumerated() {
            let h = point.addresses == 0 ? 0 : max(1, Int((Double(point.addresses) / Double(maxCount) * Double(plotH)).rounded()))
            out += "<rect class=\"bar held\" x=\"\(left + i * barW + 2)\" y=\"\(top + plotH - h)\" width=\"\(barW - 4)\" height=\"\(h)\" data-day=\"\(date(point.day))\" data-addresses=\"\(point.addresses)\"><title>\(date(point.day)): \(plural(point.addresses, "address", "addresses"))</title></rect>"
        }
        return out + "</svg>"
    }

    static func about(_ shell: Shell) -> String {
        let main = """
        <h2>How to play</h2>
        <p>Send <code>GET /claim?name=YOURNAME</code> (or <code>/claim/YOURNAME</code>) from as many different IPv4 addresses as you can. Each address remembers the last name claimed from it: that player holds it until someone claims it again from the same address.</p>
        <h2>The rules</h2>
        <ul>
        <li>A name is 1 to 40 characters: letters, digits and <code>@ / : . ^ + ! - _ *</code>.</li>
        <li>Whoever holds the most addresses of a /8 block (<code>N.0.0.0/8</code>) rules it; a tie means nobody does. Each block ruled is a point.</li>
        <li>Boards are kept for the last hour, day, week, month (30 days), year (365 days, by whole UTC days) and all time: a timed board counts the addresses whose current claim is that recent.</li>
        <li>Claiming again an address you hold refreshes its time at most once an hour.</li>
        <li>Every network (/24) has a budget of requests; flooding earns a 429, then a ban.</li>
        </ul>
        <h2>The API</h2>
        <ul>
        <li><a href="/score">/score</a>, <code>/score/hour|day|week|month|year</code>, <a href="/recent">/recent</a> and <a href="/ip">/ip</a> as on ipv4.games; <a href="/statusz">/statusz</a> for the server's figures and your remaining tokens; <code>/plot/N</code> for a picture of block N.</li>
        <li><a href="/api/recent">/api/recent</a>, <a href="/api/blocks">/api/blocks</a>, <a href="/api/ranks">/api/ranks</a>, <code>/api/users?name=</code> and <a href="/api/ip">/api/ip</a> as Capture The IP has them.</li>
        <li><a href="/api/leaderboard">/api/leaderboard</a> (paged: <code>limit</code>, <code>cursor</code>), <code>/api/players/NAME</code>, <a href="/api/countries">/api/countries</a>, <a href="/api/as">/api/as</a>.</li>
        </ul>
        <p><a href="/">Back to the map</a></p>
        """
        return page(shell, title: "About · IPQuest", bodyAttributes: " data-page=\"about\"", main: main)
    }

    /// Addresses per block as an SVG bar chart (attributes only: no inline style).
    static func barChart(_ s: Scoreboard.PlayerStanding) -> String {
        let maxCount = max(1, s.blocks.map(\.count).max() ?? 1)
        let left = 40, top = 10, plotH = 110, barW = 3
        let width = left + 256 * barW + 10, height = top + plotH + 24
        var out = "<svg class=\"bars\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-labelledby=\"bars-title\" xmlns=\"http://www.w3.org/2000/svg\">"
        out += "<title id=\"bars-title\">Addresses per /8 block, 0 to 255 (dark: held)</title>"
        out += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + 256 * barW)\" y2=\"\(top + plotH)\"/>"
        out += "<text class=\"axis\" x=\"\(left - 4)\" y=\"\(top + 8)\" text-anchor=\"end\">\(maxCount)</text>"
        out += "<text class=\"axis\" x=\"\(left - 4)\" y=\"\(top + plotH)\" text-anchor=\"end\">0</text>"
        for b in [0, 64, 128, 192, 255] {
            out += "<text class=\"axis\" x=\"\(left + b * barW)\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\">\(b)</text>"
        }
        for b in s.blocks {
            let h = max(1, Int((Double(b.count) / Double(maxCount) * Double(plotH)).rounded()))
            let held = b.rank == 1 && !b.isTied
            out += "<rect class=\"bar\(held ? " held" : "")\" x=\"\(left + b.block * barW)\" y=\"\(top + plotH - h)\" width=\"\(barW)\" height=\"\(h)\"><title>\(HTML.escape(PlayerJSON.summary(b)))</title></rect>"
        }
        return out + "</svg>"
    }

    static func notFound(_ shell: Shell, message: String) -> String {
        let main = """
        <h2>Not found</h2>
        <p class="notfound">\(message)</p>
        <p><a href="/">Back to the map</a></p>
        """
        return page(shell, title: "Not found · IPQuest", bodyAttributes: " data-page=\"notfound\"", main: main)
    }

    // MARK: Block

    struct BlockInput {
        var block: Int
        var period: Period
        var standing: Scoreboard.BlockStanding
        var top: [(name: PlayerName, count: Int)]
        var mapVersion: String
        var legend: [(name: String, areas: Int)]
        var tiedAreas: Int
    }

    static func block(_ shell: Shell, _ input: BlockInput) -> String {
        let b = input.block
        let cidr = "\(b).0.0.0/8"
        let s = input.standing
        let standing: String
        if let holder = s.holder {
            standing = "Held by <a href=\"\(HTML.escape(playerHref(holder.value)))\">\(HTML.escape(holder.value))</a> with \(plural(s.count, "address", "addresses"))"
                + (s.runnerUp.map { ", ahead of \(HTML.escape($0.value)) with \(s.runnerUpCount)" } ?? "") + "."
        } else if s.isTied {
            standing = "Tied: the top players have \(plural(s.count, "address", "addresses")) each, so nobody holds it."
        } else {
            standing = "Nobody has claimed an address here in this period."
        }
        var rank = 0
        var previous = -1
        let rows = input.top.enumerated().map { i, p -> String in
            if p.count != previous { rank = i + 1; previous = p.count }
            return "<tr><td class=\"num\">\(rank)</td><td><a href=\"\(HTML.escape(playerHref(p.name.value)))\">\(HTML.escape(p.name.value))</a></td><td class=\"num\">\(p.count)</td></tr>"
        }.joined(separator: "\n")
        let legend = input.legend.map { item in
            "<li><span class=\"swatch p\(NameColour.hueClass(item.name))\"></span><a href=\"\(HTML.escape(playerHref(item.name)))\">\(HTML.escape(item.name))</a> (\(plural(item.areas, "/24", "/24s")))</li>"
        }.joined()
        let reserved = ReservedBlocks.reason(b).map { "<p class=\"muted\">Reserved block: \(HTML.escape($0)).</p>" } ?? ""
        let nav = "<p>" + (b > 0 ? "<a href=\"/blocks/\(b - 1)\">← \(b - 1).0.0.0/8</a> · " : "") + "<a href=\"/#b-\(b)\">map</a>" + (b < 255 ? " · <a href=\"/blocks/\(b + 1)\">\(b + 1).0.0.0/8 →</a>" : "") + "</p>"
        let main = """
        <h2>Block <span id="block-cidr">\(cidr)</span></h2>
        \(nav)
        \(reserved)
        <p id="block-standing">\(standing) \(plural(s.total, "address", "addresses")) claimed by \(plural(s.players, "player", "players")).</p>
        \(periodNav(current: input.period, href: { "/blocks/\(b)?period=\($0.rawValue)" }, label: "Period"))
        <h2>Top 10</h2>
        \(input.top.isEmpty ? "<p class=\"empty-note\">No claims in this period.</p>" : "<table class=\"top\" id=\"block-top\"><thead><tr><th class=\"num\" scope=\"col\">rank</th><th scope=\"col\">player</th><th class=\"num\" scope=\"col\">addresses</th></tr></thead><tbody>\n\(rows)\n</tbody></table>")
        <h2>Where the claims are</h2>
        <figure>
        <img class="hilbert" id="block-map" src="/blocks/\(b)/map.png?v=\(input.mapVersion)" width="256" height="256" alt="Map of \(cidr): one pixel per /24 network along a Hilbert curve, coloured by the player holding the most addresses there">
        <figcaption class="muted">Each pixel is one /24 (256 addresses) of \(cidr), placed along a Hilbert curve so that neighbouring networks stay neighbours; colour = the player with the most current addresses in it. All current claims, whatever the period above.</figcaption>
        </figure>
        <ul class="legend" id="map-legend">\(legend)<li><span class="swatch tiedpx"></span>tied (\(plural(input.tiedAreas, "/24", "/24s")))</li><li><span class="swatch emptypx"></span>no claims</li></ul>
        """
        return page(shell, title: "\(cidr) · IPQuest", bodyAttributes: " data-page=\"block\"", main: main)
    }
}
