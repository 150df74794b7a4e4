import Foundation
import Testing
import IPAddress
@testable import Game
@testable import GameRules

/// `claims export` / `claims import` streamed (SQLiteClaimTransfer): what is written, what is
/// accepted and refused, all or nothing, reads cut anywhere, progress.
@Suite struct ClaimsTransferTests {
    static let header = "ip\tname\tclaimed_at\tcountry\tasn\tprovider\n"

    final class Directory: Sendable {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("ipquest-transfer-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func storage(_ name: String = "db") throws -> SQLiteClaimStorage { try SQLiteClaimStorage(path: "\(path)/\(name).sqlite") }
        func write(_ text: String, to name: String = "in.tsv") throws -> String {
            let file = "\(path)/\(name)"
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            return file
        }
    }

    static func claim(_ ip: String, _ name: String, _ at: Int64, _ origin: ClaimOrigin = .unknown) -> Claim {
        Claim(address: IPv4Address(ip)!, name: PlayerName(name)!, claimedAt: at, origin: origin)
    }

    static func importFile(_ storage: SQLiteClaimStorage, _ file: String, separator: Character = "\t", chunkSize: Int = 4 << 20,
                           progressEvery: Int = 1_000_000, progress: (SQLiteClaimStorage.ImportProgress) -> Void = { _ in }) throws -> SQLiteClaimStorage.ImportReport {
        let fd = open(file, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        return try storage.importClaims(fromFileDescriptor: fd, separator: separator.asciiValue!, chunkSize: chunkSize,
                                        progressEvery: progressEvery, progress: progress)
    }

    static func importText(_ storage: SQLiteClaimStorage, _ text: String, in dir: Directory, separator: Character = "\t",
                           chunkSize: Int = 4 << 20) throws -> SQLiteClaimStorage.ImportReport {
        try importFile(storage, try dir.write(text), separator: separator, chunkSize: chunkSize)
    }

    static func export(_ storage: SQLiteClaimStorage, in dir: Directory, separator: Character = "\t",
                       progressEvery: Int = 1_000_000, progress: (Int) -> Void = { _ in }) throws -> String {
        let file = "\(dir.path)/out-\(UUID().uuidString)"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        let count = try storage.exportClaims(toFileDescriptor: fd, separator: separator.asciiValue!, progressEvery: progressEvery, progress: progress)
        close(fd)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.split(separator: "\n").count == count + 1)
        return text
    }

    static func sorted(_ claims: [Claim]) -> [Claim] { claims.sorted { $0.address < $1.address } }

    /// `count` claims with varied origins, deterministic.
    static func sample(_ count: Int, base: UInt32 = 0x0A00_0000) -> [Claim] {
        (0..<count).map { i in
            let origin: ClaimOrigin = switch i % 4 {
            case 0: .unknown
            case 1: ClaimOrigin(country: "DE", asn: UInt32(3320 + i % 7))
            case 2: ClaimOrigin(country: "JP", asn: 2516, provider: "aws")
            default: ClaimOrigin(provider: "gcp")
            }
            return Claim(address: IPv4Address(base &+ UInt32(i * 3)), name: PlayerName("p\(i % 37)")!, claimedAt: 1_700_000_000 + Int64(i), origin: origin)
        }
    }

    @Test func exportMergesTheJournalInAddressOrder() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        _ = try await storage.importClaims([Self.claim("1.0.0.1", "a", 1), Self.claim("1.0.0.3", "b", 2), Self.claim("1.0.0.5", "c", 3)])
        try await storage.append([
            Self.claim("1.0.0.3", "d", 4, ClaimOrigin(country: "fr", asn: 12, provider: "aws")), // overrides a stored row
            Self.claim("1.0.0.0", "e", 5), // before every stored row
            Self.claim("1.0.0.9", "f", 6), // after every stored row
            Self.claim("1.0.0.4", "g", 7), // between two
            Self.claim("1.0.0.9", "h", 8), // the later journal row wins
        ])
        #expect(try await storage.journalLength() == 5)
        let text = try Self.export(storage, in: dir)
        #expect(text == Self.header + """
            1.0.0.0\te\t5\t\t\t
            1.0.0.1\ta\t1\t\t\t
            1.0.0.3\td\t4\tFR\t12\taws
            1.0.0.4\tg\t7\t\t\t
            1.0.0.5\tc\t3\t\t\t
            1.0.0.9\th\t8\t\t\t

            """)
        let csv = try Self.export(storage, in: dir, separator: ",")
        #expect(csv.split(separator: "\n")[0] == "ip,name,claimed_at,country,asn,provider")
        #expect(csv.split(separator: "\n")[3] == "1.0.0.3,d,4,FR,12,aws")
        // What loadAll sees, in the same order.
        #expect(Self.sorted(try await storage.loadAll()).map { "\($0.address)\t\($0.name)\t\($0.claimedAt)" }
            == text.split(separator: "\n").dropFirst().map { $0.split(separator: "\t", omittingEmptySubsequences: false).prefix(3).joined(separator: "\t") })
    }

    @Test func roundTripIsExact() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        let claims = Self.sample(20_000)
        _ = try await storage.importClaims(Array(claims.prefix(15_000)))
        try await storage.append(Array(claims.suffix(5_000)) + [Self.claim("10.0.0.0", "override", 9)])
        let first = try Self.export(storage, in: dir)
        let fresh = try dir.storage("fresh")
        let report = try Self.importText(fresh, first, in: dir)
        #expect(report.errorCount == 0 && report.rows == 20_000)
        #expect(try Self.export(fresh, in: dir) == first)
        #expect(Self.sorted(try await fresh.loadAll()) == Self.sorted(try await storage.loadAll()))
        #expect(try await fresh.journalLength() == 0)
    }

    /// A bad last row of a file larger than a read and the page cache: nothing of the file is
    /// written, and what was stored before (the journal too) is as it was.
    @Test func badRowAtTheEndOfALargeFileWritesNothing() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        _ = try await storage.importClaims([Self.claim("10.0.0.0", "old", 1), Self.claim("200.0.0.1", "old", 2)])
        try await storage.append([Self.claim("10.0.0.0", "journal", 3)])
        let before = Self.sorted(try await storage.loadAll())
        let generation = try await storage.generation()
        let rows = 300_000
        var text = Self.header
        text.reserveCapacity(rows * 48)
        for i in 0..<rows {
            let ip = IPv4Address(0x0A00_0000 + UInt32(i))
            text += "\(ip)\tnew\(i % 100)\t\(1_700_000_000 + i)\tDE\t3320\t\n"
        }
        let good = try dir.write(text, to: "good.tsv")
        let bad = try dir.write(text + "1.2.3\tbad\t6\n", to: "bad.tsv")
        #expect(text.utf8.count > 8 << 20) // two reads at least

        let report = try Self.importFile(storage, bad)
        #expect(report.errorCount == 1)
        #expect(report.errors == ["line \(rows + 2): '1.2.3' is not an IPv4 address"])
        #expect(Self.sorted(try await storage.loadAll()) == before)
        #expect(try await storage.journalLength() == 1)
        #expect(try await storage.generation() == generation)

        let done = try Self.importFile(storage, good)
        #expect(done.errorCount == 0 && done.rows == rows)
        #expect(try await storage.count() == rows + 1)
        #expect(try await storage.journalLength() == 0)
        // A board checkpoint taken before the import is known to be stale.
        #expect(try await storage.generation() == generation + 1)
        let stored = Self.sorted(try await storage.loadAll())
        #expect(stored.first == Self.claim("10.0.0.0", "new0", 1_700_000_000, ClaimOrigin(country: "DE", asn: 3320)))
        #expect(stored.last == Self.claim("200.0.0.1", "old", 2))
        // No WAL left at the size of the import.
        let wal = (try? FileManager.default.attributesOfItem(atPath: storage.path + "-wal")[.size] as? Int) ?? 0
        #expect(wal < 1 << 20)
    }

    /// Reads of any size, down to one byte: rows cut anywhere (in a field, between \r and \n)
    /// read the same, and line numbers stay right.
    @Test(arguments: [1, 2, 3, 5, 7, 13, 64, 4096])
    func rowsAcrossReads(chunkSize: Int) async throws {
        let dir = try Directory()
        let text = "ip\tname\tclaimed_at\r\n1.2.3.4\talice\t100\r\n\r\n\"1.2.3.5\"\t\"bob\"\t101\tde\t3320\taws\n\n9.9.9.9\tcarol\t102"
        let storage = try dir.storage()
        let report = try Self.importText(storage, text, in: dir, chunkSize: chunkSize)
        #expect(report.errorCount == 0 && report.rows == 3)
        #expect(Self.sorted(try await storage.loadAll()) == [
            Self.claim("1.2.3.4", "alice", 100),
            Self.claim("1.2.3.5", "bob", 101, ClaimOrigin(country: "DE", asn: 3320, provider: "aws")),
            Self.claim("9.9.9.9", "carol", 102),
        ])
        let bad = "1.2.3.4\talice\t100\r\n\r\n1.2.3.999\tbob\t1\r\n1.2.3.6\tc d\t1\r\n1.2.3.7\tok\t-1"
        let refused = try Self.importText(try dir.storage("bad"), bad, in: dir, chunkSize: chunkSize)
        #expect(refused.errors == [
            "line 3: '1.2.3.999' is not an IPv4 address",
            "line 4: invalid character at position 2; \(PlayerName.rule)",
            "line 5: '-1' is not a Unix time",
        ])
    }

    @Test func headerOnlyOnTheFirstLine() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        #expect(try Self.importText(storage, "\"ip\",\"name\",\"claimed_at\"\n1.2.3.4,a,1\n", in: dir, separator: ",").errorCount == 0)
        #expect(try Self.importText(storage, "ip\n1.2.3.4\ta\t1\n", in: dir).errorCount == 0) // a header of any width
        let late = try Self.importText(storage, "1.2.3.4\ta\t1\nip\tname\tclaimed_at\n", in: dir)
        #expect(late.errors == ["line 2: 'ip' is not an IPv4 address"])
        let afterEmpty = try Self.importText(storage, "\nip\tname\tclaimed_at\n", in: dir)
        #expect(afterEmpty.errors == ["line 2: 'ip' is not an IPv4 address"])
    }

    /// The quoting the parser always took: a field wrapped whole in double quotes loses them
    /// (no escapes, no separator inside).
    @Test func csvQuoting() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        let text = "\"1.2.3.4\",\"bob\",\"5\"\n1.2.3.5,\"a*b\",6,\"de\",\"3320\",\"aws\"\n1.2.3.6,c,7,\"\",\"\",\"\"\n"
        let report = try Self.importText(storage, text, in: dir, separator: ",")
        #expect(report.errorCount == 0 && report.rows == 3)
        #expect(Self.sorted(try await storage.loadAll()) == [
            Self.claim("1.2.3.4", "bob", 5),
            Self.claim("1.2.3.5", "a*b", 6, ClaimOrigin(country: "DE", asn: 3320, provider: "aws")),
            Self.claim("1.2.3.6", "c", 7),
        ])
        let refused = try Self.importText(storage, "\"\t\"a\"b\"\t1\n\"1.2.3.4\"\"\ta\t1\n1.2.3.4,\"a,b\",1\n", in: dir)
        #expect(refused.errors == [
            "line 1: '\"' is not an IPv4 address",
            "line 2: '1.2.3.4\"' is not an IPv4 address",
            "line 3: expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 1",
        ])
        #expect(try Self.importText(storage, "1.2.3.4,\"a,b\",1\n", in: dir, separator: ",").errors
            == ["line 1: expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 4"])
    }

    /// Every rule and its message, as `claims import` always had them.
    @Test func rulesAndMessages() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        let cases: [(String, String)] = [
            ("1.2.3.4\ta", "expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 2"),
            ("1.2.3.4\ta\t1\tDE", "expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 4"),
            ("1.2.3.4\ta\t1\t\t\t\t", "expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 7"),
            ("01.2.3.4\ta\t1", "'01.2.3.4' is not an IPv4 address"),
            (" 1.2.3.4\ta\t1", "' 1.2.3.4' is not an IPv4 address"),
            ("1.2.3.4\t\t1", "empty name; \(PlayerName.rule)"),
            ("1.2.3.4\t\(String(repeating: "n", count: 41))\t1", "name is 41 characters long; \(PlayerName.rule)"),
            ("1.2.3.4\tné\t1", "invalid character at position 2; \(PlayerName.rule)"),
            ("1.2.3.4\ta\t", "'' is not a Unix time"),
            ("1.2.3.4\ta\t1.5", "'1.5' is not a Unix time"),
            ("1.2.3.4\ta\t99999999999999999999", "'99999999999999999999' is not a Unix time"),
            ("1.2.3.4\ta\t1\tDEU\t3320\taws", "'DEU' is not a two-letter country code"),
            ("1.2.3.4\ta\t1\tD1\t3320\taws", "'D1' is not a two-letter country code"),
            ("1.2.3.4\ta\t1\tDE\t4294967296\taws", "'4294967296' is not an AS number"),
            ("1.2.3.4\ta\t1\tDE\tAS1\taws", "'AS1' is not an AS number"),
            ("1.2.3.4\ta\t1\tDE\t1\t\(String(repeating: "x", count: 65))", "'\(String(repeating: "x", count: 65))' is not a provider name"),
            ("1.2.3.4\ta\t1\tDE\t1\tcloud provider", "'cloud provider' is not a provider name"),
            ("1.2.3.4\ta\t1\tDE\t1\tcloud\u{0B}", "'cloud\u{0B}' is not a provider name"),
            ("1.2.3.4\ta\t1\tDE\t1\tnuée", "'nuée' is not a provider name"),
        ]
        for (row, message) in cases {
            let report = try Self.importText(storage, "9.9.9.9\tfine\t1\n" + row + "\n", in: dir)
            #expect(report.errors == ["line 2: \(message)"], "\(row)")
        }
        #expect(try await storage.count() == 0)

        // Accepted as they always were: signs on numbers, the largest values, lower-case
        // countries (kept in upper case), AS 0 as none, any ASCII without spaces as a provider.
        let accepted = """
            1.2.3.1\ta\t+5\tde\t0\tx
            1.2.3.2\ta\t9223372036854775807\t\t4294967295\t\u{01}!~
            1.2.3.3\t\(String(repeating: "n", count: 40))\t0\tdE\t+7\t\(String(repeating: "y", count: 64))

            """
        let report = try Self.importText(storage, accepted, in: dir)
        #expect(report.errorCount == 0 && report.rows == 3)
        #expect(Self.sorted(try await storage.loadAll()) == [
            Self.claim("1.2.3.1", "a", 5, ClaimOrigin(country: "DE", provider: "x")),
            Self.claim("1.2.3.2", "a", .max, ClaimOrigin(asn: 4_294_967_295, provider: "\u{01}!~")),
            Self.claim("1.2.3.3", String(repeating: "n", count: 40), 0, ClaimOrigin(country: "DE", asn: 7, provider: String(repeating: "y", count: 64))),
        ])
    }

    /// Ten messages, then how many more; nothing written; the last row of an address wins
    /// when all is well.
    @Test func tenMessagesThenTheCount() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        var text = ""
        for i in 0..<40 { text += i % 3 == 0 ? "1.2.3.\(i)\tbad name\t1\n" : "1.2.3.\(i)\tok\t1\n" }
        let report = try Self.importText(storage, text, in: dir)
        #expect(report.errorCount == 14)
        #expect(report.errors.count == 10)
        #expect(report.errors.first == "line 1: invalid character at position 4; \(PlayerName.rule)")
        #expect(report.errors.last == "line 28: invalid character at position 4; \(PlayerName.rule)")
        #expect(try await storage.count() == 0)

        #expect(try Self.importText(storage, "1.2.3.4\tfirst\t1\n1.2.3.4\tsecond\t2\n", in: dir).rows == 2)
        #expect(try await storage.loadAll() == [Self.claim("1.2.3.4", "second", 2)])
    }

    /// A line longer than any row (no line end in sight) is one bad line; the count goes on.
    @Test func overlongLine() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        let text = String(repeating: "x", count: 200_000) + "\n1.2.3.4\ta\t1\n1.2.3\ta\t1\n"
        let report = try Self.importText(storage, text, in: dir, chunkSize: 4096)
        #expect(report.errors == [
            "line 1: expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got 1",
            "line 3: '1.2.3' is not an IPv4 address",
        ])
    }

    @Test func progressEveryNRows() async throws {
        let dir = try Directory()
        let storage = try dir.storage()
        var text = Self.header
        for i in 0..<2_500 { text += "\(IPv4Address(0x0B00_0000 + UInt32(i)))\tp\t\(i)\n" }
        let file = try dir.write(text)
        var seen: [(Int, Int)] = []
        let report = try Self.importFile(storage, file, chunkSize: 1024, progressEvery: 1_000) { seen.append(($0.rows, $0.bytes)) }
        #expect(report.rows == 2_500)
        #expect(seen.map(\.0) == [1_000, 2_000])
        #expect(seen[0].1 > 0 && seen[0].1 < seen[1].1 && seen[1].1 <= text.utf8.count)
        var exported: [Int] = []
        _ = try Self.export(storage, in: dir, progressEvery: 1_000) { exported.append($0) }
        #expect(exported == [1_000, 2_000])
    }

    /// The command line: progress on standard error, export to standard output or a file,
    /// a refused import leaves no database behind.
    @Test func commandLine() async throws {
        let dir = try Directory()
        let db = dir.path + "/cli.sqlite"
        var text = Self.header
        for i in 0..<2_500 { text += "\(IPv4Address(0x0C00_0000 + UInt32(i)))\tp\(i % 7)\t\(i)\t\t\t\n" }
        let file = try dir.write(text, to: "in.tsv")
        let imported = try await runTool(ServeProcessTests.binary, ["claims", "import", "--database", db, "--progress-every", "1000", file])
        #expect(imported.status == 0)
        #expect(imported.stderr.contains("read 1000 claims (") && imported.stderr.contains("read 2000 claims ("))
        #expect(imported.stderr.contains("imported 2500 claims into \(db)"))

        let toStdout = try await runTool(ServeProcessTests.binary, ["claims", "export", "--database", db, "--progress-every", "1000"])
        #expect(toStdout.status == 0)
        #expect(toStdout.stdout == text)
        #expect(toStdout.stderr.contains("exported 1000 claims…\nexported 2000 claims…\nexported 2500 claims in"))
        let toFile = try await runTool(ServeProcessTests.binary, ["claims", "export", "--database", db, "--format", "csv", "-o", dir.path + "/out.csv"])
        #expect(toFile.status == 0)
        #expect(try String(contentsOfFile: dir.path + "/out.csv", encoding: .utf8) == text.replacingOccurrences(of: "\t", with: ","))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".partial-") }.isEmpty)

        let badFile = try dir.write("1.2.3.4\tok\t5\n1.2.3\tbad\t6\n", to: "bad.tsv")
        let fresh = dir.path + "/fresh.sqlite"
        let refused = try await runTool(ServeProcessTests.binary, ["claims", "import", "--database", fresh, badFile])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("line 2: '1.2.3' is not an IPv4 address\nimport aborted: 1 bad rows, nothing written"))
        #expect(!FileManager.default.fileExists(atPath: fresh))
        let kept = try await runTool(ServeProcessTests.binary, ["claims", "import", "--database", db, badFile])
        #expect(kept.status == 2)
        #expect(try await SQLiteClaimStorage(path: db).count() == 2_500)
    }
}
