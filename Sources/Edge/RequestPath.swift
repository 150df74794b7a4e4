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
        let utf8 = Array(path.utf8.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
        // Fast answer for what nearly every request looks like: already normal.
        if isNormal(utf8) { return String(decoding: utf8, as: UTF8.self) }
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
    static func isNormal(_ utf8: [UInt8]) -> Bool {
        guard utf8.first == UInt8(ascii: "/") else { return false }
        if utf8.count == 1 { return true }
        if utf8.last == UInt8(ascii: "/") || utf8.contains(UInt8(ascii: "%")) { return false }
        var segmentStart = 1
        for i in 1...utf8.count where i == utf8.count || utf8[i] == UInt8(ascii: "/") {
            let length = i - segmentStart
            if length == 0 { return false }
            if utf8[segmentStart] == UInt8(ascii: "."), length == 1 || (length == 2 && utf8[segmentStart + 1] == UInt8(ascii: ".")) {
                return false
            }
            segmentStart = i + 1
        }
        return true
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
