import Foundation

/// Where one provider's ranges come from.
public struct RangeSource: Hashable, Sendable, CustomStringConvertible {
    public enum Location: Hashable, Sendable, CustomStringConvertible {
        case file(String)
        /// An `https://` URL (plain `http://` is accepted for loopback tests and internal mirrors).
        case url(String)

        public var description: String {
            switch self {
            case .file(let path): return path
            case .url(let url): return url
            }
        }
    }

    /// Provider name the ranges are attributed to (`aws`, `azure`, …, or any other name).
    public var name: String
    public var location: Location
    /// The file's format; nil means implied by `name` (see `RangeFormat.implied`) or sniffed.
    public var format: RangeFormat?

    public init(name: String, location: Location, format: RangeFormat? = nil) {
        self.name = name
        self.location = location
        self.format = format ?? RangeFormat.implied(byProvider: name)
    }

    public var description: String { "\(name)=\(location)" }

    /// Parses `PROVIDER=PATH` or `PROVIDER=URL` (the CLI's `--source`).
    public init(parsing spec: String) throws(RangeSourceSpecError) {
        guard let equals = spec.firstIndex(of: "=") else { throw .missingEquals(spec) }
        let name = String(spec[..<equals]).trimmingCharacters(in: .whitespaces)
        let target = String(spec[spec.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw .badName(spec)
        }
        guard !target.isEmpty else { throw .missingTarget(spec) }
        let lower = target.lowercased()
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            self.init(name: name, location: .url(target))
        } else {
            self.init(name: name, location: .file(target))
        }
    }

    /// The providers' official publication points. Azure publishes a new file name each week, so
    /// its source is the download page; the newest `ServiceTags_Public_*.json` link on it is followed.
    public static let official: [RangeSource] = [
        RangeSource(name: "aws", location: .url("https://ip-ranges.amazonaws.com/ip-ranges.json")),
        RangeSource(name: "azure", location: .url("https://www.microsoft.com/en-us/download/details.aspx?id=56519")),
        RangeSource(name: "gcp", location: .url("https://www.gstatic.com/ipranges/cloud.json")),
        RangeSource(name: "oracle", location: .url("https://docs.oracle.com/iaas/tools/public_ip_ranges.json")),
        RangeSource(name: "cloudflare", location: .url("https://www.cloudflare.com/ips-v4")),
        RangeSource(name: "cloudflare", location: .url("https://www.cloudflare.com/ips-v6")),
        RangeSource(name: "fastly", location: .url("https://api.fastly.com/public-ip-list")),
        RangeSource(name: "github", location: .url("https://api.github.com/meta")),
        RangeSource(name: "digitalocean", location: .url("https://digitalocean.com/geo/google.csv")),
        RangeSource(name: "linode", location: .url("https://geoip.linode.com/")),
    ]
}

public enum RangeSourceSpecError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingEquals(String)
    case badName(String)
    case missingTarget(String)

    public var description: String {
        switch self {
        case .missingEquals(let s): return "'\(s)' is not PROVIDER=PATH or PROVIDER=URL"
        case .badName(let s): return "'\(s)': the provider name may use letters, digits, '-', '_' and '.'"
        case .missingTarget(let s): return "'\(s)' has no path or URL after '='"
        }
    }
}
