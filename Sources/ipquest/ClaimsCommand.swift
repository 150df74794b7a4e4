import ArgumentParser
import Foundation
import Game
import IPAddress

/// `ipquest claims export|import`: backup and restore of the claims table.
struct ClaimsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claims",
        abstract: "Export or import claims as TSV/CSV (ip, name, claimed_at, country, asn, provider).",
        subcommands: [Export.self, Import.self]
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case tsv, csv
        var separator: Character { self == .tsv ? "\t" : "," }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write every claim, in address order.")
        @Option(help: "SQLite database file.") var database = "./ipquest.sqlite"
        @Option(help: "tsv or csv.") var format: Format = .tsv
        @Option(name: .shortAndLong, help: "Output file (default: standard output).") var output: String?

        func run() async throws {
            guard FileManager.default.fileExists(atPath: database) else {
                throw ValidationError("no database at \(database)")
            }
            let storage = try SQLiteClaimStorage(path: database)
            let claims = try await storage.loadAll().sorted { $0.address < $1.address }
            let sep = String(format.separator)
            var text = "ip\(sep)name\(sep)claimed_at\(sep)country\(sep)asn\(sep)provider\n"
            text.reserveCapacity(claims.count * 32)
            for (i, claim) in claims.enumerated() {
                let o = claim.origin
                text += "\(claim.address)\(sep)\(claim.name.value)\(sep)\(claim.claimedAt)\(sep)\(o.country ?? "")\(sep)\(o.asn.map(String.init) ?? "")\(sep)\(o.provider ?? "")\n"
                if (i + 1) % 100_000 == 0 { progress("exported \(i + 1)/\(claims.count)") }
            }
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            progress("exported \(claims.count) claims")
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read claims into the database (all or nothing; run while the server is stopped).",
            discussion: "Rows replace the current owner of their address. Any bad row aborts the import and nothing is written."
        )
        @Option(help: "SQLite database file (created if missing).") var database = "./ipquest.sqlite"
        @Option(help: "tsv or csv (default: from the file extension, else tsv).") var format: Format?
        @Argument(help: "Input file, or - for standard input.") var input: String

        func run() async throws {
            let data: Data
            if input == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let d = FileManager.default.contents(atPath: input) else { throw ValidationError("cannot read \(input)") }
                data = d
            }
            let chosen = format ?? (input.hasSuffix(".csv") ? .csv : .tsv)
            let text = String(decoding: data, as: UTF8.self)
            let (claims, errors) = ClaimsFile.parse(text, separator: chosen.separator)
            if !errors.isEmpty {
                for e in errors.prefix(10) { progress(e) }
                if errors.count > 10 { progress("… and \(errors.count - 10) more") }
                progress("import aborted: \(errors.count) bad rows, nothing written")
                throw ExitCode(2)
            }
            let storage = try SQLiteClaimStorage(path: database)
            progress("importing \(claims.count) claims…")
            let n = try await storage.importClaims(claims)
            progress("imported \(n) claims into \(database)")
        }
    }
}

/// Parsing of exported claim files.
enum ClaimsFile {
    static func parse(_ text: String, separator: Character) -> ([Claim], [String]) {
        var claims: [Claim] = []
        var errors: [String] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty { continue }
            let fields = line.split(separator: separator, omittingEmptySubsequences: false).map { field -> Substring in
                field.count >= 2 && field.hasPrefix("\"") && field.hasSuffix("\"") ? field.dropFirst().dropLast() : field
            }
            if index == 0, fields.first == "ip" { continue } // header
            let lineNumber = index + 1
            guard fields.count == 3 || fields.count == 6 else {
                errors.append("line \(lineNumber): expected 3 fields (ip, name, claimed_at) or 6 (… country, asn, provider), got \(fields.count)"); continue
            }
            guard let address = IPv4Address(fields[0]) else { errors.append("line \(lineNumber): '\(fields[0])' is not an IPv4 address"); continue }
            let name: PlayerName
            do { name = try PlayerName(validating: String(fields[1])) } catch {
                errors.append("line \(lineNumber): \(error.description)"); continue
            }
            guard let at = Int64(fields[2]), at >= 0 else { errors.append("line \(lineNumber): '\(fields[2])' is not a Unix time"); continue }
            var origin = ClaimOrigin.unknown
            if fields.count == 6 {
                let (country, asn, provider) = (fields[3], fields[4], fields[5])
                guard country.isEmpty || ClaimOrigin.normalizedCountry(String(country)) != nil else {
                    errors.append("line \(lineNumber): '\(country)' is not a two-letter country code"); continue
                }
                guard asn.isEmpty || UInt32(asn) != nil else { errors.append("line \(lineNumber): '\(asn)' is not an AS number"); continue }
                guard provider.utf8.count <= 64, provider.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                    errors.append("line \(lineNumber): '\(provider)' is not a provider name"); continue
                }
                origin = ClaimOrigin(country: country.isEmpty ? nil : String(country), asn: UInt32(asn), provider: provider.isEmpty ? nil : String(provider))
            }
            claims.append(Claim(address: address, name: name, claimedAt: at, origin: origin))
        }
        return (claims, errors)
    }
}

func progress(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}
