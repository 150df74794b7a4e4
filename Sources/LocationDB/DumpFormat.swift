#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import IPAddress

/// `Sat, 29 Oct 2022 05:59:54 GMT` (`%a, %d %b %Y %H:%M:%S GMT` in UTC), as `location version` prints.
public func formatHTTPDate(_ seconds: UInt64) -> String {
    var t = time_t(truncatingIfNeeded: Int64(clamping: seconds))
    var parts = tm()
    gmtime_r(&t, &parts)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
        + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
}

/// Parses `formatHTTPDate` output back to UNIX seconds.
public func parseHTTPDate(_ text: String) -> UInt64? {
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    let fields = text.split(separator: " ")
    guard fields.count == 6, fields[5] == "GMT", let day = Int32(fields[1]), let month = months.firstIndex(of: String(fields[2])),
          let year = Int32(fields[3]) else { return nil }
    let clock = fields[4].split(separator: ":").compactMap { Int32($0) }
    guard clock.count == 3 else { return nil }
    var parts = tm()
    parts.tm_year = year - 1900
    parts.tm_mon = Int32(month)
    parts.tm_mday = day
    parts.tm_hour = clock[0]
    parts.tm_min = clock[1]
    parts.tm_sec = clock[2]
    let seconds = timegm(&parts)
    return seconds < 0 ? nil : UInt64(seconds)
}

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
        header += "# Generated: \(formatHTTPDate(database.createdAt))\n"
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
        var block: [(key: Substring, value: Substring)] = []
        var lineNumber = 0
        var blockLine = 0

        func finishBlock(_ block: [(key: Substring, value: Substring)], line: Int, _ writer: inout DatabaseWriter) throws(LocationDatabaseError) {
            guard let (firstKey, firstValue) = block.first else { return }
            switch firstKey {
            case "aut-num:":
                guard firstValue.hasPrefix("AS"), let number = UInt32(firstValue.dropFirst(2)) else {
                    throw .invalidInput("line \(line): bad AS number '\(firstValue)'")
                }
                let name = block.first(where: { $0.key == "name:" })?.value ?? ""
                writer.addAutonomousSystem(number: number, name: String(name))
            case "net:":
                let prefix: IPPrefix
                do { prefix = try IPPrefix(parsing: firstValue, strict: false) } catch {
                    throw .invalidInput("line \(line): bad network '\(firstValue)': \(error)")
                }
                var properties = NetworkProperties()
                for (key, value) in block.dropFirst() {
                    switch key {
                    case "country:":
                        guard let code = CountryCode(value) else { throw .invalidInput("line \(line): bad country '\(value)'") }
                        properties.countryCode = code
                    case "aut-num:":
                        guard let asn = UInt32(value) else { throw .invalidInput("line \(line): bad ASN '\(value)'") }
                        properties.asn = asn
                    default:
                        if let (flag, _) = flagKeys.first(where: { $0.1 == key }), value == "yes" { properties.flags.insert(flag) }
                    }
                }
                try writer.addNetwork(prefix, properties: properties)
            default:
                throw .invalidInput("line \(line): unknown object '\(firstKey)'")
            }
        }

        var start = 0
        let count = text.count
        var nextProgress = 1 << 22
        while start < count {
            var end = start
            while end < count, text[end] != 0x0A { end += 1 }
            lineNumber += 1
            var lineBytes = UnsafeRawBufferPointer(rebasing: text[start..<end])
            if let last = lineBytes.last, last == 0x0D { lineBytes = UnsafeRawBufferPointer(rebasing: lineBytes.dropLast()) }
            let line = Substring(String(decoding: lineBytes, as: UTF8.self))
            start = end + 1
            if start >= nextProgress { progress?(start); nextProgress += 1 << 22 }

            if inHeader, line.hasPrefix("#") {
                comments.append(String(line.dropFirst(line.hasPrefix("# ") ? 2 : 1)))
                continue
            }
            inHeader = false
            if line.isEmpty {
                try finishBlock(block, line: blockLine, &writer)
                block.removeAll(keepingCapacity: true)
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw .invalidInput("line \(lineNumber): no key in '\(line)'") }
            let key = line[...colon]
            var value = line[line.index(after: colon)...]
            // Values start in column 25 ("%-24s %s"); keep anything after that verbatim.
            let column = line.utf8.count - value.utf8.count
            let padding = max(0, 25 - column)
            var dropped = 0
            while dropped < padding, value.first == " " { value = value.dropFirst(); dropped += 1 }
            if dropped == 0 { while value.first == " " { value = value.dropFirst() } }
            if block.isEmpty { blockLine = lineNumber }
            block.append((key, value))
        }
        try finishBlock(block, line: blockLine, &writer)

        // Header: "Generated:", "Vendor:", "License:", then "" and the description up to the next "".
        var rest: [String] = []
        var sawMetadata = false, inDescription = false
        for comment in comments {
            if inDescription {
                rest.append(comment)
            } else if comment.hasPrefix("Generated: ") {
                writer.createdAt = parseHTTPDate(String(comment.dropFirst("Generated: ".count)))
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
