import Foundation
import Synchronization
import Testing
import IPAddress
import Edge
@testable import Game
@testable import GameRules

/// End-to-end over real sockets against a real SQLite file.
@Suite(.serialized) struct GameHTTPTests {
    @Test func claimAnswersInTheFormatAskedFor() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        let html = try await c.get("/claim?name=alice", source: "127.1.0.1")
        #expect(html.status == 200)
        #expect(html.headers["content-type"] == "text/html; charset=utf-8")
        #expect(html.headers["access-control-allow-origin"] == "*")
        #expect(html.text.contains("The land at 127.1.0.1 was claimed for <a href=\"/players/alice\">alice</a>."))
        #expect(html.text.contains("<title>The land at 127.1.0.1 was claimed for alice.</title>"))

        let text = try await c.get("/claim?name=bob", source: "127.1.0.1", headers: [("Accept", "text/plain")])
        #expect(text.status == 200 && text.text == "The land at 127.1.0.1 was claimed for bob.\n")

        let json = try await c.get("/claim?name=carol", source: "127.1.0.1", headers: [("Accept", "application/json")])
        let object = try JSONSerialization.jsonObject(with: Data(json.body)) as! [String: Any]
        #expect(object["ip"] as? String == "127.1.0.1" && object["name"] as? String == "carol" && object["previous_owner"] as? String == "bob")

        let gif = try await c.get("/claim?name=dave", source: "127.1.0.2", headers: [("Accept", "image/avif,image/webp,*/*")])
        #expect(gif.status == 200 && gif.headers["content-type"] == "image/gif")
        #expect(gif.body == ClaimResponse.transparentGIF && gif.body.count == 43)

        // The path form keeps slashes and other allowed punctuation.
        let path = try await c.get("/claim/https:/x.y%2Fz", source: "127.1.0.3", headers: [("Accept", "text/plain")])
        #expect(path.text == "The land at 127.1.0.3 was claimed for https:/x.y/z.\n")
        // Special characters allowed by the rule survive the query string.
        let plus = try await c.get("/claim?name=a%2Bb*c", source: "127.1.0.4", headers: [("Accept", "text/plain")])
        #expect(plus.text == "The land at 127.1.0.4 was claimed for a+b*c.\n")

        await server.stop()
        let stored = try await SQLiteClaimStorage(path: server.databasePath).loadAll()
        let owners = Dictionary(uniqueKeysWithValues: stored.map { ($0.address.description, $0.name.value) })
        #expect(owners == ["127.1.0.1": "carol", "127.1.0.2": "dave", "127.1.0.3": "https:/x.y/z", "127.1.0.4": "a+b*c"])
    }

    @Test func badInputGetsClearErrors() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        for (path, fragment) in [
            ("/claim", "missing name"),
            ("/claim?name=", "empty name"),
            ("/claim?name=%3Cscript%3E", "invalid character at position 1"),
            ("/claim?name=" + String(repeating: "x", count: 41), "41 characters"),
            ("/claim/a%20b", "invalid character at position 2"),
        ] {
            let r = try await c.get(path, source: "127.2.0.1")
            #expect(r.status == 400, "\(path)")
            #expect(r.text.contains(fragment), "\(path): \(r.text)")
            #expect(r.text.contains("ASCII letters, digits and @ / : . ^ + ! - _ *"))
        }
        // Other methods than GET and HEAD are refused, on every route but the claim (below).
        let put = try await c.request("PUT", "/api/recent", source: "127.2.0.1")
        #expect(put.status == 405 && put.headers["allow"] == "GET, HEAD")
        let missing = try await c.get("/nope")
        #expect(missing.status == 404 && missing.headers["content-type"]?.hasPrefix("text/plain") == true)
        let apiMissing = try await c.get("/api/nope")
        #expect(apiMissing.status == 404 && apiMissing.headers["content-type"] == "application/json")
        #expect(apiMissing.text.contains("\"error\""))
        let badPeriod = try await c.get("/api/leaderboard?period=decade")
        #expect(badPeriod.status == 400 && badPeriod.text.contains("all, year, month, week, day or hour"))
        let unknownPlayer = try await c.get("/api/players/ghost")
        #expect(unknownPlayer.status == 404 && unknownPlayer.text.contains("ghost"))
        let badPlayer = try await c.get("/api/players/a%3Cb")
        #expect(badPlayer.status == 400)
        #expect(server.engine.withBoard { $0.addressCount } == 0, "nothing was stored by bad requests")
        // A claim with a body-less POST (ipv4.games) or any other method (Capture The IP) counts.
        for (i, method) in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"].enumerated() {
            let r = try await c.request(method, "/claim?name=m\(i)", source: "127.2.1.\(i + 1)", headers: [("Accept", "text/plain")])
            #expect(r.status == 200 && r.text == "The land at 127.2.1.\(i + 1) was claimed for m\(i).\n", "\(method)")
        }
        #expect(server.engine.withBoard { $0.addressCount } == 5)
        await server.stop()
    }

    @Test func forwardingHeadersOnlyFromTrustedProxies() async throws {
        // Untrusted: headers are ignored.
        let plain = try await TestServer.start()
        let spoofed = try await plain.client.get("/ip", source: "127.3.0.9", headers: [("X-Forwarded-For", "8.8.8.8"), ("Forwarded", "for=9.9.9.9"), ("X-Real-IP", "7.7.7.7")])
        #expect(spoofed.text == "127.3.0.9\n")
        let claim = try await plain.client.get("/claim?name=spoofer", source: "127.3.0.9", headers: [("X-Forwarded-For", "8.8.8.8")])
        #expect(claim.text.contains("127.3.0.9"))
        await plain.stop()
        plain.removeFiles()

        // Trusted proxy 127.0.0.1: the right-most untrusted hop is the client.
        let proxied = try await TestServer.start { $0.trustedProxies = [IPPrefix("127.0.0.1/32")!] }
        defer { proxied.removeFiles() }
        let c = proxied.client
        #expect(try await c.get("/ip", source: "127.0.0.1", headers: [("X-Forwarded-For", "6.6.6.6, 203.0.113.5")]).text == "203.0.113.5\n")
        #expect(try await c.get("/api/ip", source: "127.0.0.1", headers: [("X-Forwarded-For", "198.51.100.2")]).text == "{\"ip\":\"198.51.100.2\",\"version\":4,\"v4\":true,\"datacenter\":null}")
        // Only the configured header (X-Forwarded-For by default) is read: a Forwarded header
        // alone says nothing, and the request is not the proxy's either.
        #expect(try await c.get("/api/ip", source: "127.0.0.1", headers: [("Forwarded", "for=198.51.100.2")]).status == 400)
        // Not the trusted address: ignored even on the same machine.
        #expect(try await c.get("/ip", source: "127.0.0.2", headers: [("X-Forwarded-For", "6.6.6.6")]).text == "127.0.0.2\n")
        let v6 = try await c.get("/claim?name=six", source: "127.0.0.1", headers: [("X-Forwarded-For", "2001:db8::1")])
        #expect(v6.status == 400 && v6.text.hasPrefix("IPv4 only"))
        let remote = try await c.get("/claim?name=far", source: "127.0.0.1", headers: [("X-Forwarded-For", "203.0.113.5"), ("Accept", "text/plain")])
        #expect(remote.text == "The land at 203.0.113.5 was claimed for far.\n")
        await proxied.stop()
    }

    @Test func proxyProtocolFromTrustedPeersOnly() async throws {
        let server = try await TestServer.start {
            $0.trustedProxies = [IPPrefix("127.0.0.1/32")!]
            $0.proxyProtocol = true
        }
        defer { server.removeFiles() }
        let c = server.client
        let v1 = ProxyProtocolParser.encodeV1(source: IPAddress("192.0.2.10")!, destination: IPAddress("127.0.0.1")!, sourcePort: 5555, destinationPort: c.port)
        #expect(try await c.get("/ip", source: "127.0.0.1", prefix: v1).text == "192.0.2.10\n")
        let v2 = ProxyProtocolParser.encodeV2(source: IPv4Address("198.51.100.77")!, destination: IPv4Address("127.0.0.1")!, sourcePort: 1, destinationPort: c.port)
        let claimed = try await c.get("/claim?name=viaproxy", source: "127.0.0.1", headers: [("Accept", "text/plain")], prefix: v2)
        #expect(claimed.text == "The land at 198.51.100.77 was claimed for viaproxy.\n")
        let v6 = ProxyProtocolParser.encodeV1(source: IPAddress("2001:db8::9")!, destination: IPAddress("::1")!, sourcePort: 1, destinationPort: 2)
        #expect(try await c.get("/claim?name=x", source: "127.0.0.1", prefix: v6).status == 400)
        // Without a header a trusted peer announces no client: it cannot claim as itself.
        #expect(try await c.get("/ip", source: "127.0.0.1").status == 400)
        #expect(try await c.get("/claim?name=proxy", source: "127.0.0.1").status == 400)
        #expect(try await c.get("/healthz", source: "127.0.0.1").status == 200, "its health checks are served")
        // A PROXY header from an untrusted peer, or a malformed one, closes the connection.
        await #expect(throws: (any Error).self) { try await c.get("/ip", source: "127.0.0.2", prefix: v1) }
        await #expect(throws: (any Error).self) { try await c.get("/ip", source: "127.0.0.1", prefix: Array("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".utf8)) }
        // Untrusted peers without a header are served normally.
        #expect(try await c.get("/ip", source: "127.0.0.2").text == "127.0.0.2\n")
        await server.stop()
    }

    @Test func rateLimitPerSlash24() async throws {
        let server = try await TestServer.start {
            $0.rateLimitBurst = 5
            $0.rateLimitPerSecond = 0.01
        }
        defer { server.removeFiles() }
        let c = server.client
        for i in 1...5 {
            #expect(try await c.get("/claim?name=r", source: "127.4.4.\(i)").status == 200)
        }
        let limited = try await c.get("/claim?name=r", source: "127.4.4.200")
        #expect(limited.status == 429)
        #expect(limited.headers["retry-after"] == "100")
        #expect(try await c.get("/claim?name=r", source: "127.4.5.1").status == 200, "a different /24 has its own budget")
        await server.stop()
    }

    @Test func snapshotsHaveETagsAndGzip() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let c = server.client
        _ = try await c.get("/claim?name=etag", source: "127.5.0.1")
        server.engine.refreshSnapshots()
        let first = try await c.get("/score")
        let etag = try #require(first.headers["etag"])
        #expect(first.text.contains("\"etag\":[[127,1]]"))
        let notModified = try await c.get("/score", headers: [("If-None-Match", etag)])
        #expect(notModified.status == 304 && notModified.body.isEmpty)
        let gz = try await c.get("/score", headers: [("Accept-Encoding", "gzip, br")])
        // Small bodies are sent as they are; large ones compressed (checked below).
        #expect(gz.status == 200)
        for i in 0..<300 { _ = try await c.get("/claim?name=player\(i % 40)", source: "127.5.\(1 + i / 200).\(i % 200 + 2)") }
        server.engine.refreshSnapshots()
        let big = try await c.get("/score", headers: [("Accept-Encoding", "gzip")])
        #expect(big.headers["content-encoding"] == "gzip")
        #expect(big.body.starts(with: [0x1F, 0x8B]))
        let changed = try await c.get("/score", headers: [("If-None-Match", etag)])
        #expect(changed.status == 200 && changed.headers["etag"] != etag)
        await server.stop()
    }

    /// Thousands of distinct source addresses; the server's scores must equal our own count.
    @Test func manyAddressesScoreMatchesIndependentCount() async throws {
        let server = try await TestServer.start()
        defer { server.removeFiles() }
        let players = ["ant", "bee", "cat", "dog", "eel"]
        let total = 3_000
        // Deterministic plan: address i is claimed by one player, some re-claimed by another.
        var plan: [(source: String, name: String)] = (0..<total).map { i in
            (LoopbackHTTPClient.sourceAddress(i), players[(i * 7 + i / 13) % players.count])
        }
        plan += (0..<500).map { i in (LoopbackHTTPClient.sourceAddress(i * 3), players[(i + 2) % players.count]) }
        var expected: [String: String] = [:]
        for p in plan { expected[p.source] = p.name }

        let client = server.client
        let failures = Mutex(0)
        // First pass concurrently over distinct addresses, then the overriding claims.
        for slice in [Array(plan[0..<total]), Array(plan[total...])] {
            await runOnThreads(16) { worker in
                for p in slice.enumerated() where p.offset % 16 == worker {
                    let r = try? client.get("/claim?name=\(p.element.name)", source: p.element.source, headers: [("Accept", "text/plain")])
                    if r?.status != 200 { failures.withLock { $0 += 1 } }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)

        var counts: [String: Int] = [:]
        for name in expected.values { counts[name, default: 0] += 1 }
        // Scores become visible within a second without any manual refresh.
        var score: [String: [[Int]]] = [:]
        let deadline = ContinuousClock.now + .seconds(1)
        repeat {
            let body = try await client.get("/score").body
            let json = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
            score = json["score"] as! [String: [[Int]]]
            if score.mapValues({ $0.first?[1] ?? 0 }) == counts { break }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        #expect(score.mapValues { $0.first?[1] ?? 0 } == counts)
        #expect(score.values.allSatisfy { $0.count == 1 && $0[0][0] == 127 })

        let top = counts.max { ($0.value, $1.key) < ($1.value, $0.key) }!
        let blocks = try await JSONSerialization.jsonObject(with: Data(await client.get("/api/blocks").body)) as! [String: Any]
        // Only claimed blocks are listed (Capture The IP's shape): here block 127 alone.
        let listed = blocks["blocks"] as! [[String: Any]]
        #expect(listed.map { $0["block"] as? Int } == [127])
        let tile = listed[0]
        let tied = counts.values.filter { $0 == top.value }.count > 1
        #expect(tile["tied"] as? Bool == tied)
        if !tied { #expect(tile["holder"] as? String == top.key && tile["count"] as? Int == top.value) }
        #expect(tile["total"] as? Int == expected.count)

        let board = try await JSONSerialization.jsonObject(with: Data(await client.get("/api/leaderboard?period=hour").body)) as! [String: Any]
        let ranked = (board["players"] as! [[String: Any]]).map { ($0["name"] as! String, $0["addresses"] as! Int) }
        #expect(Dictionary(uniqueKeysWithValues: ranked) == counts)
        #expect(ranked.map(\.1) == ranked.map(\.1).sorted(by: >))

        let player = try await JSONSerialization.jsonObject(with: Data(await client.get("/api/players/\(top.key)").body)) as! [String: Any]
        #expect(player["addresses"] as? Int == top.value)
        let line = (player["blocks"] as! [[String: Any]])[0]["summary"] as! String
        #expect(line == "\(tied ? "tied " : "")1st in 127.0.0.0/8 with \(top.value) addresses")

        // Restart: everything is still there.
        await server.stop()
        let again = try await TestServer.start(directory: server.directory)
        let after = try await JSONSerialization.jsonObject(with: Data(await again.client.get("/score").body)) as! [String: Any]
        #expect((after["score"] as! [String: [[Int]]]).mapValues { $0.first?[1] ?? 0 } == counts)
        let recent = try await JSONSerialization.jsonObject(with: Data(await again.client.get("/recent").body)) as! [String: Any]
        let rows = recent["recent"] as! [[Any]]
        #expect(rows.count == 50)
        for row in rows {
            let address = IPv4Address(UInt32(row[0] as! Int)).description
            #expect(expected[address] == row[1] as? String)
        }
        await again.stop()
    }
}
