import Edge
import Foundation
import Hummingbird
import HTTPTypes
import IPAddress
import TextFormats
import GameRules

/// The answer to a successful claim, in the form the client asked for.
enum ClaimResponse {
    /// `none`: the client accepts no form we have (ipv4.games answers 204; the claim still counts).
    enum Format: Equatable { case html, text, json, gif, none }

    /// A 1×1 transparent GIF, so a claim URL can be embedded as an image.
    static let transparentGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
    ]

    /// Picks a format from `Accept` by q-value; on a tie the earlier listed type wins.
    /// No header (or `*/*`) means HTML, like a browser; a header that lists media ranges (a
    /// type with a `/`) but allows none of HTML, text, JSON or images means `none`; a header
    /// without any media range is ignored (HTML).
    static func format(accept: String?) -> Format {
        guard var accept, !accept.isEmpty else { return .html }
        // Bytes, not Foundation: this runs once per claim and was 10 % of a claim's CPU when it
        // split, trimmed and lowercased Strings. Same rules: parts split at ",", fields at ";"
        // (empty ones skipped), trimmed of spaces and tabs, compared without case.
        return accept.withUTF8 { bytes -> Format in
            var best: (format: Format, q: Double)?
            var listsRange = false
            var partStart = 0
            while partStart < bytes.count {
                var partEnd = partStart
                while partEnd < bytes.count, bytes[partEnd] != UInt8(ascii: ",") { partEnd += 1 }
                defer { partStart = partEnd + 1 }
                var type: Range<Int>?
                var q = 1.0
                var fieldStart = partStart
                while fieldStart < partEnd {
                    var fieldEnd = fieldStart
                    while fieldEnd < partEnd, bytes[fieldEnd] != UInt8(ascii: ";") { fieldEnd += 1 }
                    defer { fieldStart = fieldEnd + 1 }
                    if fieldEnd == fieldStart { continue }
                    var a = fieldStart, b = fieldEnd
                    while a < b, isSpace(bytes[a]) { a += 1 }
                    while b > a, isSpace(bytes[b - 1]) { b -= 1 }
                    if type == nil {
                        type = a..<b
                    } else if b - a >= 2, bytes[a] | 0x20 == UInt8(ascii: "q"), bytes[a + 1] == UInt8(ascii: "=") {
                        q = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[(a + 2)..<b]), as: UTF8.self)) ?? 0
                    }
                }
                if let type, bytes[type].contains(UInt8(ascii: "/")) { listsRange = true }
                guard let type, q > 0, let format = mediaFormat(UnsafeBufferPointer(rebasing: bytes[type])) else { continue }
                // */* only fills in when nothing specific was listed.
                let wildcard = type.count == 3 && bytes[type.lowerBound] == UInt8(ascii: "*")
                let effectiveQ = wildcard ? q - 0.0001 : q
                if best == nil || effectiveQ > best!.q { best = (format, effectiveQ) }
            }
            return best?.format ?? (listsRange ? .none : .html)
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }

    /// The format a media range asks for (ASCII case-insensitive), nil for one we do not serve.
    private static func mediaFormat(_ type: UnsafeBufferPointer<UInt8>) -> Format? {
        func starts(with literal: StaticString) -> Bool {
            guard type.count >= literal.utf8CodeUnitCount else { return false }
            let l = literal.utf8Start
            for i in 0..<literal.utf8CodeUnitCount where asciiLower(type[i]) != l[i] { return false }
            return true
        }
        func equals(_ literal: StaticString) -> Bool { type.count == literal.utf8CodeUnitCount && starts(with: literal) }
        if equals("text/html") || equals("application/xhtml+xml") || equals("text/*") || equals("*/*") { return .html }
        if equals("text/plain") { return .text }
        if equals("application/json") { return .json }
        return starts(with: "image/") ? .gif : nil
    }

    private static func asciiLower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    static func make(address: IPv4Address, name: PlayerName, origin: ClaimOrigin = .unknown, outcome: Scoreboard.Outcome, accept: String?) -> Response {
        let format = format(accept: accept)
        let (headers, body) = parts(address: address, name: name, origin: origin, outcome: outcome, format: format)
        return Response(status: status(format), headers: headers, body: .init(byteBuffer: body))
    }

    /// 200, or 204 when the client accepts no form of the answer.
    static func status(_ format: Format) -> HTTPResponse.Status { format == .none ? .noContent : .ok }

    /// The fields every claim answer of a format carries, built (and validated) once.
    private static func fields(contentType: String) -> HTTPFields {
        [.accessControlAllowOrigin: "*", .cacheControl: "no-store", .vary: "Accept", .contentType: contentType]
    }
    private static let gifFields = fields(contentType: "image/gif")
    private static let textFields = fields(contentType: "text/plain; charset=utf-8")
    private static let jsonFields = fields(contentType: "application/json")
    private static let htmlFields = fields(contentType: "text/html; charset=utf-8")
    private static let noContentFields: HTTPFields = [.accessControlAllowOrigin: "*", .cacheControl: "no-store", .vary: "Accept"]

    /// The answer's fields and body (the router wraps them in a Response, FastRoutes writes them).
    static func parts(address: IPv4Address, name: PlayerName, origin: ClaimOrigin, outcome: Scoreboard.Outcome, format: Format) -> (HTTPFields, ByteBuffer) {
        let headers: HTTPFields
        // ipv4.games' words: claim bots look for them.
        var sentence: String { "The land at \(address) was claimed for \(name.value)." }
        let body: ByteBuffer
        switch format {
        case .none:
            headers = noContentFields
            body = ByteBuffer()
        case .gif:
            headers = gifFields
            body = ByteBuffer(bytes: transparentGIF)
        case .text:
            headers = textFields
            let ip = address.description
            var b = ByteBuffer()
            b.reserveCapacity(40 + ip.utf8.count + name.value.utf8.count)
            b.writeStaticString("The land at ")
            b.writeString(ip)
            b.writeStaticString(" was claimed for ")
            b.writeString(name.value)
            b.writeStaticString(".\n")
            body = b
        case .json:
            headers = jsonFields
            let previous: String
            let refreshed: Bool
            switch outcome {
            case .claimed(let p):
                previous = p.map { JSONText.quoted($0.value) } ?? "null"
                refreshed = p == name
            case .unchanged:
                previous = JSONText.quoted(name.value)
                refreshed = false
            }
            body = ByteBuffer(string: "{\"ip\":\"\(address)\",\"block\":\(address.block),\"name\":\(JSONText.quoted(name.value)),\"previous_owner\":\(previous),\"changed\":\(outcome != .unchanged && !refreshed),\(origin.jsonFields),\"message\":\(JSONText.quoted(sentence))}")
        case .html:
            headers = htmlFields
            // Written piece by piece: the same bytes as one interpolated string, without
            // building it first (this answers every browser claim).
            let escaped = HTML.escape(name.value)
            let link = HTML.escape(URLPath.encodeSegment(name.value))
            let ip = address.description
            var b = ByteBuffer()
            b.reserveCapacity(260 + 2 * (ip.utf8.count + escaped.utf8.count) + link.utf8.count)
            b.writeStaticString("<!doctype html>\n<html lang=\"en\"><meta charset=\"utf-8\">\n")
            b.writeStaticString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>The land at ")
            b.writeString(ip)
            b.writeStaticString(" was claimed for ")
            b.writeString(escaped)
            b.writeStaticString(".</title>\n<p>The land at ")
            b.writeString(ip)
            b.writeStaticString(" was claimed for <a href=\"/players/")
            b.writeString(link)
            b.writeStaticString("\">")
            b.writeString(escaped)
            b.writeStaticString("</a>.</p>\n<p><a href=\"/\">Back to the map</a></p>\n")
            body = b
        }
        return (headers, body)
    }
}

enum HTML {
    static func escape(_ s: String) -> String {
        // Valid player names never need it: return them as they are.
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") })
        else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

enum URLPath {
    /// Percent-encodes every byte but the unreserved characters (RFC 3986: ASCII letters,
    /// digits and `-._~`), UTF-8 first.
    static func encodeSegment(_ s: String) -> String {
        let unreserved = RequestPath.isUnreserved
        guard !s.utf8.allSatisfy(unreserved) else { return s }
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count * 3)
        for b in s.utf8 {
            if unreserved(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// JSON for `/api/players/{name}`.
enum PlayerJSON {
    static func ordinal(_ n: Int) -> String {
        let suffix: String
        switch (n % 10, n % 100) {
        case (_, 11...13): suffix = "th"
        case (1, _): suffix = "st"
        case (2, _): suffix = "nd"
        case (3, _): suffix = "rd"
        default: suffix = "th"
        }
        return "\(n)\(suffix)"
    }

    /// "tied 2nd in 10.0.0.0/8 with 312 addresses"
    static func summary(_ b: Scoreboard.PlayerBlock) -> String {
        let noun = b.count == 1 ? "address" : "addresses"
        return "\(b.isTied ? "tied " : "")\(ordinal(b.rank)) in \(b.block).0.0.0/8 with \(b.count) \(noun)"
    }

    static func encode(_ s: Scoreboard.PlayerStanding, period: Period) -> String {
        let countries = s.countries.map { "{\"country\":\(JSONText.quoted($0.country)),\"addresses\":\($0.addresses)}" }.joined(separator: ",")
        let share = (s.dataCenterShare * 10_000).rounded() / 10_000
        let origins = "\"countries\":[\(countries)],\"all_time_addresses\":\(s.allTimeAddresses),\"datacenter_addresses\":\(s.dataCenterAddresses),\"datacenter_share\":\(share)"
        let blocks = s.blocks.map { b in
            "{\"block\":\(b.block),\"cidr\":\"\(b.block).0.0.0/8\",\"count\":\(b.count),\"rank\":\(b.rank),\"tied\":\(b.isTied),\"players\":\(b.players),\"summary\":\(JSONText.quoted(summary(b)))}"
        }.joined(separator: ",")
        let held = s.blocksHeld.map(String.init).joined(separator: ",")
        return "{\"name\":\(JSONText.quoted(s.name.value)),\"period\":\"\(period.rawValue)\",\"addresses\":\(s.addresses),\"blocks_held\":[\(held)],\"blocks\":[\(blocks)],\(origins)}"
    }
}

extension ClaimOrigin {
    /// `"country":…,"asn":…,"datacenter":…` (null when unknown / residential).
    var jsonFields: String {
        "\"country\":\(country.map(JSONText.quoted) ?? "null"),\"asn\":\(asn.map(String.init) ?? "null"),\"datacenter\":\(provider.map(JSONText.quoted) ?? "null")"
    }
}

/// JSON for `/api/countries/{code}` and `/api/as/{asn}`.
enum AreaJSON {
    static func encode(_ area: Scoreboard.AreaStanding, fields: String) -> String {
        let players = area.players.map { "{\"rank\":\($0.rank),\"name\":\(JSONText.quoted($0.name.value)),\"addresses\":\($0.addresses)}" }.joined(separator: ",")
        let ruler = area.ruler.map { JSONText.quoted($0.value) } ?? "null"
        return "{\(fields),\"addresses\":\(area.addresses),\"player_count\":\(area.playerCount),\"ruler\":\(ruler),\"players\":[\(players)]}"
    }

    static func encode(_ list: [Scoreboard.AreaSummary], field: String, value: (Scoreboard.AreaSummary) -> String) -> String {
        list.map { a in
            let ruler = a.ruler.map { JSONText.quoted($0.value) } ?? "null"
            return "{\"\(field)\":\(value(a)),\"addresses\":\(a.addresses),\"player_count\":\(a.playerCount),\"ruler\":\(ruler),\"ruler_addresses\":\(a.rulerAddresses)}"
        }.joined(separator: ",")
    }
}
