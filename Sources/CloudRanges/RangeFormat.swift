public import Foundation

/// The published formats this module reads.
public enum RangeFormat: String, Sendable, CaseIterable, Codable {
    /// AWS `ip-ranges.json`: `prefixes[].ip_prefix` / `ipv6_prefixes[].ipv6_prefix` with `region`,
    /// `service`, `network_border_group`.
    case aws
    /// Azure Service Tags (`ServiceTags_Public_*.json`): `values[].properties.addressPrefixes`
    /// with `region`, `systemService`.
    case azure
    /// Google Cloud `cloud.json`: `prefixes[].ipv4Prefix` or `.ipv6Prefix` with `service`, `scope`.
    case gcp
    /// Oracle Cloud `public_ip_ranges.json`: `regions[].cidrs[].cidr` with `region`, `tags`.
    case oracle
    /// Cloudflare `ips-v4` / `ips-v6` text (one CIDR per line), or its API JSON
    /// (`result.ipv4_cidrs`, `result.ipv6_cidrs`).
    case cloudflare
    /// Fastly `public-ip-list`: `addresses`, `ipv6_addresses`.
    case fastly
    /// GitHub `meta`: arrays of CIDRs under service keys (`hooks`, `web`, `actions`, …).
    case github
    /// RFC 8805 geofeed CSV: `prefix,country,region,city,postal` (DigitalOcean, Linode).
    case geofeed
    /// One CIDR or address per line; `#` starts a comment.
    case cidrList = "cidr-list"

    /// The format a well-known provider name implies; nil for other names (sniff the content).
    public static func implied(byProvider provider: String) -> RangeFormat? {
        switch provider.lowercased() {
        case "aws", "amazon": return .aws
        case "azure", "microsoft": return .azure
        case "gcp", "google", "googlecloud": return .gcp
        case "oracle", "oci": return .oracle
        case "cloudflare": return .cloudflare
        case "fastly": return .fastly
        case "github": return .github
        case "digitalocean", "linode", "akamai-linode": return .geofeed
        default: return nil
        }
    }

    /// Guesses the format from the content: JSON by its top-level keys, text as a geofeed when
    /// its data lines have commas, otherwise a CIDR list.
    public static func sniff(_ data: Data) -> RangeFormat {
        let bytes = data.prefix(4096)
        if let first = bytes.first(where: { !isSpace($0) }), first == UInt8(ascii: "{") {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return .cidrList }
            if object["prefixes"] is [Any] || object["ipv6_prefixes"] is [Any] {
                if let items = object["prefixes"] as? [[String: Any]], let item = items.first,
                   item["ipv4Prefix"] != nil || item["ipv6Prefix"] != nil {
                    return .gcp
                }
                return object["syncToken"] != nil && object["creationTime"] != nil ? .gcp : .aws
            }
            if object["values"] is [Any] { return .azure }
            if object["regions"] is [Any] { return .oracle }
            if object["addresses"] is [Any] || object["ipv6_addresses"] is [Any] { return .fastly }
            if object["result"] is [String: Any] { return .cloudflare }
            return .github
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            return trimmed.contains(",") ? .geofeed : .cidrList
        }
        return .cidrList
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0xEF || byte == 0xBB || byte == 0xBF
    }
}
