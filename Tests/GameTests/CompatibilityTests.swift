import Foundation
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// What Capture The IP's and ipv4.games' clients read, checked against counts made here.
@Suite struct CompatibilityTests {
    static func json(_ r: LoopbackHTTPClient.Response) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
    }

    /// 3 players over 4 blocks: ann rules 20 (5) and 21 (4), bo rules 22 (3), 23 is tied (2–2).
    static let seed: [(String, [UInt8: Int])] = [
        ("ann", [20: 5, 21: 4, 22: 1, 23: 2]),
        ("bo", [20: 1, 22: 3, 23: 2]),
        ("cy", [20: 1, 21: 1]),
    ]

    static func seeded() async throws -> TestServer {
        let server = try await TestServer.start()
        var next: [UInt8: UInt8] = [:]
        for (player, blocks) in seed {
            for (block, n) in blocks {
                for _ in 0..<n {
                    let host = next[block, default: 1]
                    next[block] = host + 1
                    _ = try await server.engine.claim(address: IPv4Address(block, 0, 0, host), name: name(player))
                }
            }
        }
        server.engine.refreshSnapshots()
        return server
    }

    @Test func ranksListBlockRulersWithTheirClaimsInTheBlocksTheyRule() async throws {
        let server = try await Self.seeded()
        defer { server.removeFiles() }
        let c = server.client
        for path in ["/api/ranks/all", "/api/ranks", "/api/ranks/year", "/api/ranks/hour"] {
            let r = try await c.get(path)
            #expect(r.status == 200 && r.headers["access-control-allow-origin"] == "*", "\(path)")
            let doc = try Self.json(r)
            let rankings = try #require(doc["rankings"] as? [[String: Any]])
            #expect(rankings.map { $0["nick"] as? String } == ["ann", "bo"], "\(path)")
            #expect(rankings.map { $0["blocks"] as? [Int] } == [[20, 21], [22]])
            #expect(rankings.map { $0["total_claims"] as? Int } == [9, 3]) // ann: 5 + 4 (not her 12)
            #expect(rankings.map { $0["addresses"] as? Int } == [12, 6])
            #expect(rankings.map { $0["rank"] as? Int } == [1, 2])
            let stamp = try #require(doc["last_updated_at"] as? String)
            #expect(ISO8601DateFormatter().date(from: stamp) != nil, "\(stamp)")
        }
        let unknown = try await c.get("/api/ranks/decade")
        #expect(unknown.status == 404 && unknown.headers["content-type"] == "application/json")
        await server.stop()
    }

    @Test func usersGivesRankWorstRankAndTiesPerBlock() async throws {
        let server = try await Self.seeded()
        defer { server.removeFiles() }
        let c = server.client
        let bo = try Self.json(try await c.get("/api/users?name=bo"))
        let rows = try #require(bo["rankings"] as? [[String: Any]])
        // Block 20: ann 5, bo 1, cy 1 → bo tied 2nd, worst rank 2. 22: bo 1st of 2. 23: tied 1st.
        #expect(rows.map { $0["block"] as? Int } == [20, 22, 23])
        #expect(rows.map { $0["rank"] as? Int } == [2, 1, 1])
        #expect(rows.map { $0["max_rank"] as? Int } == [2, 2, 1])
        #expect(rows.map { $0["is_tied"] as? Bool } == [true, false, true])
        #expect(rows.map { $0["claims"] as? Int } == [1, 3, 2])
        #expect(rows.allSatisfy { $0["nick"] as? String == "bo" })
        let nobody = try await c.get("/api/users?name=nobody")
        let nobodyRows = try Self.json(nobody)["rankings"] as? [Any]
        #expect(nobody.status == 200 && nobodyRows?.isEmpty == true)
        #expect(try await c.get("/api/users").status == 400)
        #expect(try await c.get("/api/users?name=bad%20name").status == 400)
        await server.stop()
    }

    @Test func blocksRecentAndIPCarryCaptureTheIPsFields() async throws {
        let server = try await Self.seeded()
        defer { server.removeFiles() }
        let c = server.client
        let blocks = try #require(try Self.json(try await c.get("/api/blocks"))["blocks"] as? [[String: Any]])
        #expect(blocks.map { $0["block"] as? Int } == [20, 21, 22, 23]) // claimed blocks only
        #expect(blocks.map { $0["nick"] as? String } == ["ann", "ann", "bo", "tied"])
        #expect(blocks.map { $0["is_tied"] as? Bool } == [false, false, false, true])
        #expect(blocks.map { $0["claims"] as? Int } == [5, 4, 3, 2])
        #expect(blocks.map { $0["holder"] as? String } == ["ann", "ann", "bo", nil])
        let recent = try #require(try Self.json(try await c.get("/api/recent"))["claims"] as? [[String: Any]])
        #expect(!recent.isEmpty && recent.allSatisfy { $0["nick"] as? String == $0["name"] as? String && $0["claimed_at"] is Int })
        let me = try Self.json(try await c.get("/api/ip", source: "127.9.0.4"))
        #expect(me["ip"] as? String == "127.9.0.4" && me["v4"] as? Bool == true)
        let ip = try await c.get("/ip", source: "127.9.0.4")
        #expect(ip.text == "127.9.0.4\n" && ip.headers["access-control-allow-origin"] == "*")
        await server.stop()
    }

    @Test func anIPv6ClientGets400OnIPAndCannotClaim() async throws {
        let server = try await TestServer.start { $0.trustedProxies = [IPPrefix("127.0.0.1/32")!] }
        defer { server.removeFiles() }
        let c = server.client
        let ip = try await c.get("/ip", source: "127.0.0.1", headers: [("X-Forwarded-For", "2001:db8::7")])
        #expect(ip.status == 400 && ip.text.contains("IPv4 only") && ip.headers["access-control-allow-origin"] == "*")
        let api = try Self.json(try await c.get("/api/ip", source: "127.0.0.1", headers: [("X-Forwarded-For", "2001:db8::7")]))
        #expect(api["v4"] as? Bool == false && api["version"] as? Int == 6)
        #expect(try await c.get("/claim?name=six", source: "127.0.0.1", headers: [("X-Forwarded-For", "2001:db8::7")]).status == 400)
        #expect(server.engine.withBoard { $0.addressCount } == 0)
        await server.stop()
    }

    @Test func anAcceptNothingWeServeGets204AndTheClaimStillCounts() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        for (i, accept) in ["text/csv", "application/xml, text/html;q=0"].enumerated() {
            let source = "127.8.\(i).1"
            // Through the event-loop answer (GET) and the router (POST).
            let get = try await c.get("/claim?name=quiet", source: source, headers: [("Accept", accept)])
            #expect(get.status == 204 && get.body.isEmpty && get.headers["access-control-allow-origin"] == "*", "\(accept)")
            let post = try await c.request("POST", "/claim?name=loud", source: "127.8.\(i).2", headers: [("Accept", accept)])
            #expect(post.status == 204 && post.body.isEmpty, "\(accept)")
        }
        #expect(server.engine.withBoard { $0.addressCount } == 4)
        await server.stop()
    }

    @Test func snapshotsAnswerIfModifiedSince() async throws {
        let server = try await Self.seeded()
        defer { server.removeFiles() }
        let c = server.client
        // "/score" is answered on the event loop, "/api/blocks?period=all" by the router.
        for path in ["/score", "/api/blocks?period=all", "/api/ranks/all"] {
            let first = try await c.get(path)
            let stamp = try #require(first.headers["last-modified"], "\(path)")
            let modified = try #require(HTTPDateText.parse(stamp))
            let same = try await c.get(path, headers: [("If-Modified-Since", stamp)])
            #expect(same.status == 304 && same.body.isEmpty, "\(path)")
            let older = try await c.get(path, headers: [("If-Modified-Since", HTTPDateText.format(modified - 1))])
            #expect(older.status == 200, "\(path)")
            // If-None-Match wins over If-Modified-Since.
            let both = try await c.get(path, headers: [("If-Modified-Since", stamp), ("If-None-Match", "\"other\"")])
            #expect(both.status == 200, "\(path)")
        }
        await server.stop()
    }

    @Test func statuszAboutFaviconAndPictures() async throws {
        let server = try await Self.seeded()
        defer { server.removeFiles() }
        let c = server.client
        let status = try await c.get("/statusz", source: "127.7.0.1")
        let lines = Dictionary(uniqueKeysWithValues: status.text.split(separator: "\n").map { line -> (String, String) in
            let parts = line.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
        })
        #expect(lines["addresses"] == "20" && lines["players"] == "3" && lines["yourip"] == "127.7.0.1")
        #expect(Int(lines["yourtokens"] ?? "") != nil && Int(lines["maxrss_kib"] ?? "") != nil)
        let about = try await c.get("/about.html")
        #expect(about.status == 200 && about.text.contains("How to play") && about.text.contains("/api/ranks"))
        let icon = try await c.get("/favicon.ico")
        #expect(icon.status == 200 && icon.headers["content-type"] == "image/x-icon")
        #expect(Array(icon.body.prefix(6)) == [0, 0, 1, 0, 1, 0] && Array(icon.body[22..<30]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        for (path, side) in [("/plot/20", 64), ("/player-map.png?name=ann", 256)] {
            let png = try await c.get(path)
            #expect(png.status == 200 && png.headers["content-type"] == "image/png", "\(path)")
            let be32: [UInt8] = [0, 0, UInt8(side >> 8), UInt8(side & 0xFF)]
            #expect(Array(png.body[16..<24]) == be32 + be32, "\(path): width and height in IHDR")
        }
        #expect(try await c.get("/plot/256").status == 404)
        #expect(try await c.get("/player-map.png?name=ghost").status == 404)
        let users = try await c.get("/users.html?name=ann")
        #expect(users.status == 200 && users.text.contains("player-map.png?name=ann") && users.text.contains("id=\"history\""))
        #expect(try await c.get("/users.html?name=ghost").status == 404)
        await server.stop()
    }

    @Test func webRootServesFilesInsideItOnly() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("webroot-\(UUID().uuidString)").path
        let root = base + "/www"
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try "<!doctype html><title>community</title>".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
        try String(repeating: "console.log('x');\n", count: 100).write(toFile: root + "/app.js", atomically: true, encoding: .utf8)
        try "inner".write(toFile: root + "/sub/index.html", atomically: true, encoding: .utf8)
        try "not the scores".write(toFile: root + "/score", atomically: true, encoding: .utf8)
        try "hidden".write(toFile: root + "/.env", atomically: true, encoding: .utf8)
        try "SECRET".write(toFile: base + "/secret.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/link.txt", withDestinationPath: base + "/secret.txt")
        let server = try await TestServer.start { $0.webRoot = root }
        defer { server.removeFiles() }
        let c = server.client

        let home = try await c.get("/")
        #expect(home.status == 200 && home.text.contains("community") && home.headers["content-type"] == "text/html; charset=utf-8")
        let js = try await c.get("/app.js", headers: [("Accept-Encoding", "gzip")])
        #expect(js.status == 200 && js.headers["content-type"] == "text/javascript; charset=utf-8" && js.headers["content-encoding"] == "gzip")
        let etag = try #require(js.headers["etag"])
        #expect(try await c.get("/app.js", headers: [("If-None-Match", etag)]).status == 304)
        #expect(try await c.get("/sub/").text == "inner")
        #expect(try await c.get("/empty/").status == 404) // no listing
        // The game's routes win over files of the same name.
        let score = try await c.get("/score")
        #expect(score.headers["content-type"] == "application/json" && score.text.hasPrefix("{\"now\""))
        for hostile in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                        "//secret.txt", "/link.txt", "/.env", "/%2eenv", "/index.html%00.txt", "/sub%5c..%5c..%5csecret.txt", "/empty/../../secret.txt"] {
            let r = try await c.get(hostile)
            #expect(r.status == 404 || r.status == 400, "\(hostile): \(r.status)")
            #expect(!r.text.contains("SECRET") && !r.text.contains("hidden"), "\(hostile)")
        }
        await server.stop()
    }

    @Test(arguments: [
        ("/", ""), ("/a/b.js", "a/b.js"), ("/dir/", "dir/"), ("//x", "x"), ("/a%20b.html", "a b.html"),
    ])
    func staticPathsMapInsideTheRoot(path: String, expected: String) {
        #expect(StaticFiles.relativePath(path) == expected)
    }

    @Test(arguments: ["/..", "/../x", "/a/../b", "/%2e%2e/x", "/.git/config", "/a/.%2e/b", "/x%00", "/a%5cb", "relative", "/%zz"])
    func hostileStaticPathsAreRefused(path: String) {
        #expect(StaticFiles.relativePath(path) == nil)
    }
}

/// HTTP dates for the tests (the server's own parser is under test, so this one is separate).
enum HTTPDateText {
    static func format(_ seconds: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func parse(_ text: String) -> Int64? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.date(from: text).map { Int64($0.timeIntervalSince1970) }
    }
}
