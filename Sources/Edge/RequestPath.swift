/// The one form of a request path that routing decisions use.
///
/// Hummingbird's router matches a path split on "/" with empty segments dropped, so
/// `//claim`, `/claim/` and `/api//ip` reach the same routes as `/claim` and `/api/ip`. Guards
/// that compared the raw string (path bans, data-center rules, the claim budget) let those
/// spellings through. Every decision therefore uses `RequestPath.normalized`: empty segments
/// dropped, dot segments resolved (RFC 3986 §5.2.4), percent-encoded unreserved characters
/// decoded and other escapes upper-cased (§6.2.2). The router never decodes or resolves, so
/// the normal form is only ever *stricter*: whatever the router matches, a guard sees too.
public enum RequestPath {
    /// `path` without its query; the result starts with "/" and has no empty, "." or ".." segment.
    public static func normalized(_ path: some StringProtocol) -> String {
        let full = path.utf8
        let end = full.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? full.endIndex
        // Nearly every request is already normal: checked on the bytes in place, answered with
        // the path itself (called several times per request, so no copy on that path).
        if isNormal(full[..<end]) { return end == full.endIndex ? String(path) : String(path[..<end]) }
        let utf8 = Array(full[..<end])
        var segments: [[UInt8]] = []
        for raw in utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let segment = decodeUnreserved(raw)
            if segment == [UInt8(ascii: ".")] { continue }
            if segment == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                if !segments.isEmpty { segments.removeLast() }
                continue
            }
            segments.append(segment)
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count + 1)
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: segment)
        }
        if out.isEmpty { out = [UInt8(ascii: "/")] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Starts with "/", no "//", no trailing "/" (unless the root), no "%", no dot segment.
    static func isNormal<Bytes: Collection<UInt8>>(_ utf8: Bytes) -> Bool {
        guard utf8.first == UInt8(ascii: "/") else { return false }
        var length = 0 // of the current segment
        var dots = 0 // of its bytes that are "."
        for b in utf8.dropFirst() {
            if b == UInt8(ascii: "%") { return false }
            if b == UInt8(ascii: "/") {
                if length == 0 || (dots == length && length <= 2) { return false }
                (length, dots) = (0, 0)
            } else {
                length += 1
                if b == UInt8(ascii: ".") { dots += 1 }
            }
        }
        if length == 0 { return utf8.count == 1 } // the root, or a trailing "/"
        return !(dots == length && length <= 2)
    }

    private static func decodeUnreserved(_ segment: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(segment.count)
        var i = segment.startIndex
        while i < segment.endIndex {
            let b = segment[i]
            if b == UInt8(ascii: "%"), i + 2 < segment.endIndex, let hi = hex(segment[i + 1]), let lo = hex(segment[i + 2]) {
                let decoded = hi << 4 | lo
                if isUnreserved(decoded) {
                    out.append(decoded)
                } else {
                    out.append(b)
                    out.append(upper(segment[i + 1]))
                    out.append(upper(segment[i + 2]))
                }
                i += 3
                continue
            }
            out.append(b)
            i += 1
        }
        return out
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func upper(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f") ? b - 32 : b
    }

    /// RFC 3986's unreserved characters: ASCII letters, digits and `-._~`.
    public static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
