import ArgumentParser
import Foundation
import Logging
import Tunnel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TextFormats

/// `log.format` / `--log-format`: how `serve` and `tunnel` write their log records on stderr.
enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// One line per record, as before (serve: swift-log's stream handler; tunnel: `LineLogHandler`).
    case text
    /// One JSON object per line, for log shippers: the same fields as the text line
    /// (`timestamp`, `level`, `label`, `source`, `message`) and each metadata key at the top level.
    case json
}

/// Writes each record as one JSON object on one line, with one `write(2)`:
///
///     {"timestamp":"2026-11-23T06:00:00.123Z","level":"info","label":"ipquest","source":"Edge","message":"request banned","client":"127.0.0.1","reason":"user agent","request_id":"…"}
///
/// Metadata keys go to the top level, sorted; a key that would shadow one of the five fixed
/// fields is written as `metadata.KEY`. Nested metadata becomes JSON arrays and objects.
struct JSONLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let fd: Int32

    static let fixedFields: Set<String> = ["timestamp", "level", "label", "source", "message"]

    init(label: String, fileDescriptor: Int32 = 2, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.fd = fileDescriptor
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        var line = String()
        line.reserveCapacity(256)
        line += "{\"timestamp\":"
        Self.append(string: Self.timestamp(), to: &line)
        line += ",\"level\":"
        Self.append(string: event.level.rawValue, to: &line)
        line += ",\"label\":"
        Self.append(string: label, to: &line)
        line += ",\"source\":"
        Self.append(string: event.source, to: &line)
        line += ",\"message\":"
        Self.append(string: event.message.description, to: &line)
        for key in merged.keys.sorted() {
            line += ","
            Self.append(string: Self.fixedFields.contains(key) ? "metadata.\(key)" : key, to: &line)
            line += ":"
            Self.append(value: merged[key]!, to: &line)
        }
        line += "}\n"
        LineLogHandler.writeLine(&line, to: fd)
    }

    static func append(value: Logger.Metadata.Value, to line: inout String) {
        switch value {
        case .string(let text): append(string: text, to: &line)
        case .stringConvertible(let value): append(string: value.description, to: &line)
        case .array(let values):
            line += "["
            for (i, v) in values.enumerated() {
                if i > 0 { line += "," }
                append(value: v, to: &line)
            }
            line += "]"
        case .dictionary(let map):
            line += "{"
            for (i, key) in map.keys.sorted().enumerated() {
                if i > 0 { line += "," }
                append(string: key, to: &line)
                line += ":"
                append(value: map[key]!, to: &line)
            }
            line += "}"
        }
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
    static func append(string text: String, to line: inout String) { JSONText.append(text, to: &line) }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(now.tv_nsec / 1_000_000, 3))Z"
    }
}

extension LogFormat {
    /// Makes every `Logger(label:)` of the process write in this format (serve). Text keeps
    /// swift-log's default stream handler on stderr.
    func bootstrap() {
        switch self {
        case .text: break
        case .json: LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        }
    }

    /// The handler for the tunnel's logger.
    func tunnelHandler(label: String) -> any LogHandler {
        switch self {
        case .text: LineLogHandler(label: label)
        case .json: JSONLogHandler(label: label)
        }
    }
}
