import Foundation
import LocationDB
import IPQuestTestSupport
import Testing
import TextFormats

/// Our reader against the reference library on the real Debian database.
extension RealDatabaseTests {
    @Suite("Reader vs reference (real database)", .serialized)
    struct ReaderReferenceTests {
        @Test("header metadata equals the reference's", .timeLimit(.minutes(2)))
        func metadata() throws {
            let db = try Shared.open()
            let path = try Reference.databasePath()
            let script = "import location,sys; d=location.Database(sys.argv[1]); print(d.created_at); print(repr(d.vendor)); print(repr(d.license)); print(repr(d.description))"
            let out = try Reference.run([try Reference.python(), "-c", script, path])
            #expect(out.status == 0, "\(out.stderr)")
            let lines = out.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 4)
            #expect(lines[0] == String(db.createdAt))
            #expect(db.vendor == "IPFire Project")
            #expect(db.license == "CC BY-SA 4.0")
            #expect(db.description.hasPrefix("This database has been obtained from https://location.ipfire.org/"))
            #expect(db.networkCount == 1_290_053)
            #expect(db.autonomousSystemCount == 93_412)
            #expect(db.countryCount == 254)
            #expect(db.treeNodeCount == 3_117_631)
            let version = try Reference.run([try Reference.locationCLI(), "-d", path, "version"])
            #expect(version.stdout == HTTPDate.format(db.createdAt) + "\n")
        }

        /// Edge addresses of sampled networks (first, last, ±1), fixed specials, and random ones.
        @Test("lookups equal the reference's on edge, special and random addresses", .timeLimit(.minutes(5)))
        func lookups() throws {
            let db = try Shared.open()
            var addresses: [String] = [
                "0.0.0.0", "255.255.255.255", "::", "::1", "::ffff:0.0.0.0", "::ffff:255.255.255.255",
                "::ffff:8.8.8.8", "8.8.8.8", "1.1.1.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "127.0.0.1",
                "100.64.0.1", "169.254.1.1", "224.0.0.1", "240.0.0.1", "fe80::1", "fc00::1", "ff02::1",
                "2001:db8::1", "2a00:1450:4001:81c::200e", "2001:4860:4860::8888", "2606:4700:4700::1111",
                "::8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "1.0.0.0", "223.255.255.255", "2000::", "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ]
            var index = 0
            for network in db.networks() {
                defer { index += 1 }
                guard index % 401 == 0 else { continue }
                switch network.prefix {
                case .v4(let p):
                    addresses += [p.first, p.last].map(\.description)
                    if p.first.value > 0 { addresses.append(IPv4Address(p.first.value - 1).description) }
                    if p.last.value < .max { addresses.append(IPv4Address(p.last.value + 1).description) }
                    addresses.append("::ffff:\(p.last)")
                case .v6(let p):
                    addresses += [p.first, p.last].map(\.description)
                    let before = p.first.low == 0 ? IPv6Address(high: p.first.high &- 1, low: .max) : IPv6Address(high: p.first.high, low: p.first.low - 1)
                    let after = p.last.low == .max ? IPv6Address(high: p.last.high &+ 1, low: 0) : IPv6Address(high: p.last.high, low: p.last.low + 1)
                    addresses += [before.description, after.description]
                }
            }
            var random = SplitMix64(seed: 0x10CD_B5EE_D)
            for _ in 0..<20_000 { addresses.append(IPv4Address(UInt32(truncatingIfNeeded: random.next())).description) }
            for _ in 0..<10_000 {
                addresses.append(IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3), low: random.next()).description)
            }
            let reference = try Reference.lookups(addresses, database: try Reference.databasePath())
            try #require(reference.count == addresses.count)
            var mismatches: [String] = []
            for (address, expected) in zip(addresses, reference) {
                let ours = Reference.line(address, db.lookup(IPAddress(address)!))
                if ours != expected { mismatches.append("ours \(ours) | reference \(expected)") }
                let walked = Reference.line(address, db.lookupByTreeWalk(IPAddress(address)!))
                if walked != expected { mismatches.append("walk \(walked) | reference \(expected)") }
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10))")
            #expect(addresses.count > 40_000)
        }

        @Test("index and tree walk agree on 300,000 random addresses", .timeLimit(.minutes(3)))
        func indexMatchesTreeWalk() throws {
            let db = try Shared.open()
            var random = SplitMix64(seed: 42)
            var hits = 0
            for i in 0..<300_000 {
                let address: IPAddress = i % 2 == 0
                    ? .v4(IPv4Address(UInt32(truncatingIfNeeded: random.next())))
                    : .v6(IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3) & 0xFFFF_FFFF_FFFF_0000 | (random.next() & 0xFFFF), low: random.next()))
                let viaIndex = db.lookup(address)
                #expect(viaIndex == db.lookupByTreeWalk(address), "\(address)")
                if viaIndex != nil { hits += 1 }
            }
            #expect(hits > 100_000)
        }

        @Test("list-networks-by-cc / by-as / by-flags equal the reference CLI", .timeLimit(.minutes(5)),
              arguments: [["list-networks-by-cc", "LI"], ["list-networks-by-cc", "DE", "--family", "ipv6"],
                          ["list-networks-by-as", "3320"], ["list-networks-by-as", "15169", "--family", "ipv4"],
                          ["list-networks-by-flags", "--anycast", "--family", "ipv6"], ["list-networks-by-flags", "--satellite-provider"]])
        func listNetworks(_ arguments: [String]) throws {
            let db = try Shared.open()
            let reference = try Reference.run([try Reference.locationCLI(), "-d", try Reference.databasePath()] + arguments)
            #expect(reference.status == 0, "\(reference.stderr)")
            var filter = NetworkFilter()
            switch arguments[0] {
            case "list-networks-by-cc": filter.countryCodes = [CountryCode(arguments[1])!]
            case "list-networks-by-as": filter.asns = [UInt32(arguments[1])!]
            default:
                if arguments.contains("--anycast") { filter.flags.insert(.anycast) }
                if arguments.contains("--satellite-provider") { filter.flags.insert(.satelliteProvider) }
            }
            if let i = arguments.firstIndex(of: "--family") { filter.family = arguments[i + 1] == "ipv4" ? .ipv4 : .ipv6 }
            let ours = db.networks(matching: filter).map { $0.description + "\n" }.joined()
            #expect(!ours.isEmpty)
            #expect(ours == reference.stdout, "first difference near: \(firstDifference(ours, reference.stdout))")
        }

        @Test("export (flattened networks, all formats) equals the reference CLI", .timeLimit(.minutes(5)),
              arguments: [["LI", "AT", "AS3320"], ["AS15169"]], ["list", "ipset", "nftables"])
        func export(_ objects: [String], _ format: String) throws {
            let db = try Shared.open()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locdb-export-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let reference = try Reference.run([try Reference.locationCLI(), "-d", try Reference.databasePath(), "export",
                                               "--directory", directory.path, "--format", format] + objects)
            #expect(reference.status == 0, "\(reference.stderr)")
            let sets = db.export(objects: objects.map { ExportObject($0)! }, format: ExportFormat(rawValue: format)!)
            #expect(sets.count == objects.count * 2)
            for set in sets {
                let expected = try Data(contentsOf: directory.appendingPathComponent(set.fileName))
                let ours = set.output()
                #expect(set.networkCount > 0 || set.family == .ipv6)
                #expect(ours == [UInt8](expected), "\(set.fileName): \(firstDifference(String(decoding: ours, as: UTF8.self), String(decoding: expected, as: UTF8.self)))")
            }
        }

        @Test("export of a flag pseudo-code alone lists the flagged networks (the reference exports nothing)")
        func exportFlagOnly() throws {
            let db = try Shared.open()
            let sets = db.export(objects: [ExportObject("A3")!], families: [.ipv4], format: .list)
            let expected = db.flattenedNetworks(matching: NetworkFilter(family: .ipv4, flags: .anycast))
            #expect(sets.count == 1)
            #expect(sets[0].networkCount == expected.count)
            #expect(expected.count > 1000)
            #expect(sets[0].output() == Array(expected.map { "\($0)\n" }.joined().utf8))
        }

        @Test("list-bogons equals the reference CLI", .timeLimit(.minutes(5)))
        func bogons() throws {
            let db = try Shared.open()
            let reference = try Reference.run([try Reference.locationCLI(), "-d", try Reference.databasePath(), "list-bogons"])
            #expect(reference.status == 0, "\(reference.stderr)")
            let ours = db.bogons().map { LocationFormatting_text($0) + "\n" }.joined()
            #expect(reference.stdout.split(separator: "\n").count > 1000)
            #expect(ours == reference.stdout, "first difference near: \(firstDifference(ours, reference.stdout))")
        }

        @Test("countries and autonomous systems equal the reference's", .timeLimit(.minutes(2)))
        func countriesAndASes() throws {
            let db = try Shared.open()
            let cli = try Reference.locationCLI(), path = try Reference.databasePath()
            let countries = try Reference.run([cli, "-d", path, "list-countries", "--show-name", "--show-continent"])
            let ours = db.countries.map { "\($0.code) \($0.continentCode) \($0.name)\n" }.joined()
            #expect(ours == countries.stdout)
            #expect(db.country(code: CountryCode("DE")!)?.name == "Germany")
            #expect(db.country(code: CountryCode("ZZ")!) == nil)

            let getAS = try Reference.run([cli, "-d", path, "get-as", "15169", "3320", "1"])
            let oursAS = [15169, 3320, 1].map { "AS\($0) belongs to \(db.autonomousSystem(number: UInt32($0))!.name)\n" }.joined()
            #expect(oursAS == getAS.stdout)
            #expect(db.autonomousSystem(number: 4_000_000_000) == nil)

            let search = try Reference.run([cli, "-d", path, "search-as", "hostway"])
            let oursSearch = db.searchAutonomousSystems("hostway").map { "\($0)\n" }.joined()
            #expect(!oursSearch.isEmpty)
            #expect(oursSearch == search.stdout)
        }
    }
}

/// libloc's text for a prefix (exposed through `LocationNetwork.description`).
func LocationFormatting_text(_ prefix: IPPrefix) -> String {
    LocationNetwork(prefix: prefix, properties: NetworkProperties()).description
}

func firstDifference(_ a: String, _ b: String) -> String {
    let la = a.split(separator: "\n", omittingEmptySubsequences: false)
    let lb = b.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0..<max(la.count, lb.count) {
        let x = i < la.count ? String(la[i]) : "<end>", y = i < lb.count ? String(lb[i]) : "<end>"
        if x != y { return "line \(i + 1): ours '\(x)' vs reference '\(y)' (ours \(la.count) lines, reference \(lb.count))" }
    }
    return "none"
}
