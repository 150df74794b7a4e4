import Foundation
import IPQuestTestSupport
import Testing
@testable import GameRules

/// The board's name index finds every interned name by its text, through growth, and nothing
/// else; the board's players keep their ids across a checkpoint round trip.
@Suite struct NameIndexTests {
    @Test func findsEveryNameThroughGrowthAndNothingElse() {
        var rng = SplitMix64(seed: 5)
        print("NameIndexTests seed: 5")
        var names: [PlayerName] = []
        var index = NameIndex()
        var expected: [String: UInt32] = [:]
        for _ in 0..<50_000 {
            let text = "p\(rng.next() % 200_000)"
            if let id = index.find(text, in: names) {
                #expect(expected[text] == id)
                continue
            }
            #expect(expected[text] == nil, "\(text) was interned but not found")
            let id = UInt32(names.count)
            names.append(PlayerName(trusted: text))
            index.insert(id, names: names)
            expected[text] = id
        }
        #expect(index.count == expected.count)
        for (text, id) in expected { #expect(index.find(text, in: names) == id) }
        for k in 0..<1_000 { #expect(index.find("absent\(k)", in: names) == nil) }
        #expect(NameIndex().find("p1", in: []) == nil)
    }

    @Test func playersKeepTheirIdsThroughACheckpoint() throws {
        var board = Scoreboard()
        for i in 0..<5_000 {
            board.apply(address: .init(UInt32(0x0100_0000 + i)), name: PlayerName(trusted: "n\(i % 1_700)"), at: 1_790_000_000, enforceRefreshInterval: false)
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-names-\(UUID().uuidString).board").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try BoardCheckpoint.write(board, generation: 1, to: path)
        let (copy, _) = try BoardCheckpoint.read(from: path)
        for i in stride(from: 0, to: 1_700, by: 13) {
            let name = PlayerName(trusted: "n\(i)")
            #expect(copy.isKnown(name) && copy.player(name, period: .all) == board.player(name, period: .all))
        }
        #expect(!copy.isKnown(PlayerName(trusted: "nobody")))
    }
}
