import Foundation
import LocationDB
import IPQuestTestSupport
import Testing

/// Locates the real Debian database and the reference implementation (the `location` CLI and
/// its Python binding, packages `location`, `python3-location`, `libloc-database`).
enum Reference {
    struct Missing: Error, CustomStringConvertible {
        let description: String
    }

    /// The shipped database: `$LOCATION_DATABASE`, else Debian's paths.
    static func databasePath() throws -> String {
        let candidates = [ProcessInfo.processInfo.environment["LOCATION_DATABASE"],
                          "/var/lib/location/database.db", "/usr/share/libloc-location/location.db"].compactMap { $0 }
        for path in candidates where FileManager.default.isReadableFile(atPath: path) { return path }
        throw Missing(description: "no libloc database found (tried \(candidates)); install the Debian package libloc-database")
    }

    static func publicKeyPath() throws -> String {
        let path = "/var/lib/location/signing-key.pem"
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw Missing(description: "\(path) missing; install the Debian package location")
        }
        return path
    }

    static func locationCLI() throws -> String {
        for path in ["/usr/bin/location", "/usr/local/bin/location"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw Missing(description: "the reference `location` CLI is missing; install the Debian package location")
    }

    /// The Python that has the `location` binding (Debian's system Python).
    static func python() throws -> String {
        for path in ["/usr/bin/python3", "/bin/python3"] where FileManager.default.isExecutableFile(atPath: path) {
            let result = try run([path, "-c", "import location"], timeout: 30)
            if result.status == 0 { return path }
        }
        throw Missing(description: "no python3 with the `location` module; install the Debian package python3-location")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program with a deadline (it is killed when the deadline passes).
    static func run(_ arguments: [String], timeout: TimeInterval = 120) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let directory = FileManager.default.temporaryDirectory
        let outURL = directory.appendingPathComponent("locdb-\(UUID().uuidString).out")
        let errURL = directory.appendingPathComponent("locdb-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                process.waitUntilExit()
                throw Missing(description: "\(arguments.joined(separator: " ")) did not finish within \(Int(timeout)) s")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        try outHandle.close()
        try errHandle.close()
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Looks every address up with the reference library (Python binding) in one process.
    /// Returns one line per address: `address<TAB>network<TAB>country<TAB>asn<TAB>flags`, or
    /// `address<TAB>-` when nothing matches.
    static func lookups(_ addresses: [String], database: String) throws -> [String] {
        let script = """
        import sys, location
        db = location.Database(sys.argv[1])
        out = []
        for line in open(sys.argv[2]):
            a = line.strip()
            n = db.lookup(a)
            if n is None:
                out.append(a + "\\t-")
                continue
            flags = sum(f for f in (1, 2, 4, 8) if n.has_flag(f))
            out.append("%s\\t%s\\t%s\\t%d\\t%d" % (a, n, n.country_code or "", n.asn or 0, flags))
        sys.stdout.write("\\n".join(out) + "\\n")
        """
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("locdb-\(UUID().uuidString).txt")
        try addresses.joined(separator: "\n").appending("\n").write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let result = try run([try python(), "-c", script, database, input.path], timeout: 300)
        guard result.status == 0 else { throw Missing(description: "reference lookup failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// The same line format from our reader.
    static func line(_ address: String, _ network: LocationNetwork?) -> String {
        guard let network else { return address + "\t-" }
        return "\(address)\t\(network)\t\(network.countryCode)\t\(network.asn)\t\(network.flags.rawValue)"
    }
}

/// A small deterministic generator (splitmix64) so test inputs are the same on every run.


/// The real database, opened once for all tests.
enum Shared {
    static let database: Result<LocationDatabase, any Error> = Result {
        try LocationDatabase(path: try Reference.databasePath())
    }
    static func open() throws -> LocationDatabase { try database.get() }
}

/// Everything that uses the real database and the reference tools runs one test at a time: the
/// reference CLI and the big round trip are heavy, and running them side by side on a small
/// machine only makes each of them slower.
@Suite("Real Debian database and reference implementation", .serialized, .tags(.referenceTools))
struct RealDatabaseTests {}
