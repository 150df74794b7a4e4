import Foundation
import HTTPServing
import IPQuestTestSupport
import NIOCore
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// The snapshot views built through a precomputed name order (integers, from a counts-only
/// copy of the board) are exactly the views the board's own queries give.
@Suite struct BoardViewsTests {
    @Test func viewsThroughTheNameOrderEqualTheBoardsOwn() {
        var board = Scoreboard()
        var rng = SplitMix64(seed: 11)
        let now: Int64 = 1_790_000_000
        board.advance(to: now)
        var order = Scoreboard.NameOrder()
        var kept = BoardViews.Kept()
        for round in 0..<4 {
            // Many players with equal counts (ties everywhere), some data-center addresses.
            for _ in 0..<4_000 {
                let ip = UInt32(truncatingIfNeeded: rng.next()) & 0x0FFF_FFFF | 0x1000_0000
                let name = "n\(rng.next() % 900)"
                let origin = rng.next() % 4 == 0 ? ClaimOrigin(country: "US", asn: 1, provider: "aws") : .unknown
                board.apply(address: IPv4Address(ip), name: PlayerName(trusted: name), at: now - Int64(rng.next() % (40 * 86_400)), origin: origin,
                            enforceRefreshInterval: false)
            }
            // Claims leave the windows between rounds too.
            board.advance(to: now + Int64(round) * 3_600)
            // The order is extended from the previous round's, as the engine does.
            order = board.nameOrder(extending: order)
            #expect(order.count == board.names.count)
            let copy = board.countsOnly()
            // Views kept from the last round and moved on by the players who moved (with the
            // window moved on too; the first round has no list and computes all) equal views
            // computed afresh: standings, each /score entry, leaderboards.
            let changes = board.takeChanges()
            #expect(changes.moved(.all) == nil || round > 0)
            let views = BoardViews(copy, recent: [], order: order, changes: changes, kept: &kept)
            for period in Period.allCases {
                #expect(views.blocks[period] == board.blocks(period), "round \(round) \(period) kept standings")
                #expect(kept.residential[period] == board.blocks(period, residential: true), "round \(round) \(period) kept residential standings")
                let expected = Dictionary(uniqueKeysWithValues: board.scores(period).map { ($0.name.value, $0.blocks.map { [$0.block, $0.count] }) })
                #expect(Self.object(views.scores[period]!) == expected, "round \(round) \(period) /score")
                #expect(views.rankings[period]!.entries(0..<10_000) == board.leaderboard(period), "round \(round) \(period) leaderboard")
                #expect(views.residentialRankings[period]!.entries(0..<10_000) == board.leaderboard(period, residential: true),
                        "round \(round) \(period) residential leaderboard")
            }
            for period in Period.allCases {
                let slow = board.scores(period)
                let fast = copy.scores(period, order: order)
                #expect(slow.map(\.name) == fast.map(\.name), "round \(round) \(period) score names")
                #expect(slow.map { $0.blocks.map(\.block) } == fast.map { $0.blocks.map(\.block) }, "round \(round) \(period) score blocks")
                #expect(slow.map { $0.blocks.map(\.count) } == fast.map { $0.blocks.map(\.count) }, "round \(round) \(period) score counts")
                for residential in [false, true] {
                    let standings = copy.blocks(period, residential: residential, order: order)
                    #expect(standings.map(\.holder) == board.blocks(period, residential: residential).map(\.holder), "\(period) holders")
                    #expect(standings == board.blocks(period, residential: residential), "round \(round) \(period) blocks")
                    let fastBoard = copy.leaderboard(period, residential: residential, standings: standings, order: order)
                    #expect(fastBoard == board.leaderboard(period, residential: residential), "round \(round) \(period) \(residential) leaderboard")
                    // Pages from the compact ranking, starting anywhere (inside runs of ties
                    // too), equal the same slice of the whole leaderboard.
                    let ranking = copy.ranking(period, residential: residential, standings: standings, order: order)
                    #expect(ranking.count == fastBoard.count)
                    for start in stride(from: 0, to: ranking.count + 10, by: 37) {
                        let page = ranking.entries(start..<start + 13)
                        #expect(page == Array(fastBoard[min(start, fastBoard.count)..<min(start + 13, fastBoard.count)]), "\(period) page at \(start)")
                    }
                    #expect(ranking.holders == fastBoard.filter { !$0.blocksHeld.isEmpty })
                }
            }
        }
    }

    /// The /score object of kept chunks, as a client reads it.
    static func object(_ chunks: ScoreChunks) -> [String: [[Int]]]? {
        let body = chunks.parts(head: "{", tail: "}").joined()
        return try? JSONDecoder().decode([String: [[Int]]].self, from: Data(body.readableBytesView))
    }

    /// With more players than a kept top holds, the top moved on by the players who moved
    /// (up, down, out, in, and blocks changing hands) is the whole leaderboard's first
    /// entries, and ranks as many players.
    @Test func keptTopsAreTheWholeLeaderboardsFirstEntries() {
        var board = Scoreboard()
        var rng = SplitMix64(seed: 29)
        print("seed", rng.seed)
        let now: Int64 = 1_790_000_000
        board.advance(to: now)
        var ip: UInt32 = 0x0A00_0000
        func claim(_ name: String, _ address: UInt32, dataCenter: Bool = false) {
            board.apply(address: IPv4Address(address), name: PlayerName(trusted: name), at: now - 5,
                        origin: dataCenter ? ClaimOrigin(country: "US", asn: 1, provider: "aws") : .unknown, enforceRefreshInterval: false)
        }
        let players = Scoreboard.Ranking.topSize + 2_000
        for i in 0..<players {
            for _ in 0...(i % 5) {
                claim("p\(i)", ip, dataCenter: i % 7 == 0)
                ip += 1
            }
        }
        var order = board.nameOrder(extending: .init())
        var kept = BoardViews.Kept()
        for round in 0..<6 {
            let changes = board.takeChanges()
            let copy = board.countsOnly()
            order = copy.nameOrder(extending: order)
            let views = BoardViews(copy, recent: [], order: order, periods: [.all], changes: changes, kept: &kept)
            for residential in [false, true] {
                let top = (residential ? views.residentialRankings : views.rankings)[.all]!
                let whole = board.leaderboard(.all, residential: residential)
                #expect(top.count == whole.count, "round \(round) \(residential) players ranked")
                #expect(!top.isWhole)
                #expect(top.entryCount >= Scoreboard.Ranking.minimumTop)
                // The first entry that differs, if any (not the whole lists, thousands long).
                let kept = top.entries(0..<top.entryCount)
                let differs = zip(kept, whole).enumerated().first { $0.element.0 != $0.element.1 }.map { "at \($0.offset): \($0.element.0) vs \($0.element.1)" }
                #expect(differs == nil, "round \(round) \(residential) top")
            }
            // Moves for the next round: players climb into the top, fall out of it, leave
            // the board, arrive; some addresses go to a data center; one player takes blocks.
            for _ in 0..<300 {
                let victim = 0x0A00_0000 + UInt32(rng.next() % UInt64(ip - 0x0A00_0000))
                claim("p\(rng.next() % UInt64(players + 50))", victim, dataCenter: rng.next() % 5 == 0)
            }
            for _ in 0..<(round * 40) {
                claim("new\(round)", ip)
                ip += 1
            }
            if round == 3 {
                for k in 0..<2_000 { claim("taker", 0x0A00_0000 + UInt32(k)) }
            }
        }
    }

    /// Where the year's /score holds what all time's does, its groups are all time's buffers
    /// (stored once): only the group of a player who holds an address claimed before the
    /// year is stored twice, and once that address changes hands the group is shared again.
    /// Both bodies stay what the board holds.
    @Test func equalScoreGroupsOfTwoPeriodsAreStoredOnce() {
        var board = Scoreboard()
        let now: Int64 = 1_790_000_000
        board.advance(to: now)
        let taken = IPv4Address(0x0A00_0001)
        // Claims are applied in time order: the one older than the year first.
        board.apply(address: taken, name: PlayerName(trusted: "old"), at: now - 400 * 86_400, enforceRefreshInterval: false)
        for i in 0..<60_000 {
            board.apply(address: IPv4Address(0x0B00_0000 + UInt32(i) * 3), name: PlayerName(trusted: "s\(i)"), at: now - 10, enforceRefreshInterval: false)
        }
        func storage(_ buffer: ByteBuffer) -> UnsafeRawPointer? { buffer.withVeryUnsafeBytes { $0.baseAddress } }
        var kept = BoardViews.Kept()
        var order = Scoreboard.NameOrder()
        func parted() -> [Int] {
            let changes = board.takeChanges()
            let copy = board.countsOnly()
            order = copy.nameOrder(extending: order)
            let views = BoardViews(copy, recent: [], order: order, changes: changes, kept: &kept)
            for p in [Period.all, .year] {
                let expected = Dictionary(uniqueKeysWithValues: board.scores(p).map { ($0.name.value, $0.blocks.map { [$0.block, $0.count] }) })
                #expect(Self.object(views.scores[p]!) == expected, "\(p) /score")
            }
            let (all, year) = (views.scores[.all]!, views.scores[.year]!)
            #expect(all.groups.count == 4)
            return all.groups.indices.filter { storage(all.groups[$0]) != storage(year.groups[$0]) }
        }
        #expect(parted().count == 1)
        board.apply(address: taken, name: PlayerName(trusted: "s777"), at: now, enforceRefreshInterval: false)
        #expect(parted() == [])
    }

    /// A body kept through updates is regrouped as it grows past 1 MB a group and shrinks
    /// under 64 KB a group, and holds what the board holds all along.
    @Test func scoreGroupsFollowTheBodysSize() {
        var board = Scoreboard()
        let now: Int64 = 1_790_000_000
        board.advance(to: now)
        func claim(_ i: Int, _ name: String) {
            board.apply(address: IPv4Address(0x0C00_0000 + UInt32(i)), name: PlayerName(trusted: name), at: now, enforceRefreshInterval: false)
        }
        for i in 0..<10 { claim(i, "first\(i)") }
        var order = board.nameOrder(extending: .init())
        var chunks = ScoreChunks(board.scoreTable(.all, order: order), names: board.names)
        func check(_ groups: Int, _ label: String) {
            let expected = Dictionary(uniqueKeysWithValues: board.scores(.all).map { ($0.name.value, $0.blocks.map { [$0.block, $0.count] }) })
            #expect(Self.object(chunks) == expected, "\(label) /score")
            #expect(chunks.groups.count == groups, "\(label) groups")
        }
        check(1, "small")
        // 70,000 players join: about 1.4 MB in one group, so it is cut in four.
        _ = board.takeChanges()
        for i in 10..<70_010 { claim(i, "joined\(i)") }
        order = board.nameOrder(extending: order)
        chunks.update((10..<70_010).map { UInt32($0) }, period: .all, board: board)
        check(4, "grown")
        // All but 1,000 of them lose their address to one player: the groups fall under 64 KB.
        for i in 1_000..<70_010 { claim(i, "taker") }
        let taker = UInt32(board.names.count - 1)
        chunks.update((1_000..<70_010).map { UInt32($0) } + [taker], period: .all, board: board)
        check(1, "shrunk")
    }

    /// Address counts of 1,024 and more are ranked through the counting sort's dictionary
    /// path: ties by name, ranks shared, pages right from any offset.
    @Test func largeCountsRankLikeTheBoardsOwn() {
        var board = Scoreboard()
        let now: Int64 = 1_790_000_000
        board.advance(to: now)
        var ip: UInt32 = 0x0100_0000
        for (name, n) in [("top", 3_000), ("b", 1_500), ("a", 1_500), ("c", 1_200), ("d", 7), ("e", 7)] {
            for _ in 0..<n {
                board.apply(address: IPv4Address(ip), name: PlayerName(trusted: name), at: now - 10, enforceRefreshInterval: false)
                ip += 1
            }
        }
        let order = board.nameOrder(extending: .init())
        let copy = board.countsOnly()
        let standings = copy.blocks(.all, residential: false, order: order)
        let ranking = copy.ranking(.all, residential: false, standings: standings, order: order)
        let expected = board.leaderboard(.all)
        #expect(expected.map(\.name.value) == ["top", "a", "b", "c", "d", "e"])
        #expect(expected.map(\.rank) == [1, 2, 2, 4, 5, 5])
        for start in 0..<expected.count {
            #expect(ranking.entries(start..<start + 2) == Array(expected[start..<min(start + 2, expected.count)]), "page at \(start)")
        }
    }
}
