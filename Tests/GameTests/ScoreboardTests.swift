import CloudRanges
import Foundation
import NIOCore
import ConfigFile
import Testing
import IPAddress
import IPQuestTestSupport
@testable import Game
import TextFormats
@testable import GameRules

func ip(_ s: String) -> IPv4Address { IPv4Address(s)! }
func name(_ s: String) -> PlayerName { PlayerName(s)! }

@Suite struct PlayerNameTests {
    @Test(arguments: ["a", "Zed", "jart", "user@example.com", "https://x.y/z", "a.b^c+d!e-f_g*h", String(repeating: "x", count: 40), "0123456789"])
    func accepts(text: String) { #expect(PlayerName(text) != nil) }

    @Test func rejectsWithReasons() {
        #expect(throws: PlayerName.ValidationError.empty) { try PlayerName(validating: "") }
        #expect(throws: PlayerName.ValidationError.tooLong(41)) { try PlayerName(validating: String(repeating: "x", count: 41)) }
        #expect(throws: PlayerName.ValidationError.invalidCharacter(position: 3)) { try PlayerName(validating: "abc def") }
        for bad in ["<script>", "a&b", "ä", "a\"b", "a'b", "a%b", "a#b", "a?b", "a=b", "tab\t", "émile", "a,b", "a;b", "a\\b"] {
            #expect(PlayerName(bad) == nil, "accepted \(bad)")
        }
        #expect(PlayerName.ValidationError.invalidCharacter(position: 0).description.contains("@ / : . ^ + ! - _ *"))
    }
}

@Suite struct ScoreboardTests {
    @Test func lastClaimWinsAndOwnerRefreshIsHourly() {
        var b = Scoreboard()
        #expect(b.apply(address: ip("1.0.0.1"), name: name("alice"), at: 1_000) == .claimed(previousOwner: nil))
        #expect(b.apply(address: ip("1.0.0.1"), name: name("bob"), at: 1_001) == .claimed(previousOwner: name("alice")))
        #expect(b.owner(of: ip("1.0.0.1"))?.name == name("bob"))
        #expect(b.apply(address: ip("1.0.0.1"), name: name("bob"), at: 1_500) == .unchanged)
        #expect(b.owner(of: ip("1.0.0.1"))?.claimedAt == 1_001)
        #expect(b.apply(address: ip("1.0.0.1"), name: name("bob"), at: 1_001 + 3_600) == .claimed(previousOwner: name("bob")))
        #expect(b.owner(of: ip("1.0.0.1"))?.claimedAt == 4_601)
        #expect(b.addressCount == 1)
        #expect(b.player(name("alice"), period: .all)?.addresses == 0)
    }

    @Test func blockHoldersTiesAndRunnersUp() {
        var b = Scoreboard()
        let t: Int64 = 10_000
        for i in 1...3 { b.apply(address: IPv4Address(10, 0, 0, UInt8(i)), name: name("alice"), at: t) }
        for i in 4...5 { b.apply(address: IPv4Address(10, 0, 0, UInt8(i)), name: name("bob"), at: t) }
        for i in 1...2 { b.apply(address: IPv4Address(11, 0, 0, UInt8(i)), name: name("bob"), at: t) }
        for i in 3...4 { b.apply(address: IPv4Address(11, 0, 0, UInt8(i)), name: name("carol"), at: t) }
        let ten = b.standing(block: 10, period: .all)
        #expect(ten.holder == name("alice") && !ten.isTied && ten.count == 3)
        #expect(ten.runnerUp == name("bob") && ten.runnerUpCount == 2 && ten.total == 5 && ten.players == 2)
        let eleven = b.standing(block: 11, period: .all)
        #expect(eleven.holder == nil && eleven.isTied && eleven.count == 2)
        let empty = b.standing(block: 12, period: .all)
        #expect(empty.holder == nil && !empty.isTied && empty.total == 0)

        let board = b.leaderboard(.all)
        #expect(board.map(\.name.value) == ["alice", "bob", "carol"])
        #expect(board[0].blocksHeld == [10] && board[0].addresses == 3 && board[0].rank == 1)
        #expect(board[1].blocksHeld == [] && board[1].addresses == 4 && board[1].rank == 2)
        #expect(board[2].addresses == 2 && board[2].rank == 3)

        let bob = b.player(name("bob"), period: .all)!
        #expect(bob.addresses == 4)
        #expect(bob.blocks == [
            .init(block: 10, count: 2, rank: 2, isTied: false, players: 2, worstRank: 2),
            .init(block: 11, count: 2, rank: 1, isTied: true, players: 2, worstRank: 1),
        ])
        #expect(PlayerJSON.summary(bob.blocks[1]) == "tied 1st in 11.0.0.0/8 with 2 addresses")
        #expect(PlayerJSON.summary(bob.blocks[0]) == "2nd in 10.0.0.0/8 with 2 addresses")
        #expect(b.player(name("nobody"), period: .all) == nil)
    }

    @Test func equalPlayersShareARank() {
        var b = Scoreboard()
        b.apply(address: ip("20.0.0.1"), name: name("x"), at: 1)
        b.apply(address: ip("21.0.0.1"), name: name("y"), at: 1)
        b.apply(address: ip("22.0.0.1"), name: name("z"), at: 1)
        b.apply(address: ip("22.0.0.2"), name: name("z"), at: 1)
        let board = b.leaderboard(.all)
        #expect(board.map(\.rank) == [1, 2, 2])
        #expect(board.map(\.name.value) == ["z", "x", "y"])
    }

    @Test func periodsCountOnlyClaimsInsideTheirWindow() {
        var b = Scoreboard()
        let now: Int64 = 100 * 86_400
        b.advance(to: now - 40 * 86_400)
        b.apply(address: ip("1.0.0.1"), name: name("old"), at: now - 40 * 86_400)     // only all-time
        b.advance(to: now - 10 * 86_400)
        b.apply(address: ip("1.0.0.2"), name: name("month"), at: now - 10 * 86_400)   // month
        b.advance(to: now - 3 * 86_400)
        b.apply(address: ip("1.0.0.3"), name: name("week"), at: now - 3 * 86_400)     // week
        b.advance(to: now - 7_200)
        b.apply(address: ip("1.0.0.4"), name: name("day"), at: now - 7_200)          // day
        b.advance(to: now - 60)
        b.apply(address: ip("1.0.0.5"), name: name("hour"), at: now - 60)            // hour
        b.advance(to: now)
        func names(_ p: Period) -> Set<String> { Set(b.leaderboard(p).map(\.name.value)) }
        #expect(names(.all) == ["old", "month", "week", "day", "hour"])
        #expect(names(.month) == ["month", "week", "day", "hour"])
        #expect(names(.week) == ["week", "day", "hour"])
        #expect(names(.day) == ["day", "hour"])
        #expect(names(.hour) == ["hour"])
        // An hour later the hourly board is empty, the daily one unchanged.
        b.advance(to: now + 3_600)
        #expect(names(.hour).isEmpty)
        #expect(names(.day) == ["day", "hour"])
        #expect(b.standing(block: 1, period: .hour).total == 0)
    }

    @Test func supersededClaimLeavesWindowsOnce() {
        var b = Scoreboard()
        b.advance(to: 1_000_000)
        b.apply(address: ip("5.0.0.1"), name: name("a"), at: 1_000_000)
        b.apply(address: ip("5.0.0.1"), name: name("b"), at: 1_000_010)
        b.apply(address: ip("5.0.0.1"), name: name("a"), at: 1_000_020)
        #expect(b.player(name("a"), period: .hour)?.addresses == 1)
        #expect(b.player(name("b"), period: .hour)?.addresses == 0)
        b.advance(to: 1_000_000 + 3_615) // the first two log entries expire; the third is current
        #expect(b.player(name("a"), period: .hour)?.addresses == 1)
        b.advance(to: 1_000_000 + 3_625)
        #expect(b.player(name("a"), period: .hour)?.addresses == 0)
        #expect(b.player(name("a"), period: .all)?.addresses == 1)
        #expect(b.standing(block: 5, period: .hour).total == 0)
    }

    /// Block standings and leaderboards, over all addresses and residential ones only, match
    /// counts taken afresh from the current owners, after random claims from homes and data
    /// centers spread over two days.
    @Test func viewsMatchAFreshCountOfTheOwners() {
        var b = Scoreboard()
        var rng = SystemRandomNumberGenerator()
        let players = (0..<12).map { name("p\($0)") }
        var owners: [UInt32: (name: PlayerName, at: Int64, dataCenter: Bool)] = [:]
        let start: Int64 = 40 * 86_400
        for i in 0..<6_000 {
            let t = start + Int64(i * 30)
            b.advance(to: t)
            // Few blocks and addresses, so addresses change hands and players tie.
            let a = IPv4Address(UInt32.random(in: 0..<6, using: &rng) << 24 | UInt32.random(in: 0..<400, using: &rng))
            let n = players.randomElement(using: &rng)!
            let cloud = Int.random(in: 0..<4, using: &rng) == 0
            if case .claimed = b.apply(address: a, name: n, at: t, origin: ClaimOrigin(provider: cloud ? "aws" : nil)) {
                owners[a.value] = (n, t, cloud)
            }
        }
        let now = start + 6_000 * 30 + 600
        b.advance(to: now)
        for period in Period.allCases {
            for residential in [false, true] {
                var perBlock: [Int: [PlayerName: Int]] = [:]
                for (ip, o) in owners where (period.seconds.map { o.at >= now - $0 } ?? true) && !(residential && o.dataCenter) {
                    perBlock[Int(ip >> 24), default: [:]][o.name, default: 0] += 1
                }
                for block in 0..<8 {
                    let counts = perBlock[block] ?? [:]
                    let sorted = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    let standing = b.standing(block: block, period: period, residential: residential)
                    let tied = sorted.count > 1 && sorted[0].value == sorted[1].value
                    #expect(standing.total == counts.values.reduce(0, +), "\(period) \(residential) block \(block)")
                    #expect(standing.players == counts.count)
                    #expect(standing.isTied == tied)
                    #expect(standing.holder == (tied ? nil : sorted.first?.key))
                    #expect(standing.count == (sorted.first?.value ?? 0))
                }
                var totals: [PlayerName: Int] = [:]
                for counts in perBlock.values { for (n, c) in counts { totals[n, default: 0] += c } }
                let board = b.leaderboard(period, residential: residential)
                #expect(Dictionary(uniqueKeysWithValues: board.map { ($0.name, $0.addresses) }) == totals, "\(period) \(residential)")
            }
        }
    }

    @Test func loadRebuildsTheSameBoard() {
        var live = Scoreboard()
        var stored: [UInt32: Claim] = [:]
        var rng = SystemRandomNumberGenerator()
        let players = (0..<20).map { name("p\($0)") }
        let start: Int64 = 50 * 86_400
        for i in 0..<5_000 {
            let t = start + Int64(i * 60)
            live.advance(to: t)
            let a = IPv4Address(UInt32.random(in: 0..<(1 << 12), using: &rng) << 20 | UInt32(i % 7))
            let n = players.randomElement(using: &rng)!
            if case .claimed = live.apply(address: a, name: n, at: t) {
                stored[a.value] = Claim(address: a, name: n, claimedAt: t)
            }
        }
        let now = start + 5_000 * 60
        live.advance(to: now)
        var loaded = Scoreboard()
        loaded.load(Array(stored.values), now: now)
        for p in Period.allCases {
            #expect(loaded.leaderboard(p) == live.leaderboard(p), "period \(p)")
            #expect(loaded.blocks(p) == live.blocks(p), "period \(p)")
        }
        #expect(loaded.allClaims() == live.allClaims())
    }

    @Test func recentListsCurrentClaimsNewestFirst() {
        var b = Scoreboard()
        for i in 0..<60 { b.apply(address: IPv4Address(9, 0, 0, UInt8(i)), name: name("n\(i)"), at: Int64(i)) }
        b.apply(address: IPv4Address(9, 0, 0, 59), name: name("taker"), at: 100)
        let recent = b.recent(limit: 50)
        #expect(recent.count == 50)
        #expect(recent[0].name == name("taker") && recent[0].address == IPv4Address(9, 0, 0, 59))
        #expect(recent[1].name == name("n58"))
        #expect(!recent.contains { $0.name == name("n59") })
    }
}

@Suite struct ClaimResponseFormatTests {
    @Test(arguments: [
        (nil as String?, ClaimResponse.Format.html), ("*/*", .html), ("text/html,application/xhtml+xml", .html),
        ("text/plain", .text), ("application/json", .json), ("image/webp,image/*,*/*;q=0.8", .gif),
        ("image/gif", .gif), ("text/plain;q=0.5, application/json", .json), ("text/html;q=0, text/plain", .text),
        ("application/json;q=0.9, text/html", .html), ("*/*, application/json", .json),
    ])
    func negotiates(accept: String?, expected: ClaimResponse.Format) {
        #expect(ClaimResponse.format(accept: accept) == expected)
    }

    @Test(arguments: [
        ("TEXT/Plain", ClaimResponse.Format.text), ("text/plain ; Q=0 , image/png", .gif), (";text/plain", .text),
        (" ;text/plain", .html), ("text/plain;q=abc, application/json;q=0.1", .json), (",,\t application/json \t,", .json),
        ("text/csv, */*;q=0.2", .html), ("application/json;level=1;q=0.7, text/plain;q=0.7", .json),
        // Nothing we serve is acceptable: 204 (as ipv4.games); no media range at all: ignored.
        ("text/csv", .none), ("text/html;q=0", .none), ("application/xml, text/csv;q=0.5", .none), ("garbage", .html),
    ])
    func negotiatesEdgeCases(accept: String, expected: ClaimResponse.Format) {
        #expect(ClaimResponse.format(accept: accept) == expected)
        #expect(Self.reference(accept) == expected)
    }

    /// The byte-level negotiation agrees with a plain String implementation of the same rules
    /// on random headers built from the pieces that matter.
    @Test func agreesWithReferenceOnRandomHeaders() {
        let pieces = ["text/html", "TEXT/PLAIN", "text/plain", "application/json", "image/gif", "image/*", "*/*", "text/*",
                      "application/xhtml+xml", "text/csv", "q=0", "q=0.5", "Q=1", "q=0.9", "q=x", "level=1", " ", "\t", ",", ";", ""]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var header = ""
            for _ in 0..<Int.random(in: 0...8, using: &generator) {
                header += pieces.randomElement(using: &generator)!
                if Bool.random(using: &generator) { header += [";", ",", " ", "; ", ", "].randomElement(using: &generator)! }
            }
            #expect(ClaimResponse.format(accept: header) == Self.reference(header), "Accept: \(header)")
        }
    }

    /// The rules written plainly (the implementation before it moved to bytes).
    static func reference(_ accept: String?) -> ClaimResponse.Format {
        guard let accept, !accept.isEmpty else { return .html }
        var best: (ClaimResponse.Format, Double)?
        var listsRange = false
        for part in accept.split(separator: ",") {
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " \t")).lowercased() }
            guard let type = fields.first else { continue }
            if type.contains("/") { listsRange = true }
            var q = 1.0
            for f in fields.dropFirst() where f.hasPrefix("q=") { q = Double(f.dropFirst(2)) ?? 0 }
            guard q > 0 else { continue }
            let format: ClaimResponse.Format?
            switch type {
            case "text/html", "application/xhtml+xml", "text/*", "*/*": format = .html
            case "text/plain": format = .text
            case "application/json": format = .json
            default: format = type.hasPrefix("image/") ? .gif : nil
            }
            guard let format else { continue }
            let effectiveQ = type == "*/*" ? q - 0.0001 : q
            if best == nil || effectiveQ > best!.1 { best = (format, effectiveQ) }
        }
        return best?.0 ?? (listsRange ? .none : .html)
    }
}

@Suite struct ClaimResponseBodyTests {
    /// The HTML answer, written piece by piece, is the page the interpolated template gives,
    /// for names that need escaping or percent-encoding and names that need neither.
    @Test(arguments: ["alice", "a/b:c@d^e+f!g-h_i*j.k", "x<&>\"'y", "Zoë 1"])
    func htmlAnswerMatchesTheTemplate(_ raw: String) {
        let name = PlayerName(trusted: raw)
        let address = IPv4Address(203, 0, 113, 7)
        let (_, body) = ClaimResponse.parts(address: address, name: name, origin: .unknown, outcome: .claimed(previousOwner: nil), format: .html)
        let escaped = Self.referenceEscape(raw)
        let link = "/players/" + Self.referenceEscape(Self.referenceEncode(raw))
        let expected = """
            <!doctype html>
            <html lang="en"><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>The land at 203.0.113.7 was claimed for \(escaped).</title>
            <p>The land at 203.0.113.7 was claimed for <a href="\(link)">\(escaped)</a>.</p>
            <p><a href="/">Back to the map</a></p>

            """
        #expect(String(buffer: body) == expected)
    }

    @Test func segmentsArePercentEncodedByteByByte() {
        #expect(URLPath.encodeSegment("Plain-name_1.~") == "Plain-name_1.~")
        #expect(URLPath.encodeSegment("a/b:c@d^e+f!g*h") == "a%2Fb%3Ac%40d%5Ee%2Bf%21g%2Ah")
        #expect(URLPath.encodeSegment("Zoë x") == "Zo%C3%AB%20x")
        #expect(URLPath.encodeSegment("") == "")
        for raw in ["alice", "a/b", "Zoë x", "%41"] {
            #expect(URLPath.encodeSegment(raw) == Self.referenceEncode(raw))
        }
    }

    static func referenceEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    /// RFC 3986 unreserved characters kept, all else percent-encoded (Foundation).
    static func referenceEncode(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? ""
    }
}

@Suite struct ServeConfigurationTests {
    @Test func readsYAML() throws {
        var c = ServeConfiguration()
        try c.apply(yaml: """
            host: 0.0.0.0
            port: 9000
            trusted_proxies: [10.0.0.0/8, "192.0.2.1"]
            proxy_protocol: true
            rate_limit: { burst: 10, per_second: 0.5 }
            claims:
              max_batch: 100
              gather_ms: 0
            """)
        try c.validate()
        #expect(c.host == "0.0.0.0" && c.port == 9000 && c.proxyProtocol)
        #expect(c.trustedProxies.map(\.description) == ["10.0.0.0/8", "192.0.2.1/32"])
        #expect(c.rateLimitBurst == 10 && c.rateLimitPerSecond == 0.5 && c.maxBatch == 100 && c.gatherMilliseconds == 0)
    }

    /// Where the board is checkpointed: beside a SQLite file unless named; on PostgreSQL only
    /// where named (each instance needs its own file); nowhere when the interval is 0.
    @Test func checkpointPathDependsOnTheStorage() throws {
        var c = ServeConfiguration()
        c.database = "/var/lib/ipquest/game.sqlite"
        #expect(c.effectiveCheckpointPath == "/var/lib/ipquest/game.sqlite.board")
        c.database = "postgres://db.internal/ipquest"
        #expect(c.effectiveCheckpointPath == nil)
        try c.apply(yaml: "checkpoint: { path: /var/lib/ipquest/a.board }")
        #expect(c.effectiveCheckpointPath == "/var/lib/ipquest/a.board")
        try c.apply(yaml: "checkpoint: { interval_seconds: 0 }")
        #expect(c.effectiveCheckpointPath == nil)
        #expect(throws: ConfigFileError.self) { try c.apply(yaml: "checkpoint: { path: '' }") }
    }

    /// Plain scalars are typed as YAML's core schema types them, quoted ones stay text, and
    /// either way the schema reads the value it expects.
    @Test func typesScalarsWithoutYamsResolver() throws {
        var c = ServeConfiguration()
        try c.apply(yaml: """
            port: "9001"
            rate_limit: { burst: 1_000, per_second: 2.5e-1, max_networks: 0x100 }
            http: { http2: yes, fast_path: Off }
            database: "0x10"
            """)
        #expect(c.port == 9001 && c.rateLimitBurst == 1_000 && c.rateLimitPerSecond == 0.25 && c.rateLimitMaxNetworks == 256)
        #expect(c.http2 && !c.fastPath && c.database == "0x10")

        // Plain or quoted, a scalar stays its text until a key reads it: a name is not a number.
        try c.apply(yaml: "database: 0x10")
        #expect(c.database == "0x10")

        #expect(ConfigSyntax.integer("-42") == -42)
        #expect(ConfigSyntax.integer("+0o17") == 15)
        #expect(ConfigSyntax.decimal("1e3") == 1_000)
        for text in ["10.0.0.0", "1__0", "_1", "1_", "0x", "nan", "inf", "-", "1.2.3", "0xfg", "true", "99999999999999999999x"] {
            #expect(ConfigSyntax.integer(text) == nil && ConfigSyntax.decimal(text) == nil, "\(text) is not a number")
        }
        #expect(ConfigSyntax.integer("99999999999999999999") == nil)
        #expect(ConfigSyntax.decimal("99999999999999999999") == 1e20)
        let document = try ConfigDocument.parse("a: [1, '2', {b: null}, ~, '~']")
        #expect(document == .mapping([ConfigEntry(key: "a", value: .sequence([
            .scalar("1"), .scalar("2"), .mapping([ConfigEntry(key: "b", value: .null)]), .null, .scalar("~"),
        ]))]))
    }

    @Test func readsLocationAndDataCenterSettings() throws {
        var c = ServeConfiguration()
        try c.apply(yaml: """
            location: { database: "", check_seconds: 5 }
            datacenter:
              sources: [aws=/data/ip-ranges.json, "gcp=https://www.gstatic.com/ipranges/cloud.json"]
              policy: tag
              routes: { /claim: deny, /api/: allow }
            """)
        #expect(c.locationDatabase == nil && c.locationCheckSeconds == 5)
        #expect(c.dataCenterSources.map(\.description) == ["aws=/data/ip-ranges.json", "gcp=https://www.gstatic.com/ipranges/cloud.json"])
        #expect(c.dataCenterPolicy.action(for: "/claim/bob") == .deny && c.dataCenterPolicy.action(for: "/api/ip") == .allow)
        #expect(c.dataCenterPolicy.action(for: "/") == .tag)
        try c.apply(yaml: "datacenter: { sources: official }")
        #expect(c.dataCenterSources.count == RangeSource.official.count)
    }

    @Test(arguments: [
        ("port: 70000", "invalid configuration: port: 70000 is outside 0…65535"),
        ("port: abc", "invalid configuration: port: expected an integer, got 'abc'"),
        ("colour: red", "invalid configuration: colour: unknown key (known here: bans, cache, checkpoint, claims, "),
        ("rate_limit: { brust: 3 }", "invalid configuration: rate_limit.brust: unknown key (known here: burst, max_networks, per_second)"),
        ("trusted_proxies: [10.0.0.1/8]", "invalid configuration: trusted_proxies[0]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"),
        ("durability: sometimes", "invalid configuration: durability: 'sometimes' is not one of full, normal"),
        ("host: example.com", "invalid configuration: host: 'example.com' is not an IP address"),
        ("rate_limit: 5", "invalid configuration: rate_limit: expected a mapping"),
        ("location: { database: /no/such/file.db }", "invalid configuration: location.database: cannot read '/no/such/file.db'"),
        ("datacenter: { policy: block }", "invalid configuration: datacenter.policy: 'block' is not one of tag, deny, allow"),
        ("datacenter: { routes: { claim: deny } }", "invalid configuration: datacenter.routes.claim: a path prefix starts with /"),
        ("datacenter: { routes: { /claim: maybe } }", "invalid configuration: datacenter.routes./claim: 'maybe' is not one of tag, deny, allow"),
        ("datacenter: { sources: [aws] }", "invalid configuration: datacenter.sources[0]: 'aws' is not PROVIDER=PATH or PROVIDER=URL"),
        ("host: ~", "invalid configuration: host: expected a string"),
        ("port: 1.5", "invalid configuration: port: expected an integer, got '1.5'"),
        ("http: { http2: maybe }", "invalid configuration: http.http2: expected true or false, got 'maybe'"),
        ("port: 1\nport: 2", "invalid configuration: (file): not valid YAML: Parser: expected all keys to be unique but found the following duplicated key(s): 'port'."),
        ("[1, 2]", "invalid configuration: (file): expected a mapping of keys"),
        ("limits: { requests_burst: x }", "invalid configuration: limits.requests_burst: expected an integer, got 'x'"),
        ("limits: { requests_per_second: inf }", "invalid configuration: limits.requests_per_second: expected a number, got 'inf'"),
        ("trusted_proxies: [10.0.0.0/8, [1]]", "invalid configuration: trusted_proxies[1]: expected a string, got a list"),
        ("trusted_proxies: \"10.0.0.0/8, 10.0.0.1/8\"", "invalid configuration: trusted_proxies[1]: '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)"),
        ("bans: { paths: { a: 1 } }", "invalid configuration: bans.paths: expected a list of strings"),
        ("base: &b { port: 1 }\nrate_limit: *b", "invalid configuration: (file): anchors and aliases (&name, *name) are not supported (line 1)"),
        // A key with line breaks (found by fuzzedFilesAreReadOrRefused, seed 7595101040626640150).
        ("? 1_000bans---\n\n  requests_burstpolicy1_000", "invalid configuration: 1_000bans---\\nrequests_burstpolicy1_000: unknown key (known here: bans, "),
        ("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "invalid configuration: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 32 levels"),
    ])
    func badValuesNameTheKey(yaml: String, message: String) {
        var c = ServeConfiguration()
        do {
            try c.apply(yaml: yaml)
            Issue.record("accepted \(yaml)")
        } catch {
            // A message ending in "known here: " is the start of the list of known keys.
            if message.hasSuffix(", ") {
                #expect(error.description.hasPrefix(message))
            } else {
                #expect(error.description == message)
            }
            #expect(!error.description.contains("\n"))
        }
    }

    static let structural = Array(":[]{}-,&*'\"#\n \t|>!?%".utf8)

    static let fuzzFragments: [String] = [
        "host", "port", "database", "trusted_proxies", "real_ip_header", "proxy_protocol", "rate_limit", "burst",
        "per_second", "claims", "max_batch", "http", "http2", "limits", "requests_burst", "requests_per_second",
        "bans", "paths", "user_agent_patterns", "datacenter", "routes", "/claim", "policy", "cache", "ttl_seconds",
        ": ", ":", "- ", "? ", ", ", "[", "]", "{", "}", "\n", "\n  ", "  ", "\t", "#", " # c", "|", ">-", "'", "\"",
        "&a ", "*a", "!!str ", "---\n", "10s", "-1", "0", "0x1F", "1_000", "1e3", "nan", ".inf", "yes", "off", "~",
        "null", "10.0.0.0/8", "10.0.0.1/8", "::1", "a=b", "deny", "8080", "99999999999999999999", "é", "\u{0}", "(",
    ]

    /// Random and garbled files: each is read or refused with a one-line error naming a key, never a crash.
    @Test func fuzzedFilesAreReadOrRefused() {
        let seed = ProcessInfo.processInfo.environment["CONFIG_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("ServeConfiguration fuzz seed: \(seed) (CONFIG_FUZZ_SEED=\(seed) repeats it)")
        var random = SplitMix64(seed: seed)
        let valid = Array("""
            host: 0.0.0.0
            port: 9000
            trusted_proxies: [10.0.0.0/8, "192.0.2.1"]
            rate_limit: { burst: 10, per_second: 0.5 }
            limits:
              requests_burst: 600
            bans: { paths: ["/wp-admin*"], user_agent_patterns: ["python-requests/.*"] }
            datacenter: { policy: tag, routes: { /claim: deny } }
            """.utf8)
        var accepted = 0
        for round in 0..<2_000 {
            let text: String
            if round % 2 == 0 {
                text = (0..<(1 + random.below(40))).map { _ in Self.fuzzFragments[random.below(Self.fuzzFragments.count)] }.joined()
            } else {
                var bytes = valid
                for _ in 0..<(1 + random.below(6)) {
                    let at = random.below(bytes.count)
                    switch random.below(3) {
                    case 0: bytes.remove(at: at)
                    case 1: bytes.insert(Self.structural[random.below(Self.structural.count)], at: at)
                    default: bytes.insert(contentsOf: Self.fuzzFragments[random.below(Self.fuzzFragments.count)].utf8, at: at)
                    }
                }
                text = String(decoding: bytes, as: UTF8.self)
            }
            var c = ServeConfiguration()
            do {
                try c.apply(yaml: text)
                accepted += 1
            } catch {
                #expect(!error.description.contains("\n") && error.description.hasPrefix("invalid configuration: "),
                        "seed \(seed) round \(round): \(text.debugDescription)")
            }
        }
        print("ServeConfiguration fuzz: \(accepted) of 2000 files accepted")
    }

    @Test func proxyProtocolNeedsTrustedProxies() {
        var c = ServeConfiguration()
        c.proxyProtocol = true
        #expect(throws: ConfigFileError(key: "proxy_protocol", problem: "needs trusted_proxies: PROXY headers are accepted only from them")) { try c.validate() }
    }
}

@Suite struct JSONWriterTests {
    /// Byte-written JSON equals the String-built form it replaced, escapes included.
    @Test func matchesStringEncoding() {
        var generator = SystemRandomNumberGenerator()
        let names = ["alice", "a<b>&c", "quote\"back\\slash", "tab\there", "ünïcode", "", "x*y+z!@/:.^-_"]
        for _ in 0..<500 {
            var writer = JSONWriter()
            var expected = ""
            for i in 0..<Int.random(in: 0...6, using: &generator) {
                let name = names.randomElement(using: &generator)!
                let value = [0, 7, -3, 255, Int.max, Int.min, Int.random(in: -1_000_000...1_000_000, using: &generator)].randomElement(using: &generator)!
                if i > 0 { writer.append(UInt8(ascii: ",")); expected += "," }
                writer.appendString(name)
                writer.append(UInt8(ascii: ":"))
                writer.append(value)
                expected += JSONText.quoted(name) + ":" + String(value)
            }
            #expect(writer.string == expected)
        }
    }

    @Test func pairsMatchTheirDecimalForm() {
        var writer = JSONWriter()
        var expected: [String] = []
        for (a, b) in [(0, 0), (255, 1), (9, 10), (Int.max, Int.max), (-1, 5), (3, Int.min), (1_000_000, 42)] {
            if !expected.isEmpty { writer.append(UInt8(ascii: ",")) }
            writer.appendPair(a, b)
            expected.append("[\(a),\(b)]")
        }
        #expect(writer.string == expected.joined(separator: ","))
    }
}
