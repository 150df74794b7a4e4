// Lookup benchmark: LocationDB vs the reference C library (libloc), same addresses, same process.
//
// Addresses are generated before timing with splitmix64 (seed 0x10CDB5EED, as in the research
// notes' anchor benchmark): uniform IPv4, uniform IPv6 in 2000::/3, and IPv6 addresses drawn
// inside random IPv6 networks of the database ("in-network"). Each set is looked up twice by
// each implementation (pass 1, pass 2). Reported per lookup: wall time (CLOCK_MONOTONIC) and
// on-CPU time (CLOCK_THREAD_CPUTIME_ID, steadier on a shared machine). The reference does
// loc_database_lookup + loc_network_get_asn + loc_network_unref per hit; ours does lookup and
// reads the ASN. Both sum the ASNs, and the sums and hit counts must agree.
#if canImport(Glibc)
import Glibc
#endif
import IPAddress
import LocationDB

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func now(_ clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct Timing {
    var wallNanoseconds: UInt64
    var cpuNanoseconds: UInt64
    var hits: Int
    var asnSum: UInt64
}

@inline(never)
func measure(_ count: Int, _ body: () -> (Int, UInt64)) -> Timing {
    let wall0 = now(CLOCK_MONOTONIC), cpu0 = now(CLOCK_THREAD_CPUTIME_ID)
    let (hits, sum) = body()
    let cpu1 = now(CLOCK_THREAD_CPUTIME_ID), wall1 = now(CLOCK_MONOTONIC)
    return Timing(wallNanoseconds: wall1 - wall0, cpuNanoseconds: cpu1 - cpu0, hits: hits, asnSum: sum)
}

func fmt(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return String(r)
}

// MARK: The reference library, through dlopen (no headers needed; Debian package libloc1).

typealias LocNew = @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Int32
typealias LocSetLogPriority = @convention(c) (OpaquePointer?, Int32) -> Void
typealias LocDatabaseNew = @convention(c) (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>, UnsafeMutablePointer<FILE>?) -> Int32
typealias LocDatabaseLookup = @convention(c) (OpaquePointer?, UnsafeRawPointer, UnsafeMutablePointer<OpaquePointer?>) -> Int32
typealias LocNetworkGetASN = @convention(c) (OpaquePointer?) -> UInt32
typealias LocNetworkUnref = @convention(c) (OpaquePointer?) -> OpaquePointer?

struct ReferenceLibrary {
    let database: OpaquePointer?
    let lookup: LocDatabaseLookup
    let getASN: LocNetworkGetASN
    let unref: LocNetworkUnref
    let openNanoseconds: UInt64

    init(path: String) {
        guard let handle = dlopen("libloc.so.1", RTLD_NOW) else {
            fatalError("cannot load libloc.so.1 (install the Debian package libloc1): \(String(cString: dlerror()))")
        }
        func symbol<T>(_ name: String, _: T.Type) -> T {
            guard let pointer = dlsym(handle, name) else { fatalError("libloc.so.1 has no \(name)") }
            return unsafeBitCast(pointer, to: T.self)
        }
        var context: OpaquePointer?
        precondition(symbol("loc_new", LocNew.self)(&context) == 0, "loc_new failed")
        symbol("loc_set_log_priority", LocSetLogPriority.self)(context, 0)
        let start = now(CLOCK_MONOTONIC)
        guard let file = fopen(path, "r") else { fatalError("cannot open \(path)") }
        var db: OpaquePointer?
        precondition(symbol("loc_database_new", LocDatabaseNew.self)(context, &db, file) == 0, "loc_database_new failed")
        openNanoseconds = now(CLOCK_MONOTONIC) - start
        database = db
        lookup = symbol("loc_database_lookup", LocDatabaseLookup.self)
        getASN = symbol("loc_network_get_asn", LocNetworkGetASN.self)
        unref = symbol("loc_network_unref", LocNetworkUnref.self)
    }
}

// MARK: Inputs

let arguments = CommandLine.arguments
let mode = arguments.count > 1 && ["fuzz", "lookups-only"].contains(arguments[1]) ? arguments[1] : "compare"
let positional = mode == "compare" ? Array(arguments.dropFirst()) : Array(arguments.dropFirst(2))
let path = positional.count > 0 ? positional[0] : "/var/lib/location/database.db"
let count = positional.count > 1 ? Int(positional[1])! : 1_000_000

// `LocationBench fuzz DB ROUNDS`: mutation fuzzing of the reader in release mode. A small
// database is written from the first networks of DB, then bytes are changed at random (header,
// tree, anywhere) or the file is cut; every mutant must be rejected or fully usable.
if mode == "fuzz" {
    let source: LocationDatabase
    do { source = try LocationDatabase(path: path) } catch { fatalError("\(error)") }
    var writer = DatabaseWriter()
    writer.vendor = "fuzz"
    writer.mergesNetworks = false
    for country in source.countries.prefix(20) { writer.addCountry(country) }
    for system in source.autonomousSystems.prefix(50) { writer.addAutonomousSystem(number: system.number, name: system.name) }
    var added = 0
    for network in source.networks() where added < 150 {
        if (try? writer.addNetwork(network.prefix, properties: network.properties)) != nil { added += 1 }
    }
    for network in source.networks(matching: NetworkFilter(family: .ipv6)) where added < 300 {
        if (try? writer.addNetwork(network.prefix, properties: network.properties)) != nil { added += 1 }
    }
    let base: [UInt8]
    do { base = try writer.makeBytes() } catch { fatalError("\(error)") }
    func field(_ offset: Int) -> Int { (offset..<(offset + 4)).reduce(0) { $0 << 8 | Int(base[$1]) } }
    let tree = field(44), treeLength = field(48)
    var random = SplitMix64(state: 0xF0CC)
    var opened = 0, rejected = 0
    let start = now(CLOCK_MONOTONIC)
    for round in 0..<count {
        var b = base
        for _ in 0..<(1 + Int(random.next() % 8)) {
            let offset: Int
            switch random.next() % 4 {
            case 0: offset = Int(random.next() % 80)
            case 1: offset = Int(random.next() % UInt64(b.count))
            default: offset = tree + Int(random.next() % UInt64(max(treeLength, 1)))
            }
            b[offset] = random.next() % 2 == 0 ? UInt8(truncatingIfNeeded: random.next()) : b[offset] ^ (1 << UInt8(random.next() % 8))
        }
        if round % 10 == 0 { b = Array(b.prefix(Int(random.next() % UInt64(b.count)))) }
        guard let db = try? LocationDatabase(bytes: b) else { rejected += 1; continue }
        opened += 1
        for _ in 0..<20 {
            _ = db.lookup(IPv4Address(UInt32(truncatingIfNeeded: random.next())))
            _ = db.lookup(IPv6Address(high: random.next(), low: random.next()))
        }
        var n = 0
        for _ in db.networks() { n += 1 }
        _ = db.flattenedNetworks()
        _ = db.bogons()
        _ = db.countries
        _ = db.searchAutonomousSystems("net")
        _ = db.autonomousSystem(number: UInt32(truncatingIfNeeded: random.next() % 100))
        var dumped = 0
        DumpFormat.write(db) { dumped += $0.utf8.count }
    }
    let seconds = Double(now(CLOCK_MONOTONIC) - start) / 1e9
    print("fuzz: \(count) mutants of a \(base.count)-byte database in \(fmt(seconds)) s: \(rejected) rejected, \(opened) opened and fully exercised, no crash")
    exit(0)
}

// `LocationBench lookups-only DB N`: only LocationDB lookups (for allocation counting, e.g.
// `valgrind --tool=memcheck`: the number of heap allocations must not grow with N).
if mode == "lookups-only" {
    let db: LocationDatabase
    do { db = try LocationDatabase(path: path) } catch { fatalError("\(error)") }
    var random = SplitMix64(state: 7)
    var hits = 0, sum: UInt64 = 0
    for i in 0..<count {
        let n = i % 2 == 0 ? db.lookup(IPv4Address(UInt32(truncatingIfNeeded: random.next())))
                           : db.lookup(IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3), low: random.next()))
        if let n { hits += 1; sum &+= UInt64(n.asn) }
    }
    print("lookups-only: \(count) lookups, \(hits) hits, ASN sum \(sum)")
    exit(0)
}

/// Resident set size from /proc/self/statm, in MiB.
func residentMegabytes() -> Double {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, 256, f) != nil else { return 0 }
    let fields = String(cString: line).split(separator: " ")
    guard fields.count >= 2, let pages = Double(fields[1]) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

let rssBefore = residentMegabytes()
let openStart = now(CLOCK_MONOTONIC)
let database: LocationDatabase
do { database = try LocationDatabase(path: path) } catch { fatalError("\(error)") }
let openNanoseconds = now(CLOCK_MONOTONIC) - openStart
let rssAfterOpen = residentMegabytes()
let reference = ReferenceLibrary(path: path)

var random = SplitMix64(state: 0x10CD_B5EE_D)
let ipv4 = (0..<count).map { _ in IPv4Address(UInt32(truncatingIfNeeded: random.next())) }
let ipv6Uniform = (0..<count).map { _ in IPv6Address(high: 0x2000_0000_0000_0000 | (random.next() >> 3), low: random.next()) }
let ipv6Networks: [IPv6Prefix] = database.networks(matching: NetworkFilter(family: .ipv6)).compactMap {
    if case .v6(let p) = $0.prefix { return p } else { return nil }
}
let ipv6InNetwork = (0..<count).map { _ -> IPv6Address in
    let p = ipv6Networks[Int(random.next() % UInt64(ipv6Networks.count))]
    let (mh, ml) = IPv6Prefix.mask(p.length)
    return IPv6Address(high: p.network.high | (random.next() & ~mh), low: p.network.low | (random.next() & ~ml))
}

func in6Bytes(_ addresses: [IPv6Address]) -> [UInt8] {
    var out = [UInt8](); out.reserveCapacity(addresses.count * 16)
    for a in addresses {
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: a.high >> UInt64(s))) }
        for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: a.low >> UInt64(s))) }
    }
    return out
}

// MARK: Runs

@inline(never)
func oursIPv4(_ addresses: [IPv4Address]) -> (Int, UInt64) {
    var hits = 0, sum: UInt64 = 0
    for a in addresses {
        if let n = database.lookup(a) { hits += 1; sum &+= UInt64(n.asn) }
    }
    return (hits, sum)
}

@inline(never)
func oursIPv6(_ addresses: [IPv6Address]) -> (Int, UInt64) {
    var hits = 0, sum: UInt64 = 0
    for a in addresses {
        if let n = database.lookup(a) { hits += 1; sum &+= UInt64(n.asn) }
    }
    return (hits, sum)
}

@inline(never)
func referenceLookups(_ bytes: [UInt8]) -> (Int, UInt64) {
    var hits = 0, sum: UInt64 = 0
    bytes.withUnsafeBytes { raw in
        var network: OpaquePointer?
        for i in 0..<(raw.count / 16) {
            network = nil
            let r = reference.lookup(reference.database, raw.baseAddress! + i * 16, &network)
            if r == 0, let network {
                hits += 1
                sum &+= UInt64(reference.getASN(network))
                _ = reference.unref(network)
            }
        }
    }
    return (hits, sum)
}

func perLookup(_ t: Timing, _ n: Int) -> (Double, Double) {
    (Double(t.wallNanoseconds) / Double(n), Double(t.cpuNanoseconds) / Double(n))
}

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s : s + String(repeating: " ", count: width - s.count) }

print("database: \(path) (\(database.networkCount) networks, \(database.treeNodeCount) nodes)")
print("open: LocationDB \(fmt(Double(openNanoseconds) / 1e6)) ms (validates the whole tree, builds the indexes; RSS \(fmt(rssBefore)) -> \(fmt(rssAfterOpen)) MB), libloc \(fmt(Double(reference.openNanoseconds) / 1e6)) ms")
print("lookups per set: \(count); ns/lookup as wall / on-CPU; ratio = libloc on-CPU / LocationDB on-CPU (pass 2)")
print(pad("set", 26) + pad("LocationDB p1", 18) + pad("LocationDB p2", 18) + pad("libloc p1", 18) + pad("libloc p2", 18) + pad("ratio", 8) + "hits")

var failed = false
func report(_ name: String, ours: () -> (Int, UInt64), theirs: () -> (Int, UInt64)) {
    let o1 = measure(count, ours), o2 = measure(count, ours)
    let r1 = measure(count, theirs), r2 = measure(count, theirs)
    let cells = [o1, o2, r1, r2].map { t -> String in
        let (w, c) = perLookup(t, count)
        return pad("\(fmt(w)) / \(fmt(c))", 18)
    }
    let ratio = Double(r2.cpuNanoseconds) / Double(max(o2.cpuNanoseconds, 1))
    print(pad(name, 26) + cells.joined() + pad(fmt(ratio) + "x", 8) + "\(o2.hits)")
    if o2.hits != r2.hits || o2.asnSum != r2.asnSum {
        print("  MISMATCH: LocationDB hits \(o2.hits) ASN sum \(o2.asnSum), libloc hits \(r2.hits) ASN sum \(r2.asnSum)")
        failed = true
    }
}

let ipv4Bytes = in6Bytes(ipv4.map { IPv6Address(ipv4Mapped: $0) })
let ipv6UniformBytes = in6Bytes(ipv6Uniform)
let ipv6InNetworkBytes = in6Bytes(ipv6InNetwork)
report("IPv4 uniform", ours: { oursIPv4(ipv4) }, theirs: { referenceLookups(ipv4Bytes) })
report("IPv6 uniform 2000::/3", ours: { oursIPv6(ipv6Uniform) }, theirs: { referenceLookups(ipv6UniformBytes) })
report("IPv6 in-network", ours: { oursIPv6(ipv6InNetwork) }, theirs: { referenceLookups(ipv6InNetworkBytes) })
print("RSS at end: \(fmt(residentMegabytes())) MB")
if failed { exit(1) }
