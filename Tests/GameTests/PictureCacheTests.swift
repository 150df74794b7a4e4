import Foundation
import IPAddress
import Logging
import Testing
@testable import Game
@testable import GameRules

/// Rendered pictures are made again only when what they show changed.
@Suite struct PictureCacheTests {
    /// A block's map depends on the owners in that block only: claims elsewhere keep it (at
    /// 50 M addresses a rebuild took ~10 ms, /blocks/N's p99 under a trickle of claims in
    /// another block), a claim in the block makes it again.
    @Test func aBlockMapIsMadeAgainOnlyWhenItsOwnBlockChanges() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-pictures-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let engine = try await GameEngine(storage: try SQLiteClaimStorage(path: dir + "/game.sqlite", durability: .normal), logger: logger)
        let run = Task { try await engine.run() }
        defer { engine.close() }
        func claim(_ address: IPv4Address, _ name: String) async throws {
            _ = try await engine.claim(address: address, name: PlayerName(trusted: name))
            engine.refreshSnapshots()
        }
        let maps = PictureCache<BlockMapLegend>(minimumAge: .zero)
        try await claim(IPv4Address(20, 1, 2, 3), "ann")
        let first = maps.map(block: 20, engine: engine)
        try await claim(IPv4Address(10, 1, 2, 3), "bo")
        let kept = maps.map(block: 20, engine: engine)
        #expect(kept.builtAt == first.builtAt && kept.etag == first.etag)
        try await claim(IPv4Address(20, 9, 9, 9), "bo")
        let remade = maps.map(block: 20, engine: engine)
        #expect(remade.builtAt != first.builtAt && remade.etag != first.etag)
        #expect(remade.extra.legend.map(\.name).sorted() == ["ann", "bo"])
        engine.close()
        _ = try? await run.value
    }
}
