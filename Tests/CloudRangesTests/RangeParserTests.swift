import Foundation
import IPAddress
import Testing
@testable import CloudRanges

/// The fixture files: small samples in each provider's published format, written for these tests.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func data(_ name: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(name))
    }

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

private func parse(_ name: String, _ format: RangeFormat?, provider: String) throws -> ParsedRanges {
    try RangeParser.parse(try Fixture.data(name), format: format, provider: provider)
}

private func range(_ parsed: ParsedRanges, _ cidr: String) -> [CloudRange] {
    parsed.ranges.filter { $0.prefix == IPPrefix(cidr)! }
}

@Suite("Published range formats")
struct RangeParserTests {
    @Test("AWS ip-ranges.json: prefixes and ipv6_prefixes with region and service; bad entries by path")
    func aws() throws {
        let parsed = try parse("aws-ip-ranges.json", .aws, provider: "aws")
        #expect(parsed.ranges.count == 12)
        #expect(parsed.ranges.filter { if case .v6 = $0.prefix { true } else { false } }.count == 3)
        #expect(range(parsed, "3.5.140.0/22").map(\.service) == ["AMAZON", "S3"])
        #expect(range(parsed, "15.181.232.0/21").first?.region == "us-east-1")
        #expect(range(parsed, "2a05:d07a:a000::/40").first == CloudRange(prefix: IPPrefix("2a05:d07a:a000::/40")!, provider: "aws", service: "S3", region: "eu-south-1"))
        #expect(parsed.malformed.map(\.location) == ["prefixes[9].ip_prefix", "prefixes[10].ip_prefix", "ipv6_prefixes[3].ipv6_prefix"])
        #expect(parsed.malformed[0].text == "3.5.256.0/22")
        #expect(parsed.malformed[1].reason.contains("host bits"))
    }

    @Test("Azure Service Tags: addressPrefixes of both families, systemService or tag name, region")
    func azure() throws {
        let parsed = try parse("azure-service-tags.json", .azure, provider: "azure")
        #expect(parsed.ranges.count == 12)
        #expect(range(parsed, "2603:1000:4:402::178/125").first?.service == "ActionGroup")
        #expect(range(parsed, "4.198.0.0/16").first?.service == "AzureCloud")
        #expect(range(parsed, "4.198.0.0/16").first?.region == "australiacentral")
        #expect(range(parsed, "20.36.32.0/19").map(\.service) == ["AzureCloud", "AzureStorage"])
        #expect(range(parsed, "13.107.208.0/24").first?.region == nil) // "" means global
        #expect(parsed.malformed.map(\.location) == ["values[2].properties.addressPrefixes[2]"])
    }

    @Test("Google Cloud cloud.json: ipv4Prefix or ipv6Prefix, service and scope")
    func gcp() throws {
        let parsed = try parse("gcp-cloud.json", .gcp, provider: "gcp")
        #expect(parsed.ranges.count == 5)
        #expect(range(parsed, "34.80.0.0/15").first == CloudRange(prefix: IPPrefix("34.80.0.0/15")!, provider: "gcp", service: "Google Cloud", region: "asia-east1"))
        #expect(range(parsed, "2600:1900:8000::/44").first?.region == "africa-south1")
        #expect(parsed.malformed.map(\.location) == ["prefixes[5].ipv6Prefix"])
    }

    @Test("Oracle public_ip_ranges.json: regions[].cidrs[] with tags")
    func oracle() throws {
        let parsed = try parse("oracle-public_ip_ranges.json", .oracle, provider: "oracle")
        #expect(parsed.ranges.count == 4)
        #expect(range(parsed, "134.70.8.0/21").first?.service == "OSN,OBJECT_STORAGE")
        #expect(range(parsed, "130.61.0.0/16").first?.region == "eu-frankfurt-1")
        #expect(parsed.malformed.map(\.location) == ["regions[1].cidrs[2].cidr"])
    }

    @Test("Cloudflare ips-v4 / ips-v6 text and the API JSON")
    func cloudflare() throws {
        let v4 = try parse("cloudflare-ips-v4.txt", .cloudflare, provider: "cloudflare")
        let v6 = try parse("cloudflare-ips-v6.txt", .cloudflare, provider: "cloudflare")
        #expect(v4.ranges.count == 15 && v4.malformed.isEmpty)
        #expect(v6.ranges.count == 7 && v6.malformed.isEmpty)
        #expect(v4.ranges.first?.prefix == IPPrefix("173.245.48.0/20")!)
        let api = Data(#"{"result":{"ipv4_cidrs":["173.245.48.0/20"],"ipv6_cidrs":["2400:cb00::/32"],"jdcloud_cidrs":["120.52.22.96/27"],"etag":"38f79d050aa027e3be3865e495dcc9bc"},"success":true,"errors":[],"messages":[]}"#.utf8)
        let parsed = try RangeParser.parse(api, format: .cloudflare, provider: "cloudflare")
        #expect(parsed.ranges.count == 3)
        #expect(range(parsed, "120.52.22.96/27").first?.service == "jdcloud")
    }

    @Test("Fastly public-ip-list: addresses and ipv6_addresses")
    func fastly() throws {
        let parsed = try parse("fastly-public-ip-list.json", .fastly, provider: "fastly")
        #expect(parsed.ranges.count == 21)
        #expect(range(parsed, "151.101.0.0/16").count == 1)
        #expect(range(parsed, "2a04:4e42::/32").count == 1)
    }

    @Test("GitHub meta: CIDR arrays per service; ssh keys and domains are skipped")
    func github() throws {
        let parsed = try parse("github-meta.json", .github, provider: "github")
        #expect(parsed.ranges.count == 20)
        #expect(parsed.malformed.isEmpty)
        #expect(Set(parsed.ranges.compactMap(\.service)) == ["hooks", "web", "api", "actions", "actions_macos"])
        #expect(range(parsed, "192.30.252.0/22").count == 3)
    }

    @Test("RFC 8805 geofeeds: DigitalOcean without header, Linode with # comments")
    func geofeeds() throws {
        let digitalocean = try parse("digitalocean-geofeed.csv", .geofeed, provider: "digitalocean")
        #expect(digitalocean.ranges.count == 10)
        #expect(range(digitalocean, "5.101.96.0/21").first?.region == "NL-NH")
        #expect(digitalocean.malformed.map(\.location) == ["line 11"])
        let linode = try parse("linode-geofeed.csv", .geofeed, provider: "linode")
        #expect(linode.ranges.count == 7 && linode.malformed.isEmpty)
        #expect(range(linode, "139.162.0.0/21").first?.region == "JP-13")
        // A header line without '#' is skipped, a region-less row falls back to the country.
        let headed = try RangeParser.parse(Data("ip_prefix,alpha2code,region,city,postal_code\n192.0.2.0/24,DE,,,\n".utf8), format: .geofeed, provider: "x")
        #expect(headed.ranges == [CloudRange(prefix: IPPrefix("192.0.2.0/24")!, provider: "x", region: "DE")])
        #expect(headed.malformed.isEmpty)
    }

    @Test("Plain CIDR list: comments, trailing tabs, bare addresses; bad lines counted by line number")
    func plainList() throws {
        let parsed = try parse("plain-cidrs.txt", .cidrList, provider: "hosting")
        #expect(parsed.ranges.map(\.prefix) == ["198.51.100.0/24", "203.0.113.0/25", "192.0.2.17/32", "2001:db8:100::/48"].map { IPPrefix($0)! })
        #expect(parsed.malformed.map(\.location) == ["line 7", "line 8"])
        #expect(parsed.malformed[1].reason.contains("203.0.113.128/25"))
    }

    @Test("Empty, unparsable and all-bad files are errors")
    func wholeFileErrors() {
        #expect(throws: RangeParseError.empty) { try RangeParser.parse(Data(), format: .aws, provider: "aws") }
        #expect(throws: RangeParseError.empty) { try RangeParser.parse(Data(" \n\n".utf8), format: nil, provider: "x") }
        #expect(throws: RangeParseError.empty) { try RangeParser.parse(Data("# only a comment\n".utf8), format: .cidrList, provider: "x") }
        #expect {
            try RangeParser.parse(Data("{\"prefixes\": [".utf8), format: .aws, provider: "aws")
        } throws: { error in
            if case .unparsable(.aws, let reason)? = error as? RangeParseError { return reason.contains("invalid JSON") }
            return false
        }
        #expect {
            try RangeParser.parse(Data("{\"values\": []}".utf8), format: .aws, provider: "aws")
        } throws: { error in
            if case .unparsable(.aws, _)? = error as? RangeParseError { return true }
            return false
        }
        #expect {
            try RangeParser.parse(Data("not a cidr\nneither\n".utf8), format: .cidrList, provider: "x")
        } throws: { error in
            if case .noValidRanges(.cidrList, 2, let first)? = error as? RangeParseError { return first?.hasPrefix("line 1") == true }
            return false
        }
        #expect {
            try RangeParser.parse(Data("[1, 2]".utf8), format: .github, provider: "github")
        } throws: { error in
            if case .unparsable(.github, _)? = error as? RangeParseError { return true }
            return false
        }
    }

    @Test("Formats are sniffed from content", arguments: [
        ("aws-ip-ranges.json", RangeFormat.aws), ("azure-service-tags.json", .azure), ("gcp-cloud.json", .gcp),
        ("oracle-public_ip_ranges.json", .oracle), ("fastly-public-ip-list.json", .fastly), ("github-meta.json", .github),
        ("digitalocean-geofeed.csv", .geofeed), ("linode-geofeed.csv", .geofeed), ("plain-cidrs.txt", .cidrList),
        ("cloudflare-ips-v4.txt", .cidrList),
    ])
    func sniffing(file: String, expected: RangeFormat) throws {
        #expect(RangeFormat.sniff(try Fixture.data(file)) == expected)
        // Unknown provider names parse through the sniffed format.
        #expect(try RangeParser.parse(try Fixture.data(file), format: nil, provider: "other").format == expected)
    }

    @Test("Provider names imply formats; other names are sniffed")
    func impliedFormats() {
        #expect(RangeFormat.implied(byProvider: "aws") == .aws)
        #expect(RangeFormat.implied(byProvider: "Azure") == .azure)
        #expect(RangeFormat.implied(byProvider: "linode") == .geofeed)
        #expect(RangeFormat.implied(byProvider: "digitalocean") == .geofeed)
        #expect(RangeFormat.implied(byProvider: "hetzner") == nil)
    }

    @Test("Source specs: PROVIDER=PATH and PROVIDER=URL")
    func sourceSpecs() throws {
        let file = try RangeSource(parsing: "aws=/var/lib/ranges/aws.json")
        #expect(file.name == "aws" && file.location == .file("/var/lib/ranges/aws.json") && file.format == .aws)
        let url = try RangeSource(parsing: "hetzner=https://example.net/ranges.txt")
        #expect(url.location == .url("https://example.net/ranges.txt") && url.format == nil)
        #expect(throws: RangeSourceSpecError.missingEquals("aws")) { try RangeSource(parsing: "aws") }
        #expect(throws: RangeSourceSpecError.missingTarget("aws=")) { try RangeSource(parsing: "aws=") }
        #expect(throws: RangeSourceSpecError.badName("a ws=x")) { try RangeSource(parsing: "a ws=x") }
        #expect(RangeSource.official.count >= 9)
    }
}
