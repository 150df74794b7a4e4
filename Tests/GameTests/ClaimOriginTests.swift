import CloudRanges
import Edge
import Foundation
import GRDB
import IPAddress
import LocationDB
import Logging
import Testing
@testable import Game
@testable import GameRules

/// Claims that know their country, AS and data center: a real libloc v1 file written by our
/// writer, a real AWS `ip-ranges.json`, a real server and real sockets from 127.x sources.
@Suite(.serialized) struct ClaimOriginTests {
    static var logger: Logger {
        var l = Logger(label: "origin-test")
        l.logLevel = .error
        return l
    }

    /// 127.1.0.0/16 is in `country1` (AS3320), 127.2.0.0/16 in the US (AS16509).
    static func writeLocationDatabase(to path: String, country1: String = "DE") throws {
        var writer = DatabaseWriter()
        writer.vendor = "IPQuest tests"
        writer.addAutonomousSystem(number: 3320, name: "Deutsche Telekom AG")
        writer.addAutonomousSystem(number: 16509, name: "Amazon.com, Inc.")
        for (code, continent, name) in [("DE", "EU", "Germany"), ("FR", "EU", "France"), ("US", "NA", "United States of America")] {
            writer.addCountry(Country(code: CountryCode(code)!, continentCode: CountryCode(continent)!, name: name))
        }
        try writer.addNetwork(IPPrefix(parsing: "127.1.0.0/16"), properties: NetworkProperties(countryCode: CountryCode(country1)!, asn: 3320))
        try writer.addNetwork(IPPrefix(parsing: "127.2.0.0/16"), properties: NetworkProperties(countryCode: CountryCode("US")!, asn: 16509))
        // Write elsewhere and rename: a reader never sees a half-written file.
        let temporary = path + ".new"
        try writer.write(to: temporary)
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    /// AWS's published format; 127.2.0.0/17 is "EC2".
    static func writeAWSRanges(to path: String) throws {
        let json = """
            {"syncToken": "1700000000", "createDate": "2026-11-01-00-00-00",
             "prefixes": [{"ip_prefix": "127.2.0.0/17", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
                          {"ip_prefix": "127.2.0.0/17", "region": "us-east-1", "service": "EC2", "network_border_group": "us-east-1"}],
             "ipv6_prefixes": []}
            """
        try json.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func makeDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-origin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func intelligence(in dir: String, checkEvery: Duration = .seconds(60)) async throws -> AddressIntelligence {
        try writeLocationDatabase(to: dir + "/location.db")
        try writeAWSRanges(to: dir + "/ip-ranges.json")
        let cloud = RangeSet(sources: [RangeSource(name: "aws", location: .file(dir + "/ip-ranges.json"))], logger: logger)
        await cloud.refresh(network: false)
        return AddressIntelligence(
            location: try WatchedLocationDatabase(path: dir + "/location.db"), cloud: cloud, locationCheckInterval: checkEvery, logger: logger)
    }

    static func json(_ r: LoopbackHTTPClient.Response) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], "not a JSON object: \(r.text)")
    }

    static func players(_ object: [String: Any]) -> [String] {
        (object["players"] as? [[String: Any]] ?? []).map { "\($0["rank"]!) \($0["name"]!) \($0["addresses"]!)" }
    }

    @Test func claimsKnowTheirCountryASAndDataCenterAndKeepThemAcrossRestarts() async throws {
        let dir = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try await TestServer.start(directory: dir, intelligence: try await Self.intelligence(in: dir))
        let c = server.client
        let json = [("Accept", "application/json")]
        for (source, player) in [("127.1.0.1", "alice"), ("127.1.0.2", "alice"), ("127.1.0.3", "bob"), ("127.2.200.1", "carol"), ("127.3.0.1", "dave")] {
            #expect(try await c.get("/claim?name=\(player)", source: source).status == 200)
        }
        // The claim's answer says where the address is.
        let fromCloud = try Self.json(try await c.get("/claim?name=bob", source: "127.2.0.1", headers: json))
        #expect(fromCloud["country"] as? String == "US" && fromCloud["asn"] as? Int == 16509 && fromCloud["datacenter"] as? String == "aws")
        let unknown = try Self.json(try await c.get("/claim?name=dave", source: "127.3.0.2", headers: json))
        #expect(unknown["country"] is NSNull && unknown["asn"] is NSNull && unknown["datacenter"] is NSNull)

        // Who rules DE; codes are case-insensitive; bad and empty countries are told apart.
        let germany = try Self.json(try await c.get("/api/countries/de"))
        #expect(germany["country"] as? String == "DE" && germany["country_name"] as? String == "Germany")
        #expect(germany["ruler"] as? String == "alice" && germany["addresses"] as? Int == 3)
        #expect(Self.players(germany) == ["1 alice 2", "2 bob 1"])
        let bad = try await c.get("/api/countries/DEU")
        #expect(bad.status == 400 && bad.text.contains("two letters"))
        #expect(try await c.get("/api/countries/FR").status == 404)

        // Who rules AS16509: a tie, so nobody.
        let amazon = try Self.json(try await c.get("/api/as/AS16509"))
        #expect(amazon["asn"] as? Int == 16509 && amazon["as_name"] as? String == "Amazon.com, Inc.")
        #expect(amazon["ruler"] is NSNull && Self.players(amazon) == ["1 bob 1", "1 carol 1"])
        #expect(try await c.get("/api/as/3320x").status == 400)
        let countries = try Self.json(try await c.get("/api/countries"))["countries"] as? [[String: Any]] ?? []
        #expect(countries.map { "\($0["country"]!) \($0["addresses"]!) \($0["ruler"]!)" } == ["DE 3 alice", "US 2 <null>"])
        let systems = try Self.json(try await c.get("/api/as"))["autonomous_systems"] as? [[String: Any]] ?? []
        #expect(systems.map { "\($0["asn"]!) \($0["addresses"]!)" } == ["3320 3", "16509 2"])

        // The player page's data: countries taken and the data-center share.
        let bob = try Self.json(try await c.get("/api/players/bob"))
        #expect((bob["countries"] as? [[String: Any]])?.map { "\($0["country"]!) \($0["addresses"]!)" } == ["DE 1", "US 1"])
        #expect(bob["datacenter_addresses"] as? Int == 1 && bob["datacenter_share"] as? Double == 0.5)

        // The residential leaderboard leaves bob's cloud address out.
        server.engine.refreshSnapshots()
        func addresses(_ path: String) async throws -> [String: Int] {
            let players = try Self.json(try await c.get(path))["players"] as? [[String: Any]] ?? []
            return Dictionary(uniqueKeysWithValues: players.map { ($0["name"] as! String, $0["addresses"] as! Int) })
        }
        #expect(try await addresses("/api/leaderboard") == ["alice": 2, "bob": 2, "carol": 1, "dave": 2])
        #expect(try await addresses("/api/leaderboard?residential=1") == ["alice": 2, "bob": 1, "carol": 1, "dave": 2])
        #expect(try await c.get("/api/leaderboard?residential=maybe").status == 400)
        let recent = try Self.json(try await c.get("/api/recent"))["claims"] as? [[String: Any]] ?? []
        #expect(recent.first?["ip"] as? String == "127.3.0.2" && recent.dropFirst().first?["datacenter"] as? String == "aws")
        await server.stop()

        // Stored with the claim: a restart without any database still knows.
        let stored = try await SQLiteClaimStorage(path: server.databasePath).loadAll()
        let origins = Dictionary(uniqueKeysWithValues: stored.map { ($0.address.description, $0.origin) })
        #expect(origins["127.2.0.1"] == ClaimOrigin(country: "US", asn: 16509, provider: "aws"))
        #expect(origins["127.1.0.3"] == ClaimOrigin(country: "DE", asn: 3320))
        #expect(origins["127.3.0.1"] == ClaimOrigin.unknown)
        let restarted = try await TestServer.start(directory: dir)
        let again = try Self.json(try await restarted.client.get("/api/countries/DE"))
        #expect(Self.players(again) == ["1 alice 2", "2 bob 1"] && again["country_name"] is NSNull)
        await restarted.stop()
    }

    @Test func dataCenterPolicyDeniesTagsOrAllowsPerRoute() async throws {
        let dir = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try await TestServer.start(
            configure: { $0.dataCenterPolicy = DataCenterPolicy(defaultAction: .tag, routes: ["/claim": .deny, "/ip": .allow]) },
            directory: dir, intelligence: try await Self.intelligence(in: dir))
        let c = server.client
        let denied = try await c.get("/claim?name=bot", source: "127.2.0.9")
        #expect(denied.status == 403)
        #expect(denied.text.contains("data-center") && denied.text.contains("aws"))
        #expect(try await c.get("/claim/bot", source: "127.2.0.9").status == 403)
        // Outside the ranges (127.2.128.0/17 is still AS16509, but not AWS's) claims work.
        #expect(try await c.get("/claim?name=human", source: "127.2.200.9").status == 200)
        // Tagged: handlers see the provider.
        let tagged = try Self.json(try await c.get("/api/ip", source: "127.2.0.9"))
        #expect(tagged["ip"] as? String == "127.2.0.9" && tagged["datacenter"] as? String == "aws")
        let residential = try Self.json(try await c.get("/api/ip", source: "127.1.0.9"))
        #expect(residential["datacenter"] is NSNull)
        // Allowed: no classification at all.
        #expect(try await c.get("/ip", source: "127.2.0.9").text == "127.2.0.9\n")
        await server.stop()
        let stored = try await SQLiteClaimStorage(path: server.databasePath).loadAll()
        #expect(stored.map(\.address.description) == ["127.2.200.9"])
    }

    @Test func locationDatabaseIsReloadedWhenItsFileChanges() async throws {
        let dir = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let intelligence = try await Self.intelligence(in: dir, checkEvery: .milliseconds(100))
        let server = try await TestServer.start(directory: dir, intelligence: intelligence)
        let c = server.client
        let json = [("Accept", "application/json")]
        func countryOfClaim(_ n: Int) async throws -> String? {
            try Self.json(try await c.get("/claim?name=p", source: "127.1.\(n / 250).\(n % 250 + 1)", headers: json))["country"] as? String
        }
        #expect(try await countryOfClaim(0) == "DE")
        try Self.writeLocationDatabase(to: dir + "/location.db", country1: "FR")
        var n = 1
        var country = try await countryOfClaim(n)
        let deadline = ContinuousClock.now + .seconds(10)
        while country != "FR", ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            n += 1
            country = try await countryOfClaim(n)
        }
        #expect(country == "FR")
        // A broken replacement keeps the last good database in service.
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: dir + "/garbage"))
        #expect(rename(dir + "/garbage", dir + "/location.db") == 0)
        let brokenDeadline = ContinuousClock.now + .seconds(10)
        while intelligence.location?.lastError == nil, ContinuousClock.now < brokenDeadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(intelligence.location?.lastError == .badMagic)
        #expect(try await countryOfClaim(n + 1) == "FR")
        // The first claim keeps the country it was looked up with.
        #expect(server.engine.withBoard { $0.owner(of: IPv4Address("127.1.0.1")!)?.origin.country } == "DE")
        await server.stop()
    }
}

@Suite(.serialized) struct GameResponseCacheTests {
    /// Per-request pages are shared for the TTL (coalescing itself is tested in EdgeTests), and
    /// the data-center policy still applies to cached routes.
    @Test func costlyPagesAreSharedForTheTTLAndDeniedClientsStillDenied() async throws {
        let dir = try ClaimOriginTests.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try await TestServer.start(
            configure: {
                $0.cacheTTLSeconds = 2
                $0.dataCenterPolicy = DataCenterPolicy(routes: ["/api/players/": .deny])
            },
            directory: dir, intelligence: try await ClaimOriginTests.intelligence(in: dir))
        let c = server.client
        #expect(try await c.get("/claim?name=alice", source: "127.1.0.1").status == 200)
        let first = try await c.get("/api/players/alice", source: "127.1.0.50")
        #expect(first.status == 200 && first.headers["age"] != nil)
        // A second claim is stored, but the cached answer is served until the TTL passes.
        #expect(try await c.get("/claim?name=alice", source: "127.1.0.2").status == 200)
        let cached = try ClaimOriginTests.json(try await c.get("/api/players/alice", source: "127.1.0.51"))
        #expect(cached["addresses"] as? Int == 1)
        // A client in a data center is refused even though the answer is cached.
        let denied = try await c.get("/api/players/alice", source: "127.2.0.9")
        #expect(denied.status == 403)
        try await Task.sleep(for: .milliseconds(2_100))
        let fresh = try ClaimOriginTests.json(try await c.get("/api/players/alice", source: "127.1.0.52"))
        #expect(fresh["addresses"] as? Int == 2)
        await server.stop()
    }
}

@Suite struct SQLiteUpgradeTests {
    /// A file written before claims had origins keeps every claim (table and journal) when opened.
    @Test func upgradingKeepsStoredClaims() async throws {
        let dir = try ClaimOriginTests.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/old.sqlite"
        do {
            let pool = try DatabasePool(path: path)
            try SQLiteClaimStorage.migrator.migrate(pool, upTo: "v1-claims")
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO claims (ip, name, claimed_at) VALUES (16909060, 'old', 100)")
                try db.execute(sql: "INSERT INTO claim_journal (ip, name, claimed_at) VALUES (16909061, 'journal', 101)")
            }
        }
        let storage = try SQLiteClaimStorage(path: path, durability: .normal)
        let expected = [
            Claim(address: IPv4Address("1.2.3.4")!, name: PlayerName(trusted: "old"), claimedAt: 100),
            Claim(address: IPv4Address("1.2.3.5")!, name: PlayerName(trusted: "journal"), claimedAt: 101),
        ]
        #expect(try await storage.loadAll().sorted { $0.address < $1.address } == expected)
        _ = try await storage.maintain(budget: 10)
        #expect(try await storage.loadAll().sorted { $0.address < $1.address } == expected)
    }
}

@Suite struct ScoreboardOriginTests {
    let de = ClaimOrigin(country: "DE", asn: 3320)
    let cloud = ClaimOrigin(country: "US", asn: 16509, provider: "aws")

    @Test func countryAndASCountsFollowOwnershipChanges() {
        var b = Scoreboard()
        b.apply(address: ip("1.0.0.1"), name: name("alice"), at: 100, origin: de)
        b.apply(address: ip("1.0.0.2"), name: name("alice"), at: 100, origin: de)
        b.apply(address: ip("1.0.0.3"), name: name("bob"), at: 100, origin: de)
        #expect(b.country("DE")?.ruler == name("alice"))
        // bob takes one of alice's and leads.
        b.apply(address: ip("1.0.0.1"), name: name("bob"), at: 101, origin: de)
        let standing = b.country("DE")
        #expect(standing?.addresses == 3 && standing?.ruler == name("bob"))
        #expect(standing?.players.map(\.rank) == [1, 2] && standing?.players.map(\.addresses) == [2, 1])
        #expect(b.autonomousSystem(3320)?.players.map(\.name.value) == ["bob", "alice"])
        // Re-claimed from the cloud (the address moved): it leaves DE and AS3320; DE is tied.
        b.apply(address: ip("1.0.0.1"), name: name("bob"), at: 10_000, origin: cloud)
        #expect(b.country("DE")?.players.map(\.addresses) == [1, 1] && b.country("DE")?.ruler == nil)
        #expect(b.country("DE")?.players.map(\.rank) == [1, 1])
        #expect(b.country("US")?.players.map(\.name.value) == ["bob"])
        #expect(b.countries().map(\.key) == ["DE", "US"])
        let bob = b.player(name("bob"), period: .all)
        #expect(bob?.countries.map(\.country) == ["DE", "US"] && bob?.dataCenterAddresses == 1 && bob?.dataCenterShare == 0.5)
        #expect(b.country("FR") == nil && b.country("??") == nil && b.autonomousSystem(1) == nil)
    }

    @Test func residentialCountsLeaveOutDataCentersAndExpireWithTheirWindows() {
        var b = Scoreboard()
        let t: Int64 = 1_000_000
        b.load([], now: t)
        for i in 1...3 { b.apply(address: IPv4Address(10, 0, 0, UInt8(i)), name: name("farm"), at: t, origin: cloud) }
        b.apply(address: ip("10.0.1.1"), name: name("home"), at: t, origin: de)
        #expect(b.leaderboard(.all).first?.name == name("farm"))
        #expect(b.leaderboard(.all, residential: true).map(\.name) == [name("home")])
        #expect(b.standing(block: 10, period: .hour, residential: true).holder == name("home"))
        // An hour later both leave the hour window, in both views.
        b.advance(to: t + 3_601)
        #expect(b.leaderboard(.hour).isEmpty && b.leaderboard(.hour, residential: true).isEmpty)
        #expect(b.leaderboard(.day, residential: true).map(\.addresses) == [1])
        // A cloud address re-claimed from home (new origin) joins the residential view.
        b.apply(address: ip("10.0.0.1"), name: name("home"), at: t + 3_602, origin: de)
        #expect(b.leaderboard(.hour, residential: true).map(\.addresses) == [1])
        #expect(b.leaderboard(.all, residential: true).map(\.addresses) == [2])
    }
}
