import Foundation
import LocationDB
import IPQuestTestSupport
import Testing

/// A small database built by our writer, used as the base for corruption tests.
enum SmallDatabase {
    static func writer(networkCount: Int = 300, seed: UInt64 = 7) -> DatabaseWriter {
        var writer = DatabaseWriter()
        writer.vendor = "Test Vendor"
        writer.description = "Small test database"
        writer.license = "CC0"
        writer.createdAt = 1_700_000_000
        writer.mergesNetworks = false
        writer.addCountry(Country(code: CountryCode("DE")!, continentCode: CountryCode("EU")!, name: "Germany"))
        writer.addCountry(Country(code: CountryCode("AU")!, continentCode: CountryCode("OC")!, name: "Australia"))
        writer.addCountry(Country(code: CountryCode("US")!, continentCode: CountryCode("NA")!, name: "United States of America"))
        writer.addAutonomousSystem(number: 3320, name: "DTAG Internet service provider operations")
        writer.addAutonomousSystem(number: 13335, name: "CLOUDFLARENET")
        writer.addAutonomousSystem(number: 15169, name: "GOOGLE")
        var random = SplitMix64(seed: seed)
        let codes = ["DE", "AU", "US", "FR"].map { CountryCode($0)! }
        var added = Set<IPPrefix>()
        while added.count < networkCount {
            let length = UInt8(8 + random.next() % 25)
            let prefix: IPPrefix = random.next() % 3 == 0
                ? .v6(IPv6Prefix(IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3), low: random.next()), length: length + 8))
                : .v4(IPv4Prefix(IPv4Address(UInt32(truncatingIfNeeded: random.next())), length: length))
            guard added.insert(prefix).inserted else { continue }
            let properties = NetworkProperties(countryCode: codes[Int(random.next() % 4)], asn: [0, 3320, 13335, 15169][Int(random.next() % 4)],
                                               flags: NetworkFlags(rawValue: UInt16(random.next() % 16)))
            try! writer.addNetwork(prefix, properties: properties)
        }
        return writer
    }

    static func bytes() throws -> [UInt8] { try writer().makeBytes() }
}

@Suite("Hostile and corrupted files", .tags(.slow))
struct HostileFileTests {
    func expectThrows(_ bytes: [UInt8], _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try LocationDatabase(bytes: bytes)
            Issue.record("opened a corrupted file: \(comment)", sourceLocation: sourceLocation)
        } catch {
            // expected
        }
    }

    func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * i)) }
    }

    func get32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) }
    }

    @Test("the base file is valid")
    func baseIsValid() throws {
        let db = try LocationDatabase(bytes: try SmallDatabase.bytes())
        #expect(db.networkCount == 300)
        #expect(db.vendor == "Test Vendor")
    }

    @Test("truncated files throw", .timeLimit(.minutes(2)))
    func truncated() throws {
        let bytes = try SmallDatabase.bytes()
        for length in [0, 1, 7, 8, 100, 4199, 4200, 8191, 8192, 9000, bytes.count / 2, bytes.count - 13, bytes.count - 1] {
            expectThrows(Array(bytes.prefix(length)), "truncated to \(length)")
        }
        // The real database cut in the middle of its tree and at its last byte.
        let real = try Data(contentsOf: URL(fileURLWithPath: try Reference.databasePath()))
        expectThrows(Array(real.prefix(20_000_000)), "real database cut at 20 MB")
        expectThrows(Array(real.dropLast()), "real database without its last byte")
    }

    @Test("bad magic, version and header fields throw")
    func badHeader() throws {
        let base = try SmallDatabase.bytes()
        var b = base; b[0] = UInt8(ascii: "X"); expectThrows(b, "magic")
        b = base; b[7] = 2; expectThrows(b, "version 2")
        // Each section offset or length pushed past the end of the file.
        for field in stride(from: 28, through: 64, by: 4) {
            b = base; put32(&b, field, 0xFFFF_FFF0); expectThrows(b, "field at \(field) huge")
            b = base; put32(&b, field, UInt32(base.count) + 1); expectThrows(b, "field at \(field) past end")
        }
        // Huge signature lengths.
        b = base; b[68] = 0xFF; b[69] = 0xFF; expectThrows(b, "signature 1 length 65535")
        b = base; b[70] = 0x08; b[71] = 0x01; expectThrows(b, "signature 2 length 2049")
        // Strings outside the pool.
        b = base; put32(&b, 16, get32(base, 64) + 5); expectThrows(b, "vendor outside the pool")
        let asOffset = Int(get32(base, 28))
        b = base; put32(&b, asOffset + 4, 0x7FFF_FFFF); expectThrows(b, "AS name outside the pool")
        let countryOffset = Int(get32(base, 52))
        b = base; put32(&b, countryOffset + 4, 0x7FFF_FFFF); expectThrows(b, "country name outside the pool")
    }

    @Test("cyclic, shared and out-of-range tree indexes throw")
    func badTree() throws {
        let base = try SmallDatabase.bytes()
        let tree = Int(get32(base, 44)), nodes = Int(get32(base, 48)) / 12
        // Find a node with a child, point the child back at an ancestor (the node itself).
        var b = base
        var found = false
        for n in 1..<nodes where get32(base, tree + n * 12) != 0 {
            put32(&b, tree + n * 12, UInt32(n))
            found = true
            break
        }
        #expect(found)
        expectThrows(b, "node pointing at itself")
        // Two parents sharing one child.
        b = base
        let childOfRoot = get32(base, tree)  // zero child of the root
        var sharedDone = false
        for n in 1..<nodes where get32(base, tree + n * 12 + 4) == 0 && Int(n) != Int(childOfRoot) {
            put32(&b, tree + n * 12 + 4, childOfRoot)
            sharedDone = true
            break
        }
        #expect(sharedDone)
        expectThrows(b, "shared child")
        // Child index past the end.
        b = base; put32(&b, tree, UInt32(nodes)); expectThrows(b, "child index == node count")
        b = base; put32(&b, tree + 4, 0xFFFF_FFFE); expectThrows(b, "child index huge")
        // Network index past the records.
        b = base
        for n in 0..<nodes where get32(base, tree + n * 12 + 8) != 0xFFFF_FFFF {
            put32(&b, tree + n * 12 + 8, get32(base, 40) / 12)
            break
        }
        expectThrows(b, "network index == record count")
    }

    @Test("a chain deeper than 128 levels throws")
    func tooDeep() throws {
        // Root + 130 nodes, each the zero child of the previous: depth 130.
        var writer = ByteBuilder()
        writer.bytes = [UInt8](repeating: 0, count: 8192)
        let tree = writer.bytes.count
        for i in 0..<131 {
            writer.u32(i < 130 ? UInt32(i + 1) : 0)
            writer.u32(0)
            writer.u32(i == 130 ? 0 : 0xFFFF_FFFF)
        }
        let networks = writer.bytes.count
        writer.u32(0); writer.u32(0); writer.u32(0)
        let pool = writer.bytes.count
        writer.bytes.append(0)
        var b = writer.bytes
        b.replaceSubrange(0..<7, with: Array("LOCDBXX".utf8)); b[7] = 1
        put32(&b, 36, UInt32(networks)); put32(&b, 40, 12)
        put32(&b, 44, UInt32(tree)); put32(&b, 48, 131 * 12)
        put32(&b, 60, UInt32(pool)); put32(&b, 64, 1)
        expectThrows(b, "depth 130")
    }

    /// Mutation fuzzing: random byte changes in a valid file; open must throw or give a database
    /// on which every operation completes.
    @Test("mutation fuzzing finds no crash", .timeLimit(.minutes(3)))
    func fuzz() throws {
        let base = try SmallDatabase.writer(networkCount: 60).makeBytes()
        var random = SplitMix64(seed: 0xF022)
        var opened = 0, rejected = 0
        for round in 0..<3000 {
            var b = base
            let edits = 1 + Int(random.next() % 8)
            for _ in 0..<edits {
                // Bias towards the header and the tree, where the structure lives.
                let where_ = random.next() % 4
                let offset: Int
                switch where_ {
                case 0: offset = Int(random.next() % 80)
                case 1: offset = Int(random.next() % UInt64(b.count))
                default:
                    let tree = Int(get32(base, 44)), length = Int(get32(base, 48))
                    offset = tree + Int(random.next() % UInt64(max(length, 1)))
                }
                b[offset] = random.next() % 2 == 0 ? UInt8(truncatingIfNeeded: random.next()) : b[offset] ^ (1 << UInt8(random.next() % 8))
            }
            if round % 10 == 0 { b = Array(b.prefix(Int(random.next() % UInt64(b.count)))) }
            guard let db = try? LocationDatabase(bytes: b) else { rejected += 1; continue }
            opened += 1
            for _ in 0..<50 {
                _ = db.lookup(IPv4Address(UInt32(truncatingIfNeeded: random.next())))
                _ = db.lookup(IPv6Address(high: random.next(), low: random.next()))
            }
            _ = Array(db.networks())
            _ = db.flattenedNetworks()
            _ = db.bogons()
            _ = db.countries
            _ = db.autonomousSystems
            _ = db.searchAutonomousSystems("a")
            _ = db.autonomousSystem(number: UInt32(truncatingIfNeeded: random.next() % 20000))
        }
        #expect(opened > 100)
        #expect(rejected > 100)
    }
}

struct ByteBuilder {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * i))) }
    }
}
