import ArgumentParser
import Foundation
import IPAddress
import LocationDB
import TextFormats
import NIOCore
import NIOHTTP1

/// `ipquest location …`: IPFire's `location` command (0.9.16) on top of LocationDB — same
/// subcommands, options, output text and exit codes — plus JSON output, addresses from stdin,
/// a `write` command that builds a database from a dump, and a working `xt_geoip` export.
struct LocationCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "location",
        abstract: "Query, export, verify and write IPFire location (libloc v1) databases.",
        subcommands: [
            LocationVersion.self, LocationLookup.self, LocationDump.self, LocationUpdate.self, LocationVerify.self,
            LocationGetAS.self, LocationSearchAS.self, LocationListNetworksByAS.self, LocationListNetworksByCC.self,
            LocationListNetworksByFlags.self, LocationListBogons.self, LocationListCountries.self, LocationExport.self,
            LocationWrite.self,
        ]
    )

    // Declared here too so that `-d`/`-k` may come before the subcommand, as with `location`.
    @OptionGroup var global: LocationGlobalOptions
}

/// Where Debian's `location` and `libloc-database` packages put the database and IPFire's key.
private let defaultLocationDatabasePath = "/var/lib/location/database.db"
private let defaultLocationPublicKeyPath = "/var/lib/location/signing-key.pem"

struct LocationGlobalOptions: ParsableArguments {
    @Option(name: [.customShort("d"), .long], help: "Path to the database.")
    var database: String = defaultLocationDatabasePath

    @Option(name: [.customShort("k"), .customLong("public-key")], help: "Public key (PEM) to verify the database with.")
    var publicKey: String = defaultLocationPublicKeyPath

    @Flag(help: "Only print errors.")
    var quiet = false

    @Flag(help: "Accepted for compatibility.")
    var debug = false

    /// Opens the database; on failure prints the reference's message and exits 1.
    func open() throws -> LocationDatabase {
        do {
            return try LocationDatabase(path: database)
        } catch {
            if case .cannotOpen(_, let reason) = error {
                locationPrintError("location: Could not open database \(database): \(reason)")
            } else {
                locationPrintError("location: Could not open database \(database): \(error)")
            }
            throw ExitCode(1)
        }
    }

    func info(_ message: String) {
        if !quiet { locationPrintError(message) }
    }
}

private func locationPrintError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Buffered standard output (large listings are written in big chunks).
private struct LocationStandardOutput {
    private var buffer: [UInt8] = []

    mutating func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func write(bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    /// True when standard output is a regular file (the reference rewinds it for ipset headers).
    static var isRegularFile: Bool {
        var info = stat()
        return fstat(1, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}

enum LocationOutputFormat: String, ExpressibleByArgument, CaseIterable {
    case list, ipset, nftables
    case xtGeoIP = "xt_geoip"
    case json

    var exportFormat: ExportFormat? { ExportFormat(rawValue: rawValue) }
}

enum LocationFamily: String, ExpressibleByArgument, CaseIterable {
    case ipv4, ipv6

    var family: AddressFamily { self == .ipv4 ? .ipv4 : .ipv6 }
}

private func locationFlagNames(_ flags: NetworkFlags) -> [String] {
    var names: [String] = []
    if flags.contains(.anonymousProxy) { names.append("anonymous-proxy") }
    if flags.contains(.satelliteProvider) { names.append("satellite-provider") }
    if flags.contains(.anycast) { names.append("anycast") }
    if flags.contains(.drop) { names.append("drop") }
    return names
}

/// One network as a JSON object (one line).
private func locationNetworkJSON(_ network: LocationNetwork, database: LocationDatabase, address: String? = nil) -> String {
    var fields: [String] = []
    if let address { fields.append("\"address\":\(JSONText.quoted(address))") }
    fields.append("\"network\":\(JSONText.quoted(network.description))")
    fields.append("\"family\":\(network.isIPv4 ? "\"ipv4\"" : "\"ipv6\"")")
    if network.countryCode.isNone {
        fields.append("\"country_code\":null")
    } else {
        fields.append("\"country_code\":\(JSONText.quoted(network.countryCode.description))")
        if let country = database.country(code: network.countryCode) { fields.append("\"country\":\(JSONText.quoted(country.name))") }
    }
    fields.append("\"asn\":\(network.asn == 0 ? "null" : String(network.asn))")
    if network.asn != 0, let system = database.autonomousSystem(number: network.asn) {
        fields.append("\"as_name\":\(JSONText.quoted(system.name))")
    }
    fields.append("\"flags\":[\(locationFlagNames(network.flags).map { JSONText.quoted($0) }.joined(separator: ","))]")
    return "{" + fields.joined(separator: ",") + "}"
}

/// Writes one named list of networks the way `list-networks-*` and `list-bogons` do.
private func locationWriteNetworkList(name: String, family: LocationFamily?, format: LocationOutputFormat, networks: some Sequence<LocationNetwork>,
                      database: LocationDatabase) throws {
    var out = LocationStandardOutput()
    if format == .json {
        for network in networks { out.write(locationNetworkJSON(network, database: database) + "\n") }
        out.flush()
        return
    }
    guard let exportFormat = format.exportFormat, exportFormat != .xtGeoIP else {
        locationPrintError("Won't write binary output to stdout")
        throw ExitCode(1)
    }
    var set = ExportSet(name: name, family: family?.family, format: exportFormat)
    for network in networks { set.write(network) }
    out.write(bytes: set.output(knownSize: LocationStandardOutput.isRegularFile))
    out.flush()
}

// MARK: Subcommands

struct LocationVersion: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Show the database's creation time.")
    @OptionGroup var global: LocationGlobalOptions

    func run() throws {
        let db = try global.open()
        print(HTTPDate.format(db.createdAt))
    }
}

struct LocationLookup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup", abstract: "Look up one or more IP addresses (\"-\" reads addresses from standard input).")
    @OptionGroup var global: LocationGlobalOptions

    @Option(help: "Output format: text (as the reference) or json (one object per line).")
    var format: LookupFormat = .text

    @Argument(help: "Addresses, or - for standard input (one per line).")
    var address: [String]

    enum LookupFormat: String, ExpressibleByArgument { case text, json }

    func run() throws {
        let db = try global.open()
        var status: Int32 = 0
        var out = LocationStandardOutput()
        func handle(_ text: String) throws {
            guard let address = IPAddress(text) else {
                out.flush()
                locationPrintError("Invalid IP address: \(text)")
                throw ExitCode(2)
            }
            guard let network = db.lookup(address) else {
                out.flush()
                locationPrintError("Nothing found for \(text)")
                status = 1
                return
            }
            if format == .json {
                out.write(locationNetworkJSON(network, database: db, address: text) + "\n")
                return
            }
            func line(_ key: String, _ value: String) -> String {
                "  " + key + String(repeating: " ", count: max(0, 24 - key.count)) + ": " + value + "\n"
            }
            var text = "\(text):\n" + line("Network", network.description)
            if !network.countryCode.isNone {
                text += line("Country", db.country(code: network.countryCode)?.name ?? network.countryCode.description)
            }
            if network.asn != 0 {
                text += line("Autonomous System", db.autonomousSystem(number: network.asn)?.description ?? "AS\(network.asn)")
            }
            if network.flags.contains(.anonymousProxy) { text += line("Anonymous Proxy", "yes") }
            if network.flags.contains(.satelliteProvider) { text += line("Satellite Provider", "yes") }
            if network.flags.contains(.anycast) { text += line("Anycast", "yes") }
            if network.flags.contains(.drop) { text += line("Hostile Network safe to drop", "yes") }
            out.write(text)
        }
        for argument in address {
            if argument == "-" {
                while let line = readLine() {
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    if !trimmed.isEmpty { try handle(trimmed) }
                }
            } else {
                try handle(argument)
            }
        }
        out.flush()
        if status != 0 { throw ExitCode(status) }
    }
}

struct LocationDump: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dump", abstract: "Dump the whole database as text.")
    @OptionGroup var global: LocationGlobalOptions

    @Argument(help: "Output file (default: standard output).")
    var output: String?

    func run() throws {
        let db = try global.open()
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil), let handle = FileHandle(forWritingAtPath: output) else {
                locationPrintError("location: cannot write \(output)")
                throw ExitCode(2)
            }
            DumpFormat.write(db) { handle.write(Data($0.utf8)) }
            try handle.close()
        } else {
            var out = LocationStandardOutput()
            DumpFormat.write(db) { out.write($0) }
            out.flush()
        }
    }
}

struct LocationGetAS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get-as", abstract: "Show autonomous systems by number.")
    @OptionGroup var global: LocationGlobalOptions
    @Argument var asn: [String]

    func run() throws {
        let db = try global.open()
        var status: Int32 = 0
        for text in asn {
            guard let number = UInt32(text) else {
                locationPrintError("Invalid ASN: \(text)")
                status = 1
                continue
            }
            guard let system = db.autonomousSystem(number: number) else {
                locationPrintError("Could not find AS\(number)")
                status = 1
                continue
            }
            print("AS\(system.number) belongs to \(system.name)")
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct LocationSearchAS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search-as", abstract: "Search autonomous systems by name.")
    @OptionGroup var global: LocationGlobalOptions
    @Option(help: "text (as the reference) or json") var format: String = "text"
    @Argument var query: String

    func run() throws {
        let db = try global.open()
        for system in db.searchAutonomousSystems(query) {
            print(format == "json" ? "{\"asn\":\(system.number),\"name\":\(JSONText.quoted(system.name))}" : system.description)
        }
    }
}

struct LocationListNetworksByAS: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-networks-by-as", abstract: "List the networks of an AS.")
    @OptionGroup var global: LocationGlobalOptions
    @Option var family: LocationFamily?
    @Option var format: LocationOutputFormat = .list
    @Argument var asn: UInt32

    func run() throws {
        let db = try global.open()
        let networks = db.networks(matching: NetworkFilter(family: family?.family, asns: [asn]))
        try locationWriteNetworkList(name: "AS\(asn)", family: family, format: format, networks: networks, database: db)
    }
}

struct LocationListNetworksByCC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-networks-by-cc", abstract: "List the networks of a country.")
    @OptionGroup var global: LocationGlobalOptions
    @Option var family: LocationFamily?
    @Option var format: LocationOutputFormat = .list
    @Argument(help: "Country code, or A1/A2/A3/XD for the flags.") var countryCode: String

    func run() throws {
        let db = try global.open()
        var filter = NetworkFilter(family: family?.family)
        if let special = NetworkFlags.specialCountryCodes.first(where: { $0.0.description == countryCode }) {
            filter.flags = special.1
        } else if let code = CountryCode(countryCode), code.isValidCountry {
            filter.countryCodes = [code]
        } else {
            locationPrintError("Could not create country")
            throw ExitCode(1)
        }
        try locationWriteNetworkList(name: countryCode, family: family, format: format, networks: db.networks(matching: filter), database: db)
    }
}

struct LocationListNetworksByFlags: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-networks-by-flags", abstract: "List networks with any of the flags.")
    @OptionGroup var global: LocationGlobalOptions
    @Flag var anonymousProxy = false
    @Flag var satelliteProvider = false
    @Flag var anycast = false
    @Flag var drop = false
    @Option var family: LocationFamily?
    @Option var format: LocationOutputFormat = .list

    func run() throws {
        let db = try global.open()
        var flags: NetworkFlags = []
        if anonymousProxy { flags.insert(.anonymousProxy) }
        if satelliteProvider { flags.insert(.satelliteProvider) }
        if anycast { flags.insert(.anycast) }
        if drop { flags.insert(.drop) }
        guard !flags.isEmpty else {
            locationPrintError("You must at least pass one flag")
            throw ExitCode(2)
        }
        try locationWriteNetworkList(name: "custom", family: family, format: format,
                             networks: db.networks(matching: NetworkFilter(family: family?.family, flags: flags)), database: db)
    }
}

struct LocationListBogons: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-bogons", abstract: "List address space not assigned to any country.")
    @OptionGroup var global: LocationGlobalOptions
    @Option var family: LocationFamily?
    @Option var format: LocationOutputFormat = .list

    func run() throws {
        let db = try global.open()
        let networks = db.bogons(family: family?.family).map { LocationNetwork(prefix: $0, properties: NetworkProperties()) }
        try locationWriteNetworkList(name: "bogons", family: family, format: format, networks: networks, database: db)
    }
}

struct LocationListCountries: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-countries", abstract: "List the countries.")
    @OptionGroup var global: LocationGlobalOptions
    @Flag var showName = false
    @Flag var showContinent = false
    @Option(help: "text (as the reference) or json") var format: String = "text"

    func run() throws {
        let db = try global.open()
        var out = LocationStandardOutput()
        for country in db.countries {
            if format == "json" {
                out.write("{\"code\":\(JSONText.quoted(country.code.description)),\"continent\":\(JSONText.quoted(country.continentCode.description)),\"name\":\(JSONText.quoted(country.name))}\n")
                continue
            }
            var fields = [country.code.description]
            if showContinent { fields.append(country.continentCode.description) }
            if showName { fields.append(country.name) }
            out.write(fields.joined(separator: " ") + "\n")
        }
        out.flush()
    }
}

struct LocationExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Export non-overlapping networks per country, flag (A1 A2 A3 XD) or AS (ASn).")
    @OptionGroup var global: LocationGlobalOptions
    @Option var format: LocationOutputFormat = .list
    @Option var directory: String?
    @Option var family: LocationFamily?
    @Argument var objects: [String] = []

    func run() throws {
        let db = try global.open()
        var parsed: [ExportObject] = []
        for object in objects {
            if let o = ExportObject(object) { parsed.append(o) } else { locationPrintError("Invalid argument: \(object)") }
        }
        guard let exportFormat = format.exportFormat else {
            locationPrintError("export does not support --format json")
            throw ExitCode(2)
        }
        let families: [AddressFamily] = family.map { [$0.family] } ?? [.ipv6, .ipv4]
        // The reference writes nothing when every object given was invalid.
        if !objects.isEmpty && parsed.isEmpty { return }
        let sets = db.export(objects: parsed, families: families, format: exportFormat)
        if let directory {
            for set in sets {
                let path = (directory as NSString).appendingPathComponent(set.fileName)
                guard FileManager.default.createFile(atPath: path, contents: Data(set.output())) else {
                    locationPrintError("location: cannot write \(path)")
                    throw ExitCode(1)
                }
            }
        } else {
            guard exportFormat != .xtGeoIP else {
                locationPrintError("Won't write binary output to stdout")
                throw ExitCode(1)
            }
            var out = LocationStandardOutput()
            for set in sets { out.write(bytes: set.output(knownSize: false)) }
            out.flush()
        }
    }
}

struct LocationVerify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Verify the database's signature.")
    @OptionGroup var global: LocationGlobalOptions

    func run() throws {
        let db = try global.open()
        let pem: String
        do { pem = try String(contentsOfFile: global.publicKey, encoding: .utf8) } catch {
            locationPrintError("location: cannot read public key \(global.publicKey): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        do {
            try db.verify(publicKeyPEM: pem)
        } catch {
            locationPrintError("Could not verify database: \(error)")
            throw ExitCode(1)
        }
        global.info("Database successfully verified")
    }
}

struct LocationWrite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "write", abstract: "Build a database from the text of `location dump`, optionally signed.")
    @OptionGroup var global: LocationGlobalOptions

    @Option(name: .customLong("signing-key"), help: "PEM EC private key (P-256/384/521); give twice for both slots.")
    var signingKeys: [String] = []
    @Option(help: "Vendor (default: from the dump header).") var vendor: String?
    @Option(help: "Description (default: from the dump header).") var description: String?
    @Option(help: "License (default: from the dump header).") var license: String?
    @Option(help: "Database to copy the country table from (dumps have none; default: -d if it opens).")
    var countriesFrom: String?
    @Flag(help: "Write networks exactly as given (no merging or de-duplication).") var keepNetworks = false
    @Argument var dumpFile: String
    @Argument var outputDatabase: String

    func run() throws {
        guard signingKeys.count <= 2 else { throw ValidationError("at most two --signing-key") }
        let keys = try signingKeys.map { path -> DatabaseSigningKey in
            try DatabaseSigningKey(pem: String(contentsOfFile: path, encoding: .utf8))
        }
        let text: Data
        do { text = try Data(contentsOf: URL(fileURLWithPath: dumpFile), options: .alwaysMapped) } catch {
            locationPrintError("location: cannot read \(dumpFile): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        var writer = DatabaseWriter()
        writer.mergesNetworks = !keepNetworks
        let total = text.count
        let quiet = global.quiet
        try text.withUnsafeBytes { raw in
            try DumpFormat.read(raw, into: &writer) { done in
                if !quiet { locationPrintError("reading \(dumpFile): \(done * 100 / max(total, 1))%") }
            }
        }
        if let vendor { writer.vendor = vendor }
        if let description { writer.description = description }
        if let license { writer.license = license }
        let countrySource = countriesFrom ?? global.database
        if let source = try? LocationDatabase(path: countrySource) {
            for country in source.countries { writer.addCountry(country) }
            global.info("countries: \(source.countryCount) from \(countrySource)")
        } else {
            global.info("countries: none (could not open \(countrySource))")
        }
        global.info("writing \(writer.networkCount) networks\(keepNetworks ? "" : " (before merging)") to \(outputDatabase)")
        try writer.write(to: outputDatabase, signingKeys: keys)
        let written = try LocationDatabase(path: outputDatabase)
        global.info("wrote \(outputDatabase): \(written.networkCount) networks, \(written.autonomousSystemCount) ASes, \(written.countryCount) countries\(keys.isEmpty ? "" : ", signed")")
    }
}

struct LocationUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Download a newer database over HTTPS, verify it and replace the current one.")
    @OptionGroup var global: LocationGlobalOptions

    @Option(help: "daily, weekly or monthly: skip (exit 3) if the database is younger than that.")
    var cron: String?

    @Option(help: "Download URL (xz-compressed database).")
    var url: String = "https://location.ipfire.org/databases/1/location.db.xz"

    @Option(name: .customLong("nameserver"),
            help: "DNS server (ADDRESS or ADDRESS:PORT) to ask for the newest version; repeatable. Default: those of /etc/resolv.conf.")
    var nameservers: [String] = []

    func run() async throws {
        var refreshAfter: Duration?
        if let cron {
            switch cron {
            case "daily": refreshAfter = .seconds(86_400)
            case "weekly": refreshAfter = .seconds(7 * 86_400)
            case "monthly": refreshAfter = .seconds(30 * 86_400)
            default: throw ValidationError("--cron must be daily, weekly or monthly")
            }
        }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else { throw ValidationError("--url must be an http:// or https:// URL, not \(url)") }
        let update = LocationDatabaseUpdate(database: global.database, publicKeyPath: global.publicKey, url: url,
                                            nameservers: nameservers.isEmpty ? nil : nameservers, refreshAfter: refreshAfter)
        let result: LocationDatabaseUpdate.Result
        do {
            result = try await update.run { global.info($0) }
        } catch {
            locationPrintError(error.description)
            throw ExitCode(1)
        }
        switch result {
        case .updated(let createdAt):
            global.info("Updated to the database of \(HTTPDate.format(createdAt))")
        case .latestAnnounced:
            global.info("Already on the latest version")
        case .nothingNewer:
            global.info("Already on the latest version")
            throw ExitCode(3)
        case .recentEnough:
            global.info("The database has been updated recently")
            throw ExitCode(3)
        }
    }
}
