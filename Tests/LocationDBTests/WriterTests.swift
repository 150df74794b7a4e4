import Foundation
import LocationDB
import IPQuestTestSupport
import Testing

extension RealDatabaseTests {
    @Suite("Writer", .serialized)
    struct WriterTests {
        func temporaryPath(_ name: String) -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("locdb-\(UUID().uuidString)-\(name)").path
        }

        @Test("a written database reads back identically with our reader and the reference", .timeLimit(.minutes(2)))
        func smallRoundTrip() throws {
            let writer = SmallDatabase.writer()
            let path = temporaryPath("small.db")
            try writer.write(to: path)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let db = try LocationDatabase(path: path)
            #expect(db.vendor == "Test Vendor")
            #expect(db.createdAt == 1_700_000_000)
            #expect(db.networkCount == 300)
            #expect(db.countries.map(\.code.description) == ["AU", "DE", "US"])
            #expect(db.autonomousSystem(number: 13335)?.name == "CLOUDFLARENET")

            var addresses: [String] = []
            for network in db.networks() {
                switch network.prefix {
                case .v4(let p): addresses += [p.first.description, p.last.description, IPv4Address(p.last.value &+ 1).description]
                case .v6(let p): addresses += [p.first.description, p.last.description]
                }
            }
            var random = SplitMix64(seed: 99)
            for _ in 0..<2000 { addresses.append(IPv4Address(UInt32(truncatingIfNeeded: random.next())).description) }
            let reference = try Reference.lookups(addresses, database: path)
            let ours = addresses.map { Reference.line($0, db.lookup(IPAddress($0)!)) }
            #expect(ours == reference)

            // The reference dump of our file lists exactly the networks we enumerate.
            let dump = try Reference.run([try Reference.locationCLI(), "-d", path, "dump"])
            var ourDump = ""
            DumpFormat.write(db) { ourDump += $0 }
            #expect(dump.stdout == ourDump, "\(firstDifference(ourDump, dump.stdout))")
        }

        @Test("merging keeps every lookup and removes redundant networks")
        func merging() throws {
            var writer = DatabaseWriter()
            let de = NetworkProperties(countryCode: CountryCode("DE")!, asn: 3320)
            let fr = NetworkProperties(countryCode: CountryCode("FR")!, asn: 3215)
            for text in ["10.0.0.0/25", "10.0.0.128/25", "11.0.0.0/8", "11.1.0.0/16", "12.0.0.0/8"] {
                try writer.addNetwork(IPPrefix(text)!, properties: de)
            }
            try writer.addNetwork(IPPrefix("12.1.0.0/16")!, properties: fr)
            #expect(throws: LocationDatabaseError.self) { try writer.addNetwork(IPPrefix("12.1.0.0/16")!, properties: de) }
            let merged = try LocationDatabase(bytes: writer.makeBytes())
            #expect(merged.networks().map(\.description) == ["10.0.0.0/24", "11.0.0.0/8", "12.0.0.0/8", "12.1.0.0/16"])
            writer.mergesNetworks = false
            let asGiven = try LocationDatabase(bytes: writer.makeBytes())
            #expect(asGiven.networkCount == 6)
            for address in ["10.0.0.1", "10.0.0.200", "11.1.2.3", "11.2.3.4", "12.1.0.1", "12.2.0.1", "13.0.0.1"] {
                let a = IPAddress(address)!
                #expect(merged.lookup(a)?.properties == asGiven.lookup(a)?.properties, "\(address)")
            }
        }

        /// The real database → reference `location dump` → our importer → our writer → the reference
        /// library: the same answers, and (written as given) the identical dump.
        @Test("real database round trip through dump, importer and writer", .timeLimit(.minutes(20)))
        func realRoundTrip() throws {
            let original = try Shared.open()
            let cli = try Reference.locationCLI(), originalPath = try Reference.databasePath()
            let dumpPath = temporaryPath("dump.txt")
            defer { try? FileManager.default.removeItem(atPath: dumpPath) }
            let dumped = try Reference.run([cli, "-d", originalPath, "dump", dumpPath], timeout: 300)
            try #require(dumped.status == 0, "\(dumped.stderr)")

            var writer = DatabaseWriter()
            writer.mergesNetworks = false
            let text = try Data(contentsOf: URL(fileURLWithPath: dumpPath))
            try text.withUnsafeBytes { try DumpFormat.read($0, into: &writer) }
            for country in original.countries { writer.addCountry(country) }
            #expect(writer.networkCount == original.networkCount)
            #expect(writer.createdAt == original.createdAt)

            let asGivenPath = temporaryPath("as-given.db")
            defer { try? FileManager.default.removeItem(atPath: asGivenPath) }
            try writer.write(to: asGivenPath)
            let redump = try Reference.run([cli, "-d", asGivenPath, "dump"], timeout: 300)
            try #require(redump.status == 0, "\(redump.stderr)")
            let originalDump = try String(contentsOfFile: dumpPath, encoding: .utf8)
            #expect(redump.stdout == originalDump, "\(firstDifference(redump.stdout, originalDump))")

            writer.mergesNetworks = true
            let mergedPath = temporaryPath("merged.db")
            defer { try? FileManager.default.removeItem(atPath: mergedPath) }
            try writer.write(to: mergedPath)
            let merged = try LocationDatabase(path: mergedPath)
            #expect(merged.networkCount < original.networkCount)

            var addresses: [String] = []
            var random = SplitMix64(seed: 2024)
            var index = 0
            for network in original.networks() {
                defer { index += 1 }
                guard index % 997 == 0 else { continue }
                switch network.prefix {
                case .v4(let p): addresses += [p.first.description, p.last.description, IPv4Address(p.last.value &+ 1).description]
                case .v6(let p): addresses += [p.first.description, p.last.description]
                }
            }
            for _ in 0..<10_000 { addresses.append(IPv4Address(UInt32(truncatingIfNeeded: random.next())).description) }
            let before = try Reference.lookups(addresses, database: originalPath)
            let after = try Reference.lookups(addresses, database: mergedPath)
            try #require(before.count == addresses.count)
            // The network printed may be a merged (bigger) one; country, ASN and flags must agree.
            func properties(_ line: String) -> String { line.split(separator: "\t", omittingEmptySubsequences: false).dropFirst(2).joined(separator: "\t") }
            let differences = zip(before, after).filter { properties($0) != properties($1) }
            #expect(differences.isEmpty, "\(differences.prefix(5))")
            // Our reader agrees with the reference on the merged file, network included.
            let ours = addresses.map { Reference.line($0, merged.lookup(IPAddress($0)!)) }
            #expect(ours == after)
        }
    }
}

extension RealDatabaseTests {
    @Suite("Signatures", .serialized)
    struct SignatureTests {
        @Test("the shipped database verifies with IPFire's key", .timeLimit(.minutes(2)))
        func shippedVerifies() throws {
            let db = try Shared.open()
            let pem = try String(contentsOfFile: try Reference.publicKeyPath(), encoding: .utf8)
            #expect(db.verify(publicKey: try DatabasePublicKey(pem: pem)) == .valid(slot: 2))
            #expect(db.signatures.first == nil)
            #expect(db.signatures.second?.count == 138)
            // Another key does not verify it.
            let other = try DatabaseSigningKey.generate(bits: 521).publicKey
            #expect(db.verify(publicKey: other) == .invalid)
        }

        @Test("a tampered database fails verification with a clear message", .timeLimit(.minutes(2)))
        func tampered() throws {
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: try Reference.databasePath())))
            // The ASN of network record 1000 (network data offset is header field 36).
            let networks = (36..<40).reduce(0) { $0 << 8 | Int(bytes[$1]) }
            bytes[networks + 1000 * 12 + 7] ^= 0x01
            let db = try LocationDatabase(bytes: bytes)
            let pem = try String(contentsOfFile: try Reference.publicKeyPath(), encoding: .utf8)
            #expect(db.verify(publicKey: try DatabasePublicKey(pem: pem)) == .invalid)
            do {
                try db.verify(publicKeyPEM: pem)
                Issue.record("tampered file verified")
            } catch {
                #expect("\(error)".contains("tampered file or wrong key"))
            }
        }

        @Test("databases we sign verify with our reader and with `location verify -k`", .timeLimit(.minutes(2)))
        func signAndVerify() throws {
            let first = try DatabaseSigningKey.generate(bits: 256)
            let second = try DatabaseSigningKey.generate(bits: 521)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("locdb-sign-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let dbPath = directory.appendingPathComponent("signed.db").path
            try SmallDatabase.writer().write(to: dbPath, signingKeys: [first, second])
            let db = try LocationDatabase(path: dbPath)
            #expect(db.verify(publicKey: first.publicKey) == .valid(slot: 1))
            #expect(db.verify(publicKey: second.publicKey) == .valid(slot: 2))

            let cli = try Reference.locationCLI()
            for (name, key) in [("first.pem", first), ("second.pem", second)] {
                let keyPath = directory.appendingPathComponent(name).path
                try key.publicKey.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
                let result = try Reference.run([cli, "-d", dbPath, "-k", keyPath, "verify"])
                #expect(result.status == 0, "reference verify with \(name): \(result.stderr)")
            }
            let ipfire = try Reference.run([cli, "-d", dbPath, "-k", try Reference.publicKeyPath(), "verify"])
            #expect(ipfire.status == 1)

            let unsigned = try LocationDatabase(bytes: SmallDatabase.bytes())
            #expect(unsigned.verify(publicKey: first.publicKey) == .unsigned)
        }
    }
}
