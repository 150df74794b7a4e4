public import IPAddress

/// One published address range of a provider, with what the provider says it is used for.
public struct CloudRange: Hashable, Sendable {
    public var prefix: IPPrefix
    /// Provider name as configured for the source (`aws`, `azure`, `gcp`, …).
    public var provider: String
    /// Service as published (AWS `service`, Azure `systemService` or tag name, GCP `service`,
    /// Oracle tags, GitHub meta key); nil when the format has none.
    public var service: String?
    /// Region as published (AWS `region`, Azure `region`, GCP `scope`, Oracle `region`,
    /// geofeed region or country); nil when the format has none.
    public var region: String?

    public init(prefix: IPPrefix, provider: String, service: String? = nil, region: String? = nil) {
        self.prefix = prefix
        self.provider = provider
        self.service = service
        self.region = region
    }
}

/// An entry of a published file that could not be used. Never fatal for the rest of the file.
public struct MalformedEntry: Hashable, Sendable, CustomStringConvertible {
    /// Where it is: `line 12` for text formats, a JSON path such as `prefixes[3].ip_prefix`.
    public var location: String
    /// The offending text (shortened to 200 characters).
    public var text: String
    public var reason: String

    public init(location: String, text: String, reason: String) {
        self.location = location
        self.text = text.count > 200 ? String(text.prefix(200)) + "…" : text
        self.reason = reason
    }

    public var description: String { "\(location): \(reason): \(text)" }
}

/// The result of parsing one published file.
public struct ParsedRanges: Sendable {
    public var format: RangeFormat
    public var ranges: [CloudRange]
    public var malformed: [MalformedEntry]

    public init(format: RangeFormat, ranges: [CloudRange], malformed: [MalformedEntry]) {
        self.format = format
        self.ranges = ranges
        self.malformed = malformed
    }
}

/// Why a whole file was refused.
public enum RangeParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file has no content (or only whitespace and comments).
    case empty
    /// The file is not in the expected format at all (bad JSON, wrong top-level structure).
    case unparsable(format: RangeFormat, reason: String)
    /// The structure was right but not one entry was usable.
    case noValidRanges(format: RangeFormat, malformed: Int, firstProblem: String?)

    public var description: String {
        switch self {
        case .empty:
            return "the file is empty"
        case .unparsable(let format, let reason):
            return "not a valid \(format.rawValue) file: \(reason)"
        case .noValidRanges(let format, let malformed, let first):
            return "no usable ranges in \(format.rawValue) file (\(malformed) malformed entries\(first.map { "; first: \($0)" } ?? ""))"
        }
    }
}
