import Foundation
import IPQuestTestSupport
import Testing
import IPAddress
@testable import GameRules

/// The year board counts by UTC day (no log entry per claim: a day leaving the window is found
/// in the address pages) and the player history keeps
/// 31 days of daily changes: both checked against a plain recount of the owners.
@Suite struct YearWindowTests {
    static let day: Int64 = 86_400
    /// Midnight UTC of some day, far from the epoch.
    static let t0: Int64 = 20_000 * day

    /// The addresses each player holds whose claim is inside the year window ending at `now`.
    static func reference(_ owners: [UInt32: (name: String, at: Int64)], now: Int64) -> [String: Int] {
        let start = Period.year.start(endingAt: now)!
        var out: [String: Int] = [:]
        for (_, o) in owners where o.at >= start { out[o.name, default: 0] += 1 }
        return out
    }

    static func yearCounts(_ b: Scoreboard) -> [String: Int] {
        var out: [String: Int] = [:]
        for (name, blocks) in b.scores(.year) { out[name.value] = blocks.reduce(0) { $0 + $1.count } }
        return out
    }

    @Test func theYearStartsAtTheBeginningOfTheDay365DaysAgo() {
        let now = Self.t0 + 500 * Self.day + 13 * 3_600
        #expect(Period.year.start(endingAt: now) == Self.t0 + 135 * Self.day)
        #expect(Period.month.start(endingAt: now) == now - 30 * Self.day)
    }

    @Test func claimsLeaveTheYearByDayAndReplacedClaimsLeaveTheirOwnDay() {
        var b = Scoreboard()
        var owners: [UInt32: (name: String, at: Int64)] = [:]
        var rng = SplitMix64(seed: 20_261_203)
        print("YearWindowTests seed 20261203")
        var now = Self.t0
        b.advance(to: now)
        // 500 days of claims: 40 addresses of 4 blocks, 3 players, re-claimed over and over.
        for step in 0..<3_000 {
            now += Int64(rng.next() % 14_400) + 1
            b.advance(to: now)
            let address = IPv4Address(UInt32(10 + rng.next() % 4) << 24 | UInt32(rng.next() % 40))
            let player = ["ann", "bo", "cy"][Int(rng.next() % 3)]
            if case .claimed = b.apply(address: address, name: name(player), at: now) { owners[address.value] = (player, now) }
            if step % 97 == 0 { #expect(Self.yearCounts(b) == Self.reference(owners, now: now), "step \(step)") }
        }
        // A year with no claims at all: everything leaves, day by day.
        for _ in 0..<40 {
            now += 10 * Self.day
            b.advance(to: now)
            #expect(Self.yearCounts(b) == Self.reference(owners, now: now))
        }
        #expect(Self.yearCounts(b).isEmpty)
        // The all-time board kept every owner.
        #expect(b.addressCount == owners.count)
    }

    @Test func aReclaimWarCostsHistoryEntriesPerDayAndPlayerNotPerClaim() {
        var b = Scoreboard()
        var now = Self.t0
        // 100,000 claims of 1,000 addresses in one /8 by two players within 3 days.
        for i in 0..<100_000 {
            now = Self.t0 + Int64(i) * 2
            b.apply(address: IPv4Address(7 << 24 | UInt32(i % 1_000)), name: name(i % 2 == 0 ? "even" : "odd"), at: now, enforceRefreshInterval: false)
        }
        b.advance(to: now)
        #expect(Self.yearCounts(b) == ["even": 500, "odd": 500])
        let historyEntries = b.heldChanges.values.reduce(0) { $0 + $1.count }
        #expect(historyEntries <= 3 * 2)
    }

    @Test func holdingsFollowGainsAndLossesDayByDay() {
        var b = Scoreboard()
        let start = Self.t0 + 3_600
        b.advance(to: start)
        // Day 0: ann takes 5 addresses; day 2: bo takes 2 of them; day 5: ann takes 3 more.
        for i in 0..<5 { b.apply(address: IPv4Address(1, 0, 0, UInt8(i)), name: name("ann"), at: start) }
        for i in 0..<2 { b.apply(address: IPv4Address(1, 0, 0, UInt8(i)), name: name("bo"), at: start + 2 * Self.day) }
        for i in 10..<13 { b.apply(address: IPv4Address(1, 0, 0, UInt8(i)), name: name("ann"), at: start + 5 * Self.day) }
        let now = start + 6 * Self.day
        b.advance(to: now)
        let ann = b.holdings(of: name("ann"), days: 8, now: now)
        #expect(ann.map(\.addresses) == [0, 5, 5, 3, 3, 3, 6, 6])
        #expect(ann.last?.day == Scoreboard.day(of: now) && ann.first?.day == Scoreboard.day(of: now) - 7)
        #expect(b.holdings(of: name("bo"), days: 8, now: now).map(\.addresses) == [0, 0, 0, 2, 2, 2, 2, 2])
        #expect(b.holdings(of: name("nobody"), days: 8, now: now).isEmpty)
        // Changes older than 31 days are dropped; the oldest shown days then read as today's level.
        let later = now + 40 * Self.day
        b.advance(to: later)
        #expect(b.heldChanges.isEmpty)
        #expect(b.holdings(of: name("ann"), days: 30, now: later).allSatisfy { $0.addresses == 6 })
    }

    @Test func checkpointKeepsTheYearAndTheHistory() throws {
        var b = Scoreboard()
        let start = Self.t0 + 100
        b.advance(to: start)
        for i in 0..<50 { b.apply(address: IPv4Address(2, 0, 0, UInt8(i)), name: name(i % 3 == 0 ? "x" : "y"), at: start + Int64(i) * 40_000) }
        let now = start + 60 * Self.day
        b.advance(to: now)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("year-\(UInt64.random(in: 0...UInt64.max)).board").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BoardCheckpoint.write(b, generation: 1, to: path)
        let restored = try BoardCheckpoint.read(from: path).board
        #expect(restored.heldChanges == b.heldChanges && Self.yearCounts(restored) == Self.yearCounts(b))
        var x = b, y = restored
        let far = now + 400 * Self.day
        x.advance(to: far)
        y.advance(to: far)
        #expect(Self.yearCounts(x) == Self.yearCounts(y) && Self.yearCounts(y).isEmpty)
    }
}

/// A small seeded generator (SplitMix64) so runs can be repeated.


func name(_ s: String) -> PlayerName { PlayerName(s)! }
