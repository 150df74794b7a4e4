import GameRules
/// Pages for where addresses are: who rules a country or an autonomous system, the index of
/// both, and the leaderboard counting residential addresses only. Server-rendered from the
/// live board (all time); no script needed.
extension WebPages {
    struct AreaInput {
        /// "DE" or "AS3320".
        var key: String
        /// "Germany", "Deutsche Telekom AG", when the location database knows it.
        var name: String?
        var standing: Scoreboard.AreaStanding
    }

    static func countryHref(_ code: String) -> String { "/countries/\(code)" }
    static func asHref(_ asn: UInt32) -> String { "/as/\(asn)" }

    static func rankedList(_ players: [Scoreboard.RankedPlayer], id: String) -> String {
        let items = players.map { p in
            "<li><span class=\"rank\">\(p.rank)</span><a class=\"name\" href=\"\(HTML.escape(playerHref(p.name.value)))\">\(HTML.escape(p.name.value))</a><span class=\"stats\">\(plural(p.addresses, "address", "addresses"))</span></li>"
        }.joined(separator: "\n")
        return "<ol id=\"\(id)\" class=\"board\">\n\(items)\n</ol>"
    }

    static func area(_ shell: Shell, _ input: AreaInput) -> String {
        let s = input.standing
        let title = input.name.map { "\(input.key) (\($0))" } ?? input.key
        let ruler = s.ruler.map { "<a class=\"name\" id=\"ruler\" href=\"\(HTML.escape(playerHref($0.value)))\">\(HTML.escape($0.value))</a> rules \(HTML.escape(input.key))" }
            ?? "<span id=\"ruler\">Nobody rules \(HTML.escape(input.key))</span> (tied at the top)"
        let main = """
        <h2>Who rules <span id="area-key">\(HTML.escape(title))</span></h2>
        <p id="area-summary">\(ruler). \(plural(s.addresses, "address", "addresses")) claimed here by \(plural(s.playerCount, "player", "players")) (all time).</p>
        \(rankedList(s.players, id: "area-board"))
        <p><a href="/countries">All countries and networks</a> · <a href="/">Back to the map</a></p>
        """
        return page(shell, title: "Who rules \(title) · IPQuest", bodyAttributes: " data-page=\"area\"", main: main)
    }

    static func areaIndex(_ shell: Shell, countries: [Scoreboard.AreaSummary], systems: [Scoreboard.AreaSummary], asName: (UInt32) -> String?) -> String {
        func rows(_ list: [Scoreboard.AreaSummary], href: (Scoreboard.AreaSummary) -> String, label: (Scoreboard.AreaSummary) -> String) -> String {
            list.map { a in
                let ruler = a.ruler.map { "<a class=\"name\" href=\"\(HTML.escape(playerHref($0.value)))\">\(HTML.escape($0.value))</a> (\(a.rulerAddresses))" } ?? "<span class=\"muted\">tied</span>"
                return "<tr><td><a href=\"\(HTML.escape(href(a)))\">\(HTML.escape(label(a)))</a></td><td>\(a.addresses)</td><td>\(a.playerCount)</td><td>\(ruler)</td></tr>"
            }.joined(separator: "\n")
        }
        let head = "<thead><tr><th scope=\"col\">Where</th><th scope=\"col\">Addresses</th><th scope=\"col\">Players</th><th scope=\"col\">Ruler</th></tr></thead>"
        let main = """
        <h2>Countries</h2>
        \(countries.isEmpty ? "<p class=\"empty-note\">No claims with a known country yet.</p>" : "<table id=\"countries\">\(head)<tbody>\n\(rows(countries, href: { countryHref($0.key) }, label: { $0.key }))\n</tbody></table>")
        <h2>Networks (autonomous systems)</h2>
        \(systems.isEmpty ? "<p class=\"empty-note\">No claims with a known network yet.</p>" : "<table id=\"networks\">\(head)<tbody>\n\(rows(systems, href: { asHref($0.asn ?? 0) }, label: { a in a.asn.flatMap(asName).map { "\(a.key) \($0)" } ?? a.key }))\n</tbody></table>")
        <p><a href="/leaderboard?residential=1">Residential-only leaderboard</a> · <a href="/">Back to the map</a></p>
        """
        return page(shell, title: "Countries and networks · IPQuest", bodyAttributes: " data-page=\"areas\"", main: main)
    }

    /// The full leaderboard, over all addresses or over residential ones only.
    static func leaderboard(_ shell: Shell, _ board: [WebData.Leader], period: Period, residential: Bool) -> String {
        let items = board.prefix(1_000).map { p in
            "<li><span class=\"rank\">\(p.rank)</span><a class=\"name\" href=\"\(HTML.escape(playerHref(p.name)))\">\(HTML.escape(p.name))</a><span class=\"stats\">\(plural(p.block_count, "block", "blocks")), \(plural(p.addresses, "address", "addresses"))</span></li>"
        }.joined(separator: "\n")
        let view = residential ? "residential=1&" : ""
        let toggle = residential
            ? "Counting residential addresses only (data-center addresses left out). <a id=\"view-toggle\" href=\"/leaderboard?period=\(period.rawValue)\">Count every address</a>"
            : "Counting every address. <a id=\"view-toggle\" href=\"/leaderboard?residential=1&period=\(period.rawValue)\">Residential only</a>"
        let main = """
        <h2>Leaderboard\(residential ? " (residential only)" : "")</h2>
        \(periodNav(current: period, href: { "/leaderboard?\(view)period=\($0.rawValue)" }, label: "Leaderboard period"))
        <p id="view">\(toggle)</p>
        <ol id="full-board" class="board">
        \(items)
        </ol>
        \(board.isEmpty ? "<p class=\"empty-note\">No claims in this period yet.</p>" : "")
        <p><a href="/countries">Countries and networks</a> · <a href="/">Back to the map</a></p>
        """
        return page(shell, title: "Leaderboard · IPQuest", bodyAttributes: " data-page=\"leaderboard\"", main: main)
    }

    /// Countries taken and the data-center share, for the player page.
    static func playerOrigins(_ s: Scoreboard.PlayerStanding) -> String {
        guard s.allTimeAddresses > 0 else { return "" }
        let countries = s.countries.prefix(50).map {
            "<li><a href=\"\(countryHref($0.country))\">\($0.country)</a> <span class=\"stats\">\(plural($0.addresses, "address", "addresses"))</span></li>"
        }.joined(separator: "\n")
        let percent = (s.dataCenterShare * 1000).rounded() / 10
        return """
        <h2>Where</h2>
        <p id="p-datacenter"><strong>\(percent.formattedPercent)</strong> of \(plural(s.allTimeAddresses, "address", "addresses")) held are in data centers (\(s.dataCenterAddresses)), all time.</p>
        \(s.countries.isEmpty ? "" : "<ul class=\"standings\" id=\"countries-taken\">\n\(countries)\n</ul>")
        """
    }
}

extension Double {
    /// "12.5 %", "0 %".
    var formattedPercent: String {
        let text = self == rounded() ? String(Int(self)) : String(self)
        return text + " %"
    }
}
