import Edge
import Testing
@testable import Game
@testable import GameRules

/// The route table is the one list the router, the event loop and the guards read.
@Suite struct RouteTableTests {
    @Test func everyPathIsListedOnce() {
        let paths = RouteTable.routes.map(\.path)
        #expect(Set(paths).count == paths.count)
    }

    @Test func theEventLoopAnswersOnlySnapshotReadsIPAndClaims() throws {
        func route(_ path: Substring) -> String? { RouteTable.eventLoopRoute(for: path)?.route.path }
        #expect(route("/score") == "/score")
        #expect(route("/score/week") == "/score/{period}")
        #expect(RouteTable.eventLoopRoute(for: "/score/week")?.segment == "week")
        #expect(route("/score/week/x") == nil)
        #expect(route("/score/") == nil)
        #expect(route("/ip") == "/ip")
        #expect(route("/claim") == "/claim")
        #expect(route("/claim/ann") == "/claim/**")
        #expect(route("/api/ranks/day") == "/api/ranks/{period}")
        for computed in ["/", "/api/ip", "/api/users", "/players/ann", "/metrics", "/statusz", "/nope"] {
            #expect(route(Substring(computed)) == nil, "\(computed)")
        }
        // A segment that names no snapshot is the router's 404, with its words.
        guard case .snapshot(let key)? = RouteTable.eventLoopRoute(for: "/score/all")?.route.answer else {
            Issue.record("not a snapshot route")
            return
        }
        #expect(try key("week") == Snapshot.scoreKey(.week))
        #expect(throws: Refusal.self) { try key("all") }
        #expect(throws: Refusal.self) { try key("fortnight") }
    }

    @Test func claimsAndSharedAnswersComeFromTheTable() {
        #expect(RouteTable.isClaim("/claim") && RouteTable.isClaim("/claim/ann") && RouteTable.isClaim("/claim?name=x"))
        #expect(!RouteTable.isClaim("/claims") && !RouteTable.isClaim("/score"))
        let cached = Set(RouteTable.cachedPaths)
        for path in ["/players/*", "/blocks/*", "/api/players/*", "/api/users", "/countries", "/countries/*", "/leaderboard"] {
            #expect(cached.contains(path), "\(path)")
        }
        // Snapshot reads are pre-encoded and per-client answers are never shared.
        for path in ["/score", "/recent", "/ip", "/api/ip", "/", "/statusz"] { #expect(!cached.contains(path), "\(path)") }
    }
}
