import Foundation
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// Issue 24: `/api/leaderboard` pages through players (a default limit, `limit`/`cursor`)
/// instead of sending every player; the pages together are the whole ranking.
@Suite(.serialized) struct LeaderboardPagingTests {
    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    @Test func pagesTogetherAreTheWholeRanking() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        // 250 players, player i holding i % 7 + 1 addresses.
        for i in 0..<250 {
            for j in 0..<(i % 7 + 1) {
                _ = try await server.engine.claim(address: IPv4Address(UInt32(0x0A00_0000) + UInt32(i * 8 + j)), name: PlayerName(trusted: "pl\(i)"))
            }
        }
        server.engine.refreshSnapshots()
        let c = server.client
        let first = Self.json(try await c.get("/api/leaderboard").text)
        #expect((first["players"] as? [Any])?.count == 100)
        #expect(first["total_players"] as? Int == 250 && first["limit"] as? Int == 100 && first["next_cursor"] as? String == "100")

        var names: [String] = []
        var cursor: String? = "0"
        var pages = 0
        while let at = cursor, pages < 10 {
            let page = Self.json(try await c.get("/api/leaderboard?limit=60&cursor=\(at)").text)
            names += (page["players"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            cursor = page["next_cursor"] as? String
            pages += 1
        }
        #expect(pages == 5)
        let expected = server.engine.withBoard { $0.leaderboard(.all).map(\.name.value) }
        #expect(names == expected)
        // The default page is the first page of the same order.
        #expect((first["players"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String } == Array(expected.prefix(100)))

        for bad in ["limit=0", "limit=1001", "limit=x", "cursor=-1", "cursor=1.5"] {
            let r = try await c.get("/api/leaderboard?\(bad)")
            #expect(r.status == 400 && r.text.contains(bad.split(separator: "=")[0]), "\(bad): \(r.status) \(r.text)")
        }
        let past = Self.json(try await c.get("/api/leaderboard?cursor=5000").text)
        #expect((past["players"] as? [Any])?.isEmpty == true && past["next_cursor"] is NSNull)
        await server.stop()
    }
}
