import Foundation
import IPAddress
import TextFormats
public import GameRules

/// Plain values copied out of the board under its lock, encoded after the lock is released.
struct BoardViews {
    var recent: [Claim]
    var scores: [Period: Scoreboard.ScoreTable] = [:]
    var blocks: [Period: [Scoreboard.BlockStanding]] = [:]
    var rankings: [Period: Scoreboard.Ranking] = [:]
    var residentialRankings: [Period: Scoreboard.Ranking] = [:]
    /// Names by player id (the board's array, shared).
    let names: [PlayerName]

    /// The periods whose views are copied (and then encoded); the others are left as published.
    let periods: [Period]

    /// `board` may be a `countsOnly()` copy: only the counts are read, besides `recent`.
    /// `order` is the board's names in order (`Scoreboard.nameOrder`): every view sorts and
    /// breaks ties by it instead of comparing names (at a million players, a refresh spent most
    /// of its time in string comparisons).
    init(_ board: Scoreboard, recent: [Claim], order: Scoreboard.NameOrder, periods: [Period] = Period.allCases) {
        var standings = Standings()
        self.init(board, recent: recent, order: order, periods: periods, standings: &standings)
    }

    /// Block standings as last computed, and the block versions they were computed at: a
    /// refresh recomputes only the blocks whose counts moved (a handful under a trickle of
    /// claims, instead of every player of all 256 blocks, twice, per period).
    struct Standings {
        var versions: [UInt64] = []
        var all: [Period: [Scoreboard.BlockStanding]] = [:]
        var residential: [Period: [Scoreboard.BlockStanding]] = [:]
    }

    init(_ board: Scoreboard, recent: [Claim], order: Scoreboard.NameOrder, periods: [Period] = Period.allCases, standings cache: inout Standings) {
        self.periods = periods
        self.recent = recent
        names = board.names
        func standings(_ p: Period, residential: Bool, _ previous: [Scoreboard.BlockStanding]?) -> [Scoreboard.BlockStanding] {
            guard var out = previous, out.count == 256 else { return board.blocks(p, residential: residential, order: order) }
            for block in 0..<256 where board.blockMoved(block, period: p, residential: residential, since: cache.versions) {
                out[block] = board.standing(block: block, period: p, residential: residential, order: order)
            }
            return out
        }
        for p in periods {
            scores[p] = board.scoreTable(p, order: order)
            let all = standings(p, residential: false, cache.all[p])
            let residential = standings(p, residential: true, cache.residential[p])
            (cache.all[p], cache.residential[p]) = (all, residential)
            blocks[p] = all
            rankings[p] = board.ranking(p, residential: false, standings: all, order: order)
            residentialRankings[p] = board.ranking(p, residential: true, standings: residential, order: order)
        }
        // The periods left out did not move, so their blocks did not either.
        cache.versions = board.blockVersions
    }

    /// The rankings behind the first pages, for later pages.
    var leaderboardSources: [String: Scoreboard.Ranking] {
        var out: [String: Scoreboard.Ranking] = [:]
        for p in periods {
            out[Snapshot.leaderboardKey(p)] = rankings[p] ?? .init()
            out[Snapshot.leaderboardKey(p, residential: true)] = residentialRankings[p] ?? .init()
        }
        return out
    }

    func encode(now: (Int64, Int32)) -> [String: EncodedView] {
        let nowArray = "[\(now.0),\(now.1)]"
        var out: [String: EncodedView] = [:]

        // ipv4.games-compatible shapes.
        let recentContent = recent.map { "[\($0.address.value),\(JSONText.quoted($0.name.value)),\($0.claimedAt)]" }.joined(separator: ",")
        out[Snapshot.recentKey] = EncodedView(recentContent, head: "{\"now\":\(nowArray),\"recent\":[", tail: "]}")
        for p in periods {
            // The all-time score holds an entry per (player, block): written as bytes, not a
            // String per pair (that made most of a refresh at a million claims).
            var writer = JSONWriter()
            let table = scores[p] ?? .init()
            writer.reserveCapacity(table.players.count * 24 + table.block.count * 12)
            for (i, id) in table.players.enumerated() {
                if i > 0 { writer.append(UInt8(ascii: ",")) }
                writer.appendString(names[Int(id)].value)
                writer.append(UInt8(ascii: ":"))
                writer.append(UInt8(ascii: "["))
                for j in table.blocks(of: i) {
                    if j > Int(table.start[i]) { writer.append(UInt8(ascii: ",")) }
                    writer.appendPair(Int(table.block[j]), Int(table.count[j]))
                }
                writer.append(UInt8(ascii: "]"))
            }
            out[Snapshot.scoreKey(p)] = EncodedView(content: writer.bytes, head: "{\"now\":\(nowArray),\"score\":{", tail: "}}")
        }

        // Our own API.
        let apiRecent = recent.map {
            "{\"ip\":\"\($0.address)\",\"block\":\($0.address.block),\"name\":\(JSONText.quoted($0.name.value)),\"nick\":\(JSONText.quoted($0.name.value)),\"claimed_at\":\($0.claimedAt),\($0.origin.jsonFields)}"
        }.joined(separator: ",")
        out[Snapshot.apiRecentKey] = EncodedView(apiRecent, head: "{\"updated_at\":\(now.0),\"claims\":[", tail: "]}")
        for p in periods {
            for residential in [false, true] {
                // The first page only: a leaderboard of every player grows with spam names.
                let all = (residential ? residentialRankings[p] : rankings[p]) ?? .init()
                let size = Snapshot.leaderboardPageSize
                let first = LeaderboardJSON.entries(all.entries(0..<size)[...])
                let total = all.count
                let body = LeaderboardJSON.wrap(first, period: p, residential: residential, updatedAt: now.0, total: total, limit: size,
                                                next: total > size ? size : nil)
                out[Snapshot.leaderboardKey(p, residential: residential)] = EncodedView("\(total)|" + first, body: body)
            }

            // Blocks where someone holds an address, as Capture The IP lists them (its page reads
            // every listed block as held); its field names (`nick`, `is_tied`, `claims`) beside ours.
            let updated = JSONText.quoted(rfc3339(now.0))
            let tiles = (blocks[p] ?? []).filter { $0.total > 0 }.map { s -> String in
                let holder = s.holder.map { JSONText.quoted($0.value) } ?? "null"
                let runnerUp = s.runnerUp.map { JSONText.quoted($0.value) } ?? "null"
                let nick = s.isTied ? "\"tied\"" : holder
                return "{\"block\":\(s.block),\"holder\":\(holder),\"tied\":\(s.isTied),\"count\":\(s.count),\"runner_up\":\(runnerUp),\"runner_up_count\":\(s.runnerUpCount),\"total\":\(s.total),\"players\":\(s.players),\"nick\":\(nick),\"is_tied\":\(s.isTied),\"claims\":\(s.count)}"
            }.joined(separator: ",")
            out[Snapshot.blocksKey(p)] = EncodedView(tiles, head: "{\"period\":\"\(p.rawValue)\",\"updated_at\":\(now.0),\"last_updated_at\":\(updated),\"blocks\":[",
                                                     tail: "]}")

            let ranks = RanksJSON.entries(holders: (rankings[p] ?? .init()).holders, standings: blocks[p] ?? [])
            out[Snapshot.ranksKey(p)] = EncodedView(ranks, head: "{\"period\":\"\(p.rawValue)\",\"updated_at\":\(now.0),\"last_updated_at\":\(updated),\"rankings\":[",
                                                    tail: "]}")
        }
        return out
    }
}

/// One view as encoded: `content`, what its ETag covers (everything but the moment it was
/// encoded), and the body served: `head` + content + `tail`, or a body of its own (written
/// into one buffer by `SnapshotStore`, without joining strings first).
struct EncodedView {
    var content: [UInt8]
    var head = ""
    var tail = ""
    var body: String?

    init(content: [UInt8], head: String, tail: String) {
        self.content = content
        self.head = head
        self.tail = tail
    }

    init(_ content: String, head: String, tail: String) {
        self.init(content: Array(content.utf8), head: head, tail: tail)
    }

    init(_ content: String, body: String) {
        self.content = Array(content.utf8)
        self.body = body
    }
}

/// `2026-12-03T10:00:00Z`: Capture The IP's `last_updated_at`.
func rfc3339(_ seconds: Int64) -> String {
    Date(timeIntervalSince1970: TimeInterval(seconds)).ISO8601Format()
}

/// Capture The IP's rankings: the players who alone hold at least one block, by blocks held,
/// then by `total_claims` (their addresses inside the blocks they hold, not all of them).
enum RanksJSON {
    /// `holders`: the leaderboard's first entries, the players who hold a block.
    static func entries(holders leaders: [Scoreboard.LeaderboardEntry], standings: [Scoreboard.BlockStanding]) -> String {
        var countOf = [Int](repeating: 0, count: 256)
        for s in standings where (0..<256).contains(s.block) { countOf[s.block] = s.count }
        // The leaderboard is in (blocks, addresses, name) order: its position breaks later ties.
        let holders = leaders.enumerated().map { i, e in
            (position: i, entry: e, claims: e.blocksHeld.reduce(0) { $0 + countOf[$1] })
        }.sorted {
            ($0.entry.blocksHeld.count, $0.claims) != ($1.entry.blocksHeld.count, $1.claims)
                ? ($0.entry.blocksHeld.count, $0.claims) > ($1.entry.blocksHeld.count, $1.claims) : $0.position < $1.position
        }
        var rank = 0
        return holders.enumerated().map { i, h in
            if i == 0 || (holders[i - 1].entry.blocksHeld.count, holders[i - 1].claims) != (h.entry.blocksHeld.count, h.claims) { rank = i + 1 }
            let name = JSONText.quoted(h.entry.name.value)
            return "{\"nick\":\(name),\"name\":\(name),\"rank\":\(rank),\"blocks\":[\(h.entry.blocksHeld.map(String.init).joined(separator: ","))],\"total_claims\":\(h.claims),\"addresses\":\(h.entry.addresses)}"
        }.joined(separator: ",")
    }
}

/// The `/api/leaderboard` shape, shared by the snapshot's first page and later pages.
enum LeaderboardJSON {
    static func entries(_ list: ArraySlice<Scoreboard.LeaderboardEntry>) -> String {
        list.map {
            "{\"rank\":\($0.rank),\"name\":\(JSONText.quoted($0.name.value)),\"blocks\":[\($0.blocksHeld.map(String.init).joined(separator: ","))],\"block_count\":\($0.blocksHeld.count),\"addresses\":\($0.addresses)}"
        }.joined(separator: ",")
    }

    static func wrap(_ inner: String, period: Period, residential: Bool, updatedAt: Int64, total: Int, limit: Int, next: Int?) -> String {
        let cursor = next.map { "\"\($0)\"" } ?? "null"
        return "{\"period\":\"\(period.rawValue)\",\"residential\":\(residential),\"updated_at\":\(updatedAt),\"total_players\":\(total),\"limit\":\(limit),\"next_cursor\":\(cursor),\"players\":[\(inner)]}"
    }
}

/// JSON text written as UTF-8 bytes, for the large snapshot bodies.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    mutating func append(_ byte: UInt8) { bytes.append(byte) }

    mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

    /// A decimal integer.
    mutating func append(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var n = value.magnitude
        if n < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(n))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var i = 20
            repeat {
                i -= 1
                digits[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i...]))
        }
    }

    /// A JSON string literal, escaped as `JSONText.quoted` does. One pass over the string's
    /// bytes checks them and, in the usual case of nothing to escape, copies them.
    mutating func appendString(_ s: String) {
        var s = s
        let plain = s.withUTF8 { utf8 -> Bool in
            guard utf8.allSatisfy(JSONText.isPlain) else { return false }
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: utf8)
            bytes.append(UInt8(ascii: "\""))
            return true
        }
        if !plain { bytes.append(contentsOf: JSONText.quoted(s).utf8) }
    }

    /// `[a,b]` for two non-negative integers, written in one append.
    mutating func appendPair(_ a: Int, _ b: Int) {
        guard a >= 0, b >= 0 else {
            append(UInt8(ascii: "["))
            append(a)
            append(UInt8(ascii: ","))
            append(b)
            append(UInt8(ascii: "]"))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 44) { out in
            var i = 44
            func put(_ byte: UInt8) {
                i -= 1
                out[i] = byte
            }
            func digits(_ value: Int) {
                var n = value
                repeat {
                    put(UInt8(ascii: "0") + UInt8(n % 10))
                    n /= 10
                } while n > 0
            }
            put(UInt8(ascii: "]"))
            digits(b)
            put(UInt8(ascii: ","))
            digits(a)
            put(UInt8(ascii: "["))
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: out[i...]))
        }
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
