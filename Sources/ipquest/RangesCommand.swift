import ArgumentParser
import CloudRanges
import Foundation
import IPAddress
import Logging
import TextFormats

/// `ipquest ranges lookup|stats|export`: cloud provider ranges from their published files.
struct RangesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranges",
        abstract: "Classify addresses by cloud provider ranges (AWS, Azure, GCP, Oracle, Cloudflare, Fastly, GitHub, DigitalOcean, Linode).",
        discussion: """
            Sources are PROVIDER=PATH or PROVIDER=URL. The providers aws, azure, gcp, oracle, cloudflare, fastly, \
            github, digitalocean and linode imply their published format; any other name is read as a plain CIDR \
            list or an RFC 8805 geofeed (sniffed). Without --source the official URLs are used. Downloads are \
            cached on disk; --local-only reads only local files and that cache.
            """,
        subcommands: [Lookup.self, Stats.self, Export.self]
    )

    struct SourceOptions: ParsableArguments {
        @Option(name: .customLong("source"), help: "PROVIDER=PATH or PROVIDER=URL (repeatable; default: the official URLs).")
        var sources: [String] = []

        @Flag(help: "No network: read local files, and URL sources only from the disk cache.")
        var localOnly = false

        @Option(help: "Directory for cached downloads (default: $XDG_CACHE_HOME/ipquest/ranges or ~/.cache/ipquest/ranges).")
        var cacheDir: String?

        @Option(help: "HTTP timeout per request, in seconds.")
        var timeout: Int = 30

        @Flag(help: "Log each source's refresh.")
        var verbose = false

        func rangeSources() throws -> [RangeSource] {
            if sources.isEmpty { return RangeSource.official }
            return try sources.map { spec in
                do { return try RangeSource(parsing: spec) } catch { throw ValidationError("\(error)") }
            }
        }

        var cacheDirectory: String {
            if let cacheDir { return cacheDir }
            let environment = ProcessInfo.processInfo.environment
            if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/ipquest/ranges" }
            return (environment["HOME"] ?? NSTemporaryDirectory()) + "/.cache/ipquest/ranges"
        }

        /// Loads every source once; problems go to standard error. Fails only when nothing loaded.
        func load() async throws -> RangeTable {
            var logger = Logger(label: "ipquest.ranges")
            logger.logLevel = verbose ? .info : .critical
            let set = RangeSet(sources: try rangeSources(), cacheDirectory: cacheDirectory,
                               requestTimeout: .seconds(timeout), logger: logger)
            await set.loadCache()
            let statuses = await set.refresh(network: !localOnly)
            for status in statuses {
                if let error = status.lastError {
                    let kept = status.ranges > 0 ? "using \(status.ranges) ranges from the \(status.origin.rawValue)" : "no data"
                    printToStandardError("warning: \(status.source): \(error) (\(kept))")
                } else if status.ranges == 0, localOnly, case .url = status.source.location {
                    printToStandardError("warning: \(status.source): not cached, skipped (--local-only)")
                }
                if status.malformed > 0 {
                    printToStandardError("warning: \(status.source): \(status.malformed) malformed entries skipped")
                }
            }
            let table = set.table
            if table.isEmpty { throw RangesCommandError("no ranges could be loaded from any source") }
            return table
        }
    }

    enum LookupFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    struct Lookup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the provider, service, region and prefix of each address (the most specific prefix wins).")

        @OptionGroup var options: SourceOptions

        @Option(help: "text (for people) or json (one object per address per line).")
        var format: LookupFormat = .text

        @Argument(help: "Addresses, or - to read them from standard input (one per line).")
        var addresses: [String]

        func run() async throws {
            guard !addresses.isEmpty else { throw ValidationError("give at least one address, or - for standard input") }
            let table = try await options.load()
            var bad = 0
            func emit(_ text: String) {
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { return }
                guard let address = IPAddress(trimmed) else {
                    bad += 1
                    if format == .json {
                        print(#"{"address":\#(JSONText.quoted(trimmed)),"error":"not an IP address"}"#)
                    } else {
                        printToStandardError("error: '\(trimmed)' is not an IP address")
                    }
                    return
                }
                let hit = table.classify(address)
                switch format {
                case .json:
                    print(#"{"address":\#(JSONText.quoted(trimmed)),"provider":\#(JSONText.quoted(hit?.provider)),"service":\#(JSONText.quoted(hit?.service)),"region":\#(JSONText.quoted(hit?.region)),"prefix":\#(JSONText.quoted(hit.map { "\($0.prefix)" }))}"#)
                case .text:
                    if let hit {
                        let details = [hit.service.map { "service \($0)" }, hit.region.map { "region \($0)" }].compactMap { $0 }
                        print("\(trimmed)\t\(hit.provider)\t\(hit.prefix)" + (details.isEmpty ? "" : "\t" + details.joined(separator: ", ")))
                    } else {
                        print("\(trimmed)\t-\tno published range")
                    }
                }
            }
            for argument in addresses {
                if argument == "-" {
                    while let line = readLine() { emit(line) }
                } else {
                    emit(argument)
                }
            }
            if bad > 0 { throw ExitCode(1) }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prefixes and share of the address space per provider.")

        @OptionGroup var options: SourceOptions

        @Option(help: "text or json.")
        var format: LookupFormat = .text

        func run() async throws {
            let table = try await options.load()
            let stats = table.statistics()
            switch format {
            case .json:
                for s in stats {
                    print(#"{"provider":\#(JSONText.quoted(s.provider)),"ipv4_prefixes":\#(s.ipv4Prefixes),"ipv6_prefixes":\#(s.ipv6Prefixes),"ipv4_addresses":\#(s.ipv4Addresses),"ipv4_share":\#(s.ipv4Share),"ipv6_share":\#(s.ipv6Share)}"#)
                }
            case .text:
                let width = max(8, stats.map(\.provider.count).max() ?? 0)
                func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
                    let fill = String(repeating: " ", count: max(0, n - s.count))
                    return left ? fill + s : s + fill
                }
                print(pad("provider", width) + "  " + pad("IPv4 pfx", 9, left: true) + "  " + pad("IPv6 pfx", 9, left: true)
                      + "  " + pad("IPv4 addresses", 15, left: true) + "  " + pad("IPv4 share", 10, left: true) + "  " + pad("IPv6 share", 12, left: true))
                for s in stats {
                    print(pad(s.provider, width) + "  " + pad("\(s.ipv4Prefixes)", 9, left: true) + "  " + pad("\(s.ipv6Prefixes)", 9, left: true)
                          + "  " + pad("\(s.ipv4Addresses)", 15, left: true) + "  " + pad(percent(s.ipv4Share), 10, left: true)
                          + "  " + pad(scientific(s.ipv6Share), 12, left: true))
                }
                let union = RangeTable.outermost(table.allRanges.compactMap { if case .v4(let p) = $0.prefix { p } else { nil } })
                let covered = union.reduce(UInt64(0)) { $0 + $1.size }
                print("all providers: \(table.count) distinct prefixes, \(covered) IPv4 addresses (\(percent(Double(covered) / 4_294_967_296.0)) of IPv4)")
            }
        }

        func percent(_ share: Double) -> String { String(format: "%.3f%%", share * 100) }
        func scientific(_ share: Double) -> String { share == 0 ? "0" : String(format: "%.3e", share) }
    }

    enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
        case list, nftables, ipset
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the ranges (contained prefixes folded into their parents) for a firewall.",
            discussion: """
                list: one CIDR per line. nftables: a table with interval sets NAME_v4 and NAME_v6 (load with \
                nft -f). ipset: commands for ipset restore (hash:net sets NAME-v4 and NAME-v6).
                """)

        @OptionGroup var options: SourceOptions

        @Option(help: "list, nftables or ipset.")
        var format: ExportFormat = .list

        @Option(name: .customLong("provider"), help: "Only these providers (repeatable; default: all).")
        var providers: [String] = []

        @Option(help: "Set (and nftables table) name.")
        var name = "ipquest_cloud"

        func run() async throws {
            let table = try await options.load()
            let wanted = Set(providers.map { $0.lowercased() })
            let chosen = table.allRanges.filter { wanted.isEmpty || wanted.contains($0.provider.lowercased()) }
            if chosen.isEmpty { throw RangesCommandError("no ranges for provider(s) \(providers.joined(separator: ", "))") }
            var v4: [IPv4Prefix] = [], v6: [IPv6Prefix] = []
            for r in chosen {
                switch r.prefix {
                case .v4(let p): v4.append(p)
                case .v6(let p): v6.append(p)
                }
            }
            v4 = RangeTable.outermost(v4)
            v6 = RangeTable.outermost(v6)
            var out = ""
            let label = wanted.isEmpty ? "all providers" : wanted.sorted().joined(separator: ", ")
            switch format {
            case .list:
                out += "# cloud provider ranges (\(label)): \(v4.count) IPv4 and \(v6.count) IPv6 prefixes, generated by ipquest\n"
                for p in v4 { out += "\(p)\n" }
                for p in v6 { out += "\(p)\n" }
            case .nftables:
                out += "# cloud provider ranges (\(label)), generated by ipquest; load with: nft -f FILE\n"
                out += "table inet \(name) {\n"
                for (family, type, prefixes) in [("v4", "ipv4_addr", v4.map(\.description)), ("v6", "ipv6_addr", v6.map(\.description))] where !prefixes.isEmpty {
                    out += "\tset \(name)_\(family) {\n\t\ttype \(type)\n\t\tflags interval\n\t\tauto-merge\n\t\telements = {\n"
                    for (i, p) in prefixes.enumerated() { out += "\t\t\t\(p)\(i + 1 < prefixes.count ? "," : "")\n" }
                    out += "\t\t}\n\t}\n"
                }
                out += "}\n"
            case .ipset:
                let setName = name.replacingOccurrences(of: "_", with: "-")
                out += "# cloud provider ranges (\(label)), generated by ipquest; load with: ipset restore < FILE\n"
                for (family, inet, prefixes) in [("v4", "inet", v4.map(\.description)), ("v6", "inet6", v6.map(\.description))] where !prefixes.isEmpty {
                    let maxElements = max(65536, prefixes.count)
                    out += "create \(setName)-\(family) hash:net family \(inet) maxelem \(maxElements) -exist\n"
                    out += "flush \(setName)-\(family)\n"
                    for p in prefixes { out += "add \(setName)-\(family) \(p)\n" }
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }
}

/// A failure reported without the usage text.
private struct RangesCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private func printToStandardError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

