import Foundation
import IPQuestTestSupport
import Testing
import IPAddress
@testable import GameRules

/// Per-country and per-AS counts, kept as one area per player until a player's addresses
/// spread over several (or over none known), equal a plain recount of the owners through
/// claims that move players between one area, several and none, and a checkpoint round trip.
@Suite struct AreaCountsTests {
    static let countries: [String?] = ["DE", "FR", "US", nil]
    static let systems: [UInt32?] = [3320, 12322, nil]

    /// Recounts from the owners: area → player → addresses.
    static func reference(_ board: Scoreboard) -> (countries: [String: [String: Int]], systems: [UInt32: [String: Int]]) {
        var countries: [String: [String: Int]] = [:]
        var systems: [UInt32: [String: Int]] = [:]
        for claim in board.allClaims() {
            if let c = claim.origin.country { countries[c, default: [:]][claim.name.value, default: 0] += 1 }
            if let a = claim.origin.asn { systems[a, default: [:]][claim.name.value, default: 0] += 1 }
        }
        return (countries, systems)
    }

    static func check(_ board: Scoreboard, _ label: String) {
        let (countries, systems) = reference(board)
        for code in ["DE", "FR", "US"] {
            let standing = board.country(code, limit: 1_000)
            #expect(Dictionary(uniqueKeysWithValues: (standing?.players ?? []).map { ($0.name.value, $0.addresses) }) == countries[code] ?? [:], "\(label) \(code)")
        }
        for asn in [UInt32(3320), 12322] {
            let standing = board.autonomousSystem(asn, limit: 1_000)
            #expect(Dictionary(uniqueKeysWithValues: (standing?.players ?? []).map { ($0.name.value, $0.addresses) }) == systems[asn] ?? [:], "\(label) AS\(asn)")
        }
        #expect(Set(board.countries().map(\.key)) == Set(countries.keys), "\(label) countries")
        for summary in board.countries() { #expect(summary.addresses == countries[summary.key]!.values.reduce(0, +), "\(label) \(summary.key)") }
        for p in 0..<12 {
            let name = PlayerName(trusted: "p\(p)")
            let mine = board.player(name, period: .all)?.countries ?? []
            let expected = countries.compactMap { code, players in players[name.value].map { (code, $0) } }
            #expect(Dictionary(uniqueKeysWithValues: mine.map { ($0.country, $0.addresses) }) == Dictionary(uniqueKeysWithValues: expected), "\(label) p\(p)")
        }
    }

    @Test func areasMatchARecountThroughMovesAndACheckpoint() throws {
        var rng = SplitMix64(seed: 41)
        print("AreaCountsTests seed: 41")
        var board = Scoreboard()
        var now: Int64 = 1_790_000_000
        board.advance(to: now)
        for step in 0..<6_000 {
            now += 1
            // 12 players over 300 addresses; each address has its own origin most of the time,
            // and sometimes another one (the location database changed), or none.
            let address = UInt32(rng.below(300))
            let origin = ClaimOrigin(country: Self.countries[rng.below(Self.countries.count)], asn: Self.systems[rng.below(Self.systems.count)])
            board.apply(address: IPv4Address(0x0D00_0000 + address), name: PlayerName(trusted: "p\(rng.below(12))"), at: now, origin: origin,
                        enforceRefreshInterval: false)
            if step % 500 == 0 { Self.check(board, "step \(step)") }
        }
        Self.check(board, "end")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("areas-\(UInt64.random(in: 0...UInt64.max)).board").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BoardCheckpoint.write(board, generation: 1, to: path)
        var restored = try BoardCheckpoint.read(from: path).board
        Self.check(restored, "restored")
        // The restored board goes on counting like the original.
        for i in 0..<300 {
            let origin = ClaimOrigin(country: Self.countries[i % 4], asn: Self.systems[i % 3])
            restored.apply(address: IPv4Address(0x0D00_0000 + UInt32(i)), name: PlayerName(trusted: "p\(i % 5)"), at: now + 10, origin: origin, enforceRefreshInterval: false)
        }
        Self.check(restored, "restored and moved on")
    }
}
