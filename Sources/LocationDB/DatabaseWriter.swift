#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import IPAddress

/// Builds a libloc v1 database that the reference library reads back identically.
///
/// Differences from the reference writer, on purpose: countries are written sorted by code (the
/// readers binary-search them), each record is built from its own fields only, strings are
/// de-duplicated through a hash table, and by default networks are made canonical: a network
/// whose nearest enclosing network has the same properties is dropped, and two halves with the
/// same properties become their parent (repeatedly). Lookups give the same answers either way.
public struct DatabaseWriter: Sendable {
    public var vendor = ""
    public var description = ""
    public var license = ""
    /// UNIX seconds; nil means "now" at write time.
    public var createdAt: UInt64?
    /// Merge and de-duplicate networks (default); false writes them exactly as added.
    public var mergesNetworks = true

    private var autonomousSystems: [UInt32: String] = [:]
    private var countryTable: [CountryCode: Country] = [:]
    private var trie = NetworkTrie()

    public init() {}

    public var networkCount: Int { trie.networkCount }

    /// Adds an AS; adding the same number again replaces the name.
    public mutating func addAutonomousSystem(number: UInt32, name: String) {
        autonomousSystems[number] = name
    }

    /// Adds a country; adding the same code again replaces it.
    public mutating func addCountry(_ country: Country) {
        countryTable[country.code] = country
    }

    /// Adds a network; host bits are cleared. Adding the same network twice is an error.
    public mutating func addNetwork(_ prefix: IPPrefix, properties: NetworkProperties) throws(LocationDatabaseError) {
        let address: Address128, depth: Int
        switch prefix {
        case .v4(let p):
            address = Address128(p.network)
            depth = 96 + Int(p.length)
        case .v6(let p):
            address = Address128(p.network)
            depth = Int(p.length)
        }
        guard trie.insert(address, depth: depth, properties: properties.packed) else {
            throw .invalidInput("network \(LocationFormatting.text(of: prefix)) was added twice")
        }
    }

    /// The database bytes, signed with up to two keys (slot 1 and slot 2).
    public func makeBytes(signingKeys: [DatabaseSigningKey] = []) throws(LocationDatabaseError) -> [UInt8] {
        guard signingKeys.count <= 2 else { throw .invalidInput("at most two signing keys") }
        var trie = self.trie
        if mergesNetworks { trie.canonicalize() }

        var pool = StringPoolBuilder()
        let vendorRef = pool.add(vendor), descriptionRef = pool.add(description), licenseRef = pool.add(license)

        var out = ByteWriter()
        out.zeros(Format.headerEnd)
        out.alignToPage()

        // AS section, sorted by number.
        let asOffset = out.count
        for number in autonomousSystems.keys.sorted() {
            out.u32(number)
            out.u32(pool.add(autonomousSystems[number]!))
        }
        let asLength = out.count - asOffset
        out.alignToPage()

        // Tree nodes and network records in breadth-first order.
        let (nodes, records) = trie.serialize()
        let treeOffset = out.count
        for node in nodes {
            out.u32(node.zero)
            out.u32(node.one)
            out.u32(node.network)
        }
        let treeLength = out.count - treeOffset
        out.alignToPage()

        let networkOffset = out.count
        for packed in records {
            let p = NetworkProperties(packed: packed)
            out.u16(p.countryCode.rawValue)
            out.u16(0)
            out.u32(p.asn)
            out.u16(p.flags.rawValue)
            out.u16(0)
        }
        let networkLength = out.count - networkOffset
        out.alignToPage()

        // Countries, sorted by code.
        let countryOffset = out.count
        for code in countryTable.keys.sorted() {
            let country = countryTable[code]!
            out.u16(country.code.rawValue)
            out.u16(country.continentCode.rawValue)
            out.u32(country.name.isEmpty ? 0 : pool.add(country.name))
        }
        let countryLength = out.count - countryOffset
        out.alignToPage()

        let poolOffset = out.count
        out.append(pool.bytes)
        let poolLength = pool.bytes.count

        func checkFits(_ value: Int, _ what: String) throws(LocationDatabaseError) -> UInt32 {
            guard value <= Int(UInt32.max) else { throw .invalidInput("\(what) does not fit the format (\(value) bytes)") }
            return UInt32(value)
        }
        // Header.
        out.bytes.replaceSubrange(0..<7, with: Format.magic)
        out.bytes[7] = Format.version1
        let created = createdAt ?? UInt64(time(nil))
        out.put64(created, at: Format.createdAtOffset)
        out.put32(vendorRef, at: Format.vendorOffset)
        out.put32(descriptionRef, at: Format.descriptionOffset)
        out.put32(licenseRef, at: Format.licenseOffset)
        let sections = [(asOffset, asLength, Format.asOffsetField), (networkOffset, networkLength, Format.networkDataOffsetField),
                        (treeOffset, treeLength, Format.networkTreeOffsetField), (countryOffset, countryLength, Format.countriesOffsetField),
                        (poolOffset, poolLength, Format.poolOffsetField)]
        for (offset, length, field) in sections {
            out.put32(try checkFits(offset, "section offset"), at: field)
            out.put32(try checkFits(offset + length, "file") &- UInt32(offset), at: field + 4)
        }

        if !signingKeys.isEmpty {
            let digest = out.bytes.withUnsafeBytes { signedDigest(of: $0) }
            for (slot, key) in signingKeys.enumerated() {
                let signature = try key.sign(digest)
                guard signature.count <= Format.maxSignatureLength else { throw .signature("signature longer than 2048 bytes") }
                let lengthField = slot == 0 ? Format.signature1LengthOffset : Format.signature2LengthOffset
                let area = slot == 0 ? Format.signature1Offset : Format.signature2Offset
                out.bytes[lengthField] = UInt8(signature.count >> 8)
                out.bytes[lengthField + 1] = UInt8(truncatingIfNeeded: signature.count)
                out.bytes.replaceSubrange(area..<(area + signature.count), with: signature)
            }
        }
        return out.bytes
    }

    /// Writes atomically: to a temporary file next to `path`, then renamed over it.
    public func write(to path: String, signingKeys: [DatabaseSigningKey] = []) throws(LocationDatabaseError) {
        let bytes = try makeBytes(signingKeys: signingKeys)
        try writeFileAtomically(bytes, to: path)
    }
}

func writeFileAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws(LocationDatabaseError) {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw .ioError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
    var written = 0
    let failure: String? = bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            written += n
        }
        return fsync(fd) == 0 ? nil : String(cString: strerror(errno))
    }
    close(fd)
    if let failure {
        unlink(temporary)
        throw .ioError("cannot write \(temporary): \(failure)")
    }
    guard rename(temporary, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw .ioError("cannot rename \(temporary) to \(path): \(reason)")
    }
}

/// Big-endian byte output.
struct ByteWriter {
    var bytes: [UInt8] = []
    var count: Int { bytes.count }

    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) {
        bytes.append(UInt8(v >> 24)); bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v))
    }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }
    mutating func alignToPage() {
        let remainder = bytes.count % Format.pageSize
        if remainder != 0 { zeros(Format.pageSize - remainder) }
    }
    mutating func put32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * i)) }
    }
    mutating func put64(_ v: UInt64, at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> UInt64(56 - 8 * i)) }
    }
}

/// NUL-terminated strings, each stored once; offset 0 is the empty string.
struct StringPoolBuilder {
    private(set) var bytes: [UInt8] = [0]
    private var offsets: [String: UInt32] = ["": 0]

    mutating func add(_ string: String) -> UInt32 {
        if let offset = offsets[string] { return offset }
        let offset = UInt32(bytes.count)
        // A NUL inside the string would cut it short on reading; store up to it.
        bytes.append(contentsOf: string.utf8.prefix { $0 != 0 })
        bytes.append(0)
        offsets[string] = offset
        return offset
    }
}

/// The binary tree the writer builds: node 0 is the root.
struct NetworkTrie: Sendable {
    private var zero: [UInt32] = [0]
    private var one: [UInt32] = [0]
    private var properties: [UInt64] = [0]
    private var hasNetwork: [Bool] = [false]
    private(set) var networkCount = 0

    /// False if the node already has a network.
    mutating func insert(_ address: Address128, depth: Int, properties value: UInt64) -> Bool {
        var node = 0
        for level in 0..<depth {
            let next = address.bit(level) == 1 ? one[node] : zero[node]
            if next != 0 {
                node = Int(next)
                continue
            }
            let created = UInt32(zero.count)
            zero.append(0); one.append(0); properties.append(0); hasNetwork.append(false)
            if address.bit(level) == 1 { one[node] = created } else { zero[node] = created }
            node = Int(created)
        }
        if hasNetwork[node] { return false }
        hasNetwork[node] = true
        properties[node] = value
        networkCount += 1
        return true
    }

    /// Nodes in pre-order (parents before children).
    private func preorder() -> [Int] {
        var order: [Int] = []
        order.reserveCapacity(zero.count)
        var stack = [0]
        while let n = stack.popLast() {
            order.append(n)
            if one[n] != 0 { stack.append(Int(one[n])) }
            if zero[n] != 0 { stack.append(Int(zero[n])) }
        }
        return order
    }

    /// Merges equal halves into their parent (bottom-up), then drops networks equal to their
    /// nearest enclosing network (top-down).
    mutating func canonicalize() {
        let order = preorder()
        for n in order.reversed() {
            let a = Int(zero[n]), b = Int(one[n])
            if a != 0, b != 0, hasNetwork[a], hasNetwork[b], properties[a] == properties[b] {
                // Both halves say the same: the parent says it (its own network, if any, was
                // entirely hidden by the halves).
                if !hasNetwork[n] { networkCount += 1 }
                hasNetwork[n] = true
                properties[n] = properties[a]
                hasNetwork[a] = false
                hasNetwork[b] = false
                networkCount -= 2
            }
        }
        // Top-down: inherited properties of the nearest enclosing network.
        var inherited = [UInt64?](repeating: nil, count: zero.count)
        for n in order {
            let parentValue = inherited[n]
            var mine = parentValue
            if hasNetwork[n] {
                if let parentValue, parentValue == properties[n] {
                    hasNetwork[n] = false
                    networkCount -= 1
                } else {
                    mine = properties[n]
                }
            }
            if zero[n] != 0 { inherited[Int(zero[n])] = mine }
            if one[n] != 0 { inherited[Int(one[n])] = mine }
        }
    }

    struct SerializedNode {
        var zero: UInt32
        var one: UInt32
        var network: UInt32
    }

    /// Breadth-first numbering of the nodes that lead to a network (children: zero first),
    /// and the network records in the same order.
    func serialize() -> ([SerializedNode], [UInt64]) {
        // Which nodes have a network in their subtree.
        let order = preorder()
        var alive = hasNetwork
        for n in order.reversed() {
            if zero[n] != 0, alive[Int(zero[n])] { alive[n] = true }
            if one[n] != 0, alive[Int(one[n])] { alive[n] = true }
        }
        var nodes: [SerializedNode] = []
        var records: [UInt64] = []
        var queue: [Int] = [0]
        var head = 0
        var nextIndex: UInt32 = 1
        while head < queue.count {
            let n = queue[head]
            head += 1
            var record = SerializedNode(zero: 0, one: 0, network: Format.noNetwork)
            if zero[n] != 0, alive[Int(zero[n])] {
                record.zero = nextIndex
                nextIndex += 1
                queue.append(Int(zero[n]))
            }
            if one[n] != 0, alive[Int(one[n])] {
                record.one = nextIndex
                nextIndex += 1
                queue.append(Int(one[n]))
            }
            if hasNetwork[n] {
                record.network = UInt32(records.count)
                records.append(properties[n])
            }
            nodes.append(record)
        }
        return (nodes, records)
    }
}
