#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import IPAddress
import TextFormats

/// Python's `str.splitlines()` for the characters that matter here.
func pythonSplitLines(_ text: String) -> [Substring] {
    var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline })
    if let last = lines.last, last.isEmpty { lines.removeLast() }
    return lines
}

/// The text format of `location dump` (RPSL-like blocks), written and read.
public enum DumpFormat {
    static let flagKeys: [(NetworkFlags, String)] = [
        (.anonymousProxy, "is-anonymous-proxy:"), (.satelliteProvider, "is-satellite-provider:"),
        (.anycast, "is-anycast:"), (.drop, "drop:"),
    ]

    static func field(_ key: String, _ value: String) -> String {
        let padding = key.count < 24 ? String(repeating: " ", count: 24 - key.count) : ""
        return key + padding + " " + value + "\n"
    }

    /// Writes the dump of `database` in chunks to `output` (same text as the reference).
    public static func write(_ database: LocationDatabase, to output: (String) throws -> Void) rethrows {
        var header = "#\n# Location Database Export\n#\n"
        header += "# Generated: \(HTTPDate.format(database.createdAt))\n"
        if !database.vendor.isEmpty { header += "# Vendor:    \(database.vendor)\n" }
        if !database.license.isEmpty { header += "# License:   \(database.license)\n" }
        header += "#\n"
        if !database.description.isEmpty {
            for line in pythonSplitLines(database.description) {
                var trimmed = Substring("# ") + line
                while let last = trimmed.last, last.isWhitespace { trimmed.removeLast() }
                header += trimmed + "\n"
            }
            header += "#\n"
        }
        try output(header)
        var chunk = ""
        chunk.reserveCapacity(1 << 16)
        for system in database.autonomousSystems {
            chunk += "\n" + field("aut-num:", "AS\(system.number)") + field("name:", system.name)
            if chunk.utf8.count > 60_000 { try output(chunk); chunk.removeAll(keepingCapacity: true) }
        }
        for network in database.networks() {
            chunk += "\n" + field("net:", network.description)
            if !network.countryCode.isNone { chunk += field("country:", network.countryCode.description) }
            if network.asn != 0 { chunk += field("aut-num:", String(network.asn)) }
            for (flag, key) in flagKeys where network.flags.contains(flag) { chunk += field(key, "yes") }
            if chunk.utf8.count > 60_000 { try output(chunk); chunk.removeAll(keepingCapacity: true) }
        }
        try output(chunk)
    }

    /// Reads dump text into a writer: metadata from the header comments, ASes and networks from
    /// the blocks. Countries are not part of a dump; add them separately.
    /// `progress` is called with the number of bytes consumed so far, now and then.
    public static func read(_ text: UnsafeRawBufferPointer, into writer: inout DatabaseWriter,
                            progress: ((Int) -> Void)? = nil) throws(LocationDatabaseError) {
        var comments: [String] = []
        var inHeader = true
        var lineNumber = 0

        enum Block {
            case none
            case autonomousSystem(number: UInt32, name: String, line: Int)
            case network(prefix: IPPrefix, properties: NetworkProperties, line: Int)
        }
        var block = Block.none

        func flush(_ block: inout Block, _ writer: inout DatabaseWriter) throws(LocationDatabaseError) {
            switch block {
            case .none: break
            case .autonomousSystem(let number, let name, _): writer.addAutonomousSystem(number: number, name: name)
            case .network(let prefix, let properties, let line):
                do { try writer.addNetwork(prefix, properties: properties) } catch {
                    throw .invalidInput("line \(line): \(error)")
                }
            }
            block = .none
        }
        func matches(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
            guard bytes.count == literal.utf8CodeUnitCount else { return false }
            let l = literal.utf8Start
            for i in 0..<bytes.count where bytes[i] != l[i] { return false }
            return true
        }
        func decimal(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
            guard !bytes.isEmpty, bytes.count <= 10 else { return nil }
            var v: UInt64 = 0
            for b in bytes {
                guard b >= 48, b <= 57 else { return nil }
                v = v * 10 + UInt64(b - 48)
            }
            return v <= UInt64(UInt32.max) ? UInt32(v) : nil
        }
        func string(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

        var start = 0
        let count = text.count
        var nextProgress = 1 << 22
        while start < count {
            var end = start
            while end < count, text[end] != 0x0A { end += 1 }
            lineNumber += 1
            var line = UnsafeRawBufferPointer(rebasing: text[start..<end])
            if let last = line.last, last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
            start = end + 1
            if start >= nextProgress { progress?(start); nextProgress += 1 << 22 }

            if line.first == UInt8(ascii: "#") {
                if inHeader {
                    let skip = line.count > 1 && line[1] == UInt8(ascii: " ") ? 2 : 1
                    comments.append(string(UnsafeRawBufferPointer(rebasing: line[skip...])))
                }
                continue
            }
            inHeader = false
            if line.isEmpty {
                try flush(&block, &writer)
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw .invalidInput("line \(lineNumber): no key in '\(string(line))'")
            }
            let key = UnsafeRawBufferPointer(rebasing: line[...colon])
            // Values start in column 25 ("%-24s %s"); anything after that is kept verbatim.
            var valueStart = colon + 1
            let padded = max(valueStart, 25)
            while valueStart < padded, valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
            if valueStart == colon + 1 { while valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 } }
            let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])

            switch block {
            case .none:
                if matches(key, "aut-num:") {
                    guard value.count > 2, value[0] == UInt8(ascii: "A"), value[1] == UInt8(ascii: "S"),
                          let number = decimal(UnsafeRawBufferPointer(rebasing: value[2...])) else {
                        throw .invalidInput("line \(lineNumber): bad AS number '\(string(value))'")
                    }
                    block = .autonomousSystem(number: number, name: "", line: lineNumber)
                } else if matches(key, "net:") {
                    do {
                        block = .network(prefix: try IPPrefix(parsing: string(value), strict: false), properties: NetworkProperties(), line: lineNumber)
                    } catch {
                        throw .invalidInput("line \(lineNumber): bad network '\(string(value))': \(error)")
                    }
                } else {
                    throw .invalidInput("line \(lineNumber): unknown object '\(string(key))'")
                }
            case .autonomousSystem(let number, _, let line):
                if matches(key, "name:") { block = .autonomousSystem(number: number, name: string(value), line: line) }
            case .network(let prefix, var properties, let line):
                if matches(key, "country:") {
                    guard value.count == 2, value[0] > 0, value[0] < 0x80, value[1] > 0, value[1] < 0x80 else {
                        throw .invalidInput("line \(lineNumber): bad country '\(string(value))'")
                    }
                    properties.countryCode = CountryCode(rawValue: UInt16(value[0]) << 8 | UInt16(value[1]))
                } else if matches(key, "aut-num:") {
                    guard let asn = decimal(value) else { throw .invalidInput("line \(lineNumber): bad ASN '\(string(value))'") }
                    properties.asn = asn
                } else if matches(value, "yes") {
                    if matches(key, "is-anonymous-proxy:") { properties.flags.insert(.anonymousProxy) }
                    if matches(key, "is-satellite-provider:") { properties.flags.insert(.satelliteProvider) }
                    if matches(key, "is-anycast:") { properties.flags.insert(.anycast) }
                    if matches(key, "drop:") { properties.flags.insert(.drop) }
                }
                block = .network(prefix: prefix, properties: properties, line: line)
            }
        }
        try flush(&block, &writer)

        // Header: "Generated:", "Vendor:", "License:", then "" and the description up to the next "".
        var rest: [String] = []
        var sawMetadata = false, inDescription = false
        for comment in comments {
            if inDescription {
                rest.append(comment)
            } else if comment.hasPrefix("Generated: ") {
                writer.createdAt = HTTPDate.parse(String(comment.dropFirst("Generated: ".count)))
                sawMetadata = true
            } else if comment.hasPrefix("Vendor:") {
                writer.vendor = String(comment.dropFirst("Vendor:".count).drop(while: { $0 == " " }))
            } else if comment.hasPrefix("License:") {
                writer.license = String(comment.dropFirst("License:".count).drop(while: { $0 == " " }))
            } else if sawMetadata, comment.isEmpty {
                inDescription = true
            }
        }
        // The header ends with an empty comment line; description lines may be empty too.
        if rest.last == "" { rest.removeLast() }
        let description = rest
        writer.description = description.joined(separator: "\n")
    }
}
