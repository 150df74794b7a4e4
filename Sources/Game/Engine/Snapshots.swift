import Foundation
import NIOCore
import IPAddress
import TextFormats
public import GameRules

/// The views of one refresh, computed from a counts-only copy of the board after its lock is
/// released, then encoded. What can be moved on rather than recomputed (`Kept`) is kept
/// between refreshes.
struct BoardViews {
    var recent: [Claim]
    var scores: [Period: ScoreChunks] = [:]
    var blocks: [Period: [Scoreboard.BlockStanding]] = [:]
    /// The top of each leaderboard (`Scoreboard.top`), and how many players it ranks.
    var rankings: [Period: Scoreboard.Ranking] = [:]
    var residentialRankings: [Period: Scoreboard.Ranking] = [:]

    /// The periods whose views are copied (and then encoded); the others are left as published.
    let periods: [Period]

    /// What a refresh keeps for the next, which moves it on by what changed: block standings
    /// (recomputed only where a count of the block moved), the `/score` chunks (the players
    /// who moved re-encoded) and the leaderboards' tops (the players who moved re-placed).
    /// Under a trickle of claims a refresh so costs what the claims changed, not what the
    /// board holds: at a million players the views computed afresh took 0.6 s, twice a
    /// second (bench/scale.sh, issue 24).
    struct Kept {
        var versions: [UInt64] = []
        var all: [Period: [Scoreboard.BlockStanding]] = [:]
        var residential: [Period: [Scoreboard.BlockStanding]] = [:]
        var scores: [Period: ScoreChunks] = [:]
        var tops: [Period: Scoreboard.Ranking] = [:]
        var residentialTops: [Period: Scoreboard.Ranking] = [:]
    }

    /// Every view computed afresh (tests, and what a kept view must equal).
    init(_ board: Scoreboard, recent: [Claim], order: Scoreboard.NameOrder, periods: [Period] = Period.allCases) {
        var kept = Kept()
        self.init(board, recent: recent, order: order, periods: periods, changes: Scoreboard.Changes(), kept: &kept)
    }

    /// `board` may be a `countsOnly()` copy: only the counts are read, besides `recent`.
    /// `order` is the board's names in order (`Scoreboard.nameOrder`): every view breaks ties
    /// by it instead of comparing names. `changes` are the players who moved since `kept`
    /// was made (`Scoreboard.takeChanges`); a period whose list was given up is recomputed.
    init(_ board: Scoreboard, recent: [Claim], order: Scoreboard.NameOrder, periods: [Period] = Period.allCases,
         changes: Scoreboard.Changes, kept: inout Kept) {
        // A period built whole reads the ids in name order (its score table and rankings):
        // made once here, not once per view.
        let rebuilds = periods.contains { changes.moved($0) == nil || kept.scores[$0] == nil }
        let order = rebuilds ? order.withIDs() : order
        self.periods = periods
        self.recent = recent
        func standings(_ p: Period, residential: Bool, _ previous: [Scoreboard.BlockStanding]?) -> [Scoreboard.BlockStanding] {
            guard var out = previous, out.count == 256 else { return board.blocks(p, residential: residential, order: order) }
            for block in 0..<256 where board.blockMoved(block, period: p, residential: residential, since: kept.versions) {
                out[block] = board.standing(block: block, period: p, residential: residential, order: order)
            }
            return out
        }
        func top(_ p: Period, residential: Bool, _ standings: [Scoreboard.BlockStanding], _ previous: Scoreboard.Ranking?) -> Scoreboard.Ranking {
            if let previous, let moved = changes.moved(p),
               let top = board.top(updating: previous, period: p, residential: residential, standings: standings, order: order, moved: moved) {
                return top
            }
            return board.top(p, residential: residential, standings: standings, order: order)
        }
        // The /score groups each period rewrote this refresh, so each period's can be compared
        // with the next longer period's where either changed (`ScoreChunks.share`).
        var rewritten: [Period: Set<Int>] = [:]
        for p in periods {
            var chunks: ScoreChunks
            if let moved = changes.moved(p), let previous = kept.scores[p] {
                chunks = previous
                rewritten[p] = chunks.update(moved.lazy.map(\.id), period: p, board: board)
            } else {
                chunks = ScoreChunks(board.scoreTable(p, order: order), names: board.names)
                rewritten[p] = Set(chunks.groups.indices)
            }
            if p.index > 0, let longer = kept.scores[Period.allCases[p.index - 1]] {
                chunks.share(longer, groups: rewritten[p, default: []].union(rewritten[Period.allCases[p.index - 1], default: []]))
            }
            kept.scores[p] = chunks
            scores[p] = kept.scores[p]
            let all = standings(p, residential: false, kept.all[p])
            let residential = standings(p, residential: true, kept.residential[p])
            (kept.all[p], kept.residential[p]) = (all, residential)
            blocks[p] = all
            rankings[p] = top(p, residential: false, all, kept.tops[p])
            residentialRankings[p] = top(p, residential: true, residential, kept.residentialTops[p])
            (kept.tops[p], kept.residentialTops[p]) = (rankings[p], residentialRankings[p])
        }
        // The periods left out did not move, so their blocks did not either.
        kept.versions = board.blockVersions
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
            let chunks = scores[p] ?? ScoreChunks(Scoreboard.ScoreTable(), names: [])
            out[Snapshot.scoreKey(p)] = EncodedView(parts: chunks.parts(head: "{\"now\":\(nowArray),\"score\":{", tail: "}}"), contentHash: chunks.contentHash)
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
    /// A body served in parts, and a hash of its content (`ScoreChunks`), instead of `content`.
    var parts: (buffers: [ByteBuffer], contentHash: UInt64)?

    init(parts: [ByteBuffer], contentHash: UInt64) {
        content = []
        self.parts = (parts, contentHash)
    }

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

    mutating func append(contentsOf more: some Sequence<UInt8>) { bytes.append(contentsOf: more) }

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
