public import Foundation
import IPAddress

/// Parses published range files. Bad entries are collected in `ParsedRanges.malformed` with their
/// line or JSON path; only an empty file, a file of the wrong shape, or one without a single usable
/// entry throws.
public enum RangeParser {
    /// Parses `data` as `format` (sniffed from the content when nil), labelling entries `provider`.
    public static func parse(_ data: Data, format: RangeFormat?, provider: String) throws(RangeParseError) -> ParsedRanges {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { throw .empty }
        let format = format ?? RangeFormat.sniff(data)
        var builder = Builder(format: format, provider: provider)
        switch format {
        case .cidrList:
            builder.parseText(data, columns: false)
        case .geofeed:
            builder.parseText(data, columns: true)
        case .cloudflare:
            if data.first(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) == UInt8(ascii: "{") {
                try builder.parseCloudflareAPI(json(data, format))
            } else {
                builder.parseText(data, columns: false)
            }
        case .aws: try builder.parseAWS(json(data, format))
        case .azure: try builder.parseAzure(json(data, format))
        case .gcp: try builder.parseGCP(json(data, format))
        case .oracle: try builder.parseOracle(json(data, format))
        case .fastly: try builder.parseFastly(json(data, format))
        case .github: try builder.parseGitHub(json(data, format))
        }
        if builder.ranges.isEmpty {
            if builder.malformed.isEmpty, format == .cidrList || format == .geofeed || format == .cloudflare {
                throw .empty // only comments
            }
            throw .noValidRanges(format: format, malformed: builder.malformed.count, firstProblem: builder.malformed.first?.description)
        }
        return ParsedRanges(format: format, ranges: builder.ranges, malformed: builder.malformed)
    }

    private static func json(_ data: Data, _ format: RangeFormat) throws(RangeParseError) -> [String: Any] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw .unparsable(format: format, reason: "invalid JSON (\(error.localizedDescription))")
        }
        guard let dictionary = object as? [String: Any] else {
            throw .unparsable(format: format, reason: "the top level is not a JSON object")
        }
        return dictionary
    }
}

/// Accumulates ranges and problems for one file.
private struct Builder {
    let format: RangeFormat
    let provider: String
    var ranges: [CloudRange] = []
    var malformed: [MalformedEntry] = []

    init(format: RangeFormat, provider: String) {
        self.format = format
        self.provider = provider
    }

    mutating func bad(_ location: String, _ text: String, _ reason: String) {
        malformed.append(MalformedEntry(location: location, text: text, reason: reason))
    }

    /// Adds one CIDR text found at `location`.
    mutating func add(_ value: Any?, at location: String, service: String?, region: String?) {
        guard let text = value as? String else {
            bad(location, value.map { "\($0)" } ?? "(missing)", "expected a CIDR string")
            return
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        do {
            let prefix = try IPPrefix(parsing: trimmed)
            ranges.append(CloudRange(prefix: prefix, provider: provider, service: nonEmpty(service), region: nonEmpty(region)))
        } catch {
            bad(location, text, error.description)
        }
    }

    func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }

    func requireArray(_ object: [String: Any], _ keys: [String]) throws(RangeParseError) {
        guard keys.contains(where: { object[$0] is [Any] }) else {
            throw .unparsable(format: format, reason: "no \(keys.map { "'\($0)'" }.joined(separator: " or ")) array at the top level")
        }
    }

    // MARK: text formats

    /// CIDR lists (one per line, `#` comments, trailing whitespace) and RFC 8805 geofeeds
    /// (`prefix,country,region,city,postal`; a first line naming the columns is skipped).
    mutating func parseText(_ data: Data, columns: Bool) {
        let text = String(decoding: data, as: UTF8.self)
        var lineNumber = 0
        var sawData = false
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }) {
            lineNumber += 1
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                .trimmingCharacters(in: CharacterSet(charactersIn: "\u{FEFF}"))
            if trimmed.isEmpty { continue }
            defer { sawData = true }
            if columns {
                let fields = trimmed.split(separator: ",", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                let first = fields[0]
                if !sawData, first.lowercased().contains("prefix") || first.lowercased() == "network" { continue } // header
                let country = fields.count > 1 ? fields[1] : ""
                let region = fields.count > 2 ? fields[2] : ""
                do {
                    let prefix = try IPPrefix(parsing: first)
                    ranges.append(CloudRange(prefix: prefix, provider: provider, service: nil,
                                             region: nonEmpty(region) ?? nonEmpty(country)))
                } catch {
                    bad("line \(lineNumber)", String(rawLine), error.description)
                }
            } else {
                // Some lists put a description after the CIDR; the CIDR is the first word.
                let word = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == ";" }).first.map(String.init) ?? trimmed
                do {
                    ranges.append(CloudRange(prefix: try IPPrefix(parsing: word), provider: provider))
                } catch {
                    bad("line \(lineNumber)", String(rawLine), error.description)
                }
            }
        }
    }

    // MARK: JSON formats

    mutating func parseAWS(_ object: [String: Any]) throws(RangeParseError) {
        try requireArray(object, ["prefixes", "ipv6_prefixes"])
        for (listKey, field) in [("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")] {
            guard let list = object[listKey] else { continue }
            guard let items = list as? [Any] else {
                bad(listKey, "\(list)", "expected an array")
                continue
            }
            for (i, item) in items.enumerated() {
                let path = "\(listKey)[\(i)]"
                guard let entry = item as? [String: Any] else {
                    bad(path, "\(item)", "expected an object")
                    continue
                }
                add(entry[field], at: "\(path).\(field)", service: entry["service"] as? String,
                    region: entry["region"] as? String)
            }
        }
    }

    mutating func parseAzure(_ object: [String: Any]) throws(RangeParseError) {
        try requireArray(object, ["values"])
        let values = object["values"] as? [Any] ?? []
        for (i, item) in values.enumerated() {
            let path = "values[\(i)]"
            guard let tag = item as? [String: Any], let properties = tag["properties"] as? [String: Any] else {
                bad(path, "\(item)", "expected an object with 'properties'")
                continue
            }
            guard let prefixes = properties["addressPrefixes"] as? [Any] else {
                bad("\(path).properties.addressPrefixes", "\(properties["addressPrefixes"] ?? "(missing)")", "expected an array")
                continue
            }
            // `systemService` is empty for the broad tags (AzureCloud, …): name them by the tag.
            let tagName = (tag["name"] as? String).map { String($0.split(separator: ".").first ?? "") }
            let service = nonEmpty(properties["systemService"] as? String) ?? nonEmpty(tagName)
            let region = properties["region"] as? String
            for (j, prefix) in prefixes.enumerated() {
                add(prefix, at: "\(path).properties.addressPrefixes[\(j)]", service: service, region: region)
            }
        }
    }

    mutating func parseGCP(_ object: [String: Any]) throws(RangeParseError) {
        try requireArray(object, ["prefixes"])
        let items = object["prefixes"] as? [Any] ?? []
        for (i, item) in items.enumerated() {
            let path = "prefixes[\(i)]"
            guard let entry = item as? [String: Any] else {
                bad(path, "\(item)", "expected an object")
                continue
            }
            let key = entry["ipv4Prefix"] != nil ? "ipv4Prefix" : "ipv6Prefix"
            add(entry[key], at: "\(path).\(key)", service: entry["service"] as? String, region: entry["scope"] as? String)
        }
    }

    mutating func parseOracle(_ object: [String: Any]) throws(RangeParseError) {
        try requireArray(object, ["regions"])
        let regions = object["regions"] as? [Any] ?? []
        for (i, item) in regions.enumerated() {
            let path = "regions[\(i)]"
            guard let region = item as? [String: Any], let cidrs = region["cidrs"] as? [Any] else {
                bad(path, "\(item)", "expected an object with a 'cidrs' array")
                continue
            }
            let name = region["region"] as? String
            for (j, cidrItem) in cidrs.enumerated() {
                guard let cidr = cidrItem as? [String: Any] else {
                    bad("\(path).cidrs[\(j)]", "\(cidrItem)", "expected an object")
                    continue
                }
                let tags = (cidr["tags"] as? [Any])?.compactMap { $0 as? String } ?? []
                add(cidr["cidr"], at: "\(path).cidrs[\(j)].cidr", service: tags.joined(separator: ","), region: name)
            }
        }
    }

    mutating func parseFastly(_ object: [String: Any]) throws(RangeParseError) {
        try requireArray(object, ["addresses", "ipv6_addresses"])
        for key in ["addresses", "ipv6_addresses"] {
            guard let list = object[key] as? [Any] else { continue }
            for (i, item) in list.enumerated() { add(item, at: "\(key)[\(i)]", service: nil, region: nil) }
        }
    }

    mutating func parseCloudflareAPI(_ object: [String: Any]) throws(RangeParseError) {
        guard let result = object["result"] as? [String: Any] else {
            throw .unparsable(format: format, reason: "no 'result' object")
        }
        for key in result.keys.sorted() where key.hasSuffix("_cidrs") {
            guard let list = result[key] as? [Any] else { continue }
            // `ipv4_cidrs`/`ipv6_cidrs` are Cloudflare's own; others (`jdcloud_cidrs`) name a partner network.
            let service = key == "ipv4_cidrs" || key == "ipv6_cidrs" ? nil : String(key.dropLast("_cidrs".count))
            for (i, item) in list.enumerated() { add(item, at: "result.\(key)[\(i)]", service: service, region: nil) }
        }
    }

    /// GitHub `meta`: every top-level array of strings whose entries look like addresses is a
    /// service's ranges; other keys (`ssh_keys`, `domains`, `verifiable_password_authentication`, …) are skipped.
    mutating func parseGitHub(_ object: [String: Any]) throws(RangeParseError) {
        var sawList = false
        for key in object.keys.sorted() {
            guard let list = object[key] as? [Any], !list.isEmpty else { continue }
            let strings = list.compactMap { $0 as? String }
            guard strings.count == list.count,
                  strings.contains(where: { (try? IPPrefix(parsing: $0.trimmingCharacters(in: .whitespaces), strict: false)) != nil })
            else { continue }
            sawList = true
            for (i, item) in list.enumerated() { add(item, at: "\(key)[\(i)]", service: key, region: nil) }
        }
        if !sawList { throw .unparsable(format: format, reason: "no top-level array of CIDRs") }
    }
}
