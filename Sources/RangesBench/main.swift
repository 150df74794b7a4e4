// ranges-bench: builds a CompiledPrefixTable from a prefix list and times longest-prefix lookups.
// Driven by bench/ranges/run.sh, which also measures pytricia on the same inputs.
//
// Usage: ranges-bench --prefixes FILE --addresses FILE [--repeat N] [--dump FILE] [--dump-count N]
//   FILE formats: one CIDR (prefixes) or one address (addresses) per line, IPv4 and/or IPv6.
// Prints one JSON object on stdout.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import IPAddress

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ranges-bench: \(message)\n".utf8))
    exit(2)
}

func cpuSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func wallSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// (VmRSS, VmHWM) in bytes from /proc/self/status; zeros where unavailable.
func residentBytes() -> (current: Int, peak: Int) {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    var current = 0, peak = 0
    for line in text.split(separator: "\n") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2, let kib = Int(parts[1]) else { continue }
        if parts[0] == "VmRSS:" { current = kib * 1024 }
        if parts[0] == "VmHWM:" { peak = kib * 1024 }
    }
    return (current, peak)
}

func readLines(_ path: String) -> [Substring] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fail("cannot read \(path)") }
    return text.split(whereSeparator: \.isNewline).filter { !$0.isEmpty && !$0.hasPrefix("#") }
}

var arguments = CommandLine.arguments.dropFirst()
var prefixPath: String?, addressPath: String?, dumpPath: String?
var repeats = 5, dumpCount = 100_000
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value") }
    switch flag {
    case "--prefixes": prefixPath = value
    case "--addresses": addressPath = value
    case "--repeat": repeats = Int(value) ?? repeats
    case "--dump": dumpPath = value
    case "--dump-count": dumpCount = Int(value) ?? dumpCount
    default: fail("unknown flag \(flag)")
    }
}
guard let prefixPath, let addressPath else { fail("--prefixes and --addresses are required") }

// Inputs (not timed).
var v4Entries: [(prefix: IPv4Prefix, value: UInt32)] = []
var allEntries: [(prefix: IPPrefix, value: UInt32)] = []
for (i, line) in readLines(prefixPath).enumerated() {
    guard let p = try? IPPrefix(parsing: line, strict: false) else { fail("bad prefix line \(i + 1): \(line)") }
    allEntries.append((p, UInt32(i)))
    if case .v4(let v4) = p { v4Entries.append((v4, UInt32(i))) }
}
var v4Addresses: [IPv4Address] = []
var v6Addresses: [IPv6Address] = []
for line in readLines(addressPath) {
    if let a = IPv4Address(line) { v4Addresses.append(a) } else if let a = IPv6Address(line) { v6Addresses.append(a) } else { fail("bad address \(line)") }
}
let onlyIPv4 = v4Entries.count == allEntries.count

// Build (timed): the bulk IPv4 path when the list is IPv4 only, else the general one.
let rssBefore = residentBytes().current
let buildCPUStart = cpuSeconds(), buildWallStart = wallSeconds()
let table = onlyIPv4 ? CompiledPrefixTable(ipv4: v4Entries) : CompiledPrefixTable(allEntries)
let buildCPU = cpuSeconds() - buildCPUStart, buildWall = wallSeconds() - buildWallStart
let rssAfter = residentBytes()
let entryBytes = table.count * (MemoryLayout<IPv4Prefix>.stride + MemoryLayout<UInt32>.stride)

// Lookups (timed): best of `repeats` passes over all addresses.
func timeLookups<A>(_ addresses: [A], repeats: Int, _ lookup: (A) -> UInt32?) -> (best: Double, checksum: UInt64, hits: Int) {
    var best = Double.infinity
    var checksum: UInt64 = 0
    var hits = 0
    for _ in 0..<repeats {
        var sum: UInt64 = 0
        var h = 0
        let start = cpuSeconds()
        addresses.withUnsafeBufferPointer { buffer in
            for a in buffer {
                if let v = lookup(a) { sum &+= UInt64(v); h += 1 }
            }
        }
        best = min(best, cpuSeconds() - start)
        checksum = sum
        hits = h
    }
    return (best, checksum, hits)
}
let v4Result = timeLookups(v4Addresses, repeats: repeats) { table.value($0) }
let v6Result = timeLookups(v6Addresses, repeats: repeats) { table.longestMatch($0)?.value }

if let dumpPath {
    var out = ""
    for a in v4Addresses.prefix(dumpCount) { out += (table.longestMatch(a).map { "\($0.prefix)" } ?? "-") + "\n" }
    for a in v6Addresses.prefix(dumpCount) { out += (table.longestMatch(a).map { "\($0.prefix)" } ?? "-") + "\n" }
    do { try out.write(toFile: dumpPath, atomically: true, encoding: .utf8) } catch { fail("cannot write \(dumpPath)") }
}

func rate(_ count: Int, _ seconds: Double) -> Double { count == 0 || seconds <= 0 ? 0 : Double(count) / seconds }
let report: [String: Any] = [
    "prefixes": table.count,
    "ranges": table.rangeCount,
    "build_cpu_s": buildCPU,
    "build_wall_s": buildWall,
    "index_bytes": table.indexByteCount,
    "entry_bytes": entryBytes,
    "rss_delta_bytes": rssAfter.current - rssBefore,
    "peak_rss_bytes": rssAfter.peak,
    "v4_lookups": v4Addresses.count,
    "v4_lookups_per_s": rate(v4Addresses.count, v4Result.best),
    "v4_hits": v4Result.hits,
    "v6_lookups": v6Addresses.count,
    "v6_lookups_per_s": rate(v6Addresses.count, v6Result.best),
    "v6_hits": v6Result.hits,
    "checksum": v4Result.checksum &+ v6Result.checksum,
]
let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
print(String(decoding: json, as: UTF8.self))
