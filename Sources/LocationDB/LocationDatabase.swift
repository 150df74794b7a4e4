import IPAddress

/// A read-only IPFire libloc (format v1) database.
///
/// Opening maps the file, checks the header, every section's bounds, every string reference of
/// the AS and country tables, and walks the whole network tree once (each node reached exactly
/// once, child and network indexes in range, depth ≤ 128). That walk also builds the lookup
/// indexes. After a successful open no read can leave the file, so lookups and enumerations
/// do not throw. Instances are immutable and can be shared between threads and tasks.
public final class LocationDatabase: Sendable {
    let storage: DatabaseStorage

    /// Creation time, UNIX seconds.
    public let createdAt: UInt64
    public let vendor: String
    public let description: String
    public let license: String

    let asOffset: Int
    public let autonomousSystemCount: Int
    let nodeOffset: Int
    /// Number of nodes of the network tree.
    public let treeNodeCount: Int
    let networkOffset: Int
    /// Number of network records.
    public let networkCount: Int
    let countryOffset: Int
    public let countryCount: Int
    let poolOffset: Int
    let poolLength: Int
    let signature1Length: Int
    let signature2Length: Int

    let index: LookupIndex

    /// Opens and validates the database at `path`.
    public convenience init(path: String) throws(LocationDatabaseError) {
        try self.init(storage: DatabaseStorage(mapping: path))
    }

    /// Opens a database held in memory (the bytes are copied).
    public convenience init(bytes: some Collection<UInt8>) throws(LocationDatabaseError) {
        try self.init(storage: DatabaseStorage(copying: bytes))
    }

    init(storage: DatabaseStorage) throws(LocationDatabaseError) {
        self.storage = storage
        let size = storage.count
        guard size >= Format.magicSize else { throw .truncated("\(size) bytes, shorter than the magic") }
        let magicMatches = (0..<7).allSatisfy { storage.base.load(fromByteOffset: $0, as: UInt8.self) == Format.magic[$0] }
        guard magicMatches else { throw .badMagic }
        let version = storage.base.load(fromByteOffset: 7, as: UInt8.self)
        guard version == Format.version1 else { throw .unsupportedVersion(version) }
        guard size >= Format.headerEnd else { throw .truncated("\(size) bytes, shorter than the header (\(Format.headerEnd))") }

        createdAt = storage.u64(Format.createdAtOffset)

        func section(_ field: Int, _ name: String, recordSize: Int) throws(LocationDatabaseError) -> (Int, Int) {
            let offset = Int(storage.u32(field)), length = Int(storage.u32(field + 4))
            guard offset + length <= size else {
                throw .truncated("\(name) section \(offset)+\(length) ends past the end of the file (\(size))")
            }
            guard length == 0 || offset >= Format.headerEnd else {
                throw .corrupt("\(name) section at \(offset) overlaps the header")
            }
            return (offset, length / recordSize)
        }
        (asOffset, autonomousSystemCount) = try section(Format.asOffsetField, "AS", recordSize: Format.asRecordSize)
        (networkOffset, networkCount) = try section(Format.networkDataOffsetField, "network data", recordSize: Format.networkRecordSize)
        (nodeOffset, treeNodeCount) = try section(Format.networkTreeOffsetField, "network tree", recordSize: Format.nodeRecordSize)
        (countryOffset, countryCount) = try section(Format.countriesOffsetField, "country", recordSize: Format.countryRecordSize)
        (poolOffset, poolLength) = try section(Format.poolOffsetField, "string pool", recordSize: 1)

        signature1Length = Int(storage.u16(Format.signature1LengthOffset))
        signature2Length = Int(storage.u16(Format.signature2LengthOffset))
        guard signature1Length <= Format.maxSignatureLength, signature2Length <= Format.maxSignatureLength else {
            throw .corrupt("signature length \(Swift.max(signature1Length, signature2Length)) exceeds \(Format.maxSignatureLength)")
        }

        // Strings: header, then every AS and country name must point into the pool.
        let pool = StringPoolView(storage: storage, offset: poolOffset, length: poolLength)
        vendor = try pool.string(at: storage.u32(Format.vendorOffset), what: "vendor")
        description = try pool.string(at: storage.u32(Format.descriptionOffset), what: "description")
        license = try pool.string(at: storage.u32(Format.licenseOffset), what: "license")
        for i in 0..<autonomousSystemCount {
            try pool.check(storage.u32(asOffset + i * Format.asRecordSize + 4), what: "name of AS record \(i)")
        }
        for i in 0..<countryCount {
            try pool.check(storage.u32(countryOffset + i * Format.countryRecordSize + 4), what: "name of country record \(i)")
        }

        index = try LookupIndex(storage: storage, nodeOffset: nodeOffset, nodeCount: treeNodeCount,
                                networkOffset: networkOffset, networkCount: networkCount)
    }

    var pool: StringPoolView { StringPoolView(storage: storage, offset: poolOffset, length: poolLength) }

    /// The version of the format (always 1 here).
    public var formatVersion: Int { 1 }

    /// The raw signatures present in the file, by slot (1 and 2).
    public var signatures: (first: [UInt8]?, second: [UInt8]?) {
        func read(_ offset: Int, _ length: Int) -> [UInt8]? {
            length == 0 ? nil : Array(UnsafeRawBufferPointer(start: storage.base + offset, count: length))
        }
        return (read(Format.signature1Offset, signature1Length), read(Format.signature2Offset, signature2Length))
    }

    // MARK: Lookups

    /// Longest-prefix match: the deepest network on the address's path in the tree.
    /// IPv4 is looked up as `::ffff:a.b.c.d`, so both spellings give the same answer.
    @inline(__always)
    public func lookup(_ address: IPv4Address) -> LocationNetwork? {
        let (packed, depth) = index.lookupIPv4(address.value)
        if depth >= LookupIndex.noMatch { return nil }
        return LocationNetwork(prefix: Address128(address).prefix(depth: Int(depth)), properties: NetworkProperties(packed: packed))
    }

    public func lookup(_ address: IPv6Address) -> LocationNetwork? {
        if let v4 = address.ipv4Mapped { return lookup(v4) }
        let key = Address128(address)
        var (packed, depth) = index.lookupIPv6(high: address.high)
        if depth == LookupIndex.fallback || address.high == 0 {
            guard let (record, walkedDepth) = index.walk(key) else { return nil }
            packed = index.recordProperties(record)
            depth = UInt8(walkedDepth)
        } else if depth == LookupIndex.noMatch {
            return nil
        }
        return LocationNetwork(prefix: key.prefix(depth: Int(depth)), properties: NetworkProperties(packed: packed))
    }

    public func lookup(_ address: IPAddress) -> LocationNetwork? {
        switch address {
        case .v4(let a): return lookup(a)
        case .v6(let a): return lookup(a)
        }
    }

    /// Parses and looks up; nil when nothing matches. Throws for text that is not an address.
    public func lookup(_ text: String) throws(LocationDatabaseError) -> LocationNetwork? {
        guard let address = IPAddress(text) else { throw .invalidInput("Invalid IP address: \(text)") }
        return lookup(address)
    }

    /// The same lookup done by walking the tree only (no index); used to cross-check the index.
    public func lookupByTreeWalk(_ address: IPAddress) -> LocationNetwork? {
        let key: Address128
        switch address {
        case .v4(let a): key = Address128(a)
        case .v6(let a): key = Address128(a)
        }
        guard let (record, depth) = index.walk(key) else { return nil }
        return LocationNetwork(prefix: key.prefix(depth: depth), properties: NetworkProperties(packed: index.recordProperties(record)))
    }

    // MARK: Autonomous systems

    @inline(__always)
    func asNumber(at i: Int) -> UInt32 { storage.u32(asOffset + i * Format.asRecordSize) }

    func autonomousSystem(at i: Int) -> AutonomousSystem {
        AutonomousSystem(number: asNumber(at: i), name: pool.uncheckedString(at: storage.u32(asOffset + i * Format.asRecordSize + 4)))
    }

    /// Binary search by number (the section is sorted by number).
    public func autonomousSystem(number: UInt32) -> AutonomousSystem? {
        var low = 0, high = autonomousSystemCount
        while low < high {
            let mid = (low + high) / 2
            let n = asNumber(at: mid)
            if n == number { return autonomousSystem(at: mid) }
            if n < number { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// All autonomous systems in file order (ascending number).
    public var autonomousSystems: [AutonomousSystem] {
        (0..<autonomousSystemCount).map(autonomousSystem(at:))
    }

    /// Autonomous systems whose name contains `text`, ignoring ASCII case (libloc uses `strcasestr`).
    public func searchAutonomousSystems(_ text: String) -> [AutonomousSystem] {
        let needle = Array(text.utf8).map(asciiLower)
        var result: [AutonomousSystem] = []
        let pool = self.pool
        for i in 0..<autonomousSystemCount {
            let nameOffset = storage.u32(asOffset + i * Format.asRecordSize + 4)
            if pool.containsIgnoringASCIICase(at: nameOffset, needle) { result.append(autonomousSystem(at: i)) }
        }
        return result
    }

    // MARK: Countries

    func country(at i: Int) -> Country {
        let base = countryOffset + i * Format.countryRecordSize
        return Country(code: CountryCode(rawValue: storage.u16(base)), continentCode: CountryCode(rawValue: storage.u16(base + 2)),
                       name: pool.uncheckedString(at: storage.u32(base + 4)))
    }

    /// Binary search by code (the reference requires the section sorted by code).
    public func country(code: CountryCode) -> Country? {
        var low = 0, high = countryCount
        while low < high {
            let mid = (low + high) / 2
            let c = storage.u16(countryOffset + mid * Format.countryRecordSize)
            if c == code.rawValue { return country(at: mid) }
            if c < code.rawValue { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// All countries in file order.
    public var countries: [Country] { (0..<countryCount).map(country(at:)) }
}

@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 { b >= 65 && b <= 90 ? b + 32 : b }

/// A view of the string pool: NUL-terminated strings addressed by offset.
struct StringPoolView {
    let storage: DatabaseStorage
    let offset: Int
    let length: Int

    func check(_ reference: UInt32, what: @autoclosure () -> String) throws(LocationDatabaseError) {
        // An empty pool is tolerated for offset 0 (nothing was ever added); it reads as "".
        if length == 0, reference == 0 { return }
        guard Int(reference) < length else {
            throw .corrupt("\(what()): string offset \(reference) is outside the string pool (\(length) bytes)")
        }
    }

    func string(at reference: UInt32, what: @autoclosure () -> String) throws(LocationDatabaseError) -> String {
        try check(reference, what: what())
        return uncheckedString(at: reference)
    }

    /// The string at an offset already checked to be inside the pool; it ends at the first NUL or
    /// at the end of the pool.
    func uncheckedString(at reference: UInt32) -> String {
        let bytes = self.bytes(at: reference)
        return String(decoding: bytes, as: UTF8.self)
    }

    func bytes(at reference: UInt32) -> UnsafeRawBufferPointer {
        let start = Int(reference)
        guard start < length else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let base = storage.base + offset + start
        let limit = length - start
        var n = 0
        while n < limit, base.load(fromByteOffset: n, as: UInt8.self) != 0 { n += 1 }
        return UnsafeRawBufferPointer(start: base, count: n)
    }

    func containsIgnoringASCIICase(at reference: UInt32, _ needle: [UInt8]) -> Bool {
        let haystack = bytes(at: reference)
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) {
            var matched = true
            for j in 0..<needle.count where asciiLower(haystack[start + j]) != needle[j] {
                matched = false
                break
            }
            if matched { return true }
        }
        return false
    }
}
