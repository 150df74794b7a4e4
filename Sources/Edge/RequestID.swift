public import HTTPTypes
import TextFormats

/// `X-Request-ID`: a client's own id when it is short and plain, else one made here. Every
/// response carries it and every log line of the request names it.
public enum RequestID {
    public static let field = HTTPField.Name("X-Request-ID")!

    /// A client's id, accepted when it is short and plain (so it cannot inject into logs).
    public static func acceptable(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 64,
              value.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return value
    }

    /// A new id (`UniqueID`: 16 hex digits, unique per process).
    public static func next() -> String { UniqueID.nextHex() }
}
